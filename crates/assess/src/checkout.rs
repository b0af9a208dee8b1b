//! `kernel-checkouter`: a kernel source tree for (repository, commit), from the cache.
//!
//! [`Checkouter`] keeps one bare mirror per repository URL under `<cache>/git/<hash>.git`
//! (created and fetched under a per-mirror flock, so concurrent jobs share it safely), fetches
//! only the wanted commit when the mirror lacks it (a mirror of a repository on this machine reads
//! that repository's objects in place instead of copying them), resolves it to a full hash, and exports the
//! tree with `git archive | tar -x` into a `checkouts` cache entry keyed by (URL, full hash).
//! `git archive` rather than `git worktree add` because a cache entry is renamed into place
//! after filling, and a worktree's `.git` back-links would not survive the rename.
//!
//! The real `git` binary does the work; every failure is a [`CheckoutError`] carrying git's stderr.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cache::{Cache, CacheError, Lease};

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The commit or URL is not usable as given (user error).
    #[error("bad {what} {value:?}: {reason}")]
    BadInput {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// git failed or is missing (environment).
    #[error("git {args}: {message}")]
    Git { args: String, message: String },
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// Checks out kernel trees into the cache.
#[derive(Debug, Clone)]
pub struct Checkouter {
    cache: Cache,
}

/// A checked-out tree, held for as long as this lives.
#[derive(Debug)]
pub struct Checkout {
    pub commit: String,
    lease: Lease,
}

impl Checkout {
    pub fn path(&self) -> &Path {
        self.lease.path()
    }
}

impl Checkouter {
    pub fn new(cache: Cache) -> Self {
        Checkouter { cache }
    }

    /// The bare mirror used for `url`.
    pub fn mirror_path(&self, url: &str) -> PathBuf {
        self.cache
            .root()
            .join("git")
            .join(format!("{}.git", Cache::key_hash(url)))
    }

    pub fn checkout(&self, url: &str, commit: &str) -> Result<Checkout, CheckoutError> {
        validate_url(url)?;
        validate_commit(commit)?;
        let mirror = self.mirror_path(url);
        let full = self.ensure_commit(&mirror, url, commit)?;
        let description = format!("repo {url} commit {full}");
        let lease = self
            .cache
            .get_or_fill("checkouts", &description, |dir: &Path| {
                export(&mirror, &full, dir)
            })?;
        Ok(Checkout {
            commit: full,
            lease,
        })
    }

    /// Makes sure the mirror has `commit` and returns its full hash.
    fn ensure_commit(
        &self,
        mirror: &Path,
        url: &str,
        commit: &str,
    ) -> Result<String, CheckoutError> {
        let git_dir = mirror.parent().unwrap_or(mirror);
        fs::create_dir_all(git_dir).map_err(|e| CheckoutError::Git {
            args: "init".into(),
            message: format!("cannot create {}: {e}", git_dir.display()),
        })?;
        let lock_path = mirror.with_extension("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                CheckoutError::Cache(CacheError::Io {
                    path: lock_path.clone(),
                    source: e,
                })
            })?;
        // Per-mirror lock: fetches into one mirror are serialised, other repos are unaffected.
        lock.lock().map_err(|e| {
            CheckoutError::Cache(CacheError::Io {
                path: lock_path.clone(),
                source: e,
            })
        })?;
        let fresh = !mirror.join("HEAD").is_file();
        if fresh {
            let tmp = mirror.with_extension(format!("tmp-{}", std::process::id()));
            let _ = fs::remove_dir_all(&tmp);
            git(None, &["init", "--quiet", "--bare", &tmp.to_string_lossy()])?;
            borrow_local_objects(&tmp, url);
            fs::rename(&tmp, mirror).map_err(|e| CheckoutError::Git {
                args: "init --bare".into(),
                message: format!("cannot move mirror into place: {e}"),
            })?;
        }
        let fetched = fetch_commit(mirror, url, commit);
        if fetched.is_err() && fresh {
            // A mirror made for this call that got nothing leaves no trace: an empty mirror
            // would only look like a cached repository to the next call.
            let _ = fs::remove_dir_all(mirror);
            let _ = fs::remove_file(&lock_path);
        }
        fetched
    }
}

/// Fetches `commit` from `url` into `mirror` unless it is there, and returns its full hash.
fn fetch_commit(mirror: &Path, url: &str, commit: &str) -> Result<String, CheckoutError> {
    {
        let is_hash = looks_like_hash(commit);
        // A hash names the same commit forever; a branch name must be fetched again.
        if is_hash && let Ok(full) = resolve(mirror, commit) {
            return Ok(full);
        }
        tracing::info!(url, commit, "fetching commit into mirror");
        // Fetching one object by name works for full hashes and branch/tag names; servers that
        // refuse unadvertised hashes (and abbreviated hashes) need the full fetch below.
        if git(
            Some(mirror),
            &["fetch", "--quiet", "--no-tags", "--", url, commit],
        )
        .is_ok()
        {
            let fetched = if is_hash {
                resolve(mirror, commit)
            } else {
                resolve(mirror, "FETCH_HEAD")
            };
            if let Ok(full) = fetched {
                return Ok(full);
            }
        }
        git(
            Some(mirror),
            &[
                "fetch",
                "--quiet",
                "--tags",
                "--",
                url,
                "+refs/heads/*:refs/remotes/origin/*",
            ],
        )?;
        resolve(mirror, commit)
            .or_else(|_| resolve(mirror, &format!("refs/remotes/origin/{commit}")))
            .map_err(|_| CheckoutError::BadInput {
                what: "commit",
                value: commit.into(),
                reason: format!("not found in {url}"),
            })
    }
}

