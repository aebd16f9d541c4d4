//! The keys view as an administrator: create a key and save it, archive,
//! unarchive and remove it; uploads; errors of the API next to the action;
//! and key bytes nowhere in the page but the save dialog.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use fantoccini::key::Key;
use serde_json::{Value, json};

use pbs_api_types::Fingerprint;
use pbs_key_config::KeyConfig;

use crate::browser::Browser;
use crate::{ALICE, Env, SYNC_JOBS, write_sync_cfg};

/// The forms the raw key could take in a page: hex (both cases) and
/// base64 (standard without padding, as a prefix of the padded form, and
/// URL-safe).
fn key_forms(raw: &[u8]) -> Vec<String> {
    vec![
        hex::encode(raw),
        hex::encode_upper(raw),
        STANDARD.encode(raw).trim_end_matches('=').to_string(),
        URL_SAFE_NO_PAD.encode(raw),
    ]
}

/// Asserts that `text` (the page) holds no form of `raw`.
pub(crate) fn assert_no_key_bytes(text: &str, raw: &[u8], what: &str) {
    for form in key_forms(raw) {
        assert!(
            !text.contains(&form),
            "{what}: the page holds the key ({form})"
        );
    }
}

/// The row of key `id`.
fn row(id: &str) -> String {
    format!("#keys-table tr[data-key-id=\"{id}\"]")
}

/// Generates key `id` through the add dialog; waits for the save dialog.
pub(crate) async fn generate(browser: &Browser, id: &str) {
    browser.click("#add-key").await;
    submit_the_add_dialog(browser, id).await;
}

/// Types `id` into the open add dialog and submits it; waits for the save
/// dialog.
pub(crate) async fn submit_the_add_dialog(browser: &Browser, id: &str) {
    browser.type_into("dialog.add-key input[name=id]", id).await;
    browser.click("dialog.add-key button[type=submit]").await;
    browser
        .wait_for(
            "the save dialog",
            "document.querySelector('dialog.save-key')?.open",
        )
        .await;
}

/// Closes the save dialog (its key saved, or confirmed unsaved); waits
/// until it is gone.
pub(crate) async fn close_save_dialog(browser: &Browser) {
    browser.click("dialog.save-key .close-save").await;
    browser
        .wait_for(
            "the save dialog to close",
            "!document.querySelector('dialog.save-key')",
        )
        .await;
}

/// Prints the paper key of the save dialog, `window.print` counting its
/// calls in `window.uiPrints`; waits for the sheet's QR code.
pub(crate) async fn print_paper_key(browser: &Browser) {
    browser
        .js(
            "window.uiPrints = 0; window.print = () => { window.uiPrints += 1; };",
            vec![],
        )
        .await;
    browser.click("dialog.save-key .print-key").await;
    browser
        .find("dialog.save-key .paperkey-sheet svg.paperkey-qr")
        .await;
}

/// Whether the element `css` is disabled, and its title: `[bool, text]`.
pub(crate) async fn disabled_and_title(browser: &Browser, css: &str) -> Value {
    browser
        .js(
            "const el = document.querySelector(arguments[0]); return [el.disabled, el.title];",
            vec![json!(css)],
        )
        .await
}

async fn save_dialog_open(browser: &Browser) -> bool {
    browser
        .js(
            "return document.querySelector('dialog.save-key')?.open === true;",
            vec![],
        )
        .await
        == json!(true)
}

/// Whether the element `css` is disabled (`true`/`false`).
async fn disabled(browser: &Browser, css: &str) -> Value {
    browser
        .js(
            "return document.querySelector(arguments[0]).disabled;",
            vec![json!(css)],
        )
        .await
}

/// Generate, save (Escape and a click outside do not close the dialog;
/// the download's fingerprint is the server's; the key bytes are in the
/// dialog only, and gone when it closes), archive, unarchive, remove
/// after typing the id.
pub async fn create_save_archive_unarchive_remove(env: Arc<Env>, browser: Arc<Browser>) {
    let id = "ui-made-1";
    browser.open().await;
    browser.login(ALICE.0, ALICE.1).await;
    browser.find(&row("carol-key")).await;
    browser.screenshot("keys").await;

    generate_in_the_add_dialog(&browser, id).await;
    save_dialog_not_dismissed_by_accident(&browser).await;
    let (raw, fingerprint) = download_the_key(&env, &browser, id).await;
    key_bytes_only_in_the_save_dialog(&browser, id, &raw, &fingerprint).await;
    archive_and_unarchive(&env, &browser, id).await;
    remove_after_typing_the_id(&env, &browser, id).await;
    closing_without_saving_asks_first(&browser).await;
}

