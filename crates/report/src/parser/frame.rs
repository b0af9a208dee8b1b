//! Stack-frame lines and their classification.
//!
//! Accepted shapes (after the console prefix is gone):
//! `func+0x4ea/0x7e0`, `func+0x4ea/0x7e0 [ext4]`, `func+0x4ea/0x7e0 mm/x.c:12`, `func mm/x.h:3 [inline]`,
//! `func+0x1/0x2 mm/x.c:12:7`, `? func+0x1/0x2` (unreliable), and decode_stacktrace.sh's
//! `func (mm/x.h:3 mm/x.c:12)`. Anything else is not a frame, so the caller can warn about it.

use crate::model::{Frame, FrameClass};

/// Parses one trimmed line as a stack frame.
pub(crate) fn parse_frame(text: &str) -> Option<Frame> {
    let (unreliable, text) = strip_unreliable(text);
    let mut tokens = text.split_whitespace();
    let first = tokens.next()?;
    if tokens.next().is_none() && is_raw_address(first) {
        // powerpc and arm64 stacks end in addresses that have no symbol.
        return Some(symbol_only(first, unreliable, FrameClass::Unsymbolized));
    }
    let (function, offset, size) = split_symbol(first)?;
    let mut frame = Frame {
        offset,
        size,
        ..symbol_only(function, unreliable, classify(function))
    };
    let rest_str = text[first.len()..].trim();
    if rest_str.contains('(') {
        decode_stacktrace_tail(&mut frame, rest_str)?;
        return Some(frame);
    }
    let mut has_location = offset.is_some();
    let rest: Vec<&str> = rest_str.split_whitespace().collect();
    let mut i = 0;
    while i < rest.len() {
        let tok = rest[i];
        if tok == "[inline]" {
            frame.inline = true;
        } else if let Some(module) = tok.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            if !is_module_name(module) || frame.module.is_some() {
                return None;
            }
            frame.module = Some(module.to_string());
        } else if tok.starts_with('[') && frame.module.is_none() {
            // `[module build-id]`: module name, then a hex build id closing the bracket.
            let module = &tok[1..];
            let next = rest.get(i + 1)?;
            let id = next.strip_suffix(']')?;
            if !is_module_name(module) || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            frame.module = Some(module.to_string());
            i += 1;
        } else if frame.file.is_none() {
            set_location(&mut frame, tok)?;
            has_location = true;
        } else {
            return None;
        }
        i += 1;
    }
    // A bare identifier is too ambiguous (it could be any word in an email).
    if !has_location && !frame.inline {
        return None;
    }
    Some(frame)
}

/// decode_stacktrace.sh's tail: `[module] (a.h:1 (discriminator 2) b.c:2) module`. The last
/// location is this function's own line; earlier ones are inlined callees.
fn decode_stacktrace_tail(frame: &mut Frame, rest: &str) -> Option<()> {
    let open = rest.find('(')?;
    let close = rest.rfind(')')?;
    if close < open {
        return None;
    }
    for outside in [rest[..open].trim(), rest[close + 1..].trim()] {
        if outside.is_empty() {
            continue;
        }
        let module = outside
            .strip_prefix('[')
            .and_then(|m| m.strip_suffix(']'))
            .unwrap_or(outside);
        if !is_module_name(module) || frame.module.is_some() {
            return None;
        }
        frame.module = Some(module.to_string());
    }
    let mut found = false;
    for tok in rest[open + 1..close].split_whitespace() {
        let tok = tok.trim_matches(|c| c == '(' || c == ')');
        if let Some(file) = tok.strip_suffix(":?") {
            // addr2line could not find the line: the file is still useful.
            if file.contains(['.', '/']) {
                frame.file = Some(tree_relative(file).to_string());
                frame.line = None;
                frame.column = None;
                found = true;
            }
        } else if set_location(frame, tok).is_some() {
            found = true;
        }
    }
    found.then_some(())
}

/// True when a frame line opens a `(` group that continues on the next line.
pub(crate) fn needs_continuation(text: &str) -> bool {
    let Some(first) = text.split_whitespace().next() else {
        return false;
    };
    split_symbol(first).is_some()
        && text.bytes().filter(|&b| b == b'(').count() > text.bytes().filter(|&b| b == b')').count()
}

/// A line that is only a symbol (`do_exit`), accepted as a frame inside a stack.
pub(crate) fn parse_bare_symbol(text: &str) -> Option<Frame> {
    let (unreliable, text) = strip_unreliable(text);
    if !is_symbol(text) {
        return None;
    }
    Some(symbol_only(text, unreliable, classify(text)))
}

