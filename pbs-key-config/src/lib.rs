//! The PBS encryption key file format: [`KeyConfig`].
//!
//! A key file is compact JSON:
//!
//! ```text
//! {"kdf": null | {"Scrypt": {n, r, p, salt}} | {"PBKDF2": {iter, salt}},
//!  "created": RFC3339, "modified": RFC3339, "data": base64,
//!  "fingerprint": "aa:bb:..."?, "hint": "..."?}
//! ```
//!
//! Without a KDF, `data` is the raw 32-byte key. With one, `data` is
//! IV(16) || GCM tag(16) || AES-256-GCM ciphertext(32) of the key under the
//! passphrase-derived key, with empty AAD. The fingerprint is computed as in
//! [`fingerprint()`] and is checked against the key on every
//! [`KeyConfig::decrypt`].
//!
//! Beside the key file itself: [`bundle`] (export bundles: several keys in one
//! encrypted file) and [`paperkey`] (a key on paper and back).
//!
//! This crate knows nothing about `/etc/proxmox-backup`, the backup user or
//! locks: `pbs-config` owns those. Secrets never appear in `Debug` output or
//! error messages; raw key buffers held by this crate are zeroed on drop.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bundle;
mod error;
mod fingerprint;
mod hint;
mod kdf;
pub mod paperkey;
mod rsa;
mod wire;

use std::fmt;
use std::path::Path;

use anyhow::{Error, bail, format_err};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use proxmox_lang::error::ErrorLayer;
use proxmox_lang::try_block;
use proxmox_sys::fs::{CreateOptions, replace_file};
use proxmox_time::epoch_i64;

use pbs_api_types::{Fingerprint, Kdf, KeyInfo};

pub use error::KeyError;
pub use fingerprint::fingerprint;
pub use hint::printable_hint;
pub use kdf::{
    KeyDerivationConfig, MAX_PBKDF2_ITERATIONS, MAX_SCRYPT_MEMORY, MAX_SCRYPT_WORK, SALT_LEN_RANGE,
};
pub use rsa::{rsa_decrypt_key_config, rsa_encrypt_key_config};
pub use wire::epoch_to_rfc3339;

/// Shortest passphrase accepted, in bytes (as upstream).
pub const MIN_PASSPHRASE_LEN: usize = 5;

/// Why `passphrase` is no secret, if it is the first line of a file given
/// in place of a passphrase file (finding 67): one every file of its
/// kind begins with (a PEM file, as a public key given for the passphrase
/// instead of as an RSA recipient; a paperkey, as text or HTML page), or
/// an export bundle's clear header. `None` for any other passphrase.
/// Judged for a new bundle only: a bundle made so still opens.
pub fn passphrase_no_secret(passphrase: &[u8]) -> Option<&'static str> {
    const KINDS: [(&[u8], &str); 4] = [
        (
            b"-----BEGIN ",
            "it begins as every PEM file of its kind ('-----BEGIN ...')",
        ),
        (
            b"Proxmox Backup encryption key - paperkey",
            "it begins as every paperkey",
        ),
        (b"<!doctype", "it begins as an HTML page"),
        (
            b"{\"format\":\"pbs-keystore-export\"",
            "it begins as an export bundle's clear header, which whoever holds that bundle reads",
        ),
    ];
    KINDS.iter().find_map(|(start, what)| {
        passphrase
            .get(..start.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(start))
            .then_some(*what)
    })
}

/// Largest key file [`KeyConfig::load`] reads (real ones are about 300 bytes).
pub const MAX_KEY_FILE_SIZE: u64 = 64 * 1024;

/// An encryption key as stored in a key file, possibly passphrase protected.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyConfig {
    /// KDF parameters; `None` for an unprotected key.
    pub kdf: Option<KeyDerivationConfig>,
    /// Creation time (epoch; RFC 3339 on the wire).
    #[serde(with = "wire::epoch_as_rfc3339")]
    pub created: i64,
    /// Last modification time (epoch; RFC 3339 on the wire).
    #[serde(with = "wire::epoch_as_rfc3339")]
    pub modified: i64,
    /// The raw key (unprotected) or IV || tag || ciphertext (protected).
    #[serde(with = "wire::bytes_as_base64")]
    pub data: Vec<u8>,
    /// Fingerprint of the key, if stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// Passphrase hint, stored in clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl fmt::Debug for KeyConfig {
    /// Written by hand: `data` holds the key itself for unprotected keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyConfig")
            .field("kdf", &self.kdf)
            .field("created", &self.created)
            .field("modified", &self.modified)
            .field(
                "data",
                &format_args!("<redacted, {} bytes>", self.data.len()),
            )
            .field("fingerprint", &self.fingerprint)
            .field("hint", &self.hint)
            .finish()
    }
}

impl Drop for KeyConfig {
    fn drop(&mut self) {
        self.data.zeroize();
    }
}

impl From<&KeyConfig> for KeyInfo {
    /// The metadata a config entry gets (without `path`).
    fn from(key_config: &KeyConfig) -> Self {
        KeyInfo {
            path: None,
            kdf: key_config.kdf_kind(),
            created: key_config.created,
            modified: key_config.modified,
            fingerprint: key_config.fingerprint,
            hint: key_config.hint.clone(),
        }
    }
}

