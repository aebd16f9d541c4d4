//! Keys that survive the host, in the page: export the selected keys into
//! a bundle (passphrase twice, a download), run the restore drill on it
//! (per-key results), restore a key the store lost from it; a wrong
//! passphrase and a bundle over the API's body limit refused in words.
//! The bundle's text is in the download only, never in the page.

use std::sync::Arc;

use serde_json::json;

use pbs_config::encryption_keys::{DeleteOptions, EncryptionKeys};
use pbs_key_config::bundle::{BundleSecret, open_bundle};
use pbs_test_kit::key_config;

use crate::browser::Browser;
use crate::keys::assert_no_key_bytes;
use crate::{ALICE, Env};

const PASSPHRASE: &str = "correct horse bundle staple";

fn key_row(id: &str) -> String {
    format!("#keys-table tr[data-key-id=\"{id}\"]")
}

fn drill_row(id: &str) -> String {
    format!("#drill-table tr[data-key-id=\"{id}\"]")
}

/// Asserts that the page holds none of `bundle`'s encrypted payload (its
/// second line; the first is the clear header, whose ids and
/// fingerprints the page may show) nor any of the keys in it.
async fn assert_no_bundle_bytes(
    browser: &Browser,
    bundle: &[u8],
    raw_keys: &[Vec<u8>],
    what: &str,
) {
    let page = browser.page_text(None).await;
    let text = String::from_utf8_lossy(bundle);
    let payload = text.lines().nth(1).expect("a payload line");
    assert!(payload.len() > 1000, "{} bytes of payload", payload.len());
    {
        for piece in payload.as_bytes().chunks(32) {
            let piece = String::from_utf8_lossy(piece);
            assert!(
                !page.contains(piece.as_ref()),
                "{what}: the page holds bundle text {piece}"
            );
        }
    }
    for raw in raw_keys {
        assert_no_key_bytes(&page, raw, what);
    }
}

/// Selects two keys, exports them (the passphrases must agree), checks the
/// download with the library; the drill shows both as present; one key is
/// then purged on the server and the restore brings it back.
pub async fn export_drill_and_restore(env: Arc<Env>, browser: Arc<Browser>) {
    let dir = env.dir();
    let keys = dir.encryption_keys();
    keys.store_key("ui-bundle-1", &key_config(920)).unwrap();
    keys.archive_key("ui-bundle-1", None).unwrap();

    browser.open().await;
    browser.login(ALICE.0, ALICE.1).await;
    let (name, bundle) = export_two_selected_keys(&browser).await;
    let raw_keys = the_download_is_the_bundle(&browser, &keys, &bundle).await;
    drill_with_both_keys_present(&browser, &name).await;
    restore_a_key_the_store_lost(&browser, &keys, &bundle, &raw_keys).await;
    a_bundle_over_the_body_limit(&env, &browser).await;
    audit_columns_of_the_keys_view(&browser).await;
    audit_view_of_the_bundle(&browser).await;
}