/// `? ` marks a frame the unwinder is unsure of; the rest of the line parses as usual.
fn strip_unreliable(text: &str) -> (bool, &str) {
    match text.strip_prefix("? ") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, text),
    }
}

/// A frame known by its symbol (or raw address) alone: no offset, module or location.
fn symbol_only(function: &str, unreliable: bool, class: FrameClass) -> Frame {
    Frame {
        function: function.to_string(),
        offset: None,
        size: None,
        module: None,
        file: None,
        line: None,
        column: None,
        inline: false,
        unreliable,
        class,
    }
}

fn is_raw_address(tok: &str) -> bool {
    tok.strip_prefix("0x")
        .is_some_and(|h| !h.is_empty() && h.len() <= 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An addr2line annotation a developer pasted under a frame: `f at mm/x.c:12` or
/// `(inlined by) f at mm/x.c:12`. Returns the function and the location token.
pub(crate) fn parse_addr2line(text: &str) -> Option<(&str, &str)> {
    let text = text.strip_prefix("(inlined by)").unwrap_or(text).trim();
    let (function, location) = text.split_once(" at ")?;
    let location = location.trim();
    (is_symbol(function.trim()) && !location.contains(' ') && location.contains(':'))
        .then_some((function.trim(), location))
}

/// Sets `frame`'s file and line from an addr2line location; false when it is not one.
pub(crate) fn apply_location(frame: &mut Frame, location: &str) -> bool {
    set_location(frame, location).is_some()
}

/// `func+0x1a/0x2b` → (`func`, 0x1a, 0x2b); `func` → (`func`, None, None).
fn split_symbol(tok: &str) -> Option<(&str, Option<u64>, Option<u64>)> {
    let (name, off, size) = match tok.split_once('+') {
        Some((name, rest)) => {
            let (off, size) = match rest.split_once('/') {
                Some((o, s)) => (hex(o)?, Some(hex(s)?)),
                None => (hex(rest)?, None),
            };
            (name, Some(off), size)
        }
        None => (tok, None, None),
    };
    is_symbol(name).then_some((name, off, size))
}

fn hex(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x")?;
    u64::from_str_radix(digits, 16).ok()
}

/// C identifiers plus the suffixes compilers append (`.isra.0`, `.cold`, `.constprop.0`).
fn is_symbol(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'$')
}

fn is_module_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `mm/x.c:12` or `mm/x.c:12:7` (a leading `./` is dropped).
fn set_location(frame: &mut Frame, tok: &str) -> Option<()> {
    let mut parts = tok.split(':');
    let file = parts.next()?;
    let line = parts.next()?;
    // Some symbolizers print `:-1` or `:?` when they know the file but not the line.
    let line = if line == "-1" || line == "?" {
        None
    } else {
        Some(line.parse::<u32>().ok()?)
    };
    let column = match parts.next() {
        Some(c) => Some(c.parse::<u32>().ok()?),
        None => None,
    };
    if parts.next().is_some() || file.is_empty() || !file.contains(['.', '/']) {
        return None;
    }
    frame.file = Some(tree_relative(file).to_string());
    frame.line = line;
    frame.column = column;
    Some(())
}

/// The kernel tree's top-level directories, to cut a build machine's absolute path down to a
/// tree-relative one.
const TOP_LEVEL_DIRS: &[&str] = &[
    "arch", "block", "certs", "crypto", "drivers", "fs", "include", "init", "io_uring", "ipc",
    "kernel", "lib", "mm", "net", "rust", "samples", "scripts", "security", "sound", "tools",
    "usr", "virt",
];

/// `./include/x.h` → `include/x.h`; `/home/u/linux/./fs/x.c` → `fs/x.c`;
/// `/home/u/src/linux/fs/btrfs/x.c` → `fs/btrfs/x.c`.
fn tree_relative(file: &str) -> &str {
    if let Some(rest) = file.strip_prefix("./") {
        return rest;
    }
    if !file.starts_with('/') {
        return file;
    }
    // decode_stacktrace.sh joins the tree root and `./path`: the part after `/./` is exact.
    if let Some(i) = file.rfind("/./") {
        return &file[i + 3..];
    }
    // Otherwise guess: `arch/` wins (arch/x86/kernel/... nests another top-level name); else
    // the rightmost top-level name not nested in another one (drivers/net, not net).
    let parts: Vec<(usize, &str)> = file
        .match_indices('/')
        .map(|(i, _)| i + 1)
        .map(|start| (start, file[start..].split('/').next().unwrap_or("")))
        .collect();
    let is_top = |name: &str| TOP_LEVEL_DIRS.contains(&name);
    let last_dir = parts.len().saturating_sub(1);
    let mut choice: Option<usize> = None;
    for (k, &(start, name)) in parts.iter().enumerate().take(last_dir) {
        let inside_arch = choice.is_some_and(|c| file[c..].starts_with("arch/"));
        if name == "arch" || (is_top(name) && !(k > 0 && is_top(parts[k - 1].1)) && !inside_arch) {
            choice = Some(start);
        }
    }
    choice.map_or(file, |start| &file[start..])
}

/// Entry, syscall, interrupt, worker and boot plumbing: present in most stacks, never the cause.
const ENTRY_FUNCTIONS: &[&str] = &[
    "do_syscall_64",
    "do_syscall_x64",
    "do_syscall_32_irqs_on",
    "do_int80_syscall_32",
    "x64_sys_call",
    "ia32_sys_call",
    "entry_SYSCALL_64",
    "entry_SYSCALL_64_after_hwframe",
    "entry_SYSENTER_compat_after_hwframe",
    "ret_from_fork",
    "ret_from_fork_asm",
    "kthread",
    "worker_thread",
    "process_one_work",
    "process_scheduled_works",
    "smpboot_thread_fn",
    "run_ksoftirqd",
    "handle_softirqs",
    "__do_softirq",
    "do_softirq",
    "__irq_exit_rcu",
    "irq_exit_rcu",
    "irq_exit",
    "invoke_softirq",
    "common_interrupt",
    "__common_interrupt",
    "asm_common_interrupt",
    "exc_page_fault",
    "asm_exc_page_fault",
    "syscall_exit_to_user_mode",
    "exit_to_user_mode_loop",
    "exit_to_user_mode_prepare",
    "do_idle",
    "cpu_startup_entry",
    "start_secondary",
    "rest_init",
    "start_kernel",
    "x86_64_start_kernel",
    "x86_64_start_reservations",
    "common_startup_64",
    "secondary_startup_64",
    "secondary_startup_64_no_verify",
    "invoke_syscall",
    "el0_svc_common",
    "do_el0_svc",
    "el0_svc",
    "el0t_64_sync_handler",
    "el0t_64_sync",
    "el0_svc_handler",
    "el0_sync",
    "el1h_64_irq",
    "el1h_64_irq_handler",
    "el1_interrupt",
    "el0_interrupt",
    "system_call_exception",
    "system_call_common",
    "system_call",
];

/// Prefixes of plumbing families (`__x64_sys_*` wrappers, sysvec entry stubs, `entry_*`).
const ENTRY_PREFIXES: &[&str] = &[
    "__x64_sys_",
    "__ia32_sys_",
    "__ia32_compat_sys_",
    "__arm64_sys_",
    "__arm64_compat_sys_",
    "asm_sysvec_",
    "sysvec_",
    "__sysvec_",
    "entry_",
    "ret_from_",
];

/// Classifies a function name, mirroring the kernel's own `get_stack_skipnr` for the runtime.
pub(crate) fn classify(function: &str) -> FrameClass {
    // The compiler's suffixes (`.isra.0`) do not change what the function is.
    let base = function.split('.').next().unwrap_or(function);
    if base.starts_with("__tsan_") || base.starts_with("tsan_") || base.ends_with("_once_size") {
        return FrameClass::Instrumentation;
    }
    let kcsan = base
        .strip_prefix("__kcsan_")
        .or_else(|| base.strip_prefix("kcsan_"));
    if let Some(rest) = kcsan {
        // kernel/kcsan/kcsan_test.c's functions are the code under test, as in report.c.
        if !rest.starts_with("test") {
            return FrameClass::KcsanRuntime;
        }
    }
    if ENTRY_FUNCTIONS.contains(&base) || ENTRY_PREFIXES.iter().any(|p| base.starts_with(p)) {
        return FrameClass::Entry;
    }
    FrameClass::Interesting
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbolized_frame_with_offset_and_location() {
        let f = parse_frame("drain_obj_stock+0x408/0x4e0 mm/memcontrol.c:3306").unwrap();
        assert_eq!(f.function, "drain_obj_stock");
        assert_eq!((f.offset, f.size), (Some(0x408), Some(0x4e0)));
        assert_eq!(f.file.as_deref(), Some("mm/memcontrol.c"));
        assert_eq!((f.line, f.column), (Some(3306), None));
        assert!(!f.inline);
    }

    #[test]
    fn inline_frame_and_column() {
        let f = parse_frame("memcg_slab_free_hook mm/slab.h:587:9 [inline]").unwrap();
        assert!(f.inline);
        assert_eq!(f.offset, None);
        assert_eq!(f.column, Some(9));
    }

    #[test]
    fn module_frames() {
        let f = parse_frame("pvscsi_isr+0x2c/0xe0 [vmw_pvscsi]").unwrap();
        assert_eq!(f.module.as_deref(), Some("vmw_pvscsi"));
        let f = parse_frame("ext4_foo+0x2c/0xe0 [ext4 0123abcd] fs/ext4/inode.c:5").unwrap();
        assert_eq!(f.module.as_deref(), Some("ext4"));
        assert_eq!(f.line, Some(5));
    }

    #[test]
    fn decode_stacktrace_format() {
        let f = parse_frame("call_rcu (kernel/rcu/rcu.h:227 kernel/rcu/tree.c:2719)").unwrap();
        assert_eq!(f.file.as_deref(), Some("kernel/rcu/tree.c"));
        assert_eq!(f.line, Some(2719));
        let f = parse_frame("__destroy_inode (./include/linux/fsnotify.h:222)").unwrap();
        assert_eq!(f.file.as_deref(), Some("include/linux/fsnotify.h"));
        let f =
            parse_frame("timekeeping_advance (kernel/time/timekeeping.c:2207 (discriminator 1))")
                .unwrap();
        assert_eq!(f.line, Some(2207));
        let f = parse_frame("finish_ordered_fn (/home/m/linux/fs/btrfs/ordered-data.c:304) btrfs")
            .unwrap();
        assert_eq!(f.module.as_deref(), Some("btrfs"));
        let f = parse_frame("scsi_complete (drivers/scsi/scsi_lib.c:?)").unwrap();
        assert_eq!(
            (f.file.as_deref(), f.line),
            (Some("drivers/scsi/scsi_lib.c"), None)
        );
        assert!(needs_continuation(
            "exc_page_fault (./arch/x86/include/asm/irqflags.h:37"
        ));
    }

    #[test]
    fn not_frames() {
        for line in [
            "value changed: 0x1 -> 0x2",
            "hello",
            "Reported by Kernel Concurrency Sanitizer on:",
            "This patch fixes it.",
            "...",
            "[...]",
            "foo+0xzz/0x10",
            "0x",
        ] {
            assert!(parse_frame(line).is_none(), "{line}");
        }
    }

    #[test]
    fn raw_addresses_and_unknown_lines() {
        let f = parse_frame("0xeedc7805").unwrap();
        assert_eq!(f.class, FrameClass::Unsymbolized);
        let f = parse_frame("io_poll_task_func+0x74e/0xa70 io_uring/poll.c:-1").unwrap();
        assert_eq!((f.file.as_deref(), f.line), (Some("io_uring/poll.c"), None));
        assert_eq!(
            parse_addr2line("(inlined by) lruvec_lru_size at mm/vmscan.c:326"),
            Some(("lruvec_lru_size", "mm/vmscan.c:326"))
        );
    }

    #[test]
    fn absolute_paths_become_tree_relative() {
        assert_eq!(
            tree_relative("/h/m/linux/kernel/torvalds2/fs/btrfs/inode.c"),
            "fs/btrfs/inode.c"
        );
        assert_eq!(
            tree_relative("/h/linux/kernel/torvalds2/./include/linux/spinlock.h"),
            "include/linux/spinlock.h"
        );
        assert_eq!(
            tree_relative("/src/linux/drivers/net/tun.c"),
            "drivers/net/tun.c"
        );
        assert_eq!(
            tree_relative("/src/linux/arch/x86/kernel/process.c"),
            "arch/x86/kernel/process.c"
        );
        assert_eq!(
            tree_relative("/src/linux/kernel/sched/core.c"),
            "kernel/sched/core.c"
        );
        assert_eq!(tree_relative("/nowhere/x.c"), "/nowhere/x.c");
        assert_eq!(tree_relative("mm/slab.h"), "mm/slab.h");
    }

    #[test]
    fn classification() {
        assert_eq!(classify("__tsan_read8"), FrameClass::Instrumentation);
        assert_eq!(classify("kcsan_setup_watchpoint"), FrameClass::KcsanRuntime);
        assert_eq!(classify("__kcsan_check_access"), FrameClass::KcsanRuntime);
        assert_eq!(classify("kcsan_test_thread"), FrameClass::Interesting);
        assert_eq!(classify("do_syscall_64"), FrameClass::Entry);
        assert_eq!(classify("__x64_sys_ioctl"), FrameClass::Entry);
        assert_eq!(
            classify("_nohz_idle_balance.isra.0"),
            FrameClass::Interesting
        );
    }
}
