//! The built geocoder: a gazetteer plus its indexes, and the live record set.
//!
//! Building the division indexes (about 1.7 million spellings, 0.5 million pinyin keys) takes a
//! few seconds, so they are built once — when the gazetteer is built or subset — and carried in
//! the snapshot as FST bytes. Records (roads, addresses, POIs) and aliases change with the store's
//! layers, so they live in small hash maps and an R-tree that are edited in place: upserting or
//! removing one record costs microseconds and is visible to the next query.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use jieba_rs::Jieba;
use rstar::RTree;
use rstar::primitives::{GeomWithData, Line};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gazetteer::{DivId, Division, Gazetteer, LonLat, NO_PARENT};
use crate::geocode::Scope;
use crate::index::{NameIndex, posting};
use crate::phonetic;
use crate::records::{Alias, Record};
use crate::text::{Level, NameKind, name_variants, normalize};

/// Handle of one record version in the live set.
pub(crate) type Slot = u32;

/// What a dynamic name key stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    RoadName,
    RoadAlias,
    PoiName,
    PoiAlias,
    /// A road name known only from address points.
    AddressRoad,
}

pub(crate) type PointItem = GeomWithData<[f64; 2], Slot>;
pub(crate) type LineItem = GeomWithData<Line<[f64; 2]>, Slot>;

/// Records and aliases, indexed for matching and nearest-neighbour search.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub slots: Vec<Option<Record>>,
    free: Vec<Slot>,
    by_id: HashMap<String, Vec<Slot>>,
    /// Normalised road/POI names and aliases → (slot, role).
    pub names: HashMap<String, Vec<(Slot, Role)>>,
    /// (normalised road name, house number) → address slots.
    pub addresses: HashMap<(String, String), Vec<Slot>>,
    /// Normalised alias → alias entries.
    pub aliases: HashMap<String, Vec<usize>>,
    pub alias_list: Vec<Alias>,
    /// For each first character, a bit per key length (1..=63) present: lets the scan skip
    /// positions where no key can start.
    pub first: HashMap<char, u64>,
    pub points: RTree<PointItem>,
    pub lines: RTree<LineItem>,
    /// Suggestion keys (name, full pinyin, pinyin initials) → slots.
    pub prefix: BTreeMap<String, Vec<Slot>>,
}

impl Live {
    fn add_key(&mut self, key: String, slot: Slot, role: Role) {
        if key.chars().count() < 2 {
            return;
        }
        self.mark_first(&key);
        for k in suggest_keys(&key) {
            self.prefix.entry(k).or_default().push(slot);
        }
        self.names.entry(key).or_default().push((slot, role));
    }

    fn mark_first(&mut self, key: &str) {
        let len = key.chars().count().min(63);
        if let Some(c) = key.chars().next() {
            *self.first.entry(c).or_default() |= 1 << len;
        }
    }

    fn insert(&mut self, record: Record) -> Slot {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as Slot
            }
        };
        self.by_id.entry(record.id().to_string()).or_default().push(slot);
        match &record {
            Record::Road(r) => {
                self.add_key(normalize(&r.name), slot, Role::RoadName);
                for a in &r.aliases {
                    self.add_key(normalize(a), slot, Role::RoadAlias);
                }
                for w in r.line.windows(2) {
                    self.lines.insert(GeomWithData::new(Line::new(w[0], w[1]), slot));
                }
            }
            Record::Address(a) => {
                let road = normalize(&a.road);
                self.add_key(road.clone(), slot, Role::AddressRoad);
                self.addresses.entry((road, normalize_number(&a.number))).or_default().push(slot);
                self.points.insert(GeomWithData::new(a.point, slot));
            }
            Record::Poi(p) => {
                self.add_key(normalize(&p.name), slot, Role::PoiName);
                for a in &p.aliases {
                    self.add_key(normalize(a), slot, Role::PoiAlias);
                }
                self.points.insert(GeomWithData::new(p.point, slot));
            }
        }
        self.slots[slot as usize] = Some(record);
        slot
    }

    fn remove_slot(&mut self, slot: Slot) {
        let Some(record) = self.slots.get_mut(slot as usize).and_then(Option::take) else { return };
        let prefix = &mut self.prefix;
        let mut drop_key = |names: &mut HashMap<String, Vec<(Slot, Role)>>, key: String| {
            for k in suggest_keys(&key) {
                if let Some(v) = prefix.get_mut(&k) {
                    v.retain(|s| *s != slot);
                    if v.is_empty() {
                        prefix.remove(&k);
                    }
                }
            }
            if let Some(v) = names.get_mut(&key) {
                v.retain(|(s, _)| *s != slot);
                if v.is_empty() {
                    names.remove(&key);
                }
            }
        };
        match &record {
            Record::Road(r) => {
                drop_key(&mut self.names, normalize(&r.name));
                for a in &r.aliases {
                    drop_key(&mut self.names, normalize(a));
                }
                for w in r.line.windows(2) {
                    self.lines.remove(&GeomWithData::new(Line::new(w[0], w[1]), slot));
                }
            }
            Record::Address(a) => {
                let road = normalize(&a.road);
                drop_key(&mut self.names, road.clone());
                let key = (road, normalize_number(&a.number));
                if let Some(v) = self.addresses.get_mut(&key) {
                    v.retain(|s| *s != slot);
                    if v.is_empty() {
                        self.addresses.remove(&key);
                    }
                }
                self.points.remove(&GeomWithData::new(a.point, slot));
            }
            Record::Poi(p) => {
                drop_key(&mut self.names, normalize(&p.name));
                for a in &p.aliases {
                    drop_key(&mut self.names, normalize(a));
                }
                self.points.remove(&GeomWithData::new(p.point, slot));
            }
        }
        self.free.push(slot);
    }

    pub fn get(&self, slot: Slot) -> Option<&Record> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    fn add_alias(&mut self, alias: Alias) {
        let key = normalize(&alias.alias);
        self.mark_first(&key);
        self.aliases.entry(key).or_default().push(self.alias_list.len());
        self.alias_list.push(alias);
    }
}

