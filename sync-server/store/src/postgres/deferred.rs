//! Deferred sync bookkeeping: a transaction's CRDT documents (`sk_sync_docs`) and conflict index
//! entries (`sk_conflicts`) are written by one statement per batch instead of one round trip per
//! entity (a sync push puts both for every entity it merges).
//!
//! Nothing reads these tables through a write transaction (the change feed, `sync_doc` and the
//! conflict list read committed data), so the writes wait until the commit, a full batch, or a
//! savepoint sent to the server (`tx.rs`: those queued before it are written first). The values
//! are checked at the call as before; a rollback to a savepoint drops those queued after it.
//! Several puts of one entity in a transaction end as the last one did, at the position of the
//! first (a document's `seq`, its change-feed key, is taken at its first insert, as before).

use std::collections::HashMap;

use super::pool::PgConn;
use crate::error::Result;

/// Entries per statement, at most; documents are also written once this many bytes wait.
const MAX_ITEMS: usize = 1000;
const MAX_DOC_BYTES: usize = 8 << 20;

struct DocPut {
    layer: String,
    id: uuid::Uuid,
    version: i64,
    doc: Vec<u8>,
}

struct ConflictPut {
    layer: String,
    id: uuid::Uuid,
    conflicts: i32,
    /// Sorted and without duplicates.
    authors: Vec<String>,
}

/// The bookkeeping writes of one transaction not yet sent.
#[derive(Default)]
pub(super) struct Bookkeeping {
    docs: Vec<DocPut>,
    conflicts: Vec<ConflictPut>,
    doc_bytes: usize,
}

/// How much was queued at a savepoint: (documents, conflict entries).
pub(super) type Mark = (usize, usize);

impl Bookkeeping {
    pub(super) fn put_doc(&mut self, layer: &str, id: uuid::Uuid, version: i64, doc: &[u8]) {
        self.doc_bytes += doc.len();
        self.docs.push(DocPut { layer: layer.to_owned(), id, version, doc: doc.to_vec() });
    }

    pub(super) fn put_conflicts(&mut self, layer: &str, id: uuid::Uuid, conflicts: i32, authors: &[String]) {
        let mut authors = authors.to_vec();
        authors.sort();
        authors.dedup();
        self.conflicts.push(ConflictPut { layer: layer.to_owned(), id, conflicts, authors });
    }

    pub(super) fn is_full(&self) -> bool {
        self.docs.len() >= MAX_ITEMS || self.conflicts.len() >= MAX_ITEMS || self.doc_bytes >= MAX_DOC_BYTES
    }

    pub(super) fn mark(&self) -> Mark {
        (self.docs.len(), self.conflicts.len())
    }

    /// Drops what was queued after `mark` (a rollback to a savepoint taken then).
    pub(super) fn truncate(&mut self, mark: Mark) {
        self.docs.truncate(mark.0);
        self.conflicts.truncate(mark.1);
        self.doc_bytes = self.docs.iter().map(|d| d.doc.len()).sum();
    }

    /// Takes what was queued after `mark`, leaving what came before.
    pub(super) fn split_off(&mut self, mark: Mark) -> Bookkeeping {
        let docs = self.docs.split_off(mark.0.min(self.docs.len()));
        let conflicts = self.conflicts.split_off(mark.1.min(self.conflicts.len()));
        self.doc_bytes = self.docs.iter().map(|d| d.doc.len()).sum();
        let doc_bytes = docs.iter().map(|d| d.doc.len()).sum();
        Bookkeeping { docs, conflicts, doc_bytes }
    }

