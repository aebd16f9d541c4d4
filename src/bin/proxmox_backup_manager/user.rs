//! `proxmox-backup-manager user ...`: users, passwords, API tokens and
//! what they may do.
//!
//! Every command calls the handlers of `pbs_keystore::api2::access::user`.
//! Passwords are for `pbs` realm users only (hashed into `shadow.json`). A
//! password is taken from `--password`, else read from the terminal without
//! echo (twice), else the first line of standard input. A generated token
//! secret is printed once and stored only as a hash.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Error, bail};
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};

use pbs_api_types::{Authid, User, Userid};
use pbs_config::ConfigDir;
use pbs_keystore::api2::access::user::{
    self as api, DeletableUserProperty, Permissions, UserUpdater,
};

use super::output::{Column, Output, OutputFormat, Table, render};
use super::terminal::read_hidden;
use super::{GlobalArgs, param_context};

/// `user list`: upstream's columns.
const USER_TABLE: Table = Table::new(&[
    Column::new("userid"),
    Column::new("enable").render(render::default_true),
    Column::new("expire").render(render::expire),
    Column::new("firstname"),
    Column::new("lastname"),
    Column::new("email"),
    Column::new("comment"),
]);

/// `user list-tokens`: upstream's columns.
const TOKEN_TABLE: Table = Table::new(&[
    Column::new("tokenid"),
    Column::new("enable").render(render::default_true),
    Column::new("expire").render(render::expire),
    Column::new("comment"),
]);

/// `user permissions`: one row per path, its privileges one per line,
/// each with whether it propagates.
const PERMISSION_TABLE: Table = Table::new(&[
    Column::new("path"),
    Column::new("privilege"),
    Column::new("propagate"),
]);

/// `user generate-token`: the token id and its secret.
const SECRET_FIELDS: Table = Table::new(&[Column::new("tokenid"), Column::new("value")]);

/// The user properties `create` and `update` take.
#[derive(clap::Args)]
pub struct UserProperties {
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
    #[arg(long, value_name = "EPOCH")]
    expire: Option<i64>,
    /// Enable the account (default: yes).
    #[arg(long, value_name = "BOOL", value_parser = parse_bool)]
    enable: Option<bool>,
}

impl From<UserProperties> for UserUpdater {
    fn from(properties: UserProperties) -> Self {
        UserUpdater {
            comment: properties.comment,
            enable: properties.enable,
            expire: properties.expire,
            firstname: properties.firstname,
            lastname: properties.lastname,
            email: properties.email,
        }
    }
}

/// User properties `update --delete` removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CliDeletableProperty {
    /// The comment.
    Comment,
    /// The first name.
    Firstname,
    /// The last name.
    Lastname,
    /// The e-mail address.
    Email,
}

impl From<CliDeletableProperty> for DeletableUserProperty {
    fn from(property: CliDeletableProperty) -> Self {
        match property {
            CliDeletableProperty::Comment => DeletableUserProperty::Comment,
            CliDeletableProperty::Firstname => DeletableUserProperty::Firstname,
            CliDeletableProperty::Lastname => DeletableUserProperty::Lastname,
            CliDeletableProperty::Email => DeletableUserProperty::Email,
        }
    }
}

