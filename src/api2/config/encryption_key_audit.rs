//! `/config/encryption-key-audit` (beyond upstream): the key store's audit
//! log (`pbs_config::audit`): its records, its verification and its
//! current checkpoint.
//!
//! A path of its own beside `/config/encryption-keys`, not below it: every
//! name below that is a key id, and `audit` is a valid one (DESIGN.md §6).
//! The log is about the store as a whole, so every route needs Sys.Audit
//! on `/system/encryption-keys`; none changes the store but the POST of a
//! checkpoint, which needs Sys.Modify there (`verify` here never repairs:
//! `proxmox-backup-manager audit verify --repair` does, as root on the
//! host). What names a key the caller may not see (Sys.Audit on
//! `/system/encryption-keys/<id>`, the rule of the key list) is left out:
//! its records, and in the verify report its unrecorded entry, its
//! interrupted operations and the words of the problems that name it
//! (finding 37). The checkpoint names no key: sizes, hashes, signatures.
//! As for every route, the plain functions serve the CLI, which calls them
//! as the administrator.

use std::collections::HashMap;

use anyhow::{Error, format_err};
use serde::Serialize;
use serde_json::Value;

use proxmox_router::{ApiMethod, ReturnType, Router};
use proxmox_schema::{
    ApiStringFormat, ArraySchema, IntegerSchema, ObjectSchema, Schema, StringSchema, param_bail,
};

use pbs_api_types::{CRYPT_KEY_ID_SCHEMA, CryptKey};
use pbs_config::ConfigDir;
use pbs_config::audit::{
    AuditLog, AuditReport, Checkpoint, Filter, Op, Phase, Record, VerifyOptions,
};
use pbs_config::verified_copy;

use super::{KeyAccess, STORE_AUDIT, STORE_MODIFY};
use crate::api2::described_object;

fn check_operation(name: &str) -> Result<(), Error> {
    name.parse::<Op>().map(|_| ())
}

/// `operation`: an audited operation by its name in the log.
pub const OPERATION_SCHEMA: Schema =
    StringSchema::new("An audited operation (create, import, archive, ... as the log names it).")
        .format(&ApiStringFormat::VerifyFn(check_operation))
        .max_length(64)
        .schema();

const OPERATIONS_SCHEMA: Schema =
    ArraySchema::new("Only these operations (all if none).", &OPERATION_SCHEMA).schema();

const EPOCH_SCHEMA: Schema = IntegerSchema::new("Seconds since the epoch.")
    .minimum(0)
    .schema();

const CHECKPOINT_TEXT_SCHEMA: Schema = StringSchema::new(
    "A checkpoint kept elsewhere: the signed note 'audit checkpoint' printed, or its syslog line.",
)
.max_length(4096)
.schema();

const CHECKPOINTS_SCHEMA: Schema =
    ArraySchema::new("Checkpoints kept elsewhere.", &CHECKPOINT_TEXT_SCHEMA).schema();

const TRUSTED_KEY_SCHEMA: Schema = StringSchema::new(
    "A verifier key kept elsewhere (NAME+KEYID+KEY): the store must still sign with it.",
)
.max_length(512)
.schema();

const TRUSTED_KEYS_SCHEMA: Schema =
    ArraySchema::new("Verifier keys kept elsewhere.", &TRUSTED_KEY_SCHEMA).schema();

const RECORD_SCHEMA: Schema = described_object(
    "An audit record: seq, time, actor, unix-user, origin, op, ids, fingerprints, job, phase, \
     intent, result, prev, hash (docs/audit.md).",
);

const RECORD_LIST_SCHEMA: Schema = ArraySchema::new(
    "The records that pass the filter, oldest first.",
    &RECORD_SCHEMA,
)
.schema();

const REPORT_SCHEMA: Schema = described_object(
    "What audit verify found: log, records, head, verifier-key, checkpoint, kept-checkpoints, \
     problems (kind, line, message), notices, unfinished, repaired, unrecorded (id, \
     fingerprint: listed keys no record names).",
);

