//! Section-config parsing: `encryption-keys.cfg` and `sync.cfg`.
//!
//! Every input is read as a config file is read (bytes, UTF-8 check naming
//! the line) and parsed with both formats. Besides "no panic", it checks:
//! - what parses writes back, and the written text parses to the same data
//!   and writes to the same text again (the round trip the parser and writer
//!   promise: data never changes);
//! - an error names the file and a line that exists;
//! - each section converts to its typed value (`CryptKey`, `SyncJobConfig`)
//!   or fails with an error, and a typed key written back through
//!   `set_data` renders and parses again;
//! - a key entry whose `path` is accepted names this key's file
//!   (`…/encryption-keys/<id>.enc`, no `..`);
//! - the readers' typed parse (`KeyIndex`, built straight from the text)
//!   agrees with the writers' generic parse plus serde: both accept or both
//!   refuse the text (with the same message), with the same ids in the
//!   same order and, per id, the same entry or both an error (ours ending
//!   in serde's);
//! - a fresh process's load (`KeyIndex::find_entry`: the text read in
//!   chunks, each dropped once checked; chunks of several sizes, one of
//!   them chosen by the input) finds per id of the text (and one that is
//!   not there) `KeyIndex::get`'s entry or its absence, or leaves it to
//!   the whole read; never an entry or an absence where that refuses;
//! - the writers' `KeySections` accepts and refuses what the generic parse
//!   does and writes the text back exactly as the generic write does.

#![no_main]

use std::path::{Component, Path};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

use proxmox_section_config::{SectionConfig, SectionConfigData};

use pbs_api_types::{CryptKey, SyncJobConfig};
use pbs_config::encryption_keys::{self, ENCRYPTION_KEYS_CFG_TYPE_ID};
use pbs_config::sync::{self, SYNC_CFG_TYPE_ID};
use pbs_config::{ConfigDir, FoundEntry, KeyIndex, KeySections, KeystoreError, Ownership};

const FILE: &str = "/etc/proxmox-backup/fuzz.cfg";

/// A context for path checks only: no file is ever touched.
static DIR: LazyLock<ConfigDir> = LazyLock::new(|| {
    ConfigDir::with_ownership(
        "/etc/proxmox-backup",
        Ownership::current_user().expect("ownership"),
    )
    .expect("config dir")
});

fuzz_target!(|data: &[u8]| {
    let text = match proxmox_sys::fs::into_utf8(data.to_vec(), Path::new(FILE)) {
        Ok(text) => text,
        Err(err) => {
            let err = err.to_string();
            assert!(err.contains(FILE) && err.contains("line"), "{err}");
            return;
        }
    };
    let keys = round_trip(&encryption_keys::CONFIG, &text);
    check_key_index(keys.as_ref(), &text);
    check_find_entry(&text, data.len());
    if let Err(err) = KeySections::check_against_generic(Path::new(FILE), &text) {
        panic!("KeySections and the generic parse and write differ: {err}");
    }
    if let Some(config) = keys {
        check_keys(&config);
    }
    if let Some(config) = round_trip(&sync::CONFIG, &text) {
        check_jobs(&config);
    }
});

/// Parses `text`; on success checks the write/parse round trip.
fn round_trip(format: &SectionConfig, text: &str) -> Option<SectionConfigData> {
    let config = match format.parse(FILE, text) {
        Ok(config) => config,
        Err(err) => {
            check_parse_error(&err.to_string(), text);
            return None;
        }
    };
    let written = format
        .write(FILE, &config)
        .unwrap_or_else(|err| panic!("parsed config does not write back: {err}"));
    let reparsed = format
        .parse(FILE, &written)
        .unwrap_or_else(|err| panic!("written config does not parse: {err}\n{written}"));
    assert_eq!(
        reparsed.sections, config.sections,
        "data changed in a round trip"
    );
    assert_eq!(
        reparsed.ordered_ids().collect::<Vec<_>>(),
        config.ordered_ids().collect::<Vec<_>>(),
        "section order changed in a round trip"
    );
    let rewritten = format.write(FILE, &reparsed).expect("second write");
    assert_eq!(rewritten, written, "writing is not a fixed point");
    Some(config)
}

/// `parsing "FILE" failed: line N - ...` with 1 <= N <= lines + 1.
fn check_parse_error(err: &str, text: &str) {
    let prefix = format!("parsing {FILE:?} failed: line ");
    let rest = err
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("parse error without file and line: {err}"));
    let number: usize = rest
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("parse error without line number: {err}"));
    let lines = text.lines().count();
    assert!(
        number >= 1 && number <= lines + 1,
        "line {number} of {lines}: {err}"
    );
}

