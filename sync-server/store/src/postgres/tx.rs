//! Write transactions on PostgreSQL: every insert, update and delete writes a version, as on
//! SQLite (one version per entity per transaction, nothing written for a write that changes
//! nothing, no row for an empty transaction).
//!
//! A transaction takes the writer lock ([`super::WRITER_LOCK`]) right after `BEGIN` and reads the
//! last transaction number and time under it, so numbers follow commit order across every
//! connection and process. Unique codes and ids are checked before writing (an `ON CONFLICT DO
//! NOTHING` insert tells without raising): PostgreSQL aborts a transaction at its first failed
//! statement, and the store's contract is that a refused write leaves the transaction usable. A
//! statement that fails anyway poisons the transaction: it can still be rolled back to a
//! savepoint taken before, but never committed.
//!
//! Lazy savepoints: see `savepoints.rs`.
//! `get_many` reads many live rows in one statement and keeps them for the updates and deletes
//! that follow (each row used once, dropped when its entity is written, and those read after a
//! savepoint dropped by a rollback to it), so an entity of a push costs no round trip at all.

use std::collections::HashMap;

use jiff::Timestamp;
use shikong_model::{Bbox, EntityId, Feature, FieldType, TxId, Value};

use super::codec::{self, Args, Param};
use super::layers::{self, column, hist, table};
use super::read::{self, CurrentRow};
use super::{PgStore, pool::Pooled};
use crate::error::{Result, StoreError};
use crate::logic;
use crate::types::*;

mod savepoints;
use savepoints::Savepoint;

/// Per-layer state cached for the life of a transaction.
struct LayerState {
    layer: Layer,
    next_code: i64,
    code_dirty: bool,
    extent: Option<Bbox>,
    touched: bool,
    bulk: bool,
    /// Inserts buffered by a bulk load (`bulk.rs`); `None` writes each insert at once.
    pending: Option<super::bulk::Pending>,
    /// Updates not yet written (`updates.rs`).
    updates: super::updates::Updates,
    /// Live rows read by `get_many` and not written since, with the read's generation.
    cached: HashMap<uuid::Uuid, (u64, CurrentRow)>,
}

pub(crate) struct PgTx<'s> {
    conn: Pooled<'s>,
    /// This process's writer turn: released after the connection (fields drop in order).
    _turn: std::sync::MutexGuard<'s, ()>,
    tx: TxId,
    time: Timestamp,
    open: bool,
    layers: HashMap<String, LayerState>,
    stats: CommitInfo,
    /// Something besides versions was written (a layer definition, sync bookkeeping): the
    /// transaction commits even when it wrote no version.
    other_writes: bool,
    /// Only schema objects were made (`ensure_index`): commit them, record no transaction.
    schema_only: bool,
    /// A statement failed: PostgreSQL refuses everything until a rollback (to a savepoint).
    poisoned: bool,
    /// Counters (and the poisoned flag) at the open savepoint, restored on rollback to it.
    saved: Option<(CommitInfo, bool, bool)>,
    /// Documents and conflict entries not yet written (`deferred.rs`).
    book: super::deferred::Bookkeeping,
    sp: Option<Savepoint>,
    /// A savepoint released by the caller is still open on the server.
    release_owed: bool,
    /// A statement failed before a savepoint could be sent: no rollback to it can undo that.
    doomed: bool,
    cache_gen: u64,
}

