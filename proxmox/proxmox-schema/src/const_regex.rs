//! Regular expressions usable in `const` schema items, compiled on first use.

use std::fmt;

use regex::Regex;

/// A regex pattern as a const item: its source text plus a function that
/// compiles it once and returns the cached [`Regex`].
///
/// Built with [`const_regex!`](crate::const_regex).
#[derive(Clone, Copy)]
pub struct ConstRegexPattern {
    /// The pattern source text.
    pub regex_string: &'static str,
    /// Returns the compiled pattern (compiled on the first call).
    pub regex_obj: fn() -> &'static Regex,
}

impl fmt::Debug for ConstRegexPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.regex_string)
    }
}

impl ConstRegexPattern {
    /// Whether `text` matches (anchors must be part of the pattern).
    pub fn is_match(&self, text: &str) -> bool {
        (self.regex_obj)().is_match(text)
    }
}

/// Declares `const` [`ConstRegexPattern`] items.
///
/// ```
/// proxmox_schema::const_regex! {
///     /// Lowercase words.
///     pub WORD_REGEX = r"^[a-z]+$";
/// }
/// assert!(WORD_REGEX.is_match("abc"));
/// assert!(!WORD_REGEX.is_match("a c"));
/// ```
#[macro_export]
macro_rules! const_regex {
    ($($(#[$attr:meta])* $vis:vis $name:ident = $regex:expr;)+) => {
        $(
            $(#[$attr])*
            $vis const $name: $crate::ConstRegexPattern = $crate::ConstRegexPattern {
                regex_string: $regex,
                regex_obj: || -> &'static $crate::__private::regex::Regex {
                    static REGEX: ::std::sync::OnceLock<$crate::__private::regex::Regex> =
                        ::std::sync::OnceLock::new();
                    REGEX.get_or_init(|| {
                        $crate::__private::regex::Regex::new($regex)
                            .expect("const_regex! pattern must compile")
                    })
                },
            };
        )+
    };
}
