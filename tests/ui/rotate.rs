//! Key rotation in the page: the sync jobs with their keys, a rotation
//! of a push job and the job sharing its key (the plan, every step done,
//! the proven export downloaded), a rotation a failure stopped resumed
//! from its journal, another aborted (its new key into the trash).

use std::sync::Arc;

use anyhow::{Error, bail};
use serde_json::json;

use pbs_api_types::{CryptKey, SyncJobConfig};
use pbs_config::ConfigDir;
use pbs_config::encryption_keys::EncryptionKeys;
use pbs_config::rotation::{ExportPlan, RotateHooks, RotateRequest};
use pbs_config::sync::JobsEdit;
use pbs_key_config::bundle::{BundleSecret, open_bundle};
use pbs_test_kit::key_config;

use crate::browser::Browser;
use crate::keys::disabled_and_title;
use crate::{ALICE, Env, SYNC_JOBS, write_sync_cfg};

const PASSPHRASE: &str = "rotation bundle passphrase";

/// Push jobs: `push-a` and `push-a2` share `push-key`; `push-b` and
/// `push-c` have a key each.
fn push_jobs() -> String {
    let job = |id: &str, key: &str| {
        format!(
            "sync: {id}\n\tstore local1\n\tremote other\n\tremote-store r-{id}\n\tsync-direction push\n\tactive-encryption-key {key}\n"
        )
    };
    format!(
        "{SYNC_JOBS}\n{}\n{}\n{}\n{}",
        job("push-a", "push-key"),
        job("push-a2", "push-key"),
        job("push-b", "push-key-b"),
        job("push-c", "push-key-c")
    )
}

/// Hooks whose switch of the jobs fails: the rotation stops with the new
/// key stored, its journal left for a resume or an abort.
struct SwitchFails;

impl RotateHooks for SwitchFails {
    fn check(&mut self, _: &[SyncJobConfig], _: &str, _: bool) -> Result<(), Error> {
        Ok(())
    }

    fn switch_job(&mut self, _: &mut JobsEdit, job: &str, _: &str) -> Result<(), Error> {
        bail!("switching job '{job}' failed (test)")
    }

    fn export(&mut self, _: &ExportPlan, _: &CryptKey) -> Result<String, Error> {
        bail!("no export")
    }
}

fn job_row(job: &str) -> String {
    format!("#jobs-table tr[data-job=\"{job}\"]")
}

fn journal(job: &str) -> String {
    format!(".journal[data-jobs=\"{job}\"]")
}

/// The job `id` of `sync.cfg` as the store reads it.
fn sync_job(env: &Env, id: &str) -> SyncJobConfig {
    env.dir()
        .sync_jobs()
        .list_jobs()
        .unwrap()
        .into_iter()
        .find(|job| job.id == id)
        .unwrap()
}

async fn step_states(browser: &Browser) -> Vec<(String, String)> {
    serde_json::from_value(
        browser
            .js(
                "return Array.from(document.querySelectorAll('dialog.rotate .rotate-steps li')).map((li) => [li.dataset.step, li.dataset.state]);",
                vec![],
            )
            .await,
    )
    .unwrap()
}

/// Rotate two push jobs sharing a key, with export and archive; resume a
/// rotation stopped after its new key was stored; abort another.
pub async fn rotate_resume_and_abort(env: Arc<Env>, browser: Arc<Browser>) {
    let dir = env.dir();
    let keys = dir.encryption_keys();
    stop_two_rotations_after_their_new_keys(&env, &dir, &keys);

    browser.open().await;
    browser.login(ALICE.0, ALICE.1).await;
    the_jobs_and_what_may_rotate(&browser).await;
    plan_the_rotation_of_a_shared_key(&browser).await;
    the_rotation_done_and_exported(&env, &browser, &keys).await;
    resume_the_stopped_rotation(&env, &browser).await;
    abort_the_other_stopped_rotation(&env, &browser, &dir, &keys).await;
    write_sync_cfg(env.config_path(), SYNC_JOBS);
}

