//! Catalogue harvest sources and the records harvested from them (issue 20), kept with the
//! accounts so that every server process on one PostgreSQL database serves the same harvested
//! records and shows the same runs.
//!
//! A run writes page by page ([`AuthStore::upsert_harvested`], one transaction per page): a record
//! whose content hash is unchanged only gets the run's id (mark), a changed one is rewritten, a
//! new one inserted. When the run has read the whole source, [`AuthStore::sweep_harvested`]
//! removes the source's records another run marked (sweep): they are gone at the source. A run
//! that fails stops before the sweep, so the records of earlier runs stay. Every write moves the
//! harvest generation (`auth_meta`), which readers cache their views under.

use jiff::Timestamp;

use super::{AuthStore, Note, Row, actor_name, audit_row, ms, params};
use crate::audit::{AuditAction, Outcome};
use crate::error::{AuthError, Result};
use crate::password::validate_label;

/// Longest harvest source title, characters.
pub const MAX_HARVEST_TITLE: usize = 200;

/// A harvest source as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct HarvestSourceRow {
    pub id: String,
    /// `csw`, `ogcapi-records`, … (the protocol's `HarvestType`).
    pub kind: String,
    pub title: String,
    pub url: String,
    pub every_minutes: Option<u32>,
    /// The latest run (JSON), owned by the HTTP crate.
    pub last_run: Option<String>,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// What [`AuthStore::add_harvest_source`] stores.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHarvestSource {
    pub kind: String,
    pub title: String,
    pub url: String,
    pub every_minutes: Option<u32>,
}

/// One harvested record as written and read.
#[derive(Debug, Clone, PartialEq)]
pub struct HarvestedRecord {
    pub source_id: String,
    pub remote_id: String,
    pub title: String,
    pub abstract_text: String,
    /// JSON list of words.
    pub keywords: String,
    /// JSON `[minx, miny, maxx, maxy]`, lon/lat.
    pub bbox: Option<String>,
    /// `dataset`, `service`, … as the source says.
    pub kind: String,
    pub modified: Option<String>,
    /// Hash of the content; an unchanged hash is not rewritten.
    pub hash: String,
    /// The record as read, normalised (JSON: links and the rest).
    pub raw: String,
}

/// What one page did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertCounts {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
}

const SOURCE_COLS: &str = "id, kind, title, url, every_minutes, last_run, created_at, created_by";
const RECORD_COLS: &str = "source_id, remote_id, title, abstract, keywords, bbox, kind, modified, hash, raw";

fn source_row(r: &Row) -> Result<HarvestSourceRow> {
    Ok(HarvestSourceRow {
        id: r.text(0)?,
        kind: r.text(1)?,
        title: r.text(2)?,
        url: r.text(3)?,
        every_minutes: r.opt_i64(4)?.and_then(|m| u32::try_from(m).ok()),
        last_run: r.opt_text(5)?,
        created_at: r.ts(6)?,
        created_by: r.text(7)?,
    })
}

fn record_row(r: &Row) -> Result<HarvestedRecord> {
    Ok(HarvestedRecord {
        source_id: r.text(0)?,
        remote_id: r.text(1)?,
        title: r.text(2)?,
        abstract_text: r.text(3)?,
        keywords: r.text(4)?,
        bbox: r.opt_text(5)?,
        kind: r.text(6)?,
        modified: r.opt_text(7)?,
        hash: r.text(8)?,
        raw: r.text(9)?,
    })
}

/// Moves the harvest generation: readers' cached views are stale from now on.
fn bump(tx: &super::Conn) -> Result<()> {
    tx.execute(
        "INSERT INTO auth_meta (key, value) VALUES ('harvest_generation', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![uuid::Uuid::now_v7().to_string()],
    )
    .map(drop)
}

