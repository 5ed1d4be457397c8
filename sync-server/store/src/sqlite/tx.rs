//! Write transactions: every insert, update and delete writes a version.
//!
//! One version per entity per transaction: touching an entity twice in one transaction rewrites the
//! version that transaction created instead of stacking versions no instant could ever see.

use std::collections::HashMap;
use std::sync::MutexGuard;

use jiff::Timestamp;
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use shikong_gpkg::quote_ident;
use shikong_model::{Bbox, EntityId, Feature, TxId, Value, gpkg_blob};

use super::codec;
use super::group::{Durability, Membership, WriterConn};
use super::layers::{self, hist_rtree, hist_table};
use super::read::{self, CurrentRow};
use crate::error::{Result, StoreError};
use crate::logic;
use crate::types::*;

const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;

/// Per-layer state cached for the life of a transaction.
struct LayerState {
    /// Shared, so that each row's write takes a pointer, not a copy of the schema and theme.
    layer: std::sync::Arc<Layer>,
    insert_sql: std::sync::Arc<str>,
    update_sql: std::sync::Arc<str>,
    /// The update for an unchanged geometry: `geom` (and `entity_id`) stay out of the SET list,
    /// so the GeoPackage R-tree triggers (`AFTER UPDATE OF geom`) and the id index are not
    /// touched. Same parameter numbering as `update_sql`.
    update_attrs_sql: std::sync::Arc<str>,
    bulk: bool,
    next_code: i64,
    code_dirty: bool,
    extent: Option<Bbox>,
    touched: bool,
}

impl LayerState {
    fn new(conn: &Connection, layer: Layer) -> Result<Self> {
        let t = quote_ident(layer.name());
        let fields: Vec<String> = layer.schema().fields.iter().map(|f| quote_ident(&f.name)).collect();
        let mut cols = vec!["geom".to_owned()];
        cols.extend(layers::SYSTEM_COLUMNS.iter().map(|c| (*c).to_owned()));
        cols.extend(fields.iter().cloned());
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let insert_sql = format!("INSERT INTO {t} ({}) VALUES ({})", cols.join(", "), marks.join(", "));
        let sets: Vec<String> = cols.iter().zip(&marks).map(|(c, m)| format!("{c} = {m}")).collect();
        let update_sql = format!("UPDATE {t} SET {} WHERE fid = ?{}", sets.join(", "), cols.len() + 1);
        let attr_sets: Vec<&str> = sets
            .iter()
            .filter(|s| !s.starts_with("geom =") && !s.starts_with("entity_id ="))
            .map(String::as_str)
            .collect();
        let update_attrs_sql = format!("UPDATE {t} SET {} WHERE fid = ?{}", attr_sets.join(", "), cols.len() + 1);
        let next_code: i64 =
            conn.query_row("SELECT next_code FROM sk_layers WHERE name = ?1", [layer.name()], |r| r.get(0))?;
        Ok(LayerState {
            layer: std::sync::Arc::new(layer),
            insert_sql: insert_sql.into(),
            update_sql: update_sql.into(),
            update_attrs_sql: update_attrs_sql.into(),
            bulk: false,
            next_code,
            code_dirty: false,
            extent: None,
            touched: false,
        })
    }
}

pub(crate) struct SqliteTx<'s> {
    conn: MutexGuard<'s, WriterConn>,
    store: &'s super::SqliteStore,
    /// A member of a group commit ([`super::group`]): runs in a savepoint of the group.
    group: Option<&'s Durability>,
    tx: TxId,
    time: Timestamp,
    open: bool,
    layers: HashMap<String, LayerState>,
    stats: CommitInfo,
    /// Something besides versions was written (a layer definition, sync bookkeeping): the
    /// transaction commits even when it wrote no version.
    other_writes: bool,
    /// Only schema objects were made (`ensure_index`): commit them, but record no transaction.
    schema_only: bool,
    /// Counters at the open savepoint, restored on rollback to it.
    saved_stats: Option<(CommitInfo, bool)>,
    /// A group member is not interrupted by its caller's cancellation (see `cancel::Shield`);
    /// dropped after the member ended (fields drop after `Drop::drop`).
    shield: Option<crate::cancel::Shield>,
}

