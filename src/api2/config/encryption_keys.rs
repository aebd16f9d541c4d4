//! `/config/encryption-keys`: list, create or import, archive state, delete
//! (into the trash, `/config/encryption-key-trash`).
//!
//! PBS-compatible handlers (`list_keys`, `create_key`,
//! `toggle_key_archive_state`, `delete_key`) plus this project's additions
//! (`show_key`, `archive_key`, `unarchive_key`, `verify_key`, `verify_keys`),
//! as plain functions over a [`ConfigDir`] that the CLI calls as the
//! administrator. Each route's `API_METHOD_*` sits beside its function:
//! parameter schema, return schema, permission and a thin handler that
//! takes the config dir and caller from the [`RestEnvironment`]; [`ROUTER`]
//! puts them at their paths. The list needs no privilege as such: it holds
//! the keys the caller has `Sys.Audit` on (`/system/encryption-keys/{id}`).
//!
//! List and show say which sync jobs need each key (`active-in`,
//! `associated-in`), read from `sync.cfg` when asked, so they never differ
//! from what archive and delete check.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Error, format_err};
use serde::{Serialize, Serializer};
use serde_json::Value;

use proxmox_lang::error::ErrorLayer;
use proxmox_router::{
    ApiHandler, ApiMethod, Permission, ReturnType, Router, RpcEnvironment, SerializableReturn,
};
use proxmox_schema::{
    AllOfSchema, ApiType, ArraySchema, BooleanSchema, IntegerSchema, ObjectSchema, Schema,
    StringSchema, param_bail, param_format_err,
};

use pbs_api_types::{
    CRYPT_KEY_ID_SCHEMA, CryptKey, Fingerprint, KEY_HINT_SCHEMA, PROXMOX_CONFIG_DIGEST_SCHEMA,
};
use pbs_config::encryption_keys::{DeleteOptions, Deleted};
use pbs_config::sync::{KeyUsage, KeyUsers};
use pbs_config::trash::{DEFAULT_KEEP_DAYS, MAX_KEEP_DAYS};
use pbs_config::verify::VerifyReport;
use pbs_config::{ConfigDir, KeyIndex, ListEntry};
use pbs_key_config::{KeyConfig, KeyError};

use super::{KEY_AUDIT, KEY_MODIFY, KeyAccess, STORE_MODIFY};
use crate::api2::config::encryption_key_audit::{self, AuditMarks};
use crate::api2::described_object;
use crate::api2::parse_digest;
use crate::api2::{param_str, required_str};
use crate::server::environment::RestEnvironment;
use crate::server::permission::check_permission;

/// `include-archived`: also list archived keys.
pub const INCLUDE_ARCHIVED_SCHEMA: Schema =
    BooleanSchema::new("Include archived keys in the list.")
        .default(false)
        .schema();

/// `key`: a KeyConfig (the `.enc` JSON) to import instead of creating a key.
pub const IMPORT_KEY_SCHEMA: Schema = StringSchema::new(
    "Use provided key instead of creating new one (KeyConfig JSON, or paperkey text; a \
     protected key needs its passphrase).",
)
.max_length(pbs_key_config::MAX_KEY_FILE_SIZE as usize)
.schema();

/// `passphrase`: of a protected key to import, or of an export bundle.
pub const PASSPHRASE_SCHEMA: Schema = StringSchema::new(
    "A passphrase: of the protected key to import (it is stored unprotected), or of an export \
     bundle. Request bodies only, never the URL.",
)
.min_length(pbs_key_config::MIN_PASSPHRASE_LEN)
.max_length(1024)
.schema();

/// `unused`: only archived keys no sync job names.
pub const UNUSED_SCHEMA: Schema =
    BooleanSchema::new("Only archived keys that no sync job names (the candidates for deletion).")
        .default(false)
        .schema();

const JOB_IDS_SCHEMA: Schema =
    ArraySchema::new("Sync job ids.", &pbs_api_types::JOB_ID_SCHEMA).schema();

const KEY_USERS_SCHEMA: Schema = ObjectSchema::new(
    "The sync jobs that name the key (absent: none).",
    &[
        ("active-in", true, &JOB_IDS_SCHEMA),
        ("associated-in", true, &JOB_IDS_SCHEMA),
    ],
)
.schema();

/// The schema of what list and show return, for documentation: the key's
/// config entry and the sync jobs that name it.
pub const CRYPT_KEY_RETURN_SCHEMA: Schema = AllOfSchema::new(
    "Encryption key with metadata, and the sync jobs that use it.",
    &[&CryptKey::API_SCHEMA, &KEY_USERS_SCHEMA],
)
.schema();

/// A key and the sync jobs that name it: what list and show return (the
/// config entry's properties, then `active-in` and `associated-in` when
/// not empty). `K` and `U` are [`CryptKey`] and [`KeyUsers`], owned or
/// borrowed.
#[derive(Clone, Debug, Serialize)]
pub struct KeyEntry<K, U> {
    /// The config entry.
    #[serde(flatten)]
    pub key: K,
    /// The jobs that name it.
    #[serde(flatten)]
    pub users: U,
}

