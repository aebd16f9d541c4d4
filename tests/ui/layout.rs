//! Usable at 1280x800 and on a 390 px wide phone; every control reachable
//! by keyboard and labelled.

use std::collections::BTreeSet;
use std::sync::Arc;

use fantoccini::key::Key;
use serde_json::json;

use crate::browser::Browser;
use crate::keys::{close_save_dialog, print_paper_key, submit_the_add_dialog};
use crate::{ALICE, Env};

/// Asserts that nothing of the page sticks out to the right of the
/// viewport (no sideways scrolling), naming what does.
async fn assert_fits(browser: &Browser, what: &str) {
    let outside = browser
        .js(
            r#"
            const width = document.documentElement.clientWidth;
            const out = Array.from(document.querySelectorAll('body *'))
                .filter((el) => el.getClientRects().length > 0 && !el.closest('.visually-hidden, thead'))
                .filter((el) => el.getBoundingClientRect().right > width + 0.5)
                .map((el) => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right));
            return [document.documentElement.scrollWidth <= width, out.slice(0, 8)];
            "#,
            vec![],
        )
        .await;
    assert_eq!(
        outside,
        json!([true, []]),
        "{what}: the page is wider than the screen"
    );
}

/// The desktop view has the whole table without sideways scrolling; the
/// phone shows one card per key, the dialogs fit its width.
pub async fn phone_and_desktop_layouts_fit(_env: Arc<Env>, browser: Arc<Browser>) {
    browser.open().await;
    browser.login(ALICE.0, ALICE.1).await;
    the_desktop_key_table_fits(&browser).await;
    every_other_view_fits_at_both_sizes(&browser).await;
    the_phone_shows_one_card_per_key(&browser).await;
    the_dialogs_fit_the_phone(&browser).await;
}

/// At 1280x800 the page and the key table fit without sideways
/// scrolling.
async fn the_desktop_key_table_fits(browser: &Browser) {
    browser
        .find("#keys-table tr[data-key-id=\"carol-key\"]")
        .await;
    assert_fits(browser, "1280x800").await;
    let table_fits = browser
        .js(
            "const wrap = document.querySelector('.table-wrap'); return wrap.scrollWidth <= wrap.clientWidth;",
            vec![],
        )
        .await;
    assert_eq!(
        table_fits,
        json!(true),
        "the key table scrolls sideways at 1280x800"
    );
}

/// The trash, restore, rotate and audit views fit at 1280x800 and at
/// 390 px; back on the keys view at 1280x800.
async fn every_other_view_fits_at_both_sizes(browser: &Browser) {
    for (view, ready) in [
        ("trash", "#trash-table:not([aria-busy])"),
        ("restore", "#run-drill"),
        ("rotate", "#jobs-table:not([aria-busy])"),
        ("audit", "#audit-table:not([aria-busy])"),
    ] {
        browser.click(&format!("#nav a[href=\"#{view}\"]")).await;
        browser.find(ready).await;
        assert_fits(browser, &format!("{view} at 1280x800")).await;
        browser.resize(390, 844).await;
        assert_fits(browser, &format!("{view} at 390 px")).await;
        browser.screenshot(&format!("phone-{view}")).await;
        browser.resize(1280, 800).await;
    }
    browser.click("#nav a[href=\"#keys\"]").await;
    browser
        .find("#keys-table tr[data-key-id=\"carol-key\"]")
        .await;
}

/// At 390 px the keys view fits, each key is a card, and the export
/// checkbox is on the card.
async fn the_phone_shows_one_card_per_key(browser: &Browser) {
    browser.resize(390, 844).await;
    assert_fits(browser, "390 px").await;
    let card = browser
        .js(
            "return getComputedStyle(document.querySelector('#keys-table tbody tr')).display;",
            vec![],
        )
        .await;
    assert_eq!(card, json!("block"), "keys as cards on a phone");
    let select = browser
        .js(
            "const box = document.querySelector('#keys-table tbody tr input.select-key').getBoundingClientRect(); \
             return box.width > 0 && box.right <= document.documentElement.clientWidth;",
            vec![],
        )
        .await;
    assert_eq!(select, json!(true), "the export checkbox is on the card");
    browser.screenshot("phone-keys").await;
}

/// At 390 px the add dialog, the save dialog and the paper key sheet fit;
/// the new key, copied, closes at once into its row.
async fn the_dialogs_fit_the_phone(browser: &Browser) {
    browser.click("#add-key").await;
    browser.find("dialog.add-key[open]").await;
    assert_fits(browser, "the add dialog at 390 px").await;
    browser.screenshot("phone-add").await;
    submit_the_add_dialog(browser, "ui-phone").await;
    assert_fits(browser, "the save dialog at 390 px").await;
    browser.screenshot("phone-save-dialog").await;
    browser.click("dialog.save-key .copy-key").await;
    browser
        .wait_text("dialog.save-key .message", "Copied")
        .await;
    print_paper_key(browser).await;
    assert_fits(browser, "the paper key sheet at 390 px").await;
    browser
        .js(
            "document.querySelector('dialog.save-key .paperkey-sheet').scrollIntoView();",
            vec![],
        )
        .await;
    browser.screenshot("phone-paperkey").await;
    // copied: closes at once
    close_save_dialog(browser).await;
    browser
        .find("#keys-table tr[data-key-id=\"ui-phone\"]")
        .await;
    browser.screenshot("phone-keys-after").await;
}

