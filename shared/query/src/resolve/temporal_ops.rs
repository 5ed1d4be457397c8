//! Temporal literals and operators: dates as Beijing days, instants cut to the millisecond,
//! `INTERVAL(…)` spans (of days or of instants, never mixed) and the temporal predicates on them.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{RoundMode, SignedDuration, Timestamp, TimestampRound, Unit};
use shikong_model::{Value, time};

use cql2::Expr;

use super::parse::{is_offsetless_instant, offsetless, plain_date};
use super::{Kind, Resolver, arity, describe};
use crate::attribute::Attribute;
use crate::error::QueryError;
use crate::predicate::{Operand, Predicate, TemporalOp, TimeSpan};
use crate::temporal;

/// Time spans are of dates or of instants; the two do not mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gran {
    Day,
    Instant,
}

pub(super) fn beijing_midnight(d: Date, input: &str) -> Result<Timestamp, QueryError> {
    d.to_zoned(TimeZone::fixed(time::BEIJING))
        .map(|z| z.timestamp())
        .map_err(|e| QueryError::literal("date", input, e.to_string()))
}

pub(super) fn parse_day(s: &str) -> Result<Date, QueryError> {
    let d = plain_date(s).ok_or_else(|| QueryError::literal("date", s, "expected YYYY-MM-DD"))?;
    if !(1..=9999).contains(&d.year()) {
        return Err(QueryError::literal("date", s, "the year must be between 1 and 9999"));
    }
    Ok(d)
}

/// An instant literal, cut to the millisecond (floor, as `gpkg_datetime` writes it).
pub(super) fn parse_instant(s: &str) -> Result<Timestamp, QueryError> {
    if is_offsetless_instant(s) {
        return Err(offsetless(s));
    }
    let t = time::parse_instant(s).map_err(|e| QueryError::literal("timestamp", s, e.to_string()))?;
    let t = floor_ms(t);
    let year = t.to_zoned(TimeZone::UTC).year();
    if !(0..=9999).contains(&year) {
        return Err(QueryError::literal("timestamp", s, "the year must be between 1 and 9999"));
    }
    Ok(t)
}

/// `t` cut to the millisecond, as `gpkg_datetime` writes it (towards the past).
pub(crate) fn floor_ms(t: Timestamp) -> Timestamp {
    t.round(TimestampRound::new().smallest(Unit::Millisecond).mode(RoundMode::Floor)).unwrap_or(t)
}

/// The first and last millisecond of a Beijing day.
fn day_bounds(d: Date, input: &str) -> Result<(Timestamp, Timestamp), QueryError> {
    let start = beijing_midnight(d, input)?;
    let next = d.tomorrow().map_err(|e| QueryError::literal("date", input, e.to_string()))?;
    let end = beijing_midnight(next, input)? - SignedDuration::from_millis(1);
    Ok((start, end))
}

