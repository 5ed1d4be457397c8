//! Backup and restore errors. Each names the folder, file or table at fault and what to do, so
//! the CLI prints it as one line an operator can act on.

use std::path::Path;

pub type Result<T, E = BackupError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: SQLite: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
    #[error("{path}: not a shikong data folder ({reason})")]
    NotADataFolder { path: String, reason: String },
    #[error("{path} already exists: a backup is never written over another (choose a new folder)")]
    OutputExists { path: String },
    #[error("{path} exists: an earlier backup to this folder was interrupted; remove it and run the backup again")]
    StaleTemp { path: String },
    #[error("{path}: not a shikong backup ({reason})")]
    NotABackup { path: String, reason: String },
    #[error(
        "{path}: backup format version {found} is newer than this shikong understands ({supported}); upgrade shikong"
    )]
    TooNew { path: String, found: u32, supported: u32 },
    #[error("{path}: file `{file}` is damaged ({reason}); this backup cannot be restored")]
    Damaged { path: String, file: String, reason: String },
    #[error(
        "--since {previous}: that backup is of another store (store {previous_store}; this folder holds store {store})"
    )]
    OtherStore { previous: String, previous_store: String, store: String },
    #[error(
        "--since {previous}: the store no longer holds that backup's last transaction {tx} as it was ({reason}); it was restored or replaced since, so make a full backup"
    )]
    Diverged { previous: String, tx: i64, reason: String },
    #[error("restore: {0}")]
    Chain(String),
    #[error("{path} is not empty ({entries} entries): restore only into a new or empty folder")]
    TargetNotEmpty { path: String, entries: usize },
    #[error(
        "restore: the rebuilt store differs from what backup {backup} recorded: table `{table}` {detail}; the backup files are inconsistent, nothing was written to the target"
    )]
    Verify { backup: String, table: String, detail: String },
    #[error("{path}: {reason}")]
    Unsupported { path: String, reason: String },
}

impl BackupError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
        move |source| BackupError::Io { path: path.display().to_string(), source }
    }

    pub(crate) fn sqlite(path: &Path) -> impl FnOnce(rusqlite::Error) -> BackupError + '_ {
        move |source| BackupError::Sqlite { path: path.display().to_string(), source }
    }
}
