//! `proxmox-backup-manager encryption-key ...`: list, show, create, import,
//! archive, unarchive, remove and verify the keys of the key store, and
//! list, restore and purge its trash.
//!
//! Every command calls the API handlers of
//! `pbs_keystore::api2::config::encryption_keys` (and, for the trash,
//! `encryption_key_trash`), which validate the parameters; this module
//! reads and writes the files the administrator names and prints. Key bytes are printed by `create` only (once, or into
//! `--output-file`), and never to a terminal unless asked for with
//! `--print-key` or `--paperkey`; everything else shows metadata. Export,
//! export-verify, restore and paperkey are in [`super::key_export`].

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Error, bail, format_err};
use clap::Subcommand;
use zeroize::Zeroize;

use pbs_api_types::CryptKey;
use pbs_config::ConfigDir;
use pbs_config::encryption_keys::Deleted;
use pbs_config::trash::{MAX_KEEP_DAYS, PurgeEntry, PurgeReport};
use pbs_config::verify::VerifyReport;
use pbs_key_config::{KeyConfig, MAX_KEY_FILE_SIZE, NewFileLeft};
use pbs_keystore::api2::config::encryption_key_trash;
use pbs_keystore::api2::config::encryption_keys::{self, DeleteMode};

use super::key_export::{
    self, ExportArgs, ExportVerifyArgs, PaperkeyArgs, PaperkeyFormatArg, RestoreArgs,
};
use super::key_rotate::{self, RotateArgs};
use super::output::{Column, Output, OutputFormat, Table, render, write_stdout};
use super::passphrase;
use super::{EXIT_FINDINGS, EXIT_OK, GlobalArgs, param_context, quoted};

/// `list`: about 90 columns with a 12-character id, no hint and a job
/// each way ("sync-jobs" is [`render_sync_jobs`] of `active-in` and
/// `associated-in`).
const KEY_TABLE: Table = Table::new(&[
    Column::new("id"),
    Column::new("fingerprint").render(render::short_fingerprint),
    Column::new("created").render(render::epoch),
    Column::new("hint"),
    Column::new("sync-jobs").render(render_sync_jobs),
]);

/// `list --include-archived` (and `--unused`): about 120 columns with a
/// 12-character id and no job, 132 with a 23-character one.
const KEY_TABLE_ARCHIVED: Table = Table::new(&[
    Column::new("id"),
    Column::new("fingerprint").render(render::short_fingerprint),
    Column::new("created").render(render::epoch),
    Column::new("archived-at").render(render::epoch),
    Column::new("hint"),
    Column::new("sync-jobs").render(render_sync_jobs),
]);

/// The jobs that name a key, one per line: `JOB (active)`, then `JOB
/// (associated)`.
fn render_sync_jobs(_value: &serde_json::Value, record: &serde_json::Value) -> String {
    let jobs = |name: &str| {
        record[name]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|job| job.as_str())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    jobs("active-in")
        .into_iter()
        .map(|job| format!("{job} (active)"))
        .chain(
            jobs("associated-in")
                .into_iter()
                .map(|job| format!("{job} (associated)")),
        )
        .collect::<Vec<_>>()
        .join("\n")
}

/// `show`: every property, the fingerprint in full, the jobs that name
/// the key, and what the audit log says about it.
const KEY_FIELDS: Table = Table::new(&[
    Column::new("id"),
    Column::new("fingerprint"),
    Column::new("kdf"),
    Column::new("created").render(render::epoch),
    Column::new("modified").render(render::epoch),
    Column::new("archived-at").render(render::epoch),
    Column::new("hint"),
    Column::new("path"),
    Column::new("active-in"),
    Column::new("associated-in"),
    Column::new("last-exported").render(audit_mark),
    Column::new("last-export-verify").render(audit_mark),
    Column::new("last-changed-by").render(audit_mark),
]);

/// The audit log's marks `show` prints, "—" when there is no record.
const AUDIT_MARKS: [&str; 3] = ["last-exported", "last-export-verify", "last-changed-by"];

/// A mark of the audit log: `TIME by ACTOR (ORIGIN, unix user U): OP`.
fn audit_mark(value: &serde_json::Value, record: &serde_json::Value) -> String {
    if !value.is_object() {
        return render::plain(value);
    }
    let unix_user = match value["unix-user"].as_str() {
        Some(user) => format!(", unix user {user}"),
        None => String::new(),
    };
    format!(
        "{} by {} ({}{unix_user}): {}",
        render::epoch(&value["time"], record),
        render::plain(&value["actor"]),
        render::plain(&value["origin"]),
        render::plain(&value["op"]),
    )
}

/// `trash list`: about 110 columns with a 12-character id.
const TRASH_TABLE: Table = Table::new(&[
    Column::new("name"),
    Column::new("fingerprint").render(render::short_fingerprint),
    Column::new("reason"),
    Column::new("time").render(render::epoch),
    Column::new("purge-after").render(purge_after),
    Column::new("verified-copy").render(verified_copy),
]);

