//! The links devices read from QR codes: `shikong://enrol?…` (enrol this device with a one-time
//! code) and `shikong://feature?…` (open a shared feature).
//!
//! ```text
//! shikong://enrol?server=http%3A%2F%2F10.0.0.5%3A8080&code=Xy3…&user=%E5%BC%A0%E4%B8%89
//! shikong://feature?server=https%3A%2F%2Fgis.example.cn&collection=manhole&id=0191…
//! ```
//!
//! Parameter values are percent-encoded UTF-8 (everything but `A–Z a–z 0–9 - . _ ~` is escaped
//! when writing). Reading follows `application/x-www-form-urlencoded`, so `+` is a space and links
//! built by a browser's `URLSearchParams` parse too. The scheme and the kind (`enrol`, `feature`)
//! are case-insensitive; unknown parameters are ignored (later versions may add some); a repeated
//! parameter is an error. `server` must be an `http://` or `https://` URL; a trailing `/` is
//! dropped. Pure: no I/O, the mobile app and the server share it.

use std::fmt;

use crate::url;

/// The scheme of every shikong link.
pub const SCHEME: &str = "shikong";

/// Why a text is not a shikong link of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    /// Not a `shikong://` link at all (another QR code: a web page, a payment code …).
    WrongScheme { found: String },
    /// A shikong link of another kind (`shikong://feature` where an enrolment was expected).
    WrongKind { expected: &'static str, found: String },
    /// A required parameter is absent or empty.
    Missing { parameter: &'static str },
    /// A value is not valid percent-encoded UTF-8.
    BadEncoding { parameter: String, reason: String },
    /// A parameter given twice.
    Repeated { parameter: String },
    /// `server` is not an http(s) URL.
    BadServer { server: String },
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::WrongScheme { found } => {
                write!(f, "not a shikong link (expected `{SCHEME}://…`, got `{}`)", shorten(found))
            }
            LinkError::WrongKind { expected, found } => {
                write!(f, "a shikong `{found}` link, not `{expected}`")
            }
            LinkError::Missing { parameter } => write!(f, "the link has no `{parameter}`"),
            LinkError::BadEncoding { parameter, reason } => {
                write!(f, "parameter `{parameter}` is not valid percent-encoded UTF-8: {reason}")
            }
            LinkError::Repeated { parameter } => write!(f, "parameter `{parameter}` appears more than once"),
            LinkError::BadServer { server } => {
                write!(f, "server `{}` is not an http:// or https:// URL", shorten(server))
            }
        }
    }
}

impl std::error::Error for LinkError {}

/// At most 60 characters of a text quoted in an error (QR codes can hold kilobytes).
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// A one-time device enrolment: the server to enrol with, the code (`POST /auth/enrol`), and the
/// user it was issued for (shown to the person scanning, so they see whose device this becomes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentLink {
    /// Base URL of the server as the device reaches it (`http://10.0.0.5:8080`).
    pub server: String,
    pub code: String,
    pub user: Option<String>,
}

impl EnrolmentLink {
    pub const KIND: &'static str = "enrol";

    /// `shikong://enrol?server=…&code=…[&user=…]`.
    pub fn to_uri(&self) -> String {
        let mut params = vec![("server", self.server.as_str()), ("code", self.code.as_str())];
        if let Some(u) = &self.user {
            params.push(("user", u));
        }
        build(Self::KIND, &params)
    }

    /// Reads a scanned text; see the module documentation for what is accepted.
    pub fn parse(text: &str) -> Result<EnrolmentLink, LinkError> {
        let mut p = Parsed::new(text, Self::KIND)?;
        let link = EnrolmentLink { server: p.server()?, code: p.required("code")?, user: p.optional("user") };
        Ok(link)
    }
}

/// A feature shared between people: open `collection`/`id` on `server`
/// (`GET {server}/collections/{collection}/items/{id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureLink {
    pub server: String,
    pub collection: String,
    /// The entity id (UUID) or entity code; the items endpoint accepts both.
    pub id: String,
}

impl FeatureLink {
    pub const KIND: &'static str = "feature";

    /// `shikong://feature?server=…&collection=…&id=…`.
    pub fn to_uri(&self) -> String {
        build(
            Self::KIND,
            &[("server", self.server.as_str()), ("collection", self.collection.as_str()), ("id", self.id.as_str())],
        )
    }

