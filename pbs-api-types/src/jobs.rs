//! Sync jobs ([`SyncJobConfig`]): upstream's complete property set, so a
//! real `sync.cfg` parses and every property can be created, shown and
//! changed, and the two properties that tie jobs to encryption keys.
//!
//! Each property is declared once, in [`SYNC_JOB_PROPERTIES`] (and the
//! struct beside it); the parameters of create and update, and the
//! properties update may delete, are derived from that list at compile
//! time, so a new property needs no second list anywhere.

use serde::{Deserialize, Serialize};

use anyhow::{Error, bail};

use proxmox_schema::{
    AllOfSchema, ApiStringFormat, ApiType, ArraySchema, BooleanSchema, EnumEntry, IntegerSchema,
    ObjectSchema, Schema, SchemaPropertyEntry, StringSchema, const_regex, str_less,
};

use crate::{
    Authid, CRYPT_KEY_ID_SCHEMA, DATASTORE_SCHEMA, JOB_ID_SCHEMA, PROXMOX_CONFIG_DIGEST_SCHEMA,
    REMOTE_ID_SCHEMA, SINGLE_LINE_COMMENT_SCHEMA,
};

/// Deepest namespace level.
pub const MAX_NAMESPACE_DEPTH: usize = 7;

const_regex! {
    /// A backup namespace: up to 8 safe-id components separated by `/`, or empty (the root).
    pub BACKUP_NAMESPACE_REGEX = concat!(
        r"^(?:", proxmox_schema::SAFE_ID_REGEX_STR!(), r"(?:/", proxmox_schema::SAFE_ID_REGEX_STR!(), r"){0,7})?$"
    );
    /// A group filter: `type:TYPE`, `group:TYPE/ID` or `regex:RE`, each
    /// optionally behind `include:` or `exclude:` (as upstream).
    pub GROUP_FILTER_REGEX = r"^(?:(?:exclude|include):)?(?:type:(?:vm|ct|host)|group:(?:vm|ct|host)/[^\s/\p{Cc}]+|regex:[^\p{Cc}]+)$";
    /// A byte size with optional unit (`100`, `10.5 MiB`, `1G`).
    pub HUMAN_BYTE_REGEX = r"^\d+(?:\.\d+)?\s*(?:[KMGTPE]i?B?|B)?$";
    /// A calendar event (not validated further than being a plain single line).
    pub CALENDAR_EVENT_REGEX = r"^[a-zA-Z0-9*,.:/~ \-]+$";
}

/// A backup namespace.
pub const BACKUP_NAMESPACE_SCHEMA: Schema = StringSchema::new("Namespace.")
    .format(&ApiStringFormat::Pattern(&BACKUP_NAMESPACE_REGEX))
    .max_length(MAX_NAMESPACE_DEPTH * 33 + 32)
    .schema();

/// How many levels of namespaces to sync.
pub const NS_MAX_DEPTH_REDUCED_SCHEMA: Schema =
    IntegerSchema::new("How many levels of namespaces should be operated on (0 == no recursion)")
        .minimum(0)
        .maximum(MAX_NAMESPACE_DEPTH as isize)
        .schema();

/// Whether to remove vanished backups.
pub const REMOVE_VANISHED_BACKUPS_SCHEMA: Schema = BooleanSchema::new(
    "Delete vanished backups. This remove the local copy if the remote backup was deleted.",
)
.default(false)
.schema();

/// Sync schedule.
pub const SYNC_SCHEDULE_SCHEMA: Schema = StringSchema::new("Run sync job at specified schedule.")
    .format(&ApiStringFormat::Pattern(&CALENDAR_EVENT_REGEX))
    .type_text("<calendar-event>")
    .schema();

