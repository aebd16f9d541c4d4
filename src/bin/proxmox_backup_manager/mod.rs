//! Command modules of `proxmox-backup-manager`, one per object, plus the
//! options, output helpers and exit statuses they share.
//!
//! Output rule: a command computes everything first and writes to stdout
//! only once it has succeeded, in one write, so a failing command prints
//! nothing on stdout (the error goes to stderr, see `main`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Error, format_err};
use clap::{Args, ValueEnum};
use serde::Serialize;

use proxmox_schema::ParameterError;

use pbs_config::ConfigDir;

pub mod acl;
pub mod completion;
pub mod encryption_key;
pub mod manpage;
pub mod sync_job;
pub mod user;

/// Exit status: the command succeeded (for `verify`: the store is clean).
pub const EXIT_OK: u8 = 0;
/// Exit status of `encryption-key verify`: problems remain.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status: the command failed (bad input, refused, I/O error, or
/// `verify` could not check the store); also clap's status for usage errors.
pub const EXIT_ERROR: u8 = 2;

/// The exit statuses, as `--help` and the man page show them.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success (verify: the key store is clean)
  1  verify: problems remain (see the report)
  2  error: bad input, operation refused, I/O error, usage error, or verify could not check";

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// Compact JSON.
    Json,
    /// Indented JSON.
    JsonPretty,
}

/// Options every command takes.
#[derive(Args, Clone, Debug)]
pub struct GlobalArgs {
    /// Configuration directory [default: $PBS_CONFIG_DIR, else /etc/proxmox-backup].
    #[arg(long, global = true, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub config_dir: Option<PathBuf>,

    /// Output format.
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        default_value_t = OutputFormat::Text
    )]
    pub output_format: OutputFormat,
}

/// What a text renderer passed to [`GlobalArgs::print`] returns: the text
/// itself (written in one piece), or `()` when the closure printed already.
pub trait TextOutput {
    /// Writes the text, if any, to stdout.
    fn emit(self) -> Result<(), Error>;
}

impl TextOutput for () {
    fn emit(self) -> Result<(), Error> {
        Ok(())
    }
}

impl TextOutput for String {
    fn emit(self) -> Result<(), Error> {
        write_stdout(&self)
    }
}

impl GlobalArgs {
    /// The config dir context of `--config-dir`, else the default one.
    pub fn config_dir(&self) -> Result<Arc<ConfigDir>, Error> {
        match &self.config_dir {
            Some(dir) => ConfigDir::shared(dir),
            None => ConfigDir::default_dir(),
        }
    }

    /// Prints `value` as JSON in the JSON formats, or calls `text` for
    /// humans. `text` should return the text (a `String`) rather than print
    /// it, so that it is written in one piece.
    pub fn print<T: Serialize, R: TextOutput>(
        &self,
        value: &T,
        text: impl FnOnce(&T) -> R,
    ) -> Result<(), Error> {
        match self.output_format {
            OutputFormat::Text => text(value).emit(),
            OutputFormat::Json => write_stdout(&(serde_json::to_string(value)? + "\n")),
            OutputFormat::JsonPretty => {
                write_stdout(&(serde_json::to_string_pretty(value)? + "\n"))
            }
        }
    }
}

/// Writes `text` to stdout in one piece and flushes it.
pub fn write_stdout(text: &str) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|err| format_err!("unable to write to standard output - {err}"))
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
pub fn param_context(err: Error, what: impl Fn(&str) -> String) -> Error {
    let Some(param) = err.downcast_ref::<ParameterError>() else {
        return err;
    };
    let text = param
        .errors()
        .iter()
        .map(|(name, err)| format!("{} - {err}", what(name)))
        .collect::<Vec<_>>()
        .join("; ");
    format_err!("{text}")
}

/// An epoch as local time, `2025-01-01 00:00:00 +00:00` (honours `TZ`).
pub fn render_epoch(epoch: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(epoch, 0).single() {
        Some(time) => time.format("%Y-%m-%d %H:%M:%S %:z").to_string(),
        None => epoch.to_string(),
    }
}

/// A table with a header line and columns padded to the widest cell; the
/// last column is not padded.
pub fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

/// Key-value lines (`name: value`), names padded to the widest.
pub fn render_fields(fields: &[(&str, String)]) -> String {
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
