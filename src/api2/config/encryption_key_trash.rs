//! `/config/encryption-key-trash` (beyond upstream): the key store's trash
//! (`pbs_config::trash`): list, restore, purge.
//!
//! A path of its own beside `/config/encryption-keys`, not below it: every
//! name below that is a key id, and `trash` is a valid one (DESIGN.md §6).
//! Items are named by a trash entry's name (`<id>@<epoch>-<random>`, never
//! a key id) or by the key id it had, if that id is in the trash once.
//!
//! The trash holds keys no longer in the store, so its privileges are on
//! the store as a whole (`/system/encryption-keys`): Sys.Audit to list,
//! Sys.Modify to restore (which creates a key, as create does) and to
//! purge. A trashed key keeps the privileges of the id it had: the list
//! leaves out entries the caller may not see, restore and purge by name
//! need Sys.Modify on that id too, and a restore on the id it restores the
//! key as (findings 30, 37 and 43). As for every route, the plain functions serve the CLI, which
//! calls them as the administrator.

use anyhow::Error;

use proxmox_router::{ApiMethod, ReturnType, Router};
use proxmox_schema::{
    ApiStringFormat, ArraySchema, BooleanSchema, ObjectSchema, Schema, StringSchema, param_bail,
};

use pbs_api_types::{CRYPT_KEY_ID_SCHEMA, CryptKey};
use pbs_config::ConfigDir;
use pbs_config::trash::{PurgeReport, TrashListing};

use super::{KeyAccess, STORE_AUDIT, STORE_MODIFY};
use crate::api2::config::encryption_keys::{CRYPT_KEY_RETURN_SCHEMA, WITHOUT_VERIFIED_COPY_SCHEMA};
use crate::api2::described_object;
use crate::api2::{param_str, required_str};
use crate::server::environment::RestEnvironment;

/// `name`: a trash entry's name, or the key id it had.
pub const TRASH_NAME_SCHEMA: Schema = StringSchema::new(
    "A trash entry's name (<id>@<epoch>-<random>), or the key id it had if that id is in the \
     trash once.",
)
.format(&ApiStringFormat::VerifyFn(
    pbs_config::trash::check_selector,
))
.max_length(64)
.schema();

/// `expired`: only entries whose keep time is over.
pub const EXPIRED_SCHEMA: Schema = BooleanSchema::new(
    "Only entries whose purge-after date has come (never those repair put there).",
)
.schema();

const TRASH_ENTRY_SCHEMA: Schema = described_object(
    "A trash entry: name, id, fingerprint, entry (the config entry it had), reason, time, actor, \
     purge-after, verified-copy (when an export-verify last proved a copy of its key; absent if \
     never).",
);

const TRASH_LIST_SCHEMA: Schema = ArraySchema::new(
    "The complete entries of the trash, oldest first.",
    &TRASH_ENTRY_SCHEMA,
)
.schema();

const ENTRY_ACCESS: &str = "and Sys.Modify on /system/encryption-keys/{id}, the id the key had \
     (the part of the name before '@'), checked by the handler";

const RESTORE_ACCESS: &str = "and Sys.Modify on /system/encryption-keys/{id}, the id the key had \
     (the part of the name before '@') and the id it is restored as, checked by the handler";

const PURGE_REPORT_SCHEMA: Schema = described_object(
    "What a purge did: purged (the entries destroyed) and kept-without-copy (expired entries kept \
     because no verified copy of their key is recorded), each entry name, id, fingerprint.",
);

fn check_as(as_id: Option<&str>) -> Result<(), Error> {
    if let Some(id) = as_id
        && let Err(err) = pbs_config::encryption_keys::check_key_id(id)
    {
        param_bail!("as", "{err}");
    }
    Ok(())
}

/// Sys.Modify on the key `name` names (`/system/encryption-keys/<id it
/// had>`), besides the store's: a trashed key keeps the privilege of its
/// id, so a caller masked on a key (as for its export) neither restores
/// it, under any id, nor destroys it (finding 30).
fn check_entry_privilege(env: &RestEnvironment, name: &str) -> Result<(), Error> {
    check_name(name)?;
    KeyAccess::of(env)?.check_modify([pbs_config::trash::entry_id(name)])
}

