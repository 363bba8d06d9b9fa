-- Leases of the compactor's work (docs/schema.md): one row per unit of work, held by one
-- compactor process until expires_at_ms; another may take it over once it has expired.
CREATE TABLE leases (
    name          TEXT PRIMARY KEY,
    holder        TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
