//! The trash of the key store: key files that were deleted, repaired away or
//! left by a failed store, kept until an explicit purge.
//!
//! Layout (DESIGN.md section 7): `encryption-keys/.trash/`, root:root 0700,
//! created through the key directory's handle. Each trashed key is one
//! entry of two files sharing a name `<id>@<epoch>-<random>`:
//! - `<name>.enc`: the key file, renamed here from the key directory: never
//!   copied, never rewritten, so its bytes (and owner and mode) are exactly
//!   what they were;
//! - `<name>.json`: its record ([`TrashRecord`]): id, fingerprint, the config
//!   entry it had, why, when, who, and from when on it may be purged.
//!
//! A key id cannot contain `@`, so an entry name never equals an id; the
//! time and the random part keep two deletes of one id apart, and names are
//! taken with `O_EXCL` and `RENAME_NOREPLACE`, so nothing is overwritten.
//!
//! Rules a maintainer must keep:
//! - nothing holding key material is unlinked anywhere but in
//!   `destroy_key_file`, which only the purges call (`trash purge`,
//!   `remove --purge`);
//! - the trash changes only under the config lock (`.encryption-keys.lck`),
//!   so `verify`, which holds it, never sees an operation half-way;
//! - the trash and everything in it are reached through the key directory's
//!   handle and the trash's own, each opened once per operation and checked
//!   (root's, writable by root alone).
//!
//! Crash order: a SIGKILL at any point leaves the key in the store or in
//! the trash, and `verify` accounts for every leftover
//! (`tests/processes/crash.rs` kills a process at each point):
//! - delete: the record is written, then the config entry removed, then the
//!   key file renamed into the trash. A crash after the record leaves a
//!   record whose key is still in the store (verify: stale record, repair
//!   removes it); after the config write, an orphan key file whose record
//!   waits in the trash (repair moves the file there: the delete completes);
//! - restore: the key file is renamed back into the key directory, then the
//!   config entry written, then the record removed. A crash after the rename
//!   leaves an orphan key file whose record waits in the trash (repair moves
//!   it back: the restore is undone, run it again); after the config write,
//!   a stale record (repair removes it);
//! - purge: the key file is unlinked, then its record. A crash in between
//!   leaves the record of a purged key (repair removes it);
//! - repair (an orphan or a temp file of the key directory): record, then
//!   rename, as delete;
//! - a failed store: the new key file is renamed into the trash first, then
//!   its record written (the failure is often a full disk, and a rename
//!   needs no space). A trashed key file without record is reported by
//!   `verify`, and repair writes the record.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Error, bail, format_err};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use proxmox_lang::error::ErrorLayer;

use pbs_api_types::{CryptKey, Fingerprint};
use pbs_key_config::{KeyConfig, MAX_KEY_FILE_SIZE};

use crate::audit::Op;
use crate::dir_handle::{DirHandle, EntryKind, EntryStat, random_suffix, read_all};
use crate::encryption_keys::{EncryptionKeys, KeySource, check_key_id, key_fingerprint};
use crate::files::{KEY_FILE_CLASS, MAX_TRASH_RECORD_SIZE, TRASH_CLASS, TRASH_DIR_NAME};
use crate::{KeySections, KeystoreError, failpoint};

/// How long a deleted key stays in the trash before `trash purge --expired`
/// may destroy it, unless `--keep-days` says otherwise.
pub const DEFAULT_KEEP_DAYS: u32 = 30;

/// The most `--keep-days` accepts (100 years).
pub const MAX_KEEP_DAYS: u32 = 36_500;

const DAY: i64 = 24 * 60 * 60;

/// Why a key file went to the trash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrashReason {
    /// `delete`.
    Delete,
    /// `verify --repair`: a key file no config entry and no sync job names.
    RepairOrphan,
    /// `verify --repair`: a temp file of an interrupted write of a key file.
    RepairTemp,
    /// `verify --repair`: a file in the trash that had no record.
    RepairUnrecorded,
    /// A store (create, import) whose config write failed.
    StoreFailed,
    /// The new key of a rotation that was aborted before any job used it
    /// (`rotate --abort`, [`crate::rotation`]).
    RotateAbort,
}

impl TrashReason {
    /// The reason as the record and `trash list` name it.
    pub fn as_str(self) -> &'static str {
        match self {
            TrashReason::Delete => "delete",
            TrashReason::RepairOrphan => "repair-orphan",
            TrashReason::RepairTemp => "repair-temp",
            TrashReason::RepairUnrecorded => "repair-unrecorded",
            TrashReason::StoreFailed => "store-failed",
            TrashReason::RotateAbort => "rotate-abort",
        }
    }
}

