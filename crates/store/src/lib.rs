//! Persistence for the racejudge service: jobs and their results, trajectory spans and the raw
//! transcript, the human review journal, workers, users and API tokens, and the job queue that
//! workers claim from.
//!
//! One [`Store`] serves both backends: SQLite (one file in WAL mode, the embedded default) and
//! PostgreSQL. Every query is written once with `$N` placeholders, which both accept, and runs on
//! whichever pool the store holds; the few places where the SQL differs (the claim's row lock)
//! say so. Queries are checked at run time, not at build time: sqlx's compile-time macros need a
//! live database and would build the SQLite C library a second time for the proc-macro host.
//!
//! Conventions:
//! - ids are `i64`, assigned by the database in creation order (so "newest first" is `id DESC`);
//! - timestamps are `i64` milliseconds since the Unix epoch, UTC (`*_ms` fields), taken from the
//!   clock of the process that writes them, so both backends store exactly the same values;
//! - JSON (results, spans, transcript entries) is stored as text, exactly as serialised here.
//!
//! The store never speaks HTTP, never runs a tool or an expert, and never stores a secret: API
//! tokens are kept as SHA-256 hashes and passwords only as PHC strings hashed by the caller.

mod jobs;
mod review;
mod stats;
mod types;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use jobs::{Entry, Page, Worker};
pub use stats::{Confusion, GroupStats, ReviewedVerdict, StatusCounts};
pub use types::*;
pub use users::{IssuedToken, User, hash_token};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no backend we support. The URL itself is not repeated: it may hold a password.
    #[error("unsupported database URL: expected sqlite:PATH or postgres://…")]
    BadUrl,
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("job {0} not found")]
    NoSuchJob(i64),
    #[error("user {0} not found")]
    NoSuchUser(i64),
    /// The job exists but its status does not allow the action (say, cancelling a finished job).
    #[error("job {id} is {status}: cannot {action}")]
    WrongState {
        id: i64,
        status: Status,
        action: &'static str,
    },
    /// A worker wrote to an attempt that is no longer running (cancelled, re-queued or restarted
    /// since it claimed the job). The worker should stop.
    #[error("job {id} attempt {attempt} is not running any more")]
    Stale { id: i64, attempt: i64 },
    /// A caller handed in a value the store refuses (say, a password that is not a hash).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A unique name is taken.
    #[error("already exists: {0}")]
    Conflict(String),
    /// A row holds something this code cannot read back (bad JSON, an unknown status).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The job store. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
}

/// Runs `$body` with `$pool` bound to whichever pool the store holds. The body is expanded once
/// per backend, so it type-checks against each driver separately.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Implements `sqlx::FromRow` for both backends' rows with one body (`$row` is the row).
macro_rules! from_row {
    ($ty:ty, $row:ident => $body:block) => {
        impl<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> for $ty {
            fn from_row($row: &'r sqlx::sqlite::SqliteRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                $body
            }
        }
        impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for $ty {
            fn from_row($row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
                use sqlx::Row as _;
                $body
            }
        }
    };
}
pub(crate) use from_row;

/// The migrations of one backend, embedded in the binary. `sqlx::migrate!` would do this, but it
/// lives in sqlx's proc-macro crate, which compiles both drivers (and the SQLite C library) once
/// more for the host; `migrations_are_all_listed` (a test) keeps this list in step with the files.
macro_rules! migrations {
    ($dir:literal: $($version:literal $name:literal),* $(,)?) => {
        vec![$(Migration::new(
            $version,
            std::borrow::Cow::Borrowed($name),
            MigrationType::Simple,
            sqlx::AssertSqlSafe(include_str!(concat!("../migrations/", $dir, "/", $name))).into_sql_str(),
            false,
        )),*]
    };
}

/// File names of the embedded migrations, the same for both backends.
#[doc(hidden)]
pub const MIGRATION_FILES: &[&str] = &["0001_init.sql"];

fn sqlite_migrator() -> Migrator {
    use sqlx::SqlSafeStr as _;
    Migrator::with_migrations(migrations!("sqlite": 1 "0001_init.sql"))
}

fn postgres_migrator() -> Migrator {
    use sqlx::SqlSafeStr as _;
    Migrator::with_migrations(migrations!("postgres": 1 "0001_init.sql"))
}

