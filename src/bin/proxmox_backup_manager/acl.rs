//! `proxmox-backup-manager acl ...`: access control lists (`acl.cfg`).

use std::process::ExitCode;

use anyhow::{Error, bail};
use clap::Subcommand;

use pbs_api_types::{Authid, ROLES, role_privileges};
use pbs_config::acl::check_acl_path;
use pbs_config::user::{TOKEN_TYPE_ID, USER_TYPE_ID};

use super::GlobalArgs;

/// ACL commands.
#[derive(Subcommand)]
pub enum AclCommand {
    /// Give (or with --delete, take) a role on a path to a user or token.
    Update {
        /// The ACL path, e.g. `/system/encryption-keys` or `/`.
        path: String,
        /// The role: Admin, Audit, NoAccess, or another PBS role.
        role: String,
        /// The user (NAME@REALM) or API token (NAME@REALM!TOKEN).
        #[arg(long)]
        auth_id: Authid,
        /// Whether the role is inherited by paths below (default: yes).
        #[arg(long, value_name = "BOOL", value_parser = parse_bool, default_value = "true",
              action = clap::ArgAction::Set)]
        propagate: bool,
        /// Remove the role instead.
        #[arg(long)]
        delete: bool,
    },
    /// List every ACL entry.
    List,
}

fn parse_bool(text: &str) -> Result<bool, String> {
    proxmox_schema::parse_boolean(text).map_err(|err| err.to_string())
}

/// Runs an ACL command.
pub fn run(global: &GlobalArgs, cmd: AclCommand) -> Result<ExitCode, Error> {
    let dir = global.config_dir()?;
    let acl = dir.acl_config();
    match cmd {
        AclCommand::Update {
            path,
            role,
            auth_id,
            propagate,
            delete,
        } => {
            check_acl_path(&path)?;
            if role_privileges(&role).is_none() {
                let names: Vec<&str> = ROLES.iter().map(|(name, _)| *name).collect();
                bail!("unknown role '{role}' - known roles: {}", names.join(", "));
            }
            let acl_lock = acl.lock_config()?;
            let (mut tree, _) = acl.config()?;
            if delete {
                if !tree.delete_user_role(&path, &auth_id, &role) {
                    bail!("'{auth_id}' has no role '{role}' on {path}");
                }
            } else {
                let (users, _) = dir.user_config().config()?;
                let (kind, id) = if auth_id.is_token() {
                    (TOKEN_TYPE_ID, auth_id.to_string())
                } else {
                    (USER_TYPE_ID, auth_id.user().to_string())
                };
                if users.lookup_json(kind, &id).is_err() {
                    bail!("no such {kind} '{id}' - create it first");
                }
                tree.insert_user_role(&path, &auth_id, &role, propagate);
            }
            acl.save_config(&tree, &acl_lock)?;
            let verb = if delete { "removed" } else { "set" };
            global.print(
                &serde_json::json!({"path": path, "auth-id": auth_id, "role": role, "propagate": propagate, "delete": delete}),
                |_| println!("{verb} role '{role}' on {path} for '{auth_id}'"),
            )?;
        }
        AclCommand::List => {
            let (tree, _) = acl.config()?;
            let list = tree.list();
            global.print(&list, |list| {
                println!("{:<40} {:<40} {:<16} propagate", "path", "ugid", "role");
                for item in list {
                    let ugid = match item.ugid_type.as_str() {
                        "group" => format!("@{}", item.ugid),
                        _ => item.ugid.clone(),
                    };
                    println!(
                        "{:<40} {:<40} {:<16} {}",
                        item.path, ugid, item.roleid, item.propagate as u8
                    );
                }
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
