//! The key store library on real files: round trip, modes and owners,
//! fingerprint checks, bad input, verify and repair.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use pbs_api_types::CryptKey;
use pbs_config::KeystoreError;
use pbs_config::verify::FindingKind;
use pbs_key_config::KeyConfig;

use pbs_test_kit::{TestDir, key_config, raw_key};

fn keystore_error(err: &anyhow::Error) -> Option<&KeystoreError> {
    err.chain().find_map(|e| e.downcast_ref::<KeystoreError>())
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn round_trip_store_list_load_archive_unarchive_delete() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();

    let entry = keys.store_key("offsite-01", &key_config(1)).unwrap();
    assert_eq!(
        entry.info.path.as_deref(),
        Some(keys.key_path("offsite-01").to_str().unwrap())
    );
    keys.store_key("tape.02", &key_config(2)).unwrap();

    let (list, digest) = keys.list_keys(false).unwrap();
    let ids: Vec<&str> = list.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["offsite-01", "tape.02"]);

    let loaded = keys.load_key_config("offsite-01", true).unwrap();
    let no_pass = || -> Result<Vec<u8>, anyhow::Error> { anyhow::bail!("unprotected") };
    assert_eq!(loaded.decrypt(&no_pass).unwrap().0, raw_key(1));

    keys.archive_key("offsite-01", Some(&digest)).unwrap();
    let (active, _) = keys.list_keys(false).unwrap();
    assert_eq!(active.len(), 1);
    let (all, digest) = keys.list_keys(true).unwrap();
    assert!(
        all.iter()
            .find(|k| k.id == "offsite-01")
            .unwrap()
            .archived_at
            .is_some()
    );

    // archived: refused for encryption, fine for decryption
    let err = keys.load_key_config("offsite-01", true).unwrap_err();
    assert!(
        matches!(keystore_error(&err), Some(KeystoreError::Archived { .. })),
        "{err}"
    );
    keys.load_key_config("offsite-01", false).unwrap();

    keys.unarchive_key("offsite-01", Some(&digest)).unwrap();
    let err = keys.remove_key("offsite-01", None).unwrap_err();
    assert!(
        matches!(
            keystore_error(&err),
            Some(KeystoreError::NotArchived { .. })
        ),
        "{err}"
    );

    keys.archive_key("offsite-01", None).unwrap();
    keys.remove_key("offsite-01", None).unwrap();
    assert!(!keys.key_path("offsite-01").exists());
    assert!(!keys.key_lock_path("offsite-01").exists());
    let (list, _) = keys.list_keys(true).unwrap();
    assert_eq!(
        list.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
        ["tape.02"]
    );
    assert!(dir.config.verify(false).unwrap().is_clean());
}

#[test]
fn files_get_the_modes_and_owners_of_the_policy() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("mode-check", &key_config(3)).unwrap();
    let own = dir.config.ownership();

    for (path, mode, uid, gid) in [
        (keys.config_path(), 0o640, own.file_uid, own.file_gid),
        (keys.key_dir(), 0o750, own.file_uid, own.file_gid),
        (
            keys.key_path("mode-check"),
            0o640,
            own.file_uid,
            own.file_gid,
        ),
        (
            keys.dir()
                .path(pbs_config::files::ENCRYPTION_KEYS_LOCK.name),
            0o660,
            own.lock_uid,
            own.lock_gid,
        ),
        (
            keys.key_lock_path("mode-check"),
            0o660,
            own.lock_uid,
            own.lock_gid,
        ),
    ] {
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o7777, mode, "{path:?}");
        assert_eq!(
            (meta.uid(), meta.gid()),
            (uid.as_raw(), gid.as_raw()),
            "{path:?}"
        );
    }

    if nix::unistd::geteuid().is_root() {
        // CI runs as root with a backup user: root:backup files, backup:backup locks
        let backup = pbs_config::backup_user().unwrap();
        assert_eq!(own.policy, pbs_config::OwnershipPolicy::RootBackup);
        assert_eq!((own.file_uid.as_raw(), own.file_gid), (0, backup.gid));
        assert_eq!((own.lock_uid, own.lock_gid), (backup.uid, backup.gid));
    }
}

