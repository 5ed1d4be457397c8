-- shikong authentication database (DIR/auth.sqlite), schema version 1.
-- Kept apart from the GeoPackage store: stores are copied around and opened in QGIS, and
-- credentials must not travel with them. All instants are INTEGER milliseconds since the Unix
-- epoch (UTC); read them with `datetime(at / 1000, 'unixepoch')`.

-- Key/value facts about this file: schema_version, created_at.
CREATE TABLE auth_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

-- Accounts. `username` compares ASCII-case-insensitively (Admin = admin) so two accounts cannot
-- differ only by case; Chinese names are compared exactly. `password_hash` is an Argon2id PHC string.
-- `status_reason` holds why a registration was rejected or an account disabled.
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  username TEXT NOT NULL UNIQUE COLLATE NOCASE,
  display_name TEXT,
  contact TEXT,
  role TEXT NOT NULL CHECK (role IN ('admin', 'office', 'inspector', 'citizen')),
  status TEXT NOT NULL CHECK (status IN ('active', 'pending', 'rejected', 'disabled')),
  status_reason TEXT,
  password_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE groups (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE COLLATE NOCASE,
  description TEXT,
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE group_members (
  group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
  user_id INTEGER NOT NULL REFERENCES users (id),
  PRIMARY KEY (group_id, user_id)
) STRICT;
CREATE INDEX group_members_user ON group_members (user_id);

-- Devices (phones, tablets, desktops) bound to one user. `id` is a UUID: it also appears as the
-- device of store transactions, so it must be unique beyond this server.
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id),
  name TEXT NOT NULL,
  platform TEXT NOT NULL,
  hardware_id TEXT,
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER,
  revoked_at INTEGER
) STRICT;
CREATE INDEX devices_user ON devices (user_id);

-- Bearer tokens. Only the SHA-256 of the secret is kept: a copy of this file does not let anyone
-- log in. `kind` 'session' comes from a password login, 'device' from enrolment or an admin.
CREATE TABLE tokens (
  id INTEGER PRIMARY KEY,
  hash BLOB NOT NULL UNIQUE,
  user_id INTEGER NOT NULL REFERENCES users (id),
  device_id TEXT REFERENCES devices (id),
  kind TEXT NOT NULL CHECK (kind IN ('session', 'device')),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at INTEGER,
  revoked_reason TEXT
) STRICT;
CREATE INDEX tokens_user ON tokens (user_id);
CREATE INDEX tokens_device ON tokens (device_id);

-- One-time device enrolment secrets (shown as a QR code), hashed like tokens.
CREATE TABLE enrolments (
  id INTEGER PRIMARY KEY,
  hash BLOB NOT NULL UNIQUE,
  user_id INTEGER NOT NULL REFERENCES users (id),
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  device_id TEXT REFERENCES devices (id)
) STRICT;

-- Recent failed logins per attempted username (ASCII-lowercased), for the brute-force lockout.
-- Not the audit trail (that is `audit`): rows are pruned once they are too old to matter and
-- cleared by a successful login.
CREATE TABLE login_failures (
  id INTEGER PRIMARY KEY,
  username TEXT NOT NULL,
  at INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_user ON login_failures (username, at);

-- Per-layer permission rules. `subject_key` is 'role:<role>', 'group:<group id>' or
-- 'authenticated', so that one subject has at most one rule per layer. A rule is the whole access
-- of its subject on the layer: what it does not grant is denied.
CREATE TABLE layer_rules (
  id INTEGER PRIMARY KEY,
  layer TEXT NOT NULL,
  subject_key TEXT NOT NULL,
  role TEXT CHECK (role IN ('admin', 'office', 'inspector', 'citizen')),
  group_id INTEGER REFERENCES groups (id) ON DELETE CASCADE,
  can_read INTEGER NOT NULL CHECK (can_read IN (0, 1)),
  can_create INTEGER NOT NULL CHECK (can_create IN (0, 1)),
  can_edit INTEGER NOT NULL CHECK (can_edit IN (0, 1)),
  can_publish INTEGER NOT NULL CHECK (can_publish IN (0, 1)),
  updated_at INTEGER NOT NULL,
  updated_by TEXT NOT NULL,
  UNIQUE (layer, subject_key)
) STRICT;

-- The audit log: every login (success and failure), token issue/revocation, account, group,
-- device and permission change, and every data write the server reports. Append-only (the
-- triggers below refuse UPDATE and DELETE).
--   actor_kind/actor_id/actor: who did it ('user' with id and name, 'local' operator, 'anonymous');
--   user: the account concerned (the username tried at login, the account changed);
--   target: another object concerned (group, device, token id, rule subject).
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  action TEXT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'denied')),
  actor_kind TEXT NOT NULL CHECK (actor_kind IN ('user', 'local', 'anonymous')),
  actor_id INTEGER,
  actor TEXT,
  device TEXT,
  client TEXT,
  request_id TEXT,
  user TEXT,
  target TEXT,
  layer TEXT,
  entities TEXT,
  entity_count INTEGER,
  tx TEXT,
  detail TEXT
) STRICT;
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_actor ON audit (actor);
CREATE INDEX audit_user ON audit (user);
CREATE INDEX audit_layer ON audit (layer);
CREATE INDEX audit_action ON audit (action);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
  SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
  SELECT RAISE(ABORT, 'the audit log is append-only');
END;
