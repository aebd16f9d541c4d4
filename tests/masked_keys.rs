//! What a caller masked on a key can still see or do through the API (stop
//! 33, findings 37 to 40): a token with Admin or Audit on
//! `/system/encryption-keys` and `NoAccess` on
//! `/system/encryption-keys/hidden` sees no record, trash entry or verify
//! finding that names `hidden`, restores no key file of it, and reads the
//! audit checkpoint without making the daemon write one. Real API calls,
//! as the other privilege tests make them.

use std::path::PathBuf;

use serde_json::{Value, json};

use pbs_config::ConfigDir;
use pbs_config::audit::{AuditLog, Caller, Event, Op};
use pbs_config::encryption_keys::DeleteOptions;
use pbs_key_config::KeyConfig;
use pbs_keystore::api2::config::encryption_key_audit::WITHHELD;
use pbs_test_kit::access::{add_token, add_user, admin_token, grant, masked_token};
use pbs_test_kit::dirs::snapshot;
use pbs_test_kit::https::Client;
use pbs_test_kit::{ApiDaemon, TestDir, key_config};

use crate::verified_copy::{PASSPHRASE, export_bundle};

const MASKED: &str = "erin@pbs!masked";

/// A store with the keys `hidden` and `open`, a daemon on it, and clients
/// for root and for a token masked on `hidden`.
struct Store {
    // dropped (killed) before its dir is removed
    api: ApiDaemon,
    dir: TestDir,
    root: Client,
    masked: Client,
}

impl Store {
    fn start(dir: TestDir) -> Self {
        let root = admin_token(&dir.config, "root@pam!admin");
        let secret = masked_token(&dir.config, MASKED, "/system/encryption-keys", "hidden");
        let api = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
        let root = Client::new(api.port).with_auth(&[("Authorization", &root)]);
        let masked = Client::token(api.port, MASKED, &secret);
        Self {
            api,
            dir,
            root,
            masked,
        }
    }

    fn config(&self) -> &ConfigDir {
        &self.dir.config
    }

    /// The store's files (lock files aside), the daemon's log left out.
    fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        snapshot(self.dir.path(), &["daemon.log"])
    }

    /// Asserts that the store's files are those of `before`, naming the
    /// files that differ.
    #[track_caller]
    fn assert_unchanged(&self, before: &[(PathBuf, Vec<u8>)], what: &str) {
        let after = self.files();
        let changed: Vec<&PathBuf> = before
            .iter()
            .chain(&after)
            .filter(|file| !before.contains(file) || !after.contains(file))
            .map(|(path, _)| path)
            .collect();
        assert!(changed.is_empty(), "{what} changed {changed:?}");
    }
}

/// A new store holding `hidden` and `open`.
fn two_keys() -> TestDir {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("hidden", &key_config(41)).unwrap();
    keys.store_key("open", &key_config(42)).unwrap();
    dir
}

fn fingerprint(dir: &ConfigDir, id: &str) -> String {
    let entry = dir.encryption_keys().entry(id).unwrap();
    entry.info.fingerprint.unwrap().signature()
}

/// The ids of every record of an audit list answer.
fn record_ids(records: &Value) -> Vec<Vec<String>> {
    records
        .as_array()
        .unwrap()
        .iter()
        .map(|record| serde_json::from_value(record["ids"].clone()).unwrap())
        .collect()
}

#[track_caller]
fn assert_hides(body: &str, hidden: &[&str]) {
    for text in hidden {
        assert!(!body.contains(text), "{text:?} shown: {body}");
    }
}

