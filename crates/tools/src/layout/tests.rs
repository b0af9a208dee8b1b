//! Layouts checked against gcc: a fixture header is laid out by the engine, then a generated C
//! program prints gcc's `offsetof`/`sizeof` for every field the engine placed.

use std::fmt::Write;

use super::*;

const FIXTURE: &str = include_str!("../../tests/fixtures/layout/structs.h");

/// Serves every definition from the one fixture text (the parser picks the right one out).
struct FixtureSource {
    config: Option<KConfig>,
}

impl TypeSource for FixtureSource {
    fn record(&self, is_union: bool, name: &str) -> Option<Source> {
        let kw = if is_union { "union" } else { "struct" };
        let defined = FIXTURE.contains(&format!("{kw} {name} {{"))
            || FIXTURE.contains(&format!("__attribute__((aligned(16))) {name} {{"));
        defined.then(|| Source {
            text: FIXTURE.to_string(),
            first_line: 1,
            file: "structs.h".into(),
        })
    }
    fn typedef(&self, name: &str) -> Option<Source> {
        FIXTURE.contains(&format!("{name};")).then(|| Source {
            text: FIXTURE.to_string(),
            first_line: 1,
            file: "structs.h".into(),
        })
    }
    fn macro_text(&self, name: &str) -> Option<String> {
        FIXTURE.lines().find_map(|l| {
            let rest = l.strip_prefix("#define ")?;
            let (n, v) = rest.split_once(' ')?;
            (n == name).then(|| v.trim().to_string())
        })
    }
    fn kconfig(&self) -> Option<&KConfig> {
        self.config.as_ref()
    }
}

const RECORDS: &[(&str, bool)] = &[
    ("basic", false),
    ("nested", false),
    ("anon", false),
    ("bits", false),
    ("aligned_members", false),
    ("packed_one", false),
    ("cfg", false),
    ("mixed", true),
    ("whole_aligned", false),
];

fn named_fields(fields: &[FieldLayout], out: &mut Vec<FieldLayout>) {
    for f in fields {
        if !f.name.is_empty() && !f.bitfield {
            out.push(f.clone());
        }
        named_fields(&f.children, out);
    }
}

fn gcc_offsets(defines: &[&str], program: &str) -> Option<String> {
    if !testkit::program_or_skip("gcc", "layout against gcc") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("structs.h"), FIXTURE).unwrap();
    std::fs::write(dir.path().join("main.c"), program).unwrap();
    let exe = dir.path().join("main");
    let mut cmd = std::process::Command::new("gcc");
    cmd.arg("-g")
        .arg("-o")
        .arg(&exe)
        .arg(dir.path().join("main.c"));
    for d in defines {
        cmd.arg(format!("-D{d}"));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "gcc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = std::process::Command::new(&exe).output().unwrap();
    Some(String::from_utf8(run.stdout).unwrap())
}

fn check_against_gcc(defines: &[&str]) {
    let text: String = defines.iter().map(|d| format!("{d}=y\n")).collect();
    let config = KConfig::parse(text.as_bytes());
    let source = FixtureSource {
        config: Some(config),
    };
    let engine = Engine::new(&source);
    let mut program =
        String::from("#include <stdio.h>\n#include \"structs.h\"\nint main(void) {\n");
    let mut expected = String::new();
    for (name, is_union) in RECORDS {
        let kw = if *is_union { "union" } else { "struct" };
        let layout = engine.layout_named(*is_union, name).unwrap();
        let size = layout
            .size
            .unwrap_or_else(|| panic!("{kw} {name} size unknown: {:?}", layout.unknown));
        writeln!(
            program,
            "printf(\"{name} size %zu\\n\", sizeof({kw} {name}));"
        )
        .unwrap();
        writeln!(expected, "{name} size {size}").unwrap();
        let mut fields = Vec::new();
        named_fields(&layout.fields, &mut fields);
        assert!(!fields.is_empty(), "{kw} {name} has no fields");
        for f in fields {
            let off = f
                .offset_bits
                .unwrap_or_else(|| panic!("{name}.{} offset unknown: {:?}", f.name, f.unknown));
            writeln!(
                program,
                "printf(\"{name}.{0} %zu\\n\", offsetof({kw} {name}, {0}));",
                f.name
            )
            .unwrap();
            writeln!(expected, "{name}.{} {}", f.name, off / 8).unwrap();
        }
    }
    program.push_str("return 0;\n}\n");
    let Some(actual) = gcc_offsets(defines, &program) else {
        return;
    };
    assert_eq!(
        expected, actual,
        "engine (left) vs gcc (right), defines {defines:?}"
    );
}

#[test]
fn matches_gcc_without_options() {
    check_against_gcc(&[]);
}

#[test]
fn matches_gcc_with_options() {
    check_against_gcc(&["CONFIG_FEATURE_A", "CONFIG_DEBUG_LOCK"]);
    check_against_gcc(&["CONFIG_FEATURE_B"]);
}

