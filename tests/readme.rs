//! README.md's quick start, run as written (issue 19): the `sh` block
//! between its quick-start markers, taken from the README itself so the
//! two cannot drift, is run in a scratch dir with this build's binaries,
//! and what each step prints is checked.
//!
//! The block starts the daemon on 127.0.0.1:8007, as a newcomer would. So
//! that the test neither meets another daemon on that port nor is met by
//! one, it runs in a network namespace of its own (`unshare --net`, root),
//! with only the loopback interface up.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use pbs_test_kit::bins;

/// The markers around the block in README.md.
const BEGIN: &str = "<!-- quick-start";
const END: &str = "<!-- /quick-start -->";

/// How long the whole block may take (it takes a few seconds).
const LIMIT: Duration = Duration::from_secs(120);

/// The commands of README.md's quick start: the fenced `sh` block between
/// the markers.
fn quick_start() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(BEGIN)
        .unwrap_or_else(|| panic!("{path:?} has no {BEGIN:?} marker"));
    let end = start
        + readme[start..]
            .find(END)
            .unwrap_or_else(|| panic!("{path:?} has no {END:?} after {BEGIN:?}"));
    let section = &readme[start..end];
    let body = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(body, _)| body)
        .unwrap_or_else(|| panic!("no ```sh block between the quick-start markers"));
    assert!(
        body.lines().filter(|line| !line.trim().is_empty()).count() >= 10,
        "the quick-start block is nearly empty:\n{body}"
    );
    body.to_string()
}

/// The block's shell, its process group killed when dropped: a failing
/// line after the daemon started must not leave the daemon running.
struct Shell(Child);

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.0.id() as i32), Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

impl Shell {
    /// Waits at most [`LIMIT`] for the shell to exit.
    fn wait(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < LIMIT,
                "the quick start did not finish within {LIMIT:?}"
            );
            // polling a child's exit: there is no portable wait with a timeout
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The names and modification times of the files in `dir`, if it exists.
fn listing(dir: &Path) -> Option<Vec<(PathBuf, std::time::SystemTime)>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut out: Vec<_> = entries
        .map(|entry| {
            let entry = entry.unwrap();
            (entry.path(), entry.metadata().unwrap().modified().unwrap())
        })
        .collect();
    out.sort();
    Some(out)
}

/// The lines of `text` containing `needle`.
fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|line| line.contains(needle)).collect()
}

/// What the block printed, and the scratch dir it ran in.
struct Ran {
    stdout: String,
    stderr: String,
    scratch: tempfile::TempDir,
}

