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
//!
//! Parsing (and the check for offset-less instants the `cql2` crate would silently read as UTC)
//! is in `parse`; temporal literals and operators are in `temporal_ops`.

mod parse;
mod temporal_ops;

use shikong_model::{Bbox, Geometry, LayerSchema, Value};

use cql2::Expr;

use crate::attribute::{self, Attribute, QueryableType};
use crate::error::QueryError;
use crate::eval;
use crate::like::LikePattern;
use crate::predicate::{ArithOp, CmpOp, Operand, Predicate, SpatialLiteral, SpatialOp, TemporalOp};

use parse::plain_date;
pub(crate) use parse::{parse_json, parse_text};
pub(crate) use temporal_ops::floor_ms;
use temporal_ops::{beijing_midnight, parse_day, parse_instant};

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
