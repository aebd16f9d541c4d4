//! [`ConfigDir`]: the config directory and its ownership policy, as one value,
//! and who acts through it ([`Caller`], for the audit log).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use anyhow::{Error, format_err};

use proxmox_sys::fs::{CreateOptions, ensure_dir_exists};

use proxmox_section_config::SectionConfigData;

use pbs_api_types::CryptKey;

use crate::audit::{AuditCache, Caller};
use crate::cache::{ConfigCache, open_config, read_config};
use crate::dir_handle::{DirHandle, read_all};
use crate::encryption_keys::NewKey;
use crate::files::{ConfigFile, FileClass};
use crate::group_commit::Batches;
use crate::key_index::KeyIndex;
use crate::key_sections::KeySections;
use crate::lock::{BackupLockGuard, ConfigLock, LockedConfig, mirror, written};
use crate::{DEFAULT_LOCK_TIMEOUT, Ownership};

/// The config dir when neither `--config-dir` nor `$PBS_CONFIG_DIR` says otherwise.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/proxmox-backup";

/// A config directory: its path, who owns what is created in it, how long
/// to wait for locks, who acts through it, and the parsed configs it caches.
///
/// Share one value (the free functions use [`ConfigDir::default_dir`]) so
/// the cache is reused: a parsed config is kept while its file is unchanged.
/// [`ConfigDir::with_caller`] makes a view of it that acts for someone (an
/// API request, the CLI) and shares its caches.
pub struct ConfigDir {
    base: PathBuf,
    ownership: Ownership,
    lock_timeout: Duration,
    /// Who the operations of this value act for (the audit log's actor and
    /// origin); `None`: [`Caller::local`].
    caller: Option<Caller>,
    /// Whether operations record themselves in the audit log: always,
    /// unless a benchmark measures what that costs ([`ConfigDir::unaudited`]).
    pub(crate) audited: bool,
    pub(crate) keys_cache: Arc<ConfigCache<KeyIndex>>,
    /// What this process's last key store write left in
    /// `encryption-keys.cfg`, for the next writer (see
    /// `EncryptionKeys::sections_locked`).
    pub(crate) written_keys: Arc<Mutex<Option<KeySections>>>,
    pub(crate) sync_cache: Arc<ConfigCache<SectionConfigData>>,
    pub(crate) user_cache: Arc<ConfigCache<SectionConfigData>>,
    /// The audit log's signing key and end, kept between operations.
    pub(crate) audit_cache: Arc<AuditCache>,
    /// The stores of new keys waiting for their batch (group commit, see
    /// [`crate::group_commit`]).
    pub(crate) new_keys: Arc<Batches<NewKey, CryptKey>>,
}

impl std::fmt::Debug for ConfigDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigDir")
            .field("base", &self.base)
            .field("ownership", &self.ownership)
            .field("lock_timeout", &self.lock_timeout)
            .field("caller", &self.caller)
            .finish()
    }
}

