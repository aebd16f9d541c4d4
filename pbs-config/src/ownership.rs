//! Who owns the files of the config dir, as one explicit value.
//!
//! As root with a `backup` user present, config and key files are
//! root:backup and lock files backup:backup ([`OwnershipPolicy::RootBackup`]).
//! Otherwise everything belongs to the current user, with the `backup` group
//! if the user is a member of it, else the user's own group
//! ([`OwnershipPolicy::CurrentUser`]). This replaces upstream's `cfg!(test)`
//! user swap: the policy is chosen once and printed by `verify`.

use std::fmt;

use anyhow::Error;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use proxmox_sys::fs::CreateOptions;

/// Mode of `encryption-keys.cfg`, `sync.cfg` and the key files.
pub const CONFIG_FILE_MODE: u32 = 0o640;
/// Mode of the `encryption-keys/` directory.
pub const KEY_DIR_MODE: u32 = 0o750;
/// Mode of files only their owner may read (`shadow.json`, private keys).
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of lock files.
pub const LOCK_FILE_MODE: u32 = 0o660;
/// Mode of a config dir created by the library (as upstream PBS lays out
/// `/etc/proxmox-backup`: the backup user's, nobody else may look inside).
pub const CONFIG_DIR_MODE: u32 = 0o700;

/// Which rule chose the owners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnershipPolicy {
    /// Running as root with a `backup` user: root:backup files, backup:backup locks.
    RootBackup,
    /// Everything owned by the current user (group `backup` if a member).
    CurrentUser,
}

/// Owners to apply to files created in the config dir.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ownership {
    /// The rule in force.
    pub policy: OwnershipPolicy,
    /// Owner of config files, key files and the key directory.
    pub file_uid: Uid,
    /// Group of config files, key files and the key directory.
    pub file_gid: Gid,
    /// Owner of lock files.
    pub lock_uid: Uid,
    /// Group of lock files.
    pub lock_gid: Gid,
}

impl Ownership {
    /// The policy for this process (see the module docs).
    pub fn detect() -> Result<Self, Error> {
        let backup = nix::unistd::User::from_name("backup")?;
        let euid = nix::unistd::geteuid();
        match backup {
            Some(backup) if euid.is_root() => Ok(Self {
                policy: OwnershipPolicy::RootBackup,
                file_uid: Uid::from_raw(0),
                file_gid: backup.gid,
                lock_uid: backup.uid,
                lock_gid: backup.gid,
            }),
            _ => Self::current_user(),
        }
    }

    /// Everything owned by the current user; group `backup` if the user is
    /// a member, else the user's own group.
    pub fn current_user() -> Result<Self, Error> {
        let uid = nix::unistd::geteuid();
        let own_gid = nix::unistd::getegid();
        let gid = match nix::unistd::Group::from_name("backup")? {
            Some(backup)
                if backup.gid == own_gid || nix::unistd::getgroups()?.contains(&backup.gid) =>
            {
                backup.gid
            }
            _ => own_gid,
        };
        Ok(Self {
            policy: OwnershipPolicy::CurrentUser,
            file_uid: uid,
            file_gid: gid,
            lock_uid: uid,
            lock_gid: gid,
        })
    }

    fn options(uid: Uid, gid: Gid, mode: u32) -> CreateOptions {
        CreateOptions::new()
            .perm(Mode::from_bits_truncate(mode))
            .owner(uid)
            .group(gid)
    }

    /// Options for config and key files (0640).
    pub fn config_file_options(&self) -> CreateOptions {
        Self::options(self.file_uid, self.file_gid, CONFIG_FILE_MODE)
    }

    /// Options for the key directory (0750).
    pub fn key_dir_options(&self) -> CreateOptions {
        Self::options(self.file_uid, self.file_gid, KEY_DIR_MODE)
    }

    /// Options for a config dir created by the library (0700, owned like
    /// the lock files: backup:backup as root, as upstream).
    pub fn config_dir_options(&self) -> CreateOptions {
        Self::options(self.lock_uid, self.lock_gid, CONFIG_DIR_MODE)
    }

    /// Options for `token.shadow` (0640, backup:backup as root, as upstream).
    pub fn token_shadow_options(&self) -> CreateOptions {
        Self::options(self.lock_uid, self.lock_gid, CONFIG_FILE_MODE)
    }

    /// Options for files only the owner may read: `shadow.json`, the ticket
    /// signing key (0600, root:root as root).
    pub fn private_file_options(&self) -> CreateOptions {
        let gid = match self.policy {
            OwnershipPolicy::RootBackup => Gid::from_raw(0),
            OwnershipPolicy::CurrentUser => self.file_gid,
        };
        Self::options(self.file_uid, gid, PRIVATE_FILE_MODE)
    }

    /// Options for lock files (0660).
    pub fn lock_file_options(&self) -> CreateOptions {
        Self::options(self.lock_uid, self.lock_gid, LOCK_FILE_MODE)
    }
}

fn user_name(uid: Uid) -> String {
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}

fn group_name(gid: Gid) -> String {
    match nix::unistd::Group::from_gid(gid) {
        Ok(Some(group)) => group.name,
        _ => gid.to_string(),
    }
}

impl fmt::Display for Ownership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = match self.policy {
            OwnershipPolicy::RootBackup => "root with a backup user",
            OwnershipPolicy::CurrentUser => "current user",
        };
        write!(
            f,
            "{rule}: files {}:{}, locks {}:{}",
            user_name(self.file_uid),
            group_name(self.file_gid),
            user_name(self.lock_uid),
            group_name(self.lock_gid),
        )
    }
}
