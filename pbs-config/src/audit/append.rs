//! Appending records: the intent, synced before the change, and the
//! outcome after it ([`Pending`]); each under the log's lock.
//!
//! An append, under `log.lck`:
//! 1. opens the log through the audit directory's handle (created
//!    root:backup 0640 if missing) and checks who owns it; an outcome
//!    writes through its intent's descriptor instead if the name still
//!    names that file in the state the intent left (`statat`: the same
//!    device, inode, size and times), the owner and mode checked on the
//!    `statat` ([`super::cache`]). The descriptor is closed after the
//!    outcome: no process holds the log open between its operations (a
//!    file open for writing would keep its file system from being
//!    remounted read-only);
//! 2. reads the last line: an incomplete one (a crash inside an append
//!    that never returned) is cut off; a damaged one, or a log shorter than
//!    its checkpoint, stops the append (fail closed: `audit verify` says
//!    what is wrong). If the log (and the checkpoint) are still in the
//!    state this process's last append left them in (same device, inode,
//!    size and times), that append's end is used instead of reading it
//!    again ([`super::cache`]);
//! 3. makes sure room is reserved for this line and the next one
//!    (`fallocate`, keeping the size; 64 KiB at a time, so most appends
//!    reserve nothing of their own), so a full disk fails the intent
//!    before anything is written rather than the outcome after the change;
//! 4. writes the line with one `write` (the file is opened `O_APPEND`);
//!    on any error it truncates the log back, so nothing half-written
//!    stays;
//! 5. an intent: `fdatasync`, then a new signed checkpoint (written in
//!    place, without fsync) and its syslog copy.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Error, bail, format_err};
use rustix::fs::FallocateFlags;
use rustix::io::Errno;

use proxmox_lang::error::ErrorLayer;

use crate::dir_handle::{OpenedFile, file_state};
use crate::failpoint;
use crate::files::{AUDIT_CHECKPOINT, AUDIT_LOG};

use super::cache::{CachedTail, FileState};
use super::checkpoint::{Checkpoint, SigningKey};
use super::record::{self, Event, MAX_LINE_LEN, Phase, Record, ZERO_HASH, parse_line, result_text};
use super::{AuditLock, AuditLog, PendingLock, SYNC_OUTCOMES, syslog};

/// How much of the end of the log is read to find the last line: a line
/// and an incomplete one after it.
const TAIL_WINDOW: u64 = 2 * MAX_LINE_LEN as u64 + 2;

/// How much room an append reserves after the end of the log when less
/// than a line and the next one is reserved: for many appends, so most
/// need no `fallocate` of their own.
const RESERVE_AHEAD: u64 = 64 * 1024;

/// The end of the log as an append finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Bytes of complete lines.
    pub end: u64,
    /// `seq` of the last line (0: no line).
    pub seq: u64,
    /// `hash` of the last line.
    pub hash: [u8; 32],
    /// Bytes after the last newline (an incomplete line).
    pub torn: u64,
}

/// Reads the last line of a log of `size` bytes and checks it: it must be
/// a record whose hash matches.
pub(crate) fn read_tail(file: &File, size: u64, path: &Path) -> Result<Tail, Error> {
    let start = size.saturating_sub(TAIL_WINDOW);
    let mut buf = vec![0u8; (size - start) as usize];
    file.read_exact_at(&mut buf, start)
        .map_err(|err| format_err!("unable to read {path:?} - {err}"))?;
    let Some(last_newline) = buf.iter().rposition(|&b| b == b'\n') else {
        if start > 0 {
            bail!(
                "the end of the audit log {path:?} holds no line break in its last {} bytes - \
                 it is damaged (run 'proxmox-backup-manager audit verify')",
                buf.len()
            );
        }
        // nothing complete: at most an incomplete first line
        return Ok(Tail {
            end: 0,
            seq: 0,
            hash: [0; 32],
            torn: size,
        });
    };
    let end = start + last_newline as u64 + 1;
    let line_start = match buf[..last_newline].iter().rposition(|&b| b == b'\n') {
        Some(pos) => pos + 1,
        None if start == 0 => 0,
        None => bail!(
            "the last line of the audit log {path:?} is longer than {MAX_LINE_LEN} bytes - it is \
             damaged (run 'proxmox-backup-manager audit verify')"
        ),
    };
    let damaged = |why: &str| {
        format_err!(
            "the last line of the audit log {path:?} is damaged ({why}) - refusing to append to \
             it; run 'proxmox-backup-manager audit verify'"
        )
    };
    let line =
        std::str::from_utf8(&buf[line_start..last_newline]).map_err(|_| damaged("not UTF-8"))?;
    let parsed = parse_line(line).map_err(|err| damaged(&err.to_string()))?;
    if !parsed.hash_matches() {
        return Err(damaged("its hash does not match its content"));
    }
    Ok(Tail {
        end,
        seq: parsed.record.seq,
        hash: parsed.stored,
        torn: size - end,
    })
}

