//! `audit verify`: is the log what was written, in the order it was
//! written, and did every operation finish?
//!
//! Checked:
//! - the chain from line 1: each line's hash over its own bytes, its `seq`
//!   and its `prev` (a rewritten field, a removed, inserted or reordered
//!   line, each named by line number);
//! - the stored checkpoint: signed by this store's key, and the log still
//!   has its size and head at that position (a truncated tail, a log
//!   rewritten and not re-signed); a checkpoint that is missing, torn or
//!   behind the log is a notice (a crash), not a problem;
//! - each checkpoint kept elsewhere: signed by this store's key (else
//!   another key signs the store now: a foreign signature) and the log
//!   still has its size and head at that position (a truncated tail, a
//!   log rewritten and re-signed on the host);
//! - given trusted verifier keys: this store still signs with one of them;
//! - every intent has its outcome; for one without, what the store shows;
//! - owners and modes of the audit files;
//! - every key the config lists is named (by fingerprint) by a record: a
//!   key no record names was stored before the log began (by upstream
//!   PBS, or a copied config) or its records were removed, which only a
//!   checkpoint kept elsewhere tells apart. Listed in the report, not a
//!   problem: a store taken over from upstream lists such keys for good.
//!
//! `--repair` (only when the log shows no tampering) records an outcome
//! for each interrupted operation, saying what the store shows, cuts off
//! an incomplete last line and signs a new checkpoint.
//!
//! The log is read once without lock, then the rest under `pending.lck`
//! (exclusive: no operation between intent and outcome) and the log's lock.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use anyhow::Error;
use serde::Serialize;

use proxmox_lang::error::ErrorLayer;

use crate::ConfigDir;
use crate::dir_handle::{EntryKind, EntryStat};
use crate::files::{
    AUDIT_CHECKPOINT, AUDIT_DIR_MODE, AUDIT_DIR_NAME, AUDIT_LOCK, AUDIT_LOG, AUDIT_PENDING_LOCK,
    AUDIT_SIGNING_KEY, ConfigFile, FileClass,
};
use crate::ownership::{group_name_of, user_name_of};

use super::checkpoint::{Checkpoint, PublicKey, SignatureCheck};
use super::list::{LineReader, RawLine};
use super::record::{
    Op, Phase, RESULT_INTERRUPTED_APPLIED, RESULT_INTERRUPTED_NOT_APPLIED,
    RESULT_INTERRUPTED_UNKNOWN, Record, parse_hash, parse_line,
};
use super::{AuditLock, AuditLog, AuditReadLock};

/// What `audit verify` checks besides the log itself.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Checkpoints kept elsewhere (note or one-line text).
    pub checkpoints: Vec<String>,
    /// Verifier keys kept elsewhere (`NAME+ID+KEY`): the store must still
    /// sign with one of them.
    pub trusted_keys: Vec<String>,
    /// Record outcomes of interrupted operations and sign a new checkpoint
    /// (only if the log shows no tampering).
    pub repair: bool,
}

impl VerifyOptions {
    /// The kept checkpoints and the trusted keys, parsed.
    fn parse(&self) -> Result<(Vec<Checkpoint>, Vec<PublicKey>), Error> {
        let kept = self
            .checkpoints
            .iter()
            .enumerate()
            .map(|(index, text)| {
                Checkpoint::parse(text)
                    .layer_err(|| format!("unable to read kept checkpoint {}", index + 1))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let trusted = self
            .trusted_keys
            .iter()
            .map(|text| PublicKey::parse_verifier_key(text).map(|(_, key)| key))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok((kept, trusted))
    }
}

/// What kind of problem a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// A line that is no record: no hash, not JSON, too long, not UTF-8.
    Damaged,
    /// A line changed after it was written.
    Rewritten,
    /// Records missing before a line.
    Removed,
    /// Lines inserted.
    Inserted,
    /// Lines out of order.
    Reordered,
    /// Records missing at the end (against a checkpoint).
    Truncated,
    /// The log differs from a checkpoint at the checkpoint's size.
    CheckpointMismatch,
    /// A checkpoint whose signature does not verify: it was altered.
    BadSignature,
    /// A checkpoint signed by another key than this store's.
    ForeignKey,
    /// This store signs with none of the trusted keys given.
    UntrustedKey,
    /// The signing key is missing while the log has records.
    MissingKey,
    /// An intent without outcome: an interrupted operation.
    IntentWithoutOutcome,
    /// An outcome that names no open intent.
    OrphanOutcome,
    /// An audit file or directory with the wrong mode.
    WrongMode,
    /// An audit file or directory with the wrong owner.
    WrongOwner,
    /// Notice: an incomplete last line (an append a crash interrupted).
    IncompleteLine,
    /// Notice: the checkpoint is behind the log.
    CheckpointBehind,
    /// Notice: no checkpoint, or one that cannot be read (a crash while
    /// it was written).
    CheckpointMissing,
}

impl ProblemKind {
    /// Whether this kind is what a crash leaves and repair fixes, not a
    /// problem.
    pub fn is_notice(self) -> bool {
        matches!(
            self,
            ProblemKind::IncompleteLine
                | ProblemKind::CheckpointBehind
                | ProblemKind::CheckpointMissing
        )
    }

