//! [`KeySections`]: `encryption-keys.cfg` as writers edit it.
//!
//! Store, archive, unarchive and delete change one section and write every
//! other one back unchanged. Upstream parses the file into a JSON object
//! per key and renders them all again; this keeps each section as the text
//! [`SectionConfig::write`](proxmox_section_config::SectionConfig::write)
//! would give for it (one buffer for all of them) plus its id and
//! fingerprint, and builds a typed entry only for the section an operation
//! touches. The file written is byte for byte what the generic
//! parse-and-write gives (tests and the `section_config` fuzz target compare
//! the two), at a fraction of the memory: about 300 bytes per key instead of
//! about 1 KB.

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Error, bail, format_err};

use proxmox_schema::Schema;
use proxmox_section_config::{Scanned, SectionSpan, is_canonical_integer};

use pbs_api_types::{CryptKey, Fingerprint};

use crate::KeystoreError;
use crate::encryption_keys::{CONFIG, ENCRYPTION_KEYS_CFG_TYPE_ID};

/// The sections of `encryption-keys.cfg`, in file order, as canonical text.
#[derive(Debug, Default)]
pub struct KeySections {
    /// The file, for errors.
    path: PathBuf,
    /// Canonical text of the sections as read, one after the other, and
    /// of sections added since, appended. Not compacted while edited: a
    /// replaced or removed section's text stays until
    /// [`KeySections::text_to_write`] makes this the text of the sections
    /// again.
    text: String,
    sections: Vec<Section>,
}

#[derive(Debug, PartialEq)]
struct Section {
    id: Range<usize>,
    body: Body,
    /// Where the stored fingerprint's text is in the body, for the
    /// duplicate check of a store.
    fingerprint: Option<Range<usize>>,
}

/// Where a section's text is.
#[derive(Debug, PartialEq)]
enum Body {
    /// In [`KeySections::text`]: as read, or appended by [`KeySections::set`].
    Read(Range<usize>),
    /// Written by an operation (the id is at the start of the header).
    New(String),
}

impl KeySections {
    /// Parses config text (`path` only names the file in errors). Accepts
    /// and refuses exactly what the generic parse does, with its messages.
    ///
    /// The text is validated by [`SectionConfig::scan_as_written`] (the
    /// scan the readers' [`KeyIndex`](crate::KeyIndex) reads with); where
    /// it is exactly what the generic write gives for it (as every writer
    /// of the file, ours and upstream's, leaves it), it is kept as it is,
    /// each section a range of it. The scan tells so on its way for text
    /// of printable ASCII; other text is compared section by section
    /// ([`sections_as_written`]: non-ASCII or empty values the write keeps).
    /// Any other text (hand-edited: another order, `+05`, CRLF, extra blank
    /// lines) has every section rendered again from the generic parse.
    ///
    /// [`SectionConfig::scan_as_written`]: proxmox_section_config::SectionConfig::scan_as_written
    pub fn parse(path: &Path, raw: impl Into<String>) -> Result<Self, Error> {
        let raw = raw.into();
        let sections = kept_sections(path, &raw)?;
        match sections {
            Some(sections) => Ok(KeySections {
                path: path.to_path_buf(),
                text: raw,
                sections,
            }),
            None => Self::parse_rendering(path, &raw),
        }
    }

    /// [`KeySections::parse`] of text that is not as written: each section
    /// rendered as the generic write gives it.
    fn parse_rendering(path: &Path, raw: &str) -> Result<Self, Error> {
        let mut sections = KeySections {
            path: path.to_path_buf(),
            text: String::with_capacity(raw.len()),
            sections: Vec::with_capacity(
                raw.len() / proxmox_section_config::ESTIMATED_SECTION_SIZE,
            ),
        };
        CONFIG.parse_with(path, raw, |section| {
            let start = sections.text.len();
            CONFIG.write_section_ref(&mut sections.text, &section)?;
            // write_section_ref puts a separator before every section but the first
            let start = start + usize::from(start > 0);
            let id_start = start + section.plugin.type_name().len() + 2;
            let fingerprint = fingerprint_range(&sections.text[start..]);
            sections.sections.push(Section {
                id: id_start..id_start + section.id.len(),
                body: Body::Read(start..sections.text.len()),
                fingerprint,
            });
            Ok(())
        })?;
        Ok(sections)
    }