fn check_name(name: &str) -> Result<(), Error> {
    if let Err(err) = pbs_config::trash::check_selector(name) {
        param_bail!("name", "{err}");
    }
    Ok(())
}

/// The trash: complete entries, and the names of incomplete ones (left by
/// an interrupted operation; `verify` explains them).
pub fn list_trash(dir: &ConfigDir) -> Result<TrashListing, Error> {
    dir.encryption_keys().trash().list()
}

/// Parameters of `GET /config/encryption-key-trash`.
pub const API_METHOD_LIST_TRASH_PARAMETERS: ObjectSchema =
    ObjectSchema::new("List the keys in the trash.", &[]);

/// `GET /config/encryption-key-trash`: [`list_trash`]'s complete entries
/// of the keys the caller may see (finding 37).
pub const API_METHOD_LIST_TRASH: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |_, env| {
        let access = KeyAccess::of(env)?;
        let mut entries = list_trash(env.dir())?.entries;
        entries.retain(|entry| access.may_see(&entry.record.id));
        entries
    }),
    &API_METHOD_LIST_TRASH_PARAMETERS,
)
.returns(ReturnType::new(false, &TRASH_LIST_SCHEMA))
.access(
    Some("the list holds only entries of ids with Sys.Audit on `/system/encryption-keys/{id}`"),
    &STORE_AUDIT,
);

/// Puts the key `name` names back into the store, as `as_id` or as the id
/// it had (refused if the id or the fingerprint is taken).
pub fn restore_from_trash(
    dir: &ConfigDir,
    name: &str,
    as_id: Option<&str>,
) -> Result<CryptKey, Error> {
    check_name(name)?;
    check_as(as_id)?;
    dir.encryption_keys().trash().restore(name, as_id)
}

/// Parameters of `POST /config/encryption-key-trash/{name}/restore`.
pub const API_METHOD_RESTORE_FROM_TRASH_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Put a key from the trash back into the store.",
    &[
        ("as", true, &CRYPT_KEY_ID_SCHEMA),
        ("name", false, &TRASH_NAME_SCHEMA),
    ],
);

/// `POST /config/encryption-key-trash/{name}/restore`:
/// [`restore_from_trash`]; answers the restored key's metadata.
pub const API_METHOD_RESTORE_FROM_TRASH: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        let dir = env.dir();
        let name = required_str(&param, "name")?;
        check_entry_privilege(env, name)?;
        let as_id = param_str(&param, "as");
        let access = KeyAccess::of(env)?;
        if let Some(id) = as_id {
            // the id it is stored under, as a restore of a bundle asks
            // (finding 43): the refusal of a taken id tells its key
            access.check_modify([id])?;
        }
        // a key stored already names its id (finding 50)
        restore_from_trash(dir, name, as_id).map_err(|err| access.withhold(err))?
    }),
    &API_METHOD_RESTORE_FROM_TRASH_PARAMETERS,
)
.returns(ReturnType::new(false, &CRYPT_KEY_RETURN_SCHEMA))
.access(Some(RESTORE_ACCESS), &STORE_MODIFY);

/// Destroys trashed keys: the entry `name` names, or with `expired` every
/// entry whose purge date has come (of that name's id only, with a name).
/// A key of which no verified copy is recorded is destroyed only by name
/// and with `without_verified_copy`; a purge of what expired keeps it.
pub fn purge_trash(
    dir: &ConfigDir,
    name: Option<&str>,
    expired: bool,
    without_verified_copy: bool,
) -> Result<PurgeReport, Error> {
    if let Some(name) = name {
        check_name(name)?;
    }
    if expired && without_verified_copy {
        param_bail!(
            "without-verified-copy",
            "not with expired: name the entry to destroy a key without a verified copy"
        );
    }
    let now = expired.then(proxmox_time::epoch_i64);
    dir.encryption_keys()
        .trash()
        .purge(name, now, without_verified_copy)
}

