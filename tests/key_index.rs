//! The readers' `KeyIndex` (one validating scan of the text, each entry
//! typed when first asked for) against the full reader it replaces: the
//! generic parse (`SectionConfig::parse`) plus serde (`lookup`). For every
//! file under `../shared/vectors`, for each of those files with a line
//! dropped or repeated, for every one-byte change of a config in the
//! writer's layout (the scan's fast path) and for random configs with
//! random hand edits:
//! - both refuse the text with the same message, or both accept it;
//! - then the same ids in the same order, and per id, asked for in any
//!   order, the same entry (whose id is that id: a key is never swapped)
//!   or an error for that id ending in serde's message;
//! - and per entry, before any is typed, the JSON a list prints of it
//!   (`KeyIndex::write_json`, from its text where it can) byte for byte
//!   serde_json's of the generic reader's entry, its archive state the
//!   same, or both refused.

use std::path::Path;

use proptest::prelude::*;

use pbs_api_types::CryptKey;
use pbs_config::encryption_keys::{CONFIG, ENCRYPTION_KEYS_CFG_TYPE_ID};
use pbs_config::{KeyIndex, KeystoreError};
use proxmox_section_config::SectionConfigData;

use pbs_test_kit::dirs::{files_under, vectors_dir};
use pbs_test_kit::edits::{one_byte_edits, one_line_edits};

const FILENAME: &str = "/etc/proxmox-backup/encryption-keys.cfg";

/// What [`agree`] saw: whether both accepted the text, and how many
/// entries both refused.
#[derive(Default)]
struct Outcome {
    accepted: usize,
    typed_errors: usize,
}

/// `KeyIndex` against the generic parse plus serde on `text`, entries
/// asked for in the order `pick` chooses (an index into the ids left).
fn agree(text: &str, pick: &mut dyn FnMut(usize) -> usize) -> Result<Outcome, String> {
    let index = KeyIndex::parse(Path::new(FILENAME), text);
    let generic = CONFIG.parse(FILENAME, text);
    let (index, generic) = match (index, generic) {
        (Ok(index), Ok(generic)) => (index, generic),
        (Err(ours), Err(generic)) => {
            return match ours.to_string() == generic.to_string() {
                true => Ok(Outcome::default()),
                false => Err(format!(
                    "errors differ:\n  ours:    {ours}\n  generic: {generic}"
                )),
            };
        }
        (ours, generic) => {
            return Err(format!(
                "KeyIndex {:?}, generic {:?}",
                ours.map(|index| index.len()),
                generic.map(|data| data.sections.len())
            ));
        }
    };
    let ids: Vec<&str> = generic.ids_of_type(ENCRYPTION_KEYS_CFG_TYPE_ID).collect();
    if !index.ids().eq(ids.iter().copied()) {
        return Err(format!(
            "ids differ: {:?} / {ids:?}",
            index.ids().collect::<Vec<_>>()
        ));
    }
    // first, on the index as parsed (no entry typed yet): each entry's
    // JSON and archive state, read from its text where it can be
    compare_json(&index, &generic, &ids)?;
    let mut outcome = Outcome {
        accepted: 1,
        typed_errors: 0,
    };
    let mut left: Vec<&str> = ids.clone();
    while !left.is_empty() {
        let id = left.remove(pick(left.len()) % left.len());
        outcome.typed_errors += usize::from(compare_entry(&index, &generic, id)?);
        // asked for again: the entry kept is the same
        compare_entry(&index, &generic, id)?;
    }
    let all: Result<Vec<CryptKey>, _> = ids
        .iter()
        .map(|id| generic.lookup::<CryptKey>(ENCRYPTION_KEYS_CFG_TYPE_ID, id))
        .collect();
    match (index.entries(), all) {
        (Ok(ours), Ok(serde)) => {
            if !ours.eq(serde.iter()) {
                return Err("entries() differs from the generic list".into());
            }
        }
        (Err(_), Err(_)) => {}
        (ours, serde) => {
            return Err(format!(
                "entries() {:?}, generic list {:?}",
                ours.map(|_| ()),
                serde.map(|_| ())
            ));
        }
    }
    Ok(outcome)
}