impl<'s> PgTx<'s> {
    pub(crate) fn begin(store: &'s PgStore, meta: TxMeta) -> Result<Self> {
        let turn = store.writer_turn();
        let mut conn = store.conn()?;
        // `BEGIN` and the lock in one round trip (the key is a constant).
        conn.begin(&format!("BEGIN; SELECT pg_advisory_xact_lock({});", super::WRITER_LOCK))?;
        // Under the lock, in a new statement (READ COMMITTED): the last committed transaction,
        // and the next one recorded after it in the same statement. Transaction time is
        // strictly increasing even if a clock steps back (or another process's clock is ahead).
        let now_us = store.clock.now().as_microsecond();
        let row = conn.query_one(
            "INSERT INTO sk_transactions (tx, time_us, author, device, device_time, source, replica) \
             SELECT coalesce((SELECT max(tx) FROM sk_transactions), 0) + 1, \
             greatest($1::bigint, coalesce((SELECT max(time_us) FROM sk_transactions) + 1, $1::bigint)), \
             $2::text, $3::text, $4::text, $5::text, $6::uuid RETURNING tx, time_us",
            &[
                &now_us,
                &meta.author,
                &meta.device,
                &meta.device_time.map(|t| t.to_string()),
                &meta.source,
                &meta.replica,
            ],
        )?;
        let (tx, time_us): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        let tx = TxId(tx);
        Ok(PgTx {
            conn,
            _turn: turn,
            tx,
            time: codec::micros_to_ts(time_us),
            open: true,
            layers: HashMap::new(),
            stats: CommitInfo::default(),
            other_writes: false,
            schema_only: false,
            poisoned: false,
            saved: None,
            book: super::deferred::Bookkeeping::default(),
            sp: None,
            release_owed: false,
            doomed: false,
            cache_gen: 0,
        })
    }

    /// The connection, once a pending savepoint is sent.
    fn db(&mut self) -> Result<&mut super::PgConn> {
        self.ready()?;
        Ok(&mut self.conn)
    }

    /// Queues a bookkeeping write (`deferred.rs`), writing the queue when it is full.
    pub(super) fn bookkeeping(&mut self, put: impl FnOnce(&mut super::deferred::Bookkeeping)) -> Result<()> {
        put(&mut self.book);
        if self.book.is_full() {
            self.ready()?;
            self.book.flush(&mut self.conn, self.tx.0, self.time.as_microsecond())?;
        }
        Ok(())
    }

