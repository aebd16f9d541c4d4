//! Reading whole files and replacing them atomically.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Error, bail, format_err};

use super::CreateOptions;

/// Reads a whole file.
pub fn file_get_contents<P: AsRef<Path>>(path: P) -> Result<Vec<u8>, Error> {
    let path = path.as_ref();
    std::fs::read(path).map_err(|err| format_err!("unable to read {path:?} - {err}"))
}

/// Reads a whole file; a missing file gives `Ok(None)`.
pub fn file_get_optional_contents<P: AsRef<Path>>(path: P) -> Result<Option<Vec<u8>>, Error> {
    let path = path.as_ref();
    match std::fs::read(path) {
        Ok(data) => Ok(Some(data)),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => bail!("unable to read {path:?} - {err}"),
    }
}

/// Reads a whole file as UTF-8 text.
pub fn file_read_string<P: AsRef<Path>>(path: P) -> Result<String, Error> {
    let path = path.as_ref();
    into_utf8(file_get_contents(path)?, path)
}

/// Reads a whole file as UTF-8 text; a missing file gives `Ok(None)`.
///
/// Text that is not valid UTF-8 is refused with the line of the first bad
/// byte, never with the bytes themselves.
pub fn file_read_optional_string<P: AsRef<Path>>(path: P) -> Result<Option<String>, Error> {
    let path = path.as_ref();
    match file_get_optional_contents(path)? {
        Some(data) => Ok(Some(into_utf8(data, path)?)),
        None => Ok(None),
    }
}

/// Turns file contents into text; invalid UTF-8 is refused naming `path` and
/// the line of the first bad byte, never the bytes themselves.
pub fn into_utf8(data: Vec<u8>, path: &Path) -> Result<String, Error> {
    if let Err(err) = check_utf8(&data) {
        return Err(invalid_utf8(&data, err.valid_up_to(), path));
    }
    // SAFETY: `check_utf8` found `data` valid UTF-8
    Ok(unsafe { String::from_utf8_unchecked(data) })
}

/// Checks that `data` is UTF-8, as [`std::str::from_utf8`] does (the same
/// answer, the same error), about ten times as fast on the ASCII of a
/// config file (simdutf8's vectors; the standard library's check reads a
/// word at a time).
pub fn check_utf8(data: &[u8]) -> Result<(), std::str::Utf8Error> {
    match simdutf8::basic::from_utf8(data) {
        Ok(_) => Ok(()),
        // only for the error's place: invalid text is read twice
        Err(_) => std::str::from_utf8(data).map(|_| ()),
    }
}

/// The error of [`into_utf8`] for contents `data` of `path`, valid UTF-8
/// up to byte `valid_up_to`.
pub fn invalid_utf8(data: &[u8], valid_up_to: usize, path: &Path) -> Error {
    let line = 1 + data[..valid_up_to].iter().filter(|b| **b == b'\n').count();
    format_err!("unable to read {path:?} - invalid UTF-8 on line {line}")
}

/// Creates a new, empty temp file `<path>.tmp_XXXXXX` beside `path`, with the
/// mode and owner of `options` applied (mode 0600 if none is given).
///
/// Returns the open file and the temp file's path. The caller owns the temp
/// file and must remove it if it does not rename it; [`write_tmp_file`] does
/// that automatically.
pub fn make_tmp_file<P: AsRef<Path>>(
    path: P,
    options: CreateOptions,
) -> Result<(File, PathBuf), Error> {
    let path = path.as_ref();
    for _ in 0..100 {
        let tmp_path = tmp_path_for(path)?;
        let file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            // readable by nobody until the requested mode is applied below
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp_path)
        {
            Ok(file) => file,
            Err(err) if err.kind() == ErrorKind::AlreadyExists => continue,
            Err(err) => bail!("unable to create temporary file for {path:?} - {err}"),
        };
        if let Err(err) = options.apply_to(&file, &tmp_path) {
            let _ = std::fs::remove_file(&tmp_path);
            return Err(err);
        }
        return Ok((file, tmp_path));
    }
    bail!("unable to create temporary file for {path:?} - too many name collisions")
}

fn tmp_path_for(path: &Path) -> Result<PathBuf, Error> {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let random: [u8; 6] = crate::linux::os_random_data()?;
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(".tmp_");
    let suffix: Vec<u8> = random
        .iter()
        .map(|b| CHARS[*b as usize % CHARS.len()])
        .collect();
    name.push(OsString::from_vec(suffix));
    Ok(PathBuf::from(name))
}

/// A complete temp file waiting to be renamed over its target.
///
/// Dropping it without [`TmpFile::persist`] removes the temp file, so no
/// failure path leaves one behind (a crash still can: `verify` finds those).
#[must_use = "a TmpFile is removed again unless persisted"]
pub struct TmpFile {
    tmp_path: PathBuf,
    target: PathBuf,
}

impl TmpFile {
    /// The temp file's path.
    pub fn path(&self) -> &Path {
        &self.tmp_path
    }

