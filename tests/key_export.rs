//! Export bundles of a real PBS host's keys (`configdir-example`), opened by
//! our code and by the documented recipe: `tests/tools/open_bundle.py`, run
//! with Python's hashlib and the `cryptography` package, nothing of ours.
//!
//! The recipe must give back the host's `encryption-keys.cfg` and key files
//! byte for byte, for a passphrase and for an RSA master key as
//! `proxmox-backup-client key create-master-key` writes it. Python with
//! `cryptography` is required (`.ci/run` installs `python3-cryptography`):
//! without it these tests fail, they never skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use openssl::pkey::PKey;
use serde_json::Value;

use pbs_api_types::{CryptKey, KeyInfo};
use pbs_key_config::KeyConfig;
use pbs_key_config::bundle::{
    BundleSecret, ExportKey, ExportRecipient, create_bundle, open_bundle, read_bundle_header,
    rsa_private_key_from_pem, rsa_public_key_from_pem, write_bundle_file,
};

use pbs_test_kit::dirs::vectors_dir;

/// A fixed RSA key (kept out of key generation), as a master key.
const MASTER_KEY_PEM: &[u8] =
    include_bytes!("../pbs-key-config/src/testdata/bundle-test-rsa2048.pem");
const MASTER_PASSPHRASE: &str = "master key passphrase";
const BUNDLE_PASSPHRASE: &str = "bundle passphrase";

/// The keys of `configdir-example`: config entry, key file, raw key hex.
fn host_keys() -> Vec<(CryptKey, Vec<u8>, String)> {
    let dir = vectors_dir().join("configdir-example");
    let expect: Value =
        serde_json::from_slice(&std::fs::read(dir.join("expect.json")).unwrap()).unwrap();
    let prefix = expect["cfg_path_prefix_used_in_cfg"].as_str().unwrap();
    expect["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            let id = id.as_str().unwrap();
            let key = &expect["keys"][id];
            let key_file = std::fs::read(dir.join(key["file"].as_str().unwrap())).unwrap();
            let mut info = KeyInfo::from(&KeyConfig::from_json(&key_file).unwrap());
            info.path = Some(format!("{prefix}{id}.enc"));
            let config = CryptKey {
                id: id.to_string(),
                info,
                archived_at: key["archived_at"].as_i64(),
            };
            (
                config,
                key_file,
                key["raw_key_hex"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The Python that runs the recipe: Debian's, where `python3-cryptography`
/// installs, unless `PYTHON3` names another.
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("PYTHON3") {
        return python.into();
    }
    let debian = PathBuf::from("/usr/bin/python3");
    if debian.exists() {
        debian
    } else {
        PathBuf::from("python3")
    }
}

fn recipe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/open_bundle.py")
}

/// Runs the recipe; its output, or its error output if it fails.
fn run_recipe(args: &[&Path]) -> Result<String, String> {
    let output = Command::new(python())
        .arg(recipe())
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {:?} - {err}", python()));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("No module named 'cryptography'"),
        "{:?} has no 'cryptography' package: install python3-cryptography - {stderr}",
        python()
    );
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).unwrap())
    } else {
        Err(stderr)
    }
}

/// A bundle of the host's keys for a passphrase and the master key, in a
/// temp dir with `master-public.pem` and `master-private.pem` as upstream
/// writes them (the private key PKCS#8, AES-256-CBC, passphrase protected).
struct Fixture {
    dir: tempfile::TempDir,
    bundle: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let master = PKey::private_key_from_pem(MASTER_KEY_PEM).unwrap();
        let public_pem = master.public_key_to_pem().unwrap();
        std::fs::write(dir.path().join("master-public.pem"), &public_pem).unwrap();
        let private_pem = master
            .private_key_to_pem_pkcs8_passphrase(
                openssl::symm::Cipher::aes_256_cbc(),
                MASTER_PASSPHRASE.as_bytes(),
            )
            .unwrap();
        std::fs::write(dir.path().join("master-private.pem"), private_pem).unwrap();
        std::fs::write(dir.path().join("master.pass"), MASTER_PASSPHRASE).unwrap();
        std::fs::write(dir.path().join("bundle.pass"), BUNDLE_PASSPHRASE).unwrap();

        let keys = host_keys();
        let exports: Vec<_> = keys
            .iter()
            .map(|(config, key_file, _)| ExportKey { config, key_file })
            .collect();
        let public = rsa_public_key_from_pem(&public_pem).unwrap();
        let data = create_bundle(
            "pbs-keystore/pbs1",
            Some("pbs-keystore/pbs1\n7\nAAAA\n\n— pbs1 AAAA\n"),
            &exports,
            &[
                ExportRecipient::Passphrase(BUNDLE_PASSPHRASE.as_bytes()),
                ExportRecipient::RsaPublicKey(&public),
            ],
        )
        .unwrap();
        let bundle = dir.path().join("keys.pbs-export");
        write_bundle_file(&bundle, &data).unwrap();
        Self { dir, bundle }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The recipe's output dir must be the host's config dir, byte for byte.
    fn assert_host_files(&self, out: &Path) {
        let host = vectors_dir().join("configdir-example");
        let cfg = std::fs::read(out.join("encryption-keys.cfg")).unwrap();
        assert_eq!(
            String::from_utf8(cfg).unwrap(),
            std::fs::read_to_string(host.join("encryption-keys.cfg")).unwrap()
        );
        for (config, key_file, _) in host_keys() {
            let path = out.join(format!("encryption-keys/{}.enc", config.id));
            assert_eq!(std::fs::read(&path).unwrap(), key_file, "{path:?}");
        }
    }
}

