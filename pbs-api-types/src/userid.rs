//! User and API token ids: [`Userid`] (`user@realm`) and [`Authid`]
//! (`user@realm` or `user@realm!token`).

use std::fmt;
use std::str::FromStr;

use anyhow::{Error, bail};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use proxmox_schema::{ApiStringFormat, ApiType, Schema, StringSchema, const_regex};

macro_rules! USER_NAME_REGEX_STR {
    () => {
        r"(?:[^\s:/\p{Cc}]+)"
    };
}
macro_rules! USER_ID_REGEX_STR {
    () => {
        concat!(
            USER_NAME_REGEX_STR!(),
            r"@",
            proxmox_schema::SAFE_ID_REGEX_STR!()
        )
    };
}

const_regex! {
    /// `user@realm`.
    pub PROXMOX_USER_ID_REGEX = concat!(r"^", USER_ID_REGEX_STR!(), r"$");
    /// `user@realm` or `user@realm!token`.
    pub PROXMOX_AUTH_ID_REGEX = concat!(
        r"^", USER_ID_REGEX_STR!(), r"(?:!", proxmox_schema::SAFE_ID_REGEX_STR!(), r")?$"
    );
    /// `user@realm!token`.
    pub PROXMOX_TOKEN_ID_REGEX = concat!(
        r"^", USER_ID_REGEX_STR!(), r"!", proxmox_schema::SAFE_ID_REGEX_STR!(), r"$"
    );
    /// A token name.
    pub PROXMOX_TOKEN_NAME_REGEX = concat!(r"^", proxmox_schema::SAFE_ID_REGEX_STR!(), r"$");
}

/// Format of a user id.
pub const PROXMOX_USER_ID_FORMAT: ApiStringFormat =
    ApiStringFormat::Pattern(&PROXMOX_USER_ID_REGEX);
/// Format of an auth id.
pub const PROXMOX_AUTH_ID_FORMAT: ApiStringFormat =
    ApiStringFormat::Pattern(&PROXMOX_AUTH_ID_REGEX);
/// Format of a token id.
pub const PROXMOX_TOKEN_ID_FORMAT: ApiStringFormat =
    ApiStringFormat::Pattern(&PROXMOX_TOKEN_ID_REGEX);
/// Format of a token name.
pub const PROXMOX_TOKEN_NAME_FORMAT: ApiStringFormat =
    ApiStringFormat::Pattern(&PROXMOX_TOKEN_NAME_REGEX);

/// A user id.
pub const PROXMOX_USER_ID_SCHEMA: Schema = StringSchema::new("User ID")
    .format(&PROXMOX_USER_ID_FORMAT)
    .min_length(3)
    .max_length(64)
    .schema();

/// An API token id.
pub const PROXMOX_TOKEN_ID_SCHEMA: Schema = StringSchema::new("API Token ID")
    .format(&PROXMOX_TOKEN_ID_FORMAT)
    .min_length(3)
    .max_length(64)
    .schema();

/// An API token name (the part after `!`).
pub const PROXMOX_TOKEN_NAME_SCHEMA: Schema =
    StringSchema::new("The token ID part of an API token authentication id.")
        .format(&PROXMOX_TOKEN_NAME_FORMAT)
        .min_length(2)
        .max_length(64)
        .schema();

/// A user id: `name@realm`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Userid {
    data: String,
    name_len: usize,
}

impl Userid {
    /// The user name part (before the last `@`).
    pub fn name(&self) -> &str {
        &self.data[..self.name_len]
    }

    /// The realm part (after the last `@`).
    pub fn realm(&self) -> &str {
        &self.data[self.name_len + 1..]
    }

    /// The whole id.
    pub fn as_str(&self) -> &str {
        &self.data
    }

    /// `root@pam`, which holds every privilege.
    pub fn root_userid() -> Self {
        "root@pam".parse().expect("root@pam is a valid user id")
    }
}

impl FromStr for Userid {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        if PROXMOX_USER_ID_SCHEMA.parse_simple_value(text).is_err() {
            bail!("invalid user id {text:?} - expected NAME@REALM (3 to 64 characters)");
        }
        let name_len = text.rfind('@').expect("the regex requires an '@'");
        Ok(Self {
            data: text.to_string(),
            name_len,
        })
    }
}

