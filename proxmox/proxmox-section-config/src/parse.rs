//! Parsing section-config text.
//!
//! The grammar, line by line (lines end in LF or CRLF):
//! - outside a section, blank (or whitespace-only) lines are skipped and any
//!   other line must be a header `TYPE: ID` starting with an ASCII letter;
//! - inside a section, a line starting with whitespace is `KEY VALUE` (key and
//!   value trimmed), and a blank line ends the section; anything else is a
//!   syntax error (so a header needs a blank line before it, and `#` comments
//!   are not allowed);
//! - a section ends with a check that every required property is present.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Error, bail, format_err};
use serde_json::{Map, Value};

use proxmox_lang::try_block;
use proxmox_schema::Schema;

use crate::{MAX_LINE_LENGTH, SectionConfig, SectionConfigData, SectionConfigPlugin};

/// A section being read.
struct OpenSection<'a> {
    plugin: &'a SectionConfigPlugin,
    id: String,
    properties: Map<String, Value>,
}

impl SectionConfig {
    /// Parses section-config text. `filename` is only used in error messages.
    ///
    /// # Errors
    ///
    /// `parsing "FILE" failed: line N - MESSAGE`, where MESSAGE names the
    /// problem (unknown section type or property, a value that does not match
    /// its schema, a missing required property, a syntax error, a duplicate
    /// section id). Nothing is returned on error: there is no partial result.
    pub fn parse(&self, filename: impl AsRef<Path>, raw: &str) -> Result<SectionConfigData, Error> {
        let mut line_no = 0usize;
        try_block!({
            let mut result = SectionConfigData::new();
            // section id -> line of its header, to refuse duplicates
            let mut header_lines: HashMap<String, usize> = HashMap::new();
            let mut state: Option<OpenSection> = None;

            for line in raw.lines() {
                line_no += 1;
                if line.len() > MAX_LINE_LENGTH {
                    bail!(
                        "line is too long ({} bytes, at most {MAX_LINE_LENGTH})",
                        line.len()
                    );
                }

                let Some(section) = state.as_mut() else {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let section = self.parse_header(line)?;
                    if let Some(first) = header_lines.insert(section.id.clone(), line_no) {
                        bail!(
                            "duplicate section id '{}' (first defined on line {first})",
                            section.id
                        );
                    }
                    state = Some(section);
                    continue;
                };

                if line.trim().is_empty() {
                    let section = state.take().expect("inside a section");
                    finish_section(&mut result, section)?;
                    continue;
                }

                let Some((key, value)) = parse_section_content(line) else {
                    bail!("syntax error (expected section properties)");
                };
                section.add_property(key, value)?;
            }

            if let Some(section) = state.take() {
                finish_section(&mut result, section)?;
            }
            Ok(result)
        })
        .map_err(|err: Error| format_err!("line {line_no} - {err}"))
        .map_err(|err| format_err!("parsing {:?} failed: {err}", filename.as_ref()))
    }

    fn parse_header(&self, line: &str) -> Result<OpenSection<'_>, Error> {
        let Some((type_name, id)) = parse_section_header(line) else {
            bail!("syntax error (expected header)");
        };
        let Some(plugin) = self.plugins.get(type_name) else {
            bail!("unknown section type '{type_name}'");
        };
        if let Err(err) = self.id_schema.parse_simple_value(id) {
            bail!("syntax error in section identifier: {err}");
        }
        Ok(OpenSection {
            plugin,
            id: id.to_string(),
            properties: Map::new(),
        })
    }
}

impl OpenSection<'_> {
    fn add_property(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let Some((_optional, schema)) = self.plugin.lookup(key) else {
            if self.plugin.properties().additional_properties() {
                check_no_control_chars(key, value)?;
                return self.insert_once(key, Value::String(value.to_string()));
            }
            bail!("unknown property '{key}'");
        };
        check_no_control_chars(key, value)?;
        if let Schema::Array(array) = schema {
            let item = array
                .items
                .parse_simple_value(value)
                .map_err(|err| format_err!("property '{key}': {err}"))?;
            match self
                .properties
                .entry(key)
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                Value::Array(list) => list.push(item),
                _ => unreachable!("array properties only ever hold arrays"),
            }
            return Ok(());
        }
        let value = schema
            .parse_simple_value(value)
            .map_err(|err| format_err!("property '{key}': {err}"))?;
        self.insert_once(key, value)
    }

    fn insert_once(&mut self, key: &str, value: Value) -> Result<(), Error> {
        if self.properties.contains_key(key) {
            bail!("duplicate property '{key}'");
        }
        self.properties.insert(key.to_string(), value);
        Ok(())
    }
}

fn check_no_control_chars(key: &str, value: &str) -> Result<(), Error> {
    if value.chars().any(char::is_control) {
        bail!("property '{key}': value contains a control character");
    }
    Ok(())
}

/// Checks required properties, stores the id property and adds the section.
fn finish_section(result: &mut SectionConfigData, section: OpenSection) -> Result<(), Error> {
    let OpenSection {
        plugin,
        id,
        mut properties,
    } = section;
    for name in plugin.required_properties() {
        if !properties.contains_key(name) {
            bail!("property '{name}' is missing and it is not optional.");
        }
    }
    if let Some(id_property) = plugin.id_property() {
        // the header id wins over an `id` line in the body, as upstream
        properties.insert(id_property.to_string(), Value::String(id.clone()));
    }
    result.record_order(&id);
    result.sections.insert(
        id,
        (plugin.type_name().to_string(), Value::Object(properties)),
    );
    Ok(())
}

/// `TYPE: ID`, both trimmed; the line must start with an ASCII letter.
fn parse_section_header(line: &str) -> Option<(&str, &str)> {
    if !line.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let (type_name, id) = line.split_once(':')?;
    let type_name = type_name.trim();
    if type_name.is_empty() {
        return None;
    }
    Some((type_name, id.trim()))
}

/// `<whitespace>KEY<whitespace>VALUE`, key and value trimmed. A key without
/// any whitespace after it is a syntax error, as upstream.
fn parse_section_content(line: &str) -> Option<(&str, &str)> {
    if !line.starts_with(char::is_whitespace) {
        return None;
    }
    let (key, value) = line.trim_start().split_once(char::is_whitespace)?;
    let key = key.trim();
    if key.is_empty() {
        return None;
    }
    Some((key, value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_needs_letter_colon_and_type() {
        assert_eq!(parse_section_header("sync-key: a"), Some(("sync-key", "a")));
        assert_eq!(parse_section_header("t:  b \t"), Some(("t", "b")));
        assert_eq!(parse_section_header(" t: b"), None);
        assert_eq!(parse_section_header("# t: b"), None);
        assert_eq!(parse_section_header("1t: b"), None);
        assert_eq!(parse_section_header("tb"), None);
    }

    #[test]
    fn content_needs_leading_whitespace_and_a_value_separator() {
        assert_eq!(parse_section_content("\tkdf none"), Some(("kdf", "none")));
        assert_eq!(
            parse_section_content("    hint a  b   "),
            Some(("hint", "a  b"))
        );
        assert_eq!(parse_section_content("\thint "), Some(("hint", "")));
        assert_eq!(parse_section_content("\tkdf"), None);
        assert_eq!(parse_section_content("kdf none"), None);
    }
}
