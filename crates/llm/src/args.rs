//! Tool-call arguments that did not parse.
//!
//! OpenAI-compatible servers return `function.arguments` as a JSON string that the model wrote,
//! and models sometimes write invalid JSON. Dropping such a call would leave the model confused;
//! failing the turn would waste it. Instead the call reaches the loop with its arguments replaced
//! by a marker object ([`malformed_args`]); [`ToolCall::argument_error`] tells the loop to answer
//! the call with that error, and adapters replay the raw string ([`malformed_raw`]) in history.

use serde_json::{Value, json};

use crate::ToolCall;

/// The single key of the marker object that replaces unparseable arguments.
pub const MALFORMED_ARGS_KEY: &str = "__malformed_arguments__";

/// The marker object for arguments `raw` that failed to parse with `error`.
pub fn malformed_args(raw: &str, error: &str) -> Value {
    json!({ MALFORMED_ARGS_KEY: { "raw": raw, "error": error } })
}

/// The raw argument text if `args` is a marker object.
pub fn malformed_raw(args: &Value) -> Option<&str> {
    args.get(MALFORMED_ARGS_KEY)?.get("raw")?.as_str()
}

impl ToolCall {
    /// A message for the model when this call's arguments were not valid JSON, else `None`.
    pub fn argument_error(&self) -> Option<String> {
        let marker = self.args.get(MALFORMED_ARGS_KEY)?;
        let error = marker
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("invalid JSON");
        Some(format!(
            "the arguments of {} are not valid JSON ({error}); send a JSON object",
            self.name
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trip() {
        let args = malformed_args("{\"a\":", "EOF while parsing");
        assert_eq!(malformed_raw(&args), Some("{\"a\":"));
        let call = ToolCall {
            id: "1".into(),
            name: "grep".into(),
            args,
            signature: None,
        };
        let msg = call.argument_error().unwrap();
        assert!(
            msg.contains("grep") && msg.contains("EOF while parsing"),
            "{msg}"
        );
        let ok = ToolCall {
            id: "1".into(),
            name: "grep".into(),
            args: json!({"a": 1}),
            signature: None,
        };
        assert_eq!(ok.argument_error(), None);
        assert_eq!(malformed_raw(&ok.args), None);
    }
}
