//! Parsing values from text: simple values, booleans, parameter lists.

use anyhow::{Error, bail, format_err};
use serde_json::{Map, Value};

use crate::{ObjectSchemaType, ParameterError, Schema};

/// Parses a boolean the way PBS does: `1/0`, `true/false`, `yes/no`, `on/off`,
/// in any letter case.
///
/// ```
/// use proxmox_schema::parse_boolean;
/// assert!(parse_boolean("True").unwrap());
/// assert!(!parse_boolean("OFF").unwrap());
/// assert!(parse_boolean("2").is_err());
/// ```
pub fn parse_boolean(value_str: &str) -> Result<bool, Error> {
    match value_str.to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Ok(true),
        "0" | "off" | "no" | "false" => Ok(false),
        _ => bail!("Unable to parse boolean option."),
    }
}

impl Schema {
    /// Checks text against a simple schema (boolean, integer, number,
    /// string) as [`Schema::parse_simple_value`] does, with the same errors,
    /// without building the value.
    pub fn check_simple_value(&self, value_str: &str) -> Result<(), Error> {
        match self {
            Schema::String(schema) => schema.check_constraints(value_str),
            Schema::Boolean(_) => parse_boolean(value_str).map(|_| ()),
            Schema::Integer(schema) => schema.check_constraints(value_str.parse()?),
            _ => self.parse_simple_value(value_str).map(|_| ()),
        }
    }

    /// Parses a value of a simple schema (boolean, integer, number, string)
    /// from text and checks its constraints.
    pub fn parse_simple_value(&self, value_str: &str) -> Result<Value, Error> {
        Ok(match self {
            Schema::Null => bail!("internal error - found Null schema."),
            Schema::Boolean(_) => Value::Bool(parse_boolean(value_str)?),
            Schema::Integer(schema) => {
                let value: isize = value_str.parse()?;
                schema.check_constraints(value)?;
                Value::from(value)
            }
            Schema::Number(schema) => {
                let value: f64 = value_str.parse()?;
                schema.check_constraints(value)?;
                serde_json::Number::from_f64(value)
                    .map(Value::Number)
                    .ok_or_else(|| format_err!("value must be a finite number"))?
            }
            Schema::String(schema) => {
                schema.check_constraints(value_str)?;
                Value::String(value_str.to_string())
            }
            _ => bail!("unable to parse complex (sub) objects."),
        })
    }
}

/// Parses `key=value` parameter pairs (a query string, a form body, command
/// line options) into an object described by `schema`.
///
/// A key given more than once is only allowed for array properties, whose
/// items are collected in order. With `test_required`, missing required
/// properties are errors too. All errors are collected, each naming its
/// parameter.
pub fn parse_parameter_strings(
    data: &[(String, String)],
    schema: &dyn ObjectSchemaType,
    test_required: bool,
) -> Result<Value, ParameterError> {
    let mut params = Map::new();
    let mut errors = ParameterError::new();

    for (key, value) in data {
        match schema.lookup(key) {
            Some((_optional, Schema::Array(array))) => {
                match array.items.parse_simple_value(value) {
                    Ok(item) => match params
                        .entry(key.clone())
                        .or_insert_with(|| Value::Array(Vec::new()))
                    {
                        Value::Array(list) => list.push(item),
                        _ => unreachable!("array parameters only ever hold arrays"),
                    },
                    Err(err) => errors.push(key.clone(), err),
                }
            }
            Some((_optional, prop_schema)) => {
                if params.contains_key(key) {
                    errors.push(key.clone(), format_err!("duplicate parameter."));
                    continue;
                }
                match prop_schema.parse_simple_value(value) {
                    Ok(value) => {
                        params.insert(key.clone(), value);
                    }
                    Err(err) => errors.push(key.clone(), err),
                }
            }
            None if schema.additional_properties() => {
                if params.contains_key(key) {
                    errors.push(key.clone(), format_err!("duplicate parameter."));
                } else {
                    params.insert(key.clone(), Value::String(value.clone()));
                }
            }
            None => errors.push(
                key.clone(),
                format_err!("schema does not allow additional properties."),
            ),
        }
    }

    if test_required {
        for (name, optional, _) in schema.properties() {
            // a parameter that failed to parse is reported once, not also as missing
            if !*optional && !params.contains_key(*name) && !errors.names().any(|n| n == *name) {
                errors.push(
                    name.to_string(),
                    format_err!("parameter is missing and it is not optional."),
                );
            }
        }
    }

    if errors.is_empty() {
        Ok(Value::Object(params))
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::{ArraySchema, BooleanSchema, IntegerSchema, ObjectSchema, StringSchema};

    use super::*;

    const FLAG: Schema = BooleanSchema::new("Flag.").schema();
    const COUNT: Schema = IntegerSchema::new("Count.").minimum(1).schema();
    const NAME: Schema = StringSchema::new("Name.").schema();
    const NAMES: Schema = ArraySchema::new("Names.", &NAME).schema();
    const PARAMS: ObjectSchema = ObjectSchema::new(
        "Parameters.",
        &[
            ("count", false, &COUNT),
            ("flag", true, &FLAG),
            ("name", true, &NAMES),
        ],
    );

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn booleans_accept_every_spelling() {
        for t in ["1", "true", "True", "TRUE", "yes", "Yes", "on", "ON"] {
            assert_eq!(FLAG.parse_simple_value(t).unwrap(), json!(true), "{t}");
        }
        for f in ["0", "false", "False", "no", "NO", "off", "Off"] {
            assert_eq!(FLAG.parse_simple_value(f).unwrap(), json!(false), "{f}");
        }
        assert_eq!(
            FLAG.parse_simple_value("maybe").unwrap_err().to_string(),
            "Unable to parse boolean option."
        );
    }

    #[test]
    fn integer_errors_read_like_upstream() {
        assert_eq!(
            COUNT.parse_simple_value("abc").unwrap_err().to_string(),
            "invalid digit found in string"
        );
        assert_eq!(
            COUNT.parse_simple_value("0").unwrap_err().to_string(),
            "value must have a minimum value of 1 (got 0)"
        );
    }

    #[test]
    fn parameters_collect_arrays_and_check_required() {
        let value = parse_parameter_strings(
            &pairs(&[
                ("count", "2"),
                ("name", "a"),
                ("name", "b"),
                ("flag", "yes"),
            ]),
            &PARAMS,
            true,
        )
        .unwrap();
        assert_eq!(value, json!({"count": 2, "flag": true, "name": ["a", "b"]}));
    }

    #[test]
    fn parameter_errors_name_each_parameter() {
        let err = parse_parameter_strings(
            &pairs(&[("flag", "1"), ("flag", "0"), ("name", "a"), ("other", "1")]),
            &PARAMS,
            true,
        )
        .unwrap_err();
        let names: Vec<&str> = err.names().collect();
        assert_eq!(names, vec!["flag", "other", "count"]);
        assert!(err.to_string().contains("duplicate parameter"), "{err}");
    }
}
