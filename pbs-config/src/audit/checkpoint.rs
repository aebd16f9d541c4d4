//! Signed checkpoints of the audit log, in the C2SP signed-note format
//! (<https://c2sp.org/signed-note>, body as <https://c2sp.org/tlog-checkpoint>).
//!
//! ```text
//! pbs-keystore/<host>/<store id>
//! <size>
//! <base64 of the head hash>
//!
//! — <key name> <base64(key id || Ed25519 signature of the three lines)>
//! ```
//!
//! - the origin names this store: `<store id>` is the hex of the first 8
//!   bytes of SHA-256 of the signing key's public key, so a log signed with
//!   another key has another origin;
//! - the size is the number of records, the head is the `hash` of record
//!   `size` (a hash chain's head, not the Merkle tree root of
//!   tlog-checkpoint: the note is a standard signed note, but there are no
//!   inclusion proofs);
//! - the key name is the origin; the key id is, as C2SP defines it for
//!   Ed25519, the first 4 bytes of SHA-256(key name || 0x0A || 0x01 ||
//!   public key); the signature covers the body including its final
//!   newline;
//! - the verifier key (for keeping off the host) is
//!   `<key name>+<hex key id>+<base64(0x01 || public key)>`, the format of
//!   Go's `golang.org/x/mod/sumdb/note`.
//!
//! One-line form (syslog, one record per line): `checkpoint <origin>
//! <size> <head> — <key name> <signature>`; [`Checkpoint::parse`] reads
//! both forms.

use std::fmt;

use anyhow::{Error, bail, format_err};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::sign::{Signer, Verifier};
use zeroize::Zeroizing;

/// The signature type byte of Ed25519 in C2SP signed notes.
const ED25519_TYPE: u8 = 0x01;

/// The start of a signature line: em dash, space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// The word that starts the one-line form.
const LINE_WORD: &str = "checkpoint";

/// The first component of every origin.
pub const ORIGIN_PREFIX: &str = "pbs-keystore";

/// An Ed25519 public key (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", BASE64.encode(self.0))
    }
}

impl PublicKey {
    /// The raw bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The store id this key gives: hex of the first 8 bytes of its SHA-256.
    pub fn store_id(&self) -> String {
        hex::encode(&openssl::sha::sha256(&self.0)[..8])
    }

    /// The C2SP key id of this key under `name`.
    pub fn key_id(&self, name: &str) -> [u8; 4] {
        let mut hasher = openssl::sha::Sha256::new();
        hasher.update(name.as_bytes());
        hasher.update(&[b'\n', ED25519_TYPE]);
        hasher.update(&self.0);
        let digest = hasher.finish();
        [digest[0], digest[1], digest[2], digest[3]]
    }

    /// The verifier key text: `<name>+<hex key id>+<base64(0x01 || key)>`.
    pub fn verifier_key(&self, name: &str) -> String {
        let mut typed = vec![ED25519_TYPE];
        typed.extend_from_slice(&self.0);
        format!(
            "{name}+{}+{}",
            hex::encode(self.key_id(name)),
            BASE64.encode(typed)
        )
    }

    /// Parses a verifier key text; returns its name and key.
    pub fn parse_verifier_key(text: &str) -> Result<(String, PublicKey), Error> {
        let text = text.trim();
        // the key's base64 may hold '+' itself
        let parts: Vec<&str> = text.splitn(3, '+').collect();
        let [name, id, key] = parts[..] else {
            bail!(
                "invalid verifier key - expected NAME+KEYID+KEY (as 'audit checkpoint' prints it)"
            );
        };
        check_key_name(name)?;
        let typed = BASE64
            .decode(key)
            .map_err(|_| format_err!("invalid verifier key '{name}' - its key is not base64"))?;
        let Some((&ED25519_TYPE, raw)) = typed.split_first() else {
            bail!("invalid verifier key '{name}' - not an Ed25519 key");
        };
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| format_err!("invalid verifier key '{name}' - not 32 key bytes"))?;
        let key = PublicKey(raw);
        if hex::encode(key.key_id(name)) != id {
            bail!("invalid verifier key '{name}' - its key id {id} does not match its key");
        }
        Ok((name.to_string(), key))
    }

    /// Whether `signature` is this key's over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let check = || -> Result<bool, openssl::error::ErrorStack> {
            let key: PKey<Public> = PKey::public_key_from_raw_bytes(&self.0, Id::ED25519)?;
            let mut verifier = Verifier::new_without_digest(&key)?;
            verifier.verify_oneshot(signature, message)
        };
        signature.len() == 64 && check().unwrap_or(false)
    }
}

