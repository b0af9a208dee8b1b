//! Lexical helpers over single C source lines: which names a line touches, whether it stores,
//! marks, compares or logs. Deliberately shallow (no parser): the evidence always quotes the line
//! so a reader can check what these helpers saw.

use std::sync::LazyLock;

use regex::Regex;

// Every regex below is a literal checked by the unit tests, so `Regex::new` cannot fail at run time.
macro_rules! re {
    ($name:ident, $pat:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| Regex::new($pat).expect("literal regex"));
    };
}

re!(MEMBER, r"(?:->|\.)\s*([A-Za-z_]\w*)");
re!(IDENT, r"[A-Za-z_]\w*");
re!(
    STORE,
    r"(?:[^=!<>+\-*/%&|^]=[^=]|\+\+|--|[+\-*/%&|^]=|<<=|>>=|WRITE_ONCE|smp_store_release|\bset_bit|\bclear_bit|_set\(|_inc\(|_dec\(|_add\(|_sub\()"
);
re!(RMW, r"(?:\+\+|--|[+\-*/%&|^]=|<<=|>>=)");
re!(
    MARKER,
    r"\b(READ_ONCE|WRITE_ONCE|data_race|smp_load_acquire|smp_store_release|rcu_dereference\w*|rcu_assign_pointer|rcu_access_pointer|atomic\w*_(?:read|set|inc|dec|add|sub|cmpxchg|xchg|fetch_\w+|try_cmpxchg)\w*|cmpxchg\w*|xchg|test_bit|test_and_set_bit|test_and_clear_bit|set_bit|clear_bit|__data_racy|local_read|local_inc|this_cpu_\w+|refcount_\w+)\b"
);
re!(
    DIAG,
    r"\b(WARN\w*|BUG_ON|BUG|pr_\w+|printk\w*|dev_(?:warn|err|info|dbg)\w*|trace_\w+|seq_printf|seq_puts|lockdep_\w+|VM_BUG_ON\w*|VM_WARN\w*|KCSAN_\w+|ASSERT_EXCLUSIVE_\w+|debug_\w+)\s*\("
);
re!(
    CONTAINER,
    r"\b(list_\w+|hlist_\w+|llist_\w+|rb_\w+|__list_\w+|INIT_LIST_HEAD|xa_\w+|radix_tree_\w+|idr_\w+|kref_\w+|refcount_\w+)\s*\(|(?:->|\.)(next|prev|pprev|first|rb_left|rb_right|rb_node|__rb_parent_color)\b"
);
re!(
    CONDITION,
    r"^\s*(?:\}\s*else\s+)?(?:if|while|for)\s*\(|\?\s*[^:]+:|^\s*return\b.*(?:==|!=|<|>|&&|\|\|)"
);
re!(
    LOCK,
    r"\b(spin_lock\w*|raw_spin_lock\w*|mutex_lock\w*|read_lock\w*|write_lock\w*|down_read\w*|down_write\w*|rcu_read_lock\w*|srcu_read_lock|local_bh_disable|local_irq_save|local_irq_disable|preempt_disable|lock_sock|bh_lock_sock\w*|spin_trylock\w*|mutex_trylock|guard|scoped_guard|rtnl_lock|percpu_down_read|xa_lock\w*|write_seqlock\w*|read_seqbegin|raw_spin_rq_lock\w*|rq_lock\w*|task_rq_lock|lock_timer_base|folio_lock|lock_page|sb_start_write|inode_lock\w*)\s*\(([^;]*)"
);
re!(
    UNLOCK,
    r"\b(spin_unlock\w*|raw_spin_unlock\w*|mutex_unlock|read_unlock\w*|write_unlock\w*|up_read|up_write|rcu_read_unlock\w*|srcu_read_unlock|local_bh_enable|local_irq_restore|local_irq_enable|preempt_enable\w*|release_sock|bh_unlock_sock|rtnl_unlock|percpu_up_read|xa_unlock\w*|write_sequnlock\w*|raw_spin_rq_unlock\w*|rq_unlock\w*|task_rq_unlock|folio_unlock|unlock_page|sb_end_write|inode_unlock\w*)\s*\(([^;]*)"
);
re!(
    RACE_COMMENT,
    r"\b(racy|racily|race is|races are|data[ -]race|benign|harmless|stale|approximate|inaccura\w*|imprecise|lockless(?:ly)?|don't care|doesn't matter|does not matter|fine if|ok if|okay if|hint)\b"
);
re!(
    ASSERT_HELD,
    r"\b(lockdep_assert_held\w*|lockdep_assert_\w+|assert_spin_locked|WARN_ON\w*\(\s*!\s*(?:spin|mutex)_is_locked)\s*\(([^;]*)"
);

