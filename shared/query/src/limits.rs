//! Bounds on a filter's size, checked before and right after parsing, so that a hostile filter
//! costs milliseconds and never the process.
//!
//! Why: the `cql2` parser (pest + a Pratt parser), its normalisation and this crate's resolver
//! are recursive. Thirty thousand nested parentheses, or a few thousand chained operators, in
//! one `filter=` overflow a thread's stack, and a stack overflow aborts the whole server, not
//! one request. So, in order:
//!
//! 1. the text may be at most [`MAX_TEXT_BYTES`] long;
//! 2. a scan of the text (a loop over characters, no recursion, string literals skipped) counts
//!    the nesting of brackets — parentheses in cql2-text, objects and arrays in cql2-json — and,
//!    in cql2-text, the terms (names, literals, operators; not the coordinates of a geometry
//!    literal); both must be within [`MAX_DEPTH`] (cql2-json: [`MAX_JSON_DEPTH`]) and
//!    [`MAX_NODES`] before the parser sees the text;
//! 3. the parsed expression is walked with an explicit stack: at most [`MAX_NODES`] nodes and
//!    [`MAX_DEPTH`] levels (operator chains without parentheses nest too) before the recursive
//!    resolver runs.
//!
//! The largest inputs these bounds let through are parsed on a 2 MiB stack by the tests, the
//! stack size of the server's worker threads.

use std::fmt;

use cql2::Expr;

use crate::error::QueryError;

/// Longest filter text, in bytes (UTF-8).
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Deepest nesting: parentheses in cql2-text, levels of the parsed expression in both encodings.
pub const MAX_DEPTH: usize = 32;
/// Deepest nesting of objects and arrays in cql2-json (each CQL2 level is an object and its
/// `args` array, and a geometry's coordinates add up to four arrays).
pub const MAX_JSON_DEPTH: usize = 3 * MAX_DEPTH;
/// Most terms in cql2-text and nodes in a parsed expression (an `IN` list of a thousand codes
/// fits; a geometry literal counts as one).
pub const MAX_NODES: usize = 2000;

/// Which bound a filter exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limit {
    /// Bytes of text ([`MAX_TEXT_BYTES`]).
    Length,
    /// Nesting depth ([`MAX_DEPTH`], [`MAX_JSON_DEPTH`]).
    Depth,
    /// Terms or expression nodes ([`MAX_NODES`]).
    Nodes,
}

impl Limit {
    /// A stable name for the limit (`length`, `depth`, `nodes`), for problem+json members.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Length => "length",
            Limit::Depth => "depth",
            Limit::Nodes => "nodes",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Length => "length in bytes",
            Limit::Depth => "nesting depth",
            Limit::Nodes => "number of terms",
        })
    }
}

fn too(limit: Limit, found: usize, max: usize) -> QueryError {
    QueryError::TooComplex { limit, found, max }
}

fn check_length(text: &str) -> Result<(), QueryError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(too(Limit::Length, text.len(), MAX_TEXT_BYTES));
    }
    Ok(())
}

/// Words that open a geometry literal in cql2-text: its coordinates are one term.
const GEOMETRY_WORDS: &[&str] =
    &["point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection"];

