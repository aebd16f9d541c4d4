//! Runs every case of `../shared/vectors/section-config` through our
//! `SectionConfig` with the encryption-key plugin, as upstream's
//! `pbs-config/src/encryption_keys.rs` builds it.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use pbs_api_types::{CRYPT_KEY_ID_SCHEMA, CryptKey};
use proxmox_schema::ApiType;
use proxmox_section_config::{SectionConfig, SectionConfigData, SectionConfigPlugin};

use pbs_test_kit::dirs::{cases_with_suffix, vectors_dir};

/// The file name upstream was given when the vectors were made.
const FILENAME: &str = "/etc/proxmox-backup/encryption-keys.cfg";

fn crypt_key_config() -> SectionConfig {
    let obj_schema = CryptKey::API_SCHEMA.unwrap_all_of_schema();
    let plugin =
        SectionConfigPlugin::new("sync-key".to_string(), Some("id".to_string()), obj_schema);
    let mut config = SectionConfig::new(&CRYPT_KEY_ID_SCHEMA);
    config.register_plugin(plugin);
    config
}

/// `CASE OUTCOME` lines of `EXPECT-OURS`.
fn our_outcomes(dir: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir.join("EXPECT-OURS")).unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (case, outcome) = line
                .split_once(char::is_whitespace)
                .unwrap_or_else(|| panic!("malformed EXPECT-OURS line {line:?}"));
            (case.to_string(), outcome.trim().to_string())
        })
        .collect()
}

fn read_bytes(dir: &Path, name: &str) -> Option<Vec<u8>> {
    match std::fs::read(dir.join(name)) {
        Ok(data) => Some(data),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => panic!("unable to read vector {name} - {err}"),
    }
}

fn read(dir: &Path, name: &str) -> Option<String> {
    read_bytes(dir, name).map(|data| String::from_utf8_lossy(&data).into_owned())
}

/// Our parse result in the vectors' JSON shape.
fn as_vector_json(data: &SectionConfigData) -> Value {
    let sections: serde_json::Map<String, Value> = data
        .sections
        .iter()
        .map(|(id, (type_name, props))| (id.clone(), json!([type_name, props])))
        .collect();
    json!({"order": data.order, "sections": sections})
}

/// The part of an upstream error after `failed: `: `line N - MESSAGE`.
fn line_and_message(err: &str) -> &str {
    err.split_once("failed: ")
        .map(|(_, rest)| rest)
        .unwrap_or(err)
        .trim_end()
}

fn check_case(dir: &Path, case: &str, ours: &BTreeMap<String, String>) -> Result<(), String> {
    let config = crypt_key_config();
    let input = read_bytes(dir, &format!("{case}.in.cfg")).unwrap();
    // text that is not UTF-8 is refused when the file is read, naming the line
    let input = match proxmox_sys::fs::into_utf8(input, Path::new(FILENAME)) {
        Ok(input) => input,
        Err(err) => {
            let refused = ours.get(case).map(String::as_str) == Some("reject")
                || read_bytes(dir, &format!("{case}.err.txt")).is_some();
            return match refused {
                true if err.to_string().contains(" on line ") => Ok(()),
                true => Err(format!("error does not name the line: {err}")),
                false => Err(format!("refused as not UTF-8, upstream accepts: {err}")),
            };
        }
    };
    let parsed = config.parse(FILENAME, &input);

    if let Some(outcome) = ours.get(case) {
        return match (outcome.as_str(), parsed) {
            ("reject", Ok(_)) => Err("accepted, but EXPECT-OURS says reject".into()),
            ("reject", Err(err)) => {
                let err = err.to_string();
                let rest = line_and_message(&err);
                if rest.starts_with("line ") && rest.contains(" - ") {
                    Ok(())
                } else {
                    Err(format!("error does not name the line: {err}"))
                }
            }
            ("accept", Ok(_)) => Ok(()),
            ("accept", Err(err)) => Err(format!("rejected, but EXPECT-OURS says accept: {err}")),
            (other, _) => Err(format!("unknown outcome {other:?} in EXPECT-OURS")),
        };
    }

    if let Some(expected_err) = read(dir, &format!("{case}.err.txt")) {
        return match parsed {
            Ok(_) => Err(format!(
                "accepted, upstream rejects: {}",
                expected_err.trim_end()
            )),
            Err(err) => {
                let err = err.to_string();
                if !err.starts_with(&format!("parsing {FILENAME:?} failed: ")) {
                    return Err(format!("error does not name the file: {err}"));
                }
                if line_and_message(&err) != line_and_message(&expected_err) {
                    return Err(format!(
                        "error differs\n  upstream: {}\n  ours:     {err}",
                        expected_err.trim_end()
                    ));
                }
                Ok(())
            }
        };
    }

    let data = parsed.map_err(|err| format!("rejected, upstream accepts: {err}"))?;
    let expected_out = read(dir, &format!("{case}.out.cfg"))
        .ok_or_else(|| "case has neither .out.cfg nor .err.txt".to_string())?;
    let written = config
        .write(FILENAME, &data)
        .map_err(|err| format!("write failed: {err}"))?;
    if written != expected_out {
        return Err(format!(
            "written text differs\n--- upstream\n{expected_out}--- ours\n{written}---"
        ));
    }
    // what we wrote parses back to the same data
    let reparsed = config
        .parse(FILENAME, &written)
        .map_err(|err| format!("our own output does not parse: {err}"))?;
    if reparsed.sections != data.sections {
        return Err("our own output parses to different data".into());
    }

    if let Some(expected_json) = read(dir, &format!("{case}.json")) {
        let expected: Value = serde_json::from_str(&expected_json).unwrap();
        let got = as_vector_json(&data);
        if got != expected {
            return Err(format!(
                "parsed data differs\n  upstream: {expected}\n  ours:     {got}"
            ));
        }
    }

    check_typed(dir, case, &data)
}

