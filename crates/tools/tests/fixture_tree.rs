//! Every tool on a small fixture tree (tests/fixtures/tree, copied to a temp dir), indexed by the
//! real `codeindex`. Expected line numbers are computed from the fixture files, not hard-coded.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use codeindex::{Index, IndexOptions, NoProgress};
use serde_json::{Value, json};
use tools::{ToolBox, ToolError, ToolOptions};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tree")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    tools: ToolBox,
}

fn fixture_with(options: ToolOptions) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    copy_dir(&fixture_dir(), &root);
    let (index, _) = Index::build(&root, &IndexOptions::default(), &NoProgress).unwrap();
    let tools = tools::toolbox_with(Arc::new(index), options);
    Fixture {
        _dir: dir,
        root,
        tools,
    }
}

fn fixture() -> Fixture {
    fixture_with(ToolOptions::default())
}

/// 1-based line of the first line of `file` containing `needle`.
fn line_of(root: &Path, file: &str, needle: &str) -> u32 {
    let text = std::fs::read_to_string(root.join(file)).unwrap();
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {file}")) as u32
        + 1
}

fn call(f: &Fixture, tool: &str, args: Value) -> Value {
    f.tools
        .call(tool, &args)
        .unwrap_or_else(|e| panic!("{tool} {args}: {e}"))
}

