//! SQL planning for PostgreSQL + PostGIS: the same split as for SQLite (see `sql.rs`: exact
//! conjuncts in SQL, the rest in a residual with a relaxed copy still narrowing in SQL), written
//! for typed columns.
//!
//! Why a dialect of its own: PostgreSQL compares typed values (no text-encoded dates, no `''`/`~`
//! open ends), numbers its placeholders, and decides spatial predicates itself (PostGIS, GEOS),
//! with the `&&` envelope operator so that a GiST index narrows first. What each piece means is
//! still the evaluator's (`eval.rs`); a property test runs the SQL on a real PostgreSQL.
//!
//! Where PostgreSQL and the evaluator differ, the SQL is written around it:
//! - text orders by code point: `COLLATE "C"` on every order comparison (`<`, `<=`, `>`, `>=`),
//!   whatever the column's collation; equality (`=`, `<>`, `IN`, deterministic in every
//!   collation) is written without it, so a plain index on the column serves it;
//! - `casei` lowers ASCII only: `translate(…, 'A…Z', 'a…z')` (PostgreSQL's `lower()` follows the
//!   locale and lowers `À`);
//! - integers and reals compare exactly (PostgreSQL converts the integer to a double, losing
//!   precision above 2^53): a real literal against an integer expression, or an integer literal
//!   against a real one, becomes an exact comparison of the same type; two non-literal
//!   expressions of mixed type are left to the residual;
//! - arithmetic is left to the residual: PostgreSQL raises an error where IEEE arithmetic
//!   overflows to infinity (`1e308 * 10`), which would fail the whole query;
//! - a comparison of mismatched types (only possible in a predicate built by hand) is unknown
//!   (`NULL`), as in the evaluator, instead of a type error.

use jiff::Timestamp;
use jiff::civil::Date;
use shikong_model::{Bbox, Value};

use crate::Filter;
use crate::attribute::{Attribute, QueryableType};
use crate::predicate::{CmpOp, Operand, Predicate, SpatialOp};
use crate::sql::{ColumnMap, split};
use crate::temporal::{self, Combine};

/// The SRID of every geometry in the PostgreSQL store and of the planned geometry literals
/// (CGCS2000 geographic, EPSG:4490).
pub const POSTGIS_SRID: i32 = 4490;

/// A parameter of a PostgreSQL plan, typed for binding: the SQL casts every placeholder to its
/// type (`$3::bigint`), so bind `Bool` as `boolean`, `Int` as `bigint`, `Real` as
/// `double precision`, `Text` as `text`, `Date` as `date`, `Timestamp` as `timestamptz` and
/// `Geometry` (WKB, used as `ST_GeomFromWKB($n::bytea, 4490)`) as `bytea`.
#[derive(Debug, Clone, PartialEq)]
pub enum PgParam {
    Bool(bool),
    Int(i64),
    Real(f64),
    Text(String),
    Date(Date),
    Timestamp(Timestamp),
    Geometry(Vec<u8>),
}

/// The PostgreSQL part of a filter and what remains; see [`crate::SqlPlan`] for the contract of
/// `residual` and `bbox`.
#[derive(Debug, Clone, PartialEq)]
pub struct PgPlan {
    /// A `WHERE` fragment with placeholders `$first`, `$first+1`, … (`None`: SQL can narrow
    /// nothing). Every row matching the filter satisfies it.
    pub sql: Option<String>,
    /// The values of the placeholders, `params[i]` for `$(first + i)`.
    pub params: Vec<PgParam>,
    pub residual: Option<Filter>,
    pub bbox: Option<Bbox>,
}

/// Placeholder marks in SQL being written: a new parameter, or the previous one again. They are
/// numbered once the plan is complete, because pieces are written speculatively and joined.
const NEW: char = '\u{1}';
const SAME: char = '\u{2}';

/// SQL with the parameters of its `NEW` marks, in text order.
#[derive(Debug, Clone, Default)]
struct Frag {
    sql: String,
    params: Vec<PgParam>,
}

impl Frag {
    fn lit(s: &str) -> Frag {
        Frag { sql: s.to_owned(), params: Vec::new() }
    }

    fn param(p: PgParam, cast: &str) -> Frag {
        Frag { sql: format!("{NEW}::{cast}"), params: vec![p] }
    }

    fn s(mut self, s: &str) -> Frag {
        self.sql.push_str(s);
        self
    }

    fn f(mut self, other: &Frag) -> Frag {
        self.sql.push_str(&other.sql);
        self.params.extend(other.params.iter().cloned());
        self
    }

