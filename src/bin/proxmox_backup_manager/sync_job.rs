//! `proxmox-backup-manager sync-job ...`

use std::process::ExitCode;

use anyhow::Error;
use clap::Subcommand;

use super::GlobalArgs;

/// Sync job commands.
#[derive(Subcommand)]
pub enum SyncJobCommand {
    /// List sync jobs.
    List,
}

/// Runs a sync job command.
pub fn run(global: &GlobalArgs, cmd: SyncJobCommand) -> Result<ExitCode, Error> {
    let dir = global.config_dir()?;
    match cmd {
        SyncJobCommand::List => {
            let jobs = dir.sync_jobs().list_jobs()?;
            global.print(&jobs, |jobs| {
                for job in jobs {
                    println!("{}", job.id);
                }
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
