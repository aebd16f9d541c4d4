//! A child process whose file systems refuse what vfat, exfat or a network
//! file system refuses: unnamed files (`O_TMPFILE`) and hard links; or
//! what a failing device does: a directory's sync, removals.
//!
//! The kernel of a test machine may have no vfat, so the fallbacks of a
//! new key file (`pbs_key_config::NewFileWay`) would never run in a test.
//! A seccomp filter installed between fork and exec makes the kernel
//! refuse those calls for the child and its file systems, for real:
//! `open`/`openat` with `O_TMPFILE` fail with `EOPNOTSUPP` (what ext2, vfat
//! or NFS answer), and `link`/`linkat` with the errno of the [`Refusal`]
//! (`EPERM` from vfat and exfat). Every other call goes through. The
//! filters are compiled in the parent ([`refuse`]); the child only
//! installs them, which allocates nothing.
//!
//! Seccomp needs a kernel built with it and, outside a container that
//! forbids it, nothing else (`PR_SET_NO_NEW_PRIVS` makes it work without
//! privileges). Where it cannot be installed the child is never started:
//! the spawn fails with the kernel's error, and [`assert_seccomp_works`]
//! says so in words, so a test fails rather than pass without the
//! fallback it is about.
//!
//! [`fail_dir_sync`] makes the kernel fail the child's `fsync` of one
//! directory with `EIO`, as a device does that fails once a file has its
//! name: a filter cannot tell a directory's descriptor from a file's, so
//! it hands every `fsync` to a thread of the test (a seccomp user
//! notification), which looks at what the descriptor is open on and
//! answers `EIO` for the directory, or lets the call go through.
//! [`swap_at_dir_sync`] uses the same hand-over to swap a file in the
//! directory while the child waits in that sync: someone else's file
//! renamed over a name the child has just placed, between its rename and
//! its check of the name.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

/// What the child's file systems refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Unnamed files (`O_TMPFILE`): hard links work (ext2, NFS, many FUSE
    /// file systems).
    UnnamedFiles,
    /// Unnamed files and hard links (`EPERM`): vfat, exfat.
    UnnamedFilesAndHardLinks,
    /// Unnamed files, and a hard link fails with `EIO`: a device that
    /// fails once the data is written and synced, before the file has
    /// its name.
    UnnamedFilesAndLinksFailing,
}

/// The bit of `open` flags that `O_TMPFILE` adds to `O_DIRECTORY`
/// (`__O_TMPFILE`).
const TMPFILE_BIT: u64 = (libc::O_TMPFILE & !libc::O_DIRECTORY) as u64;

/// Makes `cmd`'s child run with the file systems of `refusal`.
pub fn refuse(cmd: &mut Command, refusal: Refusal) {
    let programs = programs(refusal);
    // SAFETY: between fork and exec only prctl and seccomp run, through
    // seccompiler::apply_filter, on programs compiled before the fork; an
    // error is turned into an io::Error without allocating
    unsafe {
        cmd.pre_exec(move || {
            for program in &programs {
                seccompiler::apply_filter(program).map_err(|err| match err {
                    seccompiler::Error::Prctl(err) | seccompiler::Error::Seccomp(err) => err,
                    _ => io::Error::from_raw_os_error(libc::EINVAL),
                })?;
            }
            Ok(())
        });
    }
}

/// Panics, in words, if a seccomp filter cannot be installed in a child
/// here: the tests of the fallbacks must not pass without them.
pub fn assert_seccomp_works() {
    let mut probe = Command::new("true");
    probe
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    refuse(&mut probe, Refusal::UnnamedFilesAndHardLinks);
    match probe.status() {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("`true` under a seccomp filter failed ({status})"),
        Err(err) => panic!(
            "a seccomp filter cannot be installed in a child process here ({err}): the tests \
             of the fallbacks of a new key file need a kernel with seccomp (CONFIG_SECCOMP_FILTER) \
             and a container that allows it"
        ),
    }
}