/// The typed view: every section is a `CryptKey`, unless a `.typed.txt`
/// gives upstream's error for a section that is not.
fn check_typed(dir: &Path, case: &str, data: &SectionConfigData) -> Result<(), String> {
    let typed: Result<Vec<CryptKey>, _> = data.convert_to_typed_array("sync-key");
    let Some(expected) = read(dir, &format!("{case}.typed.txt")) else {
        let keys = typed.map_err(|err| format!("typed conversion failed: {err}"))?;
        for (key, id) in keys.iter().zip(data.order.iter()) {
            let looked_up = data
                .lookup::<CryptKey>("sync-key", id)
                .map_err(|err| format!("typed lookup of '{id}' failed: {err}"))?;
            if &key.id != id || &looked_up != key {
                return Err(format!("typed view of '{id}' gave id '{}'", key.id));
            }
        }
        return Ok(());
    };
    let expected = expected.trim_end();
    if typed.is_ok() {
        return Err("typed conversion succeeded, upstream fails".into());
    }
    // the sections that fail, each with its error: upstream's is one of them
    let errors: Vec<String> = data
        .order
        .iter()
        .filter_map(|id| data.lookup::<CryptKey>("sync-key", id).err())
        .map(|err| err.to_string())
        .collect();
    if !errors.iter().any(|err| err == expected) {
        return Err(format!(
            "typed lookup error differs\n  upstream: {expected}\n  ours:     {errors:?}"
        ));
    }
    Ok(())
}

#[test]
fn every_upstream_section_config_vector() {
    let dir = vectors_dir().join("section-config");
    let cases = cases_with_suffix(&dir, ".in.cfg");
    assert!(!cases.is_empty(), "no section-config vectors in {dir:?}");
    let ours = our_outcomes(&dir);
    for case in ours.keys() {
        assert!(
            cases.contains(case),
            "EXPECT-OURS names unknown case {case}"
        );
    }

    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            check_case(&dir, case, &ours)
                .err()
                .map(|err| format!("{case}: {err}"))
        })
        .collect();
    eprintln!(
        "section-config vectors: {} cases, {} failed",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn duplicate_id_error_names_id_and_both_lines() {
    let dir = vectors_dir().join("section-config");
    let input = read(&dir, "duplicate-id.in.cfg").expect("duplicate-id vector");
    let err = crypt_key_config()
        .parse(FILENAME, &input)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "parsing {FILENAME:?} failed: line 15 - duplicate section id 'dup-key' (first defined on line 1)"
        )
    );
}

