//! OGC SensorThings API 1.1 (Sensing part, with the MultiDatastream and dataArray extensions)
//! without I/O: everything about a request and a response that does not need storage.
//!
//! Stations and sensors (water level, manhole tilt, lamp current, air quality) report through
//! SensorThings; the server wires this crate to its stores, clients may use the same types.
//!
//! - [`entity`]: the nine entity types, their properties and navigation properties (with
//!   inverses), ids, times (instant or interval), serde types with the standard JSON shapes and
//!   the `@iot.selfLink`/`@iot.navigationLink` members.
//! - [`body`]: create/update validation with the JSON path of the offending member; deep
//!   insert flattened into an ordered [`body::CreatePlan`]; [`update`]: PUT (replace) and JSON
//!   Patch bodies turned into the same [`body::Update`].
//! - [`dataarray`]: the `dataArray` bulk create, read by a streaming visitor with a hard row
//!   limit (the body that takes FROST-Server down is refused after the limit's row, without a
//!   JSON tree of it in memory).
//! - [`path`]: resource paths (`/Things(1)/Datastreams`, `$ref`, `$value`, property paths).
//! - [`options`] and [`filter`]: the OData query options and the `$filter` parser to an
//!   [`ast::Expr`], bounded (depth 32, length, tokens, `$expand` depth) with errors at a
//!   character position; [`eval`] evaluates a filter on an entity's JSON; [`ast::ExprFold`] lets a
//!   backend translate it.
//! - [`envelope`]: the collection response (`@iot.count`, `@iot.nextLink`, `value`);
//!   [`response`]: the service root document, `$select` on an entity, the dataArray result format.
//!
//! **Invariant:** no I/O, no clock (callers pass `now` in [`eval::EvalContext`]).

pub mod alerts;
pub mod ast;
pub mod body;
pub mod dataarray;
pub mod entity;
pub mod envelope;
pub mod error;
pub mod eval;
pub mod filter;
pub mod geometry;
pub mod options;
pub mod path;
pub mod response;
pub mod update;

pub use ast::{Expr, ExprFold, Literal};
pub use entity::{EntityType, Id, TimeValue};
pub use error::{EvalError, Result, StaError};
pub use options::{QueryOptions, parse_query};
pub use path::{ResourcePath, parse_path};

/// Parses a request's resource path and query string together: the options are checked against
/// the entity type the path addresses, and `$resultFormat=dataArray` only on Observations. The
/// service root and `/CreateObservations` take no options (any `$` option there is refused).
pub fn parse_request(raw_path: &str, raw_query: &str) -> Result<(ResourcePath, QueryOptions)> {
    let path = parse_path(raw_path)?;
    let opts = match &path {
        ResourcePath::Resource(r) => parse_query(raw_query, r.entity_type())?,
        _ => {
            if let Some(p) = raw_query.split('&').find(|p| p.starts_with('$') || p.starts_with("%24")) {
                let name = p.split_once('=').map_or(p, |(k, _)| k);
                return Err(StaError::Query {
                    option: name.to_owned(),
                    position: 1,
                    message: "the service root and /CreateObservations take no query options".into(),
                });
            }
            QueryOptions::default()
        }
    };
    if opts.result_format.is_some()
        && !matches!(&path, ResourcePath::Resource(r) if r.entity_type() == EntityType::Observation && r.is_collection())
    {
        return Err(StaError::Query {
            option: "$resultFormat".into(),
            position: 1,
            message: "$resultFormat=dataArray applies to collections of Observations".into(),
        });
    }
    Ok((path, opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole request URLs of the specification and the conformance suites.
    #[test]
    fn spec_request_urls() {
        let cases = [
            ("/Things(1)/Locations", "$select=id,name"),
            ("/Datastreams(5)/Observations", "$filter=result%20gt%205&$orderby=phenomenonTime%20desc&$top=100"),
            ("/Observations", "$count=true&$top=3&$resultFormat=dataArray"),
            ("/Things", "$expand=Datastreams($select=id,name;$top=2),Locations&$count=true"),
            (
                "/Things",
                "$filter=st_within(Locations/location,geography'POLYGON((7.5 51.5,7.5 53.5,8.5 53.5,8.5 51.5,7.5 51.5))')",
            ),
            ("/Observations(1)/FeatureOfInterest", "$select=feature"),
            ("/MultiDatastreams(1)/Observations", "$filter=Datastream/id%20eq%201%20or%20MultiDatastream/id%20eq%201"),
            ("/Locations", "$filter=geo.distance(location,%20geography'POINT(8%2054.1)')%20lt%201"),
            ("/", ""),
        ];
        for (p, q) in cases {
            assert!(parse_request(p, q).is_ok(), "{p}?{q}: {:?}", parse_request(p, q));
        }
        // options are checked against the path's target: Locations have no `result`
        assert!(matches!(
            parse_request("/Things(1)/Locations", "$filter=result%20gt%201"),
            Err(StaError::Query { .. })
        ));
        assert!(parse_request("/Things", "$resultFormat=dataArray").is_err());
        assert!(parse_request("/Observations(1)", "$resultFormat=dataArray").is_err());
        assert!(parse_request("/", "$top=1").is_err());
        assert!(parse_request("/CreateObservations", "%24top=1").is_err());
    }
}
