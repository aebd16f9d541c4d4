//! Helpers of the integration tests that the test kit (`pbs-test-kit`)
//! does not hold: the property test strategy of `CryptKey`.

/// `CryptKey` values for property tests: ids from `id`, path and hint from
/// `text`, every kdf, any times, fingerprint and archive time or none.
pub fn crypt_key_strategy<T: proptest::strategy::Strategy<Value = String>>(
    id: impl proptest::strategy::Strategy<Value = String>,
    text: impl Fn() -> T,
) -> impl proptest::strategy::Strategy<Value = pbs_api_types::CryptKey> {
    use pbs_api_types::{CryptKey, Fingerprint, Kdf, KeyInfo};
    use proptest::prelude::*;
    (
        id,
        proptest::option::of(text()),
        prop_oneof![Just(Kdf::None), Just(Kdf::Scrypt), Just(Kdf::PBKDF2)],
        any::<i64>(),
        any::<i64>(),
        proptest::option::of(any::<[u8; 32]>()),
        proptest::option::of(text()),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(
            |(id, path, kdf, created, modified, fp, hint, archived_at)| CryptKey {
                id,
                info: KeyInfo {
                    path,
                    kdf,
                    created,
                    modified,
                    fingerprint: fp.map(Fingerprint::new),
                    hint,
                },
                archived_at,
            },
        )
}
