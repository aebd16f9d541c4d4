//! `/config/...`: configuration objects.

pub mod encryption_keys;
