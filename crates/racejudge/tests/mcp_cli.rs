//! `racejudge mcp` end to end: the real binary on a small fixture kernel tree, spoken to by hand
//! in MCP's wire formats, over stdio (newline-delimited JSON-RPC 2.0) and over streamable HTTP on
//! 127.0.0.1 (POST /mcp, `Mcp-Session-Id`, SSE-framed responses).
//!
//! Both transports run the same scenario ([`exercise`]): initialize, tools/list, a call of every
//! tool compared with the same tool called in-process, error results, and path-escape attempts.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::util;

/// The same scenario through the MCP Inspector's CLI.
mod inspector;
/// The same scenario through the official MCP Python SDK.
mod sdk;

const PROTOCOL: &str = "2025-06-18";
/// Guards against a hung server; not a speed expectation.
const HANG_GUARD: Duration = Duration::from_secs(120);

const REPORT: &str = "\
==================================================================
BUG: KCSAN: data-race in fixture_hit / fixture_read

write to 0xffffffff82a0c4c0 of 4 bytes by task 311 on cpu 1:
 fixture_hit+0x12/0x30 kernel/fixture.c:15
 fixture_tick+0x9/0x10 kernel/fixture.c:25

read to 0xffffffff82a0c4c0 of 4 bytes by task 312 on cpu 0:
 fixture_read+0x10/0x20 kernel/fixture.c:20

Reported by Kernel Concurrency Sanitizer on:
CPU: 0 PID: 312 Comm: fixture Not tainted 6.12.0 #1
==================================================================
";

const FIXTURE_C: &str = "\
// SPDX-License-Identifier: GPL-2.0
#include <linux/fixture.h>

static struct fixture_counter counter = {
	.hits = 0,
};

/*
 * fixture_hit - counts one hit.
 *
 * Racy on purpose: the increment is a plain read-modify-write.
 */
void fixture_hit(void)
{
	counter.hits++;
}

int fixture_read(void)
{
	return READ_ONCE(counter.hits);
}

void fixture_tick(void)
{
	fixture_hit();
}
";

const FIXTURE_H: &str = "\
#ifndef _LINUX_FIXTURE_H
#define _LINUX_FIXTURE_H

struct fixture_counter {
	int hits;
	long last;
};

void fixture_hit(void);
int fixture_read(void);
void fixture_tick(void);

#endif
";

/// A tiny kernel tree plus, next to it (outside it), a file the tools must never reveal.
struct Fixture {
    _dir: TempDir,
    tree: PathBuf,
    cache: PathBuf,
}

const SECRET: &str = "SECRET-OUTSIDE-THE-TREE";

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("linux");
    let write = |rel: &str, text: &str| {
        let path = tree.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write fixture");
    };
    write("kernel/fixture.c", FIXTURE_C);
    write("include/linux/fixture.h", FIXTURE_H);
    write("Makefile", "obj-y += kernel/\n");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, SECRET).expect("write secret");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&secret, tree.join("kernel/escape.c")).expect("symlink");
    let cache = dir.path().join("cache");
    Fixture {
        _dir: dir,
        tree,
        cache,
    }
}

/// The server process; killed and reaped on drop so a failing test leaves no server behind.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Server {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

fn spawn_mcp(fx: &Fixture, extra: &[&str]) -> Server {
    let child = util::racejudge()
        .arg("mcp")
        .arg("--kernel")
        .arg(&fx.tree)
        .args(extra)
        .env("RACEJUDGE_CACHE_DIR", &fx.cache)
        .env("RACEJUDGE_LOG", "info")
        .env_remove("RUST_LOG")
        .env_remove("RACEJUDGE_KERNEL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn racejudge mcp");
    Server(child)
}

