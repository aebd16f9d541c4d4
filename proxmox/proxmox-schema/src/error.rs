//! [`ParameterError`]: verification errors collected per parameter name.

use std::fmt;

use anyhow::Error;

/// Errors of a parameter or object verification, one entry per offending
/// parameter, so callers (an API handler answering 400, a test asserting which
/// parameter was bad) can recover the names with `downcast_ref`.
#[derive(Debug, Default)]
pub struct ParameterError {
    error_list: Vec<(String, Error)>,
}

impl ParameterError {
    /// An empty error list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error for the parameter `name`.
    pub fn push(&mut self, name: String, err: Error) {
        self.error_list.push((name, err));
    }

    /// Records `err` under `prefix`: nested parameter errors keep their own
    /// names as `prefix/name`, anything else is recorded as `prefix`.
    pub fn add_errors(&mut self, prefix: &str, err: Error) {
        match err.downcast::<ParameterError>() {
            Ok(inner) => {
                for (name, err) in inner.error_list {
                    let name = if prefix.is_empty() {
                        name
                    } else {
                        format!("{prefix}/{name}")
                    };
                    self.error_list.push((name, err));
                }
            }
            Err(err) => self.push(prefix.to_string(), err),
        }
    }

    /// Number of recorded errors.
    pub fn len(&self) -> usize {
        self.error_list.len()
    }

    /// Whether no error was recorded.
    pub fn is_empty(&self) -> bool {
        self.error_list.is_empty()
    }

    /// The recorded `(parameter name, error)` pairs.
    pub fn errors(&self) -> &[(String, Error)] {
        &self.error_list
    }

    /// The names of the offending parameters.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.error_list.iter().map(|(name, _)| name.as_str())
    }
}

impl std::error::Error for ParameterError {}

impl fmt::Display for ParameterError {
    /// One error: `parameter 'NAME': MESSAGE`. Several: upstream's
    /// "parameter verification errors" block, one line each.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error_list.as_slice() {
            [] => write!(f, "no parameter errors"),
            [(name, err)] => write!(f, "parameter '{name}': {err}"),
            list => {
                write!(f, "parameter verification errors")?;
                for (name, err) in list {
                    write!(f, "\n\nparameter '{name}': {err}")?;
                }
                Ok(())
            }
        }
    }
}

impl From<(&str, Error)> for ParameterError {
    fn from((name, err): (&str, Error)) -> Self {
        let mut this = Self::new();
        this.push(name.to_string(), err);
        this
    }
}

/// Builds an [`anyhow::Error`] holding a [`ParameterError`] for one parameter.
///
/// ```
/// let err = proxmox_schema::param_format_err!("digest", "detected modified configuration");
/// assert_eq!(err.to_string(), "parameter 'digest': detected modified configuration");
/// assert!(err.downcast_ref::<proxmox_schema::ParameterError>().is_some());
/// ```
#[macro_export]
macro_rules! param_format_err {
    ($name:expr, $($fmt:tt)+) => {
        ::anyhow::Error::from($crate::ParameterError::from((
            $name,
            ::anyhow::format_err!($($fmt)+),
        )))
    };
}

/// Returns early with a [`param_format_err!`] error.
#[macro_export]
macro_rules! param_bail {
    ($name:expr, $($fmt:tt)+) => {
        return Err($crate::param_format_err!($name, $($fmt)+).into())
    };
}
