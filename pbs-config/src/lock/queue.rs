//! The in-process queue in front of every lock file: the threads of one
//! process take a lock in the order they asked for it, and only the head of
//! the queue contends for the `flock`.
//!
//! The API daemon runs each request on a thread of its own, so concurrent
//! writers are mostly threads of one process. Each lock (a directory, by
//! device and inode, and a lock file name in it) has a FIFO of waiters. A
//! waiter enters when it is at the front and nothing conflicting is active
//! (an exclusive waiter: nothing active; a shared one: only shared ones), so
//! a writer behind readers is not overtaken by later readers. Entering gives
//! a [`Turn`]; its holder takes the `flock` ([`Turn::flock`]) and keeps the
//! turn until it lets go of the lock, then the next waiter is woken: no
//! sleep, no retry.
//!
//! Another process may hold the lock: then the head waits in a blocking
//! `flock` on a helper thread ([`FlockWait`]) and wakes when the kernel
//! grants it. A head that times out parks its wait in the queue; the next
//! head takes it over, so a lock held for long by another process costs one
//! helper thread, not one per waiter. A parked wait whose `flock` returns
//! before anyone takes it over closes its file at once, so the lock is never
//! held by nobody.
//!
//! A waiter that times out leaves the queue wherever it stands and wakes
//! the one behind it; the deadline covers the wait in the queue and for the
//! `flock` together. State lives in one process-wide mutex, held only for
//! bookkeeping (no system call blocks under it); a lock's entry is removed
//! once nobody waits for, holds or parks on it.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use anyhow::{Error, format_err};

use proxmox_sys::fs::{FlockWait, try_lock_file};

/// Which lock: the directory holding the lock file (device and inode) and
/// the lock file's name in it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct LockKey {
    dev: u64,
    ino: u64,
    name: String,
}

impl LockKey {
    /// The lock file `name` in the directory with device `dev` and inode `ino`.
    pub(crate) fn new(dev: u64, ino: u64, name: &str) -> Self {
        Self {
            dev,
            ino,
            name: name.to_string(),
        }
    }
}

#[derive(Debug)]
struct Waiter {
    ticket: u64,
    exclusive: bool,
    wake: Arc<Condvar>,
}

/// A `flock` wait left by a head that timed out.
#[derive(Debug)]
struct Parked {
    id: u64,
    wait: FlockWait,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: VecDeque<Waiter>,
    /// Turns given out and not yet returned: threads taking or holding the
    /// `flock`.
    active: usize,
    /// Whether the active turns are exclusive (then there is one).
    active_exclusive: bool,
    parked: Option<Parked>,
    /// How many `flock` waits were started for this lock (for tests).
    #[cfg(test)]
    waits_started: usize,
}

impl Queue {
    fn may_enter(&self, ticket: u64) -> bool {
        let Some(front) = self.waiting.front() else {
            return false;
        };
        front.ticket == ticket && (self.active == 0 || !(front.exclusive || self.active_exclusive))
    }

    fn wake_front(&self) {
        if let Some(front) = self.waiting.front() {
            front.wake.notify_one();
        }
    }

    fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.active == 0 && self.parked.is_none()
    }
}

#[derive(Debug, Default)]
struct Registry {
    next_ticket: u64,
    queues: HashMap<LockKey, Queue>,
}

impl Registry {
    fn next_ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    fn forget_if_idle(&mut self, key: &LockKey) {
        if self.queues.get(key).is_some_and(Queue::is_idle) {
            self.queues.remove(key);
        }
    }
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);

