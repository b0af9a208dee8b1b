//! Reference search ([`Index::find_references`]).
//!
//! Nothing is resolved at index time. The posting table gives the files that may contain the
//! identifier (hash buckets: a superset), a `memmem` check drops false positives, and each
//! remaining file is lexed and every occurrence classified from its token context:
//! call vs. address taken, read/write/read-write/address-of (with `READ_ONCE`, `WRITE_ONCE`,
//! `data_race`, acquire/release, atomic and RCU wrappers giving the [`Marking`]).
//!
//! For `record::field` queries the base expression's type is resolved cheaply: a variable
//! declared `struct R *v` or `T *v` with `T` a typedef of an anonymous record (`atomic_t`)
//! (parameter or local of the enclosing function, or a global of the same file; also written
//! `(v)`), a cast `((struct R *)x)`, `container_of(x, struct R, m)`, or one level of member chain
//! through a field whose declaration names `struct R` or such a typedef. A match gives [`Resolution::Exact`]; a
//! known *different* record drops the hit; anything else is kept as [`Resolution::NameOnly`].
//! References inside `#define` bodies are not reported.

use rayon::prelude::*;

use crate::lex::{Lexer, Tok, TokKind, matching_open};
use crate::query::normalize_name;
use crate::scan::is_attr_word;
use crate::store::DefRec;
use crate::types::{EntityKind, Marking, RefKind, RefQuery, RefResults, Reference, Resolution};
use crate::{Index, IndexError};

thread_local! {
    /// Per-thread file buffer: a query reads thousands of files, and fresh allocations for
    /// each cost more in page faults than the read itself.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Per-thread token buffer, for the same reason.
    static TOKS: std::cell::RefCell<Vec<Tok>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What the queried name is, which decides how occurrences are classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target<'q> {
    Field { record: &'q str, field: &'q str },
    Function,
    Global,
    Macro,
    Type { tag: bool },
    Other,
}

struct FileCtx<'a> {
    src: &'a [u8],
    toks: Vec<Tok>,
    /// Whether `toks` covers only the functions holding occurrences (file-scope declarations
    /// must then be looked up in a full lexing of the file).
    partial: bool,
    /// File-scope declaration lookups already done: name → record type (see `var_type`).
    /// Without it every unresolved occurrence would rescan the whole file.
    /// File-scope variables' record types, once looked up.
    globals: std::cell::RefCell<std::collections::HashMap<Vec<u8>, Option<Vec<u8>>>>,
    functions: Vec<&'a DefRec>,
    /// Lines where an enumerator with the queried name is defined (not references).
    enumerator_lines: Vec<u32>,
}

