//! The whole-process list against a previous build, side by side in one run
//! (issue 20, target 3): `encryption-key list --include-archived
//! --output-format json` at 100,000 keys, by this build's
//! `proxmox-backup-manager` and by the one `PBS_BENCH_PREVIOUS` names
//! (`make bench-previous` builds it from `PREVIOUS_REV`), alternating, the
//! order swapped every pair. Reports CPU time (user + sys), wall time and
//! peak RSS of each, and the median of the per-pair CPU ratios.
//!
//! Before timing, both outputs are compared byte for byte: a faster list
//! that prints something else is not a result.

use std::path::Path;
use std::process::Command;

use crate::common::KeyStore;
use crate::{Figures, median, run_measured};

const KEYS: usize = 100_000;

/// The list command of `manager` against the store at `dir`.
pub fn list(manager: &Path, dir: &Path) -> Command {
    let mut command = Command::new(manager);
    command
        .args(["encryption-key", "list", "--include-archived"])
        .args(["--output-format", "json", "--config-dir"])
        .arg(dir);
    command
}

/// What `command` prints on stdout; panics naming `who` if it fails.
fn output_of(mut command: Command, who: &str) -> Vec<u8> {
    let output = command.output().expect("start the list command");
    assert!(
        output.status.success(),
        "{who}'s list failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Measures `pairs` pairs; the ratio goes into `figures` as
/// `previous/list/cpu`.
pub fn previous_list(figures: &mut Figures, pairs: usize) {
    println!("## Whole-process list against a previous build ({KEYS} keys)");
    println!();
    let Some(previous) = std::env::var_os("PBS_BENCH_PREVIOUS") else {
        println!(
            "skipped: PBS_BENCH_PREVIOUS names no previous build (`make bench-previous` builds one)"
        );
        println!();
        return;
    };
    let previous = Path::new(&previous);
    let current = pbs_test_kit::bins::manager();
    let store = KeyStore::new(KEYS, 1);
    let same = output_of(list(previous, store.path()), "the previous build")
        == output_of(list(&current, store.path()), "this build");
    assert!(
        same,
        "this build's list prints other bytes than the previous build's"
    );

    let (mut ratios, mut cpu, mut wall, mut rss) =
        (vec![], [vec![], vec![]], [vec![], vec![]], [0, 0]);
    for pair in 0..pairs {
        let mut measured = [None, None];
        let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let manager = if which == 0 {
                previous
            } else {
                current.as_path()
            };
            measured[which] = Some(run_measured(&list(manager, store.path())));
        }
        let [Some(old), Some(new)] = measured else {
            unreachable!("both ran")
        };
        ratios.push(new.cpu.as_secs_f64() / old.cpu.as_secs_f64());
        for (which, run) in [(0, old), (1, new)] {
            cpu[which].push(run.cpu.as_secs_f64());
            wall[which].push(run.wall.as_secs_f64());
            rss[which] = rss[which].max(run.maxrss_kib);
        }
    }
    let ratio = median(&mut ratios);
    println!("previous build: {previous:?}; outputs identical: yes; {pairs} pairs");
    println!();
    println!("| {KEYS} keys | previous | this build | ratio |");
    println!("|---|---|---|---|");
    let [cpu_old, cpu_new] = cpu.map(|mut runs| median(&mut runs));
    let [wall_old, wall_new] = wall.map(|mut runs| median(&mut runs));
    println!(
        "| CPU time (user + sys), median | {cpu_old:.3} s | {cpu_new:.3} s | {ratio:.2} (median of pairs) |"
    );
    println!(
        "| wall time, median | {wall_old:.3} s | {wall_new:.3} s | {:.2} |",
        wall_new / wall_old
    );
    println!(
        "| peak RSS, largest | {:.1} MiB | {:.1} MiB | {:.2} |",
        rss[0] as f64 / 1024.0,
        rss[1] as f64 / 1024.0,
        rss[1] as f64 / rss[0] as f64
    );
    println!();
    figures.insert("previous/list/cpu", ratio);
}
