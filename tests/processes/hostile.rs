//! Issue 14, "a hostile backup user": a worker process running as the
//! `backup` user swaps `encryption-keys/`, the lock files and the config
//! files of its config dir for symbolic links to a root-only directory and
//! back, over and over, while root creates, imports, archives and deletes
//! keys with the CLI, runs `verify --repair`, changes users, tokens and
//! ACLs, restores deleted keys from the trash, and the daemon serves
//! requests (and is started anew a few times).
//!
//! What the links lead to is poisoned: the root-only directory holds
//! versions of the files that would let root be caught reading through a
//! link (an `acl.cfg` granting carol's token Admin, a `token.shadow` with a
//! secret of mallory's token the test knows, a `shadow.json` with a
//! password for alice the test knows, a `user.cfg` where the disabled dave
//! is enabled, an `encryption-keys.cfg` with a key `planted-key`, a
//! `sync.cfg` with a job `planted-job`, another ticket signing key, another
//! key file under keeper's name). Probes ask for each all along, and none
//! may ever work.
//!
//! Afterwards: nothing in the root-only directory was created, changed,
//! chowned, chmodded or removed; no key bytes exist outside the key
//! directory; every key root stored (and did not try to delete) is there
//! and loads; `verify` reports the store as before or repairable; root's
//! files kept their owners and modes; the daemon still serves and stops on
//! SIGTERM. Nothing here waits for time: the run is bounded by the number
//! of root operations, and the attacker stops when its stdin is closed.
//!
//! The attacker swaps with `renameat2(RENAME_EXCHANGE)`, so a name is never
//! missing (root never sees a missing key directory and makes a new one),
//! and swaps a config file back while holding that file's lock, so it
//! never rolls back what root wrote meanwhile (a rollback is a different
//! attack: root's own older file under its name, which no check of owner
//! or type can tell from the current one).
//!
//! Deleted keys go to the trash (`encryption-keys/.trash/`), and root
//! restores some of them from there while the attack goes on; the trash
//! is part of the key directory for the key-bytes scan.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Error, bail, format_err};
use nix::fcntl::RenameFlags;

use pbs_api_types::Userid;
use pbs_keystore::auth_helpers::AuthKeys;
use pbs_test_kit::https;
use pbs_test_kit::privileges::run_as;
use pbs_test_kit::rng::Rng;
use pbs_test_kit::{Manager, Run};

use crate::daemon::request;
use crate::scene::{
    ALICE_PASSWORD, EXIT_ERROR, Scene, assert_tree_unchanged, backup_ids, files_holding_key_bytes,
    key_bytes_of, login_form, setup_access, start_daemon_with, try_start_daemon_with,
};
use crate::support::{assert_clean, assert_every_listed_key_loads, context};

/// What the attacker swaps: a name in the config dir, and the lock a root
/// writer of that file holds (the attacker holds it too to swap back).
const TARGETS: &[(&str, Option<&str>)] = &[
    ("encryption-keys", None),
    (".encryption-keys.lck", None),
    (".sync.lck", None),
    (".user.lck", None),
    (".acl.lck", None),
    ("token.shadow.lock", None),
    ("shadow.json.lock", None),
    ("encryption-keys.cfg", Some(".encryption-keys.lck")),
    ("sync.cfg", Some(".sync.lck")),
    ("user.cfg", Some(".user.lck")),
    ("acl.cfg", Some(".acl.lck")),
    ("token.shadow", Some("token.shadow.lock")),
    ("shadow.json", Some("shadow.json.lock")),
    ("authkey.key", None),
    ("authkey.pub", None),
    ("csrf.key", None),
    ("proxy.key", None),
    ("proxy.pem", None),
];

/// The attacker's link for target `index`, beside it in the config dir.
fn link_name(index: usize) -> String {
    format!("hostile-link-{index}")
}

/// Where the link of `name` points: the root-only directory itself for the
/// key directory, else the entry of that name in it.
fn link_target(root_only: &Path, name: &str) -> PathBuf {
    if name == "encryption-keys" {
        root_only.to_owned()
    } else {
        root_only.join(name)
    }
}

