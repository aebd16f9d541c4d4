//! Advisory `flock(2)` locks with a timeout, without polling and without
//! signals.
//!
//! A lock that is free is taken at once (`LOCK_NB`). A contended one is waited
//! for by a blocking `flock` on a helper thread ([`FlockWait`]), on a
//! duplicate of the file's descriptor: the same open file description, so
//! the lock it takes is the caller's. The caller waits for that thread with a
//! deadline, and wakes as soon as the kernel grants the lock. Upstream
//! interrupts a blocking `flock` in the calling thread with a timer signal;
//! we install no signal handler in the process.
//!
//! A wait that times out is given up, not cancelled (nothing can interrupt a
//! blocking `flock` but a signal): its thread stays blocked until the holder
//! lets go, then takes the lock and closes its descriptor. So after a
//! timeout the caller must close the file; the lock, if the abandoned wait
//! took it, goes with the last descriptor of the file description.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Error, bail, format_err};

use super::CreateOptions;

/// Stack of a helper thread: it makes one system call.
const WAIT_THREAD_STACK: usize = 64 * 1024;

/// Takes a shared or exclusive `flock` on an open file, waiting at most
/// `timeout` (`None` waits forever). The lock is held until the file is closed.
///
/// The error on timeout is "timed out after ..."; callers add the path.
/// After an error, close the file (see the module docs).
pub fn lock_file(file: &File, exclusive: bool, timeout: Option<Duration>) -> Result<(), Error> {
    if try_lock_file(file, exclusive)? {
        return Ok(());
    }
    let timed_out = || {
        format_err!(
            "timed out after {:.1}s - another process holds the lock",
            timeout.unwrap_or_default().as_secs_f64()
        )
    };
    if timeout == Some(Duration::ZERO) {
        return Err(timed_out());
    }
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let wait = FlockWait::start(file.try_clone()?, exclusive, || {})?;
    match wait.wait_until(deadline) {
        Some(result) => result,
        None => Err(timed_out()),
    }
}

/// One attempt at the lock that does not block: `Ok(false)` if another open
/// file description holds a conflicting lock.
pub fn try_lock_file(file: &File, exclusive: bool) -> Result<bool, Error> {
    let attempt = if exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    };
    match attempt {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(err)) => bail!("flock failed - {err}"),
    }
}

/// A blocking `flock` of a file on a helper thread, waited for with a
/// deadline (see the module docs).
///
/// The helper locks a duplicate of the file's descriptor, so the lock, once
/// taken, belongs to the file held here; it closes the duplicate as soon as
/// its `flock` returns. Dropping a wait whose `flock` has not returned gives
/// it up: the lock it may still take goes with that duplicate.
#[derive(Debug)]
pub struct FlockWait {
    file: File,
    exclusive: bool,
    state: Arc<WaitState>,
}

#[derive(Debug, Default)]
struct WaitState {
    /// `None` while the `flock` blocks; then its result (taken once).
    outcome: Mutex<Option<std::io::Result<()>>>,
    done: Condvar,
}

impl FlockWait {
    /// Starts a blocking `flock` of `file` on a new thread. `on_done` runs on
    /// that thread once the `flock` has returned and [`FlockWait::wait_until`]
    /// would see it.
    pub fn start(
        file: File,
        exclusive: bool,
        on_done: impl FnOnce() + Send + 'static,
    ) -> Result<Self, Error> {
        let duplicate = file
            .try_clone()
            .map_err(|err| format_err!("unable to duplicate the lock file's descriptor - {err}"))?;
        let state = Arc::new(WaitState::default());
        let helper_state = Arc::clone(&state);
        std::thread::Builder::new()
            .name("flock-wait".into())
            .stack_size(WAIT_THREAD_STACK)
            .spawn(move || {
                let result = loop {
                    let result = if exclusive {
                        duplicate.lock()
                    } else {
                        duplicate.lock_shared()
                    };
                    match result {
                        Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                        result => break result,
                    }
                };
                // before anyone hears of it: once the waiter closes its file,
                // nothing may keep the lock (if the wait was given up, this
                // was the last descriptor, and the lock goes with it)
                drop(duplicate);
                let mut outcome = helper_state
                    .outcome
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                *outcome = Some(result);
                drop(outcome);
                helper_state.done.notify_all();
                on_done();
            })
            .map_err(|err| format_err!("unable to start a thread to wait for the lock - {err}"))?;
        Ok(Self {
            file,
            exclusive,
            state,
        })
    }