    fn get_many_inner(&mut self, layer: &str, ids: &[EntityId]) -> Result<HashMap<EntityId, StoredFeature>> {
        self.flush()?; // its own writes are what the transaction sees
        let l = self.layer(layer)?;
        let uuids: Vec<uuid::Uuid> = ids.iter().map(|id| id.0).collect();
        let rows = self.db()?.query(&read::current_select(&l, "t.entity_id = ANY ($1)"), &[&uuids])?;
        self.cache_gen += 1;
        let generation = self.cache_gen;
        let st = self.state(layer)?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            let cur = read::decode_current(&l, &r)?;
            out.insert(cur.feature.id, cur.clone().stored());
            st.cached.insert(cur.feature.id.0, (generation, cur));
        }
        Ok(out)
    }

    /// Forgets a row `get_many` read: its entity is being written.
    fn uncache(&mut self, layer: &str, id: EntityId) {
        if let Some(st) = self.layers.get_mut(layer) {
            st.cached.remove(&id.0);
        }
    }

    /// The connection and transaction id, for writes that are not versions (`sync.rs`).
    pub(super) fn writer(&mut self) -> Result<(&mut super::PgConn, TxId)> {
        let tx = self.tx;
        Ok((self.db()?, tx))
    }

    /// Records that something besides versions was written, so that commit keeps the transaction.
    pub(super) fn wrote_other(&mut self) {
        self.other_writes = true;
    }

    /// Passes `r` on, remembering a failed statement (see the module docs).
    pub(super) fn guard<T>(&mut self, r: Result<T>) -> Result<T> {
        if matches!(r, Err(StoreError::Postgres(_) | StoreError::Cancelled(_))) {
            self.poisoned = true;
        }
        r
    }

    /// Runs a statement that fails (tests of the poisoned state).
    #[cfg(test)]
    pub(super) fn fail_a_statement(&mut self) -> Result<()> {
        let r = self.db().and_then(|c| c.batch("SELECT 1/0"));
        self.guard(r)
    }

    fn state(&mut self, layer: &str) -> Result<&mut LayerState> {
        if !self.layers.contains_key(layer) {
            let l = layers::load(self.db()?, layer)?;
            let next_code: i64 =
                self.db()?.query_one("SELECT next_code FROM sk_layers WHERE name = $1", &[&layer])?.get(0);
            let st = LayerState {
                layer: l,
                next_code,
                code_dirty: false,
                extent: None,
                touched: false,
                bulk: false,
                pending: None,
                updates: super::updates::Updates::default(),
                cached: HashMap::new(),
            };
            self.layers.insert(layer.to_owned(), st);
        }
        self.layers.get_mut(layer).ok_or_else(|| StoreError::NoSuchLayer(layer.to_owned()))
    }

    fn layer(&mut self, layer: &str) -> Result<Layer> {
        Ok(self.state(layer)?.layer.clone())
    }

    /// The live table's columns (after `fid`) and their values for `f`.
    fn row(layer: &Layer, f: &Feature, version: i64, tx: TxId, device_time: Option<Timestamp>) -> Vec<(String, Param)> {
        let mut v: Vec<(String, Param)> = vec![
            ("geom".into(), codec::geom_param(f.geometry.as_ref())),
            ("entity_id".into(), Box::new(f.id.0)),
            ("code".into(), Box::new(f.code.clone())),
            ("valid_from".into(), Box::new(f.valid.from)),
            ("valid_to".into(), Box::new(f.valid.to)),
            ("sk_version".into(), Box::new(version)),
            ("sk_tx".into(), Box::new(tx.0)),
            ("sk_device_time".into(), Box::new(device_time)),
        ];
        for field in &layer.schema().fields {
            let value = f.properties.get(&field.name).unwrap_or(&Value::Null);
            v.push((column(field), codec::param(value, field.ty)));
        }
        v
    }

    /// `(columns, placeholders)` of a row, binding its values into `args`.
    fn bind(row: Vec<(String, Param)>, args: &mut Args) -> Vec<(String, String)> {
        row.into_iter()
            .map(|(col, p)| {
                let mark = args.add_boxed(p);
                let value = if col == "geom" { codec::geom_in(&mark) } else { mark };
                (col, value)
            })
            .collect()
    }

    fn code_taken(&mut self, layer: &str, code: &str, other_than: EntityId) -> Result<bool> {
        if let Some(p) = self.state(layer)?.pending.as_ref() {
            return Ok(p.codes.contains(code));
        }
        if !self.state(layer)?.updates.is_empty() {
            self.flush()?;
        }
        Ok(self
            .db()?
            .query_opt(
                &format!("SELECT 1 FROM {} WHERE code = $1 AND entity_id <> $2", table(layer)),
                &[&code, &other_than.0],
            )?
            .is_some())
    }

    fn generate_code(&mut self, layer: &str) -> Result<String> {
        loop {
            let st = self.state(layer)?;
            let code = format!("{}-{:06}", st.layer.name(), st.next_code);
            st.next_code += 1;
            st.code_dirty = true;
            if !self.code_taken(layer, &code, EntityId(uuid::Uuid::nil()))? {
                return Ok(code);
            }
        }
    }

    fn current(&mut self, layer: &str, key: &FeatureKey) -> Result<CurrentRow> {
        if let FeatureKey::Id(id) = key
            && let Some((_, row)) = self.state(layer)?.cached.remove(&id.0)
        {
            return Ok(row);
        }
        let l = self.layer(layer)?;
        read::current_row(self.db()?, &l, key)?
            .ok_or_else(|| StoreError::NotFound { layer: layer.to_owned(), key: key.to_string() })
    }

    /// The statement that moves the state of `cur` into history as a closed version
    /// `[cur.tx, self.tx)`, its values bound into `args`: a data-modifying `WITH` of the
    /// statement that replaces or removes the live row, so both are one round trip.
    fn archive(&self, layer: &Layer, cur: &CurrentRow, args: &mut Args) -> String {
        let f = &cur.feature;
        let op = if cur.version == 1 { "insert" } else { "update" };
        let values = [
            args.add(f.id.0),
            args.add(cur.version),
            args.add(op),
            args.add(cur.tx.0),
            args.add(self.tx.0),
            args.add(f.code.clone()),
            codec::geom_in(&args.add_boxed(codec::geom_param(f.geometry.as_ref()))),
            args.add(f.valid.from),
            args.add(f.valid.to),
            args.add(read::props_json(layer, &f.properties)),
            args.add(cur.device_time),
        ];
        format!(
            "INSERT INTO {} (entity_id, version, op, tx_from, tx_to, code, geom, valid_from, valid_to, props, device_time) \
             VALUES ({})",
            hist(layer.name()),
            values.join(", ")
        )
    }

    fn grow_extent(&mut self, layer: &str, f: &Feature) -> Result<()> {
        let st = self.state(layer)?;
        st.touched = true;
        logic::grow_extent(&mut st.extent, f);
        Ok(())
    }

    /// Inserts a live row; `Err(DuplicateCode/DuplicateId)` without aborting the transaction.
    /// `unseen`: the id must not be in the history table either (ids are never reused), checked
    /// by the same statement.
    fn insert_row(
        &mut self,
        l: &Layer,
        f: &Feature,
        version: i64,
        device_time: Option<Timestamp>,
        unseen: bool,
    ) -> Result<()> {
        let mut args = Args::default();
        let cols = Self::bind(Self::row(l, f, version, self.tx, device_time), &mut args);
        let names = cols.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(", ");
        let sql = if unseen {
            // `SELECT` gives its values no target types: each is cast to its column's.
            let mut types = vec!["", "uuid", "text", "timestamptz", "timestamptz", "bigint", "bigint", "timestamptz"];
            types.extend(l.schema().fields.iter().map(|f| codec::column_type(f.ty)));
            let values: Vec<String> = cols
                .iter()
                .zip(types)
                .map(|((_, v), ty)| if ty.is_empty() { v.clone() } else { format!("{v}::{ty}") })
                .collect();
            let id = args.add(f.id.0);
            format!(
                "INSERT INTO {} ({names}) SELECT {} WHERE NOT EXISTS (SELECT 1 FROM {} WHERE entity_id = {id}) \
                 ON CONFLICT DO NOTHING RETURNING fid",
                table(l.name()),
                values.join(", "),
                hist(l.name())
            )
        } else {
            format!(
                "INSERT INTO {} ({names}) VALUES ({}) ON CONFLICT DO NOTHING RETURNING fid",
                table(l.name()),
                cols.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(", ")
            )
        };
        if self.db()?.query_opt(&sql, &args.refs())?.is_some() {
            return Ok(());
        }
        if unseen
            && self
                .conn
                .query_opt(&format!("SELECT 1 FROM {} WHERE entity_id = $1 LIMIT 1", hist(l.name())), &[&f.id.0])?
                .is_some()
        {
            return Err(StoreError::DuplicateId { layer: l.name().to_owned(), id: f.id.to_string() });
        }
        let id_live = self
            .conn
            .query_opt(&format!("SELECT 1 FROM {} WHERE entity_id = $1", table(l.name())), &[&f.id.0])?
            .is_some();
        Err(if id_live {
            StoreError::DuplicateId { layer: l.name().to_owned(), id: f.id.to_string() }
        } else {
            StoreError::DuplicateCode { layer: l.name().to_owned(), code: f.code.clone() }
        })
    }

    fn record_blob_refs(&mut self, layer: &str, f: &Feature) -> Result<()> {
        for v in f.properties.values() {
            if let Value::Attachments(list) = v {
                for sha in list {
                    self.db()?.execute(
                        "INSERT INTO sk_blob_refs (sha256, layer) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                        &[sha, &layer],
                    )?;
                }
            }
        }
        Ok(())
    }

    fn validate_live_features(&mut self, layer: &Layer) -> Result<()> {
        for r in self.db()?.query(&read::current_select(layer, ""), &[])? {
            let cur = read::decode_current(layer, &r)?;
            layer
                .schema()
                .validate(&cur.feature.properties)
                .map_err(|e| logic::unfit_for_schema(layer, &cur.feature, e))?;
        }
        Ok(())
    }

    fn insert_inner(&mut self, layer: &str, mut f: NewFeature) -> Result<EntityId> {
        let generated = f.id.is_none();
        let id = f.id.unwrap_or_else(|| EntityId(uuid::Uuid::now_v7()));
        let l = self.layer(layer)?;
        self.uncache(layer, id);
        let code = match f.code.take() {
            Some(c) => c,
            None => self.generate_code(layer)?,
        };
        let (feature, device_time) = f.into_feature(id, code);
        let feature = logic::check(&l, feature, None)?;
        if self.state(layer)?.pending.is_some() {
            self.buffer_insert(&l, &feature, device_time)?;
        } else {
            if !self.state(layer)?.updates.is_empty() {
                self.flush()?; // a waiting update may hold or free this code
            }
            self.insert_now(&l, &feature, generated, device_time)?;
        }
        self.record_blob_refs(layer, &feature)?;
        self.grow_extent(layer, &feature)?;
        self.stats.inserted += 1;
        Ok(id)
    }

    /// Queues an insert into a buffered layer, refusing a duplicate id or code from memory.
    fn buffer_insert(&mut self, l: &Layer, f: &Feature, device_time: Option<Timestamp>) -> Result<()> {
        let row = Self::row(l, f, 1, self.tx, device_time);
        let layer = l.name();
        let Some(p) = self.layers.get_mut(layer).and_then(|st| st.pending.as_mut()) else {
            return Err(StoreError::NoSuchLayer(layer.to_owned()));
        };
        if p.ids.contains(&f.id.0) {
            return Err(StoreError::DuplicateId { layer: layer.to_owned(), id: f.id.to_string() });
        }
        if p.codes.contains(&f.code) {
            return Err(StoreError::DuplicateCode { layer: layer.to_owned(), code: f.code.clone() });
        }
        p.push(f.id.0, &f.code, row);
        if p.is_full() {
            self.ready()?;
            if let Some(p) = self.layers.get_mut(layer).and_then(|st| st.pending.as_mut()) {
                p.spill(&mut self.conn, layer)?; // to the staging table: sorted in at the flush
            }
        }
        Ok(())
    }

    /// Writes buffered inserts (before anything that could see them).
    fn flush(&mut self) -> Result<()> {
        self.ready()?;
        for (name, st) in &mut self.layers {
            if let Some(p) = st.pending.as_mut() {
                p.flush(&mut self.conn, name)?;
            }
            st.updates.flush(&mut self.conn, &st.layer, self.tx.0)?;
        }
        Ok(())
    }

    /// Stops buffering inserts, writing what waits, if any layer buffers them.
    fn end_insert_buffers(&mut self) -> Result<()> {
        if self.layers.values().any(|s| s.pending.is_some()) {
            self.unbuffer()?;
        }
        Ok(())
    }

    /// Writes buffered inserts and stops buffering (before a write other than an insert).
    fn unbuffer(&mut self) -> Result<()> {
        self.flush()?;
        for st in self.layers.values_mut() {
            st.pending = None;
        }
        Ok(())
    }

    fn insert_now(
        &mut self,
        l: &Layer,
        feature: &Feature,
        generated: bool,
        device_time: Option<Timestamp>,
    ) -> Result<()> {
        // Ids are never reused, not even those of deleted entities: a given one is checked
        // against history by the insert itself.
        self.insert_row(l, feature, 1, device_time, !generated)
    }

    fn update_inner(&mut self, layer: &str, key: &FeatureKey, patch: Patch) -> Result<Option<i64>> {
        if self.state(layer)?.updates.touches(key) {
            self.flush()?;
        }
        let mut cur = self.current(layer, key)?;
        if self.state(layer)?.updates.has_entity(cur.feature.id.0) {
            self.flush()?;
            cur = self.current(layer, key)?;
        }
        let l = self.layer(layer)?;
        let patch_device_time = patch.device_time;
        let next = logic::check(&l, patch.apply_to(&cur.feature), Some(&cur.feature))?;
        if next == cur.feature {
            self.stats.unchanged += 1;
            return Ok(None);
        }
        if next.code != cur.feature.code && self.code_taken(layer, &next.code, next.id)? {
            return Err(StoreError::DuplicateCode { layer: layer.to_owned(), code: next.code });
        }
        let archive = cur.tx != self.tx;
        let version = if archive {
            self.stats.updated += 1;
            cur.version + 1
        } else {
            cur.version
        };
        let row = Self::row(&l, &next, version, self.tx, patch_device_time);
        let geom_changed = next.geometry != cur.feature.geometry;
        let tx = self.tx.0;
        self.uncache(layer, next.id);
        if self.state(layer)?.updates.len() + 1 >= super::updates::MAX_ITEMS {
            self.ready()?;
        }
        let st = self.layers.get_mut(layer).ok_or_else(|| StoreError::NoSuchLayer(layer.to_owned()))?;
        st.updates.push(&l, &cur, archive, &next.code, row, geom_changed);
        if st.updates.is_full() {
            st.updates.flush(&mut self.conn, &st.layer, tx)?;
        }
        self.record_blob_refs(layer, &next)?;
        self.grow_extent(layer, &next)?;
        Ok(Some(version))
    }

    fn delete_inner(&mut self, layer: &str, key: &FeatureKey) -> Result<()> {
        let cur = self.current(layer, key)?;
        self.uncache(layer, cur.feature.id);
        let l = self.layer(layer)?;
        // The last state into history, a tombstone after it, the live row gone: one statement.
        let mut args = Args::default();
        let archived = self.archive(&l, &cur, &mut args);
        let (id, version, tx, code) = (
            args.add(cur.feature.id.0),
            args.add(cur.version + 1),
            args.add(self.tx.0),
            args.add(cur.feature.code.clone()),
        );
        self.db()?.execute(
            &format!(
                "WITH sk_archived AS ({archived}), sk_tombstone AS (INSERT INTO {h} (entity_id, version, op, tx_from, tx_to, \
                 code, props) VALUES ({id}, {version}, 'delete', {tx}, NULL, {code}, '{{}}')) \
                 DELETE FROM {t} WHERE entity_id = {id}",
                h = hist(layer),
                t = table(layer)
            ),
            &args.refs(),
        )?;
        self.state(layer)?.touched = true;
        self.stats.deleted += 1;
        Ok(())
    }

    fn restore_inner(&mut self, layer: &str, id: EntityId, mut f: NewFeature) -> Result<i64> {
        let l = self.layer(layer)?;
        self.uncache(layer, id);
        if read::current_row(self.db()?, &l, &FeatureKey::Id(id))?.is_some() {
            return Err(StoreError::InvalidArgument(format!(
                "layer `{layer}`: entity {id} is live; only deleted entities are restored"
            )));
        }
        let h = hist(layer);
        let tomb = self.db()?.query_opt(
            &format!(
                "SELECT hid, version FROM {h} WHERE entity_id = $1 AND op = 'delete' AND tx_to IS NULL \
                 ORDER BY version DESC LIMIT 1"
            ),
            &[&id.0],
        )?;
        let Some(tomb) = tomb else {
            return Err(StoreError::NotFound { layer: layer.to_owned(), key: format!("deleted entity {id}") });
        };
        let (hid, tomb_version): (i64, i64) = (tomb.get(0), tomb.get(1));
        let code = match f.code.take() {
            Some(c) => c,
            None => self.generate_code(layer)?,
        };
        let (feature, device_time) = f.into_feature(id, code);
        let feature = logic::check(&l, feature, None)?;
        let version = tomb_version + 1;
        self.insert_row(&l, &feature, version, device_time, false)?;
        // The tombstone stops being the entity's latest version at this transaction.
        let tx = self.tx.0;
        self.db()?.execute(&format!("UPDATE {h} SET tx_to = $2 WHERE hid = $1"), &[&hid, &tx])?;
        self.record_blob_refs(layer, &feature)?;
        self.grow_extent(layer, &feature)?;
        self.stats.updated += 1;
        Ok(version)
    }

    fn ensure_index_inner(&mut self, layer: &str, fields: &[&str]) -> Result<()> {
        let l = self.layer(layer)?;
        let mut cols = Vec::with_capacity(fields.len());
        for field in fields {
            let f = logic::index_field(&l, field)?;
            cols.push(column(f));
        }
        if cols.is_empty() {
            return Ok(());
        }
        let idx = layers::field_index(layer, &cols);
        self.db()?.batch(&format!("CREATE INDEX IF NOT EXISTS {idx} ON {} ({});", table(layer), cols.join(", ")))?;
        self.schema_only = true;
        Ok(())
    }

    fn find_by_field_inner(&mut self, layer: &str, field: &str, value: &Value) -> Result<Option<EntityId>> {
        let l = self.layer(layer)?;
        let (col, param): (String, Param) = match field {
            "code" => ("code".into(), codec::param(value, FieldType::Text)),
            "entity_id" => {
                let id = match value {
                    Value::Text(s) => s.parse::<uuid::Uuid>().ok(),
                    _ => None,
                };
                ("entity_id".into(), Box::new(id))
            }
            _ => {
                let f = logic::upsert_key_field(&l, field)?;
                (column(f), codec::param(value, f.ty))
            }
        };
        // An index makes repeated upserts by this key cheap; it stays for later imports.
        let idx = layers::field_index(layer, std::slice::from_ref(&col));
        self.db()?.batch(&format!("CREATE INDEX IF NOT EXISTS {idx} ON {} ({col});", table(layer)))?;
        let mut args = Args::default();
        let mark = args.add_boxed(param);
        let rows = self
            .conn
            .query(&format!("SELECT entity_id FROM {} WHERE {col} = {mark} LIMIT 2", table(layer)), &args.refs())?;
        match rows.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(EntityId(one.try_get(0)?))),
            _ => Err(StoreError::AmbiguousKey { layer: layer.to_owned(), field: field.to_owned(), count: rows.len() }),
        }
    }

    fn commit_inner(&mut self) -> Result<CommitInfo> {
        if self.poisoned || self.doomed {
            return Err(StoreError::CommitFailed("a statement of this transaction failed; nothing was written".into()));
        }
        let r = self.flush();
        self.guard(r)?;
        let (tx, at_us) = (self.tx.0, self.time.as_microsecond());
        let r = self.book.flush(&mut self.conn, tx, at_us);
        self.guard(r)?;
        let dirty: Vec<(String, Option<Bbox>, bool, bool, i64)> = self
            .layers
            .values()
            .filter(|s| s.touched || s.bulk || s.code_dirty)
            .map(|s| (s.layer.name().to_owned(), s.extent, s.bulk, s.code_dirty, s.next_code))
            .collect();
        for (name, extent, bulk, code_dirty, next_code) in dirty {
            if bulk {
                self.conn.execute(
                    &format!(
                        "UPDATE sk_layers SET (min_x, min_y, max_x, max_y) = \
                         (SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM {}) x) \
                         WHERE name = $1",
                        table(&name)
                    ),
                    &[&name],
                )?;
            } else if let Some(e) = extent {
                self.conn.execute(
                    "UPDATE sk_layers SET min_x = least(coalesce(min_x, $2), $2), max_x = greatest(coalesce(max_x, $3), $3), \
                     min_y = least(coalesce(min_y, $4), $4), max_y = greatest(coalesce(max_y, $5), $5) WHERE name = $1",
                    &[&name, &e.min_x, &e.max_x, &e.min_y, &e.max_y],
                )?;
            }
            if code_dirty {
                self.conn.execute("UPDATE sk_layers SET next_code = $2 WHERE name = $1", &[&name, &next_code])?;
            }
        }
        let stats = self.stats;
        if stats.versions_written() == 0 && !self.other_writes {
            self.open = false;
            if self.schema_only {
                // An index is no change to the data: keep it, record no transaction.
                self.conn.execute("DELETE FROM sk_transactions WHERE tx = $1", &[&self.tx.0])?;
                self.conn.finish("COMMIT")?;
            } else {
                // Nothing happened: leave no empty transaction behind.
                self.conn.finish("ROLLBACK")?;
            }
            return Ok(CommitInfo { tx: None, ..stats });
        }
        self.open = false;
        // Other processes' watchers wake at the commit (`crate::watch`; delivered only if it
        // commits, after it is visible).
        self.conn.execute("SELECT pg_notify($1, $2)", &[&crate::watch::PG_CHANNEL, &self.tx.0.to_string()])?;
        self.conn.finish("COMMIT")?;
        Ok(CommitInfo { tx: Some(self.tx), ..stats })
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if self.open {
            // The pooled connection rolls back an open transaction when it is returned; a
            // failure there drops the connection (and PostgreSQL rolls back with it).
            let _ = self.conn.finish("ROLLBACK");
        }
    }
}

