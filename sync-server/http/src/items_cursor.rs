//! Keyset cursors for paging OGC API – Features items (issue 14).
//!
//! `offset` is capped (the store skips rows one by one), so a client following `next` links
//! through a large collection — GDAL does — would be refused past the cap. The `next` link
//! carries a `cursor` instead: the last entity id of the page (pages are in entity id order) and
//! the transaction the first page read, so that every later page shows the collection as of that
//! transaction — a feature added, changed or deleted by someone else while a client pages is
//! listed exactly once, as it was, or (added later) not at all. Each page then costs a seek, not a
//! skip over everything before it.
//!
//! A cursor is opaque text (base64url): a version byte, the transaction, the entity id, a digest
//! of the request's selecting parameters (a cursor belongs to the query it was issued for) and a
//! checksum. A cursor of a `sortby` query (version 2, `items_sort`) also carries the last
//! feature's key values, so the next page starts after that (key, id) position; the digest then
//! covers `sortby`, so a cursor continues only the order it was issued for. It is
//! integrity-checked, not secret: a hand-made cursor can only ask for what an
//! `as-of` request may ask anyway. Anything that does not decode, check or match is a 400 naming
//! `cursor`.

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};
use shikong_model::{EntityId, TxId};

use super::problem::{ApiError, ApiResult};

const VERSION: u8 = 1;
/// The version of a sorted query's cursor (with the key values after the fixed part).
const VERSION_SORTED: u8 = 2;
/// Most bytes of key values a sorted cursor carries (long text keys make long cursors).
const MAX_KEY_BYTES: usize = 8 * 1024;
/// version + transaction + entity id + query digest + checksum.
const LEN: usize = 1 + 8 + 16 + 8 + 4;

/// Where the previous page ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The transaction every page shows the collection as of.
    pub tx: TxId,
    /// The last entity of the previous page.
    pub after: EntityId,
}

/// The digest of what selects features: the collection and the selecting parameters with their
/// values (`limit`, `crs`, `f` may change between pages).
pub fn query_digest(collection: &str, selecting: &[(&str, String)]) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(collection.as_bytes());
    for (k, v) in selecting {
        h.update([0]);
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
    }
    let d = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

fn checksum(body: &[u8]) -> [u8; 4] {
    let d = Sha256::digest(body);
    [d[0], d[1], d[2], d[3]]
}

pub fn encode(c: Cursor, query: [u8; 8]) -> String {
    let mut b = Vec::with_capacity(LEN);
    b.push(VERSION);
    b.extend_from_slice(&c.tx.0.to_be_bytes());
    b.extend_from_slice(c.after.0.as_bytes());
    b.extend_from_slice(&query);
    let sum = checksum(&b);
    b.extend_from_slice(&sum);
    Base64UrlUnpadded::encode_string(&b)
}

/// The cursor `text` for a request whose selecting parameters digest to `query`.
pub fn decode(text: &str, query: [u8; 8]) -> ApiResult<Cursor> {
    let bad = |why: &str| {
        ApiError::bad_parameter(
            "cursor",
            format!("{why}; use the `next` link of the previous page as it is, or start again without `cursor`"),
        )
    };
    let b = Base64UrlUnpadded::decode_vec(text).map_err(|_| bad("not a cursor this server issued"))?;
    if b.first() == Some(&VERSION_SORTED) {
        return Err(bad("the cursor belongs to another query (sortby differs)"));
    }
    if b.len() != LEN || b[0] != VERSION {
        return Err(bad("not a cursor this server issued"));
    }
    let (body, sum) = b.split_at(LEN - 4);
    if checksum(body) != sum {
        return Err(bad("the cursor is damaged"));
    }
    if body[25..33] != query {
        return Err(bad("the cursor belongs to another query (collection, bbox, datetime, filter or as-of differ)"));
    }
    let mut tx = [0u8; 8];
    tx.copy_from_slice(&body[1..9]);
    let mut id = [0u8; 16];
    id.copy_from_slice(&body[9..25]);
    let tx = i64::from_be_bytes(tx);
    if tx < 1 {
        return Err(bad("the cursor names no transaction"));
    }
    Ok(Cursor { tx: TxId(tx), after: EntityId(uuid::Uuid::from_bytes(id)) })
}

/// A sorted query's cursor: the position and the key values of the last feature of the page.
pub fn encode_sorted(c: Cursor, key: &[u8], query: [u8; 8]) -> String {
    let mut b = Vec::with_capacity(LEN + key.len());
    b.push(VERSION_SORTED);
    b.extend_from_slice(&c.tx.0.to_be_bytes());
    b.extend_from_slice(c.after.0.as_bytes());
    b.extend_from_slice(&query);
    b.extend_from_slice(key);
    let sum = checksum(&b);
    b.extend_from_slice(&sum);
    Base64UrlUnpadded::encode_string(&b)
}

/// [`encode_sorted`] back: the cursor and the key bytes (decoded by the order that issued them).
pub fn decode_sorted(text: &str, query: [u8; 8]) -> ApiResult<(Cursor, Vec<u8>)> {
    let bad = |why: &str| {
        ApiError::bad_parameter(
            "cursor",
            format!("{why}; use the `next` link of the previous page as it is, or start again without `cursor`"),
        )
    };
    if text.len() > (LEN + MAX_KEY_BYTES) * 4 / 3 + 4 {
        return Err(bad("not a cursor this server issued (too long)"));
    }
    let b = Base64UrlUnpadded::decode_vec(text).map_err(|_| bad("not a cursor this server issued"))?;
    if b.len() < LEN || b[0] != VERSION_SORTED {
        return Err(bad(if b.first() == Some(&VERSION) {
            "the cursor belongs to another query (sortby differs)"
        } else {
            "not a cursor this server issued"
        }));
    }
    let (body, sum) = b.split_at(b.len() - 4);
    if checksum(body) != sum {
        return Err(bad("the cursor is damaged"));
    }
    if body[25..33] != query {
        return Err(bad(
            "the cursor belongs to another query (collection, bbox, datetime, filter, as-of or sortby differ)",
        ));
    }
    let mut tx = [0u8; 8];
    tx.copy_from_slice(&body[1..9]);
    let mut id = [0u8; 16];
    id.copy_from_slice(&body[9..25]);
    let tx = i64::from_be_bytes(tx);
    if tx < 1 {
        return Err(bad("the cursor names no transaction"));
    }
    Ok((Cursor { tx: TxId(tx), after: EntityId(uuid::Uuid::from_bytes(id)) }, body[33..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_damage_and_other_queries() {
        let q = query_digest("manhole", &[("bbox", "1,2,3,4".into())]);
        let c = Cursor { tx: TxId(42), after: EntityId(uuid::Uuid::now_v7()) };
        let text = encode(c, q);
        assert_eq!(decode(&text, q).unwrap(), c);
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{text}");
        assert!(decode(&text, query_digest("manhole", &[])).is_err());
        assert!(decode(&text, query_digest("road", &[("bbox", "1,2,3,4".into())])).is_err());
        let mut damaged = text.clone().into_bytes();
        damaged[10] = if damaged[10] == b'A' { b'B' } else { b'A' };
        assert!(decode(std::str::from_utf8(&damaged).unwrap(), q).is_err());
        for bad in ["", "x", "井盖", &text[..text.len() - 2]] {
            assert!(decode(bad, q).is_err(), "{bad}");
        }
    }
}
