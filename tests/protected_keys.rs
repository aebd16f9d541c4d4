//! Protected key files made by upstream (`../shared/vectors/keys`, scrypt
//! and PBKDF2 as `proxmox-backup-client key create` makes them) turned into
//! unprotected key files of the same key: only with the right passphrase.

use anyhow::Error;
use base64::Engine;
use serde_json::Value;

use pbs_api_types::Fingerprint;
use pbs_key_config::{KeyConfig, KeyError};

use pbs_test_kit::dirs::{cases_with_suffix, vectors_dir};

/// Every vector of a protected key file: name, file, expectations.
fn protected_vectors() -> Vec<(String, KeyConfig, Value)> {
    let dir = vectors_dir().join("keys");
    let mut found = Vec::new();
    for case in cases_with_suffix(&dir, ".expect.json") {
        let expect: Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("{case}.expect.json"))).unwrap(),
        )
        .unwrap();
        if expect["passphrase"].is_null() {
            continue;
        }
        // a file that does not even load is the key vectors' test
        let Ok(key_config) = KeyConfig::load(dir.join(format!("{case}.enc"))) else {
            continue;
        };
        assert!(key_config.is_protected(), "{case}");
        found.push((case, key_config, expect));
    }
    assert!(
        found.len() >= 4,
        "protected key vectors missing: {found:?}",
        found = found.len()
    );
    found
}

fn passphrase(text: &str) -> impl Fn() -> Result<Vec<u8>, Error> + '_ {
    move || Ok(text.as_bytes().to_vec())
}

fn assert_no_key_bytes(case: &str, raw_hex: &str, text: &str) {
    let raw = hex::decode(raw_hex).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    assert!(
        !text.contains(raw_hex) && !text.contains(&b64),
        "{case}: key in message: {text}"
    );
}

#[test]
fn protected_vectors_unprotect_with_the_right_passphrase_only() {
    let mut unprotected = 0;
    for (case, key_config, expect) in protected_vectors() {
        let raw_hex = expect["raw_key_hex"].as_str().unwrap();
        let right = expect["passphrase"].as_str().unwrap();
        let result = key_config.to_unprotected(&passphrase(right));
        if expect["expected_outcome"] != "ok" {
            let err = result.expect_err(&case);
            assert_no_key_bytes(&case, raw_hex, &format!("{err:#}"));
            continue;
        }
        let plain = result.unwrap_or_else(|err| panic!("{case}: {err:#}"));
        unprotected += 1;
        assert!(!plain.is_protected(), "{case}");
        assert_eq!(hex::encode(&plain.data), raw_hex, "{case}");
        let fingerprint: Fingerprint = expect["fingerprint"].as_str().unwrap().parse().unwrap();
        assert_eq!(plain.fingerprint, Some(fingerprint), "{case}");
        assert_eq!(plain.created, key_config.created, "{case}");
        assert_eq!(plain.hint, None, "{case}: a hint belongs to a passphrase");
        // the result is a key file that loads without a passphrase
        let reread = KeyConfig::from_json(plain.to_json().unwrap().as_bytes()).unwrap();
        let (key, _, computed) = reread.decrypt(&|| unreachable!()).unwrap();
        assert_eq!(hex::encode(key), raw_hex, "{case}");
        assert_eq!(computed, fingerprint, "{case}");

        let wrong = expect["upstream_decrypt_with_wrong_passphrase"]["passphrase"]
            .as_str()
            .unwrap_or("wrong passphrase");
        let err = key_config
            .to_unprotected(&passphrase(wrong))
            .expect_err(&case);
        assert!(
            matches!(
                err.downcast_ref::<KeyError>(),
                Some(KeyError::WrongPassphraseOrCorrupt { .. })
            ),
            "{case}: {err}"
        );
        if let Some(hint) = expect["hint"].as_str() {
            assert!(err.to_string().contains(hint), "{case}: {err}");
        }
        assert_no_key_bytes(&case, raw_hex, &format!("{err:#}"));
        let err = key_config.to_unprotected(&passphrase("abcd")).unwrap_err();
        assert_eq!(
            err.downcast_ref::<KeyError>(),
            Some(&KeyError::PassphraseTooShort)
        );
    }
    // scrypt, PBKDF2 with a hint, scrypt without a stored fingerprint
    assert!(
        unprotected >= 3,
        "only {unprotected} protected vectors unprotected"
    );
}