    /// Number of sections.
    pub fn len(&self) -> usize {
        self.sections.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }

    fn id_of<'a>(&'a self, section: &'a Section) -> &'a str {
        match &section.body {
            Body::Read(_) => &self.text[section.id.clone()],
            Body::New(text) => &text[section.id.clone()],
        }
    }

    fn body_of<'a>(&'a self, section: &'a Section) -> &'a str {
        match &section.body {
            Body::Read(range) => &self.text[range.clone()],
            Body::New(text) => text,
        }
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.sections
            .iter()
            .position(|section| self.has_id(section, id))
    }

    /// Whether `section` is of `id`.
    fn has_id(&self, section: &Section, id: &str) -> bool {
        self.parts_of(section).0 == id.as_bytes()
    }

    /// Whether `section` holds the fingerprint whose text is `signature`
    /// ([`Fingerprint::signature`]).
    fn has_fingerprint(&self, section: &Section, signature: &str) -> bool {
        section.fingerprint.as_ref().is_some_and(|range| {
            is_fingerprint_text(
                &self.parts_of(section).1[range.clone()],
                signature.as_bytes(),
            )
        })
    }

    /// A section's id and text, as bytes (no character boundaries checked:
    /// the lookups of every section for a store compare bytes only).
    fn parts_of<'a>(&'a self, section: &'a Section) -> (&'a [u8], &'a [u8]) {
        match &section.body {
            Body::Read(range) => {
                let text = self.text.as_bytes();
                (&text[section.id.clone()], &text[range.clone()])
            }
            Body::New(text) => (&text.as_bytes()[section.id.clone()], text.as_bytes()),
        }
    }

    /// Whether a key `id` is in the config.
    pub fn contains(&self, id: &str) -> bool {
        self.position(id).is_some()
    }

    /// The entry of `id`.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::NotFound`], or why the entry is invalid (an unknown
    /// kdf, say), naming the id.
    pub fn entry(&self, id: &str) -> Result<CryptKey, Error> {
        let Some(position) = self.position(id) else {
            return Err(KeystoreError::NotFound { id: id.to_string() }.into());
        };
        let body = self.body_of(&self.sections[position]);
        let mut entry = None;
        CONFIG.parse_with(&self.path, body, |section| {
            entry = Some(section.deserialize::<CryptKey>());
            Ok(())
        })?;
        entry
            .ok_or_else(|| format_err!("internal error - no section for '{id}'"))?
            .map_err(|err| format_err!("invalid config entry for encryption key '{id}' - {err}"))
    }

    /// The id of the key stored with `fingerprint`, if any.
    pub fn find_fingerprint(&self, fingerprint: &Fingerprint) -> Option<&str> {
        let signature = fingerprint.signature();
        self.sections
            .iter()
            .find(|section| self.has_fingerprint(section, &signature))
            .map(|section| self.id_of(section))
    }

    /// What a new key `id` with `fingerprint` would be stored over, in the
    /// order a store refuses them: a section of `id`, else the first one
    /// holding `fingerprint` ([`KeySections::find_fingerprint`]). One pass
    /// over the sections for both checks of a store.
    pub fn taken_by(&self, id: &str, fingerprint: &Fingerprint) -> Option<KeyTaken<'_>> {
        let signature = fingerprint.signature();
        let mut fingerprint_taken_by = None;
        for section in &self.sections {
            if self.has_id(section, id) {
                return Some(KeyTaken::Id);
            }
            if fingerprint_taken_by.is_none() && self.has_fingerprint(section, &signature) {
                fingerprint_taken_by = Some(KeyTaken::Fingerprint(self.id_of(section)));
            }
        }
        fingerprint_taken_by
    }

    /// Sets the entry of `entry.id`: replaced in place, or added at the end
    /// (appended to the text: a store into a file as read then writes its
    /// text without a copy, see [`KeySections::text_to_write`]).
    /// The entry is verified against the schema as a write verifies it.
    pub fn set(&mut self, entry: &CryptKey) -> Result<(), Error> {
        let text = render_entry(entry)?;
        let id_start = ENCRYPTION_KEYS_CFG_TYPE_ID.len() + 2;
        let fingerprint = fingerprint_range(&text);
        match self.position(&entry.id) {
            Some(position) => {
                self.sections[position] = Section {
                    id: id_start..id_start + entry.id.len(),
                    fingerprint,
                    body: Body::New(text),
                }
            }
            None => self.push(&text, id_start..id_start + entry.id.len(), fingerprint),
        }
        Ok(())
    }

    /// Adds the entry of a new `entry.id` at the end, as [`KeySections::set`]
    /// does, without looking for it first: the caller found no section of
    /// it ([`KeySections::taken_by`]).
    pub fn add(&mut self, entry: &CryptKey) -> Result<(), Error> {
        debug_assert!(
            self.position(&entry.id).is_none(),
            "a second section of an id"
        );
        let text = render_entry(entry)?;
        let id_start = ENCRYPTION_KEYS_CFG_TYPE_ID.len() + 2;
        let fingerprint = fingerprint_range(&text);
        self.push(&text, id_start..id_start + entry.id.len(), fingerprint);
        Ok(())
    }

    /// Appends a section's `text` (its id and fingerprint at those places
    /// in it) to the text and the sections.
    fn push(&mut self, text: &str, id: Range<usize>, fingerprint: Option<Range<usize>>) {
        let separator = usize::from(!self.text.is_empty());
        // one write, one section: no room to spare
        self.text.reserve_exact(separator + text.len());
        if separator > 0 {
            self.text.push('\n');
        }
        let start = self.text.len();
        self.text.push_str(text);
        self.sections.push(Section {
            id: start + id.start..start + id.end,
            fingerprint,
            body: Body::Read(start..self.text.len()),
        });
    }

    /// Removes the entry of `id`; returns whether there was one.
    pub fn remove(&mut self, id: &str) -> bool {
        match self.position(id) {
            Some(position) => {
                self.sections.remove(position);
                true
            }
            None => false,
        }
    }

    /// The config text, as [`SectionConfig::write`](proxmox_section_config::SectionConfig::write)
    /// writes it.
    pub fn render(&self) -> String {
        let mut raw = String::with_capacity(self.text.len() + 512);
        for section in &self.sections {
            if !raw.is_empty() {
                raw.push('\n');
            }
            raw.push_str(self.body_of(section));
        }
        raw
    }

    /// The config text to write: [`KeySections::render`]'s, made this
    /// value's own text (each section a range of it). Where the sections
    /// are their text already (as read, new ones appended: a store), that
    /// is the text as it is, without a copy; otherwise (a section replaced
    /// or removed) it is rendered into a new text, and the old one freed.
    pub fn text_to_write(&mut self) -> &str {
        if !self.text_is_sections() {
            let text = self.render();
            let mut start = 0;
            for section in &mut self.sections {
                let (old_start, len) = match &section.body {
                    Body::Read(range) => (range.start, range.len()),
                    Body::New(text) => (0, text.len()),
                };
                // the id's place from the body's start, then in the new text
                section.id =
                    start + section.id.start - old_start..start + section.id.end - old_start;
                section.body = Body::Read(start..start + len);
                start += len + 1;
            }
            self.text = text;
        }
        &self.text
    }

    /// Whether [`KeySections::text`] is exactly the text of the sections:
    /// each a range of it, in order, one line feed between them.
    fn text_is_sections(&self) -> bool {
        let mut next = 0;
        for section in &self.sections {
            match &section.body {
                Body::Read(range) if range.start == next => next = range.end + 1,
                _ => return false,
            }
        }
        // nothing after the last one (no section: no text)
        self.text.len() == next.saturating_sub(1)
    }

    /// Whether `raw` is exactly the text [`KeySections::render`] gives,
    /// compared without rendering.
    pub fn is_text_of(&self, raw: &str) -> bool {
        let mut rest = raw.as_bytes();
        for (i, section) in self.sections.iter().enumerate() {
            if i > 0 {
                match rest.split_first() {
                    Some((b'\n', tail)) => rest = tail,
                    _ => return false,
                }
            }
            match rest.strip_prefix(self.body_of(section).as_bytes()) {
                Some(tail) => rest = tail,
                None => return false,
            }
        }
        rest.is_empty()
    }

    /// The ids, in file order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|section| self.id_of(section))
    }
}

