//! The PostgreSQL dialect's guarantee, as `tests.rs` checks SQLite's: for random features and
//! random CQL2 filters, the SQL of [`Filter::plan_postgres`] — run on a real PostgreSQL + PostGIS
//! (a private cluster from `shikong-pgtest`) against typed columns and against `jsonb` property
//! expressions — plus the residual select exactly what [`Filter::matches`] selects, and the SQL
//! alone never loses a matching row. Features carry points, lines and polygons, Chinese text,
//! quotes, backslashes and LIKE metacharacters, and nulls.

// Helpers outside `#[test]` functions unwrap too: here a panic is a test failure, as intended.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::Mutex;

use common::{FeatureWords, FilterWords, check_agreement, feature, filter_text};
use postgres::types::ToSql;
use postgres::{Client, NoTls};
use proptest::prelude::*;
use shikong_model::{Coord, EntityId, Feature, FieldType, Geometry, LayerSchema, ValidTime, Value, time};
use shikong_pgtest::Cluster;
use shikong_query::{Attribute, Filter, PgParam, QueryError, quote_identifier};

/// The test layer with its field ids (history rows keep properties under them).
fn schema() -> LayerSchema {
    let mut s = common::schema();
    for (i, f) in s.fields.iter_mut().enumerate() {
        f.id = format!("c{i}");
    }
    s
}

const TEXTS: &[&str] = &[
    "雨水井盖",
    "井盖",
    "阀门井",
    "武汉市洪山区",
    "Abc",
    "abc",
    "aBC",
    "a%b",
    "a_b",
    "axb",
    "",
    "ÀBC",
    "àbc",
    "a*b?[c]",
    "it's",
    r"a\b",
    "100%",
];

fn geometry() -> BoxedStrategy<Geometry> {
    let c = |x: i32, y: i32| Coord::xy(f64::from(x), f64::from(y));
    prop_oneof![
        3 => (0..4i32, 0..4i32).prop_map(move |(x, y)| Geometry::Point(c(x, y))),
        1 => (0..4i32, 0..4i32, 0..4i32, 0..4i32)
            .prop_filter("a line needs two points", |(a, b, x, y)| (a, b) != (x, y))
            .prop_map(move |(a, b, x, y)| Geometry::LineString(vec![c(a, b), c(x, y)])),
        1 => (0..3i32, 0..3i32, 1..3i32).prop_map(move |(x, y, s)| {
            Geometry::Polygon(vec![vec![c(x, y), c(x + s, y), c(x + s, y + s), c(x, y + s), c(x, y)]])
        }),
    ]
    .boxed()
}

const FEATURES: FeatureWords = FeatureWords {
    texts: TEXTS,
    reals: &[-1.5, 0.0, 1.0, 1.5, 2.5, 3.0, 9_007_199_254_740_992.0],
    integers: &[-2, 0, 1, 2, 3, 9_007_199_254_740_993, i64::MAX],
    geometry,
};

const FILTERS: FilterWords = FilterWords {
    numbers: &["-2", "0", "1", "1.5", "2", "2.5", "3", "9007199254740993", "9223372036854775807", "-1e300"],
    numerics: &["depth", "count", "version", "depth + count", "count / 2", "-depth", "depth * 2"],
    text_props: &["名称", "note", "status", "code", "casei(名称)", "casei(note)"],
    text_literals: &[
        "雨水井盖",
        "井盖",
        "武汉市洪山区",
        "武汉",
        "abc",
        "ABC",
        "a%b",
        "",
        "1",
        "2",
        "420111-JG-0001",
        "420111",
        "ÀBC",
        "àbc",
        "it's",
        r"a\b",
    ],
    patterns: &[
        "%", "井%", "%井%", "_盖", r"%\%%", r"a\_b", "a_b", "A%", "a%", "%b%", "a*b?[c]", "__井盖", "武汉%", "%洪山_",
        r"a\\b", "it's", "100%",
    ],
    spatial_ops: &[
        "s_intersects",
        "s_disjoint",
        "s_within",
        "s_contains",
        "s_equals",
        "s_touches",
        "s_crosses",
        "s_overlaps",
    ],
    regions: &[
        "BBOX(0, 0, 1, 1)",
        "BBOX(1, 1, 3, 2)",
        "BBOX(0, 0, 3, 3)",
        "POLYGON((0 0, 2 0, 2 2, 0 0))",
        "POLYGON((1 1, 3 1, 3 3, 1 3, 1 1))",
        "POINT(1 1)",
        "POINT(2 0)",
        "LINESTRING(0 0, 3 3)",
        "LINESTRING(0 1, 3 1)",
        "LINESTRING(1 0, 1 3)",
        "MULTIPOINT((0 0), (2 2))",
    ],
    negated_spatial: true,
};

