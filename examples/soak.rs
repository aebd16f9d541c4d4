//! Soak run of `proxmox-backup-api` (`make soak`; not part of `make test`).
//!
//! Starts the daemon on 127.0.0.1 (port chosen by the OS) with a fresh
//! config dir, then runs CLIENTS clients for SECONDS seconds, each on its
//! own keep-alive TLS connection, doing a mix of list, show, verify,
//! create, archive/unarchive, delete, version and some deliberately bad
//! requests (unknown key, deleting an active key, a wrong token secret).
//! Every answer is checked against what the client's own model of its
//! keys says it must be; anything else counts as an error. Meanwhile the
//! daemon's RSS and open file descriptors are sampled from /proc every
//! few seconds. At the end the daemon gets SIGTERM and `verify` must be
//! clean.
//!
//! Bounded and self-stopping: every client stops at the deadline, every
//! request has a 30 s socket timeout, each client owns at most 6 keys,
//! and the daemon is killed if it does not stop within 15 s of SIGTERM.
//!
//! Usage: `soak [SECONDS] [CLIENTS]` (default 600 s, 16 clients). Exit
//! status 0 when there was no unexpected answer, RSS and fds stayed flat
//! (RSS: at most 5% + 1 MiB growth over the second half of the run)
//! and verify was clean.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVerifyMode};

/// Keys a client owns at most (ids `cN-0` ... `cN-5`).
const KEYS_PER_CLIENT: usize = 6;
/// How often /proc is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

fn bin_dir() -> PathBuf {
    // target/release/examples/soak -> target/release
    let exe = std::env::current_exe().expect("own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// One answer.
struct Answer {
    status: u16,
    body: String,
}

/// A blocking HTTPS/1.1 client on one keep-alive connection.
struct Client {
    port: u16,
    auth: String,
    stream: Option<BufReader<SslStream<TcpStream>>>,
}

impl Client {
    fn new(port: u16, auth: String) -> Self {
        Self {
            port,
            auth,
            stream: None,
        }
    }

    fn connect(&self) -> std::io::Result<BufReader<SslStream<TcpStream>>> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(30)))?;
        let mut builder = SslConnector::builder(SslMethod::tls()).map_err(std::io::Error::other)?;
        builder.set_verify(SslVerifyMode::NONE);
        let stream = builder
            .build()
            .configure()
            .map_err(std::io::Error::other)?
            .verify_hostname(false)
            .connect("localhost", tcp)
            .map_err(std::io::Error::other)?;
        Ok(BufReader::new(stream))
    }

    /// Sends a request; a connection the server closed is reopened once.
    fn request(&mut self, method: &str, path: &str, form: Option<&str>) -> Result<Answer, String> {
        for attempt in 0..2 {
            if self.stream.is_none() {
                self.stream = Some(self.connect().map_err(|err| format!("connect: {err}"))?);
            }
            match self.exchange(method, path, form) {
                Ok(answer) => return Ok(answer),
                Err(_) if attempt == 0 => {
                    // a keep-alive connection the server timed out: retry once
                    self.stream = None;
                }
                Err(err) => {
                    self.stream = None;
                    return Err(err);
                }
            }
        }
        unreachable!()
    }

    fn exchange(&mut self, method: &str, path: &str, form: Option<&str>) -> Result<Answer, String> {
        let stream = self.stream.as_mut().unwrap();
        let body = form.unwrap_or("");
        let mut request = format!(
            "{method} /api2/json/{path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nContent-Length: {}\r\n",
            self.auth,
            body.len()
        );
        if form.is_some() {
            request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        request.push_str("\r\n");
        request.push_str(body);
        let io = |err: std::io::Error| format!("{method} {path}: {err}");
        stream.get_mut().write_all(request.as_bytes()).map_err(io)?;

        let mut status_line = String::new();
        if stream.read_line(&mut status_line).map_err(io)? == 0 {
            return Err(format!("{method} {path}: connection closed"));
        }
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{method} {path}: bad status line {status_line:?}"))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            let mut line = String::new();
            stream.read_line(&mut line).map_err(io)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let (name, value) = (name.to_ascii_lowercase(), value.trim());
            match name.as_str() {
                "content-length" => length = value.parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let mut data = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                stream.read_line(&mut size).map_err(io)?;
                let size = usize::from_str_radix(size.trim(), 16)
                    .map_err(|_| format!("{method} {path}: bad chunk size"))?;
                let mut chunk = vec![0; size + 2];
                stream.read_exact(&mut chunk).map_err(io)?;
                if size == 0 {
                    break;
                }
                data.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(length) = length {
            data.resize(length, 0);
            stream.read_exact(&mut data).map_err(io)?;
        }
        if close {
            self.stream = None;
        }
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&data).into_owned(),
        })
    }
}