/// This store's Ed25519 signing key (its bytes stay inside openssl).
pub struct SigningKey {
    key: PKey<Private>,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .field("private", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    /// A new random key.
    pub(crate) fn generate() -> Result<Self, Error> {
        let key = PKey::generate_ed25519()
            .map_err(|err| format_err!("unable to generate an Ed25519 key - {err}"))?;
        Self::from_key(key)
    }

    fn from_key(key: PKey<Private>) -> Result<Self, Error> {
        let raw = key
            .raw_public_key()
            .map_err(|err| format_err!("unable to get the public key - {err}"))?;
        let public = PublicKey(
            raw.try_into()
                .map_err(|_| format_err!("an Ed25519 public key is not 32 bytes"))?,
        );
        Ok(Self { key, public })
    }

    /// Reads a PKCS#8 PEM private key (what [`SigningKey::to_pem`] writes).
    /// The error never quotes the file.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        if let Some(key) = Self::from_our_pem(pem) {
            return key;
        }
        let key =
            PKey::private_key_from_pem(pem).map_err(|_| format_err!("not a PEM private key"))?;
        if key.id() != Id::ED25519 {
            bail!("not an Ed25519 key");
        }
        Self::from_key(key)
    }

    /// The PEM [`SigningKey::to_pem`] writes (PKCS#8 v1 of an Ed25519
    /// seed, RFC 8410: a fixed 16-byte DER prefix and the 32-byte seed),
    /// read without OpenSSL's decoder: that takes 5 million instructions a
    /// key (about 1 ms), once per audited operation. `None` for any other
    /// PEM (then read through OpenSSL).
    fn from_our_pem(pem: &[u8]) -> Option<Result<Self, Error>> {
        const DER_PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let text = std::str::from_utf8(pem).ok()?;
        let body = text
            .strip_prefix("-----BEGIN PRIVATE KEY-----\n")?
            .strip_suffix("-----END PRIVATE KEY-----\n")?
            .strip_suffix('\n')?;
        let der = Zeroizing::new(BASE64.decode(body).ok()?);
        let seed = der.strip_prefix(&DER_PREFIX[..])?;
        if seed.len() != 32 {
            return None;
        }
        Some(
            PKey::private_key_from_raw_bytes(seed, Id::ED25519)
                .map_err(|_| format_err!("not an Ed25519 private key"))
                .and_then(Self::from_key),
        )
    }

    /// The key as PKCS#8 PEM (`openssl pkey` reads it).
    pub(crate) fn to_pem(&self) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.key
            .private_key_to_pem_pkcs8()
            .map(Zeroizing::new)
            .map_err(|err| format_err!("unable to encode the signing key - {err}"))
    }

    /// Its public half.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let mut signer = Signer::new_without_digest(&self.key)
            .map_err(|err| format_err!("unable to sign the audit checkpoint - {err}"))?;
        signer
            .sign_oneshot_to_vec(message)
            .map_err(|err| format_err!("unable to sign the audit checkpoint - {err}"))
    }
}

/// The origin of this store's checkpoints: `pbs-keystore/<host>/<store id>`.
pub fn origin(host: &str, store_id: &str) -> String {
    format!("{ORIGIN_PREFIX}/{host}/{store_id}")
}

/// The longest host name used in an origin: it keeps a checkpoint note
/// within one disk sector (see the audit module's crash order).
const MAX_HOST_LEN: usize = 64;

/// This host's name (a key name may hold neither spaces nor '+'), at most
/// 64 characters.
pub fn host_name() -> String {
    let uname = rustix::system::uname();
    let name: String = uname
        .nodename()
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '+' || c == '/' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    match name.chars().count() {
        0 => "localhost".to_string(),
        n if n > MAX_HOST_LEN => name.chars().take(MAX_HOST_LEN).collect(),
        _ => name,
    }
}

fn check_key_name(name: &str) -> Result<(), Error> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        bail!("invalid key name {name:?} - it must be non-empty, without spaces or '+'");
    }
    Ok(())
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The signer's key name.
    pub name: String,
    /// The key id (first 4 bytes of the decoded signature).
    pub key_id: [u8; 4],
    /// The signature proper.
    pub signature: Vec<u8>,
}

/// What a checkpoint's signatures say about one public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    /// A signature line of this key verifies.
    Valid,
    /// A signature line names this key, but does not verify: the note was altered.
    Invalid,
    /// No signature line is this key's.
    Absent,
}

/// A signed checkpoint: origin, size, head and the signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The origin line (names the store).
    pub origin: String,
    /// The number of records covered.
    pub size: u64,
    /// The `hash` of record `size`.
    pub head: [u8; 32],
    /// The signed text: the body lines, each ending in a newline.
    body: String,
    /// The signature lines.
    pub signatures: Vec<NoteSignature>,
}

