//! Sync jobs: `sync.cfg` (section type `sync`).
//!
//! A job names the key it encrypts with (`active-encryption-key`) and keys it
//! may still need (`associated-key`). The key store asks here before
//! archiving (no job may use the key as active) or deleting (no job may
//! reference it at all), and [`SyncJobs::key_usage`] tells which jobs need
//! each key.
//!
//! Every change of `sync.cfg` goes through [`SyncJobs::edit`]: under the
//! encryption key lock, then the sync job lock, one write for however many
//! jobs change, and rules that keep every key a job names (an active key is
//! never dropped, only moved to the associated keys). Upstream's rules for
//! who may change what, and how an update moves keys, are the API
//! handlers' (`src/api2/config/sync.rs`), which run inside the edit.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use anyhow::{Error, format_err};
use serde::Serialize;

use proxmox_lang::error::ErrorLayer;
use proxmox_schema::ApiType;
use proxmox_section_config::{SectionConfig, SectionConfigData, SectionConfigPlugin};

use pbs_api_types::{JOB_ID_SCHEMA, SyncJobConfig};

use crate::audit::{Op, Pending};
use crate::files::SYNC_CFG;
use crate::{ConfigDir, KeyIndex, KeystoreError, SyncLock};

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

    /// All jobs, in file order. No digest is computed: a fresh process
    /// asking who needs a key (`show`, `list`) does not hash `sync.cfg`.
    pub fn list_jobs(&self) -> Result<Vec<SyncJobConfig>, Error> {
        let path = self.config_path();
        let base = self.dir.open_base()?;
        let config = self.dir.sync_cache.get_data_owning(
            base.as_ref(),
            &SYNC_CFG,
            self.dir.ownership(),
            |text| CONFIG.parse(&path, &text),
        )?;
        self.jobs_of(&config)
    }

    /// All jobs, in file order, and the digest of the text they were read
    /// from.
    pub fn list_jobs_with_digest(&self) -> Result<(Vec<SyncJobConfig>, [u8; 32]), Error> {
        let (config, digest) = self.config_shared()?;
        Ok((self.jobs_of(&config)?, digest))
    }

    /// The jobs of a parsed `sync.cfg`, in file order.
    fn jobs_of(&self, config: &SectionConfigData) -> Result<Vec<SyncJobConfig>, Error> {
        config
            .ids_of_type(SYNC_CFG_TYPE_ID)
            .map(|id| {
                config
                    .lookup(SYNC_CFG_TYPE_ID, id)
                    .layer_err(|| format!("invalid sync job '{id}' in {:?}", self.config_path()))
            })
            .collect()
    }

    /// The parsed config and its digest, read under the sync job lock by a
    /// writer or by a check that decides by the jobs which keys they need.
    /// A job list that read as missing or empty where root last wrote one
    /// with content is refused ([`ConfigDir::refuse_read_empty`]): every
    /// key would look unused, and a write would drop every job. Decided on
    /// the text read, never on a second look (the name may be moved away
    /// and back between the two).
    ///
    /// # Locking
    ///
    /// The caller holds the sync job lock and passes its guard.
    fn config_locked(&self, held: &SyncLock) -> Result<(Arc<SectionConfigData>, [u8; 32]), Error> {
        crate::failpoint::hit("sync:locked");
        let (config, digest) = self.config_shared()?;
        if config.sections.is_empty() {
            self.dir.refuse_read_empty(held)?;
        }
        Ok((config, digest))
    }

    /// Jobs that use `key_id`: (as active key, as associated key), from the
    /// job list as [`SyncJobs::config_locked`] reads it.
    ///
    /// # Locking
    ///
    /// The caller holds the sync job lock and passes its guard.
    pub fn jobs_using_key(
        &self,
        key_id: &str,
        held: &SyncLock,
    ) -> Result<(Vec<String>, Vec<String>), Error> {
        let (config, _digest) = self.config_locked(held)?;
        let mut active = Vec::new();
        let mut associated = Vec::new();
        for job in self.jobs_of(&config)? {
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

    /// Changes `sync.cfg` in one write: `change` gets the jobs and the key
    /// index as they are under both locks, edits jobs through the
    /// [`JobsEdit`], and its result is returned once the config is saved.
    /// With `digest`, a `sync.cfg` that changed since the caller read it
    /// is refused. If `change` fails, nothing is written.
    ///
    /// Whatever `change` does, the edit keeps these rules, the last line of
    /// defence of the keys (the API handlers apply upstream's rules before;
    /// this catches what they or a future caller get wrong):
    /// - every key a changed job names exists, and its active key is not
    ///   archived;
    /// - a job that keeps existing still names the key it had as active
    ///   (as active or associated): an active key is never dropped.
    ///
    /// This is how several jobs switch keys in one config write (a
    /// rotation): edit them all in one `change`.
    ///
    /// Each job whose keys change is recorded in the audit log as
    /// `sync-job-keys` (one intent per job before the write, one outcome
    /// per job after it); an edit that changes no job's keys records
    /// nothing.
    ///
    /// # Locking
    ///
    /// Takes the encryption key lock, then the sync job lock (in that order,
    /// so a key cannot be archived or deleted while a job starts using it).
    pub fn edit<T>(
        &self,
        digest: Option<&[u8; 32]>,
        change: impl FnOnce(&mut JobsEdit) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let keys = self.dir.encryption_keys();
        let _keys_lock = keys.lock_config()?;
        let sync_lock = self.lock_config()?;
        let (config, current_digest) = self.config_locked(&sync_lock)?;
        if let Some(digest) = digest {
            crate::detect_modified_configuration_file(digest, &current_digest)?;
        }
        let mut edit = JobsEdit {
            config: Arc::unwrap_or_clone(config),
            keys: keys.index_data()?,
            original: BTreeMap::new(),
            config_path: self.config_path(),
        };
        let result = change(&mut edit)?;
        let changes = edit.key_changes()?;
        edit.check_keys(&changes)?;
        if edit.original.is_empty() {
            return Ok(result);
        }
        // every job key change recorded, with every lock held and nothing
        // written yet; each outcome after the one write
        let pending = self.record_key_changes(&changes, &edit.keys)?;
        let saved = self.save_config(&edit.config, &sync_lock);
        let mut failed = None;
        for intent in pending {
            let outcome = match &saved {
                Ok(()) => Ok(()),
                Err(err) => Err(format_err!("{err}")),
            };
            if let Err(err) = intent.done(outcome) {
                failed.get_or_insert(err);
            }
        }
        saved?;
        match failed {
            Some(err) => Err(err),
            None => Ok(result),
        }
    }

    /// The intent of each job key change in the audit log
    /// (`sync-job-keys` of the job, naming every key it named before or
    /// names after, with the fingerprints of those in `keys`), for the
    /// config dir's caller. If one cannot be written, those written so far
    /// get their outcome (not made) and the edit fails before anything
    /// changed.
    fn record_key_changes(
        &self,
        changes: &[JobKeyChange],
        keys: &KeyIndex,
    ) -> Result<Vec<Pending<'_>>, Error> {
        let mut events = Vec::with_capacity(changes.len());
        for change in changes {
            let mut named: Vec<&String> = Vec::new();
            for side in [&change.before, &change.after].into_iter().flatten() {
                for key in side.active.iter().chain(&side.associated) {
                    if !named.contains(&key) {
                        named.push(key);
                    }
                }
            }
            let mut event = self.dir.audit_event(Op::SyncJobKeys).job(&change.job);
            for key in named {
                if let Some(fingerprint) = keys.get(key).ok().and_then(|k| k.info.fingerprint) {
                    event = event.fingerprint(fingerprint);
                }
                event = event.id(key.as_str());
            }
            events.push(event);
        }
        self.dir.audit_intents(None, &events)
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

/// The keys of one job: what [`JobKeyChange`] compares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct JobKeys {
    /// `active-encryption-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    /// `associated-key`, in order.
    pub associated: Vec<String>,
}

impl JobKeys {
    fn of(job: &SyncJobConfig) -> Self {
        Self {
            active: job.active_encryption_key.clone(),
            associated: job.associated_key.clone().unwrap_or_default(),
        }
    }
}

/// How one edit changed the keys of one job: what its audit record says.
/// `None` on a side: the job did not exist (created) or no longer exists
/// (removed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct JobKeyChange {
    /// The job id.
    pub job: String,
    /// Its keys before the edit.
    pub before: Option<JobKeys>,
    /// Its keys after the edit.
    pub after: Option<JobKeys>,
}

