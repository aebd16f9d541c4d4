//! The fallbacks of a new file holding key material (`create
//! --output-file`, `paperkey --output-file`, `export --output-file`), run
//! through the real command on file systems that refuse what vfat refuses.
//!
//! The file is made as an unnamed file (`O_TMPFILE`) linked to its name;
//! where the file system refuses that, as a temp file beside it and a hard
//! link (`NewFileWay::TempName`); where it has no hard links either,
//! created exclusively and written in place (`InPlace`). This machine's
//! kernel has no vfat, so a seccomp filter in the child
//! (`pbs_test_kit::refusals`) makes the kernel refuse `O_TMPFILE`
//! (`EOPNOTSUPP`) and hard links (`EPERM`) for it, for real. Each test
//! fails, saying why, where seccomp cannot be installed.
//!
//! For each way: the file holds the key the store lists (its fingerprint,
//! computed from the key), mode 0600, the note on stderr names the way, no
//! temp file stays beside it; an existing file, a symbolic link or a
//! dangling one at the name, there before the command or planted while it
//! writes, is refused and left as it was; a write that fails removes the
//! new key from the store again (into the trash) and leaves nothing; a
//! kill before the file has its name leaves at most the temp file, which
//! the next command writing there names; a failed sync of the directory
//! once the file has its name (`refusals::fail_dir_sync`: EIO) removes the
//! file again, or, where that fails too, says where the key is. A
//! rotation's export file takes the same ways and is named as the others
//! are. And on a real exFAT file system (FUSE, as root), which keeps no
//! file modes, each command warns that its file is not 0600, and that its
//! directory can be changed by others, as in any such directory.

use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::bail;
use serde_json::Value;

use pbs_key_config::KeyConfig;
use pbs_test_kit::manager::sync_job_args;
use pbs_test_kit::pause::paused_at;
use pbs_test_kit::privileges::root_or_skip;
use pbs_test_kit::refusals::{self, Refusal};
use pbs_test_kit::tmpfs::Tmpfs;
use pbs_test_kit::{Manager, Run};

use crate::support::{context, run_killed_at};

/// The two fallbacks: what the child's file systems refuse, and what the
/// note on stderr says of the way taken.
const WAYS: [(Refusal, &str); 2] = [
    (
        Refusal::UnnamedFiles,
        "refuses unnamed files (O_TMPFILE) - the key was written under a temporary name \
         beside it first",
    ),
    (
        Refusal::UnnamedFilesAndHardLinks,
        "has neither unnamed files (O_TMPFILE) nor hard links - the key was written in place \
         under its name",
    ),
];

const PASSPHRASE: &str = "bundle pass phrase";
const REMOVED: &str = "the new key was removed from the store again (into the trash, as '";

/// A config dir, an output directory beside it, and the manager on it.
struct Scene {
    tmp: tempfile::TempDir,
    cli: Manager,
}

impl Scene {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("out")).unwrap();
        std::fs::write(tmp.path().join("pass"), format!("{PASSPHRASE}\n")).unwrap();
        let cli = Manager::new(&tmp.path().join("config"));
        Self { tmp, cli }
    }

    /// The output directory.
    fn out(&self) -> PathBuf {
        self.tmp.path().join("out")
    }

    /// `name` in the output directory, as an argument.
    fn target(&self, name: &str) -> String {
        self.out().join(name).display().to_string()
    }

    /// `name` beside the config dir.
    fn file(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// The manager's `args` in a child whose file systems refuse
    /// `refusal`.
    fn command(&self, refusal: Refusal, args: &[&str]) -> Command {
        let mut cmd = self.cli.command(args);
        refusals::refuse(&mut cmd, refusal);
        cmd
    }

    /// Runs `args` under `refusal`; no known key in its output.
    fn run(&self, refusal: Refusal, args: &[&str]) -> Run {
        self.run_checked(self.command(refusal, args), args)
    }

    /// Runs `cmd`, the manager's `args`; no known key in its output.
    #[track_caller]
    fn run_checked(&self, cmd: Command, args: &[&str]) -> Run {
        let run = Manager::run_command(cmd, None);
        self.cli
            .secrets
            .assert_absent(&format!("{args:?}"), &run.stdout);
        self.cli
            .secrets
            .assert_absent(&format!("{args:?}"), &run.stderr);
        run
    }

    /// The ids of the store, archived ones too.
    fn ids(&self) -> Vec<String> {
        ids(&self.cli, &["encryption-key", "list", "--include-archived"])
    }

    /// The ids in the trash.
    fn trashed(&self) -> Vec<String> {
        ids(&self.cli, &["encryption-key", "trash", "list"])
    }
}

/// The `id` of each entry of the JSON list `args` prints.
fn ids(cli: &Manager, args: &[&str]) -> Vec<String> {
    let list = json(cli, args);
    list.as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].as_str().unwrap().to_string())
        .collect()
}

#[track_caller]
fn json(cli: &Manager, args: &[&str]) -> Value {
    let run = cli.run(&[&["--output-format", "json"][..], args].concat());
    assert_eq!(run.code, 0, "{args:?}: {run:?}");
    serde_json::from_str(&run.stdout).unwrap()
}

