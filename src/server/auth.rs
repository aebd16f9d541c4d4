//! Who is asking: API tokens and tickets, as upstream's REST server reads
//! them.
//!
//! - `Authorization: PBSAPIToken=USER@REALM!NAME:SECRET` (or with a space
//!   instead of `=`); the secret may be percent-encoded. It is checked
//!   against its `crypt(3)` hash in `token.shadow` (constant time). A
//!   verified secret is remembered as a salted SHA-256 together with the
//!   hash it matched, so later requests cost no hash; changing or deleting
//!   the token's secret invalidates that at once.
//! - `Cookie: PBSAuthCookie=TICKET` (percent-encoded or not); every request
//!   other than GET must then carry the `CSRFPreventionToken` header issued
//!   with the ticket. A ticket cookie wins over an Authorization header, as
//!   upstream.
//!
//! The secret is checked before the token's enable/expire state, so only a
//! holder of the secret learns that a token is disabled. An unknown token
//! id gets the answers a wrong secret gets, throttling included, after a
//! check against a dummy hash, so neither the answer nor its time tells
//! which token ids exist. Failure messages never quote a secret, ticket or
//! token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use anyhow::Error;
use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, COOKIE};

use pbs_api_types::Authid;
use pbs_config::ConfigDir;
use pbs_config::cached_user_info::CachedUserInfo;

use crate::auth_helpers::AuthKeys;
use crate::http_err;
use crate::server::params::percent_decode;
use crate::server::throttle::{HashLimiter, LoginThrottle};

/// The ticket cookie.
pub const AUTH_COOKIE_NAME: &str = "PBSAuthCookie";
/// The CSRF header.
pub const CSRF_HEADER_NAME: &str = "CSRFPreventionToken";

/// Credentials found in a request.
pub enum AuthData {
    /// A ticket from the cookie, and the CSRF header if present.
    Ticket {
        /// The ticket.
        ticket: String,
        /// The `CSRFPreventionToken` header.
        csrf_token: Option<String>,
    },
    /// An API token: its id and secret.
    ApiToken {
        /// The token id.
        tokenid: Authid,
        /// The secret.
        secret: String,
    },
}

impl std::fmt::Debug for AuthData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthData::Ticket { .. } => write!(f, "AuthData::Ticket(<redacted>)"),
            AuthData::ApiToken { tokenid, .. } => {
                write!(f, "AuthData::ApiToken({tokenid}, <redacted>)")
            }
        }
    }
}

/// A failed authentication: 401, or 429 when throttled. `log` says why, for
/// the server's log; `auth_id` is the claimed id if it was well-formed.
#[derive(Debug)]
pub struct AuthFailure {
    /// The error to answer with.
    pub error: Error,
    /// The claimed auth id, if any.
    pub auth_id: Option<Authid>,
    /// Why, for the log (never a secret).
    pub log: String,
}

fn failure(auth_id: Option<Authid>, public: &str, log: impl Into<String>) -> AuthFailure {
    AuthFailure {
        error: http_err!(UNAUTHORIZED, "authentication failed - {public}"),
        auth_id,
        log: log.into(),
    }
}

fn cookie_value(header: &str, name: &str) -> Option<String> {
    for pair in header.split(';') {
        if let Some(value) = pair
            .trim()
            .strip_prefix(name)
            .and_then(|v| v.strip_prefix('='))
        {
            return String::from_utf8(percent_decode(value.as_bytes(), false)).ok();
        }
    }
    None
}

const TOKEN_FORMAT: &str = "expected 'PBSAPIToken=USER@REALM!TOKENNAME:SECRET'";

/// Finds the credentials of a request; `Ok(None)` if it has none.
pub fn extract_auth_data(headers: &HeaderMap) -> Result<Option<AuthData>, AuthFailure> {
    for cookie in headers.get_all(COOKIE) {
        let Ok(cookie) = cookie.to_str() else {
            continue;
        };
        if let Some(ticket) = cookie_value(cookie, AUTH_COOKIE_NAME) {
            let csrf_token = headers
                .get(CSRF_HEADER_NAME)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            return Ok(Some(AuthData::Ticket { ticket, csrf_token }));
        }
    }
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = |log: &str| {
        failure(
            None,
            &format!("malformed Authorization header - {TOKEN_FORMAT}"),
            log,
        )
    };
    let value = value
        .to_str()
        .map_err(|_| malformed("Authorization header is not ASCII"))?;
    let rest = value
        .strip_prefix("PBSAPIToken=")
        .or_else(|| value.strip_prefix("PBSAPIToken "))
        .ok_or_else(|| malformed("unsupported authorization scheme"))?;
    let (tokenid, secret) = rest
        .split_once(':')
        .ok_or_else(|| malformed("no ':' between token id and secret"))?;
    let tokenid: Authid = tokenid
        .trim()
        .parse()
        .map_err(|_| malformed("malformed token id"))?;
    if !tokenid.is_token() {
        return Err(malformed("auth id is not a token id"));
    }
    let secret = String::from_utf8(percent_decode(secret.trim().as_bytes(), false))
        .map_err(|_| malformed("secret is not UTF-8"))?;
    if secret.is_empty() || secret.len() > 256 {
        return Err(malformed("secret empty or too long"));
    }
    Ok(Some(AuthData::ApiToken { tokenid, secret }))
}

