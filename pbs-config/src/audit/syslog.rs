//! A small syslog writer: one datagram per message to the local syslog
//! socket (`/dev/log`, where journald or rsyslog listen).
//!
//! Messages go out as `<PRI>pbs-keystore-audit[PID]: MESSAGE` (facility
//! authpriv, severity notice), which both parse. Sending never blocks and
//! never fails an operation: the checkpoint it carries is also in
//! `.audit/checkpoint`, and a missing syslog only loses a copy.

use std::os::unix::net::UnixDatagram;
use std::path::Path;

use anyhow::{Error, format_err};

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

/// Sends `message` to the syslog socket at `socket` without waiting.
pub(crate) fn send(socket: &Path, message: &str) -> Result<(), Error> {
    let sock = UnixDatagram::unbound()
        .and_then(|sock| sock.set_nonblocking(true).map(|()| sock))
        .map_err(|err| format_err!("unable to open a syslog socket - {err}"))?;
    sock.send_to(datagram(message).as_bytes(), socket)
        .map_err(|err| format_err!("unable to send to syslog at {socket:?} - {err}"))?;
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
        // nobody listening: an error, not a hang
        drop(listener);
        assert!(send(&path, "x").is_err());
    }
}
