//! Building a [`Store`]: walk the tree ([`walk`]), scan files in parallel (rayon, in chunks so
//! only a slice of per-file outputs is alive at once) and [`assemble`] the flat tables. The same
//! assembly serves cold builds and incremental refreshes: a refresh reuses the records of files
//! whose (size, mtime) did not change, relocating their arena offsets and file ids, and rescans
//! only the rest.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rayon::prelude::*;

use crate::cond::Evaluator;
use crate::error::IndexError;
use crate::scan::scan_file;
use crate::store::{
    DefExt, DefRec, FieldRec, FileMeta, FileOut, HashTable, NO_EXT, Store, Str, csr, merge_csr,
    post_bits_for, post_bucket,
};
use crate::types::Progress;

/// A source file found by the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub rel: String,
    pub size: u64,
    pub mtime_ns: i64,
}

fn is_source(name: &str) -> bool {
    name.ends_with(".c") || name.ends_with(".h")
}

/// Where an index's files are read from: the tree, plus (optionally) the `O=` directory of a
/// build whose generated headers are indexed at their tree-relative paths.
#[derive(Debug, Clone)]
pub(crate) struct Roots {
    pub tree: PathBuf,
    pub build: Option<PathBuf>,
}

/// Whether `rel` is, or lies in, a generated-header directory: `include/generated` or
/// `arch/<arch>/include/generated` (what Kbuild writes into the `O=` directory).
pub(crate) fn is_generated(rel: &str) -> bool {
    let in_generated = |p: &str| {
        p.strip_prefix("include/generated")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    in_generated(rel)
        || rel
            .strip_prefix("arch/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(_, tail)| in_generated(tail))
}

impl Roots {
    /// See [`crate::Index::base_for`].
    pub fn base_for(&self, rel: &str) -> &Path {
        match &self.build {
            Some(build) if is_generated(rel) => build,
            _ => &self.tree,
        }
    }

    /// The generated-header directories present in the build directory, tree-relative.
    pub fn generated_dirs(&self) -> Vec<String> {
        let Some(build) = &self.build else {
            return Vec::new();
        };
        let mut dirs = Vec::new();
        if build.join("include/generated").is_dir() {
            dirs.push("include/generated".to_string());
        }
        if let Ok(arches) = std::fs::read_dir(build.join("arch")) {
            for a in arches.flatten() {
                let rel = format!("arch/{}/include/generated", a.file_name().to_string_lossy());
                if build.join(&rel).is_dir() {
                    dirs.push(rel);
                }
            }
        }
        dirs.sort();
        dirs
    }
}

/// All `.c`/`.h` files of the tree (and the build directory's generated headers), sorted by
/// path. Hidden directories and symlinks are skipped (a symlink could point outside the tree).
pub(crate) fn walk(roots: &Roots) -> Result<Vec<Entry>, IndexError> {
    let mut out = walk_tree(&roots.tree)?;
    if let Some(build) = &roots.build {
        // The build's copies win: drop any the tree has (an earlier in-tree build's), then add.
        out.retain(|e| !is_generated(&e.rel));
        for rel in roots.generated_dirs() {
            walk_dir(&build.join(&rel), &rel, &mut out);
        }
        out.par_sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    }
    Ok(out)
}

fn walk_tree(root: &Path) -> Result<Vec<Entry>, IndexError> {
    let top = std::fs::read_dir(root).map_err(|e| IndexError::io(root, e))?;
    let mut dirs = Vec::new();
    let mut out = Vec::new();
    for ent in top.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Ok(ft) = ent.file_type() else { continue };
        if ft.is_dir() {
            dirs.push(name);
        } else if ft.is_file()
            && is_source(&name)
            && let Some(e) = entry(&ent, name)
        {
            out.push(e);
        }
    }
    let mut nested: Vec<Entry> = dirs
        .par_iter()
        .flat_map_iter(|d| {
            let mut v = Vec::new();
            walk_dir(&root.join(d), d, &mut v);
            v
        })
        .collect();
    out.append(&mut nested);
    out.par_sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn entry(ent: &std::fs::DirEntry, rel: String) -> Option<Entry> {
    let md = ent.metadata().ok()?;
    let mtime_ns = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    Some(Entry {
        rel,
        size: md.len(),
        mtime_ns,
    })
}

fn walk_dir(dir: &Path, rel: &str, out: &mut Vec<Entry>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        tracing::debug!(dir = %dir.display(), "unreadable directory skipped");
        return;
    };
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let Ok(ft) = ent.file_type() else { continue };
        let r = format!("{rel}/{name}");
        if ft.is_dir() {
            walk_dir(&ent.path(), &r, out);
        } else if ft.is_file()
            && is_source(&name)
            && let Some(e) = entry(&ent, r)
        {
            out.push(e);
        }
    }
}