/// One group filter.
pub const GROUP_FILTER_SCHEMA: Schema = StringSchema::new(
    "Group filter based on group identifier ('group:GROUP'), group type ('type:<vm|ct|host>'), \
     or regex ('regex:RE'). Can be inverted by prepending 'exclude:'; 'include:' is the default.",
)
.format(&ApiStringFormat::Pattern(&GROUP_FILTER_REGEX))
.type_text("[<exclude:|include:>]<type:<vm|ct|host>|group:GROUP|regex:RE>")
.schema();

/// List of group filters.
pub const GROUP_FILTER_LIST_SCHEMA: Schema =
    ArraySchema::new("List of group filters.", &GROUP_FILTER_SCHEMA).schema();

/// Limit to the last N snapshots.
pub const TRANSFER_LAST_SCHEMA: Schema =
    IntegerSchema::new("Limit transfer to last N snapshots (per group), skipping others")
        .minimum(1)
        .schema();

/// A rate or burst size in bytes (per second for rates).
pub const HUMAN_BYTE_SCHEMA: Schema = StringSchema::new(
    "Byte size with optional unit (B, KB (base 10), MB, GB, ..., KiB (base 2), MiB, Gib, ...).",
)
.format(&ApiStringFormat::Pattern(&HUMAN_BYTE_REGEX))
.schema();

/// Encryption keys associated with a job besides the active one.
pub const ASSOCIATED_KEYS_SCHEMA: Schema = ArraySchema::new(
    "Encryption keys associated with this job (kept for decrypting older backups).",
    &CRYPT_KEY_ID_SCHEMA,
)
.schema();

const BOOL_RESYNC_CORRUPT: Schema =
    BooleanSchema::new("If the verification failed for a local snapshot, try to pull it again.")
        .default(false)
        .schema();
const BOOL_ENCRYPTED_ONLY: Schema =
    BooleanSchema::new("Only synchronize encrypted backup snapshots, exclude others.")
        .default(false)
        .schema();
const BOOL_VERIFIED_ONLY: Schema =
    BooleanSchema::new("Only synchronize verified backup snapshots, exclude others.")
        .default(false)
        .schema();
const BOOL_RUN_ON_MOUNT: Schema =
    BooleanSchema::new("Run this job when a relevant datastore is mounted.")
        .default(false)
        .schema();
const BOOL_UNMOUNT_ON_DONE: Schema =
    BooleanSchema::new("Unmount the involved removable datastore after the sync job finishes.")
        .default(false)
        .schema();
const WORKER_THREADS_SCHEMA: Schema =
    IntegerSchema::new("Number of worker threads to process groups in parallel.")
        .minimum(1)
        .maximum(32)
        .default(1)
        .schema();
const ACTIVE_KEY_SCHEMA: Schema = StringSchema::new(
    "Encryption key used to encrypt what this job syncs (a key id of encryption-keys.cfg).",
)
.format(&crate::PROXMOX_SAFE_ID_FORMAT)
.min_length(3)
.max_length(32)
.schema();

/// Direction of a sync job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncDirection {
    /// Sync from a remote to a local datastore.
    #[default]
    Pull,
    /// Sync from a local datastore to a remote.
    Push,
}

impl ApiType for SyncDirection {
    const API_SCHEMA: Schema = StringSchema::new("Direction of the sync job, push or pull")
        .format(&ApiStringFormat::Enum(&[
            EnumEntry::new("pull", "Sync direction pull"),
            EnumEntry::new("push", "Sync direction push"),
        ]))
        .default("pull")
        .schema();
}

/// Rate and burst limits (flattened into the sync job).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RateLimitConfig {
    /// Rate limit for incoming traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_in: Option<String>,
    /// Burst size for incoming traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_in: Option<String>,
    /// Rate limit for outgoing traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_out: Option<String>,
    /// Burst size for outgoing traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst_out: Option<String>,
}

const RATE_LIMIT_PROPERTIES: [SchemaPropertyEntry; 4] = [
    ("burst-in", true, &HUMAN_BYTE_SCHEMA),
    ("burst-out", true, &HUMAN_BYTE_SCHEMA),
    ("rate-in", true, &HUMAN_BYTE_SCHEMA),
    ("rate-out", true, &HUMAN_BYTE_SCHEMA),
];

