//! Where racejudge keeps its caches. Libraries take directories as arguments; only the CLI
//! resolves them from the environment (the rule itself is [`dircache::default_root`]).

use std::path::PathBuf;

/// `$RACEJUDGE_CACHE_DIR`, else `$XDG_CACHE_HOME/racejudge`, else `~/.cache/racejudge`.
pub fn cache_dir() -> PathBuf {
    dircache::default_root(|key| std::env::var(key).ok())
}

/// Where the service keeps its database: `$RACEJUDGE_DATA_DIR`, else `$XDG_DATA_HOME/racejudge`,
/// else `~/.local/share/racejudge`. Data, not cache: deleting it loses jobs and reviews.
pub fn data_dir() -> PathBuf {
    let non_empty_env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    if let Some(dir) = non_empty_env("RACEJUDGE_DATA_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(xdg) = non_empty_env("XDG_DATA_HOME") {
        return PathBuf::from(xdg).join("racejudge");
    }
    let home = non_empty_env("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".local/share/racejudge")
}
