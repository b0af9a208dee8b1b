//! The whole-tree pass over one file: [`scan_file`] turns C source into [`FileOut`]
//! (definitions, struct fields, identifier hashes for the reference posting lists).
//!
//! It is a token-level recogniser, not a parser: at file scope it collects a "statement" of
//! tokens up to `;` or a top-level `{`, then decides from its shape what it declares (function
//! body, record, prototype, typedef, variable, generator macro). Preprocessor conditions are
//! tracked as a stack so each definition carries its `#if` chain; `#if 0` blocks are skipped,
//! and brace depth is restored at `#else`/`#elif` so duplicated opening lines in alternative
//! branches do not swallow the rest of the file. Macro-made definitions come from two tables
//! ([`FUNC_GENERATORS`], [`VAR_GENERATORS`]).

use std::collections::HashMap;

use crate::cond::Evaluator;
use crate::lex::{Comment, Lexer, Tok, TokKind, ident_hash, matching_open};
use crate::store::{
    DefExt, DefRec, FLAG_EXTERN, FLAG_INLINE, FLAG_STATIC, FLAG_WEAK, FieldRec, FileOut, NO_EXT,
    Str,
};
use crate::types::{ConfigState, EntityKind};

/// Generator macro names, indexed by `DefRec::generated_by - 1`.
pub(crate) static GENERATORS: &[&str] = &[
    "SYSCALL_DEFINE0",
    "SYSCALL_DEFINE1",
    "SYSCALL_DEFINE2",
    "SYSCALL_DEFINE3",
    "SYSCALL_DEFINE4",
    "SYSCALL_DEFINE5",
    "SYSCALL_DEFINE6",
    "COMPAT_SYSCALL_DEFINE0",
    "COMPAT_SYSCALL_DEFINE1",
    "COMPAT_SYSCALL_DEFINE2",
    "COMPAT_SYSCALL_DEFINE3",
    "COMPAT_SYSCALL_DEFINE4",
    "COMPAT_SYSCALL_DEFINE5",
    "COMPAT_SYSCALL_DEFINE6",
    "BPF_CALL_0",
    "BPF_CALL_1",
    "BPF_CALL_2",
    "BPF_CALL_3",
    "BPF_CALL_4",
    "BPF_CALL_5",
    "DEFINE_IDTENTRY",
    "DEFINE_IDTENTRY_RAW",
    "DEFINE_IDTENTRY_ERRORCODE",
    "DEFINE_IDTENTRY_RAW_ERRORCODE",
    "DEFINE_IDTENTRY_IRQ",
    "DEFINE_IDTENTRY_SYSVEC",
    "DEFINE_IDTENTRY_SYSVEC_SIMPLE",
    "DEFINE_IDTENTRY_NMI",
    "DEFINE_IDTENTRY_DEBUG",
    // Variable generators (see VAR_GENERATORS).
    "DEFINE_PER_CPU",
    "DEFINE_PER_CPU_ALIGNED",
    "DEFINE_PER_CPU_SHARED_ALIGNED",
    "DEFINE_PER_CPU_READ_MOSTLY",
    "DEFINE_PER_CPU_PAGE_ALIGNED",
    "DEFINE_PER_CPU_DECRYPTED",
    "DEFINE_MUTEX",
    "DEFINE_SPINLOCK",
    "DEFINE_RAW_SPINLOCK",
    "DEFINE_RWLOCK",
    "DEFINE_SEMAPHORE",
    "DEFINE_SRCU",
    "DEFINE_STATIC_SRCU",
    "LIST_HEAD",
    "HLIST_HEAD",
    "LLIST_HEAD",
    "DEFINE_IDR",
    "DEFINE_IDA",
    "DEFINE_XARRAY",
    "DEFINE_XARRAY_ALLOC",
    "DEFINE_XARRAY_ALLOC1",
    "DEFINE_XARRAY_FLAGS",
    "DECLARE_WAIT_QUEUE_HEAD",
    "DEFINE_STATIC_KEY_FALSE",
    "DEFINE_STATIC_KEY_TRUE",
    "DEFINE_STATIC_KEY_FALSE_RO",
    "DEFINE_STATIC_KEY_TRUE_RO",
    "DEFINE_RATELIMIT_STATE",
    "DEFINE_SEQLOCK",
    "DECLARE_RWSEM",
    "DEFINE_PERCPU_RWSEM",
    "DEFINE_STATIC_PERCPU_RWSEM",
    "DEFINE_HASHTABLE",
    "DECLARE_HASHTABLE",
    "DECLARE_BITMAP",
    "DECLARE_COMPLETION",
    "DECLARE_WORK",
    "DECLARE_DELAYED_WORK",
    "DEFINE_TIMER",
    "DEFINE_STATIC_CALL",
    "DEFINE_WAIT_BIT",
    "DECLARE_FLEX_ARRAY",
    "DECLARE_KFIFO",
    "DECLARE_KFIFO_PTR",
    "DEFINE_KFIFO",
];

/// Function generators: macro, number of leading `SYSCALL_DEFINE` style names to emit.
/// The names made from the first argument `N` are given by [`generated_function_names`].
pub(crate) const FUNC_GENERATORS: std::ops::Range<usize> = 0..29;

/// Variable generators: (macro, index of the argument that is the variable's name).
pub(crate) fn var_generator(name: &[u8]) -> Option<(u8, usize)> {
    let idx = GENERATORS[29..].iter().position(|g| g.as_bytes() == name)? + 29;
    let arg = match GENERATORS[idx] {
        g if g.starts_with("DEFINE_PER_CPU") => 1,
        "DECLARE_FLEX_ARRAY" | "DECLARE_KFIFO" | "DEFINE_KFIFO" | "DECLARE_KFIFO_PTR"
            if GENERATORS[idx] == "DECLARE_FLEX_ARRAY" =>
        {
            1
        }
        _ => 0,
    };
    Some((idx as u8 + 1, arg))
}

fn func_generator(name: &[u8]) -> Option<u8> {
    GENERATORS[FUNC_GENERATORS]
        .iter()
        .position(|g| g.as_bytes() == name)
        .map(|i| i as u8 + 1)
}

/// The functions a generator invocation defines, primary (the body's own function) first.
pub(crate) fn generated_function_names(generator: &str, arg: &str) -> Vec<String> {
    if generator.starts_with("SYSCALL_DEFINE") {
        vec![
            format!("__do_sys_{arg}"),
            format!("__se_sys_{arg}"),
            format!("__x64_sys_{arg}"),
            format!("__ia32_sys_{arg}"),
            format!("sys_{arg}"),
        ]
    } else if generator.starts_with("COMPAT_SYSCALL_DEFINE") {
        vec![
            format!("__do_compat_sys_{arg}"),
            format!("__se_compat_sys_{arg}"),
            format!("__ia32_compat_sys_{arg}"),
            format!("__x64_compat_sys_{arg}"),
            format!("compat_sys_{arg}"),
        ]
    } else if generator.starts_with("BPF_CALL_") {
        vec![arg.to_string(), format!("____{arg}")]
    } else {
        vec![arg.to_string()]
    }
}

