//! A content-addressed, reference-counted, crash-safe directory cache shared by processes.
//!
//! [`Cache`] stores directories (kernel checkouts, build outputs, indexes) under
//! `<root>/<kind>/<hash>/`, where `hash` is the xxh3-128 of a key description (the commit, the
//! config hash, …). An entry is used only once it is complete: it is filled in a temporary
//! sibling `<hash>.tmp-<pid>-<n>` and renamed into place atomically, with its metadata file written
//! before the rename, so a crash mid-fill leaves a temp directory that is ignored and later removed,
//! never a half entry.
//!
//! Concurrency without a global lock: each key has its own lock file `<hash>.lock`, taken
//! exclusively (std `File::lock`, i.e. flock) only while that entry is being looked up, filled or
//! evicted. Filling one entry never blocks users of another. Each user holds a [`Lease`]: a lease
//! file `<hash>.leases/<pid>-<n>` that it keeps flocked, so the reference count is the number of
//! locked lease files and a crashed user's lease is recognisably stale (its lock died with it).
//! Eviction ([`Cache::evict_to`]) removes unleased entries, least recently used first (last use is
//! the metadata file's mtime), until the total size is under the limit.
//!
//! Most entries are filled once ([`Cache::get_or_fill`]); an entry its user keeps up to date in
//! place (the code index, refreshed as its tree changes) is made with [`Cache::get_or_create`]
//! and re-measured with [`Lease::record_size`], and is leased and evicted like the others.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