/// Checks `id` against [`CRYPT_KEY_ID_SCHEMA`]; the error quotes the id
/// (escaped) and says what a valid one looks like.
pub(crate) fn check_id(id: &str) -> Result<(), Error> {
    if let Err(err) = pbs_config::encryption_keys::check_key_id(id) {
        param_bail!("id", "{err}");
    }
    Ok(())
}

/// `audit-marks`: each key with what the audit log says about it.
pub const AUDIT_MARKS_SCHEMA: Schema = BooleanSchema::new(
    "Add to each key what the audit log says about it, as show does (last-exported, \
     last-export-verify, last-changed-by), read in one pass over the log.",
)
.default(false)
.schema();

/// `no-verified-copy`: only keys no verified copy of is recorded.
pub const NO_VERIFIED_COPY_SCHEMA: Schema = BooleanSchema::new(
    "Only keys, active or archived, of which no verified copy is recorded (no export bundle \
     holding them passed export-verify): the keys this host's loss would lose.",
)
.default(false)
.schema();

/// Which keys a list holds (besides what the caller may see).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Archived keys too (else active ones only).
    pub include_archived: bool,
    /// Only archived keys no sync job names.
    pub unused: bool,
    /// Only keys of which the audit log records no verified copy
    /// ([`pbs_config::verified_copy`]), archived ones included: an
    /// archived key still decrypts the backups made with it.
    pub no_verified_copy: bool,
}

impl ListFilter {
    fn lists(&self, archived: bool, users: &KeyUsers) -> bool {
        match self.unused {
            true => archived && users.is_empty(),
            false => self.include_archived || self.no_verified_copy || !archived,
        }
    }
}

/// Lists the keys the caller may see (`visible(id)`), active ones only
/// unless `include_archived`; returns them with the hex config digest.
pub fn list_keys(
    dir: &ConfigDir,
    include_archived: bool,
    visible: impl Fn(&str) -> bool,
) -> Result<(Vec<CryptKey>, String), Error> {
    let (index, digest) = dir.encryption_keys().index()?;
    let list = visible_keys(&index, include_archived, visible)?
        .into_iter()
        .cloned()
        .collect();
    Ok((list, hex::encode(digest)))
}

/// The entries of `index` that [`list_keys`] returns, borrowed.
///
/// # Errors
///
/// The first invalid entry, naming its id (as upstream's list fails).
pub fn visible_keys(
    index: &KeyIndex,
    include_archived: bool,
    visible: impl Fn(&str) -> bool,
) -> Result<Vec<&CryptKey>, Error> {
    Ok(index
        .entries()?
        .filter(|key| (include_archived || key.archived_at.is_none()) && visible(&key.id))
        .collect())
}

/// The keys the caller may see (`visible(id)`) that `filter` lets through,
/// each with the sync jobs that name it, and the hex config digest.
///
/// # Errors
///
/// An invalid key entry, or a `sync.cfg` that cannot be read (the list
/// does not guess who needs a key).
pub fn list_keys_with_users(
    dir: &ConfigDir,
    filter: ListFilter,
    visible: impl Fn(&str) -> bool,
) -> Result<(KeyList, String), Error> {
    let (index, digest) = dir.encryption_keys().index()?;
    Ok((key_list(dir, index, filter, visible)?, hex::encode(digest)))
}

/// [`list_keys_with_users`] without the digest, which costs a hash of the
/// whole file (a third of a fresh `list` process's instructions at 100,000
/// keys): for a caller that has no use for it, such as the CLI.
///
/// # Errors
///
/// As [`list_keys_with_users`].
pub fn list_keys_with_users_undigested(
    dir: &ConfigDir,
    filter: ListFilter,
    visible: impl Fn(&str) -> bool,
) -> Result<KeyList, Error> {
    let index = dir.encryption_keys().index_data()?;
    key_list(dir, index, filter, visible)
}

fn key_list(
    dir: &ConfigDir,
    index: Arc<KeyIndex>,
    filter: ListFilter,
    visible: impl Fn(&str) -> bool,
) -> Result<KeyList, Error> {
    let usage = dir.sync_jobs().key_usage()?;
    // from each entry's text where it can (KeyIndex::list_entry): a list
    // types no entry before it is serialized, and the CLI's JSON none at all
    let mut listed = Vec::new();
    for (position, id) in index.ids().enumerate() {
        let entry = index.list_entry(position)?;
        if filter.lists(entry.is_archived(), usage.of(id)) && visible(id) {
            listed.push(entry);
        }
    }
    if filter.no_verified_copy {
        listed = without_verified_copy(dir, &index, listed)?;
    }
    Ok(KeyList {
        index,
        usage,
        listed,
    })
}

