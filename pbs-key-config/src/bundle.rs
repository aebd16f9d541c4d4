//! Export bundles: several keys in one encrypted, self-describing file.
//!
//! A bundle is two lines of text (`docs/export-format.md` is the reference):
//!
//! ```text
//! {"format":"pbs-keystore-export","version":1,...,"payload":{...}}\n
//! BASE64(AES-256-GCM ciphertext || tag)\n
//! ```
//!
//! The first line, the header, is compact JSON in clear: format and version,
//! creation time, origin, an optional audit checkpoint, per key its id,
//! fingerprint, creation time, archive time and hint, the recipients and the
//! payload's nonce and length. [`read_bundle_header`] reads it without any
//! secret. The second line is the payload: AES-256-GCM under a random 32-byte
//! data key, with the exact header bytes (without the newline) as associated
//! data, over compact JSON holding each key's config entry ([`CryptKey`]) and
//! its `.enc` file content. The data key is wrapped once per recipient: with
//! AES-256-GCM under a scrypt key derived from a passphrase (the key-file KDF
//! parameters of [`KeyDerivationConfig::new_scrypt`]), or with RSA-OAEP
//! (SHA-256, MGF1-SHA-256) to an RSA public key.
//!
//! Invariants a maintainer must keep:
//! - Opening is all or nothing: every check (recipient, tag, every entry
//!   against its header line, every key file's fingerprint) passes before
//!   [`open_bundle`] returns anything.
//! - Header checks that cost nothing come first; KDF parameters are checked
//!   against the key-file bounds before any derivation.
//! - Errors, `Debug` output and panics never hold key bytes, key file
//!   contents, passphrases or the data key; buffers holding them are zeroed.
//! - Writing and reading use the same entry check ([`check_entry`]), so a
//!   bundle this code writes is one it accepts.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use anyhow::{Error, bail, format_err};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::hash::MessageDigest;
use openssl::pkey::{HasPublic, Id, PKey, Private, Public};
use openssl::rsa::Padding;
use openssl::symm::Cipher;
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use proxmox_lang::error::ErrorLayer;
use proxmox_lang::try_block;
use proxmox_sys::fs::CreateOptions;
use proxmox_time::epoch_i64;

use pbs_api_types::{CRYPT_KEY_ID_SCHEMA, CryptKey, Fingerprint};

use crate::wire::bytes_as_base64;
use crate::{KeyConfig, KeyDerivationConfig, KeyError, MIN_PASSPHRASE_LEN, scrubbed};

/// The `format` value of every bundle header.
pub const BUNDLE_FORMAT: &str = "pbs-keystore-export";
/// The bundle format version this code writes and reads.
pub const BUNDLE_VERSION: u64 = 1;
/// Largest bundle [`read_bundle_file`] and [`open_bundle`] accept (a key
/// takes well under 2 KiB).
pub const MAX_BUNDLE_SIZE: usize = 64 << 20;
/// Most recipients a bundle may have (each passphrase recipient costs a
/// scrypt derivation when opening).
pub const MAX_RECIPIENTS: usize = 16;
/// Smallest RSA key a bundle is encrypted to, in bits.
pub const MIN_RSA_BITS: u32 = 2048;
/// Longest origin string, in bytes.
pub const MAX_ORIGIN_LEN: usize = 256;
/// Longest audit checkpoint text, in bytes.
pub const MAX_CHECKPOINT_LEN: usize = 16 * 1024;

/// The only payload cipher.
const PAYLOAD_CIPHER: &str = "aes-256-gcm";
/// AES-GCM nonce length (96 bits, the GCM standard).
const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// A data key wrapped with AES-256-GCM: 32 bytes ciphertext and the tag.
const WRAPPED_KEY_LEN: usize = 32 + TAG_LEN;
/// Largest RSA-wrapped data key accepted (a 16384-bit RSA block).
const MAX_RSA_WRAPPED_LEN: usize = 2048;

/// Why a bundle could not be read or opened.
///
/// Raised inside an [`anyhow::Error`]; recover it with `downcast_ref` on the
/// chain. No variant carries key bytes, key file contents or a passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BundleError {
    /// The data does not start with a bundle header at all.
    NotABundle,
    /// A bundle of a version this code does not read.
    UnsupportedVersion(u64),
    /// The header or the payload is not what the format says; holds which
    /// part and why, never a value from the file.
    Malformed(String),
    /// The file ends early.
    Truncated {
        /// Bytes the header announces; `None` if the header line itself
        /// has no end.
        expected: Option<usize>,
        /// Bytes present.
        found: usize,
    },
    /// The payload failed authentication or decoding: the file was changed
    /// after it was written.
    Corrupt(String),
    /// Two keys with the same id.
    DuplicateId(String),
    /// Two keys with the same fingerprint.
    DuplicateFingerprint {
        /// The shared fingerprint.
        fingerprint: Fingerprint,
        /// The first id that has it.
        first: String,
        /// The second id that has it.
        second: String,
    },
    /// The bundle has no recipient of the kind the secret is for
    /// (`"passphrase"`, `"RSA key"`).
    NoRecipientFor(&'static str),
    /// The bundle is not encrypted to this RSA key.
    NotForThisRsaKey {
        /// The id of the RSA key given ([`rsa_key_id`]).
        key_id: String,
        /// The ids of the RSA keys it is encrypted to.
        recipients: Vec<String>,
    },
    /// No passphrase recipient accepted the passphrase. A wrong passphrase
    /// and a damaged recipient entry cannot be told apart.
    WrongPassphraseOrCorrupt,
    /// The RSA recipient of this key did not decrypt.
    WrongRsaKeyOrCorrupt,
    /// A key file's fingerprint differs from the one its header line lists.
    FingerprintMismatch {
        /// The key id.
        id: String,
        /// The fingerprint in the header.
        header: Fingerprint,
        /// The fingerprint of the key file.
        key_file: Fingerprint,
    },
    /// A key's config entry in the payload differs from its header line.
    EntryMismatch {
        /// The key id (of the header line).
        id: String,
        /// The field that differs.
        field: &'static str,
    },
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::NotABundle => write!(
                f,
                "not an export bundle (no '{BUNDLE_FORMAT}' header on the first line)"
            ),
            BundleError::UnsupportedVersion(version) => write!(
                f,
                "export bundle version {version} is not supported (this version reads version {BUNDLE_VERSION})"
            ),
            BundleError::Malformed(detail) => write!(f, "invalid export bundle - {detail}"),
            BundleError::Truncated {
                expected: Some(expected),
                found,
            } => write!(
                f,
                "export bundle is truncated - {found} of {expected} bytes present"
            ),
            BundleError::Truncated {
                expected: None,
                found,
            } => write!(
                f,
                "export bundle is truncated - {found} bytes, the header line has no end"
            ),
            BundleError::Corrupt(detail) => write!(
                f,
                "export bundle is corrupted - {detail} (the file was changed after it was written)"
            ),
            BundleError::DuplicateId(id) => write!(f, "export bundle lists key '{id}' twice"),
            BundleError::DuplicateFingerprint {
                fingerprint,
                first,
                second,
            } => write!(
                f,
                "export bundle lists fingerprint {fingerprint} twice, for keys '{first}' and '{second}'"
            ),
            BundleError::NoRecipientFor(kind) => {
                let article = if kind.starts_with("RSA") { "an" } else { "a" };
                write!(
                    f,
                    "export bundle is not encrypted to {article} {kind} - use the other kind of secret"
                )
            }
            BundleError::NotForThisRsaKey { key_id, recipients } => write!(
                f,
                "export bundle is not encrypted to RSA key {key_id} - it is encrypted to {}",
                recipients.join(", ")
            ),
            BundleError::WrongPassphraseOrCorrupt => write!(
                f,
                "unable to open export bundle - wrong passphrase or corrupted bundle"
            ),
            BundleError::WrongRsaKeyOrCorrupt => write!(
                f,
                "unable to open export bundle - wrong RSA key or corrupted bundle"
            ),
            BundleError::FingerprintMismatch {
                id,
                header,
                key_file,
            } => write!(
                f,
                "key '{id}' in export bundle has fingerprint {key_file}, its header says {header}"
            ),
            BundleError::EntryMismatch { id, field } => write!(
                f,
                "key '{id}' in export bundle - config entry field '{field}' differs from the header"
            ),
        }
    }
}

impl std::error::Error for BundleError {}

/// The clear first line of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BundleHeader {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// Always [`BUNDLE_VERSION`].
    pub version: u64,
    /// Creation time (epoch).
    pub created: i64,
    /// Where the keys come from, as the writer named it (e.g.
    /// `pbs-keystore/<host>`).
    pub origin: String,
    /// The audit checkpoint at export time (C2SP signed-note text), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// One line per key, in payload order.
    pub keys: Vec<BundleKeyInfo>,
    /// Who can open the bundle.
    pub recipients: Vec<BundleRecipient>,
    /// How the payload is encrypted.
    pub payload: PayloadInfo,
}

