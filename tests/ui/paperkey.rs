//! Paper keys: printing one from the save dialog (the server's paperkey
//! route, its QR code as SVG), and adding a key by typing a paper key's
//! lines, with a typing error named by its line.

use std::sync::Arc;

use serde_json::json;

use pbs_key_config::KeyConfig;
use pbs_key_config::paperkey::Paperkey;
use pbs_test_kit::key_config;

use crate::browser::Browser;
use crate::keys::{assert_no_key_bytes, close_save_dialog, generate, print_paper_key};
use crate::{ALICE, Env};

fn key_row(id: &str) -> String {
    format!("#keys-table tr[data-key-id=\"{id}\"]")
}

/// The `d` of every path of the first SVG in `html`, in order.
fn svg_paths(html: &str) -> Vec<String> {
    let start = html.find("<svg").expect("an SVG");
    let svg = &html[start..html.find("</svg>").unwrap()];
    svg.split("<path")
        .skip(1)
        .map(|tag| {
            let tag = &tag[..tag.find('>').unwrap()];
            let d = &tag[tag.find(" d=\"").expect("a path's d") + 4..];
            d[..d.find('"').unwrap()].to_string()
        })
        .collect()
}

/// Print in the save dialog: the sheet (the server's QR code and typing
/// aid) appears in the dialog and the browser's print is called; the key
/// is nowhere outside the dialog, and gone with it.
pub async fn print_paperkey_and_add_by_paperkey_text(env: Arc<Env>, browser: Arc<Browser>) {
    let id = "ui-paper-1";
    browser.open().await;
    browser.login(ALICE.0, ALICE.1).await;
    generate(&browser, id).await;
    print_paper_key(&browser).await;
    browser
        .wait_text("dialog.save-key .message", "Printing the paper key")
        .await;
    assert_eq!(
        browser.js("return window.uiPrints;", vec![]).await,
        json!(1)
    );
    let stored = env.dir().encryption_keys().read_key_file(id).unwrap();
    the_sheet_is_the_servers_paperkey(&browser, id, &stored).await;
    the_key_stays_in_the_dialog_and_goes_with_it(&browser, &stored).await;
    a_typed_paperkey_adds_the_key_after_a_typo_is_named(&env, &browser).await;
}

/// The sheet in the save dialog is the server's paperkey of key `id`
/// (`stored`): its QR code, its typing aid, its key block.
async fn the_sheet_is_the_servers_paperkey(browser: &Browser, id: &str, stored: &KeyConfig) {
    let paperkey = Paperkey::new(id, stored, None).unwrap();
    let html = paperkey.to_html().unwrap();
    let shown: Vec<String> = serde_json::from_value(
        browser
            .js(
                "return Array.from(document.querySelectorAll('dialog.save-key svg.paperkey-qr path')).map((p) => p.getAttribute('d'));",
                vec![],
            )
            .await,
    )
    .unwrap();
    assert_eq!(shown, svg_paths(&html), "the QR code is the server's");
    let aid = browser
        .js(
            "return document.querySelector('dialog.save-key .paperkey-typing-aid').textContent;",
            vec![],
        )
        .await;
    assert_eq!(aid, json!(paperkey.typing_aid().unwrap().join("\n")));
    let block = browser.text("dialog.save-key .paperkey-block").await;
    assert!(
        block.starts_with("-----BEGIN PROXMOX BACKUP KEY-----"),
        "{block}"
    );
    browser
        .js(
            "document.querySelector('dialog.save-key .paperkey-sheet').scrollIntoView();",
            vec![],
        )
        .await;
    browser.screenshot("paperkey-sheet").await;
}

/// The key (`stored`) is nowhere on the page outside the save dialog with
/// its paper key, and nowhere once the dialog closed.
async fn the_key_stays_in_the_dialog_and_goes_with_it(browser: &Browser, stored: &KeyConfig) {
    let (raw, _, _) = stored.decrypt(&|| panic!("unprotected")).unwrap();
    let outside = browser.page_text(Some("dialog.save-key")).await;
    assert_no_key_bytes(&outside, &raw, "outside the save dialog with its paper key");
    close_save_dialog(browser).await;
    assert_no_key_bytes(
        &browser.page_text(None).await,
        &raw,
        "after the dialog closed",
    );
}

/// Adding by the typing aid: a typing error is named by its line and adds
/// nothing, then the right lines add the key with its fingerprint, no
/// save dialog, its bytes nowhere on the page.
async fn a_typed_paperkey_adds_the_key_after_a_typo_is_named(env: &Env, browser: &Browser) {
    let paper_key = key_config(930);
    let (paper_raw, _, paper_fingerprint) = paper_key.decrypt(&|| panic!("unprotected")).unwrap();
    let lines = Paperkey::new("paper", &paper_key, None)
        .unwrap()
        .typing_aid()
        .unwrap();
    let mut typo = lines.clone();
    let second = &typo[1];
    let flipped = if &second[4..5] == "0" { "1" } else { "0" };
    typo[1] = format!("{}{flipped}{}", &second[..4], &second[5..]);
    browser.click("#add-key").await;
    browser.click("dialog.add-key input[value=paperkey]").await;
    browser
        .type_into("dialog.add-key input[name=id]", "ui-paper-2")
        .await;
    browser
        .type_into("dialog.add-key textarea[name=paperkey]", &typo.join("\n"))
        .await;
    browser.click("dialog.add-key button[type=submit]").await;
    let error = browser
        .wait_text("dialog.add-key .add-error", "line 02")
        .await;
    assert!(error.contains("typing error"), "{error}");
    browser
        .js(
            "document.querySelector('dialog.add-key .add-error').scrollIntoView({block: 'center'});",
            vec![],
        )
        .await;
    browser.screenshot("paperkey-typo").await;
    assert!(env.dir().encryption_keys().entry("ui-paper-2").is_err());
    browser
        .type_into("dialog.add-key textarea[name=paperkey]", &lines.join("\n"))
        .await;
    browser.click("dialog.add-key button[type=submit]").await;
    browser.find(&key_row("ui-paper-2")).await;
    browser.wait_text(".list-status", "added").await;
    assert_eq!(
        env.dir()
            .encryption_keys()
            .entry("ui-paper-2")
            .unwrap()
            .info
            .fingerprint,
        Some(paper_fingerprint)
    );
    assert_eq!(
        browser
            .js("return document.querySelectorAll('dialog').length;", vec![])
            .await,
        json!(0),
        "a paper key shows no save dialog"
    );
    assert_no_key_bytes(
        &browser.page_text(None).await,
        &paper_raw,
        "after adding by paper key",
    );
}
