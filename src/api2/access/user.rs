//! `/access/users`: users, their passwords and API tokens, and what they may
//! do (`/access/permissions`).
//!
//! Plain handlers over `pbs_config::{user, shadow, token_shadow, acl}`, as
//! upstream's `api2/access/user.rs` (`list_users`, `create_user`,
//! `update_user`, `delete_user`, `list_tokens`, `generate_token`,
//! `delete_token`) and `list_permissions`; the CLI calls them, the server
//! may route them. No privilege checks here (the caller checks them).
//!
//! Crash order of the multi-file changes (each file is replaced
//! atomically; a crash between two files leaves the safe side):
//! - delete user: `acl.cfg` first (no privileges left), then `user.cfg`,
//!   then the token secrets and the password, which without their entries
//!   let nobody in;
//! - generate token: the secret first, then the `user.cfg` entry (a secret
//!   without an entry is never checked); the secret is removed again if the
//!   entry cannot be written;
//! - delete token: `user.cfg`, then the secret, then its ACL entries.
//!
//! Each change is recorded in the audit log (`user-create`, `user-update`,
//! `user-password`, `user-delete`, `token-create`, `token-delete`) as the
//! config dir's caller, naming the user or token and never a password or
//! secret: its intent under the locks, after the input is checked and
//! before the first write; its outcome after the last. A refused change
//! records nothing.
//!
//! # Locking
//!
//! `.user.lck` before `.acl.lck`, then the audit intent; `token.shadow`
//! and `shadow.json` take their own locks last, after the intent (see the
//! lock order in `pbs_config`).

use std::collections::BTreeMap;

use anyhow::{Error, bail, format_err};
use serde::{Deserialize, Serialize};

use proxmox_schema::{ApiType, param_bail, param_format_err};

use pbs_api_types::{
    ApiToken, Authid, PRIVILEGES, PROXMOX_TOKEN_NAME_SCHEMA, USER_COMMENT_SCHEMA, User, Userid,
    privilege_names, role_privileges,
};
use pbs_config::ConfigDir;
use pbs_config::acl::{AclTree, check_acl_path_syntax, split_acl_path};
use pbs_config::audit::Op;
use pbs_config::cached_user_info::CachedUserInfo;
use pbs_config::shadow::PBS_REALM;
use pbs_config::user::{TOKEN_TYPE_ID, USER_TYPE_ID};

use crate::api2::parse_digest;

/// Properties `update_user` can delete (upstream's `DeletableUserProperty`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeletableUserProperty {
    /// The comment.
    Comment,
    /// The first name.
    Firstname,
    /// The last name.
    Lastname,
    /// The e-mail address.
    Email,
}

/// The changes of `update_user` (upstream's `UserUpdater`): each property
/// given replaces the stored one; an empty text removes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdater {
    /// Comment (trimmed; empty removes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Enable (`true` is stored as the default, i.e. not written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable: Option<bool>,
    /// Expiry (epoch; 0 = never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire: Option<i64>,
    /// First name (empty removes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firstname: Option<String>,
    /// Last name (empty removes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lastname: Option<String>,
    /// E-mail address (empty removes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// What `generate_token` returns: the token id and its secret, the only
/// time the secret leaves the server.
#[derive(Clone, Serialize)]
pub struct TokenSecret {
    /// The token id (`user@realm!name`).
    pub tokenid: Authid,
    /// The secret.
    pub value: String,
}

/// A privilege name → whether it propagates, per ACL path (upstream's
/// permissions answer).
pub type Permissions = BTreeMap<String, BTreeMap<String, bool>>;

/// The realm first (a pam user has no password here, whatever its
/// length), then upstream's bounds (5 to 64 characters), before anything
/// is written.
fn check_password(userid: &Userid, password: &str) -> Result<(), Error> {
    if userid.realm() != PBS_REALM {
        param_bail!(
            "password",
            "only 'pbs' realm users have passwords here, not '{userid}'"
        );
    }
    pbs_config::shadow::check_password(password)
}

fn check_user(user: &User) -> Result<(), Error> {
    User::API_SCHEMA
        .verify_json(&serde_json::to_value(user)?)
        .map_err(|err| format_err!("invalid user properties - {err}"))
}

/// The token id of `userid`'s token `name`.
pub fn token_id(userid: &Userid, name: &str) -> Result<Authid, Error> {
    if let Err(err) = PROXMOX_TOKEN_NAME_SCHEMA.parse_simple_value(name) {
        param_bail!("token-name", "invalid token name {name:?} - {err}");
    }
    format!("{userid}!{name}").parse()
}

