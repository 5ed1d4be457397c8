use super::*;
use crate::entity::EntityType as E;
use crate::filter::parse_filter;
use serde_json::json;

fn cx() -> EvalContext {
    EvalContext { now: "2026-01-01T00:00:00Z".parse().unwrap_or_default() }
}

fn sel(filter: &str, ty: E, entity: &Value) -> bool {
    let e = parse_filter(filter, Some(ty)).unwrap_or_else(|e| panic!("{filter}: {e}"));
    matches(&e, entity, &cx()).unwrap_or_else(|e| panic!("{filter}: {e}"))
}

/// Selects which of `entities` match, by index.
fn which(filter: &str, ty: E, entities: &[Value]) -> Vec<usize> {
    entities.iter().enumerate().filter(|(_, e)| sel(filter, ty, e)).map(|(i, _)| i).collect()
}

/// The locations of the conformance suite's GeoTests and its expected answers.
#[test]
fn conformance_geo_tests() {
    let pt = |x: f64, y: f64| json!({"location": {"type": "Point", "coordinates": [x, y]}});
    let locs = vec![
        pt(8.0, 51.0),
        pt(8.0, 52.0),
        pt(8.0, 53.0),
        pt(8.0, 54.0),
        json!({"location": {"type": "Polygon", "coordinates": [[[8, 53], [7, 52], [7, 53], [8, 53]]]}}),
        json!({"location": {"type": "LineString", "coordinates": [[5, 52], [5, 53]]}}),
        json!({"location": {"type": "LineString", "coordinates": [[5, 52], [6, 53]]}}),
        json!({"location": {"type": "LineString", "coordinates": [[4, 52], [8, 52]]}}),
    ];
    assert_eq!(which("geo.distance(location, geography'POINT(8 54.1)') lt 1", E::Location, &locs), [3]);
    assert_eq!(
        which("geo.distance(location, geography'POINT(8 54.1)') gt 1", E::Location, &locs),
        [0, 1, 2, 4, 5, 6, 7]
    );
    assert_eq!(which("geo.intersects(location, geography'LINESTRING(7.5 51, 7.5 54)')", E::Location, &locs), [4, 7]);
    assert_eq!(which("geo.length(location) gt 1", E::Location, &locs), [6, 7]);
    assert_eq!(which("geo.length(location) ge 1", E::Location, &locs), [5, 6, 7]);
    assert_eq!(which("geo.length(location) eq 1", E::Location, &locs), [5]);
    assert_eq!(which("geo.length(location) lt 4", E::Location, &locs), [0, 1, 2, 3, 4, 5, 6]);
    let poly = "geography'POLYGON((7.5 51.5, 7.5 53.5, 8.5 53.5, 8.5 51.5, 7.5 51.5))'";
    assert_eq!(which(&format!("st_contains({poly}, location)"), E::Location, &locs), [1, 2]);
    assert_eq!(which(&format!("st_within(location, {poly})"), E::Location, &locs), [1, 2]);
    assert_eq!(which("st_crosses(geography'LINESTRING(7.5 51.5, 7.5 53.5)', location)", E::Location, &locs), [4, 7]);
    assert_eq!(
        which(
            "st_disjoint(location, geography'POLYGON((7.5 51.5, 7.5 53.5, 8.5 53.5, 8.5 51.5, 7.5 51.5))')",
            E::Location,
            &locs
        ),
        [0, 3, 5, 6]
    );
    assert_eq!(which("st_equals(location, geography'POINT(8 53)')", E::Location, &locs), [2]);
    assert_eq!(which("st_intersects(location, geography'LINESTRING(7.5 51, 7.5 54)')", E::Location, &locs), [4, 7]);
    assert_eq!(
        which(
            "st_overlaps(location, geography'POLYGON((7.5 51.5, 7.5 53.5, 8.5 53.5, 8.5 51.5, 7.5 51.5))')",
            E::Location,
            &locs
        ),
        [4]
    );
    assert_eq!(
        which("st_touches(location, geography'POLYGON((8 53, 7.5 54.5, 8.5 54.5, 8 53))')", E::Location, &locs),
        [2, 4]
    );
    assert_eq!(
        which(
            "st_relate(location, geography'POLYGON((7.5 51.5, 7.5 53.5, 8.5 53.5, 8.5 51.5, 7.5 51.5))', 'T********')",
            E::Location,
            &locs
        ),
        [1, 2, 4, 7]
    );
}

