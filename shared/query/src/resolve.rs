//! From the `cql2` crate's AST to our [`Predicate`]: property names resolved against the layer
//! schema, every literal typed to what it is compared with, unsupported constructs refused with a
//! message that names them.
//!
//! Typing rules (decided once, here):
//! - numbers compare with numbers (integer and real mix); a quoted `'3'` is text, never a number;
//! - a date property takes `DATE('2025-06-01')` or `'2025-06-01'`;
//! - a date-time property takes `TIMESTAMP('…')`, a quoted RFC 3339 instant, or a date meaning
//!   00:00 Beijing time that day. An instant must carry its UTC offset (`Z`, `+08:00`): the `cql2`
//!   crate reads an offset-less `TIMESTAMP('2025-06-01T08:00:00')` as UTC while the rest of
//!   shikong reads offset-less times as Beijing time, so rather than guess we refuse it;
//! - instants are cut to whole milliseconds, the precision the store keeps.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{RoundMode, SignedDuration, Timestamp, TimestampRound, Unit};
use serde_json::Value as Json;
use shikong_model::{Bbox, Geometry, LayerSchema, Value, time};

use cql2::Expr;

use crate::attribute::{self, Attribute, QueryableType};
use crate::error::QueryError;
use crate::eval;
use crate::like::LikePattern;
use crate::predicate::{ArithOp, CmpOp, Operand, Predicate, SpatialLiteral, SpatialOp, TemporalOp, TimeSpan};
use crate::temporal;

/// Parses cql2-text (without resolving names).
pub(crate) fn parse_text(text: &str) -> Result<Expr, QueryError> {
    if let Some(s) = offsetless_timestamp_in_text(text) {
        return Err(offsetless(&s));
    }
    cql2::parse_text(text).map_err(|e| match e {
        cql2::Error::Pest(p) => {
            let (line, column) = match p.line_col {
                pest::error::LineColLocation::Pos(lc) | pest::error::LineColLocation::Span(lc, _) => lc,
            };
            QueryError::Syntax { line, column, message: p.to_string() }
        }
        other => QueryError::Cql2(other.to_string()),
    })
}

/// Parses cql2-json (without resolving names).
pub(crate) fn parse_json(json: &str) -> Result<Expr, QueryError> {
    let v: Json = serde_json::from_str(json).map_err(|e| QueryError::Json { path: None, message: e.to_string() })?;
    check_json_offsets(&v)?;
    match serde_json::from_value::<Expr>(v.clone()) {
        Ok(e) => Ok(e),
        Err(_) => {
            let (path, node) = locate(&v, String::new());
            let mut snippet: String = node.to_string().chars().take(80).collect();
            if snippet.chars().count() == 80 {
                snippet.push('…');
            }
            Err(QueryError::Json {
                path: Some(if path.is_empty() { "/".into() } else { path }),
                message: format!("not a CQL2 expression: {snippet}"),
            })
        }
    }
}

/// The innermost `args` entry that is not an expression although its own arguments are.
fn locate(v: &Json, path: String) -> (String, &Json) {
    if let Some(args) = v.get("args").and_then(Json::as_array) {
        for (i, a) in args.iter().enumerate() {
            if serde_json::from_value::<Expr>(a.clone()).is_err() {
                return locate(a, format!("{path}/args/{i}"));
            }
        }
    }
    (path, v)
}

fn offsetless(s: &str) -> QueryError {
    QueryError::literal(
        "timestamp",
        s,
        format!("it has no UTC offset; write {s}+08:00 for Beijing time or {s}Z for UTC"),
    )
}

/// `s` when it is a bare calendar date `YYYY-MM-DD` (jiff's date parser also takes date-times and
/// drops the time, which must not happen here).
fn plain_date(s: &str) -> Option<Date> {
    let t = s.trim();
    let shaped = t.chars().count() == 10
        && t.chars().enumerate().all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() });
    if shaped { time::parse_date(t).ok() } else { None }
}

/// Whether `s` is a date with a time of day but no UTC offset.
fn is_offsetless_instant(s: &str) -> bool {
    let s = s.trim();
    match s.split_once(['T', 't', ' ']) {
        Some((date, clock)) => {
            plain_date(date).is_some()
                && clock.starts_with(|c: char| c.is_ascii_digit())
                && !clock.contains(['Z', 'z', '+', '-', '['])
        }
        None => false,
    }
}

