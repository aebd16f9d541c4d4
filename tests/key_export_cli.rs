//! `proxmox-backup-manager encryption-key export | export-verify | restore |
//! paperkey`, protected imports and `create --hint | --paperkey`, run as
//! the administrator runs them: the round trip into an empty config dir,
//! every refusal with nothing written, paperkeys typed back, upstream's
//! protected keys, and the passphrase prompts on a real terminal.
//!
//! Every output is held against the keys (the kit's secrets registry): no
//! key bytes anywhere but in a paperkey.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use openssl::pkey::PKey;
use serde_json::Value;

use pbs_config::ConfigDir;
use pbs_key_config::KeyConfig;
use pbs_test_kit::dirs::{cases_with_suffix, snapshot, vectors_dir};
use pbs_test_kit::pause::paused_at;
use pbs_test_kit::pty::PtyRun;
use pbs_test_kit::{Manager, Run, Sandbox, key_config, typing_aid};

const EXIT_ERROR: i32 = 255;
const PASSPHRASE: &str = "bundle pass phrase";
const MASTER_KEY_PEM: &[u8] =
    include_bytes!("../pbs-key-config/src/testdata/bundle-test-rsa2048.pem");
const OTHER_KEY_PEM: &[u8] =
    include_bytes!("../pbs-key-config/src/testdata/bundle-other-rsa2048.pem");
const MASTER_PASSPHRASE: &str = "master key pass phrase";

/// A sandbox with its config dir, input files beside it, and the manager
/// on it; the keys it knows are registered as secrets.
struct Store {
    sandbox: Sandbox,
    cli: Manager,
}

impl Store {
    fn new() -> Self {
        let sandbox = Sandbox::without_config_dir();
        let cli = Manager::new(sandbox.config_dir());
        Self { sandbox, cli }
    }

    /// Another store whose config dir is `name` in this sandbox (not
    /// created), knowing the same secrets.
    fn other(&self, name: &str, keys: &[KeyConfig]) -> Manager {
        let cli = Manager::new(&self.sandbox.file(name));
        for (index, key) in keys.iter().enumerate() {
            cli.secrets.key_file(&format!("key {index}"), key);
        }
        cli
    }

    fn file(&self, name: &str) -> PathBuf {
        self.sandbox.file(name)
    }

    /// Writes `data` to `name` beside the config dir; its path.
    fn input(&self, name: &str, data: impl AsRef<[u8]>) -> String {
        let path = self.file(name);
        std::fs::write(&path, data).unwrap();
        path.display().to_string()
    }

    fn config(&self) -> ConfigDir {
        ConfigDir::new(self.sandbox.config_dir()).unwrap()
    }
}

#[track_caller]
fn ok(cli: &Manager, args: &[&str]) -> String {
    let run = cli.run(args);
    assert_eq!(run.code, 0, "{args:?}: {run:?}");
    run.stdout
}

#[track_caller]
fn json(cli: &Manager, args: &[&str]) -> Value {
    let args = [&["--output-format", "json"][..], args].concat();
    serde_json::from_str(&ok(cli, &args)).unwrap()
}

/// `encryption-key export --all --include-archived` into `bundle`, to the
/// passphrase in the file `pass`.
fn export_all<'a>(bundle: &'a str, pass: &'a str) -> [&'a str; 8] {
    [
        "encryption-key",
        "export",
        "--all",
        "--include-archived",
        "--output-file",
        bundle,
        "--passphrase-file",
        pass,
    ]
}

/// `encryption-key VERB BUNDLE --passphrase-file PASS`: the drill
/// (`export-verify`) or `restore` of every key of a bundle.
fn with_passphrase<'a>(verb: &'a str, bundle: &'a str, pass: &'a str) -> [&'a str; 5] {
    ["encryption-key", verb, bundle, "--passphrase-file", pass]
}

/// A run that must fail; its stderr (one line), stdout empty.
#[track_caller]
fn fail(cli: &Manager, args: &[&str]) -> String {
    let run: Run = cli.run(args);
    assert_eq!(run.code, EXIT_ERROR, "{args:?}: {run:?}");
    assert!(run.stdout.is_empty(), "{args:?}: {run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {run:?}");
    run.stderr
}

/// `list --include-archived` without the `path` of each entry (which
/// names the config dir).
fn listing(cli: &Manager) -> Value {
    let mut list = json(cli, &["encryption-key", "list", "--include-archived"]);
    for key in list.as_array_mut().unwrap() {
        key.as_object_mut().unwrap().remove("path");
    }
    list
}

/// The created key printed by `create` (JSON), registered as a secret.
fn create(cli: &Manager, id: &str, extra: &[&str]) -> KeyConfig {
    let args = [&["encryption-key", "create", id][..], extra].concat();
    let run = pbs_test_kit::Manager::run_command(cli.command(&args), None);
    assert_eq!(run.code, 0, "{run:?}");
    let key = KeyConfig::from_json(run.stdout.as_bytes()).unwrap();
    cli.secrets.key_file(id, &key);
    key
}

/// The raw key and fingerprint of every key of `dir`, loaded (and so
/// checked) as the store loads keys.
fn loaded_keys(dir: &Path) -> Vec<(String, Vec<u8>, String)> {
    let config = ConfigDir::new(dir).unwrap();
    let keys = config.encryption_keys();
    let (list, _) = keys.list_keys(true).unwrap();
    list.iter()
        .map(|entry| {
            let key = keys.load_key_config(&entry.id, false).unwrap();
            let (raw, _, fingerprint) = key.decrypt(&|| unreachable!()).unwrap();
            (entry.id.clone(), raw.to_vec(), fingerprint.signature())
        })
        .collect()
}

/// An encrypted master-private.pem (as create-master-key writes it) and
/// its master-public.pem; (private, public, passphrase file) paths.
fn master_key_files(store: &Store) -> (String, String, String) {
    let master = PKey::private_key_from_pem(MASTER_KEY_PEM).unwrap();
    let private = master
        .private_key_to_pem_pkcs8_passphrase(
            openssl::symm::Cipher::aes_256_cbc(),
            MASTER_PASSPHRASE.as_bytes(),
        )
        .unwrap();
    (
        store.input("master-private.pem", private),
        store.input("master-public.pem", master.public_key_to_pem().unwrap()),
        store.input("master.pass", format!("{MASTER_PASSPHRASE}\n")),
    )
}