thread_local! {
    /// Per-thread read buffer: reusing it avoids page-faulting 1.3 GB of fresh allocations.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn scan_path(roots: &Roots, e: &Entry, ev: &Evaluator<'_>) -> (FileOut, u64) {
    use std::io::Read;
    READ_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        let res = std::fs::File::open(roots.base_for(&e.rel).join(&e.rel))
            .and_then(|mut f| f.read_to_end(&mut buf));
        match res {
            Ok(n) => (scan_file(&buf, ev), n as u64),
            Err(err) => {
                tracing::warn!(file = %e.rel, error = %err, "unreadable file indexed as empty");
                (FileOut::default(), 0)
            }
        }
    })
}

/// Where the records of one file come from.
pub(crate) enum Source {
    Reuse(u32),
    Scan,
}

pub(crate) struct AssembleStats {
    pub scanned: usize,
    pub reused: usize,
    pub bytes: u64,
}

/// Builds a store for `entries`, reusing `old`'s records where `plan` says so.
pub(crate) fn assemble(
    roots: &Roots,
    entries: &[Entry],
    plan: &[Source],
    old: Option<&Store>,
    ev: &Evaluator<'_>,
    progress: &dyn Progress,
) -> (Store, AssembleStats) {
    let mut st = Store::default();
    let mut stats = AssembleStats {
        scanned: 0,
        reused: 0,
        bytes: 0,
    };
    let mut new_idents: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut old_to_new: Vec<u32> = old.map_or(Vec::new(), |o| vec![u32::MAX; o.files.len()]);
    progress.set_total(entries.len() as u64);
    // Reserve generously up front: untouched reserved pages cost no RSS, while growing by
    // doubling would briefly hold old and new copies of half-gigabyte tables.
    let total: u64 = entries.iter().map(|e| e.size).sum();
    st.defs
        .vec_mut()
        .reserve((total / 100) as usize + old.map_or(0, |o| o.defs.len()));
    st.arena
        .vec_mut()
        .reserve((total / 2) as usize + old.map_or(0, |o| o.arena.len()));
    st.fields
        .vec_mut()
        .reserve((total / 1000) as usize + old.map_or(0, |o| o.fields.len()));
    st.exts
        .vec_mut()
        .reserve((total / 500) as usize + old.map_or(0, |o| o.exts.len()));
    // Reused records keep their name offsets, so the old name buffer is the new one's prefix
    // (one memcpy instead of relocating eight million names). Names of changed or removed
    // files linger there until `compact_names` finds enough of them.
    st.names = match old {
        Some(o) => o.names.to_vec().into(),
        None => Vec::with_capacity((total / 4) as usize).into(),
    };
    st.files.vec_mut().reserve(entries.len());
    let t_scan = std::time::Instant::now();
    const CHUNK: usize = 2048;
    let scan_chunk = |ci: usize| -> Vec<Option<(FileOut, u64)>> {
        let base = ci * CHUNK;
        let chunk = &entries[base..(base + CHUNK).min(entries.len())];
        chunk
            .par_iter()
            .enumerate()
            .map(|(i, e)| {
                let r = match plan[base + i] {
                    Source::Scan => Some(scan_path(roots, e, ev)),
                    Source::Reuse(_) => None,
                };
                progress.inc(1);
                r
            })
            .collect()
    };
    let n_chunks = entries.len().div_ceil(CHUNK);
    let mut pending = (n_chunks > 0).then(|| scan_chunk(0));
    for ci in 0..n_chunks {
        let base = ci * CHUNK;
        let chunk = &entries[base..(base + CHUNK).min(entries.len())];
        let scanned = pending.take().unwrap_or_default();
        // Append chunk `ci` (sequential copying) while the pool scans chunk `ci + 1`.
        let (next, ()) = rayon::join(
            || (ci + 1 < n_chunks).then(|| scan_chunk(ci + 1)),
            || {
                for (i, (e, s)) in chunk.iter().zip(scanned).enumerate() {
                    let fid = (base + i) as u32;
                    match (s, &plan[base + i], old) {
                        (Some((out, bytes)), _, _) => {
                            stats.scanned += 1;
                            stats.bytes += bytes;
                            let FileOut {
                                arena,
                                defs,
                                names,
                                exts,
                                fields,
                                idents,
                            } = out;
                            let part = Part {
                                arena: &arena,
                                defs: &defs,
                                fresh_names: Some(&names),
                                exts: &exts,
                                fields: &fields,
                                bases: (0, 0, 0),
                            };
                            append_file(&mut st, e, fid, part);
                            new_idents.push((fid, idents));
                        }
                        (None, Source::Reuse(oid), Some(o)) => {
                            stats.reused += 1;
                            let m = &o.files[*oid as usize];
                            old_to_new[*oid as usize] = fid;
                            // Ranges were validated when the cache was loaded; `get` keeps a bad one harmless.
                            let arena = o
                                .arena
                                .get(m.arena_start as usize..(m.arena_start + m.arena_len) as usize)
                                .unwrap_or(&[]);
                            let arena = arena
                                .get(..arena.len().saturating_sub(e.rel.len()))
                                .unwrap_or(&[]);
                            let defs = o
                                .defs
                                .get(m.defs_start as usize..(m.defs_start + m.defs_len) as usize)
                                .unwrap_or(&[]);
                            let fields = o
                                .fields
                                .get(
                                    m.fields_start as usize
                                        ..(m.fields_start + m.fields_len) as usize,
                                )
                                .unwrap_or(&[]);
                            let exts = o
                                .exts
                                .get(m.exts_start as usize..(m.exts_start + m.exts_len) as usize)
                                .unwrap_or(&[]);
                            let part = Part {
                                arena,
                                defs,
                                fresh_names: None,
                                exts,
                                fields,
                                bases: (m.arena_start, m.fields_start, m.exts_start),
                            };
                            append_file(&mut st, e, fid, part);
                        }
                        _ => {
                            // Reuse without an old store cannot happen (plans are made from `old`);
                            // index the file as empty rather than panic.
                            append_file(&mut st, e, fid, Part::default());
                        }
                    }
                }
            },
        );
        pending = next;
    }
    tracing::debug!(elapsed = ?t_scan.elapsed(), "files scanned and appended");
    if let Some(o) = old {
        compact_names(&mut st);
        // Its records are copied; only its posting table is read again, and that faults back
        // in. Letting go of the rest keeps a refresh's peak RSS near one index, not two.
        o.release_resident();
    }
    let t = std::time::Instant::now();
    // The two hash tables are independent and each mostly sequential: build them side by side.
    // The name table is rebuilt whole even on a refresh: merging the old one (remapping eight
    // million definition ids bucket by bucket) measured twice as slow as hashing every name.
    let (postings, names) = rayon::join(
        || build_postings(old, &old_to_new, &new_idents),
        || st.name_table(),
    );
    st.set_postings(postings);
    st.set_name_table(names);
    tracing::debug!(elapsed = ?t.elapsed(), "postings and name table built");
    (st, stats)
}