/// The add dialog generates key `id`; the save dialog opens.
async fn generate_in_the_add_dialog(browser: &Browser, id: &str) {
    browser.click("#add-key").await;
    browser.find("dialog.add-key[open]").await;
    browser.screenshot("add-dialog").await;
    submit_the_add_dialog(browser, id).await;
    let title = browser.text("dialog.save-key .dialog-title").await;
    assert_eq!(title, "Important: Save your Encryption Key");
    browser.screenshot("save-dialog").await;
}

/// Not dismissed by accident: Escape (twice: Chromium lets a second
/// unrefused Escape through), a click on the backdrop.
async fn save_dialog_not_dismissed_by_accident(browser: &Browser) {
    browser.press(Key::Escape).await;
    browser.press(Key::Escape).await;
    browser.click_at(4.0, 4.0).await;
    browser.press(Key::Escape).await;
    assert!(save_dialog_open(browser).await, "the save dialog closed");
}

/// The download is the key the server stored: its raw key and fingerprint.
async fn download_the_key(env: &Env, browser: &Browser, id: &str) -> ([u8; 32], Fingerprint) {
    browser.click("dialog.save-key .download-key").await;
    let file = browser.downloaded(&format!("{id}.enc")).await;
    let key_config = KeyConfig::from_json(&file).expect("the download is a key file");
    let (raw, _, fingerprint) = key_config
        .decrypt(&|| panic!("an unprotected key asks for no passphrase"))
        .unwrap();
    let entry = env.dir().encryption_keys().entry(id).unwrap();
    assert_eq!(
        entry.info.fingerprint,
        Some(fingerprint),
        "download vs server"
    );
    browser
        .wait_text("dialog.save-key .message", "Downloading")
        .await;
    (raw, fingerprint)
}

/// The key is in the dialog (so the check can see it) and nowhere else;
/// leaving the page while the dialog is open asks first; once closed,
/// the key is gone and the row shows its fingerprint.
async fn key_bytes_only_in_the_save_dialog(
    browser: &Browser,
    id: &str,
    raw: &[u8; 32],
    fingerprint: &Fingerprint,
) {
    let whole = browser.page_text(None).await;
    assert!(
        whole.contains(STANDARD.encode(raw).trim_end_matches('=')),
        "the save dialog shows the key"
    );
    let outside = browser.page_text(Some("dialog.save-key")).await;
    assert_no_key_bytes(&outside, raw, "outside the open save dialog");

    // leaving the page while the dialog is open asks first
    let leaving = "const e = new Event('beforeunload', {cancelable: true}); \
                   window.dispatchEvent(e); return e.defaultPrevented;";
    assert_eq!(browser.js(leaving, vec![]).await, json!(true));

    close_save_dialog(browser).await;
    assert_eq!(browser.js(leaving, vec![]).await, json!(false));
    let after = browser.page_text(None).await;
    assert_no_key_bytes(&after, raw, "after the save dialog closed");
    let shown = browser
        .js(
            "return document.querySelector(arguments[0] + ' code.fingerprint').title;",
            vec![json!(row(id))],
        )
        .await;
    assert_eq!(
        shown,
        json!(fingerprint.signature()),
        "the row's fingerprint"
    );
}

/// Archive, unarchive: the row, the status line and the config agree;
/// an active key cannot be removed.
async fn archive_and_unarchive(env: &Env, browser: &Browser, id: &str) {
    let toggle = format!("{} .toggle-archive", row(id));
    let remove = format!("{} .remove-key", row(id));
    assert_eq!(
        disabled(browser, &remove).await,
        json!(true),
        "remove of an active key"
    );
    browser.click(&toggle).await;
    browser.find(&format!("{} .state-archived", row(id))).await;
    browser.wait_text(".list-status", "archived").await;
    assert!(
        env.dir()
            .encryption_keys()
            .entry(id)
            .unwrap()
            .archived_at
            .is_some()
    );
    browser.screenshot("archived").await;
    browser.click(&toggle).await;
    browser.find(&format!("{} .state-active", row(id))).await;
    // the row is drawn anew, the focus stays on its button
    let focused = browser
        .js(
            "return document.activeElement.matches(arguments[0]);",
            vec![json!(toggle)],
        )
        .await;
    assert_eq!(focused, json!(true), "the focus after unarchiving");
    assert!(
        env.dir()
            .encryption_keys()
            .entry(id)
            .unwrap()
            .archived_at
            .is_none()
    );
}

