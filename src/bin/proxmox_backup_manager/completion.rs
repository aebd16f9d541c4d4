//! Shell completion: `generate-completion bash` and the hidden
//! `__complete KIND [USERID]` the generated script calls.
//!
//! The script is generated from the clap definitions, so new commands and
//! options complete without changes here. Ids are completed by an
//! argument's value name (positional or option value): `KEY_ID`, `JOB_ID`,
//! `USERID`, `AUTH_ID` (users and tokens), `TOKEN_NAME` (the tokens of the
//! command's first positional, the user) and `ACL_PATH` are looked up at
//! completion time: the script runs `proxmox-backup-manager [--config-dir
//! DIR] __complete KIND [USERID]`, with the `--config-dir` of the command
//! line being completed, and offers what it prints. `ROLE` completes the
//! role names, which are fixed and written into the script. A new argument
//! gets completion by using one of these value names.
//!
//! Why not clap_complete's bash generator: its 4.6 output does not complete
//! subcommands of a binary whose name contains '-' (the case labels it
//! generates do not match the command path it computes), it offers hidden
//! commands, and it has no hook for values that must be looked up at
//! completion time.
//!
//! `__complete` is silent: whatever goes wrong (no config dir, unreadable or
//! broken config), it prints nothing and exits 0, so a completion never
//! shows an error in the middle of a command line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Error;
use clap::{ValueEnum, ValueHint};

use pbs_api_types::{ROLES, Userid};

use super::output::write_stdout;
use super::{EXIT_OK, GlobalArgs};

/// Shells `generate-completion` supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    /// GNU bash (4.0 or later).
    Bash,
}

/// What `__complete` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompleteKind {
    /// Ids of all encryption keys, archived ones too.
    KeyIds,
    /// Ids of all sync jobs.
    JobIds,
    /// User ids (root@pam too).
    UserIds,
    /// User ids and API token ids.
    AuthIds,
    /// API token names (of the user given, else of every user).
    TokenNames,
    /// ACL paths: the keystore's paths, each key's, and those in acl.cfg.
    AclPaths,
}

impl CompleteKind {
    fn name(self) -> &'static str {
        match self {
            CompleteKind::KeyIds => "key-ids",
            CompleteKind::JobIds => "job-ids",
            CompleteKind::UserIds => "user-ids",
            CompleteKind::AuthIds => "auth-ids",
            CompleteKind::TokenNames => "token-names",
            CompleteKind::AclPaths => "acl-paths",
        }
    }

    /// The kind of ids an argument takes, from its value name.
    fn of_arg(arg: &clap::Arg) -> Option<Self> {
        match arg.get_value_names()?.first()?.as_str() {
            "KEY_ID" => Some(CompleteKind::KeyIds),
            "JOB_ID" => Some(CompleteKind::JobIds),
            "USERID" => Some(CompleteKind::UserIds),
            "AUTH_ID" => Some(CompleteKind::AuthIds),
            "TOKEN_NAME" => Some(CompleteKind::TokenNames),
            "ACL_PATH" => Some(CompleteKind::AclPaths),
            _ => None,
        }
    }
}

