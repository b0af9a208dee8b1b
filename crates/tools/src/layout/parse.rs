//! Parses struct/union definitions and typedefs from lexed tokens into [`Record`]s and
//! [`Member`]s: enough C declaration syntax for kernel structs (pointers, function pointers,
//! arrays, bitfields, nested and anonymous records, attributes) plus the member-declaring macros
//! the kernel uses (`DECLARE_BITMAP`, `struct_group`, `__cacheline_group_begin`, ...).
//!
//! What it cannot understand becomes [`Base::Unknown`] with a reason rather than a guess.

use super::lex::{Kind, Presence, Token};

#[derive(Debug, Clone, Default)]
pub struct Attrs {
    pub packed: bool,
    /// Alignment expressions from `__aligned(n)`, `aligned(n)`, cacheline attributes.
    pub aligned: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Record {
    pub is_union: bool,
    pub name: Option<String>,
    pub members: Vec<Member>,
    pub attrs: Attrs,
}

#[derive(Debug, Clone)]
pub enum Base {
    /// `unsigned long` and friends, as words.
    Builtin(Vec<String>),
    /// A typedef name.
    Named(String),
    /// `struct x` / `union x`, with the body when defined in place.
    Record {
        is_union: bool,
        name: Option<String>,
        body: Option<Box<Record>>,
    },
    Enum,
    Unknown(String),
}

#[derive(Debug, Clone)]
pub struct Declarator {
    pub name: String,
    pub pointer: bool,
    /// Array dimensions as expression text; `None` for a flexible `[]`.
    pub dims: Vec<Option<String>>,
    pub bitfield: Option<String>,
    pub attrs: Attrs,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub base: Base,
    pub base_attrs: Attrs,
    pub decl: Declarator,
    pub line: u32,
    pub presence: Presence,
    /// The declaration's source text (tokens joined), for display.
    pub text: String,
}

/// Annotations that change nothing in a layout.
fn is_noise(word: &str) -> bool {
    matches!(
        word,
        "const"
            | "volatile"
            | "static"
            | "extern"
            | "register"
            | "restrict"
            | "__restrict"
            | "inline"
            | "__rcu"
            | "__user"
            | "__iomem"
            | "__percpu"
            | "__force"
            | "__private"
            | "__data_racy"
            | "__randomize_layout"
            | "__no_randomize_layout"
            | "__nonstring"
            | "__bitwise"
            | "__must_check"
            | "__deprecated"
            | "__maybe_unused"
            | "__always_unused"
            | "__read_mostly"
            | "__designated_init"
            | "__ro_after_init"
            | "__attribute_const__"
            | "__kernel"
            | "__safe"
            | "__noderef"
            | "__signed__"
            | "__volatile__"
            | "__const"
            | "__unused"
            | "__visible"
            | "__used"
            | "noinline"
            | "__rcu_protected"
            | "__ref"
            // Expand to nothing without CONFIG_RANDSTRUCT (which syzbot configs do not set).
            | "randomized_struct_fields_start"
            | "randomized_struct_fields_end"
    )
}

/// Annotation macros that take arguments and change nothing in a layout.
fn is_noise_call(word: &str) -> bool {
    matches!(
        word,
        "__counted_by"
            | "__counted_by_le"
            | "__counted_by_be"
            | "__guarded_by"
            | "__pt_guarded_by"
            | "__section"
            | "__cond_acquires"
            | "__acquires"
            | "__releases"
            | "__must_hold"
            | "__alloc_size"
            | "__printf"
            | "__diag_ignore"
    )
}

/// Cursor over a token slice.
struct P<'a> {
    t: &'a [Token],
    i: usize,
}

