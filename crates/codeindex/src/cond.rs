//! Preprocessor-condition evaluation over a kernel `.config` ([`KConfig`]).
//!
//! `#if` expressions are evaluated in three-valued logic: a value is `Some(n)` when it only
//! depends on `CONFIG_*` symbols (and a few fixed ones like `__KERNEL__`), `None` otherwise.
//! `&&`/`||` short-circuit on a known operand, so `CONFIG_OFF && SOME_ARCH_MACRO` is still
//! decided. Without a `.config` every `CONFIG_*` symbol is unknown.

use crate::kconfig::{KConfig, parse_int};
use crate::lex::{Tok, TokKind};
use crate::types::ConfigState;

/// Evaluates `#if`-style expressions against an optional config.
pub(crate) struct Evaluator<'c> {
    pub config: Option<&'c KConfig>,
}

type Val = Option<i64>;

/// Macros whose value is fixed for kernel C code whatever the config.
fn fixed_symbol(name: &[u8]) -> Option<i64> {
    match name {
        b"__KERNEL__" => Some(1),
        b"__ASSEMBLY__" | b"__ASSEMBLER__" | b"__cplusplus" | b"__GENKSYMS__" | b"__CHECKER__" => {
            Some(0)
        }
        _ => None,
    }
}

/// `name` as a `CONFIG_` option name; other macros are not the `.config`'s to answer.
fn config_name(name: &[u8]) -> Option<&str> {
    std::str::from_utf8(name)
        .ok()
        .filter(|n| n.starts_with("CONFIG_"))
}

impl Evaluator<'_> {
    /// Is `name` (a macro) defined? `None` when it cannot be told.
    fn defined(&self, name: &[u8]) -> Val {
        if let Some(v) = fixed_symbol(name) {
            return Some((v != 0) as i64);
        }
        let name = config_name(name)?;
        Some(self.config?.defined(name) as i64)
    }

    fn value(&self, name: &[u8]) -> Val {
        if let Some(v) = fixed_symbol(name) {
            return Some(v);
        }
        self.config?.value(config_name(name)?)
    }

    /// Evaluates a condition given as tokens over `src`.
    pub fn eval(&self, src: &[u8], toks: &[Tok]) -> ConfigState {
        let mut p = Parser {
            ev: self,
            src,
            toks,
            i: 0,
        };
        let v = p.ternary();
        if p.i < toks.len() {
            return ConfigState::Unknown; // trailing junk: do not guess
        }
        match v {
            Some(0) => ConfigState::Inactive,
            Some(_) => ConfigState::Active,
            None => ConfigState::Unknown,
        }
    }
}

struct Parser<'e, 'c, 's> {
    ev: &'e Evaluator<'c>,
    src: &'s [u8],
    toks: &'s [Tok],
    i: usize,
}

