-- Transactions (docs/schema.md, decision 0009). Markers are index rows (kind 'control') at
-- real offsets; a partition counts its aborts so that readers know when their cached list of
-- aborted transactions is stale.
ALTER TABLE partitions ADD COLUMN abort_count BIGINT NOT NULL DEFAULT 0;
-- The epoch before the coordinator bumped it itself (a timed-out transaction): the producer
-- that held it may still re-initialise with it (KIP-360).
ALTER TABLE transactions ADD COLUMN prev_epoch SMALLINT;
CREATE INDEX transactions_producer ON transactions (producer_id);
CREATE INDEX transactions_ongoing ON transactions (state, started_at_ms);
