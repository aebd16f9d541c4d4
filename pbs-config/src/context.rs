//! [`ConfigDir`]: the config directory and its ownership policy, as one value.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use anyhow::{Error, format_err};

use proxmox_sys::fs::{CreateOptions, ensure_dir_exists};

use proxmox_section_config::SectionConfigData;

use crate::cache::ConfigCache;
use crate::key_index::KeyIndex;
use crate::key_sections::KeySections;
use crate::lock::{BackupLockGuard, lock_file_checked};
use crate::{DEFAULT_LOCK_TIMEOUT, Ownership, failpoint};

/// The config dir when neither `--config-dir` nor `$PBS_CONFIG_DIR` says otherwise.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/proxmox-backup";

/// A config directory: its path, who owns what is created in it, how long
/// to wait for locks, and the parsed configs it caches.
///
/// Share one value (the free functions use [`ConfigDir::default_dir`]) so
/// the cache is reused: a parsed config is kept while its file is unchanged.
pub struct ConfigDir {
    base: PathBuf,
    ownership: Ownership,
    lock_timeout: Duration,
    pub(crate) keys_cache: ConfigCache<KeyIndex>,
    /// What this process's last key store write left in
    /// `encryption-keys.cfg`, for the next writer (see
    /// `EncryptionKeys::sections_locked`).
    pub(crate) written_keys: Mutex<Option<KeySections>>,
    pub(crate) sync_cache: ConfigCache<SectionConfigData>,
    pub(crate) user_cache: ConfigCache<SectionConfigData>,
}

impl std::fmt::Debug for ConfigDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigDir")
            .field("base", &self.base)
            .field("ownership", &self.ownership)
            .field("lock_timeout", &self.lock_timeout)
            .finish()
    }
}

static DEFAULT_DIRS: LazyLock<Mutex<HashMap<PathBuf, Arc<ConfigDir>>>> =
    LazyLock::new(Default::default);

impl ConfigDir {
    /// A config dir at `base` with the ownership policy of this process
    /// ([`Ownership::detect`]).
    pub fn new<P: AsRef<Path>>(base: P) -> Result<Self, Error> {
        Self::with_ownership(base, Ownership::detect()?)
    }

    /// A config dir at `base` with an explicit ownership policy.
    pub fn with_ownership<P: AsRef<Path>>(base: P, ownership: Ownership) -> Result<Self, Error> {
        let base = base.as_ref();
        // stored paths are absolute, as upstream writes them
        let base = std::path::absolute(base)
            .map_err(|err| format_err!("invalid config dir {base:?} - {err}"))?;
        Ok(Self {
            base,
            ownership,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            keys_cache: ConfigCache::default(),
            written_keys: Mutex::new(None),
            sync_cache: ConfigCache::default(),
            user_cache: ConfigCache::default(),
        })
    }

    /// Sets how long writers wait for a lock.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The path of the default config dir: `$PBS_CONFIG_DIR`, else
    /// [`DEFAULT_CONFIG_DIR`].
    pub fn default_path() -> PathBuf {
        match std::env::var_os("PBS_CONFIG_DIR") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => PathBuf::from(DEFAULT_CONFIG_DIR),
        }
    }

    /// The shared context of the default config dir ([`ConfigDir::default_path`],
    /// read on every call, so a changed `$PBS_CONFIG_DIR` takes effect).
    pub fn default_dir() -> Result<Arc<ConfigDir>, Error> {
        Self::shared(Self::default_path())
    }

    /// The shared context of the config dir at `base`: one per path per
    /// process, so its caches are reused.
    pub fn shared<P: AsRef<Path>>(base: P) -> Result<Arc<ConfigDir>, Error> {
        let base = base.as_ref();
        let key = std::path::absolute(base)
            .map_err(|err| format_err!("invalid config dir {base:?} - {err}"))?;
        let mut dirs = DEFAULT_DIRS.lock().unwrap();
        if let Some(dir) = dirs.get(&key) {
            return Ok(Arc::clone(dir));
        }
        let dir = Arc::new(ConfigDir::new(&key)?);
        dirs.insert(key, Arc::clone(&dir));
        Ok(dir)
    }

    /// The directory.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The ownership policy in force.
    pub fn ownership(&self) -> &Ownership {
        &self.ownership
    }

    /// How long writers wait for a lock.
    pub fn get_lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    /// `name` inside the config dir (absolute names are kept as they are).
    pub fn path(&self, name: impl AsRef<Path>) -> PathBuf {
        self.base.join(name)
    }

    /// Makes sure the config dir exists (created here as upstream lays it
    /// out: 0700, backup:backup as root; an existing one is left as it is).
    pub fn ensure_base_dir(&self) -> Result<(), Error> {
        ensure_dir_exists(&self.base, &self.ownership.config_dir_options(), false)
    }

    /// Opens and locks a lock file (created 0660 per policy), checking after
    /// the lock that it is still the file the path names.
    pub fn open_backup_lockfile<P: AsRef<Path>>(
        &self,
        path: P,
        timeout: Option<Duration>,
        exclusive: bool,
    ) -> Result<BackupLockGuard, Error> {
        lock_file_checked(
            &self.path(path),
            timeout.unwrap_or(self.lock_timeout),
            exclusive,
            self.ownership.lock_file_options(),
        )
    }

    /// Atomically replaces a config file (0640, owner and group per policy).
    pub fn replace_backup_config<P: AsRef<Path>>(&self, path: P, data: &[u8]) -> Result<(), Error> {
        self.replace_file(
            &self.path(path),
            data,
            self.ownership.config_file_options(),
            None,
        )
    }

    /// Atomic replace with optional crash points `{failpoint}-tmp-written`
    /// (temp file complete, not renamed) and `{failpoint}-written` (renamed).
    pub(crate) fn replace_file(
        &self,
        path: &Path,
        data: &[u8],
        options: CreateOptions,
        failpoint: Option<&str>,
    ) -> Result<(), Error> {
        let tmp = proxmox_sys::fs::write_tmp_file(path, data, options, true)?;
        if let Some(name) = failpoint {
            failpoint::hit(&format!("{name}-tmp-written"));
        }
        tmp.persist(true)?;
        if let Some(name) = failpoint {
            failpoint::hit(&format!("{name}-written"));
        }
        Ok(())
    }
}
