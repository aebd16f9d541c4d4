//! Keys leaving the store and coming back: export bundles read from the
//! store ([`EncryptionKeys::export_bundle`]), compared with it (the restore
//! drill, [`EncryptionKeys::compare_bundle`]), and keys restored into it
//! ([`EncryptionKeys::restore_keys`]). The formats are
//! `pbs_key_config::bundle` and `pbs_key_config::paperkey`
//! (`docs/export-format.md`).
//!
//! Invariants a maintainer must keep:
//! - an export reads every key under the config lock, so a bundle is one
//!   consistent view of the store, and checks each key file against its
//!   config entry (as a load does): a key that would not load is never
//!   exported. The costly part (scrypt, RSA) runs after the lock is gone;
//! - a restore goes through the store path (key file, then config entry),
//!   and a key's entry is written whole in one config write, its archive
//!   time included: a crash never leaves an archived key active;
//! - every conflict of a restore is found under the config lock before
//!   anything is written, so a refused restore writes nothing; a crash or
//!   a failure part way leaves the keys before it restored, each whole,
//!   and running the restore again restores the rest (a key already in the
//!   store with the same id and fingerprint is left as it is);
//! - a listed key's missing key file is put back, and a key new to the
//!   store is stored, only from a key file that is proven to be that key's:
//!   an unprotected one by its key's fingerprint, a protected one only by
//!   the key's passphrase given to the restore (findings 31, 33 and 51).

use std::collections::{HashMap, HashSet};

use anyhow::{Error, bail, format_err};
use serde::Serialize;
use zeroize::Zeroize;

use proxmox_lang::error::ErrorLayer;

use pbs_api_types::{CryptKey, Fingerprint, Kdf, KeyInfo};
use pbs_key_config::bundle::{
    BundleKeyInfo, ExportKey, ExportRecipient, ProvableBundle, create_provable_bundle,
};
use pbs_key_config::{KeyConfig, KeyError, MAX_KEY_FILE_SIZE};

use crate::audit::checkpoint::{ORIGIN_PREFIX, host_name};
use crate::audit::{AuditLog, Event, Op, Pending};
use crate::dir_handle::{DirHandle, read_all};
use crate::encryption_keys::{
    EncryptionKeys, KeySource, check_key_id, check_storable, key_event, key_fingerprint,
};
use crate::{KeyConflict, KeySections, KeystoreError};

/// The origin an export bundle of this store names: `pbs-keystore/<host>`,
/// the host as the audit checkpoints name it.
pub fn export_origin() -> String {
    format!("{ORIGIN_PREFIX}/{}", host_name())
}

/// Which keys an export takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportSelection {
    /// These keys, active or archived, in this order.
    Ids(Vec<String>),
    /// Every active key, and with `include_archived` every archived one,
    /// in file order.
    All {
        /// Archived keys too.
        include_archived: bool,
    },
}

/// A key read for an export: its config entry and its key file's bytes.
struct ReadKey {
    config: CryptKey,
    key_file: Vec<u8>,
}

impl Drop for ReadKey {
    fn drop(&mut self) {
        self.key_file.zeroize();
    }
}

/// How a key of a bundle stands against the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreState {
    /// The store has the id, with the same key.
    PresentEqual,
    /// The store has the id, with another key.
    PresentDifferent,
    /// The store has no key of this id.
    Absent,
}

/// One key of a bundle, compared with the store (the restore drill).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BundleKeyCheck {
    /// The key id in the bundle.
    pub id: String,
    /// Its fingerprint (checked against its key when the bundle was opened).
    pub fingerprint: Fingerprint,
    /// When it was archived, if it was at export time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<i64>,
    /// How the store has the id.
    pub store: StoreState,
    /// The fingerprint the store has for the id, if another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_fingerprint: Option<Fingerprint>,
    /// The id the store has this key under, if another.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_as: Option<String>,
    /// Why the store's key of the same id and fingerprint does not load
    /// (a missing or damaged key file), if it does not: a restore puts a
    /// missing key file back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_problem: Option<String>,
    /// Why the drill records no verified copy of this key, if it does not:
    /// its key file is protected and not the one this host holds of the
    /// key ([`EncryptionKeys::proves_copy`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub copy_unproven: Option<String>,
}

/// A key to restore: its config entry (its `path` is replaced by this
/// store's), its parsed key file and the key file's bytes as they are to
/// be written.
pub struct RestoreKey<'a> {
    /// The config entry, as exported (archive time included).
    pub entry: CryptKey,
    /// The key file, parsed.
    pub key_config: &'a KeyConfig,
    /// The key file's bytes.
    pub key_file: &'a [u8],
}

/// A key as a restore writes it: its entry (with this store's key file
/// path), its fingerprint, its key file's bytes.
type RestoreEntry<'a> = (CryptKey, Fingerprint, &'a [u8]);

/// What a restore did with one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreOutcome {
    /// Stored.
    Restored,
    /// The store had it already, under the same id: left as it is.
    AlreadyPresent,
    /// The store had its entry, but not its key file: the key file was
    /// written back (the entry left as it is).
    KeyFileRestored,
}

/// One key of a restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RestoredKey {
    /// The key id.
    pub id: String,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// Its archive time as the store has it now: the bundle's for a key
    /// restored, the store's own for a key it had (its entry left as it
    /// is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<i64>,
    /// What was done.
    pub outcome: RestoreOutcome,
}

