//! SQL planning (SQLite here, PostgreSQL in `pg.rs`): which part of a filter SQL decides, and
//! what stays for Rust.
//!
//! The plan splits the top-level `AND` into conjuncts. A conjunct whose every piece has a column
//! and an SQL form goes into the `WHERE` fragment; any other (spatial operators, attributes the
//! table lacks) goes into the residual filter, and a *relaxed* copy of it — the conjunct with the
//! pieces SQL cannot decide replaced by "true" (or by "false" under an odd number of `NOT`s) — still
//! narrows the rows in SQL. AND/OR are monotone in three-valued logic and NOT reverses the order,
//! so the relaxed copy is true whenever the conjunct is: `sql AND residual` equals the filter.

use shikong_model::{Bbox, Value, time};

use crate::Filter;
use crate::attribute::Attribute;
use crate::predicate::{Operand, Predicate};
use crate::temporal::{self, Combine};

/// Where the attributes of the table being queried are.
///
/// **SQLite** ([`Filter::plan`]): values stored by the store's conventions (see [`sql_param`]).
///
/// **PostgreSQL** ([`Filter::plan_postgres`]): the expression must have the PostgreSQL type of
/// the attribute, NULL when the value is absent:
///
/// | attribute | type |
/// |---|---|
/// | text and code-list fields, `code` | `text` |
/// | `entity_id` | `text`, the lowercase hyphenated UUID (e.g. `"entity_id"::text` for a `uuid` column) |
/// | integer fields, `version` | `bigint` |
/// | real fields | `double precision` |
/// | boolean fields | `boolean` |
/// | date fields | `date` |
/// | date-time fields, `valid_from`, `valid_to` | `timestamptz` (NULL = open end) |
/// | `geometry` | `geometry(Geometry, 4490)` ([`POSTGIS_SRID`](crate::POSTGIS_SRID)) |
///
/// e.g. `"depth"` on the current table, `(props->>'c3')::double precision` on history rows.
/// Expressions are used inside parentheses and must not contain the characters U+0001 and
/// U+0002 (the planner's placeholder marks before numbering).
pub trait ColumnMap {
    /// An SQL expression reading `attr` in the queried table — `"depth"` (see [`quote_identifier`])
    /// for the current-state table, `json_extract(props, '$."c3"')` for history rows — or `None`
    /// when the table does not have it (the conjuncts reading it are then checked in Rust).
    fn column(&self, attr: &Attribute) -> Option<String>;
}

impl<F: Fn(&Attribute) -> Option<String>> ColumnMap for F {
    fn column(&self, attr: &Attribute) -> Option<String> {
        self(attr)
    }
}

/// The SQL part of a filter and what remains.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlPlan {
    /// A `WHERE` fragment with anonymous `?` placeholders (`None`: SQL can narrow nothing). Every
    /// row matching the filter satisfies it.
    pub sql: Option<String>,
    /// The placeholders' values in order; bind each as [`sql_param`] says.
    pub params: Vec<Value>,
    /// What must still be checked with [`Filter::matches`] on the rows SQL returns (`None`:
    /// nothing; the SQL is exact).
    pub residual: Option<Filter>,
    /// An envelope every matching geometry intersects, implied by a top-level spatial conjunct:
    /// a prefilter for the GeoPackage R-tree. An optimisation only: `sql` and `residual` are
    /// complete without it.
    pub bbox: Option<Bbox>,
}

/// A value as SQLite binds it.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

/// How a plan parameter is bound, following the store's column conventions: booleans as
/// INTEGER 0/1, dates as TEXT `YYYY-MM-DD`, instants as TEXT in the GeoPackage DATETIME form
/// (`2025-06-01T00:00:00.000Z`, [`time::gpkg_datetime`]), text as TEXT, numbers as INTEGER or REAL.
pub fn sql_param(v: &Value) -> SqlParam {
    match v {
        Value::Null => SqlParam::Null,
        Value::Bool(b) => SqlParam::Integer(i64::from(*b)),
        Value::Integer(i) => SqlParam::Integer(*i),
        Value::Real(r) => SqlParam::Real(*r),
        Value::Text(s) => SqlParam::Text(s.clone()),
        Value::Date(d) => SqlParam::Text(d.to_string()),
        Value::DateTime(t) => SqlParam::Text(time::gpkg_datetime(*t)),
        Value::Attachments(a) => SqlParam::Text(a.join(";")),
    }
}

/// An SQL identifier in double quotes, inner quotes doubled (`名称` → `"名称"`).
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Open ends inside comparisons: the empty string sorts before every stored date or instant and
/// `~` after them all, so `coalesce` with these reads a null `valid_from`/`valid_to` as −∞/+∞
/// exactly as the evaluator does.
const NEG_INF: &str = "''";
const POS_INF: &str = "'~'";

