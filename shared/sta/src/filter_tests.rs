use super::*;
use crate::ast::Literal as L;
use EntityType as E;
use proptest::prelude::*;

fn ok(text: &str, ty: EntityType) -> Expr {
    parse_filter(text, Some(ty)).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn pos_err(text: &str, ty: EntityType) -> (usize, String) {
    match parse_filter(text, Some(ty)) {
        Err(StaError::Query { position, message, .. }) => (position, message),
        other => panic!("{text}: expected a query error, got {other:?}"),
    }
}

fn prop(p: &str) -> Box<Expr> {
    Box::new(Expr::Property(p.split('/').map(str::to_owned).collect()))
}

/// Filters from the specification, the conformance suites (ets-sta10/ets-sta11) and the
/// FROST/GOST documentation, each with the entity type they run on.
#[test]
fn spec_and_conformance_filters_parse() {
    let cases: &[(&str, EntityType)] = &[
        ("result lt 10.00", E::Observation),
        ("result gt 5", E::Observation),
        ("result ge 5 and result le 15", E::Observation),
        ("result lt 5 or result gt 15", E::Observation),
        ("(result sub 5) eq 45", E::Observation),
        ("result mod 2 eq 0", E::Observation),
        ("result eq 10 add 5", E::Observation),
        ("result eq 21 div 3", E::Observation),
        ("name eq 'test1'", E::Datastream),
        ("not endswith(description,'milk')", E::Datastream),
        ("substringof('temp',name)", E::Sensor),
        ("contains(name,'temperature')", E::Sensor),
        ("startswith(name,'temp') eq true", E::Sensor),
        ("length(description) le 22", E::Thing),
        ("indexof(description,'thing') eq 1", E::Thing),
        ("substring(description,1) eq 'he first thing.'", E::Thing),
        ("substring(description,2,4) eq 'e fi'", E::Thing),
        ("tolower(name) eq 'thing 1'", E::Thing),
        ("toupper(name) eq 'THING 1'", E::Thing),
        ("trim(name) eq 'Thing 1'", E::Thing),
        ("concat(name,'x') eq 'Thing 1x'", E::Thing),
        ("year(phenomenonTime) eq 2016", E::Observation),
        ("month(phenomenonTime) eq 1 and day(phenomenonTime) eq 1", E::Observation),
        ("hour(resultTime) eq 1 and minute(resultTime) eq 1 and second(resultTime) eq 1", E::Observation),
        ("date(phenomenonTime) eq 2016-01-01", E::Observation),
        ("time(phenomenonTime) eq time(2016-01-01T01:01:01.000Z)", E::Observation),
        ("phenomenonTime gt now()", E::Observation),
        ("phenomenonTime gt 2022-11-16T08:06:00.000Z and phenomenonTime lt 2022-11-17T08:06:00.000Z", E::Observation),
        ("resultTime eq 2016-01-01T01:01:01.000+01:00", E::Observation),
        ("validTime eq 2016-01-01T01:01:01.000Z/2016-01-01T23:59:59.999Z", E::Observation),
        ("round(result) eq 4 and floor(result) eq 3 and ceiling(result) eq 4", E::Observation),
        ("Datastream/Thing/name eq 'Thing 1'", E::Observation),
        ("Datastream/@iot.id eq 1", E::Observation),
        ("id eq 1", E::Thing),
        ("properties/owner eq '王工'", E::Thing),
        ("properties/名称 eq '井盖'", E::Thing),
        ("geo.distance(location, geography'POINT(8 54.1)') lt 1", E::Location),
        ("geo.distance(FeatureOfInterest/feature, geography'POINT(8 54.1)') gt 1", E::Observation),
        ("geo.intersects(location, geography'LINESTRING(7.5 51, 7.5 54)')", E::Location),
        ("geo.length(location) gt 1", E::Location),
        ("st_within(location, geography'POLYGON((7.5 51.5, 7.5 53.5, 8.5 53.5, 8.5 51.5, 7.5 51.5))')", E::Location),
        (
            "st_within(HistoricalLocations/Locations/location, geography'POLYGON((7.5 51.5, 7.5 53.5, 8.5 53.5, 8.5 51.5, 7.5 51.5))')",
            E::Thing,
        ),
        ("st_contains(geography'POLYGON((7.5 51.5, 7.5 53.5, 8.5 53.5, 8.5 51.5, 7.5 51.5))', location)", E::Location),
        ("st_crosses(geography'LINESTRING(4.5 51, 4.5 54)', location)", E::Location),
        ("st_disjoint(location, geography'POINT(8 51)')", E::Location),
        ("st_equals(location, geography'POINT(8 53)')", E::Location),
        ("st_overlaps(location, geography'POLYGON((7.5 51.5, 7.5 53.5, 8.5 53.5, 8.5 51.5, 7.5 51.5))')", E::Location),
        ("st_touches(location, geography'POLYGON((8 53, 7.5 54.5, 8.5 54.5, 8 53))')", E::Location),
        ("st_intersects(location, geography'LINESTRING(7.5 51, 7.5 54)')", E::Location),
        (
            "st_relate(location, geography'POLYGON((7.5 51.5, 7.5 53.5, 8.5 53.5, 8.5 51.5, 7.5 51.5))', 'T********')",
            E::Location,
        ),
        ("phenomenonTime sub duration'P1D' gt 2016-01-01T00:00:00Z", E::Observation),
        ("result eq -3 and result ne -(2 add 1)", E::Observation),
        ("resultTime eq null", E::Observation),
        ("  result\tgt 1.5e3 ", E::Observation),
    ];
    for (text, ty) in cases {
        let e = ok(text, *ty);
        // the canonical text parses back to the same tree
        let again = ok(&e.to_string(), *ty);
        assert_eq!(again, e, "{text} → {e}");
    }
}

#[test]
fn precedence_and_shapes() {
    assert_eq!(
        ok("result gt 1 and result lt 5 or result eq 9", E::Observation),
        Expr::Or(vec![
            Expr::And(vec![
                Expr::Compare(CmpOp::Gt, prop("result"), Box::new(Expr::Literal(L::Int(1)))),
                Expr::Compare(CmpOp::Lt, prop("result"), Box::new(Expr::Literal(L::Int(5)))),
            ]),
            Expr::Compare(CmpOp::Eq, prop("result"), Box::new(Expr::Literal(L::Int(9)))),
        ])
    );
    assert_eq!(
        ok("result eq 1 add 2 mul 3", E::Observation),
        Expr::Compare(
            CmpOp::Eq,
            prop("result"),
            Box::new(Expr::Arith(
                ArithOp::Add,
                Box::new(Expr::Literal(L::Int(1))),
                Box::new(Expr::Arith(
                    ArithOp::Mul,
                    Box::new(Expr::Literal(L::Int(2))),
                    Box::new(Expr::Literal(L::Int(3)))
                )),
            )),
        )
    );
    assert_eq!(
        ok("not name eq 'x'", E::Thing),
        Expr::Not(Box::new(Expr::Compare(CmpOp::Eq, prop("name"), Box::new(Expr::Literal(L::String("x".into()))))))
    );
    assert_eq!(ok("name eq 'it''s'", E::Thing).to_string(), "(name eq 'it''s')");
    assert_eq!(ok("result eq -9223372036854775808", E::Observation).to_string(), "(result eq -9223372036854775808)");
    assert_eq!(ok("result eq 99999999999999999999", E::Observation).to_string(), "(result eq 1e20)");
    assert!(
        matches!(ok("phenomenonTime eq 2016-01-01", E::Observation), Expr::Compare(_, _, b) if matches!(*b, Expr::Literal(L::Date(_))))
    );
}

#[test]
fn errors_point_at_the_character() {
    let cases: &[(&str, EntityType, usize, &str)] = &[
        ("name eq 'open", E::Thing, 9, "unterminated"),
        ("name eq", E::Thing, 8, "end of the expression"),
        ("(name eq 'a'", E::Thing, 13, "close the `(` at character 1"),
        ("name eq 'a')", E::Thing, 12, "after a complete expression"),
        ("colour eq 'red'", E::Thing, 1, "no property or navigation `colour`"),
        ("Datastream/Thing/colour eq 1", E::Observation, 1, "Thing has no property"),
        ("Datastream eq 1", E::Observation, 1, "not a value"),
        ("name/first eq 1", E::Thing, 1, "has no members"),
        ("foo(name)", E::Thing, 1, "unknown function `foo`"),
        ("length(name, 2) eq 1", E::Thing, 1, "takes 1 argument"),
        ("substring(name) eq 1", E::Thing, 1, "takes 2 to 3"),
        ("result eq 1 eq 2", E::Observation, 13, "do not chain"),
        ("result eq 1e999", E::Observation, 11, "out of range"),
        ("result eq 12abc", E::Observation, 13, "after a number"),
        ("result eq # ", E::Observation, 11, "unexpected character"),
        ("phenomenonTime gt 2016-01-01T00:00:00", E::Observation, 19, "offset"),
        ("phenomenonTime gt 2016-13-01", E::Observation, 19, "not a date"),
        ("phenomenonTime gt 2016-01-02T00:00:00Z/2016-01-01T00:00:00Z", E::Observation, 19, "ends before"),
        ("st_within(location, geography'POINT(8')", E::Location, 21, "geography literal"),
        ("phenomenonTime gt now() sub duration'P1M'", E::Observation, 29, "fixed length"),
        ("name eq and", E::Thing, 9, "operator `and`"),
        ("name eq 'a' and", E::Thing, 16, "end of the expression"),
        ("geo.distance(location geography'POINT(1 2)')", E::Location, 23, "expected `,` or `)`"),
        ("Datastream/ eq 1", E::Observation, 13, "after `/`"),
    ];
    for (text, ty, pos, needle) in cases {
        let (p, m) = pos_err(text, *ty);
        assert!(m.contains(needle), "{text}: {m}");
        assert_eq!(p, *pos, "{text}: {m}");
    }
}

#[test]
fn hostile_input_is_refused_without_panic() {
    // deep parentheses: refused at the 33rd
    let deep = format!("{}result eq 1{}", "(".repeat(1_000), ")".repeat(1_000));
    let (p, m) = pos_err(&deep, E::Observation);
    assert_eq!(p, 33);
    assert!(m.contains("deeper than 32"), "{m}");
    // more parentheses than tokens allowed: refused by the token bound before parsing
    let deeper = format!("{}result eq 1{}", "(".repeat(5_000), ")".repeat(5_000));
    assert!(matches!(parse_filter(&deeper, None), Err(StaError::TooLarge { .. })));
    // deep not / minus / calls
    assert!(parse_filter(&format!("{}true", "not ".repeat(5000)), None).is_err());
    assert!(parse_filter(&format!("result eq {}1", "-(".repeat(5000)), None).is_err());
    assert!(parse_filter(&format!("{}'a'{}", "tolower(".repeat(5000), ")".repeat(5000)), None).is_err());
    // a long arithmetic chain deepens the tree: refused, not a stack overflow later
    let chain = format!("result eq 1{}", " add 1".repeat(100));
    assert!(pos_err(&chain, E::Observation).1.contains("deeper"));
    // 31 levels are fine
    let ok31 = format!("{}result eq 1{}", "(".repeat(31), ")".repeat(31));
    assert!(parse_filter(&ok31, Some(E::Observation)).is_ok());
    // long flat or-lists are fine (n-ary), up to the token limit
    let wide = vec!["result eq 1"; 500].join(" or ");
    assert!(parse_filter(&wide, Some(E::Observation)).is_ok());
    let too_wide = vec!["result eq 1"; 2000].join(" or ");
    assert!(matches!(parse_filter(&too_wide, None), Err(StaError::TooLarge { .. })));
    assert!(matches!(parse_filter(&"x".repeat(MAX_CHARS + 1), None), Err(StaError::TooLarge { .. })));
    // huge numbers, unterminated strings and geometry literals
    assert!(parse_filter(&format!("result eq {}", "9".repeat(5000)), None).is_err());
    assert!(parse_filter("name eq '", None).is_err());
    assert!(parse_filter("st_within(location, geography'POINT(1 2)", None).is_err());
    assert!(parse_filter("result eq .", None).is_err());
    assert!(parse_filter("", None).is_err());
    assert!(parse_filter(")", None).is_err());
}

fn arb_literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(L::Null),
        any::<bool>().prop_map(L::Bool),
        any::<i64>().prop_map(L::Int),
        any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(L::Float),
        "[a-z 井盖'’]{0,8}".prop_map(L::String),
        (0i64..4_000_000_000, 0i32..1_000_000_000)
            .prop_map(|(s, n)| L::DateTime(jiff::Timestamp::new(s, n).unwrap_or_default())),
        (1i16..9999, 1i8..=12, 1i8..=28).prop_map(|(y, m, d)| L::Date(civil::date(y, m, d))),
        (0i64..1_000_000, 0i64..1_000_000).prop_map(|(a, b)| L::Duration(jiff::SignedDuration::from_secs(a.min(b)))),
    ]
}

