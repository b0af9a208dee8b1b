//! Checks on raw incoming MCP messages, made before rmcp sees them, so that every request gets a
//! JSON-RPC answer with the right error code.
//!
//! rmcp (3.11) on its own drops a stdio line over its 16 MiB limit and a line that is not JSON
//! without a word (the client then waits forever), answers a `tools/call` whose `name` is missing
//! or whose `arguments` is not an object with `-32601 method not found` (it falls back to a custom
//! request), and over HTTP answers malformed JSON with HTTP 415. Both transports therefore pass
//! each message through [`check_message`] first; lines over the limit are answered from
//! [`IdScanner`], which finds the request's `id` without keeping the line in memory.

use serde_json::{Value, json};

/// The largest message accepted, in bytes (one stdio line, or one HTTP request body). The same
/// as rmcp's stdio limit and its HTTP client's largest SSE event, so what passes one transport
/// passes the other.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// JSON-RPC 2.0 error codes used here.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;

/// A JSON-RPC error response.
pub fn error_reply(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

/// The answer to a message over [`MAX_MESSAGE_BYTES`]; `id` from [`IdScanner`] when it found one.
pub fn too_large_reply(id: Value, len: usize) -> Value {
    error_reply(
        id,
        INVALID_REQUEST,
        format!(
            "message of {len} bytes or more exceeds the limit of {MAX_MESSAGE_BYTES} bytes; \
             it was not processed"
        ),
    )
}

/// `Some(reply)` when the message must be answered here (and not passed on), `None` when rmcp
/// should handle it.
pub fn check_message(bytes: &[u8]) -> Option<Value> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let message: Value = match serde_json::from_slice(bytes) {
        Ok(message) => message,
        Err(e) => {
            return Some(error_reply(
                Value::Null,
                PARSE_ERROR,
                format!("Parse error: the message is not valid JSON ({e})"),
            ));
        }
    };
    let object = message.as_object()?;
    // Only requests (method and id) get answers; notifications and responses pass on.
    let id = object.get("id")?;
    if object.get("method").and_then(Value::as_str) != Some("tools/call") {
        return None;
    }
    let invalid = |why: &str| {
        Some(error_reply(
            id.clone(),
            INVALID_PARAMS,
            format!("Invalid params for tools/call: {why}"),
        ))
    };
    let Some(params) = object.get("params").and_then(Value::as_object) else {
        return invalid("params must be an object with the tool's name");
    };
    match params.get("name") {
        Some(Value::String(name)) if !name.is_empty() => {}
        Some(Value::String(_)) => return invalid("name is empty"),
        Some(_) => return invalid("name must be a string"),
        None => return invalid("missing name (the tool to call)"),
    }
    match params.get("arguments") {
        None | Some(Value::Null | Value::Object(_)) => None,
        Some(_) => invalid("arguments must be an object"),
    }
}

/// Finds the top-level `"id"` of a JSON object fed to it in pieces, keeping a few bytes of state
/// rather than the message: an oversized request is answered under its own id (so the client's
/// wait for that id ends) without buffering it.
#[derive(Debug, Default)]
pub struct IdScanner {
    depth: u32,
    in_string: bool,
    escape: bool,
    expect_key: bool,
    /// The key being read at depth 1 (capped: only `id` matters).
    key: Option<Vec<u8>>,
    key_is_id: bool,
    /// The id's raw value being read.
    value: Option<Vec<u8>>,
    id: Option<Value>,
    done: bool,
}

/// Longest raw id value kept; longer ones are not ids any client sends.
const MAX_ID_BYTES: usize = 256;