#[test]
fn swapped_or_changed_key_files_are_refused_naming_the_id() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("key-a", &key_config(4)).unwrap();
    keys.store_key("key-b", &key_config(5)).unwrap();

    // swap the two files
    std::fs::rename(keys.key_path("key-a"), dir.path().join("tmp")).unwrap();
    std::fs::rename(keys.key_path("key-b"), keys.key_path("key-a")).unwrap();
    std::fs::rename(dir.path().join("tmp"), keys.key_path("key-b")).unwrap();
    for id in ["key-a", "key-b"] {
        let err = keys.load_key_config(id, true).unwrap_err();
        assert!(
            matches!(
                keystore_error(&err),
                Some(KeystoreError::FingerprintMismatch { .. })
            ),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("'{id}'")), "{err}");
    }
    let report = dir.config.verify(false).unwrap();
    assert_eq!(
        report
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::FingerprintMismatch)
            .count(),
        2
    );

    // one byte of the key changed (the stored fingerprint no longer matches)
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("key-c", &key_config(6)).unwrap();
    let path = keys.key_path("key-c");
    let mut file = KeyConfig::load(&path).unwrap();
    file.data[0] ^= 1;
    std::fs::write(&path, file.to_json().unwrap()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = keys.load_key_config("key-c", true).unwrap_err().to_string();
    assert!(err.contains("'key-c'"), "{err}");
    assert!(err.contains("fingerprint"), "{err}");
}

#[test]
fn unsafe_modes_symlinks_and_directories_are_refused() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("key-m", &key_config(7)).unwrap();
    let path = keys.key_path("key-m");
    for mode in [0o644, 0o660, 0o642, 0o604] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = keys.load_key_config("key-m", true).unwrap_err().to_string();
        assert!(
            err.contains("unsafe mode") && err.contains("'key-m'"),
            "{mode:o}: {err}"
        );
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    keys.load_key_config("key-m", true).unwrap();

    let target = dir.path().join("elsewhere.enc");
    std::fs::rename(&path, &target).unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let err = keys.load_key_config("key-m", true).unwrap_err().to_string();
    assert!(err.contains("symbolic link"), "{err}");

    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let err = keys.load_key_config("key-m", true).unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");

    std::fs::remove_dir(&path).unwrap();
    let err = keys.load_key_config("key-m", true).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
}

#[test]
fn bad_input_changes_nothing() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("existing", &key_config(8)).unwrap();
    let before = dir.snapshot();

    for id in [
        "../x",
        "a",
        &"k".repeat(33),
        "with space",
        "schlüssel",
        ".hidden",
        "-dash",
    ] {
        let err = keys.store_key(id, &key_config(9)).unwrap_err().to_string();
        assert!(err.contains("invalid encryption key id"), "{id}: {err}");
    }
    let err = keys.store_key("existing", &key_config(9)).unwrap_err();
    assert!(matches!(
        keystore_error(&err),
        Some(KeystoreError::AlreadyExists { .. })
    ));
    let err = keys.store_key("same-key", &key_config(8)).unwrap_err();
    assert!(
        matches!(keystore_error(&err), Some(KeystoreError::DuplicateFingerprint { existing_id, .. }) if existing_id == "existing"),
        "{err}"
    );
    assert!(err.to_string().contains("'existing'"), "{err}");

    let (_, digest) = keys.list_keys(true).unwrap();
    let mut stale = digest;
    stale[0] ^= 1;
    let err = keys.archive_key("existing", Some(&stale)).unwrap_err();
    assert!(
        matches!(keystore_error(&err), Some(KeystoreError::DigestMismatch)),
        "{err}"
    );
    let err = keys.load_key_config("missing-key", false).unwrap_err();
    assert!(
        matches!(keystore_error(&err), Some(KeystoreError::NotFound { .. })),
        "{err}"
    );

    assert_eq!(dir.snapshot(), before, "bad input changed the store");
}

