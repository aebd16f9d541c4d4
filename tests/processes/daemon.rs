//! The API daemon killed with SIGKILL in the middle of a create (and of a
//! delete and an archive toggle):
//! - at each crash point of the store, the daemon started with
//!   `$PBS_FAILPOINT` dies on the way (test builds compile the points in);
//!   the client gets no answer; `verify` finds at most what a crash leaves,
//!   `--repair` removes it, and a restarted daemon serves a consistent store;
//! - killed from outside while clients create keys: every create answered
//!   200 survives.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use pbs_config::audit::{AuditLog, VerifyOptions};
use pbs_config::failpoint::POINTS;
use pbs_test_kit::dirs::snapshot;
use pbs_test_kit::tmpfs::tmpfs_config_dir;
use pbs_test_kit::{ApiDaemon, Manager, Sandbox, https, key_config};

use crate::support::{
    assert_clean, assert_crash_leftovers_only, assert_every_listed_key_loads,
    assert_failure_recorded, audit_records, context, without_audit,
};

/// Starts the daemon on `dir` (with `$PBS_FAILPOINT` = `failpoint`), its
/// stderr in `log`, and waits for its readiness line.
pub fn start_daemon(dir: &Path, log: PathBuf, failpoint: Option<&str>) -> ApiDaemon {
    let mut cmd = ApiDaemon::command(dir, &[]);
    cmd.env_remove("PBS_FAILPOINT");
    if let Some(point) = failpoint {
        cmd.env("PBS_FAILPOINT", point);
    }
    ApiDaemon::spawn(cmd, log)
}

/// Waits for the daemon to exit; returns whether SIGKILL ended it.
pub fn wait_killed(daemon: &mut ApiDaemon) -> bool {
    daemon.wait().signal() == Some(nix::sys::signal::Signal::SIGKILL as i32)
}

/// One request on a fresh TLS connection: the status and body, or `None`
/// when the connection was refused or ended without an answer.
pub fn request(
    port: u16,
    auth: &str,
    method: &str,
    path: &str,
    form: Option<&str>,
) -> Option<(u16, String)> {
    let body = form.map(|form| ("application/x-www-form-urlencoded", form));
    // a killed daemon refuses the connection: no answer either
    let answer = https::once(port, method, path, &[("Authorization", auth)], body).ok()?;
    Some((answer.status, answer.body().to_string()))
}

/// A token of root@pam with Admin on `/`, as `PBSAPIToken=ID:SECRET`.
pub fn admin_token(dir: &Path) -> String {
    let token = Manager::new(dir).root_token("crash", Some("Admin"));
    format!("PBSAPIToken={token}")
}

/// For every crash point: the request that passes it, the daemon killed
/// there, the store checked and repaired, a new daemon serving it.
pub fn daemon_sigkill_in_the_middle_of_a_create() {
    assert!(pbs_config::failpoint::enabled());
    // the points of what the API does: store, delete (into the trash), archive
    let api_points = POINTS.iter().filter(|point| {
        matches!(
            point.split(':').next(),
            Some("store" | "delete" | "archive")
        )
    });
    for point in api_points {
        kill_the_daemon_at(point);
    }
}

