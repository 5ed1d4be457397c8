//! The replica file format, version [`FORMAT_VERSION`] (spec: `docs/replica-format.md`): the hidden
//! tables beside the GeoPackage feature tables, the facts kept in `sk_replica`, and the layer
//! definitions in `sk_layers`.
//!
//! Architecture invariant: only this module writes DDL for the hidden tables; a change here is a
//! format change (bump [`FORMAT_VERSION`], keep reading the old one, update the spec).

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use shikong_model::{FieldDef, GeometryKind, LayerSchema, Theme};
use shikong_protocol::api::LayerDoc;
use uuid::Uuid;

use crate::error::{ReplicaError, Result};

/// The replica format this build writes and reads. A file with a higher number is refused.
pub const FORMAT_VERSION: i64 = 1;

/// Hidden tables. Only the read-only view `sk_replica_info` is registered in `gpkg_contents` (as
/// `attributes`): GDAL then lists registered tables only, so the hidden tables stay out of QGIS's
/// layer list, and a GIS user can read the replica's facts without being able to change them.
pub(crate) const DDL: &str = r#"
CREATE TABLE sk_replica (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  value TEXT
);
CREATE VIEW sk_replica_info AS SELECT id AS fid, key, value FROM sk_replica;
INSERT INTO gpkg_contents (table_name, data_type, identifier, description)
VALUES ('sk_replica_info', 'attributes', 'sk_replica_info', 'shikong 同步副本信息 (replica facts: server, user, sync cursor; read-only)');
CREATE TABLE sk_layers (
  name TEXT PRIMARY KEY,
  title TEXT,
  definition TEXT NOT NULL,
  tx INTEGER NOT NULL DEFAULT 0,
  next_code INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE sk_docs (
  entity_id TEXT PRIMARY KEY,
  layer TEXT NOT NULL,
  code TEXT,
  version INTEGER,
  doc BLOB NOT NULL
);
CREATE INDEX sk_docs_code ON sk_docs (layer, code);
CREATE TABLE sk_outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  layer TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  change BLOB NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  op TEXT NOT NULL,
  device_time TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'rejected')),
  error_code TEXT,
  reason TEXT,
  batch TEXT
);
CREATE INDEX sk_outbox_entity ON sk_outbox (entity_id);
CREATE INDEX sk_outbox_batch ON sk_outbox (batch);
CREATE TABLE sk_conflicts (
  id INTEGER PRIMARY KEY,
  layer TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  code TEXT NOT NULL,
  kind TEXT NOT NULL,
  attribute TEXT NOT NULL,
  winner TEXT NOT NULL,
  others TEXT NOT NULL
);
CREATE INDEX sk_conflicts_entity ON sk_conflicts (entity_id);
CREATE TABLE sk_blobs (
  sha256 TEXT PRIMARY KEY,
  mime TEXT NOT NULL,
  size INTEGER NOT NULL,
  data BLOB NOT NULL,
  evidence TEXT NOT NULL,
  confirmed INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL
);
CREATE TABLE sk_capture (
  id INTEGER PRIMARY KEY,
  layer TEXT NOT NULL,
  fid INTEGER NOT NULL,
  old TEXT,
  UNIQUE (layer, fid)
);
"#;

/// Offline field tasks (`tasks.rs`; spec: `docs/replica-format.md`, "Tasks"). Created on first use
/// with `IF NOT EXISTS`, so replicas written before them open unchanged (no format bump: an older
/// app ignores the two tables). `sk_tasks` is read-only for the device: the server's list of the
/// user's open cases, replaced whole at each sync. `sk_task_actions` is append-only: actions
/// recorded offline, sent at the next sync, their outcome written back; never edited otherwise.
pub(crate) const TASKS_DDL: &str = r#"
CREATE TABLE IF NOT EXISTS sk_tasks (
  case_id TEXT PRIMARY KEY,
  case_no TEXT NOT NULL,
  state TEXT NOT NULL,
  stage_deadline TEXT,
  doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sk_task_actions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  action_id TEXT NOT NULL UNIQUE,
  case_id TEXT NOT NULL,
  case_no TEXT,
  action TEXT NOT NULL,
  note TEXT,
  photos TEXT NOT NULL,
  device_time TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'applied', 'rejected')),
  kind TEXT,
  reason TEXT,
  state TEXT
);
"#;

/// Who a replica belongs to and what it covers, as the server states when cutting it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaInfo {
    pub id: Uuid,
    /// Base URL of the sync server the replica came from.
    pub server_url: String,
    pub user: String,
    pub device: Option<String>,
    /// The label shown in the device's list of replicas.
    pub name: Option<String>,
    /// The area of a selective replica: polygon WKT (CGCS2000) or `admin:CODE`; `None` = everything.
    pub area: Option<String>,
    pub created_at: Timestamp,
}