/// The PostgreSQL type of a field (what the store's tables use).
fn pg_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Text | FieldType::Code | FieldType::Attachments => "text",
        FieldType::Integer => "bigint",
        FieldType::Real => "double precision",
        FieldType::Bool => "boolean",
        FieldType::Date => "date",
        FieldType::DateTime => "timestamptz",
    }
}

fn json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null | Value::Attachments(_) => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Integer(i) => (*i).into(),
        Value::Real(r) => (*r).into(),
        Value::Text(s) => s.as_str().into(),
        Value::Date(d) => d.to_string().into(),
        Value::DateTime(t) => time::gpkg_datetime(*t).into(),
    }
}

fn pg_value(ty: FieldType, v: Option<&Value>) -> Box<dyn ToSql + Sync> {
    match (v, ty) {
        (Some(Value::Bool(b)), _) => Box::new(*b),
        (Some(Value::Integer(i)), FieldType::Real) => Box::new(*i as f64),
        (Some(Value::Integer(i)), _) => Box::new(*i),
        (Some(Value::Real(r)), _) => Box::new(*r),
        (Some(Value::Text(s)), _) => Box::new(s.clone()),
        (Some(Value::Date(d)), _) => Box::new(*d),
        (Some(Value::DateTime(t)), _) => Box::new(*t),
        (_, FieldType::Integer) => Box::new(None::<i64>),
        (_, FieldType::Real) => Box::new(None::<f64>),
        (_, FieldType::Bool) => Box::new(None::<bool>),
        (_, FieldType::Date) => Box::new(None::<jiff::civil::Date>),
        (_, FieldType::DateTime) => Box::new(None::<jiff::Timestamp>),
        _ => Box::new(None::<String>),
    }
}

fn bind(p: &PgParam) -> Box<dyn ToSql + Sync> {
    match p {
        PgParam::Bool(b) => Box::new(*b),
        PgParam::Int(i) => Box::new(*i),
        PgParam::Real(r) => Box::new(*r),
        PgParam::Text(s) => Box::new(s.clone()),
        PgParam::Date(d) => Box::new(*d),
        PgParam::Timestamp(t) => Box::new(*t),
        PgParam::Geometry(wkb) => Box::new(wkb.clone()),
    }
}

