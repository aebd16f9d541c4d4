//! The writer's layout read in one pass: each section's lines matched in
//! the writer's order and each value checked where it stands, its end
//! found by the check that reads it (a fingerprint's fixed 95 bytes, the
//! line feed after any other value, found 16 then 32 bytes a step
//! together with the check that every byte before it is printable
//! ASCII). No separate pass collects the line ends.
//!
//! It accepts a subset of what the two-pass scan of
//! [`fast_scan`](super::fast_scan) accepts, with the same sections and
//! ids: anything else — another order, a value that does not pass, a
//! control or non-ASCII byte, a line too long — gives `None`, and the
//! two-pass scan (then the parser) reads the whole text again and
//! decides.
//!
//! Every byte of an accepted text is checked once: a header's `TYPE: `
//! and a property line's `<tab>KEY ` as a pattern of printable bytes (a
//! tab first), an id by its line's printable bytes and the id check, a
//! fingerprint by its own check, any other value by its printable bytes
//! and its check, line feeds as the ends they are.
//!
//! Asked to (`WRITTEN`, for [`SectionConfig::scan_as_written`]), it also
//! tells on the way whether the text is byte for byte what
//! [`SectionConfig::write`] gives for its sections ([`WriterForm`]): what
//! it accepts is that already but for the integers' form, the blank lines
//! and the text's ends, and properties of a type the write gives in
//! another form (booleans, numbers).

use std::ops::Range;

use super::{
    SectionIds, SectionPlace, SectionSpan, header, id_passes, is_fingerprint, is_unpadded,
    other_passes, safe_id_bounds,
};
use crate::plugin::{InOrderCheck, KeyPattern, ScanPlan, ValueCheck, is_integer_within};
use crate::write::is_canonical_integer;
use crate::{MAX_LINE_LENGTH, SectionConfig, SectionConfigPlugin};

/// What the one pass tells of a text besides its sections when asked to
/// (`WRITTEN`): whether every byte of it is what
/// [`SectionConfig::write`] gives for them (each section's value of one
/// property it hands on in [`Found::value`]).
///
/// The one pass accepts only sections the write gives back as they are
/// but for three things, which this checks on the way: an integer in
/// canonical form ([`is_canonical_integer`]), a property the write gives
/// as it was read (a string: not a boolean or a number, which it may
/// spell otherwise), and the text's layout around the sections (the first
/// header at its start, one blank line between sections, the last line's
/// line feed its end). The rest (headers `TYPE: ID`, one `<tab>KEY VALUE`
/// line per property in the writer's order, the id property left out,
/// values not padded, line feeds alone) it accepts in no other form.
#[derive(Debug)]
pub(super) struct WriterForm<'p> {
    /// The property whose value's place each section reports.
    property: &'p str,
    /// Whether the text so far is what the write gives for it.
    pub exact: bool,
}

impl<'p> WriterForm<'p> {
    /// To report where `property`'s values are.
    pub(super) fn new(property: &'p str) -> Self {
        Self {
            property,
            exact: true,
        }
    }
}

/// The sections of `raw` if every one is in the writer's layout and
/// order and passes, with the table of their ids; `None` where the
/// two-pass scan must decide (`spans` then holds what was found so far).
pub(super) fn scan_in_writers_order<'a>(
    config: &'a SectionConfig,
    raw: &'a str,
    spans: &mut Vec<SectionSpan<'a>>,
) -> Option<SectionIds> {
    let mut ids = SectionIds::with_capacity(spans.capacity());
    each_in_writers_order::<false>(
        config,
        raw.as_bytes(),
        &mut WriterForm::new(""),
        |section| push_span(raw, &section, spans, &mut ids),
    )?;
    Some(ids)
}

