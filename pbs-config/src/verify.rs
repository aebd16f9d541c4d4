//! `verify` and `verify --repair`: is the key store what DESIGN.md says it is?
//!
//! Checked, under the config lock so no writer is half-way:
//! - every config entry has a readable, regular key file whose fingerprint
//!   matches the entry (and the key bytes, for unprotected keys), and a
//!   `path` that names it;
//! - modes and owners of the config file, the key directory, key files and
//!   lock files;
//! - leftovers: key files without an entry (orphans, from a crash between the
//!   two writes of store or delete), temp files of interrupted atomic writes,
//!   lock files of keys that no longer exist;
//! - sync jobs that name keys which do not exist.
//!
//! Repair fixes modes and owners, rewrites a relocated `path`, and removes
//! orphans, temp files and stale lock files. It never removes a key file the
//! config references, and it reports every action it took.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Error, bail};
use serde::Serialize;
use zeroize::Zeroize;

use proxmox_lang::error::ErrorLayer;

use pbs_api_types::CryptKey;
use pbs_key_config::{KeyConfig, MAX_KEY_FILE_SIZE};

use crate::dir_handle::{DirHandle, EntryKind, EntryStat, read_all};
use crate::encryption_keys::{ENCRYPTION_KEYS_CFG_TYPE_ID, EncryptionKeys, remove_synced};
use crate::files::{
    self, ConfigFile, FileClass, KEY_DIR_MODE, KEY_DIR_NAME, KEY_FILE_CLASS, KEY_LOCK_CLASS,
    key_file_name,
};
use crate::ownership::{group_name_of, user_name_of};
use crate::sync::SYNC_CFG_TYPE_ID;
use crate::{ConfigDir, EncryptionKeysLock};

/// What kind of problem a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A config entry without its key file.
    MissingKeyFile,
    /// A key file that cannot be used: not a regular file, unreadable, not a
    /// key file.
    InvalidKeyFile,
    /// A key file whose key does not match the config entry.
    FingerprintMismatch,
    /// A config entry whose `path` names a file outside the key directory.
    PathOutsideKeyDir,
    /// A config entry whose `path` is missing or names this key's file
    /// under another config dir (restored or relocated): repair rewrites it.
    PathNotCanonical,
    /// A file or directory whose mode is not the expected one.
    WrongMode,
    /// A file or directory whose owner or group is not the expected one.
    WrongOwner,
    /// A key file without a config entry.
    OrphanKeyFile,
    /// A temp file left by an interrupted atomic write.
    TempFile,
    /// A lock file of a key that no longer exists.
    StaleLockFile,
    /// A file in the key directory that the key store does not know.
    UnknownFile,
    /// A sync job naming a key that does not exist.
    DanglingJobReference,
    /// A config entry the key store cannot use (an unknown kdf, say).
    InvalidConfigEntry,
    /// A symbolic link where the store keeps a file or directory: left
    /// alone (repair never changes what a link points to).
    SymbolicLink,
    /// The key directory is not a directory (a file, say): no key file is
    /// checked, nothing under that path is repaired.
    InvalidKeyDir,
}

impl FindingKind {
    /// Whether `verify --repair` fixes this kind.
    pub fn is_repairable(self) -> bool {
        matches!(
            self,
            FindingKind::PathNotCanonical
                | FindingKind::WrongMode
                | FindingKind::WrongOwner
                | FindingKind::OrphanKeyFile
                | FindingKind::TempFile
                | FindingKind::StaleLockFile
        )
    }
}

/// One problem found.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Finding {
    /// What kind of problem.
    pub kind: FindingKind,
    /// The key id concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The file concerned.
    pub path: PathBuf,
    /// What is wrong, for a human.
    pub message: String,
    /// Whether `verify --repair` fixes it.
    pub repairable: bool,
    /// Where the file is, for repair: reached again through the handles of
    /// the same operation, never by `path`.
    #[serde(skip)]
    place: Option<Place>,
}

/// A file a finding is about, as repair reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Place {
    /// `name` in the config dir, of class `class`.
    Base { name: String, class: FileClass },
    /// `name` in the key directory, of class `class`.
    KeyDir { name: String, class: FileClass },
    /// The key directory itself.
    KeyDirItself,
}

