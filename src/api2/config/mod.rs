//! `/config/...`: configuration objects.

pub mod encryption_keys;
pub mod sync;
