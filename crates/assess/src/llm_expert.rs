//! The LLM expert: our instruction, the report as prompt, the code tools, and a typed
//! `set-results {Benign, Confident, FailureDetectableBy, Consequence}`, run through the agent
//! crate's tool-calling loop.
//!
//! [`LlmExpert`] renders the parsed report back to KCSAN's text form (so nothing but the report,
//! in particular no label metadata, reaches the model), adds the static expert's facts about the
//! tree as a starting point ([`crate::static_expert::starting_point`]), runs [`agent::Agent::run`] on a private
//! single-threaded tokio runtime (the flow engine is synchronous), and maps the outcome onto the
//! shared [`Assessment`]. The instruction ([`INSTRUCTION`]) is written in our own words from the
//! benign/harmful taxonomy.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::expert::{Assessment, Expert, ExpertError, FailureDetectableBy};
use crate::source::SourceTree;

/// The system instruction for the LLM expert.
pub const INSTRUCTION: &str = include_str!("llm_instruction.md");

/// The first user message: the report, nothing else.
pub fn prompt(report_text: &str) -> String {
    format!("The data race report is:\n\n{report_text}\n")
}

/// The first user message with the static expert's facts after the report.
pub fn prompt_with_starting_point(report_text: &str, starting_point: &str) -> String {
    format!("{}\n{starting_point}", prompt(report_text))
}

/// KCSAN's text form of a parsed report (title, both stacks, value change).
pub fn render_report(r: &report::Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "BUG: {}\n", r.title);
    for a in &r.accesses {
        let who = match a.context {
            report::AccessContext::Task { pid } => format!(" by task {pid}"),
            report::AccessContext::Interrupt => " by interrupt".into(),
            _ => String::new(),
        };
        let cpu = a.cpu.map(|c| format!(" on cpu {c}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{} to {} of {} bytes{who}{cpu}:",
            a.access_type, a.address, a.size
        );
        for f in &a.stack {
            let _ = write!(out, " {}", f.function);
            if let (Some(off), Some(size)) = (f.offset, f.size) {
                let _ = write!(out, "+{off:#x}/{size:#x}");
            }
            if let Some(m) = &f.module {
                let _ = write!(out, " [{m}]");
            }
            if let Some(file) = &f.file {
                let _ = write!(out, " {file}");
                if let Some(line) = f.line {
                    let _ = write!(out, ":{line}");
                }
            }
            if f.inline {
                out.push_str(" [inline]");
            }
            out.push('\n');
        }
        out.push('\n');
    }
    if let Some(v) = &r.value_change {
        let _ = writeln!(out, "value changed: {} -> {}", v.old, v.new);
    }
    if let Some(rel) = r
        .reported_by
        .as_ref()
        .and_then(|b| b.kernel_release.as_deref())
    {
        let _ = writeln!(out, "\nKernel release: {rel}");
    }
    out
}

/// The `set-results` schema: what the model must decide. `FailureDetectableBy` carries the
/// reference flow's name and values; a harmful verdict must give it ([`check_outputs`]).
pub fn outputs_schema() -> serde_json::Value {
    let detectors: Vec<&str> = FailureDetectableBy::ALL
        .iter()
        .map(|d| d.as_str())
        .collect();
    json!({
        "type": "object",
        "properties": {
            "Benign": {"type": "boolean", "description": "If the data race is benign (needs at most an annotation) or not."},
            "Confident": {"type": "boolean", "description": "False when the code you could read does not settle the question."},
            "FailureDetectableBy": {
                "type": "string",
                "enum": detectors,
                "description": "Required when Benign is false: which detector would catch the failure the race leads to. kasan: use-after-free or out-of-bounds access; kmsan: use of uninitialised memory; any: a crash, BUG or WARN on any kernel; user: only user space sees a wrong result; none: nothing notices."
            },
            "Consequence": {"type": "string", "description": "When Benign is false: what breaks, in one sentence (use-after-free, lost update, torn value, wrong branch, ...)."}
        },
        "required": ["Benign", "Confident"],
        "additionalProperties": false
    })
}

/// What a flat schema cannot say: a harmful verdict names its detector, and a benign one has
/// neither detector nor consequence (dropped, as the reference flow clears them).
pub fn check_outputs(mut outputs: Value) -> Result<Value, String> {
    let Some(fields) = outputs.as_object_mut() else {
        return Ok(outputs);
    };
    if fields.get("Benign") == Some(&Value::Bool(true)) {
        fields.remove("FailureDetectableBy");
        fields.remove("Consequence");
        return Ok(outputs);
    }
    if !fields.contains_key("FailureDetectableBy") {
        let allowed: Vec<&str> = FailureDetectableBy::ALL
            .iter()
            .map(|d| d.as_str())
            .collect();
        return Err(format!(
            "FailureDetectableBy is required when Benign is false: one of {}",
            allowed.join(", ")
        ));
    }
    Ok(outputs)
}

/// Runs the agent loop over the code tools of one kernel tree.
pub struct LlmExpert {
    pub model: Arc<dyn llm::ChatModel>,
    pub tools: tools::ToolBox,
    /// Where the agent's spans go and at which depth: the flow hands out a context nested under
    /// its `expert` action span, so agent, LLM and tool spans land in the flow's trajectory.
    pub context: agent::RunContext,
    /// The tree the static expert reads for the starting point of the first message; `None`
    /// sends the report alone.
    pub tree: Option<Arc<SourceTree>>,
}