const CHECKPOINT_SCHEMA: Schema = described_object(
    "The current checkpoint (note, line, size, head) and the verifier key; empty before the \
     first record.",
);

/// The records of the log that pass `filter` and `shown`, oldest first:
/// all of them, or with `limit` the newest so many (the log read from its
/// end, as far as they reach); none if the store has no log yet.
///
/// # Errors
///
/// A parameter error (the API's 400, the CLI's words) for a `since` at or
/// after `until`, which no record could pass, log or not.
pub fn list_records(
    dir: &ConfigDir,
    filter: &Filter,
    limit: Option<usize>,
    shown: &dyn Fn(&Record) -> bool,
) -> Result<Vec<Record>, Error> {
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since >= until
    {
        // one message for both surfaces: the API adds "parameter 'since'",
        // the CLI what failed; both name the two bounds
        param_bail!("since", "since must be before until");
    }
    let Some(log) = AuditLog::open_existing(dir)? else {
        return Ok(Vec::new());
    };
    let Some(limit) = limit else {
        let mut records = log.list(filter)?;
        records.retain(shown);
        return Ok(records);
    };
    let mut records = Vec::new();
    log.newest_first(filter, |record| {
        if shown(&record) {
            records.push(record);
        }
        records.len() >= limit
    })?;
    records.reverse();
    Ok(records)
}

const LIMIT_SCHEMA: Schema = IntegerSchema::new(
    "Only the newest LIMIT records that pass the other filters (all if not given).",
)
.minimum(1)
.schema();

const BEFORE_SEQ_SCHEMA: Schema = IntegerSchema::new(
    "Only records older than the record of this seq (a record's line in the log, 1 or more): \
     the next older batch after one whose oldest record it is.",
)
.minimum(1)
.schema();

/// Parameters of `GET /config/encryption-key-audit`.
pub const API_METHOD_LIST_RECORDS_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "List the records of the audit log.",
    &[
        ("before-seq", true, &BEFORE_SEQ_SCHEMA),
        // `id`, not `key`: a `key` parameter is key material, refused in
        // the URL (`BODY_ONLY_PARAMETERS`)
        ("id", true, &CRYPT_KEY_ID_SCHEMA),
        ("limit", true, &LIMIT_SCHEMA),
        ("operation", true, &OPERATIONS_SCHEMA),
        ("since", true, &EPOCH_SCHEMA),
        ("until", true, &EPOCH_SCHEMA),
    ],
);

/// `GET /config/encryption-key-audit`: [`list_records`], those naming a
/// key the caller may not see left out (before `limit` counts). With
/// `before-seq` (the oldest record of a batch shown) and `limit`, the next
/// older batch: every record once, as one list without `limit` holds them.
/// A masked caller learns nothing by moving the cursor that the whole list
/// it may read does not show: the cursor only cuts that list.
pub const API_METHOD_LIST_RECORDS: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        let dir = env.dir();
        let access = KeyAccess::of(env)?;
        let ops = match &param["operation"] {
            Value::Array(names) => names
                .iter()
                .filter_map(Value::as_str)
                .map(str::parse)
                .collect::<Result<Vec<Op>, Error>>()?,
            _ => Vec::new(),
        };
        let filter = Filter {
            key: param["id"].as_str().map(str::to_string),
            since: param["since"].as_i64(),
            until: param["until"].as_i64(),
            before_seq: param["before-seq"].as_u64(),
            ops,
            ..Filter::default()
        };
        let may_see = |id: &str| access.may_see(id);
        let limit = param["limit"]
            .as_u64()
            .map(|limit| usize::try_from(limit).unwrap_or(usize::MAX));
        let mut records =
            list_records(dir, &filter, limit, &|record| record.key_ids().all(may_see))?;
        for record in &mut records {
            if let Some(result) = &mut record.result {
                *result = told(result, &may_see);
            }
        }
        records
    }),
    &API_METHOD_LIST_RECORDS_PARAMETERS,
)
.returns(ReturnType::new(false, &RECORD_LIST_SCHEMA))
.access(Some(RECORDS_ACCESS), &STORE_AUDIT);

