//! Which requests a read replica may answer (a store opened with `--read-replica`): the reads
//! that serve OGC API collections and items, tiles and geocoding. Their store calls run inside
//! [`shikong_store::read_route::replica_allowed`] (see `blocking` in `lib.rs`); everything
//! else — writes, sync, the change feed, histories (which pair a version with its CRDT document,
//! both from the primary), cases, accounts — reads the primary. The store keeps replica reads
//! from going back in time for this process (read-your-writes: see the PostgreSQL store's
//! `replica.rs`).

use axum::http::Method;

/// Whether a request with this method and path may be served from a read replica.
pub(crate) fn replica_readable(method: &Method, path: &str) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    if let Some(rest) = path.strip_prefix("/collections") {
        // Collections, one collection, queryables, items, one item; tiles of a collection.
        return !(rest.ends_with("/history") || rest.ends_with("/changes"));
    }
    path.starts_with("/tiles/") && !path.starts_with("/tiles/packages")
        || path == "/tiles"
        || path.starts_with("/wmts")
        || matches!(path, "/geocode" | "/geocode/suggest" | "/reverse")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_of_items_tiles_and_geocoding_only() {
        let get = Method::GET;
        for path in [
            "/collections",
            "/collections/manhole",
            "/collections/manhole/items",
            "/collections/manhole/items/0190a8c0-0000-7000-8000-000000000001",
            "/collections/manhole/tiles/WebMercatorQuad/3/1/2",
            "/tiles/basemap/3/1/2",
            "/wmts/1.0.0/WMTSCapabilities.xml",
            "/geocode",
            "/geocode/suggest",
            "/reverse",
        ] {
            assert!(replica_readable(&get, path), "{path}");
        }
        assert!(replica_readable(&Method::HEAD, "/collections/manhole/items"));
        for path in [
            "/collections/manhole/items/x/history",
            "/collections/manhole/changes",
            "/sync/pull",
            "/geocode/batch/1",
            "/tiles/packages/estimate",
            "/auth/me",
            "/",
        ] {
            assert!(!replica_readable(&get, path), "{path}");
        }
        assert!(!replica_readable(&Method::POST, "/collections/manhole/items"), "writes read the primary");
    }
}
