//! The trash of the key store (issue 14): delete, repair and a failed store
//! move key files there; restore brings them back; purge alone destroys.

use std::cell::RefCell;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use pbs_config::audit::{AuditLog, Filter, Phase};
use pbs_config::encryption_keys::{DeleteOptions, Deleted};
use pbs_config::trash::{PurgeReport, TrashEntry, TrashReason};
use pbs_config::verify::FindingKind;
use pbs_config::{ConfigDir, KeystoreError};

use pbs_key_config::bundle::BundleSecret;
use pbs_keystore::api2::config::encryption_key_export::verify_bundle;
use pbs_test_kit::{TestDir, key_config};

use crate::verified_copy::{PASSPHRASE, export_bundle, prove_copies};

const DAY: i64 = 24 * 60 * 60;
/// A fixed "now" for the dates the trash records.
const NOW: i64 = 1_800_000_000;

fn keystore_error(err: &anyhow::Error) -> Option<&KeystoreError> {
    err.chain().find_map(|e| e.downcast_ref::<KeystoreError>())
}

/// Every regular file below `dir` holding exactly `bytes`.
fn files_holding(dir: &Path, bytes: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && std::fs::read(&path).unwrap() == bytes {
                found.push(path);
            }
        }
    }
    found
}

fn kinds(dir: &ConfigDir, repair: bool) -> Vec<FindingKind> {
    let report = dir.verify(repair).unwrap();
    report.findings.iter().map(|f| f.kind).collect()
}

fn trash_entries(dir: &ConfigDir) -> Vec<TrashEntry> {
    let listing = dir.encryption_keys().trash().list().unwrap();
    assert!(listing.incomplete.is_empty(), "{listing:?}");
    listing.entries
}

/// Stores `id` and archives it, so it can be deleted.
fn archived(dir: &ConfigDir, id: &str, seed: u64) {
    let keys = dir.encryption_keys();
    keys.store_key(id, &key_config(seed)).unwrap();
    keys.archive_key(id, None).unwrap();
}

fn delete_at(dir: &ConfigDir, id: &str, now: i64, keep_days: u32) -> Deleted {
    let options = DeleteOptions {
        now,
        keep_days,
        ..DeleteOptions::default()
    };
    dir.encryption_keys().delete_key_with(id, &options).unwrap()
}

/// Issue 14, finding 1: an entry whose id has a typo made repair delete the
/// key file its path, fingerprint and a sync job still named.
#[test]
fn issue14_repair_leaves_a_key_whose_entry_id_has_a_typo() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("offsite-2025", &key_config(40)).unwrap();
    std::fs::write(
        dir.path().join("sync.cfg"),
        "sync: nightly\n\tstore local1\n\tremote-store remote1\n\tassociated-key offsite-2025\n",
    )
    .unwrap();
    let key_file = keys.key_path("offsite-2025");
    let bytes = std::fs::read(&key_file).unwrap();
    let cfg = std::fs::read_to_string(keys.config_path()).unwrap();
    let typo = cfg.replace("sync-key: offsite-2025", "sync-key: ofsite-2025");
    assert_ne!(typo, cfg);
    std::fs::write(keys.config_path(), &typo).unwrap();

    let report = dir.config.verify(true).unwrap();
    assert!(
        std::fs::read(&key_file).ok() == Some(bytes),
        "repair moved or removed the key file an entry still names"
    );
    let ambiguous = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::AmbiguousKeyFile)
        .expect("the key file is reported as ambiguous");
    assert!(!ambiguous.repairable);
    for needle in [
        "'ofsite-2025' names it by path and by fingerprint",
        "sync job 'nightly' names 'offsite-2025'",
        "left alone",
        "mistyped",
    ] {
        assert!(
            ambiguous.message.contains(needle),
            "{needle}: {}",
            ambiguous.message
        );
    }
    assert!(report.repaired.is_empty(), "{:#?}", report.repaired);
    assert!(trash_entries(&dir.config).is_empty());

    // the typo fixed, the key is there as before
    std::fs::write(keys.config_path(), &cfg).unwrap();
    assert!(dir.config.verify(false).unwrap().is_clean());
    keys.load_key_config("offsite-2025", false).unwrap();
}

/// Issue 14, finding 1: a valid key file copied into the key directory
/// under a name no entry has was deleted by repair. It goes into the trash,
/// and restore makes it a key of the store.
#[test]
fn issue14_repair_keeps_a_copied_in_key_file() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("kept", &key_config(41)).unwrap();
    let copied = key_config(42).to_json().unwrap();
    let path = keys.key_dir().join("copied.enc");
    std::fs::write(&path, &copied).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

    let report = dir.config.verify(true).unwrap();
    assert!(report.is_clean(), "{:#?}", report.findings);
    let holding = files_holding(dir.path(), copied.as_bytes());
    assert_eq!(holding.len(), 1, "repair destroyed a key file");
    assert!(holding[0].starts_with(keys.trash().path()), "{holding:?}");
    let entries = trash_entries(&dir.config);
    assert_eq!(entries.len(), 1);
    let record = &entries[0].record;
    assert_eq!(record.id, "copied");
    assert_eq!(record.reason, TrashReason::RepairOrphan);
    assert_eq!(record.purge_after, None, "repair never sets a purge date");
    assert_eq!(record.fingerprint, key_config(42).fingerprint);
    assert_eq!(report.keys_in_trash, 1);

    // purge --expired never takes it; restore makes it a key of the store
    assert!(
        keys.trash()
            .purge(None, Some(i64::MAX), false)
            .unwrap()
            .purged
            .is_empty()
    );
    let restored = keys.trash().restore("copied", None).unwrap();
    assert_eq!(restored.archived_at, None);
    keys.load_key_config("copied", true).unwrap();
    assert_eq!(
        std::fs::metadata(keys.key_path("copied")).unwrap().mode() & 0o7777,
        0o640
    );
    assert!(dir.config.verify(false).unwrap().is_clean());
}