impl EncryptionKeys<'_> {
    /// The store's current audit checkpoint (C2SP signed-note text), which
    /// exports and paperkeys carry; `None` while the store keeps no audit
    /// log.
    pub fn current_checkpoint(&self) -> Result<Option<String>, Error> {
        let Some(log) = AuditLog::open_existing(self.dir())? else {
            return Ok(None);
        };
        log.stored_checkpoint_text()
    }

    /// Writes an export bundle of the keys `selection` names for
    /// `recipients`. `allowed` is asked for every key before anything is
    /// read (the API's privilege check; its error is returned as it is).
    ///
    /// # Errors
    ///
    /// An unknown id ([`KeystoreError::NotFound`]), an id named twice, no
    /// key selected, a key file that does not load or does not match its
    /// config entry, or what `create_bundle` refuses (no recipient, a short
    /// passphrase, a small RSA key).
    ///
    /// # Locking
    ///
    /// Takes the config lock while it reads the keys, none while it
    /// encrypts.
    pub fn export_bundle(
        &self,
        selection: &ExportSelection,
        recipients: &[ExportRecipient],
        allowed: &dyn Fn(&CryptKey) -> Result<(), Error>,
    ) -> Result<Vec<u8>, Error> {
        let mut bundle = self.export_provable_bundle(selection, recipients, allowed)?;
        Ok(bundle.take_bytes())
    }

    /// [`EncryptionKeys::export_bundle`], keeping the bundle's data key in
    /// memory to prove a copy of it read back (a rotation proves its export
    /// to RSA master keys this way, see [`ProvableBundle`]).
    pub fn export_provable_bundle(
        &self,
        selection: &ExportSelection,
        recipients: &[ExportRecipient],
        allowed: &dyn Fn(&CryptKey) -> Result<(), Error>,
    ) -> Result<ProvableBundle, Error> {
        let keys = self.read_for_export(selection, allowed)?;
        // no key leaves the store unrecorded: the intent first, and the
        // bundle carries the checkpoint signed after it
        let named: Vec<(&str, Option<Fingerprint>)> = keys
            .iter()
            .map(|key| (key.config.id.as_str(), key.config.info.fingerprint))
            .collect();
        let pending = self.record_keys(Op::Export, &named)?;
        let checkpoint = match pending.last().and_then(|p| p.checkpoint()) {
            Some(checkpoint) => Some(checkpoint.to_note()),
            None => self.current_checkpoint()?,
        };
        let export: Vec<ExportKey> = keys
            .iter()
            .map(|key| ExportKey {
                config: &key.config,
                key_file: &key.key_file,
            })
            .collect();
        let bundle =
            create_provable_bundle(&export_origin(), checkpoint.as_deref(), &export, recipients);
        finish_all(pending, bundle)
    }

    /// The intents of `op` on `keys` (ids and their fingerprints) for the
    /// config dir's caller: one record per [`KEYS_PER_RECORD`] keys (a
    /// record has a size limit). If one cannot be written, those written
    /// get their outcome (not done) and the error is returned: the caller
    /// then does nothing. Finish them with [`finish_all`].
    pub fn record_keys(
        &self,
        op: Op,
        keys: &[(&str, Option<Fingerprint>)],
    ) -> Result<Vec<Pending<'_>>, Error> {
        let events: Vec<Event> = keys
            .chunks(KEYS_PER_RECORD)
            .map(|chunk| {
                let mut event = self.dir().audit_event(op);
                for (id, fingerprint) in chunk {
                    event = event.id(*id);
                    if let Some(fingerprint) = fingerprint {
                        event = event.fingerprint(*fingerprint);
                    }
                }
                event
            })
            .collect();
        self.dir().audit_intents(None, &events)
    }

    /// The entries and key files of the keys `selection` names, read under
    /// the config lock and checked as a load checks them.
    fn read_for_export(
        &self,
        selection: &ExportSelection,
        allowed: &dyn Fn(&CryptKey) -> Result<(), Error>,
    ) -> Result<Vec<ReadKey>, Error> {
        if let ExportSelection::Ids(ids) = selection {
            let mut seen = HashSet::new();
            for id in ids {
                check_key_id(id)?;
                if !seen.insert(id.as_str()) {
                    bail!("encryption key '{id}' is named twice");
                }
            }
        }
        let no_keys = || match selection {
            ExportSelection::All {
                include_archived: false,
            } => format_err!("no keys to export - the store has no active keys"),
            _ => format_err!("no keys to export - the store has no keys"),
        };
        // reading creates nothing: no config dir, no keys
        let Some(base) = self.dir().open_base()? else {
            return Err(match selection {
                ExportSelection::Ids(ids) if !ids.is_empty() => {
                    KeystoreError::NotFound { id: ids[0].clone() }.into()
                }
                _ => no_keys(),
            });
        };

        let config_lock = self.lock_config()?;
        let index = self.index_data()?;
        let selected: Vec<CryptKey> = match selection {
            ExportSelection::Ids(ids) => ids
                .iter()
                .map(|id| index.get(id).cloned())
                .collect::<Result<_, _>>()?,
            ExportSelection::All { include_archived } => index
                .entries()?
                .filter(|key| *include_archived || key.archived_at.is_none())
                .cloned()
                .collect(),
        };
        if selected.is_empty() {
            return Err(no_keys());
        }
        for entry in &selected {
            allowed(entry)?;
        }
        let key_dir = self.open_key_dir(&base)?;
        let mut keys = Vec::with_capacity(selected.len());
        for config in selected {
            let id = config.id.clone();
            let read = (|| {
                self.check_entry_path(&config)?;
                let Some(key_dir) = &key_dir else {
                    bail!("key file {:?} is missing", self.key_path(&id));
                };
                let (key_file, key_config) = self.read_key_file_bytes_in(key_dir, &id)?;
                let read = ReadKey { config, key_file };
                self.check_key_matches(&read.config, &key_config)?;
                Ok(read)
            })()
            .layer_err(|| format!("refusing to export encryption key '{id}'"))?;
            keys.push(read);
        }
        drop(config_lock);
        Ok(keys)
    }

    /// Compares the keys of an opened bundle with the store: for each, is
    /// its id in the store with the same key, with another key, or absent,
    /// and does the store have the key under another id. Reads, writes
    /// nothing, takes no lock.
    pub fn compare_bundle(&self, keys: &[BundleKeyInfo]) -> Result<Vec<BundleKeyCheck>, Error> {
        let index = match self.dir().open_base()? {
            Some(_) => Some(self.index_data()?),
            None => None,
        };
        let mut checks = Vec::with_capacity(keys.len());
        for key in keys {
            let stored = match &index {
                Some(index) => match index.get(&key.id) {
                    Ok(entry) => Some(entry.info.fingerprint),
                    Err(err) if is_not_found(&err) => None,
                    Err(err) => return Err(err),
                },
                None => None,
            };
            let (store, store_fingerprint) = match stored {
                Some(Some(fingerprint)) if fingerprint == key.fingerprint => {
                    (StoreState::PresentEqual, None)
                }
                Some(other) => (StoreState::PresentDifferent, other),
                None => (StoreState::Absent, None),
            };
            // an entry is not a key: does the key load?
            let store_problem = match store {
                StoreState::PresentEqual => self
                    .load_key(&key.id, false)
                    .err()
                    .map(|err| err.to_string()),
                _ => None,
            };
            let stored_as = index
                .as_ref()
                .and_then(|index| index.find_fingerprint(&key.fingerprint))
                .filter(|other| *other != key.id)
                .map(str::to_string);
            checks.push(BundleKeyCheck {
                id: key.id.clone(),
                fingerprint: key.fingerprint,
                archived_at: key.archived_at,
                store,
                store_fingerprint,
                stored_as,
                store_problem,
                copy_unproven: None,
            });
        }
        Ok(checks)
    }

    /// Restores `keys` through the store path: a key whose id the store
    /// has with the same fingerprint is left as it is (its key file put
    /// back if it is missing; refused if it is there but does not load);
    /// every other key is
    /// stored with its entry as given (archive time included) and this
    /// store's key file path. Refused as a whole, before anything is
    /// written, if any id is taken by another key or any key is stored
    /// under another id ([`KeystoreError::BundleConflict`], naming both).
    ///
    /// The missing key file of a protected key is put back, and a protected
    /// key new to the store is stored, only from a key file `key_passphrase`
    /// decrypts to a key of the entry's fingerprint: a protected key file
    /// only claims its fingerprint, and another key's in its place would
    /// load as the key (finding 33), or take its fingerprint from it and
    /// pass the drill as its verified copy (finding 51). The passphrase is
    /// used for nothing else and never kept.
    ///
    /// # Errors
    ///
    /// The conflicts; an invalid or repeated id; a key file whose
    /// fingerprint is not its entry's; missing key files given with the
    /// other protection than the store lists ([`OtherProtections`], naming
    /// each, before any conflict); protected keys' missing files, or
    /// protected keys new to the store, without a proven key file
    /// ([`UnprovenKeyFiles`], naming each, after any conflict); an entry
    /// the config cannot hold; a failed write (the error names the keys
    /// restored before it).
    ///
    /// # Locking
    ///
    /// Takes the config lock, then each key's lock in turn.
    pub fn restore_keys(
        &self,
        keys: &[RestoreKey],
        key_passphrase: Option<&[u8]>,
    ) -> Result<Vec<RestoredKey>, Error> {
        // everything that needs no lock first: ids, fingerprints, entries,
        // and the costly KDF of the protected key files that are to prove
        let entries = self.restore_entries(keys)?;
        let mut prover = Prover::new(keys, key_passphrase);
        self.prove_missing_unlocked(&entries, &mut prover);

        let base = self.dir().open_base_or_create()?;
        let config_lock = self.lock_config()?;
        let sections = self.sections_locked(&config_lock, None)?;
        let (present, missing_files) =
            self.restore_plan(&base, &sections, &entries, &mut prover)?;

        let mut sections = Some(sections);
        let mut restored = Vec::with_capacity(entries.len());
        for (entry, fingerprint, key_file) in entries {
            // a key the store has is told as the store has it (archived or
            // not), a key stored as the bundle has it
            let (outcome, archived_at) = if present.contains(&entry.id) {
                let stored = self.entry(&entry.id)?;
                (RestoreOutcome::AlreadyPresent, stored.archived_at)
            } else if missing_files.contains(&entry.id) {
                let stored = self.entry(&entry.id)?;
                self.restore_key_file_locked(&base, &stored, key_file, &config_lock)
                    .map_err(|err| partial_restore(err, &entry.id, &restored))?;
                (RestoreOutcome::KeyFileRestored, stored.archived_at)
            } else {
                let current = match sections.take() {
                    Some(sections) => sections,
                    None => self.sections_locked(&config_lock, None)?,
                };
                let id = entry.id.clone();
                let event = key_event(self.dir(), Op::Restore, &entry);
                self.store_locked(
                    &base,
                    current,
                    &config_lock,
                    entry.clone(),
                    KeySource::Exact(key_file),
                    &event,
                    || Ok(()),
                )
                .map_err(|err| partial_restore(err, &id, &restored))?;
                (RestoreOutcome::Restored, entry.archived_at)
            };
            restored.push(RestoredKey {
                id: entry.id,
                fingerprint,
                archived_at,
                outcome,
            });
        }
        Ok(restored)
    }

    /// The entries `keys` are restored as (this store's key file path),
    /// each with its fingerprint and key file; refused if an id is invalid
    /// or given twice, a key is given twice, a key file is not its entry's,
    /// or an entry is one the config cannot hold.
    fn restore_entries<'k>(&self, keys: &[RestoreKey<'k>]) -> Result<Vec<RestoreEntry<'k>>, Error> {
        let mut ids = HashSet::new();
        let mut fingerprints = HashSet::new();
        let mut entries = Vec::with_capacity(keys.len());
        for key in keys {
            let id = key.entry.id.as_str();
            check_key_id(id)?;
            if !ids.insert(id) {
                bail!("encryption key '{id}' is given twice");
            }
            let fingerprint = key_fingerprint(key.key_config)
                .layer_err(|| format!("failed to restore encryption key '{id}'"))?;
            if key.entry.info.fingerprint != Some(fingerprint) {
                bail!(
                    "failed to restore encryption key '{id}' - its key file has fingerprint {}, \
                     its entry another",
                    fingerprint.signature()
                );
            }
            if !fingerprints.insert(fingerprint) {
                bail!(
                    "the key with fingerprint {} is given twice",
                    fingerprint.signature()
                );
            }
            let entry = CryptKey {
                id: id.to_string(),
                info: KeyInfo {
                    path: Some(self.key_path(id).to_string_lossy().into_owned()),
                    // the entry describes the key file written, whatever
                    // the bundle's entry says: its protection, and the
                    // hint its paperkey prints and a client shows when it
                    // asks the passphrase (finding 72)
                    kdf: key.key_config.kdf_kind(),
                    hint: key.key_config.hint.clone(),
                    ..key.entry.info.clone()
                },
                archived_at: key.entry.archived_at,
            };
            // a hint the config cannot hold is bad input (400, `hint`);
            // any other schema error too, before any write
            check_storable(key.key_config, key.key_file)
                .layer_err(|| format!("failed to restore encryption key '{id}'"))?;
            KeySections::default()
                .set(&entry)
                .layer_err(|| format!("failed to restore encryption key '{id}'"))?;
            entries.push((entry, fingerprint, key.key_file));
        }

        Ok(entries)
    }

    /// Decrypts, before the lock, the protected key files of `entries`
    /// whose key the store lists without its key file, or does not list
    /// at all, as it reads now: those the restore puts back or stores, and
    /// so must prove. A key file found missing only under the lock is
    /// decrypted there; a store that cannot be read now is read again
    /// under the lock, and refused there.
    fn prove_missing_unlocked(&self, entries: &[RestoreEntry], prover: &mut Prover) {
        if prover.passphrase.is_none() {
            return;
        }
        let (Ok(Some(base)), Ok(index)) = (self.dir().open_base(), self.index_data()) else {
            return;
        };
        for (entry, fingerprint, _) in entries {
            if entry.info.kdf == Kdf::None {
                continue;
            }
            let to_prove = match index.get(&entry.id) {
                Ok(stored) => {
                    stored.info.fingerprint == Some(*fingerprint)
                        && self.key_file_missing(&base, &entry.id).unwrap_or(false)
                }
                Err(err) => is_not_found(&err),
            };
            if to_prove {
                prover.proof(fingerprint);
            }
        }
    }

    /// Which of `entries` the store has already (same id, same
    /// fingerprint) with their key file, and which without it; refused as
    /// a whole if any other id or key is taken
    /// ([`KeystoreError::BundleConflict`]), a new key's file name is taken
    /// by a file the config does not list, or a present key does not load,
    /// and, naming every such key, if missing key files are given with the
    /// other protection ([`OtherProtections`]) or protected ones unproven
    /// ([`UnprovenKeyFiles`]).
    fn restore_plan(
        &self,
        base: &DirHandle,
        sections: &KeySections,
        entries: &[RestoreEntry],
        prover: &mut Prover,
    ) -> Result<(HashSet<String>, HashSet<String>), Error> {
        let mut conflicts = Vec::new();
        let mut present = HashSet::new();
        let mut missing_files = HashSet::new();
        // refused after the loop, all at once: one refusal names every key
        // given with the other protection (before the conflicts, as bad
        // input), one every key that needs the passphrase (after them)
        let mut other_protection = Vec::new();
        let mut unproven_files = HashMap::new();
        // key files of new keys' ids that the config does not list
        let mut orphans = Vec::new();
        for (entry, fingerprint, _) in entries {
            let id_taken_by = match sections.contains(&entry.id) {
                true => Some(sections.entry(&entry.id)?.info.fingerprint),
                false => None,
            };
            if id_taken_by == Some(Some(*fingerprint)) {
                // the entry is there: is its key file?
                if self.key_file_missing(base, &entry.id)? {
                    let stored = sections.entry(&entry.id)?.info.kdf;
                    if let Err(other) = check_same_protection(stored, entry) {
                        other_protection.push(other);
                        continue;
                    }
                    if stored != Kdf::None
                        && let Err(unproven) = prover.check(&entry.id, fingerprint, false)
                    {
                        unproven_files.insert(entry.id.clone(), unproven);
                    }
                    missing_files.insert(entry.id.clone());
                    continue;
                }
                // there, but broken: nothing is written over it
                if let Err(err) = self.load_key(&entry.id, false) {
                    bail!(
                        "refusing to restore - encryption key '{}' is in the store, but {err} - \
                         see 'proxmox-backup-manager encryption-key verify' - nothing was restored",
                        entry.id
                    );
                }
                present.insert(entry.id.clone());
                continue;
            }
            let fingerprint_taken_by = sections.find_fingerprint(fingerprint).map(str::to_string);
            if id_taken_by.is_some() || fingerprint_taken_by.is_some() {
                conflicts.push(KeyConflict {
                    id: entry.id.clone(),
                    fingerprint: *fingerprint,
                    id_taken_by,
                    fingerprint_taken_by,
                });
            } else if !self.key_file_missing(base, &entry.id)? {
                // a new key whose file name is taken: its store would fail
                // after the keys before it were restored
                orphans.push(format!("{:?}", self.key_path(&entry.id)));
            }
        }
        if !other_protection.is_empty() {
            return Err(OtherProtections {
                keys: other_protection,
            }
            .into());
        }
        if !conflicts.is_empty() {
            return Err(KeystoreError::BundleConflict { conflicts }.into());
        }
        refuse_orphans(&orphans)?;
        // the protected keys whose missing file is unproven, and those new
        // to the store (finding 51) unproven, in the restore's order
        let mut unproven = Vec::new();
        for (entry, fingerprint, _) in entries {
            if let Some(key) = unproven_files.remove(&entry.id) {
                unproven.push(key);
                continue;
            }
            let new_key = !present.contains(&entry.id) && !missing_files.contains(&entry.id);
            if new_key
                && entry.info.kdf != Kdf::None
                && let Err(key) = prover.check(&entry.id, fingerprint, true)
            {
                unproven.push(key);
            }
        }
        if !unproven.is_empty() {
            return Err(UnprovenKeyFiles { keys: unproven }.into());
        }

        Ok((present, missing_files))
    }
}

