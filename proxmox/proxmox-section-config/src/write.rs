//! Writing section-config text.
//!
//! Layout (pinned by the upstream vectors): `TYPE: ID` then one
//! `\tKEY VALUE` line per property in byte-wise key order, array items one line
//! each, the id property left out, sections separated by one empty line, no
//! blank line at the start or end. An empty config is an empty string.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Error, bail, format_err};
use serde_json::{Map, Value};

use proxmox_lang::try_block;
use proxmox_schema::{ParameterError, Schema};

use crate::parse::section_to_json;
use crate::{PropertyRef, SectionConfig, SectionConfigData, SectionConfigPlugin, SectionRef};

impl SectionConfig {
    /// Writes `config` as section-config text. `filename` is only used in
    /// error messages.
    ///
    /// Every section is verified first (known type, valid id, properties valid
    /// against the plugin's schema, values that survive a round trip), so
    /// what is written parses back to the same data.
    pub fn write(
        &self,
        filename: impl AsRef<Path>,
        config: &SectionConfigData,
    ) -> Result<String, Error> {
        try_block!({
            let mut raw = String::new();
            for section_id in config.ordered_ids() {
                let (type_name, section) = &config.sections[section_id];
                self.write_section(&mut raw, type_name, section_id, section)?;
            }
            Ok(raw)
        })
        .map_err(|err: Error| format_err!("writing {:?} failed: {err}", filename.as_ref()))
    }

    /// Appends one section to `raw` as [`SectionConfig::write`] writes it
    /// (preceded by the blank separator line unless `raw` is empty), after
    /// the same verification.
    pub fn write_section(
        &self,
        raw: &mut String,
        type_name: &str,
        section_id: &str,
        section: &Value,
    ) -> Result<(), Error> {
        let Some(plugin) = self.plugins.get(type_name) else {
            bail!("unknown section type '{type_name}'");
        };
        if let Err(err) = self.id_schema.parse_simple_value(section_id) {
            bail!("syntax error in section identifier: {err}");
        }
        let Some(properties) = section.as_object() else {
            bail!("section '{section_id}' is not an object");
        };
        verify_section(plugin, section_id, properties)
            .map_err(|err| format_err!("verify section '{section_id}' failed - {err}"))?;

        if !raw.is_empty() {
            raw.push('\n');
        }
        let _ = writeln!(raw, "{type_name}: {section_id}");

        // sorted explicitly: serde_json's map is only sorted without `preserve_order`
        let mut keys: Vec<&String> = properties.keys().collect();
        keys.sort_unstable();
        for key in keys {
            if Some(key.as_str()) == plugin.id_property() {
                continue;
            }
            match &properties[key] {
                Value::Array(list) => {
                    for item in list {
                        write_property(raw, section_id, key, item)?;
                    }
                }
                value => write_property(raw, section_id, key, value)?,
            }
        }
        Ok(())
    }
}

impl SectionConfig {
    /// Appends a section as read by [`SectionConfig::parse_with`] to `raw`,
    /// exactly as [`SectionConfig::write`] would write it after
    /// [`SectionConfig::parse`]: properties in key order, values in their
    /// canonical form. A writer that keeps sections as text uses this instead
    /// of building a JSON object per section.
    ///
    /// Sections of only string and integer properties (what the key store
    /// has) are written straight from the text; any other (booleans,
    /// numbers, arrays) goes the generic way, through its JSON object and
    /// the write's verification.
    pub fn write_section_ref(&self, raw: &mut String, section: &SectionRef) -> Result<(), Error> {
        if !section.properties.iter().all(is_plain) {
            let object = section_to_json(section);
            return self.write_section(
                raw,
                section.plugin.type_name(),
                section.id,
                &Value::Object(object),
            );
        }
        if !raw.is_empty() {
            raw.push('\n');
        }
        // pushes, not format!: this runs for every section of every write
        raw.push_str(section.plugin.type_name());
        raw.push_str(": ");
        raw.push_str(section.id);
        raw.push('\n');
        if section.properties.is_sorted_by_key(|property| property.key) {
            // as written by us: no copy to sort
            for property in section.properties {
                push_property(raw, property);
            }
        } else {
            let mut properties: Vec<_> = section.properties.iter().collect();
            // stable: the items of an array property keep their order
            properties.sort_by_key(|property| property.key);
            for property in properties {
                push_property(raw, property);
            }
        }
        Ok(())
    }
}

