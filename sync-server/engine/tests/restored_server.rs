//! A server restored from a backup older than what it acknowledged (issue 14, "server marks"):
//! the device notices — on its next pull or on its next push — sends its own changes again, and
//! nothing it was told was stored is lost; an older device (no `seen`) at least pulls from the
//! start again instead of skipping the transactions that reused the lost numbers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::Arc;

use shikong_auth::{Action, AuthError, Decision, LayerAccess, Principal, Role, TokenId, UserId};
use shikong_model::{Bbox, Coord, EntityId, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Value};
use shikong_protocol as wire;
use shikong_replica::{EditMeta, FeatureKey, NewFeature, Replica};
use shikong_store::{LayerDef, NewFeature as StoreNew, Query, Store, StoreConfig, TxMeta};
use shikong_sync_engine::sync;

struct AllowAll;

impl shikong_sync_engine::Authorizer for AllowAll {
    fn authorize(&self, _: Option<&Principal>, _: &LayerAccess<'_>, _: Action) -> Result<Decision, AuthError> {
        Ok(Decision::Allow)
    }
}

const LAYER: &str = "manhole";
const WORLD: Bbox = Bbox { min_x: 73.0, min_y: 3.0, max_x: 136.0, max_y: 54.0 };

fn li() -> Principal {
    user("li")
}

fn user(name: &str) -> Principal {
    Principal {
        user_id: UserId(1),
        username: name.into(),
        role: Role::Inspector,
        groups: Vec::new(),
        device: None,
        token: TokenId(1),
    }
}

fn meta() -> EditMeta {
    meta_of("li")
}

fn meta_of(name: &str) -> EditMeta {
    EditMeta { user: name.into(), device: Some("平板-1".into()), time: jiff::Timestamp::now() }
}

struct Server {
    root: tempfile::TempDir,
    data: PathBuf,
    store: Arc<dyn Store>,
    restores: usize,
}

impl Server {
    fn new() -> Server {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let store = shikong_store::init(&StoreConfig::in_dir(&data)).unwrap();
        let mut tx = store.begin(TxMeta::by("office")).unwrap();
        let schema = LayerSchema { fields: vec![FieldDef::new("深度", FieldType::Real)] };
        tx.create_layer(LayerDef::new(LAYER, GeometryKind::Point, schema)).unwrap();
        tx.insert(
            LAYER,
            StoreNew {
                code: Some("JG-1".into()),
                geometry: Some(Geometry::Point(Coord::xy(114.3, 30.5))),
                ..StoreNew::default()
            },
        )
        .unwrap();
        tx.commit().unwrap();
        Server { root, data, store, restores: 0 }
    }

    /// An online backup of the data folder (the store stays open and may write meanwhile).
    fn backup(&self) -> PathBuf {
        let out = self.root.path().join(format!("backup-{}", self.restores));
        let opts = shikong_backup::BackupOptions { data: self.data.clone(), out: out.clone(), since: None };
        shikong_backup::backup(&opts, &shikong_backup::NoProgress).unwrap();
        out
    }

    /// The server dies; its data folder is rebuilt from `backup` and the store opened again.
    fn restore(&mut self, backup: &Path) {
        self.restores += 1;
        let data = self.root.path().join(format!("data-{}", self.restores));
        shikong_backup::restore(&data, &[backup.to_path_buf()], &shikong_backup::NoProgress).unwrap();
        self.store = shikong_store::open(&StoreConfig::in_dir(&data)).unwrap();
        self.data = data;
    }

    fn office_edits(&self, n: usize) {
        for i in 0..n {
            let mut tx = self.store.begin(TxMeta::by("office")).unwrap();
            tx.insert(
                LAYER,
                StoreNew {
                    code: Some(format!("OFFICE-{}-{i}", self.restores)),
                    geometry: Some(Geometry::Point(Coord::xy(114.2, 30.4))),
                    ..StoreNew::default()
                },
            )
            .unwrap();
            tx.commit().unwrap();
        }
    }

    fn state(&self) -> Vec<(EntityId, String, Option<Value>)> {
        let mut out = Vec::new();
        self.store
            .query(&Query::layer(LAYER), &mut |f| {
                out.push((f.feature.id, f.feature.code.clone(), f.feature.properties.get("深度").cloned()));
                true
            })
            .unwrap();
        out.sort_by_key(|e| e.0);
        out
    }

    fn has_change(&self, id: EntityId, hash: &shikong_crdt::ChangeHash) -> bool {
        let layer = self.store.layer(LAYER).unwrap();
        sync::entity_doc(&*self.store, &layer, id).unwrap().is_some_and(|(doc, _, _)| doc.has_change(hash))
    }
}

fn local_state(r: &Replica) -> Vec<(EntityId, String, Option<Value>)> {
    let mut out: Vec<_> = r
        .query_bbox(LAYER, &WORLD)
        .unwrap()
        .into_iter()
        .map(|f| (f.feature.id, f.feature.code.clone(), f.feature.properties.get("深度").cloned()))
        .collect();
    out.sort_by_key(|e| e.0);
    out
}

