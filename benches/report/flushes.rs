//! Cache flushes the block layer sent to a disk: how many a store costs,
//! counted rather than timed (issue 16). On a disk that takes a flush as
//! long as this VM's, a small store's time is mostly its flushes, so their
//! count bounds what any code change can give: the audit's intent is one
//! flush on top of an unaudited store's.
//!
//! The count is the kernel's (`/sys/dev/block/MAJ:MIN/stat`, field 16,
//! kernels since 5.5) for the whole device, so another process flushing at
//! the same moment adds to it: the caller takes medians.

use std::fs;
use std::path::{Path, PathBuf};

use nix::sys::stat::{major, minor, stat};

/// The flush counter of the block device that holds a path.
pub struct FlushCounter {
    stat_file: PathBuf,
}

impl FlushCounter {
    /// The counter of the device holding `path`; `None` on a file system
    /// without a block device (tmpfs) or a kernel that does not count
    /// flushes.
    pub fn for_path(path: &Path) -> Option<Self> {
        let dev = stat(path).ok()?.st_dev;
        let counter = FlushCounter {
            stat_file: PathBuf::from(format!("/sys/dev/block/{}:{}/stat", major(dev), minor(dev))),
        };
        counter.read()?;
        Some(counter)
    }

    /// The device's flushes completed since boot.
    pub fn read(&self) -> Option<u64> {
        let text = fs::read_to_string(&self.stat_file).ok()?;
        text.split_whitespace().nth(15)?.parse().ok()
    }
}
