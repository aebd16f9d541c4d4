//! `/config/encryption-key-rotate` (beyond upstream, issue 18): key
//! rotation of sync jobs, one resumable, journaled command
//! (`pbs_config::rotation` has the steps, the journal and the crash
//! order).
//!
//! - `POST /config/encryption-key-rotate`: rotate the jobs named (one or
//!   more push jobs that encrypt with the same key) to a new key, or resume
//!   their rotation in progress; optionally export the new key (the bundle
//!   comes back in the answer, proven by the restore drill before any job
//!   switches) and archive the old key;
//! - `GET /config/encryption-key-rotate`: the rotations in progress (their
//!   journals), or the one of `job`;
//! - `POST /config/encryption-key-rotate/abort`: abort a rotation before
//!   its jobs switched (the new key goes into the trash).
//!
//! A path of its own beside `/config/encryption-keys`, where a key id could
//! shadow it (DESIGN.md §6). A rotation creates a key and changes jobs, so
//! it needs Sys.Modify on `/system/encryption-keys` (declared on the
//! routes) and what `sync-job update JOB --active-encryption-key NEW` needs
//! of every job (checked by the handler before anything is done, and again
//! by upstream's rules when the jobs switch, see
//! [`check_rotate_access`](super::sync::check_rotate_access)). The list
//! leaves out a rotation in progress one of whose jobs the caller may not
//! read or whose keys it may not see (finding 41); a request on the jobs
//! of one whose jobs it may not all read or whose new key it may not see
//! is refused before the rotation is asked, naming only the job given
//! (finding 57: the old key's id is in the jobs). The passphrase of an
//! export travels in the request body only
//! (`crate::api2::BODY_ONLY_PARAMETERS`).
//!
//! The plain functions serve the CLI too, which exports to a file
//! ([`ExportTo::File`]) instead of the answer; the file is written only
//! after the bundle proved itself in memory, then read back and proven
//! again, so a file of that name is always a proven export.

use std::path::{Path, PathBuf};

use anyhow::{Error, bail, format_err};
use serde::Serialize;
use serde_json::Value;

use proxmox_lang::error::ErrorLayer;
use proxmox_router::{ApiMethod, ReturnType, Router};
use proxmox_schema::{ArraySchema, BooleanSchema, ObjectSchema, Schema, param_bail};

use pbs_api_types::{CRYPT_KEY_ID_SCHEMA, CryptKey, JOB_ID_SCHEMA, SyncJobConfig};
use pbs_config::ConfigDir;
use pbs_config::export::{ExportSelection, StoreState};
use pbs_config::rotation::{Aborted, ExportPlan, Journal, RotateHooks, RotateRequest, Rotated};
use pbs_config::sync::JobsEdit;
use pbs_key_config::NewFileWay;
use pbs_key_config::bundle::{
    BundleSecret, OpenedBundle, ProvableBundle, open_bundle, read_bundle_header,
    read_written_bundle_file, replace_bundle_file, rsa_key_id, write_bundle_file,
};

use super::{KeyAccess, STORE_AUDIT, STORE_MODIFY};
use crate::api2::config::encryption_key_export::{MASTER_PUBKEYS_SCHEMA, Recipients};
use crate::api2::config::encryption_keys::PASSPHRASE_SCHEMA;
use crate::api2::config::sync::{
    Caller, JobUpdate, apply_update, check_archive_access, check_rotate_access,
    check_sync_job_modify_access, check_sync_job_read_access,
};
use crate::api2::described_object;
use crate::api2::param_str;

/// Where the export of a rotation goes.
pub enum ExportTo {
    /// A new file (the CLI's `--export-file`), by its absolute path
    /// ([`ExportTo::file`]).
    File(PathBuf),
    /// The answer of the API request.
    Answer,
}

