//! A real exFAT file system, through FUSE (`exfat-fuse`), for the tests
//! of a key file written where an administrator's only copy often goes: a
//! USB stick. exFAT has neither unnamed files (`O_TMPFILE`) nor hard
//! links, and keeps no file modes: every file shows the mode of the mount
//! (0777 by default), whatever was asked. The kernel of the test machine
//! has no vfat or exfat; FUSE it has.
//!
//! Needs root (a loop device and a mount) and the packages `exfat-fuse`
//! and `exfatprogs` (`.ci/run` installs them); without them the mount
//! panics saying so.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A 16 MiB exFAT image on a loop device, mounted with `mount.exfat-fuse`
/// at `path`; unmounted and detached on drop.
pub struct Exfat {
    /// The mount point.
    pub path: PathBuf,
    loop_device: String,
}

impl Exfat {
    /// Makes the image `image` (a new file) and mounts it at `path` (made
    /// if missing).
    pub fn mount(image: &Path, path: &Path) -> Self {
        std::fs::File::create(image)
            .and_then(|file| file.set_len(16 << 20))
            .unwrap_or_else(|err| panic!("unable to make the image {image:?} - {err}"));
        run(Command::new("mkfs.exfat").arg(image), "mkfs.exfat");
        let output = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(image)
            .output()
            .unwrap_or_else(|err| panic!("unable to run losetup - {err}"));
        assert!(
            output.status.success(),
            "losetup of {image:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let loop_device = String::from_utf8(output.stdout).unwrap().trim().to_string();
        std::fs::create_dir_all(path).unwrap();
        let mounted = Self {
            path: path.to_owned(),
            loop_device,
        };
        run(
            Command::new("mount.exfat-fuse")
                .arg(&mounted.loop_device)
                .arg(path),
            "mount.exfat-fuse",
        );
        mounted
    }
}

/// Runs `cmd` (the program `name`); panics naming the packages it needs
/// if it cannot run or fails.
fn run(cmd: &mut Command, name: &str) {
    let output = cmd.output().unwrap_or_else(|err| {
        panic!("unable to run {name} - {err} (install exfat-fuse and exfatprogs)")
    });
    assert!(
        output.status.success(),
        "{name} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Drop for Exfat {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
        let _ = Command::new("losetup")
            .arg("--detach")
            .arg(&self.loop_device)
            .status();
    }
}
