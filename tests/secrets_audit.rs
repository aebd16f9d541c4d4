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
//! same config dir and calls every route (the route list is an exhaustive
//! match on the router's `Route`, so a new route fails to compile here until
//! the audit calls it), with tokens, a ticket and bad credentials. Only the
//! answer to `POST /config/encryption-keys` may hold a key, only the answer
//! to `POST /access/ticket` a ticket and CSRF token, only the stdout of
//! `user generate-token` a token secret; no answer, no stdout or stderr, and
//! neither the daemon's log nor its access log may hold any of them or a
//! password.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE};

use pbs_key_config::KeyConfig;
use pbs_keystore::server::router::{Route, find_route};

use crate::api_daemon::ApiDaemon;
use crate::util::{raw_key, vectors_dir};

const BIN: &str = env!("CARGO_BIN_EXE_proxmox-backup-manager");
const FORMATS: [&str; 3] = ["text", "json", "json-pretty"];

/// Every string that would give a key away: for each raw key its hex
/// (both cases) and base64 (standard, unpadded, URL-safe), whole and of
/// every 8-byte window (hex) or 9-byte window at a multiple of 3 (base64,
/// so it is a substring of the whole); for each key file its `data` field.
#[derive(Default)]
struct Secrets {
    needles: Vec<(String, String)>,
}

impl Secrets {
    fn key(&mut self, name: &str, raw: &[u8]) {
        let mut add = |needle: String| self.needles.push((name.to_string(), needle));
        add(hex::encode(raw));
        add(hex::encode_upper(raw));
        add(STANDARD.encode(raw));
        add(STANDARD_NO_PAD.encode(raw));
        add(URL_SAFE.encode(raw));
        for window in raw.windows(8) {
            add(hex::encode(window));
            add(hex::encode_upper(window));
        }
        for start in (0..raw.len().saturating_sub(8)).step_by(3) {
            add(STANDARD_NO_PAD.encode(&raw[start..start + 9]));
        }
    }

    /// A secret that is not key bytes (a password, token secret, ticket).
    fn text(&mut self, name: &str, secret: &str) {
        self.needles.push((name.to_string(), secret.to_string()));
    }

    fn key_file(&mut self, name: &str, key_config: &KeyConfig) {
        self.needles
            .push((format!("{name} (data)"), STANDARD.encode(&key_config.data)));
        if !key_config.is_protected() {
            self.key(name, &key_config.data);
        }
    }

    fn assert_absent(&self, what: &str, text: &str) {
        for (name, needle) in &self.needles {
            assert!(
                !text.contains(needle.as_str()),
                "{what} contains key material of {name} ({needle}):\n{text}"
            );
        }
    }
}

/// One run of the binary.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

struct Audit {
    _tmp: tempfile::TempDir,
    /// The config dir: does not exist until the first write creates it.
    dir: PathBuf,
    /// Input files and output files, outside the config dir.
    scratch: PathBuf,
    secrets: Secrets,
    /// Command paths run (`encryption-key list`, ...).
    covered: BTreeSet<String>,
    /// Output files of `create --output-file`: may hold their key, 0600.
    output_files: Vec<PathBuf>,
    /// Everything printed that may not hold a key, checked at the end too
    /// (a key learnt later must not have been printed earlier).
    transcript: Vec<(String, String)>,
}

