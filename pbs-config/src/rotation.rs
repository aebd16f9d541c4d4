//! Key rotation of sync jobs: one resumable command, journaled (DESIGN.md
//! section 7, issue 18).
//!
//! A rotation gives one or more push jobs that encrypt with the same key
//! (the old key) a new key, keeping the old one associated with them:
//! rotating never re-encrypts what a remote holds, so every old key stays
//! needed. Its steps, each recorded in the journal once done:
//!
//! 1. `planned`: the plan (jobs, old key and its fingerprint, new id,
//!    export, archive) is written;
//! 2. `key-stored`: a new key is generated, its fingerprint written to the
//!    journal, then it is stored under the new id;
//! 3. `export-proven` (with an export): the new key is exported and the
//!    export proven by the restore drill ([`RotateHooks::export`]);
//! 4. `jobs-switched`: every job of the plan gets the new key as active key
//!    in one `sync.cfg` write, the old key moving to its associated keys
//!    ([`RotateHooks::switch_job`], upstream's rule);
//! 5. `old-key-archived` (with `archive_old`): the old key is archived,
//!    unless another job still encrypts with it (then it stays active, and
//!    the journal says why);
//!
//! then the journal is removed. Running the same rotation again resumes at
//! the first step not recorded; each step first looks at what the store
//! shows, so a step done but not recorded (a crash in between) is recorded,
//! not done twice. The journal names the new key's fingerprint before the
//! key is stored: a key of that id and fingerprint is this rotation's (a
//! key file a killed store left without its config entry is adopted), any
//! other refuses the rotation. So a resumed rotation never makes a second
//! new key. Run again after the journal is gone, the same command finds
//! its jobs on the new key and changes nothing.
//!
//! An abort ([`Rotations::abort`]) is possible until the jobs are switched:
//! it marks the journal, moves the new key into the trash (reason
//! `rotate-abort`: archived, then deleted, so its record keeps it; a key
//! file a killed store left without its config entry is moved there as
//! `rotate-abort-orphan`, recorded like any other change), and removes the
//! journal. After the switch, jobs encrypt with the new key and
//! an abort is refused.
//!
//! Files, in `encryption-keys/.rotate/` (root:root 0700, reached through
//! the key directory's handle, see [`crate::files::ROTATE_DIR_NAME`]): one
//! journal `<job>.json` per rotation (named after its first job; it lists
//! all of them), replaced atomically at each step, and `rotate.lck`, which
//! a rotation or an abort holds from start to end: two rotations never run
//! at once (the second waits for the lock, then finds the first's work).
//!
//! Every step is recorded in the audit log (`rotate-plan`,
//! `rotate-store-key`, `rotate-prove-export`, `rotate-switch-job` per job,
//! `rotate-archive-old-key`, `rotate-abort`, `rotate-finish`): its intent
//! before the journal is written, its outcome after. The operations a step
//! is made of (the store, the `sync.cfg` edit, the archive) record
//! themselves beside them.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Error, bail, format_err};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use proxmox_lang::error::ErrorLayer;
use proxmox_sys::fs::CreateOptions;

use pbs_api_types::{CryptKey, Fingerprint, JOB_ID_SCHEMA, SyncJobConfig};
use pbs_key_config::KeyConfig;

use crate::audit::{Event, Op};
use crate::dir_handle::{DirHandle, read_all};
use crate::encryption_keys::{DeleteOptions, Deleted, check_key_id, key_fingerprint};
use crate::files::{
    MAX_JOURNAL_SIZE, ROTATE_CLASS, ROTATE_DIR_MODE, ROTATE_DIR_NAME, ROTATE_LOCK, journal_name,
    key_file_name,
};
use crate::lock::BackupLockGuard;
use crate::sync::JobsEdit;
use crate::trash::{TrashReason, TrashRecord};
use crate::{ConfigDir, KeystoreError, failpoint};

/// The version of the journal format.
pub const JOURNAL_VERSION: u32 = 1;

/// The last step of a rotation that is done, as its journal records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The plan is recorded; nothing else is done.
    Planned,
    /// The new key is in the store.
    KeyStored,
    /// The export of the new key is proven.
    ExportProven,
    /// The jobs encrypt with the new key.
    JobsSwitched,
    /// The old key is archived (or kept active, for the reason recorded).
    OldKeyArchived,
}

impl Step {
    /// The step as the journal names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Planned => "planned",
            Step::KeyStored => "key-stored",
            Step::ExportProven => "export-proven",
            Step::JobsSwitched => "jobs-switched",
            Step::OldKeyArchived => "old-key-archived",
        }
    }
}

/// Where a rotation exports the new key to, and for whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExportPlan {
    /// The bundle file (the CLI's `--export-file`), absolute (resolved
    /// against the directory the rotation was planned in); `None`: the
    /// answer of the API request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Who can open it: `passphrase`, `rsa:<key id>` (as bundles name RSA
    /// keys), sorted.
    pub recipients: Vec<String>,
    /// How the export was proven, once it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

impl ExportPlan {
    /// The recipient of a passphrase.
    pub const PASSPHRASE: &'static str = "passphrase";

    /// The recipient of an RSA key, by its id.
    pub fn rsa(key_id: &str) -> String {
        format!("rsa:{key_id}")
    }

    /// Whether a passphrase is among the recipients.
    pub fn has_passphrase(&self) -> bool {
        self.recipients.iter().any(|r| r == Self::PASSPHRASE)
    }

    /// The ids of the RSA recipients.
    pub fn rsa_key_ids(&self) -> impl Iterator<Item = &str> {
        self.recipients
            .iter()
            .filter_map(|r| r.strip_prefix("rsa:"))
    }

    /// Whether `other`, as asked for now, is this plan's export: the same
    /// recipients and file. A plan's file is absolute since stop 33; a
    /// journal written before kept it as given, and names, as it did then,
    /// that file in the current directory (finding 35).
    fn same_target(&self, other: &ExportPlan) -> bool {
        let same_file = match (&self.file, &other.file) {
            (Some(planned), Some(asked)) if Path::new(planned).is_relative() => {
                std::path::absolute(planned).is_ok_and(|planned| planned == Path::new(asked))
            }
            (planned, asked) => planned == asked,
        };
        same_file && self.recipients == other.recipients
    }
}

