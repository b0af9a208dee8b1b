//! Behaviour on the small fixtures in tests/fixtures (no ../shared needed): one test per input
//! shape the parser must handle.

use report::{AccessContext, FrameClass, Operation, ReportKind, WarningKind, parse};

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn kinds(r: &report::Report) -> Vec<WarningKind> {
    r.warnings.iter().map(|w| w.kind).collect()
}

#[test]
fn console_log_with_two_reports_and_noise() {
    let out = parse(&fixture("console_two_reports.txt"));
    assert_eq!(out.reports.len(), 2);
    assert!(out.warnings.is_empty());
    let (a, b) = (&out.reports[0], &out.reports[1]);
    assert_eq!(
        a.title,
        "KCSAN: data-race in find_next_bit / rcu_report_exp_cpu_mult"
    );
    assert_eq!(
        b.title,
        "KCSAN: data-race in netlink_recvmsg / netlink_recvmsg"
    );
    for r in [a, b] {
        assert_eq!(r.accesses.len(), 2);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert!(r.reported_by.is_some());
    }
    // The spans cover the `=====` lines and nothing of the noise around them.
    assert_eq!((a.span.start, a.span.end), (3, 34));
    assert_eq!(a.accesses[0].context, AccessContext::Task { pid: 1082 });
    assert_eq!(a.accesses[1].context, AccessContext::Interrupt);
    assert_eq!(a.accesses[0].kernel_thread(), Some(true));
    assert_eq!((a.accesses[1].cpu, a.accesses[1].size), (Some(4), 8));
    assert_eq!(a.accesses[1].address, "0xffffffff85a7f140");
    assert_eq!(a.accesses[0].stack[0].function, "find_next_bit");
    assert_eq!(a.accesses[0].stack.len(), 8);
    // worker/kthread plumbing is classified, so the first interesting frame is the racy code.
    let last = a.accesses[0].stack.last().unwrap();
    assert_eq!(
        (last.function.as_str(), last.class),
        ("ret_from_fork", FrameClass::Entry)
    );
}

#[test]
fn crlf_input_parses_exactly_like_lf() {
    for name in [
        "console_two_reports.txt",
        "inline_frames.txt",
        "reordered.txt",
    ] {
        let lf = fixture(name);
        let crlf = lf.replace('\n', "\r\n");
        assert_eq!(parse(&lf), parse(&crlf), "{name}");
    }
}

#[test]
fn inline_frames_value_change_and_footer() {
    let out = parse(&fixture("inline_frames.txt"));
    let r = &out.reports[0];
    assert_eq!(r.kind, ReportKind::DataRace);
    assert_eq!(r.title_functions, ["drain_all_stock", "drain_obj_stock"]);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let s = &r.accesses[0].stack;
    assert_eq!(s.len(), 22);
    let inline = &s[3];
    assert_eq!(inline.function, "memcg_slab_free_hook");
    assert!(inline.inline);
    assert_eq!(
        (inline.file.as_deref(), inline.line),
        (Some("mm/slab.h"), Some(587))
    );
    assert_eq!(s[0].offset, Some(0x408));
    assert_eq!(s[0].size, Some(0x4e0));
    assert_eq!(r.accesses[0].operation, Operation::Write);
    assert_eq!(r.accesses[0].kernel_thread(), Some(false));
    assert_eq!(r.accesses[1].operation, Operation::Read);
    let v = r.value_change.as_ref().unwrap();
    assert_eq!(v.old, "0xffff8881382d52c0");
    assert_eq!(v.new, "0xffff888138893740");
    let by = r.reported_by.as_ref().unwrap();
    assert_eq!((by.cpu, by.pid), (Some(1), Some(19632)));
    assert_eq!(by.comm.as_deref(), Some("syz-executor.0"));
    assert_eq!(by.taint, None);
    assert_eq!(
        by.kernel_release.as_deref(),
        Some("6.3.0-rc2-syzkaller-00387-g534293368afa")
    );
    assert!(
        by.hardware
            .as_deref()
            .unwrap()
            .starts_with("Google Google Compute Engine")
    );
    let firsts: Vec<_> = r
        .interesting_frames()
        .into_iter()
        .map(|f| f.unwrap().function.as_str())
        .collect();
    assert_eq!(firsts, ["drain_obj_stock", "obj_stock_flush_required"]);
}

