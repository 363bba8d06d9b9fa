-- Which metadata instance coordinates consumer groups. The instance holding the coordinator
-- lease (a PostgreSQL advisory lock; SQLite has one process) writes its HTTP address here,
-- and the others forward group calls to it.
CREATE TABLE group_coordinator (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    url       TEXT NOT NULL,
    instance  TEXT NOT NULL,
    since_ms  INTEGER NOT NULL
) STRICT;
