//! The schema tree: [`Schema`] and its `const fn` builders.

use std::fmt;

use anyhow::{Error, bail};

use crate::ConstRegexPattern;

/// Declares `const` builder methods that each set one optional field:
/// `name: Type;` gives `pub const fn name(mut self, name: Type) -> Self`.
macro_rules! optional_setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            pub const fn $field(mut self, $field: $ty) -> Self {
                self.$field = Some($field);
                self
            }
        )*
    };
}

/// Checks a string value beyond what length and regex can express.
pub type ApiStringVerifyFn = fn(&str) -> Result<(), Error>;

/// One property of an object schema: name, optional flag, schema.
pub type SchemaPropertyEntry = (&'static str, bool, &'static Schema);

/// A node of the schema tree.
#[derive(Debug)]
pub enum Schema {
    /// Only `null`.
    Null,
    /// `true`/`false`.
    Boolean(BooleanSchema),
    /// A whole number.
    Integer(IntegerSchema),
    /// A floating point number.
    Number(NumberSchema),
    /// A string.
    String(StringSchema),
    /// An object with a fixed set of properties.
    Object(ObjectSchema),
    /// A list of items of one schema.
    Array(ArraySchema),
    /// An object made of the properties of several object schemas (serde's `flatten`).
    AllOf(AllOfSchema),
}

impl Schema {
    /// The object schema inside, or a panic (for `const` wiring code).
    pub const fn unwrap_object_schema(&self) -> &ObjectSchema {
        match self {
            Schema::Object(schema) => schema,
            _ => panic!("unwrap_object_schema on a schema that is not an object schema"),
        }
    }

    /// The all-of schema inside, or a panic (for `const` wiring code).
    pub const fn unwrap_all_of_schema(&self) -> &AllOfSchema {
        match self {
            Schema::AllOf(schema) => schema,
            _ => panic!("unwrap_all_of_schema on a schema that is not an all-of schema"),
        }
    }

    /// The string schema inside, or a panic (for `const` wiring code).
    pub const fn unwrap_string_schema(&self) -> &StringSchema {
        match self {
            Schema::String(schema) => schema,
            _ => panic!("unwrap_string_schema on a schema that is not a string schema"),
        }
    }

    /// The array schema inside, or a panic (for `const` wiring code).
    pub const fn unwrap_array_schema(&self) -> &ArraySchema {
        match self {
            Schema::Array(schema) => schema,
            _ => panic!("unwrap_array_schema on a schema that is not an array schema"),
        }
    }

    /// Object or all-of schemas as an [`ObjectSchemaType`].
    pub fn any_object(&self) -> Option<&dyn ObjectSchemaType> {
        match self {
            Schema::Object(schema) => Some(schema),
            Schema::AllOf(schema) => Some(schema),
            _ => None,
        }
    }

    /// The one-line description.
    pub fn description(&self) -> &'static str {
        match self {
            Schema::Null => "null",
            Schema::Boolean(s) => s.description,
            Schema::Integer(s) => s.description,
            Schema::Number(s) => s.description,
            Schema::String(s) => s.description,
            Schema::Object(s) => s.description,
            Schema::Array(s) => s.description,
            Schema::AllOf(s) => s.description,
        }
    }
}

/// A boolean.
#[derive(Debug)]
pub struct BooleanSchema {
    /// One-line description.
    pub description: &'static str,
    /// Value assumed when absent.
    pub default: Option<bool>,
}

impl BooleanSchema {
    /// A boolean schema with a description.
    pub const fn new(description: &'static str) -> Self {
        Self {
            description,
            default: None,
        }
    }

    optional_setters! {
        /// Sets the default.
        default: bool;
    }

    /// Wraps it into a [`Schema`].
    pub const fn schema(self) -> Schema {
        Schema::Boolean(self)
    }
}