/// Counters shared by the clients.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    expected_refusals: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn error(&self, text: String) {
        let mut errors = self.errors.lock().unwrap();
        if errors.len() < 50 {
            errors.push(text);
        }
    }
}

/// xorshift64*
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Absent,
    Active,
    Archived,
}

fn run_client(
    index: usize,
    port: u16,
    token: String,
    bad: String,
    deadline: Instant,
    tally: &Tally,
) {
    let mut client = Client::new(port, format!("PBSAPIToken={token}"));
    let mut bad_client = Client::new(port, format!("PBSAPIToken={bad}"));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((index as u64 + 1) * 0x1000_0001));
    let mut keys = [State::Absent; KEYS_PER_CLIENT];
    while Instant::now() < deadline {
        let slot = rng.below(KEYS_PER_CLIENT as u64) as usize;
        let id = format!("c{index}-{slot}");
        let state = keys[slot];
        // (what, answer, statuses that are right, new state if it worked)
        let (what, answer, ok, next): (String, _, &[u16], Option<State>) = match rng.below(100) {
            0..25 => {
                let archived = if rng.below(2) == 0 {
                    "?include-archived=1"
                } else {
                    ""
                };
                let path = format!("config/encryption-keys{archived}");
                (
                    path.clone(),
                    client.request("GET", &path, None),
                    &[200],
                    None,
                )
            }
            25..35 => (
                "version".into(),
                client.request("GET", "version", None),
                &[200],
                None,
            ),
            35..50 => {
                let path = format!("config/encryption-keys/{id}");
                let ok: &[u16] = if state == State::Absent {
                    &[404]
                } else {
                    &[200]
                };
                (path.clone(), client.request("GET", &path, None), ok, None)
            }
            50..58 => {
                let path = format!("config/encryption-keys/{id}/verify");
                let ok: &[u16] = if state == State::Absent {
                    &[404]
                } else {
                    &[200]
                };
                (path.clone(), client.request("GET", &path, None), ok, None)
            }
            58..75 => {
                let form = format!("id={id}");
                let ok: &[u16] = if state == State::Absent {
                    &[200]
                } else {
                    &[400, 409]
                };
                (
                    format!("POST create {id}"),
                    client.request("POST", "config/encryption-keys", Some(&form)),
                    ok,
                    Some(State::Active),
                )
            }
            75..87 => {
                let path = format!("config/encryption-keys/{id}");
                let (ok, next): (&[u16], _) = match state {
                    State::Absent => (&[404], State::Absent),
                    State::Active => (&[200], State::Archived),
                    State::Archived => (&[200], State::Active),
                };
                (
                    format!("POST toggle {id}"),
                    client.request("POST", &path, Some("")),
                    ok,
                    Some(next),
                )
            }
            87..97 => {
                let path = format!("config/encryption-keys/{id}");
                let ok: &[u16] = match state {
                    State::Absent => &[404],
                    State::Active => &[400, 409],
                    State::Archived => &[200],
                };
                (
                    format!("DELETE {id}"),
                    client.request("DELETE", &path, None),
                    ok,
                    Some(State::Absent),
                )
            }
            _ => (
                "wrong secret".into(),
                bad_client.request("GET", "config/encryption-keys", None),
                &[401, 429],
                None,
            ),
        };
        tally.requests.fetch_add(1, Ordering::Relaxed);
        match answer {
            Ok(answer) if ok.contains(&answer.status) => {
                if answer.status == 200 {
                    if let Some(next) = next {
                        keys[slot] = next;
                    }
                } else {
                    tally.expected_refusals.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(answer) => tally.error(format!(
                "client {index}: {what}: status {} (expected {ok:?}): {}",
                answer.status,
                answer.body.chars().take(200).collect::<String>()
            )),
            Err(err) => tally.error(format!("client {index}: {err}")),
        }
    }
}

/// RSS (KiB) and open fds of `pid`.
fn sample(pid: u32) -> Option<(u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    Some((rss, fds))
}

fn manager(bin: &Path, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin.join("proxmox-backup-manager"))
        .arg("--config-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run proxmox-backup-manager")
}

