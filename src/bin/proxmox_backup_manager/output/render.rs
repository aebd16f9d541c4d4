//! Cell renderers for [`Column::render`](super::Column::render): how a raw
//! property value reads in a text table. JSON output never uses them.

use serde_json::Value;

use pbs_api_types::Fingerprint;

/// A value as it is: text as is, numbers as digits, booleans `1`/`0` (as
/// upstream), lists comma-separated, absent empty.
pub fn plain(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(true) => "1".to_string(),
        Value::Bool(false) => "0".to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        Value::Object(_) => value.to_string(),
    }
}

/// An epoch as local time, `2025-01-01 00:00:00 +00:00` (honours `TZ`).
pub fn epoch_text(epoch: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(epoch, 0).single() {
        Some(time) => time.format("%Y-%m-%d %H:%M:%S %:z").to_string(),
        None => epoch.to_string(),
    }
}

/// An epoch property as local time ([`epoch_text`]); absent empty.
pub fn epoch(value: &Value, _record: &Value) -> String {
    match value.as_i64() {
        Some(epoch) => epoch_text(epoch),
        None => plain(value),
    }
}

/// An expiry: absent or 0 is `never`, else local time.
pub fn expire(value: &Value, record: &Value) -> String {
    match value.is_null() || value.as_i64() == Some(0) {
        true => "never".to_string(),
        false => epoch(value, record),
    }
}

/// A flag whose absence means yes (`enable`): `1` or `0`.
pub fn default_true(value: &Value, _record: &Value) -> String {
    plain(&Value::Bool(value.as_bool().unwrap_or(true)))
}

/// A fingerprint shortened as `Fingerprint`'s `Display` does (its first 8
/// bytes), for tables; `show` and JSON keep all 32.
pub fn short_fingerprint(value: &Value, _record: &Value) -> String {
    match value.as_str().map(str::parse::<Fingerprint>) {
        Some(Ok(fingerprint)) => fingerprint.to_string(),
        _ => plain(value),
    }
}

/// One item per line (a list property in a table cell).
pub fn lines(value: &Value, _record: &Value) -> String {
    match value {
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join("\n"),
        other => plain(other),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn renders_as_upstream_reads() {
        let fp = "0e:ab:d4:46:0b:6e:b9:ca:34:50:23:de:e2:b7:78:c7:90:e5:4a:16:83:b9:65:9c:0a:57:ae:19:90:90:15:9b";
        assert_eq!(
            short_fingerprint(&json!(fp), &Value::Null),
            "0e:ab:d4:46:0b:6e:b9:ca"
        );
        assert_eq!(short_fingerprint(&json!("odd"), &Value::Null), "odd");
        assert_eq!(expire(&Value::Null, &Value::Null), "never");
        assert_eq!(expire(&json!(0), &Value::Null), "never");
        assert_ne!(expire(&json!(86400), &Value::Null), "never");
        assert_eq!(default_true(&Value::Null, &Value::Null), "1");
        assert_eq!(default_true(&json!(false), &Value::Null), "0");
        assert_eq!(plain(&json!(["a", "b"])), "a, b");
        assert_eq!(lines(&json!(["a", "b"]), &Value::Null), "a\nb");
        assert_eq!(plain(&json!(true)), "1");
    }
}
