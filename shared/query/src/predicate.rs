//! The resolved predicate: our own small IR, independent of the `cql2` crate's AST.
//!
//! Every property is an [`Attribute`], every literal a typed [`Value`] that already has the type
//! of what it is compared with, geometries are [`shikong_model::Geometry`] and LIKE patterns are
//! parsed. Evaluation ([`crate::eval`]) and SQL planning ([`crate::sql`]) walk this IR and nothing
//! else, which is what lets a test prove they agree.
//!
//! Semantics are SQL's three-valued logic: a comparison involving a null attribute is *unknown*,
//! `NOT unknown` is unknown, and only *true* selects a feature. `valid_from`/`valid_to` are the
//! exception: their open ends are −∞/+∞, not null, inside comparisons and temporal operators
//! (they are null only for `IS NULL`).

use std::fmt;

use geo::BoundingRect;
use shikong_model::{Bbox, Geometry, Value};

use crate::attribute::Attribute;
use crate::error::QueryError;
pub use crate::like::LikePattern;

/// `=`, `<>`, `<`, `<=`, `>`, `>=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The operator with its operands exchanged (`a < b` ⇔ `b > a`).
    pub fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }

    pub(crate) fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => o == Equal,
            CmpOp::Ne => o != Equal,
            CmpOp::Lt => o == Less,
            CmpOp::Le => o != Greater,
            CmpOp::Gt => o == Greater,
            CmpOp::Ge => o != Less,
        }
    }
}

/// `+`, `-`, `*`, `/` (always real arithmetic; division by zero is null, as in SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl ArithOp {
    pub fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
        }
    }
}

/// A scalar expression.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Operand {
    Attr(Attribute),
    Literal(Value),
    /// `casei(x)`: ASCII letters lowered, as SQLite's `lower()` does (Chinese has no case).
    Lower(Box<Operand>),
    Arith {
        op: ArithOp,
        left: Box<Operand>,
        right: Box<Operand>,
    },
}

/// The spatial predicates of CQL2 (DE-9IM, 2-D; Z is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpatialOp {
    Intersects,
    Disjoint,
    Within,
    Contains,
    Equals,
    Touches,
    Crosses,
    Overlaps,
}

impl SpatialOp {
    pub fn name(self) -> &'static str {
        match self {
            SpatialOp::Intersects => "s_intersects",
            SpatialOp::Disjoint => "s_disjoint",
            SpatialOp::Within => "s_within",
            SpatialOp::Contains => "s_contains",
            SpatialOp::Equals => "s_equals",
            SpatialOp::Touches => "s_touches",
            SpatialOp::Crosses => "s_crosses",
            SpatialOp::Overlaps => "s_overlaps",
        }
    }

    /// The predicate with its operands exchanged.
    pub fn converse(self) -> SpatialOp {
        match self {
            SpatialOp::Within => SpatialOp::Contains,
            SpatialOp::Contains => SpatialOp::Within,
            other => other,
        }
    }

    /// Whether a geometry satisfying the predicate must share a point with the literal (so that
    /// the literal's envelope is a valid R-tree prefilter).
    pub fn implies_intersection(self) -> bool {
        self != SpatialOp::Disjoint
    }
}

/// A geometry literal, kept with its `geo` form and envelope so that evaluating many features does
/// not convert it again.
#[derive(Debug, Clone)]
pub struct SpatialLiteral {
    geometry: Geometry,
    geo: geo::Geometry<f64>,
    bbox: Bbox,
}

impl PartialEq for SpatialLiteral {
    fn eq(&self, other: &Self) -> bool {
        self.geometry == other.geometry
    }
}

impl SpatialLiteral {
    /// Checks the geometry (finite coordinates, closed rings, enough points) and prepares it.
    pub fn new(geometry: Geometry) -> Result<Self, QueryError> {
        geometry.validate().map_err(|e| QueryError::InvalidGeometry { message: e.to_string() })?;
        let geo = geometry.to_geo();
        let rect = geo
            .bounding_rect()
            .ok_or_else(|| QueryError::InvalidGeometry { message: "the geometry has no extent".into() })?;
        let bbox = Bbox { min_x: rect.min().x, min_y: rect.min().y, max_x: rect.max().x, max_y: rect.max().y };
        Ok(Self { geometry, geo, bbox })
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    pub fn bbox(&self) -> Bbox {
        self.bbox
    }

    pub(crate) fn geo(&self) -> &geo::Geometry<f64> {
        &self.geo
    }
}

/// The temporal predicates of CQL2 (Allen's interval relations plus `t_intersects`/`t_disjoint`),
/// with the definitions of the `cql2` crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemporalOp {
    After,
    Before,
    Contains,
    Disjoint,
    During,
    Equals,
    FinishedBy,
    Finishes,
    Intersects,
    Meets,
    MetBy,
    OverlappedBy,
    Overlaps,
    StartedBy,
    Starts,
}

