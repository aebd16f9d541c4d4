//! The daemon's router tree read as data: what is declared beside each
//! handler is what the docs say and what the server enforces.
//!
//! - `docs/api.md` has exactly one row per route, with the route's
//!   parameters and its permission in words;
//! - every `{param}` of a privilege path is a path parameter of its route,
//!   and every path parameter is a required parameter of its method;
//! - every method, called in-process through the server's request handler
//!   (`rest::handle_request`, the code behind TLS), refuses a request
//!   without credentials (401) unless it is open to the world, and refuses
//!   a user and a token that hold no privilege (403) unless anybody
//!   authenticated may call it (a method open to anybody whose access
//!   description starts "checked by the handler" may refuse them too, with
//!   the same 403); every path answers a method it lacks with
//!   405 and an `Allow` header listing what the tree has.
//!
//! The secrets audit (`secrets_audit.rs`) fails for a route it does not
//! call; together, a new route is one edit in `src/api2/` plus its row in
//! the docs and its calls in the audit.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};

use proxmox_router::{ApiMethod, Endpoint, Permission};
use proxmox_schema::{ObjectSchemaType, Schema};

use pbs_api_types::Userid;
use pbs_keystore::server::access_log::AccessLog;
use pbs_keystore::server::permission::describe_access;
use pbs_keystore::server::rest::handle_request;
use pbs_keystore::server::router::{API_BASE, endpoints};
use pbs_keystore::server::{ServerOptions, ServerState};
use pbs_test_kit::access::{add_token, add_user};
use pbs_test_kit::{TestDir, key_config};

// ---------------------------------------------------------------------------
// the docs

/// The route rows of `docs/api.md`: `METHOD /path` → (parameters cell,
/// privilege cell).
fn docs_rows() -> BTreeMap<String, (String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| GET `/path` | params | privilege | returns |"
        let [_, route, params, privilege, _, ..] = cells.as_slice() else {
            continue;
        };
        let Some((method, route_path)) = route.split_once(' ') else {
            continue;
        };
        if !["GET", "POST", "PUT", "DELETE"].contains(&method) {
            continue;
        }
        let route_path = route_path.trim_matches('`');
        let key = format!("{method} {route_path}");
        let previous = rows.insert(key.clone(), (params.to_string(), privilege.to_string()));
        assert!(previous.is_none(), "docs/api.md lists {key} twice");
    }
    rows
}

/// The backquoted names in a parameters cell.
fn backquoted(cell: &str) -> BTreeSet<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn route_name(endpoint: &Endpoint) -> String {
    format!("{} {}", endpoint.method, endpoint.path)
}

/// The parameters a client sends: the method's, without path parameters.
fn body_params(endpoint: &Endpoint) -> BTreeSet<String> {
    let path_params = endpoint.path_params();
    endpoint
        .api_method
        .parameters
        .properties()
        .map(|(name, _, _)| name.to_string())
        .filter(|name| !path_params.contains(&name.as_str()))
        .collect()
}

