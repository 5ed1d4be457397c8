//! Reference evaluation of a predicate on a decoded feature.
//!
//! This is the definition of what a filter means; the SQL planner must agree with it (a property
//! test runs both on SQLite). It is three-valued like SQL: `None` is *unknown*, and a feature is
//! selected only when the predicate is `Some(true)`.

use std::borrow::Cow;
use std::cmp::Ordering;

use geo::{Contains, Intersects, Relate};
use jiff::Timestamp;
use jiff::civil::Date;
use shikong_model::{Feature, Value};

use crate::attribute::Attribute;
use crate::predicate::{ArithOp, CmpOp, Operand, Predicate, SpatialLiteral, SpatialOp};
use crate::temporal::{self, Combine};

/// What is evaluated against: the feature and, for the `version` attribute, its version number.
pub(crate) struct Row<'a> {
    pub feature: &'a Feature,
    pub version: Option<i64>,
}

/// A non-null scalar.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
    Int(i64),
    Real(f64),
    Text(Cow<'a, str>),
    Bool(bool),
    Date(Date),
    Time(Timestamp),
}

fn scalar(v: &Value) -> Option<Scalar<'_>> {
    Some(match v {
        Value::Null | Value::Attachments(_) => return None,
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Integer(i) => Scalar::Int(*i),
        Value::Real(r) if r.is_nan() => return None,
        Value::Real(r) => Scalar::Real(*r),
        Value::Text(s) => Scalar::Text(Cow::Borrowed(s)),
        Value::Date(d) => Scalar::Date(*d),
        Value::DateTime(t) => Scalar::Time(*t),
    })
}

/// Exact comparison of an integer with a float, as SQLite does (no rounding of the integer).
fn cmp_int_real(i: i64, r: f64) -> Option<Ordering> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if r.is_nan() {
        return None;
    }
    if r >= TWO_63 {
        return Some(Ordering::Less);
    }
    if r < -TWO_63 {
        return Some(Ordering::Greater);
    }
    let whole = r.trunc();
    // In range and integral, so the conversion is exact.
    let w = whole as i64;
    Some(i.cmp(&w).then_with(|| 0.0f64.partial_cmp(&(r - whole)).unwrap_or(Ordering::Equal)))
}

