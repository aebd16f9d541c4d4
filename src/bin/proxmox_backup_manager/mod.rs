//! Command modules of `proxmox-backup-manager`, one per object, plus the
//! options and output helpers they share.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Error;
use clap::{Args, ValueEnum};
use serde::Serialize;

use pbs_config::ConfigDir;

pub mod acl;
pub mod encryption_key;
pub mod sync_job;
pub mod user;

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
    #[arg(long, global = true, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,

    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output_format: OutputFormat,
}

impl GlobalArgs {
    /// The config dir context of `--config-dir`, else the default one.
    pub fn config_dir(&self) -> Result<Arc<ConfigDir>, Error> {
        match &self.config_dir {
            Some(dir) => ConfigDir::shared(dir),
            None => ConfigDir::default_dir(),
        }
    }

    /// Prints `value` as JSON in the JSON formats, or calls `text` to print
    /// it for humans.
    pub fn print<T: Serialize>(&self, value: &T, text: impl FnOnce(&T)) -> Result<(), Error> {
        match self.output_format {
            OutputFormat::Text => text(value),
            OutputFormat::Json => println!("{}", serde_json::to_string(value)?),
            OutputFormat::JsonPretty => println!("{}", serde_json::to_string_pretty(value)?),
        }
        Ok(())
    }
}