impl Audit {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("config");
        let scratch = tmp.path().join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        Self {
            dir,
            scratch,
            _tmp: tmp,
            secrets: Secrets::default(),
            covered: BTreeSet::new(),
            output_files: Vec::new(),
            transcript: Vec::new(),
        }
    }

    /// Runs `args` (after `--config-dir` and `--output-format`) under
    /// umask 000, then checks the modes of every file.
    fn raw_run(&mut self, format: &str, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config-dir")
            .arg(&self.dir)
            .args(["--output-format", format])
            .args(args)
            .env("TZ", "UTC0")
            .env_remove("PBS_CONFIG_DIR")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: umask is async-signal-safe
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::stat::umask(nix::sys::stat::Mode::empty());
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("run proxmox-backup-manager");
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        let output = child.wait_with_output().unwrap();
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
        Run {
            code: output.status.code().expect("exit status"),
            stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
        }
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
        self.secrets
            .assert_absent(&format!("stdout of {what}"), &run.stdout);
        self.secrets
            .assert_absent(&format!("stderr of {what}"), &run.stderr);
        self.transcript
            .push((format!("stdout of {what}"), run.stdout.clone()));
        self.transcript
            .push((format!("stderr of {what}"), run.stderr.clone()));
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
        self.secrets.key_file(id, &key_config);
        self.secrets
            .assert_absent(&format!("stderr of create {id}"), &run.stderr);
        self.transcript
            .push((format!("stderr of create {id}"), run.stderr));
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
        self.secrets.key_file(id, &key_config);
        for (stream, text) in [("stdout", run.stdout), ("stderr", run.stderr)] {
            let what = format!("{stream} of create {id} --output-file");
            self.secrets.assert_absent(&what, &text);
            self.transcript.push((what, text));
        }
        self.output_files.push(file);
    }

    /// Writes an input file in the scratch dir.
    fn input(&self, name: &str, data: &[u8]) -> String {
        let path = self.scratch.join(name);
        std::fs::write(&path, data).unwrap();
        path.display().to_string()
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
        if let Ok(meta) = std::fs::metadata(&self.dir) {
            // created by the first store, as upstream lays it out
            assert_eq!(meta.mode() & 0o7777, 0o700, "{what}: config dir mode");
        }
        let mut files = Vec::new();
        walk(&self.dir, &mut files);
        for (path, mode, is_dir) in files {
            let name = path.file_name().unwrap().to_string_lossy();
            let expected = if is_dir {
                0o750
            } else if name.ends_with(".lck") || name.ends_with(".lock") {
                0o660
            } else if name == "shadow.json" || name == "authkey.key" {
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
        let mut stack = vec![self.dir.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if path.is_dir() {
                    stack.push(path);
                } else if !name.ends_with(".enc") {
                    let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                    self.secrets.assert_absent(&format!("{path:?}"), &text);
                }
            }
        }
    }
}

impl Audit {
    /// `user generate-token USER NAME`: the secret on stdout (its one
    /// place), nothing on stderr but the warning. Returns the secret.
    fn token(&mut self, format: &str, user: &str, name: &str) -> String {
        let run = self.raw_run(format, &["user", "generate-token", user, name], None);
        assert_eq!(run.code, 0, "generate-token {user} {name}: {}", run.stderr);
        let secret = match format {
            "text" => run
                .stdout
                .lines()
                .find_map(|line| line.strip_prefix("value: "))
                .expect("value line")
                .to_string(),
            _ => serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()["value"]
                .as_str()
                .unwrap()
                .to_string(),
        };
        self.secrets
            .assert_absent(&format!("stderr of generate-token {name}"), &run.stderr);
        self.transcript
            .push((format!("stderr of generate-token {name}"), run.stderr));
        self.secrets
            .text(&format!("token secret {user}!{name}"), &secret);
        secret
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
        let mut cmd = ApiDaemon::command(&audit.dir, &[]);
        cmd.arg("--access-log")
            .arg(&access_log)
            .env_remove("PBS_CONFIG_DIR");
        // SAFETY: umask is async-signal-safe
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::stat::umask(nix::sys::stat::Mode::empty());
                Ok(())
            });
        }
        Self {
            api: ApiDaemon::spawn(cmd, log),
            access_log,
        }
    }
}

/// One API request on its own TLS connection (`Connection: close`):
/// the status and the whole answer, head and body.
fn https(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> (u16, String) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).unwrap();
    builder.set_verify(openssl::ssl::SslVerifyMode::NONE);
    let mut stream = builder
        .build()
        .configure()
        .unwrap()
        .verify_hostname(false)
        .connect("localhost", tcp)
        .unwrap();
    let (content_type, data) = body.unwrap_or(("application/x-www-form-urlencoded", ""));
    let mut request = format!(
        "{method} /api2/json/{path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n",
        data.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(data);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8(answer).expect("UTF-8 answer");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer:?}"));
    (status, answer)
}

/// The body of an answer from [`https`], as JSON.
fn answer_json(answer: &str) -> serde_json::Value {
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|err| panic!("not JSON ({err}): {answer}"))
}