/// Lines of a child's pipe, delivered through a channel so reads can give up on a hung server.
fn line_channel(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_exit(child: &mut Server) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + HANG_GUARD;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if std::time::Instant::now() > deadline {
            panic!("racejudge mcp did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn interrupt(child: &Server) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -INT failed");
}

/// One MCP client connection, whatever the transport.
trait Client {
    /// Sends a request and returns the JSON-RPC response message with the same id.
    fn request(&mut self, id: u64, method: &str, params: Value) -> Value;
    fn notify(&mut self, method: &str, params: Value);
}

fn call(client: &mut dyn Client, id: u64, tool: &str, arguments: Value) -> Value {
    let response = client.request(
        id,
        "tools/call",
        json!({"name": tool, "arguments": arguments}),
    );
    assert!(
        response.get("error").is_none(),
        "{tool}: protocol error {response}"
    );
    response["result"].clone()
}

fn is_error(result: &Value) -> bool {
    result["isError"].as_bool().unwrap_or(false)
}

fn text_of(result: &Value) -> String {
    let content = result["content"].as_array().expect("content array");
    assert!(!content.is_empty(), "empty content: {result}");
    assert_eq!(content[0]["type"], "text", "{result}");
    content[0]["text"].as_str().expect("text").to_string()
}

/// A successful call's JSON, checked to be the same in the text block and `structuredContent`.
fn call_ok(client: &mut dyn Client, id: u64, tool: &str, arguments: Value) -> Value {
    let result = call(client, id, tool, arguments.clone());
    assert!(!is_error(&result), "{tool} {arguments} failed: {result}");
    let from_text: Value = serde_json::from_str(&text_of(&result)).expect("text block is JSON");
    assert_eq!(
        result["structuredContent"], from_text,
        "{tool}: structuredContent differs from the text block"
    );
    from_text
}

/// The error message of a call that must fail with `isError: true`.
fn call_err(client: &mut dyn Client, id: u64, tool: &str, arguments: Value) -> String {
    let result = call(client, id, tool, arguments.clone());
    assert!(
        is_error(&result),
        "{tool} {arguments} should have failed: {result}"
    );
    text_of(&result)
}

/// Arguments for one successful call of each tool, and a string its answer must contain.
fn sample_call(tool: &str) -> Option<(Value, &'static str)> {
    Some(match tool {
        "codesearch-dir-index" => (json!({"Dir": "kernel"}), "fixture.c"),
        "read-file" => (json!({"File": "kernel/fixture.c"}), "counter.hits++"),
        "codesearch-file-index" => (json!({"SourceFile": "kernel/fixture.c"}), "fixture_tick"),
        "codesearch-definition-source" => (json!({"Name": "fixture_hit"}), "counter.hits++"),
        "codesearch-definition-comment" => (json!({"Name": "fixture_hit"}), "Racy on purpose"),
        "codesearch-find-references" => (json!({"Name": "fixture_hit"}), "fixture_tick"),
        "codesearch-struct-layout" => (json!({"Name": "fixture_counter"}), "last"),
        "grepper" => (json!({"Expression": "READ_ONCE"}), "kernel/fixture.c"),
        "codesearch-function-at-line" => (
            json!({"File": "kernel/fixture.c", "Line": 15}),
            "fixture_hit",
        ),
        "assess-kcsan" => (json!({"Report": REPORT}), "counter.hits"),
        "parse-kcsan-report" => (
            json!({"Report": REPORT}),
            "KCSAN: data-race in fixture_hit / fixture_read",
        ),
        _ => return None,
    })
}

/// The same tools, in this process, over the same tree: what every MCP answer must equal.
fn in_process_toolbox(tree: &Path) -> tools::ToolBox {
    let (index, _) = codeindex::Index::build(
        tree,
        &codeindex::IndexOptions::default(),
        &codeindex::NoProgress,
    )
    .expect("index the fixture tree");
    let index = Arc::new(index);
    let expert = mcp::AssessTool::static_expert(tree, Some(Arc::clone(&index))).expect("expert");
    mcp::with_report_tools(tools::toolbox(index), Some(expert))
}

/// The scenario both transports must pass.
fn exercise(client: &mut dyn Client, tree: &Path) {
    let init = client.request(
        1,
        "initialize",
        json!({
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "racejudge-test", "version": "0"}
        }),
    );
    let info = &init["result"];
    assert_eq!(info["protocolVersion"], PROTOCOL, "{init}");
    assert_eq!(info["serverInfo"]["name"], "racejudge", "{init}");
    assert!(info["capabilities"]["tools"].is_object(), "{init}");
    let instructions = info["instructions"].as_str().unwrap_or_default();
    assert!(
        instructions.contains("parse-kcsan-report"),
        "{instructions}"
    );
    client.notify("notifications/initialized", json!({}));

    // Every tool, declared under its own name with its own description and schemas.
    let local = in_process_toolbox(tree);
    let list = client.request(2, "tools/list", json!({}));
    let listed = list["result"]["tools"]
        .as_array()
        .expect("tools array")
        .clone();
    let listed_names: BTreeSet<&str> = listed.iter().filter_map(|t| t["name"].as_str()).collect();
    let local_names: BTreeSet<&str> = local.names().collect();
    assert_eq!(listed_names, local_names);
    assert!(listed_names.contains("parse-kcsan-report"));
    assert!(listed_names.contains("assess-kcsan"));
    for tool in &listed {
        let name = tool["name"].as_str().expect("name");
        let spec = local.get(name).expect("listed tool exists").spec();
        assert_eq!(tool["description"], spec.description, "{name}");
        assert_eq!(tool["inputSchema"], spec.input_schema, "{name}");
        assert_eq!(tool["outputSchema"], spec.output_schema, "{name}");
        assert_eq!(tool["annotations"]["readOnlyHint"], true, "{name}");
    }

    // A call of every tool answers exactly what the tool answers in-process.
    let mut id = 10;
    for name in &listed_names {
        let (args, needle) = sample_call(name)
            .unwrap_or_else(|| panic!("new tool {name}: add a sample call to mcp_cli.rs"));
        id += 1;
        let over_mcp = call_ok(client, id, name, args.clone());
        let direct = local.call(name, &args).expect("in-process call");
        assert_eq!(
            over_mcp, direct,
            "{name}: MCP answer differs from in-process"
        );
        assert!(
            over_mcp.to_string().contains(needle),
            "{name}: {needle:?} not in {over_mcp}"
        );
    }

    // Tool errors are results the model can read, not protocol errors.
    let msg = call_err(
        client,
        40,
        "parse-kcsan-report",
        json!({"Report": "just a log line"}),
    );
    assert!(msg.contains("no KCSAN report found"), "{msg}");
    let msg = call_err(client, 41, "codesearch-definition-source", json!({}));
    assert!(msg.contains("Name"), "{msg}");

    // Never leaves the tree: parent components, absolute paths and symlinks out are refused.
    for (i, path) in ["../../etc/passwd", "/etc/passwd", "kernel/../../secret.txt"]
        .into_iter()
        .enumerate()
    {
        let msg = call_err(client, 50 + i as u64, "read-file", json!({"File": path}));
        assert!(msg.contains("outside the kernel tree"), "{path}: {msg}");
        assert!(!msg.contains("root:"), "{path}: leaked {msg}");
    }
    #[cfg(unix)]
    {
        let msg = call_err(client, 60, "read-file", json!({"File": "kernel/escape.c"}));
        assert!(msg.contains("outside the kernel tree"), "{msg}");
        assert!(!msg.contains(SECRET), "leaked {msg}");
    }
    let msg = call_err(client, 61, "codesearch-dir-index", json!({"Dir": "../"}));
    assert!(msg.contains("outside the kernel tree"), "{msg}");

    // An unknown tool is a JSON-RPC invalid-params error naming the tools that exist.
    let unknown = client.request(
        70,
        "tools/call",
        json!({"name": "write-file", "arguments": {}}),
    );
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    let message = unknown["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("write-file") && message.contains("read-file"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------------
// stdio

struct StdioClient {
    stdin: ChildStdin,
    stdout: Receiver<String>,
    /// Every line the server wrote to stdout, to check it is all JSON-RPC.
    seen: Vec<String>,
    /// How long to wait for one reply before declaring the server hung.
    patience: Duration,
}

impl StdioClient {
    /// A client on the child's stdin/stdout (both taken from it).
    fn attach(child: &mut Child, patience: Duration) -> Self {
        StdioClient {
            stdin: child.stdin.take().expect("stdin"),
            stdout: line_channel(child.stdout.take().expect("stdout")),
            seen: Vec::new(),
            patience,
        }
    }

    /// `initialize` with id 1; returns the answer.
    fn initialize(&mut self) -> Value {
        self.request(
            1,
            "initialize",
            json!({"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}),
        )
    }

    fn send(&mut self, message: &Value) {
        writeln!(self.stdin, "{message}").expect("write to server stdin");
        self.stdin.flush().expect("flush");
    }

    /// Sends one line as is (it may be anything but a newline).
    fn send_line(&mut self, line: &[u8]) {
        self.stdin.write_all(line).expect("write to server stdin");
        self.stdin.write_all(b"\n").expect("write to server stdin");
        self.stdin.flush().expect("flush");
    }

    /// The next message whose id is `id` (JSON null for errors about unidentifiable input).
    fn reply_to(&mut self, id: &Value) -> Value {
        loop {
            let line = self
                .stdout
                .recv_timeout(self.patience)
                .unwrap_or_else(|_| panic!("no answer with id {id}: the server stayed silent"));
            let message: Value = serde_json::from_str(&line).expect("stdout is JSON");
            if &message["id"] == id {
                return message;
            }
        }
    }
}

impl Client for StdioClient {
    fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let line = self
                .stdout
                .recv_timeout(self.patience)
                .unwrap_or_else(|_| panic!("no response to {method} (id {id})"));
            self.seen.push(line.clone());
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            if message["id"] == id {
                return message;
            }
        }
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }
}

#[test]
fn stdio_serves_every_tool_and_stops_at_stdin_eof() {
    let fx = fixture();
    let mut child = spawn_mcp(&fx, &[]);
    let stderr = line_channel(child.stderr.take().expect("stderr"));
    let mut client = StdioClient::attach(&mut child, HANG_GUARD);

    exercise(&mut client, &fx.tree);

    // Closing stdin is how a client says goodbye: the server must exit cleanly.
    let StdioClient {
        stdin,
        stdout,
        mut seen,
        ..
    } = client;
    drop(stdin);
    let status = wait_exit(&mut child);
    seen.extend(stdout.try_iter());
    let log: Vec<String> = stderr.try_iter().collect();
    assert!(
        status.success(),
        "exit {status}; stderr:\n{}",
        log.join("\n")
    );
    assert!(
        log.iter().any(|l| l.contains("index ready")),
        "{}",
        log.join("\n")
    );
    // stdout carries JSON-RPC 2.0 and nothing else (logs and progress go to stderr).
    assert!(!seen.is_empty());
    for line in &seen {
        let message: Value = serde_json::from_str(line).expect("stdout is JSON only");
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
    }
}

#[test]
fn stdio_stops_cleanly_on_ctrl_c() {
    let fx = fixture();
    let mut child = spawn_mcp(&fx, &[]);
    let stderr = line_channel(child.stderr.take().expect("stderr"));
    let mut client = StdioClient::attach(&mut child, HANG_GUARD);
    let init = client.initialize();
    assert!(init["result"].is_object(), "{init}");
    interrupt(&child);
    let status = wait_exit(&mut child);
    let log: Vec<String> = stderr.try_iter().collect();
    assert!(
        status.success(),
        "exit {status}; stderr:\n{}",
        log.join("\n")
    );
    drop(client);
}

/// Issue 13: every request gets a JSON-RPC answer, however broken; the session goes on after.
#[test]
fn stdio_answers_malformed_and_oversized_messages() {
    let fx = fixture();
    let mut child = spawn_mcp(&fx, &[]);
    let _stderr = line_channel(child.stderr.take().expect("stderr"));
    let mut client = StdioClient::attach(&mut child, HANG_GUARD);
    let init = client.initialize();
    assert!(init["result"].is_object(), "{init}");
    client.notify("notifications/initialized", json!({}));

    client.send_line(b"{\"jsonrpc\": \"2.0\", \"id\": 2, \"method\": ");
    let parse = client.reply_to(&Value::Null);
    assert_eq!(parse["error"]["code"], -32700, "{parse}");

    for (id, params) in [
        (3, json!({"arguments": {}})),
        (4, json!({"name": "grepper", "arguments": ["READ_ONCE"]})),
    ] {
        client.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}));
        let reply = client.reply_to(&json!(id));
        assert_eq!(reply["error"]["code"], -32602, "{params}: {reply}");
    }

    // Over the 16 MiB limit: refused under its id, not dropped.
    let pad = "x".repeat(mcp::wire::MAX_MESSAGE_BYTES);
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{{"name":"grepper","arguments":{{"Expression":"{pad}"}}}}}}"#
    );
    client.send_line(huge.as_bytes());
    let reply = client.reply_to(&json!(5));
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("limit")),
        "{reply}"
    );

    // The session still works.
    let ok = call_ok(
        &mut client,
        6,
        "grepper",
        json!({"Expression": "READ_ONCE"}),
    );
    assert!(ok.to_string().contains("kernel/fixture.c"), "{ok}");
    drop(client);
    let status = wait_exit(&mut child);
    assert!(status.success(), "exit {status}");
}

