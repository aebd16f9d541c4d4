//! `/version`: what is running.

use serde::Serialize;

/// The answer of `GET /version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// Package version (`0.1.0`).
    pub version: String,
    /// Release (major.minor, `0.1`).
    pub release: String,
    /// Git commit the binary was built from (`PBS_REPOID` at build time),
    /// or `unknown`.
    pub repoid: String,
}

/// Version information of this build.
pub fn version() -> VersionInfo {
    let version = env!("CARGO_PKG_VERSION").to_string();
    let release = version.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
    VersionInfo {
        version,
        release,
        repoid: option_env!("PBS_REPOID").unwrap_or("unknown").to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_is_major_minor() {
        let info = super::version();
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(info.release.matches('.').count(), 1, "{}", info.release);
        assert!(info.version.starts_with(&info.release));
    }
}
