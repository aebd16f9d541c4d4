//! Issue 14, a rollback by the `backup` user: it keeps root's
//! `encryption-keys.cfg` by renaming it away while root replaces it, and
//! later puts it back. The file is root's, regular, with the right mode;
//! `verify`, run by root, names it as `rolled-back` from the record root
//! keeps of its writes beside its mirror locks (the key stored meanwhile is
//! an orphan, which repair moves into the trash: no key file is lost).

use pbs_test_kit::Manager;
use pbs_test_kit::pause::paused_at;

use crate::broken_locks::{as_backup, mv_as_backup, paused_store, store};
use crate::scene::{Scene, job_args};
use crate::support::{killed_by_sigkill, run_worker};

pub fn a_config_put_back_by_backup_is_named_by_verify() {
    if !pbs_config::failpoint::enabled() {
        panic!("pbs-config must be built with the failpoints feature for this test");
    }
    let Some(scene) = Scene::new() else {
        return;
    };
    let run = scene.manager(&["encryption-key", "create", "early-key"]);
    assert_eq!(run.code, 0, "{run:?}");
    let (cfg, kept) = (scene.path("encryption-keys.cfg"), scene.path("kept.cfg"));

    // root stores a second key; backup renames the config it read away
    // before root replaces it, so the old file survives as kept.cfg
    let mut root = paused_store(&scene.dir, "later-key", 7);
    mv_as_backup(&cfg, &kept, "keeping the config");
    drop(root.stdin.take());
    assert!(root.wait().unwrap().success());
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 0, "before the rollback: {run:?}");

    // and puts it back: root's own file, with the right owner and mode
    as_backup(
        r#"mv -f -- "$2" "$1""#,
        &[&cfg, &kept],
        "putting the config back",
    );
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("rolled-back")
            && run.stdout.contains("encryption-keys.cfg")
            && run.stdout.contains("1 write(s) later")
            && run.stdout.contains("orphan-key-file"),
        "{run:?}"
    );
    // repair keeps the key file (into the trash) and cannot undo the rollback
    let run = scene.manager(&["encryption-key", "verify", "--repair"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("rolled-back"), "{run:?}");
    let run = scene.manager(&["encryption-key", "trash", "list"]);
    assert!(run.stdout.contains("later-key"), "{run:?}");
}

/// The same attack on `acl.cfg`: backup keeps root's file that grants
/// `alice@pbs` Admin on the key store by renaming it away, root revokes the
/// grant (its next write), backup puts the old file back. `alice` holds
/// Admin again; root's `verify` names `acl.cfg` as `rolled-back`.
pub fn an_acl_put_back_by_backup_is_named_by_verify() {
    let Some(scene) = Scene::new() else {
        return;
    };
    let (acl, kept) = (scene.path("acl.cfg"), scene.path("kept-acl.cfg"));
    let path = "/system/encryption-keys";
    let ok = |args: &[&str]| {
        let run = scene.manager(args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
    };
    ok(&["user", "create", "alice@pbs"]);
    ok(&["acl", "update", path, "Admin", "--auth-id", "alice@pbs"]);
    let granted = std::fs::read(&acl).unwrap();
    mv_as_backup(&acl, &kept, "keeping acl.cfg");
    ok(&["acl", "update", path, "Audit", "--auth-id", "alice@pbs"]);
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 0, "before the rollback: {run:?}");

    as_backup(
        r#"mv -f -- "$2" "$1""#,
        &[&acl, &kept],
        "putting acl.cfg back",
    );
    assert_eq!(std::fs::read(&acl).unwrap(), granted);
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("rolled-back")
            && run.stdout.contains("acl.cfg")
            && run.stdout.contains("1 write(s) later"),
        "{run:?}"
    );
}

