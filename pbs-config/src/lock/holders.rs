//! Who holds a lock file: the processes `/proc/locks` names as holders of
//! a `flock` on its inode, each confirmed by its open files
//! (`/proc/PID/fdinfo`), else those whose open files hold it (the taker
//! may have handed the lock on and exited). Only for the error of a lock
//! that timed out: a process that keeps a lock of the store (the `backup`
//! user may take the lock files it can open) is named, so the
//! administrator can find it. A process names itself (`comm`), so its
//! name is shown escaped: no control character reaches root's terminal.

use std::borrow::Cow;

use nix::unistd::{Uid, User};

/// How many holders an error names at most.
const NAMED: usize = 3;

/// What a lock timeout says of the lock, before the holders it names.
const HELD: &str = "another process holds the lock";

/// The end of a lock timeout's error: "another process holds the lock
/// (pid 4242 'flock', user backup)", or without the parenthesis if
/// [`describe`] names none.
pub(crate) fn held_by(holder: Option<(u64, u64)>) -> String {
    match holder.and_then(|(dev, ino)| describe(dev, ino)) {
        Some(holders) => format!("{HELD} ({holders})"),
        None => HELD.to_string(),
    }
}

/// `message` without the holders a lock timeout in it names: "... -
/// another process holds the lock" is all an API caller learns of another
/// process (finding 39). The daemon runs as root and reads every process's
/// `/proc` entry, hidepid or not; its clients are not root. The CLI's
/// errors keep them (their reader is root on the host).
pub fn without_holders(message: &str) -> Cow<'_, str> {
    let opening = format!("{HELD} (pid ");
    let mut kept = String::new();
    let mut rest = message;
    while let Some(at) = rest.find(&opening) {
        let inside = &rest[at + HELD.len() + 2..];
        let Some(end) = closing_parenthesis(inside) else {
            break;
        };
        kept.push_str(&rest[..at + HELD.len()]);
        rest = &inside[end + 1..];
    }
    if kept.is_empty() {
        return Cow::Borrowed(message);
    }
    kept.push_str(rest);
    Cow::Owned(kept)
}

/// Where the list of holders that `text` starts with ends: the first `)`
/// outside a quoted process name (in which `\'` and `\\` are escapes).
fn closing_parenthesis(text: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '\'') => quoted = !quoted,
            (false, _, ')') => return Some(at),
            _ => {}
        }
    }
    None
}

/// "pid 4242 'flock', user backup" for each process holding a `flock` on
/// the file `dev` and `ino` name; `None` if `/proc/locks` names none, or
/// no process's open files hold it (it let go since, or it lives in
/// another pid namespace).
pub(crate) fn describe(dev: u64, ino: u64) -> Option<String> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let file = format!(
        "{:02x}:{:02x}:{ino}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev)
    );
    let mut pids: Vec<u32> = locks
        .lines()
        .filter_map(|line| holder_of(line, &file))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    if pids.is_empty() {
        return None;
    }
    // `/proc/locks` names the process that took the lock, which may have
    // handed it on (fork, fd passing) and exited, its pid free for another
    // process: name those whose open files hold it now
    pids.retain(|&pid| holds(pid, &file));
    if pids.is_empty() {
        pids = std::fs::read_dir("/proc")
            .ok()?
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&pid| holds(pid, &file))
            .collect();
        pids.sort_unstable();
        if pids.is_empty() {
            return None;
        }
    }
    let named: Vec<String> = pids.iter().take(NAMED).map(|&pid| process(pid)).collect();
    let more = match pids.len().saturating_sub(NAMED) {
        0 => String::new(),
        more => format!(" and {more} more"),
    };
    Some(format!("{}{more}", named.join("; ")))
}

/// The pid of a line of `/proc/locks` that holds (not waits for: `->`) a
/// `flock` on `file` (`MAJOR:MINOR:INODE`, as the kernel prints it).
fn holder_of(line: &str, file: &str) -> Option<u32> {
    // "1: FLOCK  ADVISORY  WRITE 4242 fe:00:1234 0 EOF"
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        [_, "FLOCK", _, _, pid, held, ..] if *held == file => pid.parse().ok().filter(|&p| p != 0),
        _ => None,
    }
}

