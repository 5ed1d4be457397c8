-- shikong central store, schema version 3: who created what.
-- "The entities this user created" (a citizen's own reports, GET /reports/mine) starts from the
-- user's transactions; without this index that is a scan of the whole journal.
CREATE INDEX sk_idx_transactions_author ON sk_transactions (author);