impl Index {
    /// All references to `q.name`, sorted by file, line, column (see the module docs).
    pub fn find_references(&self, q: &RefQuery) -> Result<RefResults, IndexError> {
        let (key, kind) = normalize_name(&q.name);
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| crate::lex::is_ident_byte(b) || b == b':')
        {
            return Err(IndexError::BadQuery(format!(
                "{:?} is not an identifier or record::field",
                q.name
            )));
        }
        let target = if let Some((record, field)) = key.split_once("::") {
            if record.is_empty() || field.is_empty() || field.contains(':') {
                return Err(IndexError::BadQuery(format!(
                    "{:?}: expected record::field",
                    q.name
                )));
            }
            Target::Field { record, field }
        } else {
            let ids = self.store.defs_named(key.as_bytes());
            let has = |k: EntityKind| {
                ids.iter()
                    .any(|&i| self.store.defs[i as usize].kind == k.to_u8())
            };
            match kind {
                Some(EntityKind::Struct | EntityKind::Union | EntityKind::Enum) => {
                    Target::Type { tag: true }
                }
                _ if has(EntityKind::Function) || has(EntityKind::Prototype) => Target::Function,
                _ if has(EntityKind::GlobalVariable) => Target::Global,
                _ if has(EntityKind::Struct) || has(EntityKind::Union) || has(EntityKind::Enum) => {
                    Target::Type { tag: true }
                }
                _ if has(EntityKind::Typedef) => Target::Type { tag: false },
                _ if has(EntityKind::Macro) || has(EntityKind::Enumerator) => Target::Macro,
                _ => Target::Other,
            }
        };
        let ident: &str = match target {
            Target::Field { field, .. } => field,
            _ => &key,
        };
        let prefix = q.path_prefix.as_deref().unwrap_or("");
        let files: Vec<u32> = self
            .store
            .files_with_ident(ident.as_bytes())
            .iter()
            .copied()
            .filter(|&f| self.store.path(f).starts_with(prefix))
            .collect();
        let finder = memchr::memmem::Finder::new(ident.as_bytes());
        let mut refs: Vec<Reference> = files
            .par_iter()
            .flat_map_iter(|&f| {
                READ_BUF.with(|buf| {
                    let mut src = buf.borrow_mut();
                    src.clear();
                    let rel = self.store.path(f);
                    let ok = std::fs::File::open(self.base_for(rel).join(rel))
                        .and_then(|mut fh| std::io::Read::read_to_end(&mut fh, &mut src));
                    if ok.is_err() || finder.find(&src).is_none() {
                        return Vec::new();
                    }
                    self.refs_in_file(f, &src, ident, target)
                })
            })
            .collect();
        refs.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        let total = refs.len();
        if q.limit > 0 {
            refs.truncate(q.limit);
        }
        Ok(RefResults {
            references: refs,
            total,
        })
    }

    fn refs_in_file(&self, f: u32, src: &[u8], ident: &str, target: Target<'_>) -> Vec<Reference> {
        let m = &self.store.files[f as usize];
        let mut functions: Vec<&DefRec> = self.store.defs
            [m.defs_start as usize..(m.defs_start + m.defs_len) as usize]
            .iter()
            .filter(|d| d.kind == EntityKind::Function.to_u8())
            .collect();
        functions.sort_by_key(|d| (d.start, std::cmp::Reverse(d.end)));
        let Some(region) = lex_region(src, ident.as_bytes(), &functions) else {
            return Vec::new();
        };
        let mut lx = Lexer::at_line(src, region.start, region.line);
        let mut toks = TOKS.with(|t| std::mem::take(&mut *t.borrow_mut()));
        toks.clear();
        loop {
            let t = lx.next_tok();
            match t.kind {
                TokKind::Eof => break,
                _ if t.start as usize >= region.end => break,
                TokKind::Directive => continue,
                _ => toks.push(t),
            }
        }
        let partial = region.start > 0 || region.end < src.len();
        let file_defs =
            &self.store.defs[m.defs_start as usize..(m.defs_start + m.defs_len) as usize];
        let enumerator_lines = file_defs
            .iter()
            .filter(|d| {
                d.kind == EntityKind::Enumerator.to_u8() && self.store.name(d) == ident.as_bytes()
            })
            .map(|d| d.start)
            .collect();
        let cx = FileCtx {
            src,
            toks,
            partial,
            globals: Default::default(),
            functions,
            enumerator_lines,
        };
        let rel = self.store.path(f);
        let mut out = Vec::new();
        let mut depth = 0i32;
        let id = ident.as_bytes();
        for i in 0..cx.toks.len() {
            let t = cx.toks[i];
            if t.kind == TokKind::Punct {
                if t.is_punct(src, b'{') {
                    depth += 1;
                } else if t.is_punct(src, b'}') {
                    depth -= 1;
                }
                continue;
            }
            if t.kind != TokKind::Ident || t.text(src) != id {
                continue;
            }
            if let Some((kind, marking, resolution)) = self.classify(&cx, i, depth, target) {
                let line = t.line;
                // The physical line around the token (found from the token, so it cannot
                // disagree with the source).
                let ls = memchr::memrchr(b'\n', &src[..t.start as usize]).map_or(0, |p| p + 1);
                let le = memchr::memchr(b'\n', &src[t.start as usize..])
                    .map_or(src.len(), |p| t.start as usize + p);
                let text = String::from_utf8_lossy(&src[ls..le]);
                let ls = ls as u32;
                out.push(Reference {
                    kind,
                    marking,
                    file: rel.to_string(),
                    line,
                    column: t.start.saturating_sub(ls) + 1,
                    enclosing: self
                        .enclosing(&cx, line)
                        .map(|d| self.store.name_str(d).to_string()),
                    line_text: text.trim_end().to_string(),
                    resolution,
                });
            }
        }
        let mut toks = cx.toks;
        toks.clear();
        TOKS.with(|t| *t.borrow_mut() = toks);
        out
    }

    fn enclosing<'a>(&self, cx: &FileCtx<'a>, line: u32) -> Option<&'a DefRec> {
        cx.functions
            .iter()
            .filter(|d| d.start <= line && line <= d.end)
            .min_by_key(|d| d.end - d.start)
            .copied()
    }

    fn classify(
        &self,
        cx: &FileCtx<'_>,
        i: usize,
        depth: i32,
        target: Target<'_>,
    ) -> Option<(RefKind, Marking, Resolution)> {
        let src = cx.src;
        let toks = &cx.toks;
        let prev = i.checked_sub(1).map(|p| toks[p]);
        let next = toks.get(i + 1).copied();
        let is_member = prev.is_some_and(|p| p.is(src, "->") || p.is_punct(src, b'.'));
        let after_tag = prev.is_some_and(|p| matches!(p.text(src), b"struct" | b"union" | b"enum"));
        let next_is = |c: u8| next.is_some_and(|n| n.is_punct(src, c));
        match target {
            Target::Field { record, .. } => {
                if !is_member {
                    return None;
                }
                let dot = i - 1;
                // `.f = x` inside an initializer: a designated initializer, not an access.
                if toks[dot].is_punct(src, b'.')
                    && dot > 0
                    && (toks[dot - 1].is_punct(src, b'{') || toks[dot - 1].is_punct(src, b','))
                {
                    return None;
                }
                let (res, start) = match self.base_type(cx, dot, 0) {
                    (Some(t), s) if t == record.as_bytes() => (Resolution::Exact, s),
                    (Some(_), _) => return None,
                    (None, s) => (Resolution::NameOnly, s),
                };
                let (kind, marking) = access_kind(src, toks, start, i);
                Some((kind, marking, res))
            }
            Target::Function => {
                if is_member || after_tag {
                    return None;
                }
                if next_is(b'(') {
                    // At file scope a name followed by `(` is a declaration or definition.
                    (depth > 0).then_some((RefKind::Call, Marking::Plain, Resolution::Exact))
                } else {
                    Some((RefKind::AddressTaken, Marking::Plain, Resolution::Exact))
                }
            }
            Target::Global => {
                if is_member || after_tag || depth == 0 {
                    return None;
                }
                let (kind, marking) = access_kind(src, toks, i, i);
                Some((kind, marking, Resolution::Exact))
            }
            Target::Macro => {
                let enumerator_def = cx.enumerator_lines.contains(&toks[i].line)
                    && prev.is_some_and(|p| p.is_punct(src, b'{') || p.is_punct(src, b','));
                if is_member || enumerator_def {
                    return None;
                }
                let kind = if next_is(b'(') {
                    RefKind::Call
                } else {
                    RefKind::Use
                };
                Some((kind, Marking::Plain, Resolution::Exact))
            }
            Target::Type { tag } => {
                if is_member || tag != after_tag {
                    return None;
                }
                // `struct foo {` is the definition itself.
                if next_is(b'{') {
                    return None;
                }
                Some((RefKind::TypeUse, Marking::Plain, Resolution::Exact))
            }
            Target::Other => {
                if is_member {
                    return None;
                }
                Some((RefKind::Use, Marking::Plain, Resolution::NameOnly))
            }
        }
    }

    /// The record type of the expression ending just before the member operator at `op`, and the
    /// index of that expression's first token.
    fn base_type(&self, cx: &FileCtx<'_>, op: usize, level: u32) -> (Option<Vec<u8>>, usize) {
        let src = cx.src;
        let toks = &cx.toks;
        if op == 0 {
            return (None, op);
        }
        let mut e = op - 1;
        // Array element: `a[i]->f` has the element type of `a`.
        while toks[e].is_punct(src, b']') {
            match matching_open(src, toks, e) {
                Some(o) if o > 0 => e = o - 1,
                _ => return (None, e),
            }
        }
        let t = toks[e];
        if t.kind == TokKind::Ident {
            let before = e.checked_sub(1).map(|p| toks[p]);
            if before.is_some_and(|p| p.is(src, "->") || p.is_punct(src, b'.')) {
                // Member chain: type of the member in the outer record.
                if level >= 3 {
                    return (None, self.chain_start(cx, e));
                }
                let (outer, s) = self.base_type(cx, e - 1, level + 1);
                let ty = outer.and_then(|o| self.field_record_type(&o, t.text(src)));
                return (ty, s);
            }
            return (self.var_type(cx, e), e);
        }
        if t.is_punct(src, b')') {
            let Some(o) = matching_open(src, toks, e) else {
                return (None, e);
            };
            let inner = &toks[o + 1..e];
            let callee = o > 0
                && toks[o - 1].kind == TokKind::Ident
                && !matches!(toks[o - 1].text(src), b"return" | b"case" | b"else");
            // `(v)->f`, as macros and their inline-function copies write it.
            if !callee && inner.len() == 1 && inner[0].kind == TokKind::Ident {
                return (self.var_type(cx, o + 1), o);
            }
            // container_of(ptr, struct R, member) and friends.
            if callee {
                let f = toks[o - 1].text(src);
                if matches!(
                    f,
                    b"container_of"
                        | b"container_of_const"
                        | b"list_entry"
                        | b"list_first_entry"
                        | b"list_last_entry"
                        | b"list_next_entry"
                        | b"list_prev_entry"
                        | b"hlist_entry"
                        | b"list_entry_rcu"
                        | b"list_first_entry_or_null"
                        | b"rb_entry"
                        | b"hlist_entry_safe"
                        | b"llist_entry"
                ) && let Some(ty) = struct_after_comma(src, inner)
                {
                    return (Some(ty), o - 1);
                }
                return (None, o - 1);
            }
            // ((struct R *)x)->f
            if inner.len() >= 4
                && inner[0].is_punct(src, b'(')
                && matches!(inner[1].text(src), b"struct" | b"union")
            {
                return (Some(inner[2].text(src).to_vec()), o);
            }
            // (struct R *)x written without the outer parens is not a postfix base; give up.
            return (None, o);
        }
        (None, e)
    }

    fn chain_start(&self, cx: &FileCtx<'_>, mut e: usize) -> usize {
        let (src, toks) = (cx.src, &cx.toks);
        while e >= 2
            && (toks[e - 1].is(src, "->") || toks[e - 1].is_punct(src, b'.'))
            && toks[e - 2].kind == TokKind::Ident
        {
            e -= 2;
        }
        e
    }

    /// `struct R` named in the declaration of `record::member`, if any.
    fn field_record_type(&self, record: &[u8], member: &[u8]) -> Option<Vec<u8>> {
        let ids = self.store.defs_named(record);
        let st = &self.store;
        for id in ids {
            let d = &st.defs[id as usize];
            if d.kind != EntityKind::Struct.to_u8()
                && d.kind != EntityKind::Union.to_u8()
                && d.kind != EntityKind::Typedef.to_u8()
            {
                continue;
            }
            for fr in st.fields_of_rec(d) {
                if fr.name.get(&st.arena) == member {
                    let decl = fr.decl.get(&st.arena);
                    return record_in_decl(decl)
                        .or_else(|| type_word(decl).filter(|t| self.is_record_typedef(t)));
                }
            }
        }
        None
    }

    /// The record type of variable token `e`, from its declaration in the enclosing function
    /// (parameters included) or at file scope in the same file.
    fn var_type(&self, cx: &FileCtx<'_>, e: usize) -> Option<Vec<u8>> {
        let (src, toks) = (cx.src, &cx.toks);
        let name = toks[e].text(src);
        let fn_start = self.enclosing(cx, toks[e].line).map_or(1, |d| d.start);
        let mut j = e;
        while j > 0 {
            j -= 1;
            let t = toks[j];
            if t.line < fn_start {
                break;
            }
            if t.kind == TokKind::Ident
                && t.text(src) == name
                && let Some(ty) = decl_type_before(src, toks, j)
            {
                return self.record_of(ty);
            }
        }
        // File-scope declaration in this file (before the first function or anywhere at depth 0).
        if let Some(ty) = cx.globals.borrow().get(name) {
            return ty.clone();
        }
        let ty = if cx.partial {
            let all: Vec<Tok> = Lexer::new(src)
                .filter(|t| t.kind != TokKind::Directive)
                .collect();
            file_scope_type(src, &all, name)
        } else {
            file_scope_type(src, toks, name)
        };
        let ty = ty.and_then(|t| self.record_of(t));
        cx.globals.borrow_mut().insert(name.to_vec(), ty.clone());
        ty
    }

    /// The record a declared type names: `struct R` is `R`; a typedef of an anonymous record
    /// (`typedef struct { int counter; } atomic_t;`, the kernel's usual way) is the record
    /// itself. Other names (base types, a typedef of a named struct) resolve to nothing, which
    /// keeps such hits as name-only rather than dropping them.
    fn record_of(&self, ty: DeclType) -> Option<Vec<u8>> {
        match ty {
            DeclType::Record(name) => Some(name),
            DeclType::Named(name) => self.is_record_typedef(&name).then_some(name),
        }
    }

    /// Whether `name` is a typedef the index holds fields for (an anonymous record's typedef).
    fn is_record_typedef(&self, name: &[u8]) -> bool {
        let st = &self.store;
        st.defs_named(name).into_iter().any(|id| {
            st.defs.get(id as usize).is_some_and(|d| {
                d.kind == EntityKind::Typedef.to_u8() && !st.fields_of_rec(d).is_empty()
            })
        })
    }
}

