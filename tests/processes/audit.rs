//! The audit log with real processes: SIGKILL between intent and outcome,
//! several processes appending at once, a full and a read-only file
//! system under `.audit/` (through the library and through the CLI).
//!
//! The operation the workers audit is `store_key`, which records itself
//! (intent, change, outcome); the crash test of every other operation is
//! `crash.rs`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Error, bail};

use pbs_config::ConfigDir;
use pbs_config::audit::{
    AuditLog, AuditReport, Caller, Event, Filter, Op, Phase, ProblemKind, StoreState, VerifyOptions,
};

use pbs_test_kit::dirs::snapshot;
use pbs_test_kit::key_config;
use pbs_test_kit::tmpfs::{Tmpfs, tmpfs_config_dir};

use crate::support::{
    assert_clean, assert_error, assert_relocated_only, audit_dir_on_tmpfs, context, fault_store,
    killed_by_sigkill, manager, run_worker, run_writing_commands_again, worker, writing_commands,
};

fn log(dir: &ConfigDir) -> AuditLog<'_> {
    AuditLog::open_store(dir).unwrap().syslog_socket(None)
}

fn audit_verify(dir: &ConfigDir, repair: bool) -> AuditReport {
    log(dir)
        .verify(&VerifyOptions {
            repair,
            ..Default::default()
        })
        .unwrap()
}

/// A store of key `id` (it records itself: intent, change, outcome).
fn audited_store(dir: &ConfigDir, id: &str, seed: u64) -> Result<(), Error> {
    dir.encryption_keys()
        .store_key(id, &key_config(seed))
        .map(|_| ())
}

/// Worker kinds of this module; `None` if `kind` is none of them.
pub fn run_worker_kind(kind: &str, args: &[String]) -> Option<ExitCode> {
    let result = match kind {
        "audit-store" => audit_store_worker(args),
        "audit-append" => audit_append_worker(args),
        _ => return None,
    };
    Some(match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("worker failed: {err:#}");
            ExitCode::FAILURE
        }
    })
}

/// `audit-store DIR ID SEED`: one audited store (the crash test sets
/// `$PBS_FAILPOINT`).
fn audit_store_worker(args: &[String]) -> Result<(), Error> {
    let [dir, id, seed] = args else {
        bail!("usage: audit-store DIR ID SEED");
    };
    let dir = ConfigDir::new(dir)?;
    audited_store(&dir, id, seed.parse()?)
}

/// `audit-append DIR INDEX COUNT CHANGES`: COUNT audited changes. Even
/// workers make each change under the key store's config lock (intent,
/// one line `wINDEX-N` appended to CHANGES, outcome), as a store
/// operation would; odd workers append intent and outcome with no lock of
/// their own.
fn audit_append_worker(args: &[String]) -> Result<(), Error> {
    let [dir, index, count, changes] = args else {
        bail!("usage: audit-append DIR INDEX COUNT CHANGES");
    };
    let index: usize = index.parse()?;
    let dir = ConfigDir::new(dir)?;
    let log = log(&dir);
    for n in 0..count.parse::<usize>()? {
        let id = format!("w{index}-{n}");
        let event = Event::new(&Caller::cli(), Op::Archive).id(&id);
        if index.is_multiple_of(2) {
            let _config_lock = dir.encryption_keys().lock_config()?;
            let pending = log.intent(&event)?;
            let change = std::fs::OpenOptions::new()
                .append(true)
                .open(changes)
                .and_then(|mut file| writeln!(file, "{id}"))
                .map_err(Error::from);
            pending.done(change)?;
        } else {
            log.intent(&event)?.done(Ok(()))?;
        }
    }
    Ok(())
}

