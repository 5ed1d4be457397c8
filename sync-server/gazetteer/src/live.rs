//! The gazetteer a server (or a CLI command) answers from: loaded from the data directory,
//! caught up with the store's change feed before each use, reloaded when a rebuilt snapshot
//! appears, and carrying the user aliases edited through it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use shikong_geocoder::{Alias, Geocoder, Scope};
use shikong_model::{EntityId, TxId};
use shikong_store::{ChangeCursor, FeatureStore, StoreError};

use crate::error::{GazetteerError, Result};
use crate::files::{SNAPSHOT_FILE, USER_ALIASES_FILE, load, mtime, read_user_aliases, write_user_aliases};
use crate::sources::{Manifest, refresh};

/// The gazetteer a server (or a CLI command) answers from, kept current with the store: before
/// answering, writes committed since the snapshot (or the last catch-up) to the feeding layers
/// are read from the store's change feed and re-indexed, so a new version of an address is
/// searchable at once and its superseded version stays findable with `as_of`.
pub struct LiveGazetteer {
    dir: PathBuf,
    loaded: std::sync::RwLock<Option<Loaded>>,
    /// Serialises catch-ups and reloads.
    catching_up: std::sync::Mutex<()>,
}

struct Loaded {
    geo: Geocoder,
    manifest: Manifest,
    known_tx: i64,
    snapshot_mtime: Option<std::time::SystemTime>,
}

impl std::fmt::Debug for LiveGazetteer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveGazetteer").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl LiveGazetteer {
    /// Opens the gazetteer of `dir` (absent: every query says so until one is built).
    pub fn open(dir: &Path) -> Result<LiveGazetteer> {
        let live = LiveGazetteer {
            dir: dir.to_owned(),
            loaded: std::sync::RwLock::new(None),
            catching_up: std::sync::Mutex::new(()),
        };
        live.reload()?;
        Ok(live)
    }

    fn reload(&self) -> Result<()> {
        let snapshot_mtime = mtime(&self.dir.join(SNAPSHOT_FILE));
        let loaded = load(&self.dir)?.map(|(geo, manifest)| Loaded {
            geo,
            known_tx: manifest.built_tx,
            manifest,
            snapshot_mtime,
        });
        *self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
        Ok(())
    }

    /// Catches up with the store (and with a rebuilt snapshot), then runs `f` on the engine.
    /// `None`: no gazetteer was built in this data directory.
    pub fn with<T>(&self, store: &dyn FeatureStore, f: impl FnOnce(&Geocoder, &Manifest) -> T) -> Result<Option<T>> {
        self.catch_up(store)?;
        let g = self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(g.as_ref().map(|l| f(&l.geo, &l.manifest)))
    }

    /// Re-indexes the feeding layers' entities changed since the last catch-up.
    pub fn catch_up(&self, store: &dyn FeatureStore) -> Result<usize> {
        let _serial = self.catching_up.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let snapshot_mtime = mtime(&self.dir.join(SNAPSHOT_FILE));
        let stale = {
            let g = self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            g.as_ref().map(|l| l.snapshot_mtime) != Some(snapshot_mtime) && snapshot_mtime.is_some()
        };
        if stale {
            self.reload()?;
        }
        let latest = store.latest_tx()?.0;
        let (known, sources) = {
            let g = self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            match g.as_ref() {
                Some(l) if l.known_tx < latest => (l.known_tx, l.manifest.sources.clone()),
                _ => return Ok(0),
            }
        };
        let mut changed: Vec<(String, Vec<EntityId>)> = Vec::new();
        let layers: BTreeSet<&str> = sources.all().map(|(_, s)| s.layer.as_str()).collect();
        for layer in layers {
            let mut ids = Vec::new();
            let mut cursor = ChangeCursor::after_tx(TxId(known));
            loop {
                let page = match store.changes_since(layer, cursor, 5000) {
                    Ok(p) => p,
                    Err(StoreError::NoSuchLayer(_)) => break,
                    Err(e) => return Err(e.into()),
                };
                cursor = page.next;
                ids.extend(page.changes.into_iter().filter(|c| c.tx.0 <= latest).map(|c| c.id));
                if !page.more {
                    break;
                }
            }
            changed.push((layer.to_owned(), ids));
        }
        let mut g = self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(l) = g.as_mut() else { return Ok(0) };
        let mut n = 0;
        for (layer, ids) in &changed {
            refresh(store, &mut l.geo, &sources, layer, ids)?;
            n += ids.len();
        }
        l.known_tx = latest;
        Ok(n)
    }

    /// An entity tag of what a subset of `envelope` seen through `scope` would hold now: the
    /// snapshot's file time, the store transaction caught up to, the user aliases' file time and
    /// the layers the scope sees (so a device whose user lost a layer gets a new, smaller subset
    /// at its next refresh instead of a 304).
    pub fn tag(&self, envelope: &shikong_model::Bbox, scope: &Scope) -> String {
        let g = self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let secs = |t: Option<std::time::SystemTime>| {
            t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_millis())
        };
        let (snap, tx) = g.as_ref().map_or((0, 0), |l| (secs(l.snapshot_mtime), l.known_tx));
        let aliases = secs(mtime(&self.dir.join(USER_ALIASES_FILE)));
        // Layer names are ASCII table names: safe inside a quoted ETag.
        let layers = match scope {
            Scope::All => "all".to_owned(),
            Scope::Layers(set) => set.iter().map(String::as_str).collect::<Vec<_>>().join("+"),
        };
        format!(
            "{snap:x}-{tx:x}-{aliases:x}-{layers}-{:.4},{:.4},{:.4},{:.4}",
            envelope.min_x, envelope.min_y, envelope.max_x, envelope.max_y
        )
    }

    /// Adds (or replaces) a user alias, checked against the gazetteer, and saves it.
    pub fn put_alias(&self, alias: Alias) -> Result<()> {
        let _serial = self.catching_up.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut g = self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let l = g.as_mut().ok_or(GazetteerError::NotBuilt)?;
        l.geo.remove_alias(&alias.alias);
        l.geo
            .add_alias(alias.clone())
            .map_err(|source| GazetteerError::BadAlias { alias: alias.alias.clone(), source })?;
        let mut all = read_user_aliases(&self.dir)?;
        all.retain(|a| a.alias != alias.alias);
        all.push(alias);
        write_user_aliases(&self.dir, &all)
    }

    /// Removes a user alias; `false` when there was none with this text.
    pub fn delete_alias(&self, alias: &str) -> Result<bool> {
        let _serial = self.catching_up.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut all = read_user_aliases(&self.dir)?;
        let before = all.len();
        all.retain(|a| a.alias != alias);
        if all.len() == before {
            return Ok(false);
        }
        write_user_aliases(&self.dir, &all)?;
        drop(_serial);
        // The shipped table may hold the same alias: reload rather than remove blindly.
        self.reload()?;
        Ok(true)
    }
}
