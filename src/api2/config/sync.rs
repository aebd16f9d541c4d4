//! `/config/sync`: sync jobs, with upstream's rules for who may change them
//! and how their encryption keys change.
//!
//! Upstream's handlers (`list_sync_jobs`, `create_sync_job`,
//! `read_sync_job`, `update_sync_job`, `delete_sync_job`) as plain functions
//! over a [`ConfigDir`] and the [`Caller`] who acts: the CLI calls them as
//! the administrator, the routes at the end of this module as the
//! authenticated id. Every change runs inside [`SyncJobs::edit`] (the
//! encryption key lock, then the sync job lock, one write), so the rules
//! below are checked against the keys and jobs as they are under the locks.
//!
//! The rules, in upstream's words where it has some:
//! - changing or clearing `active-encryption-key` moves the previous active
//!   key into `associated-key`: it is never dropped. `associated-key`
//!   replaces the list, except for that previous key when both change in
//!   one update;
//! - `active-encryption-key` only applies to push jobs: it is refused on a
//!   pull job, and a job with an active key cannot switch to pull unless
//!   the key is cleared in the same update;
//! - the job's owner must be able to use every key it names (Sys.Modify on
//!   `/system/encryption-keys/{id}`), checked on create, on key changes and
//!   on owner changes, else "no such key or cannot access key '{id}'"; so
//!   must the caller (upstream's documentation asks it of whoever
//!   configures the job);
//! - an archived key may be associated, never active;
//! - who may read or change a job: upstream's `check_sync_job_read_access`
//!   and `check_sync_job_modify_access`; a change needs both the job as it
//!   was and the job as it becomes to pass (upstream checks the latter only).
//!
//! Schedules, transfers and the other properties this keystore does not run
//! are stored and shown as given.
//!
//! [`SyncJobs::edit`]: pbs_config::sync::SyncJobs::edit

use std::sync::{Arc, OnceLock};

use anyhow::{Error, format_err};
use serde_json::{Map, Value};

use proxmox_router::{
    ApiHandler, ApiMethod, Permission, ReturnType, Router, RpcEnvironment, SerializableReturn,
};
use proxmox_schema::{
    ApiStringFormat, ApiType, ArraySchema, EnumEntry, ObjectSchema, ObjectSchemaType, Schema,
    StringSchema, param_bail,
};

use pbs_api_types::{
    Authid, JOB_ID_SCHEMA, PRIV_DATASTORE_AUDIT, PRIV_DATASTORE_BACKUP, PRIV_DATASTORE_MODIFY,
    PRIV_DATASTORE_PRUNE, PRIV_DATASTORE_READ, PRIV_REMOTE_AUDIT, PRIV_REMOTE_DATASTORE_BACKUP,
    PRIV_REMOTE_DATASTORE_PRUNE, PRIV_REMOTE_READ, PRIV_SYS_AUDIT, PRIV_SYS_MODIFY,
    PROXMOX_CONFIG_DIGEST_SCHEMA, SYNC_JOB_PROPERTIES, SYNC_JOB_UPDATE_PROPERTIES, SyncDirection,
    SyncJobConfig, Userid, check_namespace_max_depth, privilege_names,
};
use pbs_config::ConfigDir;
use pbs_config::cached_user_info::{CachedUserInfo, PermissionDenied};
use pbs_config::sync::JobsEdit;

use crate::api2::parse_digest;
use crate::http_err;
use crate::server::environment::RestEnvironment;

/// The property that names the active key.
const ACTIVE_KEY: &str = "active-encryption-key";
/// The property that lists the associated keys.
const ASSOCIATED_KEY: &str = "associated-key";

// ---------------------------------------------------------------------------
// who acts

/// Who calls a handler: an auth id, and what `user.cfg` and `acl.cfg` let
/// it (and a job's owner) do, read once and only if needed.
pub struct Caller<'a> {
    dir: &'a ConfigDir,
    auth_id: Authid,
    info: OnceLock<Arc<CachedUserInfo>>,
}

/// Whether `auth_id` is `root@pam` itself, who holds every privilege (as
/// [`CachedUserInfo::is_superuser`] decides), known without reading a file.
fn is_superuser(auth_id: &Authid) -> bool {
    !auth_id.is_token() && *auth_id.user() == Userid::root_userid()
}

impl<'a> Caller<'a> {
    /// The administrator at the command line: `root@pam`, as upstream's
    /// `proxmox-backup-manager` calls its handlers.
    pub fn administrator(dir: &'a ConfigDir) -> Self {
        Self::new(dir, Authid::root_auth_id(), None)
    }

    /// `auth_id`, with the users and ACLs already read for its request (or
    /// `None`: read when first needed).
    pub fn new(dir: &'a ConfigDir, auth_id: Authid, info: Option<Arc<CachedUserInfo>>) -> Self {
        let cell = OnceLock::new();
        if let Some(info) = info {
            let _ = cell.set(info);
        }
        Self {
            dir,
            auth_id,
            info: cell,
        }
    }

    /// The caller of an API request.
    pub(crate) fn of(env: &'a RestEnvironment) -> Result<Self, Error> {
        Ok(Self::new(env.dir(), env.auth_id()?, Some(env.user_info()?)))
    }

    /// The auth id.
    pub fn auth_id(&self) -> &Authid {
        &self.auth_id
    }

