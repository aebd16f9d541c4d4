//! Issue 14, findings 2 and 3, one case at a time: what the `backup` user
//! can plant in its config dir (symbolic links to a root-only place, a
//! FIFO, files of its own in place of root's), with root then running the
//! CLI and the daemon there. Each plant is refused with an error naming the
//! path; nothing in the root-only directory is created, changed, chowned,
//! chmodded or removed; the daemon never uses what the plant points to.
//!
//! The plants are made by root here (the outcome does not depend on who
//! made them; `hostile.rs` has the `backup` user make them while root
//! works).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::daemon::request;
use crate::scene::{
    ALICE_PASSWORD, EXIT_ERROR, Scene, assert_tree_unchanged, backup_ids, key_bytes_of, login_form,
    setup_access, start_daemon, try_start_daemon,
};
use pbs_test_kit::Run;

use crate::support::context;

/// A failed CLI run: exit status 255, one error line holding every needle.
fn assert_refused(run: &Run, what: &str, needles: &[&str]) {
    assert_eq!(run.code, EXIT_ERROR, "{what}: {run:?}");
    for needle in needles {
        assert!(
            run.stderr.contains(needle),
            "{what}: no {needle:?} in {run:?}"
        );
    }
}

/// The store the cases start from: `victim` (archived, so deletable) and
/// `keeper`; returns the key bytes of both.
fn two_keys(scene: &Scene) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for id in ["victim", "keeper"] {
        let run = scene.manager(&["encryption-key", "create", id]);
        assert_eq!(run.code, 0, "{run:?}");
        keys.push(key_bytes_of(&run.stdout));
    }
    let run = scene.manager(&["encryption-key", "archive", "victim"]);
    assert_eq!(run.code, 0, "{run:?}");
    keys
}