#[test]
fn hand_edited_paths() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("moved-key", &key_config(10)).unwrap();
    let cfg = std::fs::read_to_string(keys.config_path()).unwrap();
    let here = keys.key_path("moved-key").to_string_lossy().into_owned();

    // the same file under another config dir prefix: accepted, repair rewrites it
    let relocated = cfg.replace(&here, "/etc/proxmox-backup/encryption-keys/moved-key.enc");
    std::fs::write(keys.config_path(), &relocated).unwrap();
    keys.load_key_config("moved-key", true).unwrap();
    let report = dir.config.verify(true).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert!(
        report
            .repaired
            .iter()
            .any(|r| r.action.contains("rewrote path"))
    );
    assert_eq!(std::fs::read_to_string(keys.config_path()).unwrap(), cfg);

    // a path outside the key directory: refused for load and delete
    let outside = cfg.replace(&here, "/tmp/evil/moved-key.enc");
    std::fs::write(keys.config_path(), &outside).unwrap();
    let err = keys
        .load_key_config("moved-key", true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("refusing"), "{err}");
    keys.archive_key("moved-key", None).unwrap();
    let err = keys.remove_key("moved-key", None).unwrap_err().to_string();
    assert!(err.contains("refusing"), "{err}");
    assert!(keys.key_path("moved-key").exists());
}

#[test]
fn verify_repair_clears_leftovers_but_never_referenced_keys() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("kept", &key_config(11)).unwrap();
    let key_dir = keys.key_dir();
    // leftovers of crashes (an orphan holding another key than 'kept': a
    // copy of 'kept' would be named by its fingerprint, see tests/trash.rs)
    std::fs::write(
        key_dir.join("orphan.enc"),
        key_config(15).to_json().unwrap(),
    )
    .unwrap();
    std::fs::write(key_dir.join("kept.enc.tmp_AbC123"), b"{}").unwrap();
    std::fs::write(dir.path().join("encryption-keys.cfg.tmp_Zz9Yy8"), b"").unwrap();
    std::fs::write(key_dir.join("gone.enc.lck"), b"").unwrap();
    std::fs::set_permissions(
        keys.key_path("kept"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let report = dir.config.verify(false).unwrap();
    let mut kinds: Vec<FindingKind> = report.findings.iter().map(|f| f.kind).collect();
    kinds.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        kinds,
        [
            FindingKind::OrphanKeyFile,
            FindingKind::StaleLockFile,
            FindingKind::TempFile,
            FindingKind::TempFile,
            FindingKind::WrongMode,
        ]
    );

    let report = dir.config.verify(true).unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(report.repaired.len(), 5, "{:?}", report.repaired);
    assert_eq!(mode_of(&keys.key_path("kept")), 0o640);
    assert!(keys.key_path("kept").exists());
    keys.load_key_config("kept", true).unwrap();
    // the orphan and the key file's temp file went into the trash
    let trashed = keys.trash().list().unwrap();
    let mut reasons: Vec<_> = trashed
        .entries
        .iter()
        .map(|entry| (entry.record.id.as_str(), entry.record.reason))
        .collect();
    reasons.sort_by_key(|(id, _)| id.to_string());
    use pbs_config::trash::TrashReason;
    assert_eq!(
        reasons,
        [
            ("kept", TrashReason::RepairTemp),
            ("orphan", TrashReason::RepairOrphan)
        ]
    );
    assert_eq!(report.keys_in_trash, 2);

    // a referenced key file that is broken is reported, never removed
    std::fs::write(keys.key_path("kept"), b"garbage").unwrap();
    let report = dir.config.verify(true).unwrap();
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::InvalidKeyFile)
    );
    assert!(keys.key_path("kept").exists());
}