/// A rotation in progress: `.rotate/<job>.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Journal {
    /// [`JOURNAL_VERSION`].
    pub version: u32,
    /// The jobs, sorted.
    pub jobs: Vec<String>,
    /// The key they encrypted with.
    pub old_key: String,
    /// Its fingerprint.
    pub old_fingerprint: Fingerprint,
    /// The id of the new key.
    pub new_key: String,
    /// The new key's fingerprint: written before the key is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_fingerprint: Option<Fingerprint>,
    /// Where the new key is exported to, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportPlan>,
    /// Whether the old key is archived at the end.
    pub archive_old: bool,
    /// The last step done.
    pub step: Step,
    /// Why the old key was not archived (another job encrypts with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_key_kept: Option<String>,
    /// When an abort began (epoch); a rotation being aborted only goes on
    /// with the abort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborting: Option<i64>,
    /// When it was planned (epoch).
    pub started: i64,
    /// When the journal was last written (epoch).
    pub updated: i64,
    /// Who planned it.
    pub actor: String,
}

impl Journal {
    /// The journal's file name: after its first job.
    pub fn file_name(&self) -> String {
        journal_name(&self.jobs[0])
    }

    /// Whether it names `job`.
    pub fn names_job(&self, job: &str) -> bool {
        self.jobs.iter().any(|j| j == job)
    }

    /// The command that resumes it (`proxmox-backup-manager encryption-key
    /// rotate ...`), for messages. Passphrases and key files are named by
    /// their options only.
    pub fn command(&self) -> String {
        let mut command = String::from("proxmox-backup-manager encryption-key rotate");
        for job in &self.jobs {
            command.push_str(&format!(" --job {job}"));
        }
        command.push_str(&format!(" --new-id {}", self.new_key));
        if let Some(export) = &self.export {
            match &export.file {
                Some(file) => command.push_str(&format!(" --export-file {file:?}")),
                None => command.push_str(" (over the API, with the export's recipients)"),
            }
            if export.has_passphrase() {
                command.push_str(" --passphrase-file FILE");
            }
            for _ in export.rsa_key_ids() {
                command.push_str(" --master-pubkey PEM");
            }
        }
        if self.archive_old {
            command.push_str(" --archive-old");
        }
        command
    }

    fn quoted_jobs(&self) -> String {
        quoted(&self.jobs)
    }
}

/// The caller's check of an abort: the rotation's jobs as they are, and
/// the id of the new key the abort moves into the trash.
pub type AbortCheck<'a> = dyn FnMut(&[SyncJobConfig], &str) -> Result<(), Error> + 'a;

/// What a rotation is asked to do.
#[derive(Clone, Debug)]
pub struct RotateRequest {
    /// The jobs (at least one; repeated ones count once).
    pub jobs: Vec<String>,
    /// The id of the new key; `None`: the journal's when resuming, else
    /// [`default_new_key`].
    pub new_key: Option<String>,
    /// The export of the new key, if asked for (without `proof`).
    pub export: Option<ExportPlan>,
    /// Archive the old key at the end.
    pub archive_old: bool,
    /// Now (epoch): tests pass their own.
    pub now: i64,
}

/// What a rotation needs from its caller: the privilege checks and rules
/// of the API (the root crate's), and the export, which goes to a file or
/// an API answer.
pub trait RotateHooks {
    /// Before a rotation is planned or resumed, or found done already: may
    /// the caller rotate `jobs` (as they are now) to `new_key`? (And for a
    /// plan, `resuming` false: can the export go where it is to go?)
    fn check(&mut self, jobs: &[SyncJobConfig], new_key: &str, resuming: bool)
    -> Result<(), Error>;

    /// Inside the one edit of `sync.cfg` that switches the jobs: makes
    /// `new_key` the active key of `job`; the key it had must stay
    /// associated (the edit refuses to drop it).
    fn switch_job(&mut self, edit: &mut JobsEdit, job: &str, new_key: &str) -> Result<(), Error>;

    /// Exports the new key `key` as `plan` says and proves the export with
    /// the restore drill; returns how it was proven (for the journal).
    /// Called again after a crash until it succeeded once: an export that
    /// exists already as this rotation's is proven again, not made twice.
    fn export(&mut self, plan: &ExportPlan, key: &CryptKey) -> Result<String, Error>;
}

/// The rule of the plain library caller: the new key becomes active, the
/// old one moves to the associated keys.
pub struct PlainHooks;

impl RotateHooks for PlainHooks {
    fn check(&mut self, _: &[SyncJobConfig], _: &str, _: bool) -> Result<(), Error> {
        Ok(())
    }

    fn switch_job(&mut self, edit: &mut JobsEdit, job: &str, new_key: &str) -> Result<(), Error> {
        let Some(mut config) = edit.job(job)? else {
            bail!("no such sync job '{job}'");
        };
        let old = config.active_encryption_key.replace(new_key.to_string());
        let associated = config.associated_key.get_or_insert_with(Vec::new);
        if let Some(old) = old
            && !associated.contains(&old)
        {
            associated.push(old);
        }
        edit.set_job(&config)
    }

    fn export(&mut self, _: &ExportPlan, _: &CryptKey) -> Result<String, Error> {
        bail!("this caller cannot export keys")
    }
}

/// What a rotation did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    tag = "outcome"
)]
pub enum Rotated {
    /// The rotation ran to its end; the journal as it ended (removed now).
    Done {
        /// The journal, last step done.
        journal: Box<Journal>,
        /// The step it was resumed from; `None` if planned in this run.
        #[serde(skip_serializing_if = "Option::is_none")]
        resumed_from: Option<Step>,
    },
    /// No rotation was in progress and the jobs encrypt with the new key
    /// already (the same command run again after its end): nothing done.
    AlreadyDone {
        /// The jobs.
        jobs: Vec<String>,
        /// The key they encrypt with.
        new_key: String,
    },
}