/// A store with created, imported, protected-imported and archived keys;
/// returns it and every key (as the store holds it: unprotected).
fn populated() -> (Store, Vec<KeyConfig>) {
    let store = Store::new();
    let cli = &store.cli;
    let mut keys = vec![
        create(cli, "created-1", &["--hint", "the first one"]),
        create(cli, "created-2", &[]),
    ];
    let imported = key_config(5);
    cli.secrets.key_file("imported", &imported);
    let file = store.input("imported.enc", imported.to_json().unwrap());
    ok(
        cli,
        &["encryption-key", "import", "imported-1", "--file", &file],
    );
    keys.push(imported);

    // upstream's scrypt-protected key, stored unprotected
    let vectors = vectors_dir().join("keys");
    let expect: Value = serde_json::from_slice(
        &std::fs::read(vectors.join("scrypt-protected.expect.json")).unwrap(),
    )
    .unwrap();
    let pass = store.input("vector.pass", expect["passphrase"].as_str().unwrap());
    let vector = vectors.join("scrypt-protected.enc").display().to_string();
    let text = ok(
        cli,
        &[
            "encryption-key",
            "import",
            "upstream-protected",
            "--file",
            &vector,
            "--passphrase-file",
            &pass,
        ],
    );
    assert!(text.contains("stored unprotected"), "{text}");
    let raw = hex::decode(expect["raw_key_hex"].as_str().unwrap()).unwrap();
    keys.push(KeyConfig::without_password(raw.try_into().unwrap()).unwrap());
    cli.secrets
        .key_file("upstream-protected", keys.last().unwrap());

    ok(cli, &["encryption-key", "archive", "created-2"]);
    ok(cli, &["encryption-key", "archive", "imported-1"]);
    (store, keys)
}

/// [`populated`], every key exported into `all.pbsx` with the passphrase
/// of `bundle.pass`: the store, its keys, the passphrase file and the
/// bundle.
fn populated_and_exported() -> (Store, Vec<KeyConfig>, String, String) {
    let (store, keys) = populated();
    let pass = store.input("bundle.pass", PASSPHRASE);
    let bundle = store.file("all.pbsx").display().to_string();
    ok(&store.cli, &export_all(&bundle, &pass));
    (store, keys, pass, bundle)
}

/// The `field` of every entry of the JSON array `list`.
fn strings<'a>(list: &'a Value, field: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|k| k[field].as_str().unwrap())
        .collect()
}

#[test]
fn export_verify_and_restore_into_an_empty_store_and_again() {
    let (store, keys) = populated();
    let pass = store.input("bundle.pass", format!("{PASSPHRASE}\n"));
    let bundle = store.file("all.pbsx").display().to_string();
    export_every_key_then_the_active_ones(&store, &bundle, &pass);
    drill_finds_every_key_intact(&store.cli, &bundle, &pass);
    let before = snapshot(store.sandbox.config_dir(), &[]);
    restore_into_a_new_store_and_again(&store, &keys, &bundle, &pass);
    // exporting and drilling changed nothing in the source store either
    assert_eq!(snapshot(store.sandbox.config_dir(), &[]), before);
}

/// Every key into `bundle` (0600, no key in clear), then only the active
/// ones into another bundle.
fn export_every_key_then_the_active_ones(store: &Store, bundle: &str, pass: &str) {
    let cli = &store.cli;
    let exported = json(cli, &export_all(bundle, pass));
    assert_eq!(exported["keys"].as_array().unwrap().len(), 4);
    assert_eq!(
        exported["recipients"],
        serde_json::json!(["passphrase (scrypt)"])
    );
    assert!(
        exported["origin"]
            .as_str()
            .unwrap()
            .starts_with("pbs-keystore/")
    );
    // 0600, and no key in clear in it
    assert_eq!(std::fs::metadata(bundle).unwrap().mode() & 0o7777, 0o600);
    let data = std::fs::read_to_string(bundle).unwrap();
    cli.secrets.assert_absent("the bundle", &data);
    // without --include-archived, only the active keys
    let active = store.file("active.pbsx").display().to_string();
    let only_active = json(
        cli,
        &[
            "encryption-key",
            "export",
            "--all",
            "--output-file",
            &active,
            "--passphrase-file",
            pass,
        ],
    );
    let ids = strings(&only_active["keys"], "id");
    assert_eq!(ids, ["created-1", "upstream-protected"]);
}

/// The drill: every key intact and as in the store.
fn drill_finds_every_key_intact(cli: &Manager, bundle: &str, pass: &str) {
    let report = json(cli, &with_passphrase("export-verify", bundle, pass));
    assert_eq!(strings(&report["keys"], "store"), ["present-equal"; 4]);
    let text = ok(cli, &with_passphrase("export-verify", bundle, pass));
    assert!(
        text.contains("result: every key in the bundle is intact (4 key(s))"),
        "{text}"
    );
}

/// Restore into a config dir that does not exist yet: the same keys, a
/// clean store; again: every key already present, nothing changes.
fn restore_into_a_new_store_and_again(store: &Store, keys: &[KeyConfig], bundle: &str, pass: &str) {
    let target = store.other("restored", keys);
    let restored = json(&target, &with_passphrase("restore", bundle, pass));
    for key in restored.as_array().unwrap() {
        assert_eq!(key["outcome"], "restored", "{key}");
        assert_eq!(key["fingerprint"].as_str().unwrap().len(), 95, "{key}");
    }
    assert_eq!(listing(&target), listing(&store.cli));
    assert_eq!(
        loaded_keys(&store.file("restored")),
        loaded_keys(store.sandbox.config_dir())
    );
    // the restored store is clean and canonical
    let verify = target.run(&["encryption-key", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
    // the drill against it: every key present and equal
    let report = json(&target, &with_passphrase("export-verify", bundle, pass));
    assert!(
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["store"] == "present-equal")
    );

    // again: every key already present, nothing changes
    let target_before = snapshot(&store.file("restored"), &[]);
    let again = json(&target, &with_passphrase("restore", bundle, pass));
    assert!(
        again
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["outcome"] == "already-present")
    );
    assert_eq!(snapshot(&store.file("restored"), &[]), target_before);
}

#[test]
fn export_to_a_master_key_and_restore_some_keys_with_it() {
    let (store, keys) = populated();
    let cli = &store.cli;
    let (private, public, master_pass) = master_key_files(&store);
    let bundle = store.file("rsa.pbsx").display().to_string();
    ok(
        cli,
        &[
            "encryption-key",
            "export",
            "created-1",
            "imported-1",
            "--output-file",
            &bundle,
            "--master-pubkey",
            &public,
        ],
    );
    // no passphrase recipient: the drill says to use the master key
    let err = fail(cli, &["encryption-key", "export-verify", &bundle]);
    assert!(
        err.contains("only - open it with --master-keyfile"),
        "{err}"
    );
    let text = ok(
        cli,
        &[
            "encryption-key",
            "export-verify",
            &bundle,
            "--master-keyfile",
            &private,
            "--master-passphrase-file",
            &master_pass,
        ],
    );
    assert!(text.contains("intact (2 key(s))"), "{text}");

    let target = store.other("partial", &keys);
    let restored = json(
        &target,
        &[
            "encryption-key",
            "restore",
            &bundle,
            "--id",
            "imported-1",
            "--master-keyfile",
            &private,
            "--master-passphrase-file",
            &master_pass,
        ],
    );
    assert_eq!(restored.as_array().unwrap().len(), 1);
    assert_eq!(restored[0]["id"], "imported-1");
    // archived in the bundle: archived in the store
    assert!(restored[0]["archived-at"].is_i64(), "{restored}");
    let list = listing(&target);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0]["archived-at"].is_i64());
    // an id the bundle does not have
    let err = fail(
        &target,
        &[
            "encryption-key",
            "restore",
            &bundle,
            "--id",
            "created-2",
            "--master-keyfile",
            &private,
            "--master-passphrase-file",
            &master_pass,
        ],
    );
    assert!(
        err.contains("the export bundle has no key 'created-2'"),
        "{err}"
    );
}