/// Delete renames the key file into the trash (same inode, same bytes)
/// with a record of the entry it had; restore renames it back, archived
/// as it was deleted.
#[test]
fn delete_moves_the_key_into_the_trash_and_restore_brings_it_back() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    archived(&dir.config, "old-key", 1);
    keys.store_key("bystander", &key_config(2)).unwrap();
    let key_file = keys.key_path("old-key");
    let bytes = std::fs::read(&key_file).unwrap();
    let inode = std::fs::metadata(&key_file).unwrap().ino();
    let entry = keys.entry("old-key").unwrap();

    let deleted = delete_at(&dir.config, "old-key", NOW, 7);
    let Deleted::Trashed {
        trash_name,
        purge_after,
        ..
    } = &deleted
    else {
        panic!("{deleted:?}");
    };
    assert_eq!(*purge_after, NOW + 7 * DAY);
    assert!(trash_name.starts_with("old-key@"), "{trash_name}");
    assert!(!key_file.exists() && !keys.key_lock_path("old-key").exists());
    let trashed = keys.trash().path().join(format!("{trash_name}.enc"));
    assert_eq!(std::fs::read(&trashed).unwrap(), bytes);
    assert_eq!(std::fs::metadata(&trashed).unwrap().ino(), inode, "copied");
    let entries = trash_entries(&dir.config);
    assert_eq!(entries.len(), 1);
    let record = &entries[0].record;
    assert_eq!(entries[0].name, *trash_name);
    assert_eq!(record.id, "old-key");
    assert_eq!(record.fingerprint, entry.info.fingerprint);
    assert_eq!(record.entry.as_ref(), Some(&entry));
    assert_eq!(record.reason, TrashReason::Delete);
    assert_eq!(record.time, NOW);
    // a config dir that did not say who acts: Caller::local()
    assert_eq!(record.actor.as_deref(), Some("root@pam"));
    assert_eq!(record.purge_after, Some(NOW + 7 * DAY));
    let err = keys.entry("old-key").unwrap_err();
    assert!(matches!(
        keystore_error(&err),
        Some(KeystoreError::NotFound { .. })
    ));
    let report = dir.config.verify(false).unwrap();
    assert!(report.is_clean(), "{:#?}", report.findings);
    assert_eq!(report.keys_in_trash, 1);

    let restored = keys.trash().restore("old-key", None).unwrap();
    assert_eq!(restored.archived_at, entry.archived_at);
    assert_eq!(restored.info, entry.info);
    assert_eq!(std::fs::read(&key_file).unwrap(), bytes);
    assert_eq!(std::fs::metadata(&key_file).unwrap().ino(), inode);
    keys.load_key_config("old-key", false).unwrap();
    assert!(trash_entries(&dir.config).is_empty());
    assert!(dir.config.verify(false).unwrap().is_clean());

    // and --as: the same key under a new id
    delete_at(&dir.config, "old-key", NOW, 30);
    let restored = keys.trash().restore("old-key", Some("new-key")).unwrap();
    assert_eq!(restored.id, "new-key");
    assert_eq!(restored.info.fingerprint, entry.info.fingerprint);
    keys.load_key_config("new-key", false).unwrap();
    assert!(keys.entry("old-key").is_err());
    assert!(dir.config.verify(false).unwrap().is_clean());

    // nothing of that name left in the trash
    let err = keys.trash().restore("old-key", None).unwrap_err();
    assert!(
        matches!(keystore_error(&err), Some(KeystoreError::NotInTrash { .. })),
        "{err}"
    );
}

/// Restore refuses a taken id and a taken fingerprint, naming both, and
/// changes nothing.
#[test]
fn restore_is_refused_when_the_id_or_the_fingerprint_is_taken() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    archived(&dir.config, "k-one", 1);
    let fingerprint = keys.entry("k-one").unwrap().info.fingerprint.unwrap();
    delete_at(&dir.config, "k-one", NOW, 30);

    let refused = |selector: &str, as_id: Option<&str>, needles: &[&str]| {
        let before = dir.snapshot();
        let err = keys.trash().restore(selector, as_id).unwrap_err();
        assert!(
            matches!(
                keystore_error(&err),
                Some(KeystoreError::RestoreConflict { .. })
            ),
            "{err}"
        );
        let text = err.to_string();
        for needle in needles {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        assert_eq!(dir.snapshot(), before, "a refused restore changed files");
    };

    // the id taken by another key
    keys.store_key("k-one", &key_config(2)).unwrap();
    let other = keys.entry("k-one").unwrap().info.fingerprint.unwrap();
    refused(
        "k-one",
        None,
        &[
            "'k-one' is taken",
            &other.to_string(),
            &fingerprint.to_string(),
            "--as NEW_ID",
        ],
    );
    // the fingerprint taken: the same key, imported as 'k-copy'
    keys.store_key("k-copy", &key_config(1)).unwrap();
    refused(
        "k-one",
        Some("k-three"),
        &["in the store already as 'k-copy'", &fingerprint.to_string()],
    );
    // both
    refused(
        "k-one",
        None,
        &[
            "the id 'k-one' is taken",
            "in the store already as 'k-copy'",
            &other.to_string(),
        ],
    );
    assert_eq!(trash_entries(&dir.config).len(), 1);
}

/// Two deletes of one id keep two entries; a restore by id then asks for
/// the trash name.
#[test]
fn two_deletes_of_one_id_never_collide() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    archived(&dir.config, "twice", 1);
    delete_at(&dir.config, "twice", NOW, 30);
    archived(&dir.config, "twice", 2);
    delete_at(&dir.config, "twice", NOW, 30);
    let entries = trash_entries(&dir.config);
    assert_eq!(entries.len(), 2);
    assert_ne!(entries[0].name, entries[1].name);
    assert_ne!(entries[0].record.fingerprint, entries[1].record.fingerprint);

    let err = keys.trash().restore("twice", None).unwrap_err().to_string();
    assert!(
        err.contains("in the trash 2 times")
            && err.contains(&entries[0].name)
            && err.contains(&entries[1].name),
        "{err}"
    );
    let err = keys.trash().purge(Some("twice"), None, false).unwrap_err();
    assert!(err.to_string().contains("2 times"), "{err}");
    keys.trash().restore(&entries[1].name, None).unwrap();
    assert_eq!(
        keys.entry("twice").unwrap().info.fingerprint,
        entries[1].record.fingerprint
    );
    assert!(dir.config.verify(false).unwrap().is_clean());
}

