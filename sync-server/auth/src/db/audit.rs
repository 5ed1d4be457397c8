//! Writing data-write records to the audit log, and reading the log back with filters.

use super::{AuthStore, Note, P, Row, RowActor, audit_row, insert_audit_row, ms};
use crate::audit::{ActorRef, AuditAction, AuditEntry, AuditPage, AuditQuery, Outcome, PendingAudit, WriteRecord};
use crate::error::{AuthError, Result};
use crate::types::{Actor, AuditId, UserId};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn entry_row(r: &Row) -> Result<AuditEntry> {
    let kind = r.text(4)?;
    let actor = match kind.as_str() {
        "user" => {
            ActorRef::User { id: UserId(r.opt_i64(5)?.unwrap_or(0)), username: r.opt_text(6)?.unwrap_or_default() }
        }
        "local" => ActorRef::Local(r.opt_text(6)?.unwrap_or_default()),
        _ => ActorRef::Anonymous,
    };
    let entities = r.opt_text(13)?;
    Ok(AuditEntry {
        id: AuditId(r.i64(0)?),
        at: r.ts(1)?,
        action: AuditAction::from_stored(&r.text(2)?),
        outcome: Outcome::from_stored(&r.text(3)?)
            .map_err(|e| AuthError::Corrupt(format!("audit row {}: {e}", r.i64(0).unwrap_or(0))))?,
        actor,
        device: r.opt_device(7)?,
        client: r.opt_text(8)?,
        request_id: r.opt_text(9)?,
        user: r.opt_text(10)?,
        target: r.opt_text(11)?,
        layer: r.opt_text(12)?,
        entities: entities.map(|e| e.lines().map(str::to_owned).collect()).unwrap_or_default(),
        entity_count: r.opt_i64(14)?.map(|n| u64::try_from(n).unwrap_or(0)),
        tx: r.opt_text(15)?,
        detail: r.opt_text(16)?,
    })
}

impl AuthStore {
    /// Records a data write (or a refused one) reported by the server: who (the actor, with its
    /// device, client address and request id), which layer, which entities, how many, and the
    /// store transaction. Anyone may be recorded; nobody may change a record afterwards.
    pub fn record_write(&self, actor: &Actor, w: &WriteRecord) -> Result<AuditId> {
        let count = w.count.unwrap_or(u64::try_from(w.entities.len()).unwrap_or(u64::MAX));
        let now = self.now();
        self.write(|tx| {
            let note = Note {
                layer: w.layer.as_deref(),
                entities: &w.entities,
                entity_count: Some(count),
                tx: w.tx.as_deref(),
                detail: w.detail.clone(),
                ..Note::default()
            };
            audit_row(tx, now, actor, &w.action, w.outcome, note)
        })
    }

    /// Appends a data write's audit record delivered from the store's outbox. Idempotent: a
    /// record already appended (same id) writes nothing and answers `false`.
    pub fn record_pending(&self, p: &PendingAudit) -> Result<bool> {
        let mut out = self.record_pending_many(std::slice::from_ref(p))?;
        out.pop().unwrap_or_else(|| Err(AuthError::InvalidArgument("no record".into())))
    }

    /// [`Self::record_pending`] for many records in one transaction (one disk sync for a whole
    /// outbox batch). The outer error is the database's (nothing written); each inner result
    /// says whether that record was new, or why it is invalid (it is not written, the others are).
    pub fn record_pending_many(&self, ps: &[PendingAudit]) -> Result<Vec<Result<bool>>> {
        let checked: Vec<Result<(Outcome, jiff::Timestamp)>> = ps
            .iter()
            .map(|p| {
                let outcome: Outcome = p.outcome.parse()?;
                if !matches!(p.actor_kind.as_str(), "user" | "local" | "anonymous") {
                    return Err(AuthError::InvalidArgument(format!("unknown actor kind `{}`", p.actor_kind)));
                }
                let at = jiff::Timestamp::from_millisecond(p.at_ms)
                    .map_err(|e| AuthError::InvalidArgument(format!("audit record time {}: {e}", p.at_ms)))?;
                Ok((outcome, at))
            })
            .collect();
        self.write(|tx| {
            let mut out = Vec::with_capacity(ps.len());
            for (p, c) in ps.iter().zip(checked) {
                let (outcome, at) = match c {
                    Ok(c) => c,
                    Err(e) => {
                        out.push(Err(e));
                        continue;
                    }
                };
                let who = RowActor {
                    kind: &p.actor_kind,
                    id: p.actor_id,
                    name: p.actor.as_deref(),
                    device: p.device.clone(),
                    client: p.client.as_deref(),
                    request_id: p.request_id.as_deref(),
                };
                let note = Note {
                    layer: p.layer.as_deref(),
                    entities: &p.entities,
                    entity_count: p.count,
                    tx: p.tx.as_deref(),
                    detail: p.detail.clone(),
                    ..Note::default()
                };
                let id = p.id.to_string();
                out.push(Ok(insert_audit_row(tx, at, &who, &p.action, outcome, note, Some(&id))?.is_some()));
            }
            Ok(out)
        })
    }

    /// Reads the audit log, newest first (admins). Every filter in `q` narrows the result; page
    /// on with `after = page.next`.
    pub fn query_audit<'a>(&self, actor: &Actor, q: &'a AuditQuery) -> Result<AuditPage> {
        actor.require_admin("read the audit log")?;
        let limit = match q.limit {
            0 => DEFAULT_LIMIT,
            n if n <= MAX_LIMIT => n,
            n => return Err(AuthError::InvalidArgument(format!("limit {n} is too large (at most {MAX_LIMIT})"))),
        };
        let mut sql = String::from(
            "SELECT id, at, action, outcome, actor_kind, actor_id, actor, device, client, request_id, \"user\", \
             target, layer, entities, entity_count, tx, detail FROM audit WHERE 1 = 1",
        );
        let mut args: Vec<P<'_>> = Vec::new();
        let mut arg = |sql: &mut String, clause: &str, v: P<'a>| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(from) = q.from {
            arg(&mut sql, " AND at >= ?", P::Int(ms(from)));
        }
        if let Some(to) = q.to {
            arg(&mut sql, " AND at < ?", P::Int(ms(to)));
        }
        if let Some(user) = &q.user {
            // Case ignored, as for usernames (SQLite's `lower` folds ASCII only, like NOCASE).
            let clause = " AND (lower(actor) = lower(CAST(? AS TEXT)) OR lower(\"user\") = lower(CAST(? AS TEXT)))";
            arg(&mut sql, clause, P::Text(user));
        }
        if !q.actions.is_empty() {
            sql.push_str(" AND action IN (");
            for (i, a) in q.actions.iter().enumerate() {
                arg(&mut sql, if i == 0 { "?" } else { ", ?" }, P::Text(a.as_str()));
            }
            sql.push(')');
        }
        if let Some(o) = q.outcome {
            arg(&mut sql, " AND outcome = ?", P::Text(o.as_str()));
        }
        if let Some(layer) = &q.layer {
            arg(&mut sql, " AND layer = ?", P::Text(layer));
        }
        if let Some(after) = q.after {
            arg(&mut sql, " AND id < ?", P::Int(after.0));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit + 1));
        let rows = self.conn()?.query(&sql, &args)?;
        let mut entries = rows.iter().map(entry_row).collect::<Result<Vec<_>>>()?;
        let next = if entries.len() > limit {
            entries.truncate(limit);
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok(AuditPage { entries, next })
    }
}