impl Expert for LlmExpert {
    fn name(&self) -> String {
        format!("llm:{}", self.model.name())
    }

    fn assess(&self, report: &report::Report) -> Result<Assessment, ExpertError> {
        if report.accesses.is_empty() {
            return Err(ExpertError::NoAccess);
        }
        let report_text = render_report(report);
        let first_message = match &self.tree {
            Some(tree) => prompt_with_starting_point(
                &report_text,
                &crate::static_expert::starting_point::render(tree, report, Some(&self.tools)),
            ),
            None => prompt(&report_text),
        };
        let agent = agent::Agent::new("expert", INSTRUCTION, first_message, self.tools.clone())
            .with_outputs(outputs_schema())
            .with_output_validator(Arc::new(check_outputs))
            .with_consistency_check(agent::bool_verdict_check("Benign", "BENIGN", "HARMFUL"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ExpertError::Failed(format!("cannot start the async runtime: {e}")))?;
        let outcome = runtime
            .block_on(agent.run(self.model.as_ref(), &self.context))
            .map_err(|e| ExpertError::Unavailable(e.to_string()))?;
        let outputs = outcome.outputs.clone().unwrap_or_default();
        let benign = outputs["Benign"]
            .as_bool()
            .ok_or_else(|| ExpertError::Failed("the model gave no Benign verdict".into()))?;
        let confident = outputs["Confident"].as_bool().unwrap_or(false);
        // The validator dropped both for a benign verdict; `filter` keeps that true even for
        // outputs that bypassed it (none today).
        let failure_detectable_by = outputs["FailureDetectableBy"]
            .as_str()
            .and_then(FailureDetectableBy::parse)
            .filter(|_| !benign);
        let consequence = outputs["Consequence"]
            .as_str()
            .map(str::trim)
            .filter(|c| !benign && !c.is_empty())
            .map(str::to_string);
        // The model's own flag is all we have; keep the number modest, as it is self-reported.
        let confidence = if confident { 0.8 } else { 0.6 };
        let tokens = outcome.usage.input_tokens
            + outcome.usage.output_tokens
            + outcome.usage.thoughts_tokens;
        Ok(Assessment {
            benign,
            confident,
            confidence,
            explanation: outcome.reply.clone(),
            evidence: json!({
                "outputs": outputs,
                "llm_calls": outcome.llm_calls,
                "tool_calls": outcome.tool_calls,
                "iterations": outcome.iterations,
                "usage": outcome.usage,
                "disagreement": outcome.disagreement,
            }),
            expert: self.name(),
            tokens,
            failure_detectable_by,
            consequence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_report_round_trips_through_the_parser() {
        let text = "BUG: KCSAN: data-race in bump / peek\n\n\
write to 0xffff888100000000 of 8 bytes by task 1 on cpu 0:\n bump+0x10/0x20 kernel/stats.c:5\n\n\
read to 0xffff888100000000 of 8 bytes by task 2 on cpu 1:\n peek+0x8/0x10 kernel/stats.c:10 [inline]\n\n\
value changed: 0x0000000000000001 -> 0x0000000000000002\n";
        let r = report::parse(text).reports.remove(0);
        let rendered = render_report(&r);
        let again = report::parse(&rendered).reports.remove(0);
        assert_eq!(again.accesses, r.accesses);
        assert_eq!(again.value_change, r.value_change);
        assert!(
            rendered.contains("peek+0x8/0x10 kernel/stats.c:10 [inline]"),
            "{rendered}"
        );
    }

    #[test]
    fn instruction_covers_the_taxonomy_and_set_results() {
        for needle in [
            "statistics",
            "hint",
            "single writer",
            "fuse",
            "torn",
            "bitfield",
            "lost updates",
            "set-results",
            "Confident",
        ] {
            assert!(INSTRUCTION.contains(needle), "instruction lacks {needle:?}");
        }
        let schema = outputs_schema();
        assert_eq!(schema["required"], json!(["Benign", "Confident"]));
        assert_eq!(
            schema["properties"]["FailureDetectableBy"]["enum"],
            json!(["kasan", "kmsan", "any", "user", "none"])
        );
        assert!(INSTRUCTION.contains("FailureDetectableBy"));
        assert!(INSTRUCTION.contains("Starting point"));
    }

    #[test]
    fn harmful_outputs_need_a_detector_benign_ones_drop_it() {
        let err = check_outputs(json!({"Benign": false, "Confident": true})).unwrap_err();
        assert!(
            err.contains("FailureDetectableBy is required") && err.contains("kasan, kmsan"),
            "{err}"
        );
        let harmful = json!({"Benign": false, "Confident": true, "FailureDetectableBy": "kasan",
                             "Consequence": "The freed socket is used."});
        assert_eq!(check_outputs(harmful.clone()).unwrap(), harmful);
        assert_eq!(
            check_outputs(json!({"Benign": true, "Confident": true,
                                 "FailureDetectableBy": "any", "Consequence": "x"}))
            .unwrap(),
            json!({"Benign": true, "Confident": true})
        );
        // The schema rejects values outside the reference's list before the validator runs.
        let schema = outputs_schema();
        assert!(
            agent::schema::validate(
                &schema,
                &json!({"Benign": false, "Confident": true, "FailureDetectableBy": "ubsan"})
            )
            .is_err()
        );
    }
}
