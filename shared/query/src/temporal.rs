//! Temporal operators as comparisons of span end points.
//!
//! Each CQL2 temporal operator is a conjunction (or, for `t_disjoint`, a disjunction) of at most
//! three comparisons between the start/end of the two spans. Both the Rust evaluator and the SQL
//! planner use the comparisons produced here, so they agree by construction; this module alone
//! decides what the operators mean.
//!
//! The exclusive end of valid time is the closed end `valid_to − 1 ms`. A comparison with it is
//! rewritten so that nothing is subtracted inside SQL: against a literal, the literal moves by
//! 1 ms. Most comparisons need not even that: the operator changes (`valid_to − 1 ms < x` ⇔
//! `valid_to <= x` for millisecond instants). Between two attributes, the few comparisons no
//! operator change expresses are refused when the filter is parsed.

use std::borrow::Cow;

use jiff::{SignedDuration, Timestamp};
use shikong_model::Value;

use crate::attribute::Attribute;
use crate::error::QueryError;
use crate::predicate::{CmpOp, Operand, TemporalOp, TimeSpan};

/// One end point of a span, moved by `shift` milliseconds (0, or −1 for an exclusive end).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Point<'a> {
    pub operand: &'a Operand,
    pub shift: i8,
}

/// A comparison between two end points, ready to evaluate or render: at most one side is shifted
/// and only when it is a literal, whose value [`shift_literal`] moves.
#[derive(Debug, Clone)]
pub(crate) struct Term<'a> {
    pub left: &'a Operand,
    pub left_shift: i8,
    pub op: CmpOp,
    pub right: &'a Operand,
    pub right_shift: i8,
}

/// How the terms of an operator combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Combine {
    All,
    Any,
}

fn points(s: &TimeSpan) -> (Point<'_>, Point<'_>) {
    (Point { operand: &s.start, shift: 0 }, Point { operand: &s.end, shift: if s.end_exclusive { -1 } else { 0 } })
}

/// The comparisons `op(x, y)` stands for.
pub(crate) fn terms<'a>(
    op: TemporalOp,
    x: &'a TimeSpan,
    y: &'a TimeSpan,
) -> Result<(Combine, Vec<Term<'a>>), QueryError> {
    use CmpOp::*;
    use TemporalOp::*;
    let ((xs, xe), (ys, ye)) = (points(x), points(y));
    let raw: Vec<(Point<'a>, CmpOp, Point<'a>)> = match op {
        Before => vec![(xe, Lt, ys)],
        After => vec![(xs, Gt, ye)],
        Meets => vec![(xe, Eq, ys)],
        MetBy => vec![(xs, Eq, ye)],
        Overlaps => vec![(xs, Lt, ys), (ys, Lt, xe), (xe, Lt, ye)],
        OverlappedBy => vec![(ys, Lt, xs), (xs, Lt, ye), (ye, Lt, xe)],
        Starts => vec![(xs, Eq, ys), (xe, Lt, ye)],
        StartedBy => vec![(xs, Eq, ys), (ye, Lt, xe)],
        During => vec![(xs, Gt, ys), (xe, Lt, ye)],
        Contains => vec![(ys, Gt, xs), (ye, Lt, xe)],
        Finishes => vec![(xs, Gt, ys), (xe, Eq, ye)],
        FinishedBy => vec![(ys, Gt, xs), (xe, Eq, ye)],
        Equals => vec![(xs, Eq, ys), (xe, Eq, ye)],
        Disjoint => vec![(xs, Gt, ye), (xe, Lt, ys)],
        Intersects => vec![(xs, Le, ye), (xe, Ge, ys)],
    };
    let combine = if op == Disjoint { Combine::Any } else { Combine::All };
    let terms = raw.into_iter().map(|(a, o, b)| term(op, a, o, b)).collect::<Result<_, _>>()?;
    Ok((combine, terms))
}

/// `(a + sa) op (b + sb)` as a comparison that shifts only a literal.
fn term<'a>(top: TemporalOp, a: Point<'a>, op: CmpOp, b: Point<'a>) -> Result<Term<'a>, QueryError> {
    let is_lit = |o: &Operand| matches!(o, Operand::Literal(_));
    let d = b.shift - a.shift;
    let plain = |op, left_shift, right_shift| Term { left: a.operand, left_shift, op, right: b.operand, right_shift };
    if d == 0 {
        return Ok(plain(op, 0, 0));
    }
    // a op b + d, for millisecond instants and d = ±1 ms: most operators just change. Not when both
    // sides may be the same infinity (∞ − 1 ms is still ∞): then the literal moves instead, and an
    // infinite literal stays put.
    let infinities = |o: &Operand| match o {
        Operand::Attr(Attribute::ValidFrom) => [true, false],
        Operand::Attr(Attribute::ValidTo) => [false, true],
        Operand::Literal(Value::DateTime(t)) => [*t == Timestamp::MIN, *t == Timestamp::MAX],
        _ => [false, false],
    };
    let (ia, ib) = (infinities(a.operand), infinities(b.operand));
    let may_be_infinite = (ia[0] && ib[0]) || (ia[1] && ib[1]);
    let changed = match (d, op) {
        (1, CmpOp::Lt) => Some(CmpOp::Le),
        (1, CmpOp::Ge) => Some(CmpOp::Gt),
        (-1, CmpOp::Le) => Some(CmpOp::Lt),
        (-1, CmpOp::Gt) => Some(CmpOp::Ge),
        _ => None,
    };
    if let Some(op) = changed.filter(|_| !may_be_infinite) {
        return Ok(plain(op, 0, 0));
    }
    if is_lit(b.operand) {
        return Ok(plain(op, 0, d));
    }
    if is_lit(a.operand) {
        return Ok(plain(op, -d, 0));
    }
    Err(QueryError::unsupported(
        top.name(),
        "between the valid-time interval and another property interval; compare with a literal instead",
    ))
}

/// A literal end point moved by `shift` milliseconds; the open-end sentinels do not move.
pub(crate) fn shift_literal(v: &Value, shift: i8) -> Value {
    match v {
        Value::DateTime(t) if shift != 0 && *t != Timestamp::MIN && *t != Timestamp::MAX => {
            Value::DateTime(t.checked_add(SignedDuration::from_millis(i64::from(shift))).unwrap_or(*t))
        }
        other => other.clone(),
    }
}

/// An end-point operand with its shift applied (literals only; see [`Term`]).
pub(crate) fn shifted(o: &Operand, shift: i8) -> Cow<'_, Operand> {
    match o {
        Operand::Literal(v) if shift != 0 => Cow::Owned(Operand::Literal(shift_literal(v, shift))),
        other => Cow::Borrowed(other),
    }
}