#[test]
fn a_missing_kernel_tree_is_an_environment_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-tree");
    let out = util::run_with_stdin(&["mcp", "--kernel", missing.to_str().expect("utf8")], b"");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-tree"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_missing_config_file_is_bad_input() {
    let fx = fixture();
    let out = util::run_with_stdin(
        &[
            "mcp",
            "--kernel",
            fx.tree.to_str().expect("utf8"),
            "--config",
            "/no/such/.config",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/.config"));
}

#[test]
fn real_tree_serves_definitions_and_keeps_paths_inside() {
    let Some(tree) = testkit::kernel_tree_or_skip("real_tree_serves_definitions") else {
        return;
    };
    // The shared cache (not a temporary one): a cold index of the whole tree takes minutes, and
    // `racejudge index` and the other real-tree tests fill the same cache.
    let mut child = Server(
        util::racejudge()
            .arg("mcp")
            .arg("--kernel")
            .arg(&tree)
            .env_remove("RACEJUDGE_KERNEL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn racejudge mcp"),
    );
    // The first call waits for the index; a cold build in a debug binary is slow.
    let mut client = StdioClient::attach(&mut child, Duration::from_secs(1800));
    let init = client.initialize();
    assert_eq!(init["result"]["serverInfo"]["name"], "racejudge", "{init}");
    client.notify("notifications/initialized", json!({}));

    let fput = call_ok(
        &mut client,
        2,
        "codesearch-definition-source",
        json!({"Name": "fput", "ContextFile": "fs/file_table.c"}),
    );
    assert_eq!(fput["SourceFile"], "fs/file_table.c", "{fput}");
    let source = fput["SourceCode"].as_str().unwrap_or_default();
    assert!(source.contains("void fput(struct file *file)"), "{source}");

    let msg = call_err(
        &mut client,
        3,
        "read-file",
        json!({"File": "../../etc/passwd"}),
    );
    assert!(msg.contains("outside the kernel tree"), "{msg}");

    drop(client);
    let status = wait_exit(&mut child);
    assert!(status.success(), "exit {status}");
}

// ---------------------------------------------------------------------------------------------
// streamable HTTP

/// A minimal HTTP/1.1 MCP client: one connection per message, `Connection: close`.
struct HttpClient {
    addr: SocketAddr,
    session: Option<String>,
    protocol: Option<String>,
}

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Box<dyn BufRead>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes `Transfer-Encoding: chunked` as it arrives, so an SSE stream can be read event by
/// event without waiting for its end.
struct Chunked<R> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            self.left = usize::from_str_radix(size, 16)
                .map_err(|e| std::io::Error::other(format!("bad chunk size {line:?}: {e}")))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n;
        if self.left == 0 {
            let mut crlf = String::new();
            self.inner.read_line(&mut crlf)?;
        }
        Ok(n)
    }
}