/// A layer as a replica holds it: what forms need, nothing of the store's internals.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaLayer {
    /// Table name (ASCII, as in the store).
    pub name: String,
    /// Display name, usually Chinese (`gpkg_contents.identifier` when unique in the file).
    pub title: Option<String>,
    pub description: Option<String>,
    pub geometry_kind: GeometryKind,
    pub has_z: bool,
    /// Every field has a stable, non-empty id.
    pub schema: LayerSchema,
    pub public: bool,
    pub citizen_reports: bool,
}

/// A layer definition as the server sends it (`shikong layer show` JSON). Members the replica does
/// not use (theme, height datum) are kept in the stored JSON, not here.
#[derive(Debug, Deserialize)]
struct Definition {
    name: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    geometry_type: String,
    #[serde(default)]
    has_z: bool,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    citizen_reports: bool,
    fields: Vec<FieldDef>,
}

impl ReplicaLayer {
    /// The display name: title when set, otherwise the table name.
    pub fn display_name(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.name)
    }

    /// Reads a stored layer definition (the `shikong layer show` JSON document in `sk_layers`)
    /// and checks it.
    pub fn from_definition(definition: &Json) -> Result<ReplicaLayer> {
        let name = definition.get("name").and_then(Json::as_str).unwrap_or("?").to_owned();
        let d: Definition = serde_json::from_value(definition.clone())
            .map_err(|e| ReplicaError::BadLayer { layer: name, message: format!("definition: {e}") })?;
        Self::from_doc(&LayerDoc {
            name: d.name,
            title: d.title,
            description: d.description,
            geometry_type: d.geometry_type,
            has_z: d.has_z,
            theme: Theme::default(),
            height_datum: None,
            public: d.public,
            citizen_reports: d.citizen_reports,
            fields: d.fields,
        })
    }

    /// Reads a layer definition as sync sends it ([`shikong_protocol::LayerUpdate::definition`])
    /// and checks it.
    pub fn from_doc(doc: &LayerDoc) -> Result<ReplicaLayer> {
        let bad = |message: String| ReplicaError::BadLayer { layer: doc.name.clone(), message };
        let geometry_kind: GeometryKind = doc.geometry_type.parse().map_err(|e| bad(format!("geometry_type: {e}")))?;
        let layer = ReplicaLayer {
            name: doc.name.clone(),
            title: doc.title.clone(),
            description: doc.description.clone(),
            geometry_kind,
            has_z: doc.has_z,
            schema: LayerSchema { fields: doc.fields.clone() },
            public: doc.public,
            citizen_reports: doc.citizen_reports,
        };
        layer.check()?;
        Ok(layer)
    }

    /// The definition as sync sends it (without theme and height datum, which a replica does not
    /// keep apart from the stored JSON).
    pub fn to_doc(&self) -> LayerDoc {
        LayerDoc {
            name: self.name.clone(),
            title: self.title.clone(),
            description: self.description.clone(),
            geometry_type: self.geometry_kind.name().to_owned(),
            has_z: self.has_z,
            theme: Theme::default(),
            height_datum: None,
            public: self.public,
            citizen_reports: self.citizen_reports,
            fields: self.schema.fields.clone(),
        }
    }

    /// The definition JSON (same shape as the server's `shikong layer show`).
    pub fn to_definition(&self) -> Json {
        json!({
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "geometry_type": self.geometry_kind.name(),
            "has_z": self.has_z,
            "public": self.public,
            "citizen_reports": self.citizen_reports,
            "fields": self.schema.fields,
        })
    }

    /// The checks a replica needs: a safe table name, a valid schema, and a stable id on every
    /// field (documents and renames go by id).
    pub fn check(&self) -> Result<()> {
        let bad = |message: String| ReplicaError::BadLayer { layer: self.name.clone(), message };
        check_name(&self.name).map_err(|m| bad(m.to_owned()))?;
        self.schema.check().map_err(|e| bad(e.to_string()))?;
        if let Some(f) = self.schema.fields.iter().find(|f| f.id.trim().is_empty()) {
            return Err(bad(format!("field `{}` has no id (the store assigns one to every field)", f.name)));
        }
        Ok(())
    }
}

/// Layer names are table names: the store's rule (lowercase ASCII, digits, `_`, not one of the
/// reserved prefixes), so a replica table never collides with a GeoPackage or hidden table.
pub(crate) fn check_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_lowercase()) {
        return Err("a layer name must start with a lowercase ASCII letter");
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err("a layer name has only lowercase ASCII letters, digits and `_`");
    }
    if name.len() > 48 {
        return Err("a layer name has at most 48 characters");
    }
    if ["sk_", "gpkg_", "rtree_", "sqlite_"].iter().any(|p| name.starts_with(p)) {
        return Err("layer names starting with sk_, gpkg_, rtree_ or sqlite_ are reserved");
    }
    Ok(())
}