/// The ids of `kind` in config dir `dir`; `user` narrows token names.
fn ids(global: &GlobalArgs, kind: CompleteKind, user: Option<&str>) -> Vec<String> {
    let Ok(dir) = global.config_dir() else {
        return Vec::new();
    };
    let users = || dir.user_config().list_users().unwrap_or_default();
    let tokens = || dir.user_config().list_tokens().unwrap_or_default();
    match kind {
        CompleteKind::KeyIds => dir.encryption_keys().key_ids(),
        CompleteKind::JobIds => dir.sync_jobs().job_ids(),
        CompleteKind::UserIds => users().into_iter().map(|u| u.userid.to_string()).collect(),
        CompleteKind::AuthIds => users()
            .into_iter()
            .map(|u| u.userid.to_string())
            .chain(tokens().into_iter().map(|t| t.tokenid.to_string()))
            .collect(),
        CompleteKind::TokenNames => {
            let user: Option<Userid> = user.and_then(|user| user.parse().ok());
            let mut names: Vec<String> = tokens()
                .into_iter()
                .filter(|t| user.as_ref().is_none_or(|user| t.tokenid.user() == user))
                .filter_map(|t| t.tokenid.tokenname().map(str::to_string))
                .collect();
            names.sort();
            names.dedup();
            names
        }
        CompleteKind::AclPaths => {
            let keys = "/system/encryption-keys";
            let mut paths: Vec<String> = ["/", "/system", keys]
                .into_iter()
                .map(str::to_string)
                .chain(
                    dir.encryption_keys()
                        .key_ids()
                        .into_iter()
                        .map(|id| format!("{keys}/{id}")),
                )
                .chain(
                    dir.acl_config()
                        .config()
                        .map(|(tree, _)| tree.list())
                        .unwrap_or_default()
                        .into_iter()
                        .map(|item| item.path),
                )
                .collect();
            paths.sort();
            paths.dedup();
            paths
        }
    }
}

/// Prints the ids of `kind` of the config dir, one per line; on any error,
/// nothing. Always succeeds.
pub fn complete(global: &GlobalArgs, kind: CompleteKind, user: Option<&str>) -> ExitCode {
    let text: String = ids(global, kind, user)
        .iter()
        .map(|id| format!("{id}\n"))
        .collect();
    let _ = write_stdout(&text);
    ExitCode::from(EXIT_OK)
}

/// Prints the completion script for `shell`.
pub fn generate(shell: CompletionShell, cmd: clap::Command) -> Result<ExitCode, Error> {
    let script = match shell {
        CompletionShell::Bash => bash_script(cmd),
    };
    write_stdout(&script)?;
    Ok(ExitCode::from(EXIT_OK))
}

/// How the value of an option or a positional argument completes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ValueCompletion {
    Ids(CompleteKind),
    Words(Vec<String>),
    Files,
    Dirs,
    Nothing,
}

impl ValueCompletion {
    fn of_arg(arg: &clap::Arg) -> Self {
        if let Some(kind) = CompleteKind::of_arg(arg) {
            return ValueCompletion::Ids(kind);
        }
        if arg
            .get_value_names()
            .and_then(|n| n.first())
            .map(|n| n.as_str())
            == Some("ROLE")
        {
            return ValueCompletion::Words(ROLES.iter().map(|(n, _)| n.to_string()).collect());
        }
        let values = super::manpage::possible_values(arg);
        if !values.is_empty() {
            return ValueCompletion::Words(values);
        }
        match arg.get_value_hint() {
            ValueHint::DirPath => ValueCompletion::Dirs,
            ValueHint::FilePath | ValueHint::AnyPath => ValueCompletion::Files,
            _ => ValueCompletion::Nothing,
        }
    }

    /// Bash code that fills COMPREPLY (`$cur` is the word being completed,
    /// `$config_dir` the `--config-dir` of the command line).
    fn bash(&self) -> String {
        match self {
            ValueCompletion::Ids(kind) => format!(
                "mapfile -t COMPREPLY < <(compgen -W \"$(_proxmox_backup_manager_ids {} \"$config_dir\" \"${{posw[0]}}\")\" -- \"$cur\")",
                kind.name()
            ),
            ValueCompletion::Words(words) => format!(
                "mapfile -t COMPREPLY < <(compgen -W {} -- \"$cur\")",
                bash_quote(&words.join(" "))
            ),
            ValueCompletion::Files => {
                "compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")"
                    .to_string()
            }
            ValueCompletion::Dirs => {
                "compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- \"$cur\")"
                    .to_string()
            }
            ValueCompletion::Nothing => "COMPREPLY=()".to_string(),
        }
    }
}