/// The keys a record name is suggested under: itself, its full pinyin and its pinyin initials.
fn suggest_keys(key: &str) -> Vec<String> {
    let mut v = vec![key.to_string()];
    v.extend(phonetic::full_pinyin(key));
    v.extend(phonetic::initials(key));
    v.dedup();
    v
}

/// House numbers compare without 号 and with ASCII digits (１０３７號 = 1037).
pub(crate) fn normalize_number(n: &str) -> String {
    normalize(n).trim_end_matches('号').to_string()
}

/// The geocoder: answers forward, reverse and suggestion queries offline.
#[derive(Debug)]
pub struct Geocoder {
    pub(crate) gaz: Gazetteer,
    /// Every spelling of every division name.
    pub(crate) names: NameIndex,
    /// Pinyin readings of official and short names above village level.
    pub(crate) pinyin: NameIndex,
    /// Prefixes for suggestions: names, pinyin initials and full pinyin above village level.
    pub(crate) suggest: NameIndex,
    /// Foreign countries and cities (see `geocode::FOREIGN`).
    pub(crate) foreign: NameIndex,
    pub(crate) live: Live,
    /// Division centre points by id (dense, NaN where unknown), and an R-tree of them.
    pub(crate) centre: Vec<Option<LonLat>>,
    pub(crate) centres: RTree<GeomWithData<[f64; 2], DivId>>,
    /// Word segmenter for the part of an address no index explains; built on first use because
    /// loading its dictionary takes a while and most queries never need it.
    pub(crate) jieba: OnceLock<Jieba>,
}

/// Longest division spelling the pinyin scan looks for, in characters.
pub(crate) const MAX_PINYIN_LEN: usize = 12;

impl Geocoder {
    /// Builds the indexes for a gazetteer (a few seconds for the whole country).
    pub fn new(gaz: Gazetteer) -> Result<Geocoder> {
        let mut names = Vec::with_capacity(gaz.divisions.len() * 3);
        let mut pinyin = Vec::new();
        let mut suggest = Vec::new();
        for (i, d) in gaz.divisions.iter().enumerate() {
            let id = i as DivId;
            if d.is_placeholder() {
                continue;
            }
            for (v, kind) in name_variants(&d.name, d.level) {
                if d.level < Level::Village && matches!(kind, NameKind::Official | NameKind::Short) {
                    let n = v.chars().count();
                    if (2..=MAX_PINYIN_LEN).contains(&n) {
                        for key in phonetic::reading_keys(&v, 4) {
                            pinyin.push((key, posting(id, kind)));
                        }
                    }
                    if let Some(ini) = phonetic::initials(&v) {
                        suggest.push((ini, posting(id, kind)));
                    }
                    if let Some(full) = phonetic::full_pinyin(&v) {
                        suggest.push((full, posting(id, kind)));
                    }
                    suggest.push((v.clone(), posting(id, kind)));
                }
                names.push((v, posting(id, kind)));
            }
        }
        let names = NameIndex::build(names)?;
        let pinyin = NameIndex::build(pinyin)?;
        let suggest = NameIndex::build(suggest)?;
        Geocoder::assemble(gaz, names, pinyin, suggest)
    }

