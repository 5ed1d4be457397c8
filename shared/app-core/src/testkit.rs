//! Test fixtures of the app core: a device in a temporary folder with hardware-free services, a
//! small replica written the way the server writes them, and a one-answer HTTP server on
//! loopback for the few effects that must talk to a server (sign-in). No network beyond loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::Arc;

use shikong_model::{CodeItem, Coord, EntityId, Feature, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema};
use shikong_model::{ValidTime, Value};
use shikong_replica::{ReplicaInfo, ReplicaLayer, ReplicaWriter};
use shikong_sync_client::Session;

use crate::platform::{ImageFolder, ManualLocation, Network};
use crate::{AppError, Device};

/// A network that is never there: nothing in these tests may leave the machine.
#[derive(Debug)]
pub struct NoNetwork;

impl Network for NoNetwork {
    fn online(&self, _server: &str) -> bool {
        false
    }
}

/// A network that is always there (for effects talking to a [`one_answer_server`], which a
/// reachability probe would use up).
#[derive(Debug)]
pub struct AlwaysOnline;

impl Network for AlwaysOnline {
    fn online(&self, _server: &str) -> bool {
        true
    }
}

/// A new device in a temporary folder that believes the server reachable.
pub fn online_device() -> (tempfile::TempDir, Device) {
    let dir = tempfile::tempdir().unwrap();
    let d = Device::open(
        dir.path(),
        Arc::new(ManualLocation::at(114.3437, 30.5043)),
        Arc::new(ImageFolder::new(dir.path().join("camera"))),
        Arc::new(AlwaysOnline),
    )
    .unwrap();
    (dir, d)
}

pub fn try_open(dir: &Path) -> Result<Device, AppError> {
    Device::open(
        dir,
        Arc::new(ManualLocation::at(114.3437, 30.5043)),
        Arc::new(ImageFolder::new(dir.join("camera"))),
        Arc::new(NoNetwork),
    )
}

/// A new device in a temporary folder (kept while the `TempDir` lives).
pub fn device() -> (tempfile::TempDir, Device) {
    let dir = tempfile::tempdir().unwrap();
    let d = try_open(dir.path()).unwrap();
    (dir, d)
}

/// The same data folder opened again, as after a restart.
pub fn reopen(dir: &Path) -> Device {
    try_open(dir).unwrap()
}

pub fn session(server: &str) -> Session {
    Session {
        server: server.into(),
        token: "secret-token".into(),
        username: "张三".into(),
        role: "inspector".into(),
        expires_at: String::new(),
        device: None,
    }
}

fn field(id: &str, name: &str, ty: FieldType) -> FieldDef {
    let mut f = FieldDef::new(name, ty);
    f.id = id.into();
    f
}

/// The manhole layer: a name, a required status code (1 完好, 2 破损), photos.
pub fn manhole() -> ReplicaLayer {
    let mut status = field("f2", "状态", FieldType::Code);
    status.codes =
        vec![CodeItem { code: "1".into(), label: "完好".into() }, CodeItem { code: "2".into(), label: "破损".into() }];
    status.required = true;
    ReplicaLayer {
        name: "manhole".into(),
        title: Some("井盖".into()),
        description: None,
        geometry_kind: GeometryKind::Point,
        has_z: false,
        schema: LayerSchema {
            fields: vec![field("f1", "名称", FieldType::Text), status, field("f3", "照片", FieldType::Attachments)],
        },
        public: false,
        citizen_reports: false,
    }
}

/// Writes `DIR/replicas/NAME.gpkg` holding `n` manholes coded `420111-JG-00000i`.
pub fn replica(dir: &Path, name: &str, n: u32) {
    let path = dir.join("replicas").join(format!("{name}.gpkg"));
    let info = ReplicaInfo {
        id: uuid::Uuid::new_v4(),
        server_url: "http://127.0.0.1:9".into(),
        user: "张三".into(),
        device: None,
        name: Some(name.into()),
        area: None,
        created_at: jiff::Timestamp::now(),
    };
    let mut w = ReplicaWriter::create(&path, &info, &[manhole()]).unwrap();
    for i in 0..n {
        let f = Feature {
            id: EntityId(uuid::Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0000 + u128::from(i))),
            code: format!("420111-JG-{i:06}"),
            geometry: Some(Geometry::Point(Coord::xy(114.3 + f64::from(i) * 1e-4, 30.5))),
            valid: ValidTime::ALWAYS,
            properties: [("名称".to_string(), Value::from(format!("井盖{i}"))), ("状态".to_string(), Value::from("1"))]
                .into(),
        };
        w.add_feature("manhole", &f, 1, None).unwrap();
    }
    w.finish("0").unwrap();
}

/// An HTTP server on loopback that answers one request with `200` and `body`; returns its base URL.
pub fn one_answer_server(body: &'static str) -> String {
    one_answer_status(200, body)
}

/// Like [`one_answer_server`] with another status.
pub fn one_answer_status(status: u16, body: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        // The request: headers, then as many body bytes as they announce.
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let Ok(n) = stream.read(&mut buf) else { return };
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).into_owned();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
        }
        let answer = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes());
    });
    format!("http://{addr}")
}

/// A task as the server lists it: case `id`/`no` of the standard flow, dispatched to 张三, at
/// (114.3, 30.5).
pub fn task(id: &str, no: &str, deadline: Option<&str>, overdue: bool) -> shikong_protocol::api::tasks::TaskDoc {
    shikong_protocol::api::tasks::TaskDoc {
        case_id: id.into(),
        case_no: no.into(),
        flow_id: "city-standard".into(),
        flow_version: 1,
        state: "dispatched".into(),
        state_label: "已派遣（处置中）".into(),
        class_kind: Some("event".into()),
        class: Some("0102".into()),
        description: Some("暴露垃圾".into()),
        asset: None,
        location: Some(serde_json::json!({"type": "Point", "coordinates": [114.3, 30.5]})),
        assignee: Some("user:张三".into()),
        stage_deadline: deadline.map(str::to_owned),
        overdue,
        photos: Vec::new(),
        version: 3,
    }
}

/// Puts `list` in the task table of `DIR/replicas/NAME.gpkg`, as a sync does.
pub fn tasks(dir: &Path, name: &str, list: &shikong_protocol::api::tasks::TaskList) {
    let path = dir.join("replicas").join(format!("{name}.gpkg"));
    let mut r = shikong_replica::Replica::open(&path).unwrap();
    r.replace_tasks(list).unwrap();
}

/// An evidence photo (a small PNG) taken on `device`.
pub fn photo(device: &Device) -> crate::EvidencePhoto {
    let img = image::RgbaImage::from_pixel(64, 48, image::Rgba([40, 120, 200, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(img).write_to(&mut out, image::ImageFormat::Png).unwrap();
    let photo = crate::platform::Photo { bytes: out.into_inner(), mime: "image/png".into(), name: "t.png".into() };
    device.evidence_photo(photo, None).unwrap()
}
