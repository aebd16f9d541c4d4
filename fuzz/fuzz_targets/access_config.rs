//! The access files: `acl.cfg` (`AclTree::parse` / `write`) and `user.cfg`
//! (section config of users and tokens).
//!
//! Besides "no panic", it checks:
//! - acl.cfg: what parses writes back to text that parses again and writes
//!   to the same text (a fixed point), and every user and token (but
//!   `root@pam`, which is never written) keeps its privileges on every path
//!   named in the file and one level below; errors name the file and line;
//! - user.cfg: the write / parse round trip keeps the data, and every typed
//!   `User` and `ApiToken` writes and reads back unchanged.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

use pbs_api_types::{ApiToken, Authid, User};
use pbs_config::acl::{AclTree, split_acl_path};
use pbs_config::user::{CONFIG, TOKEN_TYPE_ID, USER_TYPE_ID};

const FILE: &str = "/etc/proxmox-backup/fuzz.cfg";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = proxmox_sys::fs::into_utf8(data.to_vec(), Path::new(FILE)) else {
        return;
    };
    check_acl(&text);
    check_users(&text);
});

fn check_acl(text: &str) {
    let tree = match AclTree::parse(Path::new(FILE), text) {
        Ok(tree) => tree,
        Err(err) => {
            let err = err.to_string();
            assert!(err.contains(FILE) && err.contains("line "), "{err}");
            return;
        }
    };
    let written = tree.write();
    let again = AclTree::parse(Path::new(FILE), &written)
        .unwrap_or_else(|err| panic!("written acl.cfg does not parse: {err}\n{written}"));
    assert_eq!(
        again.write(),
        written,
        "acl.cfg writing is not a fixed point"
    );

    let list = tree.list();
    let mut paths: Vec<String> = list.iter().map(|item| item.path.clone()).collect();
    paths.extend(
        list.iter()
            .map(|item| format!("{}/below", item.path.trim_end_matches('/'))),
    );
    paths.push("/".to_string());
    for item in list.iter().filter(|item| item.ugid_type == "user") {
        let Ok(auth_id) = item.ugid.parse::<Authid>() else {
            panic!("listed ugid {:?} does not parse", item.ugid);
        };
        if !auth_id.is_token() && auth_id.user().as_str() == "root@pam" {
            continue;
        }
        for path in &paths {
            let components = split_acl_path(path);
            assert_eq!(
                tree.privileges(&auth_id, &components),
                again.privileges(&auth_id, &components),
                "privileges of {auth_id} on {path} changed in a round trip:\n{text}\n---\n{written}"
            );
        }
    }
}

fn check_users(text: &str) {
    let Ok(config) = CONFIG.parse(FILE, text) else {
        return;
    };
    let written = CONFIG
        .write(FILE, &config)
        .unwrap_or_else(|err| panic!("parsed user.cfg does not write back: {err}"));
    let again = CONFIG
        .parse(FILE, &written)
        .unwrap_or_else(|err| panic!("written user.cfg does not parse: {err}\n{written}"));
    assert_eq!(again.sections, config.sections, "user.cfg data changed");

    for id in config.ids_of_type(USER_TYPE_ID) {
        if let Ok(user) = config.lookup::<User>(USER_TYPE_ID, id) {
            let mut copy = config.clone();
            copy.set_data(id, USER_TYPE_ID, &user).unwrap();
            let text = CONFIG
                .write(FILE, &copy)
                .unwrap_or_else(|err| panic!("typed user {id} does not write: {err}"));
            let back: User = CONFIG
                .parse(FILE, &text)
                .unwrap()
                .lookup(USER_TYPE_ID, id)
                .unwrap();
            assert_eq!(back, user);
        }
    }
    for id in config.ids_of_type(TOKEN_TYPE_ID) {
        if let Ok(token) = config.lookup::<ApiToken>(TOKEN_TYPE_ID, id) {
            let mut copy = config.clone();
            copy.set_data(id, TOKEN_TYPE_ID, &token).unwrap();
            let text = CONFIG
                .write(FILE, &copy)
                .unwrap_or_else(|err| panic!("typed token {id} does not write: {err}"));
            let back: ApiToken = CONFIG
                .parse(FILE, &text)
                .unwrap()
                .lookup(TOKEN_TYPE_ID, id)
                .unwrap();
            assert_eq!(back, token);
        }
    }
}
