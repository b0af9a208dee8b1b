//! `racejudge eval`: metrics over labelled reports, with the metadata cut before the expert.

use std::path::Path;

use crate::assess_cli::kernel_tree;
use crate::util::{json_ok, racejudge};

/// Writes a labelled report whose metadata would change the verdict if it leaked: the text
/// after LABEL: mentions fields and functions the expert could latch onto.
fn write_labelled(dir: &Path) {
    std::fs::create_dir_all(dir.join("kernel")).unwrap();
    std::fs::write(dir.join("Makefile"), "all:\n").unwrap();
    std::fs::write(
        dir.join("kernel/flag.c"),
        "struct s { int ready; };\n\nvoid set(struct s *p)\n{\n\tp->ready = 1;\n}\n\nint get(struct s *p)\n{\n\tWARN_ON(p->ready);\n\treturn 0;\n}\n",
    )
    .unwrap();
}

const REPORT: &str = "BUG: KCSAN: data-race in get / set\n\n\
write to 0xffff888100000000 of 4 bytes by task 1 on cpu 0:\n set+0x10/0x20 kernel/flag.c:5\n\n\
read to 0xffff888100000000 of 4 bytes by task 2 on cpu 1:\n get+0x8/0x10 kernel/flag.c:10\n\n\
value changed: 0x00000000 -> 0x00000001\n";