/// How often the attacker yields the CPU while a link is in place: root
/// gets the chance to run into it. Not a wait for anything: the
/// assertions hold however the two interleave.
const DWELL: usize = 64;

/// The worker `hostile DIR ROOT_ONLY SEED`, run as the `backup` user: makes
/// its links, prints `ready`, swaps targets in and out until its stdin is
/// closed, removes its links and prints how often it swapped each target
/// (JSON).
pub fn attacker(args: &[String]) -> Result<(), Error> {
    let [dir, root_only, seed] = args else {
        bail!("usage: hostile DIR ROOT_ONLY SEED");
    };
    let (dir, root_only) = (Path::new(dir), Path::new(root_only));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            stop.store(true, Ordering::SeqCst);
        });
    }
    for (index, (name, _)) in TARGETS.iter().enumerate() {
        let link = dir.join(link_name(index));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(link_target(root_only, name), &link)?;
    }
    println!("ready");
    std::io::stdout().flush()?;

    let mut rng = Rng(seed.parse::<u64>()? | 1);
    let mut swaps = vec![0u64; TARGETS.len()];
    let started = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        // a safety net for a parent that died, not a pace
        if started.elapsed() > Duration::from_secs(300) {
            bail!("still swapping after 300 s - the test that started this is gone?");
        }
        let index = rng.below(TARGETS.len() as u64) as usize;
        let (name, lock) = TARGETS[index];
        let (path, link) = (dir.join(name), dir.join(link_name(index)));
        if !exchange(&link, &path)? {
            continue; // not there (yet)
        }
        for _ in 0..DWELL {
            std::thread::yield_now();
        }
        swap_back(dir, &path, &link, &link_target(root_only, name), lock)?;
        swaps[index] += 1;
    }
    for index in 0..TARGETS.len() {
        std::fs::remove_file(dir.join(link_name(index)))?;
    }
    let per_target: BTreeMap<&str, u64> = TARGETS
        .iter()
        .zip(&swaps)
        .map(|((name, _), count)| (*name, *count))
        .collect();
    println!("{}", serde_json::to_string(&per_target)?);
    Ok(())
}

/// Exchanges two names atomically; `false` if either is missing.
fn exchange(a: &Path, b: &Path) -> Result<bool, Error> {
    match nix::fcntl::renameat2(None, a, None, b, RenameFlags::RENAME_EXCHANGE) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::ENOENT) => Ok(false),
        Err(err) => Err(format_err!("exchanging {a:?} and {b:?} - {err}")),
    }
}

/// Puts the real entry (now at `link`) back at `path`, and the link back
/// at `link`. Holds `lock` meanwhile, so no root writer is between reading
/// and replacing the file: if root replaced the link with a new file, that
/// file stays and the old one is dropped.
fn swap_back(
    dir: &Path,
    path: &Path,
    link: &Path,
    target: &Path,
    lock: Option<&str>,
) -> Result<(), Error> {
    let _lock = match lock {
        Some(lock) => {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(dir.join(lock))
                .map_err(|err| format_err!("opening lock {lock} - {err}"))?;
            file.lock()?;
            Some(file)
        }
        None => None,
    };
    let ours = std::fs::read_link(path).is_ok_and(|to| to == target);
    if ours {
        if !exchange(link, path)? {
            bail!("{path:?} or {link:?} vanished while swapped");
        }
    } else {
        // root wrote a new file over our link: keep it
        std::fs::remove_file(link)?;
        std::os::unix::fs::symlink(target, link)?;
    }
    Ok(())
}

/// A CLI run that must end within a minute (lock timeouts are 10 s).
fn run_cli(manager: &Manager, args: &[&str]) -> Run {
    let mut cmd = manager.command(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("run proxmox-backup-manager");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output().unwrap());
    });
    let output = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("{args:?} did not end within a minute")
        });
    waiter.join().unwrap();
    Run {
        code: output.status.code().expect("exit status, not a signal"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    }
}