    /// Writes everything queued as transaction `tx` at `at_us` (a new conflict entry's opening).
    pub(super) fn flush(&mut self, conn: &mut PgConn, tx: i64, at_us: i64) -> Result<()> {
        let Bookkeeping { docs, conflicts, .. } = std::mem::take(self);
        if !docs.is_empty() {
            let docs = last_per_entity(docs, |d| (d.layer.clone(), d.id));
            let layers: Vec<&str> = docs.iter().map(|d| d.layer.as_str()).collect();
            let ids: Vec<uuid::Uuid> = docs.iter().map(|d| d.id).collect();
            let versions: Vec<i64> = docs.iter().map(|d| d.version).collect();
            let bytes: Vec<&[u8]> = docs.iter().map(|d| d.doc.as_slice()).collect();
            conn.execute(
                "INSERT INTO sk_sync_docs (layer, entity_id, version, doc, tx) \
                 SELECT l, e, v, d, $5 FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::bytea[]) \
                 WITH ORDINALITY AS x (l, e, v, d, n) ORDER BY n \
                 ON CONFLICT (layer, entity_id) DO UPDATE SET version = excluded.version, doc = excluded.doc, tx = excluded.tx",
                &[&layers, &ids, &versions, &bytes, &tx],
            )?;
        }
        if !conflicts.is_empty() {
            let conflicts = last_per_entity(conflicts, |c| (c.layer.clone(), c.id));
            let layers: Vec<&str> = conflicts.iter().map(|c| c.layer.as_str()).collect();
            let ids: Vec<uuid::Uuid> = conflicts.iter().map(|c| c.id).collect();
            let counts: Vec<i32> = conflicts.iter().map(|c| c.conflicts).collect();
            let authors: Vec<String> =
                conflicts.iter().map(|c| serde_json::to_string(&c.authors).unwrap_or_else(|_| "[]".into())).collect();
            // Keys are distinct, so the deletions (count 0) and the upserts never meet.
            conn.execute(
                "WITH x AS (SELECT * FROM unnest($1::text[], $2::uuid[], $3::integer[], $4::text[]) \
                   WITH ORDINALITY AS x (l, e, c, a, n)), \
                 gone AS (DELETE FROM sk_conflicts k USING x WHERE x.c = 0 AND k.layer = x.l AND k.entity_id = x.e) \
                 INSERT INTO sk_conflicts (layer, entity_id, conflicts, authors, opened_us, tx) \
                 SELECT l, e, c, ARRAY(SELECT jsonb_array_elements_text(a::jsonb)), $5, $6 FROM x WHERE c > 0 ORDER BY n \
                 ON CONFLICT (layer, entity_id) DO UPDATE SET conflicts = excluded.conflicts, \
                 authors = excluded.authors, tx = excluded.tx",
                &[&layers, &ids, &counts, &authors, &at_us, &tx],
            )?;
        }
        Ok(())
    }
}

/// One entry per key: the last one put, at the position of the first.
fn last_per_entity<T>(items: Vec<T>, key: impl Fn(&T) -> (String, uuid::Uuid)) -> Vec<T> {
    let mut at: HashMap<(String, uuid::Uuid), usize> = HashMap::with_capacity(items.len());
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        match at.get(&key(&item)) {
            Some(&i) => out[i] = item,
            None => {
                at.insert(key(&item), out.len());
                out.push(item);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_put_of_an_entity_wins_at_its_first_position() {
        let id = |n: u128| uuid::Uuid::from_u128(n);
        let items = vec![("a", id(1), 1), ("a", id(2), 1), ("b", id(1), 1), ("a", id(1), 2), ("a", id(2), 3)];
        let out = last_per_entity(items, |(l, e, _)| ((*l).to_owned(), *e));
        assert_eq!(out, vec![("a", id(1), 2), ("a", id(2), 3), ("b", id(1), 1)]);
    }

    #[test]
    fn marks_split_and_truncate_what_came_after() {
        let mut b = Bookkeeping::default();
        b.put_doc("a", uuid::Uuid::nil(), 1, b"xx");
        let m = b.mark();
        b.put_doc("a", uuid::Uuid::max(), 1, b"yyy");
        b.put_conflicts("a", uuid::Uuid::max(), 1, &["li".into(), "li".into()]);
        let tail = b.split_off(m);
        assert_eq!((b.mark(), b.doc_bytes), ((1, 0), 2));
        assert_eq!((tail.mark(), tail.doc_bytes), ((1, 1), 3));
        assert_eq!(tail.conflicts[0].authors, vec!["li".to_owned()]);
        let mut t = tail;
        t.truncate((0, 0));
        assert_eq!((t.mark(), t.doc_bytes), ((0, 0), 0));
    }
}
