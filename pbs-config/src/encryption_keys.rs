//! Encryption key store: `encryption-keys.cfg` plus one `<id>.enc` per key.
//!
//! Key files are 0640 root:backup in a 0750 root:backup directory; lock files
//! are 0660 backup:backup (see [`Ownership`](crate::Ownership) for non-root
//! runs). Writers lock the config, then the key file. Loading always compares
//! the key file's fingerprint with the config (and, for an unprotected key,
//! with the fingerprint computed from the key bytes). Readers take no lock:
//! both files are only ever replaced atomically.
//!
//! Crash order, so that every config entry always has its key file:
//! - store writes the key file, then the config; if the config write fails
//!   it removes the key file again. A crash in between leaves an orphan key
//!   file, which `verify` reports and `verify --repair` removes;
//! - delete removes the config entry, then the key file, then its lock file;
//!   a crash in between leaves an orphan key file or a stale lock file.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, LazyLock};

use anyhow::{Error, bail, format_err};
use zeroize::Zeroize;

use proxmox_lang::error::ErrorLayer;
use proxmox_schema::ApiType;
use proxmox_section_config::{SectionConfig, SectionConfigData, SectionConfigPlugin};

use pbs_api_types::{CRYPT_KEY_ID_SCHEMA, CryptKey, Fingerprint, KeyInfo};
use pbs_key_config::{KeyConfig, MAX_KEY_FILE_SIZE};

use crate::cache::{read_config, read_config_text};
use crate::dir_handle::{DirHandle, EntryKind, EntryStat, read_all};
use crate::files::{
    ENCRYPTION_KEYS_CFG, KEY_DIR_NAME, KEY_FILE_CLASS, key_file_name, key_lock_name,
};
use crate::lock::KeyFileLock;
use crate::{ConfigDir, EncryptionKeysLock, KeyIndex, KeySections, KeystoreError, failpoint};

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

