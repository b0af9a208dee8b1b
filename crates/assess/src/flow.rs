//! A small typed workflow engine.
//!
//! A [`Flow`] is a sequence of [`Step`]s that communicate through a blackboard ([`State`]) of
//! values addressed by typed [`Key`]s. Every step declares the keys it reads and writes, and
//! [`FlowBuilder::build`] checks the wiring before anything runs: an input nobody produced (or
//! produced with another type), a value produced twice, and a value produced but never used are
//! all [`FlowBuildError`]s. A miswired flow therefore fails when it is built, not at step 5 after a
//! kernel checkout. At run time a step can only read and write what it declared.
//!
//! Recording uses the one trajectory model of the workspace, [`agent::Trajectory`]: the run is a
//! `flow` span (nesting 0) and each step an `action` span (nesting 1), so nested agent work (the
//! LLM expert's agent, LLM and tool spans, started from [`StepContext::run_context`]) lands in
//! the same file, under its action, and `racejudge trajectory show` renders the whole tree.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;

use serde_json::Value;

use agent::{SpanKind, Trajectory};

/// A typed name on the blackboard. Declare keys as constants: `const SRC: Key<PathBuf> = Key::new("KernelSrc");`
pub struct Key<T> {
    name: &'static str,
    _type: PhantomData<fn() -> T>,
}

impl<T> Key<T> {
    pub const fn new(name: &'static str) -> Self {
        Key {
            name,
            _type: PhantomData,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<T: 'static> Key<T> {
    /// The untyped identity used for build-time checks.
    pub fn id(&self) -> KeyId {
        KeyId {
            name: self.name,
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        }
    }
}

impl<T> Clone for Key<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Key<T> {}

/// A key's name plus its value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId {
    pub name: &'static str,
    type_id: TypeId,
    pub type_name: &'static str,
}

/// Why a flow could not be built. Each names the step and the value at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowBuildError {
    #[error(
        "flow {flow}: step {step} needs input {key} which nothing before it produces; available: {available}"
    )]
    MissingInput {
        flow: String,
        step: String,
        key: String,
        available: String,
    },
    #[error("flow {flow}: step {step} reads {key} as {want} but it is produced as {have}")]
    TypeMismatch {
        flow: String,
        step: String,
        key: String,
        want: String,
        have: String,
    },
    #[error("flow {flow}: {key} is produced by {step} but was already produced by {first}")]
    Duplicate {
        flow: String,
        step: String,
        key: String,
        first: String,
    },
    #[error("flow {flow}: {key} produced by {step} is never used")]
    Unused {
        flow: String,
        step: String,
        key: String,
    },
    #[error("flow {flow}: output {key} is never produced")]
    MissingOutput { flow: String, key: String },
    #[error("flow {flow}: two steps are named {step}")]
    DuplicateStep { flow: String, step: String },
}

/// How a step failed; decides the CLI exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The user's input is unusable (no report, bad path, bad commit name).
    BadInput,
    /// Something outside us is unavailable (kernel tree, git, compiler, LLM provider).
    Environment,
    /// A bug or unexpected I/O failure.
    Internal,
}

/// A step's failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub kind: FailureKind,
    pub message: String,
}

impl StepError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        StepError {
            kind,
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Internal, message)
    }
    pub fn environment(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Environment, message)
    }
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(FailureKind::BadInput, message)
    }
}

/// A run-time failure of a flow: which step, and why.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FlowRunError {
    #[error("flow input {0} is missing")]
    MissingFlowInput(String),
    #[error("step {step}: {source}")]
    Step {
        step: String,
        #[source]
        source: StepError,
    },
}

impl FlowRunError {
    pub fn kind(&self) -> FailureKind {
        match self {
            FlowRunError::MissingFlowInput(_) => FailureKind::Internal,
            FlowRunError::Step { source, .. } => source.kind,
        }
    }
}

/// The blackboard: values by key name.
#[derive(Default)]
pub struct State {
    values: HashMap<&'static str, Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl State {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with<T: Send + Sync + 'static>(mut self, key: Key<T>, value: T) -> Self {
        self.put(key, value);
        self
    }