#[test]
fn verify_never_looks_through_a_key_dir_that_is_a_link() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("kept", &key_config(12)).unwrap();
    // the key dir moved elsewhere and a link put in its place; the target
    // holds files that look like leftovers of the store
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("keys");
    std::fs::rename(keys.key_dir(), &target).unwrap();
    std::os::unix::fs::symlink(&target, keys.key_dir()).unwrap();
    std::fs::write(target.join("precious.enc"), b"{}").unwrap();
    std::fs::write(target.join("thing.enc.lck"), b"").unwrap();
    std::fs::write(target.join("kept.enc.tmp_AbC123"), b"").unwrap();

    for repair in [false, true] {
        let report = dir.config.verify(repair).unwrap();
        let kinds: Vec<FindingKind> = report.findings.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::SymbolicLink], "{report:#?}");
        assert!(report.repaired.is_empty(), "{report:#?}");
    }
    for name in [
        "precious.enc",
        "thing.enc.lck",
        "kept.enc.tmp_AbC123",
        "kept.enc",
    ] {
        assert!(
            target.join(name).exists(),
            "{name} was removed through the link"
        );
    }
    let err = format!("{:#}", keys.load_key_config("kept", true).unwrap_err());
    assert!(
        err.contains("not a directory") && err.contains("'kept'"),
        "{err}"
    );
}

/// The key directory moved away (the `backup` user owns the config dir and
/// can do that) while the config still lists keys: verify said "clean",
/// although not one key could be loaded. It names the directory and the
/// ids, and repair creates nothing in its place.
#[test]
fn verify_reports_a_missing_key_dir_while_keys_are_listed() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    for (seed, id) in [(21, "first-key"), (22, "second-key")] {
        keys.store_key(id, &key_config(seed)).unwrap();
    }
    let moved = dir.path().join("moved-keys");
    std::fs::rename(keys.key_dir(), &moved).unwrap();
    for repair in [false, true] {
        let report = dir.config.verify(repair).unwrap();
        let kinds: Vec<FindingKind> = report.findings.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::InvalidKeyDir], "{report:#?}");
        let message = &report.findings[0].message;
        assert!(
            message.contains("missing")
                && message.contains("2 key(s)")
                && message.contains("'first-key'")
                && message.contains("'second-key'"),
            "{message}"
        );
        assert!(!report.findings[0].repairable);
        assert!(!keys.key_dir().exists(), "repair made a new key directory");
    }
    // an empty config with no key directory is a new store: clean
    let fresh = TestDir::new();
    assert!(fresh.config.verify(false).unwrap().is_clean());
}

#[test]
fn verify_reports_a_key_dir_that_is_a_file_and_leaves_it() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("kept", &key_config(13)).unwrap();
    std::fs::remove_dir_all(keys.key_dir()).unwrap();
    std::fs::write(keys.key_dir(), b"not a dir").unwrap();
    std::fs::set_permissions(keys.key_dir(), std::fs::Permissions::from_mode(0o644)).unwrap();
    for repair in [false, true] {
        let report = dir.config.verify(repair).unwrap();
        let kinds: Vec<FindingKind> = report.findings.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::InvalidKeyDir], "{report:#?}");
    }
    assert_eq!(std::fs::read(keys.key_dir()).unwrap(), b"not a dir");
    assert_eq!(mode_of(&keys.key_dir()) & 0o777, 0o644);
}

#[test]
fn verify_leaves_directories_with_leftover_names_and_repairs_the_rest() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("kept", &key_config(14)).unwrap();
    let key_dir = keys.key_dir();
    for name in ["dirkey.enc", "k-one.enc.tmp_abcdef", "zz.enc.lck"] {
        std::fs::create_dir(key_dir.join(name)).unwrap();
    }
    std::fs::write(
        key_dir.join("orphan.enc"),
        key_config(16).to_json().unwrap(),
    )
    .unwrap();

    let report = dir.config.verify(true).unwrap();
    let kinds: Vec<FindingKind> = report.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FindingKind::UnknownFile; 3], "{report:#?}");
    assert!(report.repair_failed.is_empty(), "{report:#?}");
    assert_eq!(report.repaired.len(), 1, "{report:#?}");
    assert!(!key_dir.join("orphan.enc").exists());
    assert!(!key_dir.join("dirkey.enc.lck").exists());
    for name in ["dirkey.enc", "k-one.enc.tmp_abcdef", "zz.enc.lck"] {
        assert!(key_dir.join(name).is_dir(), "{name}");
    }
}