    /// The privileges of `auth_id` on `path`.
    fn privs(&self, auth_id: &Authid, path: &[&str]) -> Result<u64, Error> {
        if is_superuser(auth_id) {
            return Ok(u64::MAX);
        }
        let info = match self.info.get() {
            Some(info) => info,
            None => {
                let info = Arc::new(CachedUserInfo::new(self.dir)?);
                self.info.get_or_init(|| info)
            }
        };
        Ok(info.lookup_privs(auth_id, path))
    }
}

// ---------------------------------------------------------------------------
// who may read and change a job (upstream's checks)

/// A refusal naming what is missing where.
fn denied(path: &[&str], missing: impl Into<String>) -> Error {
    PermissionDenied {
        path: format!("/{}", path.join("/")),
        missing: missing.into(),
    }
    .into()
}

/// Requires every privilege of `required` on `path`.
fn require(privs: u64, required: u64, path: &[&str]) -> Result<(), Error> {
    match required & !privs {
        0 => Ok(()),
        missing => Err(denied(path, privilege_names(missing).join(", "))),
    }
}

/// Whether `auth_id` counts as the owner (upstream's `check_backup_owner`):
/// it is the owner, or the owner is one of its tokens.
fn is_correct_owner(auth_id: &Authid, job: &SyncJobConfig) -> bool {
    let owner = job.owner_or_root();
    owner == *auth_id || (owner.is_token() && Authid::from(owner.user().clone()) == *auth_id)
}

/// May the caller see `job`? Upstream's `check_sync_job_read_access`:
/// Datastore.Audit on the local datastore (or namespace), and for a pull
/// job Remote.Audit on the remote (Datastore.Audit on the source datastore
/// of a local job), for a push job Remote.Audit on the remote datastore.
pub fn check_sync_job_read_access(caller: &Caller, job: &SyncJobConfig) -> Result<(), Error> {
    let auth_id = caller.auth_id();
    if is_superuser(auth_id) {
        return Ok(());
    }
    let local = job.acl_path();
    require(caller.privs(auth_id, &local)?, PRIV_DATASTORE_AUDIT, &local)?;
    let source: Vec<&str> = match (job.direction(), job.remote.as_deref()) {
        (SyncDirection::Pull, Some(remote)) => vec!["remote", remote],
        (SyncDirection::Pull, None) => vec!["datastore", job.remote_store.as_str()],
        (SyncDirection::Push, _) => match job.remote_acl_path() {
            Some(path) => path,
            None => {
                return Err(denied(
                    &local,
                    "a remote (a push job without one is unusable)",
                ));
            }
        },
    };
    let privilege = match source[0] {
        "remote" => PRIV_REMOTE_AUDIT,
        _ => PRIV_DATASTORE_AUDIT,
    };
    require(caller.privs(auth_id, &source)?, privilege, &source)
}

