//! The on-disk cache: one file, `index.bin`, under `cache_dir/index/<key>/`.
//!
//! Layout: magic `RJCIDX\0\0`, format version, an endianness marker, a header (tree root,
//! arch, config hash, table parameters, section table), then the sections — the in-memory
//! record tables of [`Store`] byte for byte, each 8-byte aligned — and finally an xxh3
//! checksum of everything before it. Loading maps the file and views the sections in place
//! ([`Sect::Mapped`]), so a reload costs a checksum pass, not a decode. The file is written to a
//! temp file and renamed, so a mapped file is never modified underneath a reader. Any mismatch
//! (magic, version, key, bounds, checksum, structure) makes [`load`] return `None` and the
//! caller rebuilds: a bad cache never becomes an error or a panic.

// One of the few places allowed `unsafe` (crates/tidy lists them with the reason).
#![allow(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::IndexError;
use crate::store::{DefExt, DefRec, FieldRec, FileMeta, Pod, Sect, Store, Str};

const MAGIC: &[u8; 8] = b"RJCIDX\0\0";
/// Bump whenever the layout *or the scanning rules* change: a cache only stays valid for the
/// scanner that wrote it.
pub(crate) const FORMAT_VERSION: u32 = 7;
const ENDIAN: u32 = 0x0102_0304;
const N_SECTIONS: usize = 10;
/// Largest single write when saving (see `save`).
const WRITE_PIECE: usize = 1 << 20;

/// What identifies a cache: it must match exactly to be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheKey {
    pub root: String,
    pub arch: String,
    pub config_hash: u64,
    /// The build directory whose generated headers are indexed; empty for none.
    pub build_dir: String,
}

impl CacheKey {
    /// The description the index's `dircache` entry is keyed by: everything that must match,
    /// the format version included, so a new scanner never reads an old cache and old caches
    /// age out through the cache's LRU eviction.
    pub fn description(&self) -> String {
        let mut d = format!(
            "codeindex v{FORMAT_VERSION} tree {} arch {} config {:016x}",
            self.root, self.arch, self.config_hash
        );
        if !self.build_dir.is_empty() {
            d.push_str(" build ");
            d.push_str(&self.build_dir);
        }
        d
    }
}

/// Removes index caches of the layout before `dircache` entries (`index/<16 hex digits>/`
/// holding `index.bin` directly): they are not cache entries, so eviction would never see them.
pub(crate) fn remove_legacy_caches(kind_dir: &Path) {
    let Ok(items) = std::fs::read_dir(kind_dir) else {
        return;
    };
    for item in items.flatten() {
        let name = item.file_name();
        let legacy = name
            .to_str()
            .is_some_and(|n| n.len() == 16 && n.bytes().all(|b| b.is_ascii_hexdigit()));
        if legacy && cache_file(&item.path()).is_file() {
            tracing::info!(dir = %item.path().display(), "removing an index cache of the old layout");
            let _ = std::fs::remove_dir_all(item.path());
        }
    }
}

fn header(key: &CacheKey, st: &Store, sections: &[(u64, u64)]) -> Vec<u8> {
    let mut h = Vec::new();
    for b in [
        key.root.as_bytes(),
        key.arch.as_bytes(),
        key.build_dir.as_bytes(),
    ] {
        h.extend_from_slice(&(b.len() as u64).to_le_bytes());
        h.extend_from_slice(b);
    }
    h.extend_from_slice(&key.config_hash.to_le_bytes());
    h.extend_from_slice(&st.post_bits.to_le_bytes());
    h.extend_from_slice(&st.name_bits.to_le_bytes());
    for (off, len) in sections {
        h.extend_from_slice(&off.to_le_bytes());
        h.extend_from_slice(&len.to_le_bytes());
    }
    h
}

fn pad8(n: u64) -> u64 {
    n.div_ceil(8) * 8
}

/// Where the cache of a cache directory lives.
pub(crate) fn cache_file(dir: &Path) -> PathBuf {
    dir.join("index.bin")
}

