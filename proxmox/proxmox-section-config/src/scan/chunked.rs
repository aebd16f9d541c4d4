//! [`SectionConfig::find_section`]: one section of a config read from a
//! file in chunks of a small buffer, every other section checked as
//! [`SectionConfig::scan`]'s one pass checks it and then dropped, so a
//! reader that wants one entry neither holds the whole text nor an index
//! of it.
//!
//! The buffer is cut after the last blank line it holds: the sections
//! before it are read by the one pass ([`each_in_writers_order`], on the
//! bytes: it takes printable ASCII and line feeds alone, so the text is
//! not checked as UTF-8 in a pass of its own) as the whole text's one
//! pass reads them (a blank line ends a section, as the
//! text's end does), the rest moves to the buffer's front and the next
//! chunk is read after it. A section that does not fit the buffer, text
//! that is not in the writer's layout or does not pass, and an id seen
//! twice (told by a 64-bit hash of each id: two ids of one hash are sent
//! on as well) give [`Found::Undecided`]: the caller then reads the whole
//! text as before ([`SectionConfig::scan`], the parser), which gives the
//! sections or the error with its line. So what this finds is what the
//! whole text's scan finds, and it refuses nothing itself.

use std::hash::BuildHasher;
use std::io::{ErrorKind, Read};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use super::one_pass::{WriterForm, each_in_writers_order};
use crate::{ESTIMATED_SECTION_SIZE, SectionConfig, SectionConfigPlugin};

/// The chunk a config is read in by [`SectionConfig::find_section`]: a
/// section longer than this less a line is left to the whole text's scan.
pub const FIND_CHUNK: usize = 64 * 1024;

/// What [`SectionConfig::find_section`] found for an id.
#[derive(Debug)]
pub enum Found<'a> {
    /// Every section passed, no id is there twice, and this one is the
    /// id's: its plugin and its text (as [`SectionSpan::text`](super::SectionSpan::text)).
    Section {
        /// The plugin of its type.
        plugin: &'a SectionConfigPlugin,
        /// Its text, from its header to its last line's end.
        text: String,
    },
    /// Every section passed, no id is there twice, and none is the id's.
    Absent,
    /// Not decided here: the whole text's scan decides.
    Undecided,
}

impl SectionConfig {
    /// The section of `id` in the config text `source` gives, read in
    /// chunks of [`FIND_CHUNK`] bytes (see [`Found`]); `size` is the
    /// text's expected length (to size the table of ids seen).
    ///
    /// # Errors
    ///
    /// `source`'s read errors.
    pub fn find_section(
        &self,
        source: &mut (impl Read + ?Sized),
        size: usize,
        id: &str,
    ) -> std::io::Result<Found<'_>> {
        self.find_section_in_chunks(source, size, id, FIND_CHUNK)
    }

    /// [`SectionConfig::find_section`] with chunks of `chunk` bytes (at
    /// least 1).
    ///
    /// # Errors
    ///
    /// `source`'s read errors.
    pub fn find_section_in_chunks(
        &self,
        source: &mut (impl Read + ?Sized),
        size: usize,
        id: &str,
        chunk: usize,
    ) -> std::io::Result<Found<'_>> {
        let mut buf = vec![0u8; chunk.max(1)];
        let mut seen: HashTable<u64> =
            HashTable::with_capacity(size.min(1 << 30) / ESTIMATED_SECTION_SIZE + 1);
        let mut found = None;
        // the bytes of `buf` read and not yet scanned
        let mut filled = 0;
        loop {
            let mut end_of_text = false;
            while filled < buf.len() {
                match source.read(&mut buf[filled..]) {
                    Ok(0) => {
                        end_of_text = true;
                        break;
                    }
                    Ok(read) => filled += read,
                    Err(err) if err.kind() == ErrorKind::Interrupted => {}
                    Err(err) => return Err(err),
                }
            }
            // up to the line feed before the last blank line: whole
            // sections, each ended as the whole text's scan ends it
            let scanned = match end_of_text {
                true => filled,
                false => match memchr::memmem::rfind(&buf[..filled], b"\n\n") {
                    Some(at) => at + 1,
                    None => return Ok(Found::Undecided),
                },
            };
            // the one pass takes printable ASCII and line feeds alone:
            // ids are hashed and compared as bytes, and only the text of
            // the one wanted is checked as UTF-8
            let bytes = &buf[..scanned];
            let passed =
                each_in_writers_order::<false>(self, bytes, &mut WriterForm::new(""), |section| {
                    let section_id = &bytes[section.id];
                    let hash = FxBuildHasher.hash_one(section_id);
                    match seen.entry(hash, |&other| other == hash, |&other| other) {
                        hashbrown::hash_table::Entry::Occupied(_) => return None,
                        hashbrown::hash_table::Entry::Vacant(slot) => {
                            slot.insert(hash);
                        }
                    }
                    if section_id == id.as_bytes() {
                        let text = std::str::from_utf8(&bytes[section.text]).ok()?;
                        found = Some((section.plugin.type_name().to_string(), text.to_string()));
                    }
                    Some(())
                });
            if passed.is_none() {
                return Ok(Found::Undecided);
            }
            if end_of_text {
                break;
            }
            buf.copy_within(scanned..filled, 0);
            filled -= scanned;
        }
        Ok(match found {
            Some((type_name, text)) => Found::Section {
                plugin: &self.plugins()[type_name.as_str()],
                text,
            },
            None => Found::Absent,
        })
    }
}
