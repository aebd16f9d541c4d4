//! Helpers of the integration tests that the test kit (`pbs-test-kit`)
//! does not hold: the property test strategy of `CryptKey`.

/// `CryptKey` values for property tests: ids from `id`, path and hint from
/// `text`, every kdf, any times, fingerprint and archive time or none.
///
/// Written by hand, not made from the schema: the schema's string formats
/// are functions that check a value (safe id, fingerprint, config text) and
/// cannot make one, and the tests choose narrow id and text alphabets of
/// their own (to make ids collide, or to reach non-ASCII text). The struct
/// literal below fails to compile when a field is added, and
/// `key_sections::the_crypt_key_strategy_sets_every_schema_property` fails
/// when a property is never set or never left out.
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
