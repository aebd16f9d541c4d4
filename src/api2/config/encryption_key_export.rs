//! Keys that survive the host (beyond upstream): export bundles, the
//! restore drill, restore, paperkeys.
//!
//! - `POST /config/encryption-key-export`: an encrypted export bundle of
//!   the keys named (or all), for a passphrase and/or RSA master keys;
//! - `POST /config/encryption-key-export/verify`: the restore drill: opens
//!   a bundle in memory, checks every key and compares it with the store,
//!   writes nothing;
//! - `POST /config/encryption-key-restore`: brings the keys of a bundle (or
//!   one key from paperkey text) back into the store;
//! - `POST /config/encryption-keys/{id}/paperkey`: one key on paper.
//!
//! The collection-level actions sit beside `/config/encryption-keys`, not
//! below it, where a key id could shadow them (DESIGN.md §6). Export and
//! paperkey hand out keys, so they need Sys.Modify on each key (the
//! privilege upstream requires to use a key, whose holders see its bytes at
//! creation); export checks it per key itself, as the list does. Restore
//! and the drill work on the whole store (docs/api.md says why).
//!
//! Secrets (passphrases, the master key, the bundle) travel in request
//! bodies only (`crate::api2::BODY_ONLY_PARAMETERS`); the bundle and the
//! paperkey come back in the answer, the only answers of this module that
//! hold key material. As for every route, the plain functions serve the
//! CLI, which calls them as the administrator.

use anyhow::Error;
use openssl::pkey::{PKey, Private, Public};
use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroize;

use proxmox_router::{ApiMethod, Permission, ReturnType, Router};
use proxmox_schema::{
    ApiType, ArraySchema, BooleanSchema, ObjectSchema, ParameterError, Schema, StringSchema,
    param_bail,
};

use pbs_api_types::{CRYPT_KEY_ID_SCHEMA, CryptKey};
use pbs_config::ConfigDir;
use pbs_config::audit::Op;
use pbs_config::export::{
    BundleKeyCheck, ExportSelection, RestoreKey, RestoredKey, entry_of_key_file, finish_all,
};
use pbs_key_config::bundle::{
    BundleError, BundleKeyInfo, BundleSecret, ExportRecipient, MAX_RECIPIENTS, open_bundle,
    read_bundle_header, rsa_private_key_from_pem, rsa_public_key_from_pem,
};
use pbs_key_config::paperkey::{Paperkey, PaperkeyFormat, parse_key_file_or_paperkey};
use pbs_key_config::{KeyConfig, KeyError, passphrase_no_secret};

use super::{KEY_MODIFY, KeyAccess, STORE_MODIFY};
use crate::api2::config::encryption_keys::{PASSPHRASE_SCHEMA, check_id, visible_keys};
use crate::api2::described_object;
use crate::api2::{param_str, required_str};

/// The largest bundle (or paperkey text) the API takes: the request body
/// limit bounds it first (docs/api.md).
const MAX_BUNDLE_TEXT: usize = 64 * 1024;

/// `id` of an export or a restore: one key id (repeat it for several).
const KEY_IDS_SCHEMA: Schema = ArraySchema::new(
    "Key ids (repeat the parameter for several).",
    &CRYPT_KEY_ID_SCHEMA,
)
.schema();

/// `all`: every key.
const ALL_SCHEMA: Schema =
    BooleanSchema::new("Export every active key (and with include-archived every archived one).")
        .default(false)
        .schema();

/// `include-archived` of an export.
const INCLUDE_ARCHIVED_SCHEMA: Schema =
    BooleanSchema::new("With all: archived keys too (named keys are exported in any state).")
        .default(false)
        .schema();

/// `master-pubkey`: an RSA public key (PEM) to encrypt a bundle to.
const MASTER_PUBKEY_SCHEMA: Schema = StringSchema::new(
    "An RSA public key (PEM, as 'proxmox-backup-client key create-master-key' writes \
     master-public.pem) to encrypt the bundle to.",
)
.max_length(16 * 1024)
.schema();

/// `master-pubkey`, repeated.
pub(crate) const MASTER_PUBKEYS_SCHEMA: Schema = ArraySchema::new(
    "RSA public keys (PEM) to encrypt the bundle to (repeat for several).",
    &MASTER_PUBKEY_SCHEMA,
)
.max_length(MAX_RECIPIENTS)
.schema();

/// `master-key`: the RSA private key (PEM) that opens a bundle.
const MASTER_KEY_SCHEMA: Schema = StringSchema::new(
    "The RSA private key (PEM, master-private.pem) of a recipient of the bundle.",
)
.max_length(64 * 1024)
.schema();

/// `master-passphrase`: the passphrase of an encrypted `master-key`.
const MASTER_PASSPHRASE_SCHEMA: Schema =
    StringSchema::new("The passphrase of master-key, if it is encrypted.")
        .min_length(1)
        .max_length(1024)
        .schema();

