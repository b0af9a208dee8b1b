//! Struct and union layouts computed from source, for mapping a KCSAN address to a field.
//!
//! The principal type is [`Engine`]: given a [`TypeSource`] (the index, in production; a map of
//! snippets in tests) it parses a record's definition, resolves member types recursively
//! (typedefs, nested records, macro constants in array sizes), follows `#if CONFIG_*` under the
//! configuration the source reports, and lays the members out with the x86_64 System V rules
//! (`abi`). Every member it cannot size is reported as unknown, and so is every offset after it:
//! a wrong offset would send the expert to the wrong field, an unknown one only makes it ask.

pub mod abi;
pub mod cexpr;
pub mod dwarf;
pub mod lex;
pub mod parse;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use abi::SizeAlign;
use cexpr::{Env, Tri};
use codeindex::kconfig::KConfig;
use parse::{Base, Member, Record};

/// Source text of one definition.
#[derive(Debug, Clone)]
pub struct Source {
    pub text: String,
    pub first_line: u32,
    pub file: String,
}

/// Where the engine finds definitions. Implementations pick the definition that applies to the
/// configured architecture.
pub trait TypeSource {
    fn record(&self, is_union: bool, name: &str) -> Option<Source>;
    fn typedef(&self, name: &str) -> Option<Source>;
    /// The replacement text of an object-like macro (or the value of an enumerator); `""` for
    /// a function-like or empty macro, which is defined but has no value; `None` when unknown.
    fn macro_text(&self, name: &str) -> Option<String>;
    /// The `.config` the tree is laid out for (the workspace's one model, shared with the
    /// index); `None` when none was given.
    fn kconfig(&self) -> Option<&KConfig>;
}

/// One member in a layout. Offsets are in bits from the start of the outermost record.
#[derive(Debug, Clone)]
pub struct FieldLayout {
    /// Empty for an anonymous struct/union member.
    pub name: String,
    pub type_text: String,
    pub line: u32,
    pub offset_bits: Option<u64>,
    pub size_bits: Option<u64>,
    pub bitfield: bool,
    /// The `#if` conditions around the member, when any.
    pub condition: Option<String>,
    /// True when the member's presence depends on a configuration option whose value is unknown.
    pub presence_unknown: bool,
    /// Why the size or offset is unknown.
    pub unknown: Option<String>,
    /// Members of an anonymous struct/union member.
    pub children: Vec<FieldLayout>,
    /// The layout of a named struct/union member's type, for looking inside it.
    pub inner: Option<Arc<TypeLayout>>,
}

/// A computed record layout.
#[derive(Debug, Clone)]
pub struct TypeLayout {
    pub is_union: bool,
    pub size: Option<u64>,
    pub align: Option<u64>,
    pub fields: Vec<FieldLayout>,
    pub file: String,
    pub unknown: Option<String>,
}

#[derive(Clone)]
struct TypeInfo {
    sa: Result<SizeAlign, String>,
    inner: Option<Arc<TypeLayout>>,
    /// Set for anonymous records: their members, to nest under the member.
    anon: Option<Arc<TypeLayout>>,
}

impl TypeInfo {
    fn unknown(reason: impl Into<String>) -> Self {
        Self {
            sa: Err(reason.into()),
            inner: None,
            anon: None,
        }
    }
    fn known(sa: SizeAlign) -> Self {
        Self {
            sa: Ok(sa),
            inner: None,
            anon: None,
        }
    }
}

const MAX_DEPTH: usize = 24;
/// Larger alignments are treated as unknown (no real type has them; arithmetic stays in range).
const MAX_ALIGN: i64 = 1 << 20;

/// A layout, or why none could be computed.
type LayoutResult = Result<Arc<TypeLayout>, String>;

/// Computes layouts; caches records and typedefs for the life of one tool call.
pub struct Engine<'a> {
    src: &'a dyn TypeSource,
    records: RefCell<HashMap<(bool, String), LayoutResult>>,
    typedefs: RefCell<HashMap<String, TypeInfo>>,
    stack: RefCell<Vec<String>>,
    macro_depth: Cell<u32>,
}