fn token(bin: &Path, dir: &Path, name: &str, role: &str) -> String {
    let out = manager(
        bin,
        dir,
        &[
            "--output-format",
            "json",
            "user",
            "generate-token",
            "root@pam",
            name,
        ],
    );
    assert!(out.status.success(), "generate-token: {out:?}");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("token JSON");
    let tokenid = format!("root@pam!{name}");
    if !role.is_empty() {
        let out = manager(
            bin,
            dir,
            &["acl", "update", "/", role, "--auth-id", &tokenid],
        );
        assert!(out.status.success(), "acl update: {out:?}");
    }
    format!("{tokenid}:{}", value["value"].as_str().expect("secret"))
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(600);
    let clients: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    let bin = bin_dir();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("config");
    std::fs::create_dir(&dir).unwrap();

    let good = token(&bin, &dir, "soak", "Admin");
    // a real token id with a wrong secret: throttled per (address, id) only
    let bad = format!(
        "{}:00000000-0000-0000-0000-000000000000",
        token(&bin, &dir, "bad", "").split(':').next().unwrap()
    );

    let log_path = tmp.path().join("daemon.log");
    let mut child = Command::new(bin.join("proxmox-backup-api"))
        .arg("--config-dir")
        .arg(&dir)
        .args(["--listen", "127.0.0.1:0", "--auth-failure-delay", "0"])
        .arg("--access-log")
        .arg(&log_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start proxmox-backup-api");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let daemon = Daemon(child);
    let pid = daemon.0.id();
    let port: u16 = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no readiness line: {line:?}"));
    println!("soak: daemon pid {pid} on port {port}, {clients} clients for {seconds} s");

    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let tally = Arc::new(Tally::default());
    let samples: Arc<Mutex<Vec<(u64, u64, usize)>>> = Arc::default();
    std::thread::scope(|scope| {
        for index in 0..clients {
            let (good, bad, tally) = (good.clone(), bad.clone(), Arc::clone(&tally));
            scope.spawn(move || run_client(index, port, good, bad, deadline, &tally));
        }
        let samples = Arc::clone(&samples);
        let tally = Arc::clone(&tally);
        scope.spawn(move || {
            let mut last_print = Instant::now();
            while Instant::now() < deadline {
                if let Some((rss, fds)) = sample(pid) {
                    let t = start.elapsed().as_secs();
                    samples.lock().unwrap().push((t, rss, fds));
                    if last_print.elapsed() >= Duration::from_secs(60) || t < 1 {
                        println!(
                            "soak: t={t:>4}s rss={rss} KiB fds={fds} requests={}",
                            tally.requests.load(Ordering::Relaxed)
                        );
                        last_print = Instant::now();
                    }
                }
                std::thread::sleep(
                    SAMPLE_EVERY.min(deadline.saturating_duration_since(Instant::now())),
                );
            }
        });
    });
    let elapsed = start.elapsed().as_secs_f64();

    // stop the daemon: SIGTERM, at most 15 s
    let mut daemon = daemon;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let stop = Instant::now();
    let stopped = loop {
        match daemon.0.try_wait() {
            Ok(Some(status)) => break Some(status),
            _ if stop.elapsed() > Duration::from_secs(15) => break None,
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let verify = manager(&bin, &dir, &["encryption-key", "verify"]);

    let samples = samples.lock().unwrap().clone();
    let requests = tally.requests.load(Ordering::Relaxed);
    let refusals = tally.expected_refusals.load(Ordering::Relaxed);
    let errors = tally.errors.lock().unwrap().clone();
    // warm-up: the first 10% of the run (at least one sample)
    let warm = samples
        .iter()
        .position(|(t, _, _)| *t as f64 >= seconds as f64 * 0.1)
        .unwrap_or(0);
    let steady = &samples[warm..];
    let first_rss = steady.first().map(|s| s.1).unwrap_or(0);
    let last_rss = steady.last().map(|s| s.1).unwrap_or(0);
    let max_rss = steady.iter().map(|s| s.1).max().unwrap_or(0);
    let min_fds = steady.iter().map(|s| s.2).min().unwrap_or(0);
    let max_fds = steady.iter().map(|s| s.2).max().unwrap_or(0);
    let first_fds = steady.first().map(|s| s.2).unwrap_or(0);
    let last_fds = steady.last().map(|s| s.2).unwrap_or(0);
    // flat: allocator arenas and connection buffers grow during the first
    // minutes, so the test is on the second half of the run: RSS may grow
    // at most 5% (+ 1 MiB) there, and at most 50% over the whole run after
    // warm-up; fds end within a few of where they started and never exceed
    // that by more than the clients' connections
    let mid_rss = samples
        .iter()
        .find(|(t, _, _)| *t >= seconds / 2)
        .map(|s| s.1)
        .unwrap_or(first_rss);
    let rss_flat =
        last_rss <= mid_rss + mid_rss / 20 + 1024 && last_rss <= first_rss + first_rss / 2;
    let fds_flat = last_fds <= first_fds + 4 && max_fds <= first_fds + clients + 4;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();

    println!(
        "soak: {requests} requests in {elapsed:.0} s ({:.0}/s), {refusals} expected refusals, {} unexpected answers",
        requests as f64 / elapsed,
        errors.len()
    );
    println!(
        "soak: RSS after warm-up {first_rss} KiB, at half time {mid_rss} KiB, at the end {last_rss} KiB, max {max_rss} KiB ({})",
        if rss_flat { "flat" } else { "GREW" }
    );
    let minutes: Vec<String> = samples
        .iter()
        .filter(|(t, _, _)| t % 60 < SAMPLE_EVERY.as_secs())
        .map(|(t, rss, fds)| format!("{t}s:{rss}/{fds}"))
        .collect();
    println!("soak: RSS KiB / fds per minute: {}", minutes.join(" "));
    println!(
        "soak: open fds after warm-up {first_fds}, at the end {last_fds}, range {min_fds}..{max_fds} ({})",
        if fds_flat { "flat" } else { "GREW" }
    );
    println!(
        "soak: daemon stopped on SIGTERM: {stopped:?}; access log {} lines",
        log.lines().count()
    );
    println!(
        "soak: verify exit {:?}: {}",
        verify.status.code(),
        String::from_utf8_lossy(&verify.stdout).trim()
    );
    for error in &errors {
        println!("soak: ERROR {error}");
    }
    let ok = errors.is_empty()
        && rss_flat
        && fds_flat
        && stopped.is_some_and(|s| s.success())
        && verify.status.code() == Some(0)
        && requests > 0;
    println!("soak: {}", if ok { "PASSED" } else { "FAILED" });
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
