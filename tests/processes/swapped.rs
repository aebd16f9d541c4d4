//! A key file swapped by someone else between a store's rename of it to its
//! name and its check of that name (after the one sync of the key
//! directory): the kernel hands the child's `fsync` of the key directory
//! to a thread of this test (`refusals::swap_at_dir_sync`), which renames
//! a planted file over the key file's name before letting the sync go
//! through. That store fails alone, naming its own key file; the config
//! does not list it; the other stores of its batch are stored; the file
//! found at the name is left as it is (it may be key material too); and
//! the log holds the store's intent with its failed outcome.
//!
//! Real processes: a lone store (a batch of one) by the CLI, and a batch of
//! four by the threads of a worker, formed by a condition polled, never by
//! time.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Error, bail};
use serde_json::{Value, json};

use pbs_config::ConfigDir;
use pbs_config::audit::{Phase, Record};
use pbs_config::verify::FindingKind;
use pbs_test_kit::{Manager, Sandbox, key_config, refusals};

use crate::support::{assert_error, audit_records, audit_verify, context, worker};

/// What the error of a store whose key file was swapped says.
const REPLACED: &str = "replaced by someone else";

/// The key the planted file holds: key material of someone else's.
const PLANTED_SEED: u64 = 900;

/// How long the worker's stores wait for the config lock this test holds
/// while they queue: far longer than they need, so only a hang fails.
const LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// The key stored under the `index`-th id of [`ordered_batch`].
fn seeded_key(index: usize) -> pbs_key_config::KeyConfig {
    key_config(200 + index as u64)
}

