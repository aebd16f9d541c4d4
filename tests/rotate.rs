//! `encryption-key rotate` (issue 18, deliverable 2) through the command
//! line and through the HTTPS API: a rotation end to end, run again, with
//! the old key kept while another job encrypts with it; the refusals with
//! their words; `--status` and `--abort` of a rotation a crash stopped
//! (made by a command killed at a crash point: test builds compile them
//! in); each step's record in the audit log.
//!
//! As in `sync_jobs.rs`, a scenario is written once against [`Surface`]
//! and run by [`both`] on a fresh store each.

use std::path::Path;

use serde_json::Value;

use pbs_config::ConfigDir;
use pbs_config::audit::{AuditLog, Filter, Phase, Record, VerifyOptions};
use pbs_config::trash::TrashReason;
use pbs_test_kit::access::{add_token, add_user, grant, masked_token};
use pbs_test_kit::https::{Client, form_body, urlencode};
use pbs_test_kit::manager::sync_job_args;
use pbs_test_kit::{ApiDaemon, Manager, TestDir, key_config};

/// A store with the keys `key0` (of `job1`, `job2`, `job3`) and `key1` (of
/// `job4`), the push job `job5` without a key, the pull job `pull1`, and
/// the token `root@pam!admin` (Admin on `/`).
fn store() -> (TestDir, String) {
    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("key0", &key_config(60)).unwrap();
    keys.store_key("key1", &key_config(61)).unwrap();
    let manager = Manager::new(dir.path());
    let job = |id: &str, extra: &[&str]| {
        let run = manager.run(&sync_job_args(id, "pbs2", "store2", extra));
        assert_eq!(run.code, 0, "{run:?}");
    };
    let push = ["--sync-direction", "push", "--active-encryption-key"];
    for id in ["job1", "job2", "job3"] {
        job(id, &[push[0], push[1], push[2], "key0"]);
    }
    job("job4", &[push[0], push[1], push[2], "key1"]);
    job("job5", &["--sync-direction", "push"]);
    job("pull1", &[]);
    let secret = add_token(&dir.config, "root@pam!admin", None);
    grant(&dir.config, "/", "root@pam!admin", "Admin", true);
    (dir, secret)
}

/// Where a scenario sends its requests. Errors are the text a user reads.
trait Surface {
    /// The config dir.
    fn config(&self) -> &ConfigDir;
    /// Rotates `jobs` (with `--new-id`, `--archive-old` if given): the
    /// answer (JSON), or the error.
    fn rotate(
        &mut self,
        jobs: &[&str],
        new_id: Option<&str>,
        archive: bool,
    ) -> Result<Value, String>;
    /// The rotations in progress of `job` (journals).
    fn status(&mut self, job: &str) -> Vec<Value>;
    /// Aborts the rotation of `job`.
    fn abort(&mut self, job: &str) -> Result<Value, String>;
    /// Which surface this is, and what it is to the audit log.
    fn name(&self) -> &'static str;
}

/// The command line, as the administrator.
struct CliSurface {
    dir: TestDir,
    manager: Manager,
}

impl CliSurface {
    fn new() -> Self {
        let (dir, _) = store();
        let manager = Manager::new(dir.path());
        Self { dir, manager }
    }

    fn run(&self, args: &[&str]) -> Result<Value, String> {
        let args = [&["encryption-key", "rotate"][..], args].concat();
        let out = self.manager.json_or_error(&args)?;
        Ok(serde_json::from_str(&out).unwrap())
    }
}

impl Surface for CliSurface {
    fn config(&self) -> &ConfigDir {
        &self.dir.config
    }

    fn rotate(
        &mut self,
        jobs: &[&str],
        new_id: Option<&str>,
        archive: bool,
    ) -> Result<Value, String> {
        let mut args = Vec::new();
        for job in jobs {
            args.extend(["--job", job]);
        }
        if let Some(id) = new_id {
            args.extend(["--new-id", id]);
        }
        if archive {
            args.push("--archive-old");
        }
        self.run(&args)
    }

    fn status(&mut self, job: &str) -> Vec<Value> {
        let answer = self.run(&["--job", job, "--status"]).unwrap();
        answer.as_array().unwrap().clone()
    }

    fn abort(&mut self, job: &str) -> Result<Value, String> {
        // one answer per --job: the first
        self.run(&["--job", job, "--abort"])
            .map(|answer| answer[0].clone())
    }

    fn name(&self) -> &'static str {
        "cli"
    }
}

/// The HTTPS API, with a token of `root@pam`.
struct ApiSurface {
    // declared first: killed before its config dir is removed
    _daemon: ApiDaemon,
    client: Client,
    dir: TestDir,
}

