//! The HTTPS server of `proxmox-backup-api`: TLS, HTTP/1.1, authentication,
//! routing, the access log, and the key management page's files ([`www`]).
//!
//! [`run`] binds the listen address, prints `listening on ADDR:PORT` on
//! stdout once the socket is bound (scripts and tests wait for that line),
//! serves until SIGTERM or SIGINT, then stops accepting, lets requests in
//! flight finish (at most [`ServerOptions::shutdown_timeout`]) and returns.
//!
//! Limits (see [`ServerOptions`]): TLS handshake, request head and request
//! body each have a timeout; the request body, the path and the headers
//! each have a size limit; at most [`ServerOptions::max_connections`]
//! connections are served at once and at most
//! [`ServerOptions::max_connections_per_address`] from one client (an IPv4
//! address or an IPv6 /64); further ones are closed right after accept, so
//! accepting never stops for the others; hashing of passwords and token
//! secrets is bounded ([`throttle`]).

pub mod access_log;
pub mod auth;
pub mod environment;
pub mod error;
pub mod params;
pub mod permission;
pub mod reply;
pub mod rest;
pub mod router;
pub mod throttle;
pub mod tls;
pub mod www;

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Error, format_err};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_openssl::SslStream;

use pbs_config::ConfigDir;

use crate::auth_helpers::AuthKeys;
use access_log::AccessLog;
use auth::TokenSecretCache;
use throttle::{HashLimiter, LoginThrottle};

/// Default listen address: every address, IPv6 and IPv4, port 8007.
pub const DEFAULT_LISTEN: &str = "[::]:8007";

/// Limits and timeouts of the server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Largest request body (64 KiB).
    pub max_body_size: usize,
    /// Longest request path (2 KiB).
    pub max_path_length: usize,
    /// Largest request head handled with a message (16 KiB); larger up to
    /// [`ServerOptions::max_buf_size`] get 431 from us, beyond it a bare 431.
    pub max_header_size: usize,
    /// HTTP read buffer (64 KiB).
    pub max_buf_size: usize,
    /// TLS handshake timeout.
    pub handshake_timeout: Duration,
    /// Time to receive a request head (also the keep-alive idle time).
    pub header_timeout: Duration,
    /// Time to receive a request body.
    pub body_timeout: Duration,
    /// Failed authentications are answered this long after the request
    /// started (upstream: 3 s).
    pub auth_failure_delay: Duration,
    /// Failed logins per client address and id before 429.
    pub max_auth_failures: u32,
    /// Window in which failures are counted.
    pub auth_failure_window: Duration,
    /// Connections served at once (more are closed right after accept).
    pub max_connections: usize,
    /// Connections served at once per client: an IPv4 address or an IPv6
    /// /64 (more are closed right after accept).
    pub max_connections_per_address: usize,
    /// How long shutdown waits for requests in flight.
    pub shutdown_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_body_size: 64 * 1024,
            max_path_length: 2048,
            max_header_size: 16 * 1024,
            max_buf_size: 64 * 1024,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            auth_failure_delay: Duration::from_secs(3),
            max_auth_failures: 5,
            auth_failure_window: Duration::from_secs(300),
            max_connections: 4096,
            max_connections_per_address: 64,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Everything a request needs.
pub struct ServerState {
    /// The config dir.
    pub dir: Arc<ConfigDir>,
    /// Ticket and CSRF keys.
    pub keys: AuthKeys,
    /// Verified token secrets.
    pub token_cache: TokenSecretCache,
    /// Bounds hash work.
    pub hash_limiter: HashLimiter,
    /// Throttles failing clients.
    pub throttle: LoginThrottle,
    /// Limits and timeouts.
    pub options: ServerOptions,
    /// The access log.
    pub log: AccessLog,
}

impl ServerState {
    /// Loads (or creates) the keys and certificate of `dir`.
    pub fn new(dir: Arc<ConfigDir>, options: ServerOptions, log: AccessLog) -> Result<Self, Error> {
        let keys = AuthKeys::load_or_generate(&dir)?;
        tls::ensure_certificate(&dir)?;
        Ok(Self {
            keys,
            token_cache: TokenSecretCache::new()?,
            hash_limiter: HashLimiter::per_cpu(),
            throttle: LoginThrottle::new(options.max_auth_failures, options.auth_failure_window),
            dir,
            options,
            log,
        })
    }
}

