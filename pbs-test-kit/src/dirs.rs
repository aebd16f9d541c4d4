//! Temporary config dirs, "nothing changed" snapshots, and the golden
//! vectors of the real upstream implementation.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A temporary config dir with its [`ConfigDir`](pbs_config::ConfigDir)
/// context: the temp dir is the config dir.
pub struct TestDir {
    dir: tempfile::TempDir,
    /// The context, with the ownership policy of this process.
    pub config: pbs_config::ConfigDir,
}

impl Default for TestDir {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDir {
    /// A new, empty config dir.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = pbs_config::ConfigDir::new(dir.path()).expect("config dir context");
        Self { dir, config }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Every file below the dir with its content, for "nothing changed" checks.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
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

    /// Every file below the dir with size, mode, inode and mtime, without
    /// reading contents: "nothing changed" checks next to huge files.
    pub fn snapshot_meta(&self) -> Vec<(PathBuf, u64, u32, u64, i64, i64)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64, u32, u64, i64, i64)>) {
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

/// A temp dir holding a config dir `config` and, beside it, the daemon's
/// logs and the test's input and output files (which so never show up in
/// the config dir). Removed when dropped.
pub struct Sandbox {
    tmp: tempfile::TempDir,
    config: PathBuf,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A temp dir with an empty config dir in it.
    pub fn new() -> Self {
        let sandbox = Self::without_config_dir();
        std::fs::create_dir(&sandbox.config).expect("config dir");
        sandbox
    }

    /// A temp dir whose config dir does not exist yet (the first write
    /// creates it).
    pub fn without_config_dir() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let config = tmp.path().join("config");
        Self { tmp, config }
    }

    /// The config dir.
    pub fn config_dir(&self) -> &Path {
        &self.config
    }

    /// The temp dir.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `name` in the temp dir, beside the config dir.
    pub fn file(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// Every file below `dir` with its content, lock files and `skip` left
/// out: for "nothing changed" checks (a refused operation may create a
/// lock file).
pub fn snapshot(dir: &Path, skip: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
    walk_files(dir, |name| name.ends_with(".lck") || skip.contains(&name))
}

/// [`snapshot`] with the lock files in: only the names in `skip` are left
/// out.
pub fn snapshot_with_locks(dir: &Path, skip: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
    walk_files(dir, |name| skip.contains(&name))
}

fn walk_files(dir: &Path, left_out: impl Fn(&str) -> bool) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if !left_out(&name) {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// `../shared/vectors` next to the checkout, or `$PBS_VECTORS_DIR`.
///
/// Panics when the folder is missing: a conformance test must never pass
/// because it found nothing to check.
pub fn vectors_dir() -> PathBuf {
    let dir = match std::env::var_os("PBS_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        // this crate is one level below the checkout
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors"),
    };
    assert!(
        dir.is_dir(),
        "golden vectors not found at {dir:?}: check out ../shared or set PBS_VECTORS_DIR"
    );
    dir
}

/// Every file under `dir`, recursively, sorted (a vector folder walked as
/// a whole).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(dir).unwrap_or_else(|err| panic!("unable to list {dir:?} - {err}"))
    {
        let path = entry.unwrap().path();
        match path.is_dir() {
            true => files.extend(files_under(&path)),
            false => files.push(path),
        }
    }
    files.sort();
    files
}

/// The file names in `dir` ending in `suffix`, without it, sorted.
pub fn cases_with_suffix(dir: &Path, suffix: &str) -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("unable to list {dir:?} - {err}"))
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter_map(|name| name.strip_suffix(suffix).map(str::to_string))
        .collect();
    cases.sort();
    cases
}

/// Copies `configdir-example` (a real PBS host's config dir) into `target`
/// with upstream's key file mode (the vector folder itself is read-only, its
/// files 0444), and returns its `expect.json`.
pub fn copy_configdir_example(target: &Path) -> serde_json::Value {
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

/// The audit log of the store in the config dir `dir`, one JSON value per
/// record as written (none without a log).
pub fn audit_log_json(dir: &Path) -> Vec<serde_json::Value> {
    match std::fs::read_to_string(dir.join("encryption-keys/.audit/log")) {
        Ok(text) => text
            .lines()
            .map(|line| serde_json::from_str(line).expect("an audit record is JSON"))
            .collect(),
        Err(_) => Vec::new(),
    }
}
