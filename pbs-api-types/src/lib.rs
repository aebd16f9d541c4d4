//! Types and schemas of the keystore API, mirroring upstream `pbs-api-types`.
//!
//! Each wire type implements [`ApiType`](proxmox_schema::ApiType) with a const
//! schema written by hand (no `#[api]` macro). This crate does no file or
//! network IO.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod acl;
mod common;
mod crypto;
mod flatten;
mod jobs;
mod user;
mod userid;

pub use acl::*;
pub use common::*;
pub use crypto::*;
pub use jobs::*;
pub use user::*;
pub use userid::*;
