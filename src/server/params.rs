//! Request parameters: query string, `application/x-www-form-urlencoded`
//! or JSON body, and path parameters, checked against the route's schema.
//!
//! As upstream: every source is merged into one list and parsed by
//! [`parse_parameter_strings`], so a JSON `true` and a form `True` or `on`
//! mean the same, unknown and missing parameters are refused, and every
//! error names its parameter. Percent-decoding is strict: a value that is
//! not UTF-8 is refused naming the parameter (never replaced by U+FFFD).
//! Secrets ([`BODY_ONLY_PARAMETERS`](crate::api2::BODY_ONLY_PARAMETERS))
//! are refused in the query string.

use anyhow::{Error, format_err};
use serde_json::Value;

use proxmox_schema::{ObjectSchema, ParameterError, param_format_err, parse_parameter_strings};

use crate::http_err;

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

/// Decodes `%XX` escapes (and `+` as space when `plus_is_space`).
pub fn percent_decode(input: &[u8], plus_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut index = 0;
    while index < input.len() {
        match input[index] {
            b'%' if index + 2 < input.len() => {
                match (hex_value(input[index + 1]), hex_value(input[index + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        index += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            byte => out.push(byte),
        }
        index += 1;
    }
    out
}

/// Parses `key=value&...` text into decoded pairs.
pub fn parse_form(input: &[u8]) -> Result<Vec<(String, String)>, Error> {
    let mut pairs = Vec::new();
    for part in input.split(|b| *b == b'&') {
        if part.is_empty() {
            continue;
        }
        let (key, value) = match part.iter().position(|b| *b == b'=') {
            Some(pos) => (&part[..pos], &part[pos + 1..]),
            None => (part, &b""[..]),
        };
        let key = String::from_utf8(percent_decode(key, true))
            .map_err(|_| http_err!(BAD_REQUEST, "parameter name is not valid UTF-8"))?;
        let value = String::from_utf8(percent_decode(value, true))
            .map_err(|_| param_format_err!(key.as_str(), "value is not valid UTF-8"))?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// Turns a JSON object body into pairs; simple values become their text.
pub fn json_to_pairs(body: &[u8]) -> Result<Vec<(String, String)>, Error> {
    let text = std::str::from_utf8(body)
        .map_err(|_| http_err!(BAD_REQUEST, "request body is not valid UTF-8"))?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    // serde_json's messages give line and column, never the input
    let value: Value = serde_json::from_str(text)
        .map_err(|err| http_err!(BAD_REQUEST, "invalid JSON in request body - {err}"))?;
    let object = match value {
        Value::Object(object) => object,
        Value::Null => return Ok(Vec::new()),
        _ => return Err(http_err!(BAD_REQUEST, "request body is not a JSON object")),
    };
    let mut pairs = Vec::new();
    let mut errors = ParameterError::new();
    for (key, value) in object {
        let mut push = |value: &Value| match value {
            Value::String(text) => pairs.push((key.clone(), text.clone())),
            Value::Bool(flag) => pairs.push((key.clone(), flag.to_string())),
            Value::Number(number) => pairs.push((key.clone(), number.to_string())),
            _ => errors.push(key.clone(), format_err!("expected a simple value")),
        };
        match &value {
            Value::Null => {}
            Value::Array(items) => items.iter().for_each(&mut push),
            other => push(other),
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    Ok(pairs)
}

/// Where a request's body parameters come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json`.
    Json,
    /// `application/x-www-form-urlencoded` (or no content type).
    Form,
}

/// The body kind of a `Content-Type` header value.
pub fn body_kind(content_type: Option<&str>) -> Result<BodyKind, Error> {
    let Some(content_type) = content_type else {
        return Ok(BodyKind::Form);
    };
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "application/x-www-form-urlencoded" | "" => Ok(BodyKind::Form),
        _ => Err(http_err!(
            UNSUPPORTED_MEDIA_TYPE,
            "unsupported content type - send parameters as application/json or application/x-www-form-urlencoded"
        )),
    }
}

/// Parses every parameter of a request against `schema`.
pub fn parse_request_parameters(
    schema: &ObjectSchema,
    query: Option<&str>,
    body_kind: BodyKind,
    body: &[u8],
    path_params: &[(&str, String)],
) -> Result<Value, Error> {
    let mut pairs = match body_kind {
        BodyKind::Json => json_to_pairs(body)?,
        BodyKind::Form => {
            if std::str::from_utf8(body).is_err() {
                return Err(http_err!(BAD_REQUEST, "request body is not valid UTF-8"));
            }
            parse_form(body)?
        }
    };
    if let Some(query) = query {
        for (key, value) in parse_form(query.as_bytes())? {
            if crate::api2::BODY_ONLY_PARAMETERS.contains(&key.as_str()) {
                return Err(param_format_err!(
                    key.as_str(),
                    "carries a secret - send it in the request body, never in the URL"
                ));
            }
            // ExtJS's "disable cache" parameter, skipped as upstream does
            if key != "_dc" {
                pairs.push((key, value));
            }
        }
    }
    for (key, value) in path_params {
        pairs.push((key.to_string(), value.clone()));
    }
    parse_parameter_strings(&pairs, schema, true).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::api2::config::encryption_keys::{
        API_METHOD_CREATE_KEY_PARAMETERS, API_METHOD_LIST_KEYS_PARAMETERS,
    };

    use super::*;

    #[test]
    fn percent_decoding_is_strict_about_utf8() {
        assert_eq!(percent_decode(b"a%20b+c%zz%4", true), b"a b c%zz%4");
        assert_eq!(
            parse_form(b"id=a%2Fb&x").unwrap(),
            vec![("id".into(), "a/b".into()), ("x".into(), String::new())]
        );
        let err = parse_form(b"id=%ff").unwrap_err();
        assert_eq!(err.to_string(), "parameter 'id': value is not valid UTF-8");
    }

    #[test]
    fn all_sources_merge_and_booleans_are_case_insensitive() {
        for query in [
            "include-archived=True",
            "include-archived=on",
            "include-archived=1",
        ] {
            let value = parse_request_parameters(
                &API_METHOD_LIST_KEYS_PARAMETERS,
                Some(query),
                BodyKind::Form,
                b"",
                &[],
            )
            .unwrap();
            assert_eq!(value, json!({"include-archived": true}), "{query}");
        }
        let value = parse_request_parameters(
            &API_METHOD_CREATE_KEY_PARAMETERS,
            Some("_dc=123"),
            BodyKind::Json,
            br#"{"id": "k-1"}"#,
            &[],
        )
        .unwrap();
        assert_eq!(value, json!({"id": "k-1"}));
        let err = parse_request_parameters(
            &API_METHOD_CREATE_KEY_PARAMETERS,
            None,
            BodyKind::Form,
            b"bogus=1",
            &[],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("'bogus'") && text.contains("'id'"), "{text}");
    }

    #[test]
    fn secrets_are_taken_from_the_body_only() {
        let schema = &API_METHOD_CREATE_KEY_PARAMETERS;
        for name in crate::api2::BODY_ONLY_PARAMETERS {
            let query = format!("{name}=some+secret+value");
            let err = parse_request_parameters(schema, Some(&query), BodyKind::Form, b"", &[])
                .unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(&format!("parameter '{name}'")) && text.contains("request body"),
                "{text}"
            );
            assert!(
                !text.contains("secret value") && !text.contains("some"),
                "{text}"
            );
        }
        // in the body, the same parameter is taken
        let value = parse_request_parameters(
            schema,
            None,
            BodyKind::Form,
            b"id=k-1&passphrase=some+secret+value",
            &[],
        )
        .unwrap();
        assert_eq!(value["passphrase"], "some secret value");
    }

    #[test]
    fn bad_bodies_are_refused_clearly() {
        let schema = &API_METHOD_CREATE_KEY_PARAMETERS;
        let err = parse_request_parameters(schema, None, BodyKind::Json, b"{\"id\":", &[]);
        assert!(err.unwrap_err().to_string().contains("invalid JSON"));
        let err = parse_request_parameters(schema, None, BodyKind::Json, b"[1]", &[]);
        assert!(err.unwrap_err().to_string().contains("not a JSON object"));
        let err = parse_request_parameters(schema, None, BodyKind::Form, b"id=\xff", &[]);
        assert!(err.unwrap_err().to_string().contains("not valid UTF-8"));
        let err = parse_request_parameters(schema, None, BodyKind::Json, br#"{"id":{}}"#, &[]);
        assert_eq!(
            err.unwrap_err().to_string(),
            "parameter 'id': expected a simple value"
        );
        assert!(body_kind(Some("text/plain")).is_err());
        assert_eq!(
            body_kind(Some("Application/JSON; charset=utf-8")).unwrap(),
            BodyKind::Json
        );
    }
}
