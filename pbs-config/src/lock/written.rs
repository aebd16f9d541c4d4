//! What root last wrote, kept beside the mirror locks: a short history of
//! each config file's digests, to tell a rollback from a hand edit.
//!
//! The `backup` user owns the config dir, so it can keep one of root's
//! files by renaming it away before root replaces it, and later put it back
//! (an `encryption-keys.cfg` from before a key was stored or archived). The
//! file is root's, regular, with the right mode: nothing about it tells it
//! from the current one. So every write of a locked config file under a
//! mirror ([`super::mirror`]) also records the digest of what it wrote in
//! `encryption-keys/.locks/<file>.written` (root:root 0600, where `backup`
//! cannot write): one `<unix time> <SHA-256 hex>` line per write, the last
//! [`KEPT`] writes. `verify` compares the file as it is with that record: the
//! last write's digest is fine, and so is a digest never written by root (an
//! administrator's hand edit); the digest of an *earlier* write is a
//! rollback, and a missing or empty file where root last wrote one with
//! content is one too (an empty file of root's, renamed in place of another,
//! reads as a list with nothing in it; no hand edit empties a key list).
//!
//! The new record is written to `<file>.written.next` before the config
//! file and renamed in after it ([`stage_record`]): a disk too full for
//! the record fails the write with nothing changed, and a crash between
//! the two leaves the previous record (the new file then reads as a hand
//! edit until the next write) and the `.next` file, which the next write
//! replaces.
//!
//! What this cannot see (docs/security.md): a rollback to a version older
//! than the last [`KEPT`] writes, or one made where there is no mirror (a
//! config dir only root may change needs none); and it reports, does not
//! undo.

use anyhow::{Error, format_err};
use openssl::sha::sha256;

use proxmox_time::epoch_i64;

use crate::dir_handle::{DirHandle, StagedReplace};
use crate::files::{ConfigFile, ROOT_LOCK_CLASS};
use crate::lock::BackupLockGuard;
use crate::ownership::Ownership;

/// How many writes the record keeps per file.
pub(crate) const KEPT: usize = 64;

/// The largest record read (64 lines of about 80 bytes, with room).
const MAX_RECORD_SIZE: u64 = 64 * 1024;

/// The record's name beside the mirror locks.
fn record_name(file: &ConfigFile) -> String {
    format!("{}.written", file.name)
}

/// The name of the record's next version while it is staged: one fixed
/// name, so a writer killed before putting it in place leaves one such
/// file, which the next write of `file` replaces.
fn next_record_name(file: &ConfigFile) -> String {
    format!("{}.written.next", file.name)
}

/// The path of `file`'s record under `mirror`, for messages: removing it
/// is how an administrator accepts a file emptied by another tool.
pub(crate) fn record_path(mirror: &BackupLockGuard, file: &ConfigFile) -> std::path::PathBuf {
    mirror.dir.entry_path(&record_name(file))
}

/// The writes a record holds, oldest first: (unix time, digest). An
/// unreadable or damaged record is an empty one (it can only hide a
/// rollback, never make a write look like one).
fn read_record(dir: &DirHandle, file: &ConfigFile) -> Vec<(i64, [u8; 32])> {
    let Ok(Some(mut opened)) = dir.open_regular(&record_name(file), MAX_RECORD_SIZE) else {
        return Vec::new();
    };
    let Ok(data) = crate::dir_handle::read_all(&mut opened, MAX_RECORD_SIZE) else {
        return Vec::new();
    };
    let mut writes = Vec::new();
    for line in String::from_utf8_lossy(&data).lines() {
        let mut digest = [0u8; 32];
        let parsed = line.split_once(' ').and_then(|(time, hex)| {
            let time = time.parse().ok()?;
            hex::decode_to_slice(hex, &mut digest).ok()?;
            Some(time)
        });
        match parsed {
            Some(time) => writes.push((time, digest)),
            None => return Vec::new(),
        }
    }
    writes
}