/// The daemon killed at `point` in the request that passes it, the store
/// checked and repaired, a new daemon serving it.
fn kill_the_daemon_at(point: &str) {
    let sandbox = Sandbox::new();
    let dir = sandbox.config_dir();
    let auth = admin_token(dir);
    let op = set_up_the_store(dir, point);
    let (method, path, form) = match op {
        "store" => ("POST", "config/encryption-keys", Some("id=victim")),
        "delete" => ("DELETE", "config/encryption-keys/victim", None),
        _ => ("POST", "config/encryption-keys/victim", Some("")),
    };

    let mut daemon = start_daemon(dir, sandbox.file("daemon.log"), Some(point));
    let answer = request(daemon.port, &auth, method, path, form);
    assert!(
        wait_killed(&mut daemon),
        "{point}: the daemon was not killed"
    );
    let log = daemon.log_text();
    assert!(
        log.contains(&format!("failpoint {point} reached")),
        "{point}: {log}"
    );
    assert!(
        answer.is_none(),
        "{point}: an answer from a killed daemon: {answer:?}"
    );

    let (leftovers, repaired) = reconcile_and_repair(dir, point);

    // a new daemon serves the store; the key is wholly there or gone
    let daemon = start_daemon(dir, sandbox.file("daemon2.log"), None);
    let (status, body) = request(
        daemon.port,
        &auth,
        "GET",
        "config/encryption-keys?include-archived=1",
        None,
    )
    .expect("answer");
    assert_eq!(status, 200, "{point}: {body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"bystander"), "{point}: {ids:?}");
    let victim = ids.contains(&"victim");
    if op == "store" && !victim {
        // not stored: the same create works now
        let (status, body) = request(daemon.port, &auth, method, path, form).expect("answer");
        assert_eq!(status, 200, "{point}: create again: {body}");
    }
    println!(
        "    daemon killed at {point}: leftovers {leftovers}, repaired {}, victim {}",
        repaired,
        if victim { "present" } else { "absent" }
    );
}

/// The keys the request of `point` acts on: a bystander, and unless it
/// stores, the victim (archived for a delete); the operation of `point`.
fn set_up_the_store<'a>(dir: &Path, point: &'a str) -> &'a str {
    let config = context(dir);
    let keys = config.encryption_keys();
    keys.store_key("bystander", &key_config(41)).unwrap();
    let op = point.split(':').next().unwrap();
    if op != "store" {
        keys.store_key("victim", &key_config(42)).unwrap();
        if op == "delete" {
            keys.archive_key("victim", None).unwrap();
        }
    }
    op
}

/// After the crash at `point`: the log holds the interrupted request, by
/// the token, from loopback, and reconciles; verify finds only what a
/// crash leaves and repairs it; (leftovers found, repairs made).
fn reconcile_and_repair(dir: &Path, point: &str) -> (usize, usize) {
    let config = context(dir);
    // the log: the interrupted request, by the token, from loopback
    let log = AuditLog::open_existing(&config).unwrap().unwrap();
    let audit_report = log.verify(&VerifyOptions::default()).unwrap();
    assert_eq!(
        audit_report.unfinished.len(),
        1,
        "{point}: {audit_report:#?}"
    );
    let record = &audit_report.unfinished[0].record;
    assert_eq!(record.actor, "root@pam!crash", "{point}");
    assert!(
        matches!(record.origin.as_str(), "api 127.0.0.1" | "api ::1"),
        "{point}: {record:?}"
    );
    let reconciled = log
        .verify(&VerifyOptions {
            repair: true,
            ..Default::default()
        })
        .unwrap();
    assert!(reconciled.is_clean(), "{point}: {reconciled:#?}");
    let report = config.verify(false).unwrap();
    assert_crash_leftovers_only(&report, point);
    let leftovers = report.findings.len();
    let repaired = config.verify(true).unwrap();
    assert_clean(&repaired, point);
    assert_every_listed_key_loads(&config);
    (leftovers, repaired.repaired.len())
}

