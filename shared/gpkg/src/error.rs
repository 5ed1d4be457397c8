//! Errors of the GeoPackage layer.

pub type Result<T, E = GpkgError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpkgError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{path}: not a GeoPackage ({reason})")]
    NotGeoPackage { path: String, reason: String },
    #[error("layer `{0}` is not in this GeoPackage")]
    NoSuchLayer(String),
    #[error("layer `{layer}`, feature {fid}, column `{column}`: {message}")]
    BadValue { layer: String, fid: i64, column: String, message: String },
    #[error("SRS {0} is not defined in gpkg_spatial_ref_sys and shikong has no definition for it")]
    UnknownSrs(i32),
}
