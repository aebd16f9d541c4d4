//! The `proxmox-backup-manager` binary, run as an administrator would: every
//! command on a temporary config dir with its JSON output parsed, every
//! error path with its exit status, and no key bytes in any output but the
//! key `create` prints.
//!
//! Every run goes through [`Cli`], which checks each output against the
//! raw keys the test knows (hex and base64) and the `data` field, so the
//! "no key bytes" rule is asserted on every command, not in one test.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use pbs_key_config::KeyConfig;
use pbs_keystore::api2::config::encryption_keys;

use pbs_test_kit::dirs::{copy_configdir_example, vectors_dir};
use pbs_test_kit::{Manager, Run, TestDir, key_config, raw_key};

/// Exit statuses of the binary (see `EXIT_STATUS_HELP`).
const EXIT_OK: i32 = 0;
const EXIT_FINDINGS: i32 = 1;
const EXIT_ERROR: i32 = 255;

/// A temporary config dir, and the runner whose secrets no output may
/// contain.
struct Cli {
    dir: TestDir,
    manager: Manager,
}

impl Cli {
    fn new() -> Self {
        let dir = TestDir::new();
        let manager = Manager::new(dir.path());
        // no output but create's holds a key file's data field
        manager.secrets.text("a key file's data field", "\"data\"");
        Self { dir, manager }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Registers a raw key: its hex and base64 must never be printed.
    fn secret_key(&self, raw: &[u8]) {
        self.manager.secrets.key("a raw key", raw);
    }

    /// Registers the `data` field of a key file's text (any key, protected
    /// or not, even truncated).
    fn secret_file_text(&self, text: &str) {
        self.manager.secrets.key_file_text("a key file", text);
    }

    /// The first secret `text` contains.
    fn leaked_secret(&self, text: &str) -> Option<String> {
        self.manager.secrets.leaked(text).map(|(_, needle)| needle)
    }

    fn assert_no_secrets(&self, what: &str, text: &str) {
        self.manager.secrets.assert_absent(what, text);
    }

    /// The command with `--config-dir`, a fixed time zone, a UTF-8 locale
    /// (box-drawing tables) and none of `$PBS_CONFIG_DIR` and the
    /// `$PROXMOX_OUTPUT_*` variables.
    fn command(&self, args: &[&str]) -> Command {
        self.manager.command(args)
    }

    /// [`Cli::command`] with another copy of the binary.
    fn command_of(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = self.manager.command_of(program, args);
        cmd.env("LC_ALL", "C.UTF-8")
            .env_remove("PROXMOX_OUTPUT_FORMAT")
            .env_remove("PROXMOX_OUTPUT_NO_BORDER")
            .env_remove("PROXMOX_OUTPUT_NO_HEADER");
        cmd
    }

    /// Runs `cmd`, feeding `stdin`, without checking for secrets.
    fn run_command(cmd: Command, stdin: Option<&[u8]>) -> Run {
        Manager::run_command(cmd, stdin)
    }

    /// Runs the binary; stdout and stderr must hold no secret.
    fn run_with(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        self.manager.run_with(args, stdin)
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, None)
    }