/// Remove: archived first, then the id typed in full.
async fn remove_after_typing_the_id(env: &Env, browser: &Browser, id: &str) {
    let toggle = format!("{} .toggle-archive", row(id));
    let remove = format!("{} .remove-key", row(id));
    browser.click(&toggle).await;
    browser.find(&format!("{} .state-archived", row(id))).await;
    assert_eq!(disabled(browser, &remove).await, json!(false));
    browser.click(&remove).await;
    browser.find("dialog.confirm[open]").await;
    let confirm = "dialog.confirm button[type=submit]";
    assert_eq!(disabled(browser, confirm).await, json!(true));
    browser.type_into("dialog.confirm input", "ui-made").await;
    assert_eq!(
        disabled(browser, confirm).await,
        json!(true),
        "a part of the id"
    );
    browser.type_into("dialog.confirm input", id).await;
    assert_eq!(disabled(browser, confirm).await, json!(false));
    browser.screenshot("remove-confirm").await;
    browser.click(confirm).await;
    browser
        .wait_for(
            "the row to go",
            &format!("!document.querySelector({})", json!(row(id))),
        )
        .await;
    browser.wait_text(".list-status", "removed").await;
    assert!(
        env.dir().encryption_keys().entry(id).is_err(),
        "{id} still stored"
    );
    assert!(
        browser
            .js("return document.querySelector('dialog');", vec![])
            .await
            == Value::Null,
        "a dialog stayed open"
    );
}

/// Closing the save dialog without saving asks first; a second close
/// closes it.
async fn closing_without_saving_asks_first(browser: &Browser) {
    generate(browser, "ui-made-2").await;
    browser.click("dialog.save-key .close-save").await;
    browser
        .wait_text("dialog.save-key .message", "not copied or downloaded")
        .await;
    assert!(save_dialog_open(browser).await);
    browser.screenshot("close-unsaved").await;
    close_save_dialog(browser).await;
    browser.find(&row("ui-made-2")).await;
}

/// The server's words where the action was: a protected key file without
/// its passphrase, or with a wrong one, refused in the add dialog; with
/// its passphrase it is imported; a change made on a stale list refused
/// in the row. An upload shows no save dialog.
pub async fn upload_refusals_and_stale_views_show_the_api_words(
    env: Arc<Env>,
    browser: Arc<Browser>,
) {
    let vectors = pbs_test_kit::dirs::vectors_dir()
        .join("keys")
        .canonicalize()
        .unwrap();
    browser.open().await;
    browser.login(ALICE.0, ALICE.1).await;
    a_protected_upload_needs_its_passphrase(&env, &browser, &vectors).await;
    an_upload_shows_no_save_dialog(&browser, &vectors).await;
    a_stale_toggle_shows_the_servers_words(&env, &browser).await;
}

/// Opens the add dialog on its upload choice, picks `file` for key `id`
/// and submits it.
async fn upload(browser: &Browser, id: &str, file: &std::path::Path) {
    browser.click("#add-key").await;
    browser.click("dialog.add-key input[value=upload]").await;
    browser.type_into("dialog.add-key input[name=id]", id).await;
    let input = browser.find("dialog.add-key input[type=file]").await;
    input.send_keys(file.to_str().unwrap()).await.unwrap();
    browser.click("dialog.add-key button[type=submit]").await;
}

/// A protected key file: refused in the add dialog without its passphrase
/// and with a wrong one, nothing stored; with its passphrase imported with
/// the vector's fingerprint, and the passphrase gone from the page.
async fn a_protected_upload_needs_its_passphrase(
    env: &Env,
    browser: &Browser,
    vectors: &std::path::Path,
) {
    let protected: Value = serde_json::from_slice(
        &std::fs::read(vectors.join("scrypt-protected.expect.json")).unwrap(),
    )
    .unwrap();
    upload(
        browser,
        "ui-protected",
        &vectors.join("scrypt-protected.enc"),
    )
    .await;
    let error = browser
        .wait_text("dialog.add-key .add-error", "give its passphrase")
        .await;
    assert!(error.contains("parameter 'passphrase'"), "{error}");
    browser.screenshot("upload-needs-passphrase").await;
    assert!(env.dir().encryption_keys().entry("ui-protected").is_err());

    browser
        .type_into("dialog.add-key input[name=passphrase]", "wrong horse")
        .await;
    browser.click("dialog.add-key button[type=submit]").await;
    browser
        .wait_text("dialog.add-key .add-error", "wrong passphrase")
        .await;
    assert!(env.dir().encryption_keys().entry("ui-protected").is_err());

    browser
        .type_into(
            "dialog.add-key input[name=passphrase]",
            protected["passphrase"].as_str().unwrap(),
        )
        .await;
    browser.click("dialog.add-key button[type=submit]").await;
    browser.find(&row("ui-protected")).await;
    let stored = env.dir().encryption_keys().entry("ui-protected").unwrap();
    assert_eq!(
        serde_json::to_value(stored.info.fingerprint.unwrap()).unwrap(),
        protected["fingerprint"]
    );
    let page = browser.page_text(None).await;
    assert!(
        !page.contains(protected["passphrase"].as_str().unwrap()),
        "the passphrase stays on the page after the upload"
    );
}

