//! Every writing operation on a full disk: a clear error, and the store as it was.
//!
//! The audit log's directory has a tmpfs of its own here, with room: these
//! tests are about the store's writes, so each operation's intent is
//! recorded and its outcome is the failure (`tests/processes/audit.rs` fills
//! the log's disk instead).

use std::path::PathBuf;

use pbs_config::verify::FindingKind;
use pbs_test_kit::dirs::{snapshot, snapshot_with_locks};
use pbs_test_kit::key_config;
use pbs_test_kit::tmpfs::tmpfs_config_dir;

use crate::support::{
    assert_clean, assert_error, assert_failure_recorded, assert_relocated_only, audit_dir_on_tmpfs,
    audit_records, context, fault_store, manager, run_writing_commands_again, without_audit,
    writing_commands,
};

/// On a tmpfs of 1 MiB: with no page free the key file cannot be written
/// (its empty temp file holds nothing and is removed); with one page free
/// the key file fits but the config does not, so the new key file leaves
/// the key directory again, into the trash (never unlinked: issue 14; its
/// record does not fit either, `verify --repair` writes it later). Both
/// times: "No space left on device", the config and the key directory
/// unchanged.
pub fn store_on_a_full_disk_fails_cleanly() {
    let Some((_tmp, mount, dir)) = tmpfs_config_dir("small", "1m") else {
        return;
    };
    let audit_mount = audit_dir_on_tmpfs(&dir, "1m");
    let config = context(&dir);
    let keys = config.encryption_keys();
    keys.store_key("before-1", &key_config(11)).unwrap();
    keys.store_key("before-2", &key_config(12)).unwrap();
    let in_trash = |path: &PathBuf| path.to_string_lossy().contains("/.trash/");
    let outside_trash = |files: Vec<(PathBuf, Vec<u8>)>| -> Vec<(PathBuf, Vec<u8>)> {
        without_audit(files)
            .into_iter()
            .filter(|(path, _)| !in_trash(path))
            .collect()
    };
    let new_key = key_config(13);

    for (free_pages, failing_file) in [(0, "new-key.enc"), (1, "encryption-keys.cfg")] {
        mount.fill("filler", free_pages);
        let before = outside_trash(snapshot_with_locks(&dir, &["filler"]));
        let records = audit_records(&dir).len();
        let err = keys.store_key("new-key", &new_key).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("No space left on device"), "{text}");
        assert!(
            text.contains("'new-key'") && text.contains(failing_file),
            "{text}"
        );
        assert_eq!(
            outside_trash(snapshot_with_locks(&dir, &["filler"])),
            before,
            "{free_pages} free pages: the store changed"
        );
        let what = format!("{free_pages} free pages");
        let grew = assert_failure_recorded(&dir, records, "No space left on device", &what);
        assert_eq!(grew, 2, "{what}: the log has room: the intent is recorded");
        let trashed: Vec<PathBuf> = snapshot_with_locks(&dir, &["filler"])
            .into_iter()
            .map(|(path, _)| path)
            .filter(in_trash)
            .collect();
        let report = config.verify(false).unwrap();
        match free_pages {
            0 => {
                assert!(trashed.is_empty(), "{trashed:?}");
                assert_clean(&report, "after ENOSPC");
            }
            _ => {
                assert!(text.contains("into the trash"), "{text}");
                assert!(
                    trashed
                        .iter()
                        .any(|path| path.extension().is_some_and(|ext| ext == "enc")),
                    "{trashed:?}"
                );
                for finding in &report.findings {
                    assert_eq!(
                        finding.kind,
                        FindingKind::UnrecordedTrashFile,
                        "{:#?}",
                        report.findings
                    );
                }
            }
        }
        println!("    {free_pages} free pages: {text}");
        std::fs::remove_file(mount.path.join("filler")).unwrap();
    }

    // with space again: repair writes what the trash lacks, the same store works
    assert_clean(&config.verify(true).unwrap(), "after repair");
    let trashed = keys.trash().list().unwrap().entries;
    assert_eq!(trashed.len(), 1, "{trashed:?}");
    assert_eq!(trashed[0].record.fingerprint, new_key.fingerprint);
    keys.trash().purge(Some("new-key"), None, true).unwrap();
    keys.store_key("new-key", &new_key).unwrap();
    keys.load_key_config("new-key", true).unwrap();
    drop(audit_mount);
    drop(mount);
}

/// Every other writing command on a full disk (no page free): archive,
/// unarchive, delete, sync-job update, create, import, and verify --repair
/// with a path to rewrite. Each exits 2 with one error line naming the file
/// it could not write and "No space left on device", the store is as it
/// was and verify reports it so; with space again, each works.
pub fn other_commands_on_a_full_disk_fail_cleanly() {
    let Some((_tmp, mount, dir)) = tmpfs_config_dir("small", "1m") else {
        return;
    };
    let audit_mount = audit_dir_on_tmpfs(&dir, "1m");
    let import = mount.path.join("import.enc");
    fault_store(&dir, &import);

    mount.fill("filler", 0);
    let before = without_audit(snapshot(&dir, &["filler"]));
    for (args, file) in writing_commands(&import) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let records = audit_records(&dir).len();
        let run = manager(&dir, &args, None);
        let line = assert_error(&run, &args.join(" "), &["No space left on device", file]);
        assert_eq!(
            without_audit(snapshot(&dir, &["filler"])),
            before,
            "{args:?} changed the store"
        );
        let grew =
            assert_failure_recorded(&dir, records, "No space left on device", &args.join(" "));
        assert_eq!(
            grew, 2,
            "{args:?}: the log has room: the intent is recorded"
        );
        assert_relocated_only(&context(&dir).verify(false).unwrap(), &args.join(" "));
        println!("    {}: {line}", args.join(" "));
    }

    std::fs::remove_file(mount.path.join("filler")).unwrap();
    run_writing_commands_again(&dir, &import);
    drop(audit_mount);
    drop(mount);
}