/// Per entry, in file order: `KeyIndex::write_json` against serde_json's
/// bytes for the generic reader's entry, and `list_entry`'s archive state against its
/// `archived_at` (or both refuse it, ours naming the id).
fn compare_json(index: &KeyIndex, generic: &SectionConfigData, ids: &[&str]) -> Result<(), String> {
    for (position, id) in ids.iter().enumerate() {
        let mut ours = Vec::new();
        let listed = index.list_entry(position);
        let written = listed
            .as_ref()
            .map_err(|err| anyhow::format_err!("{err}"))
            .and_then(|listed| index.write_json(listed, &mut ours));
        let archived = listed.map(|listed| listed.is_archived());
        match (
            written,
            archived,
            generic.lookup::<CryptKey>(ENCRYPTION_KEYS_CFG_TYPE_ID, id),
        ) {
            (Ok(()), Ok(archived), Ok(serde)) => {
                let theirs = serde_json::to_vec(&serde).unwrap();
                if ours != theirs {
                    return Err(format!(
                        "'{id}': JSON differs:\n  ours:    {}\n  generic: {}",
                        String::from_utf8_lossy(&ours),
                        String::from_utf8_lossy(&theirs)
                    ));
                }
                if archived != serde.archived_at.is_some() {
                    return Err(format!("'{id}': is_archived {archived}"));
                }
            }
            (Err(written), Err(archived), Err(_)) => {
                for err in [written, archived] {
                    if !err.to_string().contains(&format!("'{id}'")) {
                        return Err(format!("'{id}': error names another id: {err}"));
                    }
                }
            }
            (written, archived, serde) => {
                return Err(format!(
                    "'{id}': write_json {written:?}, is_archived {archived:?}, serde {:?}",
                    serde.map(|_| ())
                ));
            }
        }
    }
    Ok(())
}

/// One entry of both; returns whether both refused it.
fn compare_entry(index: &KeyIndex, generic: &SectionConfigData, id: &str) -> Result<bool, String> {
    match (
        index.get(id),
        generic.lookup::<CryptKey>(ENCRYPTION_KEYS_CFG_TYPE_ID, id),
    ) {
        (Ok(ours), Ok(serde)) if ours == &serde && ours.id == id => Ok(false),
        (Err(ours), Err(serde)) => {
            let (ours, serde) = (ours.to_string(), serde.to_string());
            match ours.ends_with(&serde) && ours.contains(&format!("'{id}'")) {
                true => Ok(true),
                false => Err(format!("'{id}': {ours} / {serde}")),
            }
        }
        (ours, serde) => Err(format!("'{id}': KeyIndex {ours:?}, serde {serde:?}")),
    }
}

/// In file order.
fn in_order(_: usize) -> usize {
    0
}

/// The text both readers see of a file (not UTF-8: with replacement
/// characters, which both must handle the same).
fn text_of(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned()
}

#[test]
fn every_vector_file_reads_as_the_generic_reader_reads_it() {
    let files = files_under(&vectors_dir());
    assert!(files.len() > 50, "too few vector files: {}", files.len());
    let (mut accepted, mut typed_errors, mut refused) = (0, 0, 0);
    for path in &files {
        let text = text_of(path);
        // as read, in the writer's layout (the fast path), and entries
        // asked for last to first
        let mut variants = vec![text.clone()];
        if let Ok(data) = CONFIG.parse(FILENAME, &text) {
            variants.push(CONFIG.write(FILENAME, &data).unwrap());
        }
        for (i, text) in variants.iter().enumerate() {
            for pick in [in_order as fn(usize) -> usize, |left| left - 1] {
                let outcome = agree(text, &mut { pick })
                    .unwrap_or_else(|err| panic!("{path:?} (variant {i}): {err}"));
                accepted += outcome.accepted;
                typed_errors += outcome.typed_errors;
                refused += 1 - outcome.accepted;
            }
        }
    }
    // both outcomes, and an entry only the type refuses, are exercised
    assert!(
        accepted >= 20 && refused >= 20 && typed_errors >= 2,
        "{accepted} / {refused} / {typed_errors}"
    );
}

