//! Crate `agent`: see ARCHITECTURE.md. Implementation in progress.