    /// Whether this kind means the log was changed by someone (repair then
    /// changes nothing: signing a new checkpoint would bless the change).
    pub fn is_tampering(self) -> bool {
        !matches!(
            self,
            ProblemKind::IntentWithoutOutcome
                | ProblemKind::WrongMode
                | ProblemKind::WrongOwner
                | ProblemKind::IncompleteLine
                | ProblemKind::CheckpointBehind
                | ProblemKind::CheckpointMissing
        )
    }
}

/// One problem (or notice) found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuditProblem {
    /// What kind.
    pub kind: ProblemKind,
    /// The line of the log concerned (1 is the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// What is wrong, for a human.
    pub message: String,
}

/// What the store shows about an interrupted operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreState {
    /// The change is in the store.
    Applied,
    /// The change is not in the store.
    NotApplied,
    /// The store cannot tell (see the detail).
    Unknown,
}

/// An intent without outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Unfinished {
    /// Its line.
    pub line: u64,
    /// The intent.
    pub record: Record,
    /// What the store shows.
    pub state: StoreState,
    /// Why, for a human.
    pub detail: String,
}

/// The result of [`AuditLog::verify`].
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuditReport {
    /// The log checked.
    pub log: PathBuf,
    /// Complete lines read.
    pub records: u64,
    /// `hash` of the last line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// This store's verifier key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verifier_key: Option<String>,
    /// The stored checkpoint after verify (a new one if repair signed it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Checkpoints kept elsewhere that were checked.
    pub kept_checkpoints: usize,
    /// Problems: tampering, damage, interrupted operations, modes.
    pub problems: Vec<AuditProblem>,
    /// What a crash leaves and repair fixes, not a problem.
    pub notices: Vec<AuditProblem>,
    /// Intents without outcome, with what the store shows (each also a
    /// problem until repair records its outcome).
    pub unfinished: Vec<Unfinished>,
    /// What repair did.
    pub repaired: Vec<String>,
    /// Keys the config lists that no record names (see the module docs).
    pub unrecorded: Vec<UnrecordedKey>,
}

/// A key the config lists that no record of the log names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UnrecordedKey {
    /// Its id.
    pub id: String,
    /// Its fingerprint (full, colon-separated hex, as in the records).
    pub fingerprint: String,
}

impl AuditReport {
    /// The report on a store that has no audit directory: no records,
    /// every listed key unrecorded, and each kept checkpoint of records or
    /// trusted key given a proof that the log was removed.
    ///
    /// # Errors
    ///
    /// A kept checkpoint that cannot be read.
    pub fn without_log(dir: &ConfigDir, options: &VerifyOptions) -> Result<Self, Error> {
        let (kept, _) = options.parse()?;
        let log = dir
            .encryption_keys()
            .key_dir()
            .join(AUDIT_DIR_NAME)
            .join(AUDIT_LOG.name);
        let mut report = AuditReport::empty(log, kept.len());
        for (index, checkpoint) in kept.iter().enumerate() {
            if checkpoint.size > 0 {
                report.add(
                    ProblemKind::Truncated,
                    Some(1),
                    format!(
                        "there is no audit log, but kept checkpoint {} proves {} records: the \
                         log was removed (lines 1..{} are missing)",
                        index + 1,
                        checkpoint.size,
                        checkpoint.size
                    ),
                );
            }
        }
        if !options.trusted_keys.is_empty() {
            report.add(
                ProblemKind::MissingKey,
                None,
                "there is no audit log and no signing key, but trusted verifier keys were given: \
                 the log and its key were removed"
                    .to_string(),
            );
        }
        report.unrecorded = unrecorded_keys(dir, &HashSet::new());
        Ok(report)
    }

    fn empty(log: PathBuf, kept_checkpoints: usize) -> Self {
        AuditReport {
            log,
            records: 0,
            head: None,
            verifier_key: None,
            checkpoint: None,
            kept_checkpoints,
            problems: Vec::new(),
            notices: Vec::new(),
            unfinished: Vec::new(),
            repaired: Vec::new(),
            unrecorded: Vec::new(),
        }
    }

    /// Whether there is no problem (notices aside).
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// Whether a problem means tampering.
    pub fn is_tampered(&self) -> bool {
        self.problems.iter().any(|p| p.kind.is_tampering())
    }

    fn add(&mut self, kind: ProblemKind, line: Option<u64>, message: String) {
        let problem = AuditProblem {
            kind,
            line,
            message,
        };
        if kind.is_notice() {
            self.notices.push(problem);
        } else {
            self.problems.push(problem);
        }
    }
}