/// Not a rollback but a forgery: backup writes its own `acl.cfg` granting
/// `alice@pbs` Admin on the key store and renames it over root's. Every
/// reader refuses a file of backup's there (and its error says to run
/// `verify`); `verify` must name it too, not say "clean", and `--repair`
/// must leave it backup's (a `chown root` would make the forged grant one
/// root trusts).
pub fn a_forged_acl_is_named_by_verify_and_never_made_roots() {
    let Some(scene) = Scene::new() else {
        return;
    };
    let (acl, forged) = (scene.path("acl.cfg"), scene.path("forged-acl.cfg"));
    let path = "/system/encryption-keys";
    let ok = |args: &[&str]| {
        let run = scene.manager(args);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
    };
    ok(&["user", "create", "alice@pbs"]);
    ok(&["acl", "update", path, "Audit", "--auth-id", "alice@pbs"]);
    as_backup(
        r#"sed 's/:Audit$/:Admin/' -- "$1" > "$2" && chmod 0640 -- "$2" && mv -f -- "$2" "$1""#,
        &[&acl, &forged],
        "forging acl.cfg",
    );
    let run = scene.manager(&["acl", "list"]);
    assert_ne!(run.code, 0, "a reader trusted backup's acl.cfg: {run:?}");
    assert!(run.stderr.contains("verify"), "{run:?}");

    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("acl.cfg") && run.stdout.contains("owned by backup"),
        "{run:?}"
    );
    scene.manager(&["encryption-key", "verify", "--repair"]);
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&acl).unwrap());
    assert_ne!(owner, 0, "repair made backup's forged acl.cfg root's");
}

/// The same forgery on `encryption-keys.cfg`: backup writes its own config
/// (here without one of root's keys, and with another key marked archived)
/// and renames it over root's. Readers refuse it and say to run `verify`;
/// `verify` names it, and `--repair` must leave it backup's and unread: a
/// `chown root` would make a key list root never wrote one every reader
/// trusts (a key hidden, a retired key brought back, a hint changed).
pub fn a_forged_key_config_is_named_by_verify_and_never_made_roots() {
    let Some(scene) = Scene::new() else {
        return;
    };
    scene.create_keys(&["kept-key", "hidden-key"]);
    let (cfg, forged) = (scene.path("encryption-keys.cfg"), scene.path("forged.cfg"));
    let before = std::fs::read(&cfg).unwrap();
    // the forged config: root's without the entry of hidden-key
    as_backup(
        r#"awk 'BEGIN { RS = ""; ORS = "\n\n" } !/hidden-key/' "$1" > "$2" \
           && chmod 0640 -- "$2" && mv -f -- "$2" "$1""#,
        &[&cfg, &forged],
        "forging encryption-keys.cfg",
    );
    let forged_text = std::fs::read_to_string(&cfg).unwrap();
    assert!(
        forged_text.contains("kept-key") && !forged_text.contains("hidden-key"),
        "{forged_text}"
    );
    let run = scene.manager(&["encryption-key", "list"]);
    assert_ne!(run.code, 0, "a reader trusted backup's config: {run:?}");
    assert!(run.stderr.contains("verify"), "{run:?}");

    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("encryption-keys.cfg") && run.stdout.contains("owned by backup"),
        "{run:?}"
    );
    let run = scene.manager(&["encryption-key", "verify", "--repair"]);
    assert_eq!(run.code, 1, "repair said the store is clean: {run:?}");
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&cfg).unwrap());
    assert_ne!(
        owner, 0,
        "repair made backup's forged config root's: {run:?}"
    );
    let run = scene.manager(&["encryption-key", "list"]);
    assert_ne!(
        run.code, 0,
        "after repair a reader trusts backup's config: {run:?}"
    );
    // nothing root wrote is gone: the hidden key's file is where it was
    assert!(scene.path("encryption-keys/hidden-key.enc").exists());
    assert_ne!(before, std::fs::read(&cfg).unwrap());
}

