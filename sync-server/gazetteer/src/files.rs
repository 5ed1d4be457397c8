//! The gazetteer's files in a data directory: the engine snapshot, the manifest beside it, and the
//! user aliases applied over the snapshot at load (so edits survive rebuilds). Written atomically
//! (a temporary file renamed over the old one), so a reader never sees half a file.

use std::path::Path;

use shikong_geocoder::{Alias, Geocoder};

use crate::error::{GazetteerError, Result};
use crate::sources::Manifest;

/// The engine's snapshot (loads in well under a second).
pub const SNAPSHOT_FILE: &str = "gazetteer.bin";
/// The [`Manifest`]: which store layers feed the gazetteer, with which fields.
pub const SOURCES_FILE: &str = "gazetteer.json";
/// User aliases (`alias,name,code`), applied over the snapshot at load: edits survive rebuilds.
pub const USER_ALIASES_FILE: &str = "gazetteer-aliases.csv";

/// Loads the snapshot, manifest and user aliases from a data directory, if a gazetteer was built
/// there.
pub fn load(data_dir: &Path) -> Result<Option<(Geocoder, Manifest)>> {
    let snap = data_dir.join(SNAPSHOT_FILE);
    if !snap.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(&snap).map_err(GazetteerError::io(&snap))?;
    let mut geo = Geocoder::from_snapshot(&bytes).map_err(|e| GazetteerError::file(&snap, None, e))?;
    let src = data_dir.join(SOURCES_FILE);
    let manifest = if src.is_file() {
        let text = std::fs::read_to_string(&src).map_err(GazetteerError::io(&src))?;
        serde_json::from_str(&text).map_err(|e| GazetteerError::file(&src, None, e))?
    } else {
        Manifest::default()
    };
    for a in read_user_aliases(data_dir)? {
        // An alias whose division vanished from a newer edition is skipped, not fatal.
        if let Err(e) = geo.add_alias(a) {
            tracing::warn!(error = %e, "user alias skipped");
        }
    }
    Ok(Some((geo, manifest)))
}

/// The user aliases of a data directory.
pub fn read_user_aliases(data_dir: &Path) -> Result<Vec<Alias>> {
    let path = data_dir.join(USER_ALIASES_FILE);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let mut rdr = csv::Reader::from_path(&path).map_err(|e| GazetteerError::file(&path, None, e))?;
    let mut out = Vec::new();
    for (i, r) in rdr.deserialize::<Alias>().enumerate() {
        out.push(r.map_err(|e| GazetteerError::file(&path, Some(i as u64 + 2), e))?);
    }
    Ok(out)
}

pub(crate) fn write_user_aliases(data_dir: &Path, aliases: &[Alias]) -> Result<()> {
    let path = data_dir.join(USER_ALIASES_FILE);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut rows = std::iter::once(["alias", "name", "code"])
        .chain(aliases.iter().map(|a| [a.alias.as_str(), a.name.as_str(), a.code.as_deref().unwrap_or("")]));
    rows.try_for_each(|r| w.write_record(r)).map_err(|e| GazetteerError::file(&path, None, e))?;
    let bytes = w.into_inner().map_err(|e| GazetteerError::file(&path, None, e))?;
    write_atomic(&path, &bytes)
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(GazetteerError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(GazetteerError::io(path))?;
    Ok(())
}

pub(crate) fn mtime(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_aliases_round_trip_and_bad_rows_name_file_and_row() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_user_aliases(dir.path()).unwrap().is_empty());
        assert!(load(dir.path()).unwrap().is_none());
        let aliases = vec![
            Alias { alias: "华科".into(), name: "华中科技大学".into(), code: Some("420111".into()) },
            Alias { alias: "老汉口".into(), name: "江岸区".into(), code: None },
        ];
        write_user_aliases(dir.path(), &aliases).unwrap();
        assert_eq!(read_user_aliases(dir.path()).unwrap(), aliases);

        std::fs::write(dir.path().join(USER_ALIASES_FILE), "alias,name,code\n华科\n").unwrap();
        let e = read_user_aliases(dir.path()).unwrap_err();
        assert!(matches!(e, GazetteerError::File { row: Some(2), .. }), "{e:?}");
        assert!(e.to_string().contains("gazetteer-aliases.csv, row 2: "), "{e}");
    }

    #[test]
    fn a_corrupt_snapshot_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SNAPSHOT_FILE), b"not a snapshot").unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(e.to_string().contains(SNAPSHOT_FILE), "{e}");
    }
}
