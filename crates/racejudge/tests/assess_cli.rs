//! `racejudge assess`: end to end on real reports against the real 6.12 tree (skipped with a
//! message when it is absent), checkout from a local git repo, and exit codes for bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{json_ok, racejudge};

/// The unpacked linux-source-6.12 tree, or a visible skip message when it is absent.
pub fn kernel_tree() -> Option<PathBuf> {
    testkit::kernel_tree_or_skip("assess_cli")
}

/// The cache the kernel tree lives in: its `index/` is warm across tests and runs, so tests that
/// assess against the full tree do not each rebuild the code index.
fn tree_cache(kernel: &Path) -> PathBuf {
    kernel
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| kernel.to_path_buf())
}

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/reports")
}

fn assess_json(report: &Path, kernel: &Path, cache: &Path) -> serde_json::Value {
    let out = racejudge()
        .env("RACEJUDGE_CACHE_DIR", cache)
        .arg("assess")
        .arg(report)
        .arg("--kernel")
        .arg(kernel)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        report.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn static_expert_on_example_reports_cites_the_tree() {
    let Some(kernel) = kernel_tree() else { return };
    let cache = tree_cache(&kernel);
    let mut seen = 0;
    for entry in std::fs::read_dir(examples()).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "txt") {
            continue;
        }
        seen += 1;
        let doc = assess_json(&path, &kernel, &cache);
        let a = &doc;
        assert!(
            a["Title"]
                .as_str()
                .is_some_and(|t| t.starts_with("KCSAN: "))
        );
        assert!(a["Benign"].is_boolean());
        let confidence = a["Confidence"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&confidence), "{confidence}");
        let explanation = a["Explanation"].as_str().unwrap();
        assert!(explanation.contains("## Race summary"), "{explanation}");
        assert!(explanation.contains("## Final classification"));
        assert_what_it_breaks(a);
        // Every located access is quoted from the tree: the quoted line must really be there.
        for access in a["Evidence"]["facts"]["accesses"].as_array().unwrap() {
            let loc = &access["location"];
            if loc.is_null() {
                continue;
            }
            let file = kernel.join(loc["file"].as_str().unwrap());
            let text = std::fs::read_to_string(&file).unwrap();
            let line = text
                .lines()
                .nth(loc["line"].as_u64().unwrap() as usize - 1)
                .unwrap();
            assert_eq!(line, loc["text"].as_str().unwrap());
            assert!(
                explanation.contains(line.trim()),
                "explanation must cite {line}"
            );
        }
    }
    assert!(seen >= 2, "examples/reports must hold reports");
}

#[test]
fn smc_fallback_race_is_located_in_both_functions() {
    let Some(kernel) = kernel_tree() else { return };
    let doc = assess_json(
        &examples().join("smc_switch_to_fallback-sock_poll.txt"),
        &kernel,
        &tree_cache(&kernel),
    );
    let accesses = doc["Evidence"]["facts"]["accesses"]
        .as_array()
        .unwrap()
        .clone();
    let files: Vec<&str> = accesses
        .iter()
        .filter_map(|a| a["location"]["file"].as_str())
        .collect();
    assert_eq!(files, vec!["net/smc/af_smc.c", "net/socket.c"]);
    let frames: Vec<&str> = accesses
        .iter()
        .filter_map(|a| a["location"]["frame"].as_str())
        .collect();
    assert_eq!(frames, vec!["smc_switch_to_fallback", "sock_poll"]);
}

