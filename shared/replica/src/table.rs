//! One layer's GeoPackage feature table in a replica: laid out like the central store's table
//! (`fid`, `geom`, `entity_id`, `code`, `valid_from`, `valid_to`, `sk_version`, then the fields by
//! name), so QGIS shows a replica layer exactly as it shows the store's. Reading and writing rows,
//! schema changes by field id, and the triggers that keep the table usable from QGIS.

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, Row as SqlRow, params_from_iter};
use shikong_gpkg::{ColumnDef, FeatureTableDef, quote_ident};
use shikong_model::{EntityId, Feature, Properties, ValidTime};

use crate::codec;
use crate::error::{ReplicaError, Result};
use crate::format::ReplicaLayer;

/// System columns after `fid` and `geom`, in order.
pub(crate) const SYSTEM_COLUMNS: [&str; 5] = ["entity_id", "code", "valid_from", "valid_to", "sk_version"];

/// A feature-table row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub fid: i64,
    pub feature: Feature,
    /// The server version the row reflects; `None` for an entity created here and not yet accepted.
    pub version: Option<i64>,
}

/// Creates the table, registers it and its R-tree. `identifier_taken` says whether the title is
/// already an identifier in `gpkg_contents` (then the table name is used: identifiers are unique).
pub(crate) fn create(conn: &Connection, layer: &ReplicaLayer) -> Result<()> {
    let mut columns = vec![
        ColumnDef::new("entity_id", "TEXT"),
        ColumnDef::new("code", "TEXT"),
        ColumnDef::new("valid_from", "DATETIME"),
        ColumnDef::new("valid_to", "DATETIME"),
        ColumnDef::new("sk_version", "INTEGER"),
    ];
    columns.extend(layer.schema.fields.iter().map(|f| ColumnDef::new(&f.name, f.ty.sql_type())));
    let identifier = identifier(conn, layer)?;
    shikong_gpkg::create_feature_table(
        conn,
        &FeatureTableDef {
            table: &layer.name,
            identifier: &identifier,
            description: layer.description.as_deref().unwrap_or(""),
            geometry_column: "geom",
            kind: layer.geometry_kind,
            has_z: layer.has_z,
            srs_id: crate::SRS_ID,
            columns: &columns,
        },
    )?;
    Ok(())
}

