//! The administrator's view of `proxmox-backup-manager`: upstream's table
//! layout and output variables, the TTY rule of `create` and echo-less
//! passwords in a real pseudo-terminal, and upstream's verbs (`remove`,
//! `user update|remove|permissions`, `acl list`).
//!
//! The terminal tests run the binary on a pty pair (the kit's
//! [`PtyRun`]): `isatty` is true for real; the test reads what the terminal
//! shows from the master.

use std::process::Command;

use serde_json::{Value, json};

use pbs_test_kit::pty::PtyRun;
use pbs_test_kit::{Run, TestDir};

const EXIT_ERROR: i32 = 255;

/// The kit's runner on a temporary config dir, with the environment these
/// tests need on top: a UTF-8 locale (box-drawing tables) and none of the
/// `PROXMOX_OUTPUT_*` variables unless a test sets them.
struct Manager {
    dir: TestDir,
    kit: pbs_test_kit::Manager,
}

impl Manager {
    fn new() -> Self {
        let dir = TestDir::new();
        let kit = pbs_test_kit::Manager::new(dir.path());
        Self { dir, kit }
    }

    fn command(&self, env: &[(&str, &str)], args: &[&str]) -> Command {
        let mut cmd = self.kit.command(args);
        cmd.env("LC_ALL", "C.UTF-8")
            .env_remove("PROXMOX_OUTPUT_FORMAT")
            .env_remove("PROXMOX_OUTPUT_NO_BORDER")
            .env_remove("PROXMOX_OUTPUT_NO_HEADER");
        for (name, value) in env {
            cmd.env(name, value);
        }
        cmd
    }

    fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        pbs_test_kit::Manager::run_command(self.command(env, args), None)
    }

    /// A run that must succeed; its stdout.
    fn ok_env(&self, env: &[(&str, &str)], args: &[&str]) -> String {
        let run = self.run_env(env, args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        run.stdout
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_env(&[], args)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output-format", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// A run that must fail with 255, nothing on stdout and one error
    /// line; the line without `Error: `.
    fn fail_env(&self, env: &[(&str, &str)], args: &[&str]) -> String {
        let run = self.run_env(env, args);
        assert_eq!(run.code, EXIT_ERROR, "{args:?}: {run:?}");
        assert_eq!(run.stdout, "", "{args:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {run:?}");
        run.stderr
            .trim_end()
            .strip_prefix("Error: ")
            .expect("Error: prefix")
            .to_string()
    }

    fn fail(&self, args: &[&str]) -> String {
        self.fail_env(&[], args)
    }

    /// Creates a key through a pipe (its one allowed output).
    fn create_key(&self, id: &str) {
        self.ok(&["encryption-key", "create", id]);
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}

/// The rows of a bordered table (box drawing), header first, cells trimmed.
fn rows(text: &str) -> Vec<Vec<String>> {
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

/// The width of the widest line, in terminal columns (every character of
/// these tables is one column wide).
fn width(text: &str) -> usize {
    text.lines()
        .map(|line| line.chars().count())
        .max()
        .unwrap_or(0)
}

/// Checks the frame of a bordered table: top, header, header rule, rows
/// with rules between them, bottom, every line as wide as the top.
fn assert_bordered(text: &str, header: &[&str]) {
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 4, "{text}");
    assert!(
        lines[0].starts_with('┌') && lines[0].ends_with('┐'),
        "{text}"
    );
    assert_eq!(rows(text)[0], header, "{text}");
    assert!(
        lines[2].starts_with('╞') && lines[2].ends_with('╡'),
        "{text}"
    );
    let last = lines.last().unwrap();
    assert!(last.starts_with('└') && last.ends_with('┘'), "{text}");
    let top = lines[0].chars().count();
    for line in &lines {
        assert_eq!(line.chars().count(), top, "ragged line {line:?} in\n{text}");
        let first = line.chars().next().unwrap();
        assert!("┌│╞├└".contains(first), "{line:?}");
    }
}

#[test]
fn tables_are_bordered_with_lowercase_headers_and_fit_the_terminal() {
    let cli = Manager::new();
    cli.create_key("offsite-2026");
    cli.create_key("tape-2024-all");
    cli.ok(&["encryption-key", "archive", "tape-2024-all"]);
    let keys = cli.json(&["encryption-key", "list", "--include-archived"]);
    key_lists_fit_their_columns(&cli, &keys);
    show_is_name_and_value(&cli, &keys);
    sync_jobs_stack_in_one_cell(&cli);
    json_is_what_the_api_returns(&cli);
}

/// The key list: five columns, fingerprints shortened to 8 bytes, about 90
/// columns; with archived keys six, in file order, dates right-aligned.
fn key_lists_fit_their_columns(cli: &Manager, keys: &Value) {
    let list = cli.ok(&["encryption-key", "list"]);
    assert_bordered(
        &list,
        &["id", "fingerprint", "created", "hint", "sync-jobs"],
    );
    let full = keys[0]["fingerprint"].as_str().unwrap();
    assert_eq!(rows(&list)[1][..2], ["offsite-2026", &full[..23]]);
    assert!(width(&list) <= 100, "{list}");
    // with archived keys: the archive time too, 120 columns for a
    // 12-character id, 132 (the wide terminal) for a 23-character one: the
    // jobs that still need an archived key are what deletion rests on
    cli.create_key("a-rather-long-key-id-23");
    let archived = cli.ok(&["encryption-key", "list", "--include-archived"]);
    assert_bordered(
        &archived,
        &[
            "id",
            "fingerprint",
            "created",
            "archived-at",
            "hint",
            "sync-jobs",
        ],
    );
    assert!(width(&archived) <= 132, "{archived}");
    // rows in file order, a rule between them
    let ids: Vec<String> = rows(&archived)[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(
        ids,
        ["offsite-2026", "tape-2024-all", "a-rather-long-key-id-23"]
    );
    assert_eq!(archived.lines().filter(|l| l.starts_with('├')).count(), 2);
    // dates right-aligned as upstream aligns numbers
    let created = archived.lines().nth(3).unwrap().split('│').nth(3).unwrap();
    assert!(
        created.starts_with(' ') && created.ends_with("+00:00 "),
        "{created:?}"
    );
}

/// `show`: Name/Value, the fingerprint in full, 120 columns.
fn show_is_name_and_value(cli: &Manager, keys: &Value) {
    let shown = cli.ok(&["encryption-key", "show", "tape-2024-all"]);
    assert_bordered(&shown, &["Name", "Value"]);
    let fields: Vec<Vec<String>> = rows(&shown)[1..].to_vec();
    let names: Vec<&str> = fields.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "fingerprint",
            "kdf",
            "created",
            "modified",
            "archived-at",
            "path",
            "last-exported",
            "last-export-verify",
            "last-changed-by"
        ]
    );
    assert_eq!(fields[1][1], keys[1]["fingerprint"].as_str().unwrap());
    assert!(width(&shown) <= 120, "{shown}");
}

/// Sync jobs: several associated keys stack in one cell, and a key's jobs
/// in the key list.
fn sync_jobs_stack_in_one_cell(cli: &Manager) {
    std::fs::write(
        cli.dir.path().join("sync.cfg"),
        "sync: nightly\n\tstore local1\n\tremote-store remote1\n\tremote other\n\
         \tactive-encryption-key offsite-2026\n\tassociated-key tape-2024-all\n\
         \tassociated-key a-rather-long-key-id-23\n",
    )
    .unwrap();
    let jobs = cli.ok(&["sync-job", "list"]);
    assert_bordered(
        &jobs,
        &[
            "id",
            "sync-direction",
            "store",
            "remote",
            "remote-store",
            "active-encryption-key",
            "associated-key",
        ],
    );
    let job_rows = rows(&jobs);
    // the direction upstream assumes when none is set
    assert_eq!(job_rows[1][1], "pull");
    assert_eq!(job_rows[1][6], "tape-2024-all");
    assert_eq!(job_rows[2][0], "");
    assert_eq!(job_rows[2][6], "a-rather-long-key-id-23");
    assert!(width(&jobs) <= 120, "{jobs}");
    // a key's jobs stack in the key list, with how each uses it
    let list = cli.ok(&["encryption-key", "list", "--include-archived"]);
    let key_rows = rows(&list);
    assert_eq!(key_rows[1][0], "offsite-2026", "{list}");
    assert_eq!(key_rows[1][5], "nightly (active)", "{list}");
    assert_eq!(key_rows[2][5], "nightly (associated)", "{list}");
}

/// JSON is what the API returns, unchanged.
fn json_is_what_the_api_returns(cli: &Manager) {
    let pretty = cli.ok(&["--output-format", "json-pretty", "encryption-key", "list"]);
    assert_eq!(
        serde_json::from_str::<Value>(&pretty).unwrap(),
        cli.json(&["encryption-key", "list"])
    );
    assert!(
        !pretty.contains('│') && pretty.ends_with("}\n]\n"),
        "{pretty}"
    );
}

#[test]
fn output_variables_and_options_as_upstream() {
    let cli = Manager::new();
    cli.create_key("env-key-1");
    cli.create_key("env-key-2");
    let args = ["encryption-key", "list"];
    let table = cli.ok(&args);
    let json = cli.ok(&["--output-format", "json", "encryption-key", "list"]);
    let pretty = cli.ok(&["--output-format", "json-pretty", "encryption-key", "list"]);

    // PROXMOX_OUTPUT_FORMAT is the default; --output-format wins over it
    assert_eq!(
        cli.ok_env(&[("PROXMOX_OUTPUT_FORMAT", "json")], &args),
        json
    );
    assert_eq!(
        cli.ok_env(&[("PROXMOX_OUTPUT_FORMAT", "json-pretty")], &args),
        pretty
    );
    let mut text_args = vec!["--output-format", "text"];
    text_args.extend_from_slice(&args);
    assert_eq!(
        cli.ok_env(&[("PROXMOX_OUTPUT_FORMAT", "json")], &text_args),
        table
    );
    let err = cli.fail_env(&[("PROXMOX_OUTPUT_FORMAT", "yaml")], &args);
    assert!(
        err.contains("PROXMOX_OUTPUT_FORMAT") && err.contains("\"yaml\""),
        "{err}"
    );

    // PROXMOX_OUTPUT_NO_BORDER (any value, even empty) = --noborder: no
    // borders and no header, one space between columns
    let noborder = cli.ok(&["--noborder", "encryption-key", "list"]);
    for value in ["1", ""] {
        assert_eq!(
            cli.ok_env(&[("PROXMOX_OUTPUT_NO_BORDER", value)], &args),
            noborder
        );
    }
    let lines: Vec<&str> = noborder.lines().collect();
    assert_eq!(lines.len(), 2, "{noborder}");
    assert!(lines[0].starts_with("env-key-1 "), "{noborder}");
    assert_eq!(lines[0].split_whitespace().count(), 5, "{noborder}");
    assert!(!noborder.contains(['│', '─', '|']), "{noborder}");

    // PROXMOX_OUTPUT_NO_HEADER = --noheader: borders without the header
    let noheader = cli.ok(&["--noheader", "encryption-key", "list"]);
    assert_eq!(
        cli.ok_env(&[("PROXMOX_OUTPUT_NO_HEADER", "1")], &args),
        noheader
    );
    assert!(
        noheader.starts_with('┌') && !noheader.contains('╞'),
        "{noheader}"
    );
    assert_eq!(rows(&noheader).len(), 2, "{noheader}");
    assert_eq!(rows(&noheader)[0][0], "env-key-1");

    // the JSON formats ignore the table options
    assert_eq!(
        cli.ok_env(
            &[
                ("PROXMOX_OUTPUT_NO_BORDER", "1"),
                ("PROXMOX_OUTPUT_NO_HEADER", "1")
            ],
            &["--output-format", "json", "encryption-key", "list"]
        ),
        json
    );

    // a locale that is not UTF-8: upstream's ASCII borders
    let ascii = cli.ok_env(&[("LC_ALL", "C")], &args);
    let lines: Vec<&str> = ascii.lines().collect();
    assert!(
        lines[0].starts_with("+=") && lines[0].ends_with("=+"),
        "{ascii}"
    );
    assert!(lines[1].starts_with("| id "), "{ascii}");
    assert!(ascii.is_ascii(), "{ascii}");
    assert_eq!(ascii.lines().count(), table.lines().count());

    // an empty list shows its header (nothing at all looked broken), and
    // nothing in the script-friendly forms
    let empty = Manager::new();
    let text = empty.ok(&["user", "list-tokens", "root@pam"]);
    assert_eq!(rows(&text), [["tokenid", "enable", "expire", "comment"]]);
    assert!(text.starts_with('┌') && text.ends_with("┘\n"), "{text}");
    assert_eq!(
        empty.ok(&["--noborder", "user", "list-tokens", "root@pam"]),
        ""
    );
    assert_eq!(empty.json(&["user", "list-tokens", "root@pam"]), json!([]));
}

fn on_pty(cli: &Manager, args: &[&str]) -> (i32, String) {
    let (code, text, _echo) = PtyRun::start(cli.command(&[], args)).finish();
    (code, text)
}

#[test]
fn create_prints_a_key_to_a_terminal_only_when_asked() {
    let cli = Manager::new();
    // unasked: refused, with the reason and the ways out; nothing created
    for args in [
        &["encryption-key", "create", "tty-key"][..],
        &[
            "--output-format",
            "json",
            "encryption-key",
            "create",
            "tty-key",
        ],
    ] {
        let (code, text) = on_pty(&cli, args);
        assert_eq!(code, EXIT_ERROR, "{args:?}: {text}");
        assert!(
            text.starts_with("Error: failed to create encryption key 'tty-key' - refusing to print the key to a terminal")
                && text.contains("--output-file FILE")
                && text.contains("--print-key")
                && text.lines().count() == 1,
            "{text}"
        );
        assert!(!text.contains("\"data\""), "{text}");
        assert!(cli.dir.snapshot().is_empty(), "{:?}", cli.dir.snapshot());
    }

    // --print-key: shown on the terminal, with the warning, and stored
    let (code, text) = on_pty(
        &cli,
        &["encryption-key", "create", "tty-key", "--print-key"],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("\"data\": \"") && text.contains("only time"),
        "{text}"
    );
    assert_eq!(cli.json(&["encryption-key", "list"])[0]["id"], "tty-key");

    // --output-file: the key in the file, the terminal shows metadata only
    let file = cli.dir.path().with_extension("key.enc");
    let (code, text) = on_pty(
        &cli,
        &[
            "encryption-key",
            "create",
            "file-key",
            "--output-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with("created encryption key 'file-key'"),
        "{text}"
    );
    assert!(!text.contains("\"data\""), "{text}");
    let written = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(written.contains("\"data\""));

    // a pipe gets the key as before, and both destinations at once are a
    // usage error
    let piped = cli.ok(&["encryption-key", "create", "pipe-key"]);
    assert!(piped.contains("\"data\""), "{piped}");
    let err = cli.fail(&[
        "encryption-key",
        "create",
        "x-key",
        "--print-key",
        "--output-file",
        "/tmp/x",
    ]);
    assert!(
        err.contains("--print-key") && err.contains("--output-file"),
        "{err}"
    );
}

#[test]
fn passwords_on_a_terminal_are_not_echoed_and_echo_comes_back() {
    let cli = Manager::new();
    cli.ok(&["user", "create", "erin@pbs"]);
    let password = "erin's terminal pass";
    let mut run = PtyRun::start(cli.command(&[], &["user", "passwd", "erin@pbs"]));
    run.expect("New password: ");
    run.type_line(password);
    run.expect("Retype new password: ");
    run.type_line(password);
    let (code, text, echo) = run.finish();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("password of 'erin@pbs' changed"), "{text}");
    assert!(!text.contains(password), "echoed: {text}");
    assert!(echo, "echo not restored");
    let dir = pbs_config::ConfigDir::new(cli.dir.path()).unwrap();
    dir.shadow()
        .verify_password(&"erin@pbs".parse().unwrap(), password)
        .unwrap();

    // a mismatch fails, and echo is back too
    let mut run = PtyRun::start(cli.command(&[], &["user", "passwd", "erin@pbs"]));
    run.expect("New password: ");
    run.type_line("first try 123");
    run.expect("Retype new password: ");
    run.type_line("second try 456");
    let (code, text, echo) = run.finish();
    assert_eq!(code, EXIT_ERROR, "{text}");
    assert!(text.contains("Error: passwords do not match"), "{text}");
    assert!(
        !text.contains("first try") && !text.contains("second try"),
        "{text}"
    );
    assert!(echo, "echo not restored after an error");
}

/// Finding 67 at the terminal: a public key's first line pasted at the
/// prompt for a new bundle's passphrase is refused before anything is
/// written, as a public key given as the passphrase file is; a real
/// passphrase typed the same way makes the bundle.
#[test]
fn a_public_key_typed_as_a_new_bundles_passphrase_is_refused() {
    let cli = Manager::new();
    cli.create_key("typed-key");
    let bundle = cli.dir.path().with_extension("typed.pbsx");
    let export = || {
        let mut run = PtyRun::start(cli.command(
            &[],
            &[
                "encryption-key",
                "export",
                "typed-key",
                "--output-file",
                bundle.to_str().unwrap(),
            ],
        ));
        run.expect("Passphrase for the export bundle: ");
        run
    };
    let mut run = export();
    run.type_line("-----BEGIN PUBLIC KEY-----");
    run.expect("Retype passphrase: ");
    run.type_line("-----BEGIN PUBLIC KEY-----");
    let (code, text, echo) = run.finish();
    assert_eq!(code, EXIT_ERROR, "{text}");
    assert!(
        text.contains("the passphrase typed is no secret")
            && text.contains("an RSA public key goes to --master-pubkey"),
        "{text}"
    );
    assert!(echo, "echo not restored");
    assert!(!bundle.exists());

    let mut run = export();
    run.type_line("a passphrase of mine");
    run.expect("Retype passphrase: ");
    run.type_line("a passphrase of mine");
    let (code, text, _echo) = run.finish();
    assert_eq!(code, 0, "{text}");
    assert!(bundle.exists());
}

/// Finding 65 at the terminal: the prompt for a key file's passphrase shows
/// the file's hint with its control characters escaped, so its escape
/// sequences never reach the terminal.
#[test]
fn the_import_prompt_shows_a_hint_escaped() {
    let cli = Manager::new();
    let vector = pbs_test_kit::dirs::vectors_dir().join("keys/pbkdf2-with-hint.enc");
    let mut key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(vector).unwrap()).unwrap();
    key["hint"] = "x\u{1b}[2Kdone\u{1b}[8m".into();
    let file = cli.dir.path().with_extension("hostile.enc");
    std::fs::write(&file, serde_json::to_string(&key).unwrap()).unwrap();
    let mut run = PtyRun::start(cli.command(
        &[],
        &[
            "encryption-key",
            "import",
            "hostile",
            "--file",
            file.to_str().unwrap(),
        ],
    ));
    run.expect("Passphrase of the key (hint: x\\u{1b}[2Kdone\\u{1b}[8m): ");
    run.type_line("not the passphrase of it");
    let (code, text, echo) = run.finish();
    assert_eq!(code, EXIT_ERROR, "{text}");
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(echo, "echo not restored");
}