/// `key-passphrase`: the passphrase of the protected keys whose missing
/// key file a restore puts back (finding 33).
const KEY_PASSPHRASE_SCHEMA: Schema = StringSchema::new(
    "The passphrase of the protected keys of the bundle whose key file the store misses: a \
     protected key file only claims its fingerprint, so it is put back only if this decrypts it \
     to the key (restore the keys of other passphrases apart, with id). Used for nothing else.",
)
.min_length(pbs_key_config::MIN_PASSPHRASE_LEN)
.max_length(1024)
.schema();

/// `bundle`: an export bundle, or for a restore also paperkey text.
const BUNDLE_SCHEMA: Schema = StringSchema::new(
    "The export bundle (its text); for a restore also a key file or paperkey text (then with \
     one id).",
)
.max_length(MAX_BUNDLE_TEXT)
.schema();

/// `output-format` of a paperkey.
const PAPERKEY_FORMAT_SCHEMA: Schema = PaperkeyFormat::API_SCHEMA;

/// Checks ids given as a list (the schema checks each in the API; the CLI
/// passes them unchecked).
fn check_ids(ids: &[String]) -> Result<(), Error> {
    ids.iter().try_for_each(|id| check_id(id))
}

/// An error blamed on the parameter `name` (400 naming it), the typed
/// error kept inside.
fn blame(name: &str, err: Error) -> Error {
    ParameterError::from((name, err)).into()
}

/// Whether `err` is, or holds, a typed `T` for which `is` says yes.
fn holds<T: std::error::Error + Send + Sync + 'static>(
    err: &Error,
    is: impl Fn(&T) -> bool,
) -> bool {
    err.chain()
        .any(|cause| cause.downcast_ref::<T>().is_some_and(&is))
}

/// The parameter a failure to open a bundle is blamed on: the passphrase,
/// the master key, or the bundle itself.
fn blame_open_error(err: Error) -> Error {
    if holds::<ParameterError>(&err, |_| true) {
        return err;
    }
    let passphrase = holds::<BundleError>(&err, |e| {
        matches!(
            e,
            BundleError::WrongPassphraseOrCorrupt | BundleError::NoRecipientFor("passphrase")
        )
    }) || holds::<KeyError>(&err, |e| matches!(e, KeyError::PassphraseTooShort));
    let master_key = holds::<BundleError>(&err, |e| {
        matches!(
            e,
            BundleError::WrongRsaKeyOrCorrupt
                | BundleError::NotForThisRsaKey { .. }
                | BundleError::NoRecipientFor(_)
        )
    });
    let bundle = holds::<BundleError>(&err, |_| true) || holds::<KeyError>(&err, |_| true);
    match (passphrase, master_key, bundle) {
        (true, _, _) => blame("passphrase", err),
        (_, true, _) => blame("master-key", err),
        (_, _, true) => blame("bundle", err),
        _ => err,
    }
}

// ---------------------------------------------------------------------------
// export

/// Who can open a new bundle: a passphrase and/or RSA public keys.
pub struct Recipients {
    /// The passphrase, if any (zeroed on drop).
    pub passphrase: Option<Vec<u8>>,
    /// RSA public keys.
    pub master_pubkeys: Vec<PKey<Public>>,
}

impl Drop for Recipients {
    fn drop(&mut self) {
        if let Some(passphrase) = &mut self.passphrase {
            passphrase.zeroize();
        }
    }
}