impl TemporalOp {
    pub fn name(self) -> &'static str {
        match self {
            TemporalOp::After => "t_after",
            TemporalOp::Before => "t_before",
            TemporalOp::Contains => "t_contains",
            TemporalOp::Disjoint => "t_disjoint",
            TemporalOp::During => "t_during",
            TemporalOp::Equals => "t_equals",
            TemporalOp::FinishedBy => "t_finishedBy",
            TemporalOp::Finishes => "t_finishes",
            TemporalOp::Intersects => "t_intersects",
            TemporalOp::Meets => "t_meets",
            TemporalOp::MetBy => "t_metBy",
            TemporalOp::OverlappedBy => "t_overlappedBy",
            TemporalOp::Overlaps => "t_overlaps",
            TemporalOp::StartedBy => "t_startedBy",
            TemporalOp::Starts => "t_starts",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<TemporalOp> {
        use TemporalOp::*;
        [
            After,
            Before,
            Contains,
            Disjoint,
            During,
            Equals,
            FinishedBy,
            Finishes,
            Intersects,
            Meets,
            MetBy,
            OverlappedBy,
            Overlaps,
            StartedBy,
            Starts,
        ]
        .into_iter()
        .find(|op| op.name().eq_ignore_ascii_case(name))
    }
}

/// A closed time span `[start, end]` of instants or of dates; an instant is `[t, t]`.
///
/// `end_exclusive` marks the valid-time interval, whose end is exclusive (`valid_to` is the first
/// instant the state no longer holds). Instants are compared at millisecond precision — the
/// store's — so an exclusive end `e` is the closed end `e − 1 ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSpan {
    pub start: Operand,
    pub end: Operand,
    pub end_exclusive: bool,
}

/// A resolved filter predicate.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Predicate {
    Const(bool),
    And(Vec<Predicate>),
    Or(Vec<Predicate>),
    Not(Box<Predicate>),
    Compare {
        left: Operand,
        op: CmpOp,
        right: Operand,
    },
    /// `operand LIKE pattern`; `casei` is an [`Operand::Lower`] around the operand and an
    /// already-lowered pattern.
    Like {
        operand: Operand,
        pattern: LikePattern,
    },
    /// `operand IN (values…)`; the list is non-empty and holds no null.
    In {
        operand: Operand,
        values: Vec<Value>,
    },
    /// `operand BETWEEN low AND high` (`low <= operand AND operand <= high`).
    Between {
        operand: Operand,
        low: Operand,
        high: Operand,
    },
    IsNull(Attribute),
    /// `op(geometry, literal)`: the feature's geometry on the left.
    Spatial {
        op: SpatialOp,
        literal: SpatialLiteral,
    },
    /// `op(left, right)` on time spans.
    Temporal {
        op: TemporalOp,
        left: TimeSpan,
        right: TimeSpan,
    },
}

impl Predicate {
    /// Calls `f` on every attribute the predicate reads, in order of appearance.
    pub fn for_each_attribute(&self, f: &mut impl FnMut(&Attribute)) {
        fn operand(o: &Operand, f: &mut impl FnMut(&Attribute)) {
            match o {
                Operand::Attr(a) => f(a),
                Operand::Literal(_) => {}
                Operand::Lower(x) => operand(x, f),
                Operand::Arith { left, right, .. } => {
                    operand(left, f);
                    operand(right, f);
                }
            }
        }
        match self {
            Predicate::Const(_) => {}
            Predicate::And(ps) | Predicate::Or(ps) => ps.iter().for_each(|p| p.for_each_attribute(f)),
            Predicate::Not(p) => p.for_each_attribute(f),
            Predicate::Compare { left, right, .. } => {
                operand(left, f);
                operand(right, f);
            }
            Predicate::Like { operand: o, .. } | Predicate::In { operand: o, .. } => operand(o, f),
            Predicate::Between { operand: o, low, high } => {
                operand(o, f);
                operand(low, f);
                operand(high, f);
            }
            Predicate::IsNull(a) => f(a),
            Predicate::Spatial { .. } => f(&Attribute::Geometry),
            Predicate::Temporal { left, right, .. } => {
                for o in [&left.start, &left.end, &right.start, &right.end] {
                    operand(o, f);
                }
            }
        }
    }
}

