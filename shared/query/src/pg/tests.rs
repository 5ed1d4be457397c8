//! The PostgreSQL plan's text for typical filters (what it means is checked on a real server by
//! `tests/postgres.rs`).

use super::*;
use crate::quote_identifier;
use crate::tests::schema;

fn cols(a: &Attribute) -> Option<String> {
    match a {
        Attribute::Version => None,
        Attribute::Geometry => Some("\"geom\"".into()),
        a => Some(quote_identifier(a.name())),
    }
}

fn plan(text: &str, first: usize) -> PgPlan {
    Filter::parse_text(text, &schema()).unwrap().plan_postgres(&cols, first)
}

#[test]
fn placeholders_are_numbered_from_the_callers_first_index_and_typed() {
    let p = plan("名称 LIKE '井%' AND depth > 1.5 AND count = 2.5", 3);
    assert_eq!(
        p.sql.as_deref(),
        Some(r#"(("名称") LIKE $3::text) AND (("depth") > $4::double precision) AND (("count") IS NULL AND NULL)"#)
    );
    assert_eq!(p.params, [PgParam::Text("井%".into()), PgParam::Real(1.5)]);
    assert_eq!((p.residual, p.bbox), (None, None));
}

#[test]
fn like_escapes_and_casei_lowers_ascii_only() {
    let p = plan(r"casei(名称) LIKE casei('A\%b_c\\d')", 1);
    assert_eq!(
        p.sql.as_deref(),
        Some(r#"(translate(("名称"), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') LIKE $1::text)"#)
    );
    assert_eq!(p.params, [PgParam::Text(r"a\%b_c\\d".into())]);
    let p = plan("名称 < '雨'", 1);
    assert_eq!(p.sql.as_deref(), Some(r#"(("名称") COLLATE "C" < $1::text)"#));
}

#[test]
fn open_ends_are_typed_infinities() {
    let p = plan("t_intersects(INTERVAL(valid_from, valid_to), INTERVAL('2024-01-01', '..'))", 1);
    assert_eq!(
        p.sql.as_deref(),
        Some(
            "((coalesce((\"valid_from\"), '-infinity'::timestamptz) <= 'infinity'::timestamptz) AND \
             (coalesce((\"valid_to\"), 'infinity'::timestamptz) > $1::timestamptz))"
        )
    );
    assert_eq!(p.params, [PgParam::Timestamp("2023-12-31T16:00:00Z".parse().unwrap())]);
}

#[test]
fn spatial_predicates_use_the_envelope_operator_and_postgis() {
    let p = plan("s_intersects(geometry, BBOX(114, 30, 115, 31)) AND s_disjoint(geom, POINT(1 2))", 1);
    assert_eq!(
        p.sql.as_deref(),
        Some(
            "((\"geom\") && ST_GeomFromWKB($1::bytea, 4490) AND ST_Intersects((\"geom\"), ST_GeomFromWKB($1::bytea, 4490))) \
             AND ST_Disjoint((\"geom\"), ST_GeomFromWKB($2::bytea, 4490))"
        )
    );
    assert!(matches!(&p.params[..], [PgParam::Geometry(_), PgParam::Geometry(_)]));
    assert!(p.residual.is_none());
    assert!(p.bbox.is_some());
}

#[test]
fn exact_integer_real_comparisons() {
    // 9007199254740993 is no double: depth (a double) is below it iff at most the double below.
    let p = plan("count < 2.5 AND count > -1e300 AND depth <= 9007199254740993", 1);
    assert_eq!(
        p.sql.as_deref(),
        Some(
            r#"(("count") <= $1::bigint) AND (("count") IS NOT NULL OR NULL) AND (("depth") <= $2::double precision)"#
        )
    );
    assert_eq!(p.params, [PgParam::Int(2), PgParam::Real(9_007_199_254_740_992.0)]);
}

#[test]
fn arithmetic_and_unmapped_attributes_stay_in_the_residual() {
    let p = plan("count / 2 > 1 AND version = 3 AND ok", 1);
    assert_eq!(p.sql.as_deref(), Some(r#"(("ok") = $1::boolean)"#));
    assert_eq!(p.params, [PgParam::Bool(true)]);
    assert_eq!(p.residual.map(|r| r.to_string()), Some("((count / 2) > 1 AND version = 3)".into()));
    // A relaxed OR still narrows; its constant false is PostgreSQL's.
    let p = plan("NOT (version = 3 OR count / 2 > 1)", 1);
    assert_eq!(p.sql.as_deref(), None);
    let p = plan("(version = 3 AND 名称 = 'a') OR (count / 2 > 1 AND 名称 = 'b')", 1);
    assert_eq!(p.sql.as_deref(), Some(r#"((("名称") = $1::text) OR (("名称") = $2::text))"#));
    assert_eq!(p.params, [PgParam::Text("a".into()), PgParam::Text("b".into())]);
}