/// The entries of `listed` of which no verified copy is recorded, in one
/// read of the audit log. A key without a fingerprint in its entry cannot
/// have one (a drill records fingerprints), so it stays.
///
/// # Errors
///
/// An audit log that cannot be read: the list does not guess.
fn without_verified_copy(
    dir: &ConfigDir,
    index: &KeyIndex,
    listed: Vec<ListEntry>,
) -> Result<Vec<ListEntry>, Error> {
    let mut fingerprints = Vec::with_capacity(listed.len());
    for entry in &listed {
        fingerprints.push(index.get(index.id_at(entry.position()))?.info.fingerprint);
    }
    let known: Vec<Fingerprint> = fingerprints.iter().flatten().copied().collect();
    let mut copies = dir.verified_copies(&known)?.into_iter();
    let mut uncopied = Vec::new();
    for (entry, fingerprint) in listed.into_iter().zip(&fingerprints) {
        // `copies` holds one answer per known fingerprint, in their order
        let copied = fingerprint.is_some() && copies.next().flatten().is_some();
        if !copied {
            uncopied.push(entry);
        }
    }
    Ok(uncopied)
}

/// Parameters of `GET /config/encryption-keys`.
pub const API_METHOD_LIST_KEYS_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "List encryption keys.",
    &[
        ("audit-marks", true, &AUDIT_MARKS_SCHEMA),
        ("include-archived", true, &INCLUDE_ARCHIVED_SCHEMA),
        ("no-verified-copy", true, &NO_VERIFIED_COPY_SCHEMA),
        ("unused", true, &UNUSED_SCHEMA),
    ],
);

const CRYPT_KEY_LIST_SCHEMA: Schema =
    ArraySchema::new("The keys the caller may see.", &CRYPT_KEY_RETURN_SCHEMA).schema();

/// `GET /config/encryption-keys`: [`list_keys_with_users`] for the caller,
/// with the config digest.
pub const API_METHOD_LIST_KEYS: ApiMethod = ApiMethod::new(
    &ApiHandler::SerializingSync(&api_list_keys),
    &API_METHOD_LIST_KEYS_PARAMETERS,
)
.returns(ReturnType::new(false, &CRYPT_KEY_LIST_SCHEMA))
.access(
    Some("the list holds only keys with Sys.Audit on `/system/encryption-keys/{id}`"),
    &Permission::Anybody,
);

/// What the list returns: the entries of the (daemon's cached) index that
/// are listed, each with its jobs, serialized from the index itself, so
/// 100,000 entries are neither copied nor turned into `serde_json::Value`s
/// first (docs/performance.md).
pub struct KeyList {
    index: Arc<KeyIndex>,
    usage: KeyUsage,
    /// the listed entries, in index order (all valid), as the filter read
    /// them
    listed: Vec<ListEntry>,
}

impl KeyList {
    /// The listed keys, each with the jobs that name it, in file order.
    ///
    /// # Errors
    ///
    /// The first entry the typed form cannot hold, naming its id (the
    /// list's check read each entry from its text; the typed reader is
    /// proven to agree, so this is not expected).
    pub fn entries(&self) -> Result<impl Iterator<Item = KeyEntry<&CryptKey, &KeyUsers>>, Error> {
        let mut listed = self.listed.iter().map(ListEntry::position).peekable();
        Ok(self
            .index
            .entries()?
            .enumerate()
            .filter_map(move |(position, key)| listed.next_if_eq(&position).map(|_| key))
            .map(|key| KeyEntry {
                key,
                users: self.usage.of(&key.id),
            }))
    }

    /// Writes the list to `out` as the compact JSON its `Serialize` gives
    /// through `serde_json`, byte for byte, each key written from its
    /// config text ([`KeyIndex::write_json`]) instead of typed first: what
    /// `proxmox-backup-manager encryption-key list --output-format json`
    /// prints.
    ///
    /// # Errors
    ///
    /// A failed write.
    pub fn write_json(&self, out: &mut impl std::io::Write) -> Result<(), Error> {
        let write = |out: &mut dyn std::io::Write, buf: &[u8]| {
            out.write_all(buf)
                .map_err(|err| format_err!("unable to write the key list - {err}"))
        };
        let mut buf = Vec::with_capacity(1 << 16);
        buf.push(b'[');
        let mut first = true;
        for listed in &self.listed {
            if !std::mem::take(&mut first) {
                buf.push(b',');
            }
            self.index.write_json(listed, &mut buf)?;
            let users = self.usage.of(self.index.id_at(listed.position()));
            if !users.is_empty() {
                // KeyEntry flattens the users after the key's fields
                let object = serde_json::to_vec(users)?;
                buf.pop(); // the key's '}'
                buf.push(b',');
                buf.extend_from_slice(&object[1..]);
            }
            if buf.len() >= 1 << 16 {
                write(out, &buf)?;
                buf.clear();
            }
        }
        buf.push(b']');
        write(out, &buf)
    }
}