/// What an abort did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Aborted {
    /// The journal as the abort found it (removed now).
    pub journal: Journal,
    /// The trash entry the new key went to, if the store had it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trashed: Option<String>,
}

/// Why a rotation or abort is refused: raised inside the error chain, so
/// the API answers 404 for [`RotateError::NoRotation`] and
/// [`RotateError::NoSuchJob`], 400 for the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotateError {
    /// No rotation of the job is in progress.
    NoRotation {
        /// The job.
        job: String,
    },
    /// A job of the request does not exist.
    NoSuchJob {
        /// The job.
        job: String,
    },
    /// A job of the request encrypts with no key (a pull job never does).
    NoActiveKey {
        /// The job.
        job: String,
    },
    /// The new key's id is taken.
    NewKeyExists {
        /// The id.
        new_key: String,
    },
    /// A rotation with another plan is in progress for the job.
    OtherRotation {
        /// The job asked for.
        job: String,
        /// The command of the rotation in progress.
        command: String,
        /// How its plan differs.
        why: String,
    },
    /// The jobs of a rotation encrypt with different keys.
    DifferentKeys {
        /// `(job, active key)` of each job.
        jobs: Vec<(String, Option<String>)>,
    },
    /// The jobs encrypt with the new key already: an abort would leave
    /// backups made with it to a key that is gone.
    AlreadySwitched {
        /// The jobs.
        jobs: Vec<String>,
        /// The new key.
        new_key: String,
    },
    /// An abort began: only the abort goes on.
    Aborting {
        /// The jobs.
        jobs: Vec<String>,
    },
}

impl std::fmt::Display for RotateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RotateError::NoRotation { job } => {
                write!(f, "no rotation of sync job '{job}' is in progress")
            }
            RotateError::NoSuchJob { job } => write!(f, "no such sync job '{job}'"),
            RotateError::NoActiveKey { job } => write!(
                f,
                "sync job '{job}' has no active encryption key - nothing to rotate (give it one \
                 with 'proxmox-backup-manager sync-job update {job} --active-encryption-key KEY')"
            ),
            RotateError::NewKeyExists { new_key } => write!(
                f,
                "encryption key '{new_key}' exists already - give the new key another id with \
                 --new-id"
            ),
            RotateError::OtherRotation { job, command, why } => write!(
                f,
                "sync job '{job}' is part of a rotation in progress that was planned otherwise \
                 ({why}) - resume it as planned ({command}), or abort it with --abort"
            ),
            RotateError::DifferentKeys { jobs } => {
                let list: Vec<String> = jobs
                    .iter()
                    .map(|(job, key)| match key {
                        Some(key) => format!("'{job}' with '{key}'"),
                        None => format!("'{job}' with none"),
                    })
                    .collect();
                write!(
                    f,
                    "the sync jobs do not encrypt with the same key ({}) - rotate the jobs of \
                     one key together, and each key on its own",
                    list.join(", ")
                )
            }
            RotateError::AlreadySwitched { jobs, new_key } => write!(
                f,
                "sync job(s) {} encrypt with the new key '{new_key}' already - an abort would \
                 take away the key their new backups need; finish the rotation by running it \
                 again (or rotate once more)",
                quoted(jobs)
            ),
            RotateError::Aborting { jobs } => write!(
                f,
                "the rotation of sync job(s) {} is being aborted - finish the abort with \
                 --abort",
                quoted(jobs)
            ),
        }
    }
}

impl std::error::Error for RotateError {}

fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("'{item}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The new key's id when none is given: `<job>-<YYYY-MM-DD>` (UTC), the
/// job's id cut to fit the 32 characters of a key id. The same command
/// run twice on one day names the same key, so the second run finds the
/// first's work instead of rotating again.
pub fn default_new_key(first_job: &str, now: i64) -> String {
    let date = match chrono::DateTime::from_timestamp(now, 0) {
        Some(time) => time.format("-%Y-%m-%d").to_string(),
        // beyond chrono's years (±262143): no date a clock gives
        None => format!("-{now}"),
    };
    let room = 32usize.saturating_sub(date.len());
    let job: String = first_job.chars().take(room).collect();
    format!("{job}{date}")
}

/// The rotations of one key store; get it with [`ConfigDir::rotations`].
#[derive(Clone, Copy)]
pub struct Rotations<'a> {
    dir: &'a ConfigDir,
}

impl ConfigDir {
    /// The key rotations of this config dir.
    pub fn rotations(&self) -> Rotations<'_> {
        Rotations { dir: self }
    }
}

/// The held rotation lock, with the directories a rotation works in.
struct Held {
    key_dir: DirHandle,
    rotate_dir: DirHandle,
    _lock: BackupLockGuard,
}

