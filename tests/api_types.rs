//! Every `ApiType` of the workspace: its schema and its serde form name the
//! same things, so a field added to the struct but not to the schema (or
//! the other way round) fails here instead of being dropped on a read.
//!
//! - object types: the schema's property names (all kebab-case) are
//!   exactly the keys the type serializes when every property is set, and
//!   for a type without `flatten` exactly the field names its derived
//!   `Deserialize` knows. The value with every property set is made from
//!   the schema itself, so it cannot forget one;
//! - enum types: the schema's enum values are exactly the variant names;
//! - string types: a value the schema accepts deserializes and serializes
//!   back to a value the schema accepts.
//!
//! A type with `flatten` deserializes as a map, which does not reveal its
//! field names: there, an optional field missing from the schema is not
//! caught by this test, but by the first write (a section is verified
//! against the schema before it is written, and an unknown property is
//! refused). The silent direction, a schema property the type drops, is
//! caught for every type.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserializer, Serialize};
use serde_json::{Value, json};

use pbs_api_types::*;
use pbs_key_config::paperkey::PaperkeyFormat;
use proxmox_schema::{ApiStringFormat, ApiType, Schema};

/// What a type's derived `Deserialize` asked the deserializer for.
#[derive(Debug, PartialEq)]
enum Shape {
    Struct(BTreeSet<&'static str>),
    Enum(BTreeSet<&'static str>),
    /// A map: a struct with `flatten`, or a map type.
    Map,
    Other,
}

#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probe done")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop
    }
}

/// A deserializer that only records which shape it was asked for.
struct Probe<'a>(&'a mut Option<Shape>);

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        *self.0 = Some(Shape::Other);
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = Some(Shape::Struct(fields.iter().copied().collect()));
        Err(Stop)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = Some(Shape::Enum(variants.iter().copied().collect()));
        Err(Stop)
    }

    fn deserialize_map<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        *self.0 = Some(Shape::Map);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct identifier ignored_any
    }
}

fn shape_of<T: DeserializeOwned>() -> Shape {
    let mut shape = None;
    let _ = T::deserialize(Probe(&mut shape));
    shape.expect("Deserialize asked for nothing")
}

/// Strings tried, in order, as a sample of a string schema without an enum
/// or default: one of them must fit each schema (a new format that none
/// fits fails the test, naming the property; add a sample then).
/// "none" comes first: the `kdf` property of the config is free text in
/// the schema (upstream's parser accepts any kdf, only the type refuses
/// one), and "none" is a `Kdf` too.
const STRING_SAMPLES: &[&str] = &[
    "none",
    "abc1",
    "root@pam",
    "root@pam!tok1",
    "0e:ab:d4:46:0b:6e:b9:ca:34:50:23:de:e2:b7:78:c7:90:e5:4a:16:83:b9:65:9c:0a:57:ae:19:90:90:15:9b",
    "10 MiB",
    "type:vm",
    "some text",
];

/// A value `schema` accepts.
fn sample(name: &str, schema: &Schema) -> Value {
    let value = match schema {
        Schema::Null => Value::Null,
        Schema::Boolean(_) => json!(true),
        Schema::Integer(s) => json!(
            0.max(s.minimum.unwrap_or(isize::MIN))
                .min(s.maximum.unwrap_or(isize::MAX))
        ),
        Schema::Number(s) => json!(s.minimum.unwrap_or(0.0)),
        Schema::String(s) => {
            let candidates: Vec<&str> = match (s.format, s.default) {
                (Some(ApiStringFormat::Enum(entries)), _) => vec![entries[0].value],
                (_, Some(default)) => vec![default],
                _ => STRING_SAMPLES.to_vec(),
            };
            let fits = candidates
                .into_iter()
                .find(|text| schema.verify_json(&json!(text)).is_ok())
                .unwrap_or_else(|| panic!("no sample string fits the schema of '{name}'"));
            json!(fits)
        }
        Schema::Array(s) => json!([sample(name, s.items)]),
        Schema::Object(_) | Schema::AllOf(_) => {
            let object = schema.any_object().unwrap();
            Value::Object(
                object
                    .properties()
                    .map(|(key, _, schema)| (key.to_string(), sample(key, schema)))
                    .collect(),
            )
        }
    };
    schema
        .verify_json(&value)
        .unwrap_or_else(|err| panic!("sample of '{name}' does not verify: {err}"));
    value
}

