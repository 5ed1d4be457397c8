//! Cutting a replica: the server streams the features of the requested layers and area into a new
//! file, then sets the sync cursor to the store transaction the cut was taken at.
//!
//! Everything happens in one SQLite transaction with the R-tree triggers dropped (GeoPackage's
//! bulk-load pattern); the index, the unique indexes and the triggers are built once at
//! [`ReplicaWriter::finish`]. A writer dropped before `finish` leaves no usable replica.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params, params_from_iter};
use shikong_model::Feature;

use crate::error::{ReplicaError, Result};
use crate::format::{self, ReplicaInfo, ReplicaLayer};
use crate::table;

/// Writes a new replica file. See the module documentation.
#[derive(Debug)]
pub struct ReplicaWriter {
    pub(crate) conn: Connection,
    path: PathBuf,
    layers: HashMap<String, (ReplicaLayer, String)>,
    features: u64,
}

impl ReplicaWriter {
    /// Creates the file at `path` (which must not exist) with the given layers, empty.
    pub fn create(path: impl AsRef<Path>, info: &ReplicaInfo, layers: &[ReplicaLayer]) -> Result<ReplicaWriter> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        if path.exists() {
            return Err(ReplicaError::Exists { path: shown });
        }
        let conn = Connection::open(path)?;
        shikong_gpkg::register_functions(&conn)?;
        // The file is worthless until `finish` commits, so a crash costs nothing but the file:
        // skip fsyncs while loading.
        conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -65536; BEGIN IMMEDIATE;")?;
        shikong_gpkg::init(&conn)?;
        conn.execute_batch(format::DDL)?;
        let actor = shikong_crdt::Actor::random();
        format::write_info(&conn, info, &actor.to_string(), layers)?;
        let mut by_name = HashMap::new();
        for layer in layers {
            layer.check()?;
            if by_name.contains_key(&layer.name) {
                return Err(ReplicaError::BadLayer { layer: layer.name.clone(), message: "listed twice".into() });
            }
            table::create(&conn, layer)?;
            shikong_gpkg::drop_rtree_triggers(&conn, &layer.name, "geom")?;
            conn.execute(
                "INSERT INTO sk_layers (name, title, definition, tx) VALUES (?1, ?2, ?3, 0)",
                params![layer.name, layer.title, layer.to_definition().to_string()],
            )?;
            by_name.insert(layer.name.clone(), (layer.clone(), table::insert_sql(layer)));
        }
        Ok(ReplicaWriter { conn, path: path.to_owned(), layers: by_name, features: 0 })
    }

    /// Adds one live feature at store `version`, with its entity document when it has an explicit
    /// one (`None`: the document is the deterministic base of `feature`, derived when needed).
    /// Features are the store's, already valid: only their fields are checked against the layer.
    pub fn add_feature(&mut self, layer: &str, feature: &Feature, version: i64, doc: Option<&[u8]>) -> Result<()> {
        let (def, sql) = self.layers.get(layer).ok_or_else(|| ReplicaError::NoSuchLayer(layer.to_owned()))?;
        let values = table::values(def, feature, Some(version))?;
        self.conn.prepare_cached(sql)?.execute(params_from_iter(values))?;
        if let Some(doc) = doc {
            self.conn
                .prepare_cached(
                    "INSERT INTO sk_docs (entity_id, layer, code, version, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![feature.id.to_string(), layer, feature.code, version, doc])?;
        }
        self.features += 1;
        Ok(())
    }

    /// Features added so far.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// Builds the indexes and triggers, records `cursor` (the server's opaque pull cursor for the
    /// store transaction the replica was cut at) and commits. Returns the file's path.
    pub fn finish(self, cursor: &str) -> Result<PathBuf> {
        let conn = &self.conn;
        let mut names: Vec<&String> = self.layers.keys().collect();
        names.sort();
        for name in names {
            let (layer, _) = &self.layers[name];
            shikong_gpkg::rebuild_rtree(conn, name, "geom")?;
            shikong_gpkg::create_rtree_triggers(conn, name, "geom")?;
            shikong_gpkg::update_extent(conn, name, "geom")?;
            table::create_indexes(conn, name).map_err(|e| match e {
                ReplicaError::Sqlite(rusqlite::Error::SqliteFailure(f, Some(m)))
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    ReplicaError::BadLayer {
                        layer: name.clone(),
                        message: format!("two features share an id or code ({m})"),
                    }
                }
                other => other,
            })?;
            table::create_triggers(conn, layer)?;
        }
        format::set_meta(conn, format::key::CURSOR, Some(cursor))?;
        conn.execute_batch("COMMIT; PRAGMA synchronous = FULL;")?;
        Ok(self.path)
    }
}
