//! Tests that need several real processes: concurrent writers, SIGKILL at
//! every crash point (of a worker and of the API daemon), readers next to a
//! lock holder, a full disk, a read-only file system, locks held past the
//! timeout, dropped privileges.
//!
//! This binary has its own `main` (`harness = false`): run without
//! arguments (or with name filters, as `cargo test NAME` passes them) it runs
//! the tests; run as `processes __worker KIND ARGS...` it is one of the worker
//! processes a test spawns.

use std::process::ExitCode;
use std::time::Instant;

mod audit;
mod broken_locks;
mod concurrency;
mod crash;
mod daemon;
// a new key file on file systems without O_TMPFILE or hard links (seccomp)
mod fallbacks;
mod faults;
mod full_disk;
// stores of new keys in batches: a batch killed at every point, the daemon's
// concurrent creates
mod group_commit;
mod hostile;
mod lock_holders;
mod locks;
mod planted;
mod postinst;
mod privileges;
// a writer decides on what it read, not on a second look
mod read_once;
mod readers;
mod rollback;
// rotate: SIGKILL at every step and resumed, aborts, rotations at once
mod rotate;
// the config dir the backup user owns, a root-only dir, the checks of both
mod scene;
// root's own file renamed in place of the key list or the job list
mod stand_ins;
mod support;
// a key file swapped between a store's rename and its check of the name
mod swapped;
// a masked caller's drill beside a key half-way between the list and the trash
mod whereabouts;
mod worker;

type TestFn = fn();

