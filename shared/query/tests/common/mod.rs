//! Generators shared by the crate's two property tests — `tests.rs` (the SQLite dialect) and
//! `postgres.rs` (the PostgreSQL dialect): the layer schema, random features and random CQL2
//! filter texts. Each test passes its own vocabulary ([`FeatureWords`], [`FilterWords`]; the
//! PostgreSQL one adds lines, polygons and harder strings), and the shape of what is generated
//! stays one and the same.

use std::collections::HashSet;

use proptest::prelude::*;
use proptest::strategy::Union;
use shikong_model::{CodeItem, EntityId, Feature, FieldDef, FieldType, Geometry, LayerSchema, ValidTime, Value, time};
use shikong_query::Filter;

/// The test layer: every field type, a Chinese field name, a code list.
pub fn schema() -> LayerSchema {
    let mut status = FieldDef::new("status", FieldType::Code);
    status.codes =
        vec![CodeItem { code: "1".into(), label: "完好".into() }, CodeItem { code: "2".into(), label: "破损".into() }];
    LayerSchema {
        fields: vec![
            FieldDef::new("名称", FieldType::Text),
            FieldDef::new("depth", FieldType::Real),
            FieldDef::new("count", FieldType::Integer),
            FieldDef::new("ok", FieldType::Bool),
            FieldDef::new("built", FieldType::Date),
            FieldDef::new("checked", FieldType::DateTime),
            status,
            FieldDef::new("note", FieldType::Text),
        ],
    }
}

pub const INSTANTS: &[&str] = &[
    "2019-12-31T15:59:59.999Z",
    "2019-12-31T16:00:00.000Z",
    "2020-06-01T00:00:00.000Z",
    "2024-12-31T15:59:59.999Z",
    "2024-12-31T16:00:00.000Z",
    "2025-06-01T00:30:00.000Z",
];
pub const DATES: &[&str] = &["2019-05-20", "2020-01-01", "2024-12-31", "2025-01-01"];
pub const CODES: &[&str] = &["420111-JG-0001", "420111-JG-0002", "420102-FM-0001"];

pub fn instant(i: usize) -> jiff::Timestamp {
    time::parse_instant(INSTANTS[i]).unwrap()
}

pub fn opt<T: std::fmt::Debug + Clone + 'static>(s: impl Strategy<Value = T> + 'static) -> BoxedStrategy<Option<T>> {
    prop_oneof![1 => Just(None), 3 => s.prop_map(Some)].boxed()
}

/// The values a test's random features draw from.
pub struct FeatureWords {
    /// For the text fields `名称` and `note`.
    pub texts: &'static [&'static str],
    /// For `depth` (the integer 2 is drawn besides).
    pub reals: &'static [f64],
    /// For `count`.
    pub integers: &'static [i64],
    /// The geometries.
    pub geometry: fn() -> BoxedStrategy<Geometry>,
}

/// A random feature of [`schema`] (any property may be missing) and the version it is matched at.
pub fn feature(w: &FeatureWords) -> impl Strategy<Value = (Feature, Option<i64>)> + use<> {
    let props = (
        opt(prop::sample::select(w.texts)),
        opt(prop_oneof![prop::sample::select(w.reals).prop_map(Value::Real), Just(Value::Integer(2)),]),
        opt(prop::sample::select(w.integers)),
        opt(any::<bool>()),
        opt(prop::sample::select(DATES)),
        opt(0..INSTANTS.len()),
        opt(prop::sample::select(vec!["1", "2"])),
        opt(prop::sample::select(w.texts)),
    );
    let system =
        (0..3u128, prop::sample::select(CODES), opt((w.geometry)()), (opt(0..3usize), opt(3..6usize)), opt(1..5i64));
    (props, system).prop_map(
        |((name, depth, count, ok, built, checked, status, note), (id, code, geometry, valid, version))| {
            let mut properties = shikong_model::Properties::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    properties.insert(k.to_owned(), v);
                }
            };
            put("名称", name.map(Value::from));
            put("depth", depth);
            put("count", count.map(Value::Integer));
            put("ok", ok.map(Value::Bool));
            put("built", built.map(|d| Value::Date(time::parse_date(d).unwrap())));
            put("checked", checked.map(|i| Value::DateTime(instant(i))));
            put("status", status.map(Value::from));
            put("note", note.map(Value::from));
            let feature = Feature {
                id: EntityId::from_uuid(uuid::Uuid::from_u128(0x0192f3c4_0000_7000_8000_000000000000 + id)),
                code: code.to_owned(),
                geometry,
                valid: ValidTime { from: valid.0.map(instant), to: valid.1.map(instant) },
                properties,
            };
            (feature, version)
        },
    )
}

