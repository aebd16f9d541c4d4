//! Texts that differ from a given one by one byte or one line, for the
//! tests that compare a fast reader or writer with the generic one on
//! every small hand edit of a config.

/// The bytes put in place of each byte: control characters the parsers
/// treat as whitespace or line ends, separators and punctuation of the
/// format, digits, letters, and the first byte of a two-byte UTF-8
/// sequence (invalid alone).
pub const REPLACEMENTS: &[u8] = b"\0\t\n\r\x0b\x0c\x7f !#+-.0159:A_afgz\xc3";

/// `text` with the byte at `at` replaced by each of [`REPLACEMENTS`] in
/// turn, then with it removed.
pub fn one_byte_edits(text: &[u8], at: usize) -> Vec<Vec<u8>> {
    let mut variants: Vec<Vec<u8>> = REPLACEMENTS
        .iter()
        .map(|byte| {
            let mut bytes = text.to_vec();
            bytes[at] = *byte;
            bytes
        })
        .collect();
    let mut removed = text.to_vec();
    removed.remove(at);
    variants.push(removed);
    variants
}

/// `text` with each of its lines dropped, then repeated: `(line index,
/// dropped, repeated)`, in line order.
pub fn one_line_edits(text: &str) -> Vec<(usize, String, String)> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    (0..lines.len())
        .map(|at| {
            let dropped = [&lines[..at], &lines[at + 1..]].concat().concat();
            let repeated = [&lines[..=at], &lines[at..]].concat().concat();
            (at, dropped, repeated)
        })
        .collect()
}