#[test]
fn unknown_origin_arm64_with_bar_quoting() {
    let out = parse(&fixture("unknown_origin_arm64_bar_quoted.txt"));
    let r = &out.reports[0];
    assert_eq!(r.kind, ReportKind::DataRaceUnknownOrigin);
    assert_eq!(r.title, "KCSAN: data-race in el0_svc_common");
    assert_eq!(
        r.bug_line,
        "data-race in el0_svc_common+0x34/0x25c arch/arm64/kernel/syscall.c:96"
    );
    assert_eq!(r.accesses.len(), 1);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let frames: Vec<_> = r.accesses[0]
        .stack
        .iter()
        .map(|f| f.function.as_str())
        .collect();
    assert_eq!(
        frames,
        [
            "el0_svc_common",
            "do_el0_svc",
            "el0_svc",
            "el0_sync_handler",
            "el0_sync"
        ]
    );
    assert_eq!(
        r.reported_by.as_ref().unwrap().hardware.as_deref(),
        Some("linux,dummy-virt (DT)")
    );
}

#[test]
fn old_and_title_without_value_change() {
    let out = parse(&fixture("arm64_old_and_title.txt"));
    let r = &out.reports[0];
    assert_eq!(r.title_functions, ["multi_cpu_stop", "set_state"]);
    assert_eq!(r.title, "KCSAN: data-race in multi_cpu_stop and set_state");
    assert!(r.value_change.is_none());
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.accesses[1].stack.len(), 5);
}

#[test]
fn assert_race_with_gaps_and_no_footer() {
    let out = parse(&fixture("assert_quoted_gap.txt"));
    let r = &out.reports[0];
    assert_eq!(r.kind, ReportKind::AssertRace);
    let a = &r.accesses[1];
    assert!(a.qualifiers.assert);
    assert_eq!(a.operation, Operation::Read);
    assert_eq!(a.access_type, "assert no writes");
    let k = kinds(r);
    assert_eq!(k.iter().filter(|&&k| k == WarningKind::Gap).count(), 2);
    assert!(k.contains(&WarningKind::NoFooter));
    assert!(r.warnings.iter().all(|w| !w.message.is_empty()));
}

#[test]
fn module_frames_and_workqueue() {
    let out = parse(&fixture("module_frames_dmesg_t.txt"));
    let r = &out.reports[0];
    let f = r.accesses[0]
        .stack
        .iter()
        .find(|f| f.function == "ext4_filemap_fault")
        .unwrap();
    assert_eq!(f.module.as_deref(), Some("ext4"));
    let by = r.reported_by.as_ref().unwrap();
    assert_eq!(by.workqueue.as_deref(), Some("kblockd blk_mq_run_work_fn"));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn verbose_block_and_interleaved_console_lines() {
    let out = parse(&fixture("verbose_lockdep_interleaved.txt"));
    let r = &out.reports[0];
    assert_eq!(r.kind, ReportKind::DataRaceUnknownOrigin);
    let a = &r.accesses[0];
    assert_eq!(a.stack.len(), 20);
    let v = a.verbose.as_ref().unwrap();
    assert_eq!(v.locks_held, Some(2));
    assert_eq!(v.locks.len(), 2);
    let k = kinds(r);
    assert_eq!(
        k.iter()
            .filter(|&&k| k == WarningKind::InterleavedLine)
            .count(),
        2
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.message.contains("ata5: SATA link down"))
    );
}