pub fn pick(items: &[&str]) -> BoxedStrategy<String> {
    prop::sample::select(items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).boxed()
}

fn cmp_op() -> BoxedStrategy<String> {
    pick(&["=", "<>", "<", "<=", ">", ">="])
}

fn quoted(items: &[&str]) -> BoxedStrategy<String> {
    prop::sample::select(items.iter().map(|s| format!("'{}'", s.replace('\'', "''"))).collect::<Vec<_>>()).boxed()
}

fn timestamp_literal() -> BoxedStrategy<String> {
    prop_oneof![
        prop::sample::select(INSTANTS).prop_map(|s| format!("TIMESTAMP('{s}')")),
        prop::sample::select(DATES).prop_map(|s| format!("DATE('{s}')")),
    ]
    .boxed()
}

fn time_span_literal() -> BoxedStrategy<String> {
    let bound = prop_oneof![
        1 => Just("'..'".to_owned()),
        3 => prop::sample::select(INSTANTS).prop_map(|s| format!("'{s}'")),
        2 => prop::sample::select(DATES).prop_map(|s| format!("'{s}'")),
    ];
    prop_oneof![
        timestamp_literal(),
        (bound.clone(), bound).prop_filter_map("start after end", |(a, b)| {
            (bound_ms(&a, false) <= bound_ms(&b, true)).then(|| format!("INTERVAL({a}, {b})"))
        }),
    ]
    .boxed()
}

/// The instant (in ms) a quoted interval bound stands for: a date is its first or last Beijing
/// millisecond.
fn bound_ms(quoted: &str, end: bool) -> i64 {
    let s = quoted.trim_matches('\'');
    if s == ".." {
        return if end { i64::MAX } else { i64::MIN };
    }
    match time::parse_date(s) {
        Ok(d) if s.len() == 10 => {
            let day = if end { d.tomorrow().unwrap() } else { d };
            time::parse_instant(&day.to_string()).unwrap().as_millisecond() - i64::from(end)
        }
        _ => time::parse_instant(s).unwrap().as_millisecond(),
    }
}

/// The words a test's random filters are made of.
pub struct FilterWords {
    /// Number literals.
    pub numbers: &'static [&'static str],
    /// Numeric expressions over the properties.
    pub numerics: &'static [&'static str],
    /// Text properties (and `casei` of them).
    pub text_props: &'static [&'static str],
    /// Text literals (unquoted) compared with them.
    pub text_literals: &'static [&'static str],
    /// LIKE patterns (unquoted).
    pub patterns: &'static [&'static str],
    pub spatial_ops: &'static [&'static str],
    /// Geometry literals the spatial operators test against.
    pub regions: &'static [&'static str],
    /// Whether to draw negated spatial predicates (`NOT s_…(geometry, …)`) too.
    pub negated_spatial: bool,
}

