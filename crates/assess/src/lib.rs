//! Crate `assess`: the `assessment-kcsan` flow and everything it needs.
//!
//! - [`flow`]: a small typed workflow engine ([`flow::Flow`], [`flow::Step`], [`flow::Key`]);
//!   wiring errors surface when a flow is built, not halfway through a run.
//! - [`cache`]: the shared directory cache (the `dircache` crate, re-exported): checkouts and
//!   builds live there next to the indexes `codeindex` keeps.
//! - [`checkout`] and [`build`]: the `kernel-checkouter` and `kernel-builder` actions.
//! - [`kcsan`]: the `assessment-kcsan` flow itself.
//! - [`expert`]: the [`expert::Assessment`] every expert returns; [`static_expert`] is the
//!   deterministic rule-based expert; [`llm_expert`] holds the LLM expert's instruction.
//! - [`source`]: path-safe reading of the kernel tree for the static expert.
//! - [`eval`]: metadata cutting and metrics for labelled reports; [`pricing`]: approximate
//!   list prices of a few hosted models, for the LLM expert's cost per report.
//!
//! Spans are recorded through the workspace's one trajectory model, [`agent::Trajectory`].
pub mod build;
pub use dircache as cache;
pub mod checkout;
pub mod crossval;
pub mod eval;
pub mod expert;
pub mod flow;
pub mod kcsan;
pub mod llm_expert;
pub mod pricing;
pub mod source;
pub mod static_expert;