#[test]
fn docs_api_md_lists_every_route_as_the_tree_declares_it() {
    let mut rows = docs_rows();
    let mut problems = Vec::new();
    for endpoint in endpoints() {
        let name = route_name(&endpoint);
        let privilege = describe_access(&endpoint.api_method.access);
        let params = body_params(&endpoint);
        let Some((params_cell, privilege_cell)) = rows.remove(&name) else {
            let listed: Vec<String> = params.iter().map(|p| format!("`{p}`")).collect();
            problems.push(format!(
                "no row for {name}; add: | {} `{}` | {} | {privilege} | ... |",
                endpoint.method,
                endpoint.path,
                listed.join(", ")
            ));
            continue;
        };
        if privilege_cell != privilege {
            problems.push(format!(
                "{name}: privilege column {privilege_cell:?}, the tree says {privilege:?}"
            ));
        }
        if backquoted(&params_cell) != params {
            problems.push(format!(
                "{name}: parameters column names {:?}, the method has {params:?}",
                backquoted(&params_cell)
            ));
        }
    }
    for name in rows.keys() {
        problems.push(format!(
            "docs/api.md lists {name}, which the tree does not have"
        ));
    }
    assert!(problems.is_empty(), "docs/api.md:\n{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------
// declarations that must agree with the paths

/// The `{param}` names of the privilege paths of `permission`.
fn privilege_params(permission: &Permission, out: &mut Vec<&'static str>) {
    match permission {
        Permission::Privilege(path, _, _) => out.extend(
            path.iter()
                .filter_map(|c| c.strip_prefix('{').and_then(|c| c.strip_suffix('}'))),
        ),
        Permission::And(list) | Permission::Or(list) => {
            for part in list.iter() {
                privilege_params(part, out);
            }
        }
        Permission::Superuser | Permission::World | Permission::Anybody => {}
    }
}

#[test]
fn privilege_paths_and_parameters_match_the_route_paths() {
    let all = endpoints();
    assert!(all.len() >= 9, "the tree lost routes: {all:?}");
    for endpoint in &all {
        let name = route_name(endpoint);
        let path_params = endpoint.path_params();
        let mut used = Vec::new();
        privilege_params(endpoint.api_method.access.permission, &mut used);
        for param in used {
            assert!(
                path_params.contains(&param),
                "{name}: the privilege path names {{{param}}}, not a path parameter"
            );
        }
        for param in path_params {
            assert!(
                matches!(
                    endpoint.api_method.parameters.lookup(param),
                    Some((false, _))
                ),
                "{name}: path parameter {param} is not a required parameter of the method"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// the server, in-process

/// The server state on a config dir with the key `sample-1` and the user
/// `nobody@pbs` (with the token `nobody@pbs!t`), who holds no privilege.
struct Server {
    state: Arc<ServerState>,
    runtime: tokio::runtime::Runtime,
    token_secret: String,
    _dir: TestDir,
}

/// What an answer says.
struct Answer {
    status: u16,
    allow: Option<String>,
    body: String,
}

impl Server {
    fn start() -> Self {
        let dir = TestDir::new();
        let config = &dir.config;
        config
            .encryption_keys()
            .store_key("sample-1", &key_config(1))
            .unwrap();
        add_user(config, "nobody@pbs", None, |_| {});
        let token_secret = add_token(config, "nobody@pbs!t", None);
        let options = ServerOptions {
            auth_failure_delay: Duration::ZERO,
            ..ServerOptions::default()
        };
        let log = AccessLog::file(&dir.path().join("access.log")).unwrap();
        let daemon_dir = pbs_config::ConfigDir::new(dir.path()).unwrap();
        let state = ServerState::new(Arc::new(daemon_dir), options, log).unwrap();
        Self {
            state: Arc::new(state),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            token_secret,
            _dir: dir,
        }
    }

    /// `method path?query` with a form `body` and `headers`.
    fn call(
        &self,
        method: &Method,
        path: &str,
        query: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let uri = if query.is_empty() {
            format!("{API_BASE}{path}")
        } else {
            format!("{API_BASE}{path}?{query}")
        };
        let mut request = Request::builder().method(method.clone()).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if !body.is_empty() {
            request = request.header("Content-Type", "application/x-www-form-urlencoded");
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let peer: SocketAddr = "192.0.2.1:1234".parse().unwrap();
        let response = self
            .runtime
            .block_on(handle_request(Arc::clone(&self.state), peer, request))
            .unwrap();
        let status = response.status().as_u16();
        let allow = response
            .headers()
            .get("Allow")
            .map(|v| v.to_str().unwrap().to_string());
        let body = self
            .runtime
            .block_on(response.into_body().collect())
            .unwrap()
            .to_bytes();
        Answer {
            status,
            allow,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

/// A value `schema` accepts (of an array: one item), from a few
/// candidates; a parameter none fits needs a candidate here.
fn sample_value(schema: &Schema) -> Option<String> {
    // a repeated parameter: one item
    if let Schema::Array(array) = schema {
        return sample_value(array.items);
    }
    const CANDIDATES: &[&str] = &["sample-1", "nobody@pbs", "0", "1"];
    CANDIDATES
        .iter()
        .find(|candidate| schema.parse_simple_value(candidate).is_ok())
        .map(|candidate| candidate.to_string())
}

/// A request to `endpoint` with valid values for its path parameters and
/// its required parameters: (path, form text).
fn valid_request(endpoint: &Endpoint) -> (String, String) {
    let name = route_name(endpoint);
    let method: &ApiMethod = endpoint.api_method;
    let sample = |param: &str| {
        let (_, schema) = method.parameters.lookup(param).unwrap();
        sample_value(schema)
            .unwrap_or_else(|| panic!("{name}: no sample value fits parameter {param}"))
    };
    let path: Vec<String> = endpoint
        .path
        .split('/')
        .map(
            |c| match c.strip_prefix('{').and_then(|c| c.strip_suffix('}')) {
                Some(param) => sample(param),
                None => c.to_string(),
            },
        )
        .collect();
    let form: Vec<String> = body_params(endpoint)
        .into_iter()
        .filter(|param| matches!(method.parameters.lookup(param), Some((false, _))))
        .map(|param| format!("{param}={}", sample(&param)))
        .collect();
    (path.join("/"), form.join("&"))
}

#[test]
fn every_method_refuses_the_unauthenticated_and_the_unprivileged() {
    let server = Server::start();
    let token = format!("PBSAPIToken=nobody@pbs!t:{}", server.token_secret);
    let userid: Userid = "nobody@pbs".parse().unwrap();
    let ticket = server.state.keys.create_ticket(&userid).unwrap();
    let csrf = server
        .state
        .keys
        .assemble_csrf_prevention_token(&userid)
        .unwrap();
    let cookie = format!("PBSAuthCookie={ticket}");
    let unprivileged: [(&str, Vec<(&str, &str)>); 2] = [
        ("token", vec![("Authorization", token.as_str())]),
        (
            "ticket",
            vec![
                ("Cookie", cookie.as_str()),
                ("CSRFPreventionToken", csrf.as_str()),
            ],
        ),
    ];

    for endpoint in endpoints() {
        let name = route_name(&endpoint);
        let (path, form) = valid_request(&endpoint);
        let (query, body) = if endpoint.method == Method::GET {
            (form.as_str(), "")
        } else {
            ("", form.as_str())
        };
        let permission = endpoint.api_method.access.permission;
        let world = matches!(permission, Permission::World);
        let anybody = world || matches!(permission, Permission::Anybody);

        // no credentials (and no parameters, so a world-open method stops
        // at its parameters, past authentication)
        let answer = server.call(&endpoint.method, &path, "", "", &[]);
        if world {
            assert_ne!(
                answer.status, 401,
                "{name} without credentials: {}",
                answer.body
            );
        } else {
            assert_eq!(
                answer.status, 401,
                "{name} without credentials: {}",
                answer.body
            );
        }

        for (what, headers) in &unprivileged {
            // a world-open method does not look at credentials: called
            // without parameters it stops at them (the login would refuse
            // sample credentials with its own 401)
            let (query, body) = if world { ("", "") } else { (query, body) };
            let answer = server.call(&endpoint.method, &path, query, body, headers);
            // a method open to anybody whose access description says its
            // handler checks may refuse, as 403 in the words of the others
            let checks_itself = endpoint
                .api_method
                .access
                .description
                .is_some_and(|d| d.starts_with("checked by the handler"));
            if anybody && !(checks_itself && answer.status == 403) {
                assert!(
                    ![401, 403].contains(&answer.status),
                    "{name} with an unprivileged {what}: {} {}",
                    answer.status,
                    answer.body
                );
            } else {
                assert_eq!(
                    answer.status, 403,
                    "{name} with an unprivileged {what}: {}",
                    answer.body
                );
                assert!(
                    answer.body.starts_with("permission check failed - "),
                    "{name}: {}",
                    answer.body
                );
            }
        }
    }
    // the refused writes changed nothing
    let (list, _) =
        pbs_keystore::api2::config::encryption_keys::list_keys(&server.state.dir, true, |_| true)
            .unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].archived_at.is_none());
}

#[test]
fn every_path_answers_a_method_it_lacks_with_405_and_allow() {
    let server = Server::start();
    let mut methods: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for endpoint in endpoints() {
        let (path, _) = valid_request(&endpoint);
        methods
            .entry(endpoint.path.clone())
            .or_insert((path, Vec::new()))
            .1
            .push(endpoint.method.to_string());
    }
    for (route_path, (path, allowed)) in methods {
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ] {
            if allowed.contains(&method.to_string()) {
                continue;
            }
            let answer = server.call(&method, &path, "", "", &[]);
            assert_eq!(answer.status, 405, "{method} {route_path}: {}", answer.body);
            assert_eq!(
                answer.allow.as_deref(),
                Some(allowed.join(", ").as_str()),
                "{method} {route_path}"
            );
            assert!(
                answer
                    .body
                    .contains(&format!("(allowed: {})", allowed.join(", ")))
            );
        }
    }
    for path in [
        "",
        "/config",
        "/access",
        "/nope",
        "/config/encryption-keys/k/nope",
    ] {
        assert_eq!(
            server.call(&Method::GET, path, "", "", &[]).status,
            404,
            "{path}"
        );
    }
}
