//! Copying the accounts from one auth database to another (`shikong store copy`, SQLite data
//! folder ↔ PostgreSQL), so that a city moving its store between backends keeps every user,
//! password, device and token: a device's token issued before the move still works after it, and
//! nobody re-enrols.
//!
//! Why rows and not operations: a replay through [`AuthStore`]'s methods would hash passwords
//! again (it cannot: only hashes are stored), issue new token secrets (devices hold the old
//! ones), renumber users (audit rows and rules name them by id) and write new audit rows. So the
//! copy moves every row of every table as it is — users with their password hashes, status and
//! role; groups and memberships; devices; tokens with their hashes, expiry, revocation and device
//! binding; enrolment codes; recent failed logins (the lockout state); permission rules; the
//! audit log with its ids, instants and `outbox_id` (the store outbox's bookkeeping: a record
//! already delivered is not delivered twice after the move) — and checks that both ends are at
//! the same auth schema version.
//!
//! One code path serves both directions: rows are read through the `sql.rs` layer into
//! backend-neutral values ([`Cell`], booleans normalised from SQLite's 0/1) and written back
//! through it, a page of [`PAGE_ROWS`] at a time (multi-row `INSERT`s). The source is read in one
//! read transaction (SQLite: one WAL snapshot; PostgreSQL: `REPEATABLE READ READ ONLY`), so the
//! copy is of one instant. The destination must be empty (no user, group, device, token,
//! enrolment, failed login, rule or audit row — [`AuthError::DestinationNotEmpty`] names what it
//! holds, and nothing is written) and is written in **one** write transaction under the auth
//! writer lock, which the caller commits ([`PendingAccounts::commit`]) — `shikong store copy`
//! commits it only once the store itself has been copied, so a failed store copy leaves the
//! accounts destination empty too. On PostgreSQL the identity sequences are then moved past the
//! copied ids (`setval`, which a rollback does not undo: at worst later ids skip some numbers).

use std::fmt;

use super::sql::{Conn, P, V};
use super::{AuthStore, Held, SCHEMA_VERSION};
use crate::error::{AuthError, Result};

/// Rows per page read from the source and per multi-row `INSERT`.
pub const PAGE_ROWS: usize = 500;

/// How a column's values are kept (the SQL types both backends share).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Bool,
    Text,
    Blob,
}
use Kind::{Blob, Bool, Int, Text};

/// A table of the auth schema, its columns as both backends name them, and whether it is keyed
/// by an integer `id` (read in pages by id; on PostgreSQL an identity column to move on).
struct Table {
    name: &'static str,
    /// What it holds, for reports and refusals ("3 users").
    what: &'static str,
    cols: &'static [(&'static str, Kind)],
    id: bool,
    /// Ordering of tables without an integer id (read whole: small).
    order: &'static str,
}

