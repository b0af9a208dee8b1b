//! Reference classification on small fixtures.

mod common;

use codeindex::{Marking, RefKind, RefQuery, Resolution};
use common::index;

fn refs(fixture: &str, name: &str) -> Vec<String> {
    let (_d, idx) = index(fixture);
    let r = idx
        .find_references(&RefQuery {
            name: name.to_string(),
            path_prefix: None,
            limit: 0,
        })
        .expect("query");
    assert_eq!(r.total, r.references.len());
    r.references
        .iter()
        .map(|r| {
            format!(
                "{}:{} {:?} {:?} {:?} in {}",
                r.file,
                r.line,
                r.kind,
                r.marking,
                r.resolution,
                r.enclosing.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

const FIELDS: &str = r#"
struct file { void *private_data; unsigned int f_flags; };
struct other { void *private_data; };
struct holder { struct file *filp; };
struct file *global_file;

static int reader(struct file *file, int x)
{
	void *p = file->private_data;
	return READ_ONCE(file->private_data) != NULL;
}

static void writer(struct file *file, struct other *o)
{
	file->private_data = NULL;
	WRITE_ONCE(file->private_data, o);
	o->private_data = file;
	file->f_flags |= 1;
	file->f_flags++;
	--file->f_flags;
}

static void misc(struct holder *h, void *v, struct list_head *pos)
{
	void **pp = &h->filp->private_data;
	smp_store_release(&h->filp->private_data, v);
	data_race(global_file->private_data);
	rcu_assign_pointer(((struct file *)v)->private_data, v);
	container_of(pos, struct file, f_list)->private_data = v;
	unknown_thing(v)->private_data = v;
}

static const struct file init = { .private_data = NULL };
"#;

#[test]
fn field_accesses_are_classified_and_resolved() {
    let got = refs(FIELDS, "file::private_data");
    let want = [
        "a.c:9 Read Plain Exact in reader",
        "a.c:10 Read ReadOnce Exact in reader",
        "a.c:15 Write Plain Exact in writer",
        "a.c:16 Write WriteOnce Exact in writer",
        "a.c:25 AddressOf Plain Exact in misc",
        "a.c:26 Write StoreRelease Exact in misc",
        "a.c:27 Read DataRace Exact in misc",
        "a.c:28 Write Rcu Exact in misc",
        "a.c:29 Write Plain Exact in misc",
        "a.c:30 Write Plain NameOnly in misc",
    ];
    assert_eq!(got, want, "\n{}", got.join("\n"));
}

#[test]
fn read_modify_write_forms() {
    let got = refs(FIELDS, "struct file::f_flags");
    assert_eq!(
        got,
        [
            "a.c:18 ReadWrite Plain Exact in writer",
            "a.c:19 ReadWrite Plain Exact in writer",
            "a.c:20 ReadWrite Plain Exact in writer",
        ]
    );
}

#[test]
fn atomic_and_bit_helpers_mark_accesses() {
    let src = r#"
struct s { atomic_t cnt; unsigned long flags; struct s *next; };
void f(struct s *p)
{
	atomic_inc(&p->cnt);
	if (atomic_read(&p->cnt))
		set_bit(3, &p->flags);
	if (test_bit(1, &p->flags))
		atomic_set(&p->cnt, 0);
	p->next->flags = 0;
	x = rcu_dereference(p->next);
}
"#;
    assert_eq!(
        refs(src, "s::cnt"),
        [
            "a.c:5 ReadWrite Atomic Exact in f",
            "a.c:6 Read Atomic Exact in f",
            "a.c:9 Write Atomic Exact in f",
        ]
    );
    assert_eq!(
        refs(src, "s::flags"),
        [
            "a.c:7 ReadWrite Atomic Exact in f",
            "a.c:8 Read Atomic Exact in f",
            // p->next is declared `struct s *next`: resolved through the member chain.
            "a.c:10 Write Plain Exact in f",
        ]
    );
    assert_eq!(
        refs(src, "s::next"),
        ["a.c:10 Read Plain Exact in f", "a.c:11 Read Rcu Exact in f"]
    );
}

#[test]
fn function_calls_address_taken_and_definitions_skipped() {
    let src = r#"
//- a.c
static int sock_poll(int x);
static int sock_poll(int x)
{
	return x;
}
static int user(void)
{
	return sock_poll(1) + sock_poll (2);
}
static const struct ops o = { .poll = sock_poll, };
//- net/b.c
void g(void) { register_cb(sock_poll); }
"#;
    assert_eq!(
        refs(src, "sock_poll"),
        [
            "a.c:8 Call Plain Exact in user",
            "a.c:8 Call Plain Exact in user",
            "a.c:10 AddressTaken Plain Exact in -",
            "net/b.c:1 AddressTaken Plain Exact in g",
        ]
    );
    let (_d, idx) = index(src);
    let limited = idx
        .find_references(&RefQuery {
            name: "sock_poll".into(),
            path_prefix: Some("net/".into()),
            limit: 0,
        })
        .expect("query");
    assert_eq!(limited.total, 1);
    let one = idx
        .find_references(&RefQuery {
            name: "sock_poll".into(),
            path_prefix: None,
            limit: 1,
        })
        .expect("query");
    assert_eq!((one.total, one.references.len()), (4, 1));
    assert_eq!(
        one.references[0].line_text,
        "\treturn sock_poll(1) + sock_poll (2);"
    );
    assert_eq!(one.references[0].column, 9);
}

#[test]
fn globals_macros_and_types() {
    let src = r#"
#define MAGIC 7
struct thing { int a; };
int counter;
static void f(struct thing *t)
{
	counter++;
	counter = MAGIC;
	use(&counter, READ_ONCE(counter));
	struct thing local;
}
"#;
    assert_eq!(
        refs(src, "counter"),
        [
            "a.c:7 ReadWrite Plain Exact in f",
            "a.c:8 Write Plain Exact in f",
            "a.c:9 AddressOf Plain Exact in f",
            "a.c:9 Read ReadOnce Exact in f",
        ]
    );
    assert_eq!(refs(src, "MAGIC"), ["a.c:8 Use Plain Exact in f"]);
    let en = "enum e { E_ONE };\nint g(void) { return E_ONE; }\n";
    assert_eq!(refs(en, "E_ONE"), ["a.c:2 Use Plain Exact in g"]);
    assert_eq!(
        refs(src, "struct thing"),
        [
            "a.c:5 TypeUse Plain Exact in f",
            "a.c:10 TypeUse Plain Exact in f"
        ]
    );
}

#[test]
fn bad_queries_are_errors() {
    let (_d, idx) = index("int x;\n");
    for bad in ["", "a b", "::f", "r::", "a::b::c", "x; rm -rf"] {
        let e = idx.find_references(&RefQuery {
            name: bad.into(),
            path_prefix: None,
            limit: 0,
        });
        assert!(e.is_err(), "{bad:?} should be rejected");
    }
    let _ = (RefKind::Read, Marking::Plain, Resolution::Exact);
}

#[test]
fn only_functions_with_occurrences_are_lexed_yet_file_scope_types_resolve() {
    // The occurrences sit in the last function, so only its lines are lexed; the base's type
    // comes from a file-scope declaration far above it, and a `->` in an unrelated function
    // before it must not matter.
    let fx = r#"
struct file { void *private_data; };
struct other { void *private_data; };
static struct file *gfile;
static struct other *gother;

static void unrelated(void)
{
	gother->priv = 0;
}

static void *user(void)
{
	if (gfile->private_data)
		return gother->private_data;
	return 0;
}
//- b.c
struct file { void *private_data; };
/* private_data outside any function: the whole file is lexed */
static struct file *bf;
void g(void) { bf->private_data = 0; }
//- c.c
int private_data_len;
void h(void) { private_data_len = 1; }
"#;
    assert_eq!(
        refs(fx, "file::private_data"),
        [
            "a.c:14 Read Plain Exact in user",
            "b.c:4 Write Plain Exact in g"
        ]
    );
    assert_eq!(
        refs(fx, "other::private_data"),
        ["a.c:15 Read Plain Exact in user"]
    );
}

const TYPEDEFS: &str = r#"
typedef struct { int counter; } atomic_t;
typedef struct { int counter; } other_t;
struct foo { int counter; atomic_t refs; };
typedef struct foo foo_t;

static inline int a_read(const atomic_t *v)
{
	return smp_load_acquire(&(v)->counter);
}

static inline int o_read(other_t *o)
{
	return o->counter;
}

static int f_read(foo_t *f, struct foo *g)
{
	return f->counter + g->refs.counter;
}
"#;

/// A typedef of an anonymous record (the kernel's `atomic_t` style) resolves like `struct R`,
/// also through a parenthesised variable and a member declared with it; a typedef of a named
/// struct is not resolved, so its hit stays name-only instead of being dropped.
#[test]
fn typedef_records_and_parenthesised_bases_resolve() {
    assert_eq!(
        refs(TYPEDEFS, "atomic_t::counter"),
        [
            "a.c:9 Read LoadAcquire Exact in a_read",
            // `f` is a `foo_t`: unresolved, so kept as a possible hit.
            "a.c:19 Read Plain NameOnly in f_read",
            // `g->refs` is declared `atomic_t refs`.
            "a.c:19 Read Plain Exact in f_read",
        ]
    );
    assert_eq!(
        refs(TYPEDEFS, "foo::counter"),
        ["a.c:19 Read Plain NameOnly in f_read"]
    );
    // `(v)->counter` on an `atomic_t` is known not to be an `other_t` access: dropped.
    assert_eq!(
        refs(TYPEDEFS, "other_t::counter"),
        [
            "a.c:14 Read Plain Exact in o_read",
            "a.c:19 Read Plain NameOnly in f_read"
        ]
    );
}
