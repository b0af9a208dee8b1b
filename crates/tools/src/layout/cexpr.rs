//! C constant expressions: array sizes (`[NR_CPUS * 2]`) and `#if` conditions.
//!
//! Values are `Option<i64>`, `None` meaning "cannot be known from the source" (an unknown
//! `CONFIG_` option, a macro that is not a constant). Unknowns propagate except where C's
//! short-circuit rules make them irrelevant (`0 && x`, `1 || x`), so a condition is only
//! [`Tri::Unknown`] when it truly depends on something unknown.

use super::lex::Kind;

/// A three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    Yes,
    No,
    Unknown,
}

/// What an expression's identifiers mean.
pub trait Env {
    /// The value of an identifier (a macro or `CONFIG_` option); `None` when unknown.
    fn ident(&self, name: &str) -> Option<i64>;
    /// Whether a macro or option is defined.
    fn defined(&self, name: &str) -> Tri;
    /// `IS_ENABLED`/`IS_BUILTIN`/`IS_MODULE`/`IS_REACHABLE` of an option. The default knows no
    /// `.config`: enabled when defined, module-ness unknown.
    fn config_test(&self, macro_name: &str, option: &str) -> Tri {
        match macro_name {
            "IS_MODULE" => Tri::Unknown,
            _ => self.defined(option),
        }
    }
}

/// Splits C text into tokens.
pub fn tokenize(s: &str) -> Vec<(Kind, String)> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Kind::Ident, chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push((Kind::Number, chars[start..i].iter().collect()));
        } else if c == '"' || c == '\'' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(chars.len());
            out.push((Kind::Str, chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let three: String = chars[i..(i + 3).min(chars.len())].iter().collect();
            let op = if three == "..." || three == "<<=" || three == ">>=" {
                three
            } else if ["<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "->", "##"]
                .contains(&two.as_str())
            {
                two
            } else {
                c.to_string()
            };
            i += op.chars().count();
            out.push((Kind::Punct, op));
        }
    }
    out
}

/// Parses an integer literal (`64`, `0x40`, `16UL`).
pub fn parse_number(text: &str) -> Option<i64> {
    let digits = text.trim_end_matches(['u', 'U', 'l', 'L']);
    if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16).ok()
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()
    } else {
        digits.parse().ok()
    }
}

/// Evaluates an integer expression.
pub fn eval_int(expr: &str, env: &dyn Env) -> Option<i64> {
    let tokens: Vec<String> = tokenize(expr).into_iter().map(|(_, t)| t).collect();
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
        env,
    };
    let value = parser.ternary()?;
    (parser.pos == tokens.len()).then_some(value)?
}

/// Evaluates a `#if` condition.
pub fn eval_condition(expr: &str, env: &dyn Env) -> Tri {
    let tokens: Vec<String> = tokenize(expr).into_iter().map(|(_, t)| t).collect();
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
        env,
    };
    match parser.ternary() {
        Some(Some(v)) if parser.pos == tokens.len() => {
            if v != 0 {
                Tri::Yes
            } else {
                Tri::No
            }
        }
        _ => Tri::Unknown,
    }
}

/// Recursive-descent evaluator. The outer `Option` is a syntax error, the inner one an unknown.
struct Parser<'a> {
    tokens: &'a [String],
    pos: usize,
    env: &'a dyn Env,
}