/// `purge --expired` honours each record's date, never takes what repair
/// put there; a purge by name destroys that entry and nothing else.
#[test]
fn purge_honours_the_dates_and_destroys_only_what_it_names() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    for (id, seed) in [("short", 1), ("long", 2), ("named", 3)] {
        archived(&dir.config, id, seed);
    }
    prove_copies(&dir.config, &["short", "long", "named"]);
    let short_bytes = std::fs::read(keys.key_path("short")).unwrap();
    delete_at(&dir.config, "short", NOW, 1);
    delete_at(&dir.config, "long", NOW, 10);
    delete_at(&dir.config, "named", NOW, 0);
    // an orphan repair puts there: no purge date
    std::fs::write(
        keys.key_dir().join("orphan.enc"),
        key_config(4).to_json().unwrap(),
    )
    .unwrap();
    dir.config.verify(true).unwrap();
    assert_eq!(trash_entries(&dir.config).len(), 4);

    let trash = keys.trash();
    let purged_ids = |report: PurgeReport| -> Vec<String> {
        assert!(report.kept_without_copy.is_empty(), "{report:?}");
        let mut ids: Vec<String> = report.purged.into_iter().map(|p| p.id).collect();
        ids.sort();
        ids
    };
    // named: kept 0 days, purged by name
    assert_eq!(
        purged_ids(trash.purge(Some("named"), None, false).unwrap()),
        ["named"]
    );
    assert_eq!(
        purged_ids(trash.purge(None, Some(NOW + DAY - 1), false).unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        purged_ids(trash.purge(None, Some(NOW + DAY), false).unwrap()),
        ["short"]
    );
    assert!(files_holding(dir.path(), &short_bytes).is_empty());
    assert_eq!(
        purged_ids(trash.purge(None, Some(NOW + 10 * DAY), false).unwrap()),
        ["long"]
    );
    assert_eq!(
        purged_ids(trash.purge(None, Some(i64::MAX), false).unwrap()),
        Vec::<String>::new()
    );
    let left = trash_entries(&dir.config);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].record.reason, TrashReason::RepairOrphan);
    // an id with one entry, with --expired: only if expired
    assert!(
        trash
            .purge(Some("orphan"), Some(i64::MAX), false)
            .unwrap()
            .purged
            .is_empty()
    );
    // by name: no verified copy of it, so only when told
    let err = trash.purge(Some("orphan"), None, false).unwrap_err();
    assert!(matches!(
        keystore_error(&err),
        Some(KeystoreError::NoVerifiedCopy { id, .. }) if id == "orphan"
    ));
    assert_eq!(
        purged_ids(trash.purge(Some("orphan"), None, true).unwrap()),
        ["orphan"]
    );
    assert!(trash_entries(&dir.config).is_empty());
    let err = trash.purge(Some("orphan"), None, true).unwrap_err();
    assert!(matches!(
        keystore_error(&err),
        Some(KeystoreError::NotInTrash { .. })
    ));
    assert!(
        trash.purge(None, None, false).is_err(),
        "purge needs a name or --expired"
    );
    assert!(dir.config.verify(false).unwrap().is_clean());
}

/// Keys for the verified-copy tests: `copied` has a verified copy,
/// `exported` only an export (and a drill with the wrong passphrase),
/// `never` and `shred` nothing; all archived. Returns the bundle of
/// `exported`.
fn keys_with_and_without_copies(dir: &ConfigDir) -> String {
    for (id, seed) in [("copied", 1), ("exported", 2), ("never", 3), ("shred", 4)] {
        archived(dir, id, seed);
    }
    prove_copies(dir, &["copied"]);
    let exported = export_bundle(dir, &["exported"]);
    let wrong = BundleSecret::Passphrase(b"not the passphrase");
    assert!(verify_bundle(dir, exported.as_bytes(), &wrong).is_err());
    exported
}

fn purge_now() -> DeleteOptions<'static> {
    DeleteOptions {
        purge: true,
        ..DeleteOptions::default()
    }
}

/// A key removed by mistake and never copied off the host: `remove
/// --purge` is refused (nothing changes), the daily purge (`--expired`)
/// keeps it past its keep time and cannot be told otherwise. Only a bundle
/// that passed the drill counts: an export alone, or a drill with the wrong
/// passphrase, proves nothing.
#[test]
fn a_key_without_a_verified_copy_outlives_its_keep_time() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys_with_and_without_copies(&dir.config);
    let bytes = |id: &str| std::fs::read(keys.key_path(id)).unwrap();
    let (exported_bytes, never_bytes) = (bytes("exported"), bytes("never"));

    let before = pbs_test_kit::dirs::snapshot(dir.path(), &[]);
    for id in ["exported", "never"] {
        let err = keys.delete_key_with(id, &purge_now()).unwrap_err();
        assert!(
            matches!(keystore_error(&err), Some(KeystoreError::NoVerifiedCopy { id: named, fingerprint: Some(_) }) if named == id),
            "{err:#}"
        );
        let text = format!("{err:#}");
        assert!(
            text.contains(&format!("no verified copy of encryption key '{id}'"))
                && text.contains("export-verify")
                && text.contains("--without-verified-copy"),
            "{text}"
        );
    }
    assert_eq!(before, pbs_test_kit::dirs::snapshot(dir.path(), &[]));

    for id in ["copied", "exported", "never"] {
        let deleted = delete_at(&dir.config, id, NOW, 1);
        assert!(
            matches!(deleted, Deleted::Trashed { verified_copy, .. } if verified_copy == (id == "copied")),
            "{deleted:?}"
        );
    }
    let listed: Vec<(String, bool)> = trash_entries(&dir.config)
        .into_iter()
        .map(|entry| (entry.record.id, entry.verified_copy.is_some()))
        .collect();
    assert_eq!(
        listed,
        [
            ("copied".into(), true),
            ("exported".into(), false),
            ("never".into(), false)
        ]
    );
    let report = keys
        .trash()
        .purge(None, Some(NOW + 400 * DAY), false)
        .unwrap();
    let ids = |entries: &[pbs_config::trash::PurgeEntry]| -> Vec<String> {
        entries.iter().map(|entry| entry.id.clone()).collect()
    };
    assert_eq!(ids(&report.purged), ["copied"]);
    assert_eq!(ids(&report.kept_without_copy), ["exported", "never"]);
    for kept in [&exported_bytes, &never_bytes] {
        assert_eq!(
            files_holding(dir.path(), kept).len(),
            1,
            "a kept key is gone"
        );
    }
    assert!(
        keys.trash()
            .purge(None, Some(NOW + 400 * DAY), true)
            .is_err()
    );
    assert_eq!(trash_entries(&dir.config).len(), 2);
}

