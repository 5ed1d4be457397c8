-- shikong auth database, schema version 3: registered outside services and API keys (issue 20).
-- They live with the accounts because they are shared the same way: every server process on one
-- PostgreSQL database proxies the same services with the same keys. `credentials` holds the
-- outside service's own headers/password (JSON, never shown by the API); `layers` and `health`
-- are JSON documents owned by the HTTP crate. A key's secret is kept only as its SHA-256, like a
-- token's. `api_key_usage` holds each key's requests per Beijing day, added to by every process.
CREATE TABLE services (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  title TEXT NOT NULL,
  url TEXT NOT NULL,
  credentials TEXT,
  layers TEXT NOT NULL,
  health TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL
) STRICT;

CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  hash BLOB NOT NULL UNIQUE,
  quota INTEGER NOT NULL,
  services TEXT NOT NULL,
  fence TEXT,
  expires_at INTEGER,
  hours TEXT,
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL,
  revoked_at INTEGER
) STRICT;

CREATE TABLE api_key_usage (
  key_id TEXT NOT NULL,
  day TEXT NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (key_id, day)
) STRICT;
