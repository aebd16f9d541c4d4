//! `verify` and `verify --repair`: is the key store what DESIGN.md says it is?
//!
//! Checked, under the config lock so no writer is half-way:
//! - every config entry has a readable, regular key file whose fingerprint
//!   matches the entry (and the key bytes, for unprotected keys), and a
//!   `path` that names it;
//! - modes and owners of the config file, the key directory, key files and
//!   lock files;
//! - leftovers: key files without an entry (orphans, from a crash between the
//!   two writes of store or delete, or copied in), temp files of interrupted
//!   atomic writes, lock files of keys that no longer exist;
//! - the trash (`encryption-keys/.trash/`): its mode and owner, and that
//!   every entry has its key file and its record (see [`crate::trash`]);
//! - the audit log's directory (`encryption-keys/.audit/`) and its files:
//!   modes and owners (what the log says is `audit verify`'s to check,
//!   see [`crate::audit`]);
//! - sync jobs that name keys which do not exist;
//! - rollbacks: a config file this tool wrote that holds one of its
//!   earlier writes again, or is missing (`encryption-keys.cfg`,
//!   `sync.cfg` and the access files, see [`crate::lock::written`]).
//!
//! Repair fixes modes and owners, rewrites a relocated `path`, removes stale
//! lock files, temp files of config files and stale trash records, and
//! moves orphans and temp files of key files into the trash (reason
//! `repair-*`, never purged on its own). It never unlinks key material, and
//! it never guesses: a key file is an orphan only if no config entry names
//! it by path, by id or by fingerprint and no sync job names its id, and
//! none is moved while the key list or the job list reads as missing or
//! empty where root last wrote it with content (moved away: what it lists
//! is unknown); anything less certain is a finding that says why and what
//! to do, and repair leaves it alone. It reports every action it took, and records
//! each in the audit log (intent, change, outcome; the one exception: the
//! owner and mode of the key directory, the audit directory and the audit
//! files, which the log must trust to take a record, are fixed first and
//! recorded right after when the log refuses the intent).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Error, bail, format_err};
use serde::Serialize;
use zeroize::Zeroize;

use proxmox_lang::error::ErrorLayer;

use pbs_api_types::{CryptKey, Fingerprint};
use pbs_key_config::{KeyConfig, MAX_KEY_FILE_SIZE};

use crate::audit::{self, Event, Op};
use crate::dir_handle::{DirHandle, EntryKind, EntryStat, read_all, temp_file_target};
use crate::encryption_keys::{ENCRYPTION_KEYS_CFG_TYPE_ID, EncryptionKeys, key_fingerprint};
use crate::files::{
    self, AUDIT_DIR_MODE, AUDIT_DIR_NAME, AUDIT_FILES, ConfigFile, FileClass, KEY_DIR_MODE,
    KEY_DIR_NAME, KEY_FILE_CLASS, KEY_LOCK_CLASS, TRASH_CLASS, TRASH_DIR_MODE, TRASH_DIR_NAME,
    key_file_name,
};
use crate::lock::{
    AclCfg, BackupLockGuard, ConfigLock, LockedConfig, ShadowJson, TokenShadow, UserCfg, mirror,
    written,
};
use crate::ownership::{Distrust, Ownership, group_name_of, user_name_of};
use crate::sync::SYNC_CFG_TYPE_ID;
use crate::trash::{self, TrashReason, TrashRecord};
use crate::{ConfigDir, EncryptionKeysLock, SyncLock, failpoint};

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
    /// A key file without a config entry of its own that a config entry
    /// (by path or fingerprint) or a sync job (by id) still names: maybe a
    /// live key under a mistyped id, maybe a copy. Left alone.
    AmbiguousKeyFile,
    /// A trash record without its key file: the key is in the store (an
    /// interrupted delete, a finished restore), or was purged (an
    /// interrupted purge). Repair removes the record.
    StaleTrashRecord,
    /// A key file in the trash without its record: repair writes one.
    UnrecordedTrashFile,
    /// A trash entry whose record cannot be read or does not match its key
    /// file: left alone.
    InvalidTrashEntry,
    /// A config file that holds what root wrote earlier than its last write,
    /// or is missing although root wrote it: an older copy put back (a
    /// rollback), seen from the record beside root's mirror locks. Left
    /// alone: the changes made since are to be made again.
    RolledBack,
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
                | FindingKind::StaleTrashRecord
                | FindingKind::UnrecordedTrashFile
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
    /// A key file in the key directory that no config entry names, and
    /// the trash entry whose record waits for it, if one does.
    Orphan { name: String, into: Option<String> },
    /// A temp file of a key file in the key directory (key material).
    KeyDirTemp { name: String },
    /// The trash itself.
    TrashDirItself,
    /// A file in the trash that holds no key material (a stale record, a
    /// temp file of a record).
    Trash { name: String },
    /// A key file in the trash without its record.
    TrashUnrecorded { entry: String },
    /// The audit directory itself.
    AuditDirItself,
    /// `name` in the audit directory, of class `class`.
    Audit { name: String, class: FileClass },
}

impl Place {
    /// Repairs of the directories come first: only then are they opened
    /// (checked) for the repairs inside them.
    fn rank(place: &Option<Place>) -> u8 {
        match place {
            Some(Place::KeyDirItself) => 0,
            // the audit directory and files before anything else: every
            // other repair needs the log to take its record
            Some(Place::AuditDirItself) => 1,
            Some(Place::Audit { .. }) => 2,
            Some(Place::TrashDirItself) => 3,
            _ => 4,
        }
    }
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
    /// Number of complete entries in the trash (key file and record).
    pub keys_in_trash: usize,
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

/// How many ids a missing key directory's finding names.
const MISSING_IDS_SHOWN: usize = 10;

/// What a finding on a file or directory that no reader trusts adds: a
/// `chown` or `chmod` would make what someone else wrote root's.
const NEVER_MADE_TRUSTED: &str =
    " - left alone by repair, which never makes a file root did not write root's";

/// What a finding on an untrusted `encryption-keys.cfg` or `sync.cfg`
/// adds: verify stops there, and the admin decides whose file it is.
fn untrusted_config_advice(why: &Distrust) -> &'static str {
    match why {
        // a directory, link or FIFO of that name was never a config file
        Distrust::NotAFile(_) => {
            "; nothing else was checked: move it out of the way and put root's copy back from \
             a backup, then run verify again"
        }
        Distrust::Owner { .. } | Distrust::Mode { .. } => {
            "; nothing else was checked: put root's copy back from a backup, or if you wrote \
             this file yourself, give it root's owner and mode by hand, then run verify again"
        }
    }
}

struct Checker<'a> {
    keys: EncryptionKeys<'a>,
    base: &'a DirHandle,
    /// The key directory, if it is one we may look into.
    key_dir: Option<&'a DirHandle>,
    /// Who names which key file.
    refs: References,
    /// What the trash holds.
    trash: TrashState,
    /// The key list read as missing or empty while root last wrote it
    /// with content (see [`ConfigDir::refuse_read_empty`]): every key file
    /// looks like an orphan, but they are the keys it lists, and moved
    /// into the trash they would be missing once it is put back (the only
    /// way back then is `remove --force` and `trash restore` for each key,
    /// its jobs untied first). Such orphans are left alone; one a trash record waits for
    /// (an interrupted delete) is moved still.
    key_list_gone: bool,
    findings: Vec<Finding>,
}

/// Who names a key file: what makes a key file without its own config
/// entry more than an orphan.
#[derive(Default)]
struct References {
    /// Every config entry (read generically, so entries the typed form
    /// refuses count too): id, the file name its `path` ends in, its
    /// fingerprint.
    entries: Vec<(String, Option<String>, Option<Fingerprint>)>,
    /// Every sync job and a key id it names.
    jobs: Vec<(String, String)>,
    /// The job list as read is a rollback (`lock::written`): one of root's
    /// earlier writes, or missing or empty while root last wrote it with
    /// content. A job it lacks may name a key, so a key file that job
    /// needs would look like an orphan.
    jobs_rolled_back: bool,
}