impl<'a> P<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.t.get(self.i)
    }
    fn peek_is(&self, s: &str) -> bool {
        self.peek().is_some_and(|t| t.is(s))
    }
    fn at(&self, k: usize) -> Option<&'a Token> {
        self.t.get(self.i + k)
    }
    /// Consumes one token; at the end the cursor stays put (slices up to it stay in bounds).
    fn bump(&mut self) -> Option<&'a Token> {
        let t = self.t.get(self.i);
        if t.is_some() {
            self.i += 1;
        }
        t
    }
    /// Skips a balanced group starting at an opening token; returns its inner tokens.
    fn group(&mut self) -> &'a [Token] {
        let open = match self.peek() {
            Some(t) => t.text.clone(),
            None => return &[],
        };
        let close = match open.as_str() {
            "(" => ")",
            "[" => "]",
            "{" => "}",
            _ => return &[],
        };
        let start = self.i + 1;
        let mut depth = 0usize;
        while let Some(t) = self.bump() {
            if t.is(&open) {
                depth += 1;
            } else if t.is(close) {
                depth -= 1;
                if depth == 0 {
                    return &self.t[start..self.i - 1];
                }
            }
        }
        &self.t[start.min(self.t.len())..]
    }

    /// Consumes one attribute if the cursor is on one.
    fn attribute(&mut self, attrs: &mut Attrs) -> bool {
        let Some(tok) = self.peek() else { return false };
        if tok.kind != Kind::Ident {
            return false;
        }
        let word = tok.text.as_str();
        match word {
            "__packed" => attrs.packed = true,
            "____cacheline_aligned"
            | "____cacheline_aligned_in_smp"
            | "__cacheline_aligned"
            | "__cacheline_aligned_in_smp"
            | "____cacheline_internodealigned_in_smp" => {
                attrs.aligned.push(super::abi::CACHELINE.to_string())
            }
            "__aligned" | "__attribute__" | "__attribute" | "__aligned_largest" => {
                self.bump();
                let inner = self.group();
                if word == "__aligned" {
                    attrs.aligned.push(join(inner));
                } else if word == "__aligned_largest" {
                    attrs.aligned.push("16".into());
                } else {
                    parse_gnu_attributes(inner, attrs);
                }
                return true;
            }
            w if is_noise(w) => {}
            w if is_noise_call(w) => {
                self.bump();
                if self.peek_is("(") {
                    self.group();
                }
                return true;
            }
            _ => return false,
        }
        self.bump();
        true
    }
}

fn parse_gnu_attributes(inner: &[Token], attrs: &mut Attrs) {
    let mut i = 0;
    while i < inner.len() {
        let w = inner[i].text.trim_matches('_');
        if w == "packed" {
            attrs.packed = true;
        } else if w == "aligned" {
            if inner.get(i + 1).is_some_and(|t| t.is("(")) {
                let mut p = P { t: inner, i: i + 1 };
                let expr = join(p.group());
                attrs.aligned.push(expr);
                i = p.i;
                continue;
            }
            // Bare `aligned`: the largest alignment of the target.
            attrs.aligned.push("16".into());
        }
        i += 1;
    }
}

pub fn join(tokens: &[Token]) -> String {
    let mut out = String::new();
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            let prev = &tokens[i - 1];
            let glue = matches!(t.text.as_str(), "," | ";" | ")" | "]" | "[" | "(")
                || matches!(prev.text.as_str(), "(" | "[" | "*");
            if !glue {
                out.push(' ');
            }
        }
        out.push_str(&t.text);
    }
    out
}

/// Finds and parses the first `struct`/`union` definition (with a body) in `tokens`; when `name`
/// is given, the one with that tag or, for `typedef struct {..} name;`, that typedef name.
pub fn find_record(tokens: &[Token], name: Option<&str>) -> Option<Record> {
    for (i, tok) in tokens.iter().enumerate() {
        if !(tok.is("struct") || tok.is("union")) {
            continue;
        }
        let mut p = P { t: tokens, i };
        if let Some(rec) = parse_record(&mut p)
            && (name.is_none() || rec.name.as_deref() == name || trailing_name(&p) == name)
        {
            return Some(rec);
        }
    }
    None
}

fn trailing_name<'a>(p: &P<'a>) -> Option<&'a str> {
    let mut q = P { t: p.t, i: p.i };
    let mut attrs = Attrs::default();
    while q.attribute(&mut attrs) {}
    q.peek()
        .filter(|t| t.kind == Kind::Ident)
        .map(|t| t.text.as_str())
}

/// Parses `struct|union [attrs] [name] { members } [attrs]` at the cursor. `None` if no body.
fn parse_record(p: &mut P) -> Option<Record> {
    let is_union = p.bump()?.is("union");
    let mut attrs = Attrs::default();
    while p.attribute(&mut attrs) {}
    let mut name = None;
    if let Some(t) = p.peek()
        && t.kind == Kind::Ident
    {
        name = Some(t.text.clone());
        p.bump();
    }
    while p.attribute(&mut attrs) {}
    if !p.peek_is("{") {
        return None;
    }
    let body = p.group();
    let members = parse_members(body);
    while p.attribute(&mut attrs) {}
    Some(Record {
        is_union,
        name,
        members,
        attrs,
    })
}

