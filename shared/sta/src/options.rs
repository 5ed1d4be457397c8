//! OData query options of SensorThings: `$filter`, `$expand` (with nested options,
//! `Datastreams($filter=…;$top=2;$expand=Observations)`), `$select`, `$orderby`, `$top`, `$skip`,
//! `$count`, `$resultFormat=dataArray`, parsed from a raw query string against an entity type.
//!
//! Values are percent-decoded with `+` read as a space (as HTML forms and servlet containers do;
//! a `+` in a time offset must be sent as `%2B`). Errors name the option and the character
//! position inside its decoded value; an error inside a nested option of `$expand` is reported
//! at its position in the whole `$expand` value. Unknown `$` options and repeated options are
//! refused; parameters without `$` are left to the caller.

use std::cell::Cell;

use percent_encoding::percent_decode_str;

use crate::ast::Expr;
use crate::entity::EntityType;
use crate::error::{Result, StaError};
use crate::filter;

/// Bounds of a query string.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Longest raw query string in bytes.
    pub max_query_bytes: usize,
    /// Deepest `$expand` nesting (`Datastreams/Observations/FeatureOfInterest` is 3).
    pub max_expand_depth: usize,
    /// Most expanded navigation properties in one request (all levels).
    pub max_expand_items: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits { max_query_bytes: 32 * 1024, max_expand_depth: 5, max_expand_items: 50 }
    }
}

/// `$resultFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    DataArray,
}

/// One `$orderby` key.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub expr: Expr,
    pub descending: bool,
}

/// One expanded navigation property with its own options (a path `A/B` becomes `A` expanding
/// `B`).
#[derive(Debug, Clone, PartialEq)]
pub struct Expand {
    pub nav: &'static str,
    pub target: EntityType,
    pub options: QueryOptions,
}

/// Parsed query options (of the request or of one `$expand` level).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryOptions {
    pub filter: Option<Expr>,
    pub expand: Vec<Expand>,
    /// Selected properties and navigation properties (`id` for `@iot.id`); empty = all.
    pub select: Vec<String>,
    pub orderby: Vec<OrderBy>,
    pub top: Option<u64>,
    pub skip: Option<u64>,
    pub count: Option<bool>,
    pub result_format: Option<ResultFormat>,
}

/// Percent-decodes a query component, `+` as space.
/// `None` when the bytes are not UTF-8.
pub fn decode_component(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8().ok().map(|c| c.into_owned())
}

/// Parses the raw query string (without `?`) of a request on entities of type `ty`.
pub fn parse_query(raw: &str, ty: EntityType) -> Result<QueryOptions> {
    parse_query_with(raw, ty, QueryLimits::default())
}

/// [`parse_query`] with explicit limits.
pub fn parse_query_with(raw: &str, ty: EntityType, limits: QueryLimits) -> Result<QueryOptions> {
    if raw.len() > limits.max_query_bytes {
        return Err(StaError::too_large(
            "query string length in bytes",
            raw.len() as u64,
            limits.max_query_bytes as u64,
        ));
    }
    let mut opts = QueryOptions::default();
    let mut seen: Vec<String> = Vec::new();
    let expands = Cell::new(0usize);
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode_component(k)
            .ok_or_else(|| StaError::query(k, 1, "the option name is not UTF-8 after percent-decoding"))?;
        if !name.starts_with('$') {
            continue;
        }
        let value = decode_component(v)
            .ok_or_else(|| StaError::query(&name, 1, "the value is not UTF-8 after percent-decoding"))?;
        if seen.contains(&name) {
            return Err(StaError::query(&name, 1, format!("`{name}` is given twice")));
        }
        seen.push(name.clone());
        let chars: Vec<char> = value.chars().collect();
        let cx = Cx { chars: &chars, label: &name, limits, expands: &expands };
        cx.apply(&name, 0, chars.len(), 1, ty, 0, &mut opts)?;
    }
    Ok(opts)
}