/// Declares a number schema (`IntegerSchema`, `NumberSchema`): the struct
/// with its description, optional bounds and default, and its `const`
/// builder. Each type's `check_constraints` is its own.
macro_rules! bounded_schema {
    ($(#[$doc:meta])* $name:ident, $value:ty, $variant:ident, $new_doc:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            /// One-line description.
            pub description: &'static str,
            /// Smallest allowed value.
            pub minimum: Option<$value>,
            /// Largest allowed value.
            pub maximum: Option<$value>,
            /// Value assumed when absent.
            pub default: Option<$value>,
        }

        impl $name {
            #[doc = $new_doc]
            pub const fn new(description: &'static str) -> Self {
                Self {
                    description,
                    minimum: None,
                    maximum: None,
                    default: None,
                }
            }

            optional_setters! {
                /// Sets the default.
                default: $value;
                /// Sets the smallest allowed value.
                minimum: $value;
                /// Sets the largest allowed value.
                maximum: $value;
            }

            /// Wraps it into a [`Schema`].
            pub const fn schema(self) -> Schema {
                Schema::$variant(self)
            }

            fn check_bounds(&self, value: $value) -> Result<(), Error> {
                if let Some(minimum) = self.minimum
                    && value < minimum
                {
                    bail!("value must have a minimum value of {minimum} (got {value})");
                }
                if let Some(maximum) = self.maximum
                    && value > maximum
                {
                    bail!("value must have a maximum value of {maximum} (got {value})");
                }
                Ok(())
            }
        }
    };
}

bounded_schema!(
    /// A whole number with optional bounds.
    IntegerSchema,
    isize,
    Integer,
    "An unbounded integer schema."
);

bounded_schema!(
    /// A floating point number with optional bounds.
    NumberSchema,
    f64,
    Number,
    "An unbounded number schema."
);

impl IntegerSchema {
    /// Checks the bounds.
    pub fn check_constraints(&self, value: isize) -> Result<(), Error> {
        self.check_bounds(value)
    }
}

impl NumberSchema {
    /// Checks that the value is finite and within the bounds.
    pub fn check_constraints(&self, value: f64) -> Result<(), Error> {
        if !value.is_finite() {
            bail!("value must be a finite number");
        }
        self.check_bounds(value)
    }
}

/// One allowed value of an enumeration.
#[derive(Debug)]
pub struct EnumEntry {
    /// The value as written on the wire.
    pub value: &'static str,
    /// What it means.
    pub description: &'static str,
}

impl EnumEntry {
    /// An entry.
    pub const fn new(value: &'static str, description: &'static str) -> Self {
        Self { value, description }
    }
}

/// Further restrictions on a string's content.
pub enum ApiStringFormat {
    /// One of a fixed set of values.
    Enum(&'static [EnumEntry]),
    /// Must match the (anchored) pattern.
    Pattern(&'static ConstRegexPattern),
    /// A property string (`key=value,...`) described by an object or array schema.
    PropertyString(&'static Schema),
    /// Checked by a function.
    VerifyFn(ApiStringVerifyFn),
}

impl fmt::Debug for ApiStringFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiStringFormat::Enum(entries) => f.debug_tuple("Enum").field(entries).finish(),
            ApiStringFormat::Pattern(regex) => f.debug_tuple("Pattern").field(regex).finish(),
            ApiStringFormat::PropertyString(schema) => {
                f.debug_tuple("PropertyString").field(schema).finish()
            }
            ApiStringFormat::VerifyFn(_) => write!(f, "VerifyFn"),
        }
    }
}

/// A string with optional length bounds and format.
#[derive(Debug)]
pub struct StringSchema {
    /// One-line description.
    pub description: &'static str,
    /// Value assumed when absent.
    pub default: Option<&'static str>,
    /// Minimum length in characters.
    pub min_length: Option<usize>,
    /// Maximum length in characters.
    pub max_length: Option<usize>,
    /// Content restriction.
    pub format: Option<&'static ApiStringFormat>,
    /// Placeholder text for documentation (`<id>`).
    pub type_text: Option<&'static str>,
}

