//! Whether a verified copy of a key is recorded, and the purges' refusal
//! without one.
//!
//! A verified copy of a key is an export bundle holding it that opened
//! whole in the restore drill (`export-verify`: every key checked against
//! its bytes). The audit log records each drill with the fingerprints of
//! the keys it proved, so the last `export-verify` outcome that names a
//! key's fingerprint is the one fact this module reads (`show`'s
//! "last-export-verify" and the trash listing read the same).
//!
//! A purge (`trash purge`, `remove --purge`) destroys a key's last copy on
//! this host. Without a verified copy it is refused unless the caller
//! says to destroy the key anyway, and the daily `trash purge --expired`
//! keeps such keys: a typo, or a key removed by mistake and noticed after
//! its keep time, must not lose every backup encrypted with it.

use std::collections::HashMap;

use anyhow::Error;

use pbs_api_types::Fingerprint;

use crate::audit::{AuditLog, Filter, Op, Phase, Record};
use crate::{ConfigDir, KeystoreError};

/// The records that prove a copy of some keys: effective `export-verify`
/// outcomes (each names the fingerprints of the keys it proved).
fn proofs() -> Filter {
    Filter {
        ops: vec![Op::ExportVerify],
        phase: Some(Phase::Outcome),
        effective: true,
        ..Filter::default()
    }
}

/// The records that prove a copy of the key with `fingerprint`: the
/// [`proofs`] that name that fingerprint.
pub fn filter(fingerprint: &Fingerprint) -> Filter {
    Filter {
        fingerprint: Some(fingerprint.signature()),
        fingerprint_required: true,
        ..proofs()
    }
}

impl ConfigDir {
    /// For each of `fingerprints`, the last record of a verified copy of
    /// that key (see the module docs), in one read from the end of the
    /// audit log, which stops once each has one; `None` where there is
    /// none (or no log at all). Each proof's fingerprints are looked up
    /// among those asked for, so the read costs the same for one key as
    /// for 100,000.
    pub fn verified_copies(
        &self,
        fingerprints: &[Fingerprint],
    ) -> Result<Vec<Option<Record>>, Error> {
        let mut found = vec![None; fingerprints.len()];
        let Some(log) = AuditLog::open_existing(self)? else {
            return Ok(found);
        };
        // the positions asking for each fingerprint not found yet
        let mut wanted: HashMap<String, Vec<usize>> = HashMap::new();
        for (position, fingerprint) in fingerprints.iter().enumerate() {
            wanted
                .entry(fingerprint.signature())
                .or_default()
                .push(position);
        }
        if wanted.is_empty() {
            return Ok(found);
        }
        log.newest_first(&proofs(), |record| {
            for fingerprint in &record.fingerprints {
                for position in wanted.remove(fingerprint).unwrap_or_default() {
                    found[position] = Some(record.clone());
                }
            }
            wanted.is_empty()
        })?;
        Ok(found)
    }

    /// Refuses the destruction of the key `id` holds (`fingerprint`, as
    /// read from its key file; `None` if that could not be read) unless a
    /// verified copy of it is recorded or `anyway` is set.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::NoVerifiedCopy`].
    pub(crate) fn refuse_destroy_without_copy(
        &self,
        id: &str,
        fingerprint: Option<Fingerprint>,
        anyway: bool,
    ) -> Result<(), Error> {
        if anyway {
            return Ok(());
        }
        if let Some(fingerprint) = fingerprint
            && self.verified_copies(&[fingerprint])?[0].is_some()
        {
            return Ok(());
        }
        Err(KeystoreError::NoVerifiedCopy {
            id: id.to_string(),
            fingerprint,
        }
        .into())
    }
}
