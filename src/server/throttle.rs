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
//!   failures, that pair gets one credential check per
//!   [`THROTTLED_CHECK_INTERVAL`] until the window ends; attempts in
//!   between are answered 429 without hashing. Guessing is slowed to one
//!   try a second, but the pair is never locked out: the right credentials
//!   get through within a second or so (unless someone keeps sending more
//!   than one attempt a second for the very same address and id). A login
//!   of another user, or from another address, is not affected.
//!
//! Unknown users and tokens are counted and checked (against a dummy hash)
//! like known ones, so the answers do not tell them apart. The table of
//! failing pairs is bounded ([`MAX_TRACKED`]): when full, expired entries
//! are dropped, and if it is still full the whole table is reset (an
//! attacker who pays for that many requests regains a few attempts; the
//! hash work stays bounded).

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
    /// When a throttled pair last got a check.
    last_check: Option<Instant>,
}

/// How often a throttled pair gets its credentials checked.
pub const THROTTLED_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Failed logins per (client address, user or token id).
pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    table: Mutex<HashMap<(IpAddr, String), Failures>>,
}

impl LoginThrottle {
    /// Throttles a pair after `max_failures` failures within `window`.
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

    /// `Err(wait)` if the pair must wait `wait` before its credentials are
    /// checked again. A throttled pair is not locked out: it gets one check
    /// per [`THROTTLED_CHECK_INTERVAL`], so the right credentials get
    /// through a second later even while someone keeps guessing.
    pub fn check(&self, addr: IpAddr, id: &str) -> Result<(), Duration> {
        self.check_at(addr, id, Instant::now())
    }

    fn check_at(&self, addr: IpAddr, id: &str, now: Instant) -> Result<(), Duration> {
        let mut table = self.table.lock().unwrap();
        let Some(entry) = table.get_mut(&(addr, id.to_string())) else {
            return Ok(());
        };
        if entry.count < self.max_failures || now.duration_since(entry.since) >= self.window {
            return Ok(());
        }
        if let Some(last) = entry.last_check {
            let since_last = now.duration_since(last);
            if since_last < THROTTLED_CHECK_INTERVAL {
                return Err(THROTTLED_CHECK_INTERVAL - since_last);
            }
        }
        entry.last_check = Some(now);
        Ok(())
    }

    /// Records a failed attempt.
    pub fn failure(&self, addr: IpAddr, id: &str) {
        self.failure_at(addr, id, Instant::now())
    }

    fn failure_at(&self, addr: IpAddr, id: &str, now: Instant) {
        let mut table = self.table.lock().unwrap();
        if table.len() >= MAX_TRACKED {
            let window = self.window;
            table.retain(|_, entry| now.duration_since(entry.since) < window);
            if table.len() >= MAX_TRACKED {
                table.clear();
            }
        }
        let entry = table
            .entry((addr, id.to_string()))
            .or_insert_with(|| Failures {
                count: 0,
                since: now,
                last_check: None,
            });
        if now.duration_since(entry.since) >= self.window {
            entry.count = 0;
            entry.since = now;
            entry.last_check = None;
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
        let throttle = LoginThrottle::new(3, Duration::from_secs(300));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        let at = |secs: f64| t0 + Duration::from_secs_f64(secs);
        for _ in 0..3 {
            throttle.check_at(a, "alice@pbs", t0).unwrap();
            throttle.failure_at(a, "alice@pbs", t0);
        }
        // throttled: one check per interval, not a lockout
        throttle.check_at(a, "alice@pbs", at(0.1)).unwrap();
        let wait = throttle.check_at(a, "alice@pbs", at(0.5)).unwrap_err();
        assert_eq!(wait, Duration::from_secs_f64(0.6));
        throttle.check_at(a, "alice@pbs", at(1.1)).unwrap();
        assert!(throttle.check_at(a, "alice@pbs", at(1.2)).is_err());
        // other pairs are not affected
        throttle.check_at(b, "alice@pbs", at(1.2)).unwrap();
        throttle.check_at(a, "bob@pbs", at(1.2)).unwrap();
        // the window ends, and a success forgets the failures
        throttle.check_at(a, "alice@pbs", at(300.0)).unwrap();
        throttle.check_at(a, "alice@pbs", at(300.1)).unwrap();
        throttle.failure_at(a, "alice@pbs", at(301.0));
        throttle.success(a, "alice@pbs");
        throttle.check_at(a, "alice@pbs", at(301.1)).unwrap();
    }
}