const GOOD_SECTION: &str = "sync-key: good-key\n\
    \tcreated 1735689600\n\
    \tfingerprint 5f:8c:44:1a:ec:af:bd:7d:80:69:6e:0a:47:9b:00:5c:1b:0d:57:c4:92:ee:ba:f0:be:9e:bc:7c:9d:7f:ef:f6\n\
    \tkdf none\n\
    \tmodified 1735689600\n\
    \tpath /etc/proxmox-backup/encryption-keys/good-key.enc\n";

/// Parses `text` (a good section followed by a blank line and `bad`) and
/// checks the error names `line` and contains `problem`.
fn assert_rejected_at(bad: &str, line: usize, problem: &str) {
    let text = format!("{GOOD_SECTION}\n{bad}");
    let err = crypt_key_config()
        .parse(FILENAME, &text)
        .expect_err("must be rejected")
        .to_string();
    assert!(
        err.contains(&format!("failed: line {line} - ")),
        "expected line {line} in: {err}"
    );
    assert!(err.contains(problem), "expected {problem:?} in: {err}");
}

#[test]
fn bad_input_is_rejected_naming_the_line() {
    // the good section takes lines 1-6, the blank line 7: `bad` starts at line 8
    let fp = "fingerprint 5f:8c:44:1a:ec:af:bd:7d:80:69:6e:0a:47:9b:00:5c:1b:0d:57:c4:92:ee:ba:f0:be:9e:bc:7c:9d:7f:ef:f6";
    let cases: Vec<(String, usize, &str)> = vec![
        ("\tkdf none\n".into(), 8, "expected header"),
        (
            "sync-key: good-key\n\tkdf none\n".into(),
            8,
            "duplicate section id 'good-key'",
        ),
        (
            "other-type: abc\n".into(),
            8,
            "unknown section type 'other-type'",
        ),
        (
            "sync-key: k2x\n\tcolour blue\n".into(),
            9,
            "unknown property 'colour'",
        ),
        (
            "sync-key: k2x\n\tcreated yesterday\n".into(),
            9,
            "property 'created'",
        ),
        (
            "sync-key: k2x\n\tarchived-at 1.5\n".into(),
            9,
            "property 'archived-at'",
        ),
        (
            "sync-key: k2x\n\tfingerprint 00:11\n".into(),
            9,
            "property 'fingerprint'",
        ),
        (
            "sync-key: k2x\n\tcreated 1\x01\n".into(),
            9,
            "property 'created': invalid digit found in string",
        ),
        (
            "\u{e9}sync-key: abc\n".into(),
            8,
            "unknown section type '\u{e9}sync-key'",
        ),
        ("1sync-key: abc\n".into(), 8, "expected header"),
        ("sync-key: ../etc\n".into(), 8, "section identifier"),
        ("sync-key: a\n".into(), 8, "at least 3 characters"),
        (
            format!("sync-key: {}\n", "x".repeat(40)),
            8,
            "may only be 32 characters",
        ),
        ("sync-key: with space\n".into(), 8, "section identifier"),
        ("sync-key: schlüssel\n".into(), 8, "section identifier"),
        ("sync-key: nul\0key\n".into(), 8, "section identifier"),
        (
            "sync-key: k2x\n\thint a\0b\n".into(),
            9,
            "control character",
        ),
        (
            format!("sync-key: k2x\n\thint {}\n", "h".repeat(10 << 20)),
            9,
            "line is too long",
        ),
        (
            format!("sync-key: k2x\n\tkdf none\n\t{fp}\n\t{fp}\n"),
            11,
            "duplicate property 'fingerprint'",
        ),
        (
            "sync-key: k2x\n\tkdf none\n".into(),
            9,
            "property 'created' is missing",
        ),
    ];
    for (bad, line, problem) in cases {
        assert_rejected_at(&bad, line, problem);
    }
}

#[test]
fn the_key_bytes_of_an_error_line_are_not_echoed() {
    // a property line with a secret-looking value must not be repeated back
    let secret = "c2VjcmV0LWtleS1ieXRlcy1kby1ub3QtbGVhaw==";
    let text = format!("{GOOD_SECTION}\tdata {secret}\n");
    let err = crypt_key_config()
        .parse(FILENAME, &text)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown property 'data'"), "{err}");
    assert!(!err.contains(secret), "{err}");
}

