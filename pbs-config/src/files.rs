//! Every file of the config dir, written once: its name, who owns it, its
//! mode and how large it may be.
//!
//! Readers, writers, lockers, `verify` and the man page all take these
//! values from here. Owners come in classes ([`FileClass`]); the ownership
//! policy of the config dir ([`crate::Ownership`]) turns a class into a
//! uid, gid and mode.
//!
//! A file is trusted only if its owner is root or the owner its class
//! names, and if nobody else may write it: the config dir belongs to the
//! `backup` user, who could otherwise put a file of its own in place of one
//! that root alone writes (a forged `acl.cfg`, a known `authkey.key`).

/// Who owns a file, and so who may write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileClass {
    /// root:backup 0640: written by root, read by the `backup` group
    /// (`encryption-keys.cfg`, `sync.cfg`, `user.cfg`, `acl.cfg`, key files).
    Config,
    /// root:root 0600: root alone (`shadow.json`, `authkey.key`).
    Private,
    /// backup:backup 0640: the `backup` user's own (`token.shadow`, as upstream).
    BackupConfig,
    /// backup:backup 0660: lock files.
    Lock,
}

impl FileClass {
    /// The mode a new file of this class gets.
    pub const fn mode(self) -> u32 {
        match self {
            FileClass::Config | FileClass::BackupConfig => 0o640,
            FileClass::Private => 0o600,
            FileClass::Lock => 0o660,
        }
    }

    /// Mode bits that make a file of this class untrustworthy: write access
    /// for anyone but its owner (its group too, for files root alone writes).
    pub const fn untrusted_mode_bits(self) -> u32 {
        match self {
            FileClass::Config | FileClass::Private => 0o022,
            FileClass::BackupConfig | FileClass::Lock => 0o002,
        }
    }
}

/// A file at a fixed name in the config dir.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigFile {
    /// Its name in the config dir (for [`AUDIT_FILES`]: in
    /// `encryption-keys/.audit/`).
    pub name: &'static str,
    /// Who owns it.
    pub class: FileClass,
    /// The largest size read.
    pub max_size: u64,
    /// What it holds, for the man page and `verify`.
    pub what: &'static str,
}

const MIB: u64 = 1024 * 1024;

/// Largest config file read (about 270,000 keys for `encryption-keys.cfg`).
pub const MAX_CONFIG_SIZE: u64 = 64 * MIB;

const fn config(name: &'static str, max_size: u64, what: &'static str) -> ConfigFile {
    ConfigFile {
        name,
        class: FileClass::Config,
        max_size,
        what,
    }
}

const fn lock(name: &'static str, what: &'static str) -> ConfigFile {
    ConfigFile {
        name,
        class: FileClass::Lock,
        max_size: 0,
        what,
    }
}

/// `encryption-keys.cfg`: each key's metadata and fingerprint.
pub const ENCRYPTION_KEYS_CFG: ConfigFile = config(
    "encryption-keys.cfg",
    MAX_CONFIG_SIZE,
    "encryption key metadata and fingerprints",
);
/// Its lock.
pub const ENCRYPTION_KEYS_LOCK: ConfigFile =
    lock(".encryption-keys.lck", "lock of encryption-keys.cfg");