/// The fingerprint the store of `cli` lists for `id`.
fn listed_fingerprint(cli: &Manager, id: &str) -> String {
    let list = json(cli, &["encryption-key", "list", "--include-archived"]);
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["id"] == id)
        .unwrap_or_else(|| panic!("'{id}' is not listed: {list}"));
    entry["fingerprint"].as_str().unwrap().to_string()
}

/// The fingerprint of key `id` as a new store lists it after restoring
/// the bundle file `bundle` (passphrase in the file `pass`) into it, in
/// `scene`'s `restored` dir.
fn restored_fingerprint(scene: &Scene, bundle: &str, pass: &str, id: &str) -> String {
    let restored = Manager::new(&scene.file("restored"));
    let run = restored.run(&[
        "encryption-key",
        "restore",
        bundle,
        "--passphrase-file",
        pass,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    listed_fingerprint(&restored, id)
}

/// The fingerprint of the key in the key file `path`, computed from the
/// key (not the one the file states).
fn fingerprint_of_file(path: &Path) -> String {
    let key = KeyConfig::load(path).unwrap();
    let (_, _, fingerprint) = key
        .decrypt(&|| bail!("an unprotected key"))
        .unwrap_or_else(|err| panic!("{path:?} does not load: {err}"));
    fingerprint.signature()
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

/// A run that wrote a file the fallback way `note` names: exit 0, and the
/// note (about `what`) naming `path`; a warning of the mode only where
/// the file is not 0600.
#[track_caller]
fn assert_written(run: &Run, note: &str, what: &str, path: &str) {
    assert_eq!(run.code, 0, "{run:?}");
    let note = note.replace("the key", what);
    assert!(
        run.stderr
            .contains(&format!("Note: the file system of {path:?} {note}")),
        "no note of the way taken: {run:?}"
    );
    let warned = run.stderr.contains("keeps no file modes");
    assert_eq!(warned, mode(Path::new(path)) != 0o600, "{run:?}");
}

/// `create`, `paperkey` and `export` writing to new files by each
/// fallback: each file holds exactly the key the store lists, mode 0600,
/// the note names the way, and nothing else is left beside it.
pub fn each_fallback_writes_the_listed_key_and_nothing_beside_it() {
    refusals::assert_seccomp_works();
    for (refusal, note) in WAYS {
        let scene = Scene::new();
        let cli = &scene.cli;
        let key_file = scene.target("new-key.json");
        let run = scene.run(
            refusal,
            &[
                "encryption-key",
                "create",
                "new-key",
                "--output-file",
                &key_file,
            ],
        );
        assert_written(&run, note, "the key", &key_file);
        let key_path = Path::new(&key_file);
        cli.secrets
            .key_file("new-key", &KeyConfig::load(key_path).unwrap());
        cli.secrets
            .assert_absent("create --output-file", &run.stdout);
        cli.secrets
            .assert_absent("create --output-file", &run.stderr);
        let fingerprint = listed_fingerprint(cli, "new-key");
        assert_eq!(fingerprint_of_file(key_path), fingerprint, "{refusal:?}");
        assert_eq!(mode(key_path), 0o600, "{refusal:?}");
        assert_eq!(names(&scene.out()), ["new-key.json"], "{refusal:?}");

        // the paperkey, typed back into another store
        let paper = scene.target("new-key.paper");
        let run = Manager::run_command(
            scene.command(
                refusal,
                &[
                    "encryption-key",
                    "paperkey",
                    "new-key",
                    "--output-file",
                    &paper,
                ],
            ),
            None,
        );
        assert_written(&run, note, "the paperkey", &paper);
        assert_eq!(mode(Path::new(&paper)), 0o600, "{refusal:?}");
        let typed_back = Manager::new(&scene.file("typed-back"));
        let run = typed_back.run(&["encryption-key", "import", "new-key", "--file", &paper]);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(listed_fingerprint(&typed_back, "new-key"), fingerprint);

        // the export bundle, restored into another store
        let bundle = scene.target("new-key.pbsx");
        let pass = scene.file("pass").display().to_string();
        let run = scene.run(
            refusal,
            &[
                "encryption-key",
                "export",
                "new-key",
                "--output-file",
                &bundle,
                "--passphrase-file",
                &pass,
            ],
        );
        assert_written(&run, note, "the bundle", &bundle);
        assert_eq!(mode(Path::new(&bundle)), 0o600, "{refusal:?}");
        assert_eq!(
            restored_fingerprint(&scene, &bundle, &pass, "new-key"),
            fingerprint
        );
        assert_eq!(
            names(&scene.out()),
            ["new-key.json", "new-key.paper", "new-key.pbsx"],
            "{refusal:?}"
        );

        existing_names_are_refused_and_left_alone(&scene, refusal, &pass);
    }
}

/// An existing file, a symbolic link to one and a dangling symbolic link
/// at the output file: each command refuses, nothing changes.
fn existing_names_are_refused_and_left_alone(scene: &Scene, refusal: Refusal, pass: &str) {
    let victim = scene.file("victim");
    std::fs::write(&victim, "not to be written over").unwrap();
    let nowhere = scene.file("nowhere");
    symlink(&victim, scene.out().join("link")).unwrap();
    symlink(&nowhere, scene.out().join("dangling")).unwrap();
    let key_before = std::fs::read(scene.out().join("new-key.json")).unwrap();
    let names_before = names(&scene.out());
    for name in ["new-key.json", "link", "dangling"] {
        let target = scene.target(name);
        for args in [
            &[
                "encryption-key",
                "create",
                "second",
                "--output-file",
                &target,
            ][..],
            &[
                "encryption-key",
                "paperkey",
                "new-key",
                "--output-file",
                &target,
            ],
            &[
                "encryption-key",
                "export",
                "new-key",
                "--output-file",
                &target,
                "--passphrase-file",
                pass,
            ],
        ] {
            let run = scene.run(refusal, args);
            assert_eq!(run.code, 255, "{args:?}: {run:?}");
            assert!(
                run.stderr.contains(&format!("{target:?} exists already")),
                "{args:?}: {run:?}"
            );
        }
    }
    assert_eq!(
        std::fs::read(scene.out().join("new-key.json")).unwrap(),
        key_before
    );
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "not to be written over"
    );
    assert_eq!(
        std::fs::read_link(scene.out().join("link")).unwrap(),
        victim
    );
    assert!(
        !nowhere.exists(),
        "{refusal:?}: written through a dangling link"
    );
    assert_eq!(names(&scene.out()), names_before);
    assert_eq!(scene.ids(), ["new-key"]);
}

/// What a test plants at the output file while `create` writes it.
#[derive(Clone, Copy, Debug)]
enum Plant {
    File,
    Symlink,
    DanglingSymlink,
}

/// `create --output-file` paused once the key is written, before the file
/// has its name; a file or a symbolic link planted at the name then: the
/// command refuses it, leaves it (and what a link points to) as it was,
/// and removes the new key from the store again. Neither way writes
/// through the planted name.
pub fn a_name_planted_while_create_writes_is_never_written_over() {
    refusals::assert_seccomp_works();
    for (refusal, _) in WAYS {
        for plant in [Plant::File, Plant::Symlink, Plant::DanglingSymlink] {
            let scene = Scene::new();
            let target = scene.target("new-key.json");
            let victim = scene.file("victim");
            std::fs::write(&victim, "not to be written over").unwrap();
            let nowhere = scene.file("nowhere");

            let create = [
                "encryption-key",
                "create",
                "lost-key",
                "--output-file",
                &target,
            ];
            let paused = paused_at(
                &mut scene.command(refusal, &create),
                "create:output-written",
            );
            match plant {
                Plant::File => std::fs::write(&target, "planted").unwrap(),
                Plant::Symlink => symlink(&victim, &target).unwrap(),
                Plant::DanglingSymlink => symlink(&nowhere, &target).unwrap(),
            }
            let (status, rest) = paused.finish();
            let context = format!("{refusal:?} {plant:?}: {rest}");
            assert_eq!(status.code(), Some(255), "{context}");
            assert!(
                rest.contains("file exists, refusing to overwrite it") && rest.contains(REMOVED),
                "{context}"
            );

            match plant {
                Plant::File => {
                    assert_eq!(std::fs::read_to_string(&target).unwrap(), "planted")
                }
                Plant::Symlink => assert_eq!(std::fs::read_link(&target).unwrap(), victim),
                Plant::DanglingSymlink => {
                    assert_eq!(std::fs::read_link(&target).unwrap(), nowhere)
                }
            }
            assert_eq!(
                std::fs::read_to_string(&victim).unwrap(),
                "not to be written over",
                "{context}"
            );
            assert!(!nowhere.exists(), "{context}");
            assert_eq!(names(&scene.out()), ["new-key.json"], "{context}");
            assert!(scene.ids().is_empty(), "{context}");
            assert_eq!(scene.trashed(), ["lost-key"], "{context}");
        }
    }
}

/// A create whose output file cannot be written removes the new key from
/// the store again (into the trash) and leaves nothing beside the target:
/// a hard link failing with EIO after the data is written and synced
/// (the temp-name way), and (as root, which mounts a tmpfs) a full disk
/// and a read-only file system under each way.
pub fn a_create_whose_output_file_fails_removes_the_key_again() {
    refusals::assert_seccomp_works();
    let scene = Scene::new();
    let target = scene.target("lost-key.json");
    let args = [
        "encryption-key",
        "create",
        "lost-key",
        "--output-file",
        &target,
    ];
    let run = scene.run(Refusal::UnnamedFilesAndLinksFailing, &args);
    assert_eq!(run.code, 255, "{run:?}");
    assert!(
        run.stderr.contains("Input/output error") && run.stderr.contains(REMOVED),
        "{run:?}"
    );
    assert!(names(&scene.out()).is_empty(), "{run:?}");
    assert!(scene.ids().is_empty());
    assert_eq!(scene.trashed(), ["lost-key"]);

    if !root_or_skip("a full disk and a read-only file system (tmpfs mounts)") {
        return;
    }
    for (refusal, _) in WAYS {
        let scene = Scene::new();
        let mount = Tmpfs::mount(&scene.out(), "64k");
        mount.fill("filler", 0);
        let target = scene.target("lost-key.json");
        let args = [
            "encryption-key",
            "create",
            "lost-key",
            "--output-file",
            &target,
        ];
        let run = scene.run(refusal, &args);
        assert_eq!(run.code, 255, "{refusal:?}: {run:?}");
        assert!(
            run.stderr.contains("No space left on device") && run.stderr.contains(REMOVED),
            "{refusal:?}: {run:?}"
        );
        assert_eq!(names(&scene.out()), ["filler"], "{refusal:?}");

        std::fs::remove_file(scene.out().join("filler")).unwrap();
        mount.remount(true);
        let run = scene.run(refusal, &args);
        assert_eq!(run.code, 255, "{refusal:?}: {run:?}");
        assert!(
            run.stderr.contains("Read-only file system") && run.stderr.contains(REMOVED),
            "{refusal:?}: {run:?}"
        );
        assert!(names(&scene.out()).is_empty(), "{refusal:?}");
        assert!(scene.ids().is_empty(), "{refusal:?}");
        assert_eq!(scene.trashed(), ["lost-key", "lost-key"], "{refusal:?}");
        drop(mount);
    }
}

/// The ways a new file is made, as the refusal that makes each (none: the
/// unnamed file).
const EVERY_WAY: [Option<Refusal>; 3] = [
    None,
    Some(Refusal::UnnamedFiles),
    Some(Refusal::UnnamedFilesAndHardLinks),
];

/// What the commands say of a file whose directory could not be synced
/// once it had its name, and that was removed again.
const SYNC_FAILED: &str = "Input/output error (os error 5) - the file had its name, but the \
                           name might not survive a crash: removed again";

impl Scene {
    /// The manager's `args` made by `way` (the refusal that makes it, or
    /// none), each `fsync` of the output directory failing with EIO.
    fn run_dir_sync_failing(&self, way: Option<Refusal>, args: &[&str]) -> (Run, usize) {
        let mut cmd = match way {
            Some(refusal) => self.command(refusal, args),
            None => self.cli.command(args),
        };
        let failed_syncs = refusals::fail_dir_sync(&mut cmd, &self.out());
        let run = self.run_checked(cmd, args);
        (run, failed_syncs.count())
    }

    /// The manager's `args`, each `fsync` of the output directory failing
    /// with EIO and each removal by path with EROFS (a file system turned
    /// read-only): a run that fails having synced the directory at least
    /// once.
    #[track_caller]
    fn run_read_only_after_failed_sync(&self, args: &[&str]) -> Run {
        let mut cmd = self.cli.command(args);
        refusals::refuse_unlinks_by_path(&mut cmd);
        let failed_syncs = refusals::fail_dir_sync(&mut cmd, &self.out());
        let run = self.run_checked(cmd, args);
        assert!(failed_syncs.count() >= 1, "{run:?}");
        assert_eq!(run.code, 255, "{run:?}");
        run
    }
}

/// Each way of `create`, `paperkey` and `export --output-file` with the
/// output directory's sync failing (EIO) once the file has its name: the
/// command fails saying the file was removed again, and nothing is left
/// at the name or beside it; `create` removes the new key from the store
/// again (into the trash), as for any write that fails. (Regression: the
/// complete file stayed at the name while the command said it failed and
/// the key went into the trash.)
pub fn a_failed_sync_of_the_output_directory_leaves_no_file() {
    refusals::assert_seccomp_works();
    for way in EVERY_WAY {
        let scene = Scene::new();
        let target = scene.target("lost-key.json");
        let (run, failed_syncs) = scene.run_dir_sync_failing(
            way,
            &[
                "encryption-key",
                "create",
                "lost-key",
                "--output-file",
                &target,
            ],
        );
        let context = format!("{way:?}: {run:?}");
        assert_eq!(run.code, 255, "{context}");
        assert!(failed_syncs >= 1, "{context}");
        let out = scene.out();
        assert!(
            run.stderr.contains(&format!(
                "unable to write {target:?} - unable to sync directory {out:?} - {SYNC_FAILED}"
            )) && run.stderr.contains(REMOVED),
            "{context}"
        );
        assert!(names(&scene.out()).is_empty(), "{context}");
        assert!(scene.ids().is_empty(), "{context}");
        assert_eq!(scene.trashed(), ["lost-key"], "{context}");

        // a copy of a key the store keeps, written where syncs fail
        let key_file = scene.file("kept-key.json").display().to_string();
        let run = scene.cli.run(&[
            "encryption-key",
            "create",
            "kept-key",
            "--output-file",
            &key_file,
        ]);
        assert_eq!(run.code, 0, "{run:?}");
        scene
            .cli
            .secrets
            .key_file("kept-key", &KeyConfig::load(Path::new(&key_file)).unwrap());
        let pass = scene.file("pass").display().to_string();
        let paper = scene.target("kept-key.paper");
        let bundle = scene.target("kept-key.pbsx");
        for (args, file) in [
            (
                vec![
                    "encryption-key",
                    "paperkey",
                    "kept-key",
                    "--output-file",
                    &paper,
                ],
                &paper,
            ),
            (
                vec![
                    "encryption-key",
                    "export",
                    "kept-key",
                    "--output-file",
                    &bundle,
                    "--passphrase-file",
                    &pass,
                ],
                &bundle,
            ),
        ] {
            let (run, failed_syncs) = scene.run_dir_sync_failing(way, &args);
            let context = format!("{way:?} {args:?}: {run:?}");
            assert_eq!(run.code, 255, "{context}");
            assert!(failed_syncs >= 1, "{context}");
            assert!(
                run.stderr.contains(&format!("{file:?}")) && run.stderr.contains(SYNC_FAILED),
                "{context}"
            );
            assert!(names(&scene.out()).is_empty(), "{context}");
        }
        assert_eq!(scene.ids(), ["kept-key"], "{way:?}");
    }
}

/// `create --output-file` whose output directory's sync fails (EIO) and
/// whose file cannot be removed again either (the file system turned
/// read-only: EROFS for removals by path): the command fails, the new key
/// goes into the trash, and the message says the file holds it too and
/// how to bring it back; the file holds the key the trash restores. A
/// paperkey's file left so is named as complete under its name.
pub fn a_create_whose_file_stays_after_a_failed_sync_says_where_the_key_is() {
    refusals::assert_seccomp_works();
    let scene = Scene::new();
    let target = scene.target("left-key.json");
    let run = scene.run_read_only_after_failed_sync(&[
        "encryption-key",
        "create",
        "left-key",
        "--output-file",
        &target,
    ]);
    assert!(
        run.stderr.contains(
            "Input/output error (os error 5) - the file is complete under its name, but the \
             name might not survive a crash, and removing the file again failed - Read-only \
             file system (os error 30)"
        ) && run.stderr.contains(REMOVED),
        "{run:?}"
    );
    // the message names the trash entry, and its command brings the key back
    let advice = format!(
        ", and the file {target:?} holds it too - bring the key back with \
         'proxmox-backup-manager encryption-key trash restore "
    );
    let trash_name = run
        .stderr
        .split_once(&advice)
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(name, _)| name.to_string())
        .unwrap_or_else(|| panic!("no trash restore named: {run:?}"));
    assert!(trash_name.starts_with("left-key@"), "{run:?}");
    assert!(
        run.stderr
            .contains(&format!("{REMOVED}{trash_name}'), and the file")),
        "{run:?}"
    );
    assert_eq!(names(&scene.out()), ["left-key.json"]);
    assert_eq!(mode(Path::new(&target)), 0o600);
    scene
        .cli
        .secrets
        .key_file("left-key", &KeyConfig::load(Path::new(&target)).unwrap());
    assert!(scene.ids().is_empty());
    assert_eq!(scene.trashed(), ["left-key"]);

    let run = scene
        .cli
        .run(&["encryption-key", "trash", "restore", &trash_name]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        fingerprint_of_file(Path::new(&target)),
        listed_fingerprint(&scene.cli, "left-key")
    );

    // a paperkey of the key the store keeps: the message says the file
    // is complete under its name
    let paper = scene.target("left-key.paper");
    let run = scene.run_read_only_after_failed_sync(&[
        "encryption-key",
        "paperkey",
        "left-key",
        "--output-file",
        &paper,
    ]);
    assert!(
        run.stderr.contains(&format!(
            "failed to make a paperkey of encryption key 'left-key' - unable to write {paper:?} \
             - unable to sync directory {:?} - Input/output error (os error 5) - the file is \
             complete under its name",
            scene.out()
        )),
        "{run:?}"
    );
    assert_eq!(names(&scene.out()), ["left-key.json", "left-key.paper"]);
}

/// `create --output-file` killed once the key is written, before the file
/// has its name, by each fallback: never a file, partial or whole, at the
/// name; at most the temp file beside it (0600, holding the key the store
/// lists, which is not lost); and the next command writing there names
/// that file and says what to do about it.
pub fn a_create_killed_before_its_output_file_is_named_leaves_at_most_the_temp_file() {
    refusals::assert_seccomp_works();
    assert!(
        pbs_config::failpoint::enabled(),
        "pbs-config must be built with the failpoints feature for this test"
    );
    for (refusal, note) in WAYS {
        let scene = Scene::new();
        let target = scene.target("new-key.json");
        let args = [
            "encryption-key",
            "create",
            "new-key",
            "--output-file",
            &target,
        ];
        run_killed_at(scene.command(refusal, &args), "create:output-written");
        assert!(!Path::new(&target).exists(), "{refusal:?}");
        let left = names(&scene.out());
        let [temp] = left.as_slice() else {
            panic!("{refusal:?}: not one temp file beside the target: {left:?}");
        };
        assert!(temp.starts_with("new-key.json.tmp_"), "{refusal:?}: {temp}");
        let temp_path = scene.out().join(temp);
        assert_eq!(mode(&temp_path), 0o600, "{refusal:?}");
        assert_eq!(
            fingerprint_of_file(&temp_path),
            listed_fingerprint(&scene.cli, "new-key"),
            "{refusal:?}"
        );
        scene
            .cli
            .secrets
            .key_file("new-key", &KeyConfig::load(&temp_path).unwrap());
        // the store is whole: the key stays in it, among the keys of which
        // no verified copy is recorded, as after any create killed after
        // its store
        let verify = scene.cli.run(&["encryption-key", "verify"]);
        assert_eq!(verify.code, 0, "{refusal:?}: {verify:?}");
        assert_eq!(
            ids(
                &scene.cli,
                &["encryption-key", "list", "--no-verified-copy"]
            ),
            ["new-key"]
        );

        // the next command writing to the same name says what is there
        let run = scene.run(
            refusal,
            &[
                "encryption-key",
                "create",
                "other-key",
                "--output-file",
                &target,
            ],
        );
        assert_written(&run, note, "the key", &target);
        let temp_text = temp_path.display().to_string();
        assert!(
            run.stderr.contains(&format!(
                "Note: {temp_text:?} beside {target:?} is left from a write that was interrupted"
            )),
            "{refusal:?}: {run:?}"
        );
        assert_eq!(
            fingerprint_of_file(Path::new(&target)),
            listed_fingerprint(&scene.cli, "other-key")
        );
        assert_eq!(
            names(&scene.out()),
            ["new-key.json", temp.as_str()],
            "{refusal:?}"
        );
    }
}

/// `rotate --export-file` by each fallback: the rotation writes its
/// bundle through the same function (and reads it back to prove it) and
/// names the way as `export --output-file` does; the bundle restores the
/// new key the store lists, 0600, nothing beside it. (Regression: the
/// rotation said nothing of the way, its answer coming from the API.)
pub fn a_rotation_exports_by_each_fallback() {
    refusals::assert_seccomp_works();
    for (refusal, note) in WAYS {
        let scene = scene_with_push_job(2);
        let bundle = scene.target("key-new.pbsx");
        let pass = scene.file("pass").display().to_string();
        let run = scene.run(refusal, &rotate_args("key-new", &bundle, &pass));
        assert_written(&run, note, "the bundle", &bundle);
        assert_eq!(mode(Path::new(&bundle)), 0o600, "{refusal:?}");
        assert_eq!(names(&scene.out()), ["key-new.pbsx"], "{refusal:?}");
        assert_eq!(
            restored_fingerprint(&scene, &bundle, &pass, "key-new"),
            listed_fingerprint(&scene.cli, "key-new"),
            "{refusal:?}"
        );
    }
}

/// `rotate --export-file` names a temp file beside its export file that
/// an interrupted write left (a rotation killed before its bundle had its
/// name, on a file system without unnamed files), as `export
/// --output-file` does: it may hold the new key in full. The rotation
/// writes its own file and leaves that one alone.
pub fn a_rotation_names_a_temp_file_an_interrupted_export_left() {
    let scene = scene_with_push_job(3);
    let bundle = scene.target("key-new.pbsx");
    let temp = scene.out().join("key-new.pbsx.tmp_Ab12Cd");
    std::fs::write(&temp, b"an interrupted write").unwrap();

    let pass = scene.file("pass").display().to_string();
    let run = scene.cli.run(&rotate_args("key-new", &bundle, &pass));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "Note: {temp:?} beside {bundle:?} is left from a write that was interrupted"
        )),
        "{run:?}"
    );
    assert_eq!(
        names(&scene.out()),
        ["key-new.pbsx", "key-new.pbsx.tmp_Ab12Cd"]
    );
    assert_eq!(std::fs::read(&temp).unwrap(), b"an interrupted write");
}

