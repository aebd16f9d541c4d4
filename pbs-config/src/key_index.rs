//! [`KeyIndex`]: `encryption-keys.cfg` read into typed entries.
//!
//! Readers (list, show, load) use this instead of the generic
//! `SectionConfigData`. A read is one validating pass over the text
//! ([`SectionConfig::scan`](proxmox_section_config::SectionConfig::scan):
//! every id and every value checked by its schema, as the parser checks
//! them) that keeps the text and, per section, where it and its id are,
//! and the scan's duplicate-id table as the lookup by id.
//! An entry is typed when it is first asked for: its section read again
//! ([`SectionConfig::read_validated`](proxmox_section_config::SectionConfig::read_validated))
//! and deserialized through [`CryptKey`]'s own serde code
//! ([`SectionRef::deserialize`](proxmox_section_config::SectionRef::deserialize)),
//! the code the generic lookup runs on the section's JSON object, and kept
//! for the next caller. So a load types one entry, a list all of them, and
//! a field is declared in `CryptKey` alone. Writers edit
//! [`KeySections`](crate::KeySections) instead.
//!
//! A process that loads one key and exits reads neither the whole text
//! nor an index: [`KeyIndex::find_entry`] reads the file in chunks, every
//! section checked as the scan checks it and dropped but the one asked
//! for, which is typed as [`KeyIndex::get`] types it; anything it cannot
//! decide so is left to the whole text's read.
//!
//! An entry the typed form cannot hold (an unknown `kdf`, as upstream's
//! parser accepts) is an error for that id: listing fails, as upstream's
//! does, but every other key still loads.

use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Error, format_err};
use proxmox_section_config::{Found, SectionIds, SectionPlace};
use proxmox_sys::huge_pages::TextBuf;

use pbs_api_types::{CryptKey, Fingerprint, Kdf};

use crate::KeystoreError;
use crate::encryption_keys::{CONFIG, ENCRYPTION_KEYS_CFG_TYPE_ID};

/// The entries of `encryption-keys.cfg`, in file order, typed on first use.
#[derive(Default)]
pub struct KeyIndex {
    /// The config text, validated (in huge pages where the process reads
    /// into them, see [`proxmox_sys::huge_pages`]).
    text: TextBuf,
    /// Where each key's section and id are in `text`.
    spans: Vec<Span>,
    /// Positions in `spans` by id: the scan's duplicate-id table where the
    /// scan's sections are `spans` (the writer's layout, keys only), else
    /// made by the first lookup by id.
    positions: OnceLock<SectionIds>,
    /// Per span, its typed entry once asked for; made by the first access.
    typed: OnceLock<Box<[OnceLock<Box<Entry>>]>>,
}

/// What [`KeyIndex::find_entry`] found for an id.
#[derive(Debug)]
pub enum FoundEntry {
    /// The entry [`KeyIndex::get`] gives for the id, of a text
    /// [`KeyIndex::parse`] accepts.
    Entry(CryptKey),
    /// A text [`KeyIndex::parse`] accepts, without the id
    /// ([`KeyIndex::get`]: [`KeystoreError::NotFound`]).
    Absent,
    /// Not decided (another layout, an error, an entry the typed form
    /// cannot hold, a duplicate id): [`KeyIndex::parse`] of the whole text
    /// decides, with its errors.
    Undecided,
}

/// A key's section in the text: all of it, and its id.
#[derive(Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
    id_start: u32,
    id_end: u32,
}

impl Span {
    fn text(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    fn id(&self) -> Range<usize> {
        self.id_start as usize..self.id_end as usize
    }
}

/// Where an entry's values are in its section's text (see
/// [`KeyIndex::text_fields`]), each as start and end from the section's
/// start; an empty range is a field the entry does not have (an entry with
/// an empty value is typed instead). 28 bytes, so a list can keep them
/// for 100,000 entries between its filter and its output.
#[derive(Clone, Copy, Default, Debug)]
struct TextFields {
    path: Field,
    kdf: Field,
    created: Field,
    modified: Field,
    fingerprint: Field,
    hint: Field,
    archived_at: Field,
}

/// A value's place in its section's text; empty: absent.
#[derive(Clone, Copy, Default, Debug)]
struct Field {
    start: u16,
    end: u16,
}

impl Field {
    /// The place of `range` in a section, if it is not empty and fits.
    fn at(range: Range<usize>) -> Option<Self> {
        let field = Self {
            start: u16::try_from(range.start).ok()?,
            end: u16::try_from(range.end).ok()?,
        };
        (field.start < field.end).then_some(field)
    }