#[test]
fn every_vector_file_with_a_line_dropped_or_repeated_reads_the_same() {
    let mut checked = 0;
    for path in files_under(&vectors_dir()) {
        let text = text_of(&path);
        if !text.contains("sync-key") {
            continue;
        }
        for (at, dropped, repeated) in one_line_edits(&text) {
            for text in [dropped, repeated] {
                agree(&text, &mut in_order)
                    .unwrap_or_else(|err| panic!("{path:?} line {at}: {err}\n{text:?}"));
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked}");
}

/// A config as the writer writes it: every property, an archived key, a
/// hint, and a key the typed form refuses (an unknown kdf).
const WRITTEN: &str = "sync-key: k-one\n\tarchived-at 7\n\tcreated 1\n\tfingerprint 5f:8c:44:1a:ec:af:bd:7d:80:69:6e:0a:47:9b:00:5c:1b:0d:57:c4:92:ee:ba:f0:be:9e:bc:7c:9d:7f:ef:f6\n\thint a hint\n\tkdf none\n\tmodified 2\n\tpath /etc/proxmox-backup/encryption-keys/k-one.enc\n\n\
    sync-key: k_2\n\tcreated -3\n\tkdf scrypt\n\tmodified 4\n\n\
    sync-key: k.3\n\tcreated 5\n\tkdf aes\n\tmodified 6\n";

#[test]
fn every_one_byte_change_of_a_written_config_reads_the_same() {
    // the written text takes the fast path, and so does many a change
    assert!(agree(WRITTEN, &mut in_order).unwrap().typed_errors == 1);
    let mut accepted = 0;
    for at in 0..WRITTEN.len() {
        let variants = one_byte_edits(WRITTEN.as_bytes(), at);
        for variant in variants {
            let text = String::from_utf8_lossy(&variant);
            let outcome = agree(&text, &mut |left| at % left)
                .unwrap_or_else(|err| panic!("byte {at}: {err}\n{text:?}"));
            accepted += outcome.accepted;
        }
    }
    assert!(accepted > 1000, "{accepted}");
}

/// A config of `keys` keys in the writer's layout, ids of differing
/// lengths (`k00` to `k2997`, and longer ones), as the writer writes them.
fn written_config(keys: usize) -> String {
    let mut data = SectionConfigData::new();
    for i in 0..keys {
        let id = match i % 3 {
            0 => format!("k{i:02}"),
            1 => format!("tenant-{i:06}"),
            _ => format!("backup.site-{i}_x"),
        };
        let text = format!(
            "sync-key: {id}\n\tcreated {i}\n\tkdf none\n\tmodified {}\n",
            i + 1
        );
        let section = CONFIG.parse(FILENAME, &text).unwrap();
        let (_, (kind, value)) = section.sections.into_iter().next().unwrap();
        data.set_data(&id, &kind, value).unwrap();
    }
    CONFIG.write(FILENAME, &data).unwrap()
}

/// A lookup of every id, and of ids that are not there or differ from
/// one in a byte (some of them another key's id), gives the generic
/// reader's entry of that id or its absence: through the scan's id table
/// (the writer's layout) and through the index's own (CRLF: the parser's
/// path), the first lookup before any other access.
#[test]
fn every_id_and_every_near_miss_is_looked_up_as_the_generic_reader_does() {
    let written = written_config(3_000);
    for text in [written.clone(), written.replace('\n', "\r\n")] {
        let index = KeyIndex::parse(Path::new(FILENAME), text.as_str()).unwrap();
        let generic = CONFIG.parse(FILENAME, &text).unwrap();
        let ids: Vec<String> = generic
            .ids_of_type(ENCRYPTION_KEYS_CFG_TYPE_ID)
            .map(str::to_string)
            .collect();
        assert_eq!(ids.len(), 3_000);
        let look_up = |id: &str| -> Result<bool, String> {
            if generic.sections.contains_key(id) {
                compare_entry(&index, &generic, id).map(|_| true)
            } else {
                match index.get(id) {
                    Err(err)
                        if matches!(
                            err.downcast_ref::<KeystoreError>(),
                            Some(KeystoreError::NotFound { id: missing }) if missing == id
                        ) =>
                    {
                        Ok(false)
                    }
                    other => Err(format!("'{id}' is not in the config: {other:?}")),
                }
            }
        };
        // last to first: the first lookup is not of the first id
        for id in ids.iter().rev() {
            assert_eq!(look_up(id), Ok(true));
        }
        let (mut found, mut absent) = (0, 0);
        for id in &ids {
            let bytes = id.as_bytes();
            let mut near: Vec<Vec<u8>> = vec![
                bytes[..bytes.len() - 1].to_vec(),
                [bytes, b"0"].concat(),
                [b"x", bytes].concat(),
            ];
            for at in 0..bytes.len() {
                for byte in [b'0', b'1', b'9', b'k', b'-', b'X'] {
                    let mut other = bytes.to_vec();
                    other[at] = byte;
                    near.push(other);
                }
            }
            for other in near {
                let other = String::from_utf8(other).unwrap();
                match look_up(&other) {
                    Ok(true) => found += 1,
                    Ok(false) => absent += 1,
                    Err(err) => panic!("{err}"),
                }
            }
        }
        // near misses that are other keys' ids, and absent ones
        assert!(found > 10_000 && absent > 100_000, "{found} / {absent}");
        for id in ["", "k", "k0", "sync-key", "k3000", "tenant-000000"] {
            assert_eq!(look_up(id), Ok(false), "{id}");
        }
    }
}

/// Lines a hand edit may leave in a config, valid and not.
const EDITS: &[&str] = &[
    "sync-key: k-one",
    "sync-key: k-new",
    "sync-key: ab",
    "sync-key: ../x",
    "sync-key:k-x",
    "sync-key:  k-y ",
    "other-key: k-z",
    "\tcreated 5",
    "\tcreated +05",
    "\tcreated -9223372036854775808",
    "\tcreated 9223372036854775808",
    "\tcreated 5x",
    "\tmodified 1",
    "\tarchived-at 0",
    "\tkdf none",
    "\tkdf pbkdf2",
    "\tkdf aes",
    "\tkdf ",
    "\thint a\u{e9}b",
    "\thint a b ",
    "\thint a\tb",
    "\tpath /x/encryption-keys/k.enc",
    "\tfingerprint 5F:8C:44:1A:EC:AF:BD:7D:80:69:6E:0A:47:9B:00:5C:1B:0D:57:C4:92:EE:BA:F0:BE:9E:BC:7C:9D:7F:EF:F6",
    "\tfingerprint 5f:8c:44:1a:ec:af:bd:7d:80:69:6e:0a:47:9b:00:5c:1b:0d:57:c4:92:ee:ba:f0:be:9e:bc:7c:9d:7f:ef:f",
    "\tfingerprint 5f:8c:44:1a:ec:af:bd:7d:80:69:6e:0a:47:9b:00:5c:1b:0d:57:c4:92:ee:ba:f0:be:9e:bc:7c:9d:7f:ef:fg",
    "\tid k-other",
    "\tcolor red",
    "    kdf none",
    "\t\tkdf none",
    "\t",
    " ",
    "",
    "# comment",
];

#[derive(Clone, Debug)]
enum Edit {
    /// Put this line of `EDITS` before line N.
    Insert(usize, usize),
    /// Replace line N with this line of `EDITS`.
    Replace(usize, usize),
    Remove(usize),
    /// Swap lines N and M.
    Swap(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let line = 0..EDITS.len();
    prop_oneof![
        (any::<usize>(), line.clone()).prop_map(|(at, line)| Edit::Insert(at, line)),
        (any::<usize>(), line).prop_map(|(at, line)| Edit::Replace(at, line)),
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Swap(a, b)),
    ]
}

/// Hint and path text: printable ASCII mostly (the fast path), and now
/// and then a character that is not.
fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,10}|[a-z\u{e9}]{1,4}".prop_filter("no outer whitespace", |s| s.trim() == s)
}

