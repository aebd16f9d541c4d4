//! Creating directories with a given mode and owner.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::{Error, bail, format_err};

use super::CreateOptions;

/// Makes sure `path` is a directory (or a symlink to one), creating it (not
/// its parents) if missing.
///
/// A new directory gets the mode and owner of `options` (mode 0755 if none is
/// given); it is created as 0700 and widened only after the owner is set, so it
/// is never briefly open to others. An existing directory is left as it is
/// unless `enforce_permissions` is set, in which case `options` are applied.
pub fn ensure_dir_exists<P: AsRef<Path>>(
    path: P,
    options: &CreateOptions,
    enforce_permissions: bool,
) -> Result<(), Error> {
    let path = path.as_ref();
    let created = match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => true,
        Err(err) if err.kind() == ErrorKind::AlreadyExists => false,
        Err(err) => bail!("unable to create directory {path:?} - {err}"),
    };
    // followed, as upstream: a symlink there is the caller's (root's config
    // dir moved to another disk)
    let meta = std::fs::metadata(path)
        .map_err(|err| format_err!("unable to stat directory {path:?} - {err}"))?;
    if !meta.is_dir() {
        bail!("{path:?} exists but is not a directory");
    }
    if created || enforce_permissions {
        let dir = File::open(path)
            .map_err(|err| format_err!("unable to open directory {path:?} - {err}"))?;
        let options = match options.get_perm() {
            None if created => options.perm(nix::sys::stat::Mode::from_bits_truncate(0o755)),
            _ => *options,
        };
        options.apply_to(&dir, path)?;
    }
    Ok(())
}

/// Creates `path` and any missing parents. Missing parents get
/// `parent_options`, the final directory gets `options`.
///
/// Returns whether the final directory was created.
pub fn create_path<P: AsRef<Path>>(
    path: P,
    parent_options: Option<CreateOptions>,
    options: Option<CreateOptions>,
) -> Result<bool, Error> {
    let path = path.as_ref();
    if path.is_dir() {
        return Ok(false);
    }
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        create_path(parent, parent_options, parent_options)?;
    }
    ensure_dir_exists(path, &options.unwrap_or_default(), false)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use nix::sys::stat::Mode;

    use super::*;

    #[test]
    fn new_directory_gets_exact_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        let opts = CreateOptions::new().perm(Mode::from_bits_truncate(0o750));
        ensure_dir_exists(&path, &opts, false).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o750);
    }

    #[test]
    fn existing_directory_is_fixed_only_when_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let opts = CreateOptions::new().perm(Mode::from_bits_truncate(0o750));
        ensure_dir_exists(&path, &opts, false).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o777);
        ensure_dir_exists(&path, &opts, true).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o750);
    }

    #[test]
    fn a_file_in_the_way_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, b"").unwrap();
        let err = ensure_dir_exists(&path, &CreateOptions::new(), false).unwrap_err();
        assert!(err.to_string().contains("keys"), "{err}");
    }

    #[test]
    fn a_symlink_to_a_directory_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (target, link) = (dir.path().join("disk"), dir.path().join("keys"));
        std::fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        ensure_dir_exists(&link, &CreateOptions::new(), false).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        // a link to a file is no directory
        std::fs::remove_dir(&target).unwrap();
        std::fs::write(&target, b"").unwrap();
        let err = ensure_dir_exists(&link, &CreateOptions::new(), false).unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
    }

    #[test]
    fn create_path_creates_parents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c");
        assert!(create_path(&path, None, None).unwrap());
        assert!(path.is_dir());
        assert!(!create_path(&path, None, None).unwrap());
    }
}
