//! `/config/...`: configuration objects.

use proxmox_router::{Permission, Router, SubdirMap};

use pbs_api_types::{PRIV_SYS_AUDIT, PRIV_SYS_MODIFY};

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