impl ApiSurface {
    fn new() -> Self {
        let (dir, secret) = store();
        let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
        let client = Client::token(daemon.port, "root@pam!admin", &secret);
        Self {
            _daemon: daemon,
            client,
            dir,
        }
    }

    /// `method path` with a form of `params`: the data, or the error body
    /// (a refusal must be 400, a missing rotation 404).
    fn call(&mut self, method: &str, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let form: Vec<String> = params
            .iter()
            .map(|(name, value)| format!("{name}={}", urlencode(value)))
            .collect();
        let form = form.join("&");
        let body = (!form.is_empty()).then(|| form_body(&form));
        let answer = self.client.send(method, path, &[], body);
        match answer.status {
            200 => Ok(answer.json()["data"].clone()),
            400 => Err(answer.body),
            404 => Err(format!("404 {}", answer.body)),
            status => panic!("{method} {path}: {status} {}", answer.body),
        }
    }
}

impl Surface for ApiSurface {
    fn config(&self) -> &ConfigDir {
        &self.dir.config
    }

    fn rotate(
        &mut self,
        jobs: &[&str],
        new_id: Option<&str>,
        archive: bool,
    ) -> Result<Value, String> {
        let mut params: Vec<(&str, &str)> = jobs.iter().map(|job| ("job", *job)).collect();
        if let Some(id) = new_id {
            params.push(("new-id", id));
        }
        if archive {
            params.push(("archive-old", "1"));
        }
        self.call("POST", "config/encryption-key-rotate", &params)
    }

    fn status(&mut self, job: &str) -> Vec<Value> {
        let answer = self
            .call(
                "GET",
                &format!("config/encryption-key-rotate?job={job}"),
                &[],
            )
            .unwrap();
        answer.as_array().unwrap().clone()
    }

    fn abort(&mut self, job: &str) -> Result<Value, String> {
        self.call(
            "POST",
            "config/encryption-key-rotate/abort",
            &[("job", job)],
        )
    }

    fn name(&self) -> &'static str {
        "api"
    }
}

/// Runs `scenario` through the command line, then through the API, each on
/// a fresh store.
fn both(scenario: impl Fn(&mut dyn Surface)) {
    scenario(&mut CliSurface::new());
    scenario(&mut ApiSurface::new());
}

/// `(active key, associated keys)` of `job`.
fn job(config: &ConfigDir, id: &str) -> (Option<String>, Vec<String>) {
    let jobs = config.sync_jobs().list_jobs().unwrap();
    let job = jobs.into_iter().find(|j| j.id == id).unwrap();
    (
        job.active_encryption_key,
        job.associated_key.unwrap_or_default(),
    )
}

/// The keys: `(id, archived)`, by id.
fn keys(config: &ConfigDir) -> Vec<(String, bool)> {
    let (list, _) = config.encryption_keys().list_keys(true).unwrap();
    let mut keys: Vec<_> = list
        .into_iter()
        .map(|key| (key.id.clone(), key.archived_at.is_some()))
        .collect();
    keys.sort();
    keys
}

fn on(key: &str, associated: &[&str]) -> (Option<String>, Vec<String>) {
    (
        Some(key.to_string()),
        associated.iter().map(|k| k.to_string()).collect(),
    )
}

/// `verify` and `audit verify` are clean.
fn assert_verified(config: &ConfigDir, context: &str) {
    let report = config.verify(false).unwrap();
    assert!(report.is_clean(), "{context}: {:#?}", report.findings);
    let log = AuditLog::open_store(config).unwrap().syslog_socket(None);
    let audit = log.verify(&VerifyOptions::default()).unwrap();
    assert!(audit.is_clean(), "{context}: {audit:#?}");
}

/// The rotate records of the log: `(op, phase, job, result)`.
fn rotate_records(config: &ConfigDir) -> Vec<(String, Phase, Option<String>, Option<String>)> {
    let log = AuditLog::open_store(config).unwrap().syslog_socket(None);
    log.list(&Filter::default())
        .unwrap()
        .into_iter()
        .filter(|record| record.op.starts_with("rotate"))
        .map(|record| (record.op, record.phase, record.job, record.result))
        .collect()
}

/// The records of the log after the first `seq` ones.
fn records_since(config: &ConfigDir, seq: u64) -> Vec<Record> {
    let log = AuditLog::open_store(config).unwrap().syslog_socket(None);
    let mut records = log.list(&Filter::default()).unwrap();
    records.retain(|record| record.seq > seq);
    records
}

/// Runs the rotation of `jobs` to `key-new` on the command line, killed at
/// crash point `point`: a rotation in progress for the scenarios.
fn killed_rotation(dir: &Path, jobs: &[&str], point: &str) {
    let mut args = vec!["encryption-key", "rotate", "--new-id", "key-new"];
    for job in jobs {
        args.extend(["--job", job]);
    }
    let output = Manager::new(dir)
        .command(&args)
        .env("PBS_FAILPOINT", point)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("failpoint {point} reached")),
        "{point}: {stderr}"
    );
}

