//! Whole-process benchmark figures and the issue 8 target ratios
//! (`cargo bench --bench report`, after `cargo bench --bench keystore`;
//! `make bench` runs both; docs/performance.md explains the figures).
//!
//! Measures what criterion cannot inside one process: `list` and `load`
//! throughput of 1 and 2 reader processes while a writer process stores
//! keys, a load and a store in a fresh process at 10,000 keys, the API daemon over
//! HTTPS (requests per second, median and p99 latency), and peak memory of
//! the daemon and of `encryption-key list` at 100,000 keys. Then it reads
//! criterion's medians of this run from `target/criterion` and prints each
//! target as a ratio of figures measured in the same run (the issue 8
//! targets, and issue 20's typed read against the line scan).
//!
//! `PBS_BENCH_QUICK=1` shortens every run (for a smoke test; the figures
//! are then noisy); `PBS_BENCH_ONLY=reader,readers,fresh,daemon,audit,memory,previous`
//! runs only the parts named; `previous` runs when `PBS_BENCH_PREVIOUS`
//! names a previous build's `proxmox-backup-manager` (`make bench-previous`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod audit;
#[path = "../common/mod.rs"]
mod common;
mod daemon;
mod flushes;
mod previous;
mod workers;

use common::KeyStore;
use daemon::Op;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ALLOCATOR: &str = if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "glibc malloc"
};

/// Figures collected for the targets, by name.
type Figures = BTreeMap<&'static str, f64>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Ok(role) = std::env::var("PBS_BENCH_WORKER") {
        workers::run(&role, &args);
        return;
    }
    // `cargo bench` passes --bench (and a filter, if given): nothing to do
    // unless this bench is selected
    if let Some(filter) = args.iter().find(|a| !a.starts_with('-'))
        && !"report".contains(filter.as_str())
    {
        return;
    }
    let quick = std::env::var_os("PBS_BENCH_QUICK").is_some();
    let seconds = |full: f64| Duration::from_secs_f64(if quick { full / 4.0 } else { full });

    println!("# pbs-keystore whole-process benchmarks");
    println!();
    println!("- allocator: {ALLOCATOR}");
    println!("- load average at start: {}", load_average());
    println!("- scratch dir: {:?}", common::scratch_root());
    if quick {
        println!("- QUICK run (PBS_BENCH_QUICK): short runs, noisy figures");
    }
    println!();

    let only = std::env::var("PBS_BENCH_ONLY").ok();
    let part = |name: &str| {
        only.as_deref()
            .is_none_or(|list| list.split(',').any(|p| p == name))
    };
    let mut figures = Figures::new();
    if part("reader") {
        reader_cpu(&mut figures, if quick { 10 } else { 60 });
    }
    if part("readers") {
        readers(&mut figures, seconds(3.0));
    }
    if part("fresh") {
        fresh_load(&mut figures, if quick { 5 } else { 21 });
    }
    if part("daemon") {
        daemon_load(&mut figures, seconds(5.0));
    }
    if part("audit") {
        audit::audit_cost(&mut figures, if quick { 5 } else { 31 });
    }
    if part("memory") {
        memory(&mut figures);
    }
    if part("previous") {
        previous::previous_list(&mut figures, if quick { 5 } else { 25 });
    }
    criterion_tables();
    targets(&figures);
    println!();
    println!("- load average at end: {}", load_average());
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// Starts this binary as the worker `role`.
fn worker(role: &str, args: &[&str]) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .env("PBS_BENCH_WORKER", role)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start worker")
}

fn worker_output(child: std::process::Child) -> String {
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "worker failed");
    String::from_utf8(output.stdout).unwrap()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms(nanos: f64) -> String {
    format!("{:.3} ms", nanos / 1e6)
}

