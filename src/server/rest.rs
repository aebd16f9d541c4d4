//! One request, start to end: limits, authentication, parameters, handler,
//! response, access log line.
//!
//! Order of checks, so that cheap refusals come first and no unauthenticated
//! client makes the daemon read a body or hash a password it need not:
//! path and header size (414, 431), route (404, 405), credentials (401,
//! 429), CSRF token for non-GET requests made with a ticket (401), body size
//! and read timeout (413, 408), content type (415), parameters (400),
//! privileges (403), then the handler. Failed authentications are answered
//! after [`ServerOptions::auth_failure_delay`] from the start of the
//! request, as upstream delays them, so their timing says nothing about why
//! they failed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Error;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use pbs_api_types::Authid;

use crate::api2::access::ticket::{AuthenticationFailure, create_ticket_gated};
use crate::http_err;
use crate::server::auth::{AuthContext, AuthFailure, authenticate, extract_auth_data, throttled};
use crate::server::error::{message_of, status_of};
use crate::server::params::{body_kind, parse_request_parameters, percent_decode};
use crate::server::router::{Reply, Route, dispatch, find_route};
use crate::server::{ServerOptions, ServerState};

fn json_response(reply: &Reply) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&reply.to_body()).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(body)));
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
    if status == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allowed) = message_of(err).split("(allowed: ").nth(1)
        && let Ok(value) = HeaderValue::from_str(allowed.trim_end_matches(')'))
    {
        response.headers_mut().insert("Allow", value);
    }
    response
}

/// The outcome of a request, for the response and the log.
struct Outcome {
    result: Result<Reply, Error>,
    auth_id: Option<Authid>,
    auth_failed: bool,
}

impl Outcome {
    fn err(error: Error, auth_id: Option<Authid>) -> Self {
        Self {
            result: Err(error),
            auth_id,
            auth_failed: false,
        }
    }
}

/// Answers one request; never fails.
pub async fn handle_request(
    state: Arc<ServerState>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let start = Instant::now();
    // IPv4 clients of a [::] socket appear as ::ffff:a.b.c.d; log and
    // throttle them by their IPv4 address
    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
    let method = request.method().clone();
    let path = request.uri().path().to_string();

    let outcome = process(&state, peer, request).await;

    if outcome.auth_failed {
        let until = start + state.options.auth_failure_delay;
        tokio::time::sleep_until(until.into()).await;
    }
    let response = match &outcome.result {
        Ok(reply) => json_response(reply),
        Err(err) => error_response(err),
    };
    let size = hyper::body::Body::size_hint(response.body())
        .exact()
        .unwrap_or(0) as usize;
    state.log.request(
        peer.ip(),
        outcome.auth_id.as_ref().map(|id| id.to_string()).as_deref(),
        method.as_str(),
        &path,
        response.status().as_u16(),
        size,
        start.elapsed(),
    );
    Ok(response)
}

