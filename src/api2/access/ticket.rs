//! `POST /access/ticket`: log in with user name and password, get a ticket.
//!
//! Only users of the `pbs` realm have passwords here (`shadow.json`); this
//! daemon does no PAM login, so `root@pam` authenticates with its API tokens
//! only. A valid, unexpired ticket of the same user is accepted as the
//! password and renews it, as upstream.
//!
//! [`API_METHOD_CREATE_TICKET`] is open to the world (it is the login). It
//! throttles failing clients per address and user, bounds the password
//! hashing work with the server's hash limiter, and writes every refusal
//! to the daemon's log; the server answers refusals (401, 429) after its
//! failure delay, like every failed authentication.

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Error, format_err};
use serde::Serialize;
use serde_json::Value;

use proxmox_router::{
    ApiFuture, ApiHandler, ApiMethod, Permission, ReturnType, Router, RpcEnvironment,
};
use proxmox_schema::{BooleanSchema, ObjectSchema, Schema};

use pbs_api_types::{Authid, PASSWORD_SCHEMA, PROXMOX_USER_ID_SCHEMA, Userid};
use pbs_config::ConfigDir;
use pbs_config::cached_user_info::CachedUserInfo;

use crate::api2::described_object;
use crate::api2::param_str;
use crate::auth_helpers::AuthKeys;
use crate::http_err;
use crate::server::ServerState;
use crate::server::auth::throttled;
use crate::server::environment::RestEnvironment;

/// `new-format`: accepted for compatibility and ignored (the ticket is
/// always returned in the body).
pub const NEW_FORMAT_SCHEMA: Schema =
    BooleanSchema::new("Accepted for compatibility; the ticket is always returned in the body.")
        .schema();

/// Parameters of `POST /access/ticket`.
pub const API_METHOD_CREATE_TICKET_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Create or verify authentication ticket.",
    &[
        ("new-format", true, &NEW_FORMAT_SCHEMA),
        ("password", false, &PASSWORD_SCHEMA),
        ("username", false, &PROXMOX_USER_ID_SCHEMA),
    ],
);

/// The answer of a successful login.
#[derive(Clone, Serialize)]
pub struct TicketInfo {
    /// The user id.
    pub username: String,
    /// The ticket (send it back as the `PBSAuthCookie` cookie).
    pub ticket: String,
    /// Send this as the `CSRFPreventionToken` header on writes.
    #[serde(rename = "CSRFPreventionToken")]
    pub csrf_prevention_token: String,
}

impl std::fmt::Debug for TicketInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TicketInfo({}, <redacted>)", self.username)
    }
}

/// A login was refused (the API answers 401). The message is the same for
/// an unknown user, a wrong password and a user without a password, so it
/// tells an attacker nothing; `reason` is for the server's log only.
#[derive(Debug, Clone)]
pub struct AuthenticationFailure {
    /// What failed, for the log (never a password).
    pub reason: String,
}

impl std::fmt::Display for AuthenticationFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("authentication failure")
    }
}

impl std::error::Error for AuthenticationFailure {}

fn fail(reason: impl Into<String>) -> Error {
    AuthenticationFailure {
        reason: reason.into(),
    }
    .into()
}

/// Checks `username` and `password` (or a ticket as password) and issues a
/// new ticket and CSRF token.
///
/// # Errors
///
/// [`AuthenticationFailure`] for any refused login; other errors for
/// unreadable config files.
pub fn create_ticket(
    dir: &ConfigDir,
    keys: &AuthKeys,
    username: &str,
    password: &str,
) -> Result<TicketInfo, Error> {
    create_ticket_gated(dir, keys, username, password, || ())
}