/// By name, a key without a verified copy is destroyed only when told; a
/// drill of a bundle that named the key by another id proves the same key;
/// told to, a key without any copy is shredded at once.
#[test]
fn a_key_without_a_verified_copy_is_destroyed_only_when_told() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    let exported = keys_with_and_without_copies(&dir.config);
    let never_bytes = std::fs::read(keys.key_path("never")).unwrap();
    delete_at(&dir.config, "never", NOW, 1);
    let err = keys.trash().purge(Some("never"), None, false).unwrap_err();
    assert!(
        matches!(
            keystore_error(&err),
            Some(KeystoreError::NoVerifiedCopy { .. })
        ),
        "{err:#}"
    );
    assert_eq!(files_holding(dir.path(), &never_bytes).len(), 1);
    let report = keys.trash().purge(Some("never"), None, true).unwrap();
    assert_eq!(report.purged[0].id, "never");
    assert!(files_holding(dir.path(), &never_bytes).is_empty());

    // the bundle names it `exported`; the store has it as `renamed`
    let exported_bytes = std::fs::read(keys.key_path("exported")).unwrap();
    delete_at(&dir.config, "exported", NOW, 1);
    keys.trash().restore("exported", Some("renamed")).unwrap();
    assert!(keys.delete_key_with("renamed", &purge_now()).is_err());
    let secret = BundleSecret::Passphrase(PASSPHRASE);
    verify_bundle(&dir.config, exported.as_bytes(), &secret).unwrap();
    keys.delete_key_with("renamed", &purge_now()).unwrap();
    assert!(files_holding(dir.path(), &exported_bytes).is_empty());

    let anyway = DeleteOptions {
        without_verified_copy: true,
        ..purge_now()
    };
    keys.delete_key_with("shred", &anyway).unwrap();
    assert!(keys.entry("shred").is_err());
    assert!(dir.config.verify(false).unwrap().is_clean());
}

/// `delete --purge` is upstream's delete: the key file is destroyed, not
/// kept in the trash.
#[test]
fn delete_purge_destroys_the_key_file_at_once() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    archived(&dir.config, "shredded", 5);
    let bytes = std::fs::read(keys.key_path("shredded")).unwrap();
    let options = DeleteOptions {
        purge: true,
        without_verified_copy: true,
        ..DeleteOptions::default()
    };
    let deleted = keys.delete_key_with("shredded", &options).unwrap();
    assert_eq!(
        deleted,
        Deleted::Purged {
            id: "shredded".into()
        }
    );
    assert!(files_holding(dir.path(), &bytes).is_empty());
    assert!(trash_entries(&dir.config).is_empty());
    assert!(!keys.key_lock_path("shredded").exists());
    assert!(dir.config.verify(false).unwrap().is_clean());
}

/// Destroying a key of which no verified copy is recorded needs Sys.Modify
/// on the whole key store, as `trash purge` of it and the drill that would
/// record a copy do: a delegate with Sys.Modify on one key alone (enough
/// for upstream's delete, and here for a delete into the trash or a purge
/// of a copied key) is refused, and the key stays (finding 25).
#[test]
fn destroying_a_key_without_a_copy_needs_the_whole_store() {
    use pbs_test_kit::ApiDaemon;
    use pbs_test_kit::access::{add_token, add_user, grant};
    use pbs_test_kit::https::Client;

    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    for (id, seed) in [("delegated", 21), ("copied-one", 22), ("store-wide", 23)] {
        archived(&dir.config, id, seed);
    }
    prove_copies(&dir.config, &["copied-one"]);
    add_user(&dir.config, "carol@pbs", None, |_| {});
    let delegate = add_token(&dir.config, "carol@pbs!keys", None);
    for key in ["delegated", "copied-one"] {
        let path = format!("/system/encryption-keys/{key}");
        grant(&dir.config, &path, "carol@pbs", "Admin", false);
        grant(&dir.config, &path, "carol@pbs!keys", "Admin", false);
    }
    let admin = add_token(&dir.config, "root@pam!admin", None);
    grant(
        &dir.config,
        "/system/encryption-keys",
        "root@pam!admin",
        "Admin",
        true,
    );
    let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
    let mut carol = Client::token(daemon.port, "carol@pbs!keys", &delegate);
    let bytes = |id: &str| std::fs::read(keys.key_path(id)).unwrap();
    let delegated = bytes("delegated");

    let before = pbs_test_kit::dirs::snapshot(dir.path(), &["daemon.log"]);
    carol
        .delete("config/encryption-keys/delegated?purge=1&without-verified-copy=1")
        .expect(403, "missing Sys.Modify on /system/encryption-keys");
    carol
        .delete("config/encryption-keys/delegated?purge=1")
        .expect(400, "no verified copy of encryption key 'delegated'");
    assert_eq!(
        before,
        pbs_test_kit::dirs::snapshot(dir.path(), &["daemon.log"])
    );
    assert_eq!(files_holding(dir.path(), &delegated).len(), 1);
    // what the key's own privilege allows: into the trash; a purge of a
    // key with a verified copy (upstream's delete)
    carol.delete("config/encryption-keys/delegated").data();
    assert_eq!(files_holding(dir.path(), &delegated).len(), 1);
    let copied = bytes("copied-one");
    carol
        .delete("config/encryption-keys/copied-one?purge=1")
        .data();
    assert!(files_holding(dir.path(), &copied).is_empty());

    // Sys.Modify on the store destroys a key without a copy when told
    let mut root = Client::token(daemon.port, "root@pam!admin", &admin);
    let store_wide = bytes("store-wide");
    root.delete("config/encryption-keys/store-wide?purge=1&without-verified-copy=1")
        .data();
    assert!(files_holding(dir.path(), &store_wide).is_empty());
}

