//! The permission a method declares, checked against `user.cfg` and
//! `acl.cfg`, and the words for it in errors and in `docs/api.md`.
//!
//! The check is `proxmox_router`'s (the superuser passes, `{id}` in a
//! privilege path is the request's path parameter); a refusal becomes a
//! 403 naming what is missing where, in the words of
//! [`CachedUserInfo::check_privs`]: `permission check failed - missing
//! Sys.Modify on /system/encryption-keys/k1`.

use std::collections::HashMap;

use anyhow::Error;

use proxmox_router::{
    ApiAccess, Permission, PermissionDenial, RpcEnvironment, UserInformation,
    explain_api_permission,
};

use pbs_api_types::{Authid, privilege_names};
use pbs_config::cached_user_info::{CachedUserInfo, PermissionDenied};

use crate::http_err;
use crate::server::environment::RestEnvironment;

/// [`CachedUserInfo`] as `proxmox_router` asks for it.
struct UserInfo<'a>(&'a CachedUserInfo);

impl UserInformation for UserInfo<'_> {
    fn is_superuser(&self, userid: &str) -> bool {
        userid
            .parse::<Authid>()
            .is_ok_and(|auth_id| self.0.is_superuser(&auth_id))
    }

    fn lookup_privs(&self, userid: &str, path: &[&str]) -> u64 {
        match userid.parse::<Authid>() {
            Ok(auth_id) => self.0.lookup_privs(&auth_id, path),
            Err(_) => 0,
        }
    }
}

/// Checks `permission` for the caller of `env`, `{param}`s filled in from
/// `uri_param` (the decoded path parameters). Reads users and ACLs for
/// every authenticated request, so a broken `acl.cfg` is a 500 for every
/// call but the login.
///
/// # Errors
///
/// 403 (a [`PermissionDenied`] for missing privileges), 401 if nobody is
/// authenticated, or why `user.cfg` or `acl.cfg` could not be read.
pub fn check_permission(
    env: &RestEnvironment,
    permission: &Permission,
    uri_param: &HashMap<String, String>,
) -> Result<(), Error> {
    if matches!(permission, Permission::World) {
        return Ok(());
    }
    let info = env.user_info()?;
    let auth_id = env.get_auth_id();
    explain_api_permission(permission, auth_id.as_deref(), uri_param, &UserInfo(&info))
        .map_err(denial_error)
}

fn denial_error(denial: PermissionDenial) -> Error {
    match denial {
        PermissionDenial::Unauthenticated => {
            http_err!(UNAUTHORIZED, "authentication required")
        }
        PermissionDenial::Privileges { .. } => PermissionDenied {
            path: denial_path(&denial),
            missing: denial_text(&denial),
        }
        .into(),
        other => http_err!(
            FORBIDDEN,
            "permission check failed - {}",
            denial_text(&other)
        ),
    }
}

fn denial_path(denial: &PermissionDenial) -> String {
    match denial {
        PermissionDenial::Privileges { path, .. } => path.clone(),
        _ => String::new(),
    }
}

/// What is missing, in words (for a `Privileges` denial without its path,
/// which [`PermissionDenied`] adds).
fn denial_text(denial: &PermissionDenial) -> String {
    match denial {
        PermissionDenial::Unauthenticated => "not authenticated".to_string(),
        PermissionDenial::SuperuserOnly => "only the superuser (root@pam) may".to_string(),
        PermissionDenial::MissingParameter(name) => {
            format!("privilege path needs the path parameter '{name}'")
        }
        PermissionDenial::Privileges {
            missing, partial, ..
        } => privileges_text(*missing, *partial),
        PermissionDenial::NoneOf(reasons) => reasons
            .iter()
            .map(|reason| match reason {
                PermissionDenial::Privileges { path, .. } => {
                    format!("{} on {path}", denial_text(reason))
                }
                other => denial_text(other),
            })
            .collect::<Vec<_>>()
            .join(", or "),
    }
}

fn privileges_text(privs: u64, partial: bool) -> String {
    let names = privilege_names(privs).join(", ");
    if partial && privs.count_ones() > 1 {
        format!("one of {names}")
    } else {
        names
    }
}

/// Who may call a method, in words: its permission and, after `; `, the
/// access description if it has one (the privilege column of
/// `docs/api.md`).
pub fn describe_access(access: &ApiAccess) -> String {
    let permission = describe_permission(access.permission);
    match access.description {
        Some(description) => format!("{permission}; {description}"),
        None => permission,
    }
}

/// Who may call a method with `permission`, in words:
/// ``Sys.Modify on `/system/encryption-keys/{id}` ``.
pub fn describe_permission(permission: &Permission) -> String {
    match permission {
        Permission::Superuser => "the superuser (`root@pam`) only".to_string(),
        Permission::World => "none (no authentication)".to_string(),
        Permission::Anybody => "any authenticated id".to_string(),
        Permission::Privilege(path, privs, partial) => format!(
            "{} on `/{}`",
            privileges_text(*privs, *partial),
            path.join("/")
        ),
        Permission::And(list) => describe_list(list, " and "),
        Permission::Or(list) => describe_list(list, " or "),
    }
}

fn describe_list(list: &[&Permission], separator: &str) -> String {
    list.iter()
        .map(|part| format!("({})", describe_permission(part)))
        .collect::<Vec<_>>()
        .join(separator)
}

#[cfg(test)]
mod tests {
    use super::*;

    use pbs_api_types::{PRIV_SYS_AUDIT, PRIV_SYS_MODIFY};

    use crate::server::error::{message_of, status_of};

    #[test]
    fn denials_name_what_is_missing_where() {
        let err = denial_error(PermissionDenial::Privileges {
            path: "/system/encryption-keys/k1".into(),
            missing: PRIV_SYS_MODIFY,
            partial: false,
        });
        assert_eq!(status_of(&err), 403);
        assert_eq!(
            message_of(&err),
            "permission check failed - missing Sys.Modify on /system/encryption-keys/k1"
        );
        let err = denial_error(PermissionDenial::SuperuserOnly);
        assert_eq!(status_of(&err), 403);
        assert!(message_of(&err).contains("only the superuser"), "{err}");
        let err = denial_error(PermissionDenial::NoneOf(vec![
            PermissionDenial::SuperuserOnly,
            PermissionDenial::Privileges {
                path: "/".into(),
                missing: PRIV_SYS_AUDIT | PRIV_SYS_MODIFY,
                partial: true,
            },
        ]));
        assert_eq!(status_of(&err), 403);
        assert_eq!(
            message_of(&err),
            "permission check failed - only the superuser (root@pam) may, or one of Sys.Audit, Sys.Modify on /"
        );
        assert_eq!(
            status_of(&denial_error(PermissionDenial::Unauthenticated)),
            401
        );
    }

    #[test]
    fn permissions_in_words() {
        const KEY: Permission = Permission::Privilege(
            &["system", "encryption-keys", "{id}"],
            PRIV_SYS_AUDIT,
            false,
        );
        assert_eq!(
            describe_permission(&KEY),
            "Sys.Audit on `/system/encryption-keys/{id}`"
        );
        assert_eq!(
            describe_permission(&Permission::Or(&[&KEY, &Permission::Superuser])),
            "(Sys.Audit on `/system/encryption-keys/{id}`) or (the superuser (`root@pam`) only)"
        );
        assert_eq!(
            describe_permission(&Permission::Anybody),
            "any authenticated id"
        );
    }
}
