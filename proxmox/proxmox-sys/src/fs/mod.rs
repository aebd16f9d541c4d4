//! File system helpers: create options, atomic replacement, directories, locks.
//!
//! Invariants a maintainer must keep:
//! - a file written by [`replace_file`] is never visible half-written: data goes
//!   to a temp file beside the target (`<name>.tmp_XXXXXX`), whose mode and
//!   owner are set *before* any data is written, and which is renamed over the
//!   target only once complete; on every failure path the temp file is removed;
//! - every error message names the path it concerns.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Error, format_err};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

mod dir;
mod file;
mod lock;

pub use dir::{create_path, ensure_dir_exists};
pub use file::{
    TmpFile, check_utf8, file_get_contents, file_get_optional_contents, file_read_optional_string,
    file_read_string, fsync_parent_dir, into_utf8, invalid_utf8, make_tmp_file, replace_file,
    write_tmp_file,
};
pub use lock::{FlockWait, lock_file, open_file_locked, try_lock_file};

/// Mode and ownership to apply to a file or directory that is created.
///
/// All builders are `const fn`, so options can be `const` items:
///
/// ```
/// use nix::sys::stat::Mode;
/// use proxmox_sys::fs::CreateOptions;
///
/// const KEY_FILE: CreateOptions = CreateOptions::new().perm(Mode::from_bits_truncate(0o640));
/// assert_eq!(KEY_FILE.get_perm(), Some(Mode::from_bits_truncate(0o640)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreateOptions {
    perm: Option<Mode>,
    owner: Option<Uid>,
    group: Option<Gid>,
}

impl CreateOptions {
    /// Options that change nothing: the OS default mode and the caller's owner.
    pub const fn new() -> Self {
        Self {
            perm: None,
            owner: None,
            group: None,
        }
    }

    /// Sets the permission bits (applied exactly, independent of the umask).
    pub const fn perm(mut self, perm: Mode) -> Self {
        self.perm = Some(perm);
        self
    }

    /// Sets the owning user.
    pub const fn owner(mut self, owner: Uid) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Sets the owning group.
    pub const fn group(mut self, group: Gid) -> Self {
        self.group = Some(group);
        self
    }

    /// The permission bits to apply, if any.
    pub const fn get_perm(&self) -> Option<Mode> {
        self.perm
    }

    /// The owning user to apply, if any.
    pub const fn get_owner(&self) -> Option<Uid> {
        self.owner
    }

    /// The owning group to apply, if any.
    pub const fn get_group(&self) -> Option<Gid> {
        self.group
    }

    /// Applies owner, group and mode to an open file; `path` is only used in
    /// error messages.
    ///
    /// Ownership is changed first: `fchown` clears set-id bits, and the mode is
    /// meant to be exactly what was asked for.
    pub fn apply_to(&self, file: &File, path: &Path) -> Result<(), Error> {
        if self.owner.is_some() || self.group.is_some() {
            std::os::unix::fs::fchown(
                file,
                self.owner.map(|uid| uid.as_raw()),
                self.group.map(|gid| gid.as_raw()),
            )
            .map_err(|err| format_err!("unable to set ownership of {path:?} - {err}"))?;
        }
        if let Some(perm) = self.perm {
            file.set_permissions(std::fs::Permissions::from_mode(perm.bits()))
                .map_err(|err| format_err!("unable to set mode of {path:?} - {err}"))?;
        }
        Ok(())
    }
}