/// The push jobs' keys stored; the rotations of push-b and push-c stop
/// (their switch fails) with their new keys stored.
fn stop_two_rotations_after_their_new_keys(env: &Env, dir: &ConfigDir, keys: &EncryptionKeys<'_>) {
    for (id, seed) in [("push-key", 950), ("push-key-b", 951), ("push-key-c", 952)] {
        keys.store_key(id, &key_config(seed)).unwrap();
    }
    write_sync_cfg(env.config_path(), &push_jobs());
    for (job, new_key) in [("push-b", "push-key-b-new"), ("push-c", "push-key-c-new")] {
        let request = RotateRequest {
            jobs: vec![job.to_string()],
            new_key: Some(new_key.to_string()),
            export: None,
            archive_old: false,
            now: proxmox_time::epoch_i64(),
        };
        let stopped = dir.rotations().rotate(&request, &mut SwitchFails);
        assert!(stopped.is_err(), "{job}: {stopped:?}");
        assert!(keys.entry(new_key).is_ok(), "{new_key} stored");
    }
}

/// The rotation view: the journals and the jobs; a pull job and a job
/// with a stopped rotation cannot rotate, push-a can.
async fn the_jobs_and_what_may_rotate(browser: &Browser) {
    browser.click("#nav a[href=\"#rotate\"]").await;
    browser.find(&journal("push-c")).await;
    browser.find(&job_row("push-a2")).await;
    assert_eq!(
        disabled_and_title(browser, &format!("{} .rotate-key", job_row("nightly"))).await,
        json!([
            true,
            "Only push jobs encrypt what they send: this job pulls"
        ])
    );
    assert_eq!(
        disabled_and_title(browser, &format!("{} .rotate-key", job_row("push-b"))).await[0],
        json!(true)
    );
    assert_eq!(
        disabled_and_title(browser, &format!("{} .rotate-key", job_row("push-a"))).await,
        json!([false, ""])
    );
    browser.screenshot("rotation-view").await;
}

/// Rotate push-a: push-a2 shares its key and goes along; the plan shows
/// every step.
async fn plan_the_rotation_of_a_shared_key(browser: &Browser) {
    browser
        .click(&format!("{} .rotate-key", job_row("push-a")))
        .await;
    browser.find("dialog.rotate[open]").await;
    let jobs = browser
        .js(
            "return Array.from(document.querySelectorAll('dialog.rotate input[name=job]')).map((b) => [b.value, b.checked]);",
            vec![],
        )
        .await;
    assert_eq!(jobs, json!([["push-a", true], ["push-a2", true]]));
    browser
        .type_into("dialog.rotate input[name=new-id]", "push-key-2")
        .await;
    browser.click("dialog.rotate input[name=archive-old]").await;
    browser
        .type_into("dialog.rotate input[name=passphrase]", PASSPHRASE)
        .await;
    browser
        .type_into("dialog.rotate input[name=passphrase-repeat]", PASSPHRASE)
        .await;
    let planned: Vec<String> = step_states(browser)
        .await
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(
        planned,
        [
            "planned",
            "key-stored",
            "export-proven",
            "jobs-switched",
            "old-key-archived",
            "finished"
        ]
    );
    browser.screenshot("rotate-plan").await;
}