// CQL2-text rendering, for logs, error reports and `shikong query --explain`. Literals are written
// in the spelling the parser reads back with the same meaning.
impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Attr(a) => write_ident(f, a.name()),
            Operand::Literal(v) => write_value(f, v),
            Operand::Lower(x) => write!(f, "casei({x})"),
            Operand::Arith { op, left, right } => write!(f, "({left} {} {right})", op.symbol()),
        }
    }
}

fn write_ident(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    let mut chars = name.chars();
    let bare = chars.next().is_some_and(char::is_alphabetic)
        && chars.all(|c| c.is_alphanumeric() || c == '_')
        && !["and", "or", "not", "true", "false", "null", "like", "in", "between", "is"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(name));
    if bare { f.write_str(name) } else { write!(f, "\"{}\"", name.replace('"', "\"\"")) }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn write_value(f: &mut fmt::Formatter<'_>, v: &Value) -> fmt::Result {
    match v {
        Value::Null => f.write_str("NULL"),
        Value::Bool(b) => write!(f, "{b}"),
        Value::Integer(i) => write!(f, "{i}"),
        Value::Real(r) => write!(f, "{r:?}"),
        Value::Text(s) => f.write_str(&quote(s)),
        Value::Date(d) if *d == jiff::civil::Date::MIN || *d == jiff::civil::Date::MAX => f.write_str("'..'"),
        Value::Date(d) => write!(f, "DATE('{d}')"),
        Value::DateTime(t) if *t == jiff::Timestamp::MIN || *t == jiff::Timestamp::MAX => f.write_str("'..'"),
        Value::DateTime(t) => write!(f, "TIMESTAMP('{t}')"),
        Value::Attachments(a) => f.write_str(&quote(&a.join(";"))),
    }
}

impl fmt::Display for TimeSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end && !self.end_exclusive {
            write!(f, "{}", self.start)
        } else {
            write!(f, "INTERVAL({}, {})", self.start, self.end)
        }
    }
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, ps: &[Predicate], sep: &str| -> fmt::Result {
            f.write_str("(")?;
            for (i, p) in ps.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{p}")?;
            }
            f.write_str(")")
        };
        match self {
            Predicate::Const(b) => write!(f, "{b}"),
            Predicate::And(ps) if ps.is_empty() => f.write_str("true"),
            Predicate::Or(ps) if ps.is_empty() => f.write_str("false"),
            Predicate::And(ps) => join(f, ps, " AND "),
            Predicate::Or(ps) => join(f, ps, " OR "),
            Predicate::Not(p) => write!(f, "NOT {p}"),
            Predicate::Compare { left, op, right } => write!(f, "{left} {} {right}", op.symbol()),
            Predicate::Like { operand, pattern } => write!(f, "{operand} LIKE {}", quote(pattern.as_str())),
            Predicate::In { operand, values } => {
                write!(f, "{operand} IN (")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_value(f, v)?;
                }
                f.write_str(")")
            }
            Predicate::Between { operand, low, high } => write!(f, "{operand} BETWEEN {low} AND {high}"),
            Predicate::IsNull(a) => {
                write_ident(f, a.name())?;
                f.write_str(" IS NULL")
            }
            Predicate::Spatial { op, literal } => {
                write!(f, "{}(geometry, {})", op.name(), shikong_model::wkt::to_wkt(literal.geometry()))
            }
            Predicate::Temporal { op, left, right } => {
                let span = |s: &TimeSpan| {
                    if s.end_exclusive && s.start == Operand::Attr(Attribute::ValidFrom) {
                        "INTERVAL(valid_from, valid_to)".to_owned()
                    } else {
                        s.to_string()
                    }
                };
                write!(f, "{}({}, {})", op.name(), span(left), span(right))
            }
        }
    }
}
