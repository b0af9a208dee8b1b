//! `racejudge eval`: run an expert over a directory of labelled reports and print the metrics.
//!
//! Each file's metadata (from the `LABEL:` line on) is cut off by `assess::eval::split_labelled`
//! before the text is parsed, so no label reaches the expert. The flow is built once and run per
//! report with the same kernel tree.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use assess::crossval::{self, CvReport, Evidence};
use assess::eval::{Label, Metrics, Outcome, split_labelled};
use assess::kcsan::{FlowOptions, KernelSpec};
use assess::static_expert::model;

use super::assess::{ExpertArgs, ExpertKind, expert_factory};
use crate::exit::{self, ResultExt};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of labelled reports (`*.txt`, metadata from a `LABEL:` line on).
    pub dir: PathBuf,
    /// The kernel tree to analyse every report against (default: the linux-source-6.12 tree that
    /// scripts/fetch-kernel-source.sh unpacks into the cache).
    #[arg(long)]
    pub kernel: Option<PathBuf>,
    #[command(flatten)]
    pub expert: ExpertArgs,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Folds of the cross-validation of the static expert's fitted weights (the headline figure).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..=100))]
    pub folds: u32,
    /// Fit the static expert's weights on every report of DIR and write the table here (the
    /// checked-in one is crates/assess/src/static_expert/weights.tsv).
    #[arg(long, value_name = "FILE")]
    pub fit_weights: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.dir)
        .with_context(|| format!("reading {}", args.dir.display()))
        .bad_input()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(exit::bad_input(format!(
            "{}: no labelled *.txt reports",
            args.dir.display()
        )));
    }
    let kernel = args
        .kernel
        .clone()
        .unwrap_or_else(|| crate::paths::cache_dir().join("kernels/linux-source-6.12"));
    if !kernel.join("Makefile").is_file() {
        return Err(exit::environment(format!(
            "kernel tree {} not found (no Makefile there)",
            kernel.display()
        )));
    }
    let opts = FlowOptions {
        cache: assess::cache::Cache::new(crate::paths::cache_dir()),
        build: false,
        jobs: 1,
        use_index: !args.expert.no_index || args.expert.expert == ExpertKind::Llm,
        expert: expert_factory(&args.expert)?,
    };
    let flow =
        assess::kcsan::assessment_flow(&opts).context("building the assessment-kcsan flow")?;
    let mut outcomes = Vec::new();
    for path in &files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (_, text) = crate::input::read(Some(path))?;
        let (report_text, label) = split_labelled(&String::from_utf8_lossy(&text));
        let Some(label) = label else {
            eprintln!("skipping {name}: no LABEL: line");
            continue;
        };
        let started = Instant::now();
        let parsed = report::parse(&report_text);
        let result = match parsed.reports.into_iter().next() {
            None => Err("no KCSAN report found".to_string()),
            Some(r) => assess::kcsan::assess(
                &flow,
                r,
                KernelSpec::Dir(kernel.clone()),
                None,
                "x86_64".into(),
                &agent::Trajectory::default(),
            )
            .map_err(|e| e.to_string()),
        };
        let millis = started.elapsed().as_millis() as u64;
        let outcome = match result {
            Ok(a) => Outcome {
                cost_usd: cost_usd(&a),
                file: name,
                label,
                predicted: Some(if a.benign {
                    Label::Benign
                } else {
                    Label::Harmful
                }),
                confident: a.confident,
                confidence: a.confidence,
                tokens: a.tokens,
                millis,
                error: None,
                rules: a.evidence["rules"]
                    .as_array()
                    .map(|rs| {
                        rs.iter()
                            .filter_map(|r| r["rule"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                features: serde_json::from_value(a.evidence["features"].clone()).ok(),
                features_with_later_tree: serde_json::from_value(
                    a.evidence["features_with_later_tree"].clone(),
                )
                .ok(),
            },
            Err(e) => Outcome {
                file: name,
                label,
                predicted: None,
                confident: false,
                confidence: 0.0,
                tokens: 0,
                millis,
                cost_usd: None,
                error: Some(e),
                rules: vec![],
                features: None,
                features_with_later_tree: None,
            },
        };
        if !args.json {
            eprintln!(
                "{} {}{}",
                if outcome.predicted == Some(outcome.label) {
                    "ok  "
                } else {
                    "MISS"
                },
                outcome.file,
                spend(&outcome)
            );
        }
        outcomes.push(outcome);
    }
    let metrics = Metrics::compute(&outcomes);
    let folds = args.folds as usize;
    let cv = crossval::cross_validate(&outcomes, folds, Evidence::ReportTree);
    let cv_later = crossval::cross_validate(&outcomes, folds, Evidence::WithLaterTree);
    if let Some(path) = &args.fit_weights {
        fit_weights(&outcomes, &args.dir, path)?;
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "metrics": metrics,
                "cross_validated": cv,
                "cross_validated_with_later_tree": cv_later.as_ref().map(|c| &c.metrics),
                "reports": outcomes,
            }))?
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(cv) = &cv {
        print_cv(cv, cv_later.as_ref())?;
        outln!(
            "\nas shipped (weights fitted on the development set: on these reports, not a result):"
        )?;
    }
    let c = metrics.confusion;
    outln!("reports: {}  errors: {}", metrics.total, metrics.errors)?;
    outln!("accuracy: {:.1}%", metrics.accuracy * 100.0)?;
    outln!(
        "benign:  precision {:.1}%  recall {:.1}%",
        metrics.benign_precision * 100.0,
        metrics.benign_recall * 100.0
    )?;
    outln!(
        "harmful: precision {:.1}%  recall {:.1}%",
        metrics.harmful_precision * 100.0,
        metrics.harmful_recall * 100.0
    )?;
    outln!("confusion (rows truth, cols predicted):")?;
    outln!("                 benign  harmful")?;
    outln!("  benign        {:>7}  {:>7}", c[0][0], c[0][1])?;
    outln!("  harmful       {:>7}  {:>7}", c[1][0], c[1][1])?;
    outln!(
        "confident: {} ({} correct)",
        metrics.confident,
        metrics.confident_correct
    )?;
    outln!(
        "tokens/report: {:.0}  time/report: {:.0} ms  cost/report: {}",
        metrics.tokens_per_report,
        metrics.millis_per_report,
        match metrics.cost_usd_per_report {
            Some(c) => format!("~${c:.4} (approximate list price)"),
            None if metrics.tokens_per_report > 0.0 => "unknown (no price for this model)".into(),
            None => "none".into(),
        }
    )?;
    outln!("\nper report:")?;
    for o in &outcomes {
        let p = match o.predicted {
            Some(Label::Benign) => "benign",
            Some(Label::Harmful) => "harmful",
            None => "ERROR",
        };
        let mark = if o.predicted == Some(o.label) {
            " "
        } else {
            "✗"
        };
        outln!(
            "{mark} {:<72} truth {:<7} predicted {:<7} conf {:.2}{} {}",
            o.file,
            format!("{:?}", o.label).to_lowercase(),
            p,
            o.confidence,
            spend(o),
            o.error.clone().unwrap_or_else(|| o.rules.join(","))
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Approximate dollars the LLM expert spent on one report, when its model has a list price
/// (`llm:<model>` experts only; the static expert spends nothing).
fn cost_usd(a: &assess::expert::Assessment) -> Option<f64> {
    let model = a.expert.strip_prefix("llm:")?;
    let price = assess::pricing::price_of(model)?;
    let usage: llm::Usage = serde_json::from_value(a.evidence["usage"].clone()).ok()?;
    Some(price.cost(&usage))
}

/// `  1234 tok 5678 ms ~$0.0012` for a report that spent tokens; empty for the static expert.
fn spend(o: &Outcome) -> String {
    if o.tokens == 0 {
        return String::new();
    }
    let mut s = format!("  {} tok {} ms", o.tokens, o.millis);
    if let Some(c) = o.cost_usd {
        s.push_str(&format!(" ~${c:.4}"));
    }
    s
}

/// The headline: held-out figures, with intervals, calibration and the constant baseline.
fn print_cv(cv: &CvReport, later: Option<&CvReport>) -> anyhow::Result<()> {
    let m = &cv.metrics;
    let c = m.confusion;
    outln!(
        "cross-validated ({} folds, stratified; weights fitted on the training folds only):",
        cv.folds
    )?;
    outln!(
        "  accuracy        {:.1}%  (95% CI {:.1}-{:.1}%; always \"benign\": {:.1}%)",
        m.accuracy * 100.0,
        cv.accuracy_ci[0] * 100.0,
        cv.accuracy_ci[1] * 100.0,
        cv.always_benign_accuracy * 100.0
    )?;
    outln!(
        "  harmful recall  {}/{} = {:.1}%  (95% CI {:.1}-{:.1}%), precision {:.1}%",
        c[1][1],
        c[1][0] + c[1][1],
        m.harmful_recall * 100.0,
        cv.harmful_recall_ci[0] * 100.0,
        cv.harmful_recall_ci[1] * 100.0,
        m.harmful_precision * 100.0
    )?;
    outln!(
        "  confusion       [[{}, {}], [{}, {}]] (rows truth benign/harmful, cols predicted)",
        c[0][0],
        c[0][1],
        c[1][0],
        c[1][1]
    )?;
    outln!(
        "  calibration     ECE {:.3}; stated confidence against accuracy:",
        cv.ece
    )?;
    for b in &cv.reliability {
        outln!(
            "    {:.1}-{:.1}  {:>3} reports  stated {:.2}  right {:.2}",
            b.from,
            b.to,
            b.count,
            b.mean_confidence,
            b.accuracy
        )?;
    }
    if let Some(later) = later {
        outln!(
            "  with later-tree evidence (not used by the expert): accuracy {:.1}%, harmful recall {:.1}%",
            later.metrics.accuracy * 100.0,
            later.metrics.harmful_recall * 100.0
        )?;
    }
    Ok(())
}

/// Fits the weights on every report with features and writes the table.
fn fit_weights(
    outcomes: &[Outcome],
    dir: &std::path::Path,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let examples: Vec<model::Example> = outcomes
        .iter()
        .filter_map(|o| {
            o.features.clone().map(|features| model::Example {
                features,
                benign: o.label == Label::Benign,
            })
        })
        .collect();
    if examples.is_empty() {
        return Err(exit::bad_input(
            "--fit-weights needs the static expert's features: run with --expert static",
        ));
    }
    let weights = model::fit(&examples, model::L2);
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let header = format!(
        "Static expert weights: L2-regularised logistic regression (L2 {}), log-odds of benign.\n\
         Fitted on {} labelled reports ({dir_name}/) by: racejudge eval DIR --fit-weights FILE\n\
         Do not edit by hand; refit. Cross-validated figures: BENCHMARKS.md.",
        model::L2,
        examples.len()
    );
    std::fs::write(path, weights.to_tsv(&header))
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "wrote {} ({} features)",
        path.display(),
        weights.by_feature.len()
    );
    Ok(())
}