/// Reserves `len` bytes after `offset` without changing the size. A file
/// system without `fallocate` reserves nothing (the append may then fail
/// on a full disk half-way, and is undone).
fn reserve(file: &File, offset: u64, len: u64, path: &Path) -> Result<(), Error> {
    match rustix::fs::fallocate(file, FallocateFlags::KEEP_SIZE, offset, len) {
        Ok(()) | Err(Errno::OPNOTSUPP) | Err(Errno::NOSYS) => Ok(()),
        Err(err) => bail!(
            "unable to append to {path:?} - {}",
            std::io::Error::from(err)
        ),
    }
}

/// Cuts the log back to `end` bytes and syncs it.
fn truncate_to(log: &OpenedFile, end: u64) -> Result<(), Error> {
    log.file
        .set_len(end)
        .and_then(|()| log.file.sync_data())
        .map_err(|err| format_err!("unable to truncate {:?} - {err}", log.path))
}

/// A record written to the log.
#[derive(Clone, Debug)]
pub struct Appended {
    /// The record as written (`seq`, `time`, `prev` and `hash` set).
    pub record: Record,
    /// The checkpoint signed after it (intents only: outcomes are not
    /// synced on their own, and a checkpoint covers only synced records).
    pub checkpoint: Option<Checkpoint>,
    /// What went wrong without failing the append (a checkpoint that could
    /// not be written, an incomplete line cut off): for the operation to
    /// pass on.
    pub warnings: Vec<String>,
}

