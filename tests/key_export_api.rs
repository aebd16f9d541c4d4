//! Export, the restore drill, restore, paperkeys and protected imports over
//! HTTPS (`proxmox-backup-api` on loopback): the round trip between two
//! daemons, the privileges (per key for export and paperkey, on the store
//! for the drill and restore), secrets in request bodies only, and every
//! refusal as a 400 naming the field, with nothing written.

use serde_json::{Value, json};

use pbs_key_config::KeyConfig;
use pbs_test_kit::access::{add_token, admin_token, grant};
use pbs_test_kit::dirs::{snapshot, vectors_dir};
use pbs_test_kit::https::{Client, Resp, form_body, urlencode};
use pbs_test_kit::{ApiDaemon, Secrets, TestDir, key_config, typing_aid};

pub(crate) const PASSPHRASE: &str = "bundle pass phrase over https";

/// A daemon on its own config dir; killed when dropped.
struct Daemon {
    // dropped (killed) before its dir is removed
    api: ApiDaemon,
    dir: TestDir,
    /// `Authorization` of a token with Admin on `/`.
    root: String,
}

impl Daemon {
    fn start() -> Self {
        let dir = TestDir::new();
        let root = admin_token(&dir.config, "root@pam!admin");
        let log = dir.path().join("daemon.log");
        let api = ApiDaemon::start(dir.path(), &[], log);
        Self { api, dir, root }
    }

    fn client(&self, auth: &str) -> Client {
        Client::new(self.api.port).with_auth(&[("Authorization", auth)])
    }

    fn root(&self) -> Client {
        self.client(&self.root)
    }

    /// The store's files (lock files aside), the log file left out.
    fn files(&self) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        snapshot(self.dir.path(), &["daemon.log"])
    }
}

fn post(client: &mut Client, path: &str, body: Value) -> Resp {
    client.post_json(path, &body)
}

/// The bundle an export with `body` answers.
fn exported(client: &mut Client, body: Value) -> String {
    post(client, "config/encryption-key-export", body).data()["bundle"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The names of the parameters a 400 blames.
#[track_caller]
fn expect_400(resp: &Resp, param: &str, text: &str) {
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert!(
        resp.body.contains(&format!("parameter '{param}'")),
        "not blaming {param}: {}",
        resp.body
    );
    assert!(resp.body.contains(text), "{text:?} not in {}", resp.body);
}

/// The list (archived too) without paths.
fn listing(client: &mut Client) -> Value {
    let mut list = client
        .get("config/encryption-keys?include-archived=1")
        .data();
    for key in list.as_array_mut().unwrap() {
        key.as_object_mut().unwrap().remove("path");
    }
    list
}

#[test]
fn api_round_trip_between_two_daemons() {
    let source = Daemon::start();
    let secrets = Secrets::default();
    secrets.text("passphrase", PASSPHRASE);
    let mut root = source.root();
    let created = fill_the_source(&mut root, &secrets);
    let bundle = export_everything(&mut root, &secrets);
    drill_on_the_source(&mut root, &secrets, &bundle);
    let target = Daemon::start();
    let mut target_root = target.root();
    restore_into_an_empty_store(&mut root, &target, &mut target_root, &secrets, &bundle);
    let third = Daemon::start();
    let mut third_root = third.root();
    a_paperkey_typed_back(&mut root, &mut target_root, &mut third_root, &created);

    // no daemon log holds a key or the passphrase
    for daemon in [&source, &target, &third] {
        secrets.assert_absent("the daemon log", &daemon.api.log_text());
    }
}

/// Keys created, imported, imported protected (with a hint), archived.
/// Returns the created key.
fn fill_the_source(root: &mut Client, secrets: &Secrets) -> KeyConfig {
    let created = root
        .post_form("config/encryption-keys", "id=created-1&hint=first+one")
        .data();
    let created: KeyConfig = serde_json::from_value(created).unwrap();
    secrets.key_file("created-1", &created);
    assert_eq!(created.hint.as_deref(), Some("first one"));
    let imported = key_config(11);
    secrets.key_file("imported", &imported);
    root.post_json(
        "config/encryption-keys",
        &json!({"id": "imported-1", "key": imported.to_json().unwrap()}),
    )
    .data();
    let vector = std::fs::read_to_string(vectors_dir().join("keys/scrypt-protected.enc")).unwrap();
    let expect: Value = serde_json::from_slice(
        &std::fs::read(vectors_dir().join("keys/scrypt-protected.expect.json")).unwrap(),
    )
    .unwrap();
    let vector_pass = expect["passphrase"].as_str().unwrap();
    secrets.key(
        "vector",
        &hex::decode(expect["raw_key_hex"].as_str().unwrap()).unwrap(),
    );
    let stored = root
        .post_json(
            "config/encryption-keys",
            &json!({"id": "protected-1", "key": vector, "passphrase": vector_pass, "hint": "was protected"}),
        )
        .data();
    assert_eq!(stored["kdf"], Value::Null, "stored unprotected");
    assert_eq!(stored["fingerprint"], expect["fingerprint"]);
    root.post_form("config/encryption-keys/imported-1", "")
        .data();
    created
}

/// Export all: the answer holds the bundle (returned), encrypted; a list
/// of ids works too.
fn export_everything(root: &mut Client, secrets: &Secrets) -> String {
    let exported = post(
        root,
        "config/encryption-key-export",
        json!({"all": true, "include-archived": true, "passphrase": PASSPHRASE}),
    );
    secrets.assert_absent("the export answer", &exported.body);
    let exported = exported.data();
    assert_eq!(exported["keys"].as_array().unwrap().len(), 3);
    let bundle = exported["bundle"].as_str().unwrap().to_string();
    assert!(bundle.starts_with("{\"format\":\"pbs-keystore-export\""));
    // a list of ids works too
    let some = post(
        root,
        "config/encryption-key-export",
        json!({"id": ["created-1", "imported-1"], "passphrase": PASSPHRASE}),
    )
    .data();
    assert_eq!(some["keys"].as_array().unwrap().len(), 2);
    bundle
}

/// The drill on the source: every key present and equal.
fn drill_on_the_source(root: &mut Client, secrets: &Secrets, bundle: &str) {
    let report = post(
        root,
        "config/encryption-key-export/verify",
        json!({"bundle": bundle, "passphrase": PASSPHRASE}),
    );
    secrets.assert_absent("the drill's answer", &report.body);
    let report = report.data();
    assert!(
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["store"] == "present-equal"),
        "{report}"
    );
}

/// Restore into an empty store of another daemon: the same list, every
/// key verifies; again, nothing changes.
fn restore_into_an_empty_store(
    root: &mut Client,
    target: &Daemon,
    target_root: &mut Client,
    secrets: &Secrets,
    bundle: &str,
) {
    let restored = post(
        target_root,
        "config/encryption-key-restore",
        json!({"bundle": bundle, "passphrase": PASSPHRASE}),
    );
    secrets.assert_absent("the restore answer", &restored.body);
    let restored = restored.data();
    assert!(
        restored
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["outcome"] == "restored")
    );
    assert_eq!(listing(target_root), listing(root));
    for id in ["created-1", "imported-1", "protected-1"] {
        let verified = target_root
            .get(&format!("config/encryption-keys/{id}/verify"))
            .data();
        assert_eq!(verified["ok"], true, "{verified}");
    }
    // again: nothing changes
    let before = target.files();
    let again = post(
        target_root,
        "config/encryption-key-restore",
        json!({"bundle": bundle, "passphrase": PASSPHRASE}),
    )
    .data();
    assert!(
        again
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["outcome"] == "already-present")
    );
    assert_eq!(target.files(), before);
}

