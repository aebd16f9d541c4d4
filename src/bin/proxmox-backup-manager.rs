//! `proxmox-backup-manager`: the administrator's command line.
//!
//! Every command takes `--config-dir DIR` (default `$PBS_CONFIG_DIR`, else
//! `/etc/proxmox-backup`), `--output-format text|json|json-pretty` and
//! `--noborder`/`--noheader` (see `proxmox_backup_manager::output`).
//! Errors go to stderr as one line, and the exit status is non-zero; nothing
//! is printed to stdout on failure. Exit statuses: 0 success, 1 `verify`
//! or `audit verify` found problems, 255 error, as upstream (see
//! [`proxmox_backup_manager::EXIT_STATUSES`]).

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod proxmox_backup_manager;

use proxmox_backup_manager::output::{OutputFormat, write_stdout};
use proxmox_backup_manager::{
    EXIT_ERROR, EXIT_OK, GlobalArgs, acl, audit, completion, encryption_key, exit_status_help,
    man_page, manpage, sync_job, user,
};

// glibc malloc unless built with the opt-in feature `mimalloc`, which
// parses configs faster but left the daemon with several times the memory
// (docs/performance.md has the figures of both).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Manage the keystore of a Proxmox Backup Server style backup server.
#[derive(Parser)]
#[command(
    name = "proxmox-backup-manager",
    version,
    propagate_version = true,
    after_help = exit_status_help()
)]
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
    /// Manage users and API tokens.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage access control lists.
    #[command(subcommand)]
    Acl(acl::AclCommand),
    /// Read and verify the audit log of key, user, token and ACL changes.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Print a shell completion script to stdout.
    ///
    /// The bash script completes commands, options and their values: key,
    /// job, user, token and ACL path ids from the config dir given by
    /// --config-dir on the command line being completed (else the
    /// default), and role names. Install it as
    /// /usr/share/bash-completion/completions/proxmox-backup-manager.
    GenerateCompletion {
        /// The shell.
        #[arg(value_enum)]
        shell: completion::CompletionShell,
    },
    /// Print the manual page (roff) to stdout.
    GenerateMan,
    /// Print ids, one per line, for the completion script; prints nothing
    /// and succeeds on any error.
    #[command(name = "__complete", hide = true)]
    Complete {
        /// What to list.
        #[arg(value_enum)]
        kind: completion::CompleteKind,
        /// For token-names: only this user's tokens.
        user: Option<String>,
    },
}

/// clap's usage error as one line (it spreads it over several, with the
/// usage), pointing at the help.
fn usage_error_line(err: &clap::Error) -> String {
    if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        return "a command is missing - see 'proxmox-backup-manager help'".to_string();
    }
    let rendered = err.render().to_string();
    let detail: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .filter(|line| !line.is_empty())
        .collect();
    let detail = detail.join(" ");
    let detail = detail.trim_start_matches("error: ");
    format!("{detail} - see 'proxmox-backup-manager help'")
}

fn main() -> ExitCode {
    // a large config, and the tables its parse builds, in huge pages:
    // fewer new pages for a process that reads it once (a compaction stall
    // delays this command alone)
    proxmox_sys::huge_pages::enable();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version: to stdout, as clap does
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("Error: {}", usage_error_line(&err));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    // html is a paperkey's form, not an output format of other commands
    let takes_html = matches!(
        cli.command,
        Command::EncryptionKey(encryption_key::EncryptionKeyCommand::Paperkey(_))
    );
    let result = cli.global.output().and_then(|out| {
        if out.format() == OutputFormat::Html && !takes_html {
            anyhow::bail!(
                "output format html is for 'encryption-key paperkey' only - use text, json or \
                 json-pretty"
            );
        }
        Ok(out)
    });
    let result = result.and_then(|out| match cli.command {
        Command::EncryptionKey(cmd) => encryption_key::run(&cli.global, &out, cmd),
        Command::SyncJob(cmd) => sync_job::run(&cli.global, &out, cmd),
        Command::User(cmd) => user::run(&cli.global, &out, cmd),
        Command::Acl(cmd) => acl::run(&cli.global, &out, cmd),
        Command::Audit(cmd) => audit::run(&cli.global, &out, cmd),
        Command::GenerateCompletion { shell } => completion::generate(shell, Cli::command()),
        Command::GenerateMan => {
            manpage::render(Cli::command(), &man_page("proxmox-backup-manager"))
                .and_then(|page| write_stdout(&page))
                .map(|()| ExitCode::from(EXIT_OK))
        }
        Command::Complete { kind, user } => {
            Ok(completion::complete(&cli.global, kind, user.as_deref()))
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            // one line, whatever the message holds
            let text = err.to_string();
            let line: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("Error: {}", line.join(" - "));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
