//! Stores of new keys made in batches (group commit, see
//! `pbs_config::group_commit`), with real processes:
//! - a worker whose threads store keys that form one batch, killed with
//!   SIGKILL at every point of the batch (each intent, the intents' sync and
//!   checkpoint, each key file, the config write, each outcome): `verify`
//!   finds only what a crash leaves and repairs it, `audit verify` accounts
//!   for every intent, and every key of the batch whose file was written is
//!   in the store or in the trash under its own id, none lost, none swapped;
//! - the API daemon answering concurrent creates and imports: every create
//!   answered 200 hands out the key the list shows, and of keys or ids asked
//!   for at once exactly one store is made.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Error, bail};
use serde_json::json;

use pbs_api_types::{Authid, Fingerprint};
use pbs_config::ConfigDir;
use pbs_config::audit::{Caller, Phase, Record, StoreState};
use pbs_config::verify::FindingKind;
use pbs_key_config::KeyConfig;
use pbs_test_kit::{Sandbox, key_config};

use crate::daemon::{admin_token, request, start_daemon};
use crate::support::{
    assert_clean, assert_crash_leftovers_only, assert_every_listed_key_loads, assert_killed_at,
    audit_records, audit_verify, context, repair_after_crash, worker,
};

/// How many stores the batch under test holds.
const BATCH: usize = 4;

/// The worker's threads: the batch, and the one store that leads a batch
/// alone before it (the first thread to ask finds no batch running and
/// takes only itself; the others queue behind it and are the next batch).
const THREADS: usize = BATCH + 1;

/// The id the worker's thread `index` stores its key under.
fn batch_id(index: usize) -> String {
    format!("batch-{index}")
}

/// The key the worker's thread `index` stores.
fn batch_key(index: usize) -> KeyConfig {
    key_config(100 + index as u64)
}

/// Who thread `index` stores for: an API client of its own address, so
/// the audit log tells each store's caller apart.
fn batch_caller(index: usize) -> Caller {
    let last = u8::try_from(index + 1).expect("few threads");
    Caller::api(Authid::root_auth_id(), IpAddr::from([127, 0, 0, last]))
}

/// `batch-store DIR COUNT`: COUNT threads store `batch-I` at once, each
/// through its own view of one config dir. The parent holds the config
/// lock: the first store leads a batch alone and waits for it, the others
/// queue. Once COUNT - 1 wait for a batch, prints `queued N` (the parent
/// then lets the lock go), and at the end one JSON line per store.
pub fn batch_store(args: &[String]) -> Result<(), Error> {
    let [dir, count] = args else {
        bail!("usage: batch-store DIR COUNT");
    };
    let count: usize = count.parse()?;
    let dir = ConfigDir::new(dir)?;
    let results = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..count)
            .map(|index| {
                let view = dir.with_caller(batch_caller(index));
                scope.spawn(move || {
                    view.encryption_keys()
                        .store_key(&batch_id(index), &batch_key(index))
                        .map(|_| ())
                })
            })
            .collect();
        // the queue is seen only in this process: wait until it holds all
        // but the lone store (a condition polled, no time assumed; should
        // the lone store give up on the lock, the count printed says so)
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut waiting = dir.new_key_stores_waiting();
        while waiting < count - 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
            waiting = dir.new_key_stores_waiting();
        }
        println!("queued {waiting}");
        let _ = std::io::stdout().flush();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("a store thread panicked"))
            .collect::<Vec<_>>()
    });
    let mut failed = 0;
    for (index, result) in results.iter().enumerate() {
        let error = result.as_ref().err().map(|err| format!("{err:#}"));
        failed += usize::from(error.is_some());
        println!("{}", json!({"id": batch_id(index), "error": error}));
    }
    if failed > 0 {
        bail!("{failed} of {count} stores failed");
    }
    Ok(())
}