/// A purge date: absent is `never` (only a purge by name destroys it).
fn purge_after(value: &serde_json::Value, record: &serde_json::Value) -> String {
    match value.is_null() {
        true => "never".to_string(),
        false => render::epoch(value, record),
    }
}

/// When an export-verify last proved a copy of the key: absent is `none`
/// (a purge then needs --without-verified-copy; the daily purge keeps it).
fn verified_copy(value: &serde_json::Value, record: &serde_json::Value) -> String {
    match value.is_null() {
        true => "none".to_string(),
        false => render::epoch(value, record),
    }
}

/// Encryption key commands.
#[derive(Subcommand)]
pub enum EncryptionKeyCommand {
    /// List encryption keys (active ones unless --include-archived), with
    /// the sync jobs that use each.
    List {
        /// Also list archived keys.
        #[arg(long)]
        include_archived: bool,
        /// Only archived keys that no sync job names: the candidates for
        /// deletion.
        #[arg(long, conflicts_with = "include_archived")]
        unused: bool,
        /// Only keys, active or archived, of which no verified copy is
        /// recorded (no export bundle holding them passed export-verify):
        /// the keys this host's loss would lose.
        #[arg(long, conflicts_with = "unused")]
        no_verified_copy: bool,
    },
    /// Show the metadata of an encryption key (never the key itself) and
    /// the sync jobs that use it (active-in, associated-in).
    Show {
        /// Key id.
        #[arg(value_name = "KEY_ID")]
        id: String,
    },
    /// Create a new random, unprotected encryption key.
    ///
    /// The key (KeyConfig JSON) is written to FILE, created with mode 0600
    /// and never over an existing file; without --output-file it is printed
    /// to stdout, and this is the only time it is shown. A terminal gets it
    /// only with --print-key: on screen it stays in the scrollback and in
    /// view of anyone nearby.
    Create {
        /// Id of the new key: 3 to 32 characters, letters, digits, '.', '_'
        /// and '-', not starting with '.' or '-'.
        #[arg(value_name = "ID")]
        id: String,
        /// Write the key to this new file instead of stdout.
        #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        output_file: Option<PathBuf>,
        /// Print the key to stdout even if it is a terminal.
        #[arg(long, conflicts_with = "output_file")]
        print_key: bool,
        /// Print the key as a paperkey (text, or an HTML page) on stdout,
        /// even if it is a terminal: a paperkey is meant to be printed.
        #[arg(
            long,
            value_name = "FORMAT",
            num_args = 0..=1,
            default_missing_value = "text",
            conflicts_with_all = ["output_file", "print_key"]
        )]
        paperkey: Option<PaperkeyFormatArg>,
        /// A hint stored with the key (one line; list and show print it).
        #[arg(long, value_name = "TEXT")]
        hint: Option<String>,
    },
    /// Import a key from a key file (KeyConfig JSON) or paperkey text.
    ///
    /// The key is decrypted and checked against its fingerprint before it is
    /// stored. A passphrase-protected key (scrypt or PBKDF2, as
    /// 'proxmox-backup-client key create' makes them) needs its passphrase
    /// (--passphrase-file, else asked on a terminal) and is stored
    /// unprotected, for unattended use; upstream refuses protected keys.
    Import {
        /// Id of the new key.
        #[arg(value_name = "ID")]
        id: String,
        /// The key file or paperkey text; '-' reads standard input.
        #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        file: PathBuf,
        /// The passphrase of a protected key, on the first line of FILE.
        #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        passphrase_file: Option<PathBuf>,
        /// A hint stored with the key instead of the key file's.
        #[arg(long, value_name = "TEXT")]
        hint: Option<String>,
    },
    /// Write keys into an encrypted export bundle, to keep off the host.
    ///
    /// The bundle is a new file (mode 0600, never over an existing one),
    /// encrypted to a passphrase (--passphrase-file, else asked twice on a
    /// terminal) and/or RSA master public keys (--master-pubkey). Its clear
    /// header lists ids and fingerprints; keys are only inside.
    Export(ExportArgs),
    /// The restore drill: open an export bundle in memory and check it.
    ///
    /// Checks every key's fingerprint against its bytes and compares it with
    /// the store (present and equal, present and different, absent).
    /// Imports nothing, writes nothing. Exit status 0 only if every key in
    /// the bundle is intact.
    ExportVerify(ExportVerifyArgs),
    /// Restore keys from an export bundle (or one key from paperkey text).
    ///
    /// Through the normal store path: a key the store has under the same id
    /// is left as it is; an id the store has with another key, or a key it
    /// has under another id, refuses the restore (naming both) before
    /// anything is written. Archived keys come back archived.
    Restore(RestoreArgs),
    /// Print a key as a paperkey, to keep on paper and type back in.
    ///
    /// Upstream's block, a QR code, the id and full fingerprint, the audit
    /// checkpoint if there is one, and a typing aid with a checksum on every
    /// line. Text, or with '--output-format html' an HTML page to print.
    /// 'import' and 'restore' take the text back (the block or the
    /// typing-aid lines); a mistyped line is named.
    Paperkey(PaperkeyArgs),
    /// Rotate sync jobs to a new key: one resumable, journaled command.
    ///
    /// Plans the rotation (journal), stores a new key, exports it and
    /// proves the export with the restore drill (--export-file), switches
    /// the jobs to it in one write (the old key stays associated with
    /// them), archives the old key (--archive-old). Run the same command
    /// again after a crash or an error: it resumes where it stopped and
    /// never makes a second key. --status shows the journal; --abort undoes
    /// a rotation before its jobs switched (the new key goes into the
    /// trash).
    Rotate(RotateArgs),
    /// Archive a key: it can no longer encrypt, only decrypt. Refused while a
    /// sync job uses it as its active key.
    Archive {
        /// Key id.
        #[arg(value_name = "KEY_ID")]
        id: String,
        /// Refuse if the config changed since it had this SHA-256 digest
        /// (sha256sum encryption-keys.cfg, or the digest of the API list).
        #[arg(long, value_name = "HEX")]
        digest: Option<String>,
    },
    /// Make an archived key active again.
    Unarchive {
        /// Key id.
        #[arg(value_name = "KEY_ID")]
        id: String,
        /// Refuse if the config changed since it had this SHA-256 digest
        /// (sha256sum encryption-keys.cfg, or the digest of the API list).
        #[arg(long, value_name = "HEX")]
        digest: Option<String>,
    },
    /// Remove an archived key that no sync job references.
    ///
    /// The key file moves into the trash, where 'trash restore' brings it
    /// back; 'trash purge --expired' (run daily by a systemd timer)
    /// destroys it once its keep time is over.
    #[command(visible_alias = "delete")]
    Remove {
        /// Key id.
        #[arg(value_name = "KEY_ID")]
        id: String,
        /// Refuse if the config changed since it had this SHA-256 digest
        /// (sha256sum encryption-keys.cfg, or the digest of the API list).
        #[arg(long, value_name = "HEX")]
        digest: Option<String>,
        /// Keep the key in the trash for N days before 'trash purge
        /// --expired' may destroy it [default: 30].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=MAX_KEEP_DAYS as i64))]
        keep_days: Option<u32>,
        /// Destroy the key file at once instead of moving it into the trash
        /// (upstream's delete, to crypto-shred: whatever the key encrypted
        /// can then only be decrypted with a copy of it kept elsewhere).
        /// Refused unless a verified copy of the key is recorded (an export
        /// bundle holding it passed 'export-verify').
        #[arg(long, conflicts_with_all = ["keep_days", "force"])]
        purge: bool,
        /// With --purge: destroy the key even though no verified copy of it
        /// is recorded.
        #[arg(long, requires = "purge")]
        without_verified_copy: bool,
        /// If the key file is missing, drop the config entry anyway; says
        /// first what is lost (or which trash entry still holds the key).
        #[arg(long)]
        force: bool,
    },
    /// The trash: removed and repaired-away key files, kept until purged.
    #[command(subcommand)]
    Trash(TrashCommand),
    /// Check the key store; with --repair, fix what can be fixed.
    ///
    /// Checks that every key has a matching key file, modes and owners,
    /// looks for orphan key files, temp files and stale lock files, and
    /// checks the trash.
    /// Prints the ownership policy in force, the problems found and the
    /// repairs done. Exit status: 0 clean, 1 problems remain, 255 could not
    /// check (like any other error).
    Verify {
        /// Fix modes and owners, rewrite relocated paths, move orphan key
        /// files and their temp files into the trash, and remove stale lock
        /// files and stale trash records.
        #[arg(long)]
        repair: bool,
    },
}

