//! The static expert: a deterministic verdict from the report and the kernel source.
//!
//! [`StaticExpert`] locates both accesses in the tree ([`locate`]), gathers facts about them
//! ([`facts`]), runs the rule table ([`rules`]) and writes a Markdown explanation that quotes the
//! lines it used. It is a pure function of (report, tree, index): no network, clock or randomness.
//! The code index (on by default in the CLI; it is the flow's `codesearch-prepare` step) finds
//! the functions of unsymbolized frames, the declared type of the racing field (a pointer is never
//! a statistic; sizes steer which expression an access of N bytes is), enumerators, and global
//! variables for races on kernel-image addresses; without it the expert scans only named files.
//! Its confidence is honest: it drops when an access could not be located or when the rules
//! barely tip the balance.

pub mod consequence;
pub mod facts;
pub mod locate;
pub mod model;
pub mod rules;
pub mod starting_point;
pub mod text;

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::json;

use crate::expert::{Assessment, Expert, ExpertError};
use crate::source::SourceTree;
use facts::{AccessFacts, RaceFacts};
use locate::Method;
use rules::{Direction, Fired};

pub struct StaticExpert {
    tree: Arc<SourceTree>,
}

impl StaticExpert {
    pub fn new(tree: Arc<SourceTree>) -> Self {
        StaticExpert { tree }
    }
}

impl Expert for StaticExpert {
    fn name(&self) -> String {
        "static".into()
    }

    fn assess(&self, report: &report::Report) -> Result<Assessment, ExpertError> {
        if report.accesses.is_empty() {
            return Err(ExpertError::NoAccess);
        }
        let facts = facts::gather(&self.tree, report);
        let mut fired = rules::evaluate(&facts);
        let quality = model::LocationQuality {
            accesses: facts.accesses.len(),
            located: facts
                .accesses
                .iter()
                .filter(|a| a.location.is_some())
                .count(),
            exact: facts
                .accesses
                .iter()
                .filter(|a| matches!(a.location.as_ref().map(|l| &l.method), Some(Method::Exact)))
                .count(),
        };
        let weights = model::Weights::checked_in();
        for f in &mut fired {
            if !f.later_tree {
                f.weight = weights.weight(&format!("rule:{}", f.rule));
            }
        }
        let features = model::features(&fired, quality, false);
        let score = weights.score(&features);
        let p_benign = model::probability_benign(score);
        let benign = p_benign >= 0.5;
        // The fitted probability is the confidence: `eval` measures how well it is calibrated.
        let confidence = p_benign.max(1.0 - p_benign);
        let confident = confidence >= model::CONFIDENT_AT && quality.located > 0;
        let consequence = consequence::derive(&fired, &facts, benign);
        let explanation = explain(
            report,
            &facts,
            &fired,
            benign,
            score,
            confidence,
            weights,
            consequence.as_ref(),
        );
        let evidence = json!({
            "score": score,
            "intercept": weights.intercept,
            "rules": fired,
            "features": features,
            // For evaluation only: the same features plus the later-tree rules.
            "features_with_later_tree": model::features(&fired, quality, true),
            "facts": facts,
            "consequence": consequence,
            "rule_table": rules::RULES.iter().map(|r| json!({
                "name": r.name, "detects": r.detects, "direction": r.direction,
                "weight": weights.weight(&format!("rule:{}", r.name)),
                "later_tree": rules::is_later_tree(r.name),
            })).collect::<Vec<_>>(),
        });
        Ok(Assessment {
            benign,
            confident,
            confidence,
            explanation,
            evidence,
            expert: self.name(),
            tokens: 0,
            failure_detectable_by: consequence.as_ref().map(|c| c.detectable_by),
            consequence: consequence.map(|c| c.sentence),
        })
    }
}

fn method_text(m: &Method) -> String {
    match m {
        Method::Exact => "report's file:line; the function there matches the frame".into(),
        Method::LineAdjusted { reported } => {
            format!("report said line {reported}; same function, nearest line touching the racing field")
        }
        Method::Drift { reported } => format!(
            "report's line {reported} is outside the function in this tree (version drift); found the function by name and searched its body"
        ),
        Method::FromOffset => "no file:line in the report; function found by name, line estimated from offset/size and the racing field".into(),
        Method::FunctionOnly => "function found by name; best matching line in its body".into(),
    }
}