impl Recipients {
    /// The recipients a request names: `passphrase` and `master-pubkey`
    /// (PEM, repeatable).
    pub(crate) fn from_params(param: &Value) -> Result<Self, Error> {
        // a public key sent as the passphrase, say: judged before anything
        // is done (finding 67), so a rotation never stops at its export
        if let Some(what) =
            param_str(param, "passphrase").and_then(|p| passphrase_no_secret(p.as_bytes()))
        {
            param_bail!("passphrase", "{}", KeyError::PassphraseNoSecret(what));
        }
        Ok(Recipients {
            passphrase: param_str(param, "passphrase").map(|p| p.as_bytes().to_vec()),
            master_pubkeys: crate::api2::param_list(param, "master-pubkey")
                .iter()
                .map(|pem| master_pubkey(pem.as_bytes()))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The recipients as the bundle code takes them.
    pub(crate) fn as_list(&self) -> Vec<ExportRecipient<'_>> {
        let mut list = Vec::new();
        if let Some(passphrase) = &self.passphrase {
            list.push(ExportRecipient::Passphrase(passphrase));
        }
        list.extend(
            self.master_pubkeys
                .iter()
                .map(ExportRecipient::RsaPublicKey),
        );
        list
    }
}

/// Reads an RSA public key (PEM) given as parameter `name`.
pub fn master_pubkey(pem: &[u8]) -> Result<PKey<Public>, Error> {
    rsa_public_key_from_pem(pem).map_err(|err| blame("master-pubkey", err))
}

/// A new export bundle and what it holds.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Exported {
    /// The bundle (two lines of text, `docs/export-format.md`).
    pub bundle: String,
    /// Where it says the keys come from.
    pub origin: String,
    /// When it was made (epoch).
    pub created: i64,
    /// Who can open it (`passphrase (scrypt)`, `RSA key <id>`).
    pub recipients: Vec<String>,
    /// The keys in it, as its clear header lists them.
    pub keys: Vec<BundleKeyInfo>,
}

/// The selection of an export from its parameters: ids, or all.
pub fn export_selection(
    ids: Vec<String>,
    all: bool,
    include_archived: bool,
) -> Result<ExportSelection, Error> {
    check_ids(&ids)?;
    match (ids.is_empty(), all) {
        (false, true) => param_bail!("all", "name keys or all, not both"),
        (true, false) => param_bail!("id", "name the keys to export, or all"),
        (false, false) if include_archived => param_bail!(
            "include-archived",
            "include-archived goes with all (named keys are exported active or archived)"
        ),
        (false, false) => Ok(ExportSelection::Ids(ids)),
        (true, true) => Ok(ExportSelection::All { include_archived }),
    }
}

/// Writes an export bundle of the keys `selection` names for `recipients`;
/// `allowed` is asked for each key first (the API's privilege check).
pub fn export_keys(
    dir: &ConfigDir,
    selection: &ExportSelection,
    recipients: &Recipients,
    allowed: &dyn Fn(&CryptKey) -> Result<(), Error>,
) -> Result<Exported, Error> {
    let list = recipients.as_list();
    if list.is_empty() {
        param_bail!(
            "passphrase",
            "no recipient - give a passphrase and/or an RSA public key (master-pubkey)"
        );
    }
    let mut bundle = dir
        .encryption_keys()
        .export_bundle(selection, &list, allowed)?;
    // recorded in the audit log by the store (`export`: the ids and
    // fingerprints; the bundle carries the checkpoint signed after it)
    let header = read_bundle_header(&bundle)?;
    let text = String::from_utf8(std::mem::take(&mut bundle))
        .map_err(|_| anyhow::format_err!("internal error - export bundle is not text"))?;
    Ok(Exported {
        bundle: text,
        origin: header.origin.clone(),
        created: header.created,
        recipients: header.recipients.iter().map(|r| r.describe()).collect(),
        keys: header.keys,
    })
}

/// Parameters of `POST /config/encryption-key-export`.
pub const API_METHOD_EXPORT_KEYS_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Write an encrypted export bundle of encryption keys.",
    &[
        ("all", true, &ALL_SCHEMA),
        ("id", true, &KEY_IDS_SCHEMA),
        ("include-archived", true, &INCLUDE_ARCHIVED_SCHEMA),
        ("master-pubkey", true, &MASTER_PUBKEYS_SCHEMA),
        ("passphrase", true, &PASSPHRASE_SCHEMA),
    ],
);

const EXPORTED_SCHEMA: Schema = described_object(
    "The bundle (its text: the one answer of the export that holds keys, encrypted), origin, \
     created, recipients and the keys in it (Exported).",
);

/// `all` for a caller: every key (of the state asked for) if it may see
/// each, else the keys it may see, as its key list holds them, by id: a
/// key it may not see is left out, as from the list, rather than named in
/// a refusal (finding 45).
///
/// # Errors
///
/// The key list cannot be read.
fn visible_selection(
    dir: &ConfigDir,
    include_archived: bool,
    access: &KeyAccess,
) -> Result<ExportSelection, Error> {
    let index = dir.encryption_keys().index_data()?;
    if index.ids().all(|id| access.may_see(id)) {
        return Ok(ExportSelection::All { include_archived });
    }
    let keys = visible_keys(&index, include_archived, |id| access.may_see(id))?;
    Ok(ExportSelection::Ids(
        keys.into_iter().map(|key| key.id.clone()).collect(),
    ))
}

