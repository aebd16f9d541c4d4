//! Sync jobs and their keys (issue 18): upstream's job rules, each run
//! through the command line and through the HTTPS API on its own config
//! dir, with their error texts; upstream's documented example replayed;
//! who needs a key in `encryption-key show` and `list`; who may read and
//! change a job.
//!
//! A scenario is written once against [`Surface`] and run by [`both`]: once
//! with `proxmox-backup-manager` (the administrator, `root@pam`), once with
//! `proxmox-backup-api` called with a `root@pam` token. The API answers a
//! refused rule with 400 and its words, the CLI prints them after "failed
//! to VERB sync job 'ID' - "; the scenarios check the words.

use serde_json::{Value, json};

use pbs_config::ConfigDir;
use pbs_test_kit::access::{add_token, add_user, grant};
use pbs_test_kit::https::{Client, form_body, urlencode};
use pbs_test_kit::{ApiDaemon, Manager, TestDir, key_config};

/// The keys every scenario starts with.
const KEYS: [&str; 4] = ["key0", "key1", "key2", "key3"];

/// A store with [`KEYS`], the users `alice@pbs` and `bob@pbs` (no
/// privileges), and the token `root@pam!admin` (Admin on `/`).
fn store() -> (TestDir, String) {
    let dir = TestDir::new();
    for (seed, id) in KEYS.iter().enumerate() {
        dir.config
            .encryption_keys()
            .store_key(id, &key_config(40 + seed as u64))
            .unwrap();
    }
    add_user(&dir.config, "alice@pbs", None, |_| {});
    add_user(&dir.config, "bob@pbs", None, |_| {});
    let secret = add_token(&dir.config, "root@pam!admin", None);
    grant(&dir.config, "/", "root@pam!admin", "Admin", true);
    (dir, secret)
}

/// Gives `auth_id` Sys.Modify (Admin) on key `key`.
fn allow_key(dir: &ConfigDir, auth_id: &str, key: &str) {
    grant(
        dir,
        &format!("/system/encryption-keys/{key}"),
        auth_id,
        "Admin",
        false,
    );
}

/// Where a scenario sends its requests. Errors are the text a user reads.
trait Surface {
    /// The config dir (for ACLs, and to compare files).
    fn config(&self) -> &ConfigDir;
    /// Creates a job from `(property, value)` pairs (`id` among them).
    fn create(&mut self, params: &[(&str, &str)]) -> Result<(), String>;
    /// Updates job `id`.
    fn update(&mut self, id: &str, params: &[(&str, &str)]) -> Result<(), String>;
    /// Removes job `id`.
    fn remove(&mut self, id: &str) -> Result<(), String>;
    /// Job `id` as shown.
    fn job(&mut self, id: &str) -> Value;
    /// Key `id` as shown (with its jobs).
    fn key(&mut self, id: &str) -> Value;
    /// The ids of `list --unused`.
    fn unused(&mut self) -> Vec<String>;
    /// Archives key `id`.
    fn archive(&mut self, id: &str) -> Result<(), String>;
    /// Deletes key `id`.
    fn delete_key(&mut self, id: &str) -> Result<(), String>;
    /// Which surface this is, for messages.
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

    fn run(&self, args: &[&str]) -> Result<String, String> {
        self.manager.json_or_error(args)
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self
            .run(args)
            .unwrap_or_else(|err| panic!("{args:?}: {err}"));
        serde_json::from_str(&out).unwrap()
    }

    fn options<'a>(params: &[(&'a str, &'a str)]) -> Vec<String> {
        params
            .iter()
            .filter(|(name, _)| *name != "id")
            .flat_map(|(name, value)| [format!("--{name}"), value.to_string()])
            .collect()
    }
}

impl Surface for CliSurface {
    fn config(&self) -> &ConfigDir {
        &self.dir.config
    }

