//! `racejudge index`: builds then reloads an index of a fixture tree; human and JSON output.

use serde_json::Value;

use crate::util::{json_ok, racejudge};

#[test]
fn index_builds_then_reloads_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("kernel")).unwrap();
    std::fs::write(
        tree.join("kernel/a.c"),
        "int a_func(void)\n{\n\treturn 1;\n}\n\nstruct a_struct { int x; };\n",
    )
    .unwrap();
    std::fs::write(
        tree.join("kernel/b.h"),
        "#define B_MACRO 2\nstatic inline int b_func(void) { return B_MACRO; }\n",
    )
    .unwrap();
    let run = |json: bool| {
        let mut cmd = racejudge();
        cmd.args(["index", "--kernel"])
            .arg(&tree)
            .env("RACEJUDGE_CACHE_DIR", dir.path().join("cache"));
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let first = run(true);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let doc: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(doc["stats"]["files_total"], 2);
    assert_eq!(doc["counts"]["functions"], 2, "{doc}");
    assert_eq!(doc["counts"]["structs"], 1, "{doc}");
    assert_eq!(doc["counts"]["macros"], 1, "{doc}");
    assert!(doc["wall_seconds"].as_f64().is_some());

    let second = run(false);
    assert!(second.status.success());
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(text.contains("2 total"), "{text}");
    assert!(text.contains("loaded from cache"), "{text}");
    assert!(text.contains("2 functions"), "{text}");
}

#[test]
fn index_of_a_missing_tree_exits_3() {
    let out = racejudge()
        .args(["index", "--kernel", "/nonexistent/tree"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tree"));
}

#[test]
fn index_with_a_missing_config_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = racejudge()
        .args(["index", "--kernel"])
        .arg(dir.path())
        .args(["--config", "/nonexistent/.config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
}

#[test]
fn index_with_a_missing_build_dir_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = racejudge()
        .args(["index", "--kernel"])
        .arg(dir.path())
        .args(["--build-dir", "/nonexistent/obj"])
        .env("RACEJUDGE_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--build-dir /nonexistent/obj"), "{err}");
}

/// `--build-dir`: the build's generated headers count as files of the tree, and `tool` reads
/// them at their tree paths.
#[test]
fn index_and_tool_with_a_build_dir_see_generated_headers() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let obj = dir.path().join("obj");
    std::fs::create_dir_all(tree.join("kernel")).unwrap();
    std::fs::write(tree.join("kernel/a.c"), "int a(void) { return 0; }\n").unwrap();
    std::fs::create_dir_all(obj.join("include/generated")).unwrap();
    std::fs::write(
        obj.join("include/generated/bounds.h"),
        "#define NR_PAGEFLAGS 23\n",
    )
    .unwrap();
    let out = racejudge()
        .args(["index", "--json", "--kernel"])
        .arg(&tree)
        .arg("--build-dir")
        .arg(&obj)
        .env("RACEJUDGE_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    let doc = json_ok(&out);
    assert_eq!(doc["stats"]["files_total"], 2, "{doc}");
    assert_eq!(doc["counts"]["macros"], 1, "{doc}");
    let out = racejudge()
        .args(["tool", "read-file", "--kernel"])
        .arg(&tree)
        .arg("--build-dir")
        .arg(&obj)
        .args(["--args", r#"{"File": "include/generated/bounds.h"}"#])
        .env("RACEJUDGE_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    let doc = json_ok(&out);
    assert!(
        doc["Contents"]
            .as_str()
            .unwrap()
            .contains("NR_PAGEFLAGS 23"),
        "{doc}"
    );
}

#[test]
fn bench_index_reports_every_measurement_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("fs")).unwrap();
    for i in 0..6 {
        let text = format!(
            "struct file {{ void *private_data; }};\nint f{i}(struct file *f)\n{{\n\treturn f->private_data != 0;\n}}\n"
        );
        std::fs::write(tree.join(format!("fs/f{i}.c")), text).unwrap();
    }
    let out = racejudge()
        .args([
            "bench",
            "index",
            "--json",
            "--no-ctags",
            "--names",
            "4",
            "--touch",
            "3",
            "--kernel",
        ])
        .arg(&tree)
        .output()
        .unwrap();
    let doc = json_ok(&out);
    assert_eq!(doc["files"], 6, "{doc}");
    assert_eq!(doc["reload_from_cache"], true, "{doc}");
    assert_eq!(doc["touched_files"], 3, "{doc}");
    assert_eq!(doc["refresh_files_indexed"], 3, "{doc}");
    assert_eq!(doc["definition_source_calls"], 4, "{doc}");
    assert_eq!(doc["definition_source_errors"], 0, "{doc}");
    assert!(
        doc["find_references_private_data_total"].as_u64().unwrap() >= 6,
        "{doc}"
    );
    assert!(doc["ctags_s"].is_null());
}
