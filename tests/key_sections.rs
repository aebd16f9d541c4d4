//! `KeySections`, the writers' form of `encryption-keys.cfg`, against the
//! generic parse and write it replaces: the same files accepted and refused,
//! the same text written, for every vector (with every line dropped or
//! repeated), every one-byte change of a written config, messy hand-edited
//! text and after any sequence of edits. `check_against_generic` checks both
//! ways a parse takes (text kept as it is, or every section rendered again)
//! and that the text is kept exactly when it is what the generic write
//! gives: these tests also count that both ways are taken.

use std::path::Path;

use proptest::prelude::*;

use pbs_api_types::{CryptKey, Fingerprint};
use pbs_config::encryption_keys::{CONFIG, ENCRYPTION_KEYS_CFG_TYPE_ID};
use pbs_config::{KeySections, KeyTaken};
use proxmox_section_config::{Scanned, SectionConfigData};

use pbs_test_kit::dirs::{cases_with_suffix, files_under, vectors_dir};
use pbs_test_kit::edits::{one_byte_edits, one_line_edits};

const FILENAME: &str = "/etc/proxmox-backup/encryption-keys.cfg";

/// `check_against_generic` of `text`: whether it was kept as it is.
fn check(text: &str) -> bool {
    KeySections::check_against_generic(Path::new(FILENAME), text)
        .unwrap_or_else(|err| panic!("{err}\n{text:?}"))
}

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
        // a file that is not UTF-8 is refused before either parser sees it
        let Ok(text) = String::from_utf8(std::fs::read(path).unwrap()) else {
            continue;
        };
        KeySections::check_against_generic(Path::new(FILENAME), &text)
            .unwrap_or_else(|err| panic!("{path:?}: {err}"));
        accepted += usize::from(KeySections::parse(Path::new(FILENAME), &text).is_ok());
    }
    // both outcomes are exercised, not only refusals
    assert!(accepted >= 5, "only {accepted} of {} accepted", files.len());
}

/// Every vector file (as read, and as the generic write gives it), and
/// each with every line dropped or repeated: both ways of the parse agree
/// with the generic one, and what the generic write gives is kept as it is.
#[test]
fn every_vector_file_and_every_line_dropped_or_repeated_parse_as_generically() {
    let files = files_under(&vectors_dir());
    assert!(files.len() > 50, "too few vector files: {}", files.len());
    let (mut kept, mut rendered) = (0, 0);
    let mut count = |text: &str| match check(text) {
        true => kept += 1,
        false => rendered += usize::from(CONFIG.parse(FILENAME, text).is_ok()),
    };
    for path in &files {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        count(&text);
        if let Ok(data) = CONFIG.parse(FILENAME, &text) {
            let written = CONFIG.write(FILENAME, &data).unwrap();
            assert!(check(&written), "{path:?}: written text not kept");
        }
        if !text.contains("sync-key") {
            continue;
        }
        for (_, dropped, repeated) in one_line_edits(&text) {
            count(&dropped);
            count(&repeated);
        }
    }
    // accepted texts take both ways
    assert!(
        kept >= 20 && rendered >= 20,
        "{kept} kept, {rendered} rendered"
    );
}

/// A config as the writer writes it: every property, an archived key, a
/// hint, and a key the typed form refuses (an unknown kdf).
const WRITTEN: &str = "sync-key: k-one\n\tarchived-at 7\n\tcreated 1\n\tfingerprint 5f:8c:44:1a:ec:af:bd:7d:80:69:6e:0a:47:9b:00:5c:1b:0d:57:c4:92:ee:ba:f0:be:9e:bc:7c:9d:7f:ef:f6\n\thint a hint\n\tkdf none\n\tmodified 2\n\tpath /etc/proxmox-backup/encryption-keys/k-one.enc\n\n\
    sync-key: k_2\n\tcreated -3\n\tkdf scrypt\n\tmodified 4\n\n\
    sync-key: k.3\n\tcreated 0\n\tkdf aes\n\tmodified 6\n";