#[test]
fn eval_prints_metrics_and_cuts_metadata() {
    let tree = tempfile::tempdir().unwrap();
    write_labelled(tree.path());
    let labelled = tempfile::tempdir().unwrap();
    std::fs::write(
        labelled.path().join("a-benign.txt"),
        format!("{REPORT}LABEL: benign\nSOURCE: x\n"),
    )
    .unwrap();
    // Same report, but the metadata says harmful and is full of bait: the verdict must not move.
    std::fs::write(
        labelled.path().join("b-harmful.txt"),
        format!("{REPORT}LABEL: harmful\nJUSTIFICATION: p->ready list_del use-after-free x++ harmful\nvalue changed: 0xffff888100000000 -> 0x0\n"),
    )
    .unwrap();
    std::fs::write(labelled.path().join("ignored.md"), "not a report").unwrap();
    let out = racejudge()
        .env("RACEJUDGE_CACHE_DIR", labelled.path().join(".cache"))
        .arg("eval")
        .arg(labelled.path())
        .arg("--kernel")
        .arg(tree.path())
        .arg("--json")
        .output()
        .unwrap();
    let doc = json_ok(&out);
    let reports = doc["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["predicted"], "benign");
    assert_eq!(
        reports[0]["predicted"], reports[1]["predicted"],
        "metadata leaked into the verdict"
    );
    assert_eq!(reports[0]["confidence"], reports[1]["confidence"]);
    let m = &doc["metrics"];
    assert_eq!(m["total"], 2);
    assert_eq!(m["confusion"], serde_json::json!([[1, 0], [1, 0]]));
    assert_eq!(m["accuracy"], 0.5);
    assert_eq!(m["harmful_recall"], 0.0);
}

#[test]
fn eval_text_output_has_confusion_and_per_report_lines() {
    let tree = tempfile::tempdir().unwrap();
    write_labelled(tree.path());
    let labelled = tempfile::tempdir().unwrap();
    std::fs::write(
        labelled.path().join("a.txt"),
        format!("{REPORT}LABEL: benign\n"),
    )
    .unwrap();
    let out = racejudge()
        .env("RACEJUDGE_CACHE_DIR", labelled.path().join(".cache"))
        .arg("eval")
        .arg(labelled.path())
        .arg("--kernel")
        .arg(tree.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("accuracy: 100.0%"), "{text}");
    assert!(text.contains("confusion"));
    assert!(text.contains("a.txt"));
}

#[test]
fn eval_of_empty_dir_is_bad_input() {
    let empty = tempfile::tempdir().unwrap();
    let out = racejudge()
        .arg("eval")
        .arg(empty.path())
        .args(["--kernel", "/tmp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn eval_on_dev_set_runs_every_report() {
    let (Some(kernel), Some(shared)) = (
        kernel_tree(),
        testkit::shared_dir_or_skip("eval_on_dev_set_runs_every_report"),
    ) else {
        return;
    };
    let out = racejudge()
        .arg("eval")
        .arg(shared.join("eval/dev"))
        .arg("--kernel")
        .arg(&kernel)
        .arg("--json")
        .output()
        .unwrap();
    let doc = json_ok(&out);
    let labelled = std::fs::read_dir(shared.join("eval/dev"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "txt"))
        .count() as u64;
    assert_eq!(doc["metrics"]["total"], labelled);
    let c = &doc["metrics"]["confusion"];
    let cells: u64 = (0..2)
        .flat_map(|i| (0..2).map(move |j| (i, j)))
        .map(|(i, j)| c[i][j].as_u64().unwrap())
        .sum();
    assert_eq!(cells + doc["metrics"]["errors"].as_u64().unwrap(), labelled);
    // The headline: every report held out exactly once, with intervals around the figure.
    let cv = &doc["cross_validated"];
    assert_eq!(cv["predictions"].as_array().unwrap().len() as u64, labelled);
    let accuracy = cv["metrics"]["accuracy"].as_f64().unwrap();
    let ci = cv["accuracy_ci"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() <= accuracy && accuracy <= ci[1].as_f64().unwrap());
    assert!(cv["ece"].as_f64().unwrap() >= 0.0);
}

/// `eval --expert llm` against a local OpenAI-compatible server: tokens, time and, for a model
/// with a list price, an approximate cost per report; an unpriced model gets no cost.
#[test]
fn eval_llm_reports_tokens_time_and_cost_per_report() {
    use fakellm::{FakeServer, openai};
    let tree = tempfile::tempdir().unwrap();
    write_labelled(tree.path());
    let labelled = tempfile::tempdir().unwrap();
    std::fs::write(
        labelled.path().join("a-benign.txt"),
        format!("{REPORT}LABEL: benign\n"),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for (model, priced) in [("gpt-4o-mini", true), ("gpt-test", false)] {
        let server = rt.block_on(FakeServer::start(vec![
            openai::calls_reply(
                None,
                vec![openai::tool_call(
                    "call_1",
                    "set-results",
                    r#"{"Benign":true,"Confident":true}"#,
                )],
            ),
            openai::text_reply("## Final classification: **BENIGN**\n"),
        ]));
        let out = racejudge()
            .env("RACEJUDGE_CACHE_DIR", labelled.path().join(".cache"))
            .env("OPENAI_API_KEY", "test-key")
            .env("OPENAI_BASE_URL", server.base_url(llm::Provider::OpenAi))
            .arg("eval")
            .arg(labelled.path())
            .arg("--kernel")
            .arg(tree.path())
            .args(["--expert", "llm", "--provider", "openai", "--model", model])
            .arg("--json")
            .output()
            .unwrap();
        let doc = json_ok(&out);
        let r = &doc["reports"][0];
        assert_eq!(r["predicted"], "benign", "{doc}");
        assert!(r["tokens"].as_u64().unwrap() > 0);
        assert!(r["millis"].is_u64());
        let m = &doc["metrics"];
        assert!(m["tokens_per_report"].as_f64().unwrap() > 0.0);
        if priced {
            // Two turns of the fake's fixed usage at gpt-4o-mini's list price: well under a cent.
            let cost = r["cost_usd"].as_f64().unwrap();
            assert!(cost > 0.0 && cost < 0.01, "{cost}");
            assert_eq!(m["cost_usd_per_report"].as_f64().unwrap(), cost);
        } else {
            assert!(r.get("cost_usd").is_none(), "{r}");
            assert!(m.get("cost_usd_per_report").is_none(), "{m}");
        }
    }
}
