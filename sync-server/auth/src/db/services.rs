//! Registered outside services and API keys (issue 20), kept with the accounts so that every
//! server process on one PostgreSQL database proxies the same services with the same keys.
//!
//! This crate stores them and checks who may change them (administrators; every change audited in
//! its transaction); what the documents mean (capabilities' layers, health, credentials) is the
//! HTTP crate's business, so they pass through here as JSON text. A key's secret is random like a
//! token's ([`crate::secret`]), shown once, stored only as its SHA-256.
//!
//! Usage counts (`api_key_usage`) are added to by every process (`count = count + n`), never
//! overwritten, so several processes' flushes add up.

use jiff::Timestamp;

use super::{AuthStore, Note, Row, actor_name, audit_row, ms, params};
use crate::audit::{AuditAction, Outcome};
use crate::error::{AuthError, Result};
use crate::password::validate_label;
use crate::secret::{hash_presented, new_secret};
use crate::types::{Actor, Secret};

/// Longest service title and key name, characters.
pub const MAX_TITLE: usize = 200;
/// Most services one key may name.
pub const MAX_KEY_SERVICES: usize = 1000;
/// The highest per-second rate a key may be given (more is no limit at all on one server).
pub const MAX_KEY_RATE: u64 = 10_000;

/// A registered service as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRow {
    pub id: String,
    /// `wms`, `wmts`, … (the HTTP crate's `ServiceType`).
    pub kind: String,
    pub title: String,
    /// The outside address: never shown to clients.
    pub url: String,
    /// The outside credentials (JSON), never shown to clients.
    pub credentials: Option<String>,
    /// The layers read from the capabilities (JSON).
    pub layers: String,
    /// The latest health check (JSON).
    pub health: String,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// What [`AuthStore::add_service`] stores.
#[derive(Debug, Clone, PartialEq)]
pub struct NewServiceRow {
    pub kind: String,
    pub title: String,
    pub url: String,
    pub credentials: Option<String>,
    pub layers: String,
    pub health: String,
}

/// An API key as stored (no secret, no hash).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    /// Requests per (Beijing) day.
    pub quota: u64,
    pub services: Vec<String>,
    /// WKT polygon in CGCS2000 lon/lat.
    pub fence: Option<String>,
    pub expires_at: Option<Timestamp>,
    /// Daily window, `HH:MM-HH:MM` Beijing time.
    pub hours: Option<String>,
    pub created_at: Timestamp,
    pub created_by: String,
    pub revoked_at: Option<Timestamp>,
    /// Requests per second (a token bucket per server process); `None`: no rate limit.
    pub rate: Option<u64>,
}

/// What [`AuthStore::add_api_key`] stores.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    pub name: String,
    pub quota: u64,
    pub services: Vec<String>,
    pub fence: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub hours: Option<String>,
    pub rate: Option<u64>,
}

const SERVICE_COLS: &str = "id, kind, title, url, credentials, layers, health, created_at, created_by";
const KEY_COLS: &str = "id, name, quota, services, fence, expires_at, hours, created_at, created_by, revoked_at, rate";

fn service_row(r: &Row) -> Result<ServiceRow> {
    Ok(ServiceRow {
        id: r.text(0)?,
        kind: r.text(1)?,
        title: r.text(2)?,
        url: r.text(3)?,
        credentials: r.opt_text(4)?,
        layers: r.text(5)?,
        health: r.text(6)?,
        created_at: r.ts(7)?,
        created_by: r.text(8)?,
    })
}

fn key_row(r: &Row) -> Result<ApiKeyRow> {
    let services: Vec<String> = serde_json::from_str(&r.text(3)?)
        .map_err(|e| AuthError::Corrupt(format!("API key services are not a JSON list: {e}")))?;
    Ok(ApiKeyRow {
        id: r.text(0)?,
        name: r.text(1)?,
        quota: u64::try_from(r.i64(2)?).unwrap_or(0),
        services,
        fence: r.opt_text(4)?,
        expires_at: r.opt_ts(5)?,
        hours: r.opt_text(6)?,
        created_at: r.ts(7)?,
        created_by: r.text(8)?,
        revoked_at: r.opt_ts(9)?,
        rate: r.opt_i64(10)?.and_then(|n| u64::try_from(n).ok()),
    })
}