/// Pushes everything pending; returns the changes acknowledged and how many own changes the
/// replica queued again.
fn push_all(s: &Server, r: &mut Replica) -> (Vec<(EntityId, shikong_crdt::ChangeHash)>, usize) {
    let (mut acked, mut resent) = (Vec::new(), 0);
    while let Some(batch) = r.push_batch(10).unwrap() {
        let resp = sync::push(&*s.store, &AllowAll, &user(&r.info().user), &batch, &|_| true).unwrap();
        for (e, res) in batch.entities.iter().zip(&resp.results) {
            if let wire::Outcome::Rejected { code, .. } = &res.outcome {
                // Only what builds on changes the restore lost (until their device resends them).
                assert_eq!(*code, wire::SyncErrorCode::MissingDependencies, "refused: {res:?}");
                continue;
            }
            acked.extend(e.changes.iter().map(|c| (EntityId(e.entity), shikong_crdt::change_hash(&c.0).unwrap())));
        }
        resent += r.apply_push_response(&resp).unwrap().resent;
    }
    (acked, resent)
}

/// Pulls to the last page as a current device does (sending its mark as `seen`).
fn pull_all(s: &Server, r: &mut Replica) -> (usize, bool) {
    let record = s.store.replica(r.info().id).unwrap().unwrap();
    let (mut resent, mut diverged) = (0, false);
    loop {
        let cursor: sync::SyncCursor = r.cursor().unwrap().parse().unwrap();
        let seen = r.server_mark().unwrap();
        let who = user(&r.info().user);
        let page = sync::pull_seen(&*s.store, &AllowAll, &who, &record, &cursor, seen.as_deref(), 3).unwrap();
        diverged |= page.diverged;
        resent += r.apply_pull_page(&page).unwrap().resent;
        if !page.more {
            return (resent, diverged);
        }
    }
}

fn device(s: &Server, name: &str) -> Replica {
    device_of(s, name, &li())
}

fn device_of(s: &Server, name: &str, who: &Principal) -> Replica {
    let path = s.root.path().join(format!("{name}.gpkg"));
    let req =
        wire::ReplicaRequest { protocol: wire::PROTOCOL_VERSION, layers: vec![LAYER.into()], area: None, name: None };
    sync::cut_replica(&*s.store, &AllowAll, who, "http://test", &req, &path).unwrap();
    Replica::open(&path).unwrap()
}

fn set_depth(r: &mut Replica, code: &str, depth: f64) {
    let m = meta_of(&r.info().user.clone());
    r.set_fields(LAYER, &FeatureKey::Code(code.into()), [("深度".to_string(), Value::Real(depth))].into(), &m).unwrap();
}

#[test]
fn a_pull_notices_the_restore_and_the_device_sends_what_was_lost() {
    let mut s = Server::new();
    let mut r = device(&s, "a");
    assert!(r.server_mark().unwrap().is_some(), "a new replica carries the server's mark");
    set_depth(&mut r, "JG-1", 1.0);
    let (mut acked, _) = push_all(&s, &mut r);
    pull_all(&s, &mut r);
    let backup = s.backup();

    // Acknowledged after the backup: lost by the restore below.
    set_depth(&mut r, "JG-1", 2.0);
    let created = r
        .create_feature(
            LAYER,
            NewFeature {
                code: Some("JG-NEW".into()),
                geometry: Some(Geometry::Point(Coord::xy(114.31, 30.51))),
                ..NewFeature::default()
            },
            &meta(),
        )
        .unwrap();
    let (after, _) = push_all(&s, &mut r);
    assert!(!after.is_empty());
    acked.extend(after);
    pull_all(&s, &mut r);

    s.restore(&backup);
    // New transactions reuse the lost numbers before the device comes back.
    s.office_edits(4);
    assert!(acked.iter().any(|(id, h)| !s.has_change(*id, h)), "the restore lost acknowledged changes");

    // Nothing pending: the pull is what notices.
    assert_eq!(r.pending().unwrap(), 0);
    let (resent, diverged) = pull_all(&s, &mut r);
    assert!(diverged, "the pull says the server went back in time");
    assert!(resent >= 2, "the device queued its lost changes again ({resent})");
    let (_, again) = push_all(&s, &mut r);
    assert_eq!(again, 0, "the push after the restart finds the server on the device's new mark");
    let (resent, diverged) = pull_all(&s, &mut r);
    assert_eq!((resent, diverged), (0, false));

    for (id, h) in &acked {
        assert!(s.has_change(*id, h), "acknowledged change {h} of {id} is missing after the recovery");
    }
    assert!(s.state().iter().any(|(id, code, _)| *id == created && code == "JG-NEW"));
    assert!(s.state().iter().any(|(_, code, d)| code == "JG-1" && *d == Some(Value::Real(2.0))));
    assert_eq!(local_state(&r), s.state(), "the device holds the server's state, office edits included");
}

