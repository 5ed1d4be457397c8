//! Layer metadata (`sk_layers`, `sk_schema_history`) and each layer's two tables:
//!
//! - `"<name>"`: the live layer, one row per live entity, a column per field with the field's
//!   PostgreSQL type ([`super::codec::column_type`]) and `geom geometry(<KIND>, 4490)` with a GiST
//!   index — QGIS and GDAL list it as a normal PostGIS layer. The primary key is `entity_id`
//!   (what Citus would distribute by); `fid` (identity) orders rows within a transaction in the
//!   change feed. A 3-D layer's column is an unconstrained `geometry` with an SRID check, since
//!   a PostGIS Z typmod refuses the 2-D geometries such a layer also accepts.
//! - `"sk_hist_<name>"`: every superseded version with `[tx_from, tx_to)`, properties as `jsonb`
//!   keyed by field id, geometry with a GiST index, and one tombstone per deletion.
//!
//! Names: layer names are checked ASCII of at most 48 bytes (the shared rule), so every table and
//! index name stays under PostgreSQL's 63-byte identifier limit. Field names are Chinese more
//! often than not: a field is its own column while its name fits in 63 bytes (21 Chinese
//! characters), `sk_f_<field id>` beyond, with the name as the column's comment. The layer's title
//! is the table's comment.

use postgres::Row;
use shikong_model::{FieldDef, GeometryKind, HeightDatum, Theme, TxId};

use super::PgConn;
use super::codec::column_type;
use crate::error::{Result, StoreError};
use crate::logic::{self, assign_ids, invalid_schema};
use crate::types::{Layer, LayerDef};

/// PostgreSQL's identifier limit, in bytes.
const MAX_IDENT: usize = 63;

/// System columns of every live table, in order, after `fid` and `geom`.
pub(crate) const SYSTEM_COLUMNS: &[&str] =
    &["entity_id", "code", "valid_from", "valid_to", "sk_version", "sk_tx", "sk_device_time"];

fn quote(name: &str) -> String {
    shikong_query::quote_identifier(name)
}

/// The live table, quoted.
pub(crate) fn table(layer: &str) -> String {
    quote(layer)
}

/// The history table, quoted.
pub(crate) fn hist(layer: &str) -> String {
    quote(&format!("sk_hist_{layer}"))
}

/// The column holding `field` in the live table (unquoted).
pub(crate) fn column_name(field: &FieldDef) -> String {
    if field.name.len() <= MAX_IDENT && !field.name.contains('\0') {
        field.name.clone()
    } else {
        format!("sk_f_{}", field.id)
    }
}

/// The column holding `field` in the live table, quoted.
pub(crate) fn column(field: &FieldDef) -> String {
    quote(&column_name(field))
}

/// A name of an index of `layer`, unique per `what` (`:` cannot occur in a layer name, so no two
/// layers' index names meet; at most 3 + 48 + 1 + 9 bytes).
fn index(layer: &str, what: &str) -> String {
    quote(&format!("sk_{layer}:{what}"))
}

/// The name of the index `ensure_index` makes over `cols` (hashed: field names are long).
pub(crate) fn field_index(layer: &str, cols: &[String]) -> String {
    // FNV-1a: stable across builds (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in cols.join("\u{1f}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    index(layer, &format!("i{:08x}", (h >> 32) ^ (h & 0xffff_ffff)))
}

const LAYER_SELECT: &str = "SELECT l.name, l.title, l.description, l.geometry_kind, l.has_z, l.srs_id, l.schema, \
     l.theme, l.height_datum, l.public, l.citizen_reports, l.created_tx, l.min_x, l.min_y, l.max_x, l.max_y, \
     (SELECT max(h.tx) FROM sk_schema_history h WHERE h.layer = l.name) FROM sk_layers l";

