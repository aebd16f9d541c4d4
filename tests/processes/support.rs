//! Spawning worker processes of this binary, and helpers the tests share.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use nix::unistd::{Gid, Uid};

use pbs_config::ConfigDir;
use pbs_config::verify::{FindingKind, VerifyReport};

/// A command running this binary as a worker of `kind`.
pub fn worker(kind: &str) -> Command {
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut cmd = Command::new(exe);
    cmd.arg("__worker").arg(kind);
    cmd.env_remove("PBS_FAILPOINT");
    cmd
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
/// files, temporary files and stale lock files.
pub fn assert_crash_leftovers_only(report: &VerifyReport, context: &str) {
    for finding in &report.findings {
        assert!(
            matches!(
                finding.kind,
                FindingKind::OrphanKeyFile | FindingKind::TempFile | FindingKind::StaleLockFile
            ),
            "{context}: verify found more than leftovers: {:#?}",
            report.findings
        );
    }
}

/// A fresh context for `path` (no shared cache with other tests).
pub fn context(path: &Path) -> ConfigDir {
    ConfigDir::new(path).expect("config dir context")
}

/// A fixed unprotected key for `seed`.
pub fn key_config(seed: u64) -> pbs_key_config::KeyConfig {
    let bytes = seed.to_le_bytes();
    let raw: [u8; 32] = std::array::from_fn(|i| bytes[i % 8].wrapping_add(i as u8));
    pbs_key_config::KeyConfig::without_password(raw).expect("key config")
}

/// A small tmpfs mounted for the test, unmounted on drop.
pub struct Tmpfs {
    /// The mount point.
    pub path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `1m`) at `path`.
    pub fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .expect("unable to run mount");
        assert!(status.success(), "mounting a tmpfs at {path:?} failed");
        Self {
            path: path.to_owned(),
        }
    }
}

impl Tmpfs {
    /// Remounts it read-only (`true`) or read-write.
    pub fn remount(&self, read_only: bool) {
        let mode = if read_only {
            "remount,ro"
        } else {
            "remount,rw"
        };
        let status = Command::new("mount")
            .args(["-o", mode])
            .arg(&self.path)
            .status()
            .expect("unable to run mount");
        assert!(status.success(), "{mode} of {:?} failed", self.path);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

/// For the tests that mount a tmpfs: a temp dir, a tmpfs of `size` mounted
/// at `name` in it, and an empty config dir `config` on the tmpfs. `None`,
/// after a "skipped" line, when not running as root (mounting needs root;
/// CI runs as root).
pub fn tmpfs_config_dir(name: &str, size: &str) -> Option<(tempfile::TempDir, Tmpfs, PathBuf)> {
    if !nix::unistd::geteuid().is_root() {
        println!("    skipped: mounting a tmpfs needs root (CI runs as root)");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mount = Tmpfs::mount(&tmp.path().join(name), size);
    let dir = mount.path.join("config");
    std::fs::create_dir(&dir).unwrap();
    Some((tmp, mount, dir))
}

/// The `proxmox-backup-manager` binary of this build.
pub const MANAGER: &str = env!("CARGO_BIN_EXE_proxmox-backup-manager");

/// What one run of the manager printed.
#[derive(Debug)]
pub struct Run {
    /// Exit status.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `proxmox-backup-manager --config-dir DIR ARGS...`, as `user`
/// (uid, gid; no supplementary groups) if given.
pub fn manager(dir: &Path, args: &[&str], user: Option<(Uid, Gid)>) -> Run {
    let mut cmd = Command::new(MANAGER);
    cmd.arg("--config-dir")
        .arg(dir)
        .args(args)
        .env("TZ", "UTC0")
        .env_remove("PBS_CONFIG_DIR")
        .stdin(Stdio::null());
    if let Some((uid, gid)) = user {
        run_as(&mut cmd, uid, gid);
    }
    let output = cmd.output().expect("unable to run proxmox-backup-manager");
    Run {
        code: output.status.code().expect("exit status, not a signal"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Makes `cmd` run as `uid`:`gid` with no supplementary groups.
pub fn run_as(cmd: &mut Command, uid: Uid, gid: Gid) {
    // SAFETY: only async-signal-safe calls (setgroups, setgid, setuid)
    // between fork and exec
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setgroups(&[])?;
            nix::unistd::setgid(gid)?;
            nix::unistd::setuid(uid)?;
            Ok(())
        });
    }
}

/// A failed run: exit status 2, nothing on stdout, one `Error: ` line on
/// stderr that contains every one of `needles`. Returns the line.
pub fn assert_error(run: &Run, what: &str, needles: &[&str]) -> String {
    assert_eq!(run.code, 2, "{what}: {run:?}");
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

/// Every file below `dir` with its content, lock files and `skip` left
/// out: for "nothing changed" checks (a refused operation may create a
/// lock file).
pub fn snapshot(dir: &Path, skip: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if !name.ends_with(".lck") && !skip.contains(&name.as_str()) {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
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
        (
            cmd(&["encryption-key", "delete", "old-key"]),
            "encryption-keys.cfg",
        ),
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