/// One action `verify --repair` took.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Repair {
    /// The file acted on.
    pub path: PathBuf,
    /// What was done.
    pub action: String,
}

/// The result of [`ConfigDir::verify`].
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct VerifyReport {
    /// The config dir checked.
    pub config_dir: PathBuf,
    /// The ownership policy in force.
    pub ownership: String,
    /// Number of config entries checked.
    pub keys_checked: usize,
    /// Problems found (after repair: those that remain).
    pub findings: Vec<Finding>,
    /// Actions taken by repair.
    pub repaired: Vec<Repair>,
    /// Repairs that failed, each with the error; the other repairs went on
    /// and the finding is still in `findings`.
    pub repair_failed: Vec<Repair>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

struct Checker<'a> {
    keys: EncryptionKeys<'a>,
    base: &'a DirHandle,
    /// The key directory, if it is one we may look into.
    key_dir: Option<&'a DirHandle>,
    findings: Vec<Finding>,
}

impl Checker<'_> {
    fn add(
        &mut self,
        kind: FindingKind,
        id: Option<&str>,
        path: &Path,
        place: Option<Place>,
        message: String,
    ) {
        self.findings.push(Finding {
            kind,
            id: id.map(str::to_string),
            path: path.to_owned(),
            message,
            repairable: kind.is_repairable(),
            place,
        });
    }

    /// Mode and owner of an entry, as `stat` (taken without following a
    /// link) says. A symlink is a finding of its own: its mode says
    /// nothing, and repair never changes what a link points to.
    fn check_stat(
        &mut self,
        place: Place,
        path: &Path,
        stat: &EntryStat,
        id: Option<&str>,
        mode: u32,
        class: FileClass,
    ) {
        if stat.kind == EntryKind::Symlink {
            self.add(
                FindingKind::SymbolicLink,
                id,
                path,
                None,
                format!("{path:?} is a symbolic link - left alone, replace it by hand"),
            );
            return;
        }
        if stat.mode != mode {
            self.add(
                FindingKind::WrongMode,
                id,
                path,
                Some(place.clone()),
                format!("{path:?} has mode {:04o}, expected {mode:04o}", stat.mode),
            );
        }
        let (uid, gid) = self.keys.dir().ownership().owner_of(class);
        if stat.uid != uid.as_raw() || stat.gid != gid.as_raw() {
            self.add(
                FindingKind::WrongOwner,
                id,
                path,
                Some(place),
                format!(
                    "{path:?} is owned by {}:{}, expected {}:{}",
                    user_name_of(stat.uid),
                    group_name_of(stat.gid),
                    user_name_of(uid.as_raw()),
                    group_name_of(gid.as_raw()),
                ),
            );
        }
    }

    /// Mode and owner of a config dir file, if it exists.
    fn check_base_file(&mut self, file: &ConfigFile) -> Result<(), Error> {
        if let Some(stat) = self.base.stat(file.name)? {
            let place = Place::Base {
                name: file.name.to_string(),
                class: file.class,
            };
            let path = self.base.entry_path(file.name);
            self.check_stat(place, &path, &stat, None, file.class.mode(), file.class);
        }
        Ok(())
    }

    fn check_entry(&mut self, key_dir: &DirHandle, entry: &CryptKey) -> Result<(), Error> {
        let id = entry.id.as_str();
        let key_path = self.keys.key_path(id);
        match self.keys.check_entry_path(entry) {
            Ok(true) => {}
            Ok(false) => self.add(
                FindingKind::PathNotCanonical,
                Some(id),
                &key_path,
                None,
                format!(
                    "config entry of '{id}' names path {:?} instead of {key_path:?}",
                    entry.info.path.as_deref().unwrap_or("(none)")
                ),
            ),
            Err(err) => {
                self.add(
                    FindingKind::PathOutsideKeyDir,
                    Some(id),
                    &key_path,
                    None,
                    err.to_string(),
                );
                return Ok(());
            }
        }

        let name = key_file_name(id);
        let Some(stat) = key_dir.stat(&name)? else {
            self.add(
                FindingKind::MissingKeyFile,
                Some(id),
                &key_path,
                None,
                format!("key file {key_path:?} of '{id}' is missing - restore it from a backup"),
            );
            return Ok(());
        };
        if stat.kind != EntryKind::File {
            let message = match stat.kind {
                EntryKind::Symlink => format!(
                    "key file {key_path:?} of '{id}' is a symbolic link - left alone, replace it by hand"
                ),
                _ => format!("key file {key_path:?} of '{id}' is not a regular file"),
            };
            self.add(
                FindingKind::InvalidKeyFile,
                Some(id),
                &key_path,
                None,
                message,
            );
            return Ok(());
        }
        let place = Place::KeyDir {
            name: name.clone(),
            class: KEY_FILE_CLASS,
        };
        self.check_stat(
            place,
            &key_path,
            &stat,
            Some(id),
            KEY_FILE_CLASS.mode(),
            KEY_FILE_CLASS,
        );

        // read regardless of mode and owner: those are findings of their own
        let key_config = match read_key_file_unchecked(key_dir, &name) {
            Ok(key_config) => key_config,
            Err(err) => {
                self.add(
                    FindingKind::InvalidKeyFile,
                    Some(id),
                    &key_path,
                    None,
                    err.to_string(),
                );
                return Ok(());
            }
        };
        if let Err(err) = self.keys.check_key_matches(entry, &key_config) {
            self.add(
                FindingKind::FingerprintMismatch,
                Some(id),
                &key_path,
                None,
                err.to_string(),
            );
        }
        Ok(())
    }

    /// Lists the key directory. `known` holds every id of the config, valid
    /// entries or not: a key file of an invalid entry is not an orphan.
    fn scan_key_dir(&mut self, key_dir: &DirHandle, known: &HashSet<&str>) -> Result<(), Error> {
        let known = |id: &str| known.contains(id);
        for name in key_dir.names()? {
            let path = key_dir.entry_path(&name);
            let Some(stat) = key_dir.stat(&name)? else {
                continue; // gone since the listing
            };
            let in_key_dir = |class| {
                Some(Place::KeyDir {
                    name: name.clone(),
                    class,
                })
            };
            // a known key's file is reported by check_entry already
            let known_key_file = name.strip_suffix(".enc").is_some_and(known);
            if stat.kind == EntryKind::Symlink {
                if !known_key_file {
                    self.add(
                        FindingKind::SymbolicLink,
                        None,
                        &path,
                        None,
                        format!("{path:?} is a symbolic link - left alone, remove it by hand"),
                    );
                }
            } else if stat.kind != EntryKind::File {
                // only regular files are leftovers repair may remove
                if !known_key_file {
                    self.add(
                        FindingKind::UnknownFile,
                        None,
                        &path,
                        None,
                        format!("{path:?} is not a regular file - left alone, remove it by hand"),
                    );
                }
            } else if is_temp_name(&name) {
                self.add(
                    FindingKind::TempFile,
                    None,
                    &path,
                    in_key_dir(KEY_FILE_CLASS),
                    format!("{path:?} is a temp file left by an interrupted write"),
                );
            } else if let Some(id) = name.strip_suffix(".enc.lck") {
                if known(id) || key_dir.stat(&key_file_name(id))?.is_some() {
                    let place = Place::KeyDir {
                        name: name.clone(),
                        class: KEY_LOCK_CLASS,
                    };
                    self.check_stat(
                        place,
                        &path,
                        &stat,
                        Some(id),
                        KEY_LOCK_CLASS.mode(),
                        KEY_LOCK_CLASS,
                    );
                } else {
                    self.add(
                        FindingKind::StaleLockFile,
                        Some(id),
                        &path,
                        in_key_dir(KEY_LOCK_CLASS),
                        format!("{path:?} is the lock file of a key that no longer exists"),
                    );
                }
            } else if let Some(id) = name.strip_suffix(".enc") {
                if !known(id) {
                    self.add(
                        FindingKind::OrphanKeyFile,
                        Some(id),
                        &path,
                        in_key_dir(KEY_FILE_CLASS),
                        format!(
                            "{path:?} is a key file without config entry (left by an interrupted store or delete)"
                        ),
                    );
                }
            } else {
                self.add(
                    FindingKind::UnknownFile,
                    None,
                    &path,
                    None,
                    format!("{path:?} is not a file of the key store - left alone"),
                );
            }
        }
        Ok(())
    }

    /// Temp files of interrupted writes of the config dir's own files.
    fn scan_base_dir(&mut self) -> Result<(), Error> {
        for name in self.base.names()? {
            let Some(file) = files::ALL
                .iter()
                .find(|file| name.strip_prefix(file.name).is_some_and(is_temp_suffix))
            else {
                continue;
            };
            // only regular files are leftovers repair may remove
            if !self
                .base
                .stat(&name)?
                .is_some_and(|stat| stat.kind == EntryKind::File)
            {
                continue;
            }
            let path = self.base.entry_path(&name);
            let place = Place::Base {
                name: name.clone(),
                class: file.class,
            };
            self.add(
                FindingKind::TempFile,
                None,
                &path,
                Some(place),
                format!("{path:?} is a temp file left by an interrupted write"),
            );
        }
        Ok(())
    }
}