    fn assemble(gaz: Gazetteer, names: NameIndex, pinyin: NameIndex, suggest: NameIndex) -> Result<Geocoder> {
        let mut centre = vec![None; gaz.divisions.len()];
        for (i, p) in &gaz.points {
            if let Some(c) = centre.get_mut(*i as usize) {
                *c = Some(*p);
            }
        }
        let items = gaz
            .points
            .iter()
            .filter(|(i, _)| gaz.divisions.get(*i as usize).is_some_and(|d| d.level >= Level::County))
            .map(|(i, p)| GeomWithData::new([p.lon, p.lat], *i))
            .collect();
        let centres = RTree::bulk_load(items);
        let mut live = Live::default();
        for a in gaz.aliases.clone() {
            live.add_alias(a);
        }
        for r in gaz.records.clone() {
            live.insert(r);
        }
        let foreign = NameIndex::build(
            crate::geocode::FOREIGN
                .iter()
                .enumerate()
                .map(|(i, f)| (normalize(f), posting(i as DivId, NameKind::Official)))
                .collect(),
        )?;
        Ok(Geocoder { gaz, names, pinyin, suggest, foreign, live, centre, centres, jieba: OnceLock::new() })
    }

    pub fn gazetteer(&self) -> &Gazetteer {
        &self.gaz
    }

    pub(crate) fn div(&self, id: DivId) -> &Division {
        &self.gaz.divisions[id as usize]
    }

    /// True when `a` is `b` or one of its ancestors.
    pub(crate) fn contains(&self, a: DivId, b: DivId) -> bool {
        a <= b && b < self.gaz.divisions[a as usize].end
    }

    pub(crate) fn parent(&self, id: DivId) -> Option<DivId> {
        let p = self.gaz.divisions[id as usize].parent;
        (p != NO_PARENT).then_some(p)
    }

    /// The division's chain from the province down to itself.
    pub(crate) fn chain(&self, id: DivId) -> Vec<DivId> {
        let mut v = vec![id];
        let mut cur = id;
        while let Some(p) = self.parent(cur) {
            v.push(p);
            cur = p;
        }
        v.reverse();
        v
    }

    /// The ancestor (or self) at `level`, if the chain reaches that deep.
    pub(crate) fn at_level(&self, id: DivId, level: Level) -> Option<DivId> {
        let mut cur = id;
        loop {
            let d = self.div(cur);
            if d.level == level {
                return Some(cur);
            }
            if d.level < level {
                return None;
            }
            cur = self.parent(cur)?;
        }
    }

    /// Direct children, in code order.
    pub(crate) fn children(&self, id: DivId) -> impl Iterator<Item = DivId> + '_ {
        let end = self.div(id).end;
        let mut next = id + 1;
        std::iter::from_fn(move || {
            if next >= end {
                return None;
            }
            let c = next;
            next = self.div(c).end;
            Some(c)
        })
    }

    /// The best known point of a division: its own centre, else its nearest ancestor's, with the
    /// level the point belongs to.
    pub(crate) fn point_of(&self, id: DivId) -> Option<(LonLat, Level)> {
        let mut cur = id;
        loop {
            if let Some(p) = self.centre[cur as usize] {
                return Some((p, self.div(cur).level));
            }
            cur = self.parent(cur)?;
        }
    }

    pub(crate) fn resolve_code(&self, code: &str) -> Option<DivId> {
        self.gaz.find(code)
    }

    /// Adds a record version, or replaces the version of the same id with the same valid-from.
    /// Visible to the next query; costs no rebuild.
    pub fn upsert(&mut self, record: Record) -> Result<()> {
        record.validate()?;
        if self.resolve_code(record.admin_code()).is_none() {
            return Err(Error::UnknownCode {
                code: record.admin_code().into(),
                context: format!("{} {:?}", record.kind(), record.id()),
            });
        }
        let same: Vec<Slot> = self
            .live
            .by_id
            .get(record.id())
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|&s| self.live.get(s).is_some_and(|r| r.valid().from == record.valid().from))
                    .collect()
            })
            .unwrap_or_default();
        for s in same {
            self.live.remove_slot(s);
            if let Some(v) = self.live.by_id.get_mut(record.id()) {
                v.retain(|x| *x != s);
            }
        }
        self.live.insert(record);
        Ok(())
    }

    /// Removes every version of a record; returns how many there were.
    pub fn remove(&mut self, id: &str) -> usize {
        let slots = self.live.by_id.remove(id).unwrap_or_default();
        for &s in &slots {
            self.live.remove_slot(s);
        }
        slots.len()
    }

    /// Adds a user alias (华科 → 华中科技大学), visible to the next query.
    pub fn add_alias(&mut self, alias: Alias) -> Result<()> {
        if let Some(c) = &alias.code
            && self.resolve_code(c).is_none()
        {
            return Err(Error::UnknownCode { code: c.clone(), context: format!("alias {:?}", alias.alias) });
        }
        self.live.add_alias(alias);
        Ok(())
    }

    /// Removes every alias entry with this alias text; returns how many there were.
    pub fn remove_alias(&mut self, alias: &str) -> usize {
        let key = normalize(alias);
        let Some(idx) = self.live.aliases.remove(&key) else { return 0 };
        idx.len()
    }

    /// Every live record version.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.live.slots.iter().flatten()
    }

    /// The gazetteer with the live records and aliases as they are now (for snapshots and subsets).
    pub fn current_gazetteer(&self) -> Gazetteer {
        let mut g = self.gaz.clone();
        g.records = self.records().cloned().collect();
        g.aliases =
            self.live.aliases.values().flatten().filter_map(|&i| self.live.alias_list.get(i).cloned()).collect();
        g
    }

    pub(crate) fn jieba(&self) -> &Jieba {
        self.jieba.get_or_init(Jieba::new)
    }
}

