//! Pure geodesy for shikong: the GCJ-02/BD-09 offsets, measurement on the CGCS2000 ellipsoid, and
//! the choice of Gauss-Krüger zone.
//!
//! Why a crate of its own, apart from `shikong-crs`: everything here is closed-form or iterative
//! arithmetic that needs no EPSG database, so it builds in seconds and runs on phones offline
//! (the field app measures parcels and converts basemap picks without PROJ). Reprojection between
//! EPSG CRSs, which does need PROJ, lives in `shikong-crs` and calls into this crate for the
//! pseudo-CRSs `GCJ02` and `BD09`.
//!
//! Coordinates follow the product-wide order: x = longitude (or easting), y = latitude (or
//! northing), degrees for geographic coordinates.
//!
//! # Heights
//!
//! Heights (Z) are carried, never converted. A layer records its height datum as metadata
//! ([`shikong_model::HeightDatum`]: ellipsoidal, 1985 国家高程基准, 1956 黄海高程系, …). Converting
//! between ellipsoidal heights and the normal heights of the national datums needs a
//! quasi-geoid model (e.g. CQG2000 or a provincial refinement), which shikong does not ship;
//! rather than invent a conversion, none is offered. 3-D distances use Z as given and are only
//! meaningful when both points share a height datum.
//!
//! Architecture invariant: no I/O, no clock, no PROJ; only pure functions of their arguments.
#![forbid(unsafe_code)]

pub mod error;
pub mod measure;
pub mod offset;
pub mod zone;

pub use error::{GeodesyError, Result};
pub use measure::{
    Measurement, angle_between, angle_clockwise, azimuth, cgcs2000, distance, distance_3d, measure_geodesic,
    measure_planar,
};
pub use offset::{bd09_to_gcj02, bd09_to_wgs84, gcj02_to_bd09, gcj02_to_wgs84, wgs84_to_bd09, wgs84_to_gcj02};
pub use zone::{GkZone, ZoneWidth, gk_epsg_for_longitude};