/// A trashed key keeps the privilege of the id it had: a token whose
/// Admin on the store is masked on one key (`NoAccess`, as for an export
/// of it) neither restores that key from the trash under an id of its own
/// (then exports it: the key's bytes) nor destroys it. Before stop 32 both
/// needed Sys.Modify on the store alone (finding 30).
#[test]
fn a_trashed_key_keeps_the_privilege_of_its_id() {
    use pbs_test_kit::ApiDaemon;
    use pbs_test_kit::access::masked_token;
    use pbs_test_kit::https::Client;

    let dir = TestDir::new();
    archived(&dir.config, "hidden", 41);
    archived(&dir.config, "open", 42);
    for id in ["hidden", "open"] {
        delete_at(&dir.config, id, proxmox_time::epoch_i64(), 30);
    }
    let secret = masked_token(
        &dir.config,
        "erin@pbs!masked",
        "/system/encryption-keys",
        "hidden",
    );
    let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
    let mut erin = Client::token(daemon.port, "erin@pbs!masked", &secret);
    let listing = dir.config.encryption_keys().trash().list().unwrap();
    let name = listing
        .entries
        .iter()
        .find(|entry| entry.name.starts_with("hidden@"))
        .map(|entry| entry.name.clone())
        .unwrap();

    let before = pbs_test_kit::dirs::snapshot(dir.path(), &["daemon.log"]);
    for selector in ["hidden", name.as_str()] {
        for form in ["", "as=mine"] {
            erin.post_form(
                &format!("config/encryption-key-trash/{selector}/restore"),
                form,
            )
            .expect(403, "missing Sys.Modify on /system/encryption-keys/hidden");
        }
        for query in ["", "?without-verified-copy=1", "?expired=1"] {
            erin.delete(&format!("config/encryption-key-trash/{selector}{query}"))
                .expect(403, "missing Sys.Modify on /system/encryption-keys/hidden");
        }
    }
    assert_eq!(
        before,
        pbs_test_kit::dirs::snapshot(dir.path(), &["daemon.log"])
    );
    // the key it may reach comes back as before, under an id of its choice
    erin.post_form("config/encryption-key-trash/open/restore", "as=mine")
        .data();
}

/// A bundle whose key file says it is protected is taken at its word for
/// the key's fingerprint (the drill cannot decrypt it): one made by hand,
/// holding another key under the fingerprint of a stored key (protected or
/// not), opens whole. Such a drill proves no copy: the purge stays refused
/// (else it destroyed the only key, the bundle holding junk). A real
/// bundle of a protected key proves its copy: the key file it holds is the
/// store's, byte for byte (finding 26).
#[test]
fn a_bundle_that_only_claims_a_key_proves_no_copy() {
    use pbs_api_types::Kdf;
    use pbs_key_config::KeyConfig;
    use pbs_key_config::bundle::{ExportKey, ExportRecipient, create_bundle};

    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    archived(&dir.config, "plain", 41);
    let locked = KeyConfig::with_key(&[42; 32], b"the locked key's pass", Kdf::PBKDF2).unwrap();
    keys.store_key("locked", &locked).unwrap();
    keys.archive_key("locked", None).unwrap();
    // another key, protected, claiming each stored key's fingerprint
    let forged_bundle = |id: &str| {
        let mut entry = keys.entry(id).unwrap();
        let mut forged =
            KeyConfig::with_key(&[43; 32], b"whatever pass phrase", Kdf::PBKDF2).unwrap();
        forged.fingerprint = entry.info.fingerprint;
        entry.info.kdf = Kdf::PBKDF2;
        let key_file = forged.to_json().unwrap();
        let key = ExportKey {
            config: &entry,
            key_file: key_file.as_bytes(),
        };
        let origin = pbs_config::export::export_origin();
        let recipient = ExportRecipient::Passphrase(PASSPHRASE);
        create_bundle(&origin, None, &[key], &[recipient]).unwrap()
    };
    let secret = BundleSecret::Passphrase(PASSPHRASE);
    for id in ["plain", "locked"] {
        let bytes = std::fs::read(keys.key_path(id)).unwrap();
        let report = verify_bundle(&dir.config, &forged_bundle(id), &secret).unwrap();
        assert_eq!(report.keys[0].id, id);
        let why = report.keys[0].copy_unproven.as_deref().unwrap_or_default();
        assert!(
            why.contains("no verified copy is recorded"),
            "{id}: {why:?}"
        );
        // the drill is recorded, naming the key but not its fingerprint
        let log = AuditLog::open_store(&dir.config)
            .unwrap()
            .syslog_socket(None);
        let drill = log.list(&Filter::default()).unwrap().pop().unwrap();
        assert_eq!(
            (drill.op.as_str(), drill.phase, &drill.ids),
            ("export-verify", Phase::Outcome, &vec![id.to_string()]),
            "{id}: {drill:?}"
        );
        assert!(drill.fingerprints.is_empty(), "{id}: {drill:?}");
        let err = keys.delete_key_with(id, &purge_now()).unwrap_err();
        assert!(
            matches!(
                keystore_error(&err),
                Some(KeystoreError::NoVerifiedCopy { .. })
            ),
            "{id}: {err:#}"
        );
        assert_eq!(files_holding(dir.path(), &bytes).len(), 1, "{id} is gone");
    }
    // in the trash, the daily purge keeps it
    delete_at(&dir.config, "plain", NOW, 1);
    let report = keys
        .trash()
        .purge(None, Some(NOW + 2 * DAY), false)
        .unwrap();
    assert!(report.purged.is_empty(), "{report:?}");

    // the real bundle of the protected key proves its copy, drilled with
    // the key in the trash as well
    let real = export_bundle(&dir.config, &["locked"]);
    delete_at(&dir.config, "locked", NOW, 1);
    let report = verify_bundle(&dir.config, real.as_bytes(), &secret).unwrap();
    assert_eq!(report.keys[0].copy_unproven, None);
    let report = keys.trash().purge(Some("locked"), None, false).unwrap();
    assert_eq!(report.purged[0].id, "locked");
}

