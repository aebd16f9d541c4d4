//! `proxmox-backup-manager audit ...`: the key store's audit log: verify
//! it (against checkpoints kept elsewhere), list its records, print the
//! current checkpoint to keep elsewhere.
//!
//! Every command calls the handlers of
//! `pbs_keystore::api2::config::encryption_key_audit`; `verify --repair`
//! (recording the outcomes of interrupted operations, signing a new
//! checkpoint) is the one thing here the API does not offer.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Error, format_err};
use clap::Subcommand;
use clap::builder::PossibleValuesParser;

use proxmox_schema::ParameterError;

use pbs_config::audit::{AuditReport, Filter, Op, UnrecordedKey, VerifyOptions};
use pbs_keystore::api2::config::encryption_key_audit::{
    self as api, CurrentCheckpoint, parse_operation,
};

use super::output::{Column, Output, OutputFormat, Table, render};
use super::{EXIT_FINDINGS, EXIT_OK, GlobalArgs, param_context};

/// `audit list`: about 110 columns for a one-key record.
const RECORD_TABLE: Table = Table::new(&[
    Column::new("seq"),
    Column::new("time").render(render::epoch),
    Column::new("op"),
    Column::new("phase").render(phase),
    Column::new("ids"),
    Column::new("actor").render(actor),
    Column::new("origin"),
]);

/// The phase, and for an outcome its result (`ok`, or the error).
fn phase(value: &serde_json::Value, record: &serde_json::Value) -> String {
    match record["result"].as_str() {
        Some(result) => format!("{}: {result}", render::plain(value)),
        None => render::plain(value),
    }
}

/// The actor, with the Unix user who ran the CLI.
fn actor(value: &serde_json::Value, record: &serde_json::Value) -> String {
    match record["unix-user"].as_str() {
        Some(user) => format!("{} ({user})", render::plain(value)),
        None => render::plain(value),
    }
}

/// The operation names `--operation` takes.
fn operation_names() -> PossibleValuesParser {
    PossibleValuesParser::new(Op::ALL.iter().map(|op| op.as_str()))
}

/// Audit log commands.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the audit log: its hash chain from the first record, its
    /// signed checkpoint, every checkpoint given, and that every operation
    /// has its outcome.
    ///
    /// Each problem is named with its line: a rewritten, removed, inserted
    /// or reordered line, a cut-off end, a checkpoint signed by another
    /// key, an interrupted operation (with what the store shows). Exit
    /// status: 0 clean, 1 problems found, 255 could not check.
    Verify {
        /// A checkpoint kept elsewhere (as 'audit checkpoint' printed it, or
        /// its syslog line): the log must still hold what it signed.
        #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        checkpoint: Vec<PathBuf>,
        /// A verifier key kept elsewhere (NAME+KEYID+KEY, as 'audit
        /// checkpoint' printed it): the store must still sign with it.
        #[arg(long, value_name = "VKEY")]
        trusted_key: Vec<String>,
        /// Record the outcome of each interrupted operation (saying what the
        /// store shows) and sign a new checkpoint; never on a log that
        /// shows tampering. After a crash, run it before 'encryption-key
        /// verify --repair'.
        #[arg(long)]
        repair: bool,
    },
    /// List the records of the audit log, oldest first.
    List {
        /// Only records naming this key id.
        #[arg(long, value_name = "KEY_ID")]
        key: Option<String>,
        /// Only records written at or after TIME (seconds since the epoch,
        /// 'YYYY-MM-DD', 'YYYY-MM-DD HH:MM[:SS]' in local time, or RFC 3339).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        since: Option<i64>,
        /// Only records written before TIME (as --since).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        until: Option<i64>,
        /// Only this operation (repeat for several).
        #[arg(long = "operation", value_name = "OP", value_parser = operation_names())]
        operations: Vec<String>,
        /// Only the newest N records that pass the other filters.
        #[arg(long, value_name = "N", value_parser = parse_limit)]
        limit: Option<usize>,
        /// Only records older than the record of seq SEQ (its line in the
        /// log): with --limit, the next older batch after one whose oldest
        /// record is SEQ. Unlike --until, it neither skips nor repeats
        /// records written in the same second.
        #[arg(long, value_name = "SEQ", value_parser = parse_seq)]
        before_seq: Option<u64>,
    },
    /// Sign a checkpoint of the whole audit log and print it, with the
    /// verifier key, to keep elsewhere ('audit verify --checkpoint FILE
    /// --trusted-key VKEY' checks the log against them later).
    Checkpoint,
}