/// Checks length, parenthesis depth and term count of cql2-text, without recursion.
pub(crate) fn check_text(text: &str) -> Result<(), QueryError> {
    check_length(text)?;
    let mut chars = text.chars().peekable();
    let (mut depth, mut max_depth, mut terms) = (0usize, 0usize, 0usize);
    // The depth at which the geometry literal being skipped was opened.
    let mut geometry_at: Option<usize> = None;
    let mut last_word_is_geometry = false;
    while let Some(c) = chars.next() {
        let counted = geometry_at.is_none();
        match c {
            '\'' | '"' => {
                // A quoted literal or name; the quote doubled inside it is an escape.
                while let Some(d) = chars.next() {
                    if d == c {
                        if chars.peek() == Some(&c) {
                            chars.next();
                            continue;
                        }
                        break;
                    }
                }
                terms += usize::from(counted);
                last_word_is_geometry = false;
            }
            '(' => {
                depth += 1;
                max_depth = max_depth.max(depth);
                if last_word_is_geometry && geometry_at.is_none() {
                    geometry_at = Some(depth);
                }
                last_word_is_geometry = false;
            }
            ')' => {
                if geometry_at == Some(depth) {
                    geometry_at = None;
                }
                depth = depth.saturating_sub(1);
                last_word_is_geometry = false;
            }
            c if c.is_whitespace() => {}
            ',' => last_word_is_geometry = false,
            c if c.is_alphanumeric() || c == '_' || c == '.' => {
                let mut word = String::from(c);
                let mut prev = c;
                // `1AND1AND1` is three terms per `AND` to the parser: every switch between digits
                // and letters counts as a new term (an identifier like `f2` counts two; the bound
                // only needs to be conservative).
                let mut extra = 0usize;
                while let Some(&d) = chars.peek() {
                    if d.is_alphanumeric() || matches!(d, '_' | '.' | ':') {
                        if d.is_ascii_digit() != prev.is_ascii_digit() && d.is_alphanumeric() && prev.is_alphanumeric()
                        {
                            extra += 1;
                        }
                        prev = d;
                        word.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                terms += extra * usize::from(counted);
                // `POLYGON Z ((…))`: the dimension marker sits between the word and its coordinates.
                let marker = ["z", "m", "zm"].iter().any(|m| word.eq_ignore_ascii_case(m));
                last_word_is_geometry =
                    GEOMETRY_WORDS.iter().any(|g| word.eq_ignore_ascii_case(g)) || last_word_is_geometry && marker;
                terms += usize::from(counted);
            }
            _ => {
                // An operator: a run of symbols (`<=`, `<>`) is one term.
                while chars.peek().is_some_and(|d| !d.is_alphanumeric() && !d.is_whitespace() && !"'\"(),".contains(*d))
                {
                    chars.next();
                }
                terms += usize::from(counted);
                last_word_is_geometry = false;
            }
        }
    }
    if max_depth > MAX_DEPTH {
        return Err(too(Limit::Depth, max_depth, MAX_DEPTH));
    }
    if terms > MAX_NODES {
        return Err(too(Limit::Nodes, terms, MAX_NODES));
    }
    Ok(())
}

/// Checks length and object/array depth of cql2-json before it is deserialised, without
/// recursion (`serde_json` would stop at 128 levels with a less helpful message).
pub(crate) fn check_json(text: &str) -> Result<(), QueryError> {
    check_length(text)?;
    let mut chars = text.chars();
    let (mut depth, mut max_depth) = (0usize, 0usize);
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '{' | '[' => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if max_depth > MAX_JSON_DEPTH {
        return Err(too(Limit::Depth, max_depth, MAX_JSON_DEPTH));
    }
    Ok(())
}

/// The direct sub-expressions of `e`.
fn children(e: &Expr) -> &[Box<Expr>] {
    match e {
        Expr::Operation { args, .. } => args,
        Expr::Interval { interval } => interval,
        Expr::BBox { bbox } => bbox,
        Expr::Array(items) => items,
        Expr::Timestamp { timestamp } => std::slice::from_ref(timestamp),
        Expr::Date { date } => std::slice::from_ref(date),
        _ => &[],
    }
}

/// Counts the nodes and levels of a parsed expression with an explicit stack.
pub(crate) fn check_expr(expr: &Expr) -> Result<(), QueryError> {
    let mut stack: Vec<(&Expr, usize)> = vec![(expr, 1)];
    let (mut nodes, mut max_depth) = (0usize, 0usize);
    while let Some((e, depth)) = stack.pop() {
        nodes += 1;
        max_depth = max_depth.max(depth);
        if nodes > MAX_NODES {
            return Err(too(Limit::Nodes, nodes, MAX_NODES));
        }
        if depth > MAX_DEPTH {
            return Err(too(Limit::Depth, depth, MAX_DEPTH));
        }
        stack.extend(children(e).iter().map(|c| (&**c, depth + 1)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Filter;
    use shikong_model::{FieldDef, FieldType, LayerSchema};

    fn schema() -> LayerSchema {
        LayerSchema { fields: vec![FieldDef::new("depth", FieldType::Real), FieldDef::new("名称", FieldType::Text)] }
    }

    fn limit_of(r: Result<Filter, QueryError>) -> (Limit, usize, usize) {
        match r {
            Err(QueryError::TooComplex { limit, found, max }) => (limit, found, max),
            other => panic!("expected a limit error, got {other:?}"),
        }
    }

    /// Runs `f` on a thread with the stack of the server's workers (2 MiB).
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new().stack_size(2 << 20).spawn(f).unwrap().join().unwrap()
    }

    #[test]
    fn deep_parentheses_are_refused_before_parsing() {
        let text = format!("{}depth = 1{}", "(".repeat(30_000), ")".repeat(30_000));
        let (limit, found, max) = on_small_stack(move || limit_of(Filter::parse_text(&text, &schema())));
        assert_eq!((limit, found, max), (Limit::Length, 60_009, MAX_TEXT_BYTES));
        let text = format!("{}depth = 1{}", "(".repeat(5_000), ")".repeat(5_000));
        let (limit, found, max) = on_small_stack(move || limit_of(Filter::parse_text(&text, &schema())));
        assert_eq!((limit, found, max), (Limit::Depth, 5_000, MAX_DEPTH));
    }

    #[test]
    fn long_operator_chains_are_refused() {
        for op in ["+", "=", "AND", "OR"] {
            let text = vec!["depth = 1"; 3_000].join(&format!(" {op} "));
            let r = on_small_stack(move || limit_of(Filter::parse_text(&text, &schema())));
            assert_eq!(r.0, Limit::Length, "{op}");
            let text = vec!["1"; 4_000].join(op);
            let r = on_small_stack(move || limit_of(Filter::parse_text(&format!("depth = {text}"), &schema())));
            assert_eq!((r.0, r.2), (Limit::Nodes, MAX_NODES), "{op}");
        }
    }

    #[test]
    fn expression_depth_counts_chains_without_parentheses() {
        let text = format!("depth = {}", vec!["1"; 40].join(" + "));
        let (limit, found, max) = limit_of(Filter::parse_text(&text, &schema()));
        assert_eq!((limit, max), (Limit::Depth, MAX_DEPTH));
        assert!(found > MAX_DEPTH);
    }

    /// The largest filters the bounds let through, in every shape that nests on the parser's or
    /// the resolver's stack, parse (or are refused with a typed error) on a 2 MiB stack.
    #[test]
    fn the_largest_accepted_filters_fit_a_small_stack() {
        let n = MAX_NODES / 2 - 2;
        let shapes = [
            vec!["depth = 1"; MAX_NODES / 4 - 1].join(" AND "),
            vec!["depth = 1"; MAX_NODES / 4 - 1].join(" OR "),
            format!("depth = {}", vec!["1"; n].join(" + ")),
            vec!["1"; n].join(" = "),
            format!("depth = 1 OR {}", vec!["1"; n].join("AND")),
            format!("depth IN ({})", vec!["1"; MAX_NODES - 3].join(",")),
            format!("{}depth = 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH)),
            format!("{}depth = 1{}", "NOT (".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH)),
        ];
        for text in shapes {
            assert!(text.len() <= MAX_TEXT_BYTES, "{}", text.len());
            let t = text.clone();
            // Accepted or refused, but never a crash.
            let r = on_small_stack(move || Filter::parse_text(&t, &schema()).map(|f| f.to_string()));
            if let Err(e) = r {
                assert!(!matches!(e, QueryError::TooComplex { limit: Limit::Length, .. }), "{e}");
            }
        }
        let json = format!(
            "{}{{\"op\":\"=\",\"args\":[{{\"property\":\"depth\"}},1]}}{}",
            "{\"op\":\"not\",\"args\":[".repeat(MAX_JSON_DEPTH / 2 - 1),
            "]}".repeat(MAX_JSON_DEPTH / 2 - 1)
        );
        let r = on_small_stack(move || Filter::parse_json(&json, &schema()).map(|f| f.to_string()));
        assert!(matches!(r, Err(QueryError::TooComplex { limit: Limit::Depth, .. })), "{r:?}");
    }

    #[test]
    fn json_depth_and_size_are_checked_on_the_text() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(limit_of(Filter::parse_json(&deep, &schema())).0, Limit::Length);
        let deep = format!("{}1{}", "[".repeat(1_000), "]".repeat(1_000));
        assert_eq!(limit_of(Filter::parse_json(&deep, &schema())), (Limit::Depth, 1_000, MAX_JSON_DEPTH));
        // Brackets inside strings do not count.
        let quoted = format!("{{\"op\":\"=\",\"args\":[{{\"property\":\"名称\"}},\"{}\"]}}", "[".repeat(200));
        assert!(Filter::parse_json(&quoted, &schema()).is_ok());
        let many = format!(
            "{{\"op\":\"in\",\"args\":[{{\"property\":\"depth\"}},[{}]]}}",
            vec!["1"; MAX_NODES + 10].join(",")
        );
        assert_eq!(limit_of(Filter::parse_json(&many, &schema())).0, Limit::Nodes);
    }

    #[test]
    fn geometry_coordinates_and_strings_are_not_terms() {
        let ring: Vec<String> = (0..1500).map(|i| format!("{} {}", 114 + i % 2, 30 + (i / 2) % 2)).collect();
        let text = format!("s_intersects(geometry, POLYGON(({}, 114 30)))", ring.join(", "));
        assert!(text.len() < MAX_TEXT_BYTES);
        let r = Filter::parse_text(&text, &schema());
        assert!(!matches!(r, Err(QueryError::TooComplex { .. })), "a large polygon literal is one term: {r:?}");
        let text = format!("名称 = '{}'", "(".repeat(1000));
        assert!(Filter::parse_text(&text, &schema()).is_ok());
    }

    #[test]
    fn the_message_names_the_limit_and_the_value() {
        let text = format!("{}depth = 1{}", "(".repeat(40), ")".repeat(40));
        let e = Filter::parse_text(&text, &schema()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the filter is too complex: its nesting depth is 40, more than the 32 allowed \
             (simplify it: fewer nested parentheses, an IN list instead of a chain of ORs)"
        );
    }
}
