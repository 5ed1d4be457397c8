//! End-of-sync verification and repair (docs/sync-protocol.md, "Verification").
//!
//! The safety net under the sync invariant: after a completed pull, a device summarises which
//! server version of every entity it holds as a [`Digest`] — per layer, 64 buckets of
//! `(entity, version)` pairs, each a count and a wrapping sum of 128-bit mixes — and the server
//! compares it with its own state as of the transaction the device's cursor is complete through.
//! Buckets that differ come back with the server's `(entity, version)` list; the device fetches the
//! entities it holds differently through `POST /sync/repair` and counts them as repaired. A healthy
//! sync repairs nothing; the server counts repairs in `/metrics`, so a regression shows.
//!
//! The digest is order-free (a sum), so either side can build it in any order, and it names
//! versions only: local edits not yet accepted are excluded by id on both sides.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::PulledEntity;

/// Buckets per layer digest.
pub const DIGEST_BUCKETS: usize = 64;

/// Most entity ids a device may exclude from a verification (its unsent or refused edits).
pub const MAX_VERIFY_EXCLUDED: usize = 10_000;

/// Most entities one repair request may ask for.
pub const MAX_REPAIR_ENTITIES: usize = crate::MAX_PULL_ENTITIES;

fn mix64(mut z: u64) -> u64 {
    // splitmix64's finaliser: every input bit reaches every output bit.
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn entity_mix(entity: Uuid) -> u64 {
    let v = entity.as_u128();
    // Truncations are the point: the id's two halves are mixed into one word.
    #[allow(clippy::cast_possible_truncation)]
    mix64(v as u64 ^ mix64((v >> 64) as u64))
}

/// The bucket an entity falls in (independent of its version).
pub fn bucket_of(entity: Uuid) -> usize {
    // The remainder is below 64, so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation)]
    let b = (entity_mix(entity) % DIGEST_BUCKETS as u64) as usize;
    b
}

fn item(entity: Uuid, version: i64) -> u128 {
    #[allow(clippy::cast_sign_loss)]
    let hi = mix64(entity_mix(entity) ^ version as u64);
    let lo = mix64(hi ^ 0x5851_F42D_4C95_7F2D);
    (u128::from(hi) << 64) | u128::from(lo)
}

/// An order-free summary of `(entity, version)` pairs in [`DIGEST_BUCKETS`] buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    buckets: Vec<(u64, u128)>,
}

impl Default for Digest {
    fn default() -> Self {
        Digest { buckets: vec![(0, 0); DIGEST_BUCKETS] }
    }
}

impl Digest {
    pub fn add(&mut self, entity: Uuid, version: i64) {
        let b = &mut self.buckets[bucket_of(entity)];
        b.0 += 1;
        b.1 = b.1.wrapping_add(item(entity, version));
    }

    /// The buckets in wire form: `"{count:x}-{sum:032x}"` each.
    pub fn to_wire(&self) -> Vec<String> {
        self.buckets.iter().map(|(n, sum)| format!("{n:x}-{sum:032x}")).collect()
    }

    /// The buckets whose wire form differs from `other` (all of them when `other` is malformed).
    pub fn differing(&self, other: &[String]) -> Vec<usize> {
        let mine = self.to_wire();
        if other.len() != mine.len() {
            return (0..DIGEST_BUCKETS).collect();
        }
        mine.iter().zip(other).enumerate().filter(|(_, (a, b))| a != b).map(|(i, _)| i).collect()
    }
}

/// One layer's digest as a device sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerDigest {
    pub layer: String,
    /// [`DIGEST_BUCKETS`] strings from [`Digest::to_wire`].
    pub buckets: Vec<String>,
}

/// `POST /sync/verify` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub protocol: u32,
    pub replica: Uuid,
    /// The device's pull cursor after a completed pull: each layer is compared with the server's
    /// state as of the transaction the cursor is complete through.
    pub cursor: String,
    /// Entities with local changes not yet accepted (left out on both sides).
    #[serde(default)]
    pub exclude: Vec<Uuid>,
    pub layers: Vec<LayerDigest>,
}

/// An entity's server version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityVersion {
    pub entity: Uuid,
    pub version: i64,
}

/// The server's entities in one bucket that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketEntities {
    pub bucket: u32,
    pub entities: Vec<EntityVersion>,
}