/// One line as the chain check needs it.
#[derive(Clone, Debug)]
struct LineInfo {
    /// Why it is no record, if it is none.
    damaged: Option<String>,
    seq: u64,
    phase: Option<Phase>,
    prev: Option<[u8; 32]>,
    stored: [u8; 32],
    hash_matches: bool,
}

/// The log read so far.
#[derive(Default)]
struct Scan {
    lines: Vec<LineInfo>,
    /// Offset after the last complete line.
    offset: u64,
    /// Bytes after it.
    incomplete: u64,
    /// Intents not yet closed, by seq: line, record, named again later.
    open: Vec<(u64, Record, bool)>,
    /// Problems about outcomes, found while reading.
    outcome_problems: Vec<(u64, String)>,
    /// seq of intents closed by an outcome.
    closed: HashSet<u64>,
    /// seq of lines whose content does not match their hash.
    untrusted: HashSet<u64>,
    /// Fingerprints named by lines that match their hash.
    fingerprints: HashSet<String>,
}

impl Scan {
    fn read(&mut self, reader: &mut LineReader) -> Result<(), Error> {
        while let Some(raw) = reader.next_line()? {
            let number = self.lines.len() as u64 + 1;
            let info = match raw {
                RawLine::TooLong => damaged("it is too long"),
                RawLine::Line(bytes) => match String::from_utf8(bytes) {
                    Err(_) => damaged("it is not UTF-8"),
                    Ok(text) => match parse_line(&text) {
                        Err(err) => damaged(&err.to_string()),
                        Ok(parsed) if !parsed.hash_matches() => {
                            // reported as rewritten: its content is not
                            // what was written, so it pairs with nothing
                            self.untrusted.insert(parsed.record.seq);
                            LineInfo {
                                damaged: None,
                                seq: parsed.record.seq,
                                phase: Some(parsed.record.phase),
                                prev: parse_hash(&parsed.record.prev),
                                stored: parsed.stored,
                                hash_matches: false,
                            }
                        }
                        Ok(parsed) => {
                            let info = LineInfo {
                                damaged: None,
                                seq: parsed.record.seq,
                                phase: Some(parsed.record.phase),
                                prev: parse_hash(&parsed.record.prev),
                                stored: parsed.stored,
                                hash_matches: parsed.hash_matches(),
                            };
                            self.fingerprints
                                .extend(parsed.record.fingerprints.iter().cloned());
                            self.follow(number, parsed.record);
                            info
                        }
                    },
                },
            };
            self.lines.push(info);
        }
        self.offset = reader.complete_offset();
        self.incomplete = reader.incomplete;
        Ok(())
    }

    /// Intents and outcomes: pairs them, and notes open intents whose ids
    /// later records name.
    fn follow(&mut self, number: u64, record: Record) {
        for (_, intent, touched) in self.open.iter_mut() {
            if !*touched && record.ids.iter().any(|id| intent.names_id(id)) {
                *touched = true;
            }
        }
        match record.phase {
            Phase::Intent => self.open.push((number, record, false)),
            Phase::Outcome => {
                let Some(intent_seq) = record.intent else {
                    self.outcome_problems.push((
                        number,
                        format!("line {number} is an outcome naming no intent"),
                    ));
                    return;
                };
                match self.open.iter().position(|(_, r, _)| r.seq == intent_seq) {
                    Some(pos) if self.open[pos].1.op == record.op => {
                        self.open.remove(pos);
                        self.closed.insert(intent_seq);
                    }
                    Some(pos) => self.outcome_problems.push((
                        number,
                        format!(
                            "line {number} is an outcome of '{}' for intent {intent_seq}, which is \
                             '{}' (line {})",
                            record.op, self.open[pos].1.op, self.open[pos].0
                        ),
                    )),
                    // its intent was rewritten, and is reported as such
                    None if self.untrusted.contains(&intent_seq) => {}
                    None if self.closed.contains(&intent_seq) => self.outcome_problems.push((
                        number,
                        format!(
                            "line {number} is a second outcome of intent {intent_seq} - a line \
                             was repeated"
                        ),
                    )),
                    None => self.outcome_problems.push((
                        number,
                        format!(
                            "line {number} is the outcome of intent {intent_seq}, which is not in \
                             the log before it"
                        ),
                    )),
                }
            }
        }
    }
}

fn damaged(why: &str) -> LineInfo {
    LineInfo {
        damaged: Some(why.to_string()),
        seq: 0,
        phase: None,
        prev: None,
        stored: [0; 32],
        hash_matches: false,
    }
}