proptest! {
    #[test]
    fn written_configs_with_hand_edits_read_the_same(
        keys in proptest::collection::vec(
            crate::util::crypt_key_strategy("[a-c][a-c0-9_.-]{2,5}", text),
            0..6,
        ),
        edits in proptest::collection::vec(edit(), 0..4),
        crlf in proptest::bool::weighted(0.1),
        order in proptest::collection::vec(any::<usize>(), 8),
    ) {
        let mut data = SectionConfigData::new();
        for key in &keys {
            data.set_data(&key.id, ENCRYPTION_KEYS_CFG_TYPE_ID, key).unwrap();
        }
        let written = CONFIG.write(FILENAME, &data).unwrap();
        let mut lines: Vec<&str> = written.lines().collect();
        for edit in edits {
            let n = lines.len().max(1);
            match edit {
                Edit::Insert(at, line) => lines.insert(at % (lines.len() + 1), EDITS[line]),
                Edit::Replace(at, line) if !lines.is_empty() => lines[at % n] = EDITS[line],
                Edit::Remove(at) if !lines.is_empty() => {
                    lines.remove(at % n);
                }
                Edit::Swap(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
                _ => {}
            }
        }
        let text = lines.join(if crlf { "\r\n" } else { "\n" }) + "\n";
        let mut order = order.into_iter().cycle();
        let result = agree(&text, &mut |left| order.next().unwrap() % left);
        prop_assert!(result.is_ok(), "{}\n{:?}", result.err().unwrap_or_default(), text);
    }
}
