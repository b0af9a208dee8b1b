//! Crate `assess`: the assessment-kcsan flow (in progress).