impl Checkpoint {
    /// Signs the checkpoint of `size` records ending in `head` with `key`,
    /// the key name being the origin.
    pub(crate) fn sign(
        origin: &str,
        size: u64,
        head: &[u8; 32],
        key: &SigningKey,
    ) -> Result<Self, Error> {
        check_key_name(origin)?;
        let body = format!("{origin}\n{size}\n{}\n", BASE64.encode(head));
        let signature = key.sign(body.as_bytes())?;
        Ok(Self {
            origin: origin.to_string(),
            size,
            head: *head,
            body,
            signatures: vec![NoteSignature {
                name: origin.to_string(),
                key_id: key.public_key().key_id(origin),
                signature,
            }],
        })
    }

    /// The signed text (origin, size, head, each with its newline).
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The head as hex (as the log's `hash` members write it).
    pub fn head_hex(&self) -> String {
        hex::encode(self.head)
    }

    /// The store id the origin names (its last component).
    pub fn store_id(&self) -> Option<&str> {
        let rest = self.origin.strip_prefix(ORIGIN_PREFIX)?.strip_prefix('/')?;
        rest.rsplit_once('/').map(|(_, id)| id)
    }

    /// The host the origin names.
    pub fn host(&self) -> Option<&str> {
        let rest = self.origin.strip_prefix(ORIGIN_PREFIX)?.strip_prefix('/')?;
        rest.rsplit_once('/').map(|(host, _)| host)
    }

    /// The note text: body, blank line, signature lines.
    pub fn to_note(&self) -> String {
        let mut text = self.body.clone();
        text.push('\n');
        for sig in &self.signatures {
            text.push_str(&signature_line(sig));
            text.push('\n');
        }
        text
    }

    /// The one-line form (see the module docs); `None` for a checkpoint
    /// with extension lines or several signatures, which it cannot hold.
    pub fn to_line(&self) -> Option<String> {
        let [sig] = &self.signatures[..] else {
            return None;
        };
        if self.body.lines().count() != 3 {
            return None;
        }
        Some(format!(
            "{LINE_WORD} {} {} {} {}",
            self.origin,
            self.size,
            BASE64.encode(self.head),
            signature_line(sig)
        ))
    }

    /// Reads a checkpoint in note form or one-line form (then from the
    /// word `checkpoint` on, so a copied syslog line will do). Only the
    /// format is checked; [`Checkpoint::check_signature`] checks the
    /// signature.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let trimmed = text.trim_start_matches(['\n', ' ']);
        if trimmed.contains("\n\n") {
            return Self::parse_note(trimmed);
        }
        Self::parse_one_line(trimmed)
    }

    fn parse_note(text: &str) -> Result<Self, Error> {
        if text.chars().any(|c| c.is_control() && c != '\n') {
            bail!("invalid checkpoint - it holds control characters");
        }
        let text = text.trim_end_matches('\n');
        let Some(split) = text.rfind("\n\n") else {
            bail!("invalid checkpoint - no blank line before the signatures");
        };
        let body = format!("{}\n", &text[..split]);
        let mut signatures = Vec::new();
        for line in text[split + 2..].split('\n') {
            signatures.push(parse_signature_line(line)?);
        }
        Self::from_body(body, signatures)
    }

    fn parse_one_line(text: &str) -> Result<Self, Error> {
        let line = text.trim_end_matches('\n');
        if line.contains('\n') {
            bail!("invalid checkpoint - neither a signed note nor one line");
        }
        let Some(start) = line.find(&format!("{LINE_WORD} ")) else {
            bail!("invalid checkpoint - neither a signed note nor a 'checkpoint ...' line");
        };
        let fields: Vec<&str> = line[start + LINE_WORD.len()..].split_whitespace().collect();
        let [origin, size, head, dash, name, signature] = fields[..] else {
            bail!(
                "invalid checkpoint line - expected 'checkpoint ORIGIN SIZE HEAD \u{2014} NAME SIGNATURE'"
            );
        };
        if dash != "\u{2014}" {
            bail!("invalid checkpoint line - no '\u{2014}' before the key name");
        }
        let body = format!("{origin}\n{size}\n{head}\n");
        let sig = parse_signature_line(&format!("{SIGNATURE_PREFIX}{name} {signature}"))?;
        Self::from_body(body, vec![sig])
    }