struct Cx<'a> {
    chars: &'a [char],
    label: &'a str,
    limits: QueryLimits,
    /// Expanded navigation properties so far, all levels of one query string.
    expands: &'a Cell<usize>,
}

/// Splits `chars[s..e]` at `sep` outside quotes and parentheses.
fn split_top(chars: &[char], s: usize, e: usize, sep: char) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, s);
    for (i, ch) in chars.iter().enumerate().take(e).skip(s) {
        match *ch {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            c if c == sep && !quoted && depth == 0 => {
                out.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push((start, e));
    out
}

impl Cx<'_> {
    fn err(&self, i: usize, msg: impl Into<String>) -> StaError {
        StaError::query(self.label, i + 1, msg)
    }

    fn trim(&self, mut s: usize, mut e: usize) -> (usize, usize) {
        while s < e && self.chars[s].is_whitespace() {
            s += 1;
        }
        while e > s && self.chars[e - 1].is_whitespace() {
            e -= 1;
        }
        (s, e)
    }

    fn text(&self, s: usize, e: usize) -> String {
        self.chars[s..e].iter().collect()
    }

    /// Applies option `name` with value `chars[s..e]` (`name_pos` is where the name starts, for
    /// errors about the name itself).
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        name: &str,
        s: usize,
        e: usize,
        name_pos: usize,
        ty: EntityType,
        depth: usize,
        o: &mut QueryOptions,
    ) -> Result<()> {
        let (s, e) = self.trim(s, e);
        match name {
            "$filter" => o.filter = Some(filter::parse_chars(&self.chars[s..e], s, self.label, Some(ty))?),
            "$top" => o.top = Some(self.int(s, e, name)?),
            "$skip" => o.skip = Some(self.int(s, e, name)?),
            "$count" => {
                o.count = Some(match self.text(s, e).as_str() {
                    "true" => true,
                    "false" => false,
                    other => return Err(self.err(s, format!("$count is `true` or `false`, not `{other}`"))),
                })
            }
            "$resultFormat" => match self.text(s, e).as_str() {
                "dataArray" => o.result_format = Some(ResultFormat::DataArray),
                other => return Err(self.err(s, format!("the only $resultFormat is `dataArray`, not `{other}`"))),
            },
            "$select" => o.select = self.select(s, e, ty)?,
            "$orderby" => o.orderby = self.orderby(s, e, ty)?,
            "$expand" => o.expand = self.expand(s, e, ty, depth)?,
            other => {
                return Err(StaError::query(
                    self.label,
                    name_pos,
                    format!(
                        "unknown query option `{other}`; options are $filter, $expand, $select, $orderby, $top, $skip, $count, $resultFormat"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn int(&self, s: usize, e: usize, name: &str) -> Result<u64> {
        let t = self.text(s, e);
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(s, format!("{name} is a non-negative integer, not `{t}`")));
        }
        t.parse::<u64>()
            .ok()
            .filter(|n| *n <= i64::MAX as u64)
            .ok_or_else(|| self.err(s, format!("{name} `{t}` is out of range")))
    }

    fn select(&self, s: usize, e: usize, ty: EntityType) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (a, b) in split_top(self.chars, s, e, ',') {
            let (a, b) = self.trim(a, b);
            let name = self.text(a, b);
            let name = if name == "@iot.id" { "id".to_owned() } else { name };
            if ty.property(&name).is_none() && ty.navigation(&name).is_none() {
                let mut names: Vec<&str> = ty.properties().to_vec();
                names.extend(ty.navigations().iter().map(|n| n.name));
                return Err(
                    self.err(a, format!("{ty} has no property or navigation `{name}`; it has {}", names.join(", ")))
                );
            }
            if !out.contains(&name) {
                out.push(name);
            }
        }
        Ok(out)
    }

    fn orderby(&self, s: usize, e: usize, ty: EntityType) -> Result<Vec<OrderBy>> {
        let mut out = Vec::new();
        for (a, b) in split_top(self.chars, s, e, ',') {
            let (a, b) = self.trim(a, b);
            let mut end = b;
            let mut descending = false;
            let mut k = b;
            while k > a && !self.chars[k - 1].is_whitespace() {
                k -= 1;
            }
            if k > a {
                match self.text(k, b).to_ascii_lowercase().as_str() {
                    "asc" => end = k,
                    "desc" => {
                        end = k;
                        descending = true;
                    }
                    _ => {}
                }
            }
            if a == end {
                return Err(self.err(a, "an $orderby key is an expression, then optionally `asc` or `desc`"));
            }
            let expr = filter::parse_chars(&self.chars[a..end], a, self.label, Some(ty))?;
            out.push(OrderBy { expr, descending });
        }
        Ok(out)
    }

    fn expand(&self, s: usize, e: usize, ty: EntityType, depth: usize) -> Result<Vec<Expand>> {
        let mut out: Vec<Expand> = Vec::new();
        for (a, b) in split_top(self.chars, s, e, ',') {
            let (a, b) = self.trim(a, b);
            if a == b {
                return Err(self.err(a, "empty $expand item"));
            }
            let open = (a..b).find(|&i| self.chars[i] == '(');
            let path_end = open.unwrap_or(b);
            // The navigation path.
            let mut navs: Vec<(&'static str, EntityType)> = Vec::new();
            let mut t = ty;
            for (ps, pe) in split_top(self.chars, a, path_end, '/') {
                let (ps, pe) = self.trim(ps, pe);
                let seg = self.text(ps, pe);
                let Some(n) = t.navigation(&seg) else {
                    let names: Vec<&str> = t.navigations().iter().map(|n| n.name).collect();
                    return Err(
                        self.err(ps, format!("{t} has no navigation property `{seg}`; it has {}", names.join(", ")))
                    );
                };
                navs.push((n.name, n.target));
                t = n.target;
                if depth + navs.len() > self.limits.max_expand_depth {
                    return Err(
                        self.err(ps, format!("$expand nested deeper than {} levels", self.limits.max_expand_depth))
                    );
                }
            }
            // Nested options of the last navigation property.
            let mut inner = QueryOptions::default();
            if let Some(open) = open {
                if self.chars[b - 1] != ')' {
                    return Err(self.err(b - 1, "expected `)` to close the nested options of this $expand item"));
                }
                let mut seen: Vec<String> = Vec::new();
                for (os, oe) in split_top(self.chars, open + 1, b - 1, ';') {
                    let (os, oe) = self.trim(os, oe);
                    if os == oe {
                        continue;
                    }
                    let Some(eq) = (os..oe).find(|&i| self.chars[i] == '=') else {
                        return Err(self.err(os, "a nested option is written `$name=value`"));
                    };
                    let name = self.text(os, eq).trim().to_owned();
                    if seen.contains(&name) {
                        return Err(self.err(os, format!("`{name}` is given twice in one $expand item")));
                    }
                    seen.push(name.clone());
                    self.apply(&name, eq + 1, oe, os + 1, t, depth + navs.len(), &mut inner)?;
                }
            }
            // Count and nest: A/B(opts) → A { expand: [B { opts }] }.
            let n = self.expands.get() + navs.len();
            self.expands.set(n);
            if n > self.limits.max_expand_items {
                return Err(StaError::too_large(
                    "expanded navigation properties",
                    n as u64,
                    self.limits.max_expand_items as u64,
                ));
            }
            let mut node: Option<Expand> = None;
            for (nav, target) in navs.into_iter().rev() {
                let options = match node.take() {
                    None => std::mem::take(&mut inner),
                    Some(child) => QueryOptions { expand: vec![child], ..QueryOptions::default() },
                };
                node = Some(Expand { nav, target, options });
            }
            if let Some(n) = node {
                out.push(n);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