impl ExportTo {
    /// The export into the file `path`, resolved against the current
    /// directory once, here: the journal keeps the plan's file by this
    /// path, so a rotation resumed from another directory names the same
    /// file, not a second one there (finding 35).
    ///
    /// # Errors
    ///
    /// The current directory cannot be read.
    pub fn file(path: &Path) -> Result<Self, Error> {
        let absolute = std::path::absolute(path).map_err(|err| {
            format_err!(
                "unable to resolve export file {path:?} against the current directory - {err}"
            )
        })?;
        Ok(ExportTo::File(absolute))
    }
}

/// The export a rotation is asked for: where, and who can open it.
pub struct RotateExport {
    /// Where.
    pub to: ExportTo,
    /// Who.
    pub recipients: Recipients,
}

impl RotateExport {
    /// The journal's record of it.
    fn plan(&self) -> Result<ExportPlan, Error> {
        let mut recipients = Vec::new();
        if self.recipients.passphrase.is_some() {
            recipients.push(ExportPlan::PASSPHRASE.to_string());
        }
        for key in &self.recipients.master_pubkeys {
            recipients.push(ExportPlan::rsa(&rsa_key_id(key)?));
        }
        if recipients.is_empty() {
            param_bail!(
                "passphrase",
                "an export needs a recipient - give a passphrase and/or an RSA public key \
                 (master-pubkey)"
            );
        }
        recipients.sort();
        let file = match &self.to {
            // one a resume from elsewhere would take for another file
            ExportTo::File(path) if !path.is_absolute() => {
                bail!("internal error - export file {path:?} is not absolute (see ExportTo::file)")
            }
            ExportTo::File(path) => Some(path.display().to_string()),
            ExportTo::Answer => None,
        };
        Ok(ExportPlan {
            file,
            recipients,
            proof: None,
        })
    }
}

/// What a rotation is asked for, besides its export.
#[derive(Clone, Debug, Default)]
pub struct RotateParams {
    /// The jobs.
    pub jobs: Vec<String>,
    /// The id of the new key (default: the journal's, or `<job>-<date>`).
    pub new_id: Option<String>,
    /// Archive the old key at the end.
    pub archive_old: bool,
}

/// The answer of a rotation.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RotateAnswer {
    /// What was done.
    #[serde(flatten)]
    pub rotated: Rotated,
    /// The export of the new key, for an export to the answer: proven by
    /// the restore drill (the one answer of this module that holds a key,
    /// encrypted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// How that bundle was proven.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// How the export file ([`ExportTo::File`]) was made, if this request
    /// made it: the CLI says so, as `export --output-file` does (not part
    /// of the API's answer, which has no file).
    #[serde(skip)]
    pub export_file_way: Option<NewFileWay>,
}

/// The hooks of the API's rotation: upstream's rules and the privilege
/// checks of the caller, and the export.
struct ApiHooks<'a> {
    dir: &'a ConfigDir,
    caller: &'a Caller<'a>,
    export: Option<&'a RotateExport>,
    /// Whether the old key is archived at the end.
    archive_old: bool,
    /// The bundle of an export to the answer, once made, and its proof.
    bundle: Option<(String, String)>,
    /// How the export file was made, once made.
    export_file_way: Option<NewFileWay>,
}

impl RotateHooks for ApiHooks<'_> {
    fn check(
        &mut self,
        jobs: &[SyncJobConfig],
        new_key: &str,
        resuming: bool,
    ) -> Result<(), Error> {
        for job in jobs {
            check_rotate_access(self.caller, job, new_key)?;
            // the key the job leaves, archived at the end (finding 32)
            if self.archive_old
                && let Some(old_key) = job.active_encryption_key.as_deref()
                && old_key != new_key
            {
                check_archive_access(self.caller, old_key)?;
            }
        }
        if !resuming
            && let Some(RotateExport {
                to: ExportTo::File(path),
                ..
            }) = self.export
        {
            check_new_file(path)?;
        }
        Ok(())
    }

    fn switch_job(&mut self, edit: &mut JobsEdit, job: &str, new_key: &str) -> Result<(), Error> {
        apply_update(edit, self.caller, job, &JobUpdate::active_key(new_key)).map(|_| ())
    }

    fn export(&mut self, _plan: &ExportPlan, key: &CryptKey) -> Result<String, Error> {
        let Some(export) = self.export else {
            bail!(
                "the rotation was planned with an export - ask for it again (the same recipients)"
            );
        };
        match &export.to {
            ExportTo::File(path) => {
                let (proof, way) = export_to_file(self.dir, path, &export.recipients, key)?;
                self.export_file_way = way;
                Ok(proof)
            }
            ExportTo::Answer => {
                let (bundle, proof) = export_to_answer(self.dir, &export.recipients, key)?;
                self.bundle = Some((bundle, proof.clone()));
                Ok(proof)
            }
        }
    }
}

