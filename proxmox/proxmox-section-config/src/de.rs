//! A serde [`Deserializer`] over one parsed section: typed values straight
//! from the section's text, without building JSON.
//!
//! [`SectionRef::deserialize`] feeds a type's own `Deserialize` (derived, as
//! a rule) with what [`SectionConfigData::lookup`](crate::SectionConfigData::lookup)
//! would feed it from the JSON object of the same section, so both paths
//! accept and refuse the same sections with the same messages:
//! - the section is a map: each property in file order (an array property
//!   once, at its first line, as a sequence of all its lines), then the id
//!   property holding the section id;
//! - a value is typed by its schema as the generic parser types it: an
//!   integer schema gives an integer, a boolean schema a boolean, a number
//!   schema a float, anything else (and an additional property) a string;
//! - strings are lent from the text (`visit_borrowed_str`), so a field that
//!   only looks at a value (an enum, a fingerprint, a number) allocates
//!   nothing;
//! - every `deserialize_*` hint is answered with the value's own type, as
//!   `serde_json::Value` answers it: a type mismatch is the visitor's
//!   "invalid type" error, worded as serde words it for JSON.
//!
//! The one difference: a map of JSON is visited in key order (serde_json's
//! map is sorted), a section in file order. Only which error is reported
//! first can differ, for a section where two fields fail to deserialize.

use std::fmt;

use serde::Deserializer;
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Unexpected, Visitor};

use proxmox_schema::{Schema, parse_boolean};

use crate::{PropertyRef, SectionRef};

/// A deserialization error: serde's message, nothing else (no value is
/// quoted beyond what serde's own messages quote).
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

impl<'a> SectionRef<'a> {
    /// The section as a `T`, through `T`'s own `Deserialize`: what
    /// [`SectionConfigData::lookup`](crate::SectionConfigData::lookup) gives
    /// for the same section, without the JSON object in between.
    pub fn deserialize<T: de::Deserialize<'a>>(&self) -> Result<T, Error> {
        T::deserialize(SectionDeserializer {
            properties: self.properties,
            id_property: self.plugin.id_property(),
            id: self.id,
        })
    }
}

/// The methods the deserializers here share: a property that is there is
/// never null (`Some`), a newtype is its content, and every other type goes
/// to `deserialize_any` (with the names given, such as `ignored_any`).
macro_rules! present_value_methods {
    ($($also_any:ident)*) => {
        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.visit_some(self)
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, Error> {
            visitor.visit_newtype_struct(self)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
            identifier $($also_any)*
        }
    };
}

/// The whole section, as a map.
struct SectionDeserializer<'a> {
    properties: &'a [PropertyRef<'a>],
    id_property: Option<&'a str>,
    id: &'a str,
}

impl<'de> Deserializer<'de> for SectionDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(SectionMap {
            properties: self.properties,
            next: 0,
            id_property: self.id_property,
            id: self.id,
            value: None,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        // as serde_json::Value says it of a map that is not one entry
        Err(de::Error::invalid_value(
            Unexpected::Map,
            &"map with a single key",
        ))
    }

    present_value_methods!(ignored_any);
}

/// The properties, then the id.
struct SectionMap<'a> {
    properties: &'a [PropertyRef<'a>],
    /// The next property to look at.
    next: usize,
    /// The id property, until it has been handed out.
    id_property: Option<&'a str>,
    id: &'a str,
    /// The value of the key just handed out.
    value: Option<Value<'a>>,
}

/// A value: one property line, all lines of an array property, or the id.
#[derive(Clone, Copy)]
enum Value<'a> {
    Property(&'a PropertyRef<'a>),
    /// The first line of the array property and where to look for the rest.
    Array(&'a PropertyRef<'a>, &'a [PropertyRef<'a>]),
    Id(&'a str),
}

