-- shikong accounts in PostgreSQL, auth schema version 4: harvesting other catalogues (issue 20),
-- as migrations/auth/0004_harvest.sql: shared by every server process on the database.
-- Instants are BIGINT milliseconds; JSON documents are TEXT (written and read whole).
CREATE TABLE shikong_auth.harvest_sources (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  title TEXT NOT NULL,
  url TEXT NOT NULL,
  every_minutes BIGINT,
  last_run TEXT,
  created_at BIGINT NOT NULL,
  created_by TEXT NOT NULL
);

CREATE TABLE shikong_auth.harvested_records (
  source_id TEXT NOT NULL,
  remote_id TEXT NOT NULL,
  title TEXT NOT NULL,
  abstract TEXT NOT NULL,
  keywords TEXT NOT NULL,
  bbox TEXT,
  kind TEXT NOT NULL,
  modified TEXT,
  hash TEXT NOT NULL,
  run_id TEXT NOT NULL,
  raw TEXT NOT NULL,
  PRIMARY KEY (source_id, remote_id)
);