#[test]
fn remove_is_the_verb_and_delete_its_alias() {
    let cli = Manager::new();
    for id in ["old-key-1", "old-key-2"] {
        cli.create_key(id);
        cli.ok(&["encryption-key", "archive", id]);
    }
    // into the trash (issue 14), and the message says so
    for (verb, id) in [("remove", "old-key-1"), ("delete", "old-key-2")] {
        let text = cli.ok(&["encryption-key", verb, id]);
        assert!(
            text.starts_with(&format!(
                "removed encryption key '{id}' - kept in the trash as '{id}@"
            )),
            "{verb}: {text}"
        );
    }
    let err = cli.fail(&["encryption-key", "remove", "old-key-1"]);
    assert!(err.contains("no such encryption key 'old-key-1'"), "{err}");
    let err = cli.fail(&["encryption-key", "remove", "x", "--digest", "12"]);
    assert!(err.starts_with("failed to remove encryption key"), "{err}");
    let help = cli.ok(&["encryption-key", "--help"]);
    assert!(
        help.contains("remove") && help.contains("[alias: delete]"),
        "{help}"
    );
}

#[test]
fn user_update_remove_and_permissions() {
    let cli = Manager::new();
    cli.ok(&["user", "create", "bob@pbs", "--email", "bob@example.com"]);
    cli.ok(&[
        "user",
        "update",
        "bob@pbs",
        "--comment",
        "  key admin ",
        "--firstname",
        "Bob",
        "--enable",
        "false",
        "--expire",
        "4102444800",
    ]);
    let bob = &cli.json(&["user", "list"])[1];
    assert_eq!(
        *bob,
        json!({"userid": "bob@pbs", "comment": "key admin", "enable": false,
               "expire": 4102444800_i64, "firstname": "Bob", "email": "bob@example.com"})
    );
    let table = cli.ok(&["user", "list"]);
    assert_bordered(
        &table,
        &[
            "userid",
            "enable",
            "expire",
            "firstname",
            "lastname",
            "email",
            "comment",
        ],
    );
    assert_eq!(
        rows(&table)[2][..3],
        ["bob@pbs", "0", "2100-01-01 00:00:00 +00:00"]
    );
    assert_eq!(rows(&table)[1][..3], ["root@pam", "1", "never"]);
    cli.ok(&[
        "user", "update", "bob@pbs", "--delete", "email", "--enable", "true",
    ]);
    let bob = &cli.json(&["user", "list"])[1];
    assert!(
        bob.get("email").is_none() && bob.get("enable").is_none(),
        "{bob}"
    );
    user_update_errors_name_what_failed(&cli);
    user_permissions_as_json_and_table(&cli);
    user_remove_takes_tokens_and_acl_entries(&cli);
}

