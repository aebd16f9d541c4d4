//! The audit log through its public face: appends, files, fail-closed
//! refusals, list, and verify's view of interrupted operations.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::format_err;

use pbs_api_types::Fingerprint;
use pbs_key_config::KeyConfig;

use super::*;
use crate::Ownership;

struct Store {
    tmp: tempfile::TempDir,
    dir: ConfigDir,
}

impl Store {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::with_ownership(tmp.path(), Ownership::current_user().unwrap())
            .unwrap()
            .lock_timeout(Duration::from_secs(2));
        Self { tmp, dir }
    }

    fn log(&self) -> AuditLog<'_> {
        AuditLog::open_store(&self.dir).unwrap().syslog_socket(None)
    }

    fn audit_path(&self, name: &str) -> PathBuf {
        self.tmp.path().join("encryption-keys/.audit").join(name)
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.audit_path("log"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn event(op: Op, id: &str) -> Event {
    Event::new(&Caller::cli(), op)
        .id(id)
        .fingerprint(Fingerprint::new([id.len() as u8; 32]))
}

/// Records `op` of `id` as done: its intent, then its outcome.
fn record(log: &AuditLog, op: Op, id: &str) {
    log.intent(&event(op, id))
        .unwrap()
        .done(Ok::<_, anyhow::Error>(()))
        .unwrap();
}

fn key(seed: u8) -> KeyConfig {
    KeyConfig::without_password([seed; 32]).unwrap()
}

fn verify(log: &AuditLog, repair: bool) -> AuditReport {
    log.verify(&VerifyOptions {
        repair,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn intent_and_outcome_chain_and_the_checkpoint_covers_synced_records() {
    let store = Store::new();
    let log = store.log();
    let first = log.intent(&event(Op::Create, "k-one")).unwrap();
    assert_eq!(first.seq(), 1);
    assert_eq!(first.checkpoint().unwrap().size, 1);
    first.done(Ok::<_, anyhow::Error>(())).unwrap();
    let second = log.intent(&event(Op::Archive, "k-one")).unwrap();
    let err = second
        .done(Err::<(), _>(format_err!(
            "encryption key 'k-one' is in use"
        )))
        .unwrap_err();
    assert_eq!(err.to_string(), "encryption key 'k-one' is in use");

    let lines = store.lines();
    assert_eq!(lines.len(), 4);
    let records: Vec<Record> = lines
        .iter()
        .map(|line| record::parse_line(line).unwrap().record)
        .collect();
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(records[0].prev, record::ZERO_HASH);
    for pair in records.windows(2) {
        assert_eq!(pair[1].prev, pair[0].hash);
    }
    assert_eq!(records[1].phase, Phase::Outcome);
    assert_eq!(records[1].intent, Some(1));
    assert_eq!(records[1].result.as_deref(), Some("ok"));
    assert_eq!(records[3].intent, Some(3));
    assert_eq!(
        records[3].result.as_deref(),
        Some("encryption key 'k-one' is in use")
    );
    assert_eq!(records[0].actor, "root@pam");
    assert_eq!(records[0].origin, "cli");
    assert!(records[0].unix_user.is_some());

    // the checkpoint covers the last synced record: the second intent
    let checkpoint = log.stored_checkpoint().unwrap().unwrap();
    assert_eq!(checkpoint.size, 3);
    assert_eq!(checkpoint.head_hex(), records[2].hash);
    let key = log.public_key().unwrap().unwrap();
    assert_eq!(checkpoint.check_signature(&key), SignatureCheck::Valid);
    assert_eq!(checkpoint.store_id(), Some(key.store_id().as_str()));

    let report = verify(&log, false);
    assert!(report.is_clean(), "{report:#?}");
    assert!(report.notices.is_empty(), "{report:#?}");
    assert_eq!(report.records, 4);

    // checkpoint_now covers everything
    assert_eq!(log.checkpoint_now().unwrap().unwrap().size, 4);
    assert_eq!(log.stored_checkpoint().unwrap().unwrap().size, 4);
}

#[test]
fn audit_files_get_their_owners_and_modes() {
    let store = Store::new();
    let log = store.log();
    record(&log, Op::Create, "k-one");
    let mode = |name: &str| {
        let path = if name.is_empty() {
            store.tmp.path().join("encryption-keys/.audit")
        } else {
            store.audit_path(name)
        };
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    };
    assert_eq!(mode(""), 0o750);
    assert_eq!(mode("log"), 0o640);
    assert_eq!(mode("checkpoint"), 0o640);
    assert_eq!(mode("signing.key"), 0o600);
    assert_eq!(mode("log.lck"), 0o660);
    assert_eq!(mode("pending.lck"), 0o660);
    let pem = std::fs::read_to_string(store.audit_path("signing.key")).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));

    // verify reports a wrong mode
    std::fs::set_permissions(
        store.audit_path("log"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let report = verify(&log, false);
    assert_eq!(report.problems.len(), 1, "{report:#?}");
    assert_eq!(report.problems[0].kind, ProblemKind::WrongMode);
}

#[test]
fn an_incomplete_last_line_is_a_notice_and_cut_off_by_the_next_append() {
    let store = Store::new();
    let log = store.log();
    record(&log, Op::Create, "k-one");
    let path = store.audit_path("log");
    let mut data = std::fs::read(&path).unwrap();
    let whole = data.len();
    data.extend_from_slice(b"{\"seq\":3,\"time\":17");
    std::fs::write(&path, &data).unwrap();

    let report = verify(&log, false);
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(report.notices[0].kind, ProblemKind::IncompleteLine);
    assert_eq!(report.notices[0].line, Some(3));

    let pending = log.intent(&event(Op::Archive, "k-one")).unwrap();
    assert!(
        pending.warnings()[0].contains("incomplete last line (18 bytes)"),
        "{:?}",
        pending.warnings()
    );
    assert_eq!(pending.seq(), 3);
    pending.done(Ok::<_, anyhow::Error>(())).unwrap();
    assert!(std::fs::read(&path).unwrap()[whole..].starts_with(b"{\"seq\":3,"));
    assert!(verify(&log, false).is_clean());
}

#[test]
fn a_damaged_last_line_or_a_shortened_log_stops_appends() {
    let store = Store::new();
    let log = store.log();
    for id in ["k-one", "k-two"] {
        record(&log, Op::Create, id);
    }
    let path = store.audit_path("log");
    let good = std::fs::read_to_string(&path).unwrap();

    std::fs::write(&path, good.replace("\"k-two\"", "\"k-2\"")).unwrap();
    let err = log.intent(&event(Op::Delete, "k-one")).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("nothing was changed")
            && text.contains("last line")
            && text.contains("damaged"),
        "{text}"
    );

    // two records off the end, under a checkpoint of three
    let lines: Vec<&str> = good.lines().collect();
    std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
    let err = log.intent(&event(Op::Delete, "k-one")).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("has 2 records, but its checkpoint says 3"),
        "{text}"
    );

    // the log gone, its checkpoint there: the same
    std::fs::remove_file(&path).unwrap();
    let err = log.intent(&event(Op::Delete, "k-one")).unwrap_err();
    assert!(
        format!("{err:#}").contains("is missing, but its checkpoint says 3 records"),
        "{err:#}"
    );
    // and nothing was written by the refused appends
    assert!(!path.exists());
}

#[test]
fn a_signing_key_others_may_read_or_a_missing_one_stops_appends() {
    let store = Store::new();
    let log = store.log();
    record(&log, Op::Create, "k-one");
    let key_path = store.audit_path("signing.key");
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o640)).unwrap();
    // a fresh handle: the key is read again
    let err = store.log().intent(&event(Op::Delete, "k-one")).unwrap_err();
    assert!(
        format!("{err:#}").contains("lets others read it"),
        "{err:#}"
    );

    std::fs::remove_file(&key_path).unwrap();
    let err = store.log().intent(&event(Op::Delete, "k-one")).unwrap_err();
    assert!(
        format!("{err:#}").contains("is missing, but the log has 2 records"),
        "{err:#}"
    );
    assert_eq!(store.lines().len(), 2);
}

/// An outcome signs nothing, so it needs no signing key: an operation
/// whose intent was recorded records its outcome even if the key went
/// missing in between (failing it would report a change that was made as
/// failed); the next intent is refused.
#[test]
fn an_outcome_is_recorded_without_the_signing_key() {
    let store = Store::new();
    let log = store.log();
    record(&log, Op::Create, "k-one");
    let pending = store.log().intent(&event(Op::Archive, "k-one")).unwrap();
    std::fs::remove_file(store.audit_path("signing.key")).unwrap();
    pending.done(Ok::<_, Error>(())).unwrap();
    let lines = store.lines();
    assert_eq!(lines.len(), 4);
    assert!(lines[3].contains("\"phase\":\"outcome\""), "{}", lines[3]);
    let err = store.log().intent(&event(Op::Delete, "k-one")).unwrap_err();
    assert!(
        format!("{err:#}").contains("is missing, but the log has 4 records"),
        "{err:#}"
    );
}

#[test]
fn list_and_last_filter_by_key_time_and_operation() {
    let store = Store::new();
    let log = store.log();
    for (op, id, ok) in [
        (Op::Create, "k-one", true),
        (Op::Export, "k-one", true),
        (Op::Create, "k-two", true),
        (Op::Export, "k-one", false),
        (Op::Archive, "k-two", true),
    ] {
        let result = if ok {
            Ok(())
        } else {
            Err(format_err!("unable to write bundle"))
        };
        let _ = log.intent(&event(op, id)).unwrap().done(result);
    }
    let all = log.list(&Filter::default()).unwrap();
    assert_eq!(all.len(), 10);
    let one = log
        .list(&Filter {
            key: Some("k-one".into()),
            phase: Some(Phase::Intent),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(one.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 3, 7]);
    let exports = log
        .list(&Filter {
            ops: vec![Op::Export],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(exports.len(), 4);
    let later = log
        .list(&Filter {
            since: Some(all[0].time + 3600),
            ..Default::default()
        })
        .unwrap();
    assert!(later.is_empty());

    // the last export that worked is the first one
    let last = log
        .last(&Filter::last_done(&[Op::Export], "k-one"))
        .unwrap()
        .unwrap();
    assert_eq!((last.seq, last.intent), (4, Some(3)));
    let changes: Vec<Op> = Op::ALL
        .iter()
        .copied()
        .filter(|op| op.changes_key())
        .collect();
    let changed = log
        .last(&Filter::last_done(&changes, "k-two"))
        .unwrap()
        .unwrap();
    assert_eq!((changed.op.as_str(), changed.seq), ("archive", 10));
    assert!(
        log.last(&Filter::last_done(&[Op::Delete], "k-two"))
            .unwrap()
            .is_none()
    );
}

/// Read newest first in batches, each before the oldest `seq` of the
/// one before: every record once, in order, where records share their
/// second (an intent and its outcome, mostly: a `time` cursor would skip
/// or repeat them).
#[test]
fn batches_before_a_seq_reach_every_record_once() {
    let store = Store::new();
    let log = store.log();
    for n in 0..7 {
        record(&log, Op::Export, &format!("k-{}", n % 2));
    }
    let all = log.list(&Filter::default()).unwrap();
    let seqs = |records: &[Record]| records.iter().map(|r| r.seq).collect::<Vec<_>>();
    assert_eq!(seqs(&all), (1..=14).collect::<Vec<_>>());
    for key in [None, Some("k-1")] {
        let whole = log
            .list(&Filter {
                key: key.map(str::to_string),
                ..Filter::default()
            })
            .unwrap();
        let mut read = Vec::new();
        let mut before = None;
        loop {
            let mut batch = Vec::new();
            log.newest_first(
                &Filter {
                    key: key.map(str::to_string),
                    before_seq: before,
                    ..Filter::default()
                },
                |record| {
                    batch.push(record);
                    batch.len() == 3
                },
            )
            .unwrap();
            let Some(oldest) = batch.last() else {
                break;
            };
            before = Some(oldest.seq);
            read.extend(batch);
        }
        read.reverse();
        assert_eq!(seqs(&read), seqs(&whole), "{key:?}");
    }
    // the forward reader takes the cursor too
    let older = log
        .list(&Filter {
            before_seq: Some(4),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(seqs(&older), [1, 2, 3]);
}

/// A log whose lines are out of order (a line moved, one copied in
/// again, a `seq` changed: only root can write the log, and `audit verify`
/// reports each) read in batches before a `seq`: the cursor, the `seq` of
/// the oldest line of the batch before, passed a line moved to the end
/// into every batch until it went below it, and left out the lines
/// between a line copied in and its original, and a line whose `seq` was
/// raised, all without a word. Now a read before a `seq` that finds a
/// line not older than the one after it is refused, naming it; the
/// batches of a log in order hold every record once. Security.md
/// finding 60.
#[test]
fn a_cursor_into_a_log_out_of_order_is_refused() {
    let store = Store::new();
    let log = store.log();
    for n in 0..7 {
        record(&log, Op::Export, &format!("k-{}", n % 2));
    }
    let lines = store.lines();
    let moved = {
        let mut moved = lines.clone();
        let line = moved.remove(9);
        moved.push(line);
        moved
    };
    let copied = {
        let mut copied = lines.clone();
        copied.insert(9, lines[4].clone());
        copied
    };
    let raised = {
        let mut raised = lines.clone();
        raised[6] = raised[6].replacen("{\"seq\":7,", "{\"seq\":100,", 1);
        raised
    };
    let seqs = |records: &[Record]| records.iter().map(|r| r.seq).collect::<Vec<_>>();
    for (name, text, in_order) in [
        ("as written", &lines, true),
        ("line 10 moved to the end", &moved, false),
        ("line 5 copied in after line 9", &copied, false),
        ("line 7 with seq 100", &raised, false),
    ] {
        std::fs::write(store.audit_path("log"), text.join("\n") + "\n").unwrap();
        let log = store.log();
        let whole = log.list(&Filter::default()).unwrap();
        let mut read = Vec::new();
        let mut before = None;
        let refused = loop {
            let mut batch = Vec::new();
            let filter = Filter {
                before_seq: before,
                ..Filter::default()
            };
            if let Err(err) = log.newest_first(&filter, |record| {
                batch.push(record);
                batch.len() == 3
            }) {
                break Some(err.to_string());
            }
            let Some(oldest) = batch.last() else {
                break None;
            };
            before = Some(oldest.seq);
            read.extend(batch);
        };
        read.reverse();
        // the forward read of all before a seq checks the order too
        let forward = log.list(&Filter {
            before_seq: Some(13),
            ..Filter::default()
        });
        assert_eq!(forward.is_ok(), in_order, "{name}: {forward:?}");
        match (in_order, refused) {
            (true, None) => assert_eq!(seqs(&read), seqs(&whole), "{name}"),
            (false, Some(err)) => assert!(err.contains("out of order"), "{name}: {err}"),
            (_, refused) => panic!(
                "{name}: whole {:?}, in batches {:?}, refused: {refused:?}",
                seqs(&whole),
                seqs(&read)
            ),
        }
    }
}

#[test]
fn every_checkpoint_goes_to_syslog_as_one_line() {
    let store = Store::new();
    let socket = store.tmp.path().join("syslog");
    let listener = UnixDatagram::bind(&socket).unwrap();
    let log = store.log().syslog_socket(Some(socket));
    let pending = log.intent(&event(Op::Create, "k-one")).unwrap();
    let mut buf = [0u8; 1024];
    let n = listener.recv(&mut buf).unwrap();
    let text = std::str::from_utf8(&buf[..n]).unwrap();
    assert!(text.starts_with("<85>pbs-keystore-audit["), "{text}");
    let checkpoint = Checkpoint::parse(text).unwrap();
    assert_eq!(&checkpoint, pending.checkpoint().unwrap());
    pending.done(Ok::<_, anyhow::Error>(())).unwrap();
}

#[test]
fn an_interrupted_operation_is_reported_with_what_the_store_shows_and_reconciled() {
    let store = Store::new();
    let keys = store.dir.encryption_keys();
    let log = store.log();
    // the changes the interrupted operations made, made elsewhere first
    // (every operation of the store records itself)
    let donor = Store::new();
    let donor_keys = donor.dir.encryption_keys();
    donor_keys.store_key("k-done", &key(1)).unwrap();
    donor_keys.store_key("k-arch", &key(2)).unwrap();
    donor_keys.archive_key("k-arch", None).unwrap();

    let with_key = |op, id, seed| {
        Event::new(&Caller::cli(), op)
            .id(id)
            .fingerprint(key(seed).fingerprint.unwrap())
    };
    // lines 1 and 2: an audited store
    keys.store_key("k-arch", &key(2)).unwrap();
    // stored, but the outcome never written
    drop(log.intent(&with_key(Op::Create, "k-done", 1)).unwrap());
    // not stored
    drop(log.intent(&with_key(Op::Create, "k-never", 3)).unwrap());
    // an archive that happened
    drop(log.intent(&with_key(Op::Archive, "k-arch", 2)).unwrap());
    // an operation the key store cannot judge
    drop(log.intent(&event(Op::UserCreate, "alice@pbs")).unwrap());
    // what the interrupted create and archive did
    for name in ["encryption-keys.cfg", "encryption-keys/k-done.enc"] {
        std::fs::copy(donor.tmp.path().join(name), store.tmp.path().join(name)).unwrap();
    }

    let report = verify(&log, false);
    let states: Vec<(u64, StoreState)> = report
        .unfinished
        .iter()
        .map(|u| (u.line, u.state))
        .collect();
    assert_eq!(
        states,
        [
            (3, StoreState::Applied),
            (4, StoreState::NotApplied),
            (5, StoreState::Applied),
            (6, StoreState::Unknown),
        ]
    );
    assert_eq!(report.problems.len(), 4, "{report:#?}");
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.kind == ProblemKind::IntentWithoutOutcome)
    );
    assert!(report.problems[0].message.contains("'k-done'"));
    assert!(!report.is_tampered());

    let repaired = verify(&log, true);
    assert!(repaired.is_clean(), "{repaired:#?}");
    assert_eq!(repaired.repaired.len(), 5, "{:#?}", repaired.repaired);
    let records = log.list(&Filter::default()).unwrap();
    assert_eq!(records.len(), 10);
    assert_eq!(records[6].intent, Some(3));
    assert!(records[6].took_effect());
    assert!(!records[7].took_effect());
    assert!(records[8].took_effect());
    assert!(
        records[9]
            .result
            .as_deref()
            .unwrap()
            .contains("cannot tell")
    );
    // and a repaired log is clean, its checkpoint current
    let again = verify(&log, false);
    assert!(again.is_clean() && again.notices.is_empty(), "{again:#?}");
    assert_eq!(log.stored_checkpoint().unwrap().unwrap().size, 10);
}

#[test]
fn verify_waits_for_an_operation_between_intent_and_outcome() {
    let store = Store::new();
    let log = store.log();
    let pending = log.intent(&event(Op::Create, "k-one")).unwrap();
    let impatient = ConfigDir::with_ownership(store.tmp.path(), Ownership::current_user().unwrap())
        .unwrap()
        .lock_timeout(Duration::from_millis(200));
    let other = AuditLog::open_existing(&impatient).unwrap().unwrap();
    let err = other.verify(&VerifyOptions::default()).unwrap_err();
    assert!(format!("{err:#}").contains("pending.lck"), "{err:#}");
    pending.done(Ok::<_, anyhow::Error>(())).unwrap();
    assert!(other.verify(&VerifyOptions::default()).unwrap().is_clean());
}

/// Waits (at most 10 s) until a thread of this process waits in the queue
/// of the audit lock file `name`: for a state another thread reaches, never
/// for time to pass.
fn until_queued(log: &AuditLog, name: &str) {
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    while crate::lock::queue::waiting_in(&log.audit_dir, name) == 0 {
        assert!(
            std::time::Instant::now() < give_up,
            "nobody queued for {name}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn intents_made_together_hold_pending_once_so_a_queued_verify_cannot_wedge_them() {
    // waiters queue in arrival order: had the second intent taken
    // pending.lck again, it would wait behind the verify queued for it
    // exclusive, which waits for the first intent's hold - until the lock
    // timeout fails the export
    let store = Store::new();
    let log = store.log();
    record(&log, Op::Create, "k-zero");
    let held = log.lock().unwrap();
    std::thread::scope(|scope| {
        let export =
            scope.spawn(|| log.intents(&[event(Op::Export, "k-one"), event(Op::Export, "k-two")]));
        // the export holds pending.lck and waits for the log's lock
        until_queued(&log, AUDIT_LOCK.name);
        let verify = scope.spawn(|| log.verify(&VerifyOptions::default()));
        // the verify waits for pending.lck, behind the export's hold
        until_queued(&log, AUDIT_PENDING_LOCK.name);
        drop(held);
        let pending = export.join().unwrap().unwrap();
        let seqs: Vec<u64> = pending.iter().map(Pending::seq).collect();
        assert_eq!(seqs, [3, 4]);
        for intent in pending {
            intent.done(Ok::<_, anyhow::Error>(())).unwrap();
        }
        let report = verify.join().unwrap().unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(report.unfinished.is_empty(), "{:?}", report.unfinished);
        assert_eq!(report.records, 6);
    });
}

#[test]
fn intents_made_together_that_fail_midway_leave_each_recorded_one_not_made() {
    let store = Store::new();
    let log = store.log();
    let too_long = "x".repeat(super::record::MAX_LINE_LEN);
    let err = log
        .intents(&[event(Op::Export, "k-one"), event(Op::Export, &too_long)])
        .unwrap_err();
    assert!(
        format!("{err:#}")
            .contains("unable to record 'export' in the audit log - nothing was changed"),
        "{err:#}"
    );
    let lines = store.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let outcome: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(outcome["phase"], "outcome");
    assert!(
        outcome["result"]
            .as_str()
            .unwrap()
            .starts_with("not made - the intent of a change made with it could not be recorded"),
        "{outcome}"
    );
    // pending.lck was let go: verify does not wait for it
    let report = verify(&log, false);
    assert!(report.unfinished.is_empty(), "{:?}", report.unfinished);
}

#[test]
fn readers_find_no_log_before_the_first_append() {
    let store = Store::new();
    assert!(AuditLog::open_existing(&store.dir).unwrap().is_none());
    let log = store.log();
    assert!(log.list(&Filter::default()).unwrap().is_empty());
    assert!(log.public_key().unwrap().is_none());
    let report = verify(&log, false);
    assert!(report.is_clean() && report.records == 0, "{report:#?}");
    assert!(Path::new(&store.audit_path("")).is_dir());
}

/// The state of the file at `path` as the audit cache compares it.
fn file_state(path: &Path) -> cache::FileState {
    crate::dir_handle::file_state(&std::fs::File::open(path).unwrap()).unwrap()
}

/// Another process (here a config dir of its own, with its own cache)
/// appends between two operations of this one: this one's next append
/// must not take its kept end of the log for the end, but read the log
/// again and chain to the other's last record.
#[test]
fn an_append_of_another_process_between_two_of_ours_is_chained_to() {
    let store = Store::new();
    let log = store.log();
    record(&log, Op::Create, "k-one");
    // this process keeps the end it left (so the next append reads nothing)
    let kept = store
        .dir
        .audit_cache
        .tail(&file_state(&store.audit_path("log")))
        .expect("the end of the log is kept");
    assert_eq!(kept.tail.seq, 2);

    let other = ConfigDir::with_ownership(store.tmp.path(), Ownership::current_user().unwrap())
        .unwrap()
        .lock_timeout(Duration::from_secs(2));
    let other_log = AuditLog::open_store(&other).unwrap().syslog_socket(None);
    record(&other_log, Op::Archive, "k-one");
    record(&log, Op::Unarchive, "k-one");
    record(&other_log, Op::Delete, "k-one");

    let records: Vec<Record> = store
        .lines()
        .iter()
        .map(|line| record::parse_line(line).unwrap().record)
        .collect();
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6, 7, 8]
    );
    for pair in records.windows(2) {
        assert_eq!(pair[1].prev, pair[0].hash);
    }
    let report = verify(&log, false);
    assert!(report.is_clean(), "{report:#?}");
    assert_eq!(report.records, 8);
}

/// The signing key replaced on disk after this process used it, in place
/// (same inode, same size, perhaps within one tick of the clock) or by a
/// rename: the next checkpoint is signed with the key now on disk, never
/// with the one decoded before.
#[test]
fn a_signing_key_replaced_on_disk_is_the_one_used_next() {
    let store = Store::new();
    let log = store.log();
    record(&log, Op::Create, "k-one");
    let first = log.public_key().unwrap().unwrap();
    let key_path = store.audit_path("signing.key");

    let in_place = checkpoint::SigningKey::generate().unwrap();
    std::fs::write(&key_path, in_place.to_pem().unwrap()).unwrap();
    let pending = log.intent(&event(Op::Archive, "k-one")).unwrap();
    let signed = pending.checkpoint().unwrap().clone();
    pending.done(Ok::<_, anyhow::Error>(())).unwrap();
    assert_eq!(
        signed.check_signature(&in_place.public_key()),
        SignatureCheck::Valid
    );
    assert_eq!(signed.check_signature(&first), SignatureCheck::Absent);

    let renamed = new_signing_key_renamed_over(&store);
    record_signed_by(&log, Op::Unarchive, &renamed);
    assert_eq!(log.public_key().unwrap(), Some(renamed.public_key()));
}

/// A new signing key written beside `.audit/signing.key` and renamed over
/// it, as an administrator replacing it would.
fn new_signing_key_renamed_over(store: &Store) -> checkpoint::SigningKey {
    let key = checkpoint::SigningKey::generate().unwrap();
    let tmp_path = store.audit_path("signing.key.new");
    std::fs::write(&tmp_path, key.to_pem().unwrap()).unwrap();
    std::fs::set_permissions(&tmp_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp_path, store.audit_path("signing.key")).unwrap();
    key
}

/// Records `op` on `k-one` and asserts its checkpoint is signed by `key`.
fn record_signed_by(log: &AuditLog, op: Op, key: &checkpoint::SigningKey) {
    let pending = log.intent(&event(op, "k-one")).unwrap();
    assert_eq!(
        pending
            .checkpoint()
            .unwrap()
            .check_signature(&key.public_key()),
        SignatureCheck::Valid
    );
    pending.done(Ok::<_, anyhow::Error>(())).unwrap();
}

/// A signing key file whose times are old is taken by its state alone
/// (one `statat`): still checked for owner and mode on every use, and a
/// key renamed over it (a new inode) is read and used.
#[test]
fn a_settled_signing_key_is_checked_by_its_state_and_still_replaced() {
    let store = Store::new();
    let log = store.log();
    record(&log, Op::Create, "k-one");
    let first = log.public_key().unwrap().unwrap();
    let key_path = store.audit_path("signing.key");
    let pem = zeroize::Zeroizing::new(std::fs::read(&key_path).unwrap());
    let decoded = Arc::new(checkpoint::SigningKey::from_pem(&pem).unwrap());
    // as if the file had been read with times two seconds old: its state
    // now is settled (a test cannot age a status change time)
    let state = file_state(&key_path);
    store
        .dir
        .audit_cache
        .set_signing_key(pem, &decoded, Some(state));
    assert!(store.dir.audit_cache.settled_signing_key(&state).is_some());
    assert_eq!(log.public_key().unwrap(), Some(first));

    // mode 0640: refused though the key is cached
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = store.log().intent(&event(Op::Delete, "k-one")).unwrap_err();
    assert!(
        format!("{err:#}").contains("lets others read it"),
        "{err:#}"
    );
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();

    // the settled state again, then a key renamed over it
    let state = file_state(&key_path);
    let pem = zeroize::Zeroizing::new(std::fs::read(&key_path).unwrap());
    store
        .dir
        .audit_cache
        .set_signing_key(pem, &decoded, Some(state));
    let renamed = new_signing_key_renamed_over(&store);
    record_signed_by(&log, Op::Archive, &renamed);

    // a key just written is not settled: it is read on every use
    assert!(
        store
            .dir
            .audit_cache
            .settled_signing_key(&file_state(&key_path))
            .is_none()
    );
}

/// Only times at least `SETTLE_SECS` old make a settled state.
#[test]
fn only_old_times_are_settled() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("f");
    std::fs::write(&path, b"x").unwrap();
    let dir = crate::dir_handle::DirHandle::open_path(tmp.path())
        .unwrap()
        .unwrap();
    let mut stat = dir.stat("f").unwrap().unwrap();
    assert_eq!(cache::settled(&stat), None);
    let now = stat.ctime.0.max(stat.mtime.0);
    stat.ctime.0 = now - cache::SETTLE_SECS - 2;
    assert_eq!(cache::settled(&stat), None, "the modification time is new");
    stat.mtime.0 = now - cache::SETTLE_SECS - 2;
    assert_eq!(cache::settled(&stat), Some(stat.state()));
}

/// An outcome writes through its intent's descriptor of the log, and no
/// descriptor is kept after it (a file open for writing between
/// operations would keep the file system from being remounted read-only).
/// A log whose mode was opened up in place between the two, or another
/// file renamed over it, is judged as it is now: refused, and never
/// written through the kept descriptor.
#[test]
fn a_log_changed_between_intent_and_outcome_is_refused() {
    let store = Store::new();
    let log = store.log();
    record(&log, Op::Create, "k-one");
    assert!(store.dir.audit_cache.take_log().is_none());
    let path = store.audit_path("log");
    let set_mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let outcome_error = |pending: Pending| {
        let err = pending.done(Ok::<_, anyhow::Error>(())).unwrap_err();
        format!("{err:#}")
    };

    // the log's mode opened up in place (same inode, perhaps the same
    // times as the intent left): the outcome is refused
    let pending = log.intent(&event(Op::Archive, "k-one")).unwrap();
    set_mode(&path, 0o666);
    let err = outcome_error(pending);
    assert!(err.contains("refusing to trust it"), "{err}");
    set_mode(&path, 0o640);
    assert_eq!(store.lines().len(), 3);

    // another user's copy renamed over the log: refused, left as it was
    let pending = log.intent(&event(Op::Unarchive, "k-one")).unwrap();
    let before = std::fs::read(&path).unwrap();
    let swapped = store.audit_path("log.swapped");
    std::fs::write(&swapped, &before).unwrap();
    set_mode(&swapped, 0o640);
    nix::unistd::chown(&swapped, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    std::fs::rename(&swapped, &path).unwrap();
    let err = outcome_error(pending);
    assert!(err.contains("refusing to trust it"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(store.dir.audit_cache.take_log().is_none());
}