// ---------------------------------------------------------------------------
// the scenarios

/// Two jobs of `key0` to a new key with --archive-old: the jobs on the
/// new key with `key0` associated; `key0` archived only once no job
/// encrypts with it (job3 still does the first time); the delete of `key0`
/// refused naming the jobs; the same request again does nothing; each step
/// leaves its intent and outcome in the log; verify and audit verify
/// clean.
#[test]
fn rotation_end_to_end_and_again() {
    both(|s| {
        let name = s.name();
        let start = records_since(s.config(), 0).len() as u64;
        let answer = s.rotate(&["job1", "job2"], Some("key-new"), true).unwrap();
        assert_eq!(answer["outcome"], "done", "{name}: {answer}");
        let journal = &answer["journal"];
        assert_eq!(journal["jobs"], serde_json::json!(["job1", "job2"]));
        assert_eq!(journal["step"], "old-key-archived", "{name}");
        // job3 encrypts with key0: it stays active, and the journal says why
        let kept = journal["old-key-kept"].as_str().unwrap_or_default();
        assert!(kept.contains("'job3'"), "{name}: {answer}");
        let config = ConfigDir::new(s.config().base()).unwrap();
        for id in ["job1", "job2"] {
            assert_eq!(job(&config, id), on("key-new", &["key0"]), "{name}: {id}");
        }
        assert_eq!(job(&config, "job3"), on("key0", &[]), "{name}");
        assert_eq!(
            keys(&config),
            [
                ("key-new".to_string(), false),
                ("key0".to_string(), false),
                ("key1".to_string(), false)
            ],
            "{name}"
        );

        // the same again: nothing done, no second key
        let again = s.rotate(&["job1", "job2"], Some("key-new"), true).unwrap();
        assert_eq!(again["outcome"], "already-done", "{name}: {again}");
        assert_eq!(keys(&config).len(), 3, "{name}");

        // job3 too, without a new id (the default: job3-YYYY-MM-DD); now
        // key0 is archived, needed by all three jobs, not deletable
        let third = s.rotate(&["job3"], None, true).unwrap();
        let new_id = third["journal"]["new-key"].as_str().unwrap().to_string();
        assert!(new_id.starts_with("job3-20"), "{name}: {third}");
        assert_eq!(third["journal"].get("old-key-kept"), None, "{name}");
        assert_eq!(job(&config, "job3"), on(&new_id, &["key0"]), "{name}");
        assert!(
            keys(&config).contains(&("key0".to_string(), true)),
            "{name}"
        );
        let delete = Manager::new(config.base()).run(&["encryption-key", "delete", "key0"]);
        assert_eq!(delete.code, 255, "{name}: {delete:?}");
        for id in ["'job1'", "'job2'", "'job3'"] {
            assert!(delete.stderr.contains(id), "{name}: {delete:?}");
        }
        assert!(s.status("job1").is_empty(), "{name}");
        assert_verified(&config, name);

        each_step_records_intent_and_outcome(&config, name, start, &new_id);
    });
}

/// Each step of a rotation records its intent, then its outcome (ok), and
/// between them the operations the steps are made of, which record
/// themselves (the new key's create, each job's key change, the archive);
/// all for who asked, from where; the second request recorded nothing.
fn each_step_records_intent_and_outcome(config: &ConfigDir, name: &str, start: u64, new_id: &str) {
    let (actor, origin) = match name {
        "cli" => ("root@pam", "cli"),
        _ => ("root@pam!admin", "api "),
    };
    let all = records_since(config, start);
    for record in &all {
        assert_eq!(record.actor, actor, "{name}: {record:?}");
        assert!(record.origin.starts_with(origin), "{name}: {record:?}");
    }
    let outcomes: Vec<(&str, String)> = all
        .iter()
        .filter(|r| r.phase == Phase::Outcome)
        .map(|r| {
            (
                r.op.as_str(),
                r.job.clone().unwrap_or_else(|| r.ids.join(",")),
            )
        })
        .collect();
    let step = |op: &'static str, what: &str| (op, what.to_string());
    let expected = [
        step("rotate-plan", "job1,job2"),
        step("create", "key-new"),
        step("rotate-store-key", "job1,job2"),
        step("sync-job-keys", "job1"),
        step("sync-job-keys", "job2"),
        step("rotate-switch-job", "job1"),
        step("rotate-switch-job", "job2"),
        // key0 kept active for job3: no archive
        step("rotate-archive-old-key", "job1,job2"),
        step("rotate-finish", "job1,job2"),
        step("rotate-plan", "job3"),
        step("create", new_id),
        step("rotate-store-key", "job3"),
        step("sync-job-keys", "job3"),
        step("rotate-switch-job", "job3"),
        step("archive", "key0"),
        step("rotate-archive-old-key", "job3"),
        step("rotate-finish", "job3"),
    ];
    assert_eq!(outcomes, expected, "{name}");
    assert!(
        all.iter()
            .filter(|r| r.phase == Phase::Outcome)
            .all(|r| r.result.as_deref() == Some("ok")),
        "{name}: {all:?}"
    );
    let intents = all.iter().filter(|r| r.phase == Phase::Intent).count();
    assert_eq!(intents, outcomes.len(), "{name}: {all:?}");
}