/// The chain check over all lines (see the module docs).
fn check_chain(lines: &[LineInfo], report: &mut AuditReport) {
    // where each stated hash is (first occurrence), to tell a removed line
    // from a moved one
    let mut position: HashMap<[u8; 32], u64> = HashMap::with_capacity(lines.len());
    for (index, info) in lines.iter().enumerate() {
        if info.damaged.is_none() {
            position.entry(info.stored).or_insert(index as u64 + 1);
        }
    }
    let mut rewritten: HashSet<u64> = HashSet::new();
    let mut prev_seq = 0;
    for (index, info) in lines.iter().enumerate() {
        let number = index as u64 + 1;
        if let Some(why) = &info.damaged {
            report.add(
                ProblemKind::Damaged,
                Some(number),
                format!("line {number} is not an audit record: {why}"),
            );
            continue;
        }
        if !info.hash_matches {
            rewritten.insert(number);
            report.add(
                ProblemKind::Rewritten,
                Some(number),
                format!(
                    "line {number} (seq {}) was changed after it was written: its content does \
                     not match its hash",
                    info.seq
                ),
            );
        }
        let previous = index.checked_sub(1).map(|i| &lines[i]);
        if previous.is_some_and(|p| p.damaged.is_some()) {
            // the damaged line is reported; go on from this one
            prev_seq = info.seq;
            continue;
        }
        let expected_prev = previous.map_or([0; 32], |p| p.stored);
        if info.prev == Some(expected_prev) {
            if info.seq != prev_seq + 1 && !rewritten.contains(&number) {
                report.add(
                    ProblemKind::Rewritten,
                    Some(number),
                    format!(
                        "line {number} has seq {}, expected {} - it was changed after it was \
                         written",
                        info.seq,
                        prev_seq + 1
                    ),
                );
            }
            prev_seq = info.seq;
            continue;
        }
        let follows = info.prev.and_then(|prev| position.get(&prev).copied());
        report_broken_link(lines, index, follows, prev_seq, &mut rewritten, report);
        prev_seq = info.seq;
    }
}

/// Line `index + 1` does not follow the line before it: where the record
/// it follows is (`follows`, that record's line number, if it is in the
/// log) tells whether records were removed, inserted, replaced or
/// reordered. `prev_seq` is the seq of the line before it.
fn report_broken_link(
    lines: &[LineInfo],
    index: usize,
    follows: Option<u64>,
    prev_seq: u64,
    rewritten: &mut HashSet<u64>,
    report: &mut AuditReport,
) {
    let number = index as u64 + 1;
    let info = &lines[index];
    match follows {
        None if info.seq > prev_seq + 1 => {
            let missing = info.seq - prev_seq - 1;
            report.add(
                ProblemKind::Removed,
                Some(number),
                format!(
                    "{missing} record(s) are missing before line {number}: seq {}{} removed",
                    prev_seq + 1,
                    if missing > 1 {
                        format!("..{}", info.seq - 1)
                    } else {
                        String::new()
                    }
                ),
            );
        }
        None if number > 1 && info.seq == prev_seq + 1 => {
            if rewritten.insert(number - 1) {
                report.add(
                    ProblemKind::Rewritten,
                    Some(number - 1),
                    format!(
                        "line {} (seq {prev_seq}) was replaced: line {number} follows a \
                         record with other content",
                        number - 1
                    ),
                );
            }
        }
        None => report.add(
            ProblemKind::Rewritten,
            Some(number),
            format!(
                "line {number} (seq {}) follows no record of the log: it was changed or \
                 written by someone else",
                info.seq
            ),
        ),
        Some(before) if before < number - 1 => {
            // lines between that repeat this line's seq were inserted
            let between = &lines[before as usize..index];
            match between
                .iter()
                .position(|l| l.damaged.is_none() && l.seq == info.seq)
            {
                Some(offset) => report.add(
                    ProblemKind::Inserted,
                    Some(before + 1 + offset as u64),
                    format!(
                        "line {} was inserted: line {number} (seq {}) follows line {before}",
                        before + 1 + offset as u64,
                        info.seq
                    ),
                ),
                None => report.add(
                    ProblemKind::Reordered,
                    Some(number),
                    format!(
                        "line {number} (seq {}) follows line {before}, not line {}: lines \
                         are out of order",
                        info.seq,
                        number - 1
                    ),
                ),
            }
        }
        Some(after) => report.add(
            ProblemKind::Reordered,
            Some(number),
            format!(
                "line {number} (seq {}) follows line {after}, which comes later in the log: \
                 lines are out of order",
                info.seq
            ),
        ),
    }
}

/// Whether every line after the first `size` is an outcome (those are not
/// synced on their own, so a checkpoint does not cover them yet).
fn only_outcomes_after(size: u64, lines: &[LineInfo]) -> bool {
    lines
        .iter()
        .skip(size as usize)
        .all(|line| line.phase == Some(Phase::Outcome))
}

/// The hash line `size` states, if that line is a record.
fn head_at(lines: &[LineInfo], size: u64) -> Option<[u8; 32]> {
    let info = lines.get(usize::try_from(size).ok()?.checked_sub(1)?)?;
    info.damaged.is_none().then_some(info.stored)
}