/// Refuses a file that exists, or whose directory does not.
fn check_new_file(path: &Path) -> Result<(), Error> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => bail!("export file {path:?} exists already - refusing to overwrite it"),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => bail!("unable to stat export file {path:?} - {err}"),
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!("directory {parent:?} of export file {path:?} does not exist");
    }
    Ok(())
}

/// A bundle of the new key `key` for `recipients`, with what proves it.
fn new_bundle(
    dir: &ConfigDir,
    key: &CryptKey,
    recipients: &Recipients,
) -> Result<ProvableBundle, Error> {
    dir.encryption_keys().export_provable_bundle(
        &ExportSelection::Ids(vec![key.id.clone()]),
        &recipients.as_list(),
        &|_| Ok(()),
    )
}

/// The restore drill of `opened` for the new key: it holds exactly `key`,
/// intact, and the store has it, equal, and it loads.
fn drill(dir: &ConfigDir, opened: &OpenedBundle, key: &CryptKey) -> Result<(), Error> {
    let checks = dir
        .encryption_keys()
        .compare_bundle(&opened.header().keys)?;
    match checks.as_slice() {
        [check]
            if check.id == key.id
                && Some(check.fingerprint) == key.info.fingerprint
                && check.store == StoreState::PresentEqual
                && check.store_problem.is_none() =>
        {
            Ok(())
        }
        _ => bail!(
            "the restore drill found the export does not hold exactly the new key '{}' as the \
             store has it",
            key.id
        ),
    }
}

/// Proves `copy`, the bundle as delivered: opened with the passphrase if
/// there is one (the restore drill, as `export-verify` runs it), else with
/// the bundle's data key; then [`drill`]. Returns the proof's words.
fn prove(
    dir: &ConfigDir,
    bundle: &ProvableBundle,
    copy: &[u8],
    key: &CryptKey,
    recipients: &Recipients,
    where_: &str,
) -> Result<String, Error> {
    let (opened, how) = match &recipients.passphrase {
        Some(passphrase) => (
            open_bundle(copy, &BundleSecret::Passphrase(passphrase))?,
            "opened with its passphrase",
        ),
        None => (
            bundle.prove(copy)?,
            "opened with its data key (the RSA recipients' own keys can only be checked with \
             their private keys: 'export-verify --master-keyfile')",
        ),
    };
    drill(dir, &opened, key)?;
    Ok(format!(
        "restore drill of {where_}: {how}; '{}' ({}) intact, and equal to the store's",
        key.id,
        key.info
            .fingerprint
            .map_or_else(|| "-".to_string(), |fp| fp.signature())
    ))
}

/// The export into the answer: made, proven in memory.
fn export_to_answer(
    dir: &ConfigDir,
    recipients: &Recipients,
    key: &CryptKey,
) -> Result<(String, String), Error> {
    let bundle = new_bundle(dir, key, recipients)?;
    let proof = prove(
        dir,
        &bundle,
        bundle.bytes(),
        key,
        recipients,
        "the bundle answered",
    )?;
    let text = String::from_utf8(bundle.bytes().to_vec())
        .map_err(|_| format_err!("internal error - export bundle is not text"))?;
    Ok((text, proof))
}

