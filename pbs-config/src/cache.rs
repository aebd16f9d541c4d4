//! A parsed config file reused while the file is unchanged.
//!
//! "Unchanged" means the same device, inode, size, mtime and ctime as when
//! it was parsed, taken from `fstat` of the descriptor the text is read from,
//! never from the age of the cache. Writers replace files by rename, so every
//! write gives a new inode.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Error, bail, format_err};

/// Largest config file read (about 270,000 keys for `encryption-keys.cfg`).
pub const MAX_CONFIG_SIZE: u64 = 64 * 1024 * 1024;

/// Config files are never read through a symlink: the config dir belongs
/// to the backup user, who must not be able to make root read another file.
/// `O_NONBLOCK`: a FIFO put in place of a config file must not block us.
const CONFIG_OPEN_FLAGS: i32 = libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOFOLLOW;

fn open_error(path: &Path, err: std::io::Error) -> Error {
    if err.raw_os_error() == Some(libc::ELOOP) {
        format_err!("{path:?} is a symbolic link - refusing to follow it")
    } else {
        format_err!("unable to open {path:?} - {err}")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

struct Cached<T> {
    /// `None`: the file did not exist.
    stamp: Option<FileStamp>,
    data: Arc<T>,
    /// `None` if no caller asked for it: a load needs none, and SHA-256 of
    /// a 2.5 MiB config costs more than a millisecond.
    digest: Option<[u8; 32]>,
}

/// The last parse of one config file, as a `T`.
pub(crate) struct ConfigCache<T> {
    cached: Mutex<Option<Cached<T>>>,
}

impl<T> Default for ConfigCache<T> {
    fn default() -> Self {
        Self {
            cached: Mutex::new(None),
        }
    }
}

impl<T> ConfigCache<T> {
    /// The config at `path` as parsed by `load` from its text, and the
    /// SHA-256 of the text; a missing file is loaded as empty text. The
    /// previous parse is reused while the file is unchanged.
    pub(crate) fn get(
        &self,
        path: &Path,
        load: impl FnOnce(&str) -> Result<T, Error>,
    ) -> Result<(Arc<T>, [u8; 32]), Error> {
        let (data, digest) = self.get_inner(path, load, true)?;
        Ok((data, digest.expect("digest asked for")))
    }

    /// [`ConfigCache::get`] without the digest.
    pub(crate) fn get_data(
        &self,
        path: &Path,
        load: impl FnOnce(&str) -> Result<T, Error>,
    ) -> Result<Arc<T>, Error> {
        Ok(self.get_inner(path, load, false)?.0)
    }

    fn get_inner(
        &self,
        path: &Path,
        load: impl FnOnce(&str) -> Result<T, Error>,
        want_digest: bool,
    ) -> Result<(Arc<T>, Option<[u8; 32]>), Error> {
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(CONFIG_OPEN_FLAGS)
            .open(path)
        {
            Ok(file) => Some(file),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(open_error(path, err)),
        };
        let meta = match &file {
            Some(file) => Some(
                file.metadata()
                    .map_err(|err| format_err!("unable to stat {path:?} - {err}"))?,
            ),
            None => None,
        };
        if meta.as_ref().is_some_and(|meta| !meta.is_file()) {
            bail!("{path:?} is not a regular file");
        }
        let stamp = meta.as_ref().map(FileStamp::of);

        let mut cached = self.cached.lock().unwrap();
        // a parse cached without its digest is parsed again when one is asked
        // for: data and digest always come from the same text
        if let Some(entry) = cached.as_ref()
            && entry.stamp == stamp
            && (entry.digest.is_some() || !want_digest)
        {
            return Ok((Arc::clone(&entry.data), entry.digest));
        }
        // drop our hold on the old parse before making the new one, so the
        // two are not both in memory because of us
        *cached = None;

        let text = match (file, meta) {
            (Some(mut file), Some(meta)) => read_limited(&mut file, path, meta.size())?,
            _ => String::new(),
        };
        let digest = want_digest.then(|| openssl::sha::sha256(text.as_bytes()));
        let data = Arc::new(load(&text)?);
        *cached = Some(Cached {
            stamp,
            data: Arc::clone(&data),
            digest,
        });
        Ok((data, digest))
    }
}

/// Reads a config file (at most [`MAX_CONFIG_SIZE`] bytes, UTF-8) and the
/// SHA-256 of its text; a missing file is empty.
pub(crate) fn read_config_text(path: &Path) -> Result<(String, [u8; 32]), Error> {
    let text = read_config(path)?;
    let digest = openssl::sha::sha256(text.as_bytes());
    Ok((text, digest))
}

/// Reads a config file (at most [`MAX_CONFIG_SIZE`] bytes, UTF-8); a
/// missing file is empty.
pub(crate) fn read_config(path: &Path) -> Result<String, Error> {
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(CONFIG_OPEN_FLAGS)
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(err) => return Err(open_error(path, err)),
    };
    let meta = file
        .metadata()
        .map_err(|err| format_err!("unable to stat {path:?} - {err}"))?;
    if !meta.is_file() {
        bail!("{path:?} is not a regular file");
    }
    read_limited(&mut file, path, meta.size())
}

fn read_limited(file: &mut File, path: &Path, size: u64) -> Result<String, Error> {
    if size > MAX_CONFIG_SIZE {
        bail!(
            "{path:?} is {} MiB, larger than the {} MiB limit - not a keystore config file?",
            size >> 20,
            MAX_CONFIG_SIZE >> 20
        );
    }
    let mut data = Vec::with_capacity(size as usize);
    file.take(MAX_CONFIG_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(|err| format_err!("unable to read {path:?} - {err}"))?;
    if data.len() as u64 > MAX_CONFIG_SIZE {
        bail!(
            "{path:?} grew beyond the {} MiB limit while reading",
            MAX_CONFIG_SIZE >> 20
        );
    }
    proxmox_sys::fs::into_utf8(data, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parse cached without its digest is parsed again (with its digest)
    /// when one is asked for, so data and digest come from one text; a
    /// changed file is parsed again.
    #[test]
    fn digest_and_data_always_come_from_one_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.cfg");
        std::fs::write(&path, "one").unwrap();
        let cache = ConfigCache::<String>::default();
        let parses = std::cell::Cell::new(0);
        let load = |text: &str| {
            parses.set(parses.get() + 1);
            Ok(text.to_string())
        };

        assert_eq!(*cache.get_data(&path, load).unwrap(), "one");
        assert_eq!(*cache.get_data(&path, load).unwrap(), "one");
        assert_eq!(parses.get(), 1);
        let (data, digest) = cache.get(&path, load).unwrap();
        assert_eq!(
            (data.as_str(), digest),
            ("one", openssl::sha::sha256(b"one"))
        );
        assert_eq!(parses.get(), 2);
        cache.get_data(&path, load).unwrap();
        cache.get(&path, load).unwrap();
        assert_eq!(parses.get(), 2);

        // a new file (new inode, other size): parsed again, its own digest
        let new = dir.path().join("x.new");
        std::fs::write(&new, "two!").unwrap();
        std::fs::rename(&new, &path).unwrap();
        let (data, digest) = cache.get(&path, load).unwrap();
        assert_eq!(
            (data.as_str(), digest),
            ("two!", openssl::sha::sha256(b"two!"))
        );
        assert_eq!(parses.get(), 3);
    }
}
