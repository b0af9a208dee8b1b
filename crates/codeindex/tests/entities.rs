//! Entity recognition on small fixtures: one test per rule.

mod common;

use codeindex::{ConfigState, EntityKind, IndexOptions};
use common::{check, check_file, index, index_with, write_tree};

#[test]
fn functions_with_attributes_and_multiline_signatures() {
    check(
        r#"
// SPDX-License-Identifier: GPL-2.0
#include <linux/x.h>

/* Does things. */
static int __init
foo_init(void)
{
	return 0;
}

static inline __must_check
struct page *alloc_thing(struct foo *f,
			 unsigned int order)
{
	if (f) { return NULL; }
	return NULL;
}

int __weak arch_hook(void) { return 0; }

static noinline void __attribute__((unused)) quiet(int a)
	__acquires(&lock)
{
}
"#,
        "function foo_init 6-10 static comment 5-5
         function alloc_thing 12-18 static inline
         function arch_hook 20-20 weak
         function quiet 22-25 static",
    );
}

#[test]
fn comments_and_strings_containing_braces_do_not_confuse_scanning() {
    check(
        r#"
static const char *s = "{{{";
/* } */
static char c = '{';
// {
void after(void)
{
	const char *t = "}";
	char u = '}';
}
"#,
        "global_variable s 2-2 static
         global_variable c 4-4 static comment 3-3
         function after 6-10 comment 5-5",
    );
}

#[test]
fn prototypes_typedefs_and_globals() {
    check(
        r#"
extern int ext_count;
int counter;
static unsigned long flags __read_mostly = 3;
int a, *b, c[4];
void (*handler)(int) = NULL;
int do_thing(int x);
extern void ext_fn(void) __attribute__((noreturn));
typedef int (*cmp_fn_t)(const void *, const void *);
typedef unsigned long ulong_t;
typedef struct {
	int x;
	int y;
} point_t;
struct forward;
EXPORT_SYMBOL(do_thing);
"#,
        "global_variable ext_count 2-2 extern
         global_variable counter 3-3
         global_variable flags 4-4 static
         global_variable a 5-5
         global_variable b 5-5
         global_variable c 5-5
         global_variable handler 6-6
         prototype do_thing 7-7
         prototype ext_fn 8-8
         typedef cmp_fn_t 9-9
         typedef ulong_t 10-10
         typedef point_t 11-14",
    );
}

#[test]
fn typedef_struct_has_fields() {
    let (_d, idx) = index("typedef struct {\n\tint x;\n\tunsigned int flags : 3;\n} point_t;\n");
    let t = &idx.lookup("point_t", None)[0];
    assert_eq!(t.kind, EntityKind::Typedef);
    let f = idx.fields_of(t);
    let names: Vec<_> = f
        .iter()
        .map(|f| (f.name.as_str(), f.bitfield_width))
        .collect();
    assert_eq!(names, [("x", None), ("flags", Some(3))]);
    assert_eq!(f[1].decl, "unsigned int flags : 3");
    assert_eq!(idx.lookup("point_t::flags", None)[0].start_line, 3);
}