/// A scene whose store holds `key0` (made from `seed`), which the push
/// job `job1` encrypts with: what a rotation starts from.
fn scene_with_push_job(seed: u64) -> Scene {
    let scene = Scene::new();
    let dir = scene.cli.dir();
    std::fs::create_dir(dir).unwrap();
    let key0 = pbs_test_kit::key_config(seed);
    scene.cli.secrets.key_file("key0", &key0);
    context(dir)
        .encryption_keys()
        .store_key("key0", &key0)
        .unwrap();
    push_job(&scene.cli, "key0");
    scene
}

/// The push job `job1` of `cli`, encrypting with `key`.
fn push_job(cli: &Manager, key: &str) {
    let push = ["--sync-direction", "push", "--active-encryption-key", key];
    let run = cli.run(&sync_job_args("job1", "pbs2", "store2", &push));
    assert_eq!(run.code, 0, "{run:?}");
}

/// `rotate` of `job1` to the new key `new_id`, exported to `bundle` for
/// the passphrase in the file `pass`.
fn rotate_args<'a>(new_id: &'a str, bundle: &'a str, pass: &'a str) -> [&'a str; 10] {
    [
        "encryption-key",
        "rotate",
        "--job",
        "job1",
        "--new-id",
        new_id,
        "--export-file",
        bundle,
        "--passphrase-file",
        pass,
    ]
}