/// Where a kill lands in the batch, as the store shows it afterwards.
#[derive(Clone, Copy, Debug)]
struct Stage {
    /// Intents of the batch in the log.
    intents: usize,
    /// Key files placed under their names, in the batch's order.
    placed: usize,
    /// Whether the next key's file was written as a temp file.
    temp: bool,
    /// Whether the config was written as a temp file.
    config_temp: bool,
    /// Whether the config with the batch's entries was written.
    stored: bool,
    /// Outcomes of the batch in the log.
    outcomes: usize,
}

/// Every point a batch of [`BATCH`] passes, with the hit of it that lies in
/// that batch (the lone store before it passes each point of a store
/// once, and writes two lines to the log, its intent and its outcome, and
/// syncs one), and what the store shows after a kill there.
fn kill_plan() -> Vec<(&'static str, usize, Stage)> {
    let before_files = Stage {
        intents: BATCH,
        placed: 0,
        temp: false,
        config_temp: false,
        stored: false,
        outcomes: 0,
    };
    let mut plan = Vec::new();
    for j in 1..=BATCH {
        let stage = Stage {
            intents: j,
            ..before_files
        };
        plan.push(("audit:line-written", 2 + j, stage));
    }
    plan.push(("audit:synced", 2, before_files));
    plan.push(("audit:checkpoint-written", 2, before_files));
    plan.push(("store:locked", 2, before_files));
    for j in 1..=BATCH {
        let temp = Stage {
            placed: j - 1,
            temp: true,
            ..before_files
        };
        plan.push(("store:key-tmp-written", 1 + j, temp));
        let placed = Stage {
            placed: j,
            ..before_files
        };
        plan.push(("store:key-written", 1 + j, placed));
    }
    let all_placed = Stage {
        placed: BATCH,
        ..before_files
    };
    let config_temp = Stage {
        config_temp: true,
        ..all_placed
    };
    plan.push(("store:config-tmp-written", 2, config_temp));
    let stored = Stage {
        stored: true,
        ..all_placed
    };
    plan.push(("store:config-written", 2, stored));
    for j in 1..=BATCH {
        let stage = Stage {
            outcomes: j,
            ..stored
        };
        plan.push(("audit:line-written", 2 + BATCH + j, stage));
    }
    plan
}

/// A worker storing [`THREADS`] keys at once into `dir` while this process
/// holds the config lock, killed at the `hit`-th pass of `point` if given;
/// its output.
fn run_batch(dir: &Path, kill: Option<(&str, usize)>) -> Output {
    let config = context(dir);
    let lock = config.encryption_keys().lock_config().unwrap();
    let mut cmd = worker("batch-store");
    cmd.arg(dir)
        .arg(THREADS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((point, hit)) = kill {
        cmd.env("PBS_FAILPOINT", point)
            .env("PBS_FAILPOINT_HIT", hit.to_string());
    }
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        format!("queued {BATCH}"),
        "{kill:?}: the stores did not queue behind the lone one"
    );
    // the lone store takes its turn, then the batch
    drop(lock);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = Vec::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    Output {
        status,
        stdout: format!("{line}{rest}").into_bytes(),
        stderr,
    }
}

/// The worker's thread that stored the key of `record` (an intent), checked
/// to be the one whose id, key and caller the record names.
fn thread_of(record: &Record, context: &str) -> usize {
    let index = (0..THREADS)
        .find(|index| record.ids == [batch_id(*index)])
        .unwrap_or_else(|| panic!("{context}: a record of no store of the batch: {record:#?}"));
    assert_eq!(record.op, "import", "{context}: {record:#?}");
    assert_eq!(
        record.fingerprints,
        [fingerprint(index).signature()],
        "{context}: the intent of {} names another key: {record:#?}",
        batch_id(index)
    );
    assert_eq!(
        record.origin,
        batch_caller(index).origin.to_string(),
        "{context}: the intent of {} names another caller: {record:#?}",
        batch_id(index)
    );
    index
}

fn fingerprint(index: usize) -> Fingerprint {
    batch_key(index).fingerprint.unwrap()
}