/// May the caller change (or create, or remove) `job`? Upstream's
/// `check_sync_job_modify_access`.
///
/// Pull: Datastore.Audit and Datastore.Backup on the local datastore,
/// Datastore.Prune with `remove-vanished`, Datastore.Modify unless the
/// caller owns the job, and Remote.Read on the remote datastore.
///
/// Push: Remote.DatastoreBackup on the remote datastore (and
/// Remote.DatastorePrune with `remove-vanished`), Datastore.Audit on the
/// local datastore and either Datastore.Read there, or Datastore.Backup
/// (and Datastore.Modify unless the caller owns the job).
pub fn check_sync_job_modify_access(caller: &Caller, job: &SyncJobConfig) -> Result<(), Error> {
    let auth_id = caller.auth_id();
    if is_superuser(auth_id) {
        return Ok(());
    }
    let local = job.acl_path();
    let local_privs = caller.privs(auth_id, &local)?;
    let owner = is_correct_owner(auth_id, job);
    let vanish = job.remove_vanished == Some(true);
    match job.direction() {
        SyncDirection::Pull => {
            require(
                local_privs,
                PRIV_DATASTORE_AUDIT | PRIV_DATASTORE_BACKUP,
                &local,
            )?;
            if vanish {
                require(local_privs, PRIV_DATASTORE_PRUNE, &local)?;
            }
            if !owner {
                require(local_privs, PRIV_DATASTORE_MODIFY, &local)?;
            }
            if let Some(remote) = job.remote.as_deref() {
                let source = ["remote", remote, job.remote_store.as_str()];
                require(caller.privs(auth_id, &source)?, PRIV_REMOTE_READ, &source)?;
            }
            Ok(())
        }
        SyncDirection::Push => {
            let Some(target) = job.remote_acl_path() else {
                return Err(denied(
                    &local,
                    "a remote (a push job without one is unusable)",
                ));
            };
            let target_privs = caller.privs(auth_id, &target)?;
            require(target_privs, PRIV_REMOTE_DATASTORE_BACKUP, &target)?;
            if vanish {
                require(target_privs, PRIV_REMOTE_DATASTORE_PRUNE, &target)?;
            }
            require(local_privs, PRIV_DATASTORE_AUDIT, &local)?;
            if local_privs & PRIV_DATASTORE_READ != 0 {
                return Ok(());
            }
            if !owner && local_privs & PRIV_DATASTORE_MODIFY == 0 {
                return Err(denied(
                    &local,
                    "Datastore.Read, or Datastore.Modify (the job is owned by someone else)",
                ));
            }
            if local_privs & PRIV_DATASTORE_BACKUP == 0 {
                return Err(denied(&local, "Datastore.Read, or Datastore.Backup"));
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------
// the job rules

/// A refused change: 400 with `message` (upstream's words where it has some).
fn refused(message: impl std::fmt::Display) -> Error {
    http_err!(BAD_REQUEST, "{message}")
}

fn no_such_job(id: &str) -> Error {
    http_err!(NOT_FOUND, "no such sync job '{id}'")
}

fn check_job_id(id: &str) -> Result<(), Error> {
    if let Err(err) = JOB_ID_SCHEMA.parse_simple_value(id) {
        param_bail!("id", "invalid sync job id {id:?} - {err}");
    }
    Ok(())
}

/// Checks a key id given as `param` in the key store's words (the id
/// quoted, escaped, and what a valid one looks like).
fn check_key_id(param: &str, id: &str) -> Result<(), Error> {
    if let Err(err) = pbs_config::encryption_keys::check_key_id(id) {
        param_bail!(param, "{err}");
    }
    Ok(())
}

/// Parses `--name value` pairs of the command line into the parameters of
/// `schema` (a route's), as the API parses a request: ids of keys and the
/// job id are checked first, so their errors quote the id and say what a
/// valid one looks like.
pub fn parse_cli_parameters(
    schema: &ObjectSchema,
    pairs: &[(String, String)],
) -> Result<Value, Error> {
    for (name, value) in pairs {
        match name.as_str() {
            ACTIVE_KEY | ASSOCIATED_KEY => check_key_id(name, value)?,
            "id" => check_job_id(value)?,
            _ => {}
        }
    }
    Ok(proxmox_schema::parse_parameter_strings(
        pairs, schema, true,
    )?)
}

/// Can `owner`, and the caller, use key `key_id` (Sys.Modify on
/// `/system/encryption-keys/{key_id}`, and the key loads; `for_encryption`:
/// it is not archived)? The refusal is upstream's "no such key or cannot
/// access key", which does not tell a key that exists from one that does
/// not; a caller who may see the key (Sys.Audit on it) is told why.
fn check_key_use(
    caller: &Caller,
    owner: &Authid,
    key_id: &str,
    for_encryption: bool,
) -> Result<(), Error> {
    let path = ["system", "encryption-keys", key_id];
    let mut why = None;
    for who in [owner, caller.auth_id()] {
        if why.is_none() && caller.privs(who, &path)? & PRIV_SYS_MODIFY == 0 {
            why = Some(format!("'{who}' lacks Sys.Modify on /{}", path.join("/")));
        }
    }
    if why.is_none() {
        // the key must load as the job would load it (its file matches the
        // config); the key bytes are dropped at once
        if let Err(err) = caller
            .dir
            .encryption_keys()
            .load_key_config(key_id, for_encryption)
        {
            why = Some(err.to_string());
        }
    }
    let Some(why) = why else {
        return Ok(());
    };
    let message = format!("no such key or cannot access key '{key_id}'");
    if caller.privs(caller.auth_id(), &path)? & (PRIV_SYS_AUDIT | PRIV_SYS_MODIFY) != 0 {
        Err(refused(format!("{message} - {why}")))
    } else {
        Err(refused(message))
    }
}

/// May the caller rotate `job` to a new key `new_key`, which does not exist
/// yet? What `sync-job update JOB --active-encryption-key NEW_KEY` asks of
/// the caller, as far as it is known before the key exists: modify access
/// to the job, and Sys.Modify on `/system/encryption-keys/{new_key}` for
/// the caller (else 403) and for the job's owner (else the job could not
/// use it: 400). The switch itself runs [`apply_update`], which checks the
/// key again.
pub fn check_rotate_access(
    caller: &Caller,
    job: &SyncJobConfig,
    new_key: &str,
) -> Result<(), Error> {
    check_sync_job_modify_access(caller, job)?;
    let path = ["system", "encryption-keys", new_key];
    require(
        caller.privs(caller.auth_id(), &path)?,
        PRIV_SYS_MODIFY,
        &path,
    )?;
    let owner = job.owner_or_root();
    if caller.privs(&owner, &path)? & PRIV_SYS_MODIFY == 0 {
        return Err(refused(format!(
            "the owner '{owner}' of sync job '{}' could not use the new key '{new_key}' - it \
             lacks Sys.Modify on /{}",
            job.id,
            path.join("/")
        )));
    }
    Ok(())
}

/// What archiving the key `key` at the end of a rotation needs of the
/// caller: Sys.Modify on it, as `POST /config/encryption-keys/{id}` (the
/// archive) needs.
pub fn check_archive_access(caller: &Caller, key: &str) -> Result<(), Error> {
    let path = ["system", "encryption-keys", key];
    require(
        caller.privs(caller.auth_id(), &path)?,
        PRIV_SYS_MODIFY,
        &path,
    )
}

/// The rules a job must keep whatever changed (create and update).
fn check_job(job: &SyncJobConfig) -> Result<(), Error> {
    let direction = job.direction();
    if job.remote.is_none() && job.store == job.remote_store {
        return Err(refused("source and target datastore can't be the same"));
    }
    if direction == SyncDirection::Push && job.remote.is_none() {
        return Err(refused(
            "a sync job in push direction needs a remote - set 'remote'",
        ));
    }
    if let Some(max_depth) = job.max_depth {
        for ns in [&job.ns, &job.remote_ns].into_iter().flatten() {
            check_namespace_max_depth(ns, max_depth).map_err(refused)?;
        }
    }
    Ok(())
}

/// Drops repeated keys from a list, keeping the first of each.
fn dedup_keys(keys: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(keys.len());
    for key in keys {
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// A comment as stored: trimmed, none if empty (as upstream).
fn tidy_comment(job: &mut SyncJobConfig) {
    job.comment = job
        .comment
        .take()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
}

/// A job from create parameters (or a JSON object of them).
fn job_from_params(params: Value) -> Result<SyncJobConfig, Error> {
    SyncJobConfig::API_SCHEMA.verify_json(&params)?;
    serde_json::from_value(params).map_err(|err| format_err!("invalid sync job - {err}"))
}

// ---------------------------------------------------------------------------
// the handlers

/// The sync jobs the caller may see (all for the administrator), in file
/// order, optionally only those of one `direction`; and the hex digest of
/// `sync.cfg`.
pub fn list_sync_jobs(
    dir: &ConfigDir,
    caller: &Caller,
    direction: Option<SyncDirection>,
) -> Result<(Vec<SyncJobConfig>, String), Error> {
    // users and ACLs are read here, so a broken acl.cfg is an error, not
    // an empty list
    caller.privs(caller.auth_id(), &[])?;
    let (jobs, digest) = dir.sync_jobs().list_jobs_with_digest()?;
    let mut list = Vec::new();
    for job in jobs {
        if direction.is_some_and(|d| d != job.direction()) {
            continue;
        }
        if check_sync_job_read_access(caller, &job).is_ok() {
            list.push(job);
        }
    }
    Ok((list, hex::encode(digest)))
}

/// One sync job and the hex digest of `sync.cfg`.
pub fn read_sync_job(
    dir: &ConfigDir,
    caller: &Caller,
    id: &str,
) -> Result<(SyncJobConfig, String), Error> {
    check_job_id(id)?;
    let jobs = dir.sync_jobs();
    let (config, digest) = jobs.config_shared()?;
    if !config.sections.contains_key(id) {
        return Err(no_such_job(id));
    }
    let job: SyncJobConfig = config
        .lookup(pbs_config::sync::SYNC_CFG_TYPE_ID, id)
        .map_err(|err| {
            format_err!(
                "invalid sync job '{id}' in {:?} - {err}",
                jobs.config_path()
            )
        })?;
    check_sync_job_read_access(caller, &job)?;
    Ok((job, hex::encode(digest)))
}

/// Creates sync job from `params` (every property of a job, as the API
/// takes them); returns it as stored.
pub fn create_sync_job(
    dir: &ConfigDir,
    caller: &Caller,
    params: Value,
) -> Result<SyncJobConfig, Error> {
    let mut job = job_from_params(params)?;
    check_job_id(&job.id)?;
    tidy_comment(&mut job);
    job.associated_key = job
        .associated_key
        .take()
        .map(dedup_keys)
        .filter(|keys| !keys.is_empty());
    dir.sync_jobs().edit(None, |edit| {
        check_sync_job_modify_access(caller, &job)?;
        check_job(&job)?;
        let push = job.direction() == SyncDirection::Push;
        if push && job.resync_corrupt.is_some() {
            return Err(refused("push jobs do not support resync-corrupt option"));
        }
        if !push && job.active_encryption_key.is_some() {
            return Err(refused(
                "'active-encryption-key' only applies to push sync jobs",
            ));
        }
        if job.unmount_on_done == Some(true) && job.run_on_mount != Some(true) {
            return Err(refused(
                "'unmount-on-done' can only be set when 'run-on-mount' is enabled",
            ));
        }
        let owner = job.owner_or_root();
        if let Some(key) = &job.active_encryption_key {
            check_key_use(caller, &owner, key, true)?;
        }
        for key in job.associated_key.iter().flatten() {
            check_key_use(caller, &owner, key, false)?;
        }
        if edit.job(&job.id)?.is_some() {
            param_bail!("id", "job '{}' already exists.", job.id);
        }
        edit.set_job(&job)
    })?;
    Ok(job)
}

/// What an update changes: properties to set (as the API takes them) and
/// properties to delete first. `delete` takes the names of
/// [`SYNC_JOB_DELETABLE_PROPERTIES`](pbs_api_types::SYNC_JOB_DELETABLE_PROPERTIES).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobUpdate {
    /// Properties to set, by wire name.
    pub set: Map<String, Value>,
    /// Properties to delete, by wire name.
    pub delete: Vec<String>,
}

impl JobUpdate {
    /// An update that makes `key` the active key (the previous one moves to
    /// the associated keys).
    pub fn active_key(key: &str) -> Self {
        let mut set = Map::new();
        set.insert(ACTIVE_KEY.to_string(), Value::String(key.to_string()));
        Self {
            set,
            delete: Vec::new(),
        }
    }

    /// The update, job id and digest in the parameters of `PUT
    /// /config/sync/{id}` (or of `sync-job update`).
    pub fn from_params(mut params: Value) -> Result<(String, Self, Option<String>), Error> {
        UPDATE_PARAMETERS.verify_json(&params)?;
        let Some(object) = params.as_object_mut() else {
            param_bail!("id", "parameter is missing and it is not optional.");
        };
        let id = match object.remove("id") {
            Some(Value::String(id)) => id,
            _ => param_bail!("id", "parameter is missing and it is not optional."),
        };
        let digest = match object.remove("digest") {
            Some(Value::String(digest)) => Some(digest),
            _ => None,
        };
        let delete = match object.remove("delete") {
            Some(Value::Array(list)) => list
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        Ok((
            id,
            Self {
                set: std::mem::take(object),
                delete,
            },
            digest,
        ))
    }

    fn sets(&self, name: &str) -> bool {
        self.set.contains_key(name)
    }

    fn deletes(&self, name: &str) -> bool {
        self.delete.iter().any(|d| d == name)
    }
}

/// Applies `update` to sync job `id` and returns it as stored. With
/// `digest`, a `sync.cfg` that changed since the caller read it is refused.
pub fn update_sync_job(
    dir: &ConfigDir,
    caller: &Caller,
    id: &str,
    update: &JobUpdate,
    digest: Option<&str>,
) -> Result<SyncJobConfig, Error> {
    check_job_id(id)?;
    let digest = parse_digest(digest)?;
    dir.sync_jobs().edit(digest.as_ref(), |edit| {
        apply_update(edit, caller, id, update)
    })
}

/// [`update_sync_job`] inside an edit that may change other jobs too: a
/// rotation switches every job of a key in one write with
/// [`JobUpdate::active_key`].
pub fn apply_update(
    edit: &mut JobsEdit,
    caller: &Caller,
    id: &str,
    update: &JobUpdate,
) -> Result<SyncJobConfig, Error> {
    verify_update(id, update)?;
    let old = edit.job(id)?.ok_or_else(|| no_such_job(id))?;
    check_sync_job_modify_access(caller, &old)?;
    let param_direction = update
        .set
        .get("sync-direction")
        .and_then(Value::as_str)
        .map(|d| d == "push");
    if param_direction == Some(true) && update.sets("resync-corrupt") {
        return Err(refused("push jobs do not support resync-corrupt option"));
    }
    let mut job = updated_properties(&old, update)?;
    let given = move_keys(&old, &mut job, update)?;
    check_job(&job)?;
    check_keys_of_update(caller, &old, &job, &given)?;
    check_sync_job_modify_access(caller, &job)?;
    edit.set_job(&job)?;
    Ok(job)
}

/// Checks what an in-process caller built as a request would be checked.
fn verify_update(id: &str, update: &JobUpdate) -> Result<(), Error> {
    for name in ["id", "delete", "digest"] {
        if update.sets(name) {
            param_bail!(name, "not a property an update sets");
        }
    }
    let mut params = update.set.clone();
    params.insert("id".into(), Value::String(id.to_string()));
    params.insert("delete".into(), serde_json::to_value(&update.delete)?);
    UPDATE_PARAMETERS.verify_json(&Value::Object(params))
}

/// `old` with everything of `update` but the keys: deleted, then set,
/// through the job's JSON.
fn updated_properties(old: &SyncJobConfig, update: &JobUpdate) -> Result<SyncJobConfig, Error> {
    let mut object = match serde_json::to_value(old)? {
        Value::Object(object) => object,
        _ => unreachable!("a sync job serializes to an object"),
    };
    for name in &update.delete {
        if name != ACTIVE_KEY && name != ASSOCIATED_KEY {
            object.remove(name);
        }
    }
    for (name, value) in &update.set {
        if name != ACTIVE_KEY && name != ASSOCIATED_KEY {
            object.insert(name.clone(), value.clone());
        }
    }
    let mut job: SyncJobConfig = serde_json::from_value(Value::Object(object))
        .map_err(|err| format_err!("invalid sync job update - {err}"))?;
    tidy_comment(&mut job);
    if update.set.get("unmount-on-done") == Some(&Value::Bool(true))
        && job.run_on_mount != Some(true)
    {
        return Err(refused(
            "'unmount-on-done' can only be set when 'run-on-mount' is enabled",
        ));
    }
    Ok(job)
}

/// The keys an update names itself (to be checked for use by the owner).
struct GivenKeys<'a> {
    /// The new active key, if the update sets one.
    active: Option<&'a str>,
    /// The associated keys, if the update sets them (deduplicated).
    associated: Option<Vec<String>>,
}

/// Moves `job`'s keys as upstream does: a deleted or replaced active key
/// stays associated (snapshots made with it still need it); the active key
/// is for push jobs only.
fn move_keys<'a>(
    old: &SyncJobConfig,
    job: &mut SyncJobConfig,
    update: &'a JobUpdate,
) -> Result<GivenKeys<'a>, Error> {
    let previous = old.active_encryption_key.clone();
    let mut active = previous.clone();
    if update.deletes(ACTIVE_KEY) {
        active = None;
    }
    let mut associated = old.associated_key.clone().unwrap_or_default();
    if update.deletes(ASSOCIATED_KEY) {
        associated.clear();
    }
    let given_associated: Option<Vec<String>> = update
        .set
        .get(ASSOCIATED_KEY)
        .map(|list| serde_json::from_value(list.clone()))
        .transpose()?
        .map(dedup_keys);
    if let Some(list) = &given_associated {
        associated = list.clone();
    }
    let push = job.direction() == SyncDirection::Push;
    let direction_changed = update.sets("sync-direction") || update.deletes("sync-direction");
    if direction_changed && !push && active.is_some() {
        return Err(refused(
            "cannot switch to pull direction while 'active-encryption-key' is set; delete it in \
             the same request or clear it first",
        ));
    }
    let new_active = update.set.get(ACTIVE_KEY).and_then(Value::as_str);
    if let Some(key) = new_active {
        if !push {
            return Err(refused(
                "'active-encryption-key' only applies to push sync jobs",
            ));
        }
        active = Some(key.to_string());
    }
    if let Some(previous) = &previous
        && active.as_ref() != Some(previous)
        && !associated.contains(previous)
    {
        // never dropped: snapshots made with it still need it
        associated.push(previous.clone());
    }
    job.active_encryption_key = active;
    job.associated_key = (!associated.is_empty()).then_some(associated);
    Ok(GivenKeys {
        active: new_active,
        associated: given_associated,
    })
}

/// The job's owner must be able to use its keys: a new owner every key the
/// job names, the same owner the keys the update names anew.
fn check_keys_of_update(
    caller: &Caller,
    old: &SyncJobConfig,
    job: &SyncJobConfig,
    given: &GivenKeys<'_>,
) -> Result<(), Error> {
    let owner = job.owner_or_root();
    if owner != old.owner_or_root() {
        if let Some(key) = &job.active_encryption_key {
            check_key_use(caller, &owner, key, true)?;
        }
        for key in job.associated_key.iter().flatten() {
            check_key_use(caller, &owner, key, false)?;
        }
    } else {
        if let Some(key) = given.active
            && old.active_encryption_key.as_deref() != Some(key)
        {
            check_key_use(caller, &owner, key, true)?;
        }
        for key in given.associated.iter().flatten() {
            check_key_use(caller, &owner, key, false)?;
        }
    }
    Ok(())
}

/// Removes sync job `id`. With `digest`, a `sync.cfg` that changed since
/// the caller read it is refused. The keys it named are no longer needed
/// by it (and may become deletable).
pub fn delete_sync_job(
    dir: &ConfigDir,
    caller: &Caller,
    id: &str,
    digest: Option<&str>,
) -> Result<(), Error> {
    check_job_id(id)?;
    let digest = parse_digest(digest)?;
    dir.sync_jobs().edit(digest.as_ref(), |edit| {
        let job = edit.job(id)?.ok_or_else(|| no_such_job(id))?;
        check_sync_job_modify_access(caller, &job)?;
        edit.remove_job(id).map(|_| ())
    })
}

// ---------------------------------------------------------------------------
// the routes

/// Upstream's list filter: `pull`, `push` or `all`.
pub const LIST_SYNC_DIRECTION_SCHEMA: Schema =
    StringSchema::new("The direction of the listed sync jobs: push, pull or all (default all).")
        .format(&ApiStringFormat::Enum(&[
            EnumEntry::new("all", "All directions"),
            EnumEntry::new("pull", "Sync direction pull"),
            EnumEntry::new("push", "Sync direction push"),
        ]))
        .schema();

/// The access description of the routes that read jobs (the details are
/// in [`check_sync_job_read_access`] and docs/api.md).
const READ_ACCESS: &str = "the answer holds only jobs the caller may read: Datastore.Audit on \
     the local datastore, and Remote.Audit on the remote side";

/// The access description of the routes that change jobs (the details are
/// in [`check_sync_job_modify_access`], [`check_key_use`] and
/// docs/api.md).
const MODIFY_ACCESS: &str = "checked by the handler on the job as it was and as it becomes: \
     Datastore and Remote privileges on both sides as upstream, and Sys.Modify on each key \
     named for the caller and the owner";

const SYNC_JOB_RETURN_SCHEMA: Schema = SyncJobConfig::API_SCHEMA;

const SYNC_JOB_LIST_SCHEMA: Schema =
    ArraySchema::new("The sync jobs the caller may see.", &SYNC_JOB_RETURN_SCHEMA).schema();

/// Parameters of `GET /config/sync`.
pub const API_METHOD_LIST_SYNC_JOBS_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "List sync jobs.",
    &[("sync-direction", true, &LIST_SYNC_DIRECTION_SCHEMA)],
);

/// `GET /config/sync`: [`list_sync_jobs`], with the digest of `sync.cfg`.
pub const API_METHOD_LIST_SYNC_JOBS: ApiMethod = ApiMethod::new(
    &ApiHandler::Sync(&api_list_sync_jobs),
    &API_METHOD_LIST_SYNC_JOBS_PARAMETERS,
)
.returns(ReturnType::new(false, &SYNC_JOB_LIST_SCHEMA))
.access(Some(READ_ACCESS), &Permission::Anybody);

/// The direction filter of `sync-direction` (`None`: all).
pub fn parse_list_direction(text: Option<&str>) -> Result<Option<SyncDirection>, Error> {
    match text {
        None | Some("all") => Ok(None),
        Some("pull") => Ok(Some(SyncDirection::Pull)),
        Some("push") => Ok(Some(SyncDirection::Push)),
        Some(other) => param_bail!(
            "sync-direction",
            "value '{other}' is not defined in the enumeration."
        ),
    }
}

fn api_list_sync_jobs(
    param: Value,
    _method: &ApiMethod,
    rpcenv: &mut dyn RpcEnvironment,
) -> Result<Value, Error> {
    let env = RestEnvironment::of(rpcenv)?;
    let caller = Caller::of(env)?;
    let direction = parse_list_direction(param["sync-direction"].as_str())?;
    let (list, digest) = list_sync_jobs(env.dir(), &caller, direction)?;
    rpcenv["digest"] = digest.into();
    Ok(serde_json::to_value(list)?)
}

/// Parameters of `POST /config/sync`: every property of a job.
pub const API_METHOD_CREATE_SYNC_JOB_PARAMETERS: ObjectSchema =
    ObjectSchema::new("Create a sync job.", &SYNC_JOB_PROPERTIES);

/// `POST /config/sync`: [`create_sync_job`]; answers `null`, as upstream.
pub const API_METHOD_CREATE_SYNC_JOB: ApiMethod = ApiMethod::new(
    handler!(Sync, |param, env| {
        create_sync_job(env.dir(), &Caller::of(env)?, param)?;
        Value::Null
    }),
    &API_METHOD_CREATE_SYNC_JOB_PARAMETERS,
)
.access(Some(MODIFY_ACCESS), &Permission::Anybody);

/// Parameters of `GET /config/sync/{id}`.
pub const API_METHOD_READ_SYNC_JOB_PARAMETERS: ObjectSchema =
    ObjectSchema::new("Read a sync job.", &[("id", false, &JOB_ID_SCHEMA)]);

/// `GET /config/sync/{id}`: [`read_sync_job`], with the digest of
/// `sync.cfg`.
pub const API_METHOD_READ_SYNC_JOB: ApiMethod = ApiMethod::new(
    &ApiHandler::SerializingSync(&api_read_sync_job),
    &API_METHOD_READ_SYNC_JOB_PARAMETERS,
)
.returns(ReturnType::new(false, &SYNC_JOB_RETURN_SCHEMA))
.access(Some(READ_ACCESS), &Permission::Anybody);

fn api_read_sync_job(
    param: Value,
    _method: &ApiMethod,
    rpcenv: &mut dyn RpcEnvironment,
) -> Result<Box<dyn SerializableReturn + Send>, Error> {
    let env = RestEnvironment::of(rpcenv)?;
    let id = crate::api2::required_str(&param, "id")?;
    let (job, digest) = read_sync_job(env.dir(), &Caller::of(env)?, id)?;
    rpcenv["digest"] = digest.into();
    Ok(Box::new(job))
}

/// Parameters of `PUT /config/sync/{id}`: `id`, any property of a job,
/// `delete` and `digest`.
pub const UPDATE_PARAMETERS: ObjectSchema =
    ObjectSchema::new("Update a sync job.", &SYNC_JOB_UPDATE_PROPERTIES);

/// `PUT /config/sync/{id}`: [`update_sync_job`]; answers `null`, as
/// upstream.
pub const API_METHOD_UPDATE_SYNC_JOB: ApiMethod = ApiMethod::new(
    handler!(Sync, |param, env| {
        let (id, update, digest) = JobUpdate::from_params(param)?;
        update_sync_job(
            env.dir(),
            &Caller::of(env)?,
            &id,
            &update,
            digest.as_deref(),
        )?;
        Value::Null
    }),
    &UPDATE_PARAMETERS,
)
.access(Some(MODIFY_ACCESS), &Permission::Anybody);

/// Parameters of `DELETE /config/sync/{id}`.
pub const API_METHOD_DELETE_SYNC_JOB_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Remove a sync job.",
    &[
        ("digest", true, &PROXMOX_CONFIG_DIGEST_SCHEMA),
        ("id", false, &JOB_ID_SCHEMA),
    ],
);

/// `DELETE /config/sync/{id}`: [`delete_sync_job`]; answers `null`.
pub const API_METHOD_DELETE_SYNC_JOB: ApiMethod = ApiMethod::new(
    handler!(Sync, |param, env| {
        let id = crate::api2::required_str(&param, "id")?;
        let digest = crate::api2::param_str(&param, "digest");
        delete_sync_job(env.dir(), &Caller::of(env)?, id, digest)?;
        Value::Null
    }),
    &API_METHOD_DELETE_SYNC_JOB_PARAMETERS,
)
.access(Some(MODIFY_ACCESS), &Permission::Anybody);

const ITEM_ROUTER: Router = Router::new()
    .get(&API_METHOD_READ_SYNC_JOB)
    .put(&API_METHOD_UPDATE_SYNC_JOB)
    .delete(&API_METHOD_DELETE_SYNC_JOB);

/// The routes of `/config/sync`.
pub const ROUTER: Router = Router::new()
    .get(&API_METHOD_LIST_SYNC_JOBS)
    .post(&API_METHOD_CREATE_SYNC_JOB)
    .match_all("id", &ITEM_ROUTER);

#[cfg(test)]
mod tests {
    use std::path::Path;

    use pbs_config::acl::AclTree;

    use super::*;
    use crate::api2::test_util::{param_names, temp_config_dir};

    #[test]
    fn bad_parameters_name_the_parameter() {
        let (_tmp, dir) = temp_config_dir();
        let caller = Caller::administrator(&dir);
        let update = JobUpdate::default();
        let err = update_sync_job(&dir, &caller, "../x", &update, None).unwrap_err();
        assert_eq!(param_names(&err), ["id"]);
        let err = update_sync_job(&dir, &caller, "job1", &update, Some("xyz")).unwrap_err();
        assert_eq!(param_names(&err), ["digest"]);
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        let err = parse_cli_parameters(
            &UPDATE_PARAMETERS,
            &pairs(&[("id", "job1"), ("associated-key", "a")]),
        )
        .unwrap_err();
        assert_eq!(param_names(&err), ["associated-key"]);
        assert!(
            err.to_string().contains("invalid encryption key id \"a\""),
            "{err}"
        );
        let err = parse_cli_parameters(
            &API_METHOD_CREATE_SYNC_JOB_PARAMETERS,
            &pairs(&[("id", "job1"), ("store", "st1")]),
        )
        .unwrap_err();
        assert_eq!(param_names(&err), ["remote-store"]);
        let err = read_sync_job(&dir, &caller, "job1").unwrap_err();
        assert_eq!(err.to_string(), "no such sync job 'job1'");
        assert_eq!(
            param_names(&read_sync_job(&dir, &caller, "j").unwrap_err()),
            ["id"]
        );
    }

    #[test]
    fn update_parameters_split_into_id_update_and_digest() {
        let digest = "a".repeat(64);
        let (id, update, got) = JobUpdate::from_params(serde_json::json!({
            "id": "job1",
            "comment": "x",
            "delete": ["owner", "associated-key"],
            "digest": digest,
        }))
        .unwrap();
        assert_eq!(id, "job1");
        assert_eq!(got.as_deref(), Some(digest.as_str()));
        assert_eq!(update.delete, ["owner", "associated-key"]);
        assert_eq!(update.set.len(), 1);
        let err = JobUpdate::from_params(serde_json::json!({"id": "job1", "delete": ["store"]}))
            .unwrap_err();
        assert!(err.to_string().contains("'store' is not defined"), "{err}");
        // an update built in-process is checked as a request is: it can
        // neither rename a job nor smuggle in a property
        let (_tmp, dir) = temp_config_dir();
        let caller = Caller::administrator(&dir);
        for (name, value) in [
            ("id", serde_json::json!("other")),
            ("digest", serde_json::json!("a".repeat(64))),
            ("no-such-property", serde_json::json!("x")),
            ("max-depth", serde_json::json!(99)),
        ] {
            let mut update = JobUpdate::default();
            update.set.insert(name.to_string(), value);
            let err = dir
                .sync_jobs()
                .edit(None, |edit| apply_update(edit, &caller, "job1", &update))
                .unwrap_err();
            assert_eq!(param_names(&err), [name], "{err}");
        }
    }

    /// Upstream's access scenarios (its `sync_job_access_test`), in our
    /// words: who may read and who may change a pull job.
    #[test]
    fn job_access_as_upstream_decides_it() {
        let (_tmp, dir) = temp_config_dir();
        let acl = AclTree::parse(
            Path::new("acl.cfg"),
            "acl:1:/datastore/localstore1:read@pbs,write@pbs:DatastoreAudit\n\
             acl:1:/datastore/localstore1:write@pbs:DatastoreBackup\n\
             acl:1:/datastore/localstore2:write@pbs:DatastoreAudit,DatastorePowerUser\n\
             acl:1:/datastore/localstore3:write@pbs:DatastoreAdmin\n\
             acl:1:/remote/remote1:read@pbs,write@pbs:RemoteAudit\n\
             acl:1:/remote/remote1/remotestore1:write@pbs:RemoteSyncOperator\n",
        )
        .unwrap();
        let info = Arc::new(CachedUserInfo::from_parts(Default::default(), acl));
        let caller = |id: &str| Caller::new(&dir, id.parse().unwrap(), Some(Arc::clone(&info)));
        let (root, nobody, read, write) = (
            Caller::administrator(&dir),
            caller("noperm@pbs"),
            caller("read@pbs"),
            caller("write@pbs"),
        );
        let can_read = |c: &Caller, job: &SyncJobConfig| check_sync_job_read_access(c, job).is_ok();
        let can_modify =
            |c: &Caller, job: &SyncJobConfig| check_sync_job_modify_access(c, job).is_ok();
        let mut job: SyncJobConfig = serde_json::from_value(serde_json::json!({
            "id": "regular", "store": "localstore0", "remote": "remote0",
            "remote-store": "remotestore1", "owner": "write@pbs",
        }))
        .unwrap();

        assert!(can_read(&root, &job) && can_modify(&root, &job));
        assert!(!can_read(&nobody, &job) && !can_modify(&nobody, &job));
        // no read access on either side, then on one side only
        assert!(!can_read(&read, &job));
        job.remote = Some("remote1".into());
        assert!(!can_read(&read, &job));
        job.remote = Some("remote0".into());
        job.store = "localstore1".into();
        assert!(!can_read(&read, &job));
        // no write access on the local side, then on the remote side
        job.store = "localstore0".into();
        assert!(!can_modify(&write, &job));
        job.store = "localstore1".into();
        assert!(!can_modify(&write, &job));
        // a remote both may access: read may read, not change
        job.remote = Some("remote1".into());
        assert!(can_read(&read, &job));
        for owner in [Some("read@pbs"), None, Some("write@pbs")] {
            job.owner = owner.map(|o| o.parse().unwrap());
            assert!(!can_modify(&read, &job), "{owner:?}");
        }
        // write may change it, but not remove vanished backups...
        assert!(can_read(&write, &job) && can_modify(&write, &job));
        job.remove_vanished = Some(true);
        assert!(!can_modify(&write, &job));
        // ... unless it may prune there
        job.store = "localstore2".into();
        assert!(can_modify(&write, &job));
        // nor give the job to someone else, root@pam included ...
        job.owner = Some("read@pbs".parse().unwrap());
        assert!(!can_modify(&write, &job));
        job.owner = None;
        assert!(!can_modify(&write, &job));
        // ... unless it has Datastore.Modify
        job.store = "localstore3".into();
        job.owner = Some("read@pbs".parse().unwrap());
        assert!(can_modify(&write, &job));
        job.owner = None;
        assert!(can_modify(&write, &job));
        // a refusal names what is missing where
        job.store = "localstore0".into();
        let err = check_sync_job_modify_access(&write, &job).unwrap_err();
        assert_eq!(
            err.to_string(),
            "permission check failed - missing Datastore.Audit, Datastore.Backup on /datastore/localstore0"
        );
    }
}