/// Every route of the router: a new one makes this match, and so the
/// audit, fail to compile until the audit calls it.
fn route_name(route: Route) -> &'static str {
    match route {
        Route::Version => "GET version",
        Route::CreateTicket => "POST access/ticket",
        Route::ListKeys => "GET config/encryption-keys",
        Route::CreateKey => "POST config/encryption-keys",
        Route::ShowKey => "GET config/encryption-keys/{id}",
        Route::ToggleKey => "POST config/encryption-keys/{id}",
        Route::DeleteKey => "DELETE config/encryption-keys/{id}",
        Route::VerifyKey => "GET config/encryption-keys/{id}/verify",
    }
}

const ALL_ROUTES: [Route; 8] = [
    Route::Version,
    Route::CreateTicket,
    Route::ListKeys,
    Route::CreateKey,
    Route::ShowKey,
    Route::ToggleKey,
    Route::DeleteKey,
    Route::VerifyKey,
];

impl Audit {
    /// An API call whose answer may hold no secret (unless `allowed`);
    /// records the route. Returns the answer.
    #[allow(clippy::too_many_arguments)]
    fn api(
        &mut self,
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &str)>,
        status: u16,
        allowed: bool,
    ) -> String {
        let route_path = format!("/api2/json/{}", path.split('?').next().unwrap());
        let method_value: hyper::Method = method.parse().unwrap();
        if let Ok((route, _)) = find_route(&method_value, &route_path) {
            self.covered.insert(route_name(route).to_string());
        }
        let (got, answer) = https(port, method, path, headers, body);
        let what = format!("answer to {method} {path}");
        assert_eq!(
            got,
            status,
            "{what}: {answer}\naccess log:\n{}",
            std::fs::read_to_string(self.scratch.join("access.log")).unwrap_or_default()
        );
        if !allowed {
            self.secrets.assert_absent(&what, &answer);
            self.transcript.push((what, answer.clone()));
        }
        answer
    }
}

