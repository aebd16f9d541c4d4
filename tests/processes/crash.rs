//! SIGKILL at every step of store, delete and archive.

use pbs_config::failpoint::POINTS;
use pbs_config::verify::FindingKind;

use pbs_test_kit::key_config;

use crate::support::{
    assert_clean, assert_crash_leftovers_only, assert_every_listed_key_loads, context,
    killed_by_sigkill, run_worker, worker,
};

/// For each crash point: prepare a store, run the operation in a child with
/// `$PBS_FAILPOINT` set so it is killed there, then check that `verify`
/// finds at most an orphan key, temp or lock file, that `--repair` removes
/// it, and that the key is either fully there or fully gone.
pub fn sigkill_at_every_crash_point() {
    assert!(
        pbs_config::failpoint::enabled(),
        "pbs-config must be built with the failpoints feature for this test"
    );
    for point in POINTS {
        check_crash_point(point);
    }
}

fn check_crash_point(point: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = context(dir);
    let keys = config.encryption_keys();
    keys.store_key("bystander", &key_config(1)).unwrap();

    let op = point.split(':').next().unwrap();
    let id = "victim";
    if op != "store" {
        keys.store_key(id, &key_config(2)).unwrap();
        if op == "delete" {
            keys.archive_key(id, None).unwrap();
        }
    }

    let mut cmd = worker("op");
    cmd.arg(dir)
        .arg(op)
        .arg(id)
        .arg("7")
        .env("PBS_FAILPOINT", point);
    let output = run_worker(cmd);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        killed_by_sigkill(&output),
        "{point}: the worker was not killed ({:?}): {stderr}",
        output.status
    );
    assert!(
        stderr.contains(&format!("failpoint {point} reached")),
        "{point}: {stderr}"
    );

    // a fresh context, as a new process after the crash would have
    let config = context(dir);
    let report = config.verify(false).unwrap();
    let leftovers: Vec<FindingKind> = report.findings.iter().map(|f| f.kind).collect();
    assert_crash_leftovers_only(&report, point);
    assert!(leftovers.len() <= 2, "{point}: {:#?}", report.findings);

    let repaired = config.verify(true).unwrap();
    assert_clean(&repaired, point);
    assert_eq!(repaired.repaired.len(), leftovers.len(), "{point}");
    // the invariant: every config entry has its key file and fingerprint
    assert_every_listed_key_loads(&config);

    let keys = config.encryption_keys();
    let (list, _) = keys.list_keys(true).unwrap();
    assert!(
        list.iter().any(|k| k.id == "bystander"),
        "{point}: bystander lost"
    );
    let victim = list.iter().find(|k| k.id == id);
    let outcome = match (op, victim) {
        ("store", None) => "not stored",
        ("store", Some(_)) => "stored",
        ("delete", None) => "deleted",
        ("delete", Some(_)) => "not deleted",
        (_, Some(k)) if k.archived_at.is_some() => "archived",
        (_, Some(_)) => "not archived",
        (_, None) => panic!("{point}: archive lost the key"),
    };
    println!(
        "    crash point {point}: leftovers {leftovers:?}, repaired {}, key {outcome}",
        repaired.repaired.len()
    );
}
