//! The tools on Debian's linux-source-6.12 tree, replaying the seeds' tool calls: wherever the
//! seed's function text still appears verbatim in 6.12, our definition-source must return that
//! same text (line numbers may differ). Skips with a visible message when the tree or the seeds
//! are absent.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use codeindex::{Index, IndexOptions, NoProgress};
use serde_json::{Value, json};
use testkit::{cache_root, kernel_tree_or_skip};
use tools::{ToolBox, ToolOptions};

fn seeds_dir() -> Option<PathBuf> {
    let dir = testkit::shared_dir()
        .map(|s| s.join("seeds"))
        .filter(|d| d.is_dir());
    testkit::require(dir, "tools real_tree", "no seeds under ../shared/seeds")
}

/// One index for all tests of this binary (indexing the tree is the slow part).
fn index() -> Option<Arc<Index>> {
    static INDEX: OnceLock<Option<Arc<Index>>> = OnceLock::new();
    INDEX
        .get_or_init(|| {
            let tree = kernel_tree_or_skip("tools real_tree")?;
            let (index, _) =
                Index::open(&tree, &IndexOptions::default(), &cache_root(), &NoProgress)
                    .expect("index the real tree");
            Some(Arc::new(index))
        })
        .clone()
}

fn toolbox(options: ToolOptions) -> Option<ToolBox> {
    Some(tools::toolbox_with(index()?, options))
}

/// A `codesearch-definition-source` call recorded in a seed.
#[derive(Debug)]
struct SeedCall {
    seed: String,
    args: Value,
    /// The function text with the `%4d:\t` prefixes stripped; `None` for an error result.
    code: Option<Vec<String>>,
    source_file: Option<String>,
}

/// Parses `map[K:V K2:V2]` with space-free values (the seeds' Args).
fn parse_args_map(line: &str) -> Value {
    let inner = line.trim().trim_start_matches("map[").trim_end_matches(']');
    let mut obj = serde_json::Map::new();
    for pair in inner.split(' ') {
        if let Some((k, v)) = pair.split_once(':') {
            obj.insert(k.to_string(), json!(v));
        }
    }
    Value::Object(obj)
}

fn strip_number(line: &str) -> Option<String> {
    let (num, rest) = line.split_once(":\t")?;
    num.trim().parse::<u32>().ok()?;
    Some(rest.to_string())
}

fn seed_calls(dir: &Path) -> Vec<SeedCall> {
    let mut calls = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.ends_with("tool codesearch-definition-source") {
                continue;
            }
            // "0m Args:" (or, for an error, "0m Error:" / message / "Args:") then the map.
            let Some(a) = (i + 1..(i + 8).min(lines.len())).find(|&a| lines[a].ends_with("Args:"))
            else {
                continue;
            };
            let is_error = lines[i + 1..a].iter().any(|l| l.contains("Error:"));
            let Some(args_line) = lines.get(a + 1) else {
                continue;
            };
            let args = parse_args_map(args_line);
            let mut j = a + 2;
            while j < lines.len() && lines[j].trim().is_empty() {
                j += 1;
            }
            let mut code = None;
            let mut source_file = None;
            if lines.get(j).is_some_and(|l| l.starts_with("Results:")) {
                let first = lines.get(j + 1).copied().unwrap_or_default();
                if let Some(at) = first.find("SourceCode:") {
                    let mut body = Vec::new();
                    let mut cur = first[at + "SourceCode:".len()..].to_string();
                    let mut k = j + 1;
                    loop {
                        if let Some(idx) = cur.find(" SourceFile:") {
                            let before = &cur[..idx];
                            if let Some(l) = strip_number(before) {
                                body.push(l);
                            }
                            source_file = Some(
                                cur[idx + " SourceFile:".len()..]
                                    .trim_end_matches(']')
                                    .to_string(),
                            );
                            break;
                        }
                        if let Some(l) = strip_number(&cur) {
                            body.push(l);
                        }
                        k += 1;
                        match lines.get(k) {
                            Some(next) => cur = next.to_string(),
                            None => break,
                        }
                    }
                    code = (!is_error).then_some(body);
                }
            }
            calls.push(SeedCall {
                seed: path.file_name().unwrap().to_string_lossy().into(),
                args,
                code,
                source_file,
            });
        }
    }
    calls
}

