//! The compact in-memory layout shared by building, persistence and queries ([`Store`]).
//!
//! Everything lives in a few flat vectors: one byte arena for all strings, fixed-size
//! [`DefRec`]/[`DefExt`]/[`FieldRec`] records grouped per file, and two CSR tables (name hash →
//! definitions, identifier hash → files). This keeps millions of definitions (the AMD register
//! headers alone hold four million `#define`s) at 28 bytes each plus their names, and lets the
//! cache be written and read as a handful of large slices instead of millions of small strings.

// One of the few places allowed `unsafe` (crates/tidy lists them with the reason).
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use crate::lex::ident_hash;

/// Records that can be viewed in place inside a mapped cache file.
///
/// # Safety
/// Implementors are `#[repr(C)]`, contain only integers, have no padding, and every bit
/// pattern is a valid value, so any suitably aligned byte range of the right length is a valid
/// `[Self]`.
pub(crate) unsafe trait Pod: Copy + Default + Send + Sync + 'static {}
// SAFETY: plain integers.
unsafe impl Pod for u8 {}
// SAFETY: plain integers.
unsafe impl Pod for u32 {}
// SAFETY: repr(C), two u32, no padding.
unsafe impl Pod for Str {}
// SAFETY: repr(C), 6 u32 + 4 u8 = 28 bytes, no padding (checked below).
unsafe impl Pod for DefRec {}
// SAFETY: repr(C), 8 u32 = 32 bytes, no padding (checked below).
unsafe impl Pod for DefExt {}
// SAFETY: repr(C), 8 u32 = 32 bytes, no padding (checked below).
unsafe impl Pod for FieldRec {}
// SAFETY: repr(C), Str + u64 + i64 + 8 u32 = 56 bytes, no padding (checked below).
unsafe impl Pod for FileMeta {}
const _: () = assert!(std::mem::size_of::<DefRec>() == 28);
const _: () = assert!(std::mem::size_of::<DefExt>() == 32);
const _: () = assert!(std::mem::size_of::<FieldRec>() == 32);
const _: () = assert!(std::mem::size_of::<FileMeta>() == 56);

/// A table that is either built in memory or viewed in place in the mapped cache file, so a
/// reload costs a `mmap` instead of decoding hundreds of megabytes.
pub(crate) enum Sect<T> {
    Owned(Vec<T>),
    Mapped {
        map: Arc<memmap2::Mmap>,
        off: usize,
        len: usize,
        _t: PhantomData<T>,
    },
}

impl<T: Pod> Sect<T> {
    /// A view of `len` records at byte offset `off` of `map`, if in bounds and aligned.
    pub fn mapped(map: &Arc<memmap2::Mmap>, off: usize, len: usize) -> Option<Sect<T>> {
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        let end = off.checked_add(bytes)?;
        if end > map.len()
            || !(map.as_ptr() as usize + off).is_multiple_of(std::mem::align_of::<T>())
        {
            return None;
        }
        Some(Sect::Mapped {
            map: Arc::clone(map),
            off,
            len,
            _t: PhantomData,
        })
    }

    /// The owned vector, copying a mapped table first.
    pub fn vec_mut(&mut self) -> &mut Vec<T> {
        if let Sect::Mapped { .. } = self {
            *self = Sect::Owned(self.to_vec());
        }
        match self {
            Sect::Owned(v) => v,
            // Just replaced by `Owned` above.
            Sect::Mapped { .. } => unreachable!("converted to owned above"),
        }
    }

    /// Drops this table's mapped pages from the process's resident set (they stay in the page
    /// cache and fault back in on the next access). No-op for an owned table.
    pub fn release_resident(&self) {
        if let Sect::Mapped { map, .. } = self {
            // SAFETY: DONTNEED on a read-only shared file mapping only unmaps pages; the next
            // access reads the same bytes back from the file, which is never modified in place
            // (caches are replaced by rename), so no slice into the map sees a change.
            let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    /// The raw bytes of the table, for writing the cache.
    pub fn as_bytes(&self) -> &[u8] {
        let s: &[T] = self;
        // SAFETY: T is Pod (no padding, so every byte is initialised); the length is exact.
        unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
    }
}

impl<T: Pod> Deref for Sect<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Sect::Owned(v) => v,
            // SAFETY: `mapped` checked bounds and alignment; T is Pod so any bytes are valid;
            // the map lives as long as `self` (Arc) and the cache file is only ever replaced
            // by rename, never written in place.
            Sect::Mapped { map, off, len, .. } => unsafe {
                std::slice::from_raw_parts(map.as_ptr().add(*off).cast::<T>(), *len)
            },
        }
    }
}

