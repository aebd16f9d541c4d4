//! Master-key escrow: a key file encrypted to an RSA public key.
//!
//! The whole KeyConfig JSON (as stored, so a protected key stays protected)
//! is encrypted with RSA PKCS#1 v1.5 padding into one block of the RSA key's
//! size, as upstream does for the backup client's master key.

use anyhow::{Error, bail, format_err};
use openssl::pkey::{Private, Public};
use openssl::rsa::{Padding, Rsa};
use zeroize::Zeroize;

use pbs_api_types::Fingerprint;

use crate::KeyConfig;

/// Encrypts `key` to the RSA public key `rsa`; the result has the RSA key's size.
pub fn rsa_encrypt_key_config(rsa: Rsa<Public>, key: &KeyConfig) -> Result<Vec<u8>, Error> {
    let mut data = key.to_json()?.into_bytes();
    let size = rsa.size() as usize;
    // PKCS#1 v1.5 needs 11 bytes of padding
    if data.len() + 11 > size {
        let len = data.len();
        data.zeroize();
        bail!(
            "key file of {len} bytes does not fit into a {}-bit RSA block",
            size * 8
        );
    }
    let mut buffer = vec![0u8; size];
    let len = rsa.public_encrypt(&data, &mut buffer, Padding::PKCS1);
    data.zeroize();
    let len = len.map_err(|err| format_err!("unable to encrypt key with RSA - {err}"))?;
    if len != size {
        bail!("unexpected RSA output length {len}, expected {size}");
    }
    Ok(buffer)
}

/// Decrypts an escrowed key file with the RSA private key `rsa`, then the key
/// inside (see [`KeyConfig::decrypt`]).
pub fn rsa_decrypt_key_config(
    rsa: Rsa<Private>,
    key: &[u8],
    passphrase: &dyn Fn() -> Result<Vec<u8>, Error>,
) -> Result<([u8; 32], i64, Fingerprint), Error> {
    let size = rsa.size() as usize;
    if key.len() != size {
        bail!(
            "escrowed key has {} bytes, expected {size} for this {}-bit RSA key",
            key.len(),
            size * 8
        );
    }
    let mut buffer = vec![0u8; size];
    let len = rsa
        .private_decrypt(key, &mut buffer, Padding::PKCS1)
        .map_err(|_| {
            format_err!("unable to decrypt escrowed key with RSA - wrong RSA key or corrupted data")
        })?;
    let key_config = KeyConfig::from_json(&buffer[..len]);
    buffer.zeroize();
    key_config?.decrypt(passphrase)
}
