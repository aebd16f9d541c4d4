//! `proxmox-backup-manager encryption-key export | export-verify | restore
//! | paperkey`: keys that survive the host.
//!
//! Every command calls the handlers of
//! `pbs_keystore::api2::config::encryption_key_export` (the same functions
//! the API routes call). This module reads the files the administrator
//! names, gets passphrases ([`super::passphrase`]: a file or the terminal),
//! writes the bundle or paperkey file (mode 0600, never over an existing
//! file) and prints. Key material goes only where the command is for: the
//! bundle file (encrypted) and the paperkey.
//!
//! It also says, once for every command that writes a new file holding
//! key material (these, `create --output-file`, `rotate --export-file`),
//! what stderr tells of that file: a temp file an interrupted write left
//! beside it ([`note_interrupted_writes`]), the way the file was made
//! ([`note_new_file`]), a mode or a directory that lets others at it
//! ([`warn_exposed`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Error, bail, format_err};
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::Value;

use pbs_config::ConfigDir;
use pbs_config::export::{BundleKeyCheck, RestoreOutcome, RestoredKey, StoreState};
use pbs_key_config::NewFileWay;
use pbs_key_config::bundle::{
    BundleKeyInfo, BundleRecipient, read_bundle_file, read_bundle_header, rsa_private_key_from_pem,
    write_bundle_file,
};
use pbs_key_config::paperkey::{PaperkeyFormat, parse_key_file_or_paperkey};
use pbs_keystore::api2::config::encryption_key_export::{
    self as api, BundleReport, OwnedSecret, Recipients,
};

use super::file_way::{Changeable, changeable_on_the_way};
use super::output::{Column, Output, OutputFormat, Table, render};
use super::passphrase::{self, Passphrase};
use super::{EXIT_OK, param_context, quoted};

/// Largest PEM file read (a 16384-bit RSA key is about 13 KiB).
const MAX_PEM_FILE: u64 = 64 * 1024;

/// The keys of a new bundle.
const EXPORTED_TABLE: Table = Table::new(&[
    Column::new("id"),
    Column::new("fingerprint").render(render::short_fingerprint),
    Column::new("created").render(render::epoch),
    Column::new("archived-at").render(render::epoch),
]);

/// The restore drill: each key of the bundle and how the store has it.
const CHECK_TABLE: Table = Table::new(&[
    Column::new("id"),
    Column::new("fingerprint").render(render::short_fingerprint),
    Column::new("archived-at").render(render::epoch),
    Column::new("bundle").render(|_, _| "intact".to_string()),
    Column::new("store").render(store_state),
]);

/// A restore: the ids and full fingerprints restored (about 140 columns:
/// the fingerprint alone takes 95).
const RESTORED_TABLE: Table = Table::new(&[
    Column::new("id"),
    Column::new("fingerprint"),
    Column::new("archived-at").render(active_or_archived),
    Column::new("outcome").render(outcome),
]);

/// An archive time as the state it gives: `archived` or `active`.
fn active_or_archived(value: &Value, _record: &Value) -> String {
    match value.is_null() {
        true => "active".to_string(),
        false => "archived".to_string(),
    }
}

/// How the store has a key of the bundle, in words.
fn store_state(value: &Value, record: &Value) -> String {
    let text = match value.as_str() {
        Some("present-equal") => "present, equal".to_string(),
        Some("present-different") => match record["store-fingerprint"].as_str() {
            Some(other) => format!(
                "present, DIFFERENT key ({})",
                render::short_fingerprint(&Value::from(other), record)
            ),
            None => "present, DIFFERENT key".to_string(),
        },
        Some("absent") => "absent".to_string(),
        _ => render::plain(value),
    };
    let text = match record["store-problem"].is_string() {
        true => format!("{text}, but its key does NOT load (restore puts a missing key file back)"),
        false => text,
    };
    let text = match record["stored-as"].as_str() {
        Some(other) => format!("{text}; this key is stored as '{other}'"),
        None => text,
    };
    match record["copy-unproven"].as_str() {
        Some(why) => format!("{text}; NO verified copy recorded: {why}"),
        None => text,
    }
}