/// The typed reader parse against the generic one.
fn check_key_index(generic: Option<&SectionConfigData>, text: &str) {
    let index = KeyIndex::parse(Path::new(FILE), text);
    let (index, generic) = match (index, generic) {
        (Ok(index), Some(generic)) => (index, generic),
        (Err(ours), None) => {
            // refused with the parser's message, word for word
            let generic = encryption_keys::CONFIG.parse(FILE, text).unwrap_err();
            assert_eq!(ours.to_string(), generic.to_string(), "errors differ");
            return;
        }
        (Ok(_), None) => panic!("KeyIndex accepts what the generic parser refuses"),
        (Err(err), Some(_)) => panic!("KeyIndex refuses what the generic parser accepts: {err}"),
    };
    let ids: Vec<&str> = generic.ids_of_type(ENCRYPTION_KEYS_CFG_TYPE_ID).collect();
    assert!(index.ids().eq(ids.iter().copied()), "ids differ");
    for id in ids {
        let typed = generic.lookup::<CryptKey>(ENCRYPTION_KEYS_CFG_TYPE_ID, id);
        match (index.get(id), typed) {
            (Ok(ours), Ok(serde)) => assert_eq!(ours, &serde, "entry '{id}' differs"),
            (Err(ours), Err(serde)) => {
                let (ours, serde) = (ours.to_string(), serde.to_string());
                assert!(ours.ends_with(&serde), "'{id}': {ours} / {serde}");
            }
            (Ok(ours), Err(err)) => panic!("KeyIndex accepts '{id}' ({ours:?}), serde: {err}"),
            (Err(err), Ok(serde)) => panic!("KeyIndex refuses '{id}' ({err}), serde: {serde:?}"),
        }
    }
}

/// `KeyIndex::find_entry` against `KeyIndex::parse` + `get` of the whole
/// text, for every id a header names and one that is not there.
fn check_find_entry(text: &str, seed: usize) {
    let whole = KeyIndex::parse(Path::new(FILE), text);
    let mut ids: Vec<&str> = text
        .lines()
        .filter_map(|line| line.split_once(": ").map(|(_, id)| id.trim_end_matches('\r')))
        .collect();
    ids.push("not-there");
    for id in ids {
        for chunk in [1 + seed % 97, 256, proxmox_section_config::FIND_CHUNK] {
            let found =
                KeyIndex::find_entry(Path::new(FILE), &mut text.as_bytes(), text.len(), id, chunk)
                    .expect("reading memory");
            match (found, &whole) {
                (FoundEntry::Undecided, _) => {}
                (FoundEntry::Entry(entry), Ok(index)) => match index.get(id) {
                    Ok(got) => assert!(*got == entry && entry.id == id, "'{id}' differs"),
                    Err(err) => panic!("found '{id}' ({entry:?}), get: {err}"),
                },
                (FoundEntry::Absent, Ok(index)) => {
                    let err = index.get(id).expect_err("found absent, get finds it");
                    assert!(
                        matches!(err.downcast_ref(), Some(KeystoreError::NotFound { .. })),
                        "found absent, get: {err}"
                    );
                }
                (found, Err(err)) => panic!("found {found:?} where the whole read refuses: {err}"),
            }
        }
    }
}

fn check_keys(config: &SectionConfigData) {
    let keys = DIR.encryption_keys();
    for id in config.ids_of_type(ENCRYPTION_KEYS_CFG_TYPE_ID) {
        let Ok(entry) = config.lookup::<CryptKey>(ENCRYPTION_KEYS_CFG_TYPE_ID, id) else {
            continue;
        };
        assert_eq!(entry.id, id, "the header id must win");
        if keys.check_entry_path(&entry).is_ok()
            && let Some(stored) = entry.info.path.as_deref()
        {
            let stored = Path::new(stored);
            assert!(
                stored.is_absolute()
                    && stored
                        .components()
                        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
                    && stored.file_name() == Some(format!("{id}.enc").as_ref())
                    && stored.parent().and_then(Path::file_name)
                        == Some("encryption-keys".as_ref()),
                "accepted key path {stored:?} for '{id}'"
            );
        }
        // a typed entry written back must render and parse again
        let mut copy = config.clone();
        copy.set_data(id, ENCRYPTION_KEYS_CFG_TYPE_ID, &entry)
            .expect("set_data");
        let text = encryption_keys::CONFIG
            .write(FILE, &copy)
            .unwrap_or_else(|err| panic!("typed key '{id}' does not write back: {err}"));
        let again = encryption_keys::CONFIG
            .parse(FILE, &text)
            .unwrap_or_else(|err| panic!("typed key '{id}' does not parse back: {err}"));
        let back: CryptKey = again
            .lookup(ENCRYPTION_KEYS_CFG_TYPE_ID, id)
            .expect("typed key reads back");
        assert_eq!(back, entry, "typed key changed in a round trip");
    }
}

fn check_jobs(config: &SectionConfigData) {
    for id in config.ids_of_type(SYNC_CFG_TYPE_ID) {
        let Ok(job) = config.lookup::<SyncJobConfig>(SYNC_CFG_TYPE_ID, id) else {
            continue;
        };
        assert_eq!(job.id, id, "the header id must win");
        let mut copy = config.clone();
        copy.set_data(id, SYNC_CFG_TYPE_ID, &job).expect("set_data");
        let text = sync::CONFIG
            .write(FILE, &copy)
            .unwrap_or_else(|err| panic!("typed job '{id}' does not write back: {err}"));
        let again = sync::CONFIG
            .parse(FILE, &text)
            .unwrap_or_else(|err| panic!("typed job '{id}' does not parse back: {err}"));
        let back: SyncJobConfig = again.lookup(SYNC_CFG_TYPE_ID, id).expect("job reads back");
        assert_eq!(back, job, "typed job changed in a round trip");
    }
}
