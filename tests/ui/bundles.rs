//! Keys that survive the host, in the page: export the selected keys into
//! a bundle (passphrase twice, a download), run the restore drill on it
//! (per-key results), restore a key the store lost from it; a wrong
//! passphrase and a bundle over the API's body limit refused in words.
//! The bundle's text is in the download only, never in the page. A
//! bundle made on another host with a passphrase-protected key restored
//! with the key's own passphrase, refused in words next to its field
//! without it; their lost key files refused from a bundle holding them
//! unprotected, in words next to the bundle field.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use pbs_api_types::{CryptKey, Fingerprint, Kdf};
use pbs_config::ConfigDir;
use pbs_config::encryption_keys::{DeleteOptions, EncryptionKeys};
use pbs_config::export::ExportSelection;
use pbs_key_config::KeyConfig;
use pbs_key_config::bundle::{
    BundleSecret, ExportKey, ExportRecipient, create_bundle, open_bundle,
};
use pbs_test_kit::{Sandbox, key_config, raw_key};

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
        .type_into(BUNDLE_PASSPHRASE_FIELD, "wrong horse battery")
        .await;
    browser.click("#run-drill").await;
    let error = browser
        .wait_text(".restore-view .bundle-error", "passphrase")
        .await;
    assert!(error.starts_with("The drill failed: "), "{error}");
    browser.screenshot("drill-wrong-passphrase").await;
    browser.type_into(BUNDLE_PASSPHRASE_FIELD, PASSPHRASE).await;
    browser.press_enter_on("#run-drill").await;
    browser.find(&drill_row("ui-bundle-1")).await;
    browser.assert_focus("#run-drill", "after the drill").await;
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
    browser.press_enter_on("#restore-bundle").await;
    let outcome = browser
        .wait_text(
            "#restore-table tr[data-key-id=\"ui-bundle-1\"] td.state",
            "restored",
        )
        .await;
    assert_eq!(outcome, "restored");
    browser
        .assert_focus("#restore-bundle", "after the restore")
        .await;
    assert_eq!(
        browser
            .text("#restore-table tr[data-key-id=\"carol-key\"] td.state")
            .await,
        "already present, left as it was"
    );
    assert_eq!(
        field_value(browser, BUNDLE_PASSPHRASE_FIELD).await,
        "",
        "the bundle's passphrase emptied after the restore"
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
    browser.type_into(BUNDLE_PASSPHRASE_FIELD, PASSPHRASE).await;
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

/// The restore view's field for the bundle's passphrase.
const BUNDLE_PASSPHRASE_FIELD: &str = ".restore-view input[name=passphrase]";

/// The protected keys of the bundle made on another host, under one
/// passphrase.
const PROTECTED_IDS: [&str; 2] = [PROTECTED_ID, "ui-bundle-protected-2"];
/// Their keys' seeds ([`raw_key`]).
const PROTECTED_SEEDS: [u64; 2] = [931, 932];
/// The first of them.
const PROTECTED_ID: &str = "ui-bundle-protected";
/// That key's own passphrase (not the bundle's).
const KEY_PASSPHRASE: &str = "Zq7-hollow-Vortex-41";
/// The restore view's key passphrase field.
const KEY_PASSPHRASE_FIELD: &str = ".restore-view input[name=key-passphrase]";
/// The note next to it.
const KEY_PASSPHRASE_NOTE: &str = ".restore-view .key-passphrase-error";
/// The note next to the bundle field.
const BUNDLE_NOTE: &str = ".restore-view .bundle-note";

/// A bundle made on another host holding two passphrase-protected keys
/// this store never had (a rebuilt host's restore): the drill does not
/// send the key passphrase typed, and keeps the bundle's; the restore is
/// refused without it and with another passphrase, the note next to the
/// field naming both keys and how to restore keys of other passphrases,
/// nothing written, the key passphrase field emptied, the bundle's kept
/// for the next try; with it both keys are restored, both fields emptied,
/// and the keys are listed with their fingerprints. Their key files lost,
/// a bundle holding them unprotected is refused naming both; the first
/// bundle puts them back.
pub async fn restore_protected_keys_new_to_the_store(env: Arc<Env>, browser: Arc<Browser>) {
    let (bundle_path, key_files) = protected_bundle_from_another_host(&env);
    let dir = env.dir();
    let keys = dir.encryption_keys();
    for id in PROTECTED_IDS {
        assert!(keys.entry(id).is_err(), "{id} new to this store");
    }

    browser.open().await;
    browser.login(ALICE.0, ALICE.1).await;
    record_sent_parameters(&browser).await;
    browser.click("#nav a[href=\"#restore\"]").await;
    let file = browser.find(".restore-view input[type=file]").await;
    file.send_keys(bundle_path.to_str().unwrap()).await.unwrap();
    browser.type_into(BUNDLE_PASSPHRASE_FIELD, PASSPHRASE).await;
    the_drill_sends_no_key_passphrase(&browser).await;
    refused_without_the_key_passphrase(&browser, &keys).await;
    refused_with_another_passphrase(&browser, &keys).await;
    restored_with_the_keys_passphrase(&browser, &keys, &key_files).await;
    listed_with_their_fingerprints(&browser, &key_files).await;
    lost_files_refused_from_key_files_of_the_other_protection(&env, &browser, &keys).await;
    lost_files_put_back(&browser, &keys, &bundle_path, &key_files).await;
}

/// The key passphrase field is a password field, not autocompleted; the
/// drill takes no key passphrase: not sent, though typed. The drill keeps
/// the bundle's passphrase (the restore that follows needs it).
async fn the_drill_sends_no_key_passphrase(browser: &Browser) {
    let field = browser
        .js(
            "const el = document.querySelector(arguments[0]); return [el.type, el.autocomplete];",
            vec![json!(KEY_PASSPHRASE_FIELD)],
        )
        .await;
    assert_eq!(field, json!(["password", "off"]));
    browser
        .type_into(KEY_PASSPHRASE_FIELD, KEY_PASSPHRASE)
        .await;
    browser.click("#run-drill").await;
    browser.find(&drill_row(PROTECTED_ID)).await;
    let summary = browser
        .wait_text(".drill-summary", "all 2 keys intact")
        .await;
    assert_eq!(
        last_sent(browser, "encryption-key-export/verify").await,
        ["bundle", "passphrase"]
    );
    assert_eq!(
        field_value(browser, BUNDLE_PASSPHRASE_FIELD).await,
        PASSPHRASE,
        "the bundle's passphrase kept after the drill"
    );
    // a key this store lacks is what the restore would add, not a fault of
    // the store, though the drill proves no copy of its protected file
    assert!(!summary.contains("differ"), "{summary}");
    for id in PROTECTED_IDS {
        let state = browser.text(&format!("{} td.state", drill_row(id))).await;
        assert!(
            state.starts_with("not in the store: restore would add it")
                && state.contains("no verified copy"),
            "{id}: {state}"
        );
        let tone = browser
            .js(
                "return document.querySelector(arguments[0]).dataset.tone;",
                vec![json!(drill_row(id))],
            )
            .await;
        assert_eq!(tone, json!("note"), "{id}");
    }
}

/// The keys the refusal names, as the note next to the key passphrase
/// field says them: every protected key of the bundle, not only the first.
fn both_keys_new() -> String {
    format!(
        "keys '{}' and '{}' (new to this store)",
        PROTECTED_IDS[0], PROTECTED_IDS[1]
    )
}

/// The restore without the key passphrase (none sent): refused, the
/// server's words by the buttons, the note next to the field naming both
/// keys and what to do, the focus on the field, nothing written, the
/// bundle's passphrase kept.
async fn refused_without_the_key_passphrase(browser: &Browser, keys: &EncryptionKeys<'_>) {
    browser
        .find(KEY_PASSPHRASE_FIELD)
        .await
        .clear()
        .await
        .unwrap();
    browser.click("#restore-bundle").await;
    let note = browser
        .wait_text(
            KEY_PASSPHRASE_NOTE,
            &format!("{} are passphrase protected", both_keys_new()),
        )
        .await;
    for words in [
        "own passphrase",
        "their key files",
        "--id ID --key-passphrase-file",
    ] {
        assert!(note.contains(words), "{words:?} not in the note: {note}");
    }
    let error = browser.text(".restore-view .bundle-error").await;
    assert!(
        error.starts_with("The restore failed: parameter 'key-passphrase': "),
        "{error}"
    );
    for id in PROTECTED_IDS {
        assert!(error.contains(&format!("'{id}'")), "{id} not in {error}");
    }
    assert_eq!(
        last_sent(browser, "encryption-key-restore").await,
        ["bundle", "passphrase"],
        "an empty key passphrase is not sent"
    );
    let focused = browser
        .js("return document.activeElement.name;", vec![])
        .await;
    assert_eq!(focused, json!("key-passphrase"), "the field has the focus");
    assert_eq!(
        field_value(browser, BUNDLE_PASSPHRASE_FIELD).await,
        PASSPHRASE,
        "the bundle's passphrase kept after a refusal"
    );
    for id in PROTECTED_IDS {
        assert!(keys.entry(id).is_err(), "{id}: nothing restored");
        assert!(!keys.key_path(id).exists(), "{id}: no key file written");
    }
    browser.screenshot("protected-key-refused").await;
}

/// Another passphrase than the keys': refused as well, naming both, the
/// key passphrase field emptied, nothing written.
async fn refused_with_another_passphrase(browser: &Browser, keys: &EncryptionKeys<'_>) {
    browser
        .type_into(KEY_PASSPHRASE_FIELD, "not the key's passphrase")
        .await;
    browser.click("#restore-bundle").await;
    browser
        .wait_text(
            KEY_PASSPHRASE_NOTE,
            &format!("the key passphrase given does not open {}", both_keys_new()),
        )
        .await;
    assert_eq!(
        last_sent(browser, "encryption-key-restore").await,
        ["bundle", "passphrase", "key-passphrase"]
    );
    assert_eq!(
        field_value(browser, KEY_PASSPHRASE_FIELD).await,
        "",
        "emptied after a refusal"
    );
    for id in PROTECTED_IDS {
        assert!(keys.entry(id).is_err(), "{id}: nothing restored");
    }
}

/// The keys' own passphrase: both restored, both passphrase fields
/// emptied, the note gone; the key files as the bundle holds them; the
/// passphrases nowhere in the page.
async fn restored_with_the_keys_passphrase(
    browser: &Browser,
    keys: &EncryptionKeys<'_>,
    key_files: &[(KeyConfig, Fingerprint)],
) {
    browser
        .type_into(KEY_PASSPHRASE_FIELD, KEY_PASSPHRASE)
        .await;
    browser.click("#restore-bundle").await;
    for id in PROTECTED_IDS {
        let outcome = browser
            .wait_text(
                &format!("#restore-table tr[data-key-id=\"{id}\"] td.state"),
                "restored",
            )
            .await;
        assert_eq!(outcome, "restored", "{id}");
    }
    for (field, what) in [
        (KEY_PASSPHRASE_FIELD, "the key passphrase"),
        (BUNDLE_PASSPHRASE_FIELD, "the bundle's passphrase"),
    ] {
        assert_eq!(
            field_value(browser, field).await,
            "",
            "{what} emptied after the restore"
        );
    }
    let note_hidden = browser
        .js(
            "return document.querySelector(arguments[0]).hidden;",
            vec![json!(KEY_PASSPHRASE_NOTE)],
        )
        .await;
    assert_eq!(note_hidden, json!(true), "the note is gone");
    browser.screenshot("protected-key-restored").await;
    for (id, (key_file, fingerprint)) in PROTECTED_IDS.iter().zip(key_files) {
        let restored = keys.entry(id).unwrap();
        assert_eq!(restored.info.fingerprint, Some(*fingerprint), "{id}");
        assert_eq!(
            std::fs::read(keys.key_path(id)).unwrap(),
            key_file.to_json().unwrap().as_bytes(),
            "{id}: the key file as the bundle holds it, still protected"
        );
    }
    let page = browser.page_text(None).await;
    for secret in [KEY_PASSPHRASE, PASSPHRASE] {
        assert!(!page.contains(secret), "a passphrase left in the page");
    }
}

/// The keys view lists the restored keys with their fingerprints.
async fn listed_with_their_fingerprints(browser: &Browser, key_files: &[(KeyConfig, Fingerprint)]) {
    browser.click("#nav a[href=\"#keys\"]").await;
    for (id, (_, fingerprint)) in PROTECTED_IDS.iter().zip(key_files) {
        let row = key_row(id);
        browser.find(&row).await;
        let shown = browser
            .js(
                "return document.querySelector(arguments[0] + ' code.fingerprint').title;",
                vec![json!(row)],
            )
            .await;
        assert_eq!(
            shown,
            json!(fingerprint.signature()),
            "{id}: the row's fingerprint"
        );
    }
    browser
        .js(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});",
            vec![json!(key_row(PROTECTED_ID))],
        )
        .await;
    browser.screenshot("protected-key-listed").await;
}

