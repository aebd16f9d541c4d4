//! [`KeyIndex`]: `encryption-keys.cfg` read into typed entries.
//!
//! Readers (list, show, load) use this instead of the generic
//! `SectionConfigData`: each validated section is deserialized straight
//! from its text through [`CryptKey`]'s own serde code
//! ([`SectionRef::deserialize`](proxmox_section_config::SectionRef::deserialize)),
//! the code the generic lookup runs on the section's JSON object, without
//! that object: a parse several times cheaper and a parsed config about
//! five times smaller (about 160 bytes per key). Writers edit
//! [`KeySections`](crate::KeySections) instead, which keeps the text.
//!
//! An entry the typed form cannot hold (an unknown `kdf`, as upstream's
//! parser accepts) is kept as an error for that id: listing fails, as
//! upstream's does, but every other key still loads.

use std::hash::BuildHasher;
use std::path::Path;

use anyhow::{Error, bail};
use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use proxmox_section_config::ESTIMATED_SECTION_SIZE;

use pbs_api_types::{CryptKey, Fingerprint};

use crate::KeystoreError;
use crate::encryption_keys::{CONFIG, ENCRYPTION_KEYS_CFG_TYPE_ID};

/// The typed entries of `encryption-keys.cfg`, in file order.
///
/// Each id is held once, in its entry: the lookup table holds positions
/// only.
#[derive(Default)]
pub struct KeyIndex {
    entries: Vec<Entry>,
    /// positions in `entries`, hashed by id (FxHash: ids come from the
    /// config file, not the network)
    positions: HashTable<usize>,
}

/// An entry, or the id and reason of one the typed form cannot hold.
type Entry = Result<CryptKey, InvalidEntry>;

#[derive(Debug)]
struct InvalidEntry {
    id: String,
    reason: String,
}

fn entry_id(entry: &Entry) -> &str {
    match entry {
        Ok(entry) => &entry.id,
        Err(invalid) => &invalid.id,
    }
}

fn hash_id(id: &str) -> u64 {
    FxBuildHasher.hash_one(id)
}

impl std::fmt::Debug for KeyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyIndex")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl KeyIndex {
    /// Parses config text (`path` only names the file in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, Error> {
        let mut index = KeyIndex::default();
        let estimate = text.len() / ESTIMATED_SECTION_SIZE;
        index.entries.reserve(estimate);
        index.positions.reserve(estimate, |_| 0);
        CONFIG.parse_with(path, text, |section| {
            if section.plugin.type_name() != ENCRYPTION_KEYS_CFG_TYPE_ID {
                return Ok(());
            }
            // CryptKey's own serde code, as the generic lookup runs it
            let entry = section
                .deserialize::<CryptKey>()
                .map_err(|err| InvalidEntry {
                    id: section.id.to_string(),
                    reason: err.to_string(),
                });
            // parse_with has refused duplicate ids: a plain insert is enough
            let entries = &index.entries;
            index
                .positions
                .insert_unique(hash_id(section.id), entries.len(), |&position| {
                    hash_id(entry_id(&entries[position]))
                });
            index.entries.push(entry);
            Ok(())
        })?;
        Ok(index)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The ids, in file order.
    pub fn ids(&self) -> impl ExactSizeIterator<Item = &str> {
        self.entries.iter().map(entry_id)
    }

    /// The entry of `id`.
    ///
    /// # Errors
    ///
    /// [`KeystoreError::NotFound`], or the reason the entry is invalid.
    pub fn get(&self, id: &str) -> Result<&CryptKey, Error> {
        let found = self
            .positions
            .find(hash_id(id), |&position| {
                entry_id(&self.entries[position]) == id
            })
            .map(|&position| &self.entries[position]);
        match found {
            Some(Ok(entry)) => Ok(entry),
            Some(Err(invalid)) => bail!(
                "invalid config entry for encryption key '{id}' - {}",
                invalid.reason
            ),
            None => Err(KeystoreError::NotFound { id: id.to_string() }.into()),
        }
    }

    /// Every entry, in file order.
    ///
    /// # Errors
    ///
    /// The first invalid entry, naming its id.
    pub fn entries(&self) -> Result<impl Iterator<Item = &CryptKey>, Error> {
        if let Some(Err(invalid)) = self.entries.iter().find(|entry| entry.is_err()) {
            bail!(
                "invalid config entry for encryption key '{}' - {}",
                invalid.id,
                invalid.reason
            );
        }
        Ok(self.entries.iter().filter_map(|entry| entry.as_ref().ok()))
    }

    /// Valid entries and, separately, the ids of invalid ones with the reason.
    pub fn partition(&self) -> (Vec<&CryptKey>, Vec<(&str, &str)>) {
        let mut valid = Vec::new();
        let mut invalid = Vec::new();
        for entry in &self.entries {
            match entry {
                Ok(entry) => valid.push(entry),
                Err(bad) => invalid.push((bad.id.as_str(), bad.reason.as_str())),
            }
        }
        (valid, invalid)
    }

    /// The id of the entry with this fingerprint, if any.
    pub fn find_fingerprint(&self, fingerprint: &Fingerprint) -> Option<&str> {
        self.entries
            .iter()
            .filter_map(|entry| entry.as_ref().ok())
            .find(|entry| entry.info.fingerprint.as_ref() == Some(fingerprint))
            .map(|entry| entry.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "sync-key: k-one\n\tcreated 1\n\tfingerprint 5f:8c:44:1a:ec:af:bd:7d:80:69:6e:0a:47:9b:00:5c:1b:0d:57:c4:92:ee:ba:f0:be:9e:bc:7c:9d:7f:ef:f6\n\tkdf none\n\tmodified 2\n\tpath /x/encryption-keys/k-one.enc\n\n\
        sync-key: k-two\n\tarchived-at 7\n\tcreated 3\n\thint the hint\n\tkdf aes-magic\n\tmodified 4\n\n\
        sync-key: k-three\n\tcreated 5\n\tkdf pbkdf2\n\tmodified 6\n";

    #[test]
    fn typed_entries_equal_serde_lookups() {
        let index = KeyIndex::parse(Path::new("test.cfg"), TEXT).unwrap();
        let data = CONFIG.parse("test.cfg", TEXT).unwrap();
        assert_eq!(
            index.ids().collect::<Vec<_>>(),
            ["k-one", "k-two", "k-three"]
        );
        for id in ["k-one", "k-three"] {
            let typed: CryptKey = data.lookup(ENCRYPTION_KEYS_CFG_TYPE_ID, id).unwrap();
            assert_eq!(index.get(id).unwrap(), &typed);
        }
        let serde_err = data
            .lookup::<CryptKey>(ENCRYPTION_KEYS_CFG_TYPE_ID, "k-two")
            .unwrap_err()
            .to_string();
        let ours = index.get("k-two").unwrap_err().to_string();
        assert!(ours.ends_with(&serde_err), "{ours} / {serde_err}");
        assert!(ours.contains("'k-two'"), "{ours}");
        assert!(index.entries().is_err());
        let (valid, invalid) = index.partition();
        assert_eq!((valid.len(), invalid.len()), (2, 1));
        let err = index.get("k-four").unwrap_err();
        assert!(matches!(
            err.downcast_ref::<KeystoreError>(),
            Some(KeystoreError::NotFound { .. })
        ));
    }
}