/// A run that wrote `what` to `path` on the exFAT stick mounted at
/// `stick`: in place, and warned of the file's mode and of the stick's
/// directory, which others can change.
#[track_caller]
fn assert_written_to_exfat(run: &Run, what: &str, path: &str, stick: &Path) {
    let (_, in_place) = WAYS[1];
    assert_written(run, in_place, what, path);
    let file_mode = mode(Path::new(path));
    assert_ne!(file_mode & 0o077, 0, "exFAT kept a mode: {file_mode:04o}");
    assert!(
        run.stderr.contains(&format!(
            "Warning: the file system of {path:?} keeps no file modes - {what} is in a file \
             of mode {file_mode:04o}, not 0600"
        )) && run.stderr.contains("umask=077"),
        "no warning of the mode: {run:?}"
    );
    assert!(
        run.stderr.contains(&dir_warning(
            stick,
            "writable by everyone, mode 0777",
            what,
            path
        )),
        "no warning of the directory: {run:?}"
    );
}

/// The warning of directory `dir` on the way to `path`, holding `what`,
/// that others can change for the reason `why`.
fn dir_warning(dir: &Path, why: &str, what: &str, path: &str) -> String {
    format!(
        "Warning: directory {dir:?} can be changed by others ({why}) - they can remove {what} \
         at {path:?} or put a file of theirs in its place"
    )
}

