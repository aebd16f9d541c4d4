//! One request, start to end: limits, the method in the router tree,
//! authentication, parameters, permission, handler, response, access log
//! line. Paths outside the API (`/api2`) are the key management page's
//! fixed files ([`www`]), answered before anything else is looked at.
//!
//! Order of checks, so that cheap refusals come first and no unauthenticated
//! client makes the daemon read a body or hash a password it need not:
//! path and header size (414, 431), the method in the tree (404, 405),
//! credentials unless the method is open to the world (401, 429), CSRF
//! token for non-GET requests made with a ticket (401), body size and read
//! timeout (413, 408), content type (415), parameters by the method's
//! schema (400), the method's permission (403), then its handler, in an
//! [`RestEnvironment`] that tells it who calls from where. Every answer
//! that refuses credentials (401, 429, the login's included) is sent
//! [`ServerOptions::auth_failure_delay`] after the request started, as
//! upstream delays them, so its timing says nothing about why it failed.
//!
//! Every API answer, errors included, carries [`API_HEADERS`]: nothing may
//! be stored by a browser or a proxy (answers hold key bytes: a created
//! key), and no browser may take it for another content type than the one
//! sent.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Error;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes};
use hyper::header::{
    ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, PRAGMA,
    X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use proxmox_router::{ApiHandler, ApiMethod, Permission, RpcEnvironment};

use crate::http_err;
use crate::server::auth::{AuthContext, AuthFailure, authenticate, extract_auth_data};
use crate::server::environment::RestEnvironment;
use crate::server::error::{message_of, status_of};
use crate::server::params::{BodyKind, body_kind, parse_request_parameters, percent_decode};
use crate::server::permission::check_permission;
use crate::server::reply::Reply;
use crate::server::router::{FoundMethod, MethodNotAllowed, find_api_method};
use crate::server::www;
use crate::server::{ServerOptions, ServerState};

/// Headers on every API answer. Upstream's proxmox-rest-server sends no
/// cache headers; Proxmox VE's API server sends `Cache-Control: max-age=0`
/// and `Pragma: no-cache`, which still let a cache store an answer.
/// `no-store` keeps answers with key bytes out of every cache's storage;
/// `Pragma` is for HTTP/1.0 caches.
pub const API_HEADERS: &[(HeaderName, &str)] = &[
    (CACHE_CONTROL, "no-store"),
    (PRAGMA, "no-cache"),
    (X_CONTENT_TYPE_OPTIONS, "nosniff"),
];

fn with_api_headers(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    for (name, value) in API_HEADERS {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

fn json_response(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.into_body())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    response
}

fn error_response(err: &Error) -> Response<Full<Bytes>> {
    let status = status_of(err);
    let mut response = Response::new(Full::new(Bytes::from(message_of(err))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=UTF-8"),
    );
    if let Some(not_allowed) = err.downcast_ref::<MethodNotAllowed>()
        && let Ok(value) = HeaderValue::from_str(&not_allowed.allow_header())
    {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

/// Whether an answer refuses credentials (401, or 429 when throttled):
/// those are answered after [`ServerOptions::auth_failure_delay`]. Server
/// errors are not delayed: they are not guesses.
fn refuses_credentials(result: &Result<Reply, Error>) -> bool {
    result.as_ref().is_err_and(|err| {
        let status = status_of(err);
        status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS
    })
}

/// The outcome of a request, for the response and the log.
struct Outcome {
    result: Result<Reply, Error>,
    /// who the access log names: the authenticated id, or the one a login
    /// authenticated
    auth_id: Option<String>,
}

impl Outcome {
    fn err(error: Error, auth_id: Option<String>) -> Self {
        Self {
            result: Err(error),
            auth_id,
        }
    }
}

/// Answers one request; never fails.
pub async fn handle_request<B>(
    state: Arc<ServerState>,
    peer: SocketAddr,
    request: Request<B>,
) -> Result<Response<Full<Bytes>>, Infallible>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let start = Instant::now();
    // IPv4 clients of a [::] socket appear as ::ffff:a.b.c.d; log and
    // throttle them by their IPv4 address
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    let method = request.method().clone();
    let path = request.uri().path().to_string();

    // the key management page: fixed files, no credentials, no body
    if www::serves(&path) {
        let response = www::serve(&method, &path);
        log_request(&state, peer, None, &method, &path, &response, start);
        return Ok(response);
    }

    let outcome = process(&state, peer, request).await;

    if refuses_credentials(&outcome.result) {
        let until = start + state.options.auth_failure_delay;
        tokio::time::sleep_until(until.into()).await;
    }
    let response = with_api_headers(match outcome.result {
        Ok(reply) => json_response(reply),
        Err(err) => error_response(&err),
    });
    log_request(
        &state,
        peer,
        outcome.auth_id.as_deref(),
        &method,
        &path,
        &response,
        start,
    );
    Ok(response)
}

/// The access log line of an answered request.
fn log_request(
    state: &ServerState,
    peer: SocketAddr,
    auth_id: Option<&str>,
    method: &Method,
    path: &str,
    response: &Response<Full<Bytes>>,
    start: Instant,
) {
    let size = hyper::body::Body::size_hint(response.body())
        .exact()
        .unwrap_or(0) as usize;
    state.log.request(
        peer.ip(),
        auth_id,
        method.as_str(),
        path,
        response.status().as_u16(),
        size,
        start.elapsed(),
    );
}

/// Refuses a request whose path or headers are over the limits.
fn check_sizes(options: &ServerOptions, parts: &hyper::http::request::Parts) -> Result<(), Error> {
    if parts.uri.path().len() > options.max_path_length {
        return Err(http_err!(
            URI_TOO_LONG,
            "request path too long ({} bytes, at most {})",
            parts.uri.path().len(),
            options.max_path_length
        ));
    }
    let header_size: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_size > options.max_header_size {
        return Err(http_err!(
            REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large ({header_size} bytes, at most {})",
            options.max_header_size
        ));
    }
    Ok(())
}

async fn process<B>(state: &Arc<ServerState>, peer: SocketAddr, request: Request<B>) -> Outcome
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let (parts, body) = request.into_parts();
    if let Err(err) = check_sizes(&state.options, &parts) {
        return Outcome::err(err, None);
    }
    let found = match find_api_method(&parts.method, parts.uri.path()) {
        Ok(found) => found,
        Err(err) => return Outcome::err(err, None),
    };
    let api_method = found.api_method;

    // a method open to the world needs no credentials (the login)
    let auth_id = if matches!(api_method.access.permission, Permission::World) {
        None
    } else {
        match authenticate_request(state, peer, &parts).await {
            Ok(auth_id) => Some(auth_id.to_string()),
            Err(failure) => return auth_failed(state, peer, failure),
        }
    };

    let (params, uri_param) = match read_parameters(&state.options, &parts, body, &found).await {
        Ok(parsed) => parsed,
        Err(err) => return Outcome::err(err, auth_id),
    };
    let env = RestEnvironment::new(Arc::clone(state), auth_id.clone(), peer);
    let (env, result) = call_api_method(api_method, params, uri_param, env).await;
    Outcome {
        result,
        auth_id: env.map_or(auth_id, |env| env.get_auth_id()),
    }
}

/// The authenticated id of a request's credentials.
async fn authenticate_request(
    state: &ServerState,
    peer: SocketAddr,
    parts: &hyper::http::request::Parts,
) -> Result<pbs_api_types::Authid, AuthFailure> {
    let ctx = AuthContext {
        dir: &state.dir,
        keys: &state.keys,
        token_cache: &state.token_cache,
        hash_limiter: &state.hash_limiter,
        throttle: &state.throttle,
    };
    let data = extract_auth_data(&parts.headers)?.ok_or_else(|| AuthFailure {
        error: http_err!(
            UNAUTHORIZED,
            "authentication required - send an API token (Authorization: PBSAPIToken=USER@REALM!TOKENNAME:SECRET) or a ticket (PBSAuthCookie)"
        ),
        auth_id: None,
        log: "no credentials".to_string(),
    })?;
    let safe_method = parts.method == Method::GET || parts.method == Method::HEAD;
    authenticate(&ctx, peer.ip(), data, safe_method).await
}

/// Reads the body and parses every parameter with the method's schema;
/// returns them and the decoded path parameters.
async fn read_parameters<B>(
    options: &ServerOptions,
    parts: &hyper::http::request::Parts,
    body: B,
    found: &FoundMethod,
) -> Result<(Value, HashMap<String, String>), Error>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let body = read_body(options, parts, body).await?;
    let kind = if body.is_empty() {
        BodyKind::Form
    } else {
        body_kind(
            parts
                .headers
                .get(CONTENT_TYPE)
                .map(|v| v.to_str().unwrap_or("invalid")),
        )?
    };
    let mut uri_param = HashMap::with_capacity(found.uri_param.len());
    for (name, raw) in &found.uri_param {
        let value = String::from_utf8(percent_decode(raw.as_bytes(), false)).map_err(|_| {
            proxmox_schema::param_format_err!(name.as_str(), "value is not valid UTF-8")
        })?;
        uri_param.insert(name.clone(), value);
    }
    let path_params: Vec<(&str, String)> = uri_param
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    let params = parse_request_parameters(
        found.api_method.parameters,
        parts.uri.query(),
        kind,
        &body,
        &path_params,
    )?;
    Ok((params, uri_param))
}

/// The environment after a call (gone if the handler panicked) and the
/// reply.
type Called = (Option<RestEnvironment>, Result<Reply, Error>);

/// Checks the method's permission and runs its handler: synchronous ones
/// (file IO, locks) on the blocking pool, the answer serialized there too.
async fn call_api_method(
    api_method: &'static ApiMethod,
    params: Value,
    uri_param: HashMap<String, String>,
    mut env: RestEnvironment,
) -> Called {
    let permission = api_method.access.permission;
    match api_method.handler {
        ApiHandler::Async(handler) => {
            if !matches!(permission, Permission::World) {
                let checked = blocking(env, move |env| {
                    check_permission(env, permission, &uri_param)
                });
                match checked.await {
                    Ok((back, ())) => env = back,
                    Err((back, err)) => return (back, Err(err)),
                }
            }
            let result = match handler(params, api_method, &mut env).await {
                Ok(data) => Reply::new(&data, env.result_attrib()),
                Err(err) => Err(err),
            };
            (Some(env), result)
        }
        ApiHandler::Sync(handler) => called(
            blocking(env, move |env| {
                check_permission(env, permission, &uri_param)?;
                let data = handler(params, api_method, env)?;
                Reply::new(&data, env.result_attrib())
            })
            .await,
        ),
        ApiHandler::SerializingSync(handler) => called(
            blocking(env, move |env| {
                check_permission(env, permission, &uri_param)?;
                let data = handler(params, api_method, env)?;
                Reply::new(&*data, env.result_attrib())
            })
            .await,
        ),
    }
}

/// What [`blocking`] returns: the environment and the result, or the error
/// and the environment unless the work panicked.
type Blocking<T> = Result<(RestEnvironment, T), (Option<RestEnvironment>, Error)>;

fn called(outcome: Blocking<Reply>) -> Called {
    match outcome {
        Ok((env, reply)) => (Some(env), Ok(reply)),
        Err((env, err)) => (env, Err(err)),
    }
}

/// Runs `work` with `env` on the blocking pool and gives `env` back; a
/// panic is a 500.
async fn blocking<T: Send + 'static>(
    mut env: RestEnvironment,
    work: impl FnOnce(&mut RestEnvironment) -> Result<T, Error> + Send + 'static,
) -> Blocking<T> {
    let joined = tokio::task::spawn_blocking(move || {
        let result = work(&mut env);
        (env, result)
    })
    .await;
    match joined {
        Ok((env, Ok(value))) => Ok((env, value)),
        Ok((env, Err(err))) => Err((Some(env), err)),
        Err(err) => Err((
            None,
            http_err!(INTERNAL_SERVER_ERROR, "internal error - {err}"),
        )),
    }
}

fn auth_failed(state: &ServerState, peer: SocketAddr, failure: AuthFailure) -> Outcome {
    let id = failure.auth_id.as_ref().map(|id| id.to_string());
    state
        .log
        .auth_failure(peer.ip(), id.as_deref(), &failure.log);
    Outcome::err(failure.error, None)
}

/// How much of an oversized body is read (and dropped) before answering 413,
/// so a client that is still sending can read the answer instead of
/// getting a broken pipe. Larger bodies are answered at once.
const MAX_DRAINED_BODY: u64 = 1024 * 1024;

async fn read_body<B>(
    options: &ServerOptions,
    parts: &hyper::http::request::Parts,
    mut body: B,
) -> Result<Bytes, Error>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let limit = options.max_body_size;
    let too_large = |length: u64| {
        http_err!(
            PAYLOAD_TOO_LARGE,
            "request body too large ({length} bytes, at most {limit})"
        )
    };
    let mut declared = None;
    if let Some(length) = parts.headers.get(CONTENT_LENGTH) {
        let length: u64 = length
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| http_err!(BAD_REQUEST, "invalid Content-Length header"))?;
        if length > MAX_DRAINED_BODY {
            return Err(too_large(length));
        }
        declared = Some(length);
    }
    let read = async {
        let mut data = Vec::new();
        let mut total: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|err| http_err!(BAD_REQUEST, "unable to read request body - {err}"))?;
            if let Ok(chunk) = frame.into_data() {
                total += chunk.len() as u64;
                if total > MAX_DRAINED_BODY {
                    break;
                }
                if total <= limit as u64 {
                    data.extend_from_slice(&chunk);
                }
            }
        }
        if total > limit as u64 {
            return Err(too_large(declared.unwrap_or(total)));
        }
        Ok(Bytes::from(data))
    };
    match tokio::time::timeout(options.body_timeout, read).await {
        Err(_) => Err(http_err!(
            REQUEST_TIMEOUT,
            "request body not received within {} seconds",
            options.body_timeout.as_secs_f64()
        )),
        Ok(result) => result,
    }
}
