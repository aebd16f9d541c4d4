//! Passwords of `pbs` realm users: `shadow.json`, a JSON object mapping each
//! user *name* (the part before the last `@`, as upstream PBS keys it) to
//! the `crypt(3)` hash of the password.
//!
//! ```text
//! {"alice":"$y$j9T$...$..."}
//! ```
//!
//! A user's entry is the one under its own name and no other: within the
//! realm a name stands for exactly one user id (`svc@pbs` is the name of
//! `svc@pbs@pbs`, not the id of `svc@pbs`, whose name is `svc`), so two
//! users never share an entry.
//!
//! The file is 0600 root:root (the current user's when not root), replaced
//! atomically under `shadow.json.lock`. Other realms have no passwords here:
//! `root@pam` (PAM) cannot log in with a password on this daemon.
//!
//! A check for a user without an entry costs what a check of a wrong
//! password costs ([`verify_or_dummy`]), so its time does not tell whether
//! the user exists.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use anyhow::{Error, bail};

use proxmox_schema::param_bail;

use pbs_api_types::{PBS_PASSWORD_SCHEMA, Userid};

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

/// Checks a password a user is to be given against [`PBS_PASSWORD_SCHEMA`];
/// the error names the field `password`, never its value.
pub fn check_password(password: &str) -> Result<(), Error> {
    if let Err(err) = PBS_PASSWORD_SCHEMA.parse_simple_value(password) {
        param_bail!("password", "{err} (5 to 64 characters, as upstream)");
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

    /// The stored hash of `userid`'s password, if any: the entry under its
    /// name, as upstream keys the file (an entry under its full id is
    /// another user's: the one whose name that is).
    pub fn hash_of(&self, userid: &Userid) -> Result<Option<String>, Error> {
        check_realm(userid)?;
        Ok(self.read()?.remove(userid.name()))
    }

    /// Checks `password` against the stored hash, in constant time; for a
    /// user without a password, against a dummy hash first, so both cost
    /// the same.
    ///
    /// # Errors
    ///
    /// "no password set" or "invalid credentials"; never quotes the password.
    pub fn verify_password(&self, userid: &Userid, password: &str) -> Result<(), Error> {
        let hash = self.hash_of(userid)?;
        let known = hash.is_some();
        if verify_or_dummy(hash.as_deref(), password) {
            return Ok(());
        }
        match known {
            true => bail!("invalid credentials"),
            false => bail!("no password set for user '{userid}'"),
        }
    }

    /// Stores the hash of `password` for `userid` (a `pbs` realm user).
    ///
    /// # Errors
    ///
    /// A password refused by [`PBS_PASSWORD_SCHEMA`] (shorter than 5 or
    /// longer than 64 characters, as upstream) is a parameter error of
    /// `password`, which never quotes it.
    ///
    /// # Locking
    ///
    /// Takes the password file lock.
    pub fn store_password(&self, userid: &Userid, password: &str) -> Result<(), Error> {
        check_realm(userid)?;
        check_password(password)?;
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

/// A `crypt(3)` hash of a random secret nobody knows, made once per
/// process the way stored hashes are made (same scheme, same cost).
static DUMMY_HASH: LazyLock<Result<String, String>> = LazyLock::new(|| {
    let secret = hex::encode(proxmox_sys::linux::random_data::<32>().map_err(|e| e.to_string())?);
    proxmox_sys::crypt::encrypt_pw(&secret).map_err(|err| err.to_string())
});

/// Checks `secret` against `hash`, or, without one (an unknown user or
/// token, a user without a password), against a dummy hash, and then says
/// no: either way one hash is computed, so the time of the answer does not
/// tell whether the id exists. Used for passwords and token secrets.
pub fn verify_or_dummy(hash: Option<&str>, secret: &str) -> bool {
    match hash {
        Some(hash) => proxmox_sys::crypt::verify_crypt_pw(secret, hash).is_ok(),
        None => {
            if let Ok(dummy) = DUMMY_HASH.as_deref() {
                let _ = proxmox_sys::crypt::verify_crypt_pw(secret, dummy);
            }
            false
        }
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
        assert!(shadow.store_password(&root, "long enough").is_err());
        // upstream's bounds: 5 to 64 characters
        for bad in ["", "abcd", &"x".repeat(65)] {
            let err = shadow.store_password(&alice, bad).unwrap_err();
            let param = err.downcast_ref::<proxmox_schema::ParameterError>();
            assert!(param.is_some(), "{bad:?}: {err:#}");
            assert!(format!("{err:#}").contains("'password'"), "{err:#}");
        }
        shadow.store_password(&alice, &"x".repeat(64)).unwrap();
        shadow.store_password(&alice, "abcde").unwrap();
        shadow.verify_password(&alice, "abcde").unwrap();

        let err = shadow
            .verify_password(&"bob@pbs".parse().unwrap(), "x")
            .unwrap_err();
        assert!(err.to_string().contains("no password set"), "{err}");
    }

    /// Regression test for issue 14, finding 4: `svc@pbs`'s password lookup
    /// fell back to the entry under `svc@pbs`, the name of `svc@pbs@pbs`.
    #[test]
    fn users_whose_ids_differ_never_share_an_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path()).unwrap();
        let shadow = dir.shadow();
        let ids = ["svc@pbs", "svc@pbs@pbs", "svc@pbs@pbs@pbs", "svc.2@pbs"];
        for (index, id) in ids.iter().enumerate() {
            let userid: Userid = id.parse().unwrap();
            shadow
                .store_password(&userid, &format!("password-{index}"))
                .unwrap();
            for (other_index, other) in ids.iter().enumerate() {
                let other: Userid = other.parse().unwrap();
                let result = shadow.verify_password(&other, &format!("password-{index}"));
                assert_eq!(
                    result.is_ok(),
                    other_index == index,
                    "{other} with {id}'s password"
                );
            }
            shadow.remove_password(&userid).unwrap();
        }
        // upstream's file, keyed by name: "svc@pbs" is svc@pbs@pbs's entry
        let hash = proxmox_sys::crypt::encrypt_pw("upstream-pass").unwrap();
        std::fs::write(shadow.path(), format!("{{\"svc@pbs\":\"{hash}\"}}")).unwrap();
        shadow
            .verify_password(&"svc@pbs@pbs".parse().unwrap(), "upstream-pass")
            .unwrap();
        let err = shadow
            .verify_password(&"svc@pbs".parse().unwrap(), "upstream-pass")
            .unwrap_err();
        assert!(err.to_string().contains("no password set"), "{err}");
    }

    /// The dummy checked for unknown ids costs what a stored hash costs:
    /// same scheme and parameters as a fresh hash; and nothing verifies
    /// against a missing hash.
    #[test]
    fn the_dummy_hash_is_made_like_a_stored_one() {
        let dummy = DUMMY_HASH.as_deref().unwrap();
        let fresh = proxmox_sys::crypt::encrypt_pw("x").unwrap();
        let setting = |hash: &str| hash.rsplitn(3, '$').nth(2).unwrap().to_string();
        assert_eq!(setting(dummy), setting(&fresh), "{dummy} / {fresh}");
        assert!(!verify_or_dummy(None, ""));
        assert!(!verify_or_dummy(None, dummy));
        assert!(verify_or_dummy(Some(&fresh), "x"));
        assert!(!verify_or_dummy(Some(&fresh), "y"));
    }
}
