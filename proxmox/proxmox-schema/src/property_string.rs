//! Property strings: `key=value,key2=value2` (objects) and `a,b c;d` (arrays).
//!
//! Used where a schema's string format is
//! [`ApiStringFormat::PropertyString`](crate::ApiStringFormat::PropertyString).
//! Values may be quoted with double quotes to contain `,`; a bare value
//! belongs to the object's default key.

use anyhow::{Error, bail, format_err};
use serde_json::{Map, Value};

use crate::{ObjectSchemaType, Schema};

/// Parses `value` as a property string described by `schema` (an object,
/// all-of or array schema) and verifies it.
pub fn parse_property_string(value: &str, schema: &'static Schema) -> Result<Value, Error> {
    match schema {
        Schema::Object(object) => parse_object(value, object),
        Schema::AllOf(all_of) => parse_object(value, all_of),
        Schema::Array(array) => {
            let mut list = Vec::new();
            for item in value
                .split([',', ';', ' ', '\t', '\n'])
                .filter(|item| !item.is_empty())
            {
                list.push(array.items.parse_simple_value(item)?);
            }
            array.check_length(list.len())?;
            Ok(Value::Array(list))
        }
        _ => bail!("property string schema must be an object or array schema"),
    }
}

fn parse_object<S: ObjectSchemaType + ?Sized>(value: &str, schema: &S) -> Result<Value, Error> {
    let mut map = Map::new();
    for part in split_unquoted(value)? {
        let (key, text) = match part.split_once('=') {
            Some((key, text)) => (key.to_string(), text),
            None => match schema.default_key() {
                Some(key) => (key.to_string(), part.as_str()),
                None => bail!("value without key, but schema does not define a default key"),
            },
        };
        let text = unquote(text)?;
        let Some((_optional, prop_schema)) = schema.lookup(&key) else {
            if schema.additional_properties() {
                map.insert(key, Value::String(text));
                continue;
            }
            bail!("unknown property '{key}' in property string");
        };
        if map.contains_key(&key) {
            bail!("duplicate key '{key}' in property string");
        }
        let parsed = prop_schema
            .parse_simple_value(&text)
            .map_err(|err| format_err!("property '{key}': {err}"))?;
        map.insert(key, parsed);
    }
    let value = Value::Object(map);
    crate::verify::verify_object(&value, schema)?;
    Ok(value)
}

fn split_unquoted(value: &str) -> Result<Vec<String>, Error> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    for c in value.chars() {
        match c {
            _ if escaped => {
                current.push(c);
                escaped = false;
            }
            '\\' if in_quotes => {
                current.push(c);
                escaped = true;
            }
            '"' => {
                current.push(c);
                in_quotes = !in_quotes;
            }
            ',' if !in_quotes => {
                if !current.is_empty() {
                    parts.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if in_quotes {
        bail!("unterminated quote in property string");
    }
    if !current.is_empty() {
        parts.push(current);
    }
    Ok(parts)
}

fn unquote(text: &str) -> Result<String, Error> {
    let Some(inner) = text.strip_prefix('"') else {
        return Ok(text.to_string());
    };
    let Some(inner) = inner.strip_suffix('"') else {
        bail!("unterminated quote in property string");
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(next) => out.push(next),
                None => bail!("trailing backslash in property string"),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{ArraySchema, IntegerSchema, ObjectSchema, StringSchema};

    use super::*;

    const NAME: Schema = StringSchema::new("Name.").schema();
    const SIZE: Schema = IntegerSchema::new("Size.").minimum(1).schema();
    const OBJ: Schema = ObjectSchema::new("Obj.", &[("name", false, &NAME), ("size", true, &SIZE)])
        .default_key("name")
        .schema();
    const LIST: Schema = ArraySchema::new("List.", &SIZE).schema();

    #[test]
    fn object_with_default_key_and_quotes() {
        assert_eq!(
            parse_property_string("disk0,size=3", &OBJ).unwrap(),
            json!({"name": "disk0", "size": 3})
        );
        assert_eq!(
            parse_property_string("name=\"a,b\"", &OBJ).unwrap(),
            json!({"name": "a,b"})
        );
    }

    #[test]
    fn object_errors() {
        assert!(parse_property_string("size=0,name=x", &OBJ).is_err());
        assert!(parse_property_string("size=2", &OBJ).is_err());
        assert!(parse_property_string("name=x,color=red", &OBJ).is_err());
        assert!(parse_property_string("name=\"x", &OBJ).is_err());
    }

    #[test]
    fn arrays_split_on_separators() {
        assert_eq!(
            parse_property_string("1,2;3 4", &LIST).unwrap(),
            json!([1, 2, 3, 4])
        );
        assert!(parse_property_string("1,x", &LIST).is_err());
    }
}