/// Bundles refused by export-verify and restore, made from the good
/// `data`: (what, bundle, secret option and file, expected text), the
/// secret `p` the right passphrase, `w` a wrong one, `r` a wrong RSA key.
fn refused_bundle_cases(data: &[u8]) -> Vec<(&'static str, Vec<u8>, &'static str, &'static str)> {
    let header_end = data.iter().position(|b| *b == b'\n').unwrap();

    let flipped = |at: usize| {
        let mut copy = data.to_vec();
        copy[at] ^= 0x01;
        copy
    };
    let text = String::from_utf8(data.to_vec()).unwrap();
    let (header, _) = text.split_once('\n').unwrap();
    let mut duplicated: Value = serde_json::from_str(header).unwrap();
    let first_id = duplicated["keys"][0]["id"].clone();
    duplicated["keys"][1]["id"] = first_id;
    let duplicated = text.replacen(header, &duplicated.to_string(), 1);

    vec![
        (
            "a flipped byte in the header",
            flipped(40),
            "p",
            "export bundle",
        ),
        (
            "a flipped byte in the payload",
            flipped(header_end + 100),
            "p",
            "corrupted",
        ),
        (
            "the last byte flipped",
            flipped(data.len() - 2),
            "p",
            "export bundle",
        ),
        (
            "a truncated file",
            data[..data.len() - 50].to_vec(),
            "p",
            "truncated",
        ),
        (
            "only the header",
            data[..header_end].to_vec(),
            "p",
            "truncated",
        ),
        (
            "a duplicated id",
            duplicated.into_bytes(),
            "p",
            "lists key 'created-1' twice",
        ),
        (
            "a wrong passphrase",
            data.to_vec(),
            "w",
            "wrong passphrase or corrupted bundle",
        ),
        (
            "a wrong RSA key",
            data.to_vec(),
            "r",
            "not encrypted to RSA key",
        ),
    ]
}

/// The ways a bundle is refused: each by export-verify and by restore,
/// into an existing store and into a new one, with nothing written.
#[test]
fn refused_bundles_and_restores_write_nothing() {
    let (store, keys) = populated();
    let cli = &store.cli;
    let pass = store.input("bundle.pass", PASSPHRASE);
    let wrong_pass = store.input("wrong.pass", "not the pass phrase");
    let (_, public, _) = master_key_files(&store);
    let other_key = store.input("other.pem", OTHER_KEY_PEM);
    let bundle = store.file("all.pbsx").display().to_string();
    let export = [
        &export_all(&bundle, &pass)[..],
        &["--master-pubkey", &public],
    ]
    .concat();
    ok(cli, &export);
    let cases = refused_bundle_cases(&std::fs::read(&bundle).unwrap());
    let target = store.other("target", &keys);
    // an existing target store, with a key of its own
    ok(&target, &["encryption-key", "create", "own-key"]);
    let fresh = store.other("fresh", &keys);
    for (what, bad, secret, expected) in cases {
        let file = store.input("bad.pbsx", &bad);
        let secret_args: Vec<&str> = match secret {
            "p" => vec!["--passphrase-file", &pass],
            "w" => vec!["--passphrase-file", &wrong_pass],
            _ => vec!["--master-keyfile", &other_key],
        };
        for (manager, name) in [(cli, "source"), (&target, "target"), (&fresh, "fresh")] {
            let dir = manager.dir().to_owned();
            let before = dir.exists().then(|| snapshot(&dir, &[]));
            for verb in ["export-verify", "restore"] {
                let args = [&["encryption-key", verb, file.as_str()][..], &secret_args].concat();
                let err = fail(manager, &args);
                assert!(err.contains(expected), "{what}, {verb} into {name}: {err}");
                assert!(err.contains("bad.pbsx"), "{what}: {err}");
            }
            match &before {
                Some(before) => assert_eq!(&snapshot(&dir, &[]), before, "{what} in {name}"),
                None => assert!(!dir.exists(), "{what}: {dir:?} was created"),
            }
        }
    }
}

#[test]
fn restore_refuses_a_taken_id_or_key_naming_both() {
    let (store, keys) = populated();
    let cli = &store.cli;
    let pass = store.input("bundle.pass", PASSPHRASE);
    let bundle = store.file("all.pbsx").display().to_string();
    ok(cli, &export_all(&bundle, &pass));
    let mut known = keys.clone();
    let intruder = key_config(77);
    known.push(intruder.clone());
    let target = store.other("target", &known);
    // created-1's id with another key
    let file = store.input("intruder.enc", intruder.to_json().unwrap());
    ok(
        &target,
        &["encryption-key", "import", "created-1", "--file", &file],
    );
    // imported-1's key under another id
    let file = store.input("same.enc", key_config(5).to_json().unwrap());
    ok(
        &target,
        &["encryption-key", "import", "renamed-1", "--file", &file],
    );
    let before = snapshot(target.dir(), &[]);
    let err = fail(&target, &with_passphrase("restore", &bundle, &pass));
    let fingerprint = |key: &KeyConfig| key.fingerprint.unwrap().signature();
    for needle in [
        format!("key 'created-1' (fingerprint {})", fingerprint(&keys[0])),
        format!(
            "the store has 'created-1' with another key (fingerprint {})",
            fingerprint(&intruder)
        ),
        format!("key 'imported-1' (fingerprint {})", fingerprint(&keys[2])),
        "the store has this key as 'renamed-1'".to_string(),
        "nothing was restored".to_string(),
    ] {
        assert!(err.contains(&needle), "{needle:?} not in {err}");
    }
    assert_eq!(snapshot(target.dir(), &[]), before);
    // the drill says the same, and still succeeds: the bundle is intact
    let report = json(&target, &with_passphrase("export-verify", &bundle, &pass));
    let created = &report["keys"][0];
    assert_eq!(created["store"], "present-different");
    assert_eq!(created["store-fingerprint"], fingerprint(&intruder));
    assert_eq!(report["keys"][2]["stored-as"], "renamed-1");
    // only the keys that do not conflict
    let restored = json(
        &target,
        &[
            "encryption-key",
            "restore",
            &bundle,
            "--id",
            "created-2",
            "--id",
            "upstream-protected",
            "--passphrase-file",
            &pass,
        ],
    );
    assert_eq!(restored.as_array().unwrap().len(), 2);
}

