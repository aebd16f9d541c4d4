//! Spawning worker processes of this binary, and the fault store and
//! checks the tests of this binary share (the rest is in the test kit).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};

use nix::unistd::{Gid, Uid};

use pbs_config::ConfigDir;
use pbs_config::audit::{AuditLog, AuditReport, Filter, Phase, Record, VerifyOptions};
use pbs_config::verify::{FindingKind, VerifyReport};
use pbs_test_kit::tmpfs::Tmpfs;
use pbs_test_kit::{Manager, Run, key_config};

/// A command running this binary as a worker of `kind`.
pub fn worker(kind: &str) -> Command {
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut cmd = Command::new(exe);
    cmd.arg("__worker").arg(kind);
    cmd.env_remove("PBS_FAILPOINT");
    cmd.env_remove("PBS_FAILPOINT_HIT");
    cmd
}

/// A `hold-lock` worker holding `lock` (a path relative to `dir`; the
/// config lock if `None`) until released or dropped.
pub struct Holder(Child);

impl Holder {
    /// Starts the worker and waits until it holds the lock.
    pub fn hold(dir: &Path, lock: Option<&str>) -> Self {
        let mut child = worker("hold-lock")
            .arg(dir)
            .args(lock)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked", "holder of {lock:?}");
        Self(child)
    }