/// A paperkey from the source, typed back into the target under a new id
/// (refused: the key is there as created-1) and into a third store;
/// restore takes paperkey text, with one id.
fn a_paperkey_typed_back(
    root: &mut Client,
    target_root: &mut Client,
    third_root: &mut Client,
    created: &KeyConfig,
) {
    let paperkey = root
        .post_form("config/encryption-keys/created-1/paperkey", "")
        .data();
    let paperkey = paperkey.as_str().unwrap().to_string();
    assert!(paperkey.contains("-----BEGIN PROXMOX BACKUP KEY-----"));
    let html = root
        .post_form(
            "config/encryption-keys/created-1/paperkey",
            "output-format=html",
        )
        .data();
    assert!(html.as_str().unwrap().contains("<svg"));
    let typed = typing_aid(&paperkey);
    let resp = post(
        target_root,
        "config/encryption-keys",
        json!({"id": "typed-1", "key": typed}),
    );
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert!(
        resp.body.contains("already stored as 'created-1'"),
        "{}",
        resp.body
    );
    let typed_back: KeyConfig = serde_json::from_value(
        post(
            third_root,
            "config/encryption-keys",
            json!({"id": "typed-1", "key": typed}),
        )
        .data(),
    )
    .unwrap();
    assert_eq!(typed_back.data, created.data);
    // restore takes paperkey text, with one id
    let restored = post(
        third_root,
        "config/encryption-key-restore",
        json!({"bundle": paperkey, "id": "typed-1"}),
    )
    .data();
    assert_eq!(restored[0]["outcome"], "already-present");
}

#[test]
fn api_privileges_and_secrets_in_bodies_only() {
    let daemon = Daemon::start();
    let mut root = daemon.root();
    for id in ["k-one", "k-two"] {
        root.post_form("config/encryption-keys", &format!("id={id}"))
            .data();
    }
    let bundle = exported(&mut root, json!({"all": true, "passphrase": PASSPHRASE}));

    a_token_with_admin_on_one_key_exports_that_key_only(&daemon, &bundle);
    secrets_in_the_url_are_refused_and_not_logged(&daemon, &mut root, &bundle);
}