    /// A run that must succeed silently on stderr.
    fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(run.code, EXIT_OK, "{args:?} failed: {run:?}");
        assert_eq!(run.stderr, "", "{args:?} wrote to stderr");
        run
    }

    /// A successful run with `--output-format json`, parsed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output-format", "json"];
        all.extend_from_slice(args);
        let run = self.ok(&all);
        serde_json::from_str(&run.stdout)
            .unwrap_or_else(|err| panic!("{args:?}: stdout is not JSON ({err}): {}", run.stdout))
    }

    /// A run that must fail with `code`: nothing on stdout, one error line
    /// on stderr (returned without the `Error: ` prefix).
    fn fail_with(&self, args: &[&str], stdin: Option<&[u8]>, code: i32) -> String {
        let run = self.run_with(args, stdin);
        assert_eq!(run.code, code, "{args:?}: {run:?}");
        assert_eq!(run.stdout, "", "{args:?} printed to stdout on failure");
        assert_eq!(
            run.stderr.lines().count(),
            1,
            "{args:?}: not one line: {}",
            run.stderr
        );
        run.stderr
            .trim_end()
            .strip_prefix("Error: ")
            .unwrap_or_else(|| panic!("{args:?}: no 'Error: ' prefix: {}", run.stderr))
            .to_string()
    }

    fn fail(&self, args: &[&str]) -> String {
        self.fail_with(args, None, EXIT_ERROR)
    }

    /// Creates a key printed to stdout (the one output allowed to hold it)
    /// and registers it as a secret.
    fn create(&self, id: &str) -> KeyConfig {
        let run = Self::run_command(
            self.command(&["--output-format", "json", "encryption-key", "create", id]),
            None,
        );
        assert_eq!(run.code, EXIT_OK, "create {id}: {run:?}");
        let key_config = KeyConfig::from_json(run.stdout.as_bytes()).expect("KeyConfig on stdout");
        self.secret_key(&key_config.data);
        key_config
    }

    /// Every file below the config dir with its content, lock files left
    /// out (a refused operation may have created one): for "nothing
    /// changed" checks.
    fn state(&self) -> Vec<(PathBuf, Vec<u8>)> {
        self.dir
            .snapshot()
            .into_iter()
            .filter(|(path, _)| !path.to_string_lossy().ends_with(".lck"))
            .collect()
    }

    fn ids(&self, include_archived: bool) -> Vec<String> {
        let mut args = vec!["encryption-key", "list"];
        if include_archived {
            args.push("--include-archived");
        }
        self.json(&args)
            .as_array()
            .expect("list is an array")
            .iter()
            .map(|key| key["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// Writes a file in a scratch dir beside the config dir (not inside it,
    /// so it does not show up in [`Cli::state`]).
    fn scratch_file(&self, name: &str, data: &[u8]) -> PathBuf {
        let dir = self.path().with_extension("scratch");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, data).unwrap();
        path
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.path().with_extension("scratch"));
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn fingerprint_of(key_config: &KeyConfig) -> String {
    let no_pass = || -> Result<Vec<u8>, anyhow::Error> { anyhow::bail!("unprotected") };
    key_config.decrypt(&no_pass).unwrap().2.signature()
}

/// The rows of a bordered text table, header first, each a list of
/// trimmed cells (a cell of several lines gives several rows).
fn table_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|line| line.starts_with('│'))
        .map(|line| {
            line.trim_matches('│')
                .split('│')
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect()
}

/// The value of property `name` in a `show` table (`Name`/`Value`).
fn shown_value(text: &str, name: &str) -> Option<String> {
    table_rows(text)
        .into_iter()
        .find(|row| row[0] == name)
        .map(|row| row[1].clone())
}

fn sync_cfg(cli: &Cli, text: &str) {
    std::fs::write(cli.path().join("sync.cfg"), text).unwrap();
}

const TWO_JOBS: &str = "sync: nightly\n\tstore local1\n\tremote-store remote1\n\tremote other\n\tsync-direction push\n\tactive-encryption-key key-active\n\tassociated-key key-old\n\n\
                        sync: weekly\n\tstore local1\n\tremote-store remote2\n\tassociated-key key-old\n";

#[test]
fn create_prints_the_key_once_and_list_show_never_do() {
    let cli = Cli::new();
    let created = cli.create("nightly-01");
    assert!(!created.is_protected());
    // the checker every run goes through recognises this key in create's output
    let leaked = format!(
        "{}\n{}",
        created.to_json().unwrap(),
        hex::encode(&created.data)
    );
    for text in leaked.lines() {
        assert!(
            cli.leaked_secret(text).is_some(),
            "the secret checker missed {text}"
        );
    }
    assert_eq!(cli.leaked_secret(&fingerprint_of(&created)), None);

    // the warning on stderr, the key on stdout only
    cli.secret_key(&raw_key(99)); // (an unrelated secret, so the set is never empty)
    let run = Cli::run_command(cli.command(&["encryption-key", "create", "text-01"]), None);
    assert_eq!(run.code, EXIT_OK, "{run:?}");
    let text_key = KeyConfig::from_json(run.stdout.as_bytes()).expect("text output is the key");
    cli.secret_key(&text_key.data);
    assert!(
        run.stderr.contains("only time") && run.stderr.contains("'text-01'"),
        "{}",
        run.stderr
    );
    cli.assert_no_secrets("create warning", &run.stderr);

    // the store holds the same key, 0640
    let key_file = cli.path().join("encryption-keys/nightly-01.enc");
    assert_eq!(mode_of(&key_file), 0o640);
    let stored = KeyConfig::load(&key_file).unwrap();
    assert_eq!(stored.data, created.data);

    // list and show: exactly what the API handlers return
    let list = cli.json(&["encryption-key", "list"]);
    let (api_list, _) = encryption_keys::list_keys(&cli.dir.config, false, |_| true).unwrap();
    assert_eq!(list, serde_json::to_value(&api_list).unwrap());
    assert_eq!(list.as_array().unwrap().len(), 2);
    let entry = &list[0];
    assert_eq!(entry["id"], "nightly-01");
    assert_eq!(entry["fingerprint"], fingerprint_of(&created));
    assert_eq!(entry["kdf"], "none");
    assert_eq!(entry["path"], key_file.to_str().unwrap());
    assert!(entry.get("archived-at").is_none());

    // show: the entry, and who changed it last (from the audit log)
    let shown = cli.json(&["encryption-key", "show", "nightly-01"]);
    let mut entry = shown.clone();
    let changed = entry
        .as_object_mut()
        .unwrap()
        .remove("last-changed-by")
        .unwrap();
    assert_eq!(entry, list[0]);
    assert_eq!(
        (&changed["op"], &changed["actor"], &changed["origin"]),
        (&"create".into(), &"root@pam".into(), &"cli".into())
    );
    assert!(shown.get("last-exported").is_none());
    let pretty = cli.ok(&[
        "--output-format",
        "json-pretty",
        "encryption-key",
        "show",
        "nightly-01",
    ]);
    assert!(pretty.stdout.contains("\n  \"id\": \"nightly-01\""));
    assert_eq!(
        serde_json::from_str::<Value>(&pretty.stdout).unwrap(),
        shown
    );

    // text: a Name/Value table, the fingerprint in full, no archived-at row
    // for an active key
    let text = cli.ok(&["encryption-key", "show", "nightly-01"]).stdout;
    assert_eq!(table_rows(&text)[0], ["Name", "Value"], "{text}");
    assert_eq!(shown_value(&text, "id").as_deref(), Some("nightly-01"));
    assert_eq!(
        shown_value(&text, "fingerprint"),
        Some(fingerprint_of(&created))
    );
    assert_eq!(shown_value(&text, "archived-at"), None, "{text}");
    // never exported: a dash (an em dash in a UTF-8 locale)
    let never = shown_value(&text, "last-exported");
    assert!(matches!(never.as_deref(), Some("-" | "\u{2014}")), "{text}");

    // an existing id
    let before = cli.state();
    let err = cli.fail(&["encryption-key", "create", "nightly-01"]);
    assert!(err.contains("'nightly-01' already exists"), "{err}");
    assert_eq!(cli.state(), before);
}

#[test]
fn create_to_an_output_file() {
    let cli = Cli::new();
    let out = cli.path().with_extension("out");
    std::fs::create_dir(&out).unwrap();
    let file = out.join("offsite.enc");

    let shown = cli.run(&[
        "--output-format",
        "json",
        "encryption-key",
        "create",
        "offsite",
        "--output-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(shown.code, EXIT_OK, "{shown:?}");
    assert_eq!(mode_of(&file), 0o600);
    let written = KeyConfig::load(&file).unwrap();
    cli.secret_key(&written.data);
    cli.assert_no_secrets("create --output-file stdout", &shown.stdout);
    cli.assert_no_secrets("create --output-file stderr", &shown.stderr);
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(shown["id"], "offsite");
    assert_eq!(shown["fingerprint"], fingerprint_of(&written));
    // the file and the store hold the same key
    let stored = KeyConfig::load(cli.path().join("encryption-keys/offsite.enc")).unwrap();
    assert_eq!(stored.data, written.data);

    // never over an existing file (a regular file or a dangling symlink);
    // nothing is created
    let link = out.join("link.enc");
    std::os::unix::fs::symlink(out.join("nowhere"), &link).unwrap();
    let before = cli.state();
    let file_before = std::fs::read(&file).unwrap();
    for target in [&file, &link] {
        let err = cli.fail(&[
            "encryption-key",
            "create",
            "second",
            "--output-file",
            target.to_str().unwrap(),
        ]);
        assert!(
            err.contains(&format!("{target:?}")) && err.contains("exists already"),
            "{err}"
        );
        assert_eq!(cli.state(), before);
    }
    assert_eq!(std::fs::read(&file).unwrap(), file_before);
    assert!(!out.join("nowhere").exists());

    // a missing directory; a bad id with an output file
    let missing = out.join("no-such-dir/key.enc");
    let err = cli.fail(&[
        "encryption-key",
        "create",
        "second",
        "--output-file",
        missing.to_str().unwrap(),
    ]);
    assert!(
        err.contains("does not exist") && err.contains("no-such-dir"),
        "{err}"
    );
    let fresh = out.join("fresh.enc");
    let err = cli.fail(&[
        "encryption-key",
        "create",
        "../x",
        "--output-file",
        fresh.to_str().unwrap(),
    ]);
    assert!(err.contains("\"../x\""), "{err}");
    assert!(!fresh.exists());
    assert_eq!(cli.state(), before);
    assert_eq!(cli.ids(true), ["offsite"]);
    std::fs::remove_dir_all(&out).unwrap();
}

/// A key nobody received (stdout or the output file could not be written)
/// must not stay in the store.
#[test]
fn a_created_key_that_cannot_be_handed_out_is_removed_again() {
    let cli = Cli::new();
    cli.create("kept-key");
    let before = cli.state();

    let mut cmd = cli.command(&["encryption-key", "create", "lost-key"]);
    cmd.stdout(std::fs::File::create("/dev/full").unwrap());
    let output = cmd.stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(EXIT_ERROR), "{stderr}");
    assert!(
        stderr.starts_with(
            "Error: failed to create encryption key 'lost-key' - unable to write to standard output"
        ) && stderr.trim_end().contains(
            "the new key was removed from the store again (into the trash, as 'lost-key@"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("only time"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // the output file's directory exists but refuses new files
    let err = cli.fail(&[
        "encryption-key",
        "create",
        "lost-key",
        "--output-file",
        "/proc/pbs-keystore-test.enc",
    ]);
    assert!(
        err.contains("\"/proc/pbs-keystore-test.enc\"")
            && err.contains(
                "the new key was removed from the store again (into the trash, as 'lost-key@"
            ),
        "{err}"
    );
    // out of the store, into the trash (never unlinked: issue 14); the
    // audit log says so (below)
    let outside_trash = |state: Vec<(PathBuf, Vec<u8>)>| -> Vec<(PathBuf, Vec<u8>)> {
        state
            .into_iter()
            .filter(|(path, _)| {
                let path = path.to_string_lossy();
                !path.contains("/.trash/") && !path.contains("/.audit/")
            })
            .collect()
    };
    assert_eq!(outside_trash(cli.state()), outside_trash(before));
    assert_eq!(cli.ids(true), ["kept-key"]);
    let trashed = cli.json(&["encryption-key", "trash", "list"]);
    let ids: Vec<&str> = trashed
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["lost-key", "lost-key"], "{trashed}");
    // each of the two: created, archived and deleted again, in the log
    let log = cli.json(&["audit", "list", "--key", "lost-key"]);
    let ops: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["op"].as_str().unwrap(), r["phase"].as_str().unwrap()))
        .collect();
    let once = [
        ("create", "intent"),
        ("create", "outcome"),
        ("archive", "intent"),
        ("archive", "outcome"),
        ("delete", "intent"),
        ("delete", "outcome"),
    ];
    assert_eq!(ops, [once, once].concat(), "{log}");
}

#[test]
fn import_from_a_file_and_from_stdin() {
    let cli = Cli::new();
    for seed in [1, 2, 3] {
        cli.secret_key(&raw_key(seed));
    }
    let file = cli.scratch_file("one.enc", key_config(1).to_json().unwrap().as_bytes());

    let imported = cli.json(&[
        "encryption-key",
        "import",
        "imported-1",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(imported["id"], "imported-1");
    assert_eq!(imported["fingerprint"], fingerprint_of(&key_config(1)));
    assert_eq!(imported["kdf"], "none");

    // stdin, in text format
    let stdin_json = key_config(2).to_json().unwrap();
    let run = cli.run_with(
        &["encryption-key", "import", "imported-2", "--file", "-"],
        Some(stdin_json.as_bytes()),
    );
    assert_eq!(run.code, EXIT_OK, "{run:?}");
    assert_eq!(
        run.stdout,
        format!(
            "imported encryption key 'imported-2' from standard input (fingerprint {})\n",
            fingerprint_of(&key_config(2))
        )
    );

    // an upstream key file
    let vector = vectors_dir().join("keys");
    let expect: Value =
        serde_json::from_slice(&std::fs::read(vector.join("unprotected.expect.json")).unwrap())
            .unwrap();
    cli.secret_key(&hex::decode(expect["raw_key_hex"].as_str().unwrap()).unwrap());
    let upstream = cli.json(&[
        "encryption-key",
        "import",
        "upstream",
        "--file",
        vector.join("unprotected.enc").to_str().unwrap(),
    ]);
    assert_eq!(upstream["fingerprint"], expect["fingerprint"]);
    assert_eq!(upstream["created"], 1735689600);

    // the stored keys load and decrypt to what was imported
    let keys = cli.dir.config.encryption_keys();
    let no_pass = || -> Result<Vec<u8>, anyhow::Error> { anyhow::bail!("unprotected") };
    for (id, seed) in [("imported-1", 1), ("imported-2", 2)] {
        let loaded = keys.load_key_config(id, true).unwrap();
        assert_eq!(loaded.decrypt(&no_pass).unwrap().0, raw_key(seed));
    }
    assert_eq!(cli.ids(false), ["imported-1", "imported-2", "upstream"]);

    // the same key under another id; another key under an existing id
    let before = cli.state();
    let err = cli.fail(&[
        "encryption-key",
        "import",
        "again",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(err.contains("already stored as 'imported-1'"), "{err}");
    let other = cli.scratch_file("three.enc", key_config(3).to_json().unwrap().as_bytes());
    let err = cli.fail(&[
        "encryption-key",
        "import",
        "imported-1",
        "--file",
        other.to_str().unwrap(),
    ]);
    assert!(err.contains("'imported-1' already exists"), "{err}");
    assert_eq!(cli.state(), before);
}

/// A protected key needs its passphrase (upstream refuses protected keys;
/// `key_export_cli.rs` imports them with it): without a terminal and
/// without `--passphrase-file`, the import is refused, nothing written.
#[test]
fn import_refuses_protected_keys_without_their_passphrase() {
    let cli = Cli::new();
    let vector = vectors_dir().join("keys");
    let before = cli.state();
    for case in ["scrypt-protected", "pbkdf2-with-hint"] {
        let path = vector.join(format!("{case}.enc"));
        let text = std::fs::read_to_string(&path).unwrap();
        cli.secret_file_text(&text);
        let err = cli.fail(&[
            "encryption-key",
            "import",
            "protected",
            "--file",
            path.to_str().unwrap(),
        ]);
        assert!(
            err.contains("the key is passphrase protected")
                && err.contains("give --passphrase-file FILE"),
            "{case}: {err}"
        );
        assert!(
            err.contains("'protected'") && err.contains(&format!("{path:?}")),
            "{case}: {err}"
        );
        // from stdin too
        let err = cli.fail_with(
            &["encryption-key", "import", "protected", "--file", "-"],
            Some(text.as_bytes()),
            EXIT_ERROR,
        );
        assert!(
            err.contains("the key is passphrase protected") && err.contains("standard input"),
            "{case}: {err}"
        );
    }
    assert_eq!(cli.state(), before);
    assert!(cli.ids(true).is_empty());
}

/// Finding 65: a key file's hint is text of whoever made the file, read
/// unchecked; its control characters reach no terminal but escaped. Here
/// the error of a wrong passphrase, which would otherwise step up a line,
/// clear it, print a success there and hide what follows (the prompt of a
/// terminal shows the hint through the same function).
#[test]
fn a_hint_of_a_key_file_reaches_the_terminal_escaped() {
    let cli = Cli::new();
    let inputs = tempfile::tempdir().unwrap();
    let vector = vectors_dir().join("keys").join("pbkdf2-with-hint.enc");
    let mut key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(vector).unwrap()).unwrap();
    key["hint"] = "x\n\u{1b}[1A\u{1b}[2Kimported encryption key 'client-7'\u{1b}[8m".into();
    let file = inputs.path().join("hostile.enc");
    let text = serde_json::to_string(&key).unwrap();
    cli.secret_file_text(&text);
    std::fs::write(&file, &text).unwrap();
    let pass = inputs.path().join("wrong.pass");
    std::fs::write(&pass, "not the passphrase of it\n").unwrap();
    let before = cli.state();
    let err = cli.fail(&[
        "encryption-key",
        "import",
        "client-7",
        "--file",
        file.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert!(!err.contains('\u{1b}'), "{err:?}");
    assert!(
        err.contains(
            "(password hint: x\\u{a}\\u{1b}[1A\\u{1b}[2Kimported encryption key 'client-7'\\u{1b}[8m)"
        ),
        "{err:?}"
    );
    assert_eq!(cli.state(), before);
}

#[test]
fn import_refuses_bad_files_naming_them() {
    let cli = Cli::new();
    cli.create("existing");
    let vector = vectors_dir().join("keys");
    let scratch = cli.scratch_file("placeholder", b"");
    let scratch = scratch.parent().unwrap();
    let not_utf8 = cli.scratch_file("latin1.enc", b"{\"kdf\":null,\"data\":\"\xe9\"}");
    let too_large = cli.scratch_file("large.enc", &vec![b' '; 70_000]);
    let before = cli.state();

    let cases: Vec<(PathBuf, &str)> = vec![
        (scratch.join("missing.enc"), "No such file or directory"),
        (scratch.to_path_buf(), "Is a directory"),
        (not_utf8, "not UTF-8"),
        (too_large, "larger than 65536 bytes"),
        (vector.join("truncated-json.enc"), "invalid key file"),
        (vector.join("wrong-fingerprint.enc"), "wrong fingerprint"),
    ];
    for (path, why) in &cases {
        if let Ok(text) = std::fs::read_to_string(path) {
            cli.secret_file_text(&text);
        }
        let err = cli.fail(&[
            "encryption-key",
            "import",
            "new-key",
            "--file",
            path.to_str().unwrap(),
        ]);
        assert!(err.contains(&format!("{path:?}")), "{path:?}: {err}");
        assert!(err.contains("'new-key'"), "{path:?}: {err}");
        assert!(err.contains(why), "{path:?}: {err}");
    }
    assert_eq!(cli.state(), before);
    assert_eq!(cli.ids(true), ["existing"]);
}

#[test]
fn import_of_an_unreadable_file_names_it() {
    let cli = Cli::new();
    let path = cli.scratch_file("secret.enc", key_config(4).to_json().unwrap().as_bytes());
    cli.secret_key(&raw_key(4));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let args = [
        "encryption-key",
        "import",
        "unreadable",
        "--file",
        path.to_str().unwrap(),
    ];
    let cmd = if nix::unistd::geteuid().is_root() {
        // root reads anything: run as nobody, who may not read the file. The
        // checkout may sit where nobody cannot reach (/root), so nobody runs
        // a copy of the binary from the scratch dir.
        let scratch = path.parent().unwrap();
        let program = scratch.join("proxmox-backup-manager");
        pbs_test_kit::bins::copy_executable(&pbs_test_kit::bins::manager(), &program);
        std::fs::set_permissions(scratch, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut cmd = cli.command_of(&program, &args);
        cmd.uid(65534).gid(65534);
        cmd
    } else {
        cli.command(&args)
    };
    let run = Cli::run_command(cmd, None);
    cli.assert_no_secrets("unreadable import", &run.stderr);
    assert_eq!(run.code, EXIT_ERROR, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("Error: failed to import encryption key 'unreadable' - unable to open")
            && run.stderr.contains(&format!("{path:?}"))
            && run.stderr.contains("Permission denied"),
        "{}",
        run.stderr
    );
    assert!(cli.ids(true).is_empty());
}

#[test]
fn bad_ids_are_refused_naming_the_id() {
    let cli = Cli::new();
    cli.create("good-key");
    let file = cli.scratch_file("k.enc", key_config(5).to_json().unwrap().as_bytes());
    cli.secret_key(&raw_key(5));
    let long = "k".repeat(40);
    let before = cli.state();
    for id in [
        "../x",
        "a",
        long.as_str(),
        "with space",
        ".dot",
        "new\nline",
    ] {
        let quoted = format!("{id:?}");
        for args in [
            vec!["encryption-key", "show", id],
            vec!["encryption-key", "create", id],
            vec![
                "encryption-key",
                "import",
                id,
                "--file",
                file.to_str().unwrap(),
            ],
            vec!["encryption-key", "archive", id],
            vec!["encryption-key", "unarchive", id],
            vec!["encryption-key", "delete", id],
            vec![
                "sync-job",
                "update",
                "nightly",
                "--active-encryption-key",
                id,
            ],
            vec!["sync-job", "update", "nightly", "--associated-key", id],
        ] {
            let err = cli.fail(&args);
            assert!(
                err.contains(&format!("invalid encryption key id {quoted}")),
                "{args:?}: {err}"
            );
            assert!(err.contains("3 to 32 characters"), "{args:?}: {err}");
        }
        for args in [
            vec!["sync-job", "show", id],
            vec!["sync-job", "update", id, "--delete", "associated-key"],
        ] {
            let err = cli.fail(&args);
            assert!(
                err.contains(&format!("invalid sync job id {quoted}")),
                "{args:?}: {err}"
            );
        }
    }
    assert_eq!(cli.state(), before);
}

#[test]
fn unknown_ids_are_named() {
    let cli = Cli::new();
    cli.create("known-key");
    sync_cfg(
        &cli,
        "sync: known-job\n\tstore local1\n\tremote-store remote1\n\tremote other\n\tsync-direction push\n",
    );
    let before = cli.state();
    for cmd in ["show", "archive", "unarchive", "delete"] {
        let err = cli.fail(&["encryption-key", cmd, "no-such-key"]);
        assert!(
            err.contains("no such encryption key 'no-such-key'"),
            "{cmd}: {err}"
        );
    }
    let err = cli.fail(&["sync-job", "show", "no-such-job"]);
    assert_eq!(err, "no such sync job 'no-such-job'");
    let err = cli.fail(&[
        "sync-job",
        "update",
        "no-such-job",
        "--delete",
        "associated-key",
    ]);
    assert!(
        err.starts_with("failed to update sync job 'no-such-job'")
            && err.contains("no such sync job 'no-such-job'"),
        "{err}"
    );
    let err = cli.fail(&[
        "sync-job",
        "update",
        "known-job",
        "--active-encryption-key",
        "no-such-key",
    ]);
    // upstream's words, then (the administrator may see every key) why
    assert!(
        err.starts_with("failed to update sync job 'known-job' - no such key or cannot access key 'no-such-key' - ")
            && err.contains("no such encryption key 'no-such-key'"),
        "{err}"
    );
    let err = cli.fail(&["sync-job", "remove", "no-such-job"]);
    assert_eq!(
        err,
        "failed to remove sync job 'no-such-job' - no such sync job 'no-such-job'"
    );
    assert_eq!(cli.state(), before);
}

#[test]
fn archive_unarchive_delete_round_trip() {
    let cli = Cli::new();
    cli.create("key-one");
    cli.create("key-two");

    let archived = cli.json(&["encryption-key", "archive", "key-one"]);
    assert_eq!(archived["id"], "key-one");
    let archived_at = archived["archived-at"].as_i64().expect("archived-at set");
    assert!(archived_at > 1_700_000_000);
    assert_eq!(cli.ids(false), ["key-two"]);
    assert_eq!(cli.ids(true), ["key-one", "key-two"]);
    let err = cli.fail(&["encryption-key", "archive", "key-one"]);
    assert!(err.contains("'key-one' is already archived"), "{err}");

    // text list shows the archive time
    let table = cli
        .ok(&["encryption-key", "list", "--include-archived"])
        .stdout;
    let rows = table_rows(&table);
    assert_eq!(rows.len(), 3, "{table}");
    assert_eq!(
        rows[0],
        [
            "id",
            "fingerprint",
            "created",
            "archived-at",
            "hint",
            "sync-jobs"
        ],
        "{table}"
    );
    assert_eq!(rows[1][0], "key-one", "{table}");
    let archived_text = {
        use chrono::TimeZone;
        chrono::Utc
            .timestamp_opt(archived_at, 0)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S +00:00")
            .to_string()
    };
    assert_eq!(rows[1][3], archived_text, "{table}");
    assert_eq!((rows[2][0].as_str(), rows[2][3].as_str()), ("key-two", ""));

    let unarchived = cli.json(&["encryption-key", "unarchive", "key-one"]);
    assert!(unarchived.get("archived-at").is_none());
    let err = cli.fail(&["encryption-key", "unarchive", "key-one"]);
    assert!(err.contains("'key-one' is not archived"), "{err}");

    // only archived keys are deleted
    let before = cli.state();
    let err = cli.fail(&["encryption-key", "delete", "key-one"]);
    assert!(
        err.contains("'key-one' is not archived - only archived keys can be deleted"),
        "{err}"
    );
    assert_eq!(cli.state(), before);

    let text = cli.ok(&["encryption-key", "archive", "key-one"]).stdout;
    assert_eq!(text, "archived encryption key 'key-one'\n");
    assert_eq!(
        cli.json(&["encryption-key", "delete", "key-one"]),
        Value::Null
    );
    assert!(!cli.path().join("encryption-keys/key-one.enc").exists());
    assert!(!cli.path().join("encryption-keys/key-one.enc.lck").exists());
    assert_eq!(cli.ids(true), ["key-two"]);
    let err = cli.fail(&["encryption-key", "show", "key-one"]);
    assert_eq!(err, "no such encryption key 'key-one'");

    cli.ok(&["encryption-key", "archive", "key-two"]);
    let text = cli.ok(&["encryption-key", "remove", "key-two"]).stdout;
    assert!(
        text.starts_with("removed encryption key 'key-two' - kept in the trash as 'key-two@")
            && text.contains("no verified copy of it is recorded"),
        "{text}"
    );
    assert!(cli.json(&["encryption-key", "list", "--include-archived"]) == json!([]));
}

/// The command a remove names to bring the key back works, also where the
/// trash holds the id more than once (a key of the same id removed
/// before), where `trash restore ID` is refused as ambiguous: it names the
/// entry by its trash name. (Before, it said `trash restore ID`.)
#[test]
fn remove_names_the_trash_restore_that_brings_the_key_back() {
    let cli = Cli::new();
    let first = cli.create("twice");
    cli.ok(&["encryption-key", "archive", "twice"]);
    cli.ok(&["encryption-key", "remove", "twice"]);
    let second = cli.create("twice");
    assert_ne!(fingerprint_of(&first), fingerprint_of(&second));
    cli.ok(&["encryption-key", "archive", "twice"]);
    let text = cli.ok(&["encryption-key", "remove", "twice"]).stdout;
    let restore = text
        .split_once("('encryption-key trash restore ")
        .and_then(|(_, rest)| rest.split_once("' brings it back)"))
        .map(|(name, _)| name.to_string())
        .unwrap_or_else(|| panic!("no trash restore named: {text}"));
    let refused = cli.fail(&["encryption-key", "trash", "restore", "twice"]);
    assert!(refused.contains("is in the trash 2 times"), "{refused}");
    cli.ok(&["encryption-key", "trash", "restore", &restore]);
    let listed = cli.json(&["encryption-key", "show", "twice"]);
    assert_eq!(
        listed["fingerprint"].as_str(),
        Some(fingerprint_of(&second).as_str()),
        "{listed}"
    );
}

#[test]
fn keys_in_use_by_sync_jobs() {
    let cli = Cli::new();
    cli.create("key-active");
    cli.create("key-old");
    cli.create("key-new");
    sync_cfg(&cli, TWO_JOBS);
    sync_jobs_list_and_show_their_keys(&cli);
    keys_in_use_are_kept(&cli);
    rekey_and_untie_a_key_then_it_can_go(&cli);
}

/// `sync-job list` and `show` name each job's keys, as JSON and as tables.
fn sync_jobs_list_and_show_their_keys(cli: &Cli) {
    let jobs = cli.json(&["sync-job", "list"]);
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    assert_eq!(jobs[0]["id"], "nightly");
    assert_eq!(jobs[0]["active-encryption-key"], "key-active");
    assert_eq!(jobs[0]["associated-key"], json!(["key-old"]));
    assert_eq!(jobs[1]["id"], "weekly");
    assert!(jobs[1].get("active-encryption-key").is_none());
    assert_eq!(cli.json(&["sync-job", "show", "weekly"]), jobs[1]);
    let table = cli.ok(&["sync-job", "list"]).stdout;
    let rows = table_rows(&table);
    assert_eq!(rows[1][0], "nightly", "{table}");
    assert!(
        table.contains("key-active") && table.contains("key-old"),
        "{table}"
    );
    let shown = cli.ok(&["sync-job", "show", "nightly"]).stdout;
    assert_eq!(table_rows(&shown)[1], ["id", "nightly"], "{shown}");
    assert_eq!(
        shown_value(&shown, "active-encryption-key").as_deref(),
        Some("key-active")
    );
}

/// Archive refused for the active key, delete for any referenced key.
fn keys_in_use_are_kept(cli: &Cli) {
    let before = cli.state();
    let err = cli.fail(&["encryption-key", "archive", "key-active"]);
    assert!(
        err.contains("'key-active' is in use by sync jobs: active key of 'nightly'"),
        "{err}"
    );
    assert_eq!(cli.state(), before);
    cli.ok(&["encryption-key", "archive", "key-old"]);
    let before = cli.state();
    let err = cli.fail(&["encryption-key", "delete", "key-old"]);
    assert!(err.contains("associated with 'nightly', 'weekly'"), "{err}");
    assert_eq!(cli.state(), before);

    // an archived key cannot become active; a pull job has none
    let err = cli.fail(&[
        "sync-job",
        "update",
        "nightly",
        "--active-encryption-key",
        "key-old",
    ]);
    assert!(
        err.contains("no such key or cannot access key 'key-old'")
            && err.contains("'key-old' is archived"),
        "{err}"
    );
    let err = cli.fail(&[
        "sync-job",
        "update",
        "weekly",
        "--active-encryption-key",
        "key-new",
    ]);
    assert!(
        err.ends_with("'active-encryption-key' only applies to push sync jobs"),
        "{err}"
    );
    assert_eq!(cli.state(), before);
}

/// A successful `sync-job update` (JSON) that warns it let go of `dropped`
/// (a list replaced by mistake makes a key look unused).
#[track_caller]
fn update_dropping(cli: &Cli, args: &[&str], job: &str, dropped: &str) -> Value {
    let mut all = vec!["--output-format", "json", "sync-job", "update", job];
    all.extend_from_slice(args);
    let run = cli.run(&all);
    assert_eq!(run.code, EXIT_OK, "{run:?}");
    // the likely mistake named only where the update made it
    let cause = if args.contains(&"--associated-key") {
        " (--associated-key replaces the whole list)"
    } else {
        ""
    };
    let warning = format!(
        "Warning: sync job '{job}' no longer names {dropped}{cause} - if the job's older backups \
         need a key, name it again with --associated-key, repeated for each key to keep\n"
    );
    assert_eq!(run.stderr, warning);
    serde_json::from_str(&run.stdout).unwrap()
}

/// Re-key nightly, untie key-old everywhere (each update says it let go
/// of it), then it can go.
fn rekey_and_untie_a_key_then_it_can_go(cli: &Cli) {
    let nightly = update_dropping(
        cli,
        &[
            "--active-encryption-key",
            "key-new",
            "--associated-key",
            "key-active",
            "--associated-key",
            "key-new",
        ],
        "nightly",
        "'key-old'",
    );
    assert_eq!(nightly["active-encryption-key"], "key-new");
    assert_eq!(nightly["associated-key"], json!(["key-active", "key-new"]));
    assert_eq!(nightly["remote"], "other");
    let weekly = update_dropping(cli, &["--delete", "associated-key"], "weekly", "'key-old'");
    assert!(weekly.get("associated-key").is_none());
    let text = cli
        .ok(&[
            "sync-job",
            "update",
            "nightly",
            "--delete",
            "active-encryption-key",
        ])
        .stdout;
    // the previous active key stays associated: nothing let go of, no
    // warning (`ok` wants an empty stderr)
    assert!(text.starts_with("updated sync job 'nightly'\n┌"), "{text}");
    assert_eq!(shown_value(&text, "active-encryption-key"), None, "{text}");
    let cfg = std::fs::read_to_string(cli.path().join("sync.cfg")).unwrap();
    assert!(
        !cfg.contains("key-old") && !cfg.contains("active-encryption-key"),
        "{cfg}"
    );
    // arrays are written one line per item, as upstream does
    assert!(
        cfg.contains("\tassociated-key key-active\n\tassociated-key key-new\n"),
        "{cfg}"
    );

    cli.ok(&["encryption-key", "delete", "key-old"]);
    cli.ok(&["encryption-key", "archive", "key-active"]);
    assert_eq!(cli.ids(false), ["key-new"]);

    // update needs something to change: a usage error
    let run = cli.run(&["sync-job", "update", "nightly"]);
    assert_eq!(run.code, EXIT_ERROR, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("required"), "{}", run.stderr);
}

/// Removing a sync job says which of its keys no job names any more (they
/// show as unused, as after an update that lets go of them); a key another
/// job still names is not warned of.
#[test]
fn removing_a_sync_job_warns_of_the_keys_no_job_names_any_more() {
    let cli = Cli::new();
    cli.create("key-active");
    cli.create("key-old");
    sync_cfg(&cli, TWO_JOBS);
    let run = cli.run(&["sync-job", "remove", "nightly"]);
    assert_eq!(run.code, EXIT_OK, "{run:?}");
    assert_eq!(
        run.stderr,
        "Warning: no sync job names 'key-active' any more (sync job 'nightly' named it) - if \
         the job's older backups need a key, keep it: it now shows as unused ('encryption-key \
         list --unused')\n"
    );
    let run = cli.run(&["sync-job", "remove", "weekly"]);
    assert_eq!(run.code, EXIT_OK, "{run:?}");
    assert!(
        run.stderr
            .starts_with("Warning: no sync job names 'key-old' any more (sync job 'weekly'"),
        "{run:?}"
    );
    cli.ok(&[
        "sync-job",
        "create",
        "empty",
        "--store",
        "local1",
        "--remote-store",
        "remote3",
    ]);
    // a job without keys: nothing to say (`ok` wants an empty stderr)
    cli.ok(&["sync-job", "remove", "empty"]);

    // a key named twice by the job (active, and associated after another)
    // is named once
    cli.ok(&[
        "sync-job",
        "create",
        "twice",
        "--store",
        "local1",
        "--remote",
        "other",
        "--remote-store",
        "remote3",
        "--sync-direction",
        "push",
        "--active-encryption-key",
        "key-active",
        "--associated-key",
        "key-old",
        "--associated-key",
        "key-active",
    ]);
    let run = cli.run(&["sync-job", "remove", "twice"]);
    assert_eq!(run.code, EXIT_OK, "{run:?}");
    assert!(
        run.stderr.starts_with(
            "Warning: no sync job names 'key-active', 'key-old' any more (sync job 'twice' \
             named them)"
        ),
        "{run:?}"
    );
}

#[test]
fn an_orphan_key_file_blocks_create_until_verify_repair() {
    let cli = Cli::new();
    cli.create("other-key");
    let orphan = cli.path().join("encryption-keys/left-over.enc");
    std::fs::write(&orphan, key_config(6).to_json().unwrap()).unwrap();
    std::fs::set_permissions(&orphan, std::fs::Permissions::from_mode(0o640)).unwrap();
    cli.secret_key(&raw_key(6));

    let before = cli.state();
    let err = cli.fail(&["encryption-key", "create", "left-over"]);
    assert!(
        err.contains(&format!("{orphan:?}")) && err.contains("verify --repair"),
        "{err}"
    );
    assert_eq!(cli.state(), before);

    let run = cli.run(&["--output-format", "json", "encryption-key", "verify"]);
    assert_eq!(run.code, EXIT_FINDINGS, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["keys-checked"], 1);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report}");
    assert_eq!(findings[0]["kind"], "orphan-key-file");
    assert_eq!(findings[0]["id"], "left-over");
    assert_eq!(findings[0]["repairable"], true);
    assert_eq!(cli.state(), before);

    let text = cli.run(&["encryption-key", "verify"]);
    assert_eq!(text.code, EXIT_FINDINGS);
    assert!(
        text.stdout.contains("[orphan-key-file]")
            && text.stdout.contains("(repairable)")
            && text
                .stdout
                .contains("1 problem(s) remain, 1 of them repairable"),
        "{}",
        text.stdout
    );

    let repaired = cli.json(&["encryption-key", "verify", "--repair"]);
    assert_eq!(repaired["findings"], json!([]));
    let action = repaired["repaired"][0]["action"].as_str().unwrap();
    assert!(
        action.starts_with("moved orphan key file into the trash as 'left-over@"),
        "{action}"
    );
    assert_eq!(repaired["repaired"][0]["path"], orphan.to_str().unwrap());
    assert!(!orphan.exists());
    let trashed = cli.json(&["encryption-key", "trash", "list"]);
    assert_eq!(trashed[0]["id"], "left-over");
    assert_eq!(trashed[0]["reason"], "repair-orphan");
    assert_eq!(trashed[0]["purge-after"], Value::Null);

    cli.create("left-over");
    assert_eq!(cli.ids(false), ["other-key", "left-over"]);
}

#[test]
fn verify_exit_statuses() {
    let cli = Cli::new();
    cli.create("verified");
    let report = cli.json(&["encryption-key", "verify"]);
    assert_eq!(report["findings"], json!([]));
    assert_eq!(report["config-dir"], cli.path().to_str().unwrap());
    let ownership = report["ownership"].as_str().unwrap();
    match nix::unistd::geteuid().is_root() {
        true => assert!(
            ownership.starts_with("root with a backup user: files root:backup"),
            "{ownership}"
        ),
        false => assert!(ownership.starts_with("current user"), "{ownership}"),
    }
    let text = cli.ok(&["encryption-key", "verify"]).stdout;
    assert!(
        text.contains(&format!("ownership:    {ownership}\n")),
        "{text}"
    );
    assert!(text.ends_with("result: clean\n"), "{text}");

    // a repairable problem: 1, then fixed
    let key_file = cli.path().join("encryption-keys/verified.enc");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = cli.run(&["encryption-key", "verify"]);
    assert_eq!(run.code, EXIT_FINDINGS, "{run:?}");
    assert!(
        run.stdout.contains("[wrong-mode]") && run.stdout.contains("0644"),
        "{}",
        run.stdout
    );
    assert_eq!(run.stderr, "");
    let run = cli.run(&["encryption-key", "verify", "--repair"]);
    assert_eq!(run.code, EXIT_OK, "{run:?}");
    assert!(run.stdout.contains("set mode 0640"), "{}", run.stdout);
    assert_eq!(mode_of(&key_file), 0o640);

    // a problem repair cannot fix: still 1 after --repair
    std::fs::rename(&key_file, cli.path().join("moved-away")).unwrap();
    let run = cli.run(&[
        "--output-format",
        "json",
        "encryption-key",
        "verify",
        "--repair",
    ]);
    assert_eq!(run.code, EXIT_FINDINGS, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["findings"][0]["kind"], "missing-key-file");
    assert_eq!(report["findings"][0]["repairable"], false);
    // and delete names the missing file
    cli.ok(&["encryption-key", "archive", "verified"]);
    let err = cli.fail(&["encryption-key", "delete", "verified"]);
    assert!(
        err.contains("failed to delete encryption key 'verified'")
            && err.contains(&format!("{key_file:?}"))
            && err.contains("missing"),
        "{err}"
    );
    std::fs::rename(cli.path().join("moved-away"), &key_file).unwrap();

    // could not check: 2, one line, nothing on stdout
    let cfg = cli.path().join("encryption-keys.cfg");
    let saved = std::fs::read(&cfg).unwrap();
    std::fs::write(&cfg, "not a section config\n").unwrap();
    for args in [
        vec!["encryption-key", "verify"],
        vec!["encryption-key", "verify", "--repair"],
        vec!["encryption-key", "list"],
    ] {
        let err = cli.fail(&args);
        assert!(err.contains(&format!("{cfg:?}")), "{args:?}: {err}");
    }
    // a config that cannot be read at all
    std::fs::remove_file(&cfg).unwrap();
    std::fs::create_dir(&cfg).unwrap();
    let err = cli.fail(&["encryption-key", "list"]);
    assert!(err.contains(&format!("{cfg:?}")), "{err}");
    std::fs::remove_dir(&cfg).unwrap();
    std::fs::write(&cfg, saved).unwrap();
    assert_eq!(cli.ids(true), ["verified"]);
}

/// A copy of a real PBS host's config dir (`configdir-example`): three keys,
/// one archived, with upstream's `/etc/proxmox-backup/...` paths.
#[test]
fn upstream_config_dir() {
    let cli = Cli::new();
    let expect = copy_configdir_example(cli.path());
    let key_dir = cli.path().join("encryption-keys");
    let order: Vec<&str> = expect["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    for id in &order {
        let raw = hex::decode(expect["keys"][id]["raw_key_hex"].as_str().unwrap()).unwrap();
        cli.secret_key(&raw);
    }
    listed_in_file_order(&cli, &expect, &order);
    listed_as_text_with_dates(&cli, &expect);
    an_upstream_sync_cfg_ties_keys_to_a_job(&cli);
    verify_notices_the_foreign_paths(&cli, &order);
    repair_rewrites_them(&cli, &order, &key_dir);
    the_keys_are_usable(&cli, &key_dir);
}

/// List: file order, legacy-2024 archived.
fn listed_in_file_order(cli: &Cli, expect: &Value, order: &[&str]) {
    let list = cli.json(&["encryption-key", "list", "--include-archived"]);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, order);
    for key in list.as_array().unwrap() {
        let want = &expect["keys"][key["id"].as_str().unwrap()];
        assert_eq!(key["fingerprint"], want["fingerprint"]);
        assert_eq!(
            key.get("archived-at"),
            want["archived_at"].as_i64().map(Value::from).as_ref()
        );
        assert!(
            key["path"]
                .as_str()
                .unwrap()
                .starts_with("/etc/proxmox-backup/encryption-keys/")
        );
    }
    assert_eq!(list[1]["archived-at"], 1735700000);
    assert_eq!(cli.ids(false), ["offsite-2025", "tape.sync_01"]);
}

/// Text: human-readable dates (TZ=UTC0).
fn listed_as_text_with_dates(cli: &Cli, expect: &Value) {
    let table = cli
        .ok(&["encryption-key", "list", "--include-archived"])
        .stdout;
    // (the fingerprint shortened to its first 8 bytes, as upstream's
    // Display of a Fingerprint; show keeps it whole)
    let rows = table_rows(&table);
    assert_eq!(rows.len(), 4, "{table}");
    let fingerprint = expect["keys"]["offsite-2025"]["fingerprint"]
        .as_str()
        .unwrap();
    assert_eq!(rows[1][0], "offsite-2025", "{table}");
    assert_eq!(rows[1][1], fingerprint[..23], "{table}");
    assert_eq!(rows[1][2], "2025-01-01 00:00:00 +00:00", "{table}");
    assert_eq!(rows[2][0], "legacy-2024", "{table}");
    assert_eq!(rows[2][2], "2024-01-01 00:00:00 +00:00", "{table}");
    assert_eq!(rows[2][3], "2025-01-01 02:53:20 +00:00", "{table}");
    let shown = cli.ok(&["encryption-key", "show", "legacy-2024"]).stdout;
    assert_eq!(
        shown_value(&shown, "archived-at").as_deref(),
        Some("2025-01-01 02:53:20 +00:00")
    );
    assert_eq!(
        shown_value(&shown, "path").as_deref(),
        Some("/etc/proxmox-backup/encryption-keys/legacy-2024.enc")
    );
}

/// A sync.cfg as upstream writes it ties keys to a job: they are kept.
fn an_upstream_sync_cfg_ties_keys_to_a_job(cli: &Cli) {
    std::fs::write(
        cli.path().join("sync.cfg"),
        "sync: s-offsite\n\tactive-encryption-key offsite-2025\n\tassociated-key legacy-2024\n\
         \tgroup-filter include:type:vm\n\tgroup-filter exclude:group:ct/100\n\tns \n\
         \tremote pbs2\n\tremote-ns \n\tremote-store store2\n\tremove-vanished false\n\
         \tschedule *:0/15\n\tstore local1\n",
    )
    .unwrap();
    let jobs = cli.json(&["sync-job", "list"]);
    assert_eq!(jobs[0]["group-filter"][0], "include:type:vm", "{jobs}");
    let err = cli.fail(&["encryption-key", "archive", "offsite-2025"]);
    assert!(err.contains("s-offsite"), "{err}");
    let err = cli.fail(&["encryption-key", "delete", "legacy-2024"]);
    assert!(err.contains("s-offsite"), "{err}");
    std::fs::remove_file(cli.path().join("sync.cfg")).unwrap();
}

/// Verify notices the foreign paths (and this copy's owners and modes).
fn verify_notices_the_foreign_paths(cli: &Cli, order: &[&str]) {
    let run = cli.run(&["--output-format", "json", "encryption-key", "verify"]);
    assert_eq!(run.code, EXIT_FINDINGS, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["keys-checked"], 3);
    let foreign: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "path-not-canonical")
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(foreign, order);
    let text = cli.run(&["encryption-key", "verify"]);
    assert_eq!(text.code, EXIT_FINDINGS);
    assert!(
        text.stdout
            .contains("names path \"/etc/proxmox-backup/encryption-keys/offsite-2025.enc\""),
        "{}",
        text.stdout
    );
}

/// `--repair` rewrites the foreign paths (and fixes owners and modes):
/// clean.
fn repair_rewrites_them(cli: &Cli, order: &[&str], key_dir: &Path) {
    let run = cli.run(&["encryption-key", "verify", "--repair"]);
    assert_eq!(run.code, EXIT_OK, "{run:?}");
    for id in order {
        assert!(
            run.stdout.contains(&format!("rewrote path of '{id}'")),
            "{id}: {}",
            run.stdout
        );
    }
    assert!(run.stdout.ends_with("result: clean\n"), "{}", run.stdout);
    let cfg = std::fs::read_to_string(cli.path().join("encryption-keys.cfg")).unwrap();
    assert!(!cfg.contains("/etc/proxmox-backup"), "{cfg}");
    for key in cli
        .json(&["encryption-key", "list", "--include-archived"])
        .as_array()
        .unwrap()
    {
        let id = key["id"].as_str().unwrap();
        assert_eq!(
            key["path"],
            key_dir.join(format!("{id}.enc")).to_str().unwrap()
        );
    }
    cli.ok(&["encryption-key", "verify"]);
}

/// The keys are usable: the archived one deletes, the others archive.
fn the_keys_are_usable(cli: &Cli, key_dir: &Path) {
    cli.ok(&["encryption-key", "delete", "legacy-2024"]);
    assert!(!key_dir.join("legacy-2024.enc").exists());
    cli.ok(&["encryption-key", "archive", "tape.sync_01"]);
    assert_eq!(cli.ids(false), ["offsite-2025"]);
}

/// `--digest`: a change made since the admin looked is not overwritten.
#[test]
fn a_stale_digest_is_refused_and_changes_nothing() {
    let cli = Cli::new();
    cli.create("key-one");
    let digest_of_cfg = || {
        let text = std::fs::read(cli.path().join("encryption-keys.cfg")).unwrap();
        hex::encode(openssl::sha::sha256(&text))
    };
    let seen = digest_of_cfg();
    cli.create("key-two"); // someone else changed the config since
    for args in [
        vec!["encryption-key", "archive", "key-one", "--digest", &seen],
        vec!["encryption-key", "delete", "key-one", "--digest", &seen],
    ] {
        let before = cli.state();
        let err = cli.fail(&args);
        assert!(
            err.contains("detected modified configuration"),
            "{args:?}: {err}"
        );
        assert_eq!(cli.state(), before, "{args:?}");
    }
    let err = cli.fail(&["encryption-key", "archive", "key-one", "--digest", "xyz"]);
    assert!(err.contains("digest"), "{err}");

    let current = digest_of_cfg();
    cli.ok(&["encryption-key", "archive", "key-one", "--digest", &current]);
    let stale = current;
    let err = cli.fail(&["encryption-key", "unarchive", "key-one", "--digest", &stale]);
    assert!(err.contains("detected modified configuration"), "{err}");
    let current = digest_of_cfg();
    cli.ok(&["encryption-key", "delete", "key-one", "--digest", &current]);
    assert_eq!(cli.ids(true), ["key-two"]);
}

#[test]
fn output_formats_and_usage_errors() {
    let cli = Cli::new();
    cli.create("format-key");
    let compact = cli
        .ok(&["--output-format", "json", "encryption-key", "list"])
        .stdout;
    let pretty = cli
        .ok(&["--output-format", "json-pretty", "encryption-key", "list"])
        .stdout;
    assert_eq!(compact.lines().count(), 1);
    assert!(pretty.lines().count() > 5);
    assert_eq!(
        serde_json::from_str::<Value>(&compact).unwrap(),
        serde_json::from_str::<Value>(&pretty).unwrap()
    );
    // the global options go after the subcommand too
    let late = cli
        .ok(&["encryption-key", "list", "--output-format", "json"])
        .stdout;
    assert_eq!(late, compact);
    let text = cli.ok(&["encryption-key", "list"]).stdout;
    assert!(serde_json::from_str::<Value>(&text).is_err());

    // usage errors: 255 as every error (upstream's status), nothing on stdout
    for args in [
        vec!["--output-format", "yaml", "encryption-key", "list"],
        vec!["encryption-key"],
        vec!["encryption-key", "import", "no-file"],
        vec!["encryption-key", "frobnicate"],
        vec!["generate-completion", "tcsh"],
    ] {
        let run = cli.run(&args);
        assert_eq!(run.code, EXIT_ERROR, "{args:?}: {run:?}");
        assert_eq!(run.stdout, "", "{args:?}");
        // one line, as every other error
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with("Error: "),
            "{args:?}: {}",
            run.stderr
        );
    }

    // the default config dir comes from $PBS_CONFIG_DIR
    let mut cmd = Command::new(pbs_test_kit::bins::manager());
    cmd.args(["--output-format", "json", "encryption-key", "list"])
        .env("PBS_CONFIG_DIR", cli.path());
    let run = Cli::run_command(cmd, None);
    assert_eq!(run.code, EXIT_OK, "{run:?}");
    assert_eq!(run.stdout, compact);
}

#[test]
fn help_documents_the_exit_statuses() {
    let cli = Cli::new();
    let help = cli.ok(&["--help"]).stdout;
    for line in [
        "Exit status:",
        "  0    success",
        "  1    verify, audit verify: problems remain",
        "  255  error",
    ] {
        assert!(help.contains(line), "{line}: {help}");
    }
    let verify = cli.ok(&["encryption-key", "verify", "--help"]).stdout;
    assert!(
        verify.contains("Exit status: 0 clean, 1 problems remain, 255 could not check"),
        "{verify}"
    );
}

fn run_bash(script: &str) -> String {
    let bin_dir = pbs_test_kit::bins::bin_dir();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("bash")
        .arg("--norc")
        .arg("--noprofile")
        .arg("-c")
        .arg(script)
        .env("PATH", path)
        .env_remove("PBS_CONFIG_DIR")
        .output()
        .expect("run bash");
    assert!(
        output.status.success(),
        "bash failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// What bash completes after the words before the cursor (the word being
/// completed empty), with `dir` the config dir of the test's keys and jobs.
fn completion_cases(dir: &str) -> Vec<(String, Vec<&'static str>)> {
    let mut cases = command_cases();
    cases.extend(value_cases(dir));
    cases
}

/// The commands, then the subcommands of `encryption-key`.
fn command_cases() -> Vec<(String, Vec<&'static str>)> {
    vec![
        (
            String::new(),
            vec![
                "encryption-key",
                "sync-job",
                "user",
                "acl",
                "audit",
                "generate-completion",
                "generate-man",
                "help",
            ],
        ),
        (
            "encryption-key".into(),
            vec![
                "list",
                "show",
                "create",
                "import",
                "export",
                "export-verify",
                "restore",
                "paperkey",
                "rotate",
                "archive",
                "unarchive",
                "remove",
                "trash",
                "verify",
                "help",
            ],
        ),
    ]
}

/// Key ids, job ids and option values, read from `dir` where they are ids.
fn value_cases(dir: &str) -> Vec<(String, Vec<&'static str>)> {
    vec![
        (
            format!("--config-dir {dir} encryption-key show"),
            vec!["key-alpha", "key-beta"],
        ),
        (
            format!("--config-dir {dir} audit list --key"),
            vec!["key-alpha", "key-beta"],
        ),
        (
            format!("encryption-key --config-dir {dir} delete"),
            vec!["key-alpha", "key-beta"],
        ),
        // bash splits "--config-dir=DIR" at "=" (COMP_WORDBREAKS); also as one word
        (
            format!("--config-dir = {dir} encryption-key archive"),
            vec!["key-alpha", "key-beta"],
        ),
        (
            format!("--config-dir={dir} encryption-key archive"),
            vec!["key-alpha", "key-beta"],
        ),
        (format!("--config-dir {dir} encryption-key create"), vec![]),
        (
            format!("--config-dir {dir} encryption-key paperkey"),
            vec!["key-alpha", "key-beta"],
        ),
        (
            format!("--config-dir {dir} sync-job update"),
            vec!["nightly", "weekly"],
        ),
        (
            format!("--config-dir {dir} sync-job update nightly --associated-key"),
            vec!["key-alpha", "key-beta"],
        ),
        (
            format!(
                "--config-dir {dir} sync-job update nightly --active-encryption-key key-alpha --delete"
            ),
            pbs_api_types::SYNC_JOB_DELETABLE_PROPERTIES
                .iter()
                .map(|property| property.value)
                .collect(),
        ),
        (format!("--config-dir {dir} sync-job show nightly"), vec![]),
        (
            format!("--config-dir {dir} encryption-key rotate --job"),
            vec!["nightly", "weekly"],
        ),
        (
            format!("--config-dir {dir} encryption-key rotate --job nightly --job"),
            vec!["nightly", "weekly"],
        ),
        (
            "--output-format".into(),
            vec!["text", "json", "json-pretty"],
        ),
        ("generate-completion".into(), vec!["bash"]),
        // no config dir there: nothing, and no error
        (
            "--config-dir /nonexistent/dir encryption-key show".into(),
            vec![],
        ),
    ]
}

#[test]
fn bash_completion_completes_commands_options_and_ids() {
    let cli = Cli::new();
    cli.create("key-alpha");
    cli.create("key-beta");
    sync_cfg(&cli, TWO_JOBS);
    let script_file = cli.scratch_file(
        "completion.bash",
        cli.ok(&["generate-completion", "bash"]).stdout.as_bytes(),
    );
    let script = script_file.to_str().unwrap();
    run_bash(&format!("bash -n {script}"));

    let dir = cli.path().to_str().unwrap();
    let cases = completion_cases(dir);
    let mut program = format!("source {script}\n");
    for (before, _) in &cases {
        program.push_str(&format!(
            "COMP_WORDS=(proxmox-backup-manager {before} ''); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMPREPLY=(); _proxmox_backup_manager; echo \"${{COMPREPLY[*]}}\"\n"
        ));
    }
    // a word being completed, and an option name
    program.push_str(&format!(
        "COMP_WORDS=(proxmox-backup-manager --config-dir {dir} encryption-key show key-b); COMP_CWORD=5; _proxmox_backup_manager; echo \"${{COMPREPLY[*]}}\"\n\
         COMP_WORDS=(proxmox-backup-manager encryption-key list --inc); COMP_CWORD=3; _proxmox_backup_manager; echo \"${{COMPREPLY[*]}}\"\n\
         complete -p proxmox-backup-manager\n"
    ));
    let output = run_bash(&program);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), cases.len() + 3, "{output}");
    for ((before, want), got) in cases.iter().zip(&lines) {
        assert_eq!(*got, want.join(" "), "completing after {before:?}");
    }
    assert_eq!(lines[cases.len()], "key-beta");
    assert_eq!(lines[cases.len() + 1], "--include-archived");
    assert_eq!(
        lines[cases.len() + 2],
        "complete -F _proxmox_backup_manager proxmox-backup-manager"
    );

    the_hidden_helper_is_silent_on_errors(&cli, lines[0]);
}

/// The hidden helper: ids in file order; silent and successful on errors;
/// hidden from help and from the completion of the first word
/// (`top_level`).
fn the_hidden_helper_is_silent_on_errors(cli: &Cli, top_level: &str) {
    let keys = cli.ok(&["__complete", "key-ids"]).stdout;
    assert_eq!(keys, "key-alpha\nkey-beta\n");
    assert_eq!(
        cli.ok(&["__complete", "job-ids"]).stdout,
        "nightly\nweekly\n"
    );
    std::fs::write(cli.path().join("sync.cfg"), "garbage\n").unwrap();
    let run = cli.run(&["__complete", "job-ids"]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "")
    );
    let mut cmd = Command::new(pbs_test_kit::bins::manager());
    cmd.args(["--config-dir", "/nonexistent/dir", "__complete", "key-ids"]);
    let run = Cli::run_command(cmd, None);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "")
    );
    // hidden from help and completion
    assert!(!cli.ok(&["--help"]).stdout.contains("__complete"));
    assert!(!top_level.contains("__complete"));
}

#[test]
fn man_page_covers_every_command() {
    let cli = Cli::new();
    let page = cli.ok(&["generate-man"]).stdout;
    assert!(page.contains(".TH proxmox-backup-manager 1 "), "{page}");
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        ".SH COMMANDS",
        ".SH \"EXIT STATUS\"",
        ".SH ENVIRONMENT",
        ".SH FILES",
        ".SH EXAMPLES",
    ] {
        assert!(page.contains(section), "{section} missing");
    }
    // subsection titles are control arguments: quoted when they hold a space
    for command in [
        "\"encryption-key list\"",
        "\"encryption-key show\"",
        "\"encryption-key create\"",
        "\"encryption-key import\"",
        "\"encryption-key archive\"",
        "\"encryption-key unarchive\"",
        "\"encryption-key remove\"",
        "\"encryption-key verify\"",
        "\"encryption-key rotate\"",
        "\"sync-job list\"",
        "\"sync-job show\"",
        "\"sync-job update\"",
        "generate-completion",
        "generate-man",
    ] {
        assert!(
            page.contains(&format!("\n.SS {command}\n")),
            "{command} missing"
        );
    }
    for option in [
        "\\-\\-include\\-archived",
        "\\-\\-output\\-file",
        "\\-\\-repair",
        "\\-\\-associated\\-key",
        "\\-\\-archive\\-old",
        "\\-\\-abort",
    ] {
        assert!(page.contains(option), "{option} missing");
    }
    assert!(!page.contains("__complete"));
}

/// A config dir that root moved to another disk and linked back (as
/// `/etc/proxmox-backup -> /srv/pbs-config`): every command works through
/// the link, as upstream's do, and the key paths keep the link's spelling.
/// Before, each writer refused it ("exists but is not a directory") while
/// `list` read through it.
#[test]
fn a_config_dir_linked_from_another_disk() {
    let tmp = TestDir::new();
    let (disk, link) = (tmp.path().join("disk"), tmp.path().join("linked"));
    std::fs::create_dir(&disk).unwrap();
    std::os::unix::fs::symlink(&disk, &link).unwrap();
    let manager = Manager::new(&link);
    let out = tmp.path().join("key.json");
    for args in [
        &["encryption-key", "create", "key-one", "--output-file"][..],
        &["encryption-key", "archive", "key-one"],
        &["encryption-key", "verify"],
        &["encryption-key", "remove", "key-one"],
        &["encryption-key", "verify"],
    ] {
        let mut args = args.to_vec();
        if args.ends_with(&["--output-file"]) {
            args.push(out.to_str().unwrap());
        }
        let run = manager.run(&args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        if args[1] == "verify" {
            assert!(run.stdout.contains("result: clean"), "{run:?}");
        }
    }
    assert!(disk.join("encryption-keys").is_dir());
    let trash = manager.run(&["encryption-key", "trash", "list", "--output-format", "json"]);
    assert!(trash.stdout.contains("key-one@"), "{trash:?}");
}