#[test]
fn truncated_mid_stack_is_reported() {
    let out = parse(&fixture("truncated_mid_stack.txt"));
    let r = &out.reports[0];
    assert_eq!(r.accesses.len(), 1);
    assert_eq!(r.accesses[0].stack.len(), 10);
    let k = kinds(r);
    assert!(k.contains(&WarningKind::TruncatedStack), "{k:?}");
    assert!(k.contains(&WarningKind::MissingAccess), "{k:?}");
    assert!(k.contains(&WarningKind::NoFooter), "{k:?}");
    let t = r
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::TruncatedStack)
        .unwrap();
    assert!(t.message.contains("__dentry_kill"), "{}", t.message);
}

#[test]
fn reordered_access_and_bits_changed() {
    let out = parse(&fixture("reordered.txt"));
    let r = &out.reports[0];
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let a = &r.accesses[1];
    assert!(a.qualifiers.reordered && a.qualifiers.marked);
    assert_eq!(a.operation, Operation::ReadWrite);
    assert_eq!(a.stack.len(), 4);
    let to = a.reordered_to.as_ref().unwrap();
    assert_eq!(
        (to.function.as_str(), to.offset),
        ("test_kernel_wrong_memorder", Some(0x40))
    );
    let v = r.value_change.as_ref().unwrap();
    assert_eq!(v.bits_changed.as_deref(), Some("0x0000000000000002"));
    assert_eq!(v.mask.as_deref(), Some("0x0000000000000002"));
    let by = r.reported_by.as_ref().unwrap();
    assert_eq!(by.taint.as_deref(), Some("G W"));
    assert_eq!(by.extra, ["Tainted: [W]=WARN"]);
    assert_eq!(by.build.as_deref(), Some("#1 PREEMPT(voluntary)"));
}

#[test]
fn syzbot_counter_is_split_off() {
    let text = fixture("inline_frames.txt").replace("drain_obj_stock\n", "drain_obj_stock (4)\n");
    let r = &parse(&text).reports[0];
    assert_eq!(
        r.title,
        "KCSAN: data-race in drain_all_stock / drain_obj_stock"
    );
    assert_eq!(r.title_counter, Some(4));
    assert_eq!(
        r.full_title(),
        "KCSAN: data-race in drain_all_stock / drain_obj_stock (4)"
    );
}

#[test]
fn email_quoting_cut_mid_report() {
    let quoted: String = fixture("inline_frames.txt")
        .lines()
        .take(12)
        .map(|l| format!("> {l}\n"))
        .chain(["\nI think this is benign because...\n".to_string()])
        .collect();
    let r = &parse(&quoted).reports[0];
    let k = kinds(r);
    assert!(k.contains(&WarningKind::QuotingCut), "{k:?}");
    assert!(k.contains(&WarningKind::MissingAccess), "{k:?}");
}

#[test]
fn no_report_is_a_warning_not_an_error() {
    for text in [
        "",
        "hello\nworld",
        "\u{0}\u{1}\u{fffd}",
        "BUG: KASAN: use-after-free in foo",
    ] {
        let out = parse(text);
        assert!(out.reports.is_empty());
        assert_eq!(out.warnings.len(), 1);
        assert_eq!(out.warnings[0].kind, WarningKind::NoReport);
    }
}