const RECORDS_ACCESS: &str = "what names a key without Sys.Audit on \
     `/system/encryption-keys/{id}` is left out";

/// Verifies the log (see `AuditLog::verify`); a store without a log is
/// clean unless a kept checkpoint proves records it lacks
/// ([`AuditReport::without_log`]).
pub fn verify_log(dir: &ConfigDir, options: &VerifyOptions) -> Result<AuditReport, Error> {
    if let Some(log) = AuditLog::open_existing(dir)? {
        return log.verify(options);
    }
    AuditReport::without_log(dir, options)
}

/// Parameters of `GET /config/encryption-key-audit/verify`.
pub const API_METHOD_VERIFY_LOG_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Verify the audit log: its chain, its checkpoint, and kept checkpoints and keys.",
    &[
        ("checkpoint", true, &CHECKPOINTS_SCHEMA),
        ("trusted-key", true, &TRUSTED_KEYS_SCHEMA),
    ],
);

/// `GET /config/encryption-key-audit/verify`: [`verify_log`], never
/// repairing.
pub const API_METHOD_VERIFY_LOG: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        let dir = env.dir();
        let options = VerifyOptions {
            checkpoints: strings(&param["checkpoint"]),
            trusted_keys: strings(&param["trusted-key"]),
            repair: false,
        };
        for (name, texts) in [
            ("checkpoint", &options.checkpoints),
            ("trusted-key", &options.trusted_keys),
        ] {
            if let Some(Err(err)) = texts.iter().find_map(|text| {
                let parsed = match name {
                    "checkpoint" => Checkpoint::parse(text).map(|_| ()),
                    _ => pbs_config::audit::PublicKey::parse_verifier_key(text).map(|_| ()),
                };
                parsed.is_err().then_some(parsed)
            }) {
                param_bail!(name, "{err}");
            }
        }
        let access = KeyAccess::of(env)?;
        let report = verify_log(dir, &options)?;
        withhold_keys(report, &|id| access.may_see(id))
    }),
    &API_METHOD_VERIFY_LOG_PARAMETERS,
)
.returns(ReturnType::new(false, &REPORT_SCHEMA))
.access(Some(RECORDS_ACCESS), &STORE_AUDIT);

/// What a message that names a key the caller may not see says instead.
pub const WITHHELD: &str = "withheld: it names a key this caller may not see";

/// `message` as a caller who may see only the keys `may_see` lets through
/// reads it: [`WITHHELD`] if it names one it may not see, else without the
/// holders of a lock it timed out on (finding 39). Messages quote ids
/// (`'id'`); every word between quotes, or between a quote and the next,
/// that is a valid key id is checked, and a trash entry's name
/// (`<id>@<time>-<random>`) as the key it is of (finding 59); a word that
/// is no key is seen wherever the store is (the routes need Sys.Audit on
/// it).
pub fn told(message: &str, may_see: &dyn Fn(&str) -> bool) -> String {
    let names_hidden = message
        .split('\'')
        .any(|word| key_named(word).is_some_and(|id| !may_see(id)));
    match names_hidden {
        true => WITHHELD.to_string(),
        false => pbs_config::without_holders(message).into_owned(),
    }
}

/// The key a word of a message names, if any: a key id, or a trash
/// entry's name (`<id>@<time>-<random>`) standing for the key it is of.
fn key_named(word: &str) -> Option<&str> {
    if word.contains('@') {
        let entry = pbs_config::trash::check_selector(word).is_ok();
        return entry.then(|| pbs_config::trash::entry_id(word));
    }
    let id = CRYPT_KEY_ID_SCHEMA.parse_simple_value(word).is_ok();
    id.then_some(word)
}

