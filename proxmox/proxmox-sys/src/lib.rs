//! System helpers, mirroring the `proxmox-sys` crate of proxmox-rs.
//!
//! Implemented: [`fs`] (create options, atomic file replacement, directory
//! creation, reading optional files, `flock` with a timeout), [`linux`]
//! (random bytes from the OS) and [`crypt`] (`crypt(3)` password hashes through
//! the system's libcrypt). Upstream's process, terminal, logging and
//! `procfs` modules are left out.
//!
//! Every error names the path it concerns.

#![deny(missing_docs)]

pub mod crypt;
pub mod fs;
pub mod linux;
