//! The desktop's query builder (issue 16), pure: conditions picked from a layer's queryables
//! become the CQL2 text the server is sent (and that the builder shows), and a table's sort
//! columns become `sortby`. No I/O: the table's requests are `shikong-sync-client`'s
//! ([`crate::SyncError`] carries the server's precise refusal), its export is [`crate::query_export`].
//!
//! Why the text is built here and not in the web view: one place quotes identifiers (`"名称"`,
//! `""` inside), escapes literals (`''`), checks that a number is a number and a date a date for
//! the field's type, and refuses an empty `IN` list or a polygon with too few corners — each with
//! the condition it is about — before anything reaches the server.

use serde::{Deserialize, Serialize};
use shikong_protocol::api::Queryables;

use crate::AppError;

/// The kind of a queryable, from its JSON Schema `type`/`format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldKind {
    Text,
    Integer,
    Number,
    Boolean,
    Date,
    DateTime,
    Geometry,
}

/// A field the builder and the table offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryField {
    pub name: String,
    pub title: String,
    pub kind: FieldKind,
    /// A code list's codes (an `=`/`IN` picks among them).
    pub codes: Vec<String>,
    /// The operators the builder offers for this kind.
    pub ops: Vec<Op>,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "<>")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "LIKE")]
    Like,
    #[serde(rename = "IN")]
    In,
    #[serde(rename = "BETWEEN")]
    Between,
    #[serde(rename = "IS NULL")]
    IsNull,
    #[serde(rename = "IS NOT NULL")]
    IsNotNull,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
            Op::Like => "LIKE",
            Op::In => "IN",
            Op::Between => "BETWEEN",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
        }
    }
}

/// The operators that make sense for a kind of field.
pub fn ops_for(kind: FieldKind) -> Vec<Op> {
    use Op::*;
    match kind {
        FieldKind::Text => vec![Eq, Ne, Like, In, Lt, Gt, Le, Ge, IsNull, IsNotNull],
        FieldKind::Integer | FieldKind::Number | FieldKind::Date | FieldKind::DateTime => {
            vec![Eq, Ne, Lt, Gt, Le, Ge, Between, In, IsNull, IsNotNull]
        }
        FieldKind::Boolean => vec![Eq, Ne, IsNull, IsNotNull],
        FieldKind::Geometry => vec![IsNull, IsNotNull],
    }
}

/// The layer's queryables as the builder offers them, in the server's order.
pub fn fields(q: &Queryables) -> Vec<QueryField> {
    q.fields()
        .into_iter()
        .map(|(name, p)| {
            let kind = match (p.ty.as_deref(), p.format.as_deref()) {
                (_, Some("geometry-any")) | (None, _) => FieldKind::Geometry,
                (Some("integer"), _) => FieldKind::Integer,
                (Some("number"), _) => FieldKind::Number,
                (Some("boolean"), _) => FieldKind::Boolean,
                (_, Some("date")) => FieldKind::Date,
                (_, Some("date-time")) => FieldKind::DateTime,
                _ => FieldKind::Text,
            };
            let title = if p.title.is_empty() { name.clone() } else { p.title };
            QueryField { name, title, kind, codes: p.codes, ops: ops_for(kind) }
        })
        .collect()
}

/// One condition row of the builder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    pub kind: FieldKind,
    pub op: Op,
    /// The operand(s) as typed: one, two for `BETWEEN`, one or more for `IN`, none for `IS NULL`.
    #[serde(default)]
    pub values: Vec<String>,
}

/// How the condition rows combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Combine {
    #[default]
    And,
    Or,
}

/// A time window on a date or date-time field (either end open).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub field: String,
    pub kind: FieldKind,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

/// What the builder holds: rows combined by AND/OR, then (always AND) a drawn area the
/// features must intersect and a time window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuerySpec {
    #[serde(default)]
    pub combine: Combine,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// A polygon's ring in CRS84 lon/lat (a drawn rectangle is its 4 corners); closed here.
    #[serde(default)]
    pub area: Option<Vec<[f64; 2]>>,
    #[serde(default)]
    pub time: Option<TimeWindow>,
}

