//! Fixtures: a manhole layer with every field type, replicas cut by the writer, and a fake sync
//! server that merges pushed changes into per-entity documents the way the real one does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde_json::{Map, Value as Json};
use shikong_crdt::EntityDoc;
use shikong_model::{
    CodeItem, Coord, EntityId, Feature, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, ValidTime, Value,
};
use shikong_protocol::{
    Bytes, EntityResult, LayerUpdate, Outcome, PROTOCOL_VERSION, PullPage, PulledEntity, PushRequest, PushResponse,
    WireFeature,
};
use shikong_replica::{EditMeta, Replica, ReplicaInfo, ReplicaLayer, ReplicaWriter};
use uuid::Uuid;

pub fn field(id: &str, name: &str, ty: FieldType) -> FieldDef {
    let mut f = FieldDef::new(name, ty);
    f.id = id.into();
    f
}

/// 井盖 (manholes): one field of each type, a code list, bounds, a retired field.
pub fn manhole() -> ReplicaLayer {
    let mut name = field("c1", "名称", FieldType::Text);
    name.required = true;
    name.max_length = Some(20);
    let mut depth = field("c2", "depth", FieldType::Real);
    depth.min = Some(0.0);
    depth.max = Some(20.0);
    let mut status = field("c3", "status", FieldType::Code);
    status.codes =
        vec![CodeItem { code: "1".into(), label: "完好".into() }, CodeItem { code: "2".into(), label: "破损".into() }];
    let mut old = field("c7", "旧备注", FieldType::Text);
    old.retired = true;
    ReplicaLayer {
        name: "manhole".into(),
        title: Some("井盖".into()),
        description: Some("市政井盖普查".into()),
        geometry_kind: GeometryKind::Point,
        has_z: false,
        schema: LayerSchema {
            fields: vec![
                name,
                depth,
                status,
                field("c4", "inspected", FieldType::Date),
                field("c5", "ok", FieldType::Bool),
                field("c6", "photos", FieldType::Attachments),
                old,
                field("c8", "checked_at", FieldType::DateTime),
            ],
        },
        public: false,
        citizen_reports: false,
    }
}

/// 道路 (roads): a multi-line layer, so single lines are promoted.
pub fn road() -> ReplicaLayer {
    ReplicaLayer {
        name: "road".into(),
        title: Some("道路".into()),
        description: None,
        geometry_kind: GeometryKind::MultiLineString,
        has_z: false,
        schema: LayerSchema { fields: vec![field("c1", "路名", FieldType::Text)] },
        public: true,
        citizen_reports: false,
    }
}

pub fn id(n: u128) -> EntityId {
    EntityId(Uuid::from_u128(0x0192_f3c4_0000_7000_8000_0000_0000_0000 + n))
}

pub fn ts(s: &str) -> Timestamp {
    shikong_model::parse_instant(s).unwrap()
}

/// The i-th manhole as the store holds it.
pub fn manhole_feature(i: u32) -> Feature {
    Feature {
        id: id(u128::from(i)),
        code: format!("420111-JG-{i:06}"),
        geometry: Some(Geometry::Point(Coord::xy(
            114.0 + f64::from(i % 1000) * 0.001,
            30.0 + f64::from(i / 1000) * 0.001,
        ))),
        valid: ValidTime { from: Some(ts("2024-01-01T00:00:00+08:00")), to: None },
        properties: [
            ("名称".to_string(), Value::from(format!("井盖{i}"))),
            ("depth".to_string(), Value::Real(1.5)),
            ("status".to_string(), Value::from("1")),
            ("inspected".to_string(), Value::Date(jiff::civil::date(2024, 5, 1))),
            ("ok".to_string(), Value::Bool(i.is_multiple_of(2))),
        ]
        .into(),
    }
}

pub fn road_feature(i: u32) -> Feature {
    Feature {
        id: id(1_000_000 + u128::from(i)),
        code: format!("road-{i}"),
        geometry: Some(Geometry::MultiLineString(vec![vec![Coord::xy(114.0, 30.0), Coord::xy(114.01, 30.01)]])),
        valid: ValidTime::ALWAYS,
        properties: [("路名".to_string(), Value::from("中南路"))].into(),
    }
}

pub fn info() -> ReplicaInfo {
    ReplicaInfo {
        id: Uuid::from_u128(0xfeed),
        server_url: "https://sk.example.cn".into(),
        user: "张三".into(),
        device: Some("phone-1".into()),
        name: Some("洪山区井盖".into()),
        area: Some("admin:420111".into()),
        created_at: ts("2025-06-01T08:00:00+08:00"),
    }
}

pub fn meta(user: &str, time: &str) -> EditMeta {
    EditMeta { user: user.into(), device: Some(format!("{user}-phone")), time: ts(time) }
}