    pub fn put<T: Send + Sync + 'static>(&mut self, key: Key<T>, value: T) {
        self.values.insert(key.name, Box::new(value));
    }

    pub fn get<T: 'static>(&self, key: Key<T>) -> Option<&T> {
        self.values
            .get(key.name)
            .and_then(|v| v.downcast_ref::<T>())
    }

    pub fn take<T: 'static>(&mut self, key: Key<T>) -> Option<T> {
        let boxed = self.values.remove(key.name)?;
        match boxed.downcast::<T>() {
            Ok(value) => Some(*value),
            Err(boxed) => {
                self.values.insert(key.name, boxed);
                None
            }
        }
    }

    fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

/// What a running step may touch: its declared inputs (read) and outputs (write).
pub struct StepContext<'a> {
    step: &'static str,
    inputs: &'a [KeyId],
    outputs: &'a [KeyId],
    state: &'a mut State,
    results: BTreeMap<String, Value>,
    trajectory: &'a Trajectory,
    /// Nesting of this step's action span.
    nesting: u32,
}

impl<'a> StepContext<'a> {
    /// Reads a declared input. Reading an undeclared key is a bug in the step, reported as such.
    pub fn input<T: 'static>(&self, key: Key<T>) -> Result<&T, StepError> {
        if !self.inputs.iter().any(|k| k.name == key.name) {
            return Err(StepError::internal(format!(
                "step {} read undeclared input {}",
                self.step, key.name
            )));
        }
        self.state.get(key).ok_or_else(|| {
            StepError::internal(format!(
                "input {} of step {} is not set",
                key.name, self.step
            ))
        })
    }

    /// Writes a declared output.
    pub fn output<T: Send + Sync + 'static>(
        &mut self,
        key: Key<T>,
        value: T,
    ) -> Result<(), StepError> {
        if !self.outputs.iter().any(|k| k.name == key.name) {
            return Err(StepError::internal(format!(
                "step {} wrote undeclared output {}",
                self.step, key.name
            )));
        }
        self.state.put(key, value);
        Ok(())
    }

    /// Adds a short JSON summary of a result to the step's span.
    pub fn record(&mut self, name: &str, value: Value) {
        self.results.insert(name.to_string(), value);
    }

    /// The recorder of this run.
    pub fn trajectory(&self) -> &Trajectory {
        self.trajectory
    }

    /// A context for nested agent work: its spans nest one level under this step's action span.
    pub fn run_context(&self) -> agent::RunContext {
        agent::RunContext {
            nesting: self.nesting + 1,
            ..agent::RunContext::new(self.trajectory.clone(), None)
        }
    }
}

/// One unit of work with declared inputs and outputs.
pub trait Step: Send + Sync {
    fn name(&self) -> &'static str;
    fn inputs(&self) -> Vec<KeyId>;
    fn outputs(&self) -> Vec<KeyId>;
    fn run(&self, ctx: &mut StepContext<'_>) -> Result<(), StepError>;
}

type StepFn = Box<dyn Fn(&mut StepContext<'_>) -> Result<(), StepError> + Send + Sync>;

/// A step made from a closure; the usual way to write one.
pub struct FnStep {
    name: &'static str,
    inputs: Vec<KeyId>,
    outputs: Vec<KeyId>,
    body: StepFn,
}

impl FnStep {
    pub fn new(
        name: &'static str,
        inputs: Vec<KeyId>,
        outputs: Vec<KeyId>,
        body: impl Fn(&mut StepContext<'_>) -> Result<(), StepError> + Send + Sync + 'static,
    ) -> Self {
        FnStep {
            name,
            inputs,
            outputs,
            body: Box::new(body),
        }
    }
}

impl Step for FnStep {
    fn name(&self) -> &'static str {
        self.name
    }
    fn inputs(&self) -> Vec<KeyId> {
        self.inputs.clone()
    }
    fn outputs(&self) -> Vec<KeyId> {
        self.outputs.clone()
    }
    fn run(&self, ctx: &mut StepContext<'_>) -> Result<(), StepError> {
        (self.body)(ctx)
    }
}

/// Collects inputs, steps and outputs, then checks the wiring.
pub struct FlowBuilder {
    name: String,
    inputs: Vec<KeyId>,
    steps: Vec<Box<dyn Step>>,
    outputs: Vec<KeyId>,
}

impl FlowBuilder {
    pub fn new(name: impl Into<String>) -> Self {
        FlowBuilder {
            name: name.into(),
            inputs: Vec::new(),
            steps: Vec::new(),
            outputs: Vec::new(),
        }
    }

    pub fn input<T: 'static>(mut self, key: Key<T>) -> Self {
        self.inputs.push(key.id());
        self
    }

    pub fn step(mut self, step: impl Step + 'static) -> Self {
        self.steps.push(Box::new(step));
        self
    }

    pub fn output<T: 'static>(mut self, key: Key<T>) -> Self {
        self.outputs.push(key.id());
        self
    }

