//! Every operation that changes the store leaves exactly one intent and
//! one outcome in the audit log, with the right fields: through the CLI as
//! `root@pam` with the Unix user who ran it, origin `cli`; through the API
//! as the token (or the user of a ticket), origin `api` with the client's
//! address. A refused operation leaves nothing. `encryption-key show`
//! derives "last changed by" from the same records.

use std::path::Path;

use serde_json::{Value, json};

use pbs_test_kit::access::{add_token, add_user, grant};
use pbs_test_kit::dirs::audit_log_json;
use pbs_test_kit::https::{Client, form_body, urlencode};
use pbs_test_kit::manager::push_job_args;
use pbs_test_kit::{ApiDaemon, Manager, Run, Sandbox, key_config};

/// Who is expected to act.
struct Actor {
    actor: String,
    origin: Vec<&'static str>,
    unix_user: Option<String>,
}

impl Actor {
    fn cli() -> Self {
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .unwrap()
            .unwrap();
        Self {
            actor: "root@pam".to_string(),
            origin: vec!["cli"],
            unix_user: Some(user.name),
        }
    }

    fn api(actor: &str) -> Self {
        Self {
            actor: actor.to_string(),
            origin: vec!["api 127.0.0.1", "api ::1"],
            unix_user: None,
        }
    }
}

/// The log of one store and what the test has checked of it.
struct Log<'a> {
    dir: &'a Path,
    seen: usize,
}

impl<'a> Log<'a> {
    fn new(dir: &'a Path) -> Self {
        Self {
            dir,
            seen: audit_log_json(dir).len(),
        }
    }

    /// The records written since the last check, as pairs: each intent
    /// followed by its outcome, which is `ok`; by `who`. Returns the
    /// intents.
    #[track_caller]
    fn pairs(&mut self, who: &Actor, what: &str) -> Vec<Value> {
        let all = audit_log_json(self.dir);
        let new = all[self.seen..].to_vec();
        self.seen = all.len();
        assert!(
            !new.is_empty() && new.len().is_multiple_of(2),
            "{what}: {new:#?}"
        );
        let mut intents = Vec::new();
        for pair in new.chunks(2) {
            let (intent, outcome) = (&pair[0], &pair[1]);
            assert_eq!(intent["phase"], "intent", "{what}: {pair:#?}");
            assert_eq!(outcome["phase"], "outcome", "{what}: {pair:#?}");
            assert_eq!(outcome["intent"], intent["seq"], "{what}: {pair:#?}");
            assert_eq!(outcome["result"], "ok", "{what}: {pair:#?}");
            for field in ["op", "ids", "fingerprints", "job", "actor", "origin"] {
                assert_eq!(intent.get(field), outcome.get(field), "{what}: {field}");
            }
            assert_eq!(intent["actor"], who.actor.as_str(), "{what}: {intent}");
            let origin = intent["origin"].as_str().unwrap();
            assert!(who.origin.contains(&origin), "{what}: {intent}");
            assert_eq!(
                intent.get("unix-user").and_then(Value::as_str),
                who.unix_user.as_deref(),
                "{what}: {intent}"
            );
            intents.push(intent.clone());
        }
        intents
    }

    /// Exactly one pair, of `op` naming `ids` (and `fingerprints`, unless
    /// `None`), by `who`.
    #[track_caller]
    fn one(&mut self, who: &Actor, op: &str, ids: &[&str], fingerprints: Option<&[&str]>) {
        let what = format!("{op} {ids:?}");
        let intents = self.pairs(who, &what);
        assert_eq!(intents.len(), 1, "{what}: {intents:#?}");
        let intent = &intents[0];
        assert_eq!(intent["op"], op, "{what}: {intent}");
        assert_eq!(intent["ids"], json!(ids), "{what}: {intent}");
        if let Some(fingerprints) = fingerprints {
            assert_eq!(
                intent["fingerprints"],
                json!(fingerprints),
                "{what}: {intent}"
            );
        }
    }

    /// Nothing was recorded since the last check (a refusal).
    #[track_caller]
    fn nothing(&mut self, what: &str) {
        let all = audit_log_json(self.dir);
        assert_eq!(all.len(), self.seen, "{what}: {:#?}", &all[self.seen..]);
    }
}

/// The trash entry name of key `id` (the newest one).
fn trash_entry(dir: &Path, id: &str) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("encryption-keys/.trash"))
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json").map(str::to_string)
        })
        .filter(|name| name.starts_with(&format!("{id}@")))
        .collect();
    names.sort();
    names.pop().expect("a trash entry")
}

/// The API path of the encryption keys.
const KEYS: &str = "config/encryption-keys";

fn fingerprint(seed: u64) -> String {
    key_config(seed).fingerprint.unwrap().signature()
}

/// The CLI side of a scenario: the manager on the sandbox's store, run as
/// root.
struct Cli<'a> {
    sandbox: &'a Sandbox,
    manager: Manager,
    who: Actor,
}

impl<'a> Cli<'a> {
    fn new(sandbox: &'a Sandbox) -> Self {
        Self {
            sandbox,
            manager: Manager::new(sandbox.config_dir()),
            who: Actor::cli(),
        }
    }

    fn dir(&self) -> &'a Path {
        self.sandbox.config_dir()
    }

    /// A run that succeeds.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> Run {
        let run = self.manager.run(args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        run
    }

    /// A run that is refused.
    #[track_caller]
    fn refused(&self, args: &[&str]) {
        let run = self.manager.run(args);
        assert_eq!(run.code, 255, "{args:?}: {run:?}");
    }

    /// A key file of `key_config(seed)` in the sandbox.
    fn key_file(&self, seed: u64) -> String {
        let path = self.sandbox.file(&format!("key-{seed}.enc"));
        std::fs::write(&path, key_config(seed).to_json().unwrap()).unwrap();
        path.to_string_lossy().into_owned()
    }
}