impl Serialize for KeyList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.entries().map_err(serde::ser::Error::custom)?)
    }
}

fn api_list_keys(
    param: Value,
    _method: &ApiMethod,
    rpcenv: &mut dyn RpcEnvironment,
) -> Result<Box<dyn SerializableReturn + Send>, Error> {
    let filter = ListFilter {
        include_archived: param["include-archived"].as_bool().unwrap_or(false),
        unused: param["unused"].as_bool().unwrap_or(false),
        no_verified_copy: param["no-verified-copy"].as_bool().unwrap_or(false),
    };
    let env = RestEnvironment::of(rpcenv)?;
    let access = KeyAccess::of(env)?;
    let (list, digest) = list_keys_with_users(env.dir(), filter, |id| access.may_see(id))?;
    let marks = match param["audit-marks"].as_bool().unwrap_or(false) {
        true => {
            let keys: Vec<&CryptKey> = list.entries()?.map(|entry| entry.key).collect();
            Some(encryption_key_audit::keys_marks(env.dir(), &keys)?)
        }
        false => None,
    };
    rpcenv["digest"] = digest.into();
    Ok(match marks {
        Some(marks) => Box::new(MarkedKeyList { list, marks }),
        None => Box::new(list),
    })
}

/// A list with what the audit log says about each key
/// (`audit-marks`): each entry as `show` gives it.
pub struct MarkedKeyList {
    list: KeyList,
    /// In the order of the list's entries.
    marks: Vec<AuditMarks>,
}

impl Serialize for MarkedKeyList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = self.list.entries().map_err(serde::ser::Error::custom)?;
        serializer.collect_seq(
            entries
                .zip(&self.marks)
                .map(|(entry, marks)| KeyDetails { entry, marks }),
        )
    }
}

/// One key's metadata (never its bytes).
pub fn show_key(dir: &ConfigDir, id: &str) -> Result<CryptKey, Error> {
    check_id(id)?;
    dir.encryption_keys().entry(id)
}

/// One key's metadata and the sync jobs that name it.
///
/// # Errors
///
/// No such key, or a `sync.cfg` that cannot be read.
pub fn show_key_with_users(
    dir: &ConfigDir,
    id: &str,
) -> Result<KeyEntry<CryptKey, KeyUsers>, Error> {
    let key = show_key(dir, id)?;
    let usage = dir.sync_jobs().key_usage()?;
    let users = usage.of(id).clone();
    Ok(KeyEntry { key, users })
}

/// What `show` returns: the key, the sync jobs that name it, and what the
/// audit log says about it (last exported, last export verified, last
/// changed by; see [`encryption_key_audit::key_marks`]). `K`, `U` and `M`
/// are [`CryptKey`], [`KeyUsers`] and [`AuditMarks`], owned or borrowed
/// (a list with `audit-marks` gives its entries so).
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyDetails<K = CryptKey, U = KeyUsers, M = AuditMarks> {
    /// The key and the jobs that name it.
    #[serde(flatten)]
    pub entry: KeyEntry<K, U>,
    /// From the audit log.
    #[serde(flatten)]
    pub marks: M,
}

/// [`show_key_with_users`] and what the audit log says about the key.
pub fn show_key_details(dir: &ConfigDir, id: &str) -> Result<KeyDetails, Error> {
    let entry = show_key_with_users(dir, id)?;
    let marks = encryption_key_audit::key_marks(dir, &entry.key)?;
    Ok(KeyDetails { entry, marks })
}

const KEY_DETAILS_RETURN_SCHEMA: Schema = described_object(
    "The key's config entry (CryptKey), the sync jobs that name it (active-in, associated-in) \
     and, from the audit log, last-exported, last-export-verify and last-changed-by (each time, \
     actor, unix-user, origin, op, seq; absent until there is a record).",
);

/// Parameters of `GET /config/encryption-keys/{id}`.
pub const API_METHOD_SHOW_KEY_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Show one encryption key's metadata.",
    &[("id", false, &CRYPT_KEY_ID_SCHEMA)],
);

/// `GET /config/encryption-keys/{id}` (beyond upstream):
/// [`show_key_details`].
pub const API_METHOD_SHOW_KEY: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        show_key_details(env.dir(), required_str(&param, "id")?)?
    }),
    &API_METHOD_SHOW_KEY_PARAMETERS,
)
.returns(ReturnType::new(false, &KEY_DETAILS_RETURN_SCHEMA))
.access(None, &KEY_AUDIT);

/// Creates a new random unprotected key under `id`, or imports `key` (a
/// KeyConfig JSON document). Protected keys are refused, as upstream does.
/// Returns the stored KeyConfig: the only time the key leaves the server.
pub fn create_key(dir: &ConfigDir, id: &str, key: Option<&str>) -> Result<KeyConfig, Error> {
    create_key_with(dir, id, key, &KeyOptions::default())
}