/// Verified token secrets: token id → (the hash it matched, salted SHA-256
/// of the secret).
pub struct TokenSecretCache {
    salt: [u8; 32],
    entries: Mutex<HashMap<String, (String, [u8; 32])>>,
}

/// Most verified secrets remembered.
const MAX_CACHED_SECRETS: usize = 4096;

impl TokenSecretCache {
    /// An empty cache with a fresh random salt.
    pub fn new() -> Result<Self, Error> {
        Ok(Self {
            salt: proxmox_sys::linux::random_data()?,
            entries: Mutex::new(HashMap::new()),
        })
    }

    fn digest(&self, secret: &str) -> [u8; 32] {
        let mut hasher = openssl::sha::Sha256::new();
        hasher.update(&self.salt);
        hasher.update(secret.as_bytes());
        hasher.finish()
    }

    fn matches(&self, tokenid: &str, hash: &str, secret: &str) -> bool {
        let digest = self.digest(secret);
        match self.entries.lock().unwrap().get(tokenid) {
            Some((cached_hash, cached)) => {
                cached_hash == hash && openssl::memcmp::eq(cached, &digest)
            }
            None => false,
        }
    }

    fn insert(&self, tokenid: &str, hash: &str, secret: &str) {
        let digest = self.digest(secret);
        let mut entries = self.entries.lock().unwrap();
        if entries.len() >= MAX_CACHED_SECRETS {
            entries.clear();
        }
        entries.insert(tokenid.to_string(), (hash.to_string(), digest));
    }
}

/// What authentication needs from the server.
pub struct AuthContext<'a> {
    /// The config dir.
    pub dir: &'a std::sync::Arc<ConfigDir>,
    /// Ticket and CSRF keys.
    pub keys: &'a AuthKeys,
    /// Verified token secrets.
    pub token_cache: &'a TokenSecretCache,
    /// Bounds hash work.
    pub hash_limiter: &'a HashLimiter,
    /// Throttles failing clients.
    pub throttle: &'a LoginThrottle,
}

/// Checks credentials; returns the authenticated id.
pub async fn authenticate(
    ctx: &AuthContext<'_>,
    peer: IpAddr,
    data: AuthData,
    method_is_safe: bool,
) -> Result<Authid, AuthFailure> {
    match data {
        AuthData::Ticket { ticket, csrf_token } => {
            let userid = ctx
                .keys
                .verify_ticket(&ticket)
                .map_err(|err| failure(None, "invalid ticket", format!("{err}")))?;
            let auth_id = Authid::from(userid.clone());
            if !method_is_safe {
                let Some(csrf_token) = csrf_token else {
                    return Err(failure(
                        Some(auth_id),
                        "missing CSRFPreventionToken header",
                        "missing CSRF prevention token",
                    ));
                };
                ctx.keys
                    .verify_csrf_prevention_token(&userid, &csrf_token)
                    .map_err(|err| {
                        failure(
                            Some(auth_id.clone()),
                            "invalid CSRF prevention token",
                            format!("{err}"),
                        )
                    })?;
            }
            active(ctx.dir, auth_id, "user account disabled or expired").await
        }
        AuthData::ApiToken { tokenid, secret } => {
            verify_token(ctx, peer, &tokenid, &secret).await?;
            active(
                ctx.dir,
                tokenid,
                "user account or token disabled or expired",
            )
            .await
        }
    }
}

/// `auth_id` if its account (and token) is enabled and not expired; else
/// the failure `refused` names.
async fn active(
    dir: &std::sync::Arc<ConfigDir>,
    auth_id: Authid,
    refused: &str,
) -> Result<Authid, AuthFailure> {
    let info = user_info(dir, &auth_id).await?;
    if !info.is_active_auth_id(&auth_id) {
        return Err(failure(Some(auth_id), refused, refused));
    }
    Ok(auth_id)
}

async fn user_info(
    dir: &std::sync::Arc<ConfigDir>,
    auth_id: &Authid,
) -> Result<CachedUserInfo, AuthFailure> {
    let dir = std::sync::Arc::clone(dir);
    let result = tokio::task::spawn_blocking(move || CachedUserInfo::new(&dir)).await;
    match result {
        Ok(Ok(info)) => Ok(info),
        Ok(Err(err)) => Err(AuthFailure {
            log: format!("unable to read user config - {err}"),
            error: err,
            auth_id: Some(auth_id.clone()),
        }),
        Err(err) => Err(AuthFailure {
            error: http_err!(INTERNAL_SERVER_ERROR, "internal error - {err}"),
            auth_id: Some(auth_id.clone()),
            log: "internal error".to_string(),
        }),
    }
}

