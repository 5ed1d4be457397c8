//! Format errors: file, location in it, field, message.

use std::fmt;

use crate::limits::Exceeded;

pub type Result<T, E = FormatError> = std::result::Result<T, E>;

/// Where in a file something is, in the units a user counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The n-th feature (GeoJSON, Shapefile, GeoPackage), from 1.
    Feature(usize),
    /// A line of a text file, from 1 (the CSV header is line 1).
    Line(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Feature(n) => write!(f, "feature {n}"),
            Location::Line(n) => write!(f, "row {n}"),
        }
    }
}

/// An error reading or writing a file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct FormatError {
    pub file: String,
    pub location: Option<Location>,
    pub field: Option<String>,
    pub message: String,
    /// Set when the file went over one of the [`crate::limits`] (callers answer 413, not 400).
    pub limit: Option<Box<Exceeded>>,
}

impl FormatError {
    pub fn file(file: &str, message: impl Into<String>) -> Self {
        FormatError { file: file.to_owned(), location: None, field: None, message: message.into(), limit: None }
    }

    pub fn at(file: &str, location: Location, message: impl Into<String>) -> Self {
        FormatError {
            file: file.to_owned(),
            location: Some(location),
            field: None,
            message: message.into(),
            limit: None,
        }
    }

    /// The file (at `location`) went over a limit; the message is the limit's.
    pub fn exceeded(file: &str, location: Option<Location>, e: Exceeded) -> Self {
        FormatError { file: file.to_owned(), location, field: None, message: e.to_string(), limit: Some(Box::new(e)) }
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
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = &self.location {
            write!(f, ", {l}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}
