//! `proxmox-backup-manager user ...`: users, passwords and API tokens.
//!
//! Passwords are for `pbs` realm users only (hashed into `shadow.json`). A
//! password is taken from `--password`, else read from the terminal without
//! echo (twice), else the first line of standard input. A generated token
//! secret is printed once and stored only as a hash.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Error, bail, format_err};
use clap::Subcommand;

use proxmox_schema::ApiType;

use pbs_api_types::{
    ApiToken, Authid, PASSWORD_SCHEMA, PROXMOX_TOKEN_NAME_SCHEMA, USER_COMMENT_SCHEMA, User, Userid,
};

use super::GlobalArgs;

/// User commands.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user (a `pbs` realm user may get a password).
    Create {
        /// The user id (NAME@REALM).
        userid: Userid,
        /// Set this password (else none, or with --ask-password read it).
        #[arg(long)]
        password: Option<String>,
        /// Read the password from the terminal or standard input.
        #[arg(long, conflicts_with = "password")]
        ask_password: bool,
        /// Comment.
        #[arg(long)]
        comment: Option<String>,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
        /// First name.
        #[arg(long)]
        firstname: Option<String>,
        /// Last name.
        #[arg(long)]
        lastname: Option<String>,
        /// Account expiry (seconds since the epoch; 0 = never).
        #[arg(long)]
        expire: Option<i64>,
        /// Enable the account (default: yes).
        #[arg(long, value_parser = parse_bool)]
        enable: Option<bool>,
    },
    /// List users.
    List,
    /// Set the password of a `pbs` realm user.
    Passwd {
        /// The user id.
        userid: Userid,
        /// The new password (else read from the terminal or standard input).
        #[arg(long)]
        password: Option<String>,
    },
    /// Generate an API token; prints its secret once.
    GenerateToken {
        /// The owning user.
        userid: Userid,
        /// The token name.
        name: String,
        /// Comment.
        #[arg(long)]
        comment: Option<String>,
        /// Token expiry (seconds since the epoch; 0 = never).
        #[arg(long)]
        expire: Option<i64>,
    },
    /// List the API tokens of a user.
    ListTokens {
        /// The owning user.
        userid: Userid,
    },
    /// Delete an API token (and its secret and ACL entries).
    DeleteToken {
        /// The owning user.
        userid: Userid,
        /// The token name.
        name: String,
    },
}

fn parse_bool(text: &str) -> Result<bool, String> {
    proxmox_schema::parse_boolean(text).map_err(|err| err.to_string())
}

fn check(schema: &proxmox_schema::Schema, name: &str, value: &str) -> Result<(), Error> {
    schema
        .parse_simple_value(value)
        .map_err(|err| format_err!("invalid --{name} - {err}"))?;
    Ok(())
}