impl fmt::Display for Userid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.data)
    }
}

impl fmt::Debug for Userid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Userid({})", self.data)
    }
}

impl ApiType for Userid {
    const API_SCHEMA: Schema = PROXMOX_USER_ID_SCHEMA;
}

/// An authentication id: a user (`name@realm`) or one of its API tokens
/// (`name@realm!token`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Authid {
    user: Userid,
    tokenname: Option<String>,
}

impl Authid {
    /// The user (the token's owner for a token).
    pub fn user(&self) -> &Userid {
        &self.user
    }

    /// Whether this is an API token.
    pub fn is_token(&self) -> bool {
        self.tokenname.is_some()
    }

    /// The token name, for a token.
    pub fn tokenname(&self) -> Option<&str> {
        self.tokenname.as_deref()
    }

    /// `root@pam`.
    pub fn root_auth_id() -> Self {
        Userid::root_userid().into()
    }
}

impl From<Userid> for Authid {
    fn from(user: Userid) -> Self {
        Self {
            user,
            tokenname: None,
        }
    }
}

impl FromStr for Authid {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        if Self::API_SCHEMA.parse_simple_value(text).is_err() {
            bail!(
                "invalid auth id {text:?} - expected NAME@REALM or NAME@REALM!TOKEN (at most 64 characters)"
            );
        }
        let (user, tokenname) = match text.rsplit_once('!') {
            // '!' is not allowed in realms or token names, so the last one splits
            Some((user, token)) if !user.is_empty() && text.rfind('@') < text.rfind('!') => {
                (user, Some(token.to_string()))
            }
            _ => (text, None),
        };
        Ok(Self {
            user: user.parse()?,
            tokenname,
        })
    }
}

impl fmt::Display for Authid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tokenname {
            Some(token) => write!(f, "{}!{token}", self.user),
            None => write!(f, "{}", self.user),
        }
    }
}

impl fmt::Debug for Authid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Authid({self})")
    }
}

impl ApiType for Authid {
    const API_SCHEMA: Schema = StringSchema::new("Authentication ID")
        .format(&PROXMOX_AUTH_ID_FORMAT)
        .min_length(3)
        .max_length(64)
        .schema();
}

macro_rules! string_serde {
    ($type:ty) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_serde!(Userid);
string_serde!(Authid);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userid_splits_at_the_last_at() {
        let user: Userid = "alice@pbs".parse().unwrap();
        assert_eq!((user.name(), user.realm()), ("alice", "pbs"));
        let user: Userid = "bob@example.com@ldap".parse().unwrap();
        assert_eq!((user.name(), user.realm()), ("bob@example.com", "ldap"));
    }

    #[test]
    fn userid_rejects_malformed() {
        for bad in [
            "alice",
            "@pbs",
            "alice@",
            "a b@pbs",
            "al/ice@pbs",
            "alice@p bs",
            "x@y!t",
        ] {
            assert!(bad.parse::<Userid>().is_err(), "{bad}");
        }
        assert!(format!("{}@pbs", "a".repeat(62)).parse::<Userid>().is_err());
    }

    #[test]
    fn authid_user_and_token() {
        let auth: Authid = "root@pam".parse().unwrap();
        assert!(!auth.is_token());
        assert_eq!(auth, Authid::root_auth_id());
        let token: Authid = "alice@pbs!backup-1".parse().unwrap();
        assert!(token.is_token());
        assert_eq!(token.user().as_str(), "alice@pbs");
        assert_eq!(token.tokenname(), Some("backup-1"));
        assert_eq!(token.to_string(), "alice@pbs!backup-1");
        for bad in [
            "alice@pbs!",
            "alice@pbs!a b",
            "alice@pbs!t!u",
            "alice@pbs!.t",
        ] {
            assert!(bad.parse::<Authid>().is_err(), "{bad}");
        }
    }

    #[test]
    fn authid_serde_round_trip() {
        let token: Authid = "alice@pbs!backup".parse().unwrap();
        let json = serde_json::to_string(&token).unwrap();
        assert_eq!(json, "\"alice@pbs!backup\"");
        assert_eq!(serde_json::from_str::<Authid>(&json).unwrap(), token);
        assert!(serde_json::from_str::<Authid>("\"nope\"").is_err());
    }
}