/// `report` as a caller who may see only the keys `may_see` lets through
/// reads it: without the unrecorded keys and the interrupted operations of
/// the others, each problem or notice naming one [`told`] as
/// [`WITHHELD`] (its kind and line kept). Counts, hashes and checkpoints
/// name no key.
pub fn withhold_keys(mut report: AuditReport, may_see: &dyn Fn(&str) -> bool) -> AuditReport {
    report.unrecorded.retain(|key| may_see(&key.id));
    report
        .unfinished
        .retain(|unfinished| unfinished.record.key_ids().all(may_see));
    for problem in report.problems.iter_mut().chain(&mut report.notices) {
        problem.message = told(&problem.message, may_see);
    }
    for repaired in &mut report.repaired {
        *repaired = told(repaired, may_see);
    }
    report
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// The checkpoint to keep off the host.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CurrentCheckpoint {
    /// The signed note (C2SP signed-note text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// The same as one line, as syslog carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// Records covered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The `hash` of the last record covered (hex).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The key checking it (`NAME+KEYID+KEY`), to keep once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verifier_key: Option<String>,
}

/// Syncs the log and signs a checkpoint of all of it: what to keep
/// elsewhere. Empty before the first record.
pub fn current_checkpoint(dir: &ConfigDir) -> Result<CurrentCheckpoint, Error> {
    checkpoint_answer(dir, |log| log.checkpoint_now())
}

/// The checkpoint stored last (by the writer of the last intent, or the
/// last signing), read without writing anything: it may be behind the log
/// by outcomes. Empty if there is none.
pub fn stored_checkpoint(dir: &ConfigDir) -> Result<CurrentCheckpoint, Error> {
    checkpoint_answer(dir, |log| log.stored_checkpoint())
}

fn checkpoint_answer(
    dir: &ConfigDir,
    checkpoint_of: impl Fn(&AuditLog) -> Result<Option<Checkpoint>, Error>,
) -> Result<CurrentCheckpoint, Error> {
    let Some(log) = AuditLog::open_existing(dir)? else {
        return Ok(CurrentCheckpoint::default());
    };
    let Some(checkpoint) = checkpoint_of(&log)? else {
        return Ok(CurrentCheckpoint::default());
    };
    Ok(CurrentCheckpoint {
        checkpoint: Some(checkpoint.to_note()),
        line: checkpoint.to_line(),
        size: Some(checkpoint.size),
        head: Some(checkpoint.head_hex()),
        verifier_key: log.verifier_key()?,
    })
}

/// Parameters of `GET /config/encryption-key-audit/checkpoint`.
pub const API_METHOD_STORED_CHECKPOINT_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "The audit log's stored checkpoint, to keep elsewhere (writes nothing).",
    &[],
);

/// `GET /config/encryption-key-audit/checkpoint`: [`stored_checkpoint`];
/// a reader makes the daemon write nothing (finding 40).
pub const API_METHOD_STORED_CHECKPOINT: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |_, env| stored_checkpoint(env.dir())?),
    &API_METHOD_STORED_CHECKPOINT_PARAMETERS,
)
.returns(ReturnType::new(false, &CHECKPOINT_SCHEMA))
.access(None, &STORE_AUDIT);

/// Parameters of `POST /config/encryption-key-audit/checkpoint`.
pub const API_METHOD_CURRENT_CHECKPOINT_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Sign a checkpoint of the whole audit log, to keep elsewhere.",
    &[],
);

/// `POST /config/encryption-key-audit/checkpoint`: [`current_checkpoint`]
/// (it writes the checkpoint, so it changes the store).
pub const API_METHOD_CURRENT_CHECKPOINT: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |_, env| current_checkpoint(env.dir())?),
    &API_METHOD_CURRENT_CHECKPOINT_PARAMETERS,
)
.returns(ReturnType::new(false, &CHECKPOINT_SCHEMA))
.access(None, &STORE_MODIFY);

