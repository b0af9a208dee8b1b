//! Read-only access to a kernel tree for the static expert.
//!
//! [`SourceTree`] resolves report paths inside the tree (never outside: `..` and symlinks leaving
//! the root are refused; absolute paths from a reporter's machine are mapped to the longest
//! tree-relative suffix that exists), caches file lines, and finds function definitions. It asks
//! the `codeindex` index first when one is attached and falls back to a local scan of one file
//! (definition header at column 0, then brace matching) so the expert still works on trees the
//! index has not seen and on trees where the index returns nothing.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A function's place in a file (1-based, inclusive lines).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FnSpan {
    pub name: String,
    pub file: String,
    pub start: u32,
    pub end: u32,
}

/// Why a path was refused.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("path {0:?} is outside the kernel tree")]
    Escape(String),
    #[error("{0:?} is not in the kernel tree")]
    Missing(String),
}

/// A kernel tree plus (optionally) its index.
pub struct SourceTree {
    root: PathBuf,
    index: Option<Arc<codeindex::Index>>,
    files: Mutex<HashMap<String, Option<Arc<Vec<String>>>>>,
    /// How the experts' tools are set up: the `.config` (`--config`) and the built kernel's
    /// vmlinux (`--build`) for struct layouts.
    tool_options: tools::ToolOptions,
    /// Cache leases of what this tree reads from (its checkout, its build), so neither is
    /// evicted while the tree is in use.
    _holds: Vec<Arc<dyn std::any::Any + Send + Sync>>,
}

impl SourceTree {
    pub fn new(root: &Path, index: Option<Arc<codeindex::Index>>) -> std::io::Result<Self> {
        Ok(SourceTree {
            root: root.canonicalize()?,
            index,
            files: Mutex::new(HashMap::new()),
            tool_options: tools::ToolOptions::default(),
            _holds: Vec::new(),
        })
    }

    /// Keeps `lease` (anything whose drop releases a cache entry) alive as long as this tree.
    pub fn holding(mut self, lease: Arc<dyn std::any::Any + Send + Sync>) -> Self {
        self._holds.push(lease);
        self
    }

    /// Lets the experts' struct layouts come from this ELF's DWARF (read on first use).
    pub fn with_dwarf_file(mut self, elf: &Path) -> Self {
        self.tool_options = self.tool_options.with_dwarf_file(elf);
        self
    }

    /// Lets the experts' tools decide `#if CONFIG_*` members of struct layouts by this `.config`.
    pub fn with_config_file(mut self, config: &Path) -> Result<Self, tools::ConfigError> {
        self.tool_options = self.tool_options.with_config_file(config)?;
        Ok(self)
    }

    /// The ELF whose DWARF the layouts use, when the kernel was built.
    pub fn dwarf_file(&self) -> Option<&Path> {
        self.tool_options.dwarf.as_deref().map(|d| d.path())
    }

