//! Connections: a client with its prepared statements, and a pool of idle ones.
//!
//! A pool of our own, like the SQLite backend's readers: idle connections in a vector, a new one
//! made when none is idle (up to a limit, so that hundreds of blocking threads do not exhaust
//! the server's `max_connections`), a broken or mid-transaction one never handed out again. Each
//! connection keeps its prepared statements by SQL text, so a statement is parsed once per
//! connection instead of once per call.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, RowIter, Statement};

use crate::error::{Result, StoreError};

/// Idle connections kept; more are made on demand (up to the pool's limit) and closed when
/// returned.
const POOL_SIZE: usize = 16;

/// Prepared statements kept per connection before the cache is cleared.
const STATEMENT_CACHE: usize = 512;

/// Statement parameters.
pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// One database connection with its statement cache.
pub(crate) struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
    /// A transaction is open on it (rolled back before the connection is reused).
    in_tx: bool,
    /// The session's `statement_timeout` in ms (0 = none), set by single-statement reads
    /// ([`PgConn::session_timeout`]); transactions override it with their own.
    session_timeout_ms: u128,
    /// The session plans prepared statements generically (`plan_cache_mode =
    /// force_generic_plan`), set by single-statement reads ([`PgConn::session_generic_plans`]);
    /// transactions plan as PostgreSQL chooses.
    generic_plans: bool,
}

impl PgConn {
    pub(crate) fn connect(config: &postgres::Config, shown: &str) -> Result<Self> {
        let client = config
            .connect(NoTls)
            .map_err(|e| StoreError::Connect { config: shown.to_owned(), reason: e.to_string() })?;
        let mut c =
            PgConn { client, statements: HashMap::new(), in_tx: false, session_timeout_ms: 0, generic_plans: false };
        // Times travel as timestamptz values; the session zone only matters to people reading
        // the tables with psql or QGIS.
        c.client.batch_execute("SET TIME ZONE 'UTC'; SET client_min_messages = warning;")?;
        Ok(c)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    pub(crate) fn query(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>> {
        let s = self.statement(sql)?;
        Ok(self.client.query(&s, params)?)
    }

    pub(crate) fn query_opt(&mut self, sql: &str, params: &Params<'_>) -> Result<Option<Row>> {
        let s = self.statement(sql)?;
        Ok(self.client.query_opt(&s, params)?)
    }

    pub(crate) fn query_one(&mut self, sql: &str, params: &Params<'_>) -> Result<Row> {
        let s = self.statement(sql)?;
        Ok(self.client.query_one(&s, params)?)
    }

    /// The rows of `sql` as they arrive (a large answer is never held whole).
    pub(crate) fn stream<'a>(&'a mut self, sql: &str, params: &'a Params<'a>) -> Result<RowIter<'a>> {
        let s = self.statement(sql)?;
        Ok(self.client.query_raw(&s, params.iter().copied())?)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &Params<'_>) -> Result<u64> {
        let s = self.statement(sql)?;
        Ok(self.client.execute(&s, params)?)
    }

    /// Statements without parameters (DDL, several at once).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.client.batch_execute(sql)?)
    }

    /// Starts a transaction with `sql` (`BEGIN …`). A session timeout or generic planning left by
    /// a single-statement read is lifted for the transaction (in the same round trip) unless
    /// `sql` sets its own timeout.
    pub(crate) fn begin(&mut self, sql: &str) -> Result<()> {
        self.in_tx = true;
        let mut all = sql.to_owned();
        if self.session_timeout_ms != 0 && !sql.contains("statement_timeout") {
            all.push_str("; SET LOCAL statement_timeout = 0");
        }
        if self.generic_plans {
            all.push_str("; SET LOCAL plan_cache_mode = auto");
        }
        self.client.batch_execute(&all)?;
        Ok(())
    }

    /// Plans the next statements outside a transaction generically (`on`: prepared once, no
    /// planning per execution) or as PostgreSQL chooses; a round trip only when it changes.
    pub(crate) fn session_generic_plans(&mut self, on: bool) -> Result<()> {
        if on != self.generic_plans {
            let mode = if on { "force_generic_plan" } else { "auto" };
            self.client.batch_execute(&format!("SET plan_cache_mode = {mode}"))?;
            self.generic_plans = on;
        }
        Ok(())
    }

    /// Bounds the next statements outside a transaction by `deadline` (a single-statement read
    /// has no transaction for `SET LOCAL`). Rounded up to whole seconds, so that the requests of
    /// one timeout budget find it already set and pay no round trip for it; the in-Rust cancel
    /// checks still stop the read at the exact deadline.
    pub(crate) fn session_timeout(&mut self, deadline: Option<Instant>) -> Result<()> {
        let ms = deadline.map_or(0, |d| {
            let left = d.saturating_duration_since(Instant::now()).as_millis().max(1);
            left.div_ceil(1000) * 1000
        });
        if ms != self.session_timeout_ms {
            self.client.batch_execute(&format!("SET statement_timeout = {ms}"))?;
            self.session_timeout_ms = ms;
        }
        Ok(())
    }

    /// Ends the transaction with `sql` (`COMMIT` or `ROLLBACK`).
    pub(crate) fn finish(&mut self, sql: &str) -> Result<()> {
        let r = self.client.batch_execute(sql);
        if r.is_ok() {
            self.in_tx = false;
        }
        Ok(r?)
    }

    /// Drops the prepared statements (after this connection changed a layer's columns: a text
    /// prepared before may now name a column of another type).
    pub(crate) fn forget_statements(&mut self) {
        self.statements.clear();
    }
}

