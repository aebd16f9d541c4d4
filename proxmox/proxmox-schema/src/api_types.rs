//! Common string formats and schemas, as in upstream's `api_types` module.

use crate::{ApiStringFormat, Schema, StringSchema, const_regex};

/// The regex text of a "safe id": a letter, digit or `_`, then letters,
/// digits, `.`, `_` or `-`. Usable inside `concat!`.
#[macro_export]
macro_rules! SAFE_ID_REGEX_STR {
    () => {
        r"(?:[A-Za-z0-9_][A-Za-z0-9._\-]*)"
    };
}

const_regex! {
    /// A whole string that is a safe id.
    pub SAFE_ID_REGEX = concat!(r"^", SAFE_ID_REGEX_STR!(), r"$");
    /// A SHA-256 fingerprint: 32 hex bytes separated by colons, either case.
    pub FINGERPRINT_SHA256_REGEX = r"^(?:[0-9a-fA-F][0-9a-fA-F])(?::[0-9a-fA-F][0-9a-fA-F]){31}$";
    /// One line without control characters.
    pub SINGLE_LINE_COMMENT_REGEX = r"^[[:^cntrl:]]*$";
    /// A lowercase hex SHA-256 digest.
    pub SHA256_HEX_REGEX = r"^[a-f0-9]{64}$";
    /// A password: no control characters.
    pub PASSWORD_REGEX = r"^[[:^cntrl:]]*$";
}

/// Format of a safe id: what [`SAFE_ID_REGEX`] matches, checked by
/// [`verify_safe_id`] (a byte loop: every section of a config file has a
/// safe id, so this check is on the parse path, and a regex costs its
/// compilation in every new process).
pub const SAFE_ID_FORMAT: ApiStringFormat = ApiStringFormat::VerifyFn(verify_safe_id);

/// Accepts exactly what [`SAFE_ID_REGEX`] matches: a letter, digit or `_`,
/// then letters, digits, `.`, `_` or `-` (ASCII only). The error text is
/// the regex's.
pub fn verify_safe_id(value: &str) -> Result<(), anyhow::Error> {
    // by table, without early exits: every section header of a config
    // holds one
    let ok = match value.as_bytes() {
        [first, rest @ ..] => {
            SAFE_ID_BYTE[usize::from(*first)] == SAFE_ID_ANY
                && rest
                    .iter()
                    .fold(true, |ok, c| ok & (SAFE_ID_BYTE[usize::from(*c)] != 0))
        }
        [] => false,
    };
    if !ok {
        anyhow::bail!("value does not match the regex pattern");
    }
    Ok(())
}
/// Accepts one line without control characters and without leading or
/// trailing whitespace: free text stored as a section-config value
/// (`pbs_api_types::CONFIG_TEXT_FORMAT`, whose regex is
/// `CONFIG_TEXT_REGEX` there). Here, beside the other format functions on
/// the config parse path, so the section-config scan can recognize it.
pub fn verify_config_text(value: &str) -> Result<(), anyhow::Error> {
    let bytes = value.as_bytes();
    // ASCII fast path (vectorizable); anything else is decoded
    let ascii_clean = bytes
        .iter()
        .fold(true, |ok, b| ok & (*b >= 0x20) & (*b < 0x7f));
    if !ascii_clean && value.chars().any(char::is_control) {
        anyhow::bail!("value contains a control character");
    }
    let padded = match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) if ascii_clean => *first == b' ' || *last == b' ',
        (Some(_), Some(_)) => value.trim() != value,
        _ => false,
    };
    if padded {
        anyhow::bail!("value begins or ends with whitespace");
    }
    Ok(())
}

/// [`SAFE_ID_BYTE`] of a byte allowed anywhere in a safe id.
const SAFE_ID_ANY: u8 = 2;

/// Per byte: [`SAFE_ID_ANY`] for letters, digits and `_`, 1 for `.` and
/// `-` (not first), 0 for the rest.
const SAFE_ID_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        table[i] = if c.is_ascii_alphanumeric() || c == b'_' {
            SAFE_ID_ANY
        } else if c == b'.' || c == b'-' {
            1
        } else {
            0
        };
        i += 1;
    }
    table
};

/// Format of a SHA-256 fingerprint: what [`FINGERPRINT_SHA256_REGEX`]
/// matches, checked by [`verify_fingerprint_sha256`] (a byte loop: config
/// files hold one fingerprint per key, so this check is on the parse path).
pub const FINGERPRINT_SHA256_FORMAT: ApiStringFormat =
    ApiStringFormat::VerifyFn(verify_fingerprint_sha256);