/// A key file under one of the bundle's ids that the target's config does
/// not list (an orphan an interrupted store left) refuses the whole restore
/// before anything is written, naming the file and `verify --repair`;
/// before, the keys ahead of it in the bundle were restored and the
/// restore failed at it, part done. Once repaired, the restore goes through.
#[test]
fn an_orphan_key_file_refuses_the_restore_before_anything_is_written() {
    let (store, keys, pass, bundle) = populated_and_exported();
    let target = store.other("target", &keys);
    ok(&target, &["encryption-key", "create", "own-key"]);
    // the last of the bundle's keys has an orphan file in the target
    let orphan = target.dir().join("encryption-keys/upstream-protected.enc");
    std::fs::write(&orphan, key_config(91).to_json().unwrap()).unwrap();
    let before = snapshot(target.dir(), &[]);
    let err = fail(&target, &with_passphrase("restore", &bundle, &pass));
    assert!(
        err.contains(&format!("{orphan:?}"))
            && err.contains("verify --repair")
            && err.contains("nothing was restored"),
        "{err}"
    );
    assert_eq!(snapshot(target.dir(), &[]), before);

    ok(&target, &["encryption-key", "verify", "--repair"]);
    let restored = json(&target, &with_passphrase("restore", &bundle, &pass));
    assert_eq!(restored.as_array().unwrap().len(), keys.len(), "{restored}");
}

/// A key the target has already is reported as the store has it, not as
/// the bundle does: created-2, archived in the bundle, active in the
/// target, is told `already-present` without an archive time (before: the
/// bundle's, so the table said `archived` of an active key).
#[test]
fn a_key_already_present_is_reported_as_the_store_has_it() {
    let (store, keys, pass, bundle) = populated_and_exported();
    let target = store.other("target", &keys);
    let file = store.input("created-2.enc", keys[1].to_json().unwrap());
    ok(
        &target,
        &["encryption-key", "import", "created-2", "--file", &file],
    );
    let restored = json(&target, &with_passphrase("restore", &bundle, &pass));
    let reported = restored
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["id"] == "created-2")
        .unwrap();
    assert_eq!(reported["outcome"], "already-present", "{restored}");
    assert!(reported.get("archived-at").is_none(), "{restored}");
    // and it is still active
    let listed = listing(&target);
    let stored = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["id"] == "created-2")
        .unwrap();
    assert!(stored.get("archived-at").is_none(), "{listed}");
}

/// Export arguments that are refused, each with the text of its refusal.
fn export_refusals<'a>(
    existing: &'a str,
    out: &'a str,
    pass: &'a str,
    empty_pass: &'a str,
) -> [(Vec<&'a str>, &'static str); 9] {
    [
        (
            vec![
                "--all",
                "--output-file",
                existing,
                "--passphrase-file",
                pass,
            ],
            "exists already - refusing to overwrite it",
        ),
        (vec!["--all", "--output-file", out], "no recipient"),
        (
            vec![
                "no-such-key",
                "--output-file",
                out,
                "--passphrase-file",
                pass,
            ],
            "no such encryption key 'no-such-key'",
        ),
        (
            vec![
                "created-1",
                "--all",
                "--output-file",
                out,
                "--passphrase-file",
                pass,
            ],
            "name keys or all, not both",
        ),
        (
            vec![
                "created-1",
                "--include-archived",
                "--output-file",
                out,
                "--passphrase-file",
                pass,
            ],
            "include-archived goes with all",
        ),
        (
            vec!["--output-file", out, "--passphrase-file", pass],
            "name the keys to export, or all",
        ),
        (
            vec![
                "created-1",
                "created-1",
                "--output-file",
                out,
                "--passphrase-file",
                pass,
            ],
            "is named twice",
        ),
        (
            vec![
                "--all",
                "--output-file",
                out,
                "--passphrase-file",
                empty_pass,
            ],
            "holds no passphrase",
        ),
        (
            vec!["../x", "--output-file", out, "--passphrase-file", pass],
            "invalid encryption key id",
        ),
    ]
}

#[test]
fn export_refusals_change_nothing() {
    let (store, _keys) = populated();
    let cli = &store.cli;
    let pass = store.input("bundle.pass", PASSPHRASE);
    let empty_pass = store.input("empty.pass", "\n");
    let existing = store.input("existing.pbsx", "keep me");
    let out = store.file("out.pbsx").display().to_string();
    let before = snapshot(store.sandbox.config_dir(), &[]);
    for (args, expected) in export_refusals(&existing, &out, &pass, &empty_pass) {
        let args = [&["encryption-key", "export"][..], &args].concat();
        let err = fail(cli, &args);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!Path::new(&out).exists(), "{args:?}");
    }
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");
    assert_eq!(snapshot(store.sandbox.config_dir(), &[]), before);
}

#[test]
fn paperkeys_typed_back_reproduce_the_key_and_a_typo_is_named() {
    let store = Store::new();
    let cli = &store.cli;
    let key = create(cli, "paper-1", &["--hint", "in the safe"]);
    let fingerprint = key.fingerprint.unwrap().signature();
    // the paperkey holds the key: its output is not checked for secrets
    let run = Manager::run_command(
        cli.command(&["encryption-key", "paperkey", "paper-1"]),
        None,
    );
    assert_eq!(run.code, 0, "{run:?}");
    let paperkey = run.stdout;
    assert!(paperkey.contains("-----BEGIN PROXMOX BACKUP KEY-----"));
    assert!(paperkey.contains(&format!("Fingerprint: {fingerprint}")));
    assert!(paperkey.contains("Key id:      paper-1"));
    let lines = typing_aid(&paperkey);
    assert!(lines.lines().count() >= 4, "{paperkey}");

    typed_back_into_new_stores(&store, &key, &paperkey, &lines);
    a_typo_is_refused_naming_its_line(&store, &key, &lines);
    printed_as_html_and_into_a_new_file(&store, &paperkey);
}

/// The whole page, and the typing aid alone, each into a new store, by
/// import and by restore.
fn typed_back_into_new_stores(store: &Store, key: &KeyConfig, paperkey: &str, lines: &str) {
    let fingerprint = key.fingerprint.unwrap().signature();
    for (name, text) in [("page", paperkey), ("typed", lines)] {
        let target = store.other(name, std::slice::from_ref(key));
        let file = store.input(&format!("{name}.txt"), text);
        ok(
            &target,
            &["encryption-key", "import", "paper-1", "--file", &file],
        );
        let loaded = loaded_keys(&store.file(name));
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].1, key.data, "{name}");
        assert_eq!(loaded[0].2, fingerprint, "{name}");
        // restore takes it too (one --id), and then it is there already
        let restored = json(
            &target,
            &["encryption-key", "restore", &file, "--id", "paper-1"],
        );
        assert_eq!(restored[0]["outcome"], "already-present");
    }
    let restored_dir = store.other("restored", std::slice::from_ref(key));
    let file = store.input("page-again.txt", paperkey);
    let restored = json(
        &restored_dir,
        &["encryption-key", "restore", &file, "--id", "paper-again"],
    );
    assert_eq!(restored[0]["outcome"], "restored");
    assert_eq!(restored[0]["fingerprint"], fingerprint);
    let err = fail(&restored_dir, &["encryption-key", "restore", &file]);
    assert!(err.contains("exactly one --id ID"), "{err}");
}

