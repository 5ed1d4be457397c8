//! Parsing cql2-text and cql2-json with the `cql2` crate, within the bounds of
//! [`crate::limits`], and refusing instants without a UTC offset before that crate rewrites them
//! to UTC.

use jiff::civil::Date;
use serde_json::Value as Json;
use shikong_model::time;

use cql2::Expr;

use crate::error::QueryError;
use crate::limits;

/// Parses cql2-text (without resolving names).
pub(crate) fn parse_text(text: &str) -> Result<Expr, QueryError> {
    limits::check_text(text)?;
    if let Some(s) = offsetless_timestamp_in_text(text) {
        return Err(offsetless(&s));
    }
    let expr = cql2::parse_text(text).map_err(|e| match e {
        cql2::Error::Pest(p) => {
            let (line, column) = match p.line_col {
                pest::error::LineColLocation::Pos(lc) | pest::error::LineColLocation::Span(lc, _) => lc,
            };
            QueryError::Syntax { line, column, message: p.to_string() }
        }
        other => QueryError::Cql2(other.to_string()),
    })?;
    limits::check_expr(&expr)?;
    Ok(expr)
}

/// Parses cql2-json (without resolving names).
pub(crate) fn parse_json(json: &str) -> Result<Expr, QueryError> {
    limits::check_json(json)?;
    let v: Json = serde_json::from_str(json).map_err(|e| QueryError::Json { path: None, message: e.to_string() })?;
    check_json_offsets(&v)?;
    match serde_json::from_value::<Expr>(v.clone()) {
        Ok(e) => {
            limits::check_expr(&e)?;
            Ok(e)
        }
        Err(_) => {
            let (path, node) = locate(&v, String::new());
            let mut snippet: String = node.to_string().chars().take(80).collect();
            if snippet.chars().count() == 80 {
                snippet.push('…');
            }
            Err(QueryError::Json {
                path: Some(if path.is_empty() { "/".into() } else { path }),
                message: format!("not a CQL2 expression: {snippet}"),
            })
        }
    }
}

/// The innermost `args` entry that is not an expression although its own arguments are.
fn locate(v: &Json, path: String) -> (String, &Json) {
    if let Some(args) = v.get("args").and_then(Json::as_array) {
        for (i, a) in args.iter().enumerate() {
            if serde_json::from_value::<Expr>(a.clone()).is_err() {
                return locate(a, format!("{path}/args/{i}"));
            }
        }
    }
    (path, v)
}

pub(super) fn offsetless(s: &str) -> QueryError {
    QueryError::literal(
        "timestamp",
        s,
        format!("it has no UTC offset; write {s}+08:00 for Beijing time or {s}Z for UTC"),
    )
}

/// `s` when it is a bare calendar date `YYYY-MM-DD` (jiff's date parser also takes date-times and
/// drops the time, which must not happen here).
pub(super) fn plain_date(s: &str) -> Option<Date> {
    let t = s.trim();
    let shaped = t.chars().count() == 10
        && t.chars().enumerate().all(|(i, c)| if i == 4 || i == 7 { c == '-' } else { c.is_ascii_digit() });
    if shaped { time::parse_date(t).ok() } else { None }
}

/// Whether `s` is a date with a time of day but no UTC offset.
pub(super) fn is_offsetless_instant(s: &str) -> bool {
    let s = s.trim();
    match s.split_once(['T', 't', ' ']) {
        Some((date, clock)) => {
            plain_date(date).is_some()
                && clock.starts_with(|c: char| c.is_ascii_digit())
                && !clock.contains(['Z', 'z', '+', '-', '['])
        }
        None => false,
    }
}

/// The first offset-less instant written inside `TIMESTAMP(…)` or `INTERVAL(…)` in cql2-text.
///
/// The `cql2` crate rewrites such literals to UTC before we see them, so they are caught on the
/// text. This is a scan for string literals and parentheses, not a parser: it only has to know
/// which strings sit inside those two calls.
fn offsetless_timestamp_in_text(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut calls: Vec<bool> = Vec::new();
    let mut last_word: Option<String> = None;
    while let Some(&c) = chars.get(i) {
        match c {
            '\'' | '"' => {
                let mut s = String::new();
                i += 1;
                while let Some(&d) = chars.get(i) {
                    if d == c {
                        if chars.get(i + 1) == Some(&c) {
                            s.push(c);
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    s.push(d);
                    i += 1;
                }
                i += 1;
                if c == '\'' && calls.iter().any(|t| *t) && is_offsetless_instant(&s) {
                    return Some(s);
                }
                last_word = None;
            }
            c if c.is_alphabetic() => {
                let start = i;
                while chars.get(i).is_some_and(|d| d.is_alphanumeric() || matches!(d, '_' | '.' | ':')) {
                    i += 1;
                }
                last_word = Some(chars[start..i].iter().collect());
            }
            '(' => {
                let temporal = last_word
                    .take()
                    .is_some_and(|w| w.eq_ignore_ascii_case("timestamp") || w.eq_ignore_ascii_case("interval"));
                calls.push(temporal);
                i += 1;
            }
            ')' => {
                calls.pop();
                last_word = None;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            _ => {
                last_word = None;
                i += 1;
            }
        }
    }
    None
}

/// The same check on cql2-json: `{"timestamp": …}` and `{"interval": […]}` members.
fn check_json_offsets(v: &Json) -> Result<(), QueryError> {
    match v {
        Json::Object(m) => {
            if let Some(Json::String(s)) = m.get("timestamp")
                && is_offsetless_instant(s)
            {
                return Err(offsetless(s));
            }
            if let Some(Json::Array(items)) = m.get("interval") {
                for s in items.iter().filter_map(Json::as_str) {
                    if is_offsetless_instant(s) {
                        return Err(offsetless(s));
                    }
                }
            }
            m.values().try_for_each(check_json_offsets)
        }
        Json::Array(items) => items.iter().try_for_each(check_json_offsets),
        _ => Ok(()),
    }
}