/// A serde_json error's message without echoing input: quoted strings in it
/// (values from the file) are replaced by `<value>`.
pub(crate) fn scrubbed(err: &serde_json::Error) -> String {
    static INPUT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    // a quoted string, or the variant name serde repeats from the input
    let input = INPUT.get_or_init(|| {
        regex::Regex::new(r#""(?:[^"\\]|\\.)*"|(unknown variant )`[^`]*`"#).unwrap()
    });
    let text = err.to_string();
    input.replace_all(&text, "${1}<value>").into_owned()
}

/// Turns a serde_json error into a [`KeyError::Malformed`] without echoing
/// input (see [`scrubbed`]).
fn malformed(err: serde_json::Error) -> Error {
    KeyError::Malformed(scrubbed(&err)).into()
}

impl KeyConfig {
    /// Which KDF protects the key.
    pub fn kdf_kind(&self) -> Kdf {
        match self.kdf {
            None => Kdf::None,
            Some(KeyDerivationConfig::Scrypt { .. }) => Kdf::Scrypt,
            Some(KeyDerivationConfig::PBKDF2 { .. }) => Kdf::PBKDF2,
        }
    }

    /// Whether the key is passphrase protected.
    pub fn is_protected(&self) -> bool {
        self.kdf.is_some()
    }

    /// A new random key protected by `passphrase` with `kdf`
    /// ([`Kdf::None`] gives an unprotected key). Returns the raw key too.
    pub fn new(passphrase: &[u8], kdf: Kdf) -> Result<([u8; 32], Self), Error> {
        let key = proxmox_sys::linux::random_data::<32>()?;
        let key_config = Self::with_key(&key, passphrase, kdf)?;
        Ok((key, key_config))
    }

    /// A new random key, unprotected (what `encryption-key create` and a
    /// rotation store). The random bytes are made where the key file's
    /// data keeps them: no copy of the key is left on the stack.
    pub fn generate_unprotected() -> Result<Self, Error> {
        let mut data = vec![0u8; 32];
        proxmox_sys::linux::fill_with_random_data(&mut data)?;
        Ok(Self::unprotected(data))
    }

    /// An unprotected key file for `raw_key`, with its fingerprint.
    pub fn without_password(raw_key: [u8; 32]) -> Result<Self, Error> {
        Ok(Self::unprotected(raw_key.to_vec()))
    }

    /// An unprotected key file holding the 32 bytes of `data`, with its
    /// fingerprint, created now.
    fn unprotected(data: Vec<u8>) -> Self {
        let key: &[u8; 32] = data.as_slice().try_into().expect("a key of 32 bytes");
        let fingerprint = fingerprint(key);
        let created = epoch_i64();
        Self {
            kdf: None,
            created,
            modified: created,
            data,
            fingerprint: Some(fingerprint),
            hint: None,
        }
    }

    /// A key file for `raw_key`, protected by `passphrase` with `kdf`
    /// ([`Kdf::None`] ignores the passphrase and stores the key unprotected).
    ///
    /// # Errors
    ///
    /// [`KeyError::PassphraseTooShort`] for a passphrase under
    /// [`MIN_PASSPHRASE_LEN`] bytes.
    pub fn with_key(raw_key: &[u8; 32], passphrase: &[u8], kdf: Kdf) -> Result<Self, Error> {
        let kdf = match kdf {
            Kdf::None => return Ok(Self::unprotected(raw_key.to_vec())),
            Kdf::Scrypt => KeyDerivationConfig::new_scrypt()?,
            Kdf::PBKDF2 => KeyDerivationConfig::new_pbkdf2()?,
        };
        if passphrase.len() < MIN_PASSPHRASE_LEN {
            return Err(KeyError::PassphraseTooShort.into());
        }
        let mut derived = kdf.derive_key(passphrase)?;
        let iv = proxmox_sys::linux::random_data::<16>()?;
        let mut tag = [0u8; 16];
        let encrypted = openssl::symm::encrypt_aead(
            openssl::symm::Cipher::aes_256_gcm(),
            &derived,
            Some(&iv),
            b"",
            raw_key,
            &mut tag,
        );
        derived.zeroize();
        let encrypted = encrypted.map_err(|err| format_err!("unable to encrypt key - {err}"))?;

        let mut data = Vec::with_capacity(64);
        data.extend_from_slice(&iv);
        data.extend_from_slice(&tag);
        data.extend_from_slice(&encrypted);

        let created = epoch_i64();
        Ok(Self {
            kdf: Some(kdf),
            created,
            modified: created,
            data,
            fingerprint: Some(fingerprint(raw_key)),
            hint: None,
        })
    }

    /// Parses a key file's contents.
    ///
    /// # Errors
    ///
    /// [`KeyError::Malformed`] for anything that is not a KeyConfig document.
    pub fn from_json(text: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(text).map_err(malformed)
    }

    /// The key file's contents as upstream writes them: compact JSON, no
    /// trailing newline.
    pub fn to_json(&self) -> Result<String, Error> {
        Ok(serde_json::to_string(self)?)
    }

    /// Reads and parses a key file (at most [`MAX_KEY_FILE_SIZE`] bytes).
    pub fn load<P: AsRef<Path>>(path: P) -> Result<Self, Error> {
        let path = path.as_ref();
        try_block!({
            use std::io::Read;
            let file = std::fs::File::open(path)?;
            let mut data = Vec::new();
            file.take(MAX_KEY_FILE_SIZE + 1).read_to_end(&mut data)?;
            if data.len() as u64 > MAX_KEY_FILE_SIZE {
                bail!("file is larger than {MAX_KEY_FILE_SIZE} bytes, not a key file");
            }
            let result = Self::from_json(&data);
            data.zeroize();
            result
        })
        .layer_err(|| format!("unable to load key file {path:?}"))
    }

    /// Decrypts the key, asking `passphrase` for the passphrase only if the
    /// key is protected, and checks it against the stored fingerprint.
    ///
    /// Returns the raw key, the creation time and the key's fingerprint.
    ///
    /// # Errors
    ///
    /// A [`KeyError`]: passphrase too short, KDF parameters out of range,
    /// wrong passphrase or corrupted file (with the stored hint), wrong data
    /// length, or a stored fingerprint that does not match the key.
    pub fn decrypt(
        &self,
        passphrase: &dyn Fn() -> Result<Vec<u8>, Error>,
    ) -> Result<([u8; 32], i64, Fingerprint), Error> {
        let key = match &self.kdf {
            None => *self.unprotected_key()?,
            Some(kdf) => {
                // iv(16) || tag(16) || ciphertext; a ciphertext of the wrong
                // length fails the tag check, as upstream
                if self.data.len() < 32 {
                    return Err(KeyError::WrongDataLength {
                        found: self.data.len(),
                        expected: 64,
                    }
                    .into());
                }
                kdf.check_bounds()?;
                let mut passphrase = passphrase()?;
                if passphrase.len() < MIN_PASSPHRASE_LEN {
                    passphrase.zeroize();
                    return Err(KeyError::PassphraseTooShort.into());
                }
                let derived = kdf.derive_key(&passphrase);
                passphrase.zeroize();
                let mut derived = derived?;
                let (iv, rest) = self.data.split_at(16);
                let (tag, encrypted) = rest.split_at(16);
                let decrypted = openssl::symm::decrypt_aead(
                    openssl::symm::Cipher::aes_256_gcm(),
                    &derived,
                    Some(iv),
                    b"",
                    encrypted,
                    tag,
                );
                derived.zeroize();
                let mut decrypted = decrypted.map_err(|_| KeyError::WrongPassphraseOrCorrupt {
                    hint: self.hint.clone(),
                })?;
                let key: Result<[u8; 32], _> = decrypted.as_slice().try_into();
                decrypted.zeroize();
                key.map_err(|_| KeyError::WrongPassphraseOrCorrupt {
                    hint: self.hint.clone(),
                })?
            }
        };

        let computed = match self.checked_fingerprint(&key) {
            Ok(computed) => computed,
            Err(err) => {
                let mut key = key;
                key.zeroize();
                return Err(err.into());
            }
        };
        Ok((key, self.created, computed))
    }

    /// The key of an unprotected key file, where its data holds it.
    fn unprotected_key(&self) -> Result<&[u8; 32], KeyError> {
        self.data
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongDataLength {
                found: self.data.len(),
                expected: 32,
            })
    }

    /// The fingerprint of `key`, checked against the stored one if there
    /// is one.
    fn checked_fingerprint(&self, key: &[u8; 32]) -> Result<Fingerprint, KeyError> {
        let computed = fingerprint(key);
        match self.fingerprint {
            Some(stored) if stored != computed => {
                Err(KeyError::FingerprintMismatch { stored, computed })
            }
            _ => Ok(computed),
        }
    }

    /// The fingerprint of an unprotected key, computed from its bytes and
    /// checked against the stored one, as [`KeyConfig::decrypt`] checks
    /// it, without a copy of the key: it is read where the key file's
    /// data holds it, and the fingerprint's own frames are overwritten
    /// (what a caller that only checks a key needs: [`KeyConfig::decrypt`]
    /// returns the key by value, and each move of it leaves a copy on the
    /// stack that no caller can wipe).
    ///
    /// # Errors
    ///
    /// For a protected key (its key is not in the file), a wrong data
    /// length or a stored fingerprint that does not match the key, as
    /// [`KeyConfig::decrypt`].
    pub fn unprotected_fingerprint(&self) -> Result<Fingerprint, Error> {
        if self.is_protected() {
            bail!("the key is protected by a passphrase - its fingerprint is computed on decrypt");
        }
        Ok(self.checked_fingerprint(self.unprotected_key()?)?)
    }

    /// The same key under a new passphrase (or unprotected with
    /// [`Kdf::None`]): creation time, fingerprint and hint are kept, the
    /// modification time is now. The old passphrase comes from `passphrase`.
    pub fn change_passphrase(
        &self,
        passphrase: &dyn Fn() -> Result<Vec<u8>, Error>,
        new_passphrase: &[u8],
        kdf: Kdf,
    ) -> Result<Self, Error> {
        let (mut key, created, _fingerprint) = self.decrypt(passphrase)?;
        let new = Self::with_key(&key, new_passphrase, kdf);
        key.zeroize();
        let mut new = new?;
        new.created = created;
        new.hint = if new.is_protected() {
            self.hint.clone()
        } else {
            None
        };
        Ok(new)
    }

    /// The same key unprotected, for unattended use: decrypts a protected key
    /// file with the passphrase from `passphrase` (scrypt or PBKDF2, as
    /// `proxmox-backup-client key create` makes them) and checks the key
    /// against the stored fingerprint, if the file has one. The result has
    /// the key's creation time and its fingerprint, no hint (a hint belongs
    /// to a passphrase) and the modification time now. An unprotected key
    /// file gives the same key without asking for a passphrase.
    ///
    /// # Errors
    ///
    /// As [`KeyConfig::decrypt`]: wrong passphrase (with the stored hint),
    /// KDF parameters out of range, a stored fingerprint that is not the
    /// key's.
    pub fn to_unprotected(
        &self,
        passphrase: &dyn Fn() -> Result<Vec<u8>, Error>,
    ) -> Result<Self, Error> {
        self.change_passphrase(passphrase, b"", Kdf::None)
    }

    /// Writes the key file with mode 0600 (see [`KeyConfig::store_with`]).
    pub fn store<P: AsRef<Path>>(&self, path: P, replace: bool) -> Result<(), Error> {
        self.store_with(path, replace, Mode::from_bits_truncate(0o600), None, None)
    }

    /// Writes the key file with the given mode and owner, fsynced; mode and
    /// owner are set before any data is written.
    ///
    /// With `replace`, an existing file is atomically replaced. Without, the
    /// call fails if `path` exists, and the file is made as
    /// `create_new_file` makes it: an unnamed file (else a temp file)
    /// linked to `path` once written (a link never overwrites), so the file
    /// appears complete or not at all (except on a file system without
    /// either, where it is written in place); a failed directory sync
    /// removes it again (or is a [`NewFileLeft`]).
    pub fn store_with<P: AsRef<Path>>(
        &self,
        path: P,
        replace: bool,
        mode: Mode,
        owner: Option<Uid>,
        group: Option<Gid>,
    ) -> Result<(), Error> {
        let path = path.as_ref();
        let mut options = CreateOptions::new().perm(mode);
        if let Some(uid) = owner {
            options = options.owner(uid);
        }
        if let Some(gid) = group {
            options = options.group(gid);
        }
        let mut data = self.to_json()?.into_bytes();
        let result = if replace {
            replace_file(path, &data, options, true)
        } else {
            create_new_file(path, &data, options, &|| ()).map(|_| ())
        };
        data.zeroize();
        result.layer_err(|| format!("unable to store key file {path:?}"))
    }
}