/// What the trash knows of a trashed key file: `<name>.json` beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrashRecord {
    /// The key id it had (for a repaired file: the name it had, without
    /// `.enc`, which need not be a valid id).
    pub id: String,
    /// The key's fingerprint; `None` for a file that is not a readable key
    /// file (a torn temp file, say).
    pub fingerprint: Option<Fingerprint>,
    /// The config entry the key had, if it had one (delete).
    pub entry: Option<CryptKey>,
    /// Why it is in the trash.
    pub reason: TrashReason,
    /// When it went there (epoch).
    pub time: i64,
    /// Who put it there: the actor the audit log records for the
    /// operation (`None` in records written before it existed).
    pub actor: Option<String>,
    /// From when on `trash purge --expired` may destroy it (epoch); `None`:
    /// never on its own (repair, a failed store).
    pub purge_after: Option<i64>,
}

impl TrashRecord {
    /// Whether `trash purge --expired` at `now` destroys it.
    pub fn is_expired(&self, now: i64) -> bool {
        self.purge_after.is_some_and(|after| after <= now)
    }
}

/// One key in the trash, as `trash list` shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrashEntry {
    /// Its name in the trash: `trash restore` and `trash purge` take it.
    pub name: String,
    /// Its record.
    #[serde(flatten)]
    pub record: TrashRecord,
    /// When a verified copy of its key was last recorded (the time of the
    /// last `export-verify` naming its fingerprint, see
    /// [`crate::verified_copy`]); `None` if never: a purge by name then
    /// needs `without-verified-copy`, and the daily purge keeps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_copy: Option<i64>,
}

/// The trash as `trash list` sees it.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TrashListing {
    /// Complete entries (key file and readable record), oldest first.
    pub entries: Vec<TrashEntry>,
    /// Names of entries that lack their key file or their record, or whose
    /// record is unreadable: left by an interrupted operation or changed by
    /// hand; `verify` explains each and `verify --repair` sorts them out.
    pub incomplete: Vec<String>,
}

/// A trash entry a purge destroyed, or kept.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PurgeEntry {
    /// Its name in the trash.
    pub name: String,
    /// Its id.
    pub id: String,
    /// Its fingerprint, if known.
    pub fingerprint: Option<Fingerprint>,
}

/// What a purge did.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PurgeReport {
    /// The entries destroyed.
    pub purged: Vec<PurgeEntry>,
    /// Entries whose keep time is over but that a purge of what expired
    /// kept: no verified copy of their key is recorded
    /// ([`crate::verified_copy`]). Only a purge by name destroys them,
    /// told to destroy them anyway.
    pub kept_without_copy: Vec<PurgeEntry>,
}

/// The trash of one key store; get it with [`EncryptionKeys::trash`].
#[derive(Clone, Copy)]
pub struct Trash<'a> {
    keys: EncryptionKeys<'a>,
}

impl<'a> EncryptionKeys<'a> {
    /// The trash of this key store.
    pub fn trash(&self) -> Trash<'a> {
        Trash { keys: *self }
    }
}

/// The file name of an entry's record.
pub(crate) fn record_name(entry: &str) -> String {
    format!("{entry}.json")
}

/// The file name of an entry's key file.
pub(crate) fn key_name(entry: &str) -> String {
    format!("{entry}.enc")
}

/// The id part of an entry name, or of a selector ([`check_selector`]):
/// the id the key had (`unnamed` for a key that had no valid id).
pub fn entry_id(entry: &str) -> &str {
    entry.split_once('@').map_or(entry, |(id, _)| id)
}

/// When a key deleted at `now` may be purged.
pub fn purge_after(now: i64, keep_days: u32) -> i64 {
    now.saturating_add(i64::from(keep_days) * DAY)
}

/// A new entry name for `id` at `time`: `<id>@<time>-<six letters or
/// digits>`. An `id` that is not a valid key id is replaced by `unnamed`
/// (the record keeps it).
fn new_entry_name(id: &str, time: i64) -> Result<String, Error> {
    let suffix = random_suffix()?;
    let id = match check_key_id(id) {
        Ok(()) => id,
        Err(_) => "unnamed",
    };
    Ok(format!("{id}@{time}-{suffix}"))
}

/// Checks what `trash restore` and `trash purge` take: a key id, or an
/// entry name, `<id>@<epoch>-<six letters or digits>` as [`Trash::list`]
/// shows it.
pub fn check_selector(selector: &str) -> Result<(), Error> {
    let Some((id, rest)) = selector.split_once('@') else {
        return check_key_id(selector);
    };
    let stamped = rest.split_once('-').is_some_and(|(time, random)| {
        !time.is_empty()
            && time.bytes().all(|b| b.is_ascii_digit())
            && random.len() == 6
            && random.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if check_key_id(id).is_err() || !stamped {
        bail!(
            "invalid trash entry name {selector:?} - expected a key id, or a name as 'trash list' \
             shows it (<id>@<epoch>-<six letters or digits>)"
        );
    }
    Ok(())
}

/// How many fresh names a new entry tries before giving up.
const NAME_ATTEMPTS: usize = 16;

/// The files of one trash entry (regular files only).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EntryFiles {
    /// `<name>.json`.
    pub record: bool,
    /// `<name>.enc`.
    pub key: bool,
}

/// What a listing of the trash found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Entries by name.
    pub entries: BTreeMap<String, EntryFiles>,
    /// Every other name, with what `stat` said of it.
    pub others: Vec<(String, EntryStat)>,
}

