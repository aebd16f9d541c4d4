//! The scene of the hostile `backup` user tests (issue 14): a config dir
//! the `backup` user owns (as upstream's `/etc/proxmox-backup`), a
//! directory beside it that only root may enter, and what the tests check
//! afterwards: that nothing in the root-only directory changed (down to
//! its inodes and ctimes, so even a chown or chmod to the same values
//! shows), that no key bytes exist outside the key directory, and a daemon
//! that may fail to start.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use nix::unistd::{Gid, Uid, User};

use crate::support::manager;
use pbs_test_kit::ApiDaemon;
use pbs_test_kit::tmpfs::Tmpfs;

/// The exit status of a failed CLI command (upstream's).
pub const EXIT_ERROR: i32 = 255;

/// The `backup` user's uid and gid.
pub fn backup_ids() -> (Uid, Gid) {
    let user = User::from_name("backup")
        .unwrap()
        .expect("a 'backup' user (adduser --system backup)");
    (user.uid, user.gid)
}

/// A temp dir holding `config` (backup:backup 0700, as upstream) and
/// `root-only` (root:root 0700).
pub struct Scene {
    /// A tmpfs the config dir is, if any ([`Scene::on_tmpfs`]): held only
    /// to be unmounted when dropped, before `tmp` is removed (declared
    /// first, dropped first).
    _tmpfs: Option<Tmpfs>,
    /// Holds both; removed when dropped.
    pub tmp: tempfile::TempDir,
    /// The config dir.
    pub dir: PathBuf,
    /// The directory only root may enter.
    pub root_only: PathBuf,
}

impl Scene {
    /// A new scene; `None` (after a "skipped" line) unless running as root.
    pub fn new() -> Option<Self> {
        Self::create(None)
    }

    /// [`Scene::new`] with the config dir a tmpfs of `size` (e.g. `1m`) of
    /// its own, which the `backup` user can fill: a file system that keeps
    /// no blocks for root, as ZFS and XFS.
    pub fn on_tmpfs(size: &str) -> Option<Self> {
        Self::create(Some(size))
    }

    fn create(tmpfs_size: Option<&str>) -> Option<Self> {
        if !nix::unistd::geteuid().is_root() {
            println!("    skipped: the backup user's attacks need root (CI runs as root)");
            return None;
        }
        let tmp = tempfile::tempdir().unwrap();
        // backup must reach the config dir, as it reaches /etc/proxmox-backup
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = tmp.path().join("config");
        let tmpfs = tmpfs_size.map(|size| Tmpfs::mount(&dir, size));
        if tmpfs.is_none() {
            std::fs::create_dir(&dir).unwrap();
        }
        let (uid, gid) = backup_ids();
        std::os::unix::fs::chown(&dir, Some(uid.as_raw()), Some(gid.as_raw())).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let root_only = tmp.path().join("root-only");
        std::fs::create_dir(&root_only).unwrap();
        std::fs::set_permissions(&root_only, std::fs::Permissions::from_mode(0o700)).unwrap();
        Some(Self {
            _tmpfs: tmpfs,
            tmp,
            dir,
            root_only,
        })
    }