mod crypt_key_round_trip {
    use proptest::prelude::*;

    use pbs_api_types::CryptKey;
    use proxmox_schema::ApiType;
    use proxmox_section_config::SectionConfigData;

    use super::{FILENAME, crypt_key_config};

    fn text() -> impl Strategy<Value = String> {
        any::<String>().prop_filter("valid config text", |s| {
            !s.chars().any(char::is_control) && s.trim() == s
        })
    }

    fn crypt_key() -> impl Strategy<Value = CryptKey> {
        crate::util::crypt_key_strategy("[A-Za-z0-9_][A-Za-z0-9._-]{2,31}", text)
    }

    proptest! {
        #[test]
        fn any_valid_crypt_key_list_round_trips(keys in proptest::collection::vec(crypt_key(), 0..8)) {
            let config = crypt_key_config();
            let mut data = SectionConfigData::new();
            let mut expected = Vec::new();
            for key in keys {
                if data.sections.contains_key(&key.id) {
                    continue;
                }
                let value = serde_json::to_value(&key).unwrap();
                prop_assert!(CryptKey::API_SCHEMA.verify_json(&value).is_ok());
                data.set_data(&key.id, "sync-key", &key).unwrap();
                expected.push(key);
            }
            let text = config.write(FILENAME, &data).unwrap();
            let parsed = config.parse(FILENAME, &text).unwrap();
            let got: Vec<CryptKey> = parsed.convert_to_typed_array("sync-key").unwrap();
            prop_assert_eq!(got, expected);
        }
    }
}

/// The readers' typed parse (`KeyIndex`, each section deserialized from its
/// text) against the generic parse plus `lookup` on every vector: the same
/// files refused with the same message, the same ids in the same order, and
/// per id the same entry, or an error ending in serde's message for it.
#[test]
fn key_index_agrees_with_the_generic_typed_view_on_every_vector() {
    use pbs_config::KeyIndex;
    use pbs_config::encryption_keys::{CONFIG, ENCRYPTION_KEYS_CFG_TYPE_ID};

    let dir = vectors_dir().join("section-config");
    let mut typed_errors = 0;
    let mut accepted = 0;
    for case in cases_with_suffix(&dir, ".in.cfg") {
        let Ok(input) = String::from_utf8(read_bytes(&dir, &format!("{case}.in.cfg")).unwrap())
        else {
            continue;
        };
        let index = KeyIndex::parse(Path::new(FILENAME), &input);
        let generic = CONFIG.parse(FILENAME, &input);
        let (index, generic) = match (index, generic) {
            (Ok(index), Ok(generic)) => (index, generic),
            (Err(ours), Err(generic)) => {
                assert_eq!(ours.to_string(), generic.to_string(), "{case}");
                continue;
            }
            (ours, generic) => panic!("{case}: KeyIndex {ours:?}, generic {generic:?}"),
        };
        accepted += 1;
        let ids: Vec<&str> = generic.ids_of_type(ENCRYPTION_KEYS_CFG_TYPE_ID).collect();
        assert_eq!(index.ids().collect::<Vec<_>>(), ids, "{case}");
        for id in ids {
            match (
                index.get(id),
                generic.lookup::<CryptKey>(ENCRYPTION_KEYS_CFG_TYPE_ID, id),
            ) {
                (Ok(ours), Ok(serde)) => assert_eq!(ours, &serde, "{case}: '{id}'"),
                (Err(ours), Err(serde)) => {
                    typed_errors += 1;
                    let (ours, serde) = (ours.to_string(), serde.to_string());
                    assert!(ours.ends_with(&serde), "{case}: '{id}': {ours} / {serde}");
                    assert!(ours.contains(&format!("'{id}'")), "{case}: {ours}");
                }
                (ours, serde) => panic!("{case}: '{id}': KeyIndex {ours:?}, serde {serde:?}"),
            }
        }
    }
    // both outcomes, and an entry only the type refuses, are exercised
    assert!(
        accepted >= 5 && typed_errors >= 1,
        "{accepted} / {typed_errors}"
    );
}