fn arb_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        arb_literal().prop_map(Expr::Literal),
        prop::sample::select(vec!["name", "result", "Datastream/Thing/name", "properties/x", "id"])
            .prop_map(|p| Expr::Property(p.split('/').map(str::to_owned).collect())),
    ];
    leaf.prop_recursive(6, 48, 4, |inner| {
        let cmp = prop::sample::select(vec![CmpOp::Eq, CmpOp::Ne, CmpOp::Gt, CmpOp::Ge, CmpOp::Lt, CmpOp::Le]);
        let ar = prop::sample::select(vec![ArithOp::Add, ArithOp::Sub, ArithOp::Mul, ArithOp::Div, ArithOp::Mod]);
        let func = prop::sample::select(vec![Function::ToLower, Function::Length, Function::Round, Function::Year]);
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            (cmp, inner.clone(), inner.clone()).prop_map(|(o, a, b)| Expr::Compare(o, Box::new(a), Box::new(b))),
            (ar, inner.clone(), inner.clone()).prop_map(|(o, a, b)| Expr::Arith(o, Box::new(a), Box::new(b))),
            (func, inner.clone()).prop_map(|(f, a)| Expr::Call(f, vec![a])),
            (inner.clone(), inner).prop_map(|(a, b)| Expr::Call(Function::Concat, vec![a, b])),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn canonical_text_round_trips(e in arb_expr()) {
        let text = e.to_string();
        let back = parse_filter(&text, None);
        prop_assert_eq!(back, Ok(e), "{}", text);
    }

    #[test]
    fn arbitrary_text_never_panics(s in "[ -~井()']{0,200}") {
        let _ = parse_filter(&s, Some(EntityType::Observation));
    }
}
