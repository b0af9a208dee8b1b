//! A fast, byte-level C lexer ([`Lexer`]) used both for the whole-tree pass and for the
//! query-time reference scan. It never fails: any byte sequence yields a token stream.
//!
//! It skips comments (recording their spans, for doc-comment attachment), strings and char
//! literals, joins backslash-newline continuations, and returns a whole preprocessor directive as
//! one [`TokKind::Directive`] token so callers decide how much of it to look at. This is why a
//! `{` inside a string, a comment or a `#define` body never disturbs brace tracking.

/// Kinds of token the lexer produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokKind {
    Ident,
    Number,
    Str,
    Char,
    Punct,
    /// A whole `#...` logical line (continuations included).
    Directive,
    /// Never produced by the lexer: the scanner's stand-in for a `{...}` it has consumed.
    Block,
    Eof,
}

/// A token: byte range into the source and the 1-based line of its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tok {
    pub kind: TokKind,
    pub start: u32,
    pub end: u32,
    pub line: u32,
}

impl Tok {
    pub fn text<'a>(&self, src: &'a [u8]) -> &'a [u8] {
        &src[self.start as usize..self.end as usize]
    }
    pub fn is(&self, src: &[u8], s: &str) -> bool {
        self.text(src) == s.as_bytes()
    }
    pub fn is_punct(&self, src: &[u8], c: u8) -> bool {
        self.kind == TokKind::Punct && self.end == self.start + 1 && src[self.start as usize] == c
    }
}

/// A comment's span (byte offsets and lines, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Comment {
    pub start: u32,
    pub end: u32,
    pub start_line: u32,
    pub end_line: u32,
    /// `/** ... */` (kernel-doc).
    pub doc: bool,
}

/// Character classes, looked up per byte so the hot loop is a table read.
const C_OTHER: u8 = 0;
const C_SPACE: u8 = 1;
const C_NL: u8 = 2;
const C_IDENT: u8 = 3;
const C_DIGIT: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [C_OTHER; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c == b'\n' {
            C_NL
        } else if c == b' ' || c == b'\t' || c == b'\r' || c == 0x0c || c == 0x0b {
            C_SPACE
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80 {
            C_IDENT
        } else if c.is_ascii_digit() {
            C_DIGIT
        } else {
            C_OTHER
        };
        i += 1;
    }
    t
};

#[inline]
pub(crate) fn is_ident_byte(c: u8) -> bool {
    let k = CLASS[c as usize];
    k == C_IDENT || k == C_DIGIT
}

/// The hash used for identifiers everywhere (posting lists and the name table).
#[inline]
pub(crate) fn ident_hash(s: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s)
}