const KEYWORDS: &[&str] = &[
    "if", "else", "for", "while", "do", "return", "switch", "case", "break", "continue", "goto",
    "sizeof", "typeof", "struct", "union", "enum", "const", "volatile", "static", "unsigned",
    "signed", "int", "long", "short", "char", "bool", "void", "u8", "u16", "u32", "u64", "s8",
    "s16", "s32", "s64", "true", "false", "NULL", "current", "likely", "unlikely", "inline",
    "default", "size_t", "ssize_t", "loff_t",
];

/// Strips a trailing `//` or one-line `/* */` comment.
pub fn code_part(line: &str) -> String {
    let mut s = line.split("//").next().unwrap_or(line).to_string();
    // The last line of a block comment: everything up to its `*/` is comment text.
    if let Some(end) = s.find("*/")
        && s.find("/*").is_none_or(|open| open > end)
    {
        s.replace_range(..end + 2, " ");
    }
    while let (Some(a), Some(b)) = (s.find("/*"), s.find("*/")) {
        if b < a {
            break;
        }
        s.replace_range(a..b + 2, " ");
    }
    if let Some(a) = s.find("/*") {
        s.truncate(a);
    }
    s
}

/// True if the line contains code that could access memory (not blank, not a lone brace or comment).
pub fn looks_like_access(line: &str) -> bool {
    let code = code_part(line);
    let t = code.trim();
    if t.is_empty()
        || t.starts_with('*')
        || t.starts_with('#')
        || matches!(t, "{" | "}" | "};" | "else" | "} else {")
    {
        return false;
    }
    t.starts_with("return") && t.len() > 8
        || IDENT.find_iter(t).any(|m| !KEYWORDS.contains(&m.as_str()))
}

/// A local declaration without initialiser from shared memory (`int err;`, `struct foo *p;`).
pub fn is_declaration_only(line: &str) -> bool {
    let code = code_part(line);
    let t = code.trim();
    let starts_with_type = t.starts_with("struct ")
        || t.starts_with("const ")
        || t.starts_with("unsigned ")
        || [
            "int ", "long ", "bool ", "u8 ", "u16 ", "u32 ", "u64 ", "char ", "size_t ", "void ",
        ]
        .iter()
        .any(|p| t.starts_with(p));
    starts_with_type && (!t.contains('=') || !t.contains("->") && !t.contains('.'))
}

/// The line is only a lock or unlock call.
pub fn is_lock_call(line: &str) -> bool {
    let code = code_part(line);
    let t = code.trim();
    (LOCK.is_match(t) || UNLOCK.is_match(t)) && t.ends_with(';') && !t.contains('=')
}

/// A comment within `lines` that documents an intentional race (racy, stale, approximate…).
pub fn race_comment<'a>(lines: impl Iterator<Item = &'a str>) -> Option<String> {
    for line in lines {
        let start = line
            .find("/*")
            .or_else(|| line.find("//"))
            .or_else(|| line.trim_start().starts_with('*').then_some(0));
        let Some(pos) = start else { continue };
        let comment = line[pos..].to_ascii_lowercase();
        if RACE_COMMENT.is_match(&comment) {
            return Some(line.trim().to_string());
        }
    }
    None
}

