//! [`EntityDoc`]: building, editing, exchanging and reading one entity's automerge document.
//!
//! Every write goes through one private `write`: one change per edit, puts in key order, the
//! actor and message chosen by the kind of write (base, server or device). Edits write
//! only the attributes whose visible value changes, so a form that saves every field never
//! overrides (or silently resolves) a field it did not touch.

use std::collections::HashSet;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Automerge, Change, ChangeHash, ObjId, ROOT, ReadDoc, ScalarValue};
use shikong_model::{EntityId, Feature, LayerSchema, Properties, ValidTime};

use crate::codec::{self, Attribute, Puts};
use crate::error::{Error, Result};
use crate::message::{self, Op};
use crate::{Actor, Edit, EditMeta, EntityState, Resolved, ServerMeta};

/// The automerge document of one entity.
#[derive(Debug, Clone)]
pub struct EntityDoc {
    pub(crate) doc: Automerge,
}

/// One value of a key with the id of the op that wrote it. Op ids order writes the way automerge
/// picks winners (Lamport counter, then actor), identically on every replica.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub value: ScalarValue,
    pub op: ObjId,
}

impl EntityDoc {
    /// The implicit document of an entity created outside sync (import, API): one change by the
    /// entity's base actor, time 0, no message. Identical bytes and hashes on every machine for the
    /// same (schema, feature).
    pub fn base(schema: &LayerSchema, feature: &Feature) -> Result<EntityDoc> {
        let puts = codec::feature_puts(schema, feature)?;
        let mut doc = EntityDoc { doc: Automerge::new() };
        // Nobody needs the base change's bytes: every party derives it.
        doc.write(Actor::base(feature.id), None, 0, &puts, false)?;
        Ok(doc)
    }

    /// A new entity created on a device: one change by `actor`. Returns the doc and the change.
    pub fn create(
        schema: &LayerSchema,
        feature: &Feature,
        actor: Actor,
        meta: &EditMeta,
    ) -> Result<(EntityDoc, Vec<u8>)> {
        let puts = codec::feature_puts(schema, feature)?;
        let mut doc = EntityDoc { doc: Automerge::new() };
        let change = doc
            .device_commit(actor, meta, Op::Create, None, &puts)?
            .ok_or_else(|| Error::Automerge("creating an entity wrote no change".into()))?;
        Ok((doc, change))
    }

    /// A document from saved bytes ([`EntityDoc::save`]). Empty bytes give an empty document, to
    /// which a device's create change can be applied (its state is an error until then).
    pub fn load(bytes: &[u8]) -> Result<EntityDoc> {
        if bytes.is_empty() {
            return Ok(EntityDoc { doc: Automerge::new() });
        }
        let doc = Automerge::load(bytes).map_err(|e| Error::Invalid(e.to_string()))?;
        let doc = EntityDoc { doc };
        doc.entity_id()?;
        Ok(doc)
    }

    /// A document from its changes alone, e.g. a device's create change arriving at the server.
    pub fn from_changes(changes: &[Vec<u8>]) -> Result<EntityDoc> {
        let mut doc = EntityDoc { doc: Automerge::new() };
        doc.apply_changes(changes)?;
        doc.entity_id()?;
        Ok(doc)
    }

    /// The whole document, compressed (what a replica or the store keeps per edited entity).
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The entity the document is about (key `id`).
    pub fn entity_id(&self) -> Result<EntityId> {
        match self.get(codec::ID)? {
            Some(ScalarValue::Str(s)) => {
                s.parse().map_err(|e: shikong_model::ModelError| Error::document(codec::ID, e.to_string()))
            }
            Some(other) => {
                Err(Error::document(codec::ID, format!("stored value {} is not a UUID", codec::describe(&other))))
            }
            None => Err(Error::document(codec::ID, "missing: not an entity document")),
        }
    }

    /// The visible state. Properties hold the non-null values of the schema's fields; values of
    /// field ids the schema does not know are ignored (and kept in the document).
    pub fn state(&self, schema: &LayerSchema) -> Result<EntityState> {
        let id = self.entity_id()?;
        let code = codec::decode_code(
            &self.get(codec::CODE)?.ok_or_else(|| Error::document(codec::CODE, "missing: every entity has a code"))?,
        )?;
        let geometry = self.get(codec::GEOMETRY)?.map_or(Ok(None), |s| codec::decode_geometry(&s))?;
        let time = |key| self.get(key)?.map_or(Ok(None), |s| codec::decode_time(key, &s));
        let valid = ValidTime { from: time(codec::VALID_FROM)?, to: time(codec::VALID_TO)? };
        let deleted = self.get(codec::DELETED)?.map_or(Ok(false), |s| codec::decode_deleted(&s))?;
        let mut properties = Properties::new();
        for key in self.doc.keys(ROOT) {
            let Some(field) = key.strip_prefix(codec::PROPERTY_PREFIX).and_then(|id| field_by_id(schema, id)) else {
                continue;
            };
            if let Some(s) = self.get(&key)? {
                let v = codec::decode_value(field, &s)?;
                if !v.is_null() {
                    properties.insert(field.name.clone(), v);
                }
            }
        }
        Ok(EntityState { feature: Feature { id, code, geometry, valid, properties }, deleted })
    }

