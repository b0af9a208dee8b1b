//! Tools the MCP server adds to the code tools: they take a KCSAN report rather than a place in
//! the tree. They implement [`tools::Tool`] so they travel in the same [`tools::ToolBox`] and are
//! declared and dispatched exactly like the code tools.
//!
//! - [`ParseReportTool`] (`parse-kcsan-report`): the `report` crate's parser.
//! - [`AssessTool`] (`assess-kcsan`): an [`assess::expert::Expert`] (in practice the static,
//!   rule-based one) judging the report against the served tree.

use std::path::Path;
use std::sync::Arc;

use assess::expert::{Expert, ExpertError};
use assess::source::SourceTree;
use assess::static_expert::StaticExpert;
use serde_json::{Value, json};
use tools::{Tool, ToolError, ToolSpec};

/// Name of the argument carrying the report text, shared by the report-taking tools.
const REPORT_ARG: &str = "Report";

/// Reads the `Report` string argument.
fn report_arg<'a>(tool: &str, args: &'a Value) -> Result<&'a str, ToolError> {
    match args.get(REPORT_ARG) {
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text),
        Some(Value::String(_)) => Err(ToolError::BadArguments {
            tool: tool.to_string(),
            message: format!("{REPORT_ARG} is empty; pass the KCSAN report text"),
        }),
        Some(other) => Err(ToolError::BadArguments {
            tool: tool.to_string(),
            message: format!(
                "{REPORT_ARG} must be a string holding the report text, not {}",
                json_kind(other)
            ),
        }),
        None => Err(ToolError::BadArguments {
            tool: tool.to_string(),
            message: format!("missing required argument {REPORT_ARG} (the KCSAN report text)"),
        }),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn report_input_schema(what: &str) -> Value {
    json!({
        "type": "object",
        "properties": {
            REPORT_ARG: {
                "type": "string",
                "description": format!("{what} Console-log timestamps, email quoting and CRLF are tolerated.")
            }
        },
        "required": [REPORT_ARG],
        "additionalProperties": false
    })
}

/// The report model's schema with standard integer formats (the model derives `uint32`/`uint64`),
/// so the declared spec is exactly what MCP clients are sent.
fn report_schema() -> Value {
    let mut schema = report::json_schema();
    tools::schema::standard_integer_formats(&mut schema);
    schema
}

/// `parse-kcsan-report`: KCSAN report text in, the structured report model (the `report` crate's
/// documented JSON, docs/report-format.md) out.
#[derive(Debug, Default, Clone, Copy)]
pub struct ParseReportTool;

impl ParseReportTool {
    pub const NAME: &'static str = "parse-kcsan-report";
}

impl Tool for ParseReportTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: Self::NAME,
            description: "Parses a KCSAN data-race report (the text from 'BUG: KCSAN:' to the \
closing '=====' line, or a whole console log or email containing one or more reports) into its \
structure: the report kind, the two racing accesses (operation, size, address, task, CPU, \
marked/atomic qualifiers, stack frames with function, offset and source file:line), the value \
change and the kernel version line. Use it first, to know which functions and lines to read \
with the code tools.",
            input_schema: report_input_schema("The KCSAN report text, as printed by the kernel."),
            output_schema: report_schema(),
        }
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        let text = report_arg(Self::NAME, args)?;
        let parsed = report::parse(text);
        if parsed.reports.is_empty() {
            let why = parsed
                .warnings
                .iter()
                .map(|w| w.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ToolError::BadArguments {
                tool: Self::NAME.to_string(),
                message: format!(
                    "no KCSAN report found in the {} bytes given (expected a 'BUG: KCSAN:' line){}",
                    text.len(),
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(": {why}")
                    }
                ),
            });
        }
        serde_json::to_value(&parsed)
            .map_err(|e| ToolError::Failed(format!("cannot serialise the parsed report: {e}")))
    }
}

/// `assess-kcsan`: KCSAN report text in, an expert's verdict (benign or harmful), its confidence,
/// a Markdown explanation quoting the source lines used, and the structured evidence out.
pub struct AssessTool {
    expert: Arc<dyn Expert>,
}

impl AssessTool {
    pub const NAME: &'static str = "assess-kcsan";

    /// The tool over any expert.
    pub fn new(expert: Arc<dyn Expert>) -> Self {
        Self { expert }
    }

    /// The tool over the deterministic static expert reading `tree` (and `index`, when given, to
    /// find functions faster and more precisely).
    pub fn static_expert(
        tree: &Path,
        index: Option<Arc<codeindex::Index>>,
    ) -> Result<Self, ToolError> {
        let source = SourceTree::new(tree, index).map_err(|source| ToolError::Io {
            path: tree.display().to_string(),
            source,
        })?;
        Ok(Self::new(Arc::new(StaticExpert::new(Arc::new(source)))))
    }