fn infinite(v: &Value) -> Option<&'static str> {
    use jiff::Timestamp;
    use jiff::civil::Date;
    match v {
        Value::DateTime(t) if *t == Timestamp::MIN => Some(NEG_INF),
        Value::DateTime(t) if *t == Timestamp::MAX => Some(POS_INF),
        Value::Date(d) if *d == Date::MIN => Some(NEG_INF),
        Value::Date(d) if *d == Date::MAX => Some(POS_INF),
        _ => None,
    }
}

/// SQL being written for one conjunct; dropped on failure so that a failed attempt leaves no
/// parameters behind.
struct Writer<'c> {
    cols: &'c dyn ColumnMap,
    sql: String,
    params: Vec<Value>,
}

/// The piece SQL cannot express.
struct NoSql;

impl Writer<'_> {
    fn column(&self, a: &Attribute) -> Result<String, NoSql> {
        self.cols.column(a).ok_or(NoSql)
    }

    fn literal(&mut self, v: &Value) -> Result<(), NoSql> {
        match infinite(v) {
            Some(s) => self.sql.push_str(s),
            None if v.is_null() => return Err(NoSql),
            None => {
                self.sql.push('?');
                self.params.push(v.clone());
            }
        }
        Ok(())
    }

    /// `in_arith`: inside arithmetic, where numbers must be real (SQLite divides integers
    /// integrally; CQL2 and the evaluator do not).
    fn operand(&mut self, o: &Operand, in_arith: bool) -> Result<(), NoSql> {
        match o {
            Operand::Attr(a) => {
                let col = self.column(a)?;
                let expr = match a {
                    Attribute::ValidFrom => format!("coalesce({col}, {NEG_INF})"),
                    Attribute::ValidTo => format!("coalesce({col}, {POS_INF})"),
                    _ if in_arith => format!("CAST({col} AS REAL)"),
                    _ => col,
                };
                self.sql.push_str(&expr);
            }
            Operand::Literal(Value::Integer(i)) if in_arith => self.literal(&Value::Real(*i as f64))?,
            Operand::Literal(v) => self.literal(v)?,
            Operand::Lower(x) => {
                self.sql.push_str("lower(");
                self.operand(x, in_arith)?;
                self.sql.push(')');
            }
            Operand::Arith { op, left, right } => {
                self.sql.push('(');
                self.operand(left, true)?;
                self.sql.push_str(&format!(" {} ", op.symbol()));
                self.operand(right, true)?;
                self.sql.push(')');
            }
        }
        Ok(())
    }

    fn join(&mut self, ps: &[Predicate], sep: &str, empty: &str) -> Result<(), NoSql> {
        if ps.is_empty() {
            self.sql.push_str(empty);
            return Ok(());
        }
        self.sql.push('(');
        for (i, p) in ps.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(sep);
            }
            self.predicate(p)?;
        }
        self.sql.push(')');
        Ok(())
    }

    fn predicate(&mut self, p: &Predicate) -> Result<(), NoSql> {
        match p {
            Predicate::Const(b) => self.sql.push_str(if *b { "1" } else { "0" }),
            Predicate::And(ps) => self.join(ps, " AND ", "1")?,
            Predicate::Or(ps) => self.join(ps, " OR ", "0")?,
            Predicate::Not(x) => {
                // Every compound form writes its own parentheses.
                self.sql.push_str("NOT ");
                self.predicate(x)?;
            }
            Predicate::Compare { left, op, right } => {
                self.sql.push('(');
                self.operand(left, false)?;
                self.sql.push_str(&format!(" {} ", op.symbol()));
                self.operand(right, false)?;
                self.sql.push(')');
            }
            Predicate::Like { operand, pattern } => {
                self.sql.push('(');
                self.operand(operand, false)?;
                self.sql.push_str(" GLOB ?)");
                self.params.push(Value::Text(pattern.to_glob()));
            }
            Predicate::In { operand, values } => {
                self.sql.push('(');
                self.operand(operand, false)?;
                self.sql.push_str(" IN (");
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(", ");
                    }
                    self.literal(v)?;
                }
                self.sql.push_str("))");
            }
            Predicate::Between { operand, low, high } => {
                self.sql.push('(');
                self.operand(operand, false)?;
                self.sql.push_str(" BETWEEN ");
                self.operand(low, false)?;
                self.sql.push_str(" AND ");
                self.operand(high, false)?;
                self.sql.push(')');
            }
            Predicate::IsNull(a) => {
                let col = self.column(a)?;
                self.sql.push_str(&format!("({col} IS NULL)"));
            }
            Predicate::Spatial { .. } => return Err(NoSql),
            Predicate::Temporal { op, left, right } => {
                let (combine, terms) = temporal::terms(*op, left, right).map_err(|_| NoSql)?;
                self.sql.push('(');
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(if combine == Combine::All { " AND " } else { " OR " });
                    }
                    self.sql.push('(');
                    self.operand(&temporal::shifted(t.left, t.left_shift), false)?;
                    self.sql.push_str(&format!(" {} ", t.op.symbol()));
                    self.operand(&temporal::shifted(t.right, t.right_shift), false)?;
                    self.sql.push(')');
                }
                self.sql.push(')');
            }
        }
        Ok(())
    }
}

