//! The one small SQL layer under the auth queries, so that one set of queries serves both
//! backends: an embedded SQLite file (`DIR/auth.sqlite`, the default) and a PostgreSQL database
//! (the server's `--store postgres://…`, shared by every server process on it).
//!
//! Queries are written once, in the SQL both accept: `?N` placeholders (rewritten to `$N` for
//! PostgreSQL, once per statement text, outside string literals), `ON CONFLICT … DO NOTHING`
//! instead of `INSERT OR IGNORE`, `RETURNING id` instead of `last_insert_rowid()`, `"user"`
//! quoted (a reserved word in PostgreSQL), booleans as parameters of their own kind (SQLite
//! stores 0/1, PostgreSQL `boolean`). Rows are read into owned values ([`Row`]) with typed
//! getters, so row mappers do not depend on the driver. PostgreSQL statements are prepared once
//! per connection and cached, like rusqlite's `prepare_cached`.
//!
//! Transactions: [`Conn::begin_write`] opens one that writes — `BEGIN IMMEDIATE` on SQLite,
//! `BEGIN` plus the transaction-level advisory lock [`AUTH_WRITER_LOCK`] on PostgreSQL, so that
//! writers of every process on the database take turns, every change commits with its audit row
//! and never fails half-way on contention (READ COMMITTED after the lock sees every earlier
//! commit; no serialization failures to retry), and audit ids follow commit order.

use std::cell::RefCell;
use std::collections::HashMap;

use jiff::Timestamp;
use postgres::types::{IsNull, ToSql as PgToSql, Type};
use rusqlite::types::{ToSqlOutput, ValueRef};

use crate::error::{AuthError, Result};
use crate::types::DeviceId;

/// The advisory lock every auth write transaction on PostgreSQL takes (`pg_advisory_xact_lock`):
/// one auth writer at a time per database, across processes. ("SKAUTH_W")
pub(crate) const AUTH_WRITER_LOCK: i64 = 0x534B_4155_5448_5F57;

/// One connection to the auth database.
pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<RefCell<PgClient>>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Sqlite(_) => "Conn::Sqlite",
            Conn::Postgres(_) => "Conn::Postgres",
        })
    }
}

/// A PostgreSQL client with its prepared statements, keyed by the statement as written (`?N`).
pub(crate) struct PgClient {
    pub client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
    /// A call failed because the server or the connection went away (the driver does not always
    /// mark the client closed after a socket error): never reuse it.
    broken: bool,
}

impl PgClient {
    pub fn new(client: postgres::Client) -> Self {
        PgClient { client, statements: HashMap::new(), broken: false }
    }

    /// Remembers a failure that leaves the connection unusable.
    fn check<T>(&mut self, r: std::result::Result<T, postgres::Error>) -> Result<T> {
        r.map_err(|e| {
            if crate::error::pg_unavailable(&e) {
                self.broken = true;
            }
            AuthError::from(e)
        })
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let prepared = self.client.prepare(&dollar_placeholders(sql));
        let st = self.check(prepared)?;
        self.statements.insert(sql.to_owned(), st.clone());
        Ok(st)
    }
}

/// A statement parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum P<'a> {
    Null,
    Int(i64),
    Bool(bool),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// What can be a statement parameter ([`params!`]).
pub(crate) trait Param {
    fn p(&self) -> P<'_>;
}

impl Param for i64 {
    fn p(&self) -> P<'_> {
        P::Int(*self)
    }
}
impl Param for bool {
    fn p(&self) -> P<'_> {
        P::Bool(*self)
    }
}
impl Param for str {
    fn p(&self) -> P<'_> {
        P::Text(self)
    }
}
impl Param for String {
    fn p(&self) -> P<'_> {
        P::Text(self)
    }
}
impl Param for [u8] {
    fn p(&self) -> P<'_> {
        P::Blob(self)
    }
}
impl<T: Param + ?Sized> Param for &T {
    fn p(&self) -> P<'_> {
        (**self).p()
    }
}
impl<T: Param> Param for Option<T> {
    fn p(&self) -> P<'_> {
        self.as_ref().map_or(P::Null, Param::p)
    }
}