/// The filters of `refusal`, compiled: one per errno, as a filter has a
/// single action for what it matches.
fn programs(refusal: Refusal) -> Vec<BpfProgram> {
    let link_errno = match refusal {
        Refusal::UnnamedFiles => None,
        Refusal::UnnamedFilesAndHardLinks => Some(libc::EPERM),
        Refusal::UnnamedFilesAndLinksFailing => Some(libc::EIO),
    };
    let mut programs = vec![compile(unnamed_file_rules(), libc::EOPNOTSUPP)];
    if let Some(errno) = link_errno {
        programs.push(compile(link_rules(), errno));
    }
    programs
}

/// `openat` (and, where it exists, `open`) with the `O_TMPFILE` bit set.
fn unnamed_file_rules() -> BTreeMap<i64, Vec<SeccompRule>> {
    let with_tmpfile = |flags_arg: u8| {
        let condition = SeccompCondition::new(
            flags_arg,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(TMPFILE_BIT),
            TMPFILE_BIT,
        )
        .expect("a valid seccomp condition");
        vec![SeccompRule::new(vec![condition]).expect("a valid seccomp rule")]
    };
    let mut rules = BTreeMap::new();
    rules.insert(libc::SYS_openat, with_tmpfile(2));
    #[cfg(target_arch = "x86_64")]
    rules.insert(libc::SYS_open, with_tmpfile(1));
    rules
}

/// Makes `cmd`'s child unable to remove a file by its path (`unlink`,
/// and `unlinkat` from the current directory: `EROFS`), as on a file
/// system that turned read-only after an error; what the key store
/// removes relative to its directory handles (`unlinkat` of a descriptor)
/// goes through, so that only files outside the store are held.
pub fn refuse_unlinks_by_path(cmd: &mut Command) {
    let from_cwd = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Eq,
        u64::from(libc::AT_FDCWD as u32),
    )
    .expect("a valid seccomp condition");
    let mut rules = BTreeMap::new();
    rules.insert(
        libc::SYS_unlinkat,
        vec![SeccompRule::new(vec![from_cwd]).expect("a valid seccomp rule")],
    );
    #[cfg(target_arch = "x86_64")]
    rules.insert(libc::SYS_unlink, Vec::new());
    let program = compile(rules, libc::EROFS);
    // SAFETY: as in `refuse`
    unsafe {
        cmd.pre_exec(move || {
            seccompiler::apply_filter(&program).map_err(|err| match err {
                seccompiler::Error::Prctl(err) | seccompiler::Error::Seccomp(err) => err,
                _ => io::Error::from_raw_os_error(libc::EINVAL),
            })
        });
    }
}

/// `linkat` (and, where it exists, `link`), whatever the arguments.
fn link_rules() -> BTreeMap<i64, Vec<SeccompRule>> {
    let mut rules = BTreeMap::new();
    rules.insert(libc::SYS_linkat, Vec::new());
    #[cfg(target_arch = "x86_64")]
    rules.insert(libc::SYS_link, Vec::new());
    rules
}

/// A filter failing the calls of `rules` with `errno`, letting all else
/// through.
fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> BpfProgram {
    let arch = std::env::consts::ARCH
        .try_into()
        .expect("an architecture seccompiler knows");
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch,
    )
    .expect("a valid seccomp filter");
    filter.try_into().expect("a seccomp filter that compiles")
}

/// The syncs of one directory a child met ([`fail_dir_sync`],
/// [`swap_at_dir_sync`]); [`Self::count`] once the child has exited.
pub struct DirSyncs {
    /// The parent's copy of the child's end of the socket the child sends
    /// its listener over: closed by [`Self::count`], so that a child that
    /// never sent one ends the supervisor.
    child_end: Option<OwnedFd>,
    supervisor: Option<JoinHandle<io::Result<usize>>>,
}