    fn join(parts: &[Frag], sep: &str) -> Frag {
        let mut out = Frag::lit("(");
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                out = out.s(sep);
            }
            out = out.f(p);
        }
        out.s(")")
    }
}

/// The PostgreSQL type of an operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Text,
    Int,
    Real,
    Bool,
    Date,
    Time,
    Geom,
}

struct NoSql;

/// The unknown truth value.
const UNKNOWN: &str = "(NULL::boolean)";

/// `(e IS NULL AND NULL)`: false, or unknown when `e` is null.
fn false_unless_null(e: &Frag) -> Frag {
    Frag::lit("(").f(e).s(" IS NULL AND NULL)")
}

/// `(e IS NOT NULL OR NULL)`: true, or unknown when `e` is null.
fn true_unless_null(e: &Frag) -> Frag {
    Frag::lit("(").f(e).s(" IS NOT NULL OR NULL)")
}

fn attr_ty(a: &Attribute) -> Option<Ty> {
    Some(match a.queryable_type()? {
        QueryableType::Text => Ty::Text,
        QueryableType::Integer => Ty::Int,
        QueryableType::Real => Ty::Real,
        QueryableType::Bool => Ty::Bool,
        QueryableType::Date => Ty::Date,
        QueryableType::DateTime => Ty::Time,
        QueryableType::Geometry => Ty::Geom,
    })
}

/// 2^63 as a double: the first double above every `bigint`.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;

struct Writer<'c> {
    cols: &'c dyn ColumnMap,
}

