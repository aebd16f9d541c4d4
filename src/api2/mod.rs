//! API handlers, one module per API path below `/api2/json`.
//!
//! Handlers are plain functions over the library: no HTTP, no privilege
//! checks (the server checks privileges before calling, the CLI runs as the
//! administrator). Their parameter schemas are `const` items the server uses
//! to parse and validate requests.

pub mod access;
pub mod config;
pub mod version;

/// Test helpers shared by the handler modules.
#[cfg(test)]
pub(crate) mod test_util {
    use anyhow::Error;

    use proxmox_schema::ParameterError;

    /// The parameter names a handler error blames.
    pub fn param_names(err: &Error) -> Vec<String> {
        err.chain()
            .find_map(|e| e.downcast_ref::<ParameterError>())
            .map(|p| p.names().map(str::to_string).collect())
            .unwrap_or_default()
    }
}
