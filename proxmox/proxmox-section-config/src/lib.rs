//! Proxmox section-config files, mirroring the `proxmox-section-config` crate.
//!
//! A section config is a list of typed sections, each a header line and one
//! tab-indented `key value` line per property (shown with spaces here),
//! separated by blank lines:
//!
//! ```text
//! sync-key: nightly-offsite
//!     created 1775840036
//!     fingerprint 0e:ab:d4:46:...:9b
//!     kdf none
//!
//! sync-key: other
//!     ...
//! ```
//!
//! [`SectionConfig`] knows one [`SectionConfigPlugin`] per section type (its
//! name, the property that receives the section id, and the object schema of
//! the properties); [`SectionConfig::parse`] turns text into
//! [`SectionConfigData`] and [`SectionConfig::write`] turns it back into text.
//!
//! Parsing and writing match upstream byte for byte (the vectors in
//! `shared/vectors/section-config` pin this), with these deliberate
//! differences, all of which refuse input that upstream accepts:
//! - a section id defined twice is an error naming both lines (upstream lets
//!   the later one win and writes the section twice);
//! - a value containing a control character is refused when parsed (upstream
//!   refuses it only when writing);
//! - a line longer than [`MAX_LINE_LENGTH`] bytes is refused;
//! - the writer refuses a string value with leading or trailing whitespace,
//!   which the parser would trim, so data never changes in a round trip.
//!
//! Left out compared to upstream: custom header/content formatters, the typed
//! `SectionConfigData<T>` API and schema-driven property strings in values.
//!
//! Added beyond upstream's API (so that readers and writers of a large file
//! never build a JSON object per section):
//! - [`SectionConfig::parse_with`], which validates each section as `parse`
//!   does and hands it to a callback as a borrowed [`SectionRef`] (with its
//!   [`PropertyRef`]s); [`ESTIMATED_SECTION_SIZE`] to size tables for it;
//! - [`SectionConfig::scan`]: the same validation at close to memory
//!   speed, each section as a [`SectionSpan`] of the text (its id and
//!   text), which [`SectionConfig::read_validated`] reads again as a
//!   [`SectionRef`] when a caller wants its values, and
//!   [`SectionConfig::scan_with_ids`], which also hands on its duplicate
//!   check's table as a lookup by id ([`SectionIds`]), and
//!   [`SectionConfig::scan_places_with_ids`], the same with each section
//!   as its places in the text ([`SectionPlace`]), and
//!   [`SectionConfig::scan_as_written`], which also tells whether the text
//!   is byte for byte the write's own ([`Scanned`]);
//! - [`SectionRef::deserialize`] (module [`de`]): a section into any
//!   `Deserialize` type through that type's own serde code, as
//!   [`SectionConfigData::lookup`] would give it, without the JSON in between;
//! - [`SectionConfig::write_section`] and [`SectionConfig::write_section_ref`],
//!   which write one section as [`SectionConfig::write`] writes it, and
//!   [`is_canonical_integer`], the form it writes integers in;
//! - [`MAX_LINE_LENGTH`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod data;
pub mod de;
mod parse;
mod plugin;
mod scan;
mod write;

pub use data::SectionConfigData;
pub use parse::{ESTIMATED_SECTION_SIZE, PropertyRef, SectionRef};
pub use plugin::SectionConfigPlugin;
pub use scan::{FIND_CHUNK, Found, Scanned, SectionIds, SectionPlace, SectionSpan};
pub use write::is_canonical_integer;

use std::collections::HashMap;

use proxmox_schema::Schema;

/// Longest line the parser accepts, in bytes (1 MiB: far beyond any real
/// property, short of a file that is one huge line).
pub const MAX_LINE_LENGTH: usize = 1024 * 1024;

/// A section-config file format: the id schema plus one plugin per section type.
pub struct SectionConfig {
    plugins: HashMap<String, SectionConfigPlugin>,
    id_schema: &'static Schema,
    /// The id schema's check, for [`SectionConfig::scan`].
    id_check: plugin::ValueCheck,
}

impl SectionConfig {
    /// A format whose section ids must match `id_schema`.
    pub fn new(id_schema: &'static Schema) -> Self {
        Self {
            plugins: HashMap::new(),
            id_schema,
            id_check: plugin::ValueCheck::of(id_schema),
        }
    }

    /// Adds a section type.
    pub fn register_plugin(&mut self, plugin: SectionConfigPlugin) {
        self.plugins.insert(plugin.type_name().to_string(), plugin);
    }

    /// The registered section types.
    pub fn plugins(&self) -> &HashMap<String, SectionConfigPlugin> {
        &self.plugins
    }

    /// The schema section ids must match.
    pub fn id_schema(&self) -> &'static Schema {
        self.id_schema
    }

    pub(crate) fn id_check(&self) -> &plugin::ValueCheck {
        &self.id_check
    }
}