/// Leaf command paths from the binary's `--help` (`encryption-key list`, ...).
fn commands_from_help() -> BTreeSet<String> {
    fn subcommands(path: &[&str]) -> Vec<String> {
        let output = Command::new(BIN).args(path).arg("--help").output().unwrap();
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

#[test]
fn no_command_prints_a_key_and_every_file_keeps_its_mode_under_umask_000() {
    let mut audit = Audit::new();

    // keys the test knows before they reach the store
    let (upstream, upstream_raw) = vector("unprotected");
    let (protected, protected_raw) = vector("scrypt-protected");
    audit.secrets.key("vector unprotected", &upstream_raw);
    audit.secrets.key("vector scrypt-protected", &protected_raw);
    audit.secrets.key_file(
        "vector scrypt-protected",
        &KeyConfig::from_json(&protected).unwrap(),
    );
    let from_file = KeyConfig::without_password(raw_key(71)).unwrap();
    let from_stdin = KeyConfig::without_password(raw_key(72)).unwrap();
    audit.secrets.key_file("import-file", &from_file);
    audit.secrets.key_file("import-stdin", &from_stdin);

    // no config dir yet: reading creates nothing (verify says the dir does
    // not exist)
    audit.all_formats(&["encryption-key", "list"], 0);
    audit.all_formats(&["encryption-key", "verify"], 2);
    audit.all_formats(&["sync-job", "list"], 0);
    assert!(!audit.dir.exists());

    // create, in each format, to stdout and to a file
    audit.create("text", "created-text");
    audit.create("json", "created-json");
    audit.create("json-pretty", "created-pretty");
    audit.create_to_file("text", "file-text");
    audit.create_to_file("json", "file-json");

    // import from a file, from stdin, an upstream key file
    let file = audit.input("import.enc", from_file.to_json().unwrap().as_bytes());
    audit.run(
        "text",
        &["encryption-key", "import", "imported", "--file", &file],
        0,
    );
    let stdin = from_stdin.to_json().unwrap();
    audit.run_stdin(
        "json",
        &["encryption-key", "import", "from-stdin", "--file", "-"],
        Some(stdin.as_bytes()),
        0,
    );
    let upstream_file = audit.input("upstream.enc", &upstream);
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

    // imports that must fail, each with the key in the input
    let protected_file = audit.input("protected.enc", &protected);
    let mut wrong_fp = KeyConfig::without_password(raw_key(73)).unwrap();
    audit.secrets.key_file("wrong fingerprint", &wrong_fp);
    wrong_fp.fingerprint = from_file.fingerprint;
    let wrong_fp_file = audit.input("wrong-fp.enc", wrong_fp.to_json().unwrap().as_bytes());
    let json = from_file.to_json().unwrap();
    let truncated = audit.input("truncated.enc", &json.as_bytes()[..json.len() - 20]);
    let bad_b64 = json.replacen("\"data\":\"", "\"data\":\"!", 1);
    let bad_b64_file = audit.input("bad-b64.enc", bad_b64.as_bytes());
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
                2,
            );
        }
        audit.run_stdin(
            format,
            &["encryption-key", "import", "stdin-bad", "--file", "-"],
            Some(&json.as_bytes()[..40]),
            2,
        );
        // an existing id, a bad id, an existing output file
        audit.run(format, &["encryption-key", "create", "imported"], 2);
        audit.run(format, &["encryption-key", "create", "../x"], 2);
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
            2,
        );
    }

    // reading, in every format
    audit.all_formats(&["encryption-key", "list"], 0);
    audit.all_formats(&["encryption-key", "list", "--include-archived"], 0);
    for id in ["created-text", "file-json", "imported", "upstream"] {
        audit.all_formats(&["encryption-key", "show", id], 0);
    }
    audit.all_formats(&["encryption-key", "show", "no-such-key"], 2);

    // tie keys to a job, refuse archiving and deleting, untie
    std::fs::write(
        audit.dir.join("sync.cfg"),
        "sync: job1\n\tremote-store remote\n\tstore local\n",
    )
    .unwrap();
    std::fs::set_permissions(
        audit.dir.join("sync.cfg"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    audit.run(
        "text",
        &[
            "sync-job",
            "update",
            "job1",
            "--active-encryption-key",
            "imported",
            "--associated-key",
            "upstream",
        ],
        0,
    );
    audit.all_formats(&["sync-job", "list"], 0);
    audit.all_formats(&["sync-job", "show", "job1"], 0);
    audit.all_formats(&["encryption-key", "archive", "imported"], 2);
    audit.run("text", &["encryption-key", "archive", "upstream"], 0);
    audit.all_formats(&["encryption-key", "delete", "upstream"], 2);
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

    // archive, unarchive, delete in each format
    for (format, id) in FORMATS
        .iter()
        .zip(["created-text", "created-json", "from-stdin"])
    {
        audit.run(format, &["encryption-key", "delete", id], 2); // not archived
        audit.run(format, &["encryption-key", "archive", id], 0);
        audit.run(format, &["encryption-key", "unarchive", id], 0);
        audit.run(format, &["encryption-key", "archive", id], 0);
        audit.run(format, &["encryption-key", "delete", id], 0);
    }

    // verify and repair a broken store: an orphan, a wrong mode, a swapped
    // key file (fingerprint mismatch messages name fingerprints only)
    let keys = audit.dir.join("encryption-keys");
    std::fs::copy(keys.join("imported.enc"), keys.join("orphan.enc")).unwrap();
    std::fs::set_permissions(
        keys.join("orphan.enc"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    audit.all_formats(&["encryption-key", "verify"], 1);
    audit.run("text", &["encryption-key", "verify", "--repair"], 0);
    std::fs::rename(keys.join("file-text.enc"), keys.join("swap.tmp")).unwrap();
    std::fs::rename(keys.join("file-json.enc"), keys.join("file-text.enc")).unwrap();
    std::fs::rename(keys.join("swap.tmp"), keys.join("file-json.enc")).unwrap();
    audit.all_formats(&["encryption-key", "verify"], 1);
    audit.all_formats(&["encryption-key", "verify", "--repair"], 1);
    audit.all_formats(&["encryption-key", "show", "file-text"], 0);
    audit.run("text", &["encryption-key", "archive", "file-text"], 0);
    audit.all_formats(&["encryption-key", "delete", "file-text"], 2);
    std::fs::rename(keys.join("file-text.enc"), keys.join("swap.tmp")).unwrap();
    std::fs::rename(keys.join("file-json.enc"), keys.join("file-text.enc")).unwrap();
    std::fs::rename(keys.join("swap.tmp"), keys.join("file-json.enc")).unwrap();
    audit.run("json", &["encryption-key", "verify"], 0);

    // users, passwords, API tokens, ACLs
    const ALICE_1: &str = "alice first pass phrase";
    const ALICE_2: &str = "alice second pass phrase";
    const BOB: &str = "bob's pass phrase on argv";
    audit.secrets.text("alice's first password", ALICE_1);
    audit.secrets.text("alice's second password", ALICE_2);
    audit.secrets.text("bob's password", BOB);
    audit.run_stdin(
        "text",
        &["user", "create", "alice@pbs", "--ask-password"],
        Some(format!("{ALICE_1}\n").as_bytes()),
        0,
    );
    audit.run("json", &["user", "create", "bob@pbs", "--password", BOB], 0);
    audit.all_formats(&["user", "create", "alice@pbs"], 2);
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
        2,
    );
    let root_secret = audit.token("json", "root@pam", "audit");
    let alice_secret = audit.token("text", "alice@pbs", "t1");
    audit.token("json-pretty", "alice@pbs", "t2");
    audit.all_formats(&["user", "list-tokens", "alice@pbs"], 0);
    audit.run("text", &["user", "delete-token", "alice@pbs", "t2"], 0);
    audit.all_formats(&["user", "delete-token", "alice@pbs", "t2"], 2);
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
        2,
    );
    audit.all_formats(&["acl", "list"], 0);

    // the API: every route, with a token, a ticket and bad credentials
    let mut daemon = AuditDaemon::start(&audit);
    let port = daemon.api.port;
    let root = format!("PBSAPIToken=root@pam!audit:{root_secret}");
    let token = [("Authorization", root.as_str())];
    audit.api(port, "GET", "version", &token, None, 200, false);
    audit.api(
        port,
        "GET",
        "config/encryption-keys",
        &token,
        None,
        200,
        false,
    );
    audit.api(
        port,
        "GET",
        "config/encryption-keys?include-archived=1",
        &token,
        None,
        200,
        false,
    );
    // create: the one answer with a key
    let answer = audit.api(
        port,
        "POST",
        "config/encryption-keys",
        &token,
        Some(("application/x-www-form-urlencoded", "id=api-created")),
        200,
        true,
    );
    let created: KeyConfig =
        serde_json::from_value(answer_json(&answer)["data"].clone()).expect("KeyConfig");
    audit.secrets.key_file("api-created", &created);
    // import: the answer repeats the key the client sent
    let imported = KeyConfig::without_password(raw_key(74)).unwrap();
    audit.secrets.key_file("api-imported", &imported);
    let body =
        serde_json::json!({"id": "api-imported", "key": imported.to_json().unwrap()}).to_string();
    audit.api(
        port,
        "POST",
        "config/encryption-keys",
        &token,
        Some(("application/json", &body)),
        200,
        true,
    );
    // refused imports and creates: the key in the request, never in the answer
    for (id, text) in [
        (
            "api-protected",
            String::from_utf8(protected.clone()).unwrap(),
        ),
        ("api-wrong-fp", wrong_fp.to_json().unwrap()),
        ("api-truncated", json[..json.len() - 20].to_string()),
        ("api-bad-base64", bad_b64.clone()),
        ("api-dup", imported.to_json().unwrap()),
    ] {
        let body = serde_json::json!({"id": id, "key": text}).to_string();
        audit.api(
            port,
            "POST",
            "config/encryption-keys",
            &token,
            Some(("application/json", &body)),
            400,
            false,
        );
    }
    audit.api(
        port,
        "POST",
        "config/encryption-keys",
        &token,
        Some(("application/x-www-form-urlencoded", "id=api-created")),
        400,
        false,
    );
    for path in [
        "config/encryption-keys/api-created",
        "config/encryption-keys/api-created/verify",
        "config/encryption-keys/imported/verify",
    ] {
        audit.api(port, "GET", path, &token, None, 200, false);
    }
    audit.api(
        port,
        "GET",
        "config/encryption-keys/no-such-key",
        &token,
        None,
        404,
        false,
    );
    let stale = format!("digest={}", "0".repeat(64));
    audit.api(
        port,
        "POST",
        "config/encryption-keys/api-created",
        &token,
        Some(("application/x-www-form-urlencoded", &stale)),
        400,
        false,
    );
    audit.api(
        port,
        "POST",
        "config/encryption-keys/api-created",
        &token,
        None,
        200,
        false,
    );
    audit.api(
        port,
        "DELETE",
        "config/encryption-keys/api-imported",
        &token,
        None,
        400,
        false,
    );
    audit.api(
        port,
        "DELETE",
        "config/encryption-keys/api-created",
        &token,
        None,
        200,
        false,
    );
    // a ticket: the login answer holds it and the CSRF token, nothing else may
    let login = format!("username=alice@pbs&password={}", ALICE_2.replace(' ', "+"));
    let answer = audit.api(
        port,
        "POST",
        "access/ticket",
        &[],
        Some(("application/x-www-form-urlencoded", &login)),
        200,
        true,
    );
    let data = answer_json(&answer)["data"].clone();
    let ticket = data["ticket"].as_str().unwrap().to_string();
    let csrf = data["CSRFPreventionToken"].as_str().unwrap().to_string();
    audit.secrets.text("alice's ticket", &ticket);
    audit.secrets.text("alice's CSRF token", &csrf);
    let cookie = format!("PBSAuthCookie={ticket}");
    let with_ticket = [("Cookie", cookie.as_str())];
    let with_csrf = [
        ("Cookie", cookie.as_str()),
        ("CSRFPreventionToken", csrf.as_str()),
    ];
    audit.api(
        port,
        "GET",
        "config/encryption-keys",
        &with_ticket,
        None,
        200,
        false,
    );
    audit.api(
        port,
        "POST",
        "config/encryption-keys/imported",
        &with_ticket,
        None,
        401,
        false,
    );
    audit.api(
        port,
        "POST",
        "config/encryption-keys/imported",
        &with_csrf,
        None,
        403,
        false,
    );
    let encoded: String = ticket
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let renew = format!("username=alice@pbs&password={encoded}");
    audit.api(
        port,
        "POST",
        "access/ticket",
        &[],
        Some(("application/x-www-form-urlencoded", &renew)),
        200,
        true,
    );
    // alice's token: Admin on the keys, but alice herself only Audit
    let alice = format!("PBSAPIToken=alice@pbs!t1:{alice_secret}");
    audit.api(
        port,
        "POST",
        "config/encryption-keys",
        &[("Authorization", alice.as_str())],
        Some(("application/x-www-form-urlencoded", "id=alice-key")),
        403,
        false,
    );
    // bad credentials and bad requests
    let wrong = format!("PBSAPIToken=root@pam!audit:{}", "0".repeat(36));
    let bad_login = format!("username=alice@pbs&password={}", ALICE_1.replace(' ', "+"));
    audit.api(
        port,
        "GET",
        "version",
        &[("Authorization", wrong.as_str())],
        None,
        401,
        false,
    );
    audit.api(
        port,
        "GET",
        "version",
        &[("Authorization", "PBSAPIToken=garbage")],
        None,
        401,
        false,
    );
    audit.api(port, "GET", "version", &[], None, 401, false);
    audit.api(
        port,
        "POST",
        "access/ticket",
        &[],
        Some(("application/x-www-form-urlencoded", &bad_login)),
        401,
        false,
    );
    audit.api(
        port,
        "GET",
        "config/encryption-keys?bogus=1",
        &token,
        None,
        400,
        false,
    );
    audit.api(port, "GET", "nope", &token, None, 404, false);
    audit.api(port, "PUT", "version", &token, None, 405, false);

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
        audit.secrets.assert_absent(what, &text);
        audit.transcript.push((what.to_string(), text));
    }
    let mode = std::fs::metadata(&daemon.access_log).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o640, "access log mode under umask 000");
    let missing: Vec<&str> = ALL_ROUTES
        .iter()
        .map(|route| route_name(*route))
        .filter(|name| !audit.covered.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "routes the audit does not call: {missing:?}"
    );
    audit.check_modes("after the daemon");

    // generated texts, completion and help
    audit.run("text", &["generate-completion", "bash"], 0);
    audit.run("text", &["generate-man"], 0);
    audit.run("text", &["__complete", "key-ids"], 0);
    audit.run("text", &["__complete", "job-ids"], 0);
    for command in commands_from_help() {
        let mut args: Vec<&str> = command.split(' ').collect();
        args.push("--help");
        audit.run("text", &args, 0);
    }

    // every command of the binary was run
    let missing: Vec<String> = commands_from_help()
        .difference(&audit.covered)
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "commands the audit does not run: {missing:?}"
    );

    // a key learnt late must not have been printed early either
    for (what, text) in &audit.transcript {
        audit.secrets.assert_absent(what, text);
    }
    audit.check_files();
    audit.check_modes("at the end");
}