/// [`create_ticket`], calling `hash_slot` right before the password hash is
/// checked and holding what it returns during the check. The server uses
/// it to take a slot of its hash limiter only for logins that hash (every
/// `pbs` realm login: an unknown user or one without a password is checked
/// against a dummy hash, so its answer takes as long; not other realms or
/// ticket renewals).
pub fn create_ticket_gated<G>(
    dir: &ConfigDir,
    keys: &AuthKeys,
    username: &str,
    password: &str,
    hash_slot: impl FnOnce() -> G,
) -> Result<TicketInfo, Error> {
    let userid: Userid = username.parse().map_err(|_| fail("malformed user id"))?;
    if password.starts_with("PBS:") {
        // ticket renewal: the ticket must be valid and name the same user
        match keys.verify_ticket(password) {
            Ok(ticket_user) if ticket_user == userid => {}
            Ok(_) => return Err(fail("ticket of another user")),
            Err(err) => return Err(fail(format!("ticket renewal - {err}"))),
        }
    } else if userid.realm() != pbs_config::shadow::PBS_REALM {
        return Err(fail(format!(
            "realm '{}' has no password login on this daemon (use an API token)",
            userid.realm()
        )));
    } else {
        // a user without a password (or no such user) costs a hash too
        let hash = dir.shadow().hash_of(&userid)?;
        let _slot = hash_slot();
        if !pbs_config::shadow::verify_or_dummy(hash.as_deref(), password) {
            return Err(fail(match hash {
                Some(_) => "invalid credentials",
                None => "no password set",
            }));
        }
    }
    let info = CachedUserInfo::new(dir)?;
    if !info.is_active_auth_id(&userid.clone().into()) {
        return Err(fail("user account disabled or expired"));
    }
    Ok(TicketInfo {
        username: userid.to_string(),
        ticket: keys.create_ticket(&userid)?,
        csrf_prevention_token: keys.assemble_csrf_prevention_token(&userid)?,
    })
}

const TICKET_INFO_SCHEMA: Schema = described_object(
    "username, ticket (send it as the PBSAuthCookie cookie) and CSRFPreventionToken (send it as a header on writes).",
);

/// `POST /access/ticket`: the login.
pub const API_METHOD_CREATE_TICKET: ApiMethod = ApiMethod::new(
    &ApiHandler::Async(&api_create_ticket),
    &API_METHOD_CREATE_TICKET_PARAMETERS,
)
.returns(ReturnType::new(false, &TICKET_INFO_SCHEMA))
.access(
    Some("failed logins are throttled per client address and user"),
    &Permission::World,
);

fn api_create_ticket<'a>(
    param: Value,
    _method: &'static ApiMethod,
    rpcenv: &'a mut dyn RpcEnvironment,
) -> ApiFuture<'a> {
    Box::pin(async move {
        let state = Arc::clone(RestEnvironment::of(rpcenv)?.state());
        let client = rpcenv
            .get_client_ip()
            .ok_or_else(|| format_err!("internal error - login without a client address"))?;
        let username = param_str(&param, "username").unwrap_or_default();
        let password = param_str(&param, "password").unwrap_or_default();
        let info = login(&state, client.ip(), username, password).await?;
        rpcenv.set_auth_id(Some(info.username.clone()));
        Ok(serde_json::to_value(&info)?)
    })
}

/// A login from `client`: throttled, hashing bounded, every refusal logged.
async fn login(
    state: &Arc<ServerState>,
    client: IpAddr,
    username: &str,
    password: &str,
) -> Result<TicketInfo, Error> {
    let claimed = username.parse::<Authid>().ok();
    let log_refusal = |reason: &str| {
        let id = claimed.as_ref().map(Authid::to_string);
        state.log.auth_failure(client, id.as_deref(), reason);
    };
    if let Err(wait) = state.throttle.check(client, username) {
        let refusal = throttled(claimed.clone(), wait);
        log_refusal(&refusal.log);
        return Err(refusal.error);
    }
    let result = {
        let state = Arc::clone(state);
        let (username, password) = (username.to_string(), password.to_string());
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
            state.throttle.success(client, username);
            Ok(info)
        }
        Err(err) => {
            match err.downcast_ref::<AuthenticationFailure>() {
                Some(failure) => {
                    state.throttle.failure(client, username);
                    log_refusal(&failure.reason);
                }
                None => log_refusal(&err.to_string()),
            }
            Err(err)
        }
    }
}

/// The routes of `/access/ticket`.
pub const ROUTER: Router = Router::new().post(&API_METHOD_CREATE_TICKET);
