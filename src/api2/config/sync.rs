//! `/config/sync`: sync jobs, as far as encryption keys are concerned.
//!
//! Plain handlers over `pbs_config::sync`: list and read jobs, and tie a job
//! to keys (`active-encryption-key`, `associated-key`) or untie it. Creating
//! and removing jobs, and their other properties, are outside this slice.

use anyhow::{Error, bail};
use serde::{Deserialize, Serialize};

use proxmox_schema::{param_bail, param_format_err};

use pbs_api_types::{JOB_ID_SCHEMA, PROXMOX_CONFIG_DIGEST_SCHEMA, SyncJobConfig};
use pbs_config::ConfigDir;

/// Properties `update_sync_job_keys` can delete (upstream's `delete`
/// parameter, restricted to the key properties).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeletableProperty {
    /// Clear the active encryption key.
    ActiveEncryptionKey,
    /// Clear the list of associated keys.
    AssociatedKey,
}

impl DeletableProperty {
    /// The property name (`active-encryption-key`, `associated-key`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeletableProperty::ActiveEncryptionKey => "active-encryption-key",
            DeletableProperty::AssociatedKey => "associated-key",
        }
    }
}

fn check_job_id(id: &str) -> Result<(), Error> {
    if let Err(err) = JOB_ID_SCHEMA.parse_simple_value(id) {
        param_bail!("id", "invalid sync job id {id:?} - {err}");
    }
    Ok(())
}

/// Checks a key id against [`CRYPT_KEY_ID_SCHEMA`](pbs_api_types::CRYPT_KEY_ID_SCHEMA).
fn check_key_id(param: &str, id: &str) -> Result<(), Error> {
    if let Err(err) = pbs_config::encryption_keys::check_key_id(id) {
        param_bail!(param, "{err}");
    }
    Ok(())
}

/// All sync jobs, in file order.
pub fn list_sync_jobs(dir: &ConfigDir) -> Result<Vec<SyncJobConfig>, Error> {
    dir.sync_jobs().list_jobs()
}

/// One sync job.
pub fn read_sync_job(dir: &ConfigDir, id: &str) -> Result<SyncJobConfig, Error> {
    check_job_id(id)?;
    match list_sync_jobs(dir)?.into_iter().find(|job| job.id == id) {
        Some(job) => Ok(job),
        None => bail!("no such sync job '{id}'"),
    }
}

/// Sets or clears the keys of sync job `id`: `active_encryption_key` sets
/// the active key, `associated_key` replaces the list of associated keys,
/// `delete` clears either. Keys named must exist, an active key must not be
/// archived. Returns the updated job.
pub fn update_sync_job_keys(
    dir: &ConfigDir,
    id: &str,
    active_encryption_key: Option<&str>,
    associated_key: Option<Vec<String>>,
    delete: &[DeletableProperty],
    digest: Option<&str>,
) -> Result<SyncJobConfig, Error> {
    check_job_id(id)?;
    if let Some(key) = active_encryption_key {
        check_key_id("active-encryption-key", key)?;
    }
    for key in associated_key.iter().flatten() {
        check_key_id("associated-key", key)?;
    }
    let digest = digest
        .map(|digest| {
            PROXMOX_CONFIG_DIGEST_SCHEMA
                .parse_simple_value(digest)
                .map_err(|err| param_format_err!("digest", "{err}"))?;
            pbs_config::parse_digest(digest).map_err(|err| param_format_err!("digest", "{err}"))
        })
        .transpose()?;

    let mut active = active_encryption_key.map(|key| Some(key.to_string()));
    let mut associated = associated_key;
    for property in delete {
        let conflict = match property {
            DeletableProperty::ActiveEncryptionKey => active.replace(None).is_some(),
            DeletableProperty::AssociatedKey => associated.replace(Vec::new()).is_some(),
        };
        if conflict {
            param_bail!(
                "delete",
                "cannot set and delete '{}' at the same time",
                property.as_str()
            );
        }
    }
    dir.sync_jobs()
        .update_job_keys(id, active, associated, digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api2::test_util::param_names;

    #[test]
    fn bad_parameters_name_the_parameter() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path()).unwrap();
        let update = |id, active, associated: Option<Vec<String>>, delete: &[DeletableProperty]| {
            update_sync_job_keys(&dir, id, active, associated, delete, None).unwrap_err()
        };
        assert_eq!(param_names(&update("../x", None, None, &[])), ["id"]);
        assert_eq!(
            param_names(&update("job1", Some("a"), None, &[])),
            ["active-encryption-key"]
        );
        assert_eq!(
            param_names(&update(
                "job1",
                None,
                Some(vec!["ok-key".into(), "x y".into()]),
                &[]
            )),
            ["associated-key"]
        );
        let err = update(
            "job1",
            Some("ok-key"),
            None,
            &[DeletableProperty::ActiveEncryptionKey],
        );
        assert_eq!(param_names(&err), ["delete"]);
        assert!(err.to_string().contains("'active-encryption-key'"), "{err}");
        let err = read_sync_job(&dir, "job1").unwrap_err();
        assert_eq!(err.to_string(), "no such sync job 'job1'");
        assert_eq!(param_names(&read_sync_job(&dir, "j").unwrap_err()), ["id"]);
    }
}