/// What [`create_key_with`] takes beyond upstream's call.
#[derive(Clone, Copy, Default)]
pub struct KeyOptions<'a> {
    /// A hint to store with the key (replaces the key file's).
    pub hint: Option<&'a str>,
    /// The passphrase of a protected key to import.
    pub passphrase: Option<&'a [u8]>,
}

/// [`create_key`] with `options`: a hint, and the passphrase of a
/// protected key to import (scrypt or PBKDF2, as `proxmox-backup-client
/// key create` makes them; upstream refuses them), which is decrypted,
/// checked against its fingerprint and stored unprotected, for unattended
/// use. `key` may be key file JSON or paperkey text.
pub fn create_key_with(
    dir: &ConfigDir,
    id: &str,
    key: Option<&str>,
    options: &KeyOptions,
) -> Result<KeyConfig, Error> {
    check_id(id)?;
    if let Some(hint) = options.hint
        && let Err(err) = KEY_HINT_SCHEMA.parse_simple_value(hint)
    {
        param_bail!("hint", "{err}");
    }
    let imported = key.is_some();
    let mut key_config = match key {
        Some(text) => {
            let parsed = pbs_key_config::paperkey::parse_key_file_or_paperkey(text)
                .layer_err(|| "failed to parse provided key")
                .map_err(|err| param_format_err!("key", "{err}"))?;
            match (parsed.is_protected(), options.passphrase) {
                (false, None) => parsed,
                (false, Some(_)) => param_bail!(
                    "passphrase",
                    "the key is not passphrase protected - leave the passphrase out"
                ),
                (true, None) => param_bail!(
                    "passphrase",
                    "the key is passphrase protected - give its passphrase to import it (it is \
                     stored unprotected, for unattended use)"
                ),
                (true, Some(passphrase)) => parsed
                    .to_unprotected(&|| Ok(passphrase.to_vec()))
                    .map_err(|err| super::encryption_key_export::blame_key_error(err, "key"))?,
            }
        }
        None => {
            if options.passphrase.is_some() {
                param_bail!("passphrase", "only for importing a protected key");
            }
            KeyConfig::generate_unprotected()?
        }
    };
    // a hint of the key file is checked by the store (`hint` too)
    if let Some(hint) = options.hint {
        key_config.hint = Some(hint.to_string());
    }
    let keys = dir.encryption_keys();
    // recorded in the audit log as an import (of a key file, paperkey text
    // or a protected key now stored unprotected: the record names id and
    // fingerprint, not the form it came in), or as a key made here
    let stored = match imported {
        true => keys.store_key(id, &key_config),
        false => keys.store_generated_key(id, &key_config),
    };
    stored.map_err(|err| {
        // a key that does not match its own fingerprint is bad input
        match err.chain().find_map(|e| e.downcast_ref::<KeyError>()) {
            Some(_) => param_format_err!("key", "{err}"),
            None => err,
        }
    })?;
    Ok(key_config)
}

/// Parameters of `POST /config/encryption-keys`.
pub const API_METHOD_CREATE_KEY_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Create a new encryption key, or import the provided one.",
    &[
        ("hint", true, &KEY_HINT_SCHEMA),
        ("id", false, &CRYPT_KEY_ID_SCHEMA),
        ("key", true, &IMPORT_KEY_SCHEMA),
        ("passphrase", true, &PASSPHRASE_SCHEMA),
    ],
);

const KEY_CONFIG_RETURN_SCHEMA: Schema =
    described_object("The stored key file (KeyConfig JSON): the one answer that holds key bytes.");

/// `POST /config/encryption-keys`: [`create_key`], under an id the
/// caller may change.
pub const API_METHOD_CREATE_KEY: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        let dir = env.dir();
        let id = required_str(&param, "id")?;
        // the id the key is stored under, before the store is asked, as a
        // restore asks it (finding 49): the refusal of a taken id tells
        // that the id exists
        let access = KeyAccess::of(env)?;
        access.check_modify([id])?;
        let options = KeyOptions {
            hint: param_str(&param, "hint"),
            passphrase: param_str(&param, "passphrase").map(str::as_bytes),
        };
        // the one answer that carries key material: the caller backs it up;
        // a key stored already names its id (finding 50)
        create_key_with(dir, id, param_str(&param, "key"), &options)
            .map_err(|err| access.withhold(err))?
    }),
    &API_METHOD_CREATE_KEY_PARAMETERS,
)
.returns(ReturnType::new(false, &KEY_CONFIG_RETURN_SCHEMA))
.access(
    Some(
        "and Sys.Modify on `/system/encryption-keys/{id}`, checked by the handler before the \
         store is asked (403 naming it)",
    ),
    &STORE_MODIFY,
);

/// Archives an active key or unarchives an archived one.
pub fn toggle_key_archive_state(
    dir: &ConfigDir,
    id: &str,
    digest: Option<&str>,
) -> Result<CryptKey, Error> {
    check_id(id)?;
    let digest = parse_digest(digest)?;
    let keys = dir.encryption_keys();
    let archived = keys.entry(id)?.archived_at.is_some();
    keys.set_archived(id, !archived, digest.as_ref())
}

