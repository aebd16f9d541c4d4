//! Verification of JSON values against a schema.

use anyhow::{Error, bail};
use serde_json::Value;

use crate::{ObjectSchemaType, ParameterError, Schema};

/// Verifies `data` against `schema`. Object errors are collected per property
/// in a [`ParameterError`] (nested names joined with `/`).
pub fn verify_json(data: &Value, schema: &Schema) -> Result<(), Error> {
    match schema {
        Schema::Null => {
            if !data.is_null() {
                bail!("Expected Null, but value is not Null.");
            }
        }
        Schema::Boolean(_) => {
            if !data.is_boolean() {
                bail!("Expected boolean value.");
            }
        }
        Schema::Integer(schema) => match data.as_i64().and_then(|v| isize::try_from(v).ok()) {
            Some(value) => schema.check_constraints(value)?,
            None => bail!("Expected integer value."),
        },
        Schema::Number(schema) => match data.as_f64() {
            Some(value) => schema.check_constraints(value)?,
            None => bail!("Expected number value."),
        },
        Schema::String(schema) => match data.as_str() {
            Some(value) => schema.check_constraints(value)?,
            None => bail!("Expected string value."),
        },
        Schema::Object(schema) => verify_object(data, schema)?,
        Schema::AllOf(schema) => verify_object(data, schema)?,
        Schema::Array(schema) => {
            let Some(list) = data.as_array() else {
                bail!("Expected array value.");
            };
            schema.check_length(list.len())?;
            let mut errors = ParameterError::new();
            for (index, item) in list.iter().enumerate() {
                if let Err(err) = verify_json(item, schema.items) {
                    errors.add_errors(&format!("[{index}]"), err);
                }
            }
            if !errors.is_empty() {
                return Err(errors.into());
            }
        }
    }
    Ok(())
}

/// Verifies an object value: no unknown properties (unless allowed), each
/// known one valid, every required one present. A `null` property counts as
/// absent.
pub(crate) fn verify_object<S: ObjectSchemaType + ?Sized>(
    data: &Value,
    schema: &S,
) -> Result<(), Error> {
    let Some(map) = data.as_object() else {
        bail!("Expected object - got {}.", type_name(data));
    };
    let mut errors = ParameterError::new();
    for (key, value) in map {
        match schema.lookup(key) {
            Some((_optional, prop_schema)) => {
                if value.is_null() {
                    continue;
                }
                if let Err(err) = verify_json(value, prop_schema) {
                    errors.add_errors(key, err);
                }
            }
            None if schema.additional_properties() => {}
            None => errors.push(
                key.clone(),
                anyhow::format_err!("schema does not allow additional properties."),
            ),
        }
    }
    for (name, optional, _) in schema.properties() {
        if !*optional && map.get(*name).is_none_or(Value::is_null) {
            errors.push(
                name.to_string(),
                anyhow::format_err!("property is missing and it is not optional."),
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    Ok(())
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Schema {
    /// Verifies `data` against this schema, see [`verify_json`].
    pub fn verify_json(&self, data: &Value) -> Result<(), Error> {
        verify_json(data, self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{ArraySchema, IntegerSchema, ObjectSchema, StringSchema};

    use super::*;

    const ID: Schema = StringSchema::new("Id.").min_length(3).schema();
    const IDS: Schema = ArraySchema::new("Ids.", &ID).max_length(2).schema();
    const AGE: Schema = IntegerSchema::new("Age.").minimum(0).maximum(150).schema();
    const PERSON: Schema = ObjectSchema::new(
        "Person.",
        &[
            ("age", true, &AGE),
            ("id", false, &ID),
            ("tags", true, &IDS),
        ],
    )
    .schema();

    fn param_names(err: Error) -> Vec<String> {
        err.downcast::<ParameterError>()
            .expect("a ParameterError")
            .names()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn valid_object_passes() {
        PERSON
            .verify_json(&json!({"id": "abc", "age": 3, "tags": ["xyz"]}))
            .unwrap();
    }

    #[test]
    fn errors_name_each_bad_property() {
        let err = PERSON
            .verify_json(&json!({"age": 200, "color": "red", "tags": ["ab"]}))
            .unwrap_err();
        let mut names = param_names(err);
        names.sort();
        assert_eq!(names, vec!["age", "color", "id", "tags/[0]"]);
    }

    #[test]
    fn wrong_types_are_refused() {
        assert_eq!(
            AGE.verify_json(&json!("12")).unwrap_err().to_string(),
            "Expected integer value."
        );
        assert_eq!(
            ID.verify_json(&json!(12)).unwrap_err().to_string(),
            "Expected string value."
        );
        assert!(PERSON.verify_json(&json!([])).is_err());
        assert!(IDS.verify_json(&json!(["abc", "def", "ghi"])).is_err());
    }
}
