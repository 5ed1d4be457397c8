//! Query parameters of the OGC endpoints, parsed strictly: an unknown or repeated parameter, or a
//! malformed value, is a 400 naming the parameter (OGC API – Features /req/core/query-param-*).

use axum::http::{HeaderMap, header};
use jiff::Timestamp;
use shikong_model::time::ValidFilter;
use shikong_model::{Bbox, Crs};

use super::problem::{ApiError, ApiResult};

/// Deepest `offset` accepted (the store reads and skips every row before it).
pub const MAX_OFFSET: usize = 100_000;

/// Response encoding chosen by `f=` or the `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Html,
}

/// Query pairs with strict lookups.
#[derive(Debug)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn new(raw: Option<&str>) -> ApiResult<Self> {
        let pairs: Vec<(String, String)> = match raw {
            None | Some("") => Vec::new(),
            Some(q) => serde_urlencoded_pairs(q)?,
        };
        Ok(Params { pairs })
    }

    /// Refuses any parameter not in `allowed`, and repeated ones.
    pub fn only(&self, allowed: &[&str]) -> ApiResult<()> {
        self.only_repeating(allowed, &[])
    }

    /// [`Params::only`], except that the parameters in `repeatable` may be given several times
    /// (read them with [`Params::all`]).
    pub fn only_repeating(&self, allowed: &[&str], repeatable: &[&str]) -> ApiResult<()> {
        let mut seen = std::collections::HashSet::new();
        for (k, _) in &self.pairs {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad_parameter(k, format!("unknown parameter (known: {})", allowed.join(", "))));
            }
            if !seen.insert(k.as_str()) && !repeatable.contains(&k.as_str()) {
                return Err(ApiError::bad_parameter(k, "given more than once"));
            }
        }
        Ok(())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeatable parameter, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    pub fn format(&self, headers: &HeaderMap) -> ApiResult<Format> {
        match self.get("f") {
            Some("json" | "geojson" | "jsonfg") => Ok(Format::Json),
            Some("html") => Ok(Format::Html),
            Some(other) => Err(ApiError::bad_parameter("f", format!("`{other}` is not json or html"))),
            None => {
                let accept = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok()).unwrap_or("");
                // Browsers ask for text/html first; API clients for JSON or */*.
                Ok(if accept.starts_with("text/html") { Format::Html } else { Format::Json })
            }
        }
    }

    pub fn limit(&self, default: usize, max: usize) -> ApiResult<usize> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_parameter("limit", format!("`{v}` is not an integer between 1 and {max}"))),
            },
        }
    }

    /// `offset`, at most [`MAX_OFFSET`]: the store skips an offset row by row, so a deep offset
    /// costs as much as reading every row before it.
    pub fn offset(&self) -> ApiResult<usize> {
        match self.get("offset") {
            None => Ok(0),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n <= MAX_OFFSET => Ok(n),
                Ok(n) => Err(ApiError::bad_parameter(
                    "offset",
                    format!(
                        "{n} is more than the {MAX_OFFSET} features this server skips; narrow the request \
                         (a filter, a bbox, a datetime) so that it needs fewer pages, or export the layer"
                    ),
                )
                .with("max", MAX_OFFSET)),
                Err(_) => Err(ApiError::bad_parameter("offset", format!("`{v}` is not a non-negative integer"))),
            },
        }
    }

    pub fn crs(&self, key: &str) -> ApiResult<Option<Crs>> {
        self.get(key)
            .map(|v| {
                let v = v.trim_start_matches('[').trim_end_matches(']');
                v.parse::<Crs>().map_err(|e| ApiError::bad_parameter(key, e))
            })
            .transpose()
    }

    /// `bbox`, as given (axis order of `bbox-crs`; the caller converts).
    pub fn bbox(&self) -> ApiResult<Option<Bbox>> {
        self.get("bbox").map(|v| v.parse::<Bbox>().map_err(|e| ApiError::bad_parameter("bbox", e))).transpose()
    }

    pub fn datetime(&self) -> ApiResult<Option<ValidFilter>> {
        self.get("datetime")
            .map(|v| ValidFilter::parse(v).map_err(|e| ApiError::bad_parameter("datetime", e)))
            .transpose()
    }

    pub fn instant(&self, key: &str) -> ApiResult<Option<Timestamp>> {
        self.get(key).map(|v| shikong_model::parse_instant(v).map_err(|e| ApiError::bad_parameter(key, e))).transpose()
    }
}

fn serde_urlencoded_pairs(q: &str) -> ApiResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let dec = |s: &str| -> ApiResult<String> {
            shikong_protocol::url::decode_form_value(s).map_err(|e| ApiError::bad_parameter(k, e))
        };
        out.push((dec(k)?, dec(v)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parsing() {
        let p =
            Params::new(Some("limit=5&bbox=114.2%2C30.4%2C114.5%2C30.6&filter=%E5%90%8D%E7%A7%B0%20%3D%20'%E4%BA%95'"))
                .unwrap();
        p.only(&["limit", "bbox", "filter"]).unwrap();
        assert_eq!(p.limit(10, 100).unwrap(), 5);
        assert_eq!(p.get("filter"), Some("名称 = '井'"));
        assert!(p.only(&["limit"]).unwrap_err().detail.contains("parameter `bbox`: unknown parameter"));
        let p = Params::new(Some("limit=0")).unwrap();
        assert!(p.limit(10, 100).is_err());
        let p = Params::new(Some("limit=1&limit=2")).unwrap();
        assert!(p.only(&["limit"]).unwrap_err().detail.contains("more than once"));
        assert!(Params::new(Some("a=%zz")).is_err());
        let p = Params::new(Some("id=a&id=b&f=json")).unwrap();
        p.only_repeating(&["id", "f"], &["id"]).unwrap();
        assert_eq!(p.all("id"), ["a", "b"]);
        let p = Params::new(Some("id=a&f=json&f=html")).unwrap();
        assert!(p.only_repeating(&["id", "f"], &["id"]).unwrap_err().detail.contains("parameter `f`: given more"));
    }
}
