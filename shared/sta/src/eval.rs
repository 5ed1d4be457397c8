//! Reference evaluation of a `$filter` on one entity's JSON (as the API returns it, with
//! navigation properties expanded inline where the filter follows them). It serves in-memory
//! filtering (live subscriptions, small result sets) and is the semantics SQL translations are
//! tested against.
//!
//! Semantics (documented here because OData leaves some open):
//! - `null`: `x eq null` is true when `x` is null or absent, `ne null` the opposite; any other
//!   comparison with null is false; functions and arithmetic of null are null. Only `true`
//!   selects; `and`/`or`/`not` treat anything else as false.
//! - Values of different types are unequal (`eq` false, `ne` true, order comparisons false);
//!   integers and decimals compare by value; text by code point.
//! - `phenomenonTime`, `resultTime`, `validTime` and `time` read as instants or intervals; a
//!   quoted string compared with a time is read as one. An interval `[start, end)` compared with
//!   an instant `t`: `lt` is "before" (`end <= t`), `gt` "after" (`start > t`), `le` = not after,
//!   `ge` = not before, `eq` only for `start = end = t`.
//! - Times are UTC; `totaloffsetminutes` is 0. `now()` is the context's instant.
//! - Geometry is planar in coordinate units (`geo.distance`, `geo.length`); the `st_*` predicates
//!   are DE-9IM relations via `geo`. `geo.length` is the length of linear geometries (0 for
//!   points and polygons, as PostGIS's `ST_Length` and the conformance tests have it).

use std::cmp::Ordering;

use geo::{Distance, Euclidean, Geometry, Relate};
use jiff::{SignedDuration, Timestamp, civil, tz::TimeZone};
use serde_json::Value;

use crate::ast::{ArithOp, CmpOp, Expr, Function, Literal};
use crate::entity::TimeValue;
use crate::error::EvalError;

/// What evaluation needs besides the entity.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext {
    /// The instant `now()` returns.
    pub now: Timestamp,
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Time(Timestamp),
    Interval(Timestamp, Timestamp),
    Date(civil::Date),
    TimeOfDay(civil::Time),
    Duration(SignedDuration),
    Geom(Geometry<f64>),
    /// An object or array (a JSON property or a member of one).
    Json(Value),
}

/// Whether `expr` selects `entity`.
pub fn matches(expr: &Expr, entity: &Value, cx: &EvalContext) -> Result<bool, EvalError> {
    Ok(evaluate(expr, entity, cx)? == Val::Bool(true))
}

fn truthy(v: &Val) -> bool {
    *v == Val::Bool(true)
}

/// Evaluates `expr` on `entity`. Recursion is bounded by the parser's depth limit.
pub fn evaluate(expr: &Expr, entity: &Value, cx: &EvalContext) -> Result<Val, EvalError> {
    Ok(match expr {
        Expr::Literal(l) => literal(l),
        Expr::Property(p) => property(entity, p)?,
        Expr::Not(e) => Val::Bool(!truthy(&evaluate(e, entity, cx)?)),
        Expr::Neg(e) => match evaluate(e, entity, cx)? {
            Val::Int(i) => i.checked_neg().map_or(Val::Float(-(i as f64)), Val::Int),
            Val::Float(x) => Val::Float(-x),
            Val::Duration(d) => d.checked_neg().map_or(Val::Null, Val::Duration),
            _ => Val::Null,
        },
        Expr::And(v) => {
            for e in v {
                if !truthy(&evaluate(e, entity, cx)?) {
                    return Ok(Val::Bool(false));
                }
            }
            Val::Bool(true)
        }
        Expr::Or(v) => {
            for e in v {
                if truthy(&evaluate(e, entity, cx)?) {
                    return Ok(Val::Bool(true));
                }
            }
            Val::Bool(false)
        }
        Expr::Compare(op, a, b) => Val::Bool(compare(*op, evaluate(a, entity, cx)?, evaluate(b, entity, cx)?)),
        Expr::Arith(op, a, b) => arith(*op, evaluate(a, entity, cx)?, evaluate(b, entity, cx)?),
        Expr::Call(f, args) => {
            let vals = args.iter().map(|a| evaluate(a, entity, cx)).collect::<Result<Vec<_>, _>>()?;
            call(*f, vals, cx)
        }
    })
}

