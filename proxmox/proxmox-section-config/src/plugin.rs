//! [`SectionConfigPlugin`]: one section type and the schema of its properties.

use proxmox_schema::{ObjectPropertyIterator, ObjectSchemaType, Schema, SchemaPropertyEntry};

/// One section type: its name, the property that holds the section id, and
/// the properties a section of this type may have.
pub struct SectionConfigPlugin {
    type_name: String,
    id_property: Option<String>,
    properties: PluginProperties,
}

impl SectionConfigPlugin {
    /// A section type named `type_name` whose properties are described by
    /// `properties` (an object or all-of schema, e.g.
    /// `CryptKey::API_SCHEMA.unwrap_all_of_schema()`).
    ///
    /// The id of a section is stored in `id_property` when parsed and is not
    /// written as a property line.
    pub fn new(
        type_name: impl Into<String>,
        id_property: Option<String>,
        properties: &dyn ObjectSchemaType,
    ) -> Self {
        let mut entries: Vec<&'static SchemaPropertyEntry> = properties.properties().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        Self {
            type_name: type_name.into(),
            id_property,
            properties: PluginProperties {
                description: properties.description(),
                entries,
                additional_properties: properties.additional_properties(),
                default_key: properties.default_key(),
            },
        }
    }

    /// The section type name (`sync-key`).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// The property receiving the section id (`id`), if any.
    pub fn id_property(&self) -> Option<&str> {
        self.id_property.as_deref()
    }

    /// The properties of this section type.
    pub fn properties(&self) -> &dyn ObjectSchemaType {
        &self.properties
    }

    pub(crate) fn lookup(&self, key: &str) -> Option<(bool, &'static Schema)> {
        self.properties.lookup(key)
    }

    /// Required properties other than the id property.
    pub(crate) fn required_properties(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.properties
            .entries
            .iter()
            .filter(|(name, optional, _)| !optional && Some(*name) != self.id_property())
            .map(|(name, _, _)| *name)
    }
}

/// The flattened, sorted property list of a plugin.
struct PluginProperties {
    description: &'static str,
    entries: Vec<&'static SchemaPropertyEntry>,
    additional_properties: bool,
    default_key: Option<&'static str>,
}

impl ObjectSchemaType for PluginProperties {
    fn description(&self) -> &'static str {
        self.description
    }

    fn lookup(&self, key: &str) -> Option<(bool, &'static Schema)> {
        self.entries
            .binary_search_by(|(name, _, _)| (*name).cmp(key))
            .ok()
            .map(|index| (self.entries[index].1, self.entries[index].2))
    }

    fn properties(&self) -> ObjectPropertyIterator {
        Box::new(self.entries.clone().into_iter())
    }

    fn additional_properties(&self) -> bool {
        self.additional_properties
    }

    fn default_key(&self) -> Option<&'static str> {
        self.default_key
    }
}
