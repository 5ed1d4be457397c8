//! The crate's one error type. Every variant names what is at fault — the file and row of an
//! uploaded table, the data-directory file, the store layer and field, the alias — so the CLI
//! prints it as one line and the server tells bad input (4xx) from its own failures (500).

use std::fmt;
use std::path::PathBuf;

use shikong_formats::limits::Exceeded;

/// Result alias of this crate.
pub type Result<T, E = GazetteerError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GazetteerError {
    /// No gazetteer was built in the data directory.
    #[error("no gazetteer has been built (build one with `shikong gazetteer build`)")]
    NotBuilt,
    /// A table to geocode that cannot be read: not CSV or XLSX, an empty sheet, a malformed row.
    #[error("{file}{}: {message}", Where(*row, field.as_deref()))]
    Table { file: String, row: Option<u64>, field: Option<String>, message: String },
    /// A table over one of the upload limits (`shikong_formats::limits`): its size as declared
    /// (zip entries, `<dimension>`, shared-string count) or as read. Nothing was kept of it.
    #[error("{file}{}{}: {exceeded}", Sheet(sheet.as_deref()), Where(*row, field.as_deref()))]
    TooLarge { file: String, sheet: Option<String>, row: Option<u64>, field: Option<String>, exceeded: Box<Exceeded> },
    /// The column to geocode is not in the table.
    #[error("no column `{column}` (columns: {})", columns.join(", "))]
    NoColumn { column: String, columns: Vec<String> },
    /// A user alias the gazetteer refuses (its division code is unknown, its name empty …).
    #[error("alias `{alias}`: {source}")]
    BadAlias {
        alias: String,
        #[source]
        source: shikong_geocoder::Error,
    },
    /// A source layer lacks a field the build was told to read.
    #[error("layer `{layer}` has no field `{field}` (gazetteer {kind} source)")]
    NoSuchField { layer: String, field: String, kind: &'static str },
    /// The division lists cannot be read, or hold no counties.
    #[error("{}: {message}", dir.display())]
    Divisions { dir: PathBuf, message: String },
    /// A file of the data directory or of the build input that cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file of the data directory whose content is not what it should be (`gazetteer.json`,
    /// the user aliases, the snapshot).
    #[error("{}{}: {message}", path.display(), Where(*row, None))]
    File { path: PathBuf, row: Option<u64>, message: String },
    /// The area of a replica cannot be read.
    #[error("replica area: {0}")]
    Area(#[source] shikong_model::GeometryError),
    /// The area touches no county of the gazetteer, so there is no subset to carry.
    #[error("the area touches no county of the gazetteer")]
    NoCounty,
    /// Building or querying the engine failed (the message names the list, row or record).
    #[error(transparent)]
    Engine(#[from] shikong_geocoder::Error),
    #[error(transparent)]
    Store(#[from] shikong_store::StoreError),
    #[error(transparent)]
    Replica(#[from] shikong_replica::ReplicaError),
    /// Writing a result table failed.
    #[error(transparent)]
    Output(#[from] shikong_formats::FormatError),
}

impl GazetteerError {
    /// Whether the error is the caller's input (an uploaded table, a column name, an alias) rather
    /// than the server's state: servers answer these with a 4xx saying exactly this message.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::Table { .. } | Self::TooLarge { .. } | Self::NoColumn { .. } | Self::BadAlias { .. })
    }

    /// The limit an uploaded table went over, if that is the error (servers answer 413).
    pub fn exceeded(&self) -> Option<&Exceeded> {
        match self {
            Self::TooLarge { exceeded, .. } => Some(&**exceeded),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    pub(crate) fn file(path: impl Into<PathBuf>, row: Option<u64>, message: impl fmt::Display) -> Self {
        Self::File { path: path.into(), row, message: message.to_string() }
    }
}

/// `, sheet `Sheet1`` — the sheet of a workbook, empty for CSV.
struct Sheet<'a>(Option<&'a str>);

impl fmt::Display for Sheet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, ", sheet `{s}`"),
            None => Ok(()),
        }
    }
}

/// `, row 3, column `地址`` — the location part of a message, empty when there is none.
struct Where<'a>(Option<u64>, Option<&'a str>);

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(row) = self.0 {
            write!(f, ", row {row}")?;
        }
        if let Some(field) = self.1 {
            write!(f, ", column `{field}`")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_row_and_column() {
        let e = GazetteerError::Table {
            file: "upload".into(),
            row: Some(3),
            field: Some("地址".into()),
            message: "unequal lengths".into(),
        };
        assert_eq!(e.to_string(), "upload, row 3, column `地址`: unequal lengths");
        assert!(e.is_bad_input());
        let e = GazetteerError::Table { file: "a.xlsx".into(), row: None, field: None, message: "no sheet".into() };
        assert_eq!(e.to_string(), "a.xlsx: no sheet");
        let e = GazetteerError::file("/d/gazetteer-aliases.csv", Some(2), "missing field `name`");
        assert_eq!(e.to_string(), "/d/gazetteer-aliases.csv, row 2: missing field `name`");
        assert!(!e.is_bad_input());
        let e = GazetteerError::NoColumn { column: "地址".into(), columns: vec!["名称".into(), "电话".into()] };
        assert_eq!(e.to_string(), "no column `地址` (columns: 名称, 电话)");
    }
}
