//! API token secrets: `token.shadow`, a JSON object mapping each token id
//! to the `crypt(3)` hash of its secret, as upstream PBS keeps it.
//!
//! ```text
//! {"alice@pbs!backup":"$y$j9T$...$..."}
//! ```
//!
//! The secret itself is a random UUID shown once when the token is
//! generated; only its hash is stored. The file is 0640 backup:backup (the
//! current user's when not root), replaced atomically under
//! `token.shadow.lock`. Errors never quote the file's contents or a secret.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Error, bail};

use pbs_api_types::Authid;

use crate::files::TOKEN_SHADOW;
use crate::{ConfigDir, TokenShadowLock};

/// `token.shadow` of one [`ConfigDir`]; get it with [`ConfigDir::token_shadow`].
#[derive(Clone, Copy)]
pub struct TokenShadow<'a> {
    dir: &'a ConfigDir,
}

impl ConfigDir {
    /// The token secret file of this config dir.
    pub fn token_shadow(&self) -> TokenShadow<'_> {
        TokenShadow { dir: self }
    }
}

/// A fresh token secret: a random (version 4) UUID, as upstream generates.
pub fn generate_secret() -> Result<String, Error> {
    let mut bytes: [u8; 16] = proxmox_sys::linux::random_data()?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

impl TokenShadow<'_> {
    /// Path of `token.shadow` (for messages).
    pub fn path(&self) -> PathBuf {
        self.dir.path(TOKEN_SHADOW.name)
    }

    /// Takes the token secret lock.
    ///
    /// # Locking
    ///
    /// After the user config lock, if both are needed.
    pub fn lock(&self) -> Result<TokenShadowLock, Error> {
        self.dir.lock_config_file()
    }

    /// Token id → hash. A missing or empty file is an empty map.
    pub fn read(&self) -> Result<BTreeMap<String, String>, Error> {
        crate::read_hash_map(self.dir, &TOKEN_SHADOW)
    }

    /// The stored hash of `tokenid`'s secret, if any.
    pub fn hash_of(&self, tokenid: &Authid) -> Result<Option<String>, Error> {
        Ok(self.read()?.remove(&tokenid.to_string()))
    }

    fn write(&self, data: &BTreeMap<String, String>, held: &TokenShadowLock) -> Result<(), Error> {
        let json = serde_json::to_vec(data)?;
        self.dir.write_locked(&json, held, None)
    }

    /// Checks `secret` against the stored hash of `tokenid`, in constant
    /// time; an unknown token against a dummy hash first, so both cost the
    /// same (see [`crate::shadow::verify_or_dummy`]).
    ///
    /// # Errors
    ///
    /// "invalid API token" for an unknown token, "invalid credentials" for a
    /// wrong secret; neither quotes the secret.
    pub fn verify_secret(&self, tokenid: &Authid, secret: &str) -> Result<(), Error> {
        if !tokenid.is_token() {
            bail!("'{tokenid}' is not an API token id");
        }
        let hash = self.hash_of(tokenid)?;
        if crate::shadow::verify_or_dummy(hash.as_deref(), secret) {
            return Ok(());
        }
        match hash {
            Some(_) => bail!("invalid credentials"),
            None => bail!("invalid API token"),
        }
    }

    /// Stores the hash of `secret` as `tokenid`'s secret.
    ///
    /// # Locking
    ///
    /// Takes the token secret lock.
    pub fn set_secret(&self, tokenid: &Authid, secret: &str) -> Result<(), Error> {
        if !tokenid.is_token() {
            bail!("'{tokenid}' is not an API token id");
        }
        let hash = proxmox_sys::crypt::encrypt_pw(secret)?;
        let lock = self.lock()?;
        let mut data = self.read()?;
        data.insert(tokenid.to_string(), hash);
        self.write(&data, &lock)
    }

    /// Generates a secret for `tokenid`, stores its hash and returns it:
    /// the only time the secret is known.
    ///
    /// # Locking
    ///
    /// Takes the token secret lock.
    pub fn generate_and_set_secret(&self, tokenid: &Authid) -> Result<String, Error> {
        let secret = generate_secret()?;
        self.set_secret(tokenid, &secret)?;
        Ok(secret)
    }

    /// Removes `tokenid`'s secret (no error if it has none).
    ///
    /// # Locking
    ///
    /// Takes the token secret lock.
    pub fn delete_secret(&self, tokenid: &Authid) -> Result<(), Error> {
        let lock = self.lock()?;
        let mut data = self.read()?;
        if data.remove(&tokenid.to_string()).is_some() {
            self.write(&data, &lock)?;
        }
        Ok(())
    }
}

/// Checks a token secret in the default config dir.
pub fn verify_secret(tokenid: &Authid, secret: &str) -> Result<(), Error> {
    ConfigDir::default_dir()?
        .token_shadow()
        .verify_secret(tokenid, secret)
}

/// Sets a token secret in the default config dir.
pub fn set_secret(tokenid: &Authid, secret: &str) -> Result<(), Error> {
    ConfigDir::default_dir()?
        .token_shadow()
        .set_secret(tokenid, secret)
}

/// Removes a token secret in the default config dir.
pub fn delete_secret(tokenid: &Authid) -> Result<(), Error> {
    ConfigDir::default_dir()?
        .token_shadow()
        .delete_secret(tokenid)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn secrets_round_trip_hashed_and_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path()).unwrap();
        let shadow = dir.token_shadow();
        let token: Authid = "alice@pbs!t1".parse().unwrap();
        let secret = shadow.generate_and_set_secret(&token).unwrap();
        assert_eq!(secret.len(), 36);
        assert_eq!(&secret[14..15], "4");
        shadow.verify_secret(&token, &secret).unwrap();
        assert!(shadow.verify_secret(&token, "wrong").is_err());
        let other: Authid = "alice@pbs!t2".parse().unwrap();
        assert!(shadow.verify_secret(&other, &secret).is_err());
        let raw = std::fs::read_to_string(shadow.path()).unwrap();
        assert!(!raw.contains(&secret) && raw.contains("alice@pbs!t1") && raw.contains("$y$"));
        assert_eq!(
            std::fs::metadata(shadow.path()).unwrap().mode() & 0o777,
            0o640
        );
        shadow.delete_secret(&token).unwrap();
        assert!(shadow.verify_secret(&token, &secret).is_err());
    }

    #[test]
    fn parse_errors_do_not_quote_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path()).unwrap();
        std::fs::write(
            dir.path(TOKEN_SHADOW.name),
            "{\"a@pbs!t\": [\"$y$secretish\"]}",
        )
        .unwrap();
        let err = dir.token_shadow().read().unwrap_err().to_string();
        assert!(
            err.contains("token.shadow") && !err.contains("secretish"),
            "{err}"
        );
    }
}