    /// Dry-runs the wiring. Flow inputs count as produced by `flow input`.
    pub fn build(self) -> Result<Flow, FlowBuildError> {
        const FLOW_INPUT: &str = "flow input";
        let flow = self.name.clone();
        // name -> (type, producer, used)
        let mut produced: BTreeMap<&'static str, (KeyId, String, bool)> = BTreeMap::new();
        let mut step_names: Vec<&'static str> = Vec::new();
        for key in &self.inputs {
            if let Some((_, first, _)) = produced.get(key.name) {
                return Err(FlowBuildError::Duplicate {
                    flow,
                    step: FLOW_INPUT.into(),
                    key: key.name.into(),
                    first: first.clone(),
                });
            }
            produced.insert(key.name, (*key, FLOW_INPUT.to_string(), false));
        }
        for step in &self.steps {
            if step_names.contains(&step.name()) {
                return Err(FlowBuildError::DuplicateStep {
                    flow,
                    step: step.name().into(),
                });
            }
            step_names.push(step.name());
            for key in step.inputs() {
                match produced.get_mut(key.name) {
                    None => {
                        return Err(FlowBuildError::MissingInput {
                            flow,
                            step: step.name().into(),
                            key: key.name.into(),
                            available: produced.keys().copied().collect::<Vec<_>>().join(", "),
                        });
                    }
                    Some((have, _, _)) if have.type_id != key.type_id => {
                        return Err(FlowBuildError::TypeMismatch {
                            flow,
                            step: step.name().into(),
                            key: key.name.into(),
                            want: key.type_name.into(),
                            have: have.type_name.into(),
                        });
                    }
                    Some((_, _, used)) => *used = true,
                }
            }
            for key in step.outputs() {
                if let Some((_, first, _)) = produced.get(key.name) {
                    return Err(FlowBuildError::Duplicate {
                        flow,
                        step: step.name().into(),
                        key: key.name.into(),
                        first: first.clone(),
                    });
                }
                produced.insert(key.name, (key, step.name().to_string(), false));
            }
        }
        for key in &self.outputs {
            match produced.get_mut(key.name) {
                Some((have, _, used)) if have.type_id == key.type_id => *used = true,
                Some((have, step, _)) => {
                    return Err(FlowBuildError::TypeMismatch {
                        flow,
                        step: format!("output (produced by {step})"),
                        key: key.name.into(),
                        want: key.type_name.into(),
                        have: have.type_name.into(),
                    });
                }
                None => {
                    return Err(FlowBuildError::MissingOutput {
                        flow,
                        key: key.name.into(),
                    });
                }
            }
        }
        if let Some((name, (_, step, _))) = produced.iter().find(|(_, (_, _, used))| !used) {
            return Err(FlowBuildError::Unused {
                flow,
                step: step.clone(),
                key: (*name).into(),
            });
        }
        Ok(Flow {
            name: self.name,
            inputs: self.inputs,
            steps: self.steps,
            outputs: self.outputs,
        })
    }
}

/// A checked flow, ready to run any number of times.
pub struct Flow {
    name: String,
    inputs: Vec<KeyId>,
    steps: Vec<Box<dyn Step>>,
    outputs: Vec<KeyId>,
}

impl fmt::Debug for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flow")
            .field("name", &self.name)
            .field("steps", &self.step_names())
            .finish()
    }
}

