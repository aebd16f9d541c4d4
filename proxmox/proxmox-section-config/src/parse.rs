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
//!
//! [`SectionConfig::parse_with`] is the parser: it validates each section
//! against its plugin and hands it to a callback as borrowed text, so a
//! caller that wants typed values never builds JSON. [`SectionConfig::parse`]
//! is that callback building upstream's [`SectionConfigData`].

use std::path::Path;

use anyhow::{Error, bail, format_err};
use serde_json::{Map, Value};

use proxmox_lang::try_block;
use proxmox_schema::{Schema, parse_boolean};

use crate::{MAX_LINE_LENGTH, SectionConfig, SectionConfigData, SectionConfigPlugin};

/// A typical section's size in bytes, to size tables before parsing.
pub const ESTIMATED_SECTION_SIZE: usize = 200;

/// One section as read from the text, validated against its plugin: every
/// property known (or allowed as additional), every value valid for its
/// schema, no duplicates, every required property present.
pub struct SectionRef<'a> {
    /// The plugin of its type.
    pub plugin: &'a SectionConfigPlugin,
    /// The section id from the header.
    pub id: &'a str,
    /// Line number of the header.
    pub line: usize,
    /// The properties in file order; an array property appears once per
    /// line.
    pub properties: &'a [PropertyRef<'a>],
    /// The section's text: from the start of its header line to the end
    /// of its last line (without that line's end).
    pub text: &'a str,
}

/// One property line of a [`SectionRef`].
#[derive(Clone, Copy, Debug)]
pub struct PropertyRef<'a> {
    /// The key.
    pub key: &'a str,
    /// The value text, trimmed, valid for `schema`.
    pub value: &'a str,
    /// The value's schema (the item schema for an array property), `None`
    /// for an additional property.
    pub schema: Option<&'static Schema>,
    /// Whether the property is an array (one line per item).
    pub array: bool,
}

impl SectionRef<'_> {
    /// The value of property `key` (the first one, for arrays).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value)
    }
}

