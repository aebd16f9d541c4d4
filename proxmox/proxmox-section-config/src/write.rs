//! Writing section-config text.
//!
//! Layout (pinned by the upstream vectors): `TYPE: ID` then one
//! `\tKEY VALUE` line per property in byte-wise key order, array items one line
//! each, the id property left out, sections separated by one empty line, no
//! blank line at the start or end. An empty config is an empty string.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Error, bail, format_err};
use serde_json::Value;

use proxmox_lang::try_block;

use crate::{SectionConfig, SectionConfigData};

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

    fn write_section(
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
        // the id property must not contradict the section id; it is not written
        let mut checked = section.clone();
        if let (Some(id_property), Some(object)) = (plugin.id_property(), checked.as_object_mut()) {
            object.insert(id_property.to_string(), Value::from(section_id));
        }
        plugin
            .properties()
            .verify_json(&checked)
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

fn write_property(
    raw: &mut String,
    section_id: &str,
    key: &str,
    value: &Value,
) -> Result<(), Error> {
    let text = match value {
        Value::Null => return Ok(()),
        Value::Bool(value) => value.to_string(),
        Value::Number(value) => value.to_string(),
        Value::String(value) => value.clone(),
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
    let _ = writeln!(raw, "\t{key} {text}");
    Ok(())
}
