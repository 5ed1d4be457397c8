//! Error answers: RFC 9457 `application/problem+json`, written by the server's one error mapper
//! for every route. Clients branch on `status` and, for sync routes, on [`SyncError::code`]
//! (never on `detail`, which is for people).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::SyncError;

/// An error answer.
// No deny_unknown_fields: serde cannot combine it with the flattened extension members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// `https://shikong.invalid/problems/{kind}`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    pub status: u16,
    /// What is wrong, for people.
    pub detail: String,
    /// On sync routes: the stable code clients branch on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncError>,
    /// On a chunk upload that does not start where the server's part ends: the bytes it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<u64>,
    /// Other extension members naming what is wrong (`parameter`, `field`, `feature` …).
    #[serde(flatten)]
    pub extra: Map<String, Json>,
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::SyncErrorCode;
    use crate::api::golden;

    #[test]
    fn problems() {
        let mut extra = Map::new();
        extra.insert("parameter".into(), Json::String("limit".into()));
        golden(
            Problem {
                kind: "https://shikong.invalid/problems/invalid-parameter".into(),
                title: "Bad Request".into(),
                status: 400,
                detail: "parameter `limit`: `0` is not an integer between 1 and 100".into(),
                sync: None,
                received: None,
                extra,
            },
            r#"{"type":"https://shikong.invalid/problems/invalid-parameter","title":"Bad Request","status":400,
                "detail":"parameter `limit`: `0` is not an integer between 1 and 100","parameter":"limit"}"#,
        );
        golden(
            Problem {
                kind: "https://shikong.invalid/problems/sync".into(),
                title: "Not Found".into(),
                status: 404,
                detail: "unknown replica".into(),
                sync: Some(SyncError { code: SyncErrorCode::UnknownReplica, message: "unknown replica".into() }),
                received: None,
                extra: Map::new(),
            },
            r#"{"type":"https://shikong.invalid/problems/sync","title":"Not Found","status":404,"detail":"unknown replica",
                "sync":{"code":"unknown-replica","message":"unknown replica"}}"#,
        );
        golden(
            Problem {
                kind: "https://shikong.invalid/problems/conflict".into(),
                title: "Conflict".into(),
                status: 409,
                detail: "the server holds 262144 bytes of this attachment; resume from there".into(),
                sync: None,
                received: Some(262_144),
                extra: Map::new(),
            },
            r#"{"type":"https://shikong.invalid/problems/conflict","title":"Conflict","status":409,
                "detail":"the server holds 262144 bytes of this attachment; resume from there","received":262144}"#,
        );
    }
}