/// A real exFAT file system (a USB stick's, through FUSE): no unnamed
/// files, no hard links, and no file modes (every file and directory
/// shows the mount's 0777). `create`, `paperkey`, `export` and `rotate
/// --export-file` write there in place, each file holding the key the
/// store lists, and each command warns that the file is not 0600 but
/// readable by whoever reaches it, and that its directory can be changed
/// by others, saying how to mount such a file system.
pub fn on_exfat_each_command_writes_in_place_and_warns_of_the_mode() {
    if !root_or_skip("an exFAT file system (a loop device and a FUSE mount)") {
        return;
    }
    let scene = Scene::new();
    let stick = pbs_test_kit::exfat::Exfat::mount(&scene.file("stick.img"), &scene.file("stick"));
    let in_stick = |name: &str| stick.path.join(name).display().to_string();
    let pass = scene.file("pass").display().to_string();
    let key_file = in_stick("usb-key.json");
    let paper = in_stick("usb-key.paper");
    let bundle = in_stick("usb-key.pbsx");
    let commands: [(&str, &str, Vec<&str>); 3] = [
        (
            "the key",
            &key_file,
            vec![
                "encryption-key",
                "create",
                "usb-key",
                "--output-file",
                &key_file,
            ],
        ),
        (
            "the paperkey",
            &paper,
            vec![
                "encryption-key",
                "paperkey",
                "usb-key",
                "--output-file",
                &paper,
            ],
        ),
        (
            "the bundle",
            &bundle,
            vec![
                "encryption-key",
                "export",
                "usb-key",
                "--output-file",
                &bundle,
                "--passphrase-file",
                &pass,
            ],
        ),
    ];
    for (what, path, args) in &commands {
        let run = Manager::run_command(scene.cli.command(args), None);
        assert_written_to_exfat(&run, what, path, &stick.path);
    }
    push_job(&scene.cli, "usb-key");
    let rotated = in_stick("usb-key-2.pbsx");
    let run = Manager::run_command(
        scene
            .cli
            .command(&rotate_args("usb-key-2", &rotated, &pass)),
        None,
    );
    assert_written_to_exfat(&run, "the bundle", &rotated, &stick.path);
    let fingerprint = listed_fingerprint(&scene.cli, "usb-key");
    assert_eq!(fingerprint_of_file(Path::new(&key_file)), fingerprint);
    assert_eq!(
        fingerprints_of_copies(&scene, "usb-key", &paper, &bundle),
        [fingerprint.clone(), fingerprint]
    );
    assert_eq!(
        restored_fingerprint(&scene, &rotated, &pass, "usb-key-2"),
        listed_fingerprint(&scene.cli, "usb-key-2")
    );
    assert_eq!(
        names(&stick.path),
        [
            "usb-key-2.pbsx",
            "usb-key.json",
            "usb-key.paper",
            "usb-key.pbsx"
        ]
    );
}

