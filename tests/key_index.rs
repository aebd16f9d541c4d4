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
//!   same, or both refused;
//! - and per id of the text (and one that is not there), the entry a
//!   fresh process's load finds in the file read in chunks
//!   (`KeyIndex::find_entry`, chunks of several sizes, so cut at every
//!   place) is `KeyIndex::get`'s, its absence `get`'s, or left to the
//!   whole text's read: never an entry or an absence where the whole read
//!   refuses the text.
//!
//! Then the chunked read on its own: a config cut at every place, a
//! section across chunks, duplicates in different chunks, errors on lines
//! past a chunk, and the first load of a fresh `ConfigDir` (which reads
//! so) against the next load of the same (the whole read), value for
//! value and error for error.

use std::path::Path;

use proptest::prelude::*;

use pbs_api_types::CryptKey;
use pbs_config::encryption_keys::{CONFIG, ENCRYPTION_KEYS_CFG_TYPE_ID};
use pbs_config::{ConfigDir, FoundEntry, KeyIndex, KeystoreError, Ownership};
use proxmox_section_config::{FIND_CHUNK, SectionConfigData};

use pbs_test_kit::dirs::{files_under, vectors_dir};
use pbs_test_kit::edits::{one_byte_edits, one_line_edits};
use pbs_test_kit::key_config;

const FILENAME: &str = "/etc/proxmox-backup/encryption-keys.cfg";

/// What [`agree`] saw: whether both accepted the text, and how many
/// entries both refused.
#[derive(Default)]
struct Outcome {
    accepted: usize,
    typed_errors: usize,
    /// Lookups the chunked read decided.
    found: usize,
}

/// `KeyIndex` against the generic parse plus serde on `text`, entries
/// asked for in the order `pick` chooses (an index into the ids left).
fn agree(text: &str, pick: &mut dyn FnMut(usize) -> usize) -> Result<Outcome, String> {
    let found = find_agrees_for_every_id(text, &[1, 2, 5, 64, 257, FIND_CHUNK])?;
    let index = KeyIndex::parse(Path::new(FILENAME), text);
    let generic = CONFIG.parse(FILENAME, text);
    let (index, generic) = match (index, generic) {
        (Ok(index), Ok(generic)) => (index, generic),
        (Err(ours), Err(generic)) => {
            return match ours.to_string() == generic.to_string() {
                true => Ok(Outcome {
                    found,
                    ..Outcome::default()
                }),
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
        found,
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

/// `KeyIndex::find_entry` of `id` in `text` read in chunks of `chunk`
/// bytes against `KeyIndex::parse` of the whole text and `get`; whether
/// the chunked read decided. The same read through a source that gives 3
/// bytes a call must give the same.
fn find_agrees(text: &str, id: &str, chunk: usize) -> Result<bool, String> {
    let path = Path::new(FILENAME);
    let found = KeyIndex::find_entry(path, &mut text.as_bytes(), text.len(), id, chunk).unwrap();
    let trickled = KeyIndex::find_entry(path, &mut Trickle(text.as_bytes()), 0, id, chunk).unwrap();
    if format!("{found:?}") != format!("{trickled:?}") {
        return Err(format!(
            "'{id}', chunk {chunk}: {found:?} / by 3 bytes: {trickled:?}"
        ));
    }
    let whole = KeyIndex::parse(path, text);
    match (found, whole) {
        (FoundEntry::Undecided, _) => Ok(false),
        (FoundEntry::Entry(entry), Ok(index)) => match index.get(id) {
            Ok(got) if *got == entry && entry.id == id => Ok(true),
            got => Err(format!(
                "'{id}', chunk {chunk}: found {entry:?}, get {got:?}"
            )),
        },
        (FoundEntry::Absent, Ok(index)) => match index.get(id) {
            Err(err) if matches!(err.downcast_ref(), Some(KeystoreError::NotFound { .. })) => {
                Ok(true)
            }
            got => Err(format!("'{id}', chunk {chunk}: absent, get {got:?}")),
        },
        (found, Err(err)) => Err(format!(
            "'{id}', chunk {chunk}: found {found:?} where the whole read refuses: {err}"
        )),
    }
}

/// [`find_agrees`] for every id a header of `text` names and one that is
/// not there, in chunks of each size of `chunks`: how many it decided.
fn find_agrees_for_every_id(text: &str, chunks: &[usize]) -> Result<usize, String> {
    let mut ids: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("sync-key: "))
        .map(|id| id.trim_end_matches('\r'))
        .collect();
    ids.push("not-there");
    let mut found = 0;
    for id in ids {
        for &chunk in chunks {
            found += usize::from(find_agrees(text, id, chunk)?);
        }
    }
    Ok(found)
}

/// A source that gives at most 3 bytes a read.
struct Trickle<'a>(&'a [u8]);

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(3).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
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
    let (mut accepted, mut typed_errors, mut refused, mut found) = (0, 0, 0, 0);
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
                found += outcome.found;
            }
        }
    }
    // both outcomes, and an entry only the type refuses, are exercised,
    // and the chunked read decides many a lookup
    assert!(
        accepted >= 20 && refused >= 20 && typed_errors >= 2 && found >= 100,
        "{accepted} / {refused} / {typed_errors} / {found}"
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
    let written = agree(WRITTEN, &mut in_order).unwrap();
    assert!(written.typed_errors == 1 && written.found >= 3);
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

/// A config of 300 keys read in chunks of every size from 60 bytes (less
/// than a section: never decided) to 700 (several sections), so cut at
/// every place and with sections across chunks: the first, a middle, the
/// last id, one not there and near misses agree with the whole read, and
/// every chunk of two sections or more decides all of them.
#[test]
fn a_config_cut_at_every_place_reads_as_the_whole() {
    let text = written_config(300);
    let ids: Vec<String> = CONFIG
        .parse(FILENAME, &text)
        .unwrap()
        .ids_of_type(ENCRYPTION_KEYS_CFG_TYPE_ID)
        .map(str::to_string)
        .collect();
    let sections = || text.split("\n\n").map(str::len);
    let (shortest, longest) = (sections().min().unwrap(), sections().max().unwrap());
    let mut wanted: Vec<String> = [0, 1, 150, 298, 299].map(|i| ids[i].clone()).to_vec();
    wanted.extend(["not-there", "k0", "k000", "k3000"].map(str::to_string));
    for chunk in 30..=700 {
        for id in &wanted {
            let decided = find_agrees(&text, id, chunk).unwrap();
            // a section and its blank line fit in any chunk: decided
            if chunk > longest + 2 {
                assert!(decided, "'{id}', chunk {chunk}");
            }
            // none fits whole: left to the whole read
            if chunk <= shortest {
                assert!(!decided, "'{id}', chunk {chunk}");
            }
        }
    }
}

/// An id twice, in different chunks, is left to the whole read (which
/// refuses it, naming the line), for that id and every other.
#[test]
fn duplicates_in_different_chunks_are_left_to_the_whole_read() {
    let text = written_config(300);
    let first = text.split("\n\n").next().unwrap();
    for at in [text.len(), text.len() / 2] {
        let cut = text[..at].rfind("\n\n").map_or(text.len(), |end| end + 1);
        let doubled = format!("{}\n{first}\n{}", &text[..cut], &text[cut..]);
        let err = KeyIndex::parse(Path::new(FILENAME), doubled.as_str()).unwrap_err();
        assert!(err.to_string().contains("duplicate"), "{err}");
        for chunk in [512, 4096, FIND_CHUNK] {
            for id in ["k00", "k99", "tenant-000151", "not-there"] {
                assert!(!find_agrees(&doubled, id, chunk).unwrap());
            }
        }
    }
}

/// A value that does not pass on a line past the first chunks: left to
/// the whole read, whose error names the line.
#[test]
fn errors_past_a_chunk_are_left_to_the_whole_read() {
    let text = written_config(300);
    let at = text.rfind("\tcreated 297\n").unwrap();
    let line = text[..at].lines().count() + 1;
    for (bad, on) in [
        ("\tcreated x297\n", line),
        ("\tcreated 297\n\tcreated 297\n", line + 1),
        ("\tbogus 1\n", line),
    ] {
        let broken = format!("{}{bad}{}", &text[..at], &text[at + 13..]);
        let err = KeyIndex::parse(Path::new(FILENAME), broken.as_str())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("line {on} ")), "{err}");
        for chunk in [512, 4096, FIND_CHUNK] {
            for id in ["k00", "backup.site-296_x", "not-there"] {
                assert!(!find_agrees(&broken, id, chunk).unwrap(), "{bad:?}");
            }
        }
    }
}