/// A property name as CQL2 text: always double-quoted (Chinese names, spaces, keywords).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A text literal: single-quoted, `'` doubled.
pub fn text_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn input(what: &str, message: impl Into<String>) -> AppError {
    AppError::Input { field: what.to_owned(), message: message.into() }
}

/// One operand of `kind` as a CQL2 literal.
fn literal(kind: FieldKind, raw: &str, what: &str) -> Result<String, AppError> {
    let v = raw.trim();
    Ok(match kind {
        FieldKind::Text => text_literal(raw),
        FieldKind::Integer => {
            v.parse::<i64>().map_err(|_| input(what, format!("`{raw}` is not an integer / 不是整数")))?.to_string()
        }
        FieldKind::Number => {
            let n: f64 = v.parse().map_err(|_| input(what, format!("`{raw}` is not a number / 不是数字")))?;
            if !n.is_finite() {
                return Err(input(what, format!("`{raw}` is not a finite number / 不是有限数字")));
            }
            v.to_owned()
        }
        FieldKind::Boolean => match v.to_lowercase().as_str() {
            "true" | "是" | "1" => "TRUE".into(),
            "false" | "否" | "0" => "FALSE".into(),
            _ => return Err(input(what, format!("`{raw}` is not true/false / 不是 是/否"))),
        },
        FieldKind::Date => {
            let d: jiff::civil::Date =
                v.parse().map_err(|_| input(what, format!("`{raw}` is not a date YYYY-MM-DD / 不是日期")))?;
            format!("DATE('{d}')")
        }
        FieldKind::DateTime => format!("TIMESTAMP('{}')", instant(v, what)?),
        FieldKind::Geometry => return Err(input(what, "a geometry field takes IS NULL / IS NOT NULL only")),
    })
}

/// An instant as the server needs it (with an offset): a date-time without one (what an
/// `<input type=datetime-local>` gives) is Beijing time, a bare date its 00:00.
pub fn instant(v: &str, what: &str) -> Result<String, AppError> {
    let v = v.trim();
    if let Ok(t) = v.parse::<jiff::Timestamp>() {
        return Ok(t.to_string());
    }
    let bad = || input(what, format!("`{v}` is not a date-time / 不是日期时间"));
    let civil: jiff::civil::DateTime = match v.parse() {
        Ok(dt) => dt,
        Err(_) => v.parse::<jiff::civil::Date>().map_err(|_| bad())?.to_datetime(jiff::civil::Time::midnight()),
    };
    let z = civil.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8))).map_err(|_| bad())?;
    Ok(z.timestamp().to_string())
}

/// One row as CQL2 text.
pub fn condition_text(c: &Condition, index: usize) -> Result<String, AppError> {
    let what = format!("条件 {} ({})", index + 1, c.field);
    if c.field.trim().is_empty() {
        return Err(input(&what, "no field chosen / 未选择字段"));
    }
    let id = ident(&c.field);
    let one = |i: usize| -> Result<String, AppError> {
        let raw = c.values.get(i).map(String::as_str).unwrap_or("");
        if raw.trim().is_empty() && c.kind != FieldKind::Text {
            return Err(input(&what, "a value is missing / 缺少值"));
        }
        literal(c.kind, raw, &what)
    };
    Ok(match c.op {
        Op::IsNull | Op::IsNotNull => format!("{id} {}", c.op.text()),
        Op::Between => format!("{id} BETWEEN {} AND {}", one(0)?, one(1)?),
        Op::In => {
            // One value per entry; a single entry may also list them comma-separated.
            let items: Vec<&str> =
                c.values.iter().flat_map(|v| v.split([',', '，'])).map(str::trim).filter(|v| !v.is_empty()).collect();
            if items.is_empty() {
                return Err(input(&what, "IN needs at least one value / IN 至少需要一个值"));
            }
            let lits = items.iter().map(|v| literal(c.kind, v, &what)).collect::<Result<Vec<_>, _>>()?;
            format!("{id} IN ({})", lits.join(", "))
        }
        Op::Like => {
            if c.kind != FieldKind::Text {
                return Err(input(&what, "LIKE compares text only / LIKE 仅用于文本"));
            }
            format!("{id} LIKE {}", one(0)?)
        }
        op => format!("{id} {} {}", op.text(), one(0)?),
    })
}