/// The CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes into the timespec it is given
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Issue 20's reader target in CPU time: the typed read of 10,000 keys
/// (`KeyIndex::parse`: every id and value checked, what a load uses
/// before it types its one entry) against one pass that counts the line
/// ends of the same text, alternating, `runs` times each (each timed line
/// scan after an untimed one, so the text is in the cache as for the typed
/// read and as in criterion's loop); and the same read with every entry
/// typed afterwards (`entries()`, what a list uses). The read is handed
/// its own copy of the text, made untimed, as the config cache hands over
/// the text it read. Thread CPU time leaves out the time other processes
/// hold the core, which criterion's wall time of the same pair (in the
/// target table) includes: on the shared machine this ratio holds still
/// where the other moves by 2x.
fn reader_cpu(figures: &mut Figures, runs: usize) {
    const KEYS: usize = 10_000;
    let base = Path::new("/etc/proxmox-backup");
    let text = common::checked_config_text(base, KEYS);
    let path = base.join("encryption-keys.cfg");
    let (mut lines, mut typed, mut all) = (Vec::new(), Vec::new(), Vec::new());
    let count_lines = || memchr::memchr_iter(b'\n', std::hint::black_box(text.as_bytes())).count();
    for _ in 0..runs {
        // once untimed: the typed read before it evicts the text from the
        // cache, where criterion's back-to-back iterations find it
        std::hint::black_box(count_lines());
        let start = thread_cpu();
        let count = count_lines();
        lines.push((thread_cpu() - start).as_nanos() as f64);
        std::hint::black_box(count);
        let copy = text.clone();
        let start = thread_cpu();
        let index = pbs_config::KeyIndex::parse(&path, std::hint::black_box(copy)).unwrap();
        typed.push((thread_cpu() - start).as_nanos() as f64);
        assert_eq!(index.len(), KEYS);
        drop(index);
        let copy = text.clone();
        let start = thread_cpu();
        let index = pbs_config::KeyIndex::parse(&path, std::hint::black_box(copy)).unwrap();
        let count = index.entries().unwrap().count();
        all.push((thread_cpu() - start).as_nanos() as f64);
        assert_eq!(count, KEYS);
    }
    let best = |values: &[f64]| values.iter().copied().fold(f64::MAX, f64::min);
    let (lines_best, typed_best, all_best) = (best(&lines), best(&typed), best(&all));
    let (lines_median, typed_median, all_median) =
        (median(&mut lines), median(&mut typed), median(&mut all));
    println!(
        "## Typed read against the line scan ({KEYS} keys, thread CPU time, {runs} runs each)"
    );
    println!();
    println!("| what | best | median | / line scan (best) | / line scan (median) |");
    println!("|---|---|---|---|---|");
    println!(
        "| line scan (memchr count of line ends, {:.2} MiB) | {} | {} | 1x | 1x |",
        text.len() as f64 / (1024.0 * 1024.0),
        ms(lines_best),
        ms(lines_median)
    );
    for (what, best, median) in [
        (
            "typed read (`KeyIndex::parse`: load)",
            typed_best,
            typed_median,
        ),
        (
            "typed read, every entry typed (`entries()`: list)",
            all_best,
            all_median,
        ),
    ] {
        println!(
            "| {what} | {} | {} | {:.1}x | {:.1}x |",
            ms(best),
            ms(median),
            best / lines_best,
            median / lines_median
        );
    }
    println!();
    figures.insert("reader/lines/cpu", lines_median);
    figures.insert("reader/typed/cpu", typed_median);
    figures.insert("reader/typed-all/cpu", all_median);
}