/// Compares a checkpoint (`what` names it) with the log: the record it
/// ends with must be at line `size`. Found at another line, the chain check
/// has reported what moved it already.
fn compare_with_log(
    checkpoint: &Checkpoint,
    what: &str,
    lines: &[LineInfo],
    stored: bool,
    report: &mut AuditReport,
) {
    let records = lines.len() as u64;
    let size = checkpoint.size;
    if size == 0 {
        return;
    }
    if head_at(lines, size) == Some(checkpoint.head) {
        if stored && size < records {
            report.add(
                ProblemKind::CheckpointBehind,
                Some(size + 1),
                format!(
                    "{what} covers {size} of {records} records (the last records were not \
                     synced yet, or a crash came first)"
                ),
            );
        }
        return;
    }
    let elsewhere = lines
        .iter()
        .any(|line| line.damaged.is_none() && line.stored == checkpoint.head);
    if elsewhere {
        return;
    }
    if size > records {
        report.add(
            ProblemKind::Truncated,
            Some(records + 1),
            format!(
                "the log has {records} records, but {what} proves {size}: {} record(s) were \
                 removed (lines {}..{size} are missing at its end)",
                size - records,
                records + 1
            ),
        );
    } else {
        report.add(
            ProblemKind::CheckpointMismatch,
            Some(size),
            format!(
                "line {size} is not the record {what} ends with (head {}): the log was \
                 rewritten at or before line {size}",
                checkpoint.head_hex()
            ),
        );
    }
}

/// The keys the config of `dir` lists whose fingerprint is not in `named`,
/// in config order. None if the config cannot be read: `encryption-key
/// verify` reports that, and without a key list there is nothing to match.
fn unrecorded_keys(dir: &ConfigDir, named: &HashSet<String>) -> Vec<UnrecordedKey> {
    let Ok(index) = dir.encryption_keys().index_data() else {
        return Vec::new();
    };
    let (entries, _invalid) = index.partition();
    entries
        .into_iter()
        .filter_map(|entry| {
            let fingerprint = entry.info.fingerprint?.signature();
            (!named.contains(&fingerprint)).then(|| UnrecordedKey {
                id: entry.id.clone(),
                fingerprint,
            })
        })
        .collect()
}

/// What the key store shows about an interrupted key operation.
fn store_state(log: &AuditLog, record: &Record, touched_later: bool) -> (StoreState, String) {
    let unknown = |why: String| (StoreState::Unknown, why);
    if touched_later {
        return unknown(format!(
            "later records name {} - check by hand",
            quoted(&record.ids)
        ));
    }
    let Some(op) = record.op() else {
        return unknown(format!("unknown operation '{}'", record.op));
    };
    if op.as_str().starts_with("repair-") && op != Op::RepairPath {
        return unknown(
            "run 'proxmox-backup-manager encryption-key verify': a repair that was not made is \
             still a finding there"
                .to_string(),
        );
    }
    if op == Op::Purge {
        return purge_state(log, record);
    }
    let index = match log.dir.encryption_keys().index_data() {
        Ok(index) => index,
        Err(err) => return unknown(format!("the key store cannot be read - {err}")),
    };
    // trash restore: the id restored to, then the trash entry; a path
    // repair: the id, then the config file
    let ids = match op {
        Op::TrashRestore | Op::RepairPath => &record.ids[..record.ids.len().min(1)],
        _ => &record.ids[..],
    };
    let [id] = ids else {
        return unknown(format!("it names {} ids - check by hand", record.ids.len()));
    };
    let entry = index.get(id).ok();
    let fingerprint_ok = |entry: &pbs_api_types::CryptKey| {
        record.fingerprints.is_empty()
            || entry
                .info
                .fingerprint
                .is_some_and(|fp| record.fingerprints.contains(&fp.signature()))
    };
    let applied = |yes: bool, what: &str| {
        if yes {
            (StoreState::Applied, format!("key '{id}' {what}"))
        } else {
            (StoreState::NotApplied, format!("key '{id}' {what}"))
        }
    };
    match (op, entry) {
        (Op::Create | Op::Import | Op::TrashRestore, Some(entry)) if fingerprint_ok(entry) => {
            applied(true, "is in the store")
        }
        (Op::Create | Op::Import | Op::TrashRestore, Some(_)) => {
            unknown(format!("another key is stored as '{id}' - check by hand"))
        }
        (Op::Create | Op::Import | Op::TrashRestore, None) => applied(false, "is not in the store"),
        (Op::Archive, Some(entry)) => match entry.archived_at {
            Some(_) => applied(true, "is archived"),
            None => applied(false, "is not archived"),
        },
        (Op::Unarchive, Some(entry)) => match entry.archived_at {
            None => applied(true, "is not archived"),
            Some(_) => applied(false, "is archived"),
        },
        (Op::Archive | Op::Unarchive, None) => unknown(format!("key '{id}' is gone")),
        (Op::Delete | Op::DeletePurge | Op::DeleteForce, None) => {
            applied(true, "is not in the store")
        }
        (Op::Delete | Op::DeletePurge | Op::DeleteForce, Some(_)) => {
            applied(false, "is still in the store")
        }
        (Op::RepairPath, Some(entry)) => match log.dir.encryption_keys().check_entry_path(entry) {
            Ok(true) => applied(true, "has the key file path of this config dir"),
            _ => applied(false, "has a key file path of another config dir"),
        },
        _ => unknown(format!(
            "the key store does not show what '{}' changed - check by hand",
            record.op
        )),
    }
}