/// The log the lone store and the batch wrote (`records`, the records
/// after the set-up's): the lone store's intent and outcome, then the
/// batch's intents one after the other, each before any outcome of the
/// batch (one batch: one turn of the config lock), then its outcomes.
/// Returns the lone store's thread and the batch's threads in order.
fn batch_in_the_log(records: &[Record], stage: Stage, context: &str) -> (usize, Vec<usize>) {
    assert_eq!(
        records.len(),
        2 + stage.intents + stage.outcomes,
        "{context}: {records:#?}"
    );
    let (lone, outcome) = (&records[0], &records[1]);
    assert_eq!(lone.phase, Phase::Intent, "{context}: {records:#?}");
    let lone = thread_of(lone, context);
    assert_eq!(outcome.intent, Some(records[0].seq), "{context}");
    assert!(outcome.took_effect(), "{context}: {outcome:#?}");

    let intents = &records[2..2 + stage.intents];
    let mut order = Vec::new();
    for intent in intents {
        assert_eq!(
            intent.phase,
            Phase::Intent,
            "{context}: an outcome among the batch's intents: {records:#?}"
        );
        let index = thread_of(intent, context);
        assert!(
            index != lone && !order.contains(&index),
            "{context}: {records:#?}"
        );
        order.push(index);
    }
    let mut seqs = BTreeSet::new();
    for outcome in &records[2 + stage.intents..] {
        assert!(outcome.took_effect(), "{context}: {outcome:#?}");
        let intent = outcome.intent.expect("an outcome");
        assert!(
            intents.iter().any(|i| i.seq == intent) && seqs.insert(intent),
            "{context}: an outcome of no intent of the batch: {records:#?}"
        );
    }
    (lone, order)
}

/// Where the key of thread `index` is: its entry in the store (with its
/// own fingerprint) or in the trash (under its own id), or nowhere; panics
/// on both, or on a swap.
fn whereabouts(config: &ConfigDir, index: usize, context: &str) -> (bool, bool) {
    let keys = config.encryption_keys();
    let id = batch_id(index);
    let fp = fingerprint(index);
    let (list, _) = keys.list_keys(true).unwrap();
    for key in &list {
        let same_id = key.id == id;
        let same_key = key.info.fingerprint == Some(fp);
        assert_eq!(
            same_id, same_key,
            "{context}: {id} and its key are apart in the store: {list:#?}"
        );
    }
    let in_store = list.iter().any(|key| key.id == id);
    let listing = keys.trash().list().unwrap();
    assert!(listing.incomplete.is_empty(), "{context}: {listing:?}");
    let mut in_trash = false;
    for entry in &listing.entries {
        if entry.record.fingerprint == Some(fp) {
            assert_eq!(entry.record.id, id, "{context}: {:#?}", listing.entries);
            in_trash = true;
        }
    }
    assert!(!(in_store && in_trash), "{context}: {id} in both places");
    (in_store, in_trash)
}

/// A worker's batch of [`BATCH`] stores killed at every point of it, and
/// once not killed: see the module docs.
pub fn sigkill_in_a_batch_at_every_point() {
    assert!(
        pbs_config::failpoint::enabled(),
        "pbs-config must be built with the failpoints feature for this test"
    );
    let done = Stage {
        intents: BATCH,
        placed: BATCH,
        temp: false,
        config_temp: false,
        stored: true,
        outcomes: BATCH,
    };
    check_batch(None, done);
    for (point, hit, stage) in kill_plan() {
        check_batch(Some((point, hit)), stage);
    }
}

