//! The edit log of a document: every device change with who made it, on which device, when by
//! the device's clock, and which attributes it wrote — including edits that lost (a concurrent
//! value that is not the winner, an edit that raced a deletion). The store's history shows it so
//! that no acknowledged edit is invisible, even when the merged state does not carry it.

use std::collections::HashSet;

use automerge::ChangeHash;
use shikong_model::LayerSchema;

use crate::doc::EntityDoc;
use crate::error::Result;
use crate::message;

/// One device change.
#[derive(Debug, Clone, PartialEq)]
pub struct EditRecord {
    pub hash: ChangeHash,
    pub user: Option<String>,
    pub device: Option<String>,
    /// Device clock at the edit.
    pub time: Option<jiff::Timestamp>,
    /// `create`, `set`, `geometry`, `code`, `valid`, `delete`, `restore`, `resolve`, `undo`.
    pub op: String,
    /// Attributes written, by field name (or `geometry`, `code`, `valid_from`, `valid_to`,
    /// `deleted`); unknown field ids are shown as `p.<id>`.
    pub attributes: Vec<String>,
    /// The edit raced a deletion that won (it is kept here and flagged).
    pub lost_to_delete: bool,
}

fn attribute_name(schema: &LayerSchema, key: &str) -> String {
    match key {
        "g" => "geometry".into(),
        "code" => "code".into(),
        "vf" => "valid_from".into(),
        "vt" => "valid_to".into(),
        "del" => "deleted".into(),
        "id" => "id".into(),
        k => {
            k.strip_prefix("p.").and_then(|id| schema.field_by_id(id)).map_or_else(|| k.to_owned(), |f| f.name.clone())
        }
    }
}

impl EntityDoc {
    /// Device changes in causal order (base and server changes are not listed: the store's own
    /// versions describe them).
    pub fn edits(&self, schema: &LayerSchema) -> Result<Vec<EditRecord>> {
        let raced: HashSet<ChangeHash> = self.concurrent_edits()?.into_iter().collect();
        let mut out = Vec::new();
        for m in self.doc.get_changes_meta(&[]) {
            let origin = message::parse(m.message.as_deref(), m.timestamp);
            let Some(op) = origin.op else { continue };
            let mut attributes: Vec<String> =
                self.change_ops(&m.hash)?.iter().map(|o| attribute_name(schema, &o.key)).collect();
            attributes.dedup();
            out.push(EditRecord {
                hash: m.hash,
                user: origin.user,
                device: origin.device,
                time: origin.time,
                op,
                attributes,
                lost_to_delete: raced.contains(&m.hash),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use shikong_model::Value;

    use crate::test_support::*;
    use crate::{Edit, EntityDoc};

    #[test]
    fn the_log_lists_every_device_edit_and_flags_those_lost_to_a_delete() {
        let s = schema();
        let mut a = EntityDoc::base(&s, &feature()).unwrap();
        let mut b = EntityDoc::base(&s, &feature()).unwrap();
        let ca = a.edit(&s, A, &zhang(), Edit::Delete).unwrap().unwrap();
        let cb = b.edit(&s, B, &li(), Edit::SetFields(props(&[("深度", Value::Real(9.0))]))).unwrap().unwrap();
        a.apply_changes(&[cb]).unwrap();
        b.apply_changes(&[ca]).unwrap();
        for doc in [&a, &b] {
            let log = doc.edits(&s).unwrap();
            let summary: Vec<_> = log
                .iter()
                .map(|e| (e.op.as_str(), e.user.clone().unwrap_or_default(), e.attributes.clone(), e.lost_to_delete))
                .collect();
            assert_eq!(summary.len(), 2);
            assert!(summary.contains(&("delete", zhang().user, vec!["deleted".to_owned()], false)), "{summary:?}");
            assert!(summary.contains(&("set", li().user, vec!["深度".to_owned()], true)), "{summary:?}");
        }
    }
}