/// A section being read.
struct OpenSection<'a> {
    plugin: &'a SectionConfigPlugin,
    id: &'a str,
    line: usize,
    /// Byte offset of the header line in the text.
    start: usize,
    /// Byte offset of the end of the last line read.
    end: usize,
    /// Whether values are checked (off when text is read again).
    validate: bool,
    properties: Vec<PropertyRef<'a>>,
    /// Property list index of each entry of `properties` (`usize::MAX` for
    /// additional properties), for duplicate and required checks.
    indices: Vec<usize>,
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
        let mut result = SectionConfigData::new();
        self.parse_with(filename, raw, |section| {
            let object = section_to_json(&section);
            result.record_order(section.id);
            result.sections.insert(
                section.id.to_string(),
                (
                    section.plugin.type_name().to_string(),
                    Value::Object(object),
                ),
            );
            Ok(())
        })?;
        Ok(result)
    }

    /// Parses section-config text, calling `handle` with each section once it
    /// is complete and valid, in file order. An error from `handle` is
    /// reported like a parse error, at the line that ended the section.
    ///
    /// Section ids are checked against the id schema and must be unique.
    pub fn parse_with<F>(
        &self,
        filename: impl AsRef<Path>,
        raw: &str,
        handle: F,
    ) -> Result<(), Error>
    where
        F: FnMut(SectionRef<'_>) -> Result<(), Error>,
    {
        self.parse_inner(filename.as_ref(), raw, true, handle)
    }

    /// Reads the sections of text that [`SectionConfig::parse_with`] or
    /// [`SectionConfig::scan`] of this config has accepted, without
    /// checking ids and values again: each [`SectionRef`] is the one the
    /// parse gave. For text that was not accepted, properties may hold
    /// values their schemas refuse: never call it on other text.
    pub fn read_validated<F>(&self, text: &str, handle: F) -> Result<(), Error>
    where
        F: FnMut(SectionRef<'_>) -> Result<(), Error>,
    {
        let mut handle = handle;
        let mut properties = Vec::new();
        if let Some((plugin, id)) = crate::scan::fast_read(self, text, &mut properties) {
            return handle(SectionRef {
                plugin,
                id,
                line: 1,
                properties: &properties,
                text,
            });
        }
        self.parse_inner(Path::new("(validated text)"), text, false, handle)
    }

    fn parse_inner<F>(
        &self,
        filename: &Path,
        raw: &str,
        validate: bool,
        mut handle: F,
    ) -> Result<(), Error>
    where
        F: FnMut(SectionRef<'_>) -> Result<(), Error>,
    {
        let mut line_no = 0usize;
        try_block!({
            // id -> header line of every section seen, to refuse duplicates
            // (FxHash: the ids come from a config file, not from the network)
            let mut seen: rustc_hash::FxHashMap<&str, usize> = Default::default();
            seen.reserve(raw.len() / ESTIMATED_SECTION_SIZE);
            let mut state: Option<OpenSection> = None;
            // the property lists of the previous section, reused
            let mut spare = (Vec::new(), Vec::new());
            // the plugin of the previous section: files are mostly of one type
            let mut last_plugin: Option<&SectionConfigPlugin> = None;

            for line in lines(raw) {
                line_no += 1;
                if line.len() > MAX_LINE_LENGTH {
                    bail!(
                        "line is too long ({} bytes, at most {MAX_LINE_LENGTH})",
                        line.len()
                    );
                }

                let Some(section) = state.as_mut() else {
                    if is_blank(line) {
                        continue;
                    }
                    let mut section = self.parse_header(
                        line,
                        line_no,
                        std::mem::take(&mut spare),
                        last_plugin,
                        validate,
                    )?;
                    section.start = offset_in(raw, line);
                    section.end = section.start + line.len();
                    last_plugin = Some(section.plugin);
                    if validate && let Some(first) = seen.insert(section.id, line_no) {
                        bail!(
                            "duplicate section id '{}' (first defined on line {first})",
                            section.id
                        );
                    }
                    state = Some(section);
                    continue;
                };

                if is_blank(line) {
                    let section = state.take().expect("inside a section");
                    spare = section.finish(raw, &mut handle)?;
                    continue;
                }

                let Some((key, value)) = parse_section_content(line) else {
                    bail!("syntax error (expected section properties)");
                };
                section.add_property(key, value)?;
                section.end = offset_in(raw, line) + line.len();
            }

            if let Some(section) = state.take() {
                section.finish(raw, &mut handle)?;
            }
            Ok(())
        })
        .map_err(|err: Error| format_err!("line {line_no} - {err}"))
        .map_err(|err| format_err!("parsing {filename:?} failed: {err}"))
    }

    fn parse_header<'a>(
        &'a self,
        line: &'a str,
        line_no: usize,
        (mut properties, mut indices): (Vec<PropertyRef<'a>>, Vec<usize>),
        last_plugin: Option<&'a SectionConfigPlugin>,
        validate: bool,
    ) -> Result<OpenSection<'a>, Error> {
        let Some((type_name, id)) = parse_section_header(line) else {
            bail!("syntax error (expected header)");
        };
        let plugin = match last_plugin {
            Some(plugin) if plugin.type_name() == type_name => plugin,
            _ => match self.plugins.get(type_name) {
                Some(plugin) => plugin,
                None => bail!("unknown section type '{type_name}'"),
            },
        };
        if validate && let Err(err) = self.id_schema.check_simple_value(id) {
            bail!("syntax error in section identifier: {err}");
        }
        properties.clear();
        properties.reserve(plugin.property_count());
        indices.clear();
        indices.reserve(plugin.property_count());
        Ok(OpenSection {
            plugin,
            id,
            line: line_no,
            start: 0,
            end: 0,
            validate,
            properties,
            indices,
        })
    }
}

impl<'a> OpenSection<'a> {
    fn add_property(&mut self, key: &'a str, value: &'a str) -> Result<(), Error> {
        // look after the previous property first (additional ones are MAX)
        let from = self.indices.last().map_or(0, |last| last.wrapping_add(1));
        let Some((index, schema)) = self.plugin.lookup_index(key, from) else {
            if self.plugin.properties().additional_properties() {
                if self.validate {
                    check_no_control_chars(key, value)?;
                }
                if self.properties.iter().any(|p| p.key == key) {
                    bail!("duplicate property '{key}'");
                }
                self.properties.push(PropertyRef {
                    key,
                    value,
                    schema: None,
                    array: false,
                });
                self.indices.push(usize::MAX);
                return Ok(());
            }
            bail!("unknown property '{key}'");
        };
        let (schema, array) = match schema {
            Schema::Array(array) => (array.items, true),
            schema => {
                if self.indices.contains(&index) {
                    bail!("duplicate property '{key}'");
                }
                (schema, false)
            }
        };
        if self.validate {
            // the schema first, so a typed value reads as upstream's error
            schema
                .check_simple_value(value)
                .map_err(|err| format_err!("property '{key}': {err}"))?;
            check_no_control_chars(key, value)?;
        }
        self.properties.push(PropertyRef {
            key,
            value,
            schema: Some(schema),
            array,
        });
        self.indices.push(index);
        Ok(())
    }

    /// Checks required properties and hands the section on; returns the
    /// property lists for reuse.
    fn finish<F>(
        self,
        raw: &'a str,
        handle: &mut F,
    ) -> Result<(Vec<PropertyRef<'a>>, Vec<usize>), Error>
    where
        F: FnMut(SectionRef<'_>) -> Result<(), Error>,
    {
        for (index, name) in self.plugin.required_properties() {
            if !self.indices.contains(index) {
                bail!("property '{name}' is missing and it is not optional.");
            }
        }
        let id_property = self.plugin.id_property();
        let mut properties = self.properties;
        // the header id wins over an `id` line in the body, as upstream
        if let Some(id_property) = id_property {
            properties.retain(|p| p.key != id_property);
        }
        handle(SectionRef {
            plugin: self.plugin,
            id: self.id,
            line: self.line,
            properties: &properties,
            text: &raw[self.start..self.end],
        })?;
        Ok((properties, self.indices))
    }
}

/// The JSON object of a validated section, as upstream's parser builds it:
/// typed values, arrays for array properties, the id in the id property.
pub(crate) fn section_to_json(section: &SectionRef) -> Map<String, Value> {
    let mut pairs: Vec<(String, Value)> = Vec::with_capacity(section.properties.len() + 1);
    for property in section.properties {
        let value = match property.schema {
            Some(schema) => checked_value(schema, property.value),
            None => Value::String(property.value.to_string()),
        };
        if property.array {
            match pairs.iter_mut().find(|(name, _)| name == property.key) {
                Some((_, Value::Array(list))) => list.push(value),
                _ => pairs.push((property.key.to_string(), Value::Array(vec![value]))),
            }
        } else {
            pairs.push((property.key.to_string(), value));
        }
    }
    if let Some(id_property) = section.plugin.id_property() {
        pairs.push((
            id_property.to_string(),
            Value::String(section.id.to_string()),
        ));
    }
    // a bulk build of the map is cheaper than one insert per property
    pairs.into_iter().collect()
}

/// The JSON value of text already checked against `schema`.
fn checked_value(schema: &Schema, text: &str) -> Value {
    match schema {
        Schema::Boolean(_) => Value::Bool(parse_boolean(text).unwrap_or_default()),
        Schema::Integer(_) => text
            .parse::<isize>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(text.to_string())),
        Schema::Number(_) => schema
            .parse_simple_value(text)
            .unwrap_or_else(|_| Value::String(text.to_string())),
        _ => Value::String(text.to_string()),
    }
}

/// Where `part` (a slice of `raw`) starts in `raw`.
fn offset_in(raw: &str, part: &str) -> usize {
    part.as_ptr() as usize - raw.as_ptr() as usize
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

/// Whether `line` is empty or only whitespace (`line.trim().is_empty()`),
/// decided at the first byte for nearly every line: only a line that
/// starts with whitespace and holds non-ASCII text takes the `char` path.
fn is_blank(line: &str) -> bool {
    for byte in line.bytes() {
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => {}
            0x80.. => return line.trim().is_empty(),
            _ => return false,
        }
    }
    true
}

/// The lines of `raw` as [`str::lines`] splits them (`\n` or `\r\n`, the
/// last line ending optional), with a vectorized search for the `\n`.
fn lines(raw: &str) -> impl Iterator<Item = &str> {
    let mut rest = raw;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(end) => {
                let line = &rest[..end];
                rest = &rest[end + 1..];
                Some(line.strip_suffix('\r').unwrap_or(line))
            }
            None => Some(std::mem::take(&mut rest)),
        }
    })
}