impl AuditLog<'_> {
    /// Opens the log for appending and checks who owns it.
    fn open_log_for_append(&self) -> Result<OpenedFile, Error> {
        let ownership = self.dir.ownership();
        let (log, created) = self
            .audit_dir
            .open_append(AUDIT_LOG.name, ownership.options_for(AUDIT_LOG.class))?;
        if !created {
            ownership.check_trusted(AUDIT_LOG.class, &log.stat, &log.path)?;
        }
        Ok(log)
    }

    /// The number of records the stored checkpoint proves; 0 if there is
    /// none or it cannot be read (a checkpoint that cannot be read proves
    /// nothing: verify reports it). Kept between operations while the
    /// checkpoint file is in the state it was read or written in
    /// ([`super::cache`]).
    fn proven_size(&self) -> u64 {
        let class = AUDIT_CHECKPOINT.class;
        if let Ok(Some(stat)) = self.audit_dir.stat(AUDIT_CHECKPOINT.name)
            && let Some(size) = self.dir.audit_cache.checkpoint_size(&stat.state())
        {
            let trusted = self
                .dir
                .ownership()
                .check_trusted(class, &stat, &self.checkpoint_path());
            return if trusted.is_ok() { size } else { 0 };
        }
        let Ok(Some((text, stat))) = self.read_checkpoint() else {
            return 0;
        };
        let Ok(checkpoint) = Checkpoint::parse(&text) else {
            return 0;
        };
        self.dir
            .audit_cache
            .set_checkpoint(Some((stat.state(), checkpoint.size)));
        checkpoint.size
    }

    /// The log opened for appending, its checked last line (an incomplete
    /// line cut off, then noted in `warnings`) and how far room is
    /// reserved after it (0: unknown). The last line is this process's
    /// own last append if the log is still in the state that append left
    /// ([`super::cache`]), else read and checked.
    ///
    /// # Locking
    ///
    /// The caller holds the log's lock.
    fn prepare_append(&self, warnings: &mut Vec<String>) -> Result<(OpenedFile, Tail, u64), Error> {
        // a log shorter than its checkpoint lost records: never extend it
        let proven = self.proven_size();
        let named = self.audit_dir.stat(AUDIT_LOG.name)?;
        if proven > 0 && named.is_none() {
            bail!(
                "the audit log {:?} is missing, but its checkpoint says {proven} records - \
                 refusing to start a new one (restore it from a backup, then run \
                 'proxmox-backup-manager audit verify')",
                self.log_path()
            );
        }
        // whatever happens now, what is cached is used once: an append
        // that fails may leave the log in a state that looks the same
        let kept = self.dir.audit_cache.take_log();
        let previous = self.dir.audit_cache.take_tail();
        let left_in = |state: FileState| previous.filter(|cached| cached.state == state);
        let at_name = named.as_ref().and_then(|stat| left_in(stat.state()));
        let (log, cached) = match (kept, at_name, named) {
            // the name still names the file this process's last append
            // wrote through (the same device and inode, which no other
            // file can have while that descriptor is open), in the state
            // that append left: written through the same descriptor, its
            // owner and mode checked on the `statat` of the name
            (Some(file), Some(cached), Some(stat)) => {
                let path = self.log_path();
                self.dir
                    .ownership()
                    .check_trusted(AUDIT_LOG.class, &stat, &path)?;
                (OpenedFile { file, stat, path }, Some(cached))
            }
            _ => {
                let log = self.open_log_for_append()?;
                let cached = left_in(log.stat.state());
                (log, cached)
            }
        };
        let (mut tail, reserved_to) = match cached {
            Some(cached) => (cached.tail, cached.reserved_to),
            None => (read_tail(&log.file, log.stat.size, &log.path)?, 0),
        };
        if tail.torn > 0 {
            truncate_to(&log, tail.end)?;
            warnings.push(format!(
                "cut off an incomplete last line ({} bytes) of {:?}: an append interrupted by a \
                 crash, which never took effect",
                tail.torn, log.path
            ));
            tail.torn = 0;
        }
        if proven > tail.seq {
            bail!(
                "the audit log {:?} has {} records, but its checkpoint says {proven} - records \
                 were removed; refusing to append (run 'proxmox-backup-manager audit verify')",
                log.path,
                tail.seq,
            );
        }
        Ok((log, tail, reserved_to))
    }

    /// Keeps the end of the log after an append of `line` after `before`
    /// (the record `draft`) for the next append of this process, and with
    /// `keep_descriptor` (an intent, whose outcome comes next) the log's
    /// descriptor; else it is closed here.
    fn keep_tail(
        &self,
        log: OpenedFile,
        before: &Tail,
        draft: &Record,
        line: &str,
        reserved_to: u64,
        keep_descriptor: bool,
    ) {
        let Some(state) = file_state(&log.file) else {
            return;
        };
        let Some(hash) = record::parse_hash(&draft.hash) else {
            return;
        };
        self.dir.audit_cache.set_tail(Some(CachedTail {
            state,
            tail: Tail {
                end: before.end + line.len() as u64,
                seq: draft.seq,
                hash,
                torn: 0,
            },
            reserved_to,
        }));
        if keep_descriptor {
            self.dir.audit_cache.keep_log(log.file);
        }
    }

    /// Appends `draft` (`seq`, `time` and `prev` are set here); with
    /// `sync`, syncs it and writes a new checkpoint. On error nothing of it
    /// is left in the log.
    ///
    /// # Locking
    ///
    /// The caller holds the log's lock.
    pub(crate) fn append_locked(
        &self,
        mut draft: Record,
        sync: bool,
        _held: &AuditLock,
    ) -> Result<Appended, Error> {
        let mut warnings = Vec::new();
        let (log, tail, reserved_to) = self.prepare_append(&mut warnings)?;
        // a new log gets a new key; an existing one is never signed by a new
        // key. Only a synced append signs: an outcome needs no key, and
        // failing it for a key gone since its intent would report a change
        // that was made as failed
        let key = if sync || tail.seq == 0 {
            let key = self.signing_key(tail.seq == 0)?.ok_or_else(|| {
                format_err!(
                    "the audit signing key {:?} is missing, but the log has {} records - restore \
                     it from a backup",
                    self.audit_dir
                        .entry_path(crate::files::AUDIT_SIGNING_KEY.name),
                    tail.seq
                )
            })?;
            Some(key)
        } else {
            None
        };

        draft.seq = tail.seq + 1;
        draft.time = proxmox_time::epoch_i64();
        draft.prev = if tail.seq == 0 {
            ZERO_HASH.to_string()
        } else {
            hex::encode(tail.hash)
        };
        let mut line = draft.seal()?;
        line.push('\n');

        // room for this line and the outcome after it, reserved for many
        // lines at once
        let needed = tail.end + (line.len() + MAX_LINE_LEN) as u64;
        let reserved_to = if reserved_to >= needed {
            reserved_to
        } else {
            let least = needed - tail.end;
            // a disk too full for the room ahead may still hold this line
            // and the next: only then does the append fail
            let len = if least < RESERVE_AHEAD
                && reserve(&log.file, tail.end, RESERVE_AHEAD, &log.path).is_ok()
            {
                RESERVE_AHEAD
            } else {
                reserve(&log.file, tail.end, least, &log.path)?;
                least
            };
            tail.end + len
        };
        if let Err(err) = (&log.file).write_all(line.as_bytes()) {
            let err = format_err!("unable to append to {:?} - {err}", log.path);
            return Err(undo(&log, tail.end, err));
        }
        failpoint::hit("audit:line-written");
        if !sync {
            self.keep_tail(log, &tail, &draft, &line, reserved_to, false);
            return Ok(Appended {
                record: draft,
                checkpoint: None,
                warnings,
            });
        }
        if let Err(err) = log.file.sync_data() {
            let err = format_err!("unable to sync {:?} - {err}", log.path);
            return Err(undo(&log, tail.end, err));
        }
        failpoint::hit("audit:synced");
        self.keep_tail(log, &tail, &draft, &line, reserved_to, true);
        let head = record::parse_hash(&draft.hash).expect("a hash we just wrote");
        let key = key.expect("a synced append reads the signing key");
        let checkpoint = match self.write_checkpoint(&key, draft.seq, &head) {
            Ok(checkpoint) => Some(checkpoint),
            Err(err) => {
                warnings.push(format!(
                    "the audit log is written, but its checkpoint is not ('audit verify \
                     --repair' signs a new one): {err}"
                ));
                None
            }
        };
        Ok(Appended {
            record: draft,
            checkpoint,
            warnings,
        })
    }

    /// Appends `draft` under the log's lock (see [`AuditLog::append_locked`]).
    pub(crate) fn append(&self, draft: Record, sync: bool) -> Result<Appended, Error> {
        let lock = self.lock()?;
        self.append_locked(draft, sync, &lock)
    }

    /// Signs a checkpoint of `size` records ending in `head`, stores it
    /// (in place, no fsync: see the module docs of [`crate::audit`]) and
    /// sends it to syslog.
    fn write_checkpoint(
        &self,
        key: &SigningKey,
        size: u64,
        head: &[u8; 32],
    ) -> Result<Checkpoint, Error> {
        let origin = AuditLog::origin(&key.public_key());
        let checkpoint = Checkpoint::sign(&origin, size, head, key)?;
        let ownership = self.dir.ownership();
        let (file, created) = self.audit_dir.open_read_write(
            AUDIT_CHECKPOINT.name,
            ownership.options_for(AUDIT_CHECKPOINT.class),
        )?;
        if !created {
            ownership.check_trusted(AUDIT_CHECKPOINT.class, &file.stat, &file.path)?;
        }
        // in place: a rename's new inode would ride on the next intent's
        // sync and double its cost (docs/audit.md). A note (under 400
        // bytes, see `host_name`) fits one 512-byte sector, which a disk
        // writes whole: after a power loss it is the old or the new one (or
        // nothing, if the file was just created), never a mix of both whose
        // signature would look forged
        let note = checkpoint.to_note();
        let len = note.len() as u64;
        self.dir.audit_cache.set_checkpoint(None);
        file.file
            .write_all_at(note.as_bytes(), 0)
            .and_then(|()| match file.stat.size > len {
                true => file.file.set_len(len),
                false => Ok(()),
            })
            .map_err(|err| format_err!("unable to write {:?} - {err}", file.path))?;
        if let Some(state) = file_state(&file.file) {
            self.dir.audit_cache.set_checkpoint(Some((state, size)));
        }
        failpoint::hit("audit:checkpoint-written");
        if let (Some(socket), Some(line)) = (&self.syslog, checkpoint.to_line()) {
            // a copy only: a host without syslog loses nothing
            let _ = syslog::send(socket, &line);
        }
        Ok(checkpoint)
    }

    /// Sends what went wrong without failing an append to syslog, where
    /// the checkpoints go (`audit verify` reports what it left).
    fn warn(&self, warnings: &[String]) {
        if let Some(socket) = &self.syslog {
            for warning in warnings {
                let _ = syslog::send(socket, &format!("warning: {warning}"));
            }
        }
    }

    /// Syncs the whole log and signs, stores and returns a checkpoint of
    /// it; `None` for an empty log.
    pub(crate) fn sign_whole_log(&self, _held: &AuditLock) -> Result<Option<Checkpoint>, Error> {
        let mut warnings = Vec::new();
        let (log, tail, _) = self.prepare_append(&mut warnings)?;
        if tail.seq == 0 {
            return Ok(None);
        }
        let key = self.signing_key(false)?.ok_or_else(|| {
            format_err!(
                "the audit signing key {:?} is missing - restore it from a backup",
                self.audit_dir
                    .entry_path(crate::files::AUDIT_SIGNING_KEY.name)
            )
        })?;
        log.file
            .sync_data()
            .map_err(|err| format_err!("unable to sync {:?} - {err}", log.path))?;
        self.write_checkpoint(&key, tail.seq, &tail.hash).map(Some)
    }
}

