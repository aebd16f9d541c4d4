//! Stores of new keys by threads of one process through views of one
//! config dir (`with_caller`), queued while the config lock is held, so
//! that they are made in one batch (group commit,
//! `pbs_config::group_commit`): the same results as the same stores one
//! after the other, each refusal its own, each record by its own caller;
//! and a config write that fails puts every key of the batch into the
//! trash.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Error;
use serde_json::Value;

use pbs_api_types::CryptKey;
use pbs_config::audit::Caller;
use pbs_config::trash::{TrashEntry, TrashReason};
use pbs_config::{ConfigDir, KeystoreError};

use pbs_test_kit::dirs::audit_log_json;
use pbs_test_kit::privileges::root_or_skip;
use pbs_test_kit::{TestDir, key_config};

/// How long a test waits for the threads it started: far longer than they
/// need, so that only a hang fails it (the stores wait for the config lock
/// as long, so that none gives up while the test holds it).
const DEADLINE: Duration = Duration::from_secs(120);

/// The client address every caller's records name.
const CLIENT: &str = "192.0.2.7";

/// One store of a new key: who asks, under which id, which key.
#[derive(Clone, Copy, Debug)]
struct Store {
    who: &'static str,
    id: &'static str,
    seed: u64,
}

const fn store(who: &'static str, id: &'static str, seed: u64) -> Store {
    Store { who, id, seed }
}

impl Store {
    fn actor(&self) -> String {
        format!("{}@pbs", self.who)
    }

    /// Stores the key through a view of `config` that acts for `who`.
    fn make(&self, config: &ConfigDir) -> Result<CryptKey, Error> {
        let caller = Caller::api(self.actor().parse().unwrap(), CLIENT.parse().unwrap());
        config
            .with_caller(caller)
            .lock_timeout(DEADLINE)
            .encryption_keys()
            .store_key(self.id, &key_config(self.seed))
    }

    fn fingerprint(&self) -> String {
        key_config(self.seed).fingerprint.unwrap().signature()
    }

    /// Its key loads from the store in `config` under its id.
    #[track_caller]
    fn assert_loads(&self, config: &ConfigDir) {
        let loaded = config
            .encryption_keys()
            .load_key_config(self.id, false)
            .unwrap();
        assert_eq!(loaded.fingerprint.unwrap().signature(), self.fingerprint());
    }
}

