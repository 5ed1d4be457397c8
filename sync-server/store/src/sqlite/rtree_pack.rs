//! Bulk loading of an SQLite R-tree by writing its nodes directly (Sort-Tile-Recursive packing).
//!
//! Why: a bulk import used to rebuild the layer's R-tree with one `INSERT INTO rtree SELECT …`,
//! which inserts entry by entry (`ChooseLeaf`, node splits): about a quarter of a 1M-point import
//! went there (perf, issue 21). Packing sorts the entries once and writes full nodes straight into
//! the R-tree's shadow tables (`_node`, `_rowid`, `_parent`), the way GDAL bulk-loads the
//! GeoPackage index; full nodes also make the index about a third smaller than one grown by
//! inserts. The result is an ordinary SQLite R-tree: later inserts, the GeoPackage triggers, GDAL
//! and `rtreecheck()` see nothing unusual.
//!
//! Layout (SQLite's `rtree.c`): a node is a blob of the size node 1 already has; bytes 0–1 hold
//! the tree depth (read from the root only), bytes 2–3 the cell count, then cells of a 64-bit
//! big-endian rowid (a child node number in inner nodes) and, per dimension, min and max as
//! big-endian 32-bit floats, rounded outwards so the box still contains the geometry.

use rusqlite::{Connection, params};
use shikong_gpkg::quote_ident;
use shikong_model::gpkg_blob;

use crate::error::{Result, StoreError};

/// Above this many entries the sort would hold too much memory at once (24 bytes an entry):
/// the caller falls back to SQLite's own insert-by-insert rebuild.
pub const MAX_PACKED_ENTRIES: usize = 32_000_000;

const CELL_BYTES: usize = 8 + 4 * 4;

/// One leaf entry or inner node: its key and box (min x, max x, min y, max y as stored).
#[derive(Clone, Copy, Debug)]
struct Entry {
    id: i64,
    b: [f32; 4],
}

impl Entry {
    fn cx(&self) -> f32 {
        self.b[0] / 2.0 + self.b[1] / 2.0
    }
    fn cy(&self) -> f32 {
        self.b[2] / 2.0 + self.b[3] / 2.0
    }
}

/// SQLite's rounding factors (`rtree.c`): a coordinate that a float cannot hold is scaled by one
/// of these before the conversion. Copied rather than bettered: the layer's extent is read back
/// from the R-tree, and must not depend on whether the index was packed or grown.
const RND_TOWARDS: f64 = 1.0 - 1.0 / 8_388_608.0;
const RND_AWAY: f64 = 1.0 + 1.0 / 8_388_608.0;

/// `v` as a float no greater than `v`, exactly as `rtreeValueDown` makes it.
fn down(v: f64) -> f32 {
    let f = v as f32;
    if f64::from(f) > v { (v * if v < 0.0 { RND_AWAY } else { RND_TOWARDS }) as f32 } else { f }
}

/// `v` as a float no less than `v`, exactly as `rtreeValueUp` makes it.
fn up(v: f64) -> f32 {
    let f = v as f32;
    if f64::from(f) < v { (v * if v < 0.0 { RND_TOWARDS } else { RND_AWAY }) as f32 } else { f }
}

/// Reads `(fid, envelope)` of every non-empty geometry of `table.geom`, or `None` when there are
/// more than [`MAX_PACKED_ENTRIES`].
fn read_entries(conn: &Connection, table: &str) -> Result<Option<Vec<Entry>>> {
    let mut stmt = conn.prepare(&format!("SELECT fid, geom FROM {} WHERE geom IS NOT NULL", quote_ident(table)))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let fid: i64 = r.get(0)?;
        let blob = r.get_ref(1)?.as_blob().map_err(|e| StoreError::Corrupt(format!("`{table}` fid {fid}: {e}")))?;
        let env = gpkg_blob::envelope(blob).map_err(|e| StoreError::Corrupt(format!("`{table}` fid {fid}: {e}")))?;
        if let Some(e) = env {
            if out.len() >= MAX_PACKED_ENTRIES {
                return Ok(None);
            }
            out.push(Entry { id: fid, b: [down(e.min_x), up(e.max_x), down(e.min_y), up(e.max_y)] });
        }
    }
    Ok(Some(out))
}

