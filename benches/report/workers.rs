//! The processes the report starts of itself (`PBS_BENCH_WORKER=ROLE`):
//! readers, the writer running beside them, a fresh-process load and
//! store and the store's disk and memory work alone (`fresh-floor`), one
//! read of generated text for an instruction count (`read-once`), and a
//! small parent that measures a command (`measure`).
//!
//! Each prints one line of figures on stdout and exits.

use std::path::Path;
use std::time::{Duration, Instant};

use pbs_config::ConfigDir;

use pbs_test_kit::key_config;

/// Runs the worker named by `role` with `args`.
pub fn run(role: &str, args: &[String]) {
    // the fresh-process workers stand for the CLI, which reads into huge
    // pages (`PBS_BENCH_HUGE_PAGES=0`: as the daemon, to compare)
    if matches!(role, "fresh-load" | "fresh-store" | "fresh-floor")
        && std::env::var_os("PBS_BENCH_HUGE_PAGES").is_none_or(|v| v != "0")
    {
        proxmox_sys::huge_pages::enable();
    }
    match role {
        "reader" => reader(&args[0], Path::new(&args[1]), secs(&args[2]), &args[3..]),
        "writer" => writer(Path::new(&args[0]), secs(&args[1]), secs(&args[2])),
        "fresh-load" => fresh_load(Path::new(&args[0]), &args[1]),
        "fresh-store" => fresh_store(Path::new(&args[0])),
        "fresh-floor" => fresh_floor(Path::new(&args[0])),
        "store" => store(args[0].parse().expect("keys")),
        "read-once" => read_once(&args[0], args[1].parse().expect("keys")),
        "measure" => measure(&args[0], &args[1..]),
        other => panic!("unknown worker role {other:?}"),
    }
}

fn secs(text: &str) -> Duration {
    Duration::from_secs_f64(text.parse().expect("seconds"))
}

/// Lists (all keys) or loads (the ids in turn) for `duration` through the
/// shared context of `dir`, as a long-running server process would; prints
/// `OPS NANOS`.
fn reader(op: &str, dir: &Path, duration: Duration, ids: &[String]) {
    let dir = ConfigDir::shared(dir).expect("config dir");
    let keys = dir.encryption_keys();
    let start = Instant::now();
    let mut ops = 0u64;
    while start.elapsed() < duration {
        match op {
            "list" => {
                let (list, _digest) = keys.list_keys(true).expect("list");
                assert!(!list.is_empty());
            }
            "load" => {
                let id = &ids[ops as usize % ids.len()];
                keys.load_key_config(id, false).expect("load");
            }
            other => panic!("unknown reader op {other:?}"),
        }
        ops += 1;
    }
    println!("{ops} {}", start.elapsed().as_nanos());
}

/// Stores, archives and deletes new keys for `duration`, one operation
/// every `pause` at most, so readers always see a changing config and N
/// stays the same; prints the number of operations.
fn writer(dir: &Path, duration: Duration, pause: Duration) {
    let dir = ConfigDir::new(dir).expect("config dir");
    let keys = dir.encryption_keys();
    let start = Instant::now();
    let mut ops = 0u64;
    let mut seed = 0u64;
    let paced = |ops: &mut u64| {
        *ops += 1;
        let due = pause * (*ops as u32);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    };
    while start.elapsed() < duration {
        seed += 1;
        let id = format!("writer-{}-{seed:06}", std::process::id());
        keys.store_key(&id, &key_config(2_000_000 + seed))
            .expect("store");
        paced(&mut ops);
        keys.archive_key(&id, None).expect("archive");
        paced(&mut ops);
        keys.remove_key(&id, None).expect("delete");
        paced(&mut ops);
    }
    println!("{ops}");
}

/// Three loads in this new process, each through a new `ConfigDir` (so
/// each reads the config: a `ConfigDir`'s first load reads it in chunks,
/// `KeyIndex::find_entry`, keeping neither its text nor an index): the
/// first, the second (the process warmed up) and the third (as the
/// second; in criterion's `ops/load_cold` loop every load is such). Prints
/// the nanos of the three, then the minor page faults of each (what
/// touching new memory costs: counted, so it holds still under load).
fn fresh_load(dir: &Path, id: &str) {
    three_times(|| {
        let config_dir = ConfigDir::new(dir).expect("config dir");
        config_dir
            .encryption_keys()
            .load_key_config(id, true)
            .expect("load");
        config_dir
    });
}

/// Three stores of a new key in this new process, each through a new
/// `ConfigDir` (so each reads and parses the config), printed as by
/// [`fresh_load`]. The keys are made before the clock starts.
fn fresh_store(dir: &Path) {
    let pid = std::process::id();
    let keys: Vec<_> = (0..3)
        .map(|n| {
            let id = format!("fresh-{pid}-{n}");
            (id, key_config(3_000_000 + u64::from(pid) * 3 + n))
        })
        .collect();
    let mut keys = keys.into_iter();
    three_times(|| {
        let (id, key) = keys.next().expect("three keys");
        let config_dir = ConfigDir::new(dir).expect("config dir");
        config_dir
            .encryption_keys()
            .store_key(&id, &key)
            .expect("store");
        config_dir
    });
}

