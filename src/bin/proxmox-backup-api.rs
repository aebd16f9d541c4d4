//! `proxmox-backup-api`: the HTTPS API daemon of the keystore.
//!
//! Serves the PBS-compatible `/api2/json` routes (see `docs/api.md`) on
//! `[::]:8007` by default. Prints `listening on ADDR:PORT` on stdout once
//! the socket is bound; logs to stderr (or `--access-log FILE`); stops
//! cleanly on SIGTERM or SIGINT. `--generate-man` (hidden) prints its man
//! page, proxmox-backup-api(8), rendered by the manager's man page module.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Error, format_err};
use clap::Parser;

use pbs_config::ConfigDir;
use pbs_keystore::server::access_log::AccessLog;
use pbs_keystore::server::{DEFAULT_LISTEN, ServerOptions, ServerState, run};

// the one man page renderer, shared with proxmox-backup-manager
#[path = "proxmox_backup_manager/manpage.rs"]
mod manpage;

/// HTTPS API daemon of a Proxmox Backup Server style keystore.
///
/// Serves the PBS-compatible routes below /api2/json (encryption keys, sync
/// job keys, tickets, version) to clients that authenticate with an API
/// token or a ticket; privileges come from acl.cfg. Prints "listening on
/// ADDR:PORT" on stdout once the socket is bound, logs to stderr or the
/// --access-log file, and stops cleanly on SIGTERM or SIGINT. Users, tokens
/// and ACLs are set up with proxmox-backup-manager(1).
#[derive(Parser)]
#[command(name = "proxmox-backup-api", version)]
struct Cli {
    /// Address and port to listen on (port 0: chosen by the OS, see the
    /// readiness line).
    #[arg(long, value_name = "ADDR:PORT", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// Configuration directory [default: $PBS_CONFIG_DIR, else /etc/proxmox-backup].
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,

    /// Append access log lines (and daemon messages) to this file instead
    /// of stderr.
    #[arg(long, value_name = "FILE")]
    access_log: Option<PathBuf>,

    /// Seconds a client has to send a request head (and keep-alive idle
    /// time).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    header_timeout: f64,

    /// Seconds a client has to finish the TLS handshake [default: the
    /// --header-timeout, at most 10].
    #[arg(long, value_name = "SECONDS")]
    handshake_timeout: Option<f64>,

    /// Seconds a client has to send a request body.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    body_timeout: f64,

    /// Seconds after the start of a request at which a failed
    /// authentication is answered (upstream: 3).
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0)]
    auth_failure_delay: f64,

    /// Failed logins per client address and user (or token) before that
    /// pair is checked at most once a second (429 in between) for the rest
    /// of the window.
    #[arg(long, value_name = "COUNT", default_value_t = 5)]
    max_auth_failures: u32,

    /// The window of --max-auth-failures, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    auth_failure_window: f64,

    /// Connections served at once per client (an IPv4 address or an IPv6
    /// /64); more are closed right after accept.
    #[arg(long, value_name = "COUNT", default_value_t = 64)]
    max_connections_per_address: usize,

    /// Print the manual page (roff) to stdout and exit.
    #[arg(long, hide = true)]
    generate_man: bool,
}

/// The exit statuses of the daemon.
const EXIT_STATUSES: &[(&str, &str)] = &[
    (
        "0",
        "Stopped by SIGTERM or SIGINT after the requests in progress were answered.",
    ),
    (
        "1",
        "Could not start (an invalid option value, an unusable config directory, the address in use, \
         no TLS certificate) or failed while running; the error is printed to stderr as one line.",
    ),
    ("2", "Usage error: an unknown option or a missing value."),
];

/// The man page, proxmox-backup-api(8).
fn man_page() -> manpage::Page<'static> {
    let mut files = manpage::config_dir_files();
    files.push((
        "FILE of --access-log".to_string(),
        "Access log lines and daemon messages, appended (else they go to stderr).".to_string(),
    ));
    manpage::Page {
        section: "8",
        exit_status: EXIT_STATUSES,
        environment: &[(
            "PBS_CONFIG_DIR",
            "The config directory when --config-dir is not given (default /etc/proxmox-backup).",
        )],
        files,
        examples: vec![
            (
                "Serve on loopback only, with another config directory:",
                "proxmox-backup-api --listen 127.0.0.1:8007 --config-dir /srv/keystore".to_string(),
            ),
            (
                "Call it with an API token (see proxmox-backup-manager user generate-token):",
                "curl -k -H 'Authorization: PBSAPIToken=root@pam!automation:SECRET' https://127.0.0.1:8007/api2/json/version".to_string(),
            ),
            (
                "Stop it:",
                "kill -TERM PID   # or: systemctl stop proxmox-backup-api".to_string(),
            ),
        ],
    }
}