/// What the trash shows about an interrupted purge of trash entry
/// `ids[1]`: its key file is gone, or still there.
fn purge_state(log: &AuditLog, record: &Record) -> (StoreState, String) {
    let [_, entry] = &record.ids[..] else {
        return (
            StoreState::Unknown,
            format!("it names {} ids - check by hand", record.ids.len()),
        );
    };
    if !entry.contains('@') || crate::trash::check_selector(entry).is_err() {
        return (
            StoreState::Unknown,
            format!("{entry:?} is no trash entry name - check by hand"),
        );
    }
    let trash = log.dir.encryption_keys().trash();
    match trash.has_key_file(entry) {
        Ok(true) => (
            StoreState::NotApplied,
            format!("trash entry '{entry}' still holds its key file"),
        ),
        Ok(false) => (
            StoreState::Applied,
            format!("trash entry '{entry}' holds no key file"),
        ),
        Err(err) => (
            StoreState::Unknown,
            format!("the trash cannot be read - {err}"),
        ),
    }
}

fn quoted(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Either lock of the log: exclusive when repair may append.
enum HeldLock {
    Exclusive(AuditLock),
    // held for its effect only
    Shared(#[allow(dead_code)] AuditReadLock),
}

impl AuditLog<'_> {
    /// Checks the log (see the module docs).
    ///
    /// # Errors
    ///
    /// Only when the log cannot be checked at all (a kept checkpoint or key
    /// that cannot be read, a lock timeout, an unreadable signing key);
    /// problems are in the report.
    ///
    /// # Locking
    ///
    /// Takes `pending.lck` exclusive, then the log's lock (exclusive with
    /// `repair`); hold no other lock of the store.
    pub fn verify(&self, options: &VerifyOptions) -> Result<AuditReport, Error> {
        let (kept, trusted) = options.parse()?;

        let mut scan = Scan::default();
        let mut first_pass = None;
        if let Some(log) = self.open_log()? {
            let mut reader = LineReader::new(&log.file, 0)?;
            scan.read(&mut reader)?;
            first_pass = Some(log.stat);
        }

        let _pending_lock = self.lock_pending(true)?;
        let held = if options.repair {
            HeldLock::Exclusive(self.lock()?)
        } else {
            HeldLock::Shared(self.lock_shared()?)
        };
        let scan = self.read_rest(scan, first_pass)?;

        let key = self.public_key()?;
        let mut report = AuditReport {
            records: scan.lines.len() as u64,
            head: scan
                .lines
                .last()
                .filter(|l| l.damaged.is_none())
                .map(|l| hex::encode(l.stored)),
            verifier_key: key.map(|key| key.verifier_key(&AuditLog::origin(&key))),
            ..AuditReport::empty(self.log_path(), kept.len())
        };

        check_chain(&scan.lines, &mut report);
        for (line, message) in &scan.outcome_problems {
            report.add(ProblemKind::OrphanOutcome, Some(*line), message.clone());
        }
        if scan.incomplete > 0 {
            report.add(
                ProblemKind::IncompleteLine,
                Some(report.records + 1),
                format!(
                    "line {} is incomplete ({} bytes): an append a crash interrupted, which never \
                     took effect",
                    report.records + 1,
                    scan.incomplete
                ),
            );
        }
        let stored_text = self.check_stored_checkpoint(key.as_ref(), &scan, &mut report)?;
        report.checkpoint = stored_text;
        self.check_trust(key.as_ref(), (&kept, &trusted), &scan, &mut report);
        self.report_unfinished(&scan, &mut report);
        self.check_files(&mut report)?;
        report.unrecorded = unrecorded_keys(self.dir, &scan.fingerprints);

        if let HeldLock::Exclusive(lock) = &held
            && !report.is_tampered()
        {
            self.repair(lock, &mut report)?;
        }
        Ok(report)
    }

    /// Reads the log once more, under the locks: what was appended since
    /// the first pass (`scan`, of the file `first_pass` stated), or all of
    /// it if the file is new, replaced or shrunk since.
    fn read_rest(&self, mut scan: Scan, first_pass: Option<EntryStat>) -> Result<Scan, Error> {
        let log = self.open_log()?;
        match (&log, first_pass) {
            (Some(log), Some(before))
                if log.stat.same_file(&before) && log.stat.size >= scan.offset =>
            {
                let mut reader = LineReader::new(&log.file, scan.offset)?;
                scan.read(&mut reader)?;
            }
            (Some(log), _) => {
                // new, replaced or shrunk since the first pass: all again
                scan = Scan::default();
                let mut reader = LineReader::new(&log.file, 0)?;
                scan.read(&mut reader)?;
            }
            (None, _) => scan = Scan::default(),
        }
        Ok(scan)
    }

    /// The kept checkpoints against the log and `key` (the store's signing
    /// key), and `key` against the trusted keys given.
    fn check_trust(
        &self,
        key: Option<&PublicKey>,
        (kept, trusted): (&[Checkpoint], &[PublicKey]),
        scan: &Scan,
        report: &mut AuditReport,
    ) {
        for (index, checkpoint) in kept.iter().enumerate() {
            let what = format!("kept checkpoint {} (size {})", index + 1, checkpoint.size);
            self.check_kept(key, trusted, checkpoint, &what, scan, report);
        }
        if let (Some(key), false) = (key, trusted.is_empty())
            && !trusted.contains(key)
        {
            report.add(
                ProblemKind::UntrustedKey,
                None,
                format!(
                    "this store signs with key {}, which is none of the trusted keys given: the \
                     signing key was replaced",
                    key.verifier_key(&AuditLog::origin(key))
                ),
            );
        }
    }

    /// Intents without an outcome: interrupted operations, each with what
    /// the store says of it now.
    fn report_unfinished(&self, scan: &Scan, report: &mut AuditReport) {
        for (line, record, touched) in &scan.open {
            let (state, detail) = store_state(self, record, *touched);
            report.add(
                ProblemKind::IntentWithoutOutcome,
                Some(*line),
                format!(
                    "line {line}: '{}' of {} by {} (seq {}) has no outcome - interrupted; {detail}",
                    record.op,
                    quoted(&record.ids),
                    record.actor,
                    record.seq
                ),
            );
            report.unfinished.push(Unfinished {
                line: *line,
                record: record.clone(),
                state,
                detail,
            });
        }
    }

    /// Checks the stored checkpoint; returns its text.
    fn check_stored_checkpoint(
        &self,
        key: Option<&PublicKey>,
        scan: &Scan,
        report: &mut AuditReport,
    ) -> Result<Option<String>, Error> {
        let records = scan.lines.len() as u64;
        let text = self.read_checkpoint_text()?;
        let what = format!("the checkpoint {:?}", self.checkpoint_path());
        let checkpoint = match text.as_deref().map(Checkpoint::parse) {
            None if records == 0 => return Ok(None),
            None => {
                report.add(
                    ProblemKind::CheckpointMissing,
                    None,
                    format!("{what} is missing (a crash before it was written?)"),
                );
                return Ok(None);
            }
            Some(Err(err)) => {
                report.add(
                    ProblemKind::CheckpointMissing,
                    None,
                    format!("{what} cannot be read (a crash while it was written?) - {err}"),
                );
                return Ok(text);
            }
            Some(Ok(checkpoint)) => checkpoint,
        };
        let Some(key) = key else {
            report.add(
                ProblemKind::MissingKey,
                None,
                format!(
                    "the signing key is missing, so {what} cannot be checked - restore {:?} from \
                     a backup",
                    self.audit_dir.entry_path(AUDIT_SIGNING_KEY.name)
                ),
            );
            return Ok(text);
        };
        match checkpoint.check_signature(key) {
            SignatureCheck::Valid => {
                if checkpoint.store_id() != Some(key.store_id().as_str()) {
                    report.add(
                        ProblemKind::ForeignKey,
                        None,
                        format!(
                            "{what} names store '{}', but this store's key is '{}'",
                            checkpoint.origin,
                            key.store_id()
                        ),
                    );
                }
                compare_with_log(&checkpoint, &what, &scan.lines, true, report);
                // behind only by outcomes: those are never synced on their own
                if let Some(last) = report.notices.last()
                    && last.kind == ProblemKind::CheckpointBehind
                    && only_outcomes_after(checkpoint.size, &scan.lines)
                {
                    report.notices.pop();
                }
            }
            SignatureCheck::Invalid => report.add(
                ProblemKind::BadSignature,
                None,
                format!("the signature of {what} does not verify: the checkpoint was altered"),
            ),
            SignatureCheck::Absent => report.add(
                ProblemKind::ForeignKey,
                None,
                format!(
                    "{what} is signed by {}, not by this store's key (key id {}): the log and its \
                     checkpoint, or the signing key, were replaced",
                    checkpoint.signers(),
                    hex::encode(key.key_id(&checkpoint.origin))
                ),
            ),
        }
        Ok(text)
    }

    /// Checks a checkpoint kept elsewhere.
    fn check_kept(
        &self,
        key: Option<&PublicKey>,
        trusted: &[PublicKey],
        checkpoint: &Checkpoint,
        what: &str,
        scan: &Scan,
        report: &mut AuditReport,
    ) {
        let ours = key.map(|key| checkpoint.check_signature(key));
        match ours {
            Some(SignatureCheck::Valid) => {}
            Some(SignatureCheck::Invalid) => {
                report.add(
                    ProblemKind::BadSignature,
                    None,
                    format!(
                        "the signature of {what} does not verify with this store's key: the \
                         checkpoint was altered"
                    ),
                );
                return;
            }
            _ => {
                let by_trusted = trusted
                    .iter()
                    .any(|key| checkpoint.check_signature(key) == SignatureCheck::Valid);
                let now = key.map_or("no key".to_string(), |key| {
                    format!("key id {}", hex::encode(key.key_id(&checkpoint.origin)))
                });
                report.add(
                    ProblemKind::ForeignKey,
                    None,
                    if by_trusted {
                        format!(
                            "{what} is signed by a trusted key ({}), but this store now signs \
                             with {now}: the signing key was replaced",
                            checkpoint.signers()
                        )
                    } else {
                        format!(
                            "{what} is signed by {}, but this store signs with {now}: the log \
                             was replaced by one signed with another key, or the checkpoint \
                             belongs to another store",
                            checkpoint.signers()
                        )
                    },
                );
            }
        }
        compare_with_log(checkpoint, what, &scan.lines, false, report);
    }

    /// Owners and modes of the audit directory and its files.
    fn check_files(&self, report: &mut AuditReport) -> Result<(), Error> {
        let ownership = self.dir.ownership();
        let dir_stat = self.audit_dir.stat_self()?;
        let (uid, gid) = ownership.owner_of(FileClass::Config);
        check_stat(
            report,
            &self.audit_dir.path().to_owned(),
            &dir_stat,
            AUDIT_DIR_MODE,
            (uid.as_raw(), gid.as_raw()),
        );
        let files: [&ConfigFile; 5] = [
            &AUDIT_LOG,
            &AUDIT_CHECKPOINT,
            &AUDIT_SIGNING_KEY,
            &AUDIT_LOCK,
            &AUDIT_PENDING_LOCK,
        ];
        for file in files {
            let Some(stat) = self.audit_dir.stat(file.name)? else {
                continue;
            };
            let (uid, gid) = ownership.owner_of(file.class);
            check_stat(
                report,
                &self.audit_dir.entry_path(file.name),
                &stat,
                file.class.mode(),
                (uid.as_raw(), gid.as_raw()),
            );
        }
        Ok(())
    }

    /// Records outcomes of interrupted operations, cuts off an incomplete
    /// line and signs a new checkpoint if the stored one is not current.
    fn repair(&self, lock: &AuditLock, report: &mut AuditReport) -> Result<(), Error> {
        let mut changed = false;
        for unfinished in std::mem::take(&mut report.unfinished) {
            let result = match unfinished.state {
                StoreState::Applied => RESULT_INTERRUPTED_APPLIED.to_string(),
                StoreState::NotApplied => RESULT_INTERRUPTED_NOT_APPLIED.to_string(),
                StoreState::Unknown => {
                    format!("{RESULT_INTERRUPTED_UNKNOWN} ({})", unfinished.detail)
                }
            };
            let appended = self
                .append_locked(unfinished.record.outcome_draft(result), false, lock)
                .layer_err(|| "unable to record the outcome of an interrupted operation")?;
            report.repaired.extend(appended.warnings);
            report.repaired.push(format!(
                "line {}: recorded the outcome of interrupted '{}' (intent {}): {}",
                appended.record.seq,
                unfinished.record.op,
                unfinished.record.seq,
                appended.record.result.as_deref().unwrap_or_default()
            ));
            changed = true;
        }
        report
            .problems
            .retain(|p| p.kind != ProblemKind::IntentWithoutOutcome);
        let stale = report.notices.iter().any(|n| {
            matches!(
                n.kind,
                ProblemKind::CheckpointBehind
                    | ProblemKind::CheckpointMissing
                    | ProblemKind::IncompleteLine
            )
        });
        if changed || stale {
            if let Some(checkpoint) = self.sign_whole_log(lock)? {
                report.repaired.push(format!(
                    "signed a new checkpoint of {} records",
                    checkpoint.size
                ));
                report.checkpoint = Some(checkpoint.to_note());
            }
            report.notices.clear();
        }
        Ok(())
    }
}

fn check_stat(
    report: &mut AuditReport,
    path: &PathBuf,
    stat: &EntryStat,
    mode: u32,
    (uid, gid): (u32, u32),
) {
    if stat.kind == EntryKind::Symlink {
        report.add(
            ProblemKind::WrongMode,
            None,
            format!("{path:?} is a symbolic link"),
        );
        return;
    }
    if stat.mode != mode {
        report.add(
            ProblemKind::WrongMode,
            None,
            format!("{path:?} has mode {:04o}, expected {mode:04o}", stat.mode),
        );
    }
    if stat.uid != uid || stat.gid != gid {
        report.add(
            ProblemKind::WrongOwner,
            None,
            format!(
                "{path:?} is owned by {}:{}, expected {}:{}",
                user_name_of(stat.uid),
                group_name_of(stat.gid),
                user_name_of(uid),
                group_name_of(gid)
            ),
        );
    }
}