/// `gpkg_contents.identifier` for the layer: its title unless another table uses it.
fn identifier(conn: &Connection, layer: &ReplicaLayer) -> Result<String> {
    let Some(title) = layer.title.as_deref().filter(|t| !t.trim().is_empty()) else {
        return Ok(layer.name.clone());
    };
    let taken = conn
        .query_row(
            "SELECT 1 FROM gpkg_contents WHERE identifier = ?1 AND table_name != ?2",
            [title, &layer.name],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    Ok(if taken { layer.name.clone() } else { title.to_owned() })
}

/// The index that finds a row by entity id. It holds the last 12 hex digits of the UUID only (48
/// random bits in a UUID v4 or v7) and every lookup compares the full id as well ([`ID_MATCH`]):
/// half the size of an index on the whole text, which is what keeps a replica near the size of a
/// plain GeoPackage (see `docs/replica-format.md`). Codes have no index: uniqueness is checked by
/// the editing code and by the server, and a search by code scans (tens of milliseconds for
/// 100,000 rows). Created after a bulk load: an index built in one sort is faster to make and
/// smaller than one grown row by row.
pub(crate) fn create_indexes(conn: &Connection, layer: &str) -> Result<()> {
    conn.execute_batch(&format!(
        "CREATE INDEX IF NOT EXISTS {} ON {} (substr(entity_id, 25));",
        quote_ident(&format!("sk_idx_{layer}_entity")),
        quote_ident(layer),
    ))?;
    Ok(())
}

/// The condition matching `?1` (an entity id) through the index of [`create_indexes`]; the
/// expression must stay exactly as indexed or SQLite scans.
pub(crate) const ID_MATCH: &str = "substr(entity_id, 25) = substr(?1, 25) AND entity_id = ?1";

/// SQL making a random UUID (version 4) text: a row QGIS inserts gets an entity id at once.
const SQL_UUID: &str = "lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || \
    substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || \
    substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))";

fn trigger_name(layer: &str, what: &str) -> String {
    quote_ident(&format!("sk_trg_{layer}_{what}"))
}

/// Triggers for edits made outside this crate (QGIS): new rows get an entity id, and every
/// inserted, updated or deleted row is noted in `sk_capture` with its state before the first
/// outside edit, so [`crate::Replica::import_external_edits`] can turn it into document changes.
/// Triggers go by column names, so they are made again after a schema change.
pub(crate) fn create_triggers(conn: &Connection, layer: &ReplicaLayer) -> Result<()> {
    drop_triggers(conn, &layer.name)?;
    let t = quote_ident(&layer.name);
    let lit = layer.name.replace('\'', "''");
    let mut old = vec![
        "'geom', hex(OLD.geom)".to_owned(),
        "'entity_id', OLD.entity_id".to_owned(),
        "'code', OLD.code".to_owned(),
        "'valid_from', OLD.valid_from".to_owned(),
        "'valid_to', OLD.valid_to".to_owned(),
        "'sk_version', OLD.sk_version".to_owned(),
    ];
    for f in &layer.schema.fields {
        old.push(format!("'{}', OLD.{}", f.name.replace('\'', "''"), quote_ident(&f.name)));
    }
    let old = format!("json_object({})", old.join(", "));
    conn.execute_batch(&format!(
        "CREATE TRIGGER {new_id} AFTER INSERT ON {t} WHEN NEW.entity_id IS NULL
         BEGIN UPDATE {t} SET entity_id = {SQL_UUID} WHERE fid = NEW.fid; END;
         CREATE TRIGGER {ins} AFTER INSERT ON {t}
         BEGIN INSERT OR IGNORE INTO sk_capture (layer, fid, old) VALUES ('{lit}', NEW.fid, NULL); END;
         CREATE TRIGGER {upd} AFTER UPDATE ON {t}
         BEGIN INSERT OR IGNORE INTO sk_capture (layer, fid, old) VALUES ('{lit}', OLD.fid, {old}); END;
         CREATE TRIGGER {del} AFTER DELETE ON {t}
         BEGIN INSERT OR IGNORE INTO sk_capture (layer, fid, old) VALUES ('{lit}', OLD.fid, {old}); END;",
        new_id = trigger_name(&layer.name, "new_id"),
        ins = trigger_name(&layer.name, "capture_insert"),
        upd = trigger_name(&layer.name, "capture_update"),
        del = trigger_name(&layer.name, "capture_delete"),
    ))?;
    Ok(())
}

pub(crate) fn drop_triggers(conn: &Connection, layer: &str) -> Result<()> {
    for what in ["new_id", "capture_insert", "capture_update", "capture_delete"] {
        conn.execute_batch(&format!("DROP TRIGGER IF EXISTS {};", trigger_name(layer, what)))?;
    }
    Ok(())
}

/// `geom, entity_id, …, sk_version, <fields>` for INSERT/UPDATE.
fn write_columns(layer: &ReplicaLayer) -> Vec<String> {
    let mut cols = vec!["geom".to_owned()];
    cols.extend(SYSTEM_COLUMNS.iter().map(|c| (*c).to_owned()));
    cols.extend(layer.schema.fields.iter().map(|f| quote_ident(&f.name)));
    cols
}

pub(crate) fn insert_sql(layer: &ReplicaLayer) -> String {
    let cols = write_columns(layer);
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    format!("INSERT INTO {} ({}) VALUES ({})", quote_ident(&layer.name), cols.join(", "), marks.join(", "))
}

fn update_sql(layer: &ReplicaLayer) -> String {
    let cols = write_columns(layer);
    let sets: Vec<String> = cols.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 1)).collect();
    format!("UPDATE {} SET {} WHERE fid = ?{}", quote_ident(&layer.name), sets.join(", "), cols.len() + 1)
}

/// The column values of `f` in [`write_columns`] order. Properties that are not fields of the
/// layer are an error (a bug upstream, or a schema the replica has not pulled yet).
pub(crate) fn values(layer: &ReplicaLayer, f: &Feature, version: Option<i64>) -> Result<Vec<Sql>> {
    if let Some(name) = f.properties.keys().find(|n| layer.schema.field(n).is_none()) {
        return Err(ReplicaError::BadLayer {
            layer: layer.name.clone(),
            message: format!("feature `{}` has a value for `{name}`, which is not a field of this layer", f.code),
        });
    }
    let mut v = Vec::with_capacity(6 + layer.schema.fields.len());
    v.push(codec::geometry_to_sql(f.geometry.as_ref()));
    v.push(Sql::Text(f.id.to_string()));
    v.push(Sql::Text(f.code.clone()));
    v.push(codec::time_to_sql(f.valid.from));
    v.push(codec::time_to_sql(f.valid.to));
    v.push(version.map_or(Sql::Null, Sql::Integer));
    for field in &layer.schema.fields {
        v.push(f.properties.get(&field.name).map_or(Sql::Null, codec::to_sql));
    }
    Ok(v)
}