/// `p` fully in SQL, or `None`.
fn exact(cols: &dyn ColumnMap, p: &Predicate) -> Option<(String, Vec<Value>)> {
    let mut w = Writer { cols, sql: String::new(), params: Vec::new() };
    w.predicate(p).ok().map(|()| (w.sql, w.params))
}

/// A relaxation of `p`: implied by `p` when `positive`, implying it otherwise.
enum Relaxed<P> {
    True,
    False,
    Sql(String, Vec<P>),
}

/// A dialect's writer of one predicate fully in SQL (`None`: not expressible).
pub(crate) type ExactFn<'a, P> = &'a dyn Fn(&Predicate) -> Option<(String, Vec<P>)>;

fn relax<P>(exact: ExactFn<'_, P>, p: &Predicate, positive: bool) -> Relaxed<P> {
    if let Some((sql, params)) = exact(p) {
        return Relaxed::Sql(sql, params);
    }
    let combine = |ps: &[Predicate], and: bool| {
        let mut parts = Vec::new();
        for q in ps {
            match (relax(exact, q, positive), and) {
                (Relaxed::False, true) => return Relaxed::False,
                (Relaxed::True, false) => return Relaxed::True,
                (Relaxed::True, true) | (Relaxed::False, false) => {}
                (Relaxed::Sql(s, v), _) => parts.push((s, v)),
            }
        }
        if parts.is_empty() {
            return if and { Relaxed::True } else { Relaxed::False };
        }
        if parts.len() == 1 {
            let (s, v) = parts.remove(0);
            return Relaxed::Sql(s, v);
        }
        let sep = if and { " AND " } else { " OR " };
        let sql = format!("({})", parts.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>().join(sep));
        Relaxed::Sql(sql, parts.into_iter().flat_map(|(_, v)| v).collect())
    };
    match p {
        Predicate::And(ps) => combine(ps, true),
        Predicate::Or(ps) => combine(ps, false),
        Predicate::Not(x) => match relax(exact, x, !positive) {
            Relaxed::True => Relaxed::False,
            Relaxed::False => Relaxed::True,
            Relaxed::Sql(s, v) => Relaxed::Sql(format!("NOT {s}"), v),
        },
        _ if positive => Relaxed::True,
        _ => Relaxed::False,
    }
}

fn conjuncts<'p>(p: &'p Predicate, out: &mut Vec<&'p Predicate>) {
    match p {
        Predicate::And(ps) => ps.iter().for_each(|q| conjuncts(q, out)),
        Predicate::Const(true) => {}
        other => out.push(other),
    }
}

pub(crate) fn plan(filter: &Filter, cols: &dyn ColumnMap) -> SqlPlan {
    let s = split(filter, &|p| exact(cols, p), "0");
    SqlPlan { sql: s.sql, params: s.params, residual: s.residual, bbox: s.bbox }
}

/// A plan in any dialect: the `WHERE` fragment, its parameters in text order, the residual and
/// the envelope (see [`SqlPlan`]).
pub(crate) struct Split<P> {
    pub sql: Option<String>,
    pub params: Vec<P>,
    pub residual: Option<Filter>,
    pub bbox: Option<Bbox>,
}

/// Splits the top-level conjuncts into SQL (exact or relaxed) and residual; `false_sql` is the
/// dialect's constant false.
pub(crate) fn split<P>(filter: &Filter, exact: ExactFn<'_, P>, false_sql: &str) -> Split<P> {
    let mut parts: Vec<String> = Vec::new();
    let mut params = Vec::new();
    let mut residual = Vec::new();
    let mut bbox: Option<Bbox> = None;
    let mut top = Vec::new();
    conjuncts(filter.predicate(), &mut top);
    for c in top {
        if let Predicate::Spatial { op, literal } = c
            && op.implies_intersection()
        {
            let b = literal.bbox();
            if bbox.is_none_or(|old| b.width() * b.height() < old.width() * old.height()) {
                bbox = Some(b);
            }
        }
        if let Some((sql, p)) = exact(c) {
            parts.push(sql);
            params.extend(p);
            continue;
        }
        residual.push(c.clone());
        match relax(exact, c, true) {
            Relaxed::Sql(sql, p) => {
                parts.push(sql);
                params.extend(p);
            }
            Relaxed::False => parts.push(false_sql.into()),
            Relaxed::True => {}
        }
    }
    Split {
        sql: if parts.is_empty() { None } else { Some(parts.join(" AND ")) },
        params,
        residual: match residual.len() {
            0 => None,
            1 => residual.pop().map(Filter::from_predicate),
            _ => Some(Filter::from_predicate(Predicate::And(residual))),
        },
        bbox,
    }
}