fn decode(r: &Row) -> Result<Layer> {
    let name: String = r.try_get(0)?;
    let corrupt = |what: &str, e: serde_json::Error| StoreError::Corrupt(format!("layer `{name}` {what}: {e}"));
    let kind: String = r.try_get(3)?;
    let schema: String = r.try_get(6)?;
    let theme: String = r.try_get(7)?;
    let height: Option<String> = r.try_get(8)?;
    let extent = match (r.try_get(12)?, r.try_get(13)?, r.try_get(14)?, r.try_get(15)?) {
        (Some(min_x), Some(min_y), Some(max_x), Some(max_y)) => {
            Some(shikong_model::Bbox { min_x, min_y, max_x, max_y })
        }
        _ => None,
    };
    let created: i64 = r.try_get(11)?;
    let schema_tx: Option<i64> = r.try_get(16)?;
    Ok(Layer {
        def: LayerDef {
            title: r.try_get(1)?,
            description: r.try_get(2)?,
            geometry_kind: kind.parse().unwrap_or(GeometryKind::Geometry),
            has_z: r.try_get(4)?,
            schema: crate::sqlite::layers::parsed_schema(&schema).map_err(|e| corrupt("schema", e))?,
            theme: serde_json::from_str::<Theme>(&theme).map_err(|e| corrupt("theme", e))?,
            height_datum: height
                .map(|h| serde_json::from_str::<HeightDatum>(&h))
                .transpose()
                .map_err(|e| corrupt("height datum", e))?,
            public: r.try_get(9)?,
            citizen_reports: r.try_get(10)?,
            name: name.clone(),
        },
        srs_id: r.try_get(5)?,
        created_tx: TxId(created),
        extent,
        schema_tx: TxId(schema_tx.unwrap_or(created)),
    })
}

pub(crate) fn load(c: &mut PgConn, name: &str) -> Result<Layer> {
    let row = c
        .query_opt(&format!("{LAYER_SELECT} WHERE l.name = $1"), &[&name])?
        .ok_or_else(|| StoreError::NoSuchLayer(name.to_owned()))?;
    decode(&row)
}

/// A layer for a read, with the newest transaction of the snapshot and, given an instant, the
/// last transaction at or before it: one statement instead of three.
pub(crate) fn load_for_read(
    c: &mut PgConn,
    name: &str,
    at: Option<jiff::Timestamp>,
) -> Result<(Layer, TxId, Option<TxId>)> {
    let head = LAYER_SELECT.strip_suffix(" FROM sk_layers l").unwrap_or(LAYER_SELECT);
    let row = match at {
        None => c.query_opt(
            &format!("{head}, (SELECT max(tx) FROM sk_transactions), NULL::bigint FROM sk_layers l WHERE l.name = $1"),
            &[&name],
        )?,
        Some(t) => c.query_opt(
            &format!(
                "{head}, (SELECT max(tx) FROM sk_transactions), \
                 (SELECT max(tx) FROM sk_transactions WHERE time_us <= $2) FROM sk_layers l WHERE l.name = $1"
            ),
            &[&name, &t.as_microsecond()],
        )?,
    }
    .ok_or_else(|| StoreError::NoSuchLayer(name.to_owned()))?;
    let (latest, at_tx): (Option<i64>, Option<i64>) = (row.try_get(17)?, row.try_get(18)?);
    Ok((decode(&row)?, TxId(latest.unwrap_or(0)), at_tx.map(TxId)))
}

pub(crate) fn load_all(c: &mut PgConn) -> Result<Vec<Layer>> {
    c.query(&format!("{LAYER_SELECT} ORDER BY l.name"), &[])?.iter().map(decode).collect()
}

