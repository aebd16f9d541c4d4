//! Eight processes race on one store; afterwards everything adds up, and
//! the audit log tells the same story in the store's order.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use pbs_api_types::CryptKey;
use pbs_config::audit::{AuditLog, Filter, Phase, Record, VerifyOptions};
use pbs_test_kit::Sandbox;

use crate::support::{
    assert_clean, assert_every_listed_key_loads, assert_success, context, run_worker, worker,
};

const WORKERS: usize = 8;
const OPERATIONS: usize = 200;

/// Each worker checks the outcome of every operation on its own ids as it
/// goes; here we check that the final store is what the workers' successful
/// operations add up to: their own keys exactly as their model says, shared
/// keys with a fingerprint some worker stored under that id, every listed key
/// loadable, and `verify` clean.
pub fn eight_processes_of_random_operations() {
    let sandbox = Sandbox::new();
    let dir = sandbox.config_dir();

    let children: Vec<_> = (0..WORKERS)
        .map(|index| {
            let log = sandbox.file(&format!("worker-{index}.log"));
            let mut cmd = worker("random-ops");
            cmd.arg(dir)
                .arg(index.to_string())
                .arg((0x5eed + index * 7919).to_string())
                .arg(OPERATIONS.to_string())
                .arg(&log);
            (index, log, std::thread::spawn(move || run_worker(cmd)))
        })
        .collect();
    let mut logs = WorkerLogs::default();
    for (index, log, handle) in children {
        let output = handle.join().unwrap();
        assert_success(&output, &format!("worker {index}"));
        logs.read(index, &std::fs::read_to_string(&log).unwrap());
    }

    let config = context(dir);
    let (list, _) = config.encryption_keys().list_keys(true).unwrap();
    assert_the_store_is_what_the_workers_did(&list, &logs);
    assert_every_listed_key_loads(&config);
    assert_clean(&config.verify(false).unwrap(), "after the race");

    // the audit log: it verifies, with no operation left open
    let log = AuditLog::open_existing(&config).unwrap().unwrap();
    let report = log.verify(&VerifyOptions::default()).unwrap();
    assert!(report.is_clean(), "{report:#?}");
    assert!(report.notices.is_empty(), "{report:#?}");
    let records = log.list(&Filter::default()).unwrap();
    assert_the_log_pairs_are_the_changes(&records, &logs);
    assert_replaying_the_log_gives_the_store(&records, &list);
    println!(
        "    {WORKERS} processes x {OPERATIONS} operations: {} succeeded, {} keys \
         remain, {} records",
        logs.successes,
        list.len(),
        records.len()
    );
}

/// What the workers' logs say they did.
struct WorkerLogs {
    /// Each worker's own keys as its model holds them at the end.
    own_final: HashMap<String, Value>,
    /// Per shared id, the fingerprints some worker stored under it.
    shared_stored: HashMap<String, HashSet<String>>,
    /// How many operations succeeded.
    successes: usize,
    /// The successful changes, each with how often it was made.
    changes: HashMap<(String, String), usize>,
    /// Per worker, the successful changes of its own keys, in its order.
    own_changes: Vec<Vec<(String, String)>>,
}

impl Default for WorkerLogs {
    fn default() -> Self {
        Self {
            own_final: HashMap::new(),
            shared_stored: HashMap::new(),
            successes: 0,
            changes: HashMap::new(),
            own_changes: vec![Vec::new(); WORKERS],
        }
    }
}

impl WorkerLogs {
    /// Adds the log `text` of worker `index`: one JSON line per operation,
    /// then its final state.
    fn read(&mut self, index: usize, text: &str) {
        let mut lines = 0;
        for line in text.lines() {
            let entry: Value = serde_json::from_str(line).unwrap();
            if let Some(state) = entry.get("final") {
                for (id, key) in state.as_object().unwrap() {
                    self.own_final.insert(id.clone(), key.clone());
                }
                continue;
            }
            lines += 1;
            if entry["ok"] == true && entry["op"] != "load" {
                let op = match entry["op"].as_str().unwrap() {
                    // store_key records an import
                    "store" => "import",
                    op => op,
                };
                let change = (op.to_string(), entry["id"].as_str().unwrap().to_string());
                if entry["shared"] != true {
                    self.own_changes[index].push(change.clone());
                }
                *self.changes.entry(change).or_default() += 1;
            }
            if entry["ok"] == true {
                self.successes += 1;
                if entry["shared"] == true && entry["op"] == "store" {
                    self.shared_stored
                        .entry(entry["id"].as_str().unwrap().to_string())
                        .or_default()
                        .insert(entry["fingerprint"].as_str().unwrap().to_string());
                }
            }
        }
        assert_eq!(lines, OPERATIONS, "worker {index} logged every operation");
    }
}