impl StringSchema {
    /// An unrestricted string schema.
    pub const fn new(description: &'static str) -> Self {
        Self {
            description,
            default: None,
            min_length: None,
            max_length: None,
            format: None,
            type_text: None,
        }
    }

    optional_setters! {
        /// Sets the default.
        default: &'static str;
        /// Sets the content restriction.
        format: &'static ApiStringFormat;
        /// Sets the documentation placeholder.
        type_text: &'static str;
        /// Sets the minimum length (in characters).
        min_length: usize;
        /// Sets the maximum length (in characters).
        max_length: usize;
    }

    /// Wraps it into a [`Schema`].
    pub const fn schema(self) -> Schema {
        Schema::String(self)
    }

    fn check_length(&self, length: usize) -> Result<(), Error> {
        if let Some(min_length) = self.min_length
            && length < min_length
        {
            bail!("value must be at least {min_length} characters long");
        }
        if let Some(max_length) = self.max_length
            && length > max_length
        {
            bail!("value may only be {max_length} characters long");
        }
        Ok(())
    }

    /// Checks length and format. Messages never repeat a value that failed a
    /// pattern or length check (it may be long or sensitive); an enumeration
    /// names the offending value, as upstream does.
    pub fn check_constraints(&self, value: &str) -> Result<(), Error> {
        if self.min_length.is_some() || self.max_length.is_some() {
            // in characters; ids and most values are ASCII, counted by length
            let length = match value.is_ascii() {
                true => value.len(),
                false => value.chars().count(),
            };
            self.check_length(length)?;
        }
        self.check_format(value)
    }

    /// [`StringSchema::check_constraints`] of a value the caller knows to
    /// be ASCII (so its length in characters is its length in bytes): a
    /// config reader that has checked every byte of its text already.
    #[inline]
    pub fn check_constraints_ascii(&self, value: &str) -> Result<(), Error> {
        debug_assert!(value.is_ascii());
        if self.min_length.is_some() || self.max_length.is_some() {
            self.check_length(value.len())?;
        }
        self.check_format(value)
    }

    #[inline]
    fn check_format(&self, value: &str) -> Result<(), Error> {
        match self.format {
            Some(ApiStringFormat::Pattern(regex)) if !regex.is_match(value) => {
                bail!("value does not match the regex pattern");
            }
            Some(ApiStringFormat::Enum(variants)) if !variants.iter().any(|e| e.value == value) => {
                bail!("value '{value}' is not defined in the enumeration.");
            }
            Some(ApiStringFormat::PropertyString(schema)) => {
                crate::property_string::parse_property_string(value, schema)?;
            }
            Some(ApiStringFormat::VerifyFn(verify_fn)) => verify_fn(value)?,
            None | Some(ApiStringFormat::Pattern(_)) | Some(ApiStringFormat::Enum(_)) => {}
        }
        Ok(())
    }
}

/// A list of items.
#[derive(Debug)]
pub struct ArraySchema {
    /// One-line description.
    pub description: &'static str,
    /// Schema of each item.
    pub items: &'static Schema,
    /// Minimum number of items.
    pub min_length: Option<usize>,
    /// Maximum number of items.
    pub max_length: Option<usize>,
}

impl ArraySchema {
    /// An array schema of `items`.
    pub const fn new(description: &'static str, items: &'static Schema) -> Self {
        Self {
            description,
            items,
            min_length: None,
            max_length: None,
        }
    }

    optional_setters! {
        /// Sets the minimum number of items.
        min_length: usize;
        /// Sets the maximum number of items.
        max_length: usize;
    }

    /// Wraps it into a [`Schema`].
    pub const fn schema(self) -> Schema {
        Schema::Array(self)
    }

