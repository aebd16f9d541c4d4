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
//! and a lone store is a batch of one, exactly today's store.
//!
//! Only the daemon has several stores at once to batch; a CLI process
//! stores one key. Crash order per key is the store's, and a kill leaves at
//! most one batch of key files without config entry, each with its intent
//! (`verify --repair` moves them into the trash, as for one).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Condvar, Mutex, MutexGuard};

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
    pub(crate) fn make(
        &self,
        request: T,
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
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
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
