//! Command modules of `proxmox-backup-manager`, one per object, plus the
//! options and exit statuses they share. Every command prints through the
//! one output layer, [`output`] (read its header before adding a command).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Error, format_err};
use clap::Args;

use proxmox_schema::ParameterError;

use pbs_config::ConfigDir;

pub mod acl;
pub mod completion;
pub mod encryption_key;
pub mod manpage;
pub mod output;
pub mod sync_job;
pub mod terminal;
pub mod user;

use output::{Output, OutputFormat};

/// Exit status: the command succeeded (for `verify`: the store is clean).
pub const EXIT_OK: u8 = 0;
/// Exit status of `encryption-key verify`: problems remain.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status: the command failed (bad input, refused, I/O error, usage
/// error, or `verify` could not check the store). 255 as upstream's
/// proxmox-router CLIs, which end every failed command with `exit(-1)`.
pub const EXIT_ERROR: u8 = 255;

/// The exit statuses, as `--help` and the man page show them.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0    success (verify: the key store is clean)
  1    verify: problems remain (see the report)
  255  error: bad input, operation refused, I/O error, usage error, or verify could not check (as upstream)";

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
    /// The config dir context of `--config-dir`, else the default one.
    pub fn config_dir(&self) -> Result<Arc<ConfigDir>, Error> {
        match &self.config_dir {
            Some(dir) => ConfigDir::shared(dir),
            None => ConfigDir::default_dir(),
        }
    }

    /// The output of this run (options, then environment).
    pub fn output(&self) -> Result<Output, Error> {
        Output::from_options(self.output_format, self.noborder, self.noheader)
    }
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
