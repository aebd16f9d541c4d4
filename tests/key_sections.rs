//! `KeySections`, the writers' form of `encryption-keys.cfg`, against the
//! generic parse and write it replaces: the same files accepted and refused,
//! the same text written, for every vector, for messy hand-edited text and
//! after any sequence of edits.

use std::path::Path;

use proptest::prelude::*;

use pbs_api_types::{CryptKey, Fingerprint, Kdf, KeyInfo};
use pbs_config::KeySections;
use pbs_config::encryption_keys::{CONFIG, ENCRYPTION_KEYS_CFG_TYPE_ID};
use proxmox_section_config::SectionConfigData;

use crate::util::{cases_with_suffix, vectors_dir};

const FILENAME: &str = "/etc/proxmox-backup/encryption-keys.cfg";

#[test]
fn every_vector_config_is_written_back_as_the_generic_writer_does() {
    let mut files = Vec::new();
    let dir = vectors_dir().join("section-config");
    for case in cases_with_suffix(&dir, ".in.cfg") {
        files.push(dir.join(format!("{case}.in.cfg")));
    }
    for entry in std::fs::read_dir(vectors_dir().join("configdir-example")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "cfg") {
            files.push(path);
        }
    }
    assert!(files.len() > 10, "too few vector configs: {files:?}");
    let mut accepted = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        KeySections::check_against_generic(Path::new(FILENAME), &text)
            .unwrap_or_else(|err| panic!("{path:?}: {err}"));
        accepted += usize::from(KeySections::parse(Path::new(FILENAME), &text).is_ok());
    }
    // both outcomes are exercised, not only refusals
    assert!(accepted >= 5, "only {accepted} of {} accepted", files.len());
}

#[test]
fn entries_are_typed_only_on_demand_and_invalid_ones_name_the_id() {
    let text = "sync-key: k-one\n\tcreated 01\n\tkdf none\n\tmodified +2\n\n\
                sync-key: k-two\n\tcreated 3\n\tkdf aes-magic\n\tmodified 4\n";
    let sections = KeySections::parse(Path::new(FILENAME), text).unwrap();
    assert_eq!(sections.ids().collect::<Vec<_>>(), ["k-one", "k-two"]);
    let one = sections.entry("k-one").unwrap();
    assert_eq!((one.info.created, one.info.modified), (1, 2));
    let err = sections.entry("k-two").unwrap_err().to_string();
    assert!(
        err.contains("'k-two'") && err.contains("aes-magic"),
        "{err}"
    );
    assert!(sections.entry("k-three").is_err());
    // integers are written in canonical form, as the generic writer does
    assert!(
        sections
            .render()
            .contains("\tcreated 1\n\tkdf none\n\tmodified 2\n")
    );
}

fn text() -> impl Strategy<Value = String> {
    "[ -~\u{e9}\u{2603}]{0,12}".prop_filter("no outer whitespace", |s| s.trim() == s)
}

fn crypt_key() -> impl Strategy<Value = CryptKey> {
    (
        "[a-c][a-c0-9_.-]{2,5}",
        proptest::option::of(text()),
        prop_oneof![Just(Kdf::None), Just(Kdf::Scrypt), Just(Kdf::PBKDF2)],
        any::<i64>(),
        any::<i64>(),
        proptest::option::of(any::<[u8; 32]>()),
        proptest::option::of(text()),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(
            |(id, path, kdf, created, modified, fp, hint, archived_at)| CryptKey {
                id,
                info: KeyInfo {
                    path,
                    kdf,
                    created,
                    modified,
                    fingerprint: fp.map(Fingerprint::new),
                    hint,
                },
                archived_at,
            },
        )
}

#[derive(Clone, Debug)]
enum Edit {
    Set(CryptKey),
    Remove(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => crypt_key().prop_map(Edit::Set),
        1 => any::<usize>().prop_map(Edit::Remove),
    ]
}

/// A hand-edited looking version of generic output: properties reversed,
/// spaces instead of tabs, padding, CRLF, extra blank lines, `+0` integers.
fn mess_up(text: &str, seed: u8) -> String {
    let mut out = String::new();
    for block in text.split("\n\n") {
        let mut lines: Vec<&str> = block.lines().collect();
        if lines.is_empty() {
            continue;
        }
        let header = lines.remove(0);
        if seed & 1 != 0 {
            lines.reverse();
        }
        let eol = if seed & 2 != 0 { "\r\n" } else { "\n" };
        out.push_str(header);
        out.push_str(eol);
        for line in lines {
            let (key, value) = line.trim_start().split_once(' ').unwrap();
            let value = match value.parse::<i64>() {
                Ok(number) if seed & 4 != 0 && number >= 0 => format!("+0{number}"),
                _ => value.to_string(),
            };
            let indent = if seed & 8 != 0 { "  " } else { "\t" };
            out.push_str(&format!("{indent}{key}   {value} {eol}"));
        }
        out.push_str(eol);
        if seed & 16 != 0 {
            out.push_str(eol);
        }
    }
    out
}

proptest! {
    #[test]
    fn edits_write_what_the_generic_writer_writes(
        keys in proptest::collection::vec(crypt_key(), 0..6),
        edits in proptest::collection::vec(edit(), 0..8),
        seed in any::<u8>(),
    ) {
        let path = Path::new(FILENAME);
        let mut data = SectionConfigData::new();
        for key in &keys {
            data.set_data(&key.id, ENCRYPTION_KEYS_CFG_TYPE_ID, key).unwrap();
        }
        let text = mess_up(&CONFIG.write(path, &data).unwrap(), seed);
        prop_assert!(KeySections::check_against_generic(path, &text).is_ok(), "{:?}", text);

        let mut generic = CONFIG.parse(path, &text).unwrap();
        let mut ours = KeySections::parse(path, &text).unwrap();
        for edit in edits {
            match edit {
                Edit::Set(key) => {
                    generic.set_data(&key.id, ENCRYPTION_KEYS_CFG_TYPE_ID, &key).unwrap();
                    ours.set(&key).unwrap();
                    prop_assert_eq!(ours.entry(&key.id).unwrap(), key.clone());
                    if let Some(fingerprint) = &key.info.fingerprint {
                        prop_assert!(ours.find_fingerprint(fingerprint).is_some());
                    }
                }
                Edit::Remove(pick) => {
                    let ids: Vec<String> = ours.ids().map(str::to_string).collect();
                    if let Some(id) = ids.get(pick % ids.len().max(1)) {
                        generic.remove(id);
                        prop_assert!(ours.remove(id));
                        prop_assert!(!ours.contains(id));
                    }
                }
            }
            prop_assert_eq!(ours.render(), CONFIG.write(path, &generic).unwrap());
        }
    }
}
