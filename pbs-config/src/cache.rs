//! A parsed config file reused while the file is unchanged.
//!
//! "Unchanged" means the same device, inode, size, mtime and ctime as when
//! it was parsed, taken from `fstat` of the descriptor the text is read from,
//! never from the age of the cache. Writers replace files by rename, so every
//! write gives a new inode, and the cache keeps the file it parsed open, so
//! that inode number is not given to a later file while the parse is cached
//! (ext4 reuses the number freed last: two replaces within one clock tick,
//! on a kernel without fine-grained timestamps, would otherwise put a file
//! of the same size and times back under the cached inode).

use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Error;

use crate::Ownership;
use proxmox_sys::fs::{into_utf8, invalid_utf8};
use proxmox_sys::huge_pages::{self, HugePageBuf, TextBuf};

use crate::dir_handle::{
    DirHandle, FileState, OpenedFile, ReadInto, read_all_into, read_all_with_room,
};
use crate::files::ConfigFile;

struct Cached<T> {
    /// `None`: the file did not exist.
    stamp: Option<FileState>,
    data: Arc<T>,
    /// `None` if no caller asked for it: a load needs none, and SHA-256 of
    /// a 2.5 MiB config costs more than a millisecond.
    digest: Option<[u8; 32]>,
    /// The file the text was read from, held open so its inode (part of
    /// `stamp`) is not freed and given to another file while cached.
    _held: Option<File>,
}

/// The last parse of one config file, as a `T`.
pub(crate) struct ConfigCache<T> {
    cached: Mutex<Option<Cached<T>>>,
    /// Whether the file was read through this cache, or
    /// [`ConfigCache::find_first`] ran.
    used: AtomicBool,
}

impl<T> Default for ConfigCache<T> {
    fn default() -> Self {
        Self {
            cached: Mutex::new(None),
            used: AtomicBool::new(false),
        }
    }
}

impl<T> ConfigCache<T> {
    /// The config `file` in `base` as parsed by `load` from its text, and
    /// the SHA-256 of the text; a missing file is loaded as empty text. The
    /// previous parse is reused while the file is unchanged.
    pub(crate) fn get(
        &self,
        base: Option<&DirHandle>,
        file: &ConfigFile,
        ownership: &Ownership,
        load: impl FnOnce(&str) -> Result<T, Error>,
    ) -> Result<(Arc<T>, [u8; 32]), Error> {
        self.get_owning(base, file, ownership, |text| load(&text))
    }

    /// [`ConfigCache::get`] for a `load` that keeps the text.
    pub(crate) fn get_owning(
        &self,
        base: Option<&DirHandle>,
        file: &ConfigFile,
        ownership: &Ownership,
        load: impl FnOnce(TextBuf) -> Result<T, Error>,
    ) -> Result<(Arc<T>, [u8; 32]), Error> {
        let (data, digest) = self.get_inner(base, file, ownership, load, true)?;
        Ok((data, digest.expect("digest asked for")))
    }

    /// [`ConfigCache::get`] without the digest.
    #[cfg(test)]
    pub(crate) fn get_data(
        &self,
        base: Option<&DirHandle>,
        file: &ConfigFile,
        ownership: &Ownership,
        load: impl FnOnce(&str) -> Result<T, Error>,
    ) -> Result<Arc<T>, Error> {
        self.get_data_owning(base, file, ownership, |text| load(&text))
    }

    /// [`ConfigCache::get_owning`] without the digest.
    pub(crate) fn get_data_owning(
        &self,
        base: Option<&DirHandle>,
        file: &ConfigFile,
        ownership: &Ownership,
        load: impl FnOnce(TextBuf) -> Result<T, Error>,
    ) -> Result<Arc<T>, Error> {
        Ok(self.get_inner(base, file, ownership, load, false)?.0)
    }

