//! The package's postinst as the `backup` user's victim: it repairs the
//! owner and mode of the names in the config dir, which the `backup` user
//! owns and can rename any file of its into. A file of root's that holds a
//! secret (`authkey.key`, `shadow.json`: root:root 0600) renamed to a name
//! postinst repairs for the `backup` user (`.encryption-keys.lck`, made
//! backup:backup 0660) or for group `backup` (`encryption-keys.cfg`, made
//! root:backup 0640) must stay as it is, as `verify --repair` leaves it
//! (docs/security.md, finding 11).
//!
//! Runs postinst's own `setup_config_dir` (and the `fix_owner_mode` it
//! calls), taken from `debian/proxmox-backup-keystore.postinst`, on a
//! config dir of the test's; `make test-deb` runs the whole script in a
//! Debian root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::broken_locks::mv_as_backup;
use crate::scene::Scene;

const POSTINST: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/debian/proxmox-backup-keystore.postinst"
);

/// postinst's shell functions, from `fix_owner_mode` up to (not
/// including) `report_verify`: `fix_owner_mode` and `setup_config_dir`.
fn postinst_functions() -> String {
    let script = std::fs::read_to_string(POSTINST).unwrap();
    let start = script
        .find("\nfix_owner_mode() {")
        .expect("fix_owner_mode in postinst");
    let end = script
        .find("\nreport_verify() {")
        .expect("report_verify in postinst");
    script[start..end].to_string()
}

/// Runs postinst's `setup_config_dir` as root on `dir`; its stderr.
fn setup_config_dir(dir: &Path) -> String {
    let script = format!(
        "set -e\n{}\nCONFIGDIR=\"$1\"\nKEYDIR=\"$CONFIGDIR/encryption-keys\"\nsetup_config_dir\n",
        postinst_functions()
    );
    let output = Command::new("sh")
        .args(["-c", &script, "sh"])
        .arg(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "postinst: {output:?}");
    stderr
}

/// Owner, group and mode of `path`.
fn stat_of(path: &Path) -> (u32, u32, u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

/// Backup renames root's `authkey.key` over the config lock file and
/// root's `shadow.json` over the key list (each moved away first), then
/// the package is upgraded. Before the fix postinst made the ticket
/// signing key backup:backup 0660 and the password hashes root:backup
/// 0640: the `backup` user could read both (and sign tickets as
/// root@pam).
pub fn postinst_never_hands_a_root_file_to_the_backup_user() {
    let Some(scene) = Scene::new() else {
        return;
    };
    scene.create_keys(&["key-one"]);
    for (name, data) in [
        (
            "authkey.key",
            &b"-----BEGIN PRIVATE KEY-----\nroot only\n"[..],
        ),
        ("shadow.json", b"{\"alice@pbs\":\"$5$hash\"}"),
    ] {
        let path = scene.path(name);
        std::fs::write(&path, data).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (lock, cfg) = (
        scene.path(".encryption-keys.lck"),
        scene.path("encryption-keys.cfg"),
    );
    assert!(lock.exists() && cfg.exists());
    mv_as_backup(&lock, &scene.path("lock.away"), "moving the lock away");
    mv_as_backup(&scene.path("authkey.key"), &lock, "renaming authkey.key");
    mv_as_backup(&cfg, &scene.path("cfg.away"), "moving the key list away");
    mv_as_backup(&scene.path("shadow.json"), &cfg, "renaming shadow.json");

    // what postinst is for stays: root's own job list, made world-readable
    // by a careless root, becomes root:backup 0640 (no one gains access)
    let sync = scene.path("sync.cfg");
    scene.sync_job();
    std::os::unix::fs::chown(&sync, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&sync, std::fs::Permissions::from_mode(0o644)).unwrap();

    let stderr = setup_config_dir(&scene.dir);

    let (_, gid) = crate::scene::backup_ids();
    assert_eq!(stat_of(&sync), (0, gid.as_raw(), 0o640), "{stderr}");

    assert_eq!(stat_of(&lock), (0, 0, 0o600), "authkey.key: {stderr}");
    assert_eq!(stat_of(&cfg), (0, 0, 0o600), "shadow.json: {stderr}");
    for path in [&lock, &cfg] {
        let shown = path.canonicalize().unwrap();
        assert!(
            stderr.contains(&format!("not repairing \"{}\"", shown.display())),
            "{path:?}: {stderr}"
        );
    }
}

/// Backup moves the key list and the key directory away together (with
/// root's record of its writes inside it); a sync job still names a key.
/// No store starts a new key directory then (finding 19), but postinst
/// made an empty one on the next upgrade, and with it there the next
/// `create key-one` gave the job another key under its old id, and
/// `verify` called the store clean. Now postinst makes the key directory
/// only in a config dir with neither a key list nor a job list (a new
/// install), and the store's refusal stands.
pub fn postinst_never_starts_a_key_dir_beside_a_moved_one() {
    let Some(scene) = Scene::new() else {
        return;
    };
    scene.create_keys(&["key-one", "key-two"]);
    scene.push_job("key-one");
    let (cfg, key_dir) = (
        scene.path("encryption-keys.cfg"),
        scene.path("encryption-keys"),
    );
    mv_as_backup(&cfg, &scene.path("away.cfg"), "moving the key list away");
    mv_as_backup(
        &key_dir,
        &scene.path("keys.away"),
        "moving the key dir away",
    );

    setup_config_dir(&scene.dir);

    let run = scene.manager(&["encryption-key", "create", "key-one"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert!(run.stderr.contains("put them back"), "{run:?}");
    assert!(
        !key_dir.exists() && !cfg.exists(),
        "a new store was started"
    );
}

/// A new install still gets its key directory (root:backup 0750) and its
/// audit directory from postinst, as docs/packaging.md says.
pub fn postinst_makes_the_key_dir_of_a_new_install() {
    let Some(scene) = Scene::new() else {
        return;
    };
    setup_config_dir(&scene.dir);
    let (_, gid) = crate::scene::backup_ids();
    for name in ["encryption-keys", "encryption-keys/.audit"] {
        assert_eq!(
            stat_of(&scene.path(name)),
            (0, gid.as_raw(), 0o750),
            "{name}"
        );
    }
}
