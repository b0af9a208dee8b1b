//! Crate `codeindex`: see ARCHITECTURE.md. Implementation in progress.
