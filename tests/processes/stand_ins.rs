//! Root's own file as a stand-in for another: the `backup` user, owning the
//! config dir, moves `encryption-keys.cfg` (or `sync.cfg`) away and renames
//! another config file of root's in its place, one that is empty (a job
//! list after its last job was removed, an `acl.cfg` after its last grant
//! was taken back; in a real `/etc/proxmox-backup` upstream's `remote.cfg`,
//! `prune.cfg` and the like). The stand-in is root's, regular, 0640
//! root:backup, as every config file: each reader trusts it, and its
//! content, never written by root under this name, is no rollback either.
//! So it reads as a key list (or job list) with nothing in it, which is
//! what a missing one would be (`rollback::a_key_list_moved_away_*`).

use std::path::Path;

use crate::broken_locks::{as_backup, mv_as_backup};
use crate::scene::{Scene, job_args};

/// Asserts that `path` is an empty file of root's (the stand-in).
#[track_caller]
fn assert_empty_roots(path: &Path) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).unwrap();
    assert!(
        meta.is_file() && meta.len() == 0 && meta.uid() == 0,
        "{path:?}: {meta:?}"
    );
}

/// The key list: backup moves it away and renames root's empty `sync.cfg`
/// (its last job removed) in its place. Root's next store must not start
/// a new key list beside the keys it no longer sees, and `verify --repair`
/// must not move their key files into the trash as orphans. Before the
/// fix the store succeeded, the next `verify` saw no rollback (the new
/// list was root's last write) and `--repair` trashed both keys.
pub fn an_empty_file_of_roots_in_place_of_the_key_list_is_refused() {
    let Some(scene) = Scene::new() else {
        return;
    };
    scene.create_keys(&["key-one", "key-two"]);
    scene.ok(&job_args("nightly"));
    scene.ok(&["sync-job", "remove", "nightly"]);
    let (cfg, away, sync) = (
        scene.path("encryption-keys.cfg"),
        scene.path("away.cfg"),
        scene.path("sync.cfg"),
    );
    assert_empty_roots(&sync);
    let key_dir = scene.path("encryption-keys");

    mv_as_backup(&cfg, &away, "moving the key list away");
    mv_as_backup(&sync, &cfg, "putting root's empty sync.cfg in its place");

    let run = scene.manager(&["encryption-key", "create", "key-new"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert!(
        run.stderr.contains("encryption-keys.cfg") && run.stderr.contains("put it back"),
        "{run:?}"
    );
    assert!(!key_dir.join("key-new.enc").exists());
    assert_empty_roots(&cfg);

    let run = scene.manager(&["encryption-key", "verify", "--repair"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("rolled-back") && run.stdout.contains("is empty"),
        "{run:?}"
    );
    for id in ["key-one", "key-two"] {
        assert!(key_dir.join(format!("{id}.enc")).exists(), "{id}: {run:?}");
    }

    mv_as_backup(&cfg, &sync, "putting sync.cfg back");
    mv_as_backup(&away, &cfg, "putting the key list back");
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
    scene.ok(&["encryption-key", "paperkey", "key-one"]);
}

/// The job list: backup moves `sync.cfg` away and renames root's empty
/// `acl.cfg` (its last grant taken back) in its place. Every key looks
/// unused then: root's `remove` of the old key a rotated job keeps
/// associated for its older backups must be refused (it would go into the
/// trash, which the daily timer purges after 30 days). Before the fix the
/// remove succeeded.
pub fn an_empty_file_of_roots_in_place_of_the_job_list_lets_no_key_go() {
    let Some(scene) = Scene::new() else {
        return;
    };
    scene.rotated_job();
    let path = "/system/encryption-keys";
    scene.ok(&["user", "create", "alice@pbs"]);
    scene.ok(&["acl", "update", path, "Audit", "--auth-id", "alice@pbs"]);
    scene.ok(&[
        "acl",
        "update",
        path,
        "Audit",
        "--auth-id",
        "alice@pbs",
        "--delete",
    ]);
    let (sync, away, acl) = (
        scene.path("sync.cfg"),
        scene.path("sync.away"),
        scene.path("acl.cfg"),
    );
    assert_empty_roots(&acl);
    mv_as_backup(&sync, &away, "moving the job list away");
    mv_as_backup(&acl, &sync, "putting root's empty acl.cfg in its place");

    for args in [
        &["encryption-key", "remove", "key-old"][..],
        &["encryption-key", "archive", "key-new"],
    ] {
        let run = scene.manager(args);
        assert_eq!(run.code, 255, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("sync.cfg") && run.stderr.contains("put it back"),
            "{args:?}: {run:?}"
        );
    }
    assert!(scene.path("encryption-keys/key-old.enc").exists());

    as_backup(
        r#"mv -- "$1" "$2" && mv -- "$3" "$1""#,
        &[&sync, &acl, &away],
        "putting acl.cfg and the job list back",
    );
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = scene.manager(&["encryption-key", "remove", "key-old"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert!(run.stderr.contains("in use by sync jobs"), "{run:?}");
}

/// Not a stand-in but nothing at all: backup (or an administrator's
/// `mv`) moves the key list and the key directory away together, and
/// with them root's record of its writes. The config dir looks like one
/// where no key was ever made, but a sync job still names a key, which a
/// job can only do for a key the store had. Root's next store must not
/// start a new key directory and key list: a `create` under the id the
/// job names would give the job another key under the same id. Before
/// the fix both stores succeeded and `verify` called the store clean.
pub fn a_key_dir_moved_away_with_its_list_is_never_replaced_while_jobs_name_keys() {
    let Some(scene) = Scene::new() else {
        return;
    };
    scene.create_keys(&["key-one", "key-two"]);
    scene.push_job("key-one");
    let (cfg, key_dir) = (
        scene.path("encryption-keys.cfg"),
        scene.path("encryption-keys"),
    );
    let (cfg_away, key_dir_away) = (scene.path("away.cfg"), scene.path("keys.away"));
    mv_as_backup(&cfg, &cfg_away, "moving the key list away");
    mv_as_backup(&key_dir, &key_dir_away, "moving the key directory away");

    for id in ["key-new", "key-one"] {
        let run = scene.manager(&["encryption-key", "create", id]);
        assert_eq!(run.code, 255, "{id}: {run:?}");
        assert!(
            run.stderr.contains("encryption-keys") && run.stderr.contains("put them back"),
            "{id}: {run:?}"
        );
    }
    assert!(
        !key_dir.exists() && !cfg.exists(),
        "a new store was started"
    );
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("key directory") && run.stdout.contains("'key-one'"),
        "{run:?}"
    );

    mv_as_backup(&key_dir_away, &key_dir, "putting the key directory back");
    mv_as_backup(&cfg_away, &cfg, "putting the key list back");
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
    scene.ok(&["encryption-key", "paperkey", "key-one"]);
}

/// The check of a job list read as missing needs root's record of its
/// writes, which lives in the key directory: backup moves the key
/// directory away (the key list still lists keys, so no writer makes a
/// new one, and none holds root's mirror lock) and `sync.cfg` with it.
/// A job change then took the job list for an empty one: root's
/// `sync-job create` wrote a list with its new job alone, over the
/// rotated job that keeps `key-old` for its older backups; with the key
/// directory back, `verify` saw no rollback (the new list was root's last
/// write) and `remove key-old` sent the key into the trash, which the
/// daily timer purges after 30 days (if a verified copy is recorded).
/// Now a job change refuses while the key directory that holds the
/// record is unusable and the job list reads as missing or empty.
pub fn a_job_list_moved_away_with_the_key_dir_is_never_replaced() {
    let Some(scene) = Scene::new() else {
        return;
    };
    scene.rotated_job();
    let (sync, sync_away) = (scene.path("sync.cfg"), scene.path("sync.away"));
    let (key_dir, key_dir_away) = (scene.path("encryption-keys"), scene.path("keys.away"));
    mv_as_backup(&key_dir, &key_dir_away, "moving the key directory away");
    mv_as_backup(&sync, &sync_away, "moving the job list away");

    let run = scene.manager(&job_args("other"));
    assert_eq!(run.code, 255, "{run:?}");
    assert!(
        run.stderr.contains("sync.cfg") && run.stderr.contains("put"),
        "{run:?}"
    );
    assert!(!sync.exists(), "a new job list was started");

    mv_as_backup(&key_dir_away, &key_dir, "putting the key directory back");
    mv_as_backup(&sync_away, &sync, "putting the job list back");
    let run = scene.manager(&["encryption-key", "remove", "key-old"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert!(run.stderr.contains("in use by sync jobs"), "{run:?}");
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
}

/// Writes `text` to `name` in the config dir as root with root's usual
/// umask (root:root 0644), as `echo > name` does: a file of root's that
/// every reader trusts.
fn roots_own_file(scene: &Scene, name: &str, text: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = scene.path(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

/// The stand-in of 17 need not be empty: a file of root's holding only a
/// line break (what `echo > remote.cfg` makes) reads as a list with
/// nothing in it as well. Before the fix only an empty file was taken for
/// a missing one: with such a file in place of `sync.cfg`, root's `remove`
/// of the old key the rotated job keeps sent it into the trash and
/// `verify` said "clean"; in place of `encryption-keys.cfg`, root's
/// `create` started a new key list beside the keys.
pub fn a_blank_file_of_roots_in_place_of_a_list_is_refused() {
    let Some(scene) = Scene::new() else {
        return;
    };
    scene.rotated_job();
    let blank = roots_own_file(&scene, "remote.cfg", "\n");
    let (sync, sync_away) = (scene.path("sync.cfg"), scene.path("sync.away"));
    mv_as_backup(&sync, &sync_away, "moving the job list away");
    mv_as_backup(&blank, &sync, "putting root's blank file in its place");

    let run = scene.manager(&["encryption-key", "remove", "key-old"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert!(
        run.stderr.contains("sync.cfg") && run.stderr.contains("put it back"),
        "{run:?}"
    );
    assert!(scene.path("encryption-keys/key-old.enc").exists());
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("rolled-back") && run.stdout.contains("sync.cfg"),
        "{run:?}"
    );
    as_backup(
        r#"mv -f -- "$2" "$1""#,
        &[&sync, &sync_away],
        "putting the job list back",
    );

    let blank = roots_own_file(&scene, "remote.cfg", "\n");
    let (cfg, cfg_away) = (scene.path("encryption-keys.cfg"), scene.path("away.cfg"));
    mv_as_backup(&cfg, &cfg_away, "moving the key list away");
    mv_as_backup(&blank, &cfg, "putting root's blank file in its place");
    let run = scene.manager(&["encryption-key", "create", "key-third"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert!(
        run.stderr.contains("encryption-keys.cfg") && run.stderr.contains("put it back"),
        "{run:?}"
    );
    assert!(!scene.path("encryption-keys/key-third.enc").exists());
    as_backup(
        r#"mv -f -- "$2" "$1""#,
        &[&cfg, &cfg_away],
        "putting the key list back",
    );
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
}
