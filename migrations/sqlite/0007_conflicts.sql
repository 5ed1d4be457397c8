-- shikong central store, schema version 7: the index of open conflicts (issue 16, conflict review).
-- One row per entity whose CRDT document holds open conflicts, written in the same transaction
-- as the merge or resolution that changed them (and removed when none are left), so the office's
-- conflict list (`GET /sync/conflicts`) reads these rows and the few documents they name instead
-- of every document of the store. `conflicts`: how many are open; `authors`: a JSON array of the
-- users and devices whose values compete (the list's `author` filter); `opened_us`: the
-- transaction time (µs) at which the entity's conflicts were first recorded (kept while any stay
-- open; the `since` filter); `tx`: the transaction that last wrote the row.
-- Documents merged before this version are indexed by their next merge.
CREATE TABLE IF NOT EXISTS sk_conflicts (
  layer TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  conflicts INTEGER NOT NULL,
  authors TEXT NOT NULL,
  opened_us INTEGER NOT NULL,
  tx INTEGER NOT NULL,
  PRIMARY KEY (layer, entity_id)
);
CREATE INDEX IF NOT EXISTS sk_idx_conflicts_opened ON sk_conflicts (opened_us);
