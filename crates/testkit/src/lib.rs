//! Dev-only helpers for integration tests that use real inputs outside the repository.
//!
//! [`kernel_tree`] finds Debian's linux-source-6.12 tree with the same cache-dir rules as
//! `scripts/fetch-kernel-source.sh` (and `racejudge`'s own cache dir), so a tree fetched once
//! serves every test; [`kernel_tree_or_skip`] adds the visible skip message the tests print
//! when it is absent. [`shared_dir`] is the read-only `../shared` next to the repository.
//! [`postgres_url_or_skip`] is the PostgreSQL server the store's tests use. With
//! `RACEJUDGE_REQUIRE_INPUTS=1` (CI) a missing input fails the test instead of skipping it
//! ([`missing_input`]), so a broken setup cannot pass as a run of skips.
//! Kept in one place because five test files had drifted copies of these rules.

use std::path::{Path, PathBuf};

/// The tree's directory under the cache root.
const TREE: &str = "kernels/linux-source-6.12";

/// `$RACEJUDGE_CACHE_DIR`, else `$XDG_CACHE_HOME/racejudge`, else `~/.cache/racejudge`
/// (an empty variable counts as unset, as in the script).
pub fn cache_root() -> PathBuf {
    cache_root_from(|key| std::env::var(key).ok())
}

/// [`cache_root`] over any environment, so the rules are testable without mutating the
/// process environment (which other tests read concurrently).
fn cache_root_from(var: impl Fn(&str) -> Option<String>) -> PathBuf {
    let env = |key: &str| var(key).filter(|v| !v.is_empty());
    if let Some(dir) = env("RACEJUDGE_CACHE_DIR") {
        return dir.into();
    }
    if let Some(xdg) = env("XDG_CACHE_HOME") {
        return Path::new(&xdg).join("racejudge");
    }
    Path::new(&env("HOME").unwrap_or_else(|| ".".into())).join(".cache/racejudge")
}

/// Where the kernel tree is expected, whether or not it is there.
pub fn kernel_tree_path() -> PathBuf {
    cache_root().join(TREE)
}

/// The unpacked kernel tree, when present: the same test scripts/fetch-kernel-source.sh uses
/// (a top-level `Makefile` and a `kernel/` directory).
pub fn kernel_tree() -> Option<PathBuf> {
    let tree = kernel_tree_path();
    (tree.join("Makefile").is_file() && tree.join("kernel").is_dir()).then_some(tree)
}

/// [`kernel_tree`], printing a visible skip message naming `test` and the expected path when
/// the tree is absent (tests then return early instead of failing on a machine without it).
pub fn kernel_tree_or_skip(test: &str) -> Option<PathBuf> {
    let tree = kernel_tree();
    if tree.is_none() {
        missing_input(
            test,
            &format!(
                "no kernel tree at {} (run scripts/fetch-kernel-source.sh)",
                kernel_tree_path().display()
            ),
        );
    }
    tree
}

/// The environment variable naming the PostgreSQL server for tests (a `postgres://` URL).
pub const POSTGRES_URL_VAR: &str = "RACEJUDGE_TEST_POSTGRES";

/// `$RACEJUDGE_TEST_POSTGRES` when set and not empty, else a [`missing_input`] for `test`.
pub fn postgres_url_or_skip(test: &str) -> Option<String> {
    let url = std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|v| !v.is_empty());
    if url.is_none() {
        missing_input(
            test,
            &format!(
                "{POSTGRES_URL_VAR} is not set (start a server with scripts/test-postgres.sh)"
            ),
        );
    }
    url
}

/// Whether missing inputs fail tests (`RACEJUDGE_REQUIRE_INPUTS=1`) instead of skipping them.
pub fn inputs_required() -> bool {
    std::env::var("RACEJUDGE_REQUIRE_INPUTS").is_ok_and(|v| v == "1")
}

/// Reports that `test` lacks an input (`why`): a visible `SKIP` line, or a panic when
/// [`inputs_required`]. The caller returns early after it.
pub fn missing_input(test: &str, why: &str) {
    use std::io::Write as _;
    if inputs_required() {
        panic!("{test}: {why}, and RACEJUDGE_REQUIRE_INPUTS=1 forbids skipping");
    }
    // Straight to the process's stderr: the test harness captures `eprintln!` of passing
    // tests, which would hide the skip.
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {why}");
}

/// `../shared` next to the repository root, canonicalised, when present.
pub fn shared_dir() -> Option<PathBuf> {
    // This crate lives at <repo>/crates/testkit, so the repository root is two levels up.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    dir.is_dir().then(|| dir.canonicalize().unwrap_or(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(vars: &[(&str, &str)]) -> PathBuf {
        cache_root_from(|key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn cache_root_follows_the_fetch_script_order() {
        let all = [
            ("RACEJUDGE_CACHE_DIR", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(root(&all), PathBuf::from("/c"));
        assert_eq!(root(&all[1..]), PathBuf::from("/x/racejudge"));
        assert_eq!(root(&all[2..]), PathBuf::from("/h/.cache/racejudge"));
        assert_eq!(
            root(&[
                ("RACEJUDGE_CACHE_DIR", ""),
                ("XDG_CACHE_HOME", ""),
                ("HOME", "/h")
            ]),
            PathBuf::from("/h/.cache/racejudge")
        );
        assert_eq!(root(&[]), PathBuf::from("./.cache/racejudge"));
    }

    #[test]
    fn tree_path_ends_with_the_debian_source_dir() {
        assert!(kernel_tree_path().ends_with(TREE));
    }

    #[test]
    fn a_found_tree_has_a_makefile() {
        if let Some(tree) = kernel_tree() {
            assert!(tree.join("Makefile").is_file());
            assert_eq!(tree, kernel_tree_path());
        }
    }

    #[test]
    fn shared_dir_is_next_to_the_repository() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let expected = repo.join("../shared");
        assert_eq!(shared_dir().is_some(), expected.is_dir());
        if let Some(dir) = shared_dir() {
            assert_eq!(dir.file_name().and_then(|n| n.to_str()), Some("shared"));
        }
    }
}
