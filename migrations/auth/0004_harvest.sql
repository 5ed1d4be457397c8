-- shikong auth database, schema version 4: harvesting other catalogues (issue 20). Next to the
-- services because they are shared the same way: every server process on one PostgreSQL database
-- serves the same harvested records. `last_run` is a JSON document owned by the HTTP crate.
-- A harvested record keeps its source, the remote identifier, a hash of its content (an unchanged
-- record is not rewritten) and the run that last saw it: a finished run removes its source's
-- records that another run id marks (mark and sweep), so records gone at the source go here too.
CREATE TABLE harvest_sources (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  title TEXT NOT NULL,
  url TEXT NOT NULL,
  every_minutes INTEGER,
  last_run TEXT,
  created_at INTEGER NOT NULL,
  created_by TEXT NOT NULL
) STRICT;

CREATE TABLE harvested_records (
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
) STRICT;