/// A key as the clear header lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BundleKeyInfo {
    /// Key id.
    pub id: String,
    /// Full fingerprint of the key.
    pub fingerprint: Fingerprint,
    /// Creation time of the config entry (epoch).
    pub created: i64,
    /// Archive time (epoch); absent for an active key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<i64>,
    /// Passphrase hint of the entry, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl BundleKeyInfo {
    /// The header line for a config entry; the entry must have a fingerprint.
    fn from_config(config: &CryptKey) -> Result<Self, Error> {
        let fingerprint = config
            .info
            .fingerprint
            .ok_or_else(|| format_err!("key '{}' has no fingerprint in its config", config.id))?;
        Ok(Self {
            id: config.id.clone(),
            fingerprint,
            created: config.info.created,
            archived_at: config.archived_at,
            hint: config.info.hint.clone(),
        })
    }
}

/// One wrapping of the data key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    deny_unknown_fields
)]
pub enum BundleRecipient {
    /// A passphrase: `kek = scrypt(passphrase, salt, n, r, p, 32 bytes)`,
    /// `wrapped-key = AES-256-GCM(kek, nonce, data key, no AAD)` as
    /// ciphertext || tag.
    Scrypt {
        /// CPU/memory cost.
        n: u64,
        /// Block size.
        r: u64,
        /// Parallelism.
        p: u64,
        /// Salt (32 bytes when written here).
        #[serde(with = "bytes_as_base64")]
        salt: Vec<u8>,
        /// AES-GCM nonce (12 bytes).
        #[serde(with = "bytes_as_base64")]
        nonce: Vec<u8>,
        /// The wrapped data key (48 bytes).
        #[serde(with = "bytes_as_base64")]
        wrapped_key: Vec<u8>,
    },
    /// An RSA public key: `wrapped-key = RSA-OAEP(SHA-256, MGF1-SHA-256, no
    /// label)` of the data key.
    RsaOaepSha256 {
        /// [`rsa_key_id`] of the public key.
        key_id: String,
        /// The wrapped data key (one RSA block).
        #[serde(with = "bytes_as_base64")]
        wrapped_key: Vec<u8>,
    },
}

impl BundleRecipient {
    /// The scrypt parameters as a key-file KDF config (bounds checked there).
    fn scrypt_kdf(&self) -> Option<KeyDerivationConfig> {
        match self {
            BundleRecipient::Scrypt { n, r, p, salt, .. } => Some(KeyDerivationConfig::Scrypt {
                n: *n,
                r: *r,
                p: *p,
                salt: salt.clone(),
            }),
            BundleRecipient::RsaOaepSha256 { .. } => None,
        }
    }

    /// A short description for listings: `passphrase (scrypt)` or
    /// `RSA key <id>`.
    pub fn describe(&self) -> String {
        match self {
            BundleRecipient::Scrypt { .. } => "passphrase (scrypt)".to_string(),
            BundleRecipient::RsaOaepSha256 { key_id, .. } => format!("RSA key {key_id}"),
        }
    }
}

/// How the payload line is encrypted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PayloadInfo {
    /// Always `aes-256-gcm`.
    pub cipher: String,
    /// AES-GCM nonce (12 bytes).
    #[serde(with = "bytes_as_base64")]
    pub nonce: Vec<u8>,
    /// Bytes of ciphertext and tag (before base64).
    pub length: usize,
}

/// The decrypted payload.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    keys: Vec<PayloadEntry>,
}

/// One key in the decrypted payload.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct PayloadEntry {
    /// The key's `encryption-keys.cfg` entry.
    config: CryptKey,
    /// The exact content of the key's `.enc` file.
    key_file: String,
}

impl Drop for PayloadEntry {
    fn drop(&mut self) {
        self.key_file.zeroize();
    }
}

/// A key to export: its config entry and the content of its `.enc` file.
#[derive(Clone, Copy)]
pub struct ExportKey<'a> {
    /// The `encryption-keys.cfg` entry.
    pub config: &'a CryptKey,
    /// The `.enc` file content, exactly as stored.
    pub key_file: &'a [u8],
}

impl fmt::Debug for ExportKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportKey")
            .field("config", self.config)
            .field(
                "key_file",
                &format_args!("<redacted, {} bytes>", self.key_file.len()),
            )
            .finish()
    }
}

/// Someone who can open a bundle, as given when writing it.
pub enum ExportRecipient<'a> {
    /// A passphrase (at least [`MIN_PASSPHRASE_LEN`] bytes).
    Passphrase(&'a [u8]),
    /// An RSA public key, e.g. from [`rsa_public_key_from_pem`].
    RsaPublicKey(&'a PKey<Public>),
}

impl fmt::Debug for ExportRecipient<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportRecipient::Passphrase(_) => f.write_str("Passphrase(<redacted>)"),
            ExportRecipient::RsaPublicKey(key) => {
                write!(f, "RsaPublicKey({})", rsa_key_id(*key).unwrap_or_default())
            }
        }
    }
}

/// The secret that opens a bundle.
pub enum BundleSecret<'a> {
    /// A passphrase of one of its passphrase recipients.
    Passphrase(&'a [u8]),
    /// The private key of one of its RSA recipients, e.g. from
    /// [`rsa_private_key_from_pem`].
    RsaPrivateKey(&'a PKey<Private>),
}

impl fmt::Debug for BundleSecret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleSecret::Passphrase(_) => f.write_str("Passphrase(<redacted>)"),
            BundleSecret::RsaPrivateKey(_) => f.write_str("RsaPrivateKey(<redacted>)"),
        }
    }
}

/// A key from an opened bundle: config entry, key file bytes and the parsed
/// key file, checked against each other and against the header.
pub struct BundleEntry {
    config: CryptKey,
    key_file: Vec<u8>,
    key_config: KeyConfig,
}

impl BundleEntry {
    /// The key's `encryption-keys.cfg` entry as exported (its `path` names
    /// the file on the exporting host).
    pub fn config(&self) -> &CryptKey {
        &self.config
    }

    /// The exact `.enc` file content.
    pub fn key_file(&self) -> &[u8] {
        &self.key_file
    }

    /// The parsed `.enc` file.
    pub fn key_config(&self) -> &KeyConfig {
        &self.key_config
    }
}

impl fmt::Debug for BundleEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundleEntry")
            .field("config", &self.config)
            .field(
                "key_file",
                &format_args!("<redacted, {} bytes>", self.key_file.len()),
            )
            .field("key_config", &self.key_config)
            .finish()
    }
}

impl Drop for BundleEntry {
    fn drop(&mut self) {
        self.key_file.zeroize();
    }
}

/// A bundle opened and checked in full.
#[derive(Debug)]
pub struct OpenedBundle {
    header: BundleHeader,
    entries: Vec<BundleEntry>,
}

impl OpenedBundle {
    /// The clear header.
    pub fn header(&self) -> &BundleHeader {
        &self.header
    }

    /// The keys, in header order.
    pub fn entries(&self) -> &[BundleEntry] {
        &self.entries
    }

    /// The keys, in header order, by value.
    pub fn into_entries(self) -> Vec<BundleEntry> {
        self.entries
    }
}