/// The part of a file worth lexing for a query: byte range and the line it starts on.
struct Region {
    start: usize,
    end: usize,
    line: u32,
}

/// Lexing is most of a query's cost, and most occurrences sit in a few functions: when every
/// whole-word occurrence of `ident` lies inside an indexed function, only the lines from the
/// first such function to the end of the last one are lexed (functions start at file scope, so
/// brace depth and directive state are right there). Otherwise the whole file is. `None`: no
/// whole-word occurrence at all.
fn lex_region(src: &[u8], ident: &[u8], functions: &[&DefRec]) -> Option<Region> {
    let whole = Region {
        start: 0,
        end: src.len(),
        line: 1,
    };
    let mut line = 1u32;
    let mut counted = 0usize;
    let (mut lo, mut hi) = (u32::MAX, 0u32);
    let mut any = false;
    for pos in memchr::memmem::find_iter(src, ident) {
        let end = pos + ident.len();
        let before = pos.checked_sub(1).map(|p| src[p]);
        if before.is_some_and(crate::lex::is_ident_byte)
            || src.get(end).copied().is_some_and(crate::lex::is_ident_byte)
        {
            continue;
        }
        any = true;
        line += memchr::memchr_iter(b'\n', &src[counted..pos]).count() as u32;
        counted = pos;
        // The outermost function holding the line (sorted by start, longest first).
        let Some(func) = functions
            .iter()
            .filter(|d| d.start <= line && line <= d.end)
            .max_by_key(|d| d.end - d.start)
        else {
            return Some(whole);
        };
        lo = lo.min(func.start);
        hi = hi.max(func.end);
    }
    if !any {
        return None;
    }
    // Byte offsets of the start of line `lo` and of the end of line `hi`.
    let mut start = None;
    let mut end = src.len();
    let mut l = 1u32;
    if lo == 1 {
        start = Some(0);
    }
    for nl in memchr::memchr_iter(b'\n', src) {
        l += 1;
        if l == lo {
            start = Some(nl + 1);
        }
        if l == hi + 1 {
            end = nl + 1;
            break;
        }
    }
    // Lines past the end (a stale record) cannot happen for a fresh file; lex it all then.
    let Some(start) = start else {
        return Some(whole);
    };
    Some(Region {
        start,
        end: end.max(start),
        line: lo,
    })
}

