//! The secrets audit: every command of `proxmox-backup-manager`, in every
//! output format, on a store with a set of keys, under `umask 000`.
//!
//! It fails if the hex or base64 of any key (or of any 8-byte piece of one)
//! appears anywhere but in the one place a key may be shown: the stdout of
//! `create` without `--output-file`, and that output file. "Anywhere" is
//! every stdout and stderr, and every file in the config dir other than the
//! key files themselves. After every command, every file in the config dir
//! must have its documented mode whatever the umask: the config dir 0700,
//! the key dir 0750, configs and key files 0640, lock files 0660, an output
//! file 0600.
//!
//! The list of commands is taken from the binary's own `--help`, so a new
//! command that this audit does not run makes it fail.
//!
//! The API half starts `proxmox-backup-api` (also under umask 000) on the
//! same config dir and calls every route (the route list is the daemon's
//! router tree, so a new route makes the audit fail until it calls it),
//! with tokens, a ticket and bad credentials. Only the
//! answers to `POST /config/encryption-keys` and to a paperkey may hold a
//! key, only the answer to `POST /access/ticket` a ticket and CSRF token,
//! only the stdout of `user generate-token` a token secret; no answer, no
//! stdout or stderr, and neither the daemon's log nor its access log may
//! hold any of them, a password or a passphrase. Export bundles (files and
//! answers) are held to the same rule: their keys are encrypted, never in
//! clear. The stdout of `paperkey` and `create --paperkey` may hold their
//! key, as `create`'s does.
//!
//! The audit is one test (each phase works on the store the phases before
//! left), run as named phases in [`PHASES`] order.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use pbs_key_config::KeyConfig;
use pbs_keystore::server::router::{endpoints, route_of};
use pbs_test_kit::dirs::{snapshot_with_locks, vectors_dir};
use pbs_test_kit::https::{self, urlencode};
use pbs_test_kit::manager::push_job_args;
use pbs_test_kit::privileges::umask_zero;
use pbs_test_kit::{ApiDaemon, Manager, Run, Sandbox, Secrets, raw_key};

const FORMATS: [&str; 3] = ["text", "json", "json-pretty"];
const FORM: &str = "application/x-www-form-urlencoded";

const ALICE_1: &str = "alice first pass phrase";
const ALICE_2: &str = "alice second pass phrase";
const BOB: &str = "bob's pass phrase on argv";

/// The store, the runner (under umask 000) with its secrets, and what the
/// audit has seen.
struct Audit {
    sandbox: Sandbox,
    manager: Manager,
    /// Input files and output files, outside the config dir.
    scratch: PathBuf,
    /// Command paths run (`encryption-key list`, ...) and routes called.
    covered: BTreeSet<String>,
    /// Output files of `create --output-file`: may hold their key, 0600.
    output_files: Vec<PathBuf>,
    /// Everything printed that may not hold a key, checked at the end too
    /// (a key learnt later must not have been printed earlier).
    transcript: Vec<(String, String)>,
    /// The daemon, while the API phases run.
    daemon: Option<AuditDaemon>,
    /// The secrets of `root@pam!audit` and `alice@pbs!t1`, once created.
    tokens: Option<(String, String)>,
}

impl Audit {
    fn new() -> Self {
        // the config dir does not exist until the first write creates it
        let sandbox = Sandbox::without_config_dir();
        let manager = Manager::new(sandbox.config_dir()).umask_zero();
        let scratch = sandbox.file("scratch");
        std::fs::create_dir(&scratch).unwrap();
        Self {
            sandbox,
            manager,
            scratch,
            covered: BTreeSet::new(),
            output_files: Vec::new(),
            transcript: Vec::new(),
            daemon: None,
            tokens: None,
        }
    }

    fn dir(&self) -> &Path {
        self.sandbox.config_dir()
    }

    fn secrets(&self) -> &Secrets {
        &self.manager.secrets
    }

    /// Runs `args` (after `--config-dir` and `--output-format`) under
    /// umask 000, then checks the modes of every file.
    fn raw_run(&mut self, format: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let all = [&["--output-format", format][..], args].concat();
        let run = Manager::run_command(self.manager.command(&all), stdin);
        // `--help` runs do not count as running the command
        if !args.contains(&"--help") {
            let words: Vec<&str> = args
                .iter()
                .copied()
                .take_while(|a| !a.starts_with('-'))
                .take(2)
                .collect();
            self.covered.insert(words[0].to_string());
            self.covered.insert(words.join(" "));
        }
        self.check_modes(&format!("{args:?}"));
        run
    }

    /// Checks `text` (named `what`) for secrets and keeps it for the end.
    fn printed(&mut self, what: String, text: String) {
        self.secrets().assert_absent(&what, &text);
        self.transcript.push((what, text));
    }

    /// A run whose output may not hold a key; returns it.
    fn run_stdin(&mut self, format: &str, args: &[&str], stdin: Option<&[u8]>, code: i32) -> Run {
        let run = self.raw_run(format, args, stdin);
        let what = format!("{format} {args:?}");
        assert_eq!(
            run.code, code,
            "{what}: stdout {} stderr {}",
            run.stdout, run.stderr
        );
        self.printed(format!("stdout of {what}"), run.stdout.clone());
        self.printed(format!("stderr of {what}"), run.stderr.clone());
        run
    }

    fn run(&mut self, format: &str, args: &[&str], code: i32) -> Run {
        self.run_stdin(format, args, None, code)
    }

    /// Runs `args` in every output format.
    fn all_formats(&mut self, args: &[&str], code: i32) {
        for format in FORMATS {
            self.run(format, args, code);
        }
    }

    /// `create ID`: the key on stdout (the one allowed place), the warning
    /// on stderr without it.
    fn create(&mut self, format: &str, id: &str) {
        let run = self.raw_run(format, &["encryption-key", "create", id], None);
        assert_eq!(run.code, 0, "create {id}: {}", run.stderr);
        let key_config = KeyConfig::from_json(run.stdout.as_bytes()).expect("key on stdout");
        self.secrets().key_file(id, &key_config);
        self.printed(format!("stderr of create {id}"), run.stderr);
    }

    /// `create ID --output-file FILE`: the key in FILE (0600), not on stdout.
    fn create_to_file(&mut self, format: &str, id: &str) {
        let file = self.scratch.join(format!("{id}.out.enc"));
        let file_text = file.display().to_string();
        let run = self.raw_run(
            format,
            &["encryption-key", "create", id, "--output-file", &file_text],
            None,
        );
        assert_eq!(run.code, 0, "create {id} --output-file: {}", run.stderr);
        let key_config = KeyConfig::load(&file).unwrap();
        self.secrets().key_file(id, &key_config);
        for (stream, text) in [("stdout", run.stdout), ("stderr", run.stderr)] {
            self.printed(format!("{stream} of create {id} --output-file"), text);
        }
        self.output_files.push(file);
    }

    /// Writes an input file in the scratch dir.
    fn input(&self, name: &str, data: &[u8]) -> String {
        let path = self.scratch.join(name);
        std::fs::write(&path, data).unwrap();
        path.display().to_string()
    }

    /// `user generate-token USER NAME`: the secret on stdout (its one
    /// place), nothing on stderr but the warning. Returns the secret.
    fn token(&mut self, format: &str, user: &str, name: &str) -> String {
        let run = self.raw_run(format, &["user", "generate-token", user, name], None);
        assert_eq!(run.code, 0, "generate-token {user} {name}: {}", run.stderr);
        let secret = match format {
            // the `value` row of the Name/Value table
            "text" => run
                .stdout
                .lines()
                .find_map(|line| line.split_once("value"))
                .and_then(|(_, rest)| rest.split(['│', '|']).nth(1))
                .expect("value row")
                .trim()
                .to_string(),
            _ => serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()["value"]
                .as_str()
                .unwrap()
                .to_string(),
        };
        self.printed(format!("stderr of generate-token {name}"), run.stderr);
        self.secrets()
            .text(&format!("token secret {user}!{name}"), &secret);
        secret
    }

