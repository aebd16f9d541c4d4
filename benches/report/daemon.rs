//! `proxmox-backup-api` under load: started on 127.0.0.1 (port 0) on a
//! bench config dir, driven over HTTPS with keep-alive by a hyper client
//! (one tokio thread, so client and daemon share the machine's 2 cores as
//! in the tests).

use std::path::Path;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;

use pbs_config::ConfigDir;
use pbs_test_kit::ApiDaemon;
use pbs_test_kit::https::connect;

/// Gives `root@pam!bench` Admin on `/` in `dir`; returns the
/// Authorization header value.
pub fn setup_token(dir: &Path) -> String {
    let dir = ConfigDir::new(dir).expect("config dir");
    pbs_test_kit::access::admin_token(&dir, "root@pam!bench")
}

/// Starts the daemon on `dir`, its log and access log in `dir`.
pub fn start(dir: &Path) -> ApiDaemon {
    let access_log = dir.join("access.log");
    let extra = ["--access-log", access_log.to_str().unwrap()];
    ApiDaemon::start(dir, &extra, dir.join("daemon.log"))
}

/// `VmHWM` and `VmRSS` of the daemon, in KiB.
pub fn memory_kib(daemon: &ApiDaemon) -> (u64, u64) {
    let field = |name| daemon.status_kib(name).unwrap_or(0);
    (field("VmHWM"), field("VmRSS"))
}

/// What a load run sends.
#[derive(Clone, Copy)]
pub enum Op {
    /// GET the list (all keys, archived too).
    List,
    /// POST a new key (the daemon generates it); `run` keeps the ids of
    /// separate runs apart.
    Create { run: u32 },
}

/// One request; returns the status and the body length.
async fn request(
    sender: &mut SendRequest<Full<Bytes>>,
    auth: &str,
    op: Op,
    conn: usize,
    seq: usize,
) -> (u16, usize) {
    let builder = hyper::Request::builder()
        .header("Host", "localhost")
        .header("Authorization", auth);
    let request = match op {
        Op::List => builder
            .method("GET")
            .uri("/api2/json/config/encryption-keys?include-archived=1")
            .body(Full::new(Bytes::new())),
        Op::Create { run } => builder
            .method("POST")
            .uri("/api2/json/config/encryption-keys")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(format!(
                "id=load{run}-c{conn:02}-{seq:06}"
            )))),
    }
    .unwrap();
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.expect("HTTP request");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.len())
}

/// Figures of one load run.
pub struct LoadResult {
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub median: Duration,
    pub p99: Duration,
    pub body_bytes: usize,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// `connections` keep-alive connections each sending `op` requests one
/// after the other for `duration` (after one untimed request each, which
/// pays the TLS handshake and the token check).
pub fn load(port: u16, auth: &str, op: Op, connections: usize, duration: Duration) -> LoadResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut senders = Vec::new();
        for conn in 0..connections {
            let mut sender = connect(port).await;
            let (status, _) = request(&mut sender, auth, op, conn, 0).await;
            assert_eq!(status, 200, "warm-up request failed");
            senders.push(sender);
        }
        let start = Instant::now();
        let deadline = start + duration;
        let tasks: Vec<_> = senders
            .into_iter()
            .enumerate()
            .map(|(conn, mut sender)| {
                let auth = auth.to_string();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    let mut body_bytes = 0;
                    let mut seq = 1;
                    while Instant::now() < deadline {
                        let sent = Instant::now();
                        let (status, len) = request(&mut sender, &auth, op, conn, seq).await;
                        latencies.push(sent.elapsed());
                        if status != 200 {
                            errors += 1;
                        }
                        body_bytes = len;
                        seq += 1;
                    }
                    (latencies, errors, body_bytes)
                })
            })
            .collect();
        let mut latencies = Vec::new();
        let mut errors = 0;
        let mut body_bytes = 0;
        for task in tasks {
            let (mut l, e, b) = task.await.unwrap();
            latencies.append(&mut l);
            errors += e;
            body_bytes = b;
        }
        let elapsed = start.elapsed();
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).max(1) - 1];
        LoadResult {
            requests: latencies.len(),
            errors,
            elapsed,
            median: at(0.5),
            p99: at(0.99),
            body_bytes,
        }
    })
}

/// One request of `op` on a new connection (for the memory figures).
pub fn once(port: u16, auth: &str, op: Op, seq: usize) -> usize {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut sender = connect(port).await;
        let (status, len) = request(&mut sender, auth, op, 99, seq).await;
        assert_eq!(status, 200);
        len
    })
}
