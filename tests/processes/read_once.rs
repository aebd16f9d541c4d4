//! A root writer decides on what it read, not on a second look: the
//! `backup` user moves `encryption-keys.cfg` away and back while root works
//! (as a loop of renames would; here a pause point holds root at the
//! moment between). Root must not take the key list it read as missing for
//! present because it is back when it looks again, nor the other way
//! round; nor a job list it read as missing for one without jobs.

use pbs_test_kit::Manager;

use crate::broken_locks::{mv_as_backup, paused_at, store};
use crate::scene::{Scene, job_args};
use crate::support::worker;

/// A scene for a test that pauses root at a pause point (the failpoints
/// feature, which the processes tests are built with, provides them).
fn scene_with_pause_points() -> Option<Scene> {
    assert!(
        pbs_config::failpoint::enabled(),
        "pbs-config must be built with the failpoints feature for this test"
    );
    Scene::new()
}

/// Root's store reads the key list while backup has it moved away, and
/// backup puts it back before root decides. Before the fix root looked
/// again (a `stat`), found the file there, went on with the empty list it
/// had read and wrote it, with only the new key, over the real one: both
/// earlier keys' entries were gone for good (their key files orphans that
/// repair moves into the trash), and `verify` saw no rollback.
pub fn a_key_list_back_after_roots_read_is_never_written_over() {
    let Some(scene) = scene_with_pause_points() else {
        return;
    };
    scene.create_keys(&["key-one", "key-two"]);
    let (cfg, away) = (scene.path("encryption-keys.cfg"), scene.path("away.cfg"));
    let listed = std::fs::read(&cfg).unwrap();

    mv_as_backup(&cfg, &away, "moving the key list away");
    let mut root = paused_at(store(&scene.dir, "key-new", 7), "keys:read");
    mv_as_backup(&away, &cfg, "putting the key list back");
    drop(root.stdin.take());
    let status = root.wait().unwrap();

    assert!(!status.success(), "the store went on with an empty list");
    assert_eq!(std::fs::read(&cfg).unwrap(), listed, "the key list changed");
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
    let run = scene.manager(&["encryption-key", "paperkey", "key-one"]);
    assert_eq!(run.code, 0, "{run:?}");
}

/// `verify --repair` looks whether the key list is missing, then reads it.
/// Backup moves it away between the two. Before the fix repair took the
/// list as there, found every key file without an entry and moved both
/// into the trash; put back, the list named two keys without key files.
pub fn a_key_list_moved_away_after_repair_looked_keeps_its_keys() {
    let Some(scene) = scene_with_pause_points() else {
        return;
    };
    scene.create_keys(&["key-one", "key-two"]);
    let (cfg, away) = (scene.path("encryption-keys.cfg"), scene.path("away.cfg"));

    let mut repair = worker("op");
    repair.arg(&scene.dir).args(["repair", "-", "0"]);
    let mut root = paused_at(repair, "verify:locked");
    mv_as_backup(&cfg, &away, "moving the key list away");
    drop(root.stdin.take());
    assert!(root.wait().unwrap().success());

    for id in ["key-one", "key-two"] {
        let path = scene.path(&format!("encryption-keys/{id}.enc"));
        assert!(path.exists(), "{id} was moved into the trash");
    }
    mv_as_backup(&away, &cfg, "putting the key list back");
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
}

/// The job list: root's `remove` of an archived key, `archive` of a job's
/// active key and a new job each take the sync job lock, and backup moves
/// `sync.cfg` away just after. Before the fix each looked whether the file
/// was there (it was), then read it as missing: no job named a key, so
/// `remove` sent the key the job keeps for its older backups into the
/// trash (purged after 30 days), `archive` archived the job's active key,
/// and the new job was written as the only one, the old job gone.
pub fn a_job_list_moved_away_after_roots_lock_lets_no_key_go() {
    let Some(scene) = scene_with_pause_points() else {
        return;
    };
    scene.rotated_job();
    let (sync, away) = (scene.path("sync.cfg"), scene.path("sync.away"));
    let jobs = std::fs::read(&sync).unwrap();
    let keys = std::fs::read(scene.path("encryption-keys.cfg")).unwrap();

    let mut remove = worker("op");
    remove.arg(&scene.dir).args(["delete", "key-old", "0"]);
    let mut archive = worker("op");
    archive.arg(&scene.dir).args(["archive", "key-new", "0"]);
    let new_job = Manager::new(&scene.dir).command(&job_args("weekly"));
    for (what, cmd) in [
        ("remove", remove),
        ("archive", archive),
        ("new job", new_job),
    ] {
        let mut root = paused_at(cmd, "sync:locked");
        mv_as_backup(&sync, &away, "moving the job list away");
        drop(root.stdin.take());
        let status = root.wait().unwrap();
        mv_as_backup(&away, &sync, "putting the job list back");
        assert!(!status.success(), "{what} went on without the job list");
        assert_eq!(
            std::fs::read(&sync).unwrap(),
            jobs,
            "{what}: the job list changed"
        );
        assert_eq!(
            std::fs::read(scene.path("encryption-keys.cfg")).unwrap(),
            keys,
            "{what}: the key list changed"
        );
    }
    assert!(scene.path("encryption-keys/key-old.enc").exists());
    let run = scene.manager(&["encryption-key", "verify"]);
    assert_eq!(run.code, 0, "{run:?}");
}