/// The export into a file: proven in memory before the file exists, then
/// written (whole or not at all), read back and proven again. A file there
/// already that is a bundle of exactly the new key is this rotation's
/// (written before a crash): proven again with the passphrase, else
/// replaced by a new proven one (it holds nothing but the new key, which
/// is in the store); any other file is left alone and refuses the export.
/// The proof, and how the file was made if it was made new.
fn export_to_file(
    dir: &ConfigDir,
    path: &Path,
    recipients: &Recipients,
    key: &CryptKey,
) -> Result<(String, Option<NewFileWay>), Error> {
    let exists = match std::fs::symlink_metadata(path) {
        Ok(_) => true,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
        Err(err) => bail!("unable to stat export file {path:?} - {err}"),
    };
    if exists {
        let data = read_written_bundle_file(path)?;
        let ours = read_bundle_header(&data).is_ok_and(|header| {
            matches!(header.keys.as_slice(),
                [info] if info.id == key.id && Some(info.fingerprint) == key.info.fingerprint)
        });
        if !ours {
            bail!(
                "export file {path:?} exists already and is not this rotation's export of '{}' - \
                 refusing to overwrite it (move it away, or abort the rotation with --abort)",
                key.id
            );
        }
        if let Some(passphrase) = &recipients.passphrase
            && let Ok(opened) = open_bundle(&data, &BundleSecret::Passphrase(passphrase))
        {
            drill(dir, &opened, key)?;
            let proof = format!(
                "restore drill of {path:?} (written by an earlier run): opened with its \
                 passphrase; '{}' intact, and equal to the store's",
                key.id
            );
            return Ok((proof, None));
        }
    }
    let bundle = new_bundle(dir, key, recipients)?;
    prove(dir, &bundle, bundle.bytes(), key, recipients, "the bundle")?;
    let way = if exists {
        // this rotation's own export, not provable now: replaced whole
        replace_bundle_file(path, bundle.bytes())?;
        None
    } else {
        Some(write_bundle_file(path, bundle.bytes())?)
    };
    let copy = read_written_bundle_file(path)?;
    let proof = prove(dir, &bundle, &copy, key, recipients, &format!("{path:?}"))
        .layer_err(|| format!("export file {path:?} as read back does not prove"))?;
    Ok((proof, way))
}

/// Rotates `params.jobs` to a new key, or resumes their rotation; with
/// `export`, the new key is exported and the export proven before any job
/// switches. `caller` is checked for each job; the audit log records each
/// step for `dir`'s caller (the daemon's dir acts for the request's).
pub fn rotate_keys(
    dir: &ConfigDir,
    caller: &Caller,
    params: &RotateParams,
    export: Option<&RotateExport>,
) -> Result<RotateAnswer, Error> {
    if let Some(id) = &params.new_id
        && let Err(err) = pbs_config::encryption_keys::check_key_id(id)
    {
        param_bail!("new-id", "{err}");
    }
    for job in &params.jobs {
        if let Err(err) = JOB_ID_SCHEMA.parse_simple_value(job) {
            param_bail!("job", "invalid sync job id {job:?} - {err}");
        }
    }
    let request = RotateRequest {
        jobs: params.jobs.clone(),
        new_key: params.new_id.clone(),
        export: export.map(RotateExport::plan).transpose()?,
        archive_old: params.archive_old,
        now: proxmox_time::epoch_i64(),
    };
    let mut hooks = ApiHooks {
        dir,
        caller,
        export,
        archive_old: params.archive_old,
        bundle: None,
        export_file_way: None,
    };
    let rotated = dir.rotations().rotate(&request, &mut hooks)?;
    let mut answer = hooks.bundle.take();
    // an export to the answer asked for again after an earlier request did
    // it: the new key is exported (and proven) again for this answer
    if answer.is_none()
        && let Some(RotateExport {
            to: ExportTo::Answer,
            recipients,
        }) = export
    {
        let new_key = match &rotated {
            Rotated::Done { journal, .. } => &journal.new_key,
            Rotated::AlreadyDone { new_key, .. } => new_key,
        };
        let key = dir.encryption_keys().entry(new_key)?;
        answer = Some(export_to_answer(dir, recipients, &key)?);
    }
    let (bundle, proof) = answer.unzip();
    Ok(RotateAnswer {
        rotated,
        bundle,
        proof,
        export_file_way: hooks.export_file_way,
    })
}