/// The first load of a fresh `ConfigDir` (the chunked read) against the
/// next load of the same `ConfigDir` (the whole read, then cached), for
/// keys stored with their files, an archived one, an entry without a key
/// file, one the typed form refuses and an id not there, loading for
/// encryption and for decryption: the same key or the same error, word
/// for word; for the config as stored, with a duplicate id far from the
/// first and with an error on a line past the first chunk.
#[test]
fn a_fresh_config_dirs_first_load_is_the_next_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let own = Ownership::current_user().unwrap();
    let dir = ConfigDir::with_ownership(tmp.path(), own).unwrap();
    let keys = dir.encryption_keys();
    let stored = ["key-a", "key-b", "key-c"];
    for (seed, id) in stored.iter().enumerate() {
        keys.store_key(id, &key_config(seed as u64)).unwrap();
    }
    keys.archive_key("key-b", None).unwrap();
    let config = keys.config_path();
    let as_stored = std::fs::read_to_string(&config).unwrap();
    // 3,000 entries more (about 200 KB, several chunks), their files missing
    let filler = written_config(3_000);
    let with_filler =
        format!("{as_stored}\n{filler}\nsync-key: odd\n\tcreated 1\n\tkdf aes\n\tmodified 2\n");
    let key_b = as_stored
        .split("\n\n")
        .find(|s| s.contains("key-b"))
        .unwrap();
    let duplicate = format!("{with_filler}\n{key_b}\n");
    let late = with_filler.rfind("\tcreated 2997\n").unwrap();
    let broken = format!(
        "{}\tcreated x\n{}",
        &with_filler[..late],
        &with_filler[late + 14..]
    );
    let mut decided = 0;
    for text in [&as_stored, &with_filler, &duplicate, &broken] {
        std::fs::write(&config, text).unwrap();
        for id in stored.iter().copied().chain(["k00", "odd", "not-there"]) {
            decided += usize::from(find_agrees(text, id, FIND_CHUNK).unwrap());
            for fail_on_archived in [true, false] {
                let fresh = ConfigDir::with_ownership(tmp.path(), own).unwrap();
                let keys = fresh.encryption_keys();
                let first = keys.load_key(id, fail_on_archived);
                let next = keys.load_key(id, fail_on_archived);
                match (first, next) {
                    (Ok(first), Ok(next)) => assert!(first == next && first.0.id == id),
                    (Err(first), Err(next)) => assert_eq!(first.to_string(), next.to_string()),
                    (first, next) => panic!("'{id}': {first:?} / {next:?}"),
                }
            }
        }
    }
    // as stored and with the filler: every id decided by the chunked read
    // but the typed form's refusal
    assert_eq!(decided, 2 * 6 - 1);
}