/// User commands.
#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user (a pbs realm user may get a password).
    Create {
        /// The user id (NAME@REALM).
        #[arg(value_name = "USERID")]
        userid: Userid,
        /// Set this password (else none, or with --ask-password read it).
        #[arg(long)]
        password: Option<String>,
        /// Read the password from the terminal or standard input.
        #[arg(long, conflicts_with = "password")]
        ask_password: bool,
        #[command(flatten)]
        properties: UserProperties,
    },
    /// Change a user's properties (or password).
    ///
    /// A property given replaces the stored one; an empty text removes it,
    /// as does --delete.
    Update {
        /// The user id.
        #[arg(value_name = "USERID")]
        userid: Userid,
        /// Set this password.
        #[arg(long)]
        password: Option<String>,
        /// Read a new password from the terminal or standard input.
        #[arg(long, conflicts_with = "password")]
        ask_password: bool,
        #[command(flatten)]
        properties: UserProperties,
        /// Remove a property (repeat for several).
        #[arg(long, value_enum, value_name = "PROPERTY")]
        delete: Vec<CliDeletableProperty>,
        /// Refuse if user.cfg changed since it had this SHA-256 digest.
        #[arg(long, value_name = "HEX")]
        digest: Option<String>,
    },
    /// Remove a user, with its API tokens, password and ACL entries.
    #[command(visible_alias = "delete")]
    Remove {
        /// The user id.
        #[arg(value_name = "USERID")]
        userid: Userid,
        /// Refuse if user.cfg changed since it had this SHA-256 digest.
        #[arg(long, value_name = "HEX")]
        digest: Option<String>,
    },
    /// List users.
    List,
    /// Set the password of a pbs realm user.
    Passwd {
        /// The user id.
        #[arg(value_name = "USERID")]
        userid: Userid,
        /// The new password (else read from the terminal or standard input).
        #[arg(long)]
        password: Option<String>,
    },
    /// Show what a user or API token may do: per ACL path, each privilege
    /// and whether it propagates to the paths below.
    Permissions {
        /// The user (NAME@REALM) or API token (NAME@REALM!TOKEN).
        #[arg(value_name = "AUTH_ID")]
        auth_id: Authid,
        /// Only this ACL path (default: /, /system, /system/encryption-keys
        /// and every path in acl.cfg).
        #[arg(long, value_name = "ACL_PATH")]
        path: Option<String>,
    },
    /// Generate an API token; prints its secret once.
    GenerateToken {
        /// The owning user.
        #[arg(value_name = "USERID")]
        userid: Userid,
        /// The token name.
        #[arg(value_name = "TOKEN_NAME")]
        name: String,
        /// Comment.
        #[arg(long)]
        comment: Option<String>,
        /// Token expiry (seconds since the epoch; 0 = never).
        #[arg(long, value_name = "EPOCH")]
        expire: Option<i64>,
    },
    /// List the API tokens of a user.
    ListTokens {
        /// The owning user.
        #[arg(value_name = "USERID")]
        userid: Userid,
    },
    /// Delete an API token (and its secret and ACL entries).
    DeleteToken {
        /// The owning user.
        #[arg(value_name = "USERID")]
        userid: Userid,
        /// The token name.
        #[arg(value_name = "TOKEN_NAME")]
        name: String,
    },
}

fn parse_bool(text: &str) -> Result<bool, String> {
    proxmox_schema::parse_boolean(text).map_err(|err| err.to_string())
}