/// Parameters of `POST` and `PUT /config/encryption-keys/{id}`.
pub const API_METHOD_TOGGLE_KEY_ARCHIVE_STATE_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Toggle the archive state of an encryption key.",
    &[
        ("digest", true, &PROXMOX_CONFIG_DIGEST_SCHEMA),
        ("id", false, &CRYPT_KEY_ID_SCHEMA),
    ],
);

/// `POST /config/encryption-keys/{id}`: [`toggle_key_archive_state`];
/// answers `null`.
pub const API_METHOD_TOGGLE_KEY_ARCHIVE_STATE: ApiMethod = ApiMethod::new(
    handler!(Sync, |param, env| {
        let dir = env.dir();
        let id = required_str(&param, "id")?;
        toggle_key_archive_state(dir, id, param_str(&param, "digest"))?;
        Value::Null
    }),
    &API_METHOD_TOGGLE_KEY_ARCHIVE_STATE_PARAMETERS,
)
.access(None, &KEY_MODIFY);

/// Archives a key (refused if it is archived already or a sync job uses it).
pub fn archive_key(dir: &ConfigDir, id: &str, digest: Option<&str>) -> Result<CryptKey, Error> {
    check_id(id)?;
    let digest = parse_digest(digest)?;
    dir.encryption_keys().archive_key(id, digest.as_ref())
}

/// Unarchives a key (refused if it is not archived).
pub fn unarchive_key(dir: &ConfigDir, id: &str, digest: Option<&str>) -> Result<CryptKey, Error> {
    check_id(id)?;
    let digest = parse_digest(digest)?;
    dir.encryption_keys().unarchive_key(id, digest.as_ref())
}

/// Deletes an archived key that no sync job references, into the trash
/// (as upstream's call, with no option of [`DeleteMode`]).
pub fn delete_key(dir: &ConfigDir, id: &str, digest: Option<&str>) -> Result<(), Error> {
    delete_key_with(dir, id, digest, &DeleteMode::default(), None).map(|_| ())
}

/// How a delete goes beyond upstream's (all optional; the default moves
/// the key file into the trash for [`DEFAULT_KEEP_DAYS`] days).
#[derive(Clone, Copy, Debug, Default)]
pub struct DeleteMode {
    /// Days in the trash before `trash purge --expired` may destroy it.
    pub keep_days: Option<u32>,
    /// Destroy the key file at once (upstream's delete).
    pub purge: bool,
    /// With `purge`: even though no verified copy of the key is recorded.
    pub without_verified_copy: bool,
    /// Drop a config entry whose key file is missing.
    pub force: bool,
}

/// Deletes an archived key that no sync job references, as `mode` says;
/// `warn` is told what a forced delete loses before anything changes.
pub fn delete_key_with(
    dir: &ConfigDir,
    id: &str,
    digest: Option<&str>,
    mode: &DeleteMode,
    warn: Option<&dyn Fn(&str)>,
) -> Result<Deleted, Error> {
    check_id(id)?;
    let digest = parse_digest(digest)?;
    if mode.purge && mode.keep_days.is_some() {
        param_bail!("keep-days", "not with purge: a purged key is not kept");
    }
    if mode.purge && mode.force {
        param_bail!("force", "not with purge");
    }
    if mode.without_verified_copy && !mode.purge {
        param_bail!("without-verified-copy", "goes with purge");
    }
    let options = DeleteOptions {
        digest: digest.as_ref(),
        keep_days: mode.keep_days.unwrap_or(DEFAULT_KEEP_DAYS),
        purge: mode.purge,
        without_verified_copy: mode.without_verified_copy,
        force: mode.force,
        warn,
        ..DeleteOptions::default()
    };
    dir.encryption_keys().delete_key_with(id, &options)
}

/// `keep-days`: days in the trash before `trash purge --expired`.
pub const KEEP_DAYS_SCHEMA: Schema = IntegerSchema::new(
    "Days the key stays in the trash before the daily purge may destroy it (default 30).",
)
.minimum(0)
.maximum(MAX_KEEP_DAYS as isize)
.schema();

/// `purge`: destroy the key file at once.
pub const PURGE_SCHEMA: Schema = BooleanSchema::new(
    "Destroy the key file at once instead of moving it into the trash (upstream's delete).",
)
.default(false)
.schema();

/// `without-verified-copy`: destroy a key even though no verified copy of
/// it is recorded (see [`pbs_config::verified_copy`]); needs Sys.Modify on
/// the whole key store.
pub const WITHOUT_VERIFIED_COPY_SCHEMA: Schema = BooleanSchema::new(
    "Destroy the key even though no verified copy of it is recorded (no export bundle holding \
     it passed export-verify): every backup encrypted with it is lost unless a copy exists \
     elsewhere. Needs Sys.Modify on /system/encryption-keys.",
)
.default(false)
.schema();

