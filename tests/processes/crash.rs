//! SIGKILL at every step of store, delete (into the trash, and --purge),
//! archive, trash restore, trash purge and verify --repair: each of the
//! operation's own crash points, and each step of recording its intent in
//! the audit log. `audit verify` and `verify` together account for what
//! happened. And of the restore of an archived key from an export bundle.

use std::path::Path;

use pbs_api_types::Fingerprint;
use pbs_config::ConfigDir;
use pbs_config::audit::{StoreState, Unfinished};
use pbs_config::failpoint::{AUDIT_POINTS, OUTPUT_POINTS, POINTS};
use pbs_config::verify::FindingKind;
use pbs_key_config::KeyConfig;

use pbs_test_kit::{Manager, key_config};

use crate::support::{
    assert_clean, assert_crash_leftovers_only, assert_every_listed_key_loads, assert_killed_at,
    audit_verify, context, killed_by_sigkill, repair_after_crash, run_killed_at, run_worker,
    worker,
};

/// For each crash point: prepare a store, run the operation in a child with
/// `$PBS_FAILPOINT` set so it is killed there, then check that `verify`
/// finds at most what a crash leaves (orphan, temp and lock files, trash
/// records without their key file and the other way round), that
/// `--repair` sorts it out, and that the key is in the store or in the
/// trash, never gone, unless a purge was asked for.
pub fn sigkill_at_every_crash_point() {
    assert!(
        pbs_config::failpoint::enabled(),
        "pbs-config must be built with the failpoints feature for this test"
    );
    for point in POINTS {
        let op = point.split(':').next().unwrap();
        check_crash_point(op, point);
    }
    // every step of recording the intent, of every operation
    for op in [
        "store",
        "delete",
        "delete-purge",
        "archive",
        "restore",
        "purge",
        "repair",
    ] {
        for point in AUDIT_POINTS {
            check_crash_point(op, point);
        }
    }
}

/// Where the key with `fingerprint` is: `(in the store, in the trash)`.
fn whereabouts(config: &ConfigDir, fingerprint: &Fingerprint) -> (bool, bool) {
    let keys = config.encryption_keys();
    let (list, _) = keys.list_keys(true).unwrap();
    let in_store = list
        .iter()
        .any(|key| key.info.fingerprint.as_ref() == Some(fingerprint));
    let listing = keys.trash().list().unwrap();
    assert!(listing.incomplete.is_empty(), "{listing:?}");
    let in_trash = listing
        .entries
        .iter()
        .any(|entry| entry.record.fingerprint.as_ref() == Some(fingerprint));
    (in_store, in_trash)
}

/// `op` killed at `point` (one of its own, or a step of its intent).
fn check_crash_point(op: &str, point: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let id = "victim";
    let victim = key_config(2);
    let fingerprint = victim.fingerprint.unwrap();
    set_up_the_store(dir, op, id, &victim);
    kill_at(dir, op, id, point);

    // a fresh context, as a new process after the crash would have
    let config = context(dir);
    // the audit log first: the interrupted operation, with what the store
    // shows (a trash purge records each entry after its crash point
    // `purge:locked`, so there it has not begun)
    let audit_report = audit_verify(&config, false);
    assert!(!audit_report.is_tampered(), "{point}: {audit_report:#?}");
    let unfinished = audit_report.unfinished.clone();
    let began = point != "purge:locked";
    assert_eq!(
        unfinished.len(),
        usize::from(began),
        "{point}: {audit_report:#?}"
    );
    let report = config.verify(false).unwrap();
    let leftovers: Vec<FindingKind> = report.findings.iter().map(|f| f.kind).collect();
    assert_crash_leftovers_only(&report, point);
    assert!(leftovers.len() <= 2, "{point}: {:#?}", report.findings);

    let repaired = repair_after_crash(&config, leftovers.len(), point);

    let keys = config.encryption_keys();
    let (list, _) = keys.list_keys(true).unwrap();
    assert!(
        list.iter().any(|k| k.id == "bystander"),
        "{point}: bystander lost"
    );
    assert_eq!(
        whereabouts(&config, &key_config(3).fingerprint.unwrap()),
        (false, true),
        "{point}: the trash's bystander moved"
    );
    let (in_store, in_trash) = whereabouts(&config, &fingerprint);
    assert!(
        !(in_store && in_trash),
        "{point}: the key is in both places"
    );
    // verify accounts for every key in the trash
    let in_trash_count = keys.trash().list().unwrap().entries.len();
    assert_eq!(repaired.keys_in_trash, in_trash_count, "{point}");
    let outcome = match (op, in_store, in_trash) {
        ("store", true, _) => "stored",
        ("store", false, false) => "not stored",
        ("archive", true, _) => match list.iter().find(|k| k.id == id) {
            Some(key) if key.archived_at.is_some() => "archived",
            _ => "not archived",
        },
        (_, true, _) => "in the store",
        (_, false, true) => "in the trash",
        // gone only where a purge was asked for, past the point of no return
        (_, false, false) if matches!(point, "purge:key-removed" | "delete-purge:key-removed") => {
            "purged"
        }
        _ => panic!("{point}: the key is gone ({leftovers:?})"),
    };
    // what the log said the interrupted operation did is what happened
    if let Some(unfinished) = unfinished.first() {
        assert_the_log_tells_what_happened(unfinished, op, outcome, point);
    }
    println!(
        "    crash point {point} of {op}: leftovers {leftovers:?}, repaired {}, key {outcome}, \
         log: {}",
        repaired.repaired.len(),
        unfinished
            .first()
            .map_or("nothing begun".to_string(), |u| format!("{:?}", u.state))
    );
}