/// What is refused before anything is done, with its words; afterwards
/// the store and the jobs are as they were, and no rotation is in
/// progress.
#[test]
fn refusals_change_nothing() {
    both(|s| {
        let name = s.name();
        let config = ConfigDir::new(s.config().base()).unwrap();
        let sync_before = std::fs::read(config.path("sync.cfg")).unwrap();
        let keys_before = keys(&config);
        let refused = |result: Result<Value, String>, words: &[&str]| {
            let err = result.expect_err(&format!("{name}: expected a refusal: {words:?}"));
            for word in words {
                assert!(err.contains(word), "{name}: {err:?} lacks {word:?}");
            }
            err
        };
        refused(
            s.rotate(&["job1", "job4"], None, false),
            &[
                "the sync jobs do not encrypt with the same key",
                "'job1' with 'key0'",
                "'job4' with 'key1'",
            ],
        );
        refused(
            s.rotate(&["job5"], None, false),
            &["sync job 'job5' has no active encryption key - nothing to rotate"],
        );
        refused(
            s.rotate(&["pull1"], None, false),
            &["sync job 'pull1' has no active encryption key"],
        );
        refused(
            s.rotate(&["job1"], Some("key1"), false),
            &["encryption key 'key1' exists already - give the new key another id"],
        );
        let err = refused(
            s.rotate(&["nosuchjob"], None, false),
            &["no such sync job 'nosuchjob'"],
        );
        if name == "api" {
            assert!(err.starts_with("404 "), "{err}");
        }
        // the CLI's words: invalid --new-id; the API's: parameter 'new-id'
        refused(s.rotate(&["job1"], Some(".bad"), false), &["new-id"]);
        let err = refused(
            s.abort("job1"),
            &["no rotation of sync job 'job1' is in progress"],
        );
        if name == "api" {
            assert!(err.starts_with("404 "), "{err}");
        }
        assert_eq!(
            std::fs::read(config.path("sync.cfg")).unwrap(),
            sync_before,
            "{name}"
        );
        assert_eq!(keys(&config), keys_before, "{name}");
        assert!(s.status("job1").is_empty(), "{name}");
        assert_eq!(rotate_records(&config), [], "{name}");
        assert_verified(&config, name);
    });
}

/// A rotation a crash stopped after the new key was stored: `--status`
/// shows its journal; a request with another plan is refused naming the
/// command that resumes it; `--abort` (by any of its jobs) puts the new key
/// into the trash and leaves the jobs as they were.
#[test]
fn status_and_abort_of_a_stopped_rotation() {
    both(|s| {
        let name = s.name();
        let config = ConfigDir::new(s.config().base()).unwrap();
        killed_rotation(config.base(), &["job1", "job2"], "rotate:key-recorded");
        let status = s.status("job2");
        assert_eq!(status.len(), 1, "{name}: {status:?}");
        let journal = &status[0];
        assert_eq!(journal["step"], "key-stored", "{name}: {journal}");
        assert_eq!(journal["old-key"], "key0");
        assert_eq!(journal["new-key"], "key-new");
        let new_fingerprint = journal["new-fingerprint"].as_str().unwrap().to_string();

        let err = s
            .rotate(&["job1", "job2"], Some("key-other"), false)
            .unwrap_err();
        assert!(
            err.contains("is part of a rotation in progress that was planned otherwise")
                && err.contains("its new key is 'key-new'")
                && err.contains("--job job1 --job job2 --new-id key-new"),
            "{name}: {err}"
        );

        let aborted = s.abort("job2").unwrap();
        assert_eq!(aborted["journal"]["new-key"], "key-new", "{name}");
        assert!(aborted["trashed"].is_string(), "{name}: {aborted}");
        for id in ["job1", "job2"] {
            assert_eq!(job(&config, id), on("key0", &[]), "{name}: {id}");
        }
        assert!(!keys(&config).iter().any(|k| k.0 == "key-new"), "{name}");
        let trash = config.encryption_keys().trash().list().unwrap();
        let entries: Vec<_> = trash
            .entries
            .iter()
            .map(|e| {
                (
                    e.record.id.as_str(),
                    e.record.fingerprint.map(|f| f.signature()),
                    e.record.reason,
                )
            })
            .collect();
        assert_eq!(
            entries,
            [("key-new", Some(new_fingerprint), TrashReason::RotateAbort)],
            "{name}"
        );
        assert!(s.status("job1").is_empty(), "{name}");
        assert_verified(&config, name);
        let aborts: Vec<_> = rotate_records(&config)
            .into_iter()
            .filter(|r| r.0 == "rotate-abort")
            .map(|r| r.1)
            .collect();
        assert_eq!(aborts, [Phase::Intent, Phase::Outcome], "{name}");
    });
}

