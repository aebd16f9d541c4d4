//! [`SerializableReturn`]: an answer that writes itself into the response.

use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

/// The answer of an [`ApiHandler::SerializingSync`](crate::ApiHandler)
/// handler: any `serde::Serialize` value, behind a `dyn`.
pub trait SerializableReturn {
    /// Writes the response object `{"data": self, ...}` to `serializer`:
    /// `data` first, then each entry of `attributes` (an object, such as the
    /// environment's result attributes; anything else adds nothing).
    fn sender_serialize(
        &self,
        serializer: &mut serde_json::Serializer<&mut Vec<u8>>,
        attributes: &Value,
    ) -> Result<(), serde_json::Error>;

    /// The answer as a JSON value (for callers that need one).
    fn to_value(&self) -> Result<Value, serde_json::Error>;
}

impl<T: serde::Serialize> SerializableReturn for T {
    fn sender_serialize(
        &self,
        serializer: &mut serde_json::Serializer<&mut Vec<u8>>,
        attributes: &Value,
    ) -> Result<(), serde_json::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("data", self)?;
        if let Some(attributes) = attributes.as_object() {
            for (key, value) in attributes {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }

    fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(data: &dyn SerializableReturn, attributes: &Value) -> String {
        let mut out = Vec::new();
        data.sender_serialize(&mut serde_json::Serializer::new(&mut out), attributes)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn data_comes_first_then_the_attributes() {
        #[derive(serde::Serialize)]
        struct Key<'a> {
            id: &'a str,
        }
        let keys = vec![Key { id: "k1" }, Key { id: "k\"2" }];
        assert_eq!(
            body(&keys, &json!({"digest": "ab"})),
            r#"{"data":[{"id":"k1"},{"id":"k\"2"}],"digest":"ab"}"#
        );
        assert_eq!(body(&Value::Null, &json!({})), r#"{"data":null}"#);
        assert_eq!(body(&1, &Value::Null), r#"{"data":1}"#);
        assert_eq!(
            keys.to_value().unwrap(),
            json!([{"id": "k1"}, {"id": "k\"2"}])
        );
    }
}
