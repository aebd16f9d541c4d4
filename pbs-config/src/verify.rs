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
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Error, bail, format_err};
use nix::unistd::{Gid, Uid};
use serde::Serialize;

use proxmox_lang::error::ErrorLayer;

use pbs_api_types::CryptKey;

use crate::encryption_keys::{
    ENCRYPTION_KEYS_CFG_NAME, ENCRYPTION_KEYS_CFG_TYPE_ID, EncryptionKeys, remove_file_synced,
};
use crate::ownership::{CONFIG_FILE_MODE, KEY_DIR_MODE, LOCK_FILE_MODE};
use crate::sync::{SYNC_CFG_NAME, SYNC_CFG_TYPE_ID};
use crate::{BackupLockGuard, ConfigDir};

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
    findings: Vec<Finding>,
}

impl Checker<'_> {
    fn add(&mut self, kind: FindingKind, id: Option<&str>, path: &Path, message: String) {
        self.findings.push(Finding {
            kind,
            id: id.map(str::to_string),
            path: path.to_owned(),
            message,
            repairable: kind.is_repairable(),
        });
    }

    /// Mode and owner of an existing path. A symlink is a finding of its
    /// own: its mode says nothing, and chmod would change its target.
    fn check_meta(&mut self, path: &Path, id: Option<&str>, mode: u32, uid: Uid, gid: Gid) {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if meta.file_type().is_symlink() {
            self.add(
                FindingKind::SymbolicLink,
                id,
                path,
                format!("{path:?} is a symbolic link - left alone, replace it by hand"),
            );
            return;
        }
        let found = meta.mode() & 0o7777;
        if found != mode {
            self.add(
                FindingKind::WrongMode,
                id,
                path,
                format!("{path:?} has mode {found:04o}, expected {mode:04o}"),
            );
        }
        if meta.uid() != uid.as_raw() || meta.gid() != gid.as_raw() {
            self.add(
                FindingKind::WrongOwner,
                id,
                path,
                format!(
                    "{path:?} is owned by {}:{}, expected {uid}:{gid}",
                    meta.uid(),
                    meta.gid()
                ),
            );
        }
    }

    fn check_entry(&mut self, entry: &CryptKey) {
        let id = entry.id.as_str();
        let key_path = self.keys.key_path(id);
        match self.keys.check_entry_path(entry) {
            Ok(true) => {}
            Ok(false) => self.add(
                FindingKind::PathNotCanonical,
                Some(id),
                &key_path,
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
                    err.to_string(),
                );
                return;
            }
        }

        let meta = match std::fs::symlink_metadata(&key_path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.add(
                    FindingKind::MissingKeyFile,
                    Some(id),
                    &key_path,
                    format!(
                        "key file {key_path:?} of '{id}' is missing - restore it from a backup"
                    ),
                );
                return;
            }
            Err(err) => {
                self.add(
                    FindingKind::InvalidKeyFile,
                    Some(id),
                    &key_path,
                    format!("unable to stat {key_path:?} - {err}"),
                );
                return;
            }
        };
        if !meta.file_type().is_file() {
            self.add(
                FindingKind::InvalidKeyFile,
                Some(id),
                &key_path,
                format!("key file {key_path:?} of '{id}' is not a regular file"),
            );
            return;
        }
        let own = *self.keys.dir().ownership();
        self.check_meta(
            &key_path,
            Some(id),
            CONFIG_FILE_MODE,
            own.file_uid,
            own.file_gid,
        );

        // read regardless of mode: a bad mode is its own (repairable) finding
        let key_config = match pbs_key_config::KeyConfig::load(&key_path) {
            Ok(key_config) => key_config,
            Err(err) => {
                self.add(
                    FindingKind::InvalidKeyFile,
                    Some(id),
                    &key_path,
                    err.to_string(),
                );
                return;
            }
        };
        if let Err(err) = self.keys.check_key_matches(entry, &key_config) {
            self.add(
                FindingKind::FingerprintMismatch,
                Some(id),
                &key_path,
                err.to_string(),
            );
        }
    }

    /// Lists the key directory. `known` holds every id of the config, valid
    /// entries or not: a key file of an invalid entry is not an orphan.
    fn scan_key_dir(&mut self, known: &HashSet<&str>) -> Result<(), Error> {
        let dir = self.keys.key_dir();
        let list = match std::fs::read_dir(&dir) {
            Ok(list) => list,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(format_err!("unable to list {dir:?} - {err}")),
        };
        let known = |id: &str| known.contains(id);
        let own = *self.keys.dir().ownership();
        let mut names: Vec<String> = Vec::new();
        for item in list {
            let item = item.map_err(|err| format_err!("unable to list {dir:?} - {err}"))?;
            match item.file_name().into_string() {
                Ok(name) => names.push(name),
                Err(name) => {
                    let path = dir.join(&name);
                    self.add(
                        FindingKind::UnknownFile,
                        None,
                        &path,
                        format!("{path:?} has a name that is not UTF-8"),
                    );
                }
            }
        }
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let Ok(file_type) = std::fs::symlink_metadata(&path).map(|meta| meta.file_type())
            else {
                continue; // gone since the listing
            };
            // a known key's file is reported by check_entry already
            let known_key_file = name.strip_suffix(".enc").is_some_and(known);
            if file_type.is_symlink() {
                if !known_key_file {
                    self.add(
                        FindingKind::SymbolicLink,
                        None,
                        &path,
                        format!("{path:?} is a symbolic link - left alone, remove it by hand"),
                    );
                }
            } else if !file_type.is_file() {
                // only regular files are leftovers repair may remove
                if !known_key_file {
                    self.add(
                        FindingKind::UnknownFile,
                        None,
                        &path,
                        format!("{path:?} is not a regular file - left alone, remove it by hand"),
                    );
                }
            } else if is_temp_name(&name) {
                self.add(
                    FindingKind::TempFile,
                    None,
                    &path,
                    format!("{path:?} is a temp file left by an interrupted write"),
                );
            } else if let Some(id) = name.strip_suffix(".enc.lck") {
                if known(id) || std::fs::symlink_metadata(self.keys.key_path(id)).is_ok() {
                    self.check_meta(&path, Some(id), LOCK_FILE_MODE, own.lock_uid, own.lock_gid);
                } else {
                    self.add(
                        FindingKind::StaleLockFile,
                        Some(id),
                        &path,
                        format!("{path:?} is the lock file of a key that no longer exists"),
                    );
                }
            } else if let Some(id) = name.strip_suffix(".enc") {
                if !known(id) {
                    self.add(
                        FindingKind::OrphanKeyFile,
                        Some(id),
                        &path,
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
                    format!("{path:?} is not a file of the key store - left alone"),
                );
            }
        }
        Ok(())
    }

    fn scan_base_dir(&mut self) -> Result<(), Error> {
        let base = self.keys.dir().base().to_owned();
        let list = match std::fs::read_dir(&base) {
            Ok(list) => list,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(format_err!("unable to list {base:?} - {err}")),
        };
        let mut temps = Vec::new();
        for item in list {
            let item = item.map_err(|err| format_err!("unable to list {base:?} - {err}"))?;
            let Ok(name) = item.file_name().into_string() else {
                continue;
            };
            // only regular files are leftovers repair may remove
            if !item.file_type().is_ok_and(|kind| kind.is_file()) {
                continue;
            }
            let ours = [ENCRYPTION_KEYS_CFG_NAME, SYNC_CFG_NAME]
                .iter()
                .any(|cfg| name.strip_prefix(cfg).is_some_and(is_temp_suffix));
            if ours {
                temps.push(base.join(name));
            }
        }
        temps.sort();
        for path in temps {
            self.add(
                FindingKind::TempFile,
                None,
                &path,
                format!("{path:?} is a temp file left by an interrupted write"),
            );
        }
        Ok(())
    }
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
        if !self.base().is_dir() {
            anyhow::bail!(
                "unable to verify the key store - config dir {:?} does not exist",
                self.base()
            );
        }
        let keys = self.encryption_keys();
        let config_lock = keys
            .lock_config()
            .layer_err(|| "unable to verify the key store")?;
        let _sync_lock = self
            .sync_jobs()
            .lock_config()
            .layer_err(|| "unable to verify the key store")?;

        let mut report = self.check(&keys)?;
        if repair && report.findings.iter().any(|f| f.repairable) {
            let (repaired, failed) = self.repair(&keys, &report.findings, &config_lock);
            report = self.check(&keys)?;
            report.repaired = repaired;
            report.repair_failed = failed;
        }
        Ok(report)
    }

    fn check(&self, keys: &EncryptionKeys) -> Result<VerifyReport, Error> {
        let index = keys
            .index_data()
            .layer_err(|| "unable to verify the key store")?;
        let (valid, invalid) = index.partition();
        let entries: Vec<CryptKey> = valid.into_iter().cloned().collect();
        let mut checker = Checker {
            keys: *keys,
            findings: Vec::new(),
        };
        for (id, err) in invalid {
            checker.add(
                FindingKind::InvalidConfigEntry,
                Some(id),
                &keys.config_path(),
                format!("config entry of encryption key '{id}' is invalid - {err}"),
            );
        }
        let own = *self.ownership();
        checker.check_meta(
            &keys.config_path(),
            None,
            CONFIG_FILE_MODE,
            own.file_uid,
            own.file_gid,
        );
        // a key directory that is a symlink or a file: report it and look
        // at nothing under it (a link could point anywhere)
        let key_dir = keys.key_dir();
        let (key_dir_usable, check_key_dir_meta) = match std::fs::symlink_metadata(&key_dir) {
            Ok(meta) if meta.is_dir() => (true, true),
            Ok(meta) if meta.file_type().is_symlink() => (false, true),
            Ok(_) => {
                checker.add(
                    FindingKind::InvalidKeyDir,
                    None,
                    &key_dir,
                    format!(
                        "key directory {key_dir:?} is not a directory - no key file was checked; move it away and restore the directory from a backup"
                    ),
                );
                (false, false)
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => (true, false),
            Err(err) => {
                checker.add(
                    FindingKind::InvalidKeyDir,
                    None,
                    &key_dir,
                    format!("unable to stat key directory {key_dir:?} - {err}"),
                );
                (false, false)
            }
        };
        if check_key_dir_meta {
            checker.check_meta(&key_dir, None, KEY_DIR_MODE, own.file_uid, own.file_gid);
        }
        checker.check_meta(
            &keys.lock_path(),
            None,
            LOCK_FILE_MODE,
            own.lock_uid,
            own.lock_gid,
        );
        let known: HashSet<&str> = index.ids().collect();
        if key_dir_usable {
            for entry in &entries {
                checker.check_entry(entry);
            }
            checker.scan_key_dir(&known)?;
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
        findings: &[Finding],
        config_lock: &BackupLockGuard,
    ) -> (Vec<Repair>, Vec<Repair>) {
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let mut rewrite_paths = false;
        for finding in findings.iter().filter(|f| f.repairable) {
            if finding.kind == FindingKind::PathNotCanonical {
                rewrite_paths = true;
                continue;
            }
            let path = finding.path.clone();
            match self.repair_one(keys, finding) {
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
        finding: &Finding,
    ) -> Result<Option<String>, Error> {
        let own = *self.ownership();
        let path = &finding.path;
        // the key directory may have been swapped for a link since the check
        let key_dir = keys.key_dir();
        if path.starts_with(&key_dir)
            && path != &key_dir
            && !std::fs::symlink_metadata(&key_dir).is_ok_and(|meta| meta.is_dir())
        {
            bail!("key directory {key_dir:?} is no longer a directory - left alone");
        }
        let action = match finding.kind {
            FindingKind::WrongMode => {
                let mode = expected_mode(keys, path);
                chmod_no_follow(path, mode)?;
                format!("set mode {mode:04o}")
            }
            FindingKind::WrongOwner => {
                let (uid, gid) = if is_lock_path(keys, path) {
                    (own.lock_uid, own.lock_gid)
                } else {
                    (own.file_uid, own.file_gid)
                };
                std::os::unix::fs::lchown(path, Some(uid.as_raw()), Some(gid.as_raw()))
                    .map_err(|err| format_err!("unable to chown {path:?} - {err}"))?;
                format!("set owner {uid}:{gid}")
            }
            FindingKind::OrphanKeyFile => {
                let id = finding.id.as_deref().unwrap_or_default();
                let key_lock = self.open_backup_lockfile(keys.key_lock_path(id), None, true)?;
                remove_file_synced(path)?;
                // the key is gone, so is its lock file
                key_lock.remove_file()?;
                "removed orphan key file".to_string()
            }
            FindingKind::TempFile => {
                remove_file_synced(path)?;
                "removed temp file".to_string()
            }
            FindingKind::StaleLockFile => {
                let key_lock = self.open_backup_lockfile(path, None, true)?;
                key_lock.remove_file()?;
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
        config_lock: &BackupLockGuard,
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

/// chmod of `path` itself, never of what a link there points to (the file
/// may have been swapped for a link since it was checked).
fn chmod_no_follow(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|err| format_err!("unable to open {path:?} to chmod it - {err}"))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|err| format_err!("unable to chmod {path:?} - {err}"))
}

fn is_lock_path(keys: &EncryptionKeys, path: &Path) -> bool {
    path == keys.lock_path() || path.to_string_lossy().ends_with(".lck")
}

fn expected_mode(keys: &EncryptionKeys, path: &Path) -> u32 {
    if path == keys.key_dir() {
        KEY_DIR_MODE
    } else if is_lock_path(keys, path) {
        LOCK_FILE_MODE
    } else {
        CONFIG_FILE_MODE
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
        let temp = |name: &str| Finding {
            kind: FindingKind::TempFile,
            id: None,
            path: tmp.path().join(name),
            message: String::new(),
            repairable: true,
        };
        // the first cannot be removed (it is a non-empty directory)
        std::fs::create_dir(tmp.path().join("stuck.tmp_AbC123")).unwrap();
        std::fs::write(tmp.path().join("stuck.tmp_AbC123/inside"), b"").unwrap();
        std::fs::write(tmp.path().join("loose.tmp_AbC123"), b"").unwrap();
        let lock = keys.lock_config().unwrap();
        let findings = [temp("stuck.tmp_AbC123"), temp("loose.tmp_AbC123")];

        let (done, failed) = dir.repair(&keys, &findings, &lock);

        assert_eq!(done.len(), 1, "{done:?}");
        assert_eq!(done[0].path, tmp.path().join("loose.tmp_AbC123"));
        assert!(!tmp.path().join("loose.tmp_AbC123").exists());
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].action.contains("stuck.tmp_AbC123"), "{failed:?}");
    }
}