/// How long a SQLite writer waits for another connection's write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// Opens (creating if needed) the store at `url` and brings its schema up to date.
    ///
    /// `sqlite:PATH` (or `sqlite://PATH`) is a SQLite file, created with its directory when
    /// missing (`sqlite::memory:` is a throwaway in-memory one); `postgres://…` (or
    /// `postgresql://…`) is a PostgreSQL database that must exist.
    pub async fn open(url: &str) -> Result<Store> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?;
            Self::open_sqlite_with(options).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            postgres_migrator().run(&pool).await?;
            Ok(Store {
                backend: Backend::Postgres(pool),
            })
        } else {
            Err(StoreError::BadUrl)
        }
    }

    /// Opens (creating if needed) the SQLite store in the file `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        Self::open_sqlite_with(SqliteConnectOptions::new().filename(path)).await
    }

    async fn open_sqlite_with(options: SqliteConnectOptions) -> Result<Store> {
        // A fresh data directory may not exist yet; the file is created inside it below.
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
            && options.get_filename() != Path::new(":memory:")
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        // WAL lets readers (the dashboard) run while a worker writes; NORMAL sync is durable
        // across a process crash, which is the failure the re-queue logic is for.
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlite_migrator().run(&pool).await?;
        Ok(Store {
            backend: Backend::Sqlite(pool),
        })
    }

    /// Which database this store talks to.
    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Closes the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// Now, in the store's time unit.
pub(crate) fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// A row value this code cannot read, as the driver's decode error.
pub(crate) fn decode_err(e: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

/// Refuses text PostgreSQL cannot store (a NUL character), so both backends accept the same
/// values: SQLite would keep it, PostgreSQL fails with an encoding error.
pub(crate) fn check_text(field: &str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(StoreError::Invalid(format!(
            "{field} contains a NUL character"
        )));
    }
    Ok(())
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`] naming `what`.
pub(crate) fn conflict(err: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Db(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_all_listed() {
        // Every backend directory holds exactly the listed files, and each list embeds them all.
        for dir in ["sqlite", "postgres"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            files.sort();
            assert_eq!(files, MIGRATION_FILES, "{}", path.display());
        }
        assert_eq!(sqlite_migrator().iter().count(), MIGRATION_FILES.len());
        assert_eq!(postgres_migrator().iter().count(), MIGRATION_FILES.len());
    }

    #[test]
    fn architecture_names_the_deps_of_the_manifest() {
        // ARCHITECTURE.md says "deps: none of ours": no workspace crate among [dependencies].
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let arch = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
        assert!(
            arch.contains(
                "### `crates/store` — persistence and the job queue (deps: none of ours)"
            )
        );
        let manifest = std::fs::read_to_string(root.join("crates/store/Cargo.toml")).unwrap();
        let deps = manifest
            .split("[dependencies]")
            .nth(1)
            .and_then(|rest| rest.split("\n[").next())
            .unwrap();
        for entry in std::fs::read_dir(root.join("crates")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                !deps
                    .lines()
                    .any(|l| l.starts_with(&format!("{name}."))
                        || l.starts_with(&format!("{name} "))),
                "store depends on {name}, ARCHITECTURE.md says none of ours"
            );
        }
    }

    #[tokio::test]
    async fn an_in_memory_sqlite_store_works_for_quick_runs() {
        // Every pooled connection must see the same database, or a job created on one
        // connection would be missing on the next.
        let store = Store::open("sqlite::memory:").await.unwrap();
        for _ in 0..20 {
            let id = store
                .create_job(&NewJob {
                    workflow: WORKFLOW_KCSAN.into(),
                    title: "t".into(),
                    report: "r".into(),
                    kernel: Kernel::Default,
                    config: None,
                    expert: "static".into(),
                    model: None,
                })
                .await
                .unwrap();
            assert_eq!(store.job(id).await.unwrap().input.report, "r");
        }
    }

    #[tokio::test]
    async fn other_urls_are_refused_without_echoing_them() {
        let err = Store::open("mysql://user:secret@host/db")
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::BadUrl));
        assert!(!err.to_string().contains("secret"));
    }
}