/// `delete --force` drops an entry whose key file is missing, after saying
/// what is lost (and before anything changes); without `--force` delete
/// refuses and names the option.
#[test]
fn delete_force_drops_an_entry_without_key_file_saying_what_is_lost() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    archived(&dir.config, "lost-key", 6);
    let fingerprint = keys.entry("lost-key").unwrap().info.fingerprint.unwrap();
    std::fs::remove_file(keys.key_path("lost-key")).unwrap();

    let err = keys.remove_key("lost-key", None).unwrap_err().to_string();
    assert!(
        err.contains("missing") && err.contains("remove --force lost-key"),
        "{err}"
    );
    assert!(keys.entry("lost-key").is_ok());

    let said = RefCell::new(Vec::new());
    let cfg = keys.config_path();
    let warn = |text: &str| {
        // said before anything changed
        let config = std::fs::read_to_string(&cfg).unwrap();
        assert!(config.contains("sync-key: lost-key"), "{config}");
        said.borrow_mut().push(text.to_string());
    };
    let options = DeleteOptions {
        force: true,
        warn: Some(&warn),
        ..DeleteOptions::default()
    };
    let deleted = keys.delete_key_with("lost-key", &options).unwrap();
    assert!(
        matches!(&deleted, Deleted::EntryDropped { trash_copies, .. } if trash_copies.is_empty()),
        "{deleted:?}"
    );
    let said = said.into_inner();
    assert_eq!(said.len(), 1);
    for needle in [
        "'lost-key'",
        &fingerprint.signature(),
        "no copy in the trash",
        "for good",
    ] {
        assert!(said[0].contains(needle), "{needle}: {}", said[0]);
    }
    assert!(keys.entry("lost-key").is_err());
    assert!(dir.config.verify(false).unwrap().is_clean());

    // with a copy in the trash: nothing is lost, and it says where it is
    archived(&dir.config, "copied-key", 7);
    let copy = match delete_at(&dir.config, "copied-key", NOW, 30) {
        Deleted::Trashed { trash_name, .. } => trash_name,
        other => panic!("{other:?}"),
    };
    archived(&dir.config, "copied-key", 7);
    std::fs::remove_file(keys.key_path("copied-key")).unwrap();
    let err = keys.remove_key("copied-key", None).unwrap_err().to_string();
    assert!(
        err.contains(&format!("a copy is in the trash as '{copy}'")),
        "{err}"
    );
    let said = RefCell::new(String::new());
    let warn = |text: &str| *said.borrow_mut() = text.to_string();
    let options = DeleteOptions {
        force: true,
        warn: Some(&warn),
        ..DeleteOptions::default()
    };
    let deleted = keys.delete_key_with("copied-key", &options).unwrap();
    assert!(
        matches!(&deleted, Deleted::EntryDropped { trash_copies, .. } if *trash_copies == [copy.clone()]),
        "{deleted:?}"
    );
    let said = said.into_inner();
    assert!(
        said.contains("loses nothing") && said.contains(&copy),
        "{said}"
    );
    keys.trash().restore("copied-key", None).unwrap();
    keys.load_key_config("copied-key", false).unwrap();
    assert!(dir.config.verify(false).unwrap().is_clean());
}

/// A copy of a key the config holds, under another name, is not an orphan:
/// its fingerprint names it. Repair leaves it alone.
#[test]
fn a_copy_of_a_stored_key_is_left_alone() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("original", &key_config(8)).unwrap();
    let copy = keys.key_dir().join("spare.enc");
    std::fs::copy(keys.key_path("original"), &copy).unwrap();
    let report = dir.config.verify(true).unwrap();
    let kinds: Vec<_> = report.findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FindingKind::AmbiguousKeyFile], "{report:#?}");
    assert!(
        report.findings[0]
            .message
            .contains("config entry 'original' holds the same key"),
        "{}",
        report.findings[0].message
    );
    assert!(copy.exists());
}

/// `verify` checks the trash's owner and mode; a trash others could change
/// is not used until repair fixed it, and a symbolic link is never followed.
#[test]
fn verify_checks_the_trash_mode_and_owner() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    archived(&dir.config, "first", 1);
    delete_at(&dir.config, "first", NOW, 30);
    let trash_path = keys.trash().path();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().mode() & 0o7777;
    assert_eq!(mode(&trash_path), 0o700);
    let meta = std::fs::metadata(&trash_path).unwrap();
    if nix::unistd::geteuid().is_root() {
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "root:root");
    }

    // readable by the group: a wrong mode, repaired
    std::fs::set_permissions(&trash_path, std::fs::Permissions::from_mode(0o750)).unwrap();
    assert_eq!(kinds(&dir.config, false), [FindingKind::WrongMode]);
    assert_eq!(kinds(&dir.config, true), []);
    assert_eq!(mode(&trash_path), 0o700);

    // writable by others: not used, not looked into, until repaired
    std::fs::set_permissions(&trash_path, std::fs::Permissions::from_mode(0o777)).unwrap();
    archived(&dir.config, "second", 2);
    let err = keys.remove_key("second", None).unwrap_err().to_string();
    assert!(err.contains(".trash") && err.contains("0777"), "{err}");
    keys.load_key_config("second", false).unwrap();
    assert_eq!(kinds(&dir.config, true), []);
    keys.remove_key("second", None).unwrap();
    assert_eq!(trash_entries(&dir.config).len(), 2);

    // a symbolic link in its place: never followed, left alone
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::rename(&trash_path, elsewhere.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path().join("moved"), &trash_path).unwrap();
    archived(&dir.config, "third", 3);
    let err = keys.remove_key("third", None).unwrap_err().to_string();
    assert!(err.contains("symbolic link"), "{err}");
    let before = std::fs::read_dir(elsewhere.path().join("moved"))
        .unwrap()
        .count();
    assert_eq!(kinds(&dir.config, true), [FindingKind::SymbolicLink]);
    assert_eq!(
        std::fs::read_dir(elsewhere.path().join("moved"))
            .unwrap()
            .count(),
        before
    );
}

