//! Platform services behind small traits: where the device is, taking a photo, whether the server
//! is reachable, where secrets are kept. The desktop build (development, tests) plugs in real
//! implementations that need no hardware — a GNSS receiver's recorded NMEA or a GPX track, manual
//! placement on the map, a folder of camera images, a TCP probe, files readable by the user only —
//! and the Android/iOS builds plug in theirs (fused location provider, camera intent, connectivity
//! manager, Keystore/Keychain) without the core or the views changing.

mod camera;
mod location;
mod network;
mod secure_storage;

pub use camera::{Camera, ImageFolder, Photo, image_mime, pick_photo};
pub use location::{Fix, LocationSource, ManualLocation, TrackReplay, parse_gpx, parse_nmea};
pub use network::{Network, Switchable, TcpProbe};
pub use secure_storage::{FileSecrets, MemorySecrets, SecureStorage};
