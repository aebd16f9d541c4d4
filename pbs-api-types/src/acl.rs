//! Privileges and roles, with PBS's names.
//!
//! The keystore checks two privileges, `Sys.Audit` and `Sys.Modify`; the
//! other privilege and role names are known so a real `acl.cfg` reads, but
//! none of those roles holds either system privilege.

/// `Sys.Audit`: read system configuration.
pub const PRIV_SYS_AUDIT: u64 = 1 << 0;
/// `Sys.Modify`: change system configuration.
pub const PRIV_SYS_MODIFY: u64 = 1 << 1;
/// `Sys.PowerManagement`.
pub const PRIV_SYS_POWER_MANAGEMENT: u64 = 1 << 2;
/// `Datastore.Audit`.
pub const PRIV_DATASTORE_AUDIT: u64 = 1 << 3;
/// `Datastore.Allocate`.
pub const PRIV_DATASTORE_ALLOCATE: u64 = 1 << 4;
/// `Datastore.Modify`.
pub const PRIV_DATASTORE_MODIFY: u64 = 1 << 5;
/// `Datastore.Read`.
pub const PRIV_DATASTORE_READ: u64 = 1 << 6;
/// `Datastore.Verify`.
pub const PRIV_DATASTORE_VERIFY: u64 = 1 << 7;
/// `Datastore.Backup`.
pub const PRIV_DATASTORE_BACKUP: u64 = 1 << 8;
/// `Datastore.Prune`.
pub const PRIV_DATASTORE_PRUNE: u64 = 1 << 9;
/// `Permissions.Modify`.
pub const PRIV_PERMISSIONS_MODIFY: u64 = 1 << 10;
/// `Remote.Audit`.
pub const PRIV_REMOTE_AUDIT: u64 = 1 << 11;
/// `Remote.Modify`.
pub const PRIV_REMOTE_MODIFY: u64 = 1 << 12;
/// `Remote.Read`.
pub const PRIV_REMOTE_READ: u64 = 1 << 13;
/// `Remote.DatastoreBackup`.
pub const PRIV_REMOTE_DATASTORE_BACKUP: u64 = 1 << 14;
/// `Remote.DatastoreModify`.
pub const PRIV_REMOTE_DATASTORE_MODIFY: u64 = 1 << 15;
/// `Remote.DatastorePrune`.
pub const PRIV_REMOTE_DATASTORE_PRUNE: u64 = 1 << 16;
/// `Sys.Console`.
pub const PRIV_SYS_CONSOLE: u64 = 1 << 17;
/// `Tape.Audit`.
pub const PRIV_TAPE_AUDIT: u64 = 1 << 18;
/// `Tape.Modify`.
pub const PRIV_TAPE_MODIFY: u64 = 1 << 19;
/// `Tape.Write`.
pub const PRIV_TAPE_WRITE: u64 = 1 << 20;
/// `Tape.Read`.
pub const PRIV_TAPE_READ: u64 = 1 << 21;
/// `Realm.Allocate`.
pub const PRIV_REALM_ALLOCATE: u64 = 1 << 22;

/// Every privilege with its PBS name.
pub const PRIVILEGES: &[(&str, u64)] = &[
    ("Datastore.Allocate", PRIV_DATASTORE_ALLOCATE),
    ("Datastore.Audit", PRIV_DATASTORE_AUDIT),
    ("Datastore.Backup", PRIV_DATASTORE_BACKUP),
    ("Datastore.Modify", PRIV_DATASTORE_MODIFY),
    ("Datastore.Prune", PRIV_DATASTORE_PRUNE),
    ("Datastore.Read", PRIV_DATASTORE_READ),
    ("Datastore.Verify", PRIV_DATASTORE_VERIFY),
    ("Permissions.Modify", PRIV_PERMISSIONS_MODIFY),
    ("Realm.Allocate", PRIV_REALM_ALLOCATE),
    ("Remote.Audit", PRIV_REMOTE_AUDIT),
    ("Remote.DatastoreBackup", PRIV_REMOTE_DATASTORE_BACKUP),
    ("Remote.DatastoreModify", PRIV_REMOTE_DATASTORE_MODIFY),
    ("Remote.DatastorePrune", PRIV_REMOTE_DATASTORE_PRUNE),
    ("Remote.Modify", PRIV_REMOTE_MODIFY),
    ("Remote.Read", PRIV_REMOTE_READ),
    ("Sys.Audit", PRIV_SYS_AUDIT),
    ("Sys.Console", PRIV_SYS_CONSOLE),
    ("Sys.Modify", PRIV_SYS_MODIFY),
    ("Sys.PowerManagement", PRIV_SYS_POWER_MANAGEMENT),
    ("Tape.Audit", PRIV_TAPE_AUDIT),
    ("Tape.Modify", PRIV_TAPE_MODIFY),
    ("Tape.Read", PRIV_TAPE_READ),
    ("Tape.Write", PRIV_TAPE_WRITE),
];

/// `Admin`: every privilege.
pub const ROLE_ADMIN: u64 = u64::MAX;
/// `Audit`: read-only access to system and datastore configuration.
pub const ROLE_AUDIT: u64 = PRIV_SYS_AUDIT | PRIV_DATASTORE_AUDIT;
/// `NoAccess`: nothing (used to mask inherited privileges).
pub const ROLE_NO_ACCESS: u64 = 0;
/// `DatastoreAdmin`.
pub const ROLE_DATASTORE_ADMIN: u64 = PRIV_DATASTORE_AUDIT
    | PRIV_DATASTORE_MODIFY
    | PRIV_DATASTORE_READ
    | PRIV_DATASTORE_VERIFY
    | PRIV_DATASTORE_BACKUP
    | PRIV_DATASTORE_PRUNE;
