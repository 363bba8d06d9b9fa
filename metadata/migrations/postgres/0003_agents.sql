-- The agent fleet: every agent heartbeats its identity and addresses; Metadata answers list
-- the live ones (heartbeat within the metadata service's agent timeout) of the client's zone.
CREATE TABLE agents (
    node_id           INT PRIMARY KEY,
    zone              TEXT,
    host              TEXT NOT NULL,
    port              INT NOT NULL,
    cache_url         TEXT,
    instance          TEXT NOT NULL,   -- changes at every start of the agent process
    started_at_ms     BIGINT NOT NULL,
    last_heartbeat_ms BIGINT NOT NULL
);
