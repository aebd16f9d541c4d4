//! The secrets registry: every string that would give a secret away, and
//! the check that a text holds none of them.
//!
//! For a raw key: its hex (both cases) and base64 (standard, unpadded,
//! URL-safe), whole and of every 8-byte window (hex) or 9-byte window at a
//! multiple of 3 (base64, so it is a substring of the whole); for a key
//! file its `data` field; for other secrets (passwords, token secrets,
//! tickets) the text itself.

use std::cell::RefCell;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};

use pbs_key_config::KeyConfig;

/// The registered secrets, each with a name for the failure message.
#[derive(Default)]
pub struct Secrets {
    needles: RefCell<Vec<(String, String)>>,
}

impl Secrets {
    fn add(&self, name: &str, needle: String) {
        self.needles.borrow_mut().push((name.to_string(), needle));
    }

    /// Registers raw key bytes.
    pub fn key(&self, name: &str, raw: &[u8]) {
        self.add(name, hex::encode(raw));
        self.add(name, hex::encode_upper(raw));
        self.add(name, STANDARD.encode(raw));
        self.add(name, STANDARD_NO_PAD.encode(raw));
        self.add(name, URL_SAFE.encode(raw));
        for window in raw.windows(8) {
            self.add(name, hex::encode(window));
            self.add(name, hex::encode_upper(window));
        }
        for start in (0..raw.len().saturating_sub(8)).step_by(3) {
            self.add(name, STANDARD_NO_PAD.encode(&raw[start..start + 9]));
        }
    }

    /// Registers a secret that is not key bytes (a password, a token
    /// secret, a ticket), or any text that must not appear.
    pub fn text(&self, name: &str, secret: &str) {
        self.add(name, secret.to_string());
    }

    /// Registers a key file: its `data` field, and its key if unprotected.
    pub fn key_file(&self, name: &str, key_config: &KeyConfig) {
        self.add(&format!("{name} (data)"), STANDARD.encode(&key_config.data));
        if !key_config.is_protected() {
            self.key(name, &key_config.data);
        }
    }

    /// Registers the `data` field of a key file's text (any key, protected
    /// or not, even a truncated file), if it has one of 8 characters or
    /// more.
    pub fn key_file_text(&self, name: &str, text: &str) {
        if let Some(data) = data_field(text).filter(|data| data.len() >= 8) {
            self.add(&format!("{name} (data)"), data);
        }
    }

    /// The first secret `text` holds: its name and the needle found.
    pub fn leaked(&self, text: &str) -> Option<(String, String)> {
        self.needles
            .borrow()
            .iter()
            .find(|(_, needle)| text.contains(needle.as_str()))
            .cloned()
    }

    /// Panics if `text` (named `what`) holds a registered secret.
    #[track_caller]
    pub fn assert_absent(&self, what: &str, text: &str) {
        if let Some((name, needle)) = self.leaked(text) {
            panic!("{what} contains secret material of {name} ({needle}):\n{text}");
        }
    }
}

/// The value of the `"data"` field in key file text, even in a truncated file.
fn data_field(text: &str) -> Option<String> {
    let start = text.find("\"data\":\"")? + "\"data\":\"".len();
    let rest = &text[start..];
    Some(rest[..rest.find('"').unwrap_or(rest.len())].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_form_of_a_key_and_no_other_text() {
        let raw = crate::raw_key(1);
        let secrets = Secrets::default();
        secrets.key("k", &raw);
        secrets.text("password", "correct horse");
        for text in [
            hex::encode(raw),
            hex::encode_upper(&raw[5..13]),
            STANDARD.encode(raw),
            URL_SAFE.encode(raw),
            format!("x{}y", STANDARD_NO_PAD.encode(&raw[9..18])),
            "my correct horse".to_string(),
        ] {
            assert!(secrets.leaked(&text).is_some(), "{text}");
        }
        assert!(secrets.leaked(&hex::encode(&raw[5..12])).is_none());
        assert!(secrets.leaked(&hex::encode(crate::raw_key(2))).is_none());
    }

    #[test]
    fn a_truncated_key_file_registers_its_data() {
        let secrets = Secrets::default();
        secrets.key_file_text("f", "{\"kdf\":null,\"data\":\"QUJDREVGR0hJSktM");
        assert!(secrets.leaked("... QUJDREVGR0hJSktM ...").is_some());
        secrets.key_file_text("g", "{\"data\":\"short\"}");
        assert!(secrets.leaked("short").is_none());
    }
}
