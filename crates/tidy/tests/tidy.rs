//! The checks of `tidy` over the real workspace.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn crate_names() -> BTreeSet<String> {
    std::fs::read_dir(root().join("crates"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn architecture_deps_lines_match_the_manifests() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let declared = tidy::declared_deps(&arch).unwrap();
    let crates = crate_names();
    let mut problems = Vec::new();
    for name in &crates {
        let manifest =
            std::fs::read_to_string(root().join("crates").join(name).join("Cargo.toml")).unwrap();
        let actual = tidy::manifest_deps(&manifest, &crates);
        match declared.get(name) {
            None => problems.push(format!("crates/{name} has no section in ARCHITECTURE.md")),
            Some(said) if *said != actual => problems.push(format!(
                "crates/{name}: ARCHITECTURE.md says (deps: {}), Cargo.toml has {}",
                said.iter().cloned().collect::<Vec<_>>().join(", "),
                actual.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
            Some(_) => {}
        }
    }
    for name in declared.keys() {
        if !crates.contains(name) {
            problems.push(format!(
                "ARCHITECTURE.md describes crates/{name}, which does not exist (mark it (planned))"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn unsafe_only_where_allowed() {
    let root = root().canonicalize().unwrap();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    assert!(files.len() > 50, "found only {} Rust files", files.len());
    let mut problems = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel.starts_with("crates/tidy/") {
            continue; // this checker's own fixtures spell the word out
        }
        let sites = tidy::unsafe_sites(&std::fs::read_to_string(&file).unwrap());
        if !sites.is_empty() && !tidy::UNSAFE_ALLOWED.iter().any(|(f, _)| *f == rel) {
            problems.push(format!("{rel}: unsafe at lines {sites:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "unsafe outside the allowed files:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_crate_takes_the_workspace_lints() {
    let missing: Vec<String> = crate_names()
        .into_iter()
        .filter(|name| {
            let manifest =
                std::fs::read_to_string(root().join("crates").join(name).join("Cargo.toml"))
                    .unwrap();
            !manifest.contains("[lints]\nworkspace = true")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "crates without `[lints] workspace = true`: {missing:?}"
    );
}

#[test]
fn no_unused_dependencies() {
    let mut problems = Vec::new();
    for name in crate_names() {
        let dir = root().join("crates").join(&name);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let mut files = Vec::new();
        for sub in ["src", "tests", "benches", "examples"] {
            rust_files(&dir.join(sub), &mut files);
        }
        let sources: String = files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        for dep in tidy::all_manifest_deps(&manifest) {
            if !tidy::dep_is_used(&dep, &sources) {
                problems.push(format!("crates/{name}: dependency {dep} is not used"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
