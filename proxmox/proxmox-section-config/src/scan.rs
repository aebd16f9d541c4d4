//! [`SectionConfig::scan`]: the sections of a config as spans of its text,
//! validated as [`SectionConfig::parse_with`] validates them, at close to
//! the speed of a pass that only finds the line ends.
//!
//! Text in the writer's layout and order is read in one pass
//! ([`one_pass`]): each line matched as the writer orders a section's
//! lines, each value checked where it stands and its end found by that
//! check; for [`SectionConfig::scan_as_written`] the same pass also tells
//! whether the text is byte for byte the write's own. Any other text, and
//! text that pass gives up on, is read in two passes:
//! 1. one vectorized pass (SSE2, 16 bytes a step) finds every line end
//!    and checks that every byte but a line's first is printable ASCII or
//!    a line feed (so no value holds a control character; the second pass
//!    takes only a tab, a line feed or a header's letter first);
//! 2. one pass over the lines: a header `TYPE: ID`, then lines
//!    `<tab>KEY<space>VALUE`: first as the writer orders them (each line
//!    matched as one word against the properties after the previous one,
//!    its value checked in one step, [`InOrder`](crate::plugin::InOrder));
//!    a section in any other order, or one that does not pass so, again
//!    from its start with each key looked up, each value checked by its
//!    schema through a check made once per property ([`ValueCheck`]),
//!    duplicates and missing required properties found with bit sets;
//!    ids checked by the id schema and kept unique with a hash table
//!    ([`SectionIds`], which
//!    [`SectionConfig::scan_with_ids`] hands on as a lookup table by id);
//!    a section ends at an empty line.
//!
//! Anything else — another layout (CRLF, spaces for the tab, padding),
//! non-ASCII text, array or additional properties, and every error — is
//! left to [`SectionConfig::parse_with`] over the whole text, which gives
//! the sections or the error. So `scan` accepts exactly what `parse_with`
//! accepts, with the same sections, and refuses what it refuses, with the
//! same message (tested against it in `tests`, and fuzzed).

mod chunked;
mod one_pass;

pub use chunked::{FIND_CHUNK, Found};

use one_pass::WriterForm;

use std::hash::BuildHasher;
use std::path::Path;

use anyhow::Error;
use rustc_hash::FxBuildHasher;

use crate::plugin::{
    FormatCheck, InOrderCheck, KeyPattern, NO_KEY, ScanPlan, ValueCheck, is_integer_within,
};
use crate::{
    ESTIMATED_SECTION_SIZE, MAX_LINE_LENGTH, PropertyRef, SectionConfig, SectionConfigPlugin,
};

/// One valid section of a config, as [`SectionConfig::scan`] found it.
#[derive(Clone, Copy, Debug)]
pub struct SectionSpan<'a> {
    /// The plugin of its type.
    pub plugin: &'a SectionConfigPlugin,
    /// The section id from the header.
    pub id: &'a str,
    /// Line number of the header.
    pub line: usize,
    /// The section's text, as [`SectionRef::text`](crate::SectionRef::text):
    /// what [`SectionConfig::read_validated`] reads again.
    pub text: &'a str,
}

/// One valid section of a config as places in its text: what
/// [`SectionConfig::scan_places_with_ids`] gives, a [`SectionSpan`]
/// without its line and its slices, for a caller that keeps the text
/// and would keep the places anyway (no slice of it made and its place
/// taken again).
#[derive(Clone, Debug)]
pub struct SectionPlace<'a> {
    /// The plugin of its type.
    pub plugin: &'a SectionConfigPlugin,
    /// Where [`SectionSpan::text`] is in the text.
    pub text: std::ops::Range<u32>,
    /// Where [`SectionSpan::id`] is in the text.
    pub id: std::ops::Range<u32>,
}

impl<'a> SectionPlace<'a> {
    /// The places of `span`, a section of `raw` (shorter than 4 GiB).
    fn of(raw: &str, span: &SectionSpan<'a>) -> Self {
        let place = |part: &str| {
            let at = offset_in(raw, part) as u32;
            at..at + part.len() as u32
        };
        Self {
            plugin: span.plugin,
            text: place(span.text),
            id: place(span.id),
        }
    }
}

/// What [`SectionConfig::scan_as_written`] found in a valid text.
#[derive(Debug)]
pub enum Scanned<'a> {
    /// The text is byte for byte what [`SectionConfig::write`] gives for
    /// its sections: the sections (as [`SectionConfig::scan`] gives them;
    /// each one's text is followed by a line feed) and, per section, where
    /// in the text its value of the property asked for is, if it has one.
    AsWritten {
        /// The sections, in file order.
        sections: Vec<SectionSpan<'a>>,
        /// Per section: where its value is, as a range of the text.
        values: Vec<Option<std::ops::Range<usize>>>,
    },
    /// Any other valid text, or one not told (not printable ASCII, not
    /// in the writer's order, an empty value): its sections as
    /// [`SectionConfig::scan`] gives them.
    Sections(Vec<SectionSpan<'a>>),
}

impl std::fmt::Debug for SectionConfigPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SectionConfigPlugin")
            .field("type_name", &self.type_name())
            .finish_non_exhaustive()
    }
}

/// The ids of a scan's sections, as positions in its spans hashed by id:
/// the table the scan's duplicate-id check builds, kept as a lookup table
/// by id for whoever keeps the sections in the same order.
///
/// It holds positions only; a lookup compares the id it is asked for with
/// the id at each position it finds (as the caller gives them), so a table
/// of other sections can miss an id but never return another id's
/// position.
///
/// Open addressing with linear probing, at most three quarters full: a
/// slot is 0 (empty) or a position + 1 in its low 32 bits under the high
/// 32 bits of its id's hash ([`SectionIds::hash`]: ids come from a config
/// file, not the network). A probe compares those bits first and the ids
/// only where they are equal; they also give a slot's place again when
/// the table grows (a slot's place is its hash's top bits). Small enough
/// to be inlined in the scan's loop, where a general table's insert was a
/// call of two (122 instructions an id; about 60 now).
pub struct SectionIds {
    /// 2^`bits` slots.
    slots: Vec<u64>,
    /// log2 of the number of slots (3 to 32).
    bits: u32,
    /// How many slots are taken.
    len: usize,
}