impl<'de> MapAccess<'de> for SectionMap<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        while let Some(property) = self.properties.get(self.next) {
            self.next += 1;
            if property.array {
                // an array is handed out at its first line, with all its lines
                if self.properties[..self.next - 1]
                    .iter()
                    .any(|earlier| earlier.key == property.key)
                {
                    continue;
                }
                self.value = Some(Value::Array(property, &self.properties[self.next..]));
            } else {
                self.value = Some(Value::Property(property));
            }
            return seed
                .deserialize(BorrowedStrDeserializer::new(property.key))
                .map(Some);
        }
        match self.id_property.take() {
            Some(key) => {
                self.value = Some(Value::Id(self.id));
                seed.deserialize(BorrowedStrDeserializer::new(key))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("value asked for before its key"))?;
        match value {
            Value::Property(property) => seed.deserialize(ValueDeserializer {
                schema: property.schema,
                text: property.value,
            }),
            Value::Array(first, rest) => seed.deserialize(ArrayDeserializer { first, rest }),
            Value::Id(id) => seed.deserialize(ValueDeserializer {
                schema: None,
                text: id,
            }),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.properties.len() - self.next.min(self.properties.len()) + 1)
    }
}

/// One value, typed by its schema (`None`: a string).
struct ValueDeserializer<'a> {
    schema: Option<&'static Schema>,
    text: &'a str,
}

/// What a validated value is, by its schema, as the generic parser types it.
enum Typed<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl<'a> ValueDeserializer<'a> {
    fn typed(&self) -> Typed<'a> {
        let text = self.text;
        match self.schema {
            Some(Schema::Boolean(_)) => match parse_boolean(text) {
                Ok(value) => Typed::Bool(value),
                Err(_) => Typed::Str(text),
            },
            Some(Schema::Integer(_)) => match text.parse::<isize>() {
                Ok(value) => Typed::Int(value as i64),
                Err(_) => Typed::Str(text),
            },
            Some(schema @ Schema::Number(_)) => match schema.parse_simple_value(text) {
                Ok(value) => value.as_f64().map_or(Typed::Str(text), Typed::Float),
                Err(_) => Typed::Str(text),
            },
            _ => Typed::Str(text),
        }
    }
}

impl<'de> Deserializer<'de> for ValueDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.typed() {
            Typed::Bool(value) => visitor.visit_bool(value),
            Typed::Int(value) => visitor.visit_i64(value),
            Typed::Float(value) => visitor.visit_f64(value),
            Typed::Str(text) => visitor.visit_borrowed_str(text),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.typed() {
            Typed::Str(text) => visitor.visit_enum(BorrowedStrDeserializer::new(text)),
            // as serde_json::Value says it of a value that is neither
            Typed::Bool(value) => Err(de::Error::invalid_type(
                Unexpected::Bool(value),
                &"string or map",
            )),
            Typed::Int(value) => Err(de::Error::invalid_type(
                Unexpected::Signed(value),
                &"string or map",
            )),
            Typed::Float(value) => Err(de::Error::invalid_type(
                Unexpected::Float(value),
                &"string or map",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    present_value_methods!();
}

/// All lines of an array property, as a sequence.
struct ArrayDeserializer<'a> {
    first: &'a PropertyRef<'a>,
    /// The properties after the first line (the other lines are among them).
    rest: &'a [PropertyRef<'a>],
}

impl<'de> Deserializer<'de> for ArrayDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(ArrayItems {
            key: self.first.key,
            next: Some(self.first),
            rest: self.rest,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::invalid_type(Unexpected::Seq, &"string or map"))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    present_value_methods!();
}

struct ArrayItems<'a> {
    key: &'a str,
    next: Option<&'a PropertyRef<'a>>,
    rest: &'a [PropertyRef<'a>],
}