/// The path a config dir is known by: absolute (stored paths are, as
/// upstream writes them), and without `..`, which the kernel resolves after
/// symbolic links, so only the file system can take it out: the longest
/// part of the path that exists is canonicalized, the rest appended. A
/// `..` kept would go into every key's stored `path`, which no other
/// spelling of the dir then accepts (the key would not load or export). A
/// path without `..` is kept as given (a symlinked `/etc/proxmox-backup`
/// stays the name upstream writes).
fn resolve_base(base: &Path) -> Result<PathBuf, Error> {
    let invalid = |err: &dyn std::fmt::Display| format_err!("invalid config dir {base:?} - {err}");
    // from its components: `//etc` is `/etc`
    let absolute: PathBuf = std::path::absolute(base)
        .map_err(|err| invalid(&err))?
        .components()
        .collect();
    if !absolute.components().any(|c| c == Component::ParentDir) {
        return Ok(absolute);
    }
    let mut existing = absolute.as_path();
    let mut missing = Vec::new();
    loop {
        match std::fs::canonicalize(existing) {
            Ok(mut resolved) => {
                resolved.extend(missing.iter().rev());
                return Ok(resolved);
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                match (existing.file_name(), existing.parent()) {
                    // no name: a `..` after a missing directory
                    (Some(name), Some(parent)) => {
                        missing.push(name);
                        existing = parent;
                    }
                    _ => return Err(invalid(&err)),
                }
            }
            Err(err) => return Err(invalid(&err)),
        }
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
        let base = resolve_base(base.as_ref())?;
        Ok(Self {
            base,
            ownership,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            caller: None,
            audited: true,
            keys_cache: Arc::default(),
            written_keys: Arc::default(),
            sync_cache: Arc::default(),
            user_cache: Arc::default(),
            audit_cache: Arc::default(),
            new_keys: Arc::default(),
        })
    }

    /// This config dir acting for `caller`: the same directory, policy and
    /// caches (the view is cheap: a path and a few reference counts), and
    /// every operation through it is recorded in the audit log as done by
    /// `caller`. The daemon makes one per request, the CLI one per run.
    pub fn with_caller(&self, caller: Caller) -> Self {
        Self {
            caller: Some(caller),
            ..self.view()
        }
    }

    /// This config dir, acting for the same caller, waiting at most
    /// `timeout` for each lock (a batch of stores waits until the first
    /// deadline of its stores).
    pub(crate) fn waiting_at_most(&self, timeout: Duration) -> Self {
        Self {
            lock_timeout: timeout,
            ..self.view()
        }
    }

    /// The same config dir, policy, caller and caches.
    fn view(&self) -> Self {
        Self {
            base: self.base.clone(),
            ownership: self.ownership,
            lock_timeout: self.lock_timeout,
            caller: self.caller.clone(),
            audited: self.audited,
            keys_cache: Arc::clone(&self.keys_cache),
            written_keys: Arc::clone(&self.written_keys),
            sync_cache: Arc::clone(&self.sync_cache),
            user_cache: Arc::clone(&self.user_cache),
            audit_cache: Arc::clone(&self.audit_cache),
            new_keys: Arc::clone(&self.new_keys),
        }
    }

    /// This config dir with operations that record nothing in the audit
    /// log: only for the benchmark that measures what the log costs
    /// (`benches/keystore.rs`, `ops/store_key_unaudited`). The feature
    /// `unaudited` is enabled for the tests and benchmarks of the workspace
    /// only, never in a release build (as `failpoints`).
    #[cfg(feature = "unaudited")]
    pub fn unaudited(mut self) -> Self {
        self.audited = false;
        // never in a batch with audited stores
        self.new_keys = Arc::default();
        self
    }

    /// How many stores of new keys through this config dir's views wait
    /// for a batch to take them (see [`crate::group_commit`]): for tests
    /// that need a batch of several stores.
    #[doc(hidden)]
    pub fn new_key_stores_waiting(&self) -> usize {
        self.new_keys.waiting()
    }

    /// Who operations through this value act for: the caller given to
    /// [`ConfigDir::with_caller`], else [`Caller::local`] (a program on
    /// this host that did not say who asked: recorded as such, never as
    /// nobody).
    pub fn caller(&self) -> Caller {
        self.caller.clone().unwrap_or_else(Caller::local)
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
        let key = resolve_base(base.as_ref())?;
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

    /// The path of `name` in the config dir, for messages (files are never
    /// reached by it: see [`ConfigDir::open_base`]).
    pub fn path(&self, name: impl AsRef<Path>) -> PathBuf {
        self.base.join(name)
    }

    /// Makes sure the config dir exists (created here as upstream lays it
    /// out: 0700, backup:backup as root; an existing one is left as it is).
    pub fn ensure_base_dir(&self) -> Result<(), Error> {
        ensure_dir_exists(&self.base, &self.ownership.config_dir_options(), false)
    }

    /// Opens the config dir, the handle every file in it is reached from;
    /// `None` if it does not exist.
    pub fn open_base(&self) -> Result<Option<DirHandle>, Error> {
        DirHandle::open_path(&self.base)
    }

    /// Opens the config dir, creating it first if it is missing.
    pub fn open_base_or_create(&self) -> Result<DirHandle, Error> {
        self.ensure_base_dir()?;
        match self.open_base()? {
            Some(base) => Ok(base),
            None => Err(format_err!(
                "config dir {:?} vanished while it was created - retry",
                self.base
            )),
        }
    }

    /// Takes the exclusive lock of the config file `F` (creating the config
    /// dir if it is missing): root's mirror of it first where the `backup`
    /// user could break the lock file (see `lock::mirror`), then the lock
    /// file. Each waits at most the lock timeout.
    ///
    /// # Locking
    ///
    /// The caller must not hold it already; see the lock order in the crate
    /// documentation.
    pub fn lock_config_file<F: LockedConfig>(&self) -> Result<ConfigLock<F>, Error> {
        let base = self.open_base_or_create()?;
        let mirror = mirror::lock_mirror(self, &base, F::LOCK.name)?;
        let guard = self.lock_in(base, F::LOCK.name, true)?;
        Ok(ConfigLock::new(guard, mirror))
    }

    /// Locks the lock file `name` in `dir` (created 0660 per policy).
    pub(crate) fn lock_in(
        &self,
        dir: impl Into<Arc<DirHandle>>,
        name: &str,
        exclusive: bool,
    ) -> Result<BackupLockGuard, Error> {
        let options = self.ownership.options_for(FileClass::Lock);
        self.lock_in_with(dir, name, exclusive, options)
    }

    /// Locks the lock file `name` in `dir`, created with `options`. The
    /// guard keeps `dir`: a handle the caller keeps too is shared with it
    /// (an `Arc`), not duplicated.
    pub(crate) fn lock_in_with(
        &self,
        dir: impl Into<Arc<DirHandle>>,
        name: &str,
        exclusive: bool,
        options: CreateOptions,
    ) -> Result<BackupLockGuard, Error> {
        let dir = dir.into();
        let file = dir.lock(name, self.lock_timeout, exclusive, options)?;
        Ok(BackupLockGuard::new(file, dir, name, exclusive))
    }

    /// Reads the whole of the config file `file` (a regular file owned as
    /// its class says, within its size limit); `None` if it (or the config
    /// dir) does not exist.
    pub fn read_file(&self, file: &ConfigFile) -> Result<Option<Vec<u8>>, Error> {
        let Some(base) = self.open_base()? else {
            return Ok(None);
        };
        match open_config(&base, file, &self.ownership)? {
            Some(mut opened) => Ok(Some(read_all(&mut opened, file.max_size)?)),
            None => Ok(None),
        }
    }

    /// [`ConfigDir::read_file`] as UTF-8 text; a missing file is empty.
    pub fn read_text(&self, file: &ConfigFile) -> Result<String, Error> {
        read_config(self.open_base()?.as_ref(), file, &self.ownership)
    }

    /// Atomically replaces the config file of `F` (mode and owner of its
    /// class), optionally with crash points (see [`DirHandle::replace`]),
    /// and records what was written beside root's mirror of the lock, if
    /// one is held (see `lock::written`): the record is staged first, so a
    /// disk with no room for it fails the write before the file changed.
    ///
    /// # Locking
    ///
    /// The caller holds `F`'s lock and passes its guard.
    pub fn write_locked<F: LockedConfig>(
        &self,
        data: &[u8],
        held: &ConfigLock<F>,
        fail_point: Option<&str>,
    ) -> Result<(), Error> {
        self.refuse_unreadable_size(&F::FILE, data)?;
        let base = self.open_base_or_create()?;
        let record = held
            .mirror()
            .map(|mirror| written::stage_record(mirror, &self.ownership, &F::FILE, data))
            .transpose()?;
        self.write_in(&base, &F::FILE, data, fail_point)?;
        if let Some(record) = record {
            record.commit();
        }
        Ok(())
    }

    /// Refuses to go on where the config file of `F` read as missing or
    /// empty, but root last wrote it with content (`lock::written`):
    /// someone who may change the config dir (the `backup` user, or a
    /// mistake) moved or removed it, or renamed an empty file of root's in
    /// its place, and what it listed (keys, or the jobs that need them)
    /// would look absent to a writer, which then starts a new, empty file,
    /// or lets go of a key a job still needs. Only in a config dir others
    /// may change (elsewhere nothing is recorded); there, with no mirror
    /// held (the key directory holding the record unusable), it refuses
    /// too.
    ///
    /// Decided on what the caller read, never on a second look: the name
    /// may be moved away and back between the two.
    ///
    /// # Locking
    ///
    /// The caller holds `F`'s lock and passes its guard.
    pub(crate) fn refuse_read_empty<F: LockedConfig>(
        &self,
        held: &ConfigLock<F>,
    ) -> Result<(), Error> {
        let Some(mirror) = held.mirror() else {
            // no record at hand where one is kept: the key directory it
            // lives in was moved away (while keys are listed or jobs name
            // them), or is a link or not root's; the file may have gone
            // with it
            let Some(base) = self.open_base()? else {
                return Ok(());
            };
            if !mirror::wanted(&base)? {
                return Ok(());
            }
            let key_dir = self.path(crate::files::KEY_DIR_NAME);
            let why = match self.encryption_keys().open_key_dir(&base) {
                Ok(None) => format!("key directory {key_dir:?} is missing"),
                Err(err) => err.to_string(),
                // put back since the lock was taken
                Ok(Some(_)) => format!("key directory {key_dir:?} was moved while locking"),
            };
            anyhow::bail!(
                "{:?} reads as missing or empty, and root's record of its writes is not at hand \
                 ({why}) - refusing to go on without what they may list (someone who can \
                 write the config dir may have moved them away): put them back \
                 ('proxmox-backup-manager encryption-key verify' names what is wrong)",
                self.path(F::FILE.name),
            );
        };
        let Some(rollback) = written::rollback(mirror, &F::FILE, Some(b"")) else {
            return Ok(());
        };
        anyhow::bail!(
            "{:?} reads as missing or empty, but this tool last wrote it at unix time {} with \
             content - refusing to go on without what it lists (someone who can write the \
             config dir moved it away or put another file in its place): put it back \
             ('proxmox-backup-manager encryption-key verify' names it); if another tool \
             emptied it, remove {:?} to go on",
            self.path(F::FILE.name),
            rollback.last_written_at,
            written::record_path(mirror, &F::FILE)
        )
    }

    /// Refuses to write `data` as `file` if it is larger than every reader
    /// of `file` accepts ([`ConfigFile::max_size`]): written, it would make
    /// each read fail (every list and load of a key, for
    /// `encryption-keys.cfg`) until someone cut it by hand.
    fn refuse_unreadable_size(&self, file: &ConfigFile, data: &[u8]) -> Result<(), Error> {
        let size = data.len() as u64;
        if size > file.max_size {
            anyhow::bail!(
                "{:?} would be {size} bytes, more than the {} its readers accept - refusing \
                 to write it (it is left as it was): make what it holds smaller first (fewer \
                 entries, shorter texts such as hints)",
                self.path(file.name),
                crate::dir_handle::size_text(file.max_size),
            );
        }
        Ok(())
    }

    /// Atomically replaces `file` in `base` (mode and owner of its class).
    pub(crate) fn write_in(
        &self,
        base: &DirHandle,
        file: &ConfigFile,
        data: &[u8],
        fail_point: Option<&str>,
    ) -> Result<(), Error> {
        base.replace(
            file.name,
            data,
            self.ownership.options_for(file.class),
            fail_point,
        )
    }

    /// Atomically replaces `file`, one without a lock of its own (the
    /// daemon's TLS pair), with the mode and owner of its class.
    pub fn write_file(&self, file: &ConfigFile, data: &[u8]) -> Result<(), Error> {
        self.refuse_unreadable_size(file, data)?;
        let base = self.open_base_or_create()?;
        self.write_in(&base, file, data, None)
    }

    /// Creates `file` holding `data` unless something is there already
    /// (files that are made once and then only read: `authkey.key`,
    /// `csrf.key`, `proxy.*`). Returns whether it was created.
    pub fn create_file(&self, file: &ConfigFile, data: &[u8]) -> Result<bool, Error> {
        let base = self.open_base_or_create()?;
        base.create_atomic(file.name, data, self.ownership.options_for(file.class))
    }
}