/// Writes a file holding key material (a paperkey, a key file) to `path`
/// with mode 0600, never over an existing file: it appears complete or not
/// at all, unless the file system has neither unnamed files nor hard links
/// (see `create_new_file`); says how the file was made. An error leaves
/// nothing this call wrote at `path`, unless it is a [`NewFileLeft`]: the
/// file complete, its directory not synced.
pub fn write_new_file<P: AsRef<Path>>(path: P, data: &[u8]) -> Result<NewFileWay, Error> {
    write_new_file_with(path, data, &|| ())
}

/// [`write_new_file`], calling `before_link` once the data is written and
/// synced, before the file gets its name (a crash point of the tests);
/// says how the file was made.
pub fn write_new_file_with<P: AsRef<Path>>(
    path: P,
    data: &[u8],
    before_link: &dyn Fn(),
) -> Result<NewFileWay, Error> {
    let path = path.as_ref();
    let options = CreateOptions::new().perm(Mode::from_bits_truncate(0o600));
    create_new_file(path, data, options, before_link)
        .layer_err(|| format!("unable to write {path:?}"))
}

/// How a new file holding key material was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewFileWay {
    /// An unnamed file (`O_TMPFILE`) in the target's directory, linked to
    /// the target once written and synced: no other name ever existed, so
    /// a crash at any point leaves nothing beside the target.
    Unnamed,
    /// The file system refuses unnamed files: a temp file beside the
    /// target, then a hard link to the target: a crash in between leaves
    /// the temp file.
    TempName,
    /// Created under its name and written in place (a file system without
    /// hard links): a crash part way leaves a partial file there.
    InPlace,
}