/// Errors of `user update` name what failed.
fn user_update_errors_name_what_failed(cli: &Manager) {
    let err = cli.fail(&["user", "update", "zed@pbs", "--comment", "x"]);
    assert_eq!(err, "user 'zed@pbs' does not exist");
    let err = cli.fail(&["user", "update", "bob@pbs", "--digest", "xyz"]);
    assert!(
        err.starts_with("failed to update user 'bob@pbs' - invalid --digest"),
        "{err}"
    );
    let err = cli.fail(&["user", "update", "carol@pam", "--password", "long enough"]);
    assert!(
        err.contains("only 'pbs' realm users have passwords"),
        "{err}"
    );
}

/// `user permissions`: upstream's JSON, a table for text.
fn user_permissions_as_json_and_table(cli: &Manager) {
    cli.ok(&["user", "generate-token", "bob@pbs", "t1"]);
    cli.ok(&["acl", "update", "/system", "Audit", "--auth-id", "bob@pbs"]);
    cli.ok(&[
        "acl",
        "update",
        "/system/encryption-keys",
        "Admin",
        "--auth-id",
        "bob@pbs!t1",
    ]);
    let perms = cli.json(&["user", "permissions", "bob@pbs!t1"]);
    assert_eq!(
        perms["/system/encryption-keys"],
        json!({"Datastore.Audit": true, "Sys.Audit": true})
    );
    assert_eq!(perms["/"], json!({}));
    let text = cli.ok(&["user", "permissions", "bob@pbs", "--path", "/system"]);
    assert_eq!(
        rows(&text),
        [
            ["path", "privilege", "propagate"],
            ["/system", "Datastore.Audit", "1"],
            ["", "Sys.Audit", "1"],
        ]
    );
    let err = cli.fail(&["user", "permissions", "nobody@pbs"]);
    assert!(err.contains("user 'nobody@pbs' does not exist"), "{err}");
}

