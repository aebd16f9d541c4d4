//! `proxmox-backup-manager`: the administrator's command line.
//!
//! Every command takes `--config-dir DIR` (default `$PBS_CONFIG_DIR`, else
//! `/etc/proxmox-backup`) and `--output-format text|json|json-pretty`.
//! Errors go to stderr as one line, and the exit status is non-zero; nothing
//! is printed to stdout on failure.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod proxmox_backup_manager;

use proxmox_backup_manager::{GlobalArgs, acl, encryption_key, sync_job, user};

/// Manage the keystore of a Proxmox Backup Server style backup server.
#[derive(Parser)]
#[command(name = "proxmox-backup-manager", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage encryption keys.
    #[command(subcommand)]
    EncryptionKey(encryption_key::EncryptionKeyCommand),
    /// Tie sync jobs to encryption keys.
    #[command(subcommand)]
    SyncJob(sync_job::SyncJobCommand),
    // user and acl commands are registered here (issue 6)
    /// Manage users and API tokens.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage access control lists.
    #[command(subcommand)]
    Acl(acl::AclCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::EncryptionKey(cmd) => encryption_key::run(&cli.global, cmd),
        Command::SyncJob(cmd) => sync_job::run(&cli.global, cmd),
        Command::User(cmd) => user::run(&cli.global, cmd),
        Command::Acl(cmd) => acl::run(&cli.global, cmd),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err}");
            ExitCode::FAILURE
        }
    }
}