/// `sync.cfg`: sync jobs.
pub const SYNC_CFG: ConfigFile = config("sync.cfg", MAX_CONFIG_SIZE, "sync jobs");
/// Its lock.
pub const SYNC_LOCK: ConfigFile = lock(".sync.lck", "lock of sync.cfg");
/// `user.cfg`: users and API tokens.
pub const USER_CFG: ConfigFile = config("user.cfg", 16 * MIB, "users and API tokens");
/// Its lock.
pub const USER_LOCK: ConfigFile = lock(".user.lck", "lock of user.cfg");
/// `acl.cfg`: access control lists.
pub const ACL_CFG: ConfigFile = config("acl.cfg", 16 * MIB, "access control lists");
/// Its lock.
pub const ACL_LOCK: ConfigFile = lock(".acl.lck", "lock of acl.cfg");
/// `token.shadow`: hashed API token secrets.
pub const TOKEN_SHADOW: ConfigFile = ConfigFile {
    name: "token.shadow",
    class: FileClass::BackupConfig,
    max_size: 16 * MIB,
    what: "hashed API token secrets",
};
/// Its lock.
pub const TOKEN_SHADOW_LOCK: ConfigFile = lock("token.shadow.lock", "lock of token.shadow");
/// `shadow.json`: hashed passwords of `pbs` realm users.
pub const SHADOW_JSON: ConfigFile = ConfigFile {
    name: "shadow.json",
    class: FileClass::Private,
    max_size: 16 * MIB,
    what: "hashed passwords of pbs realm users",
};
/// Its lock.
pub const SHADOW_LOCK: ConfigFile = lock("shadow.json.lock", "lock of shadow.json");
/// `authkey.key`: the key that signs tickets.
pub const AUTH_KEY: ConfigFile = ConfigFile {
    name: "authkey.key",
    class: FileClass::Private,
    max_size: MIB,
    what: "private key signing login tickets",
};
/// `authkey.pub`: its public half.
pub const AUTH_PUB: ConfigFile = config("authkey.pub", MIB, "public key checking login tickets");
/// `csrf.key`: the key of CSRF prevention tokens.
pub const CSRF_KEY: ConfigFile = config("csrf.key", MIB, "key of CSRF prevention tokens");
/// `proxy.key`: the daemon's TLS key.
pub const PROXY_KEY: ConfigFile = config("proxy.key", MIB, "TLS private key of the API daemon");
/// `proxy.pem`: the daemon's TLS certificate.
pub const PROXY_PEM: ConfigFile = config("proxy.pem", MIB, "TLS certificate of the API daemon");

/// Every file at a fixed name, in the order the man page lists them.
pub const ALL: &[ConfigFile] = &[
    ENCRYPTION_KEYS_CFG,
    ENCRYPTION_KEYS_LOCK,
    SYNC_CFG,
    SYNC_LOCK,
    USER_CFG,
    USER_LOCK,
    ACL_CFG,
    ACL_LOCK,
    TOKEN_SHADOW,
    TOKEN_SHADOW_LOCK,
    SHADOW_JSON,
    SHADOW_LOCK,
    AUTH_KEY,
    AUTH_PUB,
    CSRF_KEY,
    PROXY_KEY,
    PROXY_PEM,
];

/// The key directory's name in the config dir (root:backup 0750).
pub const KEY_DIR_NAME: &str = "encryption-keys";
/// Mode of the key directory.
pub const KEY_DIR_MODE: u32 = 0o750;
/// Mode of a config dir created by the library (as upstream lays out
/// `/etc/proxmox-backup`: the backup user's, nobody else may look inside).
pub const CONFIG_DIR_MODE: u32 = 0o700;

/// The file name of `id`'s key file in the key directory.
pub fn key_file_name(id: &str) -> String {
    format!("{id}.enc")
}

/// The file name of the lock of `id`'s key file in the key directory.
pub fn key_lock_name(id: &str) -> String {
    format!("{id}.enc.lck")
}

/// The trash's name in the key directory (ids cannot start with `.`, so no
/// key file or key lock collides with it; upstream never lists it).
pub const TRASH_DIR_NAME: &str = ".trash";
/// Mode of the trash directory: root's alone (root:root 0700), so the
/// `backup` group cannot read the key files in it.
pub const TRASH_DIR_MODE: u32 = 0o700;
/// Class of the trash directory's owner and of the records in it
/// (root:root, records 0600). Trashed key files keep the owner and mode
/// they had: they are renamed into the trash, never rewritten.
pub const TRASH_CLASS: FileClass = FileClass::Private;
/// Largest trash record read (real ones are well under 1 KiB).
pub const MAX_TRASH_RECORD_SIZE: u64 = 64 * 1024;

/// The directory of root's own lock files in the key directory (root:root
/// 0700; [`crate::lock::mirror`]): where the config dir is one others may
/// change, each lock of it is taken here first, where the `backup` user
/// can neither remove nor replace it.
pub const ROOT_LOCK_DIR_NAME: &str = ".locks";
/// Mode of the root lock directory.
pub const ROOT_LOCK_DIR_MODE: u32 = 0o700;
/// Class of the root lock directory's owner and of the lock files in it
/// (root:root, 0600).
pub const ROOT_LOCK_CLASS: FileClass = FileClass::Private;

