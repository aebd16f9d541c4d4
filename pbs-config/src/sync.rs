//! Sync jobs: `sync.cfg` (section type `sync`), as far as keys are concerned.
//!
//! A job names the key it encrypts with (`active-encryption-key`) and keys it
//! may still need (`associated-key`). The key store asks here before
//! archiving (no job may use the key as active) or deleting (no job may
//! reference it at all), and [`SyncJobs::key_usage`] tells which jobs need
//! each key.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use anyhow::{Error, bail};
use serde::Serialize;

use proxmox_lang::error::ErrorLayer;
use proxmox_schema::ApiType;
use proxmox_section_config::{SectionConfig, SectionConfigData, SectionConfigPlugin};

use pbs_api_types::{JOB_ID_SCHEMA, SyncJobConfig};

use crate::files::SYNC_CFG;
use crate::{ConfigDir, KeystoreError, SyncLock};

/// Section type of a sync job.
pub const SYNC_CFG_TYPE_ID: &str = "sync";

/// The section-config format of `sync.cfg`.
pub static CONFIG: LazyLock<SectionConfig> = LazyLock::new(init);

fn init() -> SectionConfig {
    let obj_schema = SyncJobConfig::API_SCHEMA.unwrap_all_of_schema();
    let plugin = SectionConfigPlugin::new(
        SYNC_CFG_TYPE_ID.to_string(),
        Some(String::from("id")),
        obj_schema,
    );
    let mut config = SectionConfig::new(&JOB_ID_SCHEMA);
    config.register_plugin(plugin);
    config
}

/// The sync jobs of one [`ConfigDir`]; get it with [`ConfigDir::sync_jobs`].
#[derive(Clone, Copy)]
pub struct SyncJobs<'a> {
    dir: &'a ConfigDir,
}

impl ConfigDir {
    /// The sync job config of this config dir.
    pub fn sync_jobs(&self) -> SyncJobs<'_> {
        SyncJobs { dir: self }
    }
}