impl EncryptionKeys<'_> {
    /// Whether `key_config`, the key file an opened bundle holds for the
    /// key with `fingerprint`, proves a copy of that key (the drill records
    /// a verified copy only of such keys, [`crate::verified_copy`]). An
    /// unprotected key file does: opening the bundle computed its
    /// fingerprint from its key. A protected one has the fingerprint it
    /// says it has (nothing decrypts it without its passphrase): it proves
    /// a copy only if it is the key file this host holds of that key, in
    /// the store or in the trash (same KDF parameters, same encrypted key).
    /// A trash that cannot be read proves nothing.
    ///
    /// # Errors
    ///
    /// The key list cannot be read.
    pub fn proves_copy(
        &self,
        fingerprint: &Fingerprint,
        key_config: &KeyConfig,
    ) -> Result<bool, Error> {
        if !key_config.is_protected() {
            return Ok(true);
        }
        let same = |held: &KeyConfig| {
            held.fingerprint == Some(*fingerprint)
                && held.kdf == key_config.kdf
                && held.data == key_config.data
        };
        if self.dir().open_base()?.is_some() {
            let index = self.index_data()?;
            if let Some(id) = index.find_fingerprint(fingerprint)
                && self.read_key_file(id).is_ok_and(|held| same(&held))
            {
                return Ok(true);
            }
        }
        let in_trash = self.trash().key_files_of(fingerprint).unwrap_or_default();
        Ok(in_trash.iter().any(same))
    }

    /// Every id the store holds the key with `fingerprint` under: the ids
    /// of its config entries (active or archived), of its key files the
    /// config does not list (an interrupted store, delete, trash restore or
    /// repair leaves one) and of its trash entries, complete or not (the id
    /// each had), in that order, each once. A drill records a verified copy
    /// of the key, which lets a purge destroy it under any of them, only
    /// for a caller who may see them all (finding 61); a key half-way
    /// between the list and the trash is held under the id it had too
    /// (finding 71).
    ///
    /// # Errors
    ///
    /// The key list, the key directory or the trash cannot be read: which
    /// ids hold the key is then unknown.
    ///
    /// # Locking
    ///
    /// Takes none: a caller that decides on the answer holds the config
    /// lock, under which every key moves between the list and the trash.
    pub fn ids_holding(&self, fingerprint: &Fingerprint) -> Result<Vec<String>, Error> {
        let mut ids: Vec<String> = Vec::new();
        let mut add = |id: &str| {
            if !ids.iter().any(|held| held == id) {
                ids.push(id.to_string());
            }
        };
        if let Some(base) = self.dir().open_base()? {
            let index = self.index_data()?;
            for entry in index.entries()? {
                if entry.info.fingerprint.as_ref() == Some(fingerprint) {
                    add(&entry.id);
                }
            }
            if let Some(key_dir) = self.open_key_dir(&base)? {
                for name in key_dir.names()? {
                    let Some(id) = unlisted_key_file_id(&name) else {
                        continue;
                    };
                    if index.get(id).is_err() && key_file_holds(&key_dir, &name, fingerprint) {
                        add(id);
                    }
                }
            }
        }
        for entry in self.trash().entries_holding(fingerprint)? {
            add(crate::trash::entry_id(&entry));
        }
        Ok(ids)
    }
}

