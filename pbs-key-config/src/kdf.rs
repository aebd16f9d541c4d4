//! Key derivation from a passphrase: scrypt or PBKDF2-HMAC-SHA256.
//!
//! Parameters come from key files, which may be hostile, so they are checked
//! against fixed bounds before any work is done: scrypt may use at most
//! [`MAX_SCRYPT_MEMORY`] bytes and `n * r * p` at most [`MAX_SCRYPT_WORK`];
//! PBKDF2 at most [`MAX_PBKDF2_ITERATIONS`] iterations. Defaults are
//! upstream's: scrypt n=65536 r=8 p=1 (64 MiB), PBKDF2 65535 iterations, both
//! with a 32-byte random salt.

use std::fmt;

use anyhow::Error;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::KeyError;
use crate::wire::bytes_as_base64;

/// Largest scrypt memory use accepted from a file (`128 * n * r` bytes): 1 GiB.
pub const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// Largest scrypt work factor `n * r * p` accepted from a file (32 times the default).
pub const MAX_SCRYPT_WORK: u64 = 1 << 24;
/// Largest PBKDF2 iteration count accepted from a file (about 75 times the default).
pub const MAX_PBKDF2_ITERATIONS: usize = 5_000_000;
/// Accepted salt lengths in bytes. Upstream writes 32 and reads any; a
/// short salt is no danger to the reader, only a huge one costs memory.
pub const SALT_LEN_RANGE: std::ops::RangeInclusive<usize> = 0..=1024;

/// KDF parameters as stored in a key file (`{"Scrypt": {...}}` or `{"PBKDF2": {...}}`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyDerivationConfig {
    /// scrypt with cost `n` (a power of two), block size `r` and parallelism `p`.
    Scrypt {
        /// CPU/memory cost.
        n: u64,
        /// Block size.
        r: u64,
        /// Parallelism.
        p: u64,
        /// Salt.
        #[serde(with = "bytes_as_base64")]
        salt: Vec<u8>,
    },
    /// PBKDF2-HMAC-SHA256 with `iter` iterations.
    PBKDF2 {
        /// Iteration count.
        iter: usize,
        /// Salt.
        #[serde(with = "bytes_as_base64")]
        salt: Vec<u8>,
    },
}

impl fmt::Debug for KeyDerivationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDerivationConfig::Scrypt { n, r, p, salt } => f
                .debug_struct("Scrypt")
                .field("n", n)
                .field("r", r)
                .field("p", p)
                .field("salt_len", &salt.len())
                .finish(),
            KeyDerivationConfig::PBKDF2 { iter, salt } => f
                .debug_struct("PBKDF2")
                .field("iter", iter)
                .field("salt_len", &salt.len())
                .finish(),
        }
    }
}

impl KeyDerivationConfig {
    /// Upstream's scrypt defaults with a fresh random salt.
    pub fn new_scrypt() -> Result<Self, Error> {
        Ok(KeyDerivationConfig::Scrypt {
            n: 65536,
            r: 8,
            p: 1,
            salt: proxmox_sys::linux::random_data::<32>()?.to_vec(),
        })
    }

    /// Upstream's PBKDF2 defaults with a fresh random salt.
    pub fn new_pbkdf2() -> Result<Self, Error> {
        Ok(KeyDerivationConfig::PBKDF2 {
            iter: 65535,
            salt: proxmox_sys::linux::random_data::<32>()?.to_vec(),
        })
    }

    /// Checks the parameters against the bounds of this module.
    pub fn check_bounds(&self) -> Result<(), KeyError> {
        let out_of_range = |detail: String| Err(KeyError::KdfParamsOutOfRange(detail));
        let salt = match self {
            KeyDerivationConfig::Scrypt { n, r, p, salt } => {
                if *n < 2 || !n.is_power_of_two() {
                    return out_of_range(format!(
                        "scrypt parameter n={n} is not a power of two greater than 1"
                    ));
                }
                if *r == 0 || *p == 0 {
                    return out_of_range(format!("scrypt parameters r={r} p={p} must be positive"));
                }
                let memory = 128u64.checked_mul(*n).and_then(|m| m.checked_mul(*r));
                if memory.is_none_or(|m| m > MAX_SCRYPT_MEMORY) {
                    return out_of_range(format!(
                        "scrypt n={n} r={r} needs more than {} MiB of memory",
                        MAX_SCRYPT_MEMORY >> 20
                    ));
                }
                let work = n.checked_mul(*r).and_then(|w| w.checked_mul(*p));
                if work.is_none_or(|w| w > MAX_SCRYPT_WORK) {
                    return out_of_range(format!(
                        "scrypt work factor n*r*p for n={n} r={r} p={p} exceeds {MAX_SCRYPT_WORK}"
                    ));
                }
                salt
            }
            KeyDerivationConfig::PBKDF2 { iter, salt } => {
                if *iter == 0 || *iter > MAX_PBKDF2_ITERATIONS {
                    return out_of_range(format!(
                        "pbkdf2 iteration count {iter} is not between 1 and {MAX_PBKDF2_ITERATIONS}"
                    ));
                }
                salt
            }
        };
        if !SALT_LEN_RANGE.contains(&salt.len()) {
            return out_of_range(format!(
                "salt of {} bytes, expected {} to {}",
                salt.len(),
                SALT_LEN_RANGE.start(),
                SALT_LEN_RANGE.end()
            ));
        }
        Ok(())
    }