/// `encryption-key trash ...`.
#[derive(Subcommand)]
pub enum TrashCommand {
    /// List the keys in the trash (never their bytes).
    List,
    /// Put a key from the trash back into the store.
    ///
    /// Refused if its id or its fingerprint is taken in the store. A key
    /// removed while archived comes back archived.
    Restore {
        /// The key id it had (if it is in the trash once), or its trash name.
        #[arg(value_name = "ID")]
        id: String,
        /// Restore it under this id instead.
        #[arg(long = "as", value_name = "NEW_ID")]
        as_id: Option<String>,
    },
    /// Destroy keys in the trash: the one named, or with --expired every
    /// one whose keep time is over. With 'remove --purge', the only way key
    /// material is destroyed.
    ///
    /// A key of which no verified copy is recorded (no export bundle
    /// holding it passed 'export-verify') is kept: by name the purge is
    /// refused unless --without-verified-copy, and --expired keeps it and
    /// says so.
    Purge {
        /// The key id (if it is in the trash once) or trash name to destroy.
        #[arg(value_name = "ID", required_unless_present = "expired")]
        id: Option<String>,
        /// Only keys whose keep time is over (what the daily timer runs);
        /// never keys repair put there, nor keys without a verified copy.
        #[arg(long)]
        expired: bool,
        /// Destroy the key named even though no verified copy of it is
        /// recorded.
        #[arg(long, requires = "id", conflicts_with = "expired")]
        without_verified_copy: bool,
    },
}

