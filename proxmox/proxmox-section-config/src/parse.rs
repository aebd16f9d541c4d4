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

use std::borrow::Cow;
use std::path::Path;

use anyhow::{Error, bail, format_err};
use serde_json::{Map, Value};

use proxmox_lang::try_block;
use proxmox_schema::Schema;

use crate::{MAX_LINE_LENGTH, SectionConfig, SectionConfigData, SectionConfigPlugin};

/// A section being read. Properties are collected in file order and turned
/// into the JSON object when the section ends (a bulk build of the map is
/// cheaper than one insert per line).
struct OpenSection<'a> {
    plugin: &'a SectionConfigPlugin,
    id: String,
    /// (index into the plugin's property list, or `None` for an additional
    /// property; name; value)
    properties: Vec<(Option<usize>, Cow<'static, str>, Value)>,
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
            // header line of each section, in order (for duplicate id errors)
            let mut header_lines: Vec<usize> = Vec::new();
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
                    if result.sections.contains_key(&section.id) {
                        let index = result.order.iter().position(|id| *id == section.id);
                        let first = index.map(|i| header_lines[i]).unwrap_or_default();
                        bail!(
                            "duplicate section id '{}' (first defined on line {first})",
                            section.id
                        );
                    }
                    header_lines.push(line_no);
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
            properties: Vec::new(),
        })
    }
}

impl OpenSection<'_> {
    fn add_property(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let Some((index, name, schema)) = self.plugin.lookup_index(key) else {
            if self.plugin.properties().additional_properties() {
                check_no_control_chars(key, value)?;
                if self.properties.iter().any(|(_, name, _)| name == key) {
                    bail!("duplicate property '{key}'");
                }
                let value = Value::String(value.to_string());
                self.properties
                    .push((None, Cow::Owned(key.to_string()), value));
                return Ok(());
            }
            bail!("unknown property '{key}'");
        };
        check_no_control_chars(key, value)?;
        let existing = self
            .properties
            .iter_mut()
            .find(|(i, _, _)| *i == Some(index));
        if let Schema::Array(array) = schema {
            let item = array
                .items
                .parse_simple_value(value)
                .map_err(|err| format_err!("property '{key}': {err}"))?;
            match existing {
                Some((_, _, Value::Array(list))) => list.push(item),
                Some(_) => unreachable!("array properties only ever hold arrays"),
                None => self.properties.push((
                    Some(index),
                    Cow::Borrowed(name),
                    Value::Array(vec![item]),
                )),
            }
            return Ok(());
        }
        if existing.is_some() {
            bail!("duplicate property '{key}'");
        }
        let value = schema
            .parse_simple_value(value)
            .map_err(|err| format_err!("property '{key}': {err}"))?;
        self.properties
            .push((Some(index), Cow::Borrowed(name), value));
        Ok(())
    }
}

/// Whether `value` holds a control character (general category Cc).
///
/// A byte scan: Cc is U+0000..U+001F, U+007F and U+0080..U+009F, the last
/// encoded in UTF-8 as C2 80..C2 9F.
fn has_control_char(value: &str) -> bool {
    let bytes = value.as_bytes();
    // a branch-free first pass the compiler can vectorize; only a C2 lead
    // byte needs a second look at the byte after it
    if !bytes.iter().fold(false, |found, b| {
        found | (*b < 0x20) | (*b == 0x7f) | (*b == 0xc2)
    }) {
        return false;
    }
    bytes.iter().enumerate().any(|(i, b)| {
        *b < 0x20 || *b == 0x7f || (*b == 0xc2 && bytes.get(i + 1).is_some_and(|n| *n < 0xa0))
    })
}

fn check_no_control_chars(key: &str, value: &str) -> Result<(), Error> {
    if has_control_char(value) {
        bail!("property '{key}': value contains a control character");
    }
    Ok(())
}

/// Checks required properties, stores the id property and adds the section.
fn finish_section(result: &mut SectionConfigData, section: OpenSection) -> Result<(), Error> {
    let OpenSection {
        plugin,
        id,
        properties,
    } = section;
    for (index, name) in plugin.required_properties() {
        if !properties.iter().any(|(i, _, _)| *i == Some(*index)) {
            bail!("property '{name}' is missing and it is not optional.");
        }
    }
    let id_property = plugin.id_property();
    let mut object: Map<String, Value> = properties
        .into_iter()
        // the header id wins over an `id` line in the body, as upstream
        .filter(|(_, name, _)| Some(name.as_ref()) != id_property)
        .map(|(_, name, value)| (name.into_owned(), value))
        .collect();
    if let Some(id_property) = id_property {
        object.insert(id_property.to_string(), Value::String(id.clone()));
    }
    result.record_order(&id);
    result
        .sections
        .insert(id, (plugin.type_name().to_string(), Value::Object(object)));
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

    proptest::proptest! {
        #[test]
        fn control_char_scan_agrees_with_char_is_control(text in "\\PC{0,8}|.{0,8}|[\\x00-\\u{ff}]{0,8}") {
            proptest::prop_assert_eq!(has_control_char(&text), text.chars().any(char::is_control));
        }
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