fn align_up(v: u64, a: u64) -> u64 {
    if a == 0 { v } else { v.div_ceil(a) * a }
}

impl<'a> Engine<'a> {
    pub fn new(src: &'a dyn TypeSource) -> Self {
        Self {
            src,
            records: RefCell::default(),
            typedefs: RefCell::default(),
            stack: RefCell::default(),
            macro_depth: Cell::new(0),
        }
    }

    fn lex(&self, source: &Source) -> Vec<lex::Token> {
        let eval = |expr: &str| cexpr::eval_condition(expr, self);
        lex::lex(&source.text, source.first_line, &eval)
    }

    /// Lays out the record defined in `source` (whose tag or typedef name is `name`).
    pub fn layout_source(&self, source: &Source, name: &str) -> Result<Arc<TypeLayout>, String> {
        let tokens = self.lex(source);
        let record = parse::find_record(&tokens, Some(name))
            .or_else(|| parse::find_record(&tokens, None))
            .ok_or_else(|| format!("no struct/union body found in the definition of {name}"))?;
        Ok(Arc::new(self.layout(&record, &source.file)))
    }

    /// Lays out `struct name` / `union name` found through the source.
    pub fn layout_named(&self, is_union: bool, name: &str) -> Result<Arc<TypeLayout>, String> {
        let key = (is_union, name.to_string());
        if let Some(hit) = self.records.borrow().get(&key) {
            return hit.clone();
        }
        let kw = if is_union { "union" } else { "struct" };
        let label = format!("{kw} {name}");
        if self.stack.borrow().contains(&label) || self.stack.borrow().len() > MAX_DEPTH {
            return Err(format!("{label} contains itself or nests too deeply"));
        }
        self.stack.borrow_mut().push(label.clone());
        let result = match self.src.record(is_union, name) {
            Some(source) => self.layout_source(&source, name),
            // `#define rcu_head callback_head`: a macro renaming the tag.
            None => match self
                .src
                .macro_text(name)
                .filter(|t| is_identifier(t) && t != name)
            {
                Some(alias) => self.layout_named(is_union, &alias),
                None => Err(format!("definition of {label} not found")),
            },
        };
        self.stack.borrow_mut().pop();
        self.records.borrow_mut().insert(key, result.clone());
        result
    }

    fn typedef_info(&self, name: &str) -> TypeInfo {
        if let Some(sa) = abi::known_typedef(name) {
            return TypeInfo::known(sa);
        }
        if let Some(hit) = self.typedefs.borrow().get(name) {
            return hit.clone();
        }
        if self.stack.borrow().iter().any(|s| s == name) || self.stack.borrow().len() > MAX_DEPTH {
            return TypeInfo::unknown(format!("typedef {name} nests too deeply"));
        }
        self.stack.borrow_mut().push(name.to_string());
        let info = match self.src.typedef(name) {
            None => TypeInfo::unknown(format!("typedef {name} not found")),
            Some(source) => {
                let tokens = self.lex(&source);
                match parse::find_typedef(&tokens, name) {
                    Some(member) => self.member_info(&member, &source.file),
                    None => {
                        TypeInfo::unknown(format!("cannot parse the definition of typedef {name}"))
                    }
                }
            }
        };
        self.stack.borrow_mut().pop();
        self.typedefs
            .borrow_mut()
            .insert(name.to_string(), info.clone());
        info
    }