#[test]
fn a_real_pbs_config_dir_loads() {
    let dir = TestDir::new();
    let expect = pbs_test_kit::dirs::copy_configdir_example(dir.path());

    let keys = dir.config.encryption_keys();
    let (list, _) = keys.list_keys(true).unwrap();
    let ids: Vec<&str> = list.iter().map(|k| k.id.as_str()).collect();
    let order: Vec<&str> = expect["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ids, order);
    let no_pass = || -> Result<Vec<u8>, anyhow::Error> { anyhow::bail!("unprotected") };
    for key in &list {
        let want = &expect["keys"][&key.id];
        assert_eq!(key.archived_at, want["archived_at"].as_i64(), "{}", key.id);
        let (raw, _, fp) = keys
            .load_key_config(&key.id, false)
            .unwrap()
            .decrypt(&no_pass)
            .unwrap();
        assert_eq!(hex::encode(raw), want["raw_key_hex"].as_str().unwrap());
        assert_eq!(fp.signature(), want["fingerprint"].as_str().unwrap());
        assert_eq!(
            fp.to_string(),
            want["fingerprint_display"].as_str().unwrap()
        );
    }
    // upstream's paths name /etc/proxmox-backup: accepted, and repair rewrites them
    let report = dir.config.verify(true).unwrap();
    assert!(
        report
            .findings
            .iter()
            .all(|f| matches!(f.kind, FindingKind::WrongOwner | FindingKind::WrongMode)),
        "{:?}",
        report.findings
    );
    let _: Vec<CryptKey> = keys.list_keys(true).unwrap().0;
}

#[test]
fn sync_jobs_block_archive_and_delete_naming_the_jobs() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("job-key", &key_config(12)).unwrap();
    keys.store_key("old-key", &key_config(13)).unwrap();
    std::fs::write(
        dir.path().join("sync.cfg"),
        "sync: nightly\n\tstore local1\n\tremote-store remote1\n\tremote other\n\tactive-encryption-key job-key\n\tassociated-key old-key\n\n\
         sync: weekly\n\tstore local1\n\tremote-store remote2\n\tassociated-key old-key\n",
    )
    .unwrap();
    let err = keys.archive_key("job-key", None).unwrap_err().to_string();
    assert!(err.contains("'nightly'") && err.contains("active"), "{err}");

    keys.archive_key("old-key", None).unwrap();
    let err = keys.remove_key("old-key", None).unwrap_err().to_string();
    assert!(
        err.contains("'nightly'") && err.contains("'weekly'"),
        "{err}"
    );
    assert!(keys.key_path("old-key").exists());

    // tie and untie through the library's edit, which keeps its rules
    // whatever the caller does: an archived key is never active, an active
    // key is never dropped
    let jobs = dir.config.sync_jobs();
    let set_keys = |id: &str, active: Option<&str>, associated: Option<Vec<String>>| {
        jobs.edit(None, |edit| {
            let mut job = edit.job(id)?.expect("the job exists");
            job.active_encryption_key = active.map(str::to_string);
            job.associated_key = associated.clone();
            edit.set_job(&job)
        })
    };
    let before = dir.snapshot();
    let err = set_keys("weekly", Some("old-key"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("'old-key' is archived"), "{err}");
    let err = set_keys("nightly", None, None).unwrap_err().to_string();
    assert!(
        err.contains("sync job 'nightly' would no longer name its active key 'job-key'"),
        "{err}"
    );
    assert_eq!(dir.snapshot(), before, "a refused edit changed files");
    set_keys("weekly", None, None).unwrap();
    set_keys("nightly", Some("job-key"), None).unwrap();
    keys.remove_key("old-key", None).unwrap();
}

#[test]
fn unreadable_configs_get_errors_naming_file_and_line() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("first-key", &key_config(14)).unwrap();
    let cfg = std::fs::read(keys.config_path()).unwrap();

    // invalid UTF-8 on line 3: named by line, the bytes are not echoed
    let mut broken = cfg.clone();
    let third_line = broken
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .unwrap()
        .0
        + 2;
    broken[third_line] = 0xff;
    std::fs::write(keys.config_path(), &broken).unwrap();
    let err = keys.list_keys(true).unwrap_err().to_string();
    assert!(
        err.contains("encryption-keys.cfg") && err.contains("line 3"),
        "{err}"
    );

    // a 100 MB file (sparse) is refused before it is read
    let file = std::fs::File::create(keys.config_path()).unwrap();
    file.set_len(100_000_000).unwrap();
    let err = keys.list_keys(true).unwrap_err().to_string();
    assert!(err.contains("larger than the 64 MiB limit"), "{err}");
    let err = keys
        .store_key("second-key", &key_config(15))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'second-key'") && err.contains("64 MiB"),
        "{err}"
    );
    assert!(!keys.key_path("second-key").exists());

    // a syntax error names file and line
    std::fs::write(
        keys.config_path(),
        b"sync-key: first-key\n\tkdf none\n\tbogus 1\n",
    )
    .unwrap();
    let err = keys
        .load_key_config("first-key", true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'first-key'") && err.contains("line 3 - unknown property 'bogus'"),
        "{err}"
    );
}

