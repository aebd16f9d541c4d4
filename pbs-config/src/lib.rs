//! Keystore configuration: every path, mode, owner and lock of the config dir.
//!
//! The config dir and the ownership policy travel together as one value,
//! [`ConfigDir`]. Every operation is a method on it, so tests and tools can
//! point it at any directory; the upstream-named free functions
//! ([`encryption_keys::config`], [`encryption_keys::store_key`], ...) are thin
//! wrappers over [`ConfigDir::default_dir`] (`$PBS_CONFIG_DIR`, else
//! `/etc/proxmox-backup`).
//!
//! Rules a maintainer must keep (DESIGN.md sections 4 and 7):
//! - the lock order, the one place it is written: outermost, a key
//!   rotation's `encryption-keys/.rotate/rotate.lck` (held from its plan
//!   to its end, see [`rotation`]); then `.encryption-keys.lck`
//!   ([`EncryptionKeysLock`]), then `.sync.lck` ([`SyncLock`]), then
//!   `encryption-keys/<id>.enc.lck` ([`KeyFileLock`]); the access files
//!   after all of those, in this order: `.user.lck` ([`UserLock`]),
//!   `.acl.lck` ([`AclLock`]); then `encryption-keys/.audit/pending.lck`
//!   ([`audit::PendingLock`], shared by an audited operation from its
//!   intent to its outcome); then `token.shadow.lock` ([`TokenShadowLock`])
//!   and `shadow.json.lock` ([`ShadowLock`]), which a user or token change
//!   takes after its intent (each held only while its file is written);
//!   innermost, after every other lock: `encryption-keys/.audit/log.lck`
//!   ([`audit::AuditLock`], for each append, released before any other
//!   lock is taken; see [`audit`]).
//!   Each lock file of the config dir itself (the `.lck`/`.lock` files
//!   above, not those in `encryption-keys/`) is preceded by root's mirror
//!   of it, `encryption-keys/.locks/<its name>`, where others may change
//!   the config dir: [`ConfigDir::lock_config_file`] takes both.
//!   Several key file locks at once only under the config lock, as a
//!   batch of new keys' stores takes them (`group_commit.rs`).
//!   Never take a lock this process
//!   already holds (a second `flock` on a new descriptor waits for the
//!   timeout); a function that needs a lock held takes its guard type;
//! - every file of the config dir is reached through a directory handle
//!   ([`dir_handle`]), never by a path: the config dir belongs to the
//!   `backup` user, who can swap any name in it; what each file's owner
//!   and mode must be is written once, in [`files`];
//! - config files are replaced atomically, so readers never lock;
//! - every config entry has its key file: store writes the key file before
//!   the config, delete removes the config entry before the key file;
//! - nothing holding key material is unlinked except by a purge: delete,
//!   repair and a failed store move key files into the trash ([`trash`]);
//!   `trash purge` and `remove --purge` alone destroy them.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod acl;
pub mod audit;
mod cache;
pub mod cached_user_info;
mod context;
pub mod dir_handle;
pub mod encryption_keys;
mod error;
pub mod export;
pub mod failpoint;
pub mod files;
mod group_commit;
mod key_index;
mod key_sections;
mod lock;
mod ownership;
pub mod rotation;
pub mod shadow;
pub mod sync;
pub mod token_shadow;
pub mod trash;
pub mod user;
pub mod verified_copy;
pub mod verify;

use std::time::Duration;

use anyhow::{Error, bail, format_err};

pub use context::{ConfigDir, DEFAULT_CONFIG_DIR};
pub use error::{KeyConflict, KeystoreError};
pub use key_index::{FoundEntry, KeyIndex, ListEntry};
pub use key_sections::{KeySections, KeyTaken};
pub use lock::{
    AclLock, BackupLockGuard, ConfigLock, EncryptionKeysLock, KeyFileLock, LockedConfig,
    ShadowLock, SyncLock, TokenShadowLock, UserLock, without_holders,
};
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

/// Reads a JSON object of strings (`token.shadow`, `shadow.json`); a
/// missing or empty file is an empty map. Parse errors give line and column
/// only, never the file's contents (it holds password hashes).
pub(crate) fn read_hash_map(
    dir: &ConfigDir,
    file: &files::ConfigFile,
) -> Result<std::collections::BTreeMap<String, String>, Error> {
    let raw = dir.read_text(file)?;
    if raw.trim().is_empty() {
        return Ok(Default::default());
    }
    serde_json::from_str(&raw).map_err(|err| {
        format_err!(
            "unable to parse {:?} - not a JSON object of strings (line {}, column {})",
            dir.path(file.name),
            err.line(),
            err.column()
        )
    })
}