/// One changed character in line 02: refused, naming the line, nothing
/// written.
fn a_typo_is_refused_naming_its_line(store: &Store, key: &KeyConfig, lines: &str) {
    let mut typo: Vec<String> = lines.lines().map(str::to_string).collect();
    let line = &mut typo[1];
    let at = line.find(' ').unwrap() + 1;
    let changed = if &line[at..at + 1] == "0" { "1" } else { "0" };
    line.replace_range(at..at + 1, changed);
    let file = store.input("typo.txt", typo.join("\n"));
    let target = store.other("typo", std::slice::from_ref(key));
    let err = fail(
        &target,
        &["encryption-key", "import", "paper-1", "--file", &file],
    );
    assert!(err.contains("typing-aid line 02 (input line 2)"), "{err}");
    assert!(!target.dir().exists());
}

/// `--output-format html`, and `--output-file`: a new 0600 file that
/// records its own print in its audit checkpoint.
fn printed_as_html_and_into_a_new_file(store: &Store, paperkey: &str) {
    let cli = &store.cli;
    let run = Manager::run_command(
        cli.command(&[
            "--output-format",
            "html",
            "encryption-key",
            "paperkey",
            "paper-1",
        ]),
        None,
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("<!DOCTYPE html>") && run.stdout.contains("<svg"));
    let out = store.file("paper.txt");
    let out_text = out.display().to_string();
    let text = ok(
        cli,
        &[
            "encryption-key",
            "paperkey",
            "paper-1",
            "--output-file",
            &out_text,
        ],
    );
    assert!(text.contains("written to"), "{text}");
    assert_eq!(std::fs::metadata(&out).unwrap().mode() & 0o7777, 0o600);
    // the same paperkey, but for its audit checkpoint: each print records
    // itself, and its paper carries the checkpoint signed after that record
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(without_checkpoint(&written), without_checkpoint(paperkey));
    assert!(
        checkpoint_size(&written) > checkpoint_size(paperkey),
        "{written}"
    );
    let err = fail(
        cli,
        &[
            "encryption-key",
            "paperkey",
            "paper-1",
            "--output-file",
            &out_text,
        ],
    );
    assert!(err.contains("exists already"), "{err}");
    // html is for paperkeys only
    let err = fail(cli, &["--output-format", "html", "encryption-key", "list"]);
    assert!(
        err.contains("html is for 'encryption-key paperkey' only"),
        "{err}"
    );
    let err = fail(cli, &["encryption-key", "paperkey", "no-such-key"]);
    assert!(
        err.contains("no such encryption key 'no-such-key'"),
        "{err}"
    );
}

#[test]
fn create_with_a_hint_and_as_a_paperkey() {
    let store = Store::new();
    let cli = &store.cli;
    create(cli, "hinted-1", &["--hint", "offsite tape"]);
    let shown = json(cli, &["encryption-key", "show", "hinted-1"]);
    assert_eq!(shown["hint"], "offsite tape");
    let err = fail(
        cli,
        &[
            "encryption-key",
            "create",
            "hinted-2",
            "--hint",
            "two\tparts",
        ],
    );
    assert!(
        err.contains("invalid --hint - value contains a control character"),
        "{err}"
    );

    // --paperkey on a pipe: the paperkey, which types back to the key
    let run = Manager::run_command(
        cli.command(&["encryption-key", "create", "paper-2", "--paperkey"]),
        None,
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("only time"), "{run:?}");
    let listed = json(cli, &["encryption-key", "show", "paper-2"]);
    let target = store.other("typed", &[]);
    let file = store.input("typed.txt", typing_aid(&run.stdout));
    ok(
        &target,
        &["encryption-key", "import", "paper-2", "--file", &file],
    );
    let typed = json(&target, &["encryption-key", "show", "paper-2"]);
    assert_eq!(typed["fingerprint"], listed["fingerprint"]);
    let err = fail(
        cli,
        &[
            "encryption-key",
            "create",
            "paper-3",
            "--paperkey",
            "--print-key",
        ],
    );
    assert!(
        err.contains("--paperkey") && err.contains("--print-key"),
        "{err}"
    );
}

/// Finding 63: a paperkey typed back to the key its hint held. A key's
/// hint is text of whoever made its key file; a protected key's paperkey
/// prints it above the key's own block, and `import` and `restore` read
/// the first BEGIN marker of the page on, so a hint holding a whole block
/// (another key's file between the markers, protected by the same
/// passphrase) was the key they stored. A hint
/// holding the END marker cut the key's own block short: that paper did
/// not read back at all. Now only a marker on a line of its own counts.
#[test]
fn a_paperkey_types_back_to_its_own_key_whatever_its_hint_holds() {
    use pbs_api_types::Kdf;
    use pbs_key_config::paperkey::{BEGIN_MARKER, END_MARKER};

    const KEY_PASS: &str = "Zq7-hollow-Vortex-41";
    let store = Store::new();
    let cli = &store.cli;
    let decoy = KeyConfig::with_key(&[7; 32], KEY_PASS.as_bytes(), Kdf::PBKDF2).unwrap();
    let decoy_file = serde_json::to_string(&decoy).unwrap();
    let mut key = KeyConfig::with_key(&[9; 32], KEY_PASS.as_bytes(), Kdf::PBKDF2).unwrap();
    key.hint = Some(format!("{BEGIN_MARKER}{decoy_file}{END_MARKER}"));
    cli.secrets.key("decoy", &[7; 32]);
    cli.secrets.key("k-hinted", &[9; 32]);
    store
        .config()
        .encryption_keys()
        .store_key("k-hinted", &key)
        .unwrap();
    let plain = create(
        cli,
        "k-plain",
        &["--hint", &format!("tape 7 {END_MARKER} shelf 2")],
    );
    let key_pass = store.input("key.pass", KEY_PASS);
    let cases = [
        ("k-hinted", key.fingerprint, vec![9; 32]),
        ("k-plain", plain.fingerprint, plain.data.clone()),
    ];
    for (id, fingerprint, raw) in cases {
        let run = Manager::run_command(cli.command(&["encryption-key", "paperkey", id]), None);
        assert_eq!(run.code, 0, "{run:?}");
        let name = format!("typed-{id}");
        let file = store.input(&format!("{name}.txt"), &run.stdout);
        let target = store.other(&name, &[]);
        let mut args = vec!["encryption-key", "import", id, "--file", &file];
        if id == "k-hinted" {
            args.extend(["--passphrase-file", &key_pass]);
        }
        let import = target.run(&args);
        assert_eq!(import.code, 0, "{name}: {import:?}");
        let loaded = loaded_keys(&store.file(&name));
        assert_eq!(loaded.len(), 1, "{name}");
        assert_eq!(loaded[0].1, raw, "{name}: another key was stored");
        assert_eq!(loaded[0].2, fingerprint.unwrap().signature(), "{name}");
    }
}

