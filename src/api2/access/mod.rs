//! `/access/...`: authentication.

pub mod ticket;
