//! The TLS certificate of the daemon: `proxy.pem` and `proxy.key` in the
//! config dir (upstream's names), created on first start if missing.
//!
//! A new certificate is self-signed, EC P-256 (fast to create and to
//! handshake with), valid for ten years, for the host name, `localhost`,
//! `127.0.0.1` and `::1`. The key is 0640 root:backup (the config dir's
//! ownership policy), the certificate likewise. An existing pair (an
//! upstream host's RSA one, or one from a CA) is used as it is.

use anyhow::{Error, format_err};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder};

use pbs_config::ConfigDir;
use pbs_config::files::{PROXY_KEY, PROXY_PEM};

/// Creates `proxy.pem` and `proxy.key` unless both exist.
pub fn ensure_certificate(dir: &ConfigDir) -> Result<(), Error> {
    if dir.read_file(&PROXY_PEM)?.is_some() && dir.read_file(&PROXY_KEY)?.is_some() {
        return Ok(());
    }
    let (cert, key) = self_signed(&pbs_config::audit::checkpoint::host_name())
        .map_err(|err| format_err!("unable to create a TLS certificate - {err}"))?;
    // the key first: a certificate without its key would be kept next time
    dir.write_file(&PROXY_KEY, &key)?;
    dir.write_file(&PROXY_PEM, &cert)?;
    Ok(())
}

fn self_signed(host: &str) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;

    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "pbs-keystore")?;
    name.append_entry_by_nid(Nid::COMMONNAME, host)?;
    let name = name.build();

    let mut cert = X509::builder()?;
    cert.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    cert.set_serial_number(&serial)?;
    cert.set_subject_name(&name)?;
    cert.set_issuer_name(&name)?;
    cert.set_pubkey(&key)?;
    let not_before = Asn1Time::days_from_now(0)?;
    let not_after = Asn1Time::days_from_now(3650)?;
    cert.set_not_before(&not_before)?;
    cert.set_not_after(&not_after)?;
    cert.append_extension(BasicConstraints::new().critical().build()?)?;
    cert.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()?,
    )?;
    cert.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let san = SubjectAlternativeName::new()
        .dns(host)
        .dns("localhost")
        .ip("127.0.0.1")
        .ip("::1")
        .build(&cert.x509v3_context(None, None))?;
    cert.append_extension(san)?;
    cert.sign(&key, MessageDigest::sha256())?;
    let cert = cert.build();
    Ok((cert.to_pem()?, key.private_key_to_pem_pkcs8()?))
}

/// A TLS acceptor (TLS 1.2 and 1.3, HTTP/1.1) for the pair in `dir`.
pub fn acceptor(dir: &ConfigDir) -> Result<SslAcceptor, Error> {
    let cert_path = dir.path(PROXY_PEM.name);
    let key_path = dir.path(PROXY_KEY.name);
    // read through the config dir's handle (never by path: openssl's file
    // loaders follow symbolic links)
    let missing = |path: &std::path::Path| format_err!("{path:?} is missing");
    let key_pem = dir
        .read_file(&PROXY_KEY)?
        .ok_or_else(|| missing(&key_path))?;
    let cert_pem = dir
        .read_file(&PROXY_PEM)?
        .ok_or_else(|| missing(&cert_path))?;
    let key = PKey::private_key_from_pem(&key_pem)
        .map_err(|err| format_err!("unable to load TLS key {key_path:?} - {err}"))?;
    let mut chain = X509::stack_from_pem(&cert_pem)
        .map_err(|err| format_err!("unable to load TLS certificate {cert_path:?} - {err}"))?
        .into_iter();
    let Some(leaf) = chain.next() else {
        return Err(format_err!(
            "unable to load TLS certificate {cert_path:?} - no certificate in it"
        ));
    };
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    builder
        .set_private_key(&key)
        .map_err(|err| format_err!("unable to load TLS key {key_path:?} - {err}"))?;
    builder
        .set_certificate(&leaf)
        .map_err(|err| format_err!("unable to load TLS certificate {cert_path:?} - {err}"))?;
    for extra in chain {
        builder
            .add_extra_chain_cert(extra)
            .map_err(|err| format_err!("unable to load TLS certificate {cert_path:?} - {err}"))?;
    }
    builder
        .check_private_key()
        .map_err(|err| format_err!("TLS key {key_path:?} does not match {cert_path:?} - {err}"))?;
    builder.set_alpn_select_callback(|_, client| {
        openssl::ssl::select_next_proto(b"\x08http/1.1", client)
            .ok_or(openssl::ssl::AlpnError::NOACK)
    });
    Ok(builder.build())
}

/// SHA-256 fingerprint of the certificate in `dir`, colon separated (as
/// `proxmox-backup-client` asks for it).
pub fn certificate_fingerprint(dir: &ConfigDir) -> Result<String, Error> {
    let path = dir.path(PROXY_PEM.name);
    let pem = dir
        .read_file(&PROXY_PEM)?
        .ok_or_else(|| format_err!("{path:?} is missing"))?;
    let cert =
        X509::from_pem(&pem).map_err(|err| format_err!("unable to parse {path:?} - {err}"))?;
    let digest = cert.digest(MessageDigest::sha256())?;
    Ok(digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}
