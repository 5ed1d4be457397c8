//! Layer metadata (`sk_layers`) and the per-layer tables: the GeoPackage feature table holding the
//! current state, the history table and its R-tree.

use rusqlite::{Connection, OptionalExtension, params};
use shikong_gpkg::{ColumnDef, FeatureTableDef, quote_ident};
use shikong_model::{GeometryKind, HeightDatum, LayerSchema, Theme, TxId};

use crate::error::{Result, StoreError};
use crate::logic::{self, assign_ids, invalid_schema};
use crate::types::{Layer, LayerDef};

/// System columns of every feature table, in order, after `fid` and `geom`.
pub const SYSTEM_COLUMNS: &[&str] =
    &["entity_id", "code", "valid_from", "valid_to", "sk_version", "sk_tx", "sk_device_time"];

pub fn hist_table(layer: &str) -> String {
    format!("sk_hist_{layer}")
}

pub fn hist_rtree(layer: &str) -> String {
    format!("sk_hist_{layer}_rtree")
}

pub fn rtree(layer: &str) -> String {
    shikong_gpkg::rtree_name(layer, "geom")
}

/// Layer names are table names: ASCII so that URLs, file names and every GIS tool accept them.
pub fn check_name(name: &str) -> Result<()> {
    let bad = |reason: &str| StoreError::InvalidLayerName { name: name.to_owned(), reason: reason.to_owned() };
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_lowercase()) {
        return Err(bad("must start with a lowercase ASCII letter (put a Chinese name in the title)"));
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(bad("only lowercase ASCII letters, digits and `_` are allowed (put a Chinese name in the title)"));
    }
    if name.len() > 48 {
        return Err(bad("at most 48 characters"));
    }
    if ["sk_", "gpkg_", "rtree_", "sqlite_"].iter().any(|p| name.starts_with(p)) {
        return Err(bad("names starting with sk_, gpkg_, rtree_ or sqlite_ are reserved"));
    }
    // The server routes `/collections/catalog` to its catalog (OGC API – Records), not to a layer.
    if name == "catalog" {
        return Err(bad("`catalog` is reserved: /collections/catalog is the metadata catalog (OGC API – Records)"));
    }
    Ok(())
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn row_to_layer(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Layer, String, String, Option<String>)> {
    let kind: String = r.get("geometry_kind")?;
    let layer = Layer {
        def: LayerDef {
            name: r.get("name")?,
            title: r.get("title")?,
            description: r.get("description")?,
            geometry_kind: kind.parse().unwrap_or(GeometryKind::Geometry),
            has_z: r.get::<_, i64>("has_z")? != 0,
            schema: LayerSchema::default(),
            theme: Theme::default(),
            height_datum: None,
            public: r.get::<_, i64>("public")? != 0,
            citizen_reports: r.get::<_, i64>("citizen_reports")? != 0,
        },
        srs_id: r.get("srs_id")?,
        created_tx: TxId(r.get("created_tx")?),
        schema_tx: TxId(r.get("schema_tx")?),
        extent: match (r.get("min_x")?, r.get("min_y")?, r.get("max_x")?, r.get("max_y")?) {
            (Some(min_x), Some(min_y), Some(max_x), Some(max_y)) => {
                Some(shikong_model::Bbox { min_x, min_y, max_x, max_y })
            }
            _ => None,
        },
    };
    Ok((layer, r.get("schema")?, r.get("theme")?, r.get("height_datum")?))
}

fn finish(parts: (Layer, String, String, Option<String>)) -> Result<Layer> {
    let (mut layer, schema, theme, height) = parts;
    let corrupt =
        |what: &str, e: serde_json::Error| StoreError::Corrupt(format!("layer `{}` {what}: {e}", layer.def.name));
    layer.def.schema = parsed_schema(&schema).map_err(|e| corrupt("schema", e))?;
    layer.def.theme = serde_json::from_str(&theme).map_err(|e| corrupt("theme", e))?;
    layer.def.height_datum =
        height.map(|h| serde_json::from_str::<HeightDatum>(&h)).transpose().map_err(|e| corrupt("height datum", e))?;
    Ok(layer)
}