fn describe_access(out: &mut String, i: usize, a: &AccessFacts) {
    let _ = write!(
        out,
        "- **Access {}** ({} of {} bytes",
        i + 1,
        a.operation,
        a.size
    );
    if a.marked_in_report {
        out.push_str(", marked");
    }
    out.push_str("): ");
    match &a.location {
        Some(l) => {
            let _ = writeln!(out, "`{}` at `{}:{}`", l.frame, l.file, l.line);
            let _ = writeln!(out, "  ```c\n  {}: {}\n  ```", l.line, l.text.trim());
            let _ = writeln!(out, "  Located by: {}.", method_text(&l.method));
            if let Some(f) = &l.function {
                let _ = writeln!(
                    out,
                    "  Enclosing function `{}` spans `{}:{}-{}`.",
                    f.name, f.file, f.start, f.end
                );
            }
        }
        None => out.push_str(
            "could not be located in this tree (no usable frame, or the function is absent).\n",
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn explain(
    report: &report::Report,
    f: &RaceFacts,
    fired: &[Fired],
    benign: bool,
    score: f64,
    confidence: f64,
    weights: &model::Weights,
    consequence: Option<&consequence::Consequence>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Race summary\n");
    let _ = writeln!(out, "{}\n", report.full_title());
    match &f.field {
        Some(field) => {
            let _ = writeln!(out, "The accesses race on `{field}`.\n");
        }
        None => {
            out.push_str("The racing variable could not be identified from the source lines.\n\n")
        }
    }
    for (i, a) in f.accesses.iter().enumerate() {
        describe_access(&mut out, i, a);
    }
    if let Some(v) = &f.value {
        let _ = writeln!(
            out,
            "\nValue changed `{:#x}` -> `{:#x}`: {} bit(s) differ, delta {}{}.",
            v.old,
            v.new,
            v.bits_changed,
            v.delta,
            if v.pointer_like {
                ", pointer-like values"
            } else {
                ""
            }
        );
    }
    if let Some(rel) = &f.kernel_release {
        let _ = writeln!(
            out,
            "\nReported on kernel `{rel}`; lines are checked against the tree analysed."
        );
    }
    let _ = writeln!(out, "\n## Synchronization context\n");
    for (i, a) in f.accesses.iter().enumerate() {
        let marking = a.marker.clone().unwrap_or_else(|| {
            if a.marked_in_report {
                "marked (per report)".into()
            } else {
                "plain".into()
            }
        });
        let locks = if a.locks.is_empty() {
            "no lock taken in the enclosing function before the access".to_string()
        } else {
            format!("holds {}", a.locks.join(", "))
        };
        let _ = writeln!(out, "- Access {}: {marking}; {locks}.", i + 1);
    }
    let _ = writeln!(
        out,
        "\n## Final classification: **{}**\n",
        if benign { "BENIGN" } else { "HARMFUL" }
    );
    let _ = writeln!(
        out,
        "Score {score:+.2} (log-odds of benign: base rate {:+.2} plus the fitted weights below), confidence {:.0}%.\n",
        weights.intercept,
        confidence * 100.0
    );
    if confidence < model::CONFIDENT_AT {
        out.push_str(&thin_evidence(f, fired));
    }
    let _ = writeln!(out, "## Reasoning\n");
    if fired.is_empty() {
        out.push_str("No rule fired; the verdict is the base rate (most KCSAN reports need only an annotation), so it is a weak guess.\n");
    }
    for r in fired {
        let claim = match r.direction {
            Direction::Benign => "points to benign",
            Direction::Harmful => "points to harmful",
        };
        if r.later_tree {
            let _ = writeln!(
                out,
                "- `{}` ({claim}; seen only in this newer tree, so not counted): {}",
                r.rule, r.reason
            );
        } else {
            let _ = writeln!(
                out,
                "- `{}` ({claim}; fitted weight {:+.2}): {}",
                r.rule, r.weight, r.reason
            );
        }
    }
    if let Some(c) = consequence {
        let _ = writeln!(
            out,
            "\n## What it would break\n\n{} Detectable by: `{}`.",
            c.sentence, c.detectable_by
        );
    }
    let _ = writeln!(
        out,
        "\n## {}\n",
        if benign {
            "Recommended annotation"
        } else {
            "Recommended fix"
        }
    );
    out.push_str(&recommendation(f, fired, benign));
    out
}

/// Says that the verdict is a lean, not a finding: what could not be established, and where
/// to get a real reading of the code.
fn thin_evidence(f: &RaceFacts, fired: &[Fired]) -> String {
    let mut missing = Vec::new();
    for (i, a) in f.accesses.iter().enumerate() {
        if a.location.is_none() {
            missing.push(format!(
                "access {} could not be located in this tree (version drift or an unsymbolized frame)",
                i + 1
            ));
        }
    }
    if fired.iter().all(|r| r.later_tree) {
        missing.push("no rule recognised what the racing value is or how it is used".into());
    }
    if f.field.is_none() {
        missing.push("the racing field could not be named".into());
    }
    let mut out = String::from(
        "**Not confident:** the evidence is thin, so this verdict leans on the base rate (most KCSAN reports need only an annotation)",
    );
    if missing.is_empty() {
        out.push_str(". ");
    } else {
        out.push_str(&format!("; {}. ", missing.join("; ")));
    }
    out.push_str(
        "For a reading of the code, run `racejudge assess --expert llm` (any provider, or a local OpenAI-compatible server).\n\n",
    );
    out
}

fn recommendation(f: &RaceFacts, fired: &[Fired], benign: bool) -> String {
    let field = f.field.clone().unwrap_or_else(|| "the racing field".into());
    let has = |name: &str| fired.iter().any(|r| r.rule == name);
    if benign {
        if has("diagnostic-read") {
            return format!(
                "Wrap the diagnostic read of `{field}` in `data_race()`; it does not affect behaviour.\n"
            );
        }
        if has("statistics-field") {
            return format!(
                "Mark the lockless accesses to `{field}` with `READ_ONCE()`/`WRITE_ONCE()` (or `data_race()` for a pure statistic) so the compiler cannot tear or fuse them.\n"
            );
        }
        return format!(
            "Pair the lockless accesses to `{field}` with `READ_ONCE()`/`WRITE_ONCE()` to document the race and prevent load/store tearing.\n"
        );
    }
    if has("lossy-read-modify-write") {
        return format!(
            "Concurrent updates of `{field}` can be lost: make it atomic or update it under the lock that serialises its writers.\n"
        );
    }
    if has("unlocked-writer-vs-locked-reader") {
        return format!(
            "Take the lock the reader holds when writing `{field}`, or publish it with `WRITE_ONCE()`/`smp_store_release()` and re-validate on the reader side.\n"
        );
    }
    if has("pointer-dereferenced") || has("pointer-cleared-or-set") {
        return format!(
            "Read `{field}` once (`READ_ONCE()`/`rcu_dereference()`), check it, and make sure the object it points to outlives the reader (RCU or a reference).\n"
        );
    }
    format!("Not a trivial fix: review the synchronisation of `{field}`.\n")
}
