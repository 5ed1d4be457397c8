//! Conflict review for office staff (issue 16, the desktop app): the server's open conflicts of
//! every device (`GET /sync/conflicts`) grouped by feature for the review screen, and the
//! office's decisions turned into the server's resolutions (`POST /sync/conflicts/resolve`).
//! The mobile app resolves on its own replica instead ([`crate::conflicts`]).
//!
//! What the screen shows per contested field: the base (what the sides started from, when the
//! server knows it), the merged value (the value the feature has now: the server's `winner`), and
//! each distinct value with who wrote it, on which device and when. Identical concurrent values
//! are no conflict on the server; a value written by several sides is shown once, with all its
//! authors.
//!
//! Decisions ([`Intent`]) are pure to turn into resolutions ([`resolutions`]):
//! - one field: take a side, or a value typed by the office;
//! - one feature: one party's side (a user on a device) for every field that party wrote — the
//!   fields it did not write stay open, since it expressed no value there — or keep the merged
//!   values of all fields;
//! - bulk, over the selected fields of any features, by one [`BulkRule`]: keep merged, latest
//!   wins (the side with the latest edit time), or back to the base.
//!
//! A refused request names the resolution at fault; the error says which feature and field.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use shikong_protocol::ConflictKind;
use shikong_protocol::api::conflicts::{
    Choice, ConflictPage, OpenConflict, Resolution, ResolveRequest, ResolveResponse,
};
pub use shikong_sync_client::conflicts::ConflictQuery;
use uuid::Uuid;

use crate::{AppError, Device};

/// Who wrote a value, and when (device time, RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub user: Option<String>,
    pub device: Option<String>,
    pub time: Option<String>,
}

impl Author {
    /// The party this author belongs to: `user@device` (either may be missing).
    pub fn party(&self) -> String {
        party_key(self.user.as_deref(), self.device.as_deref())
    }
}

fn party_key(user: Option<&str>, device: Option<&str>) -> String {
    format!("{}@{}", user.unwrap_or(""), device.unwrap_or(""))
}

/// One distinct value of a contested field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// What takes this value (`"winner"` or `"other:N"`, in the server's words).
    pub choice: Choice,
    pub value: Json,
    /// The value as the screen shows it.
    pub text: String,
    /// Who wrote it (several when sides agree), in the server's order.
    pub authors: Vec<Author>,
    /// This is the merged value (the feature's value now).
    pub merged: bool,
}

/// One contested field of a feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldConflict {
    /// `layer/entity/field`: what the screen selects.
    pub key: String,
    /// A field name, or `geometry`, `code`, `valid_from`, `valid_to`, `deleted`.
    pub field: String,
    pub kind: ConflictKind,
    /// The value both sides started from, when known (`Some(null)`: it was empty).
    pub base: Option<Json>,
    pub base_text: Option<String>,
    /// The merged value: what the feature holds now.
    pub merged: Json,
    pub merged_text: String,
    /// The distinct values, the merged one first.
    pub sides: Vec<Side>,
    /// The conflict's revision as listed, sent back with its resolutions (`seen`): the server
    /// applies them only while the conflict is still the one shown.
    #[serde(default)]
    pub rev: String,
}

/// A user on a device who wrote one side or more of a feature's conflicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// `user@device` ([`Author::party`]).
    pub key: String,
    pub user: Option<String>,
    pub device: Option<String>,
}

/// A feature with open conflicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureConflicts {
    pub layer: String,
    pub entity: Uuid,
    pub code: String,
    /// When the server first recorded the feature's open conflicts.
    pub opened: String,
    pub fields: Vec<FieldConflict>,
    /// Who wrote its sides, in order of appearance.
    pub parties: Vec<Party>,
}

/// A page of the review: open conflicts grouped by feature, in the server's `(layer, entity)`
/// order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConflictReview {
    pub features: Vec<FeatureConflicts>,
    /// Contested fields on this page.
    pub conflicts: usize,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
}

/// How a bulk resolution settles each selected field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkRule {
    /// Keep the merged value (the one shown now).
    KeepMerged,
    /// The value whose edit is the latest by its device time; the merged value when no side's
    /// time is later (or none is known).
    LatestWins,
    /// Back to the value the sides started from; refused for a field whose base is unknown.
    KeepBase,
}