/// Who did something to a key, and when, as the log's record of it says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuditMark {
    /// When (seconds since the epoch).
    pub time: i64,
    /// The authenticated id.
    pub actor: String,
    /// The Unix user who ran the CLI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unix_user: Option<String>,
    /// `cli`, `local` or `api ADDRESS`.
    pub origin: String,
    /// The operation.
    pub op: String,
    /// The record's line in the log.
    pub seq: u64,
}

impl From<Record> for AuditMark {
    fn from(record: Record) -> Self {
        Self {
            time: record.time,
            actor: record.actor,
            unix_user: record.unix_user,
            origin: record.origin,
            op: record.op,
            seq: record.seq,
        }
    }
}

/// What the audit log says about a key (no second source: read from the
/// log each time; each absent until there is a record).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuditMarks {
    /// The last export of the key that succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exported: Option<AuditMark>,
    /// The last successful check of an export of it (`export-verify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_export_verify: Option<AuditMark>,
    /// The last change of its files or config entry that took effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_changed_by: Option<AuditMark>,
}

/// What the audit log says about `key`: the last effective outcome of an
/// export, of an export check and of a change, each naming the key by id
/// (and by its fingerprint, if the record names any), in one read from
/// the end of the log.
pub fn key_marks(dir: &ConfigDir, key: &CryptKey) -> Result<AuditMarks, Error> {
    let Some(log) = AuditLog::open_existing(dir)? else {
        return Ok(AuditMarks::default());
    };
    Ok(AuditMarks::of_found(log.last_each(&mark_filters(key))?))
}

/// [`key_marks`] of each of `keys`, in one read from the end of the log
/// whatever their number (a filter per key, as `key_marks` reads, would
/// test every line against each): every effective outcome of an export,
/// an export check or a change is tested against the filters of the keys
/// it names by id or fingerprint only.
pub fn keys_marks(dir: &ConfigDir, keys: &[&CryptKey]) -> Result<Vec<AuditMarks>, Error> {
    let Some(log) = AuditLog::open_existing(dir)? else {
        return Ok(vec![AuditMarks::default(); keys.len()]);
    };
    let filters: Vec<[Filter; 3]> = keys.iter().map(|key| mark_filters(key)).collect();
    let mut by_id: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_fingerprint: HashMap<String, Vec<usize>> = HashMap::new();
    for (position, key) in keys.iter().enumerate() {
        by_id.entry(key.id.as_str()).or_default().push(position);
        if let Some(fingerprint) = key.info.fingerprint {
            by_fingerprint
                .entry(fingerprint.signature())
                .or_default()
                .push(position);
        }
    }
    let mut found: Vec<[Option<Record>; 3]> = vec![Default::default(); keys.len()];
    let mut open = 3 * keys.len();
    let mut named: Vec<usize> = Vec::new();
    log.newest_first(&marked_records(), |record| {
        named.clear();
        for id in &record.ids {
            named.extend(by_id.get(id.as_str()).into_iter().flatten());
        }
        for fingerprint in &record.fingerprints {
            named.extend(by_fingerprint.get(fingerprint).into_iter().flatten());
        }
        named.sort_unstable();
        named.dedup();
        for &position in &named {
            for (slot, filter) in found[position].iter_mut().zip(&filters[position]) {
                if slot.is_none() && filter.matches(&record) {
                    *slot = Some(record.clone());
                    open -= 1;
                }
            }
        }
        open == 0
    })?;
    Ok(found.into_iter().map(AuditMarks::of_found).collect())
}

/// The filters of a key's marks, in the order of [`AuditMarks`]' fields.
fn mark_filters(key: &CryptKey) -> [Filter; 3] {
    let fingerprint = key.info.fingerprint.map(|fp| fp.signature());
    let filter = |ops: &[Op]| Filter {
        fingerprint: fingerprint.clone(),
        ..Filter::last_done(ops, &key.id)
    };
    // a verified copy is of the key, whatever id the bundle gave it: the
    // same fact a purge asks for (pbs_config::verified_copy)
    let verified = match key.info.fingerprint {
        Some(fingerprint) => verified_copy::filter(&fingerprint),
        None => filter(&[Op::ExportVerify]),
    };
    [filter(&[Op::Export]), verified, filter(&changes())]
}