/// `list` and `load` by 1 and 2 reader processes at 1,000 keys while a
/// writer process stores, archives and deletes a key every 50 ms. The two
/// counts alternate for `ROUNDS` rounds and the median of each is taken:
/// single runs on this VM vary by 15%.
fn readers(figures: &mut Figures, duration: Duration) {
    const KEYS: usize = 1_000;
    const ROUNDS: usize = 3;
    let store = KeyStore::new(KEYS, 16);
    let dir = store.path().to_str().unwrap().to_string();
    let ids: Vec<&str> = store.real_ids.iter().map(String::as_str).collect();
    // ops/s summed over the readers, and the writer's operations
    let run = |op: &str, readers: usize| -> (f64, u64) {
        let writer_secs = format!("{}", duration.as_secs_f64() + 1.0);
        let writer = worker("writer", &[&dir, &writer_secs, "0.05"]);
        std::thread::sleep(Duration::from_millis(300));
        let secs = format!("{}", duration.as_secs_f64());
        let mut args = vec![op, dir.as_str(), secs.as_str()];
        args.extend(&ids);
        let children: Vec<_> = (0..readers).map(|_| worker("reader", &args)).collect();
        let mut per_second = 0.0;
        for child in children {
            let out = worker_output(child);
            let mut parts = out.split_whitespace().map(|p| p.parse::<f64>().unwrap());
            let (ops, nanos) = (parts.next().unwrap(), parts.next().unwrap());
            per_second += ops / (nanos / 1e9);
        }
        let writer_ops = worker_output(writer).trim().parse().unwrap();
        (per_second, writer_ops)
    };
    println!(
        "## Readers ({KEYS} keys; a writer process changes the config every 50 ms; \
         {} s per run, median of {ROUNDS} alternating rounds)",
        duration.as_secs_f64()
    );
    println!();
    println!(
        "| operation | reader processes | ops/s (sum, median) | each round | writer ops per run | 2 vs 1 |"
    );
    println!("|---|---|---|---|---|---|");
    for op in ["list", "load"] {
        let mut rounds: [Vec<f64>; 2] = Default::default();
        let mut writer_ops = Vec::new();
        for _ in 0..ROUNDS {
            for readers in [1, 2] {
                let (per_second, ops) = run(op, readers);
                rounds[readers - 1].push(per_second);
                writer_ops.push(ops);
            }
        }
        let writer_ops = format!(
            "{}-{}",
            writer_ops.iter().min().unwrap(),
            writer_ops.iter().max().unwrap()
        );
        let mut medians = [0.0; 2];
        for readers in [1, 2] {
            let each: Vec<String> = rounds[readers - 1]
                .iter()
                .map(|v| format!("{v:.0}"))
                .collect();
            medians[readers - 1] = median(&mut rounds[readers - 1]);
            let ratio = if readers == 2 {
                format!("{:.2}x", medians[1] / medians[0])
            } else {
                String::new()
            };
            println!(
                "| {op} | {readers} | {:.0} | {} | {writer_ops} | {ratio} |",
                medians[readers - 1],
                each.join(", ")
            );
        }
        let (one, two) = match op {
            "list" => ("readers/list/1", "readers/list/2"),
            _ => ("readers/load/1", "readers/load/2"),
        };
        figures.insert(one, medians[0]);
        figures.insert(two, medians[1]);
    }
    println!();
}

/// A load and a store in a new process at 10,000 keys: `ConfigDir::new`
/// plus `load_key_config` or `store_key` of a new key, timed inside the
/// process (so without exec and dynamic linking), three times in each
/// process (see the workers), with the minor page faults of each; median
/// of `runs`.
fn fresh_load(figures: &mut Figures, runs: usize) {
    const KEYS: usize = 10_000;
    let store = KeyStore::new(KEYS, 1);
    let dir = store.path().to_str().unwrap();
    let id = store.real_ids[0].as_str();
    let [first, second, third] = fresh_table(
        &format!("## Load in a fresh process ({KEYS} keys, median of {runs})"),
        [
            "`ConfigDir::new` + `load_key_config`",
            "reads the config in chunks",
        ],
        runs,
        || worker("fresh-load", &[dir, id]),
    );
    figures.insert("fresh_load/10000", first);
    figures.insert("fresh_load_second/10000", second);
    figures.insert("fresh_load_third/10000", third);

    // its own store: each run adds three keys
    let store = KeyStore::new(KEYS, 1);
    let dir = store.path().to_str().unwrap();
    let [first, ..] = fresh_table(
        &format!(
            "## Store in a fresh process ({KEYS} keys and more, 3 new ones a run; median of {runs})"
        ),
        [
            "`ConfigDir::new` + `store_key` of a new key",
            "reads and parses",
        ],
        runs,
        || worker("fresh-store", &[dir]),
    );
    figures.insert("fresh_store/10000", first);

    // what of that a process cannot avoid: the same reads, syncs and
    // replaces alone, in the same config dir
    let [first, ..] = fresh_table(
        &format!(
            "## A store's disk and memory work alone in a fresh process (`fresh-floor`: the same \
             config read, log sync and replaces, no lock, parse or signature; median of {runs})"
        ),
        [
            "read + append + log sync + key file and config replaced",
            "reads the config",
        ],
        runs,
        || worker("fresh-floor", &[dir]),
    );
    figures.insert("fresh_floor/10000", first);

    // the same in upstream's layout (see `KeyStore::in_upstream_layout`):
    // two more flushes a store
    let Some(store) = KeyStore::new(KEYS, 1).in_upstream_layout() else {
        return;
    };
    let dir = store.path().to_str().unwrap();
    let [first, ..] = fresh_table(
        &format!(
            "## Store in a fresh process, upstream's layout (the config dir the backup user's; \
             {KEYS} keys and more; median of {runs})"
        ),
        [
            "`ConfigDir::new` + `store_key` of a new key",
            "reads and parses",
        ],
        runs,
        || worker("fresh-store", &[dir]),
    );
    figures.insert("fresh_store_upstream_layout/10000", first);
}

