//! Criterion benchmarks of the key store (`cargo bench --bench keystore`;
//! docs/performance.md has the commands, the results and what they mean).
//!
//! - `parse/lines/N`: the line-scan baseline of issue 20: one pass over the
//!   text of N keys that only counts line ends (memchr's vectorized count),
//!   what no parser of that text can beat;
//! - `parse/generic/N`, `parse/typed/N`, `write/N`: `encryption-keys.cfg`
//!   with N keys through `SectionConfig::parse` (upstream's API, what
//!   writers use), `KeyIndex::parse` (what list and load use) and
//!   `SectionConfig::write`; `parse/sections/N` and `write/sections/N`:
//!   the same through `KeySections` (what store, archive and delete use);
//! - `ops/store_key/N`, `ops/archive_key/N`, `ops/delete_key/N`: one
//!   operation with N keys already stored. Each iteration stores, archives
//!   and deletes one key, so N stays the same; only the named step is timed;
//! - `ops/store_key_cold/N`: a store through a new `ConfigDir`, as in a
//!   new process (`store_key` reuses the same process's last write while
//!   the file is unchanged, as in the daemon);
//! - `ops/store_key/N` records itself in the audit log (open it, the
//!   intent synced with its checkpoint, the store, the outcome), as every
//!   operation does; `ops/store_key_unaudited/N` is the same store through
//!   a config dir that records nothing (`ConfigDir::unaudited`, a
//!   test-and-bench-only feature): the ratio of the two is the cost of
//!   auditing (issue 16: within 1.2x);
//!   `ops/audit_append/N`: an intent and its outcome alone;
//! - `ops/load_warm/N`: `load_key_config` through a shared `ConfigDir`
//!   whose parse is cached, as inside the daemon;
//!   `ops/load_cold/N`: a new `ConfigDir` per load, as in a fresh
//!   process (its first read finds the entry in the config read in
//!   chunks: `KeyIndex::find_entry`);
//! - `floor/replace_small_file`: the durability floor on the same disk:
//!   write 300 bytes to a temp file, fsync, rename, fsync the directory;
//!   `floor/replace_config_file/10000`: the same for the 2.5 MiB of a
//!   10,000-key config (what a write of that config costs at least).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};

use pbs_config::audit::{AuditLog, Caller, Event, Op};
use pbs_config::encryption_keys::CONFIG;
use pbs_config::{ConfigDir, KeyIndex, KeySections};

mod common;

use common::{KeyStore, PARSE_SIZES, STORE_SIZES, checked_config_text, scratch_dir};
use pbs_test_kit::key_config;

