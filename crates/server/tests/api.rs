//! The API and pages against the real router on 127.0.0.1, on SQLite and (when configured) on
//! PostgreSQL. A job is moved along by the store's own worker calls (claim, put_span, finish),
//! as a worker would; the flow itself is tested in crates/worker and the binary's tests.

use serde_json::{Value, json};
use store::{Outcome, Store};

const SEP: &str = "==================================================================";

fn report(a: &str, b: &str, extra: &str) -> String {
    format!(
        "{SEP}\nBUG: KCSAN: data-race in {a} / {b}\n\n\
write to 0xffff888100000000 of 8 bytes by task 1 on cpu 0:\n {a}+0x10/0x20 kernel/stats.c:5{extra}\n\n\
read to 0xffff888100000000 of 8 bytes by task 2 on cpu 1:\n {b}+0x8/0x10 kernel/stats.c:10\n{SEP}\n"
    )
}

struct Server {
    base: String,
    client: reqwest::Client,
    store: Store,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    async fn start(store: Store) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server::serve(listener, store.clone(), async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Server {
            base,
            client,
            store,
            _stop: stop,
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn text(&self, path: &str) -> (u16, String) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, "application/json", body.to_string())
            .await
    }

    async fn post_raw(&self, path: &str, kind: &str, body: String) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", kind)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn form(&self, path: &str, body: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }
}

/// A 4xx whose JSON body names the problem.
fn assert_error(got: (u16, Value), status: u16, mentions: &str) {
    assert_eq!(got.0, status, "{:?}", got.1);
    let message = got.1["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no JSON error: {:?}", got.1));
    assert!(
        message.contains(mentions),
        "{message:?} should mention {mentions:?}"
    );
    assert_eq!(got.1["status"], status);
}

fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..at + 64].to_string()
}