impl Ran {
    /// Both outputs, for assertion messages.
    fn context(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// Runs `script` with `sh -e` in a new scratch dir (also its `TMPDIR`) and
/// a network namespace of its own, this build's binaries first on `PATH`,
/// none of the environment that would change the output; panics unless
/// it succeeds.
fn run_in_scratch(script: &str) -> Ran {
    let scratch = tempfile::tempdir().unwrap();
    let out_path = scratch.path().join("stdout");
    let err_path = scratch.path().join("stderr");
    let path = format!(
        "{}:{}",
        bins::bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // files, not pipes: a daemon left behind would hold a pipe open
    let mut shell = Shell(
        Command::new("unshare")
            .args(["--net", "--", "sh", "-c"])
            .arg("ip link set lo up && exec sh -e -c \"$1\"")
            .args(["sh", script])
            .current_dir(scratch.path())
            .env("PATH", path)
            .env("TMPDIR", scratch.path())
            .env_remove("PBS_CONFIG_DIR")
            .env_remove("PROXMOX_OUTPUT_FORMAT")
            .env_remove("PROXMOX_OUTPUT_NO_BORDER")
            .env_remove("PROXMOX_OUTPUT_NO_HEADER")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .process_group(0)
            .spawn()
            .expect("unshare (util-linux) and ip (iproute2) run the quick start"),
    );
    let status = shell.wait();
    drop(shell);
    let ran = Ran {
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: std::fs::read_to_string(&err_path).unwrap(),
        scratch,
    };
    assert!(
        status.success(),
        "the quick start failed ({status}):\n{}",
        ran.context()
    );
    ran
}

/// The one dir `mktemp -d` made in the scratch dir, where the block works.
fn work_dir(ran: &Ran) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(ran.scratch.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "one scratch dir from mktemp: {dirs:?}");
    dirs[0].clone()
}

/// The key commands: create wrote the key, 0600, and said so with its
/// fingerprint; list has its row; export-verify and verify are clean, and
/// after the drill no key lacks a verified copy.
/// Returns the key's fingerprint.
fn check_key_commands(ran: &Ran) -> String {
    let (stdout, context) = (&ran.stdout, ran.context());
    let work = work_dir(ran);
    let key = work.join("demo.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{key:?}");
    let key_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&key).unwrap()).unwrap();
    let fingerprint = key_json["fingerprint"].as_str().unwrap().to_string();
    assert!(work.join("etc/encryption-keys.cfg").is_file(), "{context}");
    assert!(
        stdout.contains(&format!(
            "created encryption key 'demo' (fingerprint {fingerprint})"
        )),
        "{context}"
    );
    // list: a table row of the key, its fingerprint shortened as upstream's
    // (box-drawing or ASCII borders, as the locale says)
    let short = &fingerprint[..23];
    assert!(
        lines_with(stdout, " demo ")
            .iter()
            .any(|row| row.contains(short)),
        "no list row of 'demo' with {short}:\n{context}"
    );
    assert!(
        stdout.contains(
            "result: every key in the bundle is intact (1 key(s)); in the store: 1 equal, \
             0 different, 0 absent"
        ),
        "{context}"
    );
    // list --no-verified-copy after the drill: the table, without a row
    let drilled = stdout
        .find("result: every key in the bundle is intact")
        .unwrap();
    let verified = drilled + stdout[drilled..].find("keys checked: ").unwrap();
    let uncopied = &stdout[drilled..verified];
    assert!(
        uncopied.contains("archived-at"),
        "no list printed: {context}"
    );
    assert!(
        !uncopied.contains(" demo "),
        "demo has no verified copy: {context}"
    );
    assert!(stdout.contains("keys checked: 1\n"), "{context}");
    assert!(stdout.contains("result: clean\n"), "{context}");
    fingerprint
}

/// The daemon: the token's secret printed once, the daemon listening on
/// loopback, curl's answer holding the key, a clean shutdown.
fn check_daemon(ran: &Ran, fingerprint: &str) {
    let (stdout, context) = (&ran.stdout, ran.context());
    let secret_line = lines_with(stdout, "token root@pam!demo, secret ");
    assert_eq!(secret_line.len(), 1, "{context}");
    let secret = secret_line[0].rsplit(' ').next().unwrap();
    assert_eq!(secret.len(), 36, "a UUID secret: {secret:?}\n{context}");
    assert!(stdout.contains("listening on 127.0.0.1:8007"), "{context}");
    let at = stdout
        .find("{\"data\":")
        .unwrap_or_else(|| panic!("no answer: {context}"));
    let answer: serde_json::Value = serde_json::Deserializer::from_str(&stdout[at..])
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(answer["data"][0]["id"], "demo", "{context}");
    assert_eq!(answer["data"][0]["fingerprint"], fingerprint, "{context}");
    assert!(ran.stderr.contains("shut down"), "{context}");
}

#[test]
fn readme_quick_start_runs_as_written() {
    let script = quick_start();
    let etc_before = listing(Path::new("/etc/proxmox-backup"));
    let ran = run_in_scratch(&script);
    let fingerprint = check_key_commands(&ran);
    check_daemon(&ran, &fingerprint);
    // nothing of the real config dir was touched
    assert_eq!(listing(Path::new("/etc/proxmox-backup")), etc_before);
}
