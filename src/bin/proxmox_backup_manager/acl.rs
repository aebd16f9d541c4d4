//! `proxmox-backup-manager acl ...`: access control lists (`acl.cfg`),
//! through the handlers of `pbs_keystore::api2::access::acl`.

use std::process::ExitCode;

use anyhow::Error;
use clap::Subcommand;
use serde_json::{Value, json};

use pbs_api_types::Authid;
use pbs_keystore::api2::access::acl as api;

use super::output::{Column, Output, Table};
use super::{GlobalArgs, param_context};

/// `acl list`: upstream's columns in upstream's order, rows sorted by the
/// first (upstream's default); groups shown as `@name`.
const ACL_TABLE: Table = Table::new(&[
    Column::new("ugid").render(render_ugid),
    Column::new("path"),
    Column::new("propagate"),
    Column::new("roleid"),
])
.sorted();

fn render_ugid(value: &Value, record: &Value) -> String {
    let ugid = value.as_str().unwrap_or_default();
    match record["ugid_type"].as_str() {
        Some("group") => format!("@{ugid}"),
        _ => ugid.to_string(),
    }
}

/// ACL commands.
#[derive(Subcommand)]
pub enum AclCommand {
    /// Give (or with --delete, take) a role on a path to a user or token.
    Update {
        /// The ACL path, e.g. /system/encryption-keys or /.
        #[arg(value_name = "ACL_PATH")]
        path: String,
        /// The role: Admin, Audit, NoAccess, or another PBS role.
        #[arg(value_name = "ROLE")]
        role: String,
        /// The user (NAME@REALM) or API token (NAME@REALM!TOKEN).
        #[arg(long, value_name = "AUTH_ID")]
        auth_id: Authid,
        /// Whether the role is inherited by paths below (default: yes).
        #[arg(long, value_name = "BOOL", value_parser = parse_bool, default_value = "true",
              action = clap::ArgAction::Set)]
        propagate: bool,
        /// Remove the role instead.
        #[arg(long)]
        delete: bool,
        /// Refuse if acl.cfg changed since it had this SHA-256 digest.
        #[arg(long, value_name = "HEX")]
        digest: Option<String>,
    },
    /// List every ACL entry.
    List,
}

fn parse_bool(text: &str) -> Result<bool, String> {
    proxmox_schema::parse_boolean(text).map_err(|err| err.to_string())
}

/// Runs an ACL command.
pub fn run(global: &GlobalArgs, out: &Output, cmd: AclCommand) -> Result<ExitCode, Error> {
    let dir = global.config_dir()?;
    match cmd {
        AclCommand::Update {
            path,
            role,
            auth_id,
            propagate,
            delete,
            digest,
        } => {
            api::update_acl(
                &dir,
                &path,
                &role,
                &auth_id,
                propagate,
                delete,
                digest.as_deref(),
            )
            .map_err(|err| {
                param_context(err, |param| match param {
                    "digest" => "failed to update the ACL - invalid --digest".to_string(),
                    _ => "failed to update the ACL".to_string(),
                })
            })?;
            let verb = if delete { "removed" } else { "set" };
            out.message(
                &json!({"path": path, "auth-id": auth_id, "role": role, "propagate": propagate, "delete": delete}),
                |_| format!("{verb} role '{role}' on {path} for '{auth_id}'\n"),
            )?;
        }
        AclCommand::List => {
            let (list, _digest) = api::read_acl(&dir)?;
            out.list(&list, &ACL_TABLE)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