/// The rotations in progress the caller may see (every job of each
/// readable), or the one of `job`.
pub fn rotation_status(
    dir: &ConfigDir,
    caller: &Caller,
    job: Option<&str>,
) -> Result<Vec<Journal>, Error> {
    if let Some(job) = job
        && let Err(err) = JOB_ID_SCHEMA.parse_simple_value(job)
    {
        param_bail!("job", "invalid sync job id {job:?} - {err}");
    }
    let jobs = dir.sync_jobs().list_jobs()?;
    Ok(dir
        .rotations()
        .list()?
        .into_iter()
        .filter(|journal| job.is_none_or(|job| journal.names_job(job)))
        .filter(|journal| reads_every_job(caller, &jobs, journal))
        .collect())
}

/// Whether `caller` may read every job of `journal` (`jobs`: `sync.cfg`'s
/// jobs; a job it no longer has hides nothing).
fn reads_every_job(caller: &Caller, jobs: &[SyncJobConfig], journal: &Journal) -> bool {
    journal.jobs.iter().all(|id| {
        jobs.iter()
            .find(|job| job.id == *id)
            .is_none_or(|job| check_sync_job_read_access(caller, job).is_ok())
    })
}

/// Refuses a rotation or an abort of `jobs` for a caller who may not
/// modify one of them, or for whom a rotation in progress of one of them
/// is hidden: one of its jobs it may not read, or a new key it may not
/// see (the list of rotations leaves such a rotation out, finding 41).
/// Checked before the rotation is asked, whose refusals (a plan otherwise,
/// a new key the caller may not change, jobs switched already) name the
/// rotation's jobs, new key and export: the refusal here names only the
/// job the caller gave (finding 57). A job `sync.cfg` lacks is left to
/// the rotation (404).
fn check_rotation_shown(
    dir: &ConfigDir,
    caller: &Caller,
    access: &KeyAccess,
    jobs: &[String],
) -> Result<(), Error> {
    let configs = dir.sync_jobs().list_jobs()?;
    for config in configs.iter().filter(|config| jobs.contains(&config.id)) {
        check_sync_job_modify_access(caller, config)?;
    }
    for journal in dir.rotations().list()? {
        let Some(job) = jobs.iter().find(|job| journal.names_job(job)) else {
            continue;
        };
        if !reads_every_job(caller, &configs, &journal) || !access.may_see(&journal.new_key) {
            return Err(crate::http_err!(
                FORBIDDEN,
                "permission check failed - sync job '{job}' is part of a key rotation in \
                 progress this caller may not see (it may not read one of its jobs, or see its \
                 new key) - only who may see it resumes or aborts it"
            ));
        }
    }
    Ok(())
}

/// Aborts the rotation `job` is part of, before its jobs switched: for a
/// caller with modify access to each of its jobs who may delete its new
/// key (Sys.Modify on it, as `DELETE /config/encryption-keys/{id}` and
/// its archive need: the abort archives it, then moves it into the trash;
/// finding 36).
pub fn abort_rotation(dir: &ConfigDir, caller: &Caller, job: &str) -> Result<Aborted, Error> {
    if let Err(err) = JOB_ID_SCHEMA.parse_simple_value(job) {
        param_bail!("job", "invalid sync job id {job:?} - {err}");
    }
    dir.rotations()
        .abort(job, proxmox_time::epoch_i64(), &mut |jobs, new_key| {
            jobs.iter()
                .try_for_each(|job| super::sync::check_sync_job_modify_access(caller, job))?;
            check_archive_access(caller, new_key)
        })
}

// ---------------------------------------------------------------------------
// the routes

/// `job`: the sync jobs to rotate.
const JOBS_SCHEMA: Schema = ArraySchema::new(
    "The sync jobs to rotate: push jobs that encrypt with the same key (repeat the parameter \
     for several; they switch in one write).",
    &JOB_ID_SCHEMA,
)
.min_length(1)
.schema();

