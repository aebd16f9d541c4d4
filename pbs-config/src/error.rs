//! [`KeystoreError`]: keystore failures a caller must tell apart.

use std::fmt;

use pbs_api_types::Fingerprint;

/// Why a keystore operation was refused. Raised inside an
/// [`anyhow::Error`] (recover it with `downcast_ref`), so an API handler can
/// answer 404 for [`KeystoreError::NotFound`] and tests can assert the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeystoreError {
    /// No key with this id.
    NotFound {
        /// The key id.
        id: String,
    },
    /// A key with this id exists already.
    AlreadyExists {
        /// The key id.
        id: String,
    },
    /// The same key (by fingerprint) is stored under another id.
    DuplicateFingerprint {
        /// The fingerprint.
        fingerprint: Fingerprint,
        /// The id it is stored under.
        existing_id: String,
    },
    /// The key is used by sync jobs.
    InUse {
        /// The key id.
        id: String,
        /// Jobs using it as their active key.
        active_in: Vec<String>,
        /// Jobs listing it as an associated key.
        associated_in: Vec<String>,
    },
    /// The operation needs an archived key.
    NotArchived {
        /// The key id.
        id: String,
    },
    /// The operation needs an active key.
    Archived {
        /// The key id.
        id: String,
    },
    /// The config changed since the caller read it.
    DigestMismatch,
    /// A change of a sync job would drop the key it had as active (it must
    /// stay associated).
    ActiveKeyDropped {
        /// The job id.
        job: String,
        /// The key it had as active.
        key: String,
    },
    /// The key file does not match the config entry.
    FingerprintMismatch {
        /// The key id.
        id: String,
        /// What the config says.
        expected: Fingerprint,
        /// What the key file holds.
        found: Fingerprint,
    },
    /// Nothing in the trash matches what was named.
    NotInTrash {
        /// The key id or trash entry name given.
        name: String,
    },
    /// A key cannot be restored from the trash: its id or its fingerprint
    /// is taken in the store.
    RestoreConflict {
        /// The id it was to be restored as.
        id: String,
        /// Its fingerprint.
        fingerprint: Fingerprint,
        /// Whether the id is taken.
        id_taken: bool,
        /// The fingerprint of the key that holds the id, if it has one.
        id_taken_by: Option<Fingerprint>,
        /// The id the same key is stored as already, if any.
        fingerprint_taken_by: Option<String>,
    },
    /// Keys of an export bundle cannot be restored: the store has their
    /// ids with other keys, or their keys under other ids. Nothing was
    /// restored.
    BundleConflict {
        /// One entry per key that cannot be restored.
        conflicts: Vec<KeyConflict>,
    },
    /// A purge would destroy a key of which no verified copy is recorded
    /// (see [`crate::verified_copy`]).
    NoVerifiedCopy {
        /// The key id.
        id: String,
        /// The fingerprint of the key file; `None` if it could not be read.
        fingerprint: Option<Fingerprint>,
    },
}

/// A key that cannot be restored from an export bundle, and why: its id
/// names another key in the store, or the store has it under another id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConflict {
    /// The key's id in the bundle.
    pub id: String,
    /// The key's fingerprint.
    pub fingerprint: Fingerprint,
    /// If the id is taken by another key: that key's fingerprint (`None`
    /// inside: its entry records none).
    pub id_taken_by: Option<Option<Fingerprint>>,
    /// The id the store has this key under, if another.
    pub fingerprint_taken_by: Option<String>,
}

impl fmt::Display for KeyConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let KeyConflict {
            id,
            fingerprint,
            id_taken_by,
            fingerprint_taken_by,
        } = self;
        let mut parts = Vec::new();
        match id_taken_by {
            Some(Some(other)) => parts.push(format!(
                "the store has '{id}' with another key (fingerprint {})",
                other.signature()
            )),
            Some(None) => parts.push(format!(
                "the store has '{id}' with another key (no fingerprint recorded)"
            )),
            None => {}
        }
        if let Some(other_id) = fingerprint_taken_by {
            parts.push(format!("the store has this key as '{other_id}'"));
        }
        write!(
            f,
            "key '{id}' (fingerprint {}): {}",
            fingerprint.signature(),
            parts.join(", and ")
        )
    }
}