impl DirSyncs {
    /// How many `fsync` calls of the directory were failed with `EIO`
    /// ([`fail_dir_sync`]), or had a file swapped before they went through
    /// ([`swap_at_dir_sync`]: at most one); call it once the child has
    /// exited.
    pub fn count(mut self) -> usize {
        drop(self.child_end.take());
        let supervisor = self.supervisor.take().expect("counted once");
        supervisor
            .join()
            .expect("the supervisor of directory syncs panicked")
            .unwrap_or_else(|err| panic!("supervising directory syncs failed - {err}"))
    }
}

/// Makes `cmd`'s child (and its children) fail each `fsync` of the
/// directory `dir` with `EIO`; every other `fsync` goes through. The
/// child must be spawned once, and [`DirSyncs::count`] called after
/// it exited.
pub fn fail_dir_sync(cmd: &mut Command, dir: &Path) -> DirSyncs {
    let dir = dir.canonicalize().expect("the directory to fail syncs of");
    supervise_fsyncs(cmd, move |on| {
        Ok(match on == dir {
            true => Answer::Fail(libc::EIO),
            false => Answer::Through,
        })
    })
}

/// Makes someone else swap a file under `cmd`'s child (and its children):
/// at the first `fsync` of the directory `dir` (which must exist) at which
/// `dir/name` exists, the file `planted` (on the same file system) is
/// renamed over `dir/name` while the child waits in that call, which then
/// goes through. So a child that renames its file to `name` and then syncs
/// `dir` finds another file at `name` once the sync returns. Every other
/// `fsync` goes through untouched. The child must be spawned once, and
/// [`DirSyncs::count`] (1 once swapped, else 0) called after it exited.
pub fn swap_at_dir_sync(cmd: &mut Command, dir: &Path, name: &str, planted: &Path) -> DirSyncs {
    let dir = dir.canonicalize().expect("the directory to swap a file in");
    let target = dir.join(name);
    let planted = planted.to_owned();
    let mut swapped = false;
    supervise_fsyncs(cmd, move |on| {
        if swapped || on != dir || target.symlink_metadata().is_err() {
            return Ok(Answer::Through);
        }
        std::fs::rename(&planted, &target)?;
        swapped = true;
        Ok(Answer::ThroughCounted)
    })
}

/// How the supervisor answers one `fsync` of the child.
enum Answer {
    /// Lets it go through.
    Through,
    /// Lets it go through, counted: something was done first.
    ThroughCounted,
    /// Fails it with this errno, counted.
    Fail(i32),
}

/// Hands every `fsync` of `cmd`'s child (and its children) to a thread of
/// this process, which answers it by `answer` of the path its descriptor
/// is open on.
fn supervise_fsyncs(
    cmd: &mut Command,
    answer: impl FnMut(&Path) -> io::Result<Answer> + Send + 'static,
) -> DirSyncs {
    let mut ends = [0; 2];
    // SAFETY: socketpair writes two descriptors into `ends`
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            ends.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "socketpair - {}", io::Error::last_os_error());
    // SAFETY: both are new descriptors that nothing else owns
    let (parent_end, child_end) =
        unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    let program = fsync_notify_program();
    let child_raw = child_end.as_raw_fd();
    // SAFETY: between fork and exec only prctl, seccomp, sendmsg and
    // close run, on memory prepared before the fork
    unsafe {
        cmd.pre_exec(move || install_fsync_listener(&program, child_raw));
    }
    let supervisor = std::thread::spawn(move || supervise(parent_end, answer));
    DirSyncs {
        child_end: Some(child_end),
        supervisor: Some(supervisor),
    }
}

/// The audit architecture of this build (`AUDIT_ARCH_*` of linux/audit.h).
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// A filter handing `fsync` of this architecture to the listener and
/// letting everything else through.
fn fsync_notify_program() -> Vec<libc::sock_filter> {
    let statement = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump_eq = |k: u32, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt: 0,
        jf,
        k,
    };
    let load = |offset: u32| statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    vec![
        load(4), // seccomp_data.arch
        jump_eq(AUDIT_ARCH, 3),
        load(0), // seccomp_data.nr
        jump_eq(libc::SYS_fsync as u32, 1),
        statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_USER_NOTIF),
        statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// In the child: installs `program` with a new listener and sends the
