//! `crypt(3)` password hashes through the system's libcrypt (libxcrypt).
//!
//! Upstream PBS stores password and API token secret hashes as `crypt(3)`
//! strings and writes yescrypt (`$y$`). We hash with yescrypt too and verify
//! `$y$`, `$6$` (SHA-512) and `$5$` (SHA-256) hashes; anything else is refused
//! rather than handed to libcrypt, which also knows weak legacy schemes.

use std::ffi::{CStr, CString, c_char, c_int, c_ulong, c_void};

use anyhow::{Error, bail, format_err};

#[link(name = "crypt")]
unsafe extern "C" {
    fn crypt_rn(
        phrase: *const c_char,
        setting: *const c_char,
        data: *mut c_void,
        size: c_int,
    ) -> *mut c_char;

    fn crypt_gensalt_rn(
        prefix: *const c_char,
        count: c_ulong,
        rbytes: *const c_char,
        nrbytes: c_int,
        output: *mut c_char,
        output_size: c_int,
    ) -> *mut c_char;
}

/// `sizeof(struct crypt_data)` in libxcrypt.
const CRYPT_DATA_SIZE: usize = 32768;
/// libxcrypt's `CRYPT_GENSALT_OUTPUT_SIZE`.
const GENSALT_OUTPUT_SIZE: usize = 192;

/// Hash prefixes accepted by [`verify_crypt_pw`].
pub const ACCEPTED_PREFIXES: &[&str] = &["$y$", "$6$", "$5$"];

/// Hashes `password` with the given `setting` (a full hash or a salt string).
pub fn crypt(password: &[u8], setting: &[u8]) -> Result<String, Error> {
    let phrase = CString::new(password).map_err(|_| format_err!("password contains a NUL byte"))?;
    let setting =
        CString::new(setting).map_err(|_| format_err!("hash setting contains a NUL byte"))?;
    // zeroed: libxcrypt requires `initialized` to be 0 on first use
    let mut data = vec![0u8; CRYPT_DATA_SIZE];
    // SAFETY: both strings are NUL terminated and outlive the call; `data` is
    // a writable buffer of the size passed; the result points into `data`
    // and is copied out before `data` is dropped.
    let hash = unsafe {
        let res = crypt_rn(
            phrase.as_ptr(),
            setting.as_ptr(),
            data.as_mut_ptr().cast(),
            CRYPT_DATA_SIZE as c_int,
        );
        if res.is_null() {
            None
        } else {
            Some(CStr::from_ptr(res).to_string_lossy().into_owned())
        }
    };
    // the buffer held the password; do not leave it on the heap
    data.fill(0);
    match hash {
        Some(hash) if !hash.starts_with('*') => Ok(hash),
        _ => bail!("crypt(3) failed - unsupported or malformed hash setting"),
    }
}

/// Hashes `password` with yescrypt and a fresh random salt.
pub fn encrypt_pw(password: &str) -> Result<String, Error> {
    let prefix = c"$y$";
    let mut output = vec![0u8; GENSALT_OUTPUT_SIZE];
    // SAFETY: `prefix` is NUL terminated; a NULL `rbytes` makes libxcrypt
    // take random bytes from the OS; `output` is writable with the size passed.
    let salt = unsafe {
        let res = crypt_gensalt_rn(
            prefix.as_ptr(),
            0,
            std::ptr::null(),
            0,
            output.as_mut_ptr().cast(),
            GENSALT_OUTPUT_SIZE as c_int,
        );
        if res.is_null() {
            bail!("crypt_gensalt failed - {}", std::io::Error::last_os_error());
        }
        CStr::from_ptr(res).to_bytes().to_vec()
    };
    crypt(password.as_bytes(), &salt)
}

/// Checks `password` against a stored `crypt(3)` hash, in constant time.
///
/// # Errors
///
/// "invalid credentials" when the password does not match, and an error for a
/// hash of a scheme not in [`ACCEPTED_PREFIXES`].
pub fn verify_crypt_pw(password: &str, enc_password: &str) -> Result<(), Error> {
    if !ACCEPTED_PREFIXES
        .iter()
        .any(|prefix| enc_password.starts_with(prefix))
    {
        bail!("unsupported password hash scheme (expected $y$, $6$ or $5$)");
    }
    let verify = crypt(password.as_bytes(), enc_password.as_bytes())?;
    // the length of a hash is public; its bytes are compared in constant time
    if verify.len() != enc_password.len()
        || !openssl::memcmp::eq(verify.as_bytes(), enc_password.as_bytes())
    {
        bail!("invalid credentials");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yescrypt_round_trip() {
        let hash = encrypt_pw("s3cret pass").unwrap();
        assert!(hash.starts_with("$y$"), "{hash}");
        verify_crypt_pw("s3cret pass", &hash).unwrap();
        assert!(verify_crypt_pw("s3cret pasS", &hash).is_err());
    }

    #[test]
    fn sha512_and_sha256_hashes_verify() {
        // known answer from glibc's test suite style: the same salt always
        // gives the same hash, and a wrong password does not verify
        let sha512 = crypt(b"hunter22", b"$6$saltsaltsalt$").unwrap();
        assert_eq!(sha512, crypt(b"hunter22", b"$6$saltsaltsalt$").unwrap());
        assert!(sha512.starts_with("$6$saltsaltsalt$"), "{sha512}");
        verify_crypt_pw("hunter22", &sha512).unwrap();
        let sha256 = crypt(b"hunter22", b"$5$saltsaltsalt$").unwrap();
        verify_crypt_pw("hunter22", &sha256).unwrap();
        assert!(verify_crypt_pw("hunter23", &sha256).is_err());
    }

    #[test]
    fn weak_schemes_are_refused() {
        let des = "abJnggxhB/yWI";
        let err = verify_crypt_pw("password", des).unwrap_err().to_string();
        assert!(err.contains("unsupported"), "{err}");
        let md5 = crypt(b"password", b"$1$salt$").unwrap();
        assert!(verify_crypt_pw("password", &md5).is_err());
    }
}