/// `TYPE: ID`, both trimmed; the line must start with a letter (Unicode
/// alphabetic, as upstream). An ASCII line is read by bytes.
fn parse_section_header(line: &str) -> Option<(&str, &str)> {
    if !line.is_ascii() {
        return parse_section_header_unicode(line);
    }
    if !line.as_bytes().first()?.is_ascii_alphabetic() {
        return None;
    }
    // the type name starts with a letter: never empty
    let colon = memchr::memchr(b':', line.as_bytes())?;
    Some((trim_space(&line[..colon]), trim_space(&line[colon + 1..])))
}

/// `text.trim()` for ASCII text.
fn trim_space(text: &str) -> &str {
    let bytes = text.as_bytes();
    let is_text = |c: &u8| !ASCII_SPACE[usize::from(*c)];
    let Some(start) = bytes.iter().position(is_text) else {
        return "";
    };
    let end = bytes.iter().rposition(is_text).map_or(start, |end| end + 1);
    &text[start..end]
}

fn parse_section_header_unicode(line: &str) -> Option<(&str, &str)> {
    if !line.starts_with(char::is_alphabetic) {
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
///
/// Lines are nearly always ASCII, which a byte scan handles; other lines go
/// through the `char` based version (Unicode whitespace).
fn parse_section_content(line: &str) -> Option<(&str, &str)> {
    if !line.is_ascii() {
        return parse_section_content_unicode(line);
    }
    let bytes = line.as_bytes();
    let is_space = |c: &u8| ASCII_SPACE[usize::from(*c)];
    if !bytes.first().is_some_and(is_space) {
        return None;
    }
    let key_start = bytes.iter().position(|c| !is_space(c))?;
    let key_end = key_start + bytes[key_start..].iter().position(is_space)?;
    let rest = &bytes[key_end..];
    let value_start = rest.iter().position(|c| !is_space(c)).unwrap_or(rest.len());
    let value_end = rest
        .iter()
        .rposition(|c| !is_space(c))
        .map_or(value_start, |p| p + 1);
    Some((
        &line[key_start..key_end],
        &line[key_end + value_start..key_end + value_end],
    ))
}

/// The ASCII bytes `char::is_whitespace` accepts (`u8::is_ascii_whitespace`
/// plus vertical tab), as a table: one load per byte of every property line.
const ASCII_SPACE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 128 {
        table[i] = (i as u8).is_ascii_whitespace() || i == 0x0b;
        i += 1;
    }
    table
};

fn parse_section_content_unicode(line: &str) -> Option<(&str, &str)> {
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

    proptest::proptest! {
        #[test]
        fn ascii_header_scan_agrees_with_the_unicode_one(line in "[a-zA-Z1: \t\x0b\x0c\r._-]{0,12}") {
            proptest::prop_assert_eq!(parse_section_header(&line), parse_section_header_unicode(&line));
        }
    }

    proptest::proptest! {
        #[test]
        fn is_blank_agrees_with_trim(line in "[ \t\x0b\x0c\r\u{a0}\u{2003}a\u{e9}]{0,6}") {
            proptest::prop_assert_eq!(is_blank(&line), line.trim().is_empty());
        }
    }

    proptest::proptest! {
        #[test]
        fn lines_split_as_str_lines(text in "[a\r\n]{0,12}") {
            proptest::prop_assert_eq!(lines(&text).collect::<Vec<_>>(), text.lines().collect::<Vec<_>>());
        }
    }

    proptest::proptest! {
        #[test]
        fn ascii_content_scan_agrees_with_the_unicode_one(line in "[ \t\x0b\x0c\ra-z:=./ -]{0,24}") {
            proptest::prop_assert_eq!(parse_section_content(&line), parse_section_content_unicode(&line));
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