/// All users, in file order (`root@pam` first if the file lacks it).
pub fn list_users(dir: &ConfigDir) -> Result<Vec<User>, Error> {
    dir.user_config().list_users()
}

/// One user.
pub fn read_user(dir: &ConfigDir, userid: &Userid) -> Result<User, Error> {
    let (config, _) = dir.user_config().config()?;
    config
        .lookup(USER_TYPE_ID, userid.as_str())
        .map_err(|_| format_err!("user '{userid}' does not exist"))
}

/// Creates `user`, with `password` for a `pbs` realm user. Returns it.
pub fn create_user(dir: &ConfigDir, user: User, password: Option<&str>) -> Result<User, Error> {
    check_user(&user)?;
    if let Some(password) = password {
        check_password(&user.userid, password)?;
    }
    let users = dir.user_config();
    let user_lock = users.lock_config()?;
    let (mut config, _) = users.config()?;
    let id = user.userid.as_str();
    if config.sections.contains_key(id) {
        bail!("user '{id}' already exists");
    }
    config.set_data(id, USER_TYPE_ID, &user)?;
    let pending = dir.audit_intent(None, &dir.audit_event(Op::UserCreate).id(id))?;
    let result = users
        .save_config(&config, &user_lock)
        .and_then(|()| match password {
            Some(password) => dir.shadow().store_password(&user.userid, password),
            None => Ok(()),
        });
    pending.done(result)?;
    Ok(user)
}

/// Changes `userid`'s properties (and, given one, its password) as
/// upstream's `update_user` does; `delete` removes properties. Returns the
/// user as stored.
pub fn update_user(
    dir: &ConfigDir,
    userid: &Userid,
    update: UserUpdater,
    password: Option<&str>,
    delete: &[DeletableUserProperty],
    digest: Option<&str>,
) -> Result<User, Error> {
    let digest = parse_digest(digest)?;
    if let Some(password) = password {
        check_password(userid, password)?;
    }
    let users = dir.user_config();
    let user_lock = users.lock_config()?;
    let (mut config, current) = users.config()?;
    if let Some(digest) = digest {
        pbs_config::detect_modified_configuration_file(&digest, &current)?;
    }
    let mut user: User = config
        .lookup(USER_TYPE_ID, userid.as_str())
        .map_err(|_| format_err!("user '{userid}' does not exist"))?;
    for property in delete {
        match property {
            DeletableUserProperty::Comment => user.comment = None,
            DeletableUserProperty::Firstname => user.firstname = None,
            DeletableUserProperty::Lastname => user.lastname = None,
            DeletableUserProperty::Email => user.email = None,
        }
    }
    let text = |value: String| (!value.is_empty()).then_some(value);
    if let Some(comment) = update.comment {
        user.comment = text(comment.trim().to_string());
    }
    if let Some(enable) = update.enable {
        user.enable = (!enable).then_some(false);
    }
    if let Some(expire) = update.expire {
        user.expire = (expire > 0).then_some(expire);
    }
    if let Some(firstname) = update.firstname {
        user.firstname = text(firstname);
    }
    if let Some(lastname) = update.lastname {
        user.lastname = text(lastname);
    }
    if let Some(email) = update.email {
        user.email = text(email);
    }
    check_user(&user)?;
    config.set_data(userid.as_str(), USER_TYPE_ID, &user)?;
    let event = dir.audit_event(Op::UserUpdate).id(userid.as_str());
    let pending = dir.audit_intent(None, &event)?;
    let result = users
        .save_config(&config, &user_lock)
        .and_then(|()| match password {
            Some(password) => dir.shadow().store_password(userid, password),
            None => Ok(()),
        });
    pending.done(result)?;
    Ok(user)
}

/// Sets the password of `pbs` realm user `userid`.
///
/// # Locking
///
/// Takes `.user.lck` (no user is removed meanwhile), then the password
/// file's lock.
pub fn set_password(dir: &ConfigDir, userid: &Userid, password: &str) -> Result<(), Error> {
    check_password(userid, password)?;
    let _user_lock = dir.user_config().lock_config()?;
    read_user(dir, userid)?;
    let event = dir.audit_event(Op::UserPassword).id(userid.as_str());
    let pending = dir.audit_intent(None, &event)?;
    pending.done(dir.shadow().store_password(userid, password))
}

