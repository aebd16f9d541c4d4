//! Encryption key store: `encryption-keys.cfg` plus one `<id>.enc` per key.
//!
//! Key files are 0640 root:backup in a 0750 root:backup directory; lock files
//! are 0660 backup:backup (see [`Ownership`](crate::Ownership) for non-root
//! runs). Writers lock the config, then the key file. Loading always compares
//! the key file's fingerprint with the config (and, for an unprotected key,
//! with the fingerprint computed from the key bytes). Readers take no lock:
//! both files are only ever replaced atomically.
//!
//! Every change is recorded in the audit log ([`crate::audit`]) as the
//! config dir's caller: its intent after the operation took its locks and
//! checked its input, before the first write (an intent that cannot be
//! recorded fails the operation, which then changes nothing), its outcome
//! after. A refused operation (bad input, a taken id, a key in use, a
//! stale digest) changes nothing and records nothing.
//!
//! Nothing holding key material is ever unlinked here: a key file leaves
//! the key directory by a rename into the trash ([`crate::trash`]), and
//! only a purge destroys it.
//!
//! Crash order, so that every config entry always has its key file, and a
//! key is always in the store or in the trash:
//! - store writes the key file, then the config; if the config write fails
//!   the key file goes into the trash (reason `store-failed`). A crash in
//!   between leaves an orphan key file, which `verify` reports and `verify
//!   --repair` moves into the trash. The stores of new keys made at once by
//!   threads of one process go in one batch, each in this order
//!   (`group_commit.rs`): a crash leaves up to a batch of orphans;
//! - delete writes the trash record, removes the config entry, then renames
//!   the key file into the trash, then removes its lock file; a crash in
//!   between leaves a stale record, an orphan key file whose record waits
//!   in the trash, or a stale lock file, each of which repair sorts out;
//! - remove --purge (upstream's delete) removes the config entry, then
//!   destroys the key file; a crash in between leaves an orphan key file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use anyhow::{Error, bail, format_err};
use zeroize::{Zeroize, Zeroizing};

use proxmox_lang::error::ErrorLayer;
use proxmox_schema::{ApiType, param_bail};
use proxmox_section_config::{FIND_CHUNK, SectionConfig, SectionConfigData, SectionConfigPlugin};

use pbs_api_types::{
    Authid, CRYPT_KEY_ID_SCHEMA, CryptKey, Fingerprint, KEY_HINT_SCHEMA, Kdf, KeyInfo,
};
use pbs_key_config::{KeyConfig, MAX_KEY_FILE_SIZE};

use crate::audit::{Event, Op, Pending};
use crate::cache::{read_config, read_config_text};
use crate::dir_handle::{
    BEHIND_THIS_PROCESS, DirHandle, EntryKind, EntryStat, lock_timed_out, read_all,
};
use crate::files::{
    ENCRYPTION_KEYS_CFG, ENCRYPTION_KEYS_LOCK, KEY_DIR_NAME, KEY_FILE_CLASS, key_file_name,
    key_lock_name,
};
use crate::lock::KeyFileLock;
use crate::trash::{self, Trash, TrashReason, TrashRecord};
use crate::{
    ConfigDir, EncryptionKeysLock, FoundEntry, KeyIndex, KeySections, KeyTaken, KeystoreError,
    failpoint,
};

/// Section type of a key in the config file.
pub const ENCRYPTION_KEYS_CFG_TYPE_ID: &str = "sync-key";

/// The section-config format of `encryption-keys.cfg`.
pub static CONFIG: LazyLock<SectionConfig> = LazyLock::new(init);

fn init() -> SectionConfig {
    let obj_schema = CryptKey::API_SCHEMA.unwrap_all_of_schema();
    let plugin = SectionConfigPlugin::new(
        ENCRYPTION_KEYS_CFG_TYPE_ID.to_string(),
        Some(String::from("id")),
        obj_schema,
    );
    let mut config = SectionConfig::new(&CRYPT_KEY_ID_SCHEMA);
    config.register_plugin(plugin);
    config
}

/// Checks a key id against [`CRYPT_KEY_ID_SCHEMA`].
pub fn check_key_id(id: &str) -> Result<(), Error> {
    if let Err(err) = CRYPT_KEY_ID_SCHEMA.parse_simple_value(id) {
        // the id is refused, so it may be anything: quote it escaped
        bail!(
            "invalid encryption key id {id:?} - {err} (3 to 32 characters: letters, digits, '.', '_', '-', not starting with '.' or '-')"
        );
    }
    Ok(())
}

/// The encryption key store of one [`ConfigDir`]; get it with
/// [`ConfigDir::encryption_keys`]. The methods carry the upstream names of
/// the free functions of this module.
#[derive(Clone, Copy)]
pub struct EncryptionKeys<'a> {
    dir: &'a ConfigDir,
}

impl ConfigDir {
    /// The encryption key store of this config dir.
    pub fn encryption_keys(&self) -> EncryptionKeys<'_> {
        EncryptionKeys { dir: self }
    }
}

