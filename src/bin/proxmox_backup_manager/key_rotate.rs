//! `proxmox-backup-manager encryption-key rotate`: key rotation of sync
//! jobs, one resumable command (and its `--status` and `--abort`).
//!
//! Calls the handlers of `pbs_keystore::api2::config::encryption_key_rotate`
//! as the administrator; this module reads the passphrase and PEM files the
//! administrator names and prints. The export goes to `--export-file`, a
//! new file (mode 0600) that appears only once the bundle proved itself,
//! and stderr tells of it what `export --output-file` tells of its file
//! (a temp file an interrupted write left beside it, the way it was made,
//! whom else it is open to: [`super::key_export::note_new_file`]); the key
//! itself is never printed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Error, format_err};
use clap::Args;

use pbs_config::ConfigDir;
use pbs_config::rotation::{Aborted, Journal, Rotated, Step};
use pbs_keystore::api2::config::encryption_key_export::{Recipients, master_pubkey};
use pbs_keystore::api2::config::encryption_key_rotate::{
    self as api, ExportTo, RotateAnswer, RotateExport, RotateParams,
};
use pbs_keystore::api2::config::sync::Caller;

use super::encryption_key::render_fields;
use super::key_export::{self, read_pem};
use super::output::{Output, render};
use super::passphrase;
use super::{EXIT_OK, param_context};

/// `rotate`.
#[derive(Args)]
pub struct RotateArgs {
    /// The sync job to rotate (repeat for several push jobs that encrypt
    /// with the same key: they switch together, in one write).
    #[arg(long = "job", value_name = "JOB_ID", required = true)]
    jobs: Vec<String>,
    /// Id of the new key [default: the journal's when resuming, else
    /// JOB-YYYY-MM-DD of the first job].
    #[arg(long, value_name = "ID", conflicts_with_all = ["status", "abort"])]
    new_id: Option<String>,
    /// Export the new key into this new file (mode 0600, never over an
    /// existing one), proven by the restore drill before any job switches.
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath, conflicts_with_all = ["status", "abort"])]
    export_file: Option<PathBuf>,
    /// Encrypt the export to the passphrase on the first line of FILE
    /// (without this and --master-pubkey, it is asked twice on a terminal).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath, requires = "export_file")]
    passphrase_file: Option<PathBuf>,
    /// Encrypt the export to this RSA public key (PEM, master-public.pem);
    /// may be repeated.
    #[arg(long, value_name = "PEM", value_hint = clap::ValueHint::FilePath, requires = "export_file")]
    master_pubkey: Vec<PathBuf>,
    /// Archive the old key at the end, unless another job still encrypts
    /// with it (it stays associated with the rotated jobs either way).
    #[arg(long, conflicts_with_all = ["status", "abort"])]
    archive_old: bool,
    /// Show the rotation in progress (its journal) instead.
    #[arg(long, conflicts_with = "abort")]
    status: bool,
    /// Abort the rotation in progress; possible until its jobs switched.
    /// The new key goes into the trash.
    #[arg(long)]
    abort: bool,
}

/// `encryption-key rotate`.
pub fn rotate(out: &Output, dir: &ConfigDir, args: RotateArgs) -> Result<ExitCode, Error> {
    let caller = Caller::administrator(dir);
    let context = |verb: &'static str| {
        move |param: &str| match param {
            "new-id" => format!("failed to {verb} - invalid --new-id"),
            "job" => format!("failed to {verb} - invalid --job"),
            _ => format!("failed to {verb}"),
        }
    };
    if args.status {
        let mut found = Vec::new();
        for job in &args.jobs {
            let journals = api::rotation_status(dir, &caller, Some(job))
                .map_err(|err| param_context(err, context("show the rotation")))?;
            for journal in journals {
                if !found.contains(&journal) {
                    found.push(journal);
                }
            }
        }
        out.message(&found, |found| render_status(&args.jobs, found))?;
        return Ok(ExitCode::from(EXIT_OK));
    }
    if args.abort {
        let mut aborted = Vec::new();
        for job in &args.jobs {
            // the jobs of one rotation: the first abort takes it all
            if aborted.iter().any(|a: &Aborted| a.journal.names_job(job)) {
                continue;
            }
            let done = api::abort_rotation(dir, &caller, job)
                .map_err(|err| param_context(err, context("abort the rotation")))
                .map_err(|err| layer("failed to abort the rotation", err))?;
            aborted.push(done);
        }
        out.message(&aborted, |aborted| {
            aborted.iter().map(render_aborted).collect::<String>()
        })?;
        return Ok(ExitCode::from(EXIT_OK));
    }

    let verb = "failed to rotate";
    let export = match &args.export_file {
        None => None,
        Some(path) => Some(RotateExport {
            to: ExportTo::file(path).map_err(|err| format_err!("{verb} - {err}"))?,
            recipients: recipients(&args).map_err(|err| format_err!("{verb} - {err}"))?,
        }),
    };
    if let Some(path) = &args.export_file {
        key_export::note_interrupted_writes(path);
    }
    let params = RotateParams {
        jobs: args.jobs.clone(),
        new_id: args.new_id.clone(),
        archive_old: args.archive_old,
    };
    let answer = api::rotate_keys(dir, &caller, &params, export.as_ref())
        .map_err(|err| param_context(err, context("rotate")))
        .map_err(|err| layer(verb, err))?;
    note_export_file(&answer);
    out.message(&answer, render_rotated)?;
    Ok(ExitCode::from(EXIT_OK))
}

