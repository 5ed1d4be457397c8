//! The manifest every backup folder carries (`manifest.json`): what it holds, what it follows, and
//! the digest of the store it captured, so that a restore can check the chain and its own result.
//! Pure types and checks, no I/O.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The manifest's file name inside a backup folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// `format` of every manifest.
pub const FORMAT: &str = "shikong-backup";
/// The layout this build writes and restores.
pub const FORMAT_VERSION: u32 = 1;

/// A full backup, or the changes since another backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Full,
    Incremental,
}

/// What a file in a backup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    /// The store, a page-for-page copy of one read snapshot (full backups).
    Store,
    /// The store's rows written after the previous backup's transaction (incremental backups).
    StoreDelta,
    /// The account database, copied whole in every backup.
    Auth,
    /// The tile registry (raster sets, styles), copied whole in every backup.
    TileRegistry,
    /// A raster acquisition (`tiles/raster/<set>/<file>.mbtiles`).
    Raster,
    /// A gazetteer file (snapshot, sources, user aliases).
    Gazetteer,
    /// An attachment (`blobs/<2 hex>/<sha256>`).
    Blob,
}

/// One file of a backup, relative to its folder (`/`-separated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub kind: FileKind,
    pub size: u64,
    pub sha256: String,
}

/// A file tracked across backups by content (gazetteer files, raster acquisitions): an
/// incremental backup copies it only when it differs from the chain's copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    pub kind: FileKind,
    pub size: u64,
    pub sha256: String,
    /// Modification time (nanoseconds since the epoch) when it was hashed: an unchanged size and
    /// time skip hashing a large raster again.
    pub mtime_ns: i128,
}

/// The backup a later one follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    pub id: Uuid,
    /// The previous backup's last store transaction: this backup holds the ones after it.
    pub tx: i64,
}

/// Row count and content hash of one table of the store at the backup's transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDigest {
    pub name: String,
    pub rows: u64,
    pub sha256: String,
}

/// One schema object (table, index, trigger, view) of the store, by the hash of its SQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaEntry {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub sql_sha256: String,
}

/// What the store held at the backup's transaction, table by table; a restore recomputes it on
/// the store it rebuilt and refuses a difference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreDigest {
    pub schema: Vec<SchemaEntry>,
    pub tables: Vec<TableDigest>,
}

impl StoreDigest {
    pub fn table(&self, name: &str) -> Option<&TableDigest> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn schema_sql(&self, kind: &str, name: &str) -> Option<&str> {
        self.schema.iter().find(|s| s.kind == kind && s.name == name).map(|s| s.sql_sha256.as_str())
    }

