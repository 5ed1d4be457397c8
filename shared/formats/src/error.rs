//! Format errors: file, location in it, field, message.

use std::fmt;

use crate::limits::Exceeded;

pub type Result<T, E = FormatError> = std::result::Result<T, E>;

/// Where in a file something is, in the units a user counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The n-th feature (GeoJSON, Shapefile, GeoPackage), from 1.
    Feature(usize),
    /// A line of a text file, from 1 (the CSV header is line 1); a sheet's row, from 1.
    Line(u64),
    /// A cell of a sheet: its row (from 1) and column (from 0, shown as Excel's letters).
    Cell { row: u64, column: u32 },
}

impl Location {
    /// The row (line) when there is one.
    pub fn row(self) -> Option<u64> {
        match self {
            Location::Feature(_) => None,
            Location::Line(n) | Location::Cell { row: n, .. } => Some(n),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Feature(n) => write!(f, "feature {n}"),
            Location::Line(n) => write!(f, "row {n}"),
            Location::Cell { row, column } => write!(f, "row {row}, column {}", column_letters(*column)),
        }
    }
}

/// An error reading or writing a file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct FormatError {
    pub file: String,
    /// The sheet of a workbook (XLSX).
    pub sheet: Option<String>,
    pub location: Option<Location>,
    pub field: Option<String>,
    pub message: String,
    /// Set when the file went over one of the [`crate::limits`] (callers answer 413, not 400).
    pub limit: Option<Box<Exceeded>>,
}

impl FormatError {
    pub fn file(file: &str, message: impl Into<String>) -> Self {
        FormatError {
            file: file.to_owned(),
            sheet: None,
            location: None,
            field: None,
            message: message.into(),
            limit: None,
        }
    }

    pub fn at(file: &str, location: Location, message: impl Into<String>) -> Self {
        FormatError {
            file: file.to_owned(),
            sheet: None,
            location: Some(location),
            field: None,
            message: message.into(),
            limit: None,
        }
    }

    /// The file (at `location`) went over a limit; the message is the limit's.
    pub fn exceeded(file: &str, location: Option<Location>, e: Exceeded) -> Self {
        let message = e.to_string();
        FormatError { location, limit: Some(Box::new(e)), ..Self::file(file, message) }
    }

    /// A read error: the limit it carries (from a [`crate::limits::Bounded`] reader) or its text.
    pub fn io(file: &str, location: Option<Location>, e: &std::io::Error) -> Self {
        match crate::limits::exceeded_in(e) {
            Some(x) => Self::exceeded(file, location, x.clone()),
            None => FormatError { location, ..Self::file(file, e.to_string()) },
        }
    }

    /// Whether the file was refused for going over a limit.
    pub fn is_too_large(&self) -> bool {
        self.limit.is_some()
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// In sheet `sheet` of a workbook.
    pub fn in_sheet(mut self, sheet: impl Into<String>) -> Self {
        self.sheet = Some(sheet.into());
        self
    }

    /// Where in the file, as a user reads it: `sheet `测点`, row 3, column B` (empty when
    /// nowhere in particular).
    pub fn place(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.sheet {
            parts.push(format!("sheet `{s}`"));
        }
        if let Some(l) = &self.location {
            parts.push(l.to_string());
        }
        parts.join(", ")
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        let place = self.place();
        if !place.is_empty() {
            write!(f, ", {place}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// `A`, `B`, … `Z`, `AA`, … `XFD`: Excel's name of a 0-based column.
pub fn column_letters(column: u32) -> String {
    let mut c = u64::from(column);
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (c % 26) as u8);
        if c < 26 {
            break;
        }
        c = c / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_letters_are_excel_s() {
        assert_eq!(
            [0, 25, 26, 51, 52, 701, 702, 16383].map(column_letters),
            ["A", "Z", "AA", "AZ", "BA", "ZZ", "AAA", "XFD"].map(str::to_owned)
        );
    }

    #[test]
    fn messages_name_file_sheet_row_column_and_field() {
        let e = FormatError::at("点.xlsx", Location::Cell { row: 3, column: 1 }, "`东经` is not a number")
            .field("经度")
            .in_sheet("测点");
        assert_eq!(e.to_string(), "点.xlsx, sheet `测点`, row 3, column B, field `经度`: `东经` is not a number");
        assert_eq!(e.place(), "sheet `测点`, row 3, column B");
        assert_eq!(FormatError::file("a.csv", "empty").place(), "");
    }
}