impl<'a> EncryptionKeys<'a> {
    /// The config dir.
    pub fn dir(&self) -> &'a ConfigDir {
        self.dir
    }

    /// Path of `encryption-keys.cfg` (for messages).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path(ENCRYPTION_KEYS_CFG.name)
    }

    /// Path of the key directory (for messages).
    pub fn key_dir(&self) -> PathBuf {
        self.dir.path(KEY_DIR_NAME)
    }

    /// Path of the key file of `id`: what the config's `path` property
    /// holds (files are reached through [`EncryptionKeys::open_key_dir`]).
    pub fn key_path(&self, id: &str) -> PathBuf {
        self.key_dir().join(key_file_name(id))
    }

    /// Path of the lock file of `id`'s key file (for messages).
    pub fn key_lock_path(&self, id: &str) -> PathBuf {
        self.key_dir().join(key_lock_name(id))
    }

    /// Takes the config lock (exclusive).
    ///
    /// # Locking
    ///
    /// Must be the first lock taken; the caller must not hold it already.
    pub fn lock_config(&self) -> Result<EncryptionKeysLock, Error> {
        self.dir.lock_config_file()
    }

    /// Opens the key directory of the config dir `base`, checked to be a
    /// directory of root's (the policy's file owner) that nobody else may
    /// write, reached without following a symbolic link; `None` if missing.
    ///
    /// Open it once per operation and reach every key file through it: once
    /// checked, names in it are stable.
    pub fn open_key_dir(&self, base: &DirHandle) -> Result<Option<DirHandle>, Error> {
        base.open_dir(KEY_DIR_NAME, self.dir.ownership().key_dir_policy())
    }

    /// [`EncryptionKeys::open_key_dir`], creating the directory if missing
    /// and nothing is known of a key ([`EncryptionKeys::refuse_new_key_dir`]).
    ///
    /// # Errors
    ///
    /// A missing key directory while the config lists keys, or sync jobs
    /// name keys, is refused: it was moved or removed (the config dir
    /// belongs to the `backup` user, who can rename it), and a new, empty
    /// one would let the next store run beside keys that are somewhere else.
    pub fn ensure_key_dir(&self, base: &DirHandle) -> Result<DirHandle, Error> {
        if let Some(key_dir) = self.open_key_dir(base)? {
            return Ok(key_dir);
        }
        self.refuse_new_key_dir()?;
        let ownership = self.dir.ownership();
        base.ensure_dir(
            KEY_DIR_NAME,
            ownership.key_dir_options(),
            ownership.key_dir_policy(),
        )
    }

    /// Refuses a new key directory where one is known to have been: the
    /// config lists keys, or, with the key list moved away with the
    /// directory (and root's record of its writes inside it), a sync job
    /// names a key, which a job can only do for a key this store had.
    pub(crate) fn refuse_new_key_dir(&self) -> Result<(), Error> {
        let listed = self.index_data()?.len();
        if listed > 0 {
            bail!(
                "key directory {:?} is missing while {:?} lists {listed} key(s) - refusing to \
                 create an empty one (it was moved or removed: put it back or restore it from \
                 a backup; 'proxmox-backup-manager encryption-key verify' shows what is missing)",
                self.key_dir(),
                self.config_path()
            );
        }
        if let Some(named) = self.keys_named_by_jobs()? {
            bail!(
                "key directory {:?} is missing while sync jobs name {named} - refusing to create \
                 an empty one (it was moved or removed, with {:?}: put them back or restore \
                 them from a backup; 'proxmox-backup-manager encryption-key verify' shows what \
                 is missing)",
                self.key_dir(),
                self.config_path()
            );
        }
        Ok(())
    }

    /// The keys sync jobs name, for a message (`None`: no job names one).
    pub(crate) fn keys_named_by_jobs(&self) -> Result<Option<String>, Error> {
        let mut named = std::collections::BTreeSet::new();
        for job in self.dir.sync_jobs().list_jobs()? {
            named.extend(job.key_ids().map(str::to_string));
        }
        if named.is_empty() {
            return Ok(None);
        }
        let ids: Vec<String> = named.iter().map(|id| format!("'{id}'")).collect();
        Ok(Some(format!("{} key(s) ({})", ids.len(), ids.join(", "))))
    }

    /// Takes the lock of `id`'s key file in `key_dir`.
    ///
    /// # Locking
    ///
    /// After the config lock.
    pub fn lock_key_file(&self, key_dir: &DirHandle, id: &str) -> Result<KeyFileLock, Error> {
        let guard = self
            .dir
            .lock_in(key_dir.try_clone()?, &key_lock_name(id), true)?;
        Ok(KeyFileLock { guard })
    }

    /// The config as typed entries (cached while the file is unchanged) and
    /// the SHA-256 of its text. Takes no lock.
    pub fn index(&self) -> Result<(Arc<KeyIndex>, [u8; 32]), Error> {
        let path = self.config_path();
        let base = self.dir.open_base()?;
        self.dir.keys_cache.get_owning(
            base.as_ref(),
            &ENCRYPTION_KEYS_CFG,
            self.dir.ownership(),
            |text| KeyIndex::parse(&path, text),
        )
    }

    /// [`EncryptionKeys::index`] without the digest, which costs a hash of
    /// the whole file when the file has changed.
    pub fn index_data(&self) -> Result<Arc<KeyIndex>, Error> {
        let path = self.config_path();
        let base = self.dir.open_base()?;
        self.dir.keys_cache.get_data_owning(
            base.as_ref(),
            &ENCRYPTION_KEYS_CFG,
            self.dir.ownership(),
            |text| KeyIndex::parse(&path, text),
        )
    }

    /// The parsed config (generic form, read from the file now) and the
    /// SHA-256 of its text. Takes no lock; writers call it under the lock.
    pub fn config(&self) -> Result<(SectionConfigData, [u8; 32]), Error> {
        let path = self.config_path();
        let base = self.dir.open_base()?;
        let (text, digest) =
            read_config_text(base.as_ref(), &ENCRYPTION_KEYS_CFG, self.dir.ownership())?;
        Ok((CONFIG.parse(&path, &text)?, digest))
    }

    /// Under the config lock: the config as writers edit it. With
    /// `digest`, a file whose SHA-256 differs is refused
    /// ([`KeystoreError::DigestMismatch`], after an invalid file's parse
    /// error). A writer in a long-running process (the daemon) mostly finds
    /// the file as this process's last write left it: then that write's
    /// `KeySections` is reused instead of parsed again. Reused only if the
    /// file holds exactly its text, compared byte for byte (never by stamp:
    /// a lost update is worse than a stale read). Otherwise the text read
    /// becomes the new `KeySections`' own (no copy).
    pub(crate) fn sections_locked(
        &self,
        held: &EncryptionKeysLock,
        digest: Option<&[u8; 32]>,
    ) -> Result<KeySections, Error> {
        let path = self.config_path();
        let base = self.dir.open_base()?;
        let raw = read_config(base.as_ref(), &ENCRYPTION_KEYS_CFG, self.dir.ownership())?;
        failpoint::hit("keys:read");
        if crate::lock::written::lists_nothing(raw.as_bytes()) {
            // a new key list would not list the keys whose files are there
            self.dir.refuse_read_empty(held)?;
        }
        let current_digest = digest.map(|_| openssl::sha::sha256(raw.as_bytes()));
        let written = self.dir.written_keys.lock().unwrap().take();
        let sections = match written {
            Some(sections) if sections.is_text_of(&raw) => sections,
            _ => KeySections::parse(&path, raw)?,
        };
        if let (Some(digest), Some(current_digest)) = (digest, current_digest) {
            crate::detect_modified_configuration_file(digest, &current_digest)?;
        }
        Ok(sections)
    }

    /// After a successful write under the config lock: keep what was
    /// written for the next writer of this process.
    fn keep_written(&self, sections: KeySections) {
        *self.dir.written_keys.lock().unwrap() = Some(sections);
    }

    /// The config entry of `id`. Takes no lock.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::NotFound`] for an unknown id.
    pub fn entry(&self, id: &str) -> Result<CryptKey, Error> {
        let index = self.index_data()?;
        index.get(id).cloned()
    }

    /// Writes the config atomically (0640, root:backup as root).
    ///
    /// # Locking
    ///
    /// The caller holds the config lock and passes its guard.
    pub fn save_config(
        &self,
        config: &SectionConfigData,
        held: &EncryptionKeysLock,
    ) -> Result<(), Error> {
        let raw = CONFIG.write(self.config_path(), config)?;
        self.write_config_text(&raw, held, None)
    }

    /// All keys, in file order; archived ones only with `include_archived`.
    /// Also returns the config digest. Takes no lock.
    pub fn list_keys(&self, include_archived: bool) -> Result<(Vec<CryptKey>, [u8; 32]), Error> {
        let (index, digest) = self.index()?;
        let list = index
            .entries()?
            .filter(|key| include_archived || key.archived_at.is_none())
            .cloned()
            .collect();
        Ok((list, digest))
    }

    /// Loads the key file of `id` and checks it against the config entry
    /// (see [`EncryptionKeys::load_key`]).
    pub fn load_key_config(&self, id: &str, fail_on_archived: bool) -> Result<KeyConfig, Error> {
        Ok(self.load_key(id, fail_on_archived)?.1)
    }

    /// Loads the config entry and key file of `id`.
    ///
    /// The key file is always read from `encryption-keys/<id>.enc`; a stored
    /// `path` naming any other file is refused. The file must be a regular
    /// file, not group- or world-writable and not world-readable, and its
    /// fingerprint must equal the config entry's (for an unprotected key, the
    /// fingerprint computed from the key bytes too). With
    /// `fail_on_archived`, an archived key is refused (loading for
    /// encryption); without, it is allowed (loading for decryption).
    ///
    /// # Locking
    ///
    /// None: both files are replaced atomically, and a key file that went
    /// missing or changed while the config changed too (a delete or a new
    /// store racing the load) is looked up again in the new config, so a
    /// racing delete reads as "not found", not as a missing key file.
    pub fn load_key(
        &self,
        id: &str,
        fail_on_archived: bool,
    ) -> Result<(CryptKey, KeyConfig), Error> {
        let result = (|| {
            check_key_id(id)?;
            // this config dir's first read of the config (a process that
            // loads one key): the entry found in the file read in chunks,
            // no text or index kept. Anything else, and any error of the
            // load, is decided by the whole read below, from the file as
            // it is then (so with its messages).
            match self.find_first_entry(id)? {
                Some(FoundEntry::Absent) => {
                    return Err(KeystoreError::NotFound { id: id.to_string() }.into());
                }
                Some(FoundEntry::Entry(entry)) => {
                    if !(fail_on_archived && entry.archived_at.is_some())
                        && self.check_entry_path(&entry).is_ok()
                        && let Ok(key_config) = self.read_key_file(id)
                        && self.check_key_matches(&entry, &key_config).is_ok()
                    {
                        return Ok((entry, key_config));
                    }
                }
                Some(FoundEntry::Undecided) | None => {}
            }
            // no lock: the config and the key file are read one after the
            // other, and a writer may replace or delete the key between the
            // two reads. A key file that is missing or does not match is
            // only an error if the config did not change meanwhile;
            // otherwise the load starts again from the new config.
            let mut index = self.index_data()?;
            let mut attempt = 1;
            loop {
                let entry = index.get(id)?.clone();
                if fail_on_archived && entry.archived_at.is_some() {
                    return Err(KeystoreError::Archived { id: id.to_string() }.into());
                }
                self.check_entry_path(&entry)?;
                let loaded = self.read_key_file(id).and_then(|key_config| {
                    self.check_key_matches(&entry, &key_config)?;
                    Ok(key_config)
                });
                let err = match loaded {
                    Ok(key_config) => return Ok((entry, key_config)),
                    Err(err) => err,
                };
                let now = self.index_data()?;
                if Arc::ptr_eq(&now, &index) || attempt == MAX_LOAD_ATTEMPTS {
                    return Err(err);
                }
                index = now;
                attempt += 1;
            }
        })();
        result.layer_err(|| format!("failed to load encryption key '{id}'"))
    }

    /// The entry of `id` read by [`KeyIndex::find_entry`] from the config
    /// file, if this is the config dir's first read of it
    /// ([`ConfigCache::find_first`](crate::cache::ConfigCache::find_first))
    /// and the read decides; `None` otherwise.
    fn find_first_entry(&self, id: &str) -> Result<Option<FoundEntry>, Error> {
        let path = self.config_path();
        let base = self.dir.open_base()?;
        self.dir.keys_cache.find_first(
            base.as_ref(),
            &ENCRYPTION_KEYS_CFG,
            self.dir.ownership(),
            |source, size| {
                let found = KeyIndex::find_entry(&path, source, size, id, FIND_CHUNK)?;
                Ok((!matches!(found, FoundEntry::Undecided)).then_some(found))
            },
        )
    }

    /// Checks that a stored `path` names this key's file, here or under
    /// another config-dir prefix. Returns whether it is the canonical path.
    pub fn check_entry_path(&self, entry: &CryptKey) -> Result<bool, Error> {
        let Some(stored) = entry.info.path.as_deref() else {
            return Ok(false);
        };
        let expected = self.key_path(&entry.id);
        let stored = Path::new(stored);
        if stored == expected {
            return Ok(true);
        }
        let file_name = format!("{}.enc", entry.id);
        // a `..` in the prefix is another spelling of a config dir (one
        // given as `DIR/../DIR` by older versions), not a file elsewhere:
        // the path is never used to reach the file, only the id is
        let relocated = stored.is_absolute()
            && stored
                .file_name()
                .is_some_and(|name| name == file_name.as_str())
            && stored
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|dir| dir == KEY_DIR_NAME);
        if !relocated {
            bail!(
                "config entry of encryption key '{}' names key file {stored:?}, which is not {expected:?} - refusing to use it (edit the path or restore the key file there)",
                entry.id
            );
        }
        Ok(false)
    }

    /// Reads and parses `encryption-keys/<id>.enc`, refusing anything that is
    /// not a regular file with a safe mode (see [`EncryptionKeys::read_key_file_in`]).
    pub fn read_key_file(&self, id: &str) -> Result<KeyConfig, Error> {
        let key_dir = self
            .dir
            .open_base()?
            .map(|base| self.open_key_dir(&base))
            .transpose()?
            .flatten();
        match key_dir {
            Some(key_dir) => self.read_key_file_in(&key_dir, id),
            None => Err(missing_key_file(&self.key_path(id))),
        }
    }

    /// Reads and parses `id`'s key file in the key directory `key_dir`:
    /// opened without following a symbolic link or blocking on a FIFO, then
    /// checked on its descriptor (a regular file, owned by root or the
    /// policy's file owner, not group- or world-writable, not
    /// world-readable) and read with a size limit.
    pub fn read_key_file_in(&self, key_dir: &DirHandle, id: &str) -> Result<KeyConfig, Error> {
        let (mut data, key_config) = self.read_key_file_bytes_in(key_dir, id)?;
        data.zeroize();
        Ok(key_config)
    }

    /// [`EncryptionKeys::read_key_file_in`], with the file's exact bytes
    /// beside the parsed key file (for an export, which keeps them as they
    /// are). The caller zeroes the bytes once used.
    pub fn read_key_file_bytes_in(
        &self,
        key_dir: &DirHandle,
        id: &str,
    ) -> Result<(Vec<u8>, KeyConfig), Error> {
        let name = key_file_name(id);
        let Some(mut opened) = key_dir.open_file(&name)? else {
            return Err(missing_key_file(&key_dir.entry_path(&name)));
        };
        check_key_file_stat(&opened.path, &opened.stat, self.dir)?;
        if opened.stat.size > MAX_KEY_FILE_SIZE {
            bail!(
                "key file {:?} is larger than {MAX_KEY_FILE_SIZE} bytes",
                opened.path
            );
        }
        let mut data = read_all(&mut opened, MAX_KEY_FILE_SIZE)?;
        match KeyConfig::from_json(&data)
            .layer_err(|| format!("invalid key file {:?}", opened.path))
        {
            Ok(key_config) => Ok((data, key_config)),
            Err(err) => {
                data.zeroize();
                Err(err)
            }
        }
    }

    /// Checks that `key_config` is the key the config entry describes.
    /// Returns the fingerprint.
    pub fn check_key_matches(
        &self,
        entry: &CryptKey,
        key_config: &KeyConfig,
    ) -> Result<Fingerprint, Error> {
        let id = &entry.id;
        let Some(expected) = entry.info.fingerprint else {
            bail!(
                "config entry of encryption key '{id}' has no fingerprint - the key cannot be checked"
            );
        };
        let found = if key_config.is_protected() {
            // a protected key file has the fingerprint it claims: in place
            // of a key the config lists as unprotected it cannot be that
            // key (finding 31)
            if entry.info.kdf == Kdf::None {
                bail!(
                    "key file {:?} is passphrase protected, but the config lists '{id}' as \
                     unprotected - it only claims the key's fingerprint; put the key's own file \
                     back (restore it from an export bundle or the trash)",
                    self.key_path(id)
                );
            }
            match key_config.fingerprint {
                Some(fp) => fp,
                None => bail!(
                    "protected key file of '{id}' stores no fingerprint - it cannot be checked against the config"
                ),
            }
        } else {
            key_config
                .unprotected_fingerprint()
                .layer_err(|| format!("key file {:?} is corrupt", self.key_path(id)))?
        };
        if found != expected {
            return Err(KeystoreError::FingerprintMismatch {
                id: id.to_string(),
                expected,
                found,
            }
            .into());
        }
        Ok(found)
    }

    /// Stores a new key under `id`: the key file, then the config entry.
    ///
    /// The key is checked first (an unprotected key is decrypted and its
    /// stored fingerprint verified; a protected one must carry a
    /// fingerprint). Refused: an invalid or existing id, a key whose
    /// fingerprint is already stored under another id, a non-empty file
    /// already at the key path.
    ///
    /// Recorded in the audit log as `import`: a key from elsewhere (see
    /// [`EncryptionKeys::store_generated_key`] for one made here).
    ///
    /// # Locking
    ///
    /// Takes the config lock, then the key file lock; the caller holds neither.
    pub fn store_key(&self, id: &str, key_config: &KeyConfig) -> Result<CryptKey, Error> {
        self.store_key_inner(id, key_config, Op::Import)
            .layer_err(|| format!("failed to store encryption key '{id}'"))
    }

    /// [`EncryptionKeys::store_key`] of a key generated on this host just
    /// now: recorded in the audit log as `create`.
    pub fn store_generated_key(&self, id: &str, key_config: &KeyConfig) -> Result<CryptKey, Error> {
        self.store_key_inner(id, key_config, Op::Create)
            .layer_err(|| format!("failed to store encryption key '{id}'"))
    }

    fn store_key_inner(&self, id: &str, key_config: &KeyConfig, op: Op) -> Result<CryptKey, Error> {
        check_key_id(id)?;
        let key_file = Zeroizing::new(key_config.to_json()?.into_bytes());
        check_storable(key_config, &key_file)?;
        let fingerprint = key_fingerprint(key_config)?;
        let timeout = self.dir.get_lock_timeout();
        let new_key = NewKey {
            entry: self.entry_for(id, key_config, fingerprint, None),
            key_file,
            event: self.dir.audit_event(op).id(id).fingerprint(fingerprint),
            deadline: Instant::now() + timeout,
        };
        // with the stores of other threads waiting at the same time, if any;
        // waiting for a batch counts in the lock timeout, as a wait in the
        // lock's queue does
        let timed_out = || {
            let lock = self.dir.path(ENCRYPTION_KEYS_LOCK.name);
            lock_timed_out(&lock, timeout, BEHIND_THIS_PROCESS)
        };
        let deadline = new_key.deadline;
        self.dir
            .new_keys
            .make(new_key, deadline, timed_out, |batch| {
                self.store_new_keys(batch)
            })
    }

    /// The stores of `batch` (new keys, in the order they were asked; see
    /// [`crate::group_commit`]), made together under one hold of the config
    /// lock, each as a store of it alone would be made:
    /// - refused alone, before anything is written, where a store of it
    ///   alone would be: its id or fingerprint taken (an earlier key of the
    ///   batch counts as stored; if that one then fails, the refused key
    ///   is told so, see [`Collision`]), an entry the schema refuses, a
    ///   file in its key file's place;
    /// - the others' intents recorded, synced once; their key files
    ///   written, each synced, then one sync of the key directory; one
    ///   config write with all their entries; their outcomes recorded.
    ///
    /// A key file that cannot be written, or whose name shows another file
    /// once synced, fails its key alone (a temp file goes into the trash).
    /// A step they share that fails (the lock, the read, the intents, the
    /// directory's sync, the config write) fails each of them; a key file
    /// whose entry the config surely lacks then goes into the trash, as
    /// for one store. One result per key, in order.
    ///
    /// # Locking
    ///
    /// Takes the config lock, then the key file lock of each key (ids
    /// differ: a second key of an id is refused as taken before its lock),
    /// the config lock waited for until the first deadline of the batch's
    /// stores (each its caller's lock timeout from when it asked), each
    /// key file lock as long as this view's lock timeout says.
    fn store_new_keys(&self, batch: Vec<NewKey>) -> Vec<Result<CryptKey, Error>> {
        let shared = (|| {
            // the first store into a fresh config dir creates it
            let base = self.dir.open_base_or_create()?;
            // no store of the batch waits for the lock past its deadline
            let first_deadline = batch.iter().map(|key| key.deadline).min();
            let left = first_deadline.map_or(Duration::ZERO, |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
            let config_lock = self
                .dir
                .waiting_at_most(left)
                .encryption_keys()
                .lock_config()?;
            let sections = self.sections_locked(&config_lock, None)?;
            let key_dir = self.ensure_key_dir(&base)?;
            Ok((config_lock, sections, key_dir))
        })();
        let (config_lock, mut sections, key_dir) = match shared {
            Ok(shared) => shared,
            Err(err) => {
                return shared_error(err, batch.len())
                    .into_iter()
                    .map(Err)
                    .collect();
            }
        };
        let mut results: Vec<Option<Result<CryptKey, Error>>> =
            batch.iter().map(|_| None).collect();

        let (going, collisions) =
            self.check_new_keys(&batch, &mut sections, &key_dir, &mut results);
        if going.is_empty() {
            return finished(&batch, results, &collisions);
        }
        let events: Vec<Event> = going
            .iter()
            .map(|(index, _)| batch[*index].event.clone())
            .collect();
        match self.dir.audit_intents(Some(&key_dir), &events) {
            Ok(pending) => {
                failpoint::hit("store:locked");
                let placed = self.place_new_key_files(
                    &batch,
                    going.into_iter().zip(pending),
                    &key_dir,
                    &mut sections,
                    &mut results,
                );
                if !placed.is_empty() {
                    self.write_new_keys_config(
                        &batch,
                        placed,
                        &key_dir,
                        sections,
                        &config_lock,
                        &mut results,
                    );
                }
            }
            Err(err) => {
                let errors = shared_error(err, going.len());
                for ((index, key_lock), err) in going.into_iter().zip(errors) {
                    let id = batch[index].entry.id.as_str();
                    results[index] = Some(Err(forget_key_lock(&key_dir, id, key_lock, err)));
                }
            }
        }
        finished(&batch, results, &collisions)
    }

    /// The first step of a batch of stores ([`EncryptionKeys::store_new_keys`]):
    /// refuses each key alone where a store of it alone would be refused
    /// (setting its result), adds the entries of the others to `sections`
    /// and takes their key file locks. Returns the keys that go on (their
    /// index in `batch`), with their locks, and the keys refused for one
    /// of those.
    fn check_new_keys(
        &self,
        batch: &[NewKey],
        sections: &mut KeySections,
        key_dir: &DirHandle,
        results: &mut [Option<Result<CryptKey, Error>>],
    ) -> (Vec<(usize, KeyFileLock)>, Vec<Collision>) {
        let mut going = Vec::with_capacity(batch.len());
        let mut going_ids: HashMap<&str, usize> = HashMap::new();
        let mut collisions = Vec::new();
        for (index, key) in batch.iter().enumerate() {
            let checked = refuse_taken(sections, &key.entry).and_then(|()| {
                // render (and so validate) its entry before any file is touched
                sections.add(&key.entry)?;
                let id = key.entry.id.as_str();
                let locked = self.lock_key_file(key_dir, id).and_then(|key_lock| {
                    match refuse_existing_key_file(key_dir, &key_file_name(id)) {
                        Ok(()) => Ok(key_lock),
                        Err(err) => Err(forget_key_lock(key_dir, id, key_lock, err)),
                    }
                });
                if locked.is_err() {
                    sections.remove(id);
                }
                locked
            });
            match checked {
                Ok(key_lock) => {
                    going_ids.insert(key.entry.id.as_str(), index);
                    going.push((index, key_lock));
                }
                Err(err) => {
                    let taken_by = match err.downcast_ref::<KeystoreError>() {
                        Some(KeystoreError::AlreadyExists { id }) => going_ids.get(id.as_str()),
                        Some(KeystoreError::DuplicateFingerprint { existing_id, .. }) => {
                            going_ids.get(existing_id.as_str())
                        }
                        _ => None,
                    };
                    if let Some(by) = taken_by {
                        collisions.push(Collision { index, by: *by });
                    }
                    results[index] = Some(Err(err));
                }
            }
        }
        (going, collisions)
    }

    /// The key files of a batch of stores, their intents recorded: each
    /// written and synced and renamed to its name, then one sync of the
    /// key directory for all. A key file that cannot be written, or whose
    /// name shows another file after the sync, fails its key alone (its
    /// temp file into the trash, its entry out of `sections`). Returns the
    /// keys placed, durable.
    fn place_new_key_files<'p>(
        &self,
        batch: &[NewKey],
        going: impl Iterator<Item = ((usize, KeyFileLock), Pending<'p>)>,
        key_dir: &DirHandle,
        sections: &mut KeySections,
        results: &mut [Option<Result<CryptKey, Error>>],
    ) -> Vec<Placed<'p>> {
        let options = self.dir.ownership().options_for(KEY_FILE_CLASS);
        let mut placed = Vec::new();
        for ((index, key_lock), pending) in going {
            let key = &batch[index];
            let id = key.entry.id.as_str();
            let name = key_file_name(id);
            match key_dir.place_keeping_temp(&name, &key.key_file, options, Some("store:key")) {
                Ok(written) => placed.push(Placed {
                    index,
                    key_lock,
                    pending,
                    written,
                }),
                Err(failed) => {
                    let err = match failed.temp {
                        Some(temp) => self.trash_failed_store(
                            key_dir,
                            &temp,
                            &key.entry,
                            &key.event.caller.actor,
                            failed.error,
                        ),
                        None => failed.error,
                    };
                    sections.remove(id);
                    let err = forget_key_lock(key_dir, id, key_lock, err);
                    results[index] = Some(pending.done(Err(err)));
                }
            }
        }
        if placed.is_empty() {
            return placed;
        }
        // one sync of the directory makes every name durable; if it fails,
        // each key fails with its file left under its name (an orphan
        // `verify` reports, as a store of it alone leaves it)
        if let Err(err) = key_dir.sync() {
            let errors = shared_error(err, placed.len());
            for (file, err) in placed.into_iter().zip(errors) {
                let id = batch[file.index].entry.id.as_str();
                let err = forget_key_lock(key_dir, id, file.key_lock, err);
                results[file.index] = Some(file.pending.done(Err(err)));
            }
            return Vec::new();
        }
        // each name still the file placed there, else that key fails alone
        // (its error names its own key file only: the others' ids are not
        // its caller's to see)
        let mut kept = Vec::with_capacity(placed.len());
        for file in placed {
            let id = batch[file.index].entry.id.as_str();
            match key_dir.check_placed(&key_file_name(id), &file.written) {
                Ok(()) => kept.push(file),
                Err(err) => {
                    sections.remove(id);
                    let err = forget_key_lock(key_dir, id, file.key_lock, err);
                    results[file.index] = Some(file.pending.done(Err(err)));
                }
            }
        }
        kept
    }

    /// The last step of a batch of stores, their key files durable under
    /// their names: one config write with every entry, and each key's
    /// outcome recorded. If the config write fails, each key file the
    /// config surely lacks goes into the trash.
    fn write_new_keys_config(
        &self,
        batch: &[NewKey],
        placed: Vec<Placed<'_>>,
        key_dir: &DirHandle,
        mut sections: KeySections,
        config_lock: &EncryptionKeysLock,
        results: &mut [Option<Result<CryptKey, Error>>],
    ) {
        let raw = sections.text_to_write();
        let written = self.write_config_text(raw, config_lock, Some("store:config"));
        let err = match written {
            Ok(()) => {
                self.keep_written(sections);
                for file in placed {
                    let entry = batch[file.index].entry.clone();
                    results[file.index] = Some(file.pending.done(Ok(entry)));
                }
                return;
            }
            Err(err) => err,
        };
        let errors = shared_error(err, placed.len());
        for (file, err) in placed.into_iter().zip(errors) {
            let key = &batch[file.index];
            let id = key.entry.id.as_str();
            let err = self.keep_or_trash(key_dir, &key.entry, err, |err| {
                self.trash_failed_store(
                    key_dir,
                    &key_file_name(id),
                    &key.entry,
                    &key.event.caller.actor,
                    err,
                )
            });
            let err = forget_key_lock(key_dir, id, file.key_lock, err);
            results[file.index] = Some(file.pending.done(Err(err)));
        }
    }

    /// Adopts the key file of `id` that has no config entry (a store was
    /// killed after writing it) if it holds the key with `fingerprint`:
    /// writes its config entry, never the file, recorded in the audit log
    /// as `create` (the key was generated on this host). `None` if there is
    /// no such file, or the config has an entry `id`.
    ///
    /// # Errors
    ///
    /// A key file that holds another key (left alone, for `verify`), or
    /// one that does not load; what a store refuses.
    ///
    /// # Locking
    ///
    /// Takes the config lock, then the key file lock.
    pub(crate) fn adopt_key_file(
        &self,
        id: &str,
        fingerprint: &Fingerprint,
    ) -> Result<Option<CryptKey>, Error> {
        (|| {
            check_key_id(id)?;
            let Some(base) = self.dir.open_base()? else {
                return Ok(None);
            };
            let config_lock = self.lock_config()?;
            let Some(key_dir) = self.open_key_dir(&base)? else {
                return Ok(None);
            };
            if key_dir.stat(&key_file_name(id))?.is_none() {
                return Ok(None);
            }
            let sections = self.sections_locked(&config_lock, None)?;
            if sections.contains(id) {
                return Ok(None);
            }
            let key_config = self.read_key_file_in(&key_dir, id)?;
            check_hint(&key_config)?;
            let found = key_fingerprint(&key_config)?;
            if found != *fingerprint {
                bail!(
                    "key file {:?} holds the key with fingerprint {}, not {} - left alone \
                     (run 'proxmox-backup-manager encryption-key verify')",
                    self.key_path(id),
                    found.signature(),
                    fingerprint.signature()
                );
            }
            let entry = self.entry_for(id, &key_config, found, None);
            let event = self.dir.audit_event(Op::Create).id(id).fingerprint(found);
            self.store_locked(
                &base,
                sections,
                &config_lock,
                entry,
                KeySource::InPlace,
                &event,
                || Ok(()),
            )
            .map(Some)
        })()
        .layer_err(|| format!("failed to adopt the key file of encryption key '{id}'"))
    }

    /// The store path of a key from elsewhere than a new key's (adopted in
    /// place, restored from the trash or an export bundle; new keys are
    /// stored in batches, [`EncryptionKeys::store_new_keys`]), under the
    /// config lock: refuse a taken id or fingerprint, render the new config (so a
    /// schema error stops before any file is touched), take the key lock,
    /// refuse a key file in the way, record the intent of `event`, place
    /// the key file, write the config, run `then` (the rest of the
    /// operation), record the outcome.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn store_locked(
        &self,
        base: &DirHandle,
        mut sections: KeySections,
        config_lock: &EncryptionKeysLock,
        entry: CryptKey,
        source: KeySource,
        event: &Event,
        then: impl FnOnce() -> Result<(), Error>,
    ) -> Result<CryptKey, Error> {
        let id = entry.id.as_str();
        refuse_taken(&sections, &entry)?;
        // render (and so validate) the new config before touching any file
        sections.add(&entry)?;
        let raw = sections.text_to_write();

        let key_dir = self.ensure_key_dir(base)?;
        let key_lock = self.lock_key_file(&key_dir, id)?;
        if !matches!(source, KeySource::InPlace) {
            refuse_existing_key_file(&key_dir, &key_file_name(id))?;
        }
        let pending = match self.dir.audit_intent(Some(&key_dir), event) {
            Ok(pending) => pending,
            Err(err) => return Err(forget_key_lock(&key_dir, id, key_lock, err)),
        };
        failpoint::hit(&format!("{}:locked", source.op()));
        let result = match self.write_key_and_config(&key_dir, &entry, &source, raw, config_lock) {
            Ok(()) => {
                self.keep_written(sections);
                then().map(|()| entry)
            }
            Err(err) => Err(forget_key_lock(&key_dir, id, key_lock, err)),
        };
        pending.done(result)
    }

    /// Whether the config file, as it is now, surely has no entry `id`
    /// (false if it cannot be read).
    fn config_surely_lacks(&self, id: &str) -> bool {
        self.index_data().is_ok_and(|index| {
            index.get(id).is_err_and(|err| {
                matches!(
                    err.downcast_ref::<KeystoreError>(),
                    Some(KeystoreError::NotFound { .. })
                )
            })
        })
    }

    /// Whether the config file, as it is now, surely has an entry `id`.
    fn config_surely_has(&self, id: &str) -> bool {
        self.index_data().is_ok_and(|index| index.get(id).is_ok())
    }

    /// The two writes of a store: key file, then config. If the config
    /// write fails and the config surely lacks the key, the key file leaves
    /// the key directory again: a new one into the trash, a restored one
    /// back into its trash entry. Nothing is ever unlinked.
    fn write_key_and_config(
        &self,
        key_dir: &DirHandle,
        entry: &CryptKey,
        source: &KeySource,
        raw_config: &str,
        config_lock: &EncryptionKeysLock,
    ) -> Result<(), Error> {
        let id = entry.id.as_str();
        let name = key_file_name(id);
        let key_path = key_dir.entry_path(&name);
        let options = self.dir.ownership().options_for(KEY_FILE_CLASS);
        match source {
            KeySource::Exact(key_data) => self.write_new_key_file(key_dir, entry, key_data)?,
            // the file stays as it is whatever happens: an orphan before,
            // an orphan again if the config write fails
            KeySource::InPlace => match key_dir.stat(&name)? {
                Some(stat) if stat.kind == EntryKind::File && stat.size > 0 => {}
                _ => bail!("key file {key_path:?} to adopt is gone"),
            },
            KeySource::Trash {
                trash,
                trash_dir,
                entry: trash_entry,
            } => {
                // an empty file there holds nothing (a store writes over it)
                if key_dir.stat(&name)?.is_some() {
                    key_dir.unlink(&name)?;
                }
                trash_dir.rename_noreplace(&trash::key_name(trash_entry), key_dir, &name)?;
                key_dir.sync()?;
                trash_dir.sync()?;
                failpoint::hit("restore:key-moved");
                // its bytes stay as they are; owner and mode become a key file's
                if let Err(err) = key_dir.fix_owner_and_mode(&name, EntryKind::File, options) {
                    return Err(self.untrash_failed_restore(
                        key_dir,
                        &name,
                        trash,
                        trash_dir,
                        trash_entry,
                        err,
                    ));
                }
            }
        }

        let config_point = format!("{}:config", source.op());
        if let Err(err) = self.write_config_text(raw_config, config_lock, Some(&config_point)) {
            return Err(self.keep_or_trash(key_dir, entry, err, |err| match source {
                KeySource::Exact(_) => {
                    self.trash_failed_store(key_dir, &name, entry, &self.dir.caller().actor, err)
                }
                KeySource::InPlace => err,
                KeySource::Trash {
                    trash,
                    trash_dir,
                    entry: trash_entry,
                } => {
                    self.untrash_failed_restore(key_dir, &name, trash, trash_dir, trash_entry, err)
                }
            }));
        }
        Ok(())
    }

    /// After the config write of a store of `entry` failed with `err`: its
    /// key file stays if the config may name it (a failure after the
    /// rename, the directory's fsync, leaves the new config in place: no
    /// config entry without its key file), else `put_away` takes it out
    /// of the key directory again. Returns the error saying which.
    fn keep_or_trash(
        &self,
        key_dir: &DirHandle,
        entry: &CryptKey,
        err: Error,
        put_away: impl FnOnce(Error) -> Error,
    ) -> Error {
        let id = entry.id.as_str();
        if self.config_surely_lacks(id) {
            return put_away(err);
        }
        let key_path = key_dir.entry_path(&key_file_name(id));
        let text = format!(
            "{err} - the config may name key '{id}' already; its key file {key_path:?} is kept \
             (run 'proxmox-backup-manager encryption-key verify')"
        );
        err.context(text)
    }

    /// Puts back the missing key file of an entry the config has (a restore
    /// from an export bundle: same id, same fingerprint, no key file). The
    /// config is not written; the file is written as a store writes it,
    /// never over anything but nothing or an empty file.
    ///
    /// # Locking
    ///
    /// The caller holds the config lock and passes its guard; this takes
    /// the key lock.
    pub(crate) fn restore_key_file_locked(
        &self,
        base: &DirHandle,
        entry: &CryptKey,
        key_file: &[u8],
        _held: &EncryptionKeysLock,
    ) -> Result<(), Error> {
        let key_dir = self.ensure_key_dir(base)?;
        let _key_lock = self.lock_key_file(&key_dir, &entry.id)?;
        refuse_existing_key_file(&key_dir, &key_file_name(&entry.id))?;
        let event = key_event(self.dir, Op::Restore, entry);
        let pending = self.dir.audit_intent(Some(&key_dir), &event)?;
        pending.done(self.write_new_key_file(&key_dir, entry, key_file))
    }

    /// Writes the key file of a new key (a temp file, then a rename); a
    /// temp file left by a failure goes into the trash.
    fn write_new_key_file(
        &self,
        key_dir: &DirHandle,
        entry: &CryptKey,
        key_data: &[u8],
    ) -> Result<(), Error> {
        let name = key_file_name(&entry.id);
        let options = self.dir.ownership().options_for(KEY_FILE_CLASS);
        match key_dir.replace_keeping_temp(&name, key_data, options, Some("store:key")) {
            Ok(()) => Ok(()),
            Err(failed) => Err(match failed.temp {
                Some(temp) => self.trash_failed_store(
                    key_dir,
                    &temp,
                    entry,
                    &self.dir.caller().actor,
                    failed.error,
                ),
                None => failed.error,
            }),
        }
    }

    /// A key file (or a temp file holding part of it) that did not make it
    /// into the store goes into the trash, reason `store-failed`: never
    /// unlinked; `actor` asked for the store. Returns `err` with what
    /// became of the file.
    fn trash_failed_store(
        &self,
        key_dir: &DirHandle,
        name: &str,
        entry: &CryptKey,
        actor: &Authid,
        err: Error,
    ) -> Error {
        let record = TrashRecord {
            id: entry.id.clone(),
            fingerprint: entry.info.fingerprint,
            entry: None,
            reason: TrashReason::StoreFailed,
            time: proxmox_time::epoch_i64(),
            actor: Some(actor.to_string()),
            purge_after: None,
        };
        let text = match self.trash().keep(key_dir, name, &record) {
            Ok((trash_entry, None)) => {
                format!("{err} - the new key file was moved into the trash as '{trash_entry}'")
            }
            Ok((trash_entry, Some(record_err))) => format!(
                "{err} - the new key file was moved into the trash as '{trash_entry}', without its \
                 record ({record_err}; 'proxmox-backup-manager encryption-key verify --repair' \
                 writes it)"
            ),
            Err(keep_err) => format!(
                "{err} - and moving the new key file {:?} into the trash failed too: {keep_err} \
                 (run 'proxmox-backup-manager encryption-key verify --repair')",
                key_dir.entry_path(name)
            ),
        };
        err.context(text)
    }

    /// A restored key file whose config entry could not be written goes
    /// back into its trash entry. Returns `err` with what became of it.
    fn untrash_failed_restore(
        &self,
        key_dir: &DirHandle,
        name: &str,
        trash: &Trash,
        trash_dir: &DirHandle,
        trash_entry: &str,
        err: Error,
    ) -> Error {
        let text = match trash.fill(key_dir, name, trash_dir, trash_entry) {
            Ok(()) => format!("{err} - the key is back in the trash as '{trash_entry}'"),
            Err(back_err) => format!(
                "{err} - and moving the key file {:?} back into the trash failed too: {back_err} \
                 (run 'proxmox-backup-manager encryption-key verify --repair')",
                key_dir.entry_path(name)
            ),
        };
        err.context(text)
    }

    /// The config entry of `key_config` stored as `id` in this store: the
    /// key file's metadata, its `fingerprint` and its path here.
    pub(crate) fn entry_for(
        &self,
        id: &str,
        key_config: &KeyConfig,
        fingerprint: Fingerprint,
        archived_at: Option<i64>,
    ) -> CryptKey {
        let mut info = KeyInfo::from(key_config);
        info.path = Some(self.key_path(id).to_string_lossy().into_owned());
        info.fingerprint = Some(fingerprint);
        CryptKey {
            id: id.to_string(),
            info,
            archived_at,
        }
    }

    fn write_config_text(
        &self,
        raw: &str,
        held: &EncryptionKeysLock,
        failpoint: Option<&str>,
    ) -> Result<(), Error> {
        self.dir.write_locked(raw.as_bytes(), held, failpoint)
    }

    /// Archives (`archived = true`) or unarchives a key; returns the new
    /// entry. Archiving a key that a sync job uses as its active key is
    /// refused, naming the jobs. With `digest`, a config that changed since
    /// the caller read it is refused.
    ///
    /// # Locking
    ///
    /// Takes the config lock, then the sync job config lock.
    pub fn set_archived(
        &self,
        id: &str,
        archived: bool,
        digest: Option<&[u8; 32]>,
    ) -> Result<CryptKey, Error> {
        let verb = if archived { "archive" } else { "unarchive" };
        (|| {
            check_key_id(id)?;
            let config_lock = self.lock_config()?;
            let mut sections = self.sections_locked(&config_lock, digest)?;
            let mut entry = sections.entry(id)?;
            match (archived, entry.archived_at) {
                (true, Some(_)) => bail!("encryption key '{id}' is already archived"),
                (false, None) => bail!("encryption key '{id}' is not archived"),
                _ => {}
            }
            let _sync_lock;
            if archived {
                let sync_lock = self.dir.sync_jobs().lock_config()?;
                let (active_in, _) = self.dir.sync_jobs().jobs_using_key(id, &sync_lock)?;
                _sync_lock = sync_lock;
                if !active_in.is_empty() {
                    return Err(KeystoreError::InUse {
                        id: id.to_string(),
                        active_in,
                        associated_in: Vec::new(),
                    }
                    .into());
                }
                entry.archived_at = Some(proxmox_time::epoch_i64());
            } else {
                entry.archived_at = None;
            }
            sections.set(&entry)?;
            let raw = sections.text_to_write();
            let op = if archived { Op::Archive } else { Op::Unarchive };
            let pending = self
                .dir
                .audit_intent(None, &key_event(self.dir, op, &entry))?;
            let result = self
                .write_config_text(raw, &config_lock, Some("archive:config"))
                .map(|()| {
                    self.keep_written(sections);
                    entry
                });
            pending.done(result)
        })()
        .layer_err(|| format!("failed to {verb} encryption key '{id}'"))
    }

    /// Archives a key (see [`EncryptionKeys::set_archived`]).
    pub fn archive_key(&self, id: &str, digest: Option<&[u8; 32]>) -> Result<CryptKey, Error> {
        self.set_archived(id, true, digest)
    }

    /// Unarchives a key (see [`EncryptionKeys::set_archived`]).
    pub fn unarchive_key(&self, id: &str, digest: Option<&[u8; 32]>) -> Result<CryptKey, Error> {
        self.set_archived(id, false, digest)
    }

    /// Deletes an archived key that no sync job references, into the
    /// trash (see [`EncryptionKeys::delete_key_with`]).
    ///
    /// # Locking
    ///
    /// The caller holds the config lock and passes its guard along with the
    /// config it read under it; this takes the sync job lock and the key
    /// file lock.
    pub fn delete_key(
        &self,
        id: &str,
        config: SectionConfigData,
        held: &EncryptionKeysLock,
    ) -> Result<(), Error> {
        let path = self.config_path();
        let sections = CONFIG
            .write(&path, &config)
            .and_then(|raw| KeySections::parse(&path, raw))
            .layer_err(|| format!("failed to delete encryption key '{id}'"))?;
        self.delete_key_from(id, sections, held, &DeleteOptions::default())
            .map(|_| ())
    }

    fn delete_key_from(
        &self,
        id: &str,
        mut sections: KeySections,
        held: &EncryptionKeysLock,
        options: &DeleteOptions,
    ) -> Result<Deleted, Error> {
        (|| {
            check_key_id(id)?;
            let entry = sections.entry(id)?;
            if entry.archived_at.is_none() {
                return Err(KeystoreError::NotArchived { id: id.to_string() }.into());
            }
            let sync_lock = self.dir.sync_jobs().lock_config()?;
            let (active_in, associated_in) = self.dir.sync_jobs().jobs_using_key(id, &sync_lock)?;
            if !active_in.is_empty() || !associated_in.is_empty() {
                return Err(KeystoreError::InUse {
                    id: id.to_string(),
                    active_in,
                    associated_in,
                }
                .into());
            }
            self.check_entry_path(&entry)?;

            let name = key_file_name(id);
            // a missing key directory is refused (it was moved: every key
            // file is missing), never taken for a missing key file, which
            // `force` would drop the entry of
            let key_dir = match self.dir.open_base()? {
                Some(base) => Some(self.ensure_key_dir(&base)?),
                None => None,
            };
            let key_lock = match &key_dir {
                Some(key_dir) => Some(self.lock_key_file(key_dir, id)?),
                None => None,
            };
            let present = match &key_dir {
                Some(key_dir) => key_dir.stat(&name)?.is_some(),
                None => false,
            };
            if !present {
                return self.drop_entry_without_key_file(&entry, sections, held, options, key_lock);
            }
            // present: there is a key directory, and its key lock is held
            let (Some(key_dir), Some(key_lock)) = (key_dir, key_lock) else {
                bail!("internal error - a key file without key directory");
            };
            let key_config = self.read_key_file_in(&key_dir, id)?;
            let fingerprint = self.check_key_matches(&entry, &key_config)?;

            if options.purge {
                // upstream's delete, for whoever means to crypto-shred
                self.dir.refuse_destroy_without_copy(
                    id,
                    Some(fingerprint),
                    options.without_verified_copy,
                )?;
                let event = key_event(self.dir, Op::DeletePurge, &entry);
                let pending = self.dir.audit_intent(Some(&key_dir), &event)?;
                failpoint::hit("delete-purge:locked");
                let result = (|| {
                    sections.remove(id);
                    self.write_config_text(
                        sections.text_to_write(),
                        held,
                        Some("delete-purge:config"),
                    )?;
                    self.keep_written(sections);
                    trash::destroy_key_file(&key_dir, &name)?;
                    failpoint::hit("delete-purge:key-removed");
                    key_lock.guard.remove_file()?;
                    Ok(Deleted::Purged { id: id.to_string() })
                })();
                return pending.done(result);
            }

            let event = key_event(self.dir, Op::Delete, &entry);
            let pending = self.dir.audit_intent(Some(&key_dir), &event)?;
            failpoint::hit("delete:locked");
            let result =
                self.delete_into_trash(&entry, sections, held, options, &key_dir, key_lock);
            pending.done(result)
        })()
        .layer_err(|| format!("failed to delete encryption key '{id}'"))
    }

    /// The change of a delete into the trash: the record, then the config
    /// entry, then the key file into the trash (crash order: see the trash
    /// module).
    fn delete_into_trash(
        &self,
        entry: &CryptKey,
        mut sections: KeySections,
        held: &EncryptionKeysLock,
        options: &DeleteOptions,
        key_dir: &DirHandle,
        key_lock: KeyFileLock,
    ) -> Result<Deleted, Error> {
        let id = entry.id.as_str();
        let name = key_file_name(id);
        // read before the first change, for the report: whether the daily
        // purge may destroy it once its keep time is over
        let verified_copy = match entry.info.fingerprint {
            Some(fingerprint) => self.dir.verified_copies(&[fingerprint])?[0].is_some(),
            None => false,
        };
        let trash = self.trash();
        let trash_dir = trash.ensure(key_dir)?;
        let purge_after = trash::purge_after(options.now, options.keep_days);
        let record = TrashRecord {
            id: id.to_string(),
            fingerprint: entry.info.fingerprint,
            entry: Some(entry.clone()),
            reason: options.reason,
            time: options.now,
            actor: Some(self.dir.caller().actor.to_string()),
            purge_after: Some(purge_after),
        };
        let trash_entry = trash.reserve(&trash_dir, &record)?;
        failpoint::hit("delete:record-written");
        sections.remove(id);
        if let Err(err) =
            self.write_config_text(sections.text_to_write(), held, Some("delete:config"))
        {
            if self.config_surely_has(id) {
                let _ = trash.abandon(&trash_dir, &trash_entry);
                return Err(err);
            }
            // the entry may be gone: the record waits for its key file
            let text = format!(
                "{err} - the config may lack '{id}' already; its key file stays in place and \
                 'proxmox-backup-manager encryption-key verify --repair' moves it into trash \
                 entry '{trash_entry}'"
            );
            return Err(err.context(text));
        }
        self.keep_written(sections);
        trash
            .fill(key_dir, &name, &trash_dir, &trash_entry)
            .map_err(|err| {
                format_err!(
                    "{err} - the config entry is removed; the key file stays in the key \
                     directory until 'proxmox-backup-manager encryption-key verify --repair' \
                     moves it into trash entry '{trash_entry}'"
                )
            })?;
        failpoint::hit("delete:key-trashed");
        key_lock.guard.remove_file()?;
        Ok(Deleted::Trashed {
            id: id.to_string(),
            trash_name: trash_entry,
            purge_after,
            verified_copy,
        })
    }

    /// `delete` of a key whose key file is missing: refused, unless
    /// `options.force`, which drops the config entry after `options.warn`
    /// was told what is lost (or that a copy waits in the trash).
    fn drop_entry_without_key_file(
        &self,
        entry: &CryptKey,
        mut sections: KeySections,
        held: &EncryptionKeysLock,
        options: &DeleteOptions,
        key_lock: Option<KeyFileLock>,
    ) -> Result<Deleted, Error> {
        let id = entry.id.as_str();
        let path = self.key_path(id);
        let copies = match &entry.info.fingerprint {
            Some(fingerprint) => self.trash().copies_of(fingerprint)?,
            None => Vec::new(),
        };
        let copies_text = copies
            .iter()
            .map(|name| format!("'{name}'"))
            .collect::<Vec<_>>()
            .join(", ");
        if !options.force {
            let hint = match copies.is_empty() {
                true => format!(
                    "put it back from a backup, or drop the config entry with \
                     'proxmox-backup-manager encryption-key remove --force {id}'"
                ),
                false => format!(
                    "a copy is in the trash as {copies_text}: drop the config entry with \
                     'proxmox-backup-manager encryption-key remove --force {id}', then \
                     'proxmox-backup-manager encryption-key trash restore' it"
                ),
            };
            bail!("key file {path:?} is missing - {hint}");
        }
        let fingerprint = entry
            .info
            .fingerprint
            .map_or_else(|| "unknown".to_string(), |fp| fp.signature());
        let warning = match copies.is_empty() {
            true => format!(
                "encryption key '{id}' (fingerprint {fingerprint}) has no key file ({path:?}) and no \
                 copy in the trash: dropping its config entry loses the key for good - whatever it \
                 encrypted can only be decrypted with a copy of the key kept elsewhere"
            ),
            false => format!(
                "encryption key '{id}' has no key file ({path:?}), but a copy is in the trash as \
                 {copies_text}: dropping its config entry loses nothing - bring it back with \
                 'proxmox-backup-manager encryption-key trash restore'"
            ),
        };
        let pending = self
            .dir
            .audit_intent(None, &key_event(self.dir, Op::DeleteForce, entry))?;
        if let Some(warn) = options.warn {
            warn(&warning);
        }
        let result = (|| {
            sections.remove(id);
            self.write_config_text(sections.text_to_write(), held, Some("delete:config"))?;
            self.keep_written(sections);
            // the key lock file goes with the key
            if let Some(key_lock) = key_lock {
                key_lock.guard.remove_file()?;
            }
            Ok(Deleted::EntryDropped {
                id: id.to_string(),
                fingerprint: entry.info.fingerprint,
                trash_copies: copies,
            })
        })();
        pending.done(result)
    }

    /// Takes the config lock, checks `digest` and deletes the key into the
    /// trash (see [`EncryptionKeys::delete_key_with`]).
    pub fn remove_key(&self, id: &str, digest: Option<&[u8; 32]>) -> Result<(), Error> {
        let options = DeleteOptions {
            digest,
            ..DeleteOptions::default()
        };
        self.delete_key_with(id, &options).map(|_| ())
    }

    /// Deletes an archived key that no sync job references.
    ///
    /// By default the key file moves into the trash: the config entry goes
    /// first, then the key file is renamed into the trash, so a crash
    /// leaves the key either in the key directory (an orphan that `verify
    /// --repair` moves into the trash) or in the trash, never gone. The key
    /// file must match the config entry before anything changes.
    /// `options.purge` destroys the key file instead (upstream's delete);
    /// `options.force` drops an entry whose key file is missing.
    ///
    /// # Locking
    ///
    /// Takes the config lock, the sync job lock and the key file lock.
    pub fn delete_key_with(&self, id: &str, options: &DeleteOptions) -> Result<Deleted, Error> {
        let config_lock = self
            .lock_config()
            .layer_err(|| format!("failed to delete encryption key '{id}'"))?;
        let sections = self
            .sections_locked(&config_lock, options.digest)
            .layer_err(|| format!("failed to delete encryption key '{id}'"))?;
        self.delete_key_from(id, sections, &config_lock, options)
    }

    /// Key ids for shell completion (all keys, archived too).
    pub fn key_ids(&self) -> Vec<String> {
        match self.index_data() {
            Ok(index) => index.ids().map(str::to_string).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Where the file of a key being stored comes from.
pub(crate) enum KeySource<'s> {
    /// Written as these exact bytes, a key file checked by the caller
    /// (restore from an export bundle: the file as it was exported).
    Exact(&'s [u8]),
    /// Already in the key directory without a config entry, left by a
    /// store that was killed after writing it: adopted as it is, never
    /// rewritten (a rotation resuming its own interrupted store, see
    /// [`EncryptionKeys::adopt_key_file`]).
    InPlace,
    /// Renamed back from a trash entry (restore): its bytes are never
    /// rewritten.
    Trash {
        /// The trash.
        trash: Trash<'s>,
        /// The trash, opened and checked.
        trash_dir: &'s DirHandle,
        /// The entry's name.
        entry: &'s str,
    },
}

impl KeySource<'_> {
    /// The operation, as crash points name it.
    fn op(&self) -> &'static str {
        match self {
            KeySource::Exact(_) | KeySource::InPlace => "store",
            KeySource::Trash { .. } => "restore",
        }
    }
}