/// Runs an encryption key command.
pub fn run(
    global: &GlobalArgs,
    out: &Output,
    cmd: EncryptionKeyCommand,
) -> Result<ExitCode, Error> {
    let dir = global.config_dir()?;
    match cmd {
        EncryptionKeyCommand::List {
            include_archived,
            unused,
            no_verified_copy,
        } => {
            let filter = encryption_keys::ListFilter {
                include_archived,
                unused,
                no_verified_copy,
            };
            list(out, &dir, filter)?
        }
        EncryptionKeyCommand::Show { id } => show(out, &dir, &id)?,
        EncryptionKeyCommand::Create {
            id,
            output_file,
            print_key,
            paperkey,
            hint,
        } => {
            let hint = hint.as_deref();
            match KeyDestination::of(output_file, print_key, paperkey) {
                KeyDestination::File(path) => create_to_file(out, &dir, &id, &path, hint)?,
                KeyDestination::Stdout => create_to_stdout(out, &dir, &id, hint)?,
                KeyDestination::Paperkey(format) => {
                    create_to_paperkey(out, &dir, &id, format, hint)?
                }
                KeyDestination::Refused => return Err(refuse_terminal(&id)),
            }
        }
        EncryptionKeyCommand::Import {
            id,
            file,
            passphrase_file,
            hint,
        } => import(
            out,
            &dir,
            &id,
            &file,
            passphrase_file.as_deref(),
            hint.as_deref(),
        )?,
        EncryptionKeyCommand::Export(args) => return key_export::export(out, &dir, args),
        EncryptionKeyCommand::ExportVerify(args) => {
            return key_export::export_verify(out, &dir, args);
        }
        EncryptionKeyCommand::Restore(args) => return key_export::restore(out, &dir, args),
        EncryptionKeyCommand::Paperkey(args) => return key_export::paperkey(out, &dir, args),
        EncryptionKeyCommand::Rotate(args) => return key_rotate::rotate(out, &dir, args),
        EncryptionKeyCommand::Archive { id, digest } => {
            set_archived(out, &dir, &id, digest.as_deref(), true)?;
        }
        EncryptionKeyCommand::Unarchive { id, digest } => {
            set_archived(out, &dir, &id, digest.as_deref(), false)?;
        }
        EncryptionKeyCommand::Remove {
            id,
            digest,
            keep_days,
            purge,
            without_verified_copy,
            force,
        } => {
            let mode = DeleteMode {
                keep_days,
                purge,
                without_verified_copy,
                force,
            };
            let removed = remove(&dir, &id, digest.as_deref(), mode)?;
            out.message(&(), |()| render_removed(&removed))?;
        }
        EncryptionKeyCommand::Trash(cmd) => run_trash(out, &dir, cmd)?,
        EncryptionKeyCommand::Verify { repair } => return verify(out, &dir, repair),
    }
    Ok(ExitCode::from(EXIT_OK))
}

/// `list`: the keys as a table, or as JSON written from each key's text.
fn list(out: &Output, dir: &ConfigDir, filter: encryption_keys::ListFilter) -> Result<(), Error> {
    if dir.open_base()?.is_none() {
        // an empty list would not say that nothing is there at all
        eprintln!(
            "Note: config dir {:?} does not exist - no keys are stored there \
             (check --config-dir or $PBS_CONFIG_DIR)",
            dir.base()
        );
    }
    let list = encryption_keys::list_keys_with_users_undigested(dir, filter, |_| true)?;
    if out.format() == OutputFormat::Json {
        // each key written from its text, never typed: the bytes
        // serde_json gives for `list` (KeyList::write_json)
        out.write_json_with(|stdout| list.write_json(stdout))?;
    } else {
        let entries: Vec<_> = list.entries()?.collect();
        let table = match filter.include_archived || filter.unused || filter.no_verified_copy {
            true => &KEY_TABLE_ARCHIVED,
            false => &KEY_TABLE,
        };
        out.list(&entries, table)?;
    }
    Ok(())
}

/// `archive` (`archived` true) and `unarchive`: the key as it is now.
fn set_archived(
    out: &Output,
    dir: &ConfigDir,
    id: &str,
    digest: Option<&str>,
    archived: bool,
) -> Result<(), Error> {
    let (verb, key) = match archived {
        true => ("archive", encryption_keys::archive_key(dir, id, digest)),
        false => ("unarchive", encryption_keys::unarchive_key(dir, id, digest)),
    };
    let key = key.map_err(|err| param_context(err, key_op_context(verb)))?;
    out.message(&key, |key| format!("{verb}d encryption key '{}'\n", key.id))
}