type V = Option<Option<i64>>;

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.pos).map(String::as_str)
    }

    fn eat(&mut self, t: &str) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn ternary(&mut self) -> V {
        let cond = self.binary(0)?;
        if !self.eat("?") {
            return Some(cond);
        }
        let a = self.ternary()?;
        if !self.eat(":") {
            return None;
        }
        let b = self.ternary()?;
        Some(match cond {
            Some(c) if c != 0 => a,
            Some(_) => b,
            None if a == b => a,
            None => None,
        })
    }

    fn binary(&mut self, min_prec: u8) -> V {
        let mut lhs = self.unary()?;
        while let Some(op) = self.peek().map(str::to_string) {
            let Some(prec) = precedence(&op) else { break };
            if prec < min_prec {
                break;
            }
            self.pos += 1;
            let rhs = self.binary(prec + 1)?;
            lhs = apply(&op, lhs, rhs);
        }
        Some(lhs)
    }

    fn unary(&mut self) -> V {
        let tok = self.peek()?.to_string();
        match tok.as_str() {
            "!" => {
                self.pos += 1;
                Some(self.unary()?.map(|v| (v == 0) as i64))
            }
            "-" => {
                self.pos += 1;
                Some(self.unary()?.map(|v| v.wrapping_neg()))
            }
            "~" => {
                self.pos += 1;
                Some(self.unary()?.map(|v| !v))
            }
            "+" => {
                self.pos += 1;
                self.unary()
            }
            "(" => {
                self.pos += 1;
                // A cast such as `(unsigned long)` is skipped: values are plain integers here.
                if self.peek().is_some_and(is_type_word) {
                    while self.peek().is_some_and(|t| t != ")") {
                        self.pos += 1;
                    }
                    self.eat(")");
                    return self.unary();
                }
                let v = self.ternary()?;
                self.eat(")").then_some(v)
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> V {
        let tok = self.peek()?.to_string();
        self.pos += 1;
        if tok.starts_with(|c: char| c.is_ascii_digit()) {
            return Some(parse_number(&tok));
        }
        if !tok.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        match tok.as_str() {
            "defined" => {
                let paren = self.eat("(");
                let name = self.peek()?.to_string();
                self.pos += 1;
                if paren && !self.eat(")") {
                    return None;
                }
                Some(tri_value(self.env.defined(&name)))
            }
            "IS_ENABLED" | "IS_BUILTIN" | "IS_REACHABLE" | "IS_MODULE" => {
                let args = self.call_args()?;
                let name = args.first()?.trim().to_string();
                Some(tri_value(self.env.config_test(&tok, &name)))
            }
            "BITS_TO_LONGS"
            | "DIV_ROUND_UP"
            | "BIT"
            | "BITS_TO_U32"
            | "ALIGN"
            | "max"
            | "min"
            | "__KERNEL_DIV_ROUND_UP" => {
                let args = self.call_args()?;
                let vals: Vec<Option<i64>> = args.iter().map(|a| eval_int(a, self.env)).collect();
                let get = |i: usize| vals.get(i).copied().flatten();
                Some(match tok.as_str() {
                    "BITS_TO_LONGS" => get(0).and_then(|n| n.checked_add(63)).map(|n| n / 64),
                    "BITS_TO_U32" => get(0).and_then(|n| n.checked_add(31)).map(|n| n / 32),
                    "BIT" => get(0).map(|n| 1i64.wrapping_shl(n as u32)),
                    "ALIGN" => get(0)
                        .zip(get(1))
                        .filter(|(_, a)| *a > 0)
                        .and_then(|(n, a)| n.checked_add(a - 1)?.checked_div(a)?.checked_mul(a)),
                    "max" => get(0).zip(get(1)).map(|(a, b)| a.max(b)),
                    "min" => get(0).zip(get(1)).map(|(a, b)| a.min(b)),
                    _ => get(0)
                        .zip(get(1))
                        .filter(|(_, b)| *b > 0)
                        .and_then(|(a, b)| a.checked_add(b - 1)?.checked_div(b)),
                })
            }
            "sizeof" => {
                // Only `sizeof(long)`-style builtins are cheap to know here.
                let args = self.call_args()?;
                Some(super::abi::builtin_size(args.first()?.trim()).map(|s| s as i64))
            }
            _ => {
                if self.peek() == Some("(") {
                    // An unknown function-like macro: skip its arguments, value unknown.
                    self.call_args()?;
                    return Some(None);
                }
                Some(self.env.ident(&tok))
            }
        }
    }

    /// Reads `( a, b, ... )` and returns the argument texts.
    fn call_args(&mut self) -> Option<Vec<String>> {
        if !self.eat("(") {
            return None;
        }
        let mut depth = 0;
        let mut args = vec![String::new()];
        loop {
            let tok = self.peek()?.to_string();
            self.pos += 1;
            match tok.as_str() {
                "(" => depth += 1,
                ")" if depth == 0 => break,
                ")" => depth -= 1,
                "," if depth == 0 => {
                    args.push(String::new());
                    continue;
                }
                _ => {}
            }
            let last = args.last_mut()?;
            last.push_str(&tok);
            last.push(' ');
        }
        Some(args)
    }
}

fn is_type_word(t: &str) -> bool {
    matches!(
        t,
        "unsigned"
            | "signed"
            | "long"
            | "int"
            | "char"
            | "short"
            | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "s64"
            | "size_t"
    )
}

fn tri_value(t: Tri) -> Option<i64> {
    match t {
        Tri::Yes => Some(1),
        Tri::No => Some(0),
        Tri::Unknown => None,
    }
}

fn precedence(op: &str) -> Option<u8> {
    Some(match op {
        "||" => 1,
        "&&" => 2,
        "|" => 3,
        "^" => 4,
        "&" => 5,
        "==" | "!=" => 6,
        "<" | ">" | "<=" | ">=" => 7,
        "<<" | ">>" => 8,
        "+" | "-" => 9,
        "*" | "/" | "%" => 10,
        _ => return None,
    })
}

fn apply(op: &str, a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match op {
        "&&" => match (a, b) {
            (Some(0), _) | (_, Some(0)) => Some(0),
            (Some(_), Some(_)) => Some(1),
            _ => None,
        },
        "||" => match (a, b) {
            (Some(x), _) if x != 0 => Some(1),
            (_, Some(y)) if y != 0 => Some(1),
            (Some(_), Some(_)) => Some(0),
            _ => None,
        },
        _ => {
            let (a, b) = (a?, b?);
            Some(match op {
                "|" => a | b,
                "^" => a ^ b,
                "&" => a & b,
                "==" => (a == b) as i64,
                "!=" => (a != b) as i64,
                "<" => (a < b) as i64,
                ">" => (a > b) as i64,
                "<=" => (a <= b) as i64,
                ">=" => (a >= b) as i64,
                "<<" => a.checked_shl(u32::try_from(b).ok()?)?,
                ">>" => a.checked_shr(u32::try_from(b).ok()?)?,
                "+" => a.checked_add(b)?,
                "-" => a.checked_sub(b)?,
                "*" => a.checked_mul(b)?,
                "/" => a.checked_div(b)?,
                "%" => a.checked_rem(b)?,
                _ => return None,
            })
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `CONFIG_Y*` set, `CONFIG_N*` unset, other options unknown; `FOUR` is 4.
    pub struct TestEnv;

    impl Env for TestEnv {
        fn ident(&self, name: &str) -> Option<i64> {
            match name {
                "FOUR" => Some(4),
                n if n.starts_with("CONFIG_Y") => Some(1),
                n if n.starts_with("CONFIG_N") => Some(0),
                _ => None,
            }
        }
        fn defined(&self, name: &str) -> Tri {
            match name {
                "FOUR" => Tri::Yes,
                n if n.starts_with("CONFIG_Y") => Tri::Yes,
                n if n.starts_with("CONFIG_N") => Tri::No,
                _ => Tri::Unknown,
            }
        }
    }

    #[test]
    fn integer_expressions() {
        let cases = [
            ("16", Some(16)),
            ("0x40UL", Some(64)),
            ("FOUR * (2 + 1)", Some(12)),
            ("1 << FOUR", Some(16)),
            ("BITS_TO_LONGS(65)", Some(2)),
            ("DIV_ROUND_UP(10, FOUR)", Some(3)),
            ("FOUR > 2 ? 7 : 9", Some(7)),
            ("UNKNOWN + 1", None),
            ("sizeof(long) * 2", Some(16)),
        ];
        for (expr, want) in cases {
            assert_eq!(eval_int(expr, &TestEnv), want, "{expr}");
        }
    }

    #[test]
    fn conditions_short_circuit_unknowns() {
        let cases = [
            ("defined(CONFIG_YES)", Tri::Yes),
            ("defined CONFIG_NO", Tri::No),
            ("IS_ENABLED(CONFIG_YES) && !defined(CONFIG_NO)", Tri::Yes),
            ("CONFIG_NO && CONFIG_MAYBE", Tri::No),
            ("CONFIG_YES || CONFIG_MAYBE", Tri::Yes),
            ("CONFIG_YES && CONFIG_MAYBE", Tri::Unknown),
            ("THREAD_SIZE >= PAGE_SIZE", Tri::Unknown),
        ];
        for (expr, want) in cases {
            assert_eq!(eval_condition(expr, &TestEnv), want, "{expr}");
        }
    }
}