impl<'s> SqliteTx<'s> {
    /// Starts a transaction on the writer `conn`: a plain one (`group` is `None`: `BEGIN
    /// IMMEDIATE` here) or a member of the group already joined on `conn`.
    pub(crate) fn begin(
        store: &'s super::SqliteStore,
        conn: MutexGuard<'s, WriterConn>,
        group: Option<&'s Durability>,
        meta: TxMeta,
    ) -> Result<Self> {
        if group.is_none() {
            conn.execute_batch("BEGIN IMMEDIATE;")?;
        }
        let clock = store.clock.as_ref();
        let mut this = SqliteTx {
            conn,
            store,
            group,
            tx: TxId(0),
            time: Timestamp::UNIX_EPOCH,
            open: true,
            layers: HashMap::new(),
            stats: CommitInfo::default(),
            other_writes: false,
            schema_only: false,
            saved_stats: None,
            shield: None,
        };
        let (last_tx, last_us): (Option<i64>, Option<i64>) = this
            .conn
            .prepare_cached(
                // Two subqueries: SQLite answers one min/max from its index, but scans the
                // whole journal for two in one SELECT (it was most of a case action's time).
                "SELECT (SELECT max(tx) FROM sk_transactions), (SELECT max(time_us) FROM sk_transactions)",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        // Transaction time is strictly increasing even if the wall clock steps back.
        let now_us = clock.now().as_microsecond();
        let time_us = last_us.map_or(now_us, |l| now_us.max(l + 1));
        this.tx = TxId(last_tx.unwrap_or(0) + 1);
        this.time = codec::micros_to_ts(time_us);
        this.conn
            .prepare_cached(
                "INSERT INTO sk_transactions (tx, time_us, author, device, device_time, source, replica) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                this.tx.0,
                time_us,
                meta.author,
                meta.device,
                meta.device_time.map(|t| t.to_string()),
                meta.source,
                meta.replica.map(|r| r.to_string())
            ])?;
        Ok(this)
    }

    pub(super) fn shield(&mut self, shield: crate::cancel::Shield) {
        self.shield = Some(shield);
    }

    /// The connection and transaction id, for writes that are not versions (`sync.rs`).
    pub(super) fn writer(&self) -> (&Connection, TxId) {
        (&self.conn, self.tx)
    }

    /// Ends the transaction keeping its writes: `COMMIT`, or for a member of a group, the
    /// group's commit (waited for: the writes are durable when this returns).
    fn finish_commit(mut self: Box<Self>) -> Result<()> {
        self.open = false;
        let Some(group) = self.group else {
            if let Err(e) = self.conn.execute_batch("COMMIT;") {
                let _ = self.conn.execute_batch("ROLLBACK;");
                return Err(e.into());
            }
            return Ok(());
        };
        match group.release(&mut self.conn)? {
            Membership::Committed => Ok(()),
            Membership::Pending(generation) => {
                let store = self.store;
                drop(self); // lets the next writer in
                store.wait_durable(generation)
            }
        }
    }

    /// Ends the transaction keeping nothing.
    fn finish_rollback(&mut self) {
        self.open = false;
        match self.group {
            Some(group) => group.abandon(&mut self.conn),
            None => {
                let _ = self.conn.execute_batch("ROLLBACK;");
            }
        }
    }

    /// Records that something besides versions was written, so that commit keeps the transaction.
    pub(super) fn wrote_other(&mut self) {
        self.other_writes = true;
    }

    fn state(&mut self, layer: &str) -> Result<&mut LayerState> {
        if !self.layers.contains_key(layer) {
            let l = layers::load(&self.conn, layer)?;
            let st = LayerState::new(&self.conn, l)?;
            self.layers.insert(layer.to_owned(), st);
        }
        self.layers.get_mut(layer).ok_or_else(|| StoreError::NoSuchLayer(layer.to_owned()))
    }