/// Waits until `done` holds, polling, or fails the test naming `what`.
#[track_caller]
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Makes `leading` and `stores` on threads of their own while this thread
/// holds the config lock: one of `leading` leads a batch of itself alone
/// (it waits for the lock), the other waits first in the next batch, then
/// `stores` join that batch one by one, in their order. Once all of them
/// wait, the lock is let go. Returns the results of `leading`, then of
/// `stores`.
fn in_one_batch(
    config: &ConfigDir,
    leading: [Store; 2],
    stores: &[Store],
) -> Vec<Result<CryptKey, Error>> {
    let lock = config.encryption_keys().lock_config().unwrap();
    std::thread::scope(|scope| {
        let mut threads = Vec::new();
        for store in leading {
            threads.push(scope.spawn(move || store.make(config)));
        }
        wait_until("one store leads a batch and one waits", || {
            config.new_key_stores_waiting() == 1
        });
        for (at, store) in stores.iter().enumerate() {
            threads.push(scope.spawn(move || store.make(config)));
            wait_until(&format!("{store:?} waits for the batch"), || {
                config.new_key_stores_waiting() == at + 2
            });
        }
        drop(lock);
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

fn text(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap_or_default().to_string()
}

/// Checks that `intent` and `outcome` are the records of `store`, its
/// outcome `ok` (`failed`: `None`) or an error containing `failed`.
#[track_caller]
fn assert_pair(intent: &Value, outcome: &Value, store: &Store, failed: Option<&str>) {
    let what = format!("{store:?}: {intent:#} {outcome:#}");
    assert_eq!(text(intent, "phase"), "intent", "{what}");
    assert_eq!(text(outcome, "phase"), "outcome", "{what}");
    assert_eq!(outcome["intent"], intent["seq"], "{what}");
    for record in [intent, outcome] {
        assert_eq!(text(record, "op"), "import", "{what}");
        assert_eq!(record["ids"], serde_json::json!([store.id]), "{what}");
        assert_eq!(
            record["fingerprints"],
            serde_json::json!([store.fingerprint()]),
            "{what}"
        );
        assert_eq!(text(record, "actor"), store.actor(), "{what}");
        assert_eq!(text(record, "origin"), format!("api {CLIENT}"), "{what}");
    }
    let result = text(outcome, "result");
    match failed {
        None => assert_eq!(result, "ok", "{what}"),
        Some(error) => assert!(result != "ok" && result.contains(error), "{what}"),
    }
}

/// A config dir with the key `existing` (seed 1) and a file that is not a
/// key where the key file of `squatted` would go.
fn prepared() -> TestDir {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("existing", &key_config(1)).unwrap();
    std::fs::write(keys.key_path("squatted"), b"not a key, not ours\n").unwrap();
    dir
}

/// The stores of the batch, in the order they are asked, and what a
/// store of each one after the other gives.
const LEADING: [Store; 2] = [store("pat", "lead-one", 20), store("quinn", "lead-two", 21)];
const STORES: [Store; 7] = [
    store("alice", "alpha", 10),
    // the same id twice
    store("bob", "alpha", 11),
    // the same key under two ids
    store("carol", "beta", 10),
    // a file in the key file's place
    store("dave", "squatted", 12),
    store("erin", "gamma", 13),
    // a key stored before the batch, under another id
    store("frank", "delta", 1),
    store("grace", "epsilon", 14),
];
const STORED: [&str; 3] = ["alpha", "gamma", "epsilon"];

fn keystore_error(err: &Error) -> Option<&KeystoreError> {
    err.chain().find_map(|e| e.downcast_ref::<KeystoreError>())
}

/// `result` as the test compares it: the stored key's id and fingerprint,
/// or the error's text with the config dir `dir` spelt `DIR`.
fn outcome(result: &Result<CryptKey, Error>, dir: &Path) -> String {
    match result {
        Ok(entry) => format!("stored '{}' {:?}", entry.id, entry.info.fingerprint),
        Err(err) => format!("{err:#}").replace(&dir.display().to_string(), "DIR"),
    }
}

/// The keys listed, with their fingerprints.
fn listed(dir: &TestDir) -> Vec<(String, String)> {
    let (keys, _) = dir.config.encryption_keys().list_keys(true).unwrap();
    let mut keys: Vec<(String, String)> = keys
        .into_iter()
        .map(|key| (key.id, key.info.fingerprint.unwrap().signature()))
        .collect();
    keys.sort();
    keys
}

/// Stores queued at once are made in one batch, with the results of the
/// same stores one after the other: the second store of an id refused as
/// existing, the second of a key refused naming the first id, a store
/// whose key file place holds a file refused alone; every other key
/// stored, listed with its fingerprint, loadable. The log has one intent
/// and one outcome for each store made, by its own caller (the batch's
/// intents together, then their outcomes); the refused ones record nothing.
#[test]
fn a_batch_gives_the_results_of_the_same_stores_one_after_the_other() {
    let batched = prepared();
    let before = audit_log_json(batched.path()).len();
    let results = in_one_batch(&batched.config, LEADING, &STORES);

    let one_by_one = prepared();
    let expected: Vec<Result<CryptKey, Error>> = LEADING
        .iter()
        .chain(&STORES)
        .map(|store| store.make(&one_by_one.config))
        .collect();
    for ((store, got), want) in LEADING.iter().chain(&STORES).zip(&results).zip(&expected) {
        assert_eq!(
            outcome(got, batched.path()),
            outcome(want, one_by_one.path()),
            "{store:?}"
        );
    }

    assert_each_result(&results, batched.path());
    assert_stored(&batched);
    assert_eq!(listed(&one_by_one), listed(&batched));
    let log = audit_log_json(batched.path())[before..].to_vec();
    assert_batch_records(&log, &results);

    // one after the other: the same records, each intent followed by its
    // outcome
    let sequential = audit_log_json(one_by_one.path())[before..].to_vec();
    for pair in sequential.chunks(2) {
        assert_eq!(text(&pair[0], "phase"), "intent", "{pair:#?}");
        assert_eq!(pair[1]["intent"], pair[0]["seq"], "{pair:#?}");
    }
    assert_eq!(unordered(&log), unordered(&sequential));
}

/// What each store of a batch of [`LEADING`] and [`STORES`] gave, in words.
fn assert_each_result(results: &[Result<CryptKey, Error>], dir: &Path) {
    for (store, result) in LEADING.iter().chain(&STORES).zip(results) {
        let what = format!("{store:?}: {}", outcome(result, dir));
        match store.who {
            "bob" => assert!(
                matches!(keystore_error(result.as_ref().unwrap_err()),
                    Some(KeystoreError::AlreadyExists { id }) if id == "alpha"),
                "{what}"
            ),
            "carol" | "frank" => {
                let first = if store.who == "carol" {
                    "alpha"
                } else {
                    "existing"
                };
                let err = result.as_ref().unwrap_err();
                assert!(
                    matches!(keystore_error(err),
                        Some(KeystoreError::DuplicateFingerprint { existing_id, .. })
                            if existing_id == first),
                    "{what}"
                );
                assert!(err.to_string().contains(&format!("'{first}'")), "{what}");
            }
            "dave" => {
                let text = format!("{:#}", result.as_ref().unwrap_err());
                assert!(text.contains("exists already"), "{what}");
                assert!(text.contains("squatted.enc"), "{what}");
            }
            _ => {
                let entry = result.as_ref().unwrap();
                assert_eq!(entry.id, store.id, "{what}");
                assert_eq!(
                    entry.info.fingerprint.unwrap().signature(),
                    store.fingerprint(),
                    "{what}"
                );
            }
        }
    }
}

/// The keys stored in `dir` by [`prepared`] and a batch of [`LEADING`] and
/// [`STORES`]: listed with their fingerprints, loadable; the file in the
/// way untouched, no key file of a refused store.
fn assert_stored(dir: &TestDir) {
    let made = STORES
        .iter()
        .filter(|s| STORED.contains(&s.id) && s.who != "bob");
    let mut want: Vec<(String, String)> = LEADING
        .iter()
        .chain(made)
        .map(|s| (s.id.to_string(), s.fingerprint()))
        .collect();
    want.push((
        "existing".to_string(),
        key_config(1).fingerprint.unwrap().signature(),
    ));
    want.sort();
    assert_eq!(listed(dir), want);
    let keys = dir.config.encryption_keys();
    for (id, fingerprint) in &want {
        let loaded = keys.load_key_config(id, false).unwrap();
        assert_eq!(
            &loaded.fingerprint.unwrap().signature(),
            fingerprint,
            "{id}"
        );
    }
    assert_eq!(
        std::fs::read(keys.key_path("squatted")).unwrap(),
        b"not a key, not ours\n"
    );
    assert!(!keys.key_path("beta").exists() && !keys.key_path("delta").exists());
}

/// The records `log` of a batch of [`LEADING`] and [`STORES`] with
/// `results`: the lone batch's pair, then the intents of the batch of
/// several together, then their outcomes, each by its own caller; nothing
/// of a refused store.
fn assert_batch_records(log: &[Value], results: &[Result<CryptKey, Error>]) {
    let made: Vec<&Store> = STORES
        .iter()
        .zip(&results[2..])
        .filter_map(|(store, result)| result.is_ok().then_some(store))
        .collect();
    assert_eq!(made.iter().map(|s| s.id).collect::<Vec<_>>(), STORED);
    assert_eq!(log.len(), 2 * (2 + made.len()), "{log:#?}");
    let first = LEADING.iter().find(|s| log[0]["ids"][0] == s.id).unwrap();
    assert_pair(&log[0], &log[1], first, None);
    let second = LEADING.iter().find(|s| s.id != first.id).unwrap();
    let batch: Vec<&Store> = std::iter::once(second).chain(made).collect();
    let (intents, outcomes) = log[2..].split_at(batch.len());
    for ((store, intent), outcome) in batch.iter().zip(intents).zip(outcomes) {
        assert_pair(intent, outcome, store, None);
    }
    for record in log {
        let actor = text(record, "actor");
        assert!(
            !["bob@pbs", "carol@pbs", "dave@pbs", "frank@pbs"].contains(&actor.as_str()),
            "a refused store left a record: {record:#}"
        );
    }
}

/// Who, of which ids, which phase and result each record is, in no order.
fn unordered(records: &[Value]) -> Vec<(String, String, String, String)> {
    let mut kept: Vec<_> = records
        .iter()
        .map(|r| {
            (
                text(r, "actor"),
                r["ids"].to_string(),
                text(r, "phase"),
                text(r, "result"),
            )
        })
        .collect();
    kept.sort();
    kept
}

/// A bind mount of a file over itself, unmounted on drop: reads see the
/// file as it is; a rename over it fails (`EBUSY`), as a config write's
/// does on a device that fails it.
struct Pinned(PathBuf);

impl Pinned {
    fn new(path: &Path) -> Self {
        let status = Command::new("mount")
            .arg("--bind")
            .arg(path)
            .arg(path)
            .status()
            .expect("unable to run mount");
        assert!(
            status.success(),
            "bind-mounting {path:?} over itself failed"
        );
        Self(path.to_owned())
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // lazily: the config dir's caches may hold the file open
        let status = Command::new("umount").arg("--lazy").arg(&self.0).status();
        if !matches!(status, Ok(status) if status.success()) && !std::thread::panicking() {
            panic!("unmounting {:?} failed: {status:?}", self.0);
        }
    }
}

/// A config write that fails in a batch (the config file cannot be
/// replaced: a bind mount over it) puts every key of the batch into the
/// trash, reason `store-failed`, each recorded as its own caller's, and
/// each caller's error names the trash entry its key went into. The config
/// lists none of them, no key file of theirs is left in the key directory,
/// each store's intent has a failed outcome, and every key comes back from
/// the trash whole.
#[test]
fn a_failing_config_write_puts_every_key_of_the_batch_into_the_trash() {
    if !root_or_skip("bind-mounting the config file over itself") {
        return;
    }
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("existing", &key_config(1)).unwrap();
    let config_file = dir.path().join("encryption-keys.cfg");
    let config_before = std::fs::read(&config_file).unwrap();
    let before = audit_log_json(dir.path()).len();

    let pinned = Pinned::new(&config_file);
    let results = all_at_once(&dir.config, &FAILING);
    drop(pinned);

    assert_eq!(std::fs::read(&config_file).unwrap(), config_before);
    assert_eq!(
        listed(&dir),
        [(
            "existing".to_string(),
            key_config(1).fingerprint.unwrap().signature()
        )]
    );
    let names = assert_each_in_the_trash(&dir, &results);
    // nothing of a key that is not stored is left: not its lock file either
    let keys = dir.config.encryption_keys();
    for store in &FAILING {
        assert!(
            !keys.key_lock_path(store.id).exists(),
            "{store:?}: its lock file is left"
        );
    }

    // one intent and one failed outcome each, by its own caller: the lone
    // store's pair, then the intents of the batch of four, then their
    // outcomes
    let log = audit_log_json(dir.path())[before..].to_vec();
    assert_eq!(log.len(), 2 * FAILING.len(), "{log:#?}");
    let phases: Vec<String> = log.iter().map(|r| text(r, "phase")).collect();
    let batch = FAILING.len() - 1;
    let mut layout = vec!["intent", "outcome"];
    layout.extend(std::iter::repeat_n("intent", batch));
    layout.extend(std::iter::repeat_n("outcome", batch));
    assert_eq!(phases, layout, "{log:#?}");
    for store in &FAILING {
        let mine: Vec<&Value> = log
            .iter()
            .filter(|r| text(r, "actor") == store.actor())
            .collect();
        assert_eq!(mine.len(), 2, "{store:?}: {mine:#?}");
        assert_pair(mine[0], mine[1], store, Some("encryption-keys.cfg"));
    }

    // nothing lost: each key comes back from the trash as it was
    for (store, name) in FAILING.iter().zip(&names) {
        keys.trash().restore(name, None).unwrap();
        store.assert_loads(&dir.config);
    }
}

/// The stores whose config write fails.
const FAILING: [Store; 5] = [
    store("alice", "one", 31),
    store("bob", "two", 32),
    store("carol", "three", 33),
    store("dave", "four", 34),
    store("erin", "five", 35),
];

/// Makes `stores` on threads of their own while this thread holds the
/// config lock: one of them leads a batch of itself alone, the others wait
/// for the next batch (in no order the test sets). Once all of them wait,
/// the lock is let go. Returns their results.
fn all_at_once(config: &ConfigDir, stores: &[Store]) -> Vec<Result<CryptKey, Error>> {
    let lock = config.encryption_keys().lock_config().unwrap();
    std::thread::scope(|scope| {
        let threads: Vec<_> = stores
            .iter()
            .map(|store| scope.spawn(move || store.make(config)))
            .collect();
        wait_until("all but one store wait for a batch", || {
            config.new_key_stores_waiting() == stores.len() - 1
        });
        drop(lock);
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// Each of [`FAILING`] failed with `results`, its error naming the trash
/// entry its key went into: reason `store-failed`, its own caller, its
/// key's fingerprint; no key file of it left in the key directory. Returns
/// the entries' names.
fn assert_each_in_the_trash(dir: &TestDir, results: &[Result<CryptKey, Error>]) -> Vec<String> {
    let keys = dir.config.encryption_keys();
    let trash = keys.trash().list().unwrap();
    assert!(trash.incomplete.is_empty(), "{:?}", trash.incomplete);
    assert_eq!(trash.entries.len(), FAILING.len(), "{:#?}", trash.entries);
    let mut names = Vec::new();
    for (store, result) in FAILING.iter().zip(results) {
        let text = match result {
            Ok(entry) => panic!("{store:?} stored with its config write failing: {entry:?}"),
            Err(err) => format!("{err:#}"),
        };
        let what = format!("{store:?}: {text}");
        assert!(
            text.starts_with(&format!("failed to store encryption key '{}'", store.id)),
            "{what}"
        );
        assert!(text.contains("encryption-keys.cfg"), "{what}");
        let entry: &TrashEntry = trash
            .entries
            .iter()
            .find(|entry| entry.record.id == store.id)
            .unwrap_or_else(|| panic!("{what}: not in the trash"));
        assert!(
            text.contains(&format!("moved into the trash as '{}'", entry.name)),
            "{what}"
        );
        assert_eq!(entry.record.reason, TrashReason::StoreFailed, "{what}");
        assert_eq!(
            entry.record.actor.as_deref(),
            Some(store.actor().as_str()),
            "{what}"
        );
        assert_eq!(
            entry.record.fingerprint.map(|fp| fp.signature()),
            Some(store.fingerprint()),
            "{what}"
        );
        assert!(!keys.key_path(store.id).exists(), "{what}");
        names.push(entry.name.clone());
    }
    names
}

/// A store refused because an earlier store of the same batch took its id
/// or its key is told the truth when that earlier store then fails (here:
/// the config write): not that the id exists or that the key is stored
/// under the other id (it is in the trash, not stored), but that the other
/// store failed and to try again. The key it asked to store, and the one
/// it collided with, are each in the trash or nowhere, never claimed
/// stored.
#[test]
fn a_store_refused_for_an_earlier_store_of_its_batch_that_failed_is_told_so() {
    if !root_or_skip("bind-mounting the config file over itself") {
        return;
    }
    let dir = TestDir::new();
    let config_file = dir.path().join("encryption-keys.cfg");
    dir.config
        .encryption_keys()
        .store_key("existing", &key_config(1))
        .unwrap();

    let pinned = Pinned::new(&config_file);
    let results = in_one_batch(&dir.config, LEADING, &COLLIDING);
    drop(pinned);

    let [_, _, first, same_key, same_id] = &results[..] else {
        panic!("{results:?}");
    };
    let first = first
        .as_ref()
        .expect_err("the config write fails")
        .to_string();
    assert!(first.contains("moved into the trash"), "{first}");
    for (store, result) in COLLIDING[1..].iter().zip([same_key, same_id]) {
        let text = match result {
            Ok(entry) => panic!("{store:?} stored: {entry:?}"),
            Err(err) => err.to_string(),
        };
        let what = format!("{store:?}: {text}");
        assert!(
            !text.contains("already stored") && !text.contains("already exists"),
            "{what}"
        );
        assert!(
            text.contains("made at the same time failed") && text.contains("try again"),
            "{what}"
        );
        // its own id, no other: for the same key under another id, the
        // other store was another caller's, and it stored nothing
        assert_eq!(
            text.contains("'colliding'"),
            store.id == "colliding",
            "{what}"
        );
        assert!(
            keystore_error(result.as_ref().unwrap_err()).is_none(),
            "{what}: no longer the refusal it was"
        );
    }
    // and trying again stores them
    for store in &COLLIDING[1..] {
        store.make(&dir.config).unwrap();
        store.assert_loads(&dir.config);
    }
}

/// A store, then one of the same key under another id, then one of
/// another key under the first one's id: in one batch, the second and
/// third are refused for the first.
const COLLIDING: [Store; 3] = [
    store("frank", "colliding", 51),
    store("grace", "same-key", 51),
    store("heidi", "colliding", 52),
];

// Review of the group commit (stop 37): what a batch tells a caller about
// the stores made beside its own, and how long a store waits for a batch.

/// [`Store::make`] with `timeout` as the view's lock timeout.
fn make_with_timeout(
    store: &Store,
    config: &ConfigDir,
    timeout: Duration,
) -> Result<CryptKey, Error> {
    let caller = Caller::api(store.actor().parse().unwrap(), CLIENT.parse().unwrap());
    config
        .with_caller(caller)
        .lock_timeout(timeout)
        .encryption_keys()
        .store_key(store.id, &key_config(store.seed))
}

/// The stores of a batch whose config write fails: the first key of the
/// batch, then the same key under another id, then another key under the
/// first key's id. One after the other, each fails its config write (its
/// key goes into the trash); none is refused, for nothing is stored.
const REFUSING_LEADING: [Store; 2] = [store("pat", "lead-one", 50), store("quinn", "lead-two", 51)];
const REFUSING: [Store; 3] = [
    store("alice", "one", 52),
    // the same key as alice's, under another id
    store("bob", "two", 52),
    // another key under alice's id
    store("carol", "one", 53),
];

/// A store refused within a batch because of an earlier key of the same
/// batch (its id taken, or its key stored under another id) is told that
/// key is stored. That must hold once the batch is done: here the earlier
/// key's store fails (the config write fails, a bind mount over the config
/// file), and yet the later ones are refused naming it, "a key with
/// fingerprint ... is already stored as 'one'", while the store has no
/// key 'one'. One after the other, they would fail as the first did, each
/// key into the trash. An import so refused tells its caller the key is
/// safe in the store when it is not (north star: the caller may discard
/// the only copy). Also: an error of the step the batch shares names no
/// other caller's key.
#[test]
fn a_refusal_for_an_earlier_key_of_the_batch_names_only_a_key_that_is_stored() {
    if !root_or_skip("bind-mounting the config file over itself") {
        return;
    }
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("existing", &key_config(1)).unwrap();
    let config_file = dir.path().join("encryption-keys.cfg");

    let pinned = Pinned::new(&config_file);
    let results = in_one_batch(&dir.config, REFUSING_LEADING, &REFUSING);
    drop(pinned);

    let stored: Vec<String> = listed(&dir).into_iter().map(|(id, _)| id).collect();
    assert_eq!(stored, ["existing"]);
    let all: Vec<&Store> = REFUSING_LEADING.iter().chain(&REFUSING).collect();
    let mut told_stored = Vec::new();
    for (store, result) in all.iter().zip(&results) {
        let err = match result {
            Ok(entry) => panic!("{store:?} stored with its config write failing: {entry:?}"),
            Err(err) => err,
        };
        let text = format!("{err:#}");
        let named = match keystore_error(err) {
            Some(KeystoreError::AlreadyExists { id }) => Some(id.clone()),
            Some(KeystoreError::DuplicateFingerprint { existing_id, .. }) => {
                Some(existing_id.clone())
            }
            _ => None,
        };
        match named {
            Some(id) if !stored.contains(&id) => {
                told_stored.push(format!("{} was told '{id}' is stored: {text}", store.who))
            }
            Some(_) => {}
            // a failure of the step the batch shares: it names its own
            // key, no other caller's
            None => {
                for other in all.iter().filter(|other| other.id != store.id) {
                    assert!(
                        !text.contains(&format!("'{}'", other.id)),
                        "{store:?}: its error names {other:?}'s key: {text}"
                    );
                }
            }
        }
    }
    assert!(
        told_stored.is_empty(),
        "refused for a key of the batch that is not stored (the store lists {stored:?}):\n{}",
        told_stored.join("\n")
    );
}

/// How long the test below waits for a store whose lock timeout is
/// [`IMPATIENT`] to give up: far longer than that, far shorter than the
/// lock timeout of the stores before it ([`DEADLINE`]).
const GIVE_UP_DEADLINE: Duration = Duration::from_secs(30);
const IMPATIENT: Duration = Duration::from_millis(200);

/// A store that waits for a batch while the config lock is held elsewhere
/// gives up after its own lock timeout, as a store alone does, its error
/// naming the lock file. Here the batch before it is led by a store with a
/// far longer lock timeout: the waiting store waits for that batch, with no
/// bound of its own (`Batches::make` waits on its condition variable
/// without a timeout), so it waits as long as the leader's timeout, then
/// its own. The 10 s lock timeout bounds the lock waits of a batch, not a
/// store's wait for the batch before its own.
#[test]
fn a_store_waiting_for_a_batch_gives_up_after_its_own_lock_timeout() {
    let dir = TestDir::new();
    let config = &dir.config;
    let impatient = store("ivan", "impatient", 62);
    let lock = config.encryption_keys().lock_config().unwrap();
    std::thread::scope(|scope| {
        let patient: Vec<_> = [store("pat", "lead-one", 60), store("quinn", "lead-two", 61)]
            .into_iter()
            .map(|store| scope.spawn(move || store.make(config)))
            .collect();
        wait_until("one store leads a batch and one waits", || {
            config.new_key_stores_waiting() == 1
        });
        let (gave_up, given_up) = std::sync::mpsc::channel();
        let waiting = scope.spawn(move || {
            let result = make_with_timeout(&impatient, config, IMPATIENT);
            let _ = gave_up.send(());
            result
        });
        wait_until("the impatient store waits for the next batch", || {
            config.new_key_stores_waiting() == 2
        });
        let in_time = given_up.recv_timeout(GIVE_UP_DEADLINE).is_ok();
        drop(lock);
        let result = waiting.join().unwrap();
        assert!(
            in_time,
            "a store with a lock timeout of {IMPATIENT:?} still waited after {GIVE_UP_DEADLINE:?} \
             (for the batch before its own); once the lock was let go it gave {:?}",
            result.as_ref().map(|entry| &entry.id)
        );
        let text = format!("{:#}", result.unwrap_err());
        assert!(
            text.contains(".encryption-keys.lck") && text.contains("timed out"),
            "{text}"
        );
        for handle in patient {
            handle.join().unwrap().unwrap();
        }
    });
}