    fn from_body(body: String, signatures: Vec<NoteSignature>) -> Result<Self, Error> {
        let mut lines = body.lines();
        let (Some(origin), Some(size), Some(head)) = (lines.next(), lines.next(), lines.next())
        else {
            bail!("invalid checkpoint - fewer than three lines (origin, size, head)");
        };
        if origin.is_empty() {
            bail!("invalid checkpoint - empty origin");
        }
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            bail!("invalid checkpoint - its size is not a decimal number");
        }
        let size: u64 = size
            .parse()
            .map_err(|_| format_err!("invalid checkpoint - its size is out of range"))?;
        let head: [u8; 32] = BASE64
            .decode(head)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| {
                format_err!("invalid checkpoint - its head is not 32 bytes of base64")
            })?;
        if lines.any(str::is_empty) {
            bail!("invalid checkpoint - an empty extension line");
        }
        if signatures.is_empty() {
            bail!("invalid checkpoint - no signature");
        }
        Ok(Self {
            origin: origin.to_string(),
            size,
            head,
            body,
            signatures,
        })
    }

    /// What the signatures say about `key`: a line whose key id is `key`'s
    /// id under the line's name, and whether it verifies.
    pub fn check_signature(&self, key: &PublicKey) -> SignatureCheck {
        let mut named = false;
        for sig in &self.signatures {
            if sig.key_id != key.key_id(&sig.name) {
                continue;
            }
            if key.verify(self.body.as_bytes(), &sig.signature) {
                return SignatureCheck::Valid;
            }
            named = true;
        }
        if named {
            SignatureCheck::Invalid
        } else {
            SignatureCheck::Absent
        }
    }

    /// The signers, for messages: `NAME (key id HEX)`, comma-separated.
    pub fn signers(&self) -> String {
        self.signatures
            .iter()
            .map(|sig| format!("{} (key id {})", sig.name, hex::encode(sig.key_id)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn signature_line(sig: &NoteSignature) -> String {
    let mut bytes = sig.key_id.to_vec();
    bytes.extend_from_slice(&sig.signature);
    format!("{SIGNATURE_PREFIX}{} {}", sig.name, BASE64.encode(bytes))
}

fn parse_signature_line(line: &str) -> Result<NoteSignature, Error> {
    let Some(rest) = line.strip_prefix(SIGNATURE_PREFIX) else {
        bail!("invalid checkpoint - a signature line does not start with '\u{2014} '");
    };
    let Some((name, signature)) = rest.split_once(' ') else {
        bail!("invalid checkpoint - a signature line has no key name and signature");
    };
    check_key_name(name)?;
    let bytes = BASE64
        .decode(signature)
        .map_err(|_| format_err!("invalid checkpoint - the signature of '{name}' is not base64"))?;
    if bytes.len() < 5 {
        bail!("invalid checkpoint - the signature of '{name}' is too short");
    }
    Ok(NoteSignature {
        name: name.to_string(),
        key_id: [bytes[0], bytes[1], bytes[2], bytes[3]],
        signature: bytes[4..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed key (RFC 8032 test 1), so the bytes below do not change.
    fn key() -> SigningKey {
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        SigningKey::from_key(PKey::private_key_from_raw_bytes(&seed, Id::ED25519).unwrap()).unwrap()
    }

    #[test]
    fn ed25519_through_openssl_matches_rfc_8032() {
        let key = key();
        assert_eq!(
            hex::encode(key.public_key().bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(key.sign(b"").unwrap()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    /// The PEM we write is read without OpenSSL's decoder, to the same
    /// key; any other PEM still goes through OpenSSL (and a broken one
    /// fails either way).
    #[test]
    fn our_pem_reads_back_to_the_same_key_with_or_without_the_decoder() {
        let key = key();
        let pem = key.to_pem().unwrap();
        let fast = SigningKey::from_our_pem(&pem)
            .expect("our own PEM takes the fast path")
            .unwrap();
        let decoded = PKey::private_key_from_pem(&pem).unwrap();
        assert_eq!(fast.public_key(), key.public_key());
        assert_eq!(fast.sign(b"m").unwrap(), key.sign(b"m").unwrap());
        assert_eq!(
            decoded.raw_private_key().unwrap(),
            fast.key.raw_private_key().unwrap()
        );
        // CRLF line ends: not ours, read by OpenSSL to the same key
        let crlf = String::from_utf8(pem.to_vec())
            .unwrap()
            .replace('\n', "\r\n");
        assert!(SigningKey::from_our_pem(crlf.as_bytes()).is_none());
        let through_openssl = SigningKey::from_pem(crlf.as_bytes()).unwrap();
        assert_eq!(through_openssl.public_key(), key.public_key());
        // a PEM of another key type: refused
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let rsa_pem = PKey::from_rsa(rsa)
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        assert!(SigningKey::from_pem(&rsa_pem).is_err());
        // one base64 character changed inside the seed: another key, or refused
        let mut changed = pem.to_vec();
        let at = changed.len() - "-----END PRIVATE KEY-----\n".len() - 3;
        changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
        if let Ok(other) = SigningKey::from_pem(&changed) {
            assert_ne!(other.public_key(), key.public_key());
        }
    }

    #[test]
    fn the_key_id_is_c2sps_for_ed25519() {
        let key = key().public_key();
        let mut data = b"example.com/log\n\x01".to_vec();
        data.extend_from_slice(key.bytes());
        assert_eq!(
            key.key_id("example.com/log"),
            openssl::sha::sha256(&data)[..4]
        );
        let vkey = key.verifier_key("example.com/log");
        let (name, parsed) = PublicKey::parse_verifier_key(&vkey).unwrap();
        assert_eq!((name.as_str(), parsed), ("example.com/log", key));
        let other_id = format!(
            "example.com/log+00000000+{}",
            vkey.rsplit('+').next().unwrap()
        );
        assert!(PublicKey::parse_verifier_key(&other_id).is_err());
    }

    #[test]
    fn a_checkpoint_is_a_signed_note_that_round_trips() {
        let key = key();
        let origin = origin("pbs1", &key.public_key().store_id());
        let checkpoint = Checkpoint::sign(&origin, 12, &[7u8; 32], &key).unwrap();
        let note = checkpoint.to_note();
        let lines: Vec<&str> = note.split('\n').collect();
        assert_eq!(lines[0], origin);
        assert_eq!(lines[1], "12");
        assert_eq!(lines[2], BASE64.encode([7u8; 32]));
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with(&format!("\u{2014} {origin} ")));
        assert_eq!(lines[5], "");
        // 4 bytes key id and 64 bytes signature
        let sig = BASE64.decode(lines[4].rsplit(' ').next().unwrap()).unwrap();
        assert_eq!(sig.len(), 68);
        assert_eq!(sig[..4], key.public_key().key_id(&origin));

        let parsed = Checkpoint::parse(&note).unwrap();
        assert_eq!(parsed, checkpoint);
        assert_eq!(
            parsed.check_signature(&key.public_key()),
            SignatureCheck::Valid
        );
        assert_eq!(
            parsed.store_id(),
            Some(key.public_key().store_id().as_str())
        );
        assert_eq!(parsed.host(), Some("pbs1"));

        let line = checkpoint.to_line().unwrap();
        assert!(!line.contains('\n'));
        let from_syslog = format!("Nov 29 15:10:43 pbs1 pbs-keystore-audit[42]: {line}");
        assert_eq!(Checkpoint::parse(&from_syslog).unwrap(), checkpoint);
    }

    #[test]
    fn a_note_fits_one_disk_sector() {
        let key = key();
        let host = "h".repeat(MAX_HOST_LEN);
        let origin = origin(&host, &key.public_key().store_id());
        let note = Checkpoint::sign(&origin, u64::MAX, &[7u8; 32], &key)
            .unwrap()
            .to_note();
        assert!(note.len() <= 512, "{} bytes", note.len());
    }

    #[test]
    fn an_altered_or_foreign_checkpoint_does_not_verify() {
        let key = key();
        let checkpoint = Checkpoint::sign("pbs-keystore/h/x", 12, &[7u8; 32], &key).unwrap();
        let note = checkpoint.to_note();
        let altered = Checkpoint::parse(&note.replacen("\n12\n", "\n13\n", 1)).unwrap();
        assert_eq!(
            altered.check_signature(&key.public_key()),
            SignatureCheck::Invalid
        );
        let other = SigningKey::generate().unwrap();
        assert_eq!(
            checkpoint.check_signature(&other.public_key()),
            SignatureCheck::Absent
        );
    }

    #[test]
    fn malformed_checkpoints_are_refused() {
        let key = key();
        let note = Checkpoint::sign("pbs-keystore/h/x", 12, &[7u8; 32], &key)
            .unwrap()
            .to_note();
        for (bad, why) in [
            (note.replacen("\n12\n", "\n012\n", 1), "leading zero"),
            (note.replacen("\n12\n", "\n-1\n", 1), "sign"),
            (note.replacen("\n\n", "\n", 1), "no blank line"),
            (note.replacen('\u{2014}', "-", 1), "no em dash"),
            (note.replacen("pbs-keystore/h/x\n", "", 1), "two lines"),
            (format!("{note}\u{7}"), "control character"),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{why}: {bad}");
        }
    }
}
