//! Directory-handle file access: every name in the config dir is reached from
//! an open directory, never by a path resolved a second time.
//!
//! The config dir belongs to the `backup` user (as upstream), so a process
//! running as `backup` can rename, replace or symlink any entry in it while
//! root works there (DESIGN.md section 7). A [`DirHandle`] is an open
//! directory; everything below goes through it with the `*at` calls:
//!
//! - no symbolic link is ever followed below the handle (`O_NOFOLLOW`,
//!   `AT_SYMLINK_NOFOLLOW`), and reads open with `O_NONBLOCK`, so a FIFO
//!   planted in place of a file cannot block us;
//! - what was opened is checked with `fstat` on the descriptor itself (a
//!   regular file, a directory with the expected owner), never with a second
//!   lookup of the name;
//! - creating, renaming, unlinking, chown and chmod act on the handle or on
//!   the descriptor that was checked;
//! - a new file gets its mode and owner before any data is written, so a
//!   file someone renames away mid-write never exposes its content;
//! - an existing file's owner and mode are changed only where that gives
//!   nobody new access to data: in a directory others may change, a name
//!   may stand for any file they moved there (root's ticket key renamed to
//!   a lock file's name, say), so such a file keeps its owner and group,
//!   and no group or world permission is added, unless it is empty.
//!
//! Subdirectories that must be root's (`encryption-keys/` and everything in
//! it) are opened once per operation and checked ([`DirHandle::open_dir`]);
//! inside them names are stable, because only their owner can change them.
//!
//! Every error names the path (for messages only: the path is never used to
//! reach the file).

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Error, bail, format_err};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

use proxmox_sys::fs::CreateOptions;
use proxmox_sys::huge_pages::HugePageBuf;

use crate::lock::LockedFile;
use crate::lock::queue::{self, LockKey};

/// What `fstat` said about an opened or looked-up entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryStat {
    /// File type.
    pub kind: EntryKind,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Device and inode: the identity of the file.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Number of hard links.
    pub nlink: u64,
    /// Modification time (seconds, nanoseconds).
    pub mtime: (i64, i64),
    /// Status change time (seconds, nanoseconds).
    pub ctime: (i64, i64),
}

/// What a cache of something read from a file compares the file by, to
/// tell that it is unchanged since: its identity (device, inode), size and
/// modification and status change times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileState {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// The [`FileState`] of the open `file` now (`fstat`); `None` if that
/// fails (then nothing is cached).
pub(crate) fn file_state(file: &File) -> Option<FileState> {
    rustix::fs::fstat(file)
        .ok()
        .map(|stat| EntryStat::of(&stat).state())
}

/// The kinds of entries the config dir may hold; anything else is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (only ever seen by [`DirHandle::stat`]; never followed).
    Symlink,
    /// A FIFO, socket, device node.
    Other,
}

impl EntryStat {
    fn of(stat: &rustix::fs::Stat) -> Self {
        let kind = match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => EntryKind::File,
            FileType::Directory => EntryKind::Dir,
            FileType::Symlink => EntryKind::Symlink,
            _ => EntryKind::Other,
        };
        Self {
            kind,
            mode: stat.st_mode & 0o7777,
            uid: stat.st_uid,
            gid: stat.st_gid,
            size: stat.st_size as u64,
            dev: stat.st_dev,
            ino: stat.st_ino,
            // u32 on some targets
            #[allow(clippy::unnecessary_cast)]
            nlink: stat.st_nlink as u64,
            mtime: (stat.st_mtime, stat.st_mtime_nsec as i64),
            ctime: (stat.st_ctime, stat.st_ctime_nsec as i64),
        }
    }

    /// What a cache compares this file by ([`FileState`]).
    pub(crate) fn state(&self) -> FileState {
        FileState {
            dev: self.dev,
            ino: self.ino,
            size: self.size,
            mtime: self.mtime,
            ctime: self.ctime,
        }
    }

    /// Whether both describe the same file (device and inode).
    pub fn same_file(&self, other: &EntryStat) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }

    /// A short word for messages: "a symbolic link", "a directory", ...
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            EntryKind::File => "a regular file",
            EntryKind::Dir => "a directory",
            EntryKind::Symlink => "a symbolic link",
            EntryKind::Other => "a special file (FIFO, socket or device)",
        }
    }
}

/// Who may own a directory opened with [`DirHandle::open_dir`], and which
/// mode bits it must not have.
#[derive(Clone, Copy, Debug)]
pub struct DirPolicy {
    /// Owners accepted (root is always accepted).
    pub uid: u32,
    /// Mode bits that must be clear (e.g. group and world write).
    pub forbidden_mode_bits: u32,
}

impl DirPolicy {
    /// Whether a directory with `stat` is one only root (or `uid`) may
    /// change: an owner it accepts and none of the forbidden mode bits.
    pub fn trusts(&self, stat: &EntryStat) -> bool {
        (stat.uid == 0 || stat.uid == self.uid) && stat.mode & self.forbidden_mode_bits == 0
    }
}

/// Why [`DirHandle::replace_keeping_temp`] failed, and the temp file it
/// left behind, if any.
#[derive(Debug)]
pub struct ReplaceFailed {
    /// What failed.
    pub error: Error,
    /// The temp file left in the directory, holding part or all of the
    /// data: never removed by the handle, the caller moves it away.
    pub temp: Option<String>,
}

/// Whom a lock waiter waited behind when the threads of this process
/// held the lock or queued for it first (a store waiting for its batch
/// too, see `group_commit.rs`).
pub(crate) const BEHIND_THIS_PROCESS: &str =
    "other requests of this process held the lock or waited for it first";

/// The error of a wait for the lock file `path` that timed out after
/// `timeout`, waiting `behind` whom (`lock::without_holders` reads it).
pub(crate) fn lock_timed_out(path: &Path, timeout: Duration, behind: &str) -> Error {
    format_err!(
        "unable to acquire lock {path:?} - timed out after {:.1}s - {behind}",
        timeout.as_secs_f64()
    )
}

/// A file opened read-only through a handle, with what `fstat` said of it.
pub struct OpenedFile {
    /// The open file.
    pub file: File,
    /// Its `fstat`.
    pub stat: EntryStat,
    /// Its path, for messages.
    pub path: PathBuf,
}

/// An open directory of the config dir.
#[derive(Debug)]
pub struct DirHandle {
    fd: OwnedFd,
    path: PathBuf,
    /// Device and inode of the open directory, from its first `fstat`
    /// (they never change while it is open): the key of its locks
    /// ([`DirHandle::lock`]), which so take no `fstat` of their own.
    identity: OnceLock<(u64, u64)>,
}

fn fd_stat(fd: BorrowedFd<'_>, path: &Path) -> Result<EntryStat, Error> {
    rustix::fs::fstat(fd)
        .map(|stat| EntryStat::of(&stat))
        .map_err(|err| format_err!("unable to stat {path:?} - {}", io_err(err)))
}

