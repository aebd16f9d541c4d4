//! The audit view: the log's records of what the page did, filtered by
//! key and operation, one row per operation with its result; the check
//! of the log as a badge, which names the line where a changed log breaks
//! the chain.

use std::collections::HashSet;
use std::sync::Arc;

use fantoccini::key::Key;
use serde_json::{Value, json};

use pbs_config::audit::{AuditLog, Caller, Event, Filter, Op, Phase};

use crate::browser::Browser;
use crate::keys::generate;
use crate::{ALICE, Env};

fn key_row(id: &str) -> String {
    format!("#keys-table tr[data-key-id=\"{id}\"]")
}

/// The rows of the audit table: (operation, keys, who, result).
async fn rows(browser: &Browser) -> Vec<(String, String, String, String)> {
    let value = browser
        .js(
            r#"return Array.from(document.querySelectorAll('#audit-table tbody tr[data-op]')).map((tr) => [
                tr.dataset.op,
                tr.querySelector('td[data-label=Keys]').innerText,
                tr.querySelector('td[data-label=Who]').innerText,
                tr.querySelector('td[data-label=Result]').innerText,
            ]);"#,
            vec![],
        )
        .await;
    serde_json::from_value(value).unwrap()
}

/// Filters the audit view by key `id` and operation `op` (empty: all).
async fn show(browser: &Browser, id: &str, op: &str) {
    browser.type_into(".audit-filter input[name=id]", id).await;
    browser
        .js(
            "const s = document.querySelector('.audit-filter select'); s.value = arguments[0];",
            vec![json!(op)],
        )
        .await;
    browser.click("#audit-apply").await;
    browser
        .wait_for(
            "the audit list",
            "!document.querySelector('#audit-table').hasAttribute('aria-busy') && !document.querySelector('#audit-apply').disabled",
        )
        .await;
}

/// Create, archive, unarchive and remove a key in the page, restore it
/// from the trash: the audit view shows each operation with Alice as its
/// actor, filtered by the key and by the operation; a line of the log
/// changed on disk turns the badge into "Chain broken at line N".
pub async fn audit_view_filters_and_shows_a_broken_chain(env: Arc<Env>, browser: Arc<Browser>) {
    let id = "ui-audit-1";
    browser.open().await;
    browser.login(ALICE.0, ALICE.1).await;
    walk_the_key_through_its_operations(&browser, id).await;
    the_view_lists_the_keys_operations_newest_first(&browser, id).await;
    the_operation_filter_keeps_only_that_operation(&browser).await;
    a_changed_line_breaks_the_chain_there(&env, &browser, id).await;
    a_removed_log_leaves_its_keys_named_as_unrecorded(&env, &browser).await;
    a_long_log_shows_its_newest_records(&env, &browser, id).await;
}

/// A log of more records than the view asks for, in three batches: it
/// lists the newest (`SHOWN_RECORDS` in audit.js) and says so; "Show older
/// records" adds the older ones batch by batch until the log's first
/// record, every operation of the log once, in its order; the filter by
/// key `id` reaches its operations at once, without that note.
async fn a_long_log_shows_its_newest_records(env: &Env, browser: &Browser, id: &str) {
    const SHOWN_RECORDS: usize = 2000;
    let dir = env.dir();
    let log = AuditLog::open_existing(&dir).unwrap().expect("a log");
    // two batches of filler (an intent and its outcome each), and the
    // scenario's records before them in a third
    for _ in 0..SHOWN_RECORDS {
        let event = Event::new(&Caller::cli(), Op::Archive).id("ui-audit-filler");
        let pending = log.intent(&event).unwrap();
        pending
            .done::<()>(Err(anyhow::format_err!("refused by the UI test")))
            .unwrap_err();
    }
    let status = ".audit-view p[role=status]";
    let note = format!("The newest {SHOWN_RECORDS} records only");
    show(browser, "", "").await;
    browser.wait_text(status, &note).await;
    let shown = rows(browser).await;
    assert_eq!(
        shown.len(),
        SHOWN_RECORDS / 2,
        "one row per filler operation"
    );
    assert!(shown.iter().all(|row| row.1 == "ui-audit-filler"));
    browser
        .js(
            "document.querySelector('#audit-older').scrollIntoView();",
            vec![],
        )
        .await;
    browser.screenshot("audit-older-records").await;

    let batches = show_every_older_record(browser).await;
    assert_eq!(batches, 2, "two batches older than the first");
    // the rows as the log's records make them, Alice seeing every key:
    // an intent with its outcome, an outcome whose intent is not in the
    // log alone; newest first
    let records = log.list(&Filter::default()).unwrap();
    let intents: HashSet<u64> = records
        .iter()
        .filter(|record| record.phase == Phase::Intent)
        .map(|record| record.seq)
        .collect();
    let mut expected: Vec<u64> = records
        .iter()
        .filter(|record| {
            record.phase == Phase::Intent
                || !record
                    .intent
                    .is_some_and(|intent| intents.contains(&intent))
        })
        .map(|record| record.seq)
        .collect();
    expected.reverse();
    assert_eq!(expected.last(), Some(&1), "the log's first record");
    assert_eq!(row_seqs(browser).await, expected, "every operation once");
    assert!(!browser.text(status).await.contains(&note));
    browser.screenshot("audit-oldest").await;

    show(browser, id, "").await;
    let of_the_key = rows(browser).await;
    assert!(
        of_the_key.iter().any(|row| row.0 == "create"),
        "{of_the_key:?}"
    );
    assert!(!browser.text(status).await.contains(&note));
    assert_eq!(
        browser
            .js(
                "return document.querySelector('#audit-older').hidden;",
                vec![]
            )
            .await,
        Value::Bool(true),
        "nothing older to show"
    );
}