/// Keys of `sk_replica`.
pub(crate) mod key {
    pub const FORMAT_VERSION: &str = "format_version";
    pub const REPLICA_ID: &str = "replica_id";
    pub const ACTOR: &str = "actor";
    pub const ACTOR_USED: &str = "actor_used";
    pub const SERVER_URL: &str = "server_url";
    pub const USER: &str = "user";
    pub const DEVICE: &str = "device";
    pub const NAME: &str = "name";
    pub const AREA: &str = "area";
    pub const LAYERS: &str = "layers";
    pub const CREATED_AT: &str = "created_at";
    pub const CURSOR: &str = "cursor";
    /// The newest server mark a push answer or pull page carried (`resend`).
    pub const SERVER_MARK: &str = "server_mark";
}

pub(crate) fn set_meta(conn: &Connection, k: &str, v: Option<&str>) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO sk_replica (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![k, v])?;
    Ok(())
}

pub(crate) fn get_meta(conn: &Connection, k: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM sk_replica WHERE key = ?1")?
        .query_row([k], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

pub(crate) fn write_info(conn: &Connection, info: &ReplicaInfo, actor: &str, layers: &[ReplicaLayer]) -> Result<()> {
    let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    let facts: [(&str, Option<String>); 11] = [
        (key::FORMAT_VERSION, Some(FORMAT_VERSION.to_string())),
        (key::REPLICA_ID, Some(info.id.hyphenated().to_string())),
        (key::ACTOR, Some(actor.to_owned())),
        (key::ACTOR_USED, Some("0".into())),
        (key::SERVER_URL, Some(info.server_url.clone())),
        (key::USER, Some(info.user.clone())),
        (key::DEVICE, info.device.clone()),
        (key::NAME, info.name.clone()),
        (key::AREA, info.area.clone()),
        (key::LAYERS, Some(json!(names).to_string())),
        (key::CREATED_AT, Some(shikong_model::time::gpkg_datetime(info.created_at))),
    ];
    for (k, v) in facts {
        set_meta(conn, k, v.as_deref())?;
    }
    Ok(())
}

pub(crate) fn read_info(conn: &Connection) -> Result<ReplicaInfo> {
    let need = |k: &str| -> Result<String> {
        get_meta(conn, k)?.ok_or_else(|| ReplicaError::Corrupt(format!("sk_replica has no `{k}`")))
    };
    let id = need(key::REPLICA_ID)?;
    let created = need(key::CREATED_AT)?;
    Ok(ReplicaInfo {
        id: Uuid::parse_str(&id).map_err(|e| ReplicaError::Corrupt(format!("replica id `{id}`: {e}")))?,
        server_url: need(key::SERVER_URL)?,
        user: need(key::USER)?,
        device: get_meta(conn, key::DEVICE)?,
        name: get_meta(conn, key::NAME)?,
        area: get_meta(conn, key::AREA)?,
        created_at: shikong_model::parse_instant(&created)
            .map_err(|e| ReplicaError::Corrupt(format!("created_at: {e}")))?,
    })
}

/// Layers recorded in `sk_layers`, in name order.
pub(crate) fn read_layers(conn: &Connection) -> Result<Vec<ReplicaLayer>> {
    let mut stmt = conn.prepare("SELECT name, definition FROM sk_layers ORDER BY name")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(name, def)| {
            let json: Json = serde_json::from_str(&def)
                .map_err(|e| ReplicaError::Corrupt(format!("sk_layers `{name}`: definition: {e}")))?;
            ReplicaLayer::from_definition(&json)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shikong_model::FieldType;

    fn layer() -> ReplicaLayer {
        let mut name = FieldDef::new("名称", FieldType::Text);
        name.id = "c1".into();
        ReplicaLayer {
            name: "manhole".into(),
            title: Some("井盖".into()),
            description: None,
            geometry_kind: GeometryKind::Point,
            has_z: false,
            schema: LayerSchema { fields: vec![name] },
            public: false,
            citizen_reports: true,
        }
    }

    #[test]
    fn definitions_round_trip_and_ignore_members_the_replica_does_not_use() {
        let l = layer();
        let mut def = l.to_definition();
        assert_eq!(ReplicaLayer::from_definition(&def).unwrap(), l);
        def["theme"] = json!({"domain": "市政"});
        def["height_datum"] = json!("nvd1985");
        assert_eq!(ReplicaLayer::from_definition(&def).unwrap(), l);
    }

    #[track_caller]
    fn refused(edit: impl FnOnce(&mut Json), message: &str) {
        let mut def = layer().to_definition();
        edit(&mut def);
        let e = ReplicaLayer::from_definition(&def).unwrap_err().to_string();
        assert!(e.contains(message), "{e} lacks {message}");
    }

    #[test]
    fn bad_definitions_are_refused_with_the_reason() {
        refused(|d| d["name"] = json!("sk_x"), "reserved");
        refused(|d| d["name"] = json!("井盖"), "lowercase ASCII");
        refused(|d| d["geometry_type"] = json!("Circle"), "geometry_type");
        refused(|d| d["fields"][0]["id"] = json!(""), "field `名称` has no id");
        refused(|d| d["fields"][0]["name"] = json!("code"), "reserved");
        refused(|d| d["fields"] = json!("x"), "definition");
    }
}