/// The id of a key file name in the key directory, `<id>.enc` or a temp
/// file of one (`<id>.enc.tmp_XXXXXX`); `None` for any other name.
fn unlisted_key_file_id(name: &str) -> Option<&str> {
    let target = crate::dir_handle::temp_file_target(name).unwrap_or(name);
    let id = target.strip_suffix(".enc")?;
    check_key_id(id).is_ok().then_some(id)
}

/// Whether `name` in the key directory is a key file of the key with
/// `fingerprint` (as its file says, for a protected key).
fn key_file_holds(key_dir: &DirHandle, name: &str, fingerprint: &Fingerprint) -> bool {
    let Ok(Some(mut opened)) = key_dir.open_regular(name, MAX_KEY_FILE_SIZE) else {
        return false;
    };
    let Ok(mut data) = read_all(&mut opened, MAX_KEY_FILE_SIZE) else {
        return false;
    };
    let key_config = KeyConfig::from_json(&data);
    data.zeroize();
    key_config
        .ok()
        .and_then(|key_config| key_fingerprint(&key_config).ok())
        .is_some_and(|held| held == *fingerprint)
}

impl EncryptionKeys<'_> {
    /// Whether the key file of `id` (whose entry the config has) is
    /// missing: no key directory, or no file (or an empty one) in it. A key
    /// file that is there but does not load is not missing: the restore
    /// refuses to write over it.
    fn key_file_missing(&self, base: &DirHandle, id: &str) -> Result<bool, Error> {
        Ok(match self.open_key_dir(base)? {
            Some(key_dir) => key_dir
                .stat(&crate::files::key_file_name(id))?
                .is_none_or(|stat| stat.size == 0),
            None => true,
        })
    }
}

/// Refuses a restore if new keys' file names are taken by the files
/// `orphans` (quoted paths) that the config does not list.
fn refuse_orphans(orphans: &[String]) -> Result<(), Error> {
    let (files, exist) = match orphans.len() {
        0 => return Ok(()),
        1 => ("key file", "exists"),
        _ => ("key files", "exist"),
    };
    bail!(
        "refusing to restore - {files} {} {exist} already without an entry in the config (left \
         by an interrupted operation?) - run 'proxmox-backup-manager encryption-key verify \
         --repair' to move orphans into the trash, then restore again - nothing was restored",
        orphans.join(", ")
    )
}

/// How many keys one record of an export (or an export check) names: a
/// record is at most 16 KiB (`audit::record::MAX_LINE_LEN`), an id and a
/// fingerprint about 130 bytes.
pub const KEYS_PER_RECORD: usize = 64;

/// Records the outcome of each of `pending` (the same `result`), then
/// returns `result`; a failed outcome is the error if `result` was not.
pub fn finish_all<T>(pending: Vec<Pending<'_>>, result: Result<T, Error>) -> Result<T, Error> {
    let mut failed = None;
    for intent in pending {
        let outcome = match &result {
            Ok(_) => Ok(()),
            Err(err) => Err(format_err!("{err}")),
        };
        if let Err(err) = intent.done(outcome) {
            failed.get_or_insert(err);
        }
    }
    match (result, failed) {
        (Ok(_), Some(err)) => Err(err),
        (result, _) => result,
    }
}