pub(crate) fn insert(conn: &Connection, layer: &ReplicaLayer, f: &Feature, version: Option<i64>) -> Result<i64> {
    let vals = values(layer, f, version)?;
    conn.prepare_cached(&insert_sql(layer))?.execute(params_from_iter(vals))?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn update(
    conn: &Connection,
    layer: &ReplicaLayer,
    fid: i64,
    f: &Feature,
    version: Option<i64>,
) -> Result<()> {
    let mut vals = values(layer, f, version)?;
    vals.push(Sql::Integer(fid));
    conn.prepare_cached(&update_sql(layer))?.execute(params_from_iter(vals))?;
    Ok(())
}

/// Writes `f` as the entity's row: updates the row with its entity id, or inserts one.
pub(crate) fn upsert(conn: &Connection, layer: &ReplicaLayer, f: &Feature, version: Option<i64>) -> Result<()> {
    match fid_of(conn, &layer.name, f.id)? {
        Some(fid) => update(conn, layer, fid, f, version),
        None => insert(conn, layer, f, version).map(|_| ()),
    }
}

/// [`upsert`] for an edit that left the geometry as the row has it: the update leaves the
/// geometry column alone, so the R-tree triggers (`AFTER UPDATE OF geom`) do not fire and the
/// geometry is not encoded again — most of an attribute edit's write otherwise.
pub(crate) fn upsert_attributes(
    conn: &Connection,
    layer: &ReplicaLayer,
    f: &Feature,
    version: Option<i64>,
) -> Result<()> {
    let Some(fid) = fid_of(conn, &layer.name, f.id)? else {
        return insert(conn, layer, f, version).map(|_| ());
    };
    let mut vals = values(layer, f, version)?;
    vals.remove(0);
    vals.push(Sql::Integer(fid));
    let cols = &write_columns(layer)[1..];
    let sets: Vec<String> = cols.iter().enumerate().map(|(i, c)| format!("{c} = ?{}", i + 1)).collect();
    let sql = format!("UPDATE {} SET {} WHERE fid = ?{}", quote_ident(&layer.name), sets.join(", "), cols.len() + 1);
    conn.prepare_cached(&sql)?.execute(params_from_iter(vals))?;
    Ok(())
}

pub(crate) fn delete(conn: &Connection, layer: &str, id: EntityId) -> Result<()> {
    conn.prepare_cached(&format!("DELETE FROM {} WHERE {ID_MATCH}", quote_ident(layer)))?.execute([id.to_string()])?;
    Ok(())
}

pub(crate) fn fid_of(conn: &Connection, layer: &str, id: EntityId) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(&format!("SELECT fid FROM {} WHERE {ID_MATCH}", quote_ident(layer)))?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?)
}

pub(crate) fn set_version(conn: &Connection, layer: &str, id: EntityId, version: i64) -> Result<()> {
    conn.prepare_cached(&format!("UPDATE {} SET sk_version = ?2 WHERE {ID_MATCH}", quote_ident(layer)))?
        .execute(rusqlite::params![id.to_string(), version])?;
    Ok(())
}

/// Marks the row's server version unknown: -1, which no server gives, so the end-of-sync
/// verification counts the row, sees it differ (or find no such entity there) and fetches the
/// entity as the server has it. (NULL would leave the row out of the count: a row the server
/// deleted would then stay.)
pub(crate) fn forget_version(conn: &Connection, layer: &str, id: EntityId) -> Result<()> {
    set_version(conn, layer, id, UNKNOWN_VERSION)
}

/// See [`forget_version`].
pub(crate) const UNKNOWN_VERSION: i64 = -1;

/// Whether another entity than `except` holds `code` in the layer, visible or kept for its local
/// changes.
pub(crate) fn code_taken(conn: &Connection, layer: &str, code: &str, except: EntityId) -> Result<bool> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT 1 FROM {} WHERE code = ?1 AND entity_id != ?3 \
             UNION ALL SELECT 1 FROM sk_docs WHERE layer = ?2 AND code = ?1 AND entity_id != ?3 LIMIT 1",
            quote_ident(layer)
        ))?
        .query_row([code, layer, &except.to_string()], |_| Ok(()))
        .optional()?
        .is_some())
}

/// `SELECT` with the columns [`decode`] expects; `filter` follows `WHERE` when not empty.
pub(crate) fn select_sql(layer: &ReplicaLayer, filter: &str) -> String {
    let mut cols: Vec<String> = vec!["t.fid".into(), "t.geom".into()];
    cols.extend(SYSTEM_COLUMNS.iter().map(|c| format!("t.{c}")));
    cols.extend(layer.schema.fields.iter().map(|f| format!("t.{}", quote_ident(&f.name))));
    let mut sql = format!("SELECT {} FROM {} AS t", cols.join(", "), quote_ident(&layer.name));
    if !filter.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(filter);
    }
    sql
}