/// The batch killed at `kill` (the hit of a point), or not killed: the
/// store and the log show `stage`, and are repaired to a clean store in
/// which no key is lost or swapped.
fn check_batch(kill: Option<(&str, usize)>, stage: Stage) {
    let context_text = match kill {
        Some((point, hit)) => format!("{point} (hit {hit})"),
        None => "not killed".to_string(),
    };
    let what = context_text.as_str();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    context(dir)
        .encryption_keys()
        .store_key("bystander", &key_config(1))
        .unwrap();
    let before = audit_records(dir).len();

    let output = run_batch(dir, kill);
    match kill {
        Some((point, _)) => assert_killed_at(&output, point, what),
        None => assert!(
            output.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }

    let config = context(dir);
    let records = audit_records(dir);
    let (lone, order) = batch_in_the_log(&records[before..], stage, what);
    assert_the_log_tells_what_happened(&config, stage, what);
    let leftovers = assert_crash_leftovers(&config, stage, lone, &order, what);

    let repaired = repair_after_crash(&config, leftovers.len(), what);

    let (stored, trashed) = assert_no_key_lost(&config, stage, lone, &order, what);
    println!(
        "    batch of {BATCH}, {what}: leftovers {leftovers:?}, repaired {}, {stored} stored, \
         {trashed} in the trash, log: {} intents, {} outcomes",
        repaired.repaired.len(),
        stage.intents,
        stage.outcomes
    );
}

/// `audit verify` reports every intent of the batch without outcome, with
/// what the store shows: applied once the config is written, else not.
fn assert_the_log_tells_what_happened(config: &ConfigDir, stage: Stage, what: &str) {
    let audit_report = audit_verify(config, false);
    assert!(!audit_report.is_tampered(), "{what}: {audit_report:#?}");
    let unfinished: BTreeMap<usize, StoreState> = audit_report
        .unfinished
        .iter()
        .map(|u| (thread_of(&u.record, what), u.state))
        .collect();
    assert_eq!(
        unfinished.len(),
        stage.intents - stage.outcomes,
        "{what}: {audit_report:#?}"
    );
    let state = match stage.stored {
        true => StoreState::Applied,
        false => StoreState::NotApplied,
    };
    assert!(
        unfinished.values().all(|s| *s == state),
        "{what}: the log does not tell what happened: {audit_report:#?}"
    );
}

/// `verify` finds what a crash leaves, and only that: the batch's key
/// files placed without their config entries (those of `order` up to
/// `stage.placed`), the lock files of the others, a temp file of the key
/// file or the config being written. Returns the kinds found.
fn assert_crash_leftovers(
    config: &ConfigDir,
    stage: Stage,
    lone: usize,
    order: &[usize],
    what: &str,
) -> Vec<FindingKind> {
    let report = config.verify(false).unwrap();
    assert_crash_leftovers_only(&report, what);
    let found = |kind: FindingKind| -> BTreeSet<String> {
        report
            .findings
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| f.id.clone().unwrap_or_default())
            .collect()
    };
    let batch: BTreeSet<String> = (0..THREADS)
        .filter(|index| *index != lone)
        .map(batch_id)
        .collect();
    let placed: BTreeSet<String> = order[..stage.placed].iter().map(|i| batch_id(*i)).collect();
    let (orphans, stale_locks) = match stage.stored {
        true => (BTreeSet::new(), BTreeSet::new()),
        false => (placed.clone(), &batch - &placed),
    };
    let temp_files = usize::from(stage.temp) + usize::from(stage.config_temp);
    assert_eq!(
        (
            found(FindingKind::OrphanKeyFile),
            found(FindingKind::StaleLockFile)
        ),
        (orphans.clone(), stale_locks.clone()),
        "{what}: {:#?}",
        report.findings
    );
    assert_eq!(
        report.findings.len(),
        orphans.len() + stale_locks.len() + temp_files,
        "{what}: {:#?}",
        report.findings
    );
    report.findings.iter().map(|f| f.kind).collect()
}

