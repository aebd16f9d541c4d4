//! The audit log: who did what to which key, hash-chained and signed
//! (DESIGN.md section 7, issue 16).
//!
//! Files, in `encryption-keys/.audit/` (root:backup 0750, see
//! [`crate::files::AUDIT_FILES`]):
//! - `log`: one JSON record per line ([`record`] has the format), each
//!   chained to the line before by a domain-separated SHA-256;
//! - `checkpoint`: the latest signed checkpoint, a C2SP signed note
//!   ([`checkpoint`]); also sent to syslog on every write;
//! - `signing.key`: this store's Ed25519 key (root:root 0600), generated on
//!   the first append;
//! - `log.lck` (taken for each append, the innermost lock of the store) and
//!   `pending.lck` (shared by audited operations from intent to outcome,
//!   exclusive for `audit verify`, so verify never mistakes an operation in
//!   progress for an interrupted one).
//!
//! # How an operation records itself
//!
//! Fail closed: an operation that changes the store appends an `intent`
//! record, synced with `fdatasync`, after it took all its locks and checked
//! its input and before it changes anything; if that append fails, the
//! operation fails and changes nothing. After the change (or its failure)
//! it appends the `outcome`, which names the intent's `seq`:
//!
//! ```text
//! let key_dir = self.ensure_key_dir(&base)?;           // opened once per operation
//! let key_lock = self.lock_key_file(&key_dir, id)?;    // every other lock first
//! refuse_existing_key_file(&key_dir, &name)?;          // refusals record nothing
//! let event = self.dir.audit_event(Op::Create).id(id).fingerprint(fingerprint);
//! let pending = self.dir.audit_intent(Some(&key_dir), &event)?; // nothing changed yet
//! let result = self.write_key_and_config(/* ... */);   // the change
//! pending.done(result)                                  // the outcome, then the result
//! ```
//!
//! The event names the config dir's caller ([`crate::ConfigDir::caller`]):
//! the CLI and the daemon make a view of the dir acting for who asked
//! ([`crate::ConfigDir::with_caller`]); a dir without one records
//! [`Caller::local`]. A refusal (bad input, a taken id, a key in use)
//! comes before the intent and leaves no record; an operation that fails
//! after its intent records the error as its outcome.
//!
//! Dropping a [`Pending`] without [`Pending::done`] or [`Pending::finish`]
//! leaves its intent open: `audit verify` then reports it with what the
//! store shows, as after a crash.
//!
//! # Crash order
//!
//! - the intent is synced before the change: after a crash, every change
//!   has its intent in the log;
//! - the outcome is written but not synced (the next intent's
//!   `fdatasync` syncs it): a crash may lose it, and `verify` reports the
//!   intent without outcome with what the store shows; `verify --repair`
//!   records an outcome that says so;
//! - the checkpoint is written after the records it covers are synced, in
//!   place and without fsync (a rename's new inode would ride on the next
//!   intent's sync and double its cost): after a crash it may be torn or
//!   behind the log, never ahead of it; `verify` reports that and
//!   `--repair` signs a new one. Readers take the log's lock shared. An
//!   incomplete last line (a crash inside an append that never returned)
//!   is cut off by the next append.
//!
//! # Locking
//!
//! Appends take `log.lck`, always last and never while waiting for another
//! lock, so the order of the log is the order of the changes made under
//! the store's locks. Operations take `pending.lck` shared only (they never
//! wait for each other on it), after every lock of the store but the token
//! and password files' own (see the lock order in [`crate`]); `audit
//! verify` takes it exclusive, then `log.lck`, and no other lock.
//!
//! No thread takes a lock it holds: waiters queue in arrival order
//! ([`crate::lock`]), so a second shared `pending.lck` would wait behind an
//! `audit verify` queued exclusive, which waits for the first. The intents
//! of one change (an export's records, a `sync.cfg` write's jobs) are
//! recorded together and share one hold ([`AuditLog::intents`]).

mod append;
mod cache;
pub mod checkpoint;
mod list;
pub mod record;
mod syslog;
mod verify;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Error, bail, format_err};
use nix::sys::stat::Mode;
use zeroize::Zeroizing;