/// `DatastoreReader`.
pub const ROLE_DATASTORE_READER: u64 =
    PRIV_DATASTORE_AUDIT | PRIV_DATASTORE_VERIFY | PRIV_DATASTORE_READ;
/// `DatastoreBackup`.
pub const ROLE_DATASTORE_BACKUP: u64 = PRIV_DATASTORE_BACKUP;
/// `DatastorePowerUser`.
pub const ROLE_DATASTORE_POWERUSER: u64 = PRIV_DATASTORE_PRUNE | PRIV_DATASTORE_BACKUP;
/// `DatastoreAudit`.
pub const ROLE_DATASTORE_AUDIT: u64 = PRIV_DATASTORE_AUDIT;
/// `RemoteAudit`.
pub const ROLE_REMOTE_AUDIT: u64 = PRIV_REMOTE_AUDIT;
/// `RemoteAdmin`.
pub const ROLE_REMOTE_ADMIN: u64 = PRIV_REMOTE_AUDIT | PRIV_REMOTE_MODIFY | PRIV_REMOTE_READ;
/// `RemoteSyncOperator`.
pub const ROLE_REMOTE_SYNC_OPERATOR: u64 = PRIV_REMOTE_AUDIT | PRIV_REMOTE_READ;
/// `RemoteSyncPushOperator`.
pub const ROLE_REMOTE_SYNC_PUSH_OPERATOR: u64 = PRIV_REMOTE_AUDIT | PRIV_REMOTE_DATASTORE_BACKUP;
/// `RemoteDatastorePowerUser`.
pub const ROLE_REMOTE_DATASTORE_POWERUSER: u64 =
    PRIV_REMOTE_AUDIT | PRIV_REMOTE_DATASTORE_BACKUP | PRIV_REMOTE_DATASTORE_PRUNE;
/// `RemoteDatastoreAdmin`.
pub const ROLE_REMOTE_DATASTORE_ADMIN: u64 = PRIV_REMOTE_AUDIT
    | PRIV_REMOTE_DATASTORE_BACKUP
    | PRIV_REMOTE_DATASTORE_MODIFY
    | PRIV_REMOTE_DATASTORE_PRUNE;
/// `TapeAudit`.
pub const ROLE_TAPE_AUDIT: u64 = PRIV_TAPE_AUDIT;
/// `TapeAdmin`.
pub const ROLE_TAPE_ADMIN: u64 =
    PRIV_TAPE_AUDIT | PRIV_TAPE_MODIFY | PRIV_TAPE_READ | PRIV_TAPE_WRITE;
/// `TapeOperator`.
pub const ROLE_TAPE_OPERATOR: u64 = PRIV_TAPE_AUDIT | PRIV_TAPE_READ | PRIV_TAPE_WRITE;
/// `TapeReader`.
pub const ROLE_TAPE_READER: u64 = PRIV_TAPE_AUDIT | PRIV_TAPE_READ;

/// Every role with its PBS name and privileges.
pub const ROLES: &[(&str, u64)] = &[
    ("Admin", ROLE_ADMIN),
    ("Audit", ROLE_AUDIT),
    ("DatastoreAdmin", ROLE_DATASTORE_ADMIN),
    ("DatastoreAudit", ROLE_DATASTORE_AUDIT),
    ("DatastoreBackup", ROLE_DATASTORE_BACKUP),
    ("DatastorePowerUser", ROLE_DATASTORE_POWERUSER),
    ("DatastoreReader", ROLE_DATASTORE_READER),
    ("NoAccess", ROLE_NO_ACCESS),
    ("RemoteAdmin", ROLE_REMOTE_ADMIN),
    ("RemoteAudit", ROLE_REMOTE_AUDIT),
    ("RemoteDatastoreAdmin", ROLE_REMOTE_DATASTORE_ADMIN),
    ("RemoteDatastorePowerUser", ROLE_REMOTE_DATASTORE_POWERUSER),
    ("RemoteSyncOperator", ROLE_REMOTE_SYNC_OPERATOR),
    ("RemoteSyncPushOperator", ROLE_REMOTE_SYNC_PUSH_OPERATOR),
    ("TapeAdmin", ROLE_TAPE_ADMIN),
    ("TapeAudit", ROLE_TAPE_AUDIT),
    ("TapeOperator", ROLE_TAPE_OPERATOR),
    ("TapeReader", ROLE_TAPE_READER),
];

/// The privileges of role `name`, if it is a PBS role.
pub fn role_privileges(name: &str) -> Option<u64> {
    ROLES
        .iter()
        .find(|(role, _)| *role == name)
        .map(|(_, privs)| *privs)
}

/// The names of the privileges in `privs`.
pub fn privilege_names(privs: u64) -> Vec<&'static str> {
    PRIVILEGES
        .iter()
        .filter(|(_, bit)| privs & bit != 0)
        .map(|(name, _)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admin_and_audit_hold_system_privileges() {
        for (name, privs) in ROLES {
            let sys = privs & (PRIV_SYS_AUDIT | PRIV_SYS_MODIFY);
            match *name {
                "Admin" => assert_eq!(sys, PRIV_SYS_AUDIT | PRIV_SYS_MODIFY),
                "Audit" => assert_eq!(sys, PRIV_SYS_AUDIT),
                _ => assert_eq!(sys, 0, "{name}"),
            }
        }
        assert_eq!(role_privileges("NoAccess"), Some(0));
        assert_eq!(role_privileges("Superuser"), None);
        assert_eq!(
            privilege_names(ROLE_AUDIT),
            vec!["Datastore.Audit", "Sys.Audit"]
        );
    }
}