/// The type of `name` from its declaration at file scope (depth 0), if any.
fn file_scope_type(src: &[u8], toks: &[Tok], name: &[u8]) -> Option<DeclType> {
    let mut depth = 0;
    for (k, t) in toks.iter().enumerate() {
        if t.is_punct(src, b'{') {
            depth += 1;
        } else if t.is_punct(src, b'}') {
            depth -= 1;
        } else if depth == 0
            && t.kind == TokKind::Ident
            && t.text(src) == name
            && let Some(ty) = decl_type_before(src, toks, k)
        {
            return Some(ty);
        }
    }
    None
}

/// The type a declaration names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DeclType {
    /// `struct R` / `union R`.
    Record(Vec<u8>),
    /// Any other type name: a typedef (`atomic_t`, `spinlock_t`) or a base type.
    Named(Vec<u8>),
}

/// If token `j` is the name in a declaration `[struct|union] T [*|quals]* name`, its type;
/// `None` if `j` is not declared here.
fn decl_type_before(src: &[u8], toks: &[Tok], j: usize) -> Option<DeclType> {
    let after = toks.get(j + 1)?;
    if !(after.is_punct(src, b',')
        || after.is_punct(src, b';')
        || after.is_punct(src, b')')
        || after.is_punct(src, b'=')
        || after.is_punct(src, b'['))
    {
        return None;
    }
    let mut k = j;
    let mut stars = 0;
    while k > 0
        && (toks[k - 1].is_punct(src, b'*')
            || toks[k - 1].kind == TokKind::Ident && is_attr_word(toks[k - 1].text(src)))
    {
        if toks[k - 1].is_punct(src, b'*') {
            stars += 1;
        }
        k -= 1;
    }
    if k == 0 || toks[k - 1].kind != TokKind::Ident {
        return None;
    }
    let ty = toks[k - 1];
    let kw = (k >= 2).then(|| toks[k - 2]);
    if kw.is_some_and(|t| matches!(t.text(src), b"struct" | b"union")) {
        return Some(DeclType::Record(ty.text(src).to_vec()));
    }
    // `T *name` / `T name` where the previous token starts a declaration.
    let starts_decl = k < 2 || {
        let p = toks[k - 2];
        p.is_punct(src, b'(')
            || p.is_punct(src, b',')
            || p.is_punct(src, b';')
            || p.is_punct(src, b'{')
            || p.is_punct(src, b'}')
            || (p.kind == TokKind::Ident && is_attr_word(p.text(src)))
    };
    let _ = stars;
    let is_keyword_type = matches!(
        ty.text(src),
        b"return" | b"sizeof" | b"case" | b"goto" | b"else"
    );
    (starts_decl && !is_keyword_type).then(|| DeclType::Named(ty.text(src).to_vec()))
}

