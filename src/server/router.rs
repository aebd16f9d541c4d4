//! The routes below `/api2/json`, their parameter schemas and privilege
//! checks.
//!
//! | method path | privilege |
//! |---|---|
//! | GET `/version` | any authenticated user |
//! | POST `/access/ticket` | none (this is the login) |
//! | GET `/config/encryption-keys` | list filtered per key by Sys.Audit on `/system/encryption-keys/{id}` |
//! | POST `/config/encryption-keys` | Sys.Modify on `/system/encryption-keys` |
//! | GET `/config/encryption-keys/{id}` | Sys.Audit on `/system/encryption-keys/{id}` (beyond upstream) |
//! | POST `/config/encryption-keys/{id}` | Sys.Modify on `/system/encryption-keys/{id}` |
//! | DELETE `/config/encryption-keys/{id}` | Sys.Modify on `/system/encryption-keys/{id}` |
//! | GET `/config/encryption-keys/{id}/verify` | Sys.Audit on `/system/encryption-keys/{id}` (beyond upstream) |

use anyhow::Error;
use hyper::Method;
use serde::Serialize;
use serde_json::Value;

use proxmox_schema::ObjectSchema;

use pbs_api_types::{Authid, PRIV_SYS_AUDIT, PRIV_SYS_MODIFY};
use pbs_config::ConfigDir;
use pbs_config::cached_user_info::CachedUserInfo;

use crate::api2::access::ticket::API_METHOD_CREATE_TICKET_PARAMETERS;
use crate::api2::config::encryption_keys::{
    self, API_METHOD_CREATE_KEY_PARAMETERS, API_METHOD_KEY_ID_DIGEST_PARAMETERS,
    API_METHOD_LIST_KEYS_PARAMETERS, API_METHOD_SHOW_KEY_PARAMETERS,
};
use crate::{http_bail, http_err};

/// The base path of every route.
pub const API_BASE: &str = "/api2/json";

/// The ACL path of the key store.
pub const KEYS_ACL_PATH: &str = "/system/encryption-keys";

/// No parameters.
pub const NO_PARAMETERS: ObjectSchema = ObjectSchema::new("No parameters.", &[]);

/// A matched route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// GET `/version`.
    Version,
    /// POST `/access/ticket`.
    CreateTicket,
    /// GET `/config/encryption-keys`.
    ListKeys,
    /// POST `/config/encryption-keys`.
    CreateKey,
    /// GET `/config/encryption-keys/{id}`.
    ShowKey,
    /// POST `/config/encryption-keys/{id}`.
    ToggleKey,
    /// DELETE `/config/encryption-keys/{id}`.
    DeleteKey,
    /// GET `/config/encryption-keys/{id}/verify`.
    VerifyKey,
}

impl Route {
    /// The parameter schema (path parameters included).
    pub fn schema(self) -> &'static ObjectSchema {
        match self {
            Route::Version => &NO_PARAMETERS,
            Route::CreateTicket => &API_METHOD_CREATE_TICKET_PARAMETERS,
            Route::ListKeys => &API_METHOD_LIST_KEYS_PARAMETERS,
            Route::CreateKey => &API_METHOD_CREATE_KEY_PARAMETERS,
            Route::ShowKey | Route::VerifyKey => &API_METHOD_SHOW_KEY_PARAMETERS,
            Route::ToggleKey | Route::DeleteKey => &API_METHOD_KEY_ID_DIGEST_PARAMETERS,
        }
    }

    /// Whether the route needs no authentication.
    pub fn is_public(self) -> bool {
        self == Route::CreateTicket
    }
}

/// Finds the route of `method` and `path` (raw, percent-encoded); returns it
/// with the path parameters (raw, still percent-encoded).
///
/// # Errors
///
/// 404 for an unknown path, 405 for a known path with another method.
pub fn find_route(method: &Method, path: &str) -> Result<(Route, Option<String>), Error> {
    let Some(rest) = path.strip_prefix(API_BASE) else {
        http_bail!(NOT_FOUND, "no such path - the API is below {API_BASE}/");
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segments: Vec<&str> = rest.split('/').skip(1).collect();
    if !rest.starts_with('/') || segments.iter().any(|s| s.is_empty()) {
        http_bail!(NOT_FOUND, "no such path");
    }
    let (allowed, id): (&[(Method, Route)], Option<&str>) = match segments.as_slice() {
        ["version"] => (&[(Method::GET, Route::Version)], None),
        ["access", "ticket"] => (&[(Method::POST, Route::CreateTicket)], None),
        ["config", "encryption-keys"] => (
            &[
                (Method::GET, Route::ListKeys),
                (Method::POST, Route::CreateKey),
            ],
            None,
        ),
        ["config", "encryption-keys", id] => (
            &[
                (Method::GET, Route::ShowKey),
                (Method::POST, Route::ToggleKey),
                // PUT too: PBS clients update a config item with PUT
                (Method::PUT, Route::ToggleKey),
                (Method::DELETE, Route::DeleteKey),
            ],
            Some(*id),
        ),
        ["config", "encryption-keys", id, "verify"] => {
            (&[(Method::GET, Route::VerifyKey)], Some(*id))
        }
        _ => http_bail!(NOT_FOUND, "no such path"),
    };
    match allowed.iter().find(|(m, _)| m == method) {
        Some((_, route)) => Ok((*route, id.map(str::to_string))),
        None => {
            let names: Vec<&str> = allowed.iter().map(|(m, _)| m.as_str()).collect();
            Err(http_err!(
                METHOD_NOT_ALLOWED,
                "method {method} not allowed on this path (allowed: {})",
                names.join(", ")
            ))
        }
    }
}

/// A successful answer: the response body `{"data": DATA}`, plus
/// `"digest"` where upstream has it.
///
/// The body is serialized once, straight from the handler's value: a list
/// of 100,000 keys is about 28 MB of JSON, and built as a tree of
/// `serde_json::Value`s (copied once more into the body object) it took
/// the daemon's peak memory to about 600 MiB (docs/performance.md).
pub struct Reply {
    body: Vec<u8>,
}

impl Reply {
    /// A reply with `data` and no digest.
    pub fn data<T: Serialize>(data: T) -> Result<Self, Error> {
        Self::with_digest(data, None)
    }

    /// A reply with `data` and, if given, the config digest.
    pub fn with_digest<T: Serialize>(data: T, digest: Option<&str>) -> Result<Self, Error> {
        #[derive(Serialize)]
        struct Body<'a, T> {
            data: T,
            #[serde(skip_serializing_if = "Option::is_none")]
            digest: Option<&'a str>,
        }
        Ok(Self {
            body: serde_json::to_vec(&Body { data, digest })?,
        })
    }

    /// The response body.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

fn key_acl_path(id: &str) -> String {
    format!("{KEYS_ACL_PATH}/{id}")
}

fn param_str<'a>(params: &'a Value, name: &str) -> Option<&'a str> {
    params[name].as_str()
}