/// What the office decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Intent {
    /// One field (`key` of a [`FieldConflict`]): a side's `choice`, or else the `text` typed (empty:
    /// no value; geometry as GeoJSON; `deleted` as true/false).
    Field {
        key: String,
        #[serde(default)]
        choice: Option<Choice>,
        #[serde(default)]
        text: Option<String>,
    },
    /// Every field of a feature: the side of `party` (a [`Party::key`]) where it wrote one, or,
    /// without a party, the merged values.
    Feature {
        layer: String,
        entity: Uuid,
        #[serde(default)]
        party: Option<String>,
    },
    /// The fields named by `keys`, by one rule.
    Bulk { keys: Vec<String>, rule: BulkRule },
}

/// The text a value is shown as (zh-CN): empty as （空）, points as coordinates, other
/// geometries by kind and size, the deletion flag in words.
pub fn value_text(field: &str, v: &Json) -> String {
    match v {
        Json::Null => "（空）".to_owned(),
        Json::Bool(true) if field == "deleted" => "已删除".to_owned(),
        Json::Bool(false) if field == "deleted" => "保留（未删除）".to_owned(),
        Json::Bool(b) => if *b { "是" } else { "否" }.to_owned(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => s.clone(),
        Json::Array(items) => format!("{} 个附件", items.len()),
        Json::Object(o) => match (o.get("type").and_then(Json::as_str), o.get("coordinates")) {
            (Some("Point"), Some(Json::Array(c))) => {
                let n: Vec<String> = c.iter().filter_map(Json::as_f64).map(|x| format!("{x:.6}")).collect();
                format!("点 ({})", n.join(", "))
            }
            (Some(kind), Some(c)) => {
                let label = match kind {
                    "LineString" => "线",
                    "Polygon" => "面",
                    "MultiPoint" => "多点",
                    "MultiLineString" => "多线",
                    "MultiPolygon" => "多面",
                    other => other,
                };
                format!("{label}（{} 个顶点）", vertices(c))
            }
            _ => v.to_string(),
        },
    }
}

fn vertices(c: &Json) -> usize {
    match c {
        Json::Array(items) if items.first().is_some_and(Json::is_number) => 1,
        Json::Array(items) => items.iter().map(vertices).sum(),
        _ => 0,
    }
}

fn author(s: &shikong_protocol::ConflictValue) -> Author {
    Author { user: s.user.clone(), device: s.device.clone(), time: s.time.clone() }
}

fn field_conflict(c: &OpenConflict) -> FieldConflict {
    let w = &c.conflict;
    let mut sides = vec![Side {
        choice: Choice::Winner,
        value: w.winner.value.clone(),
        text: value_text(&w.field, &w.winner.value),
        authors: vec![author(&w.winner)],
        merged: true,
    }];
    for (n, o) in w.others.iter().enumerate() {
        match sides.iter_mut().find(|s| s.value == o.value) {
            Some(s) => s.authors.push(author(o)),
            None => sides.push(Side {
                choice: Choice::Other(n),
                value: o.value.clone(),
                text: value_text(&w.field, &o.value),
                authors: vec![author(o)],
                merged: false,
            }),
        }
    }
    // A deletion that raced edits started from a feature that existed.
    let base = match w.kind {
        ConflictKind::DeletedWhileEdited => Some(c.base.clone().unwrap_or(Json::Bool(false))),
        ConflictKind::Field => c.base.clone(),
    };
    FieldConflict {
        key: format!("{}/{}/{}", w.layer, w.entity, w.field),
        field: w.field.clone(),
        kind: w.kind,
        base_text: base.as_ref().map(|b| value_text(&w.field, b)),
        base,
        merged: w.winner.value.clone(),
        merged_text: value_text(&w.field, &w.winner.value),
        sides,
        rev: c.rev.clone(),
    }
}

/// Groups a page of open conflicts by feature (the server never splits a feature across pages).
pub fn review(page: ConflictPage) -> ConflictReview {
    let conflicts = page.conflicts.len();
    let mut features: Vec<FeatureConflicts> = Vec::new();
    for c in &page.conflicts {
        let f = match features.iter_mut().find(|f| f.layer == c.conflict.layer && f.entity == c.conflict.entity) {
            Some(f) => f,
            None => {
                features.push(FeatureConflicts {
                    layer: c.conflict.layer.clone(),
                    entity: c.conflict.entity,
                    code: c.conflict.code.clone(),
                    opened: c.opened.clone(),
                    fields: Vec::new(),
                    parties: Vec::new(),
                });
                features.last_mut().unwrap_or_else(|| unreachable!("just pushed"))
            }
        };
        let field = field_conflict(c);
        for a in field.sides.iter().flat_map(|s| &s.authors) {
            let key = a.party();
            if !f.parties.iter().any(|p| p.key == key) {
                f.parties.push(Party { key, user: a.user.clone(), device: a.device.clone() });
            }
        }
        f.fields.push(field);
    }
    ConflictReview { features, conflicts, next: page.next }
}

/// A resolution of one field as shown: it carries the conflict's listed revision, so the server
/// refuses it (409) if a side came or went since.
fn resolution(f: &FeatureConflicts, c: &FieldConflict, choose: Choice) -> Resolution {
    Resolution {
        layer: f.layer.clone(),
        entity: f.entity,
        field: Some(c.field.clone()),
        choose,
        seen: (!c.rev.is_empty()).then(|| c.rev.clone()),
    }
}

fn bad(f: &FeatureConflicts, field: &str, reason: impl Into<String>) -> AppError {
    AppError::BadConflict { layer: format!("{} {}", f.layer, f.code), field: field.to_owned(), reason: reason.into() }
}

fn find<'a>(features: &'a [FeatureConflicts], key: &str) -> Option<(&'a FeatureConflicts, &'a FieldConflict)> {
    features.iter().find_map(|f| f.fields.iter().find(|c| c.key == key).map(|c| (f, c)))
}