/// Finding 68: an unprotected key file without a `fingerprint` field (as
/// upstream's clients wrote them before they had one, stored as imported)
/// was printed as it is, so the paperkey's block held nothing the key read
/// back could be checked against: the block typed back with one base64
/// character wrong in `data` (an `l` for an `I`) was another valid key,
/// stored with exit status 0 by import and by restore, from the whole page
/// too (whose facts line shows the right fingerprint). Now the block of an
/// unprotected key carries its fingerprint, and a typo in it is refused.
#[test]
fn a_paperkey_block_typed_back_wrong_is_refused_for_a_key_file_without_fingerprint() {
    use pbs_key_config::paperkey::{BEGIN_MARKER, END_MARKER};

    let store = Store::new();
    let cli = &store.cli;
    let raw: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
    let mut key = KeyConfig::without_password(raw).unwrap();
    key.fingerprint = None;
    cli.secrets.key("old-key", &raw);
    let file = store.input("old-key.enc", key.to_json().unwrap());
    ok(
        cli,
        &["encryption-key", "import", "old-key", "--file", &file],
    );
    let run = Manager::run_command(
        cli.command(&["encryption-key", "paperkey", "old-key"]),
        None,
    );
    assert_eq!(run.code, 0, "{run:?}");
    let page = run.stdout;
    let fingerprint = pbs_key_config::fingerprint(&raw).signature();
    assert!(
        page.contains(&format!("Fingerprint: {fingerprint}\n")),
        "{page}"
    );
    let block = |text: &str| -> String {
        let start = text.find(BEGIN_MARKER).unwrap();
        let end = text.find(END_MARKER).unwrap() + END_MARKER.len();
        format!("{}\n", &text[start..end])
    };

    // as printed, the page and its block alone give the key back
    for (name, text) in [("page", page.clone()), ("block", block(&page))] {
        let file = store.input(&format!("{name}.txt"), &text);
        let target = store.other(name, &[]);
        ok(
            &target,
            &["encryption-key", "restore", &file, "--id", "old-key"],
        );
        let loaded = loaded_keys(&store.file(name));
        assert_eq!(loaded.len(), 1, "{name}");
        assert_eq!(loaded[0].1, raw, "{name}");
        assert_eq!(loaded[0].2, fingerprint, "{name}");
    }

    // "AQID..." typed "AQlD...": valid base64, a valid key, another one
    assert!(page.contains("\"data\": \"AQID"), "{page}");
    let typo = page.replacen("\"data\": \"AQID", "\"data\": \"AQlD", 1);
    for (name, text) in [("typo-page", typo.clone()), ("typo-block", block(&typo))] {
        let file = store.input(&format!("{name}.txt"), &text);
        for verb in ["import", "restore"] {
            let target = store.other(&format!("{name}-{verb}"), &[]);
            let args = match verb {
                "import" => ["encryption-key", "import", "old-key", "--file", &file],
                _ => ["encryption-key", "restore", &file, "--id", "old-key"],
            };
            let run = target.run(&args);
            assert_eq!(
                run.code, EXIT_ERROR,
                "{name} {verb}: another key stored: {run:?}"
            );
            assert!(run.stderr.contains("fingerprint"), "{name} {verb}: {run:?}");
            assert!(!target.dir().exists(), "{name} {verb}: something written");
        }
    }
}

/// Every protected key file upstream made (the key vectors): imported with
/// the right passphrase (stored unprotected, the same key), refused with a
/// wrong one, nothing written.
#[test]
fn upstream_protected_keys_import_with_the_right_passphrase_only() {
    let vectors = vectors_dir().join("keys");
    let mut imported = 0;
    for case in cases_with_suffix(&vectors, ".expect.json") {
        let expect: Value = serde_json::from_slice(
            &std::fs::read(vectors.join(format!("{case}.expect.json"))).unwrap(),
        )
        .unwrap();
        let (Some(right), Some(raw_hex)) = (
            expect["passphrase"].as_str(),
            expect["raw_key_hex"].as_str(),
        ) else {
            continue;
        };
        if expect["expected_outcome"] != "ok" {
            continue;
        }
        let store = Store::new();
        let cli = &store.cli;
        let raw = hex::decode(raw_hex).unwrap();
        cli.secrets.key(&case, &raw);
        cli.secrets.text("passphrase", right);
        let file = vectors.join(format!("{case}.enc")).display().to_string();
        let wrong = store.input("wrong.pass", "wrong pass phrase");
        let err = fail(
            cli,
            &[
                "encryption-key",
                "import",
                "vector-key",
                "--file",
                &file,
                "--passphrase-file",
                &wrong,
            ],
        );
        assert!(
            err.contains("wrong passphrase or corrupted key file"),
            "{case}: {err}"
        );
        if let Some(hint) = expect["hint"].as_str() {
            assert!(err.contains(hint), "{case}: {err}");
        }
        assert!(!store.sandbox.config_dir().exists(), "{case}");
        let err = fail(
            cli,
            &["encryption-key", "import", "vector-key", "--file", &file],
        );
        assert!(err.contains("--passphrase-file FILE"), "{case}: {err}");

        let pass = store.input("right.pass", format!("{right}\n"));
        ok(
            cli,
            &[
                "encryption-key",
                "import",
                "vector-key",
                "--file",
                &file,
                "--passphrase-file",
                &pass,
            ],
        );
        let loaded = loaded_keys(store.sandbox.config_dir());
        assert_eq!(loaded[0].1, raw, "{case}");
        assert_eq!(
            loaded[0].2,
            expect["fingerprint"].as_str().unwrap(),
            "{case}"
        );
        let stored = store
            .config()
            .encryption_keys()
            .read_key_file("vector-key")
            .unwrap();
        assert!(!stored.is_protected(), "{case}");
        imported += 1;
    }
    assert!(imported >= 2, "protected vectors missing");
}

// ---------------------------------------------------------------------------
// prompts on a terminal

fn pty(cli: &Manager, args: &[&str]) -> PtyRun {
    PtyRun::start(cli.command(args))
}