impl<'a> Rotations<'a> {
    /// The config dir.
    pub fn dir(&self) -> &'a ConfigDir {
        self.dir
    }

    fn rotate_dir_options(&self) -> CreateOptions {
        let (uid, gid) = self.dir.ownership().owner_of(ROTATE_CLASS);
        CreateOptions::new()
            .perm(Mode::from_bits_truncate(ROTATE_DIR_MODE))
            .owner(uid)
            .group(gid)
    }

    /// Opens the key directory and the rotation directory for reading;
    /// `None` if either is missing.
    fn open_for_reading(&self) -> Result<Option<DirHandle>, Error> {
        let keys = self.dir.encryption_keys();
        let Some(base) = self.dir.open_base()? else {
            return Ok(None);
        };
        let Some(key_dir) = keys.open_key_dir(&base)? else {
            return Ok(None);
        };
        key_dir.open_dir(ROTATE_DIR_NAME, self.dir.ownership().key_dir_policy())
    }

    /// Takes the rotation lock (creating `.rotate/` if missing).
    ///
    /// # Locking
    ///
    /// The outermost lock of the store: taken before any other.
    fn lock(&self) -> Result<Held, Error> {
        let keys = self.dir.encryption_keys();
        let Some(base) = self.dir.open_base()? else {
            bail!(
                "no encryption keys in {:?} - nothing to rotate",
                self.dir.base()
            );
        };
        let Some(key_dir) = keys.open_key_dir(&base)? else {
            bail!(
                "no encryption keys in {:?} - nothing to rotate",
                keys.key_dir()
            );
        };
        let rotate_dir = key_dir.ensure_dir(
            ROTATE_DIR_NAME,
            self.rotate_dir_options(),
            self.dir.ownership().key_dir_policy(),
        )?;
        let lock = self
            .dir
            .lock_in(rotate_dir.try_clone()?, ROTATE_LOCK.name, true)
            .layer_err(|| "another rotation is running")?;
        Ok(Held {
            key_dir,
            rotate_dir,
            _lock: lock,
        })
    }

    /// Every rotation in progress, by first job. Takes no lock: journals
    /// are replaced atomically.
    pub fn list(&self) -> Result<Vec<Journal>, Error> {
        match self.open_for_reading()? {
            Some(rotate_dir) => self.read_journals(&rotate_dir),
            None => Ok(Vec::new()),
        }
    }

    /// The rotation in progress that `job` is part of, if any. No lock.
    pub fn status(&self, job: &str) -> Result<Option<Journal>, Error> {
        check_job_id(job)?;
        Ok(self.list()?.into_iter().find(|j| j.names_job(job)))
    }

    fn read_journals(&self, rotate_dir: &DirHandle) -> Result<Vec<Journal>, Error> {
        let mut journals = Vec::new();
        let mut names = rotate_dir.names()?;
        names.sort();
        for name in names {
            if !name.ends_with(".json") {
                continue; // the lock, a temp file of a write in progress
            }
            let Some(mut opened) = rotate_dir.open_regular(&name, MAX_JOURNAL_SIZE)? else {
                continue; // removed since the listing
            };
            self.dir
                .ownership()
                .check_trusted(ROTATE_CLASS, &opened.stat, &opened.path)?;
            let data = read_all(&mut opened, MAX_JOURNAL_SIZE)?;
            let journal: Journal = serde_json::from_slice(&data).map_err(|err| {
                format_err!(
                    "unreadable rotation journal {:?} - line {}, column {} (inspect it; remove \
                     it by hand only if that rotation is to be forgotten)",
                    opened.path,
                    err.line(),
                    err.column()
                )
            })?;
            if journal.version != JOURNAL_VERSION || journal.jobs.is_empty() {
                bail!(
                    "rotation journal {:?} is of version {} or names no job - written by \
                     another version? Resume it with that version",
                    opened.path,
                    journal.version
                );
            }
            journals.push(journal);
        }
        Ok(journals)
    }

    /// Writes `journal` (atomically, root:root 0600).
    fn write(&self, held: &Held, journal: &mut Journal, now: i64) -> Result<(), Error> {
        journal.updated = now.max(journal.updated);
        let data = serde_json::to_vec_pretty(journal)?;
        let options = self.dir.ownership().options_for(ROTATE_CLASS);
        held.rotate_dir
            .replace(&journal.file_name(), &data, options, None)
            .layer_err(|| "unable to write the rotation journal")
    }

    /// Removes `journal`.
    fn remove(&self, held: &Held, journal: &Journal) -> Result<(), Error> {
        held.rotate_dir.unlink(&journal.file_name())?;
        held.rotate_dir.sync()
    }

    /// The audit event of `op` of `journal`, for the config dir's caller:
    /// both keys (the new one's fingerprint once it is known) and `job`,
    /// or all of the rotation's jobs for `None`.
    fn event(&self, op: Op, journal: &Journal, job: Option<&str>) -> Event {
        let mut event = self
            .dir
            .audit_event(op)
            .id(journal.old_key.as_str())
            .fingerprint(journal.old_fingerprint)
            .id(journal.new_key.as_str())
            .job(job.map_or_else(|| journal.jobs.join(","), str::to_string));
        if let Some(fingerprint) = journal.new_fingerprint {
            event = event.fingerprint(fingerprint);
        }
        event
    }

    /// Records `op` of `journal` in the audit log around `change` (which
    /// writes or removes the journal, nothing else): the intent, synced,
    /// before; the outcome after. An intent that cannot be written fails
    /// the step before the journal changes.
    ///
    /// # Locking
    ///
    /// The audit log's, after the rotation lock (see [`crate::audit`]).
    fn record<T>(
        &self,
        held: &Held,
        op: Op,
        journal: &Journal,
        change: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        let event = self.event(op, journal, None);
        let pending = self.dir.audit_intent(Some(&held.key_dir), &event)?;
        pending.done(change())
    }

    /// Rotates the jobs of `request` to a new key, or resumes their
    /// rotation in progress (see the module docs).
    ///
    /// # Errors
    ///
    /// A [`RotateError`] when refused; what a step could not do (the
    /// journal keeps what was done: run the same rotation again).
    ///
    /// # Locking
    ///
    /// Takes the rotation lock for the whole run, and each step the locks
    /// of the operation it is made of.
    pub fn rotate(
        &self,
        request: &RotateRequest,
        hooks: &mut dyn RotateHooks,
    ) -> Result<Rotated, Error> {
        let jobs = check_jobs(&request.jobs)?;
        if let Some(new_key) = &request.new_key {
            check_key_id(new_key)?;
        }
        let held = self.lock()?;
        let found = self
            .read_journals(&held.rotate_dir)?
            .into_iter()
            .find(|journal| jobs.iter().any(|job| journal.names_job(job)));
        let (mut journal, resumed_from) = match found {
            Some(journal) => {
                check_same_plan(&journal, &jobs, request)?;
                let current = self.current_jobs(&jobs)?;
                hooks.check(&current, &journal.new_key, true)?;
                let step = journal.step;
                (journal, Some(step))
            }
            None => match self.plan(&held, &jobs, request, hooks)? {
                Some(journal) => (journal, None),
                None => {
                    let new_key = request
                        .new_key
                        .clone()
                        .unwrap_or_else(|| default_new_key(&jobs[0], request.now));
                    return Ok(Rotated::AlreadyDone { jobs, new_key });
                }
            },
        };
        self.run_steps(&held, &mut journal, request, hooks)?;
        Ok(Rotated::Done {
            journal: Box::new(journal),
            resumed_from,
        })
    }

    /// Those of `jobs` that `sync.cfg` has now, as it has them.
    fn current_jobs(&self, jobs: &[String]) -> Result<Vec<SyncJobConfig>, Error> {
        let all = self.dir.sync_jobs().list_jobs()?;
        Ok(all
            .into_iter()
            .filter(|job| jobs.contains(&job.id))
            .collect())
    }

    /// Records the plan of a new rotation; `None` if every job encrypts
    /// with the new key already.
    fn plan(
        &self,
        held: &Held,
        jobs: &[String],
        request: &RotateRequest,
        hooks: &mut dyn RotateHooks,
    ) -> Result<Option<Journal>, Error> {
        let current = self.current_jobs(jobs)?;
        if let Some(missing) = jobs.iter().find(|id| !current.iter().any(|j| j.id == **id)) {
            return Err(RotateError::NoSuchJob {
                job: missing.clone(),
            }
            .into());
        }
        let new_key = request
            .new_key
            .clone()
            .unwrap_or_else(|| default_new_key(&jobs[0], request.now));
        if current
            .iter()
            .all(|job| job.active_encryption_key.as_deref() == Some(new_key.as_str()))
        {
            // done already, or never a rotation: the jobs name a key that
            // was not made here. The caller's answer may still hand that
            // key out (the API's export), so it is checked as a resume is
            hooks.check(&current, &new_key, true)?;
            return Ok(None);
        }
        for job in &current {
            if job.active_encryption_key.is_none() {
                return Err(RotateError::NoActiveKey {
                    job: job.id.clone(),
                }
                .into());
            }
        }
        let old_key = current[0].active_encryption_key.clone().unwrap_or_default();
        if current
            .iter()
            .any(|job| job.active_encryption_key.as_deref() != Some(old_key.as_str()))
        {
            return Err(RotateError::DifferentKeys {
                jobs: current
                    .iter()
                    .map(|job| (job.id.clone(), job.active_encryption_key.clone()))
                    .collect(),
            }
            .into());
        }
        let keys = self.dir.encryption_keys();
        let old = keys.entry(&old_key)?;
        let Some(old_fingerprint) = old.info.fingerprint else {
            bail!(
                "encryption key '{old_key}' has no fingerprint in the config - run 'proxmox-backup-manager encryption-key verify'"
            );
        };
        // the caller first: the new id may be one it may not see, given
        // or the default it can tell in advance (findings 48 and 58)
        hooks.check(&current, &new_key, false)?;
        match keys.entry(&new_key) {
            Ok(_) => {
                return Err(RotateError::NewKeyExists { new_key }.into());
            }
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(err),
        }
        let journal = Journal {
            version: JOURNAL_VERSION,
            jobs: jobs.to_vec(),
            old_key,
            old_fingerprint,
            new_key,
            new_fingerprint: None,
            export: request.export.clone().map(|mut export| {
                export.proof = None;
                export
            }),
            archive_old: request.archive_old,
            step: Step::Planned,
            old_key_kept: None,
            aborting: None,
            started: request.now,
            updated: request.now,
            actor: self.dir.caller().actor.to_string(),
        };
        let mut written = journal.clone();
        self.record(held, Op::RotatePlan, &journal, || {
            self.write(held, &mut written, request.now)
        })?;
        failpoint::hit("rotate:planned");
        Ok(Some(written))
    }

    /// Runs the steps not done yet.
    fn run_steps(
        &self,
        held: &Held,
        journal: &mut Journal,
        request: &RotateRequest,
        hooks: &mut dyn RotateHooks,
    ) -> Result<(), Error> {
        if journal.aborting.is_some() {
            return Err(RotateError::Aborting {
                jobs: journal.jobs.clone(),
            }
            .into());
        }
        let now = request.now;
        if journal.step < Step::KeyStored {
            self.store_new_key(held, journal, now)?;
            self.record(held, Op::RotateStoreKey, journal, || {
                let mut next = journal.clone();
                next.step = Step::KeyStored;
                self.write(held, &mut next, now)?;
                Ok(next)
            })
            .map(|next| *journal = next)?;
            failpoint::hit("rotate:key-recorded");
        }
        let new_entry = self.new_key_entry(journal)?;
        if journal.step < Step::ExportProven
            && let Some(plan) = journal.export.clone()
        {
            let proof = hooks
                .export(&plan, &new_entry)
                .layer_err(|| format!("failed to export the new key '{}'", journal.new_key))?;
            failpoint::hit("rotate:export-written");
            self.record(held, Op::RotateProveExport, journal, || {
                let mut next = journal.clone();
                next.step = Step::ExportProven;
                if let Some(export) = &mut next.export {
                    export.proof = Some(proof);
                }
                self.write(held, &mut next, now)?;
                Ok(next)
            })
            .map(|next| *journal = next)?;
            failpoint::hit("rotate:export-recorded");
        }
        if journal.step < Step::JobsSwitched {
            self.switch_jobs(journal, hooks)?;
            failpoint::hit("rotate:jobs-switched");
            self.record_switch(held, journal, now)?;
            failpoint::hit("rotate:switch-recorded");
        }
        if journal.step < Step::OldKeyArchived && journal.archive_old {
            let kept = self.archive_old_key(journal)?;
            failpoint::hit("rotate:old-key-archived");
            self.record(held, Op::RotateArchiveOldKey, journal, || {
                let mut next = journal.clone();
                next.step = Step::OldKeyArchived;
                next.old_key_kept = kept;
                self.write(held, &mut next, now)?;
                Ok(next)
            })
            .map(|next| *journal = next)?;
            failpoint::hit("rotate:archive-recorded");
        }
        self.record(held, Op::RotateFinish, journal, || {
            self.remove(held, journal)
        })?;
        failpoint::hit("rotate:journal-removed");
        Ok(())
    }

    /// The new key's entry, which must be this rotation's.
    fn new_key_entry(&self, journal: &Journal) -> Result<CryptKey, Error> {
        let entry = self
            .dir
            .encryption_keys()
            .entry(&journal.new_key)
            .layer_err(|| {
                format!(
                    "the new key '{}' of the rotation of {} is gone from the store - put it back \
                     ('encryption-key trash restore'){}",
                    journal.new_key,
                    journal.quoted_jobs(),
                    match journal.step < Step::JobsSwitched {
                        true => ", or abort the rotation with --abort",
                        false => "",
                    }
                )
            })?;
        if entry.info.fingerprint != journal.new_fingerprint {
            bail!(
                "encryption key '{}' is not the key this rotation made (fingerprint {}, the \
                 journal names {}) - left alone; abort the rotation with --abort",
                journal.new_key,
                fingerprint_text(entry.info.fingerprint.as_ref()),
                fingerprint_text(journal.new_fingerprint.as_ref())
            );
        }
        Ok(entry)
    }

    /// Step 2: the new key in the store, exactly once (see the module docs).
    fn store_new_key(&self, held: &Held, journal: &mut Journal, now: i64) -> Result<(), Error> {
        let keys = self.dir.encryption_keys();
        let id = journal.new_key.clone();
        match keys.entry(&id) {
            Ok(_) => {
                // stored, not recorded: it must be the one the journal names
                self.new_key_entry(journal)?;
                return Ok(());
            }
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(err),
        }
        if let Some(fingerprint) = journal.new_fingerprint
            && keys.adopt_key_file(&id, &fingerprint)?.is_some()
        {
            return Ok(());
        }
        let key = KeyConfig::generate_unprotected()?;
        let fingerprint = key_fingerprint(&key)?;
        journal.new_fingerprint = Some(fingerprint);
        self.write(held, journal, now)?;
        failpoint::hit("rotate:fingerprint-recorded");
        // recorded as `create`: the key was generated on this host
        keys.store_generated_key(&id, &key)?;
        failpoint::hit("rotate:key-stored");
        Ok(())
    }

    /// Step 4: every job of the plan on the new key, in one `sync.cfg`
    /// write. A job on the new key already is left as it is; a job on
    /// another key than the plan's stops the rotation.
    fn switch_jobs(&self, journal: &Journal, hooks: &mut dyn RotateHooks) -> Result<(), Error> {
        self.dir
            .sync_jobs()
            .edit(None, |edit| {
                for id in &journal.jobs {
                    let Some(job) = edit.job(id)? else {
                        bail!("no such sync job '{id}' - it was removed during the rotation");
                    };
                    match job.active_encryption_key.as_deref() {
                        Some(key) if key == journal.new_key => {}
                        Some(key) if key == journal.old_key => {
                            hooks.switch_job(edit, id, &journal.new_key)?
                        }
                        other => bail!(
                            "sync job '{id}' encrypts with {} now, not with '{}' as planned - \
                             someone changed it during the rotation; set it back, or abort the \
                             rotation with --abort",
                            other.map_or_else(|| "no key".to_string(), |k| format!("'{k}'")),
                            journal.old_key
                        ),
                    }
                }
                Ok(())
            })
            .layer_err(|| {
                format!(
                    "failed to switch sync job(s) {} to the new key '{}'",
                    journal.quoted_jobs(),
                    journal.new_key
                )
            })
    }

    /// Records the switch: one `rotate-switch-job` per job, their intents
    /// together (one hold of the audit log, [`ConfigDir::audit_intents`]),
    /// the journal written, then each outcome in job order.
    fn record_switch(&self, held: &Held, journal: &mut Journal, now: i64) -> Result<(), Error> {
        let events: Vec<Event> = journal
            .jobs
            .iter()
            .map(|job| self.event(Op::RotateSwitchJob, journal, Some(job)))
            .collect();
        let pending = self.dir.audit_intents(Some(&held.key_dir), &events)?;
        let mut next = journal.clone();
        next.step = Step::JobsSwitched;
        let written = self.write(held, &mut next, now);
        let mut failed = None;
        for intent in pending {
            let outcome = match &written {
                Ok(()) => Ok(()),
                Err(err) => Err(format_err!("{err}")),
            };
            if let Err(err) = intent.done(outcome) {
                failed.get_or_insert(err);
            }
        }
        written?;
        if let Some(err) = failed {
            return Err(err);
        }
        *journal = next;
        Ok(())
    }

    /// Step 5: the old key archived, unless a job still encrypts with it;
    /// returns why it was kept, if it was.
    fn archive_old_key(&self, journal: &Journal) -> Result<Option<String>, Error> {
        let keys = self.dir.encryption_keys();
        let id = &journal.old_key;
        let kept = |active_in: &[String]| {
            Some(format!(
                "sync job(s) {} still encrypt with it",
                quoted(active_in)
            ))
        };
        // a look without the lock; the archive below decides under it
        let usage = self.dir.sync_jobs().key_usage()?;
        let active_in = &usage.of(id).active_in;
        if !active_in.is_empty() {
            return Ok(kept(active_in));
        }
        if keys.entry(id)?.archived_at.is_some() {
            return Ok(None);
        }
        match keys.archive_key(id, None) {
            Ok(_) => Ok(None),
            Err(err) => match keystore_error(&err) {
                // a job took it up since the look above
                Some(KeystoreError::InUse { active_in, .. }) => Ok(kept(active_in)),
                _ => Err(err),
            },
        }
    }

    /// Aborts the rotation `job` is part of, which must not have switched
    /// its jobs yet: the new key goes into the trash (reason
    /// `rotate-abort`), the journal is removed. `check` is asked first,
    /// with the jobs as they are and the id of the new key it trashes (the
    /// API's privilege check: the jobs, and deleting that key, finding
    /// 36). Run again after a crash, it finishes what it began.
    ///
    /// # Locking
    ///
    /// Takes the rotation lock, then the locks of archive and delete.
    pub fn abort(&self, job: &str, now: i64, check: &mut AbortCheck) -> Result<Aborted, Error> {
        check_job_id(job)?;
        let held = self.lock()?;
        let Some(mut journal) = self
            .read_journals(&held.rotate_dir)?
            .into_iter()
            .find(|journal| journal.names_job(job))
        else {
            return Err(RotateError::NoRotation {
                job: job.to_string(),
            }
            .into());
        };
        if journal.step >= Step::JobsSwitched {
            return Err(RotateError::AlreadySwitched {
                jobs: journal.jobs.clone(),
                new_key: journal.new_key.clone(),
            }
            .into());
        }
        let current = self.current_jobs(&journal.jobs)?;
        // the journal may lag behind the store: a crash between the switch
        // and its record leaves the jobs on the new key with the journal a
        // step behind, and the new key is what their backups need now
        if current
            .iter()
            .any(|job| job.active_encryption_key.as_deref() == Some(journal.new_key.as_str()))
        {
            return Err(RotateError::AlreadySwitched {
                jobs: journal.jobs.clone(),
                new_key: journal.new_key.clone(),
            }
            .into());
        }
        check(&current, &journal.new_key)?;
        let found = journal.clone();
        if journal.aborting.is_none() {
            journal = self.record(&held, Op::RotateAbort, &journal, || {
                let mut next = journal.clone();
                next.aborting = Some(now);
                self.write(&held, &mut next, now)?;
                Ok(next)
            })?;
            failpoint::hit("rotate-abort:recorded");
        }
        let trashed = self.trash_new_key(&held, &journal).layer_err(|| {
            format!(
                "failed to abort the rotation of sync job(s) {} - the new key '{}' could not \
                     be moved into the trash",
                journal.quoted_jobs(),
                journal.new_key
            )
        })?;
        self.record(&held, Op::RotateFinish, &journal, || {
            self.remove(&held, &journal)
        })?;
        Ok(Aborted {
            journal: found,
            trashed,
        })
    }

    /// Moves the new key of an aborted rotation into the trash: the key
    /// the store has (archived, then deleted), or the key file a killed
    /// store left without its config entry. A key of that id the rotation
    /// did not make is left alone.
    fn trash_new_key(&self, held: &Held, journal: &Journal) -> Result<Option<String>, Error> {
        let keys = self.dir.encryption_keys();
        let id = journal.new_key.as_str();
        let Some(fingerprint) = journal.new_fingerprint else {
            return Ok(None); // no key was made
        };
        match keys.entry(id) {
            Ok(entry) if entry.info.fingerprint == Some(fingerprint) => {
                if entry.archived_at.is_none() {
                    keys.archive_key(id, None)?;
                    failpoint::hit("rotate-abort:key-archived");
                }
                // the trash records the config dir's caller as the actor
                let options = DeleteOptions {
                    reason: TrashReason::RotateAbort,
                    ..DeleteOptions::default()
                };
                let deleted = keys.delete_key_with(id, &options)?;
                failpoint::hit("rotate-abort:key-trashed");
                Ok(match deleted {
                    Deleted::Trashed { trash_name, .. } => Some(trash_name),
                    _ => None,
                })
            }
            Ok(_) => Ok(None),
            Err(err) if is_not_found(&err) => self.trash_orphan(held, journal, &fingerprint),
            Err(err) => Err(err),
        }
    }

    /// The key file of the new key without a config entry, moved into the
    /// trash if it holds the journal's key.
    fn trash_orphan(
        &self,
        held: &Held,
        journal: &Journal,
        fingerprint: &Fingerprint,
    ) -> Result<Option<String>, Error> {
        let keys = self.dir.encryption_keys();
        let id = journal.new_key.as_str();
        let name = key_file_name(id);
        let config_lock = keys.lock_config()?;
        let key_lock = keys.lock_key_file(&held.key_dir, id)?;
        if held.key_dir.stat(&name)?.is_none() {
            // no key of that id at all: the lock file taking the lock made
            // is not left behind (verify reports it as stale)
            if keys.index_data()?.get(id).is_err() {
                key_lock.guard.remove_file()?;
            }
            return Ok(None);
        }
        if keys.index_data()?.get(id).is_ok() {
            return Ok(None); // not an orphan
        }
        let found = keys
            .read_key_file_in(&held.key_dir, id)
            .and_then(|key| key_fingerprint(&key))?;
        if found != *fingerprint {
            return Ok(None);
        }
        let now = proxmox_time::epoch_i64();
        let record = TrashRecord {
            id: id.to_string(),
            fingerprint: Some(found),
            entry: None,
            reason: TrashReason::RotateAbort,
            time: now,
            actor: Some(journal.actor.clone()),
            purge_after: Some(crate::trash::purge_after(
                now,
                crate::trash::DEFAULT_KEEP_DAYS,
            )),
        };
        let event = self
            .dir
            .audit_event(Op::RotateAbortOrphan)
            .id(id)
            .fingerprint(found)
            .job(journal.jobs.join(","));
        let pending = self.dir.audit_intent(Some(&held.key_dir), &event)?;
        let moved = keys.trash().keep(&held.key_dir, &name, &record).and_then(
            |(entry, record_err)| {
                let removed = key_lock.guard.remove_file();
                if let Some(err) = record_err {
                    bail!(
                        "the key file went into the trash as '{entry}' without its record ({err}) \
                         - run 'proxmox-backup-manager encryption-key verify --repair'"
                    );
                }
                removed.map(|()| entry)
            },
        );
        let entry = pending.done(moved)?;
        drop(config_lock);
        failpoint::hit("rotate-abort:key-trashed");
        Ok(Some(entry))
    }
}