#[test]
fn recipe_opens_a_bundle_with_a_passphrase() {
    let fixture = Fixture::new();
    let out = fixture.path("by-passphrase");
    let printed = run_recipe(&[
        &fixture.bundle,
        &out,
        Path::new("--passphrase-file"),
        &fixture.path("bundle.pass"),
    ])
    .unwrap_or_else(|err| panic!("the recipe failed: {err}"));
    fixture.assert_host_files(&out);
    for (config, _, _) in host_keys() {
        let line = format!(
            "{} {}\n",
            config.id,
            config.info.fingerprint.unwrap().signature()
        );
        assert!(printed.contains(&line), "{printed}");
    }
}

#[test]
fn recipe_opens_a_bundle_with_the_master_key() {
    let fixture = Fixture::new();
    let out = fixture.path("by-master-key");
    run_recipe(&[
        &fixture.bundle,
        &out,
        Path::new("--private-key"),
        &fixture.path("master-private.pem"),
        Path::new("--private-key-passphrase-file"),
        &fixture.path("master.pass"),
    ])
    .unwrap_or_else(|err| panic!("the recipe failed: {err}"));
    fixture.assert_host_files(&out);
}

#[test]
fn recipe_refuses_a_wrong_passphrase_and_a_changed_header() {
    let fixture = Fixture::new();
    std::fs::write(fixture.path("wrong.pass"), "not the passphrase").unwrap();
    let err = run_recipe(&[
        &fixture.bundle,
        &fixture.path("wrong"),
        Path::new("--passphrase-file"),
        &fixture.path("wrong.pass"),
    ])
    .unwrap_err();
    assert!(err.contains("wrong passphrase or RSA key"), "{err}");
    assert!(!fixture.path("wrong/encryption-keys.cfg").exists());

    // the header is the payload's associated data: a changed archive time
    // fails the payload's tag in the recipe too
    let data = std::fs::read_to_string(&fixture.bundle).unwrap();
    let changed = data.replacen(
        "\"archived-at\":1735700000",
        "\"archived-at\":1735700001",
        1,
    );
    assert_ne!(changed, data);
    let bundle = fixture.path("changed.pbs-export");
    std::fs::write(&bundle, changed).unwrap();
    let err = run_recipe(&[
        &bundle,
        &fixture.path("changed"),
        Path::new("--private-key"),
        &fixture.path("master-private.pem"),
        Path::new("--private-key-passphrase-file"),
        &fixture.path("master.pass"),
    ])
    .unwrap_err();
    assert!(err.contains("InvalidTag"), "{err}");
}

#[test]
fn documented_recipe_is_the_tested_one() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/export-format.md"),
    )
    .unwrap();
    let script = std::fs::read_to_string(recipe()).unwrap();
    let start = doc.find("```python\n").expect("a python block in the docs") + 10;
    let block = &doc[start..start + doc[start..].find("```").unwrap()];
    assert!(block.contains("def open_bundle("), "{block}");
    assert!(
        script.contains(block),
        "docs/export-format.md's recipe differs from tests/tools/open_bundle.py"
    );
}

#[test]
fn bundle_of_the_host_holds_no_key_in_clear_and_opens_whole() {
    let fixture = Fixture::new();
    let data = std::fs::read(&fixture.bundle).unwrap();
    let text = String::from_utf8(data.clone()).unwrap();
    for (config, key_file, raw_hex) in host_keys() {
        let raw = hex::decode(&raw_hex).unwrap();
        for needle in [
            raw_hex.clone(),
            raw_hex.to_uppercase(),
            base64::engine::general_purpose::STANDARD.encode(&raw),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(&raw),
        ] {
            assert!(!text.contains(&needle), "key of '{}' in clear", config.id);
        }
        assert!(!text.contains(std::str::from_utf8(&key_file).unwrap()));
    }

    // what a listing shows without a secret
    let header = read_bundle_header(&data).unwrap();
    let ids: Vec<_> = header.keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["offsite-2025", "legacy-2024", "tape.sync_01"]);
    assert_eq!(header.origin, "pbs-keystore/pbs1");
    assert_eq!(header.keys[1].archived_at, Some(1_735_700_000));

    let master = rsa_private_key_from_pem(
        &std::fs::read(fixture.path("master-private.pem")).unwrap(),
        &|| Ok(MASTER_PASSPHRASE.as_bytes().to_vec()),
    )
    .unwrap();
    let opened = open_bundle(&data, &BundleSecret::RsaPrivateKey(&master)).unwrap();
    for (entry, (config, key_file, raw_hex)) in opened.entries().iter().zip(host_keys()) {
        assert_eq!(entry.config(), &config);
        assert_eq!(entry.key_file(), key_file.as_slice());
        let (key, _, fingerprint) = entry.key_config().decrypt(&|| unreachable!()).unwrap();
        assert_eq!(hex::encode(key), raw_hex);
        assert_eq!(Some(fingerprint), config.info.fingerprint);
    }
    assert_eq!(opened.entries().len(), 3);
}