/// Removes `userid` with its API tokens, their secrets, its password and
/// every ACL entry of the user and its tokens, as upstream does.
/// `root@pam` cannot be removed.
pub fn delete_user(dir: &ConfigDir, userid: &Userid, digest: Option<&str>) -> Result<(), Error> {
    let digest = parse_digest(digest)?;
    if *userid == Userid::root_userid() {
        param_bail!(
            "userid",
            "'{userid}' is the superuser and cannot be removed"
        );
    }
    let users = dir.user_config();
    let acl = dir.acl_config();
    let user_lock = users.lock_config()?;
    let acl_lock = acl.lock_config()?;
    let (mut config, current) = users.config()?;
    if let Some(digest) = digest {
        pbs_config::detect_modified_configuration_file(&digest, &current)?;
    }
    if config.remove(userid.as_str()).is_none() {
        bail!("user '{userid}' does not exist");
    }
    let tokens: Vec<Authid> = config
        .convert_to_typed_array::<ApiToken>(TOKEN_TYPE_ID)?
        .into_iter()
        .map(|token| token.tokenid)
        .filter(|tokenid| tokenid.user() == userid)
        .collect();
    for tokenid in &tokens {
        config.remove(&tokenid.to_string());
    }
    let (mut tree, _) = acl.config()?;
    tree.delete_authid(&Authid::from(userid.clone()));
    for tokenid in &tokens {
        tree.delete_authid(tokenid);
    }
    // the user, then the tokens that go with it
    let mut event = dir.audit_event(Op::UserDelete).id(userid.as_str());
    for tokenid in &tokens {
        event = event.id(tokenid.to_string());
    }
    let pending = dir.audit_intent(None, &event)?;
    let result = (|| {
        acl.save_config(&tree, &acl_lock)?;
        users.save_config(&config, &user_lock)?;
        for tokenid in &tokens {
            dir.token_shadow().delete_secret(tokenid)?;
        }
        if userid.realm() == PBS_REALM {
            dir.shadow().remove_password(userid)?;
        }
        Ok(())
    })();
    pending.done(result)
}

/// The API tokens of `userid`, in file order.
pub fn list_tokens(dir: &ConfigDir, userid: &Userid) -> Result<Vec<ApiToken>, Error> {
    read_user(dir, userid)?;
    Ok(dir
        .user_config()
        .list_tokens()?
        .into_iter()
        .filter(|token| token.tokenid.user() == userid)
        .collect())
}

/// Creates API token `name` of `userid` and returns its secret.
pub fn generate_token(
    dir: &ConfigDir,
    userid: &Userid,
    name: &str,
    comment: Option<String>,
    expire: Option<i64>,
) -> Result<TokenSecret, Error> {
    let tokenid = token_id(userid, name)?;
    if let Some(Err(err)) = comment
        .as_deref()
        .map(|c| USER_COMMENT_SCHEMA.parse_simple_value(c))
    {
        param_bail!("comment", "invalid comment - {err}");
    }
    let token = ApiToken {
        tokenid: tokenid.clone(),
        comment,
        enable: None,
        expire,
    };
    let users = dir.user_config();
    let user_lock = users.lock_config()?;
    let (config, _) = users.config()?;
    if !config.sections.contains_key(userid.as_str()) {
        bail!("user '{userid}' does not exist");
    }
    if config.sections.contains_key(&tokenid.to_string()) {
        bail!("API token '{tokenid}' already exists");
    }
    // the record names the token, never its secret
    let event = dir.audit_event(Op::TokenCreate).id(tokenid.to_string());
    let pending = dir.audit_intent(None, &event)?;
    let result = dir
        .token_shadow()
        .generate_and_set_secret(&tokenid)
        .and_then(|value| match users.add_token(&token, &user_lock) {
            Ok(()) => Ok(value),
            Err(err) => {
                let _ = dir.token_shadow().delete_secret(&tokenid);
                Err(err)
            }
        });
    let value = pending.done(result)?;
    Ok(TokenSecret { tokenid, value })
}

/// Removes API token `name` of `userid`, its secret and its ACL entries.
pub fn delete_token(dir: &ConfigDir, userid: &Userid, name: &str) -> Result<Authid, Error> {
    let tokenid = token_id(userid, name)?;
    let users = dir.user_config();
    let user_lock = users.lock_config()?;
    let acl = dir.acl_config();
    let acl_lock = acl.lock_config()?;
    let (config, _) = users.config()?;
    if !config.sections.contains_key(&tokenid.to_string()) {
        bail!("no such API token '{tokenid}'");
    }
    let event = dir.audit_event(Op::TokenDelete).id(tokenid.to_string());
    let pending = dir.audit_intent(None, &event)?;
    let result = (|| {
        users.remove_token(&tokenid, &user_lock)?;
        dir.token_shadow().delete_secret(&tokenid)?;
        let (mut tree, _) = acl.config()?;
        tree.delete_authid(&tokenid);
        acl.save_config(&tree, &acl_lock)
    })();
    pending.done(result)?;
    Ok(tokenid)
}