/// [`scan_in_writers_order`], each section as its places
/// ([`SectionPlace`]): no slice of the text made, so no char boundary
/// checked (what the pass accepts is ASCII) and no place taken again.
pub(super) fn places_in_writers_order<'a>(
    config: &'a SectionConfig,
    raw: &'a str,
    places: &mut Vec<SectionPlace<'a>>,
) -> Option<SectionIds> {
    let bytes = raw.as_bytes();
    let mut ids = SectionIds::with_capacity(places.capacity());
    each_in_writers_order::<false>(config, bytes, &mut WriterForm::new(""), |section| {
        // the places fit: the pass takes only a text shorter than 4 GiB
        let place = SectionPlace {
            plugin: section.plugin,
            text: section.text.start as u32..section.text.end as u32,
            id: section.id.start as u32..section.id.end as u32,
        };
        let id_at = |at: usize| {
            let id = &places[at].id;
            &bytes[id.start as usize..id.end as usize]
        };
        ids.insert(&bytes[section.id], places.len(), id_at)
            .then(|| places.push(place))
    })?;
    Some(ids)
}

/// [`scan_in_writers_order`], `form` told whether the text is the
/// write's own and `values` given each section's [`Found::value`].
pub(super) fn scan_as_written<'a>(
    config: &'a SectionConfig,
    raw: &'a str,
    spans: &mut Vec<SectionSpan<'a>>,
    form: &mut WriterForm,
    values: &mut Vec<Option<Range<usize>>>,
) -> Option<()> {
    let mut ids = SectionIds::with_capacity(spans.capacity());
    each_in_writers_order::<true>(config, raw.as_bytes(), form, |section| {
        values.push(section.value.clone());
        push_span(raw, &section, spans, &mut ids)
    })
}

/// Adds the section `found` of `raw` to `spans`, its id to `ids`;
/// `None` if the id is there already.
#[inline(always)]
fn push_span<'a>(
    raw: &'a str,
    found: &Found<'a>,
    spans: &mut Vec<SectionSpan<'a>>,
    ids: &mut SectionIds,
) -> Option<()> {
    let span = SectionSpan {
        plugin: found.plugin,
        id: raw.get(found.id.clone())?,
        line: found.line,
        text: &raw[found.text.clone()],
    };
    ids.insert(span.id.as_bytes(), spans.len(), |at| {
        spans[at].id.as_bytes()
    })
    .then(|| spans.push(span))
}

/// A section [`each_in_writers_order`] found: its plugin, where its id
/// and its text are ([`SectionSpan`]'s, as places in the bytes) and the
/// line number of its header.
pub(super) struct Found<'a> {
    pub plugin: &'a SectionConfigPlugin,
    pub id: Range<usize>,
    pub line: usize,
    pub text: Range<usize>,
    /// Where its value of [`WriterForm`]'s property is (`WRITTEN` only).
    pub value: Option<Range<usize>>,
}