fn outcome(value: &Value, _record: &Value) -> String {
    match value.as_str() {
        Some("already-present") => "already present".to_string(),
        Some("key-file-restored") => "key file restored".to_string(),
        other => other.unwrap_or_default().to_string(),
    }
}

/// `export`: the keys, the file, the recipients.
#[derive(Args)]
pub struct ExportArgs {
    /// Keys to export, active or archived.
    #[arg(value_name = "ID")]
    ids: Vec<String>,
    /// Export every active key (and with --include-archived every archived one).
    #[arg(long)]
    all: bool,
    /// With --all: archived keys too.
    #[arg(long)]
    include_archived: bool,
    /// The bundle to write: a new file, mode 0600, never over an existing one.
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    output_file: PathBuf,
    /// Encrypt to the passphrase on the first line of FILE (without this
    /// and --master-pubkey, it is asked twice on a terminal).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    passphrase_file: Option<PathBuf>,
    /// Encrypt to this RSA public key (PEM, the master-public.pem of
    /// 'proxmox-backup-client key create-master-key'); may be repeated.
    #[arg(long, value_name = "PEM", value_hint = clap::ValueHint::FilePath)]
    master_pubkey: Vec<PathBuf>,
}

/// How `export-verify` and `restore` open a bundle.
#[derive(Args)]
pub struct OpenArgs {
    /// The bundle's passphrase, on the first line of FILE (else asked on a
    /// terminal).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    passphrase_file: Option<PathBuf>,
    /// Open the bundle with this RSA private key (PEM, master-private.pem)
    /// instead of a passphrase.
    #[arg(long, value_name = "PEM", value_hint = clap::ValueHint::FilePath)]
    master_keyfile: Option<PathBuf>,
    /// The passphrase of --master-keyfile, on the first line of FILE (else
    /// asked on a terminal, if the key is encrypted).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    master_passphrase_file: Option<PathBuf>,
}

/// `export-verify`.
#[derive(Args)]
pub struct ExportVerifyArgs {
    /// The export bundle.
    #[arg(value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    file: PathBuf,
    #[command(flatten)]
    open: OpenArgs,
}

/// `restore`.
#[derive(Args)]
pub struct RestoreArgs {
    /// The export bundle, or a key file or paperkey text (with one --id).
    #[arg(value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    file: PathBuf,
    /// Restore only these keys of the bundle (may be repeated); for a key
    /// file or paperkey, the id to restore it as.
    #[arg(long = "id", value_name = "ID")]
    ids: Vec<String>,
    /// The passphrase of the protected keys whose missing key file the
    /// restore puts back, or that it stores new, on the first line of FILE:
    /// a protected key file only claims its fingerprint, so it is put back
    /// or stored only if this decrypts it to the key (restore keys of other
    /// passphrases apart, with --id).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    key_passphrase_file: Option<PathBuf>,
    #[command(flatten)]
    open: OpenArgs,
}

/// A paperkey's form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PaperkeyFormatArg {
    /// UTF-8 text, the QR code as half blocks.
    Text,
    /// An HTML page, the QR code as SVG.
    Html,
}

impl From<PaperkeyFormatArg> for PaperkeyFormat {
    fn from(format: PaperkeyFormatArg) -> Self {
        match format {
            PaperkeyFormatArg::Text => PaperkeyFormat::Text,
            PaperkeyFormatArg::Html => PaperkeyFormat::Html,
        }
    }
}

/// `paperkey`.
#[derive(Args)]
pub struct PaperkeyArgs {
    /// Key id.
    #[arg(value_name = "KEY_ID")]
    id: String,
    /// Write the paperkey to this new file (mode 0600, never over an
    /// existing one) instead of standard output.
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    output_file: Option<PathBuf>,
}

/// Refuses an output file that exists (or whose directory does not),
/// before any work is done; writing it refuses a race again.
fn check_output_file(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => {
            return Err(format!(
                "{path:?} exists already - refusing to overwrite it"
            ));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(format!("unable to stat {path:?} - {err}")),
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(format!("directory {parent:?} of {path:?} does not exist"));
    }
    Ok(())
}

