//! pbs-keystore: the API handlers, HTTPS server and command line of the
//! encryption keystore of a Proxmox Backup Server style backup server.
//!
//! The library crates do the work: `pbs-config` owns files, locks and
//! checks, `pbs-key-config` the key file format. This crate adds what faces
//! users: [`api2`] handlers (plain functions the daemon, the CLI and tests
//! call), tickets in [`auth_helpers`], privilege checks and HTTP in
//! [`server`], and the binaries in `src/bin/`.

pub mod api2;
pub mod auth_helpers;
pub mod server;
