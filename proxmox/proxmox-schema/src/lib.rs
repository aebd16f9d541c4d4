//! Const API schemas, mirroring the `proxmox-schema` crate of proxmox-rs.
//!
//! A schema is a tree of `const` items ([`Schema`] and its builders), so types
//! carry their wire description as [`ApiType::API_SCHEMA`] without a proc
//! macro. The crate verifies JSON values against a schema
//! ([`Schema::verify_json`]), parses simple values from text
//! ([`Schema::parse_simple_value`], used by the section-config parser and the
//! command line) and parses query/form parameters into an object
//! ([`parse_parameter_strings`]).
//!
//! Error texts are upstream's ("value must be at least 3 characters long",
//! "value does not match the regex pattern", ...), because the section-config
//! vectors pin them. Left out compared to upstream: the `#[api]` macro, the
//! `Updater` machinery, the router and documentation generators, and
//! `serde`-driven (de)serialization with schema checks.
//!
//! Beyond upstream's API (or shaped differently):
//! - [`parse_parameter_strings`], [`verify_json`] and
//!   [`property_string::parse_property_string`] are free functions taking
//!   the schema (upstream: methods of the schema types);
//! - [`Schema::check_simple_value`], which makes the checks of
//!   [`Schema::parse_simple_value`] without building the value (the
//!   section-config reader's fast path);
//! - [`StringSchema::check_constraints_ascii`], the string checks for a
//!   value the caller knows to be ASCII (length in bytes);
//! - [`ParameterError::names`]: the offending parameters' names, so a
//!   caller can tell which field failed without parsing the message;
//! - in [`api_types`], [`api_types::verify_safe_id`],
//!   [`api_types::verify_fingerprint_sha256`],
//!   [`api_types::SHA256_HEX_FORMAT`] and
//!   [`api_types::SINGLE_LINE_COMMENT_SCHEMA`] (upstream keeps the last two
//!   in pbs-api-types);
//! - [`str_less`], byte-wise `<` for `const` code that sorts or checks
//!   property lists.
//!
//! ```
//! use proxmox_schema::{IntegerSchema, Schema};
//!
//! const PORT_SCHEMA: Schema = IntegerSchema::new("TCP port.").minimum(1).maximum(65535).schema();
//! assert_eq!(PORT_SCHEMA.parse_simple_value("8007").unwrap(), 8007);
//! assert_eq!(
//!     PORT_SCHEMA.parse_simple_value("0").unwrap_err().to_string(),
//!     "value must have a minimum value of 1 (got 0)",
//! );
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api_types;
mod const_regex;
mod error;
mod parse;
pub mod property_string;
mod schema;
mod verify;

pub use const_regex::ConstRegexPattern;
pub use error::ParameterError;
pub use parse::{parse_boolean, parse_parameter_strings};
pub use schema::{
    AllOfSchema, ApiStringFormat, ApiStringVerifyFn, ArraySchema, BooleanSchema, EnumEntry,
    IntegerSchema, NumberSchema, ObjectPropertyIterator, ObjectSchema, ObjectSchemaType, Schema,
    SchemaPropertyEntry, StringSchema, str_less,
};
pub use verify::verify_json;

#[doc(hidden)]
pub mod __private {
    pub use regex;
}

/// A type with a const API schema describing its wire format.
pub trait ApiType {
    /// The schema of this type's serialized form.
    const API_SCHEMA: Schema;
}
