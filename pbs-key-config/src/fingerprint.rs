//! The key fingerprint: what identifies a key without revealing it.
//!
//! `fingerprint = SHA-256(FINGERPRINT_INPUT || id_key)` where
//! `FINGERPRINT_INPUT = SHA-256("Proxmox Backup Encryption Key Fingerprint")`
//! and `id_key = PBKDF2-HMAC-SHA256(key, "_id_key", 10 iterations, 32 bytes)`,
//! as upstream's `CryptConfig::fingerprint`.
//!
//! Computed with RustCrypto's `pbkdf2` and `sha2`, not OpenSSL: a key load
//! checks one fingerprint and needs no other crypto, and OpenSSL's first
//! use in a process (`OPENSSL_init_ssl` and the provider's fetch of
//! PBKDF2) cost about 5M instructions, 1 ms, of a load in a new process.
//! Unlike OpenSSL, those crates (hmac 0.12, digest 0.10, sha2 0.10)
//! zeroize none of their copies (the key XOR the HMAC pads, the hash
//! states, the block buffer and the moves that held the id_key, upstream's
//! chunk-digest key): the computation runs in frames below
//! [`fingerprint`]'s, and that stack is overwritten before it returns
//! (`tests/key_memory.rs`).

use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use pbs_api_types::Fingerprint;

const FINGERPRINT_TEXT: &[u8] = b"Proxmox Backup Encryption Key Fingerprint";

/// Computes the fingerprint of a raw 32-byte key.
///
/// ```
/// let key: [u8; 32] = std::array::from_fn(|i| i as u8);
/// assert_eq!(
///     pbs_key_config::fingerprint(&key).signature(),
///     "0e:ab:d4:46:0b:6e:b9:ca:34:50:23:de:e2:b7:78:c7:90:e5:4a:16:83:b9:65:9c:0a:57:ae:19:90:90:15:9b",
/// );
/// ```
pub fn fingerprint(key: &[u8; 32]) -> Fingerprint {
    let fingerprint = derive(key);
    wipe_stack();
    fingerprint
}

/// How much of the stack below [`fingerprint`]'s frame [`wipe_stack`]
/// overwrites, in words: [`derive`] uses about 1 KiB of it in a release
/// build and 17 KiB in a debug build.
const WIPED_WORDS: usize = if cfg!(debug_assertions) { 32 } else { 4 } * 1024 / 8;

/// The fingerprint, computed in frames below [`fingerprint`]'s, which
/// [`wipe_stack`] overwrites after it.
#[inline(never)]
fn derive(key: &[u8; 32]) -> Fingerprint {
    let mut id_key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(key, b"_id_key", 10, &mut id_key);
    let input = Sha256::digest(FINGERPRINT_TEXT);
    let mut hasher = Sha256::new();
    hasher.update(input);
    // the secret part last, against length extension; by reference: the
    // array by value is a copy left on the stack, never zeroized
    // (tests/key_memory.rs)
    hasher.update(id_key.as_slice());
    id_key.zeroize();
    Fingerprint::new(hasher.finalize().into())
}

/// Overwrites the stack [`derive`] used: called from the same frame, its
/// buffer lies where [`derive`]'s frames were (volatile writes, which the
/// compiler keeps).
#[inline(never)]
fn wipe_stack() {
    let mut below = [0u64; WIPED_WORDS];
    below.zeroize();
    std::hint::black_box(&below);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_input_matches_upstream_constant() {
        // upstream hard-codes this digest as FINGERPRINT_INPUT
        assert_eq!(
            <[u8; 32]>::from(Sha256::digest(FINGERPRINT_TEXT)),
            [
                110, 208, 239, 119, 71, 31, 255, 77, 85, 199, 168, 254, 74, 157, 182, 33, 97, 64,
                127, 19, 76, 114, 93, 223, 48, 153, 45, 37, 236, 69, 237, 38
            ]
        );
    }

    /// The same as OpenSSL computes it (what this module used before, and
    /// what upstream uses), for keys of every byte value.
    #[test]
    fn fingerprint_matches_openssl() {
        for seed in 0..=255u8 {
            let key: [u8; 32] =
                std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8));
            let mut id_key = [0u8; 32];
            openssl::pkcs5::pbkdf2_hmac(
                &key,
                b"_id_key",
                10,
                openssl::hash::MessageDigest::sha256(),
                &mut id_key,
            )
            .unwrap();
            let mut hasher = openssl::sha::Sha256::new();
            hasher.update(&openssl::sha::sha256(FINGERPRINT_TEXT));
            hasher.update(&id_key);
            assert_eq!(
                fingerprint(&key),
                Fingerprint::new(hasher.finish()),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn different_keys_have_different_fingerprints() {
        let a = fingerprint(&[1u8; 32]);
        let b = fingerprint(&[2u8; 32]);
        assert_ne!(a, b);
        assert_eq!(a, fingerprint(&[1u8; 32]));
    }
}
