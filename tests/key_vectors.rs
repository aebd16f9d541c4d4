//! Runs every key file of `../shared/vectors/keys` through
//! `pbs_key_config::KeyConfig::{load, decrypt}`.

use std::path::Path;

use anyhow::Error;
use base64::Engine;
use serde_json::Value;

use pbs_api_types::{Fingerprint, KeyInfo};
use pbs_key_config::{KeyConfig, KeyError};

use pbs_test_kit::dirs::{cases_with_suffix, vectors_dir};

/// Top-level fields of the KeyConfig format.
const KNOWN_FIELDS: &[&str] = &["kdf", "created", "modified", "data", "fingerprint", "hint"];

fn passphrase_fn(passphrase: Option<String>) -> impl Fn() -> Result<Vec<u8>, Error> {
    move || match &passphrase {
        Some(p) => Ok(p.clone().into_bytes()),
        None => anyhow::bail!("the vector gives no passphrase"),
    }
}

/// The kind of failure an `error_kind` of the vectors stands for.
fn kind_matches(error_kind: &str, err: &Error) -> bool {
    let key_error = err.chain().find_map(|e| e.downcast_ref::<KeyError>());
    match (
        error_kind.split_whitespace().next().unwrap_or(""),
        key_error,
    ) {
        ("invalid-json", Some(KeyError::Malformed(_))) => true,
        ("wrong-fingerprint", Some(KeyError::FingerprintMismatch { .. })) => true,
        ("decrypt-failed", Some(KeyError::WrongPassphraseOrCorrupt { .. })) => true,
        ("kdf-failed", Some(KeyError::KdfParamsOutOfRange(_) | KeyError::KdfFailed(_))) => true,
        ("short-data" | "wrong-length", Some(KeyError::WrongDataLength { .. })) => true,
        // a kind this test does not know yet: any refusal will do
        (kind, _) => !matches!(
            kind,
            "invalid-json" | "wrong-fingerprint" | "decrypt-failed" | "kdf-failed"
        ),
    }
}

/// The raw key in hex and base64 must not appear in `text`.
fn assert_no_key_bytes(case: &str, raw_key_hex: &str, text: &str) -> Result<(), String> {
    let raw = hex::decode(raw_key_hex).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    if text.contains(raw_key_hex) || text.contains(&b64) {
        return Err(format!("{case}: message contains the key: {text}"));
    }
    Ok(())
}