/// The record of `file` with the write of `data` added, staged (its temp
/// file written and synced beside the record, the record untouched) before
/// `data` is written: a disk too full for the record fails the write
/// before anything changed (fail closed). Otherwise the `backup` user could
/// fill a file system that keeps no blocks for root so that the config
/// fits and its record does not, and the record, lost, would no longer tell
/// a key list moved away from a new one.
///
/// Commit it with [`StagedRecord::commit`] once `data` is written; dropped
/// uncommitted (the write failed), the record stays as it was.
pub(crate) fn stage_record<'a>(
    mirror: &'a BackupLockGuard,
    ownership: &Ownership,
    file: &ConfigFile,
    data: &[u8],
) -> Result<StagedRecord<'a>, Error> {
    let dir = &mirror.dir;
    let mut writes = read_record(dir, file);
    writes.push((epoch_i64(), sha256(data)));
    let skip = writes.len().saturating_sub(KEPT);
    let text: String = writes[skip..]
        .iter()
        .map(|(time, digest)| format!("{time} {}\n", hex::encode(digest)))
        .collect();
    let name = record_name(file);
    let options = ownership.options_for(ROOT_LOCK_CLASS);
    let staged = dir
        .stage_replace_through(&name, &next_record_name(file), text.as_bytes(), options)
        .map_err(|err| {
            format_err!(
                "unable to write the record of root's writes of {} - {err:#}; nothing was \
             changed: free space on that file system, then try again",
                file.name
            )
        })?;
    Ok(StagedRecord { dir, name, staged })
}

/// A record of a write, staged by [`stage_record`].
#[must_use = "a staged record is dropped unless committed after the write"]
pub(crate) struct StagedRecord<'a> {
    dir: &'a DirHandle,
    name: String,
    staged: StagedReplace<'a>,
}

impl StagedRecord<'_> {
    /// Puts the staged record in place, after the write it records. That
    /// rename needs no new room; should it fail all the same, the record
    /// is removed instead of reported: the write is done, and a record that
    /// missed it could show that write's predecessor, which the file may
    /// equal again (an archive undone by an unarchive), as a rollback; no
    /// record only hides rollbacks until the next write.
    pub(crate) fn commit(self) {
        if self.staged.commit(None).is_err() {
            let _ = self.dir.unlink(&self.name);
        }
    }
}

/// Whether `text` reads as a list with nothing in it: empty, or only
/// whitespace (which the section config parser skips). Root's writers
/// write an empty list as an empty file, so anything else that lists
/// nothing is another file in its place.
///
/// The first byte that is not ASCII white space decides at once when it is
/// ASCII (a config's first byte, not a pass over its megabytes); only a
/// text that goes on with other bytes is read further.
pub(crate) fn lists_nothing(text: &[u8]) -> bool {
    let is_ascii_space = |byte: &u8| byte.is_ascii() && char::from(*byte).is_whitespace();
    match text.iter().position(|byte| !is_ascii_space(byte)) {
        None => true,
        Some(at) if text[at].is_ascii() => false,
        // what is before `at` is whole characters of white space
        Some(at) => std::str::from_utf8(&text[at..]).is_ok_and(|rest| rest.trim().is_empty()),
    }
}

/// A rollback of a config file: what it is now, against root's last write.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Rollback {
    /// What the file holds now.
    pub(crate) now: Now,
    /// When root last wrote the file.
    pub(crate) last_written_at: i64,
}

/// What a rolled-back config file holds now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Now {
    /// One of root's earlier writes: written at `at`, `writes_since`
    /// writes before the last.
    Earlier { at: i64, writes_since: usize },
    /// Nothing: the file is missing.
    Missing,
    /// Nothing: the file is empty or blank ([`lists_nothing`]), which root
    /// never wrote last. Not a hand edit: root's empty file of another
    /// name (a job list without jobs) renamed in its place, read as a list
    /// with nothing in it.
    Emptied,
}

/// Whether `current` (the file's content; `None`: missing) is an earlier
/// write of root's than its last, as recorded under `mirror`; or missing
/// or empty while root's last write was not.
pub(crate) fn rollback(
    mirror: &BackupLockGuard,
    file: &ConfigFile,
    current: Option<&[u8]>,
) -> Option<Rollback> {
    rollback_of(
        mirror,
        file,
        current.map(|text| (sha256(text), lists_nothing(text))),
    )
}