    fn base_info(&self, base: &Base, file: &str) -> TypeInfo {
        match base {
            Base::Builtin(words) => {
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                match abi::builtin(&words) {
                    Some(sa) => TypeInfo::known(sa),
                    None => TypeInfo::unknown(format!("type {} has no size", words.join(" "))),
                }
            }
            Base::Named(name) => self.typedef_info(name),
            Base::Enum => TypeInfo::known(SizeAlign { size: 4, align: 4 }),
            Base::Unknown(reason) => TypeInfo::unknown(reason.clone()),
            Base::Record {
                is_union,
                name,
                body,
            } => {
                let layout = match body {
                    Some(rec) => Ok(Arc::new(self.layout(rec, file))),
                    None => match name {
                        Some(name) => self.layout_named(*is_union, name),
                        None => Err("anonymous record without a body".to_string()),
                    },
                };
                match layout {
                    Err(reason) => TypeInfo::unknown(reason),
                    Ok(layout) => {
                        let sa = match (layout.size, layout.align) {
                            (Some(size), Some(align)) => Ok(SizeAlign { size, align }),
                            _ => Err(layout
                                .unknown
                                .clone()
                                .unwrap_or_else(|| "size unknown".into())),
                        };
                        let anon = (name.is_none()).then(|| layout.clone());
                        TypeInfo {
                            sa,
                            inner: name.is_some().then_some(layout),
                            anon,
                        }
                    }
                }
            }
        }
    }

    /// The size and alignment of a member's full type (pointers and arrays applied).
    fn member_info(&self, m: &Member, file: &str) -> TypeInfo {
        let mut info = if m.decl.pointer {
            TypeInfo::known(abi::POINTER)
        } else {
            let mut info = self.base_info(&m.base, file);
            // `__aligned`/`__packed` written among the specifiers of a typedef change the type.
            if let Ok(mut sa) = info.sa.clone() {
                if m.base_attrs.packed {
                    sa.align = 1;
                }
                let mut failed = None;
                for expr in &m.base_attrs.aligned {
                    match self.eval(expr) {
                        Some(a) if a > 0 && a <= MAX_ALIGN => sa.align = sa.align.max(a as u64),
                        _ => {
                            failed = Some(format!("alignment {expr} unknown"));
                            break;
                        }
                    }
                }
                sa.size = align_up(sa.size, sa.align);
                info.sa = match failed {
                    Some(reason) => Err(reason),
                    None => Ok(sa),
                };
            }
            info
        };
        for dim in m.decl.dims.iter().rev() {
            let count = match dim {
                None => Some(0),
                Some(expr) => self.eval(expr).filter(|n| *n >= 0).map(|n| n as u64),
            };
            info.sa = match (info.sa, count) {
                (Ok(sa), Some(n)) => match sa.size.checked_mul(n) {
                    Some(size) => Ok(SizeAlign {
                        size,
                        align: sa.align,
                    }),
                    None => Err(format!("array of {n} elements is too large")),
                },
                (Ok(_), None) => Err(format!(
                    "array size [{}] is not a constant known from the source",
                    dim.as_deref().unwrap_or("")
                )),
                (Err(e), _) => Err(e),
            };
        }
        if !m.decl.dims.is_empty() {
            info.anon = None;
        }
        info
    }

    fn eval(&self, expr: &str) -> Option<i64> {
        cexpr::eval_int(expr, self)
    }

    /// The member-level alignment override: `None` inside means unknown.
    fn explicit_align(&self, m: &Member) -> Result<Option<u64>, String> {
        let mut best = None;
        for expr in &m.decl.attrs.aligned {
            match self.eval(expr) {
                Some(a) if a > 0 && a <= MAX_ALIGN => best = Some(best.unwrap_or(0).max(a as u64)),
                _ => return Err(format!("alignment {expr} unknown")),
            }
        }
        Ok(best)
    }

