//! Tool-argument schemas, reduced to what Gemini accepts.
//!
//! Gemini's `parametersJsonSchema` takes a JSON-Schema *subset*; `$schema`, `$defs` + `$ref`,
//! `if/then/else`, `default`, `const` and friends have all caused HTTP 400s in the field
//! (google-gemini/gemini-cli#13326). [`for_gemini`] therefore inlines local `$ref`s and keeps only
//! an allowlist of keywords. `additionalProperties` is kept: the reference system sends it on
//! every schema through `parametersJsonSchema` in production. OpenAI and Anthropic get the schema
//! with only `$ref`s inlined ([`inline_refs`]) since both accept full draft-2020 schemas but
//! local servers (llama.cpp grammar conversion) choke on references.

use serde_json::{Map, Value};

/// Keywords Gemini documents for `parametersJsonSchema`.
const GEMINI_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "enum",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "anyOf",
    "oneOf",
    "properties",
    "additionalProperties",
    "required",
    "nullable",
    "propertyOrdering",
];

/// Recursive schemas cannot be inlined forever; past this depth a reference becomes `{}`-like.
const MAX_REF_DEPTH: usize = 16;

/// The schema with local references inlined and unsupported keywords removed.
pub fn for_gemini(schema: &Value) -> Value {
    let inlined = inline_refs(schema);
    prune(&inlined)
}

/// The schema with `#/$defs/…` and `#/definitions/…` references replaced by their targets and
/// the definition tables and `$schema` removed.
pub fn inline_refs(schema: &Value) -> Value {
    let defs = collect_defs(schema);
    let mut out = resolve(schema, &defs, 0);
    if let Value::Object(map) = &mut out {
        map.remove("$defs");
        map.remove("definitions");
        map.remove("$schema");
    }
    out
}

fn collect_defs(schema: &Value) -> Map<String, Value> {
    let mut defs = Map::new();
    for table in ["definitions", "$defs"] {
        if let Some(Value::Object(map)) = schema.get(table) {
            for (name, def) in map {
                defs.insert(format!("#/{table}/{name}"), def.clone());
            }
        }
    }
    defs
}

fn resolve(value: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let mut base = match defs.get(target) {
                    Some(def) if depth < MAX_REF_DEPTH => resolve(def, defs, depth + 1),
                    // Unknown or too deep: an unconstrained object is the honest approximation.
                    _ => Value::Object(Map::from_iter([(
                        "type".to_string(),
                        Value::from("object"),
                    )])),
                };
                // Sibling keywords (e.g. a description next to the $ref) override the target's.
                if let Value::Object(base_map) = &mut base {
                    for (k, v) in map {
                        if k != "$ref" {
                            base_map.insert(k.clone(), resolve(v, defs, depth));
                        }
                    }
                }
                return base;
            }
            Value::Object(
                map.iter()
                    .filter(|(k, _)| k.as_str() != "$defs" && k.as_str() != "definitions")
                    .map(|(k, v)| (k.clone(), resolve(v, defs, depth)))
                    .collect(),
            )
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| resolve(v, defs, depth)).collect())
        }
        other => other.clone(),
    }
}

fn prune(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "properties" => {
                if let Value::Object(props) = value {
                    let props = props
                        .iter()
                        .map(|(name, s)| (name.clone(), prune(s)))
                        .collect();
                    out.insert(key.clone(), Value::Object(props));
                }
            }
            "items" | "additionalProperties" => {
                out.insert(key.clone(), prune(value));
            }
            "anyOf" | "oneOf" | "prefixItems" => {
                if let Value::Array(list) = value {
                    out.insert(key.clone(), Value::Array(list.iter().map(prune).collect()));
                }
            }
            "const" => {
                out.insert("enum".into(), Value::Array(vec![value.clone()]));
            }
            k if GEMINI_KEYWORDS.contains(&k) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inlines_refs_and_drops_unsupported_keywords() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Args",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "loc": {"$ref": "#/$defs/Loc", "description": "where"},
                "mode": {"const": "fast", "default": "fast"},
                "if": {"type": "string"}
            },
            "required": ["loc"],
            "if": {"properties": {"mode": {"const": "x"}}},
            "then": {"required": ["if"]},
            "$defs": {"Loc": {"type": "object", "properties": {"file": {"type": "string", "minLength": 1}}}}
        });
        let out = for_gemini(&schema);
        assert_eq!(
            out,
            json!({
                "title": "Args",
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "loc": {"type": "object", "description": "where", "properties": {"file": {"type": "string"}}},
                    "mode": {"enum": ["fast"]},
                    "if": {"type": "string"}
                },
                "required": ["loc"]
            })
        );
    }

    #[test]
    fn recursive_refs_terminate() {
        let schema = json!({
            "type": "object",
            "properties": {"node": {"$ref": "#/definitions/Node"}},
            "definitions": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/Node"}}}}
        });
        let out = inline_refs(&schema);
        assert!(out.get("definitions").is_none());
        assert!(!out.to_string().contains("$ref"));
    }
}