/// Hands every section of `bytes` to `each`, in file order, while every
/// one is in the writer's layout and order and passes and `each` returns
/// `Some`; `None` where one does not (the line numbers count from 1 at
/// the start of `bytes`). What it hands on is printable ASCII and line
/// feeds alone. The sections' ids are checked one by one; keeping them
/// unique is `each`'s part. With `WRITTEN`, `form` is told whether the
/// text is the write's own and where each section's value is (without,
/// it is not touched).
#[inline(always)]
pub(super) fn each_in_writers_order<'a, const WRITTEN: bool>(
    config: &'a SectionConfig,
    bytes: &[u8],
    form: &mut WriterForm,
    mut each: impl FnMut(Found<'a>) -> Option<()>,
) -> Option<()> {
    u32::try_from(bytes.len()).ok()?;
    let mut last: Option<(&'a SectionConfigPlugin, &'a ScanPlan)> = None;
    let safe_id = safe_id_bounds(config);
    let mut follows = Follows::new();
    // the line starting at `at` is line number `line`
    let (mut at, mut line) = (0usize, 1usize);
    // WRITTEN: where the write starts the next section, and the index of
    // the property asked for in the last plugin's plan
    let (mut written_start, mut wanted) = (0usize, usize::MAX);
    while at < bytes.len() {
        if bytes[at] == b'\n' {
            // a blank line between sections
            (at, line) = (at + 1, line + 1);
            continue;
        }
        let (plugin, plan, id_start) = header_at(config, bytes, at, last)?;
        if WRITTEN {
            form.exact &= at == written_start;
            if last.is_none_or(|(last, _)| !std::ptr::eq(last, plugin)) {
                wanted = plan
                    .checks
                    .binary_search_by(|(name, _)| (*name).cmp(form.property))
                    .unwrap_or(usize::MAX);
            }
        }
        last = Some((plugin, plan));
        // where the header's line ends: a safe id of up to 15 bytes and its
        // line feed at once, any other id by its line's end and its check
        let id_end = match safe_id_end(bytes, id_start, safe_id) {
            Some(id_end) if id_end - at <= MAX_LINE_LENGTH => id_end,
            _ => {
                let id_end = line_end(bytes, id_start)?;
                if id_end - at > MAX_LINE_LENGTH
                    || !id_passes(config, safe_id, &bytes[id_start..id_end])
                {
                    return None;
                }
                id_end
            }
        };
        let (end, lines, value) =
            properties::<WRITTEN>(bytes, plan, id_end, wanted, form, &mut follows)?;
        each(Found {
            plugin,
            id: id_start..id_end,
            line,
            text: at..end,
            value,
        })?;
        if WRITTEN {
            // past the last line's line feed and one blank line
            written_start = end + 2;
        }
        // past the blank line that ended the section (its line feed, read
        // by `properties` already) or the text's end: the next section's
        // header, else more blank lines
        (at, line) = (end + 2, line + lines + 2);
    }
    if WRITTEN {
        // the last section's line feed ends the text (an empty text has
        // no section)
        form.exact &= bytes.len() == written_start.saturating_sub(1);
    }
    Some(())
}

/// The header line at `start`: its plugin and scan plan, and where its
/// id starts (its end is the line's, past printable ASCII alone). The
/// previous section's type first (`last`): files are mostly of one type.
#[inline(always)]
fn header_at<'a>(
    config: &'a SectionConfig,
    bytes: &[u8],
    start: usize,
    last: Option<(&'a SectionConfigPlugin, &'a ScanPlan)>,
) -> Option<(&'a SectionConfigPlugin, &'a ScanPlan, usize)> {
    match last {
        Some((plugin, plan)) if plan.header.matches(word(bytes, start)) => {
            Some((plugin, plan, start + plan.header.len))
        }
        _ => {
            let end = line_end(bytes, start)?;
            let (plugin, plan, id_at) = header(config, &bytes[start..end])?;
            Some((plugin, plan, start + id_at))
        }
    }
}

/// Where the id that starts at `from` ends if it is a safe id of at most
/// 15 bytes within `safe_id`'s bounds ([`safe_id_bounds`]) and its line
/// ends after it (a line feed): what [`line_end`] and [`id_passes`] give
/// for it, from one 16-byte step. `None` for anything else, which they
/// decide (it only says where an id passes, never that one does not).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn safe_id_end(bytes: &[u8], from: usize, safe_id: Option<(usize, usize)>) -> Option<usize> {
    let (min, max) = safe_id?;
    let part = *bytes.get(from..)?.first_chunk::<16>()?;
    // the bytes a safe id may hold, then the first that it may not: 16
    // where all may (an id that long is left to the slower check)
    let len = (!super::safe_id_bytes(part)).trailing_zeros() as usize;
    // a safe id is not empty (whatever the bounds) and does not start with
    // '-' or '.' (which it may hold after)
    let first = len > 0 && part[0].wrapping_sub(b'-') >= 2;
    let passes = part.get(len) == Some(&b'\n') && first && (min..=max).contains(&len);
    passes.then_some(from + len)
}

/// [`safe_id_end`] where there is no SSE2: nothing decided, the line's
/// end and the id check decide.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn safe_id_end(_: &[u8], _: usize, _: Option<(usize, usize)>) -> Option<usize> {
    None
}

/// How many places [`Follows`] has: one per index the next property of
/// a section is searched from (0 to 64: a plan has at most 64
/// properties), rounded up to a power of two, so that an index taken
/// modulo it needs no bounds check.
const FOLLOWS: usize = 128;