    /// Writes `data` to `name` in the root-only directory (root:root 0600).
    pub fn root_file(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.root_only.join(name);
        std::fs::write(&path, data).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// The path of `name` in the config dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Does what the `backup` user can do to `name` in its config dir:
    /// moves the entry (if any) to `NAME.moved` and puts a symbolic link
    /// to `target` (owned by backup) in its place.
    pub fn plant_symlink(&self, name: &str, target: &Path) {
        let path = self.path(name);
        if std::fs::symlink_metadata(&path).is_ok() {
            std::fs::rename(&path, self.path(&format!("{name}.moved"))).unwrap();
        }
        std::os::unix::fs::symlink(target, &path).unwrap();
        let (uid, gid) = backup_ids();
        std::os::unix::fs::lchown(&path, Some(uid.as_raw()), Some(gid.as_raw())).unwrap();
    }

    /// Puts a file of the `backup` user's own (backup:backup 0640) holding
    /// `data` in place of `name`.
    pub fn plant_own_file(&self, name: &str, data: &[u8]) {
        let path = self.path(name);
        if std::fs::symlink_metadata(&path).is_ok() {
            std::fs::rename(&path, self.path(&format!("{name}.moved"))).unwrap();
        }
        std::fs::write(&path, data).unwrap();
        let (uid, gid) = backup_ids();
        std::os::unix::fs::chown(&path, Some(uid.as_raw()), Some(gid.as_raw())).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    }

    /// Puts a FIFO in place of `name`.
    pub fn plant_fifo(&self, name: &str) {
        let path = self.path(name);
        if std::fs::symlink_metadata(&path).is_ok() {
            std::fs::rename(&path, self.path(&format!("{name}.moved"))).unwrap();
        }
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o660)).unwrap();
    }

    /// Undoes a plant: the moved entry back in place of `name`.
    pub fn restore(&self, name: &str) {
        let path = self.path(name);
        let _ = std::fs::remove_file(&path);
        let moved = self.path(&format!("{name}.moved"));
        if std::fs::symlink_metadata(&moved).is_ok() {
            std::fs::rename(moved, path).unwrap();
        }
    }

    /// Everything about the root-only directory and what is in it.
    pub fn root_only_snapshot(&self) -> Vec<TreeEntry> {
        tree_snapshot(&self.root_only)
    }

    /// Writes a `sync.cfg` with the job `job1` (root:backup 0640), which
    /// the CLI cannot create.
    pub fn sync_job(&self) {
        let path = self.path("sync.cfg");
        std::fs::write(&path, "sync: job1\n\tremote-store remote\n\tstore local\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let (_, gid) = backup_ids();
        std::os::unix::fs::chown(&path, Some(0), Some(gid.as_raw())).unwrap();
    }

    /// Runs `proxmox-backup-manager` as root on the config dir.
    pub fn manager(&self, args: &[&str]) -> pbs_test_kit::Run {
        manager(&self.dir, args, None)
    }

    /// Creates a key of each id through the CLI, as root.
    #[track_caller]
    pub fn create_keys(&self, ids: &[&str]) {
        for id in ids {
            self.ok(&["encryption-key", "create", id]);
        }
    }

    /// Runs `args` as root and asserts it succeeded.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) {
        let run = self.manager(args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
    }

    /// Creates the push job `nightly` with `key` as its active key.
    #[track_caller]
    pub fn push_job(&self, key: &str) {
        let mut args = job_args("nightly").to_vec();
        args.extend(["--sync-direction", "push", "--active-encryption-key", key]);
        self.ok(&args);
    }

    /// The keys `key-old` and `key-new`, and the push job `nightly` rotated
    /// from the first to the second: it keeps `key-old` (archived) for its
    /// older backups, as the previous active key.
    #[track_caller]
    pub fn rotated_job(&self) {
        self.create_keys(&["key-old", "key-new"]);
        self.push_job("key-old");
        self.ok(&[
            "sync-job",
            "update",
            "nightly",
            "--active-encryption-key",
            "key-new",
        ]);
        self.ok(&["encryption-key", "archive", "key-old"]);
    }
}

/// `sync-job create ID` of a job that names no key.
pub fn job_args(id: &str) -> [&str; 9] {
    [
        "sync-job",
        "create",
        id,
        "--store",
        "store1",
        "--remote",
        "remote1",
        "--remote-store",
        "store2",
    ]
}

/// One entry of a tree as [`tree_snapshot`] saw it.
#[derive(Debug, PartialEq, Eq)]
pub struct TreeEntry {
    /// Path relative to the snapshot's root ("" for the root itself).
    pub path: PathBuf,
    /// `mode` (type and permission bits), owner, group, inode, size.
    pub meta: (u32, u32, u32, u64, u64),
    /// Modification and status change times (a chown or chmod, even to the
    /// same values, changes the ctime).
    pub times: [(i64, i64); 2],
    /// A regular file's content, a link's target.
    pub content: Vec<u8>,
}