/// A token with Admin on one key only (its user too): that key it exports
/// and prints, no other, and no drill or restore.
fn a_token_with_admin_on_one_key_exports_that_key_only(daemon: &Daemon, bundle: &str) {
    let config = &daemon.dir.config;
    pbs_test_kit::access::add_user(config, "erin@pbs", None, |_| {});
    let secret = add_token(config, "erin@pbs!one", None);
    for auth_id in ["erin@pbs", "erin@pbs!one"] {
        grant(
            config,
            "/system/encryption-keys/k-one",
            auth_id,
            "Admin",
            false,
        );
    }
    let mut erin = daemon.client(&format!("PBSAPIToken=erin@pbs!one:{secret}"));
    let ok = post(
        &mut erin,
        "config/encryption-key-export",
        json!({"id": ["k-one"], "passphrase": PASSPHRASE}),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let body = json!({"id": ["k-one", "k-two"], "passphrase": PASSPHRASE});
    post(&mut erin, "config/encryption-key-export", body).expect(
        403,
        "permission check failed - missing Sys.Modify on /system/encryption-keys/k-two",
    );
    // all: the keys of its key list, which has no k-two (finding 45: the
    // refusal named it)
    let all = post(
        &mut erin,
        "config/encryption-key-export",
        json!({"all": true, "passphrase": PASSPHRASE}),
    );
    assert!(!all.body.contains("k-two"), "{}", all.body);
    let keys = all.data()["keys"].clone();
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    assert_eq!(keys[0]["id"], "k-one");
    erin.post_form("config/encryption-keys/k-one/paperkey", "")
        .data();
    erin.post_form("config/encryption-keys/k-two/paperkey", "")
        .expect(403, "/system/encryption-keys/k-two");
    for path in [
        "config/encryption-key-export/verify",
        "config/encryption-key-restore",
    ] {
        post(
            &mut erin,
            path,
            json!({"bundle": bundle, "passphrase": PASSPHRASE}),
        )
        .expect(403, "missing Sys.Modify on /system/encryption-keys");
    }
}

/// Secrets in the URL: refused, naming the parameter, before anything is
/// written; the access log names the refused requests without the query.
fn secrets_in_the_url_are_refused_and_not_logged(daemon: &Daemon, root: &mut Client, bundle: &str) {
    let before = daemon.files();
    for (path, query) in [
        (
            "config/encryption-key-export",
            format!("passphrase={}", urlencode(PASSPHRASE)),
        ),
        (
            "config/encryption-key-export/verify",
            format!("bundle={}", urlencode(bundle)),
        ),
        (
            "config/encryption-key-restore",
            format!("passphrase={}", urlencode(PASSPHRASE)),
        ),
        (
            "config/encryption-keys",
            format!("passphrase={}", urlencode(PASSPHRASE)),
        ),
    ] {
        let resp = root.send(
            "POST",
            &format!("{path}?{query}"),
            &[],
            Some(form_body("all=1&id=k-one")),
        );
        let name = query.split('=').next().unwrap();
        expect_400(&resp, name, "never in the URL");
        assert!(!resp.body.contains(PASSPHRASE));
    }
    assert_eq!(daemon.files(), before);
    // the access log names the refused requests, without their query
    let log = daemon.api.log_text();
    assert!(
        log.contains("\"POST /api2/json/config/encryption-key-restore\" 400"),
        "{log}"
    );
    let (header, payload) = bundle.trim_end().split_once('\n').unwrap();
    for secret in [PASSPHRASE, &urlencode(PASSPHRASE), header, payload] {
        assert!(!log.contains(secret), "{log}");
    }
}

#[test]
fn api_refusals_are_400_naming_the_field_and_write_nothing() {
    let daemon = Daemon::start();
    let mut root = daemon.root();
    root.post_form("config/encryption-keys", "id=k-one").data();
    let bundle = exported(
        &mut root,
        json!({"id": ["k-one"], "passphrase": PASSPHRASE}),
    );
    let before = daemon.files();

    bundles_refused_by_verify_and_restore(&mut root, &bundle);
    a_conflicting_restore_is_refused(&bundle);
    imports_refused(&mut root);
    exports_refused(&mut root);
    assert_eq!(daemon.files(), before);
}

/// Wrong passphrases and keys, corrupted and truncated bundles, missing
/// or doubled secrets: each a 400 of the drill and of the restore.
fn bundles_refused_by_verify_and_restore(root: &mut Client, bundle: &str) {
    let header_end = bundle.find('\n').unwrap();
    let mut flipped = bundle.as_bytes().to_vec();
    flipped[header_end + 20] ^= 0x01;
    let flipped = String::from_utf8(flipped).unwrap();
    let truncated = bundle[..bundle.len() - 30].to_string();
    let other_pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pbs-key-config/src/testdata/bundle-other-rsa2048.pem"
    ))
    .unwrap();
    for path in [
        "config/encryption-key-export/verify",
        "config/encryption-key-restore",
    ] {
        for (body, param, text) in [
            (
                json!({"bundle": bundle, "passphrase": "wrong pass phrase"}),
                "passphrase",
                "wrong passphrase or corrupted bundle",
            ),
            (
                json!({"bundle": flipped, "passphrase": PASSPHRASE}),
                "bundle",
                "corrupted",
            ),
            (
                json!({"bundle": truncated, "passphrase": PASSPHRASE}),
                "bundle",
                "truncated",
            ),
            (
                json!({"bundle": bundle, "master-key": other_pem}),
                "master-key",
                "not encrypted to an RSA key",
            ),
            (json!({"bundle": bundle}), "passphrase", "needs its secret"),
            (
                json!({"bundle": bundle, "passphrase": PASSPHRASE, "master-key": other_pem}),
                "master-key",
                "not both",
            ),
        ] {
            let resp = post(root, path, body);
            expect_400(&resp, param, text);
        }
    }
}

/// A restore that conflicts: the id with another key.
fn a_conflicting_restore_is_refused(bundle: &str) {
    let other = Daemon::start();
    let mut other_root = other.root();
    other_root
        .post_form("config/encryption-keys", "id=k-one")
        .data();
    let resp = post(
        &mut other_root,
        "config/encryption-key-restore",
        json!({"bundle": bundle, "passphrase": PASSPHRASE}),
    );
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert!(
        resp.body.contains("the store has 'k-one' with another key"),
        "{}",
        resp.body
    );
}

/// Imports: a protected key without, with a wrong, with a short
/// passphrase; a hint with a control character; a malformed key.
fn imports_refused(root: &mut Client) {
    let vector = std::fs::read_to_string(vectors_dir().join("keys/pbkdf2-with-hint.enc")).unwrap();
    for (body, param, text) in [
        (
            json!({"id": "new-key", "key": vector}),
            "passphrase",
            "passphrase protected",
        ),
        (
            json!({"id": "new-key", "key": vector, "passphrase": "wrong pass phrase"}),
            "passphrase",
            "wrong passphrase or corrupted key file (password hint: the usual one, with a twist)",
        ),
        (
            json!({"id": "new-key", "key": vector, "passphrase": "abc"}),
            "passphrase",
            "at least 5 characters",
        ),
        (
            json!({"id": "new-key", "hint": "two\nlines"}),
            "hint",
            "control character",
        ),
        (
            json!({"id": "new-key", "key": "{\"kdf\": null, \"data\": 5}"}),
            "key",
            "invalid key file",
        ),
        (
            json!({"id": "new-key", "key": "01: 0100 4603 - 0000"}),
            "key",
            "typing-aid line 01",
        ),
    ] {
        let resp = post(root, "config/encryption-keys", body);
        expect_400(&resp, param, text);
    }
}