    /// The value in `section`, if the entry has the field.
    fn value(self, section: &str) -> Option<&str> {
        (self.start < self.end).then(|| &section[self.start as usize..self.end as usize])
    }
}

/// What a list reads of one entry ([`KeyIndex::list_entry`]): whether it
/// is archived and, for [`KeyIndex::write_json`], where its values are,
/// so each section is read once for the filter and the output together.
#[derive(Clone, Copy, Debug)]
pub struct ListEntry {
    position: u32,
    archived: bool,
    /// `None`: the entry is written from its typed form.
    fields: Option<TextFields>,
}

impl ListEntry {
    /// Whether the entry is archived.
    pub fn is_archived(&self) -> bool {
        self.archived
    }

    /// The entry's position in the index.
    pub fn position(&self) -> usize {
        self.position as usize
    }
}

/// Whether `value` is a `kdf` name `Kdf` reads and writes as itself.
fn is_kdf(value: &str) -> bool {
    [Kdf::None, Kdf::Scrypt, Kdf::PBKDF2]
        .iter()
        .any(|kdf| kdf.as_str() == value)
}

/// Whether `value` is an `i64` as it serializes: an optional minus, digits
/// without a leading zero (`0` alone), in range.
fn is_canonical_i64(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (!digits.starts_with('0') || value == "0")
        // 18 digits always fit
        && (digits.len() <= 18 || value.parse::<i64>().is_ok())
}

/// Whether `value` is a fingerprint as it serializes: 32 bytes in
/// lower-case hex, colon-separated.
fn is_canonical_fingerprint(value: &str) -> bool {
    // without early exits, by index over a fixed-size array: the compiler
    // turns this into vector steps (it runs twice per key of a list; the
    // byte-by-byte form cost 950 instructions a call)
    <&[u8; 95]>::try_from(value.as_bytes()).is_ok_and(|bytes| {
        let mut bad = 0u8;
        #[allow(clippy::needless_range_loop)]
        for i in 0..95 {
            let byte = bytes[i];
            let hex = (byte.wrapping_sub(b'0') < 10) | (byte.wrapping_sub(b'a') < 6);
            // a colon after every two hex digits (the index is a constant
            // in the unrolled loop)
            let colon_here = i % 3 == 2;
            bad |= u8::from(if colon_here { byte != b':' } else { !hex });
        }
        bad == 0
    })
}

/// An entry, or the reason the typed form cannot hold it.
type Entry = Result<CryptKey, String>;

impl std::fmt::Debug for KeyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyIndex")
            .field("ids", &self.ids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl KeyIndex {
    /// Reads config text (`path` only names the file in errors), checking
    /// every section as the parser does; keeps the text.
    ///
    /// # Errors
    ///
    /// The parser's error for text it refuses, naming the file and line.
    pub fn parse(path: &Path, text: impl Into<TextBuf>) -> Result<Self, Error> {
        let text = text.into();
        // places in u32 (the scan refuses a text of 4 GiB or more; the
        // file reader refuses far less already)
        let (scanned, ids) = CONFIG.scan_places_with_ids(path, &text)?;
        // the keys' plugin, told by address (a string compare per section
        // costs more)
        let keys = CONFIG.plugins().get(ENCRYPTION_KEYS_CFG_TYPE_ID);
        let is_key =
            |place: &SectionPlace| keys.is_some_and(|keys| std::ptr::eq(place.plugin, keys));
        let span = |place: &SectionPlace| Span {
            start: place.text.start,
            end: place.text.end,
            id_start: place.id.start,
            id_end: place.id.end,
        };
        // mostly every section is a key's: then each is one span, in a
        // loop of known length (no test or room checked per section), and
        // the scan's ids are at the same positions (a lookup compares ids,
        // so it could only miss otherwise)
        let (spans, positions) = match scanned.iter().all(is_key) {
            true => (
                scanned.iter().map(span).collect::<Vec<_>>(),
                ids.map_or_else(OnceLock::new, OnceLock::from),
            ),
            false => {
                // room for every section (a filter's collect would grow
                // the vector a dozen times, copying it)
                let mut spans = Vec::with_capacity(scanned.len());
                spans.extend(scanned.iter().filter(|place| is_key(place)).map(span));
                (spans, OnceLock::new())
            }
        };
        Ok(Self {
            text,
            spans,
            positions,
            typed: OnceLock::new(),
        })
    }

    /// The entry of `id` in the config text `source` gives (`size`: its
    /// expected length), read in chunks of `chunk` bytes
    /// ([`proxmox_section_config::FIND_CHUNK`] for a file) that are
    /// dropped once checked: every section checked as [`KeyIndex::parse`]
    /// checks it, the one of `id` typed as [`KeyIndex::get`] types it.
    /// What it gives is what those two give for the whole text; what it
    /// cannot decide so is [`FoundEntry::Undecided`] (errors among it:
    /// their message and line are the whole text's read's).
    ///
    /// # Errors
    ///
    /// `source`'s read errors.
    pub fn find_entry(
        path: &Path,
        source: &mut (impl Read + ?Sized),
        size: usize,
        id: &str,
        chunk: usize,
    ) -> std::io::Result<FoundEntry> {
        let (plugin, text) = match CONFIG.find_section_in_chunks(source, size, id, chunk)? {
            Found::Section { plugin, text } => (plugin, text),
            Found::Absent => return Ok(FoundEntry::Absent),
            Found::Undecided => return Ok(FoundEntry::Undecided),
        };
        // a section of another type is not a key's: `get` does not find it
        let keys = CONFIG.plugins().get(ENCRYPTION_KEYS_CFG_TYPE_ID);
        if !keys.is_some_and(|keys| std::ptr::eq(plugin, keys)) {
            return Ok(FoundEntry::Absent);
        }
        // the section alone: read and typed by the code that reads it in
        // the whole text
        let found = Self::parse(path, text)
            .ok()
            .and_then(|index| index.get(id).ok().cloned());
        Ok(found.map_or(FoundEntry::Undecided, FoundEntry::Entry))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The ids, in file order.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = &str> {
        self.spans.iter().map(|span| &self.text[span.id()])
    }

    /// The id of the entry at `position`.
    pub fn id_at(&self, position: usize) -> &str {
        &self.text[self.spans[position].id()]
    }

    /// The entry at `position`, typed now if not yet.
    fn entry(&self, position: usize) -> &Entry {
        let typed = self.typed.get_or_init(|| {
            std::iter::repeat_with(OnceLock::new)
                .take(self.spans.len())
                .collect()
        });
        typed[position].get_or_init(|| Box::new(self.read(position)))
    }

    /// Types the entry at `position` from its section's text; an entry
    /// whose id is not the one the scan found there is refused, never
    /// handed out under the other id.
    fn read(&self, position: usize) -> Entry {
        let mut entry = None;
        let span = self.spans[position];
        let text = &self.text[span.text()];
        CONFIG
            .read_validated(text, |section| {
                // CryptKey's own serde code, as the generic lookup runs it
                entry = Some(
                    section
                        .deserialize::<CryptKey>()
                        .map_err(|err| err.to_string()),
                );
                Ok(())
            })
            .map_err(|err| err.to_string())?;
        let entry = entry.ok_or_else(|| "the section cannot be read again".to_string())??;
        let id = &self.text[span.id()];
        if entry.id != id {
            return Err(format!(
                "the section of '{id}' reads as '{}' - report this as a bug",
                entry.id
            ));
        }
        Ok(entry)
    }

    /// The fields of the entry at `position` as its section's text holds
    /// them, if every one is in the form [`CryptKey`]'s serialization
    /// writes (see [`KeyIndex::write_json`]); `None` sends the entry to the
    /// typed path. The id is the one the scan found at `position`.
    fn text_fields(&self, position: usize) -> Option<TextFields> {
        let span = self.spans[position];
        let text = &self.text[span.text()];
        let base = text.as_ptr() as usize;
        let at = |value: &str| {
            let start = value.as_ptr() as usize - base;
            Field::at(start..start + value.len())
        };
        let mut fields = None;
        CONFIG
            .read_validated(text, |section| {
                if section.id != &self.text[span.id()] {
                    return Ok(());
                }
                let mut found = TextFields::default();
                for property in section.properties {
                    let (slot, canonical) = match property.key {
                        "path" => (&mut found.path, true),
                        "hint" => (&mut found.hint, true),
                        "kdf" => (&mut found.kdf, is_kdf(property.value)),
                        "created" => (&mut found.created, is_canonical_i64(property.value)),
                        "modified" => (&mut found.modified, is_canonical_i64(property.value)),
                        "archived-at" => (&mut found.archived_at, is_canonical_i64(property.value)),
                        "fingerprint" => (
                            &mut found.fingerprint,
                            is_canonical_fingerprint(property.value),
                        ),
                        _ => return Ok(()),
                    };
                    if !canonical || property.array || slot.value(text).is_some() {
                        return Ok(());
                    }
                    // an empty value, or a section too long to place: typed
                    let Some(field) = at(property.value) else {
                        return Ok(());
                    };
                    *slot = field;
                }
                let required = [found.kdf, found.created, found.modified];
                if required.iter().all(|field| field.value(text).is_some()) {
                    fields = Some(found);
                }
                Ok(())
            })
            .ok()?;
        fields
    }

    /// What a list needs of the entry at `position`, read from its text
    /// once where the entry is in the writer's form (see
    /// [`KeyIndex::write_json`]), otherwise from its typed form (typed
    /// now if not yet).
    ///
    /// # Errors
    ///
    /// The reason the entry is invalid, naming its id.
    pub fn list_entry(&self, position: usize) -> Result<ListEntry, Error> {
        let typed = self.typed.get().and_then(|typed| typed[position].get());
        let fields = if typed.is_none() {
            self.text_fields(position)
        } else {
            None
        };
        let archived = match &fields {
            Some(fields) => fields.archived_at.start < fields.archived_at.end,
            None => match self.entry(position) {
                Ok(entry) => entry.archived_at.is_some(),
                Err(reason) => {
                    return Err(Self::invalid(&self.text[self.spans[position].id()], reason));
                }
            },
        };
        Ok(ListEntry {
            // positions fit: there are fewer spans than bytes of text
            position: position as u32,
            archived,
            fields,
        })
    }

    /// Appends the entry `listed` ([`KeyIndex::list_entry`] of this index)
    /// to `out` as the compact JSON object `serde_json` writes for its
    /// [`CryptKey`], byte for byte. An entry whose text holds every field
    /// as that JSON writes it (the writer's form: integers without sign or
    /// leading zero, the fingerprint in full lower-case hex, a known `kdf`)
    /// is written straight from its text, its strings escaped by
    /// `serde_json`; any other is typed and serialized
    /// (`tests/key_index.rs` compares both with the generic reader on
    /// every vector and edit). A list of 100,000 keys so neither types nor
    /// keeps an entry, and reads each section once.
    ///
    /// # Errors
    ///
    /// The reason the entry is invalid, naming its id.
    pub fn write_json(&self, listed: &ListEntry, out: &mut Vec<u8>) -> Result<(), Error> {
        let position = listed.position as usize;
        let Some(fields) = listed.fields else {
            let id = &self.text[self.spans[position].id()];
            let entry = self
                .entry(position)
                .as_ref()
                .map_err(|reason| Self::invalid(id, reason))?;
            return serde_json::to_writer(out, entry)
                .map_err(|err| format_err!("unable to serialize encryption key '{id}' - {err}"));
        };
        let section = &self.text[self.spans[position].text()];
        let text = |field: &Field| field.value(section);
        let string = |out: &mut Vec<u8>, value: &str| {
            // a String's serialization: serde_json's escaping
            serde_json::to_writer(out, value).expect("a string serializes into memory")
        };
        // CryptKey's field order: id, then KeyInfo (path, kdf, created,
        // modified, fingerprint, hint), then archived-at
        out.extend_from_slice(b"{\"id\":");
        string(out, &self.text[self.spans[position].id()]);
        if let Some(path) = text(&fields.path) {
            out.extend_from_slice(b",\"path\":");
            string(out, path);
        }
        for (name, value, quoted) in [
            ("kdf", &fields.kdf, true),
            ("created", &fields.created, false),
            ("modified", &fields.modified, false),
            ("fingerprint", &fields.fingerprint, true),
        ] {
            if let Some(value) = text(value) {
                out.extend_from_slice(b",\"");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(if quoted { b"\":\"" } else { b"\":" });
                // checked: digits, hex and colons, or a kdf name
                out.extend_from_slice(value.as_bytes());
                if quoted {
                    out.push(b'"');
                }
            }
        }
        if let Some(hint) = text(&fields.hint) {
            out.extend_from_slice(b",\"hint\":");
            string(out, hint);
        }
        if let Some(archived_at) = text(&fields.archived_at) {
            out.extend_from_slice(b",\"archived-at\":");
            out.extend_from_slice(archived_at.as_bytes());
        }
        out.push(b'}');
        Ok(())
    }

    fn invalid(id: &str, reason: &str) -> Error {
        format_err!("invalid config entry for encryption key '{id}' - {reason}")
    }

    /// The position of `id`.
    fn position(&self, id: &str) -> Option<usize> {
        self.positions
            .get_or_init(|| {
                // the scan has refused duplicate ids
                SectionIds::new(self.spans.len(), |position| self.id_at(position))
                    .expect("the scan refuses duplicate ids")
            })
            .position(id, |position| self.id_at(position))
    }

    /// The entry of `id`.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::NotFound`], or the reason the entry is invalid.
    pub fn get(&self, id: &str) -> Result<&CryptKey, Error> {
        let Some(position) = self.position(id) else {
            return Err(KeystoreError::NotFound { id: id.to_string() }.into());
        };
        match self.entry(position) {
            Ok(entry) => Ok(entry),
            Err(reason) => Err(Self::invalid(id, reason)),
        }
    }

    /// Every entry, in file order.
    ///
    /// # Errors
    ///
    /// The first invalid entry, naming its id.
    pub fn entries(&self) -> Result<impl Iterator<Item = &CryptKey>, Error> {
        for (position, id) in self.ids().enumerate() {
            if let Err(reason) = self.entry(position) {
                return Err(Self::invalid(id, reason));
            }
        }
        Ok((0..self.len()).filter_map(|position| self.entry(position).as_ref().ok()))
    }

    /// Valid entries and, separately, the ids of invalid ones with the reason.
    pub fn partition(&self) -> (Vec<&CryptKey>, Vec<(&str, &str)>) {
        let mut valid = Vec::new();
        let mut invalid = Vec::new();
        for (position, id) in self.ids().enumerate() {
            match self.entry(position) {
                Ok(entry) => valid.push(entry),
                Err(reason) => invalid.push((id, reason.as_str())),
            }
        }
        (valid, invalid)
    }

    /// The id of the entry with this fingerprint, if any.
    pub fn find_fingerprint(&self, fingerprint: &Fingerprint) -> Option<&str> {
        (0..self.len())
            .filter_map(|position| self.entry(position).as_ref().ok())
            .find(|entry| entry.info.fingerprint.as_ref() == Some(fingerprint))
            .map(|entry| entry.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "sync-key: k-one\n\tcreated 1\n\tfingerprint 5f:8c:44:1a:ec:af:bd:7d:80:69:6e:0a:47:9b:00:5c:1b:0d:57:c4:92:ee:ba:f0:be:9e:bc:7c:9d:7f:ef:f6\n\tkdf none\n\tmodified 2\n\tpath /x/encryption-keys/k-one.enc\n\n\
        sync-key: k-two\n\tarchived-at 7\n\tcreated 3\n\thint the hint\n\tkdf aes-magic\n\tmodified 4\n\n\
        sync-key: k-three\n\tcreated 5\n\tkdf pbkdf2\n\tmodified 6\n";

    #[test]
    fn typed_entries_equal_serde_lookups() {
        // the writer's layout (the fast scan), and CRLF (the parser)
        typed_entries_of_text_equal_serde_lookups(TEXT);
        typed_entries_of_text_equal_serde_lookups(&TEXT.replace('\n', "\r\n"));
    }

    #[test]
    fn entries_are_typed_once_and_looked_up_by_id() {
        let index = KeyIndex::parse(Path::new("test.cfg"), TEXT).unwrap();
        assert_eq!(index.len(), 3);
        let first: *const CryptKey = index.get("k-three").unwrap();
        let again: *const CryptKey = index.get("k-three").unwrap();
        assert_eq!(first, again);
        let listed: Vec<*const CryptKey> = index
            .partition()
            .0
            .into_iter()
            .map(|k| k as *const _)
            .collect();
        assert!(listed.contains(&first));
        assert_eq!(
            index.find_fingerprint(&index.get("k-one").unwrap().info.fingerprint.unwrap()),
            Some("k-one")
        );
    }

    /// Entries in the writer's form are written from their text, others
    /// (an unknown kdf, a leading zero) typed; the JSON is serde_json's.
    #[test]
    fn json_from_text_is_serde_jsons() {
        let odd = "sync-key: k-four\n\tarchived-at 10\n\tcreated 08\n\tkdf none\n\tmodified 9\n";
        let text = format!("{TEXT}\n{odd}");
        let index = KeyIndex::parse(Path::new("test.cfg"), text.as_str()).unwrap();
        let from_text: Vec<bool> = (0..index.len())
            .map(|position| index.text_fields(position).is_some())
            .collect();
        assert_eq!(from_text, [true, false, true, false]);
        for (position, id) in ["k-one", "k-two", "k-three", "k-four"].iter().enumerate() {
            let mut json = Vec::new();
            let listed = index.list_entry(position);
            match index.get(id) {
                Ok(entry) => {
                    let listed = listed.unwrap();
                    index.write_json(&listed, &mut json).unwrap();
                    assert_eq!(json, serde_json::to_vec(entry).unwrap());
                    assert_eq!(listed.is_archived(), entry.archived_at.is_some());
                }
                Err(err) => {
                    assert_eq!(listed.unwrap_err().to_string(), err.to_string());
                }
            }
        }
    }

    /// The vectorized check against the plain definition, on a canonical
    /// fingerprint with every byte set to each value in turn, and on
    /// every length around 95.
    #[test]
    fn canonical_fingerprints_are_told_apart_byte_by_byte() {
        let plain = |value: &str| {
            value.len() == 95
                && value.bytes().enumerate().all(|(i, b)| match i % 3 {
                    2 => b == b':',
                    _ => matches!(b, b'0'..=b'9' | b'a'..=b'f'),
                })
        };
        let canonical: Vec<u8> = (0..32)
            .flat_map(|i| format!("{:02x}", i * 8 + 7).into_bytes())
            .collect::<Vec<_>>()
            .chunks(2)
            .map(|pair| pair.to_vec())
            .collect::<Vec<_>>()
            .join(&b':');
        assert!(is_canonical_fingerprint(
            std::str::from_utf8(&canonical).unwrap()
        ));
        for at in 0..canonical.len() {
            for byte in 0..=0x7fu8 {
                let mut value = canonical.clone();
                value[at] = byte;
                let value = std::str::from_utf8(&value).unwrap();
                assert_eq!(is_canonical_fingerprint(value), plain(value), "{value:?}");
            }
        }
        let text = std::str::from_utf8(&canonical).unwrap();
        for len in 0..canonical.len() {
            assert!(!is_canonical_fingerprint(&text[..len]));
        }
        assert!(!is_canonical_fingerprint(&format!("{text}0")));
        assert!(!is_canonical_fingerprint(&text.to_uppercase()));
    }

    fn typed_entries_of_text_equal_serde_lookups(text: &str) {
        let index = KeyIndex::parse(Path::new("test.cfg"), text).unwrap();
        let data = CONFIG.parse("test.cfg", text).unwrap();
        assert_eq!(
            index.ids().collect::<Vec<_>>(),
            ["k-one", "k-two", "k-three"]
        );
        for id in ["k-one", "k-three"] {
            let typed: CryptKey = data.lookup(ENCRYPTION_KEYS_CFG_TYPE_ID, id).unwrap();
            assert_eq!(index.get(id).unwrap(), &typed);
        }
        let serde_err = data
            .lookup::<CryptKey>(ENCRYPTION_KEYS_CFG_TYPE_ID, "k-two")
            .unwrap_err()
            .to_string();
        let ours = index.get("k-two").unwrap_err().to_string();
        assert!(ours.ends_with(&serde_err), "{ours} / {serde_err}");
        assert!(ours.contains("'k-two'"), "{ours}");
        assert!(index.entries().is_err());
        let (valid, invalid) = index.partition();
        assert_eq!((valid.len(), invalid.len()), (2, 1));
        let err = index.get("k-four").unwrap_err();
        assert!(matches!(
            err.downcast_ref::<KeystoreError>(),
            Some(KeystoreError::NotFound { .. })
        ));
    }
}