/// Fills a temporary table `t` (dropped with the transaction): typed columns as the store's
/// current tables have them, and the same properties as `jsonb` keyed by field id as its history
/// rows do.
fn load(tx: &mut postgres::Transaction<'_>, rows: &[(Feature, Option<i64>)]) {
    let s = schema();
    let mut cols = vec![
        "fid bigint PRIMARY KEY".to_owned(),
        "entity_id uuid NOT NULL".to_owned(),
        "code text COLLATE \"zh-x-icu\" NOT NULL".to_owned(),
        "geom geometry(Geometry, 4490)".to_owned(),
        "valid_from timestamptz".to_owned(),
        "valid_to timestamptz".to_owned(),
        "version bigint".to_owned(),
        "props jsonb NOT NULL".to_owned(),
    ];
    // Text columns in a Chinese (pinyin) collation: the plan's order comparisons must still be
    // by code point, as the evaluator's are.
    let collate = |ty: &str| if ty == "text" { " COLLATE \"zh-x-icu\"" } else { "" };
    cols.extend(
        s.fields.iter().map(|f| format!("{} {}{}", quote_identifier(&f.name), pg_type(f.ty), collate(pg_type(f.ty)))),
    );
    tx.batch_execute(&format!("CREATE TEMP TABLE t ({}) ON COMMIT DROP", cols.join(", "))).unwrap();
    let names: Vec<String> = s.fields.iter().map(|f| quote_identifier(&f.name)).collect();
    let sql = format!(
        "INSERT INTO t (fid, entity_id, code, geom, valid_from, valid_to, version, props, {}) \
         VALUES ($1, $2, $3, ST_GeomFromWKB($4, 4490), $5, $6, $7, $8, {})",
        names.join(", "),
        (9..names.len() + 9).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
    );
    let insert = tx.prepare(&sql).unwrap();
    for (i, (f, version)) in rows.iter().enumerate() {
        let props: serde_json::Map<String, serde_json::Value> =
            s.fields.iter().filter_map(|fd| Some((fd.id.clone(), json(f.properties.get(&fd.name)?)))).collect();
        let mut values: Vec<Box<dyn ToSql + Sync>> = vec![
            Box::new(i as i64),
            Box::new(f.id.0),
            Box::new(f.code.clone()),
            Box::new(f.geometry.as_ref().map(shikong_model::wkb::to_vec)),
            Box::new(f.valid.from),
            Box::new(f.valid.to),
            Box::new(*version),
            Box::new(serde_json::Value::Object(props)),
        ];
        values.extend(s.fields.iter().map(|fd| pg_value(fd.ty, f.properties.get(&fd.name))));
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref()).collect();
        tx.execute(&insert, &refs).unwrap();
    }
}

/// Typed columns (the current table) or `jsonb` properties (history rows).
fn column(a: &Attribute, from_json: bool, map_version: bool) -> Option<String> {
    Some(match a {
        Attribute::Version if !map_version => return None,
        Attribute::EntityId => "entity_id::text".into(),
        Attribute::Geometry => "geom".into(),
        Attribute::Field(f) if from_json => format!("(props->>'{}')::{}", f.id, pg_type(f.ty)),
        a => quote_identifier(a.name()),
    })
}

fn run(
    tx: &mut postgres::Transaction<'_>,
    filter: &Filter,
    rows: &[(Feature, Option<i64>)],
    from_json: bool,
    map_version: bool,
) -> Result<(), TestCaseError> {
    let cols = |a: &Attribute| column(a, from_json, map_version);
    // One parameter of the caller's own comes first.
    let plan = filter.plan_postgres(&cols, 2);
    let selected: HashSet<usize> = {
        let sql = format!("SELECT fid FROM t WHERE fid >= $1 AND {}", plan.sql.as_deref().unwrap_or("TRUE"));
        let mut values: Vec<Box<dyn ToSql + Sync>> = vec![Box::new(0i64)];
        values.extend(plan.params.iter().map(bind));
        let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref()).collect();
        tx.query(&sql, &refs)
            .map_err(|e| TestCaseError::fail(format!("{sql}: {e:?}\nparams: {:?}", plan.params)))?
            .iter()
            .map(|r| r.get::<_, i64>(0) as usize)
            .collect()
    };
    check_agreement(
        filter,
        rows,
        &selected,
        (&plan.sql, &plan.params, &plan.residual),
        &format!(" (json: {from_json})"),
    )
}

/// One connection for the whole property test (each case in its own transaction).
fn client() -> &'static Mutex<Client> {
    static CLIENT: std::sync::OnceLock<Mutex<Client>> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        let url = Cluster::shared().fresh_db();
        Mutex::new(Client::connect(&url, NoTls).unwrap())
    })
}

