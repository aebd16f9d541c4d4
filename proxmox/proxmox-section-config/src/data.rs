//! [`SectionConfigData`]: the parsed sections and their order.

use std::collections::HashMap;

use anyhow::{Error, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Parsed sections: id → (type name, properties as a JSON object), plus the
/// order in which the ids appeared (and new ones were added).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SectionConfigData {
    /// Section id → (section type, properties).
    pub sections: HashMap<String, (String, Value)>,
    /// Section ids in file order; ids added by [`set_data`](Self::set_data)
    /// are appended. The writer skips ids no longer in `sections`.
    pub order: Vec<String>,
}

impl SectionConfigData {
    /// An empty config.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces section `section_id` of type `type_name` with the
    /// serialized `config`. A new id is appended to the order.
    pub fn set_data<T: Serialize>(
        &mut self,
        section_id: &str,
        type_name: &str,
        config: T,
    ) -> Result<(), Error> {
        let json = serde_json::to_value(config)?;
        let previous = self
            .sections
            .insert(section_id.to_string(), (type_name.to_string(), json));
        if previous.is_none() && !self.order.iter().any(|id| id == section_id) {
            self.order.push(section_id.to_string());
        }
        Ok(())
    }

    /// Removes section `section_id`, returning its type and properties.
    pub fn remove(&mut self, section_id: &str) -> Option<(String, Value)> {
        let removed = self.sections.remove(section_id);
        if removed.is_some() {
            self.order.retain(|id| id != section_id);
        }
        removed
    }

    /// Appends `section_id` to the order (used by the parser).
    pub fn record_order(&mut self, section_id: &str) {
        self.order.push(section_id.to_string());
    }

    /// The properties of section `id`, which must be of type `type_name`.
    pub fn lookup_json(&self, type_name: &str, id: &str) -> Result<Value, Error> {
        self.section(type_name, id).cloned()
    }

    /// Section `id` of type `type_name`, deserialized. A deserialization
    /// error is passed on as serde reports it.
    pub fn lookup<T: DeserializeOwned>(&self, type_name: &str, id: &str) -> Result<T, Error> {
        Ok(T::deserialize(self.section(type_name, id)?)?)
    }

    fn section(&self, type_name: &str, id: &str) -> Result<&Value, Error> {
        match self.sections.get(id) {
            Some((section_type, config)) if section_type == type_name => Ok(config),
            Some((section_type, _)) => {
                bail!("got unexpected type '{section_type}' for {type_name} '{id}'")
            }
            None => bail!("no such {type_name} '{id}'"),
        }
    }

    /// Ids of the sections of type `type_name`, in order.
    pub fn ids_of_type<'a>(&'a self, type_name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.ordered_ids().filter(move |id| {
            self.sections
                .get(*id)
                .is_some_and(|(section_type, _)| section_type == type_name)
        })
    }

    /// All section ids in write order: `order` first (skipping removed ids),
    /// then any others sorted by id.
    pub fn ordered_ids(&self) -> impl Iterator<Item = &str> {
        let mut rest: Vec<&str> = Vec::new();
        if self.order.len() != self.sections.len() {
            let ordered: std::collections::HashSet<&str> =
                self.order.iter().map(String::as_str).collect();
            rest = self
                .sections
                .keys()
                .map(String::as_str)
                .filter(|id| !ordered.contains(id))
                .collect();
            rest.sort_unstable();
        }
        let mut seen = std::collections::HashSet::new();
        self.order
            .iter()
            .map(String::as_str)
            .filter(|id| self.sections.contains_key(*id))
            .filter(move |id| seen.insert(*id))
            .chain(rest)
    }

    /// All sections of type `type_name` as a JSON array of objects, in order,
    /// with the id added as `id_prop` if given.
    pub fn convert_to_array(&self, type_name: &str, id_prop: Option<&str>) -> Value {
        let list = self
            .ids_of_type(type_name)
            .map(|id| {
                let mut data = self.sections[id].1.clone();
                if let (Some(id_prop), Some(object)) = (id_prop, data.as_object_mut()) {
                    object.insert(id_prop.to_string(), Value::from(id));
                }
                data
            })
            .collect();
        Value::Array(list)
    }

    /// All sections of type `type_name`, deserialized, in order.
    pub fn convert_to_typed_array<T: DeserializeOwned>(
        &self,
        type_name: &str,
    ) -> Result<Vec<T>, Error> {
        self.ids_of_type(type_name)
            .map(|id| Ok(T::deserialize(&self.sections[id].1)?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn set_data_appends_new_ids_once() {
        let mut data = SectionConfigData::new();
        data.set_data("b", "t", json!({"x": 1})).unwrap();
        data.set_data("a", "t", json!({"x": 2})).unwrap();
        data.set_data("b", "t", json!({"x": 3})).unwrap();
        assert_eq!(data.order, vec!["b", "a"]);
        assert_eq!(data.lookup_json("t", "b").unwrap(), json!({"x": 3}));
    }

    #[test]
    fn lookup_errors_name_type_and_id() {
        let mut data = SectionConfigData::new();
        data.set_data("a", "t", json!({})).unwrap();
        assert_eq!(
            data.lookup_json("t", "zz").unwrap_err().to_string(),
            "no such t 'zz'"
        );
        assert_eq!(
            data.lookup::<Value>("u", "a").unwrap_err().to_string(),
            "got unexpected type 't' for u 'a'"
        );
    }

    #[test]
    fn ordered_ids_skip_removed_and_append_unordered() {
        let mut data = SectionConfigData::new();
        data.sections.insert("z".into(), ("t".into(), json!({})));
        data.sections.insert("y".into(), ("t".into(), json!({})));
        data.sections.insert("x".into(), ("u".into(), json!({})));
        data.order = vec!["x".into(), "gone".into()];
        let ids: Vec<&str> = data.ordered_ids().collect();
        assert_eq!(ids, vec!["x", "y", "z"]);
        let typed: Vec<&str> = data.ids_of_type("t").collect();
        assert_eq!(typed, vec!["y", "z"]);
    }
}
