//! Translation between the tool layer's types ([`tools::ToolSpec`], tool results and
//! [`tools::ToolError`]) and MCP's (`rmcp::model::Tool`, `CallToolResult`).
//!
//! The mapping is deliberately the identity on names, descriptions and schemas so a tool answers
//! over MCP exactly as it does to our own agent; only MCP-specific framing is added here
//! (read-only annotations, the text + `structuredContent` result shape, `isError` results).

use std::sync::Arc;

use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde_json::Value;
use tools::{ToolError, ToolSpec};

use crate::McpError;

/// The longest tool name we serve. Gemini caps function names at 64 characters and Claude Code
/// exposes a tool as `mcp__<server>__<name>`; 48 leaves room for a server name of up to 11.
pub const MAX_TOOL_NAME_LEN: usize = 48;

/// Checks that `name` is usable as-is by MCP clients and the LLM APIs behind them.
///
/// MCP allows `[A-Za-z0-9_.-]{1,128}`, but the names end up as function names in LLM APIs:
/// Anthropic's allow no dot and Gemini's must start with a letter or underscore. We accept the
/// intersection, so no client ever has to rename a tool.
pub fn check_tool_name(name: &str) -> Result<(), McpError> {
    let reject = |reason: String| {
        Err(McpError::InvalidToolName {
            name: name.to_string(),
            reason,
        })
    };
    let Some(first) = name.chars().next() else {
        return reject("the name is empty".into());
    };
    if name.len() > MAX_TOOL_NAME_LEN {
        return reject(format!(
            "{} characters, more than {MAX_TOOL_NAME_LEN}",
            name.len()
        ));
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return reject(format!("starts with {first:?}, not a letter or '_'"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return reject(format!(
            "contains {bad:?}; only ASCII letters, digits, '_' and '-' are allowed"
        ));
    }
    Ok(())
}

/// The MCP declaration of one tool.
pub fn mcp_tool(spec: &ToolSpec) -> Tool {
    let input_schema = match schema_object(&spec.input_schema) {
        Some(schema) => schema,
        None => {
            // MCP requires an object schema for arguments; a tool without one takes no arguments
            // we can describe, so advertise the most permissive object rather than dropping it.
            tracing::warn!(tool = spec.name, "input schema is not a JSON object schema");
            let mut schema = JsonObject::new();
            schema.insert("type".into(), Value::from("object"));
            schema
        }
    };
    let annotations = ToolAnnotations::with_title(title_of(spec.name))
        .read_only(true)
        .destructive(false)
        .idempotent(true)
        .open_world(false);
    let mut tool = Tool::new(spec.name, spec.description, Arc::new(input_schema))
        .with_title(title_of(spec.name))
        .with_annotations(annotations);
    // MCP only allows object output schemas; clients validate `structuredContent` against it, so
    // an unusable one is omitted rather than sent.
    if let Some(output) = schema_object(&spec.output_schema)
        && output.get("type").and_then(Value::as_str) == Some("object")
    {
        tool = tool.with_raw_output_schema(Arc::new(output));
    }
    tool
}

/// `{"type": "object", ...}` as a JSON object, or `None` when the schema is not an object.
///
/// Integer formats are made standard here too, not only where the code tools generate their
/// schemas: the report tools' schemas come from other crates (the report model's derive), and
/// clients warn about every `uint32` they see.
fn schema_object(schema: &Value) -> Option<JsonObject> {
    let mut schema = schema.clone();
    tools::schema::standard_integer_formats(&mut schema);
    match schema {
        Value::Object(object) => Some(object),
        _ => None,
    }
}

/// `codesearch-definition-source` → `Codesearch definition source`, `assess-kcsan` → `Assess
/// KCSAN`: a readable title for client UIs.
fn title_of(name: &str) -> String {
    let words: Vec<String> = name
        .split(['-', '_'])
        .filter(|w| !w.is_empty())
        .enumerate()
        .map(|(i, word)| match word {
            "kcsan" => "KCSAN".to_string(),
            _ if i == 0 => {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            }
            _ => word.to_string(),
        })
        .collect();
    words.join(" ")
}

/// A successful tool result: the JSON as a text block (for clients that only read text) and,
/// when it is an object, as `structuredContent` (MCP requires structured content to be an object).
pub fn success(value: Value) -> CallToolResult {
    if value.is_object() {
        CallToolResult::structured(value)
    } else {
        CallToolResult::success(vec![ContentBlock::text(value.to_string())])
    }
}

/// A failed tool call as an `isError: true` result, so the client shows the message to the model
/// (a JSON-RPC error would reach it as an opaque "internal error").
pub fn failure(err: &ToolError) -> CallToolResult {
    failure_message(err.to_string())
}

pub fn failure_message(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(input: Value, output: Value) -> ToolSpec {
        ToolSpec {
            name: "codesearch-file-index",
            description: "Lists the entities a file defines.",
            input_schema: input,
            output_schema: output,
        }
    }

    #[test]
    fn reference_tool_names_are_accepted() {
        for name in [
            "codesearch-definition-source",
            "codesearch-find-references",
            "read-file",
            "parse-kcsan-report",
            "_private",
        ] {
            assert!(check_tool_name(name).is_ok(), "{name} should be accepted");
        }
    }

    #[test]
    fn names_llm_apis_reject_are_refused_with_the_reason() {
        let cases = [
            ("", "empty"),
            ("read.file", "'.'"),
            ("read file", "' '"),
            ("9lives", "starts with '9'"),
            ("-dash", "starts with '-'"),
        ];
        for (name, reason) in cases {
            let err = check_tool_name(name).expect_err(name).to_string();
            assert!(err.contains(reason), "{name:?}: {err}");
        }
        let long = "a".repeat(MAX_TOOL_NAME_LEN + 1);
        assert!(check_tool_name(&long).is_err());
        assert!(check_tool_name(&long[1..]).is_ok());
    }

    #[test]
    fn declaration_keeps_name_description_and_schemas() {
        let input = json!({"type": "object", "properties": {"SourceFile": {"type": "string"}}, "required": ["SourceFile"]});
        let output = json!({"type": "object", "properties": {"Entities": {"type": "array"}}});
        let tool = mcp_tool(&spec(input.clone(), output.clone()));
        let wire = serde_json::to_value(&tool).unwrap();
        assert_eq!(wire["name"], "codesearch-file-index");
        assert_eq!(wire["description"], "Lists the entities a file defines.");
        assert_eq!(wire["inputSchema"], input);
        assert_eq!(wire["outputSchema"], output);
        assert_eq!(wire["annotations"]["readOnlyHint"], true);
        assert_eq!(wire["annotations"]["destructiveHint"], false);
        assert_eq!(wire["title"], "Codesearch file index");
    }

    #[test]
    fn titles_are_readable() {
        assert_eq!(title_of("assess-kcsan"), "Assess KCSAN");
        assert_eq!(title_of("parse-kcsan-report"), "Parse KCSAN report");
        assert_eq!(title_of("grepper"), "Grepper");
        assert_eq!(title_of("read-file"), "Read file");
    }

    #[test]
    fn unusable_schemas_are_replaced_or_omitted() {
        let tool = mcp_tool(&spec(Value::Null, json!({"type": "array"})));
        let wire = serde_json::to_value(&tool).unwrap();
        assert_eq!(wire["inputSchema"], json!({"type": "object"}));
        assert!(wire.get("outputSchema").is_none(), "{wire}");
    }

    #[test]
    fn declared_integer_formats_are_standard() {
        let output = json!({"type": "object", "properties": {
            "Line": {"type": "integer", "format": "uint32", "minimum": 0},
            "Size": {"type": ["integer", "null"], "format": "uint64", "minimum": 0},
            "Cpu": {"type": "integer", "format": "int32"}
        }});
        let tool = mcp_tool(&spec(json!({"type": "object"}), output));
        let wire = serde_json::to_value(&tool).unwrap();
        let props = &wire["outputSchema"]["properties"];
        assert_eq!(props["Line"]["format"], "int64", "{wire}");
        assert!(props["Size"].get("format").is_none(), "{wire}");
        assert_eq!(props["Cpu"]["format"], "int32", "{wire}");
    }

    #[test]
    fn object_results_carry_text_and_structured_content() {
        let value = json!({"Lines": ["a", "b"]});
        let wire = serde_json::to_value(success(value.clone())).unwrap();
        assert_eq!(wire["structuredContent"], value);
        assert_eq!(wire["isError"], false);
        let text = wire["content"][0]["text"].as_str().unwrap();
        assert_eq!(serde_json::from_str::<Value>(text).unwrap(), value);
    }

    #[test]
    fn non_object_results_are_text_only() {
        let wire = serde_json::to_value(success(json!(["x"]))).unwrap();
        assert!(wire.get("structuredContent").is_none());
        assert_eq!(wire["content"][0]["text"], "[\"x\"]");
    }

    #[test]
    fn tool_errors_become_error_results_with_the_message() {
        let err = ToolError::PathEscape {
            path: "../../etc/passwd".into(),
            reason: "it climbs above the root".into(),
        };
        let wire = serde_json::to_value(failure(&err)).unwrap();
        assert_eq!(wire["isError"], true);
        let text = wire["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("outside the kernel tree"), "{text}");
        assert!(text.contains("../../etc/passwd"), "{text}");
    }
}
