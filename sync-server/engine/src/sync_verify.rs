//! End-of-sync verification and repair, server side, without HTTP (docs/sync-protocol.md,
//! "Verification"; the digest itself is `shikong_protocol::verify`).
//!
//! [`verify`] rebuilds the device's digest from the store *as of the transaction the device's
//! cursor is complete through* — not as of now — so writes committed after the device's last pull
//! never look like damage. [`repair`] sends the entities a device found different, as a pull would
//! send them now. Read permission is re-checked on every call.

use std::collections::{BTreeMap, HashSet};

use shikong_auth::{Action, Principal};
use shikong_model::{EntityId, Geometry};
use shikong_protocol as wire;
use shikong_protocol::verify::{
    BucketEntities, DIGEST_BUCKETS, Digest, EntityVersion, LayerVerdict, MAX_REPAIR_ENTITIES, MAX_VERIFY_EXCLUDED,
    RepairRequest, RepairResponse, VerifyRequest, VerifyResponse, bucket_of,
};
use shikong_store::{ChangeCursor, FeatureKey, FeatureStore, Layer, ReplicaRecord, Store, StoreError, TxId};

use crate::sync::{SyncCursor, SyncFailure, area_geometry, layer_access, pulled};

type Result<T, E = SyncFailure> = std::result::Result<T, E>;

fn invalid(message: impl Into<String>) -> SyncFailure {
    SyncFailure::Refused { code: wire::SyncErrorCode::Invalid, message: message.into() }
}

fn check_protocol(found: u32) -> Result<()> {
    if found == wire::PROTOCOL_VERSION {
        return Ok(());
    }
    Err(SyncFailure::Refused {
        code: wire::SyncErrorCode::UnsupportedProtocol,
        message: format!("protocol {found} (this server speaks {})", wire::PROTOCOL_VERSION),
    })
}

/// A layer of the replica the caller may still read.
fn readable_layer(
    store: &dyn FeatureStore,
    auth: &dyn crate::Authorizer,
    who: &Principal,
    replica: &ReplicaRecord,
    name: &str,
) -> Result<Layer> {
    if !replica.layers.iter().any(|l| l == name) {
        return Err(invalid(format!("layer `{name}` is not a layer of replica {}", replica.id)));
    }
    let layer = store.layer(name)?;
    auth.authorize(Some(who), &layer_access(&layer), Action::Read)?.into_result()?;
    Ok(layer)
}

/// Compares a device's digests with the store as of the transactions its cursor is complete
/// through; lists the server's `(entity, version)` pairs of every bucket that differs.
pub fn verify(
    store: &dyn FeatureStore,
    auth: &dyn crate::Authorizer,
    who: &Principal,
    replica: &ReplicaRecord,
    req: &VerifyRequest,
) -> Result<VerifyResponse> {
    check_protocol(req.protocol)?;
    if req.exclude.len() > MAX_VERIFY_EXCLUDED {
        return Err(SyncFailure::Refused {
            code: wire::SyncErrorCode::TooLarge,
            message: format!("{} excluded entities; at most {MAX_VERIFY_EXCLUDED}", req.exclude.len()),
        });
    }
    if req.layers.len() > replica.layers.len() {
        return Err(invalid(format!(
            "{} layer digests for a replica of {} layers",
            req.layers.len(),
            replica.layers.len()
        )));
    }
    let cursor: SyncCursor = req.cursor.parse().map_err(|e: String| invalid(format!("cursor: {e}")))?;
    let exclude: HashSet<EntityId> = req.exclude.iter().copied().map(EntityId).collect();
    let area = area_geometry(store, replica.area.as_deref())?;
    let mut seen = HashSet::new();
    let mut layers = Vec::with_capacity(req.layers.len());
    for (i, d) in req.layers.iter().enumerate() {
        if !seen.insert(d.layer.as_str()) {
            return Err(invalid(format!("layers[{i}]: layer `{}` twice", d.layer)));
        }
        if d.buckets.len() != DIGEST_BUCKETS {
            return Err(invalid(format!("layers[{i}].buckets: {} buckets, not {DIGEST_BUCKETS}", d.buckets.len())));
        }
        let layer = readable_layer(store, auth, who, replica, &d.layer)?;
        let pos = cursor.of(layer.name());
        if pos != ChangeCursor::after_tx(TxId(pos.tx)) {
            return Err(invalid(format!(
                "cursor: layer `{}` stops inside transaction {}; verify after a completed pull",
                d.layer, pos.tx
            )));
        }
        let (digest, by_bucket) = server_digest(store, &layer, TxId(pos.tx), area.as_ref(), &exclude)?;
        let mut differing = Vec::new();
        for b in digest.differing(&d.buckets) {
            differing.push(BucketEntities {
                bucket: u32::try_from(b).unwrap_or(u32::MAX),
                entities: by_bucket.get(&b).cloned().unwrap_or_default(),
            });
        }
        layers.push(LayerVerdict { layer: d.layer.clone(), tx: pos.tx, differing });
    }
    Ok(VerifyResponse { protocol: wire::PROTOCOL_VERSION, layers })
}

