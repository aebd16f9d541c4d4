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
//! mode checks run again on the file as it is. The signing key file is
//! read (and checked) every time and its bytes compared with those the
//! key was decoded from: a key replaced or edited on disk, even within
//! one tick of the file system's clock, is the key used. The end of
//! the log and the checkpoint are used and updated only under the log's
//! lock (`log.lck`), so what one append leaves is what the next one of
//! this process finds unless another process appended in between.

use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

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

/// The signing key and the file's bytes it was decoded from.
type DecodedKey = (Zeroizing<Vec<u8>>, Arc<SigningKey>);

/// See the module docs.
#[derive(Default)]
pub(crate) struct AuditCache {
    signing_key: Mutex<Option<DecodedKey>>,
    tail: Mutex<Option<CachedTail>>,
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
            Some((cached, key)) if cached.as_slice() == pem => Some(Arc::clone(key)),
            _ => None,
        }
    }

    /// Keeps `key`, decoded from `pem`.
    pub(crate) fn set_signing_key(&self, pem: Zeroizing<Vec<u8>>, key: &Arc<SigningKey>) {
        *self.signing_key.lock().unwrap() = Some((pem, Arc::clone(key)));
    }

    /// The end of the log in `state`, if this process's last append left
    /// it in that state.
    ///
    /// # Locking
    ///
    /// The caller holds the log's lock.
    pub(crate) fn tail(&self, state: &FileState) -> Option<CachedTail> {
        match &*self.tail.lock().unwrap() {
            Some(cached) if cached.state == *state => Some(*cached),
            _ => None,
        }
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