/// A `sync.cfg` of backup's making (none was there): readers of sync jobs
/// refuse it, and `verify` names it instead of failing as a whole, and
/// leaves it backup's on `--repair`.
pub fn a_forged_sync_config_is_named_by_verify_and_never_made_roots() {
    let Some(scene) = Scene::new() else {
        return;
    };
    let run = scene.manager(&["encryption-key", "create", "some-key"]);
    assert_eq!(run.code, 0, "{run:?}");
    let sync = scene.path("sync.cfg");
    as_backup(
        r#"printf 'sync: job1\n\tremote-store store\n\tstore local\n\n' > "$1" && chmod 0640 "$1""#,
        &[&sync],
        "forging sync.cfg",
    );
    for repair in [false, true] {
        let mut args = vec!["encryption-key", "verify"];
        args.extend(repair.then_some("--repair"));
        let run = scene.manager(&args);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(
            run.stdout.contains("sync.cfg")
                && run.stdout.contains("owned by backup")
                && run.stdout.contains("left alone by repair"),
            "{run:?}"
        );
    }
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&sync).unwrap());
    assert_ne!(owner, 0, "repair made backup's sync.cfg root's");
}

/// Backup owns the config dir, so it can move root's `encryption-keys/`
/// away and make one of its own in its place (here with a copy of root's
/// key file, which it may read). Every reader refuses that directory;
/// `verify --repair` must leave it backup's, and once an admin has made
/// the directory root's by hand, leave backup's key file in it backup's:
/// a `chown` would make a key directory and key files root never wrote
/// ones every reader trusts.
pub fn a_key_dir_of_backups_making_is_never_made_roots() {
    use std::os::unix::fs::MetadataExt;
    let Some(scene) = Scene::new() else {
        return;
    };
    let run = scene.manager(&["encryption-key", "create", "some-key"]);
    assert_eq!(run.code, 0, "{run:?}");
    let (key_dir, moved) = (scene.path("encryption-keys"), scene.path("moved-keys"));
    as_backup(
        r#"mv -- "$1" "$2" && mkdir -m 0750 -- "$1" && cp -- "$2/some-key.enc" "$1/""#,
        &[&key_dir, &moved],
        "replacing the key directory",
    );
    let owner = |path: &std::path::Path| std::fs::metadata(path).unwrap().uid();
    for _ in 0..2 {
        let run = scene.manager(&["encryption-key", "verify", "--repair"]);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stdout.contains("invalid-key-dir"), "{run:?}");
        assert_ne!(
            owner(&key_dir),
            0,
            "repair made backup's key directory root's"
        );
    }
    // the admin decides the directory is root's; the key file in it stays
    // backup's and unread
    std::os::unix::fs::chown(&key_dir, Some(0), None).unwrap();
    let key_file = key_dir.join("some-key.enc");
    for _ in 0..2 {
        let run = scene.manager(&["encryption-key", "verify", "--repair"]);
        assert_eq!(run.code, 1, "{run:?}");
        assert!(
            run.stdout.contains("some-key.enc") && run.stdout.contains("left alone by repair"),
            "{run:?}"
        );
        assert_ne!(owner(&key_file), 0, "repair made backup's key file root's");
    }
    let run = scene.manager(&["encryption-key", "paperkey", "some-key"]);
    assert_ne!(run.code, 0, "a reader trusted backup's key file: {run:?}");
    assert!(run.stderr.contains("owned by backup"), "{run:?}");
}

