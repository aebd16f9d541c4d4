//! `proxmox-backup-manager encryption-key ...`

use std::process::ExitCode;

use anyhow::Error;
use clap::Subcommand;

use pbs_keystore::api2::config::encryption_keys;

use super::GlobalArgs;

/// Encryption key commands.
#[derive(Subcommand)]
pub enum EncryptionKeyCommand {
    /// List encryption keys.
    List {
        /// Also list archived keys.
        #[arg(long)]
        include_archived: bool,
    },
}

/// Runs an encryption key command.
pub fn run(global: &GlobalArgs, cmd: EncryptionKeyCommand) -> Result<ExitCode, Error> {
    let dir = global.config_dir()?;
    match cmd {
        EncryptionKeyCommand::List { include_archived } => {
            let (list, _digest) = encryption_keys::list_keys(&dir, include_archived, |_| true)?;
            global.print(&list, |list| {
                for key in list {
                    println!("{}", key.id);
                }
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