/// A new file holding key material whose directory could not be synced
/// once the file had its name, and which could not be removed again: it
/// is complete under its name, but the name might not survive a crash
/// (see `create_new_file`). A caller that removes what the file holds
/// from elsewhere says where that went.
#[derive(Debug)]
pub struct NewFileLeft {
    /// Why the directory could not be synced.
    pub sync_error: String,
    /// Why the file could not be removed again.
    pub remove_error: String,
}

impl fmt::Display for NewFileLeft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} - the file is complete under its name, but the name might not survive a crash, \
             and removing the file again failed - {}",
            self.sync_error, self.remove_error
        )
    }
}

impl std::error::Error for NewFileLeft {}

/// Device and inode: which file a name shows.
type FileId = (u64, u64);

fn file_id(metadata: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

/// Creates `path` with `data`, failing if it exists (a symbolic link
/// too, dangling or not: it is never followed), so that the name never
/// shows a partial file: an unnamed file (`O_TMPFILE`) in its directory,
/// mode and owner set before the data, fsync, then linked to `path`
/// ([`create_unnamed`]). Where the file system refuses unnamed files, a
/// temp file beside `path` and a hard link instead; on a file system
/// without hard links either (vfat, exfat, some network and FUSE file
/// systems: where a key's only copy often goes) the file is created
/// exclusively and written in place, and removed if that fails. The
/// result says which way was taken; `before_link` runs once the data is
/// synced, before the file has its name.
///
/// Once named, the directory is synced; if that fails (a device failing),
/// the file is removed again if the name still shows it ([`take_back`]),
/// so that a failed write leaves nothing of it at the name, whichever way
/// it was made; if it cannot be removed either, the error is a
/// [`NewFileLeft`].
pub(crate) fn create_new_file(
    path: &Path,
    data: &[u8],
    options: CreateOptions,
    before_link: &dyn Fn(),
) -> Result<NewFileWay, Error> {
    let (way, made) = name_new_file(path, data, options, before_link)?;
    if let Err(sync_error) = proxmox_sys::fs::fsync_parent_dir(path) {
        return Err(take_back(path, made, sync_error));
    }
    Ok(way)
}

/// [`create_new_file`] up to the file having its name: the way taken and
/// the file made.
fn name_new_file(
    path: &Path,
    data: &[u8],
    options: CreateOptions,
    before_link: &dyn Fn(),
) -> Result<(NewFileWay, FileId), Error> {
    if let Some(made) = create_unnamed(path, data, options, before_link)? {
        return Ok((NewFileWay::Unnamed, made));
    }
    let tmp = proxmox_sys::fs::write_tmp_file(path, data, options, true)?;
    let made = std::fs::symlink_metadata(tmp.path())
        .map(|metadata| file_id(&metadata))
        .map_err(|err| format_err!("unable to stat {:?} - {err}", tmp.path()))?;
    before_link();
    match std::fs::hard_link(tmp.path(), path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("file exists, refusing to overwrite it")
        }
        Err(err)
            if matches!(
                err.raw_os_error(),
                Some(nix::libc::EPERM | nix::libc::EOPNOTSUPP | nix::libc::ENOSYS)
            ) =>
        {
            drop(tmp);
            let made = create_new_file_in_place(path, data, options)?;
            return Ok((NewFileWay::InPlace, made));
        }
        Err(err) => bail!("{err}"),
    }
    drop(tmp); // removes the temp name; the data stays under `path`
    Ok((NewFileWay::TempName, made))
}

