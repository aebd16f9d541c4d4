//! The daemon's login throttle as a client sees it.
//!
//! The throttle (`pbs_keystore::server::throttle`) lets a (client address,
//! id) pair fail `max_failures` times, then checks its credentials at most
//! once per interval and answers 429 in between. Whether an attempt falls
//! within an interval of the last check depends on how fast the machine
//! is, so a test never expects a fixed sequence of answers: each
//! [`Attempt`] records when it was sent and when it was answered, and
//! [`assert_throttled`] holds every answer against what those instants
//! allow. On an idle machine that pins every answer; on a loaded one it
//! still refuses two checks within an interval and a 429 without a check
//! in the interval before it.

use std::time::{Duration, Instant};

use crate::https::Resp;

/// One request and its answer, with when it was sent and answered.
#[derive(Debug)]
pub struct Attempt {
    /// Just before the request was sent.
    pub sent: Instant,
    /// Just after the whole answer came.
    pub answered: Instant,
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: String,
}

impl Attempt {
    /// Runs `send` and records the instants around it.
    pub fn time(send: impl FnOnce() -> Resp) -> Self {
        let sent = Instant::now();
        let resp = send();
        Self {
            sent,
            answered: Instant::now(),
            status: resp.status,
            body: resp.body,
        }
    }
}

/// Asserts that `attempts`, failed attempts of one pair made one after the
/// other (none before them within the throttle's window, the answers not
/// delayed), are answered as a throttle allowing `max_failures` failures,
/// then one check per `interval`, must answer them:
/// - the first `max_failures` are checked and fail: 401; so is the next,
///   the first check of the throttled pair;
/// - a later attempt is checked (401) only if `interval` may have passed
///   since the last check: it was answered at least `interval` after the
///   last 401 was sent (else it must be 429);
/// - it is refused (429) only if it may have come within `interval` of the
///   last check: it was sent less than `interval` after the last 401 was
///   answered (else it must be 401).
///
/// Returns how many were answered 429.
#[track_caller]
pub fn assert_throttled(attempts: &[Attempt], max_failures: usize, interval: Duration) -> usize {
    let statuses: Vec<u16> = attempts.iter().map(|a| a.status).collect();
    let mut last_check: Option<&Attempt> = None;
    let mut refused = 0;
    for (n, attempt) in attempts.iter().enumerate() {
        match (attempt.status, last_check) {
            (401, None) => {}
            (401, Some(last)) => assert!(
                attempt.answered.duration_since(last.sent) >= interval,
                "attempt {n} was checked (401) within {interval:?} of the check before it \
                 (answered {:?} after that one was sent): {statuses:?}",
                attempt.answered.duration_since(last.sent)
            ),
            (429, Some(last)) => {
                let gap = attempt.sent.saturating_duration_since(last.answered);
                assert!(
                    gap < interval,
                    "attempt {n} was refused (429) though the last check was answered \
                     {gap:?} before it was sent: {statuses:?}"
                );
                refused += 1;
            }
            (status, _) => panic!(
                "attempt {n} answered {status} ({:?}), expected {}: {statuses:?}",
                attempt.body,
                if n <= max_failures {
                    "401: it is checked"
                } else {
                    "401 or 429"
                }
            ),
        }
        if attempt.status == 401 && n >= max_failures {
            last_check = Some(attempt);
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// Attempts sent and answered at these offsets (ms) from one start.
    fn attempts(timeline: &[(u64, u64, u16)]) -> Vec<Attempt> {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        timeline
            .iter()
            .map(|&(sent, answered, status)| Attempt {
                sent: at(sent),
                answered: at(answered),
                status,
                body: String::new(),
            })
            .collect()
    }

    #[test]
    fn fast_attempts_after_the_first_check_are_refused() {
        let fast = attempts(&[
            (0, 10, 401),
            (10, 20, 401),
            (20, 30, 401),
            (30, 40, 429),
            (40, 50, 429),
        ]);
        assert_eq!(assert_throttled(&fast, 2, SECOND), 2);
    }

    #[test]
    fn slow_attempts_may_all_be_checked() {
        let slow = attempts(&[
            (0, 600, 401),
            (600, 1200, 401),
            (1200, 1800, 401),
            (1800, 2400, 401),
            (2400, 3000, 401),
        ]);
        assert_eq!(assert_throttled(&slow, 2, SECOND), 0);
    }

    #[test]
    #[should_panic(expected = "within 1s of the check before it")]
    fn a_second_check_within_the_interval_fails() {
        let unthrottled = attempts(&[(0, 10, 401), (10, 20, 401), (20, 30, 401), (30, 40, 401)]);
        assert_throttled(&unthrottled, 2, SECOND);
    }

    #[test]
    #[should_panic(expected = "refused (429) though the last check")]
    fn a_refusal_long_after_the_last_check_fails() {
        let late = attempts(&[
            (0, 10, 401),
            (10, 20, 401),
            (20, 30, 401),
            (1100, 1110, 429),
        ]);
        assert_throttled(&late, 2, SECOND);
    }

    #[test]
    #[should_panic(expected = "attempt 1 answered 429")]
    fn a_refusal_before_the_failures_are_used_up_fails() {
        let early = attempts(&[(0, 10, 401), (10, 20, 429)]);
        assert_throttled(&early, 2, SECOND);
    }
}