    /// Renames the temp file over its target, then (with `fsync`) syncs the
    /// directory so the rename itself is durable.
    pub fn persist(mut self, fsync: bool) -> Result<(), Error> {
        if let Err(err) = std::fs::rename(&self.tmp_path, &self.target) {
            bail!("unable to replace {:?} - {err}", self.target);
        }
        // renamed: nothing is left for Drop to remove
        self.tmp_path = PathBuf::new();
        if fsync {
            fsync_parent_dir(&self.target)?;
        }
        Ok(())
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if !self.tmp_path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// Writes `data` to a new temp file beside `path` (see [`make_tmp_file`]),
/// syncing it to disk if `fsync` is set. The target is not touched yet.
pub fn write_tmp_file<P: AsRef<Path>>(
    path: P,
    data: &[u8],
    options: CreateOptions,
    fsync: bool,
) -> Result<TmpFile, Error> {
    let path = path.as_ref();
    let (mut file, tmp_path) = make_tmp_file(path, options)?;
    let tmp = TmpFile {
        tmp_path,
        target: path.to_owned(),
    };
    if let Err(err) = file.write_all(data) {
        bail!("unable to write {:?} - {err}", tmp.tmp_path);
    }
    if fsync && let Err(err) = file.sync_all() {
        bail!("unable to sync {:?} - {err}", tmp.tmp_path);
    }
    Ok(tmp)
}

/// Atomically replaces the file at `path` with `data`.
///
/// A temp file beside `path` gets the mode and owner of `options` before any
/// data is written; then the data, an fsync (with `fsync`), the rename over
/// `path` and an fsync of the directory. On any failure the temp file is
/// removed and `path` keeps its old content.
pub fn replace_file<P: AsRef<Path>>(
    path: P,
    data: &[u8],
    options: CreateOptions,
    fsync: bool,
) -> Result<(), Error> {
    write_tmp_file(path, data, options, fsync)?.persist(fsync)
}

/// Syncs the directory containing `path`, making a rename or unlink in it durable.
pub fn fsync_parent_dir(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|err| format_err!("unable to sync directory {dir:?} - {err}"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use nix::sys::stat::Mode;

    use super::*;

    /// `check_utf8` answers as `std::str::from_utf8`, the error's place
    /// included, for every pair of valid and invalid pieces (each kind of
    /// multi-byte character; a lone, cut, overlong, surrogate or too-high
    /// sequence) after ASCII prefixes below, at and past the lengths the
    /// vector check starts with, and in a long text.
    #[test]
    fn check_utf8_answers_as_the_standard_library() {
        let pieces: [&[u8]; 12] = [
            b"a",
            b"\n",
            "\u{e9}".as_bytes(),
            "\u{20ac}".as_bytes(),
            "\u{1d11e}".as_bytes(),
            b"\xc3",
            b"\xe2\x82",
            b"\xff",
            b"\x80",
            b"\xc0\xaf",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
        ];
        let mut invalid = 0;
        for prefix in [0, 1, 31, 32, 63, 64, 65, 127, 4095, 100_000] {
            for first in pieces {
                for second in pieces {
                    let text = [&vec![b'x'; prefix][..], first, second, b"tail"].concat();
                    let expected = std::str::from_utf8(&text).map(|_| ());
                    assert_eq!(check_utf8(&text), expected, "{prefix} {first:?} {second:?}");
                    invalid += usize::from(expected.is_err());
                }
            }
        }
        assert!(invalid > 500, "{invalid}");
    }

    fn dir_entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replace_file_writes_content_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.cfg");
        let opts = CreateOptions::new().perm(Mode::from_bits_truncate(0o640));
        replace_file(&path, b"one", opts, true).unwrap();
        replace_file(&path, b"two", opts, true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
        assert_eq!(dir_entries(dir.path()), vec!["a.cfg"]);
    }

    #[test]
    fn replace_file_failure_keeps_old_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // the target is a non-empty directory: the rename must fail
        let path = dir.path().join("target");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();
        let err = replace_file(&path, b"data", CreateOptions::new(), false).unwrap_err();
        assert!(err.to_string().contains("target"), "{err}");
        assert_eq!(dir_entries(dir.path()), vec!["target"]);
    }

    #[test]
    fn dropped_tmp_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let tmp = write_tmp_file(&path, b"data", CreateOptions::new(), false).unwrap();
        let name = tmp
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(name.starts_with("x.tmp_") && name.len() == "x.tmp_".len() + 6);
        assert_eq!(dir_entries(dir.path()).len(), 1);
        drop(tmp);
        assert!(dir_entries(dir.path()).is_empty());
    }

    #[test]
    fn read_optional_string_maps_missing_to_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            file_read_optional_string(dir.path().join("missing"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn invalid_utf8_error_names_path_and_line_not_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.cfg");
        std::fs::write(&path, b"ok\nstill ok\nbad \xff\xfe here\n").unwrap();
        let err = file_read_string(&path).unwrap_err().to_string();
        assert!(err.contains("bad.cfg"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(!err.contains("here"), "{err}");
    }

    #[test]
    fn read_error_names_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = file_get_contents(dir.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
