//! Small language helpers, mirroring the `proxmox-lang` crate of proxmox-rs.
//!
//! Only the subset this workspace uses is implemented: [`try_block!`] to scope
//! `?` to a block so an error can be given context in one place, and the
//! [`io_format_err!`]/[`io_bail!`] pair for building `std::io::Error`s with a
//! message. Upstream's `c_str!`, `offsetof!` and the `ops` module are left out.
//!
//! Beyond upstream's API: [`error::ErrorLayer`], which prefixes an error with
//! context in the house style (`what failed - why`) while keeping the
//! original error reachable by `downcast_ref`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod error;

/// Evaluates a block in a closure so that `?` returns from the block, not from
/// the enclosing function.
///
/// This is how upstream attaches one piece of context to a whole sequence of
/// fallible steps:
///
/// ```
/// use anyhow::{format_err, Error};
/// use proxmox_lang::try_block;
///
/// fn parse_pair(text: &str) -> Result<(u8, u8), Error> {
///     try_block!({
///         let (a, b) = text.split_once(',').ok_or_else(|| format_err!("missing comma"))?;
///         Ok((a.trim().parse()?, b.trim().parse()?))
///     })
///     .map_err(|err: Error| format_err!("parsing pair {text:?} failed - {err}"))
/// }
///
/// assert_eq!(parse_pair("1, 2").unwrap(), (1, 2));
/// assert_eq!(
///     parse_pair("1;2").unwrap_err().to_string(),
///     "parsing pair \"1;2\" failed - missing comma",
/// );
/// ```
///
/// The block must be braced, as with upstream:
///
/// ```compile_fail
/// let x: Result<u8, ()> = proxmox_lang::try_block!(Ok(1));
/// ```
#[macro_export]
macro_rules! try_block {
    ({ $($token:tt)* }) => {{ (|| { $($token)* })() }};
}

/// Builds a `std::io::Error` of kind `Other` from a format string.
///
/// ```
/// let err = proxmox_lang::io_format_err!("lock {:?} busy", "/run/x.lck");
/// assert_eq!(err.kind(), std::io::ErrorKind::Other);
/// assert_eq!(err.to_string(), "lock \"/run/x.lck\" busy");
/// ```
#[macro_export]
macro_rules! io_format_err {
    ($($fmt:tt)+) => {
        ::std::io::Error::other(format!($($fmt)+))
    };
}

/// Returns early with an error built by [`io_format_err!`].
///
/// ```
/// fn check(n: u32) -> std::io::Result<u32> {
///     if n == 0 {
///         proxmox_lang::io_bail!("n must not be zero");
///     }
///     Ok(n)
/// }
/// assert_eq!(check(0).unwrap_err().to_string(), "n must not be zero");
/// ```
#[macro_export]
macro_rules! io_bail {
    ($($fmt:tt)+) => {
        return Err($crate::io_format_err!($($fmt)+))
    };
}