/// `ordered-batch DIR ID...`: stores the key of [`seeded_key`] under each
/// ID, each on a thread of its own, while the parent holds the config lock.
/// The first two IDs are asked first: one leads a batch of itself alone
/// (it waits for the lock), the other waits first for the next batch; then
/// the other IDs join that batch one by one, in their order. Once all but
/// the lone store wait, prints `queued N` (the parent then lets the lock
/// go), and at the end one JSON line per ID, in order.
pub fn ordered_batch(args: &[String]) -> Result<(), Error> {
    let [dir, ids @ ..] = args else {
        bail!("usage: ordered-batch DIR ID...");
    };
    if ids.len() < 2 {
        bail!("ordered-batch needs two leading ids");
    }
    let dir = ConfigDir::new(dir)?.lock_timeout(LOCK_TIMEOUT);
    let deadline = Instant::now() + LOCK_TIMEOUT;
    // the queue is seen only in this process: a condition polled, no time
    // assumed; should a store give up, the count printed says so
    let wait_for = |count: usize| {
        while dir.new_key_stores_waiting() < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    let results = std::thread::scope(|scope| {
        let store = |index: usize| {
            let dir = &dir;
            let id = ids[index].as_str();
            scope.spawn(move || {
                dir.encryption_keys()
                    .store_key(id, &seeded_key(index))
                    .map(|_| ())
            })
        };
        let mut threads = vec![store(0), store(1)];
        wait_for(1);
        for index in 2..ids.len() {
            threads.push(store(index));
            wait_for(index);
        }
        println!("queued {}", dir.new_key_stores_waiting());
        threads
            .into_iter()
            .map(|thread| thread.join().expect("a store thread panicked"))
            .collect::<Vec<_>>()
    });
    let mut failed = 0;
    for (id, result) in ids.iter().zip(&results) {
        let error = result.as_ref().err().map(|err| format!("{err:#}"));
        failed += usize::from(error.is_some());
        println!("{}", json!({"id": id, "error": error}));
    }
    if failed > 0 {
        bail!("{failed} of {} stores failed", ids.len());
    }
    Ok(())
}

/// A store whose key file is swapped, set up: a config dir with the key
/// `bystander` stored (so the key directory and the log exist), and beside
/// it the planted file, someone else's key file.
struct Scene {
    sandbox: Sandbox,
    planted_bytes: Vec<u8>,
    /// The planted file's inode: the file found at the name afterwards
    /// must be that very file, not a copy.
    planted_ino: u64,
}

impl Scene {
    fn new() -> Self {
        let sandbox = Sandbox::new();
        context(sandbox.config_dir())
            .encryption_keys()
            .store_key("bystander", &key_config(1))
            .unwrap();
        let planted_bytes = key_config(PLANTED_SEED).to_json().unwrap().into_bytes();
        std::fs::write(sandbox.file("planted.enc"), &planted_bytes).unwrap();
        let planted_ino = std::fs::metadata(sandbox.file("planted.enc"))
            .unwrap()
            .ino();
        Self {
            sandbox,
            planted_bytes,
            planted_ino,
        }
    }

    fn dir(&self) -> &Path {
        self.sandbox.config_dir()
    }

    fn planted(&self) -> PathBuf {
        self.sandbox.file("planted.enc")
    }

    fn key_dir(&self) -> PathBuf {
        context(self.dir()).encryption_keys().key_dir()
    }

    /// The `ordered-batch` worker storing `ids` while this process holds
    /// the config lock until they queue, the key file of `swapped` swapped
    /// at the first sync of the key directory that finds it: its output
    /// after `queued 4`, and its stderr. It must fail (a store failed).
    fn run_ordered_batch(&self, ids: &[&str], swapped: &str) -> (String, String) {
        let lock = context(self.dir()).encryption_keys().lock_config().unwrap();
        let mut cmd = worker("ordered-batch");
        cmd.arg(self.dir())
            .args(ids)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let swaps = refusals::swap_at_dir_sync(
            &mut cmd,
            &self.key_dir(),
            &format!("{swapped}.enc"),
            &self.planted(),
        );
        let mut child = cmd.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "queued 4", "the stores did not queue as asked");
        // the lone store takes its turn, then the batch
        drop(lock);
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            swaps.count(),
            1,
            "the key file was never swapped: {rest}{stderr}"
        );
        assert!(!status.success(), "{status:?}: {rest}{stderr}");
        (rest, stderr)
    }

    /// After the store of `swapped` failed and those of `stored` were made
    /// (`what`): the store and the log show exactly that. See the module
    /// docs.
    #[track_caller]
    fn assert_swapped_alone(
        &self,
        swapped: &str,
        stored: &[(&str, u64)],
        before: usize,
        what: &str,
    ) {
        let config = context(self.dir());
        let keys = config.encryption_keys();

        // the file found at the name is the planted one, as it was
        let at_name = keys.key_dir().join(format!("{swapped}.enc"));
        let meta = std::fs::symlink_metadata(&at_name)
            .unwrap_or_else(|err| panic!("{what}: {at_name:?} - {err}"));
        assert_eq!(meta.ino(), self.planted_ino, "{what}: not the planted file");
        assert_eq!(
            std::fs::read(&at_name).unwrap(),
            self.planted_bytes,
            "{what}: the planted file was changed"
        );

        // the config does not list the swapped key; every other loads
        let cfg = std::fs::read_to_string(keys.config_path()).unwrap();
        assert!(!cfg.contains(swapped), "{what}: listed:\n{cfg}");
        let (list, _) = keys.list_keys(true).unwrap();
        let mut listed: Vec<&str> = list.iter().map(|key| key.id.as_str()).collect();
        listed.sort_unstable();
        let mut expected: Vec<&str> = stored.iter().map(|(id, _)| *id).collect();
        expected.push("bystander");
        expected.sort_unstable();
        assert_eq!(listed, expected, "{what}");
        for (id, seed) in stored.iter().copied().chain([("bystander", 1)]) {
            let loaded = keys.load_key_config(id, false).unwrap();
            assert_eq!(
                loaded.fingerprint,
                key_config(seed).fingerprint,
                "{what}: {id} holds another key"
            );
        }

        // `verify` finds the planted file at the name, and nothing else
        // (no temp file, no stale lock file); nothing went into the trash
        let report = config.verify(false).unwrap();
        let findings: Vec<_> = report
            .findings
            .iter()
            .map(|f| (f.kind, f.id.as_deref()))
            .collect();
        assert_eq!(
            findings,
            [(FindingKind::OrphanKeyFile, Some(swapped))],
            "{what}: {:#?}",
            report.findings
        );
        let trash = keys.trash().list().unwrap();
        assert!(
            trash.entries.is_empty() && trash.incomplete.is_empty(),
            "{what}: {trash:?}"
        );

        // the log verifies, every intent has its outcome, and the swapped
        // store's outcome is its failure
        let audit = audit_verify(&config, false);
        assert!(
            audit.is_clean() && audit.unfinished.is_empty(),
            "{what}: {audit:#?}"
        );
        let records = audit_records(self.dir());
        let new = &records[before..];
        let of = |id: &str| -> Vec<&Record> {
            new.iter().filter(|r| r.ids == [id.to_string()]).collect()
        };
        let [intent, outcome] = of(swapped)[..] else {
            panic!("{what}: not one intent and outcome of {swapped}: {new:#?}");
        };
        assert_eq!(intent.phase, Phase::Intent, "{what}: {new:#?}");
        assert_eq!(outcome.intent, Some(intent.seq), "{what}: {new:#?}");
        let result = outcome.result.as_deref().unwrap_or_default();
        assert!(
            !outcome.took_effect() && result.contains(REPLACED),
            "{what}: the outcome is not the failure: {outcome:#?}"
        );
        for (id, _) in stored {
            let [intent, outcome] = of(id)[..] else {
                panic!("{what}: not one intent and outcome of {id}: {new:#?}");
            };
            assert_eq!(outcome.intent, Some(intent.seq), "{what}: {new:#?}");
            assert!(outcome.took_effect(), "{what}: {outcome:#?}");
        }
    }
}