/// `struct R` right after the first top-level comma (container_of's second argument).
fn struct_after_comma(src: &[u8], inner: &[Tok]) -> Option<Vec<u8>> {
    let mut depth = 0;
    for (k, t) in inner.iter().enumerate() {
        if t.is_punct(src, b'(') {
            depth += 1;
        } else if t.is_punct(src, b')') {
            depth -= 1;
        } else if depth == 0 && t.is_punct(src, b',') {
            let a = inner.get(k + 1)?;
            let b = inner.get(k + 2)?;
            if matches!(a.text(src), b"struct" | b"union") {
                return Some(b.text(src).to_vec());
            }
            return None;
        }
    }
    None
}

/// `R` from a member declaration like `struct R *x` (not `struct R (*fn)(..)`).
/// The type name a member declaration starts with, qualifiers skipped
/// (`const atomic_t refcnt` → `atomic_t`).
fn type_word(decl: &[u8]) -> Option<Vec<u8>> {
    let s = std::str::from_utf8(decl).ok()?;
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|w| {
            !w.is_empty() && !matches!(*w, "const" | "volatile") && !is_attr_word(w.as_bytes())
        })
        .map(|w| w.as_bytes().to_vec())
}

fn record_in_decl(decl: &[u8]) -> Option<Vec<u8>> {
    let s = std::str::from_utf8(decl).ok()?;
    let mut words = s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
    while let Some(w) = words.next() {
        if w == "struct" || w == "union" {
            return words.find(|w| !w.is_empty()).map(|w| w.as_bytes().to_vec());
        }
    }
    None
}