/// Per index the next property of a section is searched from (the one
/// after the previous property's, 0 at the header), the index of the
/// property found there last: the one the line is compared with first.
/// Sections of one writer are alike (`created` after the header,
/// `kdf` after `fingerprint`, past the optional ones they leave out), so
/// a line is mostly compared once, on predicted branches alone.
///
/// A guess only saves compares, it decides nothing: it is taken where it
/// matches the line, and no line matches two properties (a pattern is
/// `<tab>KEY ` with a name holding no space, so none starts another's),
/// so it is the property the search would find, if it is not before the
/// index searched from: every entry is at least its own index (so at
/// first, and the search finds only such), whichever plan found it.
struct Follows([u8; FOLLOWS]);

impl Follows {
    fn new() -> Self {
        Self(std::array::from_fn(|index| index as u8))
    }
}

/// The property lines of a section of `plan` whose header ends at
/// `header_end`, in the writer's order (each line matched as one word
/// against the properties after the previous one, its value checked
/// where it stands): where the section's last line ends, how many
/// property lines it has and (`WRITTEN`) where the value of the property
/// at index `wanted` is; `None` where that does not hold, a check does
/// not pass or a required property is missing. With `WRITTEN`, a value
/// the write gives in another form clears `form.exact`.
#[inline(always)]
fn properties<const WRITTEN: bool>(
    bytes: &[u8],
    plan: &ScanPlan,
    header_end: usize,
    wanted: usize,
    form: &mut WriterForm,
    follows: &mut Follows,
) -> Option<(usize, usize, Option<Range<usize>>)> {
    // the end of the section's last line so far: a line feed, or the end
    // of the text
    let mut end = header_end;
    let steps = plan.in_order.as_slice();
    let (mut next, mut seen, mut lines) = (0usize, 0u64, 0usize);
    let mut value = None;
    loop {
        let start = end + 1;
        // the text ends, or a blank line ends the section
        if bytes.get(start).is_none_or(|&first| first == b'\n') {
            break;
        }
        // the next property present: names in order, each once (a
        // pattern holds no line feed and is not matched past the text's
        // end: it only matches a line that holds it whole)
        let word = word(bytes, start);
        // the property that followed the last one the last time first
        // (one compare on predicted branches where the sections are
        // alike), else the search of those after it
        let guess = usize::from(follows.0[next % FOLLOWS]);
        debug_assert!(guess >= next);
        let (index, step) = match steps.get(guess) {
            Some(step) if (word ^ step.pattern) & step.mask == 0 => (guess, step),
            _ => {
                let (skipped, step) = steps
                    .get(next..)?
                    .iter()
                    .enumerate()
                    .find(|(_, step)| (word ^ step.pattern) & step.mask == 0)?;
                follows.0[next % FOLLOWS] = (next + skipped) as u8;
                (next + skipped, step)
            }
        };
        let value_start = start + step.value_at;
        end = match step.check {
            InOrderCheck::Fingerprint => {
                // 95 bytes, then the line's end: no other length passes
                // (and the bounds take it: else the check is `Other`)
                let value_end = value_start + 95;
                let passes = bytes
                    .get(value_start..value_end)
                    .is_some_and(is_fingerprint)
                    && bytes.get(value_end).is_none_or(|&c| c == b'\n');
                passes.then_some(value_end)?
            }
            // mostly a few digits and the line's end: within the bounds
            // by their number alone
            InOrderCheck::Integer { min, max, digits } => {
                match digits_end(bytes, value_start, digits) {
                    Some(end) => {
                        if WRITTEN {
                            // digits alone: canonical without a leading zero
                            // (`0` alone is)
                            form.exact &= bytes[value_start] != b'0' || end == value_start + 1;
                        }
                        end
                    }
                    None => value_end(bytes, start, value_start, |value| {
                        if WRITTEN {
                            form.exact &= is_canonical_integer(value);
                        }
                        is_integer_within(value, min, max, digits)
                    })?,
                }
            }
            InOrderCheck::Text { min, max } => value_end(bytes, start, value_start, |value| {
                (min..=max).contains(&value.len()) && is_unpadded(value)
            })?,
            InOrderCheck::Other => {
                if WRITTEN {
                    // a string is written as it was read; a boolean or a
                    // number maybe not
                    form.exact &=
                        matches!(plan.checks.get(index), Some((_, ValueCheck::String { .. })));
                }
                value_end(bytes, start, value_start, |value| {
                    other_passes(plan, index, value)
                })?
            }
        };
        if WRITTEN && index == wanted {
            value = Some(value_start..end);
        }
        // the line is not too long: checked by `value_end`; a fingerprint's
        // line and one of digits alone are shorter than any line too long
        // (a pattern is at most 16 bytes)
        const _: () = assert!(16 + 95 < MAX_LINE_LENGTH && 16 + 16 < MAX_LINE_LENGTH);
        seen |= 1 << index;
        next = index + 1;
        lines += 1;
    }
    (seen & plan.required == plan.required).then_some((end, lines, value))
}

