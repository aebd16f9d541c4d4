//! Fault injection in one process: key files replaced by a symlink or a
//! directory, symlinks where verify repairs modes, configs and key files of
//! 100 MB. After each: a clear error naming what failed, nothing changed,
//! and `verify` reports the store as it was (or as repairable).
//!
//! The faults that need other processes, mounts or users (full disk,
//! read-only file system, unwritable config dir, lock held past the
//! timeout) are in `tests/processes/`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use pbs_config::verify::{FindingKind, VerifyReport};

use pbs_test_kit::{TestDir, key_config};

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn kinds(report: &VerifyReport) -> Vec<(FindingKind, Option<String>)> {
    report
        .findings
        .iter()
        .map(|f| (f.kind, f.id.clone()))
        .collect()
}

/// A file outside the config dir, with a mode repair must never change.
fn outside_file(dir: &TestDir, name: &str) -> PathBuf {
    let outside = dir.path().with_extension(format!("outside-{name}"));
    std::fs::write(&outside, b"not part of the key store\n").unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
    outside
}

/// Every operation that reads the key file refuses a symlink or a
/// directory in its place, naming the file; verify reports it and
/// `--repair` leaves it (and whatever it points to) alone.
#[test]
fn key_file_replaced_by_a_symlink_or_a_directory() {
    for replacement in ["symlink", "directory"] {
        let dir = TestDir::new();
        let keys = dir.config.encryption_keys();
        keys.store_key("victim", &key_config(1)).unwrap();
        keys.store_key("bystander", &key_config(2)).unwrap();
        let key_path = keys.key_path("victim");

        // the genuine key file moved outside: a symlink to it would even
        // carry the right fingerprint
        let moved = dir.path().with_extension("moved.enc");
        std::fs::rename(&key_path, &moved).unwrap();
        match replacement {
            "symlink" => std::os::unix::fs::symlink(&moved, &key_path).unwrap(),
            _ => std::fs::create_dir(&key_path).unwrap(),
        }
        let what = if replacement == "symlink" {
            "is a symbolic link"
        } else {
            "is not a regular file"
        };
        let named = |err: &anyhow::Error| {
            let text = format!("{err:#}");
            assert!(
                text.contains("'victim'") && text.contains("victim.enc") && text.contains(what),
                "{replacement}: {text}"
            );
        };

        named(&keys.load_key_config("victim", false).unwrap_err());
        keys.archive_key("victim", None).unwrap();
        named(&keys.remove_key("victim", None).unwrap_err());
        let err = keys.store_key("victim", &key_config(3)).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        keys.load_key_config("bystander", true).unwrap();

        let before = dir.snapshot();
        for repair in [false, true] {
            let report = dir.config.verify(repair).unwrap();
            assert_eq!(
                kinds(&report),
                [(FindingKind::InvalidKeyFile, Some("victim".to_string()))],
                "{replacement}: {:#?}",
                report.findings
            );
            assert!(report.repaired.is_empty(), "{:#?}", report.repaired);
        }
        assert_eq!(
            dir.snapshot(),
            before,
            "{replacement}: repair changed files"
        );
        assert_eq!(
            mode_of(&moved),
            0o640,
            "{replacement}: the target was touched"
        );

        // the real file back in place: all is well again
        match replacement {
            "symlink" => std::fs::remove_file(&key_path).unwrap(),
            _ => std::fs::remove_dir(&key_path).unwrap(),
        }
        std::fs::rename(&moved, &key_path).unwrap();
        assert!(dir.config.verify(false).unwrap().is_clean());
        keys.remove_key("victim", None).unwrap();
    }
}