#[test]
fn structs_nested_anonymous_bitfields_and_function_pointers() {
    let fx = r#"
struct file_operations {
	struct module *owner;
	int (*open)(struct inode *, struct file *);
	__poll_t (*poll) (struct file *, struct poll_table_struct *);
};

struct outer {
	union {
		struct list_head list;
		struct {
			int a;
			int b : 4;
		};
	};
	struct inner {
		int deep;
	} in;
	union {
		int u1;
	} named;
	unsigned int flag1 : 1, flag2 : 2;
	DECLARE_BITMAP(mask, 64);
	struct foo *ptrs[8];
};
"#;
    let (_d, idx) = index(fx);
    let fops = &idx.lookup("struct file_operations", None)[0];
    assert_eq!((fops.start_line, fops.end_line), (2, 6));
    let names: Vec<String> = idx.fields_of(fops).into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["owner", "open", "poll"]);

    let outer = &idx.lookup("outer", None)[0];
    assert_eq!(outer.kind, EntityKind::Struct);
    let fields = idx.fields_of(outer);
    let got: Vec<(String, Vec<String>, Option<u32>)> = fields
        .iter()
        .map(|f| (f.name.clone(), f.anonymous_path.clone(), f.bitfield_width))
        .collect();
    let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        got,
        vec![
            ("list".into(), p(&["union@9"]), None),
            ("a".into(), p(&["union@9", "struct@11"]), None),
            ("b".into(), p(&["union@9", "struct@11"]), Some(4)),
            ("in".into(), p(&[]), None),
            ("named".into(), p(&[]), None),
            ("u1".into(), p(&["named"]), None),
            ("flag1".into(), p(&[]), Some(1)),
            ("flag2".into(), p(&[]), Some(2)),
            ("mask".into(), p(&[]), None),
            ("ptrs".into(), p(&[]), None),
        ]
    );
    // Members of anonymous members are addressed through the parent.
    assert_eq!(
        idx.lookup("outer::a", None)[0].parent.as_deref(),
        Some("outer")
    );
    assert_eq!(idx.lookup("struct outer::list", None)[0].start_line, 10);
    // The nested named struct is a record of its own.
    let inner = &idx.lookup("inner", None)[0];
    assert_eq!((inner.start_line, inner.end_line), (16, 18));
    assert_eq!(idx.fields_of(inner)[0].name, "deep");
}

#[test]
fn enums_and_enumerators() {
    check(
        r#"
enum state {
	ST_IDLE,
	ST_BUSY = 3,
	ST_MAX = (ST_BUSY + 1),
};
enum { ANON_A, ANON_B };
"#,
        "enum state 2-6
         enumerator ST_IDLE 3-3
         enumerator ST_BUSY 4-4
         enumerator ST_MAX 5-5
         enumerator ANON_A 7-7
         enumerator ANON_B 7-7",
    );
    let (_d, idx) = index("enum state { ST_IDLE };\n");
    assert_eq!(
        idx.lookup("ST_IDLE", None)[0].parent.as_deref(),
        Some("state")
    );
}

#[test]
fn syscall_and_other_generators() {
    check(
        r#"
SYSCALL_DEFINE3(sendmsg, int, fd, struct user_msghdr __user *, msg,
		unsigned int, flags)
{
	return __sys_sendmsg(fd, msg, flags, true);
}
COMPAT_SYSCALL_DEFINE1(foo, int, x)
{
	return 0;
}
BPF_CALL_2(bpf_thing, int, a, int, b)
{
	return a + b;
}
"#,
        "function __do_sys_sendmsg 2-6 by SYSCALL_DEFINE3
         function __se_sys_sendmsg 2-6 by SYSCALL_DEFINE3
         function __x64_sys_sendmsg 2-6 by SYSCALL_DEFINE3
         function __ia32_sys_sendmsg 2-6 by SYSCALL_DEFINE3
         function sys_sendmsg 2-6 by SYSCALL_DEFINE3
         function __do_compat_sys_foo 7-10 by COMPAT_SYSCALL_DEFINE1
         function __se_compat_sys_foo 7-10 by COMPAT_SYSCALL_DEFINE1
         function __ia32_compat_sys_foo 7-10 by COMPAT_SYSCALL_DEFINE1
         function __x64_compat_sys_foo 7-10 by COMPAT_SYSCALL_DEFINE1
         function compat_sys_foo 7-10 by COMPAT_SYSCALL_DEFINE1
         function bpf_thing 11-14 by BPF_CALL_2
         function ____bpf_thing 11-14 by BPF_CALL_2",
    );
}