/// `force`: drop an entry whose key file is missing.
pub const FORCE_SCHEMA: Schema = BooleanSchema::new(
    "If the key file is missing, drop the config entry anyway (the key is lost unless a copy \
     is in the trash or elsewhere).",
)
.default(false)
.schema();

/// Parameters of `DELETE /config/encryption-keys/{id}`.
pub const API_METHOD_DELETE_KEY_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Remove an archived encryption key that no sync job uses.",
    &[
        ("digest", true, &PROXMOX_CONFIG_DIGEST_SCHEMA),
        ("force", true, &FORCE_SCHEMA),
        ("id", false, &CRYPT_KEY_ID_SCHEMA),
        ("keep-days", true, &KEEP_DAYS_SCHEMA),
        ("purge", true, &PURGE_SCHEMA),
        ("without-verified-copy", true, &WITHOUT_VERIFIED_COPY_SCHEMA),
    ],
);

/// `DELETE /config/encryption-keys/{id}`: [`delete_key`]; answers `null`.
pub const API_METHOD_DELETE_KEY: ApiMethod = ApiMethod::new(
    handler!(Sync, |param, env| {
        let dir = env.dir();
        let id = required_str(&param, "id")?;
        let mode = DeleteMode {
            keep_days: param["keep-days"].as_u64().map(|days| days as u32),
            purge: param["purge"].as_bool().unwrap_or(false),
            without_verified_copy: param["without-verified-copy"].as_bool().unwrap_or(false),
            force: param["force"].as_bool().unwrap_or(false),
        };
        if mode.without_verified_copy {
            // destroying a key no copy is known of: what `trash purge` of
            // it, and the drill that would record a copy, ask (finding 25)
            check_permission(env, &STORE_MODIFY, &HashMap::new())?;
        }
        // upstream answers null; what became of the key file shows in the trash
        delete_key_with(dir, id, param_str(&param, "digest"), &mode, None)?;
        Value::Null
    }),
    &API_METHOD_DELETE_KEY_PARAMETERS,
)
.access(None, &KEY_MODIFY);

/// Verifies (and with `repair`, repairs) the key store.
pub fn verify_keys(dir: &ConfigDir, repair: bool) -> Result<VerifyReport, Error> {
    dir.verify(repair)
}

/// The result of checking one key (`GET /config/encryption-keys/{id}/verify`).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct KeyVerification {
    /// The key id.
    pub id: String,
    /// The fingerprint the config entry records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Whether the key file loads and matches the config entry.
    pub ok: bool,
    /// What is wrong, if not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Checks one key: its key file loads, is safe (mode), and matches the
/// config entry's fingerprint (and the key bytes, for an unprotected key).
/// A missing id is an error; a broken key is a result with `ok: false`.
pub fn verify_key(dir: &ConfigDir, id: &str) -> Result<KeyVerification, Error> {
    let entry = show_key(dir, id)?;
    let result = dir.encryption_keys().load_key_config(id, false);
    Ok(KeyVerification {
        id: id.to_string(),
        fingerprint: entry.info.fingerprint.map(|fp| fp.signature()),
        ok: result.is_ok(),
        message: result.err().map(|err| err.to_string()),
    })
}

/// Parameters of `GET /config/encryption-keys/{id}/verify`.
pub const API_METHOD_VERIFY_KEY_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Check that a key file loads, has safe modes and matches its config entry.",
    &[("id", false, &CRYPT_KEY_ID_SCHEMA)],
);

const KEY_VERIFICATION_RETURN_SCHEMA: Schema = described_object(
    "The key id, its fingerprint, whether it is ok and, if not, why (KeyVerification).",
);

/// `GET /config/encryption-keys/{id}/verify` (beyond upstream):
/// [`verify_key`].
pub const API_METHOD_VERIFY_KEY: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        verify_key(env.dir(), required_str(&param, "id")?)?
    }),
    &API_METHOD_VERIFY_KEY_PARAMETERS,
)
.returns(ReturnType::new(false, &KEY_VERIFICATION_RETURN_SCHEMA))
.access(None, &KEY_AUDIT);

const VERIFY_ROUTER: Router = Router::new().get(&API_METHOD_VERIFY_KEY);

const ITEM_ROUTER: Router = Router::new()
    .get(&API_METHOD_SHOW_KEY)
    .post(&API_METHOD_TOGGLE_KEY_ARCHIVE_STATE)
    // PUT too: PBS clients update a config item with PUT
    .put(&API_METHOD_TOGGLE_KEY_ARCHIVE_STATE)
    .delete(&API_METHOD_DELETE_KEY)
    .subdirs(&[
        ("paperkey", &super::encryption_key_export::PAPERKEY_ROUTER),
        ("verify", &VERIFY_ROUTER),
    ]);

