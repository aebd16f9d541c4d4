//! Who else can change the way to a file: the directories and symbolic
//! links the kernel goes through to reach it, as the path names them.
//!
//! A key file 0600 is safe from others' eyes, not from others' hands:
//! whoever can change a directory on its way can remove the file or put
//! one of theirs at its name, and whoever can change a symbolic link on
//! its way can point the path somewhere else. A later import or restore
//! of the path then takes their file as the key (finding 56). The way is
//! walked as the kernel walks it, component by component, links followed
//! where they are met: a path through a link in another user's directory
//! reaches a place only root can change, and is still theirs to redirect.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// How many symbolic links a walk follows before it gives up (the
/// kernel's `ELOOP` limit).
const MAX_LINKS: usize = 40;

/// Something on the way to a file that others can change.
pub(super) struct Changeable {
    /// `directory` or `symbolic link`.
    pub kind: &'static str,
    /// Where it is, as the walk reached it.
    pub path: PathBuf,
    /// Why others can change it, in words.
    pub why: String,
}

/// The nearest directory or symbolic link on the way to the directory
/// `dir` that others than root and this process's user can change;
/// `None` if there is none, or if the way cannot be read (a warning
/// only: the caller has written its file).
pub(super) fn changeable_on_the_way(dir: &Path) -> Option<Changeable> {
    let euid = nix::unistd::geteuid().as_raw();
    let passed = walk(dir)?;
    passed
        .iter()
        .rev()
        .find_map(|passed| changeable(passed, euid))
}

/// A step of a walk: a directory entered, or a symbolic link followed
/// out of the directory `parent`.
enum Passed {
    Dir(PathBuf),
    Link { link: PathBuf, parent: PathBuf },
}

/// Every directory entered and every symbolic link followed on the way
/// to `dir`, in the kernel's order (a relative `dir` starts at the
/// working directory, reached through each of its ancestors).
fn walk(dir: &Path) -> Option<Vec<Passed>> {
    let mut current = if dir.is_absolute() {
        PathBuf::from("/")
    } else {
        std::env::current_dir().ok()?
    };
    let mut passed: Vec<Passed> = current
        .ancestors()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|dir| Passed::Dir(dir.to_path_buf()))
        .collect();
    let mut todo: VecDeque<OsString> = components(dir);
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == "/" {
            current = PathBuf::from("/");
            continue;
        }
        if name == ".." {
            current.pop();
            passed.push(Passed::Dir(current.clone()));
            continue;
        }
        let next = current.join(&name);
        let metadata = std::fs::symlink_metadata(&next).ok()?;
        if metadata.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return None;
            }
            let target = std::fs::read_link(&next).ok()?;
            for component in components(&target).into_iter().rev() {
                todo.push_front(component);
            }
            passed.push(Passed::Link {
                link: next,
                parent: current.clone(),
            });
        } else {
            current = next;
            passed.push(Passed::Dir(current.clone()));
        }
    }
    Some(passed)
}

/// The names of `path` to walk: `/` for its root, `..` kept, `.` left out.
fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|component| match component {
            Component::RootDir => Some(OsString::from("/")),
            Component::ParentDir => Some(OsString::from("..")),
            Component::Normal(name) => Some(name.to_os_string()),
            Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Whether others can change `passed`, and why.
fn changeable(passed: &Passed, euid: u32) -> Option<Changeable> {
    match passed {
        Passed::Dir(dir) => {
            let metadata = std::fs::metadata(dir).ok()?;
            let mode = metadata.mode() & 0o7777;
            let sticky = mode & 0o1000 != 0;
            let why = if metadata.uid() != 0 && metadata.uid() != euid {
                format!("it belongs to {}", owner(metadata.uid()))
            } else if mode & 0o002 != 0 && !sticky {
                format!("writable by everyone, mode {mode:04o}")
            } else if mode & 0o020 != 0 && !sticky {
                format!(
                    "writable by its group, gid {}, mode {mode:04o}",
                    metadata.gid()
                )
            } else {
                return None;
            };
            Some(Changeable {
                kind: "directory",
                path: dir.clone(),
                why,
            })
        }
        // a link cannot be changed, only removed and made anew: in a
        // directory others can change that directory is named itself; in
        // a sticky one others can write to, the link's owner can remove it
        Passed::Link { link, parent } => {
            let metadata = std::fs::symlink_metadata(link).ok()?;
            let dir_mode = std::fs::metadata(parent).ok()?.mode() & 0o7777;
            let others_write_sticky = dir_mode & 0o1000 != 0 && dir_mode & 0o022 != 0;
            if metadata.uid() == 0 || metadata.uid() == euid || !others_write_sticky {
                return None;
            }
            Some(Changeable {
                kind: "symbolic link",
                path: link.clone(),
                why: format!(
                    "it belongs to {}, in directory {parent:?} of mode {dir_mode:04o}",
                    owner(metadata.uid())
                ),
            })
        }
    }
}

/// `user 'NAME', uid N`, or `a user, uid N` for a uid without a name.
fn owner(uid: u32) -> String {
    match nix::unistd::User::from_uid(uid.into()).ok().flatten() {
        Some(user) => format!("user '{}', uid {uid}", user.name),
        None => format!("a user, uid {uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of the directories a walk entered and the links it
    /// followed, relative to `base`.
    fn walked(base: &Path, dir: &Path) -> Vec<String> {
        walk(dir)
            .unwrap()
            .into_iter()
            .filter_map(|passed| {
                let (tag, path) = match passed {
                    Passed::Dir(path) => ("dir", path),
                    Passed::Link { link, .. } => ("link", link),
                };
                let rel = path.strip_prefix(base).ok()?;
                Some(format!("{tag} {}", rel.display()))
            })
            .collect()
    }

    #[test]
    fn a_walk_enters_what_the_path_names_and_follows_links_where_met() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join("a/b")).unwrap();
        std::fs::create_dir_all(base.join("private/inner")).unwrap();
        std::os::unix::fs::symlink(base.join("private"), base.join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../private/inner", base.join("a/rel")).unwrap();

        assert_eq!(
            walked(&base, &base.join("a/b")),
            ["dir ", "dir a", "dir a/b"]
        );
        assert_eq!(
            walked(&base, &base.join("a/abs/inner")),
            [
                "dir ",
                "dir a",
                "link a/abs",
                "dir ",
                "dir private",
                "dir private/inner"
            ]
        );
        assert_eq!(
            walked(&base, &base.join("a/rel/./../inner")),
            [
                "dir ",
                "dir a",
                "link a/rel",
                "dir ",
                "dir private",
                "dir private/inner",
                "dir private",
                "dir private/inner"
            ]
        );
    }

    #[test]
    fn a_walk_gives_up_on_a_loop_of_links_and_a_missing_name() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        std::os::unix::fs::symlink("loop", base.join("loop")).unwrap();
        assert!(walk(&base.join("loop/x")).is_none());
        assert!(walk(&base.join("missing/x")).is_none());
    }
}
