//! `GET /access/permissions`: what the caller may do, per ACL path, in
//! upstream's shape (path → privilege name → whether it propagates).
//!
//! The privileges are computed by [`user::list_permissions`], the function
//! the CLI's `user permissions` calls; this route adds who may ask for
//! whom and what an answer may show:
//!
//! - without `auth-id`, or with the caller's own id: the caller's own
//!   privileges, for anybody authenticated;
//! - another id needs Sys.Audit on `/access`, except a user asking for
//!   one of its own tokens (as upstream);
//! - without `path`, the answer lists `/`, `/system` and
//!   `/system/encryption-keys` always (empty if nothing is held there, so a
//!   client can tell "nothing" from "not asked"), and a path named in
//!   `acl.cfg` only where the id holds something: the names of keys and
//!   paths a caller cannot see stay hidden (upstream hides those too).
//!
//! The web page reads this answer to disable the controls a user may not
//! use; the server still checks every request.

use anyhow::Error;

use proxmox_router::{ApiMethod, Permission, ReturnType, Router};
use proxmox_schema::{ObjectSchema, Schema};

use pbs_api_types::{ACL_PATH_SCHEMA, Authid, PRIV_SYS_AUDIT, PROXMOX_AUTH_ID_SCHEMA};
use pbs_config::ConfigDir;
use pbs_config::cached_user_info::CachedUserInfo;

use crate::api2::access::user::{self, Permissions};
use crate::api2::described_object;
use crate::api2::param_str;
use crate::http_bail;

/// The paths every answer without `path` lists, held or not.
pub const DEFAULT_PATHS: &[&str] = &["/", "/system", "/system/encryption-keys"];

/// Whether `caller` may see the privileges of `target`: its own, one of
/// its own tokens (a user, not a token, asking), or anyone's with Sys.Audit
/// on `/access`.
fn may_list(info: &CachedUserInfo, caller: &Authid, target: &Authid) -> bool {
    caller == target
        || (target.is_token() && !caller.is_token() && target.user() == caller.user())
        || info.lookup_privs(caller, &["access"]) & PRIV_SYS_AUDIT != 0
}

/// The permissions `caller` may see of `auth_id` (the caller's own if
/// `None`), on `path` or on every path of interest.
///
/// # Errors
///
/// 403 if `caller` may not list `auth_id`'s permissions; a parameter error
/// for a malformed `path`; an unknown `auth_id`.
pub fn list_permissions(
    dir: &ConfigDir,
    info: &CachedUserInfo,
    caller: &Authid,
    auth_id: Option<&Authid>,
    path: Option<&str>,
) -> Result<Permissions, Error> {
    let target = auth_id.unwrap_or(caller);
    if !may_list(info, caller, target) {
        http_bail!(
            FORBIDDEN,
            "permission check failed - listing the permissions of '{target}' needs Sys.Audit on /access"
        );
    }
    let mut permissions = user::list_permissions(dir, target, path)?;
    if path.is_none() {
        permissions.retain(|path, privileges| {
            !privileges.is_empty() || DEFAULT_PATHS.contains(&path.as_str())
        });
    }
    Ok(permissions)
}

/// Parameters of `GET /access/permissions`.
pub const API_METHOD_LIST_PERMISSIONS_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "List permissions of given or currently authenticated user / API token.",
    &[
        ("auth-id", true, &PROXMOX_AUTH_ID_SCHEMA),
        ("path", true, &ACL_PATH_SCHEMA),
    ],
);

const PERMISSIONS_RETURN_SCHEMA: Schema =
    described_object("Map of ACL path to Map of privilege to propagate bit");

