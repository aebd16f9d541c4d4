//! The binaries of this build, found next to the running test, bench or
//! example (`target/PROFILE/deps/NAME-HASH` or `target/PROFILE/examples/NAME`
//! beside `target/PROFILE/BIN`): cargo builds them before the tests and
//! benches of the package run; `make soak` builds them for the example.

use std::path::PathBuf;

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
