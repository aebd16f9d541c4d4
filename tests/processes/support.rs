//! Spawning worker processes of this binary, and helpers the tests share.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use pbs_config::ConfigDir;
use pbs_config::verify::VerifyReport;

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
