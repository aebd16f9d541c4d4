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

/// Parses an RFC 3339 timestamp the way upstream's `proxmox_time::parse_rfc3339`
/// does: exactly `YYYY-MM-DDTHH:MM:SSZ` or `YYYY-MM-DDTHH:MM:SS+HH:MM` (or
/// `-HH:MM`), no fractional seconds, an upper-case `T` and `Z`. Fields are
/// only bounded above (month 12, day 31, hour 23, minute 59, second 60) and
/// the date is normalised like `timegm` does, so `02-30` is 2 March.
pub fn parse_rfc3339(text: &str) -> Result<i64, &'static str> {
    let input = text.as_bytes();
    if !(20..=25).contains(&input.len()) {
        return Err("timestamp of unexpected length");
    }
    let offset_sign = match (input[19], input.len()) {
        (b'Z', 20) => None,
        (b'+', 25) => Some(1),
        (b'-', 25) => Some(-1),
        (b'Z' | b'+' | b'-', _) => return Err("unexpected length in timestamp"),
        _ => return Err("unexpected timezone indicator"),
    };
    let expect = |pos: usize, c: u8| {
        if input[pos] == c {
            Ok(())
        } else {
            Err("unexpected character in timestamp")
        }
    };
    let digits = |pos: usize, len: usize, max: i64| -> Result<i64, &'static str> {
        let mut value = 0;
        for c in &input[pos..pos + len] {
            if !c.is_ascii_digit() {
                return Err("unexpected character in timestamp");
            }
            value = value * 10 + i64::from(c - b'0');
        }
        if value > max {
            return Err("timestamp field out of range");
        }
        Ok(value)
    };

    let year = digits(0, 4, 9999)?;
    expect(4, b'-')?;
    let month = digits(5, 2, 12)?;
    expect(7, b'-')?;
    let day = digits(8, 2, 31)?;
    expect(10, b'T')?;
    let hour = digits(11, 2, 23)?;
    expect(13, b':')?;
    let minute = digits(14, 2, 59)?;
    expect(16, b':')?;
    let second = digits(17, 2, 60)?;

    // timegm's normalisation: month 0 is December of the year before, day 0
    // the last day of the month before, and so on
    let months = year * 12 + month - 1;
    let days = days_from_civil(months.div_euclid(12), months.rem_euclid(12) + 1) + day - 1;
    let epoch = days * 86_400 + hour * 3600 + minute * 60 + second;

    let epoch = match offset_sign {
        None => epoch,
        Some(sign) => {
            let offset_hours = digits(20, 2, 23)?;
            expect(22, b':')?;
            let offset_minutes = digits(23, 2, 59)?;
            epoch - sign * (offset_hours * 3600 + offset_minutes * 60)
        }
    };
    // normalisation and offsets can leave years 0000..=9999, which could
    // not be written back in this form
    if !(FIRST_WRITABLE_EPOCH..=LAST_WRITABLE_EPOCH).contains(&epoch) {
        return Err("timestamp out of range");
    }
    Ok(epoch)
}

/// 0000-01-01T00:00:00Z.
const FIRST_WRITABLE_EPOCH: i64 = -62_167_219_200;
/// 9999-12-31T23:59:59Z.
const LAST_WRITABLE_EPOCH: i64 = 253_402_300_799;

/// Days from 1970-01-01 to the first of `month` (1..=12) of `year`, in the
/// proleptic Gregorian calendar (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12; // March = 0
    let day_of_year = (153 * month_index + 2) / 5;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `i64` epoch <-> RFC 3339 text (read as [`parse_rfc3339`], any offset).
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
        parse_rfc3339(&text).map_err(|err| {
            D::Error::custom(format!(
                "timestamp is not RFC 3339 like 2025-01-01T00:00:00+00:00 ({err})"
            ))
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

    #[test]
    fn rfc3339_agrees_with_chrono_on_valid_timestamps() {
        // every day of 1969..2100 at a few times and offsets
        for epoch in (-86_400 * 366..4_102_444_800).step_by(86_400 * 7 + 3_601) {
            let time = DateTime::<Utc>::from_timestamp(epoch, 0).unwrap();
            for offset in [0, 3600, -5400, 14 * 3600] {
                let zone = chrono::FixedOffset::east_opt(offset).unwrap();
                let text = time
                    .with_timezone(&zone)
                    .to_rfc3339_opts(SecondsFormat::Secs, offset == 0 && epoch % 2 == 0);
                assert_eq!(parse_rfc3339(&text), Ok(epoch), "{text}");
            }
        }
    }

    #[test]
    fn rfc3339_is_as_strict_and_as_lax_as_upstream() {
        for refused in [
            "2025-01-01T00:00:00.123+00:00",
            "2025-01-01T00:00:00z",
            "2025-01-01t00:00:00Z",
            "2025-01-01 00:00:00Z",
            "2025-01-01T00:00:00",
            "2025-01-01T00:00:00+0000",
            "2025-13-01T00:00:00Z",
            "2025-01-32T00:00:00Z",
            "2025-01-01T24:00:00Z",
            "2025-01-01T00:00:00+24:00",
            "yesterday",
            "",
        ] {
            assert!(parse_rfc3339(refused).is_err(), "{refused}");
        }
        // what could not be written back in this form
        assert!(parse_rfc3339("9999-12-31T23:59:60Z").is_err());
        assert!(parse_rfc3339("0000-01-01T00:00:00+00:01").is_err());
        for edge in [FIRST_WRITABLE_EPOCH, LAST_WRITABLE_EPOCH] {
            let text = epoch_to_rfc3339(edge).unwrap();
            assert_eq!(parse_rfc3339(&text), Ok(edge), "{text}");
        }
        // normalised like timegm, as upstream
        assert_eq!(
            parse_rfc3339("2025-02-30T00:00:00Z"),
            parse_rfc3339("2025-03-02T00:00:00Z")
        );
        assert_eq!(
            parse_rfc3339("2025-01-01T23:59:60Z"),
            parse_rfc3339("2025-01-02T00:00:00Z")
        );
    }
}