/// Runs a fresh-process worker `runs` times and prints the table of its
/// three operations' medians and page faults under `heading`; `what` names
/// the operation and what its second run does again. Returns the medians.
fn fresh_table(
    heading: &str,
    [op, again]: [&str; 2],
    runs: usize,
    start_worker: impl Fn() -> std::process::Child,
) -> [f64; 3] {
    // nanos of the three operations, then their page faults
    let mut columns: [Vec<f64>; 6] = Default::default();
    let mut whole = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let out = worker_output(start_worker());
        whole.push(start.elapsed().as_nanos() as f64);
        let parts: Vec<f64> = out.split_whitespace().map(|p| p.parse().unwrap()).collect();
        assert_eq!(parts.len(), columns.len(), "the worker printed {out:?}");
        for (column, part) in columns.iter_mut().zip(parts) {
            column.push(part);
        }
    }
    let [first, second, third, faults @ ..] = columns.map(|mut c| median(&mut c));
    let whole = median(&mut whole);
    println!("{heading}");
    println!();
    println!("| what | median | minor page faults |");
    println!("|---|---|---|");
    for (what, nanos, faults) in [
        (format!("{op}, the first in the process"), first, faults[0]),
        (
            format!("the same again in that process ({again} again; the heap gets new pages)"),
            second,
            faults[1],
        ),
        (
            "a third time (the heap the second freed is reused, as in criterion)".to_string(),
            third,
            faults[2],
        ),
    ] {
        println!("| {what} | {} | {faults:.0} |", ms(nanos));
    }
    println!("| the whole process (spawn to exit) | {} | |", ms(whole));
    println!();
    [first, second, third]
}

/// The daemon at 1,000 keys: list (all 1,000) and create, 1 and 16
/// keep-alive connections.
fn daemon_load(figures: &mut Figures, duration: Duration) {
    const KEYS: usize = 1_000;
    let store = KeyStore::new(KEYS, 1);
    let auth = daemon::setup_token(store.path());
    let daemon = daemon::start(store.path());
    println!(
        "## API daemon over HTTPS (keep-alive; {KEYS} keys at the start; {} s per run)",
        duration.as_secs_f64()
    );
    println!();
    println!("| request | connections | requests/s | median | p99 | errors | response bytes |");
    println!("|---|---|---|---|---|---|---|");
    let mut run = 0;
    for (name, op) in [("list", Op::List), ("create", Op::Create { run: 0 })] {
        for connections in [1, 16] {
            run += 1;
            let op = match op {
                Op::Create { .. } => Op::Create { run },
                op => op,
            };
            let result = daemon::load(daemon.port, &auth, op, connections, duration);
            println!(
                "| {name} | {connections} | {:.0} | {} | {} | {} | {} |",
                result.per_second(),
                ms(result.median.as_nanos() as f64),
                ms(result.p99.as_nanos() as f64),
                result.errors,
                result.body_bytes
            );
            let (p99, median): (&'static str, &'static str) = match (name, connections) {
                ("list", 1) => ("daemon/list/1/p99", "daemon/list/1/median"),
                ("list", _) => ("daemon/list/16/p99", "daemon/list/16/median"),
                (_, 1) => ("daemon/create/1/p99", "daemon/create/1/median"),
                _ => ("daemon/create/16/p99", "daemon/create/16/median"),
            };
            figures.insert(p99, result.p99.as_nanos() as f64);
            figures.insert(median, result.median.as_nanos() as f64);
        }
    }
    let (hwm, rss) = daemon::memory_kib(&daemon);
    println!();
    println!(
        "Daemon memory after these runs: VmHWM {:.1} MiB, VmRSS {:.1} MiB.",
        hwm as f64 / 1024.0,
        rss as f64 / 1024.0
    );
    if let (Some(p99), Some(alone)) = (
        figures.get("daemon/create/16/p99"),
        figures.get("daemon/create/1/median"),
    ) {
        let limit = fair_writers_limit(*alone);
        println!();
        println!(
            "Fair writers (issue 20): create p99 with 16 connections {} against 2 x 16 x the \
             median of 1 connection alone ({} x 32 = {}): ratio {:.2} ({}).",
            ms(*p99),
            ms(*alone),
            ms(limit),
            p99 / limit,
            if *p99 <= limit { "met" } else { "not met" }
        );
    }
    println!();
}