    fn create(&mut self, params: &[(&str, &str)]) -> Result<(), String> {
        let id = params.iter().find(|(n, _)| *n == "id").unwrap().1;
        let options = Self::options(params);
        let mut args = vec!["sync-job", "create", id];
        args.extend(options.iter().map(String::as_str));
        self.run(&args).map(|_| ())
    }

    fn update(&mut self, id: &str, params: &[(&str, &str)]) -> Result<(), String> {
        let options = Self::options(params);
        let mut args = vec!["sync-job", "update", id];
        args.extend(options.iter().map(String::as_str));
        self.run(&args).map(|_| ())
    }

    fn remove(&mut self, id: &str) -> Result<(), String> {
        self.run(&["sync-job", "remove", id]).map(|_| ())
    }

    fn job(&mut self, id: &str) -> Value {
        self.json(&["sync-job", "show", id])
    }

    fn key(&mut self, id: &str) -> Value {
        self.json(&["encryption-key", "show", id])
    }

    fn unused(&mut self) -> Vec<String> {
        ids(&self.json(&["encryption-key", "list", "--unused"]))
    }

    fn archive(&mut self, id: &str) -> Result<(), String> {
        self.run(&["encryption-key", "archive", id]).map(|_| ())
    }

    fn delete_key(&mut self, id: &str) -> Result<(), String> {
        self.run(&["encryption-key", "delete", id]).map(|_| ())
    }

    fn name(&self) -> &'static str {
        "cli"
    }
}

/// The HTTPS API, with a token of `root@pam`.
struct ApiSurface {
    // declared first: killed before its config dir is removed
    daemon: ApiDaemon,
    client: Client,
    dir: TestDir,
}

impl ApiSurface {
    fn new() -> Self {
        let (dir, secret) = store();
        let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
        let client = Client::token(daemon.port, "root@pam!admin", &secret);
        Self {
            daemon,
            client,
            dir,
        }
    }

    /// `method path` with a form of `params`: the data, or the error body.
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
            400..=499 => Err(answer.body),
            status => panic!("{method} {path}: {status} {}", answer.body),
        }
    }
}

impl Surface for ApiSurface {
    fn config(&self) -> &ConfigDir {
        &self.dir.config
    }

    fn create(&mut self, params: &[(&str, &str)]) -> Result<(), String> {
        self.call("POST", "config/sync", params).map(|data| {
            assert_eq!(data, Value::Null, "create answers null, as upstream");
        })
    }

    fn update(&mut self, id: &str, params: &[(&str, &str)]) -> Result<(), String> {
        self.call("PUT", &format!("config/sync/{id}"), params)
            .map(|_| ())
    }

    fn remove(&mut self, id: &str) -> Result<(), String> {
        self.call("DELETE", &format!("config/sync/{id}"), &[])
            .map(|_| ())
    }

    fn job(&mut self, id: &str) -> Value {
        self.call("GET", &format!("config/sync/{id}"), &[]).unwrap()
    }

    fn key(&mut self, id: &str) -> Value {
        self.call("GET", &format!("config/encryption-keys/{id}"), &[])
            .unwrap()
    }

    fn unused(&mut self) -> Vec<String> {
        ids(&self
            .call("GET", "config/encryption-keys?unused=1", &[])
            .unwrap())
    }

    fn archive(&mut self, id: &str) -> Result<(), String> {
        self.call("POST", &format!("config/encryption-keys/{id}"), &[])
            .map(|_| ())
    }

    fn delete_key(&mut self, id: &str) -> Result<(), String> {
        self.call("DELETE", &format!("config/encryption-keys/{id}"), &[])
            .map(|_| ())
    }

    fn name(&self) -> &'static str {
        "api"
    }
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

/// Runs `scenario` through the command line, then through the API, each on
/// a fresh store.
fn both(scenario: impl Fn(&mut dyn Surface)) {
    let mut cli = CliSurface::new();
    scenario(&mut cli);
    cli_list_is_serde_jsons(&cli);
    scenario(&mut ApiSurface::new());
}