pub(crate) struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: u32,
    /// True while only whitespace/comments have been seen on the current line (a `#` here starts
    /// a directive).
    at_line_start: bool,
    /// Comment spans are recorded only when asked (the whole-tree pass wants them, references don't).
    pub comments: Option<Vec<Comment>>,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a [u8]) -> Self {
        Lexer {
            src,
            pos: 0,
            line: 1,
            at_line_start: true,
            comments: None,
        }
    }

    /// A lexer that starts at byte `pos`, which must begin line `line` (so a `#` there starts a
    /// directive and token offsets and lines stay those of the whole `src`).
    pub fn at_line(src: &'a [u8], pos: usize, line: u32) -> Self {
        Lexer {
            src,
            pos: pos.min(src.len()),
            line,
            at_line_start: true,
            comments: None,
        }
    }

    pub fn with_comments(mut self) -> Self {
        self.comments = Some(Vec::new());
        self
    }

    /// Skips whitespace, newlines and comments.
    #[inline]
    fn skip_trivia(&mut self) {
        let src = self.src;
        loop {
            let Some(&c) = src.get(self.pos) else { return };
            match CLASS[c as usize] {
                C_SPACE => self.pos += 1,
                C_NL => {
                    self.pos += 1;
                    self.line += 1;
                    self.at_line_start = true;
                }
                _ => {
                    if c == b'/' {
                        match src.get(self.pos + 1) {
                            Some(b'*') => {
                                self.block_comment();
                                continue;
                            }
                            Some(b'/') => {
                                self.line_comment();
                                continue;
                            }
                            _ => return,
                        }
                    } else if c == b'\\' && matches!(src.get(self.pos + 1), Some(b'\n')) {
                        self.pos += 2;
                        self.line += 1;
                        continue;
                    } else if c == b'\\'
                        && matches!(src.get(self.pos + 1), Some(b'\r'))
                        && matches!(src.get(self.pos + 2), Some(b'\n'))
                    {
                        self.pos += 3;
                        self.line += 1;
                        continue;
                    }
                    return;
                }
            }
        }
    }

    fn block_comment(&mut self) {
        let start = self.pos;
        let start_line = self.line;
        let body = &self.src[self.pos + 2..];
        let len = memchr::memmem::find(body, b"*/").map_or(body.len(), |i| i + 2);
        let end = self.pos + 2 + len;
        self.line += memchr::memchr_iter(b'\n', &self.src[self.pos..end]).count() as u32;
        self.pos = end;
        if let Some(c) = self.comments.as_mut() {
            let doc =
                self.src.get(start + 2) == Some(&b'*') && self.src.get(start + 3) != Some(&b'/');
            c.push(Comment {
                start: start as u32,
                end: end as u32,
                start_line,
                end_line: self.line,
                doc,
            });
        }
    }

    fn line_comment(&mut self) {
        let start = self.pos;
        let start_line = self.line;
        let mut p = self.pos + 2;
        // A backslash before the newline continues a `//` comment onto the next line.
        loop {
            match memchr::memchr(b'\n', &self.src[p..]) {
                None => {
                    p = self.src.len();
                    break;
                }
                Some(i) => {
                    let nl = p + i;
                    let cont = nl > 0 && self.src[nl - 1] == b'\\'
                        || nl > 1 && self.src[nl - 1] == b'\r' && self.src[nl - 2] == b'\\';
                    if cont {
                        self.line += 1;
                        p = nl + 1;
                    } else {
                        p = nl;
                        break;
                    }
                }
            }
        }
        self.pos = p;
        if let Some(c) = self.comments.as_mut() {
            c.push(Comment {
                start: start as u32,
                end: p as u32,
                start_line,
                end_line: self.line,
                doc: false,
            });
        }
    }

    /// Skips a quoted literal starting at `self.pos` (which holds the quote).
    fn quoted(&mut self, q: u8) {
        let src = self.src;
        let mut p = self.pos + 1;
        while p < src.len() {
            match src[p] {
                b'\\' => {
                    if src.get(p + 1) == Some(&b'\n') {
                        self.line += 1;
                    }
                    p += 2;
                }
                b'\n' => break, // unterminated: stop at end of line, as compilers do
                c if c == q => {
                    p += 1;
                    break;
                }
                _ => p += 1,
            }
        }
        self.pos = p.min(src.len());
    }

    /// Ends a directive: the logical line, continuations and comments included.
    fn directive_end(&mut self) {
        let src = self.src;
        let mut p = self.pos;
        while p < src.len() {
            let Some(i) = memchr::memchr3(b'\n', b'/', b'"', &src[p..]) else {
                p = src.len();
                break;
            };
            let q = p + i;
            match src[q] {
                b'\n' => {
                    let cont = q > 0 && src[q - 1] == b'\\'
                        || q > 1 && src[q - 1] == b'\r' && src[q - 2] == b'\\';
                    if cont {
                        self.line += 1;
                        p = q + 1;
                    } else {
                        p = q;
                        break;
                    }
                }
                b'/' if src.get(q + 1) == Some(&b'*') => {
                    // A block comment may span lines inside a directive.
                    let body = &src[q + 2..];
                    let len = memchr::memmem::find(body, b"*/").map_or(body.len(), |i| i + 2);
                    let end = q + 2 + len;
                    self.line += memchr::memchr_iter(b'\n', &src[q..end]).count() as u32;
                    p = end;
                }
                b'"' => {
                    self.pos = q;
                    self.quoted(b'"');
                    p = self.pos;
                }
                _ => p = q + 1,
            }
        }
        self.pos = p;
    }

    pub fn next_tok(&mut self) -> Tok {
        self.skip_trivia();
        let src = self.src;
        let start = self.pos;
        let line = self.line;
        let Some(&c) = src.get(start) else {
            return Tok {
                kind: TokKind::Eof,
                start: start as u32,
                end: start as u32,
                line,
            };
        };
        let was_line_start = self.at_line_start;
        self.at_line_start = false;
        let kind = match CLASS[c as usize] {
            C_IDENT => {
                let mut p = start + 1;
                while p < src.len() && is_ident_byte(src[p]) {
                    p += 1;
                }
                // String/char literal prefixes (L"..", u8"..").
                if p < src.len() && (src[p] == b'"' || src[p] == b'\'') && p - start <= 2 {
                    let q = src[p];
                    self.pos = p;
                    self.quoted(q);
                    return Tok {
                        kind: if q == b'"' {
                            TokKind::Str
                        } else {
                            TokKind::Char
                        },
                        start: start as u32,
                        end: self.pos as u32,
                        line,
                    };
                }
                self.pos = p;
                TokKind::Ident
            }
            C_DIGIT => {
                let mut p = start + 1;
                while p < src.len() {
                    let b = src[p];
                    let exponent_sign =
                        (b == b'+' || b == b'-') && matches!(src[p - 1], b'e' | b'E' | b'p' | b'P');
                    if is_ident_byte(b) || b == b'.' || exponent_sign {
                        p += 1;
                    } else {
                        break;
                    }
                }
                self.pos = p;
                TokKind::Number
            }
            _ => match c {
                b'"' => {
                    self.quoted(b'"');
                    TokKind::Str
                }
                b'\'' => {
                    self.quoted(b'\'');
                    TokKind::Char
                }
                b'#' if was_line_start => {
                    self.pos += 1;
                    self.directive_end();
                    TokKind::Directive
                }
                _ => {
                    self.pos += punct_len(&src[start..]);
                    TokKind::Punct
                }
            },
        };
        Tok {
            kind,
            start: start as u32,
            end: self.pos as u32,
            line,
        }
    }
}

