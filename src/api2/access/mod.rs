//! `/access/...`: authentication, users and tokens, access control lists.
//!
//! Served so far: the login ([`ticket`]) and what the caller may do
//! ([`permissions`], which the web page reads); the other handlers of
//! [`user`] and [`acl`] serve the CLI, and get routes here when the API
//! grows them.

use proxmox_router::{Router, SubdirMap};

use pbs_api_types::Authid;
use pbs_config::user::{TOKEN_TYPE_ID, USER_TYPE_ID};

/// The section of `user.cfg` that holds `auth_id`: its type (`user` or
/// `token`) and id (a user's by its user id, a token's by its full id).
fn user_cfg_section(auth_id: &Authid) -> (&'static str, String) {
    match auth_id.is_token() {
        true => (TOKEN_TYPE_ID, auth_id.to_string()),
        false => (USER_TYPE_ID, auth_id.user().to_string()),
    }
}

pub mod acl;
pub mod permissions;
pub mod ticket;
pub mod user;

const SUBDIRS: SubdirMap = &[
    ("permissions", &permissions::ROUTER),
    ("ticket", &ticket::ROUTER),
];

/// The routes of `/access`.
pub const ROUTER: Router = Router::new().subdirs(SUBDIRS);