async fn exercise(store: Store) {
    let s = Server::start(store).await;

    // The OpenAPI document is JSON and names every API route.
    let (status, doc) = s.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    for path in [
        "/jobs",
        "/jobs/{id}",
        "/jobs/{id}/review",
        "/jobs/{id}/cancel",
        "/jobs/{id}/restart",
        "/jobs/{id}/export",
        "/stats",
        "/workers",
    ] {
        assert!(
            doc["paths"].get(format!("/api/v1{path}")).is_some(),
            "{path} documented"
        );
    }

    // Submit: two reports in one log become two jobs, each with its own report text.
    let log = format!(
        "[  1.0] boot\n{}[  2.0] more\n{}",
        report("bump", "peek", ""),
        report("inc", "get", "")
    );
    let (status, body) = s.post("/api/v1/jobs", &json!({ "report": log })).await;
    assert_eq!(status, 201, "{body}");
    let jobs = body["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0]["title"], "KCSAN: data-race in bump / peek");
    assert_eq!(jobs[1]["title"], "KCSAN: data-race in inc / get");
    let (first, second) = (
        jobs[0]["id"].as_i64().unwrap(),
        jobs[1]["id"].as_i64().unwrap(),
    );
    let (_, got) = s.get(&format!("/api/v1/jobs/{second}")).await;
    let text = got["job"]["report"].as_str().unwrap();
    assert!(
        text.contains("inc / get") && !text.contains("bump"),
        "{text}"
    );
    assert_eq!(got["job"]["status"], "queued");
    assert_eq!(got["job"]["expert"], "static");

    // Bad submissions: a JSON error naming the problem, never a 500.
    assert_error(
        s.post("/api/v1/jobs", &json!({ "report": "hello" })).await,
        422,
        "no KCSAN report",
    );
    assert_error(
        s.post_raw("/api/v1/jobs", "application/json", "{".into())
            .await,
        400,
        "",
    );
    assert_error(
        s.post("/api/v1/jobs", &json!({ "text": "x" })).await,
        400,
        "report",
    );
    assert_error(
        s.post(
            "/api/v1/jobs",
            &json!({ "report": log, "expert": "oracle" }),
        )
        .await,
        400,
        "expert",
    );
    assert_error(
        s.post(
            "/api/v1/jobs",
            &json!({ "report": log, "kernel": {"dir": "/etc"} }),
        )
        .await,
        400,
        "kernel",
    );
    assert_error(
        s.post(
            "/api/v1/jobs",
            &json!({ "report": log, "kernel": {"git": {"repo": "", "commit": "x"}} }),
        )
        .await,
        400,
        "repository",
    );
    assert_error(
        s.post("/api/v1/jobs", &json!({ "report": "a\0b" })).await,
        422,
        "",
    );
    assert_error(s.get("/api/v1/jobs/abc").await, 400, "integer");
    assert_error(s.get("/api/v1/jobs/999999").await, 404, "not found");
    assert_error(s.get("/api/v1/nothing").await, 404, "no such");

    // An XSS job: `<script>` in the title, the frames, and later in the model's reply.
    let xss = report("evil<script>alert(1)</script>", "peek", "");
    let (status, body) = s
        .post(
            "/api/v1/jobs",
            &json!({ "report": xss, "expert": "static" }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let evil = body["jobs"][0]["id"].as_i64().unwrap();

    // List: filters, search, keyset pagination, bad filters.
    let (_, page) = s.get("/api/v1/jobs?status=queued").await;
    assert_eq!(page["total"], 3);
    let (_, page) = s.get("/api/v1/jobs?q=INC").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(page["jobs"][0]["id"], second);
    let (_, one) = s.get("/api/v1/jobs?limit=1").await;
    assert_eq!(one["jobs"][0]["id"], evil);
    let before = one["next_before"].as_i64().unwrap();
    let (_, two) = s
        .get(&format!("/api/v1/jobs?limit=2&before={before}"))
        .await;
    let ids: Vec<i64> = two["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![second, first]);
    assert_error(s.get("/api/v1/jobs?status=sleeping").await, 400, "status");
    assert_error(s.get("/api/v1/jobs?verdict=maybe").await, 400, "verdict");
    assert_error(s.get("/api/v1/jobs?limit=0").await, 400, "limit");
    assert_error(s.get("/api/v1/jobs?before=x").await, 400, "");

    // Reviewing a queued job is a conflict; cancel and restart move it along.
    assert_error(
        s.post(
            &format!("/api/v1/jobs/{second}/review"),
            &json!({"decision": "correct"}),
        )
        .await,
        409,
        "",
    );
    let (status, got) = s
        .post(&format!("/api/v1/jobs/{second}/cancel"), &json!({}))
        .await;
    assert_eq!(
        (status, got["job"]["status"].as_str()),
        (200, Some("cancelled"))
    );
    assert_error(
        s.post(&format!("/api/v1/jobs/{second}/cancel"), &json!({}))
            .await,
        409,
        "cancel",
    );
    let (status, got) = s
        .post(&format!("/api/v1/jobs/{second}/restart"), &json!({}))
        .await;
    assert_eq!(
        (status, got["job"]["status"].as_str()),
        (200, Some("queued"))
    );
    assert_error(
        s.post(&format!("/api/v1/jobs/{second}/restart"), &json!({}))
            .await,
        409,
        "restart",
    );

    // Run the XSS job as a worker would: claim (oldest first), spans, a hostile reply, finish.
    let store = &s.store;
    let mut claimed = None;
    while let Some(job) = store.claim("w1", "test").await.unwrap() {
        if job.id == evil {
            claimed = Some(job);
        } else {
            store
                .fail(job.id, job.attempt, "failed <b>on purpose</b>")
                .await
                .unwrap();
        }
    }
    let job = claimed.expect("the XSS job was queued");
    store.put_span(evil, job.attempt, 0, &json!({"Seq": 0, "Nesting": 0, "Type": "flow", "Name": "assessment-kcsan", "Started": "2026-01-01T00:00:00.000Z", "Finished": "2026-01-01T00:00:01.500Z"})).await.unwrap();
    store.put_span(evil, job.attempt, 1, &json!({"Seq": 1, "Nesting": 1, "Type": "llm", "Name": "expert<script>", "Model": "m<script>", "Started": "2026-01-01T00:00:00.100Z", "Finished": "2026-01-01T00:00:01.000Z", "Reply": "<script>alert(3)</script>", "Thoughts": "secret thoughts", "InputTokens": 10, "OutputTokens": 5})).await.unwrap();
    store.put_span(evil, job.attempt, 2, &json!({"Seq": 2, "Nesting": 2, "Type": "tool", "Name": "codesearch-definition-source", "Started": "2026-01-01T00:00:00.200Z", "Finished": "2026-01-01T00:00:00.300Z", "Args": {"Name": "<img src=x onerror=alert(4)>"}})).await.unwrap();
    store
        .put_transcript(
            evil,
            job.attempt,
            0,
            &json!({"event": "response", "text": "hi"}),
        )
        .await
        .unwrap();
    store.finish(evil, job.attempt, &Outcome {
        benign: false,
        confidence: 0.75,
        results: json!({"Benign": false, "Confident": true, "Explanation": "<script>alert(5)</script> [x](javascript:alert(6))", "Evidence": []}),
    }).await.unwrap();

    // The pages render every hostile string inert.
    for path in ["/".to_string(), format!("/jobs/{evil}"), "/?q=evil".into()] {
        let (status, html) = s.text(&path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            !html.contains("<script"),
            "{path} holds a live <script>: {html}"
        );
        assert!(!html.contains("<img"), "{path} holds a live <img>");
        assert!(
            !html.contains("<b>on purpose"),
            "{path} renders an error as markup"
        );
        assert!(
            !html.contains("href=\"javascript:"),
            "{path} holds a javascript: link"
        );
    }
    let (_, list) = s.text("/").await;
    for column in [
        "ID",
        "Workflow",
        "Result",
        "Correct",
        "Bug title",
        "Created",
        "Started",
        "Finished",
        "Revision",
        "Error",
    ] {
        assert!(
            list.contains(&format!("<th>{column}</th>")),
            "the list has a {column} column"
        );
    }
    assert!(list.contains("evil&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(list.contains("Harmful ❌ (75%)"));
    let (_, page) = s.text(&format!("/jobs/{evil}")).await;
    assert!(
        page.contains("&lt;script&gt;alert(5)&lt;/script&gt;"),
        "the explanation is shown, escaped"
    );
    assert!(
        page.contains("<pre class=\"report\">")
            && page.contains("in evil&lt;script&gt;alert(1)&lt;/script&gt; / peek\n"),
        "the crash report is shown, escaped"
    );
    assert!(page.contains("<details class=\"span\"><summary>#0 flow <b>assessment-kcsan</b>"));
    assert!(page.contains("1500 ms"), "span durations");
    assert!(page.contains("15 tokens"));
    assert!(
        !page.contains("secret thoughts"),
        "thoughts are for reviewers only"
    );
    // The tool span nests inside the llm span inside the flow span.
    let flow_at = page.find("#0 flow").unwrap();
    let tool_at = page.find("#2 tool").unwrap();
    assert_eq!(page[flow_at..tool_at].matches("</details>").count(), 0);

    // The export: inputs, results, trajectory and transcript in one document.
    let (status, export) = s.get(&format!("/api/v1/jobs/{evil}/export")).await;
    assert_eq!(status, 200);
    assert_eq!(export["format"], "racejudge-job/1");
    assert_eq!(
        export["inputs"]["title"],
        json!(format!(
            "KCSAN: data-race in evil<script>alert(1)</script> / peek"
        ))
    );
    assert_eq!(export["results"]["Benign"], false);
    assert_eq!(
        export["attempts"][0]["trajectory"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(export["attempts"][0]["transcript"][0]["text"], "hi");

    // Review through the API, then through the form (CSRF checked), and see the history.
    assert_error(
        s.post(
            &format!("/api/v1/jobs/{evil}/review"),
            &json!({"decision": "wrong"}),
        )
        .await,
        400,
        "",
    );
    let (status, entry) = s
        .post(
            &format!("/api/v1/jobs/{evil}/review"),
            &json!({"decision": "correct", "reason": "looks right", "reviewer": "ann"}),
        )
        .await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["decision"], "correct");
    let resp = s
        .form(
            &format!("/jobs/{evil}/review"),
            "csrf=forged&decision=incorrect&reviewer=eve&reason=x",
        )
        .await;
    assert_eq!(resp.status().as_u16(), 403);
    let token = csrf(&page);
    let resp = s.form(&format!("/jobs/{evil}/review"), &format!("csrf={token}&decision=incorrect&reviewer=bob&reason=%3Cscript%3Ebad%3C%2Fscript%3E+lock")).await;
    assert_eq!(resp.status().as_u16(), 303);
    let (_, got) = s.get(&format!("/api/v1/jobs/{evil}")).await;
    assert_eq!(got["job"]["review"], "incorrect");
    assert_eq!(got["reviews"].as_array().unwrap().len(), 2);
    let (_, page) = s.text(&format!("/jobs/{evil}")).await;
    assert!(page.contains("&lt;script&gt;bad&lt;/script&gt; lock"));
    assert!(!page.contains("<script"));
    let (_, filtered) = s.get("/api/v1/jobs?review=incorrect&verdict=harmful").await;
    assert_eq!(filtered["total"], 1);

    // Stats: one reviewed verdict, incorrect: said harmful, really benign.
    let (_, stats) = s.get("/api/v1/stats").await;
    assert_eq!(stats["groups"][0]["confusion"]["false_harmful"], 1);
    assert_eq!(stats["groups"][0]["accuracy"], 0.0);
    let (status, html) = s.text("/stats").await;
    assert_eq!(status, 200);
    assert!(html.contains("<td class=\"accuracy\">0.0%</td>"), "{html}");
    let (_, workers) = s.get("/api/v1/workers").await;
    assert_eq!(workers["workers"][0]["name"], "w1");
    assert_eq!(s.text("/workers").await.0, 200);

    // The submit form: CSRF required, a good post queues the job and redirects to it.
    let (_, form) = s.text("/submit").await;
    let token = csrf(&form);
    let body = format!(
        "csrf={token}&report={}&expert=static",
        url(&report("x1", "y1", ""))
    );
    let resp = s.form("/submit", &body).await;
    assert_eq!(resp.status().as_u16(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/jobs/"), "{location}");
    let resp = s
        .form(
            "/submit",
            &format!("csrf=nope&report={}", url(&report("x1", "y1", ""))),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 403);

    // Restarting the reviewed job clears its review (the journal says why).
    let (status, _) = s
        .post(&format!("/api/v1/jobs/{evil}/restart"), &json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, got) = s.get(&format!("/api/v1/jobs/{evil}")).await;
    assert_eq!(got["job"]["review"], "unreviewed");
    assert_eq!(got["reviews"].as_array().unwrap().len(), 3);
}

fn url(text: &str) -> String {
    server::html::url_param(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_pages_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite:{}", dir.path().join("jobs.db").display()))
        .await
        .unwrap();
    exercise(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_pages_on_postgres() {
    let Some(url) = testkit::postgres_url_or_skip("api_and_pages_on_postgres") else {
        return;
    };
    exercise(
        Store::open(&testkit::fresh_postgres_database(&url, "rj_server_api").await)
            .await
            .unwrap(),
    )
    .await;
}