/// What root's side saw.
#[derive(Default)]
struct Tally {
    /// Ids whose create or import succeeded, with the key bytes.
    stored: Vec<(String, Vec<u8>)>,
    /// Ids root tried to store (whatever the outcome).
    tried: BTreeSet<String>,
    /// Ids root tried to delete (whatever the outcome).
    delete_tried: BTreeSet<String>,
    /// Ids root restored from the trash.
    restored: BTreeSet<String>,
    /// Failures that named a symbolic link: root met a planted link.
    link_hits: usize,
    /// All failures.
    failures: usize,
    /// Operations run.
    operations: usize,
    /// Probes sent (requests that succeed only through a planted link).
    probes: usize,
}

impl Tally {
    /// Adds what another of root's threads saw.
    fn absorb(&mut self, part: Tally) {
        self.stored.extend(part.stored);
        self.tried.extend(part.tried);
        self.delete_tried.extend(part.delete_tried);
        self.restored.extend(part.restored);
        self.link_hits += part.link_hits;
        self.failures += part.failures;
        self.operations += part.operations;
        self.probes += part.probes;
    }

    /// Counts a CLI run, which must have ended cleanly: exit status 0, 1
    /// (verify found problems) or 255 with one `Error:` line.
    fn cli(&mut self, args: &[&str], run: &Run) {
        self.operations += 1;
        assert!(
            !run.stderr.contains("panicked"),
            "{args:?} panicked: {run:?}"
        );
        match run.code {
            0 | 1 => {}
            EXIT_ERROR => {
                self.failures += 1;
                let line = run.stderr.trim_end();
                assert!(
                    line.starts_with("Error: ") && line.lines().count() == 1,
                    "{args:?}: not one error line: {run:?}"
                );
                if line.contains("symbolic link") {
                    self.link_hits += 1;
                }
            }
            _ => panic!("{args:?}: exit status {}: {run:?}", run.code),
        }
    }

    /// Counts an API answer, which must have come, with an expected status.
    fn api(&mut self, what: &str, answer: Option<(u16, String)>) -> Option<String> {
        self.operations += 1;
        let (status, body) = answer.unwrap_or_else(|| panic!("{what}: no answer"));
        match status {
            200 => Some(body),
            400 | 404 | 500 => {
                self.failures += 1;
                if body.contains("symbolic link") {
                    self.link_hits += 1;
                }
                None
            }
            _ => panic!("{what}: unexpected {status}: {body}"),
        }
    }

    /// Counts a probe: a request that only a read through a planted link
    /// could answer with 200 (`ok` says whether a 200 is still fine).
    fn probe(&mut self, what: &str, answer: Option<(u16, String)>, ok: impl Fn(&str) -> bool) {
        self.probes += 1;
        let (status, body) = answer.unwrap_or_else(|| panic!("{what}: no answer"));
        assert!(
            status != 200 || ok(&body),
            "{what}: answered {status} - root read a planted link: {body}"
        );
    }
}

/// Secrets and names the probes use.
struct Probes {
    /// The token of the user running the workload.
    token: String,
    /// mallory's token with the secret only the planted `token.shadow` knows.
    mallory: String,
    /// carol's token, which only the planted `acl.cfg` grants anything.
    carol: String,
    /// dave's token: dave is disabled, except in the planted `user.cfg`.
    dave: String,
    /// A ticket of root@pam signed with the planted ticket signing key.
    forged_ticket: String,
}

/// alice's password in the planted `shadow.json` only.
const FORGED_PASSWORD: &str = "forged-pass-1";
/// mallory's secret in the planted `token.shadow` only.
const FORGED_SECRET: &str = "0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0";