/// The operations that change a key (its last-changed-by).
fn changes() -> Vec<Op> {
    Op::ALL
        .iter()
        .copied()
        .filter(|op| op.changes_key())
        .collect()
}

/// Every record any of [`mark_filters`] may pass: the effective outcomes
/// of their operations.
fn marked_records() -> Filter {
    let mut ops = changes();
    ops.extend([Op::Export, Op::ExportVerify]);
    Filter {
        ops,
        phase: Some(Phase::Outcome),
        effective: true,
        ..Filter::default()
    }
}

impl AuditMarks {
    /// The marks of what [`mark_filters`] found, in their order.
    fn of_found(found: impl IntoIterator<Item = Option<Record>>) -> Self {
        let mut found = found.into_iter().map(|record| record.map(AuditMark::from));
        Self {
            last_exported: found.next().flatten(),
            last_export_verify: found.next().flatten(),
            last_changed_by: found.next().flatten(),
        }
    }
}

/// Whether `text` names a known operation (for the CLI's `--operation`).
pub fn parse_operation(text: &str) -> Result<Op, Error> {
    text.parse::<Op>().map_err(|err| {
        let names: Vec<&str> = Op::ALL.iter().map(|op| op.as_str()).collect();
        format_err!("{err} - known operations: {}", names.join(", "))
    })
}

const VERIFY_ROUTER: Router = Router::new().get(&API_METHOD_VERIFY_LOG);
const CHECKPOINT_ROUTER: Router = Router::new()
    .get(&API_METHOD_STORED_CHECKPOINT)
    .post(&API_METHOD_CURRENT_CHECKPOINT);

/// The routes of `/config/encryption-key-audit`.
pub const ROUTER: Router = Router::new().get(&API_METHOD_LIST_RECORDS).subdirs(&[
    ("checkpoint", &CHECKPOINT_ROUTER),
    ("verify", &VERIFY_ROUTER),
]);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api2::test_util::temp_config_dir;

    #[test]
    fn a_message_naming_a_hidden_key_is_withheld() {
        let may_see = |id: &str| id != "hidden";
        for message in [
            "refused - encryption key 'hidden' is in the way",
            // an apostrophe before the quotes
            "can't touch 'hidden' - retry",
            "'hidden'",
            "'trash-restore' of 'open', 'hidden@1795966067-Qf4gnl' has no outcome",
        ] {
            assert_eq!(told(message, &may_see), WITHHELD, "{message}");
        }
        for message in [
            "refused - encryption key 'open' is in the way",
            "unable to record 'import' in the audit log",
            "restored as 'open@1795966067-Qf4gnl'",
            "a hidden key",
            "ok",
        ] {
            assert_eq!(told(message, &may_see), message);
        }
        let held = "timed out after 10.0s - another process holds the lock";
        assert_eq!(
            told(&format!("{held} (pid 1 'init', user root)"), &may_see),
            held
        );
    }

    #[test]
    fn a_store_without_a_log_is_clean_unless_a_kept_checkpoint_says_otherwise() {
        let (tmp, dir) = temp_config_dir();
        assert!(
            list_records(&dir, &Filter::default(), None, &|_| true)
                .unwrap()
                .is_empty()
        );
        let report = verify_log(&dir, &VerifyOptions::default()).unwrap();
        assert!(report.is_clean() && report.records == 0, "{report:?}");
        assert!(current_checkpoint(&dir).unwrap().checkpoint.is_none());
        assert!(stored_checkpoint(&dir).unwrap().checkpoint.is_none());
        // nothing was created by reading
        assert!(!tmp.path().join("encryption-keys").exists());
        assert!(
            parse_operation("erase")
                .unwrap_err()
                .to_string()
                .contains("archive")
        );
    }
}