impl crate::StoreTx for PgTx<'_> {
    fn id(&self) -> (TxId, Timestamp) {
        (self.tx, self.time)
    }

    fn create_layer(&mut self, def: LayerDef) -> Result<Layer> {
        let tx = self.tx;
        let r = self.db().and_then(|c| layers::create(c, def, tx));
        let l = self.guard(r)?;
        self.other_writes = true;
        Ok(l)
    }

    fn update_layer(&mut self, name: &str, def: LayerDef) -> Result<Layer> {
        let r = (|| {
            self.unbuffer()?;
            let old = layers::load(self.db()?, name)?;
            let tightened = old.def.schema != def.schema;
            let tx = self.tx;
            let l = layers::update(self.db()?, &old, def, tx)?;
            if tightened {
                self.validate_live_features(&l)?;
            }
            Ok(l)
        })();
        let l = self.guard(r)?;
        self.layers.remove(name);
        self.other_writes = true;
        Ok(l)
    }

    fn bulk_load(&mut self, layer: &str) -> Result<()> {
        // The GiST index takes rows as they come; only the extent is computed once at commit.
        let r = (|| {
            let any = self.db()?.query_opt(&format!("SELECT 1 FROM {} LIMIT 1", table(layer)), &[])?;
            if any.is_none() {
                let seen = self.db()?.query_opt(&format!("SELECT 1 FROM {} LIMIT 1", hist(layer)), &[])?;
                let st = self.state(layer)?;
                st.bulk = true;
                if seen.is_none() && st.pending.is_none() {
                    // Nothing in either table: inserts can be buffered (`bulk.rs`).
                    st.pending = Some(super::bulk::Pending::default());
                }
            }
            Ok(())
        })();
        self.guard(r)
    }

    fn insert(&mut self, layer: &str, f: NewFeature) -> Result<EntityId> {
        let r = self.insert_inner(layer, f);
        self.guard(r)
    }

    fn update(&mut self, layer: &str, key: &FeatureKey, patch: Patch) -> Result<Option<i64>> {
        let r = self.end_insert_buffers().and_then(|()| self.update_inner(layer, key, patch));
        self.guard(r)
    }

    fn delete(&mut self, layer: &str, key: &FeatureKey) -> Result<()> {
        let r = self.unbuffer().and_then(|()| self.delete_inner(layer, key));
        self.guard(r)
    }

    fn restore(&mut self, layer: &str, id: EntityId, f: NewFeature) -> Result<i64> {
        let r = self.unbuffer().and_then(|()| self.restore_inner(layer, id, f));
        self.guard(r)
    }

    fn find_by_field(&mut self, layer: &str, field: &str, value: &Value) -> Result<Option<EntityId>> {
        let r = self.flush().and_then(|()| self.find_by_field_inner(layer, field, value));
        self.guard(r)
    }

    fn get(&mut self, layer: &str, key: &FeatureKey) -> Result<Option<StoredFeature>> {
        let r = self.flush().and_then(|()| read::get(&mut self.conn, layer, key, None));
        self.guard(r)
    }

    fn get_many(&mut self, layer: &str, ids: &[EntityId]) -> Result<HashMap<EntityId, StoredFeature>> {
        let r = self.get_many_inner(layer, ids);
        self.guard(r)
    }

    fn ensure_index(&mut self, layer: &str, fields: &[&str]) -> Result<()> {
        let r = self.flush().and_then(|()| self.ensure_index_inner(layer, fields));
        self.guard(r)
    }

    fn savepoint(&mut self) -> Result<()> {
        self.take_savepoint()
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        self.rollback_savepoint()
    }

    fn release_savepoint(&mut self) -> Result<()> {
        self.release_lazy_savepoint()
    }

    fn put_outbox(&mut self, id: uuid::Uuid, payload: &str) -> Result<()> {
        let tx = self.tx.0;
        let r = self
            .db()
            .and_then(|c| {
                c.execute("INSERT INTO sk_audit_outbox (id, tx, payload) VALUES ($1, $2, $3)", &[&id, &tx, &payload])
            })
            .map(|_| ());
        self.guard(r)
    }

    fn commit(mut self: Box<Self>) -> Result<CommitInfo> {
        let r = self.commit_inner();
        if r.is_err() && self.open {
            self.open = false;
            let _ = self.conn.finish("ROLLBACK");
        }
        r
    }
}