/// Regression test: `verify --repair` chmod-ed through symlinks. A lock
/// file, the config file or the key directory replaced by a symlink was
/// reported as "wrong mode" (the link's own 0777), and repair then set the
/// mode of whatever the link pointed to, outside the key store. (The config
/// file is no longer read through a symlink at all since main's
/// "never follow config symlinks", so verify now refuses to start there.)
#[test]
fn repair_does_not_chmod_through_symlinks() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("first", &key_config(1)).unwrap();

    // a key's lock file, pointing to a file outside
    let outside = outside_file(&dir, "lock");
    let lock = keys.key_lock_path("first");
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&outside, &lock).unwrap();

    let report = dir.config.verify(true).unwrap();
    assert_eq!(mode_of(&outside), 0o644, "repair chmod-ed the link target");
    let finding = report
        .findings
        .iter()
        .find(|f| f.path == lock)
        .unwrap_or_else(|| panic!("symlinked lock file not reported: {report:#?}"));
    assert_eq!(finding.kind, FindingKind::SymbolicLink, "{finding:#?}");
    assert!(!finding.repairable);
    assert!(finding.message.contains("symbolic link"), "{finding:#?}");
    assert!(std::fs::symlink_metadata(&lock).unwrap().is_symlink());
    std::fs::remove_file(&lock).unwrap();

    // the config file: not even read through a symlink, so verify names
    // it alone and checks nothing else
    let outside = outside_file(&dir, "cfg");
    let cfg = keys.config_path();
    std::fs::copy(&cfg, &outside).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::remove_file(&cfg).unwrap();
    std::os::unix::fs::symlink(&outside, &cfg).unwrap();
    let report = dir.config.verify(true).unwrap();
    let kinds: Vec<FindingKind> = report.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FindingKind::SymbolicLink], "{report:#?}");
    assert_eq!(report.findings[0].path, cfg);
    assert!(!report.findings[0].repairable);
    assert_eq!(mode_of(&outside), 0o644, "repair chmod-ed the link target");
    std::fs::remove_file(&cfg).unwrap();
    std::fs::copy(&outside, &cfg).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o640)).unwrap();

    // the key directory
    let key_dir = keys.key_dir();
    let moved = dir.path().with_extension("keys");
    std::fs::rename(&key_dir, &moved).unwrap();
    std::fs::set_permissions(&moved, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(&moved, &key_dir).unwrap();
    let report = dir.config.verify(true).unwrap();
    assert_eq!(mode_of(&moved), 0o755, "repair chmod-ed the link target");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.path == key_dir && f.kind == FindingKind::SymbolicLink),
        "{report:#?}"
    );
    std::fs::remove_file(&key_dir).unwrap();
    std::fs::rename(&moved, &key_dir).unwrap();
    std::fs::set_permissions(&key_dir, std::fs::Permissions::from_mode(0o750)).unwrap();

    assert!(
        dir.config.verify(true).unwrap().is_clean(),
        "store not clean after the links are gone"
    );
}

/// The size of the files this test makes huge (sparse): 100 MB.
const SIZE: u64 = 100 * 1024 * 1024;

/// Makes the file at `path` [`SIZE`] bytes long (sparse).
fn huge(path: &Path) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(SIZE).unwrap();
}

/// `err` of the operation `what` names `file`, its size and the limit.
#[track_caller]
fn assert_refused(what: &str, err: anyhow::Error, file: &str) {
    let text = format!("{err:#}");
    assert!(
        text.contains(file) && text.contains("100 MiB") && text.contains("64 MiB limit"),
        "{what}: {text}"
    );
}

/// Config files of 100 MB (sparse: the size alone is refused, before a
/// byte is read) make every operation fail naming the file and the limit;
/// a 100 MB key file is refused by load and reported by verify. Nothing
/// else changes.
#[test]
fn files_of_100_mb_are_refused_by_every_operation() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    let jobs = dir.config.sync_jobs();
    keys.store_key("first", &key_config(1)).unwrap();
    keys.store_key("old", &key_config(2)).unwrap();
    keys.archive_key("old", None).unwrap();
    std::fs::write(
        jobs.config_path(),
        "sync: job1\n\tstore local\n\tremote-store remote\n\tactive-encryption-key first\n",
    )
    .unwrap();

    a_huge_encryption_keys_cfg_fails_everything(&dir);
    a_huge_sync_cfg_fails_what_needs_the_jobs(&dir);
    a_huge_key_file_is_refused_and_reported(&dir);
}

