//! A lock of root's store kept by the `backup` user: the lock files are
//! backup's (as upstream's), so a `backup` process can take one and keep
//! it. Root's operation then waits its timeout and fails, changing
//! nothing; its error names the process that holds the lock (pid, command,
//! user), so the administrator can find it; an API client is told only
//! that the lock is held.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use pbs_config::ConfigDir;
use pbs_config::encryption_keys::EncryptionKeys;
use pbs_keystore::server::error::message_of;
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
        .args(["sh", "-c", "echo locked && exec sleep 600"]);
    let (child, line) = started_as_backup(cmd);
    assert_eq!(line, "locked", "backup's flock of {lock:?}");
    child
}

pub fn a_lock_kept_by_backup_names_its_holder() {
    let Some(scene) = Scene::new() else {
        return;
    };
    let config = impatient_store(&scene);
    let keys = config.encryption_keys();
    for lock in [".encryption-keys.lck", "encryption-keys/.audit/pending.lck"] {
        let mut holder = held_by_backup(&scene.dir.join(lock));
        let before = snapshot(&scene.dir, &[]);
        let err = refused_store(&keys);
        let named = format!(
            "another process holds the lock (pid {} 'flock', user backup)",
            holder.id()
        );
        assert!(err.contains(lock) && err.contains(&named), "{lock}: {err}");
        // an API client (no local root: the daemon reads `/proc` for it,
        // hidepid or not) learns that the lock is held, not by whom
        // (finding 39)
        let refused = keys.store_key("key-two", &key_config(2)).unwrap_err();
        let answer = message_of(&refused);
        assert!(
            answer.contains(lock)
                && answer.ends_with("timed out after 0.3s - another process holds the lock"),
            "{lock}: {answer}"
        );
        assert!(
            !answer.contains("flock") && !answer.contains("pid"),
            "{answer}"
        );
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

/// A config dir of `scene` holding one key, whose lock waits give up
/// after 300 ms.
fn impatient_store(scene: &Scene) -> ConfigDir {
    let config = ConfigDir::new(&scene.dir)
        .unwrap()
        .lock_timeout(Duration::from_millis(300));
    config
        .encryption_keys()
        .store_key("key-one", &key_config(1))
        .unwrap();
    config
}

/// The error of a store of a second key, which a held lock refuses.
fn refused_store(keys: &EncryptionKeys) -> String {
    format!(
        "{:#}",
        keys.store_key("key-two", &key_config(2)).unwrap_err()
    )
}

/// A `perl` process of the `backup` user that takes `lock` exclusively
/// and runs `then` (perl, after the lock is held), in its own process
/// group; returned with the first line it prints.
fn perl_of_backup(lock: &Path, then: &str) -> (Child, String) {
    let script = format!(
        "use Fcntl ':flock'; $| = 1; open(my $f, '<', $ARGV[0]) or die; \
         flock($f, LOCK_EX) or die; {then}"
    );
    let mut cmd = Command::new("perl");
    cmd.args(["-e", &script]).arg(lock);
    started_as_backup(cmd)
}

/// `cmd` started as the `backup` user in its own process group (killed
/// as a whole: what it runs inherits the lock), with the first line it
/// prints, trimmed.
fn started_as_backup(mut cmd: Command) -> (Child, String) {
    cmd.stdout(Stdio::piped()).process_group(0);
    let (uid, gid) = backup_ids();
    run_as(&mut cmd, uid, gid);
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_string())
}

/// backup names its holding process (`comm`, which any process sets for
/// itself) with a terminal escape that hides what follows and a line of
/// its own: root's error must not carry control characters to root's
/// terminal, the daemon's log or an API client.
pub fn a_holders_name_never_reaches_roots_terminal_raw() {
    let Some(scene) = Scene::new() else {
        return;
    };
    let config = impatient_store(&scene);
    let keys = config.encryption_keys();
    let lock = scene.dir.join(".encryption-keys.lck");
    let (holder, line) =
        perl_of_backup(&lock, r#"$0 = "\e[8m\nroot"; print "locked\n"; sleep 600"#);
    assert_eq!(line, "locked");
    let err = refused_store(&keys);
    let group = Pid::from_raw(holder.id() as i32);
    killpg(group, Signal::SIGKILL).unwrap();
    assert!(
        !err.chars().any(char::is_control),
        "control characters in root's error: {err:?}"
    );
    assert!(err.contains("user backup"), "{err:?}");
}

/// backup takes the lock, hands it to a child and exits: `/proc/locks`
/// still names the exited process (whose pid the next process may get,
/// one of root's as well). Root's error must name the process that holds
/// the lock, never one that does not.
pub fn a_lock_handed_on_names_the_process_that_holds_it() {
    let Some(scene) = Scene::new() else {
        return;
    };
    let config = impatient_store(&scene);
    let keys = config.encryption_keys();
    let lock = scene.dir.join(".encryption-keys.lck");
    let (mut taker, line) = perl_of_backup(
        &lock,
        r#"my $pid = fork(); if ($pid) { print "$$ $pid\n"; exit 0 } close(STDOUT); sleep 600"#,
    );
    taker.wait().unwrap();
    let (taker_pid, holder_pid) = line.split_once(' ').unwrap();
    let err = refused_store(&keys);
    let group = Pid::from_raw(taker.id() as i32);
    killpg(group, Signal::SIGKILL).unwrap();
    assert!(
        !err.contains(&format!("pid {taker_pid} ")) && !err.contains(&format!("pid {taker_pid})")),
        "names the exited taker {taker_pid}: {err}"
    );
    assert!(
        err.contains(&format!("pid {holder_pid} 'perl', user backup")),
        "does not name the holder {holder_pid}: {err}"
    );
}