    fn layout(&self, rec: &Record, file: &str) -> TypeLayout {
        let mut fields = Vec::new();
        let mut off: Option<u64> = Some(0);
        let mut size_bits: Option<u64> = Some(0);
        let mut align: Option<u64> = Some(1);
        let mut unknown: Option<String> = None;
        for m in &rec.members {
            let info = self.member_info(m, file);
            let packed = rec.attrs.packed || m.decl.attrs.packed;
            let explicit = self.explicit_align(m);
            let mut field_unknown = None;
            let (size, nat_align) = match &info.sa {
                Ok(sa) if sa.size.checked_mul(8).is_some() && sa.align < u64::MAX / 8 => {
                    (Some(sa.size * 8), Some(sa.align))
                }
                Ok(sa) => {
                    field_unknown = Some(format!("size {} bytes is too large", sa.size));
                    (None, None)
                }
                Err(e) => {
                    field_unknown = Some(e.clone());
                    (None, None)
                }
            };
            let eff_align = match (&explicit, nat_align) {
                (Err(e), _) => {
                    field_unknown = Some(e.clone());
                    None
                }
                (Ok(ex), Some(n)) => Some(ex.unwrap_or(0).max(if packed { 1 } else { n })),
                (Ok(Some(ex)), None) => Some(*ex),
                (Ok(None), None) => None,
            };
            let (field_off, field_size, next_off, contributes_align) =
                if let Some(width) = &m.decl.bitfield {
                    let w = self.eval(width).filter(|w| *w >= 0).map(|w| w as u64);
                    if w.is_none() {
                        field_unknown = Some(format!("bitfield width {width} unknown"));
                    }
                    let unit = size;
                    let start = match (off, w, unit) {
                        _ if rec.is_union => Some(0),
                        (Some(o), Some(0), Some(u)) => Some(align_up(o, u)),
                        (Some(o), Some(_), _) if packed => Some(o),
                        (Some(o), Some(w), Some(u)) if u > 0 && o / u != (o + w - 1) / u => {
                            Some(align_up(o, u))
                        }
                        (Some(o), Some(_), Some(_)) => Some(o),
                        _ => None,
                    };
                    let next = start.zip(w).map(|(s, w)| s + w);
                    let named = !m.decl.name.is_empty();
                    (start, w, next, named && !packed)
                } else {
                    let start = if rec.is_union {
                        Some(0)
                    } else {
                        off.zip(eff_align).map(|(o, a)| align_up(o, a * 8))
                    };
                    (start, size, start.zip(size).map(|(s, z)| s + z), true)
                };
            if contributes_align {
                align = match (align, eff_align) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            let presence_unknown = m.presence.unknown_condition.is_some();
            if presence_unknown {
                let cond = m.presence.unknown_condition.clone().unwrap_or_default();
                field_unknown.get_or_insert_with(|| {
                    format!("present only if {cond}, which the configuration does not settle")
                });
            }
            // A record type written in place is nested under the member only when the member
            // itself is anonymous; `struct { .. } pair;` is a named member like any other.
            let (anon, inner) = if m.decl.name.is_empty() {
                (info.anon.clone(), info.inner.clone())
            } else {
                (None, info.inner.clone().or_else(|| info.anon.clone()))
            };
            let children = anon
                .map(|l| l.fields.iter().map(|f| shift(f, field_off)).collect())
                .unwrap_or_default();
            fields.push(FieldLayout {
                name: m.decl.name.clone(),
                type_text: m.text.clone(),
                line: m.line,
                offset_bits: field_off,
                size_bits: field_size,
                bitfield: m.decl.bitfield.is_some(),
                condition: m.presence.condition.clone(),
                presence_unknown,
                unknown: field_unknown.clone(),
                children,
                inner,
            });
            let next = if presence_unknown { None } else { next_off };
            if rec.is_union {
                size_bits = match (size_bits, field_size) {
                    (Some(a), Some(b)) if !presence_unknown => Some(a.max(b)),
                    _ => None,
                };
            } else {
                off = next;
                size_bits = next;
            }
            if (next.is_none() || field_size.is_none()) && unknown.is_none() {
                let label = if m.decl.name.is_empty() {
                    "an anonymous member"
                } else {
                    &m.decl.name
                };
                unknown = Some(format!(
                    "{label} (line {}): {}",
                    m.line,
                    field_unknown.unwrap_or_else(|| "size unknown".into())
                ));
            }
        }
        for expr in &rec.attrs.aligned {
            align = match (align, self.eval(expr)) {
                (Some(a), Some(b)) if b > 0 && b <= MAX_ALIGN => Some(a.max(b as u64)),
                _ => None,
            };
        }
        if rec.attrs.packed && rec.attrs.aligned.is_empty() {
            align = align.map(|_| 1);
        }
        let size = match (size_bits, align) {
            (Some(bits), Some(a)) => Some(align_up(bits.div_ceil(8), a)),
            _ => None,
        };
        TypeLayout {
            is_union: rec.is_union,
            size,
            align,
            fields,
            file: file.to_string(),
            unknown,
        }
    }
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Re-bases a nested anonymous member's offsets onto its parent's.
fn shift(f: &FieldLayout, base: Option<u64>) -> FieldLayout {
    let mut out = f.clone();
    out.offset_bits = match (f.offset_bits, base) {
        (Some(a), Some(b)) => Some(a + b),
        _ => None,
    };
    out.children = f.children.iter().map(|c| shift(c, base)).collect();
    out
}

impl Env for Engine<'_> {
    fn ident(&self, name: &str) -> Option<i64> {
        if name.starts_with("CONFIG_") {
            return match self.src.kconfig() {
                Some(config) => config.value(name),
                None => arch_default(name).map(|t| (t == Tri::Yes) as i64),
            };
        }
        match name {
            "BITS_PER_LONG" | "__BITS_PER_LONG" => return Some(64),
            "L1_CACHE_BYTES" | "SMP_CACHE_BYTES" | "L1_CACHE_ALIGN" => {
                return Some(abi::CACHELINE as i64);
            }
            "PAGE_SHIFT" => return Some(12),
            "PAGE_SIZE" => return Some(4096),
            "__LITTLE_ENDIAN" => return Some(1234),
            "true" => return Some(1),
            "false" => return Some(0),
            _ => {}
        }
        if self.macro_depth.get() > 16 {
            return None;
        }
        let text = self.src.macro_text(name)?;
        self.macro_depth.set(self.macro_depth.get() + 1);
        let value = self.eval(&text);
        self.macro_depth.set(self.macro_depth.get() - 1);
        value
    }

    fn config_test(&self, macro_name: &str, option: &str) -> Tri {
        match self.src.kconfig() {
            Some(config) => match config.test(macro_name, option) {
                Some(b) => tri(b),
                None => Tri::Unknown,
            },
            None if macro_name == "IS_MODULE" => Tri::Unknown,
            None => arch_default(option).unwrap_or(Tri::Unknown),
        }
    }

    fn defined(&self, name: &str) -> Tri {
        if name.starts_with("CONFIG_") {
            return match self.src.kconfig() {
                Some(config) => tri(config.defined(name)),
                None => arch_default(name).unwrap_or(Tri::Unknown),
            };
        }
        match name {
            "__LITTLE_ENDIAN"
            | "__LITTLE_ENDIAN_BITFIELD"
            | "__KERNEL__"
            | "__x86_64__"
            | "__LP64__" => Tri::Yes,
            "__BIG_ENDIAN"
            | "__BIG_ENDIAN_BITFIELD"
            | "__CHECKER__"
            | "__ASSEMBLY__"
            | "__ASSEMBLER__"
            | "__GENKSYMS__"
            | "__cplusplus"
            | "__i386__"
            | "BUILD_VDSO32"
            | "__KERNEL_STRICT_NAMES" => Tri::No,
            _ => match self.src.macro_text(name) {
                Some(_) => Tri::Yes,
                None => Tri::Unknown,
            },
        }
    }
}

/// Options every x86_64 configuration has, answered even without a `.config`.
fn arch_default(name: &str) -> Option<Tri> {
    matches!(
        name,
        "CONFIG_64BIT" | "CONFIG_X86_64" | "CONFIG_X86" | "CONFIG_MMU" | "CONFIG_GENERIC_ATOMIC64"
    )
    .then_some(if name == "CONFIG_GENERIC_ATOMIC64" {
        Tri::No
    } else {
        Tri::Yes
    })
}

fn tri(b: bool) -> Tri {
    if b { Tri::Yes } else { Tri::No }
}

#[cfg(test)]
mod tests;