impl<T> Default for Sect<T> {
    fn default() -> Self {
        Sect::Owned(Vec::new())
    }
}

impl<T: Pod> std::fmt::Debug for Sect<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if matches!(self, Sect::Owned(_)) {
            "owned"
        } else {
            "mapped"
        };
        write!(f, "Sect({kind}, {} records)", self.len())
    }
}

impl<T> From<Vec<T>> for Sect<T> {
    fn from(v: Vec<T>) -> Self {
        Sect::Owned(v)
    }
}

/// A string in the arena.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Str {
    pub off: u32,
    pub len: u32,
}

impl Str {
    pub fn is_empty(self) -> bool {
        self.len == 0
    }
    pub fn get(self, arena: &[u8]) -> &[u8] {
        arena
            .get(self.off as usize..(self.off as usize + self.len as usize))
            .unwrap_or(b"")
    }
}

pub(crate) const FLAG_STATIC: u8 = 1;
pub(crate) const FLAG_WEAK: u8 = 2;
pub(crate) const FLAG_INLINE: u8 = 4;
/// An `extern` declaration of a global variable, not its definition.
pub(crate) const FLAG_EXTERN: u8 = 8;

/// One definition; strings point into the arena, `file` into `Store::files`.
///
/// Only what every query needs lives here (28 bytes): the name, place, kind and flags. The rest
/// (condition, parent, comment, fields) is rare — most of the tree's eight million definitions
/// are bare `#define`s in register headers — so it sits in a side table of [`DefExt`] records
/// that a definition points to only when it has any of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct DefRec {
    pub name: Str,
    pub file: u32,
    pub start: u32,
    pub end: u32,
    /// Index into `Store::exts` ([`NO_EXT`] = none: no condition, parent, comment or fields).
    pub ext: u32,
    pub kind: u8,
    pub flags: u8,
    pub state: u8,
    /// Index into [`crate::scan::GENERATORS`] plus one; 0 = not generated.
    pub generated_by: u8,
}

/// `DefRec::ext` of a definition without a [`DefExt`].
pub(crate) const NO_EXT: u32 = u32::MAX;

/// The less common attributes of a definition (see [`DefRec`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct DefExt {
    pub cond: Str,
    pub parent: Str,
    /// `comment_start == 0` means no comment.
    pub comment_start: u32,
    pub comment_end: u32,
    pub fields_start: u32,
    pub fields_len: u32,
}

