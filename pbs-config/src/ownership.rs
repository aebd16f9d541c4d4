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

use crate::dir_handle::{DirPolicy, EntryKind, EntryStat};
use crate::files::{
    CONFIG_DIR_MODE, FileClass, KEY_DIR_MODE, ROOT_LOCK_CLASS, ROOT_LOCK_DIR_MODE, TRASH_CLASS,
    TRASH_DIR_MODE,
};

/// Why no reader trusts a file ([`Ownership::distrust`]); displayed as
/// what follows the file's path in a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distrust {
    /// Not a regular file: what it is instead ("a symbolic link", ...).
    NotAFile(&'static str),
    /// Owned by a user that is neither root nor the file's owner.
    Owner { found: u32, expected: u32 },
    /// A mode that lets others than its owner change it.
    Mode { found: u32, expected: u32 },
}

impl fmt::Display for Distrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Distrust::NotAFile(kind) => write!(f, "is {kind}, not a regular file"),
            Distrust::Owner { found, expected } => write!(
                f,
                "is owned by {}, expected {}",
                user_name_of(found),
                user_name_of(expected)
            ),
            Distrust::Mode { found, .. } => {
                write!(f, "has mode {found:04o}, which lets others change it")
            }
        }
    }
}

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

    /// Owner and group of a file of `class`.
    pub fn owner_of(&self, class: FileClass) -> (Uid, Gid) {
        match class {
            FileClass::Config => (self.file_uid, self.file_gid),
            FileClass::Private => match self.policy {
                OwnershipPolicy::RootBackup => (self.file_uid, Gid::from_raw(0)),
                OwnershipPolicy::CurrentUser => (self.file_uid, self.file_gid),
            },
            FileClass::BackupConfig | FileClass::Lock => (self.lock_uid, self.lock_gid),
        }
    }

    /// Mode and owner of a new file of `class`.
    pub fn options_for(&self, class: FileClass) -> CreateOptions {
        let (uid, gid) = self.owner_of(class);
        Self::options(uid, gid, class.mode())
    }

    /// Why no reader trusts a file of `class` found as `stat`, if none
    /// does: it is not a regular file, its owner is neither root nor the
    /// class's owner, or others may write it. The config dir belongs to
    /// `backup`, who could otherwise put a file of its own in place of one
    /// root alone writes.
    pub fn distrust(&self, class: FileClass, stat: &EntryStat) -> Option<Distrust> {
        if stat.kind != EntryKind::File {
            return Some(Distrust::NotAFile(stat.kind_name()));
        }
        let (uid, _) = self.owner_of(class);
        if stat.uid != 0 && stat.uid != uid.as_raw() {
            return Some(Distrust::Owner {
                found: stat.uid,
                expected: uid.as_raw(),
            });
        }
        if stat.mode & class.untrusted_mode_bits() != 0 {
            return Some(Distrust::Mode {
                found: stat.mode,
                expected: class.mode(),
            });
        }
        None
    }

    /// Refuses a file of `class` no reader may trust ([`Self::distrust`]),
    /// with what to do about it.
    pub fn check_trusted(
        &self,
        class: FileClass,
        stat: &EntryStat,
        path: &std::path::Path,
    ) -> Result<(), Error> {
        match self.distrust(class, stat) {
            None => Ok(()),
            Some(why @ Distrust::Owner { expected, .. }) => anyhow::bail!(
                "{path:?} {why} - refusing to trust it (if you did not put it there, someone \
                 with the backup user's rights did; inspect it, then 'chown {}' it or run \
                 'proxmox-backup-manager encryption-key verify')",
                user_name_of(expected),
            ),
            Some(why @ Distrust::Mode { expected, .. }) => anyhow::bail!(
                "{path:?} {why} - refusing to trust it (fix with 'chmod {expected:04o}')"
            ),
            Some(why) => anyhow::bail!("{path:?} {why} - refusing to use it"),
        }
    }

    /// Options for the key directory (0750).
    pub fn key_dir_options(&self) -> CreateOptions {
        Self::options(self.file_uid, self.file_gid, KEY_DIR_MODE)
    }

    /// Who may own the key directory and what it must not allow: root's
    /// (or this policy's file owner's), writable by its owner alone.
    pub fn key_dir_policy(&self) -> DirPolicy {
        DirPolicy {
            uid: self.file_uid.as_raw(),
            forbidden_mode_bits: 0o022,
        }
    }

    /// Options for the trash directory (0700, root:root as root).
    pub fn trash_dir_options(&self) -> CreateOptions {
        let (uid, gid) = self.owner_of(TRASH_CLASS);
        Self::options(uid, gid, TRASH_DIR_MODE)
    }

    /// Options for the root lock directory (0700, root:root as root).
    pub fn root_lock_dir_options(&self) -> CreateOptions {
        let (uid, gid) = self.owner_of(ROOT_LOCK_CLASS);
        Self::options(uid, gid, ROOT_LOCK_DIR_MODE)
    }

    /// Options for a config dir created by the library (0700, owned like
    /// the lock files: backup:backup as root, as upstream).
    pub fn config_dir_options(&self) -> CreateOptions {
        Self::options(self.lock_uid, self.lock_gid, CONFIG_DIR_MODE)
    }
}

/// The name of `uid` (its number if it has none), for messages.
pub(crate) fn user_name_of(uid: u32) -> String {
    user_name(Uid::from_raw(uid))
}

/// The name of `gid` (its number if it has none), for messages.
pub(crate) fn group_name_of(gid: u32) -> String {
    group_name(Gid::from_raw(gid))
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