/// Sort-Tile-Recursive grouping of `entries` into runs of at most `cap`: vertical slices by x,
/// each cut into runs by y. Returns the groups as ranges of the reordered `entries`.
fn str_groups(entries: &mut [Entry], cap: usize) -> Vec<std::ops::Range<usize>> {
    let n = entries.len();
    let nodes = n.div_ceil(cap);
    let slices = (nodes as f64).sqrt().ceil().max(1.0) as usize;
    let per_slice = slices * cap;
    entries.sort_unstable_by(|a, b| a.cx().total_cmp(&b.cx()));
    let mut groups = Vec::with_capacity(nodes);
    for start in (0..n).step_by(per_slice) {
        let end = (start + per_slice).min(n);
        entries[start..end].sort_unstable_by(|a, b| a.cy().total_cmp(&b.cy()));
        for s in (start..end).step_by(cap) {
            groups.push(s..(s + cap).min(end));
        }
    }
    groups
}

fn node_blob(size: usize, depth: u16, cells: &[Entry]) -> Vec<u8> {
    let mut blob = vec![0u8; size];
    blob[0..2].copy_from_slice(&depth.to_be_bytes());
    blob[2..4].copy_from_slice(&u16::try_from(cells.len()).unwrap_or(u16::MAX).to_be_bytes());
    for (i, c) in cells.iter().enumerate() {
        let at = 4 + i * CELL_BYTES;
        blob[at..at + 8].copy_from_slice(&c.id.to_be_bytes());
        for (k, v) in c.b.iter().enumerate() {
            blob[at + 8 + k * 4..at + 12 + k * 4].copy_from_slice(&v.to_bits().to_be_bytes());
        }
    }
    blob
}

fn union(cells: &[Entry]) -> [f32; 4] {
    cells.iter().fold([f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::NEG_INFINITY], |a, c| {
        [a[0].min(c.b[0]), a[1].max(c.b[1]), a[2].min(c.b[2]), a[3].max(c.b[3])]
    })
}

