//! The API's request parsing: route, content type and parameters from the
//! query string, a form or JSON body and the path, checked by the route's
//! schema (`find_api_method`, `body_kind`, `parse_request_parameters`).
//!
//! Input: `METHOD\nPATH[?QUERY]\nCONTENT-TYPE\nBODY`. Besides "no panic", it
//! checks:
//! - every refusal is a client error (400, 404, 405 or 415), never a 500;
//! - no refusal repeats the value of a `key` (an imported key file) or
//!   `password` (a password or ticket) parameter: parameter names, which
//!   refusals name on purpose, are taken out first, and where a value still
//!   appears, the same request with it overwritten must still show it (it
//!   is then text of the message itself, not a repeat);
//! - what is accepted verifies against the route's schema and holds only
//!   its properties.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proxmox_schema::{ObjectSchema, ObjectSchemaType};
use serde_json::Value;

use pbs_keystore::server::error::{message_of, status_of};
use pbs_keystore::server::params::{
    body_kind, json_to_pairs, parse_form, parse_request_parameters, percent_decode,
};
use pbs_keystore::server::router::find_api_method;

/// A request split into its parts: method, path, query, content type, body.
type Parts<'a> = (
    hyper::Method,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a [u8],
);

fn split(data: &[u8]) -> Option<Parts<'_>> {
    let mut lines = data.splitn(4, |b| *b == b'\n');
    let (method, target, content_type) = (lines.next()?, lines.next()?, lines.next()?);
    let body = lines.next().unwrap_or(b"");
    let method = hyper::Method::from_bytes(method).ok()?;
    let target = std::str::from_utf8(target).ok()?;
    let content_type = std::str::from_utf8(content_type)
        .ok()
        .filter(|ct| !ct.is_empty());
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    Some((method, path, query, content_type, body))
}

/// What the daemon would make of the request: the schema and parameters,
/// or the error.
fn parse(parts: &Parts) -> Result<(&'static ObjectSchema, Value), anyhow::Error> {
    let (method, path, query, content_type, body) = parts;
    let found = find_api_method(method, path)?;
    let kind = body_kind(*content_type)?;
    let mut path_params = Vec::new();
    for (name, raw) in &found.uri_param {
        let value = String::from_utf8(percent_decode(raw.as_bytes(), false))
            .map_err(|_| anyhow::format_err!("id is not UTF-8"))?;
        path_params.push((name.as_str(), value));
    }
    let schema = found.api_method.parameters;
    let value = parse_request_parameters(schema, *query, kind, body, &path_params)?;
    Ok((schema, value))
}

/// The message a refusal is answered with, parameter names taken out
/// (they are the client's own text, named back on purpose:
/// `parameter 'NAME': ...`).
fn refusal(data: &[u8]) -> Option<String> {
    let parts = split(data)?;
    let (_, _, query, _, body) = &parts;
    let (_, names) = secret_values(*query, body);
    let err = parse(&parts).err()?;
    let mut message = message_of(&err);
    for name in &names {
        message = message.replace(&format!("'{name}'"), "''");
    }
    Some(message)
}

fuzz_target!(|data: &[u8]| {
    let Some(parts) = split(data) else {
        return;
    };
    let (_, _, query, _, body) = &parts;
    let (secrets, _) = secret_values(*query, body);
    match parse(&parts) {
        Ok((schema, value)) => {
            let object = value.as_object().expect("parameters are an object");
            for (key, item) in object {
                let Some((_optional, property)) = schema.lookup(key) else {
                    panic!("accepted parameter {key:?} is not in the schema");
                };
                if let Err(err) = property.verify_json(item) {
                    panic!("accepted parameter {key:?} does not verify: {err}");
                }
            }
            for (name, optional, _) in schema.properties() {
                assert!(
                    *optional || object.contains_key(*name),
                    "required parameter {name:?} missing from accepted parameters"
                );
            }
        }
        Err(err) if err.to_string() == "id is not UTF-8" => {}
        Err(err) => {
            let status = status_of(&err).as_u16();
            assert!(
                matches!(status, 400 | 404 | 405 | 413 | 415),
                "status {status} for bad input: {err:#}"
            );
            let message = refusal(data).expect("a refusal");
            for secret in &secrets {
                if !message.contains(secret.as_str()) {
                    continue;
                }
                // a leak only if the message follows the secret: the same
                // request with the secret's bytes replaced must not still
                // say it (then it is text of the message itself)
                let needle = secret.as_bytes();
                let Some(_) = data.windows(needle.len()).position(|w| w == needle) else {
                    continue; // not verbatim in the input (encoded): not checked
                };
                let mut other = data.to_vec();
                let mut i = 0;
                while i + needle.len() <= other.len() {
                    if &other[i..i + needle.len()] == needle {
                        other[i..i + needle.len()].fill(b'Z');
                        i += needle.len();
                    } else {
                        i += 1;
                    }
                }
                let again = refusal(&other).unwrap_or_default();
                assert!(
                    again.contains(secret.as_str()),
                    "error repeats a secret parameter: {message}"
                );
            }
        }
    }
});

/// Values of `key` and `password` parameters (8+ characters) the request
/// carries in its query or body, as the parser decodes them, and the names
/// of all parameters.
fn secret_values(query: Option<&str>, body: &[u8]) -> (Vec<String>, Vec<String>) {
    let mut pairs = Vec::new();
    if let Some(query) = query {
        pairs.extend(parse_form(query.as_bytes()).unwrap_or_default());
    }
    pairs.extend(parse_form(body).unwrap_or_default());
    pairs.extend(json_to_pairs(body).unwrap_or_default());
    let mut names: Vec<String> = pairs.iter().map(|(name, _)| name.clone()).collect();
    // longest first, so a name inside another is not taken out first
    names.sort_by_key(|name| std::cmp::Reverse(name.len()));
    let mut out: Vec<String> = pairs
        .into_iter()
        .filter(|(key, value)| (key == "key" || key == "password") && value.len() >= 8)
        .map(|(_, value)| value)
        .collect();
    // the key data inside an imported key file
    for value in out.clone() {
        if let Some(data) = serde_json::from_str::<Value>(&value)
            .ok()
            .and_then(|v| v.get("data").and_then(Value::as_str).map(str::to_string))
            .filter(|data| data.len() >= 12)
        {
            out.push(data);
        }
    }
    (out, names)
}
