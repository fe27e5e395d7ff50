-- 0001: jobs, their history, and a small key/value table.
-- Times are integers (unix milliseconds, mtime_ns in nanoseconds) so the schema ports to PostgreSQL
-- (INTEGER PRIMARY KEY -> BIGINT GENERATED ALWAYS AS IDENTITY, INTEGER -> BIGINT).

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    folder          TEXT    NOT NULL,
    rel_path        TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    mtime_ns        INTEGER NOT NULL,
    file_id         TEXT    NOT NULL DEFAULT '',
    agent_id        TEXT    NOT NULL DEFAULT '',
    content_hash    TEXT    NOT NULL DEFAULT '',
    step            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    open            INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    note            TEXT    NOT NULL DEFAULT '',
    upload_api      TEXT    NOT NULL DEFAULT '',
    video_id        TEXT    NOT NULL DEFAULT '',
    run_id          TEXT    NOT NULL DEFAULT '',
    run_start_at    INTEGER NOT NULL DEFAULT 0,
    run_status      TEXT    NOT NULL DEFAULT '',
    run_message     TEXT    NOT NULL DEFAULT '',
    outputs         TEXT    NOT NULL DEFAULT '[]',
    owner           TEXT    NOT NULL DEFAULT '',
    lease_until     INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    -- The identity of a file version; its index also serves JobsAt (folder, rel_path).
    UNIQUE (folder, rel_path, size, mtime_ns),
    -- open mirrors status so the partial index below stays exact.
    CHECK (open = CASE WHEN status IN ('active', 'retrying') THEN 1 ELSE 0 END)
);

-- Due work: only unfinished jobs are indexed, so claims stay fast however many are done.
CREATE INDEX jobs_due ON jobs (next_attempt_at) WHERE open = 1;
CREATE INDEX jobs_content ON jobs (folder, content_hash);
CREATE INDEX jobs_run_id ON jobs (run_id);
-- ReleaseOwner at daemon start; unowned rows are not indexed.
CREATE INDEX jobs_owner ON jobs (owner) WHERE owner <> '';

CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at      INTEGER NOT NULL,
    step    TEXT    NOT NULL,
    status  TEXT    NOT NULL,
    message TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_job ON events (job_id);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