const TESTS: &[(&str, TestFn)] = &[
    (
        "concurrency::eight_processes_of_random_operations",
        concurrency::eight_processes_of_random_operations,
    ),
    (
        "crash::sigkill_at_every_crash_point",
        crash::sigkill_at_every_crash_point,
    ),
    (
        "crash::restore_of_an_archived_key_never_leaves_it_active",
        crash::restore_of_an_archived_key_never_leaves_it_active,
    ),
    (
        "crash::a_create_killed_before_its_output_file_is_named_leaves_nothing_beside_it",
        crash::a_create_killed_before_its_output_file_is_named_leaves_nothing_beside_it,
    ),
    (
        "fallbacks::each_fallback_writes_the_listed_key_and_nothing_beside_it",
        fallbacks::each_fallback_writes_the_listed_key_and_nothing_beside_it,
    ),
    (
        "fallbacks::a_name_planted_while_create_writes_is_never_written_over",
        fallbacks::a_name_planted_while_create_writes_is_never_written_over,
    ),
    (
        "fallbacks::a_create_whose_output_file_fails_removes_the_key_again",
        fallbacks::a_create_whose_output_file_fails_removes_the_key_again,
    ),
    (
        "fallbacks::a_create_killed_before_its_output_file_is_named_leaves_at_most_the_temp_file",
        fallbacks::a_create_killed_before_its_output_file_is_named_leaves_at_most_the_temp_file,
    ),
    (
        "fallbacks::a_failed_sync_of_the_output_directory_leaves_no_file",
        fallbacks::a_failed_sync_of_the_output_directory_leaves_no_file,
    ),
    (
        "fallbacks::a_create_whose_file_stays_after_a_failed_sync_says_where_the_key_is",
        fallbacks::a_create_whose_file_stays_after_a_failed_sync_says_where_the_key_is,
    ),
    (
        "fallbacks::a_directory_others_can_change_is_warned_of",
        fallbacks::a_directory_others_can_change_is_warned_of,
    ),
    (
        "fallbacks::a_sticky_or_root_only_directory_is_no_warning",
        fallbacks::a_sticky_or_root_only_directory_is_no_warning,
    ),
    (
        "fallbacks::a_symbolic_link_others_can_change_on_the_way_is_warned_of",
        fallbacks::a_symbolic_link_others_can_change_on_the_way_is_warned_of,
    ),
    (
        "fallbacks::a_rotation_exports_by_each_fallback",
        fallbacks::a_rotation_exports_by_each_fallback,
    ),
    (
        "fallbacks::a_rotation_names_a_temp_file_an_interrupted_export_left",
        fallbacks::a_rotation_names_a_temp_file_an_interrupted_export_left,
    ),
    (
        "fallbacks::on_exfat_each_command_writes_in_place_and_warns_of_the_mode",
        fallbacks::on_exfat_each_command_writes_in_place_and_warns_of_the_mode,
    ),
    (
        "readers::list_and_load_do_not_wait_for_a_writer",
        readers::list_and_load_do_not_wait_for_a_writer,
    ),
    (
        "full_disk::store_on_a_full_disk_fails_cleanly",
        full_disk::store_on_a_full_disk_fails_cleanly,
    ),
    (
        "full_disk::other_commands_on_a_full_disk_fail_cleanly",
        full_disk::other_commands_on_a_full_disk_fail_cleanly,
    ),
    (
        "daemon::daemon_sigkill_in_the_middle_of_a_create",
        daemon::daemon_sigkill_in_the_middle_of_a_create,
    ),
    (
        "daemon::daemon_sigkill_under_concurrent_creates",
        daemon::daemon_sigkill_under_concurrent_creates,
    ),
    (
        "daemon::api_on_a_full_disk_and_a_read_only_file_system",
        daemon::api_on_a_full_disk_and_a_read_only_file_system,
    ),
    (
        "faults::read_only_file_system",
        faults::read_only_file_system,
    ),
    (
        "faults::config_dir_not_writable_by_the_user",
        faults::config_dir_not_writable_by_the_user,
    ),
    (
        "faults::lock_held_past_the_timeout",
        faults::lock_held_past_the_timeout,
    ),
    (
        "locks::threads_queue_behind_another_process",
        locks::threads_queue_behind_another_process,
    ),
    (
        "locks::threads_queue_on_a_read_only_file_system",
        locks::threads_queue_on_a_read_only_file_system,
    ),
    (
        "privileges::non_root_policy_owns_files_as_the_user",
        privileges::non_root_policy_owns_files_as_the_user,
    ),
    (
        "audit::sigkill_between_intent_and_outcome",
        audit::sigkill_between_intent_and_outcome,
    ),
    (
        "audit::concurrent_appends_stay_one_chain_in_order",
        audit::concurrent_appends_stay_one_chain_in_order,
    ),
    (
        "audit::intent_on_a_full_disk_fails_and_changes_nothing",
        audit::intent_on_a_full_disk_fails_and_changes_nothing,
    ),
    (
        "audit::intent_on_a_read_only_audit_dir_fails_and_changes_nothing",
        audit::intent_on_a_read_only_audit_dir_fails_and_changes_nothing,
    ),
    (
        "planted::key_dir_symlink_to_a_root_only_dir",
        planted::key_dir_symlink_to_a_root_only_dir,
    ),
    (
        "planted::lock_files_as_symlinks_into_a_root_only_dir",
        planted::lock_files_as_symlinks_into_a_root_only_dir,
    ),
    (
        "planted::config_files_as_symlinks_are_not_read_by_the_cli",
        planted::config_files_as_symlinks_are_not_read_by_the_cli,
    ),
    (
        "planted::access_files_as_symlinks_are_not_read_by_the_daemon",
        planted::access_files_as_symlinks_are_not_read_by_the_daemon,
    ),
    (
        "planted::daemon_keys_as_symlinks_stop_the_start",
        planted::daemon_keys_as_symlinks_stop_the_start,
    ),
    (
        "planted::files_of_the_backup_user_are_not_trusted",
        planted::files_of_the_backup_user_are_not_trusted,
    ),
    (
        "planted::fifo_files_do_not_hang_the_daemon",
        planted::fifo_files_do_not_hang_the_daemon,
    ),
    (
        "planted::repair_never_hands_a_root_file_to_the_backup_user",
        planted::repair_never_hands_a_root_file_to_the_backup_user,
    ),
    (
        "broken_locks::backup_breaking_the_config_lock_loses_no_update",
        broken_locks::backup_breaking_the_config_lock_loses_no_update,
    ),
    (
        "lock_holders::a_lock_kept_by_backup_names_its_holder",
        lock_holders::a_lock_kept_by_backup_names_its_holder,
    ),
    (
        "lock_holders::a_holders_name_never_reaches_roots_terminal_raw",
        lock_holders::a_holders_name_never_reaches_roots_terminal_raw,
    ),
    (
        "lock_holders::a_lock_handed_on_names_the_process_that_holds_it",
        lock_holders::a_lock_handed_on_names_the_process_that_holds_it,
    ),
    (
        "rollback::a_config_put_back_by_backup_is_named_by_verify",
        rollback::a_config_put_back_by_backup_is_named_by_verify,
    ),
    (
        "rollback::an_acl_put_back_by_backup_is_named_by_verify",
        rollback::an_acl_put_back_by_backup_is_named_by_verify,
    ),
    (
        "rollback::a_forged_acl_is_named_by_verify_and_never_made_roots",
        rollback::a_forged_acl_is_named_by_verify_and_never_made_roots,
    ),
    (
        "rollback::a_forged_key_config_is_named_by_verify_and_never_made_roots",
        rollback::a_forged_key_config_is_named_by_verify_and_never_made_roots,
    ),
    (
        "rollback::a_forged_sync_config_is_named_by_verify_and_never_made_roots",
        rollback::a_forged_sync_config_is_named_by_verify_and_never_made_roots,
    ),
    (
        "rollback::a_key_dir_of_backups_making_is_never_made_roots",
        rollback::a_key_dir_of_backups_making_is_never_made_roots,
    ),
    (
        "rollback::a_key_list_moved_away_is_never_replaced_nor_its_keys_trashed",
        rollback::a_key_list_moved_away_is_never_replaced_nor_its_keys_trashed,
    ),
    (
        "rollback::a_sync_config_moved_away_never_lets_a_key_it_names_go",
        rollback::a_sync_config_moved_away_never_lets_a_key_it_names_go,
    ),
    (
        "rollback::a_key_a_job_names_stays_while_the_job_list_is_moved_away",
        rollback::a_key_a_job_names_stays_while_the_job_list_is_moved_away,
    ),
    (
        "rollback::a_key_a_job_names_stays_while_the_job_list_is_rolled_back",
        rollback::a_key_a_job_names_stays_while_the_job_list_is_rolled_back,
    ),
    (
        "rollback::a_disk_filled_by_backup_never_costs_roots_write_record",
        rollback::a_disk_filled_by_backup_never_costs_roots_write_record,
    ),
    (
        "rollback::a_killed_writer_leaves_no_record_temp_past_the_next_write",
        rollback::a_killed_writer_leaves_no_record_temp_past_the_next_write,
    ),
    (
        "read_once::a_key_list_back_after_roots_read_is_never_written_over",
        read_once::a_key_list_back_after_roots_read_is_never_written_over,
    ),
    (
        "read_once::a_key_list_moved_away_after_repair_looked_keeps_its_keys",
        read_once::a_key_list_moved_away_after_repair_looked_keeps_its_keys,
    ),
    (
        "read_once::a_job_list_moved_away_after_roots_lock_lets_no_key_go",
        read_once::a_job_list_moved_away_after_roots_lock_lets_no_key_go,
    ),
    (
        "postinst::postinst_never_hands_a_root_file_to_the_backup_user",
        postinst::postinst_never_hands_a_root_file_to_the_backup_user,
    ),
    (
        "postinst::postinst_never_starts_a_key_dir_beside_a_moved_one",
        postinst::postinst_never_starts_a_key_dir_beside_a_moved_one,
    ),
    (
        "postinst::postinst_makes_the_key_dir_of_a_new_install",
        postinst::postinst_makes_the_key_dir_of_a_new_install,
    ),
    (
        "stand_ins::an_empty_file_of_roots_in_place_of_the_key_list_is_refused",
        stand_ins::an_empty_file_of_roots_in_place_of_the_key_list_is_refused,
    ),
    (
        "stand_ins::an_empty_file_of_roots_in_place_of_the_job_list_lets_no_key_go",
        stand_ins::an_empty_file_of_roots_in_place_of_the_job_list_lets_no_key_go,
    ),
    (
        "stand_ins::a_key_dir_moved_away_with_its_list_is_never_replaced_while_jobs_name_keys",
        stand_ins::a_key_dir_moved_away_with_its_list_is_never_replaced_while_jobs_name_keys,
    ),
    (
        "stand_ins::a_job_list_moved_away_with_the_key_dir_is_never_replaced",
        stand_ins::a_job_list_moved_away_with_the_key_dir_is_never_replaced,
    ),
    (
        "stand_ins::a_blank_file_of_roots_in_place_of_a_list_is_refused",
        stand_ins::a_blank_file_of_roots_in_place_of_a_list_is_refused,
    ),
    (
        "rotate::sigkill_at_every_step_then_the_same_command_again",
        rotate::sigkill_at_every_step_then_the_same_command_again,
    ),
    (
        "rotate::sigkill_then_abort_at_every_step",
        rotate::sigkill_then_abort_at_every_step,
    ),
    (
        "rotate::sigkill_inside_an_abort_then_abort_again",
        rotate::sigkill_inside_an_abort_then_abort_again,
    ),
    (
        "rotate::the_same_rotation_three_times_at_once_makes_one_key",
        rotate::the_same_rotation_three_times_at_once_makes_one_key,
    ),
    (
        "rotate::a_relative_export_file_is_resumed_where_it_was_planned",
        rotate::a_relative_export_file_is_resumed_where_it_was_planned,
    ),
    (
        "rotate::a_fifo_at_the_export_file_never_blocks_a_resumed_rotation",
        rotate::a_fifo_at_the_export_file_never_blocks_a_resumed_rotation,
    ),
    (
        "hostile::root_works_while_backup_swaps_names",
        hostile::root_works_while_backup_swaps_names,
    ),
    (
        "audit::cli_operations_fail_closed_without_a_writable_log",
        audit::cli_operations_fail_closed_without_a_writable_log,
    ),
    (
        "group_commit::sigkill_in_a_batch_at_every_point",
        group_commit::sigkill_in_a_batch_at_every_point,
    ),
    (
        "group_commit::daemon_concurrent_creates_and_imports",
        group_commit::daemon_concurrent_creates_and_imports,
    ),
    (
        "swapped::a_key_file_swapped_before_its_check_fails_the_lone_store",
        swapped::a_key_file_swapped_before_its_check_fails_the_lone_store,
    ),
    (
        "swapped::a_key_file_swapped_in_a_batch_fails_that_key_alone",
        swapped::a_key_file_swapped_in_a_batch_fails_that_key_alone,
    ),
    (
        "whereabouts::a_drill_beside_an_interrupted_move_proves_no_copy_of_a_masked_key",
        whereabouts::a_drill_beside_an_interrupted_move_proves_no_copy_of_a_masked_key,
    ),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("__worker") {
        return worker::run(&args[1..]);
    }
    if args.iter().any(|a| a == "--list") {
        for (name, _) in TESTS {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let filters: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected: Vec<&(&str, TestFn)> = TESTS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f)))
        .collect();

    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    let started = Instant::now();
    for (name, test) in &selected {
        println!("test {name} ...");
        let start = Instant::now();
        let outcome = std::panic::catch_unwind(test);
        let seconds = start.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => println!("test {name} ... ok ({seconds:.1} s)"),
            Err(_) => {
                println!("test {name} ... FAILED ({seconds:.1} s)");
                failed.push(*name);
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; finished in {:.1} s",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        for name in failed {
            println!("    {name}");
        }
        ExitCode::FAILURE
    }
}
