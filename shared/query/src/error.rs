//! Errors of the query crate. Each variant names what is wrong and where (the property, the
//! literal, the position in the text) so that the server can answer HTTP 400 naming the `filter`
//! parameter and the CLI can print the message unchanged.

/// Result alias of this crate.
pub type Result<T, E = QueryError> = std::result::Result<T, E>;

/// Why a CQL2 filter was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// cql2-text that does not parse. `line` and `column` are 1-based; the column counts
    /// characters, not bytes. `message` is the parser's rendering, with the line and a caret.
    #[error("CQL2 syntax error at line {line}, column {column}:\n{message}")]
    Syntax { line: usize, column: usize, message: String },

    /// Other CQL2 the `cql2` crate refuses (a nested GEOMETRYCOLLECTION, a missing argument).
    #[error("invalid CQL2: {0}")]
    Cql2(String),

    /// cql2-json that is not JSON, or JSON that is not a CQL2 expression. `path` is a JSON pointer
    /// to the offending node when it is known (`/args/1`).
    #[error("invalid CQL2 JSON{}: {message}", path.as_ref().map(|p| format!(" at {p}")).unwrap_or_default())]
    Json { path: Option<String>, message: String },

    /// A property name that is neither a field of the layer nor a system attribute.
    #[error("unknown property `{name}`{hint}; queryable properties: {}", queryables.join(", "))]
    UnknownProperty {
        name: String,
        /// Empty, or a parenthesised suggestion starting with a space.
        hint: String,
        queryables: Vec<String>,
    },

    /// A property that exists but cannot appear in a filter (attachments).
    #[error("property `{property}` cannot be filtered: {reason}")]
    NotQueryable { property: String, reason: String },

    /// An operand of the wrong type: `property` is the property (or expression) the operand is
    /// compared with or applied to.
    #[error("`{property}`: expected {expected}, got {found}")]
    TypeMismatch { property: String, expected: String, found: String },

    /// A CQL2 function or operator this implementation does not evaluate.
    #[error("unsupported CQL2 function/operator `{name}`{hint}")]
    Unsupported {
        name: String,
        /// Empty, or a parenthesised explanation starting with a space.
        hint: String,
    },

    /// An operator with the wrong number of arguments (possible in cql2-json).
    #[error("`{op}` takes {expected} argument(s), got {got}")]
    Arity { op: String, expected: &'static str, got: usize },

    /// A geometry or BBOX literal that cannot be used.
    #[error("invalid geometry literal: {message}")]
    InvalidGeometry { message: String },

    /// A date, timestamp, interval, entity id or LIKE pattern literal that cannot be read.
    #[error("invalid {what} `{input}`: {message}")]
    InvalidLiteral { what: &'static str, input: String, message: String },

    /// A filter beyond one of the bounds of [`crate::limits`] (length, nesting, terms): refused
    /// before the recursive parser sees it. `found` is the filter's value, `max` the bound.
    #[error(
        "the filter is too complex: its {limit} is {found}, more than the {max} allowed \
         (simplify it: fewer nested parentheses, an IN list instead of a chain of ORs)"
    )]
    TooComplex { limit: crate::limits::Limit, found: usize, max: usize },
}

impl QueryError {
    pub(crate) fn unsupported(name: impl Into<String>, hint: &str) -> Self {
        let hint = if hint.is_empty() { String::new() } else { format!(" ({hint})") };
        QueryError::Unsupported { name: name.into(), hint }
    }

    pub(crate) fn mismatch(property: impl Into<String>, expected: impl Into<String>, found: impl Into<String>) -> Self {
        QueryError::TypeMismatch { property: property.into(), expected: expected.into(), found: found.into() }
    }

    pub(crate) fn literal(what: &'static str, input: impl Into<String>, message: impl Into<String>) -> Self {
        QueryError::InvalidLiteral { what, input: input.into(), message: message.into() }
    }
}