/// Member names (`->f` / `.f`) on the line, in order.
pub fn members(line: &str) -> Vec<String> {
    MEMBER
        .captures_iter(&code_part(line))
        .map(|c| c[1].to_string())
        .collect()
}

/// Members that end an access chain: in `a->b->c` only `c` is the accessed field (`b` is a
/// pointer load on the way to it).
pub fn chain_ends(line: &str) -> Vec<String> {
    let code = code_part(line);
    MEMBER
        .captures_iter(&code)
        .filter_map(|c| {
            let m = c.get(1)?;
            let rest = code[m.end()..].trim_start();
            (!rest.starts_with("->") && !rest.starts_with('.')).then(|| m.as_str().to_string())
        })
        .collect()
}

/// Identifiers that are not keywords and not called as functions.
pub fn names(line: &str) -> Vec<String> {
    let code = code_part(line);
    let mut out = Vec::new();
    for m in IDENT.find_iter(&code) {
        let rest = code[m.end()..].trim_start();
        if KEYWORDS.contains(&m.as_str()) || rest.starts_with('(') {
            continue;
        }
        out.push(m.as_str().to_string());
    }
    out
}

pub fn mentions_any(line: &str, names_wanted: &[String]) -> bool {
    let have = names(line);
    names_wanted.iter().any(|n| have.contains(n))
}

/// The line stores to memory (assignment, increment, WRITE_ONCE, bit set…).
pub fn has_store(line: &str) -> bool {
    STORE.is_match(&format!(" {}", code_part(line)))
}

/// The line writes shared memory: a member, array element, dereference or global is assigned,
/// incremented or written through a marking/atomic helper. Assignments to plain locals
/// (`c = c->parent`) do not count.
pub fn stores_to_memory(line: &str) -> bool {
    let code = code_part(line);
    if MARKER.captures(&code).is_some_and(|c| {
        let m = &c[1];
        m == "WRITE_ONCE"
            || m.contains("set")
            || m.contains("inc")
            || m.contains("dec")
            || m.contains("add")
            || m.contains("sub")
            || m.contains("xchg")
            || m == "smp_store_release"
            || m == "rcu_assign_pointer"
    }) {
        return true;
    }
    let memory_lhs = |lhs: &str| {
        lhs.contains("->") || lhs.contains('.') || lhs.contains('[') || lhs.starts_with('*')
    };
    if let Some(lhs) = assigned_lhs(line) {
        return memory_lhs(&lhs) || !lhs.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    }
    // `p->n++`, `p->flags |= x` (not caught by assigned_lhs, which wants a plain `=`).
    RMW.find(&code).is_some_and(|m| {
        let before = code[..m.start()].trim_end();
        let after = code[m.end()..].trim_start();
        memory_lhs(
            before
                .rsplit([' ', '(', '\t', ';'])
                .next()
                .unwrap_or(before),
        ) || memory_lhs(after.split([' ', ')', ';']).next().unwrap_or(after))
    })
}

/// The line does a plain read-modify-write (`x++`, `x += y`, `x |= y`).
pub fn plain_rmw(line: &str) -> bool {
    let code = code_part(line);
    RMW.is_match(&code) && !code.contains("for (")
}

/// The left-hand side of the first plain assignment, if any (`a->b = c;` → `a->b`).
pub fn assigned_lhs(line: &str) -> Option<String> {
    let code = code_part(line);
    let bytes = code.as_bytes();
    for i in 1..bytes.len().saturating_sub(1) {
        if bytes[i] == b'=' && bytes[i + 1] != b'=' && !b"=!<>+-*/%&|^".contains(&bytes[i - 1]) {
            let lhs = code[..i].trim();
            let lhs = lhs.rsplit(['(', ',', ';']).next().unwrap_or(lhs).trim();
            return (!lhs.is_empty()).then(|| lhs.to_string());
        }
    }
    None
}

/// The right-hand side of the first plain assignment.
pub fn assigned_rhs(line: &str) -> Option<String> {
    let code = code_part(line);
    let lhs = assigned_lhs(line)?;
    let start = code.find(&lhs)? + lhs.len();
    let rest = code[start..].trim_start().strip_prefix('=')?;
    Some(rest.trim().trim_end_matches(';').trim().to_string())
}