/// SIGKILL at each step of an audited store: at each audit crash point
/// inside the intent's append, and at two of the store's own (before the
/// change and after it). Each time `audit verify` reports exactly one
/// interrupted operation and whether the store shows the key, the store's
/// `verify` finds at most crash leftovers, and `audit verify --repair`
/// records the outcome so that the log verifies clean.
pub fn sigkill_between_intent_and_outcome() {
    assert!(pbs_config::failpoint::enabled());
    let mut points: Vec<&str> = pbs_config::failpoint::AUDIT_POINTS.to_vec();
    points.extend(["store:locked", "store:config-written"]);
    for point in points {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let config = context(dir);
        audited_store(&config, "bystander", 1).unwrap();

        let mut cmd = worker("audit-store");
        cmd.arg(dir)
            .arg("victim")
            .arg("7")
            .env("PBS_FAILPOINT", point);
        let output = run_worker(cmd);
        assert!(
            killed_by_sigkill(&output),
            "{point}: not killed: {}",
            String::from_utf8_lossy(&output.stderr)
        );

        let config = context(dir);
        let stored = config
            .encryption_keys()
            .list_keys(true)
            .unwrap()
            .0
            .iter()
            .any(|k| k.id == "victim");
        let report = audit_verify(&config, false);
        assert_eq!(report.unfinished.len(), 1, "{point}: {report:#?}");
        let unfinished = &report.unfinished[0];
        assert_eq!(unfinished.line, 3, "{point}");
        assert_eq!(unfinished.record.ids, ["victim"]);
        let expected = if stored {
            StoreState::Applied
        } else {
            StoreState::NotApplied
        };
        assert_eq!(unfinished.state, expected, "{point}: {report:#?}");
        assert_eq!(stored, point == "store:config-written", "{point}");
        let kinds: Vec<ProblemKind> = report.problems.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, [ProblemKind::IntentWithoutOutcome], "{point}");
        // the stored checkpoint is never ahead of the log
        assert!(!report.is_tampered(), "{point}: {report:#?}");

        // the log reconciled first (the store's repair records its own
        // changes to the same key); the store itself holds at most what a
        // crash leaves
        let repaired = audit_verify(&config, true);
        assert!(repaired.is_clean(), "{point}: {repaired:#?}");
        let store_report = config.verify(true).unwrap();
        assert_clean(&store_report, point);
        let again = audit_verify(&config, false);
        assert!(
            again.is_clean() && again.notices.is_empty(),
            "{point}: {again:#?}"
        );
        let outcome = log(&config)
            .last(&Filter {
                key: Some("victim".into()),
                ops: vec![Op::Import],
                phase: Some(Phase::Outcome),
                ..Default::default()
            })
            .unwrap()
            .unwrap();
        assert_eq!(outcome.intent, Some(3));
        assert_eq!(outcome.took_effect(), stored, "{point}");
        let result = outcome.result.as_deref().unwrap_or_default();
        assert!(!result.contains("cannot tell"), "{point}: {result}");
        // and the next operation appends after it
        audited_store(&config, "after", 9).unwrap();
        assert!(audit_verify(&config, false).is_clean(), "{point}");
        println!(
            "    crash point {point}: key {}, reconciled as {:?}",
            if stored { "stored" } else { "not stored" },
            outcome.result.unwrap()
        );
    }
}

const WORKERS: usize = 6;
const APPENDS: usize = 40;

/// Six processes append at once, three of them under the key store's
/// config lock. The log is one valid chain with every record; each
/// worker's records are in its own order; and for the locked workers the
/// log order is the order of their changes (the lines of CHANGES), each
/// intent followed by its own outcome before any other locked record.
pub fn concurrent_appends_stay_one_chain_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    std::fs::create_dir(&dir).unwrap();
    let changes = tmp.path().join("changes");
    std::fs::write(&changes, "").unwrap();
    let children: Vec<_> = (0..WORKERS)
        .map(|index| {
            let mut cmd = worker("audit-append");
            cmd.arg(&dir)
                .arg(index.to_string())
                .arg(APPENDS.to_string())
                .arg(&changes);
            std::thread::spawn(move || run_worker(cmd))
        })
        .collect();
    for (index, child) in children.into_iter().enumerate() {
        let output = child.join().unwrap();
        crate::support::assert_success(&output, &format!("worker {index}"));
    }

    let config = context(&dir);
    let report = audit_verify(&config, false);
    assert!(report.is_clean(), "{report:#?}");
    assert!(report.notices.is_empty(), "{report:#?}");
    assert_eq!(report.records, (WORKERS * APPENDS * 2) as u64);

    let records = log(&config).list(&Filter::default()).unwrap();
    let worker_of = |id: &str| -> (usize, usize) {
        let (w, n) = id[1..].split_once('-').unwrap();
        (w.parse().unwrap(), n.parse().unwrap())
    };
    let mut next = [0usize; WORKERS];
    let mut locked_order = Vec::new();
    let mut open_locked: Option<u64> = None;
    for record in &records {
        let (w, n) = worker_of(&record.ids[0]);
        if record.phase == Phase::Intent {
            assert_eq!(n, next[w], "worker {w} out of order at seq {}", record.seq);
        } else {
            next[w] += 1;
        }
        if w.is_multiple_of(2) {
            match record.phase {
                Phase::Intent => {
                    assert!(
                        open_locked.is_none(),
                        "two locked changes at once: {record:?}"
                    );
                    open_locked = Some(record.seq);
                    locked_order.push(record.ids[0].clone());
                }
                Phase::Outcome => {
                    assert_eq!(record.intent, open_locked.take(), "{record:?}");
                    assert!(record.took_effect());
                }
            }
        }
    }
    assert_eq!(next, [APPENDS; WORKERS]);
    let changed: Vec<String> = std::fs::read_to_string(&changes)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        locked_order, changed,
        "the log order is not the order of changes"
    );
    println!(
        "    {WORKERS} processes x {APPENDS}: {} records, one chain",
        records.len()
    );
}