impl AuthStore {
    /// Adds a harvest source (administrators); audited.
    pub fn add_harvest_source(&self, actor: &crate::types::Actor, new: &NewHarvestSource) -> Result<HarvestSourceRow> {
        let note = || Note::default().target(&new.title);
        self.require_admin(actor, AuditAction::HarvestCreate, "add harvest sources", note())?;
        validate_label("harvest title", &new.title, MAX_HARVEST_TITLE)?;
        let now = self.now();
        let row = HarvestSourceRow {
            id: uuid::Uuid::now_v7().to_string(),
            kind: new.kind.clone(),
            title: new.title.clone(),
            url: new.url.clone(),
            every_minutes: new.every_minutes,
            last_run: None,
            created_at: now,
            created_by: actor_name(actor),
        };
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO harvest_sources ({SOURCE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7)"),
                params![
                    row.id,
                    row.kind,
                    row.title,
                    row.url,
                    row.every_minutes.map(i64::from),
                    ms(now),
                    row.created_by
                ],
            )?;
            let note = Note::default().target(format!("harvest {} {}", row.id, row.title)).detail(&row.kind);
            audit_row(tx, now, actor, &AuditAction::HarvestCreate, Outcome::Ok, note)?;
            Ok(())
        })?;
        Ok(row)
    }

    /// Every harvest source, oldest first.
    pub fn harvest_sources(&self) -> Result<Vec<HarvestSourceRow>> {
        let sql = format!("SELECT {SOURCE_COLS} FROM harvest_sources ORDER BY created_at, id");
        self.conn()?.query(&sql, params![])?.iter().map(source_row).collect()
    }

    /// One harvest source.
    pub fn harvest_source(&self, id: &str) -> Result<Option<HarvestSourceRow>> {
        let sql = format!("SELECT {SOURCE_COLS} FROM harvest_sources WHERE id = ?1");
        self.conn()?.query_opt(&sql, params![id])?.as_ref().map(source_row).transpose()
    }

    /// Removes a source and every record harvested from it (administrators); audited.
    pub fn delete_harvest_source(&self, actor: &crate::types::Actor, id: &str) -> Result<()> {
        let note = || Note::default().target(format!("harvest {id}"));
        self.require_admin(actor, AuditAction::HarvestDelete, "remove harvest sources", note())?;
        let now = self.now();
        self.write(|tx| {
            if tx.execute("DELETE FROM harvest_sources WHERE id = ?1", params![id])? == 0 {
                return Err(AuthError::NoSuchHarvest(id.to_owned()));
            }
            tx.execute("DELETE FROM harvested_records WHERE source_id = ?1", params![id])?;
            bump(tx)?;
            audit_row(tx, now, actor, &AuditAction::HarvestDelete, Outcome::Ok, note())?;
            Ok(())
        })
    }

    /// Claims a run: writes `run` (JSON) as the source's latest run if that is still
    /// `expected` (what the caller read), so two processes never run one source at once.
    /// `false`: another process changed it first (or the source is gone).
    pub fn claim_harvest_run(&self, id: &str, expected: Option<&str>, run: &str) -> Result<bool> {
        self.write(|tx| {
            let n = match expected {
                None => tx.execute(
                    "UPDATE harvest_sources SET last_run = ?2 WHERE id = ?1 AND last_run IS NULL",
                    params![id, run],
                )?,
                Some(old) => tx.execute(
                    "UPDATE harvest_sources SET last_run = ?2 WHERE id = ?1 AND last_run = ?3",
                    params![id, run, old],
                )?,
            };
            Ok(n == 1)
        })
    }

    /// Records a run's state (JSON); not audited (the server's own work). A source removed
    /// meanwhile is no error.
    pub fn set_harvest_run(&self, id: &str, run: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("UPDATE harvest_sources SET last_run = ?2 WHERE id = ?1", params![id, run]).map(drop)
        })
    }

    /// Writes one page of a run in one transaction: new records inserted, changed ones (another
    /// hash) rewritten, unchanged ones only marked with `run_id`. A source removed meanwhile
    /// takes nothing (the page is dropped).
    pub fn upsert_harvested(&self, source_id: &str, run_id: &str, page: &[HarvestedRecord]) -> Result<UpsertCounts> {
        let mut counts = UpsertCounts::default();
        self.write(|tx| {
            counts = UpsertCounts::default();
            if tx.query_opt("SELECT id FROM harvest_sources WHERE id = ?1", params![source_id])?.is_none() {
                return Ok(());
            }
            for r in page {
                let found = tx.query_opt(
                    "SELECT hash, run_id FROM harvested_records WHERE source_id = ?1 AND remote_id = ?2",
                    params![source_id, r.remote_id],
                )?;
                // The record's columns, ?1…?11 in both statements below.
                let row = params![
                    source_id,
                    r.remote_id,
                    r.title,
                    r.abstract_text,
                    r.keywords,
                    r.bbox,
                    r.kind,
                    r.modified,
                    r.hash,
                    r.raw,
                    run_id
                ];
                match found {
                    None => {
                        tx.execute(
                            &format!(
                                "INSERT INTO harvested_records ({RECORD_COLS}, run_id) \
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                            ),
                            row,
                        )?;
                        counts.added += 1;
                    }
                    Some(f) if f.text(0)? == r.hash => {
                        // Seen twice in one run (a source that repeats a record) counts once.
                        if f.text(1)? != run_id {
                            tx.execute(
                                "UPDATE harvested_records SET run_id = ?3 WHERE source_id = ?1 AND remote_id = ?2",
                                params![source_id, r.remote_id, run_id],
                            )?;
                            counts.unchanged += 1;
                        }
                    }
                    Some(_) => {
                        tx.execute(
                            "UPDATE harvested_records SET title = ?3, abstract = ?4, keywords = ?5, bbox = ?6, \
                             kind = ?7, modified = ?8, hash = ?9, raw = ?10, run_id = ?11 \
                             WHERE source_id = ?1 AND remote_id = ?2",
                            row,
                        )?;
                        counts.updated += 1;
                    }
                }
            }
            if counts.added + counts.updated > 0 {
                bump(tx)?;
            }
            Ok(())
        })?;
        Ok(counts)
    }

    /// Removes the source's records that `run_id` did not see (the run read the whole source);
    /// how many.
    pub fn sweep_harvested(&self, source_id: &str, run_id: &str) -> Result<u64> {
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM harvested_records WHERE source_id = ?1 AND run_id <> ?2",
                params![source_id, run_id],
            )?;
            if n > 0 {
                bump(tx)?;
            }
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
    }

    /// How many records each source holds.
    pub fn harvested_counts(&self) -> Result<Vec<(String, u64)>> {
        let rows =
            self.conn()?.query("SELECT source_id, COUNT(*) FROM harvested_records GROUP BY source_id", params![])?;
        rows.iter().map(|r| Ok((r.text(0)?, u64::try_from(r.i64(1)?).unwrap_or(0)))).collect()
    }

    /// Up to `limit` harvested records after `(source, remote id)` in that order (keyset pages,
    /// so a reader never holds more than one page).
    pub fn harvested_page(&self, after: Option<(&str, &str)>, limit: usize) -> Result<Vec<HarvestedRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.conn()?;
        let rows = match after {
            None => conn.query(
                &format!("SELECT {RECORD_COLS} FROM harvested_records ORDER BY source_id, remote_id LIMIT ?1"),
                params![limit],
            )?,
            Some((s, r)) => conn.query(
                &format!(
                    "SELECT {RECORD_COLS} FROM harvested_records \
                     WHERE source_id > ?1 OR (source_id = ?1 AND remote_id > ?2) \
                     ORDER BY source_id, remote_id LIMIT ?3"
                ),
                params![s, r, limit],
            )?,
        };
        rows.iter().map(record_row).collect()
    }

    /// The harvest generation: changes with every write to harvested records (any process).
    pub fn harvest_generation(&self) -> Result<String> {
        let row = self.conn()?.query_opt("SELECT value FROM auth_meta WHERE key = 'harvest_generation'", params![])?;
        Ok(match row {
            Some(r) => r.text(0)?,
            None => String::new(),
        })
    }
}