impl DefExt {
    /// Whether a definition with these attributes needs a side record at all.
    pub fn is_empty(&self) -> bool {
        self.cond.is_empty()
            && self.parent.is_empty()
            && self.comment_start == 0
            && self.fields_len == 0
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct FieldRec {
    pub name: Str,
    pub decl: Str,
    /// Anonymous path elements joined with `\x1f`.
    pub anon: Str,
    pub line: u32,
    /// `u32::MAX` = not a bitfield.
    pub width: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct FileMeta {
    pub path: Str,
    pub size: u64,
    pub mtime_ns: i64,
    pub defs_start: u32,
    pub defs_len: u32,
    pub fields_start: u32,
    pub fields_len: u32,
    pub arena_start: u32,
    pub arena_len: u32,
    pub exts_start: u32,
    pub exts_len: u32,
}

/// The scanner's output for one file; strings are offsets into its own arena.
#[derive(Debug, Default)]
pub(crate) struct FileOut {
    pub arena: Vec<u8>,
    pub defs: Vec<DefRec>,
    /// Definition names (`DefRec::name` points here, not into `arena`).
    pub names: Vec<u8>,
    pub exts: Vec<DefExt>,
    pub fields: Vec<FieldRec>,
    /// Sorted, deduplicated identifier hashes (low 32 bits).
    pub idents: Vec<u32>,
}

/// Most buckets of the identifier → files posting table (the whole tree uses all of them;
/// small trees fewer, so tests stay cheap).
pub(crate) const MAX_POST_BITS: u32 = 22;

/// The whole index's data.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub files: Sect<FileMeta>,
    pub arena: Sect<u8>,
    pub defs: Sect<DefRec>,
    /// Definition names, kept apart from `arena` so that a refresh copies them as one block
    /// (reused definitions keep their offsets) and the name table hashes one dense buffer.
    pub names: Sect<u8>,
    pub exts: Sect<DefExt>,
    pub fields: Sect<FieldRec>,
    /// CSR: `post_files[post_offsets[b]..post_offsets[b+1]]` are the files with an identifier
    /// whose hash falls in bucket `b` (ascending file ids).
    pub post_offsets: Sect<u32>,
    pub post_files: Sect<u32>,
    pub post_bits: u32,
    /// CSR over name-hash buckets → definition ids (derived; rebuilt on load).
    pub name_offsets: Sect<u32>,
    pub name_defs: Sect<u32>,
    pub name_bits: u32,
}

impl Store {
    /// The side attributes of `d` (all empty when it has none, or a bad index).
    pub fn ext(&self, d: &DefRec) -> DefExt {
        if d.ext == NO_EXT {
            return DefExt::default();
        }
        self.exts.get(d.ext as usize).copied().unwrap_or_default()
    }

    /// The field records of record definition `d` (empty for other kinds or a bad range).
    pub fn fields_of_rec(&self, d: &DefRec) -> &[FieldRec] {
        let e = self.ext(d);
        self.fields
            .get(e.fields_start as usize..e.fields_start as usize + e.fields_len as usize)
            .unwrap_or(&[])
    }

    /// The name of definition `d`.
    pub fn name(&self, d: &DefRec) -> &[u8] {
        d.name.get(&self.names)
    }
    pub fn name_str(&self, d: &DefRec) -> &str {
        std::str::from_utf8(self.name(d)).unwrap_or("")
    }

    pub fn str(&self, s: Str) -> &str {
        std::str::from_utf8(s.get(&self.arena)).unwrap_or("")
    }
    pub fn path(&self, file: u32) -> &str {
        self.files
            .get(file as usize)
            .map_or("", |f| self.str(f.path))
    }
    pub fn file_id(&self, rel: &str) -> Option<u32> {
        self.files
            .binary_search_by(|f| self.str(f.path).cmp(rel))
            .ok()
            .map(|i| i as u32)
    }

    /// Drops a mapped store's pages from the resident set (see [`Sect::release_resident`]); all
    /// tables of a loaded store share one map, so releasing through one releases them all.
    pub fn release_resident(&self) {
        self.defs.release_resident();
    }

    /// The name table of the current definitions (see [`Store::set_name_table`]).
    pub fn name_table(&self) -> HashTable {
        let bits = name_bits_for(self.defs.len());
        let mask = (1u64 << bits) - 1;
        let hashes: Vec<u32> = {
            use rayon::prelude::*;
            self.defs
                .par_iter()
                .map(|d| (ident_hash(d.name.get(&self.names)) & mask) as u32)
                .collect()
        };
        let (offsets, entries) = csr(
            1usize << bits,
            hashes
                .iter()
                .copied()
                .enumerate()
                .map(|(i, b)| (b, i as u32)),
            hashes.len(),
        );
        HashTable {
            offsets,
            entries,
            bits,
        }
    }

    pub fn set_name_table(&mut self, t: HashTable) {
        self.name_offsets = t.offsets.into();
        self.name_defs = t.entries.into();
        self.name_bits = t.bits;
    }

    pub fn set_postings(&mut self, t: HashTable) {
        self.post_offsets = t.offsets.into();
        self.post_files = t.entries.into();
        self.post_bits = t.bits;
    }

    /// Definition ids whose name is exactly `name`.
    pub fn defs_named(&self, name: &[u8]) -> Vec<u32> {
        if self.name_offsets.is_empty() {
            return Vec::new();
        }
        let b = (ident_hash(name) & ((1u64 << self.name_bits) - 1)) as usize;
        let (Some(&lo), Some(&hi)) = (self.name_offsets.get(b), self.name_offsets.get(b + 1))
        else {
            return Vec::new();
        };
        self.name_defs
            .get(lo as usize..hi as usize)
            .unwrap_or(&[])
            .iter()
            .copied()
            .filter(|&d| {
                self.defs
                    .get(d as usize)
                    .is_some_and(|r| r.name.get(&self.names) == name)
            })
            .collect()
    }

    /// Files that may contain identifier `name` (a superset: buckets are shared).
    pub fn files_with_ident(&self, name: &[u8]) -> &[u32] {
        if self.post_offsets.is_empty() {
            return &[];
        }
        let b = post_bucket(ident_hash(name) as u32, self.post_bits);
        let (Some(&lo), Some(&hi)) = (self.post_offsets.get(b), self.post_offsets.get(b + 1))
        else {
            return &[];
        };
        self.post_files.get(lo as usize..hi as usize).unwrap_or(&[])
    }
}

pub(crate) fn post_bucket(h: u32, bits: u32) -> usize {
    (h & ((1u32 << bits) - 1)) as usize
}

/// Bucket bits for a table of about `n` entries.
pub(crate) fn post_bits_for(n: usize) -> u32 {
    (usize::BITS - n.leading_zeros()).clamp(8, MAX_POST_BITS)
}

/// A CSR hash table: `entries[offsets[b]..offsets[b + 1]]` belong to bucket `b` of `1 << bits`.
#[derive(Debug)]
pub(crate) struct HashTable {
    pub offsets: Vec<u32>,
    pub entries: Vec<u32>,
    pub bits: u32,
}

/// Bucket bits for the name table of `n` definitions.
fn name_bits_for(n: usize) -> u32 {
    (usize::BITS - n.max(1).leading_zeros()).clamp(4, 26)
}

/// Merges two CSR tables with the same bucket count into one whose buckets are ascending and
/// free of repeats: `old`'s values pass through `remap` (`None` drops one; the map must be
/// monotonic), `fresh`'s are taken as they are (ascending per bucket, repeats allowed). One
/// linear pass, so a refresh never re-sorts the whole table.
pub(crate) fn merge_csr(
    (old_off, old_vals): (&[u32], &[u32]),
    remap: impl Fn(u32) -> Option<u32>,
    (new_off, new_vals): (&[u32], &[u32]),
) -> (Vec<u32>, Vec<u32>) {
    let buckets = new_off.len().saturating_sub(1);
    let mut out: Vec<u32> = Vec::with_capacity(old_vals.len() + new_vals.len());
    let mut offsets: Vec<u32> = Vec::with_capacity(buckets + 1);
    offsets.push(0);
    let mut olds: Vec<u32> = Vec::new();
    let range = |off: &[u32], b: usize| -> std::ops::Range<usize> {
        match (off.get(b), off.get(b + 1)) {
            (Some(&lo), Some(&hi)) if lo <= hi => lo as usize..hi as usize,
            _ => 0..0,
        }
    };
    for b in 0..buckets {
        olds.clear();
        olds.extend(
            old_vals
                .get(range(old_off, b))
                .unwrap_or(&[])
                .iter()
                .filter_map(|&v| remap(v)),
        );
        let news = new_vals.get(range(new_off, b)).unwrap_or(&[]);
        let start = out.len();
        let (mut i, mut j) = (0, 0);
        loop {
            let v = match (olds.get(i), news.get(j)) {
                (Some(&a), Some(&c)) if a <= c => {
                    i += 1;
                    a
                }
                (_, Some(&c)) => {
                    j += 1;
                    c
                }
                (Some(&a), None) => {
                    i += 1;
                    a
                }
                (None, None) => break,
            };
            if out.len() == start || out.last() != Some(&v) {
                out.push(v);
            }
        }
        // Queries rely on ascending, unique values; a damaged old table must not break that.
        if !out[start..].windows(2).all(|w| w[0] < w[1]) {
            let mut v = out.split_off(start);
            v.sort_unstable();
            v.dedup();
            out.extend_from_slice(&v);
        }
        offsets.push(out.len() as u32);
    }
    (offsets, out)
}

/// Builds a CSR table from (bucket, value) pairs; values keep their input order per bucket.
pub(crate) fn csr(
    buckets: usize,
    pairs: impl Iterator<Item = (u32, u32)> + Clone,
    n_hint: usize,
) -> (Vec<u32>, Vec<u32>) {
    let mut offsets = vec![0u32; buckets + 1];
    let mut n = 0usize;
    for (b, _) in pairs.clone() {
        offsets[b as usize + 1] += 1;
        n += 1;
    }
    for i in 0..buckets {
        offsets[i + 1] += offsets[i];
    }
    let mut fill: Vec<u32> = offsets[..buckets].to_vec();
    let mut entries = vec![0u32; n.max(n_hint.min(n))];
    for (b, v) in pairs {
        let slot = &mut fill[b as usize];
        entries[*slot as usize] = v;
        *slot += 1;
    }
    (offsets, entries)
}