/// `encryption-keys/` swapped for a symbolic link to a root-only directory
/// that holds a copy of `victim`'s key file (through the link, the store
/// would take it for its own, fingerprint and all): delete, create,
/// import, the trash commands and `verify --repair`, run by root, refuse
/// it and touch nothing there (the old code created `victim.enc.lck`,
/// backup:backup 0660, in it).
pub fn key_dir_symlink_to_a_root_only_dir() {
    let Some(scene) = Scene::new() else {
        return;
    };
    two_keys(&scene);
    // and one in the trash
    for args in [
        &["encryption-key", "create", "gone"][..],
        &["encryption-key", "archive", "gone"],
        &["encryption-key", "delete", "gone"],
    ] {
        let run = scene.manager(args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
    }
    let victim = std::fs::read(scene.path("encryption-keys/victim.enc")).unwrap();
    scene.root_file("victim.enc", &victim);
    scene.root_file("secret", b"root only\n");
    let import = scene.tmp.path().join("import.enc");
    std::fs::write(&import, pbs_test_kit::key_config(31).to_json().unwrap()).unwrap();
    let import = import.to_str().unwrap().to_string();

    scene.plant_symlink("encryption-keys", &scene.root_only);
    let before = scene.root_only_snapshot();
    for args in [
        &["encryption-key", "delete", "victim"][..],
        &["encryption-key", "create", "fresh-key"],
        &["encryption-key", "import", "imported", "--file", &import],
        &["encryption-key", "trash", "restore", "gone"],
        &["encryption-key", "trash", "purge", "gone"],
        &["encryption-key", "trash", "list"],
    ] {
        let run = scene.manager(args);
        let what = format!("{args:?}");
        assert_tree_unchanged(&before, &scene.root_only_snapshot(), &what);
        assert_refused(&run, &what, &["encryption-keys", "symbolic link"]);
        assert_eq!(run.stdout, "", "{args:?}: {run:?}");
    }
    for args in [
        &["encryption-key", "verify"][..],
        &["encryption-key", "verify", "--repair"],
    ] {
        let run = scene.manager(args);
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(run.stdout.contains("symbolic-link"), "{args:?}: {run:?}");
    }
    assert_tree_unchanged(&before, &scene.root_only_snapshot(), "key dir link");

    // the real directory back: nothing was lost, the delete and the
    // restore work now
    scene.restore("encryption-keys");
    for args in [
        &["encryption-key", "delete", "victim"][..],
        &["encryption-key", "trash", "restore", "gone"],
    ] {
        let run = scene.manager(args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
    }
    crate::support::assert_clean(&context(&scene.dir).verify(false).unwrap(), "restored");
}

/// Every lock file of the config dir swapped for a symbolic link to a name
/// in the root-only directory: the command that takes the lock refuses the
/// link (the old code created the target, backup:backup 0660).
pub fn lock_files_as_symlinks_into_a_root_only_dir() {
    let Some(scene) = Scene::new() else {
        return;
    };
    two_keys(&scene);
    setup_access(&scene);
    scene.sync_job();
    let run = scene.manager(&["sync-job", "update", "job1", "--associated-key", "keeper"]);
    assert_eq!(run.code, 0, "{run:?}");
    let before = scene.root_only_snapshot();
    let cases: &[(&str, &[&str])] = &[
        (
            ".encryption-keys.lck",
            &["encryption-key", "create", "fresh-key"],
        ),
        (".user.lck", &["user", "create", "bob@pbs"]),
        (
            ".acl.lck",
            &["acl", "update", "/", "Audit", "--auth-id", "alice@pbs"],
        ),
        (
            "token.shadow.lock",
            &["user", "generate-token", "alice@pbs", "t2x"],
        ),
        (
            "shadow.json.lock",
            &["user", "passwd", "alice@pbs", "--password", "new-pass-2"],
        ),
        (".sync.lck", &["encryption-key", "archive", "keeper"]),
    ];
    for (lock, args) in cases {
        let target = scene.root_only.join(lock);
        scene.plant_symlink(lock, &target);
        let run = scene.manager(args);
        assert_refused(&run, lock, &[lock, "symbolic link"]);
        assert_tree_unchanged(&before, &scene.root_only_snapshot(), lock);
        scene.restore(lock);
    }
}

/// Each config file swapped for a symbolic link to a root-only file of the
/// same name holding valid content: the CLI refuses to read it, naming it;
/// `verify --repair` names the link and leaves it.
pub fn config_files_as_symlinks_are_not_read_by_the_cli() {
    let Some(scene) = Scene::new() else {
        return;
    };
    two_keys(&scene);
    setup_access(&scene);
    let cases: &[(&str, &[&str])] = &[
        ("encryption-keys.cfg", &["encryption-key", "list"]),
        ("user.cfg", &["user", "list"]),
        ("acl.cfg", &["acl", "list"]),
        ("sync.cfg", &["sync-job", "list"]),
    ];
    for (name, args) in cases {
        let real = scene.path(name);
        let content = if real.exists() {
            std::fs::read(&real).unwrap()
        } else {
            b"sync: job1\n\tremote-store r\n\tstore s\n".to_vec()
        };
        let target = scene.root_file(name, &content);
        scene.plant_symlink(name, &target);
        let before = scene.root_only_snapshot();
        let run = scene.manager(args);
        assert_refused(&run, name, &[name, "symbolic link"]);
        // verify names the link instead of failing, and repair leaves it
        let run = scene.manager(&["encryption-key", "verify", "--repair"]);
        assert_eq!(run.code, 1, "{name}: {run:?}");
        assert!(
            run.stdout.contains("[symbolic-link]") && run.stdout.contains(name),
            "{name}: {run:?}"
        );
        // a link was never a config file: no owner or mode makes it one
        if ["encryption-keys.cfg", "sync.cfg"].contains(name) {
            assert!(
                run.stdout
                    .contains("move it out of the way and put root's copy back")
                    && !run.stdout.contains("owner and mode by hand"),
                "{name}: {run:?}"
            );
        }
        assert_tree_unchanged(&before, &scene.root_only_snapshot(), name);
        scene.restore(name);
    }
}

/// `acl.cfg`, `token.shadow` and `shadow.json` swapped for symbolic links to
/// root-only files that would grant access: the daemon answers, but never
/// with what the link points to (the old code granted it).
pub fn access_files_as_symlinks_are_not_read_by_the_daemon() {
    let Some(scene) = Scene::new() else {
        return;
    };
    two_keys(&scene);
    let access = setup_access(&scene);
    // a second token, unknown to the real files, that the root-only ones know
    let forged_secret = "0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0";
    let hash = proxmox_sys::crypt::encrypt_pw(forged_secret).unwrap();
    let run = scene.manager(&["user", "create", "mallory@pbs"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = scene.manager(&["user", "generate-token", "mallory@pbs", "tk"]);
    assert_eq!(run.code, 0, "{run:?}");
    let mallory = format!("PBSAPIToken=mallory@pbs!tk:{forged_secret}");

    let daemon = start_daemon(&scene.dir, &scene.tmp.path().join("daemon.log"));
    let port = daemon.port;
    let list = |auth: &str| request(port, auth, "GET", "config/encryption-keys", None);

    let (target, token_target, shadow_target) = root_only_access_files(&scene, &hash);
    let before = scene.root_only_snapshot();

    // the ACL linked alone
    scene.plant_symlink("acl.cfg", &target);
    let (status, body) = list(&access.token_auth).expect("an answer");
    assert_ne!(status, 200, "the daemon used a linked acl.cfg: {body}");
    assert!(
        body.contains("acl.cfg") && body.contains("symbolic link"),
        "{body}"
    );
    scene.restore("acl.cfg");
    let (status, body) = list(&access.token_auth).expect("an answer");
    assert_eq!(status, 200, "{body}");

    // token.shadow linked, the ACL real (mallory has no ACL entry there, so
    // grant one to tell "refused token" from "no privilege")
    let run = scene.manager(&["acl", "update", "/", "Admin", "--auth-id", "mallory@pbs"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = scene.manager(&["acl", "update", "/", "Admin", "--auth-id", "mallory@pbs!tk"]);
    assert_eq!(run.code, 0, "{run:?}");
    scene.plant_symlink("token.shadow", &token_target);
    let (status, body) = list(&mallory).expect("an answer");
    assert_ne!(status, 200, "the daemon used a linked token.shadow: {body}");
    assert!(
        body.contains("token.shadow") && body.contains("symbolic link"),
        "{body}"
    );
    scene.restore("token.shadow");
    let (status, _) = list(&mallory).expect("an answer");
    assert_eq!(
        status, 401,
        "mallory's secret is not in the real token.shadow"
    );

    // shadow.json linked: the forged password does not log alice in
    scene.plant_symlink("shadow.json", &shadow_target);
    let (status, body) = request(
        port,
        "",
        "POST",
        "access/ticket",
        Some(&login_form("alice@pbs", "forged-pass")),
    )
    .expect("an answer");
    assert_ne!(status, 200, "the daemon used a linked shadow.json: {body}");
    scene.restore("shadow.json");
    let (status, body) = request(
        port,
        "",
        "POST",
        "access/ticket",
        Some(&login_form("alice@pbs", ALICE_PASSWORD)),
    )
    .expect("an answer");
    assert_eq!(status, 200, "{body}");

    assert_tree_unchanged(&before, &scene.root_only_snapshot(), "access links");
    drop(daemon);
}

/// The root-only files the links lead to, granting what the real ones do
/// not: acl.cfg gives mallory's token Admin, token.shadow knows its `hash`,
/// shadow.json a password for alice; (acl, token, shadow) paths.
fn root_only_access_files(scene: &Scene, hash: &str) -> (PathBuf, PathBuf, PathBuf) {
    // acl.cfg: root's own ACL, plus Admin for mallory's token
    let acl = std::fs::read_to_string(scene.path("acl.cfg")).unwrap();
    let target = scene.root_file(
        "acl.cfg",
        format!("{acl}acl:1:/:mallory@pbs,mallory@pbs!tk:Admin\n").as_bytes(),
    );
    // token.shadow: the real one plus mallory's hash
    let tokens = std::fs::read_to_string(scene.path("token.shadow")).unwrap();
    let mut tokens: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&tokens).unwrap();
    tokens.insert("mallory@pbs!tk".into(), hash.into());
    let token_target = scene.root_file(
        "token.shadow",
        serde_json::to_string(&tokens).unwrap().as_bytes(),
    );
    // shadow.json: a password for alice that the real file does not have
    let shadow_target = scene.root_file(
        "shadow.json",
        serde_json::json!({ "alice": proxmox_sys::crypt::encrypt_pw("forged-pass").unwrap() })
            .to_string()
            .as_bytes(),
    );
    (target, token_target, shadow_target)
}

/// The daemon's own keys swapped for symbolic links to root-only files
/// (the ticket signing key, the CSRF key, the TLS pair): it refuses to
/// start, naming the file (the old code started and used them).
pub fn daemon_keys_as_symlinks_stop_the_start() {
    let Some(scene) = Scene::new() else {
        return;
    };
    let log = scene.tmp.path().join("daemon.log");
    // a first start creates the files
    drop(start_daemon(&scene.dir, &log));
    let pem = openssl::pkey::PKey::generate_ed25519()
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
    for name in ["authkey.key", "csrf.key", "proxy.key", "proxy.pem"] {
        let data = match name {
            "authkey.key" => pem.clone(),
            "csrf.key" => b"cm9vdC1vbmx5LXNlY3JldC1vZi1zb21lb25lLWVsc2U".to_vec(),
            _ => std::fs::read(scene.path(name)).unwrap(),
        };
        let target = scene.root_file(name, &data);
        scene.plant_symlink(name, &target);
        let before = scene.root_only_snapshot();
        match try_start_daemon(&scene.dir, &log) {
            Ok(_) => panic!("the daemon started with {name} linked to a root-only file"),
            Err(log) => assert!(
                log.contains(name) && log.contains("symbolic link"),
                "{name}: {log}"
            ),
        }
        assert_tree_unchanged(&before, &scene.root_only_snapshot(), name);
        scene.restore(name);
    }
    drop(start_daemon(&scene.dir, &log));
}

/// Files of the `backup` user's own in place of the files root alone
/// writes: refused by the CLI and the daemon, naming the file and its
/// owner. A known ticket signing key would let backup forge any ticket; a
/// forged `acl.cfg` would give it any privilege.
pub fn files_of_the_backup_user_are_not_trusted() {
    let Some(scene) = Scene::new() else {
        return;
    };
    two_keys(&scene);
    setup_access(&scene);
    let log = scene.tmp.path().join("daemon.log");
    drop(start_daemon(&scene.dir, &log));

    let cli_cases: &[(&str, &[&str])] = &[
        ("encryption-keys.cfg", &["encryption-key", "list"]),
        ("user.cfg", &["user", "list"]),
        ("acl.cfg", &["acl", "list"]),
    ];
    for (name, args) in cli_cases {
        let content = std::fs::read(scene.path(name)).unwrap();
        scene.plant_own_file(name, &content);
        let run = scene.manager(args);
        assert_refused(&run, name, &[name, "owned by backup"]);
        scene.restore(name);
    }

    let pem = openssl::pkey::PKey::generate_ed25519()
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
    for name in ["authkey.key", "csrf.key", "proxy.key"] {
        let data = match name {
            "authkey.key" => pem.clone(),
            "csrf.key" => b"a-csrf-key-the-backup-user-knows-well".to_vec(),
            _ => std::fs::read(scene.path(name)).unwrap(),
        };
        scene.plant_own_file(name, &data);
        if let Ok(_daemon) = try_start_daemon(&scene.dir, &log) {
            panic!("the daemon started with a {name} of the backup user's");
        }
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains(name) && text.contains("owned by backup"),
            "{name}: {text}"
        );
        scene.restore(name);
    }

    // a root-owned acl.cfg that the backup group may write is no better
    std::fs::set_permissions(
        scene.path("acl.cfg"),
        std::os::unix::fs::PermissionsExt::from_mode(0o660),
    )
    .unwrap();
    let (_, gid) = backup_ids();
    std::os::unix::fs::chown(scene.path("acl.cfg"), Some(0), Some(gid.as_raw())).unwrap();
    let run = scene.manager(&["acl", "list"]);
    assert_refused(&run, "group-writable acl.cfg", &["acl.cfg", "mode 0660"]);
}

/// A FIFO planted as `token.shadow` (and as `acl.cfg`, `user.cfg`,
/// `shadow.json`): every request is answered at once, and the daemon still
/// stops on SIGTERM. The old code blocked one worker thread per request in
/// `open()` for good, and then never stopped.
pub fn fifo_files_do_not_hang_the_daemon() {
    let Some(scene) = Scene::new() else {
        return;
    };
    two_keys(&scene);
    let access = setup_access(&scene);
    let daemon = start_daemon(&scene.dir, &scene.tmp.path().join("daemon.log"));
    let port = daemon.port;
    for name in ["token.shadow", "acl.cfg", "user.cfg", "shadow.json"] {
        scene.plant_fifo(name);
        let clients: Vec<_> = (0..16)
            .map(|n| {
                let auth = access.token_auth.clone();
                std::thread::spawn(move || {
                    if name == "shadow.json" {
                        let form = login_form("alice@pbs", ALICE_PASSWORD);
                        request(port, "", "POST", "access/ticket", Some(&form))
                    } else if n % 2 == 0 {
                        request(port, &auth, "GET", "config/encryption-keys", None)
                    } else {
                        request(port, &auth, "GET", "version", None)
                    }
                })
            })
            .collect();
        for client in clients {
            let (status, body) = client
                .join()
                .unwrap()
                .unwrap_or_else(|| panic!("{name}: a request was not answered"));
            assert_ne!(status, 200, "{name}: {body}");
            assert!(
                body.contains(name) && body.contains("not a regular file"),
                "{name}: {status} {body}"
            );
        }
        scene.restore(name);
        let (status, body) =
            request(port, &access.token_auth, "GET", "version", None).expect("an answer");
        assert_eq!(status, 200, "{name} restored: {body}");
    }
    // a FIFO in place while the daemon stops
    scene.plant_fifo("token.shadow");
    let answer = request(port, &access.token_auth, "GET", "version", None);
    assert!(answer.is_some(), "no answer with a FIFO as token.shadow");
    let status = daemon
        .terminate_within(Duration::from_secs(30))
        .expect("the daemon did not stop on SIGTERM");
    assert!(status.success(), "{status}");
}

/// Found while writing the hostile loop: `verify --repair` "fixed" the owner and mode
/// of a lock file without asking what the file was. The `backup` user
/// renames root's ticket signing key (`authkey.key`, root:root 0600) to
/// `.encryption-keys.lck`; repair then made it backup:backup 0660, so
/// backup could read the key the running daemon signs tickets with and
/// forge a ticket for anyone. Now repair never hands a file holding data to
/// another user, nor lets others read or write it, in a directory others
/// may change.
pub fn repair_never_hands_a_root_file_to_the_backup_user() {
    let Some(scene) = Scene::new() else {
        return;
    };
    two_keys(&scene);
    drop(start_daemon(
        &scene.dir,
        &scene.tmp.path().join("daemon.log"),
    ));
    for (victim, lock) in [
        ("authkey.key", ".encryption-keys.lck"),
        ("shadow.json", ".encryption-keys.lck"),
    ] {
        if !scene.path(victim).exists() {
            let run = scene.manager(&["user", "create", "carol@pbs", "--password", "carol-pass"]);
            assert_eq!(run.code, 0, "{run:?}");
        }
        let meta = std::fs::metadata(scene.path(victim)).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (0, 0, 0o600),
            "{victim} before"
        );
        let data = std::fs::read(scene.path(victim)).unwrap();
        // what backup does: its lock file aside, root's key in its place
        std::fs::rename(scene.path(lock), scene.path("lock.aside")).unwrap();
        std::fs::rename(scene.path(victim), scene.path(lock)).unwrap();

        // the repair is refused, an error naming the file and why
        let run = scene.manager(&["encryption-key", "verify", "--repair"]);
        assert_refused(&run, victim, &[lock, "holds data"]);
        let meta = std::fs::metadata(scene.path(lock)).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (0, 0, 0o600),
            "{victim} as {lock} after verify --repair: {run:?}"
        );
        assert_eq!(std::fs::read(scene.path(lock)).unwrap(), data);

        std::fs::rename(scene.path(lock), scene.path(victim)).unwrap();
        std::fs::rename(scene.path("lock.aside"), scene.path(lock)).unwrap();
    }
    crate::support::assert_clean(&context(&scene.dir).verify(false).unwrap(), "restored");
}
