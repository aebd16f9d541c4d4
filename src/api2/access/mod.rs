//! `/access/...`: authentication, users and tokens, access control lists.
//!
//! Served so far: the login ([`ticket`]) and what the caller may do
//! ([`permissions`], which the web page reads); the other handlers of
//! [`user`] and [`acl`] serve the CLI, and get routes here when the API
//! grows them.

use proxmox_router::{Router, SubdirMap};

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