#[test]
fn an_invalid_entry_keeps_its_key_file_and_spares_the_others() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("good-one", &key_config(16)).unwrap();
    keys.store_key("odd-one", &key_config(17)).unwrap();
    // upstream's parser accepts an unknown kdf; the typed entry cannot hold it
    let cfg = std::fs::read_to_string(keys.config_path()).unwrap();
    let odd = cfg
        .replacen("kdf none", "kdf aes-magic", 2)
        .replacen("kdf aes-magic", "kdf none", 1);
    std::fs::write(keys.config_path(), odd).unwrap();

    keys.load_key_config("good-one", true).unwrap();
    let err = keys
        .load_key_config("odd-one", true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'odd-one'") && err.contains("aes-magic"),
        "{err}"
    );
    let err = keys.list_keys(true).unwrap_err().to_string();
    assert!(err.contains("'odd-one'"), "{err}");

    // verify reports it, and repair must not take the key file for an orphan
    let report = dir.config.verify(true).unwrap();
    let kinds: Vec<FindingKind> = report.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FindingKind::InvalidConfigEntry]);
    assert!(report.repaired.is_empty(), "{:?}", report.repaired);
    assert!(keys.key_path("odd-one").exists());
}

#[test]
fn config_files_are_not_read_through_symlinks() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("linked", &key_config(18)).unwrap();
    // the config dir belongs to the backup user: a symlink there must not
    // make root read another file
    let elsewhere = dir.path().join("other.cfg");
    std::fs::rename(keys.config_path(), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, keys.config_path()).unwrap();
    for err in [
        keys.list_keys(true).unwrap_err().to_string(),
        keys.load_key_config("linked", true)
            .unwrap_err()
            .to_string(),
        keys.store_key("second", &key_config(19))
            .unwrap_err()
            .to_string(),
    ] {
        assert!(err.contains("symbolic link"), "{err}");
    }
}

#[test]
fn a_missing_config_dir_is_created_as_upstream_lays_it_out() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("etc-proxmox-backup");
    let config = pbs_config::ConfigDir::new(&base).unwrap();
    config
        .encryption_keys()
        .store_key("first", &key_config(20))
        .unwrap();
    let meta = std::fs::metadata(&base).unwrap();
    let own = config.ownership();
    assert_eq!(meta.mode() & 0o7777, 0o700);
    assert_eq!(
        (meta.uid(), meta.gid()),
        (own.lock_uid.as_raw(), own.lock_gid.as_raw())
    );
}
