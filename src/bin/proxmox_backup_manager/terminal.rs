//! The terminal: reading a password without echo.
//!
//! Echo is switched off through `nix`'s termios and switched back on by a
//! guard's `Drop`, so it comes back whatever happens while the line is read:
//! an error, an early return, or a panic (unwinding runs the guard).

use std::io::{BufRead, Write};
use std::os::fd::{AsFd, BorrowedFd};

use anyhow::{Error, format_err};
use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use zeroize::Zeroizing;

/// Echo switched off on a terminal until this is dropped, which restores
/// the settings found.
pub struct EchoOff<'fd> {
    fd: BorrowedFd<'fd>,
    saved: Termios,
}

impl<'fd> EchoOff<'fd> {
    /// Switches echo off on `fd` (a terminal).
    ///
    /// # Errors
    ///
    /// The terminal settings cannot be read or changed (not a terminal).
    pub fn new(fd: BorrowedFd<'fd>) -> Result<Self, Error> {
        let saved = termios::tcgetattr(fd)
            .map_err(|err| format_err!("unable to read terminal settings - {err}"))?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        termios::tcsetattr(fd, SetArg::TCSANOW, &quiet)
            .map_err(|err| format_err!("unable to switch off terminal echo - {err}"))?;
        Ok(Self { fd, saved })
    }
}

impl Drop for EchoOff<'_> {
    fn drop(&mut self) {
        // nothing better to do on failure: the terminal is gone
        let _ = termios::tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}

/// Prompts on stderr and reads one line from the terminal on stdin without
/// echo; the line end is removed. Echo goes off before the prompt shows, so
/// nothing typed after the prompt is echoed. The line is wiped when dropped;
/// room for [`HIDDEN_LINE_ROOM`] bytes is reserved first, so a line that
/// fits leaves no copy behind in a grown-out buffer.
pub fn read_hidden(prompt: &str) -> Result<Zeroizing<String>, Error> {
    let stdin = std::io::stdin();
    let mut line = Zeroizing::new(String::with_capacity(HIDDEN_LINE_ROOM));
    let read = {
        let _echo_off = EchoOff::new(stdin.as_fd())?;
        eprint!("{prompt}");
        std::io::stderr().flush()?;
        stdin.lock().read_line(&mut line)
    };
    eprintln!();
    read.map_err(|err| format_err!("unable to read from the terminal - {err}"))?;
    let kept = line.trim_end_matches(['\r', '\n']).len();
    line.truncate(kept);
    Ok(line)
}

/// Bytes reserved for a line read by [`read_hidden`].
const HIDDEN_LINE_ROOM: usize = 1024;
