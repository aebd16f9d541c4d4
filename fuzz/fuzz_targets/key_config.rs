//! Key files: `KeyConfig::from_json`, `to_json` and `decrypt`, with the KDF
//! bounds in force.
//!
//! Besides "no panic", it checks:
//! - no error message and no `Debug` output repeats the input's `data`
//!   value or the key (hex or base64), nor the passphrase;
//! - what parses writes back and parses to the same value;
//! - KDF parameters outside the bounds are refused before the passphrase is
//!   even asked for; the passphrase is asked for at most once;
//! - a successful decrypt returns the key whose fingerprint it reports, and
//!   that matches a stored fingerprint.
//!
//! Cost: the bounds admit up to 1 GiB and 2^24 scrypt work, or 5,000,000
//! PBKDF2 iterations, which is about a second per input. So an input whose
//! parameters pass the bounds but exceed a small fuzzing budget is decrypted
//! with its parameters capped to that budget (same salt, data, hint and
//! fingerprint): the code path is the same, only cheaper. The bounds
//! themselves are checked on the real parameters.

#![no_main]

use std::cell::Cell;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;

use pbs_key_config::{KeyConfig, KeyDerivationConfig, KeyError, fingerprint};

const PASSPHRASE: &str = "fuzzing passphrase";

/// Largest scrypt n * r * p and PBKDF2 iteration count actually run.
const FUZZ_SCRYPT_WORK: u64 = 1 << 10;
const FUZZ_PBKDF2_ITERATIONS: usize = 1 << 10;

fuzz_target!(|data: &[u8]| {
    let secret = data_field(data);
    let key_config = match KeyConfig::from_json(data) {
        Ok(key_config) => key_config,
        Err(err) => {
            assert!(
                err.chain().any(|e| e.downcast_ref::<KeyError>().is_some()),
                "parse error is not a KeyError: {err}"
            );
            check_no_secret(&format!("{err:#}"), secret.as_deref(), None, None);
            return;
        }
    };
    check_no_secret(
        &format!("{key_config:?}"),
        secret.as_deref(),
        Some(&key_config.data),
        key_config.hint.as_deref(),
    );

    // write back and read again: the same value
    let json = key_config
        .to_json()
        .unwrap_or_else(|err| panic!("parsed key does not write back: {err}"));
    let again = KeyConfig::from_json(json.as_bytes())
        .unwrap_or_else(|err| panic!("written key does not parse: {err}"));
    assert!(again == key_config, "key changed in a round trip");

    decrypt(&key_config, secret.as_deref());
});

/// Decrypts with bounded cost and checks what comes out.
fn decrypt(key_config: &KeyConfig, secret: Option<&str>) {
    let in_bounds = key_config
        .kdf
        .as_ref()
        .is_none_or(|kdf| kdf.check_bounds().is_ok());
    let mut cheap = key_config.clone();
    if in_bounds && let Some(kdf) = cheap.kdf.as_mut() {
        cap_cost(kdf);
    }

    let asked = Cell::new(0u32);
    let passphrase = || {
        asked.set(asked.get() + 1);
        Ok(PASSPHRASE.as_bytes().to_vec())
    };
    let result = cheap.decrypt(&passphrase);
    assert!(asked.get() <= 1, "passphrase asked {} times", asked.get());
    match result {
        Ok((key, created, fp)) => {
            assert!(
                in_bounds,
                "decrypt succeeded with out-of-range KDF parameters"
            );
            assert_eq!(fp, fingerprint(&key));
            assert_eq!(created, key_config.created);
            if let Some(stored) = cheap.fingerprint {
                assert_eq!(stored, fp, "decrypt ignored the stored fingerprint");
            }
            if cheap.kdf.is_none() {
                assert_eq!(&key[..], &cheap.data[..]);
            }
        }
        Err(err) => {
            let kind = err.chain().find_map(|e| e.downcast_ref::<KeyError>());
            assert!(kind.is_some(), "decrypt error is not a KeyError: {err}");
            if !in_bounds {
                assert!(
                    matches!(kind, Some(KeyError::KdfParamsOutOfRange(_)))
                        || matches!(kind, Some(KeyError::WrongDataLength { .. })),
                    "out-of-range KDF parameters not refused as such: {err}"
                );
                assert_eq!(asked.get(), 0, "passphrase asked for despite bad KDF");
            }
            check_no_secret(
                &format!("{err:#}"),
                secret,
                Some(&cheap.data),
                cheap.hint.as_deref(),
            );
        }
    }
}

/// Scales the KDF work down to the fuzzing budget, keeping everything else.
fn cap_cost(kdf: &mut KeyDerivationConfig) {
    match kdf {
        KeyDerivationConfig::Scrypt { n, r, p, .. } => {
            while n.saturating_mul(*r).saturating_mul(*p) > FUZZ_SCRYPT_WORK {
                if *n > 2 {
                    *n /= 2;
                } else if *r > 1 {
                    *r = (*r / 2).max(1);
                } else {
                    *p = (*p / 2).max(1);
                }
            }
        }
        KeyDerivationConfig::PBKDF2 { iter, .. } => {
            *iter = (*iter).min(FUZZ_PBKDF2_ITERATIONS);
        }
    }
}

/// The `data` string of the input if it is a JSON object with one (the
/// wrapped or raw key a message must never repeat).
fn data_field(input: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(input).ok()?;
    let data = value.get("data")?.as_str()?;
    // short strings can appear by chance (e.g. "null"); 12+ characters of
    // base64 are 9 bytes of key material
    (data.len() >= 12).then(|| data.to_string())
}

/// Panics if `text` holds the input's data string, or the hex or base64 of
/// the key bytes, or the passphrase. The passphrase hint is public (it is
/// stored in clear and shown on a wrong passphrase), so whatever the input
/// put into it is taken out first, as it appears in `Debug` and in errors.
fn check_no_secret(text: &str, secret: Option<&str>, key: Option<&[u8]>, hint: Option<&str>) {
    let text = match hint.filter(|hint| !hint.is_empty()) {
        Some(hint) => text.replace(&format!("{hint:?}"), "").replace(hint, ""),
        None => text.to_string(),
    };
    let text = text.as_str();
    assert!(!text.contains(PASSPHRASE), "passphrase in output: {text}");
    if let Some(secret) = secret {
        assert!(!text.contains(secret), "input data in output: {text}");
    }
    if let Some(key) = key.filter(|key| key.len() >= 8) {
        for needle in [hex::encode(key), STANDARD.encode(key)] {
            assert!(!text.contains(&needle), "key bytes in output: {text}");
        }
    }
}