/// `POST /config/encryption-key-export`: [`export_keys`], each key
/// checked for Sys.Modify (of `all`, the keys the caller may see).
pub const API_METHOD_EXPORT_KEYS: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        let access = KeyAccess::of(env)?;
        let selection = export_selection(
            crate::api2::param_list(&param, "id"),
            param["all"].as_bool().unwrap_or(false),
            param["include-archived"].as_bool().unwrap_or(false),
        )?;
        let selection = match selection {
            ExportSelection::All { include_archived } => {
                visible_selection(env.dir(), include_archived, &access)?
            }
            ExportSelection::Ids(ids) => {
                // before the store is asked: a masked id is refused the
                // same whether the store has it or not (finding 45)
                access.check_modify(ids.iter().map(String::as_str))?;
                ExportSelection::Ids(ids)
            }
        };
        let recipients = Recipients::from_params(&param)?;
        let allowed = |key: &CryptKey| access.check_modify([key.id.as_str()]);
        // the one answer of this route: the bundle, encrypted
        export_keys(env.dir(), &selection, &recipients, &allowed)?
    }),
    &API_METHOD_EXPORT_KEYS_PARAMETERS,
)
.returns(ReturnType::new(false, &EXPORTED_SCHEMA))
.access(
    Some(
        "Sys.Modify on `/system/encryption-keys/{id}` of every key exported, checked per key \
         (403 naming keys without it; all: the keys with Sys.Audit there)",
    ),
    &Permission::Anybody,
);

// ---------------------------------------------------------------------------
// opening a bundle: the drill and the restore

/// A secret that opens a bundle, owned (from the API's parameters or the
/// CLI's files and prompts).
pub enum OwnedSecret {
    /// A passphrase (zeroed on drop).
    Passphrase(Vec<u8>),
    /// An RSA private key.
    MasterKey(PKey<Private>),
}

impl Drop for OwnedSecret {
    fn drop(&mut self) {
        if let OwnedSecret::Passphrase(passphrase) = self {
            passphrase.zeroize();
        }
    }
}

impl OwnedSecret {
    /// The secret as the bundle code takes it.
    pub fn as_secret(&self) -> BundleSecret<'_> {
        match self {
            OwnedSecret::Passphrase(passphrase) => BundleSecret::Passphrase(passphrase),
            OwnedSecret::MasterKey(key) => BundleSecret::RsaPrivateKey(key),
        }
    }
}

/// The secret of a request: `passphrase`, or `master-key` (with
/// `master-passphrase` if it is encrypted).
fn secret_of(param: &Value) -> Result<Option<OwnedSecret>, Error> {
    let passphrase = param_str(param, "passphrase");
    let master_key = param_str(param, "master-key");
    let master_passphrase = param_str(param, "master-passphrase");
    match (passphrase, master_key) {
        (Some(_), Some(_)) => param_bail!("master-key", "give passphrase or master-key, not both"),
        (Some(passphrase), None) => {
            if master_passphrase.is_some() {
                param_bail!("master-passphrase", "goes with master-key");
            }
            Ok(Some(OwnedSecret::Passphrase(
                passphrase.as_bytes().to_vec(),
            )))
        }
        (None, Some(pem)) => {
            let asked = || match master_passphrase {
                Some(text) => Ok(text.as_bytes().to_vec()),
                None => Err(blame(
                    "master-passphrase",
                    anyhow::format_err!("the master key is encrypted - send its passphrase"),
                )),
            };
            let key =
                rsa_private_key_from_pem(pem.as_bytes(), &asked).map_err(|err| {
                    match holds::<ParameterError>(&err, |_| true) {
                        true => err,
                        false => blame("master-key", err),
                    }
                })?;
            Ok(Some(OwnedSecret::MasterKey(key)))
        }
        (None, None) => {
            if master_passphrase.is_some() {
                param_bail!("master-passphrase", "goes with master-key");
            }
            Ok(None)
        }
    }
}

/// The restore drill's report: the bundle's clear header and every key
/// compared with the store.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BundleReport {
    /// Where the bundle says its keys come from.
    pub origin: String,
    /// When it was made (epoch).
    pub created: i64,
    /// The audit checkpoint it carries, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Who can open it.
    pub recipients: Vec<String>,
    /// Every key: intact (else the bundle would not have opened), and how
    /// the store has it.
    pub keys: Vec<BundleKeyCheck>,
}

/// Why a drill records no verified copy of a key ([`BundleKeyCheck`]'s
/// `copy-unproven`).
const COPY_UNPROVEN: &str = "its key file is protected and not the one this host holds of the \
     key, so the drill could not check its key (that takes its passphrase): no verified copy \
     is recorded - drill a bundle exported from the store that holds the key";

/// Why a drill records no verified copy of a key whose key file no
/// restore takes (`err`, what the restore answers).
fn unrestorable_copy(err: &Error) -> String {
    format!(
        "no restore takes its key file ({err}), so the bundle gives the key back through none: \
         no verified copy is recorded - drill a bundle exported from the store that holds the key"
    )
}