/// What a new key would be stored over ([`KeySections::taken_by`]).
#[derive(Debug, PartialEq, Eq)]
pub enum KeyTaken<'a> {
    /// A section of its id.
    Id,
    /// The section of this id holds its fingerprint.
    Fingerprint(&'a str),
}

/// The section text of `entry`, verified against the schema as a write
/// verifies it.
fn render_entry(entry: &CryptKey) -> Result<String, Error> {
    let value = serde_json::to_value(entry)?;
    let mut text = String::new();
    CONFIG.write_section(&mut text, ENCRYPTION_KEYS_CFG_TYPE_ID, &entry.id, &value)?;
    Ok(text)
}

/// Whether the `stored` text of a fingerprint is `signature` (its text as
/// [`Fingerprint::signature`] gives it).
///
/// The schema admits only "aa:bb:..." in either case: equal bytes are equal
/// text, ignoring case, and no fingerprint needs parsing. The first eight
/// bytes tell nearly every other key apart and are compared at once, each
/// with bit 0x20 set: that never tells apart two bytes equal ignoring ASCII
/// case (they differ in that bit only), so it only filters.
fn is_fingerprint_text(stored: &[u8], signature: &[u8]) -> bool {
    let folded_word = |text: &[u8]| {
        let word: [u8; 8] = text[..8].try_into().expect("eight bytes");
        u64::from_ne_bytes(word) | 0x2020_2020_2020_2020
    };
    stored.len() == signature.len()
        && (stored.len() < 8 || folded_word(stored) == folded_word(signature))
        && stored.eq_ignore_ascii_case(signature)
}