/// Reads and parses a key file without the mode and owner checks of a load
/// (verify reports those as findings of their own).
fn read_key_file_unchecked(key_dir: &DirHandle, name: &str) -> Result<KeyConfig, Error> {
    let Some(mut opened) = key_dir.open_regular(name, MAX_KEY_FILE_SIZE)? else {
        bail!("key file {:?} is missing", key_dir.entry_path(name));
    };
    let mut data = read_all(&mut opened, MAX_KEY_FILE_SIZE)?;
    let result =
        KeyConfig::from_json(&data).layer_err(|| format!("invalid key file {:?}", opened.path));
    data.zeroize();
    result
}

/// `<name>.tmp_XXXXXX`, as `proxmox_sys::fs::make_tmp_file` names temp files.
fn is_temp_suffix(rest: &str) -> bool {
    rest.strip_prefix(".tmp_").is_some_and(|suffix| {
        suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

fn is_temp_name(name: &str) -> bool {
    name.rfind(".tmp_")
        .is_some_and(|pos| pos > 0 && is_temp_suffix(&name[pos..]))
}

/// The key directory as verify found it.
enum KeyDirState {
    /// Missing: nothing to check.
    Missing,
    /// A directory we may look into.
    Usable(DirHandle),
    /// A directory whose owner or mode lets others change what is in it:
    /// reported, not looked into; repair fixes owner and mode first.
    Untrusted(EntryStat),
    /// Not a directory (a symbolic link, a file).
    NotADirectory(EntryStat),
}

fn inspect_key_dir(dir: &ConfigDir, base: &DirHandle) -> Result<KeyDirState, Error> {
    let Some(stat) = base.stat(KEY_DIR_NAME)? else {
        return Ok(KeyDirState::Missing);
    };
    if stat.kind != EntryKind::Dir {
        return Ok(KeyDirState::NotADirectory(stat));
    }
    let policy = dir.ownership().key_dir_policy();
    // opened without the owner check, then judged on its own descriptor
    let Some(key_dir) = base.open_dir_any(KEY_DIR_NAME)? else {
        return Ok(KeyDirState::Missing);
    };
    let stat = key_dir.stat_self()?;
    let trusted =
        (stat.uid == 0 || stat.uid == policy.uid) && stat.mode & policy.forbidden_mode_bits == 0;
    Ok(if trusted {
        KeyDirState::Usable(key_dir)
    } else {
        KeyDirState::Untrusted(stat)
    })
}

impl ConfigDir {
    /// Checks the key store (see the module docs); with `repair`, fixes
    /// what can be fixed and reports what it did and what remains.
    ///
    /// # Errors
    ///
    /// Only when the store cannot be checked at all (config unreadable or
    /// unparseable, lock timeout); problems are findings in the report.
    ///
    /// # Locking
    ///
    /// Takes the config lock and the sync job lock; repairs of a key's files
    /// take that key's lock too.
    pub fn verify(&self, repair: bool) -> Result<VerifyReport, Error> {
        let Some(base) = self.open_base()? else {
            bail!(
                "unable to verify the key store - config dir {:?} does not exist",
                self.base()
            );
        };
        let keys = self.encryption_keys();
        let config_lock = keys
            .lock_config()
            .layer_err(|| "unable to verify the key store")?;
        let _sync_lock = self
            .sync_jobs()
            .lock_config()
            .layer_err(|| "unable to verify the key store")?;

        let mut report = self.check(&keys, &base)?;
        if repair && report.findings.iter().any(|f| f.repairable) {
            let (repaired, failed) = self.repair(&keys, &base, &report.findings, &config_lock);
            report = self.check(&keys, &base)?;
            report.repaired = repaired;
            report.repair_failed = failed;
        }
        Ok(report)
    }

    fn check(&self, keys: &EncryptionKeys, base: &DirHandle) -> Result<VerifyReport, Error> {
        let index = keys
            .index_data()
            .layer_err(|| "unable to verify the key store")?;
        let (valid, invalid) = index.partition();
        let entries: Vec<CryptKey> = valid.into_iter().cloned().collect();
        let key_dir_state = inspect_key_dir(self, base)?;
        let key_dir = match &key_dir_state {
            KeyDirState::Usable(key_dir) => Some(key_dir),
            _ => None,
        };
        let mut checker = Checker {
            keys: *keys,
            base,
            key_dir,
            findings: Vec::new(),
        };
        for (id, err) in invalid {
            checker.add(
                FindingKind::InvalidConfigEntry,
                Some(id),
                &keys.config_path(),
                None,
                format!("config entry of encryption key '{id}' is invalid - {err}"),
            );
        }
        checker.check_base_file(&files::ENCRYPTION_KEYS_CFG)?;
        checker.check_base_file(&files::ENCRYPTION_KEYS_LOCK)?;
        // a key directory that is a symlink or a file, or one others may
        // write: report it and look at nothing under it
        let key_dir_path = keys.key_dir();
        match &key_dir_state {
            KeyDirState::Missing => {}
            KeyDirState::Usable(usable) => {
                let stat = usable.stat_self()?;
                checker.check_stat(
                    Place::KeyDirItself,
                    &key_dir_path,
                    &stat,
                    None,
                    KEY_DIR_MODE,
                    FileClass::Config,
                );
            }
            KeyDirState::Untrusted(stat) => {
                checker.check_stat(
                    Place::KeyDirItself,
                    &key_dir_path,
                    stat,
                    None,
                    KEY_DIR_MODE,
                    FileClass::Config,
                );
                checker.add(
                    FindingKind::InvalidKeyDir,
                    None,
                    &key_dir_path,
                    None,
                    format!(
                        "key directory {key_dir_path:?} is owned by {} with mode {:04o}: others could have changed what is in it, so no key file was checked - repair fixes its owner and mode, then run verify again",
                        user_name_of(stat.uid),
                        stat.mode
                    ),
                );
            }
            KeyDirState::NotADirectory(stat) if stat.kind == EntryKind::Symlink => {
                checker.add(
                    FindingKind::SymbolicLink,
                    None,
                    &key_dir_path,
                    None,
                    format!("{key_dir_path:?} is a symbolic link - left alone, replace it by hand"),
                );
            }
            KeyDirState::NotADirectory(_) => {
                checker.add(
                    FindingKind::InvalidKeyDir,
                    None,
                    &key_dir_path,
                    None,
                    format!(
                        "key directory {key_dir_path:?} is not a directory - no key file was checked; move it away and restore the directory from a backup"
                    ),
                );
            }
        }
        let known: HashSet<&str> = index.ids().collect();
        if let Some(key_dir) = checker.key_dir {
            for entry in &entries {
                checker.check_entry(key_dir, entry)?;
            }
            checker.scan_key_dir(key_dir, &known)?;
        }
        checker.scan_base_dir()?;

        let (jobs, _) = self.sync_jobs().config_shared()?;
        for job_id in jobs.ids_of_type(SYNC_CFG_TYPE_ID) {
            let job = &jobs.sections[job_id].1;
            let mut named: Vec<&str> = job["associated-key"]
                .as_array()
                .map(|list| list.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            named.extend(job["active-encryption-key"].as_str());
            for key_id in named {
                if !known.contains(key_id) {
                    let path = self.sync_jobs().config_path();
                    checker.add(
                        FindingKind::DanglingJobReference,
                        Some(key_id),
                        &path,
                        None,
                        format!("sync job '{job_id}' names encryption key '{key_id}', which does not exist"),
                    );
                }
            }
        }

        Ok(VerifyReport {
            config_dir: self.base().to_owned(),
            ownership: self.ownership().to_string(),
            keys_checked: index.len(),
            findings: checker.findings,
            repaired: Vec::new(),
            repair_failed: Vec::new(),
        })
    }

    /// Repairs each repairable finding; one that fails does not stop the
    /// others. Returns what was done and what failed.
    fn repair(
        &self,
        keys: &EncryptionKeys,
        base: &DirHandle,
        findings: &[Finding],
        config_lock: &EncryptionKeysLock,
    ) -> (Vec<Repair>, Vec<Repair>) {
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let mut rewrite_paths = false;
        // the key directory's own owner and mode first: only then is it
        // opened (checked) for the repairs inside it
        let mut ordered: Vec<&Finding> = findings.iter().filter(|f| f.repairable).collect();
        ordered.sort_by_key(|f| f.place != Some(Place::KeyDirItself));
        let mut fixed_key_dir = false;
        for finding in ordered {
            if finding.kind == FindingKind::PathNotCanonical {
                rewrite_paths = true;
                continue;
            }
            let path = finding.path.clone();
            if finding.place == Some(Place::KeyDirItself) {
                if fixed_key_dir {
                    continue; // mode and owner are fixed together
                }
                fixed_key_dir = true;
            }
            match self.repair_one(keys, base, finding) {
                Ok(Some(action)) => done.push(Repair { path, action }),
                Ok(None) => {}
                Err(err) => failed.push(Repair {
                    path,
                    action: format!("{err:#}"),
                }),
            }
        }
        if rewrite_paths {
            match self.rewrite_paths(keys, config_lock) {
                Ok(changed) => done.extend(changed),
                Err(err) => failed.push(Repair {
                    path: keys.config_path(),
                    action: format!("unable to rewrite key paths - {err:#}"),
                }),
            }
        }
        (done, failed)
    }

    /// Repairs one finding that is about one file; the action taken.
    fn repair_one(
        &self,
        keys: &EncryptionKeys,
        base: &DirHandle,
        finding: &Finding,
    ) -> Result<Option<String>, Error> {
        let own = *self.ownership();
        let Some(place) = &finding.place else {
            return Ok(None);
        };
        let (dir, name, class) = match place {
            Place::KeyDirItself => {
                let Some(key_dir) = base.open_dir_any(KEY_DIR_NAME)? else {
                    bail!("key directory vanished - left alone");
                };
                key_dir.fix_own_owner_and_mode(own.key_dir_options())?;
                let (uid, gid) = own.owner_of(FileClass::Config);
                return Ok(Some(format!(
                    "set mode {KEY_DIR_MODE:04o} and owner {}:{}",
                    user_name_of(uid.as_raw()),
                    group_name_of(gid.as_raw())
                )));
            }
            Place::Base { name, class } => (base.try_clone()?, name.as_str(), *class),
            Place::KeyDir { name, class } => {
                // opened and checked anew: the key directory may have been
                // swapped since the check
                let Some(key_dir) = keys.open_key_dir(base)? else {
                    bail!("key directory vanished - left alone");
                };
                (key_dir, name.as_str(), *class)
            }
        };
        let action = match finding.kind {
            FindingKind::WrongMode | FindingKind::WrongOwner => {
                dir.fix_owner_and_mode(name, EntryKind::File, own.options_for(class))?;
                let (uid, gid) = own.owner_of(class);
                format!(
                    "set mode {:04o} and owner {}:{}",
                    class.mode(),
                    user_name_of(uid.as_raw()),
                    group_name_of(gid.as_raw())
                )
            }
            FindingKind::OrphanKeyFile => {
                let id = finding.id.as_deref().unwrap_or_default();
                let key_lock = keys.lock_key_file(&dir, id)?;
                remove_synced(&dir, name)?;
                // the key is gone, so is its lock file
                key_lock.guard.remove_file()?;
                "removed orphan key file".to_string()
            }
            FindingKind::TempFile => {
                remove_synced(&dir, name)?;
                "removed temp file".to_string()
            }
            FindingKind::StaleLockFile => {
                let id = finding.id.as_deref().unwrap_or_default();
                let key_lock = keys.lock_key_file(&dir, id)?;
                key_lock.guard.remove_file()?;
                "removed stale lock file".to_string()
            }
            _ => return Ok(None),
        };
        Ok(Some(action))
    }

    /// Rewrites every relocated `path` of the config to the canonical one.
    fn rewrite_paths(
        &self,
        keys: &EncryptionKeys,
        config_lock: &EncryptionKeysLock,
    ) -> Result<Vec<Repair>, Error> {
        let (mut config, _) = keys.config()?;
        let mut changed = Vec::new();
        for id in config
            .ids_of_type(ENCRYPTION_KEYS_CFG_TYPE_ID)
            .map(str::to_string)
            .collect::<Vec<_>>()
        {
            // an entry that does not type-check is a finding of its own
            let Ok(mut entry) = config.lookup::<CryptKey>(ENCRYPTION_KEYS_CFG_TYPE_ID, &id) else {
                continue;
            };
            if matches!(keys.check_entry_path(&entry), Ok(false)) {
                entry.info.path = Some(keys.key_path(&id).to_string_lossy().into_owned());
                config.set_data(&id, ENCRYPTION_KEYS_CFG_TYPE_ID, &entry)?;
                changed.push(id);
            }
        }
        keys.save_config(&config, config_lock)?;
        Ok(changed
            .into_iter()
            .map(|id| Repair {
                path: keys.config_path(),
                action: format!("rewrote path of '{id}' to {:?}", keys.key_path(&id)),
            })
            .collect())
    }
}

/// Verifies (and with `repair`, repairs) the default config dir.
pub fn verify(repair: bool) -> Result<VerifyReport, Error> {
    ConfigDir::default_dir()?.verify(repair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        assert!(is_temp_name("k1.enc.tmp_AbC123"));
        assert!(is_temp_name("encryption-keys.cfg.tmp_xyz789"));
        assert!(!is_temp_name("k1.enc"));
        assert!(!is_temp_name("k1.enc.tmp_short"));
        assert!(!is_temp_name(".tmp_abcdef"));
        assert!(is_temp_suffix(".tmp_000000"));
        assert!(!is_temp_suffix(".tmp_00000!"));
    }

    #[test]
    fn a_repair_that_fails_does_not_stop_the_others() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path()).unwrap();
        let keys = dir.encryption_keys();
        let base = dir.open_base().unwrap().unwrap();
        let temp = |name: &str| Finding {
            kind: FindingKind::TempFile,
            id: None,
            path: tmp.path().join(name),
            message: String::new(),
            repairable: true,
            place: Some(Place::Base {
                name: name.to_string(),
                class: FileClass::Config,
            }),
        };
        // the first cannot be removed (it is a non-empty directory)
        std::fs::create_dir(tmp.path().join("stuck.tmp_AbC123")).unwrap();
        std::fs::write(tmp.path().join("stuck.tmp_AbC123/inside"), b"").unwrap();
        std::fs::write(tmp.path().join("loose.tmp_AbC123"), b"").unwrap();
        let lock = keys.lock_config().unwrap();
        let findings = [temp("stuck.tmp_AbC123"), temp("loose.tmp_AbC123")];

        let (done, failed) = dir.repair(&keys, &base, &findings, &lock);

        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0].path, tmp.path().join("loose.tmp_AbC123"));
        assert!(!tmp.path().join("loose.tmp_AbC123").exists());
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].action.contains("stuck.tmp_AbC123"), "{failed:?}");
    }
}