/// Lists the trash: regular files named like entries, and everything else.
pub(crate) fn scan(trash_dir: &DirHandle) -> Result<Scan, Error> {
    let mut scan = Scan::default();
    for name in trash_dir.names()? {
        let Some(stat) = trash_dir.stat(&name)? else {
            continue; // gone since the listing
        };
        let entry = name
            .strip_suffix(".json")
            .map(|entry| (entry, true))
            .or_else(|| name.strip_suffix(".enc").map(|entry| (entry, false)))
            .filter(|(entry, _)| entry.contains('@'));
        match entry {
            Some((entry, is_record)) if stat.kind == EntryKind::File => {
                let files = scan.entries.entry(entry.to_string()).or_default();
                match is_record {
                    true => files.record = true,
                    false => files.key = true,
                }
            }
            _ => scan.others.push((name, stat)),
        }
    }
    Ok(scan)
}

impl<'a> Trash<'a> {
    /// The trash's path (for messages).
    pub fn path(&self) -> PathBuf {
        self.keys.key_dir().join(TRASH_DIR_NAME)
    }

    /// Opens the trash in `key_dir` without following a symbolic link,
    /// checked to be root's and writable by root alone; `None` if missing.
    pub fn open(&self, key_dir: &DirHandle) -> Result<Option<DirHandle>, Error> {
        key_dir.open_dir(TRASH_DIR_NAME, self.keys.dir().ownership().key_dir_policy())
    }

    /// [`Trash::open`], creating the trash (root:root 0700) if missing.
    pub(crate) fn ensure(&self, key_dir: &DirHandle) -> Result<DirHandle, Error> {
        let ownership = self.keys.dir().ownership();
        key_dir.ensure_dir(
            TRASH_DIR_NAME,
            ownership.trash_dir_options(),
            ownership.key_dir_policy(),
        )
    }

    /// Opens the key directory and the trash for reading; `None` if either
    /// is missing.
    fn open_for_reading(&self) -> Result<Option<(DirHandle, DirHandle)>, Error> {
        let Some(base) = self.keys.dir().open_base()? else {
            return Ok(None);
        };
        let Some(key_dir) = self.keys.open_key_dir(&base)? else {
            return Ok(None);
        };
        Ok(self.open(&key_dir)?.map(|trash_dir| (key_dir, trash_dir)))
    }

    /// Reads and parses the record of `entry`.
    pub(crate) fn read_record(
        &self,
        trash_dir: &DirHandle,
        entry: &str,
    ) -> Result<TrashRecord, Error> {
        let name = record_name(entry);
        let Some(mut opened) = trash_dir.open_regular(&name, MAX_TRASH_RECORD_SIZE)? else {
            bail!("record {:?} is missing", trash_dir.entry_path(&name));
        };
        self.keys
            .dir()
            .ownership()
            .check_trusted(TRASH_CLASS, &opened.stat, &opened.path)?;
        let data = read_all(&mut opened, MAX_TRASH_RECORD_SIZE)?;
        serde_json::from_slice(&data).map_err(|err| {
            format_err!(
                "unable to parse record {:?} - line {}, column {}",
                opened.path,
                err.line(),
                err.column()
            )
        })
    }

    /// Reads the key file of `entry` and its fingerprint (computed for an
    /// unprotected key). The file must be a regular file owned by root or
    /// the policy's file owner; its mode is not judged (a repaired file
    /// keeps the mode it was found with, and restore sets the key file
    /// mode).
    pub(crate) fn read_key(
        &self,
        trash_dir: &DirHandle,
        entry: &str,
    ) -> Result<(KeyConfig, Fingerprint), Error> {
        let name = key_name(entry);
        let Some(mut opened) = trash_dir.open_regular(&name, MAX_KEY_FILE_SIZE)? else {
            bail!("key file {:?} is missing", trash_dir.entry_path(&name));
        };
        let (owner, _) = self.keys.dir().ownership().owner_of(KEY_FILE_CLASS);
        if opened.stat.uid != 0 && opened.stat.uid != owner.as_raw() {
            bail!(
                "key file {:?} is owned by uid {}, not root - refusing to trust it",
                opened.path,
                opened.stat.uid
            );
        }
        let mut data = read_all(&mut opened, MAX_KEY_FILE_SIZE)?;
        let key_config =
            KeyConfig::from_json(&data).layer_err(|| format!("invalid key file {:?}", opened.path));
        data.zeroize();
        let key_config = key_config?;
        let fingerprint = key_fingerprint(&key_config)
            .layer_err(|| format!("unusable key file {:?}", opened.path))?;
        Ok((key_config, fingerprint))
    }

