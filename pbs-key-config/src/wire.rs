//! Serde helpers for the key file's wire encodings: RFC 3339 timestamps and
//! base64 byte strings. Decoding errors never repeat the input.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

/// Formats an epoch as RFC 3339 in UTC with a numeric offset
/// (`2025-01-01T00:00:00+00:00`), the form upstream files use.
pub fn epoch_to_rfc3339(epoch: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp(epoch, 0)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::Secs, false))
}

/// `i64` epoch <-> RFC 3339 text (any offset accepted when reading).
pub mod epoch_as_rfc3339 {
    use super::*;

    pub fn serialize<S: Serializer>(epoch: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        match epoch_to_rfc3339(*epoch) {
            Some(text) => serializer.serialize_str(&text),
            None => Err(serde::ser::Error::custom("timestamp out of range")),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|time| time.timestamp())
            .map_err(|_| {
                D::Error::custom("timestamp is not RFC 3339 (like 2025-01-01T00:00:00+00:00)")
            })
    }
}

/// `Vec<u8>` <-> standard base64 with padding.
pub mod bytes_as_base64 {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    pub fn serialize<S: Serializer>(data: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|_| D::Error::custom("value is not valid base64"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_uses_numeric_offset() {
        assert_eq!(
            epoch_to_rfc3339(1735689600).unwrap(),
            "2025-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn rfc3339_reads_other_offsets_and_z() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(with = "epoch_as_rfc3339")]
            t: i64,
        }
        for text in [
            "2025-01-01T00:00:00+00:00",
            "2025-01-01T00:00:00Z",
            "2025-01-01T01:00:00+01:00",
        ] {
            let t: T = serde_json::from_str(&format!("{{\"t\":\"{text}\"}}")).unwrap();
            assert_eq!(t.t, 1735689600, "{text}");
        }
    }
}