/// Writes `store` atomically to `dir/index.bin`; returns the file's path.
pub(crate) fn save(dir: &Path, key: &CacheKey, st: &Store) -> Result<PathBuf, IndexError> {
    if cfg!(target_endian = "big") {
        return Err(IndexError::io(
            dir,
            std::io::Error::other("index cache needs a little-endian machine"),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
    sweep(dir);
    let path = cache_file(dir);
    let tmp = dir.join(format!("{TMP_PREFIX}{}", std::process::id()));
    let t = std::time::Instant::now();
    let bodies: [(&[u8], u64); N_SECTIONS] = [
        (st.files.as_bytes(), st.files.len() as u64),
        (st.defs.as_bytes(), st.defs.len() as u64),
        (st.fields.as_bytes(), st.fields.len() as u64),
        (st.arena.as_bytes(), st.arena.len() as u64),
        (st.post_offsets.as_bytes(), st.post_offsets.len() as u64),
        (st.post_files.as_bytes(), st.post_files.len() as u64),
        (st.name_offsets.as_bytes(), st.name_offsets.len() as u64),
        (st.name_defs.as_bytes(), st.name_defs.len() as u64),
        (st.exts.as_bytes(), st.exts.len() as u64),
        (st.names.as_bytes(), st.names.len() as u64),
    ];
    // Header size does not depend on the offsets' values, so compute it once with zeros.
    let hlen = header(key, st, &[(0, 0); N_SECTIONS]).len() as u64;
    let mut pos = pad8(24 + hlen);
    let mut table = Vec::with_capacity(N_SECTIONS);
    for (b, n) in &bodies {
        table.push((pos, *n));
        pos = pad8(pos + b.len() as u64);
    }
    let head = header(key, st, &table);
    let res = (|| -> std::io::Result<()> {
        let f = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(WRITE_PIECE, f);
        // Sections go out in 1 MiB pieces: one write(2) of a whole 300 MB section ran at about
        // 250 MB/s on ext4 here, while the same bytes in 1 MiB pieces go at over 3 GB/s; the
        // difference was most of a cold index's time.
        let put = |w: &mut std::io::BufWriter<std::fs::File>, b: &[u8]| -> std::io::Result<()> {
            b.chunks(WRITE_PIECE)
                .try_for_each(|piece| w.write_all(piece))
        };
        let mut written = 0u64;
        let mut pre = Vec::new();
        pre.extend_from_slice(MAGIC);
        pre.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        pre.extend_from_slice(&ENDIAN.to_le_bytes());
        pre.extend_from_slice(&(head.len() as u64).to_le_bytes());
        pre.extend_from_slice(&head);
        put(&mut w, &pre)?;
        written += pre.len() as u64;
        for ((b, _), (off, _)) in bodies.iter().zip(&table) {
            let pad = vec![0u8; (off - written) as usize];
            put(&mut w, &pad)?;
            put(&mut w, b)?;
            written = off + b.len() as u64;
        }
        tracing::debug!(elapsed = ?t.elapsed(), "cache sections written");
        let mut parts = vec![chunked_hash(&pre)];
        parts.extend(bodies.iter().map(|(b, _)| chunked_hash(b)));
        w.write_all(&combine(&parts).to_le_bytes())?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        tracing::debug!(elapsed = ?t.elapsed(), "cache checksummed");
        // No fsync: a file torn by a crash fails the checksum and is rebuilt, and fsync of
        // ~1 GB costs seconds on every refresh.
        drop(f);
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(IndexError::io(&tmp, e));
    }
    replace(&tmp, &path)?;
    tracing::debug!(elapsed = ?t.elapsed(), "cache written");
    Ok(path)
}

/// Moves the finished temp file `tmp` to `path` atomically.
///
/// A plain rename over an existing cache is slow on ext4: replace-via-rename makes it start
/// writing back the whole new file (`auto_da_alloc`), and dropping the old inode frees ~750 MB,
/// both inside rename(2): 0.3–0.4 s of a 1.8 s refresh, measured. So an existing file is swapped
/// with `renameat2(RENAME_EXCHANGE)` (atomic for readers, too), and the old one, now at the
/// temp name, is renamed aside and deleted by a background thread; a process that exits first
/// leaves it to the next save's [`sweep`].
fn replace(tmp: &Path, path: &Path) -> Result<(), IndexError> {
    if !exchange(tmp, path) {
        return std::fs::rename(tmp, path).map_err(|e| IndexError::io(path, e));
    }
    let retired = tmp.with_file_name(format!("{RETIRED_PREFIX}{}", std::process::id()));
    let doomed = if std::fs::rename(tmp, &retired).is_ok() {
        retired
    } else {
        tmp.to_path_buf()
    };
    let spawned = std::thread::Builder::new()
        .name("index-cache-sweep".into())
        .spawn({
            let doomed = doomed.clone();
            move || drop(std::fs::remove_file(doomed))
        });
    if spawned.is_err() {
        let _ = std::fs::remove_file(doomed);
    }
    Ok(())
}

/// Atomically swaps the files at `a` and `b`; false when either is missing or the system
/// cannot (then nothing changed).
fn exchange(a: &Path, b: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(a), Ok(b)) = (
        std::ffi::CString::new(a.as_os_str().as_bytes()),
        std::ffi::CString::new(b.as_os_str().as_bytes()),
    ) else {
        return false;
    };
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    rc == 0
}

/// Name prefix of the file a save writes before it replaces `index.bin`.
const TMP_PREFIX: &str = "index.bin.tmp.";
/// Name prefix of a replaced cache file still waiting to be deleted (see `replace`).
const RETIRED_PREFIX: &str = "index.bin.retired.";

/// Removes what earlier saves left behind in `dir`: replaced cache files not yet deleted, and
/// temp files of writers that no longer run (a live writer's temp file is left alone).
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for ent in entries.flatten() {
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        // Only names this module writes, with a pid, are touched.
        let pid = |prefix: &str| name.strip_prefix(prefix)?.parse::<u32>().ok();
        let stale = if let Some(pid) = pid(RETIRED_PREFIX) {
            // Our own retired file is being deleted by its sweep thread right now.
            pid != std::process::id()
        } else if let Some(pid) = pid(TMP_PREFIX) {
            !Path::new("/proc").join(pid.to_string()).exists()
        } else {
            false
        };
        if stale {
            let _ = std::fs::remove_file(ent.path());
        }
    }
}

struct In<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.p..self.p.checked_add(n)?)?;
        self.p += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u64()?).ok()?;
        self.take(n)
    }
}