/// The digest of what a replica of `layer` (within `area`) holds as of transaction `tx`, and the
/// pairs by bucket.
fn server_digest(
    store: &dyn FeatureStore,
    layer: &Layer,
    tx: TxId,
    area: Option<&Geometry>,
    exclude: &HashSet<EntityId>,
) -> Result<(Digest, BTreeMap<usize, Vec<EntityVersion>>)> {
    let mut digest = Digest::default();
    let mut by_bucket: BTreeMap<usize, Vec<EntityVersion>> = BTreeMap::new();
    // The same selection as cutting a replica (`sync::cut_replica`) and as pulls keep it.
    store.versions_at(layer.name(), tx, area, &mut |id, version| {
        if !exclude.contains(&id) {
            digest.add(id.0, version);
            by_bucket.entry(bucket_of(id.0)).or_default().push(EntityVersion { entity: id.0, version });
        }
    })?;
    Ok((digest, by_bucket))
}

/// The entities a device asks to repair, as a pull would send them now.
pub fn repair(
    store: &dyn Store,
    auth: &dyn crate::Authorizer,
    who: &Principal,
    replica: &ReplicaRecord,
    req: &RepairRequest,
) -> Result<RepairResponse> {
    check_protocol(req.protocol)?;
    if req.entities.len() > MAX_REPAIR_ENTITIES {
        return Err(SyncFailure::Refused {
            code: wire::SyncErrorCode::TooLarge,
            message: format!("{} entities in one repair; at most {MAX_REPAIR_ENTITIES}", req.entities.len()),
        });
    }
    let area = area_geometry(store, replica.area.as_deref())?.map(|g| g.to_geo());
    let mut layers: BTreeMap<&str, Layer> = BTreeMap::new();
    let mut entities = Vec::with_capacity(req.entities.len());
    for (i, e) in req.entities.iter().enumerate() {
        if !layers.contains_key(e.layer.as_str()) {
            let l = readable_layer(store, auth, who, replica, &e.layer).map_err(|err| match err {
                SyncFailure::Refused { code, message } => {
                    SyncFailure::Refused { code, message: format!("entities[{i}]: {message}") }
                }
                other => other,
            })?;
            layers.insert(e.layer.as_str(), l);
        }
        let Some(layer) = layers.get(e.layer.as_str()) else { continue };
        let id = EntityId(e.entity);
        let current = store.get(layer.name(), &FeatureKey::Id(id), None)?;
        let pulled = match &current {
            Some(s) => pulled(store, layer, id, s.version, s.tx, Some(s), area.as_ref(), false)?,
            None => {
                // Deleted (its last version is the tombstone), or never accepted here.
                let (version, tx) = match store.history(layer.name(), &FeatureKey::Id(id)) {
                    Ok(h) => h.last().map_or((0, TxId(0)), |v| (v.version, v.tx.tx)),
                    Err(StoreError::NotFound { .. }) => (0, TxId(0)),
                    Err(err) => return Err(err.into()),
                };
                pulled(store, layer, id, version, tx, None, area.as_ref(), false)?
            }
        };
        entities.extend(pulled);
    }
    Ok(RepairResponse { protocol: wire::PROTOCOL_VERSION, entities })
}