/// After the repair, every key: the lone one and the bystander stored; of
/// the batch, once the config is written each in the store, before that
/// each whose file was written in the trash and the others nowhere (their
/// stores wrote nothing); none under another id. Returns how many of the
/// batch are stored and in the trash.
fn assert_no_key_lost(
    config: &ConfigDir,
    stage: Stage,
    lone: usize,
    order: &[usize],
    what: &str,
) -> (usize, usize) {
    let (list, _) = config.encryption_keys().list_keys(true).unwrap();
    assert!(
        list.iter().any(|k| k.id == "bystander"),
        "{what}: {list:#?}"
    );
    assert_eq!(whereabouts(config, lone, what), (true, false), "{what}");
    let mut stored = 0;
    let mut trashed = 0;
    for (position, index) in order.iter().enumerate() {
        let written = position < stage.placed || (stage.temp && position == stage.placed);
        let (in_store, in_trash) = whereabouts(config, *index, what);
        let id = batch_id(*index);
        match (stage.stored, written) {
            (true, _) => assert!(in_store, "{what}: {id} is not stored"),
            (false, true) => assert!(in_trash, "{what}: {id} is lost"),
            (false, false) => assert!(!in_store && !in_trash, "{what}: {id} is somewhere"),
        }
        stored += usize::from(in_store);
        trashed += usize::from(in_trash);
    }
    // the batch's threads whose intent was never written stored nothing
    for index in (0..THREADS).filter(|i| *i != lone && !order.contains(i)) {
        assert_eq!(whereabouts(config, index, what), (false, false), "{what}");
    }
    (stored, trashed)
}

/// The daemon answering 16 concurrent creates of distinct ids, 8
/// concurrent imports of one key under 8 ids, and 8 concurrent creates of
/// one id: every create answered 200 hands out the key the list shows for
/// its id; of one key, or one id, exactly one store is made, and the
/// others are refused naming what holds it.
pub fn daemon_concurrent_creates_and_imports() {
    let sandbox = Sandbox::new();
    let dir = sandbox.config_dir();
    let auth = admin_token(dir);
    let daemon = start_daemon(dir, sandbox.file("daemon.log"), None);
    // one context for all the checks: its cache must see each change the
    // daemon makes
    let config = context(dir);

    let before = audit_records(dir).len();
    sixteen_creates(&config, daemon.port, &auth);
    let creates = batch_sizes(&audit_records(dir)[before..]);
    let before = audit_records(dir).len();
    one_key_under_eight_ids(&config, daemon.port, &auth);
    let imports = batch_sizes(&audit_records(dir)[before..]);
    let before = audit_records(dir).len();
    one_id_eight_times(&config, daemon.port, &auth);
    let same_id = batch_sizes(&audit_records(dir)[before..]);

    let (list, _) = config.encryption_keys().list_keys(true).unwrap();
    assert_eq!(list.len(), 16 + 1 + 1, "{list:#?}");
    assert_clean(&config.verify(false).unwrap(), "at the end");
    assert_every_listed_key_loads(&config);
    let audit = audit_verify(&config, false);
    assert!(
        audit.is_clean() && audit.unfinished.is_empty(),
        "{audit:#?}"
    );
    drop(daemon);
    // how the daemon's threads met in batches depends on timing: told, not
    // asserted
    println!(
        "    intents in a row (batches): 16 creates {creates:?}, 8 imports of one key \
         {imports:?}, 8 creates of one id {same_id:?}"
    );
}

/// The key file an answer 200 of a create hands out, and the fingerprint
/// of its key (checked on decrypting it: the file opens).
fn handed_out(body: &str) -> (KeyConfig, Fingerprint) {
    let data = &serde_json::from_str::<serde_json::Value>(body).unwrap()["data"];
    let key = KeyConfig::from_json(data.to_string().as_bytes()).unwrap();
    let (_, _, fingerprint) = key.decrypt(&|| Ok(Vec::new())).unwrap();
    (key, fingerprint)
}