/// A lone store by the CLI (a batch of one): the key file swapped after
/// its rename, before the check of its name. The import fails naming its
/// key file; see the module docs for the rest.
pub fn a_key_file_swapped_before_its_check_fails_the_lone_store() {
    refusals::assert_seccomp_works();
    let scene = Scene::new();
    let import = scene.sandbox.file("import.json");
    std::fs::write(&import, key_config(2).to_json().unwrap()).unwrap();
    let before = audit_records(scene.dir()).len();

    let args = [
        "encryption-key",
        "import",
        "lone",
        "--file",
        import.to_str().unwrap(),
    ];
    let mut cmd = Manager::new(scene.dir()).command(&args);
    let swaps =
        refusals::swap_at_dir_sync(&mut cmd, &scene.key_dir(), "lone.enc", &scene.planted());
    let run = Manager::run_command(cmd, None);
    assert_eq!(swaps.count(), 1, "the key file was never swapped: {run:?}");
    assert_error(&run, "the lone store", &["lone.enc", REPLACED]);

    scene.assert_swapped_alone("lone", &[], before, "the lone store");
}

/// A batch of four stores by the threads of one worker, the key file of
/// the third swapped after its rename, before the check of its name: that
/// store alone fails, its error naming its own key file and no other key;
/// the others of the batch, and the lone store before it, are stored.
pub fn a_key_file_swapped_in_a_batch_fails_that_key_alone() {
    refusals::assert_seccomp_works();
    let scene = Scene::new();
    let before = audit_records(scene.dir()).len();
    // the first two lead (one alone, one first in the batch); the others
    // join the batch in order, so `batch-1` is the third of a batch of four
    let ids = ["lead-a", "lead-b", "batch-0", "batch-1", "batch-2"];
    let swapped = "batch-1";

    let (rest, stderr) = scene.run_ordered_batch(&ids, swapped);
    assert!(stderr.contains("1 of 5 stores failed"), "{stderr}");
    assert_only_swapped_failed(&rest, &ids, swapped);

    // the log shows the lone store, then one batch of four: their intents
    // in a row, then their outcomes (one turn of the config lock)
    let phases: Vec<Phase> = audit_records(scene.dir())[before..]
        .iter()
        .map(|r| r.phase)
        .collect();
    let (intent, outcome) = (Phase::Intent, Phase::Outcome);
    assert_eq!(
        phases,
        [
            intent, outcome, intent, intent, intent, intent, outcome, outcome, outcome, outcome
        ],
        "not a lone store and a batch of four"
    );

    let stored: Vec<(&str, u64)> = ids
        .iter()
        .enumerate()
        .filter(|(_, id)| **id != swapped)
        .map(|(index, id)| (*id, 200 + index as u64))
        .collect();
    scene.assert_swapped_alone(swapped, &stored, before, "the batch");
}

/// The worker's answers (`rest`, one JSON line per id of `ids`, in order):
/// only `swapped` failed, its error naming its own key file as replaced,
/// and no other key.
#[track_caller]
fn assert_only_swapped_failed(rest: &str, ids: &[&str], swapped: &str) {
    let answers: Vec<Value> = rest
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(answers.len(), ids.len(), "{rest}");
    for (id, answer) in ids.iter().zip(&answers) {
        assert_eq!(answer["id"], *id, "{rest}");
        let error = answer["error"].as_str();
        if *id != swapped {
            assert_eq!(error, None, "{id}: {rest}");
            continue;
        }
        let error = error.unwrap_or_else(|| panic!("{id} was stored: {rest}"));
        assert!(
            error.contains(&format!("{swapped}.enc")) && error.contains(REPLACED),
            "{error}"
        );
        for other in ids.iter().chain(&["bystander"]).filter(|o| *o != id) {
            assert!(
                !error.contains(other),
                "{id}'s error names {other}: {error}"
            );
        }
    }
}