/// One layer's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerVerdict {
    pub layer: String,
    /// The transaction the comparison was made as of.
    pub tx: i64,
    /// Empty when the device agrees with the server.
    pub differing: Vec<BucketEntities>,
}

/// `POST /sync/verify` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyResponse {
    pub protocol: u32,
    pub layers: Vec<LayerVerdict>,
}

impl VerifyResponse {
    pub fn agrees(&self) -> bool {
        self.layers.iter().all(|l| l.differing.is_empty())
    }
}

/// An entity of a layer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityRef {
    pub layer: String,
    pub entity: Uuid,
}

/// `POST /sync/repair` body: the entities a device holds differently from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepairRequest {
    pub protocol: u32,
    pub replica: Uuid,
    pub entities: Vec<EntityRef>,
}

/// `POST /sync/repair` answer: each entity as a pull would send it now (deleted ones without a
/// state, ones outside the replica's area with `left_area`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepairResponse {
    pub protocol: u32,
    pub entities: Vec<PulledEntity>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(0x0192_f3c4_0000_7000_8000_0000_0000_0000 + n)
    }

    #[test]
    fn digests_are_order_free_and_see_versions() {
        let mut a = Digest::default();
        let mut b = Digest::default();
        for n in 0..500 {
            a.add(id(n), 1 + (n as i64 % 3));
        }
        for n in (0..500).rev() {
            b.add(id(n), 1 + (n as i64 % 3));
        }
        assert_eq!(a, b);
        assert!(a.differing(&b.to_wire()).is_empty());
        let mut c = b.clone();
        c.add(id(1000), 1);
        assert_eq!(a.differing(&c.to_wire()), vec![bucket_of(id(1000))]);
        // Same entities, one version different: exactly that entity's bucket differs.
        let mut d = Digest::default();
        for n in 0..500 {
            d.add(id(n), if n == 7 { 9 } else { 1 + (n as i64 % 3) });
        }
        assert_eq!(a.differing(&d.to_wire()), vec![bucket_of(id(7))]);
        // A malformed digest differs everywhere rather than passing.
        assert_eq!(a.differing(&["0-0".to_owned()]).len(), DIGEST_BUCKETS);
        // Buckets spread: 500 ids touch most of the 64 buckets.
        assert!(a.to_wire().iter().filter(|w| !w.starts_with("0-")).count() > 55);
    }

    /// Golden messages every client must keep decoding, and the digest's wire form pinned.
    #[test]
    fn golden_verify_messages() {
        let mut d = Digest::default();
        d.add(id(3), 2);
        let wire = d.to_wire();
        let b = bucket_of(id(3));
        assert_eq!(b, 42);
        assert_eq!(wire[b], "1-5ee258fb64608bb6f4d86c8fc9d3d5e5");
        let req = r#"{"protocol":1,"replica":"0192f3c4-0000-7000-8000-000000000001","cursor":"5|manhole=9.9223372036854775807.9223372036854775807",
            "exclude":["0192f3c4-0000-7000-8000-000000000009"],"layers":[{"layer":"manhole","buckets":["0-00000000000000000000000000000000"]}]}"#;
        let r: VerifyRequest = serde_json::from_str(req).unwrap();
        assert_eq!(r.layers[0].buckets.len(), 1);
        let resp = r#"{"protocol":1,"layers":[{"layer":"manhole","tx":9,"differing":[{"bucket":42,"entities":[{"entity":"0192f3c4-0000-7000-8000-000000000003","version":2}]}]}]}"#;
        let v: VerifyResponse = serde_json::from_str(resp).unwrap();
        assert!(!v.agrees());
        assert_eq!(serde_json::to_value(&v).unwrap(), serde_json::from_str::<serde_json::Value>(resp).unwrap());
        let rep = r#"{"protocol":1,"replica":"0192f3c4-0000-7000-8000-000000000001","entities":[{"layer":"manhole","entity":"0192f3c4-0000-7000-8000-000000000003"}]}"#;
        let q: RepairRequest = serde_json::from_str(rep).unwrap();
        assert_eq!(q.entities[0].layer, "manhole");
        assert!(
            serde_json::from_str::<RepairRequest>(
                r#"{"protocol":1,"replica":"0192f3c4-0000-7000-8000-000000000001","entities":[],"x":1}"#
            )
            .is_err()
        );
    }
}