pub(crate) fn decode(layer: &ReplicaLayer, r: &SqlRow<'_>) -> Result<Row> {
    let fid: i64 = r.get(0)?;
    let bad = |column: &str, message: String| ReplicaError::BadValue {
        layer: layer.name.clone(),
        fid,
        column: column.to_owned(),
        message,
    };
    let geometry = codec::geometry_from_sql(r.get_ref(1)?).map_err(|m| bad("geom", m))?;
    let id: Option<String> = r.get(2)?;
    let id = id.ok_or_else(|| bad("entity_id", "is empty".into()))?;
    let id: EntityId = id.parse().map_err(|e: shikong_model::ModelError| bad("entity_id", e.to_string()))?;
    let code: Option<String> = r.get(3)?;
    let time = |i: usize, column: &str| codec::time_from_sql(r.get_ref(i)?).map_err(|e| bad(column, e.to_string()));
    let valid = ValidTime { from: time(4, "valid_from")?, to: time(5, "valid_to")? };
    let version: Option<i64> = r.get(6)?;
    let mut properties = Properties::new();
    for (i, f) in layer.schema.fields.iter().enumerate() {
        let v = codec::from_sql(r.get_ref(7 + i)?, f.ty).map_err(|e| bad(&f.name, e.to_string()))?;
        if !v.is_null() {
            properties.insert(f.name.clone(), v);
        }
    }
    Ok(Row { fid, feature: Feature { id, code: code.unwrap_or_default(), geometry, valid, properties }, version })
}

pub(crate) fn by_id(conn: &Connection, layer: &ReplicaLayer, id: EntityId) -> Result<Option<Row>> {
    one(conn, layer, ID_MATCH, &id.to_string())
}

/// Row ids by code, per layer, learnt in one scan of a layer's codes. Codes have no index (see
/// [`create_indexes`]), so without this every lookup by code scans the table: a bulk fix of
/// many features by code would scan once per feature. The map is a hint, never trusted: a hit is
/// read by its row id and kept only when the row still has that code; a miss or a stale hit
/// scans the layer again and relearns it. Anything may change the table meanwhile (pulls, QGIS):
/// the answer is always what a scan would give, as codes are unique in a layer.
#[derive(Debug, Default)]
pub(crate) struct CodeCache(
    std::cell::RefCell<std::collections::HashMap<String, std::collections::HashMap<String, i64>>>,
);

impl CodeCache {
    /// The row with `code` in `layer`, as a scan by code finds it.
    pub(crate) fn by_code(&self, conn: &Connection, layer: &ReplicaLayer, code: &str) -> Result<Option<Row>> {
        let hint = self.0.borrow().get(&layer.name).and_then(|m| m.get(code)).copied();
        if let Some(fid) = hint
            && let Some(row) = one_fid(conn, layer, fid)?
            && row.feature.code == code
        {
            return Ok(Some(row));
        }
        // Unknown or stale: learn the layer's codes again, the first row of a code winning as
        // in a scan by code.
        let mut map = std::collections::HashMap::new();
        {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT fid, code FROM {} ORDER BY fid", quote_ident(&layer.name)))?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                if let Some(c) = r.get::<_, Option<String>>(1)? {
                    map.entry(c).or_insert(r.get::<_, i64>(0)?);
                }
            }
        }
        let found = map.get(code).copied();
        self.0.borrow_mut().insert(layer.name.clone(), map);
        match found {
            Some(fid) => one_fid(conn, layer, fid),
            None => Ok(None),
        }
    }
}

fn one_fid(conn: &Connection, layer: &ReplicaLayer, fid: i64) -> Result<Option<Row>> {
    let mut stmt = conn.prepare_cached(&select_sql(layer, "t.fid = ?1"))?;
    let mut rows = stmt.query([fid])?;
    match rows.next()? {
        Some(r) => Ok(Some(decode(layer, r)?)),
        None => Ok(None),
    }
}

pub(crate) fn by_fid(conn: &Connection, layer: &ReplicaLayer, fid: i64) -> Result<Option<Row>> {
    one(conn, layer, "t.fid = ?1", &fid.to_string())
}

