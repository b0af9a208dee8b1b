//! [`IndexError`]: everything that can go wrong while building, loading or querying an index.
//! A corrupt cache is deliberately *not* an error: it is logged and the index is rebuilt.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("kernel tree {0} does not exist")]
    TreeMissing(PathBuf),
    #[error("kernel tree {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("kernel build directory {0} does not exist or is not a directory")]
    BuildDirMissing(PathBuf),
    #[error("cannot read config file {path}: {source}")]
    Config {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad query: {0}")]
    BadQuery(String),
}

impl IndexError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IndexError::Io {
            path: path.into(),
            source,
        }
    }
}