/// Both keys lose their key files; a bundle made by hand holding each
/// key unprotected (as the store does not list it) is refused: the
/// server's words by the buttons, the note next to the bundle field naming
/// both keys and what to do, the focus on that field, nothing written.
async fn lost_files_refused_from_key_files_of_the_other_protection(
    env: &Env,
    browser: &Browser,
    keys: &EncryptionKeys<'_>,
) {
    let key_files: Vec<(CryptKey, String)> = PROTECTED_IDS
        .iter()
        .zip(PROTECTED_SEEDS)
        .map(|(id, seed)| {
            std::fs::remove_file(keys.key_path(id)).unwrap();
            let mut entry = keys.entry(id).unwrap();
            entry.info.kdf = Kdf::None;
            let unprotected = KeyConfig::with_key(&raw_key(seed), b"", Kdf::None).unwrap();
            (entry, unprotected.to_json().unwrap())
        })
        .collect();
    let export_keys: Vec<ExportKey> = key_files
        .iter()
        .map(|(entry, key_file)| ExportKey {
            config: entry,
            key_file: key_file.as_bytes(),
        })
        .collect();
    let bundle = create_bundle(
        "pbs-keystore/by-hand",
        None,
        &export_keys,
        &[ExportRecipient::Passphrase(PASSPHRASE.as_bytes())],
    )
    .unwrap();
    let path = env.config_path().join("..").join("other-protection.pbsx");
    std::fs::write(&path, bundle).unwrap();

    browser.click("#nav a[href=\"#restore\"]").await;
    let file = browser.find(".restore-view input[type=file]").await;
    file.send_keys(path.canonicalize().unwrap().to_str().unwrap())
        .await
        .unwrap();
    browser.type_into(BUNDLE_PASSPHRASE_FIELD, PASSPHRASE).await;
    browser.click("#restore-bundle").await;
    let note = browser
        .wait_text(
            BUNDLE_NOTE,
            &format!(
                "key files for keys '{}' and '{}' are protected otherwise than this store lists",
                PROTECTED_IDS[0], PROTECTED_IDS[1]
            ),
        )
        .await;
    for words in ["missing here", "an export of this store", "--id ID"] {
        assert!(note.contains(words), "{words:?} not in the note: {note}");
    }
    let error = browser.text(".restore-view .bundle-error").await;
    assert!(
        error.starts_with("The restore failed: parameter 'bundle': "),
        "{error}"
    );
    for id in PROTECTED_IDS {
        assert!(error.contains(&format!("'{id}'")), "{id} not in {error}");
        assert!(!keys.key_path(id).exists(), "{id}: no key file written");
    }
    browser
        .assert_focus(".restore-view input[type=file]", "after the refusal")
        .await;
    browser.screenshot("other-protection-refused").await;
}