fn gone(key: &str) -> AppError {
    AppError::input("conflict", format!("`{key}` is not on the screen any more; refresh the list"))
}

/// The JSON the server takes for a value typed for `field`: empty text is no value, a geometry
/// is GeoJSON text, `deleted` true/false (是/否); anything else is sent as text and checked by
/// the server against the field's type (its refusal names the field).
pub fn typed_value(field: &str, text: &str) -> Result<Json, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(Json::Null);
    }
    match field {
        "geometry" => serde_json::from_str(t).map_err(|e| format!("GeoJSON expected: {e}")),
        "deleted" => match t {
            "true" | "是" | "已删除" => Ok(Json::Bool(true)),
            "false" | "否" => Ok(Json::Bool(false)),
            _ => Err(format!("`{t}`: true or false expected")),
        },
        _ => Ok(Json::String(t.to_owned())),
    }
}

fn latest(c: &FieldConflict) -> Choice {
    let newest = |s: &Side| s.authors.iter().filter_map(|a| a.time.as_deref()?.parse::<Timestamp>().ok()).max();
    let merged = newest(&c.sides[0]);
    let mut best: (Option<Timestamp>, &Side) = (merged, &c.sides[0]);
    for s in &c.sides[1..] {
        let t = newest(s);
        if t.is_some() && t > best.0 {
            best = (t, s);
        }
    }
    best.1.choice.clone()
}

/// The resolutions an intent asks for, against the features on the screen.
pub fn resolutions(features: &[FeatureConflicts], intent: &Intent) -> Result<Vec<Resolution>, AppError> {
    match intent {
        Intent::Field { key, choice, text } => {
            let (f, c) = find(features, key).ok_or_else(|| gone(key))?;
            let choose = match (choice, text) {
                (Some(ch), _) => {
                    let known = c.sides.iter().any(|s| &s.choice == ch) || matches!(ch, Choice::Value(_));
                    if !known {
                        return Err(bad(f, &c.field, "that value is not one of the field's sides"));
                    }
                    ch.clone()
                }
                (None, Some(t)) => Choice::Value(typed_value(&c.field, t).map_err(|m| bad(f, &c.field, m))?),
                (None, None) => return Err(AppError::input("choice", "choose a value or type one")),
            };
            Ok(vec![resolution(f, c, choose)])
        }
        Intent::Feature { layer, entity, party } => {
            let f = features
                .iter()
                .find(|f| &f.layer == layer && &f.entity == entity)
                .ok_or_else(|| gone(&format!("{layer}/{entity}")))?;
            // The merged values: each field shown (one that opened since stays open).
            let Some(party) = party else {
                return Ok(f.fields.iter().map(|c| resolution(f, c, Choice::Winner)).collect());
            };
            let out: Vec<Resolution> = f
                .fields
                .iter()
                .filter_map(|c| {
                    let s = c.sides.iter().find(|s| s.authors.iter().any(|a| &a.party() == party))?;
                    Some(resolution(f, c, s.choice.clone()))
                })
                .collect();
            if out.is_empty() {
                return Err(bad(f, "*", format!("`{party}` wrote none of its contested values")));
            }
            Ok(out)
        }
        Intent::Bulk { keys, rule } => {
            if keys.is_empty() {
                return Err(AppError::input("selection", "select at least one conflict"));
            }
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let (f, c) = find(features, key).ok_or_else(|| gone(key))?;
                let choose = match rule {
                    BulkRule::KeepMerged => Choice::Winner,
                    BulkRule::LatestWins => latest(c),
                    BulkRule::KeepBase => match &c.base {
                        Some(b) => Choice::Value(b.clone()),
                        None => return Err(bad(f, &c.field, "the base value is unknown: choose a side instead")),
                    },
                };
                out.push(resolution(f, c, choose));
            }
            Ok(out)
        }
    }
}