/// The restore drill: opens the bundle `data` with `secret` in memory,
/// checks every key's fingerprint against its bytes (all or nothing), and
/// compares each with the store. Imports nothing; records in the audit log
/// a verified copy of each key whose copy it proves
/// ([`pbs_config::encryption_keys::EncryptionKeys::proves_copy`]). The
/// drill of the CLI (root, who sees every key).
///
/// # Errors
///
/// Anything that keeps the bundle from opening whole (`BundleError`): the
/// bundle is not intact, or the secret is wrong.
pub fn verify_bundle(
    dir: &ConfigDir,
    data: &[u8],
    secret: &BundleSecret,
) -> Result<BundleReport, Error> {
    verify_bundle_checked(dir, data, secret, None)
}

/// [`verify_bundle`] for `caller` (`None`: one who sees every key), who
/// must be allowed to see the ids of the bundle's keys, checked once the
/// bundle is open (its ids are not known before) and before anything is
/// compared or recorded (finding 42). Its report tells how the store has
/// ids the caller may see, never another id the store holds a key under
/// that the caller may not see (`stored-as`, finding 42).
///
/// A verified copy of a key lets a purge destroy the key under every id
/// the store holds it under, so the drill records one only where the
/// caller may see every such id, active, archived or in the trash
/// (finding 61), or half-way between the key list and the trash (a
/// delete or trash restore interrupted: finding 71), read under the config
/// lock. For a key held under an id the caller may not see, it
/// records no proof and reports the key as it would a key the store
/// lacks: no `stored-as`, and `copy-unproven` only where its key file is
/// protected (the key file of a key the store lacks is never this
/// host's).
///
/// # Errors
///
/// As [`verify_bundle`]; a `PermissionDenied` (403) naming each id of
/// the bundle the caller may not see; the ids holding a key of the bundle
/// cannot be read (a caller's drill only).
pub(crate) fn verify_bundle_checked(
    dir: &ConfigDir,
    data: &[u8],
    secret: &BundleSecret,
    caller: Option<&KeyAccess>,
) -> Result<BundleReport, Error> {
    let opened = open_bundle(data, secret)?;
    let header = opened.header();
    if let Some(access) = caller {
        access.check_see(header.keys.iter().map(|key| key.id.as_str()))?;
    }
    let keys = dir.encryption_keys();
    // recorded in the audit log as `export-verify` of every key of the
    // bundle (ids as the bundle names them), with the fingerprints of those
    // whose copy it proves, which a purge takes for a verified copy
    // (`pbs_config::verified_copy` goes by fingerprint): a bundle that does
    // not open is no proof and records nothing, a protected key file
    // proves a copy only where it is this host's (finding 26), and a key
    // the store holds under an id the caller may not see proves nothing
    // for that caller (finding 61)
    // for a caller's drill, where each key is held is read and recorded
    // under the config lock, which every move between the key list and the
    // trash holds: a key is never read half-way moved (finding 71)
    let whereabouts = match caller {
        Some(_) => Some(keys.lock_config()?),
        None => None,
    };
    let mut drilled = Vec::with_capacity(header.keys.len());
    let mut unproven = Vec::new();
    for entry in opened.entries() {
        let config = entry.config();
        let Some(fingerprint) = config.info.fingerprint else {
            continue;
        };
        let held_unseen = match caller {
            Some(access) => keys
                .ids_holding(&fingerprint)?
                .iter()
                .any(|id| !access.may_see(id)),
            None => false,
        };
        let protected = entry.key_config().is_protected();
        // a key file no restore takes gives the key back through none:
        // no copy, whatever it holds (finding 73)
        let unrestorable =
            pbs_config::encryption_keys::check_storable(entry.key_config(), entry.key_file()).err();
        if !held_unseen
            && unrestorable.is_none()
            && keys.proves_copy(&fingerprint, entry.key_config())?
        {
            drilled.push((config.id.as_str(), Some(fingerprint)));
            continue;
        }
        drilled.push((config.id.as_str(), None));
        if let Some(err) = unrestorable {
            unproven.push((fingerprint, unrestorable_copy(&err)));
        } else if protected || !held_unseen {
            // a key held unseen reads as a key the store lacks, whose key
            // file proves its copy unless it is protected
            unproven.push((fingerprint, COPY_UNPROVEN.to_string()));
        }
    }
    let pending = keys.record_keys(Op::ExportVerify, &drilled)?;
    drop(whereabouts);
    let mut keys = finish_all(pending, keys.compare_bundle(&header.keys))?;
    for key in &mut keys {
        if let Some((_, why)) = unproven.iter().find(|(fp, _)| *fp == key.fingerprint) {
            key.copy_unproven = Some(why.clone());
        }
        if let Some(access) = caller {
            key.stored_as = key.stored_as.take().filter(|id| access.may_see(id));
        }
    }
    Ok(BundleReport {
        origin: header.origin.clone(),
        created: header.created,
        checkpoint: header.checkpoint.clone(),
        recipients: header.recipients.iter().map(|r| r.describe()).collect(),
        keys,
    })
}