/// A rotation killed inside its store, after the new key's file was put in
/// place and before its config entry: the abort moves that file into the
/// trash (reason rotate-abort) and records the move as an operation of its
/// own, `rotate-abort-orphan`, intent and outcome, naming the new key and
/// its fingerprint between the abort's records.
#[test]
fn abort_trashes_a_killed_stores_key_file_and_records_it() {
    both(|s| {
        let name = s.name();
        let config = ConfigDir::new(s.config().base()).unwrap();
        killed_rotation(config.base(), &["job1"], "store:key-written");
        assert!(!keys(&config).iter().any(|k| k.0 == "key-new"), "{name}");
        let status = s.status("job1");
        let new_fingerprint = status[0]["new-fingerprint"].as_str().unwrap().to_string();
        let before = records_since(&config, 0).last().unwrap().seq;

        let aborted = s.abort("job1").unwrap();
        assert!(aborted["trashed"].is_string(), "{name}: {aborted}");
        let trash = config.encryption_keys().trash().list().unwrap();
        assert_eq!(trash.entries.len(), 1, "{name}");
        assert_eq!(trash.entries[0].record.reason, TrashReason::RotateAbort);

        let ops: Vec<(String, Phase, Option<String>)> = records_since(&config, before)
            .into_iter()
            .map(|r| (r.op, r.phase, r.result))
            .collect();
        let ok = Some("ok".to_string());
        let step = |op: &str, phase| (op.to_string(), phase, None);
        let done = |op: &str| (op.to_string(), Phase::Outcome, ok.clone());
        assert_eq!(
            ops,
            [
                step("rotate-abort", Phase::Intent),
                done("rotate-abort"),
                step("rotate-abort-orphan", Phase::Intent),
                done("rotate-abort-orphan"),
                step("rotate-finish", Phase::Intent),
                done("rotate-finish"),
            ],
            "{name}"
        );
        let orphan = records_since(&config, before)
            .into_iter()
            .find(|r| r.op == "rotate-abort-orphan")
            .unwrap();
        assert_eq!(orphan.ids, ["key-new"], "{name}");
        assert_eq!(orphan.fingerprints, [new_fingerprint], "{name}");
        assert_eq!(orphan.job.as_deref(), Some("job1"), "{name}");
    });
}

/// After the switch the abort is refused and says why; the same request
/// finishes the rotation, resumed where it stopped.
#[test]
fn abort_after_the_switch_is_refused_and_the_rotation_resumes() {
    both(|s| {
        let name = s.name();
        let config = ConfigDir::new(s.config().base()).unwrap();
        killed_rotation(config.base(), &["job1"], "rotate:switch-recorded");
        let err = s.abort("job1").unwrap_err();
        assert!(
            err.contains("sync job(s) 'job1' encrypt with the new key 'key-new' already")
                && err.contains("finish the rotation by running it again"),
            "{name}: {err}"
        );
        assert_eq!(job(&config, "job1"), on("key-new", &["key0"]), "{name}");
        let answer = s.rotate(&["job1"], None, false).unwrap();
        assert_eq!(answer["outcome"], "done", "{name}: {answer}");
        assert_eq!(answer["resumed-from"], "jobs-switched", "{name}: {answer}");
        assert!(s.status("job1").is_empty(), "{name}");
        assert_eq!(
            keys(&config),
            [
                ("key-new".to_string(), false),
                ("key0".to_string(), false),
                ("key1".to_string(), false)
            ],
            "{name}"
        );
        assert_verified(&config, name);
    });
}

