//! Dev-only helpers for integration tests that use real inputs outside the repository.
//!
//! [`kernel_tree`] finds Debian's linux-source-6.12 tree with the same cache-dir rules as
//! `scripts/fetch-kernel-source.sh` (and `racejudge`'s own cache dir), so a tree fetched once
//! serves every test; [`kernel_tree_or_skip`] adds the visible skip message the tests print
//! when it is absent. [`shared_dir`] is the read-only `../shared` next to the repository.
//! [`postgres_url_or_skip`] is the PostgreSQL server the store's tests use.
//! Kept in one place because five test files had drifted copies of these rules.
//!
//! A test whose outside input is missing calls [`missing`]: with `RACEJUDGE_REQUIRE_INPUTS=1`
//! (CI sets it) that is a failure, so CI can never go green on skipped tests; elsewhere it prints
//! a `SKIP` line that `cargo test` does not capture, and the test returns early.

use std::path::{Path, PathBuf};

/// The tree's directory under the cache root.
const TREE: &str = "kernels/linux-source-6.12";

/// `$RACEJUDGE_CACHE_DIR`, else `$XDG_CACHE_HOME/racejudge`, else `~/.cache/racejudge`
/// (an empty variable counts as unset, as in the script).
pub fn cache_root() -> PathBuf {
    dircache::default_root(|key| std::env::var(key).ok())
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

/// The variable that turns a missing input into a failure.
pub const REQUIRE_INPUTS: &str = "RACEJUDGE_REQUIRE_INPUTS";

/// Whether missing inputs fail tests here (`RACEJUDGE_REQUIRE_INPUTS` set and not `0`).
pub fn inputs_required() -> bool {
    required_from(std::env::var(REQUIRE_INPUTS).ok().as_deref())
}

fn required_from(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0")
}

/// Reports that `test` cannot run because `what` is missing: panics when inputs are required,
/// otherwise writes a SKIP line straight to stderr (not through `eprintln!`, which the test
/// harness captures and hides for passing tests).
pub fn missing(test: &str, what: &str) {
    if inputs_required() {
        panic!("{test}: required test input missing: {what} ({REQUIRE_INPUTS} is set)");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIP {test}: {what}");
}

/// `Some(value)` when present; otherwise [`missing`] and `None`.
pub fn require<T>(value: Option<T>, test: &str, what: &str) -> Option<T> {
    if value.is_none() {
        missing(test, what);
    }
    value
}

/// [`kernel_tree`], or [`missing`] naming `test` and the expected path.
pub fn kernel_tree_or_skip(test: &str) -> Option<PathBuf> {
    require(
        kernel_tree(),
        test,
        &format!(
            "no kernel tree at {} (run scripts/fetch-kernel-source.sh)",
            kernel_tree_path().display()
        ),
    )
}

/// The environment variable naming the PostgreSQL server for tests (a `postgres://` URL).
pub const POSTGRES_URL_VAR: &str = "RACEJUDGE_TEST_POSTGRES";

/// `$RACEJUDGE_TEST_POSTGRES` when set and not empty, else [`missing`] for `test`.
pub fn postgres_url_or_skip(test: &str) -> Option<String> {
    let url = std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|v| !v.is_empty());
    require(
        url,
        test,
        &format!("{POSTGRES_URL_VAR} is not set (start a server with scripts/test-postgres.sh)"),
    )
}

/// A database `name` of its own on the test server `server` (a `postgres://` URL), dropped and
/// created anew so that tests run in parallel and a rerun starts clean; returns its URL.
pub async fn fresh_postgres_database(server: &str, name: &str) -> String {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at ${POSTGRES_URL_VAR}: {e}"));
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    admin.close().await.unwrap();
    with_database(server, name)
}

/// `url` with its database name replaced by `name` (query parameters kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let (server, _) = base.rsplit_once('/').expect("a URL with a database path");
    format!("{server}/{name}{query}")
}

/// `../shared` next to the repository root, canonicalised, when present.
pub fn shared_dir() -> Option<PathBuf> {
    // This crate lives at <repo>/crates/testkit, so the repository root is two levels up.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    dir.is_dir().then(|| dir.canonicalize().unwrap_or(dir))
}

/// [`shared_dir`], or [`missing`].
pub fn shared_dir_or_skip(test: &str) -> Option<PathBuf> {
    require(shared_dir(), test, "no ../shared next to the repository")
}

/// Whether `program` runs (`program --version` exits 0), or [`missing`].
pub fn program_or_skip(program: &str, test: &str) -> bool {
    let found = std::process::Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(
        found.then_some(()),
        test,
        &format!("{program} is not installed"),
    )
    .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_replace_the_url_path() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5/base?sslmode=disable", "x"),
            "postgres://u@127.0.0.1:5/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h/base", "x"),
            "postgres://u@h/x"
        );
    }

    fn root(vars: &[(&str, &str)]) -> PathBuf {
        dircache::default_root(|key| {
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
    fn only_a_set_non_zero_variable_requires_inputs() {
        assert!(!required_from(None));
        assert!(!required_from(Some("")));
        assert!(!required_from(Some("0")));
        assert!(required_from(Some("1")));
        assert!(required_from(Some("yes")));
    }

    #[test]
    fn a_missing_input_fails_exactly_when_inputs_are_required() {
        // Run in a child process: the variable must not leak into tests running alongside.
        let exe = std::env::current_exe().unwrap();
        for (value, should_fail) in [("1", true), ("0", false)] {
            let status = std::process::Command::new(&exe)
                .args(["--exact", "tests::probe_missing_input", "--include-ignored"])
                .env(REQUIRE_INPUTS, value)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert_eq!(!status.success(), should_fail, "{REQUIRE_INPUTS}={value}");
        }
    }

    /// Driven by the test above in a child process.
    #[test]
    #[ignore = "run by a_missing_input_fails_exactly_when_inputs_are_required"]
    fn probe_missing_input() {
        assert!(require(None::<()>, "probe", "nothing at all").is_none());
    }
}