/// An `Errno` as the `io::Error` users know ("No such file or directory (os error 2)").
fn io_err(err: Errno) -> std::io::Error {
    std::io::Error::from(err)
}

const READ_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY);

/// How many random names a new temp file tries before giving up.
const TMP_NAME_ATTEMPTS: usize = 16;

impl DirHandle {
    /// Opens the directory at `path` (the config dir itself; a path the
    /// administrator chose, so symbolic links on it are followed). `None`
    /// if it does not exist.
    pub fn open_path(path: &Path) -> Result<Option<Self>, Error> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rustix::fs::open(path, flags, Mode::empty()) {
            Ok(fd) => Ok(Some(Self::new(fd, path.to_owned()))),
            Err(Errno::NOENT) => Ok(None),
            Err(Errno::NOTDIR) => bail!("{path:?} is not a directory"),
            Err(err) => bail!("unable to open directory {path:?} - {}", io_err(err)),
        }
    }

    /// The directory's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in this directory, for messages.
    pub fn entry_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// A second handle on the same open directory.
    pub fn try_clone(&self) -> Result<Self, Error> {
        let fd = self
            .fd
            .try_clone()
            .map_err(|err| format_err!("unable to duplicate handle of {:?} - {err}", self.path))?;
        Ok(Self {
            fd,
            path: self.path.clone(),
            identity: self.identity.clone(),
        })
    }

    fn new(fd: OwnedFd, path: PathBuf) -> Self {
        Self {
            fd,
            path,
            identity: OnceLock::new(),
        }
    }

    /// `fstat` of the directory itself (taken now; it also records the
    /// directory's identity).
    pub fn stat_self(&self) -> Result<EntryStat, Error> {
        let stat = fd_stat(self.fd.as_fd(), &self.path)?;
        let _ = self.identity.set((stat.dev, stat.ino));
        Ok(stat)
    }

    /// Device and inode of the open directory: those of its first `fstat`
    /// (the one that checked its owner when it was opened, as a rule), else
    /// of one taken now.
    pub fn identity(&self) -> Result<(u64, u64), Error> {
        match self.identity.get() {
            Some(&identity) => Ok(identity),
            None => self.stat_self().map(|stat| (stat.dev, stat.ino)),
        }
    }

    /// `fstatat` of `name` without following a symbolic link; `None` if
    /// there is no such entry.
    pub fn stat(&self, name: &str) -> Result<Option<EntryStat>, Error> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(EntryStat::of(&stat))),
            Err(Errno::NOENT) => Ok(None),
            Err(err) => bail!(
                "unable to stat {:?} - {}",
                self.entry_path(name),
                io_err(err)
            ),
        }
    }

    /// Opens the subdirectory `name` without following a symbolic link and
    /// checks who owns it; `None` if there is no such entry.
    ///
    /// # Errors
    ///
    /// A symbolic link, a non-directory, a directory owned by someone other
    /// than root or `policy.uid`, or one with a forbidden mode bit: each
    /// refused, naming the path.
    pub fn open_dir(&self, name: &str, policy: DirPolicy) -> Result<Option<DirHandle>, Error> {
        let Some(dir) = self.open_dir_any(name)? else {
            return Ok(None);
        };
        check_dir_stat(&dir.path, &dir.stat_self()?, policy)?;
        Ok(Some(dir))
    }

    /// Opens the subdirectory `name` without following a symbolic link, not
    /// checking its owner or mode (for `verify`, which reports them); `None`
    /// if there is no such entry.
    pub fn open_dir_any(&self, name: &str) -> Result<Option<DirHandle>, Error> {
        let path = self.entry_path(name);
        let flags = OFlags::RDONLY
            | OFlags::DIRECTORY
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NONBLOCK;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => {
                bail!("{path:?} is a symbolic link - refusing to follow it")
            }
            Err(Errno::NOTDIR) => {
                let what = self
                    .stat(name)?
                    .map_or("not a directory", |stat| stat.kind_name());
                bail!("{path:?} is {what}, not a directory - refusing to use it")
            }
            Err(err) => bail!("unable to open directory {path:?} - {}", io_err(err)),
        };
        Ok(Some(DirHandle::new(fd, path)))
    }

    /// Creates the subdirectory `name` with `options` (mode and owner set on
    /// the new directory's own descriptor before anyone can use it), or
    /// opens the existing one; either way checked as by [`DirHandle::open_dir`].
    pub fn ensure_dir(
        &self,
        name: &str,
        options: CreateOptions,
        policy: DirPolicy,
    ) -> Result<DirHandle, Error> {
        let path = self.entry_path(name);
        // 0700 until owner and mode are set
        let created = match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(err) => bail!("unable to create directory {path:?} - {}", io_err(err)),
        };
        let Some(dir) = self.open_dir(name, policy)? else {
            bail!("directory {path:?} vanished while it was created - retry");
        };
        if created {
            apply_options(dir.fd.as_fd(), &path, options)?;
            self.sync()?;
        }
        Ok(dir)
    }

    /// Opens `name` read-only (no symbolic link, no blocking on a FIFO) and
    /// returns it with its `fstat`; `None` if there is no such entry. The
    /// caller checks the kind and owner it expects.
    pub fn open_file(&self, name: &str) -> Result<Option<OpenedFile>, Error> {
        let path = self.entry_path(name);
        let fd = match rustix::fs::openat(&self.fd, name, READ_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => bail!("{path:?} is a symbolic link - refusing to follow it"),
            Err(err) => bail!("unable to open {path:?} - {}", io_err(err)),
        };
        let stat = fd_stat(fd.as_fd(), &path)?;
        Ok(Some(OpenedFile {
            file: File::from(fd),
            stat,
            path,
        }))
    }

    /// Opens `name` read-only and requires a regular file no larger than
    /// `max` bytes; `None` if there is no such entry.
    pub fn open_regular(&self, name: &str, max: u64) -> Result<Option<OpenedFile>, Error> {
        let Some(opened) = self.open_file(name)? else {
            return Ok(None);
        };
        if opened.stat.kind != EntryKind::File {
            bail!(
                "{:?} is {}, not a regular file - refusing to read it",
                opened.path,
                opened.stat.kind_name()
            );
        }
        if opened.stat.size > max {
            bail!(
                "{:?} is {}, larger than the {} limit",
                opened.path,
                size_text(opened.stat.size),
                size_text(max)
            );
        }
        Ok(Some(opened))
    }

    /// Creates a new file `name` (never over an existing entry) holding
    /// `data`, with the mode and owner of `options` set before the data is
    /// written; synced with `fsync`.
    pub fn create_new(
        &self,
        name: &str,
        data: &[u8],
        options: CreateOptions,
        fsync: bool,
    ) -> Result<EntryStat, Error> {
        let path = self.entry_path(name);
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NOCTTY;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => fd,
            Err(Errno::EXIST) => bail!("{path:?} exists already"),
            Err(err) => bail!("unable to create {path:?} - {}", io_err(err)),
        };
        let result = write_new(fd, &path, data, options, fsync);
        if result.is_err() {
            let _ = self.unlink(name);
        }
        result
    }

    /// Atomically replaces `name` with `data`: a temp file `NAME.tmp_XXXXXX`
    /// beside it gets the mode and owner of `options`, then the data, an
    /// fsync, the rename over `name` and an fsync of this directory. On
    /// every failure the temp file is removed and `name` keeps its old
    /// content. With `fail_point`, crash points `{fail_point}-tmp-written`
    /// and `{fail_point}-written` (see [`crate::failpoint`]).
    ///
    /// After the rename, `name` must still be the file just written: in a
    /// directory others may write to, a swap between the write and the
    /// rename is reported as an error.
    pub fn replace(
        &self,
        name: &str,
        data: &[u8],
        options: CreateOptions,
        fail_point: Option<&str>,
    ) -> Result<(), Error> {
        self.stage_replace(name, data, options)?.commit(fail_point)
    }

    /// The first half of [`DirHandle::replace`]: the temp file written and
    /// synced, `name` untouched. [`StagedReplace::commit`] renames it over
    /// `name`; dropped uncommitted, the temp file is removed. What a write
    /// needs of the disk is taken here, so a replace that must not fail for
    /// space after another change is staged before that change.
    pub fn stage_replace(
        &self,
        name: &str,
        data: &[u8],
        options: CreateOptions,
    ) -> Result<StagedReplace<'_>, Error> {
        let (tmp_name, written) = self.write_tmp(name, data, options)?;
        Ok(StagedReplace {
            dir: self,
            name: name.to_string(),
            tmp_name: Some(tmp_name),
            written,
        })
    }

    /// [`DirHandle::stage_replace`] through the temp file `tmp_name`, a
    /// fixed name rather than a new random one: a temp file of that name
    /// left by a crash is removed first, so crashes leave at most one. Only
    /// for a directory no one else may write to (root's `.locks/`), where
    /// no one else can make or hold that name.
    pub fn stage_replace_through(
        &self,
        name: &str,
        tmp_name: &str,
        data: &[u8],
        options: CreateOptions,
    ) -> Result<StagedReplace<'_>, Error> {
        self.unlink(tmp_name)?;
        let written = self.create_new(tmp_name, data, options, true)?;
        Ok(StagedReplace {
            dir: self,
            name: name.to_string(),
            tmp_name: Some(tmp_name.to_string()),
            written,
        })
    }

    /// The steps of a replace after the rename: the crash point
    /// `{fail_point}-written`, the fsync of this directory, and the check
    /// that `name` is still the file `written`.
    fn finish_replace(
        &self,
        name: &str,
        written: &EntryStat,
        fail_point: Option<&str>,
    ) -> Result<(), Error> {
        if let Some(point) = fail_point {
            crate::failpoint::hit(&format!("{point}-written"));
        }
        self.sync()?;
        self.check_placed(name, written)
    }

    /// Whether `name` is still the file `written` that a replace put there.
    pub(crate) fn check_placed(&self, name: &str, written: &EntryStat) -> Result<(), Error> {
        match self.stat(name)? {
            Some(now) if now.same_file(written) => Ok(()),
            _ => bail!(
                "{:?} was replaced by someone else while it was written - \
                 check who writes to {:?}",
                self.entry_path(name),
                self.path
            ),
        }
    }

    /// [`DirHandle::replace`] for data that must never be unlinked once it
    /// is on disk (key material): on a failure the temp file is left where
    /// it is, unless it holds no data, and named in the error for the caller
    /// to move into the trash. Same crash points as [`DirHandle::replace`].
    pub fn replace_keeping_temp(
        &self,
        name: &str,
        data: &[u8],
        options: CreateOptions,
        fail_point: Option<&str>,
    ) -> Result<(), ReplaceFailed> {
        let written = self.place_keeping_temp(name, data, options, fail_point)?;
        self.sync()
            .and_then(|()| self.check_placed(name, &written))
            .map_err(|error| ReplaceFailed { error, temp: None })
    }

    /// [`DirHandle::replace_keeping_temp`] up to the rename and the crash
    /// point `{fail_point}-written`, without the sync of this directory:
    /// for several files placed at once, then made durable by one
    /// [`DirHandle::sync`] and checked by [`DirHandle::check_placed`] with
    /// the returned stat each. Until that sync, a crash may leave the old
    /// name or the new one.
    pub(crate) fn place_keeping_temp(
        &self,
        name: &str,
        data: &[u8],
        options: CreateOptions,
        fail_point: Option<&str>,
    ) -> Result<EntryStat, ReplaceFailed> {
        let path = self.entry_path(name);
        let (tmp_name, written) = self
            .write_tmp_with(name, data, options, true)
            .map_err(|(error, temp)| ReplaceFailed { error, temp })?;
        if let Some(point) = fail_point {
            crate::failpoint::hit(&format!("{point}-tmp-written"));
        }
        if let Err(err) = rustix::fs::renameat(&self.fd, &tmp_name, &self.fd, name) {
            return Err(ReplaceFailed {
                error: format_err!("unable to replace {path:?} - {}", io_err(err)),
                temp: Some(tmp_name),
            });
        }
        if let Some(point) = fail_point {
            crate::failpoint::hit(&format!("{point}-written"));
        }
        Ok(written)
    }

    /// Opens `name` for reading and appending (`O_APPEND`: every write goes
    /// to the end), creating it if missing: see [`DirHandle::open_writable`].
    pub fn open_append(
        &self,
        name: &str,
        options: CreateOptions,
    ) -> Result<(OpenedFile, bool), Error> {
        self.open_writable(name, options, OFlags::APPEND)
    }

    /// Opens `name` for reading and writing in place, creating it if
    /// missing: see [`DirHandle::open_writable`]. For a small file rewritten
    /// in place whose tearing in a crash its reader detects and repairs
    /// (the audit checkpoint): no new inode, no rename, nothing for the
    /// next journal commit to carry but the data.
    pub fn open_read_write(
        &self,
        name: &str,
        options: CreateOptions,
    ) -> Result<(OpenedFile, bool), Error> {
        self.open_writable(name, options, OFlags::empty())
    }

    /// Opens `name` for reading and writing (with `extra` flags), creating
    /// it if missing: a new file gets the mode and owner of `options`
    /// before anything is written, and its name is made durable (fsync of
    /// this directory) before it is returned. No symbolic link is followed,
    /// anything but a regular file is refused. Returns the file with its
    /// `fstat`, and whether it was created.
    fn open_writable(
        &self,
        name: &str,
        options: CreateOptions,
        extra: OFlags,
    ) -> Result<(OpenedFile, bool), Error> {
        let path = self.entry_path(name);
        let flags = OFlags::RDWR
            | extra
            | OFlags::NOFOLLOW
            | OFlags::CLOEXEC
            | OFlags::NOCTTY
            | OFlags::NONBLOCK;
        loop {
            let (fd, created) = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
                Ok(fd) => (fd, false),
                Err(Errno::NOENT) => {
                    match rustix::fs::openat(
                        &self.fd,
                        name,
                        flags | OFlags::CREATE | OFlags::EXCL,
                        Mode::from_raw_mode(0o600),
                    ) {
                        Ok(fd) => {
                            if let Err(err) =
                                apply_options(fd.as_fd(), &path, options).and_then(|()| self.sync())
                            {
                                let _ = self.unlink(name);
                                return Err(err);
                            }
                            (fd, true)
                        }
                        // somebody else created it in between: open theirs
                        Err(Errno::EXIST) => continue,
                        Err(err) => bail!("unable to create {path:?} - {}", io_err(err)),
                    }
                }
                Err(Errno::LOOP) => bail!("{path:?} is a symbolic link - refusing to follow it"),
                Err(Errno::ISDIR) => {
                    bail!("{path:?} is a directory, not a regular file - refusing to use it")
                }
                Err(err) => bail!("unable to open {path:?} - {}", io_err(err)),
            };
            let stat = fd_stat(fd.as_fd(), &path)?;
            if stat.kind != EntryKind::File {
                bail!(
                    "{path:?} is {}, not a regular file - refusing to use it",
                    stat.kind_name()
                );
            }
            return Ok((
                OpenedFile {
                    file: File::from(fd),
                    stat,
                    path,
                },
                created,
            ));
        }
    }

    /// Creates `name` holding `data` unless an entry of that name exists:
    /// a complete, synced temp file is renamed to `name` without replacing
    /// anything, so the file appears whole or not at all. Returns whether
    /// it was created.
    pub fn create_atomic(
        &self,
        name: &str,
        data: &[u8],
        options: CreateOptions,
    ) -> Result<bool, Error> {
        if self.stat(name)?.is_some() {
            return Ok(false);
        }
        let (tmp_name, _) = self.write_tmp(name, data, options)?;
        match rustix::fs::renameat_with(&self.fd, &tmp_name, &self.fd, name, RenameFlags::NOREPLACE)
        {
            Ok(()) => {
                self.sync()?;
                Ok(true)
            }
            Err(err) => {
                let _ = self.unlink(&tmp_name);
                if err == Errno::EXIST {
                    return Ok(false);
                }
                bail!(
                    "unable to create {:?} - {}",
                    self.entry_path(name),
                    io_err(err)
                )
            }
        }
    }

    /// Writes a complete, synced temp file for `name`; returns its name and stat.
    fn write_tmp(
        &self,
        name: &str,
        data: &[u8],
        options: CreateOptions,
    ) -> Result<(String, EntryStat), Error> {
        self.write_tmp_with(name, data, options, false)
            .map_err(|(err, _)| err)
    }

    /// [`DirHandle::write_tmp`]; on a failure the temp file is removed,
    /// unless `keep` says to leave one that holds data (returned with the
    /// error).
    fn write_tmp_with(
        &self,
        name: &str,
        data: &[u8],
        options: CreateOptions,
        keep: bool,
    ) -> Result<(String, EntryStat), (Error, Option<String>)> {
        let plain = |err| (err, None);
        for _ in 0..TMP_NAME_ATTEMPTS {
            let tmp_name = tmp_name_for(name).map_err(plain)?;
            let tmp_path = self.entry_path(&tmp_name);
            let flags = OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::EXCL
                | OFlags::NOFOLLOW
                | OFlags::CLOEXEC
                | OFlags::NOCTTY;
            let fd =
                match rustix::fs::openat(&self.fd, &tmp_name, flags, Mode::from_raw_mode(0o600)) {
                    Ok(fd) => fd,
                    Err(Errno::EXIST) => continue,
                    Err(err) => {
                        return Err(plain(format_err!(
                            "unable to create temporary file for {:?} - {}",
                            self.entry_path(name),
                            io_err(err)
                        )));
                    }
                };
            return match write_new(fd, &tmp_path, data, options, true) {
                Ok(stat) => Ok((tmp_name, stat)),
                Err(err) => {
                    let holds_data = self
                        .stat(&tmp_name)
                        .is_ok_and(|stat| stat.is_some_and(|stat| stat.size > 0));
                    if keep && holds_data {
                        return Err((err, Some(tmp_name)));
                    }
                    let _ = self.unlink(&tmp_name);
                    Err(plain(err))
                }
            };
        }
        Err(plain(format_err!(
            "unable to create temporary file for {:?} - too many name collisions",
            self.entry_path(name)
        )))
    }

    /// Renames `from` in this directory to `to` in `to_dir`, never over an
    /// existing entry (`RENAME_NOREPLACE`).
    pub fn rename_noreplace(&self, from: &str, to_dir: &DirHandle, to: &str) -> Result<(), Error> {
        rustix::fs::renameat_with(&self.fd, from, &to_dir.fd, to, RenameFlags::NOREPLACE).map_err(
            |err| {
                format_err!(
                    "unable to move {:?} to {:?} - {}",
                    self.entry_path(from),
                    to_dir.entry_path(to),
                    io_err(err)
                )
            },
        )
    }

    /// Removes the file `name` (not a directory); `Ok(false)` if it was not
    /// there. The caller syncs the directory when the removal must be durable.
    pub fn unlink(&self, name: &str) -> Result<bool, Error> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(err) => bail!(
                "unable to remove {:?} - {}",
                self.entry_path(name),
                io_err(err)
            ),
        }
    }

    /// Removes the empty subdirectory `name`; `Ok(false)` if it was not there.
    pub fn remove_dir(&self, name: &str) -> Result<bool, Error> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(err) => bail!(
                "unable to remove directory {:?} - {}",
                self.entry_path(name),
                io_err(err)
            ),
        }
    }

    /// Makes renames and removals in this directory durable.
    pub fn sync(&self) -> Result<(), Error> {
        rustix::fs::fsync(&self.fd).map_err(|err| {
            format_err!("unable to sync directory {:?} - {}", self.path, io_err(err))
        })
    }

    /// The names in this directory (without `.` and `..`), sorted.
    pub fn names(&self) -> Result<Vec<String>, Error> {
        let dir = rustix::fs::Dir::read_from(&self.fd)
            .map_err(|err| format_err!("unable to list {:?} - {}", self.path, io_err(err)))?;
        let mut names = Vec::new();
        for entry in dir {
            let entry = entry
                .map_err(|err| format_err!("unable to list {:?} - {}", self.path, io_err(err)))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            match String::from_utf8(name.to_vec()) {
                Ok(name) => names.push(name),
                // not a name the store ever writes: show it escaped
                Err(err) => names.push(
                    OsString::from_vec(err.into_bytes())
                        .to_string_lossy()
                        .into_owned(),
                ),
            }
        }
        names.sort();
        Ok(names)
    }

    /// Sets mode and owner of the entry `name` through a descriptor opened
    /// without following a symbolic link, after checking with `fstat` that
    /// it is `expect` (a regular file or a directory). Returns the stat from
    /// before the change; `None` if there is no such entry.
    ///
    /// In a directory others may change (the config dir, which belongs to
    /// `backup`), the name may stand for any file someone moved there, so a
    /// regular file is changed only if that gives nobody access to data
    /// they did not have: it must have one link, and if it holds data, its
    /// owner and group stay and no group or world permission is added (see
    /// [`check_safe_change`]).
    pub fn fix_owner_and_mode(
        &self,
        name: &str,
        expect: EntryKind,
        options: CreateOptions,
    ) -> Result<Option<EntryStat>, Error> {
        let Some(opened) = self.open_file(name)? else {
            return Ok(None);
        };
        if opened.stat.kind != expect {
            bail!(
                "{:?} is {} - refusing to change its owner or mode",
                opened.path,
                opened.stat.kind_name()
            );
        }
        if opened.stat.kind == EntryKind::File && self.others_may_change()? {
            check_safe_change(&opened.path, &opened.stat, options)?;
        }
        apply_options(opened.file.as_fd(), &opened.path, options)?;
        Ok(Some(opened.stat))
    }

    /// Whether someone other than root and this process's user may create,
    /// rename or remove entries here (then a name may stand for any file
    /// they moved in).
    pub fn others_may_change(&self) -> Result<bool, Error> {
        let stat = self.stat_self()?;
        let euid = rustix::process::geteuid().as_raw();
        Ok((stat.uid != 0 && stat.uid != euid) || stat.mode & 0o022 != 0)
    }

    /// Sets mode and owner of this directory itself.
    pub fn fix_own_owner_and_mode(&self, options: CreateOptions) -> Result<(), Error> {
        apply_options(self.fd.as_fd(), &self.path, options)
    }

    /// Opens (creating it with `options` if missing) and locks the lock file
    /// `name`, then checks that `name` still names the locked file (a deleter
    /// may have removed it while we waited; then we start over). Waits at
    /// most `timeout` in total: first in this process's queue for the lock,
    /// then, if another process holds it, in a blocking `flock`
    /// ([`crate::lock::queue`]).
    pub(crate) fn lock(
        &self,
        name: &str,
        timeout: Duration,
        exclusive: bool,
        options: CreateOptions,
    ) -> Result<LockedFile, Error> {
        let path = self.entry_path(name);
        let deadline = Instant::now() + timeout;
        let timed_out = |behind: &str| lock_timed_out(&path, timeout, behind);
        let (dev, ino) = self.identity()?;
        let key = LockKey::new(dev, ino, name);
        let Some(turn) = queue::wait_turn(&key, exclusive, deadline) else {
            return Err(timed_out(BEHIND_THIS_PROCESS));
        };
        loop {
            // the `fstat` of the file opened here, if the flock is of that
            // file (not of one a waiter opened before: see `queue`)
            let mut opened = None;
            let open = || {
                let (file, stat) = self.open_lock_file(name, options)?;
                opened = stat;
                Ok(file)
            };
            let Some(file) = turn.flock(&path, open, deadline)? else {
                let held = self.stat(name)?.map(|held| (held.dev, held.ino));
                return Err(timed_out(&crate::lock::holders::held_by(held)));
            };
            let locked = match opened {
                Some(stat) => stat,
                None => fd_stat(file.as_fd(), &path)?,
            };
            match self.stat(name)? {
                Some(now) if now.same_file(&locked) => return Ok(LockedFile::new(file, turn)),
                // removed or replaced while we waited: lock what is there now
                _ => {}
            }
            if Instant::now() >= deadline {
                return Err(timed_out("the lock file was replaced while we waited"));
            }
        }
    }

    /// Opens (creating it with `options` if missing) the lock file `name`;
    /// returns it with its `fstat` if it existed (a new one is not
    /// `fstat`ed).
    fn open_lock_file(
        &self,
        name: &str,
        options: CreateOptions,
    ) -> Result<(File, Option<EntryStat>), Error> {
        let path = self.entry_path(name);
        let open_flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        loop {
            let fd = match rustix::fs::openat(&self.fd, name, open_flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match rustix::fs::openat(
                        &self.fd,
                        name,
                        open_flags | OFlags::CREATE | OFlags::EXCL,
                        Mode::from_raw_mode(0o600),
                    ) {
                        Ok(fd) => {
                            if let Err(err) = apply_options(fd.as_fd(), &path, options) {
                                let _ = self.unlink(name);
                                return Err(err);
                            }
                            return Ok((File::from(fd), None));
                        }
                        // somebody else created it in between: open theirs
                        Err(Errno::EXIST) => continue,
                        Err(err) => {
                            bail!("unable to create lock file {path:?} - {}", io_err(err))
                        }
                    }
                }
                // a read-only file system: flock works on a read-only
                // descriptor too, so readers such as verify still exclude
                // writers that reach the same file through a writable mount
                Err(Errno::ROFS) => rustix::fs::openat(&self.fd, name, READ_FLAGS, Mode::empty())
                    .map_err(|err| {
                    format_err!("unable to open lock file {path:?} - {}", io_err(err))
                })?,
                Err(Errno::LOOP) => {
                    bail!("lock file {path:?} is a symbolic link - refusing to follow it")
                }
                Err(err) => bail!("unable to open lock file {path:?} - {}", io_err(err)),
            };
            let stat = fd_stat(fd.as_fd(), &path)?;
            if stat.kind != EntryKind::File {
                bail!(
                    "lock file {path:?} is {}, not a regular file - refusing to use it",
                    stat.kind_name()
                );
            }
            return Ok((File::from(fd), Some(stat)));
        }
    }
}