/// Checks and sorts the job ids of a request (repeated ones count once).
fn check_jobs(jobs: &[String]) -> Result<Vec<String>, Error> {
    if jobs.is_empty() {
        bail!("name the sync job(s) to rotate (--job JOB, repeated for several)");
    }
    for job in jobs {
        check_job_id(job)?;
    }
    Ok(jobs
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

fn check_job_id(job: &str) -> Result<(), Error> {
    if let Err(err) = JOB_ID_SCHEMA.parse_simple_value(job) {
        bail!("invalid sync job id {job:?} - {err}");
    }
    Ok(())
}

/// A resumed rotation must be asked for as it was planned: the same jobs,
/// and the new id, export and archive, where given, the same.
fn check_same_plan(
    journal: &Journal,
    jobs: &[String],
    request: &RotateRequest,
) -> Result<(), Error> {
    let mut why = Vec::new();
    if journal.jobs != jobs {
        why.push(format!("its jobs are {}", journal.quoted_jobs()));
    }
    if let Some(new_key) = &request.new_key
        && *new_key != journal.new_key
    {
        why.push(format!("its new key is '{}'", journal.new_key));
    }
    match (&journal.export, &request.export) {
        (None, None) => {}
        (Some(planned), Some(asked)) if planned.same_target(asked) => {}
        (Some(planned), _) => why.push(match &planned.file {
            Some(file) => format!(
                "it exports to {file:?} for {}",
                planned.recipients.join(", ")
            ),
            None => format!(
                "it exports in the API answer for {}",
                planned.recipients.join(", ")
            ),
        }),
        (None, Some(_)) => why.push("it exports nothing".to_string()),
    }
    if journal.archive_old != request.archive_old {
        why.push(match journal.archive_old {
            true => "it archives the old key".to_string(),
            false => "it keeps the old key active".to_string(),
        });
    }
    if why.is_empty() {
        return Ok(());
    }
    let job = jobs
        .iter()
        .find(|job| journal.names_job(job))
        .unwrap_or(&journal.jobs[0]);
    Err(RotateError::OtherRotation {
        job: job.clone(),
        command: journal.command(),
        why: why.join(", "),
    }
    .into())
}

fn keystore_error(err: &Error) -> Option<&KeystoreError> {
    err.chain().find_map(|e| e.downcast_ref::<KeystoreError>())
}

fn is_not_found(err: &Error) -> bool {
    matches!(keystore_error(err), Some(KeystoreError::NotFound { .. }))
}

fn fingerprint_text(fingerprint: Option<&Fingerprint>) -> String {
    fingerprint.map_or_else(|| "none".to_string(), Fingerprint::signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ids_name_the_utc_day() {
        assert_eq!(default_new_key("nightly", 0), "nightly-1970-01-01");
        assert_eq!(
            default_new_key("nightly", 951_782_400),
            "nightly-2000-02-29"
        );
        // the last second of a day, and the first of the next
        assert_eq!(
            default_new_key("nightly", 1_798_761_599),
            "nightly-2026-12-31"
        );
        assert_eq!(
            default_new_key("nightly", 1_798_761_600),
            "nightly-2027-01-01"
        );
        assert_eq!(default_new_key("nightly", -86_400), "nightly-1969-12-31");
    }

    #[test]
    fn default_ids_are_valid_key_ids_of_at_most_32_characters() {
        assert_eq!(
            default_new_key("nightly", 1_775_840_036),
            "nightly-2026-04-10"
        );
        let long = "a-very-long-sync-job-id-of-32-ch";
        let id = default_new_key(long, 1_775_840_036);
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.ends_with("-2026-04-10"));
        check_key_id(&id).unwrap();
        check_key_id(&default_new_key("abc", 0)).unwrap();
    }

    #[test]
    fn the_resume_command_names_no_secret_and_every_option() {
        let journal = Journal {
            version: JOURNAL_VERSION,
            jobs: vec!["job-a".into(), "job-b".into()],
            old_key: "k-old".into(),
            old_fingerprint: Fingerprint::new([1; 32]),
            new_key: "k-new".into(),
            new_fingerprint: None,
            export: Some(ExportPlan {
                file: Some("/root/k-new.pbsx".into()),
                recipients: vec![ExportPlan::PASSPHRASE.into(), ExportPlan::rsa("ab12")],
                proof: None,
            }),
            archive_old: true,
            step: Step::Planned,
            old_key_kept: None,
            aborting: None,
            started: 1,
            updated: 1,
            actor: "root@pam".into(),
        };
        assert_eq!(
            journal.command(),
            "proxmox-backup-manager encryption-key rotate --job job-a --job job-b --new-id k-new \
             --export-file \"/root/k-new.pbsx\" --passphrase-file FILE --master-pubkey PEM \
             --archive-old"
        );
        let text = serde_json::to_string(&journal).unwrap();
        let back: Journal = serde_json::from_str(&text).unwrap();
        assert_eq!(back, journal);
        assert!(text.contains("\"step\":\"planned\""), "{text}");
    }

    /// A plan's file is absolute; one a journal of before stop 33 kept
    /// relative names that file in the current directory, as it did then.
    #[test]
    fn an_export_plan_is_the_same_only_for_the_same_file() {
        let plan = |file: &str| ExportPlan {
            file: Some(file.into()),
            recipients: vec![ExportPlan::PASSPHRASE.into()],
            proof: None,
        };
        let here = std::env::current_dir().unwrap().join("k.pbsx");
        let here = here.to_str().unwrap();
        assert!(plan("/root/k.pbsx").same_target(&plan("/root/k.pbsx")));
        assert!(!plan("/root/k.pbsx").same_target(&plan(here)));
        assert!(plan("k.pbsx").same_target(&plan(here)));
        assert!(!plan("k.pbsx").same_target(&plan("/root/k.pbsx")));
    }

    #[test]
    fn steps_are_ordered_as_they_are_done() {
        let steps = [
            Step::Planned,
            Step::KeyStored,
            Step::ExportProven,
            Step::JobsSwitched,
            Step::OldKeyArchived,
        ];
        assert!(steps.windows(2).all(|w| w[0] < w[1]));
        for step in steps {
            let json = serde_json::to_value(step).unwrap();
            assert_eq!(json.as_str(), Some(step.as_str()));
        }
    }
}