/// `\tKEY VALUE\n` of a property [`is_plain`] accepted.
fn push_property(raw: &mut String, property: &PropertyRef) {
    raw.push('\t');
    raw.push_str(property.key);
    raw.push(' ');
    match property.schema {
        Some(Schema::Integer(_)) if !is_canonical_integer(property.value.as_bytes()) => {
            // "+05" is written as "5"
            let number: isize = property.value.parse().expect("checked by is_plain");
            let _ = write!(raw, "{number}");
        }
        _ => raw.push_str(property.value),
    }
    raw.push('\n');
}

/// Whether `text` is an integer as `isize`'s `Display` writes it (and so
/// as [`SectionConfig::write`] writes an integer property): an optional
/// `-`, then `0` alone or digits without a leading zero (and no `-0`).
/// The caller has checked that it parses.
pub fn is_canonical_integer(text: &[u8]) -> bool {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    match digits {
        [b'0'] => digits.len() == text.len(),
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
        [] => false,
    }
}

/// Whether a parsed property is written as its own text (strings, which the
/// parser has trimmed and checked, and additional properties) or as an
/// integer in canonical form. Array items are not: the parser checks each
/// item, but only the write checks the array's length bounds.
fn is_plain(property: &PropertyRef) -> bool {
    if property.array {
        return false;
    }
    match property.schema {
        None | Some(Schema::String(_)) => true,
        Some(Schema::Integer(_)) => property.value.parse::<isize>().is_ok(),
        Some(_) => false,
    }
}

/// Verifies the properties against the plugin's schema, with the id
/// property taken as the section id (it must not contradict it).
fn verify_section(
    plugin: &SectionConfigPlugin,
    section_id: &str,
    properties: &Map<String, Value>,
) -> Result<(), Error> {
    let schema = plugin.properties();
    let mut errors = ParameterError::new();
    for (key, value) in properties {
        if value.is_null() {
            continue;
        }
        match schema.lookup(key) {
            Some(_) if Some(key.as_str()) == plugin.id_property() => {
                if value.as_str() != Some(section_id) {
                    errors.push(key.clone(), format_err!("does not match the section id"));
                }
            }
            Some((_optional, prop_schema)) => {
                if let Err(err) = prop_schema.verify_json(value) {
                    errors.add_errors(key, err);
                }
            }
            None if schema.additional_properties() => {}
            None => errors.push(
                key.clone(),
                format_err!("schema does not allow additional properties."),
            ),
        }
    }
    for (_, name) in plugin.required_properties() {
        if properties.get(*name).is_none_or(Value::is_null) {
            errors.push(
                name.to_string(),
                format_err!("property is missing and it is not optional."),
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    Ok(())
}

fn write_property(
    raw: &mut String,
    section_id: &str,
    key: &str,
    value: &Value,
) -> Result<(), Error> {
    let number;
    let text: &str = match value {
        Value::Null => return Ok(()),
        Value::Bool(true) => "true",
        Value::Bool(false) => "false",
        Value::Number(value) => {
            number = value.to_string();
            &number
        }
        Value::String(value) => value,
        _ => bail!("got unsupported type in section '{section_id}' key '{key}'"),
    };
    if text.chars().any(char::is_control) {
        bail!("detected unexpected control character in section '{section_id}' key '{key}'");
    }
    if text.trim() != text {
        bail!(
            "value of section '{section_id}' key '{key}' begins or ends with whitespace, \
             which the file format cannot keep"
        );
    }
    raw.reserve(key.len() + text.len() + 3);
    raw.push('\t');
    raw.push_str(key);
    raw.push(' ');
    raw.push_str(text);
    raw.push('\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_canonical_integer;

    proptest::proptest! {
        #[test]
        fn canonical_integers_are_what_display_writes(text in "[-+]?[0-9]{1,4}", number: isize) {
            proptest::prop_assert!(is_canonical_integer(number.to_string().as_bytes()));
            if let Ok(parsed) = text.parse::<isize>() {
                proptest::prop_assert_eq!(is_canonical_integer(text.as_bytes()), parsed.to_string() == text);
            }
        }
    }
}
