//! The single-line pieces of a report: the BUG title, access headers, `value changed:` and the
//! `Reported by` footer's CPU line. Grammar from kernel/kcsan/report.c (print_report,
//! get_access_type, get_thread_desc) and lib/dump_stack.c (dump_stack_print_info).

use crate::model::{AccessContext, Operation, Qualifiers, ReportKind, ReportedBy, ValueChange};

/// The BUG line's text after `BUG: KCSAN: `, broken down.
#[derive(Debug)]
pub(crate) struct Title {
    pub title: String,
    pub bug_line: String,
    pub counter: Option<u32>,
    pub kind: ReportKind,
    pub functions: Vec<String>,
}

/// Parses `data-race in A / B (2)` (the text after `BUG: KCSAN: `).
pub(crate) fn parse_title(text: &str) -> Title {
    let bug_line = text.trim().to_string();
    let (text, counter) = split_counter(&bug_line);
    let kind = if text.starts_with("assert: race") {
        ReportKind::AssertRace
    } else if text.starts_with("racing ") {
        ReportKind::RacingAccess
    } else {
        ReportKind::DataRace
    };
    // The kernel has printed `A / B` since v5.5; v5.3/5.4 printed `A and B`.
    let separator = if text.contains(" / ") { " / " } else { " and " };
    let functions: Vec<String> = match text.split_once(" in ") {
        Some((_, list)) => list
            .split(separator)
            .filter_map(|f| f.split_whitespace().next())
            .map(|f| f.split('+').next().unwrap_or(f).to_string())
            .filter(|f| !f.is_empty())
            .collect(),
        None => Vec::new(),
    };
    let title = match text.split_once(" in ") {
        Some((what, _)) if !functions.is_empty() => {
            format!("KCSAN: {what} in {}", functions.join(separator))
        }
        _ => format!("KCSAN: {text}"),
    };
    Title {
        title,
        bug_line: bug_line.clone(),
        counter,
        kind,
        functions,
    }
}

/// Splits syzbot's ` (N)` recurrence suffix off a title.
fn split_counter(text: &str) -> (&str, Option<u32>) {
    if let Some(body) = text.strip_suffix(')')
        && let Some(open) = body.rfind(" (")
    {
        let digits = &body[open + 2..];
        if !digits.is_empty() && digits.len() <= 4 && digits.bytes().all(|b| b.is_ascii_digit()) {
            return (&body[..open], digits.parse().ok());
        }
    }
    (text, None)
}

/// An access header: `read-write (marked) to 0xffff... of 4 bytes by task 5923 on cpu 1:`.
#[derive(Debug)]
pub(crate) struct Header {
    pub unknown_origin: bool,
    pub access_type: String,
    pub operation: Operation,
    pub qualifiers: Qualifiers,
    pub address: String,
    pub size: u64,
    pub context: AccessContext,
    pub who: String,
    pub cpu: Option<u32>,
}

const UNKNOWN_ORIGIN: &str = "race at unknown origin, with ";