/// A password from the terminal (twice, without echo), else the first line
/// of standard input.
fn read_password() -> Result<String, Error> {
    if std::io::stdin().is_terminal() {
        let mut first = read_hidden("New password: ")?;
        let second = read_hidden("Retype new password: ")?;
        if first != second {
            bail!("passwords do not match");
        }
        return Ok(std::mem::take(&mut *first));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `--password`, else with `ask` (or `always`) one read by [`read_password`].
fn password(given: Option<String>, ask: bool) -> Result<Option<String>, Error> {
    match (given, ask) {
        (Some(password), _) => Ok(Some(password)),
        (None, true) => read_password().map(Some),
        (None, false) => Ok(None),
    }
}

/// Errors of the handlers, with what failed: a parameter error names the
/// option (`--password`, `--digest`, ...), everything else says it already.
fn context(what: String) -> impl Fn(Error) -> Error {
    move |err| {
        param_context(err, |param| match param {
            "userid" | "auth-id" => what.clone(),
            param => format!("{what} - invalid --{param}"),
        })
    }
}

/// The permissions as table rows: per path, the privileges one per line.
fn permission_rows(permissions: &Permissions) -> Vec<Value> {
    permissions
        .iter()
        .map(|(path, privileges)| {
            let names: Vec<&str> = privileges.keys().map(String::as_str).collect();
            let flags: Vec<&str> = privileges
                .values()
                .map(|propagate| if *propagate { "1" } else { "0" })
                .collect();
            json!({"path": path, "privilege": names.join("\n"), "propagate": flags.join("\n")})
        })
        .collect()
}

/// Runs a user command.
pub fn run(global: &GlobalArgs, out: &Output, cmd: UserCommand) -> Result<ExitCode, Error> {
    let dir = global.config_dir()?;
    match cmd {
        UserCommand::Create {
            userid,
            password: given,
            ask_password,
            properties,
        } => {
            let password = password(given, ask_password)?;
            create(out, &dir, userid, password.as_deref(), properties)?;
        }
        UserCommand::Update {
            userid,
            password: given,
            ask_password,
            properties,
            delete,
            digest,
        } => {
            let password = password(given, ask_password)?;
            let delete: Vec<DeletableUserProperty> = delete.into_iter().map(Into::into).collect();
            let update = (properties.into(), &delete[..], digest.as_deref());
            update_user(out, &dir, &userid, password.as_deref(), update)?;
        }
        UserCommand::Remove { userid, digest } => {
            let what = format!("failed to remove user '{userid}'");
            api::delete_user(&dir, &userid, digest.as_deref()).map_err(context(what))?;
            out.message(&(), |()| format!("removed user '{userid}'\n"))?;
        }
        UserCommand::List => {
            out.list(&api::list_users(&dir)?, &USER_TABLE)?;
        }
        UserCommand::Passwd {
            userid,
            password: given,
        } => {
            let password = password(given, true)?.unwrap_or_default();
            let what = format!("failed to set the password of '{userid}'");
            api::set_password(&dir, &userid, &password).map_err(context(what))?;
            out.message(&json!({"userid": userid}), |_| {
                format!("password of '{userid}' changed\n")
            })?;
        }
        UserCommand::Permissions { auth_id, path } => {
            let what = format!("failed to list the permissions of '{auth_id}'");
            let permissions =
                api::list_permissions(&dir, &auth_id, path.as_deref()).map_err(context(what))?;
            out.message(&permissions, |permissions| {
                out.render_list(&permission_rows(permissions), &PERMISSION_TABLE)
            })?;
        }
        UserCommand::GenerateToken {
            userid,
            name,
            comment,
            expire,
        } => {
            let secret = generate_token(&dir, &userid, &name, comment, expire)?;
            show_secret(out, &secret)?;
        }
        UserCommand::ListTokens { userid } => {
            let tokens = api::list_tokens(&dir, &userid)?;
            out.list(&tokens, &TOKEN_TABLE)?;
        }
        UserCommand::DeleteToken { userid, name } => {
            let what = format!("failed to delete API token '{name}' of '{userid}'");
            let tokenid = api::delete_token(&dir, &userid, &name).map_err(context(what))?;
            out.message(&json!({"tokenid": tokenid}), |_| {
                format!("deleted API token '{tokenid}'\n")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `user create`: a user with `properties` (and a password, for a `pbs`
/// realm user).
fn create(
    out: &Output,
    dir: &ConfigDir,
    userid: Userid,
    password: Option<&str>,
    properties: UserProperties,
) -> Result<(), Error> {
    let what = format!("failed to create user '{userid}'");
    let mut user = User::new(userid);
    user.comment = properties.comment;
    user.email = properties.email;
    user.firstname = properties.firstname;
    user.lastname = properties.lastname;
    user.expire = properties.expire;
    user.enable = properties.enable;
    let user = api::create_user(dir, user, password).map_err(context(what))?;
    out.message(&user, |user| format!("created user '{}'\n", user.userid))
}

/// The changes of `user update`: properties to set, properties to
/// remove, and the digest `user.cfg` must still have.
type Changes<'a> = (UserUpdater, &'a [DeletableUserProperty], Option<&'a str>);

/// `user update`: the `changes` (and a new password).
fn update_user(
    out: &Output,
    dir: &ConfigDir,
    userid: &Userid,
    password: Option<&str>,
    (update, delete, digest): Changes<'_>,
) -> Result<(), Error> {
    let what = format!("failed to update user '{userid}'");
    let user =
        api::update_user(dir, userid, update, password, delete, digest).map_err(context(what))?;
    out.message(&user, |user| format!("updated user '{}'\n", user.userid))
}

/// `user generate-token`: the token and its secret, shown this once.
fn generate_token(
    dir: &ConfigDir,
    userid: &Userid,
    name: &str,
    comment: Option<String>,
    expire: Option<i64>,
) -> Result<api::TokenSecret, Error> {
    let what = format!("failed to generate API token '{name}' of '{userid}'");
    api::generate_token(dir, userid, name, comment, expire).map_err(context(what))
}

/// The token id and its secret, with (as text) how to give the token
/// privileges.
fn show_secret(out: &Output, secret: &api::TokenSecret) -> Result<(), Error> {
    out.object(secret, &SECRET_FIELDS)?;
    if out.format() == OutputFormat::Text {
        eprintln!(
            "The secret is shown only once; store it now.\n\
             A token has no privileges of its own until an ACL names it, e.g.:\n  \
             proxmox-backup-manager acl update /system/encryption-keys Admin --auth-id '{}'",
            secret.tokenid
        );
    }
    Ok(())
}
