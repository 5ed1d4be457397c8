-- shikong central store, schema version 1.
-- The file is a GeoPackage (core tables are created by shikong-gpkg before migrations run);
-- these are shikong's own tables. Per-layer tables (`<layer>`, `sk_hist_<layer>`,
-- `sk_hist_<layer>_rtree`) are created by the store when a layer is created, not here.

-- Key/value facts about the store itself: schema_version, created_at, store_id.
CREATE TABLE sk_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- One row per committed transaction. `tx` orders everything; `time_us` (UTC microseconds) is
-- strictly increasing with `tx`, so "as of instant T" means "up to the last tx with time_us <= T".
CREATE TABLE sk_transactions (
  tx INTEGER PRIMARY KEY,
  time_us INTEGER NOT NULL UNIQUE,
  author TEXT NOT NULL,
  device TEXT,
  device_time TEXT,
  source TEXT
);

-- Registered as a GeoPackage attributes table: GDAL then lists only registered tables (not the
-- history tables), and GIS users can read the journal.
INSERT INTO gpkg_contents (table_name, data_type, identifier, description)
VALUES ('sk_transactions', 'attributes', 'sk_transactions', 'shikong transaction journal (事务日志): who wrote what, when');

-- Layers and their metadata. `schema` is the LayerSchema JSON (fields with stable ids).
CREATE TABLE sk_layers (
  name TEXT PRIMARY KEY,
  title TEXT,
  description TEXT,
  geometry_kind TEXT NOT NULL,
  has_z INTEGER NOT NULL DEFAULT 0,
  srs_id INTEGER NOT NULL,
  schema TEXT NOT NULL,
  theme TEXT NOT NULL DEFAULT '{}',
  height_datum TEXT,
  public INTEGER NOT NULL DEFAULT 0,
  citizen_reports INTEGER NOT NULL DEFAULT 0,
  next_field_id INTEGER NOT NULL DEFAULT 1,
  next_code INTEGER NOT NULL DEFAULT 1,
  created_tx INTEGER NOT NULL REFERENCES sk_transactions(tx)
);

-- Every schema a layer ever had, by the transaction that set it.
CREATE TABLE sk_schema_history (
  layer TEXT NOT NULL,
  tx INTEGER NOT NULL REFERENCES sk_transactions(tx),
  schema TEXT NOT NULL,
  PRIMARY KEY (layer, tx)
);
