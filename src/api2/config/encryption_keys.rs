//! `/config/encryption-keys`: list, create or import, archive state, delete.
//!
//! PBS-compatible handlers (`list_keys`, `create_key`,
//! `toggle_key_archive_state`, `delete_key`) plus this project's additions
//! (`show_key`, `archive_key`, `unarchive_key`, `verify_key`, `verify_keys`). Privileges
//! are checked by the caller: list needs `Sys.Audit` on
//! `/system/encryption-keys/{id}` per key, the others `Sys.Modify` on
//! `/system/encryption-keys` (create) or `/system/encryption-keys/{id}`.

use anyhow::Error;

use proxmox_lang::error::ErrorLayer;
use proxmox_schema::{
    ApiType, BooleanSchema, ObjectSchema, Schema, StringSchema, param_bail, param_format_err,
};

use pbs_api_types::{CRYPT_KEY_ID_SCHEMA, CryptKey, PROXMOX_CONFIG_DIGEST_SCHEMA};
use pbs_config::ConfigDir;
use pbs_config::verify::VerifyReport;
use pbs_key_config::{KeyConfig, KeyError};

/// `include-archived`: also list archived keys.
pub const INCLUDE_ARCHIVED_SCHEMA: Schema =
    BooleanSchema::new("Include archived keys in the list.")
        .default(false)
        .schema();

/// `key`: a KeyConfig (the `.enc` JSON) to import instead of creating a key.
pub const IMPORT_KEY_SCHEMA: Schema =
    StringSchema::new("Use provided key instead of creating new one (KeyConfig JSON).")
        .max_length(pbs_key_config::MAX_KEY_FILE_SIZE as usize)
        .schema();

/// Parameters of `GET /config/encryption-keys`.
pub const API_METHOD_LIST_KEYS_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "List encryption keys.",
    &[("include-archived", true, &INCLUDE_ARCHIVED_SCHEMA)],
);

/// Parameters of `POST /config/encryption-keys`.
pub const API_METHOD_CREATE_KEY_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Create a new encryption key, or import the provided one.",
    &[
        ("id", false, &CRYPT_KEY_ID_SCHEMA),
        ("key", true, &IMPORT_KEY_SCHEMA),
    ],
);

/// Parameters of `POST /config/encryption-keys/{id}` and
/// `DELETE /config/encryption-keys/{id}`.
pub const API_METHOD_KEY_ID_DIGEST_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Encryption key id and optional config digest.",
    &[
        ("digest", true, &PROXMOX_CONFIG_DIGEST_SCHEMA),
        ("id", false, &CRYPT_KEY_ID_SCHEMA),
    ],
);

/// Parameters of `GET /config/encryption-keys/{id}`.
pub const API_METHOD_SHOW_KEY_PARAMETERS: ObjectSchema =
    ObjectSchema::new("Encryption key id.", &[("id", false, &CRYPT_KEY_ID_SCHEMA)]);

/// Checks `id` against [`CRYPT_KEY_ID_SCHEMA`]; the error quotes the id
/// (escaped) and says what a valid one looks like.
fn check_id(id: &str) -> Result<(), Error> {
    if let Err(err) = pbs_config::encryption_keys::check_key_id(id) {
        param_bail!("id", "{err}");
    }
    Ok(())
}

fn parse_digest(digest: Option<&str>) -> Result<Option<[u8; 32]>, Error> {
    digest
        .map(|digest| {
            PROXMOX_CONFIG_DIGEST_SCHEMA
                .parse_simple_value(digest)
                .map_err(|err| param_format_err!("digest", "{err}"))?;
            pbs_config::parse_digest(digest).map_err(|err| param_format_err!("digest", "{err}"))
        })
        .transpose()
}

/// Lists the keys the caller may see (`visible(id)`), active ones only
/// unless `include_archived`; returns them with the hex config digest.
pub fn list_keys(
    dir: &ConfigDir,
    include_archived: bool,
    visible: impl Fn(&str) -> bool,
) -> Result<(Vec<CryptKey>, String), Error> {
    let (mut list, digest) = dir.encryption_keys().list_keys(include_archived)?;
    list.retain(|key| visible(&key.id));
    Ok((list, hex::encode(digest)))
}

/// One key's metadata (never its bytes).
pub fn show_key(dir: &ConfigDir, id: &str) -> Result<CryptKey, Error> {
    check_id(id)?;
    dir.encryption_keys().entry(id)
}

/// Creates a new random unprotected key under `id`, or imports `key` (a
/// KeyConfig JSON document). Protected keys are refused, as upstream does.
/// Returns the stored KeyConfig: the only time the key leaves the server.
pub fn create_key(dir: &ConfigDir, id: &str, key: Option<&str>) -> Result<KeyConfig, Error> {
    check_id(id)?;
    let key_config = match key {
        Some(text) => {
            let key_config = KeyConfig::from_json(text.as_bytes())
                .layer_err(|| "failed to parse provided key")
                .map_err(|err| param_format_err!("key", "{err}"))?;
            if key_config.is_protected() {
                param_bail!(
                    "key",
                    "protected keys not supported - import an unprotected key (kdf null)"
                );
            }
            key_config
        }
        None => KeyConfig::without_password(proxmox_sys::linux::random_data::<32>()?)?,
    };
    dir.encryption_keys()
        .store_key(id, &key_config)
        .map_err(|err| {
            // a key that does not match its own fingerprint is bad input
            match err.chain().find_map(|e| e.downcast_ref::<KeyError>()) {
                Some(_) => param_format_err!("key", "{err}"),
                None => err,
            }
        })?;
    Ok(key_config)
}

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

/// Deletes an archived key that no sync job references.
pub fn delete_key(dir: &ConfigDir, id: &str, digest: Option<&str>) -> Result<(), Error> {
    check_id(id)?;
    let digest = parse_digest(digest)?;
    dir.encryption_keys().remove_key(id, digest.as_ref())
}

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

/// The schema of what list and show return, for documentation.
pub const CRYPT_KEY_RETURN_SCHEMA: Schema = CryptKey::API_SCHEMA;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api2::test_util::param_names;

    #[test]
    fn bad_parameters_name_the_parameter() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path()).unwrap();
        assert_eq!(
            param_names(&create_key(&dir, "../x", None).unwrap_err()),
            ["id"]
        );
        assert_eq!(
            param_names(&create_key(&dir, "good-id", Some("{not json")).unwrap_err()),
            ["key"]
        );
        let protected =
            KeyConfig::with_key(&[7; 32], b"passphrase", pbs_api_types::Kdf::PBKDF2).unwrap();
        let err = create_key(&dir, "good-id", Some(&protected.to_json().unwrap())).unwrap_err();
        assert_eq!(param_names(&err), ["key"]);
        assert!(
            err.to_string().contains("protected keys not supported"),
            "{err}"
        );
        assert_eq!(
            param_names(&delete_key(&dir, "good-id", Some("xyz")).unwrap_err()),
            ["digest"]
        );
    }

    #[test]
    fn create_returns_the_key_once_and_list_never_does() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path()).unwrap();
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