fn check(text: &str, rows: &[(Feature, Option<i64>)], map_version: bool) -> Result<(), TestCaseError> {
    let filter = match Filter::parse_text(text, &schema()) {
        // Some comparisons of the valid-time interval with another property interval are
        // refused by design (see the temporal module); the generator writes a few.
        Err(QueryError::Unsupported { name, .. }) if name.starts_with("t_") => {
            return Err(TestCaseError::reject("valid time against a property interval"));
        }
        other => other.map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?,
    };
    let mut client = client().lock().unwrap_or_else(|p| p.into_inner());
    let mut tx = client.transaction().unwrap();
    load(&mut tx, rows);
    run(&mut tx, &filter, rows, false, map_version)?;
    run(&mut tx, &filter, rows, true, map_version)?;
    tx.rollback().unwrap();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn postgres_plan_agrees_with_matches(
        text in filter_text(&FILTERS),
        rows in prop::collection::vec(feature(&FEATURES), 1..30),
        map_version in any::<bool>(),
    ) {
        check(&text, &rows, map_version)?;
    }
}

fn row(properties: &[(&str, Value)], geometry: Option<Geometry>) -> (Feature, Option<i64>) {
    let f = Feature {
        id: EntityId::from_uuid(uuid::Uuid::from_u128(7)),
        code: "c".into(),
        geometry,
        valid: ValidTime::ALWAYS,
        properties: properties.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
    };
    (f, Some(1))
}

