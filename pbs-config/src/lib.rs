//! Keystore configuration: every path, mode, owner and lock of the config dir.
//!
//! The config dir and the ownership policy travel together as one value,
//! [`ConfigDir`]. Every operation is a method on it, so tests and tools can
//! point it at any directory; the upstream-named free functions
//! ([`encryption_keys::config`], [`encryption_keys::store_key`], ...) are thin
//! wrappers over [`ConfigDir::default_dir`] (`$PBS_CONFIG_DIR`, else
//! `/etc/proxmox-backup`).
//!
//! Rules a maintainer must keep (DESIGN.md section 4):
//! - lock order: `.encryption-keys.lck`, then `.sync.lck`, then
//!   `encryption-keys/<id>.enc.lck`; never take a lock this process already
//!   holds (a second `flock` on a new descriptor waits for the timeout);
//! - config files are replaced atomically, so readers never lock;
//! - every config entry has its key file: store writes the key file before
//!   the config, delete removes the config entry before the key file.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod acl;
mod cache;
pub mod cached_user_info;
mod context;
pub mod encryption_keys;
mod error;
pub mod failpoint;
mod key_index;
mod key_sections;
mod lock;
mod ownership;
pub mod shadow;
pub mod sync;
pub mod token_shadow;
pub mod user;
pub mod verify;

use std::path::Path;
use std::time::Duration;

use anyhow::{Error, bail, format_err};

pub use context::{ConfigDir, DEFAULT_CONFIG_DIR};
pub use error::KeystoreError;
pub use key_index::KeyIndex;
pub use key_sections::KeySections;
pub use lock::BackupLockGuard;
pub use ownership::{Ownership, OwnershipPolicy};

/// How long writers wait for a lock before giving up.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The `backup` user.
pub fn backup_user() -> Result<nix::unistd::User, Error> {
    match nix::unistd::User::from_name("backup")? {
        Some(user) => Ok(user),
        None => bail!("unable to lookup 'backup' user - create it (adduser --system backup)"),
    }
}

/// The `backup` group.
pub fn backup_group() -> Result<nix::unistd::Group, Error> {
    match nix::unistd::Group::from_name("backup")? {
        Some(group) => Ok(group),
        None => bail!("unable to lookup 'backup' group - create it (addgroup --system backup)"),
    }
}

/// Opens and locks a lock file in the default config dir's ownership.
///
/// `timeout` defaults to [`DEFAULT_LOCK_TIMEOUT`].
pub fn open_backup_lockfile<P: AsRef<Path>>(
    path: P,
    timeout: Option<Duration>,
    exclusive: bool,
) -> Result<BackupLockGuard, Error> {
    ConfigDir::default_dir()?.open_backup_lockfile(path, timeout, exclusive)
}

/// Atomically replaces a config file with the default config dir's
/// ownership (0640, root:backup as root).
pub fn replace_backup_config<P: AsRef<Path>>(path: P, data: &[u8]) -> Result<(), Error> {
    ConfigDir::default_dir()?.replace_backup_config(path, data)
}

/// Refuses a change made on a stale view: the digests of the config as read
/// by the caller and as it is now must be equal.
pub fn detect_modified_configuration_file(
    digest1: &[u8; 32],
    digest2: &[u8; 32],
) -> Result<(), Error> {
    if digest1 != digest2 {
        return Err(KeystoreError::DigestMismatch.into());
    }
    Ok(())
}

/// Parses a hex config digest as given by API clients.
pub fn parse_digest(digest: &str) -> Result<[u8; 32], Error> {
    let mut bytes = [0u8; 32];
    if digest.len() != 64 || hex::decode_to_slice(digest, &mut bytes).is_err() {
        bail!("invalid digest - expected 64 hex digits (the SHA-256 given by list)");
    }
    Ok(bytes)
}

/// Reads a small text file whole; a missing file gives `Ok(None)`. Refuses
/// files larger than `max` bytes and invalid UTF-8, naming the path.
pub(crate) fn read_optional_limited(path: &Path, max: u64) -> Result<Option<String>, Error> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => bail!("unable to open {path:?} - {err}"),
    };
    let mut data = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut data)
        .map_err(|err| format_err!("unable to read {path:?} - {err}"))?;
    if data.len() as u64 > max {
        bail!("{path:?} is larger than the {max} byte limit");
    }
    proxmox_sys::fs::into_utf8(data, path).map(Some)
}

/// Reads a JSON object of strings (`token.shadow`, `shadow.json`); a
/// missing or empty file is an empty map. Parse errors give line and column
/// only, never the file's contents (it holds password hashes).
pub(crate) fn read_hash_map(
    path: &Path,
    max: u64,
) -> Result<std::collections::BTreeMap<String, String>, Error> {
    let Some(raw) = read_optional_limited(path, max)? else {
        return Ok(Default::default());
    };
    if raw.trim().is_empty() {
        return Ok(Default::default());
    }
    serde_json::from_str(&raw).map_err(|err| {
        format_err!(
            "unable to parse {path:?} - not a JSON object of strings (line {}, column {})",
            err.line(),
            err.column()
        )
    })
}

/// Refuses a guard that is not the exclusive lock `path`.
pub(crate) fn check_lock(held: &BackupLockGuard, path: &Path) -> Result<(), Error> {
    if held.path() != path || !held.is_exclusive() {
        bail!(
            "internal error - operation needs the exclusive lock {path:?}, got {:?}",
            held.path()
        );
    }
    Ok(())
}
