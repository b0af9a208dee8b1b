//! `codesearch-dir-index`: the subdirectories and source files of one directory, with how many
//! definitions the index holds for each file (cheap: the index answers per file).

use std::os::fd::AsRawFd;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Ctx;
use crate::path_guard::Access;
use crate::schema::{parse_args, to_json, tool_spec};
use crate::{Tool, ToolError, ToolSpec};

pub const NAME: &str = "codesearch-dir-index";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Args {
    /// Directory relative to the kernel tree root; "" for the root, or e.g. "net/ipv4".
    #[serde(default)]
    pub dir: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct FileEntry {
    /// File name within the directory.
    pub name: String,
    /// Number of definitions the index holds for the file (C sources and headers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definitions: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    /// The directory listed, normalised.
    pub dir: String,
    /// Direct subdirectories, sorted.
    pub subdirs: Vec<String>,
    /// Source files (.c .h .S .rs and docs), sorted.
    pub files: Vec<FileEntry>,
    /// What was left out to stay within the size budget, and how to see it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub struct DirIndex(pub Ctx);

fn listed(name: &str) -> bool {
    [".c", ".h", ".S", ".rs", ".txt", ".rst", ".md"]
        .iter()
        .any(|ext| name.ends_with(ext))
        || matches!(name, "Makefile" | "Kconfig" | "Kbuild")
}

/// The tool's name, description and schemas (needs no index).
pub fn spec() -> ToolSpec {
    tool_spec::<Args, Output>(
        NAME,
        "Lists the subdirectories and source files (.c, .h, .S, .rs, docs, Makefile, Kconfig) of a directory of the kernel tree, with the number of definitions in each C file. Use \"\" for the root.",
    )
}

impl Tool for DirIndex {
    fn spec(&self) -> ToolSpec {
        spec()
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let args: Args = parse_args(NAME, args)?;
        let tp = self.0.resolve(&args.dir)?;
        let (dir, _) = tp.open(Access::ListDir).map_err(|e| match e {
            ToolError::NotFound(m) if m.starts_with("the path does not exist") => {
                ToolError::NotFound(format!("the directory does not exist: {}", tp.rel))
            }
            other => other,
        })?;
        // List the directory that was opened (and checked), not the path again: the handle's
        // /proc entry names exactly that directory.
        let entries =
            std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())).map_err(|source| {
                ToolError::Io {
                    path: tp.rel.clone(),
                    source,
                }
            })?;
        let mut subdirs = Vec::new();
        let mut files = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            // Symlinks are listed by what they point to only when that stays in the tree.
            let child = if tp.rel.is_empty() {
                name.clone()
            } else {
                format!("{}/{name}", tp.rel)
            };
            let Ok(resolved) = self.0.resolve(&child) else {
                continue;
            };
            match resolved.stat() {
                Ok(Some(m)) if m.is_dir() => subdirs.push(name),
                Ok(Some(m)) if m.is_file() && listed(&name) => files.push((name, child)),
                _ => {}
            }
        }
        // Generated-header directories only the build directory has (`include/generated`).
        for generated in self.0.index.generated_dirs() {
            let below = if tp.rel.is_empty() {
                Some(generated.as_str())
            } else {
                generated.strip_prefix(&format!("{}/", tp.rel))
            };
            if let Some(first) = below.and_then(|b| b.split('/').next())
                && !subdirs.iter().any(|d| d == first)
            {
                subdirs.push(first.to_string());
            }
        }
        subdirs.sort();
        files.sort();
        let mut budget = crate::text::Budget::new(self.0.budget);
        let dirs_total = subdirs.len();
        let shown_dirs = budget.take_fitting(subdirs, |d| d.len() + 4);
        let mut note = (shown_dirs.len() < dirs_total).then(|| {
            format!(
                "{} more subdirectories left out",
                dirs_total - shown_dirs.len()
            )
        });
        let shown = budget.take_fitting(&files, |(name, _)| name.len() + 32);
        if shown.len() < files.len() {
            let more = format!(
                "{} more files left out; list a subdirectory or use grepper with PathPrefix",
                files.len() - shown.len()
            );
            note = Some(match note {
                Some(n) => format!("{n}; {more}"),
                None => more,
            });
        }
        // Definition counts only for the files shown: each is an index query.
        let shown_files = shown
            .into_iter()
            .map(|(name, rel)| FileEntry {
                name: name.clone(),
                definitions: (name.ends_with(".c") || name.ends_with(".h"))
                    .then(|| self.0.index.definitions_in_file(rel).len()),
            })
            .collect();
        to_json(&Output {
            dir: tp.rel,
            subdirs: shown_dirs,
            files: shown_files,
            note,
        })
    }
}