    /// On this cache's first use only (nothing read through it before):
    /// the config `file` in `base`, opened and checked as
    /// [`ConfigCache::get`] opens it, handed to `find` as a reader that
    /// ends at the file's limit (and the file's size), and what `find`
    /// makes of it, parsing nothing into the cache; so a process that
    /// reads one entry and exits keeps no text. `None` on any later use
    /// (a second read builds the cached parse, for the reads after it),
    /// where the file is missing or longer than its limit, its read fails
    /// or `find` gives `None`: the caller reads it through the cache then,
    /// which decides (and words any error).
    ///
    /// The file is read through one descriptor: a writer replaces it by
    /// rename, so `find` sees one version of it.
    pub(crate) fn find_first<R>(
        &self,
        base: Option<&DirHandle>,
        file: &ConfigFile,
        ownership: &Ownership,
        find: impl FnOnce(&mut dyn Read, usize) -> std::io::Result<Option<R>>,
    ) -> Result<Option<R>, Error> {
        if self.used.swap(true, Ordering::Relaxed) {
            return Ok(None);
        }
        let Some(base) = base else {
            return Ok(None);
        };
        let Some(opened) = open_config(base, file, ownership)? else {
            return Ok(None);
        };
        let size = opened.stat.size.min(file.max_size) as usize;
        // one byte past the limit: a longer file is left to the cache's
        // read, which refuses it
        let mut limited = (&opened.file).take(file.max_size + 1);
        let found = find(&mut limited, size);
        if limited.limit() == 0 {
            return Ok(None);
        }
        Ok(found.ok().flatten())
    }

    fn get_inner(
        &self,
        base: Option<&DirHandle>,
        file: &ConfigFile,
        ownership: &Ownership,
        load: impl FnOnce(TextBuf) -> Result<T, Error>,
        want_digest: bool,
    ) -> Result<(Arc<T>, Option<[u8; 32]>), Error> {
        self.used.store(true, Ordering::Relaxed);
        let opened = match base {
            Some(base) => open_config(base, file, ownership)?,
            None => None,
        };
        let stamp = opened.as_ref().map(|opened| opened.stat.state());
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
        let (text, held) = match opened {
            Some(mut opened) => (read_text_to_keep(&mut opened, file)?, Some(opened.file)),
            None => (TextBuf::default(), None),
        };
        let digest = want_digest.then(|| openssl::sha::sha256(text.as_bytes()));
        let data = Arc::new(load(text)?);
        *cached = Some(Cached {
            stamp,
            data: Arc::clone(&data),
            digest,
            _held: held,
        });
        Ok((data, digest))
    }
}

/// Opens the config `file` in `base`, refusing what is not a regular file
/// its class may be owned by, or one larger than its limit; `None` if missing.
pub(crate) fn open_config(
    base: &DirHandle,
    file: &ConfigFile,
    ownership: &Ownership,
) -> Result<Option<OpenedFile>, Error> {
    let Some(opened) = base.open_regular(file.name, file.max_size)? else {
        return Ok(None);
    };
    ownership.check_trusted(file.class, &opened.stat, &opened.path)?;
    Ok(Some(opened))
}

/// Room left after a config file's text as read: a writer appends a new
/// entry to it (a key's is about 300 bytes), and text read into a buffer of
/// its exact size would be moved whole to new memory for that: 2.6 MB, 658
/// new pages, at 10,000 keys.
const APPEND_ROOM: usize = 4096;

/// Reads an opened config file whole as UTF-8 text (with room for an
/// appended entry, [`APPEND_ROOM`]).
pub(crate) fn read_text(opened: &mut OpenedFile, file: &ConfigFile) -> Result<String, Error> {
    let data = read_all_with_room(opened, file.max_size, APPEND_ROOM)?;
    into_utf8(data, &opened.path)
}