/// Every table but `auth_meta`, parents before children (the foreign keys hold while inserting).
const TABLES: &[Table] = &[
    Table {
        name: "users",
        what: "users",
        cols: &[
            ("id", Int),
            ("username", Text),
            ("display_name", Text),
            ("contact", Text),
            ("role", Text),
            ("status", Text),
            ("status_reason", Text),
            ("password_hash", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        id: true,
        order: "id",
    },
    Table {
        name: "groups",
        what: "groups",
        cols: &[("id", Int), ("name", Text), ("description", Text), ("created_at", Int)],
        id: true,
        order: "id",
    },
    Table {
        name: "group_members",
        what: "group memberships",
        cols: &[("group_id", Int), ("user_id", Int)],
        id: false,
        order: "group_id, user_id",
    },
    Table {
        name: "devices",
        what: "devices",
        cols: &[
            ("id", Text),
            ("user_id", Int),
            ("name", Text),
            ("platform", Text),
            ("hardware_id", Text),
            ("created_at", Int),
            ("last_seen_at", Int),
            ("revoked_at", Int),
        ],
        id: false,
        order: "id",
    },
    Table {
        name: "tokens",
        what: "tokens",
        cols: &[
            ("id", Int),
            ("hash", Blob),
            ("user_id", Int),
            ("device_id", Text),
            ("kind", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("last_used_at", Int),
            ("revoked_at", Int),
            ("revoked_reason", Text),
        ],
        id: true,
        order: "id",
    },
    Table {
        name: "enrolments",
        what: "enrolment codes",
        cols: &[
            ("id", Int),
            ("hash", Blob),
            ("user_id", Int),
            ("created_by", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("used_at", Int),
            ("device_id", Text),
        ],
        id: true,
        order: "id",
    },
    Table {
        name: "login_failures",
        what: "failed logins",
        cols: &[("id", Int), ("username", Text), ("at", Int)],
        id: true,
        order: "id",
    },
    Table {
        name: "layer_rules",
        what: "permission rules",
        cols: &[
            ("id", Int),
            ("layer", Text),
            ("subject_key", Text),
            ("role", Text),
            ("group_id", Int),
            ("can_read", Bool),
            ("can_create", Bool),
            ("can_edit", Bool),
            ("can_publish", Bool),
            ("updated_at", Int),
            ("updated_by", Text),
        ],
        id: true,
        order: "id",
    },
    Table {
        name: "services",
        what: "registered services",
        cols: &[
            ("id", Text),
            ("kind", Text),
            ("title", Text),
            ("url", Text),
            ("credentials", Text),
            ("layers", Text),
            ("health", Text),
            ("created_at", Int),
            ("created_by", Text),
        ],
        id: false,
        order: "id",
    },
    Table {
        name: "api_keys",
        what: "API keys",
        cols: &[
            ("id", Text),
            ("name", Text),
            ("hash", Blob),
            ("quota", Int),
            ("services", Text),
            ("fence", Text),
            ("expires_at", Int),
            ("hours", Text),
            ("created_at", Int),
            ("created_by", Text),
            ("revoked_at", Int),
            ("rate", Int),
        ],
        id: false,
        order: "id",
    },
    Table {
        name: "api_key_usage",
        what: "API key usage counts",
        cols: &[("key_id", Text), ("day", Text), ("count", Int)],
        id: false,
        order: "key_id, day",
    },
    Table {
        name: "harvest_sources",
        what: "harvest sources",
        cols: &[
            ("id", Text),
            ("kind", Text),
            ("title", Text),
            ("url", Text),
            ("every_minutes", Int),
            ("last_run", Text),
            ("created_at", Int),
            ("created_by", Text),
        ],
        id: false,
        order: "id",
    },
    Table {
        name: "harvested_records",
        what: "harvested records",
        cols: &[
            ("source_id", Text),
            ("remote_id", Text),
            ("title", Text),
            ("abstract", Text),
            ("keywords", Text),
            ("bbox", Text),
            ("kind", Text),
            ("modified", Text),
            ("hash", Text),
            ("run_id", Text),
            ("raw", Text),
        ],
        id: false,
        order: "source_id, remote_id",
    },
    Table {
        name: "audit",
        what: "audit rows",
        cols: &[
            ("id", Int),
            ("at", Int),
            ("action", Text),
            ("outcome", Text),
            ("actor_kind", Text),
            ("actor_id", Int),
            ("actor", Text),
            ("device", Text),
            ("client", Text),
            ("request_id", Text),
            ("\"user\"", Text),
            ("target", Text),
            ("layer", Text),
            ("entities", Text),
            ("entity_count", Int),
            ("tx", Text),
            ("detail", Text),
            ("outbox_id", Text),
        ],
        id: true,
        order: "id",
    },
];

/// One value of a copied row, the same whichever backend it was read from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Blob(Vec<u8>),
}

impl Cell {
    fn of(v: V, kind: Kind, table: &str, col: &str) -> Result<Cell> {
        Ok(match (kind, v) {
            (_, V::Null) => Cell::Null,
            (Int, V::Int(v)) => Cell::Int(v),
            (Bool, V::Bool(v)) => Cell::Bool(v),
            (Bool, V::Int(v)) => Cell::Bool(v != 0),
            (Text, V::Text(v)) => Cell::Text(v),
            (Blob, V::Blob(v)) => Cell::Blob(v),
            (kind, v) => {
                return Err(AuthError::Corrupt(format!("{table}.{col} holds {v:?}, expected {kind:?}")));
            }
        })
    }

    fn p(&self) -> P<'_> {
        match self {
            Cell::Null => P::Null,
            Cell::Int(v) => P::Int(*v),
            Cell::Bool(v) => P::Bool(*v),
            Cell::Text(v) => P::Text(v),
            Cell::Blob(v) => P::Blob(v),
        }
    }
}

/// Every row of every account table as values ([`AuthStore::dump`]): two account stores hold
/// the same accounts exactly when their dumps are equal, whichever backends they are on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthDump {
    /// `auth_meta` (the schema version), by key.
    pub meta: Vec<(String, String)>,
    /// Each table's rows, in key order (devices and memberships sorted by value).
    pub tables: Vec<(String, Vec<Vec<Cell>>)>,
}

/// What a copy of the accounts moved, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountsCopied {
    pub from: String,
    pub to: String,
    pub schema_version: i64,
    /// (what, rows), in [`TABLES`] order.
    pub rows: Vec<(&'static str, u64)>,
}

impl AccountsCopied {
    /// Rows of the table holding `what` ("users", "tokens", "audit rows", …).
    pub fn count(&self, what: &str) -> u64 {
        self.rows.iter().find(|(w, _)| *w == what).map_or(0, |(_, n)| *n)
    }
}

impl fmt::Display for AccountsCopied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<String> = self.rows.iter().map(|(what, n)| format!("{n} {what}")).collect();
        write!(f, "{} (auth schema version {})", rows.join(", "), self.schema_version)
    }
}