fn literal(l: &Literal) -> Val {
    match l {
        Literal::Null => Val::Null,
        Literal::Bool(b) => Val::Bool(*b),
        Literal::Int(i) => Val::Int(*i),
        Literal::Float(x) => Val::Float(*x),
        Literal::String(s) => Val::Str(s.clone()),
        Literal::DateTime(t) => Val::Time(*t),
        Literal::Date(d) => Val::Date(*d),
        Literal::Interval(a, b) => Val::Interval(*a, *b),
        Literal::Duration(d) => Val::Duration(*d),
        Literal::Geometry(g) => Val::Geom(g.geometry.clone()),
    }
}

const TIME_PROPERTIES: [&str; 4] = ["phenomenonTime", "resultTime", "validTime", "time"];

fn property(entity: &Value, path: &[String]) -> Result<Val, EvalError> {
    let mut cur = entity;
    for (i, seg) in path.iter().enumerate() {
        if let Value::Array(_) = cur {
            return Err(EvalError::Unsupported {
                what: path.join("/"),
                reason: format!("`{}` is a to-many navigation property", path[i - 1]),
            });
        }
        let next = match seg.as_str() {
            "id" if i == 0 || cur.get("id").is_none() => cur.get("@iot.id").or_else(|| cur.get("id")),
            s => cur.get(s),
        };
        match next {
            Some(v) => cur = v,
            None => return Ok(Val::Null),
        }
    }
    let last = path.last().map(String::as_str).unwrap_or_default();
    Ok(match cur {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => n.as_i64().map_or_else(|| Val::Float(n.as_f64().unwrap_or(f64::NAN)), Val::Int),
        Value::String(s) if TIME_PROPERTIES.contains(&last) => match TimeValue::parse(s) {
            Ok(TimeValue::Instant(t)) => Val::Time(t),
            Ok(TimeValue::Interval(a, b)) => Val::Interval(a, b),
            Err(_) => Val::Str(s.clone()),
        },
        Value::String(s) => Val::Str(s.clone()),
        other => Val::Json(other.clone()),
    })
}

fn num(v: &Val) -> Option<f64> {
    match v {
        Val::Int(i) => Some(*i as f64),
        Val::Float(x) => Some(*x),
        _ => None,
    }
}

/// Reads a string as a time when the other side of a comparison is a time.
fn coerce(a: Val, b: &Val) -> Val {
    match (&a, b) {
        (Val::Str(s), Val::Time(_) | Val::Interval(..)) => match TimeValue::parse(s) {
            Ok(TimeValue::Instant(t)) => Val::Time(t),
            Ok(TimeValue::Interval(x, y)) => Val::Interval(x, y),
            Err(_) => a,
        },
        (Val::Str(s), Val::Date(_)) => s.parse::<civil::Date>().map_or(a, Val::Date),
        _ => a,
    }
}

fn order_of(a: &Val, b: &Val) -> Option<Ordering> {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(y)),
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => num(a)?.partial_cmp(&num(b)?),
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        (Val::Time(x), Val::Time(y)) => Some(x.cmp(y)),
        (Val::Date(x), Val::Date(y)) => Some(x.cmp(y)),
        (Val::TimeOfDay(x), Val::TimeOfDay(y)) => Some(x.cmp(y)),
        (Val::Duration(x), Val::Duration(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Whether `a` lies wholly before `b` (intervals `[start, end)`, an instant is `[t, t]`).
fn before((s, e): (Timestamp, Timestamp), (s2, _): (Timestamp, Timestamp)) -> bool {
    if s == e { s < s2 } else { e <= s2 }
}

fn compare_intervals(op: CmpOp, a: (Timestamp, Timestamp), b: (Timestamp, Timestamp)) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => before(a, b),
        CmpOp::Gt => before(b, a),
        CmpOp::Le => !before(b, a),
        CmpOp::Ge => !before(a, b),
    }
}