#[test]
fn every_one_byte_change_of_a_written_config_parses_as_generically() {
    assert!(check(WRITTEN));
    let sections = KeySections::parse(Path::new(FILENAME), WRITTEN).unwrap();
    assert_eq!(sections.ids().collect::<Vec<_>>(), ["k-one", "k_2", "k.3"]);
    let (mut kept, mut rendered) = (0, 0);
    for at in 0..WRITTEN.len() {
        let mut variants = one_byte_edits(WRITTEN.as_bytes(), at);
        let mut inserted = WRITTEN.as_bytes().to_vec();
        inserted.insert(at, b' ');
        variants.push(inserted);
        for variant in variants {
            let text = String::from_utf8_lossy(&variant);
            match check(&text) {
                true => kept += 1,
                false => rendered += usize::from(CONFIG.parse(FILENAME, &text).is_ok()),
            }
        }
    }
    assert!(
        kept > 500 && rendered > 100,
        "{kept} kept, {rendered} rendered"
    );
}

/// Hand edits the generic write undoes: accepted, rendered again, and
/// written as the generic write writes them (`check`); the written form
/// of each is kept as it is.
#[test]
fn text_not_as_written_is_rendered_again() {
    let one = "sync-key: k-one\n\tcreated 1\n\tkdf none\n\tmodified 2\n";
    for text in [
        "\n".to_string(),
        format!("\n{one}"),
        format!("{one}\n"),
        one.trim_end().to_string(),
        one.replace('\n', "\r\n"),
        one.replace("\tkdf none\n\tmodified 2", "\tmodified 2\n\tkdf none"),
        one.replace("created 1", "created +1"),
        one.replace("created 1", "created 01"),
        one.replace("created 1", "created  1"),
        one.replace("kdf none", "kdf none "),
        one.replace("kdf none", "kdf\u{a0}none"),
        one.replace("\tkdf", "  kdf"),
        one.replace("sync-key: k-one", "sync-key:k-one"),
        one.replace("sync-key: k-one", "sync-key:  k-one "),
        one.replace("\tcreated 1\n", "\tcreated 1\n\tid k-one\n"),
        format!("{one}\n\n{}", one.replace("k-one", "k-two")),
        format!("{one}\n \n{}", one.replace("k-one", "k-two")),
    ] {
        assert!(!check(&text), "{text:?} kept as it is");
        let sections = KeySections::parse(Path::new(FILENAME), text.as_str()).unwrap();
        assert!(check(&sections.render()), "{text:?}");
    }
    // values as parsed are written as they are, whatever their bytes
    for text in [
        one.replace("\tkdf", "\thint n\u{e9}\n\tkdf"),
        one.replace("\tkdf", "\thint \u{e9}\n\tkdf"),
        one.replace("\tkdf", "\thint a  b\n\tkdf"),
        one.replace("\tmodified 2\n", "\tmodified 2\n\tpath \n"),
    ] {
        assert!(check(&text), "{text:?} not kept");
    }
}

/// The scan tells the generic write's own text as such on its way (kept
/// without the comparison section by section), and none the write gives
/// otherwise: `check` fails where the scan tells a text whose generic write
/// differs, so each case below would fail if it were told.
#[test]
fn the_scan_tells_the_generic_writes_own_text_and_no_other() {
    let told = |text: &str| {
        matches!(
            CONFIG.scan_as_written(FILENAME, text, "fingerprint"),
            Ok(Scanned::AsWritten { .. })
        )
    };
    let one = "sync-key: k-one\n\tcreated 1\n\tkdf none\n\tmodified 2\n";
    let two = format!("{one}\n{}", one.replace("k-one", "k-two"));
    for text in [WRITTEN, one, &two, ""] {
        assert!(check(text) && told(text), "{text:?} not told as written");
    }
    for text in [
        // integers not in canonical form
        one.replace("created 1", "created +1"),
        one.replace("created 1", "created 01"),
        one.replace("modified 2", "modified -0"),
        // padded values
        one.replace("kdf none", "kdf none "),
        one.replace("created 1", "created  1"),
        one.replace("\tkdf", "\thint a \n\tkdf"),
        // blank lines: two between sections, one before, one after
        two.replace("\n\n", "\n\n\n"),
        format!("\n{two}"),
        format!("{two}\n"),
        "\n".to_string(),
        // no final line feed, CRLF
        two.trim_end().to_string(),
        two.replace('\n', "\r\n"),
    ] {
        assert!(!check(&text), "{text:?} kept as it is");
        assert!(!told(&text), "{text:?} told as written");
    }
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
    crate::util::crypt_key_strategy("[a-c][a-c0-9_.-]{2,5}", text)
}