    /// The first difference from `expected`, as (table, what differs).
    pub fn first_difference(&self, expected: &StoreDigest) -> Option<(String, String)> {
        for e in &expected.schema {
            match self.schema_sql(&e.kind, &e.name) {
                None => return Some((e.name.clone(), format!("({}) is missing", e.kind))),
                Some(h) if h != e.sql_sha256 => {
                    return Some((e.name.clone(), format!("({}) has another definition", e.kind)));
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = self.schema.iter().find(|s| expected.schema_sql(&s.kind, &s.name).is_none()) {
            return Some((extra.name.clone(), format!("({}) should not exist", extra.kind)));
        }
        for e in &expected.tables {
            match self.table(&e.name) {
                None => return Some((e.name.clone(), "is missing".into())),
                Some(t) if t.rows != e.rows => {
                    return Some((e.name.clone(), format!("has {} rows, the backup recorded {}", t.rows, e.rows)));
                }
                Some(t) if t.sha256 != e.sha256 => {
                    return Some((e.name.clone(), format!("has other content ({} rows each)", e.rows)));
                }
                Some(_) => {}
            }
        }
        None
    }
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    pub format_version: u32,
    pub id: Uuid,
    pub kind: Kind,
    /// The backup this one follows (incremental backups only).
    pub previous: Option<Previous>,
    /// `sk_meta.store_id`: backups of different stores never chain.
    pub store_id: String,
    /// The last store transaction this backup holds (0: an empty store).
    pub tx: i64,
    /// The instant of that transaction (`as-of` this instant reads what the backup holds).
    pub tx_time: Option<Timestamp>,
    pub created_at: Timestamp,
    /// The files in this backup folder.
    pub files: Vec<FileEntry>,
    /// Tracked files the data folder no longer has (incremental backups): a restore removes them.
    pub removed: Vec<String>,
    /// Every tracked file of the data folder at this backup, wherever in the chain its copy is.
    pub tracked: BTreeMap<String, Tracked>,
    /// Attachments in the chain up to this backup.
    pub blobs: u64,
    pub store: StoreDigest,
}

impl Manifest {
    /// A short name for messages: kind, id and transaction range.
    pub fn label(&self) -> String {
        match &self.previous {
            Some(p) => format!("{} (incremental, transactions {}..={})", self.id, p.tx + 1, self.tx),
            None => format!("{} (full, up to transaction {})", self.id, self.tx),
        }
    }

    /// Checks the format; `path` names the backup in errors.
    pub fn check_format(&self, path: &str) -> crate::Result<()> {
        if self.format != FORMAT {
            return Err(crate::BackupError::NotABackup {
                path: path.to_owned(),
                reason: format!("manifest format is `{}`, not `{FORMAT}`", self.format),
            });
        }
        if self.format_version > FORMAT_VERSION {
            return Err(crate::BackupError::TooNew {
                path: path.to_owned(),
                found: self.format_version,
                supported: FORMAT_VERSION,
            });
        }
        match (self.kind, &self.previous) {
            (Kind::Full, None) | (Kind::Incremental, Some(_)) => Ok(()),
            _ => Err(crate::BackupError::NotABackup {
                path: path.to_owned(),
                reason: "the kind and the previous backup disagree".into(),
            }),
        }
    }
}

/// Checks that `chain` (folder name, manifest) is one full backup followed by incremental backups
/// each following the one before it, of one store. Errors name the backups involved.
pub fn check_chain(chain: &[(String, Manifest)]) -> crate::Result<()> {
    let chain_error = |m: String| crate::BackupError::Chain(m);
    let Some((first_path, first)) = chain.first() else {
        return Err(chain_error("give at least one backup (a full one, then its incrementals in order)".into()));
    };
    if first.kind != Kind::Full {
        let after = first.previous.as_ref().map(|p| p.id.to_string()).unwrap_or_default();
        return Err(chain_error(format!(
            "the first backup must be a full one; {first_path} is {} (it follows backup {after})",
            first.label()
        )));
    }
    for pair in chain.windows(2) {
        let [(prev_path, prev), (path, m)] = pair else { continue };
        if m.store_id != prev.store_id {
            return Err(chain_error(format!(
                "{path} is a backup of store {}, {prev_path} of store {}",
                m.store_id, prev.store_id
            )));
        }
        let Some(p) = &m.previous else {
            return Err(chain_error(format!(
                "{path} is a full backup ({}); give only one full backup, first, then its incrementals",
                m.label()
            )));
        };
        if p.id != prev.id || p.tx != prev.tx {
            let hint = if p.tx > prev.tx {
                format!("a backup is missing between them (transactions {}..={})", prev.tx + 1, p.tx)
            } else if p.tx < prev.tx {
                "they are in the wrong order, or from another chain".to_owned()
            } else {
                "it belongs to another chain".to_owned()
            };
            return Err(chain_error(format!(
                "{path} ({}) follows backup {} at transaction {}, but the backup before it, {prev_path}, is {}: {hint}",
                m.label(),
                p.id,
                p.tx,
                prev.label()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(id: u128, previous: Option<(u128, i64)>, tx: i64) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            id: Uuid::from_u128(id),
            kind: if previous.is_some() { Kind::Incremental } else { Kind::Full },
            previous: previous.map(|(id, tx)| Previous { id: Uuid::from_u128(id), tx }),
            store_id: "s".into(),
            tx,
            tx_time: None,
            created_at: Timestamp::UNIX_EPOCH,
            files: Vec::new(),
            removed: Vec::new(),
            tracked: BTreeMap::new(),
            blobs: 0,
            store: StoreDigest::default(),
        }
    }

    fn chain(ms: &[Manifest]) -> Vec<(String, Manifest)> {
        ms.iter().enumerate().map(|(i, m)| (format!("b{i}"), m.clone())).collect()
    }

    #[test]
    fn a_full_backup_then_its_incrementals_in_order_is_a_chain() {
        let (a, b, c) = (manifest(1, None, 10), manifest(2, Some((1, 10)), 20), manifest(3, Some((2, 20)), 25));
        check_chain(&chain(&[a.clone(), b.clone(), c.clone()])).unwrap();
        check_chain(&chain(std::slice::from_ref(&a))).unwrap();

        let gap = check_chain(&chain(&[a.clone(), c.clone()])).unwrap_err().to_string();
        assert!(gap.contains("a backup is missing between them (transactions 11..=20)"), "{gap}");
        let order = check_chain(&chain(&[a.clone(), c.clone(), b.clone()])).unwrap_err().to_string();
        assert!(order.contains("b1") && order.contains("missing"), "{order}");
        let swapped = check_chain(&chain(&[a.clone(), manifest(4, Some((1, 10)), 30), b.clone()])).unwrap_err();
        assert!(swapped.to_string().contains("wrong order"), "{swapped}");
        let first = check_chain(&chain(std::slice::from_ref(&b))).unwrap_err().to_string();
        assert!(first.contains("the first backup must be a full one"), "{first}");
        let two_full = check_chain(&chain(&[a.clone(), manifest(5, None, 30)])).unwrap_err().to_string();
        assert!(two_full.contains("give only one full backup"), "{two_full}");
        let mut other = b;
        other.store_id = "t".into();
        assert!(check_chain(&chain(&[a, other])).unwrap_err().to_string().contains("store t"));
        assert!(check_chain(&[]).is_err());
    }

    #[test]
    fn digests_name_the_first_difference() {
        let t = |name: &str, rows, sha: &str| TableDigest { name: name.into(), rows, sha256: sha.into() };
        let want = StoreDigest { schema: vec![], tables: vec![t("a", 1, "x"), t("b", 2, "y")] };
        assert_eq!(want.first_difference(&want), None);
        let got = StoreDigest { schema: vec![], tables: vec![t("a", 1, "x"), t("b", 3, "y")] };
        assert_eq!(got.first_difference(&want), Some(("b".into(), "has 3 rows, the backup recorded 2".into())));
    }
}
