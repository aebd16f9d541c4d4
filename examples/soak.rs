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

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pbs_test_kit::https::{Client, Resp, form_body};
use pbs_test_kit::rng::Rng;
use pbs_test_kit::{ApiDaemon, Manager, Sandbox};

/// Keys a client owns at most (ids `cN-0` ... `cN-5`).
const KEYS_PER_CLIENT: usize = 6;
/// How often /proc is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How long a client waits for an answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client of the soak run: answers are counted, not panicked on.
struct SoakClient(Client);

impl SoakClient {
    fn new(port: u16, token: &str) -> Self {
        let auth = format!("PBSAPIToken={token}");
        Self(
            Client::new(port)
                .with_auth(&[("Authorization", &auth)])
                .with_timeout(REQUEST_TIMEOUT),
        )
    }

    /// Sends a request below `/api2/json/`; a keep-alive connection the
    /// server closed is reopened once.
    fn request(&mut self, method: &str, path: &str, form: Option<&str>) -> Result<Resp, String> {
        let path = format!("/api2/json/{path}");
        match self.0.try_send(method, &path, &[], form.map(form_body)) {
            Ok(answer) => Ok(answer),
            // a keep-alive connection the server timed out: retry once
            Err(_) => self.0.try_send(method, &path, &[], form.map(form_body)),
        }
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

#[derive(Clone, Copy, PartialEq)]
enum State {
    Absent,
    Active,
    Archived,
}

/// One request of a client: what it was, its answer, the statuses that
/// are right, and the state of its key if it worked.
type Request = (String, Result<Resp, String>, &'static [u16], Option<State>);

/// A read (`pick` below 58): the key list (archived keys too or not), the
/// version, a show (35..50) or verify (50..58) of `id`.
fn read_request(
    pick: u64,
    rng: &mut Rng,
    client: &mut SoakClient,
    id: &str,
    state: State,
) -> Request {
    match pick {
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
        _ => {
            let verify = if pick < 50 { "" } else { "/verify" };
            let path = format!("config/encryption-keys/{id}{verify}");
            let ok: &[u16] = if state == State::Absent {
                &[404]
            } else {
                &[200]
            };
            (path.clone(), client.request("GET", &path, None), ok, None)
        }
    }
}

/// A change (`pick` 58 and above): create `id` (58..75), archive or
/// unarchive it (75..87), delete it (87..97), or a list with a wrong
/// secret.
fn change_request(
    pick: u64,
    client: &mut SoakClient,
    bad_client: &mut SoakClient,
    id: &str,
    state: State,
) -> Request {
    match pick {
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
    }
}

/// One client until `deadline`: random requests on its own keys, each
/// answer held against its model of them.
fn run_client(
    index: usize,
    port: u16,
    token: String,
    bad: String,
    deadline: Instant,
    tally: &Tally,
) {
    let mut client = SoakClient::new(port, &token);
    let mut bad_client = SoakClient::new(port, &bad);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((index as u64 + 1) * 0x1000_0001));
    let mut keys = [State::Absent; KEYS_PER_CLIENT];
    while Instant::now() < deadline {
        let slot = rng.below(KEYS_PER_CLIENT as u64) as usize;
        let id = format!("c{index}-{slot}");
        let state = keys[slot];
        let pick = rng.below(100);
        let (what, answer, ok, next) = if pick < 58 {
            read_request(pick, &mut rng, &mut client, &id, state)
        } else {
            change_request(pick, &mut client, &mut bad_client, &id, state)
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

/// The daemon's RSS (KiB) and open fds by second since the start.
type Samples = Vec<(u64, u64, usize)>;

/// Samples the daemon's RSS and open fds every [`SAMPLE_EVERY`] until
/// `deadline`, printing them about once a minute.
fn sample_until(
    daemon: &ApiDaemon,
    start: Instant,
    deadline: Instant,
    samples: &Mutex<Samples>,
    tally: &Tally,
) {
    let mut last_print = Instant::now();
    while Instant::now() < deadline {
        if let (Some(rss), Some(fds)) = (daemon.status_kib("VmRSS"), daemon.open_fds()) {
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
        std::thread::sleep(SAMPLE_EVERY.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// Prints RSS and open fds after warm-up (the first 10% of the run, at
/// least one sample), at half time and at the end, and per minute;
/// whether each stayed flat (RSS, fds).
fn report_flatness(samples: &[(u64, u64, usize)], seconds: u64, clients: usize) -> (bool, bool) {
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
    (rss_flat, fds_flat)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(600);
    let clients: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    let sandbox = Sandbox::new();
    let dir = sandbox.config_dir();
    let manager = Manager::new(dir);

    let good = manager.root_token("soak", Some("Admin"));
    // a real token id with a wrong secret: throttled per (address, id) only
    let bad = format!(
        "{}:00000000-0000-0000-0000-000000000000",
        manager.root_token("bad", None).split(':').next().unwrap()
    );

    let log_path = sandbox.file("access.log");
    let mut daemon = ApiDaemon::start(
        dir,
        &["--access-log", log_path.to_str().expect("UTF-8 path")],
        sandbox.file("daemon.log"),
    );
    let (pid, port) = (daemon.pid(), daemon.port);
    println!("soak: daemon pid {pid} on port {port}, {clients} clients for {seconds} s");

    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let tally = Arc::new(Tally::default());
    let samples: Arc<Mutex<Samples>> = Arc::default();
    std::thread::scope(|scope| {
        for index in 0..clients {
            let (good, bad, tally) = (good.clone(), bad.clone(), Arc::clone(&tally));
            scope.spawn(move || run_client(index, port, good, bad, deadline, &tally));
        }
        let samples = Arc::clone(&samples);
        let tally = Arc::clone(&tally);
        let daemon = &daemon;
        scope.spawn(move || sample_until(daemon, start, deadline, &samples, &tally));
    });
    let elapsed = start.elapsed().as_secs_f64();

    // stop the daemon: SIGTERM, at most 15 s
    let stopped = daemon.terminate_within(Duration::from_secs(15));
    let stderr = daemon.log_text();
    drop(daemon);
    let verify = manager.run(&["encryption-key", "verify"]);

    let samples = samples.lock().unwrap().clone();
    let requests = tally.requests.load(Ordering::Relaxed);
    let refusals = tally.expected_refusals.load(Ordering::Relaxed);
    let errors = tally.errors.lock().unwrap().clone();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();

    println!(
        "soak: {requests} requests in {elapsed:.0} s ({:.0}/s), {refusals} expected refusals, {} unexpected answers",
        requests as f64 / elapsed,
        errors.len()
    );
    let (rss_flat, fds_flat) = report_flatness(&samples, seconds, clients);
    println!(
        "soak: daemon stopped on SIGTERM: {stopped:?}; access log {} lines",
        log.lines().count()
    );
    if !stderr.is_empty() {
        println!("soak: daemon stderr:\n{stderr}");
    }
    println!(
        "soak: verify exit {}: {}",
        verify.code,
        verify.stdout.trim()
    );
    for error in &errors {
        println!("soak: ERROR {error}");
    }
    let ok = errors.is_empty()
        && rss_flat
        && fds_flat
        && stopped.is_some_and(|s| s.success())
        && verify.code == 0
        && requests > 0;
    println!("soak: {}", if ok { "PASSED" } else { "FAILED" });
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