#[test]
fn variable_generators() {
    check(
        r#"
static DEFINE_PER_CPU(struct rq, runqueues);
DEFINE_PER_CPU_SHARED_ALIGNED(int, cpu_number);
static DEFINE_MUTEX(big_lock);
DEFINE_SPINLOCK(slock);
static DEFINE_RAW_SPINLOCK(rlock);
static LIST_HEAD(all_things);
static DEFINE_IDR(my_idr);
DEFINE_XARRAY(my_xa);
static DECLARE_WAIT_QUEUE_HEAD(wq);
DEFINE_STATIC_KEY_FALSE(my_key);
static DEFINE_RWLOCK(rwl);
static DEFINE_SEMAPHORE(sem, 1);
DEFINE_SRCU(my_srcu);
"#,
        "global_variable runqueues 2-2 static by DEFINE_PER_CPU
         global_variable cpu_number 3-3 by DEFINE_PER_CPU_SHARED_ALIGNED
         global_variable big_lock 4-4 static by DEFINE_MUTEX
         global_variable slock 5-5 by DEFINE_SPINLOCK
         global_variable rlock 6-6 static by DEFINE_RAW_SPINLOCK
         global_variable all_things 7-7 static by LIST_HEAD
         global_variable my_idr 8-8 static by DEFINE_IDR
         global_variable my_xa 9-9 by DEFINE_XARRAY
         global_variable wq 10-10 static by DECLARE_WAIT_QUEUE_HEAD
         global_variable my_key 11-11 by DEFINE_STATIC_KEY_FALSE
         global_variable rwl 12-12 static by DEFINE_RWLOCK
         global_variable sem 13-13 static by DEFINE_SEMAPHORE
         global_variable my_srcu 14-14 by DEFINE_SRCU",
    );
}

#[test]
fn macros_object_function_like_and_multiline() {
    check_file(
        r#"
//- include/m.h
#ifndef _M_H
#define _M_H
/* The answer. */
#define ANSWER 42
#define MAX(a, b) \
	((a) > (b) ? \
	 (a) : (b))
#define EMPTY
#endif
"#,
        "include/m.h",
        "macro _M_H 2-2
         macro ANSWER 4-4 comment 3-3
         macro MAX 5-7
         macro EMPTY 8-8",
    );
}

#[test]
fn conditions_without_config_are_labelled() {
    check(
        r#"
#ifdef CONFIG_SMP
void smp_only(void) {}
#else
static inline void smp_only(void) {}
#endif
#if defined(CONFIG_A) && !IS_ENABLED(CONFIG_B)
int a_not_b;
#elif CONFIG_NR > 4
int big;
#endif
#if 0
void dead_code(void) {}
#endif
#ifndef CONFIG_X
void no_x(void) {}
#endif
"#,
        "function smp_only 3-3 [if CONFIG_SMP]
         function smp_only 5-5 static inline [if !CONFIG_SMP]
         global_variable a_not_b 8-8 [if defined(CONFIG_A) && !IS_ENABLED(CONFIG_B)]
         global_variable big 10-10 [if !(defined(CONFIG_A) && !IS_ENABLED(CONFIG_B)) && (CONFIG_NR > 4)]
         function no_x 16-16 [if !CONFIG_X]",
    );
    let (_d, idx) = index("#ifdef CONFIG_SMP\nvoid f(void) {}\n#endif\nvoid g(void) {}\n");
    assert_eq!(idx.lookup("f", None)[0].config_state, ConfigState::Unknown);
    assert_eq!(idx.lookup("g", None)[0].config_state, ConfigState::Active);
}

#[test]
fn conditions_with_config_are_evaluated_and_ranked() {
    let dir = write_tree(
        r#"
#ifdef CONFIG_SMP
void smp_only(void) {}
#else
static inline void smp_only(void) {}
#endif
#if IS_ENABLED(CONFIG_NET) && CONFIG_NR_CPUS >= 64
int net_big;
#endif
#if defined(CONFIG_X) || defined(SOME_ARCH_THING)
int x_or_arch;
#endif
"#,
    );
    let cfg = dir.path().join(".config");
    std::fs::write(
        &cfg,
        "CONFIG_NET=m\nCONFIG_NR_CPUS=64\n# CONFIG_SMP is not set\n",
    )
    .expect("write");
    let opts = IndexOptions {
        config: Some(cfg),
        ..IndexOptions::default()
    };
    let (idx, _) =
        codeindex::Index::build(dir.path(), &opts, &codeindex::NoProgress).expect("build");
    assert!(idx.has_config());
    let smp = idx.lookup("smp_only", None);
    // The #else stub is the active one and ranks first.
    assert_eq!(
        (smp[0].start_line, smp[0].config_state),
        (5, ConfigState::Active)
    );
    assert_eq!(
        (smp[1].start_line, smp[1].config_state),
        (3, ConfigState::Inactive)
    );
    assert_eq!(
        idx.lookup("net_big", None)[0].config_state,
        ConfigState::Active
    );
    assert_eq!(
        idx.lookup("x_or_arch", None)[0].config_state,
        ConfigState::Unknown
    );
}