    /// Writes `record` as the record of a new entry; returns the entry's
    /// name. Nothing of an existing entry is touched.
    pub(crate) fn reserve(
        &self,
        trash_dir: &DirHandle,
        record: &TrashRecord,
    ) -> Result<String, Error> {
        let data = serde_json::to_vec_pretty(record)?;
        let options = self.keys.dir().ownership().options_for(TRASH_CLASS);
        for _ in 0..NAME_ATTEMPTS {
            let entry = new_entry_name(&record.id, record.time)?;
            if trash_dir.stat(&key_name(&entry))?.is_some() {
                continue;
            }
            if trash_dir.create_atomic(&record_name(&entry), &data, options)? {
                return Ok(entry);
            }
        }
        bail!(
            "unable to find a free name in {:?} for '{}'",
            trash_dir.path(),
            record.id
        )
    }

    /// Moves `name` of the key directory into the trash as the key file of
    /// `entry` (never over an existing file), durably.
    pub(crate) fn fill(
        &self,
        key_dir: &DirHandle,
        name: &str,
        trash_dir: &DirHandle,
        entry: &str,
    ) -> Result<(), Error> {
        key_dir.rename_noreplace(name, trash_dir, &key_name(entry))?;
        trash_dir.sync()?;
        key_dir.sync()
    }

    /// Removes the record of an entry that never got its key file.
    pub(crate) fn abandon(&self, trash_dir: &DirHandle, entry: &str) -> Result<(), Error> {
        if trash_dir.unlink(&record_name(entry))? {
            trash_dir.sync()?;
        }
        Ok(())
    }

    /// Moves `name` of the key directory into the trash, file first, then
    /// the record (for a failed store: a rename needs no space on a full
    /// disk). Returns the entry name, and why the record could not be
    /// written if it could not: the file is in the trash then, without one
    /// (`verify --repair` writes it).
    ///
    /// # Errors
    ///
    /// The file could not be moved: it is where it was.
    pub(crate) fn keep(
        &self,
        key_dir: &DirHandle,
        name: &str,
        record: &TrashRecord,
    ) -> Result<(String, Option<Error>), Error> {
        let trash_dir = self.ensure(key_dir)?;
        let mut chosen = None;
        for _ in 0..NAME_ATTEMPTS {
            let entry = new_entry_name(&record.id, record.time)?;
            if trash_dir.stat(&key_name(&entry))?.is_none()
                && trash_dir.stat(&record_name(&entry))?.is_none()
            {
                chosen = Some(entry);
                break;
            }
        }
        let Some(entry) = chosen else {
            bail!("unable to find a free name in {:?}", trash_dir.path());
        };
        self.fill(key_dir, name, &trash_dir, &entry)?;
        let recorded = serde_json::to_vec_pretty(record)
            .map_err(Error::from)
            .and_then(|data| {
                let options = self.keys.dir().ownership().options_for(TRASH_CLASS);
                match trash_dir.create_atomic(&record_name(&entry), &data, options)? {
                    true => Ok(()),
                    false => bail!("a record of that name exists already"),
                }
            });
        Ok((entry, recorded.err()))
    }

    /// The complete entries of the trash, oldest first, each with when a
    /// verified copy of its key was last recorded, and the names of
    /// incomplete ones. Takes no lock: every file in the trash is created
    /// or renamed whole, and an entry a racing operation has half-way is
    /// listed as incomplete.
    pub fn list(&self) -> Result<TrashListing, Error> {
        (|| {
            let mut listing = self.entries()?;
            let known: Vec<(usize, Fingerprint)> = listing
                .entries
                .iter()
                .enumerate()
                .filter_map(|(at, entry)| entry.record.fingerprint.map(|fp| (at, fp)))
                .collect();
            let fingerprints: Vec<Fingerprint> = known.iter().map(|(_, fp)| *fp).collect();
            let copies = self.keys.dir().verified_copies(&fingerprints)?;
            for ((at, _), copy) in known.into_iter().zip(copies) {
                listing.entries[at].verified_copy = copy.map(|record| record.time);
            }
            Ok(listing)
        })()
        .layer_err(|| format!("unable to list the trash {:?}", self.path()))
    }

    /// [`Trash::list`] without reading the audit log (`verified_copy`
    /// left `None`).
    fn entries(&self) -> Result<TrashListing, Error> {
        match self.open_for_reading()? {
            Some((_key_dir, trash_dir)) => self.entries_in(&trash_dir),
            None => Ok(TrashListing::default()),
        }
    }