// the benchmarks run with the allocator of the product binaries
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn parse_and_write(c: &mut Criterion) {
    let base = Path::new("/etc/proxmox-backup");
    let texts: Vec<(usize, String)> = PARSE_SIZES
        .iter()
        .map(|&n| (n, checked_config_text(base, n)))
        .collect();
    let path = base.join("encryption-keys.cfg");

    let mut group = c.benchmark_group("parse");
    group.sample_size(20).warm_up_time(Duration::from_secs(1));
    for (n, text) in &texts {
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new("lines", n), text, |b, text| {
            b.iter(|| memchr::memchr_iter(b'\n', black_box(text).as_bytes()).count())
        });
        group.bench_with_input(BenchmarkId::new("generic", n), text, |b, text| {
            b.iter(|| CONFIG.parse(&path, text).unwrap())
        });
        // handed its own copy, made untimed, as the config cache hands over
        // the text it read
        group.bench_with_input(BenchmarkId::new("typed", n), text, |b, text| {
            b.iter_batched(
                || text.clone(),
                |text| KeyIndex::parse(&path, text).unwrap(),
                BatchSize::LargeInput,
            )
        });
        // the same: a writer parses the text it read, which becomes its own
        group.bench_with_input(BenchmarkId::new("sections", n), text, |b, text| {
            b.iter_batched(
                || text.clone(),
                |text| KeySections::parse(&path, text).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("write");
    group.sample_size(20).warm_up_time(Duration::from_secs(1));
    for (n, text) in &texts {
        let data = CONFIG.parse(&path, text).unwrap();
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &data, |b, data| {
            b.iter(|| CONFIG.write(&path, data).unwrap())
        });
        let sections = KeySections::parse(&path, text.as_str()).unwrap();
        group.bench_with_input(BenchmarkId::new("sections", n), &sections, |b, sections| {
            b.iter(|| sections.render())
        });
    }
    group.finish();
}

/// Which step of the store → archive → delete cycle is timed.
#[derive(Clone, Copy, PartialEq)]
enum Step {
    Store,
    /// a store through a new `ConfigDir`, as in a new process: nothing of
    /// an earlier write is reused
    StoreCold,
    /// a store recorded in the audit log as an operation will record it
    StoreUnaudited,
    Archive,
    Delete,
}

/// Runs `iters` cycles of store, archive, delete of a new key, timing `step`.
fn cycle(store: &KeyStore, seed: &mut u64, iters: u64, step: Step) -> Duration {
    let keys = store.dir.encryption_keys();
    // the same store and caches, recording nothing
    let unaudited = store.dir.with_caller(Caller::cli()).unaudited();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        *seed += 1;
        let id = format!("cycle-{seed:08}");
        // a new key per cycle: a fingerprint may be stored only once
        let key = key_config(1_000_000 + *seed);
        let timed = |this: Step, total: &mut Duration, op: &mut dyn FnMut()| {
            if this == step {
                let start = Instant::now();
                op();
                *total += start.elapsed();
            } else {
                op();
            }
        };
        if step == Step::StoreCold {
            timed(Step::StoreCold, &mut total, &mut || {
                let dir = ConfigDir::new(store.path()).unwrap();
                dir.encryption_keys().store_key(&id, &key).unwrap();
            });
        } else if step == Step::StoreUnaudited {
            timed(Step::StoreUnaudited, &mut total, &mut || {
                unaudited.encryption_keys().store_key(&id, &key).unwrap();
            });
        } else {
            timed(Step::Store, &mut total, &mut || {
                keys.store_key(&id, &key).unwrap();
            });
        }
        timed(Step::Archive, &mut total, &mut || {
            keys.archive_key(&id, None).unwrap();
        });
        timed(Step::Delete, &mut total, &mut || {
            keys.remove_key(&id, None).unwrap();
        });
    }
    total
}

fn operations(c: &mut Criterion) {
    let mut group = c.benchmark_group("ops");
    // writes take milliseconds and do three fsyncs each: few, equal samples
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for n in STORE_SIZES {
        // n keys in all, the first real key is the one loaded
        let store = KeyStore::new(n, 1);
        let id = store.real_ids[0].clone();
        let mut seed = 0;
        for (name, step) in [
            ("store_key", Step::Store),
            ("store_key_cold", Step::StoreCold),
            ("store_key_unaudited", Step::StoreUnaudited),
            ("archive_key", Step::Archive),
            ("delete_key", Step::Delete),
        ] {
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter_custom(|iters| cycle(&store, &mut seed, iters, step))
            });
        }

        group.bench_function(BenchmarkId::new("audit_append", n), |b| {
            let event = Event::new(&Caller::cli(), Op::Export).id(id.as_str());
            b.iter(|| {
                let log = AuditLog::open_store(&store.dir).unwrap();
                let pending = log.intent(&event).unwrap();
                pending.done(Ok::<_, anyhow::Error>(())).unwrap();
            })
        });
        group.bench_function(BenchmarkId::new("load_warm", n), |b| {
            let keys = store.dir.encryption_keys();
            b.iter(|| keys.load_key_config(&id, true).unwrap())
        });
        group.bench_function(BenchmarkId::new("load_cold", n), |b| {
            b.iter(|| {
                let dir = ConfigDir::new(store.path()).unwrap();
                dir.encryption_keys().load_key_config(&id, true).unwrap()
            })
        });
    }
    group.finish();
}

fn durability_floor(c: &mut Criterion) {
    let tmp = scratch_dir("floor-");
    // a key file is about 300 bytes
    let data = key_config(0).to_json().unwrap().into_bytes();
    let config = common::config_text(tmp.path(), 10_000).into_bytes();
    let mut group = c.benchmark_group("floor");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.bench_function("replace_small_file", |b| {
        b.iter(|| common::replace_durably(tmp.path(), "floor", &data))
    });
    group.throughput(Throughput::Bytes(config.len() as u64));
    group.bench_function(BenchmarkId::new("replace_config_file", 10_000), |b| {
        b.iter(|| common::replace_durably(tmp.path(), "floor", &config))
    });
    group.finish();
}

criterion_group!(benches, durability_floor, parse_and_write, operations);
criterion_main!(benches);