impl ApiType for RateLimitConfig {
    const API_SCHEMA: Schema =
        ObjectSchema::new("Rate Limit Configuration", &RATE_LIMIT_PROPERTIES).schema();
}

/// A sync job (`sync.cfg`, section type `sync`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SyncJobConfig {
    /// Job id.
    pub id: String,
    /// Local datastore.
    pub store: String,
    /// Local namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns: Option<String>,
    /// Owner of synced groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Authid>,
    /// Remote; `None` means a local sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Remote datastore.
    pub remote_store: String,
    /// Remote namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ns: Option<String>,
    /// Delete vanished backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_vanished: Option<bool>,
    /// Namespace recursion depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<usize>,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Schedule (calendar event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Group filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<Vec<String>>,
    /// Rate limits.
    #[serde(flatten)]
    pub limit: RateLimitConfig,
    /// Transfer only the last N snapshots per group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_last: Option<usize>,
    /// Re-sync snapshots whose verification failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_corrupt: Option<bool>,
    /// Sync only encrypted snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_only: Option<bool>,
    /// Sync only verified snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_only: Option<bool>,
    /// Run when the datastore is mounted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_on_mount: Option<bool>,
    /// Unmount the removable datastore when done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmount_on_done: Option<bool>,
    /// Pull or push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_direction: Option<SyncDirection>,
    /// Parallel group workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_threads: Option<usize>,
    /// The key this job encrypts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_encryption_key: Option<String>,
    /// Further keys this job may need to decrypt older backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associated_key: Option<Vec<String>>,
}

impl SyncJobConfig {
    /// Whether the job uses `key_id` as its active key.
    pub fn uses_as_active(&self, key_id: &str) -> bool {
        self.active_encryption_key.as_deref() == Some(key_id)
    }

    /// Whether the job lists `key_id` among its associated keys.
    pub fn is_associated(&self, key_id: &str) -> bool {
        self.associated_key
            .as_ref()
            .is_some_and(|keys| keys.iter().any(|k| k == key_id))
    }

    /// Every key the job names: the active key first, then the associated
    /// ones.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.active_encryption_key
            .iter()
            .chain(self.associated_key.iter().flatten())
            .map(String::as_str)
    }

    /// The direction, pull unless set (as upstream).
    pub fn direction(&self) -> SyncDirection {
        self.sync_direction.unwrap_or_default()
    }

    /// The owner of what the job syncs: `root@pam` unless set (as upstream).
    pub fn owner_or_root(&self) -> Authid {
        self.owner.clone().unwrap_or_else(Authid::root_auth_id)
    }

    /// The ACL path of the local side: `/datastore/STORE[/NS...]`.
    pub fn acl_path(&self) -> Vec<&str> {
        let mut path = vec!["datastore", self.store.as_str()];
        path.extend(namespace_components(self.ns.as_deref()));
        path
    }

    /// The ACL path of the remote side, `/remote/REMOTE/STORE[/NS...]`;
    /// `None` for a local job.
    pub fn remote_acl_path(&self) -> Option<Vec<&str>> {
        let remote = self.remote.as_deref()?;
        let mut path = vec!["remote", remote, self.remote_store.as_str()];
        path.extend(namespace_components(self.remote_ns.as_deref()));
        Some(path)
    }
}

/// The components of a namespace (none for the root, `None` or `""`).
fn namespace_components(ns: Option<&str>) -> impl Iterator<Item = &str> {
    ns.unwrap_or("").split('/').filter(|c| !c.is_empty())
}

/// Checks that namespace `ns` plus `max_depth` levels below it stay within
/// [`MAX_NAMESPACE_DEPTH`]; the error in upstream's words.
pub fn check_namespace_max_depth(ns: &str, max_depth: usize) -> Result<(), Error> {
    let ns_depth = namespace_components(Some(ns)).count();
    if ns_depth + max_depth > MAX_NAMESPACE_DEPTH {
        bail!(
            "namespace '{ns}'s depth and recursion depth exceed limit: {ns_depth} + {max_depth} > {MAX_NAMESPACE_DEPTH}"
        );
    }
    Ok(())
}

