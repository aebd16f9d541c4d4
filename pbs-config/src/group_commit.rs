//! Group commit of key stores: the threads of one process that store new
//! keys into one config dir at the same time share one turn of the config
//! lock.
//!
//! A store holds the config lock through five syncs (the audit intent, the
//! key file and its directory, the config file and its directory). One
//! after the other, 16 stores queued at once wait out 80 syncs, and every
//! slow sync of the disk delays all that queue behind it. Here the first
//! thread to find no batch running leads one: it takes every store waiting
//! at that moment, its own included, and makes them together under one
//! hold of the lock (`EncryptionKeys::store_new_keys`): one sync of the
//! intents, each key file synced, one sync of the key directory, one config
//! write. Every request gets its own result. Stores that arrive meanwhile
//! wait for the batch after it, led by the first of them, so every store
//! is in the first batch that starts after it asked (no waiter starves),
//! and a lone store is a batch of one, with the syscalls of a store made
//! alone. The wait for a batch counts in a store's lock timeout: a store
//! still waiting at its deadline leaves the queue and fails, and a batch
//! waits for the config lock only until the first deadline of its stores.
//!
//! Only the daemon has several stores at once to batch; a CLI process
//! stores one key. Crash order per key is the store's, and a kill leaves at
//! most one batch of key files without config entry, each with its intent
//! (`verify --repair` moves them into the trash, as for one).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use anyhow::{Error, format_err};

/// Requests of type `T` made in batches, each answered with a result of
/// type `R`: shared by a config dir's views, as its caches are.
pub(crate) struct Batches<T, R> {
    state: Mutex<State<T, R>>,
    changed: Condvar,
}

struct State<T, R> {
    next_ticket: u64,
    /// Whether a thread is making a batch now.
    leading: bool,
    waiting: Vec<(u64, T)>,
    results: HashMap<u64, Result<R, Error>>,
}

impl<T, R> Default for Batches<T, R> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                next_ticket: 0,
                leading: false,
                waiting: Vec::new(),
                results: HashMap::new(),
            }),
            changed: Condvar::new(),
        }
    }
}