fn punct_len(s: &[u8]) -> usize {
    let a = s[0];
    let b = s.get(1).copied().unwrap_or(0);
    let c = s.get(2).copied().unwrap_or(0);
    match (a, b) {
        (b'<', b'<') | (b'>', b'>') if c == b'=' => 3,
        (b'.', b'.') if c == b'.' => 3,
        (b'-', b'>')
        | (b'+', b'+')
        | (b'-', b'-')
        | (b'<', b'<')
        | (b'>', b'>')
        | (b'<', b'=')
        | (b'>', b'=')
        | (b'=', b'=')
        | (b'!', b'=')
        | (b'&', b'&')
        | (b'|', b'|')
        | (b'+', b'=')
        | (b'-', b'=')
        | (b'*', b'=')
        | (b'/', b'=')
        | (b'%', b'=')
        | (b'&', b'=')
        | (b'|', b'=')
        | (b'^', b'=')
        | (b'#', b'#') => 2,
        _ => 1,
    }
}

/// The tokens up to the end of input (the `Eof` token itself is not yielded), for callers that
/// want every token of a short text: `Lexer::new(expr).collect()`.
impl Iterator for Lexer<'_> {
    type Item = Tok;

    fn next(&mut self) -> Option<Tok> {
        let t = self.next_tok();
        (t.kind != TokKind::Eof).then_some(t)
    }
}

/// Index of the `(` or `[` matching the `)` or `]` at `close`, scanning backwards; `None` when the
/// brackets are unbalanced (a macro-mangled or truncated region).
pub(crate) fn matching_open(src: &[u8], toks: &[Tok], close: usize) -> Option<usize> {
    let mut depth = 0i32;
    let mut i = close + 1;
    while i > 0 {
        i -= 1;
        let t = &toks[i];
        if t.is_punct(src, b')') || t.is_punct(src, b']') {
            depth += 1;
        } else if t.is_punct(src, b'(') || t.is_punct(src, b'[') {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(TokKind, String)> {
        Lexer::new(src.as_bytes())
            .map(|t| {
                (
                    t.kind,
                    String::from_utf8_lossy(t.text(src.as_bytes())).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn skips_comments_strings_and_joins_directives() {
        let src = "a /* { */ \"}\" '{' // }\n#define X \\\n  {\nb->c <<= 1;";
        let v = kinds(src);
        let texts: Vec<&str> = v.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(
            texts,
            [
                "a",
                "\"}\"",
                "'{'",
                "#define X \\\n  {",
                "b",
                "->",
                "c",
                "<<=",
                "1",
                ";"
            ]
        );
        assert_eq!(v[3].0, TokKind::Directive);
    }

    #[test]
    fn counts_lines_through_comments_and_continuations() {
        let src = "/*\n\n*/ x\n#if A \\\n && B\ny";
        let mut lx = Lexer::new(src.as_bytes()).with_comments();
        let x = lx.next_tok();
        assert_eq!(x.line, 3);
        let d = lx.next_tok();
        assert_eq!((d.kind, d.line), (TokKind::Directive, 4));
        let y = lx.next_tok();
        assert_eq!(y.line, 6);
        let c = lx.comments.unwrap();
        assert_eq!((c[0].start_line, c[0].end_line), (1, 3));
    }

    #[test]
    fn hash_only_not_at_line_start_is_punct() {
        let v = kinds("a # b");
        assert_eq!(v[1].0, TokKind::Punct);
    }
}