/// Statement parameters: `params![a, b]` borrows each (anything [`Param`]).
macro_rules! params {
    () => { &[] as &[$crate::db::sql::P<'_>] };
    ($($x:expr),+ $(,)?) => { &[$($crate::db::sql::Param::p(&$x)),+] as &[$crate::db::sql::P<'_>] };
}
pub(crate) use params;

impl rusqlite::ToSql for P<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            P::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            P::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(v)),
            P::Bool(v) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(v))),
            P::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            P::Blob(v) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
        })
    }
}

impl PgToSql for P<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            P::Null => Ok(IsNull::Yes),
            P::Int(v) if *ty == Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
            P::Int(v) if *ty == Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
            P::Int(v) => v.to_sql(ty, out),
            P::Bool(v) => v.to_sql(ty, out),
            P::Text(v) => v.to_sql(ty, out),
            P::Blob(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let fits = match self {
            P::Null => true,
            P::Int(_) => matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8),
            P::Bool(_) => *ty == Type::BOOL,
            P::Text(_) => <&str as PgToSql>::accepts(ty),
            P::Blob(_) => *ty == Type::BYTEA,
        };
        if !fits {
            return Err(format!("parameter {self:?} does not fit a column of type {ty}").into());
        }
        self.to_sql(ty, out)
    }
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum V {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
    Blob(Vec<u8>),
}

/// One result row, read into owned values.
#[derive(Debug, Clone)]
pub(crate) struct Row(Vec<V>);

impl Row {
    /// The values as read (a copy of the accounts moves them as they are).
    pub fn into_values(self) -> Vec<V> {
        self.0
    }

    fn at(&self, idx: usize) -> Result<&V> {
        self.0.get(idx).ok_or_else(|| AuthError::Corrupt(format!("column {idx} missing from a result row")))
    }

    fn wrong(&self, idx: usize, wanted: &str) -> AuthError {
        AuthError::Corrupt(format!("column {idx} is {:?}, expected {wanted}", self.0.get(idx)))
    }

    pub fn opt_i64(&self, idx: usize) -> Result<Option<i64>> {
        match self.at(idx)? {
            V::Null => Ok(None),
            V::Int(v) => Ok(Some(*v)),
            _ => Err(self.wrong(idx, "an integer")),
        }
    }

    pub fn i64(&self, idx: usize) -> Result<i64> {
        self.opt_i64(idx)?.ok_or_else(|| self.wrong(idx, "an integer"))
    }

    pub fn bool(&self, idx: usize) -> Result<bool> {
        match self.at(idx)? {
            V::Bool(v) => Ok(*v),
            V::Int(v) => Ok(*v != 0),
            _ => Err(self.wrong(idx, "a boolean")),
        }
    }

    pub fn opt_text(&self, idx: usize) -> Result<Option<String>> {
        match self.at(idx)? {
            V::Null => Ok(None),
            V::Text(v) => Ok(Some(v.clone())),
            _ => Err(self.wrong(idx, "text")),
        }
    }

    pub fn text(&self, idx: usize) -> Result<String> {
        self.opt_text(idx)?.ok_or_else(|| self.wrong(idx, "text"))
    }

    pub fn opt_ts(&self, idx: usize) -> Result<Option<Timestamp>> {
        self.opt_i64(idx)?
            .map(|v| {
                Timestamp::from_millisecond(v)
                    .map_err(|e| AuthError::Corrupt(format!("column {idx}: instant {v}: {e}")))
            })
            .transpose()
    }

    pub fn ts(&self, idx: usize) -> Result<Timestamp> {
        self.opt_ts(idx)?.ok_or_else(|| self.wrong(idx, "an instant"))
    }

    pub fn parsed<T: std::str::FromStr>(&self, idx: usize) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        let s = self.text(idx)?;
        s.parse().map_err(|e| AuthError::Corrupt(format!("column {idx}: `{s}`: {e}")))
    }

    pub fn opt_device(&self, idx: usize) -> Result<Option<DeviceId>> {
        self.opt_text(idx)?
            .map(|s| s.parse().map_err(|e| AuthError::Corrupt(format!("column {idx}: device `{s}`: {e}"))))
            .transpose()
    }
}