/// The audit directory's name in the key directory (root:backup 0750;
/// DESIGN.md section 7, [`crate::audit`]).
pub const AUDIT_DIR_NAME: &str = ".audit";
/// Mode of the audit directory.
pub const AUDIT_DIR_MODE: u32 = 0o750;
/// `.audit/log`: the audit log (read line by line, so no size limit).
pub const AUDIT_LOG: ConfigFile = config(
    "log",
    u64::MAX,
    "audit log of key operations (JSON lines, hash-chained)",
);
/// `.audit/checkpoint`: the latest signed checkpoint of the audit log.
pub const AUDIT_CHECKPOINT: ConfigFile = config(
    "checkpoint",
    64 * 1024,
    "latest signed checkpoint of the audit log",
);
/// `.audit/signing.key`: this store's Ed25519 key signing the checkpoints.
pub const AUDIT_SIGNING_KEY: ConfigFile = ConfigFile {
    name: "signing.key",
    class: FileClass::Private,
    max_size: 64 * 1024,
    what: "private key signing the audit checkpoints",
};
/// `.audit/log.lck`: taken for each append, the innermost lock.
pub const AUDIT_LOCK: ConfigFile = lock("log.lck", "lock of the audit log");
/// `.audit/pending.lck`: shared by audited operations from intent to
/// outcome, exclusive for `audit verify`.
pub const AUDIT_PENDING_LOCK: ConfigFile = lock(
    "pending.lck",
    "held by audited operations between their intent and outcome",
);
/// Every file of the audit directory, in the order the man page lists them.
pub const AUDIT_FILES: &[ConfigFile] = &[
    AUDIT_LOG,
    AUDIT_CHECKPOINT,
    AUDIT_SIGNING_KEY,
    AUDIT_LOCK,
    AUDIT_PENDING_LOCK,
];

/// The rotation journals' directory in the key directory (root:root 0700;
/// DESIGN.md section 7, [`crate::rotation`]): one journal per rotation in
/// progress, and the lock every rotation holds from its plan to its end.
pub const ROTATE_DIR_NAME: &str = ".rotate";
/// Mode of the rotation directory: root's alone.
pub const ROTATE_DIR_MODE: u32 = 0o700;
/// Class of the rotation directory's owner and of the journals in it
/// (root:root, journals 0600).
pub const ROTATE_CLASS: FileClass = FileClass::Private;
/// Largest journal read (real ones are well under 1 KiB).
pub const MAX_JOURNAL_SIZE: u64 = 64 * 1024;
/// `.rotate/rotate.lck`: held by a rotation (or its abort) from its plan to
/// its end, the outermost lock of the store.
pub const ROTATE_LOCK: ConfigFile = lock(
    "rotate.lck",
    "held by a key rotation from its plan to its end",
);

/// The file name, in the rotation directory, of the journal of a rotation
/// whose first job (in sorted order) is `job`.
pub fn journal_name(job: &str) -> String {
    format!("{job}.json")
}

/// Class of key files (root:backup 0640).
pub const KEY_FILE_CLASS: FileClass = FileClass::Config;
/// Class of key lock files (backup:backup 0660).
pub const KEY_LOCK_CLASS: FileClass = FileClass::Lock;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_locks_are_hidden_or_suffixed() {
        let mut names: Vec<&str> = ALL.iter().map(|file| file.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for file in ALL.iter().filter(|file| file.class == FileClass::Lock) {
            assert!(
                file.name.starts_with('.') || file.name.ends_with(".lock"),
                "{}",
                file.name
            );
        }
    }

    #[test]
    fn audit_files_are_unique_and_their_locks_suffixed() {
        let mut names: Vec<&str> = AUDIT_FILES.iter().map(|file| file.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), AUDIT_FILES.len());
        for file in AUDIT_FILES {
            assert_eq!(
                file.class == FileClass::Lock,
                file.name.ends_with(".lck"),
                "{}",
                file.name
            );
        }
    }
}