/// How [`EncryptionKeys::delete_key_with`] deletes.
#[derive(Clone, Copy)]
pub struct DeleteOptions<'o> {
    /// Refuse if the config's digest is no longer this.
    pub digest: Option<&'o [u8; 32]>,
    /// Days the key stays in the trash before `trash purge --expired` may
    /// destroy it.
    pub keep_days: u32,
    /// Destroy the key file at once instead of moving it into the trash
    /// (upstream's delete, for crypto-shredding).
    pub purge: bool,
    /// With `purge`: destroy it even though no verified copy of it is
    /// recorded ([`crate::verified_copy`]); else that is refused.
    pub without_verified_copy: bool,
    /// If the key file is missing, drop the config entry anyway, after
    /// `warn` was told what that loses.
    pub force: bool,
    /// Why, as the trash records it (`delete`; `rotate-abort` for the new
    /// key of an aborted rotation).
    pub reason: TrashReason,
    /// Now (epoch), as recorded in the trash: tests pass their own.
    pub now: i64,
    /// Told, before anything changes, what a forced delete loses.
    pub warn: Option<&'o dyn Fn(&str)>,
}

impl Default for DeleteOptions<'_> {
    fn default() -> Self {
        Self {
            digest: None,
            keep_days: trash::DEFAULT_KEEP_DAYS,
            purge: false,
            without_verified_copy: false,
            force: false,
            reason: TrashReason::Delete,
            now: proxmox_time::epoch_i64(),
            warn: None,
        }
    }
}