    fn check_modes(&self, what: &str) {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, u32, bool)>) {
            let Ok(list) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in list {
                let path = entry.unwrap().path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                out.push((path.clone(), meta.mode() & 0o7777, meta.is_dir()));
                if meta.is_dir() {
                    walk(&path, out);
                }
            }
        }
        if let Ok(meta) = std::fs::metadata(self.dir()) {
            // created by the first store, as upstream lays it out
            assert_eq!(meta.mode() & 0o7777, 0o700, "{what}: config dir mode");
        }
        let mut files = Vec::new();
        walk(self.dir(), &mut files);
        for (path, mode, is_dir) in files {
            let name = path.file_name().unwrap().to_string_lossy();
            let in_trash = path.parent().is_some_and(|dir| dir.ends_with(".trash"));
            // root's mirror locks and what root wrote, the trash and the
            // rotation journals: root's alone
            let in_locks = path.parent().is_some_and(|dir| dir.ends_with(".locks"));
            let in_rotate = path.parent().is_some_and(|dir| dir.ends_with(".rotate"));
            let expected = if is_dir && (name == ".trash" || name == ".locks" || name == ".rotate")
            {
                0o700
            } else if is_dir {
                0o750
            } else if in_locks {
                0o600
            } else if name.ends_with(".lck") || name.ends_with(".lock") {
                0o660
            } else if name == "shadow.json"
                || name == "authkey.key"
                || name == "signing.key"
                || ((in_trash || in_rotate) && name.ends_with(".json"))
            {
                0o600
            } else {
                0o640
            };
            assert_eq!(mode, expected, "{what}: mode of {path:?} is {mode:04o}");
        }
        for file in &self.output_files {
            let mode = std::fs::metadata(file).unwrap().mode() & 0o7777;
            assert_eq!(mode, 0o600, "{what}: mode of output file {file:?}");
        }
    }

    /// Every file in the config dir but the key files: no key material.
    fn check_files(&self) {
        for (path, data) in snapshot_with_locks(self.dir(), &[]) {
            if !path.to_string_lossy().ends_with(".enc") {
                let text = String::from_utf8_lossy(&data);
                self.secrets().assert_absent(&format!("{path:?}"), &text);
            }
        }
    }
}

/// The daemon under umask 000, with its stderr and access log in files.
struct AuditDaemon {
    api: ApiDaemon,
    access_log: PathBuf,
}

impl AuditDaemon {
    fn start(audit: &Audit) -> Self {
        let log = audit.scratch.join("daemon.log");
        let access_log = audit.scratch.join("access.log");
        let mut cmd = ApiDaemon::command(audit.dir(), &[]);
        cmd.arg("--access-log")
            .arg(&access_log)
            .env_remove("PBS_CONFIG_DIR");
        umask_zero(&mut cmd);
        Self {
            api: ApiDaemon::spawn(cmd, log),
            access_log,
        }
    }
}

/// Every route of the daemon's router tree (`METHOD /path/{param}`).
fn all_routes() -> Vec<String> {
    endpoints()
        .iter()
        .map(|endpoint| format!("{} {}", endpoint.method, endpoint.path))
        .collect()
}

impl Audit {
    /// An API call to the running daemon (on its own connection) whose
    /// answer may hold no secret (unless `allowed`); records the route.
    /// Returns the answer.
    fn api(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &str)>,
        status: u16,
        allowed: bool,
    ) -> https::Answer {
        let route_path = format!("/api2/json/{}", path.split('?').next().unwrap());
        let method_value: hyper::Method = method.parse().unwrap();
        if let Some(route) = route_of(&method_value, &route_path) {
            self.covered.insert(route);
        }
        let port = self.daemon.as_ref().expect("a running daemon").api.port;
        let answer = https::once(port, method, path, headers, body)
            .unwrap_or_else(|err| panic!("{method} {path}: {err}"));
        let what = format!("answer to {method} {path}");
        assert_eq!(
            answer.status,
            status,
            "{what}: {}\naccess log:\n{}",
            answer.text,
            std::fs::read_to_string(self.scratch.join("access.log")).unwrap_or_default()
        );
        if !allowed {
            self.printed(what, answer.text.clone());
        }
        answer
    }

    /// A request with a form body whose answer may hold no secret.
    fn form(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        form: &str,
        status: u16,
    ) {
        self.api(method, path, headers, Some((FORM, form)), status, false);
    }

    /// A GET whose answer may hold no secret.
    fn get(&mut self, path: &str, headers: &[(&str, &str)], status: u16) {
        self.api("GET", path, headers, None, status, false);
    }
}

/// Leaf command paths from the binary's `--help` (`encryption-key list`, ...).
fn commands_from_help() -> BTreeSet<String> {
    fn subcommands(path: &[&str]) -> Vec<String> {
        let output = Command::new(pbs_test_kit::bins::manager())
            .args(path)
            .arg("--help")
            .output()
            .unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let Some(start) = text.find("Commands:\n") else {
            return Vec::new();
        };
        text[start + "Commands:\n".len()..]
            .lines()
            .take_while(|line| line.starts_with("  "))
            .filter(|line| !line.starts_with("   "))
            .filter_map(|line| line.split_whitespace().next())
            .filter(|name| *name != "help")
            .map(str::to_string)
            .collect()
    }
    let mut leaves = BTreeSet::new();
    for top in subcommands(&[]) {
        let subs = subcommands(&[&top]);
        if subs.is_empty() {
            leaves.insert(top);
        } else {
            for sub in subs {
                leaves.insert(format!("{top} {sub}"));
            }
        }
    }
    assert!(leaves.len() >= 10, "too few commands found: {leaves:?}");
    leaves
}

/// A vector key file and its raw key (from its `.expect.json`).
fn vector(name: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = vectors_dir().join("keys");
    let file = std::fs::read(dir.join(format!("{name}.enc"))).unwrap();
    let expect: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.expect.json"))).unwrap())
            .unwrap();
    let raw = hex::decode(expect["raw_key_hex"].as_str().unwrap()).unwrap();
    (file, raw)
}

/// Keys the test knows before they reach the store, registered as secrets.
struct KnownKeys {
    /// Upstream's unprotected vector key file.
    upstream: Vec<u8>,
    /// Upstream's scrypt-protected vector key file.
    protected: Vec<u8>,
    /// Imported from a file.
    from_file: KeyConfig,
    /// Imported from stdin.
    from_stdin: KeyConfig,
    /// A key file whose fingerprint is `from_file`'s.
    wrong_fp: KeyConfig,
}

impl KnownKeys {
    fn register(secrets: &Secrets) -> Self {
        let (upstream, upstream_raw) = vector("unprotected");
        let (protected, protected_raw) = vector("scrypt-protected");
        secrets.key("vector unprotected", &upstream_raw);
        secrets.key("vector scrypt-protected", &protected_raw);
        secrets.key_file(
            "vector scrypt-protected",
            &KeyConfig::from_json(&protected).unwrap(),
        );
        let from_file = KeyConfig::without_password(raw_key(71)).unwrap();
        let from_stdin = KeyConfig::without_password(raw_key(72)).unwrap();
        secrets.key_file("import-file", &from_file);
        secrets.key_file("import-stdin", &from_stdin);
        let mut wrong_fp = KeyConfig::without_password(raw_key(73)).unwrap();
        secrets.key_file("wrong fingerprint", &wrong_fp);
        wrong_fp.fingerprint = from_file.fingerprint;
        Self {
            upstream,
            protected,
            from_file,
            from_stdin,
            wrong_fp,
        }
    }

    /// `from_file` as JSON.
    fn json(&self) -> String {
        self.from_file.to_json().unwrap()
    }

