//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// `../shared/vectors` next to the checkout, or `$PBS_VECTORS_DIR`.
///
/// Panics when the folder is missing: a conformance test must never pass
/// because it found nothing to check.
pub fn vectors_dir() -> PathBuf {
    let dir = match std::env::var_os("PBS_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors"),
    };
    assert!(
        dir.is_dir(),
        "golden vectors not found at {dir:?}: check out ../shared or set PBS_VECTORS_DIR"
    );
    dir
}

/// The file names in `dir` ending in `suffix`, without it, sorted.
pub fn cases_with_suffix(dir: &std::path::Path, suffix: &str) -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("unable to list {dir:?} - {err}"))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| name.strip_suffix(suffix).map(str::to_string))
        .collect();
    cases.sort();
    cases
}