    /// Checks the number of items.
    pub fn check_length(&self, length: usize) -> Result<(), Error> {
        if let Some(min_length) = self.min_length
            && length < min_length
        {
            bail!("array must contain at least {min_length} elements");
        }
        if let Some(max_length) = self.max_length
            && length > max_length
        {
            bail!("array may only contain {max_length} elements");
        }
        Ok(())
    }
}

/// Iterator over the properties of an object-like schema.
pub type ObjectPropertyIterator = Box<dyn Iterator<Item = &'static SchemaPropertyEntry>>;

/// What object and all-of schemas have in common.
pub trait ObjectSchemaType {
    /// One-line description.
    fn description(&self) -> &'static str;
    /// Looks up a property: `(optional, schema)`.
    fn lookup(&self, key: &str) -> Option<(bool, &'static Schema)>;
    /// All properties (sorted by name within each part).
    fn properties(&self) -> ObjectPropertyIterator;
    /// Whether properties not listed are allowed.
    fn additional_properties(&self) -> bool;
    /// The property a bare value in a property string belongs to.
    fn default_key(&self) -> Option<&'static str>;

    /// Verifies an object value against this schema.
    fn verify_json(&self, data: &serde_json::Value) -> Result<(), Error> {
        crate::verify::verify_object(data, self)
    }
}

impl<T: ObjectSchemaType + ?Sized> ObjectSchemaType for &T {
    fn description(&self) -> &'static str {
        (**self).description()
    }
    fn lookup(&self, key: &str) -> Option<(bool, &'static Schema)> {
        (**self).lookup(key)
    }
    fn properties(&self) -> ObjectPropertyIterator {
        (**self).properties()
    }
    fn additional_properties(&self) -> bool {
        (**self).additional_properties()
    }
    fn default_key(&self) -> Option<&'static str> {
        (**self).default_key()
    }
}

/// An object with a fixed, sorted set of properties.
#[derive(Debug)]
pub struct ObjectSchema {
    /// One-line description.
    pub description: &'static str,
    /// Whether properties not listed are allowed.
    pub additional_properties: bool,
    /// The properties, sorted by name (checked when the const is evaluated).
    pub properties: &'static [SchemaPropertyEntry],
    /// The property a bare value in a property string belongs to.
    pub default_key: Option<&'static str>,
}

/// `a < b`, byte-wise, in a const context (where `str`'s `Ord` is not
/// available): what keeps a const property list sorted.
pub const fn str_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

impl ObjectSchema {
    /// An object schema. `properties` must be sorted by name without
    /// duplicates; a const item that breaks this fails to compile.
    pub const fn new(
        description: &'static str,
        properties: &'static [SchemaPropertyEntry],
    ) -> Self {
        let mut i = 1;
        while i < properties.len() {
            if !str_less(properties[i - 1].0, properties[i].0) {
                panic!("ObjectSchema properties must be sorted by name without duplicates");
            }
            i += 1;
        }
        Self {
            description,
            properties,
            additional_properties: false,
            default_key: None,
        }
    }

    /// Allows (or forbids) properties that are not listed.
    pub const fn additional_properties(mut self, additional_properties: bool) -> Self {
        self.additional_properties = additional_properties;
        self
    }

    optional_setters! {
        /// Sets the default key for property strings.
        default_key: &'static str;
    }

    /// Wraps it into a [`Schema`].
    pub const fn schema(self) -> Schema {
        Schema::Object(self)
    }
}

impl ObjectSchemaType for ObjectSchema {
    fn description(&self) -> &'static str {
        self.description
    }

    fn lookup(&self, key: &str) -> Option<(bool, &'static Schema)> {
        let properties: &'static [SchemaPropertyEntry] = self.properties;
        properties
            .binary_search_by(|(name, _, _)| (*name).cmp(key))
            .ok()
            .map(|index| (properties[index].1, properties[index].2))
    }

    fn properties(&self) -> ObjectPropertyIterator {
        Box::new(self.properties.iter())
    }

    fn additional_properties(&self) -> bool {
        self.additional_properties
    }

    fn default_key(&self) -> Option<&'static str> {
        self.default_key
    }
}