/// `GET /access/permissions`: [`list_permissions`] for the caller.
pub const API_METHOD_LIST_PERMISSIONS: ApiMethod = ApiMethod::new(
    handler!(Sync, |param, env| {
        let (caller, info) = (env.auth_id()?, env.user_info()?);
        let auth_id: Option<Authid> = param_str(&param, "auth-id").map(str::parse).transpose()?;
        let permissions = list_permissions(
            env.dir(),
            &info,
            &caller,
            auth_id.as_ref(),
            param_str(&param, "path"),
        )?;
        serde_json::to_value(permissions)?
    }),
    &API_METHOD_LIST_PERMISSIONS_PARAMETERS,
)
.returns(ReturnType::new(false, &PERMISSIONS_RETURN_SCHEMA))
.access(
    Some(
        "the caller's own privileges; another id's need Sys.Audit on `/access`, except a \
         user's own tokens",
    ),
    &Permission::Anybody,
);

/// The routes of `/access/permissions`.
pub const ROUTER: Router = Router::new().get(&API_METHOD_LIST_PERMISSIONS);

#[cfg(test)]
mod tests {
    use pbs_api_types::{User, Userid};

    use super::*;
    use crate::api2::test_util::temp_config_dir;
    use crate::server::error::status_of;

    #[test]
    fn own_privileges_without_hidden_paths() {
        let (_tmp, dir) = temp_config_dir();
        let users = ["alice@pbs", "bob@pbs", "carol@pbs"];
        for userid in users {
            let userid: Userid = userid.parse().unwrap();
            user::create_user(&dir, User::new(userid), None).unwrap();
        }
        let token = user::generate_token(&dir, &"alice@pbs".parse().unwrap(), "t1", None, None)
            .unwrap()
            .tokenid;
        let acl = dir.acl_config();
        let lock = acl.lock_config().unwrap();
        let (mut tree, _) = acl.config().unwrap();
        let id = |text: &str| text.parse::<Authid>().unwrap();
        tree.insert_user_role("/system/encryption-keys", &id("alice@pbs"), "Audit", true);
        tree.insert_user_role(
            "/system/encryption-keys/secret",
            &id("bob@pbs"),
            "Admin",
            true,
        );
        tree.insert_user_role(
            "/system/encryption-keys/secret",
            &id("alice@pbs"),
            "NoAccess",
            true,
        );
        tree.insert_user_role("/access", &id("carol@pbs"), "Audit", false);
        acl.save_config(&tree, &lock).unwrap();
        drop(lock);
        let info = CachedUserInfo::new(&dir).unwrap();

        let alice = list_permissions(&dir, &info, &id("alice@pbs"), None, None).unwrap();
        let paths: Vec<&str> = alice.keys().map(String::as_str).collect();
        // bob's key path is not shown to alice, who holds nothing there
        assert_eq!(paths, ["/", "/system", "/system/encryption-keys"]);
        assert!(alice["/"].is_empty());
        assert!(alice["/system/encryption-keys"]["Sys.Audit"]);
        assert!(!alice["/system/encryption-keys"].contains_key("Sys.Modify"));
        let bob = list_permissions(&dir, &info, &id("bob@pbs"), None, None).unwrap();
        assert!(bob["/system/encryption-keys/secret"]["Sys.Modify"]);
        // a named path is answered even when nothing is held there
        let named = list_permissions(&dir, &info, &id("alice@pbs"), None, Some("/access")).unwrap();
        assert_eq!(named.len(), 1);
        assert!(named["/access"].is_empty());

        // another id: own tokens, or Sys.Audit on /access
        assert!(list_permissions(&dir, &info, &id("alice@pbs"), Some(&token), None).is_ok());
        let err = list_permissions(&dir, &info, &id("alice@pbs"), Some(&id("bob@pbs")), None)
            .unwrap_err();
        assert_eq!(status_of(&err), 403);
        assert!(err.to_string().contains("'bob@pbs'"), "{err}");
        let err = list_permissions(&dir, &info, &token, Some(&id("alice@pbs")), None).unwrap_err();
        assert_eq!(status_of(&err), 403);
        let by_carol =
            list_permissions(&dir, &info, &id("carol@pbs"), Some(&id("bob@pbs")), None).unwrap();
        assert_eq!(by_carol, bob);
    }
}
