//! Keeps every path a caller (user or model) hands a tool inside the kernel tree.
//!
//! Two layers. [`normalise`] rejects absolute paths and `..` components outright (a model that
//! writes them is confused, and silently re-rooting them would hide that). Then every file-system
//! access goes through [`open`] or [`stat`], which resolve the path *in the kernel* with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` from a handle on the tree root: a symlink may
//! point anywhere inside the tree, but never out of it, and there is no window between checking a
//! path and opening it (a check-then-open guard lets a symlink swapped in between leak a file from
//! outside the tree). Tools read the handle they were given, never the path again.
//!
//! Only where the kernel lacks `openat2` (before 5.6, or a seccomp filter that refuses it) does
//! [`open`] fall back to canonicalising, checking the prefix and opening the canonical path with
//! `O_NOFOLLOW` on its last component.

// One of the few places allowed `unsafe` (crates/tidy lists them with the reason).
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Component, Path};

use crate::ToolError;

/// A path checked to lie inside the tree: `rel` is what tools print (forward slashes, no `./`,
/// empty for the root); `root` is the directory it is relative to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreePath {
    pub rel: String,
    pub root: std::path::PathBuf,
}

impl TreePath {
    /// Opens this path for reading, confined to its root (see [`open`]).
    pub fn open(&self, access: Access) -> Result<(File, Metadata), ToolError> {
        open(&self.root, &self.rel, access)
    }

    /// Metadata of what this path names, confined to its root; `None` when it does not exist.
    pub fn stat(&self) -> Result<Option<Metadata>, ToolError> {
        stat(&self.root, &self.rel)
    }
}

/// What the caller will do with an opened path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read its bytes: it must be a regular file (a FIFO or device would block or never end).
    ReadFile,
    /// List it: it must be a directory.
    ListDir,
}

fn escape(path: &str, reason: &str) -> ToolError {
    ToolError::PathEscape {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

/// Normalises a tree-relative path without touching the file system: strips `./` and
/// duplicate slashes, rejects absolute paths and `..`. An empty result means the tree root.
pub fn normalise(path: &str) -> Result<String, ToolError> {
    let trimmed = path.trim();
    if trimmed.contains('\0') {
        return Err(escape(path, "it contains a NUL byte"));
    }
    let p = Path::new(trimmed);
    let mut parts: Vec<String> = Vec::new();
    for component in p.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(escape(
                    path,
                    "'..' components are not allowed; give a path relative to the tree root",
                ));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(escape(
                    path,
                    "absolute paths are not allowed; give a path relative to the tree root such as net/socket.c",
                ));
            }
        }
    }
    Ok(parts.join("/"))
}

/// [`normalise`] for an optional path argument (a context file, a search prefix): only a hint,
/// so blank means absent, but a given one still must not point outside the tree.
pub fn normalise_optional(path: Option<&str>) -> Result<Option<String>, ToolError> {
    match path.map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok(None),
        Some(p) => Ok(Some(normalise(p)?)),
    }
}

/// Checks `path` lexically (see [`normalise`]) and ties it to `root`. Nothing is opened here:
/// [`TreePath::open`] and [`TreePath::stat`] do the confined resolution.
pub fn resolve(root: &Path, path: &str) -> Result<TreePath, ToolError> {
    Ok(TreePath {
        rel: normalise(path)?,
        root: root.to_path_buf(),
    })
}

/// Opens `rel` (already [normalised](normalise)) under `root` for reading, following symlinks
/// only while they stay beneath `root`, and checks the kind `access` needs. Non-blocking open,
/// so a FIFO planted in the tree is refused instead of hanging the caller.
pub fn open(root: &Path, rel: &str, access: Access) -> Result<(File, Metadata), ToolError> {
    // A directory to list is only located here (O_PATH: nothing is read or triggered, whatever
    // the path names); its kind is checked below, so a file gets "not a directory", not ENOTDIR.
    let flags = match access {
        Access::ReadFile => libc::O_RDONLY | libc::O_NONBLOCK,
        Access::ListDir => libc::O_PATH,
    };
    let file = open_beneath(root, rel, flags).map_err(|e| open_error(rel, e))?;
    let meta = file.metadata().map_err(|source| ToolError::Io {
        path: shown(rel).to_string(),
        source,
    })?;
    let kind_ok = match access {
        Access::ReadFile => meta.is_file(),
        Access::ListDir => meta.is_dir(),
    };
    if !kind_ok {
        let what = if meta.is_dir() {
            "a directory"
        } else if meta.is_file() {
            "a regular file"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(ToolError::NotFound(match access {
            Access::ReadFile if meta.is_dir() => format!(
                "{} is a directory, not a file; use codesearch-dir-index to list it",
                shown(rel)
            ),
            Access::ReadFile => format!("{} is {what}; only regular files are read", shown(rel)),
            Access::ListDir => format!(
                "the path is not a directory: {}; use read-file or codesearch-file-index for files",
                shown(rel)
            ),
        }));
    }
    Ok((file, meta))
}

/// Metadata of `rel` under `root` (symlinks followed while beneath `root`); `None` when nothing
/// is there. Opens with `O_PATH`, which neither reads nor blocks, whatever the file is.
pub fn stat(root: &Path, rel: &str) -> Result<Option<Metadata>, ToolError> {
    match open_beneath(root, rel, libc::O_PATH) {
        Ok(file) => file.metadata().map(Some).map_err(|source| ToolError::Io {
            path: shown(rel).to_string(),
            source,
        }),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(None),
        Err(e) => Err(open_error(rel, e)),
    }
}

fn shown(rel: &str) -> &str {
    if rel.is_empty() { "." } else { rel }
}

fn open_error(rel: &str, e: io::Error) -> ToolError {
    match e.raw_os_error() {
        // openat2 says EXDEV when resolution would leave the root; ELOOP for a magic link.
        Some(libc::EXDEV | libc::ELOOP) => {
            escape(rel, "it is a symlink that resolves outside the kernel tree")
        }
        Some(libc::ENOENT | libc::ENOTDIR) => {
            ToolError::NotFound(format!("the path does not exist: {}", shown(rel)))
        }
        _ => ToolError::Io {
            path: shown(rel).to_string(),
            source: e,
        },
    }
}

/// The kernel's `struct open_how` (linux/openat2.h): libc marks its own copy non-exhaustive.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(root_fd, rel, flags | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`.
fn open_beneath(root: &Path, rel: &str, flags: libc::c_int) -> io::Result<File> {
    let dir = File::open(root)?;
    let name = CString::new(if rel.is_empty() { "." } else { rel })
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: `name` is a NUL-terminated string and `how` a fully initialised open_how that both
    // outlive the call; the size passed is that of the struct passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd >= 0 {
        // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
        return Ok(unsafe { File::from_raw_fd(fd as libc::c_int) });
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOSYS | libc::EPERM) => open_canonical(root, rel, flags),
        _ => Err(err),
    }
}