    /// [`Trash::entries`] of the trash directory `trash_dir`.
    fn entries_in(&self, trash_dir: &DirHandle) -> Result<TrashListing, Error> {
        let scan = scan(trash_dir)?;
        let mut listing = TrashListing::default();
        for (name, files) in &scan.entries {
            let record = match files.key && files.record {
                true => self.read_record(trash_dir, name).ok(),
                false => None,
            };
            match record {
                Some(record) => listing.entries.push(TrashEntry {
                    name: name.clone(),
                    record,
                    verified_copy: None,
                }),
                None => listing.incomplete.push(name.clone()),
            }
        }
        listing
            .entries
            .sort_by(|a, b| (a.record.time, &a.name).cmp(&(b.record.time, &b.name)));
        Ok(listing)
    }

    /// Whether trash entry `entry` holds its key file. Takes no lock.
    pub fn has_key_file(&self, entry: &str) -> Result<bool, Error> {
        let Some((_key_dir, trash_dir)) = self.open_for_reading()? else {
            return Ok(false);
        };
        Ok(trash_dir
            .stat(&key_name(entry))?
            .is_some_and(|stat| stat.kind == EntryKind::File))
    }

    /// The names of complete entries holding the key with `fingerprint`.
    pub fn copies_of(&self, fingerprint: &Fingerprint) -> Result<Vec<String>, Error> {
        let listing = self
            .entries()
            .layer_err(|| format!("unable to list the trash {:?}", self.path()))?;
        Ok(holding(listing, fingerprint))
    }

    /// The names of the entries holding the key with `fingerprint`,
    /// complete or not: by their record, or by their key file where the
    /// record does not say (missing, unreadable, or without fingerprint).
    /// An entry with its record and without its key file is a delete or a
    /// trash restore half-way, whose key file is in the key directory
    /// (finding 71). Takes no lock.
    pub(crate) fn entries_holding(&self, fingerprint: &Fingerprint) -> Result<Vec<String>, Error> {
        (|| {
            let Some((_key_dir, trash_dir)) = self.open_for_reading()? else {
                return Ok(Vec::new());
            };
            let scan = scan(&trash_dir)?;
            let mut found = Vec::new();
            for (name, files) in &scan.entries {
                let recorded = match files.record {
                    true => self
                        .read_record(&trash_dir, name)
                        .ok()
                        .and_then(|record| record.fingerprint),
                    false => None,
                };
                let holds = match recorded {
                    Some(recorded) => recorded == *fingerprint,
                    None => {
                        files.key
                            && self
                                .read_key(&trash_dir, name)
                                .is_ok_and(|(_, held)| held == *fingerprint)
                    }
                };
                if holds {
                    found.push(name.clone());
                }
            }
            Ok(found)
        })()
        .layer_err(|| format!("unable to list the trash {:?}", self.path()))
    }

    /// The key files of the complete entries holding the key with
    /// `fingerprint` ([`Trash::copies_of`]), those that read and hold it.
    pub(crate) fn key_files_of(&self, fingerprint: &Fingerprint) -> Result<Vec<KeyConfig>, Error> {
        let Some((_key_dir, trash_dir)) = self.open_for_reading()? else {
            return Ok(Vec::new());
        };
        let listing = self
            .entries_in(&trash_dir)
            .layer_err(|| format!("unable to list the trash {:?}", self.path()))?;
        Ok(holding(listing, fingerprint)
            .iter()
            .filter_map(|entry| self.read_key(&trash_dir, entry).ok())
            .filter(|(_, held)| held == fingerprint)
            .map(|(key_config, _)| key_config)
            .collect())
    }

    /// The entries `selector` names: the entry of that name, or every
    /// entry of that key id.
    fn select(scan: &Scan, selector: &str) -> Result<Vec<String>, Error> {
        let found: Vec<String> = if selector.contains('@') {
            scan.entries
                .keys()
                .filter(|name| name.as_str() == selector)
                .cloned()
                .collect()
        } else {
            scan.entries
                .keys()
                .filter(|name| entry_id(name) == selector)
                .cloned()
                .collect()
        };
        if found.is_empty() {
            return Err(KeystoreError::NotInTrash {
                name: selector.to_string(),
            }
            .into());
        }
        Ok(found)
    }

    /// The one entry `selector` names.
    fn select_one(scan: &Scan, selector: &str) -> Result<String, Error> {
        let mut found = Self::select(scan, selector)?;
        if found.len() > 1 {
            bail!(
                "'{selector}' is in the trash {} times ({}) - name one by its trash name",
                found.len(),
                found.join(", ")
            );
        }
        Ok(found.remove(0))
    }

