//! `codeindex`: a build-free, whole-tree index of a Linux kernel source tree.
//!
//! The principal type is [`Index`]: built straight from a source tree (no compile_commands, no
//! preprocessor run) with [`Index::open`] (persistent, incremental) or [`Index::build`]
//! (in-memory). It answers definition lookups ([`Index::lookup`], [`Definition`]), struct layouts
//! ([`Index::fields_of`], [`Field`]) and reference queries ([`Index::find_references`],
//! [`Reference`]).
//!
//! Design (why it is fast enough for the whole tree on two cores):
//! - A hand-written byte lexer (`lex`) and a token-shape recogniser (`scan`) find definitions in
//!   one pass per file; tree-sitter is not used (too slow, and it chokes on kernel macros).
//!   Files are scanned in parallel (rayon) in chunks, appended while the next chunk scans.
//! - Definitions are fixed-size 28-byte records (name, place, kind, flags) over a name buffer;
//!   the rarer attributes (condition, parent, comment, fields) live in side records, since
//!   most of the tree's eight million definitions are bare register `#define`s (`store`). The cache
//!   (`cache_dir/index/<key>/index.bin`, key = tree, arch, `.config` hash, format version) holds
//!   those tables byte for byte; [`Index::open`] maps it and uses it in place after a checksum,
//!   so a reload costs a checksum pass plus a stat of every file (done side by side).
//! - Freshness: every file's (size, mtime) is compared on open; changed/added files are
//!   rescanned, removed ones dropped, unchanged records copied, and the cache rewritten — in the
//!   background (`save`): the index answers as soon as its tables are assembled. The rewrite is
//!   cheap enough that no delta format is needed: 1 MiB writes (a single huge write(2) is ten
//!   times slower on ext4), an atomic `RENAME_EXCHANGE` that keeps ext4's replace-via-rename
//!   flush and the freeing of the old file out of the caller's time, and the two hash tables
//!   built side by side.
//! - References are *not* resolved at index time. The index keeps a compact posting table
//!   identifier-hash → files (hash buckets, so a superset); a query lexes only the candidate
//!   files precisely (`refs`) — only the functions holding whole-word occurrences when every
//!   occurrence lies in one — resolving `struct::field` base types from the enclosing
//!   function's declarations, casts, `container_of` and one-level member chains where that is
//!   cheap ([`Resolution::Exact`]) and otherwise labelling the hit [`Resolution::NameOnly`].
//! - `#if` chains are recorded per definition and evaluated against an optional `.config`
//!   (`cond`) to give a [`ConfigState`]; `#if 0` blocks are skipped.
//!
//! Name conventions for [`Index::lookup`] and [`RefQuery`]: a plain identifier (`sock_poll`),
//! `record::field` for struct/union members (also accepted: `struct file::f_mode`,
//! `file.f_mode`, `file->f_mode`), and `struct foo` / `union foo` / `enum foo` to ask only for
//! that kind of record. Enumerators are plain names (their `parent` is the enum).
//!
//! Coverage notes: `extern` variable declarations are indexed as
//! [`EntityKind::GlobalVariable`] with [`Definition::is_extern`] set and rank below definitions
//! (like prototypes); members inside `struct_group()`/`struct_group_tagged()`/`__struct_group()`
//! are fields of the enclosing record, and the group's name is one more field.

mod build;
mod cond;
mod error;
pub mod kconfig;
mod lex;
mod persist;
mod query;
mod refs;
mod save;
mod scan;
mod store;
mod types;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub use error::IndexError;
pub use types::*;

use crate::build::{Roots, Source, assemble, walk};
use crate::cond::Evaluator;
use crate::kconfig::KConfig;
use crate::persist::CacheKey;
use crate::store::Store;

/// A kernel tree's index. `Send + Sync`; share it behind an `Arc`.
#[derive(Debug)]
pub struct Index {
    roots: Roots,
    arch: String,
    /// The directory under `arch/` for `arch` (`x86_64` → `x86`).
    arch_dir: String,
    has_config: bool,
    /// Shared with a background save of the cache, while one runs.
    store: Arc<Store>,
    /// Holds the index's cache entry (when it came from one) for as long as the index lives.
    _lease: Option<Arc<dircache::Lease>>,
    /// The cache write this open started, if it is still running (see `save`).
    pending_save: Option<Arc<save::PendingSave>>,
}

impl Drop for Index {
    /// Waits for a cache write still running, so that a process which drops its index before
    /// exiting always leaves a complete cache behind.
    fn drop(&mut self) {
        if let Some(save) = &self.pending_save {
            let _ = save.wait();
        }
    }
}

/// The `dircache` kind under which indexes are kept (`<cache>/index/<hash>/data/index.bin`).
const CACHE_KIND: &str = "index";