/// The hand-written strategy (see `crypt_key_strategy`) against the schema:
/// every property is set by some value, and every optional one is left out
/// by some other.
#[test]
fn the_crypt_key_strategy_sets_every_schema_property() {
    use std::collections::BTreeSet;

    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use proxmox_schema::ApiType;

    let properties: Vec<(&str, bool)> = CryptKey::API_SCHEMA
        .any_object()
        .unwrap()
        .properties()
        .map(|(name, optional, _)| (*name, *optional))
        .collect();
    let mut set = BTreeSet::new();
    let mut left_out = BTreeSet::new();
    let mut runner = TestRunner::deterministic();
    for _ in 0..256 {
        let key = crypt_key().new_tree(&mut runner).unwrap().current();
        let value = serde_json::to_value(&key).unwrap();
        CryptKey::API_SCHEMA.verify_json(&value).unwrap();
        for (name, _) in &properties {
            match value.get(name) {
                Some(_) => set.insert(*name),
                None => left_out.insert(*name),
            };
        }
    }
    let all: BTreeSet<&str> = properties.iter().map(|(name, _)| *name).collect();
    let optional: BTreeSet<&str> = properties
        .iter()
        .filter(|(_, optional)| *optional)
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(set, all);
    assert_eq!(left_out, optional);
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
/// spaces instead of tabs, padding, CRLF, extra blank lines, `+0` integers,
/// upper-case fingerprints.
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
                _ if seed & 32 != 0 && key == "fingerprint" => value.to_uppercase(),
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

/// The id of the first key in `data` with `fingerprint`, as the generic
/// parse gives them.
fn holder_of(data: &SectionConfigData, fingerprint: &Fingerprint) -> Option<String> {
    data.ids_of_type(ENCRYPTION_KEYS_CFG_TYPE_ID)
        .find(|id| {
            let entry: CryptKey = data.lookup(ENCRYPTION_KEYS_CFG_TYPE_ID, id).unwrap();
            entry.info.fingerprint.as_ref() == Some(fingerprint)
        })
        .map(str::to_string)
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
        let written = CONFIG.write(path, &data).unwrap();
        prop_assert!(KeySections::check_against_generic(path, &written).unwrap(), "{:?}", written);
        let text = mess_up(&written, seed);
        prop_assert!(KeySections::check_against_generic(path, &text).is_ok(), "{:?}", text);

        let mut generic = CONFIG.parse(path, &text).unwrap();
        let mut ours = KeySections::parse(path, &text).unwrap();
        for key in &keys {
            let Some(fingerprint) = &key.info.fingerprint else { continue };
            let expected = holder_of(&generic, fingerprint);
            prop_assert_eq!(ours.find_fingerprint(fingerprint), expected.as_deref());
            prop_assert_eq!(ours.taken_by(&key.id, fingerprint), Some(KeyTaken::Id));
            let expected = expected.as_deref().map(KeyTaken::Fingerprint);
            prop_assert_eq!(ours.taken_by("not-a-key-id", fingerprint), expected);
        }
        for (i, edit) in edits.into_iter().enumerate() {
            match edit {
                Edit::Set(key) => {
                    let is_new = !generic.sections.contains_key(&key.id);
                    if let Some(fingerprint) = &key.info.fingerprint {
                        // what a store of it would be refused for
                        let holder = holder_of(&generic, fingerprint);
                        let expected = match is_new {
                            false => Some(KeyTaken::Id),
                            true => holder.as_deref().map(KeyTaken::Fingerprint),
                        };
                        prop_assert_eq!(ours.taken_by(&key.id, fingerprint), expected);
                    }
                    generic.set_data(&key.id, ENCRYPTION_KEYS_CFG_TYPE_ID, &key).unwrap();
                    match is_new && seed & 64 != 0 {
                        true => ours.add(&key).unwrap(),
                        false => ours.set(&key).unwrap(),
                    }
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
            let expected = CONFIG.write(path, &generic).unwrap();
            prop_assert_eq!(ours.render(), expected.as_str());
            // the text a write takes (made the sections' own), after some
            // edits: later edits and lookups work on it as on the text read
            if (i + usize::from(seed)) % 2 == 0 {
                prop_assert_eq!(ours.text_to_write(), expected.as_str());
                prop_assert!(ours.is_text_of(&expected));
            }
        }
        // what a writer wrote is kept as it is by the next one
        let rendered = ours.render();
        prop_assert!(KeySections::check_against_generic(path, &rendered).unwrap(), "{:?}", rendered);
    }
}

#[test]
fn is_text_of_compares_every_byte() {
    let path = Path::new(FILENAME);
    let text = "sync-key: k-one\n\tcreated 1\n\tkdf none\n\tmodified 2\n\n\
                sync-key: k-two\n\tcreated 3\n\tkdf none\n\tmodified 4\n";
    let sections = KeySections::parse(path, text).unwrap();
    assert!(sections.is_text_of(text));
    assert!(sections.is_text_of(&sections.render()));
    for changed in [
        text.replace("created 3", "created 5"),
        format!("{text}\n"),
        text.trim_end().to_string(),
        text.replace("\n\n", "\n\n\n"),
        String::new(),
    ] {
        assert!(!sections.is_text_of(&changed), "{changed:?}");
    }
    assert!(KeySections::default().is_text_of(""));
}

/// A writer reuses what its process wrote last only while the file holds
/// exactly that text: changes by another process, and an in-place edit of
/// the same size (same inode, maybe the same mtime), survive its next write.
#[test]
fn a_writer_never_writes_over_changes_it_did_not_make() {
    use pbs_test_kit::key_config;

    let tmp = tempfile::tempdir().unwrap();
    let ours = pbs_config::ConfigDir::new(tmp.path()).unwrap();
    let other = pbs_config::ConfigDir::new(tmp.path()).unwrap();
    ours.encryption_keys()
        .store_key("k-one", &key_config(1))
        .unwrap();
    ours.encryption_keys()
        .store_key("k-two", &key_config(2))
        .unwrap();

    // another process (another ConfigDir, its own caches) archives k-one
    other.encryption_keys().archive_key("k-one", None).unwrap();
    ours.encryption_keys()
        .store_key("k-three", &key_config(3))
        .unwrap();
    let keys = ours.encryption_keys();
    assert!(keys.entry("k-one").unwrap().archived_at.is_some());

    // an in-place edit keeping the size: k-two's created time, one digit
    let cfg = tmp.path().join("encryption-keys.cfg");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let created = keys.entry("k-two").unwrap().info.created;
    let edited_created = if created % 10 == 9 {
        created - 1
    } else {
        created + 1
    };
    let marker = format!("sync-key: k-two\n\tcreated {created}\n");
    assert!(text.contains(&marker), "{text}");
    let edited = text.replace(
        &marker,
        &format!("sync-key: k-two\n\tcreated {edited_created}\n"),
    );
    assert_eq!(edited.len(), text.len());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cfg)
        .and_then(|mut file| std::io::Write::write_all(&mut file, edited.as_bytes()))
        .unwrap();

    keys.store_key("k-four", &key_config(4)).unwrap();
    assert_eq!(keys.entry("k-two").unwrap().info.created, edited_created);
    let ids: Vec<String> = keys
        .list_keys(true)
        .unwrap()
        .0
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, ["k-one", "k-two", "k-three", "k-four"]);
}
