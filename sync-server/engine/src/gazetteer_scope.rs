//! What of the gazetteer a principal may see: the layers feeding it (roads, house numbers, POIs)
//! that the principal may read now. Asked wherever gazetteer data is served — geocoding, reverse
//! geocoding, suggestions, batch jobs when they run, device subsets, replica estimates — and never
//! remembered, so a removed rule, a demotion or a layer made private takes effect at the next
//! answer, as pulls re-check read rights on every page.

use std::collections::BTreeSet;

use shikong_auth::{Action, Decision, Principal};
use shikong_gazetteer::{LiveGazetteer, Scope, Sources};
use shikong_store::{FeatureStore, StoreError};

use crate::sync::{SyncFailure, layer_access};

/// The feeding layers of `sources` that `who` (`None`: an anonymous caller, who reads public
/// layers only) may read now. A feeding layer the store no longer has is not readable.
pub fn scope_of(
    store: &dyn FeatureStore,
    auth: &dyn crate::Authorizer,
    who: Option<&Principal>,
    sources: &Sources,
) -> Result<Scope, SyncFailure> {
    let mut readable = BTreeSet::new();
    for name in sources.layers() {
        let layer = match store.layer(&name) {
            Ok(l) => l,
            Err(StoreError::NoSuchLayer(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        if let Decision::Allow = auth.authorize(who, &layer_access(&layer), Action::Read)? {
            readable.insert(name);
        }
    }
    Ok(Scope::Layers(readable))
}

/// [`scope_of`] the sources of the gazetteer `live` answers from (caught up first); no gazetteer
/// built: an empty scope.
pub fn gazetteer_scope(
    store: &dyn FeatureStore,
    auth: &dyn crate::Authorizer,
    who: Option<&Principal>,
    live: &LiveGazetteer,
) -> Result<Scope, SyncFailure> {
    let sources = live
        .with(store, |_, m| m.sources.clone())
        .map_err(|e| SyncFailure::Refused { code: shikong_protocol::SyncErrorCode::Internal, message: e.to_string() })?
        .unwrap_or_default();
    scope_of(store, auth, who, &sources)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use shikong_auth::{Action, AuthError, Decision, LayerAccess, Principal, Role, TokenId, UserId, decide};
    use shikong_gazetteer::{Source, Sources};
    use shikong_model::{GeometryKind, LayerSchema};
    use shikong_store::{LayerDef, StoreConfig, TxMeta};

    use super::*;

    /// The defaults of `shikong-auth` with no stored rules.
    struct Defaults;

    impl crate::Authorizer for Defaults {
        fn authorize(&self, who: Option<&Principal>, l: &LayerAccess<'_>, a: Action) -> Result<Decision, AuthError> {
            Ok(decide(who, l, a, &[]))
        }
    }

    fn user(role: Role) -> Principal {
        Principal {
            user_id: UserId(1),
            username: "u".into(),
            role,
            groups: Vec::new(),
            device: None,
            token: TokenId(1),
        }
    }

    fn source(layer: &str) -> Option<Source> {
        Some(Source { layer: layer.into(), name: "名称".into(), number: None, extra: None })
    }

    #[test]
    fn the_scope_is_the_feeding_layers_the_caller_reads_now() {
        let dir = tempfile::tempdir().unwrap();
        let store = shikong_store::init(&StoreConfig::in_dir(dir.path())).unwrap();
        let mut tx = store.begin(TxMeta::by("cli:test")).unwrap();
        let mut road = LayerDef::new("road", GeometryKind::LineString, LayerSchema::default());
        road.public = true;
        tx.create_layer(road).unwrap();
        tx.create_layer(LayerDef::new("poi", GeometryKind::Point, LayerSchema::default())).unwrap();
        tx.commit().unwrap();
        // `address` feeds the gazetteer but the store has no such layer (any more).
        let sources = Sources { roads: source("road"), addresses: source("address"), pois: source("poi") };
        let scope = |who: Option<&Principal>| match scope_of(&*store, &Defaults, who, &sources).unwrap() {
            Scope::Layers(set) => set.into_iter().collect::<Vec<_>>(),
            Scope::All => panic!("a server scope always lists its layers"),
        };
        // Anonymous callers and citizens: public layers only; staff: every layer that exists.
        assert_eq!(scope(None), ["road"]);
        assert_eq!(scope(Some(&user(Role::Citizen))), ["road"]);
        assert_eq!(scope(Some(&user(Role::Inspector))), ["poi", "road"]);
        assert_eq!(scope(Some(&user(Role::Admin))), ["poi", "road"]);
    }
}