/// `user remove`: the user, its tokens and their ACL entries; delete is an
/// alias.
fn user_remove_takes_tokens_and_acl_entries(cli: &Manager) {
    assert!(cli.file("acl.cfg").contains("bob@pbs!t1"));
    assert_eq!(
        cli.ok(&["user", "remove", "bob@pbs"]),
        "removed user 'bob@pbs'\n"
    );
    assert_eq!(cli.json(&["user", "list"]).as_array().unwrap().len(), 1);
    assert!(!cli.file("user.cfg").contains("bob@pbs"));
    assert_eq!(cli.file("acl.cfg"), "");
    assert!(!cli.file("token.shadow").contains("bob@pbs"));
    let err = cli.fail(&["user", "delete", "bob@pbs"]);
    assert_eq!(err, "user 'bob@pbs' does not exist");
    let err = cli.fail(&["user", "remove", "root@pam"]);
    assert!(err.contains("superuser"), "{err}");
}

#[test]
fn acl_list_has_upstreams_columns_sorted_by_ugid() {
    let cli = Manager::new();
    cli.ok(&["user", "create", "zoe@pbs"]);
    cli.ok(&["user", "create", "al@pbs"]);
    cli.ok(&["acl", "update", "/", "Audit", "--auth-id", "zoe@pbs"]);
    cli.ok(&[
        "acl",
        "update",
        "/system/encryption-keys",
        "Admin",
        "--auth-id",
        "al@pbs",
        "--propagate",
        "false",
    ]);
    let mut acl = cli.file("acl.cfg");
    acl.push_str("acl:1:/system:@admins:Audit\n");
    std::fs::write(cli.dir.path().join("acl.cfg"), acl).unwrap();

    let text = cli.ok(&["acl", "list"]);
    assert_bordered(&text, &["ugid", "path", "propagate", "roleid"]);
    assert_eq!(
        rows(&text)[1..],
        [
            ["@admins", "/system", "1", "Audit"],
            ["al@pbs", "/system/encryption-keys", "0", "Admin"],
            ["zoe@pbs", "/", "1", "Audit"],
        ]
    );
    // propagate is right-aligned, as upstream aligns booleans
    let cell = text.lines().nth(3).unwrap().split('│').nth(3).unwrap();
    assert!(cell.ends_with("1 ") && cell.starts_with("  "), "{cell:?}");
    // JSON: the API's entries in path order, as before
    let paths: Vec<String> = cli
        .json(&["acl", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paths, ["/", "/system", "/system/encryption-keys"]);
    let err = cli.fail(&["acl", "update", "/", "Boss", "--auth-id", "al@pbs"]);
    assert!(
        err.starts_with("failed to update the ACL - unknown role 'Boss'"),
        "{err}"
    );
}

/// Completes the last word of `words` with the generated bash script.
fn complete_in_bash(cli: &Manager, lines: &[&str]) -> Vec<String> {
    let script = cli.ok(&["generate-completion", "bash"]);
    let script_file = cli.dir.path().with_extension("completion.bash");
    std::fs::write(&script_file, script).unwrap();
    let mut program = format!("source {}\n", script_file.display());
    for words in lines {
        program.push_str(&format!(
            "COMP_WORDS=(proxmox-backup-manager {words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             COMPREPLY=(); _proxmox_backup_manager; echo \"${{COMPREPLY[*]}}\"\n"
        ));
    }
    let bin_dir = pbs_test_kit::bins::bin_dir();
    let output = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .env_remove("PBS_CONFIG_DIR")
        .output()
        .unwrap();
    std::fs::remove_file(&script_file).unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn completion_offers_every_id_kind() {
    let cli = Manager::new();
    cli.create_key("key-one");
    cli.ok(&["user", "create", "alice@pbs"]);
    cli.ok(&["user", "generate-token", "alice@pbs", "t1"]);
    cli.ok(&["user", "generate-token", "root@pam", "auto"]);
    cli.ok(&[
        "acl",
        "update",
        // a path upstream knows (others are refused)
        "/system/tasks",
        "Audit",
        "--auth-id",
        "alice@pbs",
    ]);
    let dir = cli.dir.path().to_str().unwrap();
    let cases = [
        (
            format!("--config-dir {dir} user update ''"),
            "root@pam alice@pbs",
        ),
        (
            format!("--config-dir {dir} user remove ''"),
            "root@pam alice@pbs",
        ),
        // the alias completes like the command
        (
            format!("--config-dir {dir} user delete ''"),
            "root@pam alice@pbs",
        ),
        (
            format!("--config-dir {dir} user permissions ''"),
            "root@pam alice@pbs alice@pbs!t1 root@pam!auto",
        ),
        (
            format!("--config-dir {dir} user delete-token alice@pbs ''"),
            "t1",
        ),
        (
            format!("--config-dir {dir} user delete-token root@pam ''"),
            "auto",
        ),
        (
            format!("--config-dir {dir} acl update / Audit --auth-id ''"),
            "root@pam alice@pbs alice@pbs!t1 root@pam!auto",
        ),
        (
            format!("--config-dir {dir} acl update ''"),
            "/ /system /system/encryption-keys /system/encryption-keys/key-one /system/tasks",
        ),
        (
            format!("--config-dir {dir} user permissions alice@pbs --path /system/e"),
            "/system/encryption-keys /system/encryption-keys/key-one",
        ),
        (format!("--config-dir {dir} acl update / Aud"), "Audit"),
        (
            format!("--config-dir {dir} encryption-key remove ''"),
            "key-one",
        ),
    ];
    let words: Vec<&str> = cases.iter().map(|(words, _)| words.as_str()).collect();
    let got = complete_in_bash(&cli, &words);
    assert_eq!(got.len(), cases.len(), "{got:?}");
    for ((words, want), got) in cases.iter().zip(&got) {
        assert_eq!(got, want, "completing {words:?}");
    }
    // roles: every known role after the path
    let roles = complete_in_bash(&cli, &[&format!("--config-dir {dir} acl update / ''")]);
    let roles: Vec<&str> = roles[0].split(' ').collect();
    let known: Vec<&str> = pbs_api_types::ROLES.iter().map(|(name, _)| *name).collect();
    assert_eq!(roles, known);
    // the helper itself: silent on a broken file
    std::fs::write(cli.dir.path().join("user.cfg"), "garbage\n").unwrap();
    assert_eq!(cli.ok(&["__complete", "auth-ids"]), "");
}

#[test]
fn man_pages_of_both_binaries() {
    let cli = Manager::new();
    let manager = cli.ok(&["generate-man"]);
    let output = Command::new(pbs_test_kit::bins::api())
        .arg("--generate-man")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let api = String::from_utf8(output.stdout).unwrap();
    assert!(api.contains(".TH proxmox-backup-api 8 "), "{api}");
    assert!(manager.contains(".TH proxmox-backup-manager 1 "));
    for page in [&manager, &api] {
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH OPTIONS",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH FILES",
            ".SH EXAMPLES",
        ] {
            assert!(page.contains(section), "{section} missing");
        }
        // plain roff: no Markdown
        assert!(!page.contains('`'), "a backtick in:\n{page}");
        // every file of the config dir, from pbs-config's table of files
        for file in pbs_config::files::ALL {
            let escaped = file.name.replace('-', "\\-");
            assert!(
                page.contains(&format!("\\fI/etc/proxmox\\-backup/{escaped}\\fR\n")),
                "{} missing from FILES",
                file.name
            );
        }
        assert!(page.contains("encryption\\-keys/ID.enc.lck"));
    }
    // the exit statuses, as --help and docs/cli.md give them
    let exit = manager.split(".SH \"EXIT STATUS\"").nth(1).unwrap();
    let exit = exit.split(".SH").next().unwrap();
    for code in ["\\fB0\\fR", "\\fB1\\fR", "\\fB255\\fR"] {
        assert!(exit.contains(code), "{code} missing: {exit}");
    }
    for variable in [
        "PROXMOX_OUTPUT_FORMAT",
        "PROXMOX_OUTPUT_NO_BORDER",
        "PROXMOX_OUTPUT_NO_HEADER",
    ] {
        assert!(manager.contains(variable), "{variable} missing");
    }
    for command in [
        "\"user update\"",
        "\"user remove\"",
        "\"user permissions\"",
        "\"acl list\"",
    ] {
        assert!(
            manager.contains(&format!("\n.SS {command}\n")),
            "{command} missing"
        );
    }
    assert!(manager.contains("Alias: delete."));
    assert!(
        api.contains("proxy.pem") && api.contains("SIGTERM"),
        "{api}"
    );
    assert!(!api.contains("generate\\-man"), "the hidden flag shows");
}
