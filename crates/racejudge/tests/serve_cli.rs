//! `racejudge serve` end to end: a report submitted over the API is judged by an in-process worker
//! with the static expert, reviewed, and still there (verdict and review) after the process is
//! killed and started again on the same SQLite file.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::racejudge;

/// Starts `racejudge serve` on a free port and returns it with its base URL (read from the
/// "serving on" line it prints on stderr).
fn start_serve(tree: &Path, db: &Path, cache: &Path) -> (Child, String) {
    let mut child = racejudge()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--kernel",
        ])
        .arg(tree)
        .arg("--db")
        .arg(format!("sqlite:{}", db.display()))
        .env("RACEJUDGE_CACHE_DIR", cache)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("serve exited before it said where it listens")
            .unwrap();
        if let Some(rest) = line.split("serving on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

/// Blocking GET/POST over reqwest's async client on a private runtime (its `blocking` feature is
/// not worth enabling for one test).
mod http {
    pub fn get(url: &str) -> serde_json::Value {
        runtime().block_on(async {
            let response = reqwest::get(url).await.unwrap();
            assert!(
                response.status().is_success(),
                "GET {url}: {}",
                response.status()
            );
            response.json().await.unwrap()
        })
    }

    pub fn post(url: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        runtime().block_on(async {
            let response = reqwest::Client::new()
                .post(url)
                .json(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap())
        })
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }
}

fn wait_done(base: &str, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = http::get(&format!("{base}/api/v1/jobs/{id}"));
        match job["job"]["status"].as_str().unwrap() {
            "done" => return job,
            "failed" | "cancelled" => panic!("the job did not finish: {job}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "job {id} still not done: {job}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn serve_judges_a_submitted_report_and_keeps_it_across_a_restart() {
    let tree = tempfile::tempdir().unwrap();
    std::fs::write(tree.path().join("Makefile"), "all:\n").unwrap();
    std::fs::create_dir_all(tree.path().join("kernel")).unwrap();
    std::fs::write(
        tree.path().join("kernel/stats.c"),
        "struct s { unsigned long hits; };\n\nvoid bump(struct s *p)\n{\n\tp->hits++;\n}\n\n\
         unsigned long peek(struct s *p)\n{\n\treturn p->hits;\n}\n",
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("jobs.db");
    let cache = work.path().join("cache");
    let report = "BUG: KCSAN: data-race in bump / peek\n\n\
write to 0xffff888100000000 of 8 bytes by task 1 on cpu 0:\n bump+0x10/0x20 kernel/stats.c:5\n\n\
read to 0xffff888100000000 of 8 bytes by task 2 on cpu 1:\n peek+0x8/0x10 kernel/stats.c:10\n";

    let (mut serve, base) = start_serve(tree.path(), &db, &cache);
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let (status, submitted) =
        http::post(&format!("{base}/api/v1/jobs"), &json!({ "report": report }));
    assert_eq!(status, 201, "{submitted}");
    let id = submitted["jobs"][0]["id"].as_i64().unwrap();
    let job = wait_done(&base, id);
    let benign = job["job"]["outcome"]["benign"]
        .as_bool()
        .expect("a verdict");
    assert!(
        !job["job"]["outcome"]["results"]["Explanation"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    let (status, review) = http::post(
        &format!("{base}/api/v1/jobs/{id}/review"),
        &json!({ "decision": "incorrect", "reason": "the counter feeds a decision", "reviewer": "ci" }),
    );
    assert_eq!(status, 201, "{review}");

    // A crash, not a clean shutdown: nothing may depend on the process saying goodbye.
    serve.kill().unwrap();
    serve.wait().unwrap();

    let (mut serve, base) = start_serve(tree.path(), &db, &cache);
    let again = http::get(&format!("{base}/api/v1/jobs/{id}"));
    assert_eq!(again["job"]["status"], "done");
    assert_eq!(again["job"]["outcome"]["benign"].as_bool(), Some(benign));
    assert_eq!(again["reviews"][0]["decision"], "incorrect", "{again}");
    assert_eq!(
        again["reviews"][0]["reason"],
        "the counter feeds a decision"
    );
    let stats = http::get(&format!("{base}/api/v1/stats"));
    assert!(stats.is_object(), "{stats}");
    serve.kill().unwrap();
    serve.wait().unwrap();
}