use proxmox_lang::error::ErrorLayer;
use proxmox_sys::fs::CreateOptions;

use crate::dir_handle::{DirHandle, EntryKind, EntryStat, read_all};
use crate::files::{
    AUDIT_CHECKPOINT, AUDIT_DIR_MODE, AUDIT_DIR_NAME, AUDIT_LOCK, AUDIT_LOG, AUDIT_PENDING_LOCK,
    AUDIT_SIGNING_KEY,
};
use crate::lock::BackupLockGuard;
use crate::{ConfigDir, Ownership};

pub use append::{Appended, Pending};
pub(crate) use cache::AuditCache;
pub use checkpoint::{Checkpoint, PublicKey, SignatureCheck};
pub use list::Filter;
pub use record::{Caller, Event, Op, Origin, Phase, Record, unix_user_of_this_process};
pub use verify::{
    AuditProblem, AuditReport, ProblemKind, StoreState, Unfinished, UnrecordedKey, VerifyOptions,
};

/// Whether an outcome is synced on its own. Not: the next intent's sync
/// covers it, and a lost outcome is reported and reconciled by verify. A
/// synced outcome made an audited store 1.35x an unaudited one instead of
/// 1.19x (docs/audit.md has the measurements).
pub const SYNC_OUTCOMES: bool = false;

/// The held exclusive lock of the audit log (`log.lck`).
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct AuditLock {
    _guard: BackupLockGuard,
}

/// The held shared lock of the audit log: no append is half done.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct AuditReadLock {
    _guard: BackupLockGuard,
}

/// The held lock of `pending.lck`: shared by an operation between its
/// intent and its outcome, exclusive while `audit verify` looks for
/// interrupted operations.
#[must_use = "the lock is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct PendingLock {
    _guard: BackupLockGuard,
}

/// The audit log of one store: get it with [`ConfigDir::audit_log`] (for
/// writers, from the key directory an operation opened) or
/// [`AuditLog::open_existing`] (for readers).
#[derive(Clone)]
pub struct AuditLog<'a> {
    dir: &'a ConfigDir,
    audit_dir: Arc<DirHandle>,
    syslog: Option<PathBuf>,
}

impl std::fmt::Debug for AuditLog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.audit_dir.path())
            .field("syslog", &self.syslog)
            .finish()
    }
}

impl ConfigDir {
    /// The audit log in the key directory `key_dir` (checked by the
    /// operation that opened it), creating `.audit/` if it is missing.
    pub fn audit_log(&self, key_dir: &DirHandle) -> Result<AuditLog<'_>, Error> {
        AuditLog::open(self, key_dir)
    }

    /// An event of `op` done for this config dir's caller
    /// ([`ConfigDir::caller`]).
    pub fn audit_event(&self, op: Op) -> Event {
        Event::new(&self.caller(), op)
    }

    /// Records the intent of `event` in the audit log of the key directory
    /// `key_dir` (see [`AuditLog::intent`]); `None` for `key_dir` opens
    /// (and creates) the config dir and key directory first, for operations
    /// that did not open it. Fails closed: the error says that nothing was
    /// changed, and the operation must change nothing.
    ///
    /// # Locking
    ///
    /// After every other lock of the operation (see [`AuditLog::intent`]).
    pub fn audit_intent(
        &self,
        key_dir: Option<&DirHandle>,
        event: &Event,
    ) -> Result<Pending<'_>, Error> {
        if !self.audited {
            return Ok(Pending::unrecorded(event));
        }
        let log = match key_dir {
            Some(key_dir) => AuditLog::open(self, key_dir),
            None => AuditLog::open_store(self),
        };
        log.layer_err(|| {
            format!(
                "unable to record '{}' in the audit log - nothing was changed",
                event.op
            )
        })?
        .intent(event)
    }

    /// Records the intents of `events`, changes made together, as
    /// [`ConfigDir::audit_intent`] records one (see [`AuditLog::intents`]:
    /// they share one hold of `pending.lck`; never hold two [`Pending`]s of
    /// separate calls at once).
    pub fn audit_intents(
        &self,
        key_dir: Option<&DirHandle>,
        events: &[Event],
    ) -> Result<Vec<Pending<'_>>, Error> {
        let Some(first) = events.first() else {
            return Ok(Vec::new());
        };
        if !self.audited {
            return Ok(events.iter().map(Pending::unrecorded).collect());
        }
        let log = match key_dir {
            Some(key_dir) => AuditLog::open(self, key_dir),
            None => AuditLog::open_store(self),
        };
        log.layer_err(|| {
            format!(
                "unable to record '{}' in the audit log - nothing was changed",
                first.op
            )
        })?
        .intents(events)
    }
}