/// A refresh copies the old name buffer whole (reused definitions keep their offsets) and
/// appends the names of rescanned files, so the old names of changed and removed files stay
/// behind as garbage. Once that is over a fifth of the buffer, names are copied afresh in
/// definition order (one pass, about a third of a second for the whole tree), so a tree that is
/// edited and refreshed for months keeps a cache of the same size.
fn compact_names(st: &mut Store) {
    let live: usize = st.defs.iter().map(|d| d.name.len as usize).sum();
    if st.names.len() <= live + live / 4 {
        return;
    }
    let old = std::mem::take(&mut st.names);
    let mut names = Vec::with_capacity(live);
    for d in st.defs.vec_mut().iter_mut() {
        let name = d.name.get(&old);
        let off = names.len() as u32;
        names.extend_from_slice(name);
        d.name = Str {
            off,
            len: name.len() as u32,
        };
    }
    tracing::debug!(from = old.len(), to = names.len(), "name buffer compacted");
    st.names = names.into();
}

/// One file's records, with the bases their internal offsets are relative to (arena, fields,
/// exts: zero for fresh scan output, the old positions for records reused from a cache).
#[derive(Default)]
struct Part<'a> {
    arena: &'a [u8],
    defs: &'a [DefRec],
    /// Fresh scanner output's own name buffer; `None` for reused records, whose names
    /// already live in the store's name buffer (copied whole from the old store).
    fresh_names: Option<&'a [u8]>,
    exts: &'a [DefExt],
    fields: &'a [FieldRec],
    bases: (u32, u32, u32),
}

