//! `encryption-key rotate` with real processes (issue 18): SIGKILL at every
//! step of a rotation and of its abort, then the same command again; and
//! several rotations of the same jobs at once.
//!
//! The rotation here is the whole plan: two jobs that share `key0`, an
//! export of the new key to a file with a passphrase, and `--archive-old`,
//! so that every crash point of [`ROTATE_POINTS`] is passed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use pbs_api_types::Fingerprint;
use pbs_config::ConfigDir;
use pbs_config::audit::{AuditLog, Filter, Phase, VerifyOptions};
use pbs_config::failpoint::ROTATE_POINTS;
use pbs_config::trash::TrashReason;

use pbs_test_kit::manager::sync_job_args;
use pbs_test_kit::{Manager, key_config};

use crate::support::{assert_clean, context, run_killed_at};

/// The jobs rotated together.
const JOBS: [&str; 2] = ["job1", "job2"];
/// The new key's id.
const NEW: &str = "key-new";

/// A config dir with `bystander`, `key0` and [`JOBS`] on `key0`, and
/// beside it a passphrase file and the place of the export.
struct Scene {
    _tmp: tempfile::TempDir,
    manager: Manager,
    passphrase: PathBuf,
    export: PathBuf,
    old: Fingerprint,
}

impl Scene {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("config");
        std::fs::create_dir(&dir).unwrap();
        let config = context(&dir);
        let keys = config.encryption_keys();
        keys.store_key("bystander", &key_config(1)).unwrap();
        let old = key_config(2);
        keys.store_key("key0", &old).unwrap();
        let manager = Manager::new(&dir);
        for job in JOBS {
            let push = [
                "--sync-direction",
                "push",
                "--active-encryption-key",
                "key0",
            ];
            let run = manager.run(&sync_job_args(job, "pbs2", "store2", &push));
            assert_eq!(run.code, 0, "{run:?}");
        }
        let passphrase = tmp.path().join("passphrase");
        std::fs::write(&passphrase, "rotation export passphrase\n").unwrap();
        let export = tmp.path().join("key-new.pbsexport");
        Self {
            _tmp: tmp,
            manager,
            passphrase,
            export,
            old: old.fingerprint.unwrap(),
        }
    }

    fn dir(&self) -> &Path {
        self.manager.dir()
    }

    fn config(&self) -> ConfigDir {
        context(self.dir())
    }

    /// The whole rotation's command line.
    fn rotate_args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["encryption-key", "rotate"].map(String::from).to_vec();
        for job in JOBS {
            args.extend(["--job".to_string(), job.to_string()]);
        }
        args.extend([
            "--new-id".to_string(),
            NEW.to_string(),
            "--export-file".to_string(),
            self.export.display().to_string(),
            "--passphrase-file".to_string(),
            self.passphrase.display().to_string(),
            "--archive-old".to_string(),
        ]);
        args
    }

    fn command(&self, args: &[String]) -> Command {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.manager.command(&args)
    }

    /// Runs `args` with `$PBS_FAILPOINT` = `point`: it must die there.
    fn killed_at(&self, args: &[String], point: &str) {
        run_killed_at(self.command(args), point);
    }

    /// Runs `args` to its end: (exit code, stdout, stderr).
    fn run(&self, args: &[String]) -> (i32, String, String) {
        let output = self.command(args).output().unwrap();
        (
            output.status.code().expect("an exit, not a signal"),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// `(active key, associated keys)` of `job`.
    fn job(&self, job: &str) -> (Option<String>, Vec<String>) {
        let jobs = self.config().sync_jobs().list_jobs().unwrap();
        let job = jobs.into_iter().find(|j| j.id == job).unwrap();
        (
            job.active_encryption_key,
            job.associated_key.unwrap_or_default(),
        )
    }

    /// The keys in the store: `(id, fingerprint, archived)`, by id.
    fn keys(&self) -> Vec<(String, Fingerprint, bool)> {
        let (list, _) = self.config().encryption_keys().list_keys(true).unwrap();
        let mut keys: Vec<_> = list
            .into_iter()
            .map(|key| {
                (
                    key.id.clone(),
                    key.info.fingerprint.unwrap(),
                    key.archived_at.is_some(),
                )
            })
            .collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys
    }

    /// The trash: `(fingerprint, reason)` of each entry.
    fn trash(&self) -> Vec<(Option<Fingerprint>, TrashReason)> {
        let listing = self.config().encryption_keys().trash().list().unwrap();
        assert!(listing.incomplete.is_empty(), "{listing:?}");
        listing
            .entries
            .into_iter()
            .map(|entry| (entry.record.fingerprint, entry.record.reason))
            .collect()
    }

    /// The ops of the rotation's outcome records, in log order, each with
    /// its result.
    fn rotate_outcomes(&self) -> Vec<(String, String)> {
        let config = self.config();
        let log = AuditLog::open_store(&config).unwrap().syslog_socket(None);
        log.list(&Filter {
            phase: Some(Phase::Outcome),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .filter(|record| record.op.starts_with("rotate"))
        .map(|record| (record.op, record.result.unwrap_or_default()))
        .collect()
    }

    /// `verify` and `audit verify` are clean, no rotation is in progress.
    fn assert_settled(&self, context: &str) {
        let config = self.config();
        assert_clean(&config.verify(false).unwrap(), context);
        let log = AuditLog::open_store(&config).unwrap().syslog_socket(None);
        let report = log.verify(&VerifyOptions::default()).unwrap();
        assert!(report.is_clean(), "{context}: {report:#?}");
        assert_eq!(config.rotations().list().unwrap(), [], "{context}");
    }

    /// The state of a finished rotation.
    fn assert_rotated(&self, context: &str) {
        for job in JOBS {
            assert_eq!(
                self.job(job),
                (Some(NEW.to_string()), vec!["key0".to_string()]),
                "{context}: {job}"
            );
        }
        let keys = self.keys();
        let ids: Vec<(&str, bool)> = keys.iter().map(|k| (k.0.as_str(), k.2)).collect();
        // exactly one new key; the old one archived, never gone
        assert_eq!(
            ids,
            [("bystander", false), ("key-new", false), ("key0", true)],
            "{context}"
        );
        assert_eq!(keys[2].1, self.old, "{context}: key0 swapped");
        assert_eq!(self.trash(), [], "{context}: a key in the trash");
        // the export holds the new key and opens with the passphrase
        let verified = self.run(&[
            "--output-format".into(),
            "json".into(),
            "encryption-key".into(),
            "export-verify".into(),
            self.export.display().to_string(),
            "--passphrase-file".into(),
            self.passphrase.display().to_string(),
        ]);
        assert_eq!(verified.0, 0, "{context}: export-verify {verified:?}");
        let answer: serde_json::Value = serde_json::from_str(&verified.1).unwrap();
        let exported: Vec<&str> = answer["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["id"].as_str().unwrap())
            .collect();
        assert_eq!(exported, [NEW], "{context}: {answer}");
        assert_eq!(
            answer["keys"][0]["fingerprint"],
            keys[1].1.signature(),
            "{context}: the export holds another key than the store"
        );
        // the old key is needed: its delete is refused with the job names
        let delete = self.run(&["encryption-key".into(), "delete".into(), "key0".into()]);
        assert_eq!(delete.0, 255, "{context}: {delete:?}");
        assert!(
            delete.2.contains("'job1'") && delete.2.contains("'job2'"),
            "{context}: {delete:?}"
        );
        self.assert_settled(context);
    }

    /// The state before any rotation: both jobs on `key0`, nothing
    /// associated, `key0` active.
    fn assert_untouched(&self, context: &str) {
        for job in JOBS {
            assert_eq!(
                self.job(job),
                (Some("key0".to_string()), vec![]),
                "{context}: {job}"
            );
        }
        let ids: Vec<(String, bool)> = self.keys().into_iter().map(|k| (k.0, k.2)).collect();
        assert_eq!(
            ids,
            [
                ("bystander".to_string(), false),
                ("key0".to_string(), false)
            ],
            "{context}"
        );
        self.assert_settled(context);
    }
}

/// The outcomes a whole rotation records, in order, whatever crashed.
const STORY: [&str; 7] = [
    "rotate-plan",
    "rotate-store-key",
    "rotate-prove-export",
    "rotate-switch-job",
    "rotate-switch-job",
    "rotate-archive-old-key",
    "rotate-finish",
];

/// SIGKILL at every crash point of a rotation, then the same command
/// again: it ends as a rotation that never crashed (exactly one new key,
/// the jobs on it, the old key associated and archived, the export proven
/// and readable), `verify` and `audit verify` clean, and the log tells each
/// step once, in order.
pub fn sigkill_at_every_step_then_the_same_command_again() {
    assert!(pbs_config::failpoint::enabled());
    for point in ROTATE_POINTS.iter().filter(|p| p.starts_with("rotate:")) {
        let scene = Scene::new();
        let args = scene.rotate_args();
        scene.killed_at(&args, point);
        let (code, stdout, stderr) = scene.run(&args);
        assert_eq!(code, 0, "{point}: {stdout}{stderr}");
        let expected = match *point {
            // the journal is gone: the same command finds the jobs on the
            // new key and does nothing
            "rotate:journal-removed" => "nothing done",
            _ => "resumed the rotation",
        };
        assert!(stdout.contains(expected), "{point}: {stdout}");
        scene.assert_rotated(point);
        let story = scene.rotate_outcomes();
        let ops: Vec<&str> = story.iter().map(|(op, _)| op.as_str()).collect();
        assert_eq!(ops, STORY, "{point}");
        assert!(
            story.iter().all(|(_, result)| result == "ok"),
            "{point}: {story:?}"
        );
        println!(
            "    crash point {point}: resumed, one new key, {} records",
            ops.len()
        );
    }
}

/// SIGKILL at every crash point before the jobs switch, then `--abort`:
/// the old state again (jobs on `key0`, nothing associated, `key0`
/// active), the new key in the trash (reason rotate-abort) if it was made,
/// never in the store. At the points after the switch the abort is
/// refused and says why; the same command then finishes the rotation.
pub fn sigkill_then_abort_at_every_step() {
    assert!(pbs_config::failpoint::enabled());
    let switched = ROTATE_POINTS
        .iter()
        .position(|p| *p == "rotate:jobs-switched")
        .unwrap();
    let abort = ["encryption-key", "rotate", "--job", "job2", "--abort"].map(String::from);
    for (index, point) in ROTATE_POINTS
        .iter()
        .enumerate()
        .filter(|(_, p)| p.starts_with("rotate:"))
    {
        let scene = Scene::new();
        let args = scene.rotate_args();
        scene.killed_at(&args, point);
        let journal = scene.config().rotations().status("job1").unwrap();
        if index >= switched {
            let (code, _, stderr) = scene.run(&abort);
            if *point == "rotate:journal-removed" {
                assert!(journal.is_none(), "{point}");
                assert!(
                    stderr.contains("no rotation of sync job 'job2' is in progress"),
                    "{point}: {stderr}"
                );
            } else {
                assert!(
                    stderr.contains("encrypt with the new key 'key-new' already"),
                    "{point}: {stderr}"
                );
            }
            assert_eq!(code, 255, "{point}");
            assert_eq!(scene.run(&args).0, 0, "{point}");
            scene.assert_rotated(point);
            println!("    crash point {point}: abort refused, rotation finished");
            continue;
        }
        let journal = journal.unwrap_or_else(|| panic!("{point}: no journal"));
        let made = scene.keys().iter().any(|k| k.0 == NEW);
        let (code, stdout, stderr) = scene.run(&abort);
        assert_eq!(code, 0, "{point}: {stdout}{stderr}");
        assert!(stdout.contains("aborted the rotation"), "{point}: {stdout}");
        scene.assert_untouched(point);
        let trash = scene.trash();
        if made {
            assert_eq!(
                trash,
                [(journal.new_fingerprint, TrashReason::RotateAbort)],
                "{point}"
            );
        } else {
            assert_eq!(trash, [], "{point}");
        }
        println!(
            "    crash point {point}: aborted, new key {}",
            if made { "in the trash" } else { "never made" }
        );
    }
}

/// SIGKILL at every crash point of an abort, then `--abort` again: the
/// abort ends as one that never crashed, and a rotation being aborted
/// refuses to go on.
pub fn sigkill_inside_an_abort_then_abort_again() {
    assert!(pbs_config::failpoint::enabled());
    let abort = ["encryption-key", "rotate", "--job", "job1", "--abort"].map(String::from);
    for point in ROTATE_POINTS
        .iter()
        .filter(|p| p.starts_with("rotate-abort:"))
    {
        let scene = Scene::new();
        let args = scene.rotate_args();
        scene.killed_at(&args, "rotate:key-recorded");
        let new = scene.keys().into_iter().find(|k| k.0 == NEW).unwrap().1;
        scene.killed_at(&abort, point);
        let (code, _, stderr) = scene.run(&args);
        assert_eq!(code, 255, "{point}");
        assert!(
            stderr.contains("is being aborted - finish the abort with --abort"),
            "{point}: {stderr}"
        );
        let (code, stdout, stderr) = scene.run(&abort);
        assert_eq!(code, 0, "{point}: {stdout}{stderr}");
        scene.assert_untouched(point);
        assert_eq!(
            scene.trash(),
            [(Some(new), TrashReason::RotateAbort)],
            "{point}"
        );
        println!("    crash point {point}: abort finished, new key in the trash");
    }
}

/// Three processes run the same rotation at once, four times over (a new
/// id each round): each round makes exactly one new key, every process
/// succeeds, and all but one say the rotation was done already.
pub fn the_same_rotation_three_times_at_once_makes_one_key() {
    let scene = Scene::new();
    let mut previous = "key0".to_string();
    for round in 0..4 {
        let new_id = format!("key-round{round}");
        let children: Vec<_> = (0..3)
            .map(|_| {
                scene
                    .manager
                    .command(&[
                        "encryption-key",
                        "rotate",
                        "--job",
                        "job1",
                        "--job",
                        "job2",
                        "--new-id",
                        &new_id,
                    ])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|child| child.wait_with_output().unwrap())
            .collect();
        let mut rotated = 0;
        for output in &outputs {
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "round {round}: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            if stdout.starts_with("rotated") {
                rotated += 1;
            } else {
                assert!(stdout.contains("nothing done"), "round {round}: {stdout}");
            }
        }
        assert_eq!(rotated, 1, "round {round}");
        let keys = scene.keys();
        assert_eq!(keys.len(), 3 + round, "round {round}: {keys:?}");
        for job in JOBS {
            let (active, associated) = scene.job(job);
            assert_eq!(active.as_deref(), Some(new_id.as_str()), "round {round}");
            assert_eq!(associated.last(), Some(&previous), "round {round}");
        }
        previous = new_id;
    }
    scene.assert_settled("after four rounds");
    let story = scene.rotate_outcomes();
    assert_eq!(
        story.iter().filter(|(op, _)| op == "rotate-plan").count(),
        4,
        "{story:?}"
    );
}

/// `--export-file` given relative: the journal keeps it resolved against
/// the directory the rotation was planned in, so a resume from another
/// directory neither writes a second bundle there nor takes that one for
/// the plan's. Before stop 33 the journal kept `key-new.pbsexport` as
/// given, and the same command run elsewhere after a kill that followed
/// the export wrote a second bundle of the new key in that directory
/// (finding 35).
pub fn a_relative_export_file_is_resumed_where_it_was_planned() {
    assert!(pbs_config::failpoint::enabled());
    let scene = Scene::new();
    let planned_in = scene.export.parent().unwrap().to_path_buf();
    let elsewhere = planned_in.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let name = scene.export.file_name().unwrap().to_str().unwrap();
    let mut args = scene.rotate_args();
    let at = args.iter().position(|arg| arg == "--export-file").unwrap() + 1;
    args[at] = name.to_string();
    let command_in = |cwd: &Path, args: &[String]| {
        let mut command = scene.command(args);
        command.current_dir(cwd);
        command
    };
    let run_in = |cwd: &Path, args: &[String]| command_in(cwd, args).output().unwrap();

    run_killed_at(command_in(&planned_in, &args), "rotate:export-written");
    assert!(scene.export.exists());
    let journals = scene.config().rotations().list().unwrap();
    let planned = journals[0].export.as_ref().unwrap().file.clone();
    assert_eq!(planned.as_deref(), Some(scene.export.to_str().unwrap()));

    // the same command from another directory: refused, naming the plan's
    // file; nothing written there
    let resumed = run_in(&elsewhere, &args);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(255), "{stderr}");
    assert!(
        stderr.contains(&format!("it exports to {:?}", scene.export)),
        "{stderr}"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    // the command its journal names resumes it there, from anywhere
    args[at] = scene.export.display().to_string();
    let resumed = run_in(&elsewhere, &args);
    assert_eq!(resumed.status.code(), Some(0), "{resumed:?}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    scene.assert_rotated("resumed from elsewhere");
}

/// Finding 46: a rotation resumed after its export was written read the
/// export file back through whatever was at its name: the `backup` user,
/// who may write the directory the administrator exports to, moved the
/// export away and put a FIFO there, and root's resume blocked opening it,
/// holding the rotation lock, until a writer came (for ever, without the
/// writer this test runs to see it).
pub fn a_fifo_at_the_export_file_never_blocks_a_resumed_rotation() {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    assert!(pbs_config::failpoint::enabled());
    let scene = Scene::new();
    let tmp = scene.export.parent().unwrap();
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o711)).unwrap();
    let shared = tmp.join("shared");
    std::fs::create_dir(&shared).unwrap();
    let (uid, gid) = crate::scene::backup_ids();
    std::os::unix::fs::chown(&shared, Some(uid.as_raw()), Some(gid.as_raw())).unwrap();
    let export = shared.join("key-new.pbsexport");
    let mut args = scene.rotate_args();
    let at = args.iter().position(|arg| arg == "--export-file").unwrap() + 1;
    args[at] = export.display().to_string();
    scene.killed_at(&args, "rotate:export-written");

    let moved = shared.join("moved");
    let mut plant = Command::new("sh");
    plant
        .args(["-c", "mv \"$1\" \"$2\" && mkfifo \"$1\"", "sh"])
        .arg(&export)
        .arg(&moved);
    pbs_test_kit::privileges::run_as(&mut plant, uid, gid);
    assert!(plant.status().unwrap().success());
    // a writer for whoever opens the FIFO to read it, so that a resume
    // that does returns (with what it read: nothing)
    let writer = {
        let export = export.clone();
        std::thread::spawn(move || drop(std::fs::OpenOptions::new().write(true).open(export)))
    };
    let (code, _, stderr) = scene.run(&args);
    // the writer goes once anyone opens the FIFO to read, here if root did not
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&export)
        .unwrap();
    writer.join().unwrap();
    assert_eq!(code, 255, "{stderr}");
    assert!(stderr.contains("is not a regular file"), "{stderr}");

    // the export put back, the same command resumes
    std::fs::rename(&moved, &export).unwrap();
    let (code, _, stderr) = scene.run(&args);
    assert_eq!(code, 0, "{stderr}");
    for job in JOBS {
        assert_eq!(scene.job(job).0.as_deref(), Some(NEW), "{job}");
    }
}