    /// Puts a trashed key back into the store, as `as_id` or as the id it
    /// had, through the store's own path (key file first, then the config
    /// entry; see the module docs for the crash order). Its bytes are never
    /// rewritten: the file is renamed back, then gets the key file mode and
    /// owner. A key deleted while archived comes back archived.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::NotInTrash`]; [`KeystoreError::RestoreConflict`] if
    /// the id or the fingerprint is taken in the store (naming both); an
    /// incomplete entry, or a key file that does not match its record.
    ///
    /// # Locking
    ///
    /// Takes the config lock, then the key lock of the id restored to.
    pub fn restore(&self, selector: &str, as_id: Option<&str>) -> Result<CryptKey, Error> {
        self.restore_layered(selector, as_id)
            .layer_err(|| format!("failed to restore '{selector}' from the trash"))
    }

    /// The steps of [`Trash::restore`], which adds the layer naming the
    /// selector to any error they return.
    fn restore_layered(&self, selector: &str, as_id: Option<&str>) -> Result<CryptKey, Error> {
        if let Some(id) = as_id {
            check_key_id(id)?;
        }
        let keys = self.keys;
        let not_found = || KeystoreError::NotInTrash {
            name: selector.to_string(),
        };
        let Some(base) = keys.dir().open_base()? else {
            return Err(not_found().into());
        };
        let config_lock = keys.lock_config()?;
        let Some(key_dir) = keys.open_key_dir(&base)? else {
            return Err(not_found().into());
        };
        let Some(trash_dir) = self.open(&key_dir)? else {
            return Err(not_found().into());
        };
        let scan = scan(&trash_dir)?;
        let entry_name = Self::select_one(&scan, selector)?;
        let (record, key_config, fingerprint) =
            self.read_complete(&trash_dir, &entry_name, scan.entries[&entry_name])?;
        let id = match as_id {
            Some(id) => id,
            None => {
                check_key_id(&record.id)
                    .layer_err(|| format!("'{entry_name}' needs a new id (--as NEW_ID)"))?;
                record.id.as_str()
            }
        };

        let sections = keys.sections_locked(&config_lock, None)?;
        check_restore_free(&sections, id, fingerprint)?;

        let archived_at = record.entry.as_ref().and_then(|entry| entry.archived_at);
        let entry = keys.entry_for(id, &key_config, fingerprint, archived_at);
        let source = KeySource::Trash {
            trash: *self,
            trash_dir: &trash_dir,
            entry: &entry_name,
        };
        let event = keys
            .dir()
            .audit_event(Op::TrashRestore)
            .id(id)
            .id(entry_name.as_str())
            .fingerprint(fingerprint);
        // the record last: a crash before this leaves a stale record,
        // which verify reports and repair removes
        let remove_record = || {
            self.abandon(&trash_dir, &entry_name).layer_err(|| {
                format!(
                    "restored as '{id}', but the record of '{entry_name}' is left - \
                     'proxmox-backup-manager encryption-key verify --repair' removes it"
                )
            })
        };
        let entry = keys.store_locked(
            &base,
            sections,
            &config_lock,
            entry,
            source,
            &event,
            remove_record,
        )?;
        drop(config_lock);
        Ok(entry)
    }

    /// The record, key and fingerprint of trash entry `entry_name` (whose
    /// files are `files`): refused unless it has both files and its key is
    /// the one its record names.
    fn read_complete(
        &self,
        trash_dir: &DirHandle,
        entry_name: &str,
        files: EntryFiles,
    ) -> Result<(TrashRecord, KeyConfig, Fingerprint), Error> {
        if !files.key {
            bail!(
                "trash entry '{entry_name}' has no key file (left by an interrupted operation) - \
                 run 'proxmox-backup-manager encryption-key verify'"
            );
        }
        if !files.record {
            bail!(
                "trash entry '{entry_name}' has no record - \
                 'proxmox-backup-manager encryption-key verify --repair' writes one"
            );
        }
        let record = self.read_record(trash_dir, entry_name)?;
        let (key_config, fingerprint) = self.read_key(trash_dir, entry_name)?;
        if let Some(recorded) = record.fingerprint
            && recorded != fingerprint
        {
            bail!(
                "trash entry '{entry_name}' holds the key with fingerprint {fingerprint}, \
                 but its record says {recorded} - left alone, inspect it by hand"
            );
        }
        Ok((record, key_config, fingerprint))
    }

