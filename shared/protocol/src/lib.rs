//! The sync wire format (see `docs/sync-protocol.md`).
//!
//! Architecture invariant: these types are the only ones serialized between devices and the
//! server; internal types (store, replica, CRDT) never are. Every message carries
//! [`PROTOCOL_VERSION`]; a peer refuses versions it does not know ([`SyncErrorCode::UnsupportedProtocol`]).
//! Clients branch on [`SyncErrorCode`], never on message text.

#![forbid(unsafe_code)]

pub mod api;
pub mod convert;
pub mod enrolment;
pub mod mqtt;
pub mod url;
pub mod verify;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest number of entities in one push batch.
pub const MAX_PUSH_ENTITIES: usize = 500;

/// Largest number of entities in one pull page.
pub const MAX_PULL_ENTITIES: usize = 2000;

/// Bytes carried as base64 text in JSON (automerge changes and documents).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64ct::Encoding;
        s.serialize_str(&base64ct::Base64::encode_string(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64ct::Encoding;
        let s = String::deserialize(d)?;
        base64ct::Base64::decode_vec(&s)
            .map(Bytes)
            .map_err(|e| serde::de::Error::custom(format!("invalid base64: {e}")))
    }
}

/// Why the server refused something (stable codes; the text is for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SyncErrorCode {
    UnsupportedProtocol,
    Unauthorized,
    Forbidden,
    UnknownLayer,
    UnknownReplica,
    Invalid,
    InvalidChange,
    MissingDependencies,
    AttachmentMissing,
    TooLarge,
    Internal,
}

/// Asks the server for a replica file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaRequest {
    pub protocol: u32,
    pub layers: Vec<String>,
    /// A polygon (WKT, CGCS2000 lon/lat) or `admin:CODE` naming a division with a boundary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<String>,
    /// A label for the device's list of replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `POST /sync/replicas/estimate` (same body as `POST /sync/replicas`): what a replica of that
/// request would hold and roughly how large its file would be, without cutting it. Response only;
/// unknown members are accepted so later servers may add some.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaEstimate {
    pub protocol: u32,
    pub layers: Vec<LayerEstimate>,
    /// Features in all layers (exact).
    pub features: u64,
    /// The file format's fixed part: GeoPackage tables, SRS definitions, layer tables (exact).
    pub overhead_bytes: u64,
    /// The offline gazetteer the replica would carry (exact; 0 without a gazetteer).
    pub gazetteer_bytes: u64,
    /// Estimated size of the whole file: overhead + layers + gazetteer.
    pub bytes: u64,
}

/// One layer of a [`ReplicaEstimate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerEstimate {
    pub layer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Features the caller may read in the area (exact).
    pub features: u64,
    /// Of these, the ones that travel with their edit document (edited since creation).
    pub documents: u64,
    /// Estimated bytes of the layer's rows, spatial index and documents.
    pub bytes: u64,
}

/// Local changes of one entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityChanges {
    pub layer: String,
    pub entity: Uuid,
    /// Automerge changes, in the order the device made them.
    pub changes: Vec<Bytes>,
}

/// `POST /sync/push`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRequest {
    pub protocol: u32,
    pub replica: Uuid,
    /// Idempotency key of this batch (resent unchanged after a failure).
    pub batch: Uuid,
    pub entities: Vec<EntityChanges>,
    /// The newest server mark this device holds (see [`cursor_mark`]): the server checks that it
    /// still has that transaction, and says [`PushResponse::diverged`] when it does not (it was
    /// restored from a backup older than what it acknowledged). Sent only to servers whose
    /// cursors carry marks (older servers refuse unknown members).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<String>,
}

/// What became of one entity's changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Merged and stored as this version.
    Accepted { version: i64 },
    /// Already applied (a resend), or the merge changed nothing: this is the current version.
    Unchanged { version: i64 },
    /// Refused; the device keeps the changes and shows the reason.
    Rejected { code: SyncErrorCode, reason: String },
}

// No deny_unknown_fields: serde cannot combine it with the flattened outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityResult {
    pub layer: String,
    pub entity: Uuid,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The merged document, so the device adopts exactly the server's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<Bytes>,
}

