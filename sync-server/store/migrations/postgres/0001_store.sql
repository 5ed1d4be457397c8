-- The shikong store on PostgreSQL + PostGIS, schema version 1. The per-layer tables (the live
-- layer `<name>` and its history `sk_hist_<name>`) are made by the store when a layer is
-- created (src/postgres/layers.rs). Roles of the tables as in the SQLite backend; see
-- ARCHITECTURE.md (sync-server/store) for each table's distribution column under Citus.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE sk_meta (
  key text PRIMARY KEY,
  value text NOT NULL
);

-- One row per commit. `tx` is assigned under the writer lock, so it follows commit order;
-- `time_us` (UTC microseconds) strictly increases with it.
CREATE TABLE sk_transactions (
  tx bigint PRIMARY KEY,
  time_us bigint NOT NULL,
  author text NOT NULL,
  device text,
  device_time text,
  source text,
  replica uuid
);
CREATE INDEX sk_idx_transactions_time ON sk_transactions (time_us);
CREATE INDEX sk_idx_transactions_author ON sk_transactions (author);

CREATE TABLE sk_layers (
  name text PRIMARY KEY,
  title text,
  description text,
  geometry_kind text NOT NULL,
  has_z boolean NOT NULL,
  srs_id integer NOT NULL,
  schema text NOT NULL,
  theme text NOT NULL,
  height_datum text,
  public boolean NOT NULL DEFAULT false,
  citizen_reports boolean NOT NULL DEFAULT false,
  next_field_id bigint NOT NULL,
  next_code bigint NOT NULL DEFAULT 1,
  created_tx bigint NOT NULL,
  min_x double precision,
  min_y double precision,
  max_x double precision,
  max_y double precision
);

CREATE TABLE sk_schema_history (
  layer text NOT NULL,
  tx bigint NOT NULL,
  schema text NOT NULL,
  PRIMARY KEY (layer, tx)
);

-- Sync bookkeeping. `seq` is a document's position key in the change feed (kind 2).
CREATE TABLE sk_sync_docs (
  layer text NOT NULL,
  entity_id uuid NOT NULL,
  version bigint NOT NULL,
  doc bytea NOT NULL,
  tx bigint NOT NULL,
  seq bigint GENERATED ALWAYS AS IDENTITY,
  PRIMARY KEY (layer, entity_id)
);
CREATE INDEX sk_idx_sync_docs_tx ON sk_sync_docs (layer, tx, seq);

CREATE TABLE sk_replicas (
  id uuid PRIMARY KEY,
  name text,
  author text NOT NULL,
  device text,
  layers text NOT NULL,
  area text,
  created_tx bigint NOT NULL
);

CREATE TABLE sk_blobs (
  sha256 text PRIMARY KEY,
  size bigint NOT NULL,
  mime text NOT NULL,
  evidence text NOT NULL,
  uploaded_by text NOT NULL,
  uploaded_tx bigint NOT NULL
);

CREATE TABLE sk_blob_refs (
  sha256 text NOT NULL,
  layer text NOT NULL,
  PRIMARY KEY (sha256, layer)
);

CREATE TABLE sk_audit_outbox (
  id uuid PRIMARY KEY,
  seq bigint GENERATED ALWAYS AS IDENTITY,
  tx bigint NOT NULL,
  payload text NOT NULL
);
CREATE INDEX sk_idx_audit_outbox_order ON sk_audit_outbox (tx, seq);

CREATE TABLE sk_conflicts (
  layer text NOT NULL,
  entity_id uuid NOT NULL,
  conflicts integer NOT NULL,
  authors text[] NOT NULL,
  opened_us bigint NOT NULL,
  tx bigint NOT NULL,
  PRIMARY KEY (layer, entity_id)
);