/// Replaces the content of the 2-D R-tree `rtree` with the envelopes of `table.geom` (keyed by
/// `fid`), packed. Returns `false`, having changed nothing, when the table is too big to pack in
/// memory or the R-tree's node size is not one this code knows; the caller then rebuilds it the
/// ordinary way. Runs inside the caller's transaction.
pub fn pack(conn: &Connection, table: &str, rtree: &str) -> Result<bool> {
    let node = quote_ident(&format!("{rtree}_node"));
    let rowid = quote_ident(&format!("{rtree}_rowid"));
    let parent = quote_ident(&format!("{rtree}_parent"));
    let size: Option<i64> =
        conn.query_row(&format!("SELECT length(data) FROM {node} WHERE nodeno = 1"), [], |r| r.get(0))?;
    let Some(size) = size.and_then(|s| usize::try_from(s).ok()).filter(|s| *s >= 4 + 2 * CELL_BYTES) else {
        return Ok(false);
    };
    let cap = (size - 4) / CELL_BYTES;
    let Some(mut level) = read_entries(conn, table)? else { return Ok(false) };
    conn.execute_batch(&format!("DELETE FROM {node}; DELETE FROM {rowid}; DELETE FROM {parent};"))?;
    let mut ins_node = conn.prepare(&format!("INSERT INTO {node} (nodeno, data) VALUES (?1, ?2)"))?;
    let mut ins_rowid = conn.prepare(&format!("INSERT INTO {rowid} (rowid, nodeno) VALUES (?1, ?2)"))?;
    let mut ins_parent = conn.prepare(&format!("INSERT INTO {parent} (nodeno, parentnode) VALUES (?1, ?2)"))?;
    // Node 1 is the root; the others are numbered from 2 as they are written, bottom-up.
    let mut next_node = 2i64;
    let mut depth = 0u16;
    loop {
        let is_root = level.len() <= cap;
        let groups = if is_root { std::iter::once(0..level.len()).collect() } else { str_groups(&mut level, cap) };
        let mut upper = Vec::with_capacity(groups.len());
        for g in groups {
            let cells = &level[g];
            let no = if is_root { 1 } else { next_node };
            if !is_root {
                next_node += 1;
            }
            // The depth is read from the root only; other nodes keep zeros there.
            ins_node.execute(params![no, node_blob(size, if is_root { depth } else { 0 }, cells)])?;
            for c in cells {
                if depth == 0 {
                    ins_rowid.execute(params![c.id, no])?;
                } else {
                    ins_parent.execute(params![c.id, no])?;
                }
            }
            upper.push(Entry { id: no, b: union(cells) });
        }
        if is_root {
            return Ok(true);
        }
        level = upper;
        depth += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(n: i64) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        shikong_gpkg::register_functions(&conn).unwrap();
        conn.execute_batch(
            "CREATE TABLE pts (fid INTEGER PRIMARY KEY, geom BLOB);
             CREATE VIRTUAL TABLE rt USING rtree(id, minx, maxx, miny, maxy);",
        )
        .unwrap();
        {
            let mut ins = conn.prepare("INSERT INTO pts (fid, geom) VALUES (?1, ?2)").unwrap();
            for i in 1..=n {
                // Every 97th row has no geometry; coordinates that floats cannot hold exactly.
                let g = (i % 97 != 0).then(|| {
                    let p = shikong_model::Geometry::Point(shikong_model::Coord::xy(
                        114.0 + (i * 7919 % 10007) as f64 * 1.234_567e-5,
                        30.3 + (i * 104_729 % 10009) as f64 * 4.567_891e-5,
                    ));
                    gpkg_blob::encode(&p, 4490)
                });
                ins.execute(params![i, g]).unwrap();
            }
        }
        conn
    }

    fn check(conn: &Connection) {
        let msg: String = conn.query_row("SELECT rtreecheck('rt')", [], |r| r.get(0)).unwrap();
        assert_eq!(msg, "ok");
    }

    #[test]
    fn packed_tree_answers_like_the_table() {
        for n in [0, 1, 50, 51, 52, 3000, 20_000] {
            let conn = setup(n);
            assert!(pack(&conn, "pts", "rt").unwrap(), "n = {n}");
            check(&conn);
            let count: i64 = conn.query_row("SELECT count(*) FROM rt", [], |r| r.get(0)).unwrap();
            assert_eq!(count, n - n / 97, "n = {n}");
            // A window query through the R-tree finds exactly the rows whose point lies inside.
            let (x0, x1, y0, y1) = (114.02, 114.07, 30.4, 30.6);
            let via_rtree: i64 = conn
                .query_row(
                    "SELECT count(*) FROM pts WHERE fid IN (SELECT id FROM rt WHERE minx <= ?2 AND maxx >= ?1 AND miny <= ?4 AND maxy >= ?3) \
                     AND ST_MinX(geom) BETWEEN ?1 AND ?2 AND ST_MinY(geom) BETWEEN ?3 AND ?4",
                    params![x0, x1, y0, y1],
                    |r| r.get(0),
                )
                .unwrap();
            let via_scan: i64 = conn
                .query_row(
                    "SELECT count(*) FROM pts WHERE ST_MinX(geom) BETWEEN ?1 AND ?2 AND ST_MinY(geom) BETWEEN ?3 AND ?4",
                    params![x0, x1, y0, y1],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(via_rtree, via_scan, "n = {n}");
            // The tree keeps working as an ordinary R-tree afterwards.
            conn.execute("INSERT INTO rt VALUES (999999, 114.0, 114.1, 30.0, 30.1)", []).unwrap();
            conn.execute("DELETE FROM rt WHERE id = 1", []).unwrap();
            check(&conn);
        }
    }

    #[test]
    fn boxes_are_the_ones_sqlite_stores() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE VIRTUAL TABLE rt USING rtree(id, minx, maxx, miny, maxy);").unwrap();
        for (i, v) in [114.123_456_789_f64, -114.123_456_789, 30.512_8, 0.1, -0.1, 1e-40, 2.0].into_iter().enumerate() {
            conn.execute("INSERT INTO rt VALUES (?1, ?2, ?2, ?2, ?2)", params![i as i64, v]).unwrap();
            let (lo, hi): (f64, f64) = conn
                .query_row("SELECT minx, maxx FROM rt WHERE id = ?1", [i as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap();
            assert_eq!((f64::from(down(v)), f64::from(up(v))), (lo, hi), "{v}");
        }
    }

    #[test]
    fn boxes_round_outwards() {
        let v = 114.123_456_789_f64;
        assert!(f64::from(down(v)) <= v && f64::from(up(v)) >= v);
        assert!(f64::from(down(-v)) <= -v && f64::from(up(-v)) >= -v);
        assert_eq!(down(0.5), 0.5);
    }
}