impl References {
    fn read(dir: &ConfigDir, keys: &EncryptionKeys, sync_lock: &SyncLock) -> Result<Self, Error> {
        let mut refs = References::default();
        let (config, _) = keys.config()?;
        for id in config.ids_of_type(ENCRYPTION_KEYS_CFG_TYPE_ID) {
            let data = &config.sections[id].1;
            let path = data["path"]
                .as_str()
                .and_then(|path| Path::new(path).file_name())
                .map(|name| name.to_string_lossy().into_owned());
            let fingerprint = data["fingerprint"]
                .as_str()
                .and_then(|text| text.parse().ok());
            refs.entries.push((id.to_string(), path, fingerprint));
        }
        let (jobs, digest) = dir.sync_jobs().config_shared()?;
        // decided on the list as read, as the key list's (an error finding
        // out is taken as one: holding orphans back changes nothing)
        refs.jobs_rolled_back = match sync_lock.mirror() {
            Some(mirror) => {
                let read = (digest, jobs.sections.is_empty());
                written::rollback_of(mirror, &files::SYNC_CFG, Some(read)).is_some()
            }
            None => jobs.sections.is_empty() && dir.refuse_read_empty(sync_lock).is_err(),
        };
        for job_id in jobs.ids_of_type(SYNC_CFG_TYPE_ID) {
            let job = &jobs.sections[job_id].1;
            let mut named: Vec<&str> = job["associated-key"]
                .as_array()
                .map(|list| list.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            named.extend(job["active-encryption-key"].as_str());
            for key_id in named {
                refs.jobs.push((job_id.to_string(), key_id.to_string()));
            }
        }
        Ok(refs)
    }

    /// Who names the key file `<stem>.enc` holding `fingerprint`, other
    /// than an entry `stem` (there is none): empty if nobody, and then it
    /// is surely an orphan.
    fn naming(&self, stem: &str, fingerprint: Option<&Fingerprint>) -> Vec<String> {
        let file_name = key_file_name(stem);
        let mut why = Vec::new();
        for (id, path, entry_fingerprint) in &self.entries {
            let by_path = path.as_deref() == Some(file_name.as_str());
            let by_fingerprint = fingerprint.is_some() && entry_fingerprint.as_ref() == fingerprint;
            match (by_path, by_fingerprint) {
                (true, true) => why.push(format!(
                    "config entry '{id}' names it by path and by fingerprint"
                )),
                (true, false) => why.push(format!("config entry '{id}' names it by path")),
                (false, true) => why.push(format!(
                    "config entry '{id}' holds the same key (by fingerprint)"
                )),
                (false, false) => {}
            }
        }
        for (job, key_id) in &self.jobs {
            if key_id == stem {
                why.push(format!("sync job '{job}' names '{stem}'"));
            }
        }
        why
    }

    /// The id of the config entry with `fingerprint`, if any.
    fn entry_with(&self, fingerprint: &Fingerprint) -> Option<&str> {
        self.entries
            .iter()
            .find(|(_, _, fp)| fp.as_ref() == Some(fingerprint))
            .map(|(id, _, _)| id.as_str())
    }
}

/// What the trash holds, as far as the rest of the check needs it.
#[derive(Default)]
struct TrashState {
    /// Complete entries.
    complete: usize,
    /// Complete entries by the fingerprint of their key.
    copies: HashMap<Fingerprint, Vec<String>>,
    /// Records without their key file: entry name, recorded fingerprint,
    /// and whether a key file in the key directory was found for it.
    waiting: Vec<(String, Option<Fingerprint>, bool)>,
}

impl TrashState {
    /// The waiting record of the key with `fingerprint`, claimed.
    fn claim(&mut self, fingerprint: Option<&Fingerprint>) -> Option<String> {
        let fingerprint = fingerprint?;
        let (entry, _, claimed) = self
            .waiting
            .iter_mut()
            .find(|(_, fp, claimed)| !*claimed && fp.as_ref() == Some(fingerprint))?;
        *claimed = true;
        Some(entry.clone())
    }
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
        self.push(kind, id, path, place, message, kind.is_repairable());
    }

    /// A finding, repairable only if `repairable` says so.
    fn push(
        &mut self,
        kind: FindingKind,
        id: Option<&str>,
        path: &Path,
        place: Option<Place>,
        message: String,
        repairable: bool,
    ) {
        self.findings.push(Finding {
            kind,
            id: id.map(str::to_string),
            path: path.to_owned(),
            message,
            repairable,
            place,
        });
    }

    /// A finding that repair does not act on.
    fn report(&mut self, kind: FindingKind, id: Option<&str>, path: &Path, message: String) {
        self.add(kind, id, path, None, message);
    }

    /// A symbolic link where the store keeps a file or directory, left
    /// alone; `by_hand` is what to do with it ("replace", "remove").
    fn report_symlink(&mut self, id: Option<&str>, path: &Path, by_hand: &str) {
        self.report(
            FindingKind::SymbolicLink,
            id,
            path,
            format!("{path:?} is a symbolic link - left alone, {by_hand} it by hand"),
        );
    }