impl AsFd for DirHandle {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Reads an opened file whole (at most `max` bytes).
pub fn read_all(opened: &mut OpenedFile, max: u64) -> Result<Vec<u8>, Error> {
    read_all_with_room(opened, max, 0)
}

/// [`read_all`] into a buffer with `room` bytes to spare after the data,
/// for text a caller appends to (a store's new config entry): without it
/// the first append moves the whole text to new memory.
pub fn read_all_with_room(
    opened: &mut OpenedFile,
    max: u64,
    room: usize,
) -> Result<Vec<u8>, Error> {
    // the size is the file's word, not a promise: reserve at most what is read
    let size = opened.stat.size.min(max + 1) as usize;
    let mut data = Vec::with_capacity(size.saturating_add(room));
    // new memory for a large file (a 10,000-key config: 658 pages) made
    // present in one call instead of a page fault per page as read fills it
    proxmox_sys::mm::prefault_for_write(data.spare_capacity_mut());
    (&mut opened.file)
        .take(max + 1)
        .read_to_end(&mut data)
        .map_err(|err| format_err!("unable to read {:?} - {err}", opened.path))?;
    check_read_len(opened, data.len(), max)?;
    Ok(data)
}

/// What [`read_all_into`] read.
#[derive(Debug)]
pub enum ReadInto {
    /// All of it, in the buffer given.
    Buf(HugePageBuf),
    /// The file was longer than the buffer (it grew after its size was
    /// taken): all of it, in a `Vec`.
    Grown(Vec<u8>),
}

/// [`read_all`] into `buf` (empty; its size the file's and one byte more,
/// so its end is seen without another buffer). Reads the same bytes as
/// [`read_all`] and refuses what it refuses: a file that grew past the
/// buffer is read on into a `Vec`.
pub fn read_all_into(
    opened: &mut OpenedFile,
    max: u64,
    mut buf: HugePageBuf,
) -> Result<ReadInto, Error> {
    let read_err = |err| format_err!("unable to read {:?} - {err}", opened.path);
    let mut file = (&mut opened.file).take(max + 1);
    let read = if buf.fill_from(&mut file).map_err(read_err)? {
        let mut data = Vec::with_capacity(buf.len() + 8192);
        data.extend_from_slice(&buf);
        drop(buf);
        file.read_to_end(&mut data).map_err(read_err)?;
        ReadInto::Grown(data)
    } else {
        ReadInto::Buf(buf)
    };
    let len = match &read {
        ReadInto::Buf(buf) => buf.len(),
        ReadInto::Grown(data) => data.len(),
    };
    check_read_len(opened, len, max)?;
    Ok(read)
}

/// Refuses what a read of `opened` found beyond `max` bytes (read up to one
/// byte more to see that): the file grew past its limit while being read.
fn check_read_len(opened: &OpenedFile, len: usize, max: u64) -> Result<(), Error> {
    if len as u64 > max {
        bail!(
            "{:?} grew beyond the {max} byte limit while reading",
            opened.path
        );
    }
    Ok(())
}

fn check_dir_stat(path: &Path, stat: &EntryStat, policy: DirPolicy) -> Result<(), Error> {
    if stat.kind != EntryKind::Dir {
        bail!("{path:?} is {}, not a directory", stat.kind_name());
    }
    if stat.uid != 0 && stat.uid != policy.uid {
        bail!(
            "directory {path:?} is owned by {}, expected {} - refusing to use it \
             (someone else could have changed what is in it; inspect it, then \
             'chown' it back)",
            crate::ownership::user_name_of(stat.uid),
            crate::ownership::user_name_of(policy.uid),
        );
    }
    let forbidden = stat.mode & policy.forbidden_mode_bits;
    if forbidden != 0 {
        bail!(
            "directory {path:?} has mode {:04o}, which lets others change what is in it - \
             refusing to use it (fix with 'chmod {:04o}' or 'proxmox-backup-manager \
             encryption-key verify --repair')",
            stat.mode,
            stat.mode & !policy.forbidden_mode_bits,
        );
    }
    Ok(())
}

/// Refuses an owner or mode change of the regular file `stat` (reached by
/// a name in a directory others may change) that could give anyone access
/// to data they did not have: a file with more than one link (the change
/// would reach its other names too), and for a file that holds data, a new
/// owner, a new group with access, or a group or world permission it did
/// not have. An empty file (a lock file) may get any owner and mode.
fn check_safe_change(path: &Path, stat: &EntryStat, options: CreateOptions) -> Result<(), Error> {
    if stat.nlink > 1 {
        bail!(
            "{path:?} has {} hard links - refusing to change its owner or mode, which would \
             change every other name of it too (if you made the links, remove them, then \
             repair again)",
            stat.nlink
        );
    }
    if stat.size == 0 {
        return Ok(());
    }
    let uid = options.get_owner().map_or(stat.uid, |uid| uid.as_raw());
    let gid = options.get_group().map_or(stat.gid, |gid| gid.as_raw());
    let mode = options.get_perm().map_or(stat.mode, |perm| perm.bits());
    let added = mode & 0o077 & !stat.mode;
    let new_group_access = gid != stat.gid && mode & 0o070 != 0;
    if uid != stat.uid || new_group_access || added != 0 {
        bail!(
            "{path:?} holds data and is {}:{} mode {:04o} - refusing to make it {}:{} mode \
             {mode:04o} here, where others can put any file under this name (check that it \
             is what its name says, then fix its owner and mode by hand)",
            crate::ownership::user_name_of(stat.uid),
            crate::ownership::group_name_of(stat.gid),
            stat.mode,
            crate::ownership::user_name_of(uid),
            crate::ownership::group_name_of(gid),
        );
    }
    Ok(())
}

/// A size for messages: MiB from 1 MiB on, else bytes.
pub(crate) fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} byte")
    }
}