/// Whether `needle` lines appear as a contiguous block in `hay`.
fn contains_block(hay: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn seed_definition_source_calls_give_the_seed_text_where_unchanged() {
    let (Some(seeds), Some(tools)) = (seeds_dir(), toolbox(ToolOptions::default())) else {
        return;
    };
    let root = index().unwrap().root().to_path_buf();
    let calls = seed_calls(&seeds);
    assert!(calls.len() >= 30, "parsed only {} seed calls", calls.len());
    let mut unchanged = 0;
    for call in &calls {
        let (Some(code), Some(file)) = (&call.code, &call.source_file) else {
            continue;
        };
        // A ContextFile under another architecture's arch/ is not built for x86_64: the seed's
        // index answered with the generic __weak version, we (rightly) prefer the x86 one.
        let context = call.args["ContextFile"]
            .as_str()
            .or(call.args["SourceFile"].as_str())
            .unwrap_or("");
        if context.starts_with("arch/") && !context.starts_with("arch/x86/") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue;
        };
        let tree_lines: Vec<String> = text.lines().map(str::to_string).collect();
        if !contains_block(&tree_lines, code) {
            continue; // The code changed between the seed's kernel and 6.12.
        }
        unchanged += 1;
        let out = tools
            .call("codesearch-definition-source", &call.args)
            .unwrap_or_else(|e| panic!("{} {}: {e}", call.seed, call.args));
        assert_eq!(
            out["SourceFile"].as_str(),
            Some(file.as_str()),
            "{} {}",
            call.seed,
            call.args
        );
        let ours: Vec<String> = out["SourceCode"]
            .as_str()
            .unwrap()
            .lines()
            .filter_map(strip_number)
            .collect();
        // Our text may start with a comment the seed's index did not glue to the body.
        assert!(
            ours.ends_with(code),
            "{} {}: ours\n{}\nseed\n{}",
            call.seed,
            call.args,
            ours.join("\n"),
            code.join("\n")
        );
    }
    eprintln!(
        "{unchanged} of {} seed definition-source calls are unchanged in 6.12 and matched",
        calls.len()
    );
    assert!(
        unchanged >= 5,
        "only {unchanged} seed calls unchanged in 6.12"
    );
}

#[test]
fn seed_error_calls_for_names_absent_from_the_tree_are_errors() {
    let (Some(seeds), Some(tools)) = (seeds_dir(), toolbox(ToolOptions::default())) else {
        return;
    };
    let root = index().unwrap().root().to_path_buf();
    let errors: Vec<SeedCall> = seed_calls(&seeds)
        .into_iter()
        .filter(|c| c.code.is_none())
        .collect();
    assert!(
        !errors.is_empty(),
        "the seeds record at least one error call"
    );
    for call in &errors {
        let name = call.args["Name"]
            .as_str()
            .unwrap_or_else(|| panic!("no Name in {:?}", call));
        let grep = tools
            .call("grepper", &json!({"Expression": format!("\\b{name}\\b")}))
            .unwrap();
        if grep["Matches"] != json!(0) {
            continue; // It exists in 6.12 after all.
        }
        let err = tools
            .call("codesearch-definition-source", &call.args)
            .unwrap_err();
        assert!(
            err.to_string().contains("requested entity does not exist"),
            "{err}"
        );
        let _ = &root;
    }
}