/// The marking primitive used on the line, if any.
pub fn marker(line: &str) -> Option<String> {
    MARKER.captures(&code_part(line)).map(|c| c[1].to_string())
}

/// The line is a diagnostic (warning, BUG, printk, tracepoint, lockdep, debug helper).
pub fn diagnostic(line: &str) -> Option<String> {
    DIAG.captures(&code_part(line)).map(|c| c[1].to_string())
}

/// The line manipulates a linked structure (list, tree, xarray, refcount).
pub fn container_op(line: &str) -> Option<String> {
    CONTAINER.captures(&code_part(line)).map(|c| {
        c.get(1)
            .or(c.get(2))
            .map(|m| m.as_str().to_string())
            .unwrap_or_default()
    })
}

/// The line decides control flow (`if`, loop condition, ternary, boolean return).
pub fn condition(line: &str) -> bool {
    CONDITION.is_match(&code_part(line))
}

/// Locks held at `upto` (exclusive), scanning `lines` (a function body) in order: acquisitions
/// minus releases of the same primitive family. Also counts `lockdep_assert_held`.
pub fn held_locks<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut held: Vec<(String, String)> = Vec::new();
    for line in lines {
        let code = code_part(line);
        for c in LOCK.captures_iter(&code) {
            held.push((family(&c[1]), format!("{}({}", &c[1], c[2].trim())));
        }
        for c in ASSERT_HELD.captures_iter(&code) {
            held.push(("assert".into(), format!("{}({}", &c[1], c[2].trim())));
        }
        for c in UNLOCK.captures_iter(&code) {
            let fam = family(&c[1]);
            if let Some(pos) = held.iter().rposition(|(f, _)| *f == fam) {
                held.remove(pos);
            }
        }
    }
    held.into_iter().map(|(_, l)| l).collect()
}

/// Maps lock/unlock primitives to a family so `spin_unlock_irqrestore` releases `spin_lock_irqsave`.
fn family(name: &str) -> String {
    let n = name
        .replace("unlock", "lock")
        .replace("_irqrestore", "")
        .replace("_irqsave", "")
        .replace("_irq", "")
        .replace("_bh", "");
    let n = n
        .replace("up_read", "down_read")
        .replace("up_write", "down_write")
        .replace("release_sock", "lock_sock")
        .replace("local_bh_enable", "local_bh_disable")
        .replace("local_irq_restore", "local_irq_save")
        .replace("local_irq_enable", "local_irq_disable")
        .replace("preempt_enable_no_resched", "preempt_disable")
        .replace("preempt_enable", "preempt_disable")
        .replace("sb_end_write", "sb_start_write")
        .replace("percpu_up_read", "percpu_down_read");
    n.replace("trylock", "lock").replace("_nested", "")
}

/// Statistics-like name: counters, totals, timestamps, hints.
pub fn stats_like(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    const STATS: &[&str] = &[
        "stat", "count", "cnt", "nr_", "total", "bytes", "pkts", "packets", "hits", "miss", "drop",
        "err", "events", "failcnt", "usage", "inflight", "pending", "num_", "_nr", "nr",
    ];
    const TIME: &[&str] = &[
        "jiffies", "time", "stamp", "last", "_ts", "tstamp", "age", "expires", "prev_pos", "seen",
    ];
    const HINT: &[&str] = &[
        "hint",
        "cache",
        "cursor",
        "next_",
        "rotor",
        "boost",
        "victim",
        "prio",
        "ratelimit",
    ];
    if TIME.iter().any(|k| n.contains(k)) {
        return Some("timestamp");
    }
    if HINT.iter().any(|k| n.contains(k)) {
        return Some("hint");
    }
    if STATS
        .iter()
        .any(|k| n.contains(k) && (k.len() > 2 || n == *k || n.starts_with(k) || n.ends_with(k)))
    {
        return Some("counter");
    }
    None
}