const META: &str = "racejudge-meta.json";
const DATA: &str = "data";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The cache root racejudge uses, from an environment lookup the caller supplies (this crate
/// reads no environment itself): `$RACEJUDGE_CACHE_DIR`, else `$XDG_CACHE_HOME/racejudge`, else
/// `$HOME/.cache/racejudge`; an empty variable counts as unset, as in
/// scripts/fetch-kernel-source.sh. One rule for the CLI and the tests.
pub fn default_root(var: impl Fn(&str) -> Option<String>) -> PathBuf {
    let env = |key: &str| var(key).filter(|v| !v.is_empty());
    if let Some(dir) = env("RACEJUDGE_CACHE_DIR") {
        return dir.into();
    }
    if let Some(xdg) = env("XDG_CACHE_HOME") {
        return Path::new(&xdg).join("racejudge");
    }
    Path::new(&env("HOME").unwrap_or_else(|| ".".into())).join(".cache/racejudge")
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("filling cache entry {kind}/{description}: {message}")]
    Fill {
        kind: String,
        description: String,
        message: String,
    },
    #[error("bad cache kind {0:?}: use lowercase letters, digits and '-'")]
    BadKind(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Stored next to an entry's data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EntryMeta {
    pub version: u32,
    pub kind: String,
    pub description: String,
    pub size_bytes: u64,
}

/// The cache root.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// A held reference to a complete entry. The entry cannot be evicted while this lives.
#[derive(Debug)]
pub struct Lease {
    data: PathBuf,
    /// The entry's lock file and metadata file, for [`Lease::record_size`].
    entry_lock: PathBuf,
    meta: PathBuf,
    lease_file: PathBuf,
    // Kept open: its flock marks this lease as live.
    _lock: File,
    pub filled_now: bool,
}

impl Lease {
    /// The entry's data directory.
    pub fn path(&self) -> &Path {
        &self.data
    }

    /// Re-measures the entry after its user changed it (see [`Cache::get_or_create`]) and
    /// records the size for eviction. The metadata file is replaced atomically under the
    /// entry's lock, so concurrent readers see either the old size or the new one.
    pub fn record_size(&self) -> Result<u64, CacheError> {
        let lock = open_lock(&self.entry_lock)?;
        lock.lock().map_err(io_err(&self.entry_lock))?;
        let bytes = fs::read(&self.meta).map_err(io_err(&self.meta))?;
        let mut meta: EntryMeta = serde_json::from_slice(&bytes).map_err(|e| CacheError::Io {
            path: self.meta.clone(),
            source: io::Error::other(e),
        })?;
        meta.size_bytes = dir_size(&self.data);
        write_meta(&self.meta, &meta)?;
        Ok(meta.size_bytes)
    }
}

/// Writes an entry's metadata file through a temp file and a rename.
fn write_meta(path: &Path, meta: &EntryMeta) -> Result<(), CacheError> {
    let json = serde_json::to_vec_pretty(meta).map_err(|e| CacheError::Io {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    let tmp = path.with_extension(format!(
        "json.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    fs::write(&tmp, json).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        CacheError::Io {
            path: path.to_path_buf(),
            source: e,
        }
    })
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Removing the file first: a concurrent evictor then simply sees one lease fewer.
        let _ = fs::remove_file(&self.lease_file);
    }
}

/// An entry as seen by eviction and listing.
#[derive(Debug, Clone)]
pub struct EntryInfo {
    pub kind: String,
    pub hash: String,
    pub meta: EntryMeta,
    pub last_used: SystemTime,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Cache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The stable hash of a key description.
    pub fn key_hash(description: &str) -> String {
        format!(
            "{:032x}",
            xxhash_rust::xxh3::xxh3_128(description.as_bytes())
        )
    }

    fn kind_dir(&self, kind: &str) -> Result<PathBuf, CacheError> {
        let ok = !kind.is_empty()
            && kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(CacheError::BadKind(kind.to_string()));
        }
        Ok(self.root.join(kind))
    }

    /// Returns the complete entry for `(kind, description)`, filling it first if needed.
    /// `fill` gets an empty directory to populate; an error leaves no entry behind.
    pub fn get_or_fill<E: std::fmt::Display>(
        &self,
        kind: &str,
        description: &str,
        fill: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<Lease, CacheError> {
        let dir = self.kind_dir(kind)?;
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let hash = Self::key_hash(description);
        let entry = dir.join(&hash);
        let lock_file = lock_path(&dir, &hash);
        let lock = open_lock(&lock_file)?;
        // Per-key lock: only users of this very entry wait here.
        lock.lock().map_err(io_err(&lock_file))?;
        remove_stale_temps(&dir, &hash);
        let mut filled_now = false;
        if !entry.join(META).is_file() {
            if entry.exists() {
                // A directory without metadata was never completed (e.g. copied by hand); never trust it.
                fs::remove_dir_all(&entry).map_err(io_err(&entry))?;
            }
            let tmp = dir.join(format!(
                "{hash}.tmp-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(tmp.join(DATA)).map_err(io_err(&tmp))?;
            tracing::info!(kind, description, "filling cache entry");
            if let Err(err) = fill(&tmp.join(DATA)) {
                let _ = fs::remove_dir_all(&tmp);
                return Err(CacheError::Fill {
                    kind: kind.into(),
                    description: description.into(),
                    message: err.to_string(),
                });
            }
            let meta = EntryMeta {
                version: 1,
                kind: kind.to_string(),
                description: description.to_string(),
                size_bytes: dir_size(&tmp.join(DATA)),
            };
            write_meta(&tmp.join(META), &meta)?;
            fs::rename(&tmp, &entry).map_err(io_err(&entry))?;
            filled_now = true;
        }
        let mut lease = self.take_lease(&dir, &hash, &entry)?;
        lease.filled_now = filled_now;
        touch(&entry.join(META));
        drop(lock);
        Ok(lease)
    }

    /// Leases the entry for `description`, creating it empty when missing, for a user that
    /// keeps its contents up to date itself (the code index: refreshed in place as its tree
    /// changes, so it cannot be a fill-once entry). The user must make its own writes safe for
    /// readers (the index replaces its file atomically) and call [`Lease::record_size`] after
    /// changing the entry, so that eviction counts it right. While leased such an entry is never
    /// evicted; once unleased it is evicted least recently used first, like any other.
    pub fn get_or_create(&self, kind: &str, description: &str) -> Result<Lease, CacheError> {
        self.get_or_fill(kind, description, |_: &Path| Ok::<(), CacheError>(()))
    }

    fn take_lease(&self, dir: &Path, hash: &str, entry: &Path) -> Result<Lease, CacheError> {
        let leases = dir.join(format!("{hash}.leases"));
        fs::create_dir_all(&leases).map_err(io_err(&leases))?;
        let lease_file = leases.join(format!(
            "{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = open_lock(&lease_file)?;
        file.lock().map_err(io_err(&lease_file))?;
        Ok(Lease {
            data: entry.join(DATA),
            entry_lock: lock_path(dir, hash),
            meta: entry.join(META),
            lease_file,
            _lock: file,
            filled_now: false,
        })
    }

    /// Number of live leases on an entry (stale lease files of dead processes are removed).
    pub fn users(&self, kind: &str, description: &str) -> Result<usize, CacheError> {
        let dir = self.kind_dir(kind)?;
        Ok(live_leases(&dir, &Self::key_hash(description)))
    }

    /// Every complete entry.
    pub fn entries(&self) -> Vec<EntryInfo> {
        let mut out = Vec::new();
        let Ok(kinds) = fs::read_dir(&self.root) else {
            return out;
        };
        for kind in kinds.flatten() {
            let Ok(items) = fs::read_dir(kind.path()) else {
                continue;
            };
            for item in items.flatten() {
                let meta_path = item.path().join(META);
                let Ok(bytes) = fs::read(&meta_path) else {
                    continue;
                };
                let Ok(meta) = serde_json::from_slice::<EntryMeta>(&bytes) else {
                    continue;
                };
                let last_used = fs::metadata(&meta_path)
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                out.push(EntryInfo {
                    kind: kind.file_name().to_string_lossy().into_owned(),
                    hash: item.file_name().to_string_lossy().into_owned(),
                    meta,
                    last_used,
                });
            }
        }
        out
    }

    /// Evicts unleased entries, least recently used first, until the total is at most `max_bytes`.
    /// Returns the evicted entries. Busy entries (being filled, or leased) are skipped.
    pub fn evict_to(&self, max_bytes: u64) -> Result<Vec<EntryInfo>, CacheError> {
        let mut entries = self.entries();
        let mut total: u64 = entries.iter().map(|e| e.meta.size_bytes).sum();
        entries.sort_by_key(|e| e.last_used);
        let mut evicted = Vec::new();
        for entry in entries {
            if total <= max_bytes {
                break;
            }
            let dir = self.root.join(&entry.kind);
            let lock = open_lock(&lock_path(&dir, &entry.hash))?;
            if lock.try_lock().is_err() {
                continue;
            }
            if live_leases(&dir, &entry.hash) > 0 {
                continue;
            }
            let path = dir.join(&entry.hash);
            // Rename first so the entry disappears atomically, then delete at leisure.
            let doomed = dir.join(format!("{}.tmp-evict-{}", entry.hash, std::process::id()));
            fs::rename(&path, &doomed).map_err(io_err(&path))?;
            let _ = fs::remove_dir_all(&doomed);
            total = total.saturating_sub(entry.meta.size_bytes);
            tracing::info!(kind = %entry.kind, description = %entry.meta.description, "evicted cache entry");
            evicted.push(entry);
        }
        Ok(evicted)
    }
}

/// The per-key lock file of entry `hash` in kind directory `dir`.
fn lock_path(dir: &Path, hash: &str) -> PathBuf {
    dir.join(format!("{hash}.lock"))
}

fn open_lock(path: &Path) -> Result<File, CacheError> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err(path))
}

fn touch(path: &Path) {
    if let Ok(file) = OpenOptions::new().write(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Removes leftover temp directories of `hash`. Called with the key lock held, so no live filler
/// of this key exists and every temp dir is a crash leftover.
fn remove_stale_temps(dir: &Path, hash: &str) {
    let Ok(items) = fs::read_dir(dir) else { return };
    let prefix = format!("{hash}.tmp-");
    for item in items.flatten() {
        if item.file_name().to_string_lossy().starts_with(&prefix) {
            tracing::debug!(path = %item.path().display(), "removing leftover temp dir");
            let _ = fs::remove_dir_all(item.path());
        }
    }
}

fn live_leases(dir: &Path, hash: &str) -> usize {
    let leases = dir.join(format!("{hash}.leases"));
    let Ok(items) = fs::read_dir(&leases) else {
        return 0;
    };
    let mut live = 0;
    for item in items.flatten() {
        let path = item.path();
        let Ok(file) = OpenOptions::new().write(true).open(&path) else {
            continue;
        };
        match file.try_lock() {
            // Nobody holds it: the owner is gone without cleaning up.
            Ok(()) => {
                let _ = fs::remove_file(&path);
            }
            Err(_) => live += 1,
        }
    }
    live
}

/// Apparent size of a tree (files only; symlinks not followed).
pub fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(items) = fs::read_dir(&dir) else {
            continue;
        };
        for item in items.flatten() {
            let Ok(meta) = item.metadata() else { continue };
            if meta.is_dir() {
                stack.push(item.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill_with(bytes: usize) -> impl FnOnce(&Path) -> Result<(), String> {
        move |dir| fs::write(dir.join("blob"), vec![7u8; bytes]).map_err(|e| e.to_string())
    }

    #[test]
    fn fills_once_then_reuses() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        let a = cache
            .get_or_fill("src", "commit abc", fill_with(10))
            .unwrap();
        assert!(a.filled_now);
        assert_eq!(fs::read(a.path().join("blob")).unwrap().len(), 10);
        let b = cache
            .get_or_fill("src", "commit abc", |_: &Path| {
                Err::<(), _>("must not be called")
            })
            .unwrap();
        assert!(!b.filled_now);
        assert_eq!(a.path(), b.path());
    }

    #[test]
    fn failed_fill_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        let err = cache
            .get_or_fill("src", "k", |_: &Path| Err::<(), _>("boom"))
            .unwrap_err();
        assert!(err.to_string().contains("boom"));
        assert!(cache.entries().is_empty());
        let leftovers: Vec<_> = fs::read_dir(tmp.path().join("src"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn leftover_temp_dir_and_half_entry_are_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        let hash = Cache::key_hash("k");
        let dir = tmp.path().join("src");
        // A crashed filler's temp dir, and a directory at the entry path without metadata.
        fs::create_dir_all(dir.join(format!("{hash}.tmp-999-0/data"))).unwrap();
        fs::write(dir.join(format!("{hash}.tmp-999-0/data/blob")), b"half").unwrap();
        fs::create_dir_all(dir.join(&hash).join("data")).unwrap();
        fs::write(dir.join(&hash).join("data/blob"), b"half").unwrap();
        assert!(
            cache.entries().is_empty(),
            "an entry without metadata must not count"
        );
        let lease = cache.get_or_fill("src", "k", fill_with(3)).unwrap();
        assert!(
            lease.filled_now,
            "the half entry must be refilled, not used"
        );
        assert_eq!(fs::read(lease.path().join("blob")).unwrap(), vec![7u8; 3]);
        assert!(!dir.join(format!("{hash}.tmp-999-0")).exists());
    }

    #[test]
    fn leases_count_users_and_release_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        let a = cache.get_or_fill("src", "k", fill_with(1)).unwrap();
        let b = cache.get_or_fill("src", "k", fill_with(1)).unwrap();
        assert_eq!(cache.users("src", "k").unwrap(), 2);
        drop(a);
        assert_eq!(cache.users("src", "k").unwrap(), 1);
        drop(b);
        assert_eq!(cache.users("src", "k").unwrap(), 0);
    }

    #[test]
    fn stale_lease_file_of_a_dead_user_does_not_count() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        drop(cache.get_or_fill("src", "k", fill_with(1)).unwrap());
        let leases = tmp
            .path()
            .join("src")
            .join(format!("{}.leases", Cache::key_hash("k")));
        fs::write(leases.join("12345-0"), b"").unwrap();
        assert_eq!(cache.users("src", "k").unwrap(), 0);
        assert!(!leases.join("12345-0").exists());
    }

    #[test]
    fn lru_eviction_skips_leased_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        let old = cache.get_or_fill("build", "old", fill_with(100)).unwrap();
        let old_path = old.path().to_path_buf();
        drop(old);
        let held = cache.get_or_fill("build", "held", fill_with(100)).unwrap();
        let new = cache.get_or_fill("src", "new", fill_with(100)).unwrap();
        let new_path = new.path().to_path_buf();
        drop(new);
        // Make the ages unambiguous: "held" is the oldest, then "old", then "new".
        let set_age = |kind: &str, desc: &str, secs: u64| {
            let meta = tmp.path().join(kind).join(Cache::key_hash(desc)).join(META);
            let f = OpenOptions::new().write(true).open(meta).unwrap();
            f.set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
                .unwrap();
        };
        set_age("build", "held", 1_000);
        set_age("build", "old", 2_000);
        set_age("src", "new", 3_000);
        let evicted = cache.evict_to(150).unwrap();
        let names: Vec<_> = evicted
            .iter()
            .map(|e| e.meta.description.as_str())
            .collect();
        assert_eq!(
            names,
            vec!["old", "new"],
            "the leased oldest entry must survive"
        );
        assert!(held.path().join("blob").exists());
        assert!(!old_path.exists());
        assert!(!new_path.exists());
        drop(held);
        let evicted = cache.evict_to(0).unwrap();
        assert_eq!(evicted.len(), 1);
        assert!(cache.entries().is_empty());
    }

    #[test]
    fn concurrent_fillers_of_one_key_fill_once() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        let fills = std::sync::Arc::new(AtomicU64::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let cache = cache.clone();
                let fills = fills.clone();
                s.spawn(move || {
                    let lease = cache
                        .get_or_fill("src", "shared", |dir: &Path| {
                            fills.fetch_add(1, Ordering::SeqCst);
                            fs::write(dir.join("blob"), b"x").map_err(|e| e.to_string())
                        })
                        .unwrap();
                    assert!(lease.path().join("blob").exists());
                });
            }
        });
        assert_eq!(fills.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn bad_kind_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        assert!(matches!(
            cache.get_or_fill("../x", "k", fill_with(1)),
            Err(CacheError::BadKind(_))
        ));
    }

    #[test]
    fn in_place_entry_is_measured_kept_while_leased_then_evicted() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::new(tmp.path());
        let lease = cache.get_or_create("index", "tree /k arch x86_64").unwrap();
        assert!(lease.filled_now);
        assert_eq!(cache.entries()[0].meta.size_bytes, 0);
        // The user writes, then rewrites, its data in place and records the size each time.
        fs::write(lease.path().join("index.bin"), vec![1u8; 300]).unwrap();
        assert_eq!(lease.record_size().unwrap(), 300);
        fs::write(lease.path().join("index.bin"), vec![1u8; 120]).unwrap();
        assert_eq!(lease.record_size().unwrap(), 120);
        assert_eq!(cache.entries()[0].meta.size_bytes, 120);
        // Opening it again finds the same data, not a fresh entry.
        let again = cache.get_or_create("index", "tree /k arch x86_64").unwrap();
        assert!(!again.filled_now);
        assert_eq!(fs::read(again.path().join("index.bin")).unwrap().len(), 120);
        drop(again);

        assert!(cache.evict_to(0).unwrap().is_empty(), "leased: kept");
        drop(lease);
        let evicted = cache.evict_to(0).unwrap();
        assert_eq!(evicted.len(), 1);
        assert_eq!(evicted[0].meta.description, "tree /k arch x86_64");
        assert!(cache.entries().is_empty());
    }
}