fn call_err(f: &Fixture, tool: &str, args: Value) -> ToolError {
    match f.tools.call(tool, &args) {
        Ok(v) => panic!("{tool} {args} succeeded: {v}"),
        Err(e) => e,
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

#[test]
fn definition_source_shows_comment_and_numbered_body() {
    let f = fixture();
    let comment = line_of(&f.root, "net/socket.c", "No kernel lock held");
    let close = comment + 8;
    // Unknown extra args (IncludeLines, the old SourceFile) are accepted.
    let out = call(
        &f,
        "codesearch-definition-source",
        json!({"Name": "sock_poll", "ContextFile": "net/socket.c", "IncludeLines": true}),
    );
    assert_eq!(s(&out, "SourceFile"), "net/socket.c");
    assert_eq!(s(&out, "Kind"), "function");
    let code = s(&out, "SourceCode");
    assert!(
        code.starts_with(&format!(
            "{comment:4}:\t/* No kernel lock held - perfect */\n"
        )),
        "{code}"
    );
    assert!(
        code.contains(&format!(
            "{:4}:\tstatic int sock_poll(struct file *file, int wait)\n",
            comment + 1
        )),
        "{code}"
    );
    assert!(code.ends_with(&format!("{close:4}:\t}}\n")), "{code}");
}

#[test]
fn ambiguous_static_names_follow_the_context_file_and_list_candidates() {
    let f = fixture();
    for file in ["kernel/trace.c", "net/socket.c"] {
        let out = call(
            &f,
            "codesearch-definition-source",
            json!({"Name": "t_show", "ContextFile": file}),
        );
        assert_eq!(s(&out, "SourceFile"), file);
        let others = out["OtherCandidates"]
            .as_array()
            .expect("candidates listed");
        assert!(
            others.iter().any(|c| c["SourceFile"] != json!(file)),
            "{out}"
        );
    }
}

#[test]
fn missing_names_say_so_and_suggest_near_names() {
    let f = fixture();
    let err = call_err(
        &f,
        "codesearch-definition-source",
        json!({"Name": "sock_pol"}),
    );
    assert!(matches!(err, ToolError::NotFound(_)));
    let msg = err.to_string();
    assert!(
        msg.contains("requested entity does not exist: sock_pol"),
        "{msg}"
    );
    assert!(msg.contains("sock_poll"), "{msg}");
    assert!(err.is_caller_error());
}

#[test]
fn definition_comment_returns_kernel_doc_only() {
    let f = fixture();
    let out = call(
        &f,
        "codesearch-definition-comment",
        json!({"Name": "sock_set_file"}),
    );
    let comment = s(&out, "Comment");
    assert!(
        comment.contains("Called with the socket locked."),
        "{comment}"
    );
    assert!(!comment.contains("sock->file = file"), "{comment}");
    let out = call(
        &f,
        "codesearch-definition-comment",
        json!({"Name": "clcsock_user"}),
    );
    assert_eq!(s(&out, "Comment"), "");
    assert!(s(&out, "Note").contains("not commented"));
}

#[test]
fn file_index_lists_definitions_with_lines() {
    let f = fixture();
    let out = call(
        &f,
        "codesearch-file-index",
        json!({"SourceFile": "net/socket.c"}),
    );
    let entities = out["Entities"].as_array().unwrap();
    let find = |name: &str| {
        entities
            .iter()
            .find(|e| e["Name"] == json!(name))
            .unwrap_or_else(|| panic!("{name} missing: {out}"))
    };
    let poll = find("sock_poll");
    assert_eq!(poll["IsStatic"], json!(true));
    assert_eq!(
        poll["StartLine"],
        json!(line_of(&f.root, "net/socket.c", "static int sock_poll"))
    );
    assert_eq!(find("socket")["Kind"], json!("struct"));
    assert!(find("sock_set_file").get("IsStatic").is_none());
    let err = call_err(
        &f,
        "codesearch-file-index",
        json!({"SourceFile": "net/nope.c"}),
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn find_references_classifies_field_accesses() {
    let f = fixture();
    let out = call(
        &f,
        "codesearch-find-references",
        json!({"Name": "file::private_data"}),
    );
    let refs = out["References"].as_array().unwrap();
    let write = refs
        .iter()
        .find(|r| r["ReferencingEntityName"] == json!("sock_set_file"))
        .unwrap_or_else(|| panic!("no ref in sock_set_file: {out}"));
    assert_eq!(write["ReferenceKind"], json!("write"));
    assert_eq!(
        write["SourceLine"],
        json!(line_of(
            &f.root,
            "net/socket.c",
            "file->private_data = sock"
        ))
    );
    let read = refs
        .iter()
        .find(|r| r["ReferencingEntityName"] == json!("sock_poll"))
        .unwrap();
    assert_eq!(read["ReferenceKind"], json!("read"));
    assert_eq!(read["Marking"], json!("plain"));

    // Exact-type hits come first; a base whose type is unknown is labelled name-only.
    let labels: Vec<bool> = refs.iter().map(|r| r.get("NameOnly").is_some()).collect();
    assert!(
        labels.contains(&true),
        "lookup_thing()->private_data is name-only: {out}"
    );
    assert!(
        labels.windows(2).all(|w| w[0] <= w[1]),
        "exact first: {labels:?}"
    );
    let out = call(
        &f,
        "codesearch-find-references",
        json!({"Name": "socket::state", "IncludeSnippetLines": 1}),
    );
    let marked = out["References"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["Marking"] == json!("write_once"));
    let marked = marked.unwrap_or_else(|| panic!("no WRITE_ONCE: {out}"));
    assert!(s(marked, "SourceSnippet").contains("WRITE_ONCE(sock->state, 1);"));

    let out = call(
        &f,
        "codesearch-find-references",
        json!({"Name": "file::private_data", "SourceTreePrefix": "kernel"}),
    );
    for r in out["References"].as_array().unwrap() {
        assert!(s(r, "SourceFile").starts_with("kernel/"), "{r}");
    }
    let err = call_err(
        &f,
        "codesearch-find-references",
        json!({"Name": "no_such_struct::x"}),
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
}

fn field<'a>(out: &'a Value, name: &str) -> &'a Value {
    out["Fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["Name"] == json!(name))
        .unwrap_or_else(|| panic!("{name}: {out}"))
}

#[test]
fn struct_layout_without_config_stops_at_config_dependent_members() {
    let f = fixture();
    let out = call(
        &f,
        "codesearch-struct-layout",
        json!({"Name": "struct file", "ContextFile": "include/linux/fs.h"}),
    );
    let expect = [
        ("f_count", 0, 32),
        ("f_mode", 32, 32),
        ("f_op", 64, 64),
        ("private_data", 128, 64),
        ("f_path", 192, 128),
    ];
    for (name, off, size) in expect {
        let f = field(&out, name);
        assert_eq!(
            (f["OffsetBits"].as_u64(), f["SizeBits"].as_u64()),
            (Some(off), Some(size)),
            "{name}"
        );
    }
    assert_eq!(field(&out, "f_pipe")["Depth"], json!(1));
    assert!(
        field(&out, "f_security")["Unknown"]
            .as_str()
            .unwrap()
            .contains("CONFIG_SECURITY")
    );
    assert!(
        field(&out, "f_slots").get("OffsetBits").is_none(),
        "offset after an unknown member must not be guessed"
    );
    assert!(out.get("SizeBytes").is_none());
}

#[test]
fn struct_layout_with_config_and_field_offset() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join(".config");
    std::fs::write(&config, "CONFIG_SECURITY=y\n").unwrap();
    let f = fixture_with(ToolOptions::default().with_config_file(&config).unwrap());
    let out = call(
        &f,
        "codesearch-struct-layout",
        json!({"Name": "file", "FieldOffset": 32}),
    );
    assert_eq!(field(&out, "f_security")["OffsetBits"], json!(384));
    assert_eq!(field(&out, "f_slots")["OffsetBits"], json!(448));
    assert_eq!(field(&out, "f_slots")["SizeBits"], json!(256));
    assert_eq!(field(&out, "f_flags")["OffsetBits"], json!(704));
    assert_eq!(field(&out, "f_dirty")["OffsetBits"], json!(707));
    assert_eq!(out["SizeBytes"], json!(96));
    let paths: Vec<&str> = out["Covering"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| s(c, "Path"))
        .collect();
    assert_eq!(paths, ["f_path", "f_path.dentry"]);
    let err = call_err(&f, "codesearch-struct-layout", json!({"Name": "sock_poll"}));
    assert!(err.to_string().contains("not a struct/union"), "{err}");
}

#[test]
fn read_file_pages_numbered_lines() {
    let f = fixture();
    let first = line_of(&f.root, "net/socket.c", "No kernel lock held");
    let out = call(
        &f,
        "read-file",
        json!({"File": "net/socket.c", "FirstLine": first, "LineCount": 2}),
    );
    assert_eq!(
        s(&out, "Contents"),
        format!(
            "{first:4}:\t/* No kernel lock held - perfect */\n{:4}:\tstatic int sock_poll(struct file *file, int wait)\n",
            first + 1
        )
    );
    let err = call_err(
        &f,
        "read-file",
        json!({"File": "net/socket.c", "FirstLine": 10000, "LineCount": 1}),
    );
    assert!(
        err.to_string().contains("does not have line 10000"),
        "{err}"
    );
    let err = call_err(&f, "read-file", json!({"File": "net"}));
    assert!(err.to_string().contains("directory"), "{err}");
}

#[test]
fn read_file_rejects_line_numbers_it_cannot_honour_and_names_them_as_given() {
    let f = fixture();
    for (args, want) in [
        (
            json!({"File": "net/socket.c", "LineCount": 0}),
            "LineCount must be at least 1",
        ),
        (json!({"File": "net/socket.c", "LineCount": -1}), "got -1"),
        (
            json!({"File": "net/socket.c", "FirstLine": 0}),
            "FirstLine is 1-based",
        ),
        (
            json!({"File": "net/socket.c", "FirstLine": 99_999_999_999_i64}),
            "does not have line 99999999999",
        ),
    ] {
        let err = call_err(&f, "read-file", args.clone());
        assert!(err.to_string().contains(want), "{args}: {err}");
    }
}

#[test]
fn non_regular_files_in_the_tree_are_refused_not_read() {
    let f = fixture();
    let made = std::process::Command::new("mkfifo")
        .arg(f.root.join("net/pipe.c"))
        .status()
        .unwrap();
    assert!(made.success());
    // Before the fix this call blocked forever on the FIFO's open.
    let err = call_err(&f, "read-file", json!({"File": "net/pipe.c"}));
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn a_tool_past_its_deadline_answers_with_a_timeout() {
    struct Stuck;
    impl tools::Tool for Stuck {
        fn spec(&self) -> tools::ToolSpec {
            tools::ToolSpec {
                name: "stuck",
                description: "never answers in time",
                input_schema: json!({"type": "object"}),
                output_schema: json!({"type": "object"}),
            }
        }
        fn execute(&self, _: &Value) -> Result<Value, ToolError> {
            std::thread::sleep(std::time::Duration::from_secs(30));
            Ok(json!({}))
        }
    }
    let tools = ToolBox::new()
        .with(Arc::new(Stuck))
        .with_timeout(Some(std::time::Duration::from_millis(50)));
    let started = std::time::Instant::now();
    let err = tools.call("stuck", &json!({})).unwrap_err();
    assert!(matches!(err, ToolError::TimedOut { .. }), "{err}");
    assert!(err.to_string().contains("deadline"), "{err}");
    // Generous bound: the point is "not 30 s", not a timing measurement.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn a_file_that_is_not_a_kernel_config_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("empty", "", "no CONFIG_ entries"),
        (
            "prose",
            "hello world\n",
            "line 1 is not a CONFIG_NAME=value line",
        ),
        ("binary", "\u{0}\u{1}CONFIG_X=y", "line 1"),
    ];
    for (name, text, want) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let err = ToolOptions::default().with_config_file(&path).unwrap_err();
        assert!(err.to_string().contains(want), "{name}: {err}");
    }
    let err = ToolOptions::default()
        .with_config_file(Path::new("/dev/null"))
        .unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    let good = dir.path().join("good");
    std::fs::write(&good, "# comment\nCONFIG_SMP=y\n# CONFIG_X is not set\n").unwrap();
    ToolOptions::default().with_config_file(&good).unwrap();
}

#[test]
fn dir_index_lists_subdirs_and_files() {
    let f = fixture();
    let out = call(&f, "codesearch-dir-index", json!({"Dir": ""}));
    assert_eq!(out["Subdirs"], json!(["include", "kernel", "net"]));
    let out = call(&f, "codesearch-dir-index", json!({"Dir": "net/"}));
    let files = out["Files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["Name"], json!("socket.c"));
    assert!(files[0]["Definitions"].as_u64().unwrap() >= 4, "{out}");
    let err = call_err(&f, "codesearch-dir-index", json!({"Dir": "net/socket.c"}));
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn grepper_finds_every_match_with_enclosing_function() {
    let f = fixture();
    let mut want = 0;
    let mut want_files = 0;
    for file in ["include/linux/fs.h", "kernel/trace.c", "net/socket.c"] {
        let n = std::fs::read_to_string(f.root.join(file))
            .unwrap()
            .lines()
            .filter(|l| l.contains("private_data"))
            .count();
        want += n;
        want_files += usize::from(n > 0);
    }
    let out = call(&f, "grepper", json!({"Expression": "private_data"}));
    assert_eq!(out["Matches"], json!(want));
    assert_eq!(out["Files"], json!(want_files));
    let text = s(&out, "Output");
    let write_line = line_of(&f.root, "net/socket.c", "file->private_data = sock");
    assert!(
        text.contains(&format!(
            "net/socket.c:{write_line}:\tfile->private_data = sock;"
        )),
        "{text}"
    );
    assert!(text.contains("=function sock_set_file"), "{text}");
    let out = call(
        &f,
        "grepper",
        json!({"Expression": "private_data", "PathPrefix": "net/"}),
    );
    assert!(!s(&out, "Output").contains("kernel/"), "{out}");
    let err = call_err(&f, "grepper", json!({"Expression": "(unclosed"}));
    assert!(matches!(err, ToolError::BadArguments { .. }), "{err}");
    let out = call(
        &f,
        "grepper",
        json!({"Expression": "no_such_text_anywhere"}),
    );
    assert_eq!(out["Matches"], json!(0));
    assert!(s(&out, "Note").contains("no matches"));
}

#[test]
fn function_at_line_names_the_enclosing_function() {
    let f = fixture();
    let line = line_of(&f.root, "net/socket.c", "return sock->state | wait;");
    let out = call(
        &f,
        "codesearch-function-at-line",
        json!({"File": "net/socket.c", "Line": line}),
    );
    assert_eq!(s(&out, "Name"), "sock_poll");
    assert!(s(&out, "SourceCode").contains("return sock->state | wait;"));
    let err = call_err(
        &f,
        "codesearch-function-at-line",
        json!({"File": "net/socket.c", "Line": 99999}),
    );
    assert!(err.to_string().contains("does not have line"), "{err}");
}

#[test]
fn paths_never_escape_the_tree() {
    let f = fixture();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.c"), "int secret;\n").unwrap();
    std::os::unix::fs::symlink(outside.path(), f.root.join("evil")).unwrap();
    let cases = [
        ("read-file", json!({"File": "../tree/net/socket.c"})),
        ("read-file", json!({"File": "/etc/passwd"})),
        ("read-file", json!({"File": "evil/secret.c"})),
        ("codesearch-dir-index", json!({"Dir": "net/../.."})),
        ("codesearch-dir-index", json!({"Dir": "evil"})),
        (
            "codesearch-file-index",
            json!({"SourceFile": "evil/secret.c"}),
        ),
        (
            "codesearch-function-at-line",
            json!({"File": "/etc/passwd", "Line": 1}),
        ),
        ("grepper", json!({"Expression": "x", "PathPrefix": "../"})),
        (
            "codesearch-find-references",
            json!({"Name": "sock_poll", "SourceTreePrefix": "/etc"}),
        ),
        (
            "codesearch-definition-source",
            json!({"Name": "sock_poll", "ContextFile": "../x.c"}),
        ),
    ];
    for (tool, args) in cases {
        let err = call_err(&f, tool, args.clone());
        assert!(
            matches!(err, ToolError::PathEscape { .. }),
            "{tool} {args}: {err}"
        );
        assert!(err.to_string().contains("outside the kernel tree"), "{err}");
    }
}

#[test]
fn small_budgets_cut_results_and_say_how_to_narrow() {
    let f = fixture_with(ToolOptions {
        budget: 120,
        ..ToolOptions::default()
    });
    let out = call(
        &f,
        "read-file",
        json!({"File": "include/linux/fs.h", "FirstLine": 1, "LineCount": 40}),
    );
    assert!(s(&out, "Contents").len() <= 120);
    assert!(s(&out, "Note").contains("FirstLine="), "{out}");
    let out = call(&f, "grepper", json!({"Expression": "private_data|file"}));
    assert_eq!(out["Truncated"], json!(true));
    assert!(s(&out, "Note").contains("PathPrefix"), "{out}");
    let out = call(
        &f,
        "codesearch-definition-source",
        json!({"Name": "sock_set_file"}),
    );
    assert!(s(&out, "Note").contains("read-file"), "{out}");
}

#[test]
fn every_spec_has_flat_described_schemas() {
    for spec in tools::specs() {
        let text = spec.input_schema.to_string() + &spec.output_schema.to_string();
        assert!(
            !text.contains("$ref") && !text.contains("$defs"),
            "{}: {text}",
            spec.name
        );
        let props = spec.input_schema["properties"].as_object().unwrap();
        for (name, prop) in props {
            assert!(
                prop.get("description").is_some(),
                "{}.{name} has no description",
                spec.name
            );
        }
    }
    assert_eq!(tools::specs().len(), 9);
}

/// With a build directory (`assess --build`), the tools read its generated headers at their
/// tree paths — and still refuse a symlink that leaves the build directory.
#[test]
fn generated_headers_of_a_build_are_read_at_their_tree_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    copy_dir(&fixture_dir(), &root);
    let build = dir.path().join("build");
    std::fs::create_dir_all(build.join("include/generated")).unwrap();
    std::fs::create_dir_all(build.join("arch/x86/include/generated/asm")).unwrap();
    std::fs::write(
        build.join("include/generated/autoconf.h"),
        "/* generated */\n#define CONFIG_SMP 1\n#define CONFIG_NR_CPUS 64\n",
    )
    .unwrap();
    std::fs::write(
        build.join("arch/x86/include/generated/asm/unistd_64.h"),
        "#define __NR_read 0\n",
    )
    .unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.h"), "#define SECRET 1\n").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.h"),
        build.join("include/generated/evil.h"),
    )
    .unwrap();
    let opts = IndexOptions {
        build_dir: Some(build.clone()),
        ..IndexOptions::default()
    };
    let (index, _) = Index::build(&root, &opts, &NoProgress).unwrap();
    let f = Fixture {
        _dir: dir,
        root,
        tools: tools::toolbox_with(Arc::new(index), ToolOptions::default()),
    };

    let def = call(
        &f,
        "codesearch-definition-source",
        json!({"Name": "CONFIG_NR_CPUS"}),
    );
    assert_eq!(
        s(&def, "SourceFile"),
        "include/generated/autoconf.h",
        "{def}"
    );
    assert!(
        s(&def, "SourceCode").contains("#define CONFIG_NR_CPUS 64"),
        "{def}"
    );
    let read = call(
        &f,
        "read-file",
        json!({"File": "include/generated/autoconf.h", "FirstLine": 2, "LineCount": 1}),
    );
    assert!(s(&read, "Contents").contains("CONFIG_SMP 1"), "{read}");
    let grep = call(&f, "grepper", json!({"Expression": "__NR_read"}));
    assert!(
        s(&grep, "Output").contains("arch/x86/include/generated/asm/unistd_64.h"),
        "{grep}"
    );
    // The directories only the build has are listed where the tree's include paths put them.
    let include = call(&f, "codesearch-dir-index", json!({"Dir": "include"}));
    let subdirs: Vec<&str> = include["Subdirs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(subdirs, ["generated", "linux"], "{include}");
    let generated = call(
        &f,
        "codesearch-dir-index",
        json!({"Dir": "include/generated"}),
    );
    assert!(generated.to_string().contains("autoconf.h"), "{generated}");
    // A symlink out of the build directory is refused like one out of the tree.
    let err = call_err(&f, "read-file", json!({"File": "include/generated/evil.h"}));
    assert!(matches!(err, ToolError::PathEscape { .. }), "{err}");
}

/// A `static` function is its file's own: with that file as ContextFile, find-references shows
/// only its references there, and says so; without ContextFile, or for a `static inline` in a
/// header (shared by every includer), every same-named reference in the tree is shown.
#[test]
fn find_references_confines_a_static_to_its_context_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let files = [
        (
            "drivers/a.c",
            "static int helper(void)\n{\n\treturn 1;\n}\n\nint a_probe(void)\n{\n\treturn helper() + shared();\n}\n",
        ),
        (
            "drivers/b.c",
            "static int helper(void)\n{\n\treturn 2;\n}\n\nint b_probe(void)\n{\n\treturn helper() + shared();\n}\n",
        ),
        (
            "include/s.h",
            "static inline int shared(void)\n{\n\treturn 0;\n}\n",
        ),
    ];
    for (path, text) in files {
        std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
        std::fs::write(root.join(path), text).unwrap();
    }
    let (index, _) = Index::build(&root, &IndexOptions::default(), &NoProgress).unwrap();
    let f = Fixture {
        _dir: dir,
        root,
        tools: tools::toolbox_with(Arc::new(index), ToolOptions::default()),
    };
    let refs = |args: Value| -> (Vec<String>, Value) {
        let out = call(&f, "codesearch-find-references", args);
        let places = out["References"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{}:{}", s(r, "SourceFile"), r["SourceLine"]))
            .collect();
        (places, out)
    };

    let (scoped, out) = refs(json!({"Name": "helper", "ContextFile": "drivers/b.c"}));
    assert_eq!(scoped, ["drivers/b.c:8"], "{out}");
    assert_eq!(out["Total"], 1);
    assert!(s(&out, "Note").contains("static in drivers/b.c"), "{out}");

    let (all, out) = refs(json!({"Name": "helper"}));
    assert_eq!(all, ["drivers/a.c:8", "drivers/b.c:8"], "{out}");
    assert!(out.get("Note").is_none(), "{out}");

    let (shared, _) = refs(json!({"Name": "shared", "ContextFile": "drivers/a.c"}));
    assert_eq!(shared, ["drivers/a.c:8", "drivers/b.c:8"]);
}

/// One `.config` model: an option built as a module (`=m`) does not define its `CONFIG_` macro,
/// and the index (definition-source's Config) and the layout engine say so alike.
#[test]
fn struct_layout_and_definition_source_agree_on_a_module_option() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("include/linux")).unwrap();
    std::fs::write(
        root.join("include/linux/agree.h"),
        "#ifdef CONFIG_FOO\nint foo_only_global;\n#endif\n\
         struct agree {\n\tint a;\n#ifdef CONFIG_FOO\n\tint b;\n#endif\n\tint c;\n};\n",
    )
    .unwrap();
    let config = dir.path().join(".config");
    std::fs::write(&config, "CONFIG_FOO=m\n").unwrap();
    let options = IndexOptions {
        config: Some(config.clone()),
        ..IndexOptions::default()
    };
    let (index, _) = Index::build(&root, &options, &NoProgress).unwrap();
    let tools = tools::toolbox_with(
        Arc::new(index),
        ToolOptions::default().with_config_file(&config).unwrap(),
    );
    let def = tools
        .call(
            "codesearch-definition-source",
            &json!({"Name": "foo_only_global"}),
        )
        .unwrap();
    assert_eq!(def["Config"], json!("inactive"), "{def}");
    let layout = tools
        .call("codesearch-struct-layout", &json!({"Name": "agree"}))
        .unwrap();
    let names: Vec<&str> = layout["Fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "c"], "{layout}");
    assert_eq!(layout["SizeBytes"], json!(8));
}