impl std::fmt::Debug for SectionIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SectionIds")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Default for SectionIds {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl SectionIds {
    /// A table of the ids at positions `0..count`, `id_at` giving the id
    /// at each; `None` if an id is there twice (or `count` is 2^32 - 1 or
    /// more).
    pub fn new<'s>(count: usize, id_at: impl Fn(usize) -> &'s str) -> Option<Self> {
        let mut table = Self::with_capacity(count);
        for position in 0..count {
            if !table.insert(id_at(position).as_bytes(), position, |at| {
                id_at(at).as_bytes()
            }) {
                return None;
            }
        }
        Some(table)
    }

    /// A table with room for `capacity` ids before it grows.
    fn with_capacity(capacity: usize) -> Self {
        // at most three quarters full; 2^32 slots at most (a slot's place
        // is taken from its 32 bits of hash)
        let slots = (capacity.min(3 << 29) / 3 * 4 + 4)
            .next_power_of_two()
            .max(8);
        Self {
            slots: vec![0; slots],
            bits: slots.trailing_zeros(),
            len: 0,
        }
    }

    /// The hash of an id: one of 8 to 16 bytes (as most are) by its
    /// first and last 8 bytes (overlapping below 16; the words the safe
    /// id check reads) and its length, folded by one 128-bit multiply
    /// (as foldhash folds); any other by FxHash.
    #[inline(always)]
    fn hash(id: &[u8]) -> u64 {
        // any two odd constants with their bits spread
        const HEAD: u64 = 0x243f_6a88_85a3_08d3;
        const TAIL: u64 = 0x1319_8a2e_0370_7345;
        match (id.first_chunk::<8>(), id.last_chunk::<8>()) {
            (Some(head), Some(tail)) if id.len() <= 16 => {
                let head = u64::from_le_bytes(*head) ^ HEAD;
                let tail = u64::from_le_bytes(*tail) ^ TAIL ^ id.len() as u64;
                let product = u128::from(head) * u128::from(tail);
                product as u64 ^ (product >> 64) as u64
            }
            _ => FxBuildHasher.hash_one(id),
        }
    }

    /// Where the id of `hash` is: `Ok` with its position if `is_id` holds
    /// for a position of its hash's bits, else `Err` with the empty slot
    /// where it would go (there is one: the table is never full).
    #[inline(always)]
    fn find(&self, hash: u64, is_id: impl Fn(usize) -> bool) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        // the top bits of the hash: those a slot keeps
        let mut at = (hash >> (64 - self.bits)) as usize;
        loop {
            let slot = self.slots[at & mask];
            if slot == 0 {
                return Err(at & mask);
            }
            let position = (slot as u32 - 1) as usize;
            if slot >> 32 == hash >> 32 && is_id(position) {
                return Ok(position);
            }
            at += 1;
        }
    }

    /// Adds `id` at `position`; `false` if `id` is there already (or the
    /// position does not fit). `id_at` gives the id at each position in
    /// the table.
    #[inline(always)]
    fn insert<'s>(
        &mut self,
        id: &[u8],
        position: usize,
        id_at: impl Fn(usize) -> &'s [u8],
    ) -> bool {
        self.insert_hashed(Self::hash(id), id, position, id_at)
    }

    /// [`SectionIds::insert`] of an id whose hash is `hash`.
    #[inline(always)]
    fn insert_hashed<'s>(
        &mut self,
        hash: u64,
        id: &[u8],
        position: usize,
        id_at: impl Fn(usize) -> &'s [u8],
    ) -> bool {
        // a position + 1 fits in a slot's low 32 bits
        let Some(entry) = u32::try_from(position).ok().and_then(|p| p.checked_add(1)) else {
            return false;
        };
        if self.len >= self.slots.len() / 4 * 3 && !self.grow() {
            return false;
        }
        match self.find(hash, |at| id_at(at) == id) {
            Ok(_) => false,
            Err(empty) => {
                self.slots[empty] = hash >> 32 << 32 | u64::from(entry);
                self.len += 1;
                true
            }
        }
    }

    /// Twice the slots, each taken one in its place by its hash's bits;
    /// `false` where that would be more than 2^32 slots.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) -> bool {
        if self.bits >= 32 {
            return false;
        }
        let mut grown = Self {
            slots: vec![0; self.slots.len() * 2],
            bits: self.bits + 1,
            len: self.len,
        };
        for &slot in self.slots.iter().filter(|&&slot| slot != 0) {
            // no two slots hold one position: none is compared
            if let Err(empty) = grown.find(slot, |_| false) {
                grown.slots[empty] = slot;
            }
        }
        *self = grown;
        true
    }

    /// The position of `id`, where `id_at` gives the id at each position
    /// (the table's sections, in the same order): only a position whose
    /// id is `id` is returned.
    pub fn position<'s>(&self, id: &str, id_at: impl Fn(usize) -> &'s str) -> Option<usize> {
        self.position_hashed(Self::hash(id.as_bytes()), id, id_at)
    }

    /// [`SectionIds::position`] of an id whose hash is `hash`.
    #[inline(always)]
    fn position_hashed<'s>(
        &self,
        hash: u64,
        id: &str,
        id_at: impl Fn(usize) -> &'s str,
    ) -> Option<usize> {
        self.find(hash, |at| id_at(at) == id).ok()
    }

    /// How many ids the table holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table holds no id.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl SectionConfig {
    /// The sections of `raw`, validated as [`SectionConfig::parse_with`]
    /// validates them, in file order. `filename` is only used in errors.
    ///
    /// # Errors
    ///
    /// Those of [`SectionConfig::parse_with`], word for word.
    pub fn scan<'a>(
        &'a self,
        filename: impl AsRef<Path>,
        raw: &'a str,
    ) -> Result<Vec<SectionSpan<'a>>, Error> {
        self.scan_with_ids(filename, raw).map(|(spans, _)| spans)
    }

    /// [`SectionConfig::scan`], and the table of the sections' ids its
    /// duplicate check built, if it took the fast path (`None` where the
    /// parser read the text: build one with [`SectionIds::new`] then).
    ///
    /// # Errors
    ///
    /// Those of [`SectionConfig::parse_with`], word for word.
    pub fn scan_with_ids<'a>(
        &'a self,
        filename: impl AsRef<Path>,
        raw: &'a str,
    ) -> Result<(Vec<SectionSpan<'a>>, Option<SectionIds>), Error> {
        let mut spans = Vec::with_capacity(raw.len() / ESTIMATED_SECTION_SIZE + 1);
        if let Some(ids) = one_pass::scan_in_writers_order(self, raw, &mut spans) {
            return Ok((spans, Some(ids)));
        }
        spans.clear();
        self.scan_in_two_passes(filename, raw, spans)
    }

    /// [`SectionConfig::scan_with_ids`], each section as its places in
    /// `raw` ([`SectionPlace`]).
    ///
    /// # Errors
    ///
    /// Those of [`SectionConfig::parse_with`], word for word; for a text
    /// of 4 GiB or more (whose places a `u32` cannot hold), that it is too
    /// large.
    pub fn scan_places_with_ids<'a>(
        &'a self,
        filename: impl AsRef<Path>,
        raw: &'a str,
    ) -> Result<(Vec<SectionPlace<'a>>, Option<SectionIds>), Error> {
        if u32::try_from(raw.len()).is_err() {
            anyhow::bail!(
                "parsing {:?} failed: the file is too large ({} bytes)",
                filename.as_ref(),
                raw.len()
            );
        }
        let mut places = Vec::with_capacity(raw.len() / ESTIMATED_SECTION_SIZE + 1);
        if let Some(ids) = one_pass::places_in_writers_order(self, raw, &mut places) {
            return Ok((places, Some(ids)));
        }
        let spans = Vec::with_capacity(places.capacity());
        let (spans, ids) = self.scan_in_two_passes(filename, raw, spans)?;
        let places = spans
            .iter()
            .map(|span| SectionPlace::of(raw, span))
            .collect();
        Ok((places, ids))
    }

    /// [`SectionConfig::scan`], telling where it can whether `raw` is byte
    /// for byte what [`SectionConfig::write`] gives for its sections (so a
    /// writer may keep the text as it is), and where each section's value
    /// of `property` is.
    ///
    /// The one pass tells it on its way ([`one_pass`]), for text in the
    /// writer's layout and order of printable ASCII; anything else is
    /// [`Scanned::Sections`], whatever the write gives for it (a caller
    /// that must know compares for itself).
    ///
    /// # Errors
    ///
    /// Those of [`SectionConfig::parse_with`], word for word.
    pub fn scan_as_written<'a>(
        &'a self,
        filename: impl AsRef<Path>,
        raw: &'a str,
        property: &str,
    ) -> Result<Scanned<'a>, Error> {
        let mut spans = Vec::with_capacity(raw.len() / ESTIMATED_SECTION_SIZE + 1);
        let mut form = WriterForm::new(property);
        let mut values = Vec::with_capacity(spans.capacity());
        if one_pass::scan_as_written(self, raw, &mut spans, &mut form, &mut values).is_some() {
            return Ok(match form.exact {
                true => Scanned::AsWritten {
                    sections: spans,
                    values,
                },
                false => Scanned::Sections(spans),
            });
        }
        spans.clear();
        let (spans, _) = self.scan_in_two_passes(filename, raw, spans)?;
        Ok(Scanned::Sections(spans))
    }

    /// [`SectionConfig::scan_with_ids`] of text the one pass gave up on:
    /// the two passes, else the parser; `spans` is empty, with room.
    fn scan_in_two_passes<'a>(
        &'a self,
        filename: impl AsRef<Path>,
        raw: &'a str,
        mut spans: Vec<SectionSpan<'a>>,
    ) -> Result<(Vec<SectionSpan<'a>>, Option<SectionIds>), Error> {
        if let Some(ids) = fast_scan(self, raw, &mut spans) {
            return Ok((spans, Some(ids)));
        }
        spans.clear();
        self.parse_with(filename, raw, |section| {
            // the same text, plugin and id, at the lifetime of `raw`
            let id_at = offset_in(raw, section.id);
            let text_at = offset_in(raw, section.text);
            spans.push(SectionSpan {
                plugin: &self.plugins()[section.plugin.type_name()],
                id: &raw[id_at..id_at + section.id.len()],
                line: section.line,
                text: &raw[text_at..text_at + section.text.len()],
            });
            Ok(())
        })?;
        Ok((spans, None))
    }
}

/// Where `part` (a slice of `raw`) starts in `raw`.
fn offset_in(raw: &str, part: &str) -> usize {
    part.as_ptr() as usize - raw.as_ptr() as usize
}

/// The writer's layout, read fast, with the table of its ids; `None`
/// where the parser must decide.
fn fast_scan<'a>(
    config: &'a SectionConfig,
    raw: &'a str,
    spans: &mut Vec<SectionSpan<'a>>,
) -> Option<SectionIds> {
    let bytes = raw.as_bytes();
    let ends = classify(bytes)?;
    let mut ids = SectionIds::with_capacity(spans.capacity());
    let mut last: Option<(&'a SectionConfigPlugin, &'a ScanPlan)> = None;
    let safe_id = safe_id_bounds(config);
    // the line `next` starts at `start`
    let (mut next, mut start) = (0usize, 0usize);

    while let Some(&end) = ends.get(next) {
        let end = end as usize;
        if end == start {
            // a blank line between sections
            (next, start) = (next + 1, end + 1);
            continue;
        }
        // the previous section's type first: files are mostly of one type
        let (plugin, plan, id_at) = match last {
            Some((plugin, plan))
                if end - start > plan.header.len
                    && plan.header.matches(word_at(bytes, start, end)?) =>
            {
                (plugin, plan, plan.header.len)
            }
            _ => header(config, &bytes[start..end])?,
        };
        last = Some((plugin, plan));
        let id = raw.get(start + id_at..end)?;
        if !id_passes(config, safe_id, id.as_bytes()) {
            return None;
        }
        // its position: the span pushed below
        if !ids.insert(id.as_bytes(), spans.len(), |at| spans[at].id.as_bytes()) {
            return None;
        }
        let (lines, section_end) = scan_in_order(bytes, &ends[next + 1..], end, plan)
            .or_else(|| scan_properties(bytes, &ends[next + 1..], end, plan))?;
        spans.push(SectionSpan {
            plugin,
            id,
            line: next + 1,
            text: &raw[start..section_end],
        });
        // past the header, its lines and the blank line that ended it
        next += 1 + lines;
        start = ends
            .get(next - 1)
            .map_or(bytes.len(), |end| *end as usize + 1);
    }
    Some(ids)
}

/// The length bounds of the id check where it is the safe id's (as a
/// config's ids mostly are): told once per scan, for [`id_passes`].
fn safe_id_bounds(config: &SectionConfig) -> Option<(usize, usize)> {
    match config.id_check() {
        ValueCheck::String {
            min,
            max,
            format: FormatCheck::SafeId,
        } => Some((*min, *max)),
        _ => None,
    }
}

/// Whether a section id (printable ASCII, as the scan has found it)
/// passes the id check as the parser keeps it, `safe_id` being
/// [`safe_id_bounds`] of the config.
#[inline(always)]
fn id_passes(config: &SectionConfig, safe_id: Option<(usize, usize)>, id: &[u8]) -> bool {
    match safe_id {
        // a safe id holds no space: not padded either
        Some((min, max)) => (min..=max).contains(&id.len()) && is_safe_id(id),
        None => std::str::from_utf8(id).is_ok_and(|id| {
            !id.starts_with(' ') && !id.ends_with(' ') && config.id_check().check(id) == Some(true)
        }),
    }
}

/// The property lines of a section whose header ends at `header_end`,
/// given the ends of the lines after the header: how many lines the
/// section holds after its header (with the blank line that ends it) and
/// where its last line ends. Read as bytes: the vector pass has found
/// every byte of a value printable ASCII. Not inlined: its loop keeps
/// its state in registers then.
#[inline(never)]
fn scan_properties(
    bytes: &[u8],
    ends: &[u32],
    header_end: usize,
    plan: &ScanPlan,
) -> Option<(usize, usize)> {
    let mut seen = 0u64;
    let mut section_end = header_end;
    let mut lines = 0;
    for &end in ends {
        let (start, end) = (section_end + 1, end as usize);
        lines += 1;
        if end == start {
            break;
        }
        let (&b'\t', body) = bytes.get(start..end)?.split_first()? else {
            return None;
        };
        let index = key_index(plan, body)?;
        let (name, check) = plan.checks.get(index)?;
        // `KEY ` matched (by word or search); the rest is the value
        let value = body.get(name.len() + 1..)?;
        let bit = 1u64 << index;
        if seen & bit != 0 || !is_unpadded(value) || check.check_bytes(value) != Some(true) {
            return None;
        }
        seen |= bit;
        section_end = end;
    }
    (seen & plan.required == plan.required).then_some((lines, section_end))
}