/// The property whose value a store compares with the new key's
/// ([`KeySections::find_fingerprint`]).
const FINGERPRINT: &str = "fingerprint";

/// The value range of the `fingerprint` line in a section's canonical text.
fn fingerprint_range(body: &str) -> Option<Range<usize>> {
    // the name where a line `<tab>NAME VALUE` has it
    let start = body.match_indices(FINGERPRINT).find_map(|(at, _)| {
        let value = at + FINGERPRINT.len() + 1;
        (body[..at].ends_with("\n\t") && body.as_bytes().get(value - 1) == Some(&b' '))
            .then_some(value)
    })?;
    let end = body[start..]
        .find('\n')
        .map_or(body.len(), |end| start + end);
    Some(start..end)
}

/// The sections of valid `text` as ranges of it, where it is what the
/// generic write gives for them (the scan tells so, or
/// [`sections_as_written`] finds it); `None` for any other text.
///
/// # Errors
///
/// The generic parse's, word for word, where it refuses `text`.
fn kept_sections(path: &Path, text: &str) -> Result<Option<Vec<Section>>, Error> {
    Ok(match CONFIG.scan_as_written(path, text, FINGERPRINT)? {
        Scanned::AsWritten { sections, values } => sections_told(text, &sections, &values),
        Scanned::Sections(spans) => sections_as_written(text, &spans),
    })
}

/// The sections of a text the scan told to be the generic write's own
/// (`spans` its sections, `fingerprints` where each one's fingerprint is)
/// as ranges of it; `None` if one is not a key's.
fn sections_told(
    text: &str,
    spans: &[SectionSpan],
    fingerprints: &[Option<Range<usize>>],
) -> Option<Vec<Section>> {
    let plugin = CONFIG.plugins().get(ENCRYPTION_KEYS_CFG_TYPE_ID)?;
    spans
        .iter()
        .zip(fingerprints)
        .map(|(span, fingerprint)| {
            if !std::ptr::eq(span.plugin, plugin) {
                return None;
            }
            let start = offset_in(text, span.text);
            let id_start = offset_in(text, span.id);
            Some(Section {
                id: id_start..id_start + span.id.len(),
                // with its last line's line feed, which the write gives
                body: Body::Read(start..start + span.text.len() + 1),
                fingerprint: fingerprint
                    .as_ref()
                    .map(|value| value.start - start..value.end - start),
            })
        })
        .collect()
}