const ARCHIVE_OLD_SCHEMA: Schema = BooleanSchema::new(
    "Archive the old key at the end, unless another job still encrypts with it.",
)
.default(false)
.schema();

const EXPORT_SCHEMA: Schema = BooleanSchema::new(
    "Export the new key into the answer (for the passphrase and/or master-pubkey given), \
     proven by the restore drill before any job switches. Implied by either.",
)
.default(false)
.schema();

/// Parameters of `POST /config/encryption-key-rotate`.
pub const API_METHOD_ROTATE_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Rotate sync jobs to a new encryption key, or resume their rotation.",
    &[
        ("archive-old", true, &ARCHIVE_OLD_SCHEMA),
        ("export", true, &EXPORT_SCHEMA),
        ("job", false, &JOBS_SCHEMA),
        ("master-pubkey", true, &MASTER_PUBKEYS_SCHEMA),
        ("new-id", true, &CRYPT_KEY_ID_SCHEMA),
        ("passphrase", true, &PASSPHRASE_SCHEMA),
    ],
);

const ROTATED_SCHEMA: Schema = described_object(
    "outcome (done or already-done); for done the journal as it ended and resumed-from; the \
     bundle and its proof for an export (RotateAnswer).",
);

const MODIFY_ACCESS: &str = "and what 'sync-job update JOB --active-encryption-key NEW' needs \
     of each job, checked by the handler: modify access to the job, Sys.Modify on \
     /system/encryption-keys/{new-id} for the caller and the job's owner; with archive-old, \
     Sys.Modify on the old key for the caller";

/// `POST /config/encryption-key-rotate`: [`rotate_keys`].
pub const API_METHOD_ROTATE: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        let caller = Caller::of(env)?;
        let params = RotateParams {
            jobs: crate::api2::param_list(&param, "job"),
            new_id: param_str(&param, "new-id").map(str::to_string),
            archive_old: param["archive-old"].as_bool().unwrap_or(false),
        };
        let recipients = Recipients::from_params(&param)?;
        let wanted = param["export"].as_bool().unwrap_or(false)
            || recipients.passphrase.is_some()
            || !recipients.master_pubkeys.is_empty();
        let export = wanted.then_some(RotateExport {
            to: ExportTo::Answer,
            recipients,
        });
        let access = KeyAccess::of(env)?;
        check_rotation_shown(env.dir(), &caller, &access, &params.jobs)?;
        if let Some(id) = &params.new_id {
            // what the rotation asks of the new key in any case, before the
            // store is asked: a masked id is refused the same whether the
            // store has it or not (finding 48)
            access.check_modify([id.as_str()])?;
        }
        let answer = rotate_keys(env.dir(), &caller, &params, export.as_ref())?;
        withhold_fingerprints(serde_json::to_value(answer)?, &access)
    }),
    &API_METHOD_ROTATE_PARAMETERS,
)
.returns(ReturnType::new(false, &ROTATED_SCHEMA))
.access(Some(MODIFY_ACCESS), &STORE_MODIFY);

/// The answer of a rotation or an abort (`answer`, its `journal`) for a
/// caller who may not see every key it names: the fingerprint of each it
/// may not see left out (finding 47). A caller may rotate jobs away from
/// a key it may not see (upstream asks nothing of the key a job leaves),
/// and reads the key's id in the jobs it named; its fingerprint is what the
/// key list and the list of rotations (finding 41) keep from it.
fn withhold_fingerprints(mut answer: Value, access: &KeyAccess) -> Value {
    if let Some(journal) = answer.get_mut("journal").and_then(Value::as_object_mut) {
        for (key, fingerprint) in [
            ("old-key", "old-fingerprint"),
            ("new-key", "new-fingerprint"),
        ] {
            if journal[key].as_str().is_some_and(|id| !access.may_see(id)) {
                journal.remove(fingerprint);
            }
        }
    }
    answer
}