impl<'a> AuditLog<'a> {
    /// Records the intent of `event`, synced, and returns the operation
    /// pending its outcome. Call it after taking every lock the operation
    /// needs and before changing anything.
    ///
    /// # Errors
    ///
    /// The intent could not be recorded: the operation must fail without
    /// changing anything (the error says so).
    ///
    /// # Locking
    ///
    /// Takes `pending.lck` (shared, held by the returned [`Pending`]), then
    /// the log's lock for the append; after every other lock.
    pub fn intent(&self, event: &Event) -> Result<Pending<'a>, Error> {
        let mut pending = self.intents(std::slice::from_ref(event))?;
        pending
            .pop()
            .ok_or_else(|| format_err!("internal error - no intent recorded for '{}'", event.op))
    }

    /// Records the intents of `events`, one change made together (the
    /// keys of one export, the jobs of one `sync.cfg` write, the stores of
    /// one group commit), in order, synced together: one sync after the
    /// last, which signs the checkpoint (a crash before it keeps some of
    /// them or none, and nothing of the change is made yet). If one cannot
    /// be recorded, those recorded get their outcome (not made) and the
    /// error is returned: the operation must then change nothing.
    ///
    /// # Locking
    ///
    /// Takes `pending.lck` shared once, for all of them (the returned
    /// [`Pending`]s share it; it is released with the last one). Taking it
    /// again while holding it would deadlock: waiters queue in arrival
    /// order, so a second shared request waits behind an `audit verify`
    /// queued for it exclusive, which waits for the first.
    pub fn intents(&self, events: &[Event]) -> Result<Vec<Pending<'a>>, Error> {
        let Some(first) = events.first() else {
            return Ok(Vec::new());
        };
        let what = |event: &Event| {
            format!(
                "unable to record '{}' in the audit log - nothing was changed",
                event.op
            )
        };
        let pending_lock = Arc::new(self.lock_pending(false).layer_err(|| what(first))?);
        let mut pending: Vec<Pending<'a>> = Vec::with_capacity(events.len());
        let last = events.len() - 1;
        for (index, event) in events.iter().enumerate() {
            let appended = self
                .append(
                    Record::draft(event, Phase::Intent, None, None),
                    index == last,
                )
                .layer_err(|| what(event));
            let appended = match appended {
                Ok(appended) => appended,
                Err(err) => {
                    for intent in pending {
                        let _ = intent.done(Err::<(), _>(format_err!(
                            "not made - the intent of a change made with it could not be \
                             recorded: {err}"
                        )));
                    }
                    return Err(err);
                }
            };
            self.warn(&appended.warnings);
            pending.push(Pending {
                log: Some(self.clone()),
                intent: appended.record,
                checkpoint: appended.checkpoint,
                warnings: appended.warnings,
                _pending_lock: Some(Arc::clone(&pending_lock)),
            });
        }
        Ok(pending)
    }
}