/// A store whose audit log, trash and key list hold traces of the masked
/// keys `hidden` (records, one naming `open` too, a trash entry, an
/// interrupted operation, an error's words) and `ghost` (listed, no record
/// names it), and of `open`; with the texts that betray a masked key.
fn traces_of_masked_keys() -> (TestDir, Vec<String>) {
    let dir = two_keys();
    let hidden_fp = fingerprint(&dir.config, "hidden");
    // a record naming both keys
    export_bundle(&dir.config, &["hidden", "open"]);
    let keys = dir.config.encryption_keys();
    for id in ["hidden", "open"] {
        keys.archive_key(id, None).unwrap();
        keys.delete_key_with(id, &DeleteOptions::default()).unwrap();
    }
    // an interrupted operation on each key: verify reports both
    let log = AuditLog::open_existing(&dir.config).unwrap().unwrap();
    for id in ["hidden", "open"] {
        let pending = log
            .intent(&Event::new(&Caller::cli(), Op::Unarchive).id(id))
            .unwrap();
        drop(pending);
    }
    // failures on the visible key whose words name the masked one, and a
    // lock's holder
    for words in [
        "refused - encryption key 'hidden' is in the way",
        "unable to acquire lock \".encryption-keys.lck\" - timed out after 10.0s - another \
         process holds the lock (pid 1 'init', user root)",
    ] {
        let pending = log
            .intent(&Event::new(&Caller::cli(), Op::Archive).id("open"))
            .unwrap();
        pending
            .done::<()>(Err(anyhow::format_err!("{words}")))
            .unwrap_err();
    }
    let ghost_fp = unrecorded_key(&dir, "ghost", 43);
    for auth_id in ["erin@pbs", MASKED] {
        let path = "/system/encryption-keys/ghost";
        grant(&dir.config, path, auth_id, "NoAccess", false);
    }
    let hidden = [
        "hidden".to_string(),
        hidden_fp,
        "ghost".to_string(),
        ghost_fp,
    ];
    (dir, hidden.to_vec())
}

/// Lists the key `id` no record names (a config copied in); returns its
/// fingerprint.
fn unrecorded_key(dir: &TestDir, id: &str, seed: u64) -> String {
    let keys = dir.config.encryption_keys();
    let key = key_config(seed);
    let fingerprint = key.fingerprint.unwrap().signature();
    let entry_text = format!(
        "sync-key: {id}\n\tcreated 1\n\tfingerprint {fingerprint}\n\tkdf none\n\tmodified 1\n\
         \tpath {}\n\n",
        keys.key_path(id).display()
    );
    let config_path = dir.path().join("encryption-keys.cfg");
    let mut config = std::fs::read_to_string(&config_path).unwrap();
    config.push_str(&entry_text);
    std::fs::write(&config_path, config).unwrap();
    std::fs::write(keys.key_path(id), key.to_json().unwrap()).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::from_mode(0o640);
    std::fs::set_permissions(keys.key_path(id), mode).unwrap();
    fingerprint
}

/// Finding 37: Sys.Audit on the store showed the audit records and trash
/// entries of keys the caller is masked on (their ids, fingerprints,
/// actors and client addresses), and `verify` named them too.
#[test]
fn a_masked_key_leaves_no_trace_in_the_audit_log_or_the_trash() {
    let (dir, hidden) = traces_of_masked_keys();
    let hidden: Vec<&str> = hidden.iter().map(String::as_str).collect();
    let mut store = Store::start(dir);
    // root sees all of it
    for path in [
        "config/encryption-key-audit",
        "config/encryption-key-trash",
        "config/encryption-key-audit/verify",
    ] {
        let body = store.root.get(path).body;
        assert!(
            body.contains("'hidden'") || body.contains("\"hidden\""),
            "{path}: {body}"
        );
    }

    let records = store.masked.get("config/encryption-key-audit").data();
    let ids = record_ids(&records);
    assert!(ids.iter().any(|ids| ids == &["open"]), "{ids:?}");
    assert_hides(&records.to_string(), &hidden);
    let results: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|record| record["result"].as_str())
        .collect();
    assert!(results.contains(&WITHHELD), "{results:?}");
    assert!(
        results
            .iter()
            .any(|result| result.ends_with("holds the lock")),
        "{results:?}"
    );
    assert_hides(&records.to_string(), &["pid 1", "'init'"]);
    let asked = store
        .masked
        .get("config/encryption-key-audit?id=hidden")
        .data();
    assert_eq!(asked, json!([]));

    let trash = store.masked.get("config/encryption-key-trash").data();
    let trashed: Vec<&str> = trash
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].as_str().unwrap())
        .collect();
    assert_eq!(trashed, ["open"]);
    assert_hides(&trash.to_string(), &hidden);

    verify_withholds_masked_keys(&mut store, &hidden);
}

