//! A validator for the flat JSON-schema subset used by `set-results` ([`validate`]).
//!
//! Outputs are small flat objects (`{"Benign": bool}`), so a full JSON-schema engine would cost
//! build minutes for nothing. Supported: `type: object` with `properties`, `required` and
//! `additionalProperties: false`; property types `boolean`, `string`, `number`, `integer`
//! (a JSON number with no fractional part), `array` (items checked one level deep) and `enum`.
//! Unknown keywords are ignored. Messages name the offending key so the model can fix its call.

use serde_json::{Map, Value};

/// Checks that `schema` is a usable object schema (at agent definition time).
pub fn check_schema(schema: &Value) -> Result<(), String> {
    let obj = schema
        .as_object()
        .ok_or("output schema must be a JSON object")?;
    if obj.get("type").and_then(Value::as_str) != Some("object") {
        return Err("output schema must have \"type\": \"object\"".into());
    }
    if let Some(props) = obj.get("properties")
        && !props.is_object()
    {
        return Err("output schema \"properties\" must be an object".into());
    }
    for key in required(obj) {
        if !properties(obj).is_some_and(|p| p.contains_key(key)) {
            return Err(format!(
                "output schema requires {key:?} but does not define it"
            ));
        }
    }
    Ok(())
}

/// Validates `args` against `schema`. All problems are reported at once, one per line.
pub fn validate(schema: &Value, args: &Value) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return Ok(());
    };
    let Some(args) = args.as_object() else {
        return Err(format!(
            "arguments must be a JSON object, got {}",
            type_name(args)
        ));
    };
    let mut problems = Vec::new();
    for key in required(schema) {
        if !args.contains_key(key) {
            problems.push(format!("missing required argument {key:?}"));
        }
    }
    let props = properties(schema);
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    for (key, value) in args {
        match props.and_then(|p| p.get(key)) {
            Some(prop) => {
                if let Err(e) = check_value(prop, value) {
                    problems.push(format!("argument {key:?}: {e}"));
                }
            }
            None if closed => {
                let known: Vec<&str> = props
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                problems.push(format!(
                    "unexpected argument {key:?}; allowed arguments: {}",
                    known.join(", ")
                ));
            }
            None => {}
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn required(schema: &Map<String, Value>) -> impl Iterator<Item = &str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn properties(schema: &Map<String, Value>) -> Option<&Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

fn check_value(prop: &Value, value: &Value) -> Result<(), String> {
    if let Some(allowed) = prop.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return Err(format!("{value} is not one of {}", list.join(", ")));
    }
    let types: Vec<&str> = match prop.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()),
    };
    if types.iter().any(|t| type_matches(t, value)) {
        if let (Some(items), Value::Array(values)) = (prop.get("items"), value) {
            for (i, v) in values.iter().enumerate() {
                check_value(items, v).map_err(|e| format!("item {i}: {e}"))?;
            }
        }
        return Ok(());
    }
    Err(format!(
        "expected {}, got {}",
        types.join(" or "),
        type_name(value)
    ))
}

fn type_matches(t: &str, value: &Value) -> bool {
    match t {
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        // An unknown type name is the schema author's problem, not the model's.
        _ => true,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "Benign": {"type": "boolean", "description": "If the data race is benign."},
                "Kind": {"type": "string", "enum": ["flag", "counter"]},
                "Lines": {"type": "integer"},
                "Score": {"type": "number"},
                "Tags": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["Benign"],
            "additionalProperties": false
        })
    }

    #[test]
    fn accepts_valid_arguments() {
        check_schema(&schema()).unwrap();
        validate(&schema(), &json!({"Benign": true})).unwrap();
        validate(
            &schema(),
            &json!({"Benign": false, "Kind": "flag", "Lines": 3.0, "Score": 0.5, "Tags": ["a"]}),
        )
        .unwrap();
    }

    #[test]
    fn names_every_problem() {
        let err = validate(
            &schema(),
            &json!({"Kind": "lock", "Lines": 1.5, "Extra": 1}),
        )
        .unwrap_err();
        assert!(
            err.contains("missing required argument \"Benign\""),
            "{err}"
        );
        assert!(
            err.contains("argument \"Kind\": \"lock\" is not one of"),
            "{err}"
        );
        assert!(
            err.contains("argument \"Lines\": expected integer, got number"),
            "{err}"
        );
        assert!(err.contains("unexpected argument \"Extra\""), "{err}");
        let err = validate(&schema(), &json!({"Benign": "yes"})).unwrap_err();
        assert_eq!(err, "argument \"Benign\": expected boolean, got string");
        let err = validate(&schema(), &json!({"Benign": true, "Tags": [1]})).unwrap_err();
        assert!(err.contains("item 0: expected string, got number"), "{err}");
        assert!(
            validate(&schema(), &json!([true]))
                .unwrap_err()
                .contains("must be a JSON object")
        );
    }

    #[test]
    fn rejects_unusable_schemas() {
        assert!(check_schema(&json!({"type": "string"})).is_err());
        assert!(
            check_schema(&json!({"type": "object", "required": ["X"], "properties": {}})).is_err()
        );
    }
}