/// Issue 20, target 1: with 16 connections creating keys, the p99 latency
/// is at most twice what 16 writers served strictly one after the other
/// would wait, 16 x the median latency of one connection alone.
fn fair_writers_limit(median_alone: f64) -> f64 {
    2.0 * 16.0 * median_alone
}

/// Peak memory at 100,000 keys: the daemon after start, after listing all
/// keys, after creating one (a writer parses the generic form); and
/// `proxmox-backup-manager encryption-key list --include-archived`.
fn memory(figures: &mut Figures) {
    const KEYS: usize = 100_000;
    let store = KeyStore::new(KEYS, 1);
    let auth = daemon::setup_token(store.path());
    let cfg_size = std::fs::metadata(store.path().join("encryption-keys.cfg"))
        .unwrap()
        .len();
    println!(
        "## Peak memory at {KEYS} keys (encryption-keys.cfg {:.1} MiB)",
        cfg_size as f64 / (1024.0 * 1024.0)
    );
    println!();
    println!("| process | after | VmHWM (peak) | VmRSS |");
    println!("|---|---|---|---|");
    let daemon = daemon::start(store.path());
    let row = |what: &str, (hwm, rss): (u64, u64)| {
        println!(
            "| daemon | {what} | {:.1} MiB | {:.1} MiB |",
            hwm as f64 / 1024.0,
            rss as f64 / 1024.0
        );
    };
    row("start", daemon::memory_kib(&daemon));
    let mut bytes = 0;
    for _ in 0..3 {
        bytes = daemon::once(daemon.port, &auth, Op::List, 0);
    }
    let after_list = daemon::memory_kib(&daemon);
    row(
        &format!("3 lists of all keys ({bytes} bytes each)"),
        after_list,
    );
    daemon::once(daemon.port, &auth, Op::Create { run: 99 }, 0);
    let after_create = daemon::memory_kib(&daemon);
    row("1 create", after_create);
    figures.insert("memory/daemon/list", after_list.0 as f64 * 1024.0);
    figures.insert("memory/daemon/create", after_create.0 as f64 * 1024.0);
    drop(daemon);

    let list = run_measured(&previous::list(
        &pbs_test_kit::bins::manager(),
        store.path(),
    ));
    println!(
        "| `encryption-key list --include-archived --output-format json` | exit ({:.0} ms) | {:.1} MiB | |",
        list.wall.as_secs_f64() * 1e3,
        list.maxrss_kib as f64 / 1024.0
    );
    figures.insert("memory/cli/list", list.maxrss_kib as f64 * 1024.0);
    println!();
}

/// What [`run_measured`] measured of one process.
#[derive(Clone, Copy, Debug)]
struct Measured {
    /// Peak resident set (`ru_maxrss`), KiB.
    maxrss_kib: u64,
    /// From spawn to exit.
    wall: Duration,
    /// User plus system CPU time.
    cpu: Duration,
}

/// Runs `command` (program and arguments only) with stdout to /dev/null and
/// measures it, through the `measure` worker: a process's `ru_maxrss`
/// starts at the peak of the process that `exec`ed it, so started from this
/// process, whose heap holds the generated stores and outputs, a small
/// command would report this process's peak as its own.
fn run_measured(command: &Command) -> Measured {
    assert!(
        command.get_envs().next().is_none() && command.get_current_dir().is_none(),
        "the measure worker passes on program and arguments only"
    );
    let mut args = vec![command.get_program()];
    args.extend(command.get_args());
    let args: Vec<&str> = args
        .iter()
        .map(|arg| arg.to_str().expect("a UTF-8 argument"))
        .collect();
    let output = worker_output(worker("measure", &args));
    let figures: Vec<u64> = output
        .split_whitespace()
        .map(|figure| figure.parse().expect("a figure of the measure worker"))
        .collect();
    let [maxrss_kib, wall, cpu] = figures[..] else {
        panic!("the measure worker printed {output:?}")
    };
    Measured {
        maxrss_kib,
        wall: Duration::from_nanos(wall),
        cpu: Duration::from_nanos(cpu),
    }
}