/// Reads an opened config file whole as UTF-8 text, as [`read_text`] does,
/// but for a parse to keep: into huge pages where this process allows them
/// ([`proxmox_sys::huge_pages::enabled`]) and the file fills one at least.
/// The same text either way; where the mapping cannot be made, `read_text`'s.
pub(crate) fn read_text_to_keep(
    opened: &mut OpenedFile,
    file: &ConfigFile,
) -> Result<TextBuf, Error> {
    let map = huge_pages::enabled().then_some(HugePageBuf::with_capacity as MapFn);
    read_text_with(opened, file, map)
}

/// Makes a [`HugePageBuf`] of a capacity.
type MapFn = fn(usize) -> std::io::Result<HugePageBuf>;

/// [`read_text_to_keep`] with the buffer made by `map` (`None`: no huge
/// pages), so tests can make it fail.
fn read_text_with(
    opened: &mut OpenedFile,
    file: &ConfigFile,
    map: Option<MapFn>,
) -> Result<TextBuf, Error> {
    let size = opened.stat.size.min(file.max_size + 1) as usize;
    // a shorter text gets no huge page: one needs an aligned 2 MiB filled
    let buf = match map {
        Some(map) if size >= huge_pages::HUGE_PAGE_SIZE => map(size + 1).ok(),
        _ => None,
    };
    let Some(buf) = buf else {
        return Ok(read_text(opened, file)?.into());
    };
    match read_all_into(opened, file.max_size, buf)? {
        ReadInto::Buf(buf) => TextBuf::from_huge(buf)
            .map_err(|(buf, err)| invalid_utf8(&buf, err.valid_up_to(), &opened.path)),
        ReadInto::Grown(data) => Ok(into_utf8(data, &opened.path)?.into()),
    }
}

/// Reads the config `file` in `base` (checked as by [`open_config`]) and the
/// SHA-256 of its text; a missing file is empty.
pub(crate) fn read_config_text(
    base: Option<&DirHandle>,
    file: &ConfigFile,
    ownership: &Ownership,
) -> Result<(String, [u8; 32]), Error> {
    let text = read_config(base, file, ownership)?;
    let digest = openssl::sha::sha256(text.as_bytes());
    Ok((text, digest))
}