/// An unprotected key file uploads straight into the list: no save
/// dialog, the vector's fingerprint in its row, its bytes nowhere on the
/// page.
async fn an_upload_shows_no_save_dialog(browser: &Browser, vectors: &std::path::Path) {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(vectors.join("unprotected.expect.json")).unwrap())
            .unwrap();
    let raw = hex::decode(expected["raw_key_hex"].as_str().unwrap()).unwrap();
    upload(browser, "ui-uploaded", &vectors.join("unprotected.enc")).await;
    browser.find(&row("ui-uploaded")).await;
    browser.wait_text(".list-status", "uploaded").await;
    let dialogs = browser
        .js("return document.querySelectorAll('dialog').length;", vec![])
        .await;
    assert_eq!(dialogs, json!(0), "an upload shows no save dialog");
    let shown = browser
        .js(
            "return document.querySelector(arguments[0] + ' code.fingerprint').title;",
            vec![json!(row("ui-uploaded"))],
        )
        .await;
    assert_eq!(shown, expected["fingerprint"]);
    assert_no_key_bytes(&browser.page_text(None).await, &raw, "after an upload");
}

/// Someone else archives the uploaded key while this page still shows it
/// active: the page's toggle is refused in the row in the server's words
/// and changes nothing; a refresh (Enter on Refresh) shows it archived and
/// leaves the focus on Refresh.
async fn a_stale_toggle_shows_the_servers_words(env: &Env, browser: &Browser) {
    env.dir()
        .encryption_keys()
        .archive_key("ui-uploaded", None)
        .unwrap();
    browser
        .click(&format!("{} .toggle-archive", row("ui-uploaded")))
        .await;
    let error = browser
        .wait_text(
            &format!("{} .row-error", row("ui-uploaded")),
            "detected modified configuration",
        )
        .await;
    assert!(
        error.contains("ui-uploaded") || error.contains("Try again"),
        "{error}"
    );
    browser.screenshot("stale-view-error").await;
    assert!(
        env.dir()
            .encryption_keys()
            .entry("ui-uploaded")
            .unwrap()
            .archived_at
            .is_some(),
        "the stale toggle changed the key"
    );
    browser.press_enter_on("#refresh-keys").await;
    browser
        .find(&format!("{} .state-archived", row("ui-uploaded")))
        .await;
    browser
        .wait_for(
            "the keys loaded",
            "!document.querySelector('#keys-table').hasAttribute('aria-busy')",
        )
        .await;
    browser
        .assert_focus("#refresh-keys", "after the refresh")
        .await;
}

/// The jobs that name a key are in its "Used by" cell; archiving a key a
/// job encrypts with and removing one a job names are disabled, saying
/// why; a job added behind the page's back is refused by the server, in
/// its words in the row.
pub async fn sync_jobs_show_and_block_what_the_server_refuses(
    env: Arc<Env>,
    browser: Arc<Browser>,
) {
    browser.open().await;
    browser.login(ALICE.0, ALICE.1).await;
    let cell = |id: &str| {
        let browser = Arc::clone(&browser);
        let css = format!("{} td[data-label=\"Used by\"]", row(id));
        async move { browser.text(&css).await }
    };
    browser.find(&row("job-key")).await;
    assert_eq!(cell("job-key").await, "nightly (active)");
    assert_eq!(
        cell("old-offsite").await,
        "nightly (associated)\nweekly (associated)"
    );
    assert_eq!(cell("carol-key").await, "—");
    assert_eq!(
        disabled_and_title(&browser, &format!("{} .toggle-archive", row("job-key"))).await,
        json!([
            true,
            "Used to encrypt by sync job nightly - give it another key first"
        ])
    );
    assert_eq!(
        disabled_and_title(&browser, &format!("{} .remove-key", row("old-offsite"))).await,
        json!([
            true,
            "Still named by sync jobs nightly and weekly - remove it from those jobs first"
        ])
    );
    assert_eq!(
        disabled_and_title(&browser, &format!("{} .toggle-archive", row("old-offsite"))).await,
        json!([false, ""])
    );
    browser.screenshot("used-by").await;

    // a job starts to encrypt with carol-key after the page loaded
    let with_carol = format!(
        "{SYNC_JOBS}\nsync: hourly\n\tstore local1\n\tremote other\n\tremote-store remote3\n\tactive-encryption-key carol-key\n"
    );
    write_sync_cfg(env.config_path(), &with_carol);
    browser
        .click(&format!("{} .toggle-archive", row("carol-key")))
        .await;
    let error = browser
        .wait_text(&format!("{} .row-error", row("carol-key")), "hourly")
        .await;
    assert!(error.contains("carol-key"), "{error}");
    browser.screenshot("used-by-refused").await;
    write_sync_cfg(env.config_path(), SYNC_JOBS);
    assert!(
        env.dir()
            .encryption_keys()
            .entry("carol-key")
            .unwrap()
            .archived_at
            .is_none()
    );
}