/// Reads older records with the keyboard, Enter on "Show older records",
/// until the log has no older ones, each batch waited for; returns how
/// many batches it read. The focus stays on the button while the log has
/// older records; when the last batch hides it, the focus is on the first
/// row that batch added (the newest record older than those shown before),
/// not on the page.
async fn show_every_older_record(browser: &Browser) -> usize {
    let settled = "(() => { const b = document.querySelector('#audit-older'); \
                   return !document.querySelector('#audit-table').hasAttribute('aria-busy') \
                   && (b.hidden || !b.disabled) ? (b.hidden ? 'done' : 'more') : null; })()";
    let focused = "const a = document.activeElement; \
                   return !a ? 'nothing' : a.id ? `#${a.id}` : a.dataset.seq ? `seq ${a.dataset.seq}` : a.tagName;";
    browser
        .js("document.querySelector('#audit-older').focus();", vec![])
        .await;
    let mut batches = 0;
    let mut oldest_shown = None;
    while browser.wait_for("an older batch", settled).await == "more" {
        assert!(batches < 10, "still older records after {batches} batches");
        assert_eq!(
            browser.js(focused, vec![]).await,
            "#audit-older",
            "the focus after {batches} batches"
        );
        oldest_shown = row_seqs(browser).await.last().copied();
        browser.press(Key::Enter).await;
        batches += 1;
    }
    let oldest_shown = oldest_shown.expect("a batch read");
    let first_added = row_seqs(browser)
        .await
        .into_iter()
        .find(|&seq| seq < oldest_shown)
        .expect("a row added");
    assert_eq!(
        browser.js(focused, vec![]).await,
        format!("seq {first_added}"),
        "the focus after the last batch"
    );
    batches
}

/// The line (`seq`) of each row's first record, top to bottom.
async fn row_seqs(browser: &Browser) -> Vec<u64> {
    let value = browser
        .js(
            "return Array.from(document.querySelectorAll('#audit-table tbody tr[data-seq]')).map((tr) => Number(tr.dataset.seq));",
            vec![],
        )
        .await;
    serde_json::from_value(value).unwrap()
}

/// With the audit directory moved away the chain of a new log would be
/// intact; the view names the listed keys no record names instead of
/// staying silent, and says nothing of them once the log is back.
async fn a_removed_log_leaves_its_keys_named_as_unrecorded(env: &Env, browser: &Browser) {
    let audit_dir = env.dir().encryption_keys().key_dir().join(".audit");
    let away = audit_dir.with_extension("ui-test-away");
    // the check of the log as shown: its records and the unrecorded keys
    // named, once the badge shows a log of `records`
    let shown = |records: &str| {
        format!(
            "(() => {{ const v = document.querySelector('.audit-verify'); \
             const b = v && v.querySelector('.verify-badge'); \
             if (!b || !b.innerText.startsWith('Chain intact') || {records}) return null; \
             const u = v.querySelector('.verify-unrecorded'); \
             return [b.innerText, u ? u.dataset.count : '', u ? u.innerText : '']; }})()"
        )
    };
    let with_records = shown("b.innerText.includes('(0 records)')");
    let without_records = shown("!b.innerText.includes('(0 records)')");

    show(browser, "", "").await;
    let before = browser.wait_for("the log checked", &with_records).await;
    assert_eq!(before[1], "", "every listed key is recorded: {before}");

    std::fs::rename(&audit_dir, &away).unwrap();
    let listed = env.dir().encryption_keys().index_data().unwrap().len();
    show(browser, "", "").await;
    let removed = browser
        .wait_for("the check without a log", &without_records)
        .await;
    std::fs::rename(&away, &audit_dir).unwrap();
    assert_eq!(removed[1], listed.to_string(), "{removed}");
    assert!(
        removed[2].as_str().unwrap().contains("carol-key"),
        "{removed}"
    );

    show(browser, "", "").await;
    let after = browser
        .wait_for("the log checked again", &with_records)
        .await;
    assert_eq!(after[1], "", "{after}");
}