/// `show`: one key's metadata, with a mark for what the audit log lacks.
fn show(out: &Output, dir: &ConfigDir, id: &str) -> Result<(), Error> {
    let details = encryption_keys::show_key_details(dir, id)
        .map_err(|err| param_context(err, |_| "failed to show encryption key".into()))?;
    out.message(&details, |details| {
        let mut record = serde_json::to_value(details).unwrap_or_default();
        for name in AUDIT_MARKS {
            if record[name].is_null() {
                record[name] = out.none_mark().into();
            }
        }
        out.render_object(&record, &KEY_FIELDS)
    })?;
    Ok(())
}

/// `verify`: the key store's findings (and with `repair`, what was
/// repaired); exit code [`EXIT_FINDINGS`] if something remains.
fn verify(out: &Output, dir: &ConfigDir, repair: bool) -> Result<ExitCode, Error> {
    let report = encryption_keys::verify_keys(dir, repair)?;
    // a repair that failed (full disk, read-only, not permitted) is an
    // error: one line naming each file, with what was done anyway
    if !report.repair_failed.is_empty() {
        let failed: Vec<&str> = report
            .repair_failed
            .iter()
            .map(|failed| failed.action.as_str())
            .collect();
        bail!(
            "unable to repair the key store - {} ({} other repair(s) done; run 'verify' to see what remains)",
            failed.join("; "),
            report.repaired.len()
        );
    }
    out.message(&report, render_report)?;
    let code = match report.is_clean() {
        true => EXIT_OK,
        false => EXIT_FINDINGS,
    };
    Ok(ExitCode::from(code))
}

/// `import`: key file JSON or paperkey text; a protected key with its
/// passphrase (from `passphrase_file`, else asked on a terminal), stored
/// unprotected.
fn import(
    out: &Output,
    dir: &ConfigDir,
    id: &str,
    file: &Path,
    passphrase_file: Option<&Path>,
    hint: Option<&str>,
) -> Result<(), Error> {
    let source = match file.as_os_str() == "-" {
        true => "standard input".to_string(),
        false => format!("{file:?}"),
    };
    let failed = |why: String| {
        format_err!(
            "failed to import encryption key {} from {source} - {why}",
            quoted(id)
        )
    };
    let text =
        zeroize::Zeroizing::new(read_key_input(file).map_err(|err| {
            format_err!("failed to import encryption key {} - {err}", quoted(id))
        })?);
    // a protected key needs its passphrase before the handler runs; a key
    // that does not parse is the handler's to refuse
    let parsed = pbs_key_config::paperkey::parse_key_file_or_paperkey(&text).ok();
    let protected = parsed.as_ref().is_some_and(KeyConfig::is_protected);
    let passphrase = match (protected, passphrase_file) {
        (true, file) => {
            let hint = parsed
                .as_ref()
                .and_then(|key| key.hint.as_deref())
                .map(|hint| format!(" (hint: {})", pbs_key_config::printable_hint(hint)))
                .unwrap_or_default();
            let prompt = format!("Passphrase of the key{hint}: ");
            Some(
                passphrase::get(file, "--passphrase-file", &prompt, false)
                    .map_err(|err| failed(format!("the key is passphrase protected - {err}")))?,
            )
        }
        (false, Some(_)) => {
            return Err(failed(
                "the key is not passphrase protected - leave --passphrase-file out".to_string(),
            ));
        }
        (false, None) => None,
    };
    drop(parsed);
    let options = encryption_keys::KeyOptions {
        hint,
        passphrase: passphrase.as_deref().map(Vec::as_slice),
    };
    let result = encryption_keys::create_key_with(dir, id, Some(&text), &options);
    // the returned KeyConfig holds the key: dropped (and wiped) at once
    drop(result.map_err(|err| {
        param_context(err, |param| match param {
            "id" => "failed to import encryption key".to_string(),
            "hint" if hint.is_some() => {
                format!("failed to import encryption key '{id}' - invalid --hint")
            }
            _ => format!("failed to import encryption key '{id}' from {source}"),
        })
    })?);
    let key = encryption_keys::show_key(dir, id)?;
    let unprotected = match protected {
        true => " - stored unprotected, for unattended use (it was passphrase protected)",
        false => "",
    };
    out.message(&key, |key| {
        format!(
            "imported encryption key '{}' from {source} (fingerprint {}){unprotected}\n",
            key.id,
            render_fingerprint(key)
        )
    })
}

/// `remove`: a forced remove prints what it loses on stderr before it
/// changes anything.
fn remove(
    dir: &ConfigDir,
    id: &str,
    digest: Option<&str>,
    mode: DeleteMode,
) -> Result<Deleted, Error> {
    let warn = |text: &str| eprintln!("Warning: {text}");
    encryption_keys::delete_key_with(dir, id, digest, &mode, Some(&warn))
        .map_err(|err| param_context(err, key_op_context("remove")))
}