    /// Destroys trashed keys: the entry `selector` names (an entry name, or
    /// a key id with one entry), or with `expired_at` every entry whose
    /// purge date has come by then (of that id only, with a `selector`).
    /// The only path, besides `remove --purge`, that destroys key material.
    ///
    /// A key of which no verified copy is recorded
    /// ([`crate::verified_copy`]) is destroyed only by name and with
    /// `without_verified_copy`; a purge of what expired keeps it (and says
    /// so in the report), by name it is refused.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::NotInTrash`]; [`KeystoreError::NoVerifiedCopy`] for
    /// a purge by name (nothing destroyed).
    ///
    /// # Locking
    ///
    /// Takes the config lock.
    pub fn purge(
        &self,
        selector: Option<&str>,
        expired_at: Option<i64>,
        without_verified_copy: bool,
    ) -> Result<PurgeReport, Error> {
        (|| {
            if selector.is_none() && expired_at.is_none() {
                bail!(
                    "name a trashed key (its id or trash name), or purge what expired (--expired)"
                );
            }
            if without_verified_copy && expired_at.is_some() {
                bail!(
                    "a purge of what expired never destroys a key without a verified copy - \
                     name the entry to destroy it anyway"
                );
            }
            let keys = self.keys;
            let not_found = || -> Result<PurgeReport, Error> {
                match selector {
                    Some(name) => Err(KeystoreError::NotInTrash {
                        name: name.to_string(),
                    }
                    .into()),
                    None => Ok(PurgeReport::default()),
                }
            };
            let Some(base) = keys.dir().open_base()? else {
                return not_found();
            };
            let _config_lock = keys.lock_config()?;
            let Some(key_dir) = keys.open_key_dir(&base)? else {
                return not_found();
            };
            let Some(trash_dir) = self.open(&key_dir)? else {
                return not_found();
            };
            let scan = scan(&trash_dir)?;
            let chosen: Vec<String> = match (selector, expired_at) {
                (Some(selector), None) => vec![Self::select_one(&scan, selector)?],
                (Some(selector), Some(_)) => Self::select(&scan, selector)?,
                (None, _) => scan.entries.keys().cloned().collect(),
            };
            failpoint::hit("purge:locked");
            let mut report = PurgeReport::default();
            let mut doomed: Vec<Doomed> = chosen
                .into_iter()
                .filter_map(|entry| self.doomed(&trash_dir, &scan, entry, expired_at))
                .collect();
            if !without_verified_copy {
                let by_name = expired_at.is_none();
                doomed = keep_without_copy(keys.dir(), doomed, by_name, &mut report)?;
            }
            for doomed in doomed {
                let done = self.destroy(&key_dir, &trash_dir, doomed)?;
                report.purged.push(done);
            }
            Ok(report)
        })()
        .layer_err(|| "failed to purge the trash")
    }

    /// Trash entry `entry` as a purge would destroy it; `None` if a purge
    /// of what expired by `expired_at` must leave it (its record does not
    /// read, it has no key file, or its date has not come).
    fn doomed(
        &self,
        trash_dir: &DirHandle,
        scan: &Scan,
        entry: String,
        expired_at: Option<i64>,
    ) -> Option<Doomed> {
        let files = scan.entries[&entry];
        let record = match files.record {
            true => Some(self.read_record(trash_dir, &entry)),
            false => None,
        };
        if let Some(now) = expired_at {
            // only what its record says may go: never an entry without a
            // readable record
            match &record {
                Some(Ok(record)) if files.key && record.is_expired(now) => {}
                _ => return None,
            }
        }
        let record = record.and_then(Result::ok);
        let purge = PurgeEntry {
            id: record
                .as_ref()
                .map_or_else(|| entry_id(&entry).to_string(), |r| r.id.clone()),
            fingerprint: record.and_then(|r| r.fingerprint),
            name: entry,
        };
        // what would be destroyed is the key its file holds
        let fingerprint = match files.key {
            true => self.read_key(trash_dir, &purge.name).ok().map(|(_, fp)| fp),
            false => None,
        };
        Some(Doomed {
            entry: purge,
            key_file: files.key,
            record_file: files.record,
            fingerprint,
        })
    }

    /// Destroys trash entry `doomed`: its key file, then its record, as
    /// its audit intent says.
    fn destroy(
        &self,
        key_dir: &DirHandle,
        trash_dir: &DirHandle,
        doomed: Doomed,
    ) -> Result<PurgeEntry, Error> {
        let dir = self.keys.dir();
        let done = doomed.entry;
        let mut event = dir
            .audit_event(Op::Purge)
            .id(done.id.as_str())
            .id(done.name.as_str());
        if let Some(fingerprint) = done.fingerprint {
            event = event.fingerprint(fingerprint);
        }
        let pending = dir.audit_intent(Some(key_dir), &event)?;
        let result = (|| {
            if doomed.key_file {
                destroy_key_file(trash_dir, &key_name(&done.name))?;
                failpoint::hit("purge:key-removed");
            }
            if doomed.record_file {
                trash_dir.unlink(&record_name(&done.name))?;
                trash_dir.sync()?;
            }
            Ok(())
        })();
        pending.done(result)?;
        Ok(done)
    }
}