/// What a delete did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Deleted {
    /// The key file is in the trash.
    Trashed {
        /// The key id.
        id: String,
        /// The name of its trash entry.
        trash_name: String,
        /// From when on `trash purge --expired` may destroy it (epoch).
        purge_after: i64,
        /// Whether a verified copy of it is recorded: without one, `trash
        /// purge --expired` keeps it past `purge_after`
        /// ([`crate::verified_copy`]).
        verified_copy: bool,
    },
    /// The key file was destroyed (`purge`).
    Purged {
        /// The key id.
        id: String,
    },
    /// The key file was missing: the config entry was dropped (`force`).
    EntryDropped {
        /// The key id.
        id: String,
        /// The fingerprint the entry recorded.
        fingerprint: Option<Fingerprint>,
        /// Trash entries holding the same key.
        trash_copies: Vec<String>,
    },
}

/// Refuses a key whose hint the config cannot hold (a control character, a
/// leading or trailing blank): bad input, named as the field `hint`.
pub(crate) fn check_hint(key_config: &KeyConfig) -> Result<(), Error> {
    if let Some(hint) = &key_config.hint
        && let Err(err) = KEY_HINT_SCHEMA.parse_simple_value(hint)
    {
        param_bail!(
            "hint",
            "the key's 'hint': {err} (a hint is one line of text without blanks at either end)"
        );
    }
    Ok(())
}