/// Parsed schemas by their JSON text. Every read loads its layer; parsing the schema each time was
/// a visible cost of sync merges. Keyed by the text itself, so a changed schema is never stale.
pub(crate) fn parsed_schema(json: &str) -> std::result::Result<LayerSchema, serde_json::Error> {
    type Cache = std::sync::Mutex<std::collections::HashMap<String, LayerSchema>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(s) = cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(json) {
        return Ok(s.clone());
    }
    let parsed: LayerSchema = serde_json::from_str(json)?;
    let mut c = cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if c.len() > 512 {
        c.clear();
    }
    c.insert(json.to_owned(), parsed.clone());
    Ok(parsed)
}

pub fn load(conn: &Connection, name: &str) -> Result<Layer> {
    let parts = conn
        .prepare_cached("SELECT l.*, c.min_x, c.min_y, c.max_x, c.max_y, (SELECT max(tx) FROM sk_schema_history h WHERE h.layer = l.name) AS schema_tx \
             FROM sk_layers l LEFT JOIN gpkg_contents c ON c.table_name = l.name WHERE l.name = ?1")?
        .query_row([name], row_to_layer)
        .optional()?
        .ok_or_else(|| StoreError::NoSuchLayer(name.to_owned()))?;
    finish(parts)
}

pub fn load_all(conn: &Connection) -> Result<Vec<Layer>> {
    let mut stmt = conn.prepare_cached("SELECT l.*, c.min_x, c.min_y, c.max_x, c.max_y, (SELECT max(tx) FROM sk_schema_history h WHERE h.layer = l.name) AS schema_tx \
         FROM sk_layers l LEFT JOIN gpkg_contents c ON c.table_name = l.name ORDER BY l.name")?;
    let rows = stmt.query_map([], row_to_layer)?.collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(finish).collect()
}

/// Creates all tables of a new layer and records it. Runs inside the caller's transaction.
pub fn create(conn: &Connection, mut def: LayerDef, tx: TxId) -> Result<Layer> {
    check_name(&def.name)?;
    if conn.query_row("SELECT 1 FROM sk_layers WHERE name = ?1", [&def.name], |_| Ok(())).optional()?.is_some() {
        return Err(StoreError::LayerExists(def.name));
    }
    def.schema.check().map_err(|e| invalid_schema(&def.name, e))?;
    let next_field_id = assign_ids(&mut def.schema, 1);
    let srs_id = 4490;
    let name = def.name.clone();
    let mut columns = vec![
        ColumnDef { not_null: true, unique: true, ..ColumnDef::new("entity_id", "TEXT") },
        ColumnDef { not_null: true, unique: true, ..ColumnDef::new("code", "TEXT") },
        ColumnDef::new("valid_from", "DATETIME"),
        ColumnDef::new("valid_to", "DATETIME"),
        ColumnDef { not_null: true, ..ColumnDef::new("sk_version", "INTEGER") },
        ColumnDef { not_null: true, ..ColumnDef::new("sk_tx", "INTEGER") },
        // When the edit was made on its device (offline edits reach the store later).
        ColumnDef::new("sk_device_time", "DATETIME"),
    ];
    columns.extend(def.schema.fields.iter().map(|f| ColumnDef::new(&f.name, f.ty.sql_type())));
    // gpkg_contents.identifier is unique across the file: fall back to the table name on a clash.
    let title_taken = match &def.title {
        Some(t) => {
            conn.query_row("SELECT 1 FROM gpkg_contents WHERE identifier = ?1", [t], |_| Ok(())).optional()?.is_some()
        }
        None => true,
    };
    let identifier = if title_taken { name.clone() } else { def.title.clone().unwrap_or_default() };
    shikong_gpkg::create_feature_table(
        conn,
        &FeatureTableDef {
            table: &name,
            identifier: &identifier,
            description: def.description.as_deref().unwrap_or(""),
            geometry_column: "geom",
            kind: def.geometry_kind,
            has_z: def.has_z,
            srs_id,
            columns: &columns,
        },
    )?;
    let t = quote_ident(&name);
    let h = quote_ident(&hist_table(&name));
    conn.execute_batch(&format!(
        "CREATE INDEX {idx_tx} ON {t} (sk_tx);
         CREATE TABLE {h} (
           hid INTEGER PRIMARY KEY,
           entity_id TEXT NOT NULL,
           version INTEGER NOT NULL,
           op TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
           tx_from INTEGER NOT NULL,
           tx_to INTEGER,
           code TEXT,
           geom BLOB,
           valid_from TEXT,
           valid_to TEXT,
           device_time TEXT,
           props TEXT NOT NULL,
           UNIQUE (entity_id, version)
         );
         CREATE INDEX {idx_from} ON {h} (tx_from);
         CREATE INDEX {idx_to} ON {h} (tx_to);
         CREATE INDEX {idx_code} ON {h} (code);
         CREATE VIRTUAL TABLE {hr} USING rtree(id, minx, maxx, miny, maxy);",
        idx_tx = quote_ident(&format!("sk_idx_{name}_tx")),
        idx_from = quote_ident(&format!("sk_idx_{name}_hist_from")),
        idx_to = quote_ident(&format!("sk_idx_{name}_hist_to")),
        idx_code = quote_ident(&format!("sk_idx_{name}_hist_code")),
        hr = quote_ident(&hist_rtree(&name)),
    ))?;
    conn.execute(
        "INSERT INTO sk_layers (name, title, description, geometry_kind, has_z, srs_id, schema, theme, height_datum, public, citizen_reports, next_field_id, created_tx) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            name,
            def.title,
            def.description,
            def.geometry_kind.name(),
            def.has_z,
            srs_id,
            json(&def.schema),
            json(&def.theme),
            def.height_datum.as_ref().map(json),
            def.public,
            def.citizen_reports,
            next_field_id,
            tx.0
        ],
    )?;
    conn.execute(
        "INSERT INTO sk_schema_history (layer, tx, schema) VALUES (?1, ?2, ?3)",
        params![name, tx.0, json(&def.schema)],
    )?;
    Ok(Layer { def, srs_id, created_tx: tx, extent: None, schema_tx: tx })
}

