//! A reader is not held up by a writer holding the config lock.

use pbs_test_kit::key_config;

use crate::support::{Holder, context};

/// While another process holds the config lock (it holds it until we close
/// its stdin, so "for several seconds" is as long as this test needs), list
/// and load complete, and the lock is still held when they have.
pub fn list_and_load_do_not_wait_for_a_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let config = context(tmp.path());
    let keys = config.encryption_keys();
    keys.store_key("read-me", &key_config(3)).unwrap();

    let mut holder = Holder::hold(tmp.path(), None);

    // a fresh context: nothing cached, everything read from disk
    let reader = context(tmp.path());
    let (list, _) = reader.encryption_keys().list_keys(true).unwrap();
    assert_eq!(list.len(), 1);
    reader
        .encryption_keys()
        .load_key_config("read-me", true)
        .unwrap();

    // the writer still holds the lock: readers did not wait for it
    let lock = std::fs::File::open(
        keys.dir()
            .path(pbs_config::files::ENCRYPTION_KEYS_LOCK.name),
    )
    .unwrap();
    assert!(
        lock.try_lock().is_err(),
        "the holder lost its lock before the readers finished"
    );
    assert!(holder.is_running(), "the holder exited early");

    // and a writer does wait, then times out naming the lock file
    let impatient = pbs_config::ConfigDir::new(tmp.path())
        .unwrap()
        .lock_timeout(std::time::Duration::from_millis(200));
    let err = impatient
        .encryption_keys()
        .store_key("blocked", &key_config(4))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(".encryption-keys.lck") && err.contains("timed out"),
        "{err}"
    );

    assert!(holder.release().success());
}
