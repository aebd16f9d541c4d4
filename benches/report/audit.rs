//! The audit log's cost (issue 16), paired: audited and unaudited stores
//! of a new key alternate in one process on one store, so both see the
//! same disk, the same config and the same background; the figure is the
//! median of the per-round ratios (criterion's `ops/store_key` and
//! `ops/store_key_unaudited` are measured minutes apart instead).
//!
//! A third store in each round is unaudited but first appends a line of a
//! record's size to a file in the config dir and `fdatasync`s it: the I/O
//! that any record made durable before the change costs on this disk, so
//! the row against it shows what the audit adds beyond that one sync.
//!
//! Beside the times, each kind's cache flushes to the disk, counted by the
//! kernel ([`FlushCounter`]): where flushes are most of a store's time,
//! their ratio is the floor of the times' ratio.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::time::Instant;

use pbs_config::audit::Caller;
use pbs_test_kit::key_config;

use crate::common::{self, KeyStore};
use crate::flushes::FlushCounter;
use crate::{Figures, median};

/// One store of each kind per round, in rotating order.
const KINDS: [&str; 3] = ["audited", "unaudited", "unaudited + synced append"];

/// Runs `rounds` rounds at each store size and prints the table.
pub fn audit_cost(figures: &mut Figures, rounds: usize) {
    println!(
        "## The audit log's cost, paired (store_key of a new key; {rounds} rounds, kinds alternating)"
    );
    println!();
    println!(
        "| keys stored | audited | unaudited | unaudited + one synced append | audited / unaudited | audited / (unaudited + append) | device flushes a store (audited / unaudited / + append, medians) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in common::STORE_SIZES {
        let (ratio, over_floor) = table_row(&n.to_string(), &KeyStore::new(n, 1), rounds);
        figures.insert(ratio_name(n), ratio);
        figures.insert(floor_ratio_name(n), over_floor);
    }
    // 10 keys again in upstream's layout, where root's writers also record
    // each write (two more flushes in every kind of store)
    if let Some(store) = KeyStore::new(10, 1).in_upstream_layout() {
        let (ratio, _) = table_row("10, upstream's layout", &store, rounds);
        figures.insert(UPSTREAM_LAYOUT_RATIO_10, ratio);
    }
    println!();
}

/// The figure name of the paired ratio at 10 keys in upstream's layout.
pub const UPSTREAM_LAYOUT_RATIO_10: &str = "audit/ratio/10/upstream-layout";

/// Runs the rounds on `store` and prints their row, headed `keys`.
/// Returns audited / unaudited and audited / (unaudited + append).
fn table_row(keys: &str, store: &KeyStore, rounds: usize) -> (f64, f64) {
    let Rounds { times, flushes } = rounds_on(store, rounds);
    let [audited, unaudited, floor] = &times;
    let ratio = pair_median(audited, unaudited);
    let over_floor = pair_median(audited, floor);
    let flushes = match flushes {
        Some(counts) => counts
            .map(|mut counts| median(&mut counts).to_string())
            .join(" / "),
        None => "not counted (no block device)".to_string(),
    };
    println!(
        "| {keys} | {} | {} | {} | {ratio:.2} | {over_floor:.2} | {flushes} |",
        crate::ms(median(&mut audited.clone())),
        crate::ms(median(&mut unaudited.clone())),
        crate::ms(median(&mut floor.clone())),
    );
    (ratio, over_floor)
}

/// The figure name of the paired audited / unaudited ratio at `n` keys.
pub fn ratio_name(n: usize) -> &'static str {
    match n {
        10 => "audit/ratio/10",
        1000 => "audit/ratio/1000",
        10000 => "audit/ratio/10000",
        _ => unreachable!("no figure name for {n} keys"),
    }
}

/// The figure name of audited / (unaudited + one synced append) at `n`.
pub fn floor_ratio_name(n: usize) -> &'static str {
    match n {
        10 => "audit/over-append/10",
        1000 => "audit/over-append/1000",
        10000 => "audit/over-append/10000",
        _ => unreachable!("no figure name for {n} keys"),
    }
}

/// Each kind's stores, one per round (in the order of [`KINDS`]).
struct Rounds {
    /// Nanos of each store.
    times: [Vec<f64>; 3],
    /// The disk's flushes during each store, if its device counts them.
    flushes: Option<[Vec<f64>; 3]>,
}

/// Runs the rounds on `store`.
fn rounds_on(store: &KeyStore, rounds: usize) -> Rounds {
    let audited = store.dir.encryption_keys();
    let plain_dir = store.dir.with_caller(Caller::cli()).unaudited();
    let plain = plain_dir.encryption_keys();
    let mut append = OpenOptions::new()
        .create(true)
        .append(true)
        .open(store.path().join("bench-append"))
        .expect("append file");
    // a record line is about 400 bytes
    let line = [b'r'; 400];
    let counter = FlushCounter::for_path(store.path());
    let flushes_now = || counter.as_ref().and_then(FlushCounter::read);
    let mut times: [Vec<f64>; 3] = Default::default();
    let mut flushes: [Vec<f64>; 3] = Default::default();
    let mut seed = 0u64;
    // two warm-up rounds, not counted: the first writes make the audit
    // log, its key and the caches
    for round in 0..rounds + 2 {
        for step in 0..KINDS.len() {
            let kind = (round + step) % KINDS.len();
            seed += 1;
            let id = format!("audit-{seed:08}");
            let key = key_config(4_000_000 + seed);
            let flushes_before = flushes_now();
            let start = Instant::now();
            match kind {
                0 => audited.store_key(&id, &key).expect("audited store"),
                1 => plain.store_key(&id, &key).expect("unaudited store"),
                _ => {
                    synced_append(&mut append, &line);
                    plain.store_key(&id, &key).expect("unaudited store")
                }
            };
            let nanos = start.elapsed().as_nanos() as f64;
            let flushed = flushes_before
                .zip(flushes_now())
                .map(|(a, b)| (b - a) as f64);
            if round >= 2 {
                times[kind].push(nanos);
                flushes[kind].extend(flushed);
            }
            // the same archive and delete after each, so every store
            // starts from the same config and the same disk state
            audited.archive_key(&id, None).expect("archive");
            audited.remove_key(&id, None).expect("delete");
        }
    }
    let counted = flushes.iter().all(|counts| counts.len() == rounds);
    Rounds {
        times,
        flushes: counted.then_some(flushes),
    }
}

fn synced_append(file: &mut File, line: &[u8]) {
    file.write_all(line).expect("append");
    file.sync_data().expect("fdatasync");
}

/// The median of the ratios of the pairs of one round.
fn pair_median(a: &[f64], b: &[f64]) -> f64 {
    let mut ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    median(&mut ratios)
}