/// Create, archive, unarchive, archive, remove and restore key `id`, each
/// step waited for in the keys table.
async fn walk_the_key_through_its_operations(browser: &Browser, id: &str) {
    generate(browser, id).await;
    browser.click("dialog.save-key .download-key").await;
    browser.click("dialog.save-key .close-save").await;
    let toggle = format!("{} .toggle-archive", key_row(id));
    for state in ["archived", "active", "archived"] {
        browser.click(&toggle).await;
        browser
            .find(&format!("{} .state-{state}", key_row(id)))
            .await;
    }
    browser.click(&format!("{} .remove-key", key_row(id))).await;
    browser.type_into("dialog.confirm input", id).await;
    browser.click("dialog.confirm button[type=submit]").await;
    let trash_row = format!("#keys-table tr[data-trash-id=\"{id}\"]");
    browser.click(&format!("{trash_row} .restore-trash")).await;
    browser
        .click("dialog.restore-trash button[type=submit]")
        .await;
    browser.find(&key_row(id)).await;
}

/// The audit view's badge says the chain is intact; filtered by key `id`,
/// the view lists its six operations newest first, each Alice's through
/// the API from 127.0.0.1, each "ok".
async fn the_view_lists_the_keys_operations_newest_first(browser: &Browser, id: &str) {
    browser.click("#nav a[href=\"#audit\"]").await;
    browser.find("#audit-table").await;
    let badge = browser
        .wait_text(".audit-verify .verify-badge", "Chain intact")
        .await;
    assert!(badge.contains("records"), "{badge}");

    show(browser, id, "").await;
    let ops: Vec<String> = rows(browser).await.into_iter().map(|r| r.0).collect();
    assert_eq!(
        ops,
        [
            "trash-restore",
            "delete",
            "archive",
            "unarchive",
            "archive",
            "create"
        ],
        "newest first"
    );
    for (op, keys, who, result) in rows(browser).await {
        assert!(keys.contains(id), "{op}: {keys}");
        assert!(who.starts_with("alice@pbs"), "{op}: {who}");
        assert!(who.contains("api 127.0.0.1"), "{op}: {who}");
        assert_eq!(result, "ok", "{op}");
    }
    browser.screenshot("audit-by-key").await;
}

/// Filtered by operation "archive" alone, the view lists only archives,
/// at least the two of this scenario.
async fn the_operation_filter_keeps_only_that_operation(browser: &Browser) {
    show(browser, "", "archive").await;
    let archives = rows(browser).await;
    assert!(archives.len() >= 2, "{archives:?}");
    assert!(archives.iter().all(|r| r.0 == "archive"), "{archives:?}");
    browser.screenshot("audit-by-operation").await;
}

/// The unarchive record of key `id` changed behind the daemon's back: the
/// badge says the chain breaks at its line, the problems name that line,
/// its row alone is marked; with the log put back the chain is intact.
async fn a_changed_line_breaks_the_chain_there(env: &Env, browser: &Browser, id: &str) {
    let dir = env.dir();
    let log_path = AuditLog::open_existing(&dir)
        .unwrap()
        .expect("a log")
        .log_path();
    let original = std::fs::read(&log_path).unwrap();
    let (changed, number) = with_unarchive_actor_changed(&original, id);
    std::fs::write(&log_path, changed).unwrap();
    show(browser, id, "").await;
    let broken = browser
        .wait_text(
            ".audit-verify .verify-badge",
            &format!("Chain broken at line {number}"),
        )
        .await;
    let problems = browser.text(".audit-verify .verify-problems").await;
    assert!(
        problems.contains(&format!("line {number}")),
        "{broken}: {problems}"
    );
    let marked = browser
        .js(
            "return Array.from(document.querySelectorAll('#audit-table tr.broken')).map((tr) => tr.dataset.op);",
            vec![],
        )
        .await;
    assert_eq!(
        marked,
        Value::from(vec!["unarchive"]),
        "the broken operation's row"
    );
    browser
        .js(
            "document.querySelector('.audit-verify').scrollIntoView();",
            vec![],
        )
        .await;
    browser.screenshot("audit-broken").await;
    std::fs::write(&log_path, &original).unwrap();
    show(browser, "", "").await;
    browser
        .wait_text(".audit-verify .verify-badge", "Chain intact")
        .await;
}

/// The log text `original` with the actor of key `id`'s unarchive record
/// changed from Alice to Mallory, and that record's line number (from 1).
fn with_unarchive_actor_changed(original: &[u8], id: &str) -> (String, usize) {
    let text = String::from_utf8(original.to_vec()).unwrap();
    let (index, line) = text
        .lines()
        .enumerate()
        .find(|(_, line)| {
            line.contains(&format!("\"{id}\"")) && line.contains("\"op\":\"unarchive\"")
        })
        .expect("the unarchive record");
    let changed: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == index {
                line.replace("alice@pbs", "mallory@pbs")
            } else {
                l.to_string()
            }
        })
        .collect();
    (format!("{}\n", changed.join("\n")), index + 1)
}