fn is_kebab_case(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// The checks of the module header for one type.
fn check<T: ApiType + DeserializeOwned + Serialize>(type_name: &str) {
    let schema = &T::API_SCHEMA;
    let full = sample(type_name, schema);
    let value: T = serde_json::from_value(full.clone()).unwrap_or_else(|err| {
        panic!("{type_name}: a value of every property does not deserialize: {err}")
    });
    let back = serde_json::to_value(&value).unwrap();
    schema
        .verify_json(&back)
        .unwrap_or_else(|err| panic!("{type_name}: serialized value does not verify: {err}"));

    let shape = shape_of::<T>();
    if let Some(object) = schema.any_object() {
        let names: BTreeSet<&str> = object.properties().map(|(name, _, _)| *name).collect();
        for name in &names {
            assert!(
                is_kebab_case(name),
                "{type_name}: property '{name}' is not kebab-case"
            );
        }
        let serialized: BTreeSet<&str> = back
            .as_object()
            .unwrap_or_else(|| panic!("{type_name} does not serialize as an object"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            serialized, names,
            "{type_name}: serialized fields (left) and schema properties (right) differ"
        );
        assert_eq!(
            back, full,
            "{type_name}: a property changed in a round trip"
        );
        match shape {
            Shape::Struct(fields) => assert_eq!(
                fields.into_iter().collect::<BTreeSet<_>>(),
                names,
                "{type_name}: serde's fields (left) and schema properties (right) differ"
            ),
            Shape::Map => {} // flatten: see the module header
            other => panic!("{type_name}: an object schema, but serde asks for {other:?}"),
        }
    } else if let Schema::String(string) = schema {
        assert!(
            back.is_string(),
            "{type_name} does not serialize as a string"
        );
        if let Some(ApiStringFormat::Enum(entries)) = string.format {
            let values: BTreeSet<&str> = entries.iter().map(|entry| entry.value).collect();
            match shape {
                Shape::Enum(variants) => assert_eq!(
                    variants, values,
                    "{type_name}: serde's variants (left) and schema values (right) differ"
                ),
                other => panic!("{type_name}: an enum schema, but serde asks for {other:?}"),
            }
            for value in values {
                let parsed: T = serde_json::from_value(json!(value))
                    .unwrap_or_else(|err| panic!("{type_name}: '{value}' - {err}"));
                assert_eq!(serde_json::to_value(parsed).unwrap(), json!(value));
            }
        }
    } else {
        panic!("{type_name}: no check for a schema like {schema:?}");
    }
}

/// Every type this test checks (the next test holds this list to the
/// workspace's `impl ApiType for` lines).
macro_rules! check_all {
    ($($type:ty),* $(,)?) => {
        const CHECKED: &[&str] = &[$(stringify!($type)),*];

        #[test]
        fn schema_names_are_serde_names_for_every_api_type() {
            $(check::<$type>(stringify!($type));)*
        }
    };
}

check_all!(
    ApiToken,
    Authid,
    CryptKey,
    Fingerprint,
    Kdf,
    KeyInfo,
    PaperkeyFormat,
    RateLimitConfig,
    SyncDirection,
    SyncJobConfig,
    User,
    Userid,
);

/// The names of `impl ApiType for NAME` in the `.rs` files under `dir`.
fn api_type_impls(dir: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                api_type_impls(&path, found);
            }
        } else if name.ends_with(".rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            // items at the top level of a file (an impl inside a test
            // function is indented), under any path to the trait
            for line in text.lines().filter(|line| line.starts_with("impl")) {
                if let Some((_, rest)) = line.split_once("ApiType for ") {
                    let end = rest
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    found.insert(rest[..end].to_string());
                }
            }
        }
    }
}

#[test]
fn every_api_type_of_the_workspace_is_checked() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = BTreeSet::new();
    api_type_impls(workspace, &mut found);
    let checked: BTreeSet<String> = CHECKED.iter().map(|name| name.to_string()).collect();
    assert!(found.len() >= 10, "too few ApiType impls found: {found:?}");
    assert_eq!(
        found, checked,
        "ApiType impls of the workspace (left) and types checked here (right) differ"
    );
}

#[test]
fn a_schema_property_the_type_drops_is_caught() {
    // the failure this test exists for: a type that ignores a property
    #[derive(serde::Deserialize, Serialize)]
    #[serde(rename_all = "kebab-case")]
    struct Partial {
        kdf: Kdf,
        created: i64,
    }
    impl ApiType for Partial {
        const API_SCHEMA: Schema = KeyInfo::API_SCHEMA;
    }
    let result = std::panic::catch_unwind(|| check::<Partial>("Partial"));
    assert!(result.is_err());
    // and an optional field the schema lacks, on a type without flatten
    #[derive(serde::Deserialize, Serialize)]
    #[serde(rename_all = "kebab-case")]
    struct Extra {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        kdf: Kdf,
        created: i64,
        modified: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fingerprint: Option<Fingerprint>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        colour: Option<String>,
    }
    impl ApiType for Extra {
        const API_SCHEMA: Schema = KeyInfo::API_SCHEMA;
    }
    let result = std::panic::catch_unwind(|| check::<Extra>("Extra"));
    assert!(result.is_err());
}
