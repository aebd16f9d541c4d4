//! [`struct_with_flattened!`]: a struct with one `#[serde(flatten)]` member
//! whose `Deserialize` streams instead of buffering.
//!
//! serde's derived `Deserialize` of a struct with a flattened member first
//! copies every key and value it does not know into a buffer, then lets the
//! flattened type pick its fields out of that buffer. For `CryptKey` that
//! was about 40% of a typed read of `encryption-keys.cfg`. The macro takes
//! the struct declaration as it would be written for the derive (the fields
//! are declared there and nowhere else), emits it unchanged, and implements
//! `Deserialize` by running the flattened type's own derived `Deserialize`
//! over the map while the struct's other fields are taken out of the stream
//! as they pass.
//!
//! It accepts and refuses what the derive accepts and refuses, with serde's
//! messages (the tests compare it with the derive on the same input):
//! - keys are the field names in kebab-case (the struct must say
//!   `#[serde(rename_all = "kebab-case")]`, which its `Serialize` uses);
//! - a key of neither the struct nor the flattened type is ignored, as
//!   `flatten` ignores it;
//! - a missing `Option` field is `None`, any other missing field is
//!   "missing field `name`" (a non-`Option` field with `#[serde(default)]`
//!   is not supported: the macro does not read attributes);
//! - when several things are wrong, the same one is reported: an own
//!   field's error, then a missing own field declared before the flattened
//!   one, then the flattened type's error (the rest of the map is read for
//!   this after the flattened type failed); from a text format that cannot
//!   read on after a wrong value, that value's error, worded by the format
//!   (the derive words it from its buffer as for `serde_json::Value`).

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// Declares the struct (see the module header) and its `Deserialize`.
///
/// ```text
/// struct_with_flattened! {
///     flatten info: KeyInfo;
///     #[derive(Serialize)]
///     #[serde(rename_all = "kebab-case")]
///     pub struct CryptKey {
///         pub id: String,
///         #[serde(flatten)]
///         pub info: KeyInfo,
///         #[serde(default, skip_serializing_if = "Option::is_none")]
///         pub archived_at: Option<i64>,
///     }
/// }
/// ```
macro_rules! struct_with_flattened {
    (
        flatten $inner:ident: $inner_ty:ty;
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$field_attr:meta])* $field_vis:vis $field:ident : $field_ty:ty ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        $vis struct $name {
            $( $(#[$field_attr])* $field_vis $field: $field_ty, )*
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct FieldsVisitor;

                impl<'de> serde::de::Visitor<'de> for FieldsVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("struct ", stringify!($name)))
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        struct Slots {
                            $( $field: Option<$field_ty>, )*
                        }
                        let mut slots = Slots { $( $field: None, )* };
                        // the struct's own fields, taken out of the stream;
                        // the first error of one is kept: the derive reads
                        // them while it reads the map, so it reports that
                        // error before anything the flattened type finds
                        let mut own_error = None;
                        let mut own = |key: &str, map: &mut A| -> Result<bool, A::Error> {
                            $(
                                if stringify!($field) != stringify!($inner)
                                    && key == $crate::flatten::kebab_case!($field)
                                {
                                    let value = match slots.$field {
                                        Some(_) => Err(<A::Error as serde::de::Error>::duplicate_field(
                                            $crate::flatten::kebab_case!($field),
                                        )),
                                        None => map.next_value(),
                                    };
                                    match value {
                                        Ok(value) => slots.$field = Some(value),
                                        Err(err) => {
                                            own_error.get_or_insert(err);
                                        }
                                    }
                                    return Ok(true);
                                }
                            )*
                            Ok(false)
                        };
                        let inner = <$inner_ty as serde::Deserialize>::deserialize(
                            $crate::flatten::Interceptor::new(&mut map, &mut own),
                        );
                        // the rest of the map after a failure, for the own
                        // fields in it (whether it could be read to its end)
                        let drained = inner.is_ok() || $crate::flatten::drain(&mut map, &mut own);
                        if let Some(err) = own_error {
                            return Err(err);
                        }
                        let inner = match inner {
                            Ok(inner) => inner,
                            Err(err) if !drained => return Err(err),
                            Err(err) => {
                                // the derive checks fields in declaration
                                // order: a missing own field declared before
                                // the flattened one is reported first
                                'before: {
                                    $(
                                        if stringify!($field) == stringify!($inner) {
                                            break 'before;
                                        }
                                        if slots.$field.is_none() {
                                            let _: $field_ty = $crate::flatten::missing_field(
                                                $crate::flatten::kebab_case!($field),
                                            )?;
                                        }
                                    )*
                                }
                                return Err(err);
                            }
                        };
                        slots.$inner = Some(inner);
                        Ok($name {
                            $(
                                $field: match slots.$field.take() {
                                    Some(value) => value,
                                    None => $crate::flatten::missing_field(
                                        $crate::flatten::kebab_case!($field),
                                    )?,
                                },
                            )*
                        })
                    }
                }

                deserializer.deserialize_map(FieldsVisitor)
            }
        }

        #[cfg(test)]
        impl $name {
            /// `value` deserialized by this impl and by serde's derive of
            /// the same declaration, each serialized again (or its error).
            #[allow(dead_code)]
            pub(crate) fn against_derive(
                value: serde_json::Value,
            ) -> [Result<serde_json::Value, String>; 2] {
                #[derive(serde::Deserialize)]
                $(#[$attr])*
                struct Derived {
                    $( $(#[$field_attr])* $field: $field_ty, )*
                }
                let ours = serde_json::from_value::<$name>(value.clone())
                    .map(|value| serde_json::to_value(value).unwrap());
                let derived = serde_json::from_value::<Derived>(value)
                    .map(|value| serde_json::to_value(value).unwrap());
                [ours, derived].map(|result| {
                    result.map_err(|err| {
                        err.to_string()
                            .replace("struct Derived", concat!("struct ", stringify!($name)))
                    })
                })
            }

            /// The same for JSON text (which may hold a key twice); errors
            /// without serde_json's position, which tells where each read
            /// stopped, not what it found.
            #[allow(dead_code)]
            pub(crate) fn against_derive_text(text: &str) -> [Result<serde_json::Value, String>; 2] {
                #[derive(serde::Deserialize)]
                $(#[$attr])*
                struct Derived {
                    $( $(#[$field_attr])* $field: $field_ty, )*
                }
                let ours = serde_json::from_str::<$name>(text)
                    .map(|value| serde_json::to_value(value).unwrap());
                let derived = serde_json::from_str::<Derived>(text)
                    .map(|value| serde_json::to_value(value).unwrap());
                [ours, derived].map(|result| {
                    result.map_err(|err| {
                        let err = err.to_string().replace(
                            "struct Derived",
                            concat!("struct ", stringify!($name)),
                        );
                        match err.rfind(" at line ") {
                            Some(at) => err[..at].to_string(),
                            None => err,
                        }
                    })
                })
            }
        }
    };
}

pub(crate) use struct_with_flattened;

/// The kebab-case name of a snake_case field, as a `&'static str` made at
/// compile time (what serde's `rename_all = "kebab-case"` makes of it).
macro_rules! kebab_case {
    ($field:ident) => {{
        const LEN: usize = stringify!($field).len();
        const BYTES: [u8; LEN] = $crate::flatten::kebab_bytes(stringify!($field));
        const NAME: &str = match std::str::from_utf8(&BYTES) {
            Ok(name) => name,
            Err(_) => panic!("field names are ASCII"),
        };
        NAME
    }};
}

pub(crate) use kebab_case;

/// `name` with `_` replaced by `-`.
pub(crate) const fn kebab_bytes<const N: usize>(name: &str) -> [u8; N] {
    let name = name.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = if name[i] == b'_' { b'-' } else { name[i] };
        i += 1;
    }
    out
}

/// Reads the rest of `map` after the flattened type failed, handing the
/// struct's own fields to `own`. Returns whether it got to the end: a
/// format that cannot go on after the failure (JSON text stopped inside a
/// value) stops it early.
pub(crate) fn drain<'de, A, F>(map: &mut A, own: &mut F) -> bool
where
    A: MapAccess<'de>,
    F: FnMut(&str, &mut A) -> Result<bool, A::Error>,
{
    loop {
        match map.next_key::<Key<'de>>() {
            Ok(Some(key)) => {
                let taken = own(key.as_str(), map).unwrap_or(true);
                if !taken && map.next_value::<de::IgnoredAny>().is_err() {
                    return false;
                }
            }
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// The value of a field that is not in the map, as serde's derive makes
/// it: `None` for an `Option`, "missing field `name`" for anything else.
pub(crate) fn missing_field<'de, T: Deserialize<'de>, E: de::Error>(
    name: &'static str,
) -> Result<T, E> {
    T::deserialize(MissingField(name, PhantomData))
}

struct MissingField<E>(&'static str, PhantomData<E>);

impl<'de, E: de::Error> Deserializer<'de> for MissingField<E> {
    type Error = E;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, E> {
        Err(E::missing_field(self.0))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_none()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple tuple_struct
        map struct enum identifier ignored_any
    }
}

/// The outer map as the flattened type sees it: every key but those
/// `own` takes (with their values).
pub(crate) struct Interceptor<'a, A, F> {
    map: &'a mut A,
    own: &'a mut F,
}

impl<'a, A, F> Interceptor<'a, A, F> {
    pub(crate) fn new(map: &'a mut A, own: &'a mut F) -> Self {
        Self { map, own }
    }
}

impl<'de, A, F> Deserializer<'de> for Interceptor<'_, A, F>
where
    A: MapAccess<'de>,
    F: FnMut(&str, &mut A) -> Result<bool, A::Error>,
{
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, A, F> MapAccess<'de> for Interceptor<'_, A, F>
where
    A: MapAccess<'de>,
    F: FnMut(&str, &mut A) -> Result<bool, A::Error>,
{
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.map.next_key::<Key<'de>>()? else {
                return Ok(None);
            };
            if (self.own)(key.as_str(), self.map)? {
                continue;
            }
            return match key {
                Key::Borrowed(key) => seed.deserialize(BorrowedStrDeserializer::new(key)),
                Key::Owned(key) => seed.deserialize(de::value::StringDeserializer::new(key)),
            }
            .map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// A map key: lent by the input where it can (a config read, a JSON
/// value), copied where it cannot.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(key) => key,
            Key::Owned(key) => key,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(key))
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(key.to_string()))
            }

            fn visit_string<E: de::Error>(self, key: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(key))
            }
        }

        deserializer.deserialize_identifier(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::CryptKey;

    const FP: &str = "0e:ab:d4:46:0b:6e:b9:ca:34:50:23:de:e2:b7:78:c7:90:e5:4a:16:83:b9:65:9c:0a:57:ae:19:90:90:15:9b";

    #[test]
    fn crypt_key_deserializes_as_the_derive_would() {
        let cases = [
            json!({"id": "k1", "kdf": "none", "created": 1, "modified": 2}),
            json!({"id": "k1", "kdf": "scrypt", "created": -1, "modified": 2, "fingerprint": FP,
                   "hint": "h", "path": "/p", "archived-at": 5, "unknown": [1, 2], "info": 3}),
            json!({"archived-at": 5, "kdf": "pbkdf2", "id": "k1", "created": 1, "modified": 2}),
            json!({"id": "k1", "kdf": "aes-magic", "created": 1, "modified": 2}),
            json!({"id": "k1", "created": 1, "modified": 2}),
            json!({"kdf": "none", "created": 1, "modified": 2}),
            json!({"id": 7, "kdf": "none", "created": 1, "modified": 2}),
            json!({"id": "k1", "kdf": "none", "created": "1", "modified": 2}),
            json!({"id": "k1", "kdf": "none", "created": 1, "modified": 2, "fingerprint": "00:11"}),
            json!({"id": "k1", "kdf": "none", "created": 1, "modified": 2, "archived-at": null,
                   "hint": null, "path": null, "fingerprint": null}),
            json!({"id": "k1", "kdf": "none", "created": 1, "modified": 2, "archived_at": 5}),
            json!({"id": "k1", "kdf": "none", "created": 1, "modified": 2, "archived-at": "5"}),
            json!({}),
            json!([1, 2]),
            json!("k1"),
            json!(null),
        ];
        for case in cases {
            let [ours, derived] = CryptKey::against_derive(case.clone());
            assert_eq!(ours, derived, "{case}");
        }
    }

    #[test]
    fn duplicates_are_refused_as_the_derive_refuses_them() {
        // JSON objects cannot hold a key twice: a map that does
        let text = r#"{"id": "a", "kdf": "none", "created": 1, "modified": 2, "id": "b"}"#;
        let ours = serde_json::from_str::<CryptKey>(text)
            .unwrap_err()
            .to_string();
        assert!(ours.starts_with("duplicate field `id`"), "{ours}");
        let text = r#"{"id": "a", "kdf": "none", "created": 1, "modified": 2, "kdf": "none"}"#;
        let ours = serde_json::from_str::<CryptKey>(text)
            .unwrap_err()
            .to_string();
        assert!(ours.starts_with("duplicate field `kdf`"), "{ours}");
    }

    fn key() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec![
            "id",
            "kdf",
            "created",
            "modified",
            "fingerprint",
            "hint",
            "path",
            "archived-at",
            "archived_at",
            "info",
            "other",
        ])
    }

    fn value() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::sample::select(vec![
            "\"k1\"", "\"none\"", "\"scrypt\"", "\"aes\"", "1", "-5", "1.5", "null", "true",
            "[1]", "{}", "\"0e:ab:d4:46:0b:6e:b9:ca:34:50:23:de:e2:b7:78:c7:90:e5:4a:16:83:b9:65:9c:0a:57:ae:19:90:90:15:9b\"",
        ])
        .prop_map(str::to_string)
    }

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        #[test]
        fn any_object_deserializes_as_the_derive_would(
            pairs in proptest::collection::vec((key(), value()), 0..10),
        ) {
            // a key may come twice, as in hand-written text
            let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k:?}: {v}")).collect();
            let text = format!("{{{}}}", body.join(", "));
            // from text, a wrong flattened value can be worded by serde_json
            // itself here, where the derive words it from its buffer
            let [ours, derived] = CryptKey::against_derive_text(&text);
            match (&ours, &derived) {
                (Ok(_), Ok(_)) => proptest::prop_assert_eq!(&ours, &derived, "{}", text),
                (Err(_), Err(_)) => {}
                _ => proptest::prop_assert!(false, "{}: {:?} / {:?}", text, ours, derived),
            }
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            let [ours, derived] = CryptKey::against_derive(value);
            proptest::prop_assert_eq!(ours, derived, "{}", text);
        }
    }
}