/// Truncates the log back to `end` after a failed append; returns `err`,
/// extended if that fails too.
fn undo(log: &OpenedFile, end: u64, err: Error) -> Error {
    match truncate_to(log, end) {
        Ok(()) => err,
        Err(undo_err) => format_err!(
            "{err} - and removing the partial record failed too: {undo_err} (run \
             'proxmox-backup-manager audit verify')"
        ),
    }
}

/// An operation between its intent and its outcome. Finish it with
/// [`Pending::done`] (or [`Pending::finish`]); dropped unfinished, its
/// intent stays open and `audit verify` reports it with what the store
/// shows, as after a crash.
#[must_use = "an intent without outcome is reported by 'audit verify' as an interrupted operation"]
pub struct Pending<'a> {
    /// `None`: a config dir that records nothing (the benchmark of the
    /// audit's cost, see `ConfigDir::unaudited`).
    log: Option<AuditLog<'a>>,
    intent: Record,
    checkpoint: Option<Checkpoint>,
    warnings: Vec<String>,
    /// Shared by the intents recorded together ([`AuditLog::intents`]).
    _pending_lock: Option<Arc<PendingLock>>,
}

impl std::fmt::Debug for Pending<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("intent", &self.intent)
            .finish()
    }
}

impl Pending<'_> {
    /// An operation of a config dir that records nothing: its intent is a
    /// draft never written, its outcome is not written either.
    pub(crate) fn unrecorded(event: &Event) -> Self {
        Self {
            log: None,
            intent: Record::draft(event, Phase::Intent, None, None),
            checkpoint: None,
            warnings: Vec::new(),
            _pending_lock: None,
        }
    }

    /// The `seq` of the intent.
    pub fn seq(&self) -> u64 {
        self.intent.seq
    }

    /// The intent as written.
    pub fn intent(&self) -> &Record {
        &self.intent
    }

    /// The checkpoint signed after the intent (`None` if it could not be
    /// written: see [`Pending::warnings`]).
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        self.checkpoint.as_ref()
    }

    /// What went wrong without failing the intent.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Records the outcome: `ok`, or the error's text.
    pub fn finish<T>(self, result: &Result<T, Error>) -> Result<Appended, Error> {
        let draft = self.intent.outcome_draft(result_text(result));
        let Some(log) = &self.log else {
            return Ok(Appended {
                record: draft,
                checkpoint: None,
                warnings: Vec::new(),
            });
        };
        let appended = log.append(draft, SYNC_OUTCOMES).layer_err(|| {
            format!(
                "unable to record the outcome of '{}' (intent {}) in the audit log",
                self.intent.op, self.intent.seq
            )
        })?;
        log.warn(&appended.warnings);
        Ok(appended)
    }

    /// Records the outcome and returns the operation's result. If the
    /// operation succeeded but its outcome cannot be recorded, that is the
    /// error (the change was made; the intent is in the log, and `audit
    /// verify` reports what the store shows).
    pub fn done<T>(self, result: Result<T, Error>) -> Result<T, Error> {
        match (self.finish(&result), result) {
            (_, Err(err)) => Err(err),
            (Ok(_), Ok(value)) => Ok(value),
            (Err(err), Ok(_)) => Err(format_err!(
                "the change was made, but its outcome is missing from the audit log - run \
                 'proxmox-backup-manager audit verify' - {err}"
            )),
        }
    }
}