fn registry() -> MutexGuard<'static, Registry> {
    // only bookkeeping happens under the lock: a panic there leaves no
    // half-done state worth refusing
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Queues for the lock `key` and waits until it is this caller's turn, at
/// most until `deadline`; `None` on timeout (the caller has left the queue
/// then).
pub(crate) fn wait_turn(key: &LockKey, exclusive: bool, deadline: Instant) -> Option<Turn> {
    let mut registry = registry();
    let ticket = registry.next_ticket();
    let wake = Arc::new(Condvar::new());
    registry
        .queues
        .entry(key.clone())
        .or_default()
        .waiting
        .push_back(Waiter {
            ticket,
            exclusive,
            wake: Arc::clone(&wake),
        });
    loop {
        let queue = registry
            .queues
            .get_mut(key)
            .expect("a lock with a waiter stays registered");
        if queue.may_enter(ticket) {
            queue.waiting.pop_front();
            queue.active += 1;
            queue.active_exclusive = exclusive;
            // a shared waiter behind this shared one may enter as well
            queue.wake_front();
            return Some(Turn {
                key: key.clone(),
                exclusive,
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            queue.waiting.retain(|waiter| waiter.ticket != ticket);
            queue.wake_front();
            registry.forget_if_idle(key);
            return None;
        }
        registry = wake
            .wait_timeout(registry, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// How many threads of this process wait in the queue of `key` (for tests
/// of what happens while they wait).
#[cfg(test)]
pub(crate) fn waiting(key: &LockKey) -> usize {
    registry()
        .queues
        .get(key)
        .map_or(0, |queue| queue.waiting.len())
}

/// This thread's turn at a lock: taking the `flock` and holding it. Drop it
/// after closing the locked file; that wakes the next waiter.
#[derive(Debug)]
pub(crate) struct Turn {
    key: LockKey,
    exclusive: bool,
}

impl Turn {
    /// Takes the `flock`: takes over a parked wait if there is one for this
    /// mode, else opens the lock file with `open` and locks it, waiting for
    /// another process at most until `deadline`. `Ok(None)` on timeout (a
    /// wait still blocked is parked for the next head). `path` is for
    /// messages.
    pub(crate) fn flock(
        &self,
        path: &Path,
        open: impl FnOnce() -> Result<File, Error>,
        deadline: Instant,
    ) -> Result<Option<File>, Error> {
        let flock_failed = |err: Error| format_err!("unable to acquire lock {path:?} - {err}");
        let parked = {
            let mut registry = registry();
            let queue = registry.queues.get_mut(&self.key);
            queue.and_then(|queue| {
                queue
                    .parked
                    .take_if(|parked| parked.wait.is_exclusive() == self.exclusive)
            })
        };
        let (id, wait) = match parked {
            Some(Parked { id, wait }) => (id, wait),
            None => {
                let file = open()?;
                if try_lock_file(&file, self.exclusive).map_err(flock_failed)? {
                    return Ok(Some(file));
                }
                let id = {
                    let mut registry = registry();
                    #[cfg(test)]
                    if let Some(queue) = registry.queues.get_mut(&self.key) {
                        queue.waits_started += 1;
                    }
                    registry.next_ticket()
                };
                let key = self.key.clone();
                let wait = FlockWait::start(file, self.exclusive, move || unpark(&key, id))
                    .map_err(flock_failed)?;
                (id, wait)
            }
        };
        match wait.wait_until(Some(deadline)) {
            Some(Ok(())) => return Ok(Some(wait.into_file())),
            Some(Err(err)) => return Err(flock_failed(err)),
            None => {}
        }
        // timed out: park the wait for the next head, unless its flock has
        // returned meanwhile (checked under the registry lock, which the
        // helper takes after the flock returns: see `unpark`)
        let mut registry = registry();
        match wait.wait_until(Some(Instant::now())) {
            Some(Ok(())) => return Ok(Some(wait.into_file())),
            Some(Err(err)) => return Err(flock_failed(err)),
            None => {}
        }
        let queue = registry
            .queues
            .get_mut(&self.key)
            .expect("a lock with an active turn stays registered");
        let given_up = match queue.parked {
            None => {
                queue.parked = Some(Parked { id, wait });
                None
            }
            // a wait of the other mode, or of another shared head, is
            // parked already: give this one up (it lets go once its flock
            // returns)
            Some(_) => Some(wait),
        };
        drop(registry);
        drop(given_up);
        Ok(None)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut registry = registry();
        if let Some(queue) = registry.queues.get_mut(&self.key) {
            queue.active -= 1;
            queue.wake_front();
        }
        registry.forget_if_idle(&self.key);
    }
}

/// Runs on a helper thread once its `flock` returned: if nobody took the
/// wait over, close its file, so a lock it took is released, and only then
/// forget the lock's entry (whoever finds no entry finds the lock free).
fn unpark(key: &LockKey, id: u64) {
    let parked = {
        let mut registry = registry();
        let Some(queue) = registry.queues.get_mut(key) else {
            return;
        };
        if queue.parked.as_ref().is_none_or(|parked| parked.id != id) {
            return;
        }
        queue.parked.take()
    };
    // closed outside the registry lock: no system call under it
    drop(parked);
    registry().forget_if_idle(key);
    #[cfg(test)]
    tests::pause_after_unpark(key);
}

/// How many threads of this process wait in the queue of the lock file
/// `name` in `dir` (for tests elsewhere in the crate that must see a waiter
/// queued, never time pass).
#[cfg(test)]
pub(crate) fn waiting_in(dir: &crate::dir_handle::DirHandle, name: &str) -> usize {
    let (dev, ino) = dir.identity().unwrap();
    let key = LockKey::new(dev, ino, name);
    registry()
        .queues
        .get(&key)
        .map_or(0, |queue| queue.waiting.len())
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::os::unix::fs::MetadataExt;
    use std::sync::mpsc;
    use std::time::Duration;

    use proxmox_sys::fs::CreateOptions;

    use super::*;
    use crate::dir_handle::DirHandle;
    use crate::lock::LockedFile;

    const NAME: &str = "test.lck";
    const LONG: Duration = Duration::from_secs(60);

    /// The queue of `key` as (waiting, active turns, parked wait, waits started).
    #[derive(Debug, PartialEq, Eq)]
    struct State {
        waiting: usize,
        active: usize,
        parked: bool,
        waits_started: usize,
    }

    /// Where `unpark` of one lock stops once it has forgotten the lock's
    /// entry: the test is told it got there and lets it go on.
    struct UnparkPause {
        key: LockKey,
        reached: mpsc::Sender<()>,
        go_on: mpsc::Receiver<()>,
    }

    static UNPARK_PAUSE: Mutex<Option<UnparkPause>> = Mutex::new(None);

    pub(super) fn pause_after_unpark(key: &LockKey) {
        let pause = UNPARK_PAUSE
            .lock()
            .unwrap()
            .take_if(|pause| pause.key == *key);
        if let Some(pause) = pause {
            pause.reached.send(()).unwrap();
            pause.go_on.recv().unwrap();
        }
    }

    fn state(key: &LockKey) -> Option<State> {
        registry().queues.get(key).map(|queue| State {
            waiting: queue.waiting.len(),
            active: queue.active,
            parked: queue.parked.is_some(),
            waits_started: queue.waits_started,
        })
    }

    fn setup() -> (tempfile::TempDir, DirHandle, LockKey) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DirHandle::open_path(tmp.path()).unwrap().unwrap();
        let stat = dir.stat_self().unwrap();
        let key = LockKey::new(stat.dev, stat.ino, NAME);
        (tmp, dir, key)
    }

    fn lock(dir: &DirHandle, timeout: Duration, exclusive: bool) -> Result<LockedFile, Error> {
        dir.lock(NAME, timeout, exclusive, CreateOptions::new())
    }

    /// Waits (at most 10 s) until `done` holds: for a state another thread
    /// reaches, never for time to pass.
    fn until(what: &str, mut done: impl FnMut() -> bool) {
        let give_up = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < give_up, "gave up waiting until {what}");
            std::thread::yield_now();
        }
    }

    fn waiting(key: &LockKey) -> usize {
        state(key).map_or(0, |state| state.waiting)
    }

    /// A lock another process holds: a second open file description,
    /// locked outside the queue.
    fn foreign_holder(tmp: &tempfile::TempDir) -> File {
        let file = File::open(tmp.path().join(NAME)).unwrap();
        file.try_lock().unwrap();
        file
    }

    #[test]
    fn waiters_take_the_lock_in_arrival_order() {
        let (_tmp, dir, key) = setup();
        let held = lock(&dir, LONG, true).unwrap();
        let order = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for index in 0..8 {
                let (dir, order) = (&dir, &order);
                scope.spawn(move || {
                    let _locked = lock(dir, LONG, true).unwrap();
                    order.lock().unwrap().push(index);
                });
                until("the waiter is queued", || waiting(&key) == index + 1);
            }
            assert_eq!(
                state(&key),
                Some(State {
                    waiting: 8,
                    active: 1,
                    parked: false,
                    waits_started: 0,
                })
            );
            drop(held);
        });
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
        // nothing polled, nothing waited in the kernel; the entry is gone
        assert_eq!(state(&key), None);
    }

    /// The queue is the directory's, not the handle's: a request through
    /// another handle of it (opened on its own, so its identity is its own
    /// `fstat`'s) queues behind the holder instead of contending in the
    /// kernel, as does one through a clone (whose identity is copied).
    #[test]
    fn every_handle_of_a_directory_queues_in_its_one_queue() {
        let (tmp, dir, key) = setup();
        let opened_apart = DirHandle::open_path(tmp.path()).unwrap().unwrap();
        let clone = dir.try_clone().unwrap();
        let held = lock(&dir, LONG, true).unwrap();
        std::thread::scope(|scope| {
            let apart = scope.spawn(|| lock(&opened_apart, LONG, true).map(drop));
            until("the request through the other handle is queued", || {
                waiting(&key) == 1
            });
            let cloned = scope.spawn(|| lock(&clone, LONG, true).map(drop));
            until("the request through the clone is queued", || {
                waiting(&key) == 2
            });
            assert_eq!(state(&key).map(|state| state.waits_started), Some(0));
            drop(held);
            apart.join().unwrap().unwrap();
            cloned.join().unwrap().unwrap();
        });
        assert_eq!(state(&key), None);
    }

    #[test]
    fn a_waiter_timing_out_mid_queue_leaves_the_others_in_order() {
        let (tmp, dir, key) = setup();
        let held = lock(&dir, LONG, true).unwrap();
        let order = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            let queue = |name: &'static str, timeout: Duration| {
                let (dir, order) = (&dir, &order);
                scope.spawn(move || {
                    let locked = lock(dir, timeout, true)?;
                    order.lock().unwrap().push(name);
                    drop(locked);
                    Ok::<_, Error>(())
                })
            };
            let first = queue("first", LONG);
            until("first is queued", || waiting(&key) == 1);
            let middle = queue("middle", Duration::from_millis(500));
            until("middle is queued", || waiting(&key) == 2);
            let last = queue("last", LONG);
            until("last is queued, or middle gone", || {
                waiting(&key) == 3 || middle.is_finished()
            });
            let err = middle.join().unwrap().unwrap_err().to_string();
            assert!(
                err.contains(&format!("{:?}", tmp.path().join(NAME)))
                    && err.contains("timed out after 0.5s")
                    && err.contains("other requests of this process"),
                "{err}"
            );
            assert_eq!(waiting(&key), 2);
            drop(held);
            first.join().unwrap().unwrap();
            last.join().unwrap().unwrap();
        });
        assert_eq!(*order.lock().unwrap(), ["first", "last"]);
        assert_eq!(state(&key), None);
    }

    #[test]
    fn readers_enter_together_but_not_past_a_queued_writer() {
        let (_tmp, dir, key) = setup();
        let reader = lock(&dir, LONG, false).unwrap();
        let order = Mutex::new(Vec::new());
        let (release, released) = mpsc::channel::<()>();
        let released = Mutex::new(released);
        std::thread::scope(|scope| {
            let queue = |name: &'static str, exclusive: bool| {
                let (dir, order, released) = (&dir, &order, &released);
                scope.spawn(move || {
                    let _locked = lock(dir, LONG, exclusive).unwrap();
                    order.lock().unwrap().push(name);
                    if !exclusive {
                        // readers hold until the test lets them go
                        released.lock().unwrap().recv().unwrap();
                    }
                })
            };
            // a second reader enters beside the first
            queue("reader 2", false);
            until("reader 2 holds", || order.lock().unwrap().len() == 1);
            queue("writer", true);
            until("the writer is queued", || waiting(&key) == 1);
            // later readers queue behind the writer, not beside the readers
            queue("reader 3", false);
            queue("reader 4", false);
            until("readers 3 and 4 are queued", || waiting(&key) == 3);
            drop(reader);
            release.send(()).unwrap();
            until("readers 3 and 4 hold together", || {
                state(&key).is_some_and(|state| state.waiting == 0 && state.active == 2)
            });
            release.send(()).unwrap();
            release.send(()).unwrap();
        });
        let order = order.lock().unwrap();
        assert_eq!(order[..2], ["reader 2", "writer"]);
        assert_eq!(order.len(), 4);
        assert_eq!(state(&key), None);
    }

    #[test]
    fn a_head_timing_out_parks_its_flock_for_the_next() {
        let (tmp, dir, key) = setup();
        drop(lock(&dir, LONG, true).unwrap());
        let holder = foreign_holder(&tmp);
        std::thread::scope(|scope| {
            let head = scope.spawn(|| lock(&dir, Duration::from_millis(300), true));
            until("the head waits in flock", || {
                state(&key).is_some_and(|state| state.waits_started == 1)
            });
            let next = scope.spawn(|| lock(&dir, LONG, true));
            let err = head.join().unwrap().unwrap_err().to_string();
            assert!(
                err.contains("timed out after 0.3s - another process holds the lock"),
                "{err}"
            );
            // the next head took the parked wait over instead of starting one
            until("the next head took over", || {
                state(&key).is_some_and(|state| state.waiting == 0 && !state.parked)
            });
            assert_eq!(
                state(&key),
                Some(State {
                    waiting: 0,
                    active: 1,
                    parked: false,
                    waits_started: 1,
                })
            );
            drop(holder);
            let locked = next.join().unwrap().unwrap();
            let other = File::open(tmp.path().join(NAME)).unwrap();
            assert!(other.try_lock().is_err());
            drop(locked);
            other.try_lock().unwrap();
        });
        assert_eq!(state(&key), None);
    }

    #[test]
    fn a_parked_flock_that_returns_unclaimed_lets_go() {
        let (tmp, dir, key) = setup();
        drop(lock(&dir, LONG, true).unwrap());
        let holder = foreign_holder(&tmp);
        let err = lock(&dir, Duration::from_millis(100), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("another process holds the lock"), "{err}");
        assert_eq!(
            state(&key),
            Some(State {
                waiting: 0,
                active: 0,
                parked: true,
                waits_started: 1,
            })
        );
        let (reached, unpark_reached) = mpsc::channel();
        let (let_unpark_go_on, go_on) = mpsc::channel();
        *UNPARK_PAUSE.lock().unwrap() = Some(UnparkPause {
            key: key.clone(),
            reached,
            go_on,
        });
        drop(holder);
        // the helper takes the lock, finds nobody took its wait over and
        // closes the file: once the entry is gone, the lock is free
        unpark_reached
            .recv_timeout(LONG)
            .expect("the parked wait returns once the holder lets go");
        assert_eq!(state(&key), None);
        let free = File::open(tmp.path().join(NAME)).unwrap().try_lock();
        let_unpark_go_on.send(()).unwrap();
        free.expect("the lock is free once its queue entry is gone");
    }

    #[test]
    fn a_taken_over_wait_on_a_removed_lock_file_starts_over() {
        let (tmp, dir, key) = setup();
        drop(lock(&dir, LONG, true).unwrap());
        // kept open, so its inode number is not reused for the new file
        let old_file = File::open(tmp.path().join(NAME)).unwrap();
        let old_inode = old_file.metadata().unwrap().ino();
        // another process holds the lock and deletes the lock file (as a key
        // delete does), then lets go
        let holder = foreign_holder(&tmp);
        let err = lock(&dir, Duration::from_millis(100), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("another process holds the lock"), "{err}");
        std::thread::scope(|scope| {
            let next = scope.spawn(|| lock(&dir, LONG, true));
            until("the next head took over", || {
                state(&key).is_some_and(|state| state.active == 1 && !state.parked)
            });
            std::fs::remove_file(tmp.path().join(NAME)).unwrap();
            drop(holder);
            // the taken-over wait locks the removed inode; the check after
            // flock sees that and locks the file the name now names
            let locked = next.join().unwrap().unwrap();
            let inode = locked.file().metadata().unwrap().ino();
            assert_ne!(inode, old_inode);
            assert_eq!(locked.file().metadata().unwrap().nlink(), 1);
            assert_eq!(
                std::fs::metadata(tmp.path().join(NAME)).unwrap().ino(),
                inode
            );
        });
    }
}