impl AuthStore {
    /// Registers a service (administrators); audited.
    pub fn add_service(&self, actor: &Actor, new: &NewServiceRow) -> Result<ServiceRow> {
        let note = || Note::default().target(&new.title);
        self.require_admin(actor, AuditAction::ServiceRegister, "register services", note())?;
        validate_label("service title", &new.title, MAX_TITLE)?;
        let now = self.now();
        let row = ServiceRow {
            id: uuid::Uuid::now_v7().to_string(),
            kind: new.kind.clone(),
            title: new.title.clone(),
            url: new.url.clone(),
            credentials: new.credentials.clone(),
            layers: new.layers.clone(),
            health: new.health.clone(),
            created_at: now,
            created_by: actor_name(actor),
        };
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO services ({SERVICE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    row.id,
                    row.kind,
                    row.title,
                    row.url,
                    row.credentials,
                    row.layers,
                    row.health,
                    ms(now),
                    row.created_by
                ],
            )?;
            let note = Note::default().target(format!("service {} {}", row.id, row.title)).detail(&row.kind);
            audit_row(tx, now, actor, &AuditAction::ServiceRegister, Outcome::Ok, note)?;
            Ok(())
        })?;
        Ok(row)
    }

    /// Every registered service, oldest first (no actor: the proxy and the catalog read this;
    /// callers decide what to show).
    pub fn services(&self) -> Result<Vec<ServiceRow>> {
        let sql = format!("SELECT {SERVICE_COLS} FROM services ORDER BY created_at, id");
        self.conn()?.query(&sql, params![])?.iter().map(service_row).collect()
    }

    /// One service, if registered.
    pub fn service(&self, id: &str) -> Result<Option<ServiceRow>> {
        let sql = format!("SELECT {SERVICE_COLS} FROM services WHERE id = ?1");
        self.conn()?.query_opt(&sql, params![id])?.as_ref().map(service_row).transpose()
    }

    /// Removes a registered service (administrators); audited. Keys naming it keep the id and
    /// reach nothing.
    pub fn delete_service(&self, actor: &Actor, id: &str) -> Result<()> {
        let note = || Note::default().target(format!("service {id}"));
        self.require_admin(actor, AuditAction::ServiceDelete, "remove services", note())?;
        let now = self.now();
        self.write(|tx| {
            if tx.execute("DELETE FROM services WHERE id = ?1", params![id])? == 0 {
                return Err(AuthError::NoSuchService(id.to_owned()));
            }
            audit_row(tx, now, actor, &AuditAction::ServiceDelete, Outcome::Ok, note())?;
            Ok(())
        })
    }

    /// Records a health check's outcome (JSON); not audited (the server's own observation).
    /// A service removed meanwhile is no error.
    pub fn set_service_health(&self, id: &str, health: &str) -> Result<()> {
        self.write(|tx| tx.execute("UPDATE services SET health = ?2 WHERE id = ?1", params![id, health]).map(drop))
    }

    /// Creates an API key (administrators); audited. The secret is returned this once.
    pub fn add_api_key(&self, actor: &Actor, new: &NewApiKey) -> Result<(ApiKeyRow, Secret)> {
        let note = || Note::default().target(format!("API key {}", new.name));
        self.require_admin(actor, AuditAction::ApiKeyCreate, "create API keys", note())?;
        validate_label("key name", &new.name, MAX_TITLE)?;
        if new.quota == 0 || i64::try_from(new.quota).is_err() {
            return Err(AuthError::InvalidArgument(format!("quota {}: must be 1 or more requests a day", new.quota)));
        }
        if new.rate.is_some_and(|r| r == 0 || r > MAX_KEY_RATE) {
            return Err(AuthError::InvalidArgument(format!(
                "rate {}: must be 1 to {MAX_KEY_RATE} requests a second",
                new.rate.unwrap_or(0)
            )));
        }
        if new.services.len() > MAX_KEY_SERVICES {
            return Err(AuthError::InvalidArgument(format!(
                "{} services; a key names at most {MAX_KEY_SERVICES}",
                new.services.len()
            )));
        }
        let (secret, hash) = new_secret()?;
        let now = self.now();
        let row = ApiKeyRow {
            id: uuid::Uuid::now_v7().to_string(),
            name: new.name.clone(),
            quota: new.quota,
            services: new.services.clone(),
            fence: new.fence.clone(),
            expires_at: new.expires_at,
            hours: new.hours.clone(),
            created_at: now,
            created_by: actor_name(actor),
            revoked_at: None,
            rate: new.rate,
        };
        let services = serde_json::to_string(&row.services).map_err(|e| AuthError::Corrupt(e.to_string()))?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO api_keys (id, name, hash, quota, services, fence, expires_at, hours, created_at, \
                 created_by, rate) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    row.id,
                    row.name,
                    &hash[..],
                    i64::try_from(row.quota).unwrap_or(i64::MAX),
                    services,
                    row.fence,
                    row.expires_at.map(ms),
                    row.hours,
                    ms(now),
                    row.created_by,
                    row.rate.map(|r| i64::try_from(r).unwrap_or(i64::MAX))
                ],
            )?;
            let note = Note::default().target(format!("API key {} {}", row.id, row.name)).detail(match row.rate {
                Some(r) => format!("quota {}/day, rate {r}/s, services {}", row.quota, services),
                None => format!("quota {}/day, services {}", row.quota, services),
            });
            audit_row(tx, now, actor, &AuditAction::ApiKeyCreate, Outcome::Ok, note)?;
            Ok(())
        })?;
        Ok((row, secret))
    }

    /// Every API key, revoked ones too, oldest first.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyRow>> {
        let sql = format!("SELECT {KEY_COLS} FROM api_keys ORDER BY created_at, id");
        self.conn()?.query(&sql, params![])?.iter().map(key_row).collect()
    }

    /// The key whose secret is `presented`, revoked or not; `None` for anything else.
    pub fn api_key_by_secret(&self, presented: &str) -> Result<Option<ApiKeyRow>> {
        let Some(hash) = hash_presented(presented) else { return Ok(None) };
        let sql = format!("SELECT {KEY_COLS} FROM api_keys WHERE hash = ?1");
        self.conn()?.query_opt(&sql, params![&hash[..]])?.as_ref().map(key_row).transpose()
    }

    /// Revokes a key (administrators); audited. Revoking a revoked key changes nothing.
    pub fn revoke_api_key(&self, actor: &Actor, id: &str) -> Result<()> {
        let note = || Note::default().target(format!("API key {id}"));
        self.require_admin(actor, AuditAction::ApiKeyRevoke, "revoke API keys", note())?;
        let now = self.now();
        self.write(|tx| {
            let found = tx.query_opt("SELECT revoked_at FROM api_keys WHERE id = ?1", params![id])?;
            let Some(found) = found else { return Err(AuthError::NoSuchApiKey(id.to_owned())) };
            if found.opt_ts(0)?.is_none() {
                tx.execute("UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1", params![id, ms(now)])?;
                audit_row(tx, now, actor, &AuditAction::ApiKeyRevoke, Outcome::Ok, note())?;
            }
            Ok(())
        })
    }

    /// Adds requests to keys' counts of a day (`(key id, day, n)`; day `YYYY-MM-DD`), in one
    /// transaction. Counts only grow: every process adds what it counted since its last flush.
    pub fn add_api_key_usage(&self, counts: &[(String, String, u64)]) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            for (key, day, n) in counts {
                tx.execute(
                    "INSERT INTO api_key_usage (key_id, day, count) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (key_id, day) DO UPDATE SET count = api_key_usage.count + excluded.count",
                    params![key, day, i64::try_from(*n).unwrap_or(i64::MAX)],
                )?;
            }
            Ok(())
        })
    }

    /// Every key's count of `day` (all processes' flushed requests).
    pub fn api_key_usage(&self, day: &str) -> Result<Vec<(String, u64)>> {
        let rows = self.conn()?.query("SELECT key_id, count FROM api_key_usage WHERE day = ?1", params![day])?;
        rows.iter().map(|r| Ok((r.text(0)?, u64::try_from(r.i64(1)?).unwrap_or(0)))).collect()
    }
}