fn render_removed(removed: &Deleted) -> String {
    match removed {
        Deleted::Trashed {
            id,
            trash_name,
            purge_after,
            verified_copy: true,
        } => format!(
            "removed encryption key '{id}' - kept in the trash as '{trash_name}' until {} \
             ('encryption-key trash restore {trash_name}' brings it back)\n",
            render::epoch_text(*purge_after)
        ),
        Deleted::Trashed {
            id,
            trash_name,
            purge_after,
            verified_copy: false,
        } => format!(
            "removed encryption key '{id}' - kept in the trash as '{trash_name}' \
             ('encryption-key trash restore {trash_name}' brings it back); no verified copy of it is \
             recorded, so the daily purge keeps it past {} until a bundle holding it passes \
             'encryption-key export-verify', or it is purged by hand\n",
            render::epoch_text(*purge_after)
        ),
        Deleted::Purged { id } => format!(
            "removed encryption key '{id}' and destroyed its key file (--purge: not kept in the \
             trash; whatever it encrypted can only be decrypted with a copy kept elsewhere)\n"
        ),
        Deleted::EntryDropped { id, .. } => format!(
            "dropped the config entry of encryption key '{id}' (--force: its key file was missing)\n"
        ),
    }
}

/// Runs `encryption-key trash ...`.
fn run_trash(out: &Output, dir: &ConfigDir, cmd: TrashCommand) -> Result<(), Error> {
    let trash_context = |verb: &'static str| {
        move |param: &str| match param {
            "as" => format!("failed to {verb} - invalid --as"),
            _ => format!("failed to {verb}"),
        }
    };
    match cmd {
        TrashCommand::List => {
            let listing = encryption_key_trash::list_trash(dir)?;
            if !listing.incomplete.is_empty() {
                eprintln!(
                    "Warning: {} incomplete trash entr{} ({}) - run 'proxmox-backup-manager encryption-key verify'",
                    listing.incomplete.len(),
                    if listing.incomplete.len() == 1 {
                        "y"
                    } else {
                        "ies"
                    },
                    listing.incomplete.join(", ")
                );
            }
            out.list(&listing.entries, &TRASH_TABLE)?;
        }
        TrashCommand::Restore { id, as_id } => {
            let key = encryption_key_trash::restore_from_trash(dir, &id, as_id.as_deref())
                .map_err(|err| param_context(err, trash_context("restore from the trash")))?;
            out.message(&key, |key| {
                let archived = match key.archived_at {
                    Some(_) => " - archived, as it was removed: unarchive it to encrypt with it",
                    None => "",
                };
                format!(
                    "restored encryption key '{}' from the trash (fingerprint {}){archived}\n",
                    key.id,
                    render_fingerprint(key)
                )
            })?;
        }
        TrashCommand::Purge {
            id,
            expired,
            without_verified_copy,
        } => {
            let report = encryption_key_trash::purge_trash(
                dir,
                id.as_deref(),
                expired,
                without_verified_copy,
            )
            .map_err(|err| param_context(err, trash_context("purge the trash")))?;
            out.message(&report, render_purged)?;
        }
    }
    Ok(())
}

fn render_purged(report: &PurgeReport) -> String {
    let fingerprint = |entry: &PurgeEntry| {
        entry
            .fingerprint
            .map_or_else(|| "unknown".to_string(), |fp| fp.signature())
    };
    let mut text = String::new();
    for entry in &report.purged {
        text += &format!(
            "purged '{}' (key '{}', fingerprint {}): destroyed\n",
            entry.name,
            entry.id,
            fingerprint(entry)
        );
    }
    for entry in &report.kept_without_copy {
        text += &format!(
            "kept '{}' (key '{}', fingerprint {}): its keep time is over, but no verified copy \
             of it is recorded - export it and run 'encryption-key export-verify' on the \
             bundle, or destroy it with 'encryption-key trash purge {} --without-verified-copy'\n",
            entry.name,
            entry.id,
            fingerprint(entry),
            entry.name
        );
    }
    if text.is_empty() {
        text = "nothing to purge\n".to_string();
    }
    text
}

/// Where `create` hands out the new key.
enum KeyDestination {
    /// A new file (`--output-file`).
    File(PathBuf),
    /// Standard output: a pipe or file, or a terminal with `--print-key`.
    Stdout,
    /// Standard output is a terminal and nothing else was asked for.
    Refused,
    /// A paperkey on standard output (`--paperkey`), terminal or not: it
    /// is meant to be printed.
    Paperkey(PaperkeyFormatArg),
}

impl KeyDestination {
    fn of(
        output_file: Option<PathBuf>,
        print_key: bool,
        paperkey: Option<PaperkeyFormatArg>,
    ) -> Self {
        match (output_file, paperkey) {
            (Some(path), _) => KeyDestination::File(path),
            (None, Some(format)) => KeyDestination::Paperkey(format),
            (None, None) if print_key || !std::io::stdout().is_terminal() => KeyDestination::Stdout,
            (None, None) => KeyDestination::Refused,
        }
    }
}

/// The error of `create` without a destination on a terminal; nothing has
/// been created.
fn refuse_terminal(id: &str) -> Error {
    format_err!(
        "failed to create encryption key {} - refusing to print the key to a terminal, where it \
         stays on screen and in the scrollback - write it to a new file with --output-file FILE, \
         or pass --print-key to print it anyway (or --paperkey for a paperkey)",
        quoted(id)
    )
}