#[test]
fn a_push_notices_the_restore_too() {
    let mut s = Server::new();
    let mut r = device(&s, "a");
    let backup = s.backup();
    set_depth(&mut r, "JG-1", 5.0);
    let (mut acked, _) = push_all(&s, &mut r);
    pull_all(&s, &mut r);
    s.restore(&backup);
    s.office_edits(3);

    // An edit after the restore: its push carries the lost mark and is answered `diverged`.
    set_depth(&mut r, "JG-1", 6.0);
    let (after, resent) = push_all(&s, &mut r);
    assert!(resent >= 1, "the push answer made the device queue its own changes again");
    acked.extend(after);
    assert_eq!(r.cursor().unwrap(), wire::RESTART_CURSOR);
    let (_, diverged) = pull_all(&s, &mut r);
    assert!(!diverged, "the push already moved the device onto the server's new mark");
    for (id, h) in &acked {
        assert!(s.has_change(*id, h), "acknowledged change {h} of {id} is missing after the recovery");
    }
    assert_eq!(local_state(&r), s.state());
    assert!(s.state().iter().any(|(_, code, d)| code == "JG-1" && *d == Some(Value::Real(6.0))));
}

#[test]
fn an_older_device_pulls_from_the_start_again() {
    let mut s = Server::new();
    let mut r = device(&s, "a");
    let backup = s.backup();
    s.office_edits(2); // lost
    pull_all(&s, &mut r);
    s.restore(&backup);
    s.office_edits(3); // reuse the numbers, and one more
    let record = s.store.replica(r.info().id).unwrap().unwrap();
    // An older device sends no `seen` and does not know `diverged`: the cursor's own mark is
    // checked, and the page starts over without saying so.
    let cursor: sync::SyncCursor = r.cursor().unwrap().parse().unwrap();
    let page = sync::pull(&*s.store, &AllowAll, &li(), &record, &cursor, 100).unwrap();
    assert!(!page.diverged);
    let json = serde_json::to_value(&page).unwrap();
    assert!(json.get("diverged").is_none(), "no member an older device would refuse");
    let codes: Vec<&str> = page.entities.iter().filter_map(|e| e.state.as_ref()).map(|w| w.code.as_str()).collect();
    assert!(codes.contains(&"JG-1") && codes.iter().filter(|c| c.starts_with("OFFICE-1-")).count() == 3, "{codes:?}");
    assert!(!codes.iter().any(|c| c.starts_with("OFFICE-0-")), "the lost office edits are not sent: {codes:?}");
}

#[test]
fn cursors_keep_their_marks_and_restart_flag() {
    let c: sync::SyncCursor = "12|asset=12.0.5|!|~12.1733300000000000".parse().unwrap();
    assert!(c.restart);
    assert_eq!(c.mark, Some(shikong_sync_engine::timeline::Mark { tx: 12, us: 1_733_300_000_000_000 }));
    assert_eq!(c.to_string(), "12|asset=12.0.5|!|~12.1733300000000000");
    let old: sync::SyncCursor = "12|asset=12.0.5".parse().unwrap();
    assert_eq!((old.restart, old.mark), (false, None));
    let restart: sync::SyncCursor = wire::RESTART_CURSOR.parse().unwrap();
    assert!(restart.restart && restart.base == 0 && restart.layers.is_empty());
    assert!("12|~nope".parse::<sync::SyncCursor>().is_err());
}

#[test]
fn two_devices_whose_lost_edits_build_on_each_other_both_get_through() {
    let mut s = Server::new();
    let (mut a, mut b) = (device_of(&s, "a", &user("li")), device_of(&s, "b", &user("wang")));
    let backup = s.backup();
    // li, then wang on top of li's, then li on top of wang's: all acknowledged, all lost.
    let mut acked = Vec::new();
    set_depth(&mut a, "JG-1", 1.0);
    acked.extend(push_all(&s, &mut a).0);
    pull_all(&s, &mut b);
    set_depth(&mut b, "JG-1", 2.0);
    acked.extend(push_all(&s, &mut b).0);
    pull_all(&s, &mut a);
    set_depth(&mut a, "JG-1", 3.0);
    acked.extend(push_all(&s, &mut a).0);
    pull_all(&s, &mut b);
    s.restore(&backup);

    // Each device resends its own changes; li's second depends on wang's, which depends on
    // li's first: the server merges what it can each time (the rest is refused and retried).
    for _round in 0..3 {
        for r in [&mut a, &mut b] {
            pull_all(&s, r);
            r.retry_missing_dependencies().unwrap();
            acked.extend(push_all(&s, r).0);
        }
    }
    for (id, h) in &acked {
        assert!(s.has_change(*id, h), "acknowledged change {h} of {id} is missing after the recovery");
    }
    for r in [&mut a, &mut b] {
        pull_all(&s, r);
        assert_eq!((r.pending().unwrap(), r.rejected().unwrap().len()), (0, 0));
        assert_eq!(local_state(r), s.state());
    }
    assert!(s.state().iter().any(|(_, code, d)| code == "JG-1" && *d == Some(Value::Real(3.0))));
}
