-- shikong central store, schema version 4: the replica that pushed a transaction, as a column.
-- Pull skips a device's own pushes (the push answer already gave it those versions). It used to
-- find them by parsing `source`, whose text is `sync push <replica> <batch>`; `source` is now only
-- a human label and `replica` says which replica's push the transaction merged (NULL otherwise).
-- Looked up by `tx` (the primary key), so it needs no index of its own.
ALTER TABLE sk_transactions ADD COLUMN replica TEXT;

-- Transactions written before this version: the replica where the label has exactly the shape
-- the server wrote (`sync push `, a lowercase hyphenated UUID, a space, the batch), as pull used
-- to read it; anything else stays NULL.
UPDATE sk_transactions
SET replica = substr(source, 11, 36)
WHERE source GLOB 'sync push [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f] *';
