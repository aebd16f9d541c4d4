//! [`Reply`]: the body of a successful answer.

use anyhow::Error;
use serde_json::Value;

use proxmox_router::SerializableReturn;

/// A successful answer: the response body `{"data": DATA}`, plus the
/// handler's result attributes (`"digest"` where upstream has it).
///
/// The body is serialized once, straight from the handler's value: a list
/// of 100,000 keys is about 28 MB of JSON, and built as a tree of
/// `serde_json::Value`s (copied once more into the body object) it took
/// the daemon's peak memory to about 600 MiB (docs/performance.md).
/// Handlers with large answers are
/// [`SerializingSync`](proxmox_router::ApiHandler::SerializingSync) ones
/// for this reason.
pub struct Reply {
    body: Vec<u8>,
}

impl Reply {
    /// A reply with `data` and the entries of `attributes` (an object).
    pub fn new(data: &dyn SerializableReturn, attributes: &Value) -> Result<Self, Error> {
        let mut body = Vec::new();
        data.sender_serialize(&mut serde_json::Serializer::new(&mut body), attributes)?;
        Ok(Self { body })
    }

    /// A reply with `data` and nothing else.
    pub fn data(data: &dyn SerializableReturn) -> Result<Self, Error> {
        Self::new(data, &Value::Null)
    }

    /// The response body.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_body_is_the_json_object_of_data_and_digest() {
        let list = serde_json::json!([{"id": "k1", "kdf": "none"}, {"id": "k\"2"}]);
        let body = |reply: Reply| -> Value { serde_json::from_slice(&reply.into_body()).unwrap() };
        assert_eq!(
            body(Reply::data(&list).unwrap()),
            serde_json::json!({"data": list})
        );
        let digest = "ab".repeat(32);
        assert_eq!(
            body(Reply::new(&list, &serde_json::json!({ "digest": digest })).unwrap()),
            serde_json::json!({"data": list, "digest": digest})
        );
        assert_eq!(
            Reply::data(&Value::Null).unwrap().into_body(),
            br#"{"data":null}"#
        );
        // data first, as the daemon always answered
        let text = String::from_utf8(
            Reply::new(&list, &serde_json::json!({ "digest": digest }))
                .unwrap()
                .into_body(),
        )
        .unwrap();
        assert!(text.starts_with(r#"{"data":[{"id":"k1""#), "{text}");
        assert!(
            text.ends_with(&format!(r#""digest":"{digest}"}}"#)),
            "{text}"
        );
    }
}