impl HttpClient {
    fn post(&self, host: &str, body: &Value) -> HttpResponse {
        self.send("POST", host, Some(body))
    }

    fn send(&self, method: &str, host: &str, body: Option<&Value>) -> HttpResponse {
        let body = body.map(Value::to_string).unwrap_or_default();
        self.send_raw(method, host, &[], body.as_bytes())
    }

    /// Sends `body` as is, with `extra` headers (e.g. `Origin`).
    fn send_raw(
        &self,
        method: &str,
        host: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
        let mut head = format!(
            "{method} /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(session) = &self.session {
            head.push_str(&format!("Mcp-Session-Id: {session}\r\n"));
        }
        if let Some(protocol) = &self.protocol {
            head.push_str(&format!("MCP-Protocol-Version: {protocol}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("write head");
        stream.write_all(body).expect("write body");
        read_response(BufReader::new(stream))
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }
}

fn read_response(mut reader: BufReader<TcpStream>) -> HttpResponse {
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body: Box<dyn BufRead> = if find("transfer-encoding").is_some_and(|v| v.contains("chunked"))
    {
        Box::new(BufReader::new(Chunked {
            inner: reader,
            left: 0,
            done: false,
        }))
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<u64>().ok()) {
        Box::new(BufReader::new(reader.take(len)))
    } else {
        Box::new(reader)
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// The JSON-RPC message with `id` from a response body, JSON or SSE (`data:` lines; priming
/// events without data and other messages are skipped).
fn jsonrpc_reply(mut response: HttpResponse, id: u64) -> Value {
    let content_type = response.header("content-type").unwrap_or("").to_string();
    if content_type.starts_with("application/json") {
        let mut text = String::new();
        response.body.read_to_string(&mut text).expect("read body");
        return serde_json::from_str(&text).expect("JSON body");
    }
    assert!(
        content_type.starts_with("text/event-stream"),
        "unexpected content type {content_type:?} (status {})",
        response.status
    );
    let mut data = String::new();
    loop {
        let mut line = String::new();
        let n = response.body.read_line(&mut line).expect("read SSE");
        assert!(n > 0, "SSE stream ended without the reply to id {id}");
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(rest) = line.strip_prefix("data:") {
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        } else if line.is_empty() && !data.is_empty() {
            let message: Value = serde_json::from_str(&data).expect("SSE data is JSON");
            data.clear();
            if message["id"] == id {
                return message;
            }
        }
    }
}

impl Client for HttpClient {
    fn request(&mut self, id: u64, method: &str, params: Value) -> Value {
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.post(&self.host(), &message);
        assert_eq!(response.status, 200, "{method}");
        if method == "initialize" {
            self.session = response.header("mcp-session-id").map(String::from);
            assert!(self.session.is_some(), "initialize gave no Mcp-Session-Id");
        }
        let reply = jsonrpc_reply(response, id);
        if method == "initialize" {
            self.protocol = reply["result"]["protocolVersion"]
                .as_str()
                .map(String::from);
        }
        reply
    }

    fn notify(&mut self, method: &str, params: Value) {
        let message = json!({"jsonrpc": "2.0", "method": method, "params": params});
        let response = self.post(&self.host(), &message);
        assert_eq!(response.status, 202, "{method}");
    }
}

/// Starts `racejudge mcp --http 127.0.0.1:0` and reads the bound address from its stderr.
fn spawn_http(fx: &Fixture) -> (Server, SocketAddr, Receiver<String>) {
    let mut child = spawn_mcp(fx, &["--http", "127.0.0.1:0"]);
    let stderr = line_channel(child.stderr.take().expect("stderr"));
    let mut log = Vec::new();
    loop {
        let Ok(line) = stderr.recv_timeout(HANG_GUARD) else {
            panic!("no 'listening on' line; stderr:\n{}", log.join("\n"));
        };
        if let Some(url) = line.split("listening on http://").nth(1) {
            let addr = url.trim_end_matches("/mcp").parse().expect("address");
            return (child, addr, stderr);
        }
        log.push(line);
    }
}

#[test]
fn http_serves_every_tool_with_sessions_and_stops_on_ctrl_c() {
    let fx = fixture();
    let (mut child, addr, stderr) = spawn_http(&fx);
    assert!(addr.ip().is_loopback());
    let mut client = HttpClient {
        addr,
        session: None,
        protocol: None,
    };

    exercise(&mut client, &fx.tree);

    // A foreign Host header is refused (DNS-rebinding defence): no session, no tools.
    let rebinding = client.post(
        &format!("evil.example:{}", addr.port()),
        &json!({"jsonrpc": "2.0", "id": 99, "method": "tools/list"}),
    );
    assert_eq!(rebinding.status, 403);

    // DELETE ends the session; the id is then unknown.
    let host = client.host();
    let deleted = client.send("DELETE", &host, None);
    assert!(
        (200..300).contains(&deleted.status),
        "DELETE: {}",
        deleted.status
    );
    let after = client.post(
        &host,
        &json!({"jsonrpc": "2.0", "id": 98, "method": "tools/list"}),
    );
    assert_eq!(after.status, 404, "request on a deleted session");

    interrupt(&child);
    let status = wait_exit(&mut child);
    let log: Vec<String> = stderr.try_iter().collect();
    assert!(
        status.success(),
        "exit {status}; stderr:\n{}",
        log.join("\n")
    );
    assert!(
        log.iter().any(|l| l.contains("stopped")),
        "{}",
        log.join("\n")
    );
}

#[test]
fn http_refuses_an_unknown_session() {
    let fx = fixture();
    let (_child, addr, _stderr) = spawn_http(&fx);
    let client = HttpClient {
        addr,
        session: Some("not-a-session".into()),
        protocol: Some(PROTOCOL.into()),
    };
    let response = client.post(
        &client.host(),
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    );
    assert!(
        (400..500).contains(&response.status),
        "status {}",
        response.status
    );
}

fn initialize_message(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {},
        "clientInfo": {"name": "racejudge-test", "version": "0"}}})
}

/// The body of a plain (non-SSE) JSON answer.
fn json_body(mut response: HttpResponse) -> Value {
    let mut text = String::new();
    response.body.read_to_string(&mut text).expect("read body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
}

/// The MCP spec: servers must validate `Origin` (DNS rebinding); malformed JSON is a JSON-RPC
/// parse error, a malformed tools/call a -32602, not an HTTP-level failure.
#[test]
fn http_checks_origin_and_answers_malformed_messages_in_json_rpc() {
    let fx = fixture();
    let (_child, addr, _stderr) = spawn_http(&fx);
    let mut client = HttpClient {
        addr,
        session: None,
        protocol: None,
    };
    let host = client.host();
    let init = initialize_message(1).to_string();
    for origin in [
        "http://evil.example",
        "null",
        "http://localhost.evil.example:80",
    ] {
        let response = client.send_raw("POST", &host, &[("Origin", origin)], init.as_bytes());
        assert_eq!(response.status, 403, "Origin {origin}");
    }
    let local = client.send_raw(
        "POST",
        &host,
        &[("Origin", "http://localhost:6274")],
        init.as_bytes(),
    );
    assert_eq!(local.status, 200, "a local Origin is fine");

    let parse = client.send_raw("POST", &host, &[], b"{\"jsonrpc\": \"2.0\", \"id\": 1,");
    assert_eq!(parse.status, 400);
    let reply = json_body(parse);
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    assert_eq!(reply["id"], Value::Null, "{reply}");

    let init = client.request(2, "initialize", initialize_message(2)["params"].clone());
    assert!(init["result"].is_object(), "{init}");
    client.notify("notifications/initialized", json!({}));
    let bad_call = client.post(
        &host,
        &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"arguments": {}}}),
    );
    assert_eq!(bad_call.status, 200);
    let reply = jsonrpc_reply(bad_call, 3);
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    // The session is unharmed.
    let ok = call_ok(
        &mut client,
        4,
        "grepper",
        json!({"Expression": "READ_ONCE"}),
    );
    assert!(ok.to_string().contains("kernel/fixture.c"), "{ok}");
}

