use super::*;
use EntityType as E;

fn q(raw: &str, ty: EntityType) -> QueryOptions {
    parse_query(raw, ty).unwrap_or_else(|e| panic!("{raw}: {e}"))
}

fn q_err(raw: &str, ty: EntityType) -> (String, usize, String) {
    match parse_query(raw, ty) {
        Err(StaError::Query { option, position, message }) => (option, position, message),
        other => panic!("{raw}: expected a query error, got {other:?}"),
    }
}

/// Request forms of the specification and the conformance suites.
#[test]
fn spec_query_options() {
    let o = q("$top=3&$skip=2&$count=true&$resultFormat=dataArray", E::Observation);
    assert_eq!(
        (o.top, o.skip, o.count, o.result_format),
        (Some(3), Some(2), Some(true), Some(ResultFormat::DataArray))
    );

    let o = q("$select=id,name,Datastreams", E::Thing);
    assert_eq!(o.select, ["id", "name", "Datastreams"]);
    assert_eq!(q("$select=@iot.id", E::Thing).select, ["id"]);

    let o = q("$orderby=phenomenonTime%20desc,result", E::Observation);
    assert_eq!(o.orderby.len(), 2);
    assert!(o.orderby[0].descending && !o.orderby[1].descending);
    assert_eq!(o.orderby[0].expr, Expr::Property(vec!["phenomenonTime".into()]));
    let o = q("$orderby=name+asc", E::Thing);
    assert!(!o.orderby[0].descending);
    let o = q("$orderby=geo.distance(location,%20geography'POINT(1%202)')%20desc", E::Location);
    assert!(o.orderby[0].descending);

    let o = q("$filter=result%20gt%205%20and%20phenomenonTime%20lt%202016-01-01T00:00:00%2B08:00", E::Observation);
    assert!(matches!(o.filter, Some(Expr::And(_))));

    // nested $expand with options (QGIS's and the spec's forms)
    let o = q(
        "$expand=Datastreams($filter=name%20eq%20'a;b';$top=2;$expand=Observations($orderby=phenomenonTime%20desc;$top=1)),Locations",
        E::Thing,
    );
    assert_eq!(o.expand.len(), 2);
    let ds = &o.expand[0];
    assert_eq!((ds.nav, ds.target), ("Datastreams", E::Datastream));
    assert_eq!(ds.options.top, Some(2));
    assert!(ds.options.filter.is_some());
    let obs = &ds.options.expand[0];
    assert_eq!((obs.nav, obs.options.top), ("Observations", Some(1)));
    assert!(obs.options.orderby[0].descending);
    assert_eq!(o.expand[1].nav, "Locations");

    // a path expands each step
    let o = q("$expand=Datastreams/ObservedProperty($select=name)", E::Thing);
    let op = &o.expand[0].options.expand[0];
    assert_eq!((op.nav, op.target), ("ObservedProperty", E::ObservedProperty));
    assert_eq!(op.options.select, ["name"]);

    let o = q("$expand=Locations($orderby=id%20desc;$top=3;$expand=Things($top=101))", E::Thing);
    assert_eq!(o.expand[0].options.expand[0].options.top, Some(101));

    // non-$ parameters are the caller's
    assert_eq!(q("token=abc&$top=1", E::Thing).top, Some(1));
}

#[test]
fn errors_name_option_and_position() {
    let (o, p, m) = q_err("$top=-1", E::Thing);
    assert_eq!((o.as_str(), p), ("$top", 1));
    assert!(m.contains("non-negative"), "{m}");
    assert!(q_err("$top=99999999999999999999999", E::Thing).2.contains("out of range"));
    assert!(q_err("$count=yes", E::Thing).2.contains("true"));
    assert!(q_err("$resultFormat=csv", E::Observation).2.contains("dataArray"));
    assert!(q_err("$format=json", E::Thing).2.contains("unknown query option"));
    assert!(q_err("$top=1&$top=2", E::Thing).2.contains("twice"));
    let (o, p, m) = q_err("$select=id,colour", E::Thing);
    assert_eq!((o.as_str(), p), ("$select", 4));
    assert!(m.contains("colour"), "{m}");
    let (o, p, m) = q_err("$filter=name%20eq%20'x", E::Thing);
    assert_eq!((o.as_str(), p), ("$filter", 9));
    assert!(m.contains("unterminated"), "{m}");
    // inside $expand: the position in the whole $expand value
    let (o, p, m) = q_err("$expand=Datastreams($filter=colour%20eq%201)", E::Thing);
    assert_eq!((o.as_str(), p), ("$expand", 21));
    assert!(m.contains("Datastream has no property"), "{m}");
    let (_, p, m) = q_err("$expand=Datastreams,Sensorz", E::Thing);
    assert_eq!(p, 13);
    assert!(m.contains("Thing has no navigation property `Sensorz`"), "{m}");
    let (_, p, _) = q_err("$expand=Datastreams($top=x)", E::Thing);
    assert_eq!(p, 18);
    let (_, _, m) = q_err("$expand=Datastreams($top=1", E::Thing);
    assert!(m.contains("expected `)`"), "{m}");
    let (_, _, m) = q_err("$expand=Datastreams($frobnicate=1)", E::Thing);
    assert!(m.contains("unknown query option"), "{m}");
    let (_, _, m) = q_err("$orderby=name%20desc,", E::Thing);
    assert!(m.contains("expression"), "{m}");
    assert!(parse_query("$filter=%FF", E::Thing).is_err());
}

#[test]
fn expand_bounds() {
    // depth: Things → Datastreams → Observations → FeatureOfInterest → Observations → Datastream → Thing
    let deep = "$expand=Datastreams($expand=Observations($expand=FeatureOfInterest($expand=Observations($expand=Datastream($expand=Thing)))))";
    let (o, _, m) = q_err(deep, E::Thing);
    assert_eq!(o, "$expand");
    assert!(m.contains("deeper than 5"), "{m}");
    assert!(
        parse_query("$expand=Datastreams/Observations/FeatureOfInterest/Observations/Datastream", E::Thing).is_ok()
    );
    assert!(
        parse_query("$expand=Datastreams/Observations/FeatureOfInterest/Observations/Datastream/Thing", E::Thing)
            .is_err()
    );
    // many items
    let many = vec!["Datastreams"; 60].join(",");
    assert!(matches!(parse_query(&format!("$expand={many}"), E::Thing), Err(StaError::TooLarge { .. })));
    // a huge query string
    let big = format!("$filter={}", "name%20eq%20'a'%20or%20".repeat(2000));
    assert!(matches!(parse_query(&big, E::Thing), Err(StaError::TooLarge { .. })));
    // deeply nested parentheses in $expand do not recurse without bound
    let nested = format!("$expand=Datastreams({}", "(".repeat(10_000));
    assert!(parse_query(&nested, E::Thing).is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

    /// Arbitrary option values (unbalanced parentheses, stray quotes and separators, broken
    /// percent-escapes) are answered with a value or an error, never a panic.
    #[test]
    fn arbitrary_options_never_panic(
        name in proptest::sample::select(vec!["$expand", "$filter", "$orderby", "$select", "$top"]),
        value in "[a-zA-Z$=();,'/ %0-9.-]{0,120}",
    ) {
        let _ = parse_query(&format!("{name}={value}"), E::Thing);
        let _ = parse_query(&format!("{name}=Datastreams({value})"), E::Thing);
        let _ = crate::parse_request(&format!("/Things({value})/Datastreams"), &format!("{name}={value}"));
    }
}
