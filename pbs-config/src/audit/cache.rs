//! What one process keeps of the audit log between its operations: the
//! decoded signing key (with the file's bytes it was decoded from), the
//! end of the log and the size its checkpoint proves (each with the
//! identity and state of the file it came from).
//!
//! Held by the [`crate::ConfigDir`] (shared by its [`crate::ConfigDir::with_caller`]
//! views, so the daemon and a benchmark reuse it), never trusted across a
//! change it cannot see: every use compares the file as it is now (`stat`
//! of its name: device, inode, size, modification and status change time)
//! with the state it was cached in, and reads the file again on any
//! difference. Another process's append changes the log's size; a
//! `chmod` or `chown` changes the status change time, so the owner and
//! mode checks run again on the file as it is.
//!
//! The signing key file is checked (owner, mode) on every use. It is
//! read again unless its `statat` shows the state it was read in and that
//! state was *settled* then: its modification and status change times at
//! least [`SETTLE_SECS`] before the read. A change after the read stamps
//! the file with the time of the change, later than a settled state's
//! times, so it shows even if the file keeps its inode and size; only a
//! file changed within a tick of the clock of its last change (one that
//! was not settled) could look unchanged, and such a file is read every
//! time, its bytes compared with those the key was decoded from. So a key
//! replaced or edited on disk is the key used.
//!
//! The end of the log and the size the checkpoint proves are compared by
//! state alone; they are used and updated only under the log's
//! lock (`log.lck`), so what one append leaves is what the next one of
//! this process finds unless another process appended in between.

use std::fs::File;
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use crate::dir_handle::EntryStat;
pub(crate) use crate::dir_handle::FileState;

use super::append::Tail;
use super::checkpoint::SigningKey;

/// The end of the log as this process's last append left it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CachedTail {
    /// The log's state after that append.
    pub state: FileState,
    /// Its last line (never an incomplete one: `torn` is 0).
    pub tail: Tail,
    /// The log has room reserved (`fallocate`) up to this offset.
    pub reserved_to: u64,
}

/// How old the times of the signing key file must be when it is read for
/// its state to be used instead of reading it again (module docs): far
/// more than a tick of the file system's clock.
pub(crate) const SETTLE_SECS: i64 = 2;

/// The signing key, the file's bytes it was decoded from, and the file's
/// state when it was read if that state was settled.
struct DecodedKey {
    pem: Zeroizing<Vec<u8>>,
    key: Arc<SigningKey>,
    settled: Option<FileState>,
}

/// The state of a file with `stat`, if its times are [`SETTLE_SECS`]
/// in the past now.
pub(crate) fn settled(stat: &EntryStat) -> Option<FileState> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let now = i64::try_from(now).ok()?;
    let last = stat.mtime.0.max(stat.ctime.0);
    (last.checked_add(SETTLE_SECS)? < now).then(|| stat.state())
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct AuditCache {
    signing_key: Mutex<Option<DecodedKey>>,
    tail: Mutex<Option<CachedTail>>,
    /// The log's descriptor an intent wrote through: used for the append
    /// after it (its outcome) while the name still names it in the state
    /// the intent left (one `statat` instead of an `openat`, `fstat` and
    /// `close`), closed after that.
    log: Mutex<Option<File>>,
    checkpoint: Mutex<Option<(FileState, u64)>>,
}

impl std::fmt::Debug for AuditCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the key's bytes
        f.debug_struct("AuditCache")
            .field("tail", &self.tail)
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

impl AuditCache {
    /// The signing key decoded from `pem`, if it was decoded before.
    pub(crate) fn signing_key(&self, pem: &[u8]) -> Option<Arc<SigningKey>> {
        match &*self.signing_key.lock().unwrap() {
            Some(cached) if cached.pem.as_slice() == pem => Some(Arc::clone(&cached.key)),
            _ => None,
        }
    }

    /// The signing key read from the file now in `state`, if it was read
    /// in that state and the state was settled then (module docs).
    pub(crate) fn settled_signing_key(&self, state: &FileState) -> Option<Arc<SigningKey>> {
        match &*self.signing_key.lock().unwrap() {
            Some(cached) if cached.settled.as_ref() == Some(state) => Some(Arc::clone(&cached.key)),
            _ => None,
        }
    }

    /// Keeps `key`, decoded from `pem`, read from the file in the state
    /// `settled` if that state was settled ([`settled`]).
    pub(crate) fn set_signing_key(
        &self,
        pem: Zeroizing<Vec<u8>>,
        key: &Arc<SigningKey>,
        settled: Option<FileState>,
    ) {
        *self.signing_key.lock().unwrap() = Some(DecodedKey {
            pem,
            key: Arc::clone(key),
            settled,
        });
    }

    /// The end of the log in `state`, if this process's last append left
    /// it in that state.
    ///
    /// # Locking
    ///
    /// The caller holds the log's lock.
    #[cfg(test)]
    pub(crate) fn tail(&self, state: &FileState) -> Option<CachedTail> {
        match &*self.tail.lock().unwrap() {
            Some(cached) if cached.state == *state => Some(*cached),
            _ => None,
        }
    }

    /// Takes the end of the log as this process's last append left it
    /// (forgotten until kept again).
    ///
    /// # Locking
    ///
    /// The caller holds the log's lock.
    pub(crate) fn take_tail(&self) -> Option<CachedTail> {
        self.tail.lock().unwrap().take()
    }

    /// Keeps the end of the log (`None`: forget it, the log is in a state
    /// this process did not see).
    ///
    /// # Locking
    ///
    /// The caller holds the log's lock.
    pub(crate) fn set_tail(&self, tail: Option<CachedTail>) {
        *self.tail.lock().unwrap() = tail;
    }

    /// Takes the kept descriptor of the log (dropped, so closed, unless
    /// kept again).
    ///
    /// # Locking
    ///
    /// The caller holds the log's lock.
    pub(crate) fn take_log(&self) -> Option<File> {
        self.log.lock().unwrap().take()
    }

    /// Keeps the descriptor of the log an intent wrote through, for its
    /// outcome.
    ///
    /// # Locking
    ///
    /// The caller holds the log's lock.
    pub(crate) fn keep_log(&self, file: File) {
        *self.log.lock().unwrap() = Some(file);
    }

    /// The size the checkpoint in `state` proves, if it was read (or
    /// written) in that state.
    pub(crate) fn checkpoint_size(&self, state: &FileState) -> Option<u64> {
        match &*self.checkpoint.lock().unwrap() {
            Some((cached, size)) if cached == state => Some(*size),
            _ => None,
        }
    }

    /// Keeps the size the checkpoint in `state` proves (`None`: forget it).
    pub(crate) fn set_checkpoint(&self, checkpoint: Option<(FileState, u64)>) {
        *self.checkpoint.lock().unwrap() = checkpoint;
    }
}