/// Reads the config `file` in `base` (checked as by [`open_config`]); a
/// missing file (or config dir) is empty.
pub(crate) fn read_config(
    base: Option<&DirHandle>,
    file: &ConfigFile,
    ownership: &Ownership,
) -> Result<String, Error> {
    let Some(base) = base else {
        return Ok(String::new());
    };
    match open_config(base, file, ownership)? {
        Some(mut opened) => read_text(&mut opened, file),
        None => Ok(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A config's text is read with room for a new entry, so a store's
    /// append does not move it (2.6 MB at 10,000 keys) to new memory.
    #[test]
    fn config_text_has_room_for_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        let text = "x".repeat(100_000);
        std::fs::write(dir.path().join("x.cfg"), &text).unwrap();
        let base = DirHandle::open_path(dir.path()).unwrap();
        let file = ConfigFile {
            name: "x.cfg",
            ..crate::files::ENCRYPTION_KEYS_CFG
        };
        let own = Ownership::current_user().unwrap();
        let mut read = read_config(base.as_ref(), &file, &own).unwrap();
        assert_eq!(read, text);
        assert!(read.capacity() >= text.len() + APPEND_ROOM);
        let before = read.as_ptr();
        read.push_str(&"y".repeat(300));
        assert_eq!(read.as_ptr(), before);
    }

    /// `x.cfg` (with the limits of `encryption-keys.cfg`) in `dir`, holding
    /// `text`: its handle, its description, and it opened.
    fn x_cfg(dir: &std::path::Path, text: &[u8]) -> (DirHandle, ConfigFile, OpenedFile) {
        std::fs::write(dir.join("x.cfg"), text).unwrap();
        let base = DirHandle::open_path(dir).unwrap().unwrap();
        let file = ConfigFile {
            name: "x.cfg",
            ..crate::files::ENCRYPTION_KEYS_CFG
        };
        let opened = base
            .open_regular(file.name, file.max_size)
            .unwrap()
            .unwrap();
        (base, file, opened)
    }

    /// Reads `text` as `x.cfg` through [`read_text_with`] with `map`.
    fn read_with(text: &[u8], map: Option<MapFn>) -> Result<TextBuf, Error> {
        let dir = tempfile::tempdir().unwrap();
        let (_, file, mut opened) = x_cfg(dir.path(), text);
        read_text_with(&mut opened, &file, map)
    }

    /// Text of 2 MiB and more: huge pages where asked for, the same bytes
    /// as the plain read; the plain read where the mapping fails, as if no
    /// huge pages had been asked for.
    #[test]
    fn text_to_keep_is_the_same_read_either_way() {
        let line = "encryption-key: k-0001\n\tfingerprint ab:cd\n\n";
        let text = line.repeat(huge_pages::HUGE_PAGE_SIZE / line.len() + 1000);
        let huge = read_with(text.as_bytes(), Some(HugePageBuf::with_capacity)).unwrap();
        assert!(huge.is_huge());
        assert_eq!(*huge, *text);
        let plain = read_with(text.as_bytes(), None).unwrap();
        assert!(!plain.is_huge());
        assert_eq!(*plain, *text);
        for errno in [libc::ENOMEM, libc::EINVAL] {
            let failing: MapFn = match errno {
                libc::ENOMEM => |_| Err(std::io::Error::from_raw_os_error(libc::ENOMEM)),
                _ => |_| Err(std::io::Error::from_raw_os_error(libc::EINVAL)),
            };
            let fallback = read_with(text.as_bytes(), Some(failing)).unwrap();
            assert!(!fallback.is_huge(), "errno {errno}");
            assert_eq!(*fallback, *text, "errno {errno}");
        }
        // a shorter text gets no mapping: it could hold no huge page
        let short = &text[..huge_pages::HUGE_PAGE_SIZE - 1];
        let read = read_with(short.as_bytes(), Some(HugePageBuf::with_capacity)).unwrap();
        assert!(!read.is_huge());
        assert_eq!(*read, *short);
    }

    /// Invalid UTF-8 is refused as by the plain read, naming the line.
    #[test]
    fn text_to_keep_refuses_invalid_utf8_as_the_plain_read() {
        let mut text = "x\n".repeat(huge_pages::HUGE_PAGE_SIZE).into_bytes();
        text[2 * 1000 + 1] = 0xff;
        let huge = read_with(&text, Some(HugePageBuf::with_capacity)).unwrap_err();
        let plain = read_with(&text, None).unwrap_err();
        // the same but for the temp dir's name
        let (huge, plain) = (huge.to_string(), plain.to_string());
        assert!(
            huge.ends_with("/x.cfg\" - invalid UTF-8 on line 1001"),
            "{huge}"
        );
        assert!(
            plain.ends_with("/x.cfg\" - invalid UTF-8 on line 1001"),
            "{plain}"
        );
    }

    /// A file longer than its size when opened (it grew, a root edit in
    /// place) is read whole, as the plain read does, or refused past its
    /// limit; a buffer too small for it is no short read.
    #[test]
    fn text_to_keep_of_a_file_that_grew() {
        let text = "y".repeat(huge_pages::HUGE_PAGE_SIZE + 10);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.cfg");
        let (base, file, mut opened) =
            x_cfg(dir.path(), &text.as_bytes()[..huge_pages::HUGE_PAGE_SIZE]);
        // grows by a whole page and more after its size was taken
        let grown = text.clone() + &"z".repeat(8192);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&grown.as_bytes()[huge_pages::HUGE_PAGE_SIZE..])
            .unwrap();
        let read = read_text_with(&mut opened, &file, Some(HugePageBuf::with_capacity)).unwrap();
        assert_eq!(*read, *grown);

        let small = ConfigFile {
            max_size: huge_pages::HUGE_PAGE_SIZE as u64 + 100,
            ..file
        };
        let mut opened = base.open_regular(file.name, u64::MAX).unwrap().unwrap();
        opened.stat.size = huge_pages::HUGE_PAGE_SIZE as u64;
        let err =
            read_text_with(&mut opened, &small, Some(HugePageBuf::with_capacity)).unwrap_err();
        assert!(err.to_string().contains("grew beyond"), "{err}");
    }

    /// While a parse is cached, its file's inode is not given to a later
    /// file: two replaces by rename between two reads would otherwise put
    /// the first file's inode number back at the path (ext4 hands out the
    /// inode freed last), and with the same size within one clock tick (a
    /// kernel without fine-grained timestamps) the stale parse would be
    /// served for the new text.
    #[test]
    fn a_cached_files_inode_is_not_reused_by_a_later_file() {
        use std::os::unix::fs::MetadataExt;
        // on the disk of the source tree: a tmpfs `/tmp` never reuses inode
        // numbers, so this test could not fail there
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("x.cfg");
        let replace = |text: &str| {
            let tmp = dir.path().join("x.tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        };
        replace("aaaa");
        let base = DirHandle::open_path(dir.path()).unwrap();
        let file = ConfigFile {
            name: "x.cfg",
            ..crate::files::ENCRYPTION_KEYS_CFG
        };
        let own = Ownership::current_user().unwrap();
        let cache = ConfigCache::<String>::default();
        for round in 0..50 {
            let cached = cache
                .get_data(base.as_ref(), &file, &own, |text| Ok(text.to_string()))
                .unwrap();
            let cached_ino = std::fs::metadata(&path).unwrap().ino();
            replace("bbbb");
            replace("cccc");
            assert_ne!(
                std::fs::metadata(&path).unwrap().ino(),
                cached_ino,
                "round {round}: the cached file's inode came back while {cached:?} was cached"
            );
        }
    }

    /// A parse cached without its digest is parsed again (with its digest)
    /// when one is asked for, so data and digest come from one text; a
    /// changed file is parsed again.
    #[test]
    fn digest_and_data_always_come_from_one_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.cfg");
        std::fs::write(&path, "one").unwrap();
        let base = DirHandle::open_path(dir.path()).unwrap();
        let base = base.as_ref();
        let file = crate::files::ENCRYPTION_KEYS_CFG;
        let file = ConfigFile {
            name: "x.cfg",
            ..file
        };
        let own = Ownership::current_user().unwrap();
        let cache = ConfigCache::<String>::default();
        let parses = std::cell::Cell::new(0);
        let load = |text: &str| {
            parses.set(parses.get() + 1);
            Ok(text.to_string())
        };

        assert_eq!(*cache.get_data(base, &file, &own, load).unwrap(), "one");
        assert_eq!(*cache.get_data(base, &file, &own, load).unwrap(), "one");
        assert_eq!(parses.get(), 1);
        let (data, digest) = cache.get(base, &file, &own, load).unwrap();
        assert_eq!(
            (data.as_str(), digest),
            ("one", openssl::sha::sha256(b"one"))
        );
        assert_eq!(parses.get(), 2);
        cache.get_data(base, &file, &own, load).unwrap();
        cache.get(base, &file, &own, load).unwrap();
        assert_eq!(parses.get(), 2);

        // a new file (new inode, other size): parsed again, its own digest
        let new = dir.path().join("x.new");
        std::fs::write(&new, "two!").unwrap();
        std::fs::rename(&new, &path).unwrap();
        let (data, digest) = cache.get(base, &file, &own, load).unwrap();
        assert_eq!(
            (data.as_str(), digest),
            ("two!", openssl::sha::sha256(b"two!"))
        );
        assert_eq!(parses.get(), 3);
    }
}