#[test]
fn unbalanced_braces_in_if_branches_resynchronise() {
    check(
        r#"
void f(int a)
{
#ifdef CONFIG_A
	if (a) {
#else
	if (!a) {
#endif
		a++;
	}
}
void g(void) {}
"#,
        "function f 2-11 function g 12-12"
            .replace(" function", "\nfunction")
            .as_str(),
    );
}

#[test]
fn lookup_ranking_prefers_selected_arch_context_and_bodies() {
    let (_d, idx) = index_with(
        r#"
//- arch/arm64/include/asm/barrier.h
static inline void arch_thing(void) {}
//- arch/x86/include/asm/barrier.h
static inline void arch_thing(void) {}
//- include/linux/thing.h
void helper(void);
//- lib/helper.c
void helper(void) {}
//- tools/lib/helper.c
void helper(void) {}
//- net/core/a.c
static int local(void) { return 0; }
//- net/ipv4/b.c
static int local(void) { return 1; }
//- arch/arm64/kernel/only.c
void only_arm(void) {}
"#,
        &IndexOptions::default(),
    );
    let a = idx.lookup("arch_thing", None);
    assert_eq!(a[0].file, "arch/x86/include/asm/barrier.h");
    assert_eq!(a[0].arch.as_deref(), Some("x86"));
    assert_eq!(a[1].arch.as_deref(), Some("arm64"));
    let arm = IndexOptions {
        arch: "arm64".into(),
        ..IndexOptions::default()
    };
    let (_d2, idx2) = index_with(
        "//- arch/arm64/x.h\nvoid arch_thing(void) {}\n//- arch/x86/x.h\nvoid arch_thing(void) {}\n",
        &arm,
    );
    assert_eq!(idx2.lookup("arch_thing", None)[0].file, "arch/arm64/x.h");

    let h = idx.lookup("helper", None);
    assert_eq!(
        h.iter().map(|d| d.file.as_str()).collect::<Vec<_>>(),
        [
            "lib/helper.c",
            "include/linux/thing.h",
            "tools/lib/helper.c"
        ]
    );
    assert_eq!(h[1].kind, EntityKind::Prototype);
    assert_eq!(
        idx.lookup("local", Some("net/ipv4/b.c"))[0].file,
        "net/ipv4/b.c"
    );
    assert_eq!(
        idx.lookup("local", Some("net/core/x.c"))[0].file,
        "net/core/a.c"
    );
    // Another arch's definition is still returned, labelled, when it is the only one.
    let o = idx.lookup("only_arm", None);
    assert_eq!((o.len(), o[0].arch.as_deref()), (1, Some("arm64")));
}

#[test]
fn definition_at_line_and_similar_names() {
    let (_d, idx) = index(
        "struct s {\n\tint a;\n};\nstatic int sock_poll(int x)\n{\n\treturn x;\n}\n#define SOCK_MAGIC 1\n",
    );
    assert_eq!(
        idx.definition_at_line("a.c", 6).map(|d| d.name),
        Some("sock_poll".into())
    );
    assert_eq!(
        idx.definition_at_line("a.c", 2).map(|d| d.name),
        Some("s".into())
    );
    assert_eq!(
        idx.definition_at_line("a.c", 8).map(|d| d.name),
        Some("SOCK_MAGIC".into())
    );
    assert_eq!(idx.definition_at_line("a.c", 100), None);
    assert_eq!(idx.definition_at_line("nope.c", 1), None);
    assert_eq!(idx.similar_names("sock_pol", 3), ["sock_poll"]);
    assert!(idx.similar_names("zzzzzz", 3).is_empty());
}

#[test]
fn files_and_counts() {
    let (_d, idx) = index("//- b/x.c\nint x;\n//- a/y.h\n#define Y 1\n//- README\nnot c\n");
    assert_eq!(idx.files().collect::<Vec<_>>(), ["a/y.h", "b/x.c"]);
    assert!(idx.has_file("b/x.c") && !idx.has_file("README"));
    let c = idx.counts();
    assert_eq!((c.files, c.global_variables, c.macros), (2, 1, 1));
}

#[test]
fn bad_trees_are_errors_not_panics() {
    let err = codeindex::Index::build(
        std::path::Path::new("/nonexistent/tree"),
        &IndexOptions::default(),
        &codeindex::NoProgress,
    )
    .expect_err("missing tree");
    assert!(err.to_string().contains("does not exist"), "{err}");
    let f = tempfile::NamedTempFile::new().expect("tmp");
    let err = codeindex::Index::build(f.path(), &IndexOptions::default(), &codeindex::NoProgress)
        .expect_err("file");
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn multi_declarator_members_get_their_own_decl() {
    let (_d, idx) =
        index("struct m {\n\tunsigned int a : 1, b : 2;\n\tstruct list_head *p, q;\n};\n");
    let m = &idx.lookup("struct m", None)[0];
    let decls: Vec<(String, String)> = idx
        .fields_of(m)
        .into_iter()
        .map(|f| (f.name, f.decl))
        .collect();
    let want = [
        ("a", "unsigned int a : 1"),
        ("b", "unsigned int b : 2"),
        ("p", "struct list_head *p"),
        ("q", "struct list_head q"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(decls, want);
}

#[test]
fn paths_outside_the_tree_find_nothing() {
    let (_d, idx) = index("int x;\n");
    for p in ["../a.c", "/etc/passwd", "a.c/../../etc/passwd", ""] {
        assert!(idx.definitions_in_file(p).is_empty(), "{p}");
        assert!(!idx.has_file(p), "{p}");
        assert_eq!(idx.definition_at_line(p, 1), None, "{p}");
    }
}

#[test]
fn index_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<codeindex::Index>();
}

#[test]
fn globals_with_attributes_after_the_name() {
    check(
        "struct task_struct init_task __aligned(64) = {\n\t.x = 1,\n};\nstatic int counted __section(\".data\") __used;\n",
        "global_variable init_task 1-3
         global_variable counted 4-4 static",
    );
}

#[test]
fn macro_invocations_without_semicolon_do_not_extend_the_next_function() {
    check(
        "DEFINE_GUARD(mutex, struct mutex *, mutex_lock(_T), mutex_unlock(_T))\n\n/* doc */\nstatic int after_guard(void)\n{\n\treturn 0;\n}\n__printf(1, 2)\nint logf(const char *fmt, ...)\n{\n}\n",
        "function after_guard 4-7 static comment 3-3
         function logf 8-11",
    );
}

#[test]
fn dunder_tags_after_comments_with_braces_are_records() {
    // include/linux/smp_types.h: the tag starts with `__` (like attribute macros do) and the
    // comment before it shows `struct {` layouts.
    let fx = r#"
/*
 * CSD_TYPE_SYNC/ASYNC:
 *	struct {
 *		struct llist_node node;
 *	};
 */

struct __call_single_node {
	struct llist_node	llist;
	union {
		unsigned int	u_flags;
		atomic_t	a_flags;
	};
};

struct __packed packed_thing {
	int x;
};

union __aligned(8) __u_tag {
	int y;
};
"#;
    let (_d, idx) = index(fx);
    let d = idx.lookup("struct __call_single_node", None);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].start_line, d[0].end_line), (9, 15));
    let names: Vec<String> = idx.fields_of(&d[0]).into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["llist", "u_flags", "a_flags"]);
    let f = &idx.lookup("__call_single_node::u_flags", None)[0];
    assert_eq!((f.start_line, f.end_line), (12, 12));
    // Attribute words are still not taken for tags.
    assert_eq!(idx.lookup("struct packed_thing", None).len(), 1);
    assert!(idx.lookup("__packed", None).is_empty());
    assert_eq!(idx.lookup("union __u_tag", None).len(), 1);
}