/// The CLI's JSON list (each key written from its config text, never
/// typed: `KeyList::write_json`) is byte for byte serde_json's of the
/// typed list, the jobs that name each key included, for every filter.
fn cli_list_is_serde_jsons(cli: &CliSurface) {
    use pbs_keystore::api2::config::encryption_keys::{ListFilter, list_keys_with_users};
    for (include_archived, unused, no_verified_copy, flag) in [
        (false, false, false, None),
        (true, false, false, Some("--include-archived")),
        (false, true, false, Some("--unused")),
        (false, false, true, Some("--no-verified-copy")),
    ] {
        let filter = ListFilter {
            include_archived,
            unused,
            no_verified_copy,
        };
        let (list, _) = list_keys_with_users(cli.config(), filter, |_| true).unwrap();
        let typed = serde_json::to_string(&list).unwrap();
        let mut direct = Vec::new();
        list.write_json(&mut direct).unwrap();
        assert_eq!(String::from_utf8(direct).unwrap(), typed);
        let args: Vec<&str> = ["encryption-key", "list"].into_iter().chain(flag).collect();
        assert_eq!(cli.run(&args).unwrap(), typed + "\n", "{args:?}");
    }
}

/// Asserts that `result` (of the surface named `name`) failed with a
/// message holding `words`; returns the message.
#[track_caller]
fn refused(name: &str, result: Result<(), String>, words: &str) -> String {
    let err = result.expect_err(&format!("{name}: expected a refusal: {words}"));
    assert!(err.contains(words), "{name}: {err:?} lacks {words:?}");
    err
}

/// The (pull) job `id` with `extra` properties.
fn pull_job<'a>(id: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![("id", id), ("store", "local"), ("remote-store", "store2")];
    params.push(("remote", "pbs2"));
    params.extend_from_slice(extra);
    params
}

/// The push job `id` with `extra` properties.
fn push_job<'a>(id: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut params = pull_job(id, &[("sync-direction", "push")]);
    params.extend_from_slice(extra);
    params
}

