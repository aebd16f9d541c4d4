//! `POST /access/ticket`: log in with user name and password, get a ticket.
//!
//! Only users of the `pbs` realm have passwords here (`shadow.json`); this
//! daemon does no PAM login, so `root@pam` authenticates with its API tokens
//! only. A valid, unexpired ticket of the same user is accepted as the
//! password and renews it, as upstream. The caller (the server) bounds the
//! password hashing work and throttles failing sources.

use anyhow::Error;
use serde::Serialize;

use proxmox_schema::{BooleanSchema, ObjectSchema, Schema};

use pbs_api_types::{PASSWORD_SCHEMA, PROXMOX_USER_ID_SCHEMA, Userid};
use pbs_config::ConfigDir;
use pbs_config::cached_user_info::CachedUserInfo;

use crate::auth_helpers::AuthKeys;

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
/// it to take a slot of its hash limiter only for logins that hash (not for
/// unknown users, other realms or ticket renewals).
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
        match dir.shadow().hash_of(&userid)? {
            None => return Err(fail("no password set")),
            Some(hash) => {
                let _slot = hash_slot();
                proxmox_sys::crypt::verify_crypt_pw(password, &hash)
                    .map_err(|_| fail("invalid credentials"))?
            }
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