/// The first offset-less instant written inside `TIMESTAMP(…)` or `INTERVAL(…)` in cql2-text.
///
/// The `cql2` crate rewrites such literals to UTC before we see them, so they are caught on the
/// text. This is a scan for string literals and parentheses, not a parser: it only has to know
/// which strings sit inside those two calls.
fn offsetless_timestamp_in_text(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut calls: Vec<bool> = Vec::new();
    let mut last_word: Option<String> = None;
    while let Some(&c) = chars.get(i) {
        match c {
            '\'' | '"' => {
                let mut s = String::new();
                i += 1;
                while let Some(&d) = chars.get(i) {
                    if d == c {
                        if chars.get(i + 1) == Some(&c) {
                            s.push(c);
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    s.push(d);
                    i += 1;
                }
                i += 1;
                if c == '\'' && calls.iter().any(|t| *t) && is_offsetless_instant(&s) {
                    return Some(s);
                }
                last_word = None;
            }
            c if c.is_alphabetic() => {
                let start = i;
                while chars.get(i).is_some_and(|d| d.is_alphanumeric() || matches!(d, '_' | '.' | ':')) {
                    i += 1;
                }
                last_word = Some(chars[start..i].iter().collect());
            }
            '(' => {
                let temporal = last_word
                    .take()
                    .is_some_and(|w| w.eq_ignore_ascii_case("timestamp") || w.eq_ignore_ascii_case("interval"));
                calls.push(temporal);
                i += 1;
            }
            ')' => {
                calls.pop();
                last_word = None;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            _ => {
                last_word = None;
                i += 1;
            }
        }
    }
    None
}

/// The same check on cql2-json: `{"timestamp": …}` and `{"interval": […]}` members.
fn check_json_offsets(v: &Json) -> Result<(), QueryError> {
    match v {
        Json::Object(m) => {
            if let Some(Json::String(s)) = m.get("timestamp")
                && is_offsetless_instant(s)
            {
                return Err(offsetless(s));
            }
            if let Some(Json::Array(items)) = m.get("interval") {
                for s in items.iter().filter_map(Json::as_str) {
                    if is_offsetless_instant(s) {
                        return Err(offsetless(s));
                    }
                }
            }
            m.values().try_for_each(check_json_offsets)
        }
        Json::Array(items) => items.iter().try_for_each(check_json_offsets),
        _ => Ok(()),
    }
}

/// The type of a scalar operand, as type checking sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Bool,
    Date,
    DateTime,
    Geometry,
}

impl Kind {
    fn of(a: &Attribute) -> Kind {
        match a.queryable_type() {
            Some(QueryableType::Integer | QueryableType::Real) => Kind::Number,
            Some(QueryableType::Bool) => Kind::Bool,
            Some(QueryableType::Date) => Kind::Date,
            Some(QueryableType::DateTime) => Kind::DateTime,
            Some(QueryableType::Geometry) => Kind::Geometry,
            // Attachment fields never resolve; text is the harmless answer.
            Some(QueryableType::Text) | None => Kind::Text,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Number => "a number",
            Kind::Bool => "a boolean (true/false)",
            Kind::Date => "a date (DATE('2025-06-01'))",
            Kind::DateTime => "a timestamp (TIMESTAMP('2025-06-01T08:00:00+08:00'))",
            Kind::Geometry => "a geometry",
        }
    }
}

/// A resolved operand and its type.
type Typed = (Operand, Kind);

/// Time spans are of dates or of instants; the two do not mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gran {
    Day,
    Instant,
}

fn number_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 { format!("{}", f as i64) } else { f.to_string() }
}