/// An edit of `sync.cfg` in progress, under both locks (see
/// [`SyncJobs::edit`]).
pub struct JobsEdit {
    config: SectionConfigData,
    keys: Arc<KeyIndex>,
    /// Each job touched, as it was before the edit (`None`: it did not
    /// exist).
    original: BTreeMap<String, Option<SyncJobConfig>>,
    config_path: PathBuf,
}

impl JobsEdit {
    /// The key index, as read under the encryption key lock.
    pub fn keys(&self) -> &KeyIndex {
        &self.keys
    }

    /// Job `id` as the edit has it now; `None` if there is none.
    pub fn job(&self, id: &str) -> Result<Option<SyncJobConfig>, Error> {
        if !self.config.sections.contains_key(id) {
            return Ok(None);
        }
        self.config
            .lookup(SYNC_CFG_TYPE_ID, id)
            .map(Some)
            .layer_err(|| format!("invalid sync job '{id}' in {:?}", self.config_path))
    }

    /// Every job as the edit has it now, in file order.
    pub fn jobs(&self) -> Result<Vec<SyncJobConfig>, Error> {
        let ids: Vec<String> = self
            .config
            .ids_of_type(SYNC_CFG_TYPE_ID)
            .map(str::to_string)
            .collect();
        ids.iter()
            .filter_map(|id| self.job(id).transpose())
            .collect()
    }

