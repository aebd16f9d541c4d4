//! Users, API tokens and ACL entries as `user.cfg` and `acl.cfg` store them:
//! [`User`], [`ApiToken`], [`AclListItem`] and their schemas.

use serde::{Deserialize, Serialize};

use proxmox_schema::{
    ApiStringFormat, ApiType, BooleanSchema, IntegerSchema, ObjectSchema, Schema, StringSchema,
    const_regex,
};
use proxmox_time::epoch_i64;

use crate::{Authid, CONFIG_TEXT_FORMAT, PROXMOX_USER_ID_SCHEMA, Userid};

/// `enable`: whether the account or token may log in (default: yes).
pub const ENABLE_USER_SCHEMA: Schema = BooleanSchema::new(
    "Enable the account (default). You can set this to '0' to disable the account.",
)
.default(true)
.schema();

/// `expire`: account or token expiry (epoch; 0 = never).
pub const EXPIRE_USER_SCHEMA: Schema = IntegerSchema::new(
    "Account expiration date (seconds since epoch). '0' means no expiration date.",
)
.default(0)
.minimum(0)
.schema();

/// `firstname`.
pub const FIRST_NAME_SCHEMA: Schema = StringSchema::new("First name.")
    .format(&CONFIG_TEXT_FORMAT)
    .min_length(2)
    .max_length(64)
    .schema();

/// `lastname`.
pub const LAST_NAME_SCHEMA: Schema = StringSchema::new("Last name.")
    .format(&CONFIG_TEXT_FORMAT)
    .min_length(2)
    .max_length(64)
    .schema();

/// `email`.
pub const EMAIL_SCHEMA: Schema = StringSchema::new("E-Mail Address.")
    .format(&CONFIG_TEXT_FORMAT)
    .min_length(2)
    .max_length(64)
    .schema();

/// `comment` of a user or token: one line, kept exactly in the config.
pub const USER_COMMENT_SCHEMA: Schema = StringSchema::new("Comment.")
    .format(&CONFIG_TEXT_FORMAT)
    .max_length(128)
    .schema();

/// A password as a login gives it: no control characters, 1 to 1024
/// bytes (the bound keeps hashing cost and request size small). A login
/// may send a ticket as its password.
pub const PASSWORD_SCHEMA: Schema = StringSchema::new("Password.")
    .format(&proxmox_schema::api_types::PASSWORD_FORMAT)
    .min_length(1)
    .max_length(1024)
    .schema();

/// A password a `pbs` realm user is given: 5 to 64 characters, no control
/// characters (upstream's `PBS_PASSWORD_SCHEMA`).
pub const PBS_PASSWORD_SCHEMA: Schema = StringSchema::new("User Password.")
    .format(&proxmox_schema::api_types::PASSWORD_FORMAT)
    .min_length(5)
    .max_length(64)
    .schema();

/// The auth id (user or token id) of a section in `user.cfg`.
pub const PROXMOX_AUTH_ID_SCHEMA: Schema = Authid::API_SCHEMA;