/// Issue 13: idle sessions cost memory; their number is bounded (and they expire, see
/// mcp::SESSION_IDLE). Closing one makes room for the next.
#[test]
fn http_bounds_the_number_of_sessions() {
    let fx = fixture();
    let (_child, addr, _stderr) = spawn_http(&fx);
    let host = format!("127.0.0.1:{}", addr.port());
    let mut sessions = Vec::new();
    for id in 0..mcp::MAX_SESSIONS as u64 {
        let mut client = HttpClient {
            addr,
            session: None,
            protocol: None,
        };
        let init = client.request(id, "initialize", initialize_message(id)["params"].clone());
        assert!(init["result"].is_object(), "{init}");
        sessions.push(client);
    }
    let fresh = HttpClient {
        addr,
        session: None,
        protocol: None,
    };
    let refused = fresh.post(&host, &initialize_message(1000));
    assert_eq!(
        refused.status,
        503,
        "session {} over the limit",
        mcp::MAX_SESSIONS + 1
    );
    let reply = json_body(refused);
    assert_eq!(reply["id"], 1000, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("too many open sessions")),
        "{reply}"
    );

    let closed = sessions.pop().expect("a session");
    let deleted = closed.send("DELETE", &host, None);
    assert!(
        (200..300).contains(&deleted.status),
        "DELETE: {}",
        deleted.status
    );
    let mut fresh = fresh;
    let init = fresh.request(
        1001,
        "initialize",
        initialize_message(1001)["params"].clone(),
    );
    assert!(
        init["result"].is_object(),
        "room again after a DELETE: {init}"
    );
}