/// The CLI's share: keys created, imported, archived and deleted, the
/// access files changed, `verify --repair` now and then.
fn cli_work(scene_dir: &Path, imports: &Path, rounds: usize) -> Tally {
    let manager = Manager::new(scene_dir);
    let mut tally = Tally::default();
    let mut deleted = Vec::new();
    for round in 0..rounds {
        let id = format!("cli-{round}");
        tally.tried.insert(id.clone());
        let create = ["encryption-key", "create", &id];
        let run = run_cli(&manager, &create);
        tally.cli(&create, &run);
        if run.code == 0 {
            tally.stored.push((id.clone(), key_bytes_of(&run.stdout)));
        }
        if round % 2 == 0 {
            let archive = ["encryption-key", "archive", &id];
            let run = run_cli(&manager, &archive);
            tally.cli(&archive, &run);
            if run.code == 0 {
                tally.delete_tried.insert(id.clone());
                let delete = ["encryption-key", "delete", &id];
                let run = run_cli(&manager, &delete);
                tally.cli(&delete, &run);
                if run.code == 0 {
                    deleted.push(id.clone());
                }
            }
        }
        if round % 3 == 0 {
            let imported = format!("imp-{round}");
            let file = imports.join(format!("{round}.enc"));
            let import = [
                "encryption-key",
                "import",
                &imported,
                "--file",
                file.to_str().unwrap(),
            ];
            tally.tried.insert(imported.clone());
            let run = run_cli(&manager, &import);
            tally.cli(&import, &run);
            if run.code == 0 {
                let json = std::fs::read_to_string(&file).unwrap();
                tally.stored.push((imported, key_bytes_of(&json)));
            }
        }
        let password = format!("bob-pass-{round}");
        let token = format!("tok{round}");
        let others: [&[&str]; 4] = [
            &["user", "passwd", "bob@pbs", "--password", &password],
            &["user", "generate-token", "bob@pbs", &token],
            &["acl", "update", "/system", "Audit", "--auth-id", "bob@pbs"],
            &["sync-job", "update", "job1", "--associated-key", "keeper"],
        ];
        let args = others[round % others.len()];
        let run = run_cli(&manager, args);
        tally.cli(args, &run);
        if round % 4 == 3 {
            let verify = ["encryption-key", "verify", "--repair"];
            let run = run_cli(&manager, &verify);
            tally.cli(&verify, &run);
        }
        // a key deleted a round or more ago back from the trash
        if round % 3 == 2
            && let Some(id) = deleted.pop()
        {
            let restore = ["encryption-key", "trash", "restore", &id];
            let run = run_cli(&manager, &restore);
            tally.cli(&restore, &run);
            if run.code == 0 {
                tally.restored.insert(id);
            }
        }
    }
    tally
}

/// The daemon's share: list, create, archive and delete through the API,
/// logins, and the probes.
fn api_work(port: u16, probes: &Probes, rounds: usize) -> Tally {
    let mut tally = Tally::default();
    let token = probes.token.as_str();
    let no_planted_key = |body: &str| !body.contains("planted-key");
    for round in 0..rounds {
        let list = request(port, token, "GET", "config/encryption-keys", None);
        if let Some(body) = tally.api("list", list) {
            assert!(no_planted_key(&body), "a planted config was read: {body}");
        }
        let id = format!("api-{round}");
        tally.tried.insert(id.clone());
        let form = format!("id={id}");
        let create = request(port, token, "POST", "config/encryption-keys", Some(&form));
        if let Some(body) = tally.api("create", create) {
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            let key = value["data"].to_string();
            tally.stored.push((id.clone(), key_bytes_of(&key)));
            if round % 2 == 0 {
                let path = format!("config/encryption-keys/{id}");
                let archive = request(port, token, "POST", &path, None);
                if tally.api("archive", archive).is_some() {
                    tally.delete_tried.insert(id.clone());
                    let delete = request(port, token, "DELETE", &path, None);
                    tally.api("delete", delete);
                }
            }
        }
        if round % 4 == 0 {
            let form = login_form("alice@pbs", ALICE_PASSWORD);
            let login = request(port, "", "POST", "access/ticket", Some(&form));
            tally.api("login", login);
        }

        // the probes: none of these may ever work
        {
            let answer = request(port, &probes.mallory, "GET", "version", None);
            tally.probe("mallory's planted secret", answer, |_| false);
            let answer = request(port, &probes.carol, "GET", "config/encryption-keys", None);
            tally.probe("carol's planted ACL", answer, |body| {
                body.contains("\"data\":[]")
            });
            let answer = request(port, &probes.dave, "GET", "version", None);
            tally.probe("dave enabled by a planted user.cfg", answer, |_| false);
            let form = login_form("alice@pbs", FORGED_PASSWORD);
            let answer = request(port, "", "POST", "access/ticket", Some(&form));
            tally.probe("alice's planted password", answer, |_| false);
        }
    }
    tally
}