/// The file `made` at `path`, whose directory could not be synced
/// (`sync_error`): removed again if the name still shows it, and the
/// directory synced once more, which may fail as well (the removal is
/// then as durable as the link was). The error says what became of the
/// name: the file removed, gone from it, or another file there (left
/// alone); a [`NewFileLeft`] only if the name still shows the file.
fn take_back(path: &Path, made: FileId, sync_error: Error) -> Error {
    let crash = "the file had its name, but the name might not survive a crash";
    match remove_made(path, made) {
        Ok(AtName::MadeRemoved) => {
            let _ = proxmox_sys::fs::fsync_parent_dir(path);
            format_err!("{sync_error} - {crash}: removed again")
        }
        Ok(AtName::Nothing) => format_err!("{sync_error} - {crash}, and it is no longer under it"),
        // what this call wrote is not at the name: no NewFileLeft, which
        // would tell the caller that the file there holds it
        Ok(AtName::Other) => format_err!(
            "{sync_error} - {crash}, and another file is under its name now: left alone, it is \
             not the file written"
        ),
        Err(remove_error) => NewFileLeft {
            sync_error: sync_error.to_string(),
            remove_error,
        }
        .into(),
    }
}

/// What [`remove_made`] found at the name.
#[derive(Debug, PartialEq, Eq)]
enum AtName {
    /// The file made, now removed.
    MadeRemoved,
    /// Nothing.
    Nothing,
    /// Another file, left alone.
    Other,
}

/// Removes `path` if the name shows the file `made` (by device and
/// inode), never another file put there meanwhile; why not, if it could
/// not. (A file swapped in between the look and the removal is the one
/// race left: `unlink` cannot be told which file to expect.)
fn remove_made(path: &Path, made: FileId) -> Result<AtName, String> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if file_id(&metadata) == made => std::fs::remove_file(path)
            .map(|()| AtName::MadeRemoved)
            .map_err(|err| err.to_string()),
        Ok(_) => Ok(AtName::Other),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(AtName::Nothing),
        Err(err) => Err(err.to_string()),
    }
}

/// [`create_new_file`] through an unnamed file: `O_TMPFILE` in the
/// directory of `path`, then `linkat` of `/proc/self/fd/N` (followed) to
/// `path`, which never replaces a name; without `/proc`, `linkat` with
/// `AT_EMPTY_PATH` (root only). The file made once it has its name (its
/// directory not synced yet); `None`, with nothing made, if the file
/// system (or kernel) refuses `O_TMPFILE`.
fn create_unnamed(
    path: &Path,
    data: &[u8],
    options: CreateOptions,
    before_link: &dyn Fn(),
) -> Result<Option<FileId>, Error> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;

    use nix::errno::Errno;
    use nix::fcntl::AtFlags;

    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mode = options.get_perm().map_or(0o600, |perm| perm.bits());
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .mode(mode)
        .custom_flags(nix::libc::O_TMPFILE | nix::libc::O_CLOEXEC)
        .open(dir)
    {
        Ok(file) => file,
        // EISDIR: a kernel without O_TMPFILE, which reads it as O_DIRECTORY
        Err(err)
            if matches!(
                err.raw_os_error(),
                Some(nix::libc::EOPNOTSUPP | nix::libc::EISDIR | nix::libc::EINVAL)
            ) =>
        {
            return Ok(None);
        }
        Err(err) => bail!("unable to create a file in {dir:?} - {err}"),
    };
    // mode and owner before any data
    options.apply_to(&file, path)?;
    file.write_all(data)?;
    file.sync_all()?;
    let made = file_id(&file.metadata()?);
    before_link();
    let fd = file.as_raw_fd();
    let proc_path = format!("/proc/self/fd/{fd}");
    let mut linked = nix::unistd::linkat(
        None,
        Path::new(&proc_path),
        None,
        path,
        AtFlags::AT_SYMLINK_FOLLOW,
    );
    if linked == Err(Errno::ENOENT) && !Path::new("/proc/self/fd").exists() {
        linked = nix::unistd::linkat(Some(fd), Path::new(""), None, path, AtFlags::AT_EMPTY_PATH);
    }
    match linked {
        Ok(()) => Ok(Some(made)),
        Err(Errno::EEXIST) => bail!("file exists, refusing to overwrite it"),
        Err(err) => bail!("{err}"),
    }
}

