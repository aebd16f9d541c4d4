//! `/access/...`: authentication, users and tokens, access control lists.
//!
//! Only the login ([`ticket`]) is served so far: the handlers of [`user`]
//! and [`acl`] serve the CLI, and get routes here when the API grows them.

use proxmox_router::{Router, SubdirMap};

pub mod acl;
pub mod ticket;
pub mod user;

const SUBDIRS: SubdirMap = &[("ticket", &ticket::ROUTER)];

/// The routes of `/access`.
pub const ROUTER: Router = Router::new().subdirs(SUBDIRS);
