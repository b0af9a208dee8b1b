//! Integration tests on Debian's linux-source-6.12 tree, found the way
//! `scripts/fetch-kernel-source.sh` finds it. Skipped (with a message) when absent. One index is
//! shared by all tests via `OnceLock` and persisted in the racejudge cache, so the suite pays
//! for at most one cold build.

use std::sync::OnceLock;

use codeindex::{EntityKind, Index, IndexOptions, NoProgress, RefKind, RefQuery, Resolution};

fn index() -> Option<&'static Index> {
    static IDX: OnceLock<Option<Index>> = OnceLock::new();
    IDX.get_or_init(|| {
        let tree = testkit::kernel_tree_or_skip("codeindex real_tree")?;
        let cache = testkit::cache_root();
        let (idx, st) = Index::open(&tree, &IndexOptions::default(), &cache, &NoProgress)
            .expect("index the real tree");
        eprintln!("real tree index: {st:?}");
        Some(idx)
    })
    .as_ref()
}

#[test]
fn sock_poll_has_its_real_line_range() {
    let Some(idx) = index() else { return };
    let d = &idx.lookup("sock_poll", None)[0];
    assert_eq!(
        (d.file.as_str(), d.kind),
        ("net/socket.c", EntityKind::Function)
    );
    let src = std::fs::read_to_string(idx.root().join(&d.file)).expect("read");
    let lines: Vec<&str> = src.lines().collect();
    assert!(lines[d.start_line as usize - 1].contains("sock_poll(struct file *file"));
    assert_eq!(lines[d.end_line as usize - 1], "}");
    assert!(d.is_static);
    let (cs, ce) = d.comment.expect("comment");
    assert_eq!(ce + 1, d.start_line);
    assert!(lines[cs as usize - 1].contains("No kernel lock held"));
    assert_eq!(
        idx.definition_at_line("net/socket.c", d.start_line + 3)
            .map(|x| x.name),
        Some("sock_poll".into())
    );
}

#[test]
fn smc_switch_to_fallback_and_syscalls() {
    let Some(idx) = index() else { return };
    let smc = &idx.lookup("smc_switch_to_fallback", None)[0];
    assert_eq!(
        (smc.file.as_str(), smc.kind),
        ("net/smc/af_smc.c", EntityKind::Function)
    );
    let src = std::fs::read_to_string(idx.root().join("net/socket.c")).expect("read");
    let lines: Vec<&str> = src.lines().collect();
    for name in ["__x64_sys_sendmsg", "__do_sys_sendmsg", "sys_sendmsg"] {
        let d = &idx.lookup(name, None)[0];
        assert_eq!(d.file, "net/socket.c", "{name}");
        assert_eq!(d.generated_by.as_deref(), Some("SYSCALL_DEFINE3"));
        assert!(
            lines[d.start_line as usize - 1].starts_with("SYSCALL_DEFINE3(sendmsg"),
            "{name}"
        );
        assert_eq!(lines[d.end_line as usize - 1], "}");
    }
}

#[test]
fn struct_file_fields_and_references() {
    let Some(idx) = index() else { return };
    let f = &idx.lookup("struct file", None)[0];
    assert_eq!(f.file, "include/linux/fs.h");
    let fields = idx.fields_of(f);
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    for want in ["f_mode", "f_op", "private_data", "f_flags", "f_llist"] {
        assert!(names.contains(&want), "struct file lacks {want}: {names:?}");
    }
    assert_eq!(
        idx.lookup("file::private_data", None)[0].kind,
        EntityKind::Field
    );

    let r = idx
        .find_references(&RefQuery {
            name: "file::private_data".into(),
            path_prefix: None,
            limit: 0,
        })
        .expect("refs");
    assert!(r.total > 1000, "only {} references", r.total);
    let sock_poll_read = r
        .references
        .iter()
        .find(|x| x.file == "net/socket.c" && x.enclosing.as_deref() == Some("sock_poll"));
    let hit = sock_poll_read.expect("sock_poll reads file->private_data");
    assert_eq!(
        (hit.kind, hit.resolution),
        (RefKind::Read, Resolution::Exact)
    );
    let exact = r
        .references
        .iter()
        .filter(|x| x.resolution == Resolution::Exact)
        .count();
    assert!(
        exact * 2 > r.total,
        "most hits should resolve: {exact}/{}",
        r.total
    );
}

#[test]
fn counts_are_plausible() {
    let Some(idx) = index() else { return };
    let c = idx.counts();
    assert!(c.files > 59_000, "{c:?}");
    assert!(c.functions > 400_000, "{c:?}");
    assert!(
        c.structs > 50_000 && c.macros > 1_000_000 && c.fields > 300_000,
        "{c:?}"
    );
}

#[test]
fn round_two_misses_are_found() {
    let Some(idx) = index() else { return };
    // A `__`-prefixed tag after a comment that shows `struct {` layouts.
    let d = idx.lookup("struct __call_single_node", None);
    assert_eq!(
        d.first().map(|d| (d.file.as_str(), d.start_line)),
        Some(("include/linux/smp_types.h", 58))
    );
    let names: Vec<String> = idx.fields_of(&d[0]).into_iter().map(|f| f.name).collect();
    assert!(names.contains(&"u_flags".to_string()), "{names:?}");
    // `jiffies` is only declared `extern` (the linker script defines it): that declaration
    // beats raid6's userspace `#define jiffies`.
    let j = &idx.lookup("jiffies", None)[0];
    assert_eq!(
        (j.file.as_str(), j.kind, j.is_extern),
        ("include/linux/jiffies.h", EntityKind::GlobalVariable, true)
    );
    // Members inside `struct_group(headers, ...)` are fields of sk_buff.
    let p = &idx.lookup("sk_buff::protocol", None)[0];
    assert_eq!(p.file, "include/linux/skbuff.h");
    let skb = &idx.lookup("struct sk_buff", None)[0];
    let fields: Vec<String> = idx.fields_of(skb).into_iter().map(|f| f.name).collect();
    for f in ["headers", "protocol", "transport_header", "mac_header"] {
        assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
    }
}