/// The job's own properties (the rate limits come from
/// [`RateLimitConfig`]), sorted by name.
const SYNC_JOB_OWN_PROPERTIES: [SchemaPropertyEntry; 22] = [
    ("active-encryption-key", true, &ACTIVE_KEY_SCHEMA),
    ("associated-key", true, &ASSOCIATED_KEYS_SCHEMA),
    ("comment", true, &SINGLE_LINE_COMMENT_SCHEMA),
    ("encrypted-only", true, &BOOL_ENCRYPTED_ONLY),
    ("group-filter", true, &GROUP_FILTER_LIST_SCHEMA),
    ("id", false, &JOB_ID_SCHEMA),
    ("max-depth", true, &NS_MAX_DEPTH_REDUCED_SCHEMA),
    ("ns", true, &BACKUP_NAMESPACE_SCHEMA),
    ("owner", true, &Authid::API_SCHEMA),
    ("remote", true, &REMOTE_ID_SCHEMA),
    ("remote-ns", true, &BACKUP_NAMESPACE_SCHEMA),
    ("remote-store", false, &DATASTORE_SCHEMA),
    ("remove-vanished", true, &REMOVE_VANISHED_BACKUPS_SCHEMA),
    ("resync-corrupt", true, &BOOL_RESYNC_CORRUPT),
    ("run-on-mount", true, &BOOL_RUN_ON_MOUNT),
    ("schedule", true, &SYNC_SCHEDULE_SCHEMA),
    ("store", false, &DATASTORE_SCHEMA),
    ("sync-direction", true, &SyncDirection::API_SCHEMA),
    ("transfer-last", true, &TRANSFER_LAST_SCHEMA),
    ("unmount-on-done", true, &BOOL_UNMOUNT_ON_DONE),
    ("verified-only", true, &BOOL_VERIFIED_ONLY),
    ("worker-threads", true, &WORKER_THREADS_SCHEMA),
];

const SYNC_JOB_OWN_SCHEMA: Schema =
    ObjectSchema::new("Sync Job", &SYNC_JOB_OWN_PROPERTIES).schema();

/// Every property of a sync job, sorted by name: the parameters of
/// creating one (`POST /config/sync`).
pub const SYNC_JOB_PROPERTIES: [SchemaPropertyEntry; 26] =
    merge_properties(SYNC_JOB_OWN_PROPERTIES, RATE_LIMIT_PROPERTIES);

/// How many properties of a sync job are optional: those an update may
/// delete.
const DELETABLE_COUNT: usize = count_optional(&SYNC_JOB_PROPERTIES);

/// The properties an update may delete: every optional one (upstream's
/// `DeletableProperty`, which lacks only `resync-corrupt`).
pub const SYNC_JOB_DELETABLE_PROPERTIES: [EnumEntry; DELETABLE_COUNT] =
    deletable_properties(&SYNC_JOB_PROPERTIES);

/// One property an update deletes.
pub const SYNC_JOB_DELETABLE_PROPERTY_SCHEMA: Schema =
    StringSchema::new("A property to delete (to reset it to its default).")
        .format(&ApiStringFormat::Enum(&SYNC_JOB_DELETABLE_PROPERTIES))
        .schema();

/// `delete`: the properties an update deletes, before it sets the given
/// ones.
pub const SYNC_JOB_DELETE_SCHEMA: Schema = ArraySchema::new(
    "List of properties to delete.",
    &SYNC_JOB_DELETABLE_PROPERTY_SCHEMA,
)
.schema();