/// A polygon literal of a ring of lon/lat corners (closed if it is not).
pub fn polygon_text(ring: &[[f64; 2]]) -> Result<String, AppError> {
    let mut pts: Vec<[f64; 2]> = ring.to_vec();
    if pts.first() != pts.last()
        && let Some(f) = pts.first().copied()
    {
        pts.push(f);
    }
    if pts.len() < 4 {
        return Err(input("空间范围", "draw at least 3 corners / 至少需要 3 个角点"));
    }
    if pts.iter().flatten().any(|v| !v.is_finite()) {
        return Err(input("空间范围", "a corner is not a number"));
    }
    let coords: Vec<String> = pts.iter().map(|[x, y]| format!("{x} {y}")).collect();
    Ok(format!("POLYGON(({}))", coords.join(", ")))
}

/// The whole filter as CQL2 text; `None` when the builder holds nothing.
pub fn cql2_text(spec: &QuerySpec) -> Result<Option<String>, AppError> {
    let mut parts: Vec<String> = Vec::new();
    let rows = spec.conditions.iter().enumerate().map(|(i, c)| condition_text(c, i)).collect::<Result<Vec<_>, _>>()?;
    match rows.len() {
        0 => {}
        1 => parts.extend(rows),
        _ => {
            let sep = match spec.combine {
                Combine::And => " AND ",
                Combine::Or => " OR ",
            };
            parts.push(if spec.combine == Combine::Or && (spec.area.is_some() || spec.time.is_some()) {
                format!("({})", rows.join(sep))
            } else {
                rows.join(sep)
            });
        }
    }
    if let Some(ring) = &spec.area {
        parts.push(format!("S_INTERSECTS(\"geometry\", {})", polygon_text(ring)?));
    }
    if let Some(t) = &spec.time {
        let what = format!("时间 ({})", t.field);
        if !matches!(t.kind, FieldKind::Date | FieldKind::DateTime) {
            return Err(input(&what, "choose a date or date-time field / 请选择日期字段"));
        }
        let from = t.from.as_deref().filter(|s| !s.trim().is_empty());
        let to = t.to.as_deref().filter(|s| !s.trim().is_empty());
        let id = ident(&t.field);
        match (from, to) {
            (None, None) => return Err(input(&what, "give a start or an end / 请填写起止时间")),
            (Some(a), None) => parts.push(format!("{id} >= {}", literal(t.kind, a, &what)?)),
            (None, Some(b)) => parts.push(format!("{id} <= {}", literal(t.kind, b, &what)?)),
            (Some(a), Some(b)) => {
                parts.push(format!("{id} BETWEEN {} AND {}", literal(t.kind, a, &what)?, literal(t.kind, b, &what)?));
            }
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join(" AND ")))
}

/// A column sort of the table as `sortby` (`-field` descending).
pub fn sortby(field: &str, descending: bool) -> String {
    format!("{}{field}", if descending { "-" } else { "+" })
}

