//! Change messages: the audit trail inside each document. A device change says who edited, on
//! which device, when by the device's clock, and what kind of edit it was; a server change says
//! which store version and transaction it mirrors. Conflict records and the store's history read
//! them back, so nothing about authorship lives outside the document.

use automerge::ChangeHash;
use jiff::Timestamp;
use serde_json::{Value as Json, json};

use crate::{EditMeta, ServerMeta};

/// The kind of a device change (`op` in its message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Create,
    Set,
    Geometry,
    Code,
    Valid,
    Delete,
    Restore,
    Resolve,
    Undo,
}

impl Op {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Set => "set",
            Op::Geometry => "geometry",
            Op::Code => "code",
            Op::Valid => "valid",
            Op::Delete => "delete",
            Op::Restore => "restore",
            Op::Resolve => "resolve",
            Op::Undo => "undo",
        }
    }
}

/// `{"user":…,"device":…,"t":"<RFC 3339>","op":…}`, plus `"undoes":"<change hash>"` for an undo so
/// that later undos step further back instead of undoing the undo.
pub(crate) fn device_message(meta: &EditMeta, op: Op, undoes: Option<ChangeHash>) -> String {
    let mut m = json!({ "user": meta.user, "device": meta.device, "t": meta.time.to_string(), "op": op.as_str() });
    if let (Some(h), Some(obj)) = (undoes, m.as_object_mut()) {
        obj.insert("undoes".into(), Json::String(h.to_string()));
    }
    m.to_string()
}

/// `{"v":version,"tx":tx,"by":author}`: fixed key order (serde_json keeps insertion order here),
/// so every party writes byte-identical server changes.
pub(crate) fn server_message(meta: &ServerMeta) -> String {
    json!({ "v": meta.version, "tx": meta.tx, "by": meta.author }).to_string()
}

/// What a raw change claims about itself, read without applying it: the server checks a pushed
/// change's claims against the authenticated caller before merging it (a change's message is
/// part of its hash, so it can be refused but never rewritten).
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeClaim {
    pub hash: ChangeHash,
    /// The change's actor (`None` when it is not one of ours: 16 bytes).
    pub actor: Option<crate::Actor>,
    /// Whether the message is a device edit's (`user` and `op`); base and server changes, and
    /// messages of other tools, are not.
    pub device_edit: bool,
    pub user: Option<String>,
    pub device: Option<String>,
    /// The device's clock at the edit (a claim: devices' clocks are not to be trusted).
    pub time: Option<Timestamp>,
}

/// Reads the claims of raw change bytes (as pushed by a device).
pub fn change_claim(change: &[u8]) -> crate::Result<ChangeClaim> {
    let c = automerge::Change::try_from(change).map_err(|e| crate::Error::Invalid(e.to_string()))?;
    let origin = parse(c.message(), c.timestamp());
    let actor = <[u8; 16]>::try_from(c.actor_id().to_bytes()).ok().map(crate::Actor);
    Ok(ChangeClaim {
        hash: c.hash(),
        actor,
        device_edit: origin.op.is_some(),
        user: origin.user,
        device: origin.device,
        time: origin.time,
    })
}

/// Who made a change and when, as far as its message tells.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Origin {
    pub user: Option<String>,
    pub device: Option<String>,
    pub time: Option<Timestamp>,
    /// `op` of a device change; `None` for base and server changes.
    pub op: Option<String>,
    pub undoes: Option<ChangeHash>,
}

/// Reads a change message. Base changes have none; a message from another tool that is not ours
/// tells nothing rather than failing, since it cannot be fixed by whoever reads it.
pub(crate) fn parse(message: Option<&str>, timestamp_ms: i64) -> Origin {
    let Some(Json::Object(m)) = message.and_then(|m| serde_json::from_str::<Json>(m).ok()) else {
        return Origin::default();
    };
    let text = |k: &str| m.get(k).and_then(Json::as_str).map(str::to_owned);
    if m.contains_key("user") {
        Origin {
            user: text("user"),
            device: text("device"),
            time: text("t").and_then(|t| shikong_model::parse_instant(&t).ok()),
            op: text("op"),
            undoes: text("undoes").and_then(|h| h.parse().ok()),
        }
    } else if m.contains_key("by") {
        Origin { user: text("by"), time: Timestamp::from_millisecond(timestamp_ms).ok(), ..Origin::default() }
    } else {
        Origin::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        shikong_model::parse_instant(s).unwrap()
    }

    #[test]
    fn device_messages() {
        let meta =
            EditMeta {
                user: "张三".into(), device: Some("平板-07".into()), time: t("2025-06-01T08:00:00.5+08:00")
            };
        let m = device_message(&meta, Op::Set, None);
        assert_eq!(m, r#"{"user":"张三","device":"平板-07","t":"2025-06-01T00:00:00.5Z","op":"set"}"#);
        let o = parse(Some(&m), 0);
        assert_eq!(o.user.as_deref(), Some("张三"));
        assert_eq!(o.device.as_deref(), Some("平板-07"));
        assert_eq!(o.time, Some(t("2025-06-01T00:00:00.5Z")));
        assert_eq!(o.op.as_deref(), Some("set"));
        let h = ChangeHash([7; 32]);
        let undo = parse(Some(&device_message(&EditMeta { device: None, ..meta }, Op::Undo, Some(h))), 0);
        assert_eq!((undo.device, undo.undoes, undo.op.as_deref()), (None, Some(h), Some("undo")));
    }

    #[test]
    fn server_messages() {
        let meta = ServerMeta { version: 3, tx: 42, author: "导入".into(), time: t("2025-06-01T00:00:00Z") };
        let m = server_message(&meta);
        assert_eq!(m, r#"{"v":3,"tx":42,"by":"导入"}"#);
        let o = parse(Some(&m), meta.time.as_millisecond());
        assert_eq!((o.user.as_deref(), o.device, o.time, o.op), (Some("导入"), None, Some(meta.time), None));
    }

    #[test]
    fn claims_are_read_from_raw_changes() {
        use crate::test_support::{A, feature, props, schema};
        let (schema, f) = (schema(), feature());
        let mut doc = crate::EntityDoc::base(&schema, &f).unwrap();
        let meta =
            EditMeta { user: "张三".into(), device: Some("平板-07".into()), time: t("2025-06-01T08:00:00+08:00") };
        let edit = crate::Edit::SetFields(props(&[("深度", shikong_model::Value::Real(2.0))]));
        let c = doc.edit(&schema, A, &meta, edit).unwrap().unwrap();
        let claim = change_claim(&c).unwrap();
        assert_eq!(claim.hash, crate::change_hash(&c).unwrap());
        assert_eq!((claim.actor, claim.device_edit), (Some(A), true));
        assert_eq!((claim.user.as_deref(), claim.device.as_deref()), (Some("张三"), Some("平板-07")));
        assert_eq!(claim.time, Some(meta.time));
        let base = crate::EntityDoc::base(&schema, &f).unwrap().changes_after(&[]);
        let b = change_claim(&base[0]).unwrap();
        assert_eq!((b.device_edit, b.actor, b.user), (false, Some(crate::Actor::base(f.id)), None));
        assert!(change_claim(b"not a change").is_err());
    }

    #[test]
    fn foreign_messages_tell_nothing() {
        assert_eq!(parse(None, 0), Origin::default());
        assert_eq!(parse(Some("fixed typo"), 0), Origin::default());
        assert_eq!(parse(Some("[1]"), 0), Origin::default());
        assert_eq!(parse(Some(r#"{"user":5}"#), 0).user, None);
    }
}