/// When `url` is a repository on this machine (a user's own clone), lets the new mirror read
/// its objects in place (`objects/info/alternates`) instead of copying them: a fetch from it then
/// only records the commit, where packing a kernel's objects for the transfer took minutes (a
/// 1.4 GB tree of loose objects: 146 s to the first LLM request, against about 30 s borrowed).
/// A repository that later prunes a fetched commit only makes that commit unavailable again (a
/// git error naming it); a failure here just means the objects are copied as usual.
fn borrow_local_objects(mirror: &Path, url: &str) {
    let local = Path::new(url.strip_prefix("file://").unwrap_or(url));
    if !local.is_dir() {
        return;
    }
    let Ok(objects) = git(
        None,
        &[
            "-C",
            &local.to_string_lossy(),
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            "objects",
        ],
    ) else {
        return;
    };
    let objects = objects.trim();
    if Path::new(objects).is_dir() {
        let alternates = mirror.join("objects/info/alternates");
        if let Err(e) = fs::write(&alternates, format!("{objects}\n")) {
            tracing::debug!(error = %e, "cannot borrow the local repository's objects; copying them");
        }
    }
}

fn looks_like_hash(s: &str) -> bool {
    (4..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn validate_commit(commit: &str) -> Result<(), CheckoutError> {
    let bad = |reason: &str| {
        Err(CheckoutError::BadInput {
            what: "commit",
            value: commit.into(),
            reason: reason.into(),
        })
    };
    if commit.is_empty() {
        return bad("empty");
    }
    if commit.starts_with('-') {
        return bad("must not start with '-'");
    }
    if !commit
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
        || commit.contains("..")
    {
        return bad("use a commit hash or a branch/tag name");
    }
    Ok(())
}

fn validate_url(url: &str) -> Result<(), CheckoutError> {
    if url.is_empty() || url.starts_with('-') || url.contains(['\n', '\0']) {
        return Err(CheckoutError::BadInput {
            what: "repository URL",
            value: url.into(),
            reason: "empty or starts with '-'".into(),
        });
    }
    Ok(())
}

fn resolve(mirror: &Path, rev: &str) -> Result<String, CheckoutError> {
    let out = git(
        Some(mirror),
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("{rev}^{{commit}}"),
        ],
    )?;
    Ok(out.trim().to_string())
}

/// Runs git, returning stdout, or an error with stderr.
fn git(git_dir: Option<&Path>, args: &[&str]) -> Result<String, CheckoutError> {
    let mut cmd = Command::new("git");
    if let Some(dir) = git_dir {
        cmd.arg("--git-dir").arg(dir);
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .env("GIT_TERMINAL_PROMPT", "0");
    let out = cmd.output().map_err(|e| CheckoutError::Git {
        args: args.join(" "),
        message: format!("cannot run git: {e}"),
    })?;
    if !out.status.success() {
        return Err(CheckoutError::Git {
            args: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `git archive <commit> | tar -x -C dir`.
fn export(mirror: &Path, commit: &str, dir: &Path) -> Result<(), CheckoutError> {
    let mut archive = Command::new("git")
        .arg("--git-dir")
        .arg(mirror)
        .args(["archive", "--format=tar", commit])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| CheckoutError::Git {
            args: "archive".into(),
            message: e.to_string(),
        })?;
    let Some(stdout) = archive.stdout.take() else {
        return Err(CheckoutError::Git {
            args: "archive".into(),
            message: "no stdout pipe".into(),
        });
    };
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .stdin(stdout)
        .output()
        .map_err(|e| CheckoutError::Git {
            args: "archive | tar".into(),
            message: format!("cannot run tar: {e}"),
        })?;
    let archived = archive.wait_with_output().map_err(|e| CheckoutError::Git {
        args: "archive".into(),
        message: e.to_string(),
    })?;
    if !archived.status.success() {
        return Err(CheckoutError::Git {
            args: format!("archive {commit}"),
            message: String::from_utf8_lossy(&archived.stderr).trim().to_string(),
        });
    }
    if !tar.status.success() {
        return Err(CheckoutError::Git {
            args: "archive | tar -x".into(),
            message: String::from_utf8_lossy(&tar.stderr).trim().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A repo with two commits that differ in one file.
    fn repo() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        sh(dir.path(), &["init", "--quiet", "-b", "main"]);
        fs::create_dir_all(dir.path().join("kernel")).unwrap();
        fs::write(dir.path().join("kernel/sched.c"), "int x;\n").unwrap();
        sh(dir.path(), &["add", "."]);
        sh(dir.path(), &["commit", "--quiet", "-m", "one"]);
        let first = sh(dir.path(), &["rev-parse", "HEAD"]);
        fs::write(dir.path().join("kernel/sched.c"), "int x, y;\n").unwrap();
        sh(dir.path(), &["commit", "--quiet", "-am", "two"]);
        let second = sh(dir.path(), &["rev-parse", "HEAD"]);
        (dir, first, second)
    }

    #[test]
    fn checks_out_each_commit_from_a_local_repo() {
        let (repo, first, second) = repo();
        let cache_dir = tempfile::tempdir().unwrap();
        let co = Checkouter::new(Cache::new(cache_dir.path()));
        let url = repo.path().to_string_lossy().into_owned();
        let a = co.checkout(&url, &first).unwrap();
        let b = co.checkout(&url, &second[..12]).unwrap();
        assert_eq!(
            fs::read_to_string(a.path().join("kernel/sched.c")).unwrap(),
            "int x;\n"
        );
        assert_eq!(
            fs::read_to_string(b.path().join("kernel/sched.c")).unwrap(),
            "int x, y;\n"
        );
        assert_eq!(
            b.commit, second,
            "abbreviated hashes resolve to the full hash"
        );
        let mirror = co.mirror_path(&url);
        assert!(mirror.join("HEAD").is_file(), "one shared bare mirror");
        // A local repository's objects are read in place, not copied into the mirror.
        let alternates = fs::read_to_string(mirror.join("objects/info/alternates")).unwrap();
        assert_eq!(
            Path::new(alternates.trim()),
            repo.path().canonicalize().unwrap().join(".git/objects")
        );
        let copied: Vec<String> = fs::read_dir(mirror.join("objects"))
            .unwrap()
            .flatten()
            .filter(|d| d.file_name() != "info")
            .flat_map(|d| fs::read_dir(d.path()).unwrap().flatten())
            .map(|o| o.path().display().to_string())
            .collect();
        assert!(copied.is_empty(), "objects were copied: {copied:?}");
        let again = co.checkout(&url, &first).unwrap();
        assert_eq!(again.path(), a.path());
    }

    #[test]
    fn concurrent_checkouts_of_one_commit_share_the_entry() {
        let (repo, first, _) = repo();
        let cache_dir = tempfile::tempdir().unwrap();
        let co = Checkouter::new(Cache::new(cache_dir.path()));
        let url = repo.path().to_string_lossy().into_owned();
        let paths: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let co = co.clone();
                    let (url, first) = (url.clone(), first.clone());
                    s.spawn(move || {
                        let c = co.checkout(&url, &first).unwrap();
                        assert!(c.path().join("kernel/sched.c").is_file());
                        c.path().to_path_buf()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(paths.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn unknown_commit_is_bad_input() {
        let (repo, _, _) = repo();
        let cache_dir = tempfile::tempdir().unwrap();
        let co = Checkouter::new(Cache::new(cache_dir.path()));
        let err = co
            .checkout(
                &repo.path().to_string_lossy(),
                "0123456789abcdef0123456789abcdef01234567",
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                CheckoutError::BadInput { .. } | CheckoutError::Git { .. }
            ),
            "{err}"
        );
    }

    #[test]
    fn failed_first_fetch_leaves_no_mirror_behind() {
        let cache_dir = tempfile::tempdir().unwrap();
        let co = Checkouter::new(Cache::new(cache_dir.path()));
        let missing = cache_dir.path().join("no-such-repo");
        let url = missing.to_string_lossy().into_owned();
        co.checkout(&url, "main").unwrap_err();
        let mirror = co.mirror_path(&url);
        assert!(
            !mirror.exists(),
            "empty mirror left at {}",
            mirror.display()
        );
        assert!(!mirror.with_extension("lock").exists(), "lock file left");

        // A mirror that already holds commits survives a failed fetch of an unknown one.
        let (repo, first, _) = repo();
        let url = repo.path().to_string_lossy().into_owned();
        co.checkout(&url, &first).unwrap();
        co.checkout(&url, "no-such-branch").unwrap_err();
        assert!(co.mirror_path(&url).join("HEAD").is_file());
    }

    #[test]
    fn option_like_commit_is_rejected_before_git_runs() {
        let cache_dir = tempfile::tempdir().unwrap();
        let co = Checkouter::new(Cache::new(cache_dir.path()));
        let err = co
            .checkout("/nonexistent", "--upload-pack=evil")
            .unwrap_err();
        assert!(matches!(
            err,
            CheckoutError::BadInput { what: "commit", .. }
        ));
    }

    #[test]
    fn missing_repository_is_a_git_error() {
        let cache_dir = tempfile::tempdir().unwrap();
        let co = Checkouter::new(Cache::new(cache_dir.path()));
        let err = co.checkout("/nonexistent/repo", "main").unwrap_err();
        assert!(matches!(err, CheckoutError::Git { .. }), "{err}");
    }
}
