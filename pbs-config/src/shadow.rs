//! Passwords of `pbs` realm users: `shadow.json`, a JSON object mapping each
//! user *name* (the part before `@pbs`, as upstream PBS keys it) to the
//! `crypt(3)` hash of the password.
//!
//! ```text
//! {"alice":"$y$j9T$...$..."}
//! ```
//!
//! The file is 0600 root:root (the current user's when not root), replaced
//! atomically under `shadow.json.lock`. Other realms have no passwords here:
//! `root@pam` (PAM) cannot log in with a password on this daemon.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Error, bail};

use pbs_api_types::Userid;

use crate::files::SHADOW_JSON;
use crate::{ConfigDir, ShadowLock};

/// The realm whose passwords this file holds.
pub const PBS_REALM: &str = "pbs";

/// `shadow.json` of one [`ConfigDir`]; get it with [`ConfigDir::shadow`].
#[derive(Clone, Copy)]
pub struct Shadow<'a> {
    dir: &'a ConfigDir,
}

impl ConfigDir {
    /// The password file of this config dir.
    pub fn shadow(&self) -> Shadow<'_> {
        Shadow { dir: self }
    }
}

fn check_realm(userid: &Userid) -> Result<(), Error> {
    if userid.realm() != PBS_REALM {
        bail!(
            "user '{userid}' is not in the '{PBS_REALM}' realm - only '{PBS_REALM}' users have passwords here"
        );
    }
    Ok(())
}

impl Shadow<'_> {
    /// Path of `shadow.json` (for messages).
    pub fn path(&self) -> PathBuf {
        self.dir.path(SHADOW_JSON.name)
    }

    /// User name → hash. A missing or empty file is an empty map.
    pub fn read(&self) -> Result<BTreeMap<String, String>, Error> {
        crate::read_hash_map(self.dir, &SHADOW_JSON)
    }

    /// The stored hash of `userid`'s password, if any.
    ///
    /// Upstream keys the file by user name (`alice`); an entry keyed by the
    /// full user id (`alice@pbs`, as DESIGN.md words it) is read too, so a
    /// hand-written file in either spelling works. Writes use the name.
    pub fn hash_of(&self, userid: &Userid) -> Result<Option<String>, Error> {
        check_realm(userid)?;
        let mut data = self.read()?;
        Ok(data
            .remove(userid.name())
            .or_else(|| data.remove(userid.as_str())))
    }

    /// Checks `password` against the stored hash, in constant time.
    ///
    /// # Errors
    ///
    /// "no password set" or "invalid credentials"; never quotes the password.
    pub fn verify_password(&self, userid: &Userid, password: &str) -> Result<(), Error> {
        match self.hash_of(userid)? {
            Some(hash) => proxmox_sys::crypt::verify_crypt_pw(password, &hash),
            None => bail!("no password set for user '{userid}'"),
        }
    }

    /// Stores the hash of `password` for `userid` (a `pbs` realm user).
    ///
    /// # Locking
    ///
    /// Takes the password file lock.
    pub fn store_password(&self, userid: &Userid, password: &str) -> Result<(), Error> {
        check_realm(userid)?;
        let hash = proxmox_sys::crypt::encrypt_pw(password)?;
        self.update(|data| {
            data.insert(userid.name().to_string(), hash);
        })
    }

    /// Removes `userid`'s password (no error if it has none).
    ///
    /// # Locking
    ///
    /// Takes the password file lock.
    pub fn remove_password(&self, userid: &Userid) -> Result<(), Error> {
        check_realm(userid)?;
        self.update(|data| {
            data.remove(userid.name());
        })
    }

    fn update(&self, change: impl FnOnce(&mut BTreeMap<String, String>)) -> Result<(), Error> {
        let shadow_lock: ShadowLock = self.dir.lock_config_file()?;
        let mut data = self.read()?;
        change(&mut data);
        let json = serde_json::to_vec_pretty(&data)?;
        self.dir.write_locked(&json, &shadow_lock, None)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn passwords_are_keyed_by_user_name_and_hashed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path()).unwrap();
        let shadow = dir.shadow();
        let alice: Userid = "alice@pbs".parse().unwrap();
        shadow.store_password(&alice, "correct horse").unwrap();
        shadow.verify_password(&alice, "correct horse").unwrap();
        assert!(shadow.verify_password(&alice, "correct horsE").is_err());
        let raw = std::fs::read_to_string(shadow.path()).unwrap();
        assert!(
            raw.contains("\"alice\"") && !raw.contains("correct horse"),
            "{raw}"
        );
        assert_eq!(
            std::fs::metadata(shadow.path()).unwrap().mode() & 0o777,
            0o600
        );
        let root = Userid::root_userid();
        assert!(shadow.store_password(&root, "x").is_err());

        // an entry keyed by the full user id is read too
        let hash = proxmox_sys::crypt::encrypt_pw("carol's pass").unwrap();
        std::fs::write(shadow.path(), format!("{{\"carol@pbs\":\"{hash}\"}}")).unwrap();
        let carol: Userid = "carol@pbs".parse().unwrap();
        shadow.verify_password(&carol, "carol's pass").unwrap();
        let err = shadow
            .verify_password(&"bob@pbs".parse().unwrap(), "x")
            .unwrap_err();
        assert!(err.to_string().contains("no password set"), "{err}");
    }
}
