//! The trash: a removed key is a row "in trash" with its purge date in the
//! keys view and a row of the trash view; restored from either (under its
//! id or another), refused in the server's words when its id is taken,
//! purged after typing its id.

use std::sync::Arc;

use serde_json::json;

use pbs_api_types::Fingerprint;
use pbs_config::encryption_keys::EncryptionKeys;
use pbs_test_kit::key_config;

use crate::browser::Browser;
use crate::verified_copy::prove_copies;
use crate::{ALICE, Env};

/// A key row of the keys view.
fn key_row(id: &str) -> String {
    format!("#keys-table tr[data-key-id=\"{id}\"]")
}

/// A trash row of the keys view.
fn trash_row(id: &str) -> String {
    format!("#keys-table tr[data-trash-id=\"{id}\"]")
}

/// A row of the trash view.
pub fn trash_view_row(id: &str) -> String {
    format!("#trash-table tr[data-key-id=\"{id}\"]")
}

/// Removes archived key `id` through its row's Remove dialog.
async fn remove_in_page(browser: &Browser, id: &str) {
    browser.click(&format!("{} .remove-key", key_row(id))).await;
    browser.type_into("dialog.confirm input", id).await;
    browser.click("dialog.confirm button[type=submit]").await;
    browser.find(&trash_row(id)).await;
}

async fn disabled(browser: &Browser, css: &str) -> bool {
    browser
        .js(
            "return document.querySelector(arguments[0]).disabled;",
            vec![json!(css)],
        )
        .await
        == json!(true)
}

/// Remove a key, see it in the trash (keys view and trash view, with the
/// purge date the server keeps), restore it; restore as another id; a
/// taken id refused in the dialog; purge after typing the id.
pub async fn remove_see_in_trash_restore_and_purge(env: Arc<Env>, browser: Arc<Browser>) {
    let dir = env.dir();
    let keys = dir.encryption_keys();
    let fingerprint = keys
        .store_key("ui-trash-1", &key_config(910))
        .unwrap()
        .info
        .fingerprint;
    keys.archive_key("ui-trash-1", None).unwrap();
    // a verified copy of ui-trash-1, none of ui-trash-2
    prove_copies(&dir, &["ui-trash-1"]);
    keys.store_key("ui-trash-2", &key_config(911)).unwrap();
    keys.archive_key("ui-trash-2", None).unwrap();

    browser.open().await;
    browser.login(ALICE.0, ALICE.1).await;
    a_removed_key_is_in_trash_with_its_purge_date(&browser, &keys).await;
    a_restore_in_the_keys_view_brings_it_back_archived(&browser, &keys, fingerprint).await;
    the_trash_view_lists_both_with_who_removed_them(&browser).await;
    a_taken_id_is_refused_and_another_id_restores(&browser, &keys, fingerprint).await;
    a_purge_needs_the_whole_id(&browser, &keys).await;
}

/// Waits for the element `css` to be gone (`what`: what is waited for).
async fn wait_gone(browser: &Browser, what: &str, css: &str) {
    browser
        .wait_for(what, &format!("!document.querySelector({})", json!(css)))
        .await;
}

/// Key ui-trash-1 removed in the page: gone from the store, in the
/// server's trash with a purge date, and its keys view row says "in trash"
/// with that date in the browser's time zone.
async fn a_removed_key_is_in_trash_with_its_purge_date(
    browser: &Browser,
    keys: &EncryptionKeys<'_>,
) {
    remove_in_page(browser, "ui-trash-1").await;
    assert!(keys.entry("ui-trash-1").is_err(), "still in the store");
    let listing = keys.trash().list().unwrap();
    let entry = listing
        .entries
        .iter()
        .find(|e| e.record.id == "ui-trash-1")
        .expect("in the server's trash");
    let purge_after = entry.record.purge_after.expect("a purge date");
    let state = browser
        .text(&format!("{} td[data-label=State]", trash_row("ui-trash-1")))
        .await;
    assert!(state.starts_with("in trash"), "{state}");
    let expected_date = browser
        .js(
            "const d = new Date(arguments[0] * 1000); const p = (n) => String(n).padStart(2, '0'); \
             return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;",
            vec![json!(purge_after)],
        )
        .await;
    assert!(
        state.contains(&format!("purge after {}", expected_date.as_str().unwrap())),
        "{state} vs {expected_date}"
    );
    browser.wait_text(".list-status", "removed").await;
    browser
        .js(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});",
            vec![json!(trash_row("ui-trash-1"))],
        )
        .await;
    browser.screenshot("keys-in-trash").await;
}

/// Restored from its keys view row, ui-trash-1 comes back archived, as it
/// was, the key it was (`fingerprint`); its trash row goes.
async fn a_restore_in_the_keys_view_brings_it_back_archived(
    browser: &Browser,
    keys: &EncryptionKeys<'_>,
    fingerprint: Option<Fingerprint>,
) {
    // restore it from the keys view: it comes back archived, as it was
    browser
        .click(&format!("{} .restore-trash", trash_row("ui-trash-1")))
        .await;
    browser.find("dialog.restore-trash[open]").await;
    browser.screenshot("restore-dialog").await;
    browser
        .click("dialog.restore-trash button[type=submit]")
        .await;
    browser
        .find(&format!("{} .state-archived", key_row("ui-trash-1")))
        .await;
    wait_gone(browser, "the trash row to go", &trash_row("ui-trash-1")).await;
    assert_eq!(
        keys.entry("ui-trash-1").unwrap().info.fingerprint,
        fingerprint,
        "restored the key it was"
    );
}