/// The bundle from the other host, with the keys' passphrase, puts both
/// key files back as it holds them; the note is gone.
async fn lost_files_put_back(
    browser: &Browser,
    keys: &EncryptionKeys<'_>,
    bundle_path: &Path,
    key_files: &[(KeyConfig, Fingerprint)],
) {
    let file = browser.find(".restore-view input[type=file]").await;
    file.clear().await.unwrap();
    file.send_keys(bundle_path.to_str().unwrap()).await.unwrap();
    browser.type_into(BUNDLE_PASSPHRASE_FIELD, PASSPHRASE).await;
    browser
        .type_into(KEY_PASSPHRASE_FIELD, KEY_PASSPHRASE)
        .await;
    browser.click("#restore-bundle").await;
    for id in PROTECTED_IDS {
        browser
            .wait_text(
                &format!("#restore-table tr[data-key-id=\"{id}\"] td.state"),
                "key file put back",
            )
            .await;
    }
    let note_hidden = browser
        .js(
            "return document.querySelector(arguments[0]).hidden;",
            vec![json!(BUNDLE_NOTE)],
        )
        .await;
    assert_eq!(note_hidden, json!(true), "the note is gone");
    for (id, (key_file, _)) in PROTECTED_IDS.iter().zip(key_files) {
        assert_eq!(
            std::fs::read(keys.key_path(id)).unwrap(),
            key_file.to_json().unwrap().as_bytes(),
            "{id}: the key file as the bundle holds it"
        );
    }
}

