//! Definition queries over the [`Store`]: name lookup with ranking, per-file listings, struct
//! layouts and "did you mean" suggestions.
//!
//! Ranking (best first), as a sort key: files outside the kernel proper (`tools/`, `scripts/`,
//! `samples/`, `Documentation/`) last; files under another architecture's `arch/<x>/` after
//! everything else, so they are never the best answer; then Active over Unknown over Inactive;
//! bodies over prototypes and `extern` declarations; the context file, then its directory, then
//! headers, then other files; `arch/<selected>/` before generic code; finally path and line for
//! determinism.

use std::collections::HashSet;

use crate::store::{DefRec, FLAG_EXTERN, FLAG_INLINE, FLAG_STATIC, FLAG_WEAK};
use crate::types::{ConfigState, Counts, Definition, EntityKind, Field};
use crate::{Index, scan::GENERATORS};

const PERIPHERAL: &[&str] = &["tools/", "scripts/", "samples/", "Documentation/"];

/// The `arch/<x>/` directory of a path, if any.
pub(crate) fn arch_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("arch/")?;
    let end = rest.find('/')?;
    Some(&rest[..end])
}

/// Splits a user-supplied name into the stored lookup key and an optional kind filter.
pub(crate) fn normalize_name(name: &str) -> (String, Option<EntityKind>) {
    let mut n = name.trim();
    let mut kind = None;
    for (kw, k) in [
        ("struct ", EntityKind::Struct),
        ("union ", EntityKind::Union),
        ("enum ", EntityKind::Enum),
    ] {
        if let Some(rest) = n.strip_prefix(kw) {
            n = rest.trim_start();
            kind = Some(k);
        }
    }
    let n = n.replace("->", "::").replace('.', "::");
    let n: String = n.split("::").map(str::trim).collect::<Vec<_>>().join("::");
    if n.contains("::") {
        (n, Some(EntityKind::Field))
    } else {
        (n, kind)
    }
}

impl Index {
    pub(crate) fn to_def(&self, d: &DefRec) -> Definition {
        let st = &self.store;
        let file = st.path(d.file).to_string();
        let opt = |s: crate::store::Str| (!s.is_empty()).then(|| st.str(s).to_string());
        let x = st.ext(d);
        Definition {
            kind: EntityKind::from_u8(d.kind).unwrap_or(EntityKind::Function),
            name: st.name_str(d).to_string(),
            arch: arch_of(&file).map(str::to_string),
            file,
            start_line: d.start,
            end_line: d.end,
            comment: (x.comment_start != 0).then_some((x.comment_start, x.comment_end)),
            is_static: d.flags & FLAG_STATIC != 0,
            is_weak: d.flags & FLAG_WEAK != 0,
            is_inline: d.flags & FLAG_INLINE != 0,
            is_extern: d.flags & FLAG_EXTERN != 0,
            condition: opt(x.cond),
            config_state: ConfigState::from_u8(d.state),
            parent: opt(x.parent),
            generated_by: (d.generated_by > 0)
                .then(|| {
                    GENERATORS
                        .get(d.generated_by as usize - 1)
                        .map(|s| s.to_string())
                })
                .flatten(),
        }
    }

    fn rank_key(&self, d: &DefRec, context: Option<&str>) -> (u8, u8, u8, u8, u8, u8, u32, u32) {
        let path = self.store.path(d.file);
        let peripheral = PERIPHERAL.iter().any(|p| path.starts_with(p)) as u8;
        let arch = arch_of(path);
        let other_arch = arch.is_some_and(|a| a != self.arch_dir) as u8;
        let state = match ConfigState::from_u8(d.state) {
            ConfigState::Active => 0,
            ConfigState::Unknown => 1,
            ConfigState::Inactive => 2,
        };
        // `extern` variable declarations rank like prototypes: below any definition.
        let proto = (d.kind == EntityKind::Prototype.to_u8() || d.flags & FLAG_EXTERN != 0) as u8;
        let locality = match context {
            Some(c) if c == path => 0,
            Some(c) if dir_of(c) == dir_of(path) => 1,
            _ if path.ends_with(".h") => 2,
            _ => 3,
        };
        let not_selected_arch = (arch != Some(self.arch_dir.as_str())) as u8;
        (
            peripheral,
            other_arch,
            state,
            proto,
            locality,
            not_selected_arch,
            d.file,
            d.start,
        )
    }

    /// All definitions named `name`, best first (see the module docs for the ranking).
    pub fn lookup(&self, name: &str, context_file: Option<&str>) -> Vec<Definition> {
        let (key, kind) = normalize_name(name);
        if key.is_empty() {
            return Vec::new();
        }
        let mut ids = self.store.defs_named(key.as_bytes());
        if let Some(k) = kind {
            ids.retain(|&i| self.store.defs[i as usize].kind == k.to_u8());
        }
        ids.sort_by_key(|&i| self.rank_key(&self.store.defs[i as usize], context_file));
        ids.iter()
            .map(|&i| self.to_def(&self.store.defs[i as usize]))
            .collect()
    }

    fn file_defs(&self, rel: &str) -> &[DefRec] {
        let Some(f) = self.store.file_id(rel) else {
            return &[];
        };
        let m = &self.store.files[f as usize];
        &self.store.defs[m.defs_start as usize..(m.defs_start + m.defs_len) as usize]
    }

    /// Definitions in `rel`, sorted by start line.
    pub fn definitions_in_file(&self, rel: &str) -> Vec<Definition> {
        let mut v: Vec<&DefRec> = self.file_defs(rel).iter().collect();
        v.sort_by_key(|d| (d.start, d.end));
        v.into_iter().map(|d| self.to_def(d)).collect()
    }

