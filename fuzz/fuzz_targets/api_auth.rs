//! The API's credentials: `Authorization` (API token), `Cookie` (ticket)
//! and `CSRFPreventionToken` headers (`extract_auth_data`), then the ticket
//! and CSRF checks (`AuthKeys::verify_ticket`,
//! `verify_csrf_prevention_token`) with a key pair made for the run.
//!
//! Input: `AUTHORIZATION\nCOOKIE\nCSRF`, each an HTTP header value (an
//! empty line: no such header). Besides "no panic", it checks:
//! - a refusal and its log line never repeat the secret (the part after the
//!   token id) or the cookie's ticket: where one appears in the text, the
//!   same request with it overwritten must still show it (it is then text
//!   of the message itself, not a repeat);
//! - an accepted token is a token id (`USER@REALM!NAME`) with a secret of
//!   1 to 256 bytes, and `Debug` of the credentials does not depend on the
//!   secret or the ticket;
//! - no fuzzed ticket or CSRF token verifies (nobody can forge one without
//!   the key), and a refusal names no part of them; a ticket made with the
//!   key, with the fuzzed text as the user id, verifies exactly when the
//!   text is a valid user id.

#![no_main]

use std::sync::LazyLock;

use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, COOKIE, HeaderValue};
use libfuzzer_sys::fuzz_target;

use pbs_api_types::Userid;
use pbs_config::{ConfigDir, Ownership};
use pbs_keystore::auth_helpers::AuthKeys;
use pbs_keystore::server::auth::{AuthData, CSRF_HEADER_NAME, extract_auth_data};

/// Keys in a temp dir made once per fuzzing process.
static KEYS: LazyLock<AuthKeys> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("pbs-fuzz-authkeys-{}", std::process::id()));
    let config =
        ConfigDir::with_ownership(&dir, Ownership::current_user().expect("ownership")).unwrap();
    let keys = AuthKeys::load_or_generate(&config).expect("auth keys");
    let _ = std::fs::remove_dir_all(&dir);
    keys
});

static ALICE: LazyLock<Userid> = LazyLock::new(|| "alice@pbs".parse().unwrap());

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(3, |b| *b == b'\n');
    let authorization = lines.next().unwrap_or(b"");
    let cookie = lines.next().unwrap_or(b"");
    let csrf = lines.next().unwrap_or(b"");

    let headers = header_map(authorization, cookie, csrf);
    // what must never be repeated: the token secret and the cookie text
    let mut secrets: Vec<String> = Vec::new();
    if let Some((_, secret)) = std::str::from_utf8(authorization)
        .ok()
        .and_then(|a| a.split_once(':'))
    {
        secrets.push(secret.trim().to_string());
    }
    if let Ok(cookie) = std::str::from_utf8(cookie) {
        secrets.extend(
            cookie
                .split(';')
                .filter_map(|p| p.split_once('='))
                .map(|(_, v)| v.to_string()),
        );
    }
    secrets.retain(|s| s.len() >= 8);

    match extract_auth_data(&headers) {
        Ok(None) => {}
        Ok(Some(auth)) => {
            let debug = format!("{auth:?}");
            match &auth {
                AuthData::ApiToken { tokenid, secret } => {
                    assert!(tokenid.is_token(), "not a token id: {tokenid}");
                    assert!(!secret.is_empty() && secret.len() <= 256);
                    let other = AuthData::ApiToken {
                        tokenid: tokenid.clone(),
                        secret: "Z".repeat(secret.len()),
                    };
                    assert_eq!(debug, format!("{other:?}"), "Debug shows the secret");
                }
                AuthData::Ticket { ticket, csrf_token } => {
                    let other = AuthData::Ticket {
                        ticket: "Z".repeat(ticket.len()),
                        csrf_token: csrf_token.clone(),
                    };
                    assert_eq!(debug, format!("{other:?}"), "Debug shows the ticket");
                    check_ticket(ticket);
                    if let Some(token) = csrf_token {
                        assert!(
                            KEYS.verify_csrf_prevention_token(&ALICE, token).is_err(),
                            "a fuzzed CSRF token verified"
                        );
                    }
                }
            }
        }
        Err(failure) => {
            let text = failure_text(&failure);
            for secret in secrets
                .iter()
                .filter(|secret| text.contains(secret.as_str()))
            {
                // a repeat only if the text follows the secret: with the
                // secret's bytes replaced, the refusal must no longer say it
                let other = header_map(
                    &replaced(authorization, secret.as_bytes()),
                    &replaced(cookie, secret.as_bytes()),
                    csrf,
                );
                let again = match extract_auth_data(&other) {
                    Err(failure) => failure_text(&failure),
                    Ok(_) => String::new(),
                };
                assert!(
                    again.contains(secret.as_str()),
                    "refusal repeats a secret: {text}"
                );
            }
        }
    }
});

fn check_ticket(ticket: &str) {
    match KEYS.verify_ticket(ticket) {
        Ok(userid) => panic!("a fuzzed ticket verified for {userid}"),
        Err(err) => {
            let text = err.to_string();
            if ticket.len() >= 8 && text.contains(ticket) {
                // only a repeat if it follows the ticket
                let other = "Z".repeat(ticket.len());
                let again = KEYS
                    .verify_ticket(&other)
                    .err()
                    .map(|err| err.to_string())
                    .unwrap_or_default();
                assert!(again.contains(ticket), "refusal repeats the ticket: {text}");
            }
        }
    }
    // a real ticket for whatever user id the fuzzer wrote between the colons
    if let Some(user) = ticket.split(':').nth(1)
        && let Ok(userid) = user.parse::<Userid>()
    {
        let real = KEYS.create_ticket(&userid).expect("create ticket");
        let verified = KEYS.verify_ticket(&real).expect("own ticket verifies");
        assert_eq!(verified, userid);
        let csrf = KEYS
            .assemble_csrf_prevention_token(&userid)
            .expect("csrf token");
        KEYS.verify_csrf_prevention_token(&userid, &csrf)
            .expect("own CSRF token verifies");
    }
}

fn header_map(authorization: &[u8], cookie: &[u8], csrf: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        (AUTHORIZATION, authorization),
        (COOKIE, cookie),
        (CSRF_HEADER_NAME.parse().unwrap(), csrf),
    ] {
        if !value.is_empty()
            && let Ok(value) = HeaderValue::from_bytes(value)
        {
            headers.insert(name, value);
        }
    }
    headers
}

fn failure_text(failure: &pbs_keystore::server::auth::AuthFailure) -> String {
    format!("{:#} {} {:?}", failure.error, failure.log, failure.auth_id)
}

/// `data` with every occurrence of `needle` overwritten by `Z`s.
fn replaced(data: &[u8], needle: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut i = 0;
    while !needle.is_empty() && i + needle.len() <= out.len() {
        if &out[i..i + needle.len()] == needle {
            out[i..i + needle.len()].fill(b'Z');
            i += needle.len();
        } else {
            i += 1;
        }
    }
    out
}
