//! Fixed test keys: the same seed gives the same key in every test, bench
//! and worker process, different seeds give different keys (and so
//! different fingerprints).

use pbs_key_config::KeyConfig;

/// Raw key bytes number `seed`.
pub fn raw_key(seed: u64) -> [u8; 32] {
    openssl::sha::sha256(format!("pbs-keystore test key {seed}").as_bytes())
}

/// An unprotected key config for [`raw_key`]`(seed)`.
pub fn key_config(seed: u64) -> KeyConfig {
    KeyConfig::without_password(raw_key(seed)).expect("key config")
}

/// The typing-aid lines of a text paperkey (`NN: ...`, each with its
/// newline): what an administrator types back from the paper.
pub fn typing_aid(paperkey: &str) -> String {
    paperkey
        .lines()
        .filter(|line| {
            line.len() > 4
                && line.as_bytes()[2] == b':'
                && line[..2].chars().all(|c| c.is_ascii_digit())
        })
        .map(|line| format!("{line}\n"))
        .collect()
}