/// Fallback without `openat2`: canonicalise, check the prefix, open the canonical path without
/// following a final symlink. An intermediate directory swapped for a symlink between the two
/// steps can still escape here; `openat2` closes that.
fn open_canonical(root: &Path, rel: &str, flags: libc::c_int) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let real_root = root.canonicalize()?;
    let real = root.join(rel).canonicalize()?;
    if !real.starts_with(&real_root) {
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    }
    let access_flags = flags & libc::O_ACCMODE;
    std::fs::OpenOptions::new()
        .read(access_flags == libc::O_RDONLY || flags & libc::O_PATH == 0)
        .custom_flags((flags & !libc::O_ACCMODE) | libc::O_NOFOLLOW)
        .open(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_cases() {
        let ok = [
            ("net/socket.c", "net/socket.c"),
            ("./net//socket.c", "net/socket.c"),
            ("", ""),
            ("net/", "net"),
        ];
        for (input, want) in ok {
            assert_eq!(normalise(input).unwrap(), want, "input {input:?}");
        }
        for bad in [
            "../etc/passwd",
            "net/../../x",
            "/etc/passwd",
            "net/..",
            "a\0b",
        ] {
            let err = normalise(bad).unwrap_err();
            assert!(
                matches!(err, ToolError::PathEscape { .. }),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn symlink_outside_is_rejected_and_inside_is_fine() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.c"), "int x;\n").unwrap();
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir(tree.path().join("net")).unwrap();
        std::fs::write(tree.path().join("net/a.c"), "int a;\n").unwrap();
        std::os::unix::fs::symlink(outside.path(), tree.path().join("evil")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.c"), tree.path().join("abs.c"))
            .unwrap();
        std::os::unix::fs::symlink("net/a.c", tree.path().join("alias.c")).unwrap();

        for escaping in ["evil/secret.c", "abs.c"] {
            let err = open(tree.path(), escaping, Access::ReadFile).unwrap_err();
            assert!(
                matches!(err, ToolError::PathEscape { .. }),
                "{escaping}: {err}"
            );
            assert!(stat(tree.path(), escaping).is_err(), "{escaping}");
        }
        let (mut file, meta) = open(tree.path(), "alias.c", Access::ReadFile).unwrap();
        assert!(meta.is_file());
        let mut text = String::new();
        io::Read::read_to_string(&mut file, &mut text).unwrap();
        assert_eq!(text, "int a;\n");
        assert!(stat(tree.path(), "net/missing.c").unwrap().is_none());
        assert!(stat(tree.path(), "").unwrap().unwrap().is_dir());
        open(tree.path(), "net", Access::ListDir).unwrap();
        let err = open(tree.path(), "net", Access::ReadFile).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let tree = tempfile::tempdir().unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(tree.path().join("pipe.c"))
            .status()
            .unwrap();
        assert!(made.success());
        let err = open(tree.path(), "pipe.c", Access::ReadFile).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert!(!stat(tree.path(), "pipe.c").unwrap().unwrap().is_file());
    }

    /// A symlink swapped between a check and an open must never yield the outside file: one
    /// thread flips `flip.c` between an inside file and a link out of the tree while this one
    /// reads it as fast as it can, for a bounded number of rounds.
    #[test]
    fn swapped_symlink_never_leaks_outside_content() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "SECRET\n").unwrap();
        let tree = tempfile::tempdir().unwrap();
        std::fs::write(tree.path().join("inside.c"), "inside\n").unwrap();
        let root = tree.path().to_path_buf();
        let stop = AtomicBool::new(false);
        let (mut reads, mut leaks) = (0u32, 0u32);
        std::thread::scope(|s| {
            s.spawn(|| {
                let link = root.join("flip.c");
                let tmp = root.join("flip.tmp");
                let targets = [outside.path().join("secret"), "inside.c".into()];
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::fs::remove_file(&tmp);
                    let _ = std::os::unix::fs::symlink(&targets[i % 2], &tmp);
                    let _ = std::fs::rename(&tmp, &link);
                    i += 1;
                }
            });
            for _ in 0..20_000 {
                if let Ok((mut f, _)) = open(&root, "flip.c", Access::ReadFile) {
                    let mut text = String::new();
                    let _ = io::Read::read_to_string(&mut f, &mut text);
                    reads += 1;
                    if text.contains("SECRET") {
                        leaks += 1;
                    }
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        assert_eq!(leaks, 0, "{leaks} of {reads} reads leaked the outside file");
        assert!(
            reads > 0,
            "the inside file was never read: the test proved nothing"
        );
    }
}
