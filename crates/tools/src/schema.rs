//! JSON schemas and argument decoding shared by every tool.
//!
//! Arguments are flat structs deriving `serde::Deserialize` and `schemars::JsonSchema`;
//! [`schema_of`] renders them inlined (no `$ref`/`$defs`, which several providers reject).
//! [`tool_spec`] builds a tool's spec from those types; [`parse_args`] turns serde's complaint
//! into a [`ToolError::BadArguments`] that names the tool.
//!
//! Argument schemas follow serde's *deserialize* contract (a field with a default is optional)
//! and result schemas its *serialize* contract (a field with `skip_serializing_if` is optional,
//! an `Option` without it is required and nullable): MCP clients validate every result against
//! the advertised `outputSchema`, so the schema must describe what serialisation really emits.
//! Integer formats are the standard `int32`/`int64` (or none): schemars' `uint32`/`uint64` are
//! unknown to JSON Schema and OpenAPI tooling, which warns about them on every call.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
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
        output_schema: output_schema_of::<O>(),
    }
}

/// The inlined draft 2020-12 schema of `T` as a value to *decode* (tool arguments), without the
/// `$schema`/`title` decoration.
pub fn schema_of<T: JsonSchema>() -> Value {
    generate::<T>(SchemaSettings::draft2020_12().for_deserialize())
}

/// The inlined draft 2020-12 schema of `T` as a value *encoded* by serde (tool results): what
/// `to_json` of a `T` always satisfies.
pub fn output_schema_of<T: JsonSchema>() -> Value {
    generate::<T>(SchemaSettings::draft2020_12().for_serialize())
}

fn generate<T: JsonSchema>(settings: SchemaSettings) -> Value {
    let schema = settings
        .with(|s| s.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<T>();
    let mut value = schema.to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.remove("$schema");
        obj.remove("title");
    }
    standard_integer_formats(&mut value);
    value
}

/// Rewrites schemars' Rust-specific integer formats (`uint8` … `uint64`, `uint`, `int8`,
/// `int16`, `int128`, `uint128`) anywhere in `schema` to the standard `int32`/`int64` where
/// every value fits, and drops the format where none does (`minimum: 0` still says unsigned).
/// Public so schemas built elsewhere (the report model's) can be served the same way.
pub fn standard_integer_formats(schema: &mut Value) {
    match schema {
        Value::Object(obj) => {
            let is_integer = match obj.get("type") {
                Some(Value::String(t)) => t == "integer",
                Some(Value::Array(types)) => types.iter().any(|t| t == "integer"),
                _ => false,
            };
            if is_integer && let Some(Value::String(format)) = obj.get("format") {
                match format.as_str() {
                    "int32" | "int64" => {}
                    "int8" | "int16" | "uint8" | "uint16" => {
                        obj.insert("format".into(), Value::from("int32"));
                    }
                    "uint32" => {
                        obj.insert("format".into(), Value::from("int64"));
                    }
                    _ => {
                        obj.remove("format");
                    }
                }
            }
            obj.values_mut().for_each(standard_integer_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(standard_integer_formats),
        _ => {}
    }
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

    #[derive(Debug, serde::Serialize, JsonSchema)]
    #[allow(dead_code)]
    struct Out {
        #[serde(rename = "Always")]
        always: bool,
        #[serde(rename = "WhenTrue", skip_serializing_if = "std::ops::Not::not")]
        when_true: bool,
        #[serde(rename = "Nullable")]
        nullable: Option<String>,
        #[serde(rename = "Small")]
        small: u8,
        #[serde(rename = "Line")]
        line: u32,
        #[serde(rename = "Count")]
        count: usize,
        #[serde(rename = "Bits")]
        bits: u64,
    }

    #[test]
    fn output_schemas_require_only_what_serialisation_always_emits() {
        let schema = output_schema_of::<Out>();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        // Before: WhenTrue was required although a false value is left out.
        assert!(!required.contains(&"WhenTrue"), "{schema}");
        for field in ["Always", "Nullable", "Line", "Count", "Bits"] {
            assert!(required.contains(&field), "{field}: {schema}");
        }
        let value = to_json(&Out {
            always: false,
            when_true: false,
            nullable: None,
            small: 0,
            line: 0,
            count: 0,
            bits: 0,
        })
        .unwrap();
        for field in &required {
            assert!(value.get(*field).is_some(), "{field} missing from {value}");
        }
    }

    #[test]
    fn integer_formats_are_standard() {
        let schema = output_schema_of::<Out>();
        let props = &schema["properties"];
        assert_eq!(props["Small"]["format"], "int32", "{schema}");
        assert_eq!(props["Line"]["format"], "int64", "{schema}");
        assert!(props["Count"].get("format").is_none(), "{schema}");
        assert!(props["Bits"].get("format").is_none(), "{schema}");
        assert_eq!(props["Bits"]["minimum"], 0, "{schema}");
        let text = schema_of::<Out>().to_string();
        assert!(!text.contains("uint"), "{text}");
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
