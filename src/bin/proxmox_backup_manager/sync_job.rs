//! `proxmox-backup-manager sync-job ...`: list and show sync jobs, and tie
//! them to encryption keys (`update`).
//!
//! Calls the handlers of `pbs_keystore::api2::config::sync`; creating and
//! removing jobs is outside this keystore slice.

use std::process::ExitCode;

use anyhow::Error;
use clap::{ArgGroup, Subcommand, ValueEnum};

use pbs_keystore::api2::config::sync::{self, DeletableProperty};

use super::output::{Column, Output, Table, render};
use super::{EXIT_OK, GlobalArgs, param_context, quoted};

/// `list`: what ties jobs to keys; several associated keys stack in the
/// cell, one per line, so the table stays narrow.
const JOB_TABLE: Table = Table::new(&[
    Column::new("id"),
    Column::new("store"),
    Column::new("remote"),
    Column::new("remote-store"),
    Column::new("active-encryption-key"),
    Column::new("associated-key").render(render::lines),
]);

/// `show`: the id and the key properties first, then every other property.
const JOB_FIELDS: Table = Table::new(&[
    Column::new("id"),
    Column::new("active-encryption-key"),
    Column::new("associated-key"),
])
.with_rest();

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
pub fn run(global: &GlobalArgs, out: &Output, cmd: SyncJobCommand) -> Result<ExitCode, Error> {
    let dir = global.config_dir()?;
    match cmd {
        SyncJobCommand::List => {
            let jobs = sync::list_sync_jobs(&dir)?;
            out.list(&jobs, &JOB_TABLE)?;
        }
        SyncJobCommand::Show { id } => {
            let job = sync::read_sync_job(&dir, &id)
                .map_err(|err| param_context(err, |_| "failed to show sync job".into()))?;
            out.object(&job, &JOB_FIELDS)?;
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
            out.message(&job, |job| {
                let table = serde_json::to_value(job)
                    .map(|record| out.render_object(&record, &JOB_FIELDS))
                    .unwrap_or_default();
                format!("updated sync job '{}'\n{table}", job.id)
            })?;
        }
    }
    Ok(ExitCode::from(EXIT_OK))
}
