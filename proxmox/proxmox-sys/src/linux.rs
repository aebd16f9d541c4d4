//! Linux specific helpers: random bytes from the OS random source.

use anyhow::{Error, format_err};

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
}