fn associated(job: &Value) -> Vec<String> {
    job["associated-key"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// the scenarios

/// docs/managing-remotes.rst: "since key0 is currently the active
/// encryption key, below command would assign key1 as the new active
/// encryption key and result in key0,key2,key3 as associated keys".
#[test]
fn upstreams_documented_example() {
    both(|s| {
        s.create(&push_job("pbs2-push", &[])).unwrap();
        s.update("pbs2-push", &[("active-encryption-key", "key0")])
            .unwrap();
        s.update(
            "pbs2-push",
            &[
                ("active-encryption-key", "key1"),
                ("associated-key", "key2"),
                ("associated-key", "key3"),
            ],
        )
        .unwrap();
        let job = s.job("pbs2-push");
        assert_eq!(job["active-encryption-key"], "key1", "{}", s.name());
        let mut keys = associated(&job);
        // upstream appends the previous key to the list given
        assert_eq!(keys, ["key2", "key3", "key0"], "{}", s.name());
        keys.sort();
        assert_eq!(keys, ["key0", "key2", "key3"]);
        let key0 = s.key("key0");
        assert_eq!(key0["associated-in"], json!(["pbs2-push"]), "{}", s.name());
        assert!(key0.get("active-in").is_none(), "{key0}");
        assert_eq!(s.key("key1")["active-in"], json!(["pbs2-push"]));
    });
}

/// Changing or clearing the active key keeps the previous one associated,
/// also when the same update replaces the list; delete comes first.
#[test]
fn a_replaced_or_cleared_active_key_stays_associated() {
    both(|s| {
        s.create(&push_job(
            "job1",
            &[
                ("active-encryption-key", "key0"),
                ("associated-key", "key1"),
            ],
        ))
        .unwrap();
        // cleared, with a new list: the list given plus the previous key
        s.update(
            "job1",
            &[
                ("delete", "active-encryption-key"),
                ("associated-key", "key2"),
            ],
        )
        .unwrap();
        let job = s.job("job1");
        assert!(job.get("active-encryption-key").is_none(), "{job}");
        assert_eq!(associated(&job), ["key2", "key0"], "{}", s.name());
        // a new active key, the list kept: the old one appended once
        s.update("job1", &[("active-encryption-key", "key1")])
            .unwrap();
        s.update("job1", &[("active-encryption-key", "key3")])
            .unwrap();
        let job = s.job("job1");
        assert_eq!(job["active-encryption-key"], "key3");
        assert_eq!(associated(&job), ["key2", "key0", "key1"], "{}", s.name());
        // deleting the list keeps only what the same update moves there
        s.update(
            "job1",
            &[
                ("delete", "associated-key"),
                ("delete", "active-encryption-key"),
            ],
        )
        .unwrap();
        assert_eq!(associated(&s.job("job1")), ["key3"], "{}", s.name());
        // setting the active key it already has moves nothing
        s.update("job1", &[("active-encryption-key", "key2")])
            .unwrap();
        s.update("job1", &[("active-encryption-key", "key2")])
            .unwrap();
        let job = s.job("job1");
        assert_eq!(associated(&job), ["key3"], "{}", s.name());
    });
}

/// `active-encryption-key` only on push jobs; no switch to pull while one
/// is set, unless it is cleared in the same update (then it is kept as an
/// associated key).
#[test]
fn an_active_key_only_on_push_jobs() {
    both(|s| {
        let before = s.config().sync_jobs().list_jobs().unwrap();
        refused(
            s.name(),
            s.create(&pull_job("pull1", &[("active-encryption-key", "key0")])),
            "'active-encryption-key' only applies to push sync jobs",
        );
        assert_eq!(s.config().sync_jobs().list_jobs().unwrap(), before);
        // a pull job may keep keys to decrypt
        s.create(&pull_job("pull1", &[("associated-key", "key0")]))
            .unwrap();
        refused(
            s.name(),
            s.update("pull1", &[("active-encryption-key", "key1")]),
            "'active-encryption-key' only applies to push sync jobs",
        );
        // ... unless it becomes a push job in the same update
        s.update(
            "pull1",
            &[
                ("sync-direction", "push"),
                ("active-encryption-key", "key1"),
            ],
        )
        .unwrap();
        let switch = "cannot switch to pull direction while 'active-encryption-key' is set; \
                      delete it in the same request or clear it first";
        refused(
            s.name(),
            s.update("pull1", &[("sync-direction", "pull")]),
            switch,
        );
        // back to the default direction (pull) by deleting it: the same
        refused(
            s.name(),
            s.update("pull1", &[("delete", "sync-direction")]),
            switch,
        );
        // a new active key and pull at once: the switch is refused first
        refused(
            s.name(),
            s.update(
                "pull1",
                &[
                    ("sync-direction", "pull"),
                    ("active-encryption-key", "key2"),
                ],
            ),
            switch,
        );
        assert_eq!(s.job("pull1")["active-encryption-key"], "key1");
        s.update(
            "pull1",
            &[
                ("sync-direction", "pull"),
                ("delete", "active-encryption-key"),
            ],
        )
        .unwrap();
        let job = s.job("pull1");
        assert_eq!(job["sync-direction"], "pull", "{job}");
        assert!(job.get("active-encryption-key").is_none(), "{job}");
        assert_eq!(associated(&job), ["key0", "key1"], "{}", s.name());
    });
}

/// An archived key may be associated, never active; the refusal is
/// upstream's, and the administrator is told why.
#[test]
fn an_archived_key_may_be_associated_never_active() {
    both(|s| {
        s.archive("key3").unwrap();
        let err = refused(
            s.name(),
            s.create(&push_job("job1", &[("active-encryption-key", "key3")])),
            "no such key or cannot access key 'key3'",
        );
        assert!(
            err.contains("encryption key 'key3' is archived"),
            "{}: {err}",
            s.name()
        );
        s.create(&push_job(
            "job1",
            &[
                ("active-encryption-key", "key0"),
                ("associated-key", "key3"),
            ],
        ))
        .unwrap();
        refused(
            s.name(),
            s.update("job1", &[("active-encryption-key", "key3")]),
            "no such key or cannot access key 'key3'",
        );
        assert_eq!(s.job("job1")["active-encryption-key"], "key0");
        // a key that does not exist reads the same
        refused(
            s.name(),
            s.update("job1", &[("associated-key", "no-such-key")]),
            "no such key or cannot access key 'no-such-key'",
        );
    });
}

/// The owner must be able to use every key the job names: checked on
/// create, on key changes and on owner changes.
#[test]
fn the_owner_must_be_able_to_use_every_key() {
    both(|s| {
        let dir = ConfigDir::new(s.config().base()).unwrap();
        let denied = |key: &str| format!("no such key or cannot access key '{key}'");
        let err = refused(
            s.name(),
            s.create(&push_job(
                "job1",
                &[("owner", "alice@pbs"), ("active-encryption-key", "key0")],
            )),
            &denied("key0"),
        );
        assert!(
            err.contains("'alice@pbs' lacks Sys.Modify on /system/encryption-keys/key0"),
            "{}: {err}",
            s.name()
        );
        allow_key(&dir, "alice@pbs", "key0");
        s.create(&push_job(
            "job1",
            &[("owner", "alice@pbs"), ("active-encryption-key", "key0")],
        ))
        .unwrap();
        // a key change: the keys given
        refused(
            s.name(),
            s.update("job1", &[("associated-key", "key1")]),
            &denied("key1"),
        );
        refused(
            s.name(),
            s.update("job1", &[("active-encryption-key", "key2")]),
            &denied("key2"),
        );
        allow_key(&dir, "alice@pbs", "key1");
        s.update("job1", &[("associated-key", "key1")]).unwrap();
        // an owner change: every key the job names, active and associated
        refused(
            s.name(),
            s.update("job1", &[("owner", "bob@pbs")]),
            &denied("key0"),
        );
        allow_key(&dir, "bob@pbs", "key0");
        refused(
            s.name(),
            s.update("job1", &[("owner", "bob@pbs")]),
            &denied("key1"),
        );
        // an associated key may be archived: still usable to decrypt
        allow_key(&dir, "bob@pbs", "key1");
        s.archive("key1").unwrap();
        s.update("job1", &[("owner", "bob@pbs")]).unwrap();
        assert_eq!(s.job("job1")["owner"], "bob@pbs");
        // and back to the default owner, root@pam, who may use any key
        s.update("job1", &[("delete", "owner")]).unwrap();
        assert!(s.job("job1").get("owner").is_none());
    });
}

/// A key moved to the associated keys keeps the job's claim on it: it can
/// be archived, not deleted, and is not "unused" until the job lets go.
#[test]
fn a_key_moved_to_associated_cannot_be_deleted() {
    both(|s| {
        s.create(&push_job("job1", &[("active-encryption-key", "key0")]))
            .unwrap();
        refused(
            s.name(),
            s.archive("key0"),
            "encryption key 'key0' is in use by sync jobs: active key of 'job1'",
        );
        s.update("job1", &[("active-encryption-key", "key1")])
            .unwrap();
        s.archive("key0").unwrap();
        s.archive("key3").unwrap();
        let before = std::fs::read(s.config().path("encryption-keys/key0.enc")).unwrap();
        refused(
            s.name(),
            s.delete_key("key0"),
            "encryption key 'key0' is in use by sync jobs: associated with 'job1'",
        );
        assert_eq!(
            std::fs::read(s.config().path("encryption-keys/key0.enc")).unwrap(),
            before
        );
        assert_eq!(s.unused(), ["key3"], "{}", s.name());
        s.remove("job1").unwrap();
        assert_eq!(s.unused(), ["key0", "key3"], "{}", s.name());
        s.delete_key("key0").unwrap();
        assert_eq!(s.unused(), ["key3"], "{}", s.name());
    });
}

/// Upstream's other rules, in upstream's words; nothing is written.
#[test]
fn upstreams_other_job_rules() {
    both(|s| {
        let before = std::fs::read(s.config().path("encryption-keys.cfg")).unwrap();
        for (params, words) in [
            (
                vec![
                    ("id", "job1"),
                    ("store", "local"),
                    ("remote-store", "local"),
                ],
                "source and target datastore can't be the same",
            ),
            (
                push_job("job1", &[("resync-corrupt", "true")]),
                "push jobs do not support resync-corrupt option",
            ),
            (
                pull_job("job1", &[("unmount-on-done", "true")]),
                "'unmount-on-done' can only be set when 'run-on-mount' is enabled",
            ),
            (
                pull_job("job1", &[("ns", "a/b/c"), ("max-depth", "5")]),
                "namespace 'a/b/c's depth and recursion depth exceed limit: 3 + 5 > 7",
            ),
        ] {
            refused(s.name(), s.create(&params), words);
        }
        assert!(
            !s.config().path("sync.cfg").exists()
                || s.config().sync_jobs().list_jobs().unwrap().is_empty()
        );
        assert_eq!(
            std::fs::read(s.config().path("encryption-keys.cfg")).unwrap(),
            before
        );
        s.create(&pull_job("job1", &[("comment", "  nightly  ")]))
            .unwrap();
        refused(
            s.name(),
            s.create(&pull_job("job1", &[])),
            "job 'job1' already exists.",
        );
        assert_eq!(s.job("job1")["comment"], "nightly");
        refused(
            s.name(),
            s.remove("no-such-job"),
            "no such sync job 'no-such-job'",
        );
        refused(
            s.name(),
            s.update("no-such-job", &[("comment", "x")]),
            "no such sync job 'no-such-job'",
        );
    });
}

// ---------------------------------------------------------------------------
// the API only: who may read and change a job, digests

/// A daemon on a store with the push job `job1` (remote `pbs2`, datastore
/// `local`) and the pull job `job2`.
fn api_with_jobs() -> ApiSurface {
    let mut api = ApiSurface::new();
    api.create(&push_job("job1", &[("active-encryption-key", "key0")]))
        .unwrap();
    api.create(&pull_job("job2", &[])).unwrap();
    api
}

/// A client of `userid`'s new token `t`, with `roles` (path, role) given to
/// the user and the token.
fn user_client(api: &ApiSurface, userid: &str, roles: &[(&str, &str)]) -> Client {
    let tokenid = format!("{userid}!t");
    let secret = add_token(&api.dir.config, &tokenid, None);
    for (path, role) in roles {
        grant(&api.dir.config, path, userid, role, true);
        grant(&api.dir.config, path, &tokenid, role, true);
    }
    Client::token(api.daemon.port, &tokenid, &secret)
}

/// Reading: only jobs whose both sides the caller may audit; refusals name
/// what is missing where.
#[test]
fn api_reading_jobs_needs_audit_on_both_sides() {
    let api = api_with_jobs();
    let mut nobody = user_client(&api, "alice@pbs", &[]);
    let list = nobody.get("config/sync").data();
    assert_eq!(list, json!([]));
    nobody.get("config/sync/job1").expect(
        403,
        "permission check failed - missing Datastore.Audit on /datastore/local",
    );
    let mut local = user_client(&api, "bob@pbs", &[("/datastore/local", "DatastoreAudit")]);
    local.get("config/sync/job1").expect(
        403,
        "permission check failed - missing Remote.Audit on /remote/pbs2/store2",
    );
    grant(
        &api.dir.config,
        "/remote/pbs2",
        "bob@pbs",
        "RemoteAudit",
        true,
    );
    grant(
        &api.dir.config,
        "/remote/pbs2",
        "bob@pbs!t",
        "RemoteAudit",
        true,
    );
    let list = local.get("config/sync").json();
    assert_eq!(ids(&list["data"]), ["job1", "job2"]);
    assert_eq!(list["digest"].as_str().unwrap().len(), 64);
    let push = local.get("config/sync?sync-direction=push").data();
    assert_eq!(ids(&push), ["job1"]);
    let pull = local.get("config/sync?sync-direction=pull").data();
    assert_eq!(ids(&pull), ["job2"]);
    let shown = local.get("config/sync/job1").json();
    assert_eq!(shown["data"]["active-encryption-key"], "key0");
    assert_eq!(shown["digest"], list["digest"]);
    // reading is not changing
    local
        .send(
            "PUT",
            "config/sync/job1",
            &[],
            Some(form_body("comment=mine")),
        )
        .expect(
            403,
            "permission check failed - missing Remote.DatastoreBackup on /remote/pbs2/store2",
        );
}

/// Changing a push job: upstream's privileges, on the job as it was and as
/// it becomes; the key rules for the caller too; a caller who may not see
/// a key is not told why it is refused.
#[test]
fn api_changing_a_job_needs_upstreams_privileges_and_the_keys() {
    let mut api = api_with_jobs();
    let mut alice = user_client(
        &api,
        "alice@pbs",
        &[
            ("/datastore/local", "DatastoreAdmin"),
            ("/remote/pbs2", "RemoteDatastoreAdmin"),
        ],
    );
    // the job names key0, which alice may not use: nothing else changes
    // either way, but a comment is fine
    let put = |client: &mut Client, form: &str| {
        client.send("PUT", "config/sync/job1", &[], Some(form_body(form)))
    };
    let resp = put(&mut alice, "comment=mine");
    assert_eq!(resp.status, 200, "{}", resp.body);
    // a key she may not use: upstream's words and nothing more
    let resp = put(&mut alice, "active-encryption-key=key1");
    resp.expect(400, "no such key or cannot access key 'key1'");
    assert!(!resp.body.contains(" - "), "{}", resp.body);
    // the owner (root@pam) may use it, the caller must too
    allow_key(&api.dir.config, "alice@pbs", "key1");
    allow_key(&api.dir.config, "alice@pbs!t", "key1");
    let resp = put(&mut alice, "active-encryption-key=key1");
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(associated(&api.job("job1")), ["key0"]);
    // moving the job to a datastore she may not change is refused
    put(&mut alice, "store=other").expect(
        403,
        "permission check failed - missing Datastore.Audit on /datastore/other",
    );
    // and so is a job she may not change in the first place, even towards
    // one she may
    api.create(&push_job("job3", &[])).unwrap();
    api.update("job3", &[("store", "other")]).unwrap();
    alice
        .send(
            "PUT",
            "config/sync/job3",
            &[],
            Some(form_body("store=local")),
        )
        .expect(403, "missing Datastore.Audit on /datastore/other");
    alice
        .send("DELETE", "config/sync/job3", &[], None)
        .expect(403, "missing Datastore.Audit on /datastore/other");
    assert!(api.job("job3")["store"] == "other");
}

/// `digest` is honoured by update and remove; a wrong one changes nothing.
#[test]
fn api_digests_are_honoured() {
    let mut api = api_with_jobs();
    let digest = api.client.get("config/sync").json()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let stale = "0".repeat(64);
    let before = std::fs::read(api.dir.path().join("sync.cfg")).unwrap();
    for (method, form) in [
        ("PUT", format!("comment=x&digest={stale}")),
        ("DELETE", format!("digest={stale}")),
    ] {
        api.client
            .send(method, "config/sync/job1", &[], Some(form_body(&form)))
            .expect(400, "detected modified configuration");
    }
    assert_eq!(
        std::fs::read(api.dir.path().join("sync.cfg")).unwrap(),
        before
    );
    api.client
        .send(
            "PUT",
            "config/sync/job1",
            &[],
            Some(form_body(&format!("comment=x&digest={digest}"))),
        )
        .data();
    // the digest changed with the write: the old one is stale now
    api.client
        .send(
            "DELETE",
            "config/sync/job1",
            &[],
            Some(form_body(&format!("digest={digest}"))),
        )
        .expect(400, "detected modified configuration");
    assert_eq!(api.job("job1")["comment"], "x");
}