/// The id of an RSA public key as bundles name it: SHA-256 of its DER
/// `SubjectPublicKeyInfo`, lowercase hex (what `openssl pkey -pubin
/// -outform DER | sha256sum` prints for `master-public.pem`).
pub fn rsa_key_id<T: HasPublic>(key: &PKey<T>) -> Result<String, Error> {
    let der = key
        .public_key_to_der()
        .map_err(|err| format_err!("unable to encode RSA public key - {err}"))?;
    Ok(hex_lower(&openssl::sha::sha256(&der)))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads an RSA public key from PEM: the `PUBLIC KEY` form
/// `proxmox-backup-client key create-master-key` writes as
/// `master-public.pem`, or the `RSA PUBLIC KEY` form.
pub fn rsa_public_key_from_pem(pem: &[u8]) -> Result<PKey<Public>, Error> {
    let key = PKey::public_key_from_pem(pem)
        .or_else(|_| openssl::rsa::Rsa::public_key_from_pem_pkcs1(pem).and_then(PKey::from_rsa))
        .map_err(|_| format_err!("unable to read RSA public key - not a PEM public key"))?;
    check_rsa_key(&key)?;
    Ok(key)
}

/// Reads an RSA private key from PEM, as `master-private.pem` (PKCS#8,
/// encrypted with a passphrase) or unencrypted. `passphrase` is called only
/// for an encrypted key.
pub fn rsa_private_key_from_pem(
    pem: &[u8],
    passphrase: &dyn Fn() -> Result<Vec<u8>, Error>,
) -> Result<PKey<Private>, Error> {
    let mut asked: Option<Result<(), Error>> = None;
    let key = PKey::private_key_from_pem_callback(pem, |buf| {
        let mut secret = match passphrase() {
            Ok(secret) => secret,
            Err(err) => {
                asked = Some(Err(err));
                return Ok(0);
            }
        };
        asked = Some(Ok(()));
        let len = secret.len().min(buf.len());
        buf[..len].copy_from_slice(&secret[..len]);
        secret.zeroize();
        Ok(len)
    });
    match (key, asked) {
        (_, Some(Err(err))) => Err(err),
        (Ok(key), _) => {
            check_rsa_key(&key)?;
            Ok(key)
        }
        (Err(_), Some(Ok(()))) => {
            bail!("unable to read RSA private key - wrong passphrase or damaged PEM file")
        }
        (Err(_), None) => bail!("unable to read RSA private key - not a PEM private key"),
    }
}

/// An RSA key of at least [`MIN_RSA_BITS`].
fn check_rsa_key<T: HasPublic>(key: &PKey<T>) -> Result<(), Error> {
    if key.id() != Id::RSA {
        bail!("not an RSA key");
    }
    if key.bits() < MIN_RSA_BITS {
        bail!(
            "RSA key of {} bits is too small (at least {MIN_RSA_BITS})",
            key.bits()
        );
    }
    Ok(())
}

/// AES-256-GCM encryption; returns ciphertext || tag.
fn seal(key: &[u8; 32], nonce: &[u8], aad: &[u8], data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut tag = [0u8; TAG_LEN];
    let mut out =
        openssl::symm::encrypt_aead(Cipher::aes_256_gcm(), key, Some(nonce), aad, data, &mut tag)
            .map_err(|err| format_err!("AES-GCM encryption failed - {err}"))?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// AES-256-GCM decryption of ciphertext || tag; `None` if the tag fails.
fn open_sealed(key: &[u8; 32], nonce: &[u8], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let split = sealed.len().checked_sub(TAG_LEN)?;
    let (data, tag) = sealed.split_at(split);
    openssl::symm::decrypt_aead(Cipher::aes_256_gcm(), key, Some(nonce), aad, data, tag).ok()
}

/// RSA-OAEP with SHA-256 and MGF1-SHA-256, no label.
fn rsa_oaep_encrypt(key: &PKey<Public>, data: &[u8]) -> Result<Vec<u8>, Error> {
    try_block!({
        let mut encrypter = openssl::encrypt::Encrypter::new(key)?;
        encrypter.set_rsa_padding(Padding::PKCS1_OAEP)?;
        encrypter.set_rsa_oaep_md(MessageDigest::sha256())?;
        encrypter.set_rsa_mgf1_md(MessageDigest::sha256())?;
        let mut out = vec![0u8; encrypter.encrypt_len(data)?];
        let len = encrypter.encrypt(data, &mut out)?;
        out.truncate(len);
        Ok(out)
    })
    .layer_err(|| "RSA-OAEP encryption failed")
}

/// RSA-OAEP decryption; `None` on any failure.
fn rsa_oaep_decrypt(key: &PKey<Private>, data: &[u8]) -> Option<Vec<u8>> {
    let mut decrypter = openssl::encrypt::Decrypter::new(key).ok()?;
    decrypter.set_rsa_padding(Padding::PKCS1_OAEP).ok()?;
    decrypter.set_rsa_oaep_md(MessageDigest::sha256()).ok()?;
    decrypter.set_rsa_mgf1_md(MessageDigest::sha256()).ok()?;
    let mut out = vec![0u8; decrypter.decrypt_len(data).ok()?];
    match decrypter.decrypt(data, &mut out) {
        Ok(len) => {
            out.truncate(len);
            Some(out)
        }
        Err(_) => {
            out.zeroize();
            None
        }
    }
}

/// The fingerprint a key file stands for: computed from the key for an
/// unprotected file (which also checks a stored fingerprint), the stored one
/// for a protected file.
fn key_file_fingerprint(key_config: &KeyConfig) -> Result<Fingerprint, Error> {
    if key_config.is_protected() {
        return key_config
            .fingerprint
            .ok_or_else(|| format_err!("protected key file has no fingerprint"));
    }
    let (mut key, _created, fingerprint) =
        key_config.decrypt(&|| bail!("an unprotected key needs no passphrase"))?;
    key.zeroize();
    Ok(fingerprint)
}

/// Checks one key (config entry and key file) against its header line and
/// returns the parsed key file. Used when writing and when reading.
fn check_entry(
    info: &BundleKeyInfo,
    config: &CryptKey,
    key_file: &[u8],
) -> Result<KeyConfig, Error> {
    let from_config =
        BundleKeyInfo::from_config(config).map_err(|_| BundleError::EntryMismatch {
            id: info.id.clone(),
            field: "fingerprint",
        })?;
    let mismatch = |field| BundleError::EntryMismatch {
        id: info.id.clone(),
        field,
    };
    if from_config.id != info.id {
        return Err(mismatch("id").into());
    }
    if from_config.fingerprint != info.fingerprint {
        return Err(mismatch("fingerprint").into());
    }
    if from_config.created != info.created {
        return Err(mismatch("created").into());
    }
    if from_config.archived_at != info.archived_at {
        return Err(mismatch("archived-at").into());
    }
    if from_config.hint != info.hint {
        return Err(mismatch("hint").into());
    }

    let key_config = KeyConfig::from_json(key_file)
        .layer_err(|| format!("key file of '{}' in export bundle", info.id))?;
    if key_config.kdf_kind() != config.info.kdf {
        return Err(mismatch("kdf").into());
    }
    let fingerprint = key_file_fingerprint(&key_config)
        .layer_err(|| format!("key file of '{}' in export bundle", info.id))?;
    if fingerprint != info.fingerprint {
        return Err(BundleError::FingerprintMismatch {
            id: info.id.clone(),
            header: info.fingerprint,
            key_file: fingerprint,
        }
        .into());
    }
    Ok(key_config)
}

/// Checks the key lines of a header: valid ids, no id or fingerprint twice.
fn check_key_list(keys: &[BundleKeyInfo]) -> Result<(), Error> {
    let mut ids = HashMap::with_capacity(keys.len());
    let mut fingerprints: HashMap<Fingerprint, &str> = HashMap::with_capacity(keys.len());
    for key in keys {
        if CRYPT_KEY_ID_SCHEMA.check_simple_value(&key.id).is_err() {
            return Err(BundleError::Malformed(format!(
                "key id {:?} is not a valid encryption key id",
                key.id
            ))
            .into());
        }
        if ids.insert(key.id.as_str(), ()).is_some() {
            return Err(BundleError::DuplicateId(key.id.clone()).into());
        }
        if let Some(first) = fingerprints.insert(key.fingerprint, &key.id) {
            return Err(BundleError::DuplicateFingerprint {
                fingerprint: key.fingerprint,
                first: first.to_string(),
                second: key.id.clone(),
            }
            .into());
        }
    }
    Ok(())
}

/// Checks the origin: not empty, one line, at most [`MAX_ORIGIN_LEN`] bytes.
fn check_origin(origin: &str) -> Result<(), BundleError> {
    if origin.is_empty() || origin.len() > MAX_ORIGIN_LEN || origin.chars().any(char::is_control) {
        return Err(BundleError::Malformed(format!(
            "origin must be 1 to {MAX_ORIGIN_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// Checks everything in a header that needs no secret.
fn check_header(header: &BundleHeader) -> Result<(), Error> {
    let malformed = |detail: String| Err(BundleError::Malformed(detail).into());
    check_origin(&header.origin)?;
    if let Some(checkpoint) = &header.checkpoint
        && checkpoint.len() > MAX_CHECKPOINT_LEN
    {
        return malformed(format!(
            "audit checkpoint is longer than {MAX_CHECKPOINT_LEN} bytes"
        ));
    }
    check_key_list(&header.keys)?;
    if header.recipients.is_empty() {
        return malformed("no recipients".into());
    }
    if header.recipients.len() > MAX_RECIPIENTS {
        return malformed(format!("more than {MAX_RECIPIENTS} recipients"));
    }
    for (index, recipient) in header.recipients.iter().enumerate() {
        match recipient {
            BundleRecipient::Scrypt {
                nonce, wrapped_key, ..
            } => {
                if let Some(kdf) = recipient.scrypt_kdf() {
                    kdf.check_bounds()
                        .map_err(Error::from)
                        .layer_err(|| format!("invalid export bundle - recipient {}", index + 1))?;
                }
                if nonce.len() != NONCE_LEN || wrapped_key.len() != WRAPPED_KEY_LEN {
                    return malformed(format!(
                        "recipient {} - nonce or wrapped key of wrong length",
                        index + 1
                    ));
                }
            }
            BundleRecipient::RsaOaepSha256 {
                key_id,
                wrapped_key,
            } => {
                if key_id.len() != 64
                    || !key_id
                        .bytes()
                        .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
                {
                    return malformed(format!(
                        "recipient {} - key-id is not 64 lowercase hex digits",
                        index + 1
                    ));
                }
                if wrapped_key.is_empty() || wrapped_key.len() > MAX_RSA_WRAPPED_LEN {
                    return malformed(format!(
                        "recipient {} - wrapped key of wrong length",
                        index + 1
                    ));
                }
            }
        }
    }
    if header.payload.cipher != PAYLOAD_CIPHER {
        return malformed(format!(
            "payload cipher {:?} is not {PAYLOAD_CIPHER}",
            header.payload.cipher
        ));
    }
    if header.payload.nonce.len() != NONCE_LEN {
        return malformed("payload nonce of wrong length".into());
    }
    if header.payload.length < TAG_LEN || header.payload.length > MAX_BUNDLE_SIZE {
        return malformed("payload length out of range".into());
    }
    Ok(())
}

/// Writes a bundle of `keys` for `recipients`.
///
/// `origin` names where the keys come from (e.g. `pbs-keystore/<host>`);
/// `checkpoint` is the audit checkpoint text, if the caller has one. Every
/// key is checked as opening checks it (its key file's fingerprint against
/// its config entry), so a bundle is never written with a key it would
/// refuse.
///
/// # Errors
///
/// No keys or no recipients, an id or fingerprint given twice, a key whose
/// key file does not match its config entry, a passphrase under
/// [`MIN_PASSPHRASE_LEN`] bytes, an RSA key under [`MIN_RSA_BITS`] bits.
pub fn create_bundle(
    origin: &str,
    checkpoint: Option<&str>,
    keys: &[ExportKey],
    recipients: &[ExportRecipient],
) -> Result<Vec<u8>, Error> {
    Ok(create_provable_bundle(origin, checkpoint, keys, recipients)?.take_bytes())
}

/// A bundle just made, with its data key kept in memory (zeroed when
/// dropped): [`ProvableBundle::prove`] opens a copy of it, read back from
/// where it was written, and checks it in full as [`open_bundle`] does,
/// without the secret of any recipient. This is how a key rotation proves
/// an export to RSA master keys whose private halves are kept off the host.
/// What it cannot check is each recipient's wrap of the data key: that
/// takes the recipient's secret.
pub struct ProvableBundle {
    bytes: Vec<u8>,
    data_key: [u8; 32],
}

impl Drop for ProvableBundle {
    fn drop(&mut self) {
        self.data_key.zeroize();
    }
}

impl fmt::Debug for ProvableBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvableBundle")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("data_key", &format_args!("<redacted>"))
            .finish()
    }
}

impl ProvableBundle {
    /// The bundle, as [`create_bundle`] returns it.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Takes the bundle's bytes out (what is left proves nothing).
    pub fn take_bytes(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }

    /// Opens `copy` (this bundle as read back) with the data key and checks
    /// it in full: the header, the payload's tag over the exact header
    /// bytes, every key's config entry and key file fingerprint.
    ///
    /// # Errors
    ///
    /// A [`BundleError`]: the copy is not intact, or is another bundle.
    pub fn prove(&self, copy: &[u8]) -> Result<OpenedBundle, Error> {
        let (header, header_bytes, body) = split_bundle(copy)?;
        let sealed = decode_payload(copy, &header, header_bytes, body)?;
        open_payload(header, header_bytes, &sealed, &self.data_key)
    }
}

/// [`create_bundle`], keeping what proves the bundle (see
/// [`ProvableBundle`]).
pub fn create_provable_bundle(
    origin: &str,
    checkpoint: Option<&str>,
    keys: &[ExportKey],
    recipients: &[ExportRecipient],
) -> Result<ProvableBundle, Error> {
    check_origin(origin)?;
    if let Some(checkpoint) = checkpoint
        && checkpoint.len() > MAX_CHECKPOINT_LEN
    {
        bail!("audit checkpoint is longer than {MAX_CHECKPOINT_LEN} bytes");
    }
    if keys.is_empty() {
        bail!("no keys to export");
    }
    if recipients.is_empty() {
        bail!("no recipient to encrypt the export to - give a passphrase or an RSA public key");
    }
    if recipients.len() > MAX_RECIPIENTS {
        bail!("more than {MAX_RECIPIENTS} recipients");
    }

    let key_infos = keys
        .iter()
        .map(|key| BundleKeyInfo::from_config(key.config))
        .collect::<Result<Vec<_>, _>>()?;
    check_key_list(&key_infos)?;
    let mut payload = Payload {
        keys: Vec::with_capacity(keys.len()),
    };
    for (info, key) in key_infos.iter().zip(keys) {
        check_entry(info, key.config, key.key_file)
            .layer_err(|| format!("refusing to export key '{}'", info.id))?;
        let key_file = std::str::from_utf8(key.key_file)
            .map_err(|_| format_err!("key file of '{}' is not UTF-8", info.id))?;
        payload.keys.push(PayloadEntry {
            config: key.config.clone(),
            key_file: key_file.to_string(),
        });
    }

    let mut data_key = proxmox_sys::linux::random_data::<32>()?;
    match seal_bundle(
        origin, checkpoint, key_infos, &payload, recipients, &data_key,
    ) {
        Ok(bytes) => Ok(ProvableBundle { bytes, data_key }),
        Err(err) => {
            data_key.zeroize();
            Err(err)
        }
    }
}

/// Wraps `data_key` for each recipient, then writes header and payload.
fn seal_bundle(
    origin: &str,
    checkpoint: Option<&str>,
    keys: Vec<BundleKeyInfo>,
    payload: &Payload,
    recipients: &[ExportRecipient],
    data_key: &[u8; 32],
) -> Result<Vec<u8>, Error> {
    let mut wrapped = Vec::with_capacity(recipients.len());
    for recipient in recipients {
        wrapped.push(match recipient {
            ExportRecipient::Passphrase(passphrase) => {
                if passphrase.len() < MIN_PASSPHRASE_LEN {
                    return Err(KeyError::PassphraseTooShort.into());
                }
                if let Some(what) = crate::passphrase_no_secret(passphrase) {
                    return Err(KeyError::PassphraseNoSecret(what).into());
                }
                // the key-file parameters, one place for the numbers
                let kdf = KeyDerivationConfig::new_scrypt()?;
                let mut kek = kdf.derive_key(passphrase)?;
                let nonce = proxmox_sys::linux::random_data::<NONCE_LEN>()?;
                let wrapped_key = seal(&kek, &nonce, b"", data_key);
                kek.zeroize();
                let KeyDerivationConfig::Scrypt { n, r, p, salt } = kdf else {
                    unreachable!("new_scrypt gives scrypt parameters");
                };
                BundleRecipient::Scrypt {
                    n,
                    r,
                    p,
                    salt,
                    nonce: nonce.to_vec(),
                    wrapped_key: wrapped_key?,
                }
            }
            ExportRecipient::RsaPublicKey(key) => {
                check_rsa_key(*key)?;
                BundleRecipient::RsaOaepSha256 {
                    key_id: rsa_key_id(*key)?,
                    wrapped_key: rsa_oaep_encrypt(key, data_key)?,
                }
            }
        });
    }

    let mut plaintext = serde_json::to_vec(payload)?;
    let nonce = proxmox_sys::linux::random_data::<NONCE_LEN>()?;
    let header = BundleHeader {
        format: BUNDLE_FORMAT.to_string(),
        version: BUNDLE_VERSION,
        created: epoch_i64(),
        origin: origin.to_string(),
        checkpoint: checkpoint.map(str::to_string),
        keys,
        recipients: wrapped,
        payload: PayloadInfo {
            cipher: PAYLOAD_CIPHER.to_string(),
            nonce: nonce.to_vec(),
            length: plaintext.len() + TAG_LEN,
        },
    };
    // compact JSON escapes every control character, so it is one line
    let header_bytes = serde_json::to_vec(&header)?;
    let sealed = seal(data_key, &nonce, &header_bytes, &plaintext);
    plaintext.zeroize();
    let sealed = sealed?;

    let mut out = header_bytes;
    out.push(b'\n');
    out.extend_from_slice(STANDARD.encode(&sealed).as_bytes());
    out.push(b'\n');
    Ok(out)
}

/// Splits a bundle into its header bytes and the rest, and parses and checks
/// the header.
fn split_bundle(data: &[u8]) -> Result<(BundleHeader, &[u8], &[u8]), Error> {
    if data.len() > MAX_BUNDLE_SIZE {
        return Err(BundleError::Malformed(format!("larger than {MAX_BUNDLE_SIZE} bytes")).into());
    }
    let prefix = format!("{{\"format\":\"{BUNDLE_FORMAT}\"");
    let Some(end) = data.iter().position(|b| *b == b'\n') else {
        if data.starts_with(prefix.as_bytes()) {
            return Err(BundleError::Truncated {
                expected: None,
                found: data.len(),
            }
            .into());
        }
        return Err(BundleError::NotABundle.into());
    };
    let (header_bytes, rest) = (&data[..end], &data[end + 1..]);

    // format and version first, so a newer bundle says so instead of
    // failing on a field this version does not know
    #[derive(Deserialize)]
    struct Probe {
        format: Option<String>,
        version: Option<u64>,
    }
    let probe: Probe = match serde_json::from_slice(header_bytes) {
        Ok(probe) => probe,
        // a damaged bundle is not "no bundle"
        Err(err) if header_bytes.starts_with(prefix.as_bytes()) => {
            return Err(
                BundleError::Malformed(format!("header is not JSON - {}", scrubbed(&err))).into(),
            );
        }
        Err(_) => return Err(BundleError::NotABundle.into()),
    };
    if probe.format.as_deref() != Some(BUNDLE_FORMAT) {
        return Err(BundleError::NotABundle.into());
    }
    match probe.version {
        Some(BUNDLE_VERSION) => {}
        Some(version) => return Err(BundleError::UnsupportedVersion(version).into()),
        None => return Err(BundleError::Malformed("header has no version".into()).into()),
    }
    let header: BundleHeader = serde_json::from_slice(header_bytes)
        .map_err(|err| BundleError::Malformed(format!("header - {}", scrubbed(&err))))?;
    check_header(&header)?;
    Ok((header, header_bytes, rest))
}

/// Reads and checks the clear header of a bundle, without any secret (for
/// listing a bundle's keys and recipients). The payload is not checked.
pub fn read_bundle_header(data: &[u8]) -> Result<BundleHeader, Error> {
    Ok(split_bundle(data)?.0)
}

/// Opens a bundle with `secret` and checks it in full: every key's config
/// entry against its header line, every key file's fingerprint against the
/// header. Returns everything or nothing.
///
/// # Errors
///
/// A [`BundleError`] (not a bundle, truncated, corrupted, no matching
/// recipient, wrong passphrase or RSA key, a duplicated id, a fingerprint
/// mismatch), or a [`KeyError`] for KDF parameters out of range or a
/// passphrase too short to be right.
pub fn open_bundle(data: &[u8], secret: &BundleSecret) -> Result<OpenedBundle, Error> {
    let (header, header_bytes, body) = split_bundle(data)?;
    let sealed = decode_payload(data, &header, header_bytes, body)?;
    let mut data_key = unwrap_data_key(&header, secret)?;
    let opened = open_payload(header, header_bytes, &sealed, &data_key);
    data_key.zeroize();
    opened
}

/// The payload line's ciphertext and tag, checked against the header's
/// length (cheap checks, before any secret is used).
fn decode_payload(
    data: &[u8],
    header: &BundleHeader,
    header_bytes: &[u8],
    body: &[u8],
) -> Result<Vec<u8>, Error> {
    // the payload line: base64 of exactly `length` bytes, then a newline
    let expected = header.payload.length.div_ceil(3) * 4 + 1;
    if body.len() < expected {
        return Err(BundleError::Truncated {
            expected: Some(header_bytes.len() + 1 + expected),
            found: data.len(),
        }
        .into());
    }
    if body.len() > expected || body[expected - 1] != b'\n' {
        return Err(BundleError::Corrupt("unexpected data after the payload".into()).into());
    }
    let sealed = STANDARD
        .decode(&body[..expected - 1])
        .map_err(|_| BundleError::Corrupt("payload is not valid base64".into()))?;
    if sealed.len() != header.payload.length {
        return Err(BundleError::Corrupt("payload length differs from the header".into()).into());
    }
    Ok(sealed)
}

/// Decrypts the payload with `data_key` and checks every entry against
/// the header: everything or nothing.
fn open_payload(
    header: BundleHeader,
    header_bytes: &[u8],
    sealed: &[u8],
    data_key: &[u8; 32],
) -> Result<OpenedBundle, Error> {
    let plaintext = open_sealed(data_key, &header.payload.nonce, header_bytes, sealed);
    let mut plaintext =
        plaintext.ok_or_else(|| BundleError::Corrupt("payload authentication failed".into()))?;
    let payload = serde_json::from_slice::<Payload>(&plaintext);
    plaintext.zeroize();
    let payload =
        payload.map_err(|err| BundleError::Malformed(format!("payload - {}", scrubbed(&err))))?;

    if payload.keys.len() != header.keys.len() {
        return Err(BundleError::Malformed(format!(
            "payload holds {} keys, the header lists {}",
            payload.keys.len(),
            header.keys.len()
        ))
        .into());
    }
    let mut entries = Vec::with_capacity(payload.keys.len());
    for (info, entry) in header.keys.iter().zip(payload.keys) {
        let key_config = check_entry(info, &entry.config, entry.key_file.as_bytes())?;
        entries.push(BundleEntry {
            config: entry.config.clone(),
            key_file: entry.key_file.as_bytes().to_vec(),
            key_config,
        });
    }
    Ok(OpenedBundle { header, entries })
}

/// The data key, from the recipient `secret` belongs to.
fn unwrap_data_key(header: &BundleHeader, secret: &BundleSecret) -> Result<[u8; 32], Error> {
    match secret {
        BundleSecret::Passphrase(passphrase) => {
            let scrypt: Vec<_> = header
                .recipients
                .iter()
                .filter(|r| matches!(r, BundleRecipient::Scrypt { .. }))
                .collect();
            if scrypt.is_empty() {
                return Err(BundleError::NoRecipientFor("passphrase").into());
            }
            if passphrase.len() < MIN_PASSPHRASE_LEN {
                return Err(KeyError::PassphraseTooShort.into());
            }
            for recipient in scrypt {
                let BundleRecipient::Scrypt {
                    nonce, wrapped_key, ..
                } = recipient
                else {
                    continue;
                };
                let kdf = recipient.scrypt_kdf().expect("a scrypt recipient");
                // bounds checked again right before the work
                let mut kek = kdf.derive_key(passphrase)?;
                let data_key = open_sealed(&kek, nonce, b"", wrapped_key);
                kek.zeroize();
                if let Some(key) = data_key.and_then(to_data_key) {
                    return Ok(key);
                }
            }
            Err(BundleError::WrongPassphraseOrCorrupt.into())
        }
        BundleSecret::RsaPrivateKey(key) => {
            let key_id = rsa_key_id(*key)?;
            let mut rsa_ids = Vec::new();
            for recipient in &header.recipients {
                if let BundleRecipient::RsaOaepSha256 {
                    key_id: id,
                    wrapped_key,
                } = recipient
                {
                    if *id == key_id {
                        return rsa_oaep_decrypt(key, wrapped_key)
                            .and_then(to_data_key)
                            .ok_or_else(|| BundleError::WrongRsaKeyOrCorrupt.into());
                    }
                    rsa_ids.push(id.clone());
                }
            }
            if rsa_ids.is_empty() {
                return Err(BundleError::NoRecipientFor("RSA key").into());
            }
            Err(BundleError::NotForThisRsaKey {
                key_id,
                recipients: rsa_ids,
            }
            .into())
        }
    }
}

/// A 32-byte data key from unwrapped bytes (zeroed either way).
fn to_data_key(mut bytes: Vec<u8>) -> Option<[u8; 32]> {
    let key = <[u8; 32]>::try_from(bytes.as_slice()).ok();
    bytes.zeroize();
    key
}

/// Writes a bundle to `path` with mode 0600, never over an existing file,
/// as [`crate::write_new_file`]; says how the file was made.
pub fn write_bundle_file<P: AsRef<Path>>(path: P, data: &[u8]) -> Result<crate::NewFileWay, Error> {
    let path = path.as_ref();
    crate::create_new_file(path, data, bundle_file_options(), &|| ())
        .layer_err(|| format!("unable to write export bundle {path:?}"))
}

/// Replaces the bundle file `path` with `data` (mode 0600): a temp file
/// beside it, fsync, rename over `path`, directory fsync; on failure `path`
/// keeps what it had.
pub fn replace_bundle_file<P: AsRef<Path>>(path: P, data: &[u8]) -> Result<(), Error> {
    let path = path.as_ref();
    proxmox_sys::fs::replace_file(path, data, bundle_file_options(), true)
        .layer_err(|| format!("unable to replace export bundle {path:?}"))
}

/// How a bundle file is created: readable by its owner only.
fn bundle_file_options() -> CreateOptions {
    CreateOptions::new().perm(nix::sys::stat::Mode::from_bits_truncate(0o600))
}

/// Reads a bundle file (at most [`MAX_BUNDLE_SIZE`] bytes).
pub fn read_bundle_file<P: AsRef<Path>>(path: P) -> Result<Vec<u8>, Error> {
    let path = path.as_ref();
    try_block!({ read_bundle_from(std::fs::File::open(path)?) })
        .layer_err(|| format!("unable to read export bundle {path:?}"))
}

/// [`read_bundle_file`] of a file this host wrote (a rotation's export, on
/// resume and read back): a regular file only, opened without following a
/// symbolic link or waiting for a FIFO's writer. Its directory may be one
/// others can write, and what they put at its name is refused, never read
/// (finding 46: a FIFO there blocked the rotation, holding its lock).
pub fn read_written_bundle_file<P: AsRef<Path>>(path: P) -> Result<Vec<u8>, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = path.as_ref();
    try_block!({
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(path)
            .map_err(|err| match err.raw_os_error() {
                Some(nix::libc::ELOOP) => format_err!("is not a regular file (a symbolic link)"),
                _ => err.into(),
            })?;
        if !file.metadata()?.file_type().is_file() {
            bail!("is not a regular file");
        }
        read_bundle_from(file)
    })
    .layer_err(|| format!("unable to read export bundle {path:?}"))
}

/// At most [`MAX_BUNDLE_SIZE`] bytes of `file`, refused if it holds more.
fn read_bundle_from(file: std::fs::File) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let mut data = Vec::new();
    file.take(MAX_BUNDLE_SIZE as u64 + 1)
        .read_to_end(&mut data)?;
    if data.len() > MAX_BUNDLE_SIZE {
        data.zeroize();
        bail!("file is larger than {MAX_BUNDLE_SIZE} bytes, not an export bundle");
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use pbs_api_types::{Kdf, KeyInfo};

    use super::*;

    /// Fixed RSA keys, to keep key generation out of tests.
    const RSA_PEM: &[u8] = include_bytes!("testdata/bundle-test-rsa2048.pem");
    const OTHER_RSA_PEM: &[u8] = include_bytes!("testdata/bundle-other-rsa2048.pem");
    const PASS: &[u8] = b"bundle passphrase";

    fn private(pem: &[u8]) -> PKey<Private> {
        rsa_private_key_from_pem(pem, &|| bail!("the test key is not encrypted")).unwrap()
    }

    fn public(pem: &[u8]) -> PKey<Public> {
        PKey::public_key_from_der(&private(pem).public_key_to_der().unwrap()).unwrap()
    }

    /// A key as a store holds it, with its raw bytes for leak checks.
    struct TestKey {
        config: CryptKey,
        key_file: Vec<u8>,
        raw: [u8; 32],
    }

    fn test_key(id: &str, seed: u8, archived_at: Option<i64>, hint: Option<&str>) -> TestKey {
        let raw = [seed; 32];
        let mut key_config = KeyConfig::without_password(raw).unwrap();
        key_config.created = 1_700_000_000 + i64::from(seed);
        key_config.modified = key_config.created;
        let mut info = KeyInfo::from(&key_config);
        info.path = Some(format!("/etc/proxmox-backup/encryption-keys/{id}.enc"));
        info.hint = hint.map(str::to_string);
        TestKey {
            config: CryptKey {
                id: id.to_string(),
                info,
                archived_at,
            },
            key_file: key_config.to_json().unwrap().into_bytes(),
            raw,
        }
    }

    fn exports(keys: &[TestKey]) -> Vec<ExportKey<'_>> {
        keys.iter()
            .map(|key| ExportKey {
                config: &key.config,
                key_file: &key.key_file,
            })
            .collect()
    }

    fn two_keys() -> Vec<TestKey> {
        vec![
            test_key("offsite-2025", 1, None, None),
            test_key("legacy-2024", 2, Some(1_735_700_000), Some("old one")),
        ]
    }

    /// A bundle for the fixed RSA key only: cheap to open many times.
    fn rsa_bundle(keys: &[TestKey]) -> Vec<u8> {
        let public = public(RSA_PEM);
        create_bundle(
            "pbs-keystore/test",
            Some("pbs-keystore/test\n3\nAAAA\n\n— test sig\n"),
            &exports(keys),
            &[ExportRecipient::RsaPublicKey(&public)],
        )
        .unwrap()
    }

    /// A bundle of header lines and payload entries as given, unchecked.
    fn craft(keys: Vec<BundleKeyInfo>, entries: Vec<(CryptKey, String)>) -> Vec<u8> {
        let payload = Payload {
            keys: entries
                .into_iter()
                .map(|(config, key_file)| PayloadEntry { config, key_file })
                .collect(),
        };
        let public = public(RSA_PEM);
        seal_bundle(
            "pbs-keystore/test",
            None,
            keys,
            &payload,
            &[ExportRecipient::RsaPublicKey(&public)],
            &[7u8; 32],
        )
        .unwrap()
    }

    fn bundle_error(err: &Error) -> Option<&BundleError> {
        err.chain().find_map(|e| e.downcast_ref::<BundleError>())
    }

    /// The hex and base64 of each raw key must not appear in `text`.
    fn assert_no_key_bytes(keys: &[TestKey], text: &str) {
        for key in keys {
            let hex = hex_lower(&key.raw);
            let b64 = STANDARD.encode(key.raw);
            assert!(!text.contains(&hex), "key hex in: {text}");
            assert!(!text.contains(&b64), "key base64 in: {text}");
        }
    }

    fn assert_entries_equal(entries: &[BundleEntry], keys: &[TestKey]) {
        assert_eq!(entries.len(), keys.len());
        for (entry, key) in entries.iter().zip(keys) {
            assert_eq!(entry.config(), &key.config);
            assert_eq!(entry.key_file(), key.key_file.as_slice());
            assert_eq!(
                entry.key_config().decrypt(&|| bail!("none")).unwrap().0,
                key.raw
            );
        }
    }

    #[test]
    fn round_trip_with_passphrase_and_rsa_recipients() {
        let mut keys = two_keys();
        // a protected key file too: its stored fingerprint stands for it
        let raw = [3u8; 32];
        let mut protected = KeyConfig::with_key(&raw, b"key pass", Kdf::PBKDF2).unwrap();
        protected.hint = Some("key hint".into());
        let mut info = KeyInfo::from(&protected);
        info.path = Some("/etc/proxmox-backup/encryption-keys/guarded.enc".into());
        keys.push(TestKey {
            config: CryptKey {
                id: "guarded".into(),
                info,
                archived_at: None,
            },
            key_file: protected.to_json().unwrap().into_bytes(),
            raw,
        });
        let public = public(RSA_PEM);
        let data = create_bundle(
            "pbs-keystore/host1",
            Some("checkpoint text\n"),
            &exports(&keys),
            &[
                ExportRecipient::Passphrase(PASS),
                ExportRecipient::RsaPublicKey(&public),
            ],
        )
        .unwrap();

        let header = read_bundle_header(&data).unwrap();
        assert_eq!(header.format, BUNDLE_FORMAT);
        assert_eq!(header.version, BUNDLE_VERSION);
        assert_eq!(header.origin, "pbs-keystore/host1");
        assert_eq!(header.checkpoint.as_deref(), Some("checkpoint text\n"));
        let ids: Vec<_> = header.keys.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, ["offsite-2025", "legacy-2024", "guarded"]);
        assert_eq!(header.keys[1].archived_at, Some(1_735_700_000));
        assert_eq!(header.keys[1].hint.as_deref(), Some("old one"));
        assert_eq!(header.keys[0].fingerprint, crate::fingerprint(&[1; 32]));
        assert_eq!(header.recipients.len(), 2);
        assert_eq!(header.recipients[0].describe(), "passphrase (scrypt)");
        // the key-file scrypt parameters
        assert!(matches!(
            &header.recipients[0],
            BundleRecipient::Scrypt { n: 65536, r: 8, p: 1, salt, .. } if salt.len() == 32
        ));

        let by_passphrase = open_bundle(&data, &BundleSecret::Passphrase(PASS)).unwrap();
        let rsa = private(RSA_PEM);
        let by_rsa = open_bundle(&data, &BundleSecret::RsaPrivateKey(&rsa)).unwrap();
        for opened in [&by_passphrase, &by_rsa] {
            assert_eq!(opened.header(), &header);
            assert_eq!(opened.entries().len(), 3);
            assert_entries_equal(&opened.entries()[..2], &keys[..2]);
            let guarded = &opened.entries()[2];
            assert_eq!(guarded.key_file(), keys[2].key_file.as_slice());
            let decrypted = guarded
                .key_config()
                .decrypt(&|| Ok(b"key pass".to_vec()))
                .unwrap();
            assert_eq!(decrypted.0, raw);
        }
        // the two lines of the format
        let text = std::str::from_utf8(&data).unwrap();
        assert_eq!(text.matches('\n').count(), 2);
        assert!(text.starts_with("{\"format\":\"pbs-keystore-export\",\"version\":1,"));
    }

    #[test]
    fn bundle_and_debug_hold_no_key_bytes() {
        let keys = two_keys();
        let data = rsa_bundle(&keys);
        let text = String::from_utf8(data.clone()).unwrap();
        assert_no_key_bytes(&keys, &text);
        for key in &keys {
            // nor the key file's own data field
            let key_file = std::str::from_utf8(&key.key_file).unwrap();
            assert!(!text.contains(key_file));
        }
        let opened = open_bundle(&data, &BundleSecret::RsaPrivateKey(&private(RSA_PEM))).unwrap();
        let debug = format!("{opened:?}");
        assert!(debug.contains("<redacted"), "{debug}");
        assert_no_key_bytes(&keys, &debug);
        let pass = format!("{:?}", BundleSecret::Passphrase(PASS));
        assert!(!pass.contains("bundle passphrase"), "{pass}");
        let export = format!("{:?}", exports(&keys));
        assert_no_key_bytes(&keys, &export);
        assert!(!export.contains("data"), "{export}");
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let keys = two_keys();
        let data = rsa_bundle(&keys);
        let rsa = private(RSA_PEM);
        for position in 0..data.len() {
            // the low bit everywhere, all bits at every 8th byte
            let flips: &[u8] = if position % 8 == 0 {
                &[0x01, 0xff]
            } else {
                &[0x01]
            };
            for &flip in flips {
                let mut damaged = data.clone();
                damaged[position] ^= flip;
                let err = match open_bundle(&damaged, &BundleSecret::RsaPrivateKey(&rsa)) {
                    Ok(_) => panic!("byte {position} ^ {flip:#x} accepted"),
                    Err(err) => err,
                };
                // a typed, named refusal
                assert!(
                    bundle_error(&err).is_some(),
                    "byte {position} ^ {flip:#x}: {err}"
                );
                assert_no_key_bytes(&keys, &format!("{err:#}"));
            }
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        let keys = two_keys();
        let data = rsa_bundle(&keys);
        let rsa = private(RSA_PEM);
        let header_len = data.iter().position(|b| *b == b'\n').unwrap();
        for len in 0..data.len() {
            let err = match open_bundle(&data[..len], &BundleSecret::RsaPrivateKey(&rsa)) {
                Ok(_) => panic!("bundle cut at {len} of {} bytes accepted", data.len()),
                Err(err) => err,
            };
            if len > header_len {
                assert!(
                    matches!(bundle_error(&err), Some(BundleError::Truncated { .. })),
                    "cut at {len}: {err}"
                );
                assert!(err.to_string().contains("truncated"), "{err}");
            }
        }
        // appended data is refused too
        let mut longer = data.clone();
        longer.extend_from_slice(b"x\n");
        assert!(open_bundle(&longer, &BundleSecret::RsaPrivateKey(&rsa)).is_err());
    }

    #[test]
    fn wrong_passphrase_and_wrong_rsa_key_are_refused() {
        let keys = two_keys();
        let public = public(RSA_PEM);
        let data = create_bundle(
            "pbs-keystore/test",
            None,
            &exports(&keys),
            &[
                ExportRecipient::Passphrase(PASS),
                ExportRecipient::RsaPublicKey(&public),
            ],
        )
        .unwrap();

        let err = open_bundle(&data, &BundleSecret::Passphrase(b"wrong passphrase")).unwrap_err();
        assert_eq!(
            bundle_error(&err),
            Some(&BundleError::WrongPassphraseOrCorrupt)
        );
        assert_eq!(
            err.to_string(),
            "unable to open export bundle - wrong passphrase or corrupted bundle"
        );
        // a damaged passphrase recipient reads as a wrong passphrase
        let mut damaged = read_bundle_header(&data).unwrap();
        let BundleRecipient::Scrypt { wrapped_key, .. } = &mut damaged.recipients[0] else {
            panic!("first recipient is scrypt");
        };
        wrapped_key[5] ^= 1;
        let err = unwrap_data_key(&damaged, &BundleSecret::Passphrase(PASS)).unwrap_err();
        assert_eq!(
            bundle_error(&err),
            Some(&BundleError::WrongPassphraseOrCorrupt)
        );
        let err = open_bundle(&data, &BundleSecret::Passphrase(b"abcd")).unwrap_err();
        assert_eq!(
            err.downcast_ref::<KeyError>(),
            Some(&KeyError::PassphraseTooShort)
        );

        let other = private(OTHER_RSA_PEM);
        let err = open_bundle(&data, &BundleSecret::RsaPrivateKey(&other)).unwrap_err();
        let other_id = rsa_key_id(&other).unwrap();
        let right_id = rsa_key_id(&public).unwrap();
        assert_eq!(
            bundle_error(&err),
            Some(&BundleError::NotForThisRsaKey {
                key_id: other_id.clone(),
                recipients: vec![right_id.clone()],
            })
        );
        let text = err.to_string();
        assert!(
            text.contains(&other_id) && text.contains(&right_id),
            "{text}"
        );

        // a recipient entry naming this key whose wrapped key is another's
        let mut swapped = read_bundle_header(&data).unwrap();
        let BundleRecipient::RsaOaepSha256 { key_id, .. } = &mut swapped.recipients[1] else {
            panic!("second recipient is RSA");
        };
        *key_id = other_id;
        let err = unwrap_data_key(&swapped, &BundleSecret::RsaPrivateKey(&other)).unwrap_err();
        assert_eq!(bundle_error(&err), Some(&BundleError::WrongRsaKeyOrCorrupt));
    }

    #[test]
    fn secret_of_a_missing_recipient_kind_is_refused_by_name() {
        let keys = two_keys();
        let data = rsa_bundle(&keys);
        let err = open_bundle(&data, &BundleSecret::Passphrase(PASS)).unwrap_err();
        assert_eq!(
            bundle_error(&err),
            Some(&BundleError::NoRecipientFor("passphrase"))
        );
    }

    #[test]
    fn duplicated_ids_and_fingerprints_are_refused() {
        let mut keys = two_keys();
        keys[1] = test_key("offsite-2025", 2, None, None);
        let public = public(RSA_PEM);
        let err = create_bundle(
            "o",
            None,
            &exports(&keys),
            &[ExportRecipient::RsaPublicKey(&public)],
        )
        .unwrap_err();
        assert_eq!(
            bundle_error(&err),
            Some(&BundleError::DuplicateId("offsite-2025".into()))
        );

        // a bundle made elsewhere with the id twice
        let infos: Vec<_> = keys
            .iter()
            .map(|k| BundleKeyInfo::from_config(&k.config).unwrap())
            .collect();
        let entries = keys
            .iter()
            .map(|k| {
                (
                    k.config.clone(),
                    String::from_utf8(k.key_file.clone()).unwrap(),
                )
            })
            .collect();
        let data = craft(infos, entries);
        let rsa = private(RSA_PEM);
        for err in [
            read_bundle_header(&data).unwrap_err(),
            open_bundle(&data, &BundleSecret::RsaPrivateKey(&rsa)).unwrap_err(),
        ] {
            assert_eq!(
                bundle_error(&err),
                Some(&BundleError::DuplicateId("offsite-2025".into()))
            );
            assert_eq!(
                err.to_string(),
                "export bundle lists key 'offsite-2025' twice"
            );
        }

        // one key under two ids
        let mut keys = two_keys();
        keys[1] = test_key("copy-of-offsite", 1, None, None);
        let err = create_bundle(
            "o",
            None,
            &exports(&keys),
            &[ExportRecipient::RsaPublicKey(&public)],
        )
        .unwrap_err();
        assert!(
            matches!(
                bundle_error(&err),
                Some(BundleError::DuplicateFingerprint { first, second, .. })
                    if first == "offsite-2025" && second == "copy-of-offsite"
            ),
            "{err}"
        );
    }

    #[test]
    fn key_file_with_another_fingerprint_is_refused() {
        let keys = two_keys();
        // the config (and header) of key 1, the key file of key 2
        let info = BundleKeyInfo::from_config(&keys[0].config).unwrap();
        let entries = vec![(
            keys[0].config.clone(),
            String::from_utf8(keys[1].key_file.clone()).unwrap(),
        )];
        let data = craft(vec![info], entries);
        let rsa = private(RSA_PEM);
        let err = open_bundle(&data, &BundleSecret::RsaPrivateKey(&rsa)).unwrap_err();
        assert_eq!(
            bundle_error(&err),
            Some(&BundleError::FingerprintMismatch {
                id: "offsite-2025".into(),
                header: crate::fingerprint(&[1; 32]),
                key_file: crate::fingerprint(&[2; 32]),
            })
        );
        assert_no_key_bytes(&keys, &format!("{err:#}"));

        // and it is never written
        let swapped = ExportKey {
            config: &keys[0].config,
            key_file: &keys[1].key_file,
        };
        let public = public(RSA_PEM);
        let err = create_bundle(
            "o",
            None,
            &[swapped],
            &[ExportRecipient::RsaPublicKey(&public)],
        )
        .unwrap_err();
        assert!(
            matches!(
                bundle_error(&err),
                Some(BundleError::FingerprintMismatch { .. })
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("refusing to export key 'offsite-2025'")
        );
    }

    #[test]
    fn payload_entry_differing_from_its_header_line_is_refused() {
        let keys = two_keys();
        let mut info = BundleKeyInfo::from_config(&keys[1].config).unwrap();
        info.archived_at = None; // the header hides that the key is archived
        let entries = vec![(
            keys[1].config.clone(),
            String::from_utf8(keys[1].key_file.clone()).unwrap(),
        )];
        let data = craft(vec![info], entries);
        let err = open_bundle(&data, &BundleSecret::RsaPrivateKey(&private(RSA_PEM))).unwrap_err();
        assert_eq!(
            bundle_error(&err),
            Some(&BundleError::EntryMismatch {
                id: "legacy-2024".into(),
                field: "archived-at"
            })
        );
    }

    #[test]
    fn kdf_parameters_are_checked_before_any_derivation() {
        let keys = two_keys();
        let data = create_bundle(
            "o",
            None,
            &exports(&keys),
            &[ExportRecipient::Passphrase(PASS)],
        )
        .unwrap();
        let text = String::from_utf8(data).unwrap();
        assert!(text.contains("\"n\":65536,"));
        for (from, to) in [
            ("\"n\":65536,", "\"n\":1073741824,"),
            ("\"n\":65536,", "\"n\":1000,"),
            ("\"p\":1,", "\"p\":1048576,"),
        ] {
            let hostile = text.replacen(from, to, 1);
            for err in [
                read_bundle_header(hostile.as_bytes()).unwrap_err(),
                open_bundle(hostile.as_bytes(), &BundleSecret::Passphrase(PASS)).unwrap_err(),
            ] {
                assert!(
                    matches!(
                        err.chain().find_map(|e| e.downcast_ref::<KeyError>()),
                        Some(KeyError::KdfParamsOutOfRange(_))
                    ),
                    "{to}: {err}"
                );
                assert!(err.to_string().contains("recipient 1"), "{err}");
            }
        }
    }

    #[test]
    fn other_files_and_versions_are_named() {
        let keys = two_keys();
        let data = String::from_utf8(rsa_bundle(&keys)).unwrap();
        let rsa = private(RSA_PEM);
        let secret = BundleSecret::RsaPrivateKey(&rsa);
        let newer = data.replacen("\"version\":1,", "\"version\":2,", 1);
        let err = open_bundle(newer.as_bytes(), &secret).unwrap_err();
        assert_eq!(
            bundle_error(&err),
            Some(&BundleError::UnsupportedVersion(2))
        );
        for other in [
            &b""[..],
            b"{\"kdf\":null}\n",
            b"-----BEGIN PROXMOX BACKUP KEY-----\n",
        ] {
            let err = open_bundle(other, &secret).unwrap_err();
            assert_eq!(bundle_error(&err), Some(&BundleError::NotABundle), "{err}");
        }
        // an unknown header field in a version 1 bundle
        let extra = data.replacen("\"version\":1,", "\"version\":1,\"extra\":0,", 1);
        let err = read_bundle_header(extra.as_bytes()).unwrap_err();
        assert!(
            matches!(bundle_error(&err), Some(BundleError::Malformed(_))),
            "{err}"
        );
        // an id that could not be a file name in a store
        let escape = data.replacen("\"id\":\"offsite-2025\"", "\"id\":\"../../x\"", 1);
        let err = read_bundle_header(escape.as_bytes()).unwrap_err();
        assert!(
            matches!(bundle_error(&err), Some(BundleError::Malformed(_))),
            "{err}"
        );
    }

    #[test]
    fn creation_refuses_what_it_could_not_open() {
        let keys = two_keys();
        let public = public(RSA_PEM);
        let rsa = [ExportRecipient::RsaPublicKey(&public)];
        let err = create_bundle("o", None, &[], &rsa).unwrap_err();
        assert_eq!(err.to_string(), "no keys to export");
        let err = create_bundle("o", None, &exports(&keys), &[]).unwrap_err();
        assert!(err.to_string().contains("no recipient"), "{err}");
        let err = create_bundle(
            "o",
            None,
            &exports(&keys),
            &[ExportRecipient::Passphrase(b"abcd")],
        )
        .unwrap_err();
        assert_eq!(
            err.downcast_ref::<KeyError>(),
            Some(&KeyError::PassphraseTooShort)
        );
        // finding 67: the first line of a public key (or of a bundle) as
        // the passphrase, which anyone could type
        let pem = public.public_key_to_pem().unwrap();
        let first_line = pem.split(|b| *b == b'\n').next().unwrap();
        let header = create_bundle("o", None, &exports(&keys), &rsa).unwrap();
        let header = header.split(|b| *b == b'\n').next().unwrap().to_vec();
        for passphrase in [&pem[..], first_line, b"-----begin x", &header] {
            let err = create_bundle(
                "o",
                None,
                &exports(&keys),
                &[ExportRecipient::Passphrase(passphrase)],
            )
            .unwrap_err();
            assert!(
                matches!(
                    err.downcast_ref::<KeyError>(),
                    Some(KeyError::PassphraseNoSecret(_))
                ),
                "{err}"
            );
        }
        for origin in ["", "two\nlines"] {
            assert!(create_bundle(origin, None, &exports(&keys), &rsa).is_err());
        }
        let small = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
        let small = PKey::public_key_from_der(&small.public_key_to_der().unwrap()).unwrap();
        let err = create_bundle(
            "o",
            None,
            &exports(&keys),
            &[ExportRecipient::RsaPublicKey(&small)],
        )
        .unwrap_err();
        assert!(err.to_string().contains("too small"), "{err}");
    }

    #[test]
    fn rsa_keys_read_as_create_master_key_writes_them() {
        let rsa = private(RSA_PEM);
        // master-private.pem: PKCS#8, AES-256-CBC under a passphrase
        let encrypted = rsa
            .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), b"master pass")
            .unwrap();
        assert!(encrypted.starts_with(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        let asked = std::cell::Cell::new(0);
        let key = rsa_private_key_from_pem(&encrypted, &|| {
            asked.set(asked.get() + 1);
            Ok(b"master pass".to_vec())
        })
        .unwrap();
        assert_eq!(asked.get(), 1);
        assert_eq!(rsa_key_id(&key).unwrap(), rsa_key_id(&rsa).unwrap());
        let err = rsa_private_key_from_pem(&encrypted, &|| Ok(b"wrong pass".to_vec())).unwrap_err();
        assert!(err.to_string().contains("wrong passphrase"), "{err}");
        let err = rsa_private_key_from_pem(&encrypted, &|| bail!("no tty")).unwrap_err();
        assert_eq!(err.to_string(), "no tty");
        // an unencrypted key asks nothing
        rsa_private_key_from_pem(RSA_PEM, &|| panic!("asked for a passphrase")).unwrap();

        // master-public.pem: the SubjectPublicKeyInfo PEM
        let public_pem = rsa.public_key_to_pem().unwrap();
        assert!(public_pem.starts_with(b"-----BEGIN PUBLIC KEY-----"));
        let public = rsa_public_key_from_pem(&public_pem).unwrap();
        assert_eq!(rsa_key_id(&public).unwrap(), rsa_key_id(&rsa).unwrap());
        let pkcs1 = rsa.rsa().unwrap().public_key_to_pem_pkcs1().unwrap();
        assert!(rsa_public_key_from_pem(&pkcs1).is_ok());
        assert!(rsa_public_key_from_pem(b"not a key").is_err());
        // the id is the SHA-256 of the DER public key
        assert_eq!(
            rsa_key_id(&public).unwrap(),
            hex_lower(&openssl::sha::sha256(&public.public_key_to_der().unwrap()))
        );
    }

    #[test]
    fn bundle_files_are_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.pbs-export");
        let data = rsa_bundle(&two_keys());
        write_bundle_file(&path, &data).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        let err = write_bundle_file(&path, b"other").unwrap_err().to_string();
        assert!(
            err.contains("keys.pbs-export") && err.contains("exists"),
            "{err}"
        );
        assert_eq!(read_bundle_file(&path).unwrap(), data);
        assert_eq!(read_written_bundle_file(&path).unwrap(), data);
    }

    /// What others put at the name of a file this host wrote is refused
    /// unread: a symbolic link (to the file itself), a FIFO (no writer: a
    /// plain open would wait for one), a directory (finding 46).
    #[test]
    fn a_written_bundle_is_read_back_only_as_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys.pbs-export");
        write_bundle_file(&file, b"bundle").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        for path in [link, fifo, dir.path().to_path_buf()] {
            let err = read_written_bundle_file(&path).unwrap_err().to_string();
            assert!(err.contains("is not a regular file"), "{err}");
        }
    }

    /// A rotation proves an export to an RSA master key without its
    /// private half: the data key opens the copy read back, and only an
    /// intact copy of this very bundle passes.
    #[test]
    fn a_provable_bundle_proves_its_intact_copy_only() {
        let keys = two_keys();
        let public = public(RSA_PEM);
        let recipients = [ExportRecipient::RsaPublicKey(&public)];
        let bundle =
            create_provable_bundle("pbs-keystore/test", None, &exports(&keys), &recipients)
                .unwrap();
        let opened = bundle.prove(bundle.bytes()).unwrap();
        assert_entries_equal(opened.entries(), &keys);
        // the recipient opens the same bytes
        let by_rsa = open_bundle(
            bundle.bytes(),
            &BundleSecret::RsaPrivateKey(&private(RSA_PEM)),
        )
        .unwrap();
        assert_entries_equal(by_rsa.entries(), &keys);

        // a flipped byte of the payload, of the header, a cut copy
        let mut flipped = bundle.bytes().to_vec();
        let at = flipped.len() - 10;
        flipped[at] = if flipped[at] == b'A' { b'B' } else { b'A' };
        let err = bundle.prove(&flipped).unwrap_err();
        assert!(
            matches!(bundle_error(&err), Some(BundleError::Corrupt(_))),
            "{err}"
        );
        let edited = String::from_utf8(bundle.bytes().to_vec())
            .unwrap()
            .replacen("offsite-2025", "offsite-2026", 1);
        assert!(bundle.prove(edited.as_bytes()).is_err());
        let cut = &bundle.bytes()[..bundle.bytes().len() - 5];
        assert!(matches!(
            bundle_error(&bundle.prove(cut).unwrap_err()),
            Some(BundleError::Truncated { .. })
        ));
        // another bundle of the same keys is not this one
        let other = rsa_bundle(&keys);
        assert!(bundle.prove(&other).is_err());
        // the data key never shows
        let debug = format!("{bundle:?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert_no_key_bytes(&keys, &debug);
        // create_bundle gives the same kind of bundle
        assert_eq!(
            read_bundle_header(&other).unwrap().keys,
            read_bundle_header(bundle.bytes()).unwrap().keys
        );
    }
}