    /// Remembers how job `id` was before the edit first touched it.
    fn touch(&mut self, id: &str) -> Result<(), Error> {
        if !self.original.contains_key(id) {
            let before = self.job(id)?;
            self.original.insert(id.to_string(), before);
        }
        Ok(())
    }

    /// Adds `job`, or replaces the job with its id.
    pub fn set_job(&mut self, job: &SyncJobConfig) -> Result<(), Error> {
        self.touch(&job.id)?;
        self.config.set_data(&job.id, SYNC_CFG_TYPE_ID, job)
    }

    /// Removes job `id`; returns it, or `None` if there was none.
    pub fn remove_job(&mut self, id: &str) -> Result<Option<SyncJobConfig>, Error> {
        let job = self.job(id)?;
        if job.is_some() {
            self.touch(id)?;
            self.config.remove(id);
        }
        Ok(job)
    }

    /// The key changes of the jobs touched, in job id order (jobs whose
    /// keys did not change are left out).
    fn key_changes(&self) -> Result<Vec<JobKeyChange>, Error> {
        let mut changes = Vec::new();
        for (id, before) in &self.original {
            let before = before.as_ref().map(JobKeys::of);
            let after = self.job(id)?.as_ref().map(JobKeys::of);
            let no_keys =
                |keys: &Option<JobKeys>| keys.as_ref().is_none_or(|k| k == &JobKeys::default());
            if before != after && !(no_keys(&before) && no_keys(&after)) {
                changes.push(JobKeyChange {
                    job: id.clone(),
                    before,
                    after,
                });
            }
        }
        Ok(changes)
    }

