//! [`SectionConfigPlugin`]: one section type and the schema of its properties.

use proxmox_schema::{ObjectPropertyIterator, ObjectSchemaType, Schema, SchemaPropertyEntry};

/// One section type: its name, the property that holds the section id, and
/// the properties a section of this type may have.
pub struct SectionConfigPlugin {
    type_name: String,
    id_property: Option<String>,
    properties: PluginProperties,
    /// Index (into the sorted property list) and name of each required
    /// property other than the id property.
    required: Vec<(usize, &'static str)>,
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
        let required = entries
            .iter()
            .enumerate()
            .filter(|(_, (name, optional, _))| !optional && Some(*name) != id_property.as_deref())
            .map(|(index, (name, _, _))| (index, *name))
            .collect();
        Self {
            type_name: type_name.into(),
            id_property,
            required,
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

    /// Looks up a property: its index in the sorted property list and its
    /// schema.
    pub(crate) fn lookup_index(&self, key: &str) -> Option<(usize, &'static Schema)> {
        self.properties
            .index_of(key)
            .map(|index| (index, self.properties.entries[index].2))
    }

    /// Number of known properties.
    pub(crate) fn property_count(&self) -> usize {
        self.properties.entries.len()
    }

    /// Required properties other than the id property: (index, name).
    pub(crate) fn required_properties(&self) -> &[(usize, &'static str)] {
        &self.required
    }
}

/// The flattened, sorted property list of a plugin.
struct PluginProperties {
    description: &'static str,
    entries: Vec<&'static SchemaPropertyEntry>,
    additional_properties: bool,
    default_key: Option<&'static str>,
}

impl PluginProperties {
    fn index_of(&self, key: &str) -> Option<usize> {
        self.entries
            .binary_search_by(|(name, _, _)| name.as_bytes().cmp(key.as_bytes()))
            .ok()
    }
}

impl ObjectSchemaType for PluginProperties {
    fn description(&self) -> &'static str {
        self.description
    }

    fn lookup(&self, key: &str) -> Option<(bool, &'static Schema)> {
        self.index_of(key)
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
