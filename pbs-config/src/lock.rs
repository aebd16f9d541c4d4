//! Lock files: [`BackupLockGuard`] and the lock-file removal protocol.
//!
//! A key's lock file is removed when the key is deleted. A process that
//! opened the old file just before may then win `flock` on an inode that no
//! longer has a name, while the next process creates and locks a new file:
//! two holders. So after every `flock` we check that the path still names
//! the inode we locked, and start over if not. The deleter unlinks the file
//! while it still holds the lock.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Error, bail, format_err};

use proxmox_sys::fs::{CreateOptions, open_file_locked};

/// A held lock; released when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct BackupLockGuard {
    file: File,
    path: PathBuf,
    exclusive: bool,
}

impl BackupLockGuard {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is an exclusive lock.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// Removes the lock file while still holding the lock, then releases it.
    /// Waiters notice the removal (see the module docs) and retry.
    pub(crate) fn remove_file(self) -> Result<(), Error> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => bail!("unable to remove lock file {:?} - {err}", self.path),
        }
        drop(self.file);
        Ok(())
    }
}

/// Opens and locks `path`, creating it with `options` if needed, and checks
/// after locking that `path` still names the locked file (retrying if a
/// deleter removed it meanwhile). Waits at most `timeout` in total.
pub(crate) fn lock_file_checked(
    path: &Path,
    timeout: Duration,
    exclusive: bool,
    options: CreateOptions,
) -> Result<BackupLockGuard, Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let file = open_file_locked(path, remaining, exclusive, options)?;
        let locked = file
            .metadata()
            .map_err(|err| format_err!("unable to stat lock file {path:?} - {err}"))?;
        match std::fs::symlink_metadata(path) {
            Ok(current) if current.dev() == locked.dev() && current.ino() == locked.ino() => {
                return Ok(BackupLockGuard {
                    file,
                    path: path.to_owned(),
                    exclusive,
                });
            }
            // removed or replaced while we waited: lock the file that is there now
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => bail!("unable to stat lock file {path:?} - {err}"),
        }
        if Instant::now() >= deadline {
            bail!(
                "unable to acquire lock {path:?} - timed out after {:.1}s",
                timeout.as_secs_f64()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_survives_removal_race() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.enc.lck");
        let timeout = Duration::from_secs(2);
        let first = lock_file_checked(&path, timeout, true, CreateOptions::new()).unwrap();
        // a waiter opens the current file before it is removed
        let stale = File::open(&path).unwrap();
        first.remove_file().unwrap();
        // the stale descriptor can lock its inode, but the checked lock
        // must end up on the file the path names now
        stale.try_lock().unwrap();
        let second = lock_file_checked(&path, timeout, true, CreateOptions::new()).unwrap();
        assert!(path.exists());
        let meta = std::fs::metadata(&path).unwrap();
        assert_ne!(meta.ino(), stale.metadata().unwrap().ino());
        drop(second);
    }

    #[test]
    fn timeout_names_the_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".x.lck");
        let _held =
            lock_file_checked(&path, Duration::from_secs(1), true, CreateOptions::new()).unwrap();
        let err = lock_file_checked(&path, Duration::from_millis(30), true, CreateOptions::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains(".x.lck") && err.contains("timed out"), "{err}");
    }
}