const MAX_COND: usize = 400;

#[derive(Debug)]
struct Frame {
    /// Texts of the branches already passed (for `#elif`/`#else`).
    prior: Vec<String>,
    /// Text of the current branch's condition (with earlier branches negated).
    cur: String,
    /// The current branch's own expression, as written.
    raw: String,
    state: ConfigState,
    /// Whether some earlier branch was taken.
    prior_taken: ConfigState,
    dead: bool,
    guard: bool,
    guard_name: Option<Vec<u8>>,
    depth_at_if: i32,
    depth_first_end: Option<i32>,
}

/// A struct member collected before its record's name is known.
#[derive(Debug, Clone)]
struct FieldTmp {
    name: String,
    line: u32,
    decl: String,
    width: Option<u32>,
    path: Vec<String>,
    cond: (Str, u8),
}

struct Scanner<'a, 'e> {
    src: &'a [u8],
    lx: Lexer<'a>,
    ev: &'e Evaluator<'e>,
    out: FileOut,
    interned: HashMap<Vec<u8>, Str>,
    frames: Vec<Frame>,
    depth: i32,
    cond: (Str, u8),
    last_end: u32,
    prev_end: u32,
    guard_pending: bool,
    seen_code: bool,
    /// Number of frames in an `#if 0` branch (tokens are skipped while non-zero).
    dead_frames: usize,
    ident_hashes: Vec<u32>,
}

/// Scans one file. Never fails: malformed input gives fewer or odder definitions, not errors.
pub(crate) fn scan_file(src: &[u8], ev: &Evaluator<'_>) -> FileOut {
    let mut s = Scanner {
        src,
        lx: Lexer::new(src).with_comments(),
        ev,
        out: FileOut::default(),
        interned: HashMap::new(),
        frames: Vec::new(),
        depth: 0,
        cond: (Str::default(), ConfigState::Active.to_u8()),
        last_end: 0,
        prev_end: 0,
        guard_pending: false,
        seen_code: false,
        dead_frames: 0,
        ident_hashes: Vec::with_capacity(src.len() / 16),
    };
    s.file_scope();
    let mut idents = std::mem::take(&mut s.ident_hashes);
    idents.sort_unstable();
    idents.dedup();
    s.out.idents = idents;
    s.out
}

fn is_kw(t: &Tok, src: &[u8], s: &str) -> bool {
    t.kind == TokKind::Ident && t.text(src) == s.as_bytes()
}

const NOT_NAMES: &[&str] = &[
    "if",
    "while",
    "for",
    "switch",
    "return",
    "sizeof",
    "do",
    "else",
    "case",
    "goto",
    "typeof",
    "__typeof__",
    "__attribute__",
    "__attribute",
    "asm",
    "__asm__",
    "__asm",
    "alignof",
    "_Alignof",
    "__builtin_offsetof",
    "offsetof",
    "_Static_assert",
    "static_assert",
];

/// Words that may sit between a declarator name and its `;`/`=`, or before it, and are not names.
pub(crate) fn is_attr_word(s: &[u8]) -> bool {
    matches!(
        s,
        b"const"
            | b"volatile"
            | b"restrict"
            | b"__restrict"
            | b"static"
            | b"extern"
            | b"inline"
            | b"__inline"
            | b"__inline__"
            | b"__always_inline"
            | b"noinline"
            | b"__read_mostly"
            | b"__ro_after_init"
            | b"__initdata"
            | b"__initconst"
            | b"__refdata"
            | b"__exitdata"
            | b"__meminitdata"
            | b"__initdata_or_module"
            | b"__cacheline_aligned"
            | b"__cacheline_aligned_in_smp"
            | b"____cacheline_aligned"
            | b"____cacheline_aligned_in_smp"
            | b"__page_aligned_data"
            | b"__page_aligned_bss"
            | b"__maybe_unused"
            | b"__always_unused"
            | b"__used"
            | b"__percpu"
            | b"__rcu"
            | b"__iomem"
            | b"__user"
            | b"__force"
            | b"__must_check"
            | b"__init"
            | b"__exit"
            | b"__ref"
            | b"__visible"
            | b"__weak"
            | b"__packed"
            | b"__randomize_layout"
            | b"__no_randomize_layout"
            | b"__nosavedata"
            | b"__bss_decrypted"
            | b"__lsm_ro_after_init"
            | b"__tracepoint_string"
            | b"__private"
            | b"__data_racy"
            | b"__aligned_largest"
            | b"__latent_entropy"
            | b"__kernel"
            | b"__nocast"
            | b"__bitwise"
            | b"__safe"
            | b"__ptr_to_ro"
            | b"asmlinkage"
            | b"__cold"
            | b"notrace"
    )
}

/// Attribute-like macros that take arguments and may follow a function's parameter list.
fn is_trailing_attr_call(s: &[u8]) -> bool {
    matches!(
        s,
        b"__attribute__"
            | b"__attribute"
            | b"__acquires"
            | b"__releases"
            | b"__must_hold"
            | b"__cond_acquires"
            | b"__cond_releases"
            | b"__acquire"
            | b"__release"
            | b"__printf"
            | b"__scanf"
            | b"__section"
            | b"__aligned"
            | b"__alloc_size"
            | b"__diagnose_as"
            | b"__counted_by"
            | b"__nonstring"
            | b"__no_sanitize_or_inline"
            | b"__assume_aligned"
            | b"__malloc"
            | b"__realloc_size"
            | b"__guarded_by"
            | b"__pt_guarded_by"
    )
}

