-- shikong central store, schema version 6: the audit outbox (issue 14, crash windows).
-- The server writes, in the same transaction as a data write, the audit record of that write
-- here; after the commit (and at every start, for records a crash left behind) it appends each
-- record to the audit log in `auth.sqlite`, idempotently by `id`, then deletes it here. A write
-- and its audit record are therefore committed together: a crash between the store's commit and
-- the audit log's append delays the audit row, never loses it. `payload` is opaque to the store
-- (the account store's format); `tx` is the transaction that wrote it.
CREATE TABLE IF NOT EXISTS sk_audit_outbox (
  id TEXT PRIMARY KEY NOT NULL,
  tx INTEGER NOT NULL,
  payload TEXT NOT NULL
);