/// The accounts written into the destination, not committed yet: [`Self::commit`] makes them
/// visible; dropping it rolls everything back (the destination stays empty).
pub struct PendingAccounts<'a> {
    conn: Held<'a>,
    report: AccountsCopied,
    done: bool,
}

impl fmt::Debug for PendingAccounts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAccounts").field("report", &self.report).finish()
    }
}

impl PendingAccounts<'_> {
    /// What will be committed.
    pub fn report(&self) -> &AccountsCopied {
        &self.report
    }

    /// Commits the copy.
    pub fn commit(mut self) -> Result<AccountsCopied> {
        self.conn.batch("COMMIT")?;
        self.done = true;
        Ok(std::mem::take(&mut self.report))
    }
}

impl Drop for PendingAccounts<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.batch("ROLLBACK");
        }
    }
}

/// A read transaction over one snapshot, ended when dropped.
struct ReadTx<'a>(&'a Conn);

impl<'a> ReadTx<'a> {
    fn begin(conn: &'a Conn) -> Result<Self> {
        match conn {
            Conn::Sqlite(_) => conn.batch("BEGIN")?,
            Conn::Postgres(_) => conn.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?,
        }
        Ok(ReadTx(conn))
    }
}

impl Drop for ReadTx<'_> {
    fn drop(&mut self) {
        let _ = self.0.batch("ROLLBACK");
    }
}

fn columns(t: &Table) -> String {
    t.cols.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
}

/// Reads `t` a page at a time (by id, or whole for the small tables without one), handing each
/// page to `page`.
fn read_table(conn: &Conn, t: &Table, page: &mut dyn FnMut(Vec<Vec<Cell>>) -> Result<()>) -> Result<()> {
    let convert = |row: super::Row| -> Result<Vec<Cell>> {
        row.into_values().into_iter().zip(t.cols).map(|(v, (col, kind))| Cell::of(v, *kind, t.name, col)).collect()
    };
    if !t.id {
        let rows = conn.query(&format!("SELECT {} FROM {} ORDER BY {}", columns(t), t.name, t.order), &[])?;
        return page(rows.into_iter().map(convert).collect::<Result<_>>()?);
    }
    let sql = format!("SELECT {} FROM {} WHERE id > ?1 ORDER BY id LIMIT ?2", columns(t), t.name);
    let mut after = i64::MIN;
    loop {
        let rows = conn.query(&sql, &[P::Int(after), P::Int(PAGE_ROWS as i64)])?;
        let n = rows.len();
        let rows: Vec<Vec<Cell>> = rows.into_iter().map(convert).collect::<Result<_>>()?;
        if let Some(Cell::Int(last)) = rows.last().and_then(|r| r.first()) {
            after = *last;
        }
        if n > 0 {
            page(rows)?;
        }
        if n < PAGE_ROWS {
            return Ok(());
        }
    }
}

/// Inserts `rows` into `t` in multi-row statements.
fn write_rows(conn: &Conn, t: &Table, rows: &[Vec<Cell>]) -> Result<()> {
    let width = t.cols.len();
    for chunk in rows.chunks(PAGE_ROWS) {
        let values: Vec<String> = (0..chunk.len())
            .map(|r| {
                let slots: Vec<String> = (1..=width).map(|c| format!("?{}", r * width + c)).collect();
                format!("({})", slots.join(", "))
            })
            .collect();
        let sql = format!("INSERT INTO {} ({}) VALUES {}", t.name, columns(t), values.join(", "));
        let params: Vec<P<'_>> = chunk.iter().flatten().map(Cell::p).collect();
        conn.execute(&sql, &params)?;
    }
    Ok(())
}

