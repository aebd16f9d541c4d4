//! A verified copy of keys, as an administrator makes one: an export bundle
//! of them that passed the restore drill (`export-verify`), which the audit
//! log records. Shared by the integration and UI tests (`#[path]`).

use pbs_config::ConfigDir;
use pbs_config::export::ExportSelection;
use pbs_key_config::bundle::BundleSecret;
use pbs_keystore::api2::config::encryption_key_export::{Recipients, export_keys, verify_bundle};

/// The passphrase of the bundles made here.
pub const PASSPHRASE: &[u8] = b"a copy kept off the host";

/// An export bundle of the keys `ids`, opened by [`PASSPHRASE`].
pub fn export_bundle(dir: &ConfigDir, ids: &[&str]) -> String {
    let selection = ExportSelection::Ids(ids.iter().map(|id| id.to_string()).collect());
    let recipients = Recipients {
        passphrase: Some(PASSPHRASE.to_vec()),
        master_pubkeys: Vec::new(),
    };
    export_keys(dir, &selection, &recipients, &|_| Ok(()))
        .unwrap()
        .bundle
}

/// A verified copy of the keys `ids`: their bundle, through the drill.
pub fn prove_copies(dir: &ConfigDir, ids: &[&str]) {
    let bundle = export_bundle(dir, ids);
    verify_bundle(
        dir,
        bundle.as_bytes(),
        &BundleSecret::Passphrase(PASSPHRASE),
    )
    .unwrap();
}