/// The privileges `auth_id`'s own ACL entries give it on `path`, each with
/// whether it propagates.
fn own_privileges(tree: &AclTree, auth_id: &Authid, path: &[&str]) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for (role, propagate) in tree.roles(auth_id, path) {
        let privs = role_privileges(&role).unwrap_or(0);
        for name in privilege_names(privs) {
            *out.entry(name.to_string()).or_insert(false) |= propagate;
        }
    }
    out
}

/// What `auth_id` may do: per path, each privilege and whether it
/// propagates, as upstream computes it (`root@pam` holds all; a token gets
/// the intersection with its user). Without `path`: `/`, `/system`,
/// `/system/encryption-keys` and every path in `acl.cfg`.
pub fn list_permissions(
    dir: &ConfigDir,
    auth_id: &Authid,
    path: Option<&str>,
) -> Result<Permissions, Error> {
    if let Some(path) = path {
        check_acl_path_syntax(path).map_err(|err| param_format_err!("path", "{err}"))?;
    }
    let info = CachedUserInfo::new(dir)?;
    let (config, _) = dir.user_config().config()?;
    let (kind, id) = super::user_cfg_section(auth_id);
    if config.lookup_json(kind, &id).is_err() {
        bail!("{kind} '{id}' does not exist");
    }
    let (tree, _) = dir.acl_config().config()?;
    let paths: Vec<String> = match path {
        Some(path) => vec![path.to_string()],
        None => {
            let mut paths: Vec<String> = ["/", "/system", "/system/encryption-keys"]
                .into_iter()
                .map(str::to_string)
                .chain(tree.list().into_iter().map(|item| item.path))
                .collect();
            paths.sort();
            paths.dedup();
            paths
        }
    };
    let mut out = Permissions::new();
    for path in paths {
        let components = split_acl_path(&path);
        let privileges = if info.is_superuser(auth_id) {
            PRIVILEGES
                .iter()
                .map(|(name, _)| (name.to_string(), true))
                .collect()
        } else {
            let mut own = own_privileges(&tree, auth_id, &components);
            if auth_id.is_token() {
                let user = Authid::from(auth_id.user().clone());
                let of_user = match info.is_superuser(&user) {
                    true => PRIVILEGES
                        .iter()
                        .map(|(n, _)| (n.to_string(), true))
                        .collect(),
                    false => own_privileges(&tree, &user, &components),
                };
                own.retain(|name, _| of_user.contains_key(name));
                for (name, propagate) in own.iter_mut() {
                    *propagate &= of_user[name];
                }
            }
            own
        };
        out.insert(path, privileges);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api2::test_util::{param_names, temp_config_dir};

    fn dir() -> (tempfile::TempDir, ConfigDir) {
        let (tmp, dir) = temp_config_dir();
        (tmp, dir)
    }

    #[test]
    fn update_follows_upstream_rules() {
        let (_tmp, dir) = dir();
        let alice: Userid = "alice@pbs".parse().unwrap();
        let mut user = User::new(alice.clone());
        user.comment = Some("old".into());
        user.email = Some("a@example.com".into());
        create_user(&dir, user, Some("alice pass 1")).unwrap();
        let update = UserUpdater {
            comment: Some("  key admin ".into()),
            enable: Some(false),
            expire: Some(0),
            firstname: Some("Alice".into()),
            ..Default::default()
        };
        let updated = update_user(
            &dir,
            &alice,
            update,
            Some("alice pass 2"),
            &[DeletableUserProperty::Email],
            None,
        )
        .unwrap();
        assert_eq!(updated.comment.as_deref(), Some("key admin"));
        assert_eq!(updated.enable, Some(false));
        assert_eq!((updated.expire, updated.email.as_deref()), (None, None));
        assert_eq!(read_user(&dir, &alice).unwrap(), updated);
        dir.shadow()
            .verify_password(&alice, "alice pass 2")
            .unwrap();
        let enabled = UserUpdater {
            enable: Some(true),
            ..Default::default()
        };
        let again = update_user(&dir, &alice, enabled, None, &[], None).unwrap();
        assert_eq!(again.enable, None);

        let nobody: Userid = "nobody@pbs".parse().unwrap();
        let err = update_user(&dir, &nobody, UserUpdater::default(), None, &[], None);
        assert_eq!(
            err.unwrap_err().to_string(),
            "user 'nobody@pbs' does not exist"
        );
        let err = update_user(&dir, &alice, UserUpdater::default(), None, &[], Some("x"));
        assert_eq!(param_names(&err.unwrap_err()), ["digest"]);
        let bad = UserUpdater {
            firstname: Some("A".into()),
            ..Default::default()
        };
        assert!(update_user(&dir, &alice, bad, None, &[], None).is_err());
        let pam: Userid = "carol@pam".parse().unwrap();
        let err = create_user(&dir, User::new(pam), Some("pam pass 1")).unwrap_err();
        assert_eq!(param_names(&err), ["password"]);
    }

    #[test]
    fn delete_takes_tokens_secrets_passwords_and_acl_entries() {
        let (_tmp, dir) = dir();
        let alice: Userid = "alice@pbs".parse().unwrap();
        let bob: Userid = "bob@pbs".parse().unwrap();
        create_user(&dir, User::new(alice.clone()), Some("alice pass")).unwrap();
        create_user(&dir, User::new(bob.clone()), None).unwrap();
        let token = generate_token(&dir, &alice, "t1", None, None).unwrap();
        let bob_token = generate_token(&dir, &bob, "t1", None, None).unwrap();
        let acl = dir.acl_config();
        let lock = acl.lock_config().unwrap();
        let (mut tree, _) = acl.config().unwrap();
        tree.insert_user_role("/", &Authid::from(alice.clone()), "Admin", true);
        tree.insert_user_role("/system", &token.tokenid, "Audit", true);
        tree.insert_user_role("/system", &bob_token.tokenid, "Audit", true);
        acl.save_config(&tree, &lock).unwrap();
        drop(lock);

        delete_user(&dir, &alice, None).unwrap();
        assert!(read_user(&dir, &alice).is_err());
        let tokens = dir.user_config().list_tokens().unwrap();
        assert_eq!(tokens.len(), 1, "{tokens:?}");
        assert_eq!(tokens[0].tokenid, bob_token.tokenid);
        assert!(
            dir.token_shadow()
                .verify_secret(&token.tokenid, &token.value)
                .is_err()
        );
        assert!(dir.shadow().hash_of(&alice).unwrap().is_none());
        let (tree, _) = acl.config().unwrap();
        assert_eq!(tree.write(), "acl:1:/system:bob@pbs!t1:Audit\n");

        let err = delete_user(&dir, &alice, None).unwrap_err();
        assert_eq!(err.to_string(), "user 'alice@pbs' does not exist");
        let err = delete_user(&dir, &Userid::root_userid(), None).unwrap_err();
        assert_eq!(param_names(&err), ["userid"]);
    }

    #[test]
    fn permissions_as_upstream_computes_them() {
        let (_tmp, dir) = dir();
        let alice: Userid = "alice@pbs".parse().unwrap();
        create_user(&dir, User::new(alice.clone()), None).unwrap();
        let token = generate_token(&dir, &alice, "t1", None, None).unwrap();
        let acl = dir.acl_config();
        let lock = acl.lock_config().unwrap();
        let (mut tree, _) = acl.config().unwrap();
        let alice_id = Authid::from(alice.clone());
        tree.insert_user_role("/system", &alice_id, "Audit", true);
        tree.insert_user_role("/system/encryption-keys", &alice_id, "Admin", false);
        tree.insert_user_role("/system/encryption-keys", &token.tokenid, "Admin", true);
        acl.save_config(&tree, &lock).unwrap();
        drop(lock);

        let perms = list_permissions(&dir, &alice_id, None).unwrap();
        let paths: Vec<&str> = perms.keys().map(String::as_str).collect();
        assert_eq!(paths, ["/", "/system", "/system/encryption-keys"]);
        assert!(perms["/"].is_empty());
        assert!(perms["/system"]["Sys.Audit"]);
        assert!(!perms["/system/encryption-keys"]["Sys.Modify"]);
        // the token: its own Admin, cut down to its user's, never propagating
        // further than the user's does
        let of_token =
            list_permissions(&dir, &token.tokenid, Some("/system/encryption-keys")).unwrap();
        assert_eq!(of_token.len(), 1);
        assert!(!of_token["/system/encryption-keys"]["Sys.Modify"]);
        let root = list_permissions(&dir, &Authid::root_auth_id(), Some("/")).unwrap();
        assert_eq!(root["/"].len(), PRIVILEGES.len());
        let err = list_permissions(&dir, &"zed@pbs".parse().unwrap(), None).unwrap_err();
        assert_eq!(err.to_string(), "user 'zed@pbs' does not exist");
        let err = list_permissions(&dir, &alice_id, Some("no-slash")).unwrap_err();
        assert_eq!(param_names(&err), ["path"]);
    }
}