/// The sections of validated `text` (`spans` are its sections as
/// [`SectionConfig::scan`](proxmox_section_config::SectionConfig::scan)
/// found them) as ranges of it, if every byte of it is what
/// [`SectionConfig::write`](proxmox_section_config::SectionConfig::write)
/// would write for them: each section `TYPE: ID` and one `\tKEY VALUE`
/// line per property, every line ended by a line feed, keys in byte order
/// (the id property left out), values as parsed (nothing the parser trims
/// around them) and integers in canonical form; one blank line between
/// sections, none before the first or after the last. `None` for any
/// other text.
fn sections_as_written(text: &str, spans: &[SectionSpan]) -> Option<Vec<Section>> {
    let plugin = CONFIG.plugins().get(ENCRYPTION_KEYS_CFG_TYPE_ID)?;
    // the properties written from their text (strings, integers), in the
    // writer's order, and whether each is an integer
    let mut properties: Vec<(&str, bool)> = plugin
        .properties()
        .properties()
        // a name the parser can read as a key: no whitespace in it
        .filter(|(name, _, _)| {
            Some(*name) != plugin.id_property() && !name.contains(char::is_whitespace)
        })
        .filter_map(|(name, _, schema)| match schema {
            Schema::String(_) => Some((*name, false)),
            Schema::Integer(_) => Some((*name, true)),
            _ => None,
        })
        .collect();
    properties.sort_unstable();
    let type_name = ENCRYPTION_KEYS_CFG_TYPE_ID;
    let bytes = text.as_bytes();
    let mut sections = Vec::with_capacity(spans.len());
    // where the next section starts, as written
    let mut next_start = 0;
    for span in spans {
        let start = offset_in(text, span.text);
        let id_start = offset_in(text, span.id);
        let id_end = id_start + span.id.len();
        // the section's last line end: the write ends every line
        let end = start + span.text.len();
        if start != next_start
            || span.plugin.type_name() != type_name
            || bytes.get(end) != Some(&b'\n')
            || !text[start..].starts_with(type_name)
            || bytes.get(start + type_name.len()..id_start) != Some(b": ")
            // the header ends with the id (id_end <= end)
            || bytes[id_end] != b'\n'
        {
            return None;
        }
        let mut fingerprint = None;
        // the next property's index in `properties`
        let mut next = 0;
        let mut line_start = id_end + 1;
        while line_start <= end {
            // found: bytes[end] is a line end
            let line_end = line_start + memchr::memchr(b'\n', &bytes[line_start..=end])?;
            let (&b'\t', line) = bytes[line_start..line_end].split_first()? else {
                return None;
            };
            // the key: the next property (in the writer's order) the line
            // starts with, followed by a space
            let found = next
                + properties[next..].iter().position(|(name, _)| {
                    line.get(name.len()) == Some(&b' ') && line.starts_with(name.as_bytes())
                })?;
            let (name, integer) = properties[found];
            next = found + 1;
            let value_start = line_start + 2 + name.len();
            let value = &text[value_start..line_end];
            if !is_written_value(value, integer) {
                return None;
            }
            if name == FINGERPRINT {
                fingerprint = Some(value_start - start..line_end - start);
            }
            line_start = line_end + 1;
        }
        sections.push(Section {
            id: id_start..id_end,
            body: Body::Read(start..end + 1),
            fingerprint,
        });
        // past the blank line between sections
        if bytes.get(end + 1).is_some_and(|byte| *byte != b'\n') {
            return None;
        }
        next_start = end + 2;
    }
    // nothing after the last section's line end
    (text.len() == next_start.saturating_sub(1)).then_some(sections)
}

/// Whether `value`, a property's value as parsed from its line, is what
/// the write gives for it: not trimmed by the parser (no whitespace at
/// either end), an integer as `isize` displays it.
///
/// A string is written as it is, whatever its bytes: only its ends decide
/// whether the parser read it as written.
fn is_written_value(value: &str, integer: bool) -> bool {
    let (Some(&first), Some(&last)) = (value.as_bytes().first(), value.as_bytes().last()) else {
        // an empty string is written as `KEY ` and read back as empty
        return !integer;
    };
    // `char::is_whitespace`, decoded only for a byte that is not ASCII
    let outer_text = |byte: u8, decode: &dyn Fn() -> Option<char>| match byte.is_ascii() {
        true => !matches!(byte, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' '),
        false => decode().is_some_and(|c| !c.is_whitespace()),
    };
    if !outer_text(first, &|| value.chars().next())
        || !outer_text(last, &|| value.chars().next_back())
    {
        return false;
    }
    if !integer {
        return true;
    }
    // it parsed as an integer, so it fits
    is_canonical_integer(value.as_bytes())
}

/// Where `part` (a slice of `text`) starts in it.
fn offset_in(text: &str, part: &str) -> usize {
    part.as_ptr() as usize - text.as_ptr() as usize
}