/// Selects carol-key and ui-bundle-1 and exports them; passphrases that
/// differ are refused. Returns the download's name and bytes.
async fn export_two_selected_keys(browser: &Browser) -> (String, Vec<u8>) {
    browser
        .click(&format!("{} input.select-key", key_row("carol-key")))
        .await;
    browser
        .click(&format!("{} input.select-key", key_row("ui-bundle-1")))
        .await;
    browser.wait_text("#export-keys", "Export 2 selected").await;
    browser.click("#export-keys").await;
    browser.find("dialog.export-keys[open]").await;
    let selected = browser
        .js(
            "return document.querySelector('dialog.export-keys input[value=selected]').checked;",
            vec![],
        )
        .await;
    assert_eq!(selected, json!(true));
    browser
        .type_into("dialog.export-keys input[name=passphrase]", PASSPHRASE)
        .await;
    browser
        .type_into(
            "dialog.export-keys input[name=passphrase-repeat]",
            "correct horse",
        )
        .await;
    browser
        .click("dialog.export-keys button[type=submit]")
        .await;
    browser
        .wait_text("dialog.export-keys .export-error", "differ")
        .await;
    browser
        .type_into(
            "dialog.export-keys input[name=passphrase-repeat]",
            PASSPHRASE,
        )
        .await;
    browser.screenshot("export-dialog").await;
    browser
        .click("dialog.export-keys button[type=submit]")
        .await;
    let note = browser
        .wait_text("dialog.export-keys .export-result", "downloading")
        .await;
    browser.screenshot("exported").await;
    let name = note
        .split("downloading ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("the download's name")
        .to_string();
    assert!(name.ends_with(".pbsx"), "{name}");
    let bundle = browser.downloaded(&name).await;
    (name, bundle)
}

/// The download is the bundle of the two keys, for the passphrase; the
/// passphrase fields are emptied and the page holds none of it; the
/// dialog closes. Returns the raw keys in the bundle.
async fn the_download_is_the_bundle(
    browser: &Browser,
    keys: &EncryptionKeys<'_>,
    bundle: &[u8],
) -> Vec<Vec<u8>> {
    let opened = open_bundle(bundle, &BundleSecret::Passphrase(PASSPHRASE.as_bytes()))
        .expect("the download opens with the passphrase");
    let mut ids: Vec<String> = opened
        .entries()
        .iter()
        .map(|entry| entry.config().id.clone())
        .collect();
    ids.sort();
    assert_eq!(ids, ["carol-key", "ui-bundle-1"]);
    let mut raw_keys = Vec::new();
    for entry in opened.entries() {
        let (raw, _, fingerprint) = entry
            .key_config()
            .decrypt(&|| panic!("unprotected"))
            .unwrap();
        assert_eq!(
            keys.entry(&entry.config().id).unwrap().info.fingerprint,
            Some(fingerprint)
        );
        raw_keys.push(raw.to_vec());
    }
    let fields = browser
        .js(
            "return Array.from(document.querySelectorAll('dialog.export-keys input[type=password]')).map((el) => el.value).join('');",
            vec![],
        )
        .await;
    assert_eq!(fields, json!(""), "the passphrase stays in the dialog");
    assert_no_bundle_bytes(browser, bundle, &raw_keys, "after the export").await;
    browser
        .click("dialog.export-keys .dialog-actions button.secondary")
        .await;
    raw_keys
}

/// The drill on the download `name`: a wrong passphrase refused in words,
/// then both keys present and equal.
async fn drill_with_both_keys_present(browser: &Browser, name: &str) {
    let bundle_path = browser.downloads.path().join(name);
    browser.click("#nav a[href=\"#restore\"]").await;
    let file = browser.find(".restore-view input[type=file]").await;
    file.send_keys(bundle_path.to_str().unwrap()).await.unwrap();
    browser
        .type_into(
            ".restore-view input[name=passphrase]",
            "wrong horse battery",
        )
        .await;
    browser.click("#run-drill").await;
    let error = browser
        .wait_text(".restore-view .bundle-error", "passphrase")
        .await;
    assert!(error.starts_with("The drill failed: "), "{error}");
    browser.screenshot("drill-wrong-passphrase").await;
    browser
        .type_into(".restore-view input[name=passphrase]", PASSPHRASE)
        .await;
    browser.click("#run-drill").await;
    browser.find(&drill_row("ui-bundle-1")).await;
    for id in ["carol-key", "ui-bundle-1"] {
        let state = browser.text(&format!("{} td.state", drill_row(id))).await;
        assert_eq!(state, "in the store, the same key", "{id}");
    }
    browser
        .wait_text(".drill-summary", "all 2 keys intact")
        .await;
    browser.screenshot("drill").await;
}

/// The store loses ui-bundle-1 for good; the drill says so, restore
/// brings it back archived, carol-key stays as it is.
async fn restore_a_key_the_store_lost(
    browser: &Browser,
    keys: &EncryptionKeys<'_>,
    bundle: &[u8],
    raw_keys: &[Vec<u8>],
) {
    keys.delete_key_with(
        "ui-bundle-1",
        &DeleteOptions {
            purge: true,
            ..DeleteOptions::default()
        },
    )
    .unwrap();
    assert!(keys.entry("ui-bundle-1").is_err());
    browser.click("#run-drill").await;
    browser
        .wait_text(
            &format!("{} td.state", drill_row("ui-bundle-1")),
            "not in the store",
        )
        .await;
    browser.click("#restore-bundle").await;
    let outcome = browser
        .wait_text(
            "#restore-table tr[data-key-id=\"ui-bundle-1\"] td.state",
            "restored",
        )
        .await;
    assert_eq!(outcome, "restored");
    assert_eq!(
        browser
            .text("#restore-table tr[data-key-id=\"carol-key\"] td.state")
            .await,
        "already present, left as it was"
    );
    browser.screenshot("restored").await;
    let back = keys.entry("ui-bundle-1").unwrap();
    assert!(back.archived_at.is_some(), "restored archived, as exported");
    let restored_raw = keys
        .read_key_file("ui-bundle-1")
        .unwrap()
        .decrypt(&|| panic!("unprotected"))
        .unwrap()
        .0;
    assert!(raw_keys.iter().any(|raw| raw[..] == restored_raw[..]));
    assert_no_bundle_bytes(browser, bundle, raw_keys, "after the drill and restore").await;
}

/// Over the body limit: refused before it is sent, naming the CLI.
async fn a_bundle_over_the_body_limit(env: &Env, browser: &Browser) {
    let big = env.config_path().join("..").join("big.pbsx");
    std::fs::write(&big, "A".repeat(70 * 1024)).unwrap();
    let file = browser.find(".restore-view input[type=file]").await;
    file.clear().await.unwrap();
    file.send_keys(big.canonicalize().unwrap().to_str().unwrap())
        .await
        .unwrap();
    browser.click("#run-drill").await;
    let error = browser
        .wait_text(".restore-view .bundle-error", "too large")
        .await;
    assert!(error.contains("export-verify"), "{error}");
    browser.screenshot("too-large").await;
}

/// The keys view's audit columns: carol-key was exported and drilled,
/// job-key was not exported.
async fn audit_columns_of_the_keys_view(browser: &Browser) {
    browser.click("#nav a[href=\"#keys\"]").await;
    for column in ["Last export", "Last verified restore"] {
        let cell = format!("{} td[data-label=\"{column}\"] time", key_row("carol-key"));
        browser.find(&cell).await;
        let who = browser
            .js(
                "return document.querySelector(arguments[0]).title;",
                vec![json!(cell)],
            )
            .await;
        assert!(
            who.as_str()
                .unwrap()
                .starts_with("alice@pbs (api 127.0.0.1)"),
            "{column}: {who}"
        );
    }
    assert_eq!(
        browser
            .text(&format!(
                "{} td[data-label=\"Last export\"]",
                key_row("job-key")
            ))
            .await,
        "—",
        "job-key was not exported"
    );
    // the status line counts the keys no drill proved a copy of
    let unproven = browser
        .js(
            "return Array.from(document.querySelectorAll('#keys-table tr[data-key-id] td[data-label=\"Last verified restore\"]')).filter((td) => td.textContent === '—').length;",
            vec![],
        )
        .await;
    let unproven = unproven.as_u64().unwrap();
    assert!(unproven > 0, "job-key has no verified copy");
    browser
        .wait_text(
            ".list-status",
            &format!(", {unproven} without a verified copy"),
        )
        .await;
    browser
        .js(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});",
            vec![json!(key_row("carol-key"))],
        )
        .await;
    browser.screenshot("last-export-columns").await;
}

/// The audit view has the export, the drills and the restore.
async fn audit_view_of_the_bundle(browser: &Browser) {
    browser.click("#nav a[href=\"#audit\"]").await;
    browser
        .type_into(".audit-filter input[name=id]", "ui-bundle-1")
        .await;
    browser.click("#audit-apply").await;
    browser.wait_text(".list-status", "key ui-bundle-1").await;
    let ops = browser
        .js(
            "return Array.from(document.querySelectorAll('#audit-table tbody tr[data-op]')).map((tr) => tr.dataset.op);",
            vec![],
        )
        .await;
    let ops: Vec<String> = serde_json::from_value(ops).unwrap();
    for op in ["export", "export-verify", "restore", "delete-purge"] {
        assert!(ops.iter().any(|o| o == op), "no {op} record: {ops:?}");
    }
    browser.screenshot("audit-of-bundle").await;
}