/// A trash entry a purge chose.
struct Doomed {
    entry: PurgeEntry,
    /// Whether it holds its key file (else only its record goes).
    key_file: bool,
    /// Whether it holds its record.
    record_file: bool,
    /// The fingerprint of the key its file holds; `None` without a key file
    /// or if the file does not read.
    fingerprint: Option<Fingerprint>,
}

/// Of the entries a purge chose, those it may destroy: whose key has a
/// verified copy ([`crate::verified_copy`]), or that hold no key file. The
/// others refuse the purge (`by_name`) or go into the report's
/// `kept_without_copy`.
fn keep_without_copy(
    dir: &crate::ConfigDir,
    doomed: Vec<Doomed>,
    by_name: bool,
    report: &mut PurgeReport,
) -> Result<Vec<Doomed>, Error> {
    let held: Vec<Fingerprint> = doomed.iter().filter_map(|d| d.fingerprint).collect();
    let copies = dir.verified_copies(&held)?;
    let copied: Vec<&Fingerprint> = held
        .iter()
        .zip(copies)
        .filter_map(|(fingerprint, copy)| copy.map(|_| fingerprint))
        .collect();
    let mut left = Vec::new();
    for doomed in doomed {
        let uncopied = doomed.key_file
            && !doomed
                .fingerprint
                .is_some_and(|fingerprint| copied.contains(&&fingerprint));
        match (uncopied, by_name) {
            (false, _) => left.push(doomed),
            (true, true) => {
                return Err(KeystoreError::NoVerifiedCopy {
                    id: doomed.entry.id,
                    fingerprint: doomed.fingerprint,
                }
                .into());
            }
            (true, false) => report.kept_without_copy.push(doomed.entry),
        }
    }
    Ok(left)
}

/// Destroys a file holding key material: unlinks it and syncs its
/// directory. The only place that unlinks key material; only the purges
/// call it (`trash purge` and `remove --purge`).
pub(crate) fn destroy_key_file(dir: &DirHandle, name: &str) -> Result<(), Error> {
    if dir.unlink(name)? {
        dir.sync()?;
    }
    Ok(())
}

/// Refuses a restore as `id` of the key with `fingerprint` if the store
/// has that id or that key ([`KeystoreError::RestoreConflict`], naming
/// both).
fn check_restore_free(
    sections: &KeySections,
    id: &str,
    fingerprint: Fingerprint,
) -> Result<(), Error> {
    let id_taken = sections.contains(id);
    let id_taken_by = match id_taken {
        true => sections
            .entry(id)
            .ok()
            .and_then(|entry| entry.info.fingerprint),
        false => None,
    };
    let fingerprint_taken_by = sections.find_fingerprint(&fingerprint).map(str::to_string);
    if id_taken || fingerprint_taken_by.is_some() {
        return Err(KeystoreError::RestoreConflict {
            id: id.to_string(),
            fingerprint,
            id_taken,
            id_taken_by,
            fingerprint_taken_by,
        }
        .into());
    }
    Ok(())
}

/// The names of the entries of `listing` whose record names the key with
/// `fingerprint`.
fn holding(listing: TrashListing, fingerprint: &Fingerprint) -> Vec<String> {
    listing
        .entries
        .into_iter()
        .filter(|entry| entry.record.fingerprint.as_ref() == Some(fingerprint))
        .map(|entry| entry.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_never_equal_an_id_and_never_repeat() {
        let one = new_entry_name("offsite-2025", 1_775_840_036).unwrap();
        let two = new_entry_name("offsite-2025", 1_775_840_036).unwrap();
        assert_ne!(one, two);
        assert!(one.starts_with("offsite-2025@1775840036-"), "{one}");
        assert!(check_key_id(&one).is_err());
        assert_eq!(entry_id(&one), "offsite-2025");
        assert!(new_entry_name("../x", 1).unwrap().starts_with("unnamed@1-"));
        check_selector(&one).unwrap();
        check_selector("offsite-2025").unwrap();
        for bad in [
            "../x",
            "x@1-abcdef",
            "k-one@-abcdef",
            "k-one@12-abc",
            "k-one@1a-abcdef",
        ] {
            assert!(check_selector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn expiry_honours_the_date() {
        let record = TrashRecord {
            id: "k-one".into(),
            fingerprint: None,
            entry: None,
            reason: TrashReason::Delete,
            time: 100,
            actor: None,
            purge_after: Some(purge_after(100, 1)),
        };
        assert!(!record.is_expired(100 + DAY - 1));
        assert!(record.is_expired(100 + DAY));
        let repaired = TrashRecord {
            purge_after: None,
            reason: TrashReason::RepairOrphan,
            ..record
        };
        assert!(!repaired.is_expired(i64::MAX));
    }
}