async fn process(
    state: &Arc<ServerState>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Outcome {
    let options = &state.options;
    let (parts, body) = request.into_parts();

    if parts.uri.path().len() > options.max_path_length {
        return Outcome::err(
            http_err!(
                URI_TOO_LONG,
                "request path too long ({} bytes, at most {})",
                parts.uri.path().len(),
                options.max_path_length
            ),
            None,
        );
    }
    let header_size: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_size > options.max_header_size {
        return Outcome::err(
            http_err!(
                REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request headers too large ({header_size} bytes, at most {})",
                options.max_header_size
            ),
            None,
        );
    }

    let (route, raw_id) = match find_route(&parts.method, parts.uri.path()) {
        Ok(found) => found,
        Err(err) => return Outcome::err(err, None),
    };

    let ctx = AuthContext {
        dir: &state.dir,
        keys: &state.keys,
        token_cache: &state.token_cache,
        hash_limiter: &state.hash_limiter,
        throttle: &state.throttle,
    };
    let safe_method = parts.method == Method::GET || parts.method == Method::HEAD;
    let auth_id = if route.is_public() {
        None
    } else {
        let data = match extract_auth_data(&parts.headers) {
            Ok(Some(data)) => data,
            Ok(None) => {
                return auth_failed(
                    state,
                    peer,
                    AuthFailure {
                        error: http_err!(
                            UNAUTHORIZED,
                            "authentication required - send an API token (Authorization: PBSAPIToken=USER@REALM!TOKENNAME:SECRET) or a ticket (PBSAuthCookie)"
                        ),
                        auth_id: None,
                        log: "no credentials".to_string(),
                    },
                );
            }
            Err(failure) => return auth_failed(state, peer, failure),
        };
        match authenticate(&ctx, peer.ip(), data, safe_method).await {
            Ok(auth_id) => Some(auth_id),
            Err(failure) => return auth_failed(state, peer, failure),
        }
    };

    let result = async {
        let body = read_body(options, &parts, body).await?;
        let kind = if body.is_empty() {
            crate::server::params::BodyKind::Form
        } else {
            body_kind(
                parts
                    .headers
                    .get(CONTENT_TYPE)
                    .map(|v| v.to_str().unwrap_or("invalid")),
            )?
        };
        let mut path_params = Vec::new();
        if let Some(raw_id) = &raw_id {
            let id = String::from_utf8(percent_decode(raw_id.as_bytes(), false))
                .map_err(|_| proxmox_schema::param_format_err!("id", "value is not valid UTF-8"))?;
            path_params.push(("id", id));
        }
        let params =
            parse_request_parameters(route.schema(), parts.uri.query(), kind, &body, &path_params)?;
        Ok::<Value, Error>(params)
    }
    .await;
    let params = match result {
        Ok(params) => params,
        Err(err) => return Outcome::err(err, auth_id),
    };

    if route == Route::CreateTicket {
        return login(state, peer, params).await;
    }

    let auth = auth_id.clone().expect("authenticated route");
    let dir = Arc::clone(&state.dir);
    let result = tokio::task::spawn_blocking(move || dispatch(&dir, &auth, route, &params))
        .await
        .unwrap_or_else(|err| Err(http_err!(INTERNAL_SERVER_ERROR, "internal error - {err}")));
    Outcome {
        result,
        auth_id,
        auth_failed: false,
    }
}

fn auth_failed(state: &ServerState, peer: SocketAddr, failure: AuthFailure) -> Outcome {
    let id = failure.auth_id.as_ref().map(|id| id.to_string());
    state
        .log
        .auth_failure(peer.ip(), id.as_deref(), &failure.log);
    let status = status_of(&failure.error);
    Outcome {
        result: Err(failure.error),
        auth_id: None,
        // server errors are not delayed: they are not guesses
        auth_failed: status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
    }
}

async fn login(state: &Arc<ServerState>, peer: SocketAddr, params: Value) -> Outcome {
    let username = params["username"].as_str().unwrap_or_default().to_string();
    let password = params["password"].as_str().unwrap_or_default().to_string();
    if let Err(wait) = state.throttle.check(peer.ip(), &username) {
        return auth_failed(state, peer, throttled(username.parse().ok(), wait));
    }
    let result = {
        let state = Arc::clone(state);
        let username = username.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let slot = || state.hash_limiter.acquire_blocking(&runtime);
            create_ticket_gated(&state.dir, &state.keys, &username, &password, slot)
        })
        .await
        .unwrap_or_else(|err| Err(http_err!(INTERNAL_SERVER_ERROR, "internal error - {err}")))
    };
    match result {
        Ok(info) => {
            state.throttle.success(peer.ip(), &username);
            let auth_id = username.parse().ok();
            match serde_json::to_value(&info) {
                Ok(data) => Outcome {
                    result: Ok(Reply { data, digest: None }),
                    auth_id,
                    auth_failed: false,
                },
                Err(err) => Outcome::err(err.into(), auth_id),
            }
        }
        Err(err) => {
            let reason = match err.downcast_ref::<AuthenticationFailure>() {
                Some(failure) => {
                    state.throttle.failure(peer.ip(), &username);
                    failure.reason.clone()
                }
                None => format!("{err}"),
            };
            auth_failed(
                state,
                peer,
                AuthFailure {
                    error: err,
                    auth_id: username.parse().ok(),
                    log: reason,
                },
            )
        }
    }
}

/// How much of an oversized body is read (and dropped) before answering 413,
/// so a client that is still sending can read the answer instead of
/// getting a broken pipe. Larger bodies are answered at once.
const MAX_DRAINED_BODY: u64 = 1024 * 1024;

async fn read_body(
    options: &ServerOptions,
    parts: &hyper::http::request::Parts,
    mut body: Incoming,
) -> Result<Bytes, Error> {
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