/// A user as `user.cfg` stores it (section type `user`, id property
/// `userid`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user id.
    pub userid: Userid,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Whether the account is enabled (absent: yes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable: Option<bool>,
    /// Expiry (epoch; absent or 0: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire: Option<i64>,
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firstname: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lastname: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl ApiType for User {
    const API_SCHEMA: Schema = ObjectSchema::new(
        "User properties.",
        &[
            ("comment", true, &USER_COMMENT_SCHEMA),
            ("email", true, &EMAIL_SCHEMA),
            ("enable", true, &ENABLE_USER_SCHEMA),
            ("expire", true, &EXPIRE_USER_SCHEMA),
            ("firstname", true, &FIRST_NAME_SCHEMA),
            ("lastname", true, &LAST_NAME_SCHEMA),
            ("userid", false, &PROXMOX_USER_ID_SCHEMA),
        ],
    )
    .schema();
}

/// Whether an account with these `enable` and `expire` values may log in at
/// `now` (epoch), as upstream decides it.
pub fn is_active_at(enable: Option<bool>, expire: Option<i64>, now: i64) -> bool {
    if !enable.unwrap_or(true) {
        return false;
    }
    match expire {
        Some(expire) if expire > 0 => now < expire,
        _ => true,
    }
}

impl User {
    /// A user with only its id set (enabled, never expires).
    pub fn new(userid: Userid) -> Self {
        Self {
            userid,
            comment: None,
            enable: None,
            expire: None,
            firstname: None,
            lastname: None,
            email: None,
        }
    }

    /// Enabled and not expired now.
    pub fn is_active(&self) -> bool {
        is_active_at(self.enable, self.expire, epoch_i64())
    }
}

/// An API token as `user.cfg` stores it (section type `token`, id property
/// `tokenid`). Its secret is kept apart, hashed, in `token.shadow`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// The token id (`user@realm!name`).
    pub tokenid: Authid,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Whether the token is enabled (absent: yes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable: Option<bool>,
    /// Expiry (epoch; absent or 0: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire: Option<i64>,
}

/// `tokenid` property: a token id.
pub const TOKENID_SCHEMA: Schema = crate::PROXMOX_TOKEN_ID_SCHEMA;

impl ApiType for ApiToken {
    const API_SCHEMA: Schema = ObjectSchema::new(
        "API token properties.",
        &[
            ("comment", true, &USER_COMMENT_SCHEMA),
            ("enable", true, &ENABLE_USER_SCHEMA),
            ("expire", true, &EXPIRE_USER_SCHEMA),
            ("tokenid", false, &TOKENID_SCHEMA),
        ],
    )
    .schema();
}

impl ApiToken {
    /// Enabled and not expired now.
    pub fn is_active(&self) -> bool {
        is_active_at(self.enable, self.expire, epoch_i64())
    }
}

const_regex! {
    /// An ACL path: `/` or `/` separated safe ids (upstream's regex).
    pub ACL_PATH_REGEX = concat!(r"^(?:/|(?:/", proxmox_schema::SAFE_ID_REGEX_STR!(), r")+)$");
}

/// Format of an ACL path.
pub const ACL_PATH_FORMAT: ApiStringFormat = ApiStringFormat::Pattern(&ACL_PATH_REGEX);

/// An ACL path (`/`, `/system/encryption-keys`, ...).
pub const ACL_PATH_SCHEMA: Schema = StringSchema::new("Access control path.")
    .format(&ACL_PATH_FORMAT)
    .min_length(1)
    .max_length(128)
    .schema();

/// `propagate`: whether an ACL entry is inherited by paths below it.
pub const ACL_PROPAGATE_SCHEMA: Schema =
    BooleanSchema::new("Allow to propagate (inherit) permissions.")
        .default(true)
        .schema();

/// One ACL entry, as `acl list` shows it (upstream's `AclListItem`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclListItem {
    /// The path.
    pub path: String,
    /// User, token or group (`@name` in the file, `name` here).
    pub ugid: String,
    /// `user` (users and tokens) or `group`.
    pub ugid_type: String,
    /// Whether the entry is inherited by paths below.
    pub propagate: bool,
    /// The role name.
    pub roleid: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_means_enabled_and_not_expired() {
        assert!(is_active_at(None, None, 100));
        assert!(is_active_at(Some(true), Some(0), 100));
        assert!(is_active_at(None, Some(101), 100));
        assert!(!is_active_at(None, Some(100), 100));
        assert!(!is_active_at(Some(false), None, 100));
    }

    #[test]
    fn acl_paths() {
        for ok in [
            "/",
            "/system",
            "/system/encryption-keys",
            "/datastore/s1/ns",
        ] {
            assert!(ACL_PATH_REGEX.is_match(ok), "{ok}");
        }
        for bad in [
            "",
            "system",
            "/system/",
            "//",
            "/a b",
            "/../x",
            "/system/.x",
        ] {
            assert!(!ACL_PATH_REGEX.is_match(bad), "{bad}");
        }
    }
}