/// How an expression reads in an error message.
fn describe(e: &Expr) -> String {
    match e {
        Expr::Literal(s) => format!("the text '{s}'"),
        Expr::Float(f) => format!("the number {}", number_text(*f)),
        Expr::Bool(b) => format!("the boolean {b}"),
        Expr::Null => "NULL".into(),
        Expr::Date { date } => format!("DATE({})", literal_text(date)),
        Expr::Timestamp { timestamp } => format!("TIMESTAMP({})", literal_text(timestamp)),
        Expr::Interval { .. } => "an INTERVAL".into(),
        Expr::Property { property } => format!("property `{property}`"),
        Expr::Geometry(_) => "a geometry".into(),
        Expr::BBox { .. } => "a BBOX".into(),
        Expr::Array(_) => "a list".into(),
        Expr::Operation { op, .. } => format!("{op}(…)"),
    }
}

fn literal_text(e: &Expr) -> String {
    match e {
        Expr::Literal(s) => format!("'{s}'"),
        other => describe(other),
    }
}

fn has_property(e: &Expr) -> bool {
    match e {
        Expr::Property { .. } => true,
        Expr::Operation { args, .. } => args.iter().any(|a| has_property(a)),
        Expr::Interval { interval: items } | Expr::Array(items) | Expr::BBox { bbox: items } => {
            items.iter().any(|a| has_property(a))
        }
        Expr::Date { date: inner } | Expr::Timestamp { timestamp: inner } => has_property(inner),
        _ => false,
    }
}

fn arity<'e, const N: usize>(
    op: &str,
    args: &'e [Box<Expr>],
    expected: &'static str,
) -> Result<[&'e Expr; N], QueryError> {
    let refs: Vec<&Expr> = args.iter().map(|a| a.as_ref()).collect();
    refs.try_into().map_err(|_| QueryError::Arity { op: op.to_owned(), expected, got: args.len() })
}

/// How an operand is named in an error message.
fn label(o: &Operand) -> String {
    match o {
        Operand::Attr(a) => a.name().to_owned(),
        other => other.to_string(),
    }
}

/// Integral numbers that a double represents exactly become integers (comparisons with integer
/// fields then stay exact); the rest stay real.
fn number_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 { Value::Integer(f as i64) } else { Value::Real(f) }
}

fn beijing_midnight(d: Date, input: &str) -> Result<Timestamp, QueryError> {
    d.to_zoned(TimeZone::fixed(time::BEIJING))
        .map(|z| z.timestamp())
        .map_err(|e| QueryError::literal("date", input, e.to_string()))
}

fn parse_day(s: &str) -> Result<Date, QueryError> {
    let d = plain_date(s).ok_or_else(|| QueryError::literal("date", s, "expected YYYY-MM-DD"))?;
    if !(1..=9999).contains(&d.year()) {
        return Err(QueryError::literal("date", s, "the year must be between 1 and 9999"));
    }
    Ok(d)
}

/// An instant literal, cut to the millisecond (floor, as `gpkg_datetime` writes it).
fn parse_instant(s: &str) -> Result<Timestamp, QueryError> {
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

/// Resolves expressions against one layer schema.
pub(crate) struct Resolver<'s> {
    pub schema: &'s LayerSchema,
}

