//! Lock files: [`BackupLockGuard`], one guard type per locked config file,
//! and the lock-file removal protocol.
//!
//! Each config file's `lock_config()` returns a guard of its own type
//! ([`EncryptionKeysLock`], [`SyncLock`], ...), and a function that needs a
//! lock held takes that type: holding the right lock is checked by the
//! compiler, not at run time. The lock order is written once, in the crate
//! documentation (`lib.rs`).
//!
//! A key's lock file is removed when the key is deleted. A process that
//! opened the old file just before may then win `flock` on an inode that no
//! longer has a name, while the next process creates and locks a new file:
//! two holders. So after every `flock` we check that the name still names
//! the inode we locked, and start over if not
//! ([`DirHandle::lock`](crate::dir_handle::DirHandle::lock)). The deleter
//! unlinks the file while it still holds the lock.
//!
//! Where others may change the config dir, each of its locks is taken on
//! a mirror in the key directory first, which the `backup` user cannot
//! remove or replace ([`mirror`]); a write under it records what it wrote
//! there, so `verify` can tell a rollback ([`written`]).
//!
//! Waiters queue: the threads of one process take a lock in the order they
//! asked for it and wake as soon as it is free, and only the head of the
//! queue waits for the `flock`, in the kernel, not by polling ([`queue`]).

use std::fs::File;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Error;

use crate::dir_handle::DirHandle;
use crate::files::{self, ConfigFile};

pub(crate) mod holders;
pub use holders::without_holders;
pub(crate) mod mirror;
pub(crate) mod queue;
pub(crate) mod written;

/// A locked lock file and this thread's turn in the lock's queue. Dropping
/// it closes the file (releasing the `flock`), then wakes the next waiter.
#[derive(Debug)]
pub(crate) struct LockedFile {
    // declared before `turn`: fields drop in this order
    file: File,
    turn: queue::Turn,
}

impl LockedFile {
    pub(crate) fn new(file: File, turn: queue::Turn) -> Self {
        Self { file, turn }
    }

    /// The locked file.
    #[cfg(test)]
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Closes the file, releasing the `flock`, then gives up the turn.
    fn release(self) {
        let Self { file, turn } = self;
        drop(file);
        drop(turn);
    }
}

/// A held lock; released when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct BackupLockGuard {
    file: LockedFile,
    /// The directory holding the lock file (for the removal on delete):
    /// shared with whoever else keeps it open, not a duplicate of its
    /// descriptor.
    dir: Arc<DirHandle>,
    name: String,
    exclusive: bool,
}

impl BackupLockGuard {
    pub(crate) fn new(file: LockedFile, dir: Arc<DirHandle>, name: &str, exclusive: bool) -> Self {
        Self {
            file,
            dir,
            name: name.to_string(),
            exclusive,
        }
    }

    /// The lock file's path (for messages).
    pub fn path(&self) -> PathBuf {
        self.dir.entry_path(&self.name)
    }

    /// Whether this is an exclusive lock.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// Removes the lock file while still holding the lock, then releases it.
    /// Waiters notice the removal (see the module docs) and retry.
    pub(crate) fn remove_file(self) -> Result<(), Error> {
        self.dir.unlink(&self.name)?;
        self.file.release();
        Ok(())
    }
}

/// A config file that has a lock of its own (see [`ConfigLock`]).
pub trait LockedConfig {
    /// The config file.
    const FILE: ConfigFile;
    /// Its lock file.
    const LOCK: ConfigFile;
}

/// The exclusive lock of the config file `F`, held until dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct ConfigLock<F: LockedConfig> {
    // declared before `mirror`: released in the reverse order of taking
    guard: BackupLockGuard,
    /// Root's mirror of the lock, where there is one ([`mirror`]).
    mirror: Option<BackupLockGuard>,
    _file: PhantomData<fn() -> F>,
}

impl<F: LockedConfig> ConfigLock<F> {
    pub(crate) fn new(guard: BackupLockGuard, mirror: Option<BackupLockGuard>) -> Self {
        Self {
            guard,
            mirror,
            _file: PhantomData,
        }
    }

    /// The path of root's mirror of the lock, if one is held (for tests and
    /// messages).
    pub fn mirror_path(&self) -> Option<PathBuf> {
        self.mirror.as_ref().map(BackupLockGuard::path)
    }

    /// Root's mirror of the lock, if one is held.
    pub(crate) fn mirror(&self) -> Option<&BackupLockGuard> {
        self.mirror.as_ref()
    }

    /// The lock file's path (for messages).
    pub fn path(&self) -> PathBuf {
        self.guard.path()
    }
}

macro_rules! locked_config {
    ($(#[$doc:meta])* $marker:ident, $guard:ident, $file:expr, $lock:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $marker {}

        impl LockedConfig for $marker {
            const FILE: ConfigFile = $file;
            const LOCK: ConfigFile = $lock;
        }

        #[doc = concat!("The held lock of `", stringify!($marker), "`.")]
        pub type $guard = ConfigLock<$marker>;
    };
}

locked_config!(
    /// `encryption-keys.cfg`.
    EncryptionKeysCfg,
    EncryptionKeysLock,
    files::ENCRYPTION_KEYS_CFG,
    files::ENCRYPTION_KEYS_LOCK
);
locked_config!(
    /// `sync.cfg`.
    SyncCfg,
    SyncLock,
    files::SYNC_CFG,
    files::SYNC_LOCK
);
locked_config!(
    /// `user.cfg`.
    UserCfg,
    UserLock,
    files::USER_CFG,
    files::USER_LOCK
);
locked_config!(
    /// `acl.cfg`.
    AclCfg,
    AclLock,
    files::ACL_CFG,
    files::ACL_LOCK
);
locked_config!(
    /// `token.shadow`.
    TokenShadow,
    TokenShadowLock,
    files::TOKEN_SHADOW,
    files::TOKEN_SHADOW_LOCK
);
locked_config!(
    /// `shadow.json`.
    ShadowJson,
    ShadowLock,
    files::SHADOW_JSON,
    files::SHADOW_LOCK
);

/// The lock of one key's file (`encryption-keys/<id>.enc.lck`), taken after
/// the config lock.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct KeyFileLock {
    pub(crate) guard: BackupLockGuard,
}