/// Every entry below `root` (and `root` itself), without following links.
pub fn tree_snapshot(root: &Path) -> Vec<TreeEntry> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let content = if meta.is_file() {
            std::fs::read(&path).unwrap()
        } else if meta.file_type().is_symlink() {
            std::fs::read_link(&path)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else {
            Vec::new()
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        }
        out.push(TreeEntry {
            path: path.strip_prefix(root).unwrap().to_owned(),
            meta: (meta.mode(), meta.uid(), meta.gid(), meta.ino(), meta.len()),
            times: [
                (meta.mtime(), meta.mtime_nsec()),
                (meta.ctime(), meta.ctime_nsec()),
            ],
            content,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Panics, listing the differences, unless `after` equals `before`.
pub fn assert_tree_unchanged(before: &[TreeEntry], after: &[TreeEntry], what: &str) {
    if before == after {
        return;
    }
    let mut diff = String::new();
    for entry in after {
        match before.iter().find(|b| b.path == entry.path) {
            None => diff.push_str(&format!("  created: {:?} {:?}\n", entry.path, entry.meta)),
            Some(old) if old != entry => diff.push_str(&format!(
                "  changed: {:?} {:?} {:?} -> {:?} {:?}\n",
                entry.path, old.meta, old.times, entry.meta, entry.times
            )),
            Some(_) => {}
        }
    }
    for entry in before {
        if !after.iter().any(|a| a.path == entry.path) {
            diff.push_str(&format!("  removed: {:?}\n", entry.path));
        }
    }
    panic!("{what}: the root-only directory changed:\n{diff}");
}

/// The raw bytes of an unprotected key (KeyConfig JSON), for the scans of
/// [`files_holding_key_bytes`].
pub fn key_bytes_of(key_json: &str) -> Vec<u8> {
    use base64::Engine;
    let value: serde_json::Value = serde_json::from_str(key_json).expect("KeyConfig JSON");
    base64::engine::general_purpose::STANDARD
        .decode(value["data"].as_str().expect("an unprotected key"))
        .unwrap()
}

/// Regular files below `root` (links not followed; `skip(path)` left out)
/// that hold any of `keys`, raw or in base64.
pub fn files_holding_key_bytes(
    root: &Path,
    keys: &[Vec<u8>],
    skip: impl Fn(&Path) -> bool,
) -> Vec<PathBuf> {
    use base64::Engine;
    let needles: Vec<Vec<u8>> = keys
        .iter()
        .flat_map(|key| {
            [
                key.clone(),
                base64::engine::general_purpose::STANDARD
                    .encode(key)
                    .into_bytes(),
            ]
        })
        .collect();
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        } else if meta.is_file() && !skip(&path) {
            let data = std::fs::read(&path).unwrap_or_default();
            if needles
                .iter()
                .any(|needle| data.windows(needle.len()).any(|w| w == needle.as_slice()))
            {
                found.push(path);
            }
        }
    }
    found
}

/// A daemon that started, killed and reaped when dropped.
pub struct Daemon {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Daemon {
    /// Sends SIGTERM and waits at most `bound` for the daemon to exit;
    /// returns its exit status, or `None` if it was still running (it is
    /// killed then).
    pub fn terminate_within(
        mut self,
        bound: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take().unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait().unwrap();
            let _ = tx.send(status);
        });
        let status = rx.recv_timeout(bound).ok();
        if status.is_none() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        waiter.join().unwrap();
        status
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the daemon on `dir` (stderr into `log`): the daemon once it said
/// it listens, or its log if it exited instead.
pub fn try_start_daemon(dir: &Path, log: &Path) -> Result<Daemon, String> {
    try_start_daemon_with(dir, log, &[])
}

/// [`try_start_daemon`] with `extra` arguments.
pub fn try_start_daemon_with(dir: &Path, log: &Path, extra: &[&str]) -> Result<Daemon, String> {
    let mut cmd = ApiDaemon::command(dir, extra);
    cmd.env_remove("PBS_FAILPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()));
    let mut child = cmd.spawn().expect("start proxmox-backup-api");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    if let Some(port) = line
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|port| port.parse().ok())
    {
        return Ok(Daemon {
            child: Some(child),
            port,
        });
    }
    let status = child.wait().unwrap();
    let mut text = String::new();
    std::fs::File::open(log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    Err(format!("{status}: {text}"))
}

/// Starts the daemon on `dir`, which must work.
pub fn start_daemon(dir: &Path, log: &Path) -> Daemon {
    start_daemon_with(dir, log, &[])
}

/// [`start_daemon`] with `extra` arguments.
pub fn start_daemon_with(dir: &Path, log: &Path, extra: &[&str]) -> Daemon {
    try_start_daemon_with(dir, log, extra)
        .unwrap_or_else(|log| panic!("the daemon did not start: {log}"))
}

/// What [`setup_access`] made: a user with a password and a token, both
/// Admin on `/`.
pub struct Access {
    /// `PBSAPIToken=alice@pbs!tk:SECRET`.
    pub token_auth: String,
}

/// The password of `alice@pbs`.
pub const ALICE_PASSWORD: &str = "alice-pass-1";

/// Creates `alice@pbs` (password [`ALICE_PASSWORD`]) and its token `t`,
/// both Admin on `/`, with the CLI.
pub fn setup_access(scene: &Scene) -> Access {
    let run = scene.manager(&["user", "create", "alice@pbs", "--password", ALICE_PASSWORD]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = scene.manager(&[
        "--output-format",
        "json",
        "user",
        "generate-token",
        "alice@pbs",
        "tk",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let secret = value["value"].as_str().unwrap().to_string();
    for auth_id in ["alice@pbs", "alice@pbs!tk"] {
        let run = scene.manager(&["acl", "update", "/", "Admin", "--auth-id", auth_id]);
        assert_eq!(run.code, 0, "{run:?}");
    }
    Access {
        token_auth: format!("PBSAPIToken=alice@pbs!tk:{secret}"),
    }
}

/// A form body for a login.
pub fn login_form(user: &str, password: &str) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!("username={}&password={}", encode(user), encode(password))
}