/// Parses an access header; `None` when the line is not one.
pub(crate) fn parse_header(text: &str) -> Option<Header> {
    let (unknown_origin, text) = match text.strip_prefix(UNKNOWN_ORIGIN) {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let text = text.strip_suffix(':').unwrap_or(text);
    let (access_type, rest) = text.split_once(" to ")?;
    let (operation, qualifiers) = parse_access_type(access_type)?;
    let (addr, rest) = rest.split_once(" of ")?;
    let address = match addr.strip_prefix("0x") {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => addr,
        // Hand-edited reports elide the address: `write to ... of 4 bytes`.
        _ if matches!(addr, "..." | "?" | "…" | "<addr>" | "ADDR") => addr,
        _ => return None,
    };
    let (size, rest) = rest.split_once(" bytes by ")?;
    let size = size.parse().ok()?;
    let (who, cpu) = match rest.split_once(" on cpu ") {
        Some((who, cpu)) => (who, Some(cpu.trim().parse().ok()?)),
        None => (rest, None),
    };
    let who = who.trim();
    if who.is_empty() {
        return None;
    }
    let context = if who == "interrupt" {
        AccessContext::Interrupt
    } else {
        match who.strip_prefix("task ").map(str::parse::<u32>) {
            Some(Ok(pid)) => AccessContext::Task { pid },
            _ => AccessContext::Unknown,
        }
    };
    Some(Header {
        unknown_origin,
        access_type: access_type.to_string(),
        operation,
        qualifiers,
        address: address.to_string(),
        size,
        context,
        who: who.to_string(),
        cpu,
    })
}

/// True when `text` starts like an access header but did not parse: probably wrapped by a mailer.
pub(crate) fn looks_like_partial_header(text: &str) -> bool {
    let text = text.strip_prefix(UNKNOWN_ORIGIN).unwrap_or(text);
    match text.split_once(" to ") {
        Some((ty, rest)) => {
            parse_access_type(ty).is_some() && rest.starts_with("0x") && !text.ends_with(':')
        }
        None => false,
    }
}

/// Decodes get_access_type()'s strings, plus the older `atomic`/`scoped` wordings.
fn parse_access_type(ty: &str) -> Option<(Operation, Qualifiers)> {
    let mut q = Qualifiers::default();
    let (base, paren) = match ty.split_once(" (") {
        Some((base, paren)) => (base, Some(paren.strip_suffix(')')?)),
        None => (ty, None),
    };
    let mut base = base.trim();
    if let Some(rest) = base.strip_prefix("atomic ") {
        q.atomic = true;
        base = rest;
    }
    let op = match base {
        "read" => Operation::Read,
        "write" => Operation::Write,
        "read-write" => Operation::ReadWrite,
        // ASSERT_EXCLUSIVE_WRITER is a read-type check; ASSERT_EXCLUSIVE_ACCESS a write-type one.
        "assert no writes" => {
            q.assert = true;
            Operation::Read
        }
        "assert no accesses" => {
            q.assert = true;
            Operation::Write
        }
        _ => return None,
    };
    if let Some(paren) = paren {
        for word in paren.split(',').map(str::trim) {
            match word {
                "marked" => q.marked = true,
                "atomic" => q.atomic = true,
                "reordered" => q.reordered = true,
                "scoped" => q.scoped = true,
                _ => return None,
            }
        }
    }
    Some((op, q))
}

/// `value changed: 0x01 -> 0x02`.
pub(crate) fn parse_value_change(text: &str) -> Option<ValueChange> {
    let rest = text.strip_prefix("value changed:")?.trim();
    let (old, new) = rest.split_once(" -> ")?;
    Some(ValueChange {
        old: old.trim().to_string(),
        new: new.trim().to_string(),
        bits_changed: None,
        mask: None,
    })
}

/// ` bits changed: 0x.. with mask 0x..` → (bits, mask).
pub(crate) fn parse_bits_changed(text: &str) -> Option<(String, String)> {
    let rest = text.strip_prefix("bits changed:")?.trim();
    let (bits, mask) = rest.split_once(" with mask ")?;
    Some((bits.trim().to_string(), mask.trim().to_string()))
}

/// `CPU: 0 UID: 0 PID: 5528 Comm: syz.3.488 Not tainted 6.11.0-rc5 #0` into `out`. Returns false
/// when the line does not have that shape.
pub(crate) fn parse_cpu_line(text: &str, out: &mut ReportedBy) -> bool {
    let Some(rest) = text.strip_prefix("CPU: ") else {
        return false;
    };
    out.cpu_line = Some(text.to_string());
    let mut tokens = rest.split_whitespace();
    out.cpu = tokens.next().and_then(|t| t.parse().ok());
    let Some(pid_at) = rest.find("PID: ") else {
        return false;
    };
    let after_pid = &rest[pid_at + 5..];
    out.pid = after_pid
        .split_whitespace()
        .next()
        .and_then(|t| t.parse().ok());
    let Some(comm_at) = after_pid.find("Comm: ") else {
        return false;
    };
    let after_comm = &after_pid[comm_at + 6..];
    let (comm, tail) = if let Some(i) = after_comm.find(" Not tainted") {
        (&after_comm[..i], &after_comm[i + " Not tainted".len()..])
    } else if let Some(i) = after_comm.find(" Tainted: ") {
        let flags_and_rest = &after_comm[i + " Tainted: ".len()..];
        // Taint flags are single capital letters separated by padding; the release follows.
        let mut flags = Vec::new();
        let mut rest = flags_and_rest.trim_start();
        while let Some(tok) = rest.split_whitespace().next() {
            if tok.len() == 1 && tok.bytes().all(|b| b.is_ascii_uppercase()) {
                flags.push(tok);
                rest = rest[tok.len()..].trim_start();
            } else {
                break;
            }
        }
        out.taint = Some(flags.join(" "));
        (&after_comm[..i], rest)
    } else {
        // Hand-edited or very old footers drop the taint words: `Comm: x 6.1.111`.
        match after_comm.split_once(' ') {
            Some((comm, rest)) => (comm, rest),
            None => (after_comm, ""),
        }
    };
    out.comm = Some(comm.trim().to_string());
    let tail = tail.trim();
    let (release, build) = match tail.split_once(' ') {
        Some((r, b)) => (r, Some(b.trim())),
        None => (tail, None),
    };
    if !release.is_empty() {
        out.kernel_release = Some(release.to_string());
    }
    out.build = build.filter(|b| !b.is_empty()).map(str::to_string);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        let t = parse_title("data-race in drain_all_stock / drain_obj_stock (4)");
        assert_eq!(
            t.title,
            "KCSAN: data-race in drain_all_stock / drain_obj_stock"
        );
        assert_eq!(t.counter, Some(4));
        assert_eq!(t.functions, ["drain_all_stock", "drain_obj_stock"]);
        let t = parse_title("data-race in _find_next_bit+0x37/0xb0");
        assert_eq!(t.functions, ["_find_next_bit"]);
        assert_eq!(t.title, "KCSAN: data-race in _find_next_bit");
        assert_eq!(t.bug_line, "data-race in _find_next_bit+0x37/0xb0");
        assert_eq!(t.kind, ReportKind::DataRace);
        let t = parse_title("assert: race in test_thread / test_thread");
        assert_eq!(t.kind, ReportKind::AssertRace);
        assert_eq!(t.counter, None);
    }

    #[test]
    fn headers() {
        let h = parse_header(
            "read-write (marked, reordered) to 0xffff8881 of 4 bytes by task 5923 on cpu 1:",
        )
        .unwrap();
        assert_eq!(h.operation, Operation::ReadWrite);
        assert!(h.qualifiers.marked && h.qualifiers.reordered && !h.qualifiers.assert);
        assert_eq!(h.context, AccessContext::Task { pid: 5923 });
        assert_eq!((h.size, h.cpu), (4, Some(1)));
        assert_eq!(h.address, "0xffff8881");
        let h = parse_header("race at unknown origin, with assert no writes to 0xab of 8 bytes by interrupt on cpu 0:").unwrap();
        assert!(h.unknown_origin && h.qualifiers.assert);
        assert_eq!(h.operation, Operation::Read);
        assert_eq!(h.context, AccessContext::Interrupt);
        assert!(parse_header("read to 0xzz of 8 bytes by task 1 on cpu 0:").is_none());
        let h = parse_header("write to ... of 4 bytes by task ipvs_cfg:").unwrap();
        assert_eq!(
            (h.context, h.cpu, h.who.as_str()),
            (AccessContext::Unknown, None, "task ipvs_cfg")
        );
        assert!(parse_header("write to the list of 4 bytes by me").is_none());
        assert!(parse_header("wrote to 0xab of 8 bytes by task 1 on cpu 0:").is_none());
        assert!(looks_like_partial_header(
            "race at unknown origin, with read to 0xffff888b5a8bd00c of 4"
        ));
    }

    #[test]
    fn cpu_lines() {
        let mut r = ReportedBy::default();
        assert!(parse_cpu_line(
            "CPU: 0 UID: 0 PID: 5528 Comm: syz.3.488 Not tainted 6.11.0-rc5 #0",
            &mut r
        ));
        assert_eq!((r.cpu, r.pid), (Some(0), Some(5528)));
        assert_eq!(r.comm.as_deref(), Some("syz.3.488"));
        assert_eq!(r.kernel_release.as_deref(), Some("6.11.0-rc5"));
        assert_eq!(r.taint, None);
        let mut r = ReportedBy::default();
        assert!(parse_cpu_line(
            "CPU: 1 PID: 1 Comm: swapper/0 Tainted: G        W          5.5.0+ #1 PREEMPT",
            &mut r
        ));
        assert_eq!(r.taint.as_deref(), Some("G W"));
        assert_eq!(r.kernel_release.as_deref(), Some("5.5.0+"));
        assert_eq!(r.build.as_deref(), Some("#1 PREEMPT"));
    }

    #[test]
    fn value_changes() {
        let v = parse_value_change("value changed: 0x00000522 -> 0x00000528").unwrap();
        assert_eq!(
            (v.old.as_str(), v.new.as_str()),
            ("0x00000522", "0x00000528")
        );
        assert_eq!(
            parse_bits_changed("bits changed: 0x01 with mask 0x0f"),
            Some(("0x01".into(), "0x0f".into()))
        );
    }
}
