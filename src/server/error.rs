//! [`HttpError`] and how errors become HTTP status codes.

use anyhow::Error;
use hyper::StatusCode;

use proxmox_schema::ParameterError;

use pbs_config::KeystoreError;
use pbs_config::cached_user_info::PermissionDenied;
use pbs_config::rotation::RotateError;
use pbs_config::without_holders;
use pbs_key_config::KeyError;

use crate::api2::access::ticket::AuthenticationFailure;
use crate::auth_helpers::TicketError;
use crate::server::router::MethodNotAllowed;

/// An error with the HTTP status to answer it with.
#[derive(Debug, Clone)]
pub struct HttpError {
    /// The status.
    pub code: StatusCode,
    /// The message (the plain-text response body).
    pub message: String,
}

impl HttpError {
    /// An error answered with `code`.
    pub fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// Builds an [`anyhow::Error`] holding an [`HttpError`].
#[macro_export]
macro_rules! http_err {
    ($code:ident, $($fmt:tt)+) => {
        ::anyhow::Error::from($crate::server::error::HttpError::new(
            ::hyper::StatusCode::$code,
            format!($($fmt)+),
        ))
    };
}

/// Returns early with an [`http_err!`] error.
#[macro_export]
macro_rules! http_bail {
    ($code:ident, $($fmt:tt)+) => {
        return Err($crate::http_err!($code, $($fmt)+))
    };
}

/// The status an error is answered with: its own for an [`HttpError`], 405
/// for a [`MethodNotAllowed`], 400
/// for bad parameters, keys and refused keystore operations (as upstream),
/// 404 for a missing key (in the store or the trash), a missing sync job or
/// rotation of a key rotation, 400 for a refused rotation, 401 for failed authentication, 403 for a missing
/// privilege, 500 for anything else (I/O, broken config files).
pub fn status_of(err: &Error) -> StatusCode {
    for cause in err.chain() {
        if let Some(http) = cause.downcast_ref::<HttpError>() {
            return http.code;
        }
        if cause.is::<MethodNotAllowed>() {
            return MethodNotAllowed::STATUS;
        }
        if cause.is::<ParameterError>() || cause.is::<KeyError>() {
            return StatusCode::BAD_REQUEST;
        }
        if cause.is::<PermissionDenied>() {
            return StatusCode::FORBIDDEN;
        }
        if cause.is::<AuthenticationFailure>() || cause.is::<TicketError>() {
            return StatusCode::UNAUTHORIZED;
        }
        if let Some(refused) = cause.downcast_ref::<RotateError>() {
            return match refused {
                RotateError::NoRotation { .. } | RotateError::NoSuchJob { .. } => {
                    StatusCode::NOT_FOUND
                }
                _ => StatusCode::BAD_REQUEST,
            };
        }
        if let Some(keystore) = cause.downcast_ref::<KeystoreError>() {
            return match keystore {
                KeystoreError::NotFound { .. } | KeystoreError::NotInTrash { .. } => {
                    StatusCode::NOT_FOUND
                }
                _ => StatusCode::BAD_REQUEST,
            };
        }
    }
    StatusCode::INTERNAL_SERVER_ERROR
}

/// The message an error is answered with: the [`HttpError`]'s message,
/// else the whole chain (`what failed - why`); a lock timeout in it says
/// that another process holds the lock, not which one
/// ([`without_holders`], finding 39).
pub fn message_of(err: &Error) -> String {
    let message = match err.downcast_ref::<HttpError>() {
        Some(http) => http.message.clone(),
        None => err.to_string(),
    };
    without_holders(&message).into_owned()
}