/// One predicate of a random filter.
fn atom(w: &FilterWords) -> BoxedStrategy<String> {
    let number = pick(w.numbers);
    let numeric = pick(w.numerics);
    let text_prop = pick(w.text_props);
    let text_lit = quoted(w.text_literals);
    let pattern = quoted(w.patterns);
    let any_prop = pick(&[
        "名称",
        "depth",
        "count",
        "ok",
        "built",
        "checked",
        "status",
        "note",
        "geometry",
        "valid_from",
        "valid_to",
        "version",
        "code",
    ]);
    let spans =
        pick(&["checked", "INTERVAL(valid_from, valid_to)", "valid_from", "valid_to", "INTERVAL(valid_from, checked)"]);
    let temporal_op = pick(&[
        "t_after",
        "t_before",
        "t_contains",
        "t_disjoint",
        "t_during",
        "t_equals",
        "t_finishedBy",
        "t_finishes",
        "t_intersects",
        "t_meets",
        "t_metBy",
        "t_overlappedBy",
        "t_overlaps",
        "t_startedBy",
        "t_starts",
    ]);
    let spatial_op = pick(w.spatial_ops);
    let region = pick(w.regions);
    let mut arms = vec![
        (numeric.clone(), cmp_op(), number.clone()).prop_map(|(p, o, n)| format!("{p} {o} {n}")).boxed(),
        (numeric.clone(), cmp_op(), numeric.clone()).prop_map(|(p, o, q)| format!("{p} {o} {q}")).boxed(),
        (text_prop.clone(), cmp_op(), text_lit.clone()).prop_map(|(p, o, l)| format!("{p} {o} {l}")).boxed(),
        (text_prop.clone(), pattern.clone()).prop_map(|(p, l)| format!("{p} LIKE {l}")).boxed(),
        pattern.prop_map(|l| format!("casei(名称) LIKE casei({l})")).boxed(),
        (text_prop, prop::collection::vec(text_lit, 1..4))
            .prop_map(|(p, l)| format!("{p} IN ({})", l.join(", ")))
            .boxed(),
        (numeric.clone(), prop::collection::vec(number.clone(), 1..4))
            .prop_map(|(p, l)| format!("{p} IN ({})", l.join(", ")))
            .boxed(),
        (numeric, number.clone(), number).prop_map(|(p, a, b)| format!("{p} BETWEEN {a} AND {b}")).boxed(),
        any_prop.prop_map(|p| format!("{p} IS NULL")).boxed(),
        pick(&["ok", "ok = true", "ok = false", "ok <> true", "true", "false"]),
        (cmp_op(), quoted(DATES)).prop_map(|(o, d)| format!("built {o} DATE({d})")).boxed(),
        (pick(&["checked", "valid_from", "valid_to"]), cmp_op(), timestamp_literal())
            .prop_map(|(p, o, l)| format!("{p} {o} {l}"))
            .boxed(),
        (pick(&["checked", "valid_from", "valid_to"]), cmp_op(), pick(&["checked", "valid_from", "valid_to"]))
            .prop_map(|(p, o, q)| format!("{p} {o} {q}"))
            .boxed(),
        (temporal_op.clone(), spans.clone(), time_span_literal())
            .prop_map(|(o, s, l)| format!("{o}({s}, {l})"))
            .boxed(),
        (temporal_op.clone(), time_span_literal(), spans.clone())
            .prop_map(|(o, l, s)| format!("{o}({l}, {s})"))
            .boxed(),
        (temporal_op.clone(), spans.clone(), spans).prop_map(|(o, a, b)| format!("{o}({a}, {b})")).boxed(),
        (temporal_op, quoted(DATES)).prop_map(|(o, d)| format!("{o}(built, DATE({d}))")).boxed(),
        (spatial_op.clone(), region.clone()).prop_map(|(o, r)| format!("{o}(geometry, {r})")).boxed(),
    ];
    if w.negated_spatial {
        arms.push((spatial_op, region).prop_map(|(o, r)| format!("NOT {o}(geometry, {r})")).boxed());
    }
    Union::new(arms).boxed()
}

/// A random CQL2 filter: predicates under AND, OR and NOT, up to three levels deep.
pub fn filter_text(w: &FilterWords) -> impl Strategy<Value = String> + use<> {
    atom(w).prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| format!("({})", v.join(" AND "))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| format!("({})", v.join(" OR "))),
            inner.prop_map(|p| format!("NOT ({p})")),
        ]
    })
}

/// Checks a plan's guarantees on `rows`, given the indexes its SQL `selected` (either dialect):
/// the SQL never loses a matching row, and the SQL plus the residual select exactly what
/// [`Filter::matches`] selects. `note` names the variant in the failure message.
pub fn check_agreement<P: std::fmt::Debug>(
    filter: &Filter,
    rows: &[(Feature, Option<i64>)],
    selected: &HashSet<usize>,
    (sql, params, residual): (&Option<String>, &[P], &Option<Filter>),
    note: &str,
) -> Result<(), TestCaseError> {
    for (i, (f, version)) in rows.iter().enumerate() {
        let expected = filter.matches(f, *version);
        let by_sql = selected.contains(&i);
        let by_plan = by_sql && residual.as_ref().is_none_or(|r| r.matches(f, *version));
        prop_assert!(
            !expected || by_sql,
            "SQL lost a matching row\nfilter: {filter}\nsql: {:?} {:?}\nrow: {f:?}",
            sql,
            params
        );
        prop_assert_eq!(
            by_plan,
            expected,
            "plan and matches disagree{}\nfilter: {}\nsql: {:?} {:?}\nresidual: {:?}\nrow: {:?} v{:?}",
            note,
            filter,
            sql,
            params,
            residual.as_ref().map(|r| r.to_string()),
            f,
            version
        );
    }
    Ok(())
}