/// The store `op` runs on: a bystander key, an entry in the trash no
/// operation here may touch, and the key `id` (`victim`) where `op` finds it.
fn set_up_the_store(dir: &Path, op: &str, id: &str, victim: &KeyConfig) {
    let config = context(dir);
    let keys = config.encryption_keys();
    keys.store_key("bystander", &key_config(1)).unwrap();
    // an entry of the trash no operation here may touch
    keys.store_key("trashed", &key_config(3)).unwrap();
    keys.archive_key("trashed", None).unwrap();
    keys.remove_key("trashed", None).unwrap();

    match op {
        "store" => {}
        "repair" => {
            // a key file copied in: an orphan repair moves into the trash
            let path = keys.key_dir().join("victim.enc");
            std::fs::write(&path, victim.to_json().unwrap()).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640))
                .unwrap();
        }
        _ => {
            keys.store_key(id, victim).unwrap();
            if op != "archive" {
                keys.archive_key(id, None).unwrap();
            }
            if op == "restore" || op == "purge" {
                keys.remove_key(id, None).unwrap();
            }
        }
    }
}

/// Runs `op` on `id` in a worker killed by SIGKILL at `point`.
fn kill_at(dir: &Path, op: &str, id: &str, point: &str) {
    let mut cmd = worker("op");
    cmd.arg(dir)
        .arg(op)
        .arg(id)
        .arg("2")
        .env("PBS_FAILPOINT", point);
    let output = run_worker(cmd);
    assert_killed_at(&output, point, point);
}

/// What the log said the interrupted operation did is what happened: the
/// operation it names, in the state the store shows (`outcome`).
fn assert_the_log_tells_what_happened(
    unfinished: &Unfinished,
    op: &str,
    outcome: &str,
    point: &str,
) {
    let recorded = match op {
        "store" => "import",
        "restore" => "trash-restore",
        "repair" => "repair-orphan",
        op => op,
    };
    assert_eq!(unfinished.record.op, recorded, "{point}");
    let expected = match (op, outcome) {
        ("repair", _) => StoreState::Unknown,
        ("store", "stored") | ("archive", "archived") | ("restore", "in the store") => {
            StoreState::Applied
        }
        ("delete" | "delete-purge", "in the trash" | "purged") => StoreState::Applied,
        // a purge's key file gone from its trash entry
        ("purge", "purged") => StoreState::Applied,
        _ => StoreState::NotApplied,
    };
    assert_eq!(
        unfinished.state, expected,
        "{point}: key {outcome}: {unfinished:#?}"
    );
}

/// A key restored from an export bundle as archived, killed at every step
/// of the store path it takes: afterwards the key is absent (its file an
/// orphan that repair moves into the trash) or in the store archived,
/// never active: its entry is written whole, archive time included.
pub fn restore_of_an_archived_key_never_leaves_it_active() {
    assert!(
        pbs_config::failpoint::enabled(),
        "pbs-config must be built with the failpoints feature for this test"
    );
    for point in POINTS.iter().filter(|point| point.starts_with("store:")) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        context(dir)
            .encryption_keys()
            .store_key("bystander", &key_config(1))
            .unwrap();
        let mut cmd = worker("op");
        cmd.arg(dir)
            .args(["restore-archived", "victim", "2"])
            .env("PBS_FAILPOINT", point);
        let output = run_worker(cmd);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            killed_by_sigkill(&output),
            "{point}: the worker was not killed ({:?}): {stderr}",
            output.status
        );
        let config = context(dir);
        let report = config.verify(false).unwrap();
        assert_crash_leftovers_only(&report, point);
        assert_clean(&config.verify(true).unwrap(), point);
        assert_every_listed_key_loads(&config);
        let (list, _) = config.encryption_keys().list_keys(true).unwrap();
        let outcome = match list.iter().find(|key| key.id == "victim") {
            Some(key) => {
                assert!(key.archived_at.is_some(), "{point}: restored active");
                "restored, archived"
            }
            None => {
                let (_, in_trash) = whereabouts(&config, &key_config(2).fingerprint.unwrap());
                assert!(
                    in_trash || !point.ends_with("written"),
                    "{point}: the key file is lost"
                );
                "not restored"
            }
        };
        println!("    crash point {point}: key {outcome}");
    }
}

/// `create --output-file` killed after the key's file is written, before
/// it has its name: nothing is left beside the target, neither the target
/// nor a temp file holding the key (before stop 33 a `.tmp_XXXXXX` of
/// root's, 0600, holding the key stayed there). The key itself is in the
/// store, as a create killed after its store leaves it.
pub fn a_create_killed_before_its_output_file_is_named_leaves_nothing_beside_it() {
    assert!(
        pbs_config::failpoint::enabled(),
        "pbs-config must be built with the failpoints feature for this test"
    );
    let [point] = OUTPUT_POINTS else {
        panic!("one output point: {OUTPUT_POINTS:?}");
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let target = out.join("new-key.json");
    let target_arg = target.display().to_string();
    let create = Manager::new(&dir).command(&[
        "encryption-key",
        "create",
        "new-key",
        "--output-file",
        &target_arg,
    ]);
    run_killed_at(create, point);
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{point}: left beside the target: {left:?}");

    // the same command again makes the file, and only it
    let again = Manager::new(&dir).run(&[
        "encryption-key",
        "create",
        "other-key",
        "--output-file",
        &target_arg,
    ]);
    assert_eq!(again.code, 0, "{again:?}");
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(left, ["new-key.json"]);
    assert_eq!(
        std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(&target).unwrap()) & 0o7777,
        0o600
    );
}