/// `x86_64` and `i386` live in `arch/x86`, `aarch64` in `arch/arm64`.
pub(crate) fn arch_dir(arch: &str) -> String {
    match arch {
        "x86_64" | "i386" | "i686" | "x86" | "amd64" => "x86".to_string(),
        "aarch64" | "arm64" => "arm64".to_string(),
        "ppc64" | "ppc64le" | "ppc" => "powerpc".to_string(),
        "riscv64" | "riscv32" => "riscv".to_string(),
        other => other.to_string(),
    }
}

struct Prepared {
    roots: Roots,
    config: Option<KConfig>,
    key: CacheKey,
}

fn prepare(tree: &Path, opts: &IndexOptions) -> Result<Prepared, IndexError> {
    if !tree.exists() {
        return Err(IndexError::TreeMissing(tree.to_path_buf()));
    }
    if !tree.is_dir() {
        return Err(IndexError::NotADirectory(tree.to_path_buf()));
    }
    let root = tree.canonicalize().map_err(|e| IndexError::io(tree, e))?;
    let config = opts
        .config
        .as_deref()
        .map(|path| {
            std::fs::read(path)
                .map(|bytes| KConfig::parse(&bytes))
                .map_err(|source| IndexError::Config {
                    path: path.to_path_buf(),
                    source,
                })
        })
        .transpose()?;
    let build = match &opts.build_dir {
        Some(dir) if !dir.is_dir() => return Err(IndexError::BuildDirMissing(dir.clone())),
        Some(dir) => Some(dir.canonicalize().map_err(|e| IndexError::io(dir, e))?),
        None => None,
    };
    // An in-tree build's generated headers are already part of the tree.
    let build = build.filter(|b| *b != root);
    let key = CacheKey {
        root: root.to_string_lossy().into_owned(),
        arch: opts.arch.clone(),
        config_hash: config.as_ref().map_or(0, |c| c.content_hash),
        build_dir: build
            .as_ref()
            .map_or(String::new(), |b| b.to_string_lossy().into_owned()),
    };
    Ok(Prepared {
        roots: Roots { tree: root, build },
        config,
        key,
    })
}

impl Index {
    /// Load from `cache_dir` if present, re-index only files whose (size, mtime) changed / were
    /// added / removed, persist, return. Cold build when nothing is cached.
    pub fn open(
        tree: &Path,
        opts: &IndexOptions,
        cache_dir: &Path,
        progress: &dyn Progress,
    ) -> Result<(Index, BuildStats), IndexError> {
        let t0 = Instant::now();
        let p = prepare(tree, opts)?;
        // A leased entry of the shared cache: never evicted while this index lives, and
        // counted in the cache's size limit like checkouts and builds.
        let cache = dircache::Cache::new(cache_dir);
        let lease = match cache.get_or_create(CACHE_KIND, &p.key.description()) {
            Ok(lease) => lease,
            Err(e) => {
                // An unusable cache costs speed, not correctness: index in memory.
                tracing::warn!(error = %e, "index cache unavailable; indexing without it");
                return Index::build(tree, opts, progress);
            }
        };
        persist::remove_legacy_caches(&cache_dir.join(CACHE_KIND));
        let dir = lease.path().to_path_buf();
        // A save of this cache still running in this process (an index just built and
        // dropped, or still alive) is what this open should load.
        save::wait_for(&dir);
        progress.message("loading index cache");
        // Verifying the cache and stat-ing the tree are independent: do them side by side.
        let (cached, entries) = rayon::join(|| persist::load(&dir, &p.key), || walk(&p.roots));
        let entries = entries?;
        tracing::debug!(elapsed = ?t0.elapsed(), "cache loaded and tree walked");
        let ev = Evaluator {
            config: p.config.as_ref(),
        };
        let (store, mut stats, changed) = match cached {
            Some((old, _)) => {
                let (plan, removed) = plan_refresh(&old, &entries);
                let unchanged = removed == 0 && plan.iter().all(|s| matches!(s, Source::Reuse(_)));
                if unchanged {
                    let stats = BuildStats {
                        files_total: entries.len(),
                        files_reused: entries.len(),
                        definitions: old.defs.len(),
                        loaded_from_cache: true,
                        ..BuildStats::default()
                    };
                    (old, stats, false)
                } else {
                    progress.message("re-indexing changed files");
                    let (st, a) = assemble(&p.roots, &entries, &plan, Some(&old), &ev, progress);
                    tracing::debug!(elapsed = ?t0.elapsed(), "refresh assembled");
                    let stats = BuildStats {
                        files_total: entries.len(),
                        files_indexed: a.scanned,
                        files_reused: a.reused,
                        files_removed: removed,
                        definitions: st.defs.len(),
                        bytes_scanned: a.bytes,
                        loaded_from_cache: true,
                        ..BuildStats::default()
                    };
                    (st, stats, true)
                }
            }
            None => {
                progress.message("indexing tree");
                let plan: Vec<Source> = entries.iter().map(|_| Source::Scan).collect();
                let (st, a) = assemble(&p.roots, &entries, &plan, None, &ev, progress);
                let stats = BuildStats {
                    files_total: entries.len(),
                    files_indexed: a.scanned,
                    definitions: st.defs.len(),
                    bytes_scanned: a.bytes,
                    ..BuildStats::default()
                };
                (st, stats, true)
            }
        };
        let store = Arc::new(store);
        let lease = Arc::new(lease);
        // The index is ready now; the cache for the next process is written in the background.
        let pending_save =
            changed.then(|| save::start(dir.clone(), p.key.clone(), store.clone(), lease.clone()));
        stats.elapsed = t0.elapsed();
        stats.cache_file = Some(persist::cache_file(&dir));
        let mut index = Index::from_store(p.roots, opts, store);
        index._lease = Some(lease);
        index.pending_save = pending_save;
        Ok((index, stats))
    }

