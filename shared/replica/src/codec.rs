//! How values sit in a replica's feature-table columns: exactly the central store's encoding, by
//! sharing its codec ([`shikong_gpkg::value`]: bool 0/1, date `YYYY-MM-DD`, date-time GeoPackage
//! DATETIME text (UTC, milliseconds, `Z`), attachments a JSON array of hashes). A feature read from
//! a replica row is therefore the feature the server read from its own row, which matters: the
//! implicit document of an unedited entity is derived from that feature on both sides and must
//! come out byte-identical.
//!
//! What is the replica's own: the geometry column (GeoPackage binary in the replica's SRS) and
//! values as JSON in conflict records.

use rusqlite::types::{Value as Sql, ValueRef};
use serde_json::Value as Json;
pub use shikong_gpkg::value::{from_sql, time_from_sql, time_to_sql, to_sql};
use shikong_model::{Geometry, Value};

/// The geometry column value (GeoPackage binary in CGCS2000).
pub fn geometry_to_sql(g: Option<&Geometry>) -> Sql {
    g.map_or(Sql::Null, |g| Sql::Blob(shikong_model::gpkg_blob::encode(g, crate::SRS_ID)))
}

pub fn geometry_from_sql(v: ValueRef<'_>) -> Result<Option<Geometry>, String> {
    match v {
        ValueRef::Blob(b) => shikong_model::gpkg_blob::decode(b).map(|(_, g)| g).map_err(|e| e.to_string()),
        ValueRef::Null => Ok(None),
        other => Err(format!("a {:?} value where a geometry was expected", other.data_type())),
    }
}

/// A value as JSON in conflict records (the wire form of the protocol's `ConflictValue`).
pub fn value_json(v: &Value) -> Json {
    v.to_json()
}

#[cfg(test)]
mod tests {
    use shikong_model::Coord;

    use super::*;

    #[test]
    fn geometries_are_gpkg_blobs_in_the_replica_srs() {
        let g = Geometry::Point(Coord::xy(114.3, 30.5));
        let sql = geometry_to_sql(Some(&g));
        assert!(matches!(&sql, Sql::Blob(_)));
        assert_eq!(geometry_from_sql(ValueRef::from(&sql)), Ok(Some(g)));
        assert_eq!(geometry_to_sql(None), Sql::Null);
        assert_eq!(geometry_from_sql(ValueRef::Null), Ok(None));
        assert!(geometry_from_sql(ValueRef::Integer(1)).unwrap_err().contains("where a geometry was expected"));
    }
}