/// Every step done: both jobs on push-key-2 (keeping the old key), the
/// old key archived, the export of the new key downloaded.
async fn the_rotation_done_and_exported(env: &Env, browser: &Browser, keys: &EncryptionKeys<'_>) {
    browser.click("dialog.rotate button[type=submit]").await;
    let done = browser
        .wait_text("dialog.rotate .rotate-result", "Rotated")
        .await;
    assert!(done.contains("push-key-2"), "{done}");
    assert!(
        step_states(browser)
            .await
            .iter()
            .all(|(_, state)| state == "done"),
        "{:?}",
        step_states(browser).await
    );
    browser.screenshot("rotate-done").await;
    let new_fingerprint = keys.entry("push-key-2").unwrap().info.fingerprint;
    for job in ["push-a", "push-a2"] {
        let config = sync_job(env, job);
        assert_eq!(
            config.active_encryption_key.as_deref(),
            Some("push-key-2"),
            "{job}"
        );
        assert!(
            config
                .associated_key
                .unwrap_or_default()
                .contains(&"push-key".to_string()),
            "{job} keeps the old key"
        );
    }
    assert!(
        keys.entry("push-key").unwrap().archived_at.is_some(),
        "old key archived"
    );
    let bundle = browser.downloaded("push-key-2.pbsx").await;
    let opened = open_bundle(&bundle, &BundleSecret::Passphrase(PASSPHRASE.as_bytes()))
        .expect("the rotation's export opens");
    assert_eq!(opened.entries().len(), 1);
    assert_eq!(opened.entries()[0].config().id, "push-key-2");
    assert_eq!(
        Some(
            opened.entries()[0]
                .key_config()
                .decrypt(&|| panic!())
                .unwrap()
                .2
        ),
        new_fingerprint
    );
    browser
        .click("dialog.rotate .dialog-actions button.secondary")
        .await;
}

/// Resume push-b: its plan as the journal has it, two steps done; then
/// the job is on its new key.
async fn resume_the_stopped_rotation(env: &Env, browser: &Browser) {
    browser
        .click(&format!("{} .resume-rotation", journal("push-b")))
        .await;
    browser.find("dialog.rotate[open]").await;
    assert_eq!(
        step_states(browser).await,
        [
            ("planned".to_string(), "done".to_string()),
            ("key-stored".to_string(), "done".to_string()),
            ("jobs-switched".to_string(), "pending".to_string()),
            ("finished".to_string(), "pending".to_string()),
        ]
    );
    browser.screenshot("resume-dialog").await;
    browser.click("dialog.rotate button[type=submit]").await;
    browser
        .wait_text("dialog.rotate .rotate-result", "Rotated")
        .await;
    assert_eq!(
        sync_job(env, "push-b").active_encryption_key.as_deref(),
        Some("push-key-b-new")
    );
    browser
        .click("dialog.rotate .dialog-actions button.secondary")
        .await;
}

/// Abort push-c: the new key goes into the trash (the trash view gives
/// the reason), the job keeps its key, no journal is left.
async fn abort_the_other_stopped_rotation(
    env: &Env,
    browser: &Browser,
    dir: &ConfigDir,
    keys: &EncryptionKeys<'_>,
) {
    browser
        .click(&format!("{} .abort-rotation", journal("push-c")))
        .await;
    browser
        .type_into("dialog.confirm input", "push-key-c-new")
        .await;
    browser.screenshot("abort-confirm").await;
    browser.click("dialog.confirm button[type=submit]").await;
    browser.wait_text(".list-status", "aborted").await;
    browser
        .wait_for("the journals to go", "!document.querySelector('.journal')")
        .await;
    assert!(keys.entry("push-key-c-new").is_err());
    assert!(
        keys.trash()
            .list()
            .unwrap()
            .entries
            .iter()
            .any(|e| e.record.id == "push-key-c-new"),
        "the new key is in the trash"
    );
    assert_eq!(
        sync_job(env, "push-c").active_encryption_key.as_deref(),
        Some("push-key-c")
    );
    assert!(dir.rotations().list().unwrap().is_empty());
    browser.screenshot("rotation-after").await;
    browser.click("#nav a[href=\"#trash\"]").await;
    let reason_cell = format!(
        "{} td[data-label=Reason]",
        crate::trash::trash_view_row("push-key-c-new")
    );
    browser.find(&reason_cell).await;
    assert_eq!(
        browser.text(&reason_cell).await,
        "new key of an aborted rotation"
    );
}
