-- shikong accounts in PostgreSQL, auth schema version 5: a per-second rate for API keys, as
-- migrations/auth/0005_key_rate.sql. NULL: no rate limit.
ALTER TABLE shikong_auth.api_keys ADD COLUMN rate BIGINT;
