//! Issue 14, findings 4 and 5: a login checks the named user's own
//! password entry and no other; wrong secrets of known and unknown users
//! and tokens get the same answers; an import with a bad hint is bad input
//! naming the field; passwords shorter than upstream's minimum, ACL paths
//! upstream does not know and a `list` of a missing config dir are said so.

use pbs_test_kit::access::add_user;
use pbs_test_kit::https::{Client, Resp, urlencode};
use pbs_test_kit::{ApiDaemon, TestDir};

/// The daemon on `dir` with `extra` arguments, its log in the dir.
fn daemon(dir: &TestDir, extra: &[&str]) -> ApiDaemon {
    ApiDaemon::start(dir.path(), extra, dir.path().join("daemon.log"))
}

/// `POST /access/ticket` as `user` with `password`.
fn login(port: u16, user: &str, password: &str) -> Resp {
    let form = format!(
        "username={}&password={}",
        urlencode(user),
        urlencode(password)
    );
    Client::new(port).post_form("access/ticket", &form)
}

/// Regression test for finding 4: `svc@pbs@pbs` (name `svc@pbs`, realm
/// `pbs`) logged in as the password-less `svc@pbs` with its own password:
/// the lookup fell back from `svc@pbs`'s name (`svc`) to its id, which is
/// the other user's name. `shadow.json` is keyed by name, as upstream.
#[test]
fn login_checks_only_the_named_users_own_password() {
    let dir = TestDir::new();
    add_user(&dir.config, "svc@pbs", None, |_| {});
    add_user(&dir.config, "svc@pbs@pbs", Some("svc-pass-1"), |_| {});
    add_user(&dir.config, "alice@pbs", None, |_| {});
    // upstream's file: keyed by user name, written by hand here
    let path = dir.config.shadow().path();
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    map.insert(
        "alice".into(),
        proxmox_sys::crypt::encrypt_pw("alice-pass-1")
            .unwrap()
            .into(),
    );
    std::fs::write(&path, serde_json::to_vec(&map).unwrap()).unwrap();
    let daemon = daemon(&dir, &[]);
    let port = daemon.port;

    login(port, "svc@pbs", "svc-pass-1").expect(401, "authentication failure");
    let data = login(port, "svc@pbs@pbs", "svc-pass-1").data();
    assert_eq!(data["username"], "svc@pbs@pbs");
    assert_eq!(
        login(port, "alice@pbs", "alice-pass-1").data()["username"],
        "alice@pbs"
    );

    // and the other way round, once svc@pbs has a password of its own
    dir.config
        .shadow()
        .store_password(&"svc@pbs".parse().unwrap(), "plain-svc-1")
        .unwrap();
    login(port, "svc@pbs@pbs", "plain-svc-1").expect(401, "authentication failure");
    assert_eq!(
        login(port, "svc@pbs", "plain-svc-1").data()["username"],
        "svc@pbs"
    );
    login(port, "svc@pbs@pbs", "svc-pass-1").data();
}