/// Every layer and the snapshot's newest transaction (in the same statement while there are
/// layers), for a read that must not be older than a given transaction (a standby's).
pub(crate) fn load_all_with_latest(c: &mut PgConn) -> Result<(Vec<Layer>, TxId)> {
    let head = LAYER_SELECT.strip_suffix(" FROM sk_layers l").unwrap_or(LAYER_SELECT);
    let rows =
        c.query(&format!("{head}, (SELECT max(tx) FROM sk_transactions) FROM sk_layers l ORDER BY l.name"), &[])?;
    let latest: Option<i64> = match rows.first() {
        Some(r) => r.try_get(17)?,
        None => c.query_one("SELECT max(tx) FROM sk_transactions", &[])?.try_get(0)?,
    };
    Ok((rows.iter().map(decode).collect::<Result<_>>()?, TxId(latest.unwrap_or(0))))
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// The type of the live table's `geom` column.
fn geom_type(kind: GeometryKind, has_z: bool) -> String {
    if has_z {
        // Typmods fix the dimension; a 3-D layer also accepts 2-D geometries.
        "geometry CHECK (ST_SRID(geom) = 4490)".into()
    } else {
        format!("geometry({}, 4490)", kind.name())
    }
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Comments for GIS users: the title on the table, the name on a column whose name did not fit.
fn comments(c: &mut PgConn, def: &LayerDef) -> Result<()> {
    let t = table(&def.name);
    let mut sql = format!("COMMENT ON TABLE {t} IS {};", def.title.as_deref().map_or("NULL".into(), literal));
    for f in def.schema.fields.iter().filter(|f| column_name(f) != f.name) {
        sql.push_str(&format!("COMMENT ON COLUMN {t}.{} IS {};", column(f), literal(&f.name)));
    }
    c.batch(&sql)
}

/// Creates the tables of a new layer and records it, in the caller's transaction.
pub(crate) fn create(c: &mut PgConn, mut def: LayerDef, tx: TxId) -> Result<Layer> {
    crate::sqlite::layers::check_name(&def.name)?;
    if c.query_opt("SELECT 1 FROM sk_layers WHERE name = $1", &[&def.name])?.is_some() {
        return Err(StoreError::LayerExists(def.name));
    }
    // A table of the database that is not a layer (PostGIS's `spatial_ref_sys`, …).
    let taken: bool = c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table(&def.name)])?.get(0);
    if taken {
        return Err(StoreError::InvalidLayerName {
            name: def.name,
            reason: "a table of that name already exists in the database".into(),
        });
    }
    def.schema.check().map_err(|e| invalid_schema(&def.name, e))?;
    let next_field_id = assign_ids(&mut def.schema, 1);
    let srs_id = 4490;
    let name = def.name.clone();
    let fields: Vec<String> =
        def.schema.fields.iter().map(|f| format!(",\n  {} {}", column(f), column_type(f.ty))).collect();
    let (t, h) = (table(&name), hist(&name));
    c.batch(&format!(
        "CREATE TABLE {t} (
           fid bigint GENERATED ALWAYS AS IDENTITY,
           geom {geom},
           entity_id uuid PRIMARY KEY,
           code text NOT NULL,
           valid_from timestamptz,
           valid_to timestamptz,
           sk_version bigint NOT NULL,
           sk_tx bigint NOT NULL,
           sk_device_time timestamptz{fields}
         );
         CREATE UNIQUE INDEX {code} ON {t} (code);
         CREATE INDEX {tx_idx} ON {t} (sk_tx, fid);
         CREATE INDEX {gist} ON {t} USING gist (geom);
         CREATE TABLE {h} (
           hid bigint GENERATED ALWAYS AS IDENTITY,
           entity_id uuid NOT NULL,
           version bigint NOT NULL,
           op text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
           tx_from bigint NOT NULL,
           tx_to bigint,
           code text,
           geom geometry CHECK (ST_SRID(geom) = 4490),
           valid_from timestamptz,
           valid_to timestamptz,
           device_time timestamptz,
           props jsonb NOT NULL,
           PRIMARY KEY (entity_id, version)
         );
         CREATE INDEX {h_from} ON {h} (tx_from);
         CREATE INDEX {h_to} ON {h} (tx_to);
         CREATE INDEX {h_code} ON {h} (code);
         CREATE INDEX {h_gist} ON {h} USING gist (geom);
         CREATE INDEX {h_tomb} ON {h} (tx_from, hid) WHERE op = 'delete' AND tx_to IS NULL;",
        geom = geom_type(def.geometry_kind, def.has_z),
        fields = fields.concat(),
        code = index(&name, "code"),
        tx_idx = index(&name, "tx"),
        gist = index(&name, "geom"),
        h_from = index(&name, "h_from"),
        h_to = index(&name, "h_to"),
        h_code = index(&name, "h_code"),
        h_gist = index(&name, "h_geom"),
        h_tomb = index(&name, "h_tomb"),
    ))?;
    comments(c, &def)?;
    c.execute(
        "INSERT INTO sk_layers (name, title, description, geometry_kind, has_z, srs_id, schema, theme, height_datum, \
         public, citizen_reports, next_field_id, created_tx) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[
            &name,
            &def.title,
            &def.description,
            &def.geometry_kind.name(),
            &def.has_z,
            &srs_id,
            &json(&def.schema),
            &json(&def.theme),
            &def.height_datum.as_ref().map(json),
            &def.public,
            &def.citizen_reports,
            &next_field_id,
            &tx.0,
        ],
    )?;
    c.execute(
        "INSERT INTO sk_schema_history (layer, tx, schema) VALUES ($1, $2, $3)",
        &[&name, &tx.0, &json(&def.schema)],
    )?;
    Ok(Layer { def, srs_id, created_tx: tx, extent: None, schema_tx: tx })
}