/// Creates a key and prints it once (KeyConfig JSON, indented in text
/// format). If stdout cannot take it, the key is removed again: a key
/// nobody holds a copy of must not stay in the store.
fn create_to_stdout(
    out: &Output,
    dir: &ConfigDir,
    id: &str,
    hint: Option<&str>,
) -> Result<(), Error> {
    let key_config = create_key(dir, id, hint)?;
    let written = (|| {
        let mut text = match out.format() {
            OutputFormat::Json => key_config.to_json()?,
            OutputFormat::Text | OutputFormat::JsonPretty | OutputFormat::Html => {
                serde_json::to_string_pretty(&key_config)?
            }
        };
        text.push('\n');
        let written = write_stdout(&text);
        text.zeroize();
        written
    })();
    drop(key_config);
    if let Err(err) = written {
        return Err(remove_new_key(dir, id, err));
    }
    eprintln!(
        "Warning: this is the only time the key of '{id}' is shown - store it in a safe place; \
         anyone holding it can decrypt what it encrypts, and without it nobody can"
    );
    Ok(())
}

/// Creates a key and writes it to a new file `path` (0600). The file is
/// checked first, so an existing file refuses the command before anything
/// is created; if writing fails anyway, the key is removed again.
fn create_to_file(
    out: &Output,
    dir: &ConfigDir,
    id: &str,
    path: &Path,
    hint: Option<&str>,
) -> Result<(), Error> {
    let refuse =
        |why: String| format_err!("failed to create encryption key {} - {why}", quoted(id));
    match std::fs::symlink_metadata(path) {
        Ok(_) => {
            return Err(refuse(format!(
                "output file {path:?} exists already - refusing to overwrite it"
            )));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(refuse(format!(
                "unable to stat output file {path:?} - {err}"
            )));
        }
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(refuse(format!(
            "directory {parent:?} of output file {path:?} does not exist"
        )));
    }
    key_export::note_interrupted_writes(path);

    let key_config = create_key(dir, id, hint)?;
    let written = key_config.to_json().and_then(|mut text| {
        let written = pbs_key_config::write_new_file_with(path, text.as_bytes(), &|| {
            pbs_config::failpoint::hit("create:output-written")
        });
        text.zeroize();
        written
    });
    drop(key_config);
    match written {
        Ok(way) => key_export::note_new_file(path, "the key", way),
        // the file complete under its name, its directory not synced
        Err(err) if err.downcast_ref::<NewFileLeft>().is_some() => {
            return Err(remove_new_key_left_in(dir, id, err, path));
        }
        Err(err) => return Err(remove_new_key(dir, id, err)),
    }
    let key = encryption_keys::show_key(dir, id)?;
    out.message(&key, |key| {
        format!(
            "created encryption key '{}' (fingerprint {})\nkey written to {path:?} - store it in a safe place\n",
            key.id,
            render_fingerprint(key)
        )
    })
}

/// Creates a key and prints it once, as a paperkey. If stdout cannot take
/// it, the key is removed again, as for [`create_to_stdout`].
fn create_to_paperkey(
    out: &Output,
    dir: &ConfigDir,
    id: &str,
    format: PaperkeyFormatArg,
    hint: Option<&str>,
) -> Result<(), Error> {
    drop(create_key(dir, id, hint)?);
    let written = key_export::paperkey_text(dir, id, format.into())
        .and_then(|text| out.message(&*text, |text| text.to_string()));
    if let Err(err) = written {
        return Err(remove_new_key(dir, id, err));
    }
    eprintln!(
        "Warning: this is the only time the key of '{id}' is shown - print the paperkey and keep \
         it in a safe place; anyone holding it can decrypt what the key encrypts"
    );
    Ok(())
}

fn create_key(dir: &ConfigDir, id: &str, hint: Option<&str>) -> Result<KeyConfig, Error> {
    let options = encryption_keys::KeyOptions {
        hint,
        ..Default::default()
    };
    encryption_keys::create_key_with(dir, id, None, &options).map_err(|err| {
        param_context(err, |param| match param {
            "hint" => "failed to create encryption key - invalid --hint".into(),
            _ => "failed to create encryption key".into(),
        })
    })
}

/// Undoes a create whose key could not be handed out: archive, then delete
/// (into the trash).
fn remove_new_key(dir: &ConfigDir, id: &str, err: Error) -> Error {
    remove_new_key_with(dir, id, err, &|_| String::new())
}

/// [`remove_new_key`] of a create whose key file could not be made sure
/// of, nor removed again (`pbs_key_config::NewFileLeft`): the key is in
/// the trash and in the file `path`, and the error says so.
fn remove_new_key_left_in(dir: &ConfigDir, id: &str, err: Error, path: &Path) -> Error {
    remove_new_key_with(dir, id, err, &|trash_name| {
        format!(
            ", and the file {path:?} holds it too - bring the key back with \
             'proxmox-backup-manager encryption-key trash restore {trash_name}' and make a copy \
             of it where the device works (the file's might not keep it), or remove the file"
        )
    })
}