/// Tells on stderr how a new file holding `what` (the key, a paperkey, a
/// bundle) was made at `path` when its file system refused the unnamed
/// file that never shows a partial one (`pbs_key_config::NewFileWay`),
/// then warns of whom else it is open to ([`warn_exposed`]).
pub(super) fn note_new_file(path: &Path, what: &str, way: NewFileWay) {
    match way {
        NewFileWay::Unnamed => {}
        NewFileWay::TempName => eprintln!(
            "Note: the file system of {path:?} refuses unnamed files (O_TMPFILE) - {what} was \
             written under a temporary name beside it first, then linked to its name"
        ),
        NewFileWay::InPlace => eprintln!(
            "Note: the file system of {path:?} has neither unnamed files (O_TMPFILE) nor hard \
             links - {what} was written in place under its name: complete now, but a crash \
             while writing would have left a partial file there"
        ),
    }
    warn_exposed(path, what);
}

/// Warns on stderr if others than root can get at the file `path` holding
/// `what`: if the file system did not keep its mode 0600 (vfat and exfat
/// show the mount's mode on every file, whatever was asked), they may
/// read it; if a directory on its way can be changed by others (writable
/// by group or everyone without the sticky bit, or another user's), they
/// can remove it or put a file of theirs in its place, which an import
/// or restore of it would take; likewise a symbolic link on its way that
/// another user can remove and make anew ([`changeable_on_the_way`]). The
/// nearest such directory or link is named: what the administrator
/// changes (or moves the file away from).
pub(super) fn warn_exposed(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return; // a warning only: the file was written
    };
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        eprintln!(
            "Warning: the file system of {path:?} keeps no file modes - {what} is in a file of \
             mode {mode:04o}, not 0600: whoever can reach its directory may read it; mount the \
             file system so that only root can (umask=077 for vfat and exfat), or move the file \
             where only root can reach it"
        );
    }
    if let Some(Changeable {
        kind,
        path: at,
        why,
    }) = changeable_on_the_way(dir_of(path))
    {
        eprintln!(
            "Warning: {kind} {at:?} can be changed by others ({why}) - they can remove {what} \
             at {path:?} or put a file of theirs in its place, which an import or restore of it \
             would take; keep the file where only root can change the directories and links on \
             its way (chmod go-w, or mount vfat and exfat with umask=077)"
        );
    }
}

/// The directory of the file `path` (`.` for a bare file name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Tells on stderr of each temp file beside the new file `path` that a
/// write of it left when it was interrupted before the file had its name
/// (`<FILE>.tmp_XXXXXX`, on a file system without unnamed files): it may
/// hold a key in full, under a name nobody asked for.
pub(super) fn note_interrupted_writes(path: &Path) {
    let Some(name) = path.file_name() else {
        return;
    };
    let dir = dir_of(path);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return; // a note only: writing the file says what is wrong
    };
    let mut prefix = name.to_os_string();
    prefix.push(".tmp_");
    let prefix = prefix.as_encoded_bytes();
    for entry in entries.flatten() {
        let entry_name = entry.file_name();
        let suffix = match entry_name.as_encoded_bytes().strip_prefix(prefix) {
            Some(suffix) => suffix,
            None => continue,
        };
        if suffix.len() == 6 && suffix.iter().all(u8::is_ascii_alphanumeric) {
            eprintln!(
                "Note: {:?} beside {path:?} is left from a write that was interrupted before the \
                 file had its name - it may hold a key in full: keep it under a name you mean, \
                 or remove it",
                dir.join(&entry_name)
            );
        }
    }
}

/// Reads a PEM file (at most 64 KiB).
pub(super) fn read_pem(path: &Path, option: &str) -> Result<Passphrase, Error> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|err| format_err!("unable to open {option} {path:?} - {err}"))?;
    let mut data = zeroize::Zeroizing::new(Vec::new());
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut data)
        .map_err(|err| format_err!("unable to read {option} {path:?} - {err}"))?;
    if data.len() as u64 > MAX_PEM_FILE {
        bail!("{option} {path:?} is larger than {MAX_PEM_FILE} bytes - not a PEM key");
    }
    Ok(data)
}

/// The context of a handler error: `verb` (the handlers' messages name
/// their parameters as the options are named).
fn option_context(verb: String) -> impl Fn(&str) -> String {
    move |_param| verb.clone()
}

/// What `export` prints: everything about the new bundle but the bundle.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ExportSummary<'a> {
    output_file: String,
    origin: &'a str,
    created: i64,
    recipients: &'a [String],
    keys: &'a [BundleKeyInfo],
}