/// The end of the value that starts at `from` on the line that starts
/// at `line_start` (its line's end, past printable ASCII alone) if the
/// line is at most [`MAX_LINE_LENGTH`] bytes long and `passes` holds for
/// the value.
#[inline(always)]
fn value_end(
    bytes: &[u8],
    line_start: usize,
    from: usize,
    passes: impl FnOnce(&[u8]) -> bool,
) -> Option<usize> {
    let end = line_end(bytes, from)?;
    (end - line_start <= MAX_LINE_LENGTH && passes(&bytes[from..end])).then_some(end)
}

/// The first 16 bytes of `bytes` from `at` as a [`KeyPattern::word`]
/// (zeros past the text's end), read on past the line's end.
#[inline(always)]
fn word(bytes: &[u8], at: usize) -> u128 {
    match bytes.get(at..).and_then(|rest| rest.first_chunk::<16>()) {
        Some(word) => u128::from_le_bytes(*word),
        None => KeyPattern::word(bytes.get(at..).unwrap_or_default()),
    }
}

/// The end of the line whose part from `from` on is printable ASCII
/// (`' '` to `'~'`): where its line feed is, or the end of the text;
/// `None` if a byte before that is anything else. 16 bytes first (most
/// ids and values end within them), then 32 bytes a step (a path's
/// value: two 16-byte tests and one branch), the last 16 to 31 bytes of
/// the text 16 a step.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn line_end(bytes: &[u8], from: usize) -> Option<usize> {
    use safe_arch::{
        add_i8_m128i, bitand_m128i, cmp_gt_mask_i8_m128i, m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };

    /// Per byte of `part`, all ones if it is printable: x + 1, signed, is
    /// above a space for ' ' to '~' alone (as in the two-pass scan's
    /// block masks).
    #[inline(always)]
    fn printable(part: [u8; 16]) -> m128i {
        cmp_gt_mask_i8_m128i(
            add_i8_m128i(m128i::from(part), set_splat_i8_m128i(1)),
            set_splat_i8_m128i(b' ' as i8),
        )
    }
    /// Where the line ends in `bytes` if the first byte from `at` that is
    /// not printable is at `first` from it: there if that is a line feed.
    #[inline(always)]
    fn ends_at(bytes: &[u8], at: usize, first: u32) -> Option<usize> {
        let end = at + first as usize;
        (bytes.get(end) == Some(&b'\n')).then_some(end)
    }

    let mut at = from;
    while let Some(part) = bytes.get(at..).and_then(|rest| rest.first_chunk::<16>()) {
        let stops = !(move_mask_i8_m128i(printable(*part)) as u32) & 0xffff;
        if stops != 0 {
            return ends_at(bytes, at, stops.trailing_zeros());
        }
        at += 16;
        while let Some(part) = bytes.get(at..).and_then(|rest| rest.first_chunk::<32>()) {
            let (low, high) = part.split_at(16);
            let (low, high) = (
                printable(low.try_into().unwrap()),
                printable(high.try_into().unwrap()),
            );
            if move_mask_i8_m128i(bitand_m128i(low, high)) != 0xffff {
                let printable =
                    move_mask_i8_m128i(low) as u32 | (move_mask_i8_m128i(high) as u32) << 16;
                return ends_at(bytes, at, (!printable).trailing_zeros());
            }
            at += 32;
        }
    }
    scalar_line_end(bytes, at)
}

