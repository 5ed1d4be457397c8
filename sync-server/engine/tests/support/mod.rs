//! What the engine's push tests share: an authoriser that allows everything, the pushing user and
//! the layer they push to.

use shikong_auth::{Action, AuthError, Decision, LayerAccess, Principal, Role, TokenId, UserId};
use shikong_model::{Coord, EntityId, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Value};
use shikong_store::{LayerDef, NewFeature, Store, TxMeta};

/// Allows every action on every layer (these tests are about merging, not permissions).
pub struct AllowAll;

impl shikong_sync_engine::Authorizer for AllowAll {
    fn authorize(&self, _: Option<&Principal>, _: &LayerAccess<'_>, _: Action) -> Result<Decision, AuthError> {
        Ok(Decision::Allow)
    }
}

/// Inspector `li`, signed in without a device.
pub fn li() -> Principal {
    Principal {
        user_id: UserId(1),
        username: "li".into(),
        role: Role::Inspector,
        groups: Vec::new(),
        device: None,
        token: TokenId(1),
    }
}

/// Layer `manhole` with real `fields` (all 0.0) and `entities` features `JG-i`, at version 1.
pub fn seed_manholes(store: &dyn Store, fields: &[&str], entities: usize) -> Vec<EntityId> {
    let mut tx = store.begin(TxMeta::by("cli:test")).unwrap();
    let defs = fields.iter().map(|f| FieldDef::new(*f, FieldType::Real)).collect();
    tx.create_layer(LayerDef::new("manhole", GeometryKind::Point, LayerSchema { fields: defs })).unwrap();
    let ids = (0..entities)
        .map(|i| {
            let props = fields.iter().map(|f| ((*f).to_owned(), Value::Real(0.0))).collect();
            let f = NewFeature {
                code: Some(format!("JG-{i}")),
                geometry: Some(Geometry::Point(Coord::xy(114.3, 30.5))),
                properties: props,
                ..NewFeature::default()
            };
            tx.insert("manhole", f).unwrap()
        })
        .collect();
    tx.commit().unwrap();
    ids
}
