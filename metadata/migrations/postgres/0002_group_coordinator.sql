-- Which metadata instance coordinates consumer groups. The instance holding the coordinator
-- lease (a PostgreSQL advisory lock; SQLite has one process) writes its HTTP address here,
-- and the others forward group calls to it.
CREATE TABLE group_coordinator (
    singleton BOOLEAN PRIMARY KEY CHECK (singleton),
    url       TEXT NOT NULL,
    instance  TEXT NOT NULL,
    since_ms  BIGINT NOT NULL
);