/// The workers' own keys are exactly as their models say, a shared key
/// holds a fingerprint some worker stored under its id, nothing else is
/// left.
fn assert_the_store_is_what_the_workers_did(list: &[CryptKey], logs: &WorkerLogs) {
    let listed: HashMap<&str, _> = list.iter().map(|k| (k.id.as_str(), k)).collect();
    for (id, want) in &logs.own_final {
        let key = listed
            .get(id.as_str())
            .unwrap_or_else(|| panic!("key {id} stored by its worker is missing"));
        assert_eq!(
            key.info.fingerprint.unwrap().signature(),
            want["fingerprint"].as_str().unwrap(),
            "{id}"
        );
        assert_eq!(key.archived_at.is_some(), want["archived"] == true, "{id}");
    }
    for key in list {
        if key.id.starts_with("shared-") {
            let fp = key.info.fingerprint.unwrap().signature();
            assert!(
                logs.shared_stored
                    .get(&key.id)
                    .is_some_and(|set| set.contains(&fp)),
                "shared key {} holds a key no worker stored under it",
                key.id
            );
        } else {
            assert!(
                logs.own_final.contains_key(&key.id),
                "key {} should be gone",
                key.id
            );
        }
    }
}

/// One pair per successful change, each intent followed at once by its
/// outcome (every change holds the config lock from intent to outcome),
/// every outcome `ok` (refusals record nothing); each worker's own changes
/// in its order.
fn assert_the_log_pairs_are_the_changes(records: &[Record], logs: &WorkerLogs) {
    let mut logged: HashMap<(String, String), usize> = HashMap::new();
    let mut logged_own: Vec<Vec<(String, String)>> = vec![Vec::new(); WORKERS];
    for pair in records.chunks(2) {
        let [intent, outcome] = pair else {
            panic!("a record without its pair: {pair:?}");
        };
        assert_eq!(intent.phase, Phase::Intent, "{pair:?}");
        assert_eq!(outcome.intent, Some(intent.seq), "interleaved: {pair:?}");
        assert_eq!(outcome.result.as_deref(), Some("ok"), "{pair:?}");
        let id = intent.ids[0].clone();
        let change = (intent.op.clone(), id.clone());
        if let Some(worker) = id
            .strip_prefix('w')
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(index, _)| index.parse::<usize>().ok())
        {
            logged_own[worker].push(change.clone());
        }
        *logged.entry(change).or_default() += 1;
    }
    assert_eq!(
        logged, logs.changes,
        "the log's changes are not the workers'"
    );
    for (index, own) in logs.own_changes.iter().enumerate() {
        assert_eq!(
            logged_own[index], *own,
            "worker {index}: the log's order of its changes is not its own"
        );
    }
}

/// In store order: replaying the log gives the store as it is.
fn assert_replaying_the_log_gives_the_store(records: &[Record], list: &[CryptKey]) {
    let mut replayed: HashMap<String, (String, bool)> = HashMap::new();
    for intent in records.iter().step_by(2) {
        let id = intent.ids[0].clone();
        match intent.op.as_str() {
            "import" => {
                let fingerprint = intent.fingerprints[0].clone();
                assert!(replayed.insert(id, (fingerprint, false)).is_none());
            }
            "archive" => replayed.get_mut(&id).unwrap().1 = true,
            "unarchive" => replayed.get_mut(&id).unwrap().1 = false,
            "delete" => assert!(replayed.remove(&id).is_some()),
            op => panic!("unexpected operation {op}"),
        }
    }
    let store: HashMap<String, (String, bool)> = list
        .iter()
        .map(|key| {
            let fingerprint = key.info.fingerprint.unwrap().signature();
            (key.id.clone(), (fingerprint, key.archived_at.is_some()))
        })
        .collect();
    assert_eq!(replayed, store, "replaying the log does not give the store");
}
