//! One module per subcommand: its clap `Args` and a `run` that returns the process outcome.

pub mod assess;
pub mod bench;
pub mod eval;
pub mod index;
pub mod mcp;
pub mod parse;
pub mod serve;
pub mod tool;
pub mod trajectory;
