//! Manual pages in roff: proxmox-backup-manager(1) and
//! proxmox-backup-api(8). Both binaries include this module (the daemon
//! with `#[path]`), so the two pages share one renderer and one list of the
//! config dir's files.
//!
//! Built from the clap definitions: clap_mangen renders the title, name,
//! synopsis, description and options; the COMMANDS section (one subsection
//! per command, with its usage, description and options) and the EXIT
//! STATUS, ENVIRONMENT, FILES and EXAMPLES sections are rendered here with
//! the roff crate, which escapes the text. Help texts are plain text, not
//! Markdown: a backtick in one is rendered as is, and a test refuses it.

use anyhow::Error;
use roff::{Roff, bold, italic, roman};

use pbs_config::files::{self, FileClass};

/// What a page has beyond what clap knows.
pub struct Page<'a> {
    /// Manual section ("1" for a command, "8" for a daemon).
    pub section: &'a str,
    /// Exit status → meaning.
    pub exit_status: &'a [(&'a str, &'a str)],
    /// Environment variable → meaning.
    pub environment: &'a [(&'a str, &'a str)],
    /// File (path) → meaning.
    pub files: Vec<(String, String)>,
    /// What an example does → the command line.
    pub examples: Vec<(&'a str, String)>,
}

/// Every file of the config dir the keystore reads or writes, with its
/// owner, mode and use: from pbs-config's table of files
/// (`pbs_config::files`), so a new or renamed file cannot be missed here.
pub fn config_dir_files() -> Vec<(String, String)> {
    let dir = pbs_config::DEFAULT_CONFIG_DIR;
    let key_dir = files::KEY_DIR_NAME;
    let who = |class: FileClass| match class {
        FileClass::Config => "root:backup",
        FileClass::Private => "root:root",
        FileClass::BackupConfig | FileClass::Lock => "backup:backup",
    };
    let owner = |class: FileClass| format!("{:04o} {}", class.mode(), who(class));
    let mut out: Vec<(String, String)> = files::ALL
        .iter()
        .map(|file| {
            (
                file.name.to_string(),
                format!("{}; {}.", capitalized(file.what), owner(file.class)),
            )
        })
        .collect();
    out.extend([
        (
            format!("{key_dir}/"),
            format!(
                "The key directory; {:04o} root:backup, created with the first key.",
                files::KEY_DIR_MODE
            ),
        ),
        (
            format!("{key_dir}/{}", files::key_file_name("ID")),
            format!("One key file (KeyConfig JSON) per key; {}.", owner(files::KEY_FILE_CLASS)),
        ),
        (
            format!("{key_dir}/{}", files::key_lock_name("ID")),
            format!("Lock of one key file; {}, removed with the key.", owner(files::KEY_LOCK_CLASS)),
        ),
        (
            format!("{key_dir}/{}/", files::TRASH_DIR_NAME),
            format!(
                "The trash: removed and repaired-away key files, each with a JSON record, kept \
                 until encryption-key trash purge; {:04o} {}.",
                files::TRASH_DIR_MODE,
                who(files::TRASH_CLASS)
            ),
        ),
        (
            format!("{key_dir}/{}/", files::ROTATE_DIR_NAME),
            format!(
                "The journals of the key rotations in progress (JOB.json, one per rotation) and \
                 their lock; {:04o} {}. A journal is removed when its rotation ends.",
                files::ROTATE_DIR_MODE,
                who(files::ROTATE_CLASS)
            ),
        ),
        (
            "*.tmp_XXXXXX".to_string(),
            "A file being replaced: written beside it, then renamed over it; one left by a crash is \
             removed by encryption-key verify --repair (moved into the trash if it holds key \
             material)."
                .to_string(),
        ),
    ]);
    out.into_iter()
        .map(|(name, text)| (format!("{dir}/{name}"), text))
        .collect()
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The man page of `cmd` as roff text.
pub fn render(mut cmd: clap::Command, page: &Page) -> Result<String, Error> {
    // build: sets each subcommand's full name and copies global options down
    cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let bin = cmd.get_name().to_string();
    let man = clap_mangen::Man::new(cmd.clone())
        .section(page.section)
        .manual("Proxmox Backup Server keystore")
        .source(format!("{bin} {}", env!("CARGO_PKG_VERSION")));

    let mut out: Vec<u8> = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;

    let mut roff = Roff::new();
    let commands: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .collect();
    if !commands.is_empty() {
        roff.control("SH", ["COMMANDS"]);
        roff.text([roman(
            "Every command also takes the global options above (--config-dir, --output-format, --noborder, --noheader).",
        )]);
        for sub in commands {
            render_command(&mut roff, sub, &bin);
        }
    }
    render_list(
        &mut roff,
        "EXIT STATUS",
        page.exit_status.iter().copied(),
        bold,
    );
    render_list(
        &mut roff,
        "ENVIRONMENT",
        page.environment.iter().copied(),
        bold,
    );
    let files = page.files.iter().map(|(f, t)| (f.as_str(), t.as_str()));
    render_list(&mut roff, "FILES", files, italic);
    render_examples(&mut roff, &page.examples);
    out.extend_from_slice(roff.to_roff().as_bytes());

    man.render_version_section(&mut out)?;
    Ok(String::from_utf8(out)?)
}

/// A section of tagged paragraphs: the tag in `style`, then the text.
fn render_list<'a>(
    roff: &mut Roff,
    title: &str,
    items: impl Iterator<Item = (&'a str, &'a str)>,
    style: fn(&'a str) -> roff::Inline,
) {
    let items: Vec<(&str, &str)> = items.collect();
    if items.is_empty() {
        return;
    }
    roff.control("SH", [title]);
    for (tag, text) in items {
        roff.control("TP", []);
        roff.text([style(tag)]);
        roff.text([roman(text)]);
    }
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
    let aliases: Vec<&str> = cmd.get_visible_aliases().collect();
    if !aliases.is_empty() {
        roff.control("PP", []);
        roff.text([roman(format!("Alias: {}.", aliases.join(", ")))]);
    }
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
        render_arg(roff, arg);
    }
}

fn render_arg(roff: &mut Roff, arg: &clap::Arg) {
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
        Some(long) if value.is_empty() || !arg.get_action().takes_values() => {
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
    let values = possible_values(arg);
    if !values.is_empty() && arg.get_action().takes_values() {
        if !help.is_empty() && !help.ends_with('.') {
            help.push('.');
        }
        help.push_str(&format!(" One of: {}.", values.join(", ")));
    }
    roff.text([roman(help)]);
}

/// The values an argument takes, as clap lists them (hidden ones left
/// out): what the man page names and completion offers.
pub fn possible_values(arg: &clap::Arg) -> Vec<String> {
    arg.get_possible_values()
        .iter()
        .filter(|value| !value.is_hide_set())
        .map(|value| value.get_name().to_string())
        .collect()
}

fn render_examples(roff: &mut Roff, examples: &[(&str, String)]) {
    if examples.is_empty() {
        return;
    }
    roff.control("SH", ["EXAMPLES"]);
    for (text, example) in examples {
        roff.control("PP", []);
        roff.text([roman(*text)]);
        roff.control("RS", ["4"]);
        roff.control("nf", []);
        roff.text([bold(example.as_str())]);
        roff.control("fi", []);
        roff.control("RE", []);
    }
}
