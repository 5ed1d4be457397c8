//! Opening a replica on the device and reading it: facts, layers, features by key or area, and the
//! local sync state of each feature.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use shikong_crdt::{Actor, EntityDoc};
use shikong_gpkg::quote_ident;
use shikong_model::{Bbox, EntityId, Feature};

use crate::error::{ReplicaError, Result};
use crate::format::{self, FORMAT_VERSION, ReplicaInfo, ReplicaLayer, key};
use crate::table::{self, Row};

/// How the apps name an entity: by its id or by its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureKey {
    Id(EntityId),
    Code(String),
}

impl FeatureKey {
    /// A UUID is an id, anything else a code.
    pub fn parse(s: &str) -> FeatureKey {
        match s.parse::<EntityId>() {
            Ok(id) => FeatureKey::Id(id),
            Err(_) => FeatureKey::Code(s.to_owned()),
        }
    }
}

impl From<EntityId> for FeatureKey {
    fn from(id: EntityId) -> Self {
        FeatureKey::Id(id)
    }
}

impl fmt::Display for FeatureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatureKey::Id(id) => write!(f, "with id {id}"),
            FeatureKey::Code(c) => write!(f, "with code `{c}`"),
        }
    }
}

/// Where a feature stands with the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalStatus {
    /// No local change waits to be sent.
    Synced,
    /// Local changes wait for the next push.
    Pending,
    /// The server refused local changes; they are kept and shown until the user edits again or
    /// retries.
    Rejected { reason: String },
}

/// A feature as the replica holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaFeature {
    pub feature: Feature,
    /// The server version the local state builds on; `None` for a feature created here and not yet
    /// accepted.
    pub version: Option<i64>,
    pub status: LocalStatus,
}

/// An open replica file. See the crate documentation.
#[derive(Debug)]
pub struct Replica {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
    pub(crate) info: ReplicaInfo,
    pub(crate) actor: Actor,
    pub(crate) layers: Vec<ReplicaLayer>,
    /// Lookups by code (see [`table::CodeCache`]).
    pub(crate) codes: table::CodeCache,
}

/// An entity found by key: its row when visible, its document when explicit.
#[derive(Debug)]
pub(crate) struct Located {
    pub id: EntityId,
    pub row: Option<Row>,
    /// Stored document bytes and the server version recorded beside them.
    pub doc: Option<(Vec<u8>, Option<i64>)>,
}

impl Located {
    /// The server version the local state builds on.
    pub fn version(&self) -> Option<i64> {
        self.row.as_ref().map(|r| r.version).unwrap_or_else(|| self.doc.as_ref().and_then(|d| d.1))
    }
}