fn compare(op: CmpOp, a: Val, b: Val) -> bool {
    let a = coerce(a, &b);
    let b = coerce(b, &a);
    match (&a, &b) {
        (Val::Null, Val::Null) => return op == CmpOp::Eq,
        (Val::Null, _) | (_, Val::Null) => return op == CmpOp::Ne,
        (Val::Interval(..), Val::Interval(..) | Val::Time(_)) | (Val::Time(_), Val::Interval(..)) => {
            let span = |v: &Val| match *v {
                Val::Interval(s, e) => (s, e),
                Val::Time(t) => (t, t),
                _ => (Timestamp::MIN, Timestamp::MIN),
            };
            return compare_intervals(op, span(&a), span(&b));
        }
        (Val::Geom(x), Val::Geom(y)) => {
            let eq = x == y;
            return match op {
                CmpOp::Eq => eq,
                CmpOp::Ne => !eq,
                _ => false,
            };
        }
        (Val::Json(x), Val::Json(y)) => {
            return match op {
                CmpOp::Eq => x == y,
                CmpOp::Ne => x != y,
                _ => false,
            };
        }
        _ => {}
    }
    match order_of(&a, &b) {
        Some(o) => match op {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::Ne => o != Ordering::Equal,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::Ge => o != Ordering::Less,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Le => o != Ordering::Greater,
        },
        None => op == CmpOp::Ne,
    }
}

fn arith(op: ArithOp, a: Val, b: Val) -> Val {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => {
            let r = match op {
                ArithOp::Add => x.checked_add(y),
                ArithOp::Sub => x.checked_sub(y),
                ArithOp::Mul => x.checked_mul(y),
                ArithOp::Div if y == 0 => return Val::Null,
                ArithOp::Div => x.checked_div(y),
                ArithOp::Mod if y == 0 => return Val::Null,
                ArithOp::Mod => x.checked_rem(y),
            };
            r.map_or_else(|| float_arith(op, x as f64, y as f64), Val::Int)
        }
        (Val::Time(t), Val::Duration(d)) if op == ArithOp::Add => t.checked_add(d).map_or(Val::Null, Val::Time),
        (Val::Time(t), Val::Duration(d)) if op == ArithOp::Sub => t.checked_sub(d).map_or(Val::Null, Val::Time),
        (Val::Time(t), Val::Time(u)) if op == ArithOp::Sub => Val::Duration(t.duration_since(u)),
        (Val::Duration(d), Val::Duration(e)) if op == ArithOp::Add => d.checked_add(e).map_or(Val::Null, Val::Duration),
        (Val::Duration(d), Val::Duration(e)) if op == ArithOp::Sub => d.checked_sub(e).map_or(Val::Null, Val::Duration),
        (a, b) => match (num(&a), num(&b)) {
            (Some(x), Some(y)) => float_arith(op, x, y),
            _ => Val::Null,
        },
    }
}

fn float_arith(op: ArithOp, x: f64, y: f64) -> Val {
    let r = match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div => x / y,
        ArithOp::Mod => x % y,
    };
    if r.is_finite() { Val::Float(r) } else { Val::Null }
}

fn geometry(v: &Val) -> Option<Geometry<f64>> {
    match v {
        Val::Geom(g) => Some(g.clone()),
        Val::Json(j) => crate::geometry::from_geojson(j).ok(),
        Val::Str(s) => crate::geometry::from_wkt(s).ok(),
        _ => None,
    }
}

fn length(g: &Geometry<f64>) -> f64 {
    fn ls(l: &geo::LineString<f64>) -> f64 {
        l.lines().map(|s| (s.dx()).hypot(s.dy())).sum()
    }
    match g {
        Geometry::Line(l) => l.dx().hypot(l.dy()),
        Geometry::LineString(l) => ls(l),
        Geometry::MultiLineString(m) => m.0.iter().map(ls).sum(),
        Geometry::GeometryCollection(c) => c.0.iter().map(length).sum(),
        _ => 0.0,
    }
}

fn utc(t: Timestamp) -> civil::DateTime {
    t.to_zoned(TimeZone::UTC).datetime()
}