    /// `from_file` cut short.
    fn truncated(&self) -> String {
        let json = self.json();
        json[..json.len() - 20].to_string()
    }

    /// `from_file` with a `data` field that is not base64.
    fn bad_base64(&self) -> String {
        self.json().replacen("\"data\":\"", "\"data\":\"!", 1)
    }
}

/// One phase: runs commands and requests on the audit's store.
type Phase = fn(&mut Audit, &KnownKeys);

/// The phases of the audit, in order: each works on the store the ones
/// before left.
const PHASES: &[(&str, Phase)] = &[
    ("reading creates nothing", reading_creates_nothing),
    ("create", create),
    ("import", import),
    ("refused imports and creates", refused_imports_and_creates),
    ("reading", reading),
    ("export bundles", export_bundles),
    ("the restore drill", the_restore_drill),
    ("paperkeys", paperkeys),
    ("a protected import", a_protected_import),
    (
        "create with a hint and as a paperkey",
        create_hinted_and_as_paperkey,
    ),
    ("keys in use by a sync job", keys_in_use_by_a_sync_job),
    ("rotate a sync job's key", rotate_a_sync_job),
    ("archive, unarchive, delete", archive_unarchive_delete),
    ("verify and repair", verify_and_repair),
    ("trash", trash),
    ("restore from a bundle", restore_from_a_bundle),
    ("users, tokens, ACLs", users_tokens_acls),
    ("the audit log", audit_log),
    ("API: keys with a token", api_keys_with_a_token),
    ("API: sync jobs with a token", api_sync_jobs_with_a_token),
    ("API: rotate a sync job's key", api_rotate),
    ("API: refused key requests", api_refused_key_requests),
    ("API: the trash", api_trash),
    (
        "API: export, drill, restore, paperkey",
        api_export_drill_restore_paperkey,
    ),
    ("API: the audit log", api_audit_log),
    ("API: tickets", api_tickets),
    ("API: bad credentials", api_bad_credentials),
    ("API: logs and routes", api_logs_and_routes),
    ("generated texts and help", generated_texts_and_help),
    ("the audit log holds no secret", audit_log_holds_no_secret),
    ("every command, every secret", every_command_every_secret),
];

#[test]
fn no_command_prints_a_key_and_every_file_keeps_its_mode_under_umask_000() {
    let mut audit = Audit::new();
    let keys = KnownKeys::register(audit.secrets());
    for (name, phase) in PHASES {
        println!("secrets audit: {name}");
        phase(&mut audit, &keys);
    }
}

/// No config dir yet: reading creates nothing (verify says the dir does
/// not exist).
fn reading_creates_nothing(audit: &mut Audit, _: &KnownKeys) {
    audit.all_formats(&["encryption-key", "list"], 0);
    audit.all_formats(&["encryption-key", "verify"], 255);
    audit.all_formats(&["sync-job", "list"], 0);
    assert!(!audit.dir().exists());
}

/// Create, in each format, to stdout and to a file.
fn create(audit: &mut Audit, _: &KnownKeys) {
    audit.create("text", "created-text");
    audit.create("json", "created-json");
    audit.create("json-pretty", "created-pretty");
    audit.create_to_file("text", "file-text");
    audit.create_to_file("json", "file-json");
}

/// Import from a file, from stdin, an upstream key file.
fn import(audit: &mut Audit, keys: &KnownKeys) {
    let file = audit.input("import.enc", keys.json().as_bytes());
    audit.run(
        "text",
        &["encryption-key", "import", "imported", "--file", &file],
        0,
    );
    let stdin = keys.from_stdin.to_json().unwrap();
    audit.run_stdin(
        "json",
        &["encryption-key", "import", "from-stdin", "--file", "-"],
        Some(stdin.as_bytes()),
        0,
    );
    let upstream_file = audit.input("upstream.enc", &keys.upstream);
    audit.run(
        "json-pretty",
        &[
            "encryption-key",
            "import",
            "upstream",
            "--file",
            &upstream_file,
        ],
        0,
    );
}

/// Imports that must fail, each with the key in the input; creates that
/// must fail.
fn refused_imports_and_creates(audit: &mut Audit, keys: &KnownKeys) {
    let file = audit.input("import.enc", keys.json().as_bytes());
    let protected_file = audit.input("protected.enc", &keys.protected);
    let wrong_fp_file = audit.input("wrong-fp.enc", keys.wrong_fp.to_json().unwrap().as_bytes());
    let truncated = audit.input("truncated.enc", keys.truncated().as_bytes());
    let bad_b64_file = audit.input("bad-b64.enc", keys.bad_base64().as_bytes());
    let json = keys.json();
    for format in FORMATS {
        for (id, input) in [
            ("dup-of-imported", &file),
            ("protected", &protected_file),
            ("wrong-fp", &wrong_fp_file),
            ("truncated", &truncated),
            ("bad-base64", &bad_b64_file),
        ] {
            audit.run(
                format,
                &["encryption-key", "import", id, "--file", input],
                255,
            );
        }
        audit.run_stdin(
            format,
            &["encryption-key", "import", "stdin-bad", "--file", "-"],
            Some(&json.as_bytes()[..40]),
            255,
        );
        // an existing id, a bad id, an existing output file
        audit.run(format, &["encryption-key", "create", "imported"], 255);
        audit.run(format, &["encryption-key", "create", "../x"], 255);
        let existing = audit.output_files[0].display().to_string();
        audit.run(
            format,
            &[
                "encryption-key",
                "create",
                "fresh",
                "--output-file",
                &existing,
            ],
            255,
        );
    }
}

/// Reading, in every format.
fn reading(audit: &mut Audit, _: &KnownKeys) {
    audit.all_formats(&["encryption-key", "list"], 0);
    audit.all_formats(&["encryption-key", "list", "--include-archived"], 0);
    for id in ["created-text", "file-json", "imported", "upstream"] {
        audit.all_formats(&["encryption-key", "show", id], 0);
    }
    audit.all_formats(&["encryption-key", "show", "no-such-key"], 255);
}

/// The passphrase of the audit's export bundles.
const BUNDLE_PASS: &str = "audit bundle pass phrase";
/// The passphrase of the master key the audit encrypts a bundle to.
const MASTER_PASS: &str = "audit master pass phrase";
/// A fixed RSA key (no key generation in tests).
const MASTER_PEM: &[u8] = include_bytes!("../pbs-key-config/src/testdata/bundle-test-rsa2048.pem");
const OTHER_PEM: &[u8] = include_bytes!("../pbs-key-config/src/testdata/bundle-other-rsa2048.pem");

impl Audit {
    /// The path of `name` in the scratch dir.
    fn scratch_file(&self, name: &str) -> String {
        self.scratch.join(name).display().to_string()
    }

    /// The bundle of every key, written by the export phase.
    fn bundle(&self) -> String {
        self.scratch_file("all.pbsx")
    }

    /// A run whose stdout may hold a key (a paperkey); its stderr may not.
    /// Returns the stdout.
    fn run_key_output(&mut self, format: &str, args: &[&str]) -> String {
        let run = self.raw_run(format, args, None);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        self.printed(format!("stderr of {args:?}"), run.stderr);
        run.stdout
    }
}

/// Writes the inputs of the export phases: the bundle passphrase (and a
/// wrong one), the master key pair (its private key encrypted, and its
/// passphrase) and another RSA key; (passphrase file, master public key).
fn export_inputs(audit: &mut Audit) -> (String, String) {
    audit.secrets().text("bundle passphrase", BUNDLE_PASS);
    audit.secrets().text("master passphrase", MASTER_PASS);
    let pass = audit.input("bundle.pass", BUNDLE_PASS.as_bytes());
    audit.input("wrong.pass", b"not the bundle pass phrase");
    let master = openssl::pkey::PKey::private_key_from_pem(MASTER_PEM).unwrap();
    audit.input(
        "master-private.pem",
        &master
            .private_key_to_pem_pkcs8_passphrase(
                openssl::symm::Cipher::aes_256_cbc(),
                MASTER_PASS.as_bytes(),
            )
            .unwrap(),
    );
    let public = audit.input("master-public.pem", &master.public_key_to_pem().unwrap());
    audit.input("master.pass", MASTER_PASS.as_bytes());
    audit.input("other.pem", OTHER_PEM);
    (pass, public)
}