/// Runs an authenticated route (blocking: file IO and locks). The ticket
/// route is handled by the server itself.
pub fn dispatch(
    dir: &ConfigDir,
    auth_id: &Authid,
    route: Route,
    params: &Value,
) -> Result<Reply, Error> {
    let info = CachedUserInfo::new(dir)?;
    let id = param_str(params, "id").unwrap_or_default();
    let digest = param_str(params, "digest");
    match route {
        Route::Version => Reply::data(crate::api2::version::version()),
        Route::ListKeys => {
            let include_archived = params["include-archived"].as_bool().unwrap_or(false);
            // borrowed from the cached index: no copy of every entry
            let (index, digest) = dir.encryption_keys().index()?;
            let list = encryption_keys::visible_keys(&index, include_archived, |id| {
                info.check_privs(auth_id, &key_acl_path(id), PRIV_SYS_AUDIT)
                    .is_ok()
            })?;
            Reply::with_digest(list, Some(&hex::encode(digest)))
        }
        Route::CreateKey => {
            info.check_privs(auth_id, KEYS_ACL_PATH, PRIV_SYS_MODIFY)?;
            let key = param_str(params, "key");
            // the one answer that carries key material: the caller backs it up
            Reply::data(encryption_keys::create_key(dir, id, key)?)
        }
        Route::ShowKey => {
            info.check_privs(auth_id, &key_acl_path(id), PRIV_SYS_AUDIT)?;
            Reply::data(encryption_keys::show_key(dir, id)?)
        }
        Route::ToggleKey => {
            info.check_privs(auth_id, &key_acl_path(id), PRIV_SYS_MODIFY)?;
            encryption_keys::toggle_key_archive_state(dir, id, digest)?;
            Reply::data(Value::Null)
        }
        Route::DeleteKey => {
            info.check_privs(auth_id, &key_acl_path(id), PRIV_SYS_MODIFY)?;
            encryption_keys::delete_key(dir, id, digest)?;
            Reply::data(Value::Null)
        }
        Route::VerifyKey => {
            info.check_privs(auth_id, &key_acl_path(id), PRIV_SYS_AUDIT)?;
            Reply::data(encryption_keys::verify_key(dir, id)?)
        }
        Route::CreateTicket => http_bail!(INTERNAL_SERVER_ERROR, "internal error - ticket route"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_body_is_the_json_object_of_data_and_digest() {
        let list = serde_json::json!([{"id": "k1", "kdf": "none"}, {"id": "k\"2"}]);
        let body = |reply: Reply| -> Value { serde_json::from_slice(&reply.into_body()).unwrap() };
        assert_eq!(
            body(Reply::data(&list).unwrap()),
            serde_json::json!({"data": list})
        );
        let digest = "ab".repeat(32);
        assert_eq!(
            body(Reply::with_digest(&list, Some(&digest)).unwrap()),
            serde_json::json!({"data": list, "digest": digest})
        );
        assert_eq!(
            Reply::data(Value::Null).unwrap().into_body(),
            br#"{"data":null}"#
        );
    }

    #[test]
    fn routes_and_methods() {
        let find = |m: Method, p: &str| find_route(&m, p);
        assert_eq!(
            find(Method::GET, "/api2/json/config/encryption-keys").unwrap(),
            (Route::ListKeys, None)
        );
        assert_eq!(
            find(Method::DELETE, "/api2/json/config/encryption-keys/k1/").unwrap(),
            (Route::DeleteKey, Some("k1".into()))
        );
        assert_eq!(
            find(Method::GET, "/api2/json/config/encryption-keys/k1/verify")
                .unwrap()
                .0,
            Route::VerifyKey
        );
        for method in [Method::POST, Method::PUT] {
            assert_eq!(
                find(method, "/api2/json/config/encryption-keys/k1").unwrap(),
                (Route::ToggleKey, Some("k1".into()))
            );
        }
        let status = |r: Result<_, Error>| crate::server::error::status_of(&r.unwrap_err());
        assert_eq!(status(find(Method::PUT, "/api2/json/version")), 405);
        assert_eq!(status(find(Method::GET, "/api2/json/nope")), 404);
        assert_eq!(status(find(Method::GET, "/api2/json//version")), 404);
        assert_eq!(status(find(Method::GET, "/version")), 404);
        assert_eq!(status(find(Method::GET, "/api2/jsonx/version")), 404);
    }
}
