//! [`CachedUserInfo`]: who is active and what they may do, from `user.cfg`
//! and `acl.cfg`, computed as upstream PBS computes it.
//!
//! - `root@pam` (the user, not its tokens) holds every privilege;
//! - an auth id is active if its user is in `user.cfg`, enabled and not
//!   expired, and for a token, the token too;
//! - a token's privileges are those of its own ACL entries intersected with
//!   its user's (privilege separation: a token never exceeds its user, and
//!   has nothing without entries of its own).

use std::sync::Arc;

use anyhow::Error;

use proxmox_section_config::SectionConfigData;

use pbs_api_types::{ApiToken, Authid, ROLE_ADMIN, User, Userid, privilege_names};

use crate::ConfigDir;
use crate::acl::{AclTree, split_acl_path};
use crate::user::{TOKEN_TYPE_ID, USER_TYPE_ID};

/// A snapshot of the user config and the ACL tree.
pub struct CachedUserInfo {
    user_cfg: Arc<SectionConfigData>,
    acl_tree: AclTree,
}

impl CachedUserInfo {
    /// Reads `user.cfg` (from the parse cache) and `acl.cfg`.
    pub fn new(dir: &ConfigDir) -> Result<Self, Error> {
        let (user_cfg, _) = dir.user_config().config_shared()?;
        let (acl_tree, _) = dir.acl_config().config()?;
        Ok(Self { user_cfg, acl_tree })
    }

    /// From parsed data (for tests and tools).
    pub fn from_parts(user_cfg: SectionConfigData, acl_tree: AclTree) -> Self {
        Self {
            user_cfg: Arc::new(user_cfg),
            acl_tree,
        }
    }

    /// `root@pam` itself (not one of its tokens).
    pub fn is_superuser(&self, auth_id: &Authid) -> bool {
        !auth_id.is_token() && auth_id.user() == &Userid::root_userid()
    }

    /// Whether `userid` exists, is enabled and has not expired. `root@pam`
    /// exists even when `user.cfg` does not list it.
    pub fn is_active_user_id(&self, userid: &Userid) -> bool {
        match self.user_cfg.lookup::<User>(USER_TYPE_ID, userid.as_str()) {
            Ok(user) => user.is_active(),
            Err(_) => {
                *userid == Userid::root_userid()
                    && !self.user_cfg.sections.contains_key(userid.as_str())
            }
        }
    }

    /// Whether `auth_id` may authenticate: its user is active, and for a
    /// token, the token exists, is enabled and has not expired.
    pub fn is_active_auth_id(&self, auth_id: &Authid) -> bool {
        if !self.is_active_user_id(auth_id.user()) {
            return false;
        }
        if auth_id.is_token() {
            return match self
                .user_cfg
                .lookup::<ApiToken>(TOKEN_TYPE_ID, &auth_id.to_string())
            {
                Ok(token) => token.is_active(),
                Err(_) => false,
            };
        }
        true
    }

    /// The privileges of `auth_id` on `path` (components, see
    /// [`split_acl_path`]).
    pub fn lookup_privs(&self, auth_id: &Authid, path: &[&str]) -> u64 {
        if self.is_superuser(auth_id) {
            return ROLE_ADMIN;
        }
        let mut privs = self.acl_tree.privileges(auth_id, path);
        if auth_id.is_token() {
            // limit privs to those of the owning user
            let owner = Authid::from(auth_id.user().clone());
            privs &= self.lookup_privs(&owner, path);
        }
        privs
    }

    /// Checks that `auth_id` holds every privilege in `required` on the ACL
    /// path `path` (`/system/encryption-keys/x`).
    ///
    /// # Errors
    ///
    /// A [`PermissionDenied`] naming the missing privileges and the path.
    pub fn check_privs(&self, auth_id: &Authid, path: &str, required: u64) -> Result<(), Error> {
        let privs = self.lookup_privs(auth_id, &split_acl_path(path));
        let missing = required & !privs;
        if missing != 0 {
            return Err(PermissionDenied {
                path: path.to_string(),
                missing: privilege_names(missing).join(", "),
            }
            .into());
        }
        Ok(())
    }
}

/// An auth id lacks a privilege (the API answers 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionDenied {
    /// The ACL path checked.
    pub path: String,
    /// The names of the missing privileges.
    pub missing: String,
}

impl std::fmt::Display for PermissionDenied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "permission check failed - missing {} on {}",
            self.missing, self.path
        )
    }
}

impl std::error::Error for PermissionDenied {}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use pbs_api_types::{PRIV_SYS_AUDIT, PRIV_SYS_MODIFY};

    use super::*;

    fn info(users: &str, acl: &str) -> CachedUserInfo {
        CachedUserInfo::from_parts(
            crate::user::CONFIG.parse("user.cfg", users).unwrap(),
            AclTree::parse(Path::new("acl.cfg"), acl).unwrap(),
        )
    }

    const USERS: &str = "\
user: alice@pbs

token: alice@pbs!full

token: alice@pbs!none

token: alice@pbs!off
\tenable false

user: eve@pbs
\texpire 1000

token: root@pam!admin
";

    const KEYS: &str = "/system/encryption-keys";

    #[test]
    fn tokens_get_the_intersection_with_their_user() {
        let info = info(
            USERS,
            "acl:1:/system/encryption-keys:alice@pbs:Audit\n\
             acl:1:/system/encryption-keys:alice@pbs!full:Admin\n\
             acl:1:/:root@pam!admin:Admin\n",
        );
        let id = |s: &str| s.parse::<Authid>().unwrap();
        let keys = split_acl_path(KEYS);
        assert_eq!(
            info.lookup_privs(&id("alice@pbs!full"), &keys) & PRIV_SYS_MODIFY,
            0
        );
        assert_ne!(
            info.lookup_privs(&id("alice@pbs!full"), &keys) & PRIV_SYS_AUDIT,
            0
        );
        assert_eq!(info.lookup_privs(&id("alice@pbs!none"), &keys), 0);
        assert_eq!(info.lookup_privs(&id("root@pam"), &[]), ROLE_ADMIN);
        assert_eq!(info.lookup_privs(&id("root@pam!admin"), &keys), ROLE_ADMIN);
        let err = info
            .check_privs(&id("alice@pbs!full"), KEYS, PRIV_SYS_MODIFY)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "permission check failed - missing Sys.Modify on /system/encryption-keys"
        );
        info.check_privs(&id("alice@pbs"), KEYS, PRIV_SYS_AUDIT)
            .unwrap();
    }

    #[test]
    fn active_needs_user_and_token_enabled_and_current() {
        let info = info(USERS, "");
        let id = |s: &str| s.parse::<Authid>().unwrap();
        assert!(info.is_active_auth_id(&id("alice@pbs")));
        assert!(info.is_active_auth_id(&id("alice@pbs!full")));
        assert!(!info.is_active_auth_id(&id("alice@pbs!off")));
        assert!(!info.is_active_auth_id(&id("alice@pbs!missing")));
        assert!(!info.is_active_auth_id(&id("eve@pbs")));
        assert!(!info.is_active_auth_id(&id("bob@pbs")));
        assert!(info.is_active_auth_id(&id("root@pam")));
        assert!(info.is_active_auth_id(&id("root@pam!admin")));
        let disabled_root = info_with_root_disabled();
        assert!(!disabled_root.is_active_auth_id(&id("root@pam")));
    }

    fn info_with_root_disabled() -> CachedUserInfo {
        info("user: root@pam\n\tenable false\n", "")
    }
}
