//! Tickets and CSRF prevention tokens, with the keys that sign them.
//!
//! A ticket is upstream PBS's `PBS:USERID:HEXTIME::SIGNATURE`: the prefix,
//! the user id, the creation time as 8 upper-case hex digits, then the
//! base64 (no padding) signature of everything before `::`. It is valid for
//! [`TICKET_LIFETIME`] seconds (and up to [`TICKET_MAX_CLOCK_SKEW`] seconds
//! in the future, as upstream allows).
//!
//! Signing key: `authkey.key` in the config dir (0600, root:root as root),
//! public half in `authkey.pub` (0640 root:backup), upstream's names. A new
//! key is Ed25519; an existing RSA or EC key (an upstream host's) is used as
//! it is, signing with SHA-256. The CSRF token is
//! `HEXTIME:base64(HMAC-SHA256(csrf.key, "HEXTIME:USERID:"))`, keyed with
//! `csrf.key` (0640 root:backup), bound to the user and valid as long as a
//! ticket.
//!
//! Nothing here logs or returns key material; verification errors say what
//! was wrong with a ticket, never what it contained.

use anyhow::{Error, bail, format_err};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::sign::{Signer, Verifier};

use proxmox_time::epoch_i64;

use pbs_api_types::Userid;
use pbs_config::ConfigDir;
use pbs_config::files::{AUTH_KEY, AUTH_PUB, CSRF_KEY, ConfigFile};

/// How long a ticket (and its CSRF token) is valid, in seconds.
pub const TICKET_LIFETIME: i64 = 2 * 3600;
/// How far in the future a ticket's time may be (clock skew), in seconds.
pub const TICKET_MAX_CLOCK_SKEW: i64 = 300;
/// The ticket prefix.
pub const TICKET_PREFIX: &str = "PBS";

/// Why a ticket or CSRF token was refused (the API answers 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketError(pub &'static str);

impl std::fmt::Display for TicketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for TicketError {}

/// The keys that sign and check tickets and CSRF tokens.
pub struct AuthKeys {
    private: PKey<Private>,
    public: PKey<Public>,
    csrf_secret: Vec<u8>,
}

impl std::fmt::Debug for AuthKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthKeys(<redacted>)")
    }
}

/// Reads `file`, creating it with `make()` first if it is missing (if
/// another process creates it at the same time, theirs is read).
fn read_or_create(
    dir: &ConfigDir,
    file: &ConfigFile,
    make: impl FnOnce() -> Result<Vec<u8>, Error>,
) -> Result<Vec<u8>, Error> {
    if let Some(data) = dir.read_file(file)? {
        return Ok(data);
    }
    let data = make()?;
    if dir.create_file(file, &data)? {
        return Ok(data);
    }
    dir.read_file(file)?.ok_or_else(|| {
        format_err!(
            "{:?} vanished right after it was created",
            dir.path(file.name)
        )
    })
}

impl AuthKeys {
    /// Loads the keys from the config dir, creating any that are missing.
    pub fn load_or_generate(dir: &ConfigDir) -> Result<Self, Error> {
        let key_path = dir.path(AUTH_KEY.name);
        let pem = read_or_create(dir, &AUTH_KEY, || {
            Ok(PKey::generate_ed25519()?.private_key_to_pem_pkcs8()?)
        })?;
        let private = PKey::private_key_from_pem(&pem)
            .map_err(|_| format_err!("unable to parse ticket signing key {key_path:?}"))?;
        let public = PKey::public_key_from_pem(&private.public_key_to_pem()?)?;
        dir.create_file(&AUTH_PUB, &public.public_key_to_pem()?)?;
        let csrf_path = dir.path(CSRF_KEY.name);
        let csrf_secret = read_or_create(dir, &CSRF_KEY, || {
            Ok(STANDARD_NO_PAD
                .encode(proxmox_sys::linux::random_data::<32>()?)
                .into_bytes())
        })?;
        if csrf_secret.len() < 16 {
            bail!("CSRF key {csrf_path:?} is too short (at least 16 bytes)");
        }
        Ok(Self {
            private,
            public,
            csrf_secret,
        })
    }