/// Read/write classification of the access expression `toks[start..=name]` (`name` is the
/// queried identifier, `start` the first token of its postfix chain).
fn access_kind(src: &[u8], toks: &[Tok], start: usize, name: usize) -> (RefKind, Marking) {
    // Suffix: skip array subscripts and member chains that continue through `.`.
    let mut k = name + 1;
    while k < toks.len() && toks[k].is_punct(src, b'[') {
        let mut depth = 0;
        while k < toks.len() {
            if toks[k].is_punct(src, b'[') {
                depth += 1;
            } else if toks[k].is_punct(src, b']') {
                depth -= 1;
                if depth == 0 {
                    k += 1;
                    break;
                }
            }
            k += 1;
        }
    }
    let after = toks.get(k).map(|t| t.text(src)).unwrap_or(b"");
    let mut kind = match after {
        b"=" => RefKind::Write,
        b"+=" | b"-=" | b"*=" | b"/=" | b"%=" | b"&=" | b"|=" | b"^=" | b"<<=" | b">>=" | b"++"
        | b"--" => RefKind::ReadWrite,
        _ => RefKind::Read,
    };
    // Prefix operators.
    let mut p = start;
    let mut addr = false;
    if p > 0 {
        match toks[p - 1].text(src) {
            b"++" | b"--" => kind = RefKind::ReadWrite,
            b"&" => {
                // Binary `a & b->f` is a read; unary `&` follows an operator or opening token.
                let unary = p < 2 || {
                    let q = toks[p - 2];
                    q.kind == TokKind::Punct && !q.is_punct(src, b')') && !q.is_punct(src, b']')
                        || q.kind == TokKind::Ident && q.text(src) == b"return"
                };
                if unary {
                    addr = true;
                    p -= 1;
                }
            }
            _ => {}
        }
    }
    // The call the expression is the first argument of, if any.
    let (marking, mkind) =
        if p > 1 && toks[p - 1].is_punct(src, b'(') && toks[p - 2].kind == TokKind::Ident {
            wrapper(toks[p - 2].text(src), true)
        } else if p > 1 && toks[p - 1].is_punct(src, b',') {
            // Second argument of WRITE_ONCE(x, v) etc. is a plain read of v; of atomic/bit helpers
            // (`set_bit(nr, &p->flags)`) it is the target.
            match enclosing_call(src, toks, p - 1) {
                Some(f) => wrapper(f, false),
                None => (Marking::Plain, None),
            }
        } else {
            (Marking::Plain, None)
        };
    if let Some(mk) = mkind {
        return (mk, marking);
    }
    if addr {
        return (RefKind::AddressOf, Marking::Plain);
    }
    (kind, marking)
}

