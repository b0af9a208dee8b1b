//! The `racejudge` binary's integration tests: one test binary (one link step), a module per
//! feature. Helpers live in `util`.

mod assess_cli;
mod eval_cli;
mod hostile_cli;
mod index_cli;
mod mcp_cli;
mod parse;
mod serve_cli;
mod tools_cli;
mod trajectory_cli;
mod util;