/// Every control and dialog in view has a name a screen reader reads.
async fn assert_labelled(browser: &Browser, what: &str) {
    let unlabelled = browser
        .js(
            r#"
            const name = (el) => {
                if (el.getAttribute('aria-label')) return el.getAttribute('aria-label');
                const by = el.getAttribute('aria-labelledby');
                if (by) return by.split(' ').map((id) => document.getElementById(id)?.innerText || '').join(' ');
                if (el.labels && el.labels.length) return Array.from(el.labels).map((l) => l.innerText).join(' ');
                if (el.tagName === 'BUTTON' || el.tagName === 'A') return el.innerText;
                return '';
            };
            return Array.from(document.querySelectorAll('a[href], button, input, select, textarea, dialog'))
                .filter((el) => el.getClientRects().length > 0 || el.tagName === 'DIALOG')
                .filter((el) => !name(el).trim())
                .map((el) => el.outerHTML.slice(0, 120));
            "#,
            vec![],
        )
        .await;
    assert_eq!(unlabelled, json!([]), "{what}: controls without a name");
}

/// Tab reaches every enabled control in view (in an open dialog: of the
/// dialog); at least `least` of them.
async fn assert_tab_reaches_all(browser: &Browser, what: &str, least: u64) {
    let count = browser
        .js(
            r#"
            // an open modal dialog makes the rest of the page inert
            const scope = document.querySelector('dialog[open]') || document;
            document.querySelectorAll('[data-kb]').forEach((el) => { delete el.dataset.kb; });
            const controls = Array.from(scope.querySelectorAll('a[href], button, input, select, textarea'))
                .filter((el) => !el.disabled && el.getClientRects().length > 0);
            controls.forEach((el, i) => { el.dataset.kb = String(i); });
            document.activeElement.blur();
            return controls.length;
            "#,
            vec![],
        )
        .await
        .as_u64()
        .unwrap();
    assert!(count >= least, "{what}: {count} controls");
    let mut reached = BTreeSet::new();
    for _ in 0..(count * 2 + 4) {
        browser.press(Key::Tab).await;
        let kb = browser
            .js("return document.activeElement.dataset.kb || null;", vec![])
            .await;
        if let Some(kb) = kb.as_str() {
            reached.insert(kb.parse::<u64>().unwrap());
        }
        if reached.len() as u64 == count {
            break;
        }
    }
    let missed: Vec<u64> = (0..count).filter(|i| !reached.contains(i)).collect();
    assert!(
        missed.is_empty(),
        "{what}: Tab never reached controls {missed:?} of {count}"
    );
}

/// Labels: every field and button has a name a screen reader reads. Tab
/// reaches every enabled control; the login and the add dialog work from
/// the keyboard alone, and the dialog gives the focus back.
pub async fn keyboard_reaches_and_labels_every_control(_env: Arc<Env>, browser: Arc<Browser>) {
    browser.open().await;
    browser
        .wait_for(
            "the focus in the user name field",
            "document.activeElement && document.activeElement.name === 'username'",
        )
        .await;
    browser.type_keys(ALICE.0).await;
    browser.press(Key::Tab).await;
    browser.type_keys(ALICE.1).await;
    browser.press(Key::Enter).await;
    browser
        .find("#keys-table tr[data-key-id=\"carol-key\"]")
        .await;

    assert_labelled(&browser, "the keys view").await;
    assert_tab_reaches_all(&browser, "the keys view", 6).await;

    // the add dialog from the keyboard
    browser
        .js("document.getElementById('add-key').focus();", vec![])
        .await;
    browser.screenshot("keyboard-focus").await;
    browser.press(Key::Enter).await;
    browser
        .wait_for(
            "the focus in the key id field",
            "document.activeElement && document.activeElement.name === 'id' && document.activeElement.closest('dialog.add-key')",
        )
        .await;
    browser.press(Key::Escape).await;
    browser
        .wait_for(
            "the focus back on the add button",
            "!document.querySelector('dialog') && document.activeElement.id === 'add-key'",
        )
        .await;

    // the add dialog's paper key field, the export dialog
    browser.click("#add-key").await;
    browser.click("dialog.add-key input[value=paperkey]").await;
    assert_labelled(&browser, "the add dialog with a paper key").await;
    browser.press(Key::Escape).await;
    browser
        .js("document.getElementById('export-keys').focus();", vec![])
        .await;
    browser.press(Key::Enter).await;
    browser.find("dialog.export-keys[open]").await;
    assert_labelled(&browser, "the export dialog").await;
    assert_tab_reaches_all(&browser, "the export dialog", 4).await;
    browser.press(Key::Escape).await;
    browser
        .wait_for(
            "the focus back on the export button",
            "!document.querySelector('dialog') && document.activeElement.id === 'export-keys'",
        )
        .await;

    // the other views, reached through the navigation by keyboard
    for (view, ready, least) in [
        ("trash", "#refresh-trash", 1),
        ("restore", "#run-drill", 4),
        ("rotate", "#refresh-rotate", 1),
        ("audit", "#audit-apply", 3),
    ] {
        browser
            .js(
                "document.querySelector(arguments[0]).focus();",
                vec![json!(format!("#nav a[href=\"#{view}\"]"))],
            )
            .await;
        browser.press(Key::Enter).await;
        browser.find(ready).await;
        assert_labelled(&browser, view).await;
        assert_tab_reaches_all(&browser, view, least).await;
    }
}