/// `POST /sync/push` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushResponse {
    pub protocol: u32,
    pub results: Vec<EntityResult>,
    /// Open conflicts on the pushed entities after the merge.
    pub conflicts: Vec<Conflict>,
    /// The server's mark after this push (only when the request carried `seen`, so older
    /// clients never see the member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<String>,
    /// The request's `seen` names a transaction this server no longer holds: it went back in
    /// time (restored from a backup). The device sends its own changes again and pulls from
    /// [`RESTART_CURSOR`]. Only when the request carried `seen`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub diverged: bool,
}

/// One side of a conflict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConflictValue {
    pub value: Json,
    pub user: Option<String>,
    pub device: Option<String>,
    /// Device time of the edit (RFC 3339).
    pub time: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictKind {
    /// The same field set concurrently.
    Field,
    /// Deleted on one side while edited on another (delete won; the edit is kept in history).
    DeletedWhileEdited,
}

/// An open conflict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conflict {
    pub layer: String,
    pub entity: Uuid,
    pub code: String,
    pub kind: ConflictKind,
    /// Field name, or `geometry`, `code`, `valid_from`, `valid_to`, `deleted`.
    pub field: String,
    pub winner: ConflictValue,
    pub others: Vec<ConflictValue>,
}

/// An entity's state as the server sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireFeature {
    pub code: String,
    /// GeoJSON geometry (CGCS2000 lon/lat) or null.
    pub geometry: Json,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    /// By field **id**.
    pub properties: Map<String, Json>,
}

/// One changed entity in a pull page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PulledEntity {
    pub layer: String,
    pub entity: Uuid,
    pub version: i64,
    /// The store transaction of this version.
    pub tx: i64,
    /// `None` for a deletion or an entity that left the replica's area.
    pub state: Option<WireFeature>,
    /// The entity's document when it has an explicit one (absent: the deterministic base of `state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<Bytes>,
    /// True when the entity left the area (remove it locally; it still exists).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub left_area: bool,
}

/// A layer whose definition changed (the `shikong layer show` JSON document).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerUpdate {
    pub layer: String,
    pub tx: i64,
    pub definition: api::LayerDoc,
}

/// `GET /sync/pull` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullPage {
    pub protocol: u32,
    /// Store the page, then continue from this cursor. Opaque to clients: it names a position
    /// inside the store's transaction order, so one huge transaction (an import of a million
    /// features) still arrives in bounded pages.
    pub cursor: String,
    /// More pages follow.
    pub more: bool,
    pub layers: Vec<LayerUpdate>,
    pub entities: Vec<PulledEntity>,
    /// Layers of the replica the caller may no longer read (a demoted user, a removed rule): the
    /// page holds nothing of them and their position in the cursor stays; they come back once
    /// the right does. Absent when empty, so pages of servers before it still decode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<RevokedLayer>,
    /// The pull's `seen` mark names a transaction this server no longer holds (it was restored
    /// from a backup): this page starts over from the beginning (its cursor restarts), and the
    /// device sends its own changes again. Only when the request carried `seen`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub diverged: bool,
}

/// A pull cursor that starts over from the beginning and sends every entity (nothing skipped as
/// the device's own push): where a device pulls from after the server went back in time.
pub const RESTART_CURSOR: &str = "0|!";

/// The server mark a pull cursor carries, if any. Cursors are opaque to clients except for this
/// segment (`|~MARK`): a mark names the newest server transaction the device has heard of, so
/// the server can tell when it no longer holds it (restored from an older backup). A cursor with
/// a mark also tells the device that the server understands `seen` (push body, pull parameter).
pub fn cursor_mark(cursor: &str) -> Option<&str> {
    cursor.split('|').skip(1).find_map(|p| p.strip_prefix('~')).filter(|m| !m.is_empty())
}

/// Whether a pull cursor is still inside a restart (see [`RESTART_CURSOR`]): the device adopts
/// the server's word for every entity of such a page.
pub fn cursor_restarting(cursor: &str) -> bool {
    cursor.split('|').skip(1).any(|p| p == "!")
}

