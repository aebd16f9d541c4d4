//! Linux specific helpers: random bytes from the OS random source.
//!
//! Two sources: OpenSSL's CSPRNG (as upstream, for key material) and the
//! kernel's `getrandom(2)` itself, for what only has to be unpredictable
//! (the random part of a temp file's name): OpenSSL sets up its generator
//! on first use in a process, 3.4M instructions that a process storing one
//! key paid for the two temp file names of the store alone.

use anyhow::{Error, bail, format_err};

/// Fills `buffer` with cryptographically secure random bytes.
///
/// Uses OpenSSL's CSPRNG, which is seeded from `getrandom(2)`, as upstream does.
pub fn fill_with_random_data(buffer: &mut [u8]) -> Result<(), Error> {
    openssl::rand::rand_bytes(buffer)
        .map_err(|err| format_err!("unable to read random data from the OS - {err}"))
}

/// Returns `N` random bytes, see [`fill_with_random_data`].
pub fn random_data<const N: usize>() -> Result<[u8; N], Error> {
    let mut data = [0u8; N];
    fill_with_random_data(&mut data)?;
    Ok(data)
}

/// Returns `N` random bytes read from the kernel (`getrandom(2)`, which
/// blocks only until the kernel's generator is seeded at boot), not
/// through OpenSSL: for names, which must not be guessed in advance.
pub fn os_random_data<const N: usize>() -> Result<[u8; N], Error> {
    let mut data = [0u8; N];
    let mut filled = 0;
    while filled < N {
        match rustix::rand::getrandom(&mut data[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(read) => filled += read,
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => bail!(
                "unable to read random data from the OS - {}",
                std::io::Error::from(err)
            ),
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_data_differs_between_calls() {
        let a: [u8; 32] = random_data().unwrap();
        let b: [u8; 32] = random_data().unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }

    #[test]
    fn os_random_data_differs_between_calls_and_fills_all() {
        let a: [u8; 64] = os_random_data().unwrap();
        let b: [u8; 64] = os_random_data().unwrap();
        assert_ne!(a, b);
        // every byte written: the chance of a zero in each of the last 8
        // is 2^-64
        assert_ne!(a[56..], [0u8; 8]);
        assert_ne!(b[56..], [0u8; 8]);
    }
}