    /// Derives the 32-byte key-encryption key from `passphrase`, after
    /// checking the parameters against this module's bounds.
    pub fn derive_key(&self, passphrase: &[u8]) -> Result<[u8; 32], Error> {
        self.check_bounds()?;
        let mut key = [0u8; 32];
        let result = match self {
            KeyDerivationConfig::Scrypt { n, r, p, salt } => {
                // bounded above; the slack covers scrypt's p-dependent buffers
                let max_mem = MAX_SCRYPT_MEMORY + (64 << 20);
                openssl::pkcs5::scrypt(passphrase, salt, *n, *r, *p, max_mem, &mut key)
            }
            KeyDerivationConfig::PBKDF2 { iter, salt } => openssl::pkcs5::pbkdf2_hmac(
                passphrase,
                salt,
                *iter,
                openssl::hash::MessageDigest::sha256(),
                &mut key,
            ),
        };
        if let Err(err) = result {
            key.zeroize();
            return Err(KeyError::KdfFailed(err.to_string()).into());
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrypt(n: u64, r: u64, p: u64) -> KeyDerivationConfig {
        KeyDerivationConfig::Scrypt {
            n,
            r,
            p,
            salt: vec![7; 32],
        }
    }

    fn kind(err: Error) -> KeyError {
        err.downcast::<KeyError>().expect("a KeyError")
    }

    #[test]
    fn hostile_scrypt_parameters_are_refused_before_derivation() {
        for (n, r, p) in [
            (1000, 8, 1),
            (0, 8, 1),
            (1, 8, 1),
            (1 << 21, 8, 1),
            (1 << 20, 16, 1),
            (65536, 8, 1 << 20),
            (1 << 62, 1 << 40, 1),
            (65536, 0, 1),
        ] {
            let err = scrypt(n, r, p).derive_key(b"passphrase").unwrap_err();
            assert!(
                matches!(kind(err), KeyError::KdfParamsOutOfRange(_)),
                "n={n} r={r} p={p}"
            );
        }
    }

    #[test]
    fn hostile_pbkdf2_parameters_are_refused() {
        for iter in [0, MAX_PBKDF2_ITERATIONS + 1, usize::MAX] {
            let kdf = KeyDerivationConfig::PBKDF2 {
                iter,
                salt: vec![1; 32],
            };
            assert!(matches!(
                kind(kdf.derive_key(b"passphrase").unwrap_err()),
                KeyError::KdfParamsOutOfRange(_)
            ));
        }
        // a short salt is read as upstream does; a huge one is refused
        let short_salt = KeyDerivationConfig::PBKDF2 {
            iter: 1000,
            salt: vec![1; 4],
        };
        assert!(short_salt.check_bounds().is_ok());
        let huge_salt = KeyDerivationConfig::PBKDF2 {
            iter: 1000,
            salt: vec![1; 1025],
        };
        assert!(matches!(
            kind(huge_salt.derive_key(b"passphrase").unwrap_err()),
            KeyError::KdfParamsOutOfRange(_)
        ));
    }

    #[test]
    fn derivation_is_deterministic_and_parameter_sensitive() {
        // known answers come from the upstream key vectors (tests/key_vectors.rs)
        let a = KeyDerivationConfig::PBKDF2 {
            iter: 1000,
            salt: vec![3; 32],
        };
        let b = KeyDerivationConfig::PBKDF2 {
            iter: 1001,
            salt: vec![3; 32],
        };
        let ka = a.derive_key(b"secret").unwrap();
        assert_eq!(ka, a.derive_key(b"secret").unwrap());
        assert_ne!(ka, b.derive_key(b"secret").unwrap());
        assert_ne!(ka, a.derive_key(b"secreT").unwrap());
    }

    #[test]
    fn debug_does_not_show_salt_bytes() {
        let text = format!("{:?}", scrypt(65536, 8, 1));
        assert!(text.contains("salt_len: 32"), "{text}");
        assert!(!text.contains("7, 7"), "{text}");
    }
}
