//! SQL functions the GeoPackage R-tree triggers call (`ST_MinX`, `ST_MaxX`, `ST_MinY`,
//! `ST_MaxY`, `ST_IsEmpty`). SQLite has none of them built in, so every connection that writes a
//! GeoPackage with spatial indexes must register them, as GDAL does for its own connections.

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Error};
use shikong_model::gpkg_blob;

fn envelope_of(ctx: &Context<'_>) -> rusqlite::Result<Option<shikong_model::Bbox>> {
    match ctx.get_raw(0) {
        ValueRef::Blob(b) => gpkg_blob::envelope(b).map_err(|e| Error::UserFunctionError(Box::new(e))),
        _ => Ok(None),
    }
}

/// Registers the `ST_*` functions on `conn`.
pub fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS;
    type Pick = fn(&shikong_model::Bbox) -> f64;
    let picks: [(&str, Pick); 4] =
        [("ST_MinX", |b| b.min_x), ("ST_MaxX", |b| b.max_x), ("ST_MinY", |b| b.min_y), ("ST_MaxY", |b| b.max_y)];
    for (name, pick) in picks {
        conn.create_scalar_function(name, 1, flags, move |ctx| Ok(envelope_of(ctx)?.map(|b| pick(&b))))?;
    }
    conn.create_scalar_function("ST_IsEmpty", 1, flags, |ctx| match ctx.get_raw(0) {
        ValueRef::Blob(b) => {
            let h = gpkg_blob::header(b).map_err(|e| Error::UserFunctionError(Box::new(e)))?;
            Ok(Some(h.empty))
        }
        _ => Ok(None),
    })?;
    Ok(())
}