/// Runs an audit log command.
pub fn run(global: &GlobalArgs, out: &Output, cmd: AuditCommand) -> Result<ExitCode, Error> {
    let dir = global.config_dir()?;
    match cmd {
        AuditCommand::Verify {
            checkpoint,
            trusted_key,
            repair,
        } => {
            let checkpoints = checkpoint
                .iter()
                .map(|path| {
                    std::fs::read_to_string(path).map_err(|err| {
                        format_err!(
                            "unable to verify the audit log - unable to read checkpoint {path:?} - {err}"
                        )
                    })
                })
                .collect::<Result<Vec<_>, Error>>()?;
            let options = VerifyOptions {
                checkpoints,
                trusted_keys: trusted_key,
                repair,
            };
            let report = api::verify_log(&dir, &options)
                .map_err(|err| format_err!("unable to verify the audit log - {err}"))?;
            out.message(&report, render_report)?;
            let code = match report.is_clean() {
                true => EXIT_OK,
                false => EXIT_FINDINGS,
            };
            return Ok(ExitCode::from(code));
        }
        AuditCommand::List {
            key,
            since,
            until,
            operations,
            limit,
            before_seq,
        } => {
            let ops = operations
                .iter()
                .map(|name| parse_operation(name))
                .collect::<Result<Vec<Op>, Error>>()?;
            let filter = Filter {
                key,
                since,
                until,
                before_seq,
                ops,
                ..Filter::default()
            };
            let what = "unable to list the audit log";
            let records = api::list_records(&dir, &filter, limit, &|_| true).map_err(|err| {
                match err.is::<ParameterError>() {
                    true => param_context(err, |_| what.to_string()),
                    false => format_err!("{what} - {err}"),
                }
            })?;
            out.list(&records, &RECORD_TABLE)?;
        }
        AuditCommand::Checkpoint => {
            let current = api::current_checkpoint(&dir).map_err(|err| {
                format_err!("unable to sign a checkpoint of the audit log - {err}")
            })?;
            out.message(&current, render_checkpoint)?;
            // the note alone on stdout (a file of it is what 'verify
            // --checkpoint' reads); the key and what to do on stderr
            if out.format() == OutputFormat::Text
                && let Some(key) = &current.verifier_key
            {
                eprintln!(
                    "verifier key: {key}\nKeep the checkpoint and the verifier key elsewhere (off \
                     this host); 'proxmox-backup-manager audit verify --checkpoint FILE \
                     --trusted-key VKEY' proves later that the log still holds what it signed."
                );
            }
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// `--since`/`--until`: epoch seconds, a date or date and time in local
/// time, or RFC 3339.
pub fn parse_time(text: &str) -> Result<i64, String> {
    use chrono::{Local, NaiveDate, NaiveDateTime, TimeZone};
    let text = text.trim();
    if let Ok(epoch) = text.parse::<i64>() {
        return Ok(epoch);
    }
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp());
    }
    let local = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|date| date.and_hms_opt(0, 0, 0))
    });
    match local.and_then(|time| Local.from_local_datetime(&time).earliest()) {
        Some(time) => Ok(time.timestamp()),
        None => Err(format!(
            "invalid time {text:?} - expected seconds since the epoch, YYYY-MM-DD, \
             'YYYY-MM-DD HH:MM[:SS]' (local time) or RFC 3339"
        )),
    }
}