fn append_file(st: &mut Store, e: &Entry, fid: u32, p: Part<'_>) {
    let (old_arena_base, old_fields_base, old_exts_base) = p.bases;
    let arena_start = st.arena.len() as u32;
    st.arena.vec_mut().extend_from_slice(p.arena);
    // Offsets in `arena` are relative to `old_arena_base`; shift them to the new base.
    let shift = |s: Str| -> Str {
        if s.len == 0 {
            s
        } else {
            Str {
                off: s.off - old_arena_base + arena_start,
                len: s.len,
            }
        }
    };
    let path_off = st.arena.len() as u32;
    st.arena.vec_mut().extend_from_slice(e.rel.as_bytes());
    let fields_start = st.fields.len() as u32;
    st.fields
        .vec_mut()
        .extend(p.fields.iter().map(|f| FieldRec {
            name: shift(f.name),
            decl: shift(f.decl),
            anon: shift(f.anon),
            ..*f
        }));
    let exts_start = st.exts.len() as u32;
    st.exts.vec_mut().extend(p.exts.iter().map(|x| DefExt {
        cond: shift(x.cond),
        parent: shift(x.parent),
        fields_start: if x.fields_len == 0 {
            0
        } else {
            x.fields_start - old_fields_base + fields_start
        },
        ..*x
    }));
    let defs_start = st.defs.len() as u32;
    let names_start = st.names.len() as u32;
    if let Some(local) = p.fresh_names {
        st.names.vec_mut().extend_from_slice(local);
    }
    st.defs.vec_mut().extend(p.defs.iter().map(|d| DefRec {
        name: match p.fresh_names {
            Some(_) if !d.name.is_empty() => Str {
                off: d.name.off + names_start,
                len: d.name.len,
            },
            _ => d.name,
        },
        file: fid,
        ext: if d.ext == NO_EXT {
            NO_EXT
        } else {
            d.ext - old_exts_base + exts_start
        },
        ..*d
    }));
    st.files.vec_mut().push(FileMeta {
        path: Str {
            off: path_off,
            len: e.rel.len() as u32,
        },
        size: e.size,
        mtime_ns: e.mtime_ns,
        defs_start,
        defs_len: p.defs.len() as u32,
        fields_start,
        fields_len: p.fields.len() as u32,
        arena_start,
        arena_len: (p.arena.len() + e.rel.len()) as u32,
        exts_start,
        exts_len: p.exts.len() as u32,
    });
}

/// Builds the identifier → files table. Fresh pairs are bucketed with one counting pass; each
/// bucket is then the merge of the old bucket (file ids remapped, dropped files left out) and
/// the fresh one. Both are ascending — the remap is monotonic because old and new file lists
/// are both sorted by path — so a refresh costs one linear pass instead of re-sorting the nine
/// million postings of the whole tree.
fn build_postings(
    old: Option<&Store>,
    old_to_new: &[u32],
    new_idents: &[(u32, Vec<u32>)],
) -> HashTable {
    let n_new: usize = new_idents.iter().map(|(_, v)| v.len()).sum();
    let n_old = old.map_or(0, |o| o.post_files.len());
    // Keep the old bucket count when reusing, so old buckets map one to one.
    let bits = match old {
        Some(o) if o.post_offsets.len() == (1usize << o.post_bits) + 1 && n_old > 0 => o.post_bits,
        _ => post_bits_for(n_new + n_old),
    };
    let buckets = 1usize << bits;
    let old = old.filter(|o| o.post_offsets.len() == buckets + 1 && o.post_bits == bits);
    // `new_idents` is in ascending file order, so each fresh bucket is ascending (with repeats
    // where two identifiers of one file share a bucket).
    let fresh = new_idents
        .iter()
        .flat_map(move |(f, ids)| ids.iter().map(move |&h| (post_bucket(h, bits) as u32, *f)));
    let (f_off, f_files) = csr(buckets, fresh, 0);
    let no_old: (&[u32], &[u32]) = (&[], &[]);
    let (offsets, out) = merge_csr(
        old.map_or(no_old, |o| (&o.post_offsets, &o.post_files)),
        |f| {
            old_to_new
                .get(f as usize)
                .copied()
                .filter(|&n| n != u32::MAX)
        },
        (&f_off, &f_files),
    );
    HashTable {
        offsets,
        entries: out,
        bits,
    }
}

#[cfg(test)]
mod tests {
    use super::is_generated;

    #[test]
    fn generated_header_paths() {
        for yes in [
            "include/generated",
            "include/generated/autoconf.h",
            "arch/x86/include/generated",
            "arch/x86/include/generated/asm/unistd_64.h",
        ] {
            assert!(is_generated(yes), "{yes}");
        }
        for no in [
            "include/generatedx/a.h",
            "include/linux/generated/a.h",
            "arch/include/generated/a.h",
            "arch/x86/include/generated2/a.h",
            "kernel/include/generated/a.h",
            "",
        ] {
            assert!(!is_generated(no), "{no}");
        }
    }
}
