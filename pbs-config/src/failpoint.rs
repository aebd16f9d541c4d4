//! Crash points for the crash-safety tests.
//!
//! Built with the `failpoints` feature (test builds only), [`hit`] kills the
//! process with SIGKILL when `$PBS_FAILPOINT` names the point reached, after
//! announcing it on stderr: at its first hit, or at its n-th if
//! `$PBS_FAILPOINT_HIT` is n (a point passed once per key, or once per
//! batch of a group commit, killed in the batch or at the key a test
//! picks). When `$PBS_PAUSEPOINT` names it, it announces that instead and
//! waits until its stdin is closed, holding whatever locks
//! the operation holds there (for the tests of who may run beside it).
//! Without the feature it does nothing and compiles away.
//!
//! The points, in the order an operation passes them (each operation's
//! first point, `...:locked` and `purge:key-removed` aside, comes after its
//! intent is recorded in the audit log; a trash purge records each entry
//! after `purge:locked`):
//! - store: `store:locked`, `store:key-tmp-written`, `store:key-written`,
//!   `store:config-tmp-written`, `store:config-written`;
//! - delete (into the trash): `delete:locked`, `delete:record-written`,
//!   `delete:config-tmp-written`, `delete:config-written`,
//!   `delete:key-trashed`;
//! - remove --purge: `delete-purge:locked`, `delete-purge:config-tmp-written`,
//!   `delete-purge:config-written`, `delete-purge:key-removed`;
//! - trash restore: `restore:locked`, `restore:key-moved`,
//!   `restore:config-tmp-written`, `restore:config-written`;
//! - trash purge: `purge:locked`, `purge:key-removed`;
//! - verify --repair moving an orphan into the trash: `repair:record-written`,
//!   `repair:key-trashed`;
//! - archive/unarchive: `archive:config-tmp-written`, `archive:config-written`;
//! - every audit append ([`AUDIT_POINTS`], apart from [`POINTS`] because
//!   they are reached inside every audited operation): `audit:line-written`
//!   (the record written, not yet synced), `audit:synced` (synced, the
//!   checkpoint not yet written), `audit:checkpoint-written`;
//! - `create --output-file` ([`OUTPUT_POINTS`]): `create:output-written`,
//!   the key's file written and synced, not yet named;
//! - a rotation ([`ROTATE_POINTS`], apart from [`POINTS`] because a
//!   rotation passes the points of the operations it is made of too):
//!   after each journal write and between each step and its record (see
//!   [`crate::rotation`]).

/// Every crash point, in operation order.
pub const POINTS: &[&str] = &[
    "store:locked",
    "store:key-tmp-written",
    "store:key-written",
    "store:config-tmp-written",
    "store:config-written",
    "delete:locked",
    "delete:record-written",
    "delete:config-tmp-written",
    "delete:config-written",
    "delete:key-trashed",
    "delete-purge:locked",
    "delete-purge:config-tmp-written",
    "delete-purge:config-written",
    "delete-purge:key-removed",
    "restore:locked",
    "restore:key-moved",
    "restore:config-tmp-written",
    "restore:config-written",
    "purge:locked",
    "purge:key-removed",
    "repair:record-written",
    "repair:key-trashed",
    "archive:config-tmp-written",
    "archive:config-written",
];

/// The crash points of an audit append, in the order it passes them.
pub const AUDIT_POINTS: &[&str] = &[
    "audit:line-written",
    "audit:synced",
    "audit:checkpoint-written",
];

/// The crash points of a rotation and of its abort, in the order they are
/// passed.
pub const ROTATE_POINTS: &[&str] = &[
    "rotate:planned",
    "rotate:fingerprint-recorded",
    "rotate:key-stored",
    "rotate:key-recorded",
    "rotate:export-written",
    "rotate:export-recorded",
    "rotate:jobs-switched",
    "rotate:switch-recorded",
    "rotate:old-key-archived",
    "rotate:archive-recorded",
    "rotate:journal-removed",
    "rotate-abort:recorded",
    "rotate-abort:key-archived",
    "rotate-abort:key-trashed",
];

/// The crash point of a file holding a key that a command hands out
/// (`create --output-file`): the data is written and synced, the file has
/// no name yet.
pub const OUTPUT_POINTS: &[&str] = &["create:output-written"];

/// Points where a test pauses an operation (`$PBS_PAUSEPOINT`) to change
/// the config dir behind it, as the `backup` user may: `keys:read` (a
/// writer of `encryption-keys.cfg` has read it, under its lock),
/// `verify:locked` (`verify` holds its locks, before it looks at the
/// store), `sync:locked` (a writer that decides by the jobs which keys
/// they need holds the sync job lock, before it reads `sync.cfg`).
/// Nothing is written there, so they are no crash points.
pub const RACE_POINTS: &[&str] = &["keys:read", "verify:locked", "sync:locked"];

/// Whether crash points are compiled in.
pub fn enabled() -> bool {
    cfg!(feature = "failpoints")
}

/// Reached crash point `name`.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    debug_assert!(
        POINTS.contains(&name)
            || AUDIT_POINTS.contains(&name)
            || ROTATE_POINTS.contains(&name)
            || OUTPUT_POINTS.contains(&name)
            || RACE_POINTS.contains(&name),
        "unknown failpoint {name}"
    );
    if std::env::var_os("PBS_FAILPOINT").is_some_and(|point| point == name) && nth_hit() {
        eprintln!("failpoint {name} reached, killing the process");
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGKILL);
        // SIGKILL cannot be caught; this is never reached
        std::process::abort();
    }
    if std::env::var_os("PBS_PAUSEPOINT").is_some_and(|point| point == name) {
        eprintln!("pausepoint {name} reached, waiting until stdin is closed");
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
    }
}

/// Whether this hit of the point `$PBS_FAILPOINT` names is the one that
/// kills: the `$PBS_FAILPOINT_HIT`-th (counted from 1), the first if unset.
#[cfg(feature = "failpoints")]
fn nth_hit() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static HITS: AtomicU64 = AtomicU64::new(0);
    let hit = HITS.fetch_add(1, Ordering::SeqCst) + 1;
    let wanted = match std::env::var("PBS_FAILPOINT_HIT") {
        Ok(n) => n
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("$PBS_FAILPOINT_HIT is not a number: {n:?}")),
        Err(_) => 1,
    };
    hit == wanted
}

/// Reached crash point `name` (no-op: built without `failpoints`).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
