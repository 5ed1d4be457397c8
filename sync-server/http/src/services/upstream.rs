//! A registered service's outside address and credentials, and the bounded requests the server
//! makes to it. Nothing here ever puts the outside address into an error message: errors reach
//! clients (registration refusals, health's `last_error`), and the address must not.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shikong_protocol::api::services::{NewService, ServiceType};

/// Longest registered URL, characters.
pub const MAX_URL: usize = 2048;
/// Outside headers per service.
pub const MAX_HEADERS: usize = 16;
/// The path prefix below a service's proxy that means the outside origin's root (where
/// capabilities point outside the service's own base path, e.g. legends).
pub const ORIGIN_PREFIX: &str = "~origin";

/// Outside credentials as stored (JSON in the `services` table; never shown).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

impl Credentials {
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.username.is_none()
    }
}

/// Why an outside request failed, in words fit for clients.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the service did not answer in time")]
    Timeout,
    #[error("the service cannot be reached (connection failed)")]
    Connect,
    #[error("the service answered HTTP {0}")]
    Status(u16),
    #[error("the service's answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Document(String),
    #[error("the request to the service failed")]
    Other,
}

impl From<reqwest::Error> for UpstreamError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            UpstreamError::Timeout
        } else if e.is_connect() {
            UpstreamError::Connect
        } else if let Some(s) = e.status() {
            UpstreamError::Status(s.as_u16())
        } else {
            UpstreamError::Other
        }
    }
}

/// Where a service is and how to reach it.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    pub kind: ServiceType,
    /// `scheme://host[:port]`.
    pub origin: String,
    /// The registered URL without its query (XYZ: the template).
    pub base: String,
    /// The registered URL's own query, kept on every forwarded request (minus the parameters
    /// the protocol sets per request: `SERVICE`, `REQUEST`, `VERSION`, `f`).
    pub query: Option<String>,
    pub credentials: Credentials,
}

fn per_request_param(kind: ServiceType, name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    match kind {
        ServiceType::Wms | ServiceType::Wmts | ServiceType::Wfs => {
            matches!(n.as_str(), "service" | "request" | "version" | "acceptversions")
        }
        _ => n == "f",
    }
}

