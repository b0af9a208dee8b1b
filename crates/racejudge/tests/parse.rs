//! `racejudge parse` through the real binary: human output, `--json`, stdin, and exit codes on
//! bad input. Inputs are the report crate's fixtures (copies of real reports).

use std::path::PathBuf;

use crate::util::{racejudge, run_with_stdin};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../report/tests/fixtures")
        .join(name)
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn human_summary_names_title_accesses_frames_and_value_change() {
    let o = racejudge()
        .arg("parse")
        .arg(fixture("inline_frames.txt"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("KCSAN: data-race in drain_all_stock / drain_obj_stock\n"),
        "{out}"
    );
    assert!(
        out.contains("access 1: write of 8 bytes at 0xffff888237c2a2f8 by task 19625 on cpu 0"),
        "{out}"
    );
    assert!(out.contains("access 2: read of 8 bytes"), "{out}");
    assert!(
        out.contains("first interesting frame: drain_obj_stock+0x408/0x4e0 mm/memcontrol.c:3306"),
        "{out}"
    );
    assert!(
        out.contains(
            "first interesting frame: obj_stock_flush_required mm/memcontrol.c:3319 [inline]"
        ),
        "{out}"
    );
    assert!(
        out.contains("value changed: 0xffff8881382d52c0 -> 0xffff888138893740"),
        "{out}"
    );
    assert!(
        out.contains("kernel 6.3.0-rc2-syzkaller-00387-g534293368afa"),
        "{out}"
    );
    assert!(!out.contains("warning"), "{out}");
}

#[test]
fn human_summary_shows_warnings_for_a_cut_report() {
    let o = racejudge()
        .arg("parse")
        .arg(fixture("truncated_mid_stack.txt"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.contains("warning [truncated-stack]"), "{out}");
    assert!(out.contains("warning [missing-access]"), "{out}");
    assert!(out.contains("warning [no-footer]"), "{out}");
}

#[test]
fn json_output_is_one_document_with_every_report() {
    let o = racejudge()
        .args(["parse", "--json"])
        .arg(fixture("console_two_reports.txt"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    let reports = v["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(
        reports[0]["title"],
        "KCSAN: data-race in find_next_bit / rcu_report_exp_cpu_mult"
    );
    assert_eq!(reports[0]["accesses"][1]["context"]["kind"], "interrupt");
    assert_eq!(reports[0]["accesses"][0]["context"]["pid"], 1082);
    assert_eq!(
        reports[0]["accesses"][0]["stack"][0]["function"],
        "find_next_bit"
    );
    assert_eq!(
        reports[1]["title"],
        "KCSAN: data-race in netlink_recvmsg / netlink_recvmsg"
    );
    assert!(v["warnings"].as_array().unwrap().is_empty());
}

#[test]
fn reads_stdin_when_file_is_absent_or_dash() {
    let text = std::fs::read(fixture("reordered.txt")).unwrap();
    for args in [&["parse", "--json"][..], &["parse", "-", "--json"][..]] {
        let o = run_with_stdin(args, &text);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            v["reports"][0]["accesses"][1]["qualifiers"]["reordered"],
            true
        );
        assert_eq!(
            v["reports"][0]["accesses"][1]["reordered_to"]["offset"],
            0x40
        );
    }
}

#[test]
fn crlf_stdin_gives_the_same_json() {
    let text = std::fs::read_to_string(fixture("inline_frames.txt")).unwrap();
    let lf = run_with_stdin(&["parse", "--json"], text.as_bytes());
    let crlf = run_with_stdin(&["parse", "--json"], text.replace('\n', "\r\n").as_bytes());
    assert!(lf.status.success() && crlf.status.success());
    assert_eq!(lf.stdout, crlf.stdout);
}

#[test]
fn garbage_and_binary_input_exit_2_with_one_line_error() {
    let binary: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for input in [
        &b"just some text\nno report here\n"[..],
        &binary[..],
        &b""[..],
    ] {
        let o = run_with_stdin(&["parse"], input);
        assert_eq!(o.status.code(), Some(2));
        let err = stderr(&o);
        assert!(
            err.starts_with("error: no KCSAN report found in stdin"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn unreadable_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-report.txt");
    let o = racejudge().arg("parse").arg(&missing).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: cannot read ") && err.contains("no-such-report.txt"),
        "{err}"
    );
    // A directory is not a report either.
    let o = racejudge().arg("parse").arg(dir.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("error: cannot read "));
}

#[test]
fn help_describes_the_arguments() {
    let o = racejudge().args(["parse", "--help"]).output().unwrap();
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.contains("--json") && out.contains("[FILE]"), "{out}");
}