    fn output_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "Title": {"type": "string", "description": "The report's title, as syzbot writes it."},
                "Verdict": {"type": "string", "enum": ["benign", "harmful"]},
                "Benign": {"type": "boolean"},
                "Confident": {"type": "boolean", "description": "Whether the expert stands by the verdict."},
                "Confidence": {"type": "number", "minimum": 0, "maximum": 1, "description": "0.5 is a coin toss, 1 is certain."},
                "Explanation": {"type": "string", "description": "Markdown; quotes the source lines the verdict rests on."},
                "Evidence": {"type": "object", "description": "The facts gathered and the rules that fired, for checking the verdict."},
                "Expert": {"type": "string", "description": "Which expert answered (static, or llm:<model>)."},
                "Tokens": {"type": "integer", "description": "LLM tokens spent (0 for the static expert)."},
                "FailureDetectableBy": {"type": "string", "enum": ["kasan", "kmsan", "any", "user", "none"], "description": "Harmful verdicts only: the detector that would catch the failure the race leads to."},
                "Consequence": {"type": "string", "description": "Harmful verdicts only: what breaks, in one sentence."}
            },
            "required": ["Title", "Verdict", "Benign", "Confident", "Confidence", "Explanation", "Evidence", "Expert"]
        })
    }
}

impl Tool for AssessTool {
    fn spec(&self) -> ToolSpec {
        Self::declaration()
    }

    fn execute(&self, args: &Value) -> Result<Value, ToolError> {
        self.judge(args)
    }
}

impl AssessTool {
    /// The tool's spec, available before an expert exists (to declare the tool while the index
    /// is still being built).
    pub fn declaration() -> ToolSpec {
        let mut input = report_input_schema(
            "The KCSAN report text. When it holds several reports, ReportIndex picks one.",
        );
        input["properties"]["ReportIndex"] = json!({
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "0-based index of the report to judge when the text holds several."
        });
        ToolSpec {
            name: Self::NAME,
            description: "Judges a KCSAN data-race report against this kernel tree with racejudge's \
deterministic static expert: locates both racing accesses in the source, checks marking \
(READ_ONCE/WRITE_ONCE/atomics/data_race), locks held, the kind of variable (statistics, flags, \
pointers) and how the value is used, and returns a verdict (benign or harmful), a confidence, a \
Markdown explanation quoting the lines it used, and the evidence. A quick second opinion: read the \
code yourself before relying on it when Confident is false.",
            input_schema: input,
            output_schema: Self::output_schema(),
        }
    }

