//! Integration tests of the keystore, one binary for all of them.

// the property test strategy of CryptKey (everything else the tests share
// is in the test kit, pbs-test-kit/)
mod util;

// a verified copy of keys: an export bundle through the drill (needs this
// crate's API, so not in the test kit; the UI tests include it too)
mod verified_copy;

// every ApiType: schema property names are serde's field names
mod api_types;

// proxmox-section-config against upstream's vectors (CryptKey plugin)
mod section_config_vectors;

// the writers' form of encryption-keys.cfg against the generic parse and write
mod key_sections;

// the readers' KeyIndex against the generic parse plus serde: every vector
// file, every one-byte change, random hand edits
mod key_index;

// pbs-key-config against upstream's key file vectors
mod key_vectors;

// the key store library: round trip, modes, swapped files, bad input
mod keystore;

// the trash: delete, repair, restore, purge
mod trash;

// what a caller masked on a key can still see or do through the API:
// audit records, trash entries, restores, the checkpoint (stop 33)
mod masked_keys;

// the proxmox-backup-manager binary: every command, error path and exit
// status, completion and man page
mod cli;

// the administrator's view: upstream's tables and output variables, the
// TTY rule and hidden passwords in a pty, upstream's verbs
mod cli_admin;

// an administrator's mistakes: a config dir spelt with `..`
mod operator_mistakes;

// README.md's quick start, run as written in a scratch dir
mod readme;

// the HTTPS API daemon and the access setup commands, over loopback
mod api;

// logins, wrong secrets of known and unknown ids, bad hints, short
// passwords, unknown ACL paths (issue 14, findings 4 and 5)
mod access;

// faults in one process: symlinks and directories in place of files,
// 100 MB configs and key files
mod faults;

// the secrets audit: every command, every output format, umask 000
mod secrets_audit;

// export bundles of a real host's keys, opened by our code and by the
// documented Python recipe (tests/tools/open_bundle.py)
mod key_export;

// paperkeys of upstream's key files, printed and read back
mod paperkey;

// export, export-verify, restore, paperkey and protected imports through
// the CLI: round trips, refusals, prompts on a terminal
mod key_export_cli;

// the same over HTTPS: two daemons, privileges per key and on the store,
// secrets in request bodies only, refusals naming the field
mod key_export_api;

// upstream's protected key files turned unprotected with their passphrase
mod protected_keys;

// the API router tree against docs/api.md, and every method's 401 and 403
mod router_tree;

// what a fingerprint leaves in memory: no key bytes on the stack
mod key_memory;

// the audit log: tampering by hand, kept checkpoints, foreign keys, secrets
mod audit;

// sync jobs and their keys: upstream's rules through the CLI and the API
mod sync_jobs;

// the audit log: one record pair per operation, through the CLI and the API
mod audit_ops;

// encryption-key rotate through the CLI and the API: end to end, refusals,
// status and abort of a stopped rotation, each step's audit record
mod rotate;

// stores of new keys by several threads at once, made in one batch (group
// commit): the results of one after the other, a failed config write
mod group_commit;