/// What a store must do with memory and the disk, and nothing else, in
/// this new process, timed as [`fresh_store`]: read the config of `dir`
/// into new memory with room for an entry and add one, append a record to
/// a log and sync its data (the audit's intent), replace a key-sized file
/// and a file of the config's text durably (the key file: a new one, as a
/// store's; the config: over one of its size, as a store's). No lock,
/// parse, check, signature or second log record. Its files are its own,
/// beside the config (which it only reads).
fn fresh_floor(dir: &Path) {
    use std::io::{Read, Write};
    let entry = [b'x'; 300];
    let config_copy = dir.join("floor.cfg");
    if !config_copy.exists() {
        std::fs::copy(dir.join("encryption-keys.cfg"), &config_copy).expect("config copy");
    }
    let pid = std::process::id();
    let mut round = 0;
    three_times(|| {
        round += 1;
        let mut config = std::fs::File::open(dir.join("encryption-keys.cfg")).expect("config");
        let size = config.metadata().expect("config size").len() as usize;
        let mut text = Vec::with_capacity(size + 4096);
        config.read_to_end(&mut text).expect("read the config");
        text.extend_from_slice(&entry);
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join("floor.log"))
            .expect("log");
        log.write_all(&entry).expect("log record");
        log.sync_data().expect("log sync");
        crate::common::replace_durably(dir, &format!("floor-{pid}-{round}.key"), &entry);
        crate::common::replace_durably(dir, "floor.cfg", &text);
        text
    });
}

/// Runs `op` three times, timing each and counting its minor page faults;
/// what it returns is dropped untimed (a process exits without freeing).
/// Prints the three nanos, then the three fault counts.
fn three_times<T>(mut op: impl FnMut() -> T) {
    let mut nanos = Vec::new();
    let mut faults = Vec::new();
    for _ in 0..3 {
        let faults_before = minor_faults();
        let start = Instant::now();
        let kept = op();
        nanos.push(start.elapsed().as_nanos());
        faults.push(minor_faults() - faults_before);
        drop(kept);
    }
    let nanos = nanos.iter().map(u128::to_string);
    let faults = faults.iter().map(i64::to_string);
    println!("{}", nanos.chain(faults).collect::<Vec<_>>().join(" "));
}

/// The minor page faults of this process so far.
fn minor_faults() -> i64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF)
        .expect("getrusage")
        .minor_page_faults()
}

/// Makes a config dir of `keys` keys, as the fresh load's, and keeps it;
/// prints its path and the id of its real key (to profile `fresh-load` by
/// hand, see docs/performance.md).
fn store(keys: usize) {
    let store = crate::common::KeyStore::new(keys, 1);
    let id = store.real_ids[0].clone();
    println!("{} {id}", store.tmp.keep().display());
}

/// One read of the generated config of `keys` keys, for an instruction
/// count under callgrind (`--toggle-collect` on the function named):
/// `lines` (the line scan, `count_line_ends`), `typed` (`KeyIndex::parse`,
/// `typed_read`), `typed-all` (the same and every entry typed,
/// `typed_read_all`). Prints what it counted.
fn read_once(what: &str, keys: usize) {
    let base = Path::new("/etc/proxmox-backup");
    let text = crate::common::config_text(base, keys);
    let path = base.join("encryption-keys.cfg");
    let count = match what {
        "lines" => count_line_ends(&text),
        "typed" => typed_read(&path, text),
        "typed-all" => typed_read_all(&path, text),
        other => panic!("unknown read {other:?}"),
    };
    println!("{count}");
}

#[inline(never)]
fn count_line_ends(text: &str) -> usize {
    memchr::memchr_iter(b'\n', std::hint::black_box(text.as_bytes())).count()
}

#[inline(never)]
fn typed_read(path: &Path, text: String) -> usize {
    let index = pbs_config::KeyIndex::parse(path, std::hint::black_box(text)).unwrap();
    let len = index.len();
    // not counted: freeing it (a process exits without that)
    std::mem::forget(index);
    len
}

#[inline(never)]
fn typed_read_all(path: &Path, text: String) -> usize {
    let index = pbs_config::KeyIndex::parse(path, std::hint::black_box(text)).unwrap();
    let len = index.entries().unwrap().count();
    std::mem::forget(index);
    len
}

/// Runs `program` with `args`, stdout to /dev/null, and prints
/// `MAXRSS_KIB WALL_NANOS CPU_NANOS` of it (CPU: user plus system). This
/// process is small when it starts the command, so the command's
/// `ru_maxrss` is its own peak.
#[allow(clippy::zombie_processes)] // reaped by wait4, which std cannot do
fn measure(program: &str, args: &[String]) {
    let start = Instant::now();
    let child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the measured command");
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid, and wait4 only writes into it
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, whose pid std has not reaped
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert!(
        pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{program} failed"
    );
    let nanos = |t: libc::timeval| t.tv_sec as u128 * 1_000_000_000 + t.tv_usec as u128 * 1_000;
    println!(
        "{} {} {}",
        usage.ru_maxrss,
        wall.as_nanos(),
        nanos(usage.ru_utime) + nanos(usage.ru_stime)
    );
}
