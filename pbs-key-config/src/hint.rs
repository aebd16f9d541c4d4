//! A key file's hint shown to people: in a passphrase prompt, an error, a
//! paperkey.
//!
//! The hint is text of whoever made the key file, read from the file
//! unchecked (upstream's files may hold any string). The hints the store
//! keeps are one line without control characters (`CONFIG_TEXT_FORMAT` of
//! pbs-api-types), but a key file given to `import` or `restore` is
//! anyone's: shown as it is, its escape sequences could move a terminal's
//! cursor, clear the line of an error and print a success in its place, or
//! hide what follows (docs/security.md finding 65).

use std::borrow::Cow;
use std::fmt::Write;

/// `hint` with each control character, and each format character that
/// reorders text (bidirectional marks, embeddings, overrides and
/// isolates), written as its escape (`\u{1b}`); any other text as it is.
pub fn printable_hint(hint: &str) -> Cow<'_, str> {
    if !hint.chars().any(needs_escape) {
        return Cow::Borrowed(hint);
    }
    let mut shown = String::with_capacity(hint.len() + 16);
    for c in hint.chars() {
        if needs_escape(c) {
            // writing to a String cannot fail
            let _ = write!(shown, "{}", c.escape_unicode());
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

/// Whether `c` changes how a terminal or a line of text shows what is
/// around it.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_reordering_characters_are_escaped_other_text_kept() {
        let plain = "the <usual> one, with a \"twist\" \\ and ümlauts";
        assert!(matches!(printable_hint(plain), Cow::Borrowed(text) if text == plain));
        assert_eq!(
            printable_hint("x\n\u{1b}[1A\u{1b}[2Kimported\r\t\u{7f}\u{9b}"),
            "x\\u{a}\\u{1b}[1A\\u{1b}[2Kimported\\u{d}\\u{9}\\u{7f}\\u{9b}"
        );
        assert_eq!(
            printable_hint("key \u{202e}gnp.exe\u{202c} \u{2066}a\u{2069}\u{200f}"),
            "key \\u{202e}gnp.exe\\u{202c} \\u{2066}a\\u{2069}\\u{200f}"
        );
    }
}