// glibc malloc unless built with the opt-in feature `mimalloc`, which
// parses configs faster but left the daemon with several times the memory
// (docs/performance.md has the figures of both).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// glibc's mmap threshold, fixed at 4 MiB: a buffer above it (at 100,000
/// keys the config text and a list's response, 25 MB each) is mapped for
/// its use and given back when it is freed. Left dynamic, glibc raises the
/// threshold (up to 32 MiB) once such a buffer is freed, and later ones
/// come from the arena of whichever worker thread allocates them, where
/// the memory stays: the daemon's peak after three lists and a create at
/// 100,000 keys was 148 to 205 MiB in identical runs, and 121 MiB in each
/// with the threshold fixed (docs/performance.md). Not lower: at 128 KiB
/// every list response of 1,000 keys (275 KB) was mapped and unmapped, and
/// lists with 16 connections served about a quarter fewer requests.
#[cfg(all(target_env = "gnu", not(feature = "mimalloc")))]
fn fix_mmap_threshold() {
    const MMAP_THRESHOLD: libc::c_int = 4 * 1024 * 1024;
    // SAFETY: mallopt only sets an allocator parameter; it is called first
    // in `main`, before any other thread exists. A refusal (0) leaves
    // glibc's default, which only costs memory.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

#[cfg(not(all(target_env = "gnu", not(feature = "mimalloc"))))]
fn fix_mmap_threshold() {}

fn seconds(name: &str, value: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format_err!("invalid --{name} {value} - expected seconds >= 0"))
}

/// Raises the soft limit of open files towards the hard one, so that
/// `max_connections` connections fit (the usual soft limit is 1024).
fn raise_open_file_limit(max_connections: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let wanted = (max_connections as u64 + 1024).min(hard);
    if wanted > soft {
        // best effort: without it, accept fails and is retried (logged)
        let _ = setrlimit(Resource::RLIMIT_NOFILE, wanted, hard);
    }
}

fn main() -> ExitCode {
    fix_mmap_threshold();
    let cli = Cli::parse();
    if cli.generate_man {
        use clap::CommandFactory;
        return match manpage::render(Cli::command(), &man_page()) {
            Ok(page) => {
                print!("{page}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("Error: unable to render the man page - {err}");
                ExitCode::FAILURE
            }
        };
    }
    match start(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn start(cli: Cli) -> Result<(), Error> {
    let dir = match &cli.config_dir {
        Some(dir) => ConfigDir::shared(dir)?,
        None => ConfigDir::default_dir()?,
    };
    let header_timeout = seconds("header-timeout", cli.header_timeout)?;
    let defaults = ServerOptions::default();
    let handshake_timeout = match cli.handshake_timeout {
        Some(value) => seconds("handshake-timeout", value)?,
        // a client that cannot finish a handshake would not send a head in time either
        None => defaults.handshake_timeout.min(header_timeout),
    };
    let options = ServerOptions {
        handshake_timeout,
        header_timeout,
        body_timeout: seconds("body-timeout", cli.body_timeout)?,
        auth_failure_delay: seconds("auth-failure-delay", cli.auth_failure_delay)?,
        max_auth_failures: cli.max_auth_failures,
        auth_failure_window: seconds("auth-failure-window", cli.auth_failure_window)?,
        max_connections_per_address: cli.max_connections_per_address,
        ..defaults
    };
    let log = match &cli.access_log {
        Some(path) => AccessLog::file(path)?,
        None => AccessLog::stderr(),
    };
    raise_open_file_limit(options.max_connections);
    let state = ServerState::new(dir, options, log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| format_err!("unable to start the async runtime - {err}"))?;
    runtime.block_on(run(state, cli.listen))
}