impl SyncJobs<'_> {
    /// Path of `sync.cfg` (for messages).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path(SYNC_CFG.name)
    }

    /// Takes the sync job config lock.
    ///
    /// # Locking
    ///
    /// After the encryption key config lock, if both are needed.
    pub fn lock_config(&self) -> Result<SyncLock, Error> {
        self.dir.lock_config_file()
    }

    /// The parsed config (shared with the cache) and its digest. No lock.
    pub fn config_shared(&self) -> Result<(Arc<SectionConfigData>, [u8; 32]), Error> {
        let path = self.config_path();
        let base = self.dir.open_base()?;
        self.dir
            .sync_cache
            .get(base.as_ref(), &SYNC_CFG, self.dir.ownership(), |text| {
                CONFIG.parse(&path, text)
            })
    }

    /// The parsed config and its digest. No lock.
    pub fn config(&self) -> Result<(SectionConfigData, [u8; 32]), Error> {
        let (data, digest) = self.config_shared()?;
        Ok((Arc::unwrap_or_clone(data), digest))
    }

    /// Writes `sync.cfg` atomically.
    ///
    /// # Locking
    ///
    /// The caller holds the sync job lock and passes its guard.
    pub fn save_config(&self, config: &SectionConfigData, held: &SyncLock) -> Result<(), Error> {
        let raw = CONFIG.write(self.config_path(), config)?;
        self.dir.write_locked(raw.as_bytes(), held, None)
    }

    /// All jobs, in file order.
    pub fn list_jobs(&self) -> Result<Vec<SyncJobConfig>, Error> {
        let (config, _) = self.config_shared()?;
        config
            .ids_of_type(SYNC_CFG_TYPE_ID)
            .map(|id| {
                config
                    .lookup(SYNC_CFG_TYPE_ID, id)
                    .layer_err(|| format!("invalid sync job '{id}' in {:?}", self.config_path()))
            })
            .collect()
    }

    /// Jobs that use `key_id`: (as active key, as associated key).
    pub fn jobs_using_key(&self, key_id: &str) -> Result<(Vec<String>, Vec<String>), Error> {
        let mut active = Vec::new();
        let mut associated = Vec::new();
        for job in self.list_jobs()? {
            if job.uses_as_active(key_id) {
                active.push(job.id.clone());
            }
            if job.is_associated(key_id) {
                associated.push(job.id);
            }
        }
        Ok((active, associated))
    }

    /// Which jobs name which key, from the config as it is now (no lock):
    /// the one source of "who needs this key".
    pub fn key_usage(&self) -> Result<KeyUsage, Error> {
        let mut usage = KeyUsage::default();
        for job in self.list_jobs()? {
            if let Some(active) = &job.active_encryption_key {
                usage.entry(active).active_in.push(job.id.clone());
            }
            for key in job.associated_key.iter().flatten() {
                let users = usage.entry(key);
                // a list naming a key twice names its job once
                if users.associated_in.last() != Some(&job.id) {
                    users.associated_in.push(job.id.clone());
                }
            }
        }
        Ok(usage)
    }

    /// Sets or clears the keys of job `job_id`. `active`: `None` keeps it,
    /// `Some(None)` clears it. `associated`: `None` keeps the list.
    ///
    /// Keys named must exist; an active key must not be archived.
    ///
    /// # Locking
    ///
    /// Takes the encryption key lock, then the sync job lock (in that order,
    /// so a key cannot be archived or deleted while a job starts using it).
    pub fn update_job_keys(
        &self,
        job_id: &str,
        active: Option<Option<String>>,
        associated: Option<Vec<String>>,
        digest: Option<&[u8; 32]>,
    ) -> Result<SyncJobConfig, Error> {
        (|| {
            let keys = self.dir.encryption_keys();
            let _keys_lock = keys.lock_config()?;
            let sync_lock = self.lock_config()?;
            let (mut config, current_digest) = self.config()?;
            if let Some(digest) = digest {
                crate::detect_modified_configuration_file(digest, &current_digest)?;
            }
            let mut job: SyncJobConfig = match config.sections.contains_key(job_id) {
                true => config.lookup(SYNC_CFG_TYPE_ID, job_id)?,
                false => bail!("no such sync job '{job_id}'"),
            };
            let key_index = keys.index_data()?;
            if let Some(active) = active {
                if let Some(key_id) = &active {
                    let entry = key_index.get(key_id)?;
                    if entry.archived_at.is_some() {
                        return Err(KeystoreError::Archived { id: key_id.clone() }.into());
                    }
                }
                job.active_encryption_key = active;
            }
            if let Some(associated) = associated {
                for key_id in &associated {
                    key_index.get(key_id)?;
                }
                job.associated_key = (!associated.is_empty()).then_some(associated);
            }
            config.set_data(job_id, SYNC_CFG_TYPE_ID, &job)?;
            self.save_config(&config, &sync_lock)?;
            Ok(job)
        })()
        .layer_err(|| format!("failed to update sync job '{job_id}'"))
    }

    /// Job ids for shell completion.
    pub fn job_ids(&self) -> Vec<String> {
        match self.config_shared() {
            Ok((config, _)) => config
                .ids_of_type(SYNC_CFG_TYPE_ID)
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// The jobs that name one key (see [`SyncJobs::key_usage`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct KeyUsers {
    /// Jobs that encrypt with the key (`active-encryption-key`), in file
    /// order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub active_in: Vec<String>,
    /// Jobs that keep it to decrypt (`associated-key`), in file order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub associated_in: Vec<String>,
}

impl KeyUsers {
    /// Whether no job names the key.
    pub fn is_empty(&self) -> bool {
        self.active_in.is_empty() && self.associated_in.is_empty()
    }
}

/// Which jobs name which key, as [`SyncJobs::key_usage`] read it.
#[derive(Clone, Debug, Default)]
pub struct KeyUsage {
    users: HashMap<String, KeyUsers>,
}

static NO_USERS: KeyUsers = KeyUsers {
    active_in: Vec::new(),
    associated_in: Vec::new(),
};

impl KeyUsage {
    fn entry(&mut self, key_id: &str) -> &mut KeyUsers {
        self.users.entry(key_id.to_string()).or_default()
    }

    /// The jobs that name `key_id` (none for a key no job names).
    pub fn of(&self, key_id: &str) -> &KeyUsers {
        self.users.get(key_id).unwrap_or(&NO_USERS)
    }
}

/// Takes the sync job lock of the default config dir.
pub fn lock_config() -> Result<SyncLock, Error> {
    ConfigDir::default_dir()?.sync_jobs().lock_config()
}

/// The sync job config of the default config dir and its digest.
pub fn config() -> Result<(SectionConfigData, [u8; 32]), Error> {
    ConfigDir::default_dir()?.sync_jobs().config()
}

/// Saves the sync job config of the default config dir (caller holds the lock).
pub fn save_config(config: &SectionConfigData, held: &SyncLock) -> Result<(), Error> {
    ConfigDir::default_dir()?
        .sync_jobs()
        .save_config(config, held)
}

/// Sync job ids of the default config dir, for shell completion.
pub fn complete_sync_job_id(_arg: &str, _param: &HashMap<String, String>) -> Vec<String> {
    match ConfigDir::default_dir() {
        Ok(dir) => dir.sync_jobs().job_ids(),
        Err(_) => Vec::new(),
    }
}