/// 16 creates of distinct ids at once: each answered 200 with a key file
/// whose key the list shows under its id, and the key file stored there.
fn sixteen_creates(config: &ConfigDir, port: u16, auth: &str) {
    let forms: Vec<String> = (0..16).map(|n| format!("id=new-{n}")).collect();
    let answers = at_once(port, auth, &forms);
    let keys = config.encryption_keys();
    let (list, _) = keys.list_keys(true).unwrap();
    for (n, (status, body)) in answers.iter().enumerate() {
        let id = format!("new-{n}");
        assert_eq!(*status, 200, "create {id}: {body}");
        let (_, fingerprint) = handed_out(body);
        let listed = list
            .iter()
            .find(|key| key.id == id)
            .unwrap_or_else(|| panic!("{id} is not listed"));
        assert_eq!(
            listed.info.fingerprint,
            Some(fingerprint),
            "{id}: the key handed out is not the one listed"
        );
        let stored = keys.load_key_config(&id, true).unwrap();
        let (_, _, stored_fp) = stored.decrypt(&|| Ok(Vec::new())).unwrap();
        assert_eq!(
            stored_fp, fingerprint,
            "{id}: another key stored than handed out"
        );
    }
    assert_eq!(list.len(), 16, "{list:#?}");
    assert_clean(&config.verify(false).unwrap(), "after 16 creates");
}

/// 8 imports of one key under 8 ids at once: it is stored under one of
/// them, answered 200; the others are refused (400) naming that id.
fn one_key_under_eight_ids(config: &ConfigDir, port: u16, auth: &str) {
    let key = key_config(77);
    let key_json = pbs_test_kit::https::urlencode(&key.to_json().unwrap());
    let forms: Vec<String> = (0..8)
        .map(|n| format!("id=same-{n}&key={key_json}"))
        .collect();
    let answers = at_once(port, auth, &forms);
    let (list, _) = config.encryption_keys().list_keys(true).unwrap();
    let holders: Vec<&str> = list
        .iter()
        .filter(|k| k.info.fingerprint == key.fingerprint)
        .map(|k| k.id.as_str())
        .collect();
    let [holder] = holders[..] else {
        panic!("the key is stored under {holders:?}: {answers:#?}");
    };
    for (n, (status, body)) in answers.iter().enumerate() {
        let id = format!("same-{n}");
        if id == holder {
            assert_eq!(*status, 200, "import {id}: {body}");
            continue;
        }
        assert_eq!(*status, 400, "import {id}: {body}");
        assert!(
            body.contains(&format!("already stored as '{holder}'")),
            "import {id}: the refusal does not name {holder}: {body}"
        );
        assert!(!list.iter().any(|k| k.id == id), "{id} stored");
    }
}

/// 8 creates of one id at once: one answered 200, its key listed under the
/// id; the others refused (400) as the id exists.
fn one_id_eight_times(config: &ConfigDir, port: u16, auth: &str) {
    let forms: Vec<String> = (0..8).map(|_| "id=one-id".to_string()).collect();
    let answers = at_once(port, auth, &forms);
    let made: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .collect();
    let [(_, body)] = made[..] else {
        panic!("not one create of one-id made: {answers:#?}");
    };
    let (_, fingerprint) = handed_out(body);
    let (list, _) = config.encryption_keys().list_keys(true).unwrap();
    let listed = list
        .iter()
        .find(|k| k.id == "one-id")
        .expect("one-id listed");
    assert_eq!(listed.info.fingerprint, Some(fingerprint));
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert!(
            *status == 400 && body.contains("encryption key 'one-id' already exists"),
            "a second create of one-id: {status} {body}"
        );
    }
}

/// `forms` posted to `config/encryption-keys` at once, each on its own
/// connection: the answers, in order.
fn at_once(port: u16, auth: &str, forms: &[String]) -> Vec<(u16, String)> {
    let start = std::sync::Barrier::new(forms.len());
    std::thread::scope(|scope| {
        let clients: Vec<_> = forms
            .iter()
            .map(|form| {
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    request(port, auth, "POST", "config/encryption-keys", Some(form))
                        .expect("an answer")
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|client| client.join().expect("client thread"))
            .collect()
    })
}

/// The sizes of the runs of intents in `records` (each run of intents
/// before an outcome is one batch): for the report only, they depend on
/// timing.
fn batch_sizes(records: &[Record]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut run = 0;
    for record in records {
        match record.phase {
            Phase::Intent => run += 1,
            _ if run > 0 => {
                sizes.push(run);
                run = 0;
            }
            _ => {}
        }
    }
    if run > 0 {
        sizes.push(run);
    }
    sizes
}
