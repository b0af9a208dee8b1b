//! Keeps every path a caller (user or model) hands a tool inside the kernel tree.
//!
//! [`resolve`] is the single gate: it rejects absolute paths and `..` components outright (a model
//! that writes them is confused, and silently re-rooting them would hide that), then canonicalises
//! the result so that a symlink pointing outside the tree is caught too. Every tool that touches
//! the file system goes through it.

use std::path::{Component, Path, PathBuf};

use crate::ToolError;

/// A path checked to lie inside the tree: `rel` is what tools print (forward slashes, no `./`),
/// `abs` is what they open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreePath {
    pub rel: String,
    pub abs: PathBuf,
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

/// Checks `path` (relative to `root`) and resolves it. The target need not exist; when it does,
/// symlinks are followed and the real location must still be under the real root.
pub fn resolve(root: &Path, path: &str) -> Result<TreePath, ToolError> {
    let rel = normalise(path)?;
    let abs = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(&rel)
    };
    if let Ok(real) = abs.canonicalize() {
        let real_root = root.canonicalize().map_err(|source| ToolError::Io {
            path: root.display().to_string(),
            source,
        })?;
        if !real.starts_with(&real_root) {
            return Err(escape(
                path,
                "it is a symlink that resolves outside the kernel tree",
            ));
        }
    }
    Ok(TreePath { rel, abs })
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
        std::os::unix::fs::symlink("net/a.c", tree.path().join("alias.c")).unwrap();

        let err = resolve(tree.path(), "evil/secret.c").unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        let ok = resolve(tree.path(), "alias.c").unwrap();
        assert_eq!(ok.rel, "alias.c");
        assert!(resolve(tree.path(), "net/missing.c").is_ok());
    }
}