impl Flow {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn step_names(&self) -> Vec<&'static str> {
        self.steps.iter().map(|s| s.name()).collect()
    }

    pub fn output_names(&self) -> Vec<&'static str> {
        self.outputs.iter().map(|k| k.name).collect()
    }

    /// Runs every step in order, recording a `flow` span and one `action` span per step into
    /// `trajectory`. Stops at the first failure; the state holds what was produced.
    pub fn run(&self, mut state: State, trajectory: &Trajectory) -> Result<State, FlowRunError> {
        if let Some(missing) = self.inputs.iter().find(|k| !state.contains(k.name)) {
            return Err(FlowRunError::MissingFlowInput(missing.name.to_string()));
        }
        let flow_span = trajectory.start_new(SpanKind::Flow, 0, &self.name);
        let mut outcome = Ok(());
        for step in &self.steps {
            let mut span = trajectory.start_new(SpanKind::Action, 1, step.name());
            let inputs = step.inputs();
            let outputs = step.outputs();
            let mut ctx = StepContext {
                step: step.name(),
                inputs: &inputs,
                outputs: &outputs,
                state: &mut state,
                results: BTreeMap::new(),
                trajectory,
                nesting: span.nesting(),
            };
            let result = step.run(&mut ctx).and_then(|()| {
                match outputs.iter().find(|k| !ctx.state.contains(k.name)) {
                    Some(k) => Err(StepError::internal(format!(
                        "step {} did not produce {}",
                        step.name(),
                        k.name
                    ))),
                    None => Ok(()),
                }
            });
            let results = std::mem::take(&mut ctx.results);
            span.span_mut().results =
                (!results.is_empty()).then(|| Value::Object(results.into_iter().collect()));
            span.finish(result.as_ref().err().map(|e| e.message.clone()));
            if let Err(source) = result {
                tracing::debug!(step = step.name(), error = %source, "step failed");
                outcome = Err(FlowRunError::Step {
                    step: step.name().to_string(),
                    source,
                });
                break;
            }
        }
        flow_span.finish(outcome.as_ref().err().map(|e| e.to_string()));
        outcome.map(|()| state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent::MemorySink;
    use std::sync::Arc;

    fn recorder() -> (Arc<MemorySink>, Trajectory) {
        let sink = Arc::new(MemorySink::default());
        (sink.clone(), Trajectory::new(vec![sink]))
    }

    const A: Key<u32> = Key::new("A");
    const B: Key<String> = Key::new("B");
    const B_AS_INT: Key<u32> = Key::new("B");
    const C: Key<String> = Key::new("C");

    fn double() -> FnStep {
        FnStep::new("double", vec![A.id()], vec![B.id()], |ctx| {
            let a = *ctx.input(A)?;
            ctx.output(B, format!("{}", a * 2))
        })
    }

    fn exclaim() -> FnStep {
        FnStep::new("exclaim", vec![B.id()], vec![C.id()], |ctx| {
            let b = ctx.input(B)?.clone();
            ctx.output(C, b + "!")
        })
    }

    #[test]
    fn well_wired_flow_runs_and_records_action_spans() {
        let flow = FlowBuilder::new("t")
            .input(A)
            .step(double())
            .step(exclaim())
            .output(C)
            .build()
            .unwrap();
        let (sink, traj) = recorder();
        let mut state = flow.run(State::new().with(A, 21), &traj).unwrap();
        assert_eq!(state.take(C).as_deref(), Some("42!"));
        let spans = sink.spans();
        // flow start, 2 x (start, finish), flow finish
        assert_eq!(spans.len(), 6);
        assert_eq!(spans[1].kind, SpanKind::Action);
        assert_eq!(spans[1].name, "double");
        assert_eq!(spans[2].seq, spans[1].seq);
        assert!(spans[2].finished.is_some());
        assert_eq!(spans[2].nesting, 1);
        assert_eq!(spans[5].kind, SpanKind::Flow);
        assert_eq!(spans[5].seq, 0);
    }

    #[test]
    fn missing_input_is_a_build_error_naming_step_and_key() {
        let err = FlowBuilder::new("t")
            .input(A)
            .step(exclaim())
            .output(C)
            .build()
            .unwrap_err();
        match &err {
            FlowBuildError::MissingInput {
                step,
                key,
                available,
                ..
            } => {
                assert_eq!(step, "exclaim");
                assert_eq!(key, "B");
                assert_eq!(available, "A");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unused_value_is_a_build_error() {
        let err = FlowBuilder::new("t")
            .input(A)
            .step(double())
            .step(exclaim())
            .output(B)
            .build()
            .unwrap_err();
        assert!(
            matches!(err, FlowBuildError::Unused { ref key, .. } if key == "C"),
            "{err}"
        );
    }

    #[test]
    fn unused_flow_input_is_a_build_error() {
        let err = FlowBuilder::new("t")
            .input(A)
            .input(C)
            .step(double())
            .output(B)
            .build()
            .unwrap_err();
        assert!(
            matches!(err, FlowBuildError::Unused { ref key, ref step, .. } if key == "C" && step == "flow input")
        );
    }

    #[test]
    fn duplicate_producer_is_a_build_error() {
        let err = FlowBuilder::new("t")
            .input(A)
            .step(double())
            .input(B)
            .output(B)
            .build();
        // `input` is collected before steps, so B is produced twice: by the flow and by `double`.
        assert!(
            matches!(err, Err(FlowBuildError::Duplicate { ref key, ref first, .. }) if key == "B" && first == "flow input")
        );
    }

    #[test]
    fn type_mismatch_is_a_build_error() {
        let reads_int = FnStep::new("reads-int", vec![B_AS_INT.id()], vec![], |_| Ok(()));
        let err = FlowBuilder::new("t")
            .input(A)
            .step(double())
            .step(reads_int)
            .build()
            .unwrap_err();
        assert!(
            matches!(err, FlowBuildError::TypeMismatch { ref key, .. } if key == "B"),
            "{err}"
        );
    }

    #[test]
    fn missing_output_is_a_build_error() {
        let err = FlowBuilder::new("t")
            .input(A)
            .step(double())
            .output(B)
            .output(C)
            .build()
            .unwrap_err();
        assert!(matches!(err, FlowBuildError::MissingOutput { ref key, .. } if key == "C"));
    }

    #[test]
    fn undeclared_write_fails_the_step_with_its_name() {
        let sneaky = FnStep::new("sneaky", vec![A.id()], vec![B.id()], |ctx| {
            ctx.output(C, "x".to_string())?;
            ctx.output(B, "y".to_string())
        });
        let flow = FlowBuilder::new("t")
            .input(A)
            .step(sneaky)
            .output(B)
            .build()
            .unwrap();
        let (sink, traj) = recorder();
        let err = flow.run(State::new().with(A, 1), &traj).unwrap_err();
        assert!(err.to_string().contains("undeclared output C"), "{err}");
        assert_eq!(err.kind(), FailureKind::Internal);
        let spans = sink.spans();
        assert!(
            spans
                .iter()
                .any(|s| s.name == "sneaky" && s.error.is_some())
        );
    }

    #[test]
    fn failing_step_stops_the_flow() {
        let fails = FnStep::new("fails", vec![A.id()], vec![B.id()], |_| {
            Err(StepError::environment("git is gone"))
        });
        let flow = FlowBuilder::new("t")
            .input(A)
            .step(fails)
            .step(exclaim())
            .output(C)
            .build()
            .unwrap();
        let (sink, traj) = recorder();
        let err = flow.run(State::new().with(A, 1), &traj).unwrap_err();
        assert_eq!(err.kind(), FailureKind::Environment);
        assert!(!sink.spans().iter().any(|s| s.name == "exclaim"));
    }

    #[test]
    fn missing_flow_input_at_run_time_is_reported() {
        let flow = FlowBuilder::new("t")
            .input(A)
            .step(double())
            .output(B)
            .build()
            .unwrap();
        let err = flow.run(State::new(), &Trajectory::default()).unwrap_err();
        assert!(matches!(err, FlowRunError::MissingFlowInput(ref k) if k == "A"));
    }

    #[test]
    fn nested_work_records_under_its_action_span() {
        let nested = FnStep::new("nested", vec![A.id()], vec![B.id()], |ctx| {
            let run = ctx.run_context();
            run.trajectory
                .start_new(SpanKind::Agent, run.nesting, "inner")
                .finish(None);
            ctx.output(B, "x".to_string())
        });
        let flow = FlowBuilder::new("t")
            .input(A)
            .step(nested)
            .output(B)
            .build()
            .unwrap();
        let (sink, traj) = recorder();
        flow.run(State::new().with(A, 1), &traj).unwrap();
        let spans = sink.spans();
        let action = spans.iter().find(|s| s.name == "nested").unwrap();
        let inner = spans.iter().find(|s| s.name == "inner").unwrap();
        assert_eq!(action.nesting, 1);
        assert_eq!(inner.nesting, 2, "agent work nests under the action");
        assert!(inner.seq > action.seq);
        // The inner span finishes before its action does.
        let order: Vec<(&str, bool)> = spans
            .iter()
            .map(|s| (s.name.as_str(), s.finished.is_some()))
            .collect();
        let inner_done = order.iter().position(|e| *e == ("inner", true)).unwrap();
        let action_done = order.iter().position(|e| *e == ("nested", true)).unwrap();
        assert!(inner_done < action_done);
    }
}