/// The name of the call whose argument list contains the comma at `comma`.
fn enclosing_call<'s>(src: &'s [u8], toks: &[Tok], comma: usize) -> Option<&'s [u8]> {
    let mut depth = 0;
    let mut i = comma;
    while i > 0 {
        i -= 1;
        let t = toks[i];
        if t.is_punct(src, b')') {
            depth += 1;
        } else if t.is_punct(src, b'(') {
            if depth == 0 {
                return (i > 0 && toks[i - 1].kind == TokKind::Ident)
                    .then(|| toks[i - 1].text(src));
            }
            depth -= 1;
        } else if depth == 0 && (t.is_punct(src, b';') || t.is_punct(src, b'{')) {
            return None;
        }
    }
    None
}

/// Marking and (if the wrapper decides it) access kind for an expression that is an argument of
/// macro/function `f` (`first`: it is the first argument).
fn wrapper(f: &[u8], first: bool) -> (Marking, Option<RefKind>) {
    let s = std::str::from_utf8(f).unwrap_or("");
    let rw = Some(RefKind::ReadWrite);
    match s {
        "READ_ONCE" | "__READ_ONCE" if first => (Marking::ReadOnce, Some(RefKind::Read)),
        "WRITE_ONCE" | "__WRITE_ONCE" if first => (Marking::WriteOnce, Some(RefKind::Write)),
        "data_race" => (Marking::DataRace, None),
        "smp_load_acquire" | "atomic_read_acquire" if first => {
            (Marking::LoadAcquire, Some(RefKind::Read))
        }
        "smp_store_release" | "atomic_set_release" if first => {
            (Marking::StoreRelease, Some(RefKind::Write))
        }
        "rcu_dereference"
        | "rcu_dereference_protected"
        | "rcu_dereference_check"
        | "rcu_dereference_raw"
        | "rcu_dereference_bh"
        | "rcu_dereference_sched"
        | "rcu_access_pointer"
        | "srcu_dereference"
            if first =>
        {
            (Marking::Rcu, Some(RefKind::Read))
        }
        "rcu_assign_pointer" | "RCU_INIT_POINTER" | "rcu_replace_pointer" if first => {
            (Marking::Rcu, Some(RefKind::Write))
        }
        "test_bit" | "constant_test_bit" | "variable_test_bit" if !first => {
            (Marking::Atomic, Some(RefKind::Read))
        }
        "set_bit"
        | "clear_bit"
        | "change_bit"
        | "test_and_set_bit"
        | "test_and_clear_bit"
        | "test_and_change_bit"
        | "set_bit_lock"
        | "clear_bit_unlock"
        | "test_and_set_bit_lock"
        | "__set_bit"
        | "__clear_bit"
            if !first =>
        {
            (Marking::Atomic, rw)
        }
        "cmpxchg" | "xchg" | "try_cmpxchg" | "cmpxchg64" | "cmpxchg_relaxed" | "xchg_relaxed"
        | "cmpxchg_acquire" | "cmpxchg_release"
            if first =>
        {
            (Marking::Atomic, rw)
        }
        _ if first
            && (s.starts_with("atomic")
                || s.starts_with("refcount_")
                || s.starts_with("local_") && s.contains("_read")) =>
        {
            if s.ends_with("_read") || s.contains("_read_") {
                (Marking::Atomic, Some(RefKind::Read))
            } else if s.ends_with("_set") || s.contains("_set_") && !s.contains("_and_") {
                (Marking::Atomic, Some(RefKind::Write))
            } else {
                (Marking::Atomic, rw)
            }
        }
        _ => (Marking::Plain, None),
    }
}