/// Export bundles (to a passphrase, to a master key; files 0600 holding no
/// key in clear), and the exports refused: to an existing file, without a
/// passphrase or master key. Writes the inputs the later phases use.
fn export_bundles(audit: &mut Audit, _: &KnownKeys) {
    let (pass, public) = export_inputs(audit);
    let bundle = audit.bundle();
    let rsa_bundle = audit.scratch_file("rsa.pbsx");
    let some_bundle = audit.scratch_file("some.pbsx");
    for (format, args) in [
        (
            "text",
            vec![
                "--all",
                "--include-archived",
                "--output-file",
                &bundle,
                "--passphrase-file",
                &pass,
            ],
        ),
        (
            "json",
            vec![
                "imported",
                "upstream",
                "--output-file",
                &rsa_bundle,
                "--master-pubkey",
                &public,
            ],
        ),
        (
            "json-pretty",
            vec![
                "imported",
                "--output-file",
                &some_bundle,
                "--passphrase-file",
                &pass,
                "--master-pubkey",
                &public,
            ],
        ),
    ] {
        let args = [&["encryption-key", "export"][..], &args].concat();
        audit.run(format, &args, 0);
    }
    for file in [&bundle, &rsa_bundle, &some_bundle] {
        let text = std::fs::read_to_string(file).unwrap();
        audit.printed(format!("export bundle {file}"), text);
        audit.output_files.push(PathBuf::from(file));
    }
    let existing = audit.output_files[0].display().to_string();
    audit.all_formats(
        &[
            "encryption-key",
            "export",
            "--all",
            "--output-file",
            &existing,
            "--passphrase-file",
            &pass,
        ],
        255,
    );
    audit.all_formats(
        &[
            "encryption-key",
            "export",
            "--all",
            "--output-file",
            "/tmp/x",
        ],
        255,
    );
}

/// The restore drill of the export phase's bundles (with the passphrase,
/// a wrong one, the master key, another key), and a restore into this
/// store, which has every key already.
fn the_restore_drill(audit: &mut Audit, _: &KnownKeys) {
    let bundle = audit.bundle();
    let rsa_bundle = audit.scratch_file("rsa.pbsx");
    let pass = audit.scratch_file("bundle.pass");
    let wrong = audit.scratch_file("wrong.pass");
    let private = audit.scratch_file("master-private.pem");
    let master_pass = audit.scratch_file("master.pass");
    let other = audit.scratch_file("other.pem");
    audit.all_formats(
        &[
            "encryption-key",
            "export-verify",
            &bundle,
            "--passphrase-file",
            &pass,
        ],
        0,
    );
    audit.all_formats(
        &[
            "encryption-key",
            "export-verify",
            &bundle,
            "--passphrase-file",
            &wrong,
        ],
        255,
    );
    audit.all_formats(
        &[
            "encryption-key",
            "export-verify",
            &rsa_bundle,
            "--master-keyfile",
            &private,
            "--master-passphrase-file",
            &master_pass,
        ],
        0,
    );
    audit.all_formats(
        &[
            "encryption-key",
            "export-verify",
            &rsa_bundle,
            "--master-keyfile",
            &other,
        ],
        255,
    );
    // into this store: every key there already
    audit.all_formats(
        &[
            "encryption-key",
            "restore",
            &bundle,
            "--passphrase-file",
            &pass,
        ],
        0,
    );
}

/// Paperkeys: their stdout holds the key, nothing else does; to a file;
/// of a key that does not exist.
fn paperkeys(audit: &mut Audit, _: &KnownKeys) {
    for format in ["text", "html", "json"] {
        audit.run_key_output(format, &["encryption-key", "paperkey", "imported"]);
    }
    let paper = audit.scratch_file("imported.paper");
    audit.run(
        "text",
        &[
            "encryption-key",
            "paperkey",
            "upstream",
            "--output-file",
            &paper,
        ],
        0,
    );
    audit.output_files.push(PathBuf::from(&paper));
    audit.all_formats(&["encryption-key", "paperkey", "no-such-key"], 255);
}

/// A protected upstream key, with a wrong passphrase and with its own.
fn a_protected_import(audit: &mut Audit, _: &KnownKeys) {
    let wrong = audit.scratch_file("wrong.pass");
    let (protected, _) = vector("pbkdf2-with-hint");
    let expect: serde_json::Value = serde_json::from_slice(
        &std::fs::read(vectors_dir().join("keys/pbkdf2-with-hint.expect.json")).unwrap(),
    )
    .unwrap();
    let right = expect["passphrase"].as_str().unwrap();
    audit.secrets().text("vector passphrase", right);
    audit.secrets().key(
        "vector pbkdf2-with-hint",
        &hex::decode(expect["raw_key_hex"].as_str().unwrap()).unwrap(),
    );
    let protected = audit.input("pbkdf2.enc", &protected);
    let right = audit.input("pbkdf2.pass", right.as_bytes());
    audit.all_formats(
        &[
            "encryption-key",
            "import",
            "pbkdf2-key",
            "--file",
            &protected,
            "--passphrase-file",
            &wrong,
        ],
        255,
    );
    audit.run(
        "json",
        &[
            "encryption-key",
            "import",
            "pbkdf2-key",
            "--file",
            &protected,
            "--passphrase-file",
            &right,
            "--hint",
            "from a laptop",
        ],
        0,
    );
}

