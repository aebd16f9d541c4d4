//! Faults that need mounts, other users or other processes: a read-only
//! file system, a config dir the user cannot write, a lock held past the
//! timeout. After each: a clear error naming what failed, the store as it
//! was, and `verify` reporting it so.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use pbs_config::ConfigDir;
use pbs_test_kit::dirs::snapshot;
use pbs_test_kit::privileges::{backup_and_nobody, root_or_skip};
use pbs_test_kit::tmpfs::tmpfs_config_dir;
use pbs_test_kit::{Sandbox, key_config};

use crate::support::{
    Holder, assert_error, assert_relocated_only, context, fault_store, manager,
    run_writing_commands_again, writing_commands,
};

/// The store on a file system remounted read-only: every writing command
/// exits 2 naming a file of the store and "Read-only file system"; list,
/// show and verify work and report the store as it was (regression: verify
/// could not even start, as it opened its lock files for writing); once
/// read-write again, every command works.
pub fn read_only_file_system() {
    let Some((tmp, mount, dir)) = tmpfs_config_dir("ro", "4m") else {
        return;
    };
    let import = tmp.path().join("import.enc");
    fault_store(&dir, &import);

    mount.remount(true);
    let before = snapshot(&dir, &[]);
    let dir_text = dir.display().to_string();
    for (args, _file) in writing_commands(&import) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = manager(&dir, &args, None);
        let line = assert_error(&run, &args.join(" "), &["Read-only file system", &dir_text]);
        println!("    {}: {line}", args.join(" "));
    }
    for args in [
        &["encryption-key", "list"][..],
        &["encryption-key", "show", "old-key"],
        &["sync-job", "list"],
    ] {
        let run = manager(&dir, args, None);
        assert_eq!(run.code, 0, "{args:?} on a read-only fs: {run:?}");
    }
    let run = manager(&dir, &["encryption-key", "verify"], None);
    assert_eq!(run.code, 1, "verify on a read-only fs: {run:?}");
    assert!(run.stdout.contains("path-not-canonical"), "{run:?}");
    assert_relocated_only(&context(&dir).verify(false).unwrap(), "read-only");
    context(&dir)
        .encryption_keys()
        .load_key_config("active-key", true)
        .unwrap();
    assert_eq!(snapshot(&dir, &[]), before, "the read-only store changed");

    mount.remount(false);
    run_writing_commands_again(&dir, &import);
    drop(mount);
}

/// root's store (root:backup files in a root-owned dir), used by the
/// `backup` user (a member of group backup, so it may read) and by `nobody`
/// (who may not): reading works as far as the modes allow, every write
/// exits 2 naming a file and "Permission denied", and the store is as it
/// was for root's verify.
pub fn config_dir_not_writable_by_the_user() {
    if !root_or_skip("switching users") {
        return;
    }
    let sandbox = Sandbox::new();
    let dir = sandbox.config_dir();
    for path in [sandbox.path(), dir] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let import = sandbox.file("import.enc");
    fault_store(dir, &import);
    std::fs::set_permissions(&import, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = snapshot(dir, &[]);
    let dir_text = dir.display().to_string();

    for (user, gid) in backup_and_nobody() {
        let as_user = Some((user.uid, gid));
        for (args, _file) in writing_commands(&import) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = manager(dir, &args, as_user);
            let what = format!("{} as {}", args.join(" "), user.name);
            let line = assert_error(&run, &what, &[&dir_text]);
            // EACCES creating or opening a file, EPERM for repair's chown
            assert!(
                line.contains("Permission denied") || line.contains("Operation not permitted"),
                "{what}: {line}"
            );
            println!("    {what}: {line}");
            assert_eq!(snapshot(dir, &[]), before, "{what} changed the store");
        }
        let list = manager(dir, &["encryption-key", "list"], as_user);
        if user.name == "backup" {
            assert_eq!(list.code, 0, "list as backup: {list:?}");
            assert!(list.stdout.contains("active-key"), "{list:?}");
        } else {
            let line = assert_error(
                &list,
                "list as nobody",
                &["encryption-keys.cfg", "Permission denied"],
            );
            println!("    encryption-key list as nobody: {line}");
        }
    }
    assert_relocated_only(&context(dir).verify(false).unwrap(), "as root");
    run_writing_commands_again(dir, &import);
}

/// Another process holds the config lock, the sync job lock or a key's
/// lock past the (shortened) timeout: every operation that needs it fails
/// naming the lock file and the wait, changes nothing, and readers carry
/// on; once the holder is gone, verify is as before and the operations
/// work.
pub fn lock_held_past_the_timeout() {
    let sandbox = Sandbox::new();
    let dir = sandbox.config_dir();
    let import = sandbox.file("import.enc");
    fault_store(dir, &import);
    let timeout = Duration::from_millis(300);
    let config = ConfigDir::new(dir).unwrap().lock_timeout(timeout);
    let keys = config.encryption_keys();
    let jobs = config.sync_jobs();
    let before = snapshot(dir, &[]);

    type Op<'a> = (&'a str, Box<dyn Fn() -> Result<(), anyhow::Error> + 'a>);
    let ops: Vec<Op> = vec![
        (
            "store",
            Box::new(|| keys.store_key("new-key", &key_config(31)).map(|_| ())),
        ),
        (
            "archive",
            Box::new(|| keys.archive_key("active-key", None).map(|_| ())),
        ),
        (
            "unarchive",
            Box::new(|| keys.unarchive_key("old-key", None).map(|_| ())),
        ),
        ("delete", Box::new(|| keys.remove_key("old-key", None))),
        (
            "sync job update",
            Box::new(|| {
                jobs.edit(None, |edit| {
                    let mut job = edit.job("job1")?.expect("job1");
                    job.associated_key = Some(vec!["active-key".into()]);
                    edit.set_job(&job)
                })
            }),
        ),
        ("verify", Box::new(|| config.verify(true).map(|_| ()))),
    ];
    for (lock, needs) in [
        (
            ".encryption-keys.lck",
            &[
                "store",
                "archive",
                "unarchive",
                "delete",
                "sync job update",
                "verify",
            ][..],
        ),
        (
            ".sync.lck",
            &["archive", "delete", "sync job update", "verify"][..],
        ),
        ("encryption-keys/old-key.enc.lck", &["delete"][..]),
    ] {
        let holder = Holder::hold(dir, Some(lock));
        for (name, op) in ops.iter().filter(|(name, _)| needs.contains(name)) {
            let err = op().unwrap_err().to_string();
            assert!(
                err.contains("unable to acquire lock")
                    && err.contains(lock)
                    && err.contains("timed out after 0.3s"),
                "{name} with {lock} held: {err}"
            );
            assert_eq!(snapshot(dir, &[]), before, "{name} changed the store");
            println!("    {lock} held, {name}: {err}");
        }
        // readers do not wait
        keys.list_keys(true).unwrap();
        keys.load_key_config("active-key", true).unwrap();
        drop(holder);
    }

    assert_relocated_only(&context(dir).verify(false).unwrap(), "after the holders");
    run_writing_commands_again(dir, &import);
}