    /// Waits until the cache write this open started (if any) has finished; its error, if it
    /// failed (the index itself is unaffected: it works from memory).
    pub fn wait_persisted(&self) -> Result<(), String> {
        self.pending_save.as_ref().map_or(Ok(()), |s| s.wait())
    }

    /// In-memory build, no persistence.
    pub fn build(
        tree: &Path,
        opts: &IndexOptions,
        progress: &dyn Progress,
    ) -> Result<(Index, BuildStats), IndexError> {
        let t0 = Instant::now();
        let p = prepare(tree, opts)?;
        let entries = walk(&p.roots)?;
        let ev = Evaluator {
            config: p.config.as_ref(),
        };
        let plan: Vec<Source> = entries.iter().map(|_| Source::Scan).collect();
        let (st, a) = assemble(&p.roots, &entries, &plan, None, &ev, progress);
        let stats = BuildStats {
            files_total: entries.len(),
            files_indexed: a.scanned,
            definitions: st.defs.len(),
            bytes_scanned: a.bytes,
            elapsed: t0.elapsed(),
            ..BuildStats::default()
        };
        Ok((Index::from_store(p.roots, opts, st), stats))
    }

    fn from_store(roots: Roots, opts: &IndexOptions, store: impl Into<Arc<Store>>) -> Index {
        Index {
            roots,
            arch: opts.arch.clone(),
            arch_dir: arch_dir(&opts.arch),
            has_config: opts.config.is_some(),
            store: store.into(),
            _lease: None,
            pending_save: None,
        }
    }

    /// Canonical tree root.
    pub fn root(&self) -> &Path {
        &self.roots.tree
    }
    /// The canonical build directory whose generated headers are indexed, if any
    /// ([`IndexOptions::build_dir`]).
    pub fn build_dir(&self) -> Option<&Path> {
        self.roots.build.as_deref()
    }
    /// The directory a tree-relative path is read from: the build directory for generated
    /// headers (when indexed with one), else the tree. Callers still guard the path itself.
    pub fn base_for(&self, rel: &str) -> &Path {
        self.roots.base_for(rel)
    }
    /// Tree-relative generated-header directories that the build directory provides
    /// (`include/generated`, `arch/x86/include/generated`, …); empty without one.
    pub fn generated_dirs(&self) -> Vec<String> {
        self.roots.generated_dirs()
    }
    pub fn arch(&self) -> &str {
        &self.arch
    }
    /// The directory under `arch/` that is this architecture's (`x86_64` → `x86`).
    pub fn arch_dir(&self) -> &str {
        &self.arch_dir
    }
    pub fn has_config(&self) -> bool {
        self.has_config
    }
    /// Tree-relative paths, sorted, '/'-separated.
    pub fn files(&self) -> impl Iterator<Item = &str> {
        self.store.files.iter().map(|f| self.store.str(f.path))
    }
    pub fn has_file(&self, rel: &str) -> bool {
        self.store.file_id(rel).is_some()
    }
}

/// Matches the cached file list against the walk: which files can be reused, how many vanished.
fn plan_refresh(old: &Store, entries: &[build::Entry]) -> (Vec<Source>, usize) {
    let mut plan = Vec::with_capacity(entries.len());
    let mut i = 0;
    let mut matched = 0;
    for e in entries {
        while i < old.files.len() && old.str(old.files[i].path) < e.rel.as_str() {
            i += 1;
        }
        let same = old.files.get(i).is_some_and(|f| {
            old.str(f.path) == e.rel && f.size == e.size && f.mtime_ns == e.mtime_ns
        });
        if old.files.get(i).is_some_and(|f| old.str(f.path) == e.rel) {
            matched += 1;
        }
        plan.push(if same {
            Source::Reuse(i as u32)
        } else {
            Source::Scan
        });
    }
    (plan, old.files.len() - matched)
}
