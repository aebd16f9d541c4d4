//! A small syslog writer: one datagram per message to the local syslog
//! socket (`/dev/log`, where journald or rsyslog listen).
//!
//! Messages go out as `<PRI>pbs-keystore-audit[PID]: MESSAGE` (facility
//! authpriv, severity notice), which both parse. Sending never blocks and
//! never fails an operation: the checkpoint it carries is also in
//! `.audit/checkpoint`, and a missing syslog only loses a copy. The
//! socket is made once per process, connected on the first message and
//! connected again when a send fails.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where the local syslog daemon listens.
pub const DEFAULT_SOCKET: &str = "/dev/log";

/// The tag of our messages.
pub const TAG: &str = "pbs-keystore-audit";

/// authpriv (10) * 8 + notice (5).
const PRIORITY: u8 = 10 * 8 + 5;

/// The datagram for `message`.
pub(crate) fn datagram(message: &str) -> String {
    format!("<{PRIORITY}>{TAG}[{}]: {message}", std::process::id())
}

/// The socket this process sends from, made on the first message and kept
/// (connected or not): one `send` a message while the listener stays, one
/// `connect` more while there is none (a host without syslog pays no new
/// socket a message).
static KEPT: Mutex<Option<Kept>> = Mutex::new(None);

struct Kept {
    sock: UnixDatagram,
    /// Where `sock` is connected to, if it is.
    peer: Option<PathBuf>,
}

/// Sends `message` to the syslog socket at `socket` without waiting. The
/// error is an `io::Error` (no backtrace is taken for what callers drop).
pub(crate) fn send(socket: &Path, message: &str) -> std::io::Result<()> {
    let datagram = datagram(message);
    let mut kept = KEPT.lock().unwrap_or_else(|err| err.into_inner());
    let kept = match &mut *kept {
        Some(kept) => kept,
        None => {
            let sock = UnixDatagram::unbound()?;
            sock.set_nonblocking(true)?;
            kept.insert(Kept { sock, peer: None })
        }
    };
    if kept.peer.as_deref() == Some(socket) && kept.sock.send(datagram.as_bytes()).is_ok() {
        return Ok(());
    }
    // the first message, another socket, or the listener went away (a
    // restarted journald binds a new socket): connect (again)
    kept.peer = None;
    kept.sock.connect(socket)?;
    kept.peer = Some(socket.to_path_buf());
    kept.sock.send(datagram.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_arrives_as_one_datagram_with_priority_and_tag() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log");
        let listener = UnixDatagram::bind(&path).unwrap();
        send(&path, "checkpoint a 1 b").unwrap();
        let mut buf = [0u8; 256];
        let n = listener.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert_eq!(
            text,
            format!(
                "<85>pbs-keystore-audit[{}]: checkpoint a 1 b",
                std::process::id()
            )
        );
        // a restarted listener (a new socket at the same path) gets the next one
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        let listener = UnixDatagram::bind(&path).unwrap();
        send(&path, "again").unwrap();
        let n = listener.recv(&mut buf).unwrap();
        assert!(std::str::from_utf8(&buf[..n]).unwrap().ends_with(": again"));
        // nobody listening: an error, not a hang
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        assert!(send(&path, "x").is_err());
        assert!(send(&path, "y").is_err());
        // and a listener that comes later gets what is sent then
        let listener = UnixDatagram::bind(&path).unwrap();
        send(&path, "late").unwrap();
        let n = listener.recv(&mut buf).unwrap();
        assert!(std::str::from_utf8(&buf[..n]).unwrap().ends_with(": late"));
    }
}