impl Resolver<'_> {
    fn attr(&self, name: &str) -> Result<Attribute, QueryError> {
        attribute::resolve(self.schema, name)
    }

    /// A boolean-valued expression.
    pub(crate) fn predicate(&self, e: &Expr) -> Result<Predicate, QueryError> {
        match e {
            Expr::Bool(b) => Ok(Predicate::Const(*b)),
            Expr::Property { property } => {
                let a = self.attr(property)?;
                if Kind::of(&a) != Kind::Bool {
                    return Err(QueryError::mismatch(
                        property,
                        "a condition",
                        format!("a property holding {}", Kind::of(&a).describe()),
                    ));
                }
                Ok(Predicate::Compare {
                    left: Operand::Attr(a),
                    op: CmpOp::Eq,
                    right: Operand::Literal(Value::Bool(true)),
                })
            }
            Expr::Operation { op, args } => self.operation(op, args),
            other => Err(QueryError::mismatch(
                "filter",
                "a condition (comparison, LIKE, IN, BETWEEN, IS NULL, spatial or temporal operator)",
                describe(other),
            )),
        }
    }

    fn operation(&self, op: &str, args: &[Box<Expr>]) -> Result<Predicate, QueryError> {
        let cmp = match op {
            "=" => Some(CmpOp::Eq),
            "<>" => Some(CmpOp::Ne),
            "<" => Some(CmpOp::Lt),
            "<=" => Some(CmpOp::Le),
            ">" => Some(CmpOp::Gt),
            ">=" => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(c) = cmp {
            let [a, b] = arity(op, args, "2")?;
            return self.compare(c, a, b);
        }
        if let Some(s) = spatial_op(op) {
            let [a, b] = arity(op, args, "2")?;
            return self.spatial(s, a, b);
        }
        if let Some(t) = TemporalOp::from_name(op) {
            let [a, b] = arity(op, args, "2")?;
            return self.temporal(t, a, b);
        }
        match op {
            "and" | "or" => {
                let ps = args.iter().map(|a| self.predicate(a)).collect::<Result<Vec<_>, _>>()?;
                Ok(if op == "and" { Predicate::And(ps) } else { Predicate::Or(ps) })
            }
            "not" => {
                let [a] = arity(op, args, "1")?;
                Ok(Predicate::Not(Box::new(self.predicate(a)?)))
            }
            "like" => {
                let [a, b] = arity(op, args, "2")?;
                self.like(a, b)
            }
            "in" => {
                let [a, b] = arity(op, args, "2")?;
                self.in_list(a, b)
            }
            "between" => {
                let [a, lo, hi] = arity(op, args, "3")?;
                self.between(a, lo, hi)
            }
            "isNull" => {
                let [a] = arity(op, args, "1")?;
                self.is_null(a)
            }
            "casei" | "+" | "-" | "*" | "/" => Err(QueryError::mismatch(
                "filter",
                "a condition",
                format!("the value {op}(…); compare it with something"),
            )),
            _ => Err(unsupported_op(op)),
        }
    }

    /// A scalar expression; `want` is the type and name of what it is compared with, which types
    /// its literals.
    fn operand(&self, e: &Expr, want: Option<(Kind, &str)>) -> Result<(Operand, Kind), QueryError> {
        match e {
            Expr::Property { property } => {
                let a = self.attr(property)?;
                let k = Kind::of(&a);
                Ok((Operand::Attr(a), k))
            }
            Expr::Operation { op, args } if op == "casei" => {
                let [x] = arity(op, args, "1")?;
                let (o, k) = self.operand(x, want.map(|(_, n)| (Kind::Text, n)))?;
                if k != Kind::Text {
                    return Err(QueryError::mismatch(label(&o), "text (casei applies to text)", k.describe()));
                }
                Ok(match o {
                    Operand::Literal(Value::Text(s)) => (Operand::Literal(Value::Text(s.to_ascii_lowercase())), k),
                    other => (Operand::Lower(Box::new(other)), k),
                })
            }
            Expr::Operation { op, args } if matches!(op.as_str(), "+" | "-" | "*" | "/") => {
                let [l, r] = arity(op, args, "2")?;
                let side = |x: &Expr| -> Result<Operand, QueryError> {
                    let (o, k) = self.operand(x, Some((Kind::Number, op)))?;
                    if k != Kind::Number {
                        return Err(QueryError::mismatch(label(&o), format!("a number (for `{op}`)"), k.describe()));
                    }
                    Ok(o)
                };
                let arith = match op.as_str() {
                    "+" => ArithOp::Add,
                    "-" => ArithOp::Sub,
                    "*" => ArithOp::Mul,
                    _ => ArithOp::Div,
                };
                Ok((Operand::Arith { op: arith, left: Box::new(side(l)?), right: Box::new(side(r)?) }, Kind::Number))
            }
            Expr::Operation { op, .. } if is_condition_op(op) => {
                Err(QueryError::mismatch("filter", "a value", format!("the condition {op}(…)")))
            }
            Expr::Operation { op, .. } => Err(unsupported_op(op)),
            Expr::Geometry(_) | Expr::BBox { .. } => Err(QueryError::mismatch(
                want.map_or("filter", |(_, n)| n),
                "a value",
                format!("{} (use s_equals, s_intersects, … for geometries)", describe(e)),
            )),
            Expr::Interval { .. } => Err(QueryError::mismatch(
                want.map_or("filter", |(_, n)| n),
                "a value",
                "an INTERVAL (use t_intersects, t_during, … for intervals)",
            )),
            Expr::Array(_) => {
                Err(QueryError::mismatch(want.map_or("filter", |(_, n)| n), "a value", "a list (use IN)"))
            }
            literal => {
                let kind = match (want, literal) {
                    (Some((k, _)), _) => k,
                    (None, Expr::Float(_)) => Kind::Number,
                    (None, Expr::Bool(_)) => Kind::Bool,
                    (None, Expr::Date { .. }) => Kind::Date,
                    (None, Expr::Timestamp { .. }) => Kind::DateTime,
                    (None, _) => Kind::Text,
                };
                let v = self.literal(literal, kind, want.map_or("literal", |(_, n)| n))?;
                Ok((Operand::Literal(v), kind))
            }
        }
    }

    /// A literal of type `kind`, compared with or applied to `ctx`.
    fn literal(&self, e: &Expr, kind: Kind, ctx: &str) -> Result<Value, QueryError> {
        let text = |inner: &Expr| match inner {
            Expr::Literal(s) => Ok(s.clone()),
            other => Err(QueryError::mismatch(ctx, "a quoted literal inside DATE()/TIMESTAMP()", describe(other))),
        };
        Ok(match (kind, e) {
            (_, Expr::Null) => {
                return Err(QueryError::mismatch(ctx, kind.describe(), "NULL (use IS NULL or IS NOT NULL)"));
            }
            (Kind::Number, Expr::Float(f)) => number_value(*f),
            (Kind::Text, Expr::Literal(s)) => Value::Text(s.clone()),
            (Kind::Text, Expr::Float(f)) => {
                let n = number_text(*f);
                return Err(QueryError::mismatch(ctx, "text", format!("the number {n} (quote text: '{n}')")));
            }
            (Kind::Number, Expr::Literal(s)) => {
                return Err(QueryError::mismatch(
                    ctx,
                    "a number",
                    format!("the text '{s}' (numbers are written without quotes)"),
                ));
            }
            (Kind::Bool, Expr::Bool(b)) => Value::Bool(*b),
            (Kind::Date, Expr::Literal(s)) => Value::Date(parse_day(s)?),
            (Kind::Date, Expr::Date { date }) => Value::Date(parse_day(&text(date)?)?),
            (Kind::DateTime, Expr::Date { date }) => {
                let s = text(date)?;
                Value::DateTime(beijing_midnight(parse_day(&s)?, &s)?)
            }
            (Kind::DateTime, Expr::Timestamp { timestamp }) => Value::DateTime(parse_instant(&text(timestamp)?)?),
            (Kind::DateTime, Expr::Literal(s)) => match plain_date(s) {
                Some(_) => Value::DateTime(beijing_midnight(parse_day(s)?, s)?),
                None => Value::DateTime(parse_instant(s)?),
            },
            (Kind::Date, Expr::Timestamp { .. }) => {
                return Err(QueryError::mismatch(
                    ctx,
                    kind.describe(),
                    format!("{} (a date holds no time of day)", describe(e)),
                ));
            }
            _ => return Err(QueryError::mismatch(ctx, kind.describe(), describe(e))),
        })
    }

    /// Two operands, the one holding a property resolved first so that it types the other.
    fn pair(&self, a: &Expr, b: &Expr) -> Result<(Typed, Typed), QueryError> {
        if !has_property(a) && has_property(b) {
            let r = self.operand(b, None)?;
            let l = self.operand(a, Some((r.1, &label(&r.0))))?;
            Ok((l, r))
        } else {
            let l = self.operand(a, None)?;
            let r = self.operand(b, Some((l.1, &label(&l.0)))).map_err(|e| match e {
                // `名称 = 井盖`: the value was meant, unquoted.
                QueryError::UnknownProperty { name, queryables, .. } if l.1 == Kind::Text => {
                    QueryError::UnknownProperty {
                        hint: format!(" (text values take single quotes: '{name}')"),
                        name,
                        queryables,
                    }
                }
                other => other,
            })?;
            Ok((l, r))
        }
    }

    fn compare(&self, op: CmpOp, a: &Expr, b: &Expr) -> Result<Predicate, QueryError> {
        let ((l, lk), (r, rk)) = self.pair(a, b)?;
        if lk != rk {
            return Err(QueryError::mismatch(label(&l), lk.describe(), format!("`{}` ({})", label(&r), rk.describe())));
        }
        if lk == Kind::Geometry {
            return Err(QueryError::unsupported(op.symbol(), "geometries compare with s_equals, s_intersects, …"));
        }
        let l2 = entity_id_literal(&r, l.clone())?;
        let r = entity_id_literal(&l, r)?;
        let l = l2;
        Ok(Predicate::Compare { left: l, op, right: r })
    }

    fn like(&self, a: &Expr, b: &Expr) -> Result<Predicate, QueryError> {
        let (o, k) = self.operand(a, None)?;
        if k != Kind::Text {
            return Err(QueryError::mismatch(label(&o), "text (LIKE applies to text)", k.describe()));
        }
        let (pattern, casei) = match b {
            Expr::Literal(s) => (s, false),
            Expr::Operation { op, args } if op == "casei" => match arity(op, args, "1")? {
                [Expr::Literal(s)] => (s, true),
                _ => return Err(QueryError::unsupported("LIKE", "the pattern must be a quoted text literal")),
            },
            other => return Err(QueryError::mismatch(label(&o), "a quoted LIKE pattern", describe(other))),
        };
        let p = LikePattern::new(pattern)?;
        Ok(Predicate::Like { operand: o, pattern: if casei { p.ascii_lowercase() } else { p } })
    }

    fn in_list(&self, a: &Expr, list: &Expr) -> Result<Predicate, QueryError> {
        let (o, k) = self.operand(a, None)?;
        if k == Kind::Geometry {
            return Err(QueryError::unsupported("IN", "geometries compare with s_equals, s_intersects, …"));
        }
        let Expr::Array(items) = list else {
            return Err(QueryError::mismatch(label(&o), "a list of values for IN", describe(list)));
        };
        if items.is_empty() {
            return Err(QueryError::mismatch(label(&o), "at least one value for IN", "an empty list"));
        }
        let name = label(&o);
        let values = items
            .iter()
            .map(|item| {
                if has_property(item) {
                    return Err(QueryError::unsupported("IN", "list items must be literals"));
                }
                match self.operand(item, Some((k, &name)))?.0 {
                    Operand::Literal(v) => entity_id_value(&o, v),
                    _ => Err(QueryError::unsupported("IN", "list items must be literals")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Predicate::In { operand: o, values })
    }

    fn between(&self, a: &Expr, lo: &Expr, hi: &Expr) -> Result<Predicate, QueryError> {
        let (o, k) = self.operand(a, None)?;
        if k == Kind::Geometry {
            return Err(QueryError::unsupported("BETWEEN", "geometries are not ordered"));
        }
        let name = label(&o);
        let bound = |e: &Expr| -> Result<Operand, QueryError> {
            let (b, bk) = self.operand(e, Some((k, &name)))?;
            if bk != k {
                return Err(QueryError::mismatch(&name, k.describe(), format!("`{}` ({})", label(&b), bk.describe())));
            }
            entity_id_literal(&o, b)
        };
        let (low, high) = (bound(lo)?, bound(hi)?);
        Ok(Predicate::Between { operand: o, low, high })
    }

    fn is_null(&self, a: &Expr) -> Result<Predicate, QueryError> {
        match a {
            Expr::Property { property } => Ok(Predicate::IsNull(self.attr(property)?)),
            Expr::Operation { op, args } if op == "casei" => {
                let [x] = arity(op, args, "1")?;
                self.is_null(x)
            }
            Expr::Null => Ok(Predicate::Const(true)),
            e if !has_property(e) => Ok(Predicate::Const(false)),
            _ => Err(QueryError::unsupported("IS NULL", "it applies to a property")),
        }
    }

    fn geometry_side(&self, e: &Expr) -> Result<Option<SpatialLiteral>, QueryError> {
        let invalid = |message: String| QueryError::InvalidGeometry { message };
        let geometry = match e {
            Expr::Property { property } => {
                let a = self.attr(property)?;
                if a != Attribute::Geometry {
                    return Err(QueryError::mismatch(
                        property,
                        "a geometry for a spatial operator",
                        Kind::of(&a).describe(),
                    ));
                }
                return Ok(None);
            }
            Expr::Geometry(cql2::Geometry::Wkt(w)) => {
                shikong_model::wkt::parse(w).map_err(|e| invalid(e.to_string()))?
            }
            Expr::Geometry(cql2::Geometry::GeoJSON(g)) => {
                let json = serde_json::to_value(g).map_err(|e| invalid(e.to_string()))?;
                shikong_model::geojson::from_json(&json).map_err(|e| invalid(e.to_string()))?
            }
            Expr::BBox { bbox } => {
                let nums = bbox
                    .iter()
                    .map(|n| match n.as_ref() {
                        Expr::Float(f) => Ok(*f),
                        other => Err(invalid(format!("BBOX takes numbers, got {}", describe(other)))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let b = match nums[..] {
                    [a, b, c, d] => Bbox::new(a, b, c, d),
                    [a, b, _, d, e, _] => Bbox::new(a, b, d, e),
                    _ => return Err(invalid(format!("BBOX takes 4 or 6 numbers, got {}", nums.len()))),
                }
                .map_err(|e| invalid(e.to_string()))?;
                Geometry::from_bbox(&b)
            }
            other => {
                return Err(QueryError::mismatch(
                    "spatial operator",
                    "the geometry property or a geometry/BBOX",
                    describe(other),
                ));
            }
        };
        SpatialLiteral::new(geometry).map(Some)
    }

    fn spatial(&self, op: SpatialOp, a: &Expr, b: &Expr) -> Result<Predicate, QueryError> {
        match (self.geometry_side(a)?, self.geometry_side(b)?) {
            (None, Some(literal)) => Ok(Predicate::Spatial { op, literal }),
            (Some(literal), None) => Ok(Predicate::Spatial { op: op.converse(), literal }),
            (Some(x), Some(y)) => Ok(Predicate::Const(eval::spatial(op, x.geo(), &y))),
            (None, None) => {
                Err(QueryError::unsupported(op.name(), "a layer has one geometry; compare it with a literal"))
            }
        }
    }

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

    fn temporal(&self, op: TemporalOp, a: &Expr, b: &Expr) -> Result<Predicate, QueryError> {
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

/// Entity ids are stored as lowercase hyphenated UUIDs: a literal compared with `entity_id` is
/// normalised to that spelling, and one that is not a UUID is refused (it could never match).
fn entity_id_literal(other: &Operand, o: Operand) -> Result<Operand, QueryError> {
    match o {
        Operand::Literal(v) => entity_id_value(other, v).map(Operand::Literal),
        o => Ok(o),
    }
}

fn entity_id_value(other: &Operand, v: Value) -> Result<Value, QueryError> {
    match (other, v) {
        (Operand::Attr(Attribute::EntityId), Value::Text(s)) => uuid::Uuid::parse_str(s.trim())
            .map(|u| Value::Text(u.hyphenated().to_string()))
            .map_err(|e| QueryError::literal("entity id", s, e.to_string())),
        (_, v) => Ok(v),
    }
}

fn spatial_op(op: &str) -> Option<SpatialOp> {
    Some(match op {
        "s_intersects" => SpatialOp::Intersects,
        "s_disjoint" => SpatialOp::Disjoint,
        "s_within" => SpatialOp::Within,
        "s_contains" => SpatialOp::Contains,
        "s_equals" => SpatialOp::Equals,
        "s_touches" => SpatialOp::Touches,
        "s_crosses" => SpatialOp::Crosses,
        "s_overlaps" => SpatialOp::Overlaps,
        _ => return None,
    })
}

fn is_condition_op(op: &str) -> bool {
    matches!(op, "=" | "<>" | "<" | "<=" | ">" | ">=" | "and" | "or" | "not" | "like" | "in" | "between" | "isNull")
        || spatial_op(op).is_some()
        || TemporalOp::from_name(op).is_some()
}

fn unsupported_op(op: &str) -> QueryError {
    let hint = match op {
        "accenti" => "accent folding is not supported; Chinese text has no accents",
        "%" | "^" | "div" => "arithmetic supports +, -, * and /",
        "a_equals" | "a_contains" | "a_containedBy" | "a_overlaps" => "shikong properties hold no arrays",
        _ => "",
    };
    QueryError::unsupported(op, hint)
}