/// The key list moved away: backup renames `encryption-keys.cfg` (or an
/// administrator's `mv` does). Root's next store must not start a new,
/// empty key list beside the keys it no longer sees, and `verify --repair`
/// must not move their key files into the trash as orphans: once the file
/// is put back, every key is there and loads, without a `remove --force`
/// and `trash restore` per key (for which each key's jobs must let go of
/// it first). Before the fix the store succeeded, and the next `verify`
/// saw no rollback at all (the new file was root's last write), only two
/// orphans for repair to trash.
pub fn a_key_list_moved_away_is_never_replaced_nor_its_keys_trashed() {
    let Some(scene) = Scene::new() else {
        return;
    };
    scene.create_keys(&["key-one", "key-two"]);
    let (cfg, away) = (scene.path("encryption-keys.cfg"), scene.path("away.cfg"));
    let key_dir = scene.path("encryption-keys");
    mv_as_backup(&cfg, &away, "moving the key list away");

    let run = scene.manager(&["encryption-key", "create", "key-new"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert!(
        run.stderr.contains("encryption-keys.cfg") && run.stderr.contains("put it back"),
        "{run:?}"
    );
    assert!(!cfg.exists(), "a new key list was made");
    assert!(!key_dir.join("key-new.enc").exists());

    let run = scene.manager(&["encryption-key", "verify", "--repair"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("rolled-back") && run.stdout.contains("put the config back first"),
        "{run:?}"
    );
    for id in ["key-one", "key-two"] {
        assert!(key_dir.join(format!("{id}.enc")).exists(), "{id}: {run:?}");
    }

    mv_as_backup(&away, &cfg, "putting the key list back");
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = scene.manager(&["encryption-key", "paperkey", "key-one"]);
    assert_eq!(run.code, 0, "{run:?}");
}

/// The same for `sync.cfg`: backup moves it away, and every job with it.
/// A key a job still needs (here the old key of a rotated job, associated
/// for the job's older backups) must not look unused to root's remove
/// (into the trash, destroyed by the daily purge 30 days later) nor its
/// active key to root's archive, and root's next job change must not
/// start a new job list. Before the fix `remove` of the associated key
/// succeeded.
pub fn a_sync_config_moved_away_never_lets_a_key_it_names_go() {
    let Some(scene) = Scene::new() else {
        return;
    };
    scene.rotated_job();
    let (cfg, away) = (scene.path("sync.cfg"), scene.path("sync.away"));
    mv_as_backup(&cfg, &away, "moving the job list away");

    for args in [
        &["encryption-key", "remove", "key-old"][..],
        &["encryption-key", "remove", "key-old", "--purge"],
        &["encryption-key", "archive", "key-new"],
        &job_args("weekly"),
    ] {
        let run = scene.manager(args);
        assert_eq!(run.code, 255, "{args:?}: {run:?}");
        assert!(
            run.stderr.contains("sync.cfg") && run.stderr.contains("put it back"),
            "{args:?}: {run:?}"
        );
    }
    assert!(!cfg.exists(), "a new job list was made");
    assert!(scene.path("encryption-keys/key-old.enc").exists());

    mv_as_backup(&away, &cfg, "putting the job list back");
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = scene.manager(&["encryption-key", "remove", "key-old"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert!(run.stderr.contains("in use by sync jobs"), "{run:?}");
}

/// A rollback of the key list leaves the key stored since without its
/// entry: repair moves such a file into the trash only if no sync job
/// names it (a job that does needs it; the file is ambiguous then, left
/// alone). Backup also moves `sync.cfg` away: the job list read as
/// missing, every such key file looked like one no job names, and
/// `verify --repair` moved the key the push job encrypts with into the
/// trash as an orphan ("repair-orphan": a key file no config entry and no
/// sync job names). Now repair holds orphans back while the job list
/// reads as missing or empty where root last wrote one with content, as
/// it does while the key list does.
pub fn a_key_a_job_names_stays_while_the_job_list_is_moved_away() {
    if !pbs_config::failpoint::enabled() {
        panic!("pbs-config must be built with the failpoints feature for this test");
    }
    let Some(scene) = Scene::new() else {
        return;
    };
    scene.create_keys(&["early-key"]);
    let (cfg, kept) = (scene.path("encryption-keys.cfg"), scene.path("kept.cfg"));
    let mut root = paused_store(&scene.dir, "job-key", 7);
    mv_as_backup(&cfg, &kept, "keeping the key list");
    drop(root.stdin.take());
    assert!(root.wait().unwrap().success());
    scene.push_job("job-key");

    let (sync, sync_away) = (scene.path("sync.cfg"), scene.path("sync.away"));
    as_backup(
        r#"mv -f -- "$2" "$1" && mv -- "$3" "$4""#,
        &[&cfg, &kept, &sync, &sync_away],
        "putting the old key list back, moving the job list away",
    );
    let run = scene.manager(&["encryption-key", "verify", "--repair"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("rolled-back") && run.stdout.contains("sync.cfg"),
        "{run:?}"
    );
    let key_file = scene.path("encryption-keys/job-key.enc");
    assert!(
        key_file.exists(),
        "repair moved the job's key away: {run:?}"
    );
    assert!(run.stdout.contains("put the job list back"), "{run:?}");

    mv_as_backup(&sync_away, &sync, "putting the job list back");
    let run = scene.manager(&["encryption-key", "verify", "--repair"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("sync job 'nightly' names 'job-key'"),
        "{run:?}"
    );
    assert!(key_file.exists(), "{run:?}");
}

/// The same with the job list rolled back instead of moved away: backup
/// keeps root's `sync.cfg` from before the push job that names the key
/// (renaming it away while root writes the job, paused after its read at
/// the audit record of the job's key change) and puts it back with the
/// old key list. The old job list names no key, so repair moved the
/// job's key into the trash as a `repair-orphan`. Now repair holds such
/// key files back while the job list is any rollback of root's, as
/// `verify` names it.
pub fn a_key_a_job_names_stays_while_the_job_list_is_rolled_back() {
    if !pbs_config::failpoint::enabled() {
        panic!("pbs-config must be built with the failpoints feature for this test");
    }
    let Some(scene) = Scene::new() else {
        return;
    };
    scene.create_keys(&["early-key"]);
    scene.ok(&job_args("first"));
    let (cfg, kept) = (scene.path("encryption-keys.cfg"), scene.path("kept.cfg"));
    let mut root = paused_store(&scene.dir, "job-key", 7);
    mv_as_backup(&cfg, &kept, "keeping the key list");
    drop(root.stdin.take());
    assert!(root.wait().unwrap().success());

    let (sync, sync_kept) = (scene.path("sync.cfg"), scene.path("sync.kept"));
    let mut args = job_args("nightly").to_vec();
    args.extend([
        "--sync-direction",
        "push",
        "--active-encryption-key",
        "job-key",
    ]);
    // the point is hit twice (the record of the intent, then of the
    // outcome): its stderr is read to the end
    let root = paused_at(
        &mut Manager::new(&scene.dir).command(&args),
        "audit:line-written",
    );
    mv_as_backup(&sync, &sync_kept, "keeping the job list");
    let (status, rest) = root.finish();
    assert!(status.success(), "{rest}");
    assert!(std::fs::read_to_string(&sync).unwrap().contains("job-key"));

    as_backup(
        r#"mv -f -- "$2" "$1" && mv -f -- "$4" "$3""#,
        &[&cfg, &kept, &sync, &sync_kept],
        "putting the old key list and the old job list back",
    );
    let run = scene.manager(&["encryption-key", "verify", "--repair"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout.contains("rolled-back") && run.stdout.contains("sync.cfg"),
        "{run:?}"
    );
    assert!(
        scene.path("encryption-keys/job-key.enc").exists(),
        "repair moved the job's key away: {run:?}"
    );
    assert!(run.stdout.contains("missing or rolled back"), "{run:?}");
}

/// On a file system that keeps no blocks for root (a tmpfs here; ZFS and
/// XFS too), the `backup` user fills the disk so that root's config write
/// fits and the larger record of root's writes does not. Before the fix the
/// write went through and the record was removed: the key list moved away
/// next read as a new store's (`create` started an empty list, `verify`
/// saw no rollback) until root's next write. Now the write fails with
/// nothing changed, and the record still names the list moved away.
pub fn a_disk_filled_by_backup_never_costs_roots_write_record() {
    let Some(scene) = Scene::on_tmpfs("2m") else {
        return;
    };
    scene.create_keys(&["key-one"]);
    // a record longer than a page (about 76 bytes a write), so that it
    // needs more room than the one-key config
    let config = crate::support::context(&scene.dir);
    let keys = config.encryption_keys();
    for _ in 0..28 {
        keys.archive_key("key-one", None).unwrap();
        keys.unarchive_key("key-one", None).unwrap();
    }
    let record = scene.path("encryption-keys/.locks/encryption-keys.cfg.written");
    let record_before = std::fs::read(&record).unwrap();
    assert!(record_before.len() > 4096, "{}", record_before.len());
    let (cfg, away) = (scene.path("encryption-keys.cfg"), scene.path("away.cfg"));
    let cfg_before = std::fs::read(&cfg).unwrap();
    assert!(cfg_before.len() < 4096);

    // one page left: room for the config's temp file, not the record's
    let filler = scene.path("filler");
    as_backup(
        r#"dd if=/dev/zero of="$1" bs=4096 2>/dev/null; truncate -s -4096 "$1""#,
        &[&filler],
        "filling the disk",
    );
    let run = scene.manager(&["encryption-key", "archive", "key-one"]);
    assert_eq!(run.code, 255, "the archive went through: {run:?}");
    assert!(
        run.stderr.contains("No space left on device")
            && run
                .stderr
                .contains("record of root's writes of encryption-keys.cfg")
            && run.stderr.contains("nothing was changed"),
        "{run:?}"
    );
    assert_eq!(
        std::fs::read(&cfg).unwrap(),
        cfg_before,
        "the config changed"
    );
    assert_eq!(std::fs::read(&record).unwrap(), record_before);

    // with room again, backup moves the key list away: still told from a
    // new store's
    as_backup(r#"rm -- "$1""#, &[&filler], "freeing the disk");
    mv_as_backup(&cfg, &away, "moving the key list away");
    let run = scene.manager(&["encryption-key", "create", "key-new"]);
    assert_eq!(run.code, 255, "{run:?}");
    assert!(run.stderr.contains("put it back"), "{run:?}");
    assert!(!cfg.exists(), "a new key list was made");
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stdout.contains("rolled-back"), "{run:?}");
}

/// A root writer killed between staging the record of its write and
/// putting it in place (here with the new key list written, not yet
/// renamed in) leaves the record's next version in root's `.locks/`.
/// Before, each crash left one more such file there, and nothing removed
/// them; now there is at most one per config file, and the next write of
/// that file puts its own record in place of it.
pub fn a_killed_writer_leaves_no_record_temp_past_the_next_write() {
    let Some(scene) = Scene::new() else {
        return;
    };
    scene.create_keys(&["key-one"]);
    let locks = scene.path("encryption-keys/.locks");
    let left_over = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&locks)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains(".written") && !name.ends_with(".written"))
            .collect();
        names.sort();
        names
    };
    for (n, id) in ["killed-one", "killed-two"].into_iter().enumerate() {
        let mut cmd = store(&scene.dir, id, 40 + n as u64);
        cmd.env("PBS_FAILPOINT", "store:config-tmp-written");
        let output = run_worker(cmd);
        assert!(killed_by_sigkill(&output), "{id}: {output:?}");
    }
    let after_crashes = left_over();
    assert_eq!(after_crashes.len(), 1, "{after_crashes:?}");

    scene.create_keys(&["key-two"]);
    assert_eq!(left_over(), Vec::<String>::new());
    // the record holds the last write: no rollback is seen (the killed
    // stores' key files are orphans, which is what a crash there leaves)
    let run = scene.manager(&["encryption-key", "verify"]);
    assert!(!run.stdout.contains("rolled-back"), "{run:?}");
    assert!(run.stdout.contains("orphan-key-file"), "{run:?}");
}