/// The daemon killed with SIGKILL from outside while four clients create
/// keys as fast as they can: whatever instant the kill lands on, every
/// create that was answered 200 is in the store afterwards and loads,
/// `verify` finds at most what a crash leaves, and `--repair` cleans it.
pub fn daemon_sigkill_under_concurrent_creates() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let sandbox = Sandbox::new();
    let dir = sandbox.config_dir();
    let auth = admin_token(dir);
    let mut daemon = start_daemon(dir, sandbox.file("daemon.log"), None);
    let port = daemon.port;
    let answered = Arc::new(AtomicUsize::new(0));
    let created: Arc<Mutex<Vec<String>>> = Arc::default();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (auth, answered, created, tx) = (
                auth.clone(),
                Arc::clone(&answered),
                Arc::clone(&created),
                tx.clone(),
            );
            std::thread::spawn(move || {
                for n in 0..10_000 {
                    let id = format!("c{client}-{n}");
                    let form = format!("id={id}");
                    let Some((status, body)) =
                        request(port, &auth, "POST", "config/encryption-keys", Some(&form))
                    else {
                        return; // the daemon is gone
                    };
                    assert_eq!(status, 200, "create {id}: {body}");
                    created.lock().unwrap().push(id);
                    answered.fetch_add(1, Ordering::SeqCst);
                    let _ = tx.send(());
                }
            })
        })
        .collect();
    drop(tx);
    // kill once 40 creates were answered, with more in flight
    while answered.load(Ordering::SeqCst) < 40 {
        rx.recv().expect("clients stopped before 40 creates");
    }
    daemon.signal(nix::sys::signal::Signal::SIGKILL);
    assert!(wait_killed(&mut daemon));
    for client in clients {
        client.join().expect("client thread");
    }

    let config = context(dir);
    let report = config.verify(false).unwrap();
    assert_crash_leftovers_only(&report, "after the kill");
    let repaired = config.verify(true).unwrap();
    assert_clean(&repaired, "after the kill");
    assert_every_listed_key_loads(&config);
    let keys = config.encryption_keys();
    let created = created.lock().unwrap();
    for id in created.iter() {
        keys.load_key_config(id, true)
            .unwrap_or_else(|err| panic!("create of {id} was answered 200, but: {err}"));
    }
    let (list, _) = keys.list_keys(true).unwrap();
    println!(
        "    killed after {} answered creates: {} keys stored, {} leftovers repaired",
        created.len(),
        list.len(),
        repaired.repaired.len()
    );
}

/// The API on a full disk and on a read-only file system: a create is
/// answered 500 with a message naming the key and why (no panic, no
/// crash), reads still work, nothing is left behind, and once the fault is
/// gone the same create succeeds.
pub fn api_on_a_full_disk_and_a_read_only_file_system() {
    let Some((tmp, mount, dir)) = tmpfs_config_dir("small", "2m") else {
        return;
    };
    let auth = admin_token(&dir);
    context(&dir)
        .encryption_keys()
        .store_key("before", &key_config(51))
        .unwrap();
    let daemon = start_daemon(&dir, tmp.path().join("daemon.log"), None);
    let port = daemon.port;
    let create = || {
        request(
            port,
            &auth,
            "POST",
            "config/encryption-keys",
            Some("id=new-key"),
        )
    };

    for fault in ["full disk", "read-only file system"] {
        let before = without_audit(snapshot(&dir, &[]));
        let records = audit_records(&dir).len();
        match fault {
            "full disk" => mount.fill("filler", 0),
            _ => mount.remount(true),
        }
        let (status, body) = create().expect("an answer");
        let why = match fault {
            "full disk" => "No space left on device",
            _ => "Read-only file system",
        };
        assert_eq!(status, 500, "{fault}: {body}");
        assert!(
            body.contains("'new-key'") && body.contains(why),
            "{fault}: {body}"
        );
        println!("    {fault}: create answered {status}: {}", body.trim());
        let (status, body) =
            request(port, &auth, "GET", "config/encryption-keys", None).expect("an answer");
        assert_eq!(status, 200, "{fault}: list: {body}");
        assert_eq!(
            without_audit(snapshot(&dir, &[])),
            before,
            "{fault}: store changed"
        );
        // the log on the same disk: the intent fitted into the room the
        // last one reserved, or it was refused (then nothing changed)
        assert_failure_recorded(&dir, records, why, fault);
        match fault {
            "full disk" => std::fs::remove_file(mount.path.join("filler")).unwrap(),
            _ => mount.remount(false),
        }
    }
    assert_clean(&context(&dir).verify(false).unwrap(), "after the faults");
    let (status, body) = create().expect("an answer");
    assert_eq!(status, 200, "create after the faults: {body}");
    drop(daemon);
    drop(mount);
}
