//! Crate `report`: see ARCHITECTURE.md. Implementation in progress.