/// Refuses to put back the missing key file of a key the store lists with
/// `stored` protection from `entry`'s key file if that is protected
/// otherwise. Only an unprotected key file proves its key (its fingerprint
/// is computed from it); a protected one has the fingerprint it claims, so
/// one in place of an unprotected key's file would load as that key
/// without being it, and hide the real key file from a later restore
/// (finding 31). A protected key's file cannot be checked here.
fn check_same_protection(stored: Kdf, entry: &CryptKey) -> Result<(), OtherProtection> {
    match entry.info.kdf == stored {
        true => Ok(()),
        false => Err(OtherProtection {
            id: entry.id.clone(),
            stored,
            given: entry.info.kdf,
        }),
    }
}

/// The one wording of a restore refused for several keys at once:
/// "refusing to restore - {what}: {key}; {key} - {then} - nothing was
/// restored", each key written by `item`. A refusal of one key says it in
/// that key's own words.
fn fmt_refused_keys<K>(
    f: &mut std::fmt::Formatter<'_>,
    what: std::fmt::Arguments<'_>,
    keys: &[K],
    item: impl Fn(&K, &mut std::fmt::Formatter<'_>) -> std::fmt::Result,
    then: &str,
) -> std::fmt::Result {
    write!(f, "refusing to restore - {what}: ")?;
    for (index, key) in keys.iter().enumerate() {
        if index > 0 {
            f.write_str("; ")?;
        }
        item(key, f)?;
    }
    write!(f, " - {then} - nothing was restored")
}

/// A restore refused because the key files given for keys whose file is
/// missing are protected where the store's entries say the keys are not,
/// or the other way round: none can be its key's file (bad input, as the
/// API answers it). It names every such key of the restore, so that the
/// operator fixes them at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherProtections {
    /// The keys, in the restore's order; never empty.
    pub keys: Vec<OtherProtection>,
}

impl std::fmt::Display for OtherProtections {
    /// One key as [`OtherProtection`] says it; several in one list.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.keys.as_slice() {
            [one] => one.fmt(f),
            keys => fmt_refused_keys(
                f,
                format_args!(
                    "{} keys have key files given protected otherwise than the store lists them",
                    keys.len()
                ),
                keys,
                OtherProtection::fmt_item,
                "a key file protected otherwise cannot be its key's file",
            ),
        }
    }
}

impl std::error::Error for OtherProtections {}

/// One key of [`OtherProtections`]: the key file given for the key `id`,
/// whose file is missing, is protected otherwise than the store lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherProtection {
    /// The key id.
    pub id: String,
    /// The key's protection as the store lists it.
    pub stored: Kdf,
    /// The protection of the key file given.
    pub given: Kdf,
}

impl std::fmt::Display for OtherProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refusing to restore - ")?;
        self.fmt_item(f)?;
        f.write_str(": it cannot be that key's file - nothing was restored")
    }
}

impl OtherProtection {
    /// The key as an item of a list of several: its protection in the
    /// store, and the file's.
    fn fmt_item(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words = |kdf: Kdf| match kdf {
            Kdf::None => "not protected".to_string(),
            other => format!("passphrase protected ({})", other.as_str()),
        };
        write!(
            f,
            "encryption key '{}' is {} in the store, and the key file given for it is {}",
            self.id,
            words(self.stored),
            words(self.given)
        )
    }
}

/// What the passphrase a restore was given finds in the protected key
/// files it holds, each file decrypted at most once and only when asked
/// of: a file is proven if the passphrase decrypts it to a key of the
/// fingerprint it claims. Only a key whose missing file is to be put back,
/// or that is new to the store, needs a proof ([`Prover::check`]): the KDF
/// of every other protected key file would be work for nothing (a second
/// or more each).
struct Prover<'k> {
    keys: &'k [RestoreKey<'k>],
    passphrase: Option<&'k [u8]>,
    /// By the fingerprint a file claims: `Ok` if proven, else why not.
    proofs: HashMap<Fingerprint, Result<(), String>>,
}

impl<'k> Prover<'k> {
    fn new(keys: &'k [RestoreKey<'k>], passphrase: Option<&'k [u8]>) -> Self {
        Self {
            keys,
            passphrase,
            proofs: HashMap::new(),
        }
    }

    /// Whether the protected key file claiming `fingerprint` is proven;
    /// `None` without a passphrase or such a file. Decrypts it the first
    /// time (the key is wiped at once).
    fn proof(&mut self, fingerprint: &Fingerprint) -> Option<&Result<(), String>> {
        let passphrase = self.passphrase?;
        let keys = self.keys;
        let proof = self.proofs.entry(*fingerprint).or_insert_with(|| {
            let Some(key) = keys.iter().find(|key| {
                key.key_config.is_protected() && key.key_config.fingerprint == Some(*fingerprint)
            }) else {
                return Err("the restore holds no protected key file of it".to_string());
            };
            match key.key_config.decrypt(&|| Ok(passphrase.to_vec())) {
                Ok((mut raw, _, _)) => {
                    // decrypt checked the key against the fingerprint claimed
                    raw.zeroize();
                    Ok(())
                }
                Err(err) => Err(match err.downcast_ref::<KeyError>() {
                    Some(KeyError::FingerprintMismatch { computed, .. }) => format!(
                        "the passphrase opens it, but its key has fingerprint {}: it only \
                         claims the key's fingerprint",
                        computed.signature()
                    ),
                    _ => err.to_string(),
                }),
            }
        });
        Some(proof)
    }

    /// Refuses to put back the missing key file of the protected key `id`
    /// (or, with `new_key`, to store the protected key `id` new to the
    /// store) from a key file with `fingerprint` unless the restore's
    /// passphrase decrypts it to that key (findings 33 and 51).
    fn check(
        &mut self,
        id: &str,
        fingerprint: &Fingerprint,
        new_key: bool,
    ) -> Result<(), UnprovenKeyFile> {
        match self.proof(fingerprint) {
            Some(Ok(())) => Ok(()),
            proof => Err(UnprovenKeyFile {
                id: id.to_string(),
                fingerprint: *fingerprint,
                new_key,
                why: proof.and_then(|proof| proof.clone().err()),
            }),
        }
    }
}

/// A restore refused because the missing key files of protected keys
/// would be put back (finding 33), or protected keys new to the store
/// stored (finding 51), from key files not proven to hold those keys: the
/// passphrase that proves them is missing or does not. It names every
/// such key of the restore, so that the operator fixes them at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnprovenKeyFiles {
    /// The keys, in the restore's order; never empty.
    pub keys: Vec<UnprovenKeyFile>,
}

impl std::fmt::Display for UnprovenKeyFiles {
    /// One key as [`UnprovenKeyFile`] says it; several in one list, each
    /// with what it is here, then what to do once.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.keys.as_slice() {
            [one] => one.fmt(f),
            keys => fmt_refused_keys(
                f,
                format_args!(
                    "{} passphrase protected keys have key files not proven to hold them",
                    keys.len()
                ),
                keys,
                UnprovenKeyFile::fmt_item,
                "a protected key file only claims its fingerprint: it is stored or put back \
                 only once the key's own passphrase decrypts it to that key - give the keys' \
                 passphrase (the CLI's --key-passphrase-file FILE, the API's key-passphrase) and \
                 restore them again, keys of other passphrases apart by naming their ids",
            ),
        }
    }
}

impl std::error::Error for UnprovenKeyFiles {}

/// One key of [`UnprovenKeyFiles`]: the protected key `id`, whose missing
/// key file a restore would put back, or which is new to the store, from
/// a key file not proven to hold it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnprovenKeyFile {
    /// The key id.
    pub id: String,
    /// The fingerprint of the key the store lists under it, or the key
    /// file claims.
    pub fingerprint: Fingerprint,
    /// Whether the key is new to the store (else its key file is missing).
    pub new_key: bool,
    /// What the passphrase given found, if one was given.
    pub why: Option<String>,
}