fn check_case(dir: &Path, case: &str) -> Result<(), String> {
    let path = dir.join(format!("{case}.enc"));
    let expect: Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{case}.expect.json"))).unwrap())
            .map_err(|err| format!("bad expect.json: {err}"))?;
    let raw_key_hex = expect["raw_key_hex"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let passphrase = expect["passphrase"].as_str().map(str::to_string);
    let outcome = expect["expected_outcome"].as_str().unwrap_or("missing");

    let result = KeyConfig::load(&path).and_then(|config| {
        let decrypted = config.decrypt(&passphrase_fn(passphrase.clone()))?;
        Ok((config, decrypted))
    });

    match outcome {
        "reject" => {
            let kind = expect["error_kind"].as_str().unwrap_or("");
            match result {
                Ok(_) => Err(format!("accepted, upstream rejects ({kind})")),
                Err(err) => {
                    let text = format!("{err:#}");
                    if !kind_matches(kind, &err) {
                        return Err(format!("wrong kind of error for {kind}: {text}"));
                    }
                    if !text.contains(&format!("{case}.enc")) && kind.starts_with("invalid-json") {
                        return Err(format!("load error does not name the file: {text}"));
                    }
                    assert_no_key_bytes(case, &raw_key_hex, &text)
                }
            }
        }
        "ok" => {
            let (config, (key, created, fp)) =
                result.map_err(|err| format!("rejected, upstream accepts: {err:#}"))?;
            if hex::encode(key) != raw_key_hex {
                return Err("decrypted to a different key".into());
            }
            if let Some(expected) = expect["fingerprint"].as_str() {
                let expected_fp: Fingerprint = expected
                    .parse()
                    .map_err(|err| format!("bad fingerprint in expect.json: {err}"))?;
                if fp != expected_fp || fp.signature() != expected {
                    return Err(format!("fingerprint {} differs", fp.signature()));
                }
            }
            if let Some(expected) = expect["fingerprint_display"].as_str()
                && fp.to_string() != expected
            {
                return Err(format!("short fingerprint {fp} differs"));
            }
            if let Some(expected_created) = expect["upstream_decrypt_created"].as_i64()
                && created != expected_created
            {
                return Err(format!("created {created} differs from {expected_created}"));
            }
            let info = serde_json::to_value(KeyInfo::from(&config)).unwrap();
            if expect.get("upstream_key_info").is_some() && info != expect["upstream_key_info"] {
                return Err(format!(
                    "KeyInfo differs\n  upstream: {}\n  ours:     {info}",
                    expect["upstream_key_info"]
                ));
            }
            check_wrong_passphrases(case, &config, &expect, &raw_key_hex)?;
            check_rewrite_is_identical(&path, &config)
        }
        other => Err(format!("unknown expected_outcome {other:?}")),
    }
}

fn check_wrong_passphrases(
    case: &str,
    config: &KeyConfig,
    expect: &Value,
    raw_key_hex: &str,
) -> Result<(), String> {
    if let Some(wrong) = expect.get("upstream_decrypt_with_wrong_passphrase") {
        let err = config
            .decrypt(&passphrase_fn(
                wrong["passphrase"].as_str().map(str::to_string),
            ))
            .err()
            .ok_or("a wrong passphrase was accepted")?;
        let Some(KeyError::WrongPassphraseOrCorrupt { hint }) = err.downcast_ref::<KeyError>()
        else {
            return Err(format!("wrong passphrase gave another error: {err}"));
        };
        let text = err.to_string();
        if !text.starts_with("unable to decrypt key - wrong passphrase or corrupted key file") {
            return Err(format!("wrong passphrase message: {text}"));
        }
        if let Some(expected_hint) = expect["hint"].as_str()
            && (hint.as_deref() != Some(expected_hint) || !text.contains(expected_hint))
        {
            return Err(format!("hint missing from: {text}"));
        }
        assert_no_key_bytes(case, raw_key_hex, &text)?;
    }
    if let Some(short) = expect.get("upstream_decrypt_with_short_passphrase") {
        let err = config
            .decrypt(&passphrase_fn(
                short["passphrase"].as_str().map(str::to_string),
            ))
            .err()
            .ok_or("a short passphrase was accepted")?;
        if err.downcast_ref::<KeyError>() != Some(&KeyError::PassphraseTooShort) {
            return Err(format!("short passphrase gave another error: {err}"));
        }
    }
    Ok(())
}

/// What we write reads back to the same key config; a file in upstream's
/// own spelling (only known fields, compact, lower-case fingerprint, UTC
/// offsets as upstream writes them) is written back byte for byte.
fn check_rewrite_is_identical(path: &Path, config: &KeyConfig) -> Result<(), String> {
    let ours = config
        .to_json()
        .map_err(|err| format!("write failed: {err}"))?;
    let reread = KeyConfig::from_json(ours.as_bytes())
        .map_err(|err| format!("our own output does not load: {err:#}"))?;
    if reread.to_json().ok().as_deref() != Some(ours.as_str()) {
        return Err(format!("our output changes when read back: {ours}"));
    }
    let original = std::fs::read(path).unwrap();
    if !in_upstream_spelling(&original) {
        return Ok(());
    }
    if ours.as_bytes() != original {
        return Err(format!(
            "written back differently\n  upstream: {}\n  ours:     {ours}",
            String::from_utf8_lossy(&original)
        ));
    }
    Ok(())
}

/// Whether `file` is spelled as upstream's `store()` writes it, so that a
/// byte-for-byte rewrite can be asked for.
fn in_upstream_spelling(file: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<Value>(file) else {
        return false;
    };
    let compact = serde_json::to_vec(&value).is_ok_and(|v| v.len() == file.len());
    let Value::Object(fields) = value else {
        return false;
    };
    let fingerprint_ok = match fields.get("fingerprint") {
        None => true,
        Some(Value::String(fp)) => fp
            .parse::<Fingerprint>()
            .is_ok_and(|f| f.signature() == *fp),
        Some(_) => false,
    };
    let times_ok = ["created", "modified"].iter().all(|name| {
        fields[*name]
            .as_str()
            .is_some_and(|t| t.len() == 25 && t.ends_with("+00:00"))
    });
    compact
        && fingerprint_ok
        && times_ok
        && fields.contains_key("kdf")
        && !matches!(fields.get("hint"), Some(Value::Null))
        && fields.keys().all(|k| KNOWN_FIELDS.contains(&k.as_str()))
}

#[test]
fn every_upstream_key_vector() {
    let dir = vectors_dir().join("keys");
    let cases = cases_with_suffix(&dir, ".expect.json");
    assert!(!cases.is_empty(), "no key vectors in {dir:?}");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            check_case(&dir, case)
                .err()
                .map(|err| format!("{case}: {err}"))
        })
        .collect();
    eprintln!(
        "key vectors: {} cases, {} failed",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn known_answer_fingerprint() {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    assert_eq!(
        pbs_key_config::fingerprint(&key).signature(),
        "0e:ab:d4:46:0b:6e:b9:ca:34:50:23:de:e2:b7:78:c7:90:e5:4a:16:83:b9:65:9c:0a:57:ae:19:90:90:15:9b"
    );
}

#[test]
fn bad_key_files_get_clear_errors() {
    let good = r#"{"kdf":null,"created":"2025-01-01T00:00:00+00:00","modified":"2025-01-01T00:00:00+00:00","data":"8+q2ClTxT/7jTE3HBVpz+ueGNGYH1sdmQZl6uIz/yE4=","fingerprint":"5f:8c:44:1a:ec:af:bd:7d:80:69:6e:0a:47:9b:00:5c:1b:0d:57:c4:92:ee:ba:f0:be:9e:bc:7c:9d:7f:ef:f6"}"#;
    let no_pass = || -> Result<Vec<u8>, Error> { anyhow::bail!("not asked") };
    let cases: Vec<(String, &str)> = vec![
        (good[..50].to_string(), "EOF"),
        (
            good.replace("null", r#"{"Argon2":{"m":1}}"#),
            "unknown variant",
        ),
        (
            good.replace("8+q2ClTxT/7jTE3HBVpz+ueGNGYH1sdmQZl6uIz/yE4=", "AAAA"),
            "wrong length",
        ),
        (
            good.replace(
                "8+q2ClTxT/7jTE3HBVpz+ueGNGYH1sdmQZl6uIz/yE4=",
                "not base64!",
            ),
            "base64",
        ),
        (good.replace(":f6\"", "\""), "invalid fingerprint"),
        (good.replace("5f:8c", "zz:8c"), "hex"),
        (
            good.replace("2025-01-01T00:00:00+00:00", "yesterday"),
            "RFC 3339",
        ),
        (
            good.replace("null", r#"{"Scrypt":{"n":1024,"r":8,"p":1,"salt":"AAAA"}}"#)
                .replace("8+q2ClTxT/7jTE3HBVpz+ueGNGYH1sdmQZl6uIz/yE4=", "AAAA"),
            "wrong length",
        ),
    ];
    for (text, expected) in cases {
        let err = pbs_key_config::decrypt_key(text.as_bytes(), &no_pass).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains(expected), "expected {expected:?} in {msg:?}");
        assert!(!msg.contains("8+q2ClTxT"), "{msg}");
    }
}