/// criterion's median (ns) of benchmark `id` in this run, if it ran.
fn criterion_median(id: &str) -> Option<f64> {
    let root = match std::env::var_os("CRITERION_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap()
            .join("criterion"),
    };
    let text = std::fs::read_to_string(root.join(id).join("new/estimates.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// criterion's medians of this run as two tables.
fn criterion_tables() {
    let cell = |id: String| criterion_median(&id).map_or_else(|| "-".into(), ms);
    println!("## Criterion medians (cargo bench --bench keystore, this run)");
    println!();
    println!(
        "| keys | cfg size | line scan (count line ends) | generic parse | generic write | typed parse (readers) | typed / line scan | KeySections parse (writers) | KeySections write (writers) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for n in common::PARSE_SIZES {
        let size = common::config_text(Path::new("/etc/proxmox-backup"), n).len();
        let ratio = criterion_median(&format!("parse/typed/{n}"))
            .zip(criterion_median(&format!("parse/lines/{n}")))
            .map_or_else(
                || "-".into(),
                |(typed, lines)| format!("{:.0}x", typed / lines),
            );
        println!(
            "| {n} | {:.2} MiB | {} | {} | {} | {} | {ratio} | {} | {} |",
            size as f64 / (1024.0 * 1024.0),
            cell(format!("parse/lines/{n}")),
            cell(format!("parse/generic/{n}")),
            cell(format!("write/{n}")),
            cell(format!("parse/typed/{n}")),
            cell(format!("parse/sections/{n}")),
            cell(format!("write/sections/{n}"))
        );
    }
    println!();
    println!(
        "| keys stored | store_key | store_key, unaudited | store_key, new ConfigDir | archive_key | delete_key | load, warm | load, new ConfigDir |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for n in common::STORE_SIZES {
        println!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} |",
            cell(format!("ops/store_key/{n}")),
            cell(format!("ops/store_key_unaudited/{n}")),
            cell(format!("ops/store_key_cold/{n}")),
            cell(format!("ops/archive_key/{n}")),
            cell(format!("ops/delete_key/{n}")),
            cell(format!("ops/load_warm/{n}")),
            cell(format!("ops/load_cold/{n}"))
        );
    }
    println!();
    println!(
        "Durability floor: {} (300 bytes), {} (2.5 MiB, a 10,000-key config).",
        cell("floor/replace_small_file".into()),
        cell("floor/replace_config_file/10000".into())
    );
    println!();
}

/// The issue 8 (and 16: auditing) targets as ratios (figure / limit: below 1 is met; for the
/// reader scaling, above 1 is met).
fn targets(figures: &Figures) {
    let c = |id: &str| criterion_median(id);
    println!("## Targets (ratios of figures from this run)");
    println!();
    let Some(floor) = c("floor/replace_small_file") else {
        println!("criterion results missing: run `cargo bench --bench keystore` first");
        return;
    };
    println!("| target | figure | limit | ratio | met |");
    println!("|---|---|---|---|---|");
    let typed = c("parse/typed/10000");
    let generic = c("parse/generic/10000");
    parse_targets(figures, typed, generic);
    let (parse, write) = store_key_targets(figures, floor);
    audit_targets(figures);
    load_and_daemon_targets(figures, typed);
    println!();
    against_upstream(floor, typed, generic, parse, write);
}

/// The readers' and the generic parse and write targets (issues 8 and 20).
fn parse_targets(figures: &Figures, typed: Option<f64>, generic: Option<f64>) {
    let c = |id: &str| criterion_median(id);
    let f = |name: &str| figures.get(name).copied();
    let write = c("write/10000");
    row(
        "typed parse, 10,000 keys <= 10 ms",
        typed,
        Some(10e6),
        true,
        "ms",
    );
    // issue 20, target 2: the reader near memory speed
    let lines = c("parse/lines/10000");
    row(
        "typed parse, 10,000 keys <= 10 x line scan (one pass counting line ends)",
        typed,
        lines.map(|l| 10.0 * l),
        true,
        "ms",
    );
    row(
        "the same in thread CPU time (medians)",
        f("reader/typed/cpu"),
        f("reader/lines/cpu").map(|l| 10.0 * l),
        true,
        "ms",
    );
    row(
        "the same with every entry typed (a list), thread CPU time",
        f("reader/typed-all/cpu"),
        f("reader/lines/cpu").map(|l| 10.0 * l),
        true,
        "ms",
    );
    row(
        "generic parse (upstream's API, no hot path uses it), 10,000 keys <= 10 ms",
        generic,
        Some(10e6),
        true,
        "ms",
    );
    row(
        "generic write, 10,000 keys <= 10 ms",
        write,
        Some(10e6),
        true,
        "ms",
    );
}

/// The writers' targets: parse + write, store_key (in criterion's loop and
/// the first in a fresh process, in both layouts) against the durability
/// floor. Returns the writers' parse and write figures.
fn store_key_targets(figures: &Figures, floor: f64) -> (Option<f64>, Option<f64>) {
    let c = |id: &str| criterion_median(id);
    let f = |name: &str| figures.get(name).copied();
    // store_key parses and writes the config as KeySections
    let parse = c("parse/sections/10000");
    let write = c("write/sections/10000");
    row(
        "writers' parse + write (KeySections), 10,000 keys <= 10 ms + 10 ms",
        parse.zip(write).map(|(p, w)| p + w),
        Some(20e6),
        true,
        "ms",
    );
    let bound = parse.zip(write).map(|(p, w)| 3.0 * floor + p + w);
    row(
        "store_key at 10,000 <= 3 floor + parse + write",
        c("ops/store_key/10000"),
        bound,
        true,
        "ms",
    );
    row(
        "store_key, new ConfigDir (a new process) at 10,000 <= 3 floor + parse + write",
        c("ops/store_key_cold/10000"),
        bound,
        true,
        "ms",
    );
    let config_floor = c("floor/replace_config_file/10000");
    let bound = parse
        .zip(write)
        .zip(config_floor)
        .map(|((p, w), cf)| 2.0 * floor + cf + p + w);
    row(
        "store_key at 10,000 <= 2 floor + config-size floor + parse + write",
        c("ops/store_key/10000"),
        bound,
        true,
        "ms",
    );
    row(
        "store_key, new ConfigDir at 10,000 <= 2 floor + config-size floor + parse + write",
        c("ops/store_key_cold/10000"),
        bound,
        true,
        "ms",
    );
    row(
        "store in a fresh process (the first in it) at 10,000 <= 2 floor + config-size floor + parse + write",
        f("fresh_store/10000"),
        bound,
        true,
        "ms",
    );
    row(
        "the same against its disk and memory work alone in a fresh process + parse + write \
         (not an issue target: what a fresh process cannot avoid, then our code)",
        f("fresh_store/10000"),
        f("fresh_floor/10000")
            .zip(parse.zip(write))
            .map(|(floor, (p, w))| floor + p + w),
        true,
        "ms",
    );
    row(
        "the same in upstream's layout (the config dir the backup user's: root's record of its writes too)",
        f("fresh_store_upstream_layout/10000"),
        bound,
        true,
        "ms",
    );
    (parse, write)
}

/// Issue 16: a store that records itself in the audit log against the
/// same store recording nothing, within 1.2x: paired in one process (the
/// audit part), and criterion's medians of separate runs.
fn audit_targets(figures: &Figures) {
    let c = |id: &str| criterion_median(id);
    let f = |name: &str| figures.get(name).copied();
    for n in common::STORE_SIZES {
        row(
            &format!(
                "store_key (audited) at {n} <= 1.2 x unaudited, paired (median of round ratios)"
            ),
            f(audit::ratio_name(n)),
            Some(1.2),
            true,
            "x",
        );
        row(
            &format!("the same, criterion medians of separate runs, at {n}"),
            c(&format!("ops/store_key/{n}")),
            c(&format!("ops/store_key_unaudited/{n}")).map(|t| 1.2 * t),
            true,
            "ms",
        );
    }
    row(
        "store_key (audited) at 10 <= 1.2 x unaudited, paired, in upstream's layout (the config dir the backup user's)",
        f(audit::UPSTREAM_LAYOUT_RATIO_10),
        Some(1.2),
        true,
        "x",
    );
}

/// The load targets, reader scaling, fair writers and the daemon's memory.
fn load_and_daemon_targets(figures: &Figures, typed: Option<f64>) {
    let c = |id: &str| criterion_median(id);
    let f = |name: &str| figures.get(name).copied();
    let warm10 = c("ops/load_warm/10");
    row(
        "load (warm, as in the daemon) at 10,000 <= 1.5 x at 10",
        c("ops/load_warm/10000"),
        warm10.map(|t| 1.5 * t),
        true,
        "ms",
    );
    row(
        "load in a fresh process at 10,000 <= typed parse + 1 ms",
        f("fresh_load/10000"),
        typed.map(|t| t + 1e6),
        true,
        "ms",
    );
    row(
        "load, new ConfigDir (criterion) at 10,000 <= typed parse + 1 ms",
        c("ops/load_cold/10000"),
        typed.map(|t| t + 1e6),
        true,
        "ms",
    );
    for op in ["list", "load"] {
        let (one, two) = match op {
            "list" => (f("readers/list/1"), f("readers/list/2")),
            _ => (f("readers/load/1"), f("readers/load/2")),
        };
        row(
            &format!("{op}: 2 readers >= 1.7 x 1 reader (throughput)"),
            two.zip(one).map(|(two, one)| two / one),
            Some(1.7),
            false,
            "",
        );
    }
    row(
        "create, 16 connections: p99 <= 2 x 16 x median of 1 connection (issue 20)",
        f("daemon/create/16/p99"),
        f("daemon/create/1/median").map(fair_writers_limit),
        true,
        "ms",
    );
    row(
        "whole-process list at 100,000 keys, CPU <= 0.4 x the previous build's (issue 20)",
        f("previous/list/cpu"),
        Some(0.4),
        true,
        "",
    );
    let limit = Some(200.0 * 1024.0 * 1024.0);
    row(
        "daemon peak RSS at 100,000 keys (lists) < 200 MiB",
        f("memory/daemon/list"),
        limit,
        true,
        "MiB",
    );
    row(
        "daemon peak RSS at 100,000 keys (lists + a create) < 200 MiB",
        f("memory/daemon/create"),
        limit,
        true,
        "MiB",
    );
}

/// One row of the targets table: `figure` against `limit` (met below it,
/// or above it if not `below`), both shown in `unit`.
fn row(name: &str, figure: Option<f64>, limit: Option<f64>, below: bool, unit: &str) {
    let (Some(figure), Some(limit)) = (figure, limit) else {
        println!("| {name} | missing | | | |");
        return;
    };
    let ratio = figure / limit;
    let met = if below { ratio <= 1.0 } else { ratio >= 1.0 };
    let show = |v: f64| match unit {
        "ms" => ms(v),
        "MiB" => format!("{:.1} MiB", v / (1024.0 * 1024.0)),
        _ => format!("{v:.2}"),
    };
    println!(
        "| {name} | {} | {} | {ratio:.2} | {} |",
        show(figure),
        show(limit),
        if met { "yes" } else { "no" }
    );
}

/// This run's parse and write figures against upstream's (of the issue),
/// and the durability floor.
fn against_upstream(
    floor: f64,
    typed: Option<f64>,
    generic: Option<f64>,
    parse: Option<f64>,
    write: Option<f64>,
) {
    let c = |id: &str| criterion_median(id);
    let generic_write = c("write/10000");
    if let (Some(typed), Some(generic), Some(generic_write), Some(parse), Some(write)) =
        (typed, generic, generic_write, parse, write)
    {
        println!(
            "Against upstream's 23 ms parse and 21 ms write of the same file on this class of machine \
             (figures of the issue, not of this run): readers' typed parse {:.2}x as fast, \
             writers' KeySections parse {:.2}x, generic parse {:.2}x, generic write {:.2}x; \
             writers' KeySections write (a copy of each section's text) {:.2} ms.",
            23e6 / typed,
            23e6 / parse,
            23e6 / generic,
            21e6 / generic_write,
            write / 1e6
        );
    }
    println!(
        "Durability floor (300 bytes, fsync, rename, dir fsync): {}; the same for the 2.5 MiB \
         of a 10,000-key config: {}.",
        ms(floor),
        c("floor/replace_config_file/10000").map_or_else(|| "-".into(), ms)
    );
}