    /// The code tools over this tree's index, with the built kernel's DWARF when there is one;
    /// `None` without an index. One DWARF load is shared by every toolbox made here.
    pub fn toolbox(&self) -> Option<tools::ToolBox> {
        Some(tools::toolbox_with(
            self.index.clone()?,
            self.tool_options.clone(),
        ))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The code index, when one was built (the LLM expert's tools need it).
    pub fn index(&self) -> Option<&Arc<codeindex::Index>> {
        self.index.as_ref()
    }

    /// The directory `rel` is read from: the tree, or for a generated header the build
    /// directory the index was given (see [`codeindex::Index::base_for`]).
    fn base_for(&self, rel: &str) -> &Path {
        if let Some(index) = &self.index {
            let base = index.base_for(rel);
            if index.build_dir() == Some(base) {
                return base;
            }
        }
        &self.root
    }

    /// Maps a report path to a tree-relative path that exists, refusing escapes.
    pub fn resolve(&self, path: &str) -> Result<String, SourceError> {
        let p = Path::new(path);
        if p.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(SourceError::Escape(path.into()));
        }
        let parts: Vec<&str> = p
            .components()
            .filter_map(|c| {
                if let Component::Normal(s) = c {
                    s.to_str()
                } else {
                    None
                }
            })
            .collect();
        // Reporters' absolute paths (/home/u/linux/fs/x.c): try successively shorter suffixes.
        let last_start = if p.is_absolute() {
            parts.len().saturating_sub(1)
        } else {
            1.min(parts.len())
        };
        for start in 0..last_start.max(1) {
            let rel = parts[start..].join("/");
            // The tools' guard decides: symlinks may move within the tree, never out of it.
            match tools::path_guard::stat(self.base_for(&rel), &rel) {
                Ok(Some(meta)) if meta.is_file() => return Ok(rel),
                Err(tools::ToolError::PathEscape { .. }) => {
                    return Err(SourceError::Escape(path.into()));
                }
                _ => {}
            }
        }
        Err(SourceError::Missing(path.into()))
    }

    /// `major.minor` from the top Makefile (`VERSION`, `PATCHLEVEL`), e.g. `6.12`.
    pub fn version(&self) -> Option<String> {
        let lines = self.lines("Makefile")?;
        let get = |key: &str| {
            lines.iter().take(10).find_map(|l| {
                l.strip_prefix(key)
                    .map(|v| v.trim_start_matches([' ', '=']).trim().to_string())
            })
        };
        Some(format!("{}.{}", get("VERSION")?, get("PATCHLEVEL")?))
    }

    /// The lines of a tree-relative file (already resolved), cached.
    pub fn lines(&self, rel: &str) -> Option<Arc<Vec<String>>> {
        if let Ok(files) = self.files.lock()
            && let Some(cached) = files.get(rel)
        {
            return cached.clone();
        }
        let loaded = self.resolve(rel).ok().and_then(|rel| {
            // Opened through the guard and read from that handle, as the tools do.
            let (file, meta) = tools::path_guard::open(
                self.base_for(&rel),
                &rel,
                tools::path_guard::Access::ReadFile,
            )
            .ok()?;
            let mut lines = tools::text::read_lines(file, meta.len(), &rel).ok()?;
            for line in &mut lines {
                if line.ends_with('\r') {
                    line.pop();
                }
            }
            Some(Arc::new(lines))
        });
        if let Ok(mut files) = self.files.lock() {
            files.insert(rel.to_string(), loaded.clone());
        }
        loaded
    }

    /// One line (1-based).
    pub fn line(&self, rel: &str, line: u32) -> Option<String> {
        let lines = self.lines(rel)?;
        lines.get((line as usize).checked_sub(1)?).cloned()
    }

    /// Definitions of function `name`, best first: in `context_file` if it defines it, else anywhere.
    /// The index answers when there is one (it ranks `context_file` first); without it only
    /// `context_file` is scanned.
    pub fn function_defs(&self, name: &str, context_file: Option<&str>) -> Vec<FnSpan> {
        let name = base_function_name(name);
        let Some(index) = &self.index else {
            return context_file
                .and_then(|file| self.scan_function(file, name))
                .into_iter()
                .collect();
        };
        index
            .lookup(name, context_file)
            .into_iter()
            .filter(|d| d.kind == codeindex::EntityKind::Function)
            .map(|d| FnSpan {
                name: d.name,
                file: d.file,
                start: d.start_line,
                end: d.end_line,
            })
            .collect()
    }

    /// The function whose body contains `line`.
    pub fn function_at_line(&self, file: &str, line: u32) -> Option<FnSpan> {
        if let Some(index) = &self.index
            && let Some(def) = index.definition_at_line(file, line)
            && def.kind == codeindex::EntityKind::Function
        {
            return Some(FnSpan {
                name: def.name,
                file: def.file,
                start: def.start_line,
                end: def.end_line,
            });
        }
        let lines = self.lines(file)?;
        let idx = (line as usize).checked_sub(1)?;
        for start in (0..=idx.min(lines.len().saturating_sub(1))).rev() {
            let text = &lines[start];
            if let Some(name) = header_name(text)
                && let Some(end) = body_end(&lines, start)
            {
                if end >= idx {
                    return Some(FnSpan {
                        name,
                        file: file.into(),
                        start: start as u32 + 1,
                        end: end as u32 + 1,
                    });
                }
                // The nearest header above ends before our line: we are outside any function.
                return None;
            }
        }
        None
    }

    fn scan_function(&self, file: &str, name: &str) -> Option<FnSpan> {
        let lines = self.lines(file)?;
        for (i, text) in lines.iter().enumerate() {
            if header_name(text).as_deref() == Some(name)
                && let Some(end) = body_end(&lines, i)
            {
                return Some(FnSpan {
                    name: name.into(),
                    file: file.into(),
                    start: i as u32 + 1,
                    end: end as u32 + 1,
                });
            }
        }
        None
    }
}

/// `foo.isra.0` / `foo.part.1` / `foo.constprop.0` / `foo.cold` → `foo`.
pub fn base_function_name(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// If `text` starts a function definition at column 0, the function's name.
fn header_name(text: &str) -> Option<String> {
    let first = text.chars().next()?;
    if !(first.is_ascii_alphabetic() || first == '_') || text.trim_end().ends_with(';') {
        return None;
    }
    let head = text.split("//").next().unwrap_or(text);
    let paren = head.find('(')?;
    let before = head[..paren].trim_end();
    let name: String = before
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<String>()
        .chars()
        .rev()
        .collect();
    if name.is_empty() || is_keyword_like(&name) || before.contains('=') {
        return None;
    }
    Some(name)
}

fn is_keyword_like(name: &str) -> bool {
    matches!(
        name,
        "if" | "for"
            | "while"
            | "switch"
            | "return"
            | "sizeof"
            | "typeof"
            | "defined"
            | "EXPORT_SYMBOL"
            | "EXPORT_SYMBOL_GPL"
            | "module_init"
            | "module_exit"
            | "__setup"
            | "late_initcall"
    ) || name
        .chars()
        .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
}

/// From a header line, the line of the body's closing brace; `None` for a prototype.
fn body_end(lines: &[String], start: usize) -> Option<usize> {
    let mut depth: i32 = 0;
    let mut paren: i32 = 0;
    let mut opened = false;
    let mut in_comment = false;
    for (i, line) in lines.iter().enumerate().skip(start) {
        let bytes = line.as_bytes();
        let mut j = 0;
        let mut in_str: Option<u8> = None;
        while j < bytes.len() {
            let c = bytes[j];
            if in_comment {
                if c == b'*' && bytes.get(j + 1) == Some(&b'/') {
                    in_comment = false;
                    j += 1;
                }
            } else if let Some(q) = in_str {
                if c == b'\\' {
                    j += 1;
                } else if c == q {
                    in_str = None;
                }
            } else {
                match c {
                    b'/' if bytes.get(j + 1) == Some(&b'*') => in_comment = true,
                    b'/' if bytes.get(j + 1) == Some(&b'/') => break,
                    b'"' | b'\'' => in_str = Some(c),
                    b'(' => paren += 1,
                    b')' => paren -= 1,
                    b';' if !opened && paren == 0 => return None,
                    b'{' => {
                        opened = true;
                        depth += 1;
                    }
                    b'}' => {
                        depth -= 1;
                        if opened && depth == 0 {
                            return Some(i);
                        }
                    }
                    _ => {}
                }
            }
            j += 1;
        }
        // A header that runs on for too long without a body is not a definition.
        if !opened && i > start + 20 {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, SourceTree) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("kernel")).unwrap();
        std::fs::write(
            dir.path().join("kernel/a.c"),
            "static int helper(int x);\n\nstatic int helper(int x)\n{\n\tif (x) {\n\t\treturn 1; /* } */\n\t}\n\treturn 0;\n}\n\nint\nouter(void)\n{\n\treturn helper(2);\n}\n",
        )
        .unwrap();
        let t = SourceTree::new(dir.path(), None).unwrap();
        (dir, t)
    }

    #[test]
    fn finds_definitions_not_prototypes() {
        let (_d, t) = tree();
        let defs = t.function_defs("helper.isra.0", Some("kernel/a.c"));
        assert_eq!(
            defs,
            vec![FnSpan {
                name: "helper".into(),
                file: "kernel/a.c".into(),
                start: 3,
                end: 9
            }]
        );
        assert_eq!(t.function_defs("outer", Some("kernel/a.c"))[0].start, 12);
    }

    #[test]
    fn function_at_line_uses_brace_matching() {
        let (_d, t) = tree();
        assert_eq!(t.function_at_line("kernel/a.c", 6).unwrap().name, "helper");
        assert_eq!(t.function_at_line("kernel/a.c", 14).unwrap().name, "outer");
        assert!(t.function_at_line("kernel/a.c", 10).is_none());
    }

    #[test]
    fn paths_never_escape_and_absolute_paths_map_to_suffixes() {
        let (_d, t) = tree();
        assert!(matches!(
            t.resolve("../etc/passwd"),
            Err(SourceError::Escape(_))
        ));
        assert_eq!(
            t.resolve("/home/someone/linux/kernel/a.c").unwrap(),
            "kernel/a.c"
        );
        assert!(matches!(
            t.resolve("/etc/passwd"),
            Err(SourceError::Missing(_))
        ));
        assert!(t.lines("../../etc/passwd").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn symlink_out_of_the_tree_is_refused() {
        let (d, t) = tree();
        std::os::unix::fs::symlink("/etc", d.path().join("kernel/etc")).unwrap();
        assert!(matches!(
            t.resolve("kernel/etc/hostname"),
            Err(SourceError::Escape(_))
        ));
    }

    /// The experts' toolbox lays structs out from the built kernel's DWARF when the tree has one.
    #[test]
    fn toolbox_decides_config_members_by_the_given_config() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("kernel")).unwrap();
        std::fs::write(
            root.join("kernel/s.c"),
            "struct st {\n#ifdef CONFIG_DEBUG_X\n\tint debug;\n#endif\n\tlong l;\n};\n",
        )
        .unwrap();
        let config = dir.path().join(".config");
        std::fs::write(&config, "CONFIG_DEBUG_X=y\n").unwrap();
        let (index, _) = codeindex::Index::build(
            &root,
            &codeindex::IndexOptions::default(),
            &codeindex::NoProgress,
        )
        .unwrap();
        let index = Arc::new(index);
        let args = serde_json::json!({"Name": "st"});
        let size_of = |tree: &SourceTree| {
            let out = tree
                .toolbox()
                .unwrap()
                .call("codesearch-struct-layout", &args)
                .unwrap();
            out["SizeBytes"].clone()
        };
        let plain = SourceTree::new(&root, Some(index.clone())).unwrap();
        let configured = SourceTree::new(&root, Some(index))
            .unwrap()
            .with_config_file(&config)
            .unwrap();
        // Without a .config the `debug` member is undecided, so the size is not known; with
        // CONFIG_DEBUG_X=y it is int + padding + long = 16 bytes.
        assert_eq!(
            size_of(&configured),
            serde_json::json!(16),
            "{:?}",
            size_of(&configured)
        );
        assert_ne!(size_of(&plain), serde_json::json!(16));
    }

    #[test]
    fn toolbox_uses_the_built_kernels_dwarf() {
        if !testkit::program_or_skip("gcc", "toolbox_uses_the_built_kernels_dwarf") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        std::fs::create_dir_all(root.join("kernel")).unwrap();
        // `long` after `char`: gcc puts it at byte 8; the source engine agrees, so the test
        // tells the two apart by the Source field only.
        std::fs::write(
            root.join("kernel/s.c"),
            "struct pair { char c; long l; };\nstruct pair the_pair;\n",
        )
        .unwrap();
        let obj = dir.path().join("s.o");
        let out = std::process::Command::new("gcc")
            .args(["-g", "-c", "-o"])
            .arg(&obj)
            .arg(root.join("kernel/s.c"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (index, _) = codeindex::Index::build(
            &root,
            &codeindex::IndexOptions::default(),
            &codeindex::NoProgress,
        )
        .unwrap();
        let index = Arc::new(index);
        let args = serde_json::json!({"Name": "pair", "FieldOffset": 9});
        let plain = SourceTree::new(&root, Some(index.clone())).unwrap();
        assert!(plain.dwarf_file().is_none());
        let out = plain
            .toolbox()
            .unwrap()
            .call("codesearch-struct-layout", &args)
            .unwrap();
        assert_eq!(out["Source"], "source", "{out}");
        let built = SourceTree::new(&root, Some(index))
            .unwrap()
            .with_dwarf_file(&obj);
        assert_eq!(built.dwarf_file(), Some(obj.as_path()));
        let out = built
            .toolbox()
            .unwrap()
            .call("codesearch-struct-layout", &args)
            .unwrap();
        assert_eq!(out["Source"], "dwarf", "{out}");
        assert_eq!(out["Covering"][0]["Path"], "l", "{out}");
        assert!(SourceTree::new(&root, None).unwrap().toolbox().is_none());
    }
}