/// The routes of `/config/encryption-keys`.
pub const ROUTER: Router = Router::new()
    .get(&API_METHOD_LIST_KEYS)
    .post(&API_METHOD_CREATE_KEY)
    .match_all("id", &ITEM_ROUTER);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api2::test_util::{param_names, temp_config_dir};

    #[test]
    fn bad_parameters_name_the_parameter() {
        let (_tmp, dir) = temp_config_dir();
        assert_eq!(
            param_names(&create_key(&dir, "../x", None).unwrap_err()),
            ["id"]
        );
        assert_eq!(
            param_names(&create_key(&dir, "good-id", Some("{not json")).unwrap_err()),
            ["key"]
        );
        // a protected key needs its passphrase (upstream refuses it)
        let protected =
            KeyConfig::with_key(&[7; 32], b"passphrase", pbs_api_types::Kdf::PBKDF2).unwrap();
        let protected = protected.to_json().unwrap();
        let err = create_key(&dir, "good-id", Some(&protected)).unwrap_err();
        assert_eq!(param_names(&err), ["passphrase"]);
        assert!(err.to_string().contains("passphrase protected"), "{err}");
        let with = |passphrase: &'static [u8], hint: Option<&'static str>| KeyOptions {
            hint,
            passphrase: Some(passphrase),
        };
        let err =
            create_key_with(&dir, "good-id", Some(&protected), &with(b"wrong!", None)).unwrap_err();
        assert_eq!(param_names(&err), ["passphrase"]);
        assert!(err.to_string().contains("wrong passphrase"), "{err}");
        let err =
            create_key_with(&dir, "good-id", Some(&protected), &with(b"pass", None)).unwrap_err();
        assert_eq!(param_names(&err), ["passphrase"]);
        // a hint with a control character, in the option or in the file
        let err = create_key_with(
            &dir,
            "good-id",
            Some(&protected),
            &with(b"passphrase", Some("line\nbreak")),
        )
        .unwrap_err();
        assert_eq!(param_names(&err), ["hint"]);
        let mut hinted = KeyConfig::without_password([8; 32]).unwrap();
        hinted.hint = Some("tab\there".into());
        let err = create_key(&dir, "good-id", Some(&hinted.to_json().unwrap())).unwrap_err();
        assert_eq!(param_names(&err), ["hint"]);
        assert!(!dir.encryption_keys().key_path("good-id").exists());
        // the right passphrase: stored unprotected, same key
        let stored = create_key_with(
            &dir,
            "good-id",
            Some(&protected),
            &with(b"passphrase", Some("from the laptop")),
        )
        .unwrap();
        assert!(!stored.is_protected());
        assert_eq!(stored.data, [7; 32]);
        assert_eq!(stored.hint.as_deref(), Some("from the laptop"));
        let loaded = dir
            .encryption_keys()
            .load_key_config("good-id", true)
            .unwrap();
        assert!(!loaded.is_protected());
        // an unprotected key with a passphrase, a new key with one
        let plain = KeyConfig::without_password([9; 32])
            .unwrap()
            .to_json()
            .unwrap();
        let err = create_key_with(&dir, "plain-id", Some(&plain), &with(b"passphrase", None))
            .unwrap_err();
        assert_eq!(param_names(&err), ["passphrase"]);
        let err = create_key_with(&dir, "new-id", None, &with(b"passphrase", None)).unwrap_err();
        assert_eq!(param_names(&err), ["passphrase"]);
        assert_eq!(
            param_names(&delete_key(&dir, "good-id", Some("xyz")).unwrap_err()),
            ["digest"]
        );
    }

    #[test]
    fn create_returns_the_key_once_and_list_never_does() {
        let (_tmp, dir) = temp_config_dir();
        let created = create_key(&dir, "fresh-key", None).unwrap();
        assert!(!created.is_protected());
        let (list, digest) = list_keys(&dir, true, |_| true).unwrap();
        assert_eq!(digest.len(), 64);
        let listed = serde_json::to_string(&list).unwrap();
        let shown = serde_json::to_string(&show_key(&dir, "fresh-key").unwrap()).unwrap();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&created.data);
        for text in [listed, shown] {
            assert!(!text.contains(&b64) && !text.contains(&hex::encode(&created.data)));
        }
        let (hidden, _) = list_keys(&dir, true, |id| id != "fresh-key").unwrap();
        assert!(hidden.is_empty());
        // toggle: archived (with the current digest), then a stale digest is
        // refused, then active again
        let toggled = toggle_key_archive_state(&dir, "fresh-key", Some(&digest)).unwrap();
        assert!(toggled.archived_at.is_some());
        let err = toggle_key_archive_state(&dir, "fresh-key", Some(&digest)).unwrap_err();
        assert!(err.to_string().contains("modified configuration"), "{err}");
        assert!(
            toggle_key_archive_state(&dir, "fresh-key", None)
                .unwrap()
                .archived_at
                .is_none()
        );
    }
}
