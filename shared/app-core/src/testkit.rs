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