/// The connections of a store: idle ones, and how many are open in all.
pub(crate) struct Pool {
    config: postgres::Config,
    shown: String,
    state: Mutex<PoolState>,
    freed: Condvar,
    max: usize,
}

struct PoolState {
    idle: Vec<PgConn>,
    open: usize,
}

impl Pool {
    /// A pool holding `first`, opening at most `max` connections while callers wait their turn.
    pub(crate) fn new(config: postgres::Config, shown: String, first: PgConn, max: usize) -> Self {
        let state = Mutex::new(PoolState { idle: vec![first], open: 1 });
        Pool { config, shown, state, freed: Condvar::new(), max: max.max(1) }
    }

    /// A pool that connects at first use (a read replica may be down when the store opens).
    pub(crate) fn empty(config: postgres::Config, shown: String, max: usize) -> Self {
        let state = Mutex::new(PoolState { idle: Vec::new(), open: 0 });
        Pool { config, shown, state, freed: Condvar::new(), max: max.max(1) }
    }

    /// An idle connection, a new one while fewer than `max` are open, or the next one returned.
    /// A caller waiting longer than [`WAIT`] opens one beyond the limit: a thread holding a
    /// connection while it asks for another (a write transaction that reads, a query sink that
    /// reads) must never wait for itself.
    pub(crate) fn get(&self) -> Result<Pooled<'_>> {
        let deadline = Instant::now() + WAIT;
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            while let Some(c) = st.idle.pop() {
                if !c.is_closed() {
                    return Ok(Pooled { pool: self, conn: Some(c) });
                }
                st.open -= 1;
            }
            let now = Instant::now();
            if st.open < self.max || now >= deadline {
                st.open += 1;
                drop(st);
                return match PgConn::connect(&self.config, &self.shown) {
                    Ok(c) => Ok(Pooled { pool: self, conn: Some(c) }),
                    Err(e) => {
                        self.closed();
                        Err(e)
                    }
                };
            }
            st = self.freed.wait_timeout(st, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    fn closed(&self) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.open = st.open.saturating_sub(1);
        drop(st);
        self.freed.notify_one();
    }

    /// A connection broke (the server stopped, failed over, or cut it): the idle ones went to
    /// the same server and most likely broke too, without knowing yet (a synchronous client
    /// notices only when used). Closes them, so the next callers connect afresh — to whichever
    /// host of a multi-host URL now accepts them — instead of failing one by one.
    fn broken(&self) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let stale = std::mem::take(&mut st.idle);
        st.open = st.open.saturating_sub(stale.len() + 1);
        drop(st);
        drop(stale);
        self.freed.notify_all();
    }

    fn put(&self, c: PgConn) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if st.idle.len() < POOL_SIZE {
            st.idle.push(c);
        } else {
            st.open = st.open.saturating_sub(1);
        }
        drop(st);
        self.freed.notify_one();
    }
}

/// How long a caller waits for a connection when the limit is reached before opening one anyway.
const WAIT: Duration = Duration::from_secs(5);

/// A connection borrowed from the pool, returned when dropped (rolled back first if a
/// transaction is still open; closed if that fails or the connection broke).
pub(crate) struct Pooled<'p> {
    pool: &'p Pool,
    conn: Option<PgConn>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = PgConn;
    fn deref(&self) -> &PgConn {
        self.conn.as_ref().unwrap_or_else(|| unreachable!("connection used after drop"))
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut PgConn {
        self.conn.as_mut().unwrap_or_else(|| unreachable!("connection used after drop"))
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(mut c) = self.conn.take() else { return };
        if c.is_closed() {
            self.pool.broken();
            return;
        }
        if c.in_tx && c.finish("ROLLBACK").is_err() {
            if c.is_closed() {
                self.pool.broken();
            } else {
                self.pool.closed();
            }
            return;
        }
        self.pool.put(c);
    }
}