/// create with a hint, and as a paperkey (its key learnt from it).
fn create_hinted_and_as_paperkey(audit: &mut Audit, _: &KnownKeys) {
    let run = audit.raw_run(
        "text",
        &["encryption-key", "create", "hinted", "--hint", "h"],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    audit.secrets().key_file(
        "hinted",
        &KeyConfig::from_json(run.stdout.as_bytes()).unwrap(),
    );
    audit.printed("stderr of create --hint".into(), run.stderr);
    let paperkey = audit.run_key_output(
        "text",
        &["encryption-key", "create", "papered", "--paperkey"],
    );
    let key = pbs_key_config::paperkey::parse_paperkey(&paperkey).unwrap();
    audit.secrets().key_file("papered", &key);
}

/// Restore from the export bundle: a key purged since comes back; the
/// whole bundle is refused (a key came back from the trash under another
/// id); a wrong passphrase.
fn restore_from_a_bundle(audit: &mut Audit, _: &KnownKeys) {
    let bundle = audit.bundle();
    let pass = audit.scratch_file("bundle.pass");
    let wrong = audit.scratch_file("wrong.pass");
    audit.run(
        "json",
        &[
            "encryption-key",
            "restore",
            &bundle,
            "--id",
            "from-stdin",
            "--passphrase-file",
            &pass,
        ],
        0,
    );
    audit.all_formats(
        &[
            "encryption-key",
            "restore",
            &bundle,
            "--passphrase-file",
            &pass,
        ],
        255,
    );
    audit.all_formats(
        &[
            "encryption-key",
            "restore",
            &bundle,
            "--id",
            "imported",
            "--passphrase-file",
            &wrong,
        ],
        255,
    );
    audit.run("text", &["encryption-key", "verify"], 0);
}

/// Tie keys to a job, refuse archiving and deleting, untie, remove it.
fn keys_in_use_by_a_sync_job(audit: &mut Audit, _: &KnownKeys) {
    audit.run(
        "text",
        &[
            &push_job_args("job1", "imported")[..],
            &["--associated-key", "upstream"],
        ]
        .concat(),
        0,
    );
    // refused creates: an existing id, a key on a pull job, a bad key id
    for format in FORMATS {
        for extra in [
            &["--sync-direction", "push", "--remote", "other"][..],
            &["--active-encryption-key", "imported"],
            &["--associated-key", "../x"],
        ] {
            let id = match extra[0] {
                "--sync-direction" => "job1",
                _ => "job2",
            };
            let args = [
                &[
                    "sync-job",
                    "create",
                    id,
                    "--store",
                    "local",
                    "--remote-store",
                    "remote",
                ][..],
                extra,
            ]
            .concat();
            audit.run(format, &args, 255);
        }
    }
    audit.all_formats(&["sync-job", "list"], 0);
    audit.all_formats(&["sync-job", "show", "job1"], 0);
    audit.all_formats(&["encryption-key", "list"], 0);
    audit.all_formats(&["encryption-key", "show", "imported"], 0);
    audit.all_formats(&["encryption-key", "archive", "imported"], 255);
    audit.run("text", &["encryption-key", "archive", "upstream"], 0);
    audit.all_formats(&["encryption-key", "list", "--unused"], 0);
    audit.all_formats(&["encryption-key", "list", "--no-verified-copy"], 0);
    audit.all_formats(&["encryption-key", "delete", "upstream"], 255);
    audit.run(
        "json",
        &[
            "sync-job",
            "update",
            "job1",
            "--delete",
            "active-encryption-key",
            "--delete",
            "associated-key",
        ],
        0,
    );
    audit.all_formats(&["sync-job", "remove", "no-such-job"], 255);
    audit.run("json-pretty", &["sync-job", "remove", "job1"], 0);
    audit.all_formats(&["encryption-key", "list", "--unused"], 0);
}

/// `encryption-key rotate`: a rotation with an export to a file, the same
/// command again, `--status`, an abort without a rotation, an unknown job,
/// in each format. The new key is a secret from the moment it exists:
/// every output is held against it at the end.
fn rotate_a_sync_job(audit: &mut Audit, _: &KnownKeys) {
    audit.run("text", &push_job_args("rot-job", "imported"), 0);
    let pass = audit.input("rotate.pass", BUNDLE_PASS.as_bytes());
    let export = audit.scratch_file("rotated.pbsx");
    let rotate = [
        "encryption-key",
        "rotate",
        "--job",
        "rot-job",
        "--new-id",
        "rotated",
    ];
    let with_export = [
        &rotate[..],
        &["--export-file", &export, "--passphrase-file", &pass],
    ]
    .concat();
    audit.run("json", &with_export, 0);
    let key_file = audit.dir().join("encryption-keys/rotated.enc");
    let key = KeyConfig::from_json(&std::fs::read(key_file).unwrap()).unwrap();
    audit.secrets().key_file("rotated", &key);
    let bundle = std::fs::read_to_string(&export).unwrap();
    audit.printed(format!("rotate export bundle {export}"), bundle);
    audit.output_files.push(PathBuf::from(&export));
    audit.all_formats(&rotate, 0); // done already
    audit.all_formats(
        &["encryption-key", "rotate", "--job", "rot-job", "--status"],
        0,
    );
    audit.all_formats(
        &["encryption-key", "rotate", "--job", "rot-job", "--abort"],
        255,
    );
    audit.all_formats(&["encryption-key", "rotate", "--job", "no-such-job"], 255);
    audit.run("text", &["sync-job", "remove", "rot-job"], 0);
}

/// Archive, unarchive, delete in each format.
fn archive_unarchive_delete(audit: &mut Audit, _: &KnownKeys) {
    for (format, id) in FORMATS
        .iter()
        .zip(["created-text", "created-json", "from-stdin"])
    {
        audit.run(format, &["encryption-key", "delete", id], 255); // not archived
        audit.run(format, &["encryption-key", "archive", id], 0);
        audit.run(format, &["encryption-key", "unarchive", id], 0);
        audit.run(format, &["encryption-key", "archive", id], 0);
        // `remove` is upstream's verb, `delete` its alias: both run
        audit.run(format, &["encryption-key", "remove", id], 0);
    }
}

/// Swaps the key files of `file-text` and `file-json`.
fn swap_key_files(keys: &Path) {
    std::fs::rename(keys.join("file-text.enc"), keys.join("swap.tmp")).unwrap();
    std::fs::rename(keys.join("file-json.enc"), keys.join("file-text.enc")).unwrap();
    std::fs::rename(keys.join("swap.tmp"), keys.join("file-json.enc")).unwrap();
}

/// Verify and repair a broken store: an orphan, a wrong mode, a swapped
/// key file (fingerprint mismatch messages name fingerprints only).
fn verify_and_repair(audit: &mut Audit, _: &KnownKeys) {
    let keys = audit.dir().join("encryption-keys");
    // a copy of a key in the store is not an orphan (its fingerprint names
    // it): the orphan is a copy of a removed key, out of the trash
    let trashed = std::fs::read_dir(keys.join(".trash"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("created-text@") && name.ends_with(".enc")
        })
        .expect("created-text in the trash");
    std::fs::copy(trashed, keys.join("orphan.enc")).unwrap();
    std::fs::set_permissions(
        keys.join("orphan.enc"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    audit.all_formats(&["encryption-key", "verify"], 1);
    audit.run("text", &["encryption-key", "verify", "--repair"], 0);
    swap_key_files(&keys);
    audit.all_formats(&["encryption-key", "verify"], 1);
    audit.all_formats(&["encryption-key", "verify", "--repair"], 1);
    audit.all_formats(&["encryption-key", "show", "file-text"], 0);
    audit.run("text", &["encryption-key", "archive", "file-text"], 0);
    audit.all_formats(&["encryption-key", "delete", "file-text"], 255);
    swap_key_files(&keys);
    audit.run("json", &["encryption-key", "verify"], 0);
}

/// The trash: list, restore (and a refused one), purge.
fn trash(audit: &mut Audit, _: &KnownKeys) {
    audit.all_formats(&["encryption-key", "trash", "list"], 0);
    audit.run(
        "json",
        &[
            "encryption-key",
            "trash",
            "restore",
            "created-json",
            "--as",
            "restored-json",
        ],
        0,
    );
    audit.all_formats(&["encryption-key", "trash", "restore", "created-json"], 255);
    audit.all_formats(&["encryption-key", "trash", "purge", "--expired"], 0);
    audit.run(
        "text",
        &[
            "encryption-key",
            "trash",
            "purge",
            "from-stdin",
            "--without-verified-copy",
        ],
        0,
    );
    audit.run("json", &["encryption-key", "verify"], 0);
}

/// Users, passwords, API tokens, ACLs; the tokens `root@pam!audit`
/// (Admin on `/`) and `alice@pbs!t1` (Admin on the keys).
fn users_tokens_acls(audit: &mut Audit, _: &KnownKeys) {
    users_and_passwords(audit);
    tokens_and_acls(audit);

    const BOB_2: &str = "bob's second pass phrase";
    audit.secrets().text("bob's second password", BOB_2);
    audit.run_stdin(
        "text",
        &[
            "user",
            "update",
            "bob@pbs",
            "--comment",
            "c",
            "--ask-password",
        ],
        Some(format!("{BOB_2}\n").as_bytes()),
        0,
    );
    audit.all_formats(&["user", "update", "nobody@pbs", "--comment", "c"], 255);
    audit.all_formats(&["user", "permissions", "alice@pbs!t1"], 0);
    audit.run("text", &["user", "remove", "bob@pbs"], 0);
    audit.all_formats(&["user", "remove", "bob@pbs"], 255);
}

/// Users created and given passwords (from a prompt, on the command line),
/// and refused.
fn users_and_passwords(audit: &mut Audit) {
    audit.secrets().text("alice's first password", ALICE_1);
    audit.secrets().text("alice's second password", ALICE_2);
    audit.secrets().text("bob's password", BOB);
    audit.run_stdin(
        "text",
        &["user", "create", "alice@pbs", "--ask-password"],
        Some(format!("{ALICE_1}\n").as_bytes()),
        0,
    );
    audit.run("json", &["user", "create", "bob@pbs", "--password", BOB], 0);
    audit.all_formats(&["user", "create", "alice@pbs"], 255);
    audit.all_formats(&["user", "list"], 0);
    audit.run_stdin(
        "json-pretty",
        &["user", "passwd", "alice@pbs"],
        Some(format!("{ALICE_2}\n").as_bytes()),
        0,
    );
    audit.run_stdin(
        "text",
        &["user", "passwd", "nobody@pbs"],
        Some(b"some pass phrase\n"),
        255,
    );
}

/// API tokens (the audit's own two kept) and ACLs, and refused ones.
fn tokens_and_acls(audit: &mut Audit) {
    let root_secret = audit.token("json", "root@pam", "audit");
    let alice_secret = audit.token("text", "alice@pbs", "t1");
    audit.tokens = Some((root_secret, alice_secret));
    audit.token("json-pretty", "alice@pbs", "t2");
    audit.all_formats(&["user", "list-tokens", "alice@pbs"], 0);
    audit.run("text", &["user", "delete-token", "alice@pbs", "t2"], 0);
    audit.all_formats(&["user", "delete-token", "alice@pbs", "t2"], 255);
    audit.run(
        "text",
        &["acl", "update", "/", "Admin", "--auth-id", "root@pam!audit"],
        0,
    );
    audit.run(
        "json",
        &[
            "acl",
            "update",
            "/system/encryption-keys",
            "Audit",
            "--auth-id",
            "alice@pbs",
        ],
        0,
    );
    audit.run(
        "json-pretty",
        &[
            "acl",
            "update",
            "/system/encryption-keys",
            "Admin",
            "--auth-id",
            "alice@pbs!t1",
        ],
        0,
    );
    audit.all_formats(
        &["acl", "update", "/", "NoSuchRole", "--auth-id", "alice@pbs"],
        255,
    );
    audit.all_formats(&["acl", "list"], 0);
}

/// The audit log's commands: list, verify (against a kept checkpoint
/// too), checkpoint; and refused ones.
fn audit_log(audit: &mut Audit, _: &KnownKeys) {
    audit.all_formats(&["audit", "list"], 0);
    audit.all_formats(
        &[
            "audit",
            "list",
            "--key",
            "imported",
            "--operation",
            "import",
            "--operation",
            "archive",
            "--since",
            "2000-01-01",
        ],
        0,
    );
    audit.all_formats(&["audit", "checkpoint"], 0);
    let kept = audit.scratch.join("kept-checkpoint");
    let run = audit.run("text", &["audit", "checkpoint"], 0);
    std::fs::write(&kept, &run.stdout).unwrap();
    audit.all_formats(&["audit", "verify"], 0);
    audit.all_formats(
        &["audit", "verify", "--checkpoint", kept.to_str().unwrap()],
        0,
    );
    audit.run("text", &["audit", "verify", "--repair"], 0);
    audit.all_formats(&["audit", "verify", "--checkpoint", "/nonexistent"], 255);
    audit.all_formats(&["audit", "list", "--operation", "erase"], 255);
    audit.all_formats(&["audit", "list", "--since", "yesterday"], 255);
}

impl Audit {
    /// The `Authorization` header of `root@pam!audit`.
    fn root_auth(&self) -> String {
        let (root_secret, _) = self.tokens.as_ref().expect("the tokens phase ran");
        format!("PBSAPIToken=root@pam!audit:{root_secret}")
    }
}

/// The daemon started (under umask 000); every key route with a token:
/// only the create and import answers may hold a key.
fn api_keys_with_a_token(audit: &mut Audit, _: &KnownKeys) {
    audit.daemon = Some(AuditDaemon::start(audit));
    let root = audit.root_auth();
    let token = [("Authorization", root.as_str())];
    audit.get("version", &token, 200);
    audit.get(
        "access/permissions?path=/system/encryption-keys",
        &token,
        200,
    );
    // the web page: public, fixed files
    audit.get("/", &[], 200);
    audit.get("/assets/0000000000000000/js/app.js", &[], 404);
    audit.get("config/encryption-keys", &token, 200);
    audit.get("config/encryption-keys?include-archived=1", &token, 200);
    // create: the one answer with a key
    let answer = audit.api(
        "POST",
        "config/encryption-keys",
        &token,
        Some((FORM, "id=api-created")),
        200,
        true,
    );
    let created: KeyConfig =
        serde_json::from_value(answer.json()["data"].clone()).expect("KeyConfig");
    audit.secrets().key_file("api-created", &created);
    // import: the answer repeats the key the client sent
    let imported = api_imported_key();
    audit.secrets().key_file("api-imported", &imported);
    let body =
        serde_json::json!({"id": "api-imported", "key": imported.to_json().unwrap()}).to_string();
    audit.api(
        "POST",
        "config/encryption-keys",
        &token,
        Some(("application/json", &body)),
        200,
        true,
    );
    for path in [
        "config/encryption-keys/api-created",
        "config/encryption-keys/api-created/verify",
        "config/encryption-keys/imported/verify",
    ] {
        audit.get(path, &token, 200);
    }
    audit.get("config/encryption-keys/no-such-key", &token, 404);
}

/// Every sync job route with a token: a job tied to the API's keys, a
/// refused key change, then the job removed again.
fn api_sync_jobs_with_a_token(audit: &mut Audit, _: &KnownKeys) {
    let root = audit.root_auth();
    let token = [("Authorization", root.as_str())];
    let create = "id=api-job&store=local&remote=other&remote-store=remote&sync-direction=push\
                  &active-encryption-key=api-created";
    audit.form("POST", "config/sync", &token, create, 200);
    audit.form("POST", "config/sync", &token, create, 400);
    audit.get("config/sync", &token, 200);
    audit.get("config/sync?sync-direction=push", &token, 200);
    audit.get("config/sync/api-job", &token, 200);
    audit.get("config/sync/no-such-job", &token, 404);
    let job = "config/sync/api-job";
    let rekey = "active-encryption-key=api-imported&associated-key=api-created";
    audit.form("PUT", job, &token, rekey, 200);
    audit.form("PUT", job, &token, "sync-direction=pull", 400);
    audit.get("config/encryption-keys/api-created", &token, 200);
    let stale = format!("digest={}", "0".repeat(64));
    audit.form("DELETE", job, &token, &stale, 400);
    audit.api("DELETE", job, &token, None, 200, false);
    audit.api("DELETE", job, &token, None, 404, false);
}

/// The rotate routes: the status, an abort without a rotation (404), a
/// rotation exported into the answer (the bundle is encrypted; the new key
/// is a secret from the moment it exists), the same again, an unknown job.
fn api_rotate(audit: &mut Audit, _: &KnownKeys) {
    let root = audit.root_auth();
    let token = [("Authorization", root.as_str())];
    let create = "id=api-rot&store=local&remote=other&remote-store=remote&sync-direction=push\
                  &active-encryption-key=api-created";
    audit.form("POST", "config/sync", &token, create, 200);
    let rotate = "config/encryption-key-rotate";
    let abort = "config/encryption-key-rotate/abort";
    audit.get(rotate, &token, 200);
    audit.form("POST", abort, &token, "job=api-rot", 404);
    let body =
        serde_json::json!({"job": ["api-rot"], "new-id": "api-rotated", "passphrase": BUNDLE_PASS})
            .to_string();
    let json = "application/json";
    audit.api("POST", rotate, &token, Some((json, &body)), 200, false);
    let key_file = audit.dir().join("encryption-keys/api-rotated.enc");
    let key = KeyConfig::from_json(&std::fs::read(key_file).unwrap()).unwrap();
    audit.secrets().key_file("api-rotated", &key);
    let again = "job=api-rot&new-id=api-rotated";
    audit.form("POST", rotate, &token, again, 200);
    audit.get(&format!("{rotate}?job=api-rot"), &token, 200);
    audit.form("POST", rotate, &token, "job=no-such-job", 404);
    audit.api("DELETE", "config/sync/api-rot", &token, None, 200, false);
}

/// The key `api_keys_with_a_token` imports.
fn api_imported_key() -> KeyConfig {
    KeyConfig::without_password(raw_key(74)).unwrap()
}

/// Refused imports and creates: the key in the request, never in the
/// answer; a stale digest; archive and delete.
fn api_refused_key_requests(audit: &mut Audit, keys: &KnownKeys) {
    let root = audit.root_auth();
    let token = [("Authorization", root.as_str())];
    for (id, text) in [
        (
            "api-protected",
            String::from_utf8(keys.protected.clone()).unwrap(),
        ),
        ("api-wrong-fp", keys.wrong_fp.to_json().unwrap()),
        ("api-truncated", keys.truncated()),
        ("api-bad-base64", keys.bad_base64()),
        ("api-dup", api_imported_key().to_json().unwrap()),
    ] {
        let body = serde_json::json!({"id": id, "key": text}).to_string();
        audit.api(
            "POST",
            "config/encryption-keys",
            &token,
            Some(("application/json", &body)),
            400,
            false,
        );
    }
    let created = "config/encryption-keys/api-created";
    audit.form(
        "POST",
        "config/encryption-keys",
        &token,
        "id=api-created",
        400,
    );
    let stale = format!("digest={}", "0".repeat(64));
    // PUT toggles like POST
    for method in ["POST", "PUT"] {
        audit.form(method, created, &token, &stale, 400);
    }
    audit.api("POST", created, &token, None, 200, false);
    let imported = "config/encryption-keys/api-imported";
    audit.api("DELETE", imported, &token, None, 400, false);
    audit.api("DELETE", created, &token, None, 200, false);
}

/// The trash over the API: `api-created` was removed into it just before.
fn api_trash(audit: &mut Audit, _: &KnownKeys) {
    let root = audit.root_auth();
    let token = [("Authorization", root.as_str())];
    let trash = "config/encryption-key-trash";
    audit.get(trash, &token, 200);
    let restore = format!("{trash}/api-created/restore");
    audit.form("POST", &restore, &token, "as=api-restored", 200);
    audit.api("POST", &restore, &token, None, 404, false);
    audit.form(
        "DELETE",
        "config/encryption-keys/api-restored",
        &token,
        "keep-days=1",
        200,
    );
    audit.api(
        "DELETE",
        &format!("{trash}/api-restored?without-verified-copy=1"),
        &token,
        None,
        200,
        false,
    );
    audit.form("DELETE", trash, &token, "expired=1", 200);
    audit.form("DELETE", trash, &token, "expired=0", 400);
}

/// Export (its answer holds no key in clear), the drill, restore, paperkeys
/// (whose answers may hold the key), a protected import; secrets in the
/// query string refused.
fn api_export_drill_restore_paperkey(audit: &mut Audit, _: &KnownKeys) {
    let root = audit.root_auth();
    let token = [("Authorization", root.as_str())];
    let json = "application/json";
    let body =
        serde_json::json!({"all": true, "include-archived": true, "passphrase": BUNDLE_PASS})
            .to_string();
    let answer = audit.api(
        "POST",
        "config/encryption-key-export",
        &token,
        Some((json, &body)),
        200,
        false,
    );
    let bundle = answer.json()["data"]["bundle"]
        .as_str()
        .unwrap()
        .to_string();
    for (path, body, status) in [
        (
            "config/encryption-key-export/verify",
            serde_json::json!({"bundle": bundle, "passphrase": BUNDLE_PASS}),
            200,
        ),
        (
            "config/encryption-key-export/verify",
            serde_json::json!({"bundle": bundle, "passphrase": "wrong pass phrase"}),
            400,
        ),
        (
            "config/encryption-key-restore",
            serde_json::json!({"bundle": bundle, "passphrase": BUNDLE_PASS}),
            200,
        ),
        (
            "config/encryption-key-restore",
            serde_json::json!({"bundle": bundle, "master-key": std::str::from_utf8(OTHER_PEM).unwrap()}),
            400,
        ),
        (
            "config/encryption-key-export",
            serde_json::json!({"id": ["no-such-key"], "passphrase": BUNDLE_PASS}),
            404,
        ),
    ] {
        let body = body.to_string();
        audit.api("POST", path, &token, Some((json, &body)), status, false);
    }
    // the passphrase in the URL: refused, and it must not show anywhere
    let query = format!(
        "config/encryption-key-export?passphrase={}",
        urlencode(BUNDLE_PASS)
    );
    audit.form("POST", &query, &token, "all=1", 400);
    api_paperkeys(audit, &token);
    api_protected_import(audit, &token);
}

/// Paperkeys hold the key; a missing key's answer does not.
fn api_paperkeys(audit: &mut Audit, token: &[(&str, &str)]) {
    let paperkey = "config/encryption-keys/imported/paperkey";
    audit.api("POST", paperkey, token, None, 200, true);
    audit.api(
        "POST",
        paperkey,
        token,
        Some((FORM, "output-format=html")),
        200,
        true,
    );
    audit.api(
        "POST",
        "config/encryption-keys/nope-key/paperkey",
        token,
        None,
        404,
        false,
    );
}

/// A protected import: the answer holds the key (as create's), a wrong
/// passphrase's answer does not.
fn api_protected_import(audit: &mut Audit, token: &[(&str, &str)]) {
    let json = "application/json";
    let (protected, _) = vector("scrypt-protected");
    let protected = String::from_utf8(protected).unwrap();
    let expect: serde_json::Value = serde_json::from_slice(
        &std::fs::read(vectors_dir().join("keys/scrypt-protected.expect.json")).unwrap(),
    )
    .unwrap();
    let right = expect["passphrase"].as_str().unwrap();
    audit.secrets().text("scrypt vector passphrase", right);
    for (passphrase, status) in [("wrong pass phrase", 400), (right, 200)] {
        let body = serde_json::json!({"id": "api-protected-ok", "key": protected, "passphrase": passphrase})
            .to_string();
        audit.api(
            "POST",
            "config/encryption-keys",
            token,
            Some((json, &body)),
            status,
            status == 200,
        );
    }
}

/// The audit log over the API: its records, its verification (with a
/// kept checkpoint), its checkpoint; a bad checkpoint and operation.
fn api_audit_log(audit: &mut Audit, _: &KnownKeys) {
    let root = audit.root_auth();
    let token = [("Authorization", root.as_str())];
    let log = "config/encryption-key-audit";
    audit.get(log, &token, 200);
    audit.get(
        &format!("{log}?id=api-created&operation=create&operation=delete&since=0"),
        &token,
        200,
    );
    audit.get(&format!("{log}?operation=erase"), &token, 400);
    // signed now (POST), then the stored one (GET): the same
    let mut notes = Vec::new();
    for (method, body) in [("POST", Some((FORM, ""))), ("GET", None)] {
        let path = format!("{log}/checkpoint");
        let answer = audit.api(method, &path, &token, body, 200, false);
        let note = answer.json()["data"]["checkpoint"]
            .as_str()
            .expect("a checkpoint")
            .to_string();
        notes.push(note);
    }
    assert_eq!(notes[0], notes[1]);
    let note = notes.pop().unwrap();
    let answer = audit.api(
        "GET",
        &format!("{log}/verify?checkpoint={}", urlencode(&note)),
        &token,
        None,
        200,
        false,
    );
    let report = &answer.json()["data"];
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert_eq!(report["kept-checkpoints"], 1, "{report}");
    audit.get(&format!("{log}/verify?checkpoint=garbage"), &token, 400);
}

/// A ticket: the login answer holds it and the CSRF token, nothing else
/// may; alice's token has Admin on the keys, but alice herself only Audit.
fn api_tickets(audit: &mut Audit, _: &KnownKeys) {
    let login = format!("username=alice@pbs&password={}", ALICE_2.replace(' ', "+"));
    let ticket_path = "access/ticket";
    let answer = audit.api("POST", ticket_path, &[], Some((FORM, &login)), 200, true);
    let data = answer.json()["data"].clone();
    let ticket = data["ticket"].as_str().unwrap().to_string();
    let csrf = data["CSRFPreventionToken"].as_str().unwrap().to_string();
    audit.secrets().text("alice's ticket", &ticket);
    audit.secrets().text("alice's CSRF token", &csrf);
    let cookie = format!("PBSAuthCookie={ticket}");
    let with_ticket = [("Cookie", cookie.as_str())];
    let with_csrf = [
        ("Cookie", cookie.as_str()),
        ("CSRFPreventionToken", csrf.as_str()),
    ];
    audit.get("config/encryption-keys", &with_ticket, 200);
    audit.get("access/permissions", &with_ticket, 200);
    audit.get("access/permissions?auth-id=alice@pbs!t1", &with_ticket, 200);
    audit.get("access/permissions?auth-id=root@pam", &with_ticket, 403);
    let imported = "config/encryption-keys/imported";
    audit.api("POST", imported, &with_ticket, None, 401, false);
    audit.api("POST", imported, &with_csrf, None, 403, false);
    let renew = format!("username=alice@pbs&password={}", urlencode(&ticket));
    audit.api("POST", ticket_path, &[], Some((FORM, &renew)), 200, true);

    let (_, alice_secret) = audit.tokens.clone().expect("the tokens phase ran");
    let alice = format!("PBSAPIToken=alice@pbs!t1:{alice_secret}");
    let alice = [("Authorization", alice.as_str())];
    audit.form(
        "POST",
        "config/encryption-keys",
        &alice,
        "id=alice-key",
        403,
    );
}

/// Bad credentials and bad requests.
fn api_bad_credentials(audit: &mut Audit, _: &KnownKeys) {
    let root = audit.root_auth();
    let token = [("Authorization", root.as_str())];
    let wrong = format!("PBSAPIToken=root@pam!audit:{}", "0".repeat(36));
    let bad_login = format!("username=alice@pbs&password={}", ALICE_1.replace(' ', "+"));
    audit.get("version", &[("Authorization", wrong.as_str())], 401);
    audit.get("version", &[("Authorization", "PBSAPIToken=garbage")], 401);
    audit.get("version", &[], 401);
    audit.form("POST", "access/ticket", &[], &bad_login, 401);
    audit.get("config/encryption-keys?bogus=1", &token, 400);
    audit.get("nope", &token, 404);
    audit.api("PUT", "version", &token, None, 405, false);
}

/// The daemon stopped: neither of its logs holds a secret, the access log
/// kept its mode under umask 000, and every route was called.
fn api_logs_and_routes(audit: &mut Audit, _: &KnownKeys) {
    let mut daemon = audit.daemon.take().expect("a running daemon");
    daemon.api.signal(nix::sys::signal::Signal::SIGTERM);
    let status = daemon.api.wait();
    assert!(status.success(), "daemon exit: {status:?}");
    for (what, path) in [
        ("daemon log", &daemon.api.log),
        ("access log", &daemon.access_log),
    ] {
        // with --access-log, daemon messages go there too; stderr is empty
        let text = std::fs::read_to_string(path).unwrap();
        assert!(!text.is_empty() || what == "daemon log", "{what} is empty");
        audit.printed(what.to_string(), text);
    }
    let mode = std::fs::metadata(&daemon.access_log).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o640, "access log mode under umask 000");
    let missing: Vec<String> = all_routes()
        .into_iter()
        .filter(|route| !audit.covered.contains(route))
        .collect();
    assert!(
        missing.is_empty(),
        "routes the audit does not call: {missing:?}"
    );
    audit.check_modes("after the daemon");
}

/// Generated texts, completion and help.
fn generated_texts_and_help(audit: &mut Audit, _: &KnownKeys) {
    audit.run("text", &["generate-completion", "bash"], 0);
    audit.run("text", &["generate-man"], 0);
    audit.run("text", &["__complete", "key-ids"], 0);
    audit.run("text", &["__complete", "job-ids"], 0);
    for command in commands_from_help() {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.push("--help");
        audit.run("text", &args, 0);
    }
}

/// The audit log after the whole run: it verifies, it recorded the CLI's
/// changes as `root@pam` on the CLI with the Unix user and the API's as
/// the token from the loopback address, and it holds no secret: no key
/// (hex, base64, any 8-byte piece), no password, no token secret, no
/// ticket that the audit registered.
fn audit_log_holds_no_secret(audit: &mut Audit, _: &KnownKeys) {
    let path = audit.dir().join("encryption-keys/.audit/log");
    let text = std::fs::read_to_string(&path).unwrap();
    audit.secrets().assert_absent("the audit log", &text);
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let unix_user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    let ops_of = |actor: &str, origin: &dyn Fn(&str) -> bool| -> BTreeSet<String> {
        records
            .iter()
            .filter(|r| r["actor"] == actor && origin(r["origin"].as_str().unwrap()))
            .map(|r| r["op"].as_str().unwrap().to_string())
            .collect()
    };
    let cli = ops_of("root@pam", &|origin| origin == "cli");
    for op in [
        "create",
        "import",
        "archive",
        "unarchive",
        "delete",
        "trash-restore",
        "purge",
        "repair-orphan",
        "user-create",
        "user-password",
        "user-update",
        "user-delete",
        "token-create",
        "token-delete",
        "acl-grant",
        "sync-job-keys",
        "export",
        "export-verify",
        "restore",
        "paperkey",
    ] {
        assert!(cli.contains(op), "no CLI record of {op}: {cli:?}");
    }
    assert!(
        records
            .iter()
            .filter(|r| r["origin"] == "cli")
            .all(|r| r["unix-user"] == unix_user.as_str()),
        "CLI records without the Unix user {unix_user}"
    );
    let api = ops_of("root@pam!audit", &|origin| {
        origin == "api 127.0.0.1" || origin == "api ::1"
    });
    for op in [
        "create",
        "import",
        "archive",
        "delete",
        "trash-restore",
        "purge",
        "export",
        "export-verify",
        // (the API's restore here finds every key present: nothing to
        // record; tests/audit_ops.rs has one that restores)
        "paperkey",
    ] {
        assert!(api.contains(op), "no API record of {op}: {api:?}");
    }
    assert!(
        records
            .iter()
            .filter(|r| r["origin"].as_str().unwrap().starts_with("api "))
            .all(|r| r.get("unix-user").is_none())
    );
    // nothing acted without saying who
    assert!(!text.contains("\"origin\":\"local\""));
    let report = audit.run("json", &["audit", "verify"], 0);
    let report: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(report["records"], records.len());
}

/// Every command of the binary was run; a key learnt late was not printed
/// early either; no file but the key files holds a secret; every mode is
/// as documented.
fn every_command_every_secret(audit: &mut Audit, _: &KnownKeys) {
    let missing: Vec<String> = commands_from_help()
        .difference(&audit.covered)
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "commands the audit does not run: {missing:?}"
    );
    for (what, text) in &audit.transcript {
        audit.secrets().assert_absent(what, text);
    }
    audit.check_files();
    audit.check_modes("at the end");
}