    /// Applies a local edit as one change by `actor`; `None` when it changes nothing.
    pub fn edit(&mut self, schema: &LayerSchema, actor: Actor, meta: &EditMeta, edit: Edit) -> Result<Option<Vec<u8>>> {
        let single = |key: &str, v: ScalarValue| Puts::from([(key.to_owned(), v)]);
        let (op, puts, contested) = match edit {
            Edit::Create(feature) => (Op::Create, self.replacement(schema, &feature, false)?, false),
            Edit::SetFields(props) => (Op::Set, codec::property_puts(schema, &props)?, false),
            Edit::SetGeometry(g) => (Op::Geometry, single(codec::GEOMETRY, codec::encode_geometry(g.as_ref())), false),
            Edit::SetCode(code) => (Op::Code, single(codec::CODE, ScalarValue::Str(code.into())), false),
            Edit::SetValid(v) => {
                let mut puts = single(codec::VALID_FROM, codec::encode_time(v.from));
                puts.insert(codec::VALID_TO.into(), codec::encode_time(v.to));
                (Op::Valid, puts, false)
            }
            Edit::Delete => (Op::Delete, single(codec::DELETED, true.into()), self.contested(Attribute::Deleted)?),
            Edit::Restore => (Op::Restore, single(codec::DELETED, false.into()), self.contested(Attribute::Deleted)?),
            Edit::Resolve { attribute, value } => {
                let a = Attribute::parse(schema, &attribute)?;
                let v = resolved_scalar(a, &attribute, value)?;
                (Op::Resolve, single(&a.key()?, v), self.contested(a)?)
            }
        };
        // A contested attribute is written even when the value equals the winner, as a fresh op
        // of this change: it supersedes every competing op, and for `del` it makes the winning
        // deletion (or restore) a descendant of every edit, which is what ends the conflict.
        let (puts, fresh) = if contested { (puts, true) } else { (self.changed(puts)?, false) };
        let message = message::device_message(meta, op, None);
        self.commit(actor, Some(message), meta.time.as_millisecond(), &puts, fresh)
    }

    /// Applies raw changes from elsewhere. Idempotent: changes already present (or repeated in
    /// `changes`) are skipped; returns how many were new. Nothing is applied when a change is
    /// malformed or depends on a change neither the document nor `changes` holds.
    pub fn apply_changes(&mut self, changes: &[Vec<u8>]) -> Result<usize> {
        let (new, missing) = self.new_changes(changes)?;
        if !missing.is_empty() {
            return Err(Error::MissingDependencies);
        }
        let count = new.len();
        if count > 0 {
            self.doc.apply_changes(new)?;
        }
        Ok(count)
    }

    /// The dependencies of `changes` that neither this document nor `changes` holds (what
    /// [`Error::MissingDependencies`] refers to), sorted.
    pub fn missing_dependencies(&self, changes: &[Vec<u8>]) -> Result<Vec<ChangeHash>> {
        Ok(self.new_changes(changes)?.1)
    }

    fn new_changes(&self, changes: &[Vec<u8>]) -> Result<(Vec<Change>, Vec<ChangeHash>)> {
        let mut batch = HashSet::new();
        let mut new = Vec::new();
        for (i, bytes) in changes.iter().enumerate() {
            let c = parse_change(bytes)
                .map_err(|e| Error::Invalid(format!("change {} of {}: {e}", i + 1, changes.len())))?;
            if batch.insert(c.hash()) && !self.has_change(&c.hash()) {
                new.push(c);
            }
        }
        let mut missing: Vec<ChangeHash> = new
            .iter()
            .flat_map(|c| c.deps().iter().copied())
            .filter(|d| !batch.contains(d) && !self.has_change(d))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        Ok((new, missing))
    }

    /// Takes every change of `other` this document lacks.
    pub fn merge(&mut self, other: &mut EntityDoc) -> Result<()> {
        self.doc.merge(&mut other.doc)?;
        Ok(())
    }

    /// Every change authored by `actor`, oldest first (what a device pushes).
    pub fn changes_by(&self, actor: Actor) -> Vec<Vec<u8>> {
        let mut changes: Vec<Change> =
            self.doc.get_changes(&[]).into_iter().filter(|c| actor.is(c.actor_id())).collect();
        changes.sort_by_key(Change::seq);
        changes.into_iter().map(|mut c| c.bytes().into_owned()).collect()
    }

    /// Every change that is not among `heads` or their ancestors, in causal order; all changes
    /// for `&[]`.
    pub fn changes_after(&self, heads: &[ChangeHash]) -> Vec<Vec<u8>> {
        self.doc.get_changes(heads).into_iter().map(|mut c| c.bytes().into_owned()).collect()
    }

    /// The hashes of the newest changes (sorted).
    pub fn heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    pub fn has_change(&self, h: &ChangeHash) -> bool {
        self.doc.get_change_meta_by_hash(h).is_some()
    }

    /// A deterministic server change moving the visible state to `target` (a store version
    /// written outside sync); `None` when nothing differs. Actor: the entity's server actor; time:
    /// `meta.time` in milliseconds; puts of the changed keys in key order. Two documents with the
    /// same history produce the same change.
    pub fn server_change(
        &mut self,
        schema: &LayerSchema,
        target: &EntityState,
        meta: &ServerMeta,
    ) -> Result<Option<Vec<u8>>> {
        let id = self.entity_id()?;
        if target.feature.id != id {
            return Err(Error::WrongEntity { document: id, given: target.feature.id });
        }
        let puts = self.changed(self.replacement(schema, &target.feature, target.deleted)?)?;
        self.commit(Actor::server(id), Some(message::server_message(meta)), meta.time.as_millisecond(), &puts, false)
    }

    /// Device time (from change messages) of the newest device change, if any.
    pub fn latest_edit_time(&self) -> Option<jiff::Timestamp> {
        self.doc
            .get_changes_meta(&[])
            .iter()
            .filter_map(|m| {
                let origin = message::parse(m.message.as_deref(), m.timestamp);
                origin.op.and(origin.time)
            })
            .max()
    }