/// The verify report of the store of [`traces_of_masked_keys`] as the
/// masked caller reads it: what concerns the keys it may see as root reads
/// it, the rest withheld or left out.
fn verify_withholds_masked_keys(store: &mut Store, hidden: &[&str]) {
    let report = store
        .masked
        .get("config/encryption-key-audit/verify")
        .data();
    assert_hides(&report.to_string(), hidden);
    assert!(report.to_string().contains("'open'"), "{report}");
    assert_eq!(
        report["unfinished"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert_eq!(report["unrecorded"], json!([]), "{report}");
    assert!(report.to_string().contains(WITHHELD), "{report}");
    let root_report = store.root.get("config/encryption-key-audit/verify").data();
    assert_eq!(root_report["unfinished"].as_array().unwrap().len(), 2);
    assert_eq!(root_report["unrecorded"][0]["id"], "ghost", "{root_report}");
    // counts and hashes are the whole log's
    for field in ["records", "head", "checkpoint"] {
        assert_eq!(report[field], root_report[field], "{field}");
    }
    let problems = |report: &Value| report["problems"].as_array().unwrap().len();
    assert_eq!(problems(&report), problems(&root_report));
}

/// Finding 38: `POST /config/encryption-key-restore` put back the missing
/// key file of a key the caller is masked on, with the store's Sys.Modify
/// alone.
#[test]
fn a_restore_writes_only_keys_the_caller_may_change() {
    let dir = two_keys();
    let bundle = export_bundle(&dir.config, &["hidden", "open"]);
    let hidden_file = dir.config.encryption_keys().key_path("hidden");
    let key_file = std::fs::read(&hidden_file).unwrap();
    std::fs::remove_file(&hidden_file).unwrap();
    let mut store = Store::start(dir);
    let passphrase = String::from_utf8(PASSPHRASE.to_vec()).unwrap();
    let before = store.files();
    let forbidden = "missing Sys.Modify on /system/encryption-keys/hidden";
    for ids in [
        None,
        Some(json!(["hidden"])),
        Some(json!(["open", "hidden"])),
    ] {
        let mut body = json!({"bundle": bundle, "passphrase": passphrase});
        if let Some(ids) = ids {
            body["id"] = ids;
        }
        store
            .masked
            .post_json("config/encryption-key-restore", &body)
            .expect(403, forbidden);
    }
    // one key from its key file, under the masked id
    let text = String::from_utf8(key_file.clone()).unwrap();
    let body = json!({"bundle": text, "id": ["hidden"]});
    store
        .masked
        .post_json("config/encryption-key-restore", &body)
        .expect(403, forbidden);
    store.assert_unchanged(&before, "a refused restore");
    assert!(!store.config().encryption_keys().key_path("hidden").exists());

    // the keys it may change come back as before
    let body = json!({"bundle": bundle, "passphrase": passphrase, "id": ["open"]});
    let restored = store
        .masked
        .post_json("config/encryption-key-restore", &body)
        .data();
    assert_eq!(restored[0]["id"], "open");
    assert_eq!(restored[0]["outcome"], "already-present");
    // and root restores the masked key's file
    let body = json!({"bundle": bundle, "passphrase": passphrase});
    store
        .root
        .post_json("config/encryption-key-restore", &body)
        .data();
    assert_eq!(std::fs::read(&hidden_file).unwrap(), key_file);
}

/// Finding 40: `GET /config/encryption-key-audit/checkpoint` signed and
/// wrote a checkpoint, so a caller with Sys.Audit alone made the daemon
/// write. It now answers the stored one; a fresh one is a POST, with
/// Sys.Modify on the store.
#[test]
fn reading_the_checkpoint_writes_nothing() {
    let dir = two_keys();
    // the stored checkpoint is the one signed after the last intent, not
    // after its outcome: a GET that signed one would write
    let log = AuditLog::open_existing(&dir.config).unwrap().unwrap();
    let stored_before = log.stored_checkpoint_text().unwrap().unwrap();
    add_user(&dir.config, "auditor@pbs", None, |_| {});
    let secret = add_token(&dir.config, "auditor@pbs!read", None);
    for auth_id in ["auditor@pbs", "auditor@pbs!read"] {
        grant(
            &dir.config,
            "/system/encryption-keys",
            auth_id,
            "Audit",
            true,
        );
    }
    let mut store = Store::start(dir);
    let mut auditor = Client::token(store.api.port, "auditor@pbs!read", &secret);
    let before = store.files();
    let answer = auditor.get("config/encryption-key-audit/checkpoint").data();
    store.assert_unchanged(&before, "a GET");
    let log = AuditLog::open_existing(&store.dir.config).unwrap().unwrap();
    let stored = log.stored_checkpoint().unwrap().unwrap();
    assert_eq!(answer["size"], stored.size);
    assert_eq!(answer["checkpoint"], stored_before.as_str());
    assert!(answer["verifier-key"].is_string(), "{answer}");

    auditor
        .post_json("config/encryption-key-audit/checkpoint", &json!({}))
        .expect(403, "missing Sys.Modify on /system/encryption-keys");
    store.assert_unchanged(&before, "a refused POST");
    let signed = store
        .root
        .post_json("config/encryption-key-audit/checkpoint", &json!({}))
        .data();
    let records = store.root.get("config/encryption-key-audit").data();
    assert_eq!(signed["size"], records.as_array().unwrap().len());
    let stored = log.stored_checkpoint().unwrap().unwrap();
    assert_eq!(signed["size"], stored.size);
}

/// Finding 42: `POST /config/encryption-key-export/verify` (the drill)
/// compared a bundle with the store for the store's Sys.Modify alone: a
/// caller masked on `hidden` drilled a bundle it made itself, holding a key
/// of its own under the id `hidden`, and read that the store has `hidden`
/// (`present-different`) and its fingerprint (`store-fingerprint`); a
/// bundle holding the masked key under another id named `hidden` as the id
/// the store has it under (`stored-as`).
#[test]
fn the_drill_tells_nothing_of_a_key_the_caller_may_not_see() {
    let dir = two_keys();
    let hidden_fp = fingerprint(&dir.config, "hidden");
    // bundles made elsewhere: any host running the tool makes them
    let elsewhere = TestDir::new();
    let keys = elsewhere.config.encryption_keys();
    keys.store_key("hidden", &key_config(50)).unwrap();
    // a copy of the masked key kept from before the mask
    keys.store_key("mine", &key_config(41)).unwrap();
    let probe = export_bundle(&elsewhere.config, &["hidden"]);
    let copy = export_bundle(&elsewhere.config, &["mine"]);
    let mut store = Store::start(dir);
    let passphrase = String::from_utf8(PASSPHRASE.to_vec()).unwrap();
    let drill = |bundle: &str| json!({"bundle": bundle, "passphrase": passphrase});

    let before = store.files();
    store
        .masked
        .post_json("config/encryption-key-export/verify", &drill(&probe))
        .expect(403, "missing Sys.Audit on /system/encryption-keys/hidden");
    store.assert_unchanged(&before, "a refused drill");
    let report = store
        .masked
        .post_json("config/encryption-key-export/verify", &drill(&copy))
        .data();
    assert_eq!(report["keys"][0]["id"], "mine");
    assert_hides(&report.to_string(), &["hidden"]);

    // root reads how the store has each
    let report = store
        .root
        .post_json("config/encryption-key-export/verify", &drill(&probe))
        .data();
    assert_eq!(report["keys"][0]["store"], "present-different");
    assert_eq!(report["keys"][0]["store-fingerprint"], hidden_fp.as_str());
    let report = store
        .root
        .post_json("config/encryption-key-export/verify", &drill(&copy))
        .data();
    assert_eq!(report["keys"][0]["stored-as"], "hidden");
}

/// Finding 43: `POST /config/encryption-key-trash/{name}/restore` checked
/// the privilege of the id the key had, not of the id it is restored as
/// (`as`): a caller masked on `hidden` restored a key of its own `as`
/// `hidden` and read in the refusal the fingerprint of the masked key that
/// holds the id (or, with the id free, put a key under an id it may not
/// change).
#[test]
fn a_trash_restore_needs_the_privilege_of_the_id_it_restores_as() {
    let dir = two_keys();
    let hidden_fp = fingerprint(&dir.config, "hidden");
    let keys = dir.config.encryption_keys();
    keys.archive_key("open", None).unwrap();
    keys.delete_key_with("open", &DeleteOptions::default())
        .unwrap();
    let mut store = Store::start(dir);
    let before = store.files();
    let answer = store.masked.post_json(
        "config/encryption-key-trash/open/restore",
        &json!({"as": "hidden"}),
    );
    // the refusal quoted it short
    assert_hides(&answer.body, &[&hidden_fp[..23]]);
    answer.expect(403, "missing Sys.Modify on /system/encryption-keys/hidden");
    store.assert_unchanged(&before, "a refused trash restore");
    // as the id it had, it comes back
    let restored = store
        .masked
        .post_json("config/encryption-key-trash/open/restore", &json!({}))
        .data();
    assert_eq!(restored["id"], "open");
}

/// Finding 44: a repair of a masked key's temp file was recorded with the
/// file's path (`encryption-keys/hidden.enc.tmp_...`) as its only id, and
/// the key's fingerprint: the audit list, which leaves out the records of
/// keys the caller may not see by their ids, showed both.
#[test]
fn a_repair_of_a_masked_keys_files_shows_no_trace_of_it() {
    let dir = two_keys();
    let hidden_fp = fingerprint(&dir.config, "hidden");
    let keys = dir.config.encryption_keys();
    // what a write of the key's file killed before its rename leaves: a
    // temp file holding the key, and an empty one
    let key_file = std::fs::read(keys.key_path("hidden")).unwrap();
    let key_dir = keys.key_dir();
    std::fs::write(key_dir.join("hidden.enc.tmp_AbC123"), &key_file).unwrap();
    std::fs::write(key_dir.join("hidden.enc.tmp_XyZ789"), b"").unwrap();
    for name in ["hidden.enc.tmp_AbC123", "hidden.enc.tmp_XyZ789"] {
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o640);
        std::fs::set_permissions(key_dir.join(name), mode).unwrap();
    }
    let report = dir.config.verify(true).unwrap();
    assert_eq!(report.repaired.len(), 2, "{report:?}");
    let mut store = Store::start(dir);
    let all = store.root.get("config/encryption-key-audit").data();
    let repairs = |records: &Value| {
        records
            .as_array()
            .unwrap()
            .iter()
            .filter(|record| record["op"] == "repair-temp-file")
            .count()
    };
    // an intent and an outcome of each
    assert_eq!(repairs(&all), 4, "{all}");
    let records = store.masked.get("config/encryption-key-audit").data();
    assert_eq!(repairs(&records), 0, "{records}");
    assert_hides(&records.to_string(), &["hidden", &hidden_fp]);
}

/// Finding 45: `POST /config/encryption-key-export` with `all` checked
/// Sys.Modify on every key of the store and refused naming the first
/// without it: a caller masked on `hidden` read its id in the 403; and a
/// named key the store lacks was 404 before its privilege was checked, so
/// a masked id answered 403 if the store had it and 404 if not.
#[test]
fn an_export_of_all_keys_names_no_key_the_caller_may_not_see() {
    let dir = two_keys();
    for auth_id in ["erin@pbs", MASKED] {
        let path = "/system/encryption-keys/nothing";
        grant(&dir.config, path, auth_id, "NoAccess", false);
    }
    let mut store = Store::start(dir);
    let passphrase = String::from_utf8(PASSPHRASE.to_vec()).unwrap();
    let export = |ids: Option<Value>| {
        let mut body = json!({"passphrase": passphrase});
        match ids {
            Some(ids) => body["id"] = ids,
            None => body["all"] = json!(true),
        }
        body
    };
    let answer = store
        .masked
        .post_json("config/encryption-key-export", &export(None));
    assert_hides(&answer.body, &["hidden"]);
    let exported = answer.data();
    assert_eq!(exported["keys"].as_array().unwrap().len(), 1, "{exported}");
    assert_eq!(exported["keys"][0]["id"], "open");
    // a masked id: the same answer whether the store has it or not
    for id in ["hidden", "nothing"] {
        store
            .masked
            .post_json("config/encryption-key-export", &export(Some(json!([id]))))
            .expect(
                403,
                &format!("missing Sys.Modify on /system/encryption-keys/{id}"),
            );
    }
    // root's all is every key
    let exported = store
        .root
        .post_json("config/encryption-key-export", &export(None))
        .data();
    assert_eq!(exported["keys"].as_array().unwrap().len(), 2, "{exported}");
}

/// Finding 49: `POST /config/encryption-keys` (create, import) checked
/// Sys.Modify on the store alone: a caller masked on `hidden` read in the
/// refusal that the store has `hidden` (`... already exists`), and made or
/// imported a key under a masked id the store lacks.
#[test]
fn a_key_is_stored_only_under_an_id_the_caller_may_change() {
    let dir = two_keys();
    for auth_id in ["erin@pbs", MASKED] {
        let path = "/system/encryption-keys/nothing";
        grant(&dir.config, path, auth_id, "NoAccess", false);
    }
    let imported = key_config(60).to_json().unwrap();
    let mut store = Store::start(dir);
    let before = store.files();
    // a masked id: the same answer whether the store has it or not
    for id in ["hidden", "nothing"] {
        for body in [json!({"id": id}), json!({"id": id, "key": imported})] {
            let answer = store.masked.post_json("config/encryption-keys", &body);
            assert_hides(&answer.body, &["already exists"]);
            answer.expect(
                403,
                &format!("missing Sys.Modify on /system/encryption-keys/{id}"),
            );
        }
    }
    store.assert_unchanged(&before, "a refused create");
    // an id it may change takes a key, made or imported
    store
        .masked
        .post_json("config/encryption-keys", &json!({"id": "mine"}))
        .data();
    let body = json!({"id": "mine-too", "key": imported});
    store
        .masked
        .post_json("config/encryption-keys", &body)
        .data();
}

/// Finding 50: a caller masked on `hidden` that holds a copy of the masked
/// key (kept from before the mask) stored it under an id of its own: the
/// import, the restore of a bundle and the trash restore refused it,
/// naming `hidden` as the id the store holds it under (what the drill
/// withholds since finding 42).
#[test]
fn a_refused_store_names_no_key_the_caller_may_not_see() {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    // the masked key in the trash under an id the caller may change, then
    // stored again as `hidden`
    keys.store_key("old", &key_config(41)).unwrap();
    keys.archive_key("old", None).unwrap();
    keys.delete_key_with("old", &DeleteOptions::default())
        .unwrap();
    keys.store_key("hidden", &key_config(41)).unwrap();
    keys.store_key("open", &key_config(42)).unwrap();
    let elsewhere = TestDir::new();
    elsewhere
        .config
        .encryption_keys()
        .store_key("mine", &key_config(41))
        .unwrap();
    let copy = export_bundle(&elsewhere.config, &["mine"]);
    let copy_file = key_config(41).to_json().unwrap();
    let mut store = Store::start(dir);
    let passphrase = String::from_utf8(PASSPHRASE.to_vec()).unwrap();
    let import = json!({"id": "mine", "key": copy_file});
    let restore = json!({"bundle": copy, "passphrase": passphrase});
    let refusals = [
        ("config/encryption-keys", &import),
        ("config/encryption-key-restore", &restore),
        ("config/encryption-key-trash/old/restore", &json!({})),
    ];

    let before = store.files();
    for (path, body) in refusals {
        let answer = store.masked.post_json(path, body);
        assert_hides(&answer.body, &["hidden"]);
        answer.expect(400, WITHHELD);
    }
    store.assert_unchanged(&before, "a refused store");
    // root reads where the key is
    for (path, body) in refusals {
        store.root.post_json(path, body).expect(400, "'hidden'");
    }
}

/// Finding 51: the drill records a verified copy of a protected key from
/// a bundle's key file that is the one this host holds of the key (finding
/// 26), and a restore stores a protected key new to the store from a file
/// nothing proves. A caller masked on `hidden`, whose key waits in the
/// trash with no verified copy (the daily purge keeps it), restored under
/// an id of its own a file of another key claiming `hidden`'s fingerprint
/// (fingerprints are no secret: every backup made with a key names its
/// fingerprint), drilled the same bundle, and the daily purge destroyed
/// `hidden` for good.
#[test]
fn a_forged_key_file_never_proves_a_copy_of_a_key_in_the_trash() {
    use pbs_api_types::Kdf;

    use crate::key_export_api::{PASSPHRASE, bundle_made_elsewhere};

    let dir = two_keys();
    let keys = dir.config.encryption_keys();
    let hidden = keys.entry("hidden").unwrap();
    keys.archive_key("hidden", None).unwrap();
    let at_once = DeleteOptions {
        keep_days: 0,
        ..DeleteOptions::default()
    };
    keys.delete_key_with("hidden", &at_once).unwrap();
    let trashed = std::fs::read_dir(dir.path().join("encryption-keys/.trash"))
        .unwrap()
        .count();
    // another key, protected, claiming the masked key's fingerprint
    let mut forged = KeyConfig::with_key(&[43; 32], b"forger's passphrase", Kdf::PBKDF2).unwrap();
    forged.fingerprint = hidden.info.fingerprint;
    let mut entry = hidden.clone();
    entry.id = "mine".to_string();
    entry.info.kdf = Kdf::PBKDF2;
    entry.info.path = Some(keys.key_path("mine").display().to_string());
    entry.archived_at = None;
    let bundle = bundle_made_elsewhere(&entry, &forged);
    let mut store = Store::start(dir);
    let body = json!({"bundle": bundle, "passphrase": PASSPHRASE});

    // the caller may not destroy the key itself
    let name = "hidden";
    store
        .masked
        .delete(&format!(
            "config/encryption-key-trash/{name}?without-verified-copy=1"
        ))
        .expect(403, "missing Sys.Modify on /system/encryption-keys/hidden");
    // the forged file is no key new to the store, with the forger's
    // passphrase or without one
    let before = store.files();
    let mut with_key_passphrase = body.clone();
    with_key_passphrase["key-passphrase"] = json!("forger's passphrase");
    for body in [&body, &with_key_passphrase] {
        store
            .masked
            .post_json("config/encryption-key-restore", body)
            .expect(400, "'mine' is passphrase protected and new to this store");
    }
    store.assert_unchanged(&before, "a refused restore");
    // so the drill proves no copy of the key
    let drilled = store
        .masked
        .post_json("config/encryption-key-export/verify", &body)
        .data();
    assert!(drilled["keys"][0]["copy-unproven"].is_string(), "{drilled}");
    // and the daily purge keeps it
    let purged = store
        .root
        .delete("config/encryption-key-trash?expired=1")
        .data();
    assert_eq!(purged["purged"], json!([]), "the masked key was destroyed");
    assert_eq!(purged["kept-without-copy"][0]["id"], "hidden", "{purged}");
    let left = std::fs::read_dir(store.dir.path().join("encryption-keys/.trash"))
        .unwrap()
        .count();
    assert_eq!(left, trashed, "{purged}");
}

/// A trash restore records the id it restores the key as and the trash
/// entry's name (`<id>@<time>-<random>`): root's restore of `hidden`'s
/// entry as `renamed`, an id the masked token may see, showed that token
/// a record naming `hidden@...`, where every other record of `hidden` is
/// left out (finding 37), and an interrupted one the verify report's words
/// of it: the entry's name was taken for an id of its own, which a grant
/// on the store reaches. Security.md finding 59.
#[test]
fn a_trash_entry_named_in_a_record_stands_for_the_key_it_is_of() {
    let dir = two_keys();
    let keys = dir.config.encryption_keys();
    keys.archive_key("hidden", None).unwrap();
    keys.delete_key_with("hidden", &DeleteOptions::default())
        .unwrap();
    let mut store = Store::start(dir);
    let restored = store
        .root
        .post_form("config/encryption-key-trash/hidden/restore", "as=renamed")
        .data();
    assert_eq!(restored["id"], "renamed", "{restored}");
    let records = store.masked.get("config/encryption-key-audit").data();
    assert_hides(&records.to_string(), &["hidden"]);
    let root_records = store.root.get("config/encryption-key-audit").data();
    let entry = record_ids(&root_records)
        .into_iter()
        .find(|ids| ids[0] == "renamed")
        .map(|ids| ids[1].clone())
        .unwrap();
    assert!(entry.starts_with("hidden@"), "{root_records}");
    // the same, interrupted: verify's problem quotes the entry's name
    let log = AuditLog::open_existing(store.config()).unwrap().unwrap();
    let event = Event::new(&Caller::cli(), Op::TrashRestore)
        .id("renamed")
        .id(entry.as_str());
    drop(log.intent(&event).unwrap());
    let report = store.masked.get("config/encryption-key-audit/verify");
    assert_hides(&report.body, &["hidden"]);
    let root_report = store.root.get("config/encryption-key-audit/verify");
    assert!(root_report.body.contains(&entry), "{}", root_report.body);
}

/// A verified copy lets a purge destroy the key under any id the store
/// holds it under, and the drill recorded one of every key of the bundle
/// whose bytes prove themselves, for a caller who may see the bundle's ids
/// alone: the token masked on `hidden`, holding a genuine copy of
/// `hidden`'s key from before the mask under an id of its own (`mine`),
/// drilled it, and root's purge of `hidden` (`remove --purge`, the daily
/// purge of the trash) destroyed the key whose only copy left was the
/// token's. Now the drill records no proof of a key the store holds under
/// an id the caller may not see, active or in the trash, and reports it
/// as a key the store lacks; root's drill proves it. Security.md finding
/// 61.
#[test]
fn a_drill_proves_no_copy_of_a_key_held_under_an_id_the_caller_may_not_see() {
    use pbs_api_types::Kdf;

    masked_copy_drilled(&key_config(41), &key_config(60));
    // a protected key file the same as the one this host holds proves a
    // copy (finding 26): to root only
    let protected =
        |seed| KeyConfig::with_key(&[seed; 32], b"key passphrase", Kdf::PBKDF2).unwrap();
    masked_copy_drilled(&protected(41), &protected(60));
}

/// The drill of [`a_drill_proves_no_copy_of_a_key_held_under_an_id_the_caller_may_not_see`]:
/// `hidden` holding `hidden_key`, the token's bundles holding `hidden_key`
/// and `lacked_key`, each as `mine`.
fn masked_copy_drilled(hidden_key: &KeyConfig, lacked_key: &KeyConfig) {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("hidden", hidden_key).unwrap();
    keys.store_key("open", &key_config(42)).unwrap();
    // made elsewhere: the masked key's copy under the token's own id, and
    // a key the store lacks under the same id, each in a bundle of its own
    let elsewhere = TestDir::new();
    elsewhere
        .config
        .encryption_keys()
        .store_key("mine", hidden_key)
        .unwrap();
    let copy = export_bundle(&elsewhere.config, &["mine"]);
    let other = TestDir::new();
    other
        .config
        .encryption_keys()
        .store_key("mine", lacked_key)
        .unwrap();
    let lacked = export_bundle(&other.config, &["mine"]);
    keys.archive_key("hidden", None).unwrap();
    let mut store = Store::start(dir);
    let passphrase = String::from_utf8(PASSPHRASE.to_vec()).unwrap();
    let drill = |bundle: &str| json!({"bundle": bundle, "passphrase": passphrase});
    // the report of a key the store lacks, its fingerprint aside
    let as_lacked = |report: &Value| {
        let mut key = report["keys"][0].clone();
        key.as_object_mut().unwrap().remove("fingerprint");
        key
    };
    let lacked_key = as_lacked(
        &store
            .masked
            .post_json("config/encryption-key-export/verify", &drill(&lacked))
            .data(),
    );

    // held archived as `hidden`
    let report = store
        .masked
        .post_json("config/encryption-key-export/verify", &drill(&copy))
        .data();
    assert_eq!(as_lacked(&report), lacked_key, "{report}");
    let unproven = report["keys"][0]["copy-unproven"].is_string();
    assert_eq!(unproven, hidden_key.is_protected(), "{report}");
    store
        .root
        .delete("config/encryption-keys/hidden?purge=1")
        .expect(400, "no verified copy of encryption key 'hidden'");

    // held in the trash as `hidden`, its keep time over
    let at_once = DeleteOptions {
        keep_days: 0,
        ..DeleteOptions::default()
    };
    store
        .config()
        .encryption_keys()
        .delete_key_with("hidden", &at_once)
        .unwrap();
    let report = store
        .masked
        .post_json("config/encryption-key-export/verify", &drill(&copy))
        .data();
    assert_eq!(as_lacked(&report), lacked_key, "{report}");
    let purged = store
        .root
        .delete("config/encryption-key-trash?expired=1")
        .data();
    assert_eq!(purged["purged"], json!([]), "the masked key was destroyed");
    assert_eq!(purged["kept-without-copy"][0]["id"], "hidden", "{purged}");

    // root may see every id: its drill proves the copy
    store
        .root
        .post_json("config/encryption-key-export/verify", &drill(&copy))
        .data();
    let purged = store
        .root
        .delete("config/encryption-key-trash?expired=1")
        .data();
    assert_eq!(purged["purged"][0]["id"], "hidden", "{purged}");
}