#[test]
fn progress_goes_to_stderr_and_verdict_to_stdout() {
    let Some(kernel) = kernel_tree() else { return };
    let cache = tempfile::tempdir().unwrap();
    let out = racejudge()
        .env("RACEJUDGE_CACHE_DIR", tree_cache(&kernel))
        .arg("assess")
        .arg(examples().join("__filemap_add_folio-sync_bdevs.txt"))
        .arg("--kernel")
        .arg(&kernel)
        .arg("--trajectory")
        .arg(cache.path().join("t.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for step in [
        "kernel-checkouter",
        "codesearch-prepare",
        "expert",
        "format-explanation",
    ] {
        assert!(
            stderr.contains(step),
            "missing progress for {step}: {stderr}"
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("Verdict: "), "{stdout}");
    let text = std::fs::read_to_string(cache.path().join("t.jsonl")).unwrap();
    let spans: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = spans
        .iter()
        .filter(|s| s["Type"] == "action" && s["Finished"].is_string())
        .filter_map(|s| s["Name"].as_str())
        .collect();
    assert_eq!(
        actions,
        vec![
            "kernel-checkouter",
            "codesearch-prepare",
            "expert",
            "format-explanation"
        ]
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn checkout_by_repo_and_commit_then_assess() {
    // A tiny "kernel" with the two functions of a report, committed to a local repo.
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "--quiet", "-b", "main"]);
    std::fs::write(repo.path().join("Makefile"), "all:\n").unwrap();
    std::fs::create_dir_all(repo.path().join("kernel")).unwrap();
    std::fs::write(
        repo.path().join("kernel/stats.c"),
        "struct s { unsigned long hits; };\n\nvoid bump(struct s *p)\n{\n\tp->hits++;\n}\n\nunsigned long peek(struct s *p)\n{\n\treturn p->hits;\n}\n",
    )
    .unwrap();
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "--quiet", "-m", "stats"]);
    let report = "BUG: KCSAN: data-race in bump / peek\n\n\
write to 0xffff888100000000 of 8 bytes by task 1 on cpu 0:\n bump+0x10/0x20 kernel/stats.c:5\n\n\
read to 0xffff888100000000 of 8 bytes by task 2 on cpu 1:\n peek+0x8/0x10 kernel/stats.c:10\n\n\
value changed: 0x0000000000000001 -> 0x0000000000000002\n";
    let report_path = repo.path().join("../report-for-checkout.txt");
    std::fs::write(&report_path, report).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = racejudge()
        .env("RACEJUDGE_CACHE_DIR", cache.path())
        .arg("assess")
        .arg(&report_path)
        .args([
            "--repo",
            repo.path().to_str().unwrap(),
            "--commit",
            "main",
            "--json",
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&report_path);
    let doc = json_ok(&out);
    let facts = &doc["Evidence"]["facts"];
    assert_eq!(facts["field"], "hits");
    assert_eq!(facts["accesses"][0]["location"]["text"], "\tp->hits++;");
    let rules: Vec<&str> = doc["Evidence"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["rule"].as_str())
        .collect();
    assert!(rules.contains(&"statistics-field"), "{rules:?}");
    assert!(
        cache.path().join("checkouts").is_dir(),
        "the checkout lives in the cache"
    );
}

#[test]
fn missing_kernel_tree_exits_3() {
    let cache = tempfile::tempdir().unwrap();
    let out = racejudge()
        .env("RACEJUDGE_CACHE_DIR", cache.path())
        .arg("assess")
        .arg(examples().join("smc_switch_to_fallback-sock_poll.txt"))
        .args(["--kernel", "/nonexistent/linux"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/linux"));
}

#[test]
fn git_failure_exits_3() {
    let cache = tempfile::tempdir().unwrap();
    let out = racejudge()
        .env("RACEJUDGE_CACHE_DIR", cache.path())
        .arg("assess")
        .arg(examples().join("smc_switch_to_fallback-sock_poll.txt"))
        .args(["--repo", "/nonexistent/repo.git", "--commit", "main"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn text_without_report_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-report.txt");
    std::fs::write(&path, "hello, no race here\n").unwrap();
    let out = racejudge()
        .arg("assess")
        .arg(&path)
        .args(["--kernel", "/tmp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no KCSAN report"));
}

#[test]
fn no_kernel_source_given_exits_2() {
    let out = racejudge()
        .arg("assess")
        .arg(examples().join("smc_switch_to_fallback-sock_poll.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kernel"));
}

#[test]
fn eval_dev_reports_through_assess_never_see_labels() {
    // The eval path cuts metadata before parsing; here we check the cut text through `assess`
    // on stdin: a label-bearing file's verdict must equal the verdict on the cut text alone.
    let (Some(kernel), Some(shared)) = (
        kernel_tree(),
        testkit::shared_dir_or_skip("eval_dev_reports_through_assess_never_see_labels"),
    ) else {
        return;
    };
    let file = shared.join("eval/dev/057-harmful-update_defense_level-update_defense_level.txt");
    let full = std::fs::read_to_string(&file).unwrap();
    let (cut, label) = assess::eval::split_labelled(&full);
    assert!(label.is_some() && !cut.contains("LABEL:") && !cut.contains("JUSTIFICATION"));
    let cache = tree_cache(&kernel);
    let run = |text: &str| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.txt");
        std::fs::write(&p, text).unwrap();
        assess_json(&p, &kernel, &cache)
    };
    let a = run(&cut);
    assert!(
        !a["Explanation"]
            .as_str()
            .unwrap()
            .contains("ipvs: move old_secure_tcp")
    );
    assert!(
        !serde_json::to_string(&a["Evidence"])
            .unwrap()
            .contains("JUSTIFICATION")
    );
}

#[test]
fn llm_expert_without_api_key_exits_3_naming_the_variable() {
    let out = racejudge()
        .env_remove("ANTHROPIC_API_KEY")
        .arg("assess")
        .arg(examples().join("smc_switch_to_fallback-sock_poll.txt"))
        .args([
            "--kernel",
            "/tmp",
            "--expert",
            "llm",
            "--provider",
            "anthropic",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("ANTHROPIC_API_KEY"));
}

#[test]
fn llm_expert_trajectory_is_one_tree_from_flow_to_tool_calls() {
    use fakellm::{FakeServer, openai};
    // A tiny kernel tree; the index over it is built into the temporary cache.
    let (tree, work, report) = tiny_tree_and_report();
    // The server runs on its own runtime while the binary talks to it over 127.0.0.1.
    let rt = server_runtime();
    let server = rt.block_on(FakeServer::start(vec![
        openai::calls_reply(
            None,
            vec![openai::tool_call(
                "call_1",
                "codesearch-definition-source",
                r#"{"Name":"bump"}"#,
            )],
        ),
        openai::calls_reply(
            None,
            vec![openai::tool_call(
                "call_2",
                "set-results",
                r#"{"Benign":true,"Confident":true}"#,
            )],
        ),
        openai::text_reply(
            "## Race summary\n`hits` is a statistic.\n\n## Final classification: **BENIGN**\n",
        ),
    ]));
    let traj = work.path().join("run.jsonl");
    let out = racejudge()
        .env("RACEJUDGE_CACHE_DIR", work.path().join("cache"))
        .env("OPENAI_API_KEY", "test-key")
        .env("OPENAI_BASE_URL", server.base_url(llm::Provider::OpenAi))
        .arg("assess")
        .arg(&report)
        .arg("--kernel")
        .arg(tree.path())
        .args([
            "--expert",
            "llm",
            "--provider",
            "openai",
            "--model",
            "gpt-test",
        ])
        .arg("--trajectory")
        .arg(&traj)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verdict: BENIGN"));
    assert_eq!(server.unused(), 0);

    // Finished events of every span, keyed by seq, in one JSONL file.
    let text = std::fs::read_to_string(&traj).unwrap();
    let mut spans = std::collections::BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v.get("Finished").is_some() {
            spans.insert(v["Seq"].as_u64().unwrap(), v);
        }
    }
    let find = |ty: &str, name: &str| {
        spans
            .values()
            .find(|s| s["Type"] == ty && (name.is_empty() || s["Name"] == name))
            .unwrap_or_else(|| panic!("no {ty} span {name}: {text}"))
    };
    assert_eq!(find("flow", "assessment-kcsan")["Nesting"], 0);
    let expert = find("action", "expert");
    assert_eq!(expert["Nesting"], 1);
    let agent = find("agent", "");
    assert_eq!(
        agent["Nesting"], 2,
        "the agent nests under the expert action"
    );
    assert!(agent["Seq"].as_u64() > expert["Seq"].as_u64());
    assert_eq!(find("llm", "")["Nesting"], 3);
    assert_eq!(find("tool", "codesearch-definition-source")["Nesting"], 3);
    assert!(
        agent::transcript_path(&traj).is_file(),
        "the transcript sits next to the trajectory"
    );

    // `trajectory show` renders the whole tree from that one file.
    let shown = racejudge()
        .args(["trajectory", "show", "--json"])
        .arg(&traj)
        .output()
        .unwrap();
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let rendered = serde_json::to_string(&doc["spans"]).unwrap();
    for needle in ["assessment-kcsan", "expert", "codesearch-definition-source"] {
        assert!(
            rendered.contains(needle),
            "{needle} missing from {rendered}"
        );
    }
}

#[test]
fn unused_checkouts_are_evicted_beyond_the_cache_limit() {
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "--quiet", "-b", "main"]);
    std::fs::create_dir_all(repo.path().join("kernel")).unwrap();
    let source = |n: u32| {
        format!(
            "int hits;\n\nvoid bump(void)\n{{\n\thits += {n};\n}}\n\nint peek(void)\n{{\n\treturn hits;\n}}\n"
        )
    };
    std::fs::write(repo.path().join("kernel/stats.c"), source(1)).unwrap();
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "--quiet", "-m", "one"]);
    git(repo.path(), &["tag", "first"]);
    std::fs::write(repo.path().join("kernel/stats.c"), source(2)).unwrap();
    git(repo.path(), &["commit", "--quiet", "-am", "two"]);
    let report_dir = tempfile::tempdir().unwrap();
    let report_path = report_dir.path().join("report.txt");
    std::fs::write(
        &report_path,
        "BUG: KCSAN: data-race in bump / peek\n\n\
write to 0xffffffff81000000 of 4 bytes by task 1 on cpu 0:\n bump+0x10/0x20 kernel/stats.c:5\n\n\
read to 0xffffffff81000000 of 4 bytes by task 2 on cpu 1:\n peek+0x8/0x10 kernel/stats.c:10\n",
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let assess_at = |commit: &str, max_gb: &str| {
        let out = racejudge()
            .env("RACEJUDGE_CACHE_DIR", cache.path())
            .env("RACEJUDGE_CACHE_MAX_GB", max_gb)
            .arg("assess")
            .arg(&report_path)
            .args(["--repo", repo.path().to_str().unwrap(), "--commit", commit])
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let entries = |kind: &str| {
        assess::cache::Cache::new(cache.path())
            .entries()
            .into_iter()
            .filter(|e| e.kind == kind)
            .collect::<Vec<_>>()
    };

    assess_at("first", "50");
    assert_eq!(
        entries("checkouts").len(),
        1,
        "the first checkout is kept under the default limit"
    );
    // The checkout's index is a cache entry too, measured after it was written.
    let index = entries("index");
    assert_eq!(index.len(), 1, "{index:?}");
    assert!(index[0].meta.size_bytes > 0, "{index:?}");
    assert!(
        index[0].meta.description.contains("arch x86_64"),
        "{index:?}"
    );
    // A limit of 0 evicts every entry no job is using once this job is done.
    assess_at("main", "0");
    assert_eq!(
        entries("checkouts").len(),
        0,
        "checkouts beyond the limit are evicted"
    );
    assert_eq!(
        entries("index").len(),
        0,
        "indexes beyond the limit are evicted"
    );
}

/// A harmful verdict names its detector (one of the reference's values) and its consequence; a
/// benign one has neither.
fn assert_what_it_breaks(a: &serde_json::Value) {
    if a["Benign"] == true {
        assert!(a.get("FailureDetectableBy").is_none(), "{a}");
        assert!(a.get("Consequence").is_none(), "{a}");
    } else {
        let d = a["FailureDetectableBy"].as_str().unwrap();
        assert!(
            ["kasan", "kmsan", "any", "user", "none"].contains(&d),
            "{d}"
        );
        assert!(!a["Consequence"].as_str().unwrap().is_empty());
    }
}

#[test]
fn static_expert_json_says_what_a_harmful_race_breaks() {
    let (tree, work, report) = tiny_tree_and_report();
    let a = assess_json(&report, tree.path(), &work.path().join("cache"));
    assert_what_it_breaks(&a);
    if a["Benign"] == false {
        assert_eq!(
            a["Evidence"]["consequence"]["detectable_by"],
            a["FailureDetectableBy"]
        );
    }
}

/// The LLM expert through the CLI: the static facts open its first message, and `--json` carries
/// the detector and consequence it gave in set-results.
#[test]
fn llm_expert_gets_the_static_evidence_and_reports_the_detector() {
    use fakellm::{FakeServer, openai};
    let (tree, work, report) = tiny_tree_and_report();
    let rt = server_runtime();
    let server = rt.block_on(FakeServer::start(vec![
        openai::calls_reply(
            None,
            vec![openai::tool_call(
                "call_1",
                "set-results",
                r#"{"Benign":false,"Confident":true,"FailureDetectableBy":"none","Consequence":"Lost update: two increments of hits overwrite each other."}"#,
            )],
        ),
        openai::text_reply("## Final classification: **HARMFUL**\n"),
    ]));
    let out = racejudge()
        .env("RACEJUDGE_CACHE_DIR", work.path().join("cache"))
        .env("OPENAI_API_KEY", "test-key")
        .env("OPENAI_BASE_URL", server.base_url(llm::Provider::OpenAi))
        .arg("assess")
        .arg(&report)
        .arg("--kernel")
        .arg(tree.path())
        .args([
            "--expert",
            "llm",
            "--provider",
            "openai",
            "--model",
            "gpt-test",
        ])
        .arg("--json")
        .output()
        .unwrap();
    let a = json_ok(&out);
    assert_eq!(a["Benign"], false);
    assert_eq!(a["FailureDetectableBy"], "none");
    assert_eq!(
        a["Consequence"],
        "Lost update: two increments of hits overwrite each other."
    );
    let first = serde_json::to_string(&server.requests()[0].body).unwrap();
    assert!(
        first.contains("Starting point") && first.contains("kernel/stats.c:5"),
        "the static facts open the first message: {first}"
    );
}

/// A two-function kernel tree and a report on it, in temporary directories.
fn tiny_tree_and_report() -> (tempfile::TempDir, tempfile::TempDir, PathBuf) {
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(tree.path().join("Makefile"), "all:\n").unwrap();
    std::fs::create_dir_all(tree.path().join("kernel")).unwrap();
    std::fs::write(
        tree.path().join("kernel/stats.c"),
        "struct s { unsigned long hits; };\n\nvoid bump(struct s *p)\n{\n\tp->hits++;\n}\n\nunsigned long peek(struct s *p)\n{\n\treturn p->hits;\n}\n",
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let report = work.path().join("r.txt");
    std::fs::write(
        &report,
        "BUG: KCSAN: data-race in bump / peek\n\n\
write to 0xffff888100000000 of 8 bytes by task 1 on cpu 0:\n bump+0x10/0x20 kernel/stats.c:5\n\n\
read to 0xffff888100000000 of 8 bytes by task 2 on cpu 1:\n peek+0x8/0x10 kernel/stats.c:10\n",
    )
    .unwrap();
    (tree, work, report)
}

fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// What a llama.cpp server with a small model needs, end to end through the CLI: no --model (the
/// server's only model is used), limits from flags and environment, a placeholder key that
/// rewrites nothing, `content: ""` in replayed calls, and a reminder that names set-results.
#[test]
fn llm_expert_against_a_local_server_without_model_or_real_key() {
    use fakellm::{FakeServer, Reply, openai};
    let (tree, work, report) = tiny_tree_and_report();
    let rt = server_runtime();
    let server = rt.block_on(FakeServer::start(vec![
        Reply::models(&["gemma-3-270m-it"]),
        openai::calls_reply(
            None,
            vec![openai::tool_call(
                "call_1",
                "codesearch-definition-source",
                r#"{"Name":"bump"}"#,
            )],
        ),
        openai::text_reply(""),
        openai::calls_reply(
            None,
            vec![openai::tool_call(
                "call_2",
                "set-results",
                r#"{"Benign":true,"Confident":false}"#,
            )],
        ),
        openai::text_reply("## Final classification: **BENIGN** (x)\n"),
    ]));
    let traj = work.path().join("run.jsonl");
    let out = racejudge()
        .env("RACEJUDGE_CACHE_DIR", work.path().join("cache"))
        .env("OPENAI_API_KEY", "x")
        .env("OPENAI_BASE_URL", server.base_url(llm::Provider::OpenAi))
        .env("RACEJUDGE_LLM_MAX_OUTPUT_TOKENS", "256")
        .arg("assess")
        .arg(&report)
        .arg("--kernel")
        .arg(tree.path())
        .args([
            "--expert",
            "llm",
            "--provider",
            "openai",
            "--context-window",
            "32768",
        ])
        .arg("--trajectory")
        .arg(&traj)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Verdict: BENIGN"));
    assert_eq!(server.unused(), 0);
    let reqs = server.requests();
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", "/v1/models")
    );
    for r in &reqs[1..] {
        assert_eq!(r.body["model"], "gemma-3-270m-it");
        assert_eq!(r.body["max_tokens"], 256);
        for m in r.body["messages"].as_array().unwrap() {
            assert!(m["content"].is_string(), "content never null: {m}");
        }
    }
    assert!(reqs[1].body.get("tool_choice").is_none());
    assert_eq!(
        reqs[3].body["tool_choice"],
        serde_json::json!({"type": "function", "function": {"name": "set-results"}}),
        "the reminder names set-results"
    );
    let transcript = std::fs::read_to_string(agent::transcript_path(&traj)).unwrap();
    assert!(
        !transcript.contains("[REDACTED]") && transcript.contains("BENIGN** (x)"),
        "a one-letter key rewrites nothing"
    );
}

/// Per-attempt timeout and attempt count from the flags, the rest from a config file: a server
/// that never answers costs two short attempts, then exit 3.
#[test]
fn llm_timeouts_come_from_flags_and_config_file() {
    use fakellm::{FakeServer, openai};
    use std::time::{Duration, Instant};
    let (tree, work, report) = tiny_tree_and_report();
    let rt = server_runtime();
    let slow = openai::text_reply("late").delayed(Duration::from_secs(20));
    let server = rt.block_on(FakeServer::start(vec![slow.clone(), slow.clone(), slow]));
    let config = work.path().join("llm.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "provider": "openai",
            "model": "m",
            "base_url": server.base_url(llm::Provider::OpenAi),
            "max_attempts": 8,
        })
        .to_string(),
    )
    .unwrap();
    let started = Instant::now();
    let out = racejudge()
        .env("RACEJUDGE_CACHE_DIR", work.path().join("cache"))
        .env_remove("OPENAI_API_KEY")
        .env("RACEJUDGE_LLM_ATTEMPTS", "2")
        .arg("assess")
        .arg(&report)
        .arg("--kernel")
        .arg(tree.path())
        .args(["--expert", "llm", "--timeout", "0.5"])
        .arg("--llm-config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("2 attempts") && stderr.contains("timeout"),
        "{stderr}"
    );
    assert_eq!(server.requests().len(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
