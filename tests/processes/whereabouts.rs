//! Where a key is while an operation moves it between the key list and the
//! trash: a delete or a trash restore killed half-way leaves its key file
//! in the key directory without a config entry and its trash entry with a
//! record but no key file. A masked caller's restore drill must still count
//! the key as held under the id it had (finding 71).

use std::path::Path;

use serde_json::{Value, json};

use pbs_config::ConfigDir;
use pbs_config::export::ExportSelection;
use pbs_keystore::api2::config::encryption_key_export::{Recipients, export_keys};
use pbs_test_kit::access::masked_token;
use pbs_test_kit::https::Client;
use pbs_test_kit::{Manager, Sandbox, key_config};

use crate::daemon::start_daemon;
use crate::support::{context, run_killed_at};

/// The passphrase of the token's bundle.
const PASSPHRASE: &str = "a copy kept from before the mask";

/// The token masked on `hidden`.
const MASKED: &str = "erin@pbs!masked";

/// A bundle holding the key of `hidden` (seed 41) under the id `mine`,
/// made on another host (a copy the token kept from before the mask).
fn the_tokens_copy(sandbox: &Sandbox) -> String {
    let elsewhere = sandbox.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let other = ConfigDir::new(&elsewhere).unwrap();
    other
        .encryption_keys()
        .store_key("mine", &key_config(41))
        .unwrap();
    let recipients = Recipients {
        passphrase: Some(PASSPHRASE.as_bytes().to_vec()),
        master_pubkeys: Vec::new(),
    };
    let selection = ExportSelection::Ids(vec!["mine".to_string()]);
    export_keys(&other, &selection, &recipients, &|_| Ok(()))
        .unwrap()
        .bundle
}

/// The stores of the test: `hidden` (archived) and `open`, each key of its
/// own; the token masked on `hidden`. Returns the token's secret.
fn set_up(dir: &Path) -> String {
    let config = context(dir);
    let keys = config.encryption_keys();
    keys.store_key("hidden", &key_config(41)).unwrap();
    keys.store_key("open", &key_config(42)).unwrap();
    keys.archive_key("hidden", None).unwrap();
    masked_token(&config, MASKED, "/system/encryption-keys", "hidden")
}

/// Root's `trash purge --expired` (the daily timer's): its JSON report.
fn daily_purge(manager: &Manager) -> Value {
    let run = manager.run(&[
        "--output-format",
        "json",
        "encryption-key",
        "trash",
        "purge",
        "--expired",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    serde_json::from_str(&run.stdout).unwrap()
}

/// For a delete and a trash restore of `hidden`, each killed between
/// moving the key file and finishing (the key file in the key directory
/// without its config entry, its trash entry with the record only): the
/// token masked on `hidden` (Admin on the store, `NoAccess` on `hidden`)
/// drills its copy of `hidden`'s key, kept as `mine`, through the real
/// daemon. Before the fix the drill found the key neither listed nor in
/// a complete trash entry, took it for a key the store lacks, and recorded
/// a verified copy of it: once `verify --repair` finished the delete (or
/// undid the restore), the daily purge destroyed `hidden`, whose only copy
/// left was the token's. Now the key counts as held under `hidden`, as it
/// does listed or in the trash (finding 61): no proof, and the purge keeps
/// it. Security.md finding 71.
pub fn a_drill_beside_an_interrupted_move_proves_no_copy_of_a_masked_key() {
    assert!(pbs_config::failpoint::enabled());
    for (case, point) in [
        ("delete", "delete:config-written"),
        ("trash restore", "restore:key-moved"),
    ] {
        let sandbox = Sandbox::new();
        let dir = sandbox.config_dir();
        let secret = set_up(dir);
        let manager = Manager::new(dir);
        let bundle = the_tokens_copy(&sandbox);
        let remove = ["encryption-key", "remove", "hidden", "--keep-days", "0"];
        match case {
            "delete" => run_killed_at(manager.command(&remove), point),
            _ => {
                assert_eq!(manager.run(&remove).code, 0, "{case}");
                let restore = ["encryption-key", "trash", "restore", "hidden"];
                run_killed_at(manager.command(&restore), point);
            }
        }
        let daemon = start_daemon(dir, sandbox.file("daemon.log"), None);
        let mut masked = Client::token(daemon.port, MASKED, &secret);
        let report = masked
            .post_json(
                "config/encryption-key-export/verify",
                &json!({"bundle": bundle, "passphrase": PASSPHRASE}),
            )
            .data();
        assert_eq!(report["keys"][0]["id"], "mine", "{case}: {report}");
        assert!(
            report["keys"][0].get("stored-as").is_none(),
            "{case}: {report}"
        );
        drop(daemon);

        // root finishes the delete (undoes the restore): `hidden` in the
        // trash, its keep time over
        let repair = manager.run(&["encryption-key", "verify", "--repair"]);
        assert_eq!(repair.code, 0, "{case}: {repair:?}");
        let purged = daily_purge(&manager);
        assert_eq!(
            purged["purged"],
            json!([]),
            "{case}: the masked key was destroyed on the token's drill"
        );
        assert_eq!(
            purged["kept-without-copy"][0]["id"], "hidden",
            "{case}: {purged}"
        );
        let trash = context(dir).encryption_keys().trash().list().unwrap();
        assert_eq!(trash.entries.len(), 1, "{case}: {trash:?}");
        assert_eq!(trash.entries[0].record.id, "hidden", "{case}");
    }
}
