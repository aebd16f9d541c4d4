//! An administrator's mistakes with the command line: a config dir spelt
//! another way than usual must not make the keys of a store unusable under
//! their usual spelling (docs/security.md, "Mistakes of an administrator").

use std::path::Path;

use pbs_test_kit::{Manager, Run, TestDir};

/// Runs `args` on `dir`, which must succeed.
#[track_caller]
fn ok(dir: &Path, args: &[&str]) -> Run {
    let run = Manager::new(dir).run(args);
    assert_eq!(run.code, 0, "{dir:?} {args:?}: {run:?}");
    run
}

/// Creates the key `id` in `dir`, written to the new file `out`.
#[track_caller]
fn create(dir: &Path, id: &str, out: &Path) {
    ok(
        dir,
        &[
            "encryption-key",
            "create",
            id,
            "--output-file",
            out.to_str().unwrap(),
        ],
    );
}

/// Exports `id` from `dir` into a new bundle: what a key that loads allows.
#[track_caller]
fn export(dir: &Path, id: &str, name: &str) -> Run {
    let scratch = dir.parent().unwrap();
    let passphrase = scratch.join("passphrase");
    std::fs::write(&passphrase, "a long export passphrase\n").unwrap();
    let bundle = scratch.join(name);
    Manager::new(dir).run(&[
        "encryption-key",
        "export",
        id,
        "--output-file",
        bundle.to_str().unwrap(),
        "--passphrase-file",
        passphrase.to_str().unwrap(),
    ])
}

/// A scratch dir holding the store `store/` and an empty `other/`, so the
/// store can be named `other/../store`.
fn scratch() -> TestDir {
    let scratch = TestDir::new();
    std::fs::create_dir(scratch.path().join("store")).unwrap();
    std::fs::create_dir(scratch.path().join("other")).unwrap();
    scratch
}

#[test]
fn a_config_dir_with_dotdot_stores_keys_its_usual_name_loads() {
    let scratch = scratch();
    let store = scratch.path().join("store");
    let spelt = scratch.path().join("other/../store");

    // a key created, and the store repaired, through the other spelling
    let first_key = scratch.path().join("first.key");
    create(&store, "first", &first_key);
    create(&spelt, "second", &scratch.path().join("second.key"));
    ok(&spelt, &["encryption-key", "verify", "--repair"]);

    // every key still loads through the usual name, and the store is clean
    for id in ["first", "second"] {
        let run = export(&store, id, &format!("{id}.bundle"));
        assert_eq!(run.code, 0, "export of {id} refused: {run:?}");
    }
    let run = Manager::new(&store).run(&["encryption-key", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
    let config = std::fs::read_to_string(store.join("encryption-keys.cfg")).unwrap();
    assert!(!config.contains(".."), "{config}");

    // a `..` after a directory that does not exist names no directory
    let missing = scratch.path().join("missing/../store");
    let run = Manager::new(&missing).run(&["encryption-key", "list"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert!(run.stderr.contains("invalid config dir"), "{run:?}");
}

#[test]
fn an_entry_path_with_dotdot_is_repaired_not_refused() {
    // written so by an earlier version given `--config-dir other/../store`
    let scratch = scratch();
    let store = scratch.path().join("store");
    create(&store, "old-key", &scratch.path().join("old-key.key"));
    let config_path = store.join("encryption-keys.cfg");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let usual = format!("{}/", store.display());
    let spelt = format!("{}/other/../store/", scratch.path().display());
    std::fs::write(&config_path, config.replace(&usual, &spelt)).unwrap();

    let run = Manager::new(&store).run(&["encryption-key", "verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("[path-not-canonical]"), "{run:?}");
    let run = export(&store, "old-key", "before-repair.bundle");
    assert_eq!(run.code, 0, "{run:?}");

    ok(&store, &["encryption-key", "verify", "--repair"]);
    let run = Manager::new(&store).run(&["encryption-key", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn remove_force_never_drops_an_entry_when_the_key_directory_is_gone() {
    // the key directory moved away (by the `backup` user, who owns the
    // config dir, or by a mistake): every key file is missing, and neither
    // the advice nor `--force` may drop an entry for it
    let scratch = scratch();
    let store = scratch.path().join("store");
    let key_file = scratch.path().join("old-key.key");
    create(&store, "old-key", &key_file);
    ok(&store, &["encryption-key", "archive", "old-key"]);
    let config_path = store.join("encryption-keys.cfg");
    let config = std::fs::read(&config_path).unwrap();
    std::fs::rename(
        store.join("encryption-keys"),
        store.join("encryption-keys.moved"),
    )
    .unwrap();

    for args in [
        &["encryption-key", "remove", "old-key"][..],
        &["encryption-key", "remove", "old-key", "--force"],
    ] {
        let run = Manager::new(&store).run(args);
        assert_eq!(run.code, 255, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("key directory") && run.stderr.contains("is missing"),
            "{args:?}: {run:?}"
        );
        assert!(!run.stderr.contains("--force"), "{args:?}: {run:?}");
        assert_eq!(std::fs::read(&config_path).unwrap(), config, "{args:?}");
    }

    // put back, the key is removed into the trash as usual
    std::fs::rename(
        store.join("encryption-keys.moved"),
        store.join("encryption-keys"),
    )
    .unwrap();
    ok(&store, &["encryption-key", "remove", "old-key"]);
    let run = ok(&store, &["encryption-key", "trash", "list", "--noborder"]);
    assert!(run.stdout.starts_with("old-key@"), "{run:?}");
}

/// A config dir given one level too deep, the key directory of a store
/// (`--config-dir /etc/proxmox-backup/encryption-keys`), is refused,
/// naming the config dir meant, and nothing is made in the key directory:
/// before, a create there started a second store inside it (its lock
/// files the `backup` user's in root's directory), and `verify` called
/// that store clean beside the real key files.
#[test]
fn the_key_directory_given_as_config_dir_is_refused() {
    let scratch = scratch();
    let store = scratch.path().join("store");
    create(&store, "real", &scratch.path().join("real.key"));
    let key_dir = store.join("encryption-keys");
    let entries = |dir: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = entries(&key_dir);
    for args in [
        &["encryption-key", "verify"][..],
        &["encryption-key", "create", "second", "--output-file", "-"][..],
        &["sync-job", "list"][..],
    ] {
        let run = Manager::new(&key_dir).run(args);
        assert_eq!(run.code, 255, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains(&format!(
                "config dir {key_dir:?} is the key directory of the config dir {store:?}"
            )) && run.stderr.contains(&format!("give --config-dir {store:?}")),
            "{args:?}: {run:?}"
        );
    }
    assert_eq!(entries(&key_dir), before);
    ok(&store, &["encryption-key", "verify"]);

    // a symbolic link to the key directory is the key directory
    let link = scratch.path().join("link-to-keys");
    std::os::unix::fs::symlink(&key_dir, &link).unwrap();
    let run = Manager::new(&link).run(&["encryption-key", "verify"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert!(
        run.stderr.contains(&format!("give --config-dir {store:?}")),
        "{run:?}"
    );
    assert_eq!(entries(&key_dir), before);
}