/// listener to the parent over `socket` (`SCM_RIGHTS`).
fn install_fsync_listener(program: &[libc::sock_filter], socket: RawFd) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl and seccomp with valid arguments; `fprog` outlives the calls
    let listener = unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if listener < 0 {
        return Err(io::Error::last_os_error());
    }
    let listener = listener as RawFd;
    let sent = send_fd(socket, listener);
    // SAFETY: the listener is this child's, sent (the parent has its own now)
    unsafe { libc::close(listener) };
    sent
}

/// Sends `fd` over the socket `socket`, allocating nothing.
fn send_fd(socket: RawFd, fd: RawFd) -> io::Result<()> {
    #[repr(C)]
    union Control {
        header: libc::cmsghdr,
        bytes: [u8; 64],
    }
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = Control { bytes: [0; 64] };
    // SAFETY: the message points at the buffers above, which outlive
    // sendmsg; CMSG_* stay within `control` (a descriptor needs 24 bytes)
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = (&raw mut control).cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as _;
        let header = libc::CMSG_FIRSTHDR(&msg);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<RawFd>(), fd);
        if libc::sendmsg(socket, &msg, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Receives a descriptor over `socket`; `None` if the other end closed
/// without sending one (the child never got to install its filter).
fn receive_fd(socket: &OwnedFd) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 8];
    // SAFETY: the message points at the buffers above, which outlive
    // recvmsg; the descriptor read is one the kernel just installed
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let received = libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        let header = libc::CMSG_FIRSTHDR(&msg);
        if received == 0 || header.is_null() || (*header).cmsg_type != libc::SCM_RIGHTS {
            return Ok(None);
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<RawFd>());
        Ok(Some(OwnedFd::from_raw_fd(fd)))
    }
}

/// The parent's side: answers each `fsync` of the child by `answer`,
/// until no process uses the filter any more; returns how many answers
/// were counted.
fn supervise(
    socket: OwnedFd,
    mut answer: impl FnMut(&Path) -> io::Result<Answer>,
) -> io::Result<usize> {
    let Some(listener) = receive_fd(&socket)? else {
        return Ok(0);
    };
    let mut counted = 0;
    loop {
        let mut poll = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, valid for the call
        if unsafe { libc::poll(&mut poll, 1, -1) } < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if poll.revents & libc::POLLIN == 0 {
            return Ok(counted); // POLLHUP: the child and its children are gone
        }
        // SAFETY: the kernel fills the zeroed notification
        let mut notification: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: the ioctl of a seccomp listener, with the struct it takes
        let rc = unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                &mut notification,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                // the caller died (ENOENT) or a signal came (EINTR)
                Some(libc::ENOENT | libc::EINTR) => continue,
                _ => return Err(err),
            }
        }
        let fd = notification.data.args[0];
        let on = std::fs::read_link(format!("/proc/{}/fd/{fd}", notification.pid))
            .unwrap_or_else(|_| PathBuf::new());
        // SAFETY: a zeroed response, filled below
        let mut response: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
        response.id = notification.id;
        match answer(&on)? {
            Answer::Through => {
                response.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
            }
            Answer::ThroughCounted => {
                response.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
                counted += 1;
            }
            Answer::Fail(errno) => {
                response.error = -errno;
                counted += 1;
            }
        }
        // SAFETY: the ioctl of a seccomp listener, with the struct it takes;
        // ENOENT: the caller died meanwhile
        let rc = unsafe {
            libc::ioctl(
                listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &response,
            )
        };
        if rc < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT) {
            return Err(io::Error::last_os_error());
        }
    }
}