/// A rotation run again after its end exports the new key again into the
/// answer: only for a caller who may rotate the jobs to that key. Before
/// stop 32 that answer skipped every check but Sys.Modify on the store, so
/// a token whose Admin on the store is masked on one key (`NoAccess`, or
/// granted without propagation) named a job on that key as the "new" key
/// and got the key in a bundle under a passphrase of its own choosing,
/// while the export of it was 403 (finding 29).
#[test]
fn a_finished_rotation_exports_only_what_the_caller_may_rotate_to() {
    let (dir, _) = store();
    let config = &dir.config;
    let masked = masked_token(config, "erin@pbs!masked", "/", "key0");
    let flat = add_token(config, "erin@pbs!flat", None);
    grant(config, "/", "erin@pbs!flat", "Admin", false);
    grant(config, "/remote", "erin@pbs!flat", "Admin", true);
    grant(config, "/datastore", "erin@pbs!flat", "Admin", true);
    grant(
        config,
        "/system/encryption-keys",
        "erin@pbs!flat",
        "Admin",
        false,
    );
    let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
    for (token, secret) in [("erin@pbs!masked", &masked), ("erin@pbs!flat", &flat)] {
        let mut client = Client::token(daemon.port, token, secret);
        let export = client.post_form(
            "config/encryption-key-export",
            "id=key0&passphrase=erin%27s+own+passphrase",
        );
        export.expect(403, "/system/encryption-keys/key0");
        let seq = records_since(config, 0)
            .last()
            .map_or(0, |record| record.seq);
        let rotate = client.post_form(
            "config/encryption-key-rotate",
            "job=job1&new-id=key0&passphrase=erin%27s+own+passphrase",
        );
        assert!(
            !rotate.body.contains("bundle"),
            "{token}: {} {}",
            rotate.status,
            rotate.body
        );
        rotate.expect(403, "/system/encryption-keys/key0");
        assert!(records_since(config, seq).is_empty(), "{token}");
    }
}

/// `archive-old` archives the old key: only for a caller who may archive
/// it (Sys.Modify on that key, as `POST /config/encryption-keys/{id}`
/// needs). Before stop 32 a token masked on the old key (`NoAccess`)
/// archived it through the rotation; rotating without archiving it stays
/// allowed, as upstream's `sync-job update` asks nothing of the key a job
/// leaves (finding 32).
#[test]
fn archiving_the_old_key_needs_the_privilege_to_archive_it() {
    let (dir, _) = store();
    let config = &dir.config;
    let secret = masked_token(config, "erin@pbs!masked", "/", "key0");
    let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
    let mut erin = Client::token(daemon.port, "erin@pbs!masked", &secret);
    erin.post_form("config/encryption-keys/key0", "")
        .expect(403, "/system/encryption-keys/key0");
    let before = pbs_test_kit::dirs::snapshot(dir.path(), &["daemon.log"]);
    erin.post_form(
        "config/encryption-key-rotate",
        "job=job1&job=job2&job=job3&new-id=key-new&archive-old=1",
    )
    .expect(403, "missing Sys.Modify on /system/encryption-keys/key0");
    assert_eq!(
        before,
        pbs_test_kit::dirs::snapshot(dir.path(), &["daemon.log"])
    );
    let answer = erin
        .post_form(
            "config/encryption-key-rotate",
            "job=job1&job=job2&job=job3&new-id=key-new",
        )
        .data();
    assert_eq!(answer["outcome"], "done", "{answer}");
    assert_eq!(job(config, "job1"), on("key-new", &["key0"]));
    assert!(keys(config).contains(&("key0".to_string(), false)));
}

/// A rotation and its abort answer with the journal, which names the old
/// key's fingerprint: a caller masked on the old key (Admin on `/`,
/// `NoAccess` on `/system/encryption-keys/key0`), who may rotate its jobs
/// away from it (upstream's rule for a job's key) and abort that rotation
/// (it may delete the new key), read key0's fingerprint there, which the
/// key list, the audit list and the list of rotations (finding 41) keep
/// from it. Security.md finding 47.
#[test]
fn a_rotation_answers_no_fingerprint_of_a_key_the_caller_may_not_see() {
    let (dir, _) = store();
    let config = &dir.config;
    let key0 = config.encryption_keys().entry("key0").unwrap();
    let key0 = key0.info.fingerprint.unwrap().signature();
    killed_rotation(dir.path(), &["job1", "job2"], "rotate:key-recorded");
    let secret = masked_token(config, "erin@pbs!masked", "/", "key0");
    let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
    let mut erin = Client::token(daemon.port, "erin@pbs!masked", &secret);
    let aborted = erin.post_form("config/encryption-key-rotate/abort", "job=job1");
    assert!(!aborted.body.contains(&key0[..23]), "{}", aborted.body);
    let aborted = aborted.data();
    assert_eq!(aborted["journal"]["new-key"], "key-new", "{aborted}");
    assert!(
        aborted["journal"]["new-fingerprint"].is_string(),
        "{aborted}"
    );

    let rotated = erin.post_form(
        "config/encryption-key-rotate",
        "job=job1&job=job2&job=job3&new-id=key-other",
    );
    assert!(!rotated.body.contains(&key0[..23]), "{}", rotated.body);
    let rotated = rotated.data();
    assert_eq!(rotated["outcome"], "done", "{rotated}");
    assert_eq!(rotated["journal"]["old-key"], "key0", "{rotated}");
    assert_eq!(job(config, "job1"), on("key-other", &["key0"]));
}