/// A replica of `n` manholes and 2 roads, cut at store transaction 10 (all at version 1).
pub fn cut(dir: &Path, file: &str, n: u32) -> PathBuf {
    let path = dir.join(file);
    let mut w = ReplicaWriter::create(&path, &info(), &[manhole(), road()]).unwrap();
    for i in 0..n {
        w.add_feature("manhole", &manhole_feature(i), 1, None).unwrap();
    }
    for i in 0..2 {
        w.add_feature("road", &road_feature(i), 1, None).unwrap();
    }
    w.finish("10").unwrap();
    path
}

pub fn open(path: &Path) -> Replica {
    Replica::open(path).unwrap()
}

/// A feature as the server sends it: properties by field id, values as the store writes JSON.
pub fn wire(layer: &ReplicaLayer, f: &Feature) -> WireFeature {
    let mut properties = Map::new();
    for (name, v) in &f.properties {
        let field = layer.schema.field(name).unwrap();
        let j = match v {
            Value::DateTime(t) => Json::String(shikong_model::time::gpkg_datetime(*t)),
            other => other.to_json(),
        };
        properties.insert(field.id.clone(), j);
    }
    WireFeature {
        code: f.code.clone(),
        geometry: f.geometry.as_ref().map_or(Json::Null, shikong_model::geojson::to_json),
        valid_from: f.valid.from.map(shikong_model::time::gpkg_datetime),
        valid_to: f.valid.to.map(shikong_model::time::gpkg_datetime),
        properties,
    }
}

/// The server side of sync, reduced to documents: every entity starts as its deterministic base
/// (as after an import), pushes merge changes in, pulls hand out state and document.
pub struct FakeServer {
    pub layer: ReplicaLayer,
    pub docs: HashMap<EntityId, (EntityDoc, i64)>,
    pub tx: i64,
}

impl FakeServer {
    pub fn new(n: u32) -> FakeServer {
        let layer = manhole();
        let docs = (0..n)
            .map(|i| {
                let f = manhole_feature(i);
                (f.id, (EntityDoc::base(&layer.schema, &f).unwrap(), 1))
            })
            .collect();
        FakeServer { layer, docs, tx: 10 }
    }

    pub fn push(&mut self, req: &PushRequest) -> PushResponse {
        assert_eq!(req.protocol, PROTOCOL_VERSION);
        let mut results = Vec::new();
        self.tx += 1;
        for e in &req.entities {
            let changes: Vec<Vec<u8>> = e.changes.iter().map(|c| c.0.clone()).collect();
            let id = EntityId(e.entity);
            let entry = self.docs.entry(id).or_insert_with(|| (EntityDoc::from_changes(&changes[..1]).unwrap(), 0));
            let new = entry.0.apply_changes(&changes).unwrap();
            let outcome = if new == 0 && entry.1 > 0 {
                Outcome::Unchanged { version: entry.1 }
            } else {
                entry.1 += 1;
                Outcome::Accepted { version: entry.1 }
            };
            results.push(EntityResult {
                layer: e.layer.clone(),
                entity: e.entity,
                outcome,
                doc: Some(Bytes(entry.0.save())),
            });
        }
        PushResponse { protocol: PROTOCOL_VERSION, results, conflicts: vec![], mark: None, diverged: false }
    }

    /// A pull page with the current state and document of `ids`.
    pub fn page(&mut self, ids: &[EntityId]) -> PullPage {
        let entities = ids
            .iter()
            .map(|id| {
                let (doc, version) = self.docs.get_mut(id).unwrap();
                let state = doc.state(&self.layer.schema).unwrap();
                PulledEntity {
                    layer: "manhole".into(),
                    entity: id.0,
                    version: *version,
                    tx: self.tx,
                    state: (!state.deleted).then(|| wire(&self.layer, &state.feature)),
                    doc: Some(Bytes(doc.save())),
                    left_area: false,
                }
            })
            .collect();
        PullPage {
            protocol: PROTOCOL_VERSION,
            cursor: self.tx.to_string(),
            more: false,
            layers: vec![],
            entities,
            revoked: vec![],
            diverged: false,
        }
    }

    pub fn layer_update(&mut self, layer: &ReplicaLayer) -> PullPage {
        self.tx += 1;
        self.layer = layer.clone();
        PullPage {
            protocol: PROTOCOL_VERSION,
            cursor: self.tx.to_string(),
            more: false,
            layers: vec![LayerUpdate { layer: layer.name.clone(), tx: self.tx, definition: layer.to_doc() }],
            entities: vec![],
            revoked: vec![],
            diverged: false,
        }
    }
}

/// Pushes everything pending from `r` to `server` and applies the answers.
pub fn sync_push(r: &mut Replica, server: &mut FakeServer) {
    while let Some(batch) = r.push_batch(100).unwrap() {
        let resp = server.push(&batch);
        r.apply_push_response(&resp).unwrap();
    }
}

/// Rows of a table as `code → value of column` (for checks against SQL).
pub fn column(path: &Path, table: &str, col: &str) -> Vec<(String, rusqlite::types::Value)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare(&format!("SELECT code, \"{col}\" FROM \"{table}\" ORDER BY fid")).unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<rusqlite::Result<_>>().unwrap()
}
