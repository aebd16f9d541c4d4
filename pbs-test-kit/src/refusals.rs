//! A child process whose file systems refuse what vfat, exfat or a network
//! file system refuses: unnamed files (`O_TMPFILE`) and hard links.
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

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

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
