//! Users and API tokens: `user.cfg`, a section config as upstream PBS
//! writes it.
//!
//! ```text
//! user: alice@pbs
//!     comment Key admin
//!     enable true
//!     expire 0
//!
//! token: alice@pbs!backup
//!     comment nightly job
//! ```
//!
//! (Property lines start with a tab.) Section type `user` (id property `userid`: comment, enable, expire,
//! firstname, lastname, email) and `token` (id property `tokenid`: comment,
//! enable, expire). Secrets are not here: token secrets are hashed in
//! `token.shadow` ([`crate::token_shadow`]), `pbs` realm passwords in
//! `shadow.json` ([`crate::shadow`]). As upstream, `root@pam` is part of
//! every config read, even when the file does not list it.
//!
//! Writers take `.user.lck`; the file is replaced atomically (0640
//! root:backup), so readers never lock.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use anyhow::{Error, bail};

use proxmox_schema::ApiType;
use proxmox_section_config::{SectionConfig, SectionConfigData, SectionConfigPlugin};

use pbs_api_types::{ApiToken, Authid, PROXMOX_AUTH_ID_SCHEMA, User, Userid};

use crate::files::USER_CFG;
use crate::{ConfigDir, UserLock};

/// Section type of a user.
pub const USER_TYPE_ID: &str = "user";
/// Section type of an API token.
pub const TOKEN_TYPE_ID: &str = "token";

/// The section-config format of `user.cfg`.
pub static CONFIG: LazyLock<SectionConfig> = LazyLock::new(init);

fn init() -> SectionConfig {
    let mut config = SectionConfig::new(&PROXMOX_AUTH_ID_SCHEMA);
    config.register_plugin(SectionConfigPlugin::new(
        USER_TYPE_ID,
        Some("userid".to_string()),
        User::API_SCHEMA.unwrap_object_schema(),
    ));
    config.register_plugin(SectionConfigPlugin::new(
        TOKEN_TYPE_ID,
        Some("tokenid".to_string()),
        ApiToken::API_SCHEMA.unwrap_object_schema(),
    ));
    config
}

fn add_root_default(data: &mut SectionConfigData) -> Result<(), Error> {
    if !data.sections.contains_key("root@pam") {
        let mut root = User::new(Userid::root_userid());
        root.comment = Some("Superuser".to_string());
        data.set_data("root@pam", USER_TYPE_ID, &root)?;
    }
    Ok(())
}

/// `user.cfg` of one [`ConfigDir`]; get it with [`ConfigDir::user_config`].
#[derive(Clone, Copy)]
pub struct UserConfig<'a> {
    dir: &'a ConfigDir,
}

impl ConfigDir {
    /// The user config of this config dir.
    pub fn user_config(&self) -> UserConfig<'_> {
        UserConfig { dir: self }
    }
}

impl UserConfig<'_> {
    /// Path of `user.cfg` (for messages).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path(USER_CFG.name)
    }

    /// Takes the user config lock.
    ///
    /// # Locking
    ///
    /// Before the `token.shadow` and `shadow.json` locks, if those are needed.
    pub fn lock_config(&self) -> Result<UserLock, Error> {
        self.dir.lock_config_file()
    }

    /// The parsed file as it is on disk (without the implicit `root@pam`),
    /// shared with the cache, and the SHA-256 of its text. Takes no lock.
    pub fn config_shared(&self) -> Result<(Arc<SectionConfigData>, [u8; 32]), Error> {
        let path = self.config_path();
        let base = self.dir.open_base()?;
        self.dir
            .user_cache
            .get(base.as_ref(), &USER_CFG, self.dir.ownership(), |text| {
                CONFIG.parse(&path, text)
            })
    }

    /// The parsed config, with `root@pam` added if the file lacks it, and the
    /// SHA-256 of the file text. Takes no lock.
    pub fn config(&self) -> Result<(SectionConfigData, [u8; 32]), Error> {
        let (data, digest) = self.config_shared()?;
        let mut data = Arc::unwrap_or_clone(data);
        add_root_default(&mut data)?;
        Ok((data, digest))
    }

    /// Writes the config atomically (0640, root:backup as root).
    ///
    /// # Locking
    ///
    /// The caller holds the user config lock and passes its guard.
    pub fn save_config(&self, config: &SectionConfigData, held: &UserLock) -> Result<(), Error> {
        let raw = CONFIG.write(self.config_path(), config)?;
        self.dir.write_locked(raw.as_bytes(), held, None)
    }

    /// All users, in file order (`root@pam` first if the file lacks it).
    pub fn list_users(&self) -> Result<Vec<User>, Error> {
        let (config, _) = self.config()?;
        config.convert_to_typed_array(USER_TYPE_ID)
    }

    /// All API tokens, in file order.
    pub fn list_tokens(&self) -> Result<Vec<ApiToken>, Error> {
        let (config, _) = self.config_shared()?;
        config.convert_to_typed_array(TOKEN_TYPE_ID)
    }

    /// Adds a user; refused if it exists.
    ///
    /// # Locking
    ///
    /// Takes the user config lock.
    pub fn create_user(&self, user: &User) -> Result<(), Error> {
        let user_lock = self.lock_config()?;
        let (mut config, _) = self.config()?;
        let id = user.userid.as_str();
        if config.sections.contains_key(id) {
            bail!("user '{id}' already exists");
        }
        config.set_data(id, USER_TYPE_ID, user)?;
        self.save_config(&config, &user_lock)
    }

    /// Adds an API token entry (its secret is set separately, see
    /// [`crate::token_shadow::TokenShadow::generate_and_set_secret`]).
    /// Refused if the user does not exist or the token exists.
    ///
    /// # Locking
    ///
    /// The caller holds the user config lock and passes its guard.
    pub fn add_token(&self, token: &ApiToken, held: &UserLock) -> Result<(), Error> {
        let (mut config, _) = self.config()?;
        let user = token.tokenid.user();
        if !config.sections.contains_key(user.as_str()) {
            bail!("user '{user}' does not exist");
        }
        let id = token.tokenid.to_string();
        if config.sections.contains_key(&id) {
            bail!("API token '{id}' already exists");
        }
        config.set_data(&id, TOKEN_TYPE_ID, token)?;
        self.save_config(&config, held)
    }

    /// Removes an API token entry; refused if it does not exist.
    ///
    /// # Locking
    ///
    /// The caller holds the user config lock and passes its guard.
    pub fn remove_token(&self, tokenid: &Authid, held: &UserLock) -> Result<(), Error> {
        let (mut config, _) = self.config()?;
        let id = tokenid.to_string();
        if !tokenid.is_token() || config.remove(&id).is_none() {
            bail!("no such API token '{id}'");
        }
        self.save_config(&config, held)
    }
}

