-- shikong central store, schema version 5: which layers reference each attachment (issue 14).
-- An attachment may be downloaded by readers of a layer whose features reference it, in any
-- version (history stays readable, so its attachments do too). Every write of a feature records
-- the (sha256, layer) pairs of its attachment fields in the same transaction; rows are never
-- removed. Attachments referenced before this version are filled in by the migration (in Rust:
-- the attachment columns are known only from each layer's schema).
CREATE TABLE IF NOT EXISTS sk_blob_refs (
  sha256 TEXT NOT NULL,
  layer TEXT NOT NULL,
  PRIMARY KEY (sha256, layer)
) WITHOUT ROWID;