/// Parameters of `GET /config/encryption-key-rotate`.
pub const API_METHOD_ROTATION_STATUS_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "The key rotations in progress.",
    &[("job", true, &JOB_ID_SCHEMA)],
);

const JOURNAL_SCHEMA: Schema = described_object(
    "A rotation in progress (its journal): jobs, old-key, old-fingerprint, new-key, \
     new-fingerprint, export, archive-old, step, old-key-kept, aborting, started, updated, actor.",
);

const JOURNAL_LIST_SCHEMA: Schema = ArraySchema::new(
    "The rotations in progress the caller may see (of job, if given).",
    &JOURNAL_SCHEMA,
)
.schema();

/// `GET /config/encryption-key-rotate`: [`rotation_status`].
pub const API_METHOD_ROTATION_STATUS: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        let caller = Caller::of(env)?;
        let access = KeyAccess::of(env)?;
        let mut journals = rotation_status(env.dir(), &caller, param_str(&param, "job"))?;
        // a journal names its old and new key (ids, fingerprints): left
        // out whole where the caller may not see one of them (finding 41)
        journals
            .retain(|journal| access.may_see(&journal.old_key) && access.may_see(&journal.new_key));
        journals
    }),
    &API_METHOD_ROTATION_STATUS_PARAMETERS,
)
.returns(ReturnType::new(false, &JOURNAL_LIST_SCHEMA))
.access(
    Some(
        "the answer holds only rotations whose jobs the caller may read and whose old and new \
         key it may see (Sys.Audit on `/system/encryption-keys/{id}`)",
    ),
    &STORE_AUDIT,
);

/// Parameters of `POST /config/encryption-key-rotate/abort`.
pub const API_METHOD_ABORT_ROTATION_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Abort a key rotation before its jobs switched: the new key goes into the trash.",
    &[("job", false, &JOB_ID_SCHEMA)],
);

const ABORTED_SCHEMA: Schema = described_object(
    "The journal as the abort found it, and the trash entry of the new key (Aborted).",
);

/// `POST /config/encryption-key-rotate/abort`: [`abort_rotation`].
pub const API_METHOD_ABORT_ROTATION: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        let caller = Caller::of(env)?;
        let job = crate::api2::required_str(&param, "job")?;
        let access = KeyAccess::of(env)?;
        check_rotation_shown(env.dir(), &caller, &access, &[job.to_string()])?;
        let aborted = abort_rotation(env.dir(), &caller, job)?;
        withhold_fingerprints(serde_json::to_value(aborted)?, &access)
    }),
    &API_METHOD_ABORT_ROTATION_PARAMETERS,
)
.returns(ReturnType::new(false, &ABORTED_SCHEMA))
.access(
    Some(
        "and modify access to each job of the rotation and Sys.Modify on \
         /system/encryption-keys/{new key} (to delete it), checked by the handler",
    ),
    &STORE_MODIFY,
);

const ABORT_ROUTER: Router = Router::new().post(&API_METHOD_ABORT_ROTATION);

/// The routes of `/config/encryption-key-rotate`.
pub const ROUTER: Router = Router::new()
    .get(&API_METHOD_ROTATION_STATUS)
    .post(&API_METHOD_ROTATE)
    .subdirs(&[("abort", &ABORT_ROUTER)]);

#[cfg(test)]
mod tests {
    use super::*;

    /// The outcome flat beside the bundle; how an export file was made
    /// stays out (the CLI's note, no field of the API).
    #[test]
    fn an_answer_carries_the_outcome_flat_beside_the_bundle() {
        let answer = RotateAnswer {
            rotated: Rotated::AlreadyDone {
                jobs: vec!["job-a".into()],
                new_key: "k-new".into(),
            },
            bundle: None,
            proof: None,
            export_file_way: Some(NewFileWay::InPlace),
        };
        let value = serde_json::to_value(&answer).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"outcome": "already-done", "jobs": ["job-a"], "new-key": "k-new"})
        );
    }
}