/// The user config of the default config dir (with `root@pam`) and its digest.
pub fn config() -> Result<(SectionConfigData, [u8; 32]), Error> {
    ConfigDir::default_dir()?.user_config().config()
}

/// Takes the user config lock of the default config dir.
pub fn lock_config() -> Result<UserLock, Error> {
    ConfigDir::default_dir()?.user_config().lock_config()
}

/// Saves the user config of the default config dir.
pub fn save_config(config: &SectionConfigData, held: &UserLock) -> Result<(), Error> {
    ConfigDir::default_dir()?
        .user_config()
        .save_config(config, held)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As upstream writes it (booleans as `true`/`false`, `expire 0`).
    const UPSTREAM: &str = "\
user: root@pam
\temail root@example.invalid
\tenable true
\texpire 0

user: alice@pbs
\tcomment Key admin
\tenable true
\texpire 0
\tfirstname Alice

token: alice@pbs!backup
\tcomment nightly
\tenable false
\texpire 0
";

    #[test]
    fn parses_and_writes_upstream_files_unchanged() {
        let data = CONFIG.parse("user.cfg", UPSTREAM).unwrap();
        let alice: User = data.lookup(USER_TYPE_ID, "alice@pbs").unwrap();
        assert_eq!(alice.firstname.as_deref(), Some("Alice"));
        assert!(alice.is_active());
        let token: ApiToken = data.lookup(TOKEN_TYPE_ID, "alice@pbs!backup").unwrap();
        assert!(!token.is_active());
        assert_eq!(CONFIG.write("user.cfg", &data).unwrap(), UPSTREAM);
    }

    #[test]
    fn refuses_bad_ids_and_unknown_properties() {
        for bad in [
            "user: alice\n\tenable true\n",
            "token: alice@pbs!\n\tenable true\n",
            "user: alice@pbs\n\tpassword x\n",
        ] {
            assert!(CONFIG.parse("user.cfg", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn root_is_always_there_and_tokens_need_their_user() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path()).unwrap();
        let users = dir.user_config();
        let ids: Vec<String> = users
            .list_users()
            .unwrap()
            .iter()
            .map(|u| u.userid.to_string())
            .collect();
        assert_eq!(ids, ["root@pam"]);
        users
            .create_user(&User::new("alice@pbs".parse().unwrap()))
            .unwrap();
        assert!(
            users
                .create_user(&User::new("alice@pbs".parse().unwrap()))
                .is_err()
        );
        let lock = users.lock_config().unwrap();
        let token = ApiToken {
            tokenid: "bob@pbs!t1".parse().unwrap(),
            comment: None,
            enable: None,
            expire: None,
        };
        let err = users.add_token(&token, &lock).unwrap_err().to_string();
        assert!(err.contains("'bob@pbs' does not exist"), "{err}");
        let token = ApiToken {
            tokenid: "alice@pbs!t1".parse().unwrap(),
            ..token
        };
        users.add_token(&token, &lock).unwrap();
        assert_eq!(users.list_tokens().unwrap(), vec![token.clone()]);
        users.remove_token(&token.tokenid, &lock).unwrap();
        assert!(users.list_tokens().unwrap().is_empty());
    }
}
