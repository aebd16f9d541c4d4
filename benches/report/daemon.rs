//! `proxmox-backup-api` under load: started on 127.0.0.1 (port 0) on a
//! bench config dir, driven over HTTPS with keep-alive by a hyper client
//! (one tokio thread, so client and daemon share the machine's 2 cores as
//! in the tests).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};

use pbs_api_types::{ApiToken, Authid};
use pbs_config::ConfigDir;

const DAEMON: &str = env!("CARGO_BIN_EXE_proxmox-backup-api");

/// Gives `root@pam!bench` Admin on `/` in `dir`; returns the
/// Authorization header value.
pub fn setup_token(dir: &Path) -> String {
    let dir = ConfigDir::new(dir).expect("config dir");
    let tokenid: Authid = "root@pam!bench".parse().unwrap();
    let users = dir.user_config();
    let lock = users.lock_config().unwrap();
    let token = ApiToken {
        tokenid: tokenid.clone(),
        comment: None,
        enable: None,
        expire: None,
    };
    users.add_token(&token, &lock).unwrap();
    drop(lock);
    let secret = dir
        .token_shadow()
        .generate_and_set_secret(&tokenid)
        .unwrap();
    let acl = dir.acl_config();
    let lock = acl.lock_config().unwrap();
    let (mut tree, _) = acl.config().unwrap();
    tree.insert_user_role("/", &tokenid, "Admin", true);
    acl.save_config(&tree, &lock).unwrap();
    format!("PBSAPIToken={tokenid}:{secret}")
}

/// A running daemon, killed when dropped.
pub struct Daemon {
    child: Child,
    pub port: u16,
}

impl Daemon {
    pub fn start(dir: &Path) -> Self {
        let log = std::fs::File::create(dir.join("daemon.log")).unwrap();
        let mut child = Command::new(DAEMON)
            .arg("--config-dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0", "--access-log"])
            .arg(dir.join("access.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start proxmox-backup-api");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on 127.0.0.1:")
            .and_then(|port| port.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no readiness line from the daemon (got {line:?})");
        };
        Self { child, port }
    }

    /// `VmHWM` and `VmRSS` of the daemon, in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(port: u16) -> SendRequest<Full<Bytes>> {
    let mut builder = SslConnector::builder(SslMethod::tls()).unwrap();
    builder.set_verify(SslVerifyMode::NONE);
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let ssl = builder
        .build()
        .configure()
        .unwrap()
        .verify_hostname(false)
        .into_ssl("localhost")
        .unwrap();
    let mut stream = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    Pin::new(&mut stream).connect().await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
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