/// `encryption-key export`.
pub fn export(out: &Output, dir: &ConfigDir, args: ExportArgs) -> Result<ExitCode, Error> {
    let verb = "failed to export encryption keys".to_string();
    let path = &args.output_file;
    check_output_file(path).map_err(|why| format_err!("{verb} - output file {why}"))?;
    note_interrupted_writes(path);
    let selection = api::export_selection(args.ids, args.all, args.include_archived)
        .map_err(|err| param_context(err, option_context(verb.clone())))?;

    let master_pubkeys = args
        .master_pubkey
        .iter()
        .map(|pem_path| {
            let pem = read_pem(pem_path, "--master-pubkey")?;
            api::master_pubkey(&pem).map_err(|err| {
                format_err!("invalid --master-pubkey {pem_path:?} - {}", inner(&err))
            })
        })
        .collect::<Result<Vec<_>, Error>>()
        .map_err(|err| format_err!("{verb} - {err}"))?;
    let passphrase = match (&args.passphrase_file, master_pubkeys.is_empty()) {
        (Some(file), _) => Some(passphrase::new_from_file(file, "--passphrase-file")),
        (None, true) if passphrase::can_ask() => {
            Some(passphrase::ask_new("Passphrase for the export bundle: "))
        }
        (None, true) => bail!(
            "{verb} - no recipient - give --passphrase-file FILE and/or --master-pubkey PEM \
             (or run on a terminal to be asked for a passphrase)"
        ),
        (None, false) => None,
    }
    .transpose()
    .map_err(|err| format_err!("{verb} - {err}"))?;
    let recipients = Recipients {
        passphrase: passphrase.map(|p| p.to_vec()),
        master_pubkeys,
    };

    let exported = api::export_keys(dir, &selection, &recipients, &|_| Ok(()))
        .map_err(|err| param_context(err, option_context(verb.clone())))?;
    let way = write_bundle_file(path, exported.bundle.as_bytes())
        .map_err(|err| format_err!("{verb} - {err}"))?;
    note_new_file(path, "the bundle", way);

    let summary = ExportSummary {
        output_file: path.display().to_string(),
        origin: &exported.origin,
        created: exported.created,
        recipients: &exported.recipients,
        keys: &exported.keys,
    };
    out.message(&summary, |summary| {
        let rows = serde_json::to_value(summary.keys).unwrap_or_default();
        let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
        format!(
            "exported {} encryption key(s) to {path:?}\norigin: {}\nencrypted to: {}\n{}\
             check the copy with 'proxmox-backup-manager encryption-key export-verify {}', and \
             keep the passphrase or master key apart from it\n",
            summary.keys.len(),
            summary.origin,
            summary.recipients.join(", "),
            out.render_list(rows, &EXPORTED_TABLE),
            path.display()
        )
    })?;
    Ok(ExitCode::from(EXIT_OK))
}

/// The message of a parameter error's inner error, or the error's.
fn inner(err: &Error) -> String {
    match err.downcast_ref::<proxmox_schema::ParameterError>() {
        Some(param) => param
            .errors()
            .iter()
            .map(|(_, err)| err.to_string())
            .collect::<Vec<_>>()
            .join("; "),
        None => err.to_string(),
    }
}