impl Upstream {
    /// Checks a registration's URL (http or https, no user info, no fragment; XYZ: a template
    /// with `{z}`, `{x}` and `{y}`).
    pub fn parse(kind: ServiceType, url: &str, credentials: Credentials) -> Result<Upstream, String> {
        if url.chars().count() > MAX_URL {
            return Err(format!("longer than {MAX_URL} characters"));
        }
        let probe = if kind == ServiceType::Xyz { url.replace(['{', '}'], "") } else { url.to_owned() };
        let u = reqwest::Url::parse(&probe).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err("must be an http or https URL".into());
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err("must not carry a user or password: send `username` and `password` instead".into());
        }
        if u.fragment().is_some() {
            return Err("must not have a #fragment".into());
        }
        if u.host_str().is_none() {
            return Err("has no host".into());
        }
        let origin = u.origin().ascii_serialization();
        if kind == ServiceType::Xyz {
            if !["{z}", "{x}", "{y}"].iter().all(|p| url.contains(p)) {
                return Err("an xyz service's url is a template with {z}, {x} and {y}".into());
            }
            return Ok(Upstream { kind, origin, base: url.to_owned(), query: None, credentials });
        }
        let mut base = u.clone();
        base.set_query(None);
        let kept: Vec<String> = u
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty())
            .filter(|kv| !per_request_param(kind, kv.split('=').next().unwrap_or("")))
            .map(str::to_owned)
            .collect();
        let query = (!kept.is_empty()).then(|| kept.join("&"));
        Ok(Upstream { kind, origin, base: base.to_string(), query, credentials })
    }

    /// From a registration body.
    pub fn from_new(new: &NewService) -> Result<Upstream, String> {
        if new.headers.len() > MAX_HEADERS {
            return Err(format!("{} headers; at most {MAX_HEADERS}", new.headers.len()));
        }
        for h in &new.headers {
            let bad = reqwest::header::HeaderName::from_bytes(h.name.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(&h.value).is_err();
            if bad {
                return Err(format!("header `{}` is not a valid HTTP header", h.name));
            }
        }
        let credentials = Credentials {
            headers: new.headers.iter().map(|h| (h.name.clone(), h.value.clone())).collect(),
            username: new.username.clone(),
            password: new.password.clone(),
        };
        Upstream::parse(new.kind, &new.url, credentials)
    }

    /// The base URL with the registered query.
    pub fn base_with_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.base),
            None => self.base.clone(),
        }
    }

    /// An XYZ tile's URL.
    pub fn tile_url(&self, z: u32, x: u32, y: u32) -> String {
        self.base.replace("{z}", &z.to_string()).replace("{x}", &x.to_string()).replace("{y}", &y.to_string())
    }

    /// The outside URL of a proxied request: `path` below the base (or below the origin's root
    /// after `~origin/`), with the registered query and then the client's (`query`, already
    /// without the key). `None` when an XYZ path is not `{z}/{x}/{y}[.ext]`.
    pub fn target(&self, path: &str, query: &str) -> Option<String> {
        let join_query = |url: String, registered: Option<&str>| {
            let parts: Vec<&str> = registered.into_iter().chain([query]).filter(|q| !q.is_empty()).collect();
            if parts.is_empty() {
                url
            } else {
                format!("{url}{}{}", if url.contains('?') { '&' } else { '?' }, parts.join("&"))
            }
        };
        if let Some(rest) = path.strip_prefix(ORIGIN_PREFIX) {
            return Some(join_query(format!("{}/{}", self.origin, rest.trim_start_matches('/')), None));
        }
        if self.kind == ServiceType::Xyz {
            let seg: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            let n = |s: &str| s.split('.').next().and_then(|v| v.parse::<u32>().ok());
            let [z, x, y] = seg.as_slice() else { return None };
            return Some(join_query(self.tile_url(n(z)?, n(x)?, n(y)?), None));
        }
        let url =
            if path.is_empty() { self.base.clone() } else { format!("{}/{}", self.base.trim_end_matches('/'), path) };
        Some(join_query(url, self.query.as_deref()))
    }

    /// A GET to `url` with the stored credentials.
    pub fn request(&self, client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        self.request_as(client, url, true)
    }

    /// A GET to `url`, with the stored credentials or without.
    pub fn request_as(&self, client: &reqwest::Client, url: &str, credentials: bool) -> reqwest::RequestBuilder {
        let mut req = client.get(url);
        if !credentials {
            return req;
        }
        for (k, v) in &self.credentials.headers {
            req = req.header(k, v);
        }
        if let Some(user) = &self.credentials.username {
            req = req.basic_auth(user, self.credentials.password.as_deref());
        }
        req
    }

    /// GETs `url` and reads at most `max` bytes of a successful answer within `timeout`.
    pub async fn get_bounded(
        &self,
        client: &reqwest::Client,
        url: &str,
        max: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>, UpstreamError> {
        let mut resp = self.request(client, url).timeout(timeout).send().await?;
        if !resp.status().is_success() {
            return Err(UpstreamError::Status(resp.status().as_u16()));
        }
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(UpstreamError::TooLarge(max));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > max {
                return Err(UpstreamError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Replaces the outside base URL and origin in a text answer by the proxy's own addresses
    /// (also their JSON-escaped forms, `http:\/\/…`), so the outside address never reaches a
    /// client. Byte-wise: URLs are ASCII, and the answer may be in any ASCII-compatible encoding
    /// (UTF-8, GBK).
    pub fn rewrite(&self, text: &[u8], proxy_base: &str) -> Vec<u8> {
        let proxy_base = proxy_base.trim_end_matches('/');
        let origin_proxy = format!("{proxy_base}/{ORIGIN_PREFIX}");
        let mut pairs = Vec::with_capacity(2);
        // An XYZ template has no base path: only its origin is replaced.
        if self.kind != ServiceType::Xyz {
            pairs.push((self.base.trim_end_matches('/').to_owned(), proxy_base.to_owned()));
        }
        pairs.push((self.origin.clone(), origin_proxy));
        // Each pair also in its JSON-escaped form; one pass, so a replacement (the proxy's own
        // address may share the outside origin) is never replaced again.
        let mut all: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(4);
        for (from, to) in pairs.into_iter().filter(|(f, _)| !f.is_empty()) {
            all.push((from.replace('/', "\\/").into_bytes(), to.replace('/', "\\/").into_bytes()));
            all.push((from.into_bytes(), to.into_bytes()));
        }
        replace_all(text, &all)
    }
}

/// `hay` with every occurrence of a pair's first part replaced by its second, in one pass (the
/// first pair matching at a position wins).
fn replace_all(hay: &[u8], pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let firsts: Vec<u8> = pairs.iter().filter_map(|(f, _)| f.first().copied()).collect();
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    'outer: while i < hay.len() {
        if firsts.contains(&hay[i]) {
            for (from, to) in pairs {
                if !from.is_empty() && hay[i..].starts_with(from) {
                    out.extend_from_slice(to);
                    i += from.len();
                    continue 'outer;
                }
            }
        }
        out.push(hay[i]);
        i += 1;
    }
    out
}

/// The HTTP client for outside services: bounded connect time and time between reads (a
/// proxied download may take long as long as bytes keep coming; capabilities and health checks
/// add a total bound per request), a bounded idle pool, no redirects followed (a redirect's
/// `Location` is rewritten and passed to the client).
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5).min(timeout))
        .read_timeout(timeout)
        .pool_max_idle_per_host(32)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("shikong/", env!("CARGO_PKG_VERSION"), " (service proxy)"))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_rewrites() {
        let up = Upstream::parse(
            ServiceType::Wms,
            "http://10.0.0.5:8080/geoserver/wms?map=a&SERVICE=WMS",
            Credentials::default(),
        )
        .unwrap();
        assert_eq!(up.query.as_deref(), Some("map=a"));
        assert_eq!(up.target("", "REQUEST=GetMap").unwrap(), "http://10.0.0.5:8080/geoserver/wms?map=a&REQUEST=GetMap");
        assert_eq!(up.target("~origin/legend.png", "").unwrap(), "http://10.0.0.5:8080/legend.png");
        let doc = r#"<a href="http://10.0.0.5:8080/geoserver/wms?x"/><b href="http://10.0.0.5:8080/other"/>{"u":"http:\/\/10.0.0.5:8080\/geoserver\/wms"}"#;
        let out = String::from_utf8(up.rewrite(doc.as_bytes(), "https://p/services/s1/proxy/")).unwrap();
        assert!(!out.contains("10.0.0.5"), "{out}");
        assert!(
            out.contains("https://p/services/s1/proxy?x") && out.contains("https://p/services/s1/proxy/~origin/other")
        );
        // The proxy on the service's own origin: replaced text is not replaced again.
        let own = Upstream::parse(ServiceType::Wmts, "http://h:1/wmts/caps.xml", Credentials::default()).unwrap();
        let out = own.rewrite(b"<a href='http://h:1/wmts/t/{z}'/>", "http://h:1/services/s/proxy");
        assert_eq!(String::from_utf8(out).unwrap(), "<a href='http://h:1/services/s/proxy/~origin/wmts/t/{z}'/>");
        let xyz =
            Upstream::parse(ServiceType::Xyz, "https://t.example/{z}/{x}/{y}.png?k=1", Credentials::default()).unwrap();
        assert_eq!(xyz.target("3/4/5.png", "").unwrap(), "https://t.example/3/4/5.png?k=1");
        assert!(xyz.target("3/4", "").is_none());
        assert!(Upstream::parse(ServiceType::Xyz, "https://t.example/tiles", Credentials::default()).is_err());
        assert!(Upstream::parse(ServiceType::Wms, "ftp://x/", Credentials::default()).is_err());
        assert!(Upstream::parse(ServiceType::Wms, "http://u:p@x/", Credentials::default()).is_err());
    }
}