/// A command of the tree, as the script needs it.
struct CommandInfo {
    /// Subcommand path, words joined by a space ("" for the top level).
    path: String,
    /// Visible subcommand names (offered).
    subcommands: Vec<String>,
    /// Each visible subcommand with its aliases (recognised, not offered).
    aliases: Vec<(String, Vec<String>)>,
    /// Visible options (long and short forms).
    options: Vec<String>,
    /// Positional arguments in order.
    positionals: Vec<ValueCompletion>,
}

/// Everything the script is generated from.
#[derive(Default)]
struct Tree {
    commands: Vec<CommandInfo>,
    /// Options that take a value, and how it completes (the first
    /// definition wins if a name is used twice).
    value_options: BTreeMap<String, ValueCompletion>,
}

fn walk(cmd: &clap::Command, path: &str, tree: &mut Tree) {
    let mut options = Vec::new();
    let mut positionals = Vec::new();
    for arg in cmd.get_arguments().filter(|arg| !arg.is_hide_set()) {
        if arg.is_positional() {
            positionals.push(ValueCompletion::of_arg(arg));
            continue;
        }
        let mut names = Vec::new();
        if let Some(long) = arg.get_long() {
            names.push(format!("--{long}"));
        }
        if let Some(short) = arg.get_short() {
            names.push(format!("-{short}"));
        }
        if arg.get_action().takes_values() {
            for name in &names {
                tree.value_options
                    .entry(name.clone())
                    .or_insert_with(|| ValueCompletion::of_arg(arg));
            }
        }
        options.extend(names);
    }
    let subcommands: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .collect();
    tree.commands.push(CommandInfo {
        path: path.to_string(),
        subcommands: subcommands
            .iter()
            .map(|sub| sub.get_name().to_string())
            .collect(),
        aliases: subcommands
            .iter()
            .map(|sub| {
                let aliases = sub.get_all_aliases().map(str::to_string).collect();
                (sub.get_name().to_string(), aliases)
            })
            .collect(),
        options,
        positionals,
    });
    // clap's generated `help` subcommands are offered by name only
    for sub in subcommands
        .into_iter()
        .filter(|sub| sub.get_name() != "help")
    {
        let sub_path = match path {
            "" => sub.get_name().to_string(),
            _ => format!("{path} {}", sub.get_name()),
        };
        walk(sub, &sub_path, tree);
    }
}

/// `text` as one single-quoted bash word.
fn bash_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The bash completion script for the command tree `cmd`.
// long because the bash script is written out as text in it: data, not steps
#[allow(clippy::too_many_lines)]
pub fn bash_script(mut cmd: clap::Command) -> String {
    // build: adds the help subcommands and copies global options down
    cmd.build();
    let bin = cmd.get_name().to_string();
    let mut tree = Tree::default();
    walk(&cmd, "", &mut tree);

    let mut s = String::new();
    let _ = write!(
        s,
        r#"# bash completion for {bin}
# generated by '{bin} generate-completion bash' from its command definitions;
# ids come from '{bin} [--config-dir DIR] __complete KIND [USERID]'.

# ids of kind $1 (key-ids, job-ids, user-ids, auth-ids, token-names,
# acl-paths) in config dir $2 (empty: the default), token names of user $3
# (empty: all); prints nothing on any error
_proxmox_backup_manager_ids() {{
    local args=()
    [[ -n $2 ]] && args=(--config-dir "$2")
    {bin} "${{args[@]}}" __complete "$1" ${{3:+"$3"}} 2>/dev/null
}}

_proxmox_backup_manager() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="" cword=$COMP_CWORD
    local cmd="" config_dir="" npos=0 i word value_next=0 config_next=0 posw=()
    # bash splits "--option=value" at "=" (COMP_WORDBREAKS)
    if [[ $cur == "=" ]]; then
        cur=""
        prev="${{COMP_WORDS[cword-1]}}"
    elif (( cword >= 2 )) && [[ ${{COMP_WORDS[cword-1]}} == "=" ]]; then
        prev="${{COMP_WORDS[cword-2]}}"
    elif (( cword >= 1 )); then
        prev="${{COMP_WORDS[cword-1]}}"
    fi

    # find the subcommand, the positional index and --config-dir
    for (( i = 1; i < cword; i++ )); do
        word="${{COMP_WORDS[i]}}"
        [[ $word == "=" ]] && continue
        if (( value_next )); then
            value_next=0
            if (( config_next )); then
                config_next=0
                config_dir="$word"
            fi
            continue
        fi
        case "$word" in
            --config-dir) value_next=1; config_next=1; continue ;;
            --config-dir=*) config_dir="${{word#--config-dir=}}"; continue ;;