#[test]
fn passphrases_are_asked_on_a_terminal_without_echo() {
    let (store, _keys) = populated();
    let cli = &store.cli;
    let bundle = store.file("tty.pbsx").display().to_string();
    let export = [
        "encryption-key",
        "export",
        "created-1",
        "--output-file",
        &bundle,
    ];

    // asked twice; a mismatch fails and writes nothing
    let mut run = pty(cli, &export);
    run.expect("Passphrase for the export bundle: ");
    run.type_line("first try 1234");
    run.expect("Retype passphrase: ");
    run.type_line("second try 5678");
    let (code, text, echo) = run.finish();
    assert_eq!(code, EXIT_ERROR, "{text}");
    assert!(text.contains("passphrases do not match"), "{text}");
    assert!(
        !text.contains("first try") && !text.contains("second try"),
        "{text}"
    );
    assert!(echo, "echo not restored");
    assert!(!Path::new(&bundle).exists());

    let mut run = pty(cli, &export);
    run.expect("Passphrase for the export bundle: ");
    run.type_line(PASSPHRASE);
    run.expect("Retype passphrase: ");
    run.type_line(PASSPHRASE);
    let (code, text, _) = run.finish();
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains(PASSPHRASE), "{text}");

    // the drill and the restore ask once
    for (verb, right, expected) in [
        ("export-verify", false, "wrong passphrase"),
        ("export-verify", true, "intact (1 key(s))"),
        ("restore", true, "already present"),
    ] {
        let mut run = pty(cli, &["encryption-key", verb, &bundle]);
        run.expect("Passphrase of the export bundle ");
        run.type_line(if right { PASSPHRASE } else { "not it at all" });
        let (code, text, echo) = run.finish();
        assert_eq!(code == 0, right, "{verb}: {text}");
        assert!(text.contains(expected), "{verb}: {text}");
        assert!(!text.contains(PASSPHRASE) && echo, "{verb}: {text}");
    }

    // a protected key to import: asked once, with its hint
    let vector = vectors_dir().join("keys/pbkdf2-with-hint.enc");
    let expect: Value = serde_json::from_slice(
        &std::fs::read(vectors_dir().join("keys/pbkdf2-with-hint.expect.json")).unwrap(),
    )
    .unwrap();
    let right = expect["passphrase"].as_str().unwrap();
    let mut run = pty(
        cli,
        &[
            "encryption-key",
            "import",
            "tty-import",
            "--file",
            &vector.display().to_string(),
        ],
    );
    run.expect(&format!(
        "Passphrase of the key (hint: {}): ",
        expect["hint"].as_str().unwrap()
    ));
    run.type_line(right);
    let (code, text, echo) = run.finish();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("stored unprotected"), "{text}");
    assert!(!text.contains(right) && echo, "{text}");

    // create --paperkey prints on a terminal: a paperkey is asked for
    let (code, text, _) = pty(
        cli,
        &["encryption-key", "create", "tty-paper", "--paperkey"],
    )
    .finish();
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("-----BEGIN PROXMOX BACKUP KEY-----"),
        "{text}"
    );
}

