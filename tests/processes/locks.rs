//! Lock waiters of one process behind a lock another process holds: the
//! threads queue in the process, only the head waits in the kernel's
//! `flock`, and every one gets the lock once the other process lets go; on a
//! read-only file system too.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Error;

use pbs_config::ConfigDir;
use pbs_test_kit::tmpfs::tmpfs_config_dir;
use pbs_test_kit::{Sandbox, key_config};

use crate::support::{Holder, assert_clean, assert_relocated_only, context, fault_store};

const THREADS: usize = 8;

/// Eight threads of this process store a key each while a worker process
/// holds the config lock: none gets in while the worker holds it; once all
/// sleep, exactly one `flock` of this process is blocked in the kernel (the
/// head's; the others wait in the queue, not polling); after the worker
/// lets go, every store succeeds and the store is clean.
pub fn threads_queue_behind_another_process() {
    let sandbox = Sandbox::new();
    let dir = sandbox.config_dir();
    let config = ConfigDir::new(dir)
        .unwrap()
        .lock_timeout(Duration::from_secs(60));
    let keys = config.encryption_keys();
    keys.store_key("first", &key_config(40)).unwrap();
    let holder = Holder::hold(dir, None);

    let results = queue_behind(holder, &dir.join(".encryption-keys.lck"), |index| {
        keys.store_key(&format!("queued-{index}"), &key_config(41 + index as u64))
            .map(|_| ())
    });
    for (index, result) in results.into_iter().enumerate() {
        result.unwrap_or_else(|err| panic!("store of queued-{index}: {err}"));
    }
    let (list, _) = keys.list_keys(true).unwrap();
    assert_eq!(list.len(), THREADS + 1);
    assert_clean(&context(dir).verify(false).unwrap(), "after the queue");
}

/// The same with `verify` (which locks the config and the sync jobs) on a
/// store remounted read-only, where lock files are opened read-only: the
/// worker's lock excludes this process's threads, they queue, and each
/// verify completes once the worker lets go.
pub fn threads_queue_on_a_read_only_file_system() {
    let Some((tmp, mount, dir)) = tmpfs_config_dir("locks-ro", "4m") else {
        return;
    };
    fault_store(&dir, &tmp.path().join("import.enc"));
    mount.remount(true);
    let config = ConfigDir::new(&dir)
        .unwrap()
        .lock_timeout(Duration::from_secs(60));
    let holder = Holder::hold(&dir, None);

    let results = queue_behind(holder, &dir.join(".encryption-keys.lck"), |_| {
        assert_relocated_only(&config.verify(false)?, "verify on a read-only fs");
        Ok(())
    });
    for result in results {
        result.unwrap();
    }
    mount.remount(false);
    drop(mount);
}

/// Runs `op` on [`THREADS`] threads while `holder` holds `lock_file`; checks
/// that none finishes before the holder lets go and that this process has
/// one blocked `flock` on it once all sleep; then lets the holder go and
/// returns the results.
fn queue_behind(
    holder: Holder,
    lock_file: &Path,
    op: impl Fn(usize) -> Result<(), Error> + Sync,
) -> Vec<Result<(), Error>> {
    let (tids_tx, tids) = mpsc::channel();
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|index| {
                let (op, tids_tx) = (&op, tids_tx.clone());
                scope.spawn(move || {
                    tids_tx.send(nix::unistd::gettid()).unwrap();
                    op(index)
                })
            })
            .collect();
        let tids: Vec<_> = tids.iter().take(THREADS).collect();
        until("every thread sleeps and the head waits in flock", || {
            tids.iter().all(|tid| sleeps_in_a_futex(*tid)) && blocked_flocks(lock_file) >= 1
        });
        // a thread in flock would sleep in locks_lock_inode_wait, not in a
        // futex: the one blocked flock is the head's helper thread
        assert_eq!(
            blocked_flocks(lock_file),
            1,
            "blocked flocks of this process"
        );
        assert!(
            threads.iter().all(|thread| !thread.is_finished()),
            "a thread got the lock the worker holds"
        );
        assert!(holder.release().success(), "the lock holder failed");
        threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect()
    })
}

/// Whether thread `tid` of this process sleeps in a futex wait (a condvar,
/// a mutex).
fn sleeps_in_a_futex(tid: nix::unistd::Pid) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/wchan"))
        .is_ok_and(|wchan| wchan.starts_with("futex"))
}

/// How many `flock` calls of this process are blocked on `path`'s file
/// (`/proc/locks`: "N: -> FLOCK  ADVISORY  WRITE PID MAJ:MIN:INODE 0 EOF").
fn blocked_flocks(path: &Path) -> usize {
    let meta = std::fs::metadata(path).unwrap();
    let file = format!(
        "{:02x}:{:02x}:{}",
        libc::major(meta.dev()),
        libc::minor(meta.dev()),
        meta.ino()
    );
    let pid = std::process::id().to_string();
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1..3) == Some(&["->", "FLOCK"][..])
                && fields.get(5) == Some(&pid.as_str())
                && fields.get(6) == Some(&file.as_str())
        })
        .count()
}

/// Waits (at most 30 s) until `done` holds: for a state other threads
/// reach, never for time to pass.
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < give_up, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}