/// The secret that opens `data` as `open` says: the master key file, else
/// the passphrase (from its file, else asked). Reads the clear header
/// first, so a bundle with no passphrase recipient asks for none.
fn bundle_secret(data: &[u8], file: &Path, open: &OpenArgs) -> Result<OwnedSecret, Error> {
    let header = read_bundle_header(data)?;
    if let Some(pem_path) = &open.master_keyfile {
        if open.passphrase_file.is_some() {
            bail!("give --passphrase-file or --master-keyfile, not both");
        }
        let pem = read_pem(pem_path, "--master-keyfile")?;
        let master_passphrase = || -> Result<Vec<u8>, Error> {
            let secret = passphrase::get(
                open.master_passphrase_file.as_deref(),
                "--master-passphrase-file",
                &format!("Passphrase of the master key {}: ", pem_path.display()),
                false,
            )?;
            Ok(secret.to_vec())
        };
        let key = rsa_private_key_from_pem(&pem, &master_passphrase)
            .map_err(|err| format_err!("--master-keyfile {pem_path:?} - {err}"))?;
        return Ok(OwnedSecret::MasterKey(key));
    }
    if open.master_passphrase_file.is_some() {
        bail!("--master-passphrase-file goes with --master-keyfile");
    }
    let has_passphrase = header
        .recipients
        .iter()
        .any(|r| matches!(r, BundleRecipient::Scrypt { .. }));
    if !has_passphrase {
        let rsa: Vec<String> = header.recipients.iter().map(|r| r.describe()).collect();
        bail!(
            "the bundle is encrypted to {} only - open it with --master-keyfile PEM",
            rsa.join(", ")
        );
    }
    let secret = passphrase::get(
        open.passphrase_file.as_deref(),
        "--passphrase-file",
        &format!("Passphrase of the export bundle {}: ", file.display()),
        false,
    )?;
    Ok(OwnedSecret::Passphrase(secret.to_vec()))
}

/// `encryption-key export-verify`: the restore drill. Exit 0 only if every
/// key of the bundle is intact (the bundle opens whole); the table says how
/// the store has each.
pub fn export_verify(
    out: &Output,
    dir: &ConfigDir,
    args: ExportVerifyArgs,
) -> Result<ExitCode, Error> {
    let file = &args.file;
    let verb = format!("failed to verify export bundle {file:?}");
    let report = (|| {
        let data = read_bundle_file(file)?;
        let secret = bundle_secret(&data, file, &args.open)?;
        api::verify_bundle(dir, &data, &secret.as_secret())
    })()
    .map_err(|err| param_context(err, option_context(verb.clone())))
    .map_err(|err| layer(&verb, err))?;
    out.message(&report, |report| render_report(out, file, report))?;
    Ok(ExitCode::from(EXIT_OK))
}

/// `verb - err`, unless `err` starts with the verb already.
fn layer(verb: &str, err: Error) -> Error {
    let text = err.to_string();
    if text.starts_with("failed to ") {
        return err;
    }
    format_err!("{verb} - {text}")
}

fn render_report(out: &Output, file: &Path, report: &BundleReport) -> String {
    let rows = serde_json::to_value(&report.keys).unwrap_or_default();
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    let mut text = format!(
        "bundle:       {file:?}\norigin:       {}\ncreated:      {}\nencrypted to: {}\n",
        report.origin,
        render::epoch_text(report.created),
        report.recipients.join(", ")
    );
    match &report.checkpoint {
        Some(checkpoint) => {
            text.push_str("checkpoint:\n");
            for line in checkpoint.lines() {
                text.push_str(&format!("  {line}\n"));
            }
        }
        None => text.push_str("checkpoint:   none\n"),
    }
    text.push_str(&out.render_list(rows, &CHECK_TABLE));
    let count = |state| {
        report
            .keys
            .iter()
            .filter(|key: &&BundleKeyCheck| key.store == state)
            .count()
    };
    text.push_str(&format!(
        "result: every key in the bundle is intact ({} key(s)); in the store: {} equal, {} \
         different, {} absent\n",
        report.keys.len(),
        count(StoreState::PresentEqual),
        count(StoreState::PresentDifferent),
        count(StoreState::Absent),
    ));
    text
}

/// `encryption-key restore`: a bundle (all its keys, or those --id names),
/// or one key from key file or paperkey text (as --id).
pub fn restore(out: &Output, dir: &ConfigDir, args: RestoreArgs) -> Result<ExitCode, Error> {
    let file = &args.file;
    let verb = format!("failed to restore from {file:?}");
    let restored = (|| {
        // bad ids are refused before a passphrase is asked for
        for id in &args.ids {
            pbs_config::encryption_keys::check_key_id(id)?;
        }
        let data = read_bundle_file(file)?;
        if api::is_bundle(&data) {
            let key_passphrase = args
                .key_passphrase_file
                .as_deref()
                .map(|path| passphrase::from_file(path, "--key-passphrase-file"))
                .transpose()?;
            let secret = bundle_secret(&data, file, &args.open)?;
            return api::restore_bundle(
                dir,
                &data,
                &secret.as_secret(),
                &args.ids,
                key_passphrase.as_deref().map(Vec::as_slice),
            );
        }
        if args.key_passphrase_file.is_some() {
            bail!("--key-passphrase-file is for an export bundle, {file:?} is key text");
        }
        restore_key_text(dir, file, data, &args)
    })()
    .map_err(|err| param_context(err, option_context(verb.clone())))
    .map_err(|err| layer(&verb, err))?;
    out.message(&restored, |restored| render_restored(out, restored))?;
    Ok(ExitCode::from(EXIT_OK))
}

