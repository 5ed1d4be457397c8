-- shikong auth database, schema version 2: audit rows delivered from the store's outbox (issue 14).
-- A data write's audit record is committed with the write, in the store (`sk_audit_outbox`), and
-- appended here after the commit and at every start. `outbox_id` is that record's id: a record
-- delivered twice (the server stopped between this append and the store forgetting the record)
-- is recorded once. Rows written directly have no outbox id.
ALTER TABLE audit ADD COLUMN outbox_id TEXT;
CREATE UNIQUE INDEX audit_outbox_id ON audit (outbox_id) WHERE outbox_id IS NOT NULL;
