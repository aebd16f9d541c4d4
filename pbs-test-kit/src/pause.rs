//! A child process held at a pause point of the `failpoints` build
//! (`$PBS_PAUSEPOINT`, pbs-config's `failpoint::hit`): started, waited for
//! until it says it is there, then let go by closing its stdin.
//!
//! The protocol is pbs-config's: at the point named by `PBS_PAUSEPOINT`
//! the process writes `pausepoint NAME reached, ...` on stderr and reads
//! its stdin to the end before it goes on.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};

/// A child waiting at its pause point, and its stderr after the line that
/// said so.
pub struct Paused {
    /// The child; its stdin is piped (closing it lets the child go on).
    pub child: Child,
    /// The child's stderr, read up to the pause point's line.
    pub stderr: BufReader<ChildStderr>,
}

/// Starts `cmd` with `$PBS_PAUSEPOINT` set to `point` (stdin and stderr
/// piped, stdout piped too) and waits until it is there; panics with what
/// it wrote instead.
pub fn paused_at(cmd: &mut Command, point: &str) -> Paused {
    let mut child = cmd
        .env("PBS_PAUSEPOINT", point)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the paused process");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("read its stderr");
    assert!(
        line.contains(&format!("pausepoint {point} reached")),
        "expected pause point {point}, the process wrote: {line}"
    );
    Paused { child, stderr }
}

impl Paused {
    /// Lets the child go on and waits for it: its exit status and the rest
    /// of its stderr.
    pub fn finish(mut self) -> (ExitStatus, String) {
        drop(self.child.stdin.take());
        let mut rest = String::new();
        self.stderr
            .read_to_string(&mut rest)
            .expect("read its stderr");
        (self.child.wait().expect("wait for it"), rest)
    }
}
