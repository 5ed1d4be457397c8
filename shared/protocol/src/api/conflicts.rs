//! Conflict review for office staff (issue 16): the open conflicts of every device's edits, and
//! their resolution on the server.
//!
//! - `GET /sync/conflicts?layer=&author=&since=&limit=&after=` answers a [`ConflictPage`]: the open
//!   conflicts of all entities, in `(layer, entity)` order, [`OpenConflict`] each (the sync
//!   [`crate::Conflict`] plus the base value when known and when the entity's conflicts opened).
//!   A page never splits an entity's conflicts; `next` is the `after` of the following page.
//!   Identical concurrent values are never conflicts.
//!   Each conflict carries its `rev`, which changes with any of its sides.
//! - `POST /sync/conflicts/resolve` takes a [`ResolveRequest`] and answers [`ResolveResponse`]:
//!   the resolutions become one CRDT change per entity, by the resolving user, written as a new
//!   version in one transaction; devices get it at their next pull like any edit. Idempotent by
//!   `action_id`: the same request sent again changes nothing and answers `replayed: true`. A
//!   resolution carrying the listed `rev` as `seen` is refused (409 `conflict-changed`, nothing
//!   written) when the conflict changed since.
//!
//! Times are RFC 3339 (answers in Beijing time, `+08:00`).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use uuid::Uuid;

/// One open conflict as the office lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenConflict {
    #[serde(flatten)]
    pub conflict: crate::Conflict,
    /// The value both sides started from, when the document says so unambiguously (`null` value
    /// when the attribute was empty); absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Json>,
    /// When the server first recorded the entity's open conflicts.
    pub opened: String,
    /// This conflict's revision (opaque): it changes whenever one of its sides does — a new
    /// side, another value, the conflict settled. A resolution sends it back as `seen`.
    #[serde(default)]
    pub rev: String,
}

/// `GET /sync/conflicts` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictPage {
    pub conflicts: Vec<OpenConflict>,
    /// The `after` of the next page (`layer/entity`); absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Which value settles a conflict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ChoiceRepr", into = "ChoiceRepr")]
pub enum Choice {
    /// `"winner"`: the value shown now (the others stop competing).
    Winner,
    /// `"other:N"`: the conflict's `others[N]` (from 0).
    Other(usize),
    /// `{"value": …}`: a value of the office's own, in the field's JSON form (GeoJSON for
    /// `geometry`, RFC 3339 for `valid_from`/`valid_to`, `true`/`false` for `deleted`).
    Value(Json),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ChoiceRepr {
    Name(String),
    Value { value: Json },
}

impl TryFrom<ChoiceRepr> for Choice {
    type Error = String;
    fn try_from(r: ChoiceRepr) -> Result<Self, String> {
        match r {
            ChoiceRepr::Value { value } => Ok(Choice::Value(value)),
            ChoiceRepr::Name(s) if s == "winner" => Ok(Choice::Winner),
            ChoiceRepr::Name(s) => match s.strip_prefix("other:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(Choice::Other(n)),
                _ => Err(format!("`{s}` is not a choice: \"winner\", \"other:N\" or {{\"value\": …}}")),
            },
        }
    }
}

impl From<Choice> for ChoiceRepr {
    fn from(c: Choice) -> Self {
        match c {
            Choice::Winner => ChoiceRepr::Name("winner".into()),
            Choice::Other(n) => ChoiceRepr::Name(format!("other:{n}")),
            Choice::Value(value) => ChoiceRepr::Value { value },
        }
    }
}

/// One resolution: a field of an entity, or without `field` every open conflict of the entity
/// (the whole feature) with the same choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    pub layer: String,
    pub entity: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub choose: Choice,
    /// The `rev` of the field's conflict as the client listed it (with `field` only): the
    /// resolution applies only while the conflict is still that one — a side added or changed
    /// since, or the conflict settled, refuses the request with 409 `conflict-changed`, so a
    /// choice by position (`other:N`) never lands on a value the user did not see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<String>,
}

/// `POST /sync/conflicts/resolve` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// Chosen by the client once per resolution; a retry sends the same one.
    pub action_id: Uuid,
    pub resolutions: Vec<Resolution>,
}

/// An entity a resolution wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedEntity {
    pub layer: String,
    pub entity: Uuid,
    /// The entity's store version after the resolution.
    pub version: i64,
}

/// `POST /sync/conflicts/resolve` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolveResponse {
    pub action_id: Uuid,
    pub entities: Vec<ResolvedEntity>,
    /// The request had been applied before (same `action_id`): nothing was written now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::golden;

    #[test]
    fn resolve_request_json() {
        let id = Uuid::from_u128(7);
        let e = Uuid::from_u128(9);
        golden(
            ResolveRequest {
                action_id: id,
                resolutions: vec![
                    Resolution {
                        layer: "manhole".into(),
                        entity: e,
                        field: Some("depth".into()),
                        choose: Choice::Winner,
                        seen: Some("3f2a9c0d1b7e4a55".into()),
                    },
                    Resolution {
                        layer: "manhole".into(),
                        entity: e,
                        field: None,
                        choose: Choice::Other(1),
                        seen: None,
                    },
                    Resolution {
                        layer: "manhole".into(),
                        entity: e,
                        field: Some("material".into()),
                        choose: Choice::Value(Json::String("铸铁".into())),
                        seen: None,
                    },
                ],
            },
            r#"{"action_id":"00000000-0000-0000-0000-000000000007","resolutions":[
              {"layer":"manhole","entity":"00000000-0000-0000-0000-000000000009","field":"depth","choose":"winner","seen":"3f2a9c0d1b7e4a55"},
              {"layer":"manhole","entity":"00000000-0000-0000-0000-000000000009","choose":"other:1"},
              {"layer":"manhole","entity":"00000000-0000-0000-0000-000000000009","field":"material","choose":{"value":"铸铁"}}]}"#,
        );
        let bad = serde_json::from_str::<Choice>(r#""other:x""#);
        assert!(bad.is_err());
    }

    #[test]
    fn conflict_page_json() {
        let side = |v: Json, u: &str| crate::ConflictValue {
            value: v,
            user: Some(u.into()),
            device: None,
            time: Some("2026-12-06T10:00:00+08:00".into()),
        };
        golden(
            ConflictPage {
                conflicts: vec![OpenConflict {
                    conflict: crate::Conflict {
                        layer: "manhole".into(),
                        entity: Uuid::from_u128(9),
                        code: "HS-JG-0001".into(),
                        kind: crate::ConflictKind::Field,
                        field: "depth".into(),
                        winner: side(Json::from(2.5), "li"),
                        others: vec![side(Json::from(3.5), "wang")],
                    },
                    base: Some(Json::from(1.2)),
                    opened: "2026-12-06T10:00:01+08:00".into(),
                    rev: "3f2a9c0d1b7e4a55".into(),
                }],
                next: Some("manhole/00000000-0000-0000-0000-000000000009".into()),
            },
            r#"{"conflicts":[{"layer":"manhole","entity":"00000000-0000-0000-0000-000000000009","code":"HS-JG-0001",
              "kind":"field","field":"depth",
              "winner":{"value":2.5,"user":"li","device":null,"time":"2026-12-06T10:00:00+08:00"},
              "others":[{"value":3.5,"user":"wang","device":null,"time":"2026-12-06T10:00:00+08:00"}],
              "base":1.2,"opened":"2026-12-06T10:00:01+08:00","rev":"3f2a9c0d1b7e4a55"}],
              "next":"manhole/00000000-0000-0000-0000-000000000009"}"#,
        );
    }
}