/// Parameters of `POST /config/encryption-key-export/verify`.
pub const API_METHOD_VERIFY_EXPORT_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Open an export bundle in memory, check every key and compare it with the store (the \
     restore drill); writes nothing.",
    &[
        ("bundle", false, &BUNDLE_SCHEMA),
        ("master-key", true, &MASTER_KEY_SCHEMA),
        ("master-passphrase", true, &MASTER_PASSPHRASE_SCHEMA),
        ("passphrase", true, &PASSPHRASE_SCHEMA),
    ],
);

const BUNDLE_REPORT_SCHEMA: Schema = described_object(
    "The bundle's origin, created, checkpoint, recipients, and per key its id, fingerprint, \
     archived-at and how the store has it (BundleReport).",
);

/// `POST /config/encryption-key-export/verify`: [`verify_bundle_checked`]
/// for the caller: a 403 naming each key id of the bundle it may not see
/// (nothing recorded), and no `stored-as` or verified copy of a key the
/// store holds under an id it may not see.
pub const API_METHOD_VERIFY_EXPORT: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        let dir = env.dir();
        let data = required_str(&param, "bundle")?;
        let secret = required_secret(&param)?;
        let access = KeyAccess::of(env)?;
        verify_bundle_checked(dir, data.as_bytes(), &secret.as_secret(), Some(&access))
            .map_err(blame_open_error)?
    }),
    &API_METHOD_VERIFY_EXPORT_PARAMETERS,
)
.returns(ReturnType::new(false, &BUNDLE_REPORT_SCHEMA))
.access(
    Some(
        "and Sys.Audit on `/system/encryption-keys/{id}` of every key id of the bundle, checked \
         by the handler before anything is compared or recorded (403 naming each key without it)",
    ),
    &STORE_MODIFY,
);

/// The secret of a bundle request, which needs one.
fn required_secret(param: &Value) -> Result<OwnedSecret, Error> {
    match secret_of(param)? {
        Some(secret) => Ok(secret),
        None => param_bail!(
            "passphrase",
            "the bundle needs its secret - send passphrase, or master-key"
        ),
    }
}

/// Restores the keys of the bundle `data` (all, or those `ids` names)
/// through the store path (`pbs_config::export`): a key the store has
/// already under its id is left alone; an id or a key taken otherwise
/// refuses the whole restore, naming both. The missing key file of a
/// protected key is put back only if `key_passphrase` decrypts the
/// bundle's key file to that key.
pub fn restore_bundle(
    dir: &ConfigDir,
    data: &[u8],
    secret: &BundleSecret,
    ids: &[String],
    key_passphrase: Option<&[u8]>,
) -> Result<Vec<RestoredKey>, Error> {
    restore_bundle_checked(dir, data, secret, ids, key_passphrase, &|_| Ok(()))
}

/// [`restore_bundle`], once `may_write` allowed the ids of every key it
/// restores (a bundle opens before its ids are known): the API's check of
/// Sys.Modify on each, before anything is written (finding 38).
pub fn restore_bundle_checked(
    dir: &ConfigDir,
    data: &[u8],
    secret: &BundleSecret,
    ids: &[String],
    key_passphrase: Option<&[u8]>,
    may_write: &dyn Fn(&[&str]) -> Result<(), Error>,
) -> Result<Vec<RestoredKey>, Error> {
    check_ids(ids)?;
    let opened = open_bundle(data, secret)?;
    let entries = opened.entries();
    for id in ids {
        if !entries.iter().any(|entry| entry.config().id == *id) {
            param_bail!("id", "the export bundle has no key '{id}'");
        }
    }
    let keys: Vec<RestoreKey> = entries
        .iter()
        .filter(|entry| ids.is_empty() || ids.contains(&entry.config().id))
        .map(|entry| RestoreKey {
            entry: entry.config().clone(),
            key_config: entry.key_config(),
            key_file: entry.key_file(),
        })
        .collect();
    let writes: Vec<&str> = keys.iter().map(|key| key.entry.id.as_str()).collect();
    may_write(&writes)?;
    // each key restored is recorded by the store (`restore`); one already
    // there is left as it is, and recorded as nothing
    let restored = dir
        .encryption_keys()
        .restore_keys(&keys, key_passphrase)
        .map_err(blame_restore_refusal)?;
    Ok(restored)
}

/// Restores one key from key file JSON or paperkey text as `id`: a
/// protected key is decrypted with `passphrase` and restored unprotected,
/// as import takes it. The same key under the same id is left alone.
pub fn restore_key_text(
    dir: &ConfigDir,
    id: &str,
    text: &str,
    passphrase: Option<&[u8]>,
) -> Result<Vec<RestoredKey>, Error> {
    check_id(id)?;
    let key_config = key_from_text(text, passphrase)?;
    let mut key_file = key_config.to_json()?.into_bytes();
    let entry = entry_of_key_file(id, &key_config).map_err(|err| blame("bundle", err));
    let restored = entry.and_then(|entry| {
        // the key text is restored unprotected: no key file to prove, but
        // a protected key's missing file it would change (a 400, as for a
        // bundle)
        dir.encryption_keys()
            .restore_keys(
                &[RestoreKey {
                    entry,
                    key_config: &key_config,
                    key_file: &key_file,
                }],
                None,
            )
            .map_err(blame_restore_refusal)
    });
    key_file.zeroize();
    // recorded by the store as a `restore` of the id and fingerprint
    restored
}