/// A scene whose output directory has mode `dir_mode`, and the key
/// `dir-key` written to its file `key.json`: the run and the file.
fn scene_with_key(dir_mode: u32) -> (Scene, Run, String) {
    let scene = Scene::new();
    set_mode(&scene.out(), dir_mode);
    let key_file = scene.target("key.json");
    let run = scene.cli.run(&[
        "encryption-key",
        "create",
        "dir-key",
        "--output-file",
        &key_file,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(mode(Path::new(&key_file)), 0o600);
    scene
        .cli
        .secrets
        .key_file("dir-key", &KeyConfig::load(Path::new(&key_file)).unwrap());
    (scene, run, key_file)
}

fn set_mode(dir: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap()
}

/// The paperkey of `dir-key` written to `name` in the output directory:
/// the run and the file.
fn paperkey_to(scene: &Scene, name: &str) -> (Run, String) {
    let paper = scene.target(name);
    let run = scene.cli.run(&[
        "encryption-key",
        "paperkey",
        "dir-key",
        "--output-file",
        &paper,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    (run, paper)
}

/// The warning of a directory on the way to a new key file that others
/// can change (who can remove the file or put one of theirs in its
/// place): it names the nearest such directory (alone, of two) and why -
/// writable by everyone, by its group, or another user's. The file stays
/// 0600 in each, so its mode is not warned of.
pub fn a_directory_others_can_change_is_warned_of() {
    let (scene, run, key_file) = scene_with_key(0o777);
    let out = scene.out();
    let everyone = "writable by everyone, mode 0777";
    assert!(
        run.stderr
            .contains(&dir_warning(&out, everyone, "the key", &key_file)),
        "{run:?}"
    );
    assert!(!run.stderr.contains("keeps no file modes"), "{run:?}");

    // the nearest changeable directory, above one only root can change
    let sub = out.join("sub");
    std::fs::create_dir(&sub).unwrap();
    set_mode(&sub, 0o700);
    let pass = scene.file("pass").display().to_string();
    let bundle = sub.join("key.pbsx").display().to_string();
    let run = scene.cli.run(&[
        "encryption-key",
        "export",
        "dir-key",
        "--output-file",
        &bundle,
        "--passphrase-file",
        &pass,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains(&dir_warning(&out, everyone, "the bundle", &bundle)),
        "{run:?}"
    );

    // the nearer of two changeable directories, alone
    set_mode(&sub, 0o775);
    let (run, paper) = paperkey_to(&scene, "sub/near.paper");
    assert_group_writable_warned(&run, &sub, &paper);
    assert_eq!(
        run.stderr.matches("can be changed by others").count(),
        1,
        "{run:?}"
    );

    set_mode(&out, 0o775);
    let (run, paper) = paperkey_to(&scene, "group.paper");
    assert_group_writable_warned(&run, &out, &paper);

    if !root_or_skip("a directory of another user (chown)") {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    std::os::unix::fs::chown(&out, Some(nobody.uid.as_raw()), None).unwrap();
    set_mode(&out, 0o755);
    let (run, paper) = paperkey_to(&scene, "nobodys.paper");
    let owner = format!("it belongs to user 'nobody', uid {}", nobody.uid);
    assert!(
        run.stderr
            .contains(&dir_warning(&out, &owner, "the paperkey", &paper)),
        "{run:?}"
    );
}

/// `run` warned that `dir`, mode 0775, can be changed by its group,
/// naming the paperkey `paper`.
#[track_caller]
fn assert_group_writable_warned(run: &Run, dir: &Path, paper: &str) {
    let gid = std::fs::metadata(dir).unwrap().gid();
    let group = format!("writable by its group, gid {gid}, mode 0775");
    assert!(
        run.stderr
            .contains(&dir_warning(dir, &group, "the paperkey", paper)),
        "{run:?}"
    );
}

/// The way to a new key file is checked as the kernel walks it, links
/// followed where they are met: a path through a link in a directory
/// others can change is theirs to redirect, though the link leads where
/// only root can change anything (before: no warning, the way was checked
/// as resolved); in a sticky directory, a link of another user is theirs
/// to remove and make anew, one of root's is not.
pub fn a_symbolic_link_others_can_change_on_the_way_is_warned_of() {
    let (scene, run, _) = scene_with_key(0o755);
    assert!(!run.stderr.contains("can be changed by others"), "{run:?}");
    let out = scene.out();
    let private = scene.file("private");
    std::fs::create_dir(&private).unwrap();
    set_mode(&private, 0o700);
    let link = out.join("link");
    std::os::unix::fs::symlink(&private, &link).unwrap();

    set_mode(&out, 0o777);
    let (run, paper) = paperkey_to(&scene, "link/through.paper");
    let everyone = "writable by everyone, mode 0777";
    assert!(
        run.stderr
            .contains(&dir_warning(&out, everyone, "the paperkey", &paper)),
        "{run:?}"
    );

    set_mode(&out, 0o1777);
    let (run, _) = paperkey_to(&scene, "link/roots-link.paper");
    assert!(!run.stderr.contains("can be changed by others"), "{run:?}");

    if !root_or_skip("a symbolic link of another user (chown -h)") {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    std::os::unix::fs::lchown(&link, Some(nobody.uid.as_raw()), None).unwrap();
    let (run, paper) = paperkey_to(&scene, "link/nobodys-link.paper");
    let expected = format!(
        "Warning: symbolic link {link:?} can be changed by others (it belongs to user 'nobody', \
         uid {}, in directory {out:?} of mode 1777) - they can remove the paperkey at {paper:?} \
         or put a file of theirs in its place",
        nobody.uid
    );
    assert!(run.stderr.contains(&expected), "{run:?}");
}

/// No warning of a directory only root can change, nor of one with the
/// sticky bit (as `/tmp`), where others cannot remove or rename root's
/// files.
pub fn a_sticky_or_root_only_directory_is_no_warning() {
    let (scene, run, _) = scene_with_key(0o1777);
    assert!(!run.stderr.contains("can be changed by others"), "{run:?}");
    for dir_mode in [0o1777, 0o700, 0o755] {
        set_mode(&scene.out(), dir_mode);
        let (run, _) = paperkey_to(&scene, &format!("{dir_mode:o}.paper"));
        assert!(
            !run.stderr.contains("can be changed by others"),
            "{dir_mode:o}: {run:?}"
        );
    }
}

/// The fingerprints `id` has in new stores made from its paperkey `paper`
/// (imported) and from the bundle `bundle` (restored with the scene's
/// passphrase).
fn fingerprints_of_copies(scene: &Scene, id: &str, paper: &str, bundle: &str) -> [String; 2] {
    let typed_back = Manager::new(&scene.file("typed-back"));
    let run = typed_back.run(&["encryption-key", "import", id, "--file", paper]);
    assert_eq!(run.code, 0, "{run:?}");
    let pass = scene.file("pass").display().to_string();
    [
        listed_fingerprint(&typed_back, id),
        restored_fingerprint(scene, bundle, &pass, id),
    ]
}