/// Accepts exactly what [`FINGERPRINT_SHA256_REGEX`] matches: 32 hex bytes
/// (either case) separated by colons. The error text is the regex's.
pub fn verify_fingerprint_sha256(value: &str) -> Result<(), anyhow::Error> {
    // 32 groups "hh" each followed by ':' except the last; checked by
    // arithmetic without early exits over a fixed-size array, which the
    // compiler turns into 16-byte vector steps (this runs once per key on
    // every config parse)
    let ok = <&[u8; 95]>::try_from(value.as_bytes()).is_ok_and(|bytes| {
        let mut bad = 0u8;
        // by index: the compiler vectorizes this form, not an iterator zip
        #[allow(clippy::needless_range_loop)]
        for i in 0..95 {
            let byte = bytes[i];
            let hex = (byte.wrapping_sub(b'0') < 10) | ((byte | 0x20).wrapping_sub(b'a') < 6);
            bad |= u8::from(if COLON_AT[i] { byte != b':' } else { !hex });
        }
        bad == 0
    });
    if !ok {
        anyhow::bail!("value does not match the regex pattern");
    }
    Ok(())
}
/// Where the colons of a fingerprint are.
const COLON_AT: [bool; 95] = {
    let mut colons = [false; 95];
    let mut i = 2;
    while i < 95 {
        colons[i] = true;
        i += 3;
    }
    colons
};

/// Format of a single-line comment.
pub const SINGLE_LINE_COMMENT_FORMAT: ApiStringFormat =
    ApiStringFormat::Pattern(&SINGLE_LINE_COMMENT_REGEX);
/// Format of a SHA-256 digest.
pub const SHA256_HEX_FORMAT: ApiStringFormat = ApiStringFormat::Pattern(&SHA256_HEX_REGEX);
/// Format of a password.
pub const PASSWORD_FORMAT: ApiStringFormat = ApiStringFormat::Pattern(&PASSWORD_REGEX);

/// A SHA-256 fingerprint (of a certificate or key), colon separated.
pub const CERT_FINGERPRINT_SHA256_SCHEMA: Schema =
    StringSchema::new("X509 certificate fingerprint (sha256).")
        .format(&FINGERPRINT_SHA256_FORMAT)
        .schema();

/// A single-line comment.
pub const SINGLE_LINE_COMMENT_SCHEMA: Schema = StringSchema::new("Comment (single line).")
    .format(&SINGLE_LINE_COMMENT_FORMAT)
    .schema();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_id_regex() {
        for ok in ["abc", "a.b-c_d", "_x", "0key", "tape.sync_01"] {
            assert!(SAFE_ID_REGEX.is_match(ok), "{ok}");
        }
        for bad in [
            "", ".abc", "-abc", "a b", "../x", "key@home", "ä", "a/b", "a\n",
        ] {
            assert!(!SAFE_ID_REGEX.is_match(bad), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn verify_safe_id_accepts_what_the_regex_matches(text in "[A-Za-z0-9._\\-@ /\u{e4}\n]{0,6}") {
            proptest::prop_assert_eq!(verify_safe_id(&text).is_ok(), SAFE_ID_REGEX.is_match(&text));
        }
    }

    #[test]
    fn fingerprint_regex_needs_colons_and_32_bytes() {
        let fp = "0e:ab:d4:46:0b:6e:b9:ca:34:50:23:de:e2:b7:78:c7:90:e5:4a:16:83:b9:65:9c:0a:57:ae:19:90:90:15:9b";
        assert!(FINGERPRINT_SHA256_REGEX.is_match(fp));
        assert!(FINGERPRINT_SHA256_REGEX.is_match(&fp.to_uppercase()));
        assert!(!FINGERPRINT_SHA256_REGEX.is_match(&fp.replace(':', "")));
        assert!(!FINGERPRINT_SHA256_REGEX.is_match(&fp[3..]));
    }

    #[test]
    fn fingerprint_verify_fn_agrees_with_the_regex() {
        let fp = "0e:ab:d4:46:0b:6e:b9:ca:34:50:23:de:e2:b7:78:c7:90:e5:4a:16:83:b9:65:9c:0a:57:ae:19:90:90:15:9b";
        let mut cases = vec![
            fp.to_string(),
            fp.to_uppercase(),
            fp.replace(':', ""),
            fp[3..].to_string(),
            format!("{fp}:00"),
            fp.replacen("0e", "0g", 1),
            fp.replacen(':', ";", 1),
            format!(" {}", &fp[1..]),
            String::new(),
        ];
        // every single-byte change of a valid fingerprint
        for i in 0..fp.len() {
            for c in (0u8..128).map(char::from).chain(['é']) {
                let mut s: Vec<char> = fp.chars().collect();
                s[i] = c;
                cases.push(s.into_iter().collect());
            }
        }
        for case in cases {
            assert_eq!(
                verify_fingerprint_sha256(&case).is_ok(),
                FINGERPRINT_SHA256_REGEX.is_match(&case),
                "{case:?}"
            );
        }
    }

    #[test]
    fn comment_regex_refuses_control_characters() {
        assert!(SINGLE_LINE_COMMENT_REGEX.is_match("it's # fine, really"));
        assert!(!SINGLE_LINE_COMMENT_REGEX.is_match("two\nlines"));
        assert!(!SINGLE_LINE_COMMENT_REGEX.is_match("nul\0"));
    }
}
