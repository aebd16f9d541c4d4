//! What a user may do decides which controls are enabled: an Audit-only
//! user sees every write control disabled, each naming the missing
//! privilege; a user with Modify on one key may change that key only.

use std::sync::Arc;

use serde_json::{Value, json};

use pbs_test_kit::key_config;

use crate::browser::Browser;
use crate::keys::disabled_and_title;
use crate::{BOB, CAROL, Env};

/// Every control of the page: (selector-ish name, enabled, tooltip).
async fn controls(browser: &Browser) -> Vec<(String, bool, String)> {
    let value = browser
        .js(
            r#"
            return Array.from(document.querySelectorAll('button, input, select, textarea'))
                .filter((el) => el.getClientRects().length > 0)
                .map((el) => [
                    el.id ? '#' + el.id : (el.className || el.type || el.tagName)
                        + (el.closest('tr[data-key-id]') ? '@' + el.closest('tr[data-key-id]').dataset.keyId : ''),
                    !el.disabled,
                    el.title || '',
                ]);
            "#,
            vec![],
        )
        .await;
    serde_json::from_value(value).unwrap()
}

/// Controls that change nothing on the server.
fn is_read_only(name: &str) -> bool {
    name == "#refresh-keys"
        || name == "#refresh-trash"
        || name == "#refresh-rotate"
        || name == "#logout"
        || name.starts_with("#show-archived")
        || name.starts_with("#show-trash")
}

/// Bob holds Audit on the keys: he sees them and the trash, and every
/// control that would change one (in the keys, trash and restore views)
/// is disabled with a tooltip naming Sys.Modify.
pub async fn audit_only_user_sees_no_enabled_write_control(env: Arc<Env>, browser: Arc<Browser>) {
    let dir = env.dir();
    let keys = dir.encryption_keys();
    keys.store_key("ui-bob-trash", &key_config(940)).unwrap();
    keys.archive_key("ui-bob-trash", None).unwrap();
    keys.remove_key("ui-bob-trash", None).unwrap();
    browser.open().await;
    browser.login(BOB.0, BOB.1).await;
    browser
        .find("#keys-table tr[data-key-id=\"carol-key\"]")
        .await;
    browser
        .find("#keys-table tr[data-key-id=\"old-offsite\"]")
        .await;
    let note = browser
        .wait_text(".readonly-note", "Sys.Modify on /system/encryption-keys")
        .await;
    assert!(note.starts_with("Read-only"), "{note}");
    let all = controls(&browser).await;
    let mut writes = 0;
    for (name, enabled, title) in &all {
        if is_read_only(name) {
            assert!(enabled, "{name} should stay usable");
            continue;
        }
        writes += 1;
        assert!(
            !enabled,
            "{name} is enabled for an Audit-only user: {all:?}"
        );
        assert!(
            title.starts_with("Missing privilege Sys.Modify on /system/encryption-keys"),
            "{name}: tooltip {title:?}"
        );
    }
    // add, and archive or unarchive plus remove on both keys
    assert!(writes >= 5, "write controls found: {all:?}");
    browser.screenshot("audit-user").await;

    // the trash and the restore view: every write control disabled too
    for (view, ready, least) in [
        ("trash", "#trash-table tr[data-key-id=\"ui-bob-trash\"]", 2),
        ("restore", "#restore-bundle", 4),
        // Bob reads no datastore: the jobs list is empty for him
        ("rotate", "#jobs-table:not([aria-busy])", 0),
    ] {
        browser.click(&format!("#nav a[href=\"#{view}\"]")).await;
        browser.find(ready).await;
        let all = controls(&browser).await;
        let mut writes = 0;
        for (name, enabled, title) in &all {
            if is_read_only(name) {
                assert!(enabled, "{view}: {name} should stay usable");
                continue;
            }
            writes += 1;
            assert!(!enabled, "{view}: {name} is enabled for an Audit-only user");
            assert_eq!(
                title, "Missing privilege Sys.Modify on /system/encryption-keys",
                "{view}: {name}"
            );
        }
        assert!(writes >= least, "{view}: write controls found: {all:?}");
        browser.screenshot(&format!("audit-user-{view}")).await;
    }
}

/// Carol holds Audit on the keys and Admin on `carol-key`: that key's
/// controls work, the other key's and adding a key are disabled.
pub async fn per_key_privileges_enable_that_key_only(env: Arc<Env>, browser: Arc<Browser>) {
    browser.open().await;
    browser.login(CAROL.0, CAROL.1).await;
    let mine = "#keys-table tr[data-key-id=\"carol-key\"]";
    let other = "#keys-table tr[data-key-id=\"old-offsite\"]";
    browser.find(other).await;
    assert_eq!(
        disabled_and_title(&browser, &format!("{mine} .toggle-archive")).await,
        json!([false, ""])
    );
    let (disabled, title) =
        match disabled_and_title(&browser, &format!("{other} .toggle-archive")).await {
            Value::Array(pair) => (pair[0].clone(), pair[1].clone()),
            other => panic!("{other}"),
        };
    assert_eq!(disabled, json!(true));
    assert_eq!(
        title,
        json!("Missing privilege Sys.Modify on /system/encryption-keys/old-offsite")
    );
    assert_eq!(
        disabled_and_title(&browser, "#add-key").await[0],
        json!(true)
    );
    browser.screenshot("per-key").await;

    // what the page allows, the server does
    browser.click(&format!("{mine} .toggle-archive")).await;
    browser.find(&format!("{mine} .state-archived")).await;
    browser.click(&format!("{mine} .toggle-archive")).await;
    browser.find(&format!("{mine} .state-active")).await;
    assert!(
        env.dir()
            .encryption_keys()
            .entry("carol-key")
            .unwrap()
            .archived_at
            .is_none()
    );
}
