//! What office staff ask the server from the desktop app (issue 16): the case list and one case
//! (`GET /cases`, `GET /cases/{id}`; acting on a case is [`SyncClient::case_action`]), and a raw
//! `GET` for the map (styles, TileJSON, tiles), so the desktop's map reads the server with the
//! signed-in user's token and the client's TLS settings without the web view ever holding them.

use shikong_protocol::api::cases::{CaseDoc, CaseList};
use shikong_protocol::url::encode_component;

use crate::{Result, SyncClient, SyncError};

const CASES: &str = "/cases";

/// Filters of `GET /cases` (all optional; the server's default limit applies when `limit` is
/// `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseQuery {
    /// A state (`reported`, `dispatched` …).
    pub status: Option<String>,
    /// Only overdue (`Some(true)`) or only on time (`Some(false)`).
    pub overdue: Option<bool>,
    /// Held by (`user:NAME`, `department:NAME`): someone's current tasks.
    pub assignee: Option<String>,
    pub limit: Option<u32>,
}

impl CaseQuery {
    fn to_query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.status {
            parts.push(format!("status={}", encode_component(s)));
        }
        if let Some(o) = self.overdue {
            parts.push(format!("overdue={o}"));
        }
        if let Some(a) = &self.assignee {
            parts.push(format!("assignee={}", encode_component(a)));
        }
        if let Some(l) = self.limit {
            parts.push(format!("limit={l}"));
        }
        if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
    }
}

/// A successful answer to a raw `GET`, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl SyncClient {
    /// The server this client talks to (`https://host:port`, no trailing slash).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /cases` with `query` (office, supervisor and admin roles).
    pub fn cases(&self, query: &CaseQuery) -> Result<CaseList> {
        let r = Self::check(self.send(&|| self.http.get(self.url(&format!("{CASES}{}", query.to_query()))))?)?;
        Self::json(r).map_err(|e| SyncError::Protocol(format!("{CASES}: {e}")))
    }

    /// `GET /cases/{case}` (its id or case number), with its transitions.
    pub fn case(&self, case: &str) -> Result<CaseDoc> {
        let route = format!("{CASES}/{}", encode_component(case));
        let r = Self::check(self.send(&|| self.http.get(self.url(&route)))?)?;
        Self::json(r).map_err(|e| SyncError::Protocol(format!("{route}: {e}")))
    }

    /// `GET path_and_query` (which must start with `/`) as the signed-in user; any answer the
    /// server gives (a 404 for a tile outside the data too) comes back as bytes with its status.
    pub fn get_raw(&self, path_and_query: &str) -> Result<RawAnswer> {
        if !path_and_query.starts_with('/') {
            return Err(SyncError::Protocol(format!("`{path_and_query}` is not a path on the server")));
        }
        let r = self.send(&|| self.http.get(self.url(path_and_query)))?;
        let status = r.status().as_u16();
        let content_type =
            r.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = r.bytes().map_err(|e| self.transport_error(&e))?.to_vec();
        Ok(RawAnswer { status, content_type, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded() {
        assert_eq!(CaseQuery::default().to_query(), "");
        let q = CaseQuery {
            status: Some("dis patched".into()),
            overdue: Some(true),
            assignee: Some("department:排水队".into()),
            limit: Some(50),
        };
        assert_eq!(
            q.to_query(),
            "?status=dis%20patched&overdue=true&assignee=department%3A%E6%8E%92%E6%B0%B4%E9%98%9F&limit=50"
        );
    }
}
