//! What computing a key's fingerprint leaves in memory: no copy of the
//! key, of the HMAC blocks made from it (the key XOR the HMAC pads), or of
//! the derived `id_key` (upstream's chunk-digest key) stays on the stack
//! below the caller once `fingerprint` returned.
//!
//! The check reads this thread's stack below the current frame through
//! `/proc/self/mem` (a read of mapped memory, no unsafe code), in a thread
//! of its own whose stack starts out zeroed.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// How deep below its caller the fingerprint is computed: deeper than
/// the calls that read the stack afterwards reach, so they overwrite
/// nothing it left.
const DEPTH: usize = 32 * 1024;

/// How much of the stack below the caller is read: the fingerprint's
/// calls and far more (a test thread's stack is 2 MiB).
const SCANNED: usize = 256 * 1024;

/// The fingerprint of `key`, computed `DEPTH` bytes below the caller.
#[inline(never)]
fn deep_fingerprint(key: &[u8; 32]) -> pbs_api_types::Fingerprint {
    let depth = [0u8; DEPTH];
    std::hint::black_box(&depth);
    pbs_key_config::fingerprint(std::hint::black_box(key))
}

/// `SCANNED` bytes of this thread's stack below the caller's frame.
#[inline(never)]
fn stack_below_caller() -> Vec<u8> {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as u64;
    let mut below = vec![0u8; SCANNED];
    File::open("/proc/self/mem")
        .and_then(|mem| mem.read_exact_at(&mut below, here - SCANNED as u64))
        .expect("read the stack through /proc/self/mem");
    below
}

/// The key, each HMAC pad block made from it, and the id_key (computed
/// with OpenSSL, in another thread, so nothing of it is on the scanned
/// stack).
fn secrets_of(key: [u8; 32]) -> Vec<(&'static str, Vec<u8>)> {
    std::thread::spawn(move || {
        let mut id_key = [0u8; 32];
        openssl::pkcs5::pbkdf2_hmac(
            &key,
            b"_id_key",
            10,
            openssl::hash::MessageDigest::sha256(),
            &mut id_key,
        )
        .unwrap();
        let pad = |byte: u8| key.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
        vec![
            ("the key", key.to_vec()),
            ("the key XOR the HMAC inner pad", pad(0x36)),
            ("the key XOR the HMAC outer pad", pad(0x5c)),
            ("the id_key", id_key.to_vec()),
        ]
    })
    .join()
    .unwrap()
}

/// Which of `secrets` (each half on its own: a copy may be split, a
/// hash's block buffer holds a 32-byte input at any offset) are in `stack`.
fn found_in(stack: &[u8], secrets: &[(&'static str, Vec<u8>)]) -> Vec<&'static str> {
    secrets
        .iter()
        .filter(|(_, secret)| {
            secret
                .chunks(16)
                .any(|half| stack.windows(half.len()).any(|w| w == half))
        })
        .map(|(what, _)| *what)
        .collect()
}

/// `run` called `DEPTH` bytes below the caller, in a thread of its own
/// (whose stack starts out zeroed); what it left on the stack after it
/// returned, with what it returned.
fn stack_after<T: Send + 'static>(run: impl FnOnce() -> T + Send + 'static) -> (T, Vec<u8>) {
    #[inline(never)]
    fn deep<T>(run: impl FnOnce() -> T) -> T {
        let depth = [0u8; DEPTH];
        std::hint::black_box(&depth);
        run()
    }
    std::thread::spawn(move || {
        let result = deep(run);
        (result, stack_below_caller())
    })
    .join()
    .unwrap()
}

#[test]
fn a_fingerprint_leaves_no_key_material_on_the_stack() {
    let key: [u8; 32] = std::array::from_fn(|i| 0xa5 ^ (i as u8).wrapping_mul(37));
    let secrets = secrets_of(key);
    let (fingerprint, stack) = std::thread::spawn(move || {
        let fingerprint = deep_fingerprint(&key);
        (fingerprint, stack_below_caller())
    })
    .join()
    .unwrap();
    // the computation ran (the scan would find nothing of one never made)
    assert_eq!(
        fingerprint.signature(),
        pbs_key_config::fingerprint(&key).signature()
    );
    let left = found_in(&stack, &secrets);
    assert!(
        left.is_empty(),
        "left on the stack after fingerprint(): {left:?}"
    );
}

/// The keystore's own uses of an unprotected key: a load checks the key
/// file's fingerprint against the config entry, computed from the key
/// (`KeyConfig::decrypt`), and a store checks it the same way. Neither
/// returns the key, so no copy of it may stay on the stack below the
/// caller (the fingerprint's own frames are wiped: a copy left by the
/// frames around it would make that pointless).
#[test]
fn loading_or_storing_an_unprotected_key_leaves_no_key_on_the_stack() {
    let dir = pbs_test_kit::TestDir::new();
    let key = pbs_test_kit::raw_key(41);
    let secrets = secrets_of(key);
    dir.config
        .encryption_keys()
        .store_key("k-load", &pbs_test_kit::key_config(41))
        .unwrap();

    let path = dir.path().to_path_buf();
    let (loaded, stack) = stack_after(move || {
        pbs_config::ConfigDir::new(&path)
            .unwrap()
            .encryption_keys()
            .load_key_config("k-load", true)
            .map(|loaded| loaded.fingerprint)
            .map_err(|err| err.to_string())
    });
    assert_eq!(loaded.unwrap(), Some(pbs_key_config::fingerprint(&key)));
    let by_load = found_in(&stack, &secrets);

    // another key: a key is stored once
    let key = pbs_test_kit::raw_key(42);
    let secrets = secrets_of(key);
    let key_config = pbs_test_kit::key_config(42);
    let path = dir.path().to_path_buf();
    let (stored, stack) = stack_after(move || {
        pbs_config::ConfigDir::new(&path)
            .unwrap()
            .encryption_keys()
            .store_key("k-store", &key_config)
            .map(|entry| entry.info.fingerprint)
            .map_err(|err| err.to_string())
    });
    assert_eq!(stored.unwrap(), Some(pbs_key_config::fingerprint(&key)));
    let by_store = found_in(&stack, &secrets);
    assert!(
        by_load.is_empty() && by_store.is_empty(),
        "left on the stack by a load: {by_load:?}, by a store: {by_store:?}"
    );
}

/// A new key, as `encryption-key create` and a rotation make it: its bytes
/// go into the key file's data and nowhere else, so no copy of them stays
/// on the stack below the caller (in the daemon, a worker thread's, until
/// overwritten).
#[test]
fn generating_an_unprotected_key_leaves_no_key_on_the_stack() {
    let (generated, stack) = stack_after(|| {
        pbs_key_config::KeyConfig::generate_unprotected().map_err(|err| err.to_string())
    });
    let generated = generated.unwrap();
    let key: [u8; 32] = generated.data.as_slice().try_into().unwrap();
    assert_eq!(
        generated.fingerprint,
        Some(pbs_key_config::fingerprint(&key))
    );
    let left = found_in(&stack, &secrets_of(key));
    assert!(
        left.is_empty(),
        "left on the stack by generating a key: {left:?}"
    );
}