/// [`line_end`] byte by byte (where there is no SSE2, and for the last
/// 15 bytes of a text).
#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "sse2")),
    inline(always)
)]
fn scalar_line_end(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    match rest.iter().position(|c| !(b' '..=b'~').contains(c)) {
        None => Some(bytes.len()),
        Some(at) => (rest[at] == b'\n').then_some(from + at),
    }
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn line_end(bytes: &[u8], from: usize) -> Option<usize> {
    scalar_line_end(bytes, from)
}

/// Where the line feed is after 1 to `digits` ASCII digits from `from`
/// (at most 16, so within the 16 bytes from `from`, which the text must
/// hold); `None` for anything else (such a value is read by [`line_end`]
/// and its check then). One 16-byte step.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn digits_end(bytes: &[u8], from: usize, digits: usize) -> Option<usize> {
    use safe_arch::{
        add_i8_m128i, cmp_eq_mask_i8_m128i, cmp_lt_mask_i8_m128i, m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };

    let x = m128i::from(*bytes.get(from..)?.first_chunk::<16>()?);
    // x + 0x50 is below -128 + 10 (signed) for '0' to '9' alone
    let is_digit = cmp_lt_mask_i8_m128i(
        add_i8_m128i(x, set_splat_i8_m128i(0x50)),
        set_splat_i8_m128i(-128 + 10),
    );
    let is_line_feed = cmp_eq_mask_i8_m128i(x, set_splat_i8_m128i(b'\n' as i8));
    // 16 where all 16 are digits: no line feed there
    let count = (!(move_mask_i8_m128i(is_digit) as u32)).trailing_zeros() as usize;
    let line_feeds = move_mask_i8_m128i(is_line_feed) as u32;
    ((1..=digits).contains(&count) && line_feeds >> count & 1 == 1).then_some(from + count)
}