/// What a resolution did, for the screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    /// Resolutions sent (a whole feature counts once).
    pub resolutions: usize,
    /// Features written (each as one new version).
    pub features: usize,
    pub answer: ResolveResponse,
}

/// The index `N` of `resolutions[N]…`.
fn member_index(member: &str) -> Option<usize> {
    member.strip_prefix("resolutions[")?.split(']').next()?.parse().ok()
}

impl Device {
    /// One page of the open conflicts matching `query`, grouped by feature (office staff and
    /// administrators; online only).
    pub fn conflict_review(&self, query: &ConflictQuery) -> Result<ConflictReview, AppError> {
        Ok(review(self.client()?.open_conflicts(query)?))
    }

    /// Sends the resolutions `intent` asks for on `features` (what the screen shows), with a
    /// fresh action id. A refusal names the feature and field of the resolution at fault.
    pub fn resolve_conflicts(&self, features: &[FeatureConflicts], intent: &Intent) -> Result<Resolved, AppError> {
        let list = resolutions(features, intent)?;
        let req = ResolveRequest { action_id: Uuid::new_v4(), resolutions: list };
        match self.client()?.resolve_conflicts(&req) {
            Ok(answer) => Ok(Resolved { resolutions: req.resolutions.len(), features: answer.entities.len(), answer }),
            Err(shikong_sync_client::conflicts::ResolveError::Sync(e)) => Err(e.into()),
            Err(shikong_sync_client::conflicts::ResolveError::Member { status, member, message }) => {
                let r = member_index(&member).and_then(|i| req.resolutions.get(i));
                Err(match r {
                    Some(r) => {
                        let code = features
                            .iter()
                            .find(|f| f.layer == r.layer && f.entity == r.entity)
                            .map_or_else(|| r.entity.to_string(), |f| f.code.clone());
                        // 409: the conflict changed since it was listed (a new side, or settled).
                        let lead = if status == 409 {
                            "已有变化，请在重新读取的列表上再决定 / "
                        } else {
                            ""
                        };
                        AppError::BadConflict {
                            layer: format!("{} {code}", r.layer),
                            field: r.field.clone().unwrap_or_else(|| "*".into()),
                            reason: format!("{lead}{message} ({status})"),
                        }
                    }
                    None => shikong_sync_client::SyncError::Server { status, code: None, message }.into(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use serde_json::json;
    use shikong_protocol::{Conflict, ConflictValue};

    const E1: Uuid = Uuid::from_u128(1);
    const E2: Uuid = Uuid::from_u128(2);

    fn side(v: Json, user: &str, device: &str, time: &str) -> ConflictValue {
        ConflictValue { value: v, user: Some(user.into()), device: Some(device.into()), time: Some(time.into()) }
    }

    fn open(
        entity: Uuid,
        code: &str,
        field: &str,
        base: Option<Json>,
        winner: ConflictValue,
        others: Vec<ConflictValue>,
    ) -> OpenConflict {
        OpenConflict {
            conflict: Conflict {
                layer: "manhole".into(),
                entity,
                code: code.into(),
                kind: ConflictKind::Field,
                field: field.into(),
                winner,
                others,
            },
            base,
            opened: "2026-12-06T10:00:05+08:00".into(),
            rev: format!("rev-{code}-{field}"),
        }
    }

    /// 0001: depth (li 2.5 earlier wins, zhao 3.5 later) and material (li and zhao), 0002: a
    /// three-way depth where two sides agree, base unknown.
    fn page() -> ConflictPage {
        let t1 = "2026-12-06T10:00:00+08:00";
        let t2 = "2026-12-06T10:01:00+08:00";
        ConflictPage {
            conflicts: vec![
                open(
                    E1,
                    "JG-1",
                    "埋深",
                    Some(json!(1.2)),
                    side(json!(2.5), "li", "li 的平板", t1),
                    vec![side(json!(3.5), "zhao", "zhao 的平板", t2)],
                ),
                open(
                    E1,
                    "JG-1",
                    "材质",
                    Some(json!("1")),
                    side(json!("3"), "zhao", "zhao 的平板", t2),
                    vec![side(json!("2"), "li", "li 的平板", t1)],
                ),
                open(
                    E2,
                    "JG-2",
                    "埋深",
                    None,
                    side(json!(5.0), "li", "li 的平板", t2),
                    vec![side(json!(6.0), "zhao", "zhao 的平板", t1), side(json!(6.0), "wu", "wu 的平板", t1)],
                ),
            ],
            next: Some("manhole/x".into()),
        }
    }

    fn key(e: Uuid, field: &str) -> String {
        format!("manhole/{e}/{field}")
    }

    #[test]
    fn conflicts_are_grouped_by_feature_with_base_merged_and_distinct_sides() {
        let r = review(page());
        assert_eq!((r.conflicts, r.next.as_deref()), (3, Some("manhole/x")));
        let codes: Vec<(&str, usize)> = r.features.iter().map(|f| (f.code.as_str(), f.fields.len())).collect();
        assert_eq!(codes, [("JG-1", 2), ("JG-2", 1)]);
        let depth = &r.features[0].fields[0];
        assert_eq!(depth.key, key(E1, "埋深"));
        assert_eq!((depth.base_text.as_deref(), depth.merged_text.as_str()), (Some("1.2"), "2.5"));
        let sides: Vec<(&str, bool, Choice)> =
            depth.sides.iter().map(|s| (s.text.as_str(), s.merged, s.choice.clone())).collect();
        assert_eq!(sides, [("2.5", true, Choice::Winner), ("3.5", false, Choice::Other(0))]);
        let parties: Vec<&str> = r.features[0].parties.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(parties, ["li@li 的平板", "zhao@zhao 的平板"]);
        // Two sides that agree are one value with both authors; its choice is the first of them.
        let three = &r.features[1].fields[0];
        assert_eq!(three.sides.len(), 2);
        assert_eq!(three.sides[1].choice, Choice::Other(0));
        let who: Vec<&str> = three.sides[1].authors.iter().filter_map(|a| a.user.as_deref()).collect();
        assert_eq!(who, ["zhao", "wu"]);
        assert_eq!(three.base, None);
    }

    #[test]
    fn a_deletion_that_raced_edits_started_from_a_kept_feature() {
        let mut c = open(
            E1,
            "JG-1",
            "deleted",
            None,
            side(json!(true), "li", "li 的平板", "2026-12-06T10:00:00+08:00"),
            vec![side(json!(false), "zhao", "zhao 的平板", "2026-12-06T10:01:00+08:00")],
        );
        c.conflict.kind = ConflictKind::DeletedWhileEdited;
        let r = review(ConflictPage { conflicts: vec![c], next: None });
        let f = &r.features[0].fields[0];
        assert_eq!((f.base_text.as_deref(), f.merged_text.as_str()), (Some("保留（未删除）"), "已删除"));
        // "Back to base" restores it; "latest wins" takes the later edit (kept).
        let keys = vec![f.key.clone()];
        let base = resolutions(&r.features, &Intent::Bulk { keys: keys.clone(), rule: BulkRule::KeepBase }).unwrap();
        assert_eq!(base[0].choose, Choice::Value(json!(false)));
        let latest = resolutions(&r.features, &Intent::Bulk { keys, rule: BulkRule::LatestWins }).unwrap();
        assert_eq!(latest[0].choose, Choice::Other(0));
    }

    #[test]
    fn values_are_shown_in_words() {
        assert_eq!(value_text("埋深", &Json::Null), "（空）");
        assert_eq!(value_text("deleted", &json!(true)), "已删除");
        assert_eq!(value_text("有井盖", &json!(false)), "否");
        assert_eq!(
            value_text("geometry", &json!({"type": "Point", "coordinates": [114.3437, 30.5043]})),
            "点 (114.343700, 30.504300)"
        );
        let line = json!({"type": "LineString", "coordinates": [[114.0, 30.0], [114.1, 30.1], [114.2, 30.2]]});
        assert_eq!(value_text("geometry", &line), "线（3 个顶点）");
        assert_eq!(value_text("照片", &json!(["a", "b"])), "2 个附件");
        assert_eq!(value_text("名称", &json!("井盖")), "井盖");
    }

    #[test]
    fn a_field_takes_a_side_or_a_typed_value() {
        let r = review(page());
        let k = key(E1, "埋深");
        let take = Intent::Field { key: k.clone(), choice: Some(Choice::Other(0)), text: None };
        let out = resolutions(&r.features, &take).unwrap();
        assert_eq!(
            out,
            [Resolution {
                layer: "manhole".into(),
                entity: E1,
                field: Some("埋深".into()),
                choose: Choice::Other(0),
                seen: Some("rev-JG-1-埋深".into()),
            }]
        );
        let typed = Intent::Field { key: k.clone(), choice: None, text: Some(" 3.0 ".into()) };
        assert_eq!(resolutions(&r.features, &typed).unwrap()[0].choose, Choice::Value(json!("3.0")));
        let empty = Intent::Field { key: k.clone(), choice: None, text: Some(String::new()) };
        assert_eq!(resolutions(&r.features, &empty).unwrap()[0].choose, Choice::Value(Json::Null));
        // A side the field does not have, nothing chosen, a conflict no longer listed: refused.
        let e = resolutions(&r.features, &Intent::Field { key: k.clone(), choice: Some(Choice::Other(4)), text: None });
        assert!(matches!(e, Err(AppError::BadConflict { ref field, .. }) if field == "埋深"), "{e:?}");
        assert!(resolutions(&r.features, &Intent::Field { key: k, choice: None, text: None }).is_err());
        let e = resolutions(
            &r.features,
            &Intent::Field { key: "manhole/x/y".into(), choice: Some(Choice::Winner), text: None },
        );
        assert!(matches!(e, Err(AppError::Input { .. })), "{e:?}");
        assert_eq!(typed_value("geometry", r#"{"type":"Point","coordinates":[1,2]}"#).unwrap()["type"], "Point");
        assert!(typed_value("geometry", "点").is_err());
        assert_eq!(typed_value("deleted", "否").unwrap(), json!(false));
    }

    #[test]
    fn a_feature_takes_one_party_for_every_field_it_wrote() {
        let r = review(page());
        let zhao = Intent::Feature { layer: "manhole".into(), entity: E1, party: Some("zhao@zhao 的平板".into()) };
        let out: Vec<(Option<String>, Choice)> =
            resolutions(&r.features, &zhao).unwrap().into_iter().map(|r| (r.field, r.choose)).collect();
        // zhao lost the depth (others[0]) and won the material (winner).
        assert_eq!(out, [(Some("埋深".into()), Choice::Other(0)), (Some("材质".into()), Choice::Winner)]);
        let merged = Intent::Feature { layer: "manhole".into(), entity: E1, party: None };
        let out: Vec<(Option<String>, Choice, Option<String>)> =
            resolutions(&r.features, &merged).unwrap().into_iter().map(|r| (r.field, r.choose, r.seen)).collect();
        assert_eq!(
            out,
            [
                (Some("埋深".into()), Choice::Winner, Some("rev-JG-1-埋深".into())),
                (Some("材质".into()), Choice::Winner, Some("rev-JG-1-材质".into()))
            ],
            "each field shown, with the revision it was shown at"
        );
        let nobody = Intent::Feature { layer: "manhole".into(), entity: E1, party: Some("wu@wu 的平板".into()) };
        assert!(matches!(resolutions(&r.features, &nobody), Err(AppError::BadConflict { .. })));
    }

    #[test]
    fn bulk_rules_settle_every_selected_field() {
        let r = review(page());
        let keys = vec![key(E1, "埋深"), key(E1, "材质"), key(E2, "埋深")];
        let choices = |rule| -> Vec<Choice> {
            resolutions(&r.features, &Intent::Bulk { keys: keys.clone(), rule })
                .unwrap()
                .into_iter()
                .map(|r| r.choose)
                .collect()
        };
        assert_eq!(choices(BulkRule::KeepMerged), [Choice::Winner, Choice::Winner, Choice::Winner]);
        // The later edit: zhao's depth (other), zhao's material (already the winner), li's 5.0.
        assert_eq!(choices(BulkRule::LatestWins), [Choice::Other(0), Choice::Winner, Choice::Winner]);
        // The base: known for 0001's fields, unknown for 0002's depth (refused, named).
        let base = Intent::Bulk { keys: keys[..2].to_vec(), rule: BulkRule::KeepBase };
        let out: Vec<Choice> = resolutions(&r.features, &base).unwrap().into_iter().map(|r| r.choose).collect();
        assert_eq!(out, [Choice::Value(json!(1.2)), Choice::Value(json!("1"))]);
        let e = resolutions(&r.features, &Intent::Bulk { keys: keys.clone(), rule: BulkRule::KeepBase });
        assert!(
            matches!(e, Err(AppError::BadConflict { ref layer, ref field, .. }) if layer == "manhole JG-2" && field == "埋深"),
            "{e:?}"
        );
        assert!(resolutions(&r.features, &Intent::Bulk { keys: vec![], rule: BulkRule::KeepMerged }).is_err());
    }

    #[test]
    fn intents_read_the_json_the_screen_sends() {
        let i: Intent = serde_json::from_value(json!({"kind": "field", "key": "k", "choice": "other:1"})).unwrap();
        assert_eq!(i, Intent::Field { key: "k".into(), choice: Some(Choice::Other(1)), text: None });
        let i: Intent = serde_json::from_value(json!({"kind": "bulk", "keys": ["k"], "rule": "latest_wins"})).unwrap();
        assert_eq!(i, Intent::Bulk { keys: vec!["k".into()], rule: BulkRule::LatestWins });
        let i: Intent =
            serde_json::from_value(json!({"kind": "feature", "layer": "manhole", "entity": E1, "party": null}))
                .unwrap();
        assert_eq!(i, Intent::Feature { layer: "manhole".into(), entity: E1, party: None });
    }

    #[test]
    fn a_refused_resolution_names_its_feature_and_field() {
        let server = testkit::one_answer_status(
            400,
            r#"{"type": "https://shikong.invalid/problems/invalid-body", "title": "Bad Request", "status": 400,
                "detail": "`resolutions[0].choose.value`: `埋深`: `深` is not a number", "member": "resolutions[0].choose.value"}"#,
        );
        let (_dir, mut d) = testkit::online_device();
        d.settings.session = Some(testkit::session(&server));
        let r = review(page());
        let typed = Intent::Field { key: key(E1, "埋深"), choice: None, text: Some("深".into()) };
        let e = d.resolve_conflicts(&r.features, &typed).err();
        match &e {
            Some(AppError::BadConflict { layer, field, reason }) => {
                assert_eq!((layer.as_str(), field.as_str()), ("manhole JG-1", "埋深"));
                assert!(reason.contains("is not a number") && reason.contains("400"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(member_index("resolutions[12].field"), Some(12));
        assert_eq!(member_index("resolutions"), None);
    }

    #[test]
    fn a_conflict_changed_since_it_was_listed_is_said_so() {
        let server = testkit::one_answer_status(
            409,
            r#"{"type": "https://shikong.invalid/problems/conflict-changed", "title": "Conflict", "status": 409,
                "detail": "`resolutions[0].seen`: the conflict on `埋深` changed since it was listed", "member": "resolutions[0].seen"}"#,
        );
        let (_dir, mut d) = testkit::online_device();
        d.settings.session = Some(testkit::session(&server));
        let r = review(page());
        let take = Intent::Field { key: key(E1, "埋深"), choice: Some(Choice::Other(0)), text: None };
        match d.resolve_conflicts(&r.features, &take).err() {
            Some(AppError::BadConflict { layer, field, reason }) => {
                assert_eq!((layer.as_str(), field.as_str()), ("manhole JG-1", "埋深"));
                assert!(
                    reason.starts_with("已有变化") && reason.contains("changed") && reason.contains("409"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