fn word_re(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

/// An enumerator-like constant (`ALL_CAPS`, not `NULL`/`TRUE`/`FALSE`) that the statement stores
/// into `field` or compares `field` with.
pub fn enum_constant_with(stmt: &str, field: &str) -> Option<String> {
    let f = regex::escape(field);
    let re = word_re(&format!(
        r"(?:->|\.)\s*{f}\s*(?:==|!=|=)\s*([A-Z][A-Z0-9_]*[A-Z0-9])\b|(?:->|\.)\s*{f}\s*,\s*([A-Z][A-Z0-9_]*[A-Z0-9])\s*\)|\b([A-Z][A-Z0-9_]*[A-Z0-9])\s*(?:==|!=)\s*[\w>.-]*(?:->|\.){f}\b"
    ))?;
    let code = code_part(stmt);
    re.captures_iter(&code)
        .filter_map(|c| c.get(1).or(c.get(2)).or(c.get(3)).map(|m| m.as_str()))
        .find(|c| !matches!(*c, "NULL" | "TRUE" | "FALSE") && c.contains('_'))
        .map(str::to_string)
}

/// A marked store whose value is computed from the same field (`WRITE_ONCE(x->m, x->m & ~b)`).
pub fn marked_rmw(stmt: &str, field: &str) -> bool {
    let code = code_part(stmt);
    let Some(re) = word_re(&format!(r"(?:->|\.)\s*{}\b", regex::escape(field))) else {
        return false;
    };
    (code.contains("WRITE_ONCE(") || code.contains("smp_store_release("))
        && re.find_iter(&code).count() >= 2
}

/// `-1`, `-EINVAL`: a negative sentinel.
pub fn is_negative_literal(rhs: &str) -> bool {
    let r = rhs.trim();
    r.strip_prefix('-').is_some_and(|n| {
        !n.is_empty()
            && (n.chars().all(|c| c.is_ascii_digit())
                || n.starts_with('E') && n.chars().all(|c| c.is_ascii_uppercase()))
    })
}

/// The line uses `local` as a pointer (`local->`, `*local`), calls through it (`local(`) or
/// indexes with it (`[local]`).
pub fn uses_as_pointer_or_index(line: &str, local: &str) -> bool {
    let l = regex::escape(local);
    word_re(&format!(
        r"\b{l}\s*->|\*\s*{l}\b|(?:^|[^\w.>])\s*{l}\s*\(|\[\s*{l}\s*\]"
    ))
    .is_some_and(|re| re.is_match(&code_part(line)))
}

/// A condition testing `field` (`if (!p->f)`, `if (p->f)`) at most two lines before or on
/// `at`, followed within three lines by another read of `field` outside a condition: returns
/// the index (into `lines`) and text of that second read.
pub fn reload_after_check<'a>(
    lines: &'a [String],
    at: usize,
    field: &str,
) -> Option<(usize, &'a str)> {
    let member = word_re(&format!(r"(?:->|\.)\s*{}\b", regex::escape(field)))?;
    let check_from = at.saturating_sub(2);
    for i in check_from..=at.min(lines.len().saturating_sub(1)) {
        let code = code_part(&lines[i]);
        let t = code.trim_start();
        if !(t.starts_with("if (") || t.starts_with("} else if (") || t.starts_with("while ("))
            || !member.is_match(&code)
        {
            continue;
        }
        for (j, line) in lines
            .iter()
            .enumerate()
            .take((i + 4).min(lines.len()))
            .skip(i + 1)
        {
            let c = code_part(line);
            let ct = c.trim_start();
            if ct.starts_with("if (") || ct.starts_with("while (") {
                continue;
            }
            // A store to the field is a write-back, not the reload this looks for.
            let stores = assigned_lhs(&c).is_some_and(|lhs| member.is_match(&lhs));
            if member.is_match(&c) && !stores {
                return Some((j, line.as_str()));
            }
        }
    }
    None
}