/// Refuses a key the store could not read back once stored: a hint the
/// config cannot hold ([`check_hint`]), or a key file `key_file` larger
/// than a key file is read ([`MAX_KEY_FILE_SIZE`]: written, every load of
/// the key would fail). Only a hint of tens of KiB makes a key file that
/// large (the schema bounds nothing else there), so that is bad input too,
/// named as the field `hint`; it also keeps every config line far below
/// the readers' line limit. A restore refuses such a key file too, so a
/// drill proves no copy of one (finding 73).
pub fn check_storable(key_config: &KeyConfig, key_file: &[u8]) -> Result<(), Error> {
    check_hint(key_config)?;
    if key_file.len() as u64 > MAX_KEY_FILE_SIZE {
        param_bail!(
            "hint",
            "the key's 'hint' of {} bytes makes its key file {} bytes, more than the \
             {MAX_KEY_FILE_SIZE} a key file is read with - it could never be loaded",
            key_config.hint.as_ref().map_or(0, String::len),
            key_file.len()
        );
    }
    Ok(())
}

/// The fingerprint a key will be stored with: computed and checked for an
/// unprotected key, the stored one for a protected key.
pub(crate) fn key_fingerprint(key_config: &KeyConfig) -> Result<Fingerprint, Error> {
    if key_config.is_protected() {
        return key_config.fingerprint.ok_or_else(|| {
            format_err!("protected key carries no fingerprint - it could not be checked on load")
        });
    }
    key_config.unprotected_fingerprint()
}