    fn row_values(layer: &Layer, f: &Feature, version: i64, tx: TxId, device_time: Option<Timestamp>) -> Vec<Sql> {
        let mut v = Vec::with_capacity(8 + layer.schema().fields.len());
        v.push(f.geometry.as_ref().map_or(Sql::Null, |g| Sql::Blob(gpkg_blob::encode(g, layer.srs_id))));
        v.push(Sql::Text(f.id.to_string()));
        v.push(Sql::Text(f.code.clone()));
        v.push(codec::time_to_sql(f.valid.from));
        v.push(codec::time_to_sql(f.valid.to));
        v.push(Sql::Integer(version));
        v.push(Sql::Integer(tx.0));
        v.push(codec::time_to_sql(device_time));
        for field in &layer.schema().fields {
            v.push(f.properties.get(&field.name).map_or(Sql::Null, codec::to_sql));
        }
        v
    }

    fn unique_error(e: rusqlite::Error, layer: &str, f: &Feature) -> StoreError {
        if let rusqlite::Error::SqliteFailure(err, Some(msg)) = &e
            && err.extended_code == SQLITE_CONSTRAINT_UNIQUE
        {
            if msg.ends_with(".code") {
                return StoreError::DuplicateCode { layer: layer.to_owned(), code: f.code.clone() };
            }
            if msg.ends_with(".entity_id") {
                return StoreError::DuplicateId { layer: layer.to_owned(), id: f.id.to_string() };
            }
        }
        e.into()
    }

    fn generate_code(&mut self, layer: &str) -> Result<String> {
        let t = quote_ident(layer);
        loop {
            let st = self.state(layer)?;
            let code = format!("{}-{:06}", st.layer.name(), st.next_code);
            st.next_code += 1;
            st.code_dirty = true;
            let taken =
                self.conn.query_row(&format!("SELECT 1 FROM {t} WHERE code = ?1"), [&code], |_| Ok(())).optional()?;
            if taken.is_none() {
                return Ok(code);
            }
        }
    }

    fn current(&mut self, layer: &str, key: &FeatureKey) -> Result<CurrentRow> {
        let st = self.state(layer)?;
        let l = std::sync::Arc::clone(&st.layer);
        read::current_row(&self.conn, &l, key)?
            .ok_or_else(|| StoreError::NotFound { layer: layer.to_owned(), key: key.to_string() })
    }

    /// Moves the state of `cur` into history as a closed version `[cur.tx, self.tx)`.
    fn archive(&self, layer: &Layer, cur: &CurrentRow) -> Result<()> {
        let f = &cur.feature;
        let props = read::props_json(layer, &f.properties);
        let op = if cur.version == 1 { "insert" } else { "update" };
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO {} (entity_id, version, op, tx_from, tx_to, code, geom, valid_from, valid_to, props, device_time) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                quote_ident(&hist_table(layer.name()))
            ))?
            .execute(params![
                f.id.to_string(),
                cur.version,
                op,
                cur.tx.0,
                self.tx.0,
                f.code,
                f.geometry.as_ref().map(|g| gpkg_blob::encode(g, layer.srs_id)),
                codec::time_to_sql(f.valid.from),
                codec::time_to_sql(f.valid.to),
                props,
                codec::time_to_sql(cur.device_time)
            ])?;
        if let Some(b) = f.geometry.as_ref().and_then(shikong_model::Geometry::bbox) {
            let hid = self.conn.last_insert_rowid();
            self.conn
                .prepare_cached(&format!(
                    "INSERT INTO {} VALUES (?1, ?2, ?3, ?4, ?5)",
                    quote_ident(&hist_rtree(layer.name()))
                ))?
                .execute(params![hid, b.min_x, b.max_x, b.min_y, b.max_y])?;
        }
        Ok(())
    }

    fn grow_extent(&mut self, layer: &str, f: &Feature) -> Result<()> {
        let st = self.state(layer)?;
        st.touched = true;
        logic::grow_extent(&mut st.extent, f);
        Ok(())
    }

    fn validate_live_features(&self, layer: &Layer) -> Result<()> {
        let mut stmt = self.conn.prepare(&read::current_select(layer, ""))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let cur = read::decode_current(layer, r)?;
            layer
                .schema()
                .validate(&cur.feature.properties)
                .map_err(|e| logic::unfit_for_schema(layer, &cur.feature, e))?;
        }
        Ok(())
    }
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing sensible to do if rollback itself fails: the connection stays usable and the
            // next BEGIN IMMEDIATE reports the state.
            self.finish_rollback();
        }
    }
}

