-- shikong central store, schema version 2: offline sync (issue 5).

-- Explicit CRDT documents (automerge) of entities that have one: every entity edited through sync,
-- and entities whose later versions a replica must be able to merge against. `version` is the
-- store version the document covers; newer store versions are appended as deterministic server
-- changes when the document is next needed (see docs/sync-protocol.md).
-- `tx` is the transaction that last wrote the document: a merge can change a document without a
-- new store version (a resolution keeping the visible value, an edit that lost to a deletion),
-- and pulls must still bring it to other devices.
CREATE TABLE sk_sync_docs (
  layer TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  version INTEGER NOT NULL,
  doc BLOB NOT NULL,
  tx INTEGER NOT NULL,
  PRIMARY KEY (layer, entity_id)
);
CREATE INDEX sk_idx_sync_docs_tx ON sk_sync_docs (layer, tx);

-- Replicas cut for devices: which layers and area each holds, so pulls send exactly what belongs.
CREATE TABLE sk_replicas (
  id TEXT PRIMARY KEY,
  name TEXT,
  author TEXT NOT NULL,
  device TEXT,
  layers TEXT NOT NULL,
  area TEXT,
  created_tx INTEGER NOT NULL,
  last_sync_us INTEGER
);

-- Attachments (photos, documents), content-addressed: the bytes live in DIR/blobs/, verified
-- against their SHA-256 before they are listed here. Evidence metadata (举证照片): capture time,
-- position, heading, device.
CREATE TABLE sk_blobs (
  sha256 TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  mime TEXT NOT NULL,
  evidence TEXT NOT NULL DEFAULT '{}',
  uploaded_by TEXT NOT NULL,
  uploaded_tx INTEGER NOT NULL
);