impl std::fmt::Display for UnprovenKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = &self.id;
        if self.new_key {
            let found = match &self.why {
                Some(why) => format!(" ({why})"),
                None => String::new(),
            };
            return write!(
                f,
                "refusing to restore - encryption key '{id}' is passphrase protected and new to \
                 this store, and its key file is not proven to hold the key with fingerprint \
                 {}{found} - a protected key file only claims its fingerprint: it is stored only \
                 once the key's own passphrase decrypts it to that key - give the key's \
                 passphrase (the CLI's --key-passphrase-file FILE, the API's key-passphrase) and \
                 restore it again - nothing was restored",
                self.fingerprint.signature()
            );
        }
        match &self.why {
            Some(why) => write!(
                f,
                "refusing to restore - the key file of encryption key '{id}' is missing, and the \
                 key file given for it is not proven to be that key's ({why}) - a protected \
                 key's file is put back only from a key file the key's own passphrase decrypts \
                 to the key with fingerprint {} - nothing was restored",
                self.fingerprint.signature()
            ),
            None => write!(
                f,
                "refusing to restore - the key file of encryption key '{id}' is missing, and the \
                 key is passphrase protected: a protected key file only claims its fingerprint, \
                 so the one given is put back only once it is proven - give the key's \
                 passphrase (the CLI's --key-passphrase-file FILE, the API's key-passphrase) \
                 and restore it again - nothing was restored"
            ),
        }
    }
}

impl UnprovenKeyFile {
    /// The key as an item of a list of several: what it is here, the
    /// fingerprint, what the passphrase given found.
    fn fmt_item(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = &self.id;
        match self.new_key {
            true => write!(f, "encryption key '{id}' is new to this store")?,
            false => write!(f, "the key file of encryption key '{id}' is missing")?,
        }
        write!(f, " (fingerprint {}", self.fingerprint.signature())?;
        if let Some(why) = &self.why {
            write!(f, ", {why}")?;
        }
        f.write_str(")")
    }
}

/// Whether a restore was refused for want of a passphrase that proves
/// protected keys' files ([`UnprovenKeyFiles`]).
pub fn needs_key_passphrase(err: &Error) -> bool {
    err.chain().any(|cause| cause.is::<UnprovenKeyFiles>())
}

/// Whether a restore was refused for key files given with the other
/// protection than the store's keys ([`OtherProtections`]).
pub fn holds_other_protection(err: &Error) -> bool {
    err.chain().any(|cause| cause.is::<OtherProtections>())
}

/// A restore that failed at key `id`: says which keys were restored before.
fn partial_restore(err: Error, id: &str, done: &[RestoredKey]) -> Error {
    let restored: Vec<String> = done
        .iter()
        .filter(|key| key.outcome == RestoreOutcome::Restored)
        .map(|key| format!("'{}'", key.id))
        .collect();
    let text = match restored.is_empty() {
        true => format!("failed to restore encryption key '{id}' - {err}"),
        false => format!(
            "failed to restore encryption key '{id}' - {err} - restored before the failure: {} \
             (run the restore again to restore the rest)",
            restored.join(", ")
        ),
    };
    err.context(text)
}

fn is_not_found(err: &Error) -> bool {
    matches!(
        err.downcast_ref::<KeystoreError>(),
        Some(KeystoreError::NotFound { .. })
    )
}

/// The config entry a restored key file gets when nothing else describes
/// it (a paperkey): its key file's metadata, active.
pub fn entry_of_key_file(id: &str, key_config: &KeyConfig) -> Result<CryptKey, Error> {
    let mut info = KeyInfo::from(key_config);
    info.fingerprint = Some(key_fingerprint(key_config)?);
    Ok(CryptKey {
        id: id.to_string(),
        info,
        archived_at: None,
    })
}

#[cfg(test)]
mod tests {
    use pbs_key_config::bundle::{BundleSecret, open_bundle};

    use super::*;
    use crate::{ConfigDir, Ownership};

    const PASS: &[u8] = b"export test passphrase";

    /// The names of the key directory a drill reads a key file of, where
    /// the config does not list its id (finding 71): key files and their
    /// temp files, each by the id it is of; nothing else.
    #[test]
    fn key_files_without_entry_are_named_by_their_id() {
        for (name, id) in [
            ("k-one.enc", Some("k-one")),
            ("k-one.enc.tmp_AbC123", Some("k-one")),
            // an id may hold what a temp file's name does
            ("a.enc.tmp_b12345.enc", Some("a.enc.tmp_b12345")),
            ("a.enc.tmp_b12345.enc.tmp_XyZ789", Some("a.enc.tmp_b12345")),
            ("k-one.enc.lck", None),
            ("k-one.enc.tmp_short", None),
            (".trash", None),
            ("ab.enc", None),
        ] {
            assert_eq!(unlisted_key_file_id(name), id, "{name}");
        }
    }

    fn store() -> (tempfile::TempDir, ConfigDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir =
            ConfigDir::with_ownership(tmp.path(), Ownership::current_user().unwrap()).unwrap();
        (tmp, dir)
    }

    fn key(seed: u8) -> KeyConfig {
        KeyConfig::without_password([seed; 32]).unwrap()
    }

