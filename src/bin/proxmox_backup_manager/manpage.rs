//! `generate-man`: the manual page, proxmox-backup-manager(1), in roff.
//!
//! Built from the clap definitions: clap_mangen renders the title, name,
//! synopsis, description and global options; the COMMANDS section (one
//! subsection per command, with its usage, description and options) and
//! the EXIT STATUS, ENVIRONMENT, FILES and EXAMPLES sections are rendered
//! here with the roff crate, which escapes the text.

use std::process::ExitCode;

use anyhow::Error;
use roff::{Roff, bold, italic, roman};

use super::EXIT_OK;
use super::output::write_stdout;

/// Prints the man page of `cmd`.
pub fn generate(cmd: clap::Command) -> Result<ExitCode, Error> {
    write_stdout(&render(cmd)?)?;
    Ok(ExitCode::from(EXIT_OK))
}

/// The man page of `cmd` as roff text.
pub fn render(mut cmd: clap::Command) -> Result<String, Error> {
    // build: sets each subcommand's full name and copies global options down
    cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let bin = cmd.get_name().to_string();
    let man = clap_mangen::Man::new(cmd.clone())
        .section("1")
        .manual("Proxmox Backup Server keystore")
        .source(format!("{bin} {}", env!("CARGO_PKG_VERSION")));

    let mut out: Vec<u8> = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;

    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    roff.text([roman(
        "Every command also takes the global options above (--config-dir, --output-format).",
    )]);
    for sub in cmd.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        render_command(&mut roff, sub, &bin);
    }
    render_exit_status(&mut roff);
    render_environment(&mut roff);
    render_examples(&mut roff, &bin);
    out.extend_from_slice(roff.to_roff().as_bytes());

    man.render_version_section(&mut out)?;
    Ok(String::from_utf8(out)?)
}

/// A subsection for `cmd` if it is a leaf, else recurse into its children.
fn render_command(roff: &mut Roff, cmd: &clap::Command, prefix: &str) {
    let name = format!("{prefix} {}", cmd.get_name());
    if cmd.has_subcommands() {
        for sub in cmd.get_subcommands().filter(|sub| !sub.is_hide_set()) {
            render_command(roff, sub, &name);
        }
        return;
    }
    let title = name.split_once(' ').map(|(_, rest)| rest).unwrap_or(&name);
    roff.control("SS", [title]);
    let usage = cmd
        .clone()
        .render_usage()
        .to_string()
        .trim_start_matches("Usage: ")
        .to_string();
    roff.text([bold(usage)]);
    let about = cmd
        .get_long_about()
        .or_else(|| cmd.get_about())
        .map(|text| text.to_string())
        .unwrap_or_default();
    for paragraph in about.split("\n\n") {
        roff.control("PP", []);
        roff.text([roman(paragraph.replace('\n', " "))]);
    }
    let args: Vec<&clap::Arg> = cmd
        .get_arguments()
        .filter(|arg| !arg.is_hide_set() && !arg.is_global_set())
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .collect();
    for arg in args {
        roff.control("TP", []);
        let value = arg
            .get_value_names()
            .map(|names| {
                names
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        match arg.get_long() {
            Some(long) if value.is_empty() || !takes_value(arg) => {
                roff.text([bold(format!("--{long}"))]);
            }
            Some(long) => {
                roff.text([bold(format!("--{long} ")), italic(value)]);
            }
            None => {
                roff.text([italic(value)]);
            }
        }
        let mut help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(|text| text.to_string())
            .unwrap_or_default()
            .replace('\n', " ");
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|value| !value.is_hide_set())
            .map(|value| value.get_name().to_string())
            .collect();
        if !values.is_empty() && takes_value(arg) {
            if !help.is_empty() && !help.ends_with('.') {
                help.push('.');
            }
            help.push_str(&format!(" One of: {}.", values.join(", ")));
        }
        roff.text([roman(help)]);
    }
}

fn takes_value(arg: &clap::Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values())
}

fn render_exit_status(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    for (code, text) in [
        (
            "0",
            "Success. For encryption-key verify: the key store is clean.",
        ),
        (
            "1",
            "encryption-key verify found problems that remain (after --repair: that it could not fix).",
        ),
        (
            "2",
            "Error: invalid arguments or ids, unknown key or job, an operation the key store refuses \
             (key in use, not archived, already exists, ...), an I/O error, or verify could not check \
             the store. The error is printed to stderr as one line; nothing is printed to stdout.",
        ),
    ] {
        roff.control("TP", []);
        roff.text([bold(code)]);
        roff.text([roman(text)]);
    }
}

fn render_environment(roff: &mut Roff) {
    roff.control("SH", ["ENVIRONMENT"]);
    roff.control("TP", []);
    roff.text([bold("PBS_CONFIG_DIR")]);
    roff.text([roman(
        "The config directory when --config-dir is not given (default /etc/proxmox-backup).",
    )]);
    roff.control("TP", []);
    roff.text([bold("TZ")]);
    roff.text([roman("Time zone of the dates in text output.")]);
    roff.control("SH", ["FILES"]);
    for (file, text) in [
        (
            "/etc/proxmox-backup/encryption-keys.cfg",
            "The key list (section config, type sync-key); 0640 root:backup.",
        ),
        (
            "/etc/proxmox-backup/encryption-keys/ID.enc",
            "One key file (KeyConfig JSON) per key; 0640 root:backup.",
        ),
        (
            "/etc/proxmox-backup/sync.cfg",
            "Sync jobs, which name their active-encryption-key and associated-key.",
        ),
    ] {
        roff.control("TP", []);
        roff.text([italic(file)]);
        roff.text([roman(text)]);
    }
}

fn render_examples(roff: &mut Roff, bin: &str) {
    roff.control("SH", ["EXAMPLES"]);
    for (text, example) in [
        (
            "Create a key and keep its only copy in a file:",
            format!(
                "{bin} encryption-key create offsite-2026 --output-file /root/offsite-2026.enc"
            ),
        ),
        (
            "Import a key file from standard input:",
            format!("{bin} encryption-key import tape-01 --file - < tape-01.enc"),
        ),
        (
            "Make a sync job encrypt with it, keeping the old key for decryption:",
            format!(
                "{bin} sync-job update nightly --active-encryption-key offsite-2026 --associated-key offsite-2025"
            ),
        ),
        (
            "Check the key store and repair what can be repaired:",
            format!("{bin} encryption-key verify --repair"),
        ),
        (
            "Install the bash completion:",
            format!(
                "{bin} generate-completion bash > /usr/share/bash-completion/completions/{bin}"
            ),
        ),
    ] {
        roff.control("PP", []);
        roff.text([roman(text)]);
        roff.control("RS", ["4"]);
        roff.control("nf", []);
        roff.text([bold(example)]);
        roff.control("fi", []);
        roff.control("RE", []);
    }
}
