//! Writing data-write records to the audit log, and reading the log back with filters.

use rusqlite::Row;
use rusqlite::types::ToSql;

use super::{AuthStore, Note, RowActor, audit_row, insert_audit_row, ms, opt_device_col, ts_col};
use crate::audit::{ActorRef, AuditAction, AuditEntry, AuditPage, AuditQuery, Outcome, PendingAudit, WriteRecord};
use crate::error::{AuthError, Result};
use crate::types::{Actor, AuditId, UserId};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

fn entry_row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let kind: String = r.get(4)?;
    let actor = match kind.as_str() {
        "user" => ActorRef::User {
            id: UserId(r.get::<_, Option<i64>>(5)?.unwrap_or(0)),
            username: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
        },
        "local" => ActorRef::Local(r.get::<_, Option<String>>(6)?.unwrap_or_default()),
        _ => ActorRef::Anonymous,
    };
    let entities: Option<String> = r.get(13)?;
    Ok(AuditEntry {
        id: AuditId(r.get(0)?),
        at: ts_col(r, 1)?,
        action: AuditAction::from_stored(&r.get::<_, String>(2)?),
        outcome: Outcome::from_stored(&r.get::<_, String>(3)?)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e)))?,
        actor,
        device: opt_device_col(r, 7)?,
        client: r.get(8)?,
        request_id: r.get(9)?,
        user: r.get(10)?,
        target: r.get(11)?,
        layer: r.get(12)?,
        entities: entities.map(|e| e.lines().map(str::to_owned).collect()).unwrap_or_default(),
        entity_count: r.get::<_, Option<i64>>(14)?.map(|n| u64::try_from(n).unwrap_or(0)),
        tx: r.get(15)?,
        detail: r.get(16)?,
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
    pub fn query_audit(&self, actor: &Actor, q: &AuditQuery) -> Result<AuditPage> {
        actor.require_admin("read the audit log")?;
        let limit = match q.limit {
            0 => DEFAULT_LIMIT,
            n if n <= MAX_LIMIT => n,
            n => return Err(AuthError::InvalidArgument(format!("limit {n} is too large (at most {MAX_LIMIT})"))),
        };
        let mut sql = String::from(
            "SELECT id, at, action, outcome, actor_kind, actor_id, actor, device, client, request_id, user, target, \
             layer, entities, entity_count, tx, detail FROM audit WHERE 1 = 1",
        );
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        let mut arg = |sql: &mut String, clause: &str, v: Box<dyn ToSql>| {
            args.push(v);
            sql.push_str(&clause.replace('?', &format!("?{}", args.len())));
        };
        if let Some(from) = q.from {
            arg(&mut sql, " AND at >= ?", Box::new(ms(from)));
        }
        if let Some(to) = q.to {
            arg(&mut sql, " AND at < ?", Box::new(ms(to)));
        }
        if let Some(user) = &q.user {
            arg(&mut sql, " AND (actor = ? COLLATE NOCASE OR user = ? COLLATE NOCASE)", Box::new(user.clone()));
        }
        if !q.actions.is_empty() {
            sql.push_str(" AND action IN (");
            for (i, a) in q.actions.iter().enumerate() {
                arg(&mut sql, if i == 0 { "?" } else { ", ?" }, Box::new(a.as_str().to_owned()));
            }
            sql.push(')');
        }
        if let Some(o) = q.outcome {
            arg(&mut sql, " AND outcome = ?", Box::new(o.as_str()));
        }
        if let Some(layer) = &q.layer {
            arg(&mut sql, " AND layer = ?", Box::new(layer.clone()));
        }
        if let Some(after) = q.after {
            arg(&mut sql, " AND id < ?", Box::new(after.0));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit + 1));
        let conn = self.conn();
        let mut st = conn.prepare(&sql)?;
        let params: Vec<&dyn ToSql> = args.iter().map(|b| b.as_ref()).collect();
        let mut entries = st.query_map(params.as_slice(), entry_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        let next = if entries.len() > limit {
            entries.truncate(limit);
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok(AuditPage { entries, next })
    }
}