/// Snapshot layout, version 1: the magic `SKGZ`, a little-endian u16 version, then the postcard
/// encoding of this struct. Documented in the crate docs; a new layout gets a new version and the
/// old one stays readable.
#[derive(Serialize, Deserialize)]
struct SnapshotV1 {
    gazetteer: Gazetteer,
    names: (Vec<u8>, Vec<u32>, Vec<u32>),
    pinyin: (Vec<u8>, Vec<u32>, Vec<u32>),
    suggest: (Vec<u8>, Vec<u32>, Vec<u32>),
}

const MAGIC: &[u8; 4] = b"SKGZ";
const VERSION: u16 = 1;

impl Geocoder {
    /// Encodes the gazetteer, its live records and the built indexes (see `SnapshotV1`).
    pub fn to_snapshot(&self) -> Result<Vec<u8>> {
        let own = |ix: &NameIndex| {
            let (f, o, p) = ix.parts();
            (f.to_vec(), o.to_vec(), p.to_vec())
        };
        let snap = SnapshotV1 {
            gazetteer: self.current_gazetteer(),
            names: own(&self.names),
            pinyin: own(&self.pinyin),
            suggest: own(&self.suggest),
        };
        let mut out = Vec::with_capacity(64 << 20);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        let body = postcard::to_allocvec(&snap).map_err(|e| Error::Snapshot { message: e.to_string() })?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Loads a snapshot written by [`to_snapshot`](Self::to_snapshot); no index is rebuilt.
    pub fn from_snapshot(bytes: &[u8]) -> Result<Geocoder> {
        if bytes.len() < 6 || &bytes[..4] != MAGIC {
            return Err(Error::Snapshot { message: "not a shikong gazetteer snapshot (magic SKGZ missing)".into() });
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != VERSION {
            return Err(Error::Snapshot {
                message: format!("unsupported version {version} (this build reads {VERSION})"),
            });
        }
        let snap: SnapshotV1 =
            postcard::from_bytes(&bytes[6..]).map_err(|e| Error::Snapshot { message: format!("corrupt: {e}") })?;
        let n = snap.gazetteer.divisions.len();
        let bad_id = snap
            .gazetteer
            .divisions
            .iter()
            .any(|d| (d.parent != NO_PARENT && d.parent as usize >= n) || d.end as usize > n);
        if bad_id {
            return Err(Error::Snapshot { message: "corrupt: a division links outside the list".into() });
        }
        let names = NameIndex::from_parts(snap.names.0, snap.names.1, snap.names.2)?;
        let pinyin = NameIndex::from_parts(snap.pinyin.0, snap.pinyin.1, snap.pinyin.2)?;
        let suggest = NameIndex::from_parts(snap.suggest.0, snap.suggest.1, snap.suggest.2)?;
        let max_posting = [&names, &pinyin, &suggest]
            .iter()
            .flat_map(|ix| ix.parts().2.iter().map(|&p| crate::index::posting_id(p)))
            .max()
            .unwrap_or(0);
        if n > 0 && max_posting as usize >= n {
            return Err(Error::Snapshot { message: "corrupt: the name index points past the division list".into() });
        }
        Geocoder::assemble(snap.gazetteer, names, pinyin, suggest)
    }

    /// A geocoder for a device replica: see [`Gazetteer::subset`]; the indexes are rebuilt for it.
    pub fn subset(&self, codes: &[&str]) -> Result<Geocoder> {
        self.subset_scoped(codes, &Scope::All)
    }

    /// Like [`subset`](Self::subset), carrying only the records `scope` sees: what a device
    /// whose user reads those layers may hold offline.
    pub fn subset_scoped(&self, codes: &[&str], scope: &Scope) -> Result<Geocoder> {
        let mut g = self.current_gazetteer();
        g.records.retain(|r| scope.sees(r));
        Geocoder::new(g.subset(codes)?)
    }
}