/// A rotation to a new id the caller may not change was refused for the
/// id's existence first (400 "exists already") and for the privilege only
/// then (403): a caller masked on `key1` told by the answer whether the
/// store has it. Security.md finding 48.
#[test]
fn a_masked_new_id_is_refused_whether_or_not_the_store_has_it() {
    let (dir, _) = store();
    let config = &dir.config;
    let secret = masked_token(config, "erin@pbs!masked", "/", "key1");
    for auth_id in ["erin@pbs", "erin@pbs!masked"] {
        let path = "/system/encryption-keys/nothing";
        grant(config, path, auth_id, "NoAccess", false);
    }
    let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
    let mut erin = Client::token(daemon.port, "erin@pbs!masked", &secret);
    let before = pbs_test_kit::dirs::snapshot(dir.path(), &["daemon.log"]);
    for id in ["key1", "nothing"] {
        erin.post_form(
            "config/encryption-key-rotate",
            &format!("job=job1&job=job2&job=job3&new-id={id}"),
        )
        .expect(
            403,
            &format!("missing Sys.Modify on /system/encryption-keys/{id}"),
        );
    }
    assert_eq!(
        before,
        pbs_test_kit::dirs::snapshot(dir.path(), &["daemon.log"])
    );
}

/// An abort moves the rotation's new key into the trash: only for a
/// caller who may delete that key (Sys.Modify on it, as `DELETE
/// /config/encryption-keys/{id}` needs). Before stop 33 a token masked on
/// the new key (`NoAccess`) aborted the rotation and so trashed the key
/// it could not delete (finding 36); since stop 36 it is refused without
/// the key's name (finding 57), and a token that sees the key without
/// Sys.Modify on it is refused for that; the owner of a token with the
/// privilege still can.
#[test]
fn aborting_a_rotation_needs_the_privilege_to_delete_its_new_key() {
    let (dir, admin) = store();
    let config = &dir.config;
    killed_rotation(dir.path(), &["job1", "job2"], "rotate:key-recorded");
    let secret = masked_token(config, "erin@pbs!masked", "/", "key-new");
    add_user(config, "frank@pbs", None, |_| {});
    let audit_secret = add_token(config, "frank@pbs!audit", None);
    for auth_id in ["frank@pbs", "frank@pbs!audit"] {
        grant(config, "/", auth_id, "Admin", true);
        grant(
            config,
            "/system/encryption-keys/key-new",
            auth_id,
            "Audit",
            false,
        );
    }
    let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
    let mut erin = Client::token(daemon.port, "erin@pbs!masked", &secret);
    let mut auditor = Client::token(daemon.port, "frank@pbs!audit", &audit_secret);
    erin.post_form("config/encryption-keys/key-new", "")
        .expect(403, "/system/encryption-keys/key-new");
    let before = pbs_test_kit::dirs::snapshot(dir.path(), &["daemon.log"]);
    erin.post_form("config/encryption-key-rotate/abort", "job=job1")
        .expect(403, "key rotation in progress this caller may not see");
    auditor
        .post_form("config/encryption-key-rotate/abort", "job=job1")
        .expect(403, "missing Sys.Modify on /system/encryption-keys/key-new");
    assert_eq!(
        before,
        pbs_test_kit::dirs::snapshot(dir.path(), &["daemon.log"])
    );
    assert!(keys(config).contains(&("key-new".to_string(), false)));

    let mut root = Client::token(daemon.port, "root@pam!admin", &admin);
    let aborted = root
        .post_form("config/encryption-key-rotate/abort", "job=job1")
        .data();
    assert!(aborted["trashed"].is_string(), "{aborted}");
    assert!(!keys(config).iter().any(|k| k.0 == "key-new"));
}

/// A rotation in progress names its old and new keys (ids, fingerprints):
/// `GET /config/encryption-key-rotate` showed them to a caller masked on
/// the old key (it may read the jobs: Admin on `/`, NoAccess on
/// `/system/encryption-keys/key0`). Security.md finding 41.
#[test]
fn a_rotation_in_progress_shows_no_key_the_caller_may_not_see() {
    let (dir, _) = store();
    let secret = masked_token(&dir.config, "erin@pbs!masked", "/", "key0");
    let key0 = dir.config.encryption_keys().entry("key0").unwrap();
    let key0_fp = key0.info.fingerprint.unwrap().signature();
    killed_rotation(dir.path(), &["job1", "job2"], "rotate:key-recorded");
    let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
    let mut erin = Client::token(daemon.port, "erin@pbs!masked", &secret);
    let status = erin.get("config/encryption-key-rotate").data().to_string();
    for hidden in ["key0", key0_fp.as_str()] {
        assert!(!status.contains(hidden), "{hidden} shown: {status}");
    }
}

