//! System helpers, mirroring the `proxmox-sys` crate of proxmox-rs.
//!
//! Implemented: [`fs`] (create options, atomic file replacement, directory
//! creation, reading optional files, `flock` with a timeout), [`linux`]
//! (random bytes from the OS) and [`crypt`] (`crypt(3)` password hashes through
//! the system's libcrypt). Upstream's process, terminal, logging and
//! `procfs` modules are left out.
//!
//! Every error names the path it concerns.
//!
//! Beyond upstream's API (or shaped differently):
//! - [`fs::TmpFile`] and [`fs::write_tmp_file`]: a temp file beside its
//!   target that removes itself unless [`fs::TmpFile::persist`] renames it
//!   (upstream's [`fs::replace_file`] does both steps at once);
//!   [`fs::fsync_parent_dir`], which makes a rename or unlink durable;
//! - [`fs::into_utf8`]: file contents as text, refusing invalid UTF-8
//!   naming the path and line, never the bytes;
//! - [`fs::try_lock_file`] (one attempt, no blocking) and
//!   [`fs::FlockWait`] (a blocking `flock` on a duplicate descriptor that a
//!   caller can wait for with a deadline, or give up);
//! - [`fs::CreateOptions::get_perm`], `get_owner` and `get_group`;
//!   [`fs::CreateOptions::apply_to`] takes a `&File` (upstream: any
//!   `AsRawFd`);
//! - [`linux::random_data`] returns a `[u8; N]` (upstream: a `Vec` of a
//!   size given at run time); [`linux::os_random_data`] is the same straight
//!   from `getrandom(2)`, for temp file names;
//! - [`mm::prefault_for_write`]: the pages of a buffer made present in
//!   one system call before a `read` fills it;
//! - [`huge_pages`]: a large file read into transparent huge pages
//!   ([`huge_pages::TextBuf`]: text in a `String` or such a buffer), and
//!   the next part of the heap in them, for processes that opt in;
//! - [`crypt::ACCEPTED_PREFIXES`], the hash kinds
//!   [`crypt::verify_crypt_pw`] accepts (upstream accepts what libcrypt
//!   does).

#![deny(missing_docs)]

pub mod crypt;
pub mod fs;
pub mod huge_pages;
pub mod linux;
pub mod mm;
