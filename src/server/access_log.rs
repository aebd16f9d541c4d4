//! One line per request, and the daemon's own messages.
//!
//! Access line (Apache-like, as upstream's access log):
//!
//! ```text
//! 127.0.0.1 - alice@pbs!backup [23/11/2025:10:00:00 +0000] "GET /api2/json/config/encryption-keys" 200 312 4ms
//! ```
//!
//! client address, auth id (`-` if none was authenticated), time, method
//! and path *without* the query string, status, response body size and
//! duration. Never logged: query strings, bodies, headers, tokens, tickets,
//! secrets, key bytes. The path is escaped (non-printable bytes and `"` as
//! `\xNN`) and cut to 256 bytes, so a hostile path cannot forge lines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Error, format_err};

/// Longest path logged, in bytes.
const MAX_LOGGED_PATH: usize = 256;

/// Where log lines go: stderr (the journal under systemd) or a file.
pub struct AccessLog {
    file: Option<Mutex<File>>,
}

/// Escapes anything but printable ASCII (and `"`, `\`), and cuts to `max` bytes.
pub fn sanitize(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 8);
    for byte in text.bytes() {
        if out.len() >= max {
            out.push_str("...");
            break;
        }
        if (0x21..0x7f).contains(&byte) && byte != b'"' && byte != b'\\' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

impl AccessLog {
    /// Logs to stderr.
    pub fn stderr() -> Self {
        Self { file: None }
    }

    /// Appends to `path` (created 0640 if missing).
    pub fn file(path: &Path) -> Result<Self, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
            .map_err(|err| format_err!("unable to open access log {path:?} - {err}"))?;
        Ok(Self {
            file: Some(Mutex::new(file)),
        })
    }

    fn write_line(&self, line: &str) {
        match &self.file {
            Some(file) => {
                let _ = writeln!(file.lock().unwrap(), "{line}");
            }
            None => eprintln!("{line}"),
        }
    }

    /// Logs one request.
    #[allow(clippy::too_many_arguments)]
    pub fn request(
        &self,
        peer: IpAddr,
        auth_id: Option<&str>,
        method: &str,
        path: &str,
        status: u16,
        size: usize,
        duration: Duration,
    ) {
        let time = chrono::Local::now().format("%d/%m/%Y:%H:%M:%S %z");
        self.write_line(&format!(
            "{peer} - {} [{time}] \"{} {}\" {status} {size} {}ms",
            auth_id
                .map(|id| sanitize(id, 128))
                .unwrap_or_else(|| "-".into()),
            sanitize(method, 16),
            sanitize(path, MAX_LOGGED_PATH),
            duration.as_millis(),
        ));
    }

    /// Logs a failed authentication (upstream's syslog line).
    pub fn auth_failure(&self, peer: IpAddr, auth_id: Option<&str>, reason: &str) {
        self.write_line(&format!(
            "authentication failure; rhost={peer} user={} msg={}",
            auth_id
                .map(|id| sanitize(id, 128))
                .unwrap_or_else(|| "-".into()),
            sanitize(reason, 256).replace("\\x20", " "),
        ));
    }

    /// Logs a daemon message.
    pub fn message(&self, text: &str) {
        self.write_line(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_and_cuts() {
        assert_eq!(sanitize("/api2/json/x", 256), "/api2/json/x");
        assert_eq!(
            sanitize("/a b\"\n\u{e4}", 256),
            "/a\\x20b\\x22\\x0a\\xc3\\xa4"
        );
        assert_eq!(sanitize(&"a".repeat(300), 10), "aaaaaaaaaa...");
    }
}
