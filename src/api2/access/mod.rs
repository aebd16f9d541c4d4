//! `/access/...`: authentication, users and tokens, access control lists.

pub mod acl;
pub mod ticket;
pub mod user;
