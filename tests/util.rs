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

/// A temporary config dir with its [`ConfigDir`] context.
pub struct TestDir {
    dir: tempfile::TempDir,
    /// The context, with the ownership policy of this process.
    pub config: pbs_config::ConfigDir,
}

impl TestDir {
    /// A new, empty config dir.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = pbs_config::ConfigDir::new(dir.path()).expect("config dir context");
        Self { dir, config }
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Every file below the dir with its content, for "nothing changed" checks.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &std::path::Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    let data = std::fs::read(&path).unwrap_or_default();
                    out.push((path, data));
                }
            }
        }
        let mut out = Vec::new();
        walk(self.path(), &mut out);
        out.sort();
        out
    }
}

impl TestDir {
    /// Every file below the dir with size, mode, inode and mtime, without
    /// reading contents: "nothing changed" checks next to huge files.
    pub fn snapshot_meta(&self) -> Vec<(PathBuf, u64, u32, u64, i64, i64)> {
        use std::os::unix::fs::MetadataExt;
        fn walk(dir: &std::path::Path, out: &mut Vec<(PathBuf, u64, u32, u64, i64, i64)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    walk(&path, out);
                }
                let stamp = (meta.mtime(), meta.mtime_nsec());
                out.push((path, meta.len(), meta.mode(), meta.ino(), stamp.0, stamp.1));
            }
        }
        let mut out = Vec::new();
        walk(self.path(), &mut out);
        out.sort();
        out
    }
}

/// A fixed raw key: 32 bytes derived from `seed`.
pub fn raw_key(seed: u8) -> [u8; 32] {
    std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
}

/// An unprotected key config for [`raw_key`]`(seed)`.
pub fn key_config(seed: u8) -> pbs_key_config::KeyConfig {
    pbs_key_config::KeyConfig::without_password(raw_key(seed)).expect("key config")
}

/// Copies `configdir-example` (a real PBS host's config dir) into `target`
/// with upstream's key file mode (the vector folder itself is read-only, its
/// files 0444), and returns its `expect.json`.
pub fn copy_configdir_example(target: &std::path::Path) -> serde_json::Value {
    use std::os::unix::fs::PermissionsExt;

    let vectors = vectors_dir().join("configdir-example");
    let expect = serde_json::from_slice(&std::fs::read(vectors.join("expect.json")).unwrap())
        .expect("expect.json of configdir-example");
    std::fs::copy(
        vectors.join("encryption-keys.cfg"),
        target.join("encryption-keys.cfg"),
    )
    .unwrap();
    let key_dir = target.join("encryption-keys");
    std::fs::create_dir(&key_dir).unwrap();
    for entry in std::fs::read_dir(vectors.join("encryption-keys")).unwrap() {
        let entry = entry.unwrap();
        let copy = key_dir.join(entry.file_name());
        std::fs::copy(entry.path(), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
    expect
}

/// `CryptKey` values for property tests: ids from `id`, path and hint from
/// `text`, every kdf, any times, fingerprint and archive time or none.
pub fn crypt_key_strategy<T: proptest::strategy::Strategy<Value = String>>(
    id: impl proptest::strategy::Strategy<Value = String>,
    text: impl Fn() -> T,
) -> impl proptest::strategy::Strategy<Value = pbs_api_types::CryptKey> {
    use pbs_api_types::{CryptKey, Fingerprint, Kdf, KeyInfo};
    use proptest::prelude::*;
    (
        id,
        proptest::option::of(text()),
        prop_oneof![Just(Kdf::None), Just(Kdf::Scrypt), Just(Kdf::PBKDF2)],
        any::<i64>(),
        any::<i64>(),
        proptest::option::of(any::<[u8; 32]>()),
        proptest::option::of(text()),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(
            |(id, path, kdf, created, modified, fp, hint, archived_at)| CryptKey {
                id,
                info: KeyInfo {
                    path,
                    kdf,
                    created,
                    modified,
                    fingerprint: fp.map(Fingerprint::new),
                    hint,
                },
                archived_at,
            },
        )
}