/// A layer a pull no longer sends, and why (`Forbidden`: the caller's read right is gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedLayer {
    pub layer: String,
    pub code: SyncErrorCode,
    /// For people ("role citizen may not read layer manhole (it is not public)").
    pub reason: String,
}

/// The body of an error response of a sync endpoint (inside problem+json as `sync`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncError {
    pub code: SyncErrorCode,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden messages every client must keep decoding (format compatibility).
    #[test]
    fn golden_v1_messages_decode() {
        let push = r#"{"protocol":1,"replica":"0192f3c4-0000-7000-8000-000000000001","batch":"0192f3c4-0000-7000-8000-000000000002",
            "entities":[{"layer":"manhole","entity":"0192f3c4-0000-7000-8000-000000000003","changes":["AAEC"]}]}"#;
        let p: PushRequest = serde_json::from_str(push).unwrap();
        assert_eq!(p.entities[0].changes[0], Bytes(vec![0, 1, 2]));
        let resp = r#"{"protocol":1,"results":[
            {"layer":"manhole","entity":"0192f3c4-0000-7000-8000-000000000003","outcome":"accepted","version":4},
            {"layer":"manhole","entity":"0192f3c4-0000-7000-8000-000000000004","outcome":"rejected","code":"forbidden","reason":"role citizen may not edit layer manhole"}],
            "conflicts":[]}"#;
        let r: PushResponse = serde_json::from_str(resp).unwrap();
        assert_eq!(r.results[0].outcome, Outcome::Accepted { version: 4 });
        assert!(matches!(r.results[1].outcome, Outcome::Rejected { code: SyncErrorCode::Forbidden, .. }));
        assert_eq!(serde_json::to_value(&r).unwrap(), serde_json::from_str::<Json>(resp).unwrap());
    }

    #[test]
    fn pull_pages_name_revoked_layers_only_when_there_are_some() {
        let old = r#"{"protocol":1,"cursor":"12","more":false,"layers":[],"entities":[]}"#;
        let page: PullPage = serde_json::from_str(old).unwrap();
        assert!(page.revoked.is_empty());
        assert_eq!(serde_json::to_value(&page).unwrap(), serde_json::from_str::<Json>(old).unwrap());
        let new = r#"{"protocol":1,"cursor":"12","more":false,"layers":[],"entities":[],
            "revoked":[{"layer":"manhole","code":"forbidden","reason":"role citizen may not read layer manhole"}]}"#;
        let page: PullPage = serde_json::from_str(new).unwrap();
        assert_eq!(page.revoked[0].code, SyncErrorCode::Forbidden);
        assert_eq!(serde_json::to_value(&page).unwrap(), serde_json::from_str::<Json>(new).unwrap());
    }

    #[test]
    fn marks_are_sent_only_to_peers_that_know_them() {
        // An older client's push answer and pull page stay free of the new members.
        let resp = PushResponse { protocol: 1, results: vec![], conflicts: vec![], mark: None, diverged: false };
        assert_eq!(serde_json::to_string(&resp).unwrap(), r#"{"protocol":1,"results":[],"conflicts":[]}"#);
        let old = r#"{"protocol":1,"replica":"0192f3c4-0000-7000-8000-000000000001","batch":"0192f3c4-0000-7000-8000-000000000002","entities":[]}"#;
        let p: PushRequest = serde_json::from_str(old).unwrap();
        assert_eq!(p.seen, None);
        assert_eq!(serde_json::to_value(&p).unwrap(), serde_json::from_str::<Json>(old).unwrap());
        assert_eq!(cursor_mark("12|asset=12.3|~12.1700000000000000"), Some("12.1700000000000000"));
        assert_eq!(cursor_mark("12|asset=12.3"), None);
        assert_eq!(cursor_mark("12|~"), None);
        assert!(cursor_restarting(RESTART_CURSOR) && !cursor_restarting("12|~12.5"));
    }

    #[test]
    fn unknown_members_and_bad_base64_are_refused() {
        assert!(serde_json::from_str::<ReplicaRequest>(r#"{"protocol":1,"layers":[],"colour":"red"}"#).is_err());
        assert!(serde_json::from_str::<Bytes>(r#""!!!""#).is_err());
    }
}
