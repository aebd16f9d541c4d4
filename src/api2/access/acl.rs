//! `/access/acl`: the access control list (`acl.cfg`).
//!
//! Plain handlers over `pbs_config::acl`, as upstream's
//! `api2/access/acl.rs`: `read_acl` lists every entry, `update_acl` gives
//! or (with `delete`) takes a role on a path. No privilege checks here (the
//! caller checks them).
//!
//! `update_acl` is recorded in the audit log (`acl-grant`, `acl-revoke`,
//! naming the path, the user or token and the role) as the config dir's
//! caller; a refused change records nothing.
//!
//! # Locking
//!
//! `update_acl` takes `.acl.lck` (then the audit intent); it reads `user.cfg` without its lock (an
//! auth id removed meanwhile leaves an entry that grants nothing, as
//! upstream).

use anyhow::{Error, bail};

use proxmox_schema::{param_bail, param_format_err};

use pbs_api_types::{AclListItem, Authid, ROLES, role_privileges};
use pbs_config::ConfigDir;
use pbs_config::acl::check_acl_path;
use pbs_config::audit::Op;

/// Every ACL entry, per path in path order, and the hex config digest.
pub fn read_acl(dir: &ConfigDir) -> Result<(Vec<AclListItem>, String), Error> {
    let (tree, digest) = dir.acl_config().config()?;
    Ok((tree.list(), hex::encode(digest)))
}

/// Gives `auth_id` `role` on `path` (inherited below it if `propagate`),
/// or with `delete` takes it away. A role is given only to an existing
/// user or token; only a role held can be taken.
pub fn update_acl(
    dir: &ConfigDir,
    path: &str,
    role: &str,
    auth_id: &Authid,
    propagate: bool,
    delete: bool,
    digest: Option<&str>,
) -> Result<(), Error> {
    check_acl_path(path).map_err(|err| param_format_err!("path", "{err}"))?;
    if role_privileges(role).is_none() {
        let names: Vec<&str> = ROLES.iter().map(|(name, _)| *name).collect();
        param_bail!(
            "role",
            "unknown role '{role}' - known roles: {}",
            names.join(", ")
        );
    }
    let digest = crate::api2::parse_digest(digest)?;
    let acl = dir.acl_config();
    let acl_lock = acl.lock_config()?;
    let (mut tree, current) = acl.config()?;
    if let Some(digest) = digest {
        pbs_config::detect_modified_configuration_file(&digest, &current)?;
    }
    if delete {
        if !tree.delete_user_role(path, auth_id, role) {
            bail!("'{auth_id}' has no role '{role}' on {path}");
        }
    } else {
        let (users, _) = dir.user_config().config()?;
        let (kind, id) = super::user_cfg_section(auth_id);
        if users.lookup_json(kind, &id).is_err() {
            bail!("no such {kind} '{id}' - create it first");
        }
        tree.insert_user_role(path, auth_id, role, propagate);
    }
    let op = if delete { Op::AclRevoke } else { Op::AclGrant };
    let event = dir
        .audit_event(op)
        .id(path)
        .id(auth_id.to_string())
        .id(role);
    let pending = dir.audit_intent(None, &event)?;
    pending.done(acl.save_config(&tree, &acl_lock))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api2::test_util::{param_names, temp_config_dir};

    #[test]
    fn update_checks_path_role_auth_id_and_digest() {
        let (_tmp, dir) = temp_config_dir();
        let alice: Authid = "alice@pbs".parse().unwrap();
        dir.user_config()
            .create_user(&pbs_api_types::User::new(alice.user().clone()))
            .unwrap();
        let update =
            |path, role, delete, digest| update_acl(&dir, path, role, &alice, true, delete, digest);
        assert_eq!(
            param_names(&update("x", "Admin", false, None).unwrap_err()),
            ["path"]
        );
        assert_eq!(
            param_names(&update("/", "Boss", false, None).unwrap_err()),
            ["role"]
        );
        let (_, digest) = read_acl(&dir).unwrap();
        update("/", "Audit", false, Some(&digest)).unwrap();
        let err = update("/", "Admin", false, Some(&digest)).unwrap_err();
        assert!(err.to_string().contains("modified configuration"), "{err}");
        let (list, _) = read_acl(&dir).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].roleid.as_str(), list[0].propagate),
            ("Audit", true)
        );
        let err = update("/", "Admin", true, None).unwrap_err();
        assert_eq!(err.to_string(), "'alice@pbs' has no role 'Admin' on /");
        let zed: Authid = "zed@pbs".parse().unwrap();
        let err = update_acl(&dir, "/", "Admin", &zed, true, false, None).unwrap_err();
        assert_eq!(err.to_string(), "no such user 'zed@pbs' - create it first");
        update("/", "Audit", true, None).unwrap();
        assert!(read_acl(&dir).unwrap().0.is_empty());
    }
}