/// A bundle (for [`PASSPHRASE`]) exported on another host of its keys
/// [`PROTECTED_IDS`], each protected by [`KEY_PASSPHRASE`], written beside
/// the config dir; its path, and each key's file and fingerprint.
fn protected_bundle_from_another_host(env: &Env) -> (PathBuf, Vec<(KeyConfig, Fingerprint)>) {
    let elsewhere = Sandbox::new();
    let dir = ConfigDir::new(elsewhere.config_dir()).unwrap();
    let keys = dir.encryption_keys();
    let key_files: Vec<(KeyConfig, Fingerprint)> = PROTECTED_IDS
        .iter()
        .zip(PROTECTED_SEEDS)
        .map(|(id, seed)| {
            let key_file =
                KeyConfig::with_key(&raw_key(seed), KEY_PASSPHRASE.as_bytes(), Kdf::PBKDF2)
                    .unwrap();
            keys.store_key(id, &key_file).unwrap();
            let fingerprint = keys.entry(id).unwrap().info.fingerprint.unwrap();
            (key_file, fingerprint)
        })
        .collect();
    let bundle = keys
        .export_bundle(
            &ExportSelection::Ids(PROTECTED_IDS.map(str::to_string).to_vec()),
            &[ExportRecipient::Passphrase(PASSPHRASE.as_bytes())],
            &|_| Ok(()),
        )
        .unwrap();
    let path = env.config_path().join("..").join("protected.pbsx");
    std::fs::write(&path, bundle).unwrap();
    (path.canonicalize().unwrap(), key_files)
}