/// Both keys removed again: the trash view lists them, with the reason
/// and Alice as who removed them.
async fn the_trash_view_lists_both_with_who_removed_them(browser: &Browser) {
    // both into the trash again; the trash view lists them
    remove_in_page(browser, "ui-trash-1").await;
    remove_in_page(browser, "ui-trash-2").await;
    browser.click("#nav a[href=\"#trash\"]").await;
    browser.find(&trash_view_row("ui-trash-2")).await;
    let reason = browser
        .text(&format!(
            "{} td[data-label=Reason]",
            trash_view_row("ui-trash-1")
        ))
        .await;
    assert_eq!(reason, "removed");
    let actor = browser
        .text(&format!(
            "{} td[data-label=\"Removed by\"]",
            trash_view_row("ui-trash-1")
        ))
        .await;
    assert_eq!(actor, ALICE.0, "who removed it, as the trash records it");
    let copy = |id: &str| format!("{} td[data-label=\"Verified copy\"]", trash_view_row(id));
    let copied = browser.text(&copy("ui-trash-1")).await;
    assert!(copied.starts_with("20"), "a date: {copied}");
    assert_eq!(
        browser.text(&copy("ui-trash-2")).await,
        "none: kept until purged by hand"
    );
    browser.wait_text(".list-status", "in the trash").await;
    browser.screenshot("trash-view").await;
}

/// Restoring ui-trash-1 as carol-key is refused in the server's words in
/// the dialog and leaves carol-key alone; as ui-trash-1b it restores the
/// key it was (`fingerprint`) under that id.
async fn a_taken_id_is_refused_and_another_id_restores(
    browser: &Browser,
    keys: &EncryptionKeys<'_>,
    fingerprint: Option<Fingerprint>,
) {
    // restore as an id that is taken (by keyboard): the server's words in
    // the dialog, the focus still on its button
    browser
        .click(&format!("{} .restore-trash", trash_view_row("ui-trash-1")))
        .await;
    browser
        .type_into("dialog.restore-trash input[name=as]", "carol-key")
        .await;
    let submit = "dialog.restore-trash button[type=submit]";
    browser.press_enter_on(submit).await;
    let error = browser
        .wait_text("dialog.restore-trash .restore-error", "carol-key")
        .await;
    assert!(!error.is_empty());
    browser.assert_focus(submit, "after the refusal").await;
    browser.screenshot("restore-taken").await;
    assert!(keys.entry("carol-key").unwrap().info.fingerprint != fingerprint);

    // restore as another id
    browser
        .type_into("dialog.restore-trash input[name=as]", "ui-trash-1b")
        .await;
    browser
        .click("dialog.restore-trash button[type=submit]")
        .await;
    browser
        .wait_text(".list-status", "restored as ui-trash-1b")
        .await;
    assert_eq!(
        keys.entry("ui-trash-1b").unwrap().info.fingerprint,
        fingerprint
    );
    assert!(keys.entry("ui-trash-1").is_err());
}

/// Purging ui-trash-2, of which no verified copy is recorded, is allowed
/// only once its id is typed in full and the loss is acknowledged; then it
/// is gone from the trash view, the server's trash and the store.
async fn a_purge_needs_the_whole_id(browser: &Browser, keys: &EncryptionKeys<'_>) {
    // purge: only after typing the id in full
    browser
        .click(&format!("{} .purge-trash", trash_view_row("ui-trash-2")))
        .await;
    browser.find("dialog.confirm[open]").await;
    let confirm = "dialog.confirm button[type=submit]";
    let typed = "dialog.confirm input.confirm-input";
    assert!(disabled(browser, confirm).await);
    browser.type_into(typed, "ui-trash").await;
    assert!(disabled(browser, confirm).await, "a part of the id");
    browser.type_into(typed, "ui-trash-2").await;
    assert!(
        disabled(browser, confirm).await,
        "the id without acknowledging there is no verified copy"
    );
    let text = browser.text("dialog.confirm form").await;
    assert!(
        text.contains("No verified copy of it is recorded"),
        "{text}"
    );
    browser
        .click("dialog.confirm input.confirm-acknowledge")
        .await;
    assert!(!disabled(browser, confirm).await);
    browser.screenshot("purge-confirm").await;
    browser.click(confirm).await;
    browser.wait_text(".list-status", "purged").await;
    wait_gone(
        browser,
        "the purged row to go",
        &trash_view_row("ui-trash-2"),
    )
    .await;
    let left = keys.trash().list().unwrap();
    assert!(
        !left.entries.iter().any(|e| e.record.id == "ui-trash-2"),
        "ui-trash-2 is still in the server's trash"
    );
    assert!(keys.entry("ui-trash-2").is_err());
}
