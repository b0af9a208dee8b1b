//! One module per subcommand: its clap `Args` and a `run` that returns the process outcome.

pub mod index;
pub mod parse;
pub mod tool;
pub mod trajectory;