/// Reads a line from the terminal with echo off.
fn read_hidden(prompt: &str) -> Result<String, Error> {
    let stdin = std::io::stdin();
    let fd = libc::STDIN_FILENO;
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    // SAFETY: termios is a plain C struct filled in by tcgetattr on a valid fd
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd 0 is open; `term` is a valid termios to fill
    if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
        bail!(
            "unable to read terminal settings - {}",
            std::io::Error::last_os_error()
        );
    }
    let saved = term;
    term.c_lflag &= !libc::ECHO;
    // SAFETY: as above, with a termios derived from the current settings
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) };
    let mut line = String::new();
    let result = stdin.lock().read_line(&mut line);
    // SAFETY: restores the settings read above
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    eprintln!();
    result?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_password() -> Result<String, Error> {
    let password = if std::io::stdin().is_terminal() {
        let first = read_hidden("New password: ")?;
        let second = read_hidden("Retype new password: ")?;
        if first != second {
            bail!("passwords do not match");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    PASSWORD_SCHEMA
        .parse_simple_value(&password)
        .map_err(|err| format_err!("invalid password - {err}"))?;
    Ok(password)
}

fn token_id(userid: &Userid, name: &str) -> Result<Authid, Error> {
    check(&PROXMOX_TOKEN_NAME_SCHEMA, "name", name)?;
    format!("{userid}!{name}").parse()
}

/// Runs a user command.
pub fn run(global: &GlobalArgs, cmd: UserCommand) -> Result<ExitCode, Error> {
    let dir = global.config_dir()?;
    let users = dir.user_config();
    match cmd {
        UserCommand::Create {
            userid,
            password,
            ask_password,
            comment,
            email,
            firstname,
            lastname,
            expire,
            enable,
        } => {
            let mut user = User::new(userid.clone());
            user.comment = comment;
            user.email = email;
            user.firstname = firstname;
            user.lastname = lastname;
            user.expire = expire;
            user.enable = enable;
            User::API_SCHEMA
                .verify_json(&serde_json::to_value(&user)?)
                .map_err(|err| format_err!("invalid user properties - {err}"))?;
            let password = match (password, ask_password) {
                (Some(password), _) => Some(password),
                (None, true) => Some(read_password()?),
                (None, false) => None,
            };
            if let Some(password) = &password {
                check(&PASSWORD_SCHEMA, "password", password)?;
                if userid.realm() != pbs_config::shadow::PBS_REALM {
                    bail!("only 'pbs' realm users have passwords here, not '{userid}'");
                }
            }
            users.create_user(&user)?;
            if let Some(password) = password {
                dir.shadow().store_password(&userid, &password)?;
            }
            global.print(&user, |user| println!("created user '{}'", user.userid))?;
        }
        UserCommand::List => {
            let list = users.list_users()?;
            global.print(&list, |list| {
                println!("{:<32} {:<6} {:<11} comment", "userid", "enable", "expire");
                for user in list {
                    println!(
                        "{:<32} {:<6} {:<11} {}",
                        user.userid.as_str(),
                        user.enable.unwrap_or(true),
                        user.expire.unwrap_or(0),
                        user.comment.as_deref().unwrap_or("")
                    );
                }
            })?;
        }
        UserCommand::Passwd { userid, password } => {
            let (config, _) = users.config()?;
            if !config.sections.contains_key(userid.as_str()) {
                bail!("user '{userid}' does not exist");
            }
            let password = match password {
                Some(password) => password,
                None => read_password()?,
            };
            check(&PASSWORD_SCHEMA, "password", &password)?;
            dir.shadow().store_password(&userid, &password)?;
            global.print(&serde_json::json!({"userid": userid}), |_| {
                println!("password of '{userid}' changed")
            })?;
        }
        UserCommand::GenerateToken {
            userid,
            name,
            comment,
            expire,
        } => {
            let tokenid = token_id(&userid, &name)?;
            if let Some(comment) = &comment {
                check(&USER_COMMENT_SCHEMA, "comment", comment)?;
            }
            let token = ApiToken {
                tokenid: tokenid.clone(),
                comment,
                enable: None,
                expire,
            };
            let user_lock = users.lock_config()?;
            let (config, _) = users.config()?;
            if !config.sections.contains_key(userid.as_str()) {
                bail!("user '{userid}' does not exist");
            }
            if config.sections.contains_key(&tokenid.to_string()) {
                bail!("API token '{tokenid}' already exists");
            }
            // the secret first: a token entry without a secret cannot log in,
            // a secret without its entry is harmless and overwritten next time
            let secret = dir.token_shadow().generate_and_set_secret(&tokenid)?;
            if let Err(err) = users.add_token(&token, &user_lock) {
                let _ = dir.token_shadow().delete_secret(&tokenid);
                return Err(err);
            }
            drop(user_lock);
            let result = serde_json::json!({"tokenid": tokenid, "value": secret});
            global.print(&result, |_| {
                println!("tokenid: {tokenid}");
                println!("value: {secret}");
                eprintln!("The secret is shown only once; store it now.");
                eprintln!(
                    "A token has no privileges of its own until an ACL names it, e.g.:\n  \
                     proxmox-backup-manager acl update /system/encryption-keys Admin --auth-id '{tokenid}'"
                );
            })?;
        }
        UserCommand::ListTokens { userid } => {
            let list: Vec<ApiToken> = users
                .list_tokens()?
                .into_iter()
                .filter(|token| token.tokenid.user() == &userid)
                .collect();
            global.print(&list, |list| {
                for token in list {
                    println!(
                        "{:<40} enable={} expire={} {}",
                        token.tokenid.to_string(),
                        token.enable.unwrap_or(true),
                        token.expire.unwrap_or(0),
                        token.comment.as_deref().unwrap_or("")
                    );
                }
            })?;
        }
        UserCommand::DeleteToken { userid, name } => {
            let tokenid = token_id(&userid, &name)?;
            let user_lock = users.lock_config()?;
            users.remove_token(&tokenid, &user_lock)?;
            dir.token_shadow().delete_secret(&tokenid)?;
            let acl = dir.acl_config();
            let acl_lock = acl.lock_config()?;
            let (mut tree, _) = acl.config()?;
            tree.delete_authid(&tokenid);
            acl.save_config(&tree, &acl_lock)?;
            global.print(&serde_json::json!({"tokenid": tokenid}), |_| {
                println!("deleted API token '{tokenid}'")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