/// The key of key file JSON or paperkey text, unprotected with
/// `passphrase` if it is protected.
fn key_from_text(text: &str, passphrase: Option<&[u8]>) -> Result<KeyConfig, Error> {
    let key_config = parse_key_file_or_paperkey(text).map_err(|err| blame("bundle", err))?;
    match (key_config.is_protected(), passphrase) {
        (false, None) => Ok(key_config),
        (false, Some(_)) => param_bail!(
            "passphrase",
            "the key is not passphrase protected - leave the passphrase out"
        ),
        (true, None) => param_bail!(
            "passphrase",
            "the key is passphrase protected - give its passphrase; it is restored unprotected"
        ),
        (true, Some(passphrase)) => key_config
            .to_unprotected(&|| Ok(passphrase.to_vec()))
            .map_err(|err| blame_key_error(err, "bundle")),
    }
}

/// A restore refused for what was given, as a 400 naming the parameter
/// that can change the answer: a protected key's missing file without a
/// proven key file blamed on `key-passphrase`, a key file with the other
/// protection than the store's key on `bundle`; any other error as it is.
fn blame_restore_refusal(err: Error) -> Error {
    if pbs_config::export::needs_key_passphrase(&err) {
        blame("key-passphrase", err)
    } else if pbs_config::export::holds_other_protection(&err) {
        blame("bundle", err)
    } else {
        err
    }
}

/// A failure to decrypt a protected key, blamed on the passphrase (wrong,
/// too short) or else on the parameter `key_param` holding the key.
pub fn blame_key_error(err: Error, key_param: &str) -> Error {
    let passphrase = holds::<KeyError>(&err, |e| {
        matches!(
            e,
            KeyError::WrongPassphraseOrCorrupt { .. } | KeyError::PassphraseTooShort
        )
    });
    match passphrase {
        true => blame("passphrase", err),
        false => blame(key_param, err),
    }
}

/// Whether `data` is an export bundle (by its first line), as restore
/// tells a bundle from key file or paperkey text.
pub fn is_bundle(data: &[u8]) -> bool {
    !matches!(
        read_bundle_header(data).map_err(|err| err.downcast::<BundleError>()),
        Err(Ok(BundleError::NotABundle))
    )
}

/// Parameters of `POST /config/encryption-key-restore`.
pub const API_METHOD_RESTORE_KEYS_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Restore the keys of an export bundle (or one key from paperkey text) into the store.",
    &[
        ("bundle", false, &BUNDLE_SCHEMA),
        ("id", true, &KEY_IDS_SCHEMA),
        ("key-passphrase", true, &KEY_PASSPHRASE_SCHEMA),
        ("master-key", true, &MASTER_KEY_SCHEMA),
        ("master-passphrase", true, &MASTER_PASSPHRASE_SCHEMA),
        ("passphrase", true, &PASSPHRASE_SCHEMA),
    ],
);

const RESTORED_SCHEMA: Schema = described_object(
    "A restored key: id, fingerprint, archived-at, outcome (restored or already-present).",
);

const RESTORED_LIST_SCHEMA: Schema = ArraySchema::new(
    "Every key of the restore, in bundle order.",
    &RESTORED_SCHEMA,
)
.schema();

/// `POST /config/encryption-key-restore`: [`restore_bundle`], or
/// [`restore_key_text`] for key file or paperkey text; each key of it
/// needs Sys.Modify on its id, whether or not the store has it (a restore
/// of a key the caller may not change is refused whole, before anything
/// is written, naming every such id).
pub const API_METHOD_RESTORE_KEYS: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        let dir = env.dir();
        let data = required_str(&param, "bundle")?;
        let ids = crate::api2::param_list(&param, "id");
        let access = KeyAccess::of(env)?;
        let may_write = |ids: &[&str]| access.check_modify(ids.iter().copied());
        if is_bundle(data.as_bytes()) {
            let secret = required_secret(&param)?;
            let mut key_passphrase =
                param_str(&param, "key-passphrase").map(|p| p.as_bytes().to_vec());
            let restored = restore_bundle_checked(
                dir,
                data.as_bytes(),
                &secret.as_secret(),
                &ids,
                key_passphrase.as_deref(),
                &may_write,
            );
            if let Some(passphrase) = &mut key_passphrase {
                passphrase.zeroize();
            }
            // a key stored already names its id (finding 50)
            restored
                .map_err(blame_open_error)
                .map_err(|err| access.withhold(err))?
        } else {
            may_write(&ids.iter().map(String::as_str).collect::<Vec<_>>())?;
            restore_text_param(dir, &param, data, &ids).map_err(|err| access.withhold(err))?
        }
    }),
    &API_METHOD_RESTORE_KEYS_PARAMETERS,
)
.returns(ReturnType::new(false, &RESTORED_LIST_SCHEMA))
.access(
    Some(
        "and Sys.Modify on `/system/encryption-keys/{id}` of every key restored, checked by the \
         handler before anything is written (403 naming each key without it)",
    ),
    &STORE_MODIFY,
);