/// A 100 MB encryption-keys.cfg: every operation fails naming it, nothing
/// changes.
fn a_huge_encryption_keys_cfg_fails_everything(dir: &TestDir) {
    let keys = dir.config.encryption_keys();
    let jobs = dir.config.sync_jobs();
    let cfg = keys.config_path();
    let saved = std::fs::read(&cfg).unwrap();
    huge(&cfg);
    let before = dir.snapshot_meta();
    let cfg_name = "encryption-keys.cfg";
    assert_refused("list", keys.list_keys(true).unwrap_err(), cfg_name);
    assert_refused(
        "load",
        keys.load_key_config("first", true).unwrap_err(),
        cfg_name,
    );
    assert_refused(
        "store",
        keys.store_key("new", &key_config(3))
            .map(|_| ())
            .unwrap_err(),
        cfg_name,
    );
    assert_refused(
        "archive",
        keys.archive_key("first", None).map(|_| ()).unwrap_err(),
        cfg_name,
    );
    assert_refused(
        "unarchive",
        keys.unarchive_key("old", None).map(|_| ()).unwrap_err(),
        cfg_name,
    );
    assert_refused(
        "delete",
        keys.remove_key("old", None).unwrap_err(),
        cfg_name,
    );
    assert_refused(
        "sync job update",
        jobs.edit(None, |edit| {
            let mut job = edit.job("job1")?.expect("job1");
            job.associated_key = job.active_encryption_key.take().map(|key| vec![key]);
            edit.set_job(&job)
        })
        .unwrap_err(),
        cfg_name,
    );
    assert_refused("verify", dir.config.verify(true).unwrap_err(), cfg_name);
    assert_eq!(
        dir.snapshot_meta(),
        before,
        "a refused operation changed files"
    );
    assert!(!keys.key_path("new").exists());
    std::fs::write(&cfg, &saved).unwrap();
    assert!(dir.config.verify(false).unwrap().is_clean());
}

/// A 100 MB sync.cfg: what needs the jobs fails, the rest works.
fn a_huge_sync_cfg_fails_what_needs_the_jobs(dir: &TestDir) {
    let keys = dir.config.encryption_keys();
    let jobs = dir.config.sync_jobs();
    let sync = jobs.config_path();
    let saved = std::fs::read(&sync).unwrap();
    huge(&sync);
    let before = dir.snapshot_meta();
    assert_refused(
        "archive",
        keys.archive_key("first", None).map(|_| ()).unwrap_err(),
        "sync.cfg",
    );
    assert_refused(
        "delete",
        keys.remove_key("old", None).unwrap_err(),
        "sync.cfg",
    );
    assert_refused("verify", dir.config.verify(false).unwrap_err(), "sync.cfg");
    // the key list and show say who needs a key: without the jobs, they
    // fail rather than guess
    use pbs_keystore::api2::config::encryption_keys::{
        ListFilter, list_keys_with_users, show_key_with_users,
    };
    assert_refused(
        "key list",
        list_keys_with_users(&dir.config, ListFilter::default(), |_| true)
            .map(|_| ())
            .unwrap_err(),
        "sync.cfg",
    );
    assert_refused(
        "key show",
        show_key_with_users(&dir.config, "first")
            .map(|_| ())
            .unwrap_err(),
        "sync.cfg",
    );
    assert_eq!(
        dir.snapshot_meta(),
        before,
        "a refused operation changed files"
    );
    keys.load_key_config("first", true).unwrap();
    keys.list_keys(true).unwrap();
    std::fs::write(&sync, &saved).unwrap();
}

/// A 100 MB key file: load and delete refuse it, verify reports it.
fn a_huge_key_file_is_refused_and_reported(dir: &TestDir) {
    let keys = dir.config.encryption_keys();
    let key_path = keys.key_path("old");
    let saved = std::fs::read(&key_path).unwrap();
    huge(&key_path);
    let err = format!("{:#}", keys.load_key_config("old", false).unwrap_err());
    assert!(
        err.contains("'old'") && err.contains("old.enc") && err.contains("larger than 65536"),
        "{err}"
    );
    let err = format!("{:#}", keys.remove_key("old", None).unwrap_err());
    assert!(err.contains("old.enc") && err.contains("65536"), "{err}");
    let report = dir.config.verify(true).unwrap();
    assert_eq!(
        kinds(&report),
        [(FindingKind::InvalidKeyFile, Some("old".to_string()))],
        "{report:#?}"
    );
    assert!(report.findings[0].message.contains("65536"), "{report:#?}");
    assert_eq!(std::fs::metadata(&key_path).unwrap().len(), SIZE);
    std::fs::write(&key_path, &saved).unwrap();
    assert!(dir.config.verify(false).unwrap().is_clean());
    keys.remove_key("old", None).unwrap();
}

/// Regression test: loading a key file reserved memory for the file's full
/// size before reading the first 64 KiB of it, so a sparse key file of
/// 1 TiB aborted the process (allocation failure) instead of being refused.
#[test]
fn sparse_key_file_of_one_tib_is_refused_not_allocated() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("sparse", &key_config(1)).unwrap();
    let key_path = keys.key_path("sparse");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&key_path)
        .unwrap();
    file.set_len(1 << 40).unwrap();

    let err = format!("{:#}", keys.load_key_config("sparse", false).unwrap_err());
    assert!(
        err.contains("'sparse'") && err.contains("larger than 65536"),
        "{err}"
    );
    let report = dir.config.verify(false).unwrap();
    assert_eq!(
        kinds(&report),
        [(FindingKind::InvalidKeyFile, Some("sparse".to_string()))]
    );
}