/// [`scan_properties`] of a section whose properties are in the writer's
/// order (by name, each once): each line matched against the next
/// properties in turn as one word (`<tab>KEY `), its value checked in one
/// step. `None` where that does not hold or a check does not pass, to
/// leave the section to [`scan_properties`] from its start; so it accepts
/// only what [`scan_properties`] accepts, with the same result.
#[inline(always)]
fn scan_in_order(
    bytes: &[u8],
    ends: &[u32],
    header_end: usize,
    plan: &ScanPlan,
) -> Option<(usize, usize)> {
    let steps = plan.in_order.as_slice();
    let mut next = 0;
    let mut seen = 0u64;
    let mut section_end = header_end;
    let mut lines = 0;
    for &end in ends {
        let (start, end) = (section_end + 1, end as usize);
        lines += 1;
        if end == start {
            break;
        }
        let word = word_at(bytes, start, end)?;
        // the next property present: names in order, each once
        let (skipped, step) = steps
            .get(next..)?
            .iter()
            .enumerate()
            .find(|(_, step)| (word ^ step.pattern) & step.mask == 0)?;
        let index = next + skipped;
        let value = bytes.get(start + step.value_at..end)?;
        let passes = match step.check {
            InOrderCheck::Integer { min, max, digits } => {
                is_integer_within(value, min, max, digits)
            }
            InOrderCheck::Fingerprint => is_fingerprint(value),
            InOrderCheck::Text { min, max } => {
                (min..=max).contains(&value.len()) && is_unpadded(value)
            }
            InOrderCheck::Other => other_passes(plan, index, value),
        };
        if !passes {
            return None;
        }
        seen |= 1 << index;
        next = index + 1;
        section_end = end;
    }
    (seen & plan.required == plan.required).then_some((lines, section_end))
}

/// [`InOrderCheck::Other`]: the value of the property at `index` neither
/// empty nor padded, and passing the property's check. Not inlined: the
/// in-order loop keeps its state in registers without the arms of
/// [`ValueCheck::check_bytes`].
#[inline(never)]
fn other_passes(plan: &ScanPlan, index: usize, value: &[u8]) -> bool {
    is_unpadded(value)
        && plan
            .checks
            .get(index)
            .is_some_and(|(_, check)| check.check_bytes(value) == Some(true))
}

/// Whether a value is one the parser keeps as it is: not empty, and no
/// space it would trim before or after it.
#[inline(always)]
fn is_unpadded(value: &[u8]) -> bool {
    !matches!(value, [] | [b' ', ..] | [.., b' '])
}

/// The first 16 bytes of the line `start..end` of `bytes` as a
/// [`KeyPattern::word`], read on past the line's end where the text goes
/// on: a pattern (`<tab>KEY `, `TYPE: `) holds no line feed, so it only
/// matches a line that holds it whole (the pattern of a name it cannot
/// hold is a line feed first, which starts no line: a blank line ends a
/// section before it is matched).
#[inline(always)]
fn word_at(bytes: &[u8], start: usize, end: usize) -> Option<u128> {
    match bytes.get(start..).and_then(|rest| rest.first_chunk::<16>()) {
        Some(word) => Some(u128::from_le_bytes(*word)),
        None => Some(KeyPattern::word(bytes.get(start..end)?)),
    }
}

/// The index of the property whose line (after the tab) is `body`: the
/// one its first byte names, if its `KEY ` starts the line; else the one
/// whose `KEY ` does, else the one named up to the first space (there is
/// at most one of each: names are unique and hold no space).
#[inline(always)]
fn key_index(plan: &ScanPlan, body: &[u8]) -> Option<usize> {
    let word = KeyPattern::word(body);
    let guess = plan.first_byte[usize::from(*body.first()?)];
    if guess != NO_KEY && plan.keys.get(usize::from(guess))?.matches(word) {
        return Some(usize::from(guess));
    }
    plan.keys
        .iter()
        .position(|key| key.matches(word))
        .or_else(|| {
            let key = &body[..memchr::memchr(b' ', body)?];
            plan.checks
                .binary_search_by(|(name, _)| name.as_bytes().cmp(key))
                .ok()
        })
}

/// One section of validated text in the writer's layout, read again for
/// [`SectionConfig::read_validated`]: its plugin, id and properties (as
/// the parser gives them), without checking a value; `None` for any other
/// layout (the parser reads it then).
pub(crate) fn fast_read<'a>(
    config: &'a SectionConfig,
    text: &'a str,
    properties: &mut Vec<PropertyRef<'a>>,
) -> Option<(&'a SectionConfigPlugin, &'a str)> {
    let bytes = text.as_bytes();
    let header_end = memchr::memchr(b'\n', bytes).unwrap_or(bytes.len());
    let line = &bytes[..header_end];
    // the types' header patterns before a hash of the type name: a config
    // has a type or two
    let word = KeyPattern::word(line);
    let (plugin, plan, id_at) = config
        .plugins()
        .values()
        .find_map(|plugin| {
            let plan = plugin.scan_plan()?;
            (line.len() > plan.header.len && plan.header.matches(word)).then_some((
                plugin,
                plan,
                plan.header.len,
            ))
        })
        .or_else(|| header(config, line))?;
    let id = text.get(id_at..header_end)?;
    if id.is_empty() || !is_ascii_text(id.as_bytes()) {
        return None;
    }
    properties.reserve(plan.checks.len());
    let mut next_key = 0;
    let mut start = header_end + 1;
    while start < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |at| start + at);
        let line = &text[start..end];
        start = end + 1;
        let body = line.strip_prefix('\t')?.as_bytes();
        let word = KeyPattern::word(body);
        let index = next_key
            + plan.keys[next_key..]
                .iter()
                .position(|key| key.matches(word))?;
        let (name, check) = &plan.checks[index];
        let value = line.get(2 + name.len()..)?;
        if matches!(check, ValueCheck::Unhandled) || !is_ascii_text(value.as_bytes()) {
            return None;
        }
        properties.push(PropertyRef {
            key: name,
            value,
            schema: Some(plugin.schema_at(index)),
            array: false,
        });
        next_key = index + 1;
    }
    Some((plugin, id))
}

/// Whether `text` is not empty and neither starts nor ends with
/// whitespace or a byte that is not ASCII (what the parser would trim is
/// left to it).
fn is_ascii_text(text: &[u8]) -> bool {
    let plain = |c: &u8| c.is_ascii() && !c.is_ascii_whitespace() && *c != 0x0b;
    text.first().is_some_and(plain) && text.last().is_some_and(plain)
}

/// The plugin of a header line, its scan plan and where the id starts;
/// `None` for anything but `TYPE: ID` of a known type that can be scanned.
fn header<'a>(
    config: &'a SectionConfig,
    line: &[u8],
) -> Option<(&'a SectionConfigPlugin, &'a ScanPlan, usize)> {
    if !line.first()?.is_ascii_alphabetic() {
        return None;
    }
    let colon = memchr::memchr(b':', line)?;
    if line.get(colon + 1) != Some(&b' ') || line[colon - 1] == b' ' {
        return None;
    }
    let type_name = std::str::from_utf8(&line[..colon]).ok()?;
    let plugin = config.plugins().get(type_name)?;
    Some((plugin, plugin.scan_plan()?, colon + 2))
}

/// The line ends of `bytes` (as `str::lines` splits, the last line end
/// optional); `None` if a byte that does not start a line is neither
/// printable ASCII nor a line feed, a line is longer than
/// [`MAX_LINE_LENGTH`], or the text is 4 GiB or more.
///
/// The first byte of a line is not checked here: the line pass reads
/// every line's first byte and takes only a line feed (a blank line), a
/// tab (a property) or a header's first letter. So a tab passes where
/// it starts a property line and nowhere else.
fn classify(bytes: &[u8]) -> Option<Vec<u32>> {
    u32::try_from(bytes.len()).ok()?;
    let mut state = LineEnds {
        // lines of the writer's layout are about 37 bytes long; a block
        // of 64 bytes adds at most 64 ends, so each block checks the room
        // left, not each end
        ends: vec![0u32; bytes.len() / 32 + 64],
        count: 0,
        bad: 0,
        too_long: false,
        // the text's first byte starts a line
        starts_line: 1,
        line_start: 0,
    };
    let (blocks, rest) = bytes.as_chunks::<64>();
    let mut base = 0u32;
    for block in blocks {
        state.add(block_masks(block), base);
        base += 64;
    }
    state.add(scalar_masks(rest), base);
    let LineEnds {
        mut ends,
        count,
        bad,
        too_long,
        line_start,
        ..
    } = state;
    if bad != 0 || too_long || bytes.len() - line_start as usize > MAX_LINE_LENGTH {
        return None;
    }
    ends.truncate(count);
    if bytes.last().is_some_and(|last| *last != b'\n') {
        ends.push(bytes.len() as u32);
    }
    Some(ends)
}

/// What [`classify`] has found so far.
struct LineEnds {
    /// The line ends, in the first `count` slots.
    ends: Vec<u32>,
    count: usize,
    /// Bytes found that are neither printable ASCII nor line feeds and do
    /// not start a line (bits of their blocks, or-ed).
    bad: u64,
    too_long: bool,
    /// Whether the next block's first byte starts a line (1 or 0).
    starts_line: u64,
    /// Where the current line starts.
    line_start: u32,
}

impl LineEnds {
    /// The masks of the block at `base`.
    #[inline(always)]
    fn add(&mut self, masks: Masks, base: u32) {
        let line_starts = (masks.line_ends << 1) | self.starts_line;
        self.starts_line = masks.line_ends >> 63;
        self.bad |= masks.other & !line_starts;
        let mut mask = masks.line_ends;
        if mask == 0 {
            return;
        }
        // only a block's first line can be longer than the block
        self.too_long |=
            (base + mask.trailing_zeros() - self.line_start) as usize > MAX_LINE_LENGTH;
        self.line_start = base + 64 - mask.leading_zeros();
        if self.ends.len() < self.count + 64 {
            self.ends.resize(2 * self.ends.len() + 64, 0);
        }
        let room = &mut self.ends[self.count..self.count + 64];
        let mut added = 0;
        while mask != 0 {
            room[added] = base + mask.trailing_zeros();
            added += 1;
            mask &= mask - 1;
        }
        self.count += added;
    }
}

/// Of up to 64 bytes (bit i: byte i): which are line feeds, and which
/// are something else than printable ASCII or a line feed.
struct Masks {
    line_ends: u64,
    other: u64,
}