/// The restore path of a real PBS host's keys: `configdir-example`
/// exported with the CLI and restored into an empty dir gives back its key
/// files byte for byte and its entries (paths aside).
#[test]
fn a_real_hosts_keys_survive_export_and_restore_byte_for_byte() {
    let store = Store::new();
    std::fs::create_dir(store.sandbox.config_dir()).unwrap();
    let expect = pbs_test_kit::dirs::copy_configdir_example(store.sandbox.config_dir());
    let cli = &store.cli;
    for id in expect["order"].as_array().unwrap() {
        let raw = hex::decode(
            expect["keys"][id.as_str().unwrap()]["raw_key_hex"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        cli.secrets.key(id.as_str().unwrap(), &raw);
    }
    let pass = store.input("bundle.pass", PASSPHRASE);
    let bundle = store.file("host.pbsx").display().to_string();
    ok(cli, &export_all(&bundle, &pass));
    let target = Manager::new(&store.file("restored"));
    ok(&target, &with_passphrase("restore", &bundle, &pass));
    for entry in std::fs::read_dir(store.sandbox.config_dir().join("encryption-keys")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "enc") {
            let copy = store
                .file("restored/encryption-keys")
                .join(path.file_name().unwrap());
            assert_eq!(
                std::fs::read(&copy).unwrap(),
                std::fs::read(&path).unwrap(),
                "{copy:?}"
            );
        }
    }
    assert_eq!(listing(&target), listing(cli));
}

/// The host lost a key file, its entry is still there: the drill flags the
/// key, the restore puts the file back, verify is clean again.
#[test]
fn a_lost_key_file_is_flagged_by_the_drill_and_put_back_by_restore() {
    let (store, _keys) = populated();
    let cli = &store.cli;
    let pass = store.input("bundle.pass", PASSPHRASE);
    let bundle = store.file("all.pbsx").display().to_string();
    ok(cli, &export_all(&bundle, &pass));
    let lost = store
        .sandbox
        .config_dir()
        .join("encryption-keys/created-2.enc");
    let original = std::fs::read(&lost).unwrap();
    std::fs::remove_file(&lost).unwrap();
    assert_eq!(cli.run(&["encryption-key", "verify"]).code, 1);

    let text = ok(cli, &with_passphrase("export-verify", &bundle, &pass));
    assert!(text.contains("but its key does NOT load"), "{text}");
    let restored = json(cli, &with_passphrase("restore", &bundle, &pass));
    let outcomes: Vec<(&str, &str)> = restored
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["id"].as_str().unwrap(), k["outcome"].as_str().unwrap()))
        .collect();
    assert!(
        outcomes.contains(&("created-2", "key-file-restored")),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|(_, o)| *o == "already-present")
            .count(),
        3
    );
    assert_eq!(std::fs::read(&lost).unwrap(), original);
    assert_eq!(std::fs::metadata(&lost).unwrap().mode() & 0o7777, 0o640);
    let verify = cli.run(&["encryption-key", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

/// A text paperkey without its audit checkpoint's lines.
fn without_checkpoint(text: &str) -> String {
    let start = text.find("Audit checkpoint:\n").expect("a checkpoint");
    let end = text.find("-----BEGIN PROXMOX BACKUP KEY-----").unwrap();
    format!("{}{}", &text[..start], &text[end..])
}

/// The number of records the audit checkpoint of a text paperkey covers.
fn checkpoint_size(text: &str) -> u64 {
    let start = text.find("Audit checkpoint:\n").expect("a checkpoint");
    text[start..]
        .lines()
        .nth(2)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A store holding one protected key, `k-prot`, exported into a bundle:
/// the files and passphrases of the tests that lose its key file.
struct ProtectedKeyExported {
    store: Store,
    /// The bundle's passphrase file.
    pass: String,
    /// A file of the key's own passphrase.
    key_pass: String,
    /// A file of another passphrase.
    wrong: String,
    /// The bundle of every key.
    bundle: String,
    /// The key's file in the store.
    file: PathBuf,
    /// What that file holds.
    original: Vec<u8>,
}

impl ProtectedKeyExported {
    fn new() -> Self {
        use pbs_api_types::Kdf;

        const KEY_PASS: &str = "Zq7-hollow-Vortex-41";
        let store = Store::new();
        let key = KeyConfig::with_key(&[9; 32], KEY_PASS.as_bytes(), Kdf::PBKDF2).unwrap();
        store.cli.secrets.key("k-prot", &[9; 32]);
        store.cli.secrets.text("key passphrase", KEY_PASS);
        store
            .config()
            .encryption_keys()
            .store_key("k-prot", &key)
            .unwrap();
        let pass = store.input("bundle.pass", PASSPHRASE);
        let key_pass = store.input("key.pass", KEY_PASS);
        let wrong = store.input("wrong.pass", "not the key's passphrase");
        let bundle = store.file("all.pbsx").display().to_string();
        ok(&store.cli, &export_all(&bundle, &pass));
        let file = store
            .sandbox
            .config_dir()
            .join("encryption-keys/k-prot.enc");
        let original = std::fs::read(&file).unwrap();
        Self {
            store,
            pass,
            key_pass,
            wrong,
            bundle,
            file,
            original,
        }
    }
}

/// A protected key whose key file is lost: `restore` puts it back from the
/// bundle only with `--key-passphrase-file` holding the key's passphrase
/// (a protected key file only claims its fingerprint); without it, or with
/// another passphrase, it says what to give and writes nothing (finding
/// 33).
#[test]
fn a_protected_keys_lost_file_is_put_back_only_with_its_passphrase() {
    let ProtectedKeyExported {
        store,
        pass,
        key_pass,
        wrong,
        bundle,
        file: lost,
        original,
    } = ProtectedKeyExported::new();
    let cli = &store.cli;
    std::fs::remove_file(&lost).unwrap();

    let before = snapshot(store.sandbox.config_dir(), &[]);
    let restore = with_passphrase("restore", &bundle, &pass);
    let err = fail(cli, &restore);
    assert!(
        err.contains("encryption key 'k-prot' is missing") && err.contains("--key-passphrase-file"),
        "{err}"
    );
    let err = fail(
        cli,
        &[&restore[..], &["--key-passphrase-file", &wrong]].concat(),
    );
    assert!(err.contains("is not proven to be that key's"), "{err}");
    assert_eq!(snapshot(store.sandbox.config_dir(), &[]), before);

    let restored = json(
        cli,
        &[&restore[..], &["--key-passphrase-file", &key_pass]].concat(),
    );
    assert_eq!(restored[0]["outcome"], "key-file-restored", "{restored}");
    assert_eq!(std::fs::read(&lost).unwrap(), original);
    let verify = cli.run(&["encryption-key", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

/// A protected key's file lost only while the restore waits for the lock:
/// the restore proves before the lock only the key files the store lacks
/// as it reads then (stop 34, `Prover`), so one found missing under the
/// lock must be proven there. The file is removed while the restore holds
/// the config lock and has read the key list (the pause point
/// `keys:read`): with another passphrase it is refused and nothing is
/// written; with the key's own the file comes back.
#[test]
fn a_key_file_lost_while_the_restore_waits_is_proven_under_the_lock() {
    assert!(
        pbs_config::failpoint::enabled(),
        "pbs-config must be built with the failpoints feature for this test"
    );
    let ProtectedKeyExported {
        store,
        pass,
        key_pass,
        wrong,
        bundle,
        file,
        original,
    } = ProtectedKeyExported::new();
    let cli = &store.cli;
    let kept = store.file("k-prot.enc.kept");
    std::fs::copy(&file, &kept).unwrap();
    let restore = with_passphrase("restore", &bundle, &pass);
    // the restore with `key_passphrase`, the key file removed at the pause
    let restore_losing_the_file = |key_passphrase: &str| {
        let args = [&restore[..], &["--key-passphrase-file", key_passphrase]].concat();
        let paused = paused_at(&mut cli.command(&args), "keys:read");
        std::fs::remove_file(&file).unwrap();
        paused.finish()
    };

    let (status, err) = restore_losing_the_file(&wrong);
    assert!(!status.success(), "{err}");
    assert!(err.contains("is not proven to be that key's"), "{err}");
    assert!(!file.exists(), "a key file not proven was put back");

    std::fs::copy(&kept, &file).unwrap();
    let (status, err) = restore_losing_the_file(&key_pass);
    assert!(status.success(), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), original);
    let verify = cli.run(&["encryption-key", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

/// Finding 67: the first line of a file that is no secret given as the
/// passphrase of a new bundle: a PEM public key (`--master-pubkey` mixed
/// up with `--passphrase-file`: the line is the same in every such file),
/// an earlier bundle (its first line is its clear header). Before the fix
/// the export was made, "encrypted to: passphrase (scrypt)", the drill
/// with the same file passed and recorded a verified copy, and the bundle
/// opened with `-----BEGIN PUBLIC KEY-----` typed by anyone. Now the
/// export and the rotation's export are refused naming the file, before
/// anything is written. (A paperkey is larger than a passphrase file may
/// be, and refused so already.)
#[test]
fn a_public_key_given_as_the_passphrase_file_of_a_new_bundle_is_refused() {
    let (store, _keys) = populated();
    let cli = &store.cli;
    let (_private, public, _pass) = master_key_files(&store);
    let pass = store.input("bundle.pass", PASSPHRASE);
    let earlier = store.file("earlier.pbsx").display().to_string();
    ok(
        cli,
        &[
            "encryption-key",
            "export",
            "created-1",
            "--output-file",
            &earlier,
            "--passphrase-file",
            &pass,
        ],
    );
    let run = cli.run(&pbs_test_kit::manager::sync_job_args(
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
    let out = store.file("out.pbsx").display().to_string();
    let before = snapshot(store.sandbox.config_dir(), &[]);
    for (file, looks_like) in [
        (&public, "every PEM file of its kind"),
        (&earlier, "an export bundle's clear header"),
    ] {
        let err = fail(cli, &export_all(&out, file));
        assert!(err.contains(&format!("{file:?}")), "{err}");
        assert!(err.contains(looks_like), "{err}");
        assert!(err.contains("no secret"), "{err}");
        assert!(!Path::new(&out).exists(), "{err}");
        let err = fail(
            cli,
            &[
                "encryption-key",
                "rotate",
                "--job",
                "push1",
                "--export-file",
                &out,
                "--passphrase-file",
                file,
            ],
        );
        assert!(err.contains(&format!("{file:?}")), "{err}");
        assert!(err.contains(looks_like), "{err}");
        assert!(!Path::new(&out).exists(), "{err}");
    }
    assert_eq!(snapshot(store.sandbox.config_dir(), &[]), before);

    // the public key where it belongs, and a passphrase of its own
    ok(
        cli,
        &[
            "encryption-key",
            "export",
            "created-1",
            "--output-file",
            &out,
            "--passphrase-file",
            &pass,
            "--master-pubkey",
            &public,
        ],
    );
    ok(cli, &with_passphrase("export-verify", &out, &pass));
}