fn job_list(jobs: &[String]) -> String {
    jobs.iter()
        .map(|job| format!("'{job}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for KeystoreError {
    // a table: one message per error kind, nothing else
    #[allow(clippy::too_many_lines)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeystoreError::NotFound { id } => write!(f, "no such encryption key '{id}'"),
            KeystoreError::AlreadyExists { id } => {
                write!(f, "encryption key '{id}' already exists")
            }
            KeystoreError::DuplicateFingerprint {
                fingerprint,
                existing_id,
            } => write!(
                f,
                "a key with fingerprint {fingerprint} is already stored as '{existing_id}'"
            ),
            KeystoreError::InUse {
                id,
                active_in,
                associated_in,
            } => {
                write!(f, "encryption key '{id}' is in use by sync jobs: ")?;
                let mut parts = Vec::new();
                if !active_in.is_empty() {
                    parts.push(format!("active key of {}", job_list(active_in)));
                }
                if !associated_in.is_empty() {
                    parts.push(format!("associated with {}", job_list(associated_in)));
                }
                write!(f, "{}", parts.join("; "))
            }
            KeystoreError::NotArchived { id } => write!(
                f,
                "encryption key '{id}' is not archived - only archived keys can be deleted, archive it first"
            ),
            KeystoreError::Archived { id } => write!(
                f,
                "encryption key '{id}' is archived - unarchive it to use it for encryption"
            ),
            KeystoreError::DigestMismatch => write!(
                f,
                "detected modified configuration - file changed by other user? Try again."
            ),
            KeystoreError::ActiveKeyDropped { job, key } => write!(
                f,
                "sync job '{job}' would no longer name its active key '{key}' - a replaced active key stays associated with the job (snapshots made with it still need it)"
            ),
            KeystoreError::FingerprintMismatch {
                id,
                expected,
                found,
            } => write!(
                f,
                "key file of encryption key '{id}' does not match the config - expected fingerprint {expected}, found {found}"
            ),
            KeystoreError::NotInTrash { name } => write!(
                f,
                "no key '{name}' in the trash - see 'proxmox-backup-manager encryption-key trash list'"
            ),
            KeystoreError::RestoreConflict {
                id,
                fingerprint,
                id_taken,
                id_taken_by,
                fingerprint_taken_by,
            } => {
                let mut parts = Vec::new();
                match (id_taken, id_taken_by) {
                    (true, Some(other)) => parts.push(format!(
                        "the id '{id}' is taken by the key with fingerprint {other}"
                    )),
                    (true, None) => parts.push(format!("the id '{id}' is taken")),
                    (false, _) => {}
                }
                if let Some(other_id) = fingerprint_taken_by {
                    parts.push(format!(
                        "the key with fingerprint {fingerprint} is in the store already as '{other_id}'"
                    ));
                }
                write!(
                    f,
                    "cannot restore the key with fingerprint {fingerprint} as '{id}' - {}",
                    parts.join(", and ")
                )?;
                if fingerprint_taken_by.is_none() {
                    write!(f, " (restore it under another id with --as NEW_ID)")?;
                }
                Ok(())
            }
            KeystoreError::BundleConflict { conflicts } => {
                let list: Vec<String> = conflicts.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "refusing to restore - {} - nothing was restored",
                    list.join("; ")
                )
            }
            KeystoreError::NoVerifiedCopy { id, fingerprint } => {
                let fingerprint = match fingerprint {
                    Some(fingerprint) => format!("fingerprint {fingerprint}"),
                    None => "its key file unreadable".to_string(),
                };
                write!(
                    f,
                    "no verified copy of encryption key '{id}' ({fingerprint}) is recorded - \
                     destroying it loses every backup encrypted with it; export it \
                     ('encryption-key export'), prove the bundle restores ('encryption-key \
                     export-verify'), then purge it, or purge with --without-verified-copy to \
                     destroy it anyway"
                )
            }
        }
    }
}

impl std::error::Error for KeystoreError {}