/// Fresh daemons on the store under attack: each one starts, or refuses
/// to, naming what it refused; one that starts answers, refuses a ticket
/// signed with the planted signing key, and stops.
fn restart_work(dir: &Path, log: &Path, probes: &Probes, rounds: usize) -> Tally {
    let mut tally = Tally::default();
    for _ in 0..rounds {
        tally.operations += 1;
        match try_start_daemon_with(dir, log, DAEMON_ARGS) {
            Ok(daemon) => {
                let answer = request(daemon.port, &probes.token, "GET", "version", None);
                tally.api("version of a fresh daemon", answer);
                let cookie = format!("PBSAuthCookie={}", probes.forged_ticket);
                let answer =
                    https::once(daemon.port, "GET", "version", &[("Cookie", &cookie)], None)
                        .ok()
                        .map(|answer| (answer.status, answer.body().to_string()));
                tally.probe("a ticket of the planted signing key", answer, |_| false);
                let status = daemon
                    .terminate_within(Duration::from_secs(30))
                    .expect("a fresh daemon did not stop on SIGTERM");
                assert!(status.success(), "{status}");
            }
            Err(log) => {
                tally.failures += 1;
                assert!(
                    log.contains("refusing"),
                    "the daemon failed to start: {log}"
                );
                if log.contains("symbolic link") {
                    tally.link_hits += 1;
                }
            }
        }
    }
    tally
}

/// The daemons of this test count no failed logins: the probes fail on
/// purpose, all the time, and a throttled probe would prove nothing.
const DAEMON_ARGS: &[&str] = &["--max-auth-failures", "1000000000"];