/// The parameters of updating a sync job (`PUT /config/sync/{id}`): `id`,
/// every other property optional, `delete` and `digest`, sorted by name.
pub const SYNC_JOB_UPDATE_PROPERTIES: [SchemaPropertyEntry; 28] = merge_properties(
    all_optional_but_id(SYNC_JOB_PROPERTIES),
    [
        ("delete", true, &SYNC_JOB_DELETE_SCHEMA),
        ("digest", true, &PROXMOX_CONFIG_DIGEST_SCHEMA),
    ],
);

/// `a` and `b`, each sorted by name, merged into one sorted list; `N` must
/// be their total length, or the constant using it does not compile.
const fn merge_properties<const A: usize, const B: usize, const N: usize>(
    a: [SchemaPropertyEntry; A],
    b: [SchemaPropertyEntry; B],
) -> [SchemaPropertyEntry; N] {
    assert!(A + B == N, "merge_properties: N must be the total length");
    let mut out = [("", true, &Schema::Null); N];
    let (mut i, mut j, mut k) = (0, 0, 0);
    while k < N {
        let take_a = j == B || (i < A && str_less(a[i].0, b[j].0));
        out[k] = if take_a { a[i] } else { b[j] };
        if take_a {
            i += 1;
        } else {
            j += 1;
        }
        k += 1;
    }
    out
}

const fn str_eq(a: &str, b: &str) -> bool {
    !str_less(a, b) && !str_less(b, a)
}

/// `properties` with every property but `id` optional.
const fn all_optional_but_id<const N: usize>(
    mut properties: [SchemaPropertyEntry; N],
) -> [SchemaPropertyEntry; N] {
    let mut i = 0;
    while i < N {
        properties[i].1 = !str_eq(properties[i].0, "id");
        i += 1;
    }
    properties
}

const fn count_optional(properties: &[SchemaPropertyEntry]) -> usize {
    let (mut i, mut count) = (0, 0);
    while i < properties.len() {
        if properties[i].1 {
            count += 1;
        }
        i += 1;
    }
    count
}

/// The names of the optional `properties`, each with its description.
const fn deletable_properties<const M: usize>(
    properties: &[SchemaPropertyEntry],
) -> [EnumEntry; M] {
    let mut out = [const { EnumEntry::new("", "") }; M];
    let (mut i, mut k) = (0, 0);
    while i < properties.len() {
        if properties[i].1 {
            out[k] = EnumEntry::new(properties[i].0, schema_description(properties[i].2));
            k += 1;
        }
        i += 1;
    }
    assert!(
        k == M,
        "deletable_properties: M must be the number of optional properties"
    );
    out
}

const fn schema_description(schema: &Schema) -> &'static str {
    match schema {
        Schema::Null => "",
        Schema::Boolean(s) => s.description,
        Schema::Integer(s) => s.description,
        Schema::Number(s) => s.description,
        Schema::String(s) => s.description,
        Schema::Object(s) => s.description,
        Schema::Array(s) => s.description,
        Schema::AllOf(s) => s.description,
    }
}

impl ApiType for SyncJobConfig {
    const API_SCHEMA: Schema = AllOfSchema::new(
        "Sync Job",
        &[&SYNC_JOB_OWN_SCHEMA, &RateLimitConfig::API_SCHEMA],
    )
    .schema();
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn full_sync_job_verifies_and_deserializes() {
        let value = json!({
            "id": "s-offsite",
            "store": "local1",
            "ns": "a/b",
            "owner": "sync@pbs!job",
            "remote": "remote1",
            "remote-store": "store2",
            "remote-ns": "",
            "remove-vanished": true,
            "max-depth": 3,
            "comment": "nightly, to the other site",
            "schedule": "*:0/15",
            "group-filter": ["type:vm", "exclude:group:ct/100", "include:regex:^host/.*$"],
            "rate-in": "10 MiB",
            "burst-in": "20MiB",
            "rate-out": "1G",
            "burst-out": "100",
            "transfer-last": 5,
            "resync-corrupt": false,
            "encrypted-only": true,
            "verified-only": false,
            "run-on-mount": false,
            "unmount-on-done": false,
            "sync-direction": "push",
            "worker-threads": 4,
            "active-encryption-key": "offsite-2025",
            "associated-key": ["legacy-2024", "tape.sync_01"],
        });
        SyncJobConfig::API_SCHEMA.verify_json(&value).unwrap();
        let job: SyncJobConfig = serde_json::from_value(value.clone()).unwrap();
        assert!(job.uses_as_active("offsite-2025"));
        assert!(job.is_associated("tape.sync_01"));
        assert!(!job.is_associated("offsite-2025"));
        assert_eq!(serde_json::to_value(&job).unwrap(), value);
    }