impl<T, R> Batches<T, R> {
    /// Makes `request` in a batch with the requests waiting beside it:
    /// leads the batch (`make` gets every request waiting, this one among
    /// them, in the order they were asked, and returns one result each, in
    /// that order), or waits for the thread that does.
    ///
    /// A request still waiting for a batch to take it at `deadline` leaves
    /// the queue and fails with `timed_out()`; one taken into a batch gets
    /// that batch's result (`make` must not wait past the first deadline
    /// of its requests).
    pub(crate) fn make(
        &self,
        request: T,
        deadline: Instant,
        timed_out: impl FnOnce() -> Error,
        make: impl FnOnce(Vec<T>) -> Vec<Result<R, Error>>,
    ) -> Result<R, Error> {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push((ticket, request));
        loop {
            if let Some(result) = state.results.remove(&ticket) {
                return result;
            }
            if !state.leading {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                if let Some(at) = state.waiting.iter().position(|(t, _)| *t == ticket) {
                    state.waiting.remove(at);
                    return Err(timed_out());
                }
                // in the batch being made: its result comes with it
                state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        // lead: every request waiting now, this one among them
        state.leading = true;
        let (tickets, batch): (Vec<u64>, Vec<T>) =
            std::mem::take(&mut state.waiting).into_iter().unzip();
        drop(state);

        let made = catch_unwind(AssertUnwindSafe(|| make(batch)));
        let mut state = self.lock();
        state.leading = false;
        let panicked = match made {
            Ok(results) if results.len() == tickets.len() => {
                state.results.extend(tickets.into_iter().zip(results));
                None
            }
            Ok(results) => {
                fail_all(&mut state, &tickets, results.len());
                None
            }
            Err(panic) => {
                fail_all(&mut state, &tickets, 0);
                Some(panic)
            }
        };
        let mine = state.results.remove(&ticket);
        drop(state);
        // the results, and the next batch's turn
        self.changed.notify_all();
        if let Some(panic) = panicked {
            resume_unwind(panic);
        }
        mine.unwrap_or_else(|| Err(format_err!("internal error - a batch gave no result")))
    }

    /// How many requests wait for a batch to take them (not those of the
    /// batch being made).
    pub(crate) fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    fn lock(&self) -> MutexGuard<'_, State<T, R>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A batch that did not give one result per request (`got` of them, or a
/// panic): each of its requests fails, none is left waiting.
fn fail_all<T, R>(state: &mut State<T, R>, tickets: &[u64], got: usize) {
    for ticket in tickets {
        state.results.insert(
            *ticket,
            Err(format_err!(
                "internal error - a batch of {} ended with {got} results; whether this one was \
                 made, 'proxmox-backup-manager encryption-key verify' tells",
                tickets.len()
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};
    use std::thread::{Scope, ScopedJoinHandle};
    use std::time::{Duration, Instant};

    use anyhow::Error;

    use super::Batches;

    /// How long a test waits for what another thread must do.
    const DEADLINE: Duration = Duration::from_secs(60);

    /// A deadline no request of these tests reaches.
    fn far() -> Instant {
        Instant::now() + 10 * DEADLINE
    }

    /// The error of a request whose deadline passed: never, with [`far`].
    fn unused() -> Error {
        anyhow::format_err!("a request of this test timed out")
    }

    /// The result a correct batch gives `request`: its own, told apart
    /// from every other request's.
    fn answer(request: u32) -> u32 {
        request * 10 + 7
    }

    /// Waits until `done` holds, polling, or fails the test naming `what`.
    #[track_caller]
    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < DEADLINE, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The batches made, in the order they started, each held until the
    /// test lets it go on.
    #[derive(Default)]
    struct Batchlog {
        state: Mutex<(Vec<Vec<u32>>, usize)>,
        changed: Condvar,
    }

    impl Batchlog {
        /// A `make` that records its batch, waits until the test releases
        /// it, and answers every request with its own result.
        fn make(&self, batch: Vec<u32>) -> Vec<Result<u32, Error>> {
            self.hold(&batch);
            batch
                .into_iter()
                .map(|request| Ok(answer(request)))
                .collect()
        }

        /// Records `batch` as started, then waits until it is released.
        fn hold(&self, batch: &[u32]) {
            let mut state = self.state.lock().unwrap();
            let index = state.0.len();
            state.0.push(batch.to_vec());
            self.changed.notify_all();
            let start = Instant::now();
            while state.1 <= index {
                assert!(start.elapsed() < DEADLINE, "batch {index} never released");
                state = self.changed.wait_timeout(state, DEADLINE).unwrap().0;
            }
        }

        /// Waits until `count` batches have started; returns them all.
        #[track_caller]
        fn started(&self, count: usize) -> Vec<Vec<u32>> {
            let start = Instant::now();
            let mut state = self.state.lock().unwrap();
            while state.0.len() < count {
                assert!(
                    start.elapsed() < DEADLINE,
                    "timed out waiting for batch {count} to start: {:?}",
                    state.0
                );
                state = self.changed.wait_timeout(state, DEADLINE).unwrap().0;
            }
            state.0.clone()
        }

        /// Lets the oldest held batch go on.
        fn release(&self) {
            self.state.lock().unwrap().1 += 1;
            self.changed.notify_all();
        }

        /// Lets every batch go on once the test fails, so that its threads
        /// end with it (the guard lives in the scope of the threads).
        fn released_on_failure(&self) -> impl Drop + '_ {
            struct Guard<'a>(&'a Batchlog);
            impl Drop for Guard<'_> {
                fn drop(&mut self) {
                    if std::thread::panicking() {
                        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
                        state.1 = usize::MAX;
                        self.0.changed.notify_all();
                    }
                }
            }
            Guard(self)
        }
    }

    type Handle<'s> = ScopedJoinHandle<'s, Result<u32, Error>>;

    /// Asks for `request` on a thread of its own; returns once the request
    /// waits for a batch (`waiting` requests then), as the test expects.
    #[track_caller]
    fn ask<'s, 'e>(
        scope: &'s Scope<'s, 'e>,
        batches: &'e Batches<u32, u32>,
        request: u32,
        waiting: usize,
        make: impl FnOnce(Vec<u32>) -> Vec<Result<u32, Error>> + Send + 's,
    ) -> Handle<'s> {
        let handle = scope.spawn(move || batches.make(request, far(), unused, make));
        wait_until(
            &format!("{waiting} requests wait, request {request} among them"),
            || batches.waiting() == waiting,
        );
        handle
    }

    /// The text of a panic's payload.
    fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
        match payload.downcast_ref::<&str>() {
            Some(text) => text.to_string(),
            None => payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default(),
        }
    }

    #[test]
    fn a_lone_request_is_a_batch_of_one() {
        let batches = Batches::<u32, u32>::default();
        let mut made = Vec::new();
        for request in [3, 4] {
            let result = batches.make(request, far(), unused, |batch| {
                made.push(batch.clone());
                batch.into_iter().map(|r| Ok(answer(r))).collect()
            });
            assert_eq!(result.unwrap(), answer(request));
            assert_eq!(batches.waiting(), 0);
        }
        assert_eq!(made, [vec![3], vec![4]]);
    }

    /// Requests that arrive while a batch is made are made together in the
    /// next one, in the order they were asked, and each thread gets the
    /// result of its own request.
    #[test]
    fn requests_arriving_meanwhile_are_made_together_in_order_each_with_its_own_result() {
        let batches = Batches::<u32, u32>::default();
        let log = Batchlog::default();
        std::thread::scope(|scope| {
            let _guard = log.released_on_failure();
            let first = scope.spawn(|| batches.make(1, far(), unused, |batch| log.make(batch)));
            assert_eq!(log.started(1), [vec![1]]);
            let later: Vec<(u32, Handle)> = (2..=6)
                .map(|request| {
                    let handle = ask(scope, &batches, request, request as usize - 1, |batch| {
                        log.make(batch)
                    });
                    (request, handle)
                })
                .collect();
            log.release();
            assert_eq!(first.join().unwrap().unwrap(), answer(1));
            assert_eq!(log.started(2), [vec![1], vec![2, 3, 4, 5, 6]]);
            assert_eq!(batches.waiting(), 0);
            log.release();
            for (request, handle) in later {
                assert_eq!(handle.join().unwrap().unwrap(), answer(request));
            }
        });
        assert_eq!(log.started(2).len(), 2, "one batch for all that waited");
    }

    /// A request still waiting for a batch at its deadline leaves the
    /// queue and fails with its own timeout error, and the next batch runs
    /// without it; a request taken into a batch before its deadline gets
    /// that batch's result, however long the batch takes.
    #[test]
    fn a_request_waiting_past_its_deadline_leaves_but_one_in_a_batch_stays() {
        let batches = Batches::<u32, u32>::default();
        let log = Batchlog::default();
        std::thread::scope(|scope| {
            let _guard = log.released_on_failure();
            let soon = Instant::now() + Duration::from_millis(200);
            let (batches, log) = (&batches, &log);
            let first = scope.spawn(move || batches.make(1, soon, unused, |batch| log.make(batch)));
            assert_eq!(log.started(1), [vec![1]]);
            let patient = ask(scope, batches, 3, 1, |batch| log.make(batch));
            let impatient = batches.make(
                2,
                Instant::now() + Duration::from_millis(200),
                || anyhow::format_err!("request 2 timed out"),
                |batch| log.make(batch),
            );
            // 2 gave up while the batch of 1 was held past both deadlines
            assert_eq!(impatient.unwrap_err().to_string(), "request 2 timed out");
            assert!(Instant::now() >= soon);
            assert_eq!(batches.waiting(), 1, "3 waits on");
            log.release();
            assert_eq!(first.join().unwrap().unwrap(), answer(1));
            assert_eq!(log.started(2), [vec![1], vec![3]]);
            log.release();
            assert_eq!(patient.join().unwrap().unwrap(), answer(3));
        });
    }

    /// Under continuous arrivals (new requests during every batch), each
    /// request is in the first batch that starts after it asked: none waits
    /// longer than the batch running when it asked.
    #[test]
    fn no_request_waits_more_than_one_batch_after_the_one_running_when_it_asked() {
        const ROUNDS: u32 = 6;
        const EACH: u32 = 3;
        let batches = Batches::<u32, u32>::default();
        let log = Batchlog::default();
        std::thread::scope(|scope| {
            let _guard = log.released_on_failure();
            let mut handles = vec![(
                0,
                scope.spawn(|| batches.make(0, far(), unused, |batch| log.make(batch))),
            )];
            let mut expected = vec![vec![0]];
            assert_eq!(log.started(1), expected);
            for round in 0..ROUNDS {
                // while batch `round` is made, the next requests arrive
                let arriving: Vec<u32> = (1..=EACH).map(|n| round * EACH + n).collect();
                for (at, &request) in arriving.iter().enumerate() {
                    handles.push((
                        request,
                        ask(scope, &batches, request, at + 1, |batch| log.make(batch)),
                    ));
                }
                log.release();
                expected.push(arriving);
                assert_eq!(log.started(expected.len()), expected, "round {round}");
            }
            log.release();
            for (request, handle) in handles {
                assert_eq!(handle.join().unwrap().unwrap(), answer(request));
            }
        });
    }

    /// Threads that each ask again as soon as they have their result, with
    /// no pause: every request is made exactly once, each thread gets its
    /// own result every time, nothing is left waiting.
    #[test]
    fn threads_asking_at_once_each_get_their_own_results() {
        const THREADS: u32 = 4;
        const EACH: u32 = 200;
        let batches = Batches::<u32, u32>::default();
        let made = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let (batches, made) = (&batches, &made);
                scope.spawn(move || {
                    for n in 0..EACH {
                        let request = thread * EACH + n;
                        let result = batches.make(request, far(), unused, |batch| {
                            made.lock().unwrap().push(batch.clone());
                            batch.into_iter().map(|r| Ok(answer(r))).collect()
                        });
                        assert_eq!(result.unwrap(), answer(request));
                    }
                });
            }
        });
        let made = made.into_inner().unwrap();
        let mut all: Vec<u32> = made.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..THREADS * EACH).collect::<Vec<_>>());
        assert!(made.iter().all(|batch| batch.len() <= THREADS as usize));
        assert_eq!(batches.waiting(), 0);
    }

    /// The scene of a batch that fails: a batch of request 1 alone, held
    /// while 2, 3 and 4 queue; then they are made by `failing` (which holds
    /// its batch, as [`Batchlog::make`] does) while 5 arrives; then 5 is
    /// made alone. Checks that 1 and 5 get their own results, each in the
    /// batch said, and that nobody is left leading after; returns what the
    /// threads of 2, 3 and 4 ended with.
    fn failing_batch(
        failing: impl Fn(&Batchlog, Vec<u32>) -> Vec<Result<u32, Error>> + Copy + Send + Sync,
    ) -> Vec<std::thread::Result<Result<u32, Error>>> {
        let batches = Batches::<u32, u32>::default();
        let log = Batchlog::default();
        let ended = std::thread::scope(|scope| {
            let _guard = log.released_on_failure();
            let first = scope.spawn(|| batches.make(1, far(), unused, |batch| log.make(batch)));
            log.started(1);
            let doomed: Vec<Handle> = (2..=4)
                .map(|request| {
                    let log = &log;
                    ask(
                        scope,
                        &batches,
                        request,
                        request as usize - 1,
                        move |batch| failing(log, batch),
                    )
                })
                .collect();
            log.release();
            assert_eq!(first.join().unwrap().unwrap(), answer(1));
            assert_eq!(log.started(2)[1], [2, 3, 4]);
            // arrives while the batch that fails is made
            let after = ask(scope, &batches, 5, 1, |batch| log.make(batch));
            log.release();
            let ended: Vec<_> = doomed.into_iter().map(|handle| handle.join()).collect();
            assert_eq!(log.started(3)[2], [5]);
            log.release();
            assert_eq!(after.join().unwrap().unwrap(), answer(5));
            ended
        });
        assert_eq!(batches.waiting(), 0);
        // nobody is left leading
        let lone = batches.make(6, far(), unused, |batch| {
            batch.into_iter().map(|r| Ok(answer(r))).collect()
        });
        assert_eq!(lone.unwrap(), answer(6));
        ended
    }

    /// A `make` that panics: the panic reaches the thread that led the
    /// batch, each other request of the batch fails with an error, and the
    /// next batch runs.
    #[test]
    fn a_batch_that_panics_fails_its_requests_and_the_next_batch_runs() {
        let ended = failing_batch(|log, batch| {
            log.hold(&batch);
            panic!("make failed for {batch:?}");
        });
        let mut panics = Vec::new();
        let mut errors = Vec::new();
        for end in ended {
            match end {
                Err(payload) => panics.push(panic_text(&*payload)),
                Ok(Ok(value)) => panic!("a request of a panicking batch got {value}"),
                Ok(Err(err)) => errors.push(format!("{err:#}")),
            }
        }
        assert_eq!(panics, ["make failed for [2, 3, 4]"]);
        assert_eq!(errors.len(), 2, "{errors:?}");
        for text in &errors {
            assert!(
                text.contains("internal error - a batch of 3 ended with 0 results"),
                "{text}"
            );
            assert!(text.contains("encryption-key verify"), "{text}");
        }
    }

    /// A `make` that returns fewer or more results than its batch has
    /// requests: each request of the batch fails (no request gets another's
    /// result), and the next batch is made as usual.
    #[test]
    fn a_batch_with_the_wrong_number_of_results_fails_each_request() {
        for got in [0, 2, 4] {
            let ended = failing_batch(move |log, batch| {
                log.hold(&batch);
                (0..got).map(|n| Ok(answer(batch[0]) + n)).collect()
            });
            for end in ended {
                let text = format!("{:#}", end.unwrap().unwrap_err());
                assert!(
                    text.contains(&format!(
                        "internal error - a batch of 3 ended with {got} results"
                    )),
                    "{got} results: {text}"
                );
            }
        }
        // a lone request whose batch gives no result fails too
        let batches = Batches::<u32, u32>::default();
        let lone = batches.make(9, far(), unused, |_| Vec::new());
        assert!(format!("{:#}", lone.unwrap_err()).contains("a batch of 1 ended with 0 results"));
    }
}