    /// Every file of the store, for "nothing written" checks (lock files
    /// left out: a refused operation may take a lock).
    fn files(dir: &ConfigDir) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        fn walk(path: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
            for entry in std::fs::read_dir(path).into_iter().flatten() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if !path.to_string_lossy().ends_with(".lck") {
                    out.push((path.clone(), std::fs::read(&path).unwrap()));
                }
            }
        }
        let mut out = Vec::new();
        walk(dir.base(), &mut out);
        out.sort();
        out
    }

    /// The keys of `dir`'s bundle of every key, opened.
    fn bundle_of_all(dir: &ConfigDir) -> pbs_key_config::bundle::OpenedBundle {
        let selection = ExportSelection::All {
            include_archived: true,
        };
        let bundle = dir
            .encryption_keys()
            .export_bundle(
                &selection,
                &[ExportRecipient::Passphrase(PASS)],
                &|_| Ok(()),
            )
            .unwrap();
        open_bundle(&bundle, &BundleSecret::Passphrase(PASS)).unwrap()
    }

    fn restore_keys_of(bundle: &pbs_key_config::bundle::OpenedBundle) -> Vec<RestoreKey<'_>> {
        bundle
            .entries()
            .iter()
            .map(|entry| RestoreKey {
                entry: entry.config().clone(),
                key_config: entry.key_config(),
                key_file: entry.key_file(),
            })
            .collect()
    }

    /// The passphrase of the protected key `k-prot` of [`ProtectedKey`].
    const RIGHT: &[u8] = b"the key's own passphrase";
    /// A forger's passphrase.
    const OTHER: &[u8] = b"the forger's passphrase";

    /// A store holding one protected key, `k-prot` (passphrase [`RIGHT`]),
    /// a bundle of it, and a forgery: another key, protected under
    /// [`OTHER`], claiming k-prot's fingerprint.
    struct ProtectedKey {
        real: pbs_key_config::bundle::OpenedBundle,
        /// k-prot's key file as stored.
        original: Vec<u8>,
        entry: CryptKey,
        forged: KeyConfig,
    }

    impl ProtectedKey {
        fn stored_in(dir: &ConfigDir) -> Self {
            use pbs_api_types::Kdf;

            let keys = dir.encryption_keys();
            let real_key = KeyConfig::with_key(&[7; 32], RIGHT, Kdf::PBKDF2).unwrap();
            keys.store_key("k-prot", &real_key).unwrap();
            let real = bundle_of_all(dir);
            let original = std::fs::read(keys.key_path("k-prot")).unwrap();
            let entry = keys.entry("k-prot").unwrap();
            let mut forged = KeyConfig::with_key(&[43; 32], OTHER, Kdf::PBKDF2).unwrap();
            forged.fingerprint = entry.info.fingerprint;
            Self {
                real,
                original,
                entry,
                forged,
            }
        }
    }

    #[test]
    fn restore_into_a_fresh_store_keeps_archived_keys_archived_and_again_is_a_no_op() {
        let (_tmp, source) = store();
        let keys = source.encryption_keys();
        keys.store_key("k-active", &key(1)).unwrap();
        keys.store_key("k-archived", &key(2)).unwrap();
        keys.archive_key("k-archived", None).unwrap();
        let bundle = bundle_of_all(&source);

        let (_tmp2, target) = store();
        let restored = target
            .encryption_keys()
            .restore_keys(&restore_keys_of(&bundle), None)
            .unwrap();
        assert_eq!(
            restored
                .iter()
                .map(|key| (key.id.as_str(), key.outcome, key.archived_at.is_some()))
                .collect::<Vec<_>>(),
            [
                ("k-active", RestoreOutcome::Restored, false),
                ("k-archived", RestoreOutcome::Restored, true)
            ]
        );
        // the entries as they were, but for the path
        let (original, _) = keys.list_keys(true).unwrap();
        let (copy, _) = target.encryption_keys().list_keys(true).unwrap();
        let without_path = |list: Vec<CryptKey>| {
            list.into_iter()
                .map(|mut key| {
                    key.info.path = None;
                    key
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(without_path(original), without_path(copy.clone()));
        for key in &copy {
            assert!(target.encryption_keys().check_entry_path(key).unwrap());
            target.encryption_keys().load_key(&key.id, false).unwrap();
        }

        let before = files(&target);
        let again = target
            .encryption_keys()
            .restore_keys(&restore_keys_of(&bundle), None)
            .unwrap();
        assert!(
            again
                .iter()
                .all(|key| key.outcome == RestoreOutcome::AlreadyPresent)
        );
        assert_eq!(files(&target), before);
    }

    #[test]
    fn restore_puts_back_a_missing_key_file_and_refuses_a_broken_one() {
        let (_tmp, dir) = store();
        let keys = dir.encryption_keys();
        keys.store_key("k-one", &key(1)).unwrap();
        keys.store_key("k-two", &key(2)).unwrap();
        let bundle = bundle_of_all(&dir);
        let k_one = keys.key_path("k-one");
        let original = std::fs::read(&k_one).unwrap();
        std::fs::remove_file(&k_one).unwrap();
        // the drill says the entry is there but the key does not load
        let checks = keys.compare_bundle(&bundle.header().keys).unwrap();
        assert_eq!(checks[0].store, StoreState::PresentEqual);
        assert!(
            checks[0]
                .store_problem
                .as_deref()
                .unwrap()
                .contains("is missing"),
            "{checks:?}"
        );
        assert!(checks[1].store_problem.is_none());

        let restored = keys.restore_keys(&restore_keys_of(&bundle), None).unwrap();
        assert_eq!(restored[0].outcome, RestoreOutcome::KeyFileRestored);
        assert_eq!(restored[1].outcome, RestoreOutcome::AlreadyPresent);
        assert_eq!(std::fs::read(&k_one).unwrap(), original);
        keys.load_key("k-one", true).unwrap();
        assert!(dir.verify(false).unwrap().is_clean());

        // a key file that is there but broken is left alone, nothing written
        std::fs::write(&k_one, key(9).to_json().unwrap()).unwrap();
        let before = files(&dir);
        let err = keys
            .restore_keys(&restore_keys_of(&bundle), None)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("encryption key 'k-one' is in the store, but"),
            "{err}"
        );
        assert_eq!(files(&dir), before);
    }

    /// The missing key file of an unprotected key is put back only from a
    /// key file whose key is that key: a protected key file that merely
    /// claims its fingerprint (a bundle made by hand, as for finding 26)
    /// would take its place, load, and make the real key's restore a
    /// no-op ("already present"). Refused, nothing written; the real one
    /// restores after it (finding 31).
    #[test]
    fn a_missing_key_file_is_not_put_back_from_a_key_that_only_claims_it() {
        use pbs_api_types::Kdf;

        let (_tmp, dir) = store();
        let keys = dir.encryption_keys();
        keys.store_key("k-one", &key(1)).unwrap();
        let real = bundle_of_all(&dir);
        let k_one = keys.key_path("k-one");
        std::fs::remove_file(&k_one).unwrap();

        let mut entry = keys.entry("k-one").unwrap();
        let mut forged = KeyConfig::with_key(&[43; 32], b"whatever", Kdf::PBKDF2).unwrap();
        forged.fingerprint = entry.info.fingerprint;
        entry.info.kdf = Kdf::PBKDF2;
        let forged_file = forged.to_json().unwrap();
        let before = files(&dir);
        let err = keys
            .restore_keys(
                &[RestoreKey {
                    entry,
                    key_config: &forged,
                    key_file: forged_file.as_bytes(),
                }],
                None,
            )
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("is not protected in the store"),
            "{err:#}"
        );
        assert_eq!(files(&dir), before);
        // such a file put there by hand does not load, and verify names it
        std::fs::write(&k_one, forged_file.as_bytes()).unwrap();
        std::fs::set_permissions(&k_one, std::os::unix::fs::PermissionsExt::from_mode(0o640))
            .unwrap();
        let err = keys.load_key("k-one", false).unwrap_err();
        assert!(
            format!("{err:#}").contains("only claims the key's fingerprint"),
            "{err:#}"
        );
        assert!(!dir.verify(false).unwrap().is_clean());
        std::fs::remove_file(&k_one).unwrap();
        let restored = keys.restore_keys(&restore_keys_of(&real), None).unwrap();
        assert_eq!(restored[0].outcome, RestoreOutcome::KeyFileRestored);
        keys.load_key("k-one", true).unwrap();
    }

    /// The missing key file of a protected key is put back only from a key
    /// file that is proven to hold that key: decrypted with the key's
    /// passphrase, its key has the entry's fingerprint. Before, any
    /// protected key file claiming the fingerprint (a bundle made by hand,
    /// another key under another passphrase) was written as the key's
    /// file: `verify` was clean, and the real bundle's restore then said
    /// "already present" (finding 33).
    #[test]
    fn a_protected_keys_missing_file_is_put_back_only_from_a_proven_key_file() {
        let (_tmp, dir) = store();
        let keys = dir.encryption_keys();
        let ProtectedKey {
            real,
            original,
            entry,
            forged,
        } = ProtectedKey::stored_in(&dir);
        let k_prot = keys.key_path("k-prot");
        std::fs::remove_file(&k_prot).unwrap();

        let forged_file = forged.to_json().unwrap();
        let forged_keys = || {
            [RestoreKey {
                entry: entry.clone(),
                key_config: &forged,
                key_file: forged_file.as_bytes(),
            }]
        };
        let before = files(&dir);
        for (passphrase, needle) in [
            (None, "give the key's passphrase"),
            (Some(RIGHT), "wrong passphrase or corrupted key file"),
            (Some(OTHER), "only claims the key's fingerprint"),
        ] {
            let err = keys.restore_keys(&forged_keys(), passphrase).unwrap_err();
            let text = format!("{err:#}");
            assert!(
                text.contains("encryption key 'k-prot'") && text.contains(needle),
                "{needle:?} not in {text}"
            );
            assert!(text.contains("nothing was restored"), "{text}");
            assert_eq!(files(&dir), before, "{needle}");
        }

        // the real bundle: refused without the passphrase, restored with it
        let err = keys
            .restore_keys(&restore_keys_of(&real), None)
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("--key-passphrase-file"),
            "{err:#}"
        );
        assert_eq!(files(&dir), before);
        let restored = keys
            .restore_keys(&restore_keys_of(&real), Some(RIGHT))
            .unwrap();
        assert_eq!(restored[0].outcome, RestoreOutcome::KeyFileRestored);
        assert_eq!(std::fs::read(&k_prot).unwrap(), original);
        assert!(dir.verify(false).unwrap().is_clean());

        // a key whose file is there needs none
        let again = keys.restore_keys(&restore_keys_of(&real), None).unwrap();
        assert_eq!(again[0].outcome, RestoreOutcome::AlreadyPresent);
    }

    /// A protected key new to the store is stored only from a key file the
    /// restore's passphrase proves (finding 51): a forged file claiming its
    /// fingerprint would take it, and pass the drill as its copy.
    #[test]
    fn a_protected_key_new_to_the_store_is_stored_only_from_a_proven_key_file() {
        let (_tmp, source) = store();
        let ProtectedKey {
            real,
            original,
            entry,
            forged,
        } = ProtectedKey::stored_in(&source);
        let forged_file = forged.to_json().unwrap();
        let forged_keys = || {
            [RestoreKey {
                entry: entry.clone(),
                key_config: &forged,
                key_file: forged_file.as_bytes(),
            }]
        };

        let (_tmp2, fresh) = store();
        let fresh_keys = fresh.encryption_keys();
        let fresh_before = files(&fresh);
        for (keys_of, passphrase, needle) in [
            (Vec::from(forged_keys()), None, "give the key's passphrase"),
            (
                Vec::from(forged_keys()),
                Some(OTHER),
                "only claims the key's fingerprint",
            ),
            (restore_keys_of(&real), None, "give the key's passphrase"),
        ] {
            let err = fresh_keys.restore_keys(&keys_of, passphrase).unwrap_err();
            let text = format!("{err:#}");
            assert!(
                text.contains("encryption key 'k-prot' is passphrase protected and new")
                    && text.contains(needle),
                "{needle:?} not in {text}"
            );
            assert_eq!(files(&fresh), fresh_before, "{needle}");
        }
        let restored = fresh_keys
            .restore_keys(&restore_keys_of(&real), Some(RIGHT))
            .unwrap();
        assert_eq!(restored[0].outcome, RestoreOutcome::Restored);
        assert_eq!(
            std::fs::read(fresh_keys.key_path("k-prot")).unwrap(),
            original
        );
    }

    #[test]
    fn restore_refuses_a_taken_id_or_fingerprint_naming_both_and_writes_nothing() {
        let (_tmp, source) = store();
        let keys = source.encryption_keys();
        keys.store_key("k-one", &key(1)).unwrap();
        keys.store_key("k-two", &key(2)).unwrap();
        keys.store_key("k-three", &key(3)).unwrap();
        let bundle = bundle_of_all(&source);

        let (_tmp2, target) = store();
        let target_keys = target.encryption_keys();
        // k-one's id with another key; k-two's key under another id;
        // k-three absent (would be restored, but nothing is)
        target_keys.store_key("k-one", &key(9)).unwrap();
        target_keys.store_key("other-id", &key(2)).unwrap();
        let before = files(&target);
        let err = target_keys
            .restore_keys(&restore_keys_of(&bundle), None)
            .unwrap_err();
        let Some(KeystoreError::BundleConflict { conflicts }) = err.downcast_ref() else {
            panic!("not a conflict: {err}");
        };
        assert_eq!(conflicts.len(), 2, "{err}");
        let text = err.to_string();
        for needle in [
            "key 'k-one' (fingerprint",
            &format!(
                "with another key (fingerprint {})",
                key(9).fingerprint.unwrap().signature()
            ),
            "key 'k-two' (fingerprint",
            "the store has this key as 'other-id'",
            "nothing was restored",
        ] {
            assert!(text.contains(needle), "{needle:?} not in {text}");
        }
        assert_eq!(files(&target), before);
        assert!(target_keys.entry("k-three").is_err());
    }

    #[test]
    fn export_refuses_unknown_repeated_and_broken_keys() {
        let (_tmp, dir) = store();
        let keys = dir.encryption_keys();
        let recipients = [ExportRecipient::Passphrase(PASS)];
        let export =
            |selection: ExportSelection| keys.export_bundle(&selection, &recipients, &|_| Ok(()));
        // nothing in the store, nothing created by asking
        let err = export(ExportSelection::All {
            include_archived: false,
        })
        .unwrap_err();
        assert!(err.to_string().contains("no keys to export"), "{err}");
        assert!(!dir.base().join("encryption-keys.cfg").exists());

        keys.store_key("k-one", &key(1)).unwrap();
        keys.store_key("k-two", &key(2)).unwrap();
        let err = export(ExportSelection::Ids(vec!["nope-1".into()])).unwrap_err();
        assert!(
            matches!(err.downcast_ref(), Some(KeystoreError::NotFound { .. })),
            "{err}"
        );
        let err = export(ExportSelection::Ids(vec!["k-one".into(), "k-one".into()])).unwrap_err();
        assert!(err.to_string().contains("named twice"), "{err}");
        // a refusal of the caller's check is returned as it is
        let err = keys
            .export_bundle(
                &ExportSelection::Ids(vec!["k-two".into()]),
                &recipients,
                &|key| bail!("no privilege on '{}'", key.id),
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "no privilege on 'k-two'");

        // swapped key files: nothing is exported, the error names the key
        let key_dir = keys.key_dir();
        std::fs::rename(key_dir.join("k-one.enc"), key_dir.join("swap")).unwrap();
        std::fs::rename(key_dir.join("k-two.enc"), key_dir.join("k-one.enc")).unwrap();
        std::fs::rename(key_dir.join("swap"), key_dir.join("k-two.enc")).unwrap();
        let err = export(ExportSelection::Ids(vec!["k-one".into()])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("refusing to export encryption key 'k-one'"),
            "{err}"
        );
    }

    #[test]
    fn compare_tells_equal_different_and_absent() {
        let (_tmp, source) = store();
        for (id, seed) in [("k-one", 1), ("k-two", 2), ("k-three", 3)] {
            source.encryption_keys().store_key(id, &key(seed)).unwrap();
        }
        let bundle = bundle_of_all(&source);
        let (_tmp2, target) = store();
        let target_keys = target.encryption_keys();
        // nothing at all: every key absent, nothing created
        let checks = target_keys.compare_bundle(&bundle.header().keys).unwrap();
        assert!(checks.iter().all(|c| c.store == StoreState::Absent));
        assert!(files(&target).is_empty());

        target_keys.store_key("k-one", &key(1)).unwrap();
        target_keys.store_key("k-two", &key(7)).unwrap();
        target_keys.store_key("moved", &key(3)).unwrap();
        let checks = target_keys.compare_bundle(&bundle.header().keys).unwrap();
        assert_eq!(checks[0].store, StoreState::PresentEqual);
        assert_eq!(checks[1].store, StoreState::PresentDifferent);
        assert_eq!(checks[1].store_fingerprint, key(7).fingerprint);
        assert_eq!(checks[2].store, StoreState::Absent);
        assert_eq!(checks[2].stored_as.as_deref(), Some("moved"));
    }
}
