//! Where racejudge keeps its caches. Libraries take directories as arguments; only the CLI
//! resolves them from the environment (the rule itself is [`dircache::default_root`]).

use std::path::PathBuf;

/// `$RACEJUDGE_CACHE_DIR`, else `$XDG_CACHE_HOME/racejudge`, else `~/.cache/racejudge`.
pub fn cache_dir() -> PathBuf {
    dircache::default_root(|key| std::env::var(key).ok())
}
