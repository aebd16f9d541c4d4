//! Small tmpfs mounts for the tests of full disks and read-only file
//! systems (mounting needs root; CI runs as root).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small tmpfs mounted for the test, unmounted on drop.
pub struct Tmpfs {
    /// The mount point.
    pub path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `1m`) at `path`.
    pub fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .expect("unable to run mount");
        assert!(status.success(), "mounting a tmpfs at {path:?} failed");
        Self {
            path: path.to_owned(),
        }
    }

    /// Remounts it read-only (`true`) or read-write.
    pub fn remount(&self, read_only: bool) {
        let mode = if read_only {
            "remount,ro"
        } else {
            "remount,rw"
        };
        let status = Command::new("mount")
            .args(["-o", mode])
            .arg(&self.path)
            .status()
            .expect("unable to run mount");
        assert!(status.success(), "{mode} of {:?} failed", self.path);
    }

    /// Resizes it to `size` (`mount -o remount,size=SIZE`; a tmpfs shrinks
    /// down to what it holds, not below).
    pub fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .expect("unable to run mount");
        assert!(
            status.success(),
            "resizing {:?} to {size} failed",
            self.path
        );
    }

    /// Shrinks it to what it holds: full, without a file to fill it (for a
    /// mount point whose every file the test inspects).
    pub fn shrink_to_used(&self) {
        let stat = nix::sys::statvfs::statvfs(&self.path).unwrap();
        let used = (stat.blocks() - stat.blocks_free()) * stat.fragment_size();
        self.resize(&used.max(stat.fragment_size()).to_string());
    }

    /// Fills the file system with the file `name` until it is full, then
    /// frees `free_pages` pages again. Remove the file to free the space.
    pub fn fill(&self, name: &str, free_pages: u64) {
        let mut file = std::fs::File::create(self.path.join(name)).unwrap();
        let chunk = vec![0u8; 4096];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(err) if err.raw_os_error() == Some(nix::errno::Errno::ENOSPC as i32) => break,
                Err(err) => panic!("filling the disk failed: {err}"),
            }
        }
        file.set_len(written.saturating_sub(free_pages * 4096))
            .unwrap();
        file.sync_all().unwrap();
    }
}

impl Drop for Tmpfs {
    /// Detaches the mount (`umount --lazy`): a plain `umount` fails while
    /// anything still has a file or directory open on it (a `ConfigDir`
    /// of the test dropped after it, a worker not yet reaped), and left
    /// one mount behind per run.
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("--lazy")
            .arg(&self.path)
            .status();
    }
}

/// For the tests that mount a tmpfs: a temp dir, a tmpfs of `size` mounted
/// at `name` in it, and an empty config dir `config` on the tmpfs. `None`,
/// after a "skipped" line, when not running as root.
pub fn tmpfs_config_dir(name: &str, size: &str) -> Option<(tempfile::TempDir, Tmpfs, PathBuf)> {
    if !crate::privileges::root_or_skip("mounting a tmpfs") {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mount = Tmpfs::mount(&tmp.path().join(name), size);
    let dir = mount.path.join("config");
    std::fs::create_dir(&dir).unwrap();
    Some((tmp, mount, dir))
}
