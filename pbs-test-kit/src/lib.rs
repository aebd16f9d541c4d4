//! The test kit: what the integration tests (`tests/`), the process tests
//! (`tests/processes/`), the benchmarks (`benches/`) and the soak run
//! (`examples/soak.rs`) share, in one place.
//!
//! - [`bins`]: the `proxmox-backup-manager` and `proxmox-backup-api`
//!   binaries of this build;
//! - [`daemon`]: a running `proxmox-backup-api`, started on port 0 and
//!   waited for by its readiness line, killed when dropped;
//! - [`https`]: the HTTPS client (keep-alive, over hyper), one-shot raw
//!   requests and raw TLS streams;
//! - [`manager`]: the `proxmox-backup-manager` runner, with the
//!   [`secrets`] registry every output it checks is held against;
//! - [`access`]: users, tokens and ACLs set up through the library;
//! - [`throttle`]: answers to failed logins held against the daemon's
//!   login throttle with the instants they were sent and answered;
//! - [`dirs`]: temporary config dirs, "nothing changed" snapshots and the
//!   golden vectors; [`edits`]: one-byte edits of a config text;
//! - [`tmpfs`]: small tmpfs mounts, a full disk; [`exfat`]: a real
//!   exFAT file system through FUSE (a USB stick's);
//! - [`privileges`]: running a child as another user (`run_as`) or under
//!   umask 000;
//! - [`pty`]: a process on a pseudo-terminal (prompts without echo);
//! - [`pause`]: a process held at a pause point of the `failpoints` build;
//! - [`refusals`]: a child whose file systems refuse unnamed files and
//!   hard links, as vfat does (a seccomp filter), or removals by path, or
//!   fail the sync of one directory (a seccomp user notification);
//! - [`keys`]: fixed test keys, the typing aid of a paperkey; [`rng`]: a
//!   seeded random number generator.
//!
//! A dev-only workspace crate (`publish = false`, a dev-dependency of the
//! root package): one build serves every test, bench and example binary,
//! and clippy checks it as any crate.

pub mod access;
pub mod bins;
pub mod daemon;
pub mod dirs;
pub mod edits;
pub mod exfat;
pub mod https;
pub mod keys;
pub mod manager;
pub mod pause;
pub mod privileges;
pub mod pty;
pub mod refusals;
pub mod rng;
pub mod secrets;
pub mod throttle;
pub mod tmpfs;

pub use daemon::ApiDaemon;
pub use dirs::{Sandbox, TestDir};
pub use keys::{key_config, raw_key, typing_aid};
pub use manager::{Manager, Run};
pub use secrets::Secrets;