/// Loads the cache in `dir` if it exists, is intact and was made for `key`.
pub(crate) fn load(dir: &Path, key: &CacheKey) -> Option<(Store, PathBuf)> {
    let path = cache_file(dir);
    let file = std::fs::File::open(&path).ok()?;
    let t = std::time::Instant::now();
    // SAFETY: the cache file is only ever replaced by rename, never written in place, so the
    // mapped bytes do not change while mapped; all reads through the map are bounds-checked.
    let map = match unsafe { memmap2::Mmap::map(&file) } {
        Ok(m) => Arc::new(m),
        Err(e) => {
            tracing::warn!(cache = %path.display(), error = %e, "cannot map index cache; rebuilding");
            return None;
        }
    };
    match decode(&map, key) {
        Some(st) => {
            tracing::debug!(elapsed = ?t.elapsed(), "cache mapped and verified");
            Some((st, path))
        }
        None => {
            tracing::warn!(cache = %path.display(), "index cache is corrupt or stale; rebuilding");
            None
        }
    }
}

fn decode(map: &Arc<memmap2::Mmap>, key: &CacheKey) -> Option<Store> {
    let data: &[u8] = map;
    if cfg!(target_endian = "big") || data.len() < 32 || &data[..8] != MAGIC {
        return None;
    }
    let (body, tail) = data.split_at(data.len() - 8);
    let mut r = In { b: body, p: 8 };
    if r.u32()? != FORMAT_VERSION || r.u32()? != ENDIAN {
        return None;
    }
    let head = r.bytes()?;
    let mut h = In { b: head, p: 0 };
    if h.bytes()? != key.root.as_bytes()
        || h.bytes()? != key.arch.as_bytes()
        || h.bytes()? != key.build_dir.as_bytes()
        || h.u64()? != key.config_hash
    {
        return None;
    }
    let post_bits = h.u32()?;
    let name_bits = h.u32()?;
    if post_bits > crate::store::MAX_POST_BITS || name_bits > 30 {
        return None;
    }
    let mut table = [(0usize, 0usize); N_SECTIONS];
    for slot in &mut table {
        *slot = (
            usize::try_from(h.u64()?).ok()?,
            usize::try_from(h.u64()?).ok()?,
        );
    }
    // The whole file must be intact before any of it is trusted.
    let want = u64::from_le_bytes(tail.try_into().ok()?);
    if checksum(body, r.p, &table)? != want {
        return None;
    }
    fn sect<T: Pod>(
        map: &Arc<memmap2::Mmap>,
        body_len: usize,
        (off, len): (usize, usize),
    ) -> Option<Sect<T>> {
        let s = Sect::mapped(map, off, len)?;
        (off + std::mem::size_of_val::<[T]>(&s) <= body_len).then_some(s)
    }
    let n = body.len();
    let st = Store {
        files: sect(map, n, table[0])?,
        defs: sect(map, n, table[1])?,
        fields: sect(map, n, table[2])?,
        arena: sect(map, n, table[3])?,
        post_offsets: sect(map, n, table[4])?,
        post_files: sect(map, n, table[5])?,
        name_offsets: sect(map, n, table[6])?,
        name_defs: sect(map, n, table[7])?,
        exts: sect(map, n, table[8])?,
        names: sect(map, n, table[9])?,
        post_bits,
        name_bits,
    };
    validate(&st).then_some(st)
}