impl Conn {
    /// Runs one statement; how many rows it changed.
    pub fn execute(&self, sql: &str, params: &[P<'_>]) -> Result<usize> {
        match self {
            Conn::Sqlite(c) => Ok(c.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params))?),
            Conn::Postgres(c) => {
                let mut c = c.borrow_mut();
                let st = c.statement(sql)?;
                let n = c.client.execute(&st, &pg_params(params));
                let n = c.check(n)?;
                Ok(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
    }

    /// Every row of a query.
    pub fn query(&self, sql: &str, params: &[P<'_>]) -> Result<Vec<Row>> {
        match self {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.column_count();
                let mut rows = st.query(rusqlite::params_from_iter(params))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut values = Vec::with_capacity(n);
                    for i in 0..n {
                        values.push(match r.get_ref(i)? {
                            ValueRef::Null => V::Null,
                            ValueRef::Integer(v) => V::Int(v),
                            ValueRef::Real(v) => V::Real(v),
                            ValueRef::Text(v) => V::Text(String::from_utf8_lossy(v).into_owned()),
                            ValueRef::Blob(v) => V::Blob(v.to_vec()),
                        });
                    }
                    out.push(Row(values));
                }
                Ok(out)
            }
            Conn::Postgres(c) => {
                let mut c = c.borrow_mut();
                let st = c.statement(sql)?;
                let rows = c.client.query(&st, &pg_params(params));
                let rows = c.check(rows)?;
                rows.iter().map(pg_row).collect()
            }
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt(&self, sql: &str, params: &[P<'_>]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row of a query, which must have one.
    pub fn query_one(&self, sql: &str, params: &[P<'_>]) -> Result<Row> {
        self.query_opt(sql, params)?.ok_or_else(|| AuthError::Corrupt(format!("no row from `{sql}`")))
    }

    /// Runs statements without parameters (transaction control, DDL).
    pub fn batch(&self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(c) => {
                let mut c = c.borrow_mut();
                let done = c.client.batch_execute(sql);
                c.check(done)
            }
        }
    }

    /// Begins a transaction that writes (see the module docs).
    pub fn begin_write(&self) -> Result<()> {
        match self {
            Conn::Sqlite(_) => self.batch("BEGIN IMMEDIATE"),
            Conn::Postgres(_) => self.batch(&format!("BEGIN; SELECT pg_advisory_xact_lock({AUTH_WRITER_LOCK})")),
        }
    }

    /// Whether the connection can no longer be used (PostgreSQL: the server went away).
    pub fn is_broken(&self) -> bool {
        match self {
            Conn::Sqlite(_) => false,
            Conn::Postgres(c) => c.try_borrow().map_or(true, |c| c.broken || c.client.is_closed()),
        }
    }

    /// The SQLite connection (tests of the file's settings).
    #[cfg(test)]
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            Conn::Postgres(_) => None,
        }
    }
}

fn pg_params<'a>(params: &'a [P<'a>]) -> Vec<&'a (dyn PgToSql + Sync)> {
    params.iter().map(|p| p as &(dyn PgToSql + Sync)).collect()
}

fn pg_row(r: &postgres::Row) -> Result<Row> {
    let mut values = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let ty = col.type_();
        let v = if *ty == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map(V::Int)
        } else if *ty == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?.map(|v| V::Int(v.into()))
        } else if *ty == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)?.map(|v| V::Int(v.into()))
        } else if *ty == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)?.map(V::Bool)
        } else if *ty == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i)?.map(V::Real)
        } else if *ty == Type::BYTEA {
            r.try_get::<_, Option<Vec<u8>>>(i)?.map(V::Blob)
        } else {
            r.try_get::<_, Option<String>>(i)?.map(V::Text)
        };
        values.push(v.unwrap_or(V::Null));
    }
    Ok(Row(values))
}

/// `?N` → `$N` outside string literals and quoted names (PostgreSQL's placeholders).
pub(crate) fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '?') => {
                out.push('$');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_become_dollars_outside_literals() {
        assert_eq!(
            super::dollar_placeholders("SELECT '?1', \"a?\" FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1', \"a?\" FROM t WHERE a = $1 AND b = $12"
        );
    }
}