impl Replica {
    /// Opens a replica. Refuses files that are not GeoPackages, GeoPackages without replica
    /// tables, and replicas of a newer format.
    pub fn open(path: impl AsRef<Path>) -> Result<Replica> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let not = |reason: String| ReplicaError::NotAReplica { path: shown.clone(), reason };
        if !path.is_file() {
            return Err(not("no such file".into()));
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(|e| not(e.to_string()))?;
        // Any read fails here on a file that is not SQLite at all.
        let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0)).map_err(|e| not(e.to_string()))?;
        if app != shikong_gpkg::APPLICATION_ID {
            return Err(not("not a GeoPackage (application_id is not GPKG)".into()));
        }
        let has = conn
            .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sk_replica'", [], |_| Ok(()))
            .optional()?
            .is_some();
        if !has {
            return Err(not("a GeoPackage without replica tables (request a replica from the server)".into()));
        }
        let version = format::get_meta(&conn, key::FORMAT_VERSION)?;
        let found: i64 = version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| not(format!("format_version is `{}`", version.as_deref().unwrap_or("missing"))))?;
        if found > FORMAT_VERSION {
            return Err(ReplicaError::TooNew { path: shown, found, supported: FORMAT_VERSION });
        }
        shikong_gpkg::register_functions(&conn)?;
        // QGIS may hold the file open too: wait for its write lock rather than fail.
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Each edit is a savepoint (nested in a batch's transaction): its statement journal in
        // memory, not in a temporary file written page by page.
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY;")?;
        let actor_hex = format::get_meta(&conn, key::ACTOR)?
            .ok_or_else(|| ReplicaError::Corrupt("sk_replica has no `actor`".into()))?;
        let actor: Actor = actor_hex.parse().map_err(|e| ReplicaError::Corrupt(format!("actor `{actor_hex}`: {e}")))?;
        let info = format::read_info(&conn)?;
        let layers = format::read_layers(&conn)?;
        Ok(Replica { conn, path: path.to_owned(), info, actor, layers, codes: table::CodeCache::default() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn info(&self) -> &ReplicaInfo {
        &self.info
    }

    /// This replica's writer identity (every local change is authored by it).
    pub fn actor(&self) -> Actor {
        self.actor
    }

    /// The layers, in name order.
    pub fn layers(&self) -> &[ReplicaLayer] {
        &self.layers
    }

    pub fn layer(&self, name: &str) -> Result<&ReplicaLayer> {
        self.layers.iter().find(|l| l.name == name).ok_or_else(|| ReplicaError::NoSuchLayer(name.to_owned()))
    }

    /// Where pulling continues: the server's opaque cursor of the last page stored (or of the
    /// cut, for a new replica).
    pub fn cursor(&self) -> Result<String> {
        Ok(format::get_meta(&self.conn, key::CURSOR)?.unwrap_or_default())
    }

    /// The feature `key` names, with its local sync status; `None` when the replica does not show
    /// it (never there, deleted, or outside the area).
    pub fn get(&self, layer: &str, key: &FeatureKey) -> Result<Option<ReplicaFeature>> {
        let def = self.layer(layer)?;
        let row = match key {
            FeatureKey::Id(id) => table::by_id(&self.conn, def, *id)?,
            FeatureKey::Code(c) => self.codes.by_code(&self.conn, def, c)?,
        };
        row.map(|r| {
            let status = self.status(r.feature.id)?;
            Ok(ReplicaFeature { feature: r.feature, version: r.version, status })
        })
        .transpose()
    }

    /// Features whose geometry's bounding box meets `bbox` (CGCS2000 lon/lat), by the R-tree.
    pub fn query_bbox(&self, layer: &str, bbox: &Bbox) -> Result<Vec<ReplicaFeature>> {
        let def = self.layer(layer)?;
        let rt = quote_ident(&shikong_gpkg::rtree_name(layer, "geom"));
        let sql = table::select_sql(
            def,
            &format!(
                "t.fid IN (SELECT id FROM {rt} WHERE minx <= ?1 AND maxx >= ?2 AND miny <= ?3 AND maxy >= ?4) ORDER BY t.fid"
            ),
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query([bbox.max_x, bbox.min_x, bbox.max_y, bbox.min_y])?;
        let statuses = self.statuses(layer)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let row = table::decode(def, r)?;
            // The R-tree keeps 32-bit floats rounded outwards: check the real envelope.
            if !row.feature.geometry.as_ref().and_then(|g| g.bbox()).is_some_and(|b| b.intersects(bbox)) {
                continue;
            }
            let status = statuses.get(&row.feature.id).cloned().unwrap_or(LocalStatus::Synced);
            out.push(ReplicaFeature { feature: row.feature, version: row.version, status });
        }
        Ok(out)
    }

    /// The bounding box (CGCS2000 lon/lat) of the layer's geometries, from its R-tree (rounded
    /// outwards to 32-bit floats: good for framing a map, not for measuring); `None` when empty.
    pub fn extent(&self, layer: &str) -> Result<Option<Bbox>> {
        self.layer(layer)?;
        let rt = quote_ident(&shikong_gpkg::rtree_name(layer, "geom"));
        let b: (Option<f64>, Option<f64>, Option<f64>, Option<f64>) =
            self.conn.query_row(&format!("SELECT min(minx), min(miny), max(maxx), max(maxy) FROM {rt}"), [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
        Ok(match b {
            (Some(a), Some(b), Some(c), Some(d)) => Some(Bbox { min_x: a, min_y: b, max_x: c, max_y: d }),
            _ => None,
        })
    }

    /// How many features the layer shows.
    pub fn count(&self, layer: &str) -> Result<u64> {
        self.layer(layer)?;
        let n: i64 = self.conn.query_row(&format!("SELECT count(*) FROM {}", quote_ident(layer)), [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The sync status of one entity.
    pub(crate) fn status(&self, id: EntityId) -> Result<LocalStatus> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT status, reason FROM sk_outbox WHERE entity_id = ?1 ORDER BY status = 'rejected' DESC, seq DESC LIMIT 1",
        )?;
        let found: Option<(String, Option<String>)> =
            stmt.query_row([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        Ok(match found {
            None => LocalStatus::Synced,
            Some((s, reason)) if s == "rejected" => LocalStatus::Rejected { reason: reason.unwrap_or_default() },
            Some(_) => LocalStatus::Pending,
        })
    }

    /// Statuses of the entities of `layer` that are not synced.
    fn statuses(&self, layer: &str) -> Result<HashMap<EntityId, LocalStatus>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT entity_id, status, reason FROM sk_outbox WHERE layer = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([layer], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (id, status, reason) = row?;
            let Ok(id) = id.parse::<EntityId>() else { continue };
            let entry = out.entry(id).or_insert(LocalStatus::Pending);
            if status == "rejected" {
                *entry = LocalStatus::Rejected { reason: reason.unwrap_or_default() };
            }
        }
        Ok(out)
    }

    /// Finds an entity by key: its visible row, else a document kept for a deleted entity with
    /// local changes.
    pub(crate) fn locate(
        conn: &Connection,
        codes: &table::CodeCache,
        def: &ReplicaLayer,
        key: &FeatureKey,
    ) -> Result<Option<Located>> {
        let row = match key {
            FeatureKey::Id(id) => table::by_id(conn, def, *id)?,
            FeatureKey::Code(c) => codes.by_code(conn, def, c)?,
        };
        let id = match (&row, key) {
            (Some(r), _) => r.feature.id,
            (None, FeatureKey::Id(id)) => *id,
            (None, FeatureKey::Code(c)) => {
                let found: Option<String> = conn
                    .prepare_cached("SELECT entity_id FROM sk_docs WHERE layer = ?1 AND code = ?2")?
                    .query_row([&def.name, c], |r| r.get(0))
                    .optional()?;
                match found {
                    Some(s) => s.parse().map_err(|_| ReplicaError::Corrupt(format!("sk_docs entity id `{s}`")))?,
                    None => return Ok(None),
                }
            }
        };
        let doc = load_doc_bytes(conn, &def.name, id)?;
        if row.is_none() && doc.is_none() {
            return Ok(None);
        }
        Ok(Some(Located { id, row, doc }))
    }
}

/// The stored document of `id` in `layer` and the version beside it.
pub(crate) fn load_doc_bytes(conn: &Connection, layer: &str, id: EntityId) -> Result<Option<(Vec<u8>, Option<i64>)>> {
    Ok(conn
        .prepare_cached("SELECT doc, version FROM sk_docs WHERE entity_id = ?1 AND layer = ?2")?
        .query_row([id.to_string(), layer.to_owned()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

pub(crate) fn store_doc(
    conn: &Connection,
    layer: &str,
    id: EntityId,
    code: &str,
    version: Option<i64>,
    doc: &mut EntityDoc,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO sk_docs (entity_id, layer, code, version, doc) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (entity_id) DO UPDATE SET layer = excluded.layer, code = excluded.code, version = excluded.version, doc = excluded.doc",
    )?
    .execute(rusqlite::params![id.to_string(), layer, code, version, doc.save()])?;
    Ok(())
}

pub(crate) fn drop_doc(conn: &Connection, id: EntityId) -> Result<()> {
    conn.prepare_cached("DELETE FROM sk_docs WHERE entity_id = ?1")?.execute([id.to_string()])?;
    Ok(())
}

/// Whether the outbox holds changes of `id` (pending or rejected): then the local document has
/// edits the server does not.
pub(crate) fn has_local_changes(conn: &Connection, id: EntityId) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM sk_outbox WHERE entity_id = ?1 LIMIT 1")?
        .query_row([id.to_string()], |_| Ok(()))
        .optional()?
        .is_some())
}