/// Mode and owner of the audit directory: the key directory's owner and
/// group, 0750.
pub(crate) fn audit_dir_options(ownership: &Ownership) -> CreateOptions {
    CreateOptions::new()
        .perm(Mode::from_bits_truncate(AUDIT_DIR_MODE))
        .owner(ownership.file_uid)
        .group(ownership.file_gid)
}

impl<'a> AuditLog<'a> {
    /// See [`ConfigDir::audit_log`].
    pub fn open(dir: &'a ConfigDir, key_dir: &DirHandle) -> Result<Self, Error> {
        let ownership = dir.ownership();
        let policy = ownership.key_dir_policy();
        // opened first, made only if missing: one `mkdirat` less for every
        // operation of a store that has its log (the same checks either way)
        let audit_dir = match key_dir.open_dir(AUDIT_DIR_NAME, policy) {
            Ok(Some(audit_dir)) => Ok(audit_dir),
            Ok(None) => key_dir.ensure_dir(AUDIT_DIR_NAME, audit_dir_options(ownership), policy),
            Err(err) => Err(err),
        }
        .layer_err(|| "unable to open the audit log")?;
        Ok(Self::with_dir(dir, audit_dir))
    }

    /// For operations that did not open the key directory (user, token and
    /// ACL changes): opens the config dir and the key directory, creating
    /// what is missing, then the audit log.
    pub fn open_store(dir: &'a ConfigDir) -> Result<Self, Error> {
        let base = dir.open_base_or_create()?;
        let key_dir = dir.encryption_keys().ensure_key_dir(&base)?;
        Self::open(dir, &key_dir)
    }

    /// For readers: the audit log, `None` if the store has none yet.
    /// Creates nothing.
    pub fn open_existing(dir: &'a ConfigDir) -> Result<Option<Self>, Error> {
        let Some(base) = dir.open_base()? else {
            return Ok(None);
        };
        let Some(key_dir) = dir.encryption_keys().open_key_dir(&base)? else {
            return Ok(None);
        };
        let policy = dir.ownership().key_dir_policy();
        Ok(key_dir
            .open_dir(AUDIT_DIR_NAME, policy)
            .layer_err(|| "unable to open the audit log")?
            .map(|audit_dir| Self::with_dir(dir, audit_dir)))
    }

    fn with_dir(dir: &'a ConfigDir, audit_dir: DirHandle) -> Self {
        Self {
            dir,
            audit_dir: Arc::new(audit_dir),
            syslog: Some(PathBuf::from(syslog::DEFAULT_SOCKET)),
        }
    }

    /// Sends each new checkpoint to the syslog socket `socket` (default
    /// `/dev/log`), or nowhere with `None`.
    pub fn syslog_socket(mut self, socket: Option<PathBuf>) -> Self {
        self.syslog = socket;
        self
    }