    #[test]
    fn derived_property_lists_follow_the_one_list() {
        use proxmox_schema::ObjectSchemaType;
        // every property of the type, once, sorted, as the struct has them
        let all: Vec<&str> = SyncJobConfig::API_SCHEMA
            .unwrap_all_of_schema()
            .properties()
            .map(|(name, _, _)| *name)
            .collect();
        let mut sorted = all.clone();
        sorted.sort();
        let listed: Vec<&str> = SYNC_JOB_PROPERTIES.iter().map(|p| p.0).collect();
        assert_eq!(listed, sorted);
        // the update: id required, everything else optional, plus delete
        // and digest, still sorted (ObjectSchema::new checks that too)
        let update = ObjectSchema::new("update", &SYNC_JOB_UPDATE_PROPERTIES);
        for (name, optional, _) in update.properties.iter() {
            assert_eq!(*optional, *name != "id", "{name}");
        }
        assert!(update.lookup("delete").is_some() && update.lookup("digest").is_some());
        assert_eq!(update.properties.len(), SYNC_JOB_PROPERTIES.len() + 2);
        // deletable: the optional ones, never id, store, remote-store
        let deletable: Vec<&str> = SYNC_JOB_DELETABLE_PROPERTIES
            .iter()
            .map(|e| e.value)
            .collect();
        assert!(deletable.contains(&"active-encryption-key"));
        assert!(deletable.contains(&"burst-out"));
        for required in ["id", "store", "remote-store"] {
            assert!(!deletable.contains(&required), "{required}");
        }
        assert_eq!(deletable.len(), SYNC_JOB_PROPERTIES.len() - 3);
    }

    #[test]
    fn acl_paths_and_namespace_depth_as_upstream() {
        let mut job: SyncJobConfig = serde_json::from_value(json!({
            "id": "job1", "store": "local", "remote-store": "store2", "ns": "a/b",
        }))
        .unwrap();
        assert_eq!(job.acl_path(), ["datastore", "local", "a", "b"]);
        assert_eq!(job.remote_acl_path(), None);
        job.remote = Some("pbs2".into());
        job.remote_ns = Some("".into());
        assert_eq!(job.remote_acl_path().unwrap(), ["remote", "pbs2", "store2"]);
        assert_eq!(job.direction(), SyncDirection::Pull);
        assert_eq!(job.owner_or_root(), Authid::root_auth_id());
        check_namespace_max_depth("a/b", 5).unwrap();
        let err = check_namespace_max_depth("a/b", 6).unwrap_err();
        assert_eq!(
            err.to_string(),
            "namespace 'a/b's depth and recursion depth exceed limit: 2 + 6 > 7"
        );
        check_namespace_max_depth("", 7).unwrap();
    }

    #[test]
    fn bad_sync_job_values_are_refused() {
        for (key, value) in [
            ("max-depth", json!(8)),
            ("sync-direction", json!("sideways")),
            ("group-filter", json!(["type:disk"])),
            ("active-encryption-key", json!("../x")),
            ("ns", json!("a//b")),
            ("rate-in", json!("fast")),
        ] {
            let mut job = json!({"id": "job1", "store": "st1", "remote-store": "st2"});
            job[key] = value;
            let err = SyncJobConfig::API_SCHEMA.verify_json(&job).unwrap_err();
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }
}
