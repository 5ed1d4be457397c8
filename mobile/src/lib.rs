//! shikong's mobile app (issue 8): the field inspector's and the citizen's offline app.
//!
//! The app is views ([`views`]) over a thin state layer ([`device::Device`]) over the shared
//! crates: the replica (offline GeoPackage, CRDT edits), the sync client, the geocoder (offline
//! search), geodesy (measurement) and the tile encoder (the map of the replica). Platform services
//! sit behind the traits of [`platform`], so Android/iOS builds plug in their own.
//!
//! - [`mapserver`] — the loopback server MapLibre (bundled, no network) reads style and tiles from.
//! - [`qr`], [`watermark`] — QR codes in and out, the evidence stamp on photos.
//! - [`launch`] — the desktop window and the liveview server (the same views in a browser).
//!
//! Architecture invariant: no view talks to the network or a file; everything goes through
//! `Device`, whose operations are blocking and run off the UI thread.
#![forbid(unsafe_code)]

pub mod device;
pub mod i18n;
pub mod launch;
pub mod mapserver;
pub mod platform;
pub mod qr;
pub mod views;
pub mod watermark;

pub use device::Device;

/// Everything that can go wrong in the app, worded for the message line under the action.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{field}: {message}")]
    Input { field: String, message: String },
    #[error("表单有误 / the form has problems: {}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Form(Vec<device::FieldProblem>),
    #[error("未登录 / not signed in")]
    NotSignedIn,
    #[error("离线：无法连接服务器 / offline: the server cannot be reached")]
    Offline,
    #[error("没有离线区域 `{0}` / no offline area `{0}`")]
    NoReplica(String),
    #[error("该离线区域没有地名地址库 / this offline area carries no gazetteer")]
    NoGazetteer,
    #[error("还有 {pending} 条编辑和 {photos} 张照片未上传 / {pending} edits and {photos} photos are not uploaded yet")]
    Unsent { pending: u64, photos: usize },
    #[error("二维码 / QR: {0}")]
    Qr(String),
    #[error("{0}")]
    Platform(String),
    #[error("damaged file: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Sync(#[from] shikong_sync_client::SyncError),
    #[error("{0}")]
    Replica(#[from] shikong_replica::ReplicaError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
