//! Children that run as another user or under another umask, and the
//! users the privilege tests switch to.

use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::unistd::{Gid, Group, Uid, User};

/// Makes `cmd` run as `uid`:`gid` with no supplementary groups.
pub fn run_as(cmd: &mut Command, uid: Uid, gid: Gid) {
    // SAFETY: only async-signal-safe calls (setgroups, setgid, setuid)
    // between fork and exec
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setgroups(&[])?;
            nix::unistd::setgid(gid)?;
            nix::unistd::setuid(uid)?;
            Ok(())
        });
    }
}

/// Makes `cmd` run under umask 000.
pub fn umask_zero(cmd: &mut Command) {
    // SAFETY: umask is async-signal-safe
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            Ok(())
        });
    }
}

/// Whether this process runs as root; if not, prints a "skipped" line
/// naming what needs root (CI runs as root).
pub fn root_or_skip(what: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        println!("    skipped: {what} needs root (CI runs as root)");
    }
    root
}

/// The users the privilege tests switch to: `backup` (with its group,
/// of which it is a member) and `nobody` (with `nogroup`, of which it is
/// not), each with the gid to run as.
pub fn backup_and_nobody() -> [(User, Gid); 2] {
    let backup = User::from_name("backup").unwrap().expect("backup user");
    let nobody = User::from_name("nobody").unwrap().expect("nobody user");
    let nogroup = Group::from_gid(nobody.gid)
        .unwrap()
        .expect("nobody's group");
    assert_ne!(nogroup.gid, backup.gid);
    let backup_gid = backup.gid;
    [(backup, backup_gid), (nobody, nogroup.gid)]
}
