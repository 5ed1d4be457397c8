//! Bearer tokens and enrolment codes: random secrets handed out once, stored only as a hash.
//!
//! A secret is 32 bytes from the operating system's random generator (256 bits: guessing is
//! hopeless, so no salt or slow hash is needed), shown as base64url without padding. The database
//! keeps its SHA-256, so a stolen copy of `auth.sqlite` does not let anyone in.

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};

use crate::error::{AuthError, Result};
use crate::types::Secret;

pub(crate) const SECRET_BYTES: usize = 32;

/// A new random secret.
pub(crate) fn new_secret() -> Result<(Secret, [u8; 32])> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    let secret = Secret(Base64UrlUnpadded::encode_string(&bytes));
    let hash = hash_bytes(&bytes);
    Ok((secret, hash))
}

/// The stored hash of a secret as presented by a client, or `None` when it cannot be one of ours
/// (wrong length or alphabet) — which callers report like an unknown secret.
pub(crate) fn hash_presented(text: &str) -> Option<[u8; 32]> {
    let bytes = Base64UrlUnpadded::decode_vec(text.trim()).ok()?;
    (bytes.len() == SECRET_BYTES).then(|| hash_bytes(&bytes))
}

fn hash_bytes(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_43_base64url_characters_and_hash_back() {
        let (s, h) = new_secret().unwrap();
        assert_eq!(s.expose().len(), 43);
        assert!(s.expose().chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{}", s.expose());
        assert_eq!(hash_presented(s.expose()), Some(h));
        assert_eq!(hash_presented(&format!(" {}\n", s.expose())), Some(h));
        let (s2, h2) = new_secret().unwrap();
        assert_ne!(s, s2);
        assert_ne!(h, h2);
    }

    #[test]
    fn malformed_secrets_have_no_hash() {
        for bad in ["", "abc", "令牌", &"A".repeat(42), &"A".repeat(44), &format!("{}=", "A".repeat(43))] {
            assert_eq!(hash_presented(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hash_is_sha256_of_the_raw_bytes() {
        // 32 zero bytes.
        let zeros = "A".repeat(43);
        let h = hash_presented(&zeros).unwrap();
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925");
    }
}