/// `rq->curr` with field `curr` → `rq`.
pub fn base_of_member(line: &str, field: &str) -> Option<String> {
    let re = word_re(&format!(r"(\w+)\s*->\s*{}\b", regex::escape(field)))?;
    re.captures(&code_part(line)).map(|c| c[1].to_string())
}

/// `struct rq *rq = ...` or a parameter `struct rq *rq` → `rq`'s record name.
pub fn declared_struct_of(line: &str, var: &str) -> Option<String> {
    let re = word_re(&format!(
        r"struct\s+(\w+)\s*(?:__rcu\s*)?\*\s*(?:const\s+)?{}\b",
        regex::escape(var)
    ))?;
    re.captures(&code_part(line)).map(|c| c[1].to_string())
}

/// The member declaration declares `field` as a pointer or function pointer.
pub fn declares_pointer(decl: &str, field: &str) -> bool {
    let code = code_part(decl);
    let Some(re) = word_re(&format!(r"\b{}\b", regex::escape(field))) else {
        return false;
    };
    re.find(&code).is_some_and(|m| {
        let before = &code[..m.start()];
        let decl_start = before.rfind([';', '{']).map_or(0, |p| p + 1);
        before[decl_start..].contains('*')
    })
}

/// The size in bytes of `member` as declared in `decl`, for scalar and pointer types on a
/// 64-bit kernel; `None` for bitfields, arrays, structs and types we cannot size from the text.
pub fn member_size(decl: &str, member: &str) -> Option<u64> {
    let code = code_part(decl);
    let re = word_re(&format!(r"\b{}\b", regex::escape(member)))?;
    let m = re.find(&code)?;
    let after = code[m.end()..].trim_start();
    if after.starts_with('[') || after.starts_with(':') {
        return None;
    }
    let before = &code[..m.start()];
    let start = before.rfind([';', '{']).map_or(0, |p| p + 1);
    let ty = before[start..].trim();
    if ty.contains('*') {
        return Some(8);
    }
    let words: Vec<&str> = ty
        .split_whitespace()
        .filter(|w| !matches!(*w, "volatile" | "const" | "signed" | "__rcu" | "static"))
        .collect();
    let last = *words.last()?;
    let size = match last {
        "bool" | "u8" | "s8" | "__u8" | "__s8" | "char" => 1,
        "u16" | "s16" | "__u16" | "__s16" | "__be16" | "__le16" | "short" => 2,
        "u32" | "s32" | "__u32" | "__s32" | "__be32" | "__le32" | "atomic_t" | "pid_t"
        | "uid_t" | "gid_t" | "fmode_t" | "gfp_t" | "refcount_t" => 4,
        "int" => {
            if words.contains(&"long") {
                8
            } else if words.contains(&"short") {
                2
            } else {
                4
            }
        }
        "unsigned" => 4,
        "u64" | "s64" | "__u64" | "__s64" | "__be64" | "__le64" | "long" | "size_t" | "ssize_t"
        | "loff_t" | "sector_t" | "atomic64_t" | "atomic_long_t" | "ktime_t" | "time64_t"
        | "phys_addr_t" | "dma_addr_t" | "pgoff_t" | "blkcnt_t" => 8,
        _ => return None,
    };
    Some(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_compile() {
        for r in [
            &MEMBER,
            &IDENT,
            &STORE,
            &RMW,
            &MARKER,
            &DIAG,
            &CONTAINER,
            &CONDITION,
            &LOCK,
            &UNLOCK,
            &ASSERT_HELD,
            &RACE_COMMENT,
        ] {
            let _ = r.is_match("");
        }
    }

    #[test]
    fn members_and_names() {
        assert_eq!(members("\tif (sqd->thread == current)"), vec!["thread"]);
        assert_eq!(names("x = foo(a->b, c);"), vec!["x", "a", "b", "c"]);
    }

    #[test]
    fn chain_ends_are_the_accessed_fields() {
        assert_eq!(
            chain_ends("smc->clcsock->file->private_data = smc->clcsock;"),
            vec!["private_data", "clcsock"]
        );
        assert_eq!(chain_ends("x = a.b.c;"), vec!["c"]);
    }

    #[test]
    fn stores_and_rmw() {
        assert!(has_store("\tsqd->thread = NULL;"));
        assert!(!has_store("\tif (sqd->thread == current)"));
        assert!(has_store("\tWRITE_ONCE(x->y, 1);"));
        assert!(plain_rmw("\tcounter->failcnt++;"));
        assert!(plain_rmw("\tx->flags |= FOO;"));
        assert!(!plain_rmw("\tx->flags = FOO;"));
        assert_eq!(assigned_lhs("\tnew = p->next;").as_deref(), Some("new"));
        assert_eq!(assigned_rhs("\tnew = p->next;").as_deref(), Some("p->next"));
        assert_eq!(assigned_lhs("\tif (a == b)"), None);
    }

    #[test]
    fn stores_to_memory_ignores_locals() {
        assert!(!stores_to_memory("\tfor (c = counter; c; c = c->parent) {"));
        assert!(stores_to_memory("\tc->failcnt++;"));
        assert!(stores_to_memory("\tdata_race(c->failcnt++);"));
        assert!(stores_to_memory("\tsqd->thread = NULL;"));
        assert!(stores_to_memory("\tWRITE_ONCE(x, 1);"));
        assert!(!stores_to_memory("\tif (x->y == 1)"));
        assert!(!stores_to_memory("\tnew = READ_ONCE(x->y);"));
    }

    #[test]
    fn markers_diagnostics_containers() {
        assert_eq!(
            marker("\tv = READ_ONCE(x->y);").as_deref(),
            Some("READ_ONCE")
        );
        assert_eq!(
            marker("\tatomic_inc(&x->y);").as_deref(),
            Some("atomic_inc")
        );
        assert!(marker("\tv = x->y;").is_none());
        assert_eq!(
            diagnostic("\tWARN_ON_ONCE(sqd->thread == current);").as_deref(),
            Some("WARN_ON_ONCE")
        );
        assert_eq!(
            container_op("\tlist_del_init(&p->node);").as_deref(),
            Some("list_del_init")
        );
        assert_eq!(container_op("\tn->pprev = NULL;").as_deref(), Some("pprev"));
        assert!(condition("\tif (x->y)"));
        assert!(!condition("\tx = y;"));
    }

    #[test]
    fn lock_tracking_pairs_lock_and_unlock() {
        let body = [
            "spin_lock_irqsave(&q->lock, flags);",
            "x = 1;",
            "spin_unlock_irqrestore(&q->lock, flags);",
            "mutex_lock(&m);",
        ];
        assert_eq!(
            held_locks(body.iter().copied()),
            vec!["mutex_lock(&m);".trim_end_matches(';').to_string()]
        );
        assert_eq!(
            held_locks(body[..2].iter().copied()),
            vec![
                "spin_lock_irqsave(&q->lock, flags);"
                    .trim_end_matches(';')
                    .to_string()
            ]
        );
    }

    #[test]
    fn lock_calls_and_race_comments() {
        assert!(is_lock_call("\tspin_lock(&inode->i_lock);"));
        assert!(!is_lock_call("\tinode->i_blocks += x;"));
        let lines = [
            "\t/*",
            "\t * This is racy, but we can live with it",
            "\t */",
            "\tdata_race(c->failcnt++);",
        ];
        assert!(
            race_comment(lines.iter().copied())
                .unwrap()
                .contains("racy")
        );
        assert!(race_comment(["\tx = racy_value;"].iter().copied()).is_none());
    }

    #[test]
    fn stats_names() {
        assert_eq!(stats_like("failcnt"), Some("counter"));
        assert_eq!(stats_like("srcu_last_gp_end"), Some("timestamp"));
        assert_eq!(stats_like("last_boosted_vcpu"), Some("timestamp"));
        assert_eq!(stats_like("thread"), None);
    }
    #[test]
    fn enum_constants_mark_state_fields() {
        assert_eq!(
            enum_constant_with(
                "if (rdp->defer_qs_pending != DEFER_QS_PENDING) {",
                "defer_qs_pending"
            )
            .as_deref(),
            Some("DEFER_QS_PENDING")
        );
        assert_eq!(
            enum_constant_with("WRITE_ONCE(rdp->st, ST_IDLE);", "st").as_deref(),
            Some("ST_IDLE")
        );
        assert_eq!(enum_constant_with("p->ptr = NULL;", "ptr"), None);
        assert_eq!(enum_constant_with("p->hits++;", "hits"), None);
    }

    #[test]
    fn marked_rmw_needs_the_field_twice_in_a_marked_store() {
        assert!(marked_rmw(
            "WRITE_ONCE(rnp->expmask, rnp->expmask & ~mask);",
            "expmask"
        ));
        assert!(!marked_rmw("WRITE_ONCE(rnp->expmask, 0);", "expmask"));
        assert!(!marked_rmw(
            "rnp->expmask = rnp->expmask & ~mask;",
            "expmask"
        ));
    }

    #[test]
    fn negative_sentinels() {
        assert!(is_negative_literal("-1"));
        assert!(is_negative_literal("-ENOENT"));
        assert!(!is_negative_literal("1"));
        assert!(!is_negative_literal("-x"));
    }

    #[test]
    fn pointer_or_index_uses_of_a_local() {
        assert!(uses_as_pointer_or_index("\tif (es && es->len)", "es"));
        assert!(uses_as_pointer_or_index("\t\tcb(sk);", "cb"));
        assert!(uses_as_pointer_or_index("\tv = tbl[idx];", "idx"));
        assert!(!uses_as_pointer_or_index("\tif (idx > 3)", "idx"));
        assert!(!uses_as_pointer_or_index("\tfoo->cb(sk);", "cb"));
    }

    #[test]
    fn reload_after_check_finds_the_second_load() {
        let lines: Vec<String> = [
            "\tif (!tctx || !tctx->io_wq)",
            "\t\tcontinue;",
            "\tret = cancel(tctx->io_wq, ctx);",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(reload_after_check(&lines, 0, "io_wq").map(|r| r.0), Some(2));
        let single: Vec<String> = ["\tcb = READ_ONCE(p->cb);", "\tif (cb)", "\t\tcb(sk);"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(reload_after_check(&single, 0, "cb"), None);
    }

    #[test]
    fn declared_pointer_fields() {
        assert_eq!(
            base_of_member("\tstats = sig->stats;", "stats").as_deref(),
            Some("sig")
        );
        assert_eq!(
            declared_struct_of("\tstruct signal_struct *sig = tsk->signal;", "sig").as_deref(),
            Some("signal_struct")
        );
        assert!(declares_pointer("struct taskstats *stats;", "stats"));
        assert!(declares_pointer(
            "void (*saved_data_ready)(struct sock *sk);",
            "saved_data_ready"
        ));
        assert!(!declares_pointer("unsigned long failcnt;", "failcnt"));
    }

    #[test]
    fn member_sizes_from_declarations() {
        assert_eq!(member_size("struct taskstats *stats;", "stats"), Some(8));
        assert_eq!(member_size("unsigned long failcnt;", "failcnt"), Some(8));
        assert_eq!(member_size("unsigned int flags;", "flags"), Some(4));
        assert_eq!(member_size("bool dead;", "dead"), Some(1));
        assert_eq!(
            member_size("u8 defer_qs_pending;", "defer_qs_pending"),
            Some(1)
        );
        assert_eq!(member_size("unsigned int x : 3;", "x"), None);
        assert_eq!(member_size("char name[16];", "name"), None);
        assert_eq!(member_size("struct list_head list;", "list"), None);
    }

    #[test]
    fn closing_comment_line_has_no_code() {
        assert_eq!(code_part("\t   we need adjust it */").trim(), "");
        assert_eq!(code_part("\t done */ x = 1;").trim(), "x = 1;");
        assert_eq!(code_part("a = 1; /* c */").trim(), "a = 1;");
    }
}