/// Sets mode and owner on an open descriptor (owner first, so the mode is
/// never wider than intended for a moment under the wrong owner).
fn apply_options(fd: BorrowedFd<'_>, path: &Path, options: CreateOptions) -> Result<(), Error> {
    let owner = options.get_owner().map(|uid| uid.as_raw());
    let group = options.get_group().map(|gid| gid.as_raw());
    if owner.is_some() || group.is_some() {
        rustix::fs::fchown(
            fd,
            owner.map(rustix::fs::Uid::from_raw),
            group.map(rustix::fs::Gid::from_raw),
        )
        .map_err(|err| format_err!("unable to set owner of {path:?} - {}", io_err(err)))?;
    }
    if let Some(perm) = options.get_perm() {
        rustix::fs::fchmod(fd, Mode::from_raw_mode(perm.bits()))
            .map_err(|err| format_err!("unable to set mode of {path:?} - {}", io_err(err)))?;
    }
    Ok(())
}

/// Owner and mode, then data, then (with `fsync`) a sync of a new file.
fn write_new(
    fd: OwnedFd,
    path: &Path,
    data: &[u8],
    options: CreateOptions,
    fsync: bool,
) -> Result<EntryStat, Error> {
    apply_options(fd.as_fd(), path, options)?;
    let mut file = File::from(fd);
    file.write_all(data)
        .map_err(|err| format_err!("unable to write {path:?} - {err}"))?;
    if fsync {
        file.sync_all()
            .map_err(|err| format_err!("unable to sync {path:?} - {err}"))?;
    }
    fd_stat(file.as_fd(), path)
}