    /// Reads a scanned text; see the module documentation for what is accepted.
    pub fn parse(text: &str) -> Result<FeatureLink, LinkError> {
        let mut p = Parsed::new(text, Self::KIND)?;
        Ok(FeatureLink { server: p.server()?, collection: p.required("collection")?, id: p.required("id")? })
    }
}

fn build(kind: &str, params: &[(&str, &str)]) -> String {
    let mut out = format!("{SCHEME}://{kind}");
    for (i, (k, v)) in params.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&url::encode_component(v));
    }
    out
}

/// The decoded parameters of a link of one kind.
struct Parsed {
    params: Vec<(String, String)>,
}

impl Parsed {
    fn new(text: &str, kind: &'static str) -> Result<Parsed, LinkError> {
        let text = text.trim();
        let rest = text
            .split_once("://")
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(SCHEME))
            .map(|(_, rest)| rest)
            .ok_or_else(|| LinkError::WrongScheme { found: text.to_owned() })?;
        let (found, query) = rest.split_once('?').unwrap_or((rest, ""));
        let found = found.trim_end_matches('/');
        if !found.eq_ignore_ascii_case(kind) {
            return Err(LinkError::WrongKind { expected: kind, found: found.to_owned() });
        }
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        let mut params: Vec<(String, String)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = |parameter: String| {
                move |e: url::DecodeError| LinkError::BadEncoding { parameter, reason: e.to_string() }
            };
            let key = url::decode_form_value(k).map_err(bad(k.to_owned()))?;
            let value = url::decode_form_value(v).map_err(bad(key.clone()))?;
            if params.iter().any(|(n, _)| *n == key) {
                return Err(LinkError::Repeated { parameter: key });
            }
            params.push((key, value));
        }
        Ok(Parsed { params })
    }

    fn optional(&mut self, name: &str) -> Option<String> {
        let i = self.params.iter().position(|(k, _)| k == name)?;
        let (_, v) = self.params.swap_remove(i);
        (!v.trim().is_empty()).then_some(v)
    }

    fn required(&mut self, name: &'static str) -> Result<String, LinkError> {
        self.optional(name).ok_or(LinkError::Missing { parameter: name })
    }

    fn server(&mut self) -> Result<String, LinkError> {
        let s = self.required("server")?;
        let lower = s.to_ascii_lowercase();
        let host = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://"));
        match host {
            Some(h) if !h.is_empty() && !h.starts_with('/') => Ok(s.trim_end_matches('/').to_owned()),
            _ => Err(LinkError::BadServer { server: s }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn enrolment(user: Option<&str>) -> EnrolmentLink {
        EnrolmentLink { server: "http://10.0.0.5:8080".into(), code: "Ab3-x_Yz9".into(), user: user.map(str::to_owned) }
    }

    #[test]
    fn enrolment_round_trips_with_a_chinese_username() {
        let link = enrolment(Some("张三"));
        let uri = link.to_uri();
        assert_eq!(uri, "shikong://enrol?server=http%3A%2F%2F10.0.0.5%3A8080&code=Ab3-x_Yz9&user=%E5%BC%A0%E4%B8%89");
        assert!(uri.is_ascii(), "QR alphanumeric-friendly: {uri}");
        assert_eq!(EnrolmentLink::parse(&uri).unwrap(), link);
        let no_user = enrolment(None);
        assert_eq!(EnrolmentLink::parse(&no_user.to_uri()).unwrap(), no_user);
    }

    #[test]
    fn reserved_characters_round_trip() {
        let link = EnrolmentLink {
            server: "https://gis.example.cn/shikong?a=1&b=2".into(),
            code: "a+b/c=d%e f".into(),
            user: Some("王 五&co=#".into()),
        };
        assert_eq!(EnrolmentLink::parse(&link.to_uri()).unwrap(), link);
    }

    #[test]
    fn lenient_where_it_is_harmless() {
        // Case-insensitive scheme and kind, parameters in any order, unknown ones ignored,
        // `+` as a space, lowercase hex, surrounding whitespace and a fragment.
        let l = EnrolmentLink::parse(
            "  SHIKONG://Enrol/?user=%e5%bc%a0+%E4%B8%89&v=2&code=XYZ&server=https%3A%2F%2Fgis.example.cn%2F#x\n",
        )
        .unwrap();
        assert_eq!(l.server, "https://gis.example.cn");
        assert_eq!(l.code, "XYZ");
        assert_eq!(l.user.as_deref(), Some("张 三"));
        let empty_user = EnrolmentLink::parse("shikong://enrol?server=http%3A%2F%2Fh&code=c&user=").unwrap();
        assert_eq!(empty_user.user, None);
    }

    #[test]
    fn clear_errors() {
        let e = EnrolmentLink::parse("https://weixin.qq.com/x").unwrap_err();
        assert!(matches!(e, LinkError::WrongScheme { .. }), "{e:?}");
        assert!(e.to_string().contains("not a shikong link"), "{e}");
        let e = EnrolmentLink::parse("shikong://feature?server=http%3A%2F%2Fh&collection=a&id=1").unwrap_err();
        assert_eq!(e, LinkError::WrongKind { expected: "enrol", found: "feature".into() });
        let e = EnrolmentLink::parse("shikong://enrol?server=http%3A%2F%2Fh&user=x").unwrap_err();
        assert_eq!(e, LinkError::Missing { parameter: "code" });
        assert_eq!(e.to_string(), "the link has no `code`");
        let e = EnrolmentLink::parse("shikong://enrol?server=http%3A%2F%2Fh&code=").unwrap_err();
        assert_eq!(e, LinkError::Missing { parameter: "code" });
        let e = EnrolmentLink::parse("shikong://enrol?code=abc").unwrap_err();
        assert_eq!(e, LinkError::Missing { parameter: "server" });
        for bad in ["%E5%BC", "%zz", "abc%4", "%C0%AF"] {
            let e =
                EnrolmentLink::parse(&format!("shikong://enrol?server=http%3A%2F%2Fh&code=c&user={bad}")).unwrap_err();
            assert!(matches!(&e, LinkError::BadEncoding { parameter, .. } if parameter == "user"), "{bad}: {e:?}");
            assert!(e.to_string().starts_with("parameter `user` is not valid percent-encoded UTF-8"), "{e}");
        }
        let e = EnrolmentLink::parse("shikong://enrol?server=http%3A%2F%2Fh&code=a&code=b").unwrap_err();
        assert_eq!(e, LinkError::Repeated { parameter: "code".into() });
        for server in ["ftp%3A%2F%2Fh", "http%3A%2F%2F", "10.0.0.5%3A8080"] {
            let e = EnrolmentLink::parse(&format!("shikong://enrol?server={server}&code=c")).unwrap_err();
            assert!(matches!(e, LinkError::BadServer { .. }), "{server}: {e:?}");
        }
        // Errors quote at most 60 characters of a long scanned text.
        let e = EnrolmentLink::parse(&"x".repeat(5000)).unwrap_err();
        assert!(e.to_string().len() < 150, "{e}");
    }

    #[test]
    fn feature_links_round_trip() {
        let link = FeatureLink {
            server: "http://192.168.1.20:8080".into(),
            collection: "manhole".into(),
            id: "0191d3c2-7a7e-7cc0-9d59-3b1f7a0c8e11".into(),
        };
        let uri = link.to_uri();
        assert_eq!(
            uri,
            "shikong://feature?server=http%3A%2F%2F192.168.1.20%3A8080&collection=manhole&id=0191d3c2-7a7e-7cc0-9d59-3b1f7a0c8e11"
        );
        assert_eq!(FeatureLink::parse(&uri).unwrap(), link);
        // An entity code with Chinese text.
        let by_code =
            FeatureLink { id: "420111-MP-珞喻路-0008".into(), collection: "address_point".into(), ..link.clone() };
        assert_eq!(FeatureLink::parse(&by_code.to_uri()).unwrap(), by_code);
        let e = FeatureLink::parse("shikong://feature?server=http%3A%2F%2Fh&id=1").unwrap_err();
        assert_eq!(e, LinkError::Missing { parameter: "collection" });
        let e = FeatureLink::parse(&enrolment(None).to_uri()).unwrap_err();
        assert_eq!(e, LinkError::WrongKind { expected: "feature", found: "enrol".into() });
    }
}