/// Values the generator rarely meets: integers beyond 2^53 against reals, NOT over nulls, every
/// spatial predicate on a polygon touching, crossing and overlapping the literal.
#[test]
fn edge_cases_agree_on_postgres() {
    let square = |x: f64, y: f64, s: f64| {
        Geometry::Polygon(vec![vec![
            Coord::xy(x, y),
            Coord::xy(x + s, y),
            Coord::xy(x + s, y + s),
            Coord::xy(x, y + s),
            Coord::xy(x, y),
        ]])
    };
    let rows = vec![
        row(
            &[("count", Value::Integer(9_007_199_254_740_993)), ("depth", Value::Real(1e308))],
            Some(square(0.0, 0.0, 1.0)),
        ),
        row(&[("count", Value::Integer(i64::MAX)), ("depth", Value::Integer(2))], Some(square(1.0, 0.0, 1.0))),
        row(&[("count", Value::Integer(1)), ("名称", Value::from("武汉市洪山区"))], Some(square(0.5, 0.5, 1.0))),
        row(&[("名称", Value::from(r"a\b")), ("note", Value::from("it's"))], None),
        row(&[("名称", Value::from("ÀBC")), ("count", Value::Integer(2))], Some(Geometry::Point(Coord::xy(1.0, 1.0)))),
    ];
    let cases = [
        "count = 9007199254740993",
        "count > 9007199254740992.0",
        "count < 9223372036854775807",
        "count >= 9223372036854775807",
        "depth > 9007199254740993",
        "depth IN (2, 9007199254740993)",
        "count IN (1.5, 9007199254740993)",
        "NOT (count = 1)",
        "depth * 10 > 0",
        "名称 LIKE '武汉%'",
        "名称 LIKE 'a\\\\b'",
        "note = 'it''s'",
        "名称 < 'a'",
        "名称 > '北京'",
        "casei(名称) = 'a\\b'",
        "casei(名称) = casei('ÀBC')",
        "casei(名称) LIKE casei('àb%')",
        "count < 2.5",
        "count > 1.5",
        "NOT (count <= 1.5)",
        "valid_to > TIMESTAMP('2030-01-01T00:00:00Z')",
        "t_intersects(INTERVAL(valid_from, valid_to), DATE('1900-01-01'))",
        "s_touches(geometry, BBOX(1, 0, 2, 1))",
        "s_overlaps(geometry, BBOX(0, 0, 1, 1))",
        "s_crosses(geometry, LINESTRING(-1 0.5, 3 0.5))",
        "s_within(geometry, BBOX(0, 0, 2, 1))",
        "s_contains(geometry, POINT(0.5 0.5))",
        "s_equals(geometry, POLYGON((0 0, 0 1, 1 1, 1 0, 0 0)))",
        "s_disjoint(geometry, POINT(5 5))",
        "NOT s_intersects(geometry, POINT(5 5))",
    ];
    for text in cases {
        let filter = Filter::parse_text(text, &schema()).unwrap();
        // All in SQL but the arithmetic (left to the residual: PostgreSQL raises an error on overflow).
        let plan = filter.plan_postgres(&|a: &Attribute| column(a, false, true), 1);
        assert_eq!(plan.residual.is_none(), !text.contains('*'), "{text}: {plan:?}");
        check(text, &rows, true).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
    // Spot checks of the evaluator's answers these cases are compared with.
    let m = |text: &str| -> Vec<bool> {
        let f = Filter::parse_text(text, &schema()).unwrap();
        rows.iter().map(|(r, v)| f.matches(r, *v)).collect()
    };
    // CQL2 numbers are doubles: the literal reads as 2^53, which no stored count equals.
    assert_eq!(m("count = 9007199254740993"), [false; 5]);
    assert_eq!(m("count > 9007199254740992.0"), [true, true, false, false, false]);
    assert_eq!(m("s_touches(geometry, BBOX(1, 0, 2, 1))"), [true, false, false, false, true]);
    assert_eq!(m("名称 LIKE 'a\\\\b'"), [false, false, false, true, false]);
    assert_eq!(m("casei(名称) = casei('ÀBC')"), [false, false, false, false, true]);
    assert_eq!(m("count < 2.5"), [false, false, true, false, true]);
}

/// The spatial SQL lets PostgreSQL use a GiST index on the geometry (the `&&` envelope test).
#[test]
fn spatial_filters_use_the_gist_index() {
    let mut client = client().lock().unwrap_or_else(|p| p.into_inner());
    let mut tx = client.transaction().unwrap();
    tx.batch_execute(
        "CREATE TEMP TABLE pts (fid bigint PRIMARY KEY, geom geometry(Geometry, 4490)) ON COMMIT DROP;
         INSERT INTO pts SELECT i, ST_SetSRID(ST_MakePoint(110 + (i % 100) * 0.1, 30 + (i / 100) * 0.1), 4490)
           FROM generate_series(0, 19999) i;
         CREATE INDEX pts_geom ON pts USING gist (geom);
         ANALYZE pts;",
    )
    .unwrap();
    let schema = LayerSchema { fields: Vec::new() };
    let cols = |a: &Attribute| matches!(a, Attribute::Geometry).then(|| "geom".to_owned());
    for text in [
        "s_intersects(geometry, BBOX(114, 31, 114.35, 31.35))",
        "s_within(geometry, POLYGON((114 31, 114.3 31, 114.3 31.3, 114 31.3, 114 31)))",
    ] {
        let plan = Filter::parse_text(text, &schema).unwrap().plan_postgres(&cols, 1);
        let sql = plan.sql.unwrap();
        let params: Vec<Box<dyn ToSql + Sync>> = plan.params.iter().map(bind).collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| b.as_ref()).collect();
        let explain: Vec<String> = tx
            .query(&format!("EXPLAIN SELECT fid FROM pts WHERE {sql}"), &refs)
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        assert!(explain.iter().any(|l| l.contains("pts_geom")), "{text}: no GiST index scan:\n{}", explain.join("\n"));
        let n = tx.query(&format!("SELECT fid FROM pts WHERE {sql}"), &refs).unwrap().len();
        assert!(n > 0 && n < 100, "{text}: {n} rows");
    }
    tx.rollback().unwrap();
}