    fn digest(&self) -> Option<MessageDigest> {
        match self.private.id() {
            Id::ED25519 | Id::ED448 => None,
            _ => Some(MessageDigest::sha256()),
        }
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, Error> {
        let mut signer = match self.digest() {
            Some(digest) => Signer::new(digest, &self.private)?,
            None => Signer::new_without_digest(&self.private)?,
        };
        Ok(signer.sign_oneshot_to_vec(data)?)
    }

    fn verify(&self, data: &[u8], signature: &[u8]) -> bool {
        let verifier = match self.digest() {
            Some(digest) => Verifier::new(digest, &self.public),
            None => Verifier::new_without_digest(&self.public),
        };
        verifier
            .and_then(|mut v| v.verify_oneshot(signature, data))
            .unwrap_or(false)
    }

    /// A new ticket for `userid`, created now.
    pub fn create_ticket(&self, userid: &Userid) -> Result<String, Error> {
        self.create_ticket_at(userid, epoch_i64())
    }

    fn create_ticket_at(&self, userid: &Userid, time: i64) -> Result<String, Error> {
        let data = format!("{TICKET_PREFIX}:{userid}:{time:08X}");
        let signature = self.sign(data.as_bytes())?;
        Ok(format!("{data}::{}", STANDARD_NO_PAD.encode(signature)))
    }

    /// Checks a ticket's shape, signature and age; returns its user.
    ///
    /// # Errors
    ///
    /// A [`TicketError`] saying which check failed.
    pub fn verify_ticket(&self, ticket: &str) -> Result<Userid, Error> {
        self.verify_ticket_at(ticket, epoch_i64())
    }

    fn verify_ticket_at(&self, ticket: &str, now: i64) -> Result<Userid, Error> {
        let invalid = || Error::from(TicketError("invalid ticket"));
        let (data, signature) = ticket.split_once("::").ok_or_else(invalid)?;
        let rest = data
            .strip_prefix(TICKET_PREFIX)
            .and_then(|rest| rest.strip_prefix(':'))
            .ok_or_else(invalid)?;
        let (userid, time) = rest.rsplit_once(':').ok_or_else(invalid)?;
        if time.len() != 8 || !time.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let time = i64::from_str_radix(time, 16).map_err(|_| invalid())?;
        let signature = STANDARD_NO_PAD
            .decode(signature.trim_end_matches('='))
            .map_err(|_| invalid())?;
        if !self.verify(data.as_bytes(), &signature) {
            return Err(TicketError("invalid ticket - bad signature").into());
        }
        let age = now - time;
        if age < -TICKET_MAX_CLOCK_SKEW {
            return Err(TicketError("invalid ticket - timestamp in the future").into());
        }
        if age > TICKET_LIFETIME {
            return Err(TicketError("ticket expired").into());
        }
        userid.parse().map_err(|_| invalid())
    }

    fn csrf_digest(&self, time: i64, userid: &Userid) -> Result<Vec<u8>, Error> {
        let key = PKey::hmac(&self.csrf_secret)?;
        let mut signer = Signer::new(MessageDigest::sha256(), &key)?;
        signer.update(format!("{time:08X}:{userid}:").as_bytes())?;
        Ok(signer.sign_to_vec()?)
    }

    /// A CSRF prevention token for `userid`, created now.
    pub fn assemble_csrf_prevention_token(&self, userid: &Userid) -> Result<String, Error> {
        let time = epoch_i64();
        let digest = self.csrf_digest(time, userid)?;
        Ok(format!("{time:08X}:{}", STANDARD_NO_PAD.encode(digest)))
    }

    /// Checks a CSRF prevention token for `userid` (constant time).
    pub fn verify_csrf_prevention_token(&self, userid: &Userid, token: &str) -> Result<(), Error> {
        let invalid = || Error::from(TicketError("invalid CSRF prevention token"));
        let (time, digest) = token.split_once(':').ok_or_else(invalid)?;
        if time.len() != 8 || !time.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let time = i64::from_str_radix(time, 16).map_err(|_| invalid())?;
        let given = STANDARD_NO_PAD.decode(digest).map_err(|_| invalid())?;
        let expected = self.csrf_digest(time, userid)?;
        if given.len() != expected.len() || !openssl::memcmp::eq(&given, &expected) {
            return Err(invalid());
        }
        let age = epoch_i64() - time;
        if !(-TICKET_MAX_CLOCK_SKEW..=TICKET_LIFETIME).contains(&age) {
            return Err(TicketError("CSRF prevention token expired").into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (tempfile::TempDir, AuthKeys) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path()).unwrap();
        let keys = AuthKeys::load_or_generate(&dir).unwrap();
        (tmp, keys)
    }

    #[test]
    fn ticket_shape_round_trip_and_expiry() {
        let (tmp, keys) = keys();
        let alice: Userid = "alice@pbs".parse().unwrap();
        let now = 1_700_000_000;
        let ticket = keys.create_ticket_at(&alice, now).unwrap();
        assert!(ticket.starts_with("PBS:alice@pbs:6553F100::"), "{ticket}");
        assert_eq!(keys.verify_ticket_at(&ticket, now + 10).unwrap(), alice);
        let err = keys.verify_ticket_at(&ticket, now + TICKET_LIFETIME + 1);
        assert_eq!(err.unwrap_err().to_string(), "ticket expired");
        assert!(keys.verify_ticket_at(&ticket, now - 400).is_err());
        // another user's name under the same signature is refused
        let forged = ticket.replace("alice@pbs", "admin@pbs");
        assert!(keys.verify_ticket_at(&forged, now).is_err());
        for bad in [
            "",
            "PBS:",
            "PBS:alice@pbs:1::",
            "x::y",
            "PBS:a@pbs:ZZZZZZZZ::AAAA",
        ] {
            assert!(keys.verify_ticket_at(bad, now).is_err(), "{bad}");
        }
        // reloading uses the same key
        let dir = ConfigDir::new(tmp.path()).unwrap();
        let again = AuthKeys::load_or_generate(&dir).unwrap();
        assert_eq!(again.verify_ticket_at(&ticket, now).unwrap(), alice);
    }

    #[test]
    fn csrf_token_is_bound_to_the_user() {
        let (_tmp, keys) = keys();
        let alice: Userid = "alice@pbs".parse().unwrap();
        let bob: Userid = "bob@pbs".parse().unwrap();
        let token = keys.assemble_csrf_prevention_token(&alice).unwrap();
        keys.verify_csrf_prevention_token(&alice, &token).unwrap();
        assert!(keys.verify_csrf_prevention_token(&bob, &token).is_err());
        assert!(keys.verify_csrf_prevention_token(&alice, "junk").is_err());
    }

    #[test]
    fn an_upstream_rsa_key_signs_with_sha256() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path()).unwrap();
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        std::fs::write(dir.path(AUTH_KEY.name), rsa.private_key_to_pem().unwrap()).unwrap();
        let keys = AuthKeys::load_or_generate(&dir).unwrap();
        let root = Userid::root_userid();
        let ticket = keys.create_ticket(&root).unwrap();
        assert_eq!(keys.verify_ticket(&ticket).unwrap(), root);
    }
}
