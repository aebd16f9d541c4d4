//! A lock of root's store kept by the `backup` user: the lock files are
//! backup's (as upstream's), so a `backup` process can take one and keep
//! it. Root's operation then waits its timeout and fails, changing
//! nothing; its error names the process that holds the lock (pid, command,
//! user), so the administrator can find it.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use pbs_config::ConfigDir;
use pbs_test_kit::dirs::snapshot;
use pbs_test_kit::key_config;
use pbs_test_kit::privileges::run_as;

use crate::scene::{Scene, backup_ids};

/// A `flock` process of the `backup` user holding `lock` exclusively until
/// its process group is killed (its command inherits the lock); returned
/// once it holds it.
fn held_by_backup(lock: &Path) -> Child {
    let mut cmd = Command::new("flock");
    cmd.arg("--exclusive")
        .arg(lock)
        .args(["sh", "-c", "echo locked && exec sleep 600"])
        .stdout(Stdio::piped())
        .process_group(0);
    let (uid, gid) = backup_ids();
    run_as(&mut cmd, uid, gid);
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked", "backup's flock of {lock:?}");
    child
}

pub fn a_lock_kept_by_backup_names_its_holder() {
    let Some(scene) = Scene::new() else {
        return;
    };
    let config = ConfigDir::new(&scene.dir)
        .unwrap()
        .lock_timeout(Duration::from_millis(300));
    let keys = config.encryption_keys();
    keys.store_key("key-one", &key_config(1)).unwrap();
    for lock in [".encryption-keys.lck", "encryption-keys/.audit/pending.lck"] {
        let mut holder = held_by_backup(&scene.dir.join(lock));
        let before = snapshot(&scene.dir, &[]);
        let err = format!(
            "{:#}",
            keys.store_key("key-two", &key_config(2)).unwrap_err()
        );
        let named = format!(
            "another process holds the lock (pid {} 'flock', user backup)",
            holder.id()
        );
        assert!(err.contains(lock) && err.contains(&named), "{lock}: {err}");
        assert_eq!(
            snapshot(&scene.dir, &[]),
            before,
            "{lock}: the store changed"
        );
        println!("    {lock}: {err}");
        let group = Pid::from_raw(holder.id() as i32);
        killpg(group, Signal::SIGKILL).unwrap();
        holder.wait().unwrap();
    }
    keys.store_key("key-two", &key_config(2)).unwrap();
}
