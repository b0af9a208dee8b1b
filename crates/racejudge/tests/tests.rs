//! The `racejudge` binary's integration tests: one test binary (one link step), a module per
//! feature. Helpers live in `util`.

mod util;