/// A rotation in progress whose new key the caller may not see, or one of
/// whose jobs it may not read, is left out of the list of rotations
/// (finding 41), but a request on its jobs named it: a resume refused
/// for the new key (403 naming `/system/encryption-keys/key-new`), a
/// resume planned otherwise (400 "resume it as planned (... --new-id
/// key-new)", with every job and the export), an abort (403 naming
/// `key-new`); to a token with Sys.Modify on the store alone, which may
/// read no job, the plan of a rotation of `job1`. Now a rotation a caller
/// may not see refuses its requests naming nothing of it. Security.md
/// finding 57.
#[test]
fn a_request_on_a_rotation_the_caller_may_not_see_names_nothing_of_it() {
    let (dir, admin) = store();
    let config = &dir.config;
    killed_rotation(dir.path(), &["job1", "job2"], "rotate:key-recorded");
    let masked = masked_token(config, "erin@pbs!masked", "/", "key-new");
    let keys_only = add_token(config, "root@pam!keys", None);
    grant(
        config,
        "/system/encryption-keys",
        "root@pam!keys",
        "Admin",
        true,
    );
    let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
    let mut erin = Client::token(daemon.port, "erin@pbs!masked", &masked);
    let mut keys_token = Client::token(daemon.port, "root@pam!keys", &keys_only);
    assert_eq!(
        erin.get("config/encryption-key-rotate").data(),
        Value::Array(vec![])
    );

    let before = pbs_test_kit::dirs::snapshot(dir.path(), &["daemon.log"]);
    let requests = [
        ("config/encryption-key-rotate", "job=job1&job=job2"),
        (
            "config/encryption-key-rotate",
            "job=job1&job=job2&archive-old=1",
        ),
        ("config/encryption-key-rotate", "job=job1&archive-old=1"),
        ("config/encryption-key-rotate/abort", "job=job1"),
    ];
    for (client, name) in [
        (&mut erin, "masked on key-new"),
        (&mut keys_token, "no job"),
    ] {
        for (path, body) in requests {
            let answer = client.post_form(path, body);
            assert_eq!(answer.status, 403, "{name}, {path} {body}: {}", answer.body);
            for hidden in ["key-new", "job2"] {
                assert!(
                    !answer.body.contains(hidden),
                    "{name}, {path} {body}: {hidden} told: {}",
                    answer.body
                );
            }
        }
    }
    assert_eq!(
        before,
        pbs_test_kit::dirs::snapshot(dir.path(), &["daemon.log"])
    );

    // who may see it is told as before
    let mut root = Client::token(daemon.port, "root@pam!admin", &admin);
    root.post_form("config/encryption-key-rotate", "job=job1&archive-old=1")
        .expect(400, "--new-id key-new");
}

/// Without `new-id` a rotation's new key is `FIRSTJOB-YYYY-MM-DD`, an id
/// the caller can tell in advance: for a caller masked on it the rotation
/// answered 400 "exists already" if the store has it and 403 for the
/// privilege if not, as finding 48 did for a `new-id` given. Security.md
/// finding 58.
#[test]
fn a_masked_default_new_id_is_refused_whether_or_not_the_store_has_it() {
    let (dir, _) = store();
    let config = &dir.config;
    let secret = masked_token(config, "erin@pbs!masked", "/", "key-none");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // the default of the daemon's clock, a moment later: today's, or the
    // next day's past midnight
    for (job, stored) in [("job1", true), ("job4", false)] {
        let mut ids: Vec<String> = [now, now + 3600]
            .iter()
            .map(|&time| pbs_config::rotation::default_new_key(job, time))
            .collect();
        ids.dedup();
        for (seed, id) in ids.iter().enumerate() {
            if stored {
                let keys = config.encryption_keys();
                keys.store_key(id, &key_config(80 + seed as u64)).unwrap();
            }
            for auth_id in ["erin@pbs", "erin@pbs!masked"] {
                let path = format!("/system/encryption-keys/{id}");
                grant(config, &path, auth_id, "NoAccess", false);
            }
        }
    }
    let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
    let mut erin = Client::token(daemon.port, "erin@pbs!masked", &secret);
    let before = pbs_test_kit::dirs::snapshot(dir.path(), &["daemon.log"]);
    for jobs in ["job=job1&job=job2&job=job3", "job=job4"] {
        erin.post_form("config/encryption-key-rotate", jobs)
            .expect(403, "missing Sys.Modify on /system/encryption-keys/job");
    }
    assert_eq!(
        before,
        pbs_test_kit::dirs::snapshot(dir.path(), &["daemon.log"])
    );
}