/// The restore of key file or paperkey text: one id, the text's
/// passphrase (wiped after use), no master key.
fn restore_text_param(
    dir: &ConfigDir,
    param: &Value,
    data: &str,
    ids: &[String],
) -> Result<Vec<RestoredKey>, Error> {
    let [id] = ids else {
        param_bail!(
            "id",
            "key file or paperkey text holds no key id - give exactly one id to restore it as"
        );
    };
    for only_bundle in ["master-key", "key-passphrase"] {
        if param_str(param, only_bundle).is_some() {
            param_bail!(only_bundle, "only for an export bundle");
        }
    }
    let mut passphrase = param_str(param, "passphrase").map(|p| p.as_bytes().to_vec());
    let restored = restore_key_text(dir, id, data, passphrase.as_deref());
    if let Some(passphrase) = &mut passphrase {
        passphrase.zeroize();
    }
    restored
}

// ---------------------------------------------------------------------------
// paperkey

/// A paperkey of key `id` (archived keys too) in `format`: upstream's
/// block, a QR code, the id, full fingerprint, the store's audit checkpoint
/// if it has one, and the typing aid. The key file is loaded and checked
/// against the config first.
pub fn paperkey(dir: &ConfigDir, id: &str, format: PaperkeyFormat) -> Result<String, Error> {
    check_id(id)?;
    let keys = dir.encryption_keys();
    let (entry, key_config) = keys.load_key(id, false)?;
    // recorded in the audit log before the key leaves the store, as
    // `paperkey` of the id and fingerprint; the paper carries the
    // checkpoint signed after the record
    let pending = keys.record_keys(Op::Paperkey, &[(id, entry.info.fingerprint)])?;
    let checkpoint = match pending.last().and_then(|p| p.checkpoint()) {
        Some(checkpoint) => Some(checkpoint.to_note()),
        None => keys.current_checkpoint()?,
    };
    let rendered =
        Paperkey::new(id, &key_config, checkpoint.as_deref()).and_then(|p| p.render(format));
    finish_all(pending, rendered)
}

/// Parameters of `POST /config/encryption-keys/{id}/paperkey`.
pub const API_METHOD_PAPERKEY_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "A paperkey of an encryption key: the key to print and type back.",
    &[
        ("id", false, &CRYPT_KEY_ID_SCHEMA),
        ("output-format", true, &PAPERKEY_FORMAT_SCHEMA),
    ],
);

const PAPERKEY_RETURN_SCHEMA: Schema =
    StringSchema::new("The paperkey, text or HTML: it holds the key.").schema();

/// `POST /config/encryption-keys/{id}/paperkey`: [`paperkey`]. POST, not
/// GET: it hands out the key (a ticket's CSRF token is needed, as for any
/// write) and is recorded.
pub const API_METHOD_PAPERKEY: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        let dir = env.dir();
        let id = required_str(&param, "id")?;
        let format = match param_str(&param, "output-format") {
            Some("html") => PaperkeyFormat::Html,
            _ => PaperkeyFormat::Text,
        };
        // the one answer of this route: the key, on paper
        paperkey(dir, id, format)?
    }),
    &API_METHOD_PAPERKEY_PARAMETERS,
)
.returns(ReturnType::new(false, &PAPERKEY_RETURN_SCHEMA))
.access(None, &KEY_MODIFY);

/// `/config/encryption-keys/{id}/paperkey`.
pub const PAPERKEY_ROUTER: Router = Router::new().post(&API_METHOD_PAPERKEY);

const VERIFY_ROUTER: Router = Router::new().post(&API_METHOD_VERIFY_EXPORT);

/// The routes of `/config/encryption-key-export`.
pub const ROUTER: Router = Router::new()
    .post(&API_METHOD_EXPORT_KEYS)
    .subdirs(&[("verify", &VERIFY_ROUTER)]);

/// The routes of `/config/encryption-key-restore`.
pub const RESTORE_ROUTER: Router = Router::new().post(&API_METHOD_RESTORE_KEYS);