/// Applies a redefinition (see [`crate::StoreTx::update_layer`]). Validating live features
/// against tightened constraints is the caller's job (it has the feature decoder).
pub fn update(conn: &Connection, old: &Layer, mut def: LayerDef, tx: TxId) -> Result<Layer> {
    logic::check_redefinition(old, &def)?;
    let name = old.name().to_owned();
    let next: i64 = conn.query_row("SELECT next_field_id FROM sk_layers WHERE name = ?1", [&name], |r| r.get(0))?;
    let next = assign_ids(&mut def.schema, next);
    let t = quote_ident(&name);
    for nf in &def.schema.fields {
        match old.schema().field_by_id(&nf.id) {
            None => conn.execute_batch(&format!(
                "ALTER TABLE {t} ADD COLUMN {} {};",
                quote_ident(&nf.name),
                nf.ty.sql_type()
            ))?,
            Some(of) if of.name != nf.name => conn.execute_batch(&format!(
                "ALTER TABLE {t} RENAME COLUMN {} TO {};",
                quote_ident(&of.name),
                quote_ident(&nf.name)
            ))?,
            Some(_) => {}
        }
    }
    if def.has_z && !old.def.has_z {
        conn.execute("UPDATE gpkg_geometry_columns SET z = 2 WHERE table_name = ?1", [&name])?;
    }
    conn.execute(
        "UPDATE sk_layers SET title = ?2, description = ?3, has_z = ?4, schema = ?5, theme = ?6, height_datum = ?7, \
         public = ?8, citizen_reports = ?9, next_field_id = ?10 WHERE name = ?1",
        params![
            name,
            def.title,
            def.description,
            def.has_z,
            json(&def.schema),
            json(&def.theme),
            def.height_datum.as_ref().map(json),
            def.public,
            def.citizen_reports,
            next
        ],
    )?;
    conn.execute(
        "UPDATE gpkg_contents SET description = ?2 WHERE table_name = ?1",
        params![name, def.description.clone().unwrap_or_default()],
    )?;
    conn.execute(
        "INSERT OR REPLACE INTO sk_schema_history (layer, tx, schema) VALUES (?1, ?2, ?3)",
        params![name, tx.0, json(&def.schema)],
    )?;
    Ok(Layer { def, srs_id: old.srs_id, created_tx: old.created_tx, extent: old.extent, schema_tx: tx })
}
