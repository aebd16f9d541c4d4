//! Users, API tokens and ACLs written through the library, for tests and
//! benchmarks that need them before the daemon starts.

use pbs_api_types::{ApiToken, Authid, User};
use pbs_config::ConfigDir;

/// Creates user `userid`, changed by `change` first, with `password` if
/// given.
pub fn add_user(dir: &ConfigDir, userid: &str, password: Option<&str>, change: impl Fn(&mut User)) {
    let mut user = User::new(userid.parse().unwrap());
    change(&mut user);
    dir.user_config().create_user(&user).unwrap();
    if let Some(password) = password {
        dir.shadow().store_password(&user.userid, password).unwrap();
    }
}

/// Adds API token `tokenid` (enabled unless `enable` says otherwise);
/// returns its secret.
pub fn add_token(dir: &ConfigDir, tokenid: &str, enable: Option<bool>) -> String {
    let tokenid: Authid = tokenid.parse().unwrap();
    let users = dir.user_config();
    let lock = users.lock_config().unwrap();
    users
        .add_token(
            &ApiToken {
                tokenid: tokenid.clone(),
                comment: None,
                enable,
                expire: None,
            },
            &lock,
        )
        .unwrap();
    drop(lock);
    dir.token_shadow()
        .generate_and_set_secret(&tokenid)
        .unwrap()
}

/// Gives `auth_id` `role` on `path`.
pub fn grant(dir: &ConfigDir, path: &str, auth_id: &str, role: &str, propagate: bool) {
    let acl = dir.acl_config();
    let lock = acl.lock_config().unwrap();
    let (mut tree, _) = acl.config().unwrap();
    tree.insert_user_role(path, &auth_id.parse().unwrap(), role, propagate);
    acl.save_config(&tree, &lock).unwrap();
}

/// A token `tokenid` with Admin on `/`: the `Authorization` header value.
pub fn admin_token(dir: &ConfigDir, tokenid: &str) -> String {
    let secret = add_token(dir, tokenid, None);
    grant(dir, "/", tokenid, "Admin", true);
    format!("PBSAPIToken={tokenid}:{secret}")
}

/// A token `tokenid` (and its user, created here) with Admin on `path`
/// (propagated) masked on one key by `NoAccess` on
/// `/system/encryption-keys/<masked_key>`: the caller every privilege
/// check of that key must refuse. Returns the token's secret.
pub fn masked_token(dir: &ConfigDir, tokenid: &str, path: &str, masked_key: &str) -> String {
    let user = tokenid.split_once('!').map_or(tokenid, |(user, _)| user);
    add_user(dir, user, None, |_| {});
    let secret = add_token(dir, tokenid, None);
    let masked = format!("/system/encryption-keys/{masked_key}");
    for auth_id in [user, tokenid] {
        grant(dir, path, auth_id, "Admin", true);
        grant(dir, &masked, auth_id, "NoAccess", false);
    }
    secret
}