async fn verify_token(
    ctx: &AuthContext<'_>,
    peer: IpAddr,
    tokenid: &Authid,
    secret: &str,
) -> Result<(), AuthFailure> {
    let id = tokenid.to_string();
    let dir = std::sync::Arc::clone(ctx.dir);
    let lookup = tokenid.clone();
    let hash = tokio::task::spawn_blocking(move || dir.token_shadow().hash_of(&lookup))
        .await
        .map_err(|err| failure(Some(tokenid.clone()), "internal error", format!("{err}")))?
        .map_err(|err| AuthFailure {
            log: format!("unable to read token secrets - {err}"),
            error: err,
            auth_id: Some(tokenid.clone()),
        })?;
    // an unknown token takes the same way as a wrong secret (throttled
    // alike, a dummy hash checked), so its answer and its time do not tell
    // that it does not exist
    if let Some(hash) = &hash
        && ctx.token_cache.matches(&id, hash, secret)
    {
        return Ok(());
    }
    if let Err(wait) = ctx.throttle.check(peer, &id) {
        return Err(throttled(Some(tokenid.clone()), wait));
    }
    let ok = {
        let _slot = ctx.hash_limiter.acquire().await;
        let (hash, secret) = (hash.clone(), secret.to_string());
        tokio::task::spawn_blocking(move || {
            pbs_config::shadow::verify_or_dummy(hash.as_deref(), &secret)
        })
        .await
        .unwrap_or(false)
    };
    match hash {
        Some(hash) if ok => {
            ctx.throttle.success(peer, &id);
            ctx.token_cache.insert(&id, &hash, secret);
            Ok(())
        }
        _ => {
            ctx.throttle.failure(peer, &id);
            let why = match hash {
                Some(_) => "wrong API token secret",
                None => "unknown API token",
            };
            Err(failure(Some(tokenid.clone()), "invalid credentials", why))
        }
    }
}

/// The 429 answer for a throttled client.
pub fn throttled(auth_id: Option<Authid>, wait: std::time::Duration) -> AuthFailure {
    let secs = wait.as_secs() + 1;
    AuthFailure {
        error: http_err!(
            TOO_MANY_REQUESTS,
            "too many failed authentication attempts - try again in {secs} seconds"
        ),
        auth_id,
        log: "throttled after repeated failures".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use hyper::header::HeaderValue;

    use super::*;

    fn headers(list: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in list {
            map.append(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn token_header_both_separators_and_percent_encoding() {
        for value in [
            &b"PBSAPIToken=alice@pbs!t1:s%3Acret"[..],
            b"PBSAPIToken alice@pbs!t1:s:cret",
        ] {
            match extract_auth_data(&headers(&[("authorization", value)])).unwrap() {
                Some(AuthData::ApiToken { tokenid, secret }) => {
                    assert_eq!(tokenid.to_string(), "alice@pbs!t1");
                    assert_eq!(secret, "s:cret");
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(extract_auth_data(&headers(&[])).unwrap().is_none());
    }

    #[test]
    fn malformed_token_headers_are_refused_without_echo() {
        for value in [
            &b"Basic YWxpY2U6eA=="[..],
            b"PBSAPIToken=alice@pbs!t1",
            b"PBSAPIToken=alice@pbs:secretvalue",
            b"PBSAPIToken=!!:secretvalue",
            b"PBSAPIToken=alice@pbs!t1:",
            b"PBSAPIToken=alice@pbs!t1:%ff%fe",
            b"PBSAPIToken=alice@pbs!t1:\xff",
        ] {
            let err = extract_auth_data(&headers(&[("authorization", value)])).unwrap_err();
            let text = err.error.to_string();
            assert!(
                text.starts_with("authentication failed - malformed"),
                "{text}"
            );
            assert!(!text.contains("secretvalue"), "{text}");
        }
    }

    #[test]
    fn ticket_cookie_wins_and_is_percent_decoded() {
        let map = headers(&[
            ("cookie", b"a=b; PBSAuthCookie=PBS%3Aalice%40pbs%3A1::x"),
            ("authorization", b"PBSAPIToken=alice@pbs!t1:x"),
            ("csrfpreventiontoken", b"tok"),
        ]);
        match extract_auth_data(&map).unwrap() {
            Some(AuthData::Ticket { ticket, csrf_token }) => {
                assert_eq!(ticket, "PBS:alice@pbs:1::x");
                assert_eq!(csrf_token.as_deref(), Some("tok"));
            }
            other => panic!("{other:?}"),
        }
    }
}