impl IdScanner {
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.done {
                return;
            }
            self.step(b);
        }
    }

    /// The id found, or `null` (JSON-RPC's id for an unidentifiable request).
    pub fn id(&self) -> Value {
        self.id.clone().unwrap_or(Value::Null)
    }

    fn step(&mut self, b: u8) {
        if let Some(value) = self.value.as_mut() {
            if self.in_string {
                value.push(b);
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
            } else {
                match b {
                    b',' | b'}' => {
                        self.id = serde_json::from_slice::<Value>(value)
                            .ok()
                            .filter(|v| v.is_string() || v.is_number());
                        self.done = true;
                    }
                    b'{' | b'[' => self.done = true,
                    b'"' => {
                        self.in_string = true;
                        value.push(b);
                    }
                    _ => value.push(b),
                }
            }
            if value.len() > MAX_ID_BYTES {
                self.done = true;
            }
            return;
        }
        if self.in_string {
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
                if let Some(key) = self.key.take() {
                    self.key_is_id = key == b"id";
                }
                return;
            }
            if let Some(key) = self.key.as_mut()
                && key.len() <= 2
            {
                key.push(b);
            }
            return;
        }
        match b {
            b'"' => {
                self.in_string = true;
                if self.depth == 1 && self.expect_key {
                    self.key = Some(Vec::new());
                    self.expect_key = false;
                }
            }
            b'{' | b'[' => {
                self.depth += 1;
                self.expect_key = self.depth == 1 && b == b'{';
            }
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 {
                    self.done = true;
                }
            }
            b',' if self.depth == 1 => self.expect_key = true,
            // Taking the flag also clears it for the next key.
            b':' if self.depth == 1 && std::mem::take(&mut self.key_is_id) => {
                self.value = Some(Vec::new());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(reply: &Option<Value>) -> i64 {
        reply.as_ref().expect("answered here")["error"]["code"]
            .as_i64()
            .unwrap()
    }

    #[test]
    fn invalid_json_is_a_parse_error_with_a_null_id() {
        for text in ["{not json", "", "{\"jsonrpc\":\"2.0\",\"id\":1", "\u{0}"] {
            let reply = check_message(text.as_bytes());
            assert_eq!(code(&reply), PARSE_ERROR, "{text:?}");
            assert_eq!(reply.unwrap()["id"], Value::Null);
        }
    }

    #[test]
    fn malformed_tool_calls_are_invalid_params_under_their_id() {
        let cases = [
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"arguments": {}}}),
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": 3}}),
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": ""}}),
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "grepper", "arguments": [1]}}),
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "grepper", "arguments": "x"}}),
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call"}),
        ];
        for message in cases {
            let reply = check_message(message.to_string().as_bytes());
            assert_eq!(code(&reply), INVALID_PARAMS, "{message}");
            assert_eq!(reply.unwrap()["id"], 7, "{message}");
        }
    }

    #[test]
    fn well_formed_messages_pass_on() {
        let cases = [
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "grepper", "arguments": {"Expression": "x"}}}),
            json!({"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {"name": "read-file"}}),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            // Not a request: a notification with a broken shape is rmcp's to ignore.
            json!({"jsonrpc": "2.0", "method": "tools/call", "params": {}}),
        ];
        for message in cases {
            assert_eq!(
                check_message(message.to_string().as_bytes()),
                None,
                "{message}"
            );
        }
        let with_bom = [
            b"\xEF\xBB\xBF".as_slice(),
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
        ]
        .concat();
        assert_eq!(check_message(&with_bom), None);
    }

    fn scan(pieces: &[&str]) -> Value {
        let mut scanner = IdScanner::default();
        for piece in pieces {
            scanner.feed(piece.as_bytes());
        }
        scanner.id()
    }

    #[test]
    fn the_scanner_finds_top_level_ids_in_pieces() {
        assert_eq!(
            scan(&[r#"{"jsonrpc":"2.0","id":42,"method":"x","params":{"#]),
            42
        );
        assert_eq!(scan(&[r#"{"id""#, r#": "r-1" , "method":"#]), "r-1");
        // After a large params object, and split inside the value.
        let big = "y".repeat(10_000);
        let text =
            format!(r#"{{"method":"tools/call","params":{{"id":1,"s":"\"id\":{big}"}},"id":9"#);
        let (a, b) = text.split_at(text.len() - 1);
        assert_eq!(scan(&[a, b, "}"]), 9);
        assert_eq!(scan(&[a, b]), Value::Null, "unterminated value");
        // Nested ids, array ids and missing ids are not the request's id.
        assert_eq!(scan(&[r#"{"params":{"id":3}}"#]), Value::Null);
        assert_eq!(scan(&[r#"{"id":[1],"x":1}"#]), Value::Null);
        assert_eq!(scan(&[r#"{"idx":5,"id":6}"#]), 6);
        assert_eq!(scan(&[r#"["id",{"id":1}]"#]), Value::Null);
    }
}