/// Applies a redefinition (see [`crate::StoreTx::update_layer`]); the caller validates live
/// features against tightened constraints.
pub(crate) fn update(c: &mut PgConn, old: &Layer, mut def: LayerDef, tx: TxId) -> Result<Layer> {
    logic::check_redefinition(old, &def)?;
    let name = old.name().to_owned();
    let next: i64 = c.query_one("SELECT next_field_id FROM sk_layers WHERE name = $1", &[&name])?.get(0);
    let next = assign_ids(&mut def.schema, next);
    let t = table(&name);
    // Renames first, through temporary names, so that swapping two names works.
    let renamed: Vec<(&FieldDef, &FieldDef)> = def
        .schema
        .fields
        .iter()
        .filter_map(|nf| old.schema().field_by_id(&nf.id).map(|of| (of, nf)))
        .filter(|(of, nf)| column_name(of) != column_name(nf))
        .collect();
    let mut ddl = String::new();
    for (of, nf) in &renamed {
        ddl.push_str(&format!(
            "ALTER TABLE {t} RENAME COLUMN {} TO {};",
            column(of),
            quote(&format!("sk_tmp_{}", nf.id))
        ));
    }
    for (_, nf) in &renamed {
        ddl.push_str(&format!(
            "ALTER TABLE {t} RENAME COLUMN {} TO {};",
            quote(&format!("sk_tmp_{}", nf.id)),
            column(nf)
        ));
    }
    for nf in def.schema.fields.iter().filter(|nf| old.schema().field_by_id(&nf.id).is_none()) {
        ddl.push_str(&format!("ALTER TABLE {t} ADD COLUMN {} {};", column(nf), column_type(nf.ty)));
    }
    if def.has_z && !old.def.has_z {
        ddl.push_str(&format!(
            "ALTER TABLE {t} ALTER COLUMN geom TYPE geometry USING geom; \
             ALTER TABLE {t} ADD CHECK (ST_SRID(geom) = 4490);"
        ));
    }
    if !ddl.is_empty() {
        c.batch(&ddl)?;
        c.forget_statements();
    }
    comments(c, &def)?;
    c.execute(
        "UPDATE sk_layers SET title = $2, description = $3, has_z = $4, schema = $5, theme = $6, height_datum = $7, \
         public = $8, citizen_reports = $9, next_field_id = $10 WHERE name = $1",
        &[
            &name,
            &def.title,
            &def.description,
            &def.has_z,
            &json(&def.schema),
            &json(&def.theme),
            &def.height_datum.as_ref().map(json),
            &def.public,
            &def.citizen_reports,
            &next,
        ],
    )?;
    c.execute(
        "INSERT INTO sk_schema_history (layer, tx, schema) VALUES ($1, $2, $3) \
         ON CONFLICT (layer, tx) DO UPDATE SET schema = excluded.schema",
        &[&name, &tx.0, &json(&def.schema)],
    )?;
    Ok(Layer { def, srs_id: old.srs_id, created_tx: old.created_tx, extent: old.extent, schema_tx: tx })
}