/// What interrupted operations leave in the trash is reported and sorted
/// out by repair: a record whose key is in the store, a record whose key
/// file is gone, a key file without record, and an orphan whose record
/// waits in the trash.
#[test]
fn verify_sorts_out_incomplete_trash_entries() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    let trash_path = keys.trash().path();
    for (id, seed) in [
        ("in-store", 1),
        ("purged", 2),
        ("unrecorded", 3),
        ("pending", 4),
    ] {
        archived(&dir.config, id, seed);
    }
    let trash_name = |deleted: Deleted| match deleted {
        Deleted::Trashed { trash_name, .. } => trash_name,
        other => panic!("{other:?}"),
    };
    // a record whose key is in the store: copy a record, restore the key
    let name = trash_name(delete_at(&dir.config, "in-store", NOW, 30));
    let record = std::fs::read(trash_path.join(format!("{name}.json"))).unwrap();
    keys.trash().restore(&name, None).unwrap();
    std::fs::write(trash_path.join(format!("{name}.json")), &record).unwrap();
    std::fs::set_permissions(
        trash_path.join(format!("{name}.json")),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // a record whose key file is gone
    let name = trash_name(delete_at(&dir.config, "purged", NOW, 30));
    std::fs::remove_file(trash_path.join(format!("{name}.enc"))).unwrap();
    // a key file without record
    let name = trash_name(delete_at(&dir.config, "unrecorded", NOW, 30));
    std::fs::remove_file(trash_path.join(format!("{name}.json"))).unwrap();
    // an orphan whose record waits: the key file back in the key directory
    let pending = trash_name(delete_at(&dir.config, "pending", NOW, 30));
    std::fs::rename(
        trash_path.join(format!("{pending}.enc")),
        keys.key_path("pending"),
    )
    .unwrap();

    let listing = keys.trash().list().unwrap();
    assert_eq!(listing.entries.len(), 0, "{listing:?}");
    assert_eq!(listing.incomplete.len(), 4, "{listing:?}");
    let mut found = kinds(&dir.config, false);
    found.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        found,
        [
            FindingKind::OrphanKeyFile,
            FindingKind::StaleTrashRecord,
            FindingKind::StaleTrashRecord,
            FindingKind::UnrecordedTrashFile,
        ]
    );

    let report = dir.config.verify(true).unwrap();
    assert!(report.is_clean(), "{:#?}", report.findings);
    assert_eq!(report.repaired.len(), 4, "{:#?}", report.repaired);
    keys.load_key_config("in-store", false).unwrap();
    let entries = trash_entries(&dir.config);
    let mut ids: Vec<(&str, TrashReason)> = entries
        .iter()
        .map(|e| (e.record.id.as_str(), e.record.reason))
        .collect();
    ids.sort_by_key(|(id, _)| id.to_string());
    assert_eq!(
        ids,
        [
            ("pending", TrashReason::Delete),
            ("unrecorded", TrashReason::RepairUnrecorded)
        ]
    );
    // the pending key went into the entry that waited for it
    assert!(entries.iter().any(|e| e.name == pending));
    assert_eq!(report.keys_in_trash, 2);
}

/// The exit status of a failed command.
const FAILED: i32 = 255;

/// The commands: `remove` says where the key went, `remove --purge` says
/// it is destroyed, `remove --force` warns on stderr first, and `trash
/// list`, `restore --as` and `purge` do what they say.
#[test]
fn trash_commands() {
    let dir = TestDir::new();
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_proxmox-backup-manager"))
            .arg("--config-dir")
            .arg(dir.path())
            .args(args)
            .env("TZ", "UTC0")
            .env_remove("PROXMOX_OUTPUT_FORMAT")
            .env_remove("PROXMOX_OUTPUT_NO_BORDER")
            .env_remove("PROXMOX_OUTPUT_NO_HEADER")
            .output()
            .unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    for (id, seed) in [
        ("k-trash", 1),
        ("k-purge", 2),
        ("k-force", 3),
        ("k-kept", 4),
    ] {
        archived(&dir.config, id, seed);
    }
    remove_trash_purge_and_force(&run, &dir);
    trash_list_restore_and_purge(&run);
    the_daily_purge_keeps_a_key_without_a_verified_copy(&run);
}