#[test]
fn extern_variables_are_declarations_ranked_below_definitions() {
    let (_d, idx) = index(
        r#"
//- include/linux/jiffies.h
extern unsigned long volatile __cacheline_aligned_in_smp __jiffy_arch_data jiffies;
extern int counter, *other;
extern void (*hook)(int);
extern int ext_fn(void);
//- include/linux/raid/pq.h
#ifndef __KERNEL__
# define jiffies	raid6_jiffies()
#endif
//- kernel/counter.c
int counter;
"#,
    );
    let j = idx.lookup("jiffies", None);
    assert_eq!(j.len(), 2, "{j:?}");
    assert_eq!(
        (j[0].kind, j[0].file.as_str(), j[0].is_extern),
        (EntityKind::GlobalVariable, "include/linux/jiffies.h", true)
    );
    assert_eq!(j[1].kind, EntityKind::Macro);
    // A real definition beats the declaration, even from a header context.
    let c = idx.lookup("counter", Some("include/linux/jiffies.h"));
    assert_eq!(
        c.iter()
            .map(|d| (d.file.as_str(), d.is_extern))
            .collect::<Vec<_>>(),
        [
            ("kernel/counter.c", false),
            ("include/linux/jiffies.h", true)
        ]
    );
    assert!(idx.lookup("other", None)[0].is_extern);
    assert!(idx.lookup("hook", None)[0].is_extern);
    // Function declarations stay prototypes.
    let f = idx.lookup("ext_fn", None);
    assert_eq!((f[0].kind, f[0].is_extern), (EntityKind::Prototype, false));
}