/// The audit event of `op` on the key of `entry`, for `dir`'s caller.
pub(crate) fn key_event(dir: &ConfigDir, op: Op, entry: &CryptKey) -> Event {
    let event = dir.audit_event(op).id(entry.id.as_str());
    match entry.info.fingerprint {
        Some(fingerprint) => event.fingerprint(fingerprint),
        None => event,
    }
}

/// How often a load starts again because the config changed under it.
const MAX_LOAD_ATTEMPTS: usize = 5;

/// Unsafe modes for a key file: group- or world-writable, or world-readable.
pub const UNSAFE_KEY_FILE_MODE_BITS: u32 = 0o027;

/// Refuses a key file that is not a regular file, is owned by someone who
/// should not be able to write it, or has an unsafe mode.
pub(crate) fn check_key_file_stat(
    path: &Path,
    stat: &EntryStat,
    dir: &ConfigDir,
) -> Result<(), Error> {
    if stat.kind != EntryKind::File {
        bail!(
            "key file {path:?} is not a regular file (it is {})",
            stat.kind_name()
        );
    }
    let mode = stat.mode;
    if mode & UNSAFE_KEY_FILE_MODE_BITS != 0 {
        bail!(
            "key file {path:?} has unsafe mode {mode:04o} (group- or world-writable, or world-readable) - \
             refusing to use it; fix with 'chmod 0640' or 'proxmox-backup-manager encryption-key verify --repair'"
        );
    }
    dir.ownership().check_trusted(KEY_FILE_CLASS, stat, path)
}

