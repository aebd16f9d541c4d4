//! A running `proxmox-backup-api` child process: started on 127.0.0.1 with
//! port 0, its port read from its readiness line (nothing sleeps to wait
//! for it), its stderr in a log file, killed and reaped when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

/// What the daemon prints on stdout once it accepts connections, before
/// the port.
const READY: &str = "listening on 127.0.0.1:";

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
        let mut cmd = Command::new(crate::bins::api());
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

    /// [`ApiDaemon::command`] started with its stderr in `log`.
    pub fn start(config_dir: &Path, extra: &[&str], log: PathBuf) -> Self {
        Self::spawn(Self::command(config_dir, extra), log)
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
            .strip_prefix(READY)
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

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running daemon").id()
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), signal).unwrap();
    }

    /// Waits for the daemon to exit and returns its exit status.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.take().unwrap().wait().unwrap()
    }

    /// Sends SIGTERM and waits at most `within` for the daemon to exit:
    /// its exit status, or `None` if it did not stop in time (it is then
    /// killed when dropped).
    pub fn terminate_within(&mut self, within: Duration) -> Option<ExitStatus> {
        self.signal(Signal::SIGTERM);
        let child = self.child.as_mut().expect("a running daemon");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if start.elapsed() > within {
                return None;
            }
            // polling a child's exit: there is no portable wait with a timeout
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The text of its log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`, ...), in KiB;
    /// `None` once the process is gone.
    pub fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// How many file descriptors it has open; `None` once it is gone.
    pub fn open_fds(&self) -> Option<usize> {
        Some(
            std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
                .ok()?
                .count(),
        )
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