fn read_meta(conn: &Conn) -> Result<Vec<(String, String)>> {
    conn.query("SELECT key, value FROM auth_meta ORDER BY key", &[])?
        .iter()
        .map(|r| Ok((r.text(0)?, r.text(1)?)))
        .collect()
}

fn schema_version(meta: &[(String, String)], location: &str) -> Result<i64> {
    meta.iter()
        .find(|(k, _)| k == "schema_version")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| AuthError::Corrupt(format!("{location}: no auth schema version in auth_meta")))
}

/// What a destination holds beyond its schema ("2 users, 14 audit rows"), or `None` when empty.
fn holdings(conn: &Conn) -> Result<Option<String>> {
    let mut held = Vec::new();
    for t in TABLES {
        let n = conn.query_one(&format!("SELECT count(*) FROM {}", t.name), &[])?.i64(0)?;
        if n > 0 {
            held.push(format!("{n} {}", t.what));
        }
    }
    Ok((!held.is_empty()).then(|| held.join(", ")))
}

impl AuthStore {
    /// Every row of every account table, read from one snapshot (see [`AuthDump`]).
    pub fn dump(&self) -> Result<AuthDump> {
        let conn = self.conn()?;
        let _read = ReadTx::begin(&conn)?;
        let meta = read_meta(&conn)?;
        let mut tables = Vec::with_capacity(TABLES.len());
        for t in TABLES {
            let mut rows = Vec::new();
            read_table(&conn, t, &mut |page| {
                rows.extend(page);
                Ok(())
            })?;
            if !t.id {
                // Text order differs between SQLite's and PostgreSQL's collations.
                rows.sort();
            }
            tables.push((t.name.to_owned(), rows));
        }
        Ok(AuthDump { meta, tables })
    }

    /// What this account store holds ("2 users, 14 audit rows"), or `None` when it holds no
    /// accounts at all (a copy may go into it).
    pub fn holdings(&self) -> Result<Option<String>> {
        let conn = self.conn()?;
        holdings(&conn)
    }

    /// Copies every account row of this store into `to`, which must be empty (see the module
    /// docs), and leaves the write transaction open: [`PendingAccounts::commit`] finishes it,
    /// dropping it leaves `to` as it was.
    pub fn copy_accounts_into<'t>(&self, to: &'t AuthStore) -> Result<PendingAccounts<'t>> {
        if std::ptr::eq(self, to) {
            return Err(AuthError::InvalidArgument("the accounts cannot be copied into themselves".into()));
        }
        let (from_location, to_location) = (self.location(), to.location());
        let source = self.conn()?;
        let _read = ReadTx::begin(&source)?;
        let meta = read_meta(&source)?;
        let version = schema_version(&meta, &from_location)?;

        let conn = to.conn()?;
        conn.begin_write()?;
        let mut pending = PendingAccounts {
            conn,
            report: AccountsCopied { from: from_location.clone(), to: to_location.clone(), ..Default::default() },
            done: false,
        };
        let dest = &*pending.conn;
        if let Some(holds) = holdings(dest)? {
            return Err(AuthError::DestinationNotEmpty { location: to_location, holds });
        }
        let theirs = schema_version(&read_meta(dest)?, &to_location)?;
        if version != theirs || version != SCHEMA_VERSION {
            return Err(AuthError::Corrupt(format!(
                "{from_location} is at auth schema version {version} and {to_location} at {theirs} \
                 (this build writes {SCHEMA_VERSION}); open both with this build first"
            )));
        }
        for (key, value) in &meta {
            dest.execute(
                "INSERT INTO auth_meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[P::Text(key), P::Text(value)],
            )?;
        }
        let mut rows = Vec::with_capacity(TABLES.len());
        for t in TABLES {
            let mut n = 0u64;
            read_table(&source, t, &mut |page| {
                n += page.len() as u64;
                write_rows(dest, t, &page)
            })?;
            if t.id && matches!(dest, Conn::Postgres(_)) {
                // Identity columns: the next id generated follows the copied ones.
                dest.batch(&format!(
                    "SELECT setval(pg_get_serial_sequence('{}', 'id'), max(id)) FROM {} HAVING count(*) > 0",
                    t.name, t.name
                ))?;
            }
            rows.push((t.what, n));
        }
        pending.report.schema_version = version;
        pending.report.rows = rows;
        Ok(pending)
    }

    /// [`Self::copy_accounts_into`] and commit.
    pub fn copy_accounts(&self, to: &AuthStore) -> Result<AccountsCopied> {
        self.copy_accounts_into(to)?.commit()
    }
}