fn missing_key_file(path: &Path) -> Error {
    format_err!(
        "key file {path:?} is missing - restore it from a backup, or run 'proxmox-backup-manager encryption-key verify'"
    )
}

/// A new key to store, as a batch of stores takes it
/// ([`crate::group_commit`]): its config entry, its key file's bytes, the
/// audit event of its store (which names who asked) and its deadline.
pub(crate) struct NewKey {
    entry: CryptKey,
    key_file: Zeroizing<Vec<u8>>,
    event: Event,
    /// Until when its caller waits for the config lock.
    deadline: Instant,
}

/// A key file of a batch of stores placed under its name, not yet synced
/// into its directory: the key's index in the batch, its key file lock, its
/// intent, and the file written.
struct Placed<'p> {
    index: usize,
    key_lock: KeyFileLock,
    pending: Pending<'p>,
    written: EntryStat,
}

/// Refuses to store `entry` where its id or fingerprint is taken, in the
/// order a store checks them.
fn refuse_taken(sections: &KeySections, entry: &CryptKey) -> Result<(), Error> {
    let Some(fingerprint) = entry.info.fingerprint else {
        bail!("internal error - a key is stored without fingerprint");
    };
    match sections.taken_by(&entry.id, &fingerprint) {
        Some(KeyTaken::Id) => Err(KeystoreError::AlreadyExists {
            id: entry.id.clone(),
        }
        .into()),
        Some(KeyTaken::Fingerprint(existing_id)) => Err(KeystoreError::DuplicateFingerprint {
            fingerprint,
            existing_id: existing_id.to_string(),
        }
        .into()),
        None => Ok(()),
    }
}

