//! Command modules of `proxmox-backup-manager`, one per object, plus the
//! options and exit statuses they share. Every command prints through the
//! one output layer, [`output`] (read its header before adding a command).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Error, format_err};
use clap::Args;

use proxmox_schema::ParameterError;

use pbs_config::ConfigDir;
use pbs_config::audit::Caller;

pub mod acl;
pub mod audit;
pub mod completion;
pub mod encryption_key;
pub mod file_way;
pub mod key_export;
pub mod key_rotate;
pub mod manpage;
pub mod output;
pub mod passphrase;
pub mod sync_job;
pub mod terminal;
pub mod user;

use output::{Output, OutputFormat};

/// Exit status: the command succeeded (for `verify`: the store is clean).
pub const EXIT_OK: u8 = 0;
/// Exit status of `encryption-key verify` and `audit verify`: problems
/// remain.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status: the command failed (bad input, refused, I/O error, usage
/// error, or `verify` could not check the store). 255 as upstream's
/// proxmox-router CLIs, which end every failed command with `exit(-1)`.
pub const EXIT_ERROR: u8 = 255;

/// The exit statuses and what they mean, as `--help` and the man page
/// show them.
pub const EXIT_STATUSES: &[(&str, &str)] = &[
    (
        "0",
        "success (verify: the key store is clean; audit verify: the audit log is; export-verify: \
         every key in the bundle is intact)",
    ),
    (
        "1",
        "verify, audit verify: problems remain (after --repair: those it could not fix); see \
         the report",
    ),
    (
        "255",
        "error: bad input, operation refused, I/O error, usage error, or verify could not check; \
         one line on stderr, nothing on stdout (upstream's status for every error)",
    ),
];

/// The `Exit status:` block of `--help`.
pub fn exit_status_help() -> String {
    let mut text = "Exit status:".to_string();
    for (code, meaning) in EXIT_STATUSES {
        text.push_str(&format!("\n  {code:<4} {meaning}"));
    }
    text
}

/// The environment variables the manager reads.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "PBS_CONFIG_DIR",
        "The config directory when --config-dir is not given (default /etc/proxmox-backup).",
    ),
    (
        output::ENV_OUTPUT_FORMAT,
        "The output format when --output-format is not given: text, json or json-pretty.",
    ),
    (
        output::ENV_OUTPUT_NO_BORDER,
        "If set (to any value), text tables have no borders and no header, as with --noborder.",
    ),
    (
        output::ENV_OUTPUT_NO_HEADER,
        "If set (to any value), text tables have no header, as with --noheader.",
    ),
    ("TZ", "Time zone of the dates in text output."),
    (
        "LC_ALL, LC_CTYPE, LANG",
        "The first one set decides the table borders: box-drawing characters for a UTF-8 locale, else ASCII.",
    ),
];

/// The man page of the manager, proxmox-backup-manager(1).
pub fn man_page(bin: &str) -> manpage::Page<'static> {
    let examples = [
        (
            "Create a key and keep its only copy in a file:",
            "encryption-key create offsite-2026 --output-file /root/offsite-2026.enc",
        ),
        (
            "Import a key file from standard input:",
            "encryption-key import tape-01 --file - < tape-01.enc",
        ),
        (
            "Make a push sync job encrypt with it (its old key stays associated, for decryption):",
            "sync-job update nightly --active-encryption-key offsite-2026",
        ),
        (
            "Archived keys no sync job needs any more, the candidates for deletion:",
            "encryption-key list --unused",
        ),
        (
            "Check the key store and repair what can be repaired:",
            "encryption-key verify --repair",
        ),
        (
            "Every key into an encrypted bundle to keep off the host (then prove it with export-verify):",
            "encryption-key export --all --include-archived --output-file /root/keys.pbsx",
        ),
        (
            "Keep a checkpoint of the audit log elsewhere, and check the log against it later:",
            "audit checkpoint > /mnt/elsewhere/audit-checkpoint && proxmox-backup-manager audit verify --checkpoint /mnt/elsewhere/audit-checkpoint",
        ),
        (
            "Rotate a push job to a new key, exported and proven first, the old key kept associated and archived (after a crash: the same command again):",
            "encryption-key rotate --job pbs2-push --export-file /root/new-key.pbsx --passphrase-file /root/export.pass --archive-old",
        ),
        (
            "Ids of the active keys, for a script:",
            "--output-format json encryption-key list | jq -r '.[].id'",
        ),
        (
            "A token for the API, and what it may do:",
            "user generate-token root@pam automation && proxmox-backup-manager acl update /system/encryption-keys Admin --auth-id 'root@pam!automation'",
        ),
        (
            "Install the bash completion:",
            "generate-completion bash > /usr/share/bash-completion/completions/proxmox-backup-manager",
        ),
    ];
    manpage::Page {
        section: "1",
        exit_status: EXIT_STATUSES,
        environment: ENVIRONMENT,
        files: manpage::config_dir_files(),
        examples: examples
            .into_iter()
            .map(|(text, example)| (text, format!("{bin} {example}")))
            .collect(),
    }
}