    /// The visible value of `key` (automerge's winner).
    pub(crate) fn get(&self, key: &str) -> Result<Option<ScalarValue>> {
        match self.doc.get(ROOT, key)? {
            None => Ok(None),
            Some((automerge::Value::Scalar(s), _)) => Ok(Some(s.into_owned())),
            Some((automerge::Value::Object(_), _)) => Err(Error::document(key, "holds an object, not a value")),
        }
    }

    /// Every current value of `key`, oldest op first (the winner last).
    pub(crate) fn get_all(&self, key: &str) -> Result<Vec<Written>> {
        let mut all = self
            .doc
            .get_all(ROOT, key)?
            .into_iter()
            .map(|(v, op)| match v {
                automerge::Value::Scalar(s) => Ok(Written { value: s.into_owned(), op }),
                automerge::Value::Object(_) => Err(Error::document(key, "holds an object, not a value")),
            })
            .collect::<Result<Vec<_>>>()?;
        all.sort_by(|a, b| a.op.cmp(&b.op));
        Ok(all)
    }

    /// Whether `a` has competing values (or, for `deleted`, edits that raced the deletion).
    pub(crate) fn contested(&self, a: Attribute<'_>) -> Result<bool> {
        let key = a.key()?;
        let all = self.get_all(&key)?;
        let shown = normalized(&key, all.last().map(|w| &w.value));
        let split = all.iter().any(|w| normalized(&key, Some(&w.value)) != shown);
        Ok(split || (matches!(a, Attribute::Deleted) && !self.concurrent_edits()?.is_empty()))
    }

    /// The puts of `puts` that change a visible value (absent and null are the same; an absent
    /// `del` is false).
    pub(crate) fn changed(&self, mut puts: Puts) -> Result<Puts> {
        let mut same = Vec::new();
        for (k, v) in &puts {
            if normalized(k, self.get(k)?.as_ref()) == normalized(k, Some(v)) {
                same.push(k.clone());
            }
        }
        same.iter().for_each(|k| {
            puts.remove(k);
        });
        Ok(puts)
    }

    /// The puts that make the document show `feature` (deleted or not): every system key, the
    /// feature's properties, and null for the schema's fields the feature leaves empty.
    fn replacement(&self, schema: &LayerSchema, feature: &Feature, deleted: bool) -> Result<Puts> {
        let id = self.entity_id()?;
        if feature.id != id {
            return Err(Error::WrongEntity { document: id, given: feature.id });
        }
        let mut puts = codec::feature_puts(schema, feature)?;
        for key in self.doc.keys(ROOT) {
            if key.strip_prefix(codec::PROPERTY_PREFIX).and_then(|id| field_by_id(schema, id)).is_some() {
                puts.entry(key).or_insert(ScalarValue::Null);
            }
        }
        puts.insert(codec::DELETED.into(), deleted.into());
        Ok(puts)
    }

    pub(crate) fn device_commit(
        &mut self,
        actor: Actor,
        meta: &EditMeta,
        op: Op,
        undoes: Option<ChangeHash>,
        puts: &Puts,
    ) -> Result<Option<Vec<u8>>> {
        let message = message::device_message(meta, op, undoes);
        self.commit(actor, Some(message), meta.time.as_millisecond(), puts, false)
    }

    /// Writes `puts` (in key order) as one change and returns its bytes; `None` when there is
    /// nothing to write.
    fn commit(
        &mut self,
        actor: Actor,
        message: Option<String>,
        time_ms: i64,
        puts: &Puts,
        fresh: bool,
    ) -> Result<Option<Vec<u8>>> {
        let Some(hash) = self.write(actor, message, time_ms, puts, fresh)? else { return Ok(None) };
        let mut change = self
            .doc
            .get_change_by_hash(&hash)
            .ok_or_else(|| Error::Automerge(format!("the change {hash} just committed is missing")))?;
        Ok(Some(change.bytes().into_owned()))
    }

    /// Writes `puts` (in key order) as one change and returns its hash.
    ///
    /// Automerge writes nothing for a put of the value a key already holds alone, and turns a put
    /// of the winning value of a contested key into a deletion of the losing ops (the winner's op
    /// stays). With `fresh`, each key is deleted first, so the put is always a new op of this
    /// change.
    fn write(
        &mut self,
        actor: Actor,
        message: Option<String>,
        time_ms: i64,
        puts: &Puts,
        fresh: bool,
    ) -> Result<Option<ChangeHash>> {
        if puts.is_empty() {
            return Ok(None);
        }
        self.doc.set_actor(actor.to_automerge());
        let mut tx = self.doc.transaction();
        for (k, v) in puts {
            if fresh && tx.get(ROOT, k.as_str())?.is_some() {
                tx.delete(ROOT, k.as_str())?;
            }
            tx.put(ROOT, k.as_str(), v.clone())?;
        }
        let mut options = CommitOptions::default().with_time(time_ms);
        if let Some(m) = message {
            options = options.with_message(m);
        }
        // No hash: every put was one automerge elides, so nothing changed.
        Ok(tx.commit_with(options).0)
    }
}

/// The hash of raw change bytes (as [`EntityDoc::changes_by`] and [`EntityDoc::edit`] return).
pub fn change_hash(change: &[u8]) -> Result<ChangeHash> {
    parse_change(change).map(|c| c.hash()).map_err(|e| Error::Invalid(e.to_string()))
}