/// `entity_id IN (…)` of a selection, in groups small enough for one request's filter (the
/// server bounds filter text at 16 KiB): the export of a selection reads it group by group.
pub fn id_filters(ids: &[String], group: usize) -> Vec<String> {
    ids.chunks(group.max(1))
        .map(|c| format!("\"entity_id\" IN ({})", c.iter().map(|i| text_literal(i)).collect::<Vec<_>>().join(", ")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(field: &str, kind: FieldKind, op: Op, values: &[&str]) -> Condition {
        Condition { field: field.into(), kind, op, values: values.iter().map(|v| (*v).to_owned()).collect() }
    }

    #[test]
    fn rows_become_cql2_text() {
        let spec = QuerySpec {
            combine: Combine::Or,
            conditions: vec![
                cond("名称", FieldKind::Text, Op::Like, &["%珞喻路%"]),
                cond("埋深", FieldKind::Number, Op::Between, &["1.5", "3"]),
                cond("状态", FieldKind::Text, Op::In, &["1, 2", "3"]),
            ],
            area: Some(vec![[114.3, 30.5], [114.4, 30.5], [114.4, 30.6], [114.3, 30.6]]),
            time: Some(TimeWindow {
                field: "安装日期".into(),
                kind: FieldKind::Date,
                from: Some("2010-01-01".into()),
                to: None,
            }),
        };
        assert_eq!(
            cql2_text(&spec).unwrap().unwrap(),
            "(\"名称\" LIKE '%珞喻路%' OR \"埋深\" BETWEEN 1.5 AND 3 OR \"状态\" IN ('1', '2', '3')) AND \
             S_INTERSECTS(\"geometry\", POLYGON((114.3 30.5, 114.4 30.5, 114.4 30.6, 114.3 30.6, 114.3 30.5))) AND \
             \"安装日期\" >= DATE('2010-01-01')"
        );
        assert_eq!(cql2_text(&QuerySpec::default()).unwrap(), None);
    }

    #[test]
    fn literals_are_escaped_and_checked_by_type() {
        let t = |c: Condition| condition_text(&c, 0);
        assert_eq!(t(cond("a\"b", FieldKind::Text, Op::Eq, &["O'Brien"])).unwrap(), "\"a\"\"b\" = 'O''Brien'");
        assert_eq!(t(cond("n", FieldKind::Integer, Op::Ge, &[" 12 "])).unwrap(), "\"n\" >= 12");
        assert_eq!(t(cond("b", FieldKind::Boolean, Op::Eq, &["是"])).unwrap(), "\"b\" = TRUE");
        assert_eq!(t(cond("x", FieldKind::Text, Op::IsNull, &[])).unwrap(), "\"x\" IS NULL");
        assert_eq!(
            t(cond("t", FieldKind::DateTime, Op::Lt, &["2026-12-06T08:00"])).unwrap(),
            "\"t\" < TIMESTAMP('2026-12-06T00:00:00Z')",
            "a local date-time is Beijing time"
        );
        let e = t(cond("埋深", FieldKind::Number, Op::Eq, &["深"])).unwrap_err().to_string();
        assert!(e.contains("条件 1 (埋深)") && e.contains("`深` is not a number"), "{e}");
        assert!(t(cond("n", FieldKind::Integer, Op::In, &[" , "])).unwrap_err().to_string().contains("IN needs"));
        assert!(t(cond("n", FieldKind::Integer, Op::Like, &["1"])).is_err());
        assert!(t(cond("d", FieldKind::Date, Op::Eq, &["2026-13-01"])).is_err());
        assert!(t(cond("", FieldKind::Text, Op::Eq, &["x"])).is_err());
    }

    #[test]
    fn polygons_close_and_need_three_corners() {
        assert_eq!(polygon_text(&[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]).unwrap(), "POLYGON((0 0, 1 0, 1 1, 0 0))");
        assert!(polygon_text(&[[0.0, 0.0], [1.0, 0.0]]).is_err());
    }

    #[test]
    fn selections_are_split_into_bounded_filters() {
        let ids: Vec<String> = (0..5).map(|i| format!("id-{i}")).collect();
        let f = id_filters(&ids, 2);
        assert_eq!(f.len(), 3);
        assert_eq!(f[2], "\"entity_id\" IN ('id-4')");
        assert_eq!(sortby("名称", true), "-名称");
    }

    #[test]
    fn queryables_become_fields_with_their_operators() {
        let q: Queryables = serde_json::from_str(
            r#"{"$schema":"s","$id":"i","type":"object","title":"t","additionalProperties":false,"properties":{
                "geometry":{"title":"几何","format":"geometry-any"},"埋深":{"title":"埋深（米）","type":"number"},
                "状态":{"title":"状态","type":"string","enum":["1","2"]},"安装日期":{"title":"安装日期","type":"string","format":"date"}}}"#,
        )
        .unwrap();
        let f = fields(&q);
        assert_eq!(
            f.iter().map(|f| f.kind).collect::<Vec<_>>(),
            [FieldKind::Geometry, FieldKind::Number, FieldKind::Text, FieldKind::Date]
        );
        assert!(f[1].ops.contains(&Op::Between) && !f[1].ops.contains(&Op::Like));
        assert_eq!(f[2].codes, ["1", "2"]);
        // The wire form of an operator is its CQL2 text.
        assert_eq!(serde_json::to_string(&Op::IsNotNull).unwrap(), "\"IS NOT NULL\"");
    }
}