fn render_report(report: &AuditReport) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: String| out.push_str(&format!("{name:<17} {value}\n"));
    field("log:", format!("{:?}", report.log));
    field("records:", report.records.to_string());
    if let Some(head) = &report.head {
        field("head:", head.clone());
    }
    if let Some(key) = &report.verifier_key {
        field("verifier key:", key.clone());
    }
    if report.kept_checkpoints > 0 {
        field("kept checkpoints:", report.kept_checkpoints.to_string());
    }
    let kind = |kind: &pbs_config::audit::ProblemKind| {
        serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    if !report.repaired.is_empty() {
        out.push_str(&format!("repaired ({}):\n", report.repaired.len()));
        for action in &report.repaired {
            out.push_str(&format!("  {action}\n"));
        }
    }
    if !report.notices.is_empty() {
        out.push_str(&format!(
            "notices ({}, left by a crash; 'audit verify --repair' clears them):\n",
            report.notices.len()
        ));
        for notice in &report.notices {
            out.push_str(&format!("  [{}] {}\n", kind(&notice.kind), notice.message));
        }
    }
    if !report.unrecorded.is_empty() {
        out.push_str(&unrecorded_text(&report.unrecorded));
    }
    if report.problems.is_empty() {
        out.push_str("result: clean\n");
        return out;
    }
    out.push_str(&format!("problems ({}):\n", report.problems.len()));
    for problem in &report.problems {
        let line = problem
            .line
            .map_or_else(String::new, |line| format!("line {line}: "));
        out.push_str(&format!(
            "  {line}[{}] {}\n",
            kind(&problem.kind),
            problem.message
        ));
    }
    out.push_str(&format!("result: {} problem(s)", report.problems.len()));
    if report.is_tampered() {
        out.push_str(" - the log was changed after it was written");
    } else if !report.unfinished.is_empty() {
        out.push_str(
            " - run 'proxmox-backup-manager audit verify --repair' to record what the store shows",
        );
    }
    out.push('\n');
    out
}

/// How many unrecorded keys the text names; the JSON output has all.
const UNRECORDED_NAMED: usize = 10;

fn unrecorded_text(keys: &[UnrecordedKey]) -> String {
    let mut out = format!(
        "keys no record names ({}; stored before this log began - by upstream PBS or a copied \
         config - or their records were removed; a checkpoint kept elsewhere tells which):\n",
        keys.len()
    );
    for key in keys.iter().take(UNRECORDED_NAMED) {
        out.push_str(&format!("  {} ({})\n", key.id, key.fingerprint));
    }
    if keys.len() > UNRECORDED_NAMED {
        out.push_str(&format!(
            "  and {} more ('--output-format json' lists all)\n",
            keys.len() - UNRECORDED_NAMED
        ));
    }
    out
}

fn render_checkpoint(current: &CurrentCheckpoint) -> String {
    match &current.checkpoint {
        Some(note) => note.clone(),
        None => "the audit log has no records yet - nothing to sign\n".to_string(),
    }
}

/// `--limit N`: a number of records, 1 or more.
fn parse_limit(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(limit) if limit > 0 => Ok(limit),
        _ => Err("expected a number of records, 1 or more".to_string()),
    }
}

/// `--before-seq SEQ`: a record's seq, 1 or more.
fn parse_seq(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(seq) if seq > 0 => Ok(seq),
        _ => Err("expected a record's seq (its line in the log), 1 or more".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_documented() {
        assert_eq!(parse_time("1795967939"), Ok(1795967939));
        assert_eq!(parse_time("2026-11-29T16:00:00Z"), Ok(1795968000));
        assert_eq!(parse_time("2026-11-29T17:00:00+01:00"), Ok(1795968000));
        assert!(parse_time("2026-11-29").is_ok());
        assert!(parse_time("2026-11-29 16:00").is_ok());
        assert!(parse_time("yesterday").unwrap_err().contains("YYYY-MM-DD"));
    }

    #[test]
    fn unrecorded_keys_are_named_up_to_ten() {
        let keys: Vec<UnrecordedKey> = (0..12)
            .map(|n| UnrecordedKey {
                id: format!("key-{n:02}"),
                fingerprint: format!("fp-{n:02}"),
            })
            .collect();
        let text = unrecorded_text(&keys[..2]);
        assert!(text.starts_with("keys no record names (2; "), "{text}");
        assert!(
            text.contains("  key-00 (fp-00)\n  key-01 (fp-01)\n"),
            "{text}"
        );
        let text = unrecorded_text(&keys);
        assert!(text.contains("  key-09 (fp-09)\n  and 2 more"), "{text}");
        assert!(!text.contains("key-10"), "{text}");
    }
}