    /// Whether the worker still runs (and so holds the lock).
    pub fn is_running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    /// Lets the worker go; returns its exit status.
    pub fn release(mut self) -> ExitStatus {
        drop(self.0.stdin.take());
        self.0.wait().unwrap()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// Runs a worker to completion and returns its output.
pub fn run_worker(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .expect("unable to run worker process")
}

/// Panics with the worker's stderr unless it exited successfully.
pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Whether the process was killed by SIGKILL.
pub fn killed_by_sigkill(output: &Output) -> bool {
    output.status.signal() == Some(nix::sys::signal::Signal::SIGKILL as i32)
}

/// Runs `command` with `$PBS_FAILPOINT` = `point`: it must die there,
/// killed by SIGKILL after announcing the point.
pub fn run_killed_at(mut command: Command, point: &str) {
    let output = command.env("PBS_FAILPOINT", point).output().unwrap();
    assert_killed_at(&output, point, point);
}

/// The process of `output` (`what`) died at the crash point `point`:
/// killed by SIGKILL after announcing the point.
pub fn assert_killed_at(output: &Output, point: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        killed_by_sigkill(output),
        "{what}: not killed ({:?}): {stderr}",
        output.status
    );
    assert!(
        stderr.contains(&format!("failpoint {point} reached")),
        "{what}: {stderr}"
    );
}

/// Every key listed loads, checked against its fingerprint.
pub fn assert_every_listed_key_loads(dir: &ConfigDir) {
    let keys = dir.encryption_keys();
    let (list, _) = keys.list_keys(true).expect("list keys");
    for key in list {
        if let Err(err) = keys.load_key_config(&key.id, false) {
            panic!("listed key '{}' does not load: {err}", key.id);
        }
    }
}

/// `verify` must find nothing.
pub fn assert_clean(report: &VerifyReport, context: &str) {
    assert!(
        report.is_clean(),
        "{context}: verify is not clean: {:#?}",
        report.findings
    );
}

/// `verify` after a crash finds at most what a crash leaves: orphan key
/// files, temporary files, stale lock files, and trash entries with one of
/// their two files (see `pbs_config::trash`).
pub fn assert_crash_leftovers_only(report: &VerifyReport, context: &str) {
    for finding in &report.findings {
        assert!(
            matches!(
                finding.kind,
                FindingKind::OrphanKeyFile
                    | FindingKind::TempFile
                    | FindingKind::StaleLockFile
                    | FindingKind::StaleTrashRecord
                    | FindingKind::UnrecordedTrashFile
            ),
            "{context}: verify found more than leftovers: {:#?}",
            report.findings
        );
    }
}

/// Leaves the audit log's files out of a snapshot: a failed operation
/// leaves the store as it was, but its intent and error outcome in the log
/// (see [`assert_failure_recorded`]).
pub fn without_audit(files: Vec<(PathBuf, Vec<u8>)>) -> Vec<(PathBuf, Vec<u8>)> {
    files
        .into_iter()
        .filter(|(path, _)| !path.to_string_lossy().contains("/.audit/"))
        .collect()
}

/// `audit verify` of the store's log, which must exist (`--repair` with
/// `repair`), sending nothing to syslog.
pub fn audit_verify(config: &ConfigDir, repair: bool) -> AuditReport {
    AuditLog::open_existing(config)
        .unwrap()
        .expect("an audit log")
        .syslog_socket(None)
        .verify(&VerifyOptions {
            repair,
            ..Default::default()
        })
        .unwrap()
}

/// After a crash (`what`) that left `leftovers` findings for `verify`:
/// the log reconciled first (before the store's repair records its own
/// changes to the same keys), then the store repaired, exactly those
/// findings; then both verify clean and every listed key loads (the
/// invariant: every config entry has its key file and fingerprint).
/// Returns the store's repair report.
pub fn repair_after_crash(config: &ConfigDir, leftovers: usize, what: &str) -> VerifyReport {
    let audit_repaired = audit_verify(config, true);
    assert!(audit_repaired.is_clean(), "{what}: {audit_repaired:#?}");
    let repaired = config.verify(true).unwrap();
    assert_clean(&repaired, what);
    assert_eq!(repaired.repaired.len(), leftovers, "{what}");
    let audit_again = audit_verify(config, false);
    assert!(
        audit_again.is_clean() && audit_again.notices.is_empty(),
        "{what}: {audit_again:#?}"
    );
    assert_every_listed_key_loads(config);
    repaired
}

/// The records of the audit log of the store in `dir` (none without one).
pub fn audit_records(dir: &Path) -> Vec<Record> {
    let config = context(dir);
    match AuditLog::open_existing(&config).unwrap() {
        Some(log) => log.list(&Filter::default()).unwrap(),
        None => Vec::new(),
    }
}

/// After an operation that failed (`what`): the audit log grew from
/// `before` records by nothing (its intent was refused: nothing was
/// changed) or by one intent and its outcome, an error containing `why`;
/// and it verifies. Returns how many records it grew by.
pub fn assert_failure_recorded(dir: &Path, before: usize, why: &str, what: &str) -> usize {
    let records = audit_records(dir);
    let new = &records[before..];
    match new {
        [] => {}
        [intent, outcome] => {
            assert_eq!(intent.phase, Phase::Intent, "{what}: {new:#?}");
            assert_eq!(outcome.intent, Some(intent.seq), "{what}: {new:#?}");
            let result = outcome.result.as_deref().unwrap_or_default();
            assert!(
                !outcome.took_effect() && result.contains(why),
                "{what}: the outcome is not the failure: {new:#?}"
            );
        }
        _ => panic!("{what}: the log grew by more than one operation: {new:#?}"),
    }
    let config = context(dir);
    if let Some(log) = AuditLog::open_existing(&config).unwrap() {
        let report = log.verify(&VerifyOptions::default()).unwrap();
        assert!(report.is_clean(), "{what}: {report:#?}");
    }
    new.len()
}

/// A tmpfs of `size` of its own at the audit log's directory of the store
/// in `dir` (created empty, root:backup 0750 as the store makes it): the
/// store's disk fills up while the log has room. Drop it before the
/// store's mount.
pub fn audit_dir_on_tmpfs(dir: &Path, size: &str) -> Tmpfs {
    let config = context(dir);
    let key_dir = config.encryption_keys().key_dir();
    let ownership = config.ownership();
    for (path, mode) in [(key_dir.clone(), 0o750), (key_dir.join(".audit"), 0o750)] {
        if !path.exists() {
            std::fs::create_dir(&path).unwrap();
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(
            &path,
            Some(ownership.file_uid.as_raw()),
            Some(ownership.file_gid.as_raw()),
        )
        .unwrap();
    }
    let audit_dir = key_dir.join(".audit");
    let mount = Tmpfs::mount(&audit_dir, size);
    std::fs::set_permissions(&audit_dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::chown(
        &audit_dir,
        Some(ownership.file_uid.as_raw()),
        Some(ownership.file_gid.as_raw()),
    )
    .unwrap();
    mount
}

/// A fresh context for `path` (no shared cache with other tests).
pub fn context(path: &Path) -> ConfigDir {
    ConfigDir::new(path).expect("config dir context")
}

/// Runs `proxmox-backup-manager --config-dir DIR ARGS...`, as `user`
/// (uid, gid; no supplementary groups) if given.
pub fn manager(dir: &Path, args: &[&str], user: Option<(Uid, Gid)>) -> Run {
    Manager::new(dir).as_user(user).run(args)
}

/// A failed run: exit status 255, nothing on stdout, one `Error: ` line on
/// stderr that contains every one of `needles`. Returns the line.
pub fn assert_error(run: &Run, what: &str, needles: &[&str]) -> String {
    assert_eq!(run.code, 255, "{what}: {run:?}");
    assert_eq!(run.stdout, "", "{what}: output on failure: {run:?}");
    let line = run.stderr.trim_end();
    assert!(
        line.starts_with("Error: ") && line.lines().count() == 1,
        "{what}: not one error line: {run:?}"
    );
    for needle in needles {
        assert!(line.contains(needle), "{what}: no {needle:?} in: {line}");
    }
    line.to_string()
}

/// The store the fault tests break: `active-key`, an archived `old-key`
/// (deletable), a sync job `job1` using neither, `active-key`'s path
/// relocated (so `verify --repair` has a config rewrite to do), a key file
/// to import at `import` (outside `dir`), and every lock file created.
/// `verify` then finds exactly that path ([`assert_relocated_only`]).
pub fn fault_store(dir: &Path, import: &Path) {
    let config = context(dir);
    let keys = config.encryption_keys();
    keys.store_key("active-key", &key_config(21)).unwrap();
    keys.store_key("old-key", &key_config(22)).unwrap();
    keys.archive_key("old-key", None).unwrap();
    std::fs::write(
        config.sync_jobs().config_path(),
        "sync: job1\n\tremote-store remote\n\tstore local\n",
    )
    .unwrap();
    let cfg = keys.config_path();
    let text = std::fs::read_to_string(&cfg).unwrap();
    let here = keys.key_path("active-key").display().to_string();
    assert!(text.contains(&here));
    std::fs::write(
        &cfg,
        text.replace(
            &here,
            "/restored/etc/proxmox-backup/encryption-keys/active-key.enc",
        ),
    )
    .unwrap();
    std::fs::write(import, key_config(23).to_json().unwrap()).unwrap();
    // takes every lock once, so the lock files exist
    assert_relocated_only(&config.verify(false).unwrap(), "fault store");
}

/// The findings of [`fault_store`] as it was set up: the relocated path.
pub fn assert_relocated_only(report: &VerifyReport, context: &str) {
    let kinds: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.kind, f.id.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [(FindingKind::PathNotCanonical, Some("active-key"))],
        "{context}: {:#?}",
        report.findings
    );
}

/// The writing commands the fault tests run against [`fault_store`], with
/// the file each writes first.
pub fn writing_commands(import: &Path) -> Vec<(Vec<String>, &'static str)> {
    let import = import.display().to_string();
    let cmd = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        (
            cmd(&["encryption-key", "archive", "active-key"]),
            "encryption-keys.cfg",
        ),
        (
            cmd(&["encryption-key", "unarchive", "old-key"]),
            "encryption-keys.cfg",
        ),
        // the trash record is the first file a delete writes
        (cmd(&["encryption-key", "delete", "old-key"]), ".trash"),
        (
            cmd(&[
                "sync-job",
                "update",
                "job1",
                "--associated-key",
                "active-key",
            ]),
            "sync.cfg",
        ),
        (cmd(&["encryption-key", "create", "new-key"]), "new-key.enc"),
        (
            cmd(&["encryption-key", "import", "imported", "--file", &import]),
            "imported.enc",
        ),
        (
            cmd(&["encryption-key", "verify", "--repair"]),
            "encryption-keys.cfg",
        ),
    ]
}

/// The same commands once the fault is gone, in an order in which each
/// succeeds; afterwards the store is clean.
pub fn run_writing_commands_again(dir: &Path, import: &Path) {
    let import = import.display().to_string();
    for args in [
        &["encryption-key", "delete", "old-key"][..],
        &["encryption-key", "archive", "active-key"],
        &["encryption-key", "unarchive", "active-key"],
        &[
            "sync-job",
            "update",
            "job1",
            "--associated-key",
            "active-key",
        ],
        &["encryption-key", "create", "new-key"],
        &["encryption-key", "import", "imported", "--file", &import],
        &["encryption-key", "verify", "--repair"],
    ] {
        let run = manager(dir, args, None);
        assert_eq!(run.code, 0, "{args:?} after the fault: {run:?}");
    }
    assert_clean(&context(dir).verify(false).unwrap(), "after the fault");
    assert_every_listed_key_loads(&context(dir));
}