fn one(conn: &Connection, layer: &ReplicaLayer, cond: &str, arg: &str) -> Result<Option<Row>> {
    let mut stmt = conn.prepare_cached(&select_sql(layer, cond))?;
    let mut rows = stmt.query([arg])?;
    match rows.next()? {
        Some(r) => Ok(Some(decode(layer, r)?)),
        None => Ok(None),
    }
}

/// Applies a redefinition to the table: new field ids become new columns, renamed ids renamed
/// columns (data kept); the title, description and Z flag follow. Removing a field or changing its
/// type is refused, as the store refuses it.
pub(crate) fn alter(conn: &Connection, old: &ReplicaLayer, new: &ReplicaLayer) -> Result<()> {
    let refuse = |message: String| ReplicaError::BadLayer { layer: old.name.clone(), message };
    if new.name != old.name {
        return Err(refuse(format!("a layer cannot be renamed (to `{}`)", new.name)));
    }
    if new.geometry_kind != old.geometry_kind {
        return Err(refuse(format!("the geometry type cannot change ({} → {})", old.geometry_kind, new.geometry_kind)));
    }
    for of in &old.schema.fields {
        match new.schema.field_by_id(&of.id) {
            None => {
                return Err(refuse(format!(
                    "field `{}` (id {}) was removed; fields are retired, never removed",
                    of.name, of.id
                )));
            }
            Some(nf) if nf.ty != of.ty => {
                return Err(refuse(format!("field `{}` changed type ({} → {})", of.name, of.ty.name(), nf.ty.name())));
            }
            Some(_) => {}
        }
    }
    let t = quote_ident(&old.name);
    // Renames first, through temporary names, so swapping two names works.
    let renamed: Vec<_> = new
        .schema
        .fields
        .iter()
        .filter_map(|nf| old.schema.field_by_id(&nf.id).filter(|of| of.name != nf.name).map(|of| (of, nf)))
        .collect();
    for (of, nf) in &renamed {
        conn.execute_batch(&format!(
            "ALTER TABLE {t} RENAME COLUMN {} TO {};",
            quote_ident(&of.name),
            quote_ident(&format!("sk_tmp_{}", nf.id))
        ))?;
    }
    for (_, nf) in &renamed {
        conn.execute_batch(&format!(
            "ALTER TABLE {t} RENAME COLUMN {} TO {};",
            quote_ident(&format!("sk_tmp_{}", nf.id)),
            quote_ident(&nf.name)
        ))?;
    }
    for nf in new.schema.fields.iter().filter(|nf| old.schema.field_by_id(&nf.id).is_none()) {
        conn.execute_batch(&format!("ALTER TABLE {t} ADD COLUMN {} {};", quote_ident(&nf.name), nf.ty.sql_type()))?;
    }
    if new.has_z != old.has_z {
        conn.execute(
            "UPDATE gpkg_geometry_columns SET z = ?2 WHERE table_name = ?1",
            rusqlite::params![new.name, i32::from(new.has_z) * 2],
        )?;
    }
    let identifier = identifier(conn, new)?;
    conn.execute(
        "UPDATE gpkg_contents SET identifier = ?2, description = ?3 WHERE table_name = ?1",
        rusqlite::params![new.name, identifier, new.description.clone().unwrap_or_default()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shikong_model::{GeometryKind, LayerSchema};

    fn layer() -> ReplicaLayer {
        ReplicaLayer {
            name: "manhole".into(),
            title: Some("井盖".into()),
            description: None,
            geometry_kind: GeometryKind::Point,
            has_z: false,
            schema: LayerSchema::default(),
            public: false,
            citizen_reports: false,
        }
    }

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map(["0192f3c4-0000-7000-8000-000000000001"], |r| r.get::<_, String>(3)).unwrap();
        rows.collect::<rusqlite::Result<Vec<_>>>().unwrap().join("; ")
    }

    /// The compact id index only helps if SQLite uses it: every way this crate looks an entity up
    /// by id must be planned as an index search.
    #[test]
    fn lookups_by_id_use_the_compact_index() {
        let conn = Connection::open_in_memory().unwrap();
        shikong_gpkg::init(&conn).unwrap();
        create(&conn, &layer()).unwrap();
        create_indexes(&conn, "manhole").unwrap();
        for sql in [
            select_sql(&layer(), ID_MATCH),
            format!("SELECT fid FROM manhole WHERE {ID_MATCH}"),
            format!("UPDATE manhole SET sk_version = 2 WHERE {ID_MATCH}"),
            format!("DELETE FROM manhole WHERE {ID_MATCH}"),
        ] {
            let p = plan(&conn, &sql);
            assert!(p.contains("USING INDEX sk_idx_manhole_entity"), "{sql}: {p}");
        }
    }
}