/// Seconds since the epoch.
fn epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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

    /// [`EncryptionKeys::open_key_dir`], creating the directory if missing.
    pub fn ensure_key_dir(&self, base: &DirHandle) -> Result<DirHandle, Error> {
        let ownership = self.dir.ownership();
        base.ensure_dir(
            KEY_DIR_NAME,
            ownership.key_dir_options(),
            ownership.key_dir_policy(),
        )
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
        self.dir.keys_cache.get(
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
        self.dir.keys_cache.get_data(
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

    /// Under the config lock: the config as writers edit it, and the file
    /// text it stands for. A writer in a long-running process (the daemon)
    /// mostly finds the file as this process's last write left it: then
    /// that write's `KeySections` is reused instead of parsed again. Reused
    /// only if the file holds exactly its text, compared byte for byte
    /// (never by stamp: a lost update is worse than a stale read).
    fn sections_locked(&self, _held: &EncryptionKeysLock) -> Result<(KeySections, String), Error> {
        let path = self.config_path();
        let base = self.dir.open_base()?;
        let raw = read_config(base.as_ref(), &ENCRYPTION_KEYS_CFG, self.dir.ownership())?;
        let written = self.dir.written_keys.lock().unwrap().take();
        if let Some(sections) = written
            && sections.is_text_of(&raw)
        {
            return Ok((sections, raw));
        }
        Ok((KeySections::parse(&path, &raw)?, raw))
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
        let relocated = stored.is_absolute()
            && stored
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
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
        let result =
            KeyConfig::from_json(&data).layer_err(|| format!("invalid key file {:?}", opened.path));
        data.zeroize();
        result
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
            match key_config.fingerprint {
                Some(fp) => fp,
                None => bail!(
                    "protected key file of '{id}' stores no fingerprint - it cannot be checked against the config"
                ),
            }
        } else {
            let no_passphrase = || -> Result<Vec<u8>, Error> { bail!("unprotected key") };
            let (mut key, _created, computed) = key_config
                .decrypt(&no_passphrase)
                .layer_err(|| format!("key file {:?} is corrupt", self.key_path(id)))?;
            key.zeroize();
            computed
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
    /// # Locking
    ///
    /// Takes the config lock, then the key file lock; the caller holds neither.
    pub fn store_key(&self, id: &str, key_config: &KeyConfig) -> Result<CryptKey, Error> {
        self.store_key_inner(id, key_config)
            .layer_err(|| format!("failed to store encryption key '{id}'"))
    }

    fn store_key_inner(&self, id: &str, key_config: &KeyConfig) -> Result<CryptKey, Error> {
        check_key_id(id)?;
        let fingerprint = key_fingerprint(key_config)?;

        // the first store into a fresh config dir creates it
        let base = self.dir.open_base_or_create()?;
        let config_lock = self.lock_config()?;
        let (mut sections, raw) = self.sections_locked(&config_lock)?;
        drop(raw);
        if sections.contains(id) {
            return Err(KeystoreError::AlreadyExists { id: id.to_string() }.into());
        }
        if let Some(existing_id) = sections.find_fingerprint(&fingerprint) {
            return Err(KeystoreError::DuplicateFingerprint {
                fingerprint,
                existing_id: existing_id.to_string(),
            }
            .into());
        }

        let key_path = self.key_path(id);
        let mut info = KeyInfo::from(key_config);
        info.path = Some(key_path.to_string_lossy().into_owned());
        info.fingerprint = Some(fingerprint);
        let entry = CryptKey {
            id: id.to_string(),
            info,
            archived_at: None,
        };
        // render (and so validate) the new config before touching any file
        sections.set(&entry)?;
        let raw = sections.render();

        let key_dir = self.ensure_key_dir(&base)?;
        let key_lock = self.lock_key_file(&key_dir, id)?;
        failpoint::hit("store:locked");
        if let Err(err) = self.write_key_and_config(&key_dir, id, key_config, &raw, &config_lock) {
            // nothing of this key is left: its lock file goes too (under the lock)
            if key_dir
                .stat(&key_file_name(id))
                .is_ok_and(|stat| stat.is_none())
            {
                let _ = key_lock.guard.remove_file();
            }
            return Err(err);
        }
        self.keep_written(sections);
        drop(key_lock);
        drop(config_lock);
        Ok(entry)
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

    /// The two writes of a store: key file, then config; if the config write
    /// fails and the config surely lacks the key, the key file is removed
    /// again.
    fn write_key_and_config(
        &self,
        key_dir: &DirHandle,
        id: &str,
        key_config: &KeyConfig,
        raw_config: &str,
        config_lock: &EncryptionKeysLock,
    ) -> Result<(), Error> {
        let name = key_file_name(id);
        let key_path = key_dir.entry_path(&name);
        refuse_existing_key_file(key_dir, &name)?;
        let key_data = key_config.to_json()?;
        key_dir.replace(
            &name,
            key_data.as_bytes(),
            self.dir.ownership().options_for(KEY_FILE_CLASS),
            Some("store:key"),
        )?;

        if let Err(err) = self.write_config_text(raw_config, config_lock, Some("store:config")) {
            // no config entry without its key file: a failure after the
            // rename (the directory's fsync) leaves the new config in place
            if !self.config_surely_lacks(id) {
                return Err(err.context(format!(
                    "the config may name key '{id}' already - its key file {key_path:?} is kept \
                     (run 'proxmox-backup-manager encryption-key verify')"
                )));
            }
            // and no key file left behind
            if let Err(remove_err) = remove_synced(key_dir, &name) {
                let text = format!(
                    "{err} - and removing the new key file failed too: {remove_err} (run verify --repair)"
                );
                return Err(err.context(text));
            }
            return Err(err);
        }
        Ok(())
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
            let (mut sections, raw) = self.sections_locked(&config_lock)?;
            if let Some(digest) = digest {
                let current_digest = openssl::sha::sha256(raw.as_bytes());
                crate::detect_modified_configuration_file(digest, &current_digest)?;
            }
            drop(raw);
            let mut entry = sections.entry(id)?;
            match (archived, entry.archived_at) {
                (true, Some(_)) => bail!("encryption key '{id}' is already archived"),
                (false, None) => bail!("encryption key '{id}' is not archived"),
                _ => {}
            }
            let _sync_lock;
            if archived {
                _sync_lock = self.dir.sync_jobs().lock_config()?;
                let (active_in, _) = self.dir.sync_jobs().jobs_using_key(id)?;
                if !active_in.is_empty() {
                    return Err(KeystoreError::InUse {
                        id: id.to_string(),
                        active_in,
                        associated_in: Vec::new(),
                    }
                    .into());
                }
                entry.archived_at = Some(epoch_now());
            } else {
                entry.archived_at = None;
            }
            sections.set(&entry)?;
            self.write_config_text(&sections.render(), &config_lock, Some("archive:config"))?;
            self.keep_written(sections);
            Ok(entry)
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

    /// Deletes an archived key that no sync job references: the config
    /// entry, then the key file, then its lock file. The key file must match
    /// the config entry before anything is removed.
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
            .and_then(|raw| KeySections::parse(&path, &raw))
            .layer_err(|| format!("failed to delete encryption key '{id}'"))?;
        self.delete_key_from(id, sections, held)
    }

    fn delete_key_from(
        &self,
        id: &str,
        mut sections: KeySections,
        held: &EncryptionKeysLock,
    ) -> Result<(), Error> {
        (|| {
            check_key_id(id)?;
            let entry = sections.entry(id)?;
            if entry.archived_at.is_none() {
                return Err(KeystoreError::NotArchived { id: id.to_string() }.into());
            }
            let _sync_lock = self.dir.sync_jobs().lock_config()?;
            let (active_in, associated_in) = self.dir.sync_jobs().jobs_using_key(id)?;
            if !active_in.is_empty() || !associated_in.is_empty() {
                return Err(KeystoreError::InUse {
                    id: id.to_string(),
                    active_in,
                    associated_in,
                }
                .into());
            }
            self.check_entry_path(&entry)?;

            let Some(key_dir) = self
                .dir
                .open_base()?
                .map(|base| self.open_key_dir(&base))
                .transpose()?
                .flatten()
            else {
                return Err(missing_key_file(&self.key_path(id)));
            };
            let key_lock = self.lock_key_file(&key_dir, id)?;
            let key_config = self.read_key_file_in(&key_dir, id)?;
            self.check_key_matches(&entry, &key_config)?;
            failpoint::hit("delete:locked");

            sections.remove(id);
            self.write_config_text(&sections.render(), held, Some("delete:config"))?;
            self.keep_written(sections);
            remove_synced(&key_dir, &key_file_name(id))?;
            failpoint::hit("delete:key-removed");
            key_lock.guard.remove_file()
        })()
        .layer_err(|| format!("failed to delete encryption key '{id}'"))
    }

    /// Takes the config lock, checks `digest` and deletes the key (see
    /// [`EncryptionKeys::delete_key`]).
    pub fn remove_key(&self, id: &str, digest: Option<&[u8; 32]>) -> Result<(), Error> {
        let config_lock = self
            .lock_config()
            .layer_err(|| format!("failed to delete encryption key '{id}'"))?;
        let (sections, raw) = self
            .sections_locked(&config_lock)
            .layer_err(|| format!("failed to delete encryption key '{id}'"))?;
        if let Some(digest) = digest {
            let current_digest = openssl::sha::sha256(raw.as_bytes());
            crate::detect_modified_configuration_file(digest, &current_digest)
                .layer_err(|| format!("failed to delete encryption key '{id}'"))?;
        }
        drop(raw);
        self.delete_key_from(id, sections, &config_lock)
    }

    /// Key ids for shell completion (all keys, archived too).
    pub fn key_ids(&self) -> Vec<String> {
        match self.index_data() {
            Ok(index) => index.ids().map(str::to_string).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// The fingerprint a key will be stored with: computed and checked for an
/// unprotected key, the stored one for a protected key.
fn key_fingerprint(key_config: &KeyConfig) -> Result<Fingerprint, Error> {
    if key_config.is_protected() {
        return key_config.fingerprint.ok_or_else(|| {
            format_err!("protected key carries no fingerprint - it could not be checked on load")
        });
    }
    let no_passphrase = || -> Result<Vec<u8>, Error> { bail!("unprotected key") };
    let (mut key, _created, fingerprint) = key_config.decrypt(&no_passphrase)?;
    key.zeroize();
    Ok(fingerprint)
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

/// Store refuses to write over anything but nothing or an empty file.
fn refuse_existing_key_file(key_dir: &DirHandle, name: &str) -> Result<(), Error> {
    match key_dir.stat(name)? {
        Some(stat) if stat.kind == EntryKind::File && stat.size == 0 => Ok(()),
        Some(_) => bail!(
            "key file {:?} exists already (left by an interrupted operation?) - \
             run 'proxmox-backup-manager encryption-key verify --repair' to remove orphans",
            key_dir.entry_path(name)
        ),
        None => Ok(()),
    }
}

/// Removes a file from `dir` and syncs the directory; a missing file is fine.
pub(crate) fn remove_synced(dir: &DirHandle, name: &str) -> Result<(), Error> {
    if dir.unlink(name)? {
        dir.sync()?;
    }
    Ok(())
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