fn scalar_masks(bytes: &[u8]) -> Masks {
    let mut masks = Masks {
        line_ends: 0,
        other: 0,
    };
    for (i, &byte) in bytes.iter().enumerate() {
        let line_feed = byte == b'\n';
        masks.line_ends |= u64::from(line_feed) << i;
        masks.other |= u64::from(!(b' '..=b'~').contains(&byte) && !line_feed) << i;
    }
    masks
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn block_masks(block: &[u8; 64]) -> Masks {
    use safe_arch::{
        add_i8_m128i, cmp_eq_mask_i8_m128i, cmp_gt_mask_i8_m128i, m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };

    let line_feed = set_splat_i8_m128i(b'\n' as i8);
    let one = set_splat_i8_m128i(1);
    let space = set_splat_i8_m128i(b' ' as i8);
    let (mut line_ends, mut good) = (0u64, 0u64);
    for (i, part) in block.as_chunks::<16>().0.iter().enumerate() {
        let bytes = m128i::from(*part);
        // x + 1, signed, is above a space for ' ' to '~' alone: 0x7f and
        // up become negative (0xff becomes 0), control bytes stay small
        let printable = cmp_gt_mask_i8_m128i(add_i8_m128i(bytes, one), space);
        let is_line_feed = cmp_eq_mask_i8_m128i(bytes, line_feed);
        line_ends |= u64::from(move_mask_i8_m128i(is_line_feed) as u16) << (16 * i);
        good |= u64::from(move_mask_i8_m128i(printable | is_line_feed) as u16) << (16 * i);
    }
    Masks {
        line_ends,
        other: !good,
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn block_masks(block: &[u8; 64]) -> Masks {
    scalar_masks(block)
}

/// Whether `value` is what
/// [`verify_fingerprint_sha256`](proxmox_schema::api_types::verify_fingerprint_sha256)
/// accepts: 32 bytes in hex of either case, colon-separated. Six 16-byte
/// steps (the last overlapping the fifth), each byte checked by two range
/// checks whose bounds are set per place: a colon's place takes `:` alone
/// (the first check, narrowed to one byte; the second takes nothing
/// there), any other place a digit (the first) or a letter `a` to `f` of
/// either case (the second).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
pub(crate) fn is_fingerprint(value: &[u8]) -> bool {
    use safe_arch::{
        add_i8_m128i, bitand_m128i, cmp_lt_mask_i8_m128i, m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };

    /// The bounds of a step that starts at a place `phase` (mod 3) after a
    /// colon's place: per byte, what the first check adds and the sum must
    /// be below (signed), and what the second check's sum must be below.
    const fn bounds(phase: usize) -> [[i8; 16]; 3] {
        let mut bounds = [[0i8; 16]; 3];
        let mut i = 0;
        while i < 16 {
            let (add, below, letter_below) = match (phase + i) % 3 == 2 {
                // x + (0x80 - ':') is -128 for ':' alone; nothing is below -128
                true => (0x80u8.wrapping_sub(b':') as i8, -128 + 1, -128),
                // x + 0x50 is below -128 + 10 for '0' to '9' alone
                false => (0x50, -128 + 10, -128 + 6),
            };
            bounds[0][i] = add;
            bounds[1][i] = below;
            bounds[2][i] = letter_below;
            i += 1;
        }
        bounds
    }
    /// Where each step starts; its places' bounds are those of its start
    /// mod 3.
    const STEPS: [usize; 6] = [0, 16, 32, 48, 64, 95 - 16];
    const BOUNDS: [[[i8; 16]; 3]; 3] = [bounds(0), bounds(1), bounds(2)];

    let Ok(bytes) = <&[u8; 95]>::try_from(value) else {
        return false;
    };
    // (x | 0x20) + 0x1f is below -128 + 6 for 'a' to 'f' and 'A' to 'F'
    // alone
    let (lower, to_letter) = (set_splat_i8_m128i(0x20), set_splat_i8_m128i(0x1f));
    let mut all = set_splat_i8_m128i(-1);
    for start in STEPS {
        let part: [u8; 16] = bytes[start..start + 16].try_into().expect("16 bytes");
        let x = m128i::from(part);
        // read from the constants where they are used (no array of them
        // made first: that is a call of its own where the scan does not
        // inline it)
        let [add, below, letter_below] = &BOUNDS[start % 3];
        let [add, below, letter_below] = [add, below, letter_below].map(|part| m128i::from(*part));
        let first = cmp_lt_mask_i8_m128i(add_i8_m128i(x, add), below);
        let second = cmp_lt_mask_i8_m128i(add_i8_m128i(x | lower, to_letter), letter_below);
        all = bitand_m128i(all, first | second);
    }
    move_mask_i8_m128i(all) == 0xffff
}

/// Whether `value` is what `verify_fingerprint_sha256` accepts (the
/// function itself, where there is no SSE2).
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
pub(crate) fn is_fingerprint(value: &[u8]) -> bool {
    std::str::from_utf8(value)
        .is_ok_and(|value| proxmox_schema::api_types::verify_fingerprint_sha256(value).is_ok())
}

/// Whether `value` is what
/// [`verify_safe_id`](proxmox_schema::api_types::verify_safe_id) accepts:
/// a letter, digit or `_`, then letters, digits, `.`, `_` or `-`. Checked
/// 16 bytes a step (a value of 8 to 15 bytes as its first and last 8,
/// overlapping), the first byte on its own; below 8 bytes, byte by byte.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
pub(crate) fn is_safe_id(value: &[u8]) -> bool {
    /// Whether each of 16 bytes may stand in a safe id after its first.
    #[inline(always)]
    fn all_allowed(part: [u8; 16]) -> bool {
        safe_id_bytes(part) == 0xffff
    }

    let Some(&first) = value.first() else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || first == b'_') {
        return false;
    }
    if let (Some(head), Some(tail)) = (value.first_chunk::<8>(), value.last_chunk::<8>())
        && value.len() < 16
    {
        let mut part = [0u8; 16];
        part[..8].copy_from_slice(head);
        part[8..].copy_from_slice(tail);
        return all_allowed(part);
    }
    match value.last_chunk::<16>() {
        Some(tail) => {
            value
                .as_chunks::<16>()
                .0
                .iter()
                .all(|part| all_allowed(*part))
                && all_allowed(*tail)
        }
        None => value[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')),
    }
}

/// Per byte of `part` (bit `i` for byte `i`), whether it may stand in a
/// safe id after its first: a letter, digit, `.`, `_` or `-`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
pub(crate) fn safe_id_bytes(part: [u8; 16]) -> u32 {
    use safe_arch::{
        add_i8_m128i, cmp_eq_mask_i8_m128i, cmp_lt_mask_i8_m128i, m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };

    let x = m128i::from(part);
    // x + (0x80 - low) is below -128 + width (signed) for the bytes from
    // `low` on, `width` of them, alone
    let range = |x: m128i, low: u8, width: i8| {
        cmp_lt_mask_i8_m128i(
            add_i8_m128i(x, set_splat_i8_m128i(0x80u8.wrapping_sub(low) as i8)),
            set_splat_i8_m128i(-128 + width),
        )
    };
    // letters of either case (as lower case), '-' and '.', digits
    let allowed = range(x | set_splat_i8_m128i(0x20), b'a', 26)
        | range(x, b'-', 2)
        | range(x, b'0', 10)
        | cmp_eq_mask_i8_m128i(x, set_splat_i8_m128i(b'_' as i8));
    move_mask_i8_m128i(allowed) as u32
}

/// Whether `value` is what `verify_safe_id` accepts (the function
/// itself, where there is no SSE2).
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
pub(crate) fn is_safe_id(value: &[u8]) -> bool {
    std::str::from_utf8(value)
        .is_ok_and(|value| proxmox_schema::api_types::verify_safe_id(value).is_ok())
}

#[cfg(test)]
mod tests {
    use proxmox_schema::{
        ArraySchema, BooleanSchema, IntegerSchema, ObjectSchema, Schema, StringSchema,
    };

    use super::*;
    use crate::SectionConfigPlugin;

    const ID: Schema = StringSchema::new("Id.")
        .format(&proxmox_schema::api_types::SAFE_ID_FORMAT)
        .min_length(3)
        .max_length(8)
        .schema();
    const TEXT: Schema = StringSchema::new("Text.").max_length(6).schema();
    const INT: Schema = IntegerSchema::new("Int.").minimum(-5).maximum(500).schema();
    const FLAG: Schema = BooleanSchema::new("Flag.").schema();
    const STAMP: Schema = IntegerSchema::new("Stamp.").minimum(0).schema();
    const LIST: Schema = ArraySchema::new("List.", &TEXT).schema();
    const THING: ObjectSchema = ObjectSchema::new(
        "Thing.",
        &[
            ("flag", true, &FLAG),
            ("id", false, &ID),
            ("int", false, &INT),
            ("list", true, &LIST),
            ("text", true, &TEXT),
        ],
    );
    const OTHER: ObjectSchema =
        ObjectSchema::new("Other.", &[("text", true, &TEXT)]).additional_properties(true);

    fn config() -> SectionConfig {
        let mut config = SectionConfig::new(&ID);
        config.register_plugin(SectionConfigPlugin::new("thing", Some("id".into()), &THING));
        config.register_plugin(SectionConfigPlugin::new("other", None, &OTHER));
        config
    }

    /// What a test compares of a property.
    type Property = (String, String, bool, Option<*const Schema>);

    fn properties(section: &crate::SectionRef) -> Vec<Property> {
        section
            .properties
            .iter()
            .map(|p| {
                (
                    p.key.to_string(),
                    p.value.to_string(),
                    p.array,
                    p.schema.map(|s| s as *const Schema),
                )
            })
            .collect()
    }

    /// The scan and the parser on `text`: the same sections (type, id,
    /// line, text) or the same error, and each section read again with
    /// the properties the parser gave; returns whether the fast path took
    /// the text.
    fn agree(config: &SectionConfig, text: &str) -> bool {
        let mut parsed = Vec::new();
        let mut parsed_properties = Vec::new();
        let generic = config.parse_with("t.cfg", text, |section| {
            parsed.push((
                section.plugin.type_name().to_string(),
                section.id.to_string(),
                section.line,
                section.text.to_string(),
            ));
            parsed_properties.push((section.plugin.type_name().to_string(), properties(&section)));
            Ok(())
        });
        let scanned = config.scan("t.cfg", text);
        match (scanned, generic) {
            (Ok(spans), Ok(())) => {
                let spans: Vec<_> = spans
                    .iter()
                    .map(|s| {
                        (
                            s.plugin.type_name().to_string(),
                            s.id.to_string(),
                            s.line,
                            s.text.to_string(),
                        )
                    })
                    .collect();
                assert_eq!(spans, parsed, "{text:?}");
                for ((_, _, _, section_text), expected) in spans.iter().zip(&parsed_properties) {
                    let mut read = None;
                    config
                        .read_validated(section_text, |section| {
                            read = Some((
                                section.plugin.type_name().to_string(),
                                properties(&section),
                            ));
                            Ok(())
                        })
                        .unwrap();
                    assert_eq!(read.as_ref(), Some(expected), "{section_text:?}");
                }
            }
            (Err(ours), Err(theirs)) => assert_eq!(ours.to_string(), theirs.to_string()),
            (ours, theirs) => panic!("{text:?}: scan {ours:?}, parser {theirs:?}"),
        }
        // the fast path's id table (grown from nothing here) finds each
        // section at its position
        let mut fast = Vec::new();
        let ids = fast_scan(config, text, &mut fast);
        if let Some(ids) = &ids {
            assert_eq!(ids.len(), fast.len(), "{text:?}");
            for (position, span) in fast.iter().enumerate() {
                assert_eq!(ids.position(span.id, |at| fast[at].id), Some(position));
            }
        }
        // the one pass takes only what the two passes take, with the
        // same sections (the same slices of the text) and ids
        let mut one = Vec::new();
        if let Some(one_ids) = one_pass::scan_in_writers_order(config, text, &mut one) {
            assert!(ids.is_some(), "{text:?}: one pass only");
            assert_eq!(where_in(&one), where_in(&fast), "{text:?}");
            assert_eq!(one_ids.len(), one.len(), "{text:?}");
            for (position, span) in one.iter().enumerate() {
                assert_eq!(one_ids.position(span.id, |at| one[at].id), Some(position));
            }
        }
        places_agree(config, text, ids.is_some(), &one);
        // the keys' fingerprint, the things' integer
        let property = match config.plugins().contains_key("key") {
            true => "fingerprint",
            false => "int",
        };
        told_as_written(config, text, property);
        ids.is_some()
    }

    /// [`SectionConfig::scan_places_with_ids`] of `text` against the
    /// scan: the places of its sections, its id table at the same
    /// positions (one where the fast paths took the text: `fast`), the
    /// same error; the one pass's places against its spans `one`.
    fn places_agree(config: &SectionConfig, text: &str, fast: bool, one: &[SectionSpan]) {
        // the places: the scan's sections' places, its ids at the same
        // positions; from the one pass where it takes the text (the same
        // table as its spans')
        match (
            config.scan_places_with_ids("t.cfg", text),
            config.scan("t.cfg", text),
        ) {
            (Ok((places, places_ids)), Ok(spans)) => {
                let expected: Vec<_> = spans.iter().map(|s| SectionPlace::of(text, s)).collect();
                assert_eq!(placed(&places), placed(&expected), "{text:?}");
                assert_eq!(places_ids.is_some(), fast, "{text:?}");
                let id_at = |at: usize| {
                    let id = &places[at].id;
                    &text[id.start as usize..id.end as usize]
                };
                if let Some(places_ids) = places_ids {
                    assert_eq!(places_ids.len(), places.len(), "{text:?}");
                    for position in 0..places.len() {
                        assert_eq!(places_ids.position(id_at(position), id_at), Some(position));
                    }
                }
            }
            (Err(ours), Err(scan)) => assert_eq!(ours.to_string(), scan.to_string()),
            (ours, scan) => panic!("{text:?}: scan_places_with_ids {ours:?}, scan {scan:?}"),
        }
        let mut one_places = Vec::new();
        let one_ids = one_pass::places_in_writers_order(config, text, &mut one_places);
        assert_eq!(
            one_ids.is_some(),
            one_pass::scan_in_writers_order(config, text, &mut Vec::new()).is_some()
        );
        if let Some(one_ids) = one_ids {
            let expected: Vec<_> = one.iter().map(|s| SectionPlace::of(text, s)).collect();
            assert_eq!(placed(&one_places), placed(&expected), "{text:?}");
            assert_eq!(one_ids.len(), one_places.len(), "{text:?}");
        }
    }

    /// [`SectionConfig::scan_as_written`] of `text` against the scan and
    /// the generic parse and write: the same sections or error as the
    /// scan; told as written only where the write gives the text back
    /// byte for byte, each section's value of `property` where its line
    /// has it. Returns whether it was told so.
    fn told_as_written(config: &SectionConfig, text: &str, property: &str) -> bool {
        let scanned = config.scan("t.cfg", text);
        match (config.scan_as_written("t.cfg", text, property), scanned) {
            (Ok(Scanned::AsWritten { sections, values }), Ok(spans)) => {
                let data = config.parse("t.cfg", text).unwrap();
                let written = config.write("t.cfg", &data).unwrap();
                assert_eq!(written, text, "told as written, but the write differs");
                assert_eq!(where_in(&sections), where_in(&spans), "{text:?}");
                assert_eq!(values.len(), sections.len(), "{text:?}");
                let line_start = format!("\t{property} ");
                for (span, value) in sections.iter().zip(values) {
                    let expected = span.text.split('\n').find_map(|line| {
                        let value = line.strip_prefix(&line_start)?;
                        Some(offset_in(text, value)..offset_in(text, value) + value.len())
                    });
                    assert_eq!(value, expected, "{text:?}");
                    assert_eq!(
                        text.as_bytes()[offset_in(text, span.text) + span.text.len()],
                        b'\n'
                    );
                }
                true
            }
            (Ok(Scanned::Sections(sections)), Ok(spans)) => {
                assert_eq!(where_in(&sections), where_in(&spans), "{text:?}");
                false
            }
            (Err(ours), Err(scan)) => {
                assert_eq!(ours.to_string(), scan.to_string());
                false
            }
            (ours, scan) => panic!("{text:?}: scan_as_written {ours:?}, scan {scan:?}"),
        }
    }

    /// Whether [`told_as_written`] holds for `text`, for the property
    /// `fingerprint` (and [`agree`] holds).
    fn as_written(config: &SectionConfig, text: &str) -> bool {
        agree(config, text);
        told_as_written(config, text, "fingerprint")
    }

    /// Places as their plugin and where their text and id are.
    fn placed(places: &[SectionPlace]) -> Vec<(*const SectionConfigPlugin, [u32; 4])> {
        places
            .iter()
            .map(|p| {
                let [text, id] = [&p.text, &p.id];
                (
                    p.plugin as *const _,
                    [text.start, text.end, id.start, id.end],
                )
            })
            .collect()
    }

    /// Sections as their plugin, line and where their id and text are.
    fn where_in(spans: &[SectionSpan]) -> Vec<(*const SectionConfigPlugin, usize, [usize; 4])> {
        spans
            .iter()
            .map(|s| {
                (
                    s.plugin as *const _,
                    s.line,
                    [
                        s.id.as_ptr() as usize,
                        s.id.len(),
                        s.text.as_ptr() as usize,
                        s.text.len(),
                    ],
                )
            })
            .collect()
    }

    /// Whether the one pass takes `text` (and [`agree`] holds).
    fn one_pass_takes(config: &SectionConfig, text: &str) -> bool {
        agree(config, text);
        one_pass::scan_in_writers_order(config, text, &mut Vec::new()).is_some()
    }

    /// A table of `ids` (unique) finds each at its position, and no id
    /// with one byte changed or cut short.
    fn ids_found_at_their_positions_and_no_other(ids: &[String]) {
        let table = SectionIds::new(ids.len(), |at| &ids[at]).unwrap();
        assert_eq!(table.len(), ids.len());
        let id_at = |at: usize| ids[at].as_str();
        for (position, id) in ids.iter().enumerate() {
            assert_eq!(table.position(id, id_at), Some(position));
            let mut other = id.clone().into_bytes();
            for at in [0, 3, id.len() / 2, id.len() - 1] {
                let kept = other[at];
                other[at] = b'_';
                let other_id = std::str::from_utf8(&other).unwrap();
                assert_eq!(table.position(other_id, id_at), None, "{other_id}");
                other[at] = kept;
            }
            assert_eq!(table.position(&id[..id.len() - 1], id_at), None);
        }
    }

    /// Ids whose hashes are equal, or equal in the bits a slot keeps, or
    /// in those that give its place alone: each found at its position
    /// (the ids compared), none taken twice, an absent one not found, in
    /// a table that starts with no room and grows.
    #[test]
    fn section_ids_tell_ids_of_equal_hashes_apart() {
        let ids: Vec<String> = (0..200).map(|i| format!("id-{i}")).collect();
        let id_at = |at: usize| ids[at].as_bytes();
        let hashes: [fn(usize) -> u64; 4] = [
            // all alike
            |_| 0x5555_0000_0000_0000,
            // alike in the high 32 bits (place and kept bits), not below
            |i| 0xabcd_ef01_0000_0000 | i as u64,
            // alike in the top 3 bits (a place in the smallest table)
            |i| 0xe000_0000_0000_0000 | (i as u64) << 32,
            // the top slot's place, probes wrapping around
            |i| u64::MAX - (i as u64 % 3),
        ];
        for hash in hashes {
            let mut table = SectionIds::with_capacity(0);
            for (position, id) in ids.iter().enumerate() {
                assert!(table.insert_hashed(hash(position), id.as_bytes(), position, id_at));
                // the same id again, at another position, is refused
                assert!(!table.insert_hashed(hash(position), id.as_bytes(), 1000, id_at));
            }
            assert_eq!(table.len(), ids.len());
            for (position, id) in ids.iter().enumerate() {
                let found = table.position_hashed(hash(position), id, |at| &ids[at]);
                assert_eq!(found, Some(position), "{id}");
                let absent = table.position_hashed(hash(position), "absent", |at| &ids[at]);
                assert_eq!(absent, None);
            }
        }
    }

    #[test]
    fn section_ids_find_every_id_and_no_other() {
        // ids hashed by FxHash (below 8 bytes, above 16) and by their
        // words (8 to 16: 8, 13, 16)
        let formats: [fn(usize) -> String; 5] = [
            |i| format!("t-{i:05}"),
            |i| format!("{i:08}"),
            |i| format!("tenant-{i:06}"),
            |i| format!("{i:05}-tenant-{i:05}"),
            |i| format!("tenant-{i:05}-tenant-{i:05}"),
        ];
        for format in formats {
            let ids: Vec<String> = (0..10_000).map(format).collect();
            ids_found_at_their_positions_and_no_other(&ids);
        }
        assert!(SectionIds::new(3, |at| ["a", "b", "a"][at]).is_none());
        let ids: Vec<String> = (0..10_000).map(|i| format!("t-{i:05}")).collect();
        let texts: String = ids
            .iter()
            .map(|id| format!("thing: {id}\n\tint 5\n\n"))
            .collect();
        let config = config();
        let (spans, scanned) = config.scan_with_ids("t.cfg", &texts).unwrap();
        let scanned = scanned.unwrap();
        assert_eq!(spans.len(), ids.len());
        for (position, id) in ids.iter().enumerate() {
            assert_eq!(scanned.position(id, |at| spans[at].id), Some(position));
        }
        // the parser's path hands on no table
        let crlf = texts.replace('\n', "\r\n");
        assert!(config.scan_with_ids("t.cfg", &crlf).unwrap().1.is_none());
    }

    #[test]
    fn the_writers_layout_is_read_by_the_fast_path() {
        let config = config();
        let text = "thing: one\n\tint 5\n\ttext abc\n\nthing: two\n\tflag yes\n\tint -5\n\n\nother: three\n\ttext a b\n";
        assert!(one_pass_takes(&config, text));
        assert!(one_pass_takes(&config, ""));
        assert!(one_pass_takes(&config, "\n\n"));
        assert!(one_pass_takes(&config, "thing: one\n\tint 5"));
        assert!(one_pass_takes(&config, "thing: one\n\tint 5\n"));
        assert!(one_pass_takes(&config, "\nthing: one\n\tint 5\n\n\n"));
        // unsorted properties: found by the binary search
        assert!(agree(&config, "thing: one\n\ttext abc\n\tint 5\n"));
        assert!(!one_pass_takes(
            &config,
            "thing: one\n\ttext abc\n\tint 5\n"
        ));
        // what the integer schema accepts, however written
        assert!(one_pass_takes(&config, "thing: one\n\tint +05\n"));
        let spans = config.scan("t.cfg", text).unwrap();
        assert_eq!(spans[1].text, "thing: two\n\tflag yes\n\tint -5");
        assert_eq!(spans[2].line, 10);
    }

    #[test]
    fn texts_longer_than_a_line_take_the_fast_path_too() {
        let config = config();
        let text: String = (0..60_000)
            .map(|i| format!("thing: t{i:06}\n\tint 5\n\n"))
            .collect();
        assert!(text.len() > MAX_LINE_LENGTH);
        assert!(one_pass_takes(&config, &text));
        // one line too long, at the end or inside: the parser's error
        let long = format!(
            "{text}thing: long\n\tint 5\n\tother {}\n",
            "x".repeat(MAX_LINE_LENGTH)
        );
        assert!(!agree(&config, &long));
        let long = format!(
            "other: long\n\ttext {}\n\n{text}",
            "x".repeat(MAX_LINE_LENGTH)
        );
        assert!(!agree(&config, &long));
    }

    #[test]
    fn everything_else_is_left_to_the_parser_with_its_result() {
        let config = config();
        for text in [
            // other layouts that parse
            "thing: one\r\n\tint 5\r\n",
            "thing:one\n\tint 5\n",
            "thing :  one \n\tint 5\n",
            // padded ids (the safe id check, told once, refuses spaces)
            "thing: one \n\tint 5\n",
            "thing:  one\n\tint 5\n",
            "thing: one\n\tint 5\n\nthing: two \n\tint 5\n",
            "thing: o ne\n\tint 5\n",
            "thing: one\n  int 5\n",
            "thing: one\n\tint  5\n",
            "thing: one\n\tint 5 \n",
            "thing: one\n\tint 5\n \nthing: two\n\tint 1\n",
            "thing: one\n\tint 5\n\t\n",
            "thing: one\n\tint 5\n\tlist a\n\tlist b\n",
            "thing: one\n\tint 5\n\tid other\n",
            "other: one\n\tsomething else\n",
            "thing: one\n\tint 5\n\ttext \u{e9}t\u{e9}\n",
            // errors
            "thing: one\n\tint 501\n",
            "thing: one\n\tint 5x\n",
            "thing: one\n\tint\n",
            "thing: one\n\tint 5\n\tint 6\n",
            "thing: one\n\ttext abc\n",
            "thing: one\n\tint 5\n\ttext abcdefg\n",
            "thing: one\n\tint 5\n\ttext a\tb\n",
            "thing: one\n\tint 5\n\ttext a\u{7f}b\n",
            "thing: one\n\tint 5\n\tcolor red\n",
            "thing: on\n\tint 5\n",
            "thing: one\n\tint 5\n\nthing: one\n\tint 6\n",
            "thing: one\n\tint 5\nthing: two\n\tint 6\n",
            "nothing: one\n\tint 5\n",
            "1thing: one\n\tint 5\n",
            "thing: one\n\tflag maybe\n\tint 5\n",
            "\tint 5\n",
            "thing\n",
        ] {
            assert!(!agree(&config, text), "{text:?} took the fast path");
        }
    }

    #[test]
    fn names_the_parser_reads_otherwise_are_left_to_it() {
        // a type the parser's trim cannot name, a property the parser's
        // split cannot name: the fast path must not match either
        const ODD: ObjectSchema = ObjectSchema::new(
            "Odd.",
            &[
                ("a b", true, &TEXT),
                ("int", true, &INT),
                ("x:", true, &TEXT),
            ],
        );
        let mut config = SectionConfig::new(&ID);
        config.register_plugin(SectionConfigPlugin::new("odd ", None, &ODD));
        config.register_plugin(SectionConfigPlugin::new("oddity", None, &ODD));
        for text in [
            "odd : one\n\tint 5\n",
            "oddity: one\n\ta b c\n",
            "oddity: one\n\tint 5\n\ta b c\n",
        ] {
            assert!(!agree(&config, text), "{text:?} took the fast path");
        }
        assert!(agree(&config, "oddity: one\n\tint 5\n"));
        assert!(agree(&config, "oddity: one\n\tint 5\n\tx: y\n"));
    }

    /// The property a line's first byte names, where it does not hold:
    /// names sharing a first byte, a name longer than a word, a line that
    /// starts like a name but is another, keys out of order or missing.
    #[test]
    fn keys_are_found_whatever_their_first_byte_names() {
        const LONG: Schema = StringSchema::new("Long.").max_length(30).schema();
        const NAMES: ObjectSchema = ObjectSchema::new(
            "Names.",
            &[
                ("alpha", true, &TEXT),
                ("alphabet", true, &TEXT),
                ("b", true, &INT),
                ("beta", false, &INT),
                ("gamma-is-a-long-name", true, &LONG),
                ("zeta", true, &FLAG),
            ],
        );
        let mut config = SectionConfig::new(&ID);
        config.register_plugin(SectionConfigPlugin::new("names", None, &NAMES));
        for text in [
            "names: one\n\talpha a\n\talphabet b\n\tb 1\n\tbeta 2\n\tgamma-is-a-long-name g\n\tzeta yes\n",
            "names: one\n\tzeta no\n\tgamma-is-a-long-name g\n\tbeta 2\n\tb 1\n\talphabet b\n\talpha a\n",
            "names: one\n\tbeta 2\n",
            "names: one\n\tgamma-is-a-long-name x\n\tbeta 3\n",
        ] {
            assert!(agree(&config, text), "{text:?} did not take the fast path");
        }
        for text in [
            // a missing required key, a duplicate, an unknown name with a
            // known first byte, a name that is another's start
            "names: one\n\talpha a\n",
            "names: one\n\tbeta 2\n\tzeta no\n\tbeta 2\n",
            "names: one\n\tbeta 2\n\tzetas no\n",
            "names: one\n\tbeta 2\n\tz no\n",
            "names: one\n\tbeta 2\n\tgamma 2\n",
            "names: one\n\tbeta 2\n\tgamma-is-a-long-nam x\n",
            "names: one\n\tbeta 2\n\tgamma-is-a-long-name-too x\n",
            "names: one\n\tbeta 2\n\tzeta\n",
            "names: one\n\tbeta 2\n\tzeta  no\n",
            "names: one\n\tbet 2\n",
        ] {
            assert!(!agree(&config, text), "{text:?} took the fast path");
        }
    }

    /// The in-order path against the parser: a section in the writer's
    /// order (every arm of its checks: integer, fingerprint, text, other),
    /// then every order of its keys, each key missing, doubled or renamed,
    /// each value made invalid or padded, the section cut at every byte,
    /// all of it at every place around the 64-byte blocks.
    #[test]
    fn sections_in_the_writers_order_agree_with_the_parser() {
        let config = keys_config();
        let plan = config.plugins()["key"].scan_plan().unwrap();
        let fingerprint = ["0e"; 32].join(":");
        let lines = [
            "\tarchived 17".to_string(),
            "\tcreated 1775840036".to_string(),
            format!("\tfingerprint {fingerprint}"),
            "\tflag yes".to_string(),
            "\tkdf none".to_string(),
            "\tnote-that-is-long n".to_string(),
            "\tpath /a".to_string(),
        ];
        let in_order = |text: &str| {
            let ends = classify(text.as_bytes()).unwrap();
            scan_in_order(text.as_bytes(), &ends[1..], ends[0] as usize, plan).is_some()
        };
        // the writer's order takes the in-order path, but for the name
        // longer than its word
        let written: Vec<String> = lines
            .iter()
            .filter(|l| !l.contains("note"))
            .cloned()
            .collect();
        assert!(in_order(&section(&written)));
        assert!(!in_order(&section(&lines)));
        assert!(one_pass_takes(&config, &section(&written)));
        assert!(!one_pass_takes(&config, &section(&lines)));
        let mut texts = variants(&written);
        texts.push(section(&lines));
        for pad in [0, 1, 17, 40, 63, 64, 65] {
            // sections of 30 bytes before, shifting the blocks
            let before: String = (0..pad)
                .map(|i| format!("key: p{i:03}\n\tcreated 5\n\tkdf no\n\n"))
                .collect();
            for text in &texts {
                let text = format!("{before}{text}");
                agree(&config, &text);
                agree(
                    &config,
                    &format!("{text}\nkey: k02\n\tcreated 1\n\tkdf no\n"),
                );
            }
        }
    }

    /// The one pass at every offset of its 16-byte steps: the section of
    /// every in-order check and its variants (every order of four keys,
    /// each key missing, doubled or renamed, each value invalid or not
    /// canonical, cut at every byte, each line cut short with the next
    /// after it) shifted byte by byte, and a fingerprint short, long,
    /// padded, at the end of the text or running into the next line.
    #[test]
    fn the_one_pass_agrees_with_the_parser_at_every_offset() {
        let config = keys_config();
        let fingerprint = ["0e"; 32].join(":");
        let written = [
            "\tarchived 17".to_string(),
            "\tcreated 1775840036".to_string(),
            format!("\tfingerprint {fingerprint}"),
            "\tflag yes".to_string(),
            "\tkdf none".to_string(),
            "\tpath /a".to_string(),
        ];
        let mut texts = variants(&written);
        for value in [
            fingerprint.clone(),
            fingerprint[..94].to_string(),
            format!("{fingerprint}0"),
            format!("{fingerprint} "),
            format!(" {fingerprint}"),
        ] {
            for rest in ["", "\n", "\n\tkdf no\n", "\tkdf no\n", "kdf no\n", "\n\n"] {
                texts.push(format!(
                    "key: k01\n\tcreated 5\n\tfingerprint {value}{rest}"
                ));
            }
        }
        for shift in 0..=16 {
            let before = format!(
                "key: p00\n\tcreated 5\n\tkdf n{}\n\n",
                "o".repeat(shift + 1)
            );
            for text in &texts {
                agree(&config, &format!("{before}{text}"));
            }
            let text = format!("{before}{}", section(&written));
            assert!(one_pass_takes(&config, &text));
            assert!(one_pass_takes(&config, text.trim_end()));
        }
    }

    /// The write's own text is told as such on the one pass's way, and
    /// nothing else it reads: not a non-canonical integer, a boolean
    /// (however spelt), a blank line before, after or doubled between
    /// sections, nor a last line without its line feed; text the one pass
    /// does not read (CRLF, padding, non-ASCII) is not told either. Each
    /// would fail [`told_as_written`]'s comparison with the write if it
    /// were told.
    /// A fingerprint property whose length bounds do not take 95 bytes
    /// (checked as any other property, not as a fingerprint): a valid
    /// fingerprint refused as the parser refuses it, one of the lengths
    /// the bounds take refused too (not of the format); within bounds
    /// that take 95 bytes, the same text read by the one pass.
    #[test]
    fn fingerprints_outside_their_bounds_agree_with_the_parser() {
        const SHORT: Schema = StringSchema::new("Short.")
            .format(&proxmox_schema::api_types::FINGERPRINT_SHA256_FORMAT)
            .max_length(94)
            .schema();
        const LONG: Schema = StringSchema::new("Long.")
            .format(&proxmox_schema::api_types::FINGERPRINT_SHA256_FORMAT)
            .min_length(96)
            .schema();
        const EXACT: Schema = StringSchema::new("Exact.")
            .format(&proxmox_schema::api_types::FINGERPRINT_SHA256_FORMAT)
            .min_length(95)
            .max_length(95)
            .schema();
        const SHORTS: ObjectSchema = ObjectSchema::new("Shorts.", &[("print", false, &SHORT)]);
        const LONGS: ObjectSchema = ObjectSchema::new("Longs.", &[("print", false, &LONG)]);
        const EXACTS: ObjectSchema = ObjectSchema::new("Exacts.", &[("print", false, &EXACT)]);
        let fingerprint = ["0e"; 32].join(":");
        for (schema, taken) in [(&SHORTS, false), (&LONGS, false), (&EXACTS, true)] {
            let mut config = SectionConfig::new(&ID);
            config.register_plugin(SectionConfigPlugin::new("key", None, schema));
            let text = format!("key: k01\n\tprint {fingerprint}\n");
            assert_eq!(one_pass_takes(&config, &text), taken, "{text:?}");
            assert_eq!(config.parse("t.cfg", &text).is_ok(), taken, "{text:?}");
            for value in [&fingerprint[..94], &format!("{fingerprint}:0e")] {
                let text = format!("key: k01\n\tprint {value}\n");
                assert!(!one_pass_takes(&config, &text), "{text:?}");
            }
        }
    }

    /// A fingerprint read by the one pass (asserted: the unchanged text
    /// takes it) with one byte changed at every place, its value at every
    /// offset of the 16-byte steps: a hex digit or colon put where the
    /// other belongs, `g`, `G`, `;`, `/`, `@`, `` ` ``, a control or
    /// non-ASCII byte, a colon moved by one place; and in upper and mixed
    /// case, which the schema takes.
    #[test]
    fn fingerprints_changed_anywhere_agree_with_the_parser() {
        const PRINTS: ObjectSchema = ObjectSchema::new(
            "Prints.",
            &[
                ("created", false, &STAMP),
                (
                    "fingerprint",
                    false,
                    &proxmox_schema::api_types::CERT_FINGERPRINT_SHA256_SCHEMA,
                ),
                ("id", false, &ID),
                ("path", true, &TEXT),
            ],
        );
        let mut config = SectionConfig::new(&ID);
        config.register_plugin(SectionConfigPlugin::new("key", Some("id".into()), &PRINTS));

        let lower = (0..32u32)
            .map(|i| format!("{:02x}", (i * 7 + 0xa0) % 256))
            .collect::<Vec<_>>()
            .join(":");
        let upper = lower.to_uppercase();
        let mixed: String = lower
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        let mut values = vec![upper, mixed];
        let bytes = lower.as_bytes();
        for at in 0..bytes.len() {
            let colon = at % 3 == 2;
            let other = if colon { b'a' } else { b':' };
            for byte in [
                other, b'g', b'G', b';', b'/', b'@', b'`', b'0', 0x7f, b'\t', b' ',
            ] {
                let mut value = bytes.to_vec();
                value[at] = byte;
                values.push(String::from_utf8(value).unwrap());
            }
            let mut value = lower.clone();
            value.replace_range(at..at + 1, "\u{e9}");
            values.push(value);
            // a colon moved one place on (the byte there where it was)
            if colon && at + 1 < bytes.len() {
                let mut value = bytes.to_vec();
                value.swap(at, at + 1);
                values.push(String::from_utf8(value).unwrap());
            }
        }
        for shift in 0..16 {
            // the changed fingerprint's value one byte later each time
            let before = format!(
                "key: p00\n\tcreated {}\n\tfingerprint {lower}\n\n",
                "1".repeat(shift + 1)
            );
            let good = format!("{before}key: k01\n\tcreated 7\n\tfingerprint {lower}\n\tpath /a\n");
            assert!(one_pass_takes(&config, &good), "{good:?}");
            for value in &values {
                let text =
                    format!("{before}key: k01\n\tcreated 7\n\tfingerprint {value}\n\tpath /a\n");
                let valid = proxmox_schema::api_types::verify_fingerprint_sha256(value).is_ok();
                assert_eq!(agree(&config, &text), valid, "{text:?}");
            }
        }
    }

    #[test]
    fn the_one_pass_tells_the_writes_own_text_and_nothing_else() {
        let config = keys_config();
        let fingerprint = ["0e"; 32].join(":");
        let one = format!(
            "key: k01\n\tarchived 0\n\tcreated 1775840036\n\tfingerprint {fingerprint}\n\tkdf none\n\tpath /a\n"
        );
        let two = "key: k02\n\tcreated 5\n\tkdf scrypt\n";
        let written = format!("{one}\n{two}");
        for text in [written.as_str(), &one, two, ""] {
            assert!(as_written(&config, text), "{text:?} not told as written");
        }
        for shift in 0..=16 {
            let before = format!(
                "key: p00\n\tcreated 5\n\tkdf n{}\n\n",
                "o".repeat(shift + 1)
            );
            assert!(as_written(&config, &format!("{before}{written}")));
        }
        for text in [
            written.replace("created 5", "created +5"),
            written.replace("created 5", "created 05"),
            written.replace("created 1775840036", "created 01775840036"),
            written.replace("archived 0", "archived 00"),
            written.replace("archived 0", "archived -0"),
            written.replace("archived 0", "archived +0"),
            written.replace("\tkdf none", "\tflag 1\n\tkdf none"),
            written.replace("\tkdf none", "\tflag true\n\tkdf none"),
            format!("\n{written}"),
            format!("{written}\n"),
            written.replace("\n\n", "\n\n\n"),
            written.trim_end().to_string(),
            one.trim_end().to_string(),
            "\n".to_string(),
        ] {
            assert!(
                one_pass_takes(&config, &text),
                "{text:?} not read by the one pass"
            );
            assert!(!as_written(&config, &text), "{text:?} told as written");
        }
        for text in [
            written.replace('\n', "\r\n"),
            written.replace("kdf none", "kdf none "),
            written.replace("path /a", "path  /a"),
            written.replace("path /a", "path /\u{e9}"),
        ] {
            assert!(
                !one_pass_takes(&config, &text),
                "{text:?} read by the one pass"
            );
            assert!(!as_written(&config, &text), "{text:?} told as written");
        }
    }

    /// A section `key: k01` of `lines`.
    /// The one pass's guesses (the property that followed there last,
    /// [`one_pass`]) decide nothing: after sections that point every
    /// guess at a property (all lines, or the required ones alone), a
    /// section with two lines swapped or one doubled is never taken, one
    /// with a line left out only if that line is optional, each as the
    /// parser reads it.
    #[test]
    fn guesses_trained_on_other_sections_take_no_line_out_of_order() {
        let config = keys_config();
        let fingerprint = format!("\tfingerprint {}", ["0e"; 32].join(":"));
        let written: Vec<&str> = vec![
            "\tarchived 17",
            "\tcreated 1775840036",
            &fingerprint,
            "\tflag yes",
            "\tkdf none",
            "\tpath /a",
        ];
        let required = ["\tcreated 1775840036", "\tkdf none"];
        let trainers = [written.join("\n"), required.join("\n")];
        let with = |trained: &str, lines: &[&str]| {
            let before: String = (0..3)
                .map(|i| format!("key: t{i:02}\n{trained}\n\n"))
                .collect();
            format!("{before}key: k01\n{}\n", lines.join("\n"))
        };
        for trained in &trainers {
            assert!(one_pass_takes(&config, &with(trained, &written)));
            for i in 0..written.len() {
                let mut doubled = written.clone();
                doubled.insert(i, written[i]);
                assert!(!one_pass_takes(&config, &with(trained, &doubled)));
                let mut dropped = written.clone();
                dropped.remove(i);
                let optional = !required.contains(&written[i]);
                assert_eq!(one_pass_takes(&config, &with(trained, &dropped)), optional);
                for j in i + 1..written.len() {
                    let mut swapped = written.clone();
                    swapped.swap(i, j);
                    assert!(!one_pass_takes(&config, &with(trained, &swapped)));
                }
            }
        }
    }

    fn section(lines: &[String]) -> String {
        format!("key: k01\n{}\n", lines.join("\n"))
    }

    /// A config of one type, `key`, with a property of each check of the
    /// in-order path, and one whose name is longer than its word.
    fn keys_config() -> SectionConfig {
        const WORD: Schema = StringSchema::new("Word.")
            .format(&proxmox_schema::ApiStringFormat::VerifyFn(
                proxmox_schema::api_types::verify_config_text,
            ))
            .min_length(2)
            .schema();
        const KEYS: ObjectSchema = ObjectSchema::new(
            "Keys.",
            &[
                ("archived", true, &STAMP),
                ("created", false, &STAMP),
                (
                    "fingerprint",
                    true,
                    &proxmox_schema::api_types::CERT_FINGERPRINT_SHA256_SCHEMA,
                ),
                ("flag", true, &FLAG),
                ("id", false, &ID),
                ("kdf", false, &WORD),
                ("note-that-is-long", true, &TEXT),
                ("path", true, &TEXT),
            ],
        );
        let mut config = SectionConfig::new(&ID);
        config.register_plugin(SectionConfigPlugin::new("key", Some("id".into()), &KEYS));
        config
    }

    /// The section of `written` with every order of four of its keys, each
    /// key missing, doubled or renamed, each value changed, cut at every
    /// byte, and each line and the header cut at every byte with the rest
    /// after it.
    fn variants(written: &[String]) -> Vec<String> {
        let mut texts = vec![section(written)];
        // every order of four keys, each key missing, doubled, renamed
        let four = [&written[0], &written[1], &written[2], &written[4]];
        for a in 0..4 {
            for b in 0..4 {
                for c in 0..4 {
                    for d in 0..4 {
                        let order = [a, b, c, d];
                        let picked: Vec<String> = order.iter().map(|&i| four[i].clone()).collect();
                        texts.push(section(&picked));
                    }
                }
            }
        }
        for at in 0..written.len() {
            let mut missing = written.to_vec();
            missing.remove(at);
            texts.push(section(&missing));
            let mut doubled = written.to_vec();
            doubled.insert(at, written[at].clone());
            texts.push(section(&doubled));
            for (from, to) in [
                ("\t", "\tx"),
                (" ", "x "),
                (" ", "  "),
                (" ", "\t"),
                (" ", ""),
            ] {
                let mut renamed = written.to_vec();
                renamed[at] = renamed[at].replacen(from, to, 1);
                texts.push(section(&renamed));
            }
            for value in [
                "",
                " ",
                "x",
                "-1",
                "+1",
                "01",
                "1 ",
                " 1",
                "99999999999999999999",
                "yes",
                "no",
                "NONE",
                "n",
            ] {
                let mut changed = written.to_vec();
                let key_end = changed[at].find(' ').unwrap();
                changed[at] = format!("{} {value}", &changed[at][..key_end]);
                texts.push(section(&changed));
            }
            let mut upper = written.to_vec();
            upper[at] = upper[at].to_uppercase();
            texts.push(section(&upper));
        }
        let whole = section(written);
        for cut in 0..whole.len() {
            texts.push(whole[..cut].to_string());
        }
        // a line or the header cut short with more lines after it: the
        // in-order path reads a line's first 16 bytes on past its end
        for at in 0..written.len() {
            for cut in 0..written[at].len() {
                let mut short = written.to_vec();
                short[at].truncate(cut);
                texts.push(section(&short));
            }
        }
        let body = written.join("\n");
        for cut in 0.."key: k01".len() {
            texts.push(format!("{}\n{body}\n", &"key: k01"[..cut]));
        }
        texts
    }

    proptest::proptest! {
        #[test]
        fn scan_agrees_with_the_parser(
            lines in proptest::collection::vec(
                proptest::sample::select(vec![
                    "thing: one", "thing: two", "other: one", "thing: x", "thing:  t3",
                    "\tint 5", "\tint -6", "\tint +7", "\tint 99999999999999999999", "\ttext abc",
                    "\ttext a b", "\ttext abcdefgh", "\tflag yes", "\tflag no", "\tlist a",
                    "\tid idx", "\tcolor red", "\tint\t5", " int 5", "", " ", "\t", "# c",
                    "thing: t\u{e9}", "\ttext \u{e9}", "\ttext a\r",
                ]),
                0..14,
            ),
            end in proptest::sample::select(vec!["", "\n", "\r\n"]),
        ) {
            let text = lines.join("\n") + end;
            agree(&config(), &text);
        }
    }

    /// Every byte value at every place of a block, in a block of
    /// printable text and in one of line feeds.
    #[test]
    fn block_masks_agree_with_the_scalar_ones_byte_by_byte() {
        for fill in [b'a', b'\n', b'~', b' '] {
            for at in 0..64 {
                for byte in 0..=255u8 {
                    let mut block = [fill; 64];
                    block[at] = byte;
                    let (fast, slow) = (block_masks(&block), scalar_masks(&block));
                    assert_eq!(
                        (fast.line_ends, fast.other),
                        (slow.line_ends, slow.other),
                        "{at} {byte}"
                    );
                }
            }
        }
    }

    /// A tab, a control byte or a non-ASCII byte first on a line, at
    /// every place around the 64-byte blocks: the line pass decides what
    /// the vector pass leaves to it, as the parser would.
    #[test]
    fn the_first_byte_of_a_line_is_checked_at_every_place() {
        let config = config();
        for pad in 0..140 {
            // sections of 19 bytes before, then a line of 1 to 6 more
            let before: String = (0..pad / 6)
                .map(|i| format!("thing: t{i:02}\n\tint 5\n\n"))
                .collect();
            let head = format!("{before}thing: one\n\ttext {}\n", "x".repeat(pad % 6 + 1));
            for first in ["\t", "\u{1}", "\u{7f}", "\u{e9}", " ", "\r", "\n", "\u{b}"] {
                for text in [
                    format!("{head}\tint 5\n{first}flag yes\n"),
                    format!("{head}\tint 5\n\n{first}thing: two\n\tint 6\n"),
                    format!("{head}\tint 5\n{first}\n"),
                    format!("{first}{head}\tint 5\n"),
                ] {
                    agree(&config, &text);
                }
            }
            // the good layout at this offset takes the fast path, in the
            // writer's order the one pass
            assert!(agree(&config, &format!("{head}\tint 5\n\tflag yes\n")));
            let text = format!(
                "{before}thing: one\n\tint 5\n\ttext {}\n",
                "x".repeat(pad % 6 + 1)
            );
            assert!(one_pass_takes(&config, &text));
        }
    }

    proptest::proptest! {
        #[test]
        fn block_masks_agree_with_the_scalar_ones(block in proptest::collection::vec(proptest::num::u8::ANY, 64)) {
            let block: [u8; 64] = block.try_into().unwrap();
            let (fast, slow) = (block_masks(&block), scalar_masks(&block));
            proptest::prop_assert_eq!(
                (fast.line_ends, fast.other),
                (slow.line_ends, slow.other)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn integers_parse_as_str_parse(text in "[+-]{0,2}[0-9]{0,21}|[+-]?[0-9]{0,3}[ a.][0-9]{0,2}") {
            proptest::prop_assert_eq!(
                crate::plugin::parse_isize(text.as_bytes()),
                text.parse::<isize>().ok()
            );
        }
    }

    proptest::proptest! {
        /// The word-at-a-time path (8 to 16 digits): one byte of any value
        /// anywhere, every length around it.
        #[test]
        fn long_integers_with_any_byte_parse_as_str_parse(
            sign in proptest::sample::select(vec!["", "-", "+"]),
            digits in "[0-9]{7,17}",
            at in 0usize..17,
            byte in proptest::num::u8::ANY,
        ) {
            let mut text = format!("{sign}{digits}").into_bytes();
            proptest::prop_assert_eq!(
                crate::plugin::parse_isize(&text),
                std::str::from_utf8(&text).unwrap().parse::<isize>().ok()
            );
            let at = at % text.len();
            text[at] = byte;
            proptest::prop_assert_eq!(
                crate::plugin::parse_isize(&text),
                std::str::from_utf8(&text).ok().and_then(|text| text.parse::<isize>().ok())
            );
        }
    }

    /// The vector check against the schema's own function: a fingerprint
    /// in either case with every byte set to every value in turn, every
    /// length around 95, and any text.
    #[test]
    fn fingerprints_are_checked_as_the_schema_checks_them() {
        let verify = |value: &[u8]| {
            std::str::from_utf8(value).is_ok_and(|value| {
                proxmox_schema::api_types::verify_fingerprint_sha256(value).is_ok()
            })
        };
        let lower: Vec<u8> = (0..32u32)
            .map(|i| format!("{:02x}", (i * 37 + 11) % 256))
            .collect::<Vec<_>>()
            .join(":")
            .into_bytes();
        let upper = lower.to_ascii_uppercase();
        let hex: Vec<u8> = b"0123456789abcdefABCDEF".repeat(5)[..95].to_vec();
        for fingerprint in [&lower, &upper, &hex] {
            assert_eq!(is_fingerprint(fingerprint), verify(fingerprint));
            for at in 0..fingerprint.len() {
                for byte in 0..=255u8 {
                    let mut value = fingerprint.clone();
                    value[at] = byte;
                    assert_eq!(is_fingerprint(&value), verify(&value), "{value:?}");
                }
            }
            for len in 0..fingerprint.len() + 3 {
                let value: Vec<u8> = fingerprint.iter().copied().cycle().take(len).collect();
                assert_eq!(is_fingerprint(&value), verify(&value), "{len}");
            }
        }
        assert!(is_fingerprint(&lower) && is_fingerprint(&upper) && !is_fingerprint(&hex));
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_a_fingerprint_as_the_schema_says(
            text in "([0-9a-fA-F]{2}[:;]?){31,33}|[ -~]{95}",
        ) {
            proptest::prop_assert_eq!(
                is_fingerprint(text.as_bytes()),
                proxmox_schema::api_types::verify_fingerprint_sha256(&text).is_ok()
            );
        }
    }

    /// The vector check against the schema's own function: every byte
    /// value at every place of an id of every length up to 40.
    #[test]
    fn safe_ids_are_checked_as_the_schema_checks_them() {
        let verify = |value: &[u8]| {
            std::str::from_utf8(value)
                .is_ok_and(|value| proxmox_schema::api_types::verify_safe_id(value).is_ok())
        };
        let good = b"tenant-000123_Key.zZ9-a.b_c-0123456789AZaz_";
        for len in 0..=40 {
            let id = &good[..len];
            assert_eq!(is_safe_id(id), verify(id), "{id:?}");
            assert_eq!(is_safe_id(id), len > 0);
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut value = id.to_vec();
                    value[at] = byte;
                    assert_eq!(is_safe_id(&value), verify(&value), "{value:?}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_a_safe_id_as_the_schema_says(text in "[ -~]{0,40}|[-._a-zA-Z0-9/:@`{\\[]{0,40}") {
            proptest::prop_assert_eq!(
                is_safe_id(text.as_bytes()),
                proxmox_schema::api_types::verify_safe_id(&text).is_ok()
            );
        }
    }

    #[test]
    fn integer_bounds_parse_as_str_parse() {
        for text in [
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "9999999999999999",
            "-9999999999999999",
            "99999999999999999",
            "10000000",
            "1775840036",
            "/0000000",
            ":0000000",
            "0000000:",
            "+9223372036854775807",
            "000000000000000000000000001",
            "-0",
            "+",
            "-",
            "",
        ] {
            assert_eq!(
                crate::plugin::parse_isize(text.as_bytes()),
                text.parse::<isize>().ok(),
                "{text}"
            );
        }
    }
}