impl Writer<'_> {
    fn column(&self, a: &Attribute) -> Result<String, NoSql> {
        self.cols.column(a).map(|c| format!("({c})")).ok_or(NoSql)
    }

    fn literal(v: &Value) -> Result<(Frag, Ty), NoSql> {
        Ok(match v {
            Value::Null | Value::Attachments(_) => return Err(NoSql),
            Value::Bool(b) => (Frag::param(PgParam::Bool(*b), "boolean"), Ty::Bool),
            Value::Integer(i) => (Frag::param(PgParam::Int(*i), "bigint"), Ty::Int),
            // The evaluator reads NaN as null.
            Value::Real(r) if r.is_nan() => (Frag::lit("NULL::double precision"), Ty::Real),
            Value::Real(r) => (Frag::param(PgParam::Real(*r), "double precision"), Ty::Real),
            Value::Text(s) => (Frag::param(PgParam::Text(s.clone()), "text"), Ty::Text),
            Value::Date(d) if *d == Date::MIN => (Frag::lit("'-infinity'::date"), Ty::Date),
            Value::Date(d) if *d == Date::MAX => (Frag::lit("'infinity'::date"), Ty::Date),
            Value::Date(d) => (Frag::param(PgParam::Date(*d), "date"), Ty::Date),
            Value::DateTime(t) if *t == Timestamp::MIN => (Frag::lit("'-infinity'::timestamptz"), Ty::Time),
            Value::DateTime(t) if *t == Timestamp::MAX => (Frag::lit("'infinity'::timestamptz"), Ty::Time),
            Value::DateTime(t) => (Frag::param(PgParam::Timestamp(*t), "timestamptz"), Ty::Time),
        })
    }

    fn operand(&self, o: &Operand) -> Result<(Frag, Ty), NoSql> {
        match o {
            Operand::Attr(a) => {
                let col = self.column(a)?;
                let ty = attr_ty(a).ok_or(NoSql)?;
                let sql = match a {
                    // Open ends are −∞/+∞ in comparisons, as in the evaluator.
                    Attribute::ValidFrom => format!("coalesce({col}, '-infinity'::timestamptz)"),
                    Attribute::ValidTo => format!("coalesce({col}, 'infinity'::timestamptz)"),
                    _ => col,
                };
                Ok((Frag::lit(&sql), ty))
            }
            Operand::Literal(v) => Self::literal(v),
            Operand::Lower(x) => {
                let (f, ty) = self.operand(x)?;
                if ty != Ty::Text {
                    // The evaluator leaves non-text values as they are.
                    return Ok((f, ty));
                }
                let lowered =
                    Frag::lit("translate(").f(&f).s(", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')");
                Ok((lowered, Ty::Text))
            }
            // See the module documentation: overflow is an error in PostgreSQL.
            Operand::Arith { .. } => Err(NoSql),
        }
    }

    /// `l op r` with the evaluator's meaning for the operand types.
    fn compare(&self, left: &Operand, op: CmpOp, right: &Operand) -> Result<Frag, NoSql> {
        let (l, lt) = self.operand(left)?;
        let (r, rt) = self.operand(right)?;
        let lit = |o: &Operand| match o {
            Operand::Literal(v) => Some(v.clone()),
            _ => None,
        };
        Ok(match (lt, rt) {
            (Ty::Geom, _) | (_, Ty::Geom) => Frag::lit(UNKNOWN),
            // Equality under any deterministic collation is byte equality (and keeps a plain
            // index usable); order is by code point only under "C".
            (Ty::Text, Ty::Text) if !matches!(op, CmpOp::Eq | CmpOp::Ne) => {
                Frag::lit("(").f(&l).s(" COLLATE \"C\" ").s(op.symbol()).s(" ").f(&r).s(")")
            }
            (a, b) if a == b => plain(&l, op, &r),
            (Ty::Int, Ty::Real) => match lit(right) {
                Some(Value::Real(x)) => int_vs_real(&l, op, x),
                _ => match lit(left) {
                    Some(Value::Integer(i)) => real_vs_int(&r, op.flip(), i),
                    _ => return Err(NoSql),
                },
            },
            (Ty::Real, Ty::Int) => match lit(right) {
                Some(Value::Integer(i)) => real_vs_int(&l, op, i),
                _ => match lit(left) {
                    Some(Value::Real(x)) => int_vs_real(&r, op.flip(), x),
                    _ => return Err(NoSql),
                },
            },
            // Different kinds of value never compare (the evaluator's unknown).
            _ => Frag::lit(UNKNOWN),
        })
    }

    fn predicate(&self, p: &Predicate) -> Result<Frag, NoSql> {
        Ok(match p {
            Predicate::Const(b) => Frag::lit(if *b { "TRUE" } else { "FALSE" }),
            Predicate::And(ps) if ps.is_empty() => Frag::lit("TRUE"),
            Predicate::Or(ps) if ps.is_empty() => Frag::lit("FALSE"),
            Predicate::And(ps) => {
                Frag::join(&ps.iter().map(|q| self.predicate(q)).collect::<Result<Vec<_>, _>>()?, " AND ")
            }
            Predicate::Or(ps) => {
                Frag::join(&ps.iter().map(|q| self.predicate(q)).collect::<Result<Vec<_>, _>>()?, " OR ")
            }
            Predicate::Not(x) => Frag::lit("(NOT ").f(&self.predicate(x)?).s(")"),
            Predicate::Compare { left, op, right } => self.compare(left, *op, right)?,
            Predicate::Like { operand, pattern } => {
                let (e, ty) = self.operand(operand)?;
                if ty != Ty::Text {
                    return Ok(Frag::lit(UNKNOWN));
                }
                Frag::lit("(").f(&e).s(" LIKE ").f(&Frag::param(PgParam::Text(pattern.to_pg_like()), "text")).s(")")
            }
            Predicate::In { operand, values } => {
                let (e, ty) = self.operand(operand)?;
                let mut same = Vec::new();
                let mut other = Vec::new();
                for v in values {
                    if matches!(v, Value::Real(r) if r.is_nan()) {
                        continue; // never equal to anything
                    }
                    let Ok((f, vt)) = Self::literal(v) else { continue };
                    if vt == ty && ty != Ty::Geom {
                        same.push(f);
                    } else {
                        match (ty, v) {
                            (Ty::Int, Value::Real(x)) => other.push(int_vs_real(&e, CmpOp::Eq, *x)),
                            (Ty::Real, Value::Integer(i)) => other.push(real_vs_int(&e, CmpOp::Eq, *i)),
                            // Values of another kind are never equal (the evaluator skips them).
                            _ => {}
                        }
                    }
                }
                let mut parts = Vec::new();
                if !same.is_empty() {
                    parts.push(Frag::lit("(").f(&e).s(" IN ").f(&Frag::join(&same, ", ")).s(")"));
                }
                parts.extend(other);
                match parts.len() {
                    0 => false_unless_null(&e),
                    1 => parts.remove(0),
                    _ => Frag::join(&parts, " OR "),
                }
            }
            Predicate::Between { operand, low, high } => {
                let ge = self.compare(operand, CmpOp::Ge, low)?;
                let le = self.compare(operand, CmpOp::Le, high)?;
                Frag::join(&[ge, le], " AND ")
            }
            Predicate::IsNull(a) => Frag::lit(&format!("({} IS NULL)", self.column(a)?)),
            Predicate::Spatial { op, literal } => {
                let g = self.column(&Attribute::Geometry)?;
                let wkb = shikong_model::wkb::to_vec(literal.geometry());
                let first = Frag::param(PgParam::Geometry(wkb), "bytea");
                let lit_new = Frag::lit("ST_GeomFromWKB(").f(&first).s(&format!(", {POSTGIS_SRID})"));
                let lit_same = format!("ST_GeomFromWKB({SAME}::bytea, {POSTGIS_SRID})");
                let func = match op {
                    SpatialOp::Intersects => "ST_Intersects",
                    SpatialOp::Disjoint => {
                        return Ok(Frag::lit(&format!("ST_Disjoint({g}, ")).f(&lit_new).s(")"));
                    }
                    SpatialOp::Within => "ST_Within",
                    SpatialOp::Contains => "ST_Contains",
                    SpatialOp::Equals => "ST_Equals",
                    SpatialOp::Touches => "ST_Touches",
                    SpatialOp::Crosses => "ST_Crosses",
                    SpatialOp::Overlaps => "ST_Overlaps",
                };
                // Every predicate but disjointness needs a common point, so the envelopes meet:
                // `&&` lets a GiST index on the geometry narrow first.
                Frag::lit(&format!("({g} && ")).f(&lit_new).s(&format!(" AND {func}({g}, {lit_same}))"))
            }
            Predicate::Temporal { op, left, right } => {
                let (combine, terms) = temporal::terms(*op, left, right).map_err(|_| NoSql)?;
                let parts = terms
                    .iter()
                    .map(|t| {
                        let l = temporal::shifted(t.left, t.left_shift);
                        let r = temporal::shifted(t.right, t.right_shift);
                        self.compare(&l, t.op, &r)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Frag::join(&parts, if combine == Combine::All { " AND " } else { " OR " })
            }
        })
    }
}

fn plain(l: &Frag, op: CmpOp, r: &Frag) -> Frag {
    Frag::lit("(").f(l).s(" ").s(op.symbol()).s(" ").f(r).s(")")
}

/// `e op x` exactly, for a `bigint` expression `e` and a double `x`.
fn int_vs_real(e: &Frag, op: CmpOp, x: f64) -> Frag {
    use CmpOp::*;
    let int = |i: i64| Frag::param(PgParam::Int(i), "bigint");
    if x.is_nan() {
        return Frag::lit(UNKNOWN);
    }
    if x >= TWO_63 {
        return if matches!(op, Lt | Le | Ne) { true_unless_null(e) } else { false_unless_null(e) };
    }
    if x < -TWO_63 {
        return if matches!(op, Gt | Ge | Ne) { true_unless_null(e) } else { false_unless_null(e) };
    }
    if x.fract() == 0.0 {
        // In range and integral: the conversion is exact.
        return plain(e, op, &int(x as i64));
    }
    match op {
        Lt | Le => plain(e, Le, &int(x.floor() as i64)),
        Gt | Ge => plain(e, Ge, &int(x.ceil() as i64)),
        Eq => false_unless_null(e),
        Ne => true_unless_null(e),
    }
}

/// `e op i` exactly, for a `double precision` expression `e` and an integer `i`.
fn real_vs_int(e: &Frag, op: CmpOp, i: i64) -> Frag {
    use CmpOp::*;
    let real = |x: f64| Frag::param(PgParam::Real(x), "double precision");
    let d = i as f64;
    if d as i128 == i128::from(i) {
        return plain(e, op, &real(d));
    }
    // No double equals `i`: between the doubles just below and just above it.
    let (below, above) = if d as i128 > i128::from(i) { (d.next_down(), d) } else { (d, d.next_up()) };
    match op {
        Lt | Le => plain(e, Le, &real(below)),
        Gt | Ge => plain(e, Ge, &real(above)),
        Eq => false_unless_null(e),
        Ne => true_unless_null(e),
    }
}

/// Numbers the placeholder marks from `first`.
fn number(sql: &str, first: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = first.saturating_sub(1);
    for c in sql.chars() {
        match c {
            NEW => {
                n += 1;
                out.push_str(&format!("${n}"));
            }
            SAME => out.push_str(&format!("${n}")),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn plan(filter: &Filter, cols: &dyn ColumnMap, first_param: usize) -> PgPlan {
    let w = Writer { cols };
    let exact = |p: &Predicate| w.predicate(p).ok().map(|f| (f.sql, f.params));
    let s = split(filter, &exact, "FALSE");
    PgPlan { sql: s.sql.map(|sql| number(&sql, first_param)), params: s.params, residual: s.residual, bbox: s.bbox }
}

#[cfg(test)]
mod tests;