/// Tells on stderr what `export --output-file` tells of its file, of the
/// rotation's export file: how it was made, if this run made it, and whom
/// else it is open to (also if an earlier run made it).
fn note_export_file(answer: &RotateAnswer) {
    let Rotated::Done { journal, .. } = &answer.rotated else {
        return;
    };
    let Some(file) = journal
        .export
        .as_ref()
        .and_then(|export| export.file.as_deref())
    else {
        return;
    };
    let path = Path::new(file);
    match answer.export_file_way {
        Some(way) => key_export::note_new_file(path, "the bundle", way),
        None => key_export::warn_exposed(path, "the bundle"),
    }
}

/// The recipients of `--export-file`: the passphrase (from its file, else
/// asked twice on a terminal unless a master key is given) and the master
/// public keys.
fn recipients(args: &RotateArgs) -> Result<Recipients, Error> {
    let master_pubkeys = args
        .master_pubkey
        .iter()
        .map(|pem_path| {
            let pem = read_pem(pem_path, "--master-pubkey")?;
            master_pubkey(&pem)
                .map_err(|err| format_err!("invalid --master-pubkey {pem_path:?} - {err}"))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let passphrase = match (&args.passphrase_file, master_pubkeys.is_empty()) {
        (Some(file), _) => Some(passphrase::new_from_file(file, "--passphrase-file")?),
        (None, true) if passphrase::can_ask() => Some(passphrase::ask_new(
            "Passphrase for the export of the new key: ",
        )?),
        (None, true) => {
            return Err(format_err!(
                "--export-file needs a recipient - give --passphrase-file FILE and/or \
                 --master-pubkey PEM (or run on a terminal to be asked for a passphrase)"
            ));
        }
        (None, false) => None,
    };
    Ok(Recipients {
        passphrase: passphrase.map(|p| p.to_vec()),
        master_pubkeys,
    })
}

/// `verb - err`, unless `err` starts with a "failed to" of its own.
fn layer(verb: &str, err: Error) -> Error {
    let text = err.to_string();
    if text.starts_with("failed to ") {
        return err;
    }
    format_err!("{verb} - {text}")
}

fn fingerprint(journal_fp: Option<&pbs_api_types::Fingerprint>) -> String {
    journal_fp.map_or_else(|| "not made yet".to_string(), |fp| fp.signature())
}

fn jobs_text(jobs: &[String]) -> String {
    jobs.iter()
        .map(|job| format!("'{job}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_rotated(answer: &RotateAnswer) -> String {
    let (journal, resumed_from) = match &answer.rotated {
        Rotated::AlreadyDone { jobs, new_key } => {
            return format!(
                "sync job(s) {} encrypt with '{new_key}' already - no rotation in progress, \
                 nothing done\n",
                jobs_text(jobs)
            );
        }
        Rotated::Done {
            journal,
            resumed_from,
        } => (journal, resumed_from),
    };
    let mut text = String::new();
    if let Some(step) = resumed_from {
        text.push_str(&format!(
            "resumed the rotation where an earlier run stopped (after step '{}')\n",
            step.as_str()
        ));
    }
    text.push_str(&format!(
        "rotated sync job(s) {} from key '{}' to the new key '{}' (fingerprint {})\n",
        jobs_text(&journal.jobs),
        journal.old_key,
        journal.new_key,
        fingerprint(journal.new_fingerprint.as_ref())
    ));
    let old = match (&journal.old_key_kept, journal.archive_old) {
        (Some(why), _) => format!("associated with the jobs, still active - {why}"),
        (None, true) => "associated with the jobs, archived".to_string(),
        (None, false) => "associated with the jobs, still active (archive it with \
                          --archive-old, or 'encryption-key archive')"
            .to_string(),
    };
    text.push_str(&format!("old key '{}': {old}\n", journal.old_key));
    if let Some(export) = &journal.export
        && let Some(proof) = &export.proof
    {
        text.push_str(&format!(
            "export of '{}': {} - {proof}\n",
            journal.new_key,
            export.file.as_deref().unwrap_or("the answer")
        ));
    }
    text
}

fn render_status(jobs: &[String], found: &[Journal]) -> String {
    if found.is_empty() {
        return format!(
            "no rotation of sync job(s) {} in progress\n",
            jobs_text(jobs)
        );
    }
    found
        .iter()
        .map(render_journal)
        .collect::<Vec<_>>()
        .join("\n")
}

/// What comes after `step`, in words.
fn next_step(journal: &Journal) -> &'static str {
    if journal.aborting.is_some() {
        return "finish the abort (--abort)";
    }
    match journal.step {
        Step::Planned => "store the new key",
        Step::KeyStored if journal.export.is_some() => "export the new key and prove it",
        Step::KeyStored | Step::ExportProven => "switch the jobs",
        Step::JobsSwitched if journal.archive_old => "archive the old key",
        Step::JobsSwitched | Step::OldKeyArchived => "remove the journal",
    }
}

fn render_journal(journal: &Journal) -> String {
    let mut fields = vec![
        ("sync jobs", jobs_text(&journal.jobs)),
        (
            "old key",
            format!(
                "'{}' ({})",
                journal.old_key,
                journal.old_fingerprint.signature()
            ),
        ),
        (
            "new key",
            format!(
                "'{}' ({})",
                journal.new_key,
                fingerprint(journal.new_fingerprint.as_ref())
            ),
        ),
    ];
    if let Some(export) = &journal.export {
        fields.push((
            "export",
            format!(
                "{} for {}{}",
                export.file.as_deref().unwrap_or("the API answer"),
                export.recipients.join(", "),
                match &export.proof {
                    Some(_) => " (proven)",
                    None => "",
                }
            ),
        ));
    }
    fields.push((
        "archive old key",
        match journal.archive_old {
            true => "yes".to_string(),
            false => "no".to_string(),
        },
    ));
    fields.push(("last step done", journal.step.as_str().to_string()));
    fields.push(("next", next_step(journal).to_string()));
    fields.push((
        "started",
        format!(
            "{} by {}",
            render::epoch_text(journal.started),
            journal.actor
        ),
    ));
    if let Some(when) = journal.aborting {
        fields.push(("abort begun", render::epoch_text(when)));
    } else {
        fields.push(("resume", journal.command()));
    }
    if journal.step < Step::JobsSwitched {
        fields.push((
            "abort",
            format!(
                "proxmox-backup-manager encryption-key rotate --job {} --abort",
                journal.jobs[0]
            ),
        ));
    }
    render_fields(&fields)
}

fn render_aborted(aborted: &Aborted) -> String {
    let journal = &aborted.journal;
    let mut text = format!(
        "aborted the rotation of sync job(s) {} - they still encrypt with '{}'\n",
        jobs_text(&journal.jobs),
        journal.old_key
    );
    match &aborted.trashed {
        Some(entry) => text.push_str(&format!(
            "the new key '{}' is in the trash as '{entry}' (reason rotate-abort)\n",
            journal.new_key
        )),
        None => text.push_str(&format!(
            "the new key '{}' was not made yet\n",
            journal.new_key
        )),
    }
    if let Some(file) = journal.export.as_ref().and_then(|e| e.file.as_deref()) {
        text.push_str(&format!(
            "the export {file:?} holds the aborted key, if it was written - delete it\n"
        ));
    }
    text
}
