//! The binaries of this build, found next to the running test, bench or
//! example (`target/PROFILE/deps/NAME-HASH` or `target/PROFILE/examples/NAME`
//! beside `target/PROFILE/BIN`): cargo builds them before the tests and
//! benches of the package run; `make soak` builds them for the example.
//!
//! A test that runs a binary as another user copies it where that user
//! may reach it with [`copy_executable`], never with `std::fs::copy`: see
//! there why.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/PROFILE` of the running executable.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the running executable");
    let mut dir = exe.parent().expect("the executable's dir").to_path_buf();
    if dir.ends_with("deps") || dir.ends_with("examples") {
        dir.pop();
    }
    dir
}

/// The path of binary `name` of this build; panics, saying how to build
/// it, when it is not there.
pub fn exe(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{name} not found at {path:?} - build it first (cargo build --bins, with --release for a release run)"
    );
    path
}

/// `proxmox-backup-manager` of this build.
pub fn manager() -> PathBuf {
    exe("proxmox-backup-manager")
}

/// `proxmox-backup-api` of this build.
pub fn api() -> PathBuf {
    exe("proxmox-backup-api")
}

/// Copies the executable `from` to `to` (mode 0755) in a child process.
///
/// Not with `std::fs::copy`: while this process writes the copy, the
/// descriptor open for writing is inherited by every child another test
/// thread forks at that moment, and stays open in that child until its
/// `exec` closes it; executing the copy meanwhile fails with ETXTBSY
/// ("Text file busy"). Here only the `cp` process ever opens the copy for
/// writing, and it has exited when this returns.
pub fn copy_executable(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("--")
        .arg(from)
        .arg(to)
        .status()
        .unwrap_or_else(|err| panic!("unable to run cp - {err}"));
    assert!(
        status.success(),
        "copying {from:?} to {to:?} failed: {status}"
    );
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|err| panic!("unable to make {to:?} executable - {err}"));
}
