//! Convergence of offline sync, in process: the server's sync engine over a real store, 2–6 real
//! replica files, random edits (create, set field, move, delete, attach a photo), random offline
//! periods and sync orders, and injected failures — the push response lost after the server
//! committed, the same push sent twice, a pull page lost before it was applied, an attachment not
//! uploaded. After every replica syncs to quiescence: all replicas hold exactly the server's
//! current state, every change the server ever acknowledged is in its documents (the store's
//! history), and every replica still opens cleanly in GDAL.
//!
//! Most runs also crash the server: at a random step an online backup of its data folder is
//! taken (`shikong-backup`, as `shikong backup` does), more steps may run (pushes the server
//! acknowledges and then loses), then the store is dropped, the backup restored into a new folder
//! and the store reopened; the same replicas keep syncing. Nothing acknowledged before the backup
//! may be missing from the restored store, and after quiescence nothing any device acknowledged
//! is missing either: the server's marks tell the devices it went back in time, and they send
//! their own changes again. The one exception is a change whose acknowledging device no longer
//! holds it — it deleted the entity (or pulled its deletion) and forgot the document — which no
//! one can send again.
//!
//! The same property runs on PostgreSQL (`replicas_and_server_converge_on_postgres`, a fresh
//! database per case): there the crash is a server restart — the store reopened from its URL —
//! and nothing acknowledged may be missing (the database, not a file copy, is what survives).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use proptest::prelude::*;
use shikong_auth::{Actor as AuthActor, AuthConfig, AuthStore, PasswordCost, Principal, Role};
use shikong_model::{Bbox, Coord, EntityId, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Value};
use shikong_protocol as wire;
use shikong_replica::{EditMeta, Evidence, FeatureKey, NewFeature, Replica};
use shikong_store::{LayerDef, NewFeature as StoreNew, Query, Store, StoreConfig, TxMeta};
use shikong_sync_engine::sync;

const LAYER: &str = "asset";
const WORLD: Bbox = Bbox { min_x: 73.0, min_y: 3.0, max_x: 136.0, max_y: 54.0 };

#[derive(Debug, Clone)]
enum Fail {
    None,
    /// The server commits, the device never hears back (it resends the same batch later).
    LoseResponse,
    /// The device sends the batch twice.
    Duplicate,
}

#[derive(Debug, Clone)]
enum Step {
    Create {
        dev: usize,
        x: f64,
        y: f64,
    },
    Set {
        dev: usize,
        pick: usize,
        depth: u8,
    },
    Rename {
        dev: usize,
        pick: usize,
        name: u8,
    },
    Move {
        dev: usize,
        pick: usize,
        x: f64,
        y: f64,
    },
    Delete {
        dev: usize,
        pick: usize,
    },
    Attach {
        dev: usize,
        pick: usize,
        photo: u8,
    },
    Upload {
        dev: usize,
        skip: bool,
    },
    Push {
        dev: usize,
        fail: Fail,
    },
    Pull {
        dev: usize,
        lose_page: bool,
    },
    /// Every device syncs at the same time, each on its own thread.
    Storm,
}

fn step(devices: usize) -> impl Strategy<Value = Step> {
    let dev = 0..devices;
    let coord = (114.0..114.6f64, 30.3..30.8f64);
    prop_oneof![
        2 => (dev.clone(), coord.clone()).prop_map(|(dev, (x, y))| Step::Create { dev, x, y }),
        4 => (dev.clone(), any::<usize>(), 0..50u8).prop_map(|(dev, pick, depth)| Step::Set { dev, pick, depth }),
        2 => (dev.clone(), any::<usize>(), 0..4u8).prop_map(|(dev, pick, name)| Step::Rename { dev, pick, name }),
        2 => (dev.clone(), any::<usize>(), coord).prop_map(|(dev, pick, (x, y))| Step::Move { dev, pick, x, y }),
        1 => (dev.clone(), any::<usize>()).prop_map(|(dev, pick)| Step::Delete { dev, pick }),
        1 => (dev.clone(), any::<usize>(), 0..3u8).prop_map(|(dev, pick, photo)| Step::Attach { dev, pick, photo }),
        1 => (dev.clone(), any::<bool>()).prop_map(|(dev, skip)| Step::Upload { dev, skip }),
        3 => (dev.clone(), prop_oneof![4 => Just(Fail::None), 1 => Just(Fail::LoseResponse), 1 => Just(Fail::Duplicate)])
            .prop_map(|(dev, fail)| Step::Push { dev, fail }),
        3 => (dev, prop::bool::weighted(0.2)).prop_map(|(dev, lose_page)| Step::Pull { dev, lose_page }),
        2 => Just(Step::Storm),
    ]
}

/// A change the server acknowledged: which device pushed it, to which entity.
type Acked = (usize, EntityId, shikong_crdt::ChangeHash);

/// Where the server's store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// The SQLite store of its data folder.
    Sqlite,
    /// A fresh database in the private PostgreSQL cluster of `shikong-pgtest`.
    Postgres,
}