/// A store on a tmpfs with a tmpfs of its own at its audit directory.
/// Fields drop in order: the inner mount first.
struct AuditOnTmpfs {
    inner: Tmpfs,
    _outer: Tmpfs,
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
}

/// A store holding three keys (six records), its audit directory a tmpfs
/// of `size`. `None` when not root.
fn store_with_audit_on_tmpfs(size: &str) -> Option<AuditOnTmpfs> {
    let (tmp, outer, dir) = tmpfs_config_dir("store", "8m")?;
    let inner = audit_dir_on_tmpfs(&dir, size);
    let config = context(&dir);
    audited_store(&config, "before", 3).unwrap();
    audited_store(&config, "one", 4).unwrap();
    audited_store(&config, "two", 5).unwrap();
    Some(AuditOnTmpfs {
        inner,
        _outer: outer,
        _tmp: tmp,
        dir,
    })
}

/// The audit directory on a full tmpfs (no page free, then two): audited
/// operations go on while the room reserved for the log lasts; the first
/// intent that finds no room fails with "No space left on device", naming
/// the log, and leaves the store and the log byte for byte as they were;
/// the operation never runs. Every operation that did run has its outcome:
/// the outcome's room is reserved with the intent. With space again the
/// operation goes through.
pub fn intent_on_a_full_disk_fails_and_changes_nothing() {
    let Some(store) = store_with_audit_on_tmpfs("256k") else {
        return;
    };
    let (mount, dir) = (&store.inner, &store.dir);
    let config = context(dir);
    let mut n = 0;
    for free_pages in [0, 2] {
        mount.fill("filler", free_pages);
        let (before, err) = loop {
            n += 1;
            assert!(n < 200, "the log never filled up");
            let before = snapshot(dir, &["filler"]);
            if let Err(err) = audited_store(&config, &format!("key-{n}"), 100 + n) {
                break (before, err);
            }
        };
        let text = err.to_string();
        assert!(
            text.contains("No space left on device")
                && text.contains("nothing was changed")
                && text.contains(".audit/log"),
            "{free_pages} pages: {text}"
        );
        assert_eq!(
            snapshot(dir, &["filler"]),
            before,
            "{free_pages} free pages"
        );
        let report = audit_verify(&config, false);
        assert!(report.is_clean(), "{report:#?}");
        assert!(report.unfinished.is_empty());
        println!(
            "    {free_pages} free pages, after {} records: {text}",
            report.records
        );
        std::fs::remove_file(mount.path.join("filler")).unwrap();
    }
    audited_store(&config, "new-key", 6).unwrap();
    assert!(audit_verify(&config, false).is_clean());
    assert_clean(&config.verify(false).unwrap(), "after the full disk");
}