/// A token `USER!tk` with a fresh secret, as `PBSAPIToken=USER!tk:SECRET`;
/// with `admin`, the user and the token get Admin on `/`.
fn token_of(manager: &Manager, user: &str, admin: bool) -> String {
    let run = manager.run(&[
        "--output-format",
        "json",
        "user",
        "generate-token",
        user,
        "tk",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let value: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let tokenid = format!("{user}!tk");
    if admin {
        for auth_id in [user, tokenid.as_str()] {
            let run = manager.run(&["acl", "update", "/", "Admin", "--auth-id", auth_id]);
            assert_eq!(run.code, 0, "{run:?}");
        }
    }
    format!("PBSAPIToken={tokenid}:{}", value["value"].as_str().unwrap())
}

/// Writes the JSON map `name` to the root-only directory with the hash of
/// `secret` under `entry`.
fn forge_secret(scene: &Scene, name: &str, entry: &str, secret: &str) {
    let text = std::fs::read_to_string(scene.path(name)).unwrap();
    let mut map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    map.insert(
        entry.into(),
        proxmox_sys::crypt::encrypt_pw(secret).unwrap().into(),
    );
    scene.root_file(name, serde_json::to_string(&map).unwrap().as_bytes());
}

/// Poisoned user.cfg (dave enabled), encryption-keys.cfg (keeper's key as
/// `planted-key`) and sync.cfg (`planted-job`) in the root-only directory.
fn poison_users_keys_and_jobs(scene: &Scene) {
    let read = |name: &str| std::fs::read_to_string(scene.path(name)).unwrap();
    let users = read("user.cfg");
    assert!(
        users.contains("user: dave@pbs\n\tenable false\n"),
        "{users}"
    );
    scene.root_file(
        "user.cfg",
        users
            .replace(
                "user: dave@pbs\n\tenable false\n",
                "user: dave@pbs\n\tenable true\n",
            )
            .as_bytes(),
    );
    let keys = read("encryption-keys.cfg");
    let keeper = keys
        .split("\n\n")
        .find(|section| section.starts_with("sync-key: keeper\n"))
        .expect("keeper's section");
    scene.root_file(
        "encryption-keys.cfg",
        format!(
            "{keys}\n{}\n",
            keeper
                .replace("sync-key: keeper", "sync-key: planted-key")
                .trim_end()
        )
        .as_bytes(),
    );
    scene.root_file(
        "sync.cfg",
        format!(
            "{}\nsync: planted-job\n\tremote-store r\n\tstore s\n",
            read("sync.cfg")
        )
        .as_bytes(),
    );
}

/// Fills the root-only directory with the poisoned versions of the config
/// dir's files (see the module docs); returns the probes.
fn poison(scene: &Scene, manager: &Manager, alice_token: &str) -> Probes {
    for (args, what) in [
        (&["user", "create", "carol@pbs"][..], "carol"),
        (&["user", "create", "dave@pbs", "--enable", "false"], "dave"),
        (&["user", "create", "mallory@pbs"], "mallory"),
    ] {
        let run = manager.run(args);
        assert_eq!(run.code, 0, "{what}: {run:?}");
    }
    let carol = token_of(manager, "carol@pbs", false);
    let dave = token_of(manager, "dave@pbs", true);
    token_of(manager, "mallory@pbs", true);
    let read = |name: &str| std::fs::read_to_string(scene.path(name)).unwrap();

    scene.root_file(
        "acl.cfg",
        format!("{}acl:1:/:carol@pbs,carol@pbs!tk:Admin\n", read("acl.cfg")).as_bytes(),
    );
    forge_secret(scene, "token.shadow", "mallory@pbs!tk", FORGED_SECRET);
    forge_secret(scene, "shadow.json", "alice", FORGED_PASSWORD);
    poison_users_keys_and_jobs(scene);
    // another ticket signing key, and a ticket of root@pam signed with it
    let signer = tempfile::tempdir().unwrap();
    let signer_dir = pbs_config::ConfigDir::new(signer.path()).unwrap();
    let keys = AuthKeys::load_or_generate(&signer_dir).unwrap();
    let forged_ticket = keys.create_ticket(&Userid::root_userid()).unwrap();
    scene.root_file(
        "authkey.key",
        &std::fs::read(signer.path().join("authkey.key")).unwrap(),
    );
    // the rest as they are: a read through the link is caught by the
    // snapshot only if it changes something there
    for name in ["authkey.pub", "csrf.key", "proxy.key", "proxy.pem"] {
        scene.root_file(name, read(name).as_bytes());
    }
    // another key under keeper's name
    scene.root_file(
        "keeper.enc",
        pbs_test_kit::key_config(77).to_json().unwrap().as_bytes(),
    );
    Probes {
        token: alice_token.to_string(),
        mallory: format!("PBSAPIToken=mallory@pbs!tk:{FORGED_SECRET}"),
        carol,
        dave,
        forged_ticket,
    }
}

/// Root files and their owner, group and mode after the run.
fn assert_owners(dir: &Path) {
    let (backup, backup_gid) = backup_ids();
    let (backup, backup_gid) = (backup.as_raw(), backup_gid.as_raw());
    for (name, owner) in [
        ("encryption-keys", (0, backup_gid, 0o750)),
        ("encryption-keys.cfg", (0, backup_gid, 0o640)),
        ("sync.cfg", (0, backup_gid, 0o640)),
        ("user.cfg", (0, backup_gid, 0o640)),
        ("acl.cfg", (0, backup_gid, 0o640)),
        ("token.shadow", (backup, backup_gid, 0o640)),
        ("shadow.json", (0, 0, 0o600)),
        ("authkey.key", (0, 0, 0o600)),
        ("csrf.key", (0, backup_gid, 0o640)),
        ("proxy.key", (0, backup_gid, 0o640)),
        (".encryption-keys.lck", (backup, backup_gid, 0o660)),
        (".acl.lck", (backup, backup_gid, 0o660)),
    ] {
        let meta = std::fs::symlink_metadata(dir.join(name)).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            owner,
            "owner, group and mode of {name}"
        );
    }
}

/// The attacker: a copy of this binary that backup may run, swapping
/// names until its stdin closes.
struct Attacker {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
    /// The copy of this binary it runs.
    exe: PathBuf,
}

impl Attacker {
    /// Starts it as the backup user and waits for its readiness line.
    fn start(scene: &Scene) -> Self {
        let exe = scene.tmp.path().join("worker");
        pbs_test_kit::bins::copy_executable(&std::env::current_exe().unwrap(), &exe);
        let mut cmd = Command::new(&exe);
        cmd.args(["__worker", "hostile"])
            .arg(&scene.dir)
            .arg(&scene.root_only)
            .arg("14")
            .env_remove("PBS_FAILPOINT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (uid, gid) = backup_ids();
        run_as(&mut cmd, uid, gid);
        let mut child = cmd.spawn().expect("start the attacker");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the attacker did not start");
        Self { child, out, exe }
    }

    /// Stops it (its links gone, every name back in place); it must exit
    /// cleanly. Returns its swap counts by name.
    fn stop(mut self) -> BTreeMap<String, u64> {
        drop(self.child.stdin.take());
        let mut stats = String::new();
        self.out.read_to_string(&mut stats).unwrap();
        let status = self.child.wait().unwrap();
        let mut errors = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut errors)
            .unwrap();
        assert!(status.success(), "the attacker failed: {errors}");
        serde_json::from_str(stats.trim()).unwrap()
    }
}

/// Writes the 64 key files root's CLI work imports into `dir`; their key
/// bytes.
fn write_import_files(dir: &Path) -> Vec<Vec<u8>> {
    (0..64u64)
        .map(|round| {
            let json = pbs_test_kit::key_config(1000 + round).to_json().unwrap();
            std::fs::write(dir.join(format!("{round}.enc")), &json).unwrap();
            key_bytes_of(&json)
        })
        .collect()
}

/// The test: see the module docs.
pub fn root_works_while_backup_swaps_names() {
    let Some(scene) = Scene::new() else {
        return;
    };
    let start = Instant::now();
    // a store as a running system has it
    let manager = Manager::new(&scene.dir);
    let mut initial = Vec::new();
    for id in ["keeper", "spare"] {
        let run = manager.run(&["encryption-key", "create", id]);
        assert_eq!(run.code, 0, "{run:?}");
        initial.push((id.to_string(), key_bytes_of(&run.stdout)));
    }
    let access = setup_access(&scene);
    scene.sync_job();
    for args in [
        &["sync-job", "update", "job1", "--associated-key", "keeper"][..],
        &["user", "create", "bob@pbs", "--password", "bob-pass-0"],
    ] {
        let run = manager.run(args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
    }
    let daemon = start_daemon_with(
        &scene.dir,
        &scene.tmp.path().join("daemon.log"),
        DAEMON_ARGS,
    );
    // key files to import, outside the scanned tree
    let imports = tempfile::tempdir().unwrap();
    let import_keys = write_import_files(imports.path());
    // the root-only directory: what each link leads to (no lock files: a
    // locker that followed a link would create them), and a subdirectory
    let probes = poison(&scene, &manager, &access.token_auth);
    std::fs::create_dir(scene.root_only.join("sub")).unwrap();
    scene.root_file("sub/secret", b"root only\n");
    let before = scene.root_only_snapshot();

    let attacker = Attacker::start(&scene);

    // root's work, all at once
    let port = daemon.port;
    let tally = std::thread::scope(|scope| {
        let cli = scope.spawn(|| cli_work(&scene.dir, imports.path(), 20));
        let api = scope.spawn(|| api_work(port, &probes, 16));
        let restarts = scope.spawn(|| {
            restart_work(
                &scene.dir,
                &scene.tmp.path().join("restart.log"),
                &probes,
                6,
            )
        });
        let mut tally = Tally::default();
        for part in [cli.join(), api.join(), restarts.join()] {
            tally.absorb(part.unwrap());
        }
        tally
    });

    let exe = attacker.exe.clone();
    let swaps = attacker.stop();
    let total: u64 = swaps.values().sum();

    // nothing in the root-only directory changed
    assert_tree_unchanged(&before, &scene.root_only_snapshot(), "after the attack");

    assert_no_key_bytes_outside_the_key_dir(&scene, &initial, &tally, &import_keys, &exe);
    let findings = assert_the_store_is_as_root_left_it(&scene, &initial, &tally);

    // the daemon still serves, and stops
    let (status, body) =
        request(daemon.port, &access.token_auth, "GET", "version", None).expect("an answer");
    assert_eq!(status, 200, "{body}");
    let status = daemon
        .terminate_within(Duration::from_secs(30))
        .expect("the daemon did not stop on SIGTERM");
    assert!(status.success(), "{status}");

    println!(
        "    {} root operations ({} failed, {} of them on a planted link), {} restored from \
         the trash, {} probes, {total} swaps, {findings} finding(s) repaired, {:.1} s",
        tally.operations,
        tally.failures,
        tally.link_hits,
        tally.restored.len(),
        tally.probes,
        start.elapsed().as_secs_f64()
    );
    assert!(
        tally.link_hits > 0,
        "root never met a planted link: the attack did not reach it ({swaps:?})"
    );
}

/// No key bytes outside the key directory (the root-only directory holds a
/// copy of keeper's key file of its own, checked unchanged before; `exe`,
/// the attacker, holds none but is left out as a binary).
fn assert_no_key_bytes_outside_the_key_dir(
    scene: &Scene,
    initial: &[(String, Vec<u8>)],
    tally: &Tally,
    import_keys: &[Vec<u8>],
    exe: &Path,
) {
    let key_dir = scene.path("encryption-keys");
    let mut all_keys: Vec<Vec<u8>> = initial.iter().map(|(_, key)| key.clone()).collect();
    all_keys.extend(tally.stored.iter().map(|(_, key)| key.clone()));
    all_keys.extend_from_slice(import_keys);
    let trash = key_dir.join(pbs_config::files::TRASH_DIR_NAME);
    let leaked = files_holding_key_bytes(scene.tmp.path(), &all_keys, |path| {
        path.starts_with(&scene.root_only)
            || (path.parent() == Some(key_dir.as_path())
                && path.extension().is_some_and(|ext| ext == "enc"))
            || path.starts_with(&trash)
            || path == exe
    });
    assert!(
        leaked.is_empty(),
        "key bytes outside the key dir: {leaked:?}"
    );
}

/// The store: as root left it, or repairable; every key root stored is
/// there unless a delete was tried, nothing root never stored, owners
/// right, no planted job written back. The number of findings repaired.
fn assert_the_store_is_as_root_left_it(
    scene: &Scene,
    initial: &[(String, Vec<u8>)],
    tally: &Tally,
) -> usize {
    let config = context(&scene.dir);
    let report = config.verify(false).unwrap();
    for finding in &report.findings {
        assert!(
            finding.kind.is_repairable(),
            "not repairable after the attack: {:#?}",
            report.findings
        );
    }
    assert_clean(&config.verify(true).unwrap(), "after the repair");
    assert_every_listed_key_loads(&config);
    let (list, _) = config.encryption_keys().list_keys(true).unwrap();
    let listed: BTreeSet<String> = list.into_iter().map(|key| key.id).collect();
    for (id, _) in initial.iter().chain(&tally.stored) {
        if !tally.delete_tried.contains(id) || tally.restored.contains(id) {
            assert!(listed.contains(id), "'{id}' was stored and is gone");
        }
    }
    for id in &listed {
        assert!(
            tally.tried.contains(id) || initial.iter().any(|(i, _)| i == id),
            "'{id}' listed, but root never stored it"
        );
    }
    assert_owners(&scene.dir);
    let jobs = std::fs::read_to_string(scene.path("sync.cfg")).unwrap();
    assert!(
        !jobs.contains("planted-job"),
        "a planted sync.cfg was written back: {jobs}"
    );
    report.findings.len()
}