#[test]
fn every_cli_operation_leaves_one_record_pair() {
    let sandbox = Sandbox::new();
    let cli = Cli::new(&sandbox);
    let mut log = Log::new(cli.dir());
    let created_fp = cli_create_and_import(&cli, &mut log);
    let pass = cli_keys_leaving_the_store(&cli, &mut log, &created_fp);
    cli_archive_delete_and_the_trash(&cli, &mut log, &pass);
    cli_a_missing_key_file_forced(&cli, &mut log);
    cli_trash_purges(&cli, &mut log, &pass);
    cli_sync_job_keys(&cli, &mut log, &created_fp);
    cli_verify_repair(&cli, &mut log);
    let secret = cli_users_tokens_acls(&cli, &mut log);
    cli_the_log_afterwards(&cli, &secret);
}

/// create (the fingerprint of the new key, returned), import, and refusals
/// (a taken fingerprint, a taken id, an active key's delete) that record
/// nothing.
fn cli_create_and_import(cli: &Cli, log: &mut Log) -> String {
    let run = cli.ok(&[
        "--output-format",
        "json",
        "encryption-key",
        "create",
        "k-one",
    ]);
    let created: Value = serde_json::from_str(&run.stdout).unwrap();
    let created_fp = created["fingerprint"].as_str().unwrap().to_string();
    log.one(&cli.who, "create", &["k-one"], Some(&[&created_fp]));
    let imported = cli.key_file(2);
    cli.ok(&["encryption-key", "import", "k-two", "--file", &imported]);
    log.one(&cli.who, "import", &["k-two"], Some(&[&fingerprint(2)]));
    // refusals: a taken fingerprint, a taken id, an active key's delete
    cli.refused(&["encryption-key", "import", "k-dup", "--file", &imported]);
    cli.refused(&["encryption-key", "create", "k-one"]);
    cli.refused(&["encryption-key", "remove", "k-two"]);
    cli.refused(&["encryption-key", "unarchive", "k-two"]);
    log.nothing("refusals");
    created_fp
}

/// Keys leaving the store: export, the restore drill, a paperkey; a drill
/// that fails and a void restore record nothing. Returns the bundle's
/// passphrase file.
fn cli_keys_leaving_the_store(cli: &Cli, log: &mut Log, created_fp: &str) -> String {
    let pass = cli.sandbox.file("bundle.pass");
    std::fs::write(&pass, "a long enough bundle pass phrase\n").unwrap();
    let pass = pass.to_string_lossy().into_owned();
    let bundle = cli
        .sandbox
        .file("k-one.pbsx")
        .to_string_lossy()
        .into_owned();
    cli.ok(&[
        "encryption-key",
        "export",
        "k-one",
        "--output-file",
        &bundle,
        "--passphrase-file",
        &pass,
    ]);
    log.one(&cli.who, "export", &["k-one"], Some(&[created_fp]));
    cli.ok(&[
        "encryption-key",
        "export-verify",
        &bundle,
        "--passphrase-file",
        &pass,
    ]);
    log.one(&cli.who, "export-verify", &["k-one"], Some(&[created_fp]));
    let run = Manager::run_command(
        cli.manager
            .command(&["encryption-key", "paperkey", "k-one"]),
        None,
    );
    assert_eq!(run.code, 0, "{run:?}");
    log.one(&cli.who, "paperkey", &["k-one"], Some(&[created_fp]));
    // the paper carries the checkpoint signed after its own record
    let size = audit_log_json(cli.dir()).len() - 1;
    assert!(
        run.stdout.contains(&format!("\n  {size}\n")),
        "{}",
        run.stdout
    );
    // a bundle that does not open proves nothing and records nothing
    std::fs::write(
        cli.sandbox.file("wrong.pass"),
        "not the bundle pass phrase\n",
    )
    .unwrap();
    let wrong = cli
        .sandbox
        .file("wrong.pass")
        .to_string_lossy()
        .into_owned();
    cli.refused(&[
        "encryption-key",
        "export-verify",
        &bundle,
        "--passphrase-file",
        &wrong,
    ]);
    // restoring a key the store has: nothing to do, nothing recorded
    cli.ok(&[
        "encryption-key",
        "restore",
        &bundle,
        "--passphrase-file",
        &pass,
    ]);
    log.nothing("refused or void key transfers");
    pass
}