/// What the timer runs, on a key past its keep time without a verified
/// copy: kept, said so with what to do, exit status 0.
fn the_daily_purge_keeps_a_key_without_a_verified_copy(
    run: &impl Fn(&[&str]) -> (i32, String, String),
) {
    let (code, _, err) = run(&["encryption-key", "remove", "k-kept", "--keep-days", "0"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&["encryption-key", "trash", "purge", "--expired"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("kept 'k-kept@")
            && out.contains("no verified copy")
            && out.contains("--without-verified-copy"),
        "{out}"
    );
    let (code, out, _) = run(&["--noborder", "encryption-key", "trash", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("k-kept@") && out.trim_end().ends_with("none"),
        "{out}"
    );
}

/// `remove` into the trash, `--purge` destroys, `--force` warns first.
fn remove_trash_purge_and_force(run: &impl Fn(&[&str]) -> (i32, String, String), dir: &TestDir) {
    let (code, out, _) = run(&["encryption-key", "remove", "k-trash", "--keep-days", "3"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("removed encryption key 'k-trash' - kept in the trash as 'k-trash@")
            && out.contains("no verified copy of it is recorded, so the daily purge keeps it"),
        "{out}"
    );
    // no verified copy of it: refused, unless told; `delete` is the alias
    let (code, _, err) = run(&["encryption-key", "remove", "k-purge", "--purge"]);
    assert_eq!(code, FAILED);
    assert!(
        err.contains("no verified copy of encryption key 'k-purge'")
            && err.contains("--without-verified-copy"),
        "{err}"
    );
    let (code, _, err) = run(&[
        "encryption-key",
        "remove",
        "k-purge",
        "--without-verified-copy",
    ]);
    assert_eq!(code, FAILED, "the flag goes with --purge: {err}");
    assert!(err.contains("--purge"), "{err}");
    let (code, out, _) = run(&[
        "encryption-key",
        "delete",
        "k-purge",
        "--purge",
        "--without-verified-copy",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains("destroyed its key file") && out.contains("not kept in the trash"),
        "{out}"
    );
    let (code, _, err) = run(&[
        "encryption-key",
        "remove",
        "k-purge",
        "--purge",
        "--keep-days",
        "3",
    ]);
    assert_eq!(code, FAILED, "{err}");

    std::fs::remove_file(dir.config.encryption_keys().key_path("k-force")).unwrap();
    let (code, _, err) = run(&["encryption-key", "remove", "k-force"]);
    assert_eq!(code, FAILED);
    assert!(err.contains("--force"), "{err}");
    let (code, out, err) = run(&["encryption-key", "remove", "k-force", "--force"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.starts_with("Warning: encryption key 'k-force'") && err.contains("for good"),
        "{err}"
    );
    assert!(out.contains("dropped the config entry"), "{out}");
}

/// `trash list`, `restore --as` and `purge` do what they say.
fn trash_list_restore_and_purge(run: &impl Fn(&[&str]) -> (i32, String, String)) {
    let (code, out, _) = run(&["--noborder", "encryption-key", "trash", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("k-trash@") && out.contains(" delete ") && out.lines().count() == 1,
        "{out}"
    );
    let (code, out, _) = run(&["--output-format", "json", "encryption-key", "trash", "list"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        list[0]["purge-after"].as_i64(),
        Some(list[0]["time"].as_i64().unwrap() + 3 * DAY)
    );

    let (code, out, err) = run(&[
        "encryption-key",
        "trash",
        "restore",
        "k-trash",
        "--as",
        "k-back",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("restored encryption key 'k-back'") && out.contains("archived"),
        "{out}"
    );
    let (code, _, err) = run(&["encryption-key", "trash", "restore", "k-trash"]);
    assert_eq!(code, FAILED);
    assert!(err.contains("no key 'k-trash' in the trash"), "{err}");
    let (code, out, _) = run(&["encryption-key", "trash", "purge", "--expired"]);
    assert_eq!((code, out.as_str()), (0, "nothing to purge\n"));
    let (code, _, err) = run(&["encryption-key", "trash", "purge"]);
    assert_eq!(code, FAILED, "{err}");
    let (code, out, _) = run(&["encryption-key", "verify"]);
    assert_eq!(code, 0, "{out}");
}

/// `ConfigDir::verified_copies` (the trash listing's, `list
/// --no-verified-copy`'s and the purges' question) answers each
/// fingerprint asked for, a repeated one each time, with the newest drill
/// that proved it, and none for a key never drilled, in one read of the
/// log whatever the number of keys.
#[test]
fn verified_copies_answer_each_key_with_its_newest_drill() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    for (seed, id) in ["alpha", "bravo", "charlie"].into_iter().enumerate() {
        keys.store_key(id, &key_config(90 + seed as u64)).unwrap();
    }
    let fingerprint = |id: &str| keys.entry(id).unwrap().info.fingerprint.unwrap();
    let asked = [
        fingerprint("alpha"),
        fingerprint("bravo"),
        fingerprint("charlie"),
        fingerprint("alpha"),
    ];
    let seqs = || -> Vec<Option<u64>> {
        let found = dir.config.verified_copies(&asked).unwrap();
        found
            .iter()
            .map(|record| record.as_ref().map(|r| r.seq))
            .collect()
    };
    assert_eq!(seqs(), [None; 4]);

    prove_copies(&dir.config, &["alpha", "bravo"]);
    let [Some(first), Some(also_first), None, Some(again)] = seqs()[..] else {
        panic!("alpha and bravo proved, charlie not: {:?}", seqs());
    };
    assert_eq!((also_first, again), (first, first));

    prove_copies(&dir.config, &["bravo"]);
    let [Some(alpha), Some(bravo), None, Some(alpha_again)] = seqs()[..] else {
        panic!("{:?}", seqs());
    };
    assert_eq!(
        (alpha, alpha_again),
        (first, first),
        "alpha's drill is still the first"
    );
    assert!(
        bravo > first,
        "bravo's newest drill is the second: {bravo} after {first}"
    );
    assert!(dir.config.verified_copies(&[]).unwrap().is_empty());
}

/// A temp file of a key whose id holds what a temp file's name does
/// (`key.enc.tmp_abc123`, a valid id) goes into the trash under that id,
/// not under the shorter id its name begins with (`key`): a caller's rights on
/// the trash entry are checked against the id it records, and a restore
/// brings it back as that id. (Found beside finding 71: repair cut the id
/// at the first `.enc.tmp_`.)
#[test]
fn a_temp_file_goes_into_the_trash_under_the_id_it_is_of() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("key", &key_config(1)).unwrap();
    let temp = keys
        .key_path("key")
        .with_file_name("key.enc.tmp_abc123.enc.tmp_XyZ789");
    std::fs::write(&temp, key_config(2).to_json().unwrap()).unwrap();
    let found = kinds(&dir.config, false);
    assert_eq!(found, [FindingKind::TempFile]);
    dir.config.verify(true).unwrap();
    let entries = trash_entries(&dir.config);
    let ids: Vec<&str> = entries.iter().map(|e| e.record.id.as_str()).collect();
    assert_eq!(ids, ["key.enc.tmp_abc123"], "{entries:?}");
    assert!(
        entries[0].name.starts_with("key.enc.tmp_abc123@"),
        "{entries:?}"
    );
}
