//! The device side of end-of-sync verification (docs/sync-protocol.md, "Verification"): the
//! digest of which server version of every entity the replica holds, the entities to fetch when
//! the server's answer shows a difference, and applying the repair.
//!
//! What counts: every row with a server version. Left out on both sides (named in `exclude`):
//! entities with anything in the outbox — unsent, in flight or refused — whose rows legitimately
//! differ from the server until their changes are accepted. Rows created here and never accepted
//! have no version and are not counted.

use std::collections::{BTreeMap, HashSet};

use shikong_gpkg::quote_ident;
use shikong_model::EntityId;
use shikong_protocol::PROTOCOL_VERSION;
use shikong_protocol::verify::{
    DIGEST_BUCKETS, Digest, EntityRef, LayerDigest, RepairResponse, VerifyRequest, VerifyResponse, bucket_of,
};
use uuid::Uuid;

use crate::capture;
use crate::error::{ReplicaError, Result};
use crate::replica::Replica;
use crate::sync::{PullSummary, pull_entity};

impl Replica {
    /// Entities with local changes not yet accepted (anything in the outbox).
    fn unsettled(&self) -> Result<HashSet<Uuid>> {
        let mut stmt = self.conn.prepare_cached("SELECT DISTINCT entity_id FROM sk_outbox")?;
        let ids = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
        ids.iter()
            .map(|s| Uuid::parse_str(s).map_err(|e| ReplicaError::Corrupt(format!("outbox entity id `{s}`: {e}"))))
            .collect()
    }

    /// `(entity, server version)` of every counted row of `layer`.
    fn versions(&self, layer: &str, unsettled: &HashSet<Uuid>) -> Result<Vec<(Uuid, i64)>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT entity_id, sk_version FROM {} WHERE sk_version IS NOT NULL AND entity_id IS NOT NULL",
            quote_ident(layer)
        ))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, version) in rows {
            let id =
                Uuid::parse_str(&id).map_err(|e| ReplicaError::Corrupt(format!("{layer}: entity id `{id}`: {e}")))?;
            if !unsettled.contains(&id) {
                out.push((id, version));
            }
        }
        Ok(out)
    }

    /// The verification request for the replica as it stands, meant right after a completed pull
    /// (the cursor then says which transaction each layer is complete through).
    pub fn verify_request(&self) -> Result<VerifyRequest> {
        let unsettled = self.unsettled()?;
        let mut layers = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let mut d = Digest::default();
            for (id, version) in self.versions(&l.name, &unsettled)? {
                d.add(id, version);
            }
            layers.push(LayerDigest { layer: l.name.clone(), buckets: d.to_wire() });
        }
        let mut exclude: Vec<Uuid> = unsettled.into_iter().collect();
        exclude.sort();
        Ok(VerifyRequest { protocol: PROTOCOL_VERSION, replica: self.info.id, cursor: self.cursor()?, exclude, layers })
    }

    /// The entities this replica holds differently from the server's lists of the buckets that
    /// differ: missing here, another version here, or here but not there.
    pub fn repair_targets(&self, verdict: &VerifyResponse) -> Result<Vec<EntityRef>> {
        let unsettled = self.unsettled()?;
        let mut out = Vec::new();
        for l in verdict.layers.iter().filter(|l| !l.differing.is_empty()) {
            self.layer(&l.layer)?;
            let buckets: HashSet<usize> = l
                .differing
                .iter()
                .filter_map(|b| usize::try_from(b.bucket).ok())
                .filter(|b| *b < DIGEST_BUCKETS)
                .collect();
            let server: BTreeMap<Uuid, i64> = l
                .differing
                .iter()
                .flat_map(|b| b.entities.iter())
                .filter(|e| !unsettled.contains(&e.entity))
                .map(|e| (e.entity, e.version))
                .collect();
            let local: BTreeMap<Uuid, i64> = self
                .versions(&l.layer, &unsettled)?
                .into_iter()
                .filter(|(id, _)| buckets.contains(&bucket_of(*id)))
                .collect();
            let mut ids: Vec<Uuid> = server
                .iter()
                .filter(|(id, v)| local.get(id) != Some(v))
                .map(|(id, _)| *id)
                .chain(local.keys().filter(|id| !server.contains_key(id)).copied())
                .collect();
            ids.sort();
            ids.dedup();
            out.extend(ids.into_iter().map(|entity| EntityRef { layer: l.layer.clone(), entity }));
        }
        Ok(out)
    }

    /// Takes a repair answer: each entity as the server has it now — adopted even where the
    /// replica claims a newer version, since the server's current word is the reference here —
    /// merged with local changes where there are any. The pull cursor does not move.
    pub fn apply_repair(&mut self, answer: &RepairResponse) -> Result<PullSummary> {
        if answer.protocol != PROTOCOL_VERSION {
            return Err(ReplicaError::Protocol { found: answer.protocol, supported: PROTOCOL_VERSION });
        }
        capture::guard(&self.conn)?;
        let tx = self.conn.unchecked_transaction()?;
        let mut summary = PullSummary::default();
        for e in &answer.entities {
            let layer = self.layers.iter().find(|l| l.name == e.layer).ok_or_else(|| ReplicaError::BadMessage {
                layer: e.layer.clone(),
                entity: EntityId(e.entity).to_string(),
                message: "not a layer of this replica".into(),
            })?;
            pull_entity(&tx, layer, e, &mut summary, true, None)?;
        }
        tx.execute_batch("DELETE FROM sk_capture;")?;
        tx.commit()?;
        Ok(summary)
    }
}
