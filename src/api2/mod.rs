//! The API: one module per path below `/api2/json`, and [`ROUTER`], the
//! tree the daemon serves.
//!
//! Each module keeps a route's facts in one place: a plain function over
//! the library (no HTTP, no privilege checks; the CLI calls it as the
//! administrator) and beside it the route's `API_METHOD_*` (parameter
//! schema, return schema, permission, a thin handler), then the module's
//! `ROUTER`. The server walks this tree: it finds the method (404, 405),
//! authenticates unless the method is open to the world, parses the
//! parameters with the method's schema, checks its permission and calls
//! its handler. A method that states no permission is for the superuser
//! only. `docs/api.md` lists the routes; `tests/router_tree.rs` checks that
//! list, and the authentication and privilege refusals of every method,
//! against the tree, and the secrets audit calls every route.

use anyhow::Error;
use serde_json::Value;

use proxmox_router::{Router, SubdirMap};
use proxmox_schema::{ObjectSchema, Schema, param_bail, param_format_err};

use pbs_api_types::PROXMOX_CONFIG_DIGEST_SCHEMA;

/// A route's handler, for [`ApiMethod::new`](proxmox_router::ApiMethod::new):
/// `handler!(Sync, |param, env| answer)` or
/// `handler!(SerializingSync, |param, env| answer)`. The answer is an expression over the request's checked
/// parameters (`param`, a [`Value`]) and its
/// [`RestEnvironment`](crate::server::environment::RestEnvironment) (`env`),
/// in which `?` answers an error. A `Sync` handler answers a [`Value`]; a
/// `SerializingSync` one anything serializable, written straight into the
/// response. A handler that needs more of the request (a result attribute
/// such as the digest, the authentication of a login) is written out as a
/// function. Declared before the route modules, which see it by its name.
macro_rules! handler {
    (Sync, |$param:pat_param, $env:pat_param| $answer:expr) => {{
        fn handler(
            param: ::serde_json::Value,
            _method: &::proxmox_router::ApiMethod,
            rpcenv: &mut dyn ::proxmox_router::RpcEnvironment,
        ) -> Result<::serde_json::Value, ::anyhow::Error> {
            let $param = param;
            let $env = $crate::server::environment::RestEnvironment::of(rpcenv)?;
            Ok($answer)
        }
        &::proxmox_router::ApiHandler::Sync(&handler)
    }};
    (SerializingSync, |$param:pat_param, $env:pat_param| $answer:expr) => {{
        fn handler(
            param: ::serde_json::Value,
            _method: &::proxmox_router::ApiMethod,
            rpcenv: &mut dyn ::proxmox_router::RpcEnvironment,
        ) -> Result<Box<dyn ::proxmox_router::SerializableReturn + Send>, ::anyhow::Error> {
            let $param = param;
            let $env = $crate::server::environment::RestEnvironment::of(rpcenv)?;
            Ok(Box::new($answer))
        }
        &::proxmox_router::ApiHandler::SerializingSync(&handler)
    }};
}

pub mod access;
pub mod config;
pub mod version;

const SUBDIRS: SubdirMap = &[
    ("access", &access::ROUTER),
    ("config", &config::ROUTER),
    ("version", &version::ROUTER),
];

/// The routes below `/api2/json`.
pub const ROUTER: Router = Router::new().subdirs(SUBDIRS);

/// Parameters that carry secrets (passphrases, passwords, the master key)
/// or key material (a key file, a bundle): the server takes them from the
/// request body only and refuses them in the URL, whose query string
/// proxies, browsers and shell histories keep. Upstream merges the query
/// string into a form body's parameters, so it takes a login's `password`
/// from the URL too; here that is a 400.
pub const BODY_ONLY_PARAMETERS: &[&str] = &[
    "bundle",
    "key",
    "key-passphrase",
    "master-key",
    "master-passphrase",
    "passphrase",
    "password",
];

/// The schema of an answer that is an object described in words (the Rust
/// type it serializes names its fields): an object schema without
/// property list that allows any property.
pub(crate) const fn described_object(description: &'static str) -> Schema {
    ObjectSchema::new(description, &[])
        .additional_properties(true)
        .schema()
}

/// A string parameter, if given (the schema has checked it).
pub(crate) fn param_str<'a>(param: &'a Value, name: &str) -> Option<&'a str> {
    param[name].as_str()
}

/// A string parameter the schema requires.
pub(crate) fn required_str<'a>(param: &'a Value, name: &str) -> Result<&'a str, Error> {
    match param_str(param, name) {
        Some(value) => Ok(value),
        None => param_bail!(name, "parameter is missing"),
    }
}

/// The `digest` parameter, if given, checked against its schema and
/// parsed (the bytes a config file's digest is compared with).
pub(crate) fn parse_digest(digest: Option<&str>) -> Result<Option<[u8; 32]>, Error> {
    digest
        .map(|digest| {
            PROXMOX_CONFIG_DIGEST_SCHEMA
                .parse_simple_value(digest)
                .map_err(|err| param_format_err!("digest", "{err}"))?;
            pbs_config::parse_digest(digest).map_err(|err| param_format_err!("digest", "{err}"))
        })
        .transpose()
}

/// The strings of an array parameter (a single string counts as one).
pub(crate) fn param_list(param: &Value, name: &str) -> Vec<String> {
    match &param[name] {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_string))
            .collect(),
        Value::String(item) => vec![item.clone()],
        _ => Vec::new(),
    }
}

/// Test helpers shared by the handler modules.
#[cfg(test)]
pub(crate) mod test_util {
    use anyhow::Error;

    use pbs_config::ConfigDir;
    use proxmox_schema::ParameterError;

    /// A config dir in a fresh temporary directory, removed when the
    /// returned guard is dropped.
    pub fn temp_config_dir() -> (tempfile::TempDir, ConfigDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path()).unwrap();
        (tmp, dir)
    }

    /// The parameter names a handler error blames.
    pub fn param_names(err: &Error) -> Vec<String> {
        err.chain()
            .find_map(|e| e.downcast_ref::<ParameterError>())
            .map(|p| p.names().map(str::to_string).collect())
            .unwrap_or_default()
    }
}