fn compare(a: &Scalar<'_>, b: &Scalar<'_>) -> Option<Ordering> {
    match (a, b) {
        (Scalar::Int(x), Scalar::Int(y)) => Some(x.cmp(y)),
        (Scalar::Int(x), Scalar::Real(y)) => cmp_int_real(*x, *y),
        (Scalar::Real(x), Scalar::Int(y)) => cmp_int_real(*y, *x).map(Ordering::reverse),
        (Scalar::Real(x), Scalar::Real(y)) => x.partial_cmp(y),
        // Byte order of UTF-8, which is SQLite's BINARY collation.
        (Scalar::Text(x), Scalar::Text(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Scalar::Bool(x), Scalar::Bool(y)) => Some(x.cmp(y)),
        (Scalar::Date(x), Scalar::Date(y)) => Some(x.cmp(y)),
        (Scalar::Time(x), Scalar::Time(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn number(s: &Scalar<'_>) -> Option<f64> {
    match s {
        Scalar::Int(i) => Some(*i as f64),
        Scalar::Real(r) => Some(*r),
        _ => None,
    }
}

fn attribute<'a>(a: &'a Attribute, row: &Row<'a>) -> Option<Scalar<'a>> {
    let f = row.feature;
    match a {
        Attribute::Field(field) => f.properties.get(&field.name).and_then(scalar),
        Attribute::EntityId => Some(Scalar::Text(Cow::Owned(f.id.to_string()))),
        Attribute::Code => Some(Scalar::Text(Cow::Borrowed(&f.code))),
        // Open ends are −∞/+∞ in comparisons (see the predicate module).
        Attribute::ValidFrom => Some(Scalar::Time(f.valid.from.unwrap_or(Timestamp::MIN))),
        Attribute::ValidTo => Some(Scalar::Time(f.valid.to.unwrap_or(Timestamp::MAX))),
        Attribute::Version => row.version.map(Scalar::Int),
        Attribute::Geometry => None,
    }
}

fn operand<'a>(o: &'a Operand, row: &Row<'a>) -> Option<Scalar<'a>> {
    match o {
        Operand::Attr(a) => attribute(a, row),
        Operand::Literal(v) => scalar(v),
        Operand::Lower(x) => match operand(x, row)? {
            Scalar::Text(s) if s.bytes().any(|b| b.is_ascii_uppercase()) => {
                Some(Scalar::Text(Cow::Owned(s.to_ascii_lowercase())))
            }
            other => Some(other),
        },
        Operand::Arith { op, left, right } => {
            let (l, r) = (number(&operand(left, row)?)?, number(&operand(right, row)?)?);
            let v = match op {
                ArithOp::Add => l + r,
                ArithOp::Sub => l - r,
                ArithOp::Mul => l * r,
                // SQLite: division by zero is NULL.
                ArithOp::Div if r == 0.0 => return None,
                ArithOp::Div => l / r,
            };
            // SQLite turns a NaN result into NULL.
            if v.is_nan() { None } else { Some(Scalar::Real(v)) }
        }
    }
}

fn cmp_operands(left: &Scalar<'_>, op: CmpOp, right: &Scalar<'_>) -> Option<bool> {
    compare(left, right).map(|o| op.holds(o))
}

fn and(items: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for v in items {
        match v {
            Some(false) => return Some(false),
            None => unknown = true,
            Some(true) => {}
        }
    }
    if unknown { None } else { Some(true) }
}

fn or(items: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut unknown = false;
    for v in items {
        match v {
            Some(true) => return Some(true),
            None => unknown = true,
            Some(false) => {}
        }
    }
    if unknown { None } else { Some(false) }
}

pub(crate) fn spatial(op: SpatialOp, g: &geo::Geometry<f64>, lit: &SpatialLiteral) -> bool {
    use geo::BoundingRect;
    let envelopes_meet = g.bounding_rect().is_some_and(|r| {
        let b = lit.bbox();
        r.min().x <= b.max_x && b.min_x <= r.max().x && r.min().y <= b.max_y && b.min_y <= r.max().y
    });
    if !envelopes_meet {
        // Every predicate but disjointness needs a common point.
        return op == SpatialOp::Disjoint;
    }
    let l = lit.geo();
    match op {
        SpatialOp::Intersects => g.intersects(l),
        SpatialOp::Disjoint => !g.intersects(l),
        // `Contains` is DE-9IM contains with fast point-in-polygon paths (relate is ~300× slower
        // for a point in a 1,000-vertex district boundary).
        SpatialOp::Within => l.contains(g),
        SpatialOp::Contains => g.contains(l),
        SpatialOp::Equals => g.relate(l).is_equal_topo(),
        SpatialOp::Touches => g.relate(l).is_touches(),
        SpatialOp::Crosses => g.relate(l).is_crosses(),
        SpatialOp::Overlaps => g.relate(l).is_overlaps(),
    }
}

/// The three-valued truth of `p` for `row`.
pub(crate) fn eval(p: &Predicate, row: &Row<'_>) -> Option<bool> {
    match p {
        Predicate::Const(b) => Some(*b),
        Predicate::And(ps) => and(ps.iter().map(|p| eval(p, row))),
        Predicate::Or(ps) => or(ps.iter().map(|p| eval(p, row))),
        Predicate::Not(p) => eval(p, row).map(|b| !b),
        Predicate::Compare { left, op, right } => cmp_operands(&operand(left, row)?, *op, &operand(right, row)?),
        Predicate::Like { operand: o, pattern } => match operand(o, row)? {
            Scalar::Text(s) => Some(pattern.matches(&s)),
            _ => None,
        },
        Predicate::In { operand: o, values } => {
            let x = operand(o, row)?;
            Some(values.iter().filter_map(scalar).any(|v| compare(&x, &v) == Some(Ordering::Equal)))
        }
        Predicate::Between { operand: o, low, high } => {
            let x = operand(o, row);
            let ge = x.as_ref().zip(operand(low, row)).and_then(|(x, l)| cmp_operands(x, CmpOp::Ge, &l));
            let le = x.as_ref().zip(operand(high, row)).and_then(|(x, h)| cmp_operands(x, CmpOp::Le, &h));
            and([ge, le].into_iter())
        }
        Predicate::IsNull(a) => Some(match a {
            Attribute::Field(field) => row.feature.properties.get(&field.name).is_none_or(Value::is_null),
            Attribute::EntityId | Attribute::Code => false,
            Attribute::ValidFrom => row.feature.valid.from.is_none(),
            Attribute::ValidTo => row.feature.valid.to.is_none(),
            Attribute::Version => row.version.is_none(),
            Attribute::Geometry => row.feature.geometry.is_none(),
        }),
        Predicate::Spatial { op, literal } => {
            let g = row.feature.geometry.as_ref()?;
            // geo's relate must not see NaN; a stored geometry never has one, a hand-built may.
            let mut finite = true;
            g.for_each_coord(|c| finite &= c.x.is_finite() && c.y.is_finite());
            finite.then(|| spatial(*op, &g.to_geo(), literal))
        }
        Predicate::Temporal { op, left, right } => {
            // Spans were checked when the filter was resolved, so lowering cannot fail here; a
            // predicate built by hand that cannot be lowered is unknown.
            let (combine, terms) = temporal::terms(*op, left, right).ok()?;
            let values = terms.iter().map(|t| {
                let l = temporal::shifted(t.left, t.left_shift);
                let r = temporal::shifted(t.right, t.right_shift);
                cmp_operands(&operand(&l, row)?, t.op, &operand(&r, row)?)
            });
            match combine {
                Combine::All => and(values),
                Combine::Any => or(values),
            }
        }
    }
}