    fn judge(&self, args: &Value) -> Result<Value, ToolError> {
        let text = report_arg(Self::NAME, args)?;
        let which = match args.get("ReportIndex") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| ToolError::BadArguments {
                    tool: Self::NAME.to_string(),
                    message: format!(
                        "ReportIndex must be a non-negative integer, not {}",
                        json_kind(v)
                    ),
                })?,
        };
        let parsed = report::parse(text);
        let count = parsed.reports.len();
        let Some(report) = parsed.reports.get(which) else {
            return Err(ToolError::BadArguments {
                tool: Self::NAME.to_string(),
                message: if count == 0 {
                    "no KCSAN report found in the text (expected a 'BUG: KCSAN:' line)".into()
                } else {
                    format!("ReportIndex {which} is out of range: the text holds {count} report(s)")
                },
            });
        };
        let assessment = self.expert.assess(report).map_err(|e| match e {
            ExpertError::NoAccess => ToolError::BadArguments {
                tool: Self::NAME.to_string(),
                message: format!("{e}: the report lists no racing access (was it cut short?)"),
            },
            other => ToolError::Failed(other.to_string()),
        })?;
        let mut out = serde_json::to_value(&assessment)
            .map_err(|e| ToolError::Failed(format!("cannot serialise the assessment: {e}")))?;
        if let Value::Object(map) = &mut out {
            map.insert("Title".into(), Value::from(report.full_title()));
            let verdict = if assessment.benign {
                "benign"
            } else {
                "harmful"
            };
            map.insert("Verdict".into(), Value::from(verdict));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "\
==================================================================
BUG: KCSAN: data-race in do_sys_poll / fput_many

write to 0xffff8881050c8b18 of 8 bytes by task 11125 on cpu 1:
 fput_many+0x26/0x110 fs/file_table.c:338
 fput+0x15/0x20 fs/file_table.c:361

read to 0xffff8881050c8b18 of 8 bytes by task 11113 on cpu 0:
 do_sys_poll+0x1a2/0x7c0 fs/select.c:1009
 __x64_sys_poll+0x1c1/0x220 fs/select.c:1070

Reported by Kernel Concurrency Sanitizer on:
CPU: 0 PID: 11113 Comm: syz-executor.3 Not tainted 5.4.0-rc3+ #0
==================================================================
";

    #[test]
    fn parses_a_report_into_the_documented_model() {
        let out = ParseReportTool
            .execute(&json!({ "Report": REPORT }))
            .unwrap();
        let reports = out["reports"].as_array().unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(
            reports[0]["title"],
            "KCSAN: data-race in do_sys_poll / fput_many"
        );
        assert_eq!(reports[0]["accesses"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn text_without_a_report_is_a_caller_error_saying_so() {
        let err = ParseReportTool
            .execute(&json!({ "Report": "hello world" }))
            .unwrap_err();
        assert!(err.is_caller_error());
        assert!(err.to_string().contains("no KCSAN report found"), "{err}");
    }

    #[test]
    fn missing_or_mistyped_report_argument_is_named() {
        for (args, needle) in [
            (json!({}), "missing required argument Report"),
            (json!({"Report": 7}), "not a number"),
            (json!({"Report": "  "}), "Report is empty"),
        ] {
            let err = ParseReportTool.execute(&args).unwrap_err();
            assert!(err.is_caller_error());
            assert!(err.to_string().contains(needle), "{args}: {err}");
        }
    }

    #[test]
    fn spec_is_a_servable_mcp_tool() {
        let spec = ParseReportTool.spec();
        assert!(crate::check_tool_name(spec.name).is_ok());
        assert_eq!(spec.input_schema["required"], json!(["Report"]));
        assert_eq!(spec.output_schema["type"], "object");
    }

    /// A tree holding the two functions of [`REPORT`], so the static expert can locate both.
    fn tree_for_report() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let fs = dir.path().join("fs");
        std::fs::create_dir_all(&fs).unwrap();
        let mut file_table = String::new();
        for _ in 0..330 {
            file_table.push('\n');
        }
        file_table.push_str("void fput_many(struct file *file, unsigned int refs)\n{\n");
        file_table.push_str("\tif (atomic_long_sub_and_test(refs, &file->f_count)) {\n");
        file_table.push_str("\t\tfile->f_mode = 0;\n\t}\n}\n");
        std::fs::write(fs.join("file_table.c"), file_table).unwrap();
        std::fs::write(
            fs.join("select.c"),
            "int do_sys_poll(struct file *file)\n{\n\treturn file->f_mode;\n}\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn assess_returns_a_verdict_with_explanation_matching_its_schema() {
        let dir = tree_for_report();
        let tool = AssessTool::static_expert(dir.path(), None).unwrap();
        let out = tool.execute(&json!({ "Report": REPORT })).unwrap();
        let schema = tool.spec().output_schema;
        for key in schema["required"].as_array().unwrap() {
            let key = key.as_str().unwrap();
            assert!(out.get(key).is_some(), "missing {key} in {out}");
        }
        let benign = out["Benign"].as_bool().unwrap();
        assert_eq!(out["Verdict"], if benign { "benign" } else { "harmful" });
        assert_eq!(out["Title"], "KCSAN: data-race in do_sys_poll / fput_many");
        let confidence = out["Confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&confidence), "{confidence}");
        assert!(!out["Explanation"].as_str().unwrap().is_empty());
        // What a harmful race breaks, with the values the schema declares; nothing when benign.
        match out.get("FailureDetectableBy") {
            Some(d) => {
                assert!(!benign);
                let allowed = &schema["properties"]["FailureDetectableBy"]["enum"];
                assert!(allowed.as_array().unwrap().contains(d), "{d}");
                assert!(out["Consequence"].is_string());
            }
            None => assert!(benign, "a harmful verdict names its detector: {out}"),
        }
    }

    #[test]
    fn assess_refuses_bad_report_arguments_by_name() {
        let dir = tree_for_report();
        let tool = AssessTool::static_expert(dir.path(), None).unwrap();
        for (args, needle) in [
            (json!({"Report": "no report"}), "no KCSAN report found"),
            (
                json!({"Report": REPORT, "ReportIndex": 1}),
                "out of range: the text holds 1",
            ),
            (
                json!({"Report": REPORT, "ReportIndex": -1}),
                "non-negative integer",
            ),
            (json!({}), "missing required argument Report"),
        ] {
            let err = tool.execute(&args).unwrap_err();
            assert!(err.is_caller_error(), "{err}");
            assert!(err.to_string().contains(needle), "{args}: {err}");
        }
    }

    #[test]
    fn assess_on_a_missing_tree_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = AssessTool::static_expert(&dir.path().join("absent"), None)
            .err()
            .unwrap();
        assert!(matches!(err, ToolError::Io { .. }), "{err}");
    }
}