/// A change that would make `encryption-keys.cfg` larger than its readers
/// accept (64 MiB) is refused, naming the file and the limit, and the file
/// is left as it was: written, it would fail every list and load of a key
/// until someone cut it by hand. (A protected key's hint is stored in its
/// section: about 1,000 keys with hints of 64 KiB reach the limit through
/// the API.) The new key's file goes into the trash, as after any failed
/// config write, and the store still reads.
#[test]
fn a_config_write_past_the_readers_limit_is_refused() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("first", &key_config(1)).unwrap();
    let cfg = keys.config_path();
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    let limit = pbs_config::files::MAX_CONFIG_SIZE as usize;
    let hint = "h".repeat(60_000);
    for n in 0u32.. {
        let section = format!(
            "\nsync-key: long-hint-{n}\n\tcreated 1735689600\n\tfingerprint \
             00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:\
             {:02x}:{:02x}:{:02x}:{:02x}\n\thint {hint}\n\tkdf pbkdf2\n\tmodified 1735689600\n",
            n >> 24,
            (n >> 16) & 0xff,
            (n >> 8) & 0xff,
            n & 0xff
        );
        if text.len() + section.len() > limit - 100 {
            // the last hint fills up to 100 bytes below the limit
            let room = limit - 100 - text.len();
            if room > section.len() - hint.len() {
                text.push_str(
                    &section.replace(&hint, &hint[..room - (section.len() - hint.len())]),
                );
            }
            break;
        }
        text.push_str(&section);
    }
    std::fs::write(&cfg, &text).unwrap();
    assert!(text.len() <= limit && text.len() > limit - 1000);
    let listed = keys.list_keys(true).unwrap().0.len();

    let err = keys.store_key("over", &key_config(2)).unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("encryption-keys.cfg")
            && err.contains("more than the 64 MiB its readers accept")
            && err.contains("refusing to write it"),
        "{err}"
    );
    assert!(
        std::fs::read_to_string(&cfg).unwrap() == text,
        "the config changed"
    );
    assert_eq!(keys.list_keys(true).unwrap().0.len(), listed);
    assert!(!keys.key_path("over").exists());
    let trash = keys.trash().list().unwrap();
    assert_eq!(
        trash
            .entries
            .iter()
            .map(|e| e.record.id.as_str())
            .collect::<Vec<_>>(),
        ["over"],
        "{trash:?}"
    );
}

/// A protected key whose hint makes its key file larger than a key file is
/// read (`MAX_KEY_FILE_SIZE`, 64 KiB) is refused as bad input, naming the
/// hint, and nothing is written: stored, every load of it would fail, the
/// key as good as lost (a bundle's key file, from another host, may carry
/// any hint up to the bundle's 64 MiB; before, it was stored). The largest
/// key file a load reads is stored and loads.
#[test]
fn a_hint_that_makes_a_key_file_unreadable_is_refused() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("first", &key_config(1)).unwrap();
    let before = dir.snapshot();
    let limit = pbs_key_config::MAX_KEY_FILE_SIZE as usize;
    let mut protected =
        pbs_key_config::KeyConfig::with_key(&[4; 32], b"a passphrase", pbs_api_types::Kdf::PBKDF2)
            .unwrap();
    protected.hint = Some("h".to_string());
    let one = protected.to_json().unwrap().len();
    // a key file one byte over the limit
    protected.hint = Some("h".repeat(limit - one + 2));
    assert_eq!(protected.to_json().unwrap().len(), limit + 1);
    let Err(err) = keys.store_key("long-hint", &protected) else {
        panic!("a key file of {} bytes was stored", limit + 1);
    };
    let text = format!("{err:#}");
    assert!(
        text.contains("'hint'") && text.contains("it could never be loaded"),
        "{text}"
    );
    assert_eq!(dir.snapshot(), before, "a refused store changed files");

    // one byte less: stored, and it loads
    protected.hint = Some("h".repeat(limit - one + 1));
    keys.store_key("long-hint", &protected).unwrap();
    let loaded = keys.load_key_config("long-hint", true).unwrap();
    assert_eq!(loaded.hint, protected.hint);
    let report = dir.config.verify(false).unwrap();
    assert!(report.is_clean(), "{:?}", kinds(&report));
}
