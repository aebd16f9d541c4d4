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

use proxmox_section_config::{SectionConfig, SectionConfigData};

/// Largest config file read (about 270,000 keys for `encryption-keys.cfg`).
pub const MAX_CONFIG_SIZE: u64 = 64 * 1024 * 1024;

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

struct Cached {
    stamp: FileStamp,
    data: Arc<SectionConfigData>,
    digest: [u8; 32],
}

/// The last parse of one config file.
#[derive(Default)]
pub(crate) struct ConfigCache {
    cached: Mutex<Option<Cached>>,
}

/// SHA-256 of the empty text: the digest of a missing config file.
pub(crate) fn empty_digest() -> [u8; 32] {
    openssl::sha::sha256(b"")
}

impl ConfigCache {
    /// The parsed config at `path` and the SHA-256 of its text; a missing
    /// file is an empty config.
    pub(crate) fn get(
        &self,
        path: &Path,
        parser: &SectionConfig,
    ) -> Result<(Arc<SectionConfigData>, [u8; 32]), Error> {
        let mut file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Arc::new(SectionConfigData::new()), empty_digest()));
            }
            Err(err) => bail!("unable to open {path:?} - {err}"),
        };
        let meta = file
            .metadata()
            .map_err(|err| format_err!("unable to stat {path:?} - {err}"))?;
        if !meta.is_file() {
            bail!("{path:?} is not a regular file");
        }
        let stamp = FileStamp::of(&meta);

        if let Some(cached) = self.cached.lock().unwrap().as_ref()
            && cached.stamp == stamp
        {
            return Ok((Arc::clone(&cached.data), cached.digest));
        }

        let text = read_limited(&mut file, path, meta.size())?;
        let digest = openssl::sha::sha256(text.as_bytes());
        let data = Arc::new(parser.parse(path, &text)?);
        *self.cached.lock().unwrap() = Some(Cached {
            stamp,
            data: Arc::clone(&data),
            digest,
        });
        Ok((data, digest))
    }
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