/// `restore` of key file or paperkey text: one key, as the one --id.
fn restore_key_text(
    dir: &ConfigDir,
    file: &Path,
    data: Vec<u8>,
    args: &RestoreArgs,
) -> Result<Vec<RestoredKey>, Error> {
    let text = zeroize::Zeroizing::new(
        String::from_utf8(data)
            .map_err(|_| format_err!("{file:?} is neither an export bundle nor key text"))?,
    );
    let [id] = args.ids.as_slice() else {
        bail!(
            "{file:?} is no export bundle but key file or paperkey text, which holds no key id - \
             give the id to restore it as with exactly one --id ID"
        );
    };
    if args.open.master_keyfile.is_some() || args.open.master_passphrase_file.is_some() {
        bail!("--master-keyfile is for an export bundle, {file:?} is key text");
    }
    let protected = parse_key_file_or_paperkey(&text)
        .map(|key| key.is_protected())
        .unwrap_or(false);
    let passphrase = match protected {
        true => Some(passphrase::get(
            args.open.passphrase_file.as_deref(),
            "--passphrase-file",
            &format!("Passphrase of the key in {}: ", file.display()),
            false,
        )?),
        false => None,
    };
    api::restore_key_text(dir, id, &text, passphrase.as_deref().map(Vec::as_slice))
}

fn render_restored(out: &Output, restored: &[RestoredKey]) -> String {
    let rows = serde_json::to_value(restored).unwrap_or_default();
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    let new = restored
        .iter()
        .filter(|key| key.outcome == RestoreOutcome::Restored)
        .count();
    let archived = restored
        .iter()
        .filter(|key| key.outcome == RestoreOutcome::Restored && key.archived_at.is_some())
        .count();
    let files = restored
        .iter()
        .filter(|key| key.outcome == RestoreOutcome::KeyFileRestored)
        .count();
    let mut text = out.render_list(rows, &RESTORED_TABLE);
    text.push_str(&format!(
        "restored {new} key(s) ({archived} of them archived, as they were), {files} missing key \
         file(s) of keys in the store, {} already in the store\n",
        restored.len() - new - files
    ));
    text
}

/// `encryption-key paperkey`: the key to print, as text or, with
/// `--output-format html`, an HTML page. Printed to standard output even on
/// a terminal: that is what the command is for.
pub fn paperkey(out: &Output, dir: &ConfigDir, args: PaperkeyArgs) -> Result<ExitCode, Error> {
    let id = &args.id;
    let verb = format!("failed to make a paperkey of encryption key {}", quoted(id));
    if let Some(path) = &args.output_file {
        check_output_file(path).map_err(|why| format_err!("{verb} - output file {why}"))?;
        note_interrupted_writes(path);
    }
    let format = match out.format() {
        OutputFormat::Html => PaperkeyFormat::Html,
        _ => PaperkeyFormat::Text,
    };
    let text =
        paperkey_text(dir, id, format).map_err(|err| param_context(err, |_| verb.clone()))?;
    match &args.output_file {
        Some(path) => {
            let way = pbs_key_config::write_new_file(path, text.as_bytes())
                .map_err(|err| format_err!("{verb} - {err}"))?;
            note_new_file(path, "the paperkey", way);
            out.message(&path.display().to_string(), |_| {
                format!("paperkey of encryption key '{id}' written to {path:?} - print it and keep it safe\n")
            })?;
        }
        None => out.message(&*text, |text| text.to_string())?,
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// The paperkey of `id` in `format`, wiped when dropped.
pub fn paperkey_text(
    dir: &ConfigDir,
    id: &str,
    format: PaperkeyFormat,
) -> Result<zeroize::Zeroizing<String>, Error> {
    api::paperkey(dir, id, format).map(zeroize::Zeroizing::new)
}