#[test]
fn two_title_lines_for_one_race_make_one_report() {
    let text = "BUG: KCSAN: data-race in tcp_orphan_count_sum net/ipv4/tcp.c:2476 [inline]\n\
BUG: KCSAN: data-race in tcp_orphan_update+0x64/0x100 net/ipv4/tcp.c:2487\n\
\n\
race at unknown origin, with read to 0xffff9c63bbdac7a8 of 4 bytes by interrupt on cpu 2:\n\
 tcp_orphan_count_sum net/ipv4/tcp.c:2476 [inline]\n\
 tcp_orphan_update+0x64/0x100 net/ipv4/tcp.c:2487\n\
 call_timer_fn+0x33/0x210 kernel/time/timer.c:1414\n";
    let out = report::parse(text);
    assert_eq!(out.reports.len(), 1, "{:?}", out.reports);
    let r = &out.reports[0];
    assert_eq!(r.accesses.len(), 1);
    assert!(r.kind.is_unknown_origin());
    assert!(
        r.warnings
            .iter()
            .any(|w| w.message.contains("second BUG title line") && w.line == Some(1)),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_report_quoted_without_its_title_line_still_yields_its_accesses() {
    let text = "  write to 0xffff888237c2d4e0 of 4 bytes by task 15740 on cpu 1:\n\
   find_get_context\t\tkernel/events/core.c:4617\n\
   __do_sys_perf_event_open\tkernel/events/core.c:12097 [inline]\n\
   ...\n\
  read to 0xffff888237c2d4e0 of 4 bytes by task 15743 on cpu 0:\n\
   perf_unpin_context\t\tkernel/events/core.c:1525 [inline]\n\
   __do_sys_perf_event_open\tkernel/events/core.c:12328 [inline]\n";
    let out = report::parse(text);
    assert_eq!(out.reports.len(), 1);
    let r = &out.reports[0];
    assert_eq!(r.accesses.len(), 2);
    assert_eq!(
        r.full_title(),
        "KCSAN: data-race in find_get_context / perf_unpin_context"
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.message.contains("no \"BUG: KCSAN:\" title line")),
        "{:?}",
        r.warnings
    );
    // Prose with no access header is still "no report".
    assert!(report::parse("just some text\n").reports.is_empty());
}

#[test]
fn wrapped_lock_lines_are_rejoined_and_a_lock_count_that_disagrees_is_said() {
    // An 80-column mailer cut the held-lock lines, once inside `->`.
    let wrapped = "[ 1.0][T1] BUG: KCSAN: data-race in a / b\n\
[ 1.0][T1] \n\
[ 1.0][T1] write to 0xffff888100000000 of 8 bytes by task 1 on cpu 0:\n\
[ 1.0][T1]  a+0x1/0x2\n\
[ 1.0][T1] \n\
[ 1.0][T1] read to 0xffff888100000000 of 8 bytes by task 2 on cpu 1:\n\
[ 1.0][T1]  b+0x1/0x2\n\
[ 1.0][T1] \n\
[ 1.0][T1] 2 locks held by t/2:\n\
[ 1.0][T1]  #0: ffff99f9db4c0348 (&sb->s_type-\n\
>i_mutex_key#15){+.+.}, at: ext4_buffered_write_iter+0x65/0x210\n\
[ 1.0][T1]  #1: ffff99f5e7dfcf58 (jbd2_handle){++++}, at:\n\
start_this_handle+0x1c1/0x9d0\n";
    let out = report::parse(wrapped);
    let r = &out.reports[0];
    let verbose = r.accesses[1].verbose.as_ref().unwrap();
    assert_eq!(verbose.locks_held, Some(2));
    assert_eq!(verbose.locks.len(), 2, "{:?}", verbose.locks);
    assert!(
        verbose.locks[0].contains("(&sb->s_type->i_mutex_key#15)"),
        "{:?}",
        verbose.locks
    );
    assert!(verbose.locks[1].ends_with("start_this_handle+0x1c1/0x9d0"));
    assert!(
        !r.warnings
            .iter()
            .any(|w| w.message.contains("locks held but"))
    );

    // One lock line lost: the stated count no longer matches, and the parser says so.
    let lost = wrapped.replace("[ 1.0][T1]  #1: ffff99f5e7dfcf58 (jbd2_handle){++++}, at:\nstart_this_handle+0x1c1/0x9d0\n", "");
    let out = report::parse(&lost);
    assert!(
        out.reports[0]
            .warnings
            .iter()
            .any(|w| w.message == "access 2 says 2 locks held but 1 lock lines were read"),
        "{:?}",
        out.reports[0].warnings
    );
}
