-- The racejudge job store, SQLite flavour. Keep it in step with ../postgres/0001_init.sql: the same
-- tables, columns and meanings; only the types differ (INTEGER for BIGINT and BOOLEAN, REAL for
-- DOUBLE PRECISION). Timestamps are milliseconds since the Unix epoch, UTC. JSON is kept as TEXT,
-- byte for byte as the writer sent it.

CREATE TABLE jobs (
    -- AUTOINCREMENT: an id is never reused, even after the newest job is deleted, so ids stay in
    -- creation order and keyset pagination ("before id") is stable.
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow      TEXT    NOT NULL,
    title         TEXT    NOT NULL,
    kernel_dir    TEXT,
    kernel_repo   TEXT,
    kernel_commit TEXT,
    expert        TEXT    NOT NULL,
    model         TEXT,
    status        TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    created_ms    INTEGER NOT NULL,
    started_ms    INTEGER,
    finished_ms   INTEGER,
    worker        TEXT,
    revision      TEXT,
    attempt       INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    benign        INTEGER,
    confidence    REAL,
    -- The decision of the newest reviews row for this job, kept in the same transaction as that
    -- row so the list can filter on it without a join.
    review        TEXT    NOT NULL DEFAULT 'unreviewed' CHECK (review IN ('correct', 'incorrect', 'unreviewed'))
);
CREATE INDEX jobs_status ON jobs (status, id);
CREATE INDEX jobs_review ON jobs (review, id);
CREATE INDEX jobs_expert_model ON jobs (expert, model, id);
CREATE INDEX jobs_benign ON jobs (benign, id);
CREATE INDEX jobs_worker ON jobs (worker, status);

-- The bulky text of a job, one row per job, apart from `jobs` so that the list's scans (a title
-- search over every job) read narrow rows: with reports inline, 100,000 jobs are ~100,000 pages.
CREATE TABLE job_texts (
    job_id  INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    report  TEXT NOT NULL,
    config  TEXT,
    -- The expert's whole output as JSON, once the job is done.
    results TEXT
);

-- Trajectory spans, one row per (job, attempt, seq), upserted as the span starts and finishes.
CREATE TABLE spans (
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    span    TEXT    NOT NULL,
    PRIMARY KEY (job_id, attempt, seq)
);

-- The raw transcript (LLM exchanges), same keying as spans.
CREATE TABLE transcript (
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    entry   TEXT    NOT NULL,
    PRIMARY KEY (job_id, attempt, seq)
);

-- The review journal: append-only.
CREATE TABLE reviews (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id    INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at_ms     INTEGER NOT NULL,
    reviewer  TEXT    NOT NULL,
    decision  TEXT    NOT NULL CHECK (decision IN ('correct', 'incorrect', 'unreviewed')),
    reason    TEXT    NOT NULL DEFAULT '',
    source    TEXT    NOT NULL
);
CREATE INDEX reviews_job ON reviews (job_id, id);

CREATE TABLE workers (
    name         TEXT    PRIMARY KEY,
    version      TEXT    NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    role          TEXT    NOT NULL CHECK (role IN ('viewer', 'reviewer', 'admin', 'worker')),
    -- A PHC string (argon2) made by the caller; NULL for accounts that log in only by token or
    -- through a trusted proxy header.
    password_hash TEXT,
    created_ms    INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label        TEXT    NOT NULL,
    -- Hex SHA-256 of the token; the token itself is shown once and never stored.
    token_hash   TEXT    NOT NULL UNIQUE,
    created_ms   INTEGER NOT NULL,
    last_used_ms INTEGER,
    revoked      INTEGER NOT NULL DEFAULT 0
);
