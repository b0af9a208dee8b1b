//! A C lexer for struct bodies, typedefs and macro values, with preprocessor conditions.
//!
//! [`lex`] strips comments, joins continued lines and follows `#if`/`#ifdef`/`#else`/`#endif`,
//! tagging every [`Token`] with the line it came from and the [`Presence`] its enclosing
//! conditions give it (definitely compiled, definitely not, or unknown with the condition text).
//! Tokens in a definitely-inactive branch are dropped. This is all the preprocessing a layout
//! needs: members are never produced by macro expansion except through the few macros
//! `parse.rs` knows.

use super::cexpr::{self, Tri};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Ident,
    Number,
    Punct,
    Str,
}

/// Whether a token is compiled under the configuration: `None` condition means unconditionally.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Presence {
    /// The conditions of the enclosing unknown branches, joined with `&&`; `None` when every
    /// enclosing condition is known true.
    pub unknown_condition: Option<String>,
    /// Every enclosing condition (known or not), for display.
    pub condition: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub kind: Kind,
    pub text: String,
    pub line: u32,
    pub presence: Presence,
}

impl Token {
    pub fn is(&self, text: &str) -> bool {
        self.text == text
    }
}

struct Frame {
    /// Text of the condition of the branch being read (negations of the earlier ones included).
    text: String,
    state: Tri,
    /// Whether an earlier branch of this `#if` chain was definitely taken.
    taken: bool,
    /// Condition texts of the earlier branches, to build `#else` conditions.
    earlier: Vec<String>,
    /// Whether an earlier branch might have been taken.
    maybe_taken: bool,
}

/// Lexes `text`, whose first line is `first_line` in its file. `eval` decides each `#if`
/// condition (see `cexpr::eval_condition`).
pub fn lex(text: &str, first_line: u32, eval: &dyn Fn(&str) -> Tri) -> Vec<Token> {
    let cleaned = strip_comments(text);
    let mut tokens = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut pending = String::new();
    let mut pending_line = first_line;
    for (i, raw) in cleaned.split('\n').enumerate() {
        let line_no = first_line + i as u32;
        if pending.is_empty() {
            pending_line = line_no;
        }
        if let Some(stripped) = raw.strip_suffix('\\') {
            pending.push_str(stripped);
            pending.push(' ');
            continue;
        }
        pending.push_str(raw);
        let logical = std::mem::take(&mut pending);
        let trimmed = logical.trim_start();
        if let Some(directive) = trimmed.strip_prefix('#') {
            handle_directive(directive.trim(), &mut stack, eval);
            continue;
        }
        let Some(presence) = current_presence(&stack) else {
            continue;
        };
        tokenize_line(&logical, pending_line, &presence, &mut tokens);
    }
    tokens
}

fn current_presence(stack: &[Frame]) -> Option<Presence> {
    let mut unknown = Vec::new();
    let mut all = Vec::new();
    for frame in stack {
        match frame.state {
            Tri::No => return None,
            Tri::Unknown => unknown.push(frame.text.clone()),
            Tri::Yes => {}
        }
        all.push(frame.text.clone());
    }
    Some(Presence {
        unknown_condition: (!unknown.is_empty()).then(|| unknown.join(" && ")),
        condition: (!all.is_empty()).then(|| all.join(" && ")),
    })
}

fn handle_directive(directive: &str, stack: &mut Vec<Frame>, eval: &dyn Fn(&str) -> Tri) {
    let (word, rest) = match directive.find(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
        Some(at) => (&directive[..at], directive[at..].trim()),
        None => (directive, ""),
    };
    match word {
        "if" | "ifdef" | "ifndef" => {
            let (text, state) = match word {
                "ifdef" => (
                    format!("defined({rest})"),
                    eval(&format!("defined({rest})")),
                ),
                "ifndef" => (
                    format!("!defined({rest})"),
                    eval(&format!("!defined({rest})")),
                ),
                _ => (rest.to_string(), eval(rest)),
            };
            stack.push(Frame {
                text: text.clone(),
                state,
                taken: state == Tri::Yes,
                maybe_taken: state != Tri::No,
                earlier: vec![text],
            });
        }
        "elif" | "else" => {
            if let Some(frame) = stack.last_mut() {
                let negated: Vec<String> =
                    frame.earlier.iter().map(|c| format!("!({c})")).collect();
                let (own, own_state) = if word == "elif" {
                    (Some(rest.to_string()), eval(rest))
                } else {
                    (None, Tri::Yes)
                };
                let state = if frame.taken {
                    Tri::No
                } else if frame.maybe_taken {
                    // An earlier branch may have been taken: this one is at best unknown.
                    if own_state == Tri::No {
                        Tri::No
                    } else {
                        Tri::Unknown
                    }
                } else {
                    own_state
                };
                let mut parts = negated;
                if let Some(own) = &own {
                    parts.push(own.clone());
                }
                frame.text = parts.join(" && ");
                frame.state = state;
                frame.taken |= state == Tri::Yes;
                frame.maybe_taken |= state != Tri::No;
                if let Some(own) = own {
                    frame.earlier.push(own);
                }
            }
        }
        "endif" => {
            stack.pop();
        }
        _ => {}
    }
}

/// Replaces comments by spaces, keeping newlines so line numbers stay right.
pub fn strip_comments(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut in_str: Option<u8> = None;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = in_str {
            out.push(c as char);
            if c == b'\\' && i + 1 < bytes.len() {
                out.push(bytes[i + 1] as char);
                i += 2;
                continue;
            }
            if c == q || c == b'\n' {
                in_str = None;
            }
            i += 1;
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                if bytes[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
            out.push(' ');
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'"' || c == b'\'' {
            in_str = Some(c);
        }
        if c.is_ascii() {
            out.push(c as char);
        } else {
            // Non-ASCII only appears in comments and strings in kernel C; keep the width.
            out.push(' ');
        }
        i += 1;
    }
    out
}

fn tokenize_line(line: &str, line_no: u32, presence: &Presence, out: &mut Vec<Token>) {
    for (kind, text) in cexpr::tokenize(line) {
        out.push(Token {
            kind,
            text,
            line: line_no,
            presence: presence.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_tag_and_drop_tokens() {
        let text = "a /* x\n y */ b\n#ifdef CONFIG_NO_X\nc\n#else\nd\n#endif\n#ifdef CONFIG_MAYBE\ne\n#else\nf\n#endif\ng // tail\n";
        let eval = |e: &str| cexpr::eval_condition(e, &cexpr::tests::TestEnv);
        let tokens = lex(text, 10, &eval);
        let names: Vec<(&str, u32, bool)> = tokens
            .iter()
            .map(|t| {
                (
                    t.text.as_str(),
                    t.line,
                    t.presence.unknown_condition.is_some(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("a", 10, false),
                ("b", 11, false),
                ("d", 15, false),
                ("e", 18, true),
                ("f", 20, true),
                ("g", 22, false)
            ]
        );
        assert_eq!(
            tokens[4].presence.unknown_condition.as_deref(),
            Some("!(defined(CONFIG_MAYBE))")
        );
    }
}