/// Index of the `)` matching the `(` at `open`.
fn match_fwd(src: &[u8], toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.is_punct(src, b'(') || t.is_punct(src, b'[') {
            depth += 1;
        } else if t.is_punct(src, b')') || t.is_punct(src, b']') {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// For a statement ending in a parameter list (optionally followed by attributes), the index of
/// the function name token.
fn function_name(src: &[u8], toks: &[Tok]) -> Option<usize> {
    let mut i = toks.len();
    loop {
        if i == 0 {
            return None;
        }
        let t = toks[i - 1];
        if t.is_punct(src, b')') {
            let open = matching_open(src, toks, i - 1)?;
            if open == 0 {
                return None;
            }
            let p = toks[open - 1];
            if p.kind != TokKind::Ident {
                return None;
            }
            if is_trailing_attr_call(p.text(src)) {
                i = open - 1;
                continue;
            }
            let name = p.text(src);
            if NOT_NAMES.iter().any(|n| n.as_bytes() == name) {
                return None;
            }
            return Some(open - 1);
        } else if t.kind == TokKind::Ident && is_attr_word(t.text(src)) {
            i -= 1;
        } else {
            return None;
        }
    }
}

/// The name of one declarator (tokens of the declarator, the first one including the type).
fn declarator_name(src: &[u8], seg: &[Tok]) -> Option<Tok> {
    // Function pointer or parenthesised name: `( * [quals] NAME )`.
    for i in 0..seg.len() {
        if seg[i].is_punct(src, b'(') {
            let mut j = i + 1;
            let mut stars = 0;
            while j < seg.len()
                && (seg[j].is_punct(src, b'*')
                    || seg[j].kind == TokKind::Ident && is_attr_word(seg[j].text(src)))
            {
                if seg[j].is_punct(src, b'*') {
                    stars += 1;
                }
                j += 1;
            }
            if stars > 0
                && j + 1 < seg.len()
                && seg[j].kind == TokKind::Ident
                && (seg[j + 1].is_punct(src, b')') || seg[j + 1].is_punct(src, b'['))
            {
                return Some(seg[j]);
            }
        }
    }
    let mut cut = seg.len();
    let mut depth = 0;
    for (i, t) in seg.iter().enumerate() {
        if t.is_punct(src, b'(') {
            depth += 1;
        } else if t.is_punct(src, b')') {
            depth -= 1;
        } else if depth == 0
            && (t.is_punct(src, b'=') || t.is_punct(src, b'[') || t.is_punct(src, b':'))
        {
            cut = i;
            break;
        }
    }
    let mut best = None;
    let mut i = 0;
    while i < cut {
        let t = seg[i];
        if t.is_punct(src, b'(') {
            // A parenthesised group not introduced by a name (those are skipped below).
            i = match_fwd(src, seg, i).unwrap_or(cut) + 1;
            continue;
        }
        if t.kind == TokKind::Ident
            && seg.get(i + 1).is_some_and(|n| n.is_punct(src, b'('))
            && i + 1 < cut
        {
            // `__aligned(8)`, `__section(".x")`, `__attribute__((..))`: an attribute, not a name.
            i = match_fwd(src, seg, i + 1).unwrap_or(cut) + 1;
            continue;
        }
        if t.kind == TokKind::Ident
            && !is_attr_word(t.text(src))
            && !matches!(t.text(src), b"struct" | b"union" | b"enum")
        {
            best = Some(t);
        }
        i += 1;
    }
    best
}

/// Number of leading tokens that are macro invocations ending a line (`FOO(a, b)` then a line
/// break) rather than part of the declaration that follows. Attribute macros (`__printf(1, 2)`)
/// belong to the declaration and are kept.
fn leading_macro_calls(src: &[u8], toks: &[Tok]) -> usize {
    let mut i = 0;
    while i + 1 < toks.len()
        && toks[i].kind == TokKind::Ident
        && !toks[i].text(src).starts_with(b"__")
        && toks[i + 1].is_punct(src, b'(')
    {
        let Some(close) = match_fwd(src, toks, i + 1) else {
            break;
        };
        match toks.get(close + 1) {
            Some(next) if next.line > toks[close].line => i = close + 1,
            _ => break,
        }
    }
    i
}

/// Splits tokens at top-level commas.
fn split_commas<'t>(src: &[u8], toks: &'t [Tok]) -> Vec<&'t [Tok]> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        if t.is_punct(src, b'(') || t.is_punct(src, b'[') {
            depth += 1;
        } else if t.is_punct(src, b')') || t.is_punct(src, b']') {
            depth -= 1;
        } else if depth == 0 && t.is_punct(src, b',') {
            out.push(&toks[start..i]);
            start = i + 1;
        }
    }
    out.push(&toks[start..]);
    out
}