/// A replace of [`DirHandle::stage_replace`]: its temp file written and
/// synced, not yet renamed over the name it replaces.
#[must_use = "a staged replace changes nothing until it is committed"]
pub struct StagedReplace<'a> {
    dir: &'a DirHandle,
    name: String,
    /// `None` once renamed (nothing left to remove).
    tmp_name: Option<String>,
    written: EntryStat,
}

impl StagedReplace<'_> {
    /// Renames the temp file over the name, then what
    /// [`DirHandle::replace`] does after its rename; with `fail_point`, its
    /// crash points.
    pub fn commit(mut self, fail_point: Option<&str>) -> Result<(), Error> {
        let dir = self.dir;
        if let Some(point) = fail_point {
            crate::failpoint::hit(&format!("{point}-tmp-written"));
        }
        let tmp_name = self.tmp_name.take().expect("a staged replace commits once");
        if let Err(err) = rustix::fs::renameat(&dir.fd, &tmp_name, &dir.fd, self.name.as_str()) {
            let _ = dir.unlink(&tmp_name);
            bail!(
                "unable to replace {:?} - {}",
                dir.entry_path(&self.name),
                io_err(err)
            );
        }
        dir.finish_replace(&self.name, &self.written, fail_point)
    }
}

impl Drop for StagedReplace<'_> {
    fn drop(&mut self) {
        if let Some(tmp_name) = self.tmp_name.take() {
            let _ = self.dir.unlink(&tmp_name);
        }
    }
}