/// Exports: no recipient, no keys named, an unknown key, a bad PEM.
fn exports_refused(root: &mut Client) {
    for (body, param, status) in [
        (json!({"all": true}), "passphrase", 400),
        (json!({"passphrase": PASSPHRASE}), "id", 400),
        (
            json!({"all": true, "master-pubkey": ["not a pem"]}),
            "master-pubkey",
            400,
        ),
    ] {
        let resp = post(root, "config/encryption-key-export", body);
        assert_eq!(resp.status, status, "{}", resp.body);
        assert!(
            resp.body.contains(&format!("parameter '{param}'")),
            "{}",
            resp.body
        );
    }
    post(
        root,
        "config/encryption-key-export",
        json!({"id": ["no-such-key"], "passphrase": PASSPHRASE}),
    )
    .expect(404, "no such encryption key 'no-such-key'");
    root.post_form("config/encryption-keys/no-such-key/paperkey", "")
        .expect(404, "no such encryption key 'no-such-key'");
}

/// The ids of a key list answer.
fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|key| key["id"].as_str().unwrap())
        .collect()
}

/// `list --no-verified-copy` (API `no-verified-copy=1`): the keys, active
/// or archived, that no drilled bundle holds, which the caller may see;
/// an export without its drill is no verified copy. The CLI lists the same.
#[test]
fn the_keys_without_a_verified_copy_are_listed() {
    let daemon = Daemon::start();
    let config = &daemon.dir.config;
    for (seed, id) in ["alpha", "bravo", "charlie"].into_iter().enumerate() {
        config
            .encryption_keys()
            .store_key(id, &key_config(70 + seed as u64))
            .unwrap();
    }
    let mut root = daemon.root();
    let uncopied = |client: &mut Client| {
        let list = client
            .get("config/encryption-keys?no-verified-copy=1")
            .data();
        ids(&list).into_iter().map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(uncopied(&mut root), ["alpha", "bravo", "charlie"]);

    // alpha and bravo copied and drilled; charlie exported, never drilled
    let bundle = exported(
        &mut root,
        json!({"id": ["alpha", "bravo"], "passphrase": PASSPHRASE}),
    );
    exported(
        &mut root,
        json!({"id": ["charlie"], "passphrase": PASSPHRASE}),
    );
    assert_eq!(uncopied(&mut root), ["alpha", "bravo", "charlie"]);
    post(
        &mut root,
        "config/encryption-key-export/verify",
        json!({"bundle": bundle, "passphrase": PASSPHRASE}),
    )
    .data();
    assert_eq!(uncopied(&mut root), ["charlie"]);

    // archived, charlie still decrypts its backups: still listed, where
    // the plain list leaves it out
    root.post_form("config/encryption-keys/charlie", "").data();
    assert_eq!(uncopied(&mut root), ["charlie"]);
    assert_eq!(
        ids(&root.get("config/encryption-keys").data()),
        ["alpha", "bravo"]
    );

    // the command line says the same
    let manager = pbs_test_kit::Manager::new(daemon.dir.path());
    let cli = manager
        .json_or_error(&["encryption-key", "list", "--no-verified-copy"])
        .unwrap();
    assert_eq!(ids(&serde_json::from_str(&cli).unwrap()), ["charlie"]);

    // a caller masked on charlie does not learn of it
    let secret = add_token(config, "root@pam!masked", None);
    grant(
        config,
        "/system/encryption-keys",
        "root@pam!masked",
        "Audit",
        true,
    );
    grant(
        config,
        "/system/encryption-keys/charlie",
        "root@pam!masked",
        "NoAccess",
        false,
    );
    let mut masked = daemon.client(&format!("PBSAPIToken=root@pam!masked:{secret}"));
    assert!(uncopied(&mut masked).is_empty());
}

/// `GET /config/encryption-keys?audit-marks=1` (what the web page's key
/// view reads, once instead of a show per key): every entry is what the
/// show of its key answers, marks included, after a history of exports,
/// drills, changes and an id taken again by another key.
#[test]
fn a_list_with_audit_marks_answers_as_each_show() {
    let daemon = Daemon::start();
    let mut root = daemon.root();
    for id in ["alpha", "bravo", "charlie", "delta", "echo"] {
        root.post_form("config/encryption-keys", &format!("id={id}"))
            .data();
    }
    let bundle = exported(
        &mut root,
        json!({"id": ["alpha", "bravo"], "passphrase": PASSPHRASE}),
    );
    post(
        &mut root,
        "config/encryption-key-export/verify",
        json!({"bundle": bundle, "passphrase": PASSPHRASE}),
    )
    .data();
    exported(
        &mut root,
        json!({"id": ["charlie"], "passphrase": PASSPHRASE}),
    );
    root.post_form("config/encryption-keys/delta", "").data();
    // echo removed, and its id taken by a new key: its marks are the new
    // key's, not those of the export of the old one
    exported(&mut root, json!({"id": ["echo"], "passphrase": PASSPHRASE}));
    root.post_form("config/encryption-keys/echo", "").data();
    root.delete("config/encryption-keys/echo").data();
    root.post_form("config/encryption-keys", "id=echo").data();

    let list = root
        .get("config/encryption-keys?include-archived=1&audit-marks=1")
        .data();
    let entries = list.as_array().unwrap();
    assert_eq!(ids(&list), ["alpha", "bravo", "charlie", "delta", "echo"]);
    for entry in entries {
        let id = entry["id"].as_str().unwrap();
        let shown = root.get(&format!("config/encryption-keys/{id}")).data();
        assert_eq!(entry, &shown, "{id}");
    }
    // the marks are there: a drill, an export alone, an archive, a new key
    let mark = |id: &str, name: &str| {
        let entry = entries.iter().find(|e| e["id"] == id).unwrap();
        entry[name]["op"].as_str().map(String::from)
    };
    assert_eq!(
        mark("alpha", "last-export-verify").as_deref(),
        Some("export-verify")
    );
    assert_eq!(mark("charlie", "last-exported").as_deref(), Some("export"));
    assert_eq!(mark("charlie", "last-export-verify"), None);
    assert_eq!(mark("delta", "last-changed-by").as_deref(), Some("archive"));
    assert_eq!(mark("echo", "last-exported"), None);
    assert_eq!(mark("echo", "last-changed-by").as_deref(), Some("create"));
    // without the parameter, no marks (the list as upstream's)
    let plain = root.get("config/encryption-keys?include-archived=1").data();
    assert!(plain[0].get("last-exported").is_none(), "{plain}");
}

/// A bundle made by hand on another host (as a forger makes one) holding
/// `key_file` for the entry `entry`, to PASSPHRASE.
pub(crate) fn bundle_made_elsewhere(
    entry: &pbs_api_types::CryptKey,
    key_file: &KeyConfig,
) -> String {
    bundle_of_keys_made_elsewhere(&[(entry, key_file)])
}

/// A bundle made by hand on another host holding each key file for its
/// entry, in this order, to PASSPHRASE.
fn bundle_of_keys_made_elsewhere(keys: &[(&pbs_api_types::CryptKey, &KeyConfig)]) -> String {
    use pbs_key_config::bundle::{ExportKey, ExportRecipient, create_bundle};

    let key_files: Vec<String> = keys
        .iter()
        .map(|(_, key_file)| key_file.to_json().unwrap())
        .collect();
    let export_keys: Vec<ExportKey> = keys
        .iter()
        .zip(&key_files)
        .map(|((entry, _), key_file)| ExportKey {
            config: entry,
            key_file: key_file.as_bytes(),
        })
        .collect();
    let bundle = create_bundle(
        "pbs-keystore/elsewhere",
        None,
        &export_keys,
        &[ExportRecipient::Passphrase(PASSPHRASE.as_bytes())],
    )
    .unwrap();
    String::from_utf8(bundle).unwrap()
}

/// A protected key whose key file is missing: the restore of a bundle
/// holding another key under its fingerprint (protected under another
/// passphrase, as a hand-made bundle holds it) is 400 blaming
/// `key-passphrase` and writes nothing, with or without one; the real
/// bundle's restore puts the file back only with the key's passphrase
/// (finding 33).
#[test]
fn a_protected_keys_missing_file_needs_its_passphrase() {
    use pbs_api_types::Kdf;

    const KEY_PASS: &str = "Zq7-hollow-Vortex-41";
    let daemon = Daemon::start();
    let keys = daemon.dir.config.encryption_keys();
    let real = KeyConfig::with_key(&[7; 32], KEY_PASS.as_bytes(), Kdf::PBKDF2).unwrap();
    keys.store_key("k-prot", &real).unwrap();
    let mut root = daemon.root();
    let bundle = exported(
        &mut root,
        json!({"id": ["k-prot"], "passphrase": PASSPHRASE}),
    );
    let key_file = keys.key_path("k-prot");
    std::fs::remove_file(&key_file).unwrap();

    // the forged bundle: the entry as exported, another key in the file
    let entry = keys.entry("k-prot").unwrap();
    let mut forged = KeyConfig::with_key(&[43; 32], b"forger's passphrase", Kdf::PBKDF2).unwrap();
    forged.fingerprint = entry.info.fingerprint;
    let forged_bundle = bundle_made_elsewhere(&entry, &forged);
    let before = daemon.files();
    for body in [
        json!({"bundle": forged_bundle, "passphrase": PASSPHRASE}),
        json!({"bundle": forged_bundle, "passphrase": PASSPHRASE, "key-passphrase": KEY_PASS}),
        json!({"bundle": bundle, "passphrase": PASSPHRASE}),
    ] {
        let resp = post(&mut root, "config/encryption-key-restore", body);
        expect_400(
            &resp,
            "key-passphrase",
            "encryption key 'k-prot' is missing",
        );
        assert!(!resp.body.contains(KEY_PASS), "{}", resp.body);
        assert_eq!(daemon.files(), before);
    }
    let restored = post(
        &mut root,
        "config/encryption-key-restore",
        json!({"bundle": bundle, "passphrase": PASSPHRASE, "key-passphrase": KEY_PASS}),
    )
    .data();
    assert_eq!(restored[0]["outcome"], "key-file-restored", "{restored}");
    keys.load_key("k-prot", true).unwrap();
    assert!(daemon.dir.config.verify(false).unwrap().is_clean());
}

/// A protected key the store lacks: its key file only claims its
/// fingerprint, so the restore stores it only with the passphrase that
/// decrypts it to that key (finding 51); without it, or with another, 400
/// blaming `key-passphrase` and nothing written.
#[test]
fn a_protected_key_new_to_the_store_needs_its_passphrase() {
    use pbs_api_types::Kdf;

    const KEY_PASS: &str = "Zq7-hollow-Vortex-41";
    let elsewhere = TestDir::new();
    let protected = KeyConfig::with_key(&[7; 32], KEY_PASS.as_bytes(), Kdf::Scrypt).unwrap();
    let keys = elsewhere.config.encryption_keys();
    keys.store_key("k-prot", &protected).unwrap();
    let bundle = bundle_made_elsewhere(&keys.entry("k-prot").unwrap(), &protected);
    let daemon = Daemon::start();
    let mut root = daemon.root();
    let before = daemon.files();
    for key_passphrase in [None, Some("not the key's passphrase")] {
        let mut body = json!({"bundle": bundle, "passphrase": PASSPHRASE});
        if let Some(key_passphrase) = key_passphrase {
            body["key-passphrase"] = json!(key_passphrase);
        }
        let resp = post(&mut root, "config/encryption-key-restore", body);
        expect_400(
            &resp,
            "key-passphrase",
            "encryption key 'k-prot' is passphrase protected and new to this store",
        );
        assert_eq!(daemon.files(), before);
    }
    let restored = post(
        &mut root,
        "config/encryption-key-restore",
        json!({"bundle": bundle, "passphrase": PASSPHRASE, "key-passphrase": KEY_PASS}),
    )
    .data();
    assert_eq!(restored[0]["outcome"], "restored", "{restored}");
    let stored = daemon.dir.config.encryption_keys();
    assert_eq!(
        std::fs::read(stored.key_path("k-prot")).unwrap(),
        protected.to_json().unwrap().as_bytes()
    );
}

/// A protected key restored from a bundle whose entry names another hint
/// than its key file holds (made by hand, or on a host whose entries and
/// key files disagree): the store lists the hint of the key file it
/// writes, the one the key's paperkey prints and a client shows when it
/// asks the passphrase, not the entry's. Before, the list showed the
/// entry's hint for a key file holding another (finding 72).
#[test]
fn a_restored_keys_hint_is_its_key_files() {
    use pbs_api_types::Kdf;

    const KEY_PASS: &str = "Zq7-hollow-Vortex-41";
    let elsewhere = TestDir::new();
    let mut protected = KeyConfig::with_key(&[7; 32], KEY_PASS.as_bytes(), Kdf::Scrypt).unwrap();
    protected.hint = Some("the passphrase on the blue card".into());
    let keys = elsewhere.config.encryption_keys();
    keys.store_key("k-prot", &protected).unwrap();
    let mut entry = keys.entry("k-prot").unwrap();
    entry.info.hint = Some("the passphrase on the red card".into());
    let bundle = bundle_made_elsewhere(&entry, &protected);

    let daemon = Daemon::start();
    let mut root = daemon.root();
    let restored = post(
        &mut root,
        "config/encryption-key-restore",
        json!({"bundle": bundle, "passphrase": PASSPHRASE, "key-passphrase": KEY_PASS}),
    )
    .data();
    assert_eq!(restored[0]["outcome"], "restored", "{restored}");
    let stored = daemon.dir.config.encryption_keys();
    let key_file = KeyConfig::load(stored.key_path("k-prot")).unwrap();
    assert_eq!(key_file.hint, protected.hint);
    let list = listing(&mut root);
    assert_eq!(list[0]["id"], "k-prot", "{list}");
    assert_eq!(
        list[0]["hint"], "the passphrase on the blue card",
        "the list names a hint its key file does not hold: {list}"
    );
}

/// A bundle holding this host's own protected key file of a key (kdf and
/// encrypted key as the store holds them), its hint changed to one no
/// store takes (a tab, a blank at its end): the drill records no verified copy
/// of it, since no restore gives the key back from that bundle, so a purge
/// by name keeps the key. Before, the drill took the file for this host's
/// (finding 26), the purge destroyed the key (200), and the restore of
/// the bundle into a new store was refused for the hint: the key lost
/// (finding 73).
#[test]
fn a_bundle_no_restore_takes_proves_no_copy() {
    use pbs_api_types::Kdf;

    const KEY_PASS: &str = "Zq7-hollow-Vortex-41";
    for hint in ["shelf\t2", "shelf 2 "] {
        let daemon = Daemon::start();
        let keys = daemon.dir.config.encryption_keys();
        let real = KeyConfig::with_key(&[7; 32], KEY_PASS.as_bytes(), Kdf::PBKDF2).unwrap();
        keys.store_key("k-prot", &real).unwrap();
        keys.archive_key("k-prot", None).unwrap();
        let mut altered = real.clone();
        altered.hint = Some(hint.to_string());
        let bundle = bundle_made_elsewhere(&keys.entry("k-prot").unwrap(), &altered);

        let mut root = daemon.root();
        let report = post(
            &mut root,
            "config/encryption-key-export/verify",
            json!({"bundle": bundle, "passphrase": PASSPHRASE}),
        )
        .data();
        assert_eq!(report["keys"][0]["store"], "present-equal", "{report}");
        assert!(report["keys"][0]["copy-unproven"].is_string(), "{report}");
        root.delete("config/encryption-keys/k-prot?purge=1")
            .expect(400, "no verified copy of encryption key 'k-prot'");
        keys.load_key("k-prot", false).unwrap();

        // what the drill would have vouched for: no restore takes it
        let fresh = Daemon::start();
        let resp = post(
            &mut fresh.root(),
            "config/encryption-key-restore",
            json!({"bundle": bundle, "passphrase": PASSPHRASE, "key-passphrase": KEY_PASS}),
        );
        expect_400(&resp, "hint", "hint");
    }
}

/// A bundle of several protected keys this store cannot take without
/// their passphrase (two new to it, one whose key file is missing) and
/// one unprotected key: the refusal names every one of the three, in
/// bundle order, each with what it is here, not only the first (an
/// operator fixing the restore wants the whole list at once), and not the
/// unprotected key, which needs no proof; with their passphrase all four
/// are restored.
#[test]
fn a_restore_refused_for_several_unproven_keys_names_each() {
    let (bundle, key_files) = bundle_of_protected_keys_made_elsewhere();
    let daemon = Daemon::start();
    let ours = daemon.dir.config.encryption_keys();
    let (id, missing) = &key_files[2];
    ours.store_key(id, missing).unwrap();
    std::fs::remove_file(ours.key_path(id)).unwrap();
    let mut root = daemon.root();
    let before = daemon.files();
    for key_passphrase in [None, Some("not the key's passphrase")] {
        let mut body = json!({"bundle": bundle, "passphrase": PASSPHRASE});
        if let Some(key_passphrase) = key_passphrase {
            body["key-passphrase"] = json!(key_passphrase);
        }
        let resp = post(&mut root, "config/encryption-key-restore", body);
        expect_400(&resp, "key-passphrase", "nothing was restored");
        let named: Vec<usize> = [
            "'k-new-1' is new",
            "'k-missing' is missing",
            "'k-new-2' is new",
        ]
        .iter()
        .map(|words| {
            resp.body
                .find(words)
                .unwrap_or_else(|| panic!("{words:?} not in {}", resp.body))
        })
        .collect();
        assert!(named.is_sorted(), "not in bundle order: {}", resp.body);
        assert!(!resp.body.contains("k-plain"), "{}", resp.body);
        // what the passphrase given found, for each key
        let found = resp.body.matches("wrong passphrase").count();
        let expected = 3 * usize::from(key_passphrase.is_some());
        assert_eq!(found, expected, "{}", resp.body);
        assert_eq!(daemon.files(), before);
    }
    let body =
        json!({"bundle": bundle, "passphrase": PASSPHRASE, "key-passphrase": SEVERAL_KEYS_PASS});
    let restored = post(&mut root, "config/encryption-key-restore", body).data();
    let outcomes: Vec<(&str, &str)> = restored
        .as_array()
        .unwrap()
        .iter()
        .map(|key| {
            (
                key["id"].as_str().unwrap(),
                key["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("k-new-1", "restored"),
            ("k-plain", "restored"),
            ("k-missing", "key-file-restored"),
            ("k-new-2", "restored"),
        ]
    );
}

/// The passphrase of the protected keys of
/// [`bundle_of_protected_keys_made_elsewhere`].
const SEVERAL_KEYS_PASS: &str = "Zq7-hollow-Vortex-41";

/// A bundle made on another host of three keys protected by
/// [`SEVERAL_KEYS_PASS`] and one unprotected (`k-plain`), in this order:
/// `k-new-1`, `k-plain`, `k-missing`, `k-new-2`; and each key file.
fn bundle_of_protected_keys_made_elsewhere() -> (String, [(&'static str, KeyConfig); 4]) {
    use pbs_api_types::Kdf;

    let elsewhere = TestDir::new();
    let theirs = elsewhere.config.encryption_keys();
    let key_files = [
        ("k-new-1", [11; 32], SEVERAL_KEYS_PASS),
        ("k-plain", [12; 32], ""),
        ("k-missing", [13; 32], SEVERAL_KEYS_PASS),
        ("k-new-2", [14; 32], SEVERAL_KEYS_PASS),
    ]
    .map(|(id, key, passphrase)| {
        let kdf = match passphrase {
            "" => Kdf::None,
            _ => Kdf::PBKDF2,
        };
        let key_file = KeyConfig::with_key(&key, passphrase.as_bytes(), kdf).unwrap();
        theirs.store_key(id, &key_file).unwrap();
        (id, key_file)
    });
    let entries: Vec<_> = key_files
        .iter()
        .map(|(id, _)| theirs.entry(id).unwrap())
        .collect();
    let in_bundle: Vec<_> = entries
        .iter()
        .zip(&key_files)
        .map(|(entry, (_, file))| (entry, file))
        .collect();
    (bundle_of_keys_made_elsewhere(&in_bundle), key_files)
}

/// The missing key file of a key, put back from a bundle that holds the
/// key's file with the other protection (made by hand: an unprotected file
/// for a protected key, a protected file for an unprotected one): refused
/// as a 400 blaming `bundle` that says why and writes nothing, not a
/// fault of the server.
#[test]
fn a_restore_that_would_change_a_keys_protection_is_400() {
    let daemon = Daemon::start();
    let missing = keys_missing_their_files(&daemon);
    let mut root = daemon.root();
    let before = daemon.files();
    for (entry, other_file, text) in missing {
        let bundle = bundle_made_elsewhere(&entry, &other_file);
        let resp = post(
            &mut root,
            "config/encryption-key-restore",
            json!({
                "bundle": bundle,
                "passphrase": PASSPHRASE,
                "key-passphrase": OTHER_PROTECTION_PASS,
            }),
        );
        expect_400(&resp, "bundle", text);
        assert_eq!(daemon.files(), before);
    }
}

/// One bundle holding both keys' files with the other protection, after
/// a key new to the store: the refusal names both keys, in bundle order,
/// each with its protection here and its file's, not only the first (an
/// operator fixing the restore wants the whole list at once); not the new
/// key, which is not stored; 400 blaming `bundle`, nothing written.
#[test]
fn a_restore_refused_for_several_keys_of_the_other_protection_names_each() {
    let daemon = Daemon::start();
    let new_key = KeyConfig::with_key(&[9; 32], b"", pbs_api_types::Kdf::None).unwrap();
    let new_entry = {
        let elsewhere = TestDir::new();
        let theirs = elsewhere.config.encryption_keys();
        theirs.store_key("k-new", &new_key).unwrap();
        theirs.entry("k-new").unwrap()
    };
    let missing = keys_missing_their_files(&daemon);
    let mut in_bundle = vec![(&new_entry, &new_key)];
    in_bundle.extend(missing.iter().map(|(entry, file, _)| (entry, file)));
    let bundle = bundle_of_keys_made_elsewhere(&in_bundle);
    let mut root = daemon.root();
    let before = daemon.files();
    let resp = post(
        &mut root,
        "config/encryption-key-restore",
        json!({
            "bundle": bundle,
            "passphrase": PASSPHRASE,
            "key-passphrase": OTHER_PROTECTION_PASS,
        }),
    );
    expect_400(&resp, "bundle", "nothing was restored");
    let named: Vec<usize> = missing
        .iter()
        .map(|(entry, _, text)| {
            let words = format!("encryption key '{}' {text}", entry.id);
            resp.body
                .find(&words)
                .unwrap_or_else(|| panic!("{words:?} not in {}", resp.body))
        })
        .collect();
    assert!(named.is_sorted(), "not in bundle order: {}", resp.body);
    assert!(resp.body.contains("2 keys"), "{}", resp.body);
    assert!(!resp.body.contains("k-new"), "{}", resp.body);
    assert_eq!(daemon.files(), before);
}

/// The passphrase of the protected key files of
/// [`keys_missing_their_files`].
const OTHER_PROTECTION_PASS: &str = "Zq7-hollow-Vortex-41";

/// Two keys of `daemon`'s store whose key files are missing, `k-prot`
/// (protected) and `k-plain` (not); for each, its entry as a bundle made
/// by hand would hold it with a key file of the same key and the other
/// protection, that file, and how the refusal says the two differ.
fn keys_missing_their_files(
    daemon: &Daemon,
) -> [(pbs_api_types::CryptKey, KeyConfig, &'static str); 2] {
    use pbs_api_types::Kdf;

    let keys = daemon.dir.config.encryption_keys();
    let file_of = |key: &[u8; 32], passphrase: &str, kdf| {
        KeyConfig::with_key(key, passphrase.as_bytes(), kdf).unwrap()
    };
    keys.store_key(
        "k-prot",
        &file_of(&[7; 32], OTHER_PROTECTION_PASS, Kdf::PBKDF2),
    )
    .unwrap();
    keys.store_key("k-plain", &file_of(&[8; 32], "", Kdf::None))
        .unwrap();
    [
        (
            "k-prot",
            file_of(&[7; 32], "", Kdf::None),
            "is passphrase protected (pbkdf2) in the store, and the key file given for it is \
             not protected",
        ),
        (
            "k-plain",
            file_of(&[8; 32], OTHER_PROTECTION_PASS, Kdf::Scrypt),
            "is not protected in the store, and the key file given for it is passphrase \
             protected (scrypt)",
        ),
    ]
    .map(|(id, other_file, text)| {
        std::fs::remove_file(keys.key_path(id)).unwrap();
        let mut entry = keys.entry(id).unwrap();
        entry.info.kdf = other_file.kdf_kind();
        (entry, other_file, text)
    })
}

/// The missing key file of a protected key, put back from its key as key
/// file or paperkey text (`bundle` with one `id`): the text is restored
/// unprotected, which would change the key's protection. Refused as the
/// bundle's such file is (a 400 blaming `bundle`, nothing written), not as
/// a fault of the server.
#[test]
fn a_key_text_that_would_change_a_keys_protection_is_400() {
    use pbs_api_types::Kdf;

    const KEY_PASS: &str = "Zq7-hollow-Vortex-41";
    let daemon = Daemon::start();
    let keys = daemon.dir.config.encryption_keys();
    let protected = KeyConfig::with_key(&[7; 32], KEY_PASS.as_bytes(), Kdf::PBKDF2).unwrap();
    keys.store_key("k-prot", &protected).unwrap();
    std::fs::remove_file(keys.key_path("k-prot")).unwrap();
    let plain = KeyConfig::with_key(&[7; 32], b"", Kdf::None).unwrap();
    let mut root = daemon.root();
    let before = daemon.files();
    for body in [
        json!({"bundle": plain.to_json().unwrap(), "id": ["k-prot"]}),
        json!({"bundle": protected.to_json().unwrap(), "id": ["k-prot"], "passphrase": KEY_PASS}),
    ] {
        let resp = post(&mut root, "config/encryption-key-restore", body);
        expect_400(
            &resp,
            "bundle",
            "is passphrase protected (pbkdf2) in the store, and the key file given for it is \
             not protected",
        );
        assert_eq!(daemon.files(), before);
    }
}

/// Finding 67 over HTTPS: a public key (PEM) sent as the `passphrase` of
/// a new bundle (the `master-pubkey` mixed up with it) is refused with 400
/// naming `passphrase`, for an export and a rotation's export, before
/// anything is written. Before the fix the export answered 200 with a
/// bundle anyone holding the public key, which is public, could open.
#[test]
fn a_public_key_sent_as_the_passphrase_of_a_new_bundle_is_400() {
    let daemon = Daemon::start();
    let mut root = daemon.root();
    root.post_form("config/encryption-keys", "id=created-1")
        .data();
    let manager = pbs_test_kit::Manager::new(daemon.dir.path());
    let run = manager.run(&pbs_test_kit::manager::sync_job_args(
        "push1",
        "pbs2",
        "store2",
        &[
            "--sync-direction",
            "push",
            "--active-encryption-key",
            "created-1",
        ],
    ));
    assert_eq!(run.code, 0, "{run:?}");
    let master = openssl::pkey::PKey::private_key_from_pem(include_bytes!(
        "../pbs-key-config/src/testdata/bundle-test-rsa2048.pem"
    ))
    .unwrap();
    let public = String::from_utf8(master.public_key_to_pem().unwrap()).unwrap();
    let before = daemon.files();
    for passphrase in [public.as_str(), "-----BEGIN PUBLIC KEY-----"] {
        let resp = post(
            &mut root,
            "config/encryption-key-export",
            json!({"id": ["created-1"], "passphrase": passphrase}),
        );
        expect_400(&resp, "passphrase", "every PEM file of its kind");
        let resp = post(
            &mut root,
            "config/encryption-key-rotate",
            json!({"job": ["push1"], "passphrase": passphrase}),
        );
        expect_400(&resp, "passphrase", "every PEM file of its kind");
    }
    assert_eq!(daemon.files(), before);
    // the public key where it belongs
    let bundle = exported(
        &mut root,
        json!({"id": ["created-1"], "passphrase": PASSPHRASE, "master-pubkey": [public]}),
    );
    post(
        &mut root,
        "config/encryption-key-export/verify",
        json!({"bundle": bundle, "passphrase": PASSPHRASE}),
    )
    .data();
}
