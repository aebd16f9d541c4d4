//! The key management page in a real browser: headless Chromium, driven
//! through chromedriver (WebDriver, the `fantoccini` client), against a
//! `proxmox-backup-api` on 127.0.0.1 with a temporary config dir.
//!
//! `make test-ui` runs it (`cargo test --workspace --test ui`; not part of a plain
//! `cargo test`, which has no browser). Each scenario gets its own browser
//! session (a fresh profile, cookies and download dir); they share one
//! daemon and one chromedriver. Every view a scenario reaches is saved as
//! a screenshot in `target/ui-screenshots/` for review; a failing scenario
//! also saves the page as it was. Arguments filter scenarios by name, as
//! `cargo test --workspace --test ui NAME` passes them.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use pbs_config::ConfigDir;
use pbs_test_kit::access::{add_user, grant};
use pbs_test_kit::{ApiDaemon, Sandbox, key_config};

mod audit;
mod browser;
mod bundles;
mod keys;
mod layout;
mod page;
mod paperkey;
mod permissions;
mod rotate;
mod trash;
#[path = "../verified_copy.rs"]
mod verified_copy;

use browser::{Browser, Chromedriver};

/// Users of the test config dir: (user id, password, what they may do).
pub const ALICE: (&str, &str) = ("alice@pbs", "alice's long password 1");
/// Audit on the keys only.
pub const BOB: (&str, &str) = ("bob@pbs", "bob's long password 2");
/// Audit on the keys, and Admin on the key `carol-key`.
pub const CAROL: (&str, &str) = ("carol@pbs", "carol's long password 3");

/// What every scenario shares.
pub struct Env {
    sandbox: Sandbox,
    /// The daemon.
    pub daemon: ApiDaemon,
    /// The page: `https://127.0.0.1:PORT/`.
    pub base: String,
    driver: Chromedriver,
    shots: PathBuf,
}

impl Env {
    /// The config dir, as the library opens it.
    pub fn dir(&self) -> ConfigDir {
        ConfigDir::new(self.sandbox.config_dir()).unwrap()
    }

    /// The config dir's path.
    pub fn config_path(&self) -> &Path {
        self.sandbox.config_dir()
    }
}

/// A scenario: what it does with its own browser session.
type Scenario = fn(Arc<Env>, Arc<Browser>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

macro_rules! scenario {
    ($module:ident :: $name:ident) => {
        (
            concat!(stringify!($module), "::", stringify!($name)),
            (|env, browser| Box::pin($module::$name(env, browser))) as Scenario,
        )
    };
}

const SCENARIOS: &[(&str, Scenario)] = &[
    scenario!(page::headers_and_content_security_policy),
    scenario!(page::wrong_password_shows_an_error),
    scenario!(page::session_expiry_and_logout_show_their_message),
    scenario!(keys::create_save_archive_unarchive_remove),
    scenario!(keys::upload_refusals_and_stale_views_show_the_api_words),
    scenario!(keys::sync_jobs_show_and_block_what_the_server_refuses),
    scenario!(trash::remove_see_in_trash_restore_and_purge),
    scenario!(bundles::export_drill_and_restore),
    scenario!(bundles::restore_protected_keys_new_to_the_store),
    scenario!(paperkey::print_paperkey_and_add_by_paperkey_text),
    scenario!(audit::audit_view_filters_and_shows_a_broken_chain),
    scenario!(rotate::rotate_resume_and_abort),
    scenario!(permissions::audit_only_user_sees_no_enabled_write_control),
    scenario!(permissions::per_key_privileges_enable_that_key_only),
    scenario!(layout::phone_and_desktop_layouts_fit),
    scenario!(layout::keyboard_reaches_and_labels_every_control),
];

/// The test config dir: the users above, three keys (one archived), two
/// sync jobs.
fn setup() -> Sandbox {
    let sandbox = Sandbox::new();
    let dir = ConfigDir::new(sandbox.config_dir()).unwrap();
    for (user, password) in [ALICE, BOB, CAROL] {
        add_user(&dir, user, Some(password), |_| {});
    }
    grant(&dir, "/", ALICE.0, "Admin", true);
    grant(&dir, "/system/encryption-keys", BOB.0, "Audit", true);
    grant(&dir, "/system/encryption-keys", CAROL.0, "Audit", true);
    grant(
        &dir,
        "/system/encryption-keys/carol-key",
        CAROL.0,
        "Admin",
        true,
    );
    let keys = dir.encryption_keys();
    keys.store_key("carol-key", &key_config(901)).unwrap();
    keys.store_key("old-offsite", &key_config(902)).unwrap();
    keys.archive_key("old-offsite", None).unwrap();
    keys.store_key("job-key", &key_config(903)).unwrap();
    write_sync_cfg(sandbox.config_dir(), SYNC_JOBS);
    sandbox
}

/// The sync jobs of the test config dir: `job-key` is `nightly`'s active
/// key, `old-offsite` an associated key of `nightly` and `weekly`.
pub const SYNC_JOBS: &str = "sync: nightly\n\tstore local1\n\tremote other\n\tremote-store remote1\n\
     \tactive-encryption-key job-key\n\tassociated-key old-offsite\n\n\
     sync: weekly\n\tstore local1\n\tremote other\n\tremote-store remote2\n\
     \tassociated-key old-offsite\n";

/// Replaces `sync.cfg` of `config_dir` at once (a new file renamed over
/// the old), as another administrator's change would.
pub fn write_sync_cfg(config_dir: &Path, text: &str) {
    let path = config_dir.join("sync.cfg");
    let temp = config_dir.join(".sync.cfg.ui-test");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, &path).unwrap();
}