/// Whether an open file of process `pid` holds the `flock` on `file`
/// (its `/proc/PID/fdinfo` lists the locks of each open file).
fn holds(pid: u32, file: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return false;
    };
    fds.filter_map(Result::ok).any(|fd| {
        std::fs::read_to_string(fd.path()).is_ok_and(|info| {
            info.lines()
                .filter_map(|line| line.strip_prefix("lock:"))
                .any(|lock| holder_of(lock, file).is_some())
        })
    })
}

/// "pid 4242 'flock', user backup", as far as `/proc` still tells; the
/// name is the process's own (any process sets it), so control characters
/// and quotes in it are escaped.
fn process(pid: u32) -> String {
    let proc_dir = format!("/proc/{pid}");
    let name = std::fs::read_to_string(format!("{proc_dir}/comm"))
        .map(|comm| format!(" '{}'", comm.trim_end_matches('\n').escape_debug()))
        .unwrap_or_default();
    let user = std::fs::read_to_string(format!("{proc_dir}/status"))
        .ok()
        .and_then(|status| real_uid(&status))
        .map(|uid| match User::from_uid(Uid::from_raw(uid)) {
            Ok(Some(user)) => format!(", user {}", user.name),
            _ => format!(", uid {uid}"),
        })
        .unwrap_or_default();
    format!("pid {pid}{name}{user}")
}

/// The real uid of a `/proc/PID/status` text (`Uid:` real effective ...).
fn real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|uids| uids.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_holders_of_that_file_are_named() {
        let file = "fe:00:1234";
        assert_eq!(
            holder_of("1: FLOCK  ADVISORY  WRITE 4242 fe:00:1234 0 EOF", file),
            Some(4242)
        );
        assert_eq!(
            holder_of("2: FLOCK  ADVISORY  READ 77 fe:00:1234 0 EOF", file),
            Some(77)
        );
        // a waiter, another inode, a POSIX lock, a holder in another pid namespace
        assert_eq!(
            holder_of("1: -> FLOCK  ADVISORY  WRITE 99 fe:00:1234 0 EOF", file),
            None
        );
        assert_eq!(
            holder_of("3: FLOCK  ADVISORY  WRITE 4242 fe:00:12345 0 EOF", file),
            None
        );
        assert_eq!(
            holder_of("4: POSIX  ADVISORY  WRITE 4242 fe:00:1234 0 EOF", file),
            None
        );
        assert_eq!(
            holder_of("5: FLOCK  ADVISORY  WRITE 0 fe:00:1234 0 EOF", file),
            None
        );
        assert_eq!(real_uid("Name:\tx\nUid:\t34\t0\t0\t0\n"), Some(34));
    }

    #[test]
    fn an_api_caller_reads_no_holder() {
        let timed_out = "failed to store encryption key 'k' - unable to acquire lock \
             \".encryption-keys.lck\" - timed out after 10.0s - another process holds the lock";
        let named = [
            " (pid 4242 'flock', user backup)",
            " (pid 1 'a) b\\' c', uid 34; pid 2 'x', user root and 3 more)",
            " (pid 7)",
        ];
        for holders in named {
            let message = format!("{timed_out}{holders}");
            assert_eq!(without_holders(&message), timed_out, "{message}");
        }
        // a layer after it, twice in one message
        let message = format!("{timed_out}{} - then {timed_out}{}", named[0], named[1]);
        assert_eq!(
            without_holders(&message),
            format!("{timed_out} - then {timed_out}")
        );
        // nothing else is cut
        for message in [
            timed_out,
            "another process holds the lock (not a pid)",
            "(pid 1)",
        ] {
            assert!(matches!(without_holders(message), Cow::Borrowed(m) if m == message));
        }
    }

    #[test]
    fn a_lock_of_this_process_names_it() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let file = tmp.as_file();
        rustix::fs::flock(file, rustix::fs::FlockOperation::LockExclusive).unwrap();
        let stat = rustix::fs::fstat(file).unwrap();
        let named = describe(stat.st_dev, stat.st_ino).expect("a holder");
        let me = std::process::id();
        assert!(named.starts_with(&format!("pid {me} '")), "{named}");
        let user = User::from_uid(nix::unistd::getuid()).unwrap().unwrap().name;
        assert!(named.ends_with(&format!(", user {user}")), "{named}");
    }
}