/// Parses a member list (the inside of a record's braces).
pub fn parse_members(body: &[Token]) -> Vec<Member> {
    let mut members = Vec::new();
    let mut p = P { t: body, i: 0 };
    while let Some(tok) = p.peek() {
        if tok.is(";") {
            p.bump();
            continue;
        }
        let start = p.i;
        if tok.kind == Kind::Ident
            && p.at(1).is_some_and(|t| t.is("("))
            && !super::abi::is_builtin_word(&tok.text)
            && ends_after_call(&p)
            && !matches!(
                tok.text.as_str(),
                "__attribute__"
                    | "__attribute"
                    | "__aligned"
                    | "typeof"
                    | "__typeof__"
                    | "__typeof"
            )
            && !is_noise_call(&tok.text)
        {
            macro_member(&mut p, &mut members);
        } else {
            declaration(&mut p, &mut members);
        }
        if p.i == start {
            // Never loop on a token we cannot use.
            p.bump();
        }
    }
    members
}

/// True when the `NAME(...)` at the cursor is followed by the end of the statement, i.e. it is a
/// member-declaring macro rather than a function pointer's return type (`int (*cb)(void);`).
fn ends_after_call(p: &P) -> bool {
    let mut q = P { t: p.t, i: p.i + 1 };
    q.group();
    let mut attrs = Attrs::default();
    while q.attribute(&mut attrs) {}
    q.peek().is_none_or(|t| t.is(";") || t.is("}"))
}