impl crate::StoreTx for SqliteTx<'_> {
    fn id(&self) -> (TxId, Timestamp) {
        (self.tx, self.time)
    }

    fn create_layer(&mut self, def: LayerDef) -> Result<Layer> {
        let l = layers::create(&self.conn, def, self.tx)?;
        self.other_writes = true;
        Ok(l)
    }

    fn update_layer(&mut self, name: &str, def: LayerDef) -> Result<Layer> {
        let old = layers::load(&self.conn, name)?;
        let tightened = old.def.schema != def.schema;
        let l = layers::update(&self.conn, &old, def, self.tx)?;
        if tightened {
            self.validate_live_features(&l)?;
        }
        self.layers.remove(name);
        self.other_writes = true;
        Ok(l)
    }

    fn bulk_load(&mut self, layer: &str) -> Result<()> {
        let t = quote_ident(layer);
        let any: Option<i64> =
            self.conn.query_row(&format!("SELECT 1 FROM {t} LIMIT 1"), [], |r| r.get(0)).optional()?;
        if any.is_some() {
            return Ok(()); // not empty: keep per-row index maintenance
        }
        shikong_gpkg::drop_rtree_triggers(&self.conn, layer, "geom")?;
        self.state(layer)?.bulk = true;
        Ok(())
    }

    fn insert(&mut self, layer: &str, mut f: NewFeature) -> Result<EntityId> {
        let generated = f.id.is_none();
        let id = f.id.unwrap_or_else(|| EntityId(uuid::Uuid::now_v7()));
        let code = match f.code.take() {
            Some(c) => c,
            None => self.generate_code(layer)?,
        };
        let (feature, device_time) = f.into_feature(id, code);
        let l = std::sync::Arc::clone(&self.state(layer)?.layer);
        let feature = logic::check(&l, feature, None)?;
        if !generated {
            // Ids are never reused, not even those of deleted entities.
            let seen: Option<i64> = self
                .conn
                .prepare_cached(&format!(
                    "SELECT 1 FROM {} WHERE entity_id = ?1 LIMIT 1",
                    quote_ident(&hist_table(layer))
                ))?
                .query_row([id.to_string()], |r| r.get(0))
                .optional()?;
            if seen.is_some() {
                return Err(StoreError::DuplicateId { layer: layer.to_owned(), id: id.to_string() });
            }
        }
        let values = Self::row_values(&l, &feature, 1, self.tx, device_time);
        let sql = self.state(layer)?.insert_sql.clone();
        self.conn
            .prepare_cached(&sql)?
            .execute(params_from_iter(values))
            .map_err(|e| Self::unique_error(e, layer, &feature))?;
        super::sync::record_blob_refs(&self.conn, layer, &feature)?;
        self.grow_extent(layer, &feature)?;
        self.stats.inserted += 1;
        Ok(id)
    }

    fn update(&mut self, layer: &str, key: &FeatureKey, patch: Patch) -> Result<Option<i64>> {
        let cur = self.current(layer, key)?;
        let l = std::sync::Arc::clone(&self.state(layer)?.layer);
        let patch_device_time = patch.device_time;
        let next = logic::check(&l, patch.apply_to(&cur.feature), Some(&cur.feature))?;
        if next == cur.feature {
            self.stats.unchanged += 1;
            return Ok(None);
        }
        let version = if cur.tx == self.tx {
            cur.version
        } else {
            self.archive(&l, &cur)?;
            self.stats.updated += 1;
            cur.version + 1
        };
        let mut values = Self::row_values(&l, &next, version, self.tx, patch_device_time);
        values.push(Sql::Integer(cur.fid));
        let st = self.state(layer)?;
        let sql =
            if next.geometry == cur.feature.geometry { st.update_attrs_sql.clone() } else { st.update_sql.clone() };
        self.conn
            .prepare_cached(&sql)?
            .execute(params_from_iter(values))
            .map_err(|e| Self::unique_error(e, layer, &next))?;
        super::sync::record_blob_refs(&self.conn, layer, &next)?;
        self.grow_extent(layer, &next)?;
        Ok(Some(version))
    }

    fn delete(&mut self, layer: &str, key: &FeatureKey) -> Result<()> {
        let cur = self.current(layer, key)?;
        let l = std::sync::Arc::clone(&self.state(layer)?.layer);
        self.archive(&l, &cur)?;
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO {} (entity_id, version, op, tx_from, tx_to, code, props) VALUES (?1, ?2, 'delete', ?3, NULL, ?4, '{{}}')",
                quote_ident(&hist_table(layer))
            ))?
            .execute(params![cur.feature.id.to_string(), cur.version + 1, self.tx.0, cur.feature.code])?;
        self.conn.prepare_cached(&format!("DELETE FROM {} WHERE fid = ?1", quote_ident(layer)))?.execute([cur.fid])?;
        self.state(layer)?.touched = true;
        self.stats.deleted += 1;
        Ok(())
    }

    fn restore(&mut self, layer: &str, id: EntityId, mut f: NewFeature) -> Result<i64> {
        let l = std::sync::Arc::clone(&self.state(layer)?.layer);
        if read::current_row(&self.conn, &l, &FeatureKey::Id(id))?.is_some() {
            return Err(StoreError::InvalidArgument(format!(
                "layer `{layer}`: entity {id} is live; only deleted entities are restored"
            )));
        }
        let h = quote_ident(&hist_table(layer));
        let tomb: Option<(i64, i64)> = self
            .conn
            .query_row(
                &format!("SELECT hid, version FROM {h} WHERE entity_id = ?1 AND op = 'delete' AND tx_to IS NULL ORDER BY version DESC LIMIT 1"),
                [id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((hid, tomb_version)) = tomb else {
            return Err(StoreError::NotFound { layer: layer.to_owned(), key: format!("deleted entity {id}") });
        };
        let code = match f.code.take() {
            Some(c) => c,
            None => self.generate_code(layer)?,
        };
        let (feature, device_time) = f.into_feature(id, code);
        let feature = logic::check(&l, feature, None)?;
        // The tombstone stops being the entity's latest version at this transaction.
        self.conn.execute(&format!("UPDATE {h} SET tx_to = ?2 WHERE hid = ?1"), params![hid, self.tx.0])?;
        let version = tomb_version + 1;
        let values = Self::row_values(&l, &feature, version, self.tx, device_time);
        let sql = self.state(layer)?.insert_sql.clone();
        self.conn
            .prepare_cached(&sql)?
            .execute(params_from_iter(values))
            .map_err(|e| Self::unique_error(e, layer, &feature))?;
        super::sync::record_blob_refs(&self.conn, layer, &feature)?;
        self.grow_extent(layer, &feature)?;
        self.stats.updated += 1;
        Ok(version)
    }

    fn ensure_index(&mut self, layer: &str, fields: &[&str]) -> Result<()> {
        let l = std::sync::Arc::clone(&self.state(layer)?.layer);
        let mut cols = Vec::with_capacity(fields.len());
        for field in fields {
            let f = logic::index_field(&l, field)?;
            cols.push(f.name.clone());
        }
        if cols.is_empty() {
            return Ok(());
        }
        let idx = quote_ident(&format!("sk_idx_{layer}_{}", cols.join("_")));
        let list = cols.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
        self.conn.execute_batch(&format!("CREATE INDEX IF NOT EXISTS {idx} ON {} ({list});", quote_ident(layer)))?;
        self.schema_only = true;
        Ok(())
    }

    fn find_by_field(&mut self, layer: &str, field: &str, value: &Value) -> Result<Option<EntityId>> {
        let l = std::sync::Arc::clone(&self.state(layer)?.layer);
        let col = match field {
            "code" | "entity_id" => field.to_owned(),
            _ => {
                let f = logic::upsert_key_field(&l, field)?;
                f.name.clone()
            }
        };
        // An index makes repeated upserts by this key cheap; it stays for later imports.
        let idx = quote_ident(&format!("sk_idx_{layer}_{col}"));
        self.conn.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS {idx} ON {} ({});",
            quote_ident(layer),
            quote_ident(&col)
        ))?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT entity_id FROM {} WHERE {} = ?1 LIMIT 2",
            quote_ident(layer),
            quote_ident(&col)
        ))?;
        let ids: Vec<String> =
            stmt.query_map([codec::to_sql(value)], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        match ids.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.parse().map_err(|e| StoreError::Corrupt(format!("entity id `{one}`: {e}")))?)),
            _ => Err(StoreError::AmbiguousKey { layer: layer.to_owned(), field: field.to_owned(), count: ids.len() }),
        }
    }

    fn savepoint(&mut self) -> Result<()> {
        self.conn.execute_batch("SAVEPOINT sk_entity;")?;
        self.saved_stats = Some((self.stats, self.other_writes));
        Ok(())
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        self.conn.execute_batch("ROLLBACK TO sk_entity; RELEASE sk_entity;")?;
        if let Some((stats, changed)) = self.saved_stats.take() {
            self.stats = stats;
            self.other_writes = changed;
        }
        // Cached per-layer counters (codes, extents) may be ahead of the rolled-back data; that
        // only skips a generated code number or widens an extent, both harmless.
        Ok(())
    }

    fn release_savepoint(&mut self) -> Result<()> {
        self.conn.execute_batch("RELEASE sk_entity;")?;
        self.saved_stats = None;
        Ok(())
    }

    fn get(&mut self, layer: &str, key: &FeatureKey) -> Result<Option<StoredFeature>> {
        read::get(&self.conn, layer, key, None)
    }

    fn get_many(
        &mut self,
        layer: &str,
        ids: &[EntityId],
    ) -> Result<std::collections::HashMap<EntityId, StoredFeature>> {
        read::get_many(&self.conn, layer, ids)
    }

    fn put_outbox(&mut self, id: uuid::Uuid, payload: &str) -> Result<()> {
        super::outbox::put(&self.conn, self.tx, id, payload)
    }

    fn commit(mut self: Box<Self>) -> Result<CommitInfo> {
        for st in self.layers.values().filter(|s| s.touched || s.bulk || s.code_dirty) {
            let name = st.layer.name();
            if st.bulk {
                // Packed nodes written directly; SQLite's insert-by-insert rebuild when too big.
                if !super::rtree_pack::pack(&self.conn, name, &layers::rtree(name))? {
                    shikong_gpkg::rebuild_rtree(&self.conn, name, "geom")?;
                }
                shikong_gpkg::create_rtree_triggers(&self.conn, name, "geom")?;
                shikong_gpkg::update_extent(&self.conn, name, "geom")?;
            } else if let Some(e) = st.extent {
                self.conn.execute(
                    "UPDATE gpkg_contents SET min_x = min(coalesce(min_x, ?2), ?2), max_x = max(coalesce(max_x, ?3), ?3), \
                     min_y = min(coalesce(min_y, ?4), ?4), max_y = max(coalesce(max_y, ?5), ?5) WHERE table_name = ?1",
                    params![name, e.min_x, e.max_x, e.min_y, e.max_y],
                )?;
            }
            if st.touched {
                shikong_gpkg::touch_contents(&self.conn, name)?;
            }
            if st.code_dirty {
                self.conn
                    .execute("UPDATE sk_layers SET next_code = ?2 WHERE name = ?1", params![name, st.next_code])?;
            }
        }
        if self.stats.versions_written() == 0 && !self.other_writes {
            let stats = self.stats;
            if self.schema_only {
                // An index is no change to the data: keep it, record no transaction.
                self.conn.execute("DELETE FROM sk_transactions WHERE tx = ?1", params![self.tx.0])?;
                self.finish_commit()?;
                return Ok(CommitInfo { tx: None, ..stats });
            }
            // Nothing happened: leave no empty transaction behind.
            self.finish_rollback();
            return Ok(CommitInfo { tx: None, ..stats });
        }
        let info = CommitInfo { tx: Some(self.tx), ..self.stats };
        self.finish_commit()?;
        Ok(info)
    }
}