fn parse_change(bytes: &[u8]) -> std::result::Result<Change, automerge::LoadChangeError> {
    Change::try_from(bytes)
}

fn field_by_id<'a>(schema: &'a LayerSchema, id: &str) -> Option<&'a shikong_model::FieldDef> {
    if id.is_empty() { None } else { schema.field_by_id(id) }
}

/// The value of a key for comparisons: absent is null, and an absent or null `del` is false.
pub(crate) fn normalized(key: &str, v: Option<&ScalarValue>) -> ScalarValue {
    match v {
        None | Some(ScalarValue::Null) if key == codec::DELETED => ScalarValue::Boolean(false),
        None => ScalarValue::Null,
        Some(v) => v.clone(),
    }
}

fn resolved_scalar(a: Attribute<'_>, name: &str, value: Resolved) -> Result<ScalarValue> {
    let wrong = |expected: &str| Error::Resolve { attribute: name.to_owned(), message: format!("expected {expected}") };
    Ok(match (a, value) {
        (Attribute::Geometry, Resolved::Geometry(g)) => codec::encode_geometry(g.as_ref()),
        (Attribute::Geometry, _) => return Err(wrong("a geometry (Resolved::Geometry)")),
        (Attribute::Deleted, Resolved::Deleted(b)) => b.into(),
        (Attribute::Deleted, _) => return Err(wrong("a deletion flag (Resolved::Deleted)")),
        (Attribute::Code, Resolved::Value(shikong_model::Value::Text(s))) => ScalarValue::Str(s.into()),
        (Attribute::Code, _) => return Err(wrong("a text value")),
        (Attribute::ValidFrom | Attribute::ValidTo, Resolved::Value(shikong_model::Value::DateTime(t))) => {
            codec::encode_time(Some(t))
        }
        (Attribute::ValidFrom | Attribute::ValidTo, Resolved::Value(shikong_model::Value::Null)) => ScalarValue::Null,
        (Attribute::ValidFrom | Attribute::ValidTo, _) => return Err(wrong("a date-time or null")),
        (Attribute::Field(f), Resolved::Value(v)) => codec::encode_value(f, &v)?,
        (Attribute::Field(_), _) => return Err(wrong("a field value (Resolved::Value)")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::{ConflictKind, ConflictValueKind};
    use shikong_model::{Coord, Geometry, Value};

    fn base() -> EntityDoc {
        EntityDoc::base(&schema(), &feature()).unwrap()
    }

    fn set(doc: &mut EntityDoc, actor: Actor, meta: &EditMeta, list: &[(&str, Value)]) -> Vec<u8> {
        doc.edit(&schema(), actor, meta, Edit::SetFields(props(list))).unwrap().unwrap()
    }

    fn prop(doc: &EntityDoc, name: &str) -> Option<Value> {
        doc.state(&schema()).unwrap().feature.properties.get(name).cloned()
    }

    /// Exchanges all changes both ways.
    fn sync(a: &mut EntityDoc, b: &mut EntityDoc) {
        b.apply_changes(&a.changes_after(&[])).unwrap();
        a.apply_changes(&b.changes_after(&[])).unwrap();
        assert_eq!(a.heads(), b.heads());
    }

    #[test]
    fn base_is_deterministic() {
        let (mut one, mut two) = (base(), base());
        assert_eq!(one.heads(), two.heads());
        assert_eq!(one.save(), two.save());
        // Null and absent properties make the same base.
        let mut with_nulls = feature();
        with_nulls.properties.insert("照片".into(), Value::Null);
        assert_eq!(EntityDoc::base(&schema(), &with_nulls).unwrap().heads(), one.heads());
        // The base change: base actor, time 0, no message.
        let changes = one.doc.get_changes(&[]);
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].timestamp(), changes[0].message()), (0, None));
        assert!(Actor::base(id()).is(changes[0].actor_id()));
        assert_eq!(one.changes_by(Actor::base(id())), one.changes_after(&[]));
    }

    #[test]
    fn a_base_from_another_machine_takes_edits_without_conflict() {
        let mut office = base();
        let mut device = base();
        let change = set(&mut device, A, &zhang(), &[("深度", Value::Real(2.0))]);
        assert_eq!(office.apply_changes(&[change]).unwrap(), 1);
        assert_eq!(office.heads(), device.heads());
        assert_eq!(prop(&office, "深度"), Some(Value::Real(2.0)));
        assert_eq!(office.conflicts(&schema()).unwrap(), vec![]);
    }

    #[track_caller]
    fn check_round_trip(f: Feature) {
        let mut expected = f.clone();
        expected.properties.retain(|_, v| !v.is_null());
        let mut doc = EntityDoc::base(&schema(), &f).unwrap();
        assert_eq!(doc.state(&schema()).unwrap(), EntityState { feature: expected.clone(), deleted: false });
        let loaded = EntityDoc::load(&doc.save()).unwrap();
        assert_eq!(loaded.state(&schema()).unwrap().feature, expected);
        let (created, change) = EntityDoc::create(&schema(), &f, A, &zhang()).unwrap();
        assert_eq!(created.state(&schema()).unwrap().feature, expected);
        assert_eq!(EntityDoc::from_changes(&[change]).unwrap().state(&schema()).unwrap().feature, expected);
    }

    #[test]
    fn state_round_trips_every_field_type() {
        check_round_trip(feature());
        let mut all = feature();
        all.properties.extend(props(&[
            ("名称", "武汉市洪山区珞喻路 1037 号 🚧".into()),
            ("深度", Value::Real(-0.0001)),
            ("数量", Value::Integer(i64::MIN)),
            ("完好", Value::Bool(false)),
            ("巡检时间", Value::DateTime(t("2025-06-01T08:30:15.250+08:00"))),
            ("状态", "2".into()),
            ("照片", Value::Attachments(vec!["a".repeat(64), "b".repeat(64)])),
        ]));
        check_round_trip(all);
        let mut nulls = feature();
        nulls.properties = props(&[("名称", Value::Null), ("深度", Value::Null), ("数量", Value::Integer(0))]);
        nulls.geometry = None;
        nulls.valid = ValidTime::ALWAYS;
        check_round_trip(nulls);
        let mut z = feature();
        let ring = vec![
            Coord::xyz(114.30, 30.59, 21.5),
            Coord::xyz(114.31, 30.59, 22.0),
            Coord::xyz(114.31, 30.60, 23.25),
            Coord::xyz(114.30, 30.59, 21.5),
        ];
        z.geometry = Some(Geometry::MultiPolygon(vec![vec![ring]]));
        z.valid = ValidTime { from: Some(t("2020-01-01")), to: Some(t("2030-01-01T00:00:00.001Z")) };
        check_round_trip(z);
    }

    #[test]
    fn undecodable_values_fail_clearly() {
        let doc = base();
        let mut retyped = schema();
        retyped.fields[2].ty = shikong_model::FieldType::Text;
        let e = doc.state(&retyped).unwrap_err();
        assert_eq!(e.to_string(), "field `数量`: stored value integer 1 is not text");
        retyped.fields[2].ty = shikong_model::FieldType::Date;
        retyped.fields[0].ty = shikong_model::FieldType::Bool;
        assert!(
            doc.state(&retyped).unwrap_err().to_string().contains("`名称`: stored value text \"井盖\" is not bool")
        );
        assert!(matches!(EntityDoc::load(b"not automerge"), Err(Error::Invalid(_))));
        // A document without `id` is not an entity document.
        let mut empty = EntityDoc { doc: Automerge::new() };
        empty.commit(A, None, 0, &Puts::from([("x".to_owned(), 1.into())]), false).unwrap();
        assert!(EntityDoc::load(&empty.save()).unwrap_err().to_string().contains("document key `id`: missing"));
    }

    #[test]
    fn unknown_field_ids_are_ignored_and_kept() {
        let mut doc = base();
        let mut fewer = schema();
        fewer.fields.retain(|f| f.name != "深度");
        assert_eq!(doc.state(&fewer).unwrap().feature.properties.get("深度"), None);
        // Editing under the older schema keeps the value the newer schema reads.
        doc.edit(&fewer, A, &zhang(), Edit::SetFields(props(&[("名称", "雨水井".into())]))).unwrap();
        assert_eq!(prop(&doc, "深度"), Some(Value::Real(1.5)));
        let renamed = {
            let mut s = schema();
            s.fields[1].name = "埋深".into();
            s
        };
        assert_eq!(doc.state(&renamed).unwrap().feature.properties.get("埋深"), Some(&Value::Real(1.5)));
    }

    #[test]
    fn edits_write_only_what_changes() {
        let mut doc = base();
        let s = schema();
        let same = Edit::SetFields(feature().properties);
        assert_eq!(doc.edit(&s, A, &zhang(), same).unwrap(), None);
        assert_eq!(doc.edit(&s, A, &zhang(), Edit::SetFields(props(&[("照片", Value::Null)]))).unwrap(), None);
        assert_eq!(doc.edit(&s, A, &zhang(), Edit::SetGeometry(feature().geometry)).unwrap(), None);
        assert_eq!(doc.edit(&s, A, &zhang(), Edit::SetCode(feature().code)).unwrap(), None);
        assert_eq!(doc.edit(&s, A, &zhang(), Edit::SetValid(feature().valid)).unwrap(), None);
        assert_eq!(doc.edit(&s, A, &zhang(), Edit::Restore).unwrap(), None);
        assert_eq!(doc.edit(&s, A, &zhang(), Edit::Create(feature())).unwrap(), None);
        // An integer for a real field is the same real.
        assert_eq!(doc.edit(&s, A, &zhang(), Edit::SetFields(props(&[("数量", Value::Integer(1))]))).unwrap(), None);
        assert_eq!(doc.changes_by(A), Vec::<Vec<u8>>::new());
        let change = doc.edit(&s, A, &zhang(), Edit::SetFields(props(&[("深度", 3.into()), ("名称", "井盖".into())])));
        let ops = doc.change_ops(&change_hash(&change.unwrap().unwrap()).unwrap()).unwrap();
        assert_eq!(ops.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["p.f2"]);
        assert_eq!(prop(&doc, "深度"), Some(Value::Real(3.0)));
    }

    #[test]
    fn bad_edits_are_refused() {
        let mut doc = base();
        let s = schema();
        let mut check = |edit: Edit, message: &str| {
            let e = doc.edit(&s, A, &zhang(), edit).unwrap_err().to_string();
            assert!(e.contains(message), "{e} does not contain {message}");
        };
        check(Edit::SetFields(props(&[("颜色", "红".into())])), "field `颜色`: is not a field of this layer");
        check(Edit::SetFields(props(&[("数量", "三".into())])), "field `数量`: expected integer, got \"三\"");
        let resolve = |attribute: &str, value| Edit::Resolve { attribute: attribute.into(), value };
        check(resolve("geometry", Resolved::Deleted(true)), "cannot resolve `geometry`: expected a geometry");
        check(resolve("deleted", Resolved::Value(Value::Bool(true))), "expected a deletion flag");
        check(resolve("code", Resolved::Value(Value::Integer(1))), "`code`: expected a text value");
        check(resolve("valid_to", Resolved::Value("明天".into())), "expected a date-time or null");
        check(resolve("名称", Resolved::Geometry(None)), "expected a field value");
        check(resolve("颜色", Resolved::Value(Value::Null)), "field `颜色`: is not a field");
        let mut other = feature();
        other.id = "0192f3c4-0000-7000-8000-000000000002".parse().unwrap();
        check(Edit::Create(other), "the document is entity 0192f3c4-0000-7000-8000-000000000001, not");
        assert_eq!(doc.heads(), base().heads());
    }

    #[test]
    fn concurrent_edits_of_different_fields_are_both_kept() {
        for a_first in [true, false] {
            let (mut a, mut b) = (base(), base());
            let ca = set(&mut a, A, &zhang(), &[("深度", Value::Real(2.0))]);
            let cb = b.edit(&schema(), B, &li(), Edit::SetGeometry(point(114.31, 30.59))).unwrap().unwrap();
            let mut office = base();
            let order = if a_first { [ca.clone(), cb.clone()] } else { [cb.clone(), ca.clone()] };
            assert_eq!(office.apply_changes(&order[..1]).unwrap(), 1);
            assert_eq!(office.apply_changes(&order[1..]).unwrap(), 1);
            a.apply_changes(&[cb]).unwrap();
            b.apply_changes(&[ca]).unwrap();
            for doc in [&a, &b, &office] {
                let st = doc.state(&schema()).unwrap();
                assert_eq!(st.feature.properties.get("深度"), Some(&Value::Real(2.0)));
                assert_eq!(st.feature.geometry, point(114.31, 30.59));
                assert_eq!(doc.conflicts(&schema()).unwrap(), vec![]);
            }
        }
    }

    #[test]
    fn concurrent_edits_of_one_field_conflict_until_resolved() {
        let (mut a, mut b) = (base(), base());
        set(&mut a, A, &zhang(), &[("名称", "雨水井".into())]);
        set(&mut b, B, &li(), &[("名称", "污水井".into())]);
        sync(&mut a, &mut b);
        let winner = prop(&a, "名称");
        assert_eq!(winner, prop(&b, "名称"));
        let conflicts = a.conflicts(&schema()).unwrap();
        assert_eq!(conflicts, b.conflicts(&schema()).unwrap());
        assert_eq!(conflicts.len(), 1);
        let c = &conflicts[0];
        assert_eq!((c.kind, c.attribute.as_str(), c.others.len()), (ConflictKind::Field, "名称", 1));
        let mut sides = [c.winner.clone(), c.others[0].clone()];
        assert_eq!(ConflictValueKind::Value(winner.unwrap()), sides[0].value);
        sides.sort_by_key(|s| s.time);
        assert_eq!(sides[0].value, ConflictValueKind::Value("雨水井".into()));
        assert_eq!(
            (sides[0].user.as_deref(), sides[0].device.as_deref(), sides[0].time),
            (Some("张三"), Some("平板-01"), Some(zhang().time))
        );
        assert_eq!(sides[1].value, ConflictValueKind::Value("污水井".into()));
        assert_eq!(
            (sides[1].user.as_deref(), sides[1].device.as_deref(), sides[1].time),
            (Some("李四"), Some("手机-02"), Some(li().time))
        );
        // B keeps the value that is already shown: still a change, because it settles the conflict.
        let office = meta("王五", "办公室", "2025-06-02T10:00:00+08:00");
        let chosen = match &c.winner.value {
            ConflictValueKind::Value(v) => v.clone(),
            other => panic!("{other:?}"),
        };
        let resolve = Edit::Resolve { attribute: "名称".into(), value: Resolved::Value(chosen.clone()) };
        let change = b.edit(&schema(), B, &office, resolve).unwrap().unwrap();
        assert_eq!(b.conflicts(&schema()).unwrap(), vec![]);
        assert_eq!(a.apply_changes(std::slice::from_ref(&change)).unwrap(), 1);
        assert_eq!(a.conflicts(&schema()).unwrap(), vec![]);
        assert_eq!(prop(&a, "名称"), Some(chosen));
        // The resolution is audited in its message.
        let origin = a.origin_of_change(&change_hash(&change).unwrap());
        assert_eq!(
            (origin.user.as_deref(), origin.op.as_deref(), origin.time),
            (Some("王五"), Some("resolve"), Some(office.time))
        );
        // Resolving what is not contested and already shown changes nothing.
        let again = Edit::Resolve { attribute: "名称".into(), value: Resolved::Value(prop(&a, "名称").unwrap()) };
        assert_eq!(a.edit(&schema(), A, &zhang(), again).unwrap(), None);
    }

    #[test]
    fn equal_concurrent_values_are_no_conflict() {
        let (mut a, mut b) = (base(), base());
        set(&mut a, A, &zhang(), &[("名称", "雨水井".into())]);
        set(&mut b, B, &li(), &[("名称", "雨水井".into())]);
        sync(&mut a, &mut b);
        assert_eq!(a.conflicts(&schema()).unwrap(), vec![]);
    }

    #[test]
    fn geometry_conflicts_keep_whole_geometries() {
        let line = |dy: f64| {
            Some(Geometry::LineString((0..50).map(|i| Coord::xy(114.0 + f64::from(i) * 0.001, 30.0 + dy)).collect()))
        };
        let (mut a, mut b) = (base(), base());
        a.edit(&schema(), A, &zhang(), Edit::SetGeometry(line(0.001))).unwrap().unwrap();
        b.edit(&schema(), B, &li(), Edit::SetGeometry(line(0.002))).unwrap().unwrap();
        sync(&mut a, &mut b);
        let shown = a.state(&schema()).unwrap().feature.geometry;
        assert!(shown == line(0.001) || shown == line(0.002), "{shown:?}");
        let c = &a.conflicts(&schema()).unwrap()[0];
        assert_eq!(c.attribute, "geometry");
        let mut values = vec![c.winner.value.clone(), c.others[0].value.clone()];
        values.sort_by_key(|v| format!("{v:?}"));
        assert_eq!(values, vec![ConflictValueKind::Geometry(line(0.001)), ConflictValueKind::Geometry(line(0.002))]);
    }

    #[test]
    fn delete_wins_over_a_concurrent_edit_which_is_flagged() {
        let (mut a, mut b) = (base(), base());
        let deletion = li();
        b.edit(&schema(), B, &deletion, Edit::Delete).unwrap().unwrap();
        set(&mut a, A, &zhang(), &[("深度", Value::Real(2.5))]);
        a.edit(&schema(), A, &zhang(), Edit::SetCode("420111-JG-0002".into())).unwrap().unwrap();
        sync(&mut a, &mut b);
        for doc in [&a, &b] {
            let st = doc.state(&schema()).unwrap();
            assert!(st.deleted);
            // The edits are in the document (and so in history), just not alive.
            assert_eq!(st.feature.properties.get("深度"), Some(&Value::Real(2.5)));
            let conflicts = doc.conflicts(&schema()).unwrap();
            assert_eq!(conflicts.len(), 1, "{conflicts:?}");
            let c = &conflicts[0];
            assert_eq!((c.kind, c.attribute.as_str()), (ConflictKind::DeletedWhileEdited, "deleted"));
            assert_eq!(
                (c.winner.value.clone(), c.winner.user.as_deref(), c.winner.time),
                (ConflictValueKind::Deleted(true), Some("李四"), Some(deletion.time))
            );
            assert_eq!(c.others.len(), 2);
            assert!(
                c.others
                    .iter()
                    .all(|o| o.value == ConflictValueKind::Deleted(false) && o.user.as_deref() == Some("张三"))
            );
        }
        // Restoring brings the entity back with the edit's values and clears the flag.
        let mut restored = a.clone();
        restored.edit(&schema(), A, &zhang(), Edit::Restore).unwrap().unwrap();
        let st = restored.state(&schema()).unwrap();
        assert!(!st.deleted);
        assert_eq!(
            (st.feature.properties.get("深度"), st.feature.code.as_str()),
            (Some(&Value::Real(2.5)), "420111-JG-0002")
        );
        assert_eq!(restored.conflicts(&schema()).unwrap(), vec![]);
        // Confirming the deletion (already deleted: written anyway, after every edit) clears it too.
        let confirm = b.edit(&schema(), B, &li(), Edit::Delete).unwrap().unwrap();
        assert!(b.state(&schema()).unwrap().deleted);
        assert_eq!(b.conflicts(&schema()).unwrap(), vec![]);
        a.apply_changes(&[confirm]).unwrap();
        assert_eq!(a.conflicts(&schema()).unwrap(), vec![]);
        // Once settled, deleting again writes nothing.
        assert_eq!(a.edit(&schema(), A, &zhang(), Edit::Delete).unwrap(), None);
        // An edit made after seeing the deletion is not a race.
        set(&mut a, A, &zhang(), &[("深度", Value::Real(9.0))]);
        assert_eq!(a.conflicts(&schema()).unwrap(), vec![]);
    }

    #[test]
    fn resolving_a_deletion_race() {
        for keep_deleted in [true, false] {
            let (mut a, mut b) = (base(), base());
            b.edit(&schema(), B, &li(), Edit::Delete).unwrap().unwrap();
            set(&mut a, A, &zhang(), &[("深度", Value::Real(2.5))]);
            sync(&mut a, &mut b);
            let resolve = Edit::Resolve { attribute: "deleted".into(), value: Resolved::Deleted(keep_deleted) };
            let change =
                a.edit(&schema(), A, &meta("王五", "办公室", "2025-06-02T10:00:00Z"), resolve).unwrap().unwrap();
            b.apply_changes(&[change]).unwrap();
            for doc in [&a, &b] {
                assert_eq!(doc.state(&schema()).unwrap().deleted, keep_deleted);
                assert_eq!(doc.conflicts(&schema()).unwrap(), vec![]);
            }
        }
    }

    #[test]
    fn applying_is_idempotent_and_checks_dependencies() {
        let mut device = base();
        let c1 = set(&mut device, A, &zhang(), &[("深度", Value::Real(2.0))]);
        let c2 = set(&mut device, A, &zhang(), &[("深度", Value::Real(3.0))]);
        let mut office = base();
        let heads = office.heads();
        assert_eq!(office.apply_changes(std::slice::from_ref(&c2)), Err(Error::MissingDependencies));
        assert_eq!(office.missing_dependencies(std::slice::from_ref(&c2)).unwrap(), vec![change_hash(&c1).unwrap()]);
        assert_eq!(office.heads(), heads, "nothing applied");
        // Out of order and repeated within one batch is fine.
        assert_eq!(office.apply_changes(&[c2.clone(), c1.clone(), c2.clone()]).unwrap(), 2);
        assert_eq!(office.apply_changes(&[c1.clone(), c2.clone()]).unwrap(), 0);
        assert_eq!(office.heads(), device.heads());
        assert_eq!(prop(&office, "深度"), Some(Value::Real(3.0)));
        assert!(office.has_change(&change_hash(&c2).unwrap()));
        assert!(!base().has_change(&change_hash(&c2).unwrap()));
        let e = office.apply_changes(&[c1.clone(), b"garbage".to_vec()]).unwrap_err();
        assert!(matches!(&e, Error::Invalid(m) if m.starts_with("change 2 of 2")), "{e}");
        assert!(change_hash(b"").is_err());
        // A create needs no base.
        let (_, create) = EntityDoc::create(&schema(), &feature(), A, &zhang()).unwrap();
        assert_eq!(base().apply_changes(std::slice::from_ref(&create)).unwrap(), 1);
        assert!(matches!(EntityDoc::from_changes(&[c2]), Err(Error::MissingDependencies)));
        assert_eq!(EntityDoc::from_changes(std::slice::from_ref(&create)).unwrap().entity_id().unwrap(), id());
        let mut empty = EntityDoc::load(&[]).unwrap();
        assert!(empty.state(&schema()).unwrap_err().to_string().contains("`id`: missing"));
        assert_eq!(empty.apply_changes(&[create]).unwrap(), 1);
        assert_eq!(empty.state(&schema()).unwrap().feature, feature());
    }

    #[test]
    fn merge_takes_what_is_missing() {
        let (mut a, mut b) = (base(), base());
        set(&mut a, A, &zhang(), &[("深度", Value::Real(2.0))]);
        set(&mut b, B, &li(), &[("数量", Value::Integer(4))]);
        a.merge(&mut b).unwrap();
        assert_eq!((prop(&a, "深度"), prop(&a, "数量")), (Some(Value::Real(2.0)), Some(Value::Integer(4))));
        assert_eq!(a.changes_after(&b.heads()).len(), 1);
    }

    fn server_meta(version: i64) -> ServerMeta {
        ServerMeta { version, tx: 100 + version, author: "导入程序".into(), time: t("2025-06-03T12:00:00Z") }
    }

    #[test]
    fn server_changes_are_deterministic() {
        let mut target = EntityState { feature: feature(), deleted: false };
        target.feature.properties.insert("深度".into(), Value::Real(4.0));
        target.feature.properties.remove("名称");
        let (mut one, mut two) = (base(), base());
        let c1 = one.server_change(&schema(), &target, &server_meta(2)).unwrap().unwrap();
        let c2 = two.server_change(&schema(), &target, &server_meta(2)).unwrap().unwrap();
        assert_eq!(c1, c2);
        assert_eq!(one.heads(), two.heads());
        assert_eq!(one.state(&schema()).unwrap(), target);
        let ops = one.change_ops(&change_hash(&c1).unwrap()).unwrap();
        assert_eq!(ops.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["p.f1", "p.f2"]);
        let origin = one.origin_of_change(&change_hash(&c1).unwrap());
        assert_eq!(
            (origin.user.as_deref(), origin.time, origin.op),
            (Some("导入程序"), Some(server_meta(2).time), None)
        );
        assert_eq!(one.server_change(&schema(), &target, &server_meta(3)).unwrap(), None);
        // A later version, then deletion, by the same server actor.
        target.deleted = true;
        let c3 = one.server_change(&schema(), &target, &server_meta(3)).unwrap().unwrap();
        assert_eq!(two.server_change(&schema(), &target, &server_meta(3)).unwrap().unwrap(), c3);
        assert!(one.state(&schema()).unwrap().deleted);
        let mut other = target.clone();
        other.feature.id = "0192f3c4-0000-7000-8000-000000000002".parse().unwrap();
        assert!(matches!(one.server_change(&schema(), &other, &server_meta(4)), Err(Error::WrongEntity { .. })));
    }

    #[test]
    fn device_edits_merge_with_concurrent_server_changes() {
        let mut server = base();
        let mut device = base();
        let mut target = EntityState { feature: feature(), deleted: false };
        target.feature.properties.insert("数量".into(), Value::Integer(7));
        let sc = server.server_change(&schema(), &target, &server_meta(2)).unwrap().unwrap();
        let dc = set(&mut device, A, &zhang(), &[("深度", Value::Real(2.0))]);
        assert_eq!(server.apply_changes(&[dc]).unwrap(), 1);
        assert_eq!(device.apply_changes(&[sc]).unwrap(), 1);
        assert_eq!(server.state(&schema()).unwrap(), device.state(&schema()).unwrap());
        assert_eq!((prop(&server, "数量"), prop(&server, "深度")), (Some(Value::Integer(7)), Some(Value::Real(2.0))));
        assert_eq!(server.conflicts(&schema()).unwrap(), vec![]);
    }

    #[test]
    fn changes_by_and_latest_edit_time() {
        let mut doc = base();
        assert_eq!(doc.latest_edit_time(), None);
        let c1 = set(&mut doc, A, &li(), &[("深度", Value::Real(2.0))]);
        let c2 = set(&mut doc, A, &zhang(), &[("深度", Value::Real(3.0))]);
        set(&mut doc, B, &zhang(), &[("数量", Value::Integer(3))]);
        assert_eq!(doc.changes_by(A), vec![c1, c2]);
        assert_eq!(doc.changes_by(C), Vec::<Vec<u8>>::new());
        // The newest device time, whichever device it came from (server changes carry none).
        assert_eq!(doc.latest_edit_time(), Some(li().time));
        let st = doc.state(&schema()).unwrap();
        doc.server_change(&schema(), &EntityState { deleted: true, ..st }, &server_meta(5)).unwrap().unwrap();
        assert_eq!(doc.latest_edit_time(), Some(li().time));
    }
}
