//! `proxmox-backup-manager sync-job ...`: list and show sync jobs, and tie
//! them to encryption keys (`update`).
//!
//! Calls the handlers of `pbs_keystore::api2::config::sync`; creating and
//! removing jobs is outside this keystore slice.

use std::process::ExitCode;

use anyhow::Error;
use clap::{ArgGroup, Subcommand, ValueEnum};

use pbs_api_types::SyncJobConfig;
use pbs_keystore::api2::config::sync::{self, DeletableProperty};

use super::{EXIT_OK, GlobalArgs, param_context, quoted, render_fields, render_table};

/// Sync job commands.
#[derive(Subcommand)]
pub enum SyncJobCommand {
    /// List sync jobs.
    List,
    /// Show a sync job.
    Show {
        /// Job id.
        #[arg(value_name = "JOB_ID")]
        id: String,
    },
    /// Set or clear the encryption keys of a sync job.
    ///
    /// --associated-key replaces the whole list of associated keys; repeat
    /// it to name several. Keys named must exist, and an active key must not
    /// be archived.
    #[command(group(
        ArgGroup::new("change")
            .required(true)
            .multiple(true)
            .args(["active_encryption_key", "associated_key", "delete"])
    ))]
    Update {
        /// Job id.
        #[arg(value_name = "JOB_ID")]
        id: String,
        /// The key the job encrypts with.
        #[arg(long, value_name = "KEY_ID")]
        active_encryption_key: Option<String>,
        /// A key the job may still need to decrypt older backups (repeat
        /// for several; replaces the list).
        #[arg(long, value_name = "KEY_ID")]
        associated_key: Vec<String>,
        /// Clear a property (repeat for both).
        #[arg(long, value_enum, value_name = "PROPERTY")]
        delete: Vec<CliDeletableProperty>,
    },
}

/// Properties `sync-job update --delete` clears.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CliDeletableProperty {
    /// The active encryption key.
    ActiveEncryptionKey,
    /// The list of associated keys.
    AssociatedKey,
}

impl From<CliDeletableProperty> for DeletableProperty {
    fn from(property: CliDeletableProperty) -> Self {
        match property {
            CliDeletableProperty::ActiveEncryptionKey => DeletableProperty::ActiveEncryptionKey,
            CliDeletableProperty::AssociatedKey => DeletableProperty::AssociatedKey,
        }
    }
}

/// Runs a sync job command.
pub fn run(global: &GlobalArgs, cmd: SyncJobCommand) -> Result<ExitCode, Error> {
    let dir = global.config_dir()?;
    match cmd {
        SyncJobCommand::List => {
            let jobs = sync::list_sync_jobs(&dir)?;
            global.print(&jobs, |jobs| render_job_table(jobs))?;
        }
        SyncJobCommand::Show { id } => {
            let job = sync::read_sync_job(&dir, &id)
                .map_err(|err| param_context(err, |_| "failed to show sync job".into()))?;
            global.print(&job, render_job)?;
        }
        SyncJobCommand::Update {
            id,
            active_encryption_key,
            associated_key,
            delete,
        } => {
            let delete: Vec<DeletableProperty> = delete.into_iter().map(Into::into).collect();
            let associated = (!associated_key.is_empty()).then_some(associated_key);
            let job = sync::update_sync_job_keys(
                &dir,
                &id,
                active_encryption_key.as_deref(),
                associated,
                &delete,
                None,
            )
            .map_err(|err| {
                param_context(err, |param| match param {
                    "id" => "failed to update sync job".to_string(),
                    _ => format!("failed to update sync job {}", quoted(&id)),
                })
            })?;
            global.print(&job, |job| {
                format!("updated sync job '{}'\n{}", job.id, render_job(job))
            })?;
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
}

fn render_job_table(jobs: &[SyncJobConfig]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|job| {
            vec![
                job.id.clone(),
                job.store.clone(),
                or_dash(job.remote.as_deref()),
                job.remote_store.clone(),
                or_dash(job.active_encryption_key.as_deref()),
                job.associated_key
                    .as_ref()
                    .map(|keys| keys.join(","))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    render_table(
        &[
            "ID",
            "STORE",
            "REMOTE",
            "REMOTE-STORE",
            "ACTIVE-ENCRYPTION-KEY",
            "ASSOCIATED-KEYS",
        ],
        &rows,
    )
}

/// Every property the job has, as `name: value` lines in wire names.
fn render_job(job: &SyncJobConfig) -> String {
    let value = serde_json::to_value(job).unwrap_or_default();
    // the id first, then the other properties in name order
    let mut fields: Vec<(&str, String)> = vec![("id", job.id.clone())];
    fields.extend(
        value
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(name, _)| *name != "id")
            .map(|(name, value)| {
                let text = match value {
                    serde_json::Value::String(text) => text.clone(),
                    serde_json::Value::Array(items) => items
                        .iter()
                        .map(|item| match item {
                            serde_json::Value::String(text) => text.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    other => other.to_string(),
                };
                (name.as_str(), text)
            }),
    );
    render_fields(&fields)
}
