//! Finding a request's API method in the router tree
//! ([`crate::api2::ROUTER`], served below [`API_BASE`]).
//!
//! The routes, their parameters and permissions are declared beside their
//! handlers in `src/api2/`; `docs/api.md` lists them (checked against the
//! tree by `tests/router_tree.rs`). A path the tree does not have, or a
//! router without methods (a directory such as `/config`), is 404; a path
//! with other methods than the request's is 405, naming the methods it has
//! ([`MethodNotAllowed`], which also gives the `Allow` header).

use std::collections::HashMap;

use anyhow::Error;
use hyper::{Method, StatusCode};

use proxmox_router::{ApiMethod, Endpoint};

use crate::http_bail;

/// The base path of every route.
pub const API_BASE: &str = "/api2/json";

/// A request's method, found in the tree.
#[derive(Debug)]
pub struct FoundMethod {
    /// The API method.
    pub api_method: &'static ApiMethod,
    /// The path parameters (`{id}`), raw: still percent-encoded.
    pub uri_param: HashMap<String, String>,
}

/// A known path asked with a method it does not have: 405.
#[derive(Debug, Clone)]
pub struct MethodNotAllowed {
    /// The method asked for.
    pub method: Method,
    /// The methods the path has (for the `Allow` header).
    pub allowed: Vec<Method>,
}

impl MethodNotAllowed {
    /// The value of the `Allow` header: `GET, POST`.
    pub fn allow_header(&self) -> String {
        let names: Vec<&str> = self.allowed.iter().map(Method::as_str).collect();
        names.join(", ")
    }

    /// The status to answer with.
    pub const STATUS: StatusCode = StatusCode::METHOD_NOT_ALLOWED;
}

impl std::fmt::Display for MethodNotAllowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "method {} not allowed on this path (allowed: {})",
            self.method,
            self.allow_header()
        )
    }
}

impl std::error::Error for MethodNotAllowed {}

/// The components of `path` below [`API_BASE`] (raw, percent-encoded); one
/// trailing `/` is allowed, empty components are not.
fn components(path: &str) -> Result<Vec<&str>, Error> {
    let Some(rest) = path.strip_prefix(API_BASE) else {
        http_bail!(NOT_FOUND, "no such path - the API is below {API_BASE}/");
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let components: Vec<&str> = rest.split('/').skip(1).collect();
    if !rest.starts_with('/') || components.iter().any(|c| c.is_empty()) {
        http_bail!(NOT_FOUND, "no such path");
    }
    Ok(components)
}

/// Finds the API method of `method` and `path` (raw, percent-encoded).
///
/// # Errors
///
/// 404 for a path the tree does not have (or one without methods), a
/// [`MethodNotAllowed`] (405) for a known path with another method.
pub fn find_api_method(method: &Method, path: &str) -> Result<FoundMethod, Error> {
    let components = components(path)?;
    let mut uri_param = HashMap::new();
    let Some(router) = crate::api2::ROUTER.find_route(&components, &mut uri_param) else {
        http_bail!(NOT_FOUND, "no such path");
    };
    let allowed = router.allowed_methods();
    if allowed.is_empty() {
        http_bail!(NOT_FOUND, "no such path");
    }
    match router.method(method) {
        Some(api_method) => Ok(FoundMethod {
            api_method,
            uri_param,
        }),
        None => Err(MethodNotAllowed {
            method: method.clone(),
            allowed,
        }
        .into()),
    }
}

/// Every method of the tree, paths below [`API_BASE`].
pub fn endpoints() -> Vec<Endpoint> {
    crate::api2::ROUTER.endpoints()
}

/// The route a request is served by, as `METHOD /path/{param}`, or `None`
/// if it is not served (404, 405). For tests that must call every route.
pub fn route_of(method: &Method, path: &str) -> Option<String> {
    find_api_method(method, path).ok()?;
    let components = components(path).ok()?;
    endpoints()
        .into_iter()
        .find(|endpoint| endpoint.method == *method && endpoint.matches(&components))
        .map(|endpoint| format!("{} {}", endpoint.method, endpoint.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::server::error::{message_of, status_of};

    #[test]
    fn routes_and_methods() {
        let route = |m: Method, p: &str| route_of(&m, p);
        assert_eq!(
            route(Method::GET, "/api2/json/config/encryption-keys").unwrap(),
            "GET /config/encryption-keys"
        );
        assert_eq!(
            route(Method::DELETE, "/api2/json/config/encryption-keys/k1/").unwrap(),
            "DELETE /config/encryption-keys/{id}"
        );
        let found =
            find_api_method(&Method::DELETE, "/api2/json/config/encryption-keys/k1/").unwrap();
        assert_eq!(found.uri_param["id"], "k1");
        assert_eq!(
            route(Method::GET, "/api2/json/config/encryption-keys/k1/verify").unwrap(),
            "GET /config/encryption-keys/{id}/verify"
        );
        // PUT toggles like POST: the same method
        for method in [Method::POST, Method::PUT] {
            let found = find_api_method(&method, "/api2/json/config/encryption-keys/k1").unwrap();
            assert_eq!(found.uri_param["id"], "k1");
            assert_eq!(
                found.api_method.parameters.description,
                "Toggle the archive state of an encryption key."
            );
        }
        let status = |r: Result<_, Error>| status_of(&r.unwrap_err());
        assert_eq!(
            status(find_api_method(&Method::PUT, "/api2/json/version")),
            405
        );
        assert_eq!(
            status(find_api_method(&Method::GET, "/api2/json/nope")),
            404
        );
        assert_eq!(
            status(find_api_method(&Method::GET, "/api2/json//version")),
            404
        );
        assert_eq!(status(find_api_method(&Method::GET, "/version")), 404);
        assert_eq!(
            status(find_api_method(&Method::GET, "/api2/jsonx/version")),
            404
        );
        // directories without methods are not routes
        for path in [
            "/api2/json",
            "/api2/json/",
            "/api2/json/config",
            "/api2/json/access",
        ] {
            assert_eq!(status(find_api_method(&Method::GET, path)), 404, "{path}");
        }
        // a raw component: `encryption%2Dkeys` is not `encryption-keys`
        assert_eq!(
            status(find_api_method(
                &Method::GET,
                "/api2/json/config/encryption%2Dkeys"
            )),
            404
        );
    }

    #[test]
    fn not_allowed_names_the_methods_of_the_path() {
        let err = find_api_method(&Method::PUT, "/api2/json/config/encryption-keys").unwrap_err();
        assert_eq!(status_of(&err), 405);
        assert_eq!(
            message_of(&err),
            "method PUT not allowed on this path (allowed: GET, POST)"
        );
        let not_allowed = err.downcast_ref::<MethodNotAllowed>().unwrap();
        assert_eq!(not_allowed.allow_header(), "GET, POST");
        let err =
            find_api_method(&Method::HEAD, "/api2/json/config/encryption-keys/k1").unwrap_err();
        assert_eq!(
            err.downcast_ref::<MethodNotAllowed>()
                .unwrap()
                .allow_header(),
            "GET, POST, PUT, DELETE"
        );
    }
}