/// [`digits_end`] byte by byte (where there is no SSE2; the reference
/// the vector one is tested against).
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "sse2")),
    inline(always)
)]
fn scalar_digits_end(bytes: &[u8], from: usize, digits: usize) -> Option<usize> {
    let part = bytes.get(from..)?.first_chunk::<16>()?;
    let count = part.iter().take_while(|c| c.is_ascii_digit()).count();
    ((1..=digits).contains(&count) && part.get(count) == Some(&b'\n')).then_some(from + count)
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn digits_end(bytes: &[u8], from: usize, digits: usize) -> Option<usize> {
    scalar_digits_end(bytes, from, digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector line end against the scalar one: every byte value at
    /// every place of lines of every length around the first 16-byte
    /// step and the first 32-byte one, and of some around the next steps,
    /// from several starts, a line feed after or not.
    #[test]
    fn line_ends_agree_with_the_scalar_ones_byte_by_byte() {
        for len in (0..50).chain([63, 64, 65, 79, 80, 81, 95, 96, 97]) {
            for tail in ["", "\n", "\nnext", "x\n"] {
                let good = format!("{}{tail}", &"a~ Z".repeat(25)[..len]);
                let good = good.as_bytes();
                for from in [0, 1, 15, 16, 17].into_iter().filter(|&f| f <= good.len()) {
                    assert_eq!(line_end(good, from), scalar_line_end(good, from));
                }
                for at in 0..good.len() {
                    for byte in 0..=255u8 {
                        let mut text = good.to_vec();
                        text[at] = byte;
                        for from in [0, 1, 16].into_iter().filter(|&f| f <= text.len()) {
                            assert_eq!(
                                line_end(&text, from),
                                scalar_line_end(&text, from),
                                "{text:?} from {from}"
                            );
                        }
                    }
                }
            }
        }
        assert_eq!(scalar_line_end(b"ab\ncd", 0), Some(2));
        assert_eq!(scalar_line_end(b"ab\tcd\n", 0), None);
        assert_eq!(scalar_line_end(b"abcd", 1), Some(4));
        assert_eq!(line_end(&[b'a'; 40], 3), Some(40));
    }

    /// The safe id's end in one step against the line's end and the id
    /// check it stands for (as [`id_passes`] checks a safe id): every byte
    /// value at every place of ids of 0 to 17 bytes and the line feed
    /// after them, under bounds around their length; each valid id of 1
    /// to 15 bytes within its bounds found so.
    #[test]
    fn safe_id_ends_agree_with_the_line_end_and_the_id_check() {
        let id_passes = |id: &[u8], (min, max): (usize, usize)| {
            (min..=max).contains(&id.len()) && super::super::is_safe_id(id)
        };
        for len in 0..=17 {
            let good = format!(
                "ab:{}\n\tnext line, long enough",
                &"a-B.c_9Z".repeat(3)[..len]
            );
            let bounds = [
                (0, 20),
                (1, 15),
                (len, len),
                (len + 1, 20),
                (0, len.saturating_sub(1)),
            ];
            for at in 3..=3 + len + 1 {
                for byte in 0..=255u8 {
                    let mut text = good.as_bytes().to_vec();
                    text[at] = byte;
                    for bounds in bounds {
                        let general =
                            line_end(&text, 3).filter(|&end| id_passes(&text[3..end], bounds));
                        if let Some(end) = safe_id_end(&text, 3, Some(bounds)) {
                            assert_eq!(Some(end), general, "{text:?} {bounds:?}");
                        }
                    }
                }
            }
            for bounds in bounds {
                let expected = (1..16).contains(&len) && (bounds.0..=bounds.1).contains(&len);
                let fast = safe_id_end(good.as_bytes(), 3, Some(bounds));
                assert_eq!(fast.is_some(), expected, "{good:?} {bounds:?}");
            }
        }
        // a text that ends within the 16 bytes: left to the line's end
        assert_eq!(safe_id_end(b"abc\n", 0, Some((1, 10))), None);
        assert_eq!(safe_id_end(b"abc\nsome more text", 0, None), None);
    }

    /// The vector digits' end against the scalar one, and both against
    /// the line end and integer check they stand for: every byte value at
    /// every place of 0 to 18 digits with a line feed after, for every
    /// count of digits allowed, at the end of the text or not.
    #[test]
    fn digits_ends_agree_with_the_scalar_ones_and_the_integer_check() {
        for len in 0..=18 {
            for tail in ["\n", "\nnext line ....", "\n", ""] {
                let good = format!("{}{tail}", &"1234567890".repeat(2)[..len]);
                for at in 0..good.len() {
                    for byte in (0..=255u8).step_by(if at < len + 1 { 1 } else { 37 }) {
                        let mut text = good.as_bytes().to_vec();
                        text[at] = byte;
                        for digits in [0, 1, 9, 10, 15, 16] {
                            let fast = digits_end(&text, 0, digits);
                            assert_eq!(fast, scalar_digits_end(&text, 0, digits), "{text:?}");
                            if let Some(end) = fast {
                                // what the slower reading gives
                                assert_eq!(line_end(&text, 0), Some(end));
                                assert!(is_integer_within(&text[..end], 0, isize::MAX, digits));
                                assert!(end <= digits);
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(digits_end(b"1775840036\n\tnext line", 0, 16), Some(10));
        assert_eq!(digits_end(b"1775840036\n\tnext line", 0, 9), None);
        assert_eq!(digits_end(b"-1775840036\n\tnext line", 0, 16), None);
        assert_eq!(digits_end(b"17\n", 0, 16), None);
    }

    proptest::proptest! {
        #[test]
        fn line_ends_agree_with_the_scalar_ones(
            text in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b' ', b'~', b'\n', b'\t', 0x7f, 0x80, 0xff, 0, b'\r']),
                0..80,
            ),
            from in 0usize..80,
        ) {
            let from = from.min(text.len());
            proptest::prop_assert_eq!(line_end(&text, from), scalar_line_end(&text, from));
        }
    }
}