    /// The config dir.
    pub fn dir(&self) -> &'a ConfigDir {
        self.dir
    }

    /// The path of the log, for messages.
    pub fn log_path(&self) -> PathBuf {
        self.audit_dir.entry_path(AUDIT_LOG.name)
    }

    /// The path of the stored checkpoint, for messages.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.audit_dir.entry_path(AUDIT_CHECKPOINT.name)
    }

    /// Takes the exclusive lock of the log.
    ///
    /// # Locking
    ///
    /// The innermost lock: take no other lock while holding it.
    pub fn lock(&self) -> Result<AuditLock, Error> {
        let guard = self
            .dir
            .lock_in(Arc::clone(&self.audit_dir), AUDIT_LOCK.name, true)?;
        Ok(AuditLock { _guard: guard })
    }

    /// Takes the shared lock of the log: no append is half done while it is held.
    pub fn lock_shared(&self) -> Result<AuditReadLock, Error> {
        let guard = self
            .dir
            .lock_in(Arc::clone(&self.audit_dir), AUDIT_LOCK.name, false)?;
        Ok(AuditReadLock { _guard: guard })
    }

    /// Takes `pending.lck`: shared for an operation from its intent to its
    /// outcome, exclusive to wait until no operation is between the two.
    ///
    /// # Locking
    ///
    /// After every lock of the store, before [`AuditLog::lock`].
    pub fn lock_pending(&self, exclusive: bool) -> Result<PendingLock, Error> {
        let guard = self.dir.lock_in(
            Arc::clone(&self.audit_dir),
            AUDIT_PENDING_LOCK.name,
            exclusive,
        )?;
        Ok(PendingLock { _guard: guard })
    }

    /// The signing key; with `create`, a missing one is generated and
    /// stored (root:root 0600) first. `None` if missing and not created.
    ///
    /// # Errors
    ///
    /// A key file that is not a regular file of root's (the policy's file
    /// owner), that others may read or write, or that is no Ed25519 PEM
    /// key: refused, naming the file, never quoting it.
    pub(crate) fn signing_key(
        &self,
        create: bool,
    ) -> Result<Option<Arc<checkpoint::SigningKey>>, Error> {
        let key = match self.read_signing_key()? {
            Some(key) => key,
            None if create => self.create_signing_key()?,
            None => return Ok(None),
        };
        Ok(Some(key))
    }

    /// Checks the signing key file and returns its key: the one this
    /// process decoded before if the file is in the settled state it was
    /// read in ([`cache`]: one `statat`, its owner and mode checked on
    /// that), else the file read again, checked and decoded (the decode
    /// saved if its bytes are those decoded before). A key replaced or
    /// edited on disk is the one used.
    fn read_signing_key(&self) -> Result<Option<Arc<checkpoint::SigningKey>>, Error> {
        let file = &AUDIT_SIGNING_KEY;
        let ownership = self.dir.ownership();
        match self.audit_dir.stat(file.name)? {
            None => return Ok(None),
            Some(stat) if stat.kind == EntryKind::File => {
                let path = self.audit_dir.entry_path(file.name);
                check_signing_key_stat(ownership, &stat, &path)?;
                if let Some(key) = self.dir.audit_cache.settled_signing_key(&stat.state()) {
                    return Ok(Some(key));
                }
            }
            // refused below, with the open's own words
            Some(_) => {}
        }
        let Some(mut opened) = self.audit_dir.open_regular(file.name, file.max_size)? else {
            return Ok(None);
        };
        check_signing_key_stat(ownership, &opened.stat, &opened.path)?;
        let settled = cache::settled(&opened.stat);
        let pem = Zeroizing::new(read_all(&mut opened, file.max_size)?);
        let key = match self.dir.audit_cache.signing_key(&pem) {
            Some(key) => key,
            None => Arc::new(checkpoint::SigningKey::from_pem(&pem).map_err(|err| {
                format_err!("invalid audit signing key {:?} - {err}", opened.path)
            })?),
        };
        self.dir.audit_cache.set_signing_key(pem, &key, settled);
        Ok(Some(key))
    }

    fn create_signing_key(&self) -> Result<Arc<checkpoint::SigningKey>, Error> {
        let key = checkpoint::SigningKey::generate()?;
        let pem = key.to_pem()?;
        let options = self.dir.ownership().options_for(AUDIT_SIGNING_KEY.class);
        if self
            .audit_dir
            .create_atomic(AUDIT_SIGNING_KEY.name, &pem, options)?
        {
            return Ok(Arc::new(key));
        }
        // somebody else was first: use theirs
        self.read_signing_key()?.ok_or_else(|| {
            format_err!(
                "audit signing key {:?} vanished while it was created - retry",
                self.audit_dir.entry_path(AUDIT_SIGNING_KEY.name)
            )
        })
    }

    /// This store's public key; `None` before the first append.
    pub fn public_key(&self) -> Result<Option<PublicKey>, Error> {
        Ok(self.signing_key(false)?.map(|key| key.public_key()))
    }

    /// The origin this host signs with: `pbs-keystore/<host>/<store id>`.
    pub fn origin(key: &PublicKey) -> String {
        checkpoint::origin(&checkpoint::host_name(), &key.store_id())
    }

    /// The verifier key to keep off the host (with checkpoints, to check
    /// later that they were signed by this store); `None` before the first
    /// append.
    pub fn verifier_key(&self) -> Result<Option<String>, Error> {
        Ok(self
            .public_key()?
            .map(|key| key.verifier_key(&Self::origin(&key))))
    }

    /// The stored checkpoint's text; `None` if there is none.
    ///
    /// # Locking
    ///
    /// Takes the log's lock shared (the checkpoint is rewritten in place).
    pub fn stored_checkpoint_text(&self) -> Result<Option<String>, Error> {
        let _lock = self.lock_shared()?;
        self.read_checkpoint_text()
    }

    /// [`AuditLog::stored_checkpoint_text`] for a caller holding the log's lock.
    pub(crate) fn read_checkpoint_text(&self) -> Result<Option<String>, Error> {
        Ok(self.read_checkpoint()?.map(|(text, _)| text))
    }

    /// The stored checkpoint's text and the `fstat` of the file it was
    /// read from; `None` if there is none.
    fn read_checkpoint(&self) -> Result<Option<(String, EntryStat)>, Error> {
        let file = &AUDIT_CHECKPOINT;
        let Some(mut opened) = self.audit_dir.open_regular(file.name, file.max_size)? else {
            return Ok(None);
        };
        self.dir
            .ownership()
            .check_trusted(file.class, &opened.stat, &opened.path)?;
        let data = read_all(&mut opened, file.max_size)?;
        let text = String::from_utf8(data)
            .map_err(|_| format_err!("audit checkpoint {:?} is not UTF-8 text", opened.path))?;
        Ok(Some((text, opened.stat)))
    }

    /// The stored checkpoint, parsed (its signature is not checked: see
    /// [`Checkpoint::check_signature`]); `None` if there is none.
    ///
    /// # Locking
    ///
    /// Takes the log's lock shared.
    pub fn stored_checkpoint(&self) -> Result<Option<Checkpoint>, Error> {
        let Some(text) = self.stored_checkpoint_text()? else {
            return Ok(None);
        };
        Checkpoint::parse(&text)
            .map(Some)
            .layer_err(|| format!("unreadable audit checkpoint {:?}", self.checkpoint_path()))
    }

    /// Signs, stores and returns a checkpoint of the whole log (synced
    /// first): what `audit checkpoint` prints to keep elsewhere. `None` for
    /// an empty log.
    ///
    /// # Locking
    ///
    /// Takes the log's lock.
    pub fn checkpoint_now(&self) -> Result<Option<Checkpoint>, Error> {
        let lock = self.lock()?;
        self.sign_whole_log(&lock)
            .layer_err(|| format!("unable to sign a checkpoint of {:?}", self.log_path()))
    }
}

/// Refuses a signing key that others may read or change.
fn check_signing_key_stat(
    ownership: &Ownership,
    stat: &EntryStat,
    path: &std::path::Path,
) -> Result<(), Error> {
    ownership.check_trusted(AUDIT_SIGNING_KEY.class, stat, path)?;
    if stat.mode & 0o077 != 0 {
        bail!(
            "audit signing key {path:?} has mode {:04o}, which lets others read it - refusing \
             to use it (fix with 'chmod 0600'; others may have copied it and could sign \
             checkpoints of a forged log)",
            stat.mode
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