async fn serve_connection(
    state: Arc<ServerState>,
    acceptor: Arc<SslAcceptor>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let Ok(ssl) = Ssl::new(acceptor.context()) else {
        return;
    };
    let Ok(mut stream) = SslStream::new(ssl, tcp) else {
        return;
    };
    let handshake = Pin::new(&mut stream).accept();
    match tokio::time::timeout(state.options.handshake_timeout, handshake).await {
        Ok(Ok(())) => {}
        // not TLS, a bad handshake or too slow: nothing to answer
        _ => return,
    }
    let service_state = Arc::clone(&state);
    let service =
        service_fn(move |request| rest::handle_request(Arc::clone(&service_state), peer, request));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.options.header_timeout)
        .max_buf_size(state.options.max_buf_size)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = stopped(&mut shutdown) => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(state.options.shutdown_timeout, connection).await;
        }
    }
}

/// Open connections per client address.
struct AddressSlots {
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's slot; given back when dropped.
struct AddressSlot {
    slots: Arc<AddressSlots>,
    addr: IpAddr,
}

impl AddressSlots {
    fn take(self: &Arc<Self>, addr: IpAddr) -> Option<AddressSlot> {
        let mut counts = self.counts.lock().unwrap();
        let count = counts.entry(addr).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            slots: Arc::clone(self),
            addr,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts.lock().unwrap();
        if let Some(count) = counts.get_mut(&self.addr) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.addr);
            }
        }
    }
}

/// The client a connection is counted against: an IPv4 address (also
/// IPv4-mapped IPv6) or an IPv6 /64, which one host usually owns whole.
fn client_key(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// Resolves once shutdown was requested.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    loop {
        let stop = *shutdown.borrow_and_update();
        if stop || shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Binds `listen`, serves until SIGTERM or SIGINT, then shuts down cleanly.
pub async fn run(state: ServerState, listen: SocketAddr) -> Result<(), Error> {
    let acceptor = Arc::new(tls::acceptor(&state.dir)?);
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|err| format_err!("unable to listen on {listen} - {err}"))?;
    let local = listener.local_addr()?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;

    let state = Arc::new(state);
    announce(&state, local)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(state.options.max_connections.max(1)));
    let address_slots = Arc::new(AddressSlots {
        max: state.options.max_connections_per_address.max(1),
        counts: Mutex::new(HashMap::new()),
    });
    let mut connections = JoinSet::new();
    let mut last_full_message: Option<std::time::Instant> = None;
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // out of descriptors and the like: wait a little, keep serving
                    state.log.message(&format!("accept failed - {err}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        };
        while connections.try_join_next().is_some() {}
        // never wait for a slot before accepting: a full server closes the
        // new connection and goes on accepting, so clients holding idle
        // connections cannot stall the accept loop for everyone
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            drop(tcp);
            if last_full_message.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                last_full_message = Some(std::time::Instant::now());
                state.log.message(&format!(
                    "connection from {peer} closed - {} connections open",
                    state.options.max_connections
                ));
            }
            continue;
        };
        // one client may not take every slot
        let Some(address_slot) = address_slots.take(client_key(peer.ip())) else {
            drop(tcp);
            continue;
        };
        let state = Arc::clone(&state);
        let acceptor = Arc::clone(&acceptor);
        let stop = stop_rx.clone();
        connections.spawn(async move {
            serve_connection(state, acceptor, tcp, peer, stop).await;
            drop(address_slot);
            drop(permit);
        });
    }

    drop(listener);
    shut_down(&state, &stop_tx, connections).await;
    Ok(())
}

/// Logs what serves (version, config dir, certificate) and prints the
/// readiness line: the socket is bound and accepting from now on.
fn announce(state: &ServerState, local: SocketAddr) -> Result<(), Error> {
    state.log.message(&format!(
        "proxmox-backup-api {} - config dir {:?} ({}), certificate fingerprint {}",
        env!("CARGO_PKG_VERSION"),
        state.dir.base(),
        state.dir.ownership(),
        tls::certificate_fingerprint(&state.dir).unwrap_or_else(|err| format!("unknown ({err})")),
    ));
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {local}")?;
    stdout.flush()?;
    Ok(())
}

/// Tells every connection to stop, waits for the requests in flight (at
/// most the shutdown timeout and a second), then aborts what is left.
async fn shut_down(
    state: &ServerState,
    stop_tx: &watch::Sender<bool>,
    mut connections: JoinSet<()>,
) {
    state
        .log
        .message("shutting down - waiting for requests in flight");
    let _ = stop_tx.send(true);
    let deadline = state.options.shutdown_timeout + Duration::from_secs(1);
    if tokio::time::timeout(deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        connections.abort_all();
    }
    state.log.message("shut down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_ipv4_addresses_or_ipv6_prefixes() {
        let key = |text: &str| client_key(text.parse().unwrap()).to_string();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }
}