/// Hash of a byte range, computed over 8 MiB chunks in parallel (xxh3 of the chunk digests).
fn chunked_hash(b: &[u8]) -> u64 {
    let digests: Vec<u64> = b
        .par_chunks(8 << 20)
        .map(xxhash_rust::xxh3::xxh3_64)
        .collect();
    combine(&digests)
}

fn combine(parts: &[u64]) -> u64 {
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.to_le_bytes()).collect();
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

/// The checksum `save` wrote: over the preamble and each section's bytes (padding excluded).
fn checksum(body: &[u8], pre_len: usize, table: &[(usize, usize); N_SECTIONS]) -> Option<u64> {
    const SIZES: [usize; N_SECTIONS] = [
        size_of::<FileMeta>(),
        size_of::<DefRec>(),
        size_of::<FieldRec>(),
        1,
        4,
        4,
        4,
        4,
        size_of::<DefExt>(),
        1,
    ];
    let mut parts = vec![chunked_hash(body.get(..pre_len)?)];
    for (&(off, len), size) in table.iter().zip(SIZES) {
        parts.push(chunked_hash(
            body.get(off..off.checked_add(len.checked_mul(size)?)?)?,
        ));
    }
    Some(combine(&parts))
}

/// Structural checks on the small tables so that queries can trust file ranges and table
/// shapes; per-record accesses into the big tables are bounds-checked where they happen.
fn validate(st: &Store) -> bool {
    let alen = st.arena.len() as u64;
    let in_arena = |s: Str| s.off as u64 + s.len as u64 <= alen;
    let files_ok = st.files.par_iter().all(|f| {
        in_arena(f.path)
            && (f.defs_start as u64 + f.defs_len as u64) <= st.defs.len() as u64
            && (f.fields_start as u64 + f.fields_len as u64) <= st.fields.len() as u64
            && (f.arena_start as u64 + f.arena_len as u64) <= alen
            && (f.exts_start as u64 + f.exts_len as u64) <= st.exts.len() as u64
    });
    let csr_ok = |offsets: &[u32], entries: usize, bits: u32| {
        offsets.len() == (1usize << bits) + 1
            && offsets.first() == Some(&0)
            && offsets.last().is_some_and(|&l| l as usize == entries)
            && offsets.par_windows(2).all(|w| w[0] <= w[1])
    };
    files_ok
        && csr_ok(&st.post_offsets, st.post_files.len(), st.post_bits)
        && csr_ok(&st.name_offsets, st.name_defs.len(), st.name_bits)
}
