//! Writer identities. Every automerge change names the actor that wrote it; shikong has three kinds:
//! the deterministic **base** actor and **server** actor of each entity (derived from its UUID, so
//! every machine computes the same changes without exchanging them) and one random actor per
//! replica file (a device).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use shikong_model::EntityId;

use crate::error::Error;

/// A writer identity: 16 bytes, written as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Actor(pub [u8; 16]);

impl Actor {
    /// A fresh random actor for a new replica file (OS randomness).
    pub fn random() -> Actor {
        let mut bytes = [0u8; 16];
        #[expect(
            clippy::expect_used,
            reason = "without OS randomness no replica can get a unique identity; there is nothing sane to fall back on"
        )]
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        Actor(bytes)
    }

    /// The actor of the deterministic base change of `entity`.
    pub fn base(entity: EntityId) -> Actor {
        derive("shikong/base/", entity)
    }

    /// The actor of the deterministic server changes of `entity`.
    pub fn server(entity: EntityId) -> Actor {
        derive("shikong/server/", entity)
    }

    pub(crate) fn to_automerge(self) -> automerge::ActorId {
        automerge::ActorId::from(&self.0[..])
    }

    pub(crate) fn is(&self, other: &automerge::ActorId) -> bool {
        other.to_bytes() == self.0
    }
}

/// The first 16 bytes of SHA-256(`prefix` + hyphenated lowercase UUID).
fn derive(prefix: &str, entity: EntityId) -> Actor {
    let digest = Sha256::new().chain_update(prefix.as_bytes()).chain_update(entity.to_string().as_bytes()).finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Actor(bytes)
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl FromStr for Actor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || Error::Invalid(format!("actor `{s}`: expected 32 hexadecimal digits"));
        let digits: Vec<u8> = s
            .trim()
            .chars()
            .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        if digits.len() != 32 {
            return Err(bad());
        }
        let mut bytes = [0u8; 16];
        for (b, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *b = pair[0] << 4 | pair[1];
        }
        Ok(Actor(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: Option<&str>) {
        match (input.parse::<Actor>(), expected) {
            (Ok(a), Some(want)) => assert_eq!(a.to_string(), want),
            (Err(e), None) => assert!(e.to_string().contains("32 hexadecimal digits"), "{e}"),
            (got, want) => panic!("{input}: got {got:?}, wanted {want:?}"),
        }
    }

    #[test]
    fn hex_round_trip() {
        check("000102030405060708090a0b0c0d0e0f", Some("000102030405060708090a0b0c0d0e0f"));
        check("000102030405060708090A0B0C0D0E0F", Some("000102030405060708090a0b0c0d0e0f"));
        check(" ffffffffffffffffffffffffffffffff ", Some("ffffffffffffffffffffffffffffffff"));
        check("000102030405060708090a0b0c0d0e", None);
        check("000102030405060708090a0b0c0d0e0f00", None);
        check("00010203040506070809０a0b0c0d0e0f", None);
        check("", None);
        check("演员", None);
    }

    #[test]
    fn derived_actors_are_stable_and_distinct() {
        let id: EntityId = "0192f3c4-0000-7000-8000-000000000001".parse().unwrap();
        let other: EntityId = "0192f3c4-0000-7000-8000-000000000002".parse().unwrap();
        assert_eq!(Actor::base(id), Actor::base(id));
        assert_ne!(Actor::base(id), Actor::server(id));
        assert_ne!(Actor::base(id), Actor::base(other));
        // First halves of `printf 'shikong/base/<uuid>' | sha256sum` (and server).
        assert_eq!(Actor::base(id).to_string(), "87ebd3d951b40cf9f722bc0f642e6376");
        assert_eq!(Actor::server(id).to_string(), "b2b67857ddfcd90c18302194df3797a0");
        assert_ne!(Actor::random(), Actor::random());
    }
}