/// [`rollback`] of a text known by its SHA-256 and whether it lists
/// nothing (a list read and parsed under the lock, decided on as read).
pub(crate) fn rollback_of(
    mirror: &BackupLockGuard,
    file: &ConfigFile,
    current: Option<([u8; 32], bool)>,
) -> Option<Rollback> {
    let writes = read_record(&mirror.dir, file);
    let (last_written_at, last) = *writes.last()?;
    let rollback = |now| {
        Some(Rollback {
            now,
            last_written_at,
        })
    };
    let Some((digest, blank)) = current else {
        return rollback(Now::Missing);
    };
    if digest == last {
        return None;
    }
    match writes.iter().rposition(|(_, old)| *old == digest) {
        Some(at) => rollback(Now::Earlier {
            at: writes[at].0,
            writes_since: writes.len() - 1 - at,
        }),
        None if blank && last != sha256(b"") => rollback(Now::Emptied),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::lists_nothing;
    use crate::ConfigDir;
    use crate::verify::FindingKind;

    /// `lists_nothing` answers as its definition (valid UTF-8 whose trim is
    /// empty) for every text of up to four bytes drawn from ASCII spaces
    /// (vertical tab included: Rust's white space, not `is_ascii_whitespace`),
    /// a letter, the parts of U+0085 and U+00A0 (white space) and of U+00E9
    /// (not), and bytes no UTF-8 holds.
    #[test]
    fn lists_nothing_is_its_definition() {
        let bytes = [
            b' ', b'\t', b'\n', 0x0b, b'x', 0xc2, 0x85, 0xa0, 0xc3, 0xa9, 0xff,
        ];
        let mut level = vec![Vec::new()];
        for _ in 0..=4 {
            for text in &level {
                let defined = std::str::from_utf8(text).is_ok_and(|text| text.trim().is_empty());
                assert_eq!(lists_nothing(text), defined, "{text:?}");
            }
            level = level
                .iter()
                .flat_map(|text| bytes.iter().map(|byte| [&text[..], &[*byte]].concat()))
                .collect();
        }
        assert!(lists_nothing(b" \xc2\xa0\x0b"));
        assert!(!lists_nothing(b" \xc2\xa0x"));
    }

    /// The messages of verify's rollback findings.
    fn rollbacks(dir: &ConfigDir) -> Vec<String> {
        let report = dir.verify(false).unwrap();
        report
            .findings
            .into_iter()
            .filter(|finding| finding.kind == FindingKind::RolledBack)
            .map(|finding| finding.message)
            .collect()
    }

    #[test]
    fn an_earlier_write_put_back_is_a_rollback_a_hand_edit_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        // others may change it: root's writes are recorded beside the mirrors
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let dir = ConfigDir::new(tmp.path()).unwrap();
        let keys = dir.encryption_keys();
        let cfg = tmp.path().join("encryption-keys.cfg");
        let key = |seed: u8| pbs_key_config::KeyConfig::without_password([seed; 32]).unwrap();

        keys.store_key("key-1", &key(1)).unwrap();
        let first = std::fs::read(&cfg).unwrap();
        keys.store_key("key-2", &key(2)).unwrap();
        // an archive undone by an unarchive writes what was there before:
        // the last write, not a rollback
        keys.archive_key("key-2", None).unwrap();
        keys.unarchive_key("key-2", None).unwrap();
        assert_eq!(rollbacks(&dir), Vec::<String>::new());
        let last = std::fs::read(&cfg).unwrap();

        // the first write put back
        std::fs::write(&cfg, &first).unwrap();
        let found = rollbacks(&dir);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains(&format!("{cfg:?} holds what this tool wrote at unix time"))
                && found[0].contains("3 write(s) later")
                && found[0].contains("put an older copy back"),
            "{}",
            found[0]
        );

        // an administrator's edit is no write of root's
        let mut edited = last.clone();
        edited.extend_from_slice(b"\n");
        std::fs::write(&cfg, &edited).unwrap();
        assert_eq!(rollbacks(&dir), Vec::<String>::new());

        // emptied (an empty file of root's renamed in its place): every key
        // would look absent; removing the record accepts an emptied list
        std::fs::write(&cfg, b"").unwrap();
        let found = rollbacks(&dir);
        let record = tmp
            .path()
            .join("encryption-keys/.locks/encryption-keys.cfg.written");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("is empty or blank, but this tool last wrote it")
                && found[0].contains(&format!("remove {record:?}")),
            "{}",
            found[0]
        );
        // blank (a line break of `echo >`) lists nothing as well
        std::fs::write(&cfg, b" \n").unwrap();
        assert_eq!(rollbacks(&dir), found);
        let err = keys.store_key("key-3", &key(3)).unwrap_err().to_string();
        assert!(err.contains("reads as missing or empty"), "{err}");
        std::fs::write(&cfg, b"").unwrap();
        let err = keys.store_key("key-3", &key(3)).unwrap_err().to_string();
        assert!(
            err.contains("reads as missing or empty, but this tool last wrote it")
                && err.contains(&format!("if another tool emptied it, remove {record:?}")),
            "{err}"
        );
        std::fs::remove_file(&record).unwrap();
        assert_eq!(rollbacks(&dir), Vec::<String>::new());
        keys.store_key("key-3", &key(3)).unwrap();

        // moved away
        std::fs::rename(&cfg, tmp.path().join("kept")).unwrap();
        let found = rollbacks(&dir);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains("is missing, but this tool last wrote it"),
            "{}",
            found[0]
        );
    }
}