/// After a store of `id` failed with `err` under its key file lock:
/// nothing of the key is left, so its lock file goes too (removed under
/// the lock, if there is no key file). Returns `err`.
fn forget_key_lock(key_dir: &DirHandle, id: &str, key_lock: KeyFileLock, err: Error) -> Error {
    if key_dir
        .stat(&key_file_name(id))
        .is_ok_and(|stat| stat.is_none())
    {
        let _ = key_lock.guard.remove_file();
    }
    err
}

/// `err`, of a step `count` stores shared, as one error each: the first
/// is `err` itself (its kind kept, for a batch of one exactly a store's
/// error), the others its text (which holds the text of each error it
/// wraps, see `ErrorLayer`). The shared steps (lock, read, intents, syncs,
/// config write) fail with no kind the API answers by (500 for each).
fn shared_error(err: Error, count: usize) -> Vec<Error> {
    let text = err.to_string();
    let mut errors = Vec::with_capacity(count);
    errors.push(err);
    errors.extend((1..count).map(|_| format_err!("{text}")));
    errors.truncate(count);
    errors
}

/// A key of a batch of stores refused because an earlier key of the batch
/// took its id or its fingerprint: their indexes in the batch.
struct Collision {
    index: usize,
    by: usize,
}

/// The results of a batch of stores, one for each key. A key refused for
/// an earlier key of the batch whose store then failed is told so, not
/// that its id exists or its key is stored (neither is true then).
fn finished(
    batch: &[NewKey],
    mut results: Vec<Option<Result<CryptKey, Error>>>,
    collisions: &[Collision],
) -> Vec<Result<CryptKey, Error>> {
    for collision in collisions {
        if !matches!(results[collision.by], Some(Err(_))) {
            continue;
        }
        let (id, by) = (
            &batch[collision.index].entry.id,
            &batch[collision.by].entry.id,
        );
        // naming no other id than its own: the other store was another
        // caller's, and it stored nothing
        let what = match id == by {
            true => format!("another store of '{id}'"),
            false => "a store of this key under another id".to_string(),
        };
        results[collision.index] = Some(Err(format_err!(
            "{what} made at the same time failed - nothing is stored for this request: try again"
        )));
    }
    results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| Err(format_err!("internal error - a store was not made")))
        })
        .collect()
}

/// Store refuses to write over anything but nothing or an empty file.
fn refuse_existing_key_file(key_dir: &DirHandle, name: &str) -> Result<(), Error> {
    match key_dir.stat(name)? {
        Some(stat) if stat.kind == EntryKind::File && stat.size == 0 => Ok(()),
        Some(_) => bail!(
            "key file {:?} exists already (left by an interrupted operation?) - \
             run 'proxmox-backup-manager encryption-key verify --repair' to move orphans into the trash",
            key_dir.entry_path(name)
        ),
        None => Ok(()),
    }
}

/// Takes the config lock of the default config dir.
pub fn lock_config() -> Result<EncryptionKeysLock, Error> {
    ConfigDir::default_dir()?.encryption_keys().lock_config()
}

/// The config of the default config dir and its digest.
pub fn config() -> Result<(SectionConfigData, [u8; 32]), Error> {
    ConfigDir::default_dir()?.encryption_keys().config()
}

/// Saves the config of the default config dir (caller holds the lock).
pub fn save_config(config: &SectionConfigData, held: &EncryptionKeysLock) -> Result<(), Error> {
    ConfigDir::default_dir()?
        .encryption_keys()
        .save_config(config, held)
}

/// Key ids of the default config dir, for shell completion.
pub fn complete_encryption_key_id(_arg: &str, _param: &HashMap<String, String>) -> Vec<String> {
    match ConfigDir::default_dir() {
        Ok(dir) => dir.encryption_keys().key_ids(),
        Err(_) => Vec::new(),
    }
}

/// Loads a key of the default config dir, checked against the config.
pub fn load_key_config(id: &str, fail_on_archived: bool) -> Result<KeyConfig, Error> {
    ConfigDir::default_dir()?
        .encryption_keys()
        .load_key_config(id, fail_on_archived)
}

/// Stores a key in the default config dir.
pub fn store_key(id: &str, key_config: &KeyConfig) -> Result<CryptKey, Error> {
    ConfigDir::default_dir()?
        .encryption_keys()
        .store_key(id, key_config)
}

/// Deletes a key of the default config dir (caller holds the config lock).
pub fn delete_key(
    id: &str,
    config: SectionConfigData,
    held: &EncryptionKeysLock,
) -> Result<(), Error> {
    ConfigDir::default_dir()?
        .encryption_keys()
        .delete_key(id, config, held)
}

/// Archives a key of the default config dir.
pub fn archive_key(id: &str, digest: Option<&[u8; 32]>) -> Result<CryptKey, Error> {
    ConfigDir::default_dir()?
        .encryption_keys()
        .archive_key(id, digest)
}

/// Unarchives a key of the default config dir.
pub fn unarchive_key(id: &str, digest: Option<&[u8; 32]>) -> Result<CryptKey, Error> {
    ConfigDir::default_dir()?
        .encryption_keys()
        .unarchive_key(id, digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ownership;

    /// The backup user can rename `encryption-keys/` away: a store must not
    /// then start a new, empty key directory beside the config's keys.
    #[test]
    fn a_missing_key_dir_is_not_recreated_while_the_config_lists_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let dir =
            ConfigDir::with_ownership(tmp.path(), Ownership::current_user().unwrap()).unwrap();
        let keys = dir.encryption_keys();
        keys.store_key("k-one", &KeyConfig::without_password([7u8; 32]).unwrap())
            .unwrap();
        std::fs::rename(keys.key_dir(), tmp.path().join("moved-away")).unwrap();
        let config_before = std::fs::read(keys.config_path()).unwrap();

        let err = keys
            .store_key("k-two", &KeyConfig::without_password([8u8; 32]).unwrap())
            .unwrap_err()
            .to_string();

        assert!(
            err.contains("is missing while") && err.contains("lists 1 key(s)"),
            "{err}"
        );
        assert!(!keys.key_dir().exists());
        assert_eq!(std::fs::read(keys.config_path()).unwrap(), config_before);
    }

    /// A store whose config write fails removes its new key file only if
    /// the config surely lacks the key: after a failure past the rename
    /// (the directory's fsync) the config names it, and an unreadable
    /// config tells nothing.
    #[test]
    fn a_key_file_is_removed_only_when_the_config_surely_lacks_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir =
            ConfigDir::with_ownership(tmp.path(), Ownership::current_user().unwrap()).unwrap();
        let keys = dir.encryption_keys();
        let key = KeyConfig::without_password([7u8; 32]).unwrap();
        keys.store_key("k-one", &key).unwrap();
        assert!(!keys.config_surely_lacks("k-one"));
        assert!(keys.config_surely_lacks("k-two"));

        std::fs::write(keys.config_path(), "not a section config\n").unwrap();
        assert!(!keys.config_surely_lacks("k-two"));
    }
}