/// archive, unarchive, archive, delete (the trash record names who), a
/// restore from the trash under another id, a purge and a restore from a
/// bundle.
fn cli_archive_delete_and_the_trash(cli: &Cli, log: &mut Log, pass: &str) {
    let dir = cli.dir();
    for op in ["archive", "unarchive", "archive"] {
        cli.ok(&["encryption-key", op, "k-two"]);
        log.one(&cli.who, op, &["k-two"], Some(&[&fingerprint(2)]));
    }
    cli.ok(&["encryption-key", "remove", "k-two"]);
    log.one(&cli.who, "delete", &["k-two"], Some(&[&fingerprint(2)]));
    let entry = trash_entry(dir, "k-two");
    // the trash record says who deleted, as the log does
    let record: Value = serde_json::from_slice(
        &std::fs::read(dir.join(format!("encryption-keys/.trash/{entry}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(record["actor"], "root@pam", "{record}");
    cli.ok(&[
        "encryption-key",
        "trash",
        "restore",
        "k-two",
        "--as",
        "k-three",
    ]);
    log.one(
        &cli.who,
        "trash-restore",
        &["k-three", &entry],
        Some(&[&fingerprint(2)]),
    );
    let kept = cli
        .sandbox
        .file("k-three.pbsx")
        .to_string_lossy()
        .into_owned();
    cli.ok(&[
        "encryption-key",
        "export",
        "k-three",
        "--output-file",
        &kept,
        "--passphrase-file",
        pass,
    ]);
    log.pairs(&cli.who, "export");
    // an export alone is no verified copy: the purge is refused, unrecorded
    cli.refused(&["encryption-key", "remove", "k-three", "--purge"]);
    log.nothing("a purge without a verified copy");
    cli.ok(&[
        "encryption-key",
        "export-verify",
        &kept,
        "--passphrase-file",
        pass,
    ]);
    log.one(
        &cli.who,
        "export-verify",
        &["k-three"],
        Some(&[&fingerprint(2)]),
    );
    cli.ok(&["encryption-key", "remove", "k-three", "--purge"]);
    log.one(
        &cli.who,
        "delete-purge",
        &["k-three"],
        Some(&[&fingerprint(2)]),
    );
    // back from the bundle: one restore of it
    cli.ok(&[
        "encryption-key",
        "restore",
        &kept,
        "--passphrase-file",
        pass,
    ]);
    log.one(&cli.who, "restore", &["k-three"], Some(&[&fingerprint(2)]));
    cli.ok(&["encryption-key", "remove", "k-three", "--purge"]);
    log.pairs(&cli.who, "delete-purge");
}

/// A key whose file is missing: refused without --force, dropped with it.
fn cli_a_missing_key_file_forced(cli: &Cli, log: &mut Log) {
    cli.ok(&[
        "encryption-key",
        "import",
        "k-four",
        "--file",
        &cli.key_file(4),
    ]);
    cli.ok(&["encryption-key", "archive", "k-four"]);
    log.pairs(&cli.who, "setup");
    std::fs::remove_file(cli.dir().join("encryption-keys/k-four.enc")).unwrap();
    cli.refused(&["encryption-key", "remove", "k-four"]);
    log.nothing("a missing key file without --force");
    cli.ok(&["encryption-key", "remove", "k-four", "--force"]);
    log.one(
        &cli.who,
        "delete-force",
        &["k-four"],
        Some(&[&fingerprint(4)]),
    );
}

/// trash purge: of every expired one with a verified copy, and of one
/// entry without (told to), one pair each; a refused purge records nothing.
fn cli_trash_purges(cli: &Cli, log: &mut Log, pass: &str) {
    let dir = cli.dir();
    for seed in [5, 6, 7] {
        let id = format!("k-{seed}");
        cli.ok(&[
            "encryption-key",
            "import",
            &id,
            "--file",
            &cli.key_file(seed),
        ]);
        cli.ok(&["encryption-key", "archive", &id]);
    }
    // a verified copy of k-6 and k-7, not of k-5
    let bundle = cli
        .sandbox
        .file("k-6-7.pbsx")
        .to_string_lossy()
        .into_owned();
    for step in [
        &["export", "k-6", "k-7", "--output-file", &bundle][..],
        &["export-verify", &bundle][..],
    ] {
        let args = [
            &["encryption-key"][..],
            step,
            &["--passphrase-file", pass][..],
        ]
        .concat();
        cli.ok(&args);
    }
    for seed in [5, 6, 7] {
        cli.ok(&[
            "encryption-key",
            "remove",
            &format!("k-{seed}"),
            "--keep-days",
            "0",
        ]);
    }
    log.pairs(&cli.who, "setup");
    let (six, seven) = (trash_entry(dir, "k-6"), trash_entry(dir, "k-7"));
    cli.ok(&["encryption-key", "trash", "purge", "--expired"]);
    let purged = log.pairs(&cli.who, "purge --expired");
    let mut named: Vec<Value> = purged.iter().map(|r| r["ids"].clone()).collect();
    named.sort_by_key(|ids| ids.to_string());
    assert_eq!(named, [json!(["k-6", six]), json!(["k-7", seven])]);
    assert!(purged.iter().all(|r| r["op"] == "purge"));
    let entry = trash_entry(dir, "k-5");
    cli.refused(&["encryption-key", "trash", "purge", &entry]);
    log.nothing("a purge by name without a verified copy");
    cli.ok(&[
        "encryption-key",
        "trash",
        "purge",
        &entry,
        "--without-verified-copy",
    ]);
    log.one(
        &cli.who,
        "purge",
        &["k-5", &entry],
        Some(&[&fingerprint(5)]),
    );
}

/// A sync job's keys: the job, and every key it names before and after; a
/// job naming a missing key records nothing.
fn cli_sync_job_keys(cli: &Cli, log: &mut Log, created_fp: &str) {
    cli.ok(&push_job_args("job1", "k-one"));
    log.one(&cli.who, "sync-job-keys", &["k-one"], Some(&[created_fp]));
    let job = audit_log_json(cli.dir()).last().unwrap()["job"].clone();
    assert_eq!(job, "job1");
    cli.refused(&[
        "sync-job",
        "update",
        "job1",
        "--active-encryption-key",
        "nope",
    ]);
    log.nothing("a sync job naming a missing key");
}

/// verify --repair: one pair per action, none on a clean store.
fn cli_verify_repair(cli: &Cli, log: &mut Log) {
    let dir = cli.dir();
    let key_path = dir.join("encryption-keys/k-one.enc");
    std::fs::set_permissions(
        &key_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(dir.join("encryption-keys/gone.enc.lck"), b"").unwrap();
    std::fs::write(
        dir.join("encryption-keys/stray.enc"),
        key_config(8).to_json().unwrap(),
    )
    .unwrap();
    std::fs::set_permissions(
        dir.join("encryption-keys/stray.enc"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    let run = cli.manager.run(&["encryption-key", "verify", "--repair"]);
    assert_eq!(run.code, 0, "{run:?}");
    let repairs = log.pairs(&cli.who, "verify --repair");
    let mut ops: Vec<(String, Value)> = repairs
        .iter()
        .map(|r| (r["op"].as_str().unwrap().to_string(), r["ids"].clone()))
        .collect();
    ops.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        ops,
        [
            (
                "repair-mode".to_string(),
                json!(["k-one", "encryption-keys/k-one.enc"])
            ),
            (
                "repair-orphan".to_string(),
                json!(["stray", "encryption-keys/stray.enc"])
            ),
            (
                "repair-stale-lock".to_string(),
                json!(["gone", "encryption-keys/gone.enc.lck"])
            ),
        ]
    );
    cli.ok(&["encryption-key", "verify", "--repair"]);
    log.nothing("a clean store's repair");
}

/// Users, passwords, tokens, ACLs: named, never their secrets. Returns the
/// token's secret.
fn cli_users_tokens_acls(cli: &Cli, log: &mut Log) -> String {
    let who = &cli.who;
    cli.ok(&["user", "create", "alice@pbs", "--password", "alice pass 1"]);
    log.one(who, "user-create", &["alice@pbs"], Some(&[]));
    cli.refused(&["user", "create", "alice@pbs"]);
    log.nothing("an existing user");
    cli.ok(&["user", "update", "alice@pbs", "--comment", "keys"]);
    log.one(who, "user-update", &["alice@pbs"], Some(&[]));
    let run = cli
        .manager
        .run_with(&["user", "passwd", "alice@pbs"], Some(b"alice pass 2\n"));
    assert_eq!(run.code, 0, "{run:?}");
    log.one(who, "user-password", &["alice@pbs"], Some(&[]));
    let run = cli.ok(&[
        "--output-format",
        "json",
        "user",
        "generate-token",
        "alice@pbs",
        "t1",
    ]);
    let secret = serde_json::from_str::<Value>(&run.stdout).unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    log.one(who, "token-create", &["alice@pbs!t1"], Some(&[]));
    let acl = [
        "acl",
        "update",
        "/system",
        "Audit",
        "--auth-id",
        "alice@pbs!t1",
    ];
    cli.ok(&acl);
    log.one(
        who,
        "acl-grant",
        &["/system", "alice@pbs!t1", "Audit"],
        None,
    );
    let revoke = [&acl[..], &["--delete"][..]].concat();
    cli.ok(&revoke);
    log.one(
        who,
        "acl-revoke",
        &["/system", "alice@pbs!t1", "Audit"],
        None,
    );
    cli.refused(&revoke);
    log.nothing("revoking a role not held");
    cli.ok(&["user", "delete-token", "alice@pbs", "t1"]);
    log.one(who, "token-delete", &["alice@pbs!t1"], Some(&[]));
    cli.ok(&["user", "remove", "alice@pbs"]);
    log.one(who, "user-delete", &["alice@pbs"], Some(&[]));
    secret
}

/// The log holds none of the secrets; show derives its "last" fields from
/// it; the whole log verifies.
fn cli_the_log_afterwards(cli: &Cli, secret: &str) {
    let text = std::fs::read_to_string(cli.dir().join("encryption-keys/.audit/log")).unwrap();
    for secret in [secret, "alice pass 1", "alice pass 2"] {
        assert!(!text.contains(secret), "the log holds {secret:?}");
    }
    // show: the last change of k-one was the repair of its mode; its
    // export and the drill of it are there too
    let shown = cli
        .manager
        .run(&["--output-format", "json", "encryption-key", "show", "k-one"]);
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["last-changed-by"]["op"], "repair-mode", "{shown}");
    assert_eq!(shown["last-changed-by"]["actor"], "root@pam");
    assert_eq!(shown["last-exported"]["op"], "export", "{shown}");
    assert_eq!(
        shown["last-export-verify"]["op"], "export-verify",
        "{shown}"
    );
    // and the whole log verifies, naming every key the store lists
    let run = cli.manager.run(&["audit", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = cli
        .manager
        .run(&["--output-format", "json", "audit", "verify"]);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["unrecorded"], json!([]), "{report}");
}

#[test]
fn every_api_operation_leaves_one_record_pair() {
    let sandbox = Sandbox::new();
    let dir = sandbox.config_dir();
    // access set up through the library: no records of its own
    let config = pbs_config::ConfigDir::new(dir).unwrap();
    add_user(&config, "alice@pbs", Some("alice's pass phrase"), |_| {});
    let secret = add_token(&config, "alice@pbs!ops", None);
    grant(&config, "/", "alice@pbs", "Admin", true);
    grant(&config, "/", "alice@pbs!ops", "Admin", true);
    let daemon = ApiDaemon::start(dir, &[], sandbox.file("daemon.log"));
    let mut client = Client::token(daemon.port, "alice@pbs!ops", &secret);
    let token = Actor::api("alice@pbs!ops");
    let mut log = Log::new(dir);
    let keys = KEYS;

    let created = client.post_form(keys, "id=a-one").data();
    let created_fp = created["fingerprint"].as_str().unwrap().to_string();
    log.one(&token, "create", &["a-one"], Some(&[&created_fp]));
    let body = json!({"id": "a-two", "key": key_config(12).to_json().unwrap()});
    client.post_json(keys, &body).data();
    log.one(&token, "import", &["a-two"], Some(&[&fingerprint(12)]));
    // refusals
    client
        .post_form(keys, "id=a-one")
        .expect(400, "already exists");
    client
        .post_json(
            keys,
            &json!({"id": "a-dup", "key": key_config(12).to_json().unwrap()}),
        )
        .expect(400, "already stored");
    client
        .delete(&format!("{keys}/a-two"))
        .expect(400, "not archived");
    log.nothing("refusals");
    api_keys_leave_and_come_back(&mut client, &mut log, &token, &created_fp);
    api_toggles_and_the_trash(&mut client, &mut log, &token);
    api_a_key_file_gone(&mut client, &mut log, &token);

    api_purges(&mut client, &mut log, &token);
    api_a_ticket(daemon.port, &mut log);
    api_the_log_afterwards(&mut client, dir, &secret);
    drop(daemon);
}

/// Keys leaving the store (export, drill, paperkey, purge), and one coming
/// back (restore).
fn api_keys_leave_and_come_back(
    client: &mut Client,
    log: &mut Log,
    token: &Actor,
    created_fp: &str,
) {
    let keys = KEYS;
    let pass = "a long enough bundle pass phrase";
    let exported = client
        .post_json(
            "config/encryption-key-export",
            &json!({"id": ["a-one"], "passphrase": pass}),
        )
        .data();
    log.one(token, "export", &["a-one"], Some(&[created_fp]));
    let bundle = exported["bundle"].as_str().unwrap().to_string();
    client
        .post_json(
            "config/encryption-key-export/verify",
            &json!({"bundle": bundle, "passphrase": pass}),
        )
        .data();
    log.one(token, "export-verify", &["a-one"], Some(&[created_fp]));
    client
        .post_form(&format!("{keys}/a-one/paperkey"), "")
        .data();
    log.one(token, "paperkey", &["a-one"], Some(&[created_fp]));
    client.post_form(&format!("{keys}/a-one"), "").data();
    client.delete(&format!("{keys}/a-one?purge=1")).data();
    log.pairs(token, "archive, delete-purge");
    client
        .post_json(
            "config/encryption-key-restore",
            &json!({"bundle": bundle, "passphrase": pass}),
        )
        .data();
    log.one(token, "restore", &["a-one"], Some(&[created_fp]));
}

/// Toggles (archive, unarchive, archive), then a delete into the trash,
/// restored from it and purged.
fn api_toggles_and_the_trash(client: &mut Client, log: &mut Log, token: &Actor) {
    let dir = log.dir;
    let keys = KEYS;
    for op in ["archive", "unarchive", "archive"] {
        client.post_form(&format!("{keys}/a-two"), "").data();
        log.one(token, op, &["a-two"], Some(&[&fingerprint(12)]));
    }
    client.delete(&format!("{keys}/a-two")).data();
    log.one(token, "delete", &["a-two"], Some(&[&fingerprint(12)]));
    let entry = trash_entry(dir, "a-two");
    client
        .post_form(&format!("config/encryption-key-trash/{entry}/restore"), "")
        .data();
    log.one(
        token,
        "trash-restore",
        &["a-two", &entry],
        Some(&[&fingerprint(12)]),
    );
    // restored archived, as it was deleted; no verified copy of it
    destroyed_when_told(client, log, &format!("{keys}/a-two?purge=1"), "a-two");
    log.one(token, "delete-purge", &["a-two"], Some(&[&fingerprint(12)]));
}

/// A DELETE at `path` that destroys key `id`, of which no verified copy is
/// recorded: refused (400, nothing recorded), then done when told
/// (`without-verified-copy=1`).
fn destroyed_when_told(client: &mut Client, log: &mut Log, path: &str, id: &str) {
    client
        .delete(path)
        .expect(400, &format!("no verified copy of encryption key '{id}'"));
    log.nothing("a purge without a verified copy");
    let query = if path.contains('?') { '&' } else { '?' };
    client
        .delete(&format!("{path}{query}without-verified-copy=1"))
        .data();
}

/// A key file gone: a forced delete.
fn api_a_key_file_gone(client: &mut Client, log: &mut Log, token: &Actor) {
    let dir = log.dir;
    let keys = KEYS;
    let body = json!({"id": "a-three", "key": key_config(13).to_json().unwrap()});
    client.post_json(keys, &body).data();
    client.post_form(&format!("{keys}/a-three"), "").data();
    log.pairs(token, "setup");
    std::fs::remove_file(dir.join("encryption-keys/a-three.enc")).unwrap();
    client.delete(&format!("{keys}/a-three?force=1")).data();
    log.one(
        token,
        "delete-force",
        &["a-three"],
        Some(&[&fingerprint(13)]),
    );
}

/// trash purges through the API: one entry, then what expired.
fn api_purges(client: &mut Client, log: &mut Log, token: &Actor) {
    let dir = log.dir;
    let keys = KEYS;
    for seed in [14, 15] {
        let id = format!("a-{seed}");
        let body = json!({"id": id, "key": key_config(seed).to_json().unwrap()});
        client.post_json(keys, &body).data();
        client.post_form(&format!("{keys}/{id}"), "").data();
    }
    // a verified copy of a-15, none of a-14
    let pass = "a long enough bundle pass phrase";
    let exported = client
        .post_json(
            "config/encryption-key-export",
            &json!({"id": ["a-15"], "passphrase": pass}),
        )
        .data();
    client
        .post_json(
            "config/encryption-key-export/verify",
            &json!({"bundle": exported["bundle"], "passphrase": pass}),
        )
        .data();
    for seed in [14, 15] {
        client
            .delete(&format!("{keys}/a-{seed}?keep-days=0"))
            .data();
    }
    log.pairs(token, "setup");
    let (fourteen, fifteen) = (trash_entry(dir, "a-14"), trash_entry(dir, "a-15"));
    let report = client
        .delete("config/encryption-key-trash?expired=1")
        .data();
    assert_eq!(report["purged"][0]["name"], fifteen, "{report}");
    assert_eq!(report["kept-without-copy"][0]["name"], fourteen, "{report}");
    log.one(
        token,
        "purge",
        &["a-15", &fifteen],
        Some(&[&fingerprint(15)]),
    );
    let path = format!("config/encryption-key-trash/{fourteen}");
    destroyed_when_told(client, log, &path, "a-14");
    log.one(
        token,
        "purge",
        &["a-14", &fourteen],
        Some(&[&fingerprint(14)]),
    );
}

/// A ticket: the user acts, not a token.
fn api_a_ticket(port: u16, log: &mut Log) {
    let keys = KEYS;
    let form = format!(
        "username=alice@pbs&password={}",
        urlencode("alice's pass phrase")
    );
    let login = Client::new(port).post_form("access/ticket", &form).data();
    let cookie = format!("PBSAuthCookie={}", login["ticket"].as_str().unwrap());
    let csrf = login["CSRFPreventionToken"].as_str().unwrap().to_string();
    let mut by_ticket =
        Client::new(port).with_auth(&[("Cookie", &cookie), ("CSRFPreventionToken", &csrf)]);
    by_ticket
        .send("POST", keys, &[], Some(form_body("id=a-ticket")))
        .data();
    log.one(&Actor::api("alice@pbs"), "create", &["a-ticket"], None);
}

/// The log through the API: the same records, and "last changed by";
/// it verifies and holds no token secret.
fn api_the_log_afterwards(client: &mut Client, dir: &Path, secret: &str) {
    let keys = KEYS;
    let listed = client.get("config/encryption-key-audit?id=a-ticket").data();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let shown = client.get(&format!("{keys}/a-one")).data();
    assert_eq!(
        shown["last-changed-by"]["actor"], "alice@pbs!ops",
        "{shown}"
    );
    assert_eq!(shown["last-changed-by"]["op"], "restore", "{shown}");
    assert_eq!(shown["last-exported"]["op"], "export", "{shown}");
    assert_eq!(
        shown["last-export-verify"]["op"], "export-verify",
        "{shown}"
    );
    assert!(shown["last-changed-by"].get("unix-user").is_none());
    let report = client.get("config/encryption-key-audit/verify").data();
    assert_eq!(report["problems"], json!([]), "{report}");
    // every key the store lists came in by a recorded operation
    assert_eq!(report["unrecorded"], json!([]), "{report}");
    assert!(
        !std::fs::read_to_string(dir.join("encryption-keys/.audit/log"))
            .unwrap()
            .contains(secret)
    );
}

/// The audit checkpoint in the clear header of the export bundle `path`.
fn bundle_checkpoint(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    header["checkpoint"]
        .as_str()
        .expect("a bundle with a checkpoint")
        .to_string()
}

#[test]
fn an_export_bundle_carries_a_checkpoint_that_proves_the_log_up_to_its_export() {
    let sandbox = Sandbox::new();
    let dir = sandbox.config_dir();
    let manager = Manager::new(dir);
    let run = |args: &[&str], code: i32| {
        let run = manager.run(args);
        assert_eq!(run.code, code, "{args:?}: {run:?}");
        run
    };
    run(&["encryption-key", "create", "k-one"], 0);
    run(&["encryption-key", "create", "k-two"], 0);
    let pass = sandbox.file("bundle.pass");
    std::fs::write(&pass, "a long enough bundle pass phrase\n").unwrap();
    let bundle = sandbox.file("all.pbsx");
    run(
        &[
            "encryption-key",
            "export",
            "--all",
            "--output-file",
            bundle.to_str().unwrap(),
            "--passphrase-file",
            pass.to_str().unwrap(),
        ],
        0,
    );
    // the checkpoint signed right after the export's own intent (line 5)
    let checkpoint = bundle_checkpoint(&bundle);
    assert_eq!(checkpoint.lines().nth(1), Some("5"), "{checkpoint}");
    let all = audit_log_json(dir);
    assert_eq!(all.len(), 6);
    assert_eq!(all[4]["op"], "export");
    assert_eq!(all[4]["phase"], "intent");
    let kept = sandbox.file("kept.checkpoint");
    std::fs::write(&kept, &checkpoint).unwrap();
    let kept = kept.to_str().unwrap();

    // the log as it is: the bundle's checkpoint is a prefix of it
    run(&["encryption-key", "archive", "k-two"], 0);
    let report = run(
        &[
            "--output-format",
            "json",
            "audit",
            "verify",
            "--checkpoint",
            kept,
        ],
        0,
    );
    let report: Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(report["kept-checkpoints"], 1, "{report}");
    assert_eq!(report["problems"], json!([]), "{report}");

    // root cuts the log before the export and signs the rest anew: the
    // host's own checks pass, the bundle's checkpoint does not
    let log_path = dir.join("encryption-keys/.audit/log");
    let text = std::fs::read_to_string(&log_path).unwrap();
    let kept_lines: String = text.lines().take(4).map(|l| format!("{l}\n")).collect();
    std::fs::write(&log_path, kept_lines).unwrap();
    std::fs::remove_file(dir.join("encryption-keys/.audit/checkpoint")).unwrap();
    run(&["audit", "checkpoint"], 0);
    run(&["audit", "verify"], 0);
    let cut = run(&["audit", "verify", "--checkpoint", kept], 1);
    let said = format!("{}{}", cut.stdout, cut.stderr);
    assert!(said.contains("kept checkpoint 1 (size 5)"), "{said}");
}

#[test]
fn a_paperkey_typed_back_records_one_restore_or_one_import() {
    let sandbox = Sandbox::new();
    let dir = sandbox.config_dir();
    let manager = Manager::new(dir);
    let run = |args: &[&str]| {
        let run = manager.run(args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        run
    };
    let cli = Actor::cli();
    let created = run(&[
        "--output-format",
        "json",
        "encryption-key",
        "create",
        "k-paper",
    ]);
    let created: Value = serde_json::from_str(&created.stdout).unwrap();
    let fp = created["fingerprint"].as_str().unwrap().to_string();
    let paper = run(&["encryption-key", "paperkey", "k-paper"]);
    let file = sandbox.file("k-paper.txt");
    std::fs::write(&file, &paper.stdout).unwrap();
    let file = file.to_str().unwrap();
    run(&["encryption-key", "archive", "k-paper"]);
    run(&[
        "encryption-key",
        "remove",
        "k-paper",
        "--purge",
        "--without-verified-copy",
    ]);
    let mut log = Log::new(dir);

    // the paper's text through restore: one restore of its id and key
    run(&["encryption-key", "restore", file, "--id", "k-paper"]);
    log.one(&cli, "restore", &["k-paper"], Some(&[&fp]));
    // again: already there, nothing recorded
    run(&["encryption-key", "restore", file, "--id", "k-paper"]);
    log.nothing("a restore of a key the store has");

    // through import, under another id once the first is gone
    run(&["encryption-key", "archive", "k-paper"]);
    log.one(&cli, "archive", &["k-paper"], Some(&[&fp]));
    run(&[
        "encryption-key",
        "remove",
        "k-paper",
        "--purge",
        "--without-verified-copy",
    ]);
    log.one(&cli, "delete-purge", &["k-paper"], Some(&[&fp]));
    run(&["encryption-key", "import", "k-typed", "--file", file]);
    log.one(&cli, "import", &["k-typed"], Some(&[&fp]));
}

/// `audit list --limit N` and the API's `limit`: the newest N records that
/// pass the other filters, oldest first, through the CLI and the API; for
/// a caller masked on a key, its records are left out before they count.
#[test]
fn limit_lists_the_newest_records() {
    use pbs_test_kit::access::masked_token;
    use pbs_test_kit::{TestDir, key_config};

    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    for (id, seed) in [("hidden", 71), ("open-1", 72), ("open-2", 73)] {
        keys.store_key(id, &key_config(seed)).unwrap();
    }
    for id in ["open-1", "hidden"] {
        keys.archive_key(id, None).unwrap();
    }
    let all = seqs_of(&Value::Array(audit_log_json(dir.path())));
    assert_eq!(all.len(), 10, "{all:?}");

    let cli = Manager::new(dir.path());
    let listed = |args: &[&str]| -> Value {
        let args = [&["audit", "list"][..], args].concat();
        serde_json::from_str(&cli.json_or_error(&args).unwrap()).unwrap()
    };
    assert_eq!(seqs_of(&listed(&["--limit", "3"])), all[7..]);
    assert_eq!(seqs_of(&listed(&["--limit", "100"])), all);
    // the archive of open-1, intent and outcome
    assert_eq!(
        seqs_of(&listed(&["--key", "open-1", "--limit", "2"])),
        all[6..8]
    );
    let refused = cli.run(&["audit", "list", "--limit", "0"]);
    assert_eq!(refused.code, 255, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("'--limit <N>': expected a number of records, 1 or more"),
        "{refused:?}"
    );

    let root_secret = add_token(&dir.config, "root@pam!admin", None);
    grant(&dir.config, "/", "root@pam!admin", "Admin", true);
    let masked_id = "erin@pbs!masked";
    let masked_secret = masked_token(&dir.config, masked_id, "/system/encryption-keys", "hidden");
    let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
    let mut root = Client::token(daemon.port, "root@pam!admin", &root_secret);
    let mut masked = Client::token(daemon.port, masked_id, &masked_secret);
    let path = "config/encryption-key-audit";
    assert_eq!(
        seqs_of(&root.get(&format!("{path}?limit=3")).data()),
        all[7..]
    );
    // the newest three that do not name `hidden`: the archive of open-1
    // and the outcome of open-2's import (the newest two name `hidden`)
    let shown = masked.get(&format!("{path}?limit=3")).data();
    assert_eq!(seqs_of(&shown), all[5..8], "{shown}");
    assert!(!shown.to_string().contains("hidden"), "{shown}");
    let refused = root.get(&format!("{path}?limit=0"));
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("limit"), "{}", refused.body);
}

/// A `since` at or after `until` passes no record: the CLI and the API
/// refuse it in the same words (a 400 naming both parameters), on a log
/// with records and on a store without one; a range of one second lists.
#[test]
fn since_at_or_after_until_is_refused_in_the_same_words() {
    use pbs_test_kit::{TestDir, key_config};

    let dir = TestDir::new();
    let cli = Manager::new(dir.path());
    let root_secret = add_token(&dir.config, "root@pam!admin", None);
    grant(&dir.config, "/", "root@pam!admin", "Admin", true);
    let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
    let mut root = Client::token(daemon.port, "root@pam!admin", &root_secret);
    let path = "config/encryption-key-audit";

    for with_log in [false, true] {
        if with_log {
            dir.config
                .encryption_keys()
                .store_key("key-1", &key_config(91))
                .unwrap();
        }
        let time = audit_log_json(dir.path())
            .first()
            .map_or(1000, |record| record["time"].as_i64().unwrap());
        for (since, until) in [(time, time), (time + 1, time)] {
            let (since, until) = (since.to_string(), until.to_string());
            let refused = cli
                .json_or_error(&["audit", "list", "--since", &since, "--until", &until])
                .unwrap_err();
            let why = refused
                .strip_prefix("unable to list the audit log - ")
                .unwrap_or_else(|| panic!("{refused}"));
            assert!(why.contains("since") && why.contains("until"), "{refused}");
            let answer = root.get(&format!("{path}?since={since}&until={until}"));
            assert_eq!(answer.status, 400, "{}", answer.body);
            assert!(answer.body.contains(why), "{}", answer.body);
        }
        let of_the_second: Vec<Value> = audit_log_json(dir.path())
            .into_iter()
            .filter(|record| record["time"] == time)
            .collect();
        assert_eq!(with_log, !of_the_second.is_empty());
        let second = format!("since={time}&until={}", time + 1);
        assert_eq!(
            seqs_of(&root.get(&format!("{path}?{second}")).data()),
            seqs_of(&Value::Array(of_the_second))
        );
    }
}

/// The `seq` of each record of a listing.
fn seqs_of(records: &Value) -> Vec<u64> {
    let records = records.as_array().unwrap();
    records.iter().map(|r| r["seq"].as_u64().unwrap()).collect()
}

/// The seqs `batch` reads, newest batch first, each asked for with the
/// oldest seq of the one before (`None` first) until one is empty; each at
/// most `limit` long. Oldest first.
fn in_batches(limit: usize, batch: &mut dyn FnMut(Option<u64>) -> Vec<u64>) -> Vec<u64> {
    let mut read: Vec<u64> = Vec::new();
    let mut before = None;
    loop {
        let got = batch(before);
        assert!(got.len() <= limit, "{got:?}");
        let Some(&oldest) = got.first() else {
            return read;
        };
        read.splice(0..0, got);
        before = Some(oldest);
    }
}

/// `before-seq` and `audit list --before-seq`: the next older batch after
/// one whose oldest record it names. Read in batches of `limit` through a
/// log whose records share their seconds (a `time` cursor would skip or
/// repeat them), every record comes once, in order: through the CLI, the
/// API as root and as a caller masked on a key, whose cursor only cuts the
/// list it may read anyway, wherever it points. A cursor that is no seq is
/// refused, naming it.
#[test]
fn before_seq_reads_every_record_once_in_batches() {
    use pbs_test_kit::{TestDir, key_config};

    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    for (id, seed) in [("hidden", 81), ("open-1", 82), ("open-2", 83)] {
        keys.store_key(id, &key_config(seed)).unwrap();
    }
    for _ in 0..3 {
        for id in ["open-1", "hidden", "open-2"] {
            keys.archive_key(id, None).unwrap();
            keys.unarchive_key(id, None).unwrap();
        }
    }
    let log = audit_log_json(dir.path());
    assert_eq!(log.len(), 42);
    assert!(
        log.windows(2)
            .any(|pair| pair[0]["time"] == pair[1]["time"]),
        "records of one second"
    );
    let all = seqs_of(&Value::Array(log.clone()));
    let visible: Vec<u64> = log
        .iter()
        .filter(|record| !record["ids"].to_string().contains("hidden"))
        .map(|record| record["seq"].as_u64().unwrap())
        .collect();
    assert!(visible.len() < all.len() && !visible.is_empty());

    cli_lists_in_batches(dir.path(), &all);
    api_lists_in_batches(&dir, &all, &visible);
}

/// `audit list --limit 5 --before-seq SEQ` reads `all` of the log in
/// `dir`; `--before-seq 0` is refused.
fn cli_lists_in_batches(dir: &Path, all: &[u64]) {
    let cli = Manager::new(dir);
    let listed = |args: &[&str]| -> Vec<u64> {
        let args = [&["audit", "list"][..], args].concat();
        seqs_of(&serde_json::from_str(&cli.json_or_error(&args).unwrap()).unwrap())
    };
    let read = in_batches(5, &mut |before| match before {
        Some(seq) => listed(&["--limit", "5", "--before-seq", &seq.to_string()]),
        None => listed(&["--limit", "5"]),
    });
    assert_eq!(read, all);
    assert_eq!(listed(&["--before-seq", "4"]), [1, 2, 3]);
    let refused = cli.run(&["audit", "list", "--before-seq", "0"]);
    assert_eq!(refused.code, 255, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("'--before-seq <SEQ>': expected a record's seq"),
        "{refused:?}"
    );
}

/// Through the API, root reads `all` in batches, a caller masked on the
/// key `hidden` the records of `visible`, with every cursor; bad cursors
/// are refused with a 400 naming `before-seq`.
fn api_lists_in_batches(dir: &pbs_test_kit::TestDir, all: &[u64], visible: &[u64]) {
    use pbs_test_kit::access::masked_token;

    let root_secret = add_token(&dir.config, "root@pam!admin", None);
    grant(&dir.config, "/", "root@pam!admin", "Admin", true);
    let masked_id = "erin@pbs!masked";
    let masked_secret = masked_token(&dir.config, masked_id, "/system/encryption-keys", "hidden");
    let daemon = ApiDaemon::start(dir.path(), &[], dir.path().join("daemon.log"));
    let mut root = Client::token(daemon.port, "root@pam!admin", &root_secret);
    let mut masked = Client::token(daemon.port, masked_id, &masked_secret);
    let path = "config/encryption-key-audit";
    let query = |limit: usize, before: Option<u64>| match before {
        Some(seq) => format!("{path}?limit={limit}&before-seq={seq}"),
        None => format!("{path}?limit={limit}"),
    };
    for limit in [1, 4, 7] {
        let read = in_batches(limit, &mut |before| {
            seqs_of(&root.get(&query(limit, before)).data())
        });
        assert_eq!(read, all, "root, limit {limit}");
        let read = in_batches(limit, &mut |before| {
            let batch = masked.get(&query(limit, before)).data();
            assert!(!batch.to_string().contains("hidden"), "{batch}");
            seqs_of(&batch)
        });
        assert_eq!(read, visible, "masked, limit {limit}");
    }
    assert_eq!(seqs_of(&masked.get(path).data()), visible);
    // the masked caller's cursor, wherever it points (at a record it may
    // not see too), cuts the list it reads without one: it tells nothing
    // that list does not
    for before in 1..=all.len() as u64 + 1 {
        let below: Vec<u64> = visible
            .iter()
            .copied()
            .filter(|&seq| seq < before)
            .collect();
        let newest = &below[below.len().saturating_sub(3)..];
        assert_eq!(
            seqs_of(&masked.get(&query(3, Some(before))).data()),
            newest,
            "before-seq {before}"
        );
    }
    // with another filter, the cursor keeps it
    let of_open_1 = seqs_of(&root.get(&format!("{path}?id=open-1")).data());
    let read = in_batches(2, &mut |before| {
        let cursor = before.map_or(String::new(), |seq| format!("&before-seq={seq}"));
        seqs_of(
            &root
                .get(&format!("{path}?id=open-1&limit=2{cursor}"))
                .data(),
        )
    });
    assert_eq!(read, of_open_1);

    for bad in ["0", "-3", "seven", "2.5"] {
        let refused = root.get(&format!("{path}?before-seq={bad}"));
        assert_eq!(refused.status, 400, "{bad}: {}", refused.body);
        assert!(
            refused.body.contains("before-seq"),
            "{bad}: {}",
            refused.body
        );
    }
}

/// `audit list --before-seq` of a log with a line moved (only root writes
/// the log; `audit verify` reports it): the cursor passed the moved line
/// into every batch until it went below it; now the read is refused,
/// naming the lines, and the plain list reads the log as it is.
/// Security.md finding 60.
#[test]
fn a_cursor_into_a_log_out_of_order_is_refused_naming_it() {
    use pbs_test_kit::{TestDir, key_config};

    let dir = TestDir::new();
    let keys = dir.config.encryption_keys();
    keys.store_key("k-one", &key_config(84)).unwrap();
    for _ in 0..3 {
        keys.archive_key("k-one", None).unwrap();
        keys.unarchive_key("k-one", None).unwrap();
    }
    let path = dir.path().join("encryption-keys/.audit/log");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let moved = lines.remove(4);
    lines.push(moved);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let cli = Manager::new(dir.path());
    let refused = cli.run(&["audit", "list", "--limit", "3", "--before-seq", "12"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused.stderr.contains(
            "its lines are out of order: the record of seq 14 is followed by the record of seq 5"
        ),
        "{refused:?}"
    );
    let listed = cli.json_or_error(&["audit", "list"]).unwrap();
    let listed = seqs_of(&serde_json::from_str(&listed).unwrap());
    assert_eq!(listed, [1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 5]);
    let verified = cli.run(&["audit", "verify"]);
    assert!(verified.stdout.contains("reordered"), "{verified:?}");
}
