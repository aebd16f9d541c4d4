//! Advisory `flock(2)` locks with a timeout.
//!
//! The wait polls with a short, growing back-off (1 ms up to 10 ms) instead of
//! interrupting a blocking `flock` with a signal timer, as upstream does: no
//! signal handler is installed in the process, and the extra latency on a
//! contended lock stays below the back-off cap.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Error, bail, format_err};

use super::CreateOptions;

const MAX_BACKOFF: Duration = Duration::from_millis(10);

/// Takes a shared or exclusive `flock` on an open file, waiting at most
/// `timeout` (`None` waits forever). The lock is held until the file is closed.
///
/// The error on timeout is "timed out after ..."; callers add the path.
pub fn lock_file(file: &File, exclusive: bool, timeout: Option<Duration>) -> Result<(), Error> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut backoff = Duration::from_millis(1);
    loop {
        let attempt = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match attempt {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(err)) => bail!("flock failed - {err}"),
        }
        let now = Instant::now();
        if let Some(deadline) = deadline {
            if now >= deadline {
                let waited = timeout.unwrap_or_default();
                bail!(
                    "timed out after {:.1}s - another process holds the lock",
                    waited.as_secs_f64()
                );
            }
            backoff = backoff.min(deadline - now);
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Opens (creating it if needed) and locks the file at `path`.
///
/// A new file gets the mode and owner of `options`; an existing one is left
/// as it is. Waits at most `timeout` for the lock; on timeout the error names
/// the file.
pub fn open_file_locked<P: AsRef<Path>>(
    path: P,
    timeout: Duration,
    exclusive: bool,
    options: CreateOptions,
) -> Result<File, Error> {
    let path = path.as_ref();
    let file = open_or_create(path, options)?;
    match lock_file(&file, exclusive, Some(timeout)) {
        Ok(()) => Ok(file),
        Err(err) => bail!("unable to acquire lock {path:?} - {err}"),
    }
}

fn open_or_create(path: &Path, options: CreateOptions) -> Result<File, Error> {
    loop {
        match OpenOptions::new()
            .read(true)
            .append(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(file) => return Ok(file),
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            // a read-only file system: flock works on a read-only descriptor
            // too, so readers such as verify still exclude writers that
            // reach the same file through a writable mount
            Err(err) if err.raw_os_error() == Some(libc::EROFS) => {
                return OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                    .open(path)
                    .map_err(|err| format_err!("unable to open lock file {path:?} - {err}"));
            }
            Err(err) => bail!("unable to open lock file {path:?} - {err}"),
        }
        match OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
        {
            Ok(file) => {
                if let Err(err) = options.apply_to(&file, path) {
                    let _ = std::fs::remove_file(path);
                    return Err(err);
                }
                return Ok(file);
            }
            // somebody else created it in between: open theirs
            Err(err) if err.kind() == ErrorKind::AlreadyExists => continue,
            Err(err) => bail!("unable to create lock file {path:?} - {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use nix::sys::stat::Mode;

    use super::*;

    #[test]
    fn exclusive_lock_times_out_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".test.lck");
        let _held =
            open_file_locked(&path, Duration::from_secs(1), true, CreateOptions::new()).unwrap();
        // a second open file description conflicts even within one process
        let err = open_file_locked(&path, Duration::from_millis(50), true, CreateOptions::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains(".test.lck"), "{err}");
        assert!(err.contains("timed out"), "{err}");
    }

    #[test]
    fn shared_locks_coexist_but_exclude_writers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".test.lck");
        let timeout = Duration::from_millis(50);
        let _a = open_file_locked(&path, timeout, false, CreateOptions::new()).unwrap();
        let _b = open_file_locked(&path, timeout, false, CreateOptions::new()).unwrap();
        assert!(open_file_locked(&path, timeout, true, CreateOptions::new()).is_err());
    }

    #[test]
    fn lock_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".test.lck");
        let timeout = Duration::from_millis(50);
        drop(open_file_locked(&path, timeout, true, CreateOptions::new()).unwrap());
        open_file_locked(&path, timeout, true, CreateOptions::new()).unwrap();
    }

    #[test]
    fn new_lock_file_gets_requested_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".test.lck");
        let opts = CreateOptions::new().perm(Mode::from_bits_truncate(0o660));
        let _lock = open_file_locked(&path, Duration::from_secs(1), true, opts).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o660);
    }
}