impl Resolver<'_> {
    /// The granularity of a temporal comparison: from its properties, else from its literals.
    fn granularity(&self, op: TemporalOp, sides: [&Expr; 2]) -> Result<Gran, QueryError> {
        fn props<'e>(e: &'e Expr, out: &mut Vec<&'e str>) {
            match e {
                Expr::Property { property } => out.push(property),
                Expr::Interval { interval } => interval.iter().for_each(|i| props(i, out)),
                _ => {}
            }
        }
        fn has_time(e: &Expr) -> bool {
            match e {
                Expr::Timestamp { .. } => true,
                Expr::Literal(s) => s.contains(['T', 't', ' ']),
                Expr::Interval { interval } => interval.iter().any(|i| has_time(i)),
                _ => false,
            }
        }
        let mut names = Vec::new();
        sides.iter().for_each(|e| props(e, &mut names));
        let mut found: Option<(Gran, &str)> = None;
        for name in names {
            let a = self.attr(name)?;
            let g = match Kind::of(&a) {
                Kind::Date => Gran::Day,
                Kind::DateTime => Gran::Instant,
                k => {
                    return Err(QueryError::mismatch(
                        name,
                        format!("a date or timestamp for {}", op.name()),
                        k.describe(),
                    ));
                }
            };
            match found {
                Some((other, first)) if other != g => {
                    return Err(QueryError::mismatch(
                        name,
                        format!("the same kind of time as `{first}`"),
                        "a date where a timestamp is expected, or the reverse",
                    ));
                }
                _ => found = Some((g, name)),
            }
        }
        Ok(match found {
            Some((g, _)) => g,
            None if sides.iter().any(|e| has_time(e)) => Gran::Instant,
            None => Gran::Day,
        })
    }

    pub(super) fn temporal(&self, op: TemporalOp, a: &Expr, b: &Expr) -> Result<Predicate, QueryError> {
        let gran = self.granularity(op, [a, b])?;
        let left = self.span(op, a, gran)?;
        let right = self.span(op, b, gran)?;
        temporal::terms(op, &left, &right)?;
        Ok(Predicate::Temporal { op, left, right })
    }

    fn span(&self, op: TemporalOp, e: &Expr, gran: Gran) -> Result<TimeSpan, QueryError> {
        match e {
            Expr::Property { property } => {
                let o = Operand::Attr(self.attr(property)?);
                Ok(TimeSpan { start: o.clone(), end: o, end_exclusive: false })
            }
            Expr::Interval { interval } => {
                let [s, t] = arity("INTERVAL", interval, "2")?;
                if let (Expr::Property { property: p }, Expr::Property { property: q }) = (s, t)
                    && self.attr(p)? == Attribute::ValidFrom
                    && self.attr(q)? == Attribute::ValidTo
                {
                    return Ok(TimeSpan {
                        start: Operand::Attr(Attribute::ValidFrom),
                        end: Operand::Attr(Attribute::ValidTo),
                        end_exclusive: true,
                    });
                }
                let start = self.bound(op, s, gran, false)?;
                let end = self.bound(op, t, gran, true)?;
                if let (Operand::Literal(x), Operand::Literal(y)) = (&start, &end)
                    && x.compare(y) == Some(std::cmp::Ordering::Greater)
                {
                    return Err(QueryError::literal(
                        "interval",
                        format!("{start}/{end}"),
                        "its start is after its end",
                    ));
                }
                Ok(TimeSpan { start, end, end_exclusive: false })
            }
            literal => {
                let (start, end) = self.time_literal(op, literal, gran)?;
                Ok(TimeSpan { start: Operand::Literal(start), end: Operand::Literal(end), end_exclusive: false })
            }
        }
    }

    fn bound(&self, op: TemporalOp, e: &Expr, gran: Gran, end: bool) -> Result<Operand, QueryError> {
        match e {
            Expr::Property { property } => Ok(Operand::Attr(self.attr(property)?)),
            Expr::Literal(s) if s == ".." => Ok(Operand::Literal(match (gran, end) {
                (Gran::Day, false) => Value::Date(Date::MIN),
                (Gran::Day, true) => Value::Date(Date::MAX),
                (Gran::Instant, false) => Value::DateTime(Timestamp::MIN),
                (Gran::Instant, true) => Value::DateTime(Timestamp::MAX),
            })),
            literal => {
                let (s, t) = self.time_literal(op, literal, gran)?;
                Ok(Operand::Literal(if end { t } else { s }))
            }
        }
    }

    /// A date or instant literal as the first and last value of the span it denotes.
    fn time_literal(&self, op: TemporalOp, e: &Expr, gran: Gran) -> Result<(Value, Value), QueryError> {
        let (text, is_date) = match e {
            Expr::Date { date } => match date.as_ref() {
                Expr::Literal(s) => (s, true),
                other => return Err(QueryError::mismatch(op.name(), "DATE('YYYY-MM-DD')", describe(other))),
            },
            Expr::Timestamp { timestamp } => match timestamp.as_ref() {
                Expr::Literal(s) => (s, false),
                other => return Err(QueryError::mismatch(op.name(), "TIMESTAMP('…')", describe(other))),
            },
            Expr::Literal(s) => (s, plain_date(s).is_some()),
            other => {
                return Err(QueryError::mismatch(
                    op.name(),
                    "a date, timestamp, INTERVAL or date/timestamp property",
                    describe(other),
                ));
            }
        };
        match (gran, is_date) {
            (Gran::Day, true) => {
                let d = Value::Date(parse_day(text)?);
                Ok((d.clone(), d))
            }
            (Gran::Day, false) => Err(QueryError::mismatch(
                op.name(),
                "dates (the properties are dates)",
                format!("the timestamp '{text}'; use DATE('YYYY-MM-DD')"),
            )),
            (Gran::Instant, true) => {
                let (s, t) = day_bounds(parse_day(text)?, text)?;
                Ok((Value::DateTime(s), Value::DateTime(t)))
            }
            (Gran::Instant, false) => {
                let t = Value::DateTime(parse_instant(text)?);
                Ok((t.clone(), t))
            }
        }
    }
}