/// `NAME.tmp_XXXXXX` with six random letters or digits (the pattern
/// `verify` recognises as an interrupted write).
fn tmp_name_for(name: &str) -> Result<String, Error> {
    Ok(format!("{name}.tmp_{}", random_suffix()?))
}

/// The name a temp file of [`tmp_name_for`] is for: `NAME` of
/// `NAME.tmp_XXXXXX` (six letters or digits after the last `.tmp_`, as
/// `proxmox_sys::fs::make_tmp_file` names them too); `None` for any other
/// name. A name may hold `.tmp_` itself (`k.enc.tmp_abc123` is a valid key
/// id), so only the last one counts.
pub(crate) fn temp_file_target(name: &str) -> Option<&str> {
    let (target, suffix) = name.rsplit_once(".tmp_")?;
    let random = suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric());
    (random && !target.is_empty()).then_some(target)
}

/// Six random letters or digits: what makes a temp file's or a trash
/// entry's name unique. From the kernel, not OpenSSL: a store would
/// otherwise set up OpenSSL's generator for its temp file names alone.
pub(crate) fn random_suffix() -> Result<String, Error> {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let random: [u8; 6] = proxmox_sys::linux::os_random_data()?;
    Ok(random
        .iter()
        .map(|b| CHARS[*b as usize % CHARS.len()] as char)
        .collect())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn policy() -> DirPolicy {
        DirPolicy {
            uid: rustix::process::geteuid().as_raw(),
            forbidden_mode_bits: 0o022,
        }
    }

    fn open(dir: &tempfile::TempDir) -> DirHandle {
        DirHandle::open_path(dir.path()).unwrap().unwrap()
    }

    /// A handle's identity is its directory's device and inode, whether
    /// taken by the `fstat` that checked it, copied into a clone or taken
    /// on asking; another directory's differs.
    #[test]
    fn a_handles_identity_is_its_directorys() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        let dir = open(&tmp);
        let sub = dir.open_dir_any("sub").unwrap().unwrap();
        let meta = std::fs::metadata(tmp.path().join("sub")).unwrap();
        let want = (meta.dev(), meta.ino());
        let checked = sub.stat_self().unwrap();
        assert_eq!((checked.dev, checked.ino), want);
        assert_eq!(sub.identity().unwrap(), want);
        assert_eq!(sub.try_clone().unwrap().identity().unwrap(), want);
        let meta = std::fs::metadata(tmp.path()).unwrap();
        assert_eq!(dir.identity().unwrap(), (meta.dev(), meta.ino()));
        assert_ne!(dir.identity().unwrap(), want);
    }

    #[test]
    fn symlinks_are_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        std::fs::write(target.path().join("secret"), b"root only").unwrap();
        std::os::unix::fs::symlink(target.path().join("secret"), tmp.path().join("f")).unwrap();
        std::os::unix::fs::symlink(target.path(), tmp.path().join("d")).unwrap();
        let dir = open(&tmp);

        let err = dir.open_regular("f", 100).err().unwrap().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let err = dir.open_dir("d", policy()).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let err = dir
            .lock("f", Duration::from_secs(1), true, CreateOptions::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        // a replace swaps the link itself, never writes through it
        dir.replace("f", b"new", CreateOptions::new(), None)
            .unwrap();
        assert_eq!(
            std::fs::read(target.path().join("secret")).unwrap(),
            b"root only"
        );
        assert_eq!(std::fs::read(tmp.path().join("f")).unwrap(), b"new");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&tmp.path().join("p"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let dir = open(&tmp);
        let err = dir.open_regular("p", 100).err().unwrap().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = dir
            .lock("p", Duration::from_secs(1), true, CreateOptions::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn a_group_writable_or_foreign_dir_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        std::fs::set_permissions(
            tmp.path().join("sub"),
            std::fs::Permissions::from_mode(0o770),
        )
        .unwrap();
        let dir = open(&tmp);
        let err = dir.open_dir("sub", policy()).unwrap_err().to_string();
        assert!(err.contains("mode 0770"), "{err}");
        let stranger = DirPolicy {
            uid: 4242,
            forbidden_mode_bits: 0,
        };
        // root is always accepted; another owner is not
        if !rustix::process::geteuid().is_root() {
            let err = dir.open_dir("sub", stranger).unwrap_err().to_string();
            assert!(err.contains("owned by"), "{err}");
        }
    }

    /// As in the config dir, which belongs to `backup`: a name may stand for
    /// any file someone moved there, so a file holding data is never given
    /// to another user or opened to others; an empty one (a lock file) is.
    #[test]
    fn in_a_directory_others_may_change_no_data_is_given_away() {
        if !rustix::process::geteuid().is_root() {
            println!("skipped: chown needs root (CI runs as root)");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(tmp.path(), Some(4242), Some(4242)).unwrap();
        let file = |name: &str, data: &[u8], mode: u32| {
            let path = tmp.path().join(name);
            std::fs::write(&path, data).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        let owner_mode = |name: &str| {
            let meta = std::fs::metadata(tmp.path().join(name)).unwrap();
            (meta.uid(), meta.gid(), meta.mode() & 0o7777)
        };
        let options = |mode: u32, owner: Option<u32>| {
            let options = CreateOptions::new().perm(nix::sys::stat::Mode::from_bits_truncate(mode));
            match owner {
                Some(id) => options
                    .owner(nix::unistd::Uid::from_raw(id))
                    .group(nix::unistd::Gid::from_raw(id)),
                None => options,
            }
        };
        file("key", b"root's secret", 0o600);
        file("lock", b"", 0o600);
        let dir = open(&tmp);
        assert!(dir.others_may_change().unwrap());

        // handed over or opened to the group: refused, nothing changed
        for (mode, owner) in [(0o660, Some(4242)), (0o640, None), (0o604, None)] {
            let err = dir
                .fix_owner_and_mode("key", EntryKind::File, options(mode, owner))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("holds data") && err.contains("/key\""),
                "{err}"
            );
            assert_eq!(owner_mode("key"), (0, 0, 0o600));
        }
        // narrowed: fine
        file("key", b"root's secret", 0o644);
        dir.fix_owner_and_mode("key", EntryKind::File, options(0o600, None))
            .unwrap();
        assert_eq!(owner_mode("key"), (0, 0, 0o600));
        // an empty file may go to anyone
        dir.fix_owner_and_mode("lock", EntryKind::File, options(0o660, Some(4242)))
            .unwrap();
        assert_eq!(owner_mode("lock"), (4242, 4242, 0o660));
        // a second link: refused, even when empty
        std::fs::hard_link(tmp.path().join("lock"), tmp.path().join("link")).unwrap();
        let err = dir
            .fix_owner_and_mode("lock", EntryKind::File, options(0o600, Some(0)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 hard links"), "{err}");

        // in a directory of root's, names are stable: the check decided
        std::os::unix::fs::chown(tmp.path(), Some(0), Some(0)).unwrap();
        assert!(!dir.others_may_change().unwrap());
        dir.fix_owner_and_mode("key", EntryKind::File, options(0o640, Some(4242)))
            .unwrap();
        assert_eq!(owner_mode("key"), (4242, 4242, 0o640));
    }

    #[test]
    fn replace_sets_mode_and_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(&tmp);
        let options = CreateOptions::new().perm(nix::sys::stat::Mode::from_bits_truncate(0o640));
        dir.replace("x.cfg", b"one", options, None).unwrap();
        dir.replace("x.cfg", b"two", options, None).unwrap();
        assert_eq!(dir.names().unwrap(), vec!["x.cfg".to_string()]);
        let meta = std::fs::metadata(tmp.path().join("x.cfg")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o640);
        let mut opened = dir.open_regular("x.cfg", 10).unwrap().unwrap();
        assert_eq!(read_all(&mut opened, 10).unwrap(), b"two");
    }

    #[test]
    fn replace_keeping_temp_leaves_the_temp_file_of_a_failed_rename() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(&tmp);
        // a non-empty directory in the way: the rename fails
        std::fs::create_dir(tmp.path().join("k.enc")).unwrap();
        std::fs::write(tmp.path().join("k.enc/inside"), b"").unwrap();
        let failed = dir
            .replace_keeping_temp("k.enc", b"key material", CreateOptions::new(), None)
            .unwrap_err();
        assert!(
            failed.error.to_string().contains("k.enc"),
            "{}",
            failed.error
        );
        let temp = failed.temp.expect("the temp file is named");
        assert!(temp.starts_with("k.enc.tmp_"), "{temp}");
        assert_eq!(
            std::fs::read(tmp.path().join(&temp)).unwrap(),
            b"key material"
        );
        // replace, as before, removes its temp file
        assert!(
            dir.replace("k.enc", b"config", CreateOptions::new(), None)
                .is_err()
        );
        assert_eq!(
            dir.names().unwrap(),
            vec!["k.enc".to_string(), temp.clone()]
        );
    }

    #[test]
    fn create_new_never_overwrites() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(&tmp);
        dir.create_new("k", b"one", CreateOptions::new(), true)
            .unwrap();
        let err = dir
            .create_new("k", b"two", CreateOptions::new(), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exists already"), "{err}");
        assert_eq!(std::fs::read(tmp.path().join("k")).unwrap(), b"one");
    }

    #[test]
    fn rename_noreplace_refuses_an_existing_target() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(&tmp);
        let sub = dir
            .ensure_dir("sub", CreateOptions::new(), policy())
            .unwrap();
        dir.create_new("a", b"a", CreateOptions::new(), false)
            .unwrap();
        sub.create_new("b", b"b", CreateOptions::new(), false)
            .unwrap();
        assert!(dir.rename_noreplace("a", &sub, "b").is_err());
        dir.rename_noreplace("a", &sub, "c").unwrap();
        assert_eq!(sub.names().unwrap(), vec!["b".to_string(), "c".to_string()]);
        assert!(dir.stat("a").unwrap().is_none());
    }

    #[test]
    fn open_append_creates_with_mode_and_appends() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(&tmp);
        let options = CreateOptions::new().perm(nix::sys::stat::Mode::from_bits_truncate(0o640));
        let (mut opened, created) = dir.open_append("log", options).unwrap();
        assert!(created);
        opened.file.write_all(b"one\n").unwrap();
        let (mut opened, created) = dir.open_append("log", options).unwrap();
        assert!(!created);
        opened.file.write_all(b"two\n").unwrap();
        assert_eq!(
            std::fs::read(tmp.path().join("log")).unwrap(),
            b"one\ntwo\n"
        );
        let meta = std::fs::metadata(tmp.path().join("log")).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o640);

        std::os::unix::fs::symlink(tmp.path().join("log"), tmp.path().join("link")).unwrap();
        let err = dir.open_append("link", options).err().unwrap().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        let err = dir.open_append("sub", options).err().unwrap().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }

    #[test]
    fn open_read_write_writes_in_place() {
        use std::os::unix::fs::FileExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(&tmp);
        let (opened, created) = dir.open_read_write("c", CreateOptions::new()).unwrap();
        assert!(created);
        opened.file.write_all_at(b"one two", 0).unwrap();
        let (opened, created) = dir.open_read_write("c", CreateOptions::new()).unwrap();
        assert!(!created);
        let ino = opened.stat.ino;
        opened.file.write_all_at(b"six", 0).unwrap();
        opened.file.set_len(3).unwrap();
        assert_eq!(std::fs::read(tmp.path().join("c")).unwrap(), b"six");
        assert_eq!(std::fs::metadata(tmp.path().join("c")).unwrap().ino(), ino);
    }

    #[test]
    fn a_lock_follows_a_removed_lock_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = open(&tmp);
        let timeout = Duration::from_secs(2);
        let first = dir
            .lock("k.lck", timeout, true, CreateOptions::new())
            .unwrap();
        // a waiter opened the current file before it was removed
        let stale = File::open(tmp.path().join("k.lck")).unwrap();
        assert!(dir.unlink("k.lck").unwrap());
        drop(first);
        stale.try_lock().unwrap();
        let second = dir
            .lock("k.lck", timeout, true, CreateOptions::new())
            .unwrap();
        assert_ne!(
            second.file().metadata().unwrap().ino(),
            stale.metadata().unwrap().ino()
        );
    }
}