struct World {
    dir: tempfile::TempDir,
    /// The PostgreSQL store's URL (None: the SQLite store in `data`).
    postgres: Option<String>,
    /// The server's data folder (a new one after each restore).
    data: PathBuf,
    store: std::sync::Arc<dyn Store>,
    auth: AuthStore,
    devices: Vec<(Principal, Replica)>,
    blobs: HashSet<String>,
    acknowledged: Vec<Acked>,
    /// The last backup, and how many changes had been acknowledged when it was taken.
    backup: Option<(PathBuf, usize)>,
    restores: usize,
}

fn schema() -> LayerSchema {
    let mut depth = FieldDef::new("深度", FieldType::Real);
    depth.min = Some(0.0);
    LayerSchema {
        fields: vec![FieldDef::new("名称", FieldType::Text), depth, FieldDef::new("照片", FieldType::Attachments)],
    }
}

fn meta(p: &Principal, n: usize) -> EditMeta {
    EditMeta { user: p.username.clone(), device: Some(format!("平板-{n}")), time: jiff::Timestamp::now() }
}

impl World {
    fn new(devices: usize) -> World {
        World::on(Backend::Sqlite, devices)
    }

    fn on(backend: Backend, devices: usize) -> World {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let postgres = (backend == Backend::Postgres).then(|| shikong_pgtest::Cluster::shared().fresh_db());
        let config = match &postgres {
            Some(url) => StoreConfig::Postgres { url: url.clone() },
            None => StoreConfig::in_dir(&data),
        };
        let store = shikong_store::init(&config).unwrap();
        let auth = AuthStore::open_in_memory()
            .unwrap()
            .with_config(AuthConfig { password_cost: PasswordCost::INSECURE_FAST, ..AuthConfig::default() });
        let mut tx = store.begin(TxMeta::by("office")).unwrap();
        tx.create_layer(LayerDef::new(LAYER, GeometryKind::Point, schema())).unwrap();
        for i in 0..5 {
            tx.insert(
                LAYER,
                StoreNew {
                    code: Some(format!("A-{i}")),
                    geometry: Some(Geometry::Point(Coord::xy(114.1 + f64::from(i) * 0.05, 30.5))),
                    properties: [("名称".to_string(), Value::from(format!("资产{i}")))].into(),
                    ..StoreNew::default()
                },
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let local = AuthActor::local("test");
        let mut out = Vec::new();
        for n in 0..devices {
            let name = format!("inspector{n}");
            auth.add_user(&local, &name, Role::Inspector, "a-long-password").unwrap();
            let token = auth.issue_token(&local, &name, None).unwrap();
            let p = auth.verify(token.secret.expose()).unwrap();
            let path = dir.path().join(format!("device{n}.gpkg"));
            let req = wire::ReplicaRequest {
                protocol: wire::PROTOCOL_VERSION,
                layers: vec![LAYER.into()],
                area: None,
                name: None,
            };
            sync::cut_replica(&*store, &auth, &p, "http://test", &req, &path).unwrap();
            out.push((p, Replica::open(&path).unwrap()));
        }
        World {
            dir,
            postgres,
            data,
            store,
            auth,
            devices: out,
            blobs: HashSet::new(),
            acknowledged: Vec::new(),
            backup: None,
            restores: 0,
        }
    }

    /// An online backup of the server's data folder, as `shikong backup --data DIR OUT` takes it
    /// (the store stays open; the next steps keep writing).
    fn take_backup(&mut self) {
        if self.postgres.is_some() {
            // PostgreSQL: the database itself survives the crash (see `crash_and_restore`).
            self.backup = Some((PathBuf::new(), self.acknowledged.len()));
            return;
        }
        let out = self.dir.path().join(format!("backup-{}", self.restores));
        let opts = shikong_backup::BackupOptions { data: self.data.clone(), out: out.clone(), since: None };
        shikong_backup::backup(&opts, &shikong_backup::NoProgress).unwrap();
        self.backup = Some((out, self.acknowledged.len()));
    }

    /// The server dies and comes back from the last backup (`shikong restore --data NEW BACKUP`),
    /// losing what it acknowledged since. Returns the acknowledged changes no device can send
    /// again (see the module docs).
    fn crash_and_restore(&mut self) -> Vec<Acked> {
        if let Some(url) = self.postgres.clone() {
            return self.restart_postgres(url);
        }
        let (backup, before) = self.backup.take().expect("a backup to restore");
        self.restores += 1;
        let data = self.dir.path().join(format!("data-{}", self.restores));
        // The crash: the store is closed (an empty one stands in until the restored one opens).
        let crashed = self.dir.path().join(format!("crashed-{}", self.restores));
        let placeholder = shikong_store::init(&StoreConfig::in_dir(&crashed)).unwrap();
        drop(std::mem::replace(&mut self.store, placeholder));
        shikong_backup::restore(&data, &[backup], &shikong_backup::NoProgress).unwrap();
        self.store = shikong_store::open(&StoreConfig::in_dir(&data)).unwrap();
        self.data = data;
        let layer = self.store.layer(LAYER).unwrap();
        let held = |store: &dyn Store, (_, id, hash): &Acked| {
            sync::entity_doc(store, &layer, *id).unwrap().is_some_and(|(doc, _, _)| doc.has_change(hash))
        };
        for a in &self.acknowledged[..before] {
            assert!(held(&*self.store, a), "acknowledged before the backup, missing after the restore: {a:?}");
        }
        // Lost by the restore: each must come back from the device that pushed it, unless that
        // device no longer holds it (it no longer shows the entity: deleted, document forgotten).
        let mut gone = Vec::new();
        for a in &self.acknowledged[before..] {
            let (dev, id, hash) = a;
            if held(&*self.store, a) || device_holds(&self.devices[*dev].1, *id, hash) {
                continue;
            }
            let shown = self.devices[*dev].1.get(LAYER, &FeatureKey::Id(*id)).unwrap().is_some();
            assert!(!shown, "device {dev} shows {id} but no longer holds its acknowledged change {hash}");
            gone.push(*a);
        }
        gone
    }

    /// PostgreSQL: the server process dies and starts again on the same database. Nothing it
    /// acknowledged may be missing, before the "backup" mark or after.
    fn restart_postgres(&mut self, url: String) -> Vec<Acked> {
        self.backup = None;
        // The old process's connections close as it goes; the new one opens its own.
        self.store = shikong_store::open(&StoreConfig::Postgres { url }).unwrap();
        let layer = self.store.layer(LAYER).unwrap();
        for a @ (_, id, hash) in &self.acknowledged {
            let held =
                sync::entity_doc(&*self.store, &layer, *id).unwrap().is_some_and(|(doc, _, _)| doc.has_change(hash));
            assert!(held, "acknowledged, missing after the restart on PostgreSQL: {a:?}");
        }
        Vec::new()
    }

    fn pick(&self, dev: usize, pick: usize) -> Option<EntityId> {
        let mut ids: Vec<EntityId> =
            self.devices[dev].1.query_bbox(LAYER, &WORLD).unwrap().into_iter().map(|f| f.feature.id).collect();
        ids.sort();
        (!ids.is_empty()).then(|| ids[pick % ids.len()])
    }

    fn upload(&mut self, dev: usize) {
        let r = &mut self.devices[dev].1;
        for a in r.unconfirmed_attachments().unwrap() {
            self.blobs.insert(a.sha256.clone());
            r.confirm_attachment(&a.sha256).unwrap();
        }
    }

    fn push(&mut self, dev: usize, fail: &Fail) {
        let (p, r) = &mut self.devices[dev];
        r.retry(None).unwrap();
        let Some(batch) = r.push_batch(3).unwrap() else { return };
        let blobs = self.blobs.clone();
        let has = move |sha: &str| blobs.contains(sha);
        let resp = sync::push(&*self.store, &self.auth, p, &batch, &has).unwrap();
        for (e, res) in batch.entities.iter().zip(&resp.results) {
            if !matches!(res.outcome, wire::Outcome::Rejected { .. }) {
                for c in &e.changes {
                    self.acknowledged.push((dev, EntityId(e.entity), shikong_crdt::change_hash(&c.0).unwrap()));
                }
            }
        }
        match fail {
            Fail::LoseResponse => {}
            Fail::None => {
                r.apply_push_response(&resp).unwrap();
            }
            Fail::Duplicate => {
                let again = sync::push(&*self.store, &self.auth, p, &batch, &has).unwrap();
                // Idempotent: a resent batch writes no new version.
                for (first, second) in resp.results.iter().zip(&again.results) {
                    match (&first.outcome, &second.outcome) {
                        (
                            wire::Outcome::Accepted { version: a } | wire::Outcome::Unchanged { version: a },
                            wire::Outcome::Unchanged { version: b },
                        ) => {
                            assert_eq!(a, b, "a duplicate push changed the version");
                        }
                        (wire::Outcome::Rejected { .. }, wire::Outcome::Rejected { .. }) => {}
                        (a, b) => panic!("duplicate push: first {a:?}, then {b:?}"),
                    }
                }
                r.apply_push_response(&again).unwrap();
            }
        }
    }

    fn pull(&mut self, dev: usize, lose_page: bool) -> bool {
        let (p, r) = &mut self.devices[dev];
        let record = self.store.replica(r.info().id).unwrap().unwrap();
        let cursor: sync::SyncCursor = r.cursor().unwrap().parse().unwrap();
        let seen = r.server_mark().unwrap();
        let page = sync::pull_seen(&*self.store, &self.auth, p, &record, &cursor, seen.as_deref(), 4).unwrap();
        if !lose_page {
            r.apply_pull_page(&page).unwrap();
        }
        page.more
    }

    fn quiesce(&mut self) {
        // Three rounds let every device see every other's changes; after a restore, changes sent
        // again may wait for other devices' (their dependencies) a round or two longer.
        for round in 0..12 {
            let mut pushed = false;
            for dev in 0..self.devices.len() {
                let r = &self.devices[dev].1;
                pushed |= r.pending().unwrap() > 0 || !r.rejected().unwrap().is_empty();
                self.upload(dev);
                for _ in 0..1000 {
                    let before = self.devices[dev].1.pending().unwrap();
                    self.push(dev, &Fail::None);
                    if before == 0 || self.devices[dev].1.pending().unwrap() == 0 {
                        break;
                    }
                }
                while self.pull(dev, false) {}
                if self.restores > 0 {
                    let (p, r) = &mut self.devices[dev];
                    repair(&*self.store, &self.auth, p, r);
                }
            }
            // Done once a whole round had nothing to send: everyone pulled after the last push.
            if round >= 2 && !pushed {
                break;
            }
        }
    }

    fn run(&mut self, s: &Step) {
        match s.clone() {
            Step::Create { dev, x, y } => {
                let (p, r) = &mut self.devices[dev];
                let m = meta(p, dev);
                let f = NewFeature {
                    geometry: Some(Geometry::Point(Coord::xy(x, y))),
                    properties: [("名称".to_string(), Value::from("新资产"))].into(),
                    ..NewFeature::default()
                };
                r.create_feature(LAYER, f, &m).unwrap();
            }
            Step::Set { dev, pick, depth } => self.edit(dev, pick, |r, k, m| {
                r.set_fields(LAYER, k, [("深度".to_string(), Value::Real(f64::from(depth) / 4.0))].into(), m)
            }),
            Step::Rename { dev, pick, name } => self.edit(dev, pick, |r, k, m| {
                r.set_fields(
                    LAYER,
                    k,
                    [("名称".to_string(), Value::from(["井", "灯", "牌", "桩"][name as usize]))].into(),
                    m,
                )
            }),
            Step::Move { dev, pick, x, y } => {
                self.edit(dev, pick, |r, k, m| r.set_geometry(LAYER, k, Some(Geometry::Point(Coord::xy(x, y))), m))
            }
            Step::Delete { dev, pick } => self.edit(dev, pick, |r, k, m| r.delete(LAYER, k, m)),
            Step::Attach { dev, pick, photo } => self.edit(dev, pick, |r, k, m| {
                let bytes = format!("JPEG 照片 {photo}").into_bytes();
                let ev = Evidence {
                    capture_time: m.time,
                    lon: Some(114.3),
                    lat: Some(30.5),
                    heading: Some(90.0),
                    device: m.device.clone(),
                };
                let sha = r.add_attachment(&bytes, "image/jpeg", &ev)?;
                r.set_fields(LAYER, k, [("照片".to_string(), Value::Attachments(vec![sha]))].into(), m)
            }),
            Step::Upload { dev, skip } => {
                if !skip {
                    self.upload(dev);
                }
            }
            Step::Push { dev, fail } => self.push(dev, &fail),
            Step::Pull { dev, lose_page } => {
                self.pull(dev, lose_page);
            }
            Step::Storm => self.storm(),
        }
    }

    /// Every device runs a whole sync — push until nothing is pending, pull until the last page —
    /// at the same time on its own thread against the one store, then verifies itself: the sync
    /// invariant says it must reflect every transaction its pull saw, whatever ran beside it.
    fn storm(&mut self) {
        let (store, auth, blobs, restored) = (&*self.store, &self.auth, &self.blobs, self.restores > 0);
        let acknowledged: Vec<Acked> = std::thread::scope(|s| {
            let handles: Vec<_> =
                self.devices
                    .iter_mut()
                    .enumerate()
                    .map(|(n, (p, r))| {
                        s.spawn(move || {
                            let mut acked = Vec::new();
                            let has = |sha: &str| blobs.contains(sha);
                            r.retry(None).unwrap();
                            while let Some(batch) = r.push_batch(3).unwrap() {
                                let resp = sync::push(store, auth, p, &batch, &has).unwrap();
                                for (e, res) in batch.entities.iter().zip(&resp.results) {
                                    if !matches!(res.outcome, wire::Outcome::Rejected { .. }) {
                                        acked.extend(e.changes.iter().map(|c| {
                                            (n, EntityId(e.entity), shikong_crdt::change_hash(&c.0).unwrap())
                                        }));
                                    }
                                }
                                r.apply_push_response(&resp).unwrap();
                            }
                            let record = store.replica(r.info().id).unwrap().unwrap();
                            // After a restore: the repair (of what no pull mentions) adopts the
                            // store as it is now, past the cursor while others push, so a second
                            // pull brings the cursor up to it before the check.
                            for pass in 0..if restored { 2 } else { 1 } {
                                loop {
                                    let cursor: sync::SyncCursor = r.cursor().unwrap().parse().unwrap();
                                    let seen = r.server_mark().unwrap();
                                    let page =
                                        sync::pull_seen(store, auth, p, &record, &cursor, seen.as_deref(), 4).unwrap();
                                    r.apply_pull_page(&page).unwrap();
                                    if !page.more {
                                        break;
                                    }
                                }
                                if restored && pass == 0 {
                                    repair(store, auth, p, r);
                                }
                            }
                            assert_verified(store, auth, p, r, n);
                            acked
                        })
                    })
                    .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        self.acknowledged.extend(acknowledged);
    }

    fn edit(
        &mut self,
        dev: usize,
        pick: usize,
        f: impl FnOnce(&mut Replica, &FeatureKey, &EditMeta) -> shikong_replica::Result<bool>,
    ) {
        let Some(id) = self.pick(dev, pick) else { return };
        let (p, r) = &mut self.devices[dev];
        let m = meta(p, dev);
        f(r, &FeatureKey::Id(id), &m).unwrap();
    }

    fn server_state(&self) -> BTreeMap<EntityId, shikong_model::Feature> {
        let mut out = BTreeMap::new();
        self.store
            .query(&Query::layer(LAYER), &mut |f| {
                out.insert(f.feature.id, f.feature);
                true
            })
            .unwrap();
        out
    }
}

/// The end-of-sync verification and repair every sync client runs: after a restore, it removes
/// what the device still shows of entities created in the lost time that no one could send
/// again (no pull mentions them).
fn repair(store: &dyn Store, auth: &AuthStore, p: &Principal, r: &mut Replica) {
    let record = store.replica(r.info().id).unwrap().unwrap();
    for _ in 0..2 {
        let verdict =
            shikong_sync_engine::sync_verify::verify(store, auth, p, &record, &r.verify_request().unwrap()).unwrap();
        let targets = r.repair_targets(&verdict).unwrap();
        if targets.is_empty() {
            return;
        }
        let req = shikong_protocol::verify::RepairRequest {
            protocol: wire::PROTOCOL_VERSION,
            replica: record.id,
            entities: targets,
        };
        let answer = shikong_sync_engine::sync_verify::repair(store, auth, p, &record, &req).unwrap();
        r.apply_repair(&answer).unwrap();
    }
}

/// The device's end-of-sync verification finds nothing to repair.
fn assert_verified(store: &dyn Store, auth: &AuthStore, p: &Principal, r: &Replica, n: usize) {
    let record = store.replica(r.info().id).unwrap().unwrap();
    let verdict =
        shikong_sync_engine::sync_verify::verify(store, auth, p, &record, &r.verify_request().unwrap()).unwrap();
    let targets = r.repair_targets(&verdict).unwrap();
    assert!(verdict.agrees() && targets.is_empty(), "device {n} needs repair of {targets:?}");
}

/// Whether the replica's document of `id` holds change `hash`.
fn device_holds(r: &Replica, id: EntityId, hash: &shikong_crdt::ChangeHash) -> bool {
    let conn = rusqlite::Connection::open_with_flags(r.path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let doc: Option<Vec<u8>> =
        conn.query_row("SELECT doc FROM sk_docs WHERE entity_id = ?1", [id.to_string()], |row| row.get(0)).ok();
    doc.is_some_and(|d| shikong_crdt::EntityDoc::load(&d).unwrap().has_change(hash))
}

/// Whether the replica keeps change `hash` in its outbox, waiting for a change that is gone (no
/// device holds it any more), directly or through other changes it keeps waiting: an own edit
/// built on another device's edit the restore lost, which can never be merged (see
/// `shikong_crdt::EntityDoc::rebased_onto`).
fn parked_on_gone(r: &Replica, hash: &shikong_crdt::ChangeHash, gone: &HashSet<shikong_crdt::ChangeHash>) -> bool {
    let conn = rusqlite::Connection::open_with_flags(r.path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn.prepare("SELECT hash, change FROM sk_outbox").unwrap();
    let kept: std::collections::HashMap<String, Vec<u8>> =
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).unwrap().map(Result::unwrap).collect();
    let mut todo = vec![*hash];
    let mut seen = HashSet::new();
    while let Some(h) = todo.pop() {
        let Some(change) = kept.get(&h.to_string()) else { continue };
        if !seen.insert(h) {
            continue;
        }
        // Every dependency of the change: an empty document holds none of them.
        let deps =
            shikong_crdt::EntityDoc::load(&[]).unwrap().missing_dependencies(std::slice::from_ref(change)).unwrap();
        if deps.iter().any(|d| gone.contains(d)) {
            return true;
        }
        todo.extend(deps);
    }
    false
}

fn check_converged(w: &mut World, gone: &[Acked]) {
    w.quiesce();
    for (n, (p, r)) in w.devices.iter().enumerate() {
        assert_verified(&*w.store, &w.auth, p, r, n);
    }
    let server = w.server_state();
    for (n, (_, r)) in w.devices.iter().enumerate() {
        assert_eq!(r.pending().unwrap(), 0, "device {n} still has pending changes");
        let local: BTreeMap<EntityId, shikong_model::Feature> =
            r.query_bbox(LAYER, &WORLD).unwrap().into_iter().map(|f| (f.feature.id, f.feature)).collect();
        assert_eq!(local, server, "device {n} differs from the server");
    }
    let layer = w.store.layer(LAYER).unwrap();
    // Every device lists the same open conflicts on live entities as the server's documents.
    let mut expected: Vec<(EntityId, String)> = Vec::new();
    for (id, f) in &server {
        if let Some((doc, _, _)) = sync::entity_doc(&*w.store, &layer, *id).unwrap() {
            for c in sync::wire_conflicts(&layer, *id, &f.code, &doc).unwrap() {
                expected.push((*id, c.field));
            }
        }
    }
    expected.sort();
    for (n, (_, r)) in w.devices.iter().enumerate() {
        let mut got: Vec<(EntityId, String)> = r
            .conflicts()
            .unwrap()
            .into_iter()
            .map(|c| (EntityId(c.entity), c.field))
            .filter(|(id, _)| server.contains_key(id))
            .collect();
        got.sort();
        assert_eq!(got, expected, "device {n} lists other conflicts than the server");
    }
    let gone_hashes: HashSet<shikong_crdt::ChangeHash> = gone.iter().map(|(_, _, h)| *h).collect();
    for a @ (dev, id, hash) in &w.acknowledged {
        if gone.contains(a) || parked_on_gone(&w.devices[*dev].1, hash, &gone_hashes) {
            continue;
        }
        let (doc, _, _) =
            sync::entity_doc(&*w.store, &layer, *id).unwrap().expect("acknowledged entity has a document");
        assert!(doc.has_change(hash), "change {hash} of {id} acknowledged to device {dev} is missing from the store");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(24), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn replicas_and_server_converge(
        devices in 2usize..=6,
        steps in prop::collection::vec(step(6), 1..60),
        // A backup before one step, the crash and restore this many steps later (or at the end).
        restart in prop::option::weighted(0.75, (any::<prop::sample::Index>(), 0..12usize)),
    ) {
        converge(Backend::Sqlite, devices, &steps, restart.as_ref());
    }
}

proptest! {
    // A fresh PostgreSQL database per case: fewer cases by default (PROPTEST_CASES overrides).
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(8), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn replicas_and_server_converge_on_postgres(
        devices in 2usize..=6,
        steps in prop::collection::vec(step(6), 1..60),
        restart in prop::option::weighted(0.5, (any::<prop::sample::Index>(), 0..12usize)),
    ) {
        converge(Backend::Postgres, devices, &steps, restart.as_ref());
    }
}

/// One case of the property: the steps, with a backup and a crash (see the module docs) when
/// `restart` says where.
fn converge(backend: Backend, devices: usize, steps: &[Step], restart: Option<&(prop::sample::Index, usize)>) {
    let backup_at = restart.map(|(i, _)| i.index(steps.len()));
    let crash_at = restart.zip(backup_at).map(|((_, k), b)| (b + k).min(steps.len()));
    converge_at(backend, devices, steps, backup_at.zip(crash_at));
}

/// One case with the backup taken before step `restart.0` and the crash before step `restart.1`
/// (`steps.len()`: after the last).
fn converge_at(backend: Backend, devices: usize, steps: &[Step], restart: Option<(usize, usize)>) {
    let mut w = World::on(backend, devices);
    let backup_at = restart.map(|r| r.0);
    let crash_at = restart.map(|r| r.1);
    let mut gone = Vec::new();
    for (i, s) in steps.iter().map(|s| remap(s, devices)).enumerate() {
        if backup_at == Some(i) {
            w.take_backup();
        }
        if crash_at == Some(i) {
            gone = w.crash_and_restore();
        }
        w.run(&s);
    }
    if crash_at == Some(steps.len()) {
        gone = w.crash_and_restore();
    }
    check_converged(&mut w, &gone);
}

/// The property test's smallest failure before server marks (checked against 25fcbca): an edit
/// pushed and acknowledged after the backup was gone after the restore, and no device sent it again.
#[test]
fn an_edit_acknowledged_after_the_backup_survives_the_restore() {
    let mut w = World::new(2);
    w.run(&Step::Rename { dev: 0, pick: 60_631_623_153_820, name: 1 });
    w.take_backup();
    w.run(&Step::Storm);
    let gone = w.crash_and_restore();
    assert!(gone.is_empty(), "{gone:?}");
    assert!(!w.acknowledged.is_empty());
    check_converged(&mut w, &gone);
}

/// The property's smallest failure at stop 27: device A creates E before the backup; B renames
/// it after; A pulls the rename; B deletes E (and forgets its document); the restore loses the
/// rename and the deletion. A's restarted pull merged the server's document into its own, which
/// still held B's lost rename, so A showed a name the server no longer had.
#[test]
fn a_change_lost_by_the_restore_does_not_linger_on_a_device_that_pulled_it() {
    let steps = [
        Step::Upload { dev: 0, skip: false },
        Step::Create { dev: 0, x: 114.0, y: 30.3 },
        Step::Set { dev: 0, pick: 297492588960217, depth: 8 },
        Step::Push { dev: 2, fail: Fail::None },
        Step::Storm,
        Step::Set { dev: 1, pick: 6250175825948918026, depth: 4 },
        Step::Pull { dev: 5, lose_page: false },
        Step::Set { dev: 3, pick: 5708897789077004210, depth: 40 },
        Step::Set { dev: 1, pick: 14273121910948174855, depth: 4 },
        Step::Pull { dev: 5, lose_page: false },
        Step::Push { dev: 2, fail: Fail::Duplicate },
        Step::Create { dev: 1, x: 114.59223917868847, y: 30.33191544947082 },
        Step::Delete { dev: 5, pick: 9052353585996564706 },
        Step::Create { dev: 3, x: 114.03565783565607, y: 30.608513287272316 },
        Step::Pull { dev: 1, lose_page: false },
        Step::Pull { dev: 1, lose_page: false },
        Step::Set { dev: 1, pick: 3178130274230811487, depth: 10 },
        Step::Pull { dev: 5, lose_page: false },
        Step::Storm,
        Step::Storm,
        Step::Create { dev: 3, x: 114.06535454706903, y: 30.363118953814336 },
        Step::Rename { dev: 2, pick: 5840210673926892969, name: 0 },
        Step::Upload { dev: 0, skip: false },
        Step::Storm,
        Step::Delete { dev: 2, pick: 1086731053590216318 },
        Step::Storm,
    ];
    converge_at(Backend::Sqlite, 3, &steps, Some((19, steps.len())));
}

/// The property's failure after the fix above: device 0's rename, parked on a lost move of
/// device 2's, was merged by the server once device 2 sent the move again; the push answer came
/// without the document (the server took device 0 to hold the move), so device 0 kept showing
/// the entity without either until its version was forgotten and the verification fetched it.
#[test]
fn a_parked_edit_merged_later_shows_on_its_device() {
    let steps = [
        Step::Create { dev: 0, x: 114.0, y: 30.3 },
        Step::Move { dev: 0, pick: 114634571638677, x: 114.0, y: 30.3 },
        Step::Move { dev: 2, pick: 10574600866042002062, x: 114.3430920457323, y: 30.763069780323082 },
        Step::Push { dev: 1, fail: Fail::None },
        Step::Set { dev: 0, pick: 16684190980801550092, depth: 32 },
        Step::Set { dev: 4, pick: 275819153602378938, depth: 48 },
        Step::Push { dev: 1, fail: Fail::Duplicate },
        Step::Storm,
        Step::Push { dev: 4, fail: Fail::Duplicate },
        Step::Rename { dev: 5, pick: 11973857031745624346, name: 0 },
    ];
    converge_at(Backend::Sqlite, 5, &steps, Some((4, 10)));
}

/// A deletion racing an edit, both acknowledged after the backup and both sent again after the
/// restore: the editing device must end up showing the deletion the server keeps (contested).
#[test]
fn a_contested_deletion_sent_again_shows_on_the_editing_device() {
    let steps = [
        Step::Delete { dev: 5, pick: 5884644850097709685 },
        Step::Set { dev: 2, pick: 6447252834783239247, depth: 10 },
        Step::Set { dev: 3, pick: 8738070532327219998, depth: 37 },
        Step::Upload { dev: 2, skip: true },
        Step::Rename { dev: 3, pick: 4438442209880645111, name: 3 },
        Step::Set { dev: 2, pick: 8522349403346889093, depth: 40 },
        Step::Create { dev: 3, x: 114.3342059261485, y: 30.510738070075135 },
        Step::Set { dev: 2, pick: 12680531395737508968, depth: 39 },
        Step::Set { dev: 1, pick: 8492987189867521527, depth: 47 },
        Step::Attach { dev: 2, pick: 13740841607836065848, photo: 0 },
        Step::Rename { dev: 1, pick: 5353834183375928121, name: 1 },
        Step::Attach { dev: 4, pick: 6355119826645843034, photo: 1 },
        Step::Rename { dev: 2, pick: 5973664125716704166, name: 1 },
        Step::Storm,
        Step::Rename { dev: 0, pick: 1138638252016272012, name: 2 },
        Step::Set { dev: 3, pick: 14543552351779065452, depth: 24 },
        Step::Pull { dev: 4, lose_page: false },
        Step::Create { dev: 5, x: 114.42712098284017, y: 30.669094398355952 },
        Step::Move { dev: 1, pick: 14292103672271650996, x: 114.32276632306653, y: 30.74917326680183 },
        Step::Set { dev: 2, pick: 15284271399981147889, depth: 24 },
        Step::Rename { dev: 5, pick: 8577607066418963572, name: 1 },
        Step::Create { dev: 0, x: 114.3856339083444, y: 30.767064520777378 },
        Step::Move { dev: 0, pick: 7927084437703227508, x: 114.16451440774246, y: 30.317530149912155 },
        Step::Upload { dev: 0, skip: true },
        Step::Delete { dev: 0, pick: 14906015197086496748 },
        Step::Set { dev: 4, pick: 4042637937291796190, depth: 23 },
    ];
    converge_at(Backend::Sqlite, 3, &steps, Some((3, 14)));
}

/// Steps are generated for 6 devices; fold them onto the ones this case has.
fn remap(s: &Step, devices: usize) -> Step {
    let d = |x: usize| x % devices;
    match s.clone() {
        Step::Create { dev, x, y } => Step::Create { dev: d(dev), x, y },
        Step::Set { dev, pick, depth } => Step::Set { dev: d(dev), pick, depth },
        Step::Rename { dev, pick, name } => Step::Rename { dev: d(dev), pick, name },
        Step::Move { dev, pick, x, y } => Step::Move { dev: d(dev), pick, x, y },
        Step::Delete { dev, pick } => Step::Delete { dev: d(dev), pick },
        Step::Attach { dev, pick, photo } => Step::Attach { dev: d(dev), pick, photo },
        Step::Upload { dev, skip } => Step::Upload { dev: d(dev), skip },
        Step::Push { dev, fail } => Step::Push { dev: d(dev), fail },
        Step::Pull { dev, lose_page } => Step::Pull { dev: d(dev), lose_page },
        Step::Storm => Step::Storm,
    }
}

#[test]
fn replicas_pass_gdal_after_a_busy_session() {
    let mut w = World::new(3);
    let steps = [
        Step::Create { dev: 0, x: 114.2, y: 30.6 },
        Step::Set { dev: 1, pick: 0, depth: 8 },
        Step::Set { dev: 2, pick: 0, depth: 12 },
        Step::Attach { dev: 0, pick: 1, photo: 1 },
        Step::Delete { dev: 1, pick: 2 },
        Step::Move { dev: 2, pick: 2, x: 114.4, y: 30.4 },
        Step::Push { dev: 0, fail: Fail::LoseResponse },
        Step::Push { dev: 1, fail: Fail::Duplicate },
        Step::Pull { dev: 2, lose_page: true },
    ];
    for s in &steps {
        w.run(s);
    }
    check_converged(&mut w, &[]);
    for (_, r) in &w.devices {
        let info = crate::common::ogrinfo(&["-so", "-al", crate::common::s(r.path())]);
        assert!(info.contains("Layer name: asset") && !info.contains("Warning") && !info.contains("ERROR"), "{info}");
    }
}

/// The PostgreSQL property's smallest failure: a pull page's rows come from one snapshot and
/// the documents from later reads (each its own snapshot there); a device got a row with a newer
/// version's document (deleted) and its next edit of the visible row was refused as `Deleted`.
/// The page is now read again when a document is newer than its row.
#[test]
fn a_busy_session_converges_on_postgres() {
    let steps = [
        Step::Push { dev: 0, fail: Fail::None },
        Step::Move { dev: 4, pick: 12173110907137432129, x: 114.114553221058, y: 30.715370159892498 },
        Step::Push { dev: 2, fail: Fail::None },
        Step::Set { dev: 3, pick: 16244593287482087669, depth: 18 },
        Step::Create { dev: 1, x: 114.52163511455582, y: 30.585283442737197 },
        Step::Storm,
        Step::Set { dev: 1, pick: 3508172192725276562, depth: 11 },
        Step::Set { dev: 4, pick: 5982391410849261233, depth: 12 },
        Step::Set { dev: 0, pick: 6393916129824655297, depth: 10 },
        Step::Pull { dev: 2, lose_page: false },
        Step::Push { dev: 5, fail: Fail::None },
        Step::Pull { dev: 0, lose_page: true },
        Step::Move { dev: 2, pick: 7856180166496666799, x: 114.52721631218273, y: 30.525782546340633 },
        Step::Storm,
        Step::Upload { dev: 3, skip: true },
        Step::Set { dev: 4, pick: 7796156894245601617, depth: 42 },
        Step::Storm,
        Step::Set { dev: 2, pick: 8713925904468100920, depth: 41 },
        Step::Create { dev: 4, x: 114.16602781976304, y: 30.361388502706205 },
        Step::Set { dev: 3, pick: 14434317453734566087, depth: 32 },
        Step::Pull { dev: 2, lose_page: false },
        Step::Set { dev: 1, pick: 14272528031056038066, depth: 10 },
        Step::Storm,
        Step::Rename { dev: 2, pick: 5619790375130529882, name: 1 },
        Step::Push { dev: 0, fail: Fail::Duplicate },
        Step::Rename { dev: 0, pick: 18277677768788295671, name: 0 },
        Step::Pull { dev: 0, lose_page: false },
        Step::Push { dev: 4, fail: Fail::None },
        Step::Push { dev: 4, fail: Fail::None },
        Step::Set { dev: 3, pick: 6500179573172719615, depth: 21 },
        Step::Delete { dev: 0, pick: 15258681133942098575 },
        Step::Move { dev: 5, pick: 2067933887995902082, x: 114.18942973734755, y: 30.41175984781866 },
        Step::Push { dev: 4, fail: Fail::Duplicate },
        Step::Push { dev: 5, fail: Fail::LoseResponse },
        Step::Delete { dev: 1, pick: 5602396435957331175 },
        Step::Set { dev: 1, pick: 9873117052474702364, depth: 20 },
        Step::Storm,
        Step::Move { dev: 3, pick: 16061303578256685963, x: 114.49082930747099, y: 30.694341661141095 },
        Step::Create { dev: 4, x: 114.40408007876023, y: 30.66242042473458 },
        Step::Push { dev: 4, fail: Fail::None },
        Step::Delete { dev: 0, pick: 10896982347085669975 },
        Step::Rename { dev: 0, pick: 13399344885738490014, name: 1 },
        Step::Storm,
        Step::Move { dev: 3, pick: 6051485586590995216, x: 114.03753192353238, y: 30.344854708424073 },
        Step::Rename { dev: 5, pick: 16948200005024357813, name: 0 },
        Step::Move { dev: 0, pick: 6212240817463784795, x: 114.46626182656152, y: 30.404045197655314 },
    ];
    converge_at(Backend::Postgres, 4, &steps, Some((1, 3)));
}