/// An object made of the properties of several object (or all-of) schemas.
#[derive(Debug)]
pub struct AllOfSchema {
    /// One-line description.
    pub description: &'static str,
    /// The parts; each must be an object or all-of schema.
    pub list: &'static [&'static Schema],
}

impl AllOfSchema {
    /// An all-of schema of `list`.
    pub const fn new(description: &'static str, list: &'static [&'static Schema]) -> Self {
        Self { description, list }
    }

    /// Wraps it into a [`Schema`].
    pub const fn schema(self) -> Schema {
        Schema::AllOf(self)
    }
}

impl ObjectSchemaType for AllOfSchema {
    fn description(&self) -> &'static str {
        self.description
    }

    fn lookup(&self, key: &str) -> Option<(bool, &'static Schema)> {
        self.list
            .iter()
            .filter_map(|schema| schema.any_object())
            .find_map(|object| object.lookup(key))
    }

    fn properties(&self) -> ObjectPropertyIterator {
        let list: &'static [&'static Schema] = self.list;
        Box::new(list.iter().flat_map(|schema| -> ObjectPropertyIterator {
            match schema {
                Schema::Object(object) => Box::new(object.properties.iter()),
                Schema::AllOf(all_of) => all_of.properties(),
                _ => Box::new(std::iter::empty()),
            }
        }))
    }

    fn additional_properties(&self) -> bool {
        self.list
            .iter()
            .filter_map(|schema| schema.any_object())
            .any(|object| object.additional_properties())
    }

    fn default_key(&self) -> Option<&'static str> {
        self.list
            .iter()
            .filter_map(|schema| schema.any_object())
            .find_map(|object| object.default_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: Schema = StringSchema::new("Name.")
        .min_length(3)
        .max_length(5)
        .schema();
    const COUNT: Schema = IntegerSchema::new("Count.").minimum(0).schema();
    const PART_A: Schema =
        ObjectSchema::new("A.", &[("count", true, &COUNT), ("name", false, &NAME)]).schema();
    const PART_B: Schema = ObjectSchema::new("B.", &[("extra", true, &NAME)]).schema();
    const BOTH: Schema = AllOfSchema::new("A and B.", &[&PART_A, &PART_B]).schema();

    #[test]
    fn object_lookup_finds_sorted_properties() {
        let object = PART_A.unwrap_object_schema();
        assert!(matches!(object.lookup("count"), Some((true, _))));
        assert!(matches!(object.lookup("name"), Some((false, _))));
        assert!(object.lookup("nope").is_none());
    }

    #[test]
    fn all_of_merges_parts() {
        let all_of = BOTH.unwrap_all_of_schema();
        let names: Vec<&str> = all_of.properties().map(|(name, _, _)| *name).collect();
        assert_eq!(names, vec!["count", "name", "extra"]);
        assert!(all_of.lookup("extra").is_some());
        assert!(!all_of.additional_properties());
    }

    #[test]
    fn string_length_errors_read_like_upstream() {
        let s = NAME.unwrap_string_schema();
        assert_eq!(
            s.check_constraints("ab").unwrap_err().to_string(),
            "value must be at least 3 characters long"
        );
        assert_eq!(
            s.check_constraints("abcdef").unwrap_err().to_string(),
            "value may only be 5 characters long"
        );
        // characters, not bytes
        s.check_constraints("äöü").unwrap();
    }

    #[test]
    #[should_panic(expected = "sorted")]
    fn unsorted_object_properties_are_refused() {
        static UNSORTED: [SchemaPropertyEntry; 2] = [("b", true, &COUNT), ("a", true, &COUNT)];
        let _ = ObjectSchema::new("bad", &UNSORTED);
    }
}
