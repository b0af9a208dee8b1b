//! Garbage in, no panic out: random token soups and byte soups through scanning, lookup and
//! reference queries.

mod common;

use codeindex::{Index, IndexOptions, NoProgress, RefQuery};

/// Deterministic xorshift so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

const PIECES: &[&str] = &[
    "struct",
    "union",
    "enum",
    "typedef",
    "static",
    "inline",
    "int",
    "x",
    "y",
    "f",
    "file",
    "private_data",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ";",
    ",",
    "=",
    "*",
    "&",
    "->",
    ".",
    "++",
    "|=",
    ":",
    "3",
    "\n",
    " ",
    "#if 0\n",
    "#ifdef CONFIG_A\n",
    "#else\n",
    "#elif X\n",
    "#endif\n",
    "#define M(a) \\\n {\n",
    "/*",
    "*/",
    "//",
    "\"",
    "'",
    "\\",
    "SYSCALL_DEFINE2(",
    "DEFINE_PER_CPU(",
    "READ_ONCE(",
    "container_of(",
    "__attribute__((",
];

#[test]
fn random_sources_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let dir = tempfile::tempdir().expect("tmp");
    for i in 0..300 {
        let n = (rng.next() % 200) as usize;
        let mut s = String::new();
        for _ in 0..n {
            s.push_str(rng.pick(PIECES));
            s.push(' ');
        }
        std::fs::write(dir.path().join(format!("f{i}.c")), s).expect("write");
    }
    // Raw bytes, including invalid UTF-8 and NULs.
    for i in 0..50 {
        let bytes: Vec<u8> = (0..(rng.next() % 500)).map(|_| rng.next() as u8).collect();
        std::fs::write(dir.path().join(format!("b{i}.h")), bytes).expect("write");
    }
    let (idx, st) = Index::build(dir.path(), &IndexOptions::default(), &NoProgress).expect("build");
    assert_eq!(st.files_total, 350);
    for name in [
        "x",
        "f",
        "file::private_data",
        "struct file",
        "y::x",
        "M",
        "__do_sys_x",
    ] {
        let _ = idx.lookup(name, Some("f1.c"));
        let _ = idx.similar_names(name, 5);
        idx.find_references(&RefQuery {
            name: name.into(),
            path_prefix: None,
            limit: 10,
        })
        .expect("query");
    }
    for f in idx.files().map(str::to_string).collect::<Vec<_>>() {
        for d in idx.definitions_in_file(&f) {
            let _ = idx.fields_of(&d);
            assert!(d.start_line <= d.end_line, "{d:?}");
        }
        let _ = idx.definition_at_line(&f, 3);
    }
}
