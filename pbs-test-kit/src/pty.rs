//! A process on a pseudo-terminal: a pty pair (`nix::pty::openpty`)
//! whose slave side is the process's stdin, stdout and stderr, so `isatty`
//! is true for real; the test reads what the terminal shows from the
//! master and types into it. For the TTY rule of `create` and for
//! passwords and passphrases read without echo.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use nix::sys::termios::{LocalFlags, tcgetattr};

/// How long a pty test waits for the process to show something.
pub const PTY_TIMEOUT: Duration = Duration::from_secs(30);

/// A process on a new pseudo-terminal: what it shows, as it comes.
pub struct PtyRun {
    child: Child,
    master: File,
    shown: Receiver<Vec<u8>>,
    text: String,
    /// The terminal side, kept to read its settings.
    slave: OwnedFd,
}

impl PtyRun {
    /// Runs `cmd` with the slave side as stdin, stdout and stderr. `cmd`
    /// is consumed, so its copies of the slave close after the spawn.
    pub fn start(mut cmd: Command) -> Self {
        use nix::fcntl::{FcntlArg, FdFlag, fcntl};
        use std::os::fd::AsRawFd;

        let pty = nix::pty::openpty(None, None).expect("openpty");
        // not inherited by the processes other tests start meanwhile, which
        // would hold the terminal open
        for fd in [&pty.master, &pty.slave] {
            fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
        }
        let stdio = || Stdio::from(pty.slave.try_clone().unwrap());
        let child = cmd
            .stdin(stdio())
            .stdout(stdio())
            .stderr(stdio())
            .spawn()
            .expect("spawn on a pty");
        drop(cmd);
        let master = File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (send, shown) = channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // ends with EIO once every slave descriptor is closed
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if send.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            master,
            shown,
            text: String::new(),
            slave: pty.slave,
        }
    }

    /// Waits until the terminal shows `needle` (anywhere in its text).
    pub fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + PTY_TIMEOUT;
        while !self.text.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.shown.recv_timeout(left) {
                Ok(bytes) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("terminal never showed {needle:?}; it shows:\n{}", self.text),
            }
        }
    }

    /// Types `line` and Enter.
    pub fn type_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    /// Waits for the exit and everything shown: the status, the text with
    /// the terminal's `\r\n` as `\n`, and whether the terminal echoes
    /// input after the process is gone.
    pub fn finish(mut self) -> (i32, String, bool) {
        let status = self.child.wait().unwrap();
        let echo = tcgetattr(&self.slave)
            .unwrap()
            .local_flags
            .contains(LocalFlags::ECHO);
        // with the last slave descriptor closed, the reader gets what is
        // left in the buffer, then EIO, and hangs up the channel
        drop(self.slave);
        let deadline = Instant::now() + PTY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.shown.recv_timeout(left) {
                Ok(bytes) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("terminal output never ended"),
            }
        }
        (
            status.code().unwrap(),
            self.text.replace("\r\n", "\n"),
            echo,
        )
    }
}