    /// Whether this waits for an exclusive lock.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// Waits until the `flock` returns or `deadline` passes (`None`: no
    /// deadline; a deadline in the past only looks). `None` if it is still
    /// blocked; the result of the `flock` once (a second call after that
    /// returns `None`).
    pub fn wait_until(&self, deadline: Option<Instant>) -> Option<Result<(), Error>> {
        let mut outcome = self
            .state
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(result) = outcome.take() {
                return Some(result.map_err(|err| format_err!("flock failed - {err}")));
            }
            outcome = match deadline {
                None => self
                    .state
                    .done
                    .wait(outcome)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.state
                        .done
                        .wait_timeout(outcome, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    /// The file (locked once [`FlockWait::wait_until`] returned `Ok`).
    pub fn into_file(self) -> File {
        self.file
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
        assert!(err.contains("timed out after 0.1s"), "{err}");
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

    /// `/proc/locks` lines of blocked `flock` waiters on `path`'s file.
    fn blocked_waiters(path: &Path) -> usize {
        let meta = std::fs::metadata(path).unwrap();
        // "N: -> FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE START END"
        let file = format!(
            "{:02x}:{:02x}:{}",
            libc::major(meta.dev()),
            libc::minor(meta.dev()),
            meta.ino()
        );
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        locks
            .lines()
            .filter(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.get(1..3) == Some(&["->", "FLOCK"][..]) && fields.get(6) == Some(&&*file)
            })
            .count()
    }

    /// Waits (at most 10 s) until `path` has `n` blocked waiters.
    fn until_blocked_waiters(path: &Path, n: usize) {
        let give_up = Instant::now() + Duration::from_secs(10);
        while blocked_waiters(path) != n {
            assert!(
                Instant::now() < give_up,
                "no {n} blocked waiter(s) on {path:?}"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_waiter_blocks_in_the_kernel_and_wakes_on_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".test.lck");
        let held = open_file_locked(&path, Duration::ZERO, true, CreateOptions::new()).unwrap();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                open_file_locked(&path, Duration::from_secs(60), true, CreateOptions::new())
            })
        };
        // a waiter that polled with try-lock and sleep would never show up
        // here: the kernel lists only blocked flock calls
        until_blocked_waiters(&path, 1);
        drop(held);
        let locked = waiter.join().unwrap().unwrap();
        let other = File::open(&path).unwrap();
        assert!(!try_lock_file(&other, false).unwrap());
        drop(locked);
        assert!(try_lock_file(&other, true).unwrap());
    }

    #[test]
    fn a_timed_out_wait_lets_go_once_the_holder_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".test.lck");
        let held = open_file_locked(&path, Duration::ZERO, true, CreateOptions::new()).unwrap();
        let err = open_file_locked(&path, Duration::from_millis(20), true, CreateOptions::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("timed out"), "{err}");
        // the given-up wait is still queued in the kernel ...
        until_blocked_waiters(&path, 1);
        drop(held);
        // ... takes the lock when the holder lets go and drops it at once
        until_blocked_waiters(&path, 0);
        open_file_locked(&path, Duration::from_secs(60), true, CreateOptions::new()).unwrap();
    }

    #[test]
    fn a_shared_waiter_waits_for_the_writer_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".test.lck");
        let writer = open_file_locked(&path, Duration::ZERO, true, CreateOptions::new()).unwrap();
        let wait = FlockWait::start(File::open(&path).unwrap(), false, || {}).unwrap();
        assert!(!wait.is_exclusive());
        until_blocked_waiters(&path, 1);
        assert!(wait.wait_until(Some(Instant::now())).is_none());
        drop(writer);
        wait.wait_until(None).unwrap().unwrap();
        let reader = wait.into_file();
        // a second reader gets in beside it, a writer does not
        assert!(try_lock_file(&File::open(&path).unwrap(), false).unwrap());
        assert!(!try_lock_file(&File::open(&path).unwrap(), true).unwrap());
        drop(reader);
    }
}