fn call(f: Function, a: Vec<Val>, cx: &EvalContext) -> Val {
    use Function as F;
    let s = |i: usize| match a.get(i) {
        Some(Val::Str(s)) => Some(s.as_str()),
        _ => None,
    };
    let int = |i: usize| match a.get(i) {
        Some(Val::Int(n)) => Some(*n),
        Some(Val::Float(x)) if x.fract() == 0.0 => Some(*x as i64),
        _ => None,
    };
    let datetime = |i: usize| match a.get(i) {
        Some(Val::Time(t)) => Some(utc(*t)),
        Some(Val::Interval(t, _)) => Some(utc(*t)),
        Some(Val::Date(d)) => Some(d.to_datetime(civil::Time::midnight())),
        Some(Val::Str(x)) => TimeValue::parse(x).ok().map(|t| utc(t.start())),
        _ => None,
    };
    let b = Val::Bool;
    let opt = |v: Option<Val>| v.unwrap_or(Val::Null);
    match f {
        F::SubstringOf => opt(s(0).zip(s(1)).map(|(x, y)| b(y.contains(x)))),
        F::Contains => opt(s(0).zip(s(1)).map(|(x, y)| b(x.contains(y)))),
        F::StartsWith => opt(s(0).zip(s(1)).map(|(x, y)| b(x.starts_with(y)))),
        F::EndsWith => opt(s(0).zip(s(1)).map(|(x, y)| b(x.ends_with(y)))),
        F::Length => opt(s(0).map(|x| Val::Int(x.chars().count() as i64))),
        F::IndexOf => {
            opt(s(0).zip(s(1)).map(|(x, y)| Val::Int(x.find(y).map_or(-1, |byte| x[..byte].chars().count() as i64))))
        }
        F::Substring => {
            let (Some(x), Some(start)) = (s(0), int(1)) else { return Val::Null };
            let start = start.max(0) as usize;
            let len = if a.len() > 2 { int(2).map(|n| n.max(0) as usize) } else { Some(usize::MAX) };
            opt(len.map(|len| Val::Str(x.chars().skip(start).take(len).collect())))
        }
        F::ToLower => opt(s(0).map(|x| Val::Str(x.to_lowercase()))),
        F::ToUpper => opt(s(0).map(|x| Val::Str(x.to_uppercase()))),
        F::Trim => opt(s(0).map(|x| Val::Str(x.trim().to_owned()))),
        F::Concat => opt(s(0).zip(s(1)).map(|(x, y)| Val::Str(format!("{x}{y}")))),
        F::Year => opt(datetime(0).map(|d| Val::Int(d.year().into()))),
        F::Month => opt(datetime(0).map(|d| Val::Int(d.month().into()))),
        F::Day => opt(datetime(0).map(|d| Val::Int(d.day().into()))),
        F::Hour | F::Minute | F::Second | F::FractionalSeconds => {
            let t = match a.first() {
                Some(Val::TimeOfDay(t)) => Some(*t),
                _ => datetime(0).map(|d| d.time()),
            };
            opt(t.map(|t| match f {
                F::Hour => Val::Int(t.hour().into()),
                F::Minute => Val::Int(t.minute().into()),
                F::Second => Val::Int(t.second().into()),
                _ => Val::Float(f64::from(t.subsec_nanosecond()) / 1e9),
            }))
        }
        F::Date => opt(datetime(0).map(|d| Val::Date(d.date()))),
        F::Time => opt(datetime(0).map(|d| Val::TimeOfDay(d.time()))),
        F::TotalOffsetMinutes => opt(datetime(0).map(|_| Val::Int(0))),
        F::Now => Val::Time(cx.now),
        F::MinDateTime => Val::Time(Timestamp::MIN),
        F::MaxDateTime => Val::Time(Timestamp::MAX),
        F::Round | F::Floor | F::Ceiling => match a.first() {
            Some(Val::Int(i)) => Val::Int(*i),
            Some(Val::Float(x)) => Val::Float(match f {
                F::Round => x.round(),
                F::Floor => x.floor(),
                _ => x.ceil(),
            }),
            _ => Val::Null,
        },
        F::GeoLength => opt(a.first().and_then(geometry).map(|g| Val::Float(length(&g)))),
        _ => {
            let (Some(g1), Some(g2)) = (a.first().and_then(geometry), a.get(1).and_then(geometry)) else {
                return Val::Null;
            };
            if f == F::GeoDistance {
                return Val::Float(Euclidean.distance(&g1, &g2));
            }
            let m = g1.relate(&g2);
            b(match f {
                F::GeoIntersects | F::StIntersects => m.is_intersects(),
                F::StEquals => m.is_equal_topo(),
                F::StDisjoint => m.is_disjoint(),
                F::StTouches => m.is_touches(),
                F::StWithin => m.is_within(),
                F::StOverlaps => m.is_overlaps(),
                F::StCrosses => m.is_crosses(),
                F::StContains => m.is_contains(),
                F::StRelate => match s(2).map(|p| m.matches(p)) {
                    Some(Ok(r)) => r,
                    _ => return Val::Null,
                },
                _ => return Val::Null,
            })
        }
    }
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
