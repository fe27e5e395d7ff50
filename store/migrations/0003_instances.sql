-- 0002: the daemons sharing this database, for `status` and the dashboard. id is the owner name
-- of an instance's claims; times are unix milliseconds.
CREATE TABLE instances (
    id           TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    version      TEXT    NOT NULL DEFAULT '',
    config_path  TEXT    NOT NULL DEFAULT '',
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