/// The audit directory read-only: the intent fails naming the file system,
/// the store is unchanged.
pub fn intent_on_a_read_only_audit_dir_fails_and_changes_nothing() {
    let Some(store) = store_with_audit_on_tmpfs("1m") else {
        return;
    };
    let (mount, dir) = (&store.inner, &store.dir);
    let config = context(dir);
    mount.remount(true);
    let before = snapshot(dir, &[]);
    let err = audited_store(&config, "new-key", 6).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("Read-only file system") && text.contains("nothing was changed"),
        "{text}"
    );
    assert_eq!(snapshot(dir, &[]), before);
    // readers still work
    assert_eq!(log(&config).list(&Filter::default()).unwrap().len(), 6);
    println!("    read-only: {text}");
    mount.remount(false);
    audited_store(&config, "new-key", 6).unwrap();
    let report = audit_verify(&config, false);
    assert!(report.is_clean(), "{report:#?}");
}

/// The audit directory of an existing store moved onto a fresh tmpfs of
/// `size`: its files copied there (modes and owners kept), so the log has
/// no room reserved beyond its end.
fn move_audit_dir_to_tmpfs(dir: &std::path::Path, size: &str) -> Tmpfs {
    use std::os::unix::fs::MetadataExt;
    let audit_dir = context(dir).encryption_keys().key_dir().join(".audit");
    let saved: Vec<(std::path::PathBuf, Vec<u8>, std::fs::Metadata)> =
        std::fs::read_dir(&audit_dir)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                let meta = std::fs::metadata(&path).unwrap();
                (path.clone(), std::fs::read(&path).unwrap(), meta)
            })
            .collect();
    let dir_meta = std::fs::metadata(&audit_dir).unwrap();
    let mount = Tmpfs::mount(&audit_dir, size);
    for (path, data, meta) in &saved {
        std::fs::write(path, data).unwrap();
        std::fs::set_permissions(path, meta.permissions()).unwrap();
        std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid())).unwrap();
    }
    std::fs::set_permissions(&audit_dir, dir_meta.permissions()).unwrap();
    std::os::unix::fs::chown(&audit_dir, Some(dir_meta.uid()), Some(dir_meta.gid())).unwrap();
    mount
}

/// Fail closed end to end: with the audit log's directory full (a tmpfs
/// shrunk to what it holds) or read-only, every writing command of the CLI
/// (keys, sync job, repair, users, tokens, ACLs) fails with one error line
/// that says nothing was changed and why, and the store, the log with it,
/// is byte for byte as it was. With room again, each works and the log
/// verifies.
pub fn cli_operations_fail_closed_without_a_writable_log() {
    let Some((tmp, outer, dir)) = tmpfs_config_dir("store", "8m") else {
        return;
    };
    let import = tmp.path().join("import.enc");
    fault_store(&dir, &import);
    let inner = move_audit_dir_to_tmpfs(&dir, "1m");
    let mut commands = writing_commands(&import);
    let cmd = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    commands.extend([
        (cmd(&["user", "create", "carol@pbs"]), "user.cfg"),
        (
            cmd(&["user", "generate-token", "root@pam", "fail-closed"]),
            "token.shadow",
        ),
        (
            cmd(&["acl", "update", "/system", "Audit", "--auth-id", "root@pam"]),
            "acl.cfg",
        ),
    ]);

    for (fault, why) in [
        ("full", "No space left on device"),
        ("read-only", "Read-only file system"),
    ] {
        match fault {
            "full" => inner.shrink_to_used(),
            _ => inner.remount(true),
        }
        let before = snapshot(&dir, &[]);
        for (args, _first_file) in &commands {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let what = format!("{fault}: {}", args.join(" "));
            let run = manager(&dir, &args, None);
            let line = assert_error(&run, &what, &["nothing was changed", why, ".audit/log"]);
            assert_eq!(snapshot(&dir, &[]), before, "{what}: the store changed");
            println!("    {what}: {line}");
        }
        assert_relocated_only(&context(&dir).verify(false).unwrap(), fault);
        let report = audit_verify(&context(&dir), false);
        assert!(report.is_clean(), "{fault}: {report:#?}");
        match fault {
            "full" => inner.resize("1m"),
            _ => inner.remount(false),
        }
    }
    run_writing_commands_again(&dir, &import);
    let report = audit_verify(&context(&dir), false);
    assert!(report.is_clean(), "{report:#?}");
    drop(inner);
    drop(outer);
}