impl Parser<'_, '_, '_> {
    fn peek(&self) -> Option<&[u8]> {
        self.toks.get(self.i).map(|t| t.text(self.src))
    }
    fn eat(&mut self, s: &str) -> bool {
        if self.peek() == Some(s.as_bytes()) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ternary(&mut self) -> Val {
        let c = self.binary(0);
        if self.eat("?") {
            let a = self.ternary();
            self.eat(":");
            let b = self.ternary();
            return match c {
                Some(0) => b,
                Some(_) => a,
                None => None,
            };
        }
        c
    }

    fn binary(&mut self, min_prec: u8) -> Val {
        let mut lhs = self.unary();
        loop {
            let Some(op) = self.peek() else { return lhs };
            let prec = match op {
                b"||" => 1,
                b"&&" => 2,
                b"|" => 3,
                b"^" => 4,
                b"&" => 5,
                b"==" | b"!=" => 6,
                b"<" | b">" | b"<=" | b">=" => 7,
                b"<<" | b">>" => 8,
                b"+" | b"-" => 9,
                b"*" | b"/" | b"%" => 10,
                _ => return lhs,
            };
            if prec <= min_prec {
                return lhs;
            }
            let op = op.to_vec();
            self.i += 1;
            let rhs = self.binary(prec);
            lhs = apply(&op, lhs, rhs);
        }
    }

    fn unary(&mut self) -> Val {
        let t = self.toks.get(self.i).copied()?;
        let text = t.text(self.src);
        self.i += 1;
        match (t.kind, text) {
            (TokKind::Punct, b"!") => self.unary().map(|v| (v == 0) as i64),
            (TokKind::Punct, b"-") => self.unary().map(|v| v.wrapping_neg()),
            (TokKind::Punct, b"+") => self.unary(),
            (TokKind::Punct, b"~") => self.unary().map(|v| !v),
            (TokKind::Punct, b"(") => {
                let v = self.ternary();
                self.eat(")");
                v
            }
            (TokKind::Number, _) => parse_int(std::str::from_utf8(text).ok()?),
            (TokKind::Char, _) => None,
            (TokKind::Ident, b"defined") => {
                let paren = self.eat("(");
                let name = self.peek().map(<[u8]>::to_vec);
                self.i += 1;
                if paren {
                    self.eat(")");
                }
                name.and_then(|n| self.ev.defined(&n))
            }
            (TokKind::Ident, _) => {
                if self.peek() == Some(b"(") {
                    let args = self.call_args();
                    return self.builtin(text, &args);
                }
                self.ev.value(text)
            }
            _ => None,
        }
    }

    /// Consumes `( ... )` and returns the first argument's identifier, if simple.
    fn call_args(&mut self) -> Option<Vec<u8>> {
        self.i += 1; // '('
        let first = self.toks.get(self.i).map(|t| t.text(self.src).to_vec());
        let mut depth = 1;
        let mut count = 0;
        while let Some(t) = self.toks.get(self.i) {
            self.i += 1;
            match t.text(self.src) {
                b"(" => depth += 1,
                b")" => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            count += 1;
        }
        if count == 1 { first } else { None }
    }

    fn builtin(&self, func: &[u8], arg: &Option<Vec<u8>>) -> Val {
        let option = config_name(arg.as_deref()?)?;
        let func = std::str::from_utf8(func).ok()?;
        self.ev.config?.test(func, option).map(i64::from)
    }
}

fn apply(op: &[u8], a: Val, b: Val) -> Val {
    match op {
        b"&&" => match (a, b) {
            (Some(0), _) | (_, Some(0)) => Some(0),
            (Some(_), Some(_)) => Some(1),
            _ => None,
        },
        b"||" => match (a, b) {
            (Some(x), _) if x != 0 => Some(1),
            (_, Some(y)) if y != 0 => Some(1),
            (Some(_), Some(_)) => Some(0),
            _ => None,
        },
        _ => {
            let (a, b) = (a?, b?);
            Some(match op {
                b"|" => a | b,
                b"^" => a ^ b,
                b"&" => a & b,
                b"==" => (a == b) as i64,
                b"!=" => (a != b) as i64,
                b"<" => (a < b) as i64,
                b">" => (a > b) as i64,
                b"<=" => (a <= b) as i64,
                b">=" => (a >= b) as i64,
                b"<<" => a.wrapping_shl(b as u32),
                b">>" => a.wrapping_shr(b as u32),
                b"+" => a.wrapping_add(b),
                b"-" => a.wrapping_sub(b),
                b"*" => a.wrapping_mul(b),
                b"/" => a.checked_div(b)?,
                b"%" => a.checked_rem(b)?,
                _ => return None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex::Lexer;

    fn eval(cfg: Option<&KConfig>, expr: &str) -> ConfigState {
        let toks: Vec<_> = Lexer::new(expr.as_bytes()).collect();
        Evaluator { config: cfg }.eval(expr.as_bytes(), &toks)
    }

    #[test]
    fn evaluates_config_expressions() {
        let cfg = KConfig::parse(
            b"CONFIG_SMP=y\nCONFIG_NET=m\n# CONFIG_X is not set\nCONFIG_NR_CPUS=64\nCONFIG_S=\"a\"\n",
        );
        let c = Some(&cfg);
        use ConfigState::*;
        for (expr, want) in [
            ("CONFIG_SMP", Active),
            ("defined(CONFIG_SMP)", Active),
            ("defined CONFIG_X", Inactive),
            ("!defined(CONFIG_X) && CONFIG_SMP", Active),
            ("IS_ENABLED(CONFIG_NET)", Active),
            ("IS_BUILTIN(CONFIG_NET)", Inactive),
            ("IS_MODULE(CONFIG_NET)", Active),
            ("defined(CONFIG_NET)", Inactive),
            ("defined(CONFIG_NET_MODULE)", Active),
            ("CONFIG_NR_CPUS > 32", Active),
            ("CONFIG_NR_CPUS >= 128 || defined(CONFIG_X)", Inactive),
            ("FOO_BAR", Unknown),
            ("CONFIG_X && FOO_BAR", Inactive),
            ("CONFIG_SMP || FOO_BAR", Active),
            ("CONFIG_SMP && FOO_BAR", Unknown),
            ("(CONFIG_SMP && (CONFIG_X || CONFIG_NR_CPUS == 64))", Active),
            ("0", Inactive),
            ("!defined(__ASSEMBLY__)", Active),
        ] {
            assert_eq!(eval(c, expr), want, "{expr}");
        }
    }

    #[test]
    fn without_config_everything_config_is_unknown() {
        assert_eq!(eval(None, "CONFIG_SMP"), ConfigState::Unknown);
        assert_eq!(eval(None, "IS_ENABLED(CONFIG_SMP)"), ConfigState::Unknown);
        assert_eq!(eval(None, "1"), ConfigState::Active);
    }
}