impl KeySections {
    /// Checks that `text` parses the same way here as generically and
    /// renders to what the generic write gives, both as kept and as
    /// rendered again (the two ways [`KeySections::parse`] takes), with the
    /// same ids and fingerprints; and that the text is kept as it is
    /// exactly when it is what the generic write gives (so no file our
    /// writer or upstream's wrote is rendered again): where the scan tells
    /// so, the text is the generic write's, with the sections the
    /// comparison section by section finds. Returns whether it was kept.
    /// For tests and fuzzing.
    #[doc(hidden)]
    pub fn check_against_generic(path: &Path, text: &str) -> Result<bool, Error> {
        let ours = KeySections::parse(path, text);
        let rendering = KeySections::parse_rendering(path, text);
        let generic = CONFIG
            .parse(path, text)
            .and_then(|data| CONFIG.write(path, &data));
        let (ours, rendering, generic) = match (ours, rendering, generic) {
            (Ok(ours), Ok(rendering), Ok(generic)) => (ours, rendering, generic),
            (Err(ours), Err(rendering), Err(_)) => {
                if ours.to_string() != rendering.to_string() {
                    bail!(
                        "refused with another message than the rendering parse's: {ours} / {rendering}"
                    );
                }
                return Ok(false);
            }
            (Ok(_), _, Err(err)) => bail!("accepted here, refused generically: {err}"),
            (Err(err), _, Ok(_)) => bail!("refused here, accepted generically: {err}"),
            (_, Err(err), _) => bail!("refused by the rendering parse only: {err}"),
            (Err(err), Ok(_), _) => bail!("refused by the kept parse only: {err}"),
        };
        if ours.render() != generic {
            bail!("rendered text differs from the generic write");
        }
        if rendering.render() != generic {
            bail!("the rendering parse's text differs from the generic write");
        }
        let fingerprint = |sections: &KeySections, section: &Section| {
            let body = sections.body_of(section);
            section
                .fingerprint
                .clone()
                .map(|range| body[range].to_string())
        };
        let same_sections = ours.sections.len() == rendering.sections.len()
            && ours.sections.iter().zip(&rendering.sections).all(|(a, b)| {
                ours.id_of(a) == rendering.id_of(b)
                    && fingerprint(&ours, a) == fingerprint(&rendering, b)
            });
        if !same_sections {
            bail!("ids or fingerprints differ between the kept and the rendering parse");
        }
        check_lookups(&ours, &rendering)?;
        let (told, compared) = match CONFIG.scan_as_written(path, text, FINGERPRINT)? {
            Scanned::AsWritten { sections, values } => (
                sections_told(text, &sections, &values),
                sections_as_written(text, &sections),
            ),
            Scanned::Sections(spans) => (None, sections_as_written(text, &spans)),
        };
        if told.is_some() && text != generic {
            bail!("the scan told the text as written, but the generic write differs");
        }
        if told.is_some() && told != compared {
            bail!(
                "the scan told other sections than the comparison finds: {told:?} / {compared:?}"
            );
        }
        let kept = told.is_some() || compared.is_some();
        if kept != (text == generic) {
            bail!(
                "text kept as it is: {kept}, though it is the generic write: {}",
                !kept
            );
        }
        Ok(kept)
    }
}

/// [`KeySections::check_against_generic`]'s check of a store's lookups
/// ([`KeySections::taken_by`]) in `ours` against a search of the
/// fingerprints of `rendering` (the same text's other parse) as parsed.
fn check_lookups(ours: &KeySections, rendering: &KeySections) -> Result<(), Error> {
    let fingerprint = |section: &Section| {
        let body = rendering.body_of(section);
        section
            .fingerprint
            .clone()
            .map(|range| body[range].to_string())
    };
    let parsed: Vec<(&str, Option<Fingerprint>)> = rendering
        .sections
        .iter()
        .map(|section| {
            let text = fingerprint(section);
            let parsed = text.and_then(|text| text.parse().ok());
            (rendering.id_of(section), parsed)
        })
        .collect();
    for (id, key) in &parsed {
        let Some(key) = key else { continue };
        if ours.taken_by(id, key) != Some(KeyTaken::Id) {
            bail!("a store of '{id}' would not find its id taken");
        }
        let holder = parsed.iter().find(|(_, other)| other.as_ref() == Some(key));
        let expected = holder.map(|(holder, _)| KeyTaken::Fingerprint(holder));
        // no section has an empty id
        if ours.taken_by("", key) != expected {
            bail!("a store of the key of '{id}' under a new id would not find its holder");
        }
    }
    Ok(())
}
