//! Architecture checks, run by `cargo test -p tidy` (and so by the README's test command).
//!
//! Each check is a pure function over file contents, so its own unit tests can show it failing on
//! a broken input; `tests/tidy.rs` runs the checks over the real workspace.
//! - [`declared_deps`] / [`manifest_deps`]: ARCHITECTURE.md's `(deps: …)` line of each crate names
//!   exactly the workspace crates its manifest depends on.
//! - [`unsafe_sites`]: `unsafe` appears only in the files [`UNSAFE_ALLOWED`] names.
//! - [`dep_is_used`]: every `[dependencies]` entry is used by the crate's code.

use std::collections::{BTreeMap, BTreeSet};

/// The only files that may contain `unsafe`, and why.
pub const UNSAFE_ALLOWED: &[(&str, &str)] = &[
    (
        "crates/codeindex/src/store.rs",
        "the memory-mapped index tables, behind a checksum and bounds checks",
    ),
    (
        "crates/codeindex/src/persist.rs",
        "mapping the index file; renameat2(RENAME_EXCHANGE) to swap a cache in atomically",
    ),
    (
        "crates/tools/src/path_guard.rs",
        "openat2(RESOLVE_BENEATH): the kernel confines tool paths to the tree",
    ),
];

/// Crate name → the workspace crates ARCHITECTURE.md says it depends on. Sections of crates
/// marked `(planned)` are left out.
pub fn declared_deps(architecture: &str) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let mut out = BTreeMap::new();
    for line in architecture.lines() {
        let Some(rest) = line.strip_prefix("### `crates/") else {
            continue;
        };
        let Some((name, tail)) = rest.split_once('`') else {
            return Err(format!("unterminated crate name: {line}"));
        };
        if tail.contains("(planned)") {
            continue;
        }
        let Some(deps) = tail
            .rsplit_once("(deps: ")
            .map(|(_, d)| d.trim_end().trim_end_matches(')'))
        else {
            return Err(format!("section of crates/{name} has no (deps: …): {line}"));
        };
        // "llm; dev-dependency only": what follows a semicolon is commentary.
        let deps = deps.split(';').next().unwrap_or_default().trim();
        let set = if deps.starts_with("none") {
            BTreeSet::new()
        } else {
            deps.split(',').map(|d| d.trim().to_string()).collect()
        };
        out.insert(name.to_string(), set);
    }
    Ok(out)
}

/// The workspace crates (`workspace_crates`) a manifest lists under `[dependencies]`.
pub fn manifest_deps(manifest: &str, workspace_crates: &BTreeSet<String>) -> BTreeSet<String> {
    let mut in_deps = false;
    let mut out = BTreeSet::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if !in_deps {
            continue;
        }
        let name = line
            .split(['=', '.', ' '])
            .next()
            .unwrap_or_default()
            .trim();
        if workspace_crates.contains(name) {
            out.insert(name.to_string());
        }
    }
    out
}

/// Every `[dependencies]` entry of a manifest (crate names as written, `-` kept).
pub fn all_manifest_deps(manifest: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            let name = line
                .split(['=', '.', ' '])
                .next()
                .unwrap_or_default()
                .trim();
            if !name.is_empty() {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// Whether Rust `sources` mention crate `dep` (as `dep::`, `use dep`, or a `dep!` macro).
pub fn dep_is_used(dep: &str, sources: &str) -> bool {
    let ident = dep.replace('-', "_");
    [
        format!("{ident}::"),
        format!("use {ident}"),
        format!("{ident}!"),
    ]
    .iter()
    .any(|needle| {
        sources.match_indices(needle.as_str()).any(|(at, _)| {
            // Not the tail of a longer name (`grep_regex::` is not `regex::`).
            !sources[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    })
}

/// 1-based lines of `source` that use `unsafe` in code (not in comments or strings).
pub fn unsafe_sites(source: &str) -> Vec<usize> {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or_default();
            let mut in_string = false;
            let mut outside = String::new();
            for c in code.chars() {
                if c == '"' {
                    in_string = !in_string;
                } else if !in_string {
                    outside.push(c);
                }
            }
            outside
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|word| word == "unsafe")
        })
        .map(|(i, _)| i + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deps_line_that_disagrees_with_the_manifest_is_caught() {
        let arch = "### `crates/tools` — the code tools (deps: codeindex)\n\
                    ### `crates/store` (planned) — persistence (deps: report)\n\
                    ### `crates/report` — parser (deps: none of ours)\n\
                    ### `crates/fakellm` — fakes (deps: llm; dev-dependency only)\n";
        let declared = declared_deps(arch).unwrap();
        assert_eq!(declared.len(), 3, "planned sections are skipped");
        assert!(declared["report"].is_empty());
        assert_eq!(declared["fakellm"], BTreeSet::from(["llm".to_string()]));
        let crates: BTreeSet<String> = ["codeindex", "dircache", "tools", "llm"]
            .map(String::from)
            .into();
        let manifest = "[package]\nname = \"tools\"\n[dependencies]\ncodeindex.workspace = true\n\
                        dircache = { path = \"../dircache\" }\nserde.workspace = true\n\
                        [dev-dependencies]\nllm.workspace = true\n";
        let actual = manifest_deps(manifest, &crates);
        assert_eq!(actual, ["codeindex", "dircache"].map(String::from).into());
        assert_ne!(
            actual, declared["tools"],
            "the undeclared dircache dependency shows"
        );
    }

    #[test]
    fn unsafe_in_code_is_found_and_in_comments_or_strings_is_not() {
        let src = "fn a() {}\n// unsafe is discussed here\nlet s = \"unsafe\";\nlet x = unsafe { f() };\nunsafe impl Send for X {}\n";
        assert_eq!(unsafe_sites(src), vec![4, 5]);
    }

    #[test]
    fn an_unused_dependency_is_found() {
        let manifest = "[dependencies]\nregex.workspace = true\ngrep-regex = \"0.1\"\n[dev-dependencies]\nx = 1\n";
        assert_eq!(all_manifest_deps(manifest), ["regex", "grep-regex"]);
        let src = "use grep_regex::RegexMatcherBuilder;\n";
        assert!(dep_is_used("grep-regex", src));
        assert!(
            !dep_is_used("regex", src),
            "grep_regex:: is not a use of regex"
        );
        assert!(dep_is_used("serde_json", "let v = serde_json::json!({});"));
    }

    #[test]
    fn a_section_without_deps_is_an_error() {
        assert!(declared_deps("### `crates/x` — something\n").is_err());
    }
}