/// `O_CREAT | O_EXCL` creation of `path` with `data`, synced (its
/// directory not yet); removed again on error if the name still shows
/// it ([`remove_made`]). The file made.
fn create_new_file_in_place(
    path: &Path,
    data: &[u8],
    options: CreateOptions,
) -> Result<FileId, Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mode = options.get_perm().map_or(0o600, |perm| perm.bits());
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("file exists, refusing to overwrite it")
        }
        Err(err) => bail!("{err}"),
    };
    let made = match file.metadata() {
        Ok(metadata) => file_id(&metadata),
        Err(err) => {
            // still empty, and the name ours an instant ago
            drop(file);
            let _ = std::fs::remove_file(path);
            bail!("{err}");
        }
    };
    let written = options
        .apply_to(&file, path)
        .and_then(|()| file.write_all(data).map_err(Error::from))
        .and_then(|()| file.sync_all().map_err(Error::from));
    if let Err(err) = written {
        drop(file);
        // in a directory others can change, the name may show their file now
        let _ = remove_made(path, made);
        bail!("{err}");
    }
    Ok(made)
}

/// Parses key file contents and decrypts them, as upstream's `decrypt_key`.
pub fn decrypt_key(
    keydata: &[u8],
    passphrase: &dyn Fn() -> Result<Vec<u8>, Error>,
) -> Result<([u8; 32], i64, Fingerprint), Error> {
    KeyConfig::from_json(keydata)?.decrypt(passphrase)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// A fixed RSA key for escrow tests, to keep key generation out of tests.
    const TEST_RSA_PEM: &[u8] = include_bytes!("testdata/escrow-test-rsa4096.pem");

    const KEY: [u8; 32] = [0x5a; 32];

    fn pass(p: &'static str) -> impl Fn() -> Result<Vec<u8>, Error> {
        move || Ok(p.as_bytes().to_vec())
    }

    fn no_pass() -> Result<Vec<u8>, Error> {
        bail!("no passphrase must be asked for an unprotected key")
    }

    fn key_error(err: Error) -> KeyError {
        err.downcast::<KeyError>().expect("a KeyError")
    }

    #[test]
    fn unprotected_round_trip_keeps_wire_field_names() {
        let config = KeyConfig::without_password(KEY).unwrap();
        let json = config.to_json().unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys.len(), 5, "{keys:?}");
        assert!(value["kdf"].is_null());
        assert!(value["created"].as_str().unwrap().ends_with("+00:00"));
        assert!(!json.ends_with('\n'));
        let back = KeyConfig::from_json(json.as_bytes()).unwrap();
        let (key, created, fp) = back.decrypt(&no_pass).unwrap();
        assert_eq!(key, KEY);
        assert_eq!(created, config.created);
        assert_eq!(fp, fingerprint(&KEY));
    }

    /// What decrypt computes and refuses, without the key: the same
    /// fingerprint, a stored one that does not match and a wrong length
    /// refused with decrypt's errors, a protected key refused.
    #[test]
    fn unprotected_fingerprint_is_decrypts() {
        let config = KeyConfig::without_password(KEY).unwrap();
        assert_eq!(
            config.unprotected_fingerprint().unwrap(),
            config.decrypt(&no_pass).unwrap().2
        );
        let mut unstored = KeyConfig::without_password(KEY).unwrap();
        unstored.fingerprint = None;
        assert_eq!(
            unstored.unprotected_fingerprint().unwrap(),
            fingerprint(&KEY)
        );

        let mut swapped = KeyConfig::without_password(KEY).unwrap();
        swapped.fingerprint = Some(fingerprint(&[0x5b; 32]));
        assert_eq!(
            key_error(swapped.unprotected_fingerprint().unwrap_err()),
            key_error(swapped.decrypt(&no_pass).unwrap_err())
        );
        let mut short = KeyConfig::without_password(KEY).unwrap();
        short.data.truncate(31);
        assert_eq!(
            key_error(short.unprotected_fingerprint().unwrap_err()),
            KeyError::WrongDataLength {
                found: 31,
                expected: 32
            }
        );
        let protected = KeyConfig::with_key(&KEY, b"correct horse", Kdf::PBKDF2).unwrap();
        let err = protected.unprotected_fingerprint().unwrap_err();
        assert!(err.to_string().contains("protected"), "{err}");
    }

    #[test]
    fn pbkdf2_round_trip_and_wrong_passphrase_with_hint() {
        let mut config = KeyConfig::with_key(&KEY, b"correct horse", Kdf::PBKDF2).unwrap();
        config.hint = Some("the horse".into());
        let json = config.to_json().unwrap();
        assert!(json.contains("\"PBKDF2\":{\"iter\":65535,"), "{json}");
        let back = KeyConfig::from_json(json.as_bytes()).unwrap();
        assert_eq!(back.decrypt(&pass("correct horse")).unwrap().0, KEY);

        let err = back.decrypt(&pass("wrong horse")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to decrypt key - wrong passphrase or corrupted key file (password hint: the horse)"
        );
    }

    #[test]
    fn short_passphrase_is_refused_before_derivation() {
        assert_eq!(
            key_error(KeyConfig::with_key(&KEY, b"abcd", Kdf::Scrypt).unwrap_err()),
            KeyError::PassphraseTooShort
        );
        let config = KeyConfig::with_key(&KEY, b"abcde", Kdf::PBKDF2).unwrap();
        assert_eq!(
            key_error(config.decrypt(&pass("abcd")).unwrap_err()),
            KeyError::PassphraseTooShort
        );
    }

    #[test]
    fn in_place_creation_for_file_systems_without_links() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        let options = CreateOptions::new().perm(nix::sys::stat::Mode::from_bits_truncate(0o600));
        create_new_file_in_place(&path, b"{}", options).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let err = create_new_file_in_place(&path, b"other", options).unwrap_err();
        assert!(err.to_string().contains("file exists"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        // never through a link
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(dir.path().join("target.json"), &link).unwrap();
        assert!(create_new_file_in_place(&link, b"{}", options).is_err());
        assert!(!dir.path().join("target.json").exists());
    }

    #[test]
    fn wrong_data_lengths_are_refused() {
        let mut config = KeyConfig::without_password(KEY).unwrap();
        config.data.truncate(31);
        assert_eq!(
            key_error(config.decrypt(&no_pass).unwrap_err()),
            KeyError::WrongDataLength {
                found: 31,
                expected: 32
            }
        );
        let mut config = KeyConfig::with_key(&KEY, b"passphrase", Kdf::PBKDF2).unwrap();
        config.data.truncate(31);
        assert!(matches!(
            key_error(config.decrypt(&pass("passphrase")).unwrap_err()),
            KeyError::WrongDataLength { found: 31, .. }
        ));
        // IV and tag present, ciphertext cut: the tag check fails, as upstream
        let mut config = KeyConfig::with_key(&KEY, b"passphrase", Kdf::PBKDF2).unwrap();
        config.data.truncate(48);
        assert!(matches!(
            key_error(config.decrypt(&pass("passphrase")).unwrap_err()),
            KeyError::WrongPassphraseOrCorrupt { .. }
        ));
    }

    #[test]
    fn stored_fingerprint_must_match_the_key() {
        let mut config = KeyConfig::without_password(KEY).unwrap();
        config.fingerprint = Some(fingerprint(&[1u8; 32]));
        let err = key_error(config.decrypt(&no_pass).unwrap_err());
        assert!(matches!(err, KeyError::FingerprintMismatch { .. }), "{err}");
        assert!(err.to_string().contains(&fingerprint(&KEY).to_string()));
    }

    #[test]
    fn change_passphrase_keeps_key_fingerprint_and_created() {
        let mut old = KeyConfig::with_key(&KEY, b"first pass", Kdf::Scrypt).unwrap();
        old.created = 1_700_000_000;
        old.hint = Some("first".into());
        let new = old
            .change_passphrase(&pass("first pass"), b"second pass", Kdf::PBKDF2)
            .unwrap();
        assert_eq!(new.created, 1_700_000_000);
        assert_eq!(new.fingerprint, old.fingerprint);
        assert_eq!(new.hint.as_deref(), Some("first"));
        assert_eq!(new.decrypt(&pass("second pass")).unwrap().0, KEY);
        assert!(new.decrypt(&pass("first pass")).is_err());
        assert!(
            old.change_passphrase(&pass("bad pass"), b"x123456", Kdf::PBKDF2)
                .is_err()
        );
    }

    #[test]
    fn debug_redacts_key_bytes() {
        let config = KeyConfig::without_password(KEY).unwrap();
        let text = format!("{config:?}");
        assert!(text.contains("<redacted, 32 bytes>"), "{text}");
        assert!(!text.contains("90, 90"), "{text}");
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(KEY);
        assert!(!text.contains(&b64), "{text}");
        assert!(!text.contains(&hex::encode(KEY)), "{text}");
    }

    #[test]
    fn malformed_json_errors_do_not_echo_values() {
        let secret = "U0VDUkVULUtFWS1CWVRFUy1TRUNSRVQtS0VZLUJZVEVTIQ==";
        for text in [
            format!(r#"{{"kdf":null,"created":5,"modified":"x","data":"{secret}"}}"#),
            format!(r#"{{"kdf":"{secret}","created":"a","modified":"b","data":"c"}}"#),
            format!(
                r#"{{"kdf":null,"created":"2025-01-01T00:00:00Z","modified":"2025-01-01T00:00:00Z","data":"{secret}!"}}"#
            ),
        ] {
            let err = key_error(KeyConfig::from_json(text.as_bytes()).unwrap_err());
            assert!(matches!(err, KeyError::Malformed(_)), "{err}");
            let err = err.to_string();
            assert!(!err.contains(secret), "{err}");
            assert!(!err.contains("U0VDUkVU"), "{err}");
        }
    }

    #[test]
    fn store_creates_with_mode_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.enc");
        let config = KeyConfig::without_password(KEY).unwrap();
        config.store(&path, false).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        let err = config.store(&path, false).unwrap_err().to_string();
        assert!(err.contains("k.enc") && err.contains("exists"), "{err}");
        config
            .store_with(&path, true, Mode::from_bits_truncate(0o640), None, None)
            .unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
        assert_eq!(KeyConfig::load(&path).unwrap(), config);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temp files left behind");
    }

    /// A new key file never goes through a symbolic link at its name,
    /// dangling or not, and leaves no other name in the directory.
    #[test]
    fn a_new_file_is_never_written_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.enc");
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = write_new_file(&path, b"key material").unwrap_err();
        assert!(format!("{err:#}").contains("exists"), "{err:#}");
        assert!(!target.exists());
        assert!(std::fs::symlink_metadata(&path).unwrap().is_symlink());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temp files left behind");

        let fresh = dir.path().join("new.enc");
        let way = write_new_file_with(&fresh, b"key material", &|| ()).unwrap();
        // the temp dir is on a file system with O_TMPFILE (ext4, tmpfs)
        assert_eq!(way, NewFileWay::Unnamed);
        assert_eq!(std::fs::read(&fresh).unwrap(), b"key material");
        assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o7777, 0o600);
    }

    /// A failed directory sync takes back only the file this call made:
    /// removed if the name shows it; another file put at the name
    /// meanwhile is left alone and is no [`NewFileLeft`] (which would say
    /// the file there holds what was written); a name already gone is
    /// said to be gone, not removed.
    #[test]
    fn a_failed_sync_takes_back_only_the_file_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let moved = dir.path().join("moved.json");
        let sync_failed = || format_err!("unable to sync directory - Input/output error");
        let made_at = |path: &Path| file_id(&std::fs::symlink_metadata(path).unwrap());

        write_new_file(&path, b"key material").unwrap();
        let made = made_at(&path);
        let err = take_back(&path, made, sync_failed());
        assert!(err.downcast_ref::<NewFileLeft>().is_none(), "{err}");
        assert!(format!("{err}").ends_with("removed again"), "{err}");
        assert!(!path.exists());

        write_new_file(&path, b"key material").unwrap();
        let made = made_at(&path);
        std::fs::rename(&path, &moved).unwrap();
        std::fs::write(&path, b"theirs").unwrap();
        let err = take_back(&path, made, sync_failed());
        let text = format!("{err}");
        assert!(err.downcast_ref::<NewFileLeft>().is_none(), "{text}");
        assert!(
            text.contains("another file is under its name now"),
            "{text}"
        );
        assert!(!text.contains("removed again"), "{text}");
        assert!(!text.contains("complete under its name"), "{text}");
        assert_eq!(std::fs::read(&path).unwrap(), b"theirs");
        assert_eq!(std::fs::read(&moved).unwrap(), b"key material");
        assert_eq!(remove_made(&path, made), Ok(AtName::Other));
        assert_eq!(std::fs::read(&path).unwrap(), b"theirs");

        std::fs::remove_file(&path).unwrap();
        let err = take_back(&path, made, sync_failed());
        assert!(err.downcast_ref::<NewFileLeft>().is_none(), "{err}");
        assert!(format!("{err}").ends_with("no longer under it"), "{err}");
        assert_eq!(remove_made(&moved, made), Ok(AtName::MadeRemoved));
        assert!(!moved.exists());
    }

    #[test]
    fn load_refuses_oversized_files_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.enc");
        std::fs::write(&path, vec![b' '; MAX_KEY_FILE_SIZE as usize + 1]).unwrap();
        let err = KeyConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("big.enc") && err.contains("larger"), "{err}");
    }

    #[test]
    fn rsa_escrow_round_trip() {
        let private = openssl::rsa::Rsa::private_key_from_pem(TEST_RSA_PEM).unwrap();
        let public = openssl::rsa::Rsa::from_public_components(
            private.n().to_owned().unwrap(),
            private.e().to_owned().unwrap(),
        )
        .unwrap();
        let config = KeyConfig::with_key(&KEY, b"escrow pass", Kdf::PBKDF2).unwrap();
        let blob = rsa_encrypt_key_config(public, &config).unwrap();
        assert_eq!(blob.len(), 512);
        let (key, created, fp) =
            rsa_decrypt_key_config(private.clone(), &blob, &pass("escrow pass")).unwrap();
        assert_eq!((key, created, fp), (KEY, config.created, fingerprint(&KEY)));

        let err = rsa_decrypt_key_config(private.clone(), &blob[..200], &pass("escrow pass"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("200 bytes"), "{err}");
        let small = openssl::rsa::Rsa::generate(1024).unwrap();
        let small_public = openssl::rsa::Rsa::from_public_components(
            small.n().to_owned().unwrap(),
            small.e().to_owned().unwrap(),
        )
        .unwrap();
        let err = rsa_encrypt_key_config(small_public, &config)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not fit"), "{err}");
        let mut tampered = blob.clone();
        tampered[10] ^= 1;
        assert!(rsa_decrypt_key_config(private, &tampered, &pass("escrow pass")).is_err());
    }

    #[test]
    fn key_info_from_key_config() {
        let mut config = KeyConfig::with_key(&KEY, b"passphrase", Kdf::PBKDF2).unwrap();
        config.hint = Some("hint".into());
        let info = KeyInfo::from(&config);
        assert_eq!(info.kdf, Kdf::PBKDF2);
        assert_eq!(info.fingerprint, Some(fingerprint(&KEY)));
        assert_eq!(info.hint.as_deref(), Some("hint"));
        assert_eq!(info.path, None);
    }
}