    /// The innermost definition containing `line`: a function if one does, else the smallest
    /// record/global/macro/typedef range (fields and enumerators only when nothing else does).
    pub fn definition_at_line(&self, rel: &str, line: u32) -> Option<Definition> {
        self.file_defs(rel)
            .iter()
            .filter(|d| d.start <= line && line <= d.end && d.kind != EntityKind::Prototype.to_u8())
            .min_by_key(|d| {
                let k = EntityKind::from_u8(d.kind);
                let pri = match k {
                    Some(EntityKind::Function) => 0,
                    Some(EntityKind::Field) | Some(EntityKind::Enumerator) => 2,
                    _ => 1,
                };
                (pri, d.end - d.start, d.start)
            })
            .map(|d| self.to_def(d))
    }

    pub(crate) fn rec_of(&self, def: &Definition) -> Option<&DefRec> {
        self.file_defs(&def.file).iter().find(|d| {
            d.start == def.start_line
                && d.kind == def.kind.to_u8()
                && self.store.name_str(d) == def.name
        })
    }

    /// Struct/union members in declaration order (also for `typedef struct {..} name_t`).
    pub fn fields_of(&self, record: &Definition) -> Vec<Field> {
        let Some(d) = self.rec_of(record) else {
            return Vec::new();
        };
        let st = &self.store;
        st.fields_of_rec(d)
            .iter()
            .map(|f| Field {
                name: st.str(f.name).to_string(),
                line: f.line,
                decl: st.str(f.decl).to_string(),
                bitfield_width: (f.width != u32::MAX).then_some(f.width),
                anonymous_path: if f.anon.is_empty() {
                    Vec::new()
                } else {
                    st.str(f.anon).split('\u{1f}').map(str::to_string).collect()
                },
            })
            .collect()
    }

    /// Up to `limit` distinct definition names close to `name` (edit distance ≤ 2, or containing
    /// it), closest first.
    pub fn similar_names(&self, name: &str, limit: usize) -> Vec<String> {
        let (key, _) = normalize_name(name);
        if key.is_empty() || limit == 0 {
            return Vec::new();
        }
        let want_field = key.contains("::");
        let kb = key.to_ascii_lowercase().into_bytes();
        let lower = memchr::memmem::Finder::new(&kb);
        let upper_key = key.to_ascii_uppercase();
        let upper = memchr::memmem::Finder::new(upper_key.as_bytes());
        let field_kind = EntityKind::Field.to_u8();
        let arena: &[u8] = &self.store.names;
        // Parallel scan over all names; kernel names are lower case or (macros) upper case, so
        // two case-specific finders avoid lowering every name.
        let raw: Vec<(usize, usize, &[u8])> = {
            use rayon::prelude::*;
            self.store
                .defs
                .par_iter()
                .filter_map(|d| {
                    if (d.kind == field_kind) != want_field {
                        return None;
                    }
                    let n = d.name.get(arena);
                    let close = if n.len().abs_diff(kb.len()) <= 2 {
                        bounded_distance(n, &kb, 2)
                    } else {
                        None
                    };
                    let contains = kb.len() >= 3
                        && n.len() > kb.len()
                        && n.len() <= kb.len() + 24
                        && (lower.find(n).is_some() || upper.find(n).is_some());
                    let score = match (close, contains) {
                        (Some(0), _) if n == key.as_bytes() => return None,
                        (Some(dist), _) => dist,
                        (None, true) => 3,
                        _ => return None,
                    };
                    Some((score, n.len(), n))
                })
                .collect()
        };
        let mut seen = HashSet::new();
        let mut hits: Vec<(usize, usize, String)> = raw
            .into_iter()
            .filter(|h| seen.insert(h.2))
            .map(|(s, l, n)| (s, l, String::from_utf8_lossy(n).into_owned()))
            .collect();
        hits.sort();
        hits.into_iter().take(limit).map(|h| h.2).collect()
    }

    /// Per-kind totals.
    pub fn counts(&self) -> Counts {
        let st = &self.store;
        let mut c = Counts {
            files: st.files.len(),
            bytes: st.files.iter().map(|f| f.size).sum(),
            postings: st.post_files.len(),
            ..Counts::default()
        };
        for d in st.defs.iter() {
            match EntityKind::from_u8(d.kind) {
                Some(EntityKind::Function) => c.functions += 1,
                Some(EntityKind::Prototype) => c.prototypes += 1,
                Some(EntityKind::Struct) => c.structs += 1,
                Some(EntityKind::Union) => c.unions += 1,
                Some(EntityKind::Field) => c.fields += 1,
                Some(EntityKind::Enum) => c.enums += 1,
                Some(EntityKind::Enumerator) => c.enumerators += 1,
                Some(EntityKind::Typedef) => c.typedefs += 1,
                Some(EntityKind::GlobalVariable) => c.global_variables += 1,
                Some(EntityKind::Macro) => c.macros += 1,
                None => {}
            }
        }
        c
    }
}

fn dir_of(p: &str) -> &str {
    p.rfind('/').map_or("", |i| &p[..i])
}

/// Case-insensitive Levenshtein distance if it is at most `max`.
fn bounded_distance(a: &[u8], b: &[u8], max: usize) -> Option<usize> {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, &cb) in b.iter().enumerate() {
            let cost = (!ca.eq_ignore_ascii_case(&cb)) as usize;
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    (prev[b.len()] <= max).then_some(prev[b.len()])
}
