//! Root's own copy of each lock of the config dir, where the `backup` user
//! cannot break it.
//!
//! The config dir belongs to the `backup` user (as upstream), and so do the
//! names in it: while a root writer holds `.encryption-keys.lck`, `backup`
//! can unlink it, or rename a new file over it, and the next root writer
//! locks another inode and runs beside the first. That is a lost update: a
//! stored key's config entry overwritten, its key file left an orphan.
//!
//! So where others may change the config dir
//! ([`DirHandle::others_may_change`]: root's processes in the backup user's
//! `/etc/proxmox-backup`), a lock of it is first taken on a file of the same
//! name in `encryption-keys/.locks/` (root:root 0700 inside the key
//! directory, which is root's; the files root:root 0600): `backup` can
//! neither remove nor replace those, nor even open them. The upstream lock
//! file is still taken after it, for upstream's processes and a daemon
//! running as `backup`, which know only that one.
//!
//! Where the mirror cannot help (docs/security.md, "Known and left
//! alone"): the key directory itself is a name in the config dir, so
//! `backup` can rename it away. A writer checks, once it holds the mirror,
//! that the key directory's name still names the directory it locked in,
//! and refuses otherwise. A key directory that is missing while the config
//! lists keys (or sync jobs name keys), a symbolic link or not root's gets
//! no mirror: operations that
//! need the key directory refuse it anyway and `verify` reports it, but the
//! writers that do not need it (archive, sync jobs, users, ACLs) then rely
//! on the upstream lock file alone. Nothing can be written on a read-only
//! file system, so there is no mirror there either.

use anyhow::{Error, bail};
use rustix::fs::StatVfsMountFlags;

use crate::ConfigDir;
use crate::dir_handle::DirHandle;
use crate::files::{KEY_DIR_NAME, ROOT_LOCK_CLASS, ROOT_LOCK_DIR_NAME};
use crate::lock::BackupLockGuard;

/// Takes root's mirror of the config dir's lock file `name` (exclusive), if
/// `base` is a config dir others may change and its key directory is usable;
/// `None` otherwise (see the module docs).
///
/// # Locking
///
/// Taken right before the lock file `name` itself, in the lock order of
/// the crate documentation.
pub(crate) fn lock_mirror(
    dir: &ConfigDir,
    base: &DirHandle,
    name: &str,
) -> Result<Option<BackupLockGuard>, Error> {
    if !wanted(base)? {
        return Ok(None);
    }
    let keys = dir.encryption_keys();
    let key_dir = match keys.open_key_dir(base) {
        Ok(Some(key_dir)) => key_dir,
        Ok(None) if keys.refuse_new_key_dir().is_ok() => keys.ensure_key_dir(base)?,
        // missing while the config lists keys (or jobs name some), a link,
        // not root's
        Ok(None) | Err(_) => return Ok(None),
    };
    let ownership = dir.ownership();
    let locks = key_dir.ensure_dir(
        ROOT_LOCK_DIR_NAME,
        ownership.root_lock_dir_options(),
        ownership.key_dir_policy(),
    )?;
    let guard = dir.lock_in_with(locks, name, true, ownership.options_for(ROOT_LOCK_CLASS))?;
    // renamed away while we waited (and maybe a new one made by another
    // writer): the mirror would exclude nobody
    let locked_in = key_dir.identity()?;
    if base.stat(KEY_DIR_NAME)?.map(|now| (now.dev, now.ino)) != Some(locked_in) {
        bail!(
            "key directory {:?} was moved while this process waited for {:?} - put it back \
             ('proxmox-backup-manager encryption-key verify' shows what is missing), then retry",
            key_dir.path(),
            guard.path()
        );
    }
    Ok(Some(guard))
}

/// Whether root's processes take a mirror in the config dir `base`: one
/// others may change, on a writable file system. Where one is wanted but
/// none is held, the key directory (and root's record of its writes in
/// it) is missing while needed, a link or not root's.
pub(crate) fn wanted(base: &DirHandle) -> Result<bool, Error> {
    Ok(base.others_may_change()? && !is_read_only(base))
}

/// Whether the file system of `dir` is mounted read-only.
fn is_read_only(dir: &DirHandle) -> bool {
    rustix::fs::fstatvfs(dir).is_ok_and(|stat| stat.f_flag.contains(StatVfsMountFlags::RDONLY))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::lock::queue::{LockKey, waiting};

    /// A config dir in a fresh temp dir with `mode`.
    fn config_dir(mode: u32) -> (tempfile::TempDir, ConfigDir) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        let dir = ConfigDir::new(tmp.path()).unwrap();
        (tmp, dir)
    }

    #[test]
    fn no_mirror_where_nobody_else_may_change_the_config_dir() {
        let (tmp, dir) = config_dir(0o700);
        let lock = dir.encryption_keys().lock_config().unwrap();
        assert_eq!(lock.mirror_path(), None);
        assert!(!tmp.path().join(KEY_DIR_NAME).exists());
    }

    #[test]
    fn a_config_dir_others_may_change_gets_a_mirror_only_its_owner_may_open() {
        // group- and world-writable: others may replace its lock files
        let (tmp, dir) = config_dir(0o777);
        let lock = dir.encryption_keys().lock_config().unwrap();
        let locks = tmp.path().join(KEY_DIR_NAME).join(ROOT_LOCK_DIR_NAME);
        let mirror = locks.join(".encryption-keys.lck");
        assert_eq!(lock.mirror_path(), Some(mirror.clone()));
        let euid = rustix::process::geteuid().as_raw();
        for (path, mode) in [(&locks, 0o700), (&mirror, 0o600)] {
            let meta = std::fs::symlink_metadata(path).unwrap();
            assert_eq!((meta.uid(), meta.mode() & 0o7777), (euid, mode), "{path:?}");
        }
        // the lock file of the config dir is taken as well
        let lock_file = std::fs::File::open(tmp.path().join(".encryption-keys.lck")).unwrap();
        assert!(lock_file.try_lock().is_err());
        // and so is the mirror: another holder of the removed lock file's
        // name does not get past it
        std::fs::remove_file(tmp.path().join(".encryption-keys.lck")).unwrap();
        assert!(std::fs::File::open(&mirror).unwrap().try_lock().is_err());
        drop(lock);
        std::fs::File::open(&mirror).unwrap().try_lock().unwrap();
    }

    #[test]
    fn a_key_dir_moved_while_waiting_for_the_mirror_is_refused() {
        let (tmp, dir) = config_dir(0o777);
        let held = dir.encryption_keys().lock_config().unwrap();
        let locks = tmp.path().join(KEY_DIR_NAME).join(ROOT_LOCK_DIR_NAME);
        let stat = std::fs::metadata(&locks).unwrap();
        let key = LockKey::new(stat.dev(), stat.ino(), ".encryption-keys.lck");
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| dir.encryption_keys().lock_config());
            let give_up = Instant::now() + Duration::from_secs(10);
            while waiting(&key) == 0 {
                assert!(Instant::now() < give_up, "the waiter never queued");
                std::thread::yield_now();
            }
            std::fs::rename(tmp.path().join(KEY_DIR_NAME), tmp.path().join("moved")).unwrap();
            drop(held);
            let err = waiter.join().unwrap().unwrap_err().to_string();
            assert!(
                err.contains(&format!(
                    "key directory {:?} was moved while this process waited",
                    tmp.path().join(KEY_DIR_NAME)
                )),
                "{err}"
            );
        });
    }
}