#[test]
fn struct_group_members_are_fields_of_the_enclosing_record() {
    let fx = r#"
struct sk_buff_like {
	int before;
	struct_group(headers,
		__u8 proto;
		__u16 flags : 4, mode : 2;
		union {
			int a;
			long b;
		};
		struct {
			int c;
		} named;
	);
	struct_group_tagged(tcp_hdr_grp, hdr,
		__be16 source;
		__be16 dest;
	);
	__struct_group(/* no tag */, raw, __packed,
		u32 word;
	);
	int after;
};
"#;
    let (_d, idx) = index(fx);
    let rec = &idx.lookup("struct sk_buff_like", None)[0];
    let fields = idx.fields_of(rec);
    let got: Vec<(&str, Vec<&str>, Option<u32>)> = fields
        .iter()
        .map(|f| {
            (
                f.name.as_str(),
                f.anonymous_path.iter().map(String::as_str).collect(),
                f.bitfield_width,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("before", vec![], None),
            ("proto", vec![], None),
            ("flags", vec![], Some(4)),
            ("mode", vec![], Some(2)),
            ("a", vec!["union@7"], None),
            ("b", vec!["union@7"], None),
            ("named", vec![], None),
            ("c", vec!["named"], None),
            ("headers", vec![], None),
            ("source", vec![], None),
            ("dest", vec![], None),
            ("hdr", vec![], None),
            ("word", vec![], None),
            ("raw", vec![], None),
            ("after", vec![], None),
        ]
    );
    let hdr = fields
        .iter()
        .find(|f| f.name == "hdr")
        .map(|f| f.decl.as_str());
    assert_eq!(hdr, Some("struct tcp_hdr_grp hdr"));
    let proto = fields
        .iter()
        .find(|f| f.name == "proto")
        .map(|f| f.decl.as_str());
    assert_eq!(proto, Some("__u8 proto"));
    let d = idx.lookup("sk_buff_like::dest", None);
    assert_eq!(
        (d[0].start_line, d[0].parent.as_deref()),
        (17, Some("sk_buff_like"))
    );
    assert_eq!(idx.lookup("sk_buff_like::headers", None)[0].start_line, 4);
}
