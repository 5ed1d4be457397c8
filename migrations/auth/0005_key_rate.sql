-- shikong auth database, schema version 5: a per-second rate for API keys (issue 20), beside the
-- daily quota. NULL: no rate limit. Each server process enforces it on its own requests (a token
-- bucket in memory); the quota stays the shared, durable limit.
ALTER TABLE api_keys ADD COLUMN rate INTEGER;