impl<'de> SeqAccess<'de> for ArrayItems<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some(item) = self.next.take() else {
            return Ok(None);
        };
        if let Some(at) = self.rest.iter().position(|p| p.key == self.key) {
            self.next = Some(&self.rest[at]);
            self.rest = &self.rest[at + 1..];
        }
        seed.deserialize(ValueDeserializer {
            schema: item.schema,
            text: item.value,
        })
        .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::Value;

    use proxmox_schema::{
        ArraySchema, BooleanSchema, IntegerSchema, NumberSchema, ObjectSchema, Schema, StringSchema,
    };

    use crate::parse::section_to_json;
    use crate::{SectionConfig, SectionConfigPlugin};

    const TEXT: Schema = StringSchema::new("Text.").schema();
    const INT: Schema = IntegerSchema::new("Int.").schema();
    const FLAG: Schema = BooleanSchema::new("Flag.").schema();
    const RATIO: Schema = NumberSchema::new("Ratio.").schema();
    const LIST: Schema = ArraySchema::new("List.", &TEXT).schema();
    const PROPERTIES: ObjectSchema = ObjectSchema::new(
        "Properties.",
        &[
            ("flag", true, &FLAG),
            ("int", true, &INT),
            ("list", true, &LIST),
            ("name", false, &TEXT),
            ("ratio", true, &RATIO),
            ("text", true, &TEXT),
        ],
    )
    .additional_properties(true);

    fn config() -> SectionConfig {
        let mut config = SectionConfig::new(&TEXT);
        config.register_plugin(SectionConfigPlugin::new(
            "thing",
            Some("name".into()),
            &PROPERTIES,
        ));
        config
    }

    /// Each section of `text` through `f`: the section-deserialized result
    /// and the JSON-deserialized one.
    fn both<T: for<'a> Deserialize<'a>>(text: &str) -> Vec<(Result<T, String>, Result<T, String>)> {
        let mut out = Vec::new();
        config()
            .parse_with("test.cfg", text, |section| {
                let ours = section.deserialize::<T>().map_err(|err| err.to_string());
                let json = Value::Object(section_to_json(&section));
                let generic = T::deserialize(json).map_err(|err| err.to_string());
                out.push((ours, generic));
                Ok(())
            })
            .unwrap();
        out
    }

    const SECTIONS: &str = "thing: one\n\tflag yes\n\tint -7\n\tlist b\n\tratio 0.5\n\tlist a\n\tother x y\n\tlist c\n\n\
        thing: two\n\ttext 12\n\tint +08\n\n\
        thing: three\n\tlist only\n\tflag 0\n";

    #[test]
    fn a_section_reads_as_its_json_object_reads() {
        for (ours, generic) in both::<Value>(SECTIONS) {
            assert_eq!(ours, generic);
        }
        // the JSON shape: arrays gathered, values typed, the id as `name`
        let first = &both::<Value>(SECTIONS)[0].0;
        assert_eq!(
            first.as_ref().unwrap(),
            &serde_json::json!({"flag": true, "int": -7, "list": ["b", "a", "c"],
                "ratio": 0.5, "other": "x y", "name": "one"})
        );
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    enum Word {
        Yes,
        No,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Typed {
        name: String,
        text: Option<String>,
        int: Option<i16>,
        flag: Option<bool>,
        list: Option<Vec<String>>,
        ratio: Option<f64>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Mismatched {
        int: Option<String>,
        text: Option<Word>,
        list: Option<u8>,
        flag: Option<Word>,
    }

    #[test]
    fn typed_values_and_type_errors_are_the_same_as_from_json() {
        let typed: Vec<_> = both::<Typed>(SECTIONS);
        for (ours, generic) in &typed {
            assert_eq!(ours, generic);
        }
        assert_eq!(typed[1].0.as_ref().unwrap().text.as_deref(), Some("12"));
        assert_eq!(typed[1].0.as_ref().unwrap().int, Some(8));

        let text = "thing: a\n\tint 1\n\n\
            thing: b\n\ttext maybe\n\n\
            thing: c\n\ttext yes\n\tlist x\n\n\
            thing: d\n\tflag 1\n\n\
            thing: e\n\tint 70000\n";
        let results = both::<Mismatched>(text);
        assert_eq!(results.len(), 5);
        for (ours, generic) in results {
            assert!(ours.is_err(), "{ours:?}");
            assert_eq!(ours, generic);
        }
        let results = both::<Typed>("thing: e\n\tint 70000\n");
        assert_eq!(results[0].0, results[0].1);
        assert!(results[0].0.as_ref().unwrap_err().contains("70000"));
    }

    #[test]
    fn strings_are_lent_from_the_text() {
        #[derive(Deserialize)]
        struct Lent<'a> {
            name: &'a str,
            text: &'a str,
        }
        let text = "thing: one\n\ttext hello there\n";
        config()
            .parse_with("test.cfg", text, |section| {
                let lent: Lent = section.deserialize().unwrap();
                assert_eq!((lent.name, lent.text), ("one", "hello there"));
                let at = lent.text.as_ptr() as usize - text.as_ptr() as usize;
                assert_eq!(&text[at..at + 5], "hello");
                Ok(())
            })
            .unwrap();
    }
}
