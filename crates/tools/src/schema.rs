//! JSON schemas and argument decoding shared by every tool.
//!
//! Arguments are flat structs deriving `serde::Deserialize` and `schemars::JsonSchema`;
//! [`schema_of`] renders them inlined (no `$ref`/`$defs`, which several providers reject).
//! [`tool_spec`] builds a tool's spec from those types; [`parse_args`] turns serde's complaint
//! into a [`ToolError::BadArguments`] that names the tool.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{ToolError, ToolSpec};

/// A tool's spec: its name and description, with the schemas of its argument and result types
/// (so a tool's declared schemas cannot drift from the types it decodes and encodes).
pub fn tool_spec<A: JsonSchema, O: JsonSchema>(
    name: &'static str,
    description: &'static str,
) -> ToolSpec {
    ToolSpec {
        name,
        description,
        input_schema: schema_of::<A>(),
        output_schema: schema_of::<O>(),
    }
}

/// The inlined draft 2020-12 schema of `T`, without the `$schema`/`title` decoration.
pub fn schema_of<T: JsonSchema>() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.remove("$schema");
        obj.remove("title");
    }
    value
}

/// Decodes a tool's arguments. Unknown keys are ignored (old prompts send `IncludeLines`); a
/// missing or mistyped key becomes a clear [`ToolError::BadArguments`].
pub fn parse_args<T: DeserializeOwned>(tool: &str, args: &Value) -> Result<T, ToolError> {
    let args = if args.is_null() {
        &Value::Object(Default::default())
    } else {
        args
    };
    if !args.is_object() {
        return Err(ToolError::BadArguments {
            tool: tool.to_string(),
            message: format!("arguments must be a JSON object, got {args}"),
        });
    }
    T::deserialize(args).map_err(|e| ToolError::BadArguments {
        tool: tool.to_string(),
        message: e.to_string(),
    })
}

/// Serialises a result struct; our result types cannot fail to serialise (no maps with
/// non-string keys, no custom serialisers), but a failure is still reported, not unwrapped.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, ToolError> {
    serde_json::to_value(value).map_err(|e| ToolError::Failed(format!("encoding result: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Inner {
        /// A name.
        #[serde(rename = "Name")]
        name: String,
    }

    #[derive(Debug, serde::Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Outer {
        /// Items.
        #[serde(rename = "Items")]
        items: Vec<Inner>,
    }

    #[test]
    fn schemas_are_inlined() {
        let text = schema_of::<Outer>().to_string();
        assert!(!text.contains("$ref") && !text.contains("$defs"), "{text}");
        assert!(text.contains("\"Name\""), "{text}");
    }

    #[test]
    fn bad_args_name_the_problem() {
        let err = parse_args::<Inner>("t", &serde_json::json!({"Nome": 1})).unwrap_err();
        assert!(err.to_string().contains("missing field `Name`"), "{err}");
        let ok: Inner =
            parse_args("t", &serde_json::json!({"Name": "x", "IncludeLines": true})).unwrap();
        assert_eq!(ok.name, "x");
        assert!(parse_args::<Inner>("t", &serde_json::json!([1])).is_err());
    }
}