#[test]
fn struct_file_layout_with_a_config_maps_offsets_to_fields() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join(".config");
    // A minimal full .config: options not listed are unset (no lock debugging).
    std::fs::write(&config, "CONFIG_SMP=y\nCONFIG_SECURITY=y\nCONFIG_EPOLL=y\nCONFIG_MUTEX_SPIN_ON_OWNER=y\nCONFIG_64BIT=y\nCONFIG_X86_64=y\n").unwrap();
    let Some(tools) = toolbox(ToolOptions::default().with_config_file(&config).unwrap()) else {
        return;
    };
    let out = tools
        .call(
            "codesearch-struct-layout",
            &json!({"Name": "file", "ContextFile": "include/linux/fs.h", "FieldOffset": 32}),
        )
        .unwrap();
    let covering: Vec<&str> = out["Covering"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["Path"].as_str().unwrap())
        .collect();
    assert_eq!(covering, ["private_data"], "{out}");
    let field = |name: &str| {
        out["Fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["Name"] == json!(name))
            .cloned()
            .unwrap_or_else(|| panic!("{name}: {out}"))
    };
    // include/linux/fs.h marks "cacheline 1 boundary (64 bytes)" before f_path and
    // "cacheline 2 boundary (128 bytes)" before f_owner (pahole's view of a non-debug build).
    assert_eq!(field("f_path")["OffsetBits"], json!(64 * 8));
    assert_eq!(field("f_owner")["OffsetBits"], json!(128 * 8));
    assert_eq!(field("f_lock")["SizeBits"], json!(32));
    assert!(out["SizeBytes"].as_u64().is_some(), "{out}");
}

#[test]
fn struct_layout_without_config_marks_spinlock_unknown() {
    let Some(tools) = toolbox(ToolOptions::default()) else {
        return;
    };
    let out = tools
        .call("codesearch-struct-layout", &json!({"Name": "file"}))
        .unwrap();
    let fields = out["Fields"].as_array().unwrap();
    assert_eq!(fields[0]["Name"], json!("f_count"));
    assert_eq!(fields[0]["OffsetBits"], json!(0));
    let lock = fields
        .iter()
        .find(|f| f["Name"] == json!("f_lock"))
        .unwrap();
    assert!(
        lock.get("SizeBits").is_none(),
        "spinlock_t depends on lock debugging options: {lock}"
    );
}

#[test]
fn grepper_and_find_references_on_the_real_tree_are_budgeted() {
    let Some(tools) = toolbox(ToolOptions::default()) else {
        return;
    };
    let out = tools
        .call(
            "grepper",
            &json!({"Expression": "clcsock =", "PathPrefix": "net/smc"}),
        )
        .unwrap();
    assert!(
        out["Output"]
            .as_str()
            .unwrap()
            .contains("net/smc/af_smc.c:"),
        "{out}"
    );
    let out = tools
        .call("grepper", &json!({"Expression": "private_data"}))
        .unwrap();
    assert_eq!(out["Truncated"], json!(true));
    assert!(out["Output"].as_str().unwrap().len() <= tools::text::DEFAULT_BUDGET);
    let out = tools
        .call(
            "codesearch-find-references",
            &json!({"Name": "file::private_data"}),
        )
        .unwrap();
    let shown = out["References"].as_array().unwrap().len();
    assert!(shown > 0, "{out}");
    if out["Total"].as_u64().unwrap() as usize > shown {
        assert!(out["Note"].as_str().unwrap().contains("SourceTreePrefix"));
    }
    assert!(serde_json::to_string(&out).unwrap().len() < 3 * tools::text::DEFAULT_BUDGET);
}

#[test]
fn function_at_line_maps_a_stack_frame() {
    let Some(tools) = toolbox(ToolOptions::default()) else {
        return;
    };
    let root = index().unwrap().root().to_path_buf();
    let text = std::fs::read_to_string(root.join("net/socket.c")).unwrap();
    let start = text
        .lines()
        .position(|l| l.contains("static __poll_t sock_poll(struct file *file, poll_table *wait)"))
        .unwrap();
    let line = start
        + text
            .lines()
            .skip(start)
            .position(|l| l.contains("struct socket *sock = file->private_data;"))
            .unwrap()
        + 1;
    let out = tools
        .call(
            "codesearch-function-at-line",
            &json!({"File": "net/socket.c", "Line": line}),
        )
        .unwrap();
    assert_eq!(out["Name"], json!("sock_poll"));
}
