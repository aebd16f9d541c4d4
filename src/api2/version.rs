//! `/version`: what is running.

use anyhow::Error;
use serde::Serialize;
use serde_json::Value;

use proxmox_router::{ApiHandler, ApiMethod, Permission, ReturnType, Router, RpcEnvironment};
use proxmox_schema::{ObjectSchema, Schema};

use crate::api2::described_object;

/// The answer of `GET /version`, shaped as upstream's `ApiVersionInfo`:
/// `version` is major.minor, `release` the patch level, so clients print
/// `{version}.{release}` and parse `release` as a number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// Major and minor version (`0.1`).
    pub version: String,
    /// Patch level (`0`).
    pub release: String,
    /// Git commit the binary was built from (`PBS_REPOID` at build time),
    /// or `unknown`.
    pub repoid: String,
}

/// Version information of this build.
pub fn version() -> VersionInfo {
    VersionInfo {
        version: concat!(
            env!("CARGO_PKG_VERSION_MAJOR"),
            ".",
            env!("CARGO_PKG_VERSION_MINOR")
        )
        .to_string(),
        release: env!("CARGO_PKG_VERSION_PATCH").to_string(),
        repoid: option_env!("PBS_REPOID").unwrap_or("unknown").to_string(),
    }
}

/// Parameters of `GET /version`: none.
pub const API_METHOD_VERSION_PARAMETERS: ObjectSchema =
    ObjectSchema::new("Version information of the daemon.", &[]);

const VERSION_INFO_SCHEMA: Schema =
    described_object("version (major.minor), release (patch level) and repoid (VersionInfo).");

/// `GET /version`: [`version`].
pub const API_METHOD_VERSION: ApiMethod = ApiMethod::new(
    &ApiHandler::Sync(&api_version),
    &API_METHOD_VERSION_PARAMETERS,
)
.returns(ReturnType::new(false, &VERSION_INFO_SCHEMA))
.access(None, &Permission::Anybody);

fn api_version(
    _param: Value,
    _method: &ApiMethod,
    _rpcenv: &mut dyn RpcEnvironment,
) -> Result<Value, Error> {
    Ok(serde_json::to_value(version())?)
}

/// The routes of `/version`.
pub const ROUTER: Router = Router::new().get(&API_METHOD_VERSION);

#[cfg(test)]
mod tests {
    #[test]
    fn version_and_release_make_the_package_version() {
        let info = super::version();
        assert_eq!(info.version.matches('.').count(), 1, "{}", info.version);
        assert!(info.release.parse::<u64>().is_ok(), "{}", info.release);
        assert_eq!(
            format!("{}.{}", info.version, info.release),
            env!("CARGO_PKG_VERSION")
        );
    }
}
