//! A running `proxmox-backup-api` child process for the tests: started on
//! 127.0.0.1 with port 0, its port read from its readiness line (no test
//! sleeps to wait for it), its stderr in a log file, killed and reaped when
//! dropped.
//!
//! Shared by the `integration` and the `processes` test binaries; the
//! latter includes this file with `#[path = "../api_daemon.rs"]`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use nix::sys::signal::Signal;

/// The `proxmox-backup-api` binary of this build.
const DAEMON: &str = env!("CARGO_BIN_EXE_proxmox-backup-api");

/// A running daemon; killed and reaped when dropped.
pub struct ApiDaemon {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The file with its stderr.
    pub log: PathBuf,
}

impl ApiDaemon {
    /// The daemon's command line on `config_dir`, listening on 127.0.0.1
    /// port 0, then `extra`: with `--auth-failure-delay 0` (fast failures)
    /// unless `extra` sets the delay. Callers add arguments and environment.
    pub fn command(config_dir: &Path, extra: &[&str]) -> Command {
        let mut cmd = Command::new(DAEMON);
        cmd.arg("--config-dir")
            .arg(config_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(if extra.contains(&"--auth-failure-delay") {
                &[][..]
            } else {
                &["--auth-failure-delay", "0"][..]
            })
            .args(extra);
        cmd
    }

    /// Starts `cmd` (from [`ApiDaemon::command`]) with its stderr in a new
    /// file at `log`, and waits for its readiness line.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("start proxmox-backup-api");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on 127.0.0.1:")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "no readiness line (got {line:?}); log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        Self {
            child: Some(child),
            port,
            log,
        }
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: Signal) {
        let child = self.child.as_ref().expect("a running daemon");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    }

    /// Waits for the daemon to exit and returns its exit status.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.take().unwrap().wait().unwrap()
    }
}

impl Drop for ApiDaemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
