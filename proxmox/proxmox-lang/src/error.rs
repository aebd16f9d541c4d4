//! Layering context onto errors: `what failed - why`, typed errors kept.

use std::fmt::Display;

use anyhow::Error;

/// Adds a layer of context to an error.
///
/// The new message is `"{context} - {error}"`, so plain `{}` formatting shows
/// the whole chain in the house style. The original error stays in the chain:
/// `downcast_ref` still finds a typed error raised further down.
///
/// ```
/// use anyhow::{Error, format_err};
/// use proxmox_lang::error::ErrorLayer;
///
/// #[derive(Debug)]
/// struct NotFound;
/// impl std::fmt::Display for NotFound {
///     fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
///         write!(f, "no such key")
///     }
/// }
/// impl std::error::Error for NotFound {}
///
/// let res: Result<(), Error> = Err(NotFound.into());
/// let err = res.layer_err(|| "failed to load 'k1'").unwrap_err();
/// assert_eq!(err.to_string(), "failed to load 'k1' - no such key");
/// assert!(err.downcast_ref::<NotFound>().is_some());
/// ```
pub trait ErrorLayer<T> {
    /// Prefixes the error with the context returned by `context`.
    fn layer_err<D: Display, F: FnOnce() -> D>(self, context: F) -> Result<T, Error>;
}

impl<T> ErrorLayer<T> for Result<T, Error> {
    fn layer_err<D: Display, F: FnOnce() -> D>(self, context: F) -> Result<T, Error> {
        self.map_err(|err| {
            let text = format!("{} - {err}", context());
            err.context(text)
        })
    }
}