/// [`remove_new_key`], the message of a key removed ending in what
/// `left_in` makes of its name in the trash: where else the key is (empty:
/// nowhere). A key that could not be removed stays in the store: its
/// message is `err` and why, no `left_in` (whose advice is to bring the
/// key back from the trash).
fn remove_new_key_with(
    dir: &ConfigDir,
    id: &str,
    err: Error,
    left_in: &dyn Fn(&str) -> String,
) -> Error {
    // the default mode moves the key file into the trash, nothing else
    let removed = encryption_keys::archive_key(dir, id, None).and_then(|_| {
        encryption_keys::delete_key_with(dir, id, None, &DeleteMode::default(), None)
    });
    match removed {
        Ok(Deleted::Trashed { trash_name, .. }) => format_err!(
            "failed to create encryption key '{id}' - {err} - the new key was removed from the \
             store again (into the trash, as '{trash_name}'){}",
            left_in(&trash_name)
        ),
        Ok(other) => format_err!(
            "failed to create encryption key '{id}' - {err} - the new key was removed from the \
             store again ({})",
            render_removed(&other).trim_end()
        ),
        Err(remove_err) => format_err!(
            "failed to create encryption key '{id}' - {err} - and removing the new key from the store failed too: {remove_err}"
        ),
    }
}

/// Reads a key file given to import (`-` = stdin): at most
/// [`MAX_KEY_FILE_SIZE`] bytes of UTF-8 text.
fn read_key_input(path: &Path) -> Result<String, Error> {
    let (name, mut input): (String, Box<dyn Read>) = if path.as_os_str() == "-" {
        (
            "standard input".to_string(),
            Box::new(std::io::stdin().lock()),
        )
    } else {
        let file = std::fs::File::open(path)
            .map_err(|err| format_err!("unable to open {path:?} - {err}"))?;
        (format!("{path:?}"), Box::new(file))
    };
    let mut data = Vec::new();
    if let Err(err) = input
        .by_ref()
        .take(MAX_KEY_FILE_SIZE + 1)
        .read_to_end(&mut data)
    {
        data.zeroize();
        bail!("unable to read {name} - {err}");
    }
    if data.len() as u64 > MAX_KEY_FILE_SIZE {
        data.zeroize();
        bail!("{name} is larger than {MAX_KEY_FILE_SIZE} bytes - not a key file");
    }
    String::from_utf8(data).map_err(|err| {
        let mut data = err.into_bytes();
        data.zeroize();
        format_err!("{name} is not a key file - not UTF-8 text")
    })
}

fn render_fingerprint(key: &CryptKey) -> String {
    match &key.info.fingerprint {
        Some(fingerprint) => fingerprint.signature(),
        None => "-".to_string(),
    }
}

/// The error context of archive, unarchive and delete: a bad digest is
/// named as the option it came from.
fn key_op_context(verb: &'static str) -> impl Fn(&str) -> String {
    move |param| match param {
        "digest" => format!("failed to {verb} encryption key - invalid --digest"),
        _ => format!("failed to {verb} encryption key"),
    }
}

/// Key-value lines (`name: value`), names padded to the widest (the text
/// of `verify` and of `rotate --status`).
pub(super) fn render_fields(fields: &[(&str, String)]) -> String {
    let width = fields
        .iter()
        .map(|(name, _)| name.len() + 1)
        .max()
        .unwrap_or(0);
    fields
        .iter()
        .map(|(name, value)| format!("{:<width$} {value}\n", format!("{name}:")))
        .collect()
}

fn render_report(report: &VerifyReport) -> String {
    let mut out = render_fields(&[
        ("config dir", format!("{:?}", report.config_dir)),
        ("ownership", report.ownership.clone()),
        ("keys checked", report.keys_checked.to_string()),
        ("trashed keys", report.keys_in_trash.to_string()),
    ]);
    if !report.repaired.is_empty() {
        out.push_str(&format!("repaired ({}):\n", report.repaired.len()));
        for repair in &report.repaired {
            out.push_str(&format!("  {:?}: {}\n", repair.path, repair.action));
        }
    }
    if report.findings.is_empty() {
        out.push_str("result: clean\n");
        return out;
    }
    out.push_str(&format!("problems ({}):\n", report.findings.len()));
    for finding in &report.findings {
        let kind = serde_json::to_value(finding.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let fix = match finding.repairable {
            true => " (repairable)",
            false => "",
        };
        out.push_str(&format!("  [{kind}] {}{fix}\n", finding.message));
    }
    let repairable = report.findings.iter().filter(|f| f.repairable).count();
    out.push_str(&format!(
        "result: {} problem(s) remain",
        report.findings.len()
    ));
    if repairable > 0 {
        out.push_str(&format!(
            ", {repairable} of them repairable with 'proxmox-backup-manager encryption-key verify --repair'"
        ));
    }
    out.push('\n');
    out
}
