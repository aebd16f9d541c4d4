//! Fixtures shared by the benchmarks: realistic `encryption-keys.cfg` text
//! and config dirs with N keys already stored.
//!
//! Large configs are generated as text (only the keys a benchmark loads,
//! stores or deletes get a real key file), because storing 100,000 keys one
//! by one would take minutes of fsyncs. The text is exactly what
//! `SectionConfig::write` produces (checked in [`config_text`]), so parsing
//! it costs what parsing a real host's file costs.

#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pbs_config::ConfigDir;
use pbs_config::encryption_keys::CONFIG;
use pbs_test_kit::key_config;

/// The key counts of the parse and write benchmarks.
pub const PARSE_SIZES: [usize; 4] = [100, 1_000, 10_000, 100_000];

/// The key counts of the store, load, archive and delete benchmarks.
pub const STORE_SIZES: [usize; 3] = [10, 1_000, 10_000];

/// Epoch of the generated entries (`created`, `modified`).
const CREATED: i64 = 1_775_840_036;

/// The id of generated key `i`, 13 characters, as a provider might name
/// one key per tenant.
pub fn key_id(i: usize) -> String {
    format!("tenant-{i:06}")
}

/// A fingerprint for generated key `i`: 32 bytes, distinct for every `i`,
/// in the config's colon-separated lower-case hex.
pub fn fingerprint(i: usize) -> String {
    let digest = openssl::sha::sha256(&(i as u64).to_le_bytes());
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(":")
}

/// `encryption-keys.cfg` text with `n` keys whose files are under
/// `base/encryption-keys/`: `created`, `fingerprint` (full 32 bytes),
/// `kdf none`, `modified`, `path`, and `archived-at` on every tenth key,
/// as `proxmox-backup-manager` writes it (about 250 bytes per key).
pub fn config_text(base: &Path, n: usize) -> String {
    use std::fmt::Write as _;

    let key_dir = base.join("encryption-keys");
    let key_dir = key_dir.display();
    let mut text = String::with_capacity(n * 260);
    for i in 0..n {
        if i > 0 {
            text.push('\n');
        }
        let id = key_id(i);
        let _ = writeln!(text, "sync-key: {id}");
        if i % 10 == 9 {
            let _ = writeln!(text, "\tarchived-at {}", CREATED + 86_400);
        }
        let _ = writeln!(text, "\tcreated {CREATED}");
        let _ = writeln!(text, "\tfingerprint {}", fingerprint(i));
        let _ = writeln!(text, "\tkdf none");
        let _ = writeln!(text, "\tmodified {CREATED}");
        let _ = writeln!(text, "\tpath {key_dir}/{id}.enc");
    }
    text
}

/// [`config_text`], checked once to be exactly what the writer produces
/// from its own parse (so the benchmarks parse a file the product wrote).
pub fn checked_config_text(base: &Path, n: usize) -> String {
    let text = config_text(base, n);
    let data = CONFIG
        .parse("bench.cfg", &text)
        .expect("generated config parses");
    assert_eq!(data.sections.len(), n);
    let written = CONFIG
        .write("bench.cfg", &data)
        .expect("generated config writes");
    assert!(
        written == text,
        "generated config text differs from what the writer produces"
    );
    text
}

/// The directory benchmarks put their config dirs in: under cargo's target
/// dir, so on the disk of the work tree (the durability floor is measured
/// there too). Override with `PBS_BENCH_DIR`.
pub fn scratch_root() -> PathBuf {
    match std::env::var_os("PBS_BENCH_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
    }
}

/// A fresh temporary directory under [`scratch_root`].
pub fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    let root = scratch_root();
    std::fs::create_dir_all(&root).expect("scratch root");
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(root)
        .expect("scratch dir")
}

/// Writes `data` to a temp file, fsyncs it, renames it over `name` in
/// `dir` and fsyncs the directory: what every durable replace costs at
/// least, on this disk (the durability floor).
pub fn replace_durably(dir: &Path, name: &str, data: &[u8]) {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp).unwrap();
    file.write_all(data).unwrap();
    file.sync_all().unwrap();
    drop(file);
    std::fs::rename(&tmp, dir.join(name)).unwrap();
    std::fs::File::open(dir).unwrap().sync_all().unwrap();
}

/// A config dir holding `n` keys: `n - real` generated entries without key
/// files plus `real` keys stored through `store_key` (ids `real-000000`...),
/// whose files exist, so they can be loaded, archived and deleted.
pub struct KeyStore {
    pub tmp: tempfile::TempDir,
    /// The shared context of the dir, as the daemon holds it.
    pub dir: Arc<ConfigDir>,
    /// Ids of the keys with real key files.
    pub real_ids: Vec<String>,
}

impl KeyStore {
    pub fn new(n: usize, real: usize) -> Self {
        assert!(real >= 1 && real <= n);
        let tmp = scratch_dir("keystore-");
        let dir = ConfigDir::shared(tmp.path()).expect("config dir");
        dir.ensure_base_dir().expect("config dir");
        let keys = dir.encryption_keys();
        // the real keys first, into an empty config: a store makes the key
        // directory only then (it refuses to make an empty one for a config
        // that lists keys)
        let real_ids: Vec<String> = (0..real).map(|i| format!("real-{i:06}")).collect();
        for (i, id) in real_ids.iter().enumerate() {
            keys.store_key(id, &key_config(i as u64))
                .expect("store a real key");
        }
        // then the generated entries before them, as if stored earlier
        let stored = std::fs::read_to_string(keys.config_path()).expect("read config");
        let text = match n - real {
            0 => stored,
            generated => format!("{}\n{stored}", config_text(dir.base(), generated)),
        };
        let config_lock = keys.lock_config().expect("lock config");
        dir.write_locked(text.as_bytes(), &config_lock, None)
            .expect("write config");
        drop(config_lock);
        assert_eq!(keys.index_data().expect("config parses").len(), n);
        Self { tmp, dir, real_ids }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// This store in upstream's layout: its config dir made the backup
    /// user's (0700, as `/etc/proxmox-backup`), so that root's writers
    /// there also take root's mirror locks and record each write in
    /// `encryption-keys/.locks/` (the bench's other config dirs are
    /// root's, where neither is needed). The first such write, which makes
    /// `.locks/`, is taken here. `None`, after saying so, where that cannot
    /// be done: it needs root and a `backup` user.
    pub fn in_upstream_layout(mut self) -> Option<Self> {
        let backup = nix::unistd::User::from_name("backup").ok().flatten();
        let Some(backup) = backup.filter(|_| nix::unistd::geteuid().is_root()) else {
            println!("(upstream's layout not measured: that needs root and a 'backup' user)");
            println!();
            return None;
        };
        nix::unistd::chown(self.path(), Some(backup.uid), Some(backup.gid))
            .expect("chown config dir");
        std::fs::set_permissions(self.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod config dir");
        self.dir = ConfigDir::shared(self.path()).expect("config dir");
        let keys = self.dir.encryption_keys();
        keys.store_key("upstream-layout", &key_config(9_000_000))
            .expect("first store in upstream's layout");
        keys.archive_key("upstream-layout", None)
            .expect("archive the first store's key");
        keys.remove_key("upstream-layout", None)
            .expect("remove the first store's key");
        Some(self)
    }
}