/// Makes the page note the names (never the values) of the parameters
/// of every request it sends, in `window.sentParameters`.
async fn record_sent_parameters(browser: &Browser) {
    browser
        .js(
            r#"
            window.sentParameters = [];
            const send = window.fetch;
            window.fetch = (url, init) => {
                const body = init && init.body instanceof URLSearchParams ? init.body : null;
                window.sentParameters.push({
                    url: String(url),
                    names: body ? Array.from(new Set(body.keys())) : [],
                });
                return send.call(window, url, init);
            };
            "#,
            vec![],
        )
        .await;
}

/// The names of the parameters of the last request to a URL ending in
/// `route`.
async fn last_sent(browser: &Browser, route: &str) -> Vec<String> {
    let names: Value = browser
        .js(
            "const sent = window.sentParameters.filter((r) => r.url.split('?')[0].endsWith(arguments[0])); \
             return sent.length ? sent[sent.length - 1].names : null;",
            vec![json!(route)],
        )
        .await;
    serde_json::from_value(names).unwrap_or_else(|_| panic!("no request to {route}"))
}

/// The value of the field `css`.
async fn field_value(browser: &Browser, css: &str) -> String {
    let value = browser
        .js(
            "return document.querySelector(arguments[0]).value;",
            vec![json!(css)],
        )
        .await;
    value.as_str().unwrap().to_string()
}
