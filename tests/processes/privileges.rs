//! The non-root ownership policy, exercised by a worker that really runs as
//! another user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use nix::unistd::{Gid, Uid};

use pbs_test_kit::privileges::{backup_and_nobody, root_or_skip, run_as};

use crate::support::assert_success;

/// Runs the `store-as-user` worker as `uid:gid` with no supplementary
/// groups, from a copy of this binary that any user may execute.
fn store_as(exe: &Path, dir: &Path, uid: Uid, gid: Gid) -> String {
    let mut cmd = Command::new(exe);
    cmd.args(["__worker", "store-as-user"])
        .arg(dir)
        .args(["user-key", "21"])
        .env_remove("PBS_FAILPOINT");
    run_as(&mut cmd, uid, gid);
    let output = cmd.output().unwrap();
    assert_success(&output, &format!("store as uid {uid}"));
    String::from_utf8(output.stdout).unwrap()
}

fn assert_owned(path: &Path, uid: Uid, gid: Gid, mode: u32) {
    let meta = std::fs::metadata(path).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (uid.as_raw(), gid.as_raw()),
        "{path:?}"
    );
    assert_eq!(meta.mode() & 0o7777, mode, "{path:?}");
}

/// As the `backup` user (a member of group backup) files are
/// backup:backup; as `nobody` (not a member) nobody:nogroup. Modes are the
/// same as root's.
pub fn non_root_policy_owns_files_as_the_user() {
    if !root_or_skip("switching users") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = tmp.path().join("worker");
    pbs_test_kit::bins::copy_executable(&std::env::current_exe().unwrap(), &exe);

    for (user, expected_gid) in backup_and_nobody() {
        let dir = tmp.path().join(&user.name);
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();

        let policy = store_as(&exe, &dir, user.uid, user.gid);
        assert!(policy.starts_with("current user"), "{policy}");
        assert_owned(
            &dir.join("encryption-keys.cfg"),
            user.uid,
            expected_gid,
            0o640,
        );
        assert_owned(&dir.join("encryption-keys"), user.uid, expected_gid, 0o750);
        assert_owned(
            &dir.join("encryption-keys/user-key.enc"),
            user.uid,
            expected_gid,
            0o640,
        );
        assert_owned(
            &dir.join(".encryption-keys.lck"),
            user.uid,
            expected_gid,
            0o660,
        );
        println!("    as {}: {}", user.name, policy.trim());
    }
}