/// Splits macro arguments at top-level commas.
fn split_args(inner: &[Token]) -> Vec<&[Token]> {
    let mut args = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in inner.iter().enumerate() {
        match t.text.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth -= 1,
            "," if depth == 0 => {
                args.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    args.push(&inner[start..]);
    args
}

fn simple_member(
    base: Base,
    name: &str,
    dims: Vec<Option<String>>,
    first: &Token,
    text: String,
) -> Member {
    Member {
        base,
        base_attrs: Attrs::default(),
        decl: Declarator {
            name: name.to_string(),
            pointer: false,
            dims,
            bitfield: None,
            attrs: Attrs::default(),
        },
        line: first.line,
        presence: first.presence.clone(),
        text,
    }
}

/// An unnamed member whose type is `record` itself (`struct { ... };` inside a struct), so
/// its members lay out in the enclosing one.
fn anonymous_member(record: Record, attrs: Attrs, first: &Token, text: String) -> Member {
    Member {
        base: Base::Record {
            is_union: record.is_union,
            name: None,
            body: Some(Box::new(record)),
        },
        base_attrs: Attrs::default(),
        decl: Declarator {
            name: String::new(),
            pointer: false,
            dims: vec![],
            bitfield: None,
            attrs,
        },
        line: first.line,
        presence: first.presence.clone(),
        text,
    }
}

fn macro_member(p: &mut P, members: &mut Vec<Member>) {
    let start = p.i;
    let Some(first) = p.bump() else { return };
    let macro_name = first.text.clone();
    let inner = p.group();
    let args = split_args(inner);
    let mut attrs = Attrs::default();
    while p.attribute(&mut attrs) {}
    // The statement usually ends here; anything else before `;` is not understood.
    let mut extra = false;
    while let Some(t) = p.peek() {
        if t.is(";") {
            p.bump();
            break;
        }
        extra = true;
        p.bump();
    }
    let text = join(&p.t[start..p.i]);
    let arg = |i: usize| args.get(i).map(|a| join(a)).unwrap_or_default();
    let record = |name: &str| Base::Record {
        is_union: false,
        name: Some(name.to_string()),
        body: None,
    };
    // Kept as a member of unknown layout, so that offsets after it are unknown, not wrong.
    let not_understood = |text: String| {
        simple_member(
            Base::Unknown(format!(
                "member declared through macro {macro_name}(...) is not understood"
            )),
            &arg(0),
            vec![],
            first,
            text,
        )
    };
    let member = match macro_name.as_str() {
        _ if extra => not_understood(text),
        "DECLARE_BITMAP" => simple_member(
            Base::Builtin(vec!["unsigned".into(), "long".into()]),
            &arg(0),
            vec![Some(format!("BITS_TO_LONGS({})", arg(1)))],
            first,
            text,
        ),
        "DECLARE_HASHTABLE" => simple_member(
            record("hlist_head"),
            &arg(0),
            vec![Some(format!("1 << ({})", arg(1)))],
            first,
            text,
        ),
        "CACHELINE_PADDING" => {
            simple_member(record("cacheline_padding"), &arg(0), vec![], first, text)
        }
        "__cacheline_group_begin" | "__cacheline_group_end" => simple_member(
            Base::Builtin(vec!["char".into()]),
            &format!("{macro_name}__{}", arg(0)),
            vec![Some("0".into())],
            first,
            text,
        ),
        "DECLARE_FLEX_ARRAY" | "__DECLARE_FLEX_ARRAY" => {
            let ty = args.first().copied().unwrap_or(&[]);
            let mut m = type_member(ty, &arg(1), first, text);
            m.decl.dims.push(None);
            m
        }
        "struct_group" | "struct_group_attr" | "struct_group_tagged" | "__struct_group" => {
            let (tag, name, attr_arg, rest) = match macro_name.as_str() {
                "struct_group" => (None, 0, None, 1),
                "struct_group_attr" => (None, 0, Some(1), 2),
                "struct_group_tagged" => (Some(0), 1, None, 2),
                _ => (Some(0), 1, Some(2), 3),
            };
            let mut group_attrs = Attrs::default();
            if let Some(a) = attr_arg.and_then(|i| args.get(i)) {
                let mut q = P { t: a, i: 0 };
                while q.attribute(&mut group_attrs) {}
            }
            let body: Vec<Token> = args
                .iter()
                .skip(rest)
                .enumerate()
                .flat_map(|(i, a)| {
                    // Re-insert the commas the argument split removed (members like `int a, b;`).
                    let comma = (i > 0).then(|| Token {
                        text: ",".into(),
                        ..first.clone()
                    });
                    comma.into_iter().chain(a.iter().cloned())
                })
                .collect();
            let inner_members = parse_members(&body);
            let group = Record {
                is_union: false,
                name: tag.map(arg),
                members: inner_members,
                attrs: group_attrs.clone(),
            };
            let anon = anonymous_member(group, Attrs::default(), first, String::new());
            let mut named = anon.clone();
            named.decl.name = arg(name);
            let union = Record {
                is_union: true,
                name: None,
                members: vec![anon, named],
                attrs: group_attrs,
            };
            anonymous_member(union, attrs, first, text)
        }
        _ => not_understood(text),
    };
    members.push(member);
}

/// `TYPE NAME` from a macro argument (`DECLARE_FLEX_ARRAY(struct foo, bar)`).
fn type_member(ty: &[Token], name: &str, first: &Token, text: String) -> Member {
    let mut p = P { t: ty, i: 0 };
    let (base, base_attrs) = specifiers(&mut p);
    let pointer = ty[p.i.min(ty.len())..].iter().any(|t| t.is("*"));
    let mut m = simple_member(base, name, vec![], first, text);
    m.base_attrs = base_attrs;
    m.decl.pointer = pointer;
    m
}

/// Reads declaration specifiers: the base type and attributes before the declarators.
fn specifiers(p: &mut P) -> (Base, Attrs) {
    let mut attrs = Attrs::default();
    let mut words: Vec<String> = Vec::new();
    let mut base: Option<Base> = None;
    loop {
        if p.attribute(&mut attrs) {
            continue;
        }
        let Some(tok) = p.peek() else { break };
        let text = tok.text.as_str();
        if tok.kind == Kind::Ident && super::abi::is_builtin_word(text) && base.is_none() {
            words.push(text.to_string());
            p.bump();
        } else if (text == "struct" || text == "union") && base.is_none() && words.is_empty() {
            let save = p.i;
            if let Some(rec) = parse_record(p) {
                base = Some(Base::Record {
                    is_union: rec.is_union,
                    name: rec.name.clone(),
                    body: Some(Box::new(rec)),
                });
            } else {
                p.i = save;
                p.bump();
                let mut a = Attrs::default();
                while p.attribute(&mut a) {}
                let name = p
                    .peek()
                    .filter(|t| t.kind == Kind::Ident)
                    .map(|t| t.text.clone());
                if name.is_some() {
                    p.bump();
                }
                base = Some(Base::Record {
                    is_union: text == "union",
                    name,
                    body: None,
                });
            }
        } else if text == "enum" && base.is_none() && words.is_empty() {
            p.bump();
            let mut a = Attrs::default();
            while p.attribute(&mut a) {}
            if p.peek().is_some_and(|t| t.kind == Kind::Ident) {
                p.bump();
            }
            while p.attribute(&mut a) {}
            if p.peek_is("{") {
                p.group();
            }
            while p.attribute(&mut a) {}
            base = Some(if a.packed {
                Base::Unknown("packed enum".into())
            } else {
                Base::Enum
            });
        } else if matches!(text, "typeof" | "__typeof__" | "__typeof") {
            p.bump();
            let inner = p.group();
            base = Some(Base::Unknown(format!(
                "typeof({}) is not evaluated",
                join(inner)
            )));
        } else if tok.kind == Kind::Ident && base.is_none() && words.is_empty() {
            base = Some(Base::Named(text.to_string()));
            p.bump();
        } else {
            break;
        }
    }
    let base = match base {
        Some(b) => b,
        None if !words.is_empty() => Base::Builtin(words),
        None => Base::Unknown("no type".into()),
    };
    (base, attrs)
}

/// One declaration statement: specifiers then declarators up to `;`.
fn declaration(p: &mut P, members: &mut Vec<Member>) {
    let start = p.i;
    let Some(first) = p.peek().cloned() else {
        return;
    };
    if matches!(first.text.as_str(), "_Static_assert" | "static_assert") {
        while let Some(t) = p.bump() {
            if t.is(";") {
                break;
            }
        }
        return;
    }
    let (base, base_attrs) = specifiers(p);
    let mut decls = Vec::new();
    loop {
        let decl = declarator(p);
        decls.push(decl);
        match p.peek() {
            Some(t) if t.is(",") => {
                p.bump();
            }
            Some(t) if t.is(";") => {
                p.bump();
                break;
            }
            None => break,
            Some(_) => {
                // Unparsed junk: skip to the end of the statement.
                while let Some(t) = p.bump() {
                    if t.is(";") {
                        break;
                    }
                }
                break;
            }
        }
    }
    let text = join(&p.t[start..p.i]).trim_end_matches(';').to_string();
    for decl in decls {
        // A declaration of only a tag (`struct foo;` or `struct foo {..};` with a name) declares
        // no member, unless it is an anonymous record.
        let anonymous_record = matches!(
            &base,
            Base::Record {
                name: None,
                body: Some(_),
                ..
            }
        );
        if decl.name.is_empty() && decl.bitfield.is_none() && !anonymous_record {
            continue;
        }
        members.push(Member {
            base: base.clone(),
            base_attrs: base_attrs.clone(),
            decl,
            line: first.line,
            presence: first.presence.clone(),
            text: text.clone(),
        });
    }
}

fn declarator(p: &mut P) -> Declarator {
    let mut d = Declarator {
        name: String::new(),
        pointer: false,
        dims: Vec::new(),
        bitfield: None,
        attrs: Attrs::default(),
    };
    loop {
        if p.attribute(&mut d.attrs) {
            continue;
        }
        let Some(tok) = p.peek() else { break };
        match tok.text.as_str() {
            "*" => {
                d.pointer = true;
                p.bump();
            }
            "(" => {
                // `(*name[N])(args)`: a function pointer (or pointer to array).
                let inner = p.group();
                let mut q = P { t: inner, i: 0 };
                let innerd = declarator(&mut q);
                d.pointer |= innerd.pointer;
                if !innerd.name.is_empty() {
                    d.name = innerd.name;
                }
                d.dims.extend(innerd.dims);
                if p.peek_is("(") {
                    p.group();
                }
            }
            "[" => {
                let inner = p.group();
                d.dims.push((!inner.is_empty()).then(|| join(inner)));
            }
            ":" => {
                p.bump();
                let start = p.i;
                while let Some(t) = p.peek() {
                    if t.is(",") || t.is(";") || (t.kind == Kind::Ident && is_attr_word(&t.text)) {
                        break;
                    }
                    p.bump();
                }
                d.bitfield = Some(join(&p.t[start..p.i]));
            }
            "," | ";" => break,
            _ if tok.kind == Kind::Ident => {
                if p.at(1).is_some_and(|t| t.is("(")) && !d.name.is_empty() {
                    // An unknown attribute macro after the name.
                    p.bump();
                    p.group();
                } else {
                    d.name = tok.text.clone();
                    p.bump();
                }
            }
            _ => break,
        }
    }
    d
}

fn is_attr_word(w: &str) -> bool {
    is_noise(w)
        || is_noise_call(w)
        || w.starts_with("__attribute")
        || w == "__aligned"
        || w == "__packed"
        || w.contains("cacheline")
}

/// Finds `typedef SPEC DECL;` declaring `name` and returns the member-like description of the
/// aliased type.
pub fn find_typedef(tokens: &[Token], name: &str) -> Option<Member> {
    for (pos, first) in tokens.iter().enumerate() {
        if !first.is("typedef") {
            continue;
        }
        let mut p = P {
            t: tokens,
            i: pos + 1,
        };
        let (base, base_attrs) = specifiers(&mut p);
        loop {
            let decl = declarator(&mut p);
            if decl.name == name {
                return Some(Member {
                    base,
                    base_attrs,
                    decl,
                    line: first.line,
                    presence: first.presence.clone(),
                    text: String::new(),
                });
            }
            if !p.peek_is(",") {
                break;
            }
            p.bump();
        }
    }
    None
}