/// Options every command takes.
#[derive(Args, Clone, Debug)]
pub struct GlobalArgs {
    /// Configuration directory [default: $PBS_CONFIG_DIR, else /etc/proxmox-backup].
    #[arg(long, global = true, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub config_dir: Option<PathBuf>,

    /// Output format [default: $PROXMOX_OUTPUT_FORMAT, else text].
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub output_format: Option<OutputFormat>,

    /// Text tables without borders and header (also: $PROXMOX_OUTPUT_NO_BORDER set).
    #[arg(long, global = true)]
    pub noborder: bool,

    /// Text tables without header (also: $PROXMOX_OUTPUT_NO_HEADER set).
    #[arg(long, global = true)]
    pub noheader: bool,
}

impl GlobalArgs {
    /// The config dir context of `--config-dir`, else the default one,
    /// acting for the administrator: what it changes is recorded in the
    /// audit log as done by `root@pam` on the CLI, run by this Unix user.
    pub fn config_dir(&self) -> Result<Arc<ConfigDir>, Error> {
        let dir = match &self.config_dir {
            Some(dir) => ConfigDir::shared(dir)?,
            None => ConfigDir::default_dir()?,
        };
        refuse_key_dir_as_config_dir(&dir)?;
        Ok(Arc::new(dir.with_caller(Caller::cli())))
    }

    /// The output of this run (options, then environment).
    pub fn output(&self) -> Result<Output, Error> {
        Output::from_options(self.output_format, self.noborder, self.noheader)
    }
}

/// Refuses a config dir that is the key directory of another (named
/// `encryption-keys`, beside that one's `encryption-keys.cfg`): a slip of
/// `--config-dir` or `$PBS_CONFIG_DIR` one level too deep, which would
/// start a second, empty store inside the key directory, its lock files
/// the `backup` user's in root's directory, and report it clean beside the
/// real key files.
fn refuse_key_dir_as_config_dir(dir: &ConfigDir) -> Result<(), Error> {
    // as the kernel resolves it: a link to a key directory is one too
    let given = dir.path("");
    let resolved = std::fs::canonicalize(&given).unwrap_or(given);
    let base = resolved.components().as_path();
    let (Some(name), Some(parent)) = (base.file_name(), base.parent()) else {
        return Ok(());
    };
    let listing = parent.join(pbs_config::files::ENCRYPTION_KEYS_CFG.name);
    if name == pbs_config::files::KEY_DIR_NAME && listing.is_file() {
        anyhow::bail!(
            "config dir {base:?} is the key directory of the config dir {parent:?} (beside its \
             {listing:?}) - give --config-dir {parent:?} (or $PBS_CONFIG_DIR)"
        );
    }
    Ok(())
}

/// An id as messages quote it: `'id'`, or escaped (`"../x\n"`) when it is
/// not a plain printable word, so an error stays one readable line.
pub fn quoted(id: &str) -> String {
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_graphic() && c != '\'') {
        format!("'{id}'")
    } else {
        format!("{id:?}")
    }
}

/// Turns a handler's parameter error ("parameter 'id': ...", which names an
/// API parameter) into a CLI error saying what failed: `what(name)` gives
/// the context for the offending parameter. Other errors already say what
/// failed and are returned as they are.
///
/// The context is said once: a parameter error that starts with its own
/// "failed to VERB OBJECT 'ID'" layer (the library's) loses that layer,
/// since `what` says the same for the command ("failed to import encryption
/// key 'x' from FILE - failed to store encryption key 'x' - ..." would
/// repeat it).
pub fn param_context(err: Error, what: impl Fn(&str) -> String) -> Error {
    let Some(param) = err.downcast_ref::<ParameterError>() else {
        return err;
    };
    let text = param
        .errors()
        .iter()
        .map(|(name, err)| format!("{} - {}", what(name), without_own_context(&err.to_string())))
        .collect::<Vec<_>>()
        .join("; ");
    format_err!("{text}")
}

/// `message` without a leading "failed to ... 'ID' - " layer.
fn without_own_context(message: &str) -> &str {
    match message.split_once(" - ") {
        Some((first, rest)) if first.starts_with("failed to ") && first.ends_with('\'') => rest,
        _ => message,
    }
}
