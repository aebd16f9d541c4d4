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

use pbs_api_types::{CryptKey, Fingerprint};

use crate::KeystoreError;
use crate::encryption_keys::{CONFIG, ENCRYPTION_KEYS_CFG_TYPE_ID};

/// The sections of `encryption-keys.cfg`, in file order, as canonical text.
#[derive(Debug, Default)]
pub struct KeySections {
    /// The file, for errors.
    path: PathBuf,
    /// Canonical text of the sections as read, one after the other. Not
    /// compacted: a replaced or removed section's text stays until the
    /// next parse, so this is never larger than the file was.
    text: String,
    sections: Vec<Section>,
}

#[derive(Debug)]
struct Section {
    id: Range<usize>,
    body: Body,
    /// Where the stored fingerprint's text is in the body, for the
    /// duplicate check of a store.
    fingerprint: Option<Range<usize>>,
}

/// Where a section's text is.
#[derive(Debug)]
enum Body {
    /// In [`KeySections::text`], as read.
    Read(Range<usize>),
    /// Written by an operation (the id is at the start of the header).
    New(String),
}

impl KeySections {
    /// Parses config text (`path` only names the file in errors). Accepts
    /// and refuses exactly what the generic parse does.
    pub fn parse(path: &Path, raw: &str) -> Result<Self, Error> {
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
            .position(|section| self.id_of(section) == id)
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
        // the schema admits only "aa:bb:..." (either case): equal bytes are
        // equal text, ignoring case, and no fingerprint needs parsing
        let signature = fingerprint.signature();
        self.sections
            .iter()
            .find(|section| {
                section.fingerprint.as_ref().is_some_and(|range| {
                    self.body_of(section)[range.clone()].eq_ignore_ascii_case(&signature)
                })
            })
            .map(|section| self.id_of(section))
    }

    /// Sets the entry of `entry.id`: replaced in place, or added at the end.
    /// The entry is verified against the schema as a write verifies it.
    pub fn set(&mut self, entry: &CryptKey) -> Result<(), Error> {
        let value = serde_json::to_value(entry)?;
        let mut text = String::new();
        CONFIG.write_section(&mut text, ENCRYPTION_KEYS_CFG_TYPE_ID, &entry.id, &value)?;
        let id_start = ENCRYPTION_KEYS_CFG_TYPE_ID.len() + 2;
        let section = Section {
            id: id_start..id_start + entry.id.len(),
            fingerprint: fingerprint_range(&text),
            body: Body::New(text),
        };
        match self.position(&entry.id) {
            Some(position) => self.sections[position] = section,
            None => self.sections.push(section),
        }
        Ok(())
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

/// The value range of the `fingerprint` line in a section's canonical text.
fn fingerprint_range(body: &str) -> Option<Range<usize>> {
    const KEY: &str = "\n\tfingerprint ";
    let start = body.find(KEY)? + KEY.len();
    let end = body[start..]
        .find('\n')
        .map_or(body.len(), |end| start + end);
    Some(start..end)
}

impl KeySections {
    /// Checks that `text` parses the same way here as generically and
    /// renders to what the generic write gives; for tests and fuzzing.
    #[doc(hidden)]
    pub fn check_against_generic(path: &Path, text: &str) -> Result<(), Error> {
        let ours = KeySections::parse(path, text);
        let generic = CONFIG
            .parse(path, text)
            .and_then(|data| CONFIG.write(path, &data));
        match (ours, generic) {
            (Ok(ours), Ok(generic)) => {
                if ours.render() != generic {
                    bail!("rendered text differs from the generic write");
                }
            }
            (Err(_), Err(_)) => {}
            (Ok(_), Err(err)) => bail!("accepted here, refused generically: {err}"),
            (Err(err), Ok(_)) => bail!("refused here, accepted generically: {err}"),
        }
        Ok(())
    }
}
