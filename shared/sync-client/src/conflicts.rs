//! Conflict review for office staff (issue 16): the open conflicts of every device's edits
//! (`GET /sync/conflicts` with its filters) and their resolution on the server
//! (`POST /sync/conflicts/resolve`). The desktop app reviews here; the mobile app resolves on its
//! replica instead (`shikong_replica::Replica::resolve`).
//!
//! A refused resolution keeps the member the server names (`resolutions[2].field`), so the app can
//! say which conflict was refused rather than only that the request was.

use shikong_protocol::api::conflicts::{ConflictPage, ResolveRequest, ResolveResponse};
use shikong_protocol::url::encode_component;

use crate::{SyncClient, SyncError};

const LIST: &str = "/sync/conflicts";
const RESOLVE: &str = "/sync/conflicts/resolve";

/// Filters of `GET /sync/conflicts` (all optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConflictQuery {
    /// Only this layer.
    #[serde(default)]
    pub layer: Option<String>,
    /// Only conflicts one of whose sides was written by this user or device.
    #[serde(default)]
    pub author: Option<String>,
    /// Only entities whose conflicts opened at or after this instant (RFC 3339; an offset-less
    /// instant is Beijing time).
    #[serde(default)]
    pub since: Option<String>,
    /// The page after this cursor (a page's `next`).
    #[serde(default)]
    pub after: Option<String>,
    /// Conflicts per page (the server's default when absent).
    #[serde(default)]
    pub limit: Option<u32>,
}

impl ConflictQuery {
    fn to_query(&self) -> String {
        let mut parts = Vec::new();
        let text = [("layer", &self.layer), ("author", &self.author), ("since", &self.since), ("after", &self.after)];
        for (name, v) in text {
            if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                parts.push(format!("{name}={}", encode_component(v)));
            }
        }
        if let Some(l) = self.limit {
            parts.push(format!("limit={l}"));
        }
        if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
    }
}

/// Why a resolution request failed.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The server refused one resolution of the request, named by `member`
    /// (`resolutions[1].choose`); nothing was written. Status 409 on `resolutions[N].seen`: that
    /// conflict changed since it was listed (list it again).
    #[error("the server refused `{member}` ({status}): {message}")]
    Member { status: u16, member: String, message: String },
    #[error(transparent)]
    Sync(#[from] SyncError),
}

impl SyncClient {
    /// `GET /sync/conflicts` with `query` (office staff and administrators).
    pub fn open_conflicts(&self, query: &ConflictQuery) -> crate::Result<ConflictPage> {
        let route = format!("{LIST}{}", query.to_query());
        let r = Self::check(self.send(&|| self.http.get(self.url(&route)))?)?;
        Self::json(r).map_err(|e| SyncError::Protocol(format!("{LIST}: {e}")))
    }

    /// `POST /sync/conflicts/resolve`. Safe to retry with the same request (the server
    /// recognises its `action_id` and answers `replayed`).
    pub fn resolve_conflicts(&self, req: &ResolveRequest) -> Result<ResolveResponse, ResolveError> {
        let r = self.post_json(RESOLVE, req)?;
        if r.status().is_success() {
            return Ok(Self::json(r).map_err(|e| SyncError::Protocol(format!("{RESOLVE}: {e}")))?);
        }
        let status = r.status().as_u16();
        let bytes = r.bytes().map_err(|e| self.transport_error(&e))?;
        let problem: Option<shikong_protocol::api::Problem> = serde_json::from_slice(&bytes).ok();
        Err(match problem {
            Some(p) => match p.extra.get("member").and_then(serde_json::Value::as_str) {
                Some(member) => ResolveError::Member { status, member: member.to_owned(), message: p.detail },
                None => SyncError::Server { status, code: p.sync.map(|s| s.code), message: p.detail }.into(),
            },
            None => SyncError::Server { status, code: None, message: "no details".into() }.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded_and_blank_filters_left_out() {
        assert_eq!(ConflictQuery::default().to_query(), "");
        let q = ConflictQuery {
            layer: Some("manhole".into()),
            author: Some("li 的平板".into()),
            since: Some("2026-12-06T10:00:00+08:00".into()),
            after: Some(" ".into()),
            limit: Some(50),
        };
        assert_eq!(
            q.to_query(),
            "?layer=manhole&author=li%20%E7%9A%84%E5%B9%B3%E6%9D%BF&since=2026-12-06T10%3A00%3A00%2B08%3A00&limit=50"
        );
    }
}
