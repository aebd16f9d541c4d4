//! Every writing operation on a full disk: a clear error, and the store as it was.

use pbs_test_kit::dirs::{snapshot, snapshot_with_locks};
use pbs_test_kit::key_config;
use pbs_test_kit::tmpfs::tmpfs_config_dir;

use crate::support::{
    assert_clean, assert_error, assert_relocated_only, context, fault_store, manager,
    run_writing_commands_again, writing_commands,
};

/// On a tmpfs of 1 MiB: with no page free the key file cannot be written;
/// with one page free the key file fits but the config does not, so store
/// must remove the key file again. Both times: "No space left on device",
/// the store unchanged, verify clean.
pub fn store_on_a_full_disk_fails_cleanly() {
    let Some((_tmp, mount, dir)) = tmpfs_config_dir("small", "1m") else {
        return;
    };
    let config = context(&dir);
    let keys = config.encryption_keys();
    keys.store_key("before-1", &key_config(11)).unwrap();
    keys.store_key("before-2", &key_config(12)).unwrap();

    for (free_pages, failing_file) in [(0, "new-key.enc"), (1, "encryption-keys.cfg")] {
        mount.fill("filler", free_pages);
        let before = snapshot_with_locks(&dir, &["filler"]);
        let err = keys.store_key("new-key", &key_config(13)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("No space left on device"), "{text}");
        assert!(
            text.contains("'new-key'") && text.contains(failing_file),
            "{text}"
        );
        assert_eq!(
            snapshot_with_locks(&dir, &["filler"]),
            before,
            "{free_pages} free pages: the store changed"
        );
        assert_clean(&config.verify(false).unwrap(), "after ENOSPC");
        println!("    {free_pages} free pages: {text}");
        std::fs::remove_file(mount.path.join("filler")).unwrap();
    }

    // with space again, the same store works
    keys.store_key("new-key", &key_config(13)).unwrap();
    keys.load_key_config("new-key", true).unwrap();
    drop(mount);
}

/// Every other writing command on a full disk (no page free): archive,
/// unarchive, delete, sync-job update, create, import, and verify --repair
/// with a path to rewrite. Each exits 2 with one error line naming the file
/// it could not write and "No space left on device", the store is as it
/// was and verify reports it so; with space again, each works.
pub fn other_commands_on_a_full_disk_fail_cleanly() {
    let Some((_tmp, mount, dir)) = tmpfs_config_dir("small", "1m") else {
        return;
    };
    let import = mount.path.join("import.enc");
    fault_store(&dir, &import);

    mount.fill("filler", 0);
    let before = snapshot(&dir, &["filler"]);
    for (args, file) in writing_commands(&import) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = manager(&dir, &args, None);
        let line = assert_error(&run, &args.join(" "), &["No space left on device", file]);
        assert_eq!(
            snapshot(&dir, &["filler"]),
            before,
            "{args:?} changed the store"
        );
        assert_relocated_only(&context(&dir).verify(false).unwrap(), &args.join(" "));
        println!("    {}: {line}", args.join(" "));
    }

    std::fs::remove_file(mount.path.join("filler")).unwrap();
    run_writing_commands_again(&dir, &import);
    drop(mount);
}
