//! API handlers, one module per API path below `/api2/json`.
//!
//! Handlers are plain functions over the library: no HTTP, no privilege
//! checks (the server checks privileges before calling, the CLI runs as the
//! administrator). Their parameter schemas are `const` items the server uses
//! to parse and validate requests.

pub mod access;
pub mod config;
pub mod version;
