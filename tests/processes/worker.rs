//! Worker processes: what a test spawns this binary to do.
//!
//! - `random-ops DIR INDEX SEED COUNT LOG`: COUNT random store, load,
//!   archive, unarchive and delete operations on the store in DIR. Ids
//!   `wINDEX-N` belong to this worker alone, so it knows the outcome each
//!   must have and checks it on the spot; ids `shared-N` are raced by all
//!   workers. Every operation is logged to LOG as one JSON line.
//! - `op DIR store|delete|delete-purge|archive|restore|purge|repair ID SEED`:
//!   one operation (the crash tests set `$PBS_FAILPOINT` so it dies on the
//!   way); `repair` is `verify --repair`.
//! - `hold-lock DIR [LOCKFILE]`: takes the config lock (or LOCKFILE,
//!   relative to DIR), prints `locked`, and holds it until its stdin is
//!   closed.
//! - `store-as-user DIR ID SEED`: stores a key with the ownership policy of
//!   whatever user runs it, and prints the policy;
//! - `audit-*`: the audit log's workers ([`crate::audit::run_worker_kind`]);
//! - `hostile DIR ROOT_ONLY SEED`: the hostile `backup` user of
//!   `hostile.rs`, swapping names in DIR for links into ROOT_ONLY until its
//!   stdin is closed.
//! - `batch-store DIR COUNT`: COUNT threads storing keys at once, the
//!   batch of `group_commit.rs` ([`crate::group_commit::batch_store`]).
//! - `ordered-batch DIR ID...`: threads storing keys that form a batch in
//!   the order of the IDs, of `swapped.rs` ([`crate::swapped::ordered_batch`]).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Error, bail};
use serde_json::json;

use pbs_api_types::Fingerprint;
use pbs_config::encryption_keys::EncryptionKeys;
use pbs_config::{ConfigDir, KeystoreError};

use pbs_test_kit::key_config;
use pbs_test_kit::rng::Rng;

