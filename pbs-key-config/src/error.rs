//! [`KeyError`]: the failures a caller may need to tell apart.

use std::fmt;

use pbs_api_types::Fingerprint;

/// Why a key file could not be read, decrypted or trusted.
///
/// Raised inside an [`anyhow::Error`]; recover it with `downcast_ref`.
/// No variant carries key bytes, a passphrase or file contents.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The file is not a valid KeyConfig JSON document. Holds a description
    /// (serde's message with any quoted input removed, and the position).
    Malformed(String),
    /// The passphrase is shorter than [`MIN_PASSPHRASE_LEN`](crate::MIN_PASSPHRASE_LEN)
    /// bytes; refused before any key derivation.
    PassphraseTooShort,
    /// The passphrase for a new bundle is no secret: the first line of a
    /// file every file of its kind begins with, or of one kept in clear
    /// (see [`passphrase_no_secret`](crate::passphrase_no_secret)). Holds
    /// what it is.
    PassphraseNoSecret(&'static str),
    /// The KDF parameters in the file are out of the accepted range, so no
    /// derivation was attempted. Holds which parameter and why.
    KdfParamsOutOfRange(String),
    /// The key derivation itself failed.
    KdfFailed(String),
    /// The AES-GCM tag did not verify. A wrong passphrase and a damaged file
    /// cannot be told apart; holds the stored passphrase hint, if any.
    WrongPassphraseOrCorrupt {
        /// The hint stored in the file.
        hint: Option<String>,
    },
    /// The key data has the wrong length: an unprotected key is not 32
    /// bytes, or protected data is shorter than its IV and tag (32 bytes).
    /// Protected data of another wrong length fails the tag check instead,
    /// as upstream.
    WrongDataLength {
        /// Bytes found.
        found: usize,
        /// Bytes expected.
        expected: usize,
    },
    /// The fingerprint stored in the file does not belong to the key inside.
    FingerprintMismatch {
        /// The fingerprint stored in the file.
        stored: Fingerprint,
        /// The fingerprint of the key inside.
        computed: Fingerprint,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Malformed(detail) => write!(f, "invalid key file - {detail}"),
            // upstream's words, which the key vectors record
            KeyError::PassphraseTooShort => write!(f, "Passphrase is too short!"),
            KeyError::PassphraseNoSecret(what) => write!(
                f,
                "the passphrase is no secret: {what} - anyone could open the bundle; give a \
                 passphrase of its own (an RSA public key is a recipient of its own, \
                 master-pubkey)"
            ),
            KeyError::KdfParamsOutOfRange(detail) => {
                write!(f, "key derivation parameters out of range - {detail}")
            }
            KeyError::KdfFailed(detail) => write!(f, "key derivation failed - {detail}"),
            KeyError::WrongPassphraseOrCorrupt { hint: None } => {
                write!(
                    f,
                    "unable to decrypt key - wrong passphrase or corrupted key file"
                )
            }
            KeyError::WrongPassphraseOrCorrupt { hint: Some(hint) } => write!(
                f,
                "unable to decrypt key - wrong passphrase or corrupted key file (password hint: {})",
                crate::printable_hint(hint)
            ),
            KeyError::WrongDataLength { found, expected } => write!(
                f,
                "key data has wrong length ({found} bytes, expected {expected})"
            ),
            KeyError::FingerprintMismatch { stored, computed } => write!(
                f,
                "KeyConfig contains wrong fingerprint {stored}, contained key has fingerprint {computed}"
            ),
        }
    }
}

impl std::error::Error for KeyError {}