#[test]
fn comparisons_strings_numbers_and_navigation() {
    let obs = json!({
        "@iot.id": 7, "result": 3.5, "phenomenonTime": "2016-01-02T01:01:01.000Z", "resultTime": null,
        "parameters": {"depth": 2},
        "Datastream": {"@iot.id": 1, "name": "Datastream 1", "Thing": {"@iot.id": 1, "name": "Thing 1", "description": "The first thing."}}
    });
    let yes = [
        "result gt 3 and result lt 4",
        "result eq 3.5",
        "result add 0.5 eq 4",
        "result mul 2 eq 7",
        "7 div 2 eq 3 and 7 mod 2 eq 1",
        "round(result) eq 4 and floor(result) eq 3 and ceiling(result) eq 4",
        "id eq 7",
        "@iot.id eq 7",
        "resultTime eq null",
        "result ne null",
        "parameters/depth eq 2",
        "Datastream/Thing/name eq 'Thing 1'",
        "Datastream/@iot.id eq 1",
        "substringof('first', Datastream/Thing/description)",
        "startswith(Datastream/Thing/name, 'Thing') and endswith(Datastream/Thing/name, '1')",
        "length(Datastream/Thing/name) eq 7",
        "indexof(Datastream/Thing/description, 'first') eq 4",
        "substring(Datastream/Thing/description, 4, 5) eq 'first'",
        "tolower(Datastream/Thing/name) eq 'thing 1' and toupper(Datastream/Thing/name) eq 'THING 1'",
        "concat(concat(Datastream/name, ' / '), Datastream/Thing/name) eq 'Datastream 1 / Thing 1'",
        "trim('  x ') eq 'x'",
        "year(phenomenonTime) eq 2016 and month(phenomenonTime) eq 1 and day(phenomenonTime) eq 2",
        "hour(phenomenonTime) eq 1 and minute(phenomenonTime) eq 1 and second(phenomenonTime) eq 1",
        "date(phenomenonTime) eq 2016-01-02",
        "phenomenonTime lt now()",
        "phenomenonTime gt 2016-01-02T09:00:00+08:00",
        "phenomenonTime eq '2016-01-02T01:01:01Z'",
        "phenomenonTime sub duration'P1D' lt 2016-01-02T00:00:00Z",
        "not (result gt 10)",
        "result gt 10 or result lt 4",
    ];
    for f in yes {
        assert!(sel(f, E::Observation, &obs), "{f} should select");
    }
    let no = [
        "result gt 4",
        "result eq '3.5'",
        "parameters/missing eq 2",
        "Datastream/Thing/name eq 'Thing 2'",
        "result eq null",
        "resultTime le null",
        "resultTime gt 2016-01-01T00:00:00Z",
        "1 div 0 eq 0",
        "9223372036854775807 add 1 eq -9223372036854775808",
        "not (result eq 3.5)",
    ];
    for f in no {
        assert!(!sel(f, E::Observation, &obs), "{f} should not select");
    }
}

#[test]
fn interval_comparisons() {
    let o = json!({"phenomenonTime": "2016-01-01T00:00:00Z/2016-01-02T00:00:00Z", "result": 1});
    assert!(sel("phenomenonTime lt 2016-01-02T00:00:00Z", E::Observation, &o), "ends at t: before");
    assert!(!sel("phenomenonTime lt 2016-01-01T12:00:00Z", E::Observation, &o));
    assert!(sel("phenomenonTime gt 2015-12-31T00:00:00Z", E::Observation, &o));
    assert!(!sel("phenomenonTime gt 2016-01-01T00:00:00Z", E::Observation, &o));
    assert!(
        sel("phenomenonTime le 2016-01-01T12:00:00Z and phenomenonTime ge 2016-01-01T12:00:00Z", E::Observation, &o),
        "overlaps"
    );
    assert!(sel("phenomenonTime eq 2016-01-01T00:00:00Z/2016-01-02T00:00:00Z", E::Observation, &o));
    assert!(!sel("phenomenonTime eq 2016-01-01T00:00:00Z", E::Observation, &o));
}

#[test]
fn to_many_paths_are_refused_in_memory() {
    let thing = json!({"name": "t", "Datastreams": [{"name": "d"}]});
    let e = parse_filter("Datastreams/name eq 'd'", Some(E::Thing)).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(matches(&e, &thing, &cx()), Err(EvalError::Unsupported { .. })));
}

/// The fold visits operands before operators: a toy SQL translation.
#[test]
fn fold_translates_bottom_up() {
    struct Sql(Vec<String>);
    impl crate::ast::ExprFold for Sql {
        type Out = String;
        type Err = String;
        fn literal(&mut self, l: &Literal) -> Result<String, String> {
            self.0.push(l.to_string());
            Ok(format!("${}", self.0.len()))
        }
        fn property(&mut self, p: &[String]) -> Result<String, String> {
            Ok(format!("\"{}\"", p.join(".")))
        }
        fn not(&mut self, x: String) -> Result<String, String> {
            Ok(format!("NOT ({x})"))
        }
        fn neg(&mut self, x: String) -> Result<String, String> {
            Ok(format!("-({x})"))
        }
        fn and(&mut self, xs: Vec<String>) -> Result<String, String> {
            Ok(format!("({})", xs.join(" AND ")))
        }
        fn or(&mut self, xs: Vec<String>) -> Result<String, String> {
            Ok(format!("({})", xs.join(" OR ")))
        }
        fn compare(&mut self, op: CmpOp, a: String, b: String) -> Result<String, String> {
            let o = match op {
                CmpOp::Eq => "=",
                CmpOp::Ne => "<>",
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
            };
            Ok(format!("{a} {o} {b}"))
        }
        fn arith(&mut self, op: ArithOp, a: String, b: String) -> Result<String, String> {
            Ok(format!("({a} {} {b})", op.keyword()))
        }
        fn call(&mut self, f: Function, args: Vec<String>) -> Result<String, String> {
            match f {
                Function::ToLower => Ok(format!("lower({})", args.join(", "))),
                other => Err(format!("{} has no SQL here", other.name())),
            }
        }
    }
    let e = parse_filter("tolower(name) eq 'a' and (result gt 1 or not (result lt 0))", None)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut s = Sql(Vec::new());
    assert_eq!(e.fold(&mut s).as_deref(), Ok("(lower(\"name\") = $1 AND (\"result\" > $2 OR NOT (\"result\" < $3)))"));
    assert_eq!(s.0, ["'a'", "1", "0"]);
    let e = parse_filter("year(phenomenonTime) eq 1", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.fold(&mut Sql(Vec::new())), Err("year has no SQL here".to_owned()));
    assert_eq!(
        parse_filter("a/b eq 1 and c eq d", None).map(|e| e
            .property_paths()
            .iter()
            .map(|p| p.join("/"))
            .collect::<Vec<_>>()),
        Ok(vec!["a/b".to_owned(), "c".into(), "d".into()])
    );
}