/// Entry point for `__worker KIND ARGS...`.
pub fn run(args: &[String]) -> ExitCode {
    if let Some(kind) = args.first()
        && let Some(code) = crate::audit::run_worker_kind(kind, &args[1..])
    {
        return code;
    }
    let result = match args.first().map(String::as_str) {
        Some("random-ops") => random_ops(&args[1..]),
        Some("op") => one_op(&args[1..]),
        Some("hold-lock") => hold_lock(&args[1..]),
        Some("store-as-user") => store_as_user(&args[1..]),
        Some("hostile") => crate::hostile::attacker(&args[1..]),
        Some("batch-store") => crate::group_commit::batch_store(&args[1..]),
        Some("ordered-batch") => crate::swapped::ordered_batch(&args[1..]),
        other => Err(anyhow::format_err!("unknown worker kind {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("worker failed: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// What this worker knows about one of its own keys.
#[derive(Clone, Copy)]
struct Own {
    fingerprint: Fingerprint,
    archived: bool,
}

fn keystore_error(err: &Error) -> Option<&KeystoreError> {
    err.chain().find_map(|e| e.downcast_ref::<KeystoreError>())
}

/// Refusals that are expected when racing on shared ids.
fn is_expected_refusal(err: &Error) -> bool {
    let text = err.to_string();
    matches!(
        keystore_error(err),
        Some(
            KeystoreError::NotFound { .. }
                | KeystoreError::AlreadyExists { .. }
                | KeystoreError::NotArchived { .. }
                | KeystoreError::Archived { .. }
        )
    ) || text.contains("is already archived")
        || text.contains("is not archived")
}

/// Runs `op` on `id`, a stored key made from `seed` and the next random
/// number: its result and the fingerprint it stored or loaded.
fn run_op(
    keys: &EncryptionKeys,
    rng: &mut Rng,
    seed: u64,
    op: &str,
    id: &str,
    fail_on_archived: bool,
) -> (Result<(), Error>, Option<Fingerprint>) {
    let mut fingerprint = None;
    let result = match op {
        "store" => {
            let key = key_config(seed | rng.next_u64() << 40);
            let fp = key.fingerprint.expect("new keys carry a fingerprint");
            fingerprint = Some(fp);
            keys.store_key(id, &key).map(|_| ())
        }
        "load" => keys.load_key(id, fail_on_archived).map(|(entry, _)| {
            fingerprint = entry.info.fingerprint;
        }),
        "archive" => keys.archive_key(id, None).map(|_| ()),
        "unarchive" => keys.unarchive_key(id, None).map(|_| ()),
        _ => keys.remove_key(id, None),
    };
    (result, fingerprint)
}

/// Whether `op` must succeed on one of this worker's own keys, which its
/// model says is `model`.
fn expected_ok(op: &str, model: Option<Own>, fail_on_archived: bool) -> bool {
    match (op, model) {
        ("store", model) => model.is_none(),
        (_, None) => false,
        ("load", Some(m)) => !(m.archived && fail_on_archived),
        ("archive", Some(m)) => !m.archived,
        ("unarchive", Some(m)) => m.archived,
        (_, Some(m)) => m.archived, // delete
    }
}

/// The model of this worker's own keys after `op` on `id` succeeded.
fn apply_to_model(
    own: &mut HashMap<String, Own>,
    op: &str,
    id: &str,
    fingerprint: Option<Fingerprint>,
) {
    match op {
        "store" => {
            own.insert(
                id.to_string(),
                Own {
                    fingerprint: fingerprint.unwrap(),
                    archived: false,
                },
            );
        }
        "archive" => own.get_mut(id).unwrap().archived = true,
        "unarchive" => own.get_mut(id).unwrap().archived = false,
        "delete" => {
            own.remove(id);
        }
        _ => {}
    }
}

/// The final state of this worker's own keys, by id: fingerprint and
/// whether archived.
fn final_state(own: &HashMap<String, Own>) -> serde_json::Map<String, serde_json::Value> {
    own.iter()
        .map(|(id, m)| {
            (
                id.clone(),
                json!({"fingerprint": m.fingerprint.signature(), "archived": m.archived}),
            )
        })
        .collect()
}

fn random_ops(args: &[String]) -> Result<(), Error> {
    let [dir, index, seed, count, log] = args else {
        bail!("usage: random-ops DIR INDEX SEED COUNT LOG");
    };
    let index: u64 = index.parse()?;
    let count: usize = count.parse()?;
    let mut rng = Rng(seed.parse::<u64>()? | 1);
    let dir = ConfigDir::new(dir)?;
    let keys = dir.encryption_keys();
    let mut log = std::io::BufWriter::new(std::fs::File::create(log)?);
    let mut own: HashMap<String, Own> = HashMap::new();
    let mut violations = Vec::new();

    for step in 0..count {
        let shared = rng.below(10) < 3;
        let id = if shared {
            format!("shared-{}", rng.below(6))
        } else {
            format!("w{index}-{}", rng.below(8))
        };
        let op = match rng.below(100) {
            0..40 => "store",
            40..60 => "load",
            60..75 => "archive",
            75..85 => "unarchive",
            _ => "delete",
        };
        let model = own.get(&id).copied();

        let fail_on_archived = rng.below(2) == 0;
        let seed = index << 32 | step as u64;
        let (result, fingerprint) = run_op(&keys, &mut rng, seed, op, &id, fail_on_archived);

        // what must have happened to one of this worker's own keys
        if !shared {
            let expected_ok = expected_ok(op, model, fail_on_archived);
            match &result {
                Ok(()) if !expected_ok => {
                    violations.push(format!("step {step}: {op} {id} succeeded, must fail"))
                }
                Ok(()) if op == "load" && fingerprint != model.map(|m| m.fingerprint) => {
                    violations.push(format!("step {step}: load of {id} gave another key"))
                }
                Err(err) if expected_ok => {
                    violations.push(format!("step {step}: {op} {id} failed: {err}"))
                }
                Err(err) if !is_expected_refusal(err) => {
                    violations.push(format!("step {step}: {op} {id} refused oddly: {err}"))
                }
                _ => {}
            }
            if result.is_ok() {
                apply_to_model(&mut own, op, &id, fingerprint);
            }
        } else if let Err(err) = &result
            && !is_expected_refusal(err)
        {
            violations.push(format!("step {step}: {op} {id} (shared) failed: {err}"));
        }

        let line = json!({
            "worker": index,
            "step": step,
            "op": op,
            "id": id,
            "shared": shared,
            "ok": result.is_ok(),
            "fingerprint": fingerprint.map(|fp| fp.signature()),
            "error": result.as_ref().err().map(|e| e.to_string()),
        });
        writeln!(log, "{line}")?;
    }

    // the final state of this worker's own keys, for the parent to compare
    let final_state = final_state(&own);
    writeln!(log, "{}", json!({"worker": index, "final": final_state}))?;
    log.flush()?;
    if !violations.is_empty() {
        bail!(
            "{} violations:\n{}",
            violations.len(),
            violations.join("\n")
        );
    }
    Ok(())
}

fn one_op(args: &[String]) -> Result<(), Error> {
    let [dir, op, id, seed] = args else {
        bail!(
            "usage: op DIR store|delete|delete-purge|archive|restore|purge|repair|restore-archived ID SEED"
        );
    };
    let dir = ConfigDir::new(dir)?;
    let keys = dir.encryption_keys();
    match op.as_str() {
        "store" => keys.store_key(id, &key_config(seed.parse()?)).map(|_| ()),
        "delete" => keys.remove_key(id, None),
        "delete-purge" => {
            // the crash points are what is tested, not the copy check
            let options = pbs_config::encryption_keys::DeleteOptions {
                purge: true,
                without_verified_copy: true,
                ..Default::default()
            };
            keys.delete_key_with(id, &options).map(|_| ())
        }
        "archive" => keys.archive_key(id, None).map(|_| ()),
        "restore" => keys.trash().restore(id, None).map(|_| ()),
        // (told to destroy without a verified copy, as delete-purge)
        "purge" => keys.trash().purge(Some(id), None, true).map(|_| ()),
        "repair" => dir.verify(true).map(|_| ()),
        "restore-archived" => {
            // a key restored from an export bundle, archived there
            let key = key_config(seed.parse()?);
            let mut entry = pbs_config::export::entry_of_key_file(id, &key)?;
            entry.archived_at = Some(1_700_000_000);
            let key_file = key.to_json()?;
            let restore = pbs_config::export::RestoreKey {
                entry,
                key_config: &key,
                key_file: key_file.as_bytes(),
            };
            keys.restore_keys(&[restore], None).map(|_| ())
        }
        other => bail!("unknown op {other}"),
    }
}

fn hold_lock(args: &[String]) -> Result<(), Error> {
    let (dir, lock) = match args {
        [dir] => (dir, None),
        [dir, lock] => (dir, Some(lock)),
        _ => bail!("usage: hold-lock DIR [LOCKFILE]"),
    };
    let dir = ConfigDir::new(dir)?;
    let _config_lock;
    let _other_lock;
    match lock {
        // any lock file by name: a plain flock is what the store takes too
        Some(lock) => {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(dir.path(lock))?;
            file.lock()?;
            _other_lock = file;
        }
        None => _config_lock = dir.encryption_keys().lock_config()?,
    }
    println!("locked");
    std::io::stdout().flush()?;
    // hold the lock until the parent closes our stdin
    for line in std::io::stdin().lock().lines() {
        line?;
    }
    Ok(())
}

fn store_as_user(args: &[String]) -> Result<(), Error> {
    let [dir, id, seed] = args else {
        bail!("usage: store-as-user DIR ID SEED");
    };
    let dir = ConfigDir::new(Path::new(dir))?;
    dir.encryption_keys()
        .store_key(id, &key_config(seed.parse()?))?;
    dir.encryption_keys().load_key_config(id, true)?;
    println!("{}", dir.ownership());
    Ok(())
}