    /// Mode and owner of an entry, as `stat` (taken without following a
    /// link) says. A symlink is a finding of its own: its mode says
    /// nothing, and repair never changes what a link points to. What no
    /// reader trusts as found (a file holding data, [`Ownership::distrust`];
    /// the key directory, [`Ownership::key_dir_policy`]) is reported, never
    /// repaired: a `chown` would make what someone else wrote root's.
    fn check_stat(
        &mut self,
        place: Place,
        path: &Path,
        stat: &EntryStat,
        id: Option<&str>,
        mode: u32,
        class: FileClass,
    ) {
        let own = self.keys.dir().ownership();
        let distrusted = match (stat.kind, &place) {
            (EntryKind::Dir, Place::KeyDirItself) => !own.key_dir_policy().trusts(stat),
            (EntryKind::File, _) => class != FileClass::Lock && own.distrust(class, stat).is_some(),
            _ => false,
        };
        if stat.kind == EntryKind::Symlink {
            self.report_symlink(id, path, "replace");
            return;
        }
        let (place, left_alone) = match distrusted {
            true => (None, NEVER_MADE_TRUSTED),
            false => (Some(place), ""),
        };
        let repairable = !distrusted;
        if stat.mode != mode {
            self.push(
                FindingKind::WrongMode,
                id,
                path,
                place.clone(),
                format!(
                    "{path:?} has mode {:04o}, expected {mode:04o}{left_alone}",
                    stat.mode
                ),
                repairable,
            );
        }
        let (uid, gid) = self.keys.dir().ownership().owner_of(class);
        if stat.uid != uid.as_raw() || stat.gid != gid.as_raw() {
            self.push(
                FindingKind::WrongOwner,
                id,
                path,
                place,
                format!(
                    "{path:?} is owned by {}:{}, expected {}:{}{left_alone}",
                    user_name_of(stat.uid),
                    group_name_of(stat.gid),
                    user_name_of(uid.as_raw()),
                    group_name_of(gid.as_raw()),
                ),
                repairable,
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
        if !self.check_entry_path(entry, &key_path) {
            return Ok(());
        }
        let name = key_file_name(id);
        let Some(stat) = key_dir.stat(&name)? else {
            self.report_missing_key_file(entry, &key_path);
            return Ok(());
        };
        if stat.kind != EntryKind::File {
            let message = match stat.kind {
                EntryKind::Symlink => format!(
                    "key file {key_path:?} of '{id}' is a symbolic link - left alone, replace it by hand"
                ),
                _ => format!("key file {key_path:?} of '{id}' is not a regular file"),
            };
            self.report(FindingKind::InvalidKeyFile, Some(id), &key_path, message);
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
                let message = err.to_string();
                self.report(FindingKind::InvalidKeyFile, Some(id), &key_path, message);
                return Ok(());
            }
        };
        if let Err(err) = self.keys.check_key_matches(entry, &key_config) {
            let message = err.to_string();
            self.report(
                FindingKind::FingerprintMismatch,
                Some(id),
                &key_path,
                message,
            );
        }
        Ok(())
    }

    /// The `path` of a config entry: a finding unless it is the canonical
    /// one. False if it names a file outside the key directory, which
    /// leaves nothing more to check of the entry.
    fn check_entry_path(&mut self, entry: &CryptKey, key_path: &Path) -> bool {
        let id = entry.id.as_str();
        match self.keys.check_entry_path(entry) {
            Ok(true) => true,
            Ok(false) => {
                self.report(
                    FindingKind::PathNotCanonical,
                    Some(id),
                    key_path,
                    format!(
                        "config entry of '{id}' names path {:?} instead of {key_path:?}",
                        entry.info.path.as_deref().unwrap_or("(none)")
                    ),
                );
                true
            }
            Err(err) => {
                let message = err.to_string();
                self.report(FindingKind::PathOutsideKeyDir, Some(id), key_path, message);
                false
            }
        }
    }

    /// A config entry whose key file is missing: the finding says where a
    /// copy is (in the trash), or what else to do.
    fn report_missing_key_file(&mut self, entry: &CryptKey, key_path: &Path) {
        let id = entry.id.as_str();
        let copies = entry
            .info
            .fingerprint
            .and_then(|fp| self.trash.copies.get(&fp))
            .map(|copies| {
                copies
                    .iter()
                    .map(|name| format!("'{name}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
        let what = match copies {
            Some(copies) => format!(
                "a copy is in the trash as {copies}: drop the entry with 'remove --force {id}', \
                 then 'trash restore' the copy"
            ),
            None => format!(
                "restore it from a backup, or drop the entry with 'remove --force {id}' \
                 (which says what is lost)"
            ),
        };
        self.report(
            FindingKind::MissingKeyFile,
            Some(id),
            key_path,
            format!("key file {key_path:?} of '{id}' is missing - {what}"),
        );
    }

    /// Lists the key directory. `known` holds every id of the config, valid
    /// entries or not: a key file of an invalid entry is not an orphan.
    fn scan_key_dir(&mut self, key_dir: &DirHandle, known: &HashSet<&str>) -> Result<(), Error> {
        for name in key_dir.names()? {
            let Some(stat) = key_dir.stat(&name)? else {
                continue; // gone since the listing
            };
            if scanned_elsewhere(&name, &stat) {
                continue;
            }
            let path = key_dir.entry_path(&name);
            // a known key's file is reported by check_entry already
            let known_key_file = name
                .strip_suffix(".enc")
                .is_some_and(|id| known.contains(id));
            match stat.kind {
                EntryKind::File => self.check_key_dir_file(key_dir, &name, &stat, known)?,
                _ if known_key_file => {}
                EntryKind::Symlink => self.report_symlink(None, &path, "remove"),
                // only regular files are leftovers repair may remove
                _ => self.report(
                    FindingKind::UnknownFile,
                    None,
                    &path,
                    format!("{path:?} is not a regular file - left alone, remove it by hand"),
                ),
            }
        }
        Ok(())
    }

    /// A regular file of the key directory: a temp file, a lock file, a
    /// key file (one without a config entry: those with one are checked by
    /// [`Checker::check_entry`]), or a file the store does not know.
    fn check_key_dir_file(
        &mut self,
        key_dir: &DirHandle,
        name: &str,
        stat: &EntryStat,
        known: &HashSet<&str>,
    ) -> Result<(), Error> {
        let path = key_dir.entry_path(name);
        let in_key_dir = |class| Place::KeyDir {
            name: name.to_string(),
            class,
        };
        if is_temp_name(name) && stat.size == 0 {
            // holds nothing: repair removes it
            self.add(
                FindingKind::TempFile,
                None,
                &path,
                Some(in_key_dir(KEY_FILE_CLASS)),
                format!("{path:?} is an empty temp file left by an interrupted write"),
            );
        } else if is_temp_name(name) {
            self.add(
                FindingKind::TempFile,
                None,
                &path,
                Some(Place::KeyDirTemp {
                    name: name.to_string(),
                }),
                format!(
                    "{path:?} is a temp file left by an interrupted write - repair moves it into the trash"
                ),
            );
        } else if let Some(id) = name.strip_suffix(".enc.lck") {
            if known.contains(id) || key_dir.stat(&key_file_name(id))?.is_some() {
                let place = in_key_dir(KEY_LOCK_CLASS);
                let mode = KEY_LOCK_CLASS.mode();
                self.check_stat(place, &path, stat, Some(id), mode, KEY_LOCK_CLASS);
            } else {
                self.add(
                    FindingKind::StaleLockFile,
                    Some(id),
                    &path,
                    Some(in_key_dir(KEY_LOCK_CLASS)),
                    format!("{path:?} is the lock file of a key that no longer exists"),
                );
            }
        } else if let Some(id) = name.strip_suffix(".enc") {
            if !known.contains(id) {
                self.check_unnamed_key_file(key_dir, name, id, &path);
            }
        } else {
            self.report(
                FindingKind::UnknownFile,
                None,
                &path,
                format!("{path:?} is not a file of the key store - left alone"),
            );
        }
        Ok(())
    }

    /// A key file without config entry of its own: an orphan only if
    /// nobody names it (see [`References::naming`]), else ambiguous.
    fn check_unnamed_key_file(&mut self, key_dir: &DirHandle, name: &str, id: &str, path: &Path) {
        let fingerprint = key_file_fingerprint(key_dir, name);
        let why = self.refs.naming(id, fingerprint.as_ref());
        let waiting = self.trash.claim(fingerprint.as_ref());
        if !why.is_empty() {
            let also = match &waiting {
                Some(entry) => format!(
                    " (trash entry '{entry}' waits for it: an interrupted delete or restore)"
                ),
                None => String::new(),
            };
            let message = format!(
                "{path:?} has no config entry '{id}', but {}{also} - left alone, it may be a live \
                 key: if an entry's id is mistyped, correct it in {:?}; if a sync job names a key \
                 that was deleted, fix the job; if the file is a copy you do not need, move it out \
                 of the key directory",
                why.join("; "),
                self.keys.config_path(),
            );
            self.report(FindingKind::AmbiguousKeyFile, Some(id), path, message);
            return;
        }
        let held = (self.key_list_gone || self.refs.jobs_rolled_back) && waiting.is_none();
        let message = match &waiting {
            Some(entry) => format!(
                "{path:?} is a key file without config entry, recorded in trash entry '{entry}' \
                 (an interrupted delete or restore) - repair moves it there"
            ),
            None if held && self.key_list_gone => format!(
                "{path:?} is a key file without config entry, while the config that lists it is \
                 missing - left alone: put the config back first"
            ),
            None if held => format!(
                "{path:?} is a key file without config entry, while the sync job list that may \
                 name it is missing or rolled back ({:?}) - left alone: put the job list back \
                 first",
                self.base.entry_path(files::SYNC_CFG.name),
            ),
            None => format!(
                "{path:?} is a key file without config entry that no sync job names (left by an \
                 interrupted store or delete, or copied in) - repair moves it into the trash"
            ),
        };
        let place = Place::Orphan {
            name: name.to_string(),
            into: waiting,
        };
        self.push(
            FindingKind::OrphanKeyFile,
            Some(id),
            path,
            Some(place),
            message,
            !held,
        );
    }

    /// A directory in the key directory that verify looks into (the trash,
    /// the audit directory): a finding if it is not a directory, its owner
    /// and mode; open only if it is one only root may change.
    fn open_subdir(
        &mut self,
        key_dir: &DirHandle,
        path: &Path,
        subdir: &SubDir,
    ) -> Result<Option<DirHandle>, Error> {
        let Some(stat) = key_dir.stat(subdir.name)? else {
            return Ok(None);
        };
        match stat.kind {
            EntryKind::Dir => {}
            EntryKind::Symlink => {
                self.report_symlink(None, path, "replace");
                return Ok(None);
            }
            _ => {
                self.report(
                    FindingKind::UnknownFile,
                    None,
                    path,
                    format!(
                        "{path:?} is not a directory - left alone; {}",
                        subdir.not_a_dir
                    ),
                );
                return Ok(None);
            }
        }
        let Some(dir) = key_dir.open_dir_any(subdir.name)? else {
            return Ok(None);
        };
        let stat = dir.stat_self()?;
        let (place, mode, class) = (subdir.place.clone(), subdir.mode, subdir.class);
        self.check_stat(place, path, &stat, None, mode, class);
        // others could have changed what is in it: look inside once
        // repair has fixed owner and mode
        let policy = self.keys.dir().ownership().key_dir_policy();
        Ok(policy.trusts(&stat).then_some(dir))
    }

    /// The trash: the directory's owner and mode, then (if it is one only
    /// root may change) its entries. Records waiting for their key file are
    /// kept in [`TrashState::waiting`] for the key directory's scan.
    fn scan_trash(&mut self, key_dir: &DirHandle) -> Result<(), Error> {
        let trash = self.keys.trash();
        let Some(trash_dir) = self.open_subdir(key_dir, &trash.path(), &TRASH_SUBDIR)? else {
            return Ok(());
        };
        let scan = trash::scan(&trash_dir)?;
        for (name, stat) in &scan.others {
            let entry_path = trash_dir.entry_path(name);
            if stat.kind == EntryKind::Symlink {
                self.report_symlink(None, &entry_path, "remove");
            } else if stat.kind == EntryKind::File && is_temp_name(name) && name.contains(".json") {
                self.add(
                    FindingKind::TempFile,
                    None,
                    &entry_path,
                    Some(Place::Trash { name: name.clone() }),
                    format!("{entry_path:?} is a temp file of a trash record left by an interrupted write"),
                );
            } else {
                self.report(
                    FindingKind::UnknownFile,
                    None,
                    &entry_path,
                    format!("{entry_path:?} is not a file of the trash - left alone"),
                );
            }
        }
        for (entry, files) in &scan.entries {
            self.check_trash_entry(&trash, &trash_dir, entry, *files);
        }
        Ok(())
    }

    /// One entry of the trash: complete (its key is what its record says),
    /// waiting for its key file, or a finding.
    fn check_trash_entry(
        &mut self,
        trash: &trash::Trash,
        trash_dir: &DirHandle,
        entry: &str,
        files: trash::EntryFiles,
    ) {
        let id = trash::entry_id(entry);
        let key_path = trash_dir.entry_path(&trash::key_name(entry));
        let record = match files.record {
            true => Some(trash.read_record(trash_dir, entry)),
            false => None,
        };
        match (record, files.key) {
            (Some(Ok(record)), true) => {
                let Some(recorded) = record.fingerprint else {
                    // a torn temp file, say: nothing to compare
                    self.trash.complete += 1;
                    return;
                };
                match trash.read_key(trash_dir, entry) {
                    Ok((_, found)) if found == recorded => {
                        self.trash.complete += 1;
                        self.trash
                            .copies
                            .entry(found)
                            .or_default()
                            .push(entry.to_string());
                    }
                    Ok((_, found)) => self.report(
                        FindingKind::InvalidTrashEntry,
                        Some(id),
                        &key_path,
                        format!(
                            "{key_path:?} holds the key with fingerprint {found}, but its \
                             record says {recorded} - left alone, inspect it by hand"
                        ),
                    ),
                    Err(err) => self.report(
                        FindingKind::InvalidTrashEntry,
                        Some(id),
                        &key_path,
                        format!("{err} - left alone, inspect it by hand"),
                    ),
                }
            }
            (Some(Ok(record)), false) => {
                self.trash
                    .waiting
                    .push((entry.to_string(), record.fingerprint, false));
            }
            (Some(Err(err)), _) => {
                let record_path = trash_dir.entry_path(&trash::record_name(entry));
                self.report(
                    FindingKind::InvalidTrashEntry,
                    Some(id),
                    &record_path,
                    format!("{err} - left alone, inspect it by hand"),
                );
            }
            (None, _) => self.add(
                FindingKind::UnrecordedTrashFile,
                Some(id),
                &key_path,
                Some(Place::TrashUnrecorded {
                    entry: entry.to_string(),
                }),
                format!(
                    "{key_path:?} is a key file in the trash without its record - repair writes one"
                ),
            ),
        }
    }

    /// The audit directory: its owner and mode, then (if only root may
    /// change it) the owner and mode of each of its files, as for the rest
    /// of the store. What the log says is `audit verify`'s to check.
    fn scan_audit(&mut self, key_dir: &DirHandle) -> Result<(), Error> {
        let path = key_dir.entry_path(AUDIT_DIR_NAME);
        let Some(audit_dir) = self.open_subdir(key_dir, &path, &AUDIT_SUBDIR)? else {
            return Ok(());
        };
        for name in audit_dir.names()? {
            let Some(stat) = audit_dir.stat(&name)? else {
                continue; // gone since the listing
            };
            let entry_path = audit_dir.entry_path(&name);
            match AUDIT_FILES.iter().find(|file| file.name == name) {
                Some(file) if stat.kind == EntryKind::File => {
                    let place = Place::Audit {
                        name: name.clone(),
                        class: file.class,
                    };
                    let (mode, class) = (file.class.mode(), file.class);
                    self.check_stat(place, &entry_path, &stat, None, mode, class);
                }
                _ if stat.kind == EntryKind::Symlink => {
                    self.report_symlink(None, &entry_path, "remove")
                }
                _ => self.report(
                    FindingKind::UnknownFile,
                    None,
                    &entry_path,
                    format!("{entry_path:?} is not a file of the audit log - left alone"),
                ),
            }
        }
        Ok(())
    }

    /// Records whose key file is neither in the trash nor (as an orphan)
    /// in the key directory.
    fn report_stale_records(&mut self) {
        let trash_path = self.keys.trash().path();
        let waiting = std::mem::take(&mut self.trash.waiting);
        for (entry, fingerprint, claimed) in &waiting {
            if *claimed {
                continue;
            }
            let path = trash_path.join(trash::record_name(entry));
            let why = match fingerprint.as_ref().and_then(|fp| self.refs.entry_with(fp)) {
                Some(id) => format!(
                    "the key is in the store as '{id}' (an interrupted delete, or a finished restore)"
                ),
                None => {
                    "its key file is gone (an interrupted purge, or removed by hand)".to_string()
                }
            };
            self.add(
                FindingKind::StaleTrashRecord,
                Some(trash::entry_id(entry)),
                &path,
                Some(Place::Trash {
                    name: trash::record_name(entry),
                }),
                format!("{path:?} is a trash record without its key file: {why} - repair removes the record"),
            );
        }
        self.trash.waiting = waiting;
    }

    /// A missing key directory with nothing listed: a finding if sync jobs
    /// name keys (it was moved away with the key list; see
    /// `EncryptionKeys::refuse_new_key_dir`).
    fn report_key_dir_jobs_need(&mut self, key_dir_path: &Path) {
        let Some(named) = self.keys.keys_named_by_jobs().ok().flatten() else {
            return;
        };
        self.report(
            FindingKind::InvalidKeyDir,
            None,
            key_dir_path,
            format!(
                "key directory {key_dir_path:?} is missing while sync jobs name {named} and \
                 {:?} lists none: it was moved or removed with the key list - put them back or \
                 restore them from a backup (no store creates a new one while jobs name keys)",
                self.keys.config_path(),
            ),
        );
    }

    /// Temp files of interrupted writes of the config dir's own files.
    fn scan_base_dir(&mut self) -> Result<(), Error> {
        for name in self.base.names()? {
            let Some(file) = files::ALL
                .iter()
                .find(|file| temp_file_target(&name) == Some(file.name))
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
    /// The key directory itself: its owner and mode. A key directory that
    /// is a symlink or a file, or one others may write, is reported and
    /// nothing under it is looked at; a missing one is reported if the
    /// config lists keys (`known`), whose files it held.
    fn check_key_dir(&mut self, state: &KeyDirState, known: &HashSet<&str>) -> Result<(), Error> {
        let key_dir_path = self.keys.key_dir();
        let (place, mode, class) = (Place::KeyDirItself, KEY_DIR_MODE, FileClass::Config);
        match state {
            KeyDirState::Missing if known.is_empty() => {
                self.report_key_dir_jobs_need(&key_dir_path)
            }
            KeyDirState::Missing => {
                let mut ids: Vec<&str> = known.iter().copied().collect();
                ids.sort_unstable();
                let shown = ids.len().min(MISSING_IDS_SHOWN);
                let mut listed = ids[..shown]
                    .iter()
                    .map(|id| format!("'{id}'"))
                    .collect::<Vec<_>>()
                    .join(", ");
                if ids.len() > shown {
                    listed.push_str(&format!(" and {} more", ids.len() - shown));
                }
                self.report(
                    FindingKind::InvalidKeyDir,
                    None,
                    &key_dir_path,
                    format!(
                        "key directory {key_dir_path:?} is missing while {:?} lists {} key(s) \
                         ({listed}): none of them can be loaded - it was moved or removed; put \
                         it back or restore it from a backup (no store creates a new one while \
                         keys are listed)",
                        self.keys.config_path(),
                        ids.len(),
                    ),
                );
            }
            KeyDirState::Usable(usable) => {
                let stat = usable.stat_self()?;
                self.check_stat(place, &key_dir_path, &stat, None, mode, class);
            }
            KeyDirState::Untrusted(stat) => {
                let (uid, gid) = self.keys.dir().ownership().owner_of(class);
                self.check_stat(place, &key_dir_path, stat, None, mode, class);
                self.report(
                    FindingKind::InvalidKeyDir,
                    None,
                    &key_dir_path,
                    format!(
                        "key directory {key_dir_path:?} is owned by {} with mode {:04o}: others \
                         could have changed what is in it, so no key file was checked - if it is \
                         root's directory with a wrong owner or mode (restored so, say), compare \
                         its files with a backup, give it owner {}:{} and mode \
                         {KEY_DIR_MODE:04o} by hand, then run verify again; if root's directory \
                         was moved away, put it back",
                        user_name_of(stat.uid),
                        stat.mode,
                        user_name_of(uid.as_raw()),
                        group_name_of(gid.as_raw()),
                    ),
                );
            }
            KeyDirState::NotADirectory(stat) if stat.kind == EntryKind::Symlink => {
                self.report_symlink(None, &key_dir_path, "replace");
            }
            KeyDirState::NotADirectory(_) => {
                self.report(
                    FindingKind::InvalidKeyDir,
                    None,
                    &key_dir_path,
                    format!(
                        "key directory {key_dir_path:?} is not a directory - no key file was checked; move it away and restore the directory from a backup"
                    ),
                );
            }
        }
        Ok(())
    }

    /// Sync jobs (in the sync job config at `path`) that name a key the
    /// config does not know.
    fn report_dangling_jobs(&mut self, known: &HashSet<&str>, path: &Path) {
        let dangling: Vec<(String, String)> = self
            .refs
            .jobs
            .iter()
            .filter(|(_, key_id)| !known.contains(key_id.as_str()))
            .cloned()
            .collect();
        for (job_id, key_id) in dangling {
            self.report(
                FindingKind::DanglingJobReference,
                Some(&key_id),
                path,
                format!(
                    "sync job '{job_id}' names encryption key '{key_id}', which does not exist"
                ),
            );
        }
    }
}

/// Moves the key file `name` of the key directory into a new trash entry
/// recorded as `record` (the record first); the entry's name.
fn move_into_new_entry(
    trash: &trash::Trash,
    key_dir: &DirHandle,
    trash_dir: &DirHandle,
    name: &str,
    record: &TrashRecord,
) -> Result<String, Error> {
    let entry = trash.reserve(trash_dir, record)?;
    failpoint::hit("repair:record-written");
    trash.fill(key_dir, name, trash_dir, &entry)?;
    failpoint::hit("repair:key-trashed");
    Ok(entry)
}

/// What a repair of an owner and mode did, for the report.
fn owner_and_mode_set(own: &Ownership, mode: u32, class: FileClass) -> String {
    let (uid, gid) = own.owner_of(class);
    format!(
        "set mode {mode:04o} and owner {}:{}",
        user_name_of(uid.as_raw()),
        group_name_of(gid.as_raw())
    )
}

/// The fingerprint of the key in key file `name`, if it can be read.
fn key_file_fingerprint(key_dir: &DirHandle, name: &str) -> Option<Fingerprint> {
    read_key_file_unchecked(key_dir, name)
        .ok()
        .and_then(|key_config| key_fingerprint(&key_config).ok())
}

/// Removes a file that holds no key material (a config file's temp file)
/// and syncs the directory; a missing file is fine.
fn remove_synced(dir: &DirHandle, name: &str) -> Result<(), Error> {
    if dir.unlink(name)? {
        dir.sync()?;
    }
    Ok(())
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

/// Whether `name` is a temp file's (`<name>.tmp_XXXXXX`).
fn is_temp_name(name: &str) -> bool {
    temp_file_target(name).is_some()
}

/// A directory of the key directory with entries of its own, which
/// verify checks and then looks into.
struct SubDir {
    name: &'static str,
    place: Place,
    mode: u32,
    class: FileClass,
    /// What a non-directory in its place stops, for the finding.
    not_a_dir: &'static str,
}

const TRASH_SUBDIR: SubDir = SubDir {
    name: TRASH_DIR_NAME,
    place: Place::TrashDirItself,
    mode: TRASH_DIR_MODE,
    class: TRASH_CLASS,
    not_a_dir: "nothing can go into the trash until it is moved away",
};

const AUDIT_SUBDIR: SubDir = SubDir {
    name: AUDIT_DIR_NAME,
    place: Place::AuditDirItself,
    mode: AUDIT_DIR_MODE,
    class: FileClass::Config,
    not_a_dir: "no operation can record itself in the audit log (and so none can change the \
                store) until it is moved away",
};

/// Entries of the key directory its scan passes over: the trash and the
/// audit log's directory (each scanned on its own; what the log says is
/// `audit verify`'s), root's mirrors of the config dir's locks (empty
/// files) and rotations in progress (`rotate --status` shows them).
fn scanned_elsewhere(name: &str, stat: &EntryStat) -> bool {
    name == AUDIT_DIR_NAME
        || name == TRASH_DIR_NAME
        || (stat.kind == EntryKind::Dir
            && (name == files::ROOT_LOCK_DIR_NAME || name == files::ROTATE_DIR_NAME))
}

/// The key directory as verify found it.
enum KeyDirState {
    /// Missing: nothing to check, unless the config lists keys.
    Missing,
    /// A directory we may look into.
    Usable(DirHandle),
    /// A directory whose owner or mode lets others change what is in it:
    /// reported, not looked into, never repaired.
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
    Ok(if policy.trusts(&stat) {
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
    /// take that key's lock too. Then, each alone and only to read its
    /// file, root's mirrors of the access files' locks (in the crate's lock
    /// order), where there are mirrors.
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
        let sync_lock = self
            .sync_jobs()
            .lock_config()
            .layer_err(|| "unable to verify the key store")?;

        failpoint::hit("verify:locked");
        let mut report = self.check(&keys, &base, &config_lock, &sync_lock)?;
        if repair && report.findings.iter().any(|f| f.repairable) {
            let (repaired, failed) = self.repair(&keys, &base, &report.findings, &config_lock);
            report = self.check(&keys, &base, &config_lock, &sync_lock)?;
            report.repaired = repaired;
            report.repair_failed = failed;
        }
        self.check_rollback(&config_lock, &mut report);
        self.check_rollback(&sync_lock, &mut report);
        self.check_access_rollbacks(&base, &mut report)
            .layer_err(|| "unable to verify the key store")?;
        Ok(report)
    }

    /// Reports an access file no reader trusts, and a rolled-back one (an
    /// `acl.cfg` with a revoked grant put back gives that access again).
    /// The rollback check of each runs under root's mirror of its
    /// lock alone, in the crate's lock order: every root writer takes the
    /// mirror first, and no lock file of the `backup` user's is made for a
    /// file nobody wrote. No mirror, no record to compare with.
    fn check_access_rollbacks(
        &self,
        base: &DirHandle,
        report: &mut VerifyReport,
    ) -> Result<(), Error> {
        self.check_rollback_alone::<UserCfg>(base, report)?;
        self.check_rollback_alone::<AclCfg>(base, report)?;
        self.check_rollback_alone::<TokenShadow>(base, report)?;
        self.check_rollback_alone::<ShadowJson>(base, report)
    }

    fn check_rollback_alone<F: LockedConfig>(
        &self,
        base: &DirHandle,
        report: &mut VerifyReport,
    ) -> Result<(), Error> {
        self.check_access_file::<F>(base, report)?;
        if let Some(mirror) = mirror::lock_mirror(self, base, F::LOCK.name)? {
            self.report_rollback::<F>(&mirror, report);
        }
        Ok(())
    }

    /// Reports the access file of `F` if no reader trusts it (an `acl.cfg`
    /// of backup's making in place of root's, say; see
    /// [`ConfigDir::untrusted_file`]).
    fn check_access_file<F: LockedConfig>(
        &self,
        base: &DirHandle,
        report: &mut VerifyReport,
    ) -> Result<(), Error> {
        report
            .findings
            .extend(self.untrusted_file(base, &F::FILE, |_| "")?);
        Ok(())
    }

    /// A finding for `file` if no reader trusts it: a link, a file of the
    /// backup user's, or one others may write. Never repairable: a `chown
    /// root` would make what root never wrote (a grant, a key list) one
    /// root trusts. `more` is appended to the message.
    fn untrusted_file(
        &self,
        base: &DirHandle,
        file: &ConfigFile,
        more: impl Fn(&Distrust) -> &'static str,
    ) -> Result<Option<Finding>, Error> {
        let Some(stat) = base.stat(file.name)? else {
            return Ok(None);
        };
        let path = self.path(file.name);
        let Some(why) = self.ownership().distrust(file.class, &stat) else {
            return Ok(None);
        };
        let more = more(&why);
        let kind = match why {
            Distrust::NotAFile(_) if stat.kind == EntryKind::Symlink => FindingKind::SymbolicLink,
            Distrust::NotAFile(_) => FindingKind::UnknownFile,
            Distrust::Owner { .. } => FindingKind::WrongOwner,
            Distrust::Mode { .. } => FindingKind::WrongMode,
        };
        Ok(Some(Finding {
            kind,
            id: None,
            message: format!(
                "{path:?} {why}: no reader trusts it (someone with the backup user's rights may \
                 have put it there){NEVER_MADE_TRUSTED}{more}"
            ),
            path,
            repairable: false,
            place: None,
        }))
    }

    /// Reports the config file of `F` if it is an earlier write of root's
    /// than its last, or missing (see `lock::written`).
    fn check_rollback<F: LockedConfig>(&self, held: &ConfigLock<F>, report: &mut VerifyReport) {
        if let Some(mirror) = held.mirror() {
            self.report_rollback::<F>(mirror, report);
        }
    }

    /// [`Self::check_rollback`] under `mirror`, root's mirror of `F`'s lock.
    fn report_rollback<F: LockedConfig>(
        &self,
        mirror: &BackupLockGuard,
        report: &mut VerifyReport,
    ) {
        // a file that cannot be read (a link, not root's) is reported by
        // the checks of the store, or stops them
        let Ok(current) = self.read_file(&F::FILE) else {
            return;
        };
        let Some(rollback) = written::rollback(mirror, &F::FILE, current.as_deref()) else {
            return;
        };
        let path = self.path(F::FILE.name);
        let last = rollback.last_written_at;
        let message = match rollback.now {
            written::Now::Earlier { at, writes_since } => format!(
                "{path:?} holds what this tool wrote at unix time {at}, not its last write \
                 (unix time {last}, {writes_since} write(s) later): someone who can write the \
                 config dir put an older copy back - the changes since are undone; make them \
                 again (the audit log lists them)"
            ),
            written::Now::Missing => format!(
                "{path:?} is missing, but this tool last wrote it at unix time {last}: \
                 someone who can write the config dir moved or removed it - put it back"
            ),
            written::Now::Emptied => format!(
                "{path:?} is empty or blank, but this tool last wrote it at unix time {last} with \
                 content: someone who can write the config dir put another file in its place \
                 - put it back (if another tool emptied it, remove {:?})",
                written::record_path(mirror, &F::FILE)
            ),
        };
        report.findings.push(Finding {
            kind: FindingKind::RolledBack,
            id: None,
            path,
            message,
            repairable: false,
            place: None,
        });
    }

    /// The findings, under the config lock `config_lock`.
    fn check(
        &self,
        keys: &EncryptionKeys,
        base: &DirHandle,
        config_lock: &EncryptionKeysLock,
        sync_lock: &SyncLock,
    ) -> Result<VerifyReport, Error> {
        // what the store holds cannot be told from a key list or sync jobs
        // backup may have written: every key file would look like an orphan
        // (for repair to move into the trash), every job like a dangling one
        let untrusted: Vec<Finding> = [&files::ENCRYPTION_KEYS_CFG, &files::SYNC_CFG]
            .into_iter()
            .map(|file| self.untrusted_file(base, file, untrusted_config_advice))
            .filter_map(Result::transpose)
            .collect::<Result<_, _>>()?;
        if !untrusted.is_empty() {
            return Ok(self.report_of(0, 0, untrusted));
        }
        let index = keys
            .index_data()
            .layer_err(|| "unable to verify the key store")?;
        // a key list moved away, decided on the list as read (an error
        // finding out is taken as one: holding orphans back is the side
        // that changes nothing)
        let key_list_gone = index.is_empty() && self.refuse_read_empty(config_lock).is_err();
        let (valid, invalid) = index.partition();
        let entries: Vec<CryptKey> = valid.into_iter().cloned().collect();
        let key_dir_state = inspect_key_dir(self, base)?;
        let key_dir = match &key_dir_state {
            KeyDirState::Usable(key_dir) => Some(key_dir),
            _ => None,
        };
        let refs = References::read(self, keys, sync_lock)
            .layer_err(|| "unable to verify the key store")?;
        let mut checker = Checker {
            keys: *keys,
            base,
            key_dir,
            refs,
            trash: TrashState::default(),
            key_list_gone,
            findings: Vec::new(),
        };
        for (id, err) in invalid {
            checker.report(
                FindingKind::InvalidConfigEntry,
                Some(id),
                &keys.config_path(),
                format!("config entry of encryption key '{id}' is invalid - {err}"),
            );
        }
        checker.check_base_file(&files::ENCRYPTION_KEYS_CFG)?;
        checker.check_base_file(&files::ENCRYPTION_KEYS_LOCK)?;
        let known: HashSet<&str> = index.ids().collect();
        checker.check_key_dir(&key_dir_state, &known)?;
        if let Some(key_dir) = checker.key_dir {
            // the trash first: the key directory's scan matches orphans
            // with the records waiting for them
            checker.scan_trash(key_dir)?;
            for entry in &entries {
                checker.check_entry(key_dir, entry)?;
            }
            checker.scan_key_dir(key_dir, &known)?;
            checker.report_stale_records();
            checker.scan_audit(key_dir)?;
        }
        checker.scan_base_dir()?;
        checker.report_dangling_jobs(&known, &self.sync_jobs().config_path());

        Ok(self.report_of(index.len(), checker.trash.complete, checker.findings))
    }

    /// A report of this config dir, before any repair.
    fn report_of(
        &self,
        keys_checked: usize,
        keys_in_trash: usize,
        findings: Vec<Finding>,
    ) -> VerifyReport {
        VerifyReport {
            config_dir: self.base().to_owned(),
            ownership: self.ownership().to_string(),
            keys_checked,
            keys_in_trash,
            findings,
            repaired: Vec::new(),
            repair_failed: Vec::new(),
        }
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
        // the key directory's and the trash's own owner and mode first:
        // only then are they opened (checked) for the repairs inside them
        let mut ordered: Vec<&Finding> = findings.iter().filter(|f| f.repairable).collect();
        ordered.sort_by_key(|f| Place::rank(&f.place));
        let mut fixed_dirs: Vec<&Place> = Vec::new();
        // repairs made before the log took their record (see `recorded`)
        let mut deferred = Vec::new();
        for finding in ordered {
            if finding.kind == FindingKind::PathNotCanonical {
                rewrite_paths = true;
                continue;
            }
            // the repairs the log needs are done: record those it refused
            if Place::rank(&finding.place) > 2 && !deferred.is_empty() {
                // (the ranks up to 2 are the places the log needs)
                failed.extend(self.record_deferred(std::mem::take(&mut deferred)));
            }
            let path = finding.path.clone();
            if let Some(
                place @ (Place::KeyDirItself | Place::TrashDirItself | Place::AuditDirItself),
            ) = &finding.place
            {
                if fixed_dirs.contains(&place) {
                    continue; // mode and owner are fixed together
                }
                fixed_dirs.push(place);
            }
            match self.repair_one(keys, base, finding, &mut deferred) {
                Ok(Some(action)) => done.push(Repair { path, action }),
                Ok(None) => {}
                Err(err) => failed.push(Repair {
                    path,
                    action: err.to_string(),
                }),
            }
        }
        failed.extend(self.record_deferred(deferred));
        if rewrite_paths {
            match self.rewrite_paths(keys, config_lock) {
                Ok(changed) => done.extend(changed),
                Err(err) => failed.push(Repair {
                    path: keys.config_path(),
                    action: format!("unable to rewrite key paths - {err}"),
                }),
            }
        }
        (done, failed)
    }

    /// Repairs one finding that is about one file; the action taken. Each
    /// repair is recorded in the audit log: its intent after the locks the
    /// repair takes, before it changes anything (see [`ConfigDir::recorded`]).
    fn repair_one(
        &self,
        keys: &EncryptionKeys,
        base: &DirHandle,
        finding: &Finding,
        deferred: &mut Vec<(Event, PathBuf)>,
    ) -> Result<Option<String>, Error> {
        let own = *self.ownership();
        let Some(place) = &finding.place else {
            return Ok(None);
        };
        let event = self.repair_event(finding);
        let (dir, name, class) = match place {
            Place::KeyDirItself | Place::AuditDirItself | Place::TrashDirItself => {
                return self
                    .repair_dir_itself(keys, base, finding, &event, deferred)
                    .map(Some);
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
            Place::Audit { name, class } => {
                let Some(key_dir) = keys.open_key_dir(base)? else {
                    bail!("key directory vanished - left alone");
                };
                let Some(audit_dir) = key_dir.open_dir(AUDIT_DIR_NAME, own.key_dir_policy())?
                else {
                    bail!("audit directory vanished - left alone");
                };
                (audit_dir, name.as_str(), *class)
            }
            place => {
                return self
                    .repair_trash(keys, base, finding, place, event)
                    .map(Some);
            }
        };
        // the audit files are what the log needs to take a record
        let defer = match place {
            Place::Audit { .. } => Some((deferred, &finding.path)),
            _ => None,
        };
        let action = match finding.kind {
            FindingKind::WrongMode | FindingKind::WrongOwner => {
                self.recorded(&event, defer, || {
                    dir.fix_owner_and_mode(name, EntryKind::File, own.options_for(class))?;
                    Ok(owner_and_mode_set(&own, class.mode(), class))
                })?
            }
            FindingKind::TempFile => {
                // a config file's temp file, or an empty one of a key file:
                // no key material (checked again: nothing in the key
                // directory that holds data is ever unlinked)
                if matches!(place, Place::KeyDir { .. })
                    && dir.stat(name)?.is_some_and(|stat| stat.size > 0)
                {
                    bail!("it holds data now - left alone, run verify again");
                }
                self.recorded(&event, None, || {
                    remove_synced(&dir, name)?;
                    Ok("removed temp file".to_string())
                })?
            }
            FindingKind::StaleLockFile => {
                let id = finding.id.as_deref().unwrap_or_default();
                let key_lock = keys.lock_key_file(&dir, id)?;
                self.recorded(&event, None, || {
                    key_lock.guard.remove_file()?;
                    Ok("removed stale lock file".to_string())
                })?
            }
            _ => return Ok(None),
        };
        Ok(Some(action))
    }

    /// Repairs the owner and mode of the key directory, the audit directory
    /// or the trash, each opened anew (the trash through the checked key
    /// directory). The first two are what the log needs to take a record:
    /// their repair may be recorded after it (see [`ConfigDir::recorded`]).
    fn repair_dir_itself(
        &self,
        keys: &EncryptionKeys,
        base: &DirHandle,
        finding: &Finding,
        event: &Event,
        deferred: &mut Vec<(Event, PathBuf)>,
    ) -> Result<String, Error> {
        let own = *self.ownership();
        let (dir, options, mode, class) = match finding.place {
            Some(Place::KeyDirItself) => {
                let Some(key_dir) = base.open_dir_any(KEY_DIR_NAME)? else {
                    bail!("key directory vanished - left alone");
                };
                (
                    key_dir,
                    own.key_dir_options(),
                    KEY_DIR_MODE,
                    FileClass::Config,
                )
            }
            Some(Place::AuditDirItself) => {
                let Some(key_dir) = keys.open_key_dir(base)? else {
                    bail!("key directory vanished - left alone");
                };
                let Some(audit_dir) = key_dir.open_dir_any(AUDIT_DIR_NAME)? else {
                    bail!("audit directory vanished - left alone");
                };
                let options = audit::audit_dir_options(&own);
                (audit_dir, options, AUDIT_DIR_MODE, FileClass::Config)
            }
            _ => {
                let Some(key_dir) = keys.open_key_dir(base)? else {
                    bail!("key directory vanished - left alone");
                };
                let Some(trash_dir) = key_dir.open_dir_any(TRASH_DIR_NAME)? else {
                    bail!("trash vanished - left alone");
                };
                (
                    trash_dir,
                    own.trash_dir_options(),
                    TRASH_DIR_MODE,
                    TRASH_CLASS,
                )
            }
        };
        let defer = match finding.place {
            Some(Place::TrashDirItself) => None,
            _ => Some((deferred, &finding.path)),
        };
        self.recorded(event, defer, || {
            dir.fix_own_owner_and_mode(options)?;
            Ok(owner_and_mode_set(&own, mode, class))
        })
    }

    /// The audit event of repairing `finding`: its operation, the key id
    /// it names (if any) and the file's path in the config dir.
    fn repair_event(&self, finding: &Finding) -> Event {
        let op = match finding.kind {
            FindingKind::WrongMode => Op::RepairMode,
            FindingKind::WrongOwner => Op::RepairOwner,
            FindingKind::PathNotCanonical => Op::RepairPath,
            FindingKind::OrphanKeyFile => Op::RepairOrphan,
            FindingKind::StaleLockFile => Op::RepairStaleLock,
            FindingKind::StaleTrashRecord | FindingKind::UnrecordedTrashFile => {
                Op::RepairTrashRecord
            }
            // a temp file, and nothing else is repaired
            _ => Op::RepairTempFile,
        };
        let mut event = self.audit_event(op);
        if let Some(id) = &finding.id {
            event = event.id(id.as_str());
        }
        let path = finding
            .path
            .strip_prefix(self.base())
            .unwrap_or(&finding.path);
        event.id(path.to_string_lossy())
    }

    /// Runs the repair `change` as an audited operation: its intent first
    /// (if that cannot be recorded, nothing is changed), then the change,
    /// then its outcome.
    ///
    /// `defer`: the repair fixes the owner or mode of the key directory,
    /// the audit directory or an audit file, which the log must trust
    /// before it takes a record. If the log refuses the intent, such a
    /// repair is made first and its record is added to `defer`'s list, to
    /// be written once the repairs the log needs are done
    /// ([`ConfigDir::record_deferred`]): the one exception to "intent
    /// first", or nothing could ever make the log usable again.
    fn recorded(
        &self,
        event: &Event,
        defer: Option<(&mut Vec<(Event, PathBuf)>, &PathBuf)>,
        change: impl FnOnce() -> Result<String, Error>,
    ) -> Result<String, Error> {
        let (refused, (deferred, path)) = match (self.audit_intent(None, event), defer) {
            (Ok(pending), _) => return pending.done(change()),
            (Err(err), Some(defer)) => (err, defer),
            (Err(err), None) => return Err(err),
        };
        let done = change().map_err(|err| {
            format_err!("{err} (and the audit log refused its record - {refused})")
        })?;
        deferred.push((event.clone(), path.clone()));
        Ok(format!(
            "{done} (recorded in the audit log after the change: the log refused records until \
             then)"
        ))
    }

    /// Records repairs made before the log took records (see
    /// [`ConfigDir::recorded`]): intent and outcome of each. Returns those
    /// that could not be recorded.
    fn record_deferred(&self, deferred: Vec<(Event, PathBuf)>) -> Vec<Repair> {
        let mut failed = Vec::new();
        for (event, path) in deferred {
            if let Err(err) = self
                .audit_intent(None, &event)
                .and_then(|pending| pending.done(Ok(())))
            {
                failed.push(Repair {
                    path,
                    action: format!(
                        "repaired, but the repair could not be recorded in the audit log - {err}"
                    ),
                });
            }
        }
        failed
    }

    /// The repairs that move files into the trash or change it.
    fn repair_trash(
        &self,
        keys: &EncryptionKeys,
        base: &DirHandle,
        finding: &Finding,
        place: &Place,
        mut event: Event,
    ) -> Result<String, Error> {
        let trash = keys.trash();
        // opened and checked anew: nothing found by the check is trusted
        // by name
        let Some(key_dir) = keys.open_key_dir(base)? else {
            bail!("key directory vanished - left alone");
        };
        match place {
            Place::Orphan { name, into } => {
                self.repair_orphan(keys, &key_dir, finding, (name, into.as_deref()), event)
            }
            Place::KeyDirTemp { name } => {
                // the id it is of: `<id>.enc.tmp_XXXXXX` (an id may hold
                // `.tmp_` itself)
                let target = temp_file_target(name).unwrap_or(name);
                let id = target.strip_suffix(".enc").unwrap_or(target);
                let fingerprint = key_file_fingerprint(&key_dir, name);
                event.fingerprints.extend(fingerprint);
                let record = self.repair_record(id, fingerprint, TrashReason::RepairTemp);
                self.recorded(&event, None, || {
                    let trash_dir = trash.ensure(&key_dir)?;
                    let entry = move_into_new_entry(&trash, &key_dir, &trash_dir, name, &record)?;
                    Ok(format!("moved temp file into the trash as '{entry}'"))
                })
            }
            Place::Trash { name } => {
                let Some(trash_dir) = trash.open(&key_dir)? else {
                    bail!("trash vanished - left alone");
                };
                self.recorded(&event, None, || {
                    // a record or a record's temp file: no key material
                    remove_synced(&trash_dir, name)?;
                    Ok(match finding.kind {
                        FindingKind::StaleTrashRecord => "removed stale trash record".to_string(),
                        _ => "removed temp file".to_string(),
                    })
                })
            }
            Place::TrashUnrecorded { entry } => {
                let Some(trash_dir) = trash.open(&key_dir)? else {
                    bail!("trash vanished - left alone");
                };
                let fingerprint = trash
                    .read_key(&trash_dir, entry)
                    .ok()
                    .map(|(_, fingerprint)| fingerprint);
                event.fingerprints.extend(fingerprint);
                let id = trash::entry_id(entry);
                let record = self.repair_record(id, fingerprint, TrashReason::RepairUnrecorded);
                self.recorded(&event, None, || {
                    let data = serde_json::to_vec_pretty(&record)?;
                    let options = self.ownership().options_for(TRASH_CLASS);
                    if !trash_dir.create_atomic(&trash::record_name(entry), &data, options)? {
                        bail!("a record appeared meanwhile - left alone");
                    }
                    Ok("wrote its missing trash record".to_string())
                })
            }
            Place::Base { .. }
            | Place::KeyDir { .. }
            | Place::KeyDirItself
            | Place::TrashDirItself
            | Place::AuditDirItself
            | Place::Audit { .. } => {
                bail!("internal error - not a trash repair")
            }
        }
    }

    /// Moves an orphan key file (`name`) into the trash: into the entry
    /// whose record waits for it (`into`), or a new one. Its lock file
    /// goes too.
    fn repair_orphan(
        &self,
        keys: &EncryptionKeys,
        key_dir: &DirHandle,
        finding: &Finding,
        (name, into): (&str, Option<&str>),
        mut event: Event,
    ) -> Result<String, Error> {
        let trash = keys.trash();
        let id = finding.id.as_deref().unwrap_or_default();
        let key_lock = keys.lock_key_file(key_dir, id)?;
        let fingerprint = key_file_fingerprint(key_dir, name);
        event.fingerprints.extend(fingerprint);
        let record = self.repair_record(id, fingerprint, TrashReason::RepairOrphan);
        self.recorded(&event, None, || {
            let trash_dir = trash.ensure(key_dir)?;
            let action = match into {
                Some(entry) => {
                    let record = trash.read_record(&trash_dir, entry)?;
                    if fingerprint.is_none() || record.fingerprint != fingerprint {
                        bail!(
                            "it no longer holds the key trash entry '{entry}' records - left alone"
                        );
                    }
                    trash.fill(key_dir, name, &trash_dir, entry)?;
                    format!("moved into trash entry '{entry}', which was waiting for it")
                }
                None => {
                    let entry = move_into_new_entry(&trash, key_dir, &trash_dir, name, &record)?;
                    format!("moved orphan key file into the trash as '{entry}'")
                }
            };
            // the key left the key directory, so does its lock file
            key_lock.guard.remove_file()?;
            Ok(action)
        })
    }

    /// The record of a file repair moves into the trash (or finds there
    /// without one), as of now and by this operation's caller.
    fn repair_record(
        &self,
        id: &str,
        fingerprint: Option<Fingerprint>,
        reason: TrashReason,
    ) -> TrashRecord {
        TrashRecord {
            id: id.to_string(),
            fingerprint,
            entry: None,
            reason,
            time: proxmox_time::epoch_i64(),
            actor: Some(self.caller().actor.to_string()),
            purge_after: None,
        }
    }

    /// Rewrites every relocated `path` of the config to the canonical one.
    /// One write; in the audit log, one intent per key before it and one
    /// outcome per key after it.
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
                changed.push(entry);
            }
        }
        let events: Vec<Event> = changed
            .iter()
            .map(|entry| {
                crate::encryption_keys::key_event(self, Op::RepairPath, entry)
                    .id(files::ENCRYPTION_KEYS_CFG.name)
            })
            .collect();
        // one hold of pending.lck for all of them (see `AuditLog::intents`)
        let pending = self.audit_intents(None, &events)?;
        let result = keys.save_config(&config, config_lock);
        let failed = result.as_ref().err().map(|err| format_err!("{err}"));
        for intent in pending {
            let outcome = match &failed {
                None => Ok(()),
                Some(err) => Err(format_err!("{err}")),
            };
            intent.done(outcome)?;
        }
        result?;
        let changed: Vec<String> = changed.into_iter().map(|entry| entry.id).collect();
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
        assert!(is_temp_name("k.tmp_000000"));
        assert!(!is_temp_name("k.tmp_00000!"));
        // what a temp file is for: after the last `.tmp_`
        for (name, target) in [
            ("k1.enc.tmp_AbC123", Some("k1.enc")),
            (
                "a.enc.tmp_b12345.enc.tmp_XyZ789",
                Some("a.enc.tmp_b12345.enc"),
            ),
            ("a.enc.tmp_b12345.enc", None),
            (".tmp_abcdef", None),
        ] {
            assert_eq!(temp_file_target(name), target, "{name}");
        }
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