"#
    );
    let value_options: Vec<&str> = tree
        .value_options
        .keys()
        .map(String::as_str)
        .filter(|name| *name != "--config-dir")
        .collect();
    if !value_options.is_empty() {
        let _ = writeln!(
            s,
            "            {}) value_next=1; continue ;;",
            value_options.join("|")
        );
    }
    s.push_str(
        r#"            -*) continue ;;
        esac
        case "$cmd/$word" in
"#,
    );
    for info in &tree.commands {
        for (sub, aliases) in &info.aliases {
            let next = match info.path.as_str() {
                "" => sub.clone(),
                path => format!("{path} {sub}"),
            };
            // an alias (`delete` for `remove`) leads to the same command
            for word in std::iter::once(sub).chain(aliases) {
                let _ = writeln!(
                    s,
                    "            {}) cmd={}; npos=0; posw=() ;;",
                    bash_quote(&format!("{}/{word}", info.path)),
                    bash_quote(&next)
                );
            }
        }
    }
    s.push_str(
        r#"            *) npos=$((npos + 1)); posw+=("$word") ;;
        esac
    done
    # strip quotes, expand a leading ~ (the word is as typed)
    config_dir="${config_dir#[\"\']}"
    config_dir="${config_dir%[\"\']}"
    config_dir="${config_dir/#\~/$HOME}"

    # the value of an option
    case "$prev" in
"#,
    );
    for (name, completion) in &tree.value_options {
        let _ = writeln!(s, "        {name}) {}; return 0 ;;", completion.bash());
    }
    s.push_str(
        r#"    esac

    # an option name
    if [[ $cur == -* ]]; then
        local opts=""
        case "$cmd" in
"#,
    );
    for info in &tree.commands {
        let _ = writeln!(
            s,
            "            {}) opts={} ;;",
            bash_quote(&info.path),
            bash_quote(&info.options.join(" "))
        );
    }
    s.push_str(
        r#"        esac
        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
        return 0
    fi

    # a subcommand or a positional argument
    case "$cmd" in
"#,
    );
    for info in &tree.commands {
        if !info.subcommands.is_empty() {
            let _ = writeln!(
                s,
                "        {}) mapfile -t COMPREPLY < <(compgen -W {} -- \"$cur\") ;;",
                bash_quote(&info.path),
                bash_quote(&info.subcommands.join(" "))
            );
            continue;
        }
        if info
            .positionals
            .iter()
            .all(|p| *p == ValueCompletion::Nothing)
        {
            continue;
        }
        let _ = writeln!(s, "        {})", bash_quote(&info.path));
        s.push_str("            case $npos in\n");
        for (index, positional) in info.positionals.iter().enumerate() {
            if *positional != ValueCompletion::Nothing {
                let _ = writeln!(s, "                {index}) {} ;;", positional.bash());
            }
        }
        s.push_str("                *) COMPREPLY=() ;;\n            esac\n            ;;\n");
    }
    let _ = write!(
        s,
        r#"        *) COMPREPLY=() ;;
    esac
    return 0
}}

complete -F _proxmox_backup_manager {bin}
"#
    );
    s
}