#[test]
fn bitfield_offsets() {
    let source = FixtureSource {
        config: Some(KConfig::default()),
    };
    let engine = Engine::new(&source);
    let layout = engine.layout_named(false, "bits").unwrap();
    let got: Vec<(String, Option<u64>, Option<u64>)> = layout
        .fields
        .iter()
        .map(|f| (f.name.clone(), f.offset_bits, f.size_bits))
        .collect();
    // gcc: a,b share the first int; c is the next byte; d does not fit after c in that int.
    let want = [
        ("a", 0, 3),
        ("b", 3, 7),
        ("c", 16, 8),
        ("d", 32, 30),
        ("e", 64, 5),
        ("f", 128, 64),
    ];
    let want: Vec<(String, Option<u64>, Option<u64>)> = want
        .iter()
        .map(|(n, o, s)| (n.to_string(), Some(*o), Some(*s)))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn unknown_configuration_stops_offsets_instead_of_guessing() {
    let source = FixtureSource { config: None };
    let engine = Engine::new(&source);
    let layout = engine.layout_named(false, "cfg").unwrap();
    assert_eq!(layout.size, None);
    let head = &layout.fields[0];
    assert_eq!((head.name.as_str(), head.offset_bits), ("head", Some(0)));
    // my_lock_t's size and alignment depend on CONFIG_DEBUG_LOCK (gcc puts it at 4 or 8):
    // neither it nor anything after it gets a guessed offset.
    let lock = &layout.fields[1];
    assert_eq!(lock.offset_bits, None);
    assert_eq!(lock.size_bits, None);
    assert!(
        lock.unknown
            .as_deref()
            .unwrap_or("")
            .contains("CONFIG_DEBUG_LOCK"),
        "{lock:?}"
    );
    let tail = layout.fields.iter().find(|f| f.name == "tail").unwrap();
    assert_eq!(tail.offset_bits, None);
    assert!(layout.unknown.is_some());
}

/// The bug two config models made: `=m` counted as `=y` here while the index rightly treated
/// `#ifdef CONFIG_X` as false. One model now answers both.
#[test]
fn a_module_option_does_not_define_its_config_macro() {
    let config = KConfig::parse(b"CONFIG_A=y\nCONFIG_B=m\n");
    let source = FixtureSource {
        config: Some(config),
    };
    let engine = Engine::new(&source);
    use cexpr::Env;
    assert_eq!(engine.defined("CONFIG_A"), Tri::Yes);
    assert_eq!(engine.defined("CONFIG_B"), Tri::No);
    assert_eq!(engine.defined("CONFIG_B_MODULE"), Tri::Yes);
    assert_eq!(engine.config_test("IS_ENABLED", "CONFIG_B"), Tri::Yes);
    assert_eq!(engine.config_test("IS_BUILTIN", "CONFIG_B"), Tri::No);
    assert_eq!(engine.ident("CONFIG_B"), Some(0));
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    /// Serves one arbitrary text for every name.
    struct Junk(String);

    impl TypeSource for Junk {
        fn record(&self, _: bool, _: &str) -> Option<Source> {
            Some(Source {
                text: self.0.clone(),
                first_line: 1,
                file: "junk.h".into(),
            })
        }
        fn typedef(&self, name: &str) -> Option<Source> {
            self.record(false, name)
        }
        fn macro_text(&self, _: &str) -> Option<String> {
            Some(self.0.clone())
        }
        fn kconfig(&self) -> Option<&KConfig> {
            None
        }
    }

    const PIECES: &[&str] = &[
        "struct",
        "union",
        "enum",
        "typedef",
        "{",
        "}",
        ";",
        ",",
        "(",
        ")",
        "[",
        "]",
        "*",
        ":",
        "x",
        "y",
        "int",
        "unsigned",
        "long",
        "char",
        "u8",
        "__aligned(",
        "__packed",
        "#ifdef CONFIG_A\n",
        "#else\n",
        "#endif\n",
        "#if (X\n",
        "/*",
        "*/",
        "//",
        "\n",
        "DECLARE_BITMAP(",
        "struct_group(",
        "0",
        "64",
        "1 <<",
        "?",
        "-1",
        "\\\n",
        "\"",
        "'",
        "9999999999999999999",
        "__attribute__((",
        "aligned",
        "packed",
        "sizeof(",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Arbitrary C-like soup (macros expanding to themselves included) never panics or hangs.
        #[test]
        fn layout_never_panics(parts in proptest::collection::vec(0..PIECES.len(), 0..80)) {
            let text: String = parts.iter().map(|&i| PIECES[i]).collect::<Vec<_>>().join(" ");
            let source = Junk(text.clone());
            let engine = Engine::new(&source);
            let _ = engine.layout_named(false, "x");
            let _ = engine.layout_source(&Source { text, first_line: 1, file: "junk.h".into() }, "y");
        }

        #[test]
        fn expressions_never_panic(parts in proptest::collection::vec(0..PIECES.len(), 0..30)) {
            let text: String = parts.iter().map(|&i| PIECES[i]).collect::<Vec<_>>().join(" ");
            let _ = cexpr::eval_int(&text, &cexpr::tests::TestEnv);
            let _ = cexpr::eval_condition(&text, &cexpr::tests::TestEnv);
        }
    }
}
