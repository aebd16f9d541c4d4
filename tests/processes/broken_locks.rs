//! Issue 14, the lock files of the config dir: the `backup` user owns the
//! dir (as upstream), so it can unlink a lock file, or rename a new one
//! over it, while a root writer holds the lock. The next root writer then
//! locks another inode and would run beside the first: a lost update of
//! `encryption-keys.cfg` (a stored key's entry overwritten, its key file
//! left an orphan).
//!
//! Two real root writer processes and a child running as `backup`: writer
//! A stores a key and pauses at `store:locked` (it has read the config and
//! holds its locks); `backup` breaks `.encryption-keys.lck`; writer B
//! stores another key. B must wait for A (it waits in `flock` on a lock A
//! holds), and both keys must be in the config afterwards, with `verify`
//! clean. Nothing waits for time: B is seen either finished or blocked in
//! the kernel (`/proc/locks`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pbs_test_kit::privileges::run_as;

use crate::scene::{Scene, backup_ids};
use crate::support::{assert_clean, context, worker};

/// How the `backup` user breaks a lock file.
#[derive(Clone, Copy, Debug)]
enum Break {
    /// `rm` it.
    Unlink,
    /// Rename a new file of its own (0660) over it.
    Replace,
}

/// Runs `script` (with the lock file's path as `$1`) as the `backup` user.
fn break_as_backup(lock: &Path, how: Break) {
    let script = match how {
        Break::Unlink => r#"rm -- "$1""#,
        // 0660, as the lock file it replaces (so verify has nothing to say)
        Break::Replace => r#"umask 007 && : > "$1.new" && mv -f -- "$1.new" "$1""#,
    };
    as_backup(script, &[lock], &format!("breaking {lock:?} ({how:?})"));
}

/// Runs the shell `script` with `args` as `$1`... as the `backup` user.
pub fn as_backup(script: &str, args: &[&Path], what: &str) {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script, "sh"]).args(args);
    let (uid, gid) = backup_ids();
    run_as(&mut cmd, uid, gid);
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "backup {what}: {output:?}");
}

/// The `backup` user renames `from` to `to` (what it may do in the config
/// dir it owns); `what` names the step in a failure.
pub fn mv_as_backup(from: &Path, to: &Path, what: &str) {
    as_backup(r#"mv -- "$1" "$2""#, &[from, to], what);
}

/// Starts a root writer storing `id` that pauses at `store:locked` (it has
/// read the config and holds its locks) until its stdin is closed.
pub fn paused_store(dir: &Path, id: &str, seed: u64) -> Child {
    paused_at(store(dir, id, seed), "store:locked")
}

/// Starts `cmd` with `$PBS_PAUSEPOINT` set to `point` and waits until it
/// is there (its stdin closed lets it go on; its stderr is not read on).
pub fn paused_at(mut cmd: Command, point: &str) -> Child {
    pbs_test_kit::pause::paused_at(&mut cmd, point).child
}

/// A root writer storing `id`: an `op store` worker.
pub fn store(dir: &Path, id: &str, seed: u64) -> Command {
    let mut cmd = worker("op");
    cmd.arg(dir)
        .args(["store", id, &seed.to_string()])
        .env_remove("PBS_PAUSEPOINT");
    cmd
}

/// Whether process `pid` waits for a `flock` (a `->` line of `/proc/locks`).
fn waits_in_flock(pid: u32) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    let pid = pid.to_string();
    locks.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&"->") && fields.get(5) == Some(&pid.as_str())
    })
}

/// Waits until `child` has exited or waits for a `flock`; returns whether it
/// exited. Gives up after a minute (a state, not a pace).
fn finished_or_blocked(child: &mut Child) -> bool {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        if waits_in_flock(child.id()) {
            return false;
        }
        assert!(Instant::now() < give_up, "writer B neither ends nor waits");
        std::thread::yield_now();
    }
}

pub fn backup_breaking_the_config_lock_loses_no_update() {
    if !pbs_config::failpoint::enabled() {
        panic!("pbs-config must be built with the failpoints feature for this test");
    }
    let Some(scene) = Scene::new() else {
        return;
    };
    let lock = scene.path(".encryption-keys.lck");
    for (round, how) in [Break::Unlink, Break::Replace].into_iter().enumerate() {
        let (first, second) = (format!("first-{round}"), format!("second-{round}"));
        let mut a = paused_store(&scene.dir, &first, 100 + round as u64);

        break_as_backup(&lock, how);

        let mut b = store(&scene.dir, &second, 200 + round as u64)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let b_ran_beside_a = finished_or_blocked(&mut b);
        drop(a.stdin.take());
        let a_status = a.wait().unwrap();
        let b_output = b.wait_with_output().unwrap();
        assert!(a_status.success(), "{how:?}: writer A: {a_status:?}");
        assert!(
            b_output.status.success(),
            "{how:?}: writer B: {}",
            String::from_utf8_lossy(&b_output.stderr)
        );

        let config = context(&scene.dir);
        let (keys, _) = config.encryption_keys().list_keys(true).unwrap();
        let ids: Vec<&str> = keys.iter().map(|key| key.id.as_str()).collect();
        println!("    {how:?}: B ran beside A: {b_ran_beside_a}; the config lists {ids:?}");
        assert!(
            ids.contains(&first.as_str()) && ids.contains(&second.as_str()),
            "{how:?}: an update was lost (B ran beside A: {b_ran_beside_a}): \
             the config lists {ids:?}, verify finds {:#?}",
            config.verify(false).unwrap().findings
        );
        assert!(!b_ran_beside_a, "{how:?}: B did not wait for A");
        assert_clean(&config.verify(false).unwrap(), &format!("{how:?}"));
    }
}