/// `target/ui-screenshots`, emptied.
fn screenshot_dir() -> PathBuf {
    let target = pbs_test_kit::bins::bin_dir()
        .parent()
        .expect("target dir")
        .to_path_buf();
    let dir = target.join("ui-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn main() -> ExitCode {
    let selected = selected_scenarios();
    println!("\nrunning {} ui scenarios", selected.len());
    if selected.is_empty() {
        return ExitCode::SUCCESS;
    }

    let started = Instant::now();
    let env = start_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut failed = Vec::new();
    for (name, scenario) in selected {
        if !run_scenario(&runtime, &env, name, *scenario) {
            failed.push(*name);
        }
    }
    println!(
        "\nscreenshots: {}\nui test result: {}. {} failed; finished in {:.1} s",
        env.shots.display(),
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("daemon log:\n{}", env.daemon.log_text());
        println!("failed: {failed:?}");
        ExitCode::FAILURE
    }
}

/// The scenarios whose names contain one of the command line's filters
/// (options skipped), all without a filter.
fn selected_scenarios() -> Vec<&'static (&'static str, Scenario)> {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    SCENARIOS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect()
}

/// The sandbox, its daemon, chromedriver and the emptied screenshot
/// folder that every scenario shares.
fn start_env() -> Arc<Env> {
    let sandbox = setup();
    let daemon = ApiDaemon::start(sandbox.config_dir(), &[], sandbox.file("daemon.log"));
    let driver = Chromedriver::start(&sandbox.file("chromedriver.log"));
    let shots = screenshot_dir();
    Arc::new(Env {
        base: format!("https://127.0.0.1:{}/", daemon.port),
        daemon,
        sandbox,
        driver,
        shots,
    })
}

/// Runs scenario `name` in a browser of its own (screenshots prefixed by
/// its name, a "FAILED" one when it panics); prints its result line and
/// its panic message; true when it passed.
fn run_scenario(
    runtime: &tokio::runtime::Runtime,
    env: &Arc<Env>,
    name: &str,
    scenario: Scenario,
) -> bool {
    let start = Instant::now();
    let prefix = name.rsplit("::").next().unwrap().replace('_', "-");
    let env_for_run = Arc::clone(env);
    let outcome = runtime.block_on(async {
        let browser = Arc::new(
            Browser::start(
                &env_for_run.driver,
                &env_for_run.base,
                &env_for_run.shots,
                &prefix,
            )
            .await,
        );
        let run = tokio::spawn(scenario(Arc::clone(&env_for_run), Arc::clone(&browser)));
        let outcome = run.await;
        if outcome.is_err() {
            browser.screenshot("FAILED").await;
        }
        browser.close().await;
        outcome
    });
    match outcome {
        Ok(()) => {
            println!(
                "test {name} ... ok ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
            true
        }
        Err(err) => {
            println!(
                "test {name} ... FAILED ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
            if let Ok(panic) = err.try_into_panic() {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                println!("    {message}");
            }
            false
        }
    }
}
