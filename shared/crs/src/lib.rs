//! Reprojection for shikong: CGCS2000 (EPSG:4490), WGS 84 (EPSG:4326, CRS84), Web Mercator
//! (EPSG:3857), every CGCS2000 Gauss-Krüger zone (EPSG:4491–4554) and the pseudo-CRSs `GCJ02`
//! and `BD09` of Chinese commercial basemaps, for coordinates and whole geometries.
//!
//! Why a crate apart from `shikong-geodesy`: this one links PROJ (built from source, about three
//! minutes cold), so only the crates that reproject EPSG codes — import, the server, the desktop
//! app — pay for it; the mobile app and the model build without it.
//!
//! Conventions, product-wide: x = longitude/easting, y = latitude/northing whatever the CRS's
//! authority axis order ([`axis_order`] and [`swap_xy`] exist for protocol boundaries only);
//! heights pass through unchanged (no height datum conversion without a geoid model — see
//! `shikong-geodesy`); measurement chooses geodesic or planar by CRS ([`measure()`]).
//!
//! Architecture invariant: no I/O. PROJ runs with its database embedded in the binary and no
//! network access (see [`transform`] for the details and the thread-safety rules).
#![forbid(unsafe_code)]

pub mod cli;
pub mod codes;
pub mod error;
pub mod measure;
pub mod transform;

pub use codes::{AxisOrder, axis_order, check_supported, gk_zone, gk_zone_for, parse_crs, swap_xy};
pub use error::{CrsError, Result, SUPPORTED};
pub use measure::{Measured, Method, measure, measure_in_zone};
pub use shikong_geodesy::{Measurement, ZoneWidth};
pub use shikong_model::Crs;
pub use transform::{Transform, transform_geometry, with_transform};
