//! Key derivation from a passphrase: scrypt or PBKDF2-HMAC-SHA256.
//!
//! Parameters come from key files, which may be hostile, so they are checked
//! against fixed bounds before any work is done: scrypt may use at most
//! [`MAX_SCRYPT_MEMORY`] bytes and `n * r * p` at most [`MAX_SCRYPT_WORK`];
//! PBKDF2 at most [`MAX_PBKDF2_ITERATIONS`] iterations. Defaults are
//! upstream's: scrypt n=65536 r=8 p=1 (64 MiB), PBKDF2 65535 iterations, both
//! with a 32-byte random salt.
//!
//! A process runs at most one derivation per CPU at a time ([`SLOTS`]): each
//! may hold up to [`MAX_SCRYPT_MEMORY`], and the daemon serves requests in
//! parallel (docs/security.md finding 66).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};

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
        let _slot = SLOTS.take();
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

/// The derivations running in this process. Each may hold up to
/// [`MAX_SCRYPT_MEMORY`] (the parameters of a key file or bundle given by
/// anyone with the right to restore or drill one), and the daemon runs
/// requests on a pool of hundreds of threads: without a bound, a hundred
/// requests at once would ask for a hundred GiB, and the kernel's
/// out-of-memory killer would end a process of the host (a backup job, the
/// daemon in the middle of a write). At most one per CPU runs, as the
/// daemon's password checks; the others wait for a slot.
static SLOTS: Slots = Slots {
    running: Mutex::new(0),
    freed: Condvar::new(),
    peak: AtomicUsize::new(0),
};

struct Slots {
    running: Mutex<usize>,
    freed: Condvar,
    /// The most that ever ran at once, for the tests.
    peak: AtomicUsize,
}

/// A derivation's place in [`SLOTS`], given back when dropped (also when
/// the derivation panics).
struct Slot<'a>(&'a Slots);

impl Slots {
    /// Waits until fewer than [`max_derivations`] run, then takes a slot.
    fn take(&self) -> Slot<'_> {
        let max = max_derivations();
        // a panic elsewhere while counting leaves a count that is still right
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        while *running >= max {
            running = self
                .freed
                .wait(running)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *running += 1;
        self.peak.fetch_max(*running, Ordering::Relaxed);
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut running = self
            .0
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *running -= 1;
        self.0.freed.notify_one();
    }
}

/// How many derivations may run at once: one per CPU this process may use.
fn max_derivations() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twice as many threads as CPUs, plus one, derive at the same moment
    /// (each held at a barrier first): never more than one per CPU runs at
    /// once, and each gets its key.
    #[test]
    fn derivations_run_at_most_one_per_cpu() {
        let threads = 2 * max_derivations() + 1;
        let barrier = std::sync::Barrier::new(threads);
        let kdf = scrypt(1 << 14, 8, 1);
        let keys: Vec<[u8; 32]> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        kdf.derive_key(b"passphrase").unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|pair| pair[0] == pair[1]));
        let peak = SLOTS.peak.load(Ordering::Relaxed);
        assert!(
            (1..=max_derivations()).contains(&peak),
            "{peak} derivations ran at once, with {} CPUs",
            max_derivations()
        );
    }

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
