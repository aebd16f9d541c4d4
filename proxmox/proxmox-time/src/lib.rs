//! Time helpers, mirroring the `proxmox-time` crate of proxmox-rs.
//!
//! Only [`epoch_i64`] is implemented: the one clock of the workspace, so
//! every "now" in seconds (key creation and archive times, ticket ages,
//! trash keep times, audit records, user and token expiry) is read the
//! same way. Upstream's calendar events, time spans, `strftime` and
//! RFC 3339 wrappers are left out: formatting is chrono's here
//! (`pbs_key_config::wire::epoch_to_rfc3339`, the CLI's text output).
//!
//! Beyond upstream's API: nothing. Different from upstream: a clock set
//! before 1970 reads 0 (upstream returns the negative offset); no time
//! written by this workspace lies before 1970.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now; 0 for a clock set before 1970.
pub fn epoch_i64() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_i64_reads_the_system_clock_in_seconds() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let now = epoch_i64();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        // seconds, not milliseconds: between the two readings around it
        assert!(before.as_secs() as i64 <= now && now <= after.as_secs() as i64);
        // after 2023-11-14: not a clock that was never set
        assert!(now >= 1_700_000_000, "{now}");
    }
}
