//! Bounding the cost of password and secret checks.
//!
//! A `crypt(3)` check (yescrypt) costs milliseconds of CPU and megabytes of
//! memory by design, so a flood of bad logins could starve good ones. Two
//! measures keep that bounded:
//!
//! - [`HashLimiter`]: at most one hash check per CPU runs at a time; others
//!   wait for a slot (hash work never occupies more than the machine has);
//! - [`LoginThrottle`]: failures are counted per client address *and* user
//!   (or token) id in a fixed window. After [`LoginThrottle::max_failures`]
//!   failures, further attempts for that pair are refused with 429 without
//!   hashing until the window ends. A good login of another user, or of
//!   the same user from another address, is not affected; the same user at
//!   the same address is (the two cannot be told apart).
//!
//! Unknown users and tokens cost no hash at all. The table of failing pairs
//! is bounded ([`MAX_TRACKED`]): when full, expired entries are dropped, and
//! if it is still full the whole table is reset (an attacker who pays for
//! that many requests regains a few attempts; the hash work stays bounded).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

/// Most (address, id) pairs tracked at once.
pub const MAX_TRACKED: usize = 65536;

/// Runs at most one hash check per CPU at a time.
pub struct HashLimiter {
    slots: Arc<Semaphore>,
}

impl HashLimiter {
    /// A limiter with `slots` parallel checks (at least one).
    pub fn new(slots: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
        }
    }

    /// One slot per available CPU.
    pub fn per_cpu() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Waits for a slot.
    pub async fn acquire(&self) -> SemaphorePermit<'_> {
        self.slots
            .acquire()
            .await
            .expect("the hash limiter is never closed")
    }

    /// Waits for a slot from a blocking thread of the runtime
    /// (`spawn_blocking`).
    pub fn acquire_blocking(&self, runtime: &Handle) -> OwnedSemaphorePermit {
        runtime
            .block_on(Arc::clone(&self.slots).acquire_owned())
            .expect("the hash limiter is never closed")
    }
}

struct Failures {
    count: u32,
    since: Instant,
}

/// Failed logins per (client address, user or token id).
pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    table: Mutex<HashMap<(IpAddr, String), Failures>>,
}

impl LoginThrottle {
    /// Refuses a pair after `max_failures` failures within `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Failures allowed per pair and window.
    pub fn max_failures(&self) -> u32 {
        self.max_failures
    }

    /// `Err(wait)` if the pair must wait `wait` before trying again.
    pub fn check(&self, addr: IpAddr, id: &str) -> Result<(), Duration> {
        let table = self.table.lock().unwrap();
        match table.get(&(addr, id.to_string())) {
            Some(entry) if entry.count >= self.max_failures => {
                let elapsed = entry.since.elapsed();
                if elapsed < self.window {
                    Err(self.window - elapsed)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Records a failed attempt.
    pub fn failure(&self, addr: IpAddr, id: &str) {
        let mut table = self.table.lock().unwrap();
        if table.len() >= MAX_TRACKED {
            let window = self.window;
            table.retain(|_, entry| entry.since.elapsed() < window);
            if table.len() >= MAX_TRACKED {
                table.clear();
            }
        }
        let entry = table
            .entry((addr, id.to_string()))
            .or_insert_with(|| Failures {
                count: 0,
                since: Instant::now(),
            });
        if entry.since.elapsed() >= self.window {
            entry.count = 0;
            entry.since = Instant::now();
        }
        entry.count = entry.count.saturating_add(1);
    }

    /// Forgets the failures of a pair after a successful login.
    pub fn success(&self, addr: IpAddr, id: &str) {
        self.table.lock().unwrap().remove(&(addr, id.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_throttled_separately_and_recover() {
        let throttle = LoginThrottle::new(3, Duration::from_millis(200));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            throttle.check(a, "alice@pbs").unwrap();
            throttle.failure(a, "alice@pbs");
        }
        assert!(throttle.check(a, "alice@pbs").is_err());
        throttle.check(b, "alice@pbs").unwrap();
        throttle.check(a, "bob@pbs").unwrap();
        std::thread::sleep(Duration::from_millis(210));
        throttle.check(a, "alice@pbs").unwrap();
        throttle.failure(a, "alice@pbs");
        throttle.success(a, "alice@pbs");
        throttle.check(a, "alice@pbs").unwrap();
    }
}
