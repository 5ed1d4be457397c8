//! Conflicts the sync left open (two edits of one field): resolving one on the device — keep the
//! current winner or take the other side's value — as an ordinary edit the next sync shares. The
//! open area's conflicts are listed in [`crate::AppState`]; "leave it for the office" is doing
//! nothing here.

use serde_json::Value as Json;
use shikong_model::{EntityId, Value};
use shikong_protocol as wire;
use shikong_replica::{FeatureKey, Replica, Resolved};

use crate::{AppError, Device};

impl Device {
    /// Resolves a conflict: `keep` the current winner (`take: None`), or take another side's
    /// `value`; `false` when it changed nothing.
    pub fn resolve(&self, replica: &mut Replica, c: &wire::Conflict, take: Option<&Json>) -> Result<bool, AppError> {
        let key = FeatureKey::Id(EntityId::from_uuid(c.entity));
        let chosen = take.unwrap_or(&c.winner.value);
        let bad = |reason: String| AppError::BadConflict { layer: c.layer.clone(), field: c.field.clone(), reason };
        let value = if c.field == "deleted" {
            Resolved::Deleted(chosen.as_bool().unwrap_or(true))
        } else if c.field == "geometry" {
            let g = if chosen.is_null() {
                None
            } else {
                Some(shikong_model::geojson::from_json(chosen).map_err(|e| bad(e.to_string()))?)
            };
            Resolved::Geometry(g)
        } else if c.field == "code" {
            Resolved::Value(Value::Text(chosen.as_str().unwrap_or_default().to_owned()))
        } else {
            let l = replica.layer(&c.layer)?;
            let f = l.schema.field(&c.field).ok_or_else(|| bad("no such field in the layer".into()))?;
            Resolved::Value(f.coerce_json(chosen).map_err(|e| bad(e.to_string()))?)
        };
        let resolved = replica.resolve(&c.layer, &key, &c.field, value, &self.meta())?;
        self.refresh_replica(replica);
        Ok(resolved)
    }

    /// [`Device::resolve`] in the open area.
    pub fn resolve_in_active(&self, c: &wire::Conflict, take: Option<&Json>) -> Result<bool, AppError> {
        let mut r = self.active_replica()?;
        self.resolve(&mut r, c, take)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    fn conflict(field: &str) -> wire::Conflict {
        let side =
            |v: &str| wire::ConflictValue { value: Json::String(v.into()), user: None, device: None, time: None };
        wire::Conflict {
            layer: "manhole".into(),
            entity: uuid::Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0000),
            code: "420111-JG-000000".into(),
            kind: wire::ConflictKind::Field,
            field: field.into(),
            winner: side("1"),
            others: vec![side("2")],
        }
    }

    #[test]
    fn a_conflict_on_an_unknown_field_is_named() {
        let (dir, mut d) = testkit::device();
        testkit::replica(dir.path(), "洪山区", 1);
        assert!(d.set_active("洪山区").is_ok());
        let e = d.resolve_in_active(&conflict("不存在"), None).err();
        assert!(matches!(&e, Some(AppError::BadConflict { field, .. }) if field == "不存在"), "{e:?}");
    }
}