    /// The rules every edit keeps (see [`SyncJobs::edit`]).
    fn check_keys(&self, changes: &[JobKeyChange]) -> Result<(), Error> {
        for change in changes {
            let Some(after) = &change.after else {
                continue; // a removed job needs no key
            };
            let job = &change.job;
            if let Some(previous) = change.before.as_ref().and_then(|b| b.active.as_ref())
                && after.active.as_ref() != Some(previous)
                && !after.associated.contains(previous)
            {
                return Err(KeystoreError::ActiveKeyDropped {
                    job: job.clone(),
                    key: previous.clone(),
                }
                .into());
            }
            for key_id in after.active.iter().chain(&after.associated) {
                self.keys.get(key_id)?;
            }
            if let Some(active) = &after.active
                && self.keys.get(active)?.archived_at.is_some()
            {
                return Err(KeystoreError::Archived { id: active.clone() }.into());
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use pbs_key_config::KeyConfig;

    use super::*;
    use crate::Ownership;

    /// A config dir with the keys `k-zero`, `k-one`, `k-two` (`k-two`
    /// archived) and the push jobs `a` and `b`, both encrypting with
    /// `k-zero`.
    fn store() -> (tempfile::TempDir, ConfigDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir =
            ConfigDir::with_ownership(tmp.path(), Ownership::current_user().unwrap()).unwrap();
        let keys = dir.encryption_keys();
        for (seed, id) in ["k-zero", "k-one", "k-two"].into_iter().enumerate() {
            let key = KeyConfig::without_password([seed as u8 + 1; 32]).unwrap();
            keys.store_key(id, &key).unwrap();
        }
        keys.archive_key("k-two", None).unwrap();
        std::fs::write(
            dir.sync_jobs().config_path(),
            "sync: job-a\n\tstore st1\n\tremote-store rs1\n\tremote rem\n\tsync-direction push\n\
             \tactive-encryption-key k-zero\n\n\
             sync: job-b\n\tstore st1\n\tremote-store rs2\n\tremote rem\n\tsync-direction push\n\
             \tactive-encryption-key k-zero\n\tassociated-key k-two\n",
        )
        .unwrap();
        (tmp, dir)
    }

    /// Makes `new` the active key of `job`, keeping the old one associated.
    fn switch(edit: &mut JobsEdit, job: &str, new: &str) -> Result<(), Error> {
        let mut job = edit.job(job)?.unwrap();
        let old = job.active_encryption_key.replace(new.to_string());
        job.associated_key.get_or_insert_with(Vec::new).extend(old);
        edit.set_job(&job)
    }

    #[test]
    fn several_jobs_switch_keys_in_one_write_with_their_changes() {
        let (_tmp, dir) = store();
        let jobs = dir.sync_jobs();
        let inode = |dir: &ConfigDir| {
            std::os::unix::fs::MetadataExt::ino(
                &std::fs::metadata(dir.sync_jobs().config_path()).unwrap(),
            )
        };
        let before = inode(&dir);
        let changes = jobs
            .edit(None, |edit| {
                switch(edit, "job-a", "k-one")?;
                switch(edit, "job-b", "k-one")?;
                edit.key_changes()
            })
            .unwrap();
        // one atomic replace: one new inode, both jobs switched
        assert_ne!(inode(&dir), before);
        let usage = jobs.key_usage().unwrap();
        assert_eq!(usage.of("k-one").active_in, ["job-a", "job-b"]);
        assert_eq!(usage.of("k-zero").associated_in, ["job-a", "job-b"]);
        assert!(usage.of("k-zero").active_in.is_empty());
        assert!(usage.of("no-such-key").is_empty());
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].job, "job-b");
        assert_eq!(
            changes[1].before,
            Some(JobKeys {
                active: Some("k-zero".into()),
                associated: vec!["k-two".into()],
            })
        );
        assert_eq!(
            changes[1].after,
            Some(JobKeys {
                active: Some("k-one".into()),
                associated: vec!["k-two".into(), "k-zero".into()],
            })
        );
    }

    #[test]
    fn an_edit_never_drops_an_active_key_nor_makes_an_archived_one_active() {
        let (_tmp, dir) = store();
        let jobs = dir.sync_jobs();
        let text = || std::fs::read(jobs.config_path()).unwrap();
        let before = text();
        let refusal = |change: &dyn Fn(&mut JobsEdit) -> Result<(), Error>| {
            let err = jobs.edit(None, change).unwrap_err();
            err.downcast_ref::<KeystoreError>().cloned().unwrap()
        };
        // the active key replaced without keeping it
        let dropped = refusal(&|edit| {
            let mut job = edit.job("job-a")?.unwrap();
            job.active_encryption_key = Some("k-one".into());
            edit.set_job(&job)
        });
        assert_eq!(
            dropped,
            KeystoreError::ActiveKeyDropped {
                job: "job-a".into(),
                key: "k-zero".into()
            }
        );
        // an archived key made active (the old one kept)
        let archived = refusal(&|edit| switch(edit, "job-a", "k-two"));
        assert_eq!(archived, KeystoreError::Archived { id: "k-two".into() });
        // a key that does not exist
        let missing = refusal(&|edit| switch(edit, "job-a", "no-such-key"));
        assert_eq!(
            missing,
            KeystoreError::NotFound {
                id: "no-such-key".into()
            }
        );
        assert_eq!(text(), before, "a refused edit wrote");
        // removing the job is no drop: nobody needs the key through it
        jobs.edit(None, |edit| edit.remove_job("job-a").map(|_| ()))
            .unwrap();
        assert_eq!(jobs.key_usage().unwrap().of("k-zero").active_in, ["job-b"]);
    }

    #[test]
    fn an_edit_honours_the_digest_and_writes_only_what_changed() {
        let (_tmp, dir) = store();
        let jobs = dir.sync_jobs();
        let (_, digest) = jobs.config().unwrap();
        let stamp = || {
            std::fs::metadata(jobs.config_path())
                .unwrap()
                .modified()
                .unwrap()
        };
        let before = stamp();
        // nothing touched: nothing written
        jobs.edit(Some(&digest), |_| Ok(())).unwrap();
        assert_eq!(stamp(), before);
        let err = jobs.edit(Some(&[0u8; 32]), |_| Ok(())).unwrap_err();
        assert_eq!(
            err.downcast_ref::<KeystoreError>(),
            Some(&KeystoreError::DigestMismatch)
        );
        // a change without keys involved has no key change
        let changes = jobs
            .edit(Some(&digest), |edit| {
                let mut job = edit.job("job-a")?.unwrap();
                job.comment = Some("nightly".into());
                edit.set_job(&job)?;
                edit.key_changes()
            })
            .unwrap();
        assert!(changes.is_empty());
        assert_eq!(
            jobs.list_jobs().unwrap()[0].comment.as_deref(),
            Some("nightly")
        );
    }
}
