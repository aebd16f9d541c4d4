//! `/config/...`: configuration objects.

use std::sync::Arc;

use anyhow::Error;

use proxmox_router::{Permission, Router, SubdirMap};

use pbs_api_types::{Authid, PRIV_SYS_AUDIT, PRIV_SYS_MODIFY, privilege_names};
use pbs_config::acl::KEYS_ACL_PATH;
use pbs_config::cached_user_info::{CachedUserInfo, PermissionDenied};

use crate::server::environment::RestEnvironment;
use crate::server::error::{HttpError, message_of, status_of};

pub mod encryption_key_audit;
pub mod encryption_key_export;
pub mod encryption_key_rotate;
pub mod encryption_key_trash;
pub mod encryption_keys;
pub mod sync;

/// Sys.Audit on the key store as a whole (`/system/encryption-keys`).
pub(crate) const STORE_AUDIT: Permission =
    Permission::Privilege(&["system", "encryption-keys"], PRIV_SYS_AUDIT, false);
/// Sys.Modify on the key store as a whole (`/system/encryption-keys`).
pub(crate) const STORE_MODIFY: Permission =
    Permission::Privilege(&["system", "encryption-keys"], PRIV_SYS_MODIFY, false);
/// Sys.Audit on the key the path names (`/system/encryption-keys/{id}`).
pub(crate) const KEY_AUDIT: Permission = Permission::Privilege(
    &["system", "encryption-keys", "{id}"],
    PRIV_SYS_AUDIT,
    false,
);
/// Sys.Modify on the key the path names (`/system/encryption-keys/{id}`).
pub(crate) const KEY_MODIFY: Permission = Permission::Privilege(
    &["system", "encryption-keys", "{id}"],
    PRIV_SYS_MODIFY,
    false,
);

/// What the caller of a request may do with single keys, by the ACL path
/// of each (`/system/encryption-keys/<id>`): the one place the API decides
/// it, for every answer that names keys and every change that writes
/// them. Upstream's rule: a key is seen with Sys.Audit on its path (its
/// key list) and used or changed with Sys.Modify there. A store-wide grant
/// reaches every key unless a `NoAccess` below it masks one.
pub(crate) struct KeyAccess {
    auth_id: Authid,
    info: Arc<CachedUserInfo>,
}

impl KeyAccess {
    /// The access of the caller of `env`.
    ///
    /// # Errors
    ///
    /// An unauthenticated request, or `user.cfg` or `acl.cfg` unreadable.
    pub(crate) fn of(env: &RestEnvironment) -> Result<Self, Error> {
        Ok(Self {
            auth_id: env.auth_id()?,
            info: env.user_info()?,
        })
    }

    fn privileges(&self, id: &str) -> u64 {
        self.info
            .lookup_privs(&self.auth_id, &["system", "encryption-keys", id])
    }

    /// Whether the caller may see the key `id` (Sys.Audit on its path): a
    /// key it may not see is left out of every list, record and report.
    pub(crate) fn may_see(&self, id: &str) -> bool {
        self.privileges(id) & PRIV_SYS_AUDIT != 0
    }

    /// Checks Sys.Audit on each key of `ids` (what the key list needs to
    /// show it), all of them: a 403 naming every path without it.
    ///
    /// # Errors
    ///
    /// A [`PermissionDenied`] naming the paths.
    pub(crate) fn check_see<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Error> {
        self.check(ids, PRIV_SYS_AUDIT)
    }

    /// Checks Sys.Modify on each key of `ids`, all of them before any
    /// change: a 403 naming every path without it.
    ///
    /// # Errors
    ///
    /// A [`PermissionDenied`] naming the paths.
    pub(crate) fn check_modify<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), Error> {
        self.check(ids, PRIV_SYS_MODIFY)
    }

    /// `err` as this caller is told it: a refusal whose words name a key
    /// the caller may not see (a store refused because the store holds the
    /// key under such an id) keeps its status, and its words read
    /// [`encryption_key_audit::WITHHELD`] (finding 50); any other error as
    /// it is.
    pub(crate) fn withhold(&self, err: Error) -> Error {
        let message = message_of(&err);
        let told = encryption_key_audit::told(&message, &|id| self.may_see(id));
        match told == message {
            true => err,
            false => HttpError::new(status_of(&err), told).into(),
        }
    }

    fn check<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
        privilege: u64,
    ) -> Result<(), Error> {
        let denied: Vec<String> = ids
            .into_iter()
            .filter(|id| self.privileges(id) & privilege == 0)
            .map(|id| format!("{KEYS_ACL_PATH}/{id}"))
            .collect();
        if denied.is_empty() {
            return Ok(());
        }
        Err(PermissionDenied {
            path: denied.join(", "),
            missing: privilege_names(privilege).join(", "),
        }
        .into())
    }
}

const SUBDIRS: SubdirMap = &[
    ("encryption-key-audit", &encryption_key_audit::ROUTER),
    ("encryption-key-export", &encryption_key_export::ROUTER),
    (
        "encryption-key-restore",
        &encryption_key_export::RESTORE_ROUTER,
    ),
    ("encryption-key-rotate", &encryption_key_rotate::ROUTER),
    ("encryption-key-trash", &encryption_key_trash::ROUTER),
    ("encryption-keys", &encryption_keys::ROUTER),
    ("sync", &sync::ROUTER),
];

/// The routes of `/config`.
pub const ROUTER: Router = Router::new().subdirs(SUBDIRS);