/// Collapses whitespace and drops comments and line continuations.
pub(crate) fn normalize(text: &[u8]) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    let mut space = false;
    while i < text.len() {
        let c = text[i];
        if c == b'/' && text.get(i + 1) == Some(&b'*') {
            let end =
                memchr::memmem::find(&text[i + 2..], b"*/").map_or(text.len(), |e| i + 2 + e + 2);
            i = end;
            space = true;
            continue;
        }
        if c == b'/' && text.get(i + 1) == Some(&b'/') {
            i = memchr::memchr(b'\n', &text[i..]).map_or(text.len(), |e| i + e);
            space = true;
            continue;
        }
        if c == b'\\' && matches!(text.get(i + 1), Some(b'\n') | Some(b'\r')) {
            i += 1;
            space = true;
            continue;
        }
        if c.is_ascii_whitespace() {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(b' ');
            }
            space = false;
            out.push(c);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn negate(text: &str) -> String {
    if let Some(rest) = text.strip_prefix('!')
        && rest.bytes().all(crate::lex::is_ident_byte)
    {
        return rest.to_string();
    }
    if text.bytes().all(crate::lex::is_ident_byte) {
        format!("!{text}")
    } else {
        format!("!({text})")
    }
}

fn combine(a: ConfigState, b: ConfigState) -> ConfigState {
    use ConfigState::*;
    match (a, b) {
        (Inactive, _) | (_, Inactive) => Inactive,
        (Unknown, _) | (_, Unknown) => Unknown,
        _ => Active,
    }
}

fn or_state(a: ConfigState, b: ConfigState) -> ConfigState {
    use ConfigState::*;
    match (a, b) {
        (Active, _) | (_, Active) => Active,
        (Unknown, _) | (_, Unknown) => Unknown,
        _ => Inactive,
    }
}

fn not_state(a: ConfigState) -> ConfigState {
    match a {
        ConfigState::Active => ConfigState::Inactive,
        ConfigState::Inactive => ConfigState::Active,
        ConfigState::Unknown => ConfigState::Unknown,
    }
}

/// What a statement ending just before a `{` opens.
enum Opening {
    Record(EntityKind, Option<Tok>, usize),
    Enum(Option<Tok>),
}

fn record_head(src: &[u8], toks: &[Tok]) -> Option<Opening> {
    let mut i = toks.len();
    let mut name = None;
    // A `__`-prefixed word is usually an attribute macro (`__packed`, `__randomize_layout`), but
    // kernel tags like `struct __call_single_node` start with `__` too: such a word is the tag
    // when it is the only candidate, i.e. the word right after the keyword.
    let mut dunder = None;
    while i > 0 {
        let t = toks[i - 1];
        if t.kind == TokKind::Ident {
            let tag = || name.or(dunder);
            match t.text(src) {
                b"struct" => return Some(Opening::Record(EntityKind::Struct, tag(), i - 1)),
                b"union" => return Some(Opening::Record(EntityKind::Union, tag(), i - 1)),
                b"enum" => return Some(Opening::Enum(tag())),
                s if is_attr_word(s) => {}
                s if s.starts_with(b"__") => {
                    if name.is_none() {
                        dunder = Some(t);
                    }
                }
                _ if name.is_none() => name = Some(t),
                _ => return None,
            }
            i -= 1;
        } else if t.is_punct(src, b')') {
            let open = matching_open(src, toks, i - 1)?;
            i = open;
            if i == 0 || !toks[i - 1].text(src).starts_with(b"__") {
                return None;
            }
            i -= 1;
        } else {
            return None;
        }
    }
    None
}

impl<'a> Scanner<'a, '_> {
    fn intern(&mut self, s: &[u8]) -> Str {
        if s.is_empty() {
            return Str::default();
        }
        if let Some(&v) = self.interned.get(s) {
            return v;
        }
        let v = self.push_str(s);
        self.interned.insert(s.to_vec(), v);
        v
    }

    fn push_str(&mut self, s: &[u8]) -> Str {
        let off = self.out.arena.len() as u32;
        self.out.arena.extend_from_slice(s);
        Str {
            off,
            len: s.len() as u32,
        }
    }

    fn recompute_cond(&mut self) {
        self.dead_frames = self.frames.iter().filter(|f| f.dead).count();
        let mut text = String::new();
        let mut state = ConfigState::Active;
        for f in &self.frames {
            if f.guard {
                continue;
            }
            if !text.is_empty() {
                text.push_str(" && ");
            }
            if f.cur.contains("||") || f.cur.contains('?') {
                text.push('(');
                text.push_str(&f.cur);
                text.push(')');
            } else {
                text.push_str(&f.cur);
            }
            state = combine(state, f.state);
        }
        // Long `#elif` ladders (vermagic.h) would otherwise repeat kilobytes per definition.
        if text.len() > MAX_COND {
            let mut cut = MAX_COND;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str(" ...");
        }
        let s = self.intern(text.as_bytes());
        self.cond = (s, state.to_u8());
    }

    /// The next code token, with directives handled and dead code skipped.
    fn next(&mut self) -> Tok {
        loop {
            let t = self.lx.next_tok();
            match t.kind {
                TokKind::Eof => return t,
                TokKind::Directive => {
                    self.directive(t);
                    continue;
                }
                _ => {}
            }
            if self.dead_frames > 0 {
                continue;
            }
            self.guard_pending = false;
            self.seen_code = true;
            if t.kind == TokKind::Ident {
                self.ident_hashes.push(ident_hash(t.text(self.src)) as u32);
            } else if t.kind == TokKind::Punct && t.end == t.start + 1 {
                match self.src[t.start as usize] {
                    b'{' => self.depth += 1,
                    b'}' => self.depth -= 1,
                    _ => {}
                }
            }
            self.prev_end = self.last_end;
            self.last_end = t.end;
            return t;
        }
    }

    fn directive(&mut self, t: Tok) {
        let src = self.src;
        let text = &src[t.start as usize + 1..t.end as usize];
        let mut p = 0;
        while p < text.len() && (text[p] == b' ' || text[p] == b'\t') {
            p += 1;
        }
        let ns = p;
        while p < text.len() && text[p].is_ascii_alphabetic() {
            p += 1;
        }
        let name = &text[ns..p];
        let rest_off = t.start as usize + 1 + p;
        let rest = &src[rest_off..t.end as usize];
        let was_guard_pending = std::mem::replace(&mut self.guard_pending, false);
        let in_dead = self.frames.iter().any(|f| f.dead);
        match name {
            b"define" => {
                if in_dead {
                    return;
                }
                let body = rest.trim_ascii_start();
                let n = body
                    .iter()
                    .take_while(|&&c| crate::lex::is_ident_byte(c))
                    .count();
                if n == 0 {
                    return;
                }
                let mname = &body[..n];
                if was_guard_pending
                    && let Some(f) = self.frames.last_mut()
                    && f.guard_name.as_deref() == Some(mname)
                {
                    f.guard = true;
                    self.recompute_cond();
                }
                let end_line = t.line + memchr::memchr_iter(b'\n', text).count() as u32;
                let comment = self.comment_for(t.start, t.line, self.last_end);
                self.emit(
                    EntityKind::Macro,
                    mname,
                    t.line,
                    end_line,
                    comment,
                    0,
                    None,
                    0,
                    (0, 0),
                    self.cond,
                );
                self.hash_idents(&body[n..]);
            }
            b"ifdef" | b"ifndef" | b"if" => {
                let expr = normalize(rest);
                let (cur, state, dead) = if in_dead {
                    (expr, ConfigState::Inactive, true)
                } else if name == b"if" {
                    let st = self.eval(rest);
                    self.hash_idents(rest);
                    let dead = expr == "0";
                    (expr, st, dead)
                } else {
                    let sym = expr.split_whitespace().next().unwrap_or("").to_string();
                    let d = self.eval(format!("defined({sym})").as_bytes());
                    if name == b"ifdef" {
                        (sym, d, false)
                    } else {
                        (format!("!{sym}"), not_state(d), false)
                    }
                };
                let guard_name = (name == b"ifndef" && !self.seen_code && self.frames.is_empty())
                    .then(|| cur.trim_start_matches('!').as_bytes().to_vec());
                self.guard_pending = guard_name.is_some();
                self.frames.push(Frame {
                    prior: Vec::new(),
                    raw: cur.clone(),
                    cur,
                    state,
                    prior_taken: state,
                    dead,
                    guard: false,
                    guard_name,
                    depth_at_if: self.depth,
                    depth_first_end: None,
                });
                self.recompute_cond();
            }
            b"elif" | b"else" | b"elifdef" | b"elifndef" => {
                let st = if name == b"elif" {
                    self.eval(rest)
                } else if name == b"else" {
                    ConfigState::Active
                } else {
                    ConfigState::Unknown
                };
                let expr = normalize(rest);
                let depth = self.depth;
                let Some(f) = self.frames.last_mut() else {
                    return;
                };
                let prev = std::mem::take(&mut f.raw);
                f.prior.push(prev);
                f.raw = expr.clone();
                let negs: Vec<String> = f.prior.iter().map(|p| negate(p)).collect();
                let mut cur = negs.join(" && ");
                if name != b"else" {
                    cur.push_str(" && ");
                    if expr.bytes().all(crate::lex::is_ident_byte) {
                        cur.push_str(&expr);
                    } else {
                        cur.push('(');
                        cur.push_str(&expr);
                        cur.push(')');
                    }
                }
                f.cur = cur;
                let was_dead = f.dead;
                f.dead = name == b"elif" && expr == "0";
                let taken = f.prior_taken;
                f.state = match taken {
                    ConfigState::Active => ConfigState::Inactive,
                    ConfigState::Inactive => st,
                    ConfigState::Unknown => {
                        if st == ConfigState::Inactive {
                            ConfigState::Inactive
                        } else {
                            ConfigState::Unknown
                        }
                    }
                };
                f.prior_taken = or_state(taken, st);
                if !was_dead && f.depth_first_end.is_none() {
                    f.depth_first_end = Some(depth);
                }
                let reset = f.depth_at_if;
                self.depth = reset;
                self.recompute_cond();
            }
            b"endif" => {
                if let Some(f) = self.frames.pop()
                    && let Some(d) = f.depth_first_end
                {
                    self.depth = d;
                }
                self.recompute_cond();
            }
            _ => {}
        }
    }

    fn eval(&self, expr: &[u8]) -> ConfigState {
        let toks: Vec<_> = Lexer::new(expr).collect();
        self.ev.eval(expr, &toks)
    }

    fn hash_idents(&mut self, text: &[u8]) {
        let idents = Lexer::new(text).filter(|t| t.kind == TokKind::Ident);
        self.ident_hashes
            .extend(idents.map(|t| ident_hash(t.text(text)) as u32));
    }

    /// The comment block right before `start` (no code in between), as a line range.
    fn comment_for(&self, start: u32, line: u32, prev_end: u32) -> Option<(u32, u32)> {
        let cs: &[Comment] = self.lx.comments.as_deref().unwrap_or(&[]);
        let mut i = cs.partition_point(|c| c.end <= start);
        if i == 0 {
            return None;
        }
        i -= 1;
        let c = cs[i];
        if c.start < prev_end || !(c.end_line + 1 >= line || c.doc) {
            return None;
        }
        let (mut s, e) = (c.start_line, c.end_line);
        while i > 0 {
            let p = cs[i - 1];
            if p.start < prev_end || p.end_line + 1 < s {
                break;
            }
            s = p.start_line;
            i -= 1;
        }
        Some((s, e))
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        kind: EntityKind,
        name: &[u8],
        start: u32,
        end: u32,
        comment: Option<(u32, u32)>,
        flags: u8,
        parent: Option<&[u8]>,
        generated_by: u8,
        fields: (u32, u32),
        cond: (Str, u8),
    ) {
        // Definition names go to their own buffer (see `Store::names`).
        let off = self.out.names.len() as u32;
        self.out.names.extend_from_slice(name);
        let name = Str {
            off,
            len: name.len() as u32,
        };
        let parent = parent.map(|p| self.intern(p)).unwrap_or_default();
        let (cs, ce) = comment.unwrap_or((0, 0));
        let ext = DefExt {
            cond: cond.0,
            parent,
            comment_start: cs,
            comment_end: ce,
            fields_start: fields.0,
            fields_len: fields.1,
        };
        let ext = if ext.is_empty() {
            NO_EXT
        } else {
            self.out.exts.push(ext);
            self.out.exts.len() as u32 - 1
        };
        self.out.defs.push(DefRec {
            name,
            file: 0,
            start,
            end: end.max(start),
            ext,
            kind: kind.to_u8(),
            flags,
            state: cond.1,
            generated_by,
        });
    }

    fn flags(&self, toks: &[Tok]) -> u8 {
        let mut f = 0;
        for t in toks {
            if t.kind != TokKind::Ident {
                continue;
            }
            match t.text(self.src) {
                b"static" => f |= FLAG_STATIC,
                b"inline" | b"__inline" | b"__inline__" | b"__always_inline" => f |= FLAG_INLINE,
                b"__weak" | b"weak" => f |= FLAG_WEAK,
                _ => {}
            }
        }
        f
    }

    /// Skips to the `}` closing the block just opened.
    fn skip_block(&mut self) -> Tok {
        let target = self.depth - 1;
        loop {
            let t = self.next();
            if t.kind == TokKind::Eof || (t.is_punct(self.src, b'}') && self.depth <= target) {
                return t;
            }
        }
    }

    fn file_scope(&mut self) {
        let src = self.src;
        let mut stmt: Vec<Tok> = Vec::with_capacity(64);
        let mut paren = 0i32;
        let mut stmt_cond = self.cond;
        let mut stmt_prev_end = 0u32;
        // An anonymous record parsed inside this statement: its fields await a typedef name.
        let mut anon_fields: Option<(Vec<FieldTmp>, EntityKind)> = None;
        loop {
            let t = self.next();
            if t.kind == TokKind::Eof {
                break;
            }
            if stmt.is_empty() {
                stmt_cond = self.cond;
                stmt_prev_end = self.prev_end;
                paren = 0;
                anon_fields = None;
            }
            if t.kind == TokKind::Punct && t.end == t.start + 1 {
                match src[t.start as usize] {
                    b'(' => paren += 1,
                    b')' => paren -= 1,
                    b';' if paren <= 0 => {
                        self.declaration(&stmt, t, stmt_cond, stmt_prev_end, anon_fields.take());
                        stmt.clear();
                        continue;
                    }
                    b'}' => {
                        // Stray closer (unbalanced #if branches): resynchronise at file scope.
                        self.depth = 0;
                        stmt.clear();
                        continue;
                    }
                    b'{' if paren <= 0 => {
                        let has_eq = stmt.iter().any(|x| x.is_punct(src, b'='));
                        if has_eq {
                            let close = self.skip_block();
                            stmt.push(Tok {
                                kind: TokKind::Block,
                                ..close
                            });
                            continue;
                        }
                        match record_head(src, &stmt) {
                            Some(Opening::Record(kind, name, kw)) => {
                                let kw_tok = stmt[kw];
                                let first = stmt.first().copied().unwrap_or(kw_tok);
                                let comment =
                                    self.comment_for(first.start, first.line, stmt_prev_end);
                                let mut fields = Vec::new();
                                let close = self.record_body(&[], &mut fields);
                                if let Some(n) = name {
                                    let n = n.text(src).to_vec();
                                    self.emit_record(
                                        kind, &n, first.line, close.line, comment, None, &fields,
                                        stmt_cond,
                                    );
                                } else {
                                    anon_fields = Some((fields, kind));
                                }
                                stmt.push(Tok {
                                    kind: TokKind::Block,
                                    ..close
                                });
                                continue;
                            }
                            Some(Opening::Enum(name)) => {
                                let first = stmt[0];
                                let comment =
                                    self.comment_for(first.start, first.line, stmt_prev_end);
                                let ename = name.map(|n| n.text(src).to_vec());
                                let close = self.enum_body(ename.as_deref());
                                if let Some(n) = ename {
                                    self.emit(
                                        EntityKind::Enum,
                                        &n,
                                        first.line,
                                        close.line,
                                        comment,
                                        0,
                                        None,
                                        0,
                                        (0, 0),
                                        stmt_cond,
                                    );
                                }
                                stmt.push(Tok {
                                    kind: TokKind::Block,
                                    ..close
                                });
                                continue;
                            }
                            None => {}
                        }
                        if let Some(ni) = function_name(src, &stmt) {
                            let close = self.skip_block();
                            self.function(&stmt, ni, close, stmt_cond, stmt_prev_end);
                        } else {
                            self.skip_block();
                        }
                        stmt.clear();
                        continue;
                    }
                    _ => {}
                }
            }
            stmt.push(t);
        }
    }

    fn function(&mut self, stmt: &[Tok], ni: usize, close: Tok, cond: (Str, u8), prev_end: u32) {
        let src = self.src;
        let name_tok = stmt[ni];
        let name = name_tok.text(src);
        // Macro invocations without `;` (`DEFINE_GUARD(...)`) on earlier lines are not part of
        // the function.
        let lead = leading_macro_calls(src, &stmt[..ni]);
        let (first, prev_end) = if lead > 0 {
            (stmt[lead], stmt[lead - 1].end)
        } else {
            (stmt[0], prev_end)
        };
        let stmt = &stmt[lead..];
        let ni = ni - lead;
        let comment = self.comment_for(first.start, first.line, prev_end);
        let flags = self.flags(&stmt[..ni]);
        if let Some(g) = func_generator(name) {
            let arg = stmt
                .get(ni + 2)
                .filter(|t| t.kind == TokKind::Ident)
                .copied();
            let Some(arg) = arg else { return };
            let arg = String::from_utf8_lossy(arg.text(src)).into_owned();
            let gname = GENERATORS[g as usize - 1];
            for n in generated_function_names(gname, &arg) {
                self.emit(
                    EntityKind::Function,
                    n.as_bytes(),
                    first.line,
                    close.line,
                    comment,
                    flags,
                    None,
                    g,
                    (0, 0),
                    cond,
                );
            }
            return;
        }
        if ni == 0 {
            return; // no return type: a macro invocation followed by a block
        }
        self.emit(
            EntityKind::Function,
            name,
            first.line,
            close.line,
            comment,
            flags,
            None,
            0,
            (0, 0),
            cond,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_record(
        &mut self,
        kind: EntityKind,
        name: &[u8],
        start: u32,
        end: u32,
        comment: Option<(u32, u32)>,
        parent: Option<&[u8]>,
        fields: &[FieldTmp],
        cond: (Str, u8),
    ) {
        let fstart = self.out.fields.len() as u32;
        for f in fields {
            let n = self.push_str(f.name.as_bytes());
            let decl = self.push_str(f.decl.as_bytes());
            let anon = self.intern(f.path.join("\u{1f}").as_bytes());
            self.out.fields.push(FieldRec {
                name: n,
                decl,
                anon,
                line: f.line,
                width: f.width.unwrap_or(u32::MAX),
            });
        }
        self.emit(
            kind,
            name,
            start,
            end,
            comment,
            0,
            parent,
            0,
            (fstart, fields.len() as u32),
            cond,
        );
        for f in fields {
            let mut q = name.to_vec();
            q.extend_from_slice(b"::");
            q.extend_from_slice(f.name.as_bytes());
            self.emit(
                EntityKind::Field,
                &q,
                f.line,
                f.line,
                None,
                0,
                Some(name),
                0,
                (0, 0),
                f.cond,
            );
        }
    }

    fn declaration(
        &mut self,
        stmt: &[Tok],
        semi: Tok,
        cond: (Str, u8),
        prev_end: u32,
        anon: Option<(Vec<FieldTmp>, EntityKind)>,
    ) {
        let src = self.src;
        let Some(&first) = stmt.first() else { return };
        let comment = self.comment_for(first.start, first.line, prev_end);
        let flags = self.flags(stmt);
        if is_kw(&first, src, "typedef") {
            let body = &stmt[1..];
            for (k, seg) in split_commas(src, body).into_iter().enumerate() {
                let name = declarator_name(src, seg);
                let Some(n) = name else { continue };
                if seg.len() < 2 && k == 0 {
                    continue;
                }
                let n = n.text(src).to_vec();
                match (&anon, k) {
                    (Some((fields, _)), 0) => self.emit_record(
                        EntityKind::Typedef,
                        &n,
                        first.line,
                        semi.line,
                        comment,
                        None,
                        fields,
                        cond,
                    ),
                    _ => self.emit(
                        EntityKind::Typedef,
                        &n,
                        first.line,
                        semi.line,
                        comment,
                        flags,
                        None,
                        0,
                        (0, 0),
                        cond,
                    ),
                }
            }
            return;
        }
        // Variable generators: `static DEFINE_PER_CPU(int, x);`, `DEFINE_MUTEX(m);`.
        let lead = stmt
            .iter()
            .position(|t| !(t.kind == TokKind::Ident && is_attr_word(t.text(src))))
            .unwrap_or(0);
        let head = stmt[lead];
        if head.kind == TokKind::Ident && stmt.get(lead + 1).is_some_and(|t| t.is_punct(src, b'('))
        {
            if let Some((g, argi)) = var_generator(head.text(src)) {
                let close = match_fwd(src, stmt, lead + 1).unwrap_or(stmt.len() - 1);
                let args = split_commas(src, stmt.get(lead + 2..close).unwrap_or(&[]));
                if let Some(n) = args
                    .get(argi)
                    .and_then(|a| a.iter().rev().find(|t| t.kind == TokKind::Ident))
                {
                    let n = n.text(src).to_vec();
                    self.emit(
                        EntityKind::GlobalVariable,
                        &n,
                        first.line,
                        semi.line,
                        comment,
                        flags,
                        None,
                        g,
                        (0, 0),
                        cond,
                    );
                }
                return;
            }
            if match_fwd(src, stmt, lead + 1) == Some(stmt.len() - 1) {
                return; // a bare macro invocation: EXPORT_SYMBOL(x); module_init(f);
            }
        }
        let is_extern = stmt.iter().any(|t| is_kw(t, src, "extern"));
        if let Some(ni) = function_name(src, stmt) {
            let ptr = ni > 0
                && stmt[ni - 1].is_punct(src, b'*')
                && ni > 1
                && stmt[ni - 2].is_punct(src, b'(');
            if !ptr && ni > 0 && !stmt.iter().any(|t| t.is_punct(src, b'=')) {
                let n = stmt[ni].text(src).to_vec();
                self.emit(
                    EntityKind::Prototype,
                    &n,
                    first.line,
                    semi.line,
                    comment,
                    flags,
                    None,
                    0,
                    (0, 0),
                    cond,
                );
                return;
            }
        }
        // `extern` object declarations are indexed as [`EntityKind::GlobalVariable`] with
        // `FLAG_EXTERN`: some globals (`jiffies`) are only ever defined by the linker script, so
        // the declaration is the best answer there is; lookups rank it below real definitions.
        let flags = if is_extern {
            flags | FLAG_EXTERN
        } else {
            flags
        };
        for (k, seg) in split_commas(src, stmt).into_iter().enumerate() {
            if k == 0
                && seg
                    .iter()
                    .filter(|t| t.kind == TokKind::Ident || t.kind == TokKind::Block)
                    .count()
                    < 2
            {
                return;
            }
            let Some(n) = declarator_name(src, seg) else {
                continue;
            };
            // `struct foo;` alone declares nothing.
            let nn = n.text(src);
            if k == 0
                && let Some(pos) = seg.iter().position(|t| *t == n)
                && pos > 0
                && matches!(seg[pos - 1].text(src), b"struct" | b"union" | b"enum")
            {
                return;
            }
            let nn = nn.to_vec();
            self.emit(
                EntityKind::GlobalVariable,
                &nn,
                first.line,
                semi.line,
                comment,
                flags,
                None,
                0,
                (0, 0),
                cond,
            );
        }
    }

    fn enum_body(&mut self, parent: Option<&[u8]>) -> Tok {
        let target = self.depth - 1;
        let mut expect = true;
        let mut paren = 0;
        loop {
            let t = self.next();
            if t.kind == TokKind::Eof || (t.is_punct(self.src, b'}') && self.depth <= target) {
                return t;
            }
            if t.is_punct(self.src, b'(') {
                paren += 1;
            } else if t.is_punct(self.src, b')') {
                paren -= 1;
            } else if paren == 0 && t.is_punct(self.src, b',') {
                expect = true;
                continue;
            } else if expect && paren == 0 && t.kind == TokKind::Ident {
                let name = t.text(self.src).to_vec();
                let comment = self.comment_for(t.start, t.line, self.prev_end);
                let cond = self.cond;
                self.emit(
                    EntityKind::Enumerator,
                    &name,
                    t.line,
                    t.line,
                    comment,
                    0,
                    parent,
                    0,
                    (0, 0),
                    cond,
                );
            }
            expect = false;
        }
    }

    /// Parses a struct/union body (after its `{`) into `fields`; nested named records are
    /// emitted as definitions of their own. Returns the closing `}`.
    fn record_body(&mut self, path: &[String], fields: &mut Vec<FieldTmp>) -> Tok {
        let src = self.src;
        let target = self.depth - 1;
        let mut mem: Vec<Tok> = Vec::new();
        let mut paren = 0;
        let mut inner: Option<(Vec<FieldTmp>, EntityKind, u32)> = None;
        let mut mem_cond = self.cond;
        loop {
            let t = self.next();
            if t.kind == TokKind::Eof || (t.is_punct(src, b'}') && self.depth <= target) {
                return t;
            }
            if mem.is_empty() {
                mem_cond = self.cond;
            }
            if t.is_punct(src, b'(') {
                paren += 1;
            } else if t.is_punct(src, b')') {
                paren -= 1;
            } else if paren <= 0 && t.is_punct(src, b';') {
                self.member(&mem, path, fields, inner.take(), mem_cond);
                mem.clear();
                paren = 0;
                continue;
            } else if paren <= 0 && t.is_punct(src, b'{') {
                match record_head(src, &mem) {
                    Some(Opening::Record(kind, Some(name), kw)) => {
                        let first = mem[kw];
                        let comment = self.comment_for(mem[0].start, mem[0].line, self.prev_end);
                        let mut nested = Vec::new();
                        let close = self.record_body(&[], &mut nested);
                        let n = name.text(src).to_vec();
                        let _ = first;
                        self.emit_record(
                            kind,
                            &n,
                            mem[0].line,
                            close.line,
                            comment,
                            None,
                            &nested,
                            mem_cond,
                        );
                        mem.push(Tok {
                            kind: TokKind::Block,
                            ..close
                        });
                    }
                    Some(Opening::Record(kind, None, kw)) => {
                        let line = mem[kw].line;
                        let mut nested = Vec::new();
                        let close = self.record_body(&[], &mut nested);
                        inner = Some((nested, kind, line));
                        mem.push(Tok {
                            kind: TokKind::Block,
                            ..close
                        });
                    }
                    Some(Opening::Enum(name)) => {
                        let n = name.map(|n| n.text(src).to_vec());
                        let close = self.enum_body(n.as_deref());
                        mem.push(Tok {
                            kind: TokKind::Block,
                            ..close
                        });
                    }
                    None => {
                        let close = self.skip_block();
                        mem.push(Tok {
                            kind: TokKind::Block,
                            ..close
                        });
                    }
                }
                continue;
            }
            mem.push(t);
        }
    }

    fn member(
        &mut self,
        mem: &[Tok],
        path: &[String],
        fields: &mut Vec<FieldTmp>,
        inner: Option<(Vec<FieldTmp>, EntityKind, u32)>,
        cond: (Str, u8),
    ) {
        let src = self.src;
        if mem.is_empty() {
            return;
        }
        let text_of = |a: &Tok, b: &Tok| -> String {
            let s = &src[a.start as usize..b.end as usize];
            normalize(s)
        };
        if let Some((inner_fields, kind, kw_line)) = inner {
            let block = mem
                .iter()
                .position(|t| t.kind == TokKind::Block)
                .unwrap_or(0);
            let decls: Vec<Tok> = mem[block + 1..].to_vec();
            let names: Vec<Tok> = split_commas(src, &decls)
                .into_iter()
                .filter_map(|seg| declarator_name(src, seg))
                .collect();
            let kw = if kind == EntityKind::Union {
                "union"
            } else {
                "struct"
            };
            if names.is_empty() {
                for mut f in inner_fields {
                    let mut p = path.to_vec();
                    p.push(format!("{kw}@{kw_line}"));
                    p.append(&mut f.path);
                    f.path = p;
                    fields.push(f);
                }
            } else {
                for n in &names {
                    let nm = String::from_utf8_lossy(n.text(src)).into_owned();
                    fields.push(FieldTmp {
                        name: nm.clone(),
                        line: n.line,
                        decl: format!("{kw} {{...}} {nm}"),
                        width: None,
                        path: path.to_vec(),
                        cond,
                    });
                }
                let nm = String::from_utf8_lossy(names[0].text(src)).into_owned();
                for mut f in inner_fields {
                    let mut p = path.to_vec();
                    p.push(nm.clone());
                    p.append(&mut f.path);
                    f.path = p;
                    fields.push(f);
                }
            }
            return;
        }
        let first = mem[0];
        if first.kind == TokKind::Ident
            && mem.get(1).is_some_and(|t| t.is_punct(src, b'('))
            && match_fwd(src, mem, 1) == Some(mem.len() - 1)
        {
            if let Some(shape) = struct_group_shape(first.text(src)) {
                self.struct_group(&mem[2..mem.len() - 1], shape, path, fields, cond);
                return;
            }
            if let Some((_, argi)) = var_generator(first.text(src)) {
                let args = split_commas(src, mem.get(2..mem.len() - 1).unwrap_or(&[]));
                if let Some(n) = args
                    .get(argi)
                    .and_then(|a| a.iter().rev().find(|t| t.kind == TokKind::Ident))
                {
                    fields.push(FieldTmp {
                        name: String::from_utf8_lossy(n.text(src)).into_owned(),
                        line: n.line,
                        decl: text_of(&mem[0], &mem[mem.len() - 1]),
                        width: None,
                        path: path.to_vec(),
                        cond,
                    });
                }
            }
            return;
        }
        let segs = split_commas(src, mem);
        let single = segs.len() == 1;
        // The declaration specifiers shared by all declarators: the first segment up to its
        // declarator (name and pointer stars).
        let type_prefix = match segs
            .first()
            .and_then(|s| declarator_name(src, s).map(|n| (s, n)))
        {
            Some((s, n)) => {
                let mut end = s.iter().position(|t| *t == n).unwrap_or(0);
                while end > 0 && (s[end - 1].is_punct(src, b'*') || s[end - 1].is_punct(src, b'('))
                {
                    end -= 1;
                }
                if end == 0 {
                    String::new()
                } else {
                    text_of(&s[0], &s[end - 1])
                }
            }
            None => String::new(),
        };
        for seg in segs {
            let Some(n) = declarator_name(src, seg) else {
                continue;
            };
            let width = seg
                .iter()
                .position(|t| t.is_punct(src, b':'))
                .and_then(|i| seg.get(i + 1))
                .and_then(|t| std::str::from_utf8(t.text(src)).ok()?.parse().ok());
            // `int a, *b;` gives `int a` and `int *b`.
            let decl = match (seg.first(), seg.last()) {
                (Some(a), Some(b)) if std::ptr::eq(seg.as_ptr(), mem.as_ptr()) || single => {
                    text_of(a, b)
                }
                (Some(a), Some(b)) => format!("{type_prefix} {}", text_of(a, b)),
                _ => continue,
            };
            fields.push(FieldTmp {
                name: String::from_utf8_lossy(n.text(src)).into_owned(),
                line: n.line,
                decl,
                width,
                path: path.to_vec(),
                cond,
            });
        }
    }

    /// The members of a `struct_group(NAME, MEMBERS...)` family invocation (`args` are the
    /// tokens between its parentheses). The kernel expands it to an anonymous union of an
    /// anonymous struct and a struct named NAME, both holding MEMBERS, so the members are
    /// fields of the enclosing record in their own right, and NAME is one more field.
    fn struct_group(
        &mut self,
        args: &[Tok],
        shape: GroupShape,
        path: &[String],
        fields: &mut Vec<FieldTmp>,
        cond: (Str, u8),
    ) {
        let src = self.src;
        let mut commas = Vec::new();
        let mut depth = 0i32;
        for (i, t) in args.iter().enumerate() {
            match t.text(src) {
                b"(" | b"[" | b"{" => depth += 1,
                b")" | b"]" | b"}" => depth -= 1,
                b"," if depth == 0 && t.kind == TokKind::Punct => {
                    commas.push(i);
                    if commas.len() == shape.members_after {
                        break;
                    }
                }
                _ => {}
            }
        }
        if commas.len() < shape.members_after {
            return;
        }
        let arg = |k: usize| -> &[Tok] {
            let lo = if k == 0 { 0 } else { commas[k - 1] + 1 };
            &args[lo..commas[k]]
        };
        let members = &args[commas[shape.members_after - 1] + 1..];
        self.group_members(members, path, fields, cond);
        if let Some(n) = arg(shape.name_arg)
            .iter()
            .rev()
            .find(|t| t.kind == TokKind::Ident)
        {
            let nm = String::from_utf8_lossy(n.text(src)).into_owned();
            let tag = shape
                .tag_arg
                .and_then(|k| arg(k).iter().find(|t| t.kind == TokKind::Ident))
                .map(|t| String::from_utf8_lossy(t.text(src)).into_owned());
            let decl = match tag {
                Some(tag) => format!("struct {tag} {nm}"),
                None => format!("struct {{...}} {nm}"),
            };
            fields.push(FieldTmp {
                name: nm,
                line: n.line,
                decl,
                width: None,
                path: path.to_vec(),
                cond,
            });
        }
    }

    /// Member declarations given as raw tokens (inside a macro's parentheses, where the
    /// scanner did not track records): split at `;`, nested records handled recursively.
    fn group_members(
        &mut self,
        toks: &[Tok],
        path: &[String],
        fields: &mut Vec<FieldTmp>,
        cond: (Str, u8),
    ) {
        let src = self.src;
        let mut start = 0;
        let mut depth = 0i32;
        let mut segs = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            if t.kind != TokKind::Punct {
                continue;
            }
            match t.text(src) {
                b"(" | b"[" | b"{" => depth += 1,
                b")" | b"]" | b"}" => depth -= 1,
                b";" if depth == 0 => {
                    segs.push(&toks[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        segs.push(&toks[start..]);
        for seg in segs {
            if seg.is_empty() {
                continue;
            }
            let Some(open) = seg.iter().position(|t| t.is_punct(src, b'{')) else {
                self.member(seg, path, fields, None, cond);
                continue;
            };
            let Some(Opening::Record(kind, name, kw)) = record_head(src, &seg[..open]) else {
                continue; // an enum or something unrecognised: no fields of ours
            };
            let Some(close) = match_brace(src, seg, open) else {
                continue;
            };
            let kwname = if kind == EntityKind::Union {
                "union"
            } else {
                "struct"
            };
            let names: Vec<Tok> = split_commas(src, &seg[close + 1..])
                .into_iter()
                .filter_map(|d| declarator_name(src, d))
                .collect();
            let mut inner_path = path.to_vec();
            match names.first() {
                None => inner_path.push(format!("{kwname}@{}", seg[kw].line)),
                Some(n) => inner_path.push(String::from_utf8_lossy(n.text(src)).into_owned()),
            }
            for n in &names {
                let nm = String::from_utf8_lossy(n.text(src)).into_owned();
                let decl = match name {
                    Some(tag) => {
                        format!("{kwname} {} {nm}", String::from_utf8_lossy(tag.text(src)))
                    }
                    None => format!("{kwname} {{...}} {nm}"),
                };
                fields.push(FieldTmp {
                    name: nm,
                    line: n.line,
                    decl,
                    width: None,
                    path: path.to_vec(),
                    cond,
                });
            }
            self.group_members(&seg[open + 1..close], &inner_path, fields, cond);
        }
    }
}

/// Argument layout of the `struct_group` macro family (include/linux/stddef.h).
#[derive(Debug, Clone, Copy)]
struct GroupShape {
    tag_arg: Option<usize>,
    name_arg: usize,
    /// Number of arguments before MEMBERS.
    members_after: usize,
}

fn struct_group_shape(macro_name: &[u8]) -> Option<GroupShape> {
    let (tag_arg, name_arg, members_after) = match macro_name {
        b"struct_group" => (None, 0, 1),
        b"struct_group_attr" => (None, 0, 2),
        b"struct_group_tagged" => (Some(0), 1, 2),
        b"__struct_group" => (Some(0), 1, 3),
        _ => return None,
    };
    Some(GroupShape {
        tag_arg,
        name_arg,
        members_after,
    })
}

/// Index of the `}` matching the `{` at `open`.
fn match_brace(src: &[u8], toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.is_punct(src, b'{') {
            depth += 1;
        } else if t.is_punct(src, b'}') {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}