/// Parameters of `DELETE /config/encryption-key-trash/{name}`.
pub const API_METHOD_PURGE_TRASH_ENTRY_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Destroy a key in the trash.",
    &[
        ("expired", true, &EXPIRED_SCHEMA),
        ("name", false, &TRASH_NAME_SCHEMA),
        ("without-verified-copy", true, &WITHOUT_VERIFIED_COPY_SCHEMA),
    ],
);

/// `DELETE /config/encryption-key-trash/{name}`: [`purge_trash`] of one
/// entry (or, with `expired`, of that id's expired entries).
pub const API_METHOD_PURGE_TRASH_ENTRY: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        let dir = env.dir();
        let name = required_str(&param, "name")?;
        check_entry_privilege(env, name)?;
        let expired = param["expired"].as_bool().unwrap_or(false);
        let anyway = param["without-verified-copy"].as_bool().unwrap_or(false);
        purge_trash(dir, Some(name), expired, anyway)?
    }),
    &API_METHOD_PURGE_TRASH_ENTRY_PARAMETERS,
)
.returns(ReturnType::new(false, &PURGE_REPORT_SCHEMA))
.access(Some(ENTRY_ACCESS), &STORE_MODIFY);

/// Parameters of `DELETE /config/encryption-key-trash`.
pub const API_METHOD_PURGE_EXPIRED_PARAMETERS: ObjectSchema = ObjectSchema::new(
    "Destroy every key in the trash whose keep time is over.",
    &[("expired", false, &EXPIRED_SCHEMA)],
);

/// `DELETE /config/encryption-key-trash`: [`purge_trash`] of what expired
/// (`expired` must be given, and true: one entry is purged at its own path).
pub const API_METHOD_PURGE_EXPIRED: ApiMethod = ApiMethod::new(
    handler!(SerializingSync, |param, env| {
        let dir = env.dir();
        if param["expired"].as_bool() != Some(true) {
            param_bail!(
                "expired",
                "only what expired is purged here (expired=1); purge one entry at \
                 /config/encryption-key-trash/{{name}}"
            );
        }
        let access = KeyAccess::of(env)?;
        let mut report = purge_trash(dir, None, true, false)?;
        // what it did to keys the caller may not see is done, not told
        for entries in [&mut report.purged, &mut report.kept_without_copy] {
            entries.retain(|entry| access.may_see(&entry.id));
        }
        report
    }),
    &API_METHOD_PURGE_EXPIRED_PARAMETERS,
)
.returns(ReturnType::new(false, &PURGE_REPORT_SCHEMA))
.access(None, &STORE_MODIFY);

const RESTORE_ROUTER: Router = Router::new().post(&API_METHOD_RESTORE_FROM_TRASH);

const ITEM_ROUTER: Router = Router::new()
    .delete(&API_METHOD_PURGE_TRASH_ENTRY)
    .subdirs(&[("restore", &RESTORE_ROUTER)]);

/// The routes of `/config/encryption-key-trash`.
pub const ROUTER: Router = Router::new()
    .get(&API_METHOD_LIST_TRASH)
    .delete(&API_METHOD_PURGE_EXPIRED)
    .match_all("name", &ITEM_ROUTER);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api2::test_util::{param_names, temp_config_dir};

    #[test]
    fn bad_parameters_name_the_parameter() {
        let (_tmp, dir) = temp_config_dir();
        assert_eq!(
            param_names(&restore_from_trash(&dir, "../x", None).unwrap_err()),
            ["name"]
        );
        assert_eq!(
            param_names(&restore_from_trash(&dir, "k-one", Some("a b")).unwrap_err()),
            ["as"]
        );
        assert_eq!(
            param_names(&purge_trash(&dir, Some("x@1"), false, false).unwrap_err()),
            ["name"]
        );
        // a trash name is not a key id, but a valid name here
        assert!(
            TRASH_NAME_SCHEMA
                .parse_simple_value("k-one@1795966067-Qf4gnl")
                .is_ok()
        );
        assert!(
            CRYPT_KEY_ID_SCHEMA
                .parse_simple_value("k-one@1795966067-Qf4gnl")
                .is_err()
        );
    }
}
