-- shikong accounts in PostgreSQL, auth schema version 3: registered outside services and API keys
-- (issue 20), as migrations/auth/0003_services.sql: shared by every server process on the
-- database. Instants are BIGINT milliseconds; JSON documents are TEXT (written and read whole).
CREATE TABLE shikong_auth.services (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  title TEXT NOT NULL,
  url TEXT NOT NULL,
  credentials TEXT,
  layers TEXT NOT NULL,
  health TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  created_by TEXT NOT NULL
);

CREATE TABLE shikong_auth.api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  hash BYTEA NOT NULL UNIQUE,
  quota BIGINT NOT NULL,
  services TEXT NOT NULL,
  fence TEXT,
  expires_at BIGINT,
  hours TEXT,
  created_at BIGINT NOT NULL,
  created_by TEXT NOT NULL,
  revoked_at BIGINT
);

CREATE TABLE shikong_auth.api_key_usage (
  key_id TEXT NOT NULL,
  day TEXT NOT NULL,
  count BIGINT NOT NULL,
  PRIMARY KEY (key_id, day)
);
