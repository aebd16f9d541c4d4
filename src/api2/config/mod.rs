//! `/config/...`: configuration objects.

use proxmox_router::{Router, SubdirMap};

pub mod encryption_key_audit;
pub mod encryption_key_export;
pub mod encryption_key_rotate;
pub mod encryption_key_trash;
pub mod encryption_keys;
pub mod sync;

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
