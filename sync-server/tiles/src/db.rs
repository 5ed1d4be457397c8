//! SQLite connections of the tile services: a small pool of readers and one writer per file.
//!
//! Why a pool: tiles are read from many request threads at once; one connection per thread in
//! WAL mode lets SQLite serve them in parallel, and reusing connections keeps their prepared
//! statements (`prepare_cached`) warm, which is most of a cached tile's cost.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Result, TileServerError};

#[derive(Debug)]
pub(crate) struct Db {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    /// `None` for files only read (imported raster sets).
    writer: Option<Mutex<Connection>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a connection that is still usable (SQLite rolls back
    // an unfinished transaction when the next one begins), so poisoning is ignored.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Db {
    /// Opens (creating) `path` and applies `ddl`.
    pub fn open(path: &Path, ddl: &str) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| TileServerError::io(dir, e))?;
        }
        let writer = Connection::open(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        // A lost cache write on power failure costs one regenerated tile; WAL keeps the file sound.
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        writer.busy_timeout(std::time::Duration::from_secs(10))?;
        writer.execute_batch(ddl)?;
        Ok(Db { path: path.to_owned(), readers: Mutex::new(Vec::new()), writer: Some(Mutex::new(writer)) })
    }

    /// A read-only pool over an existing file.
    pub fn readonly(path: &Path) -> Self {
        Db { path: path.to_owned(), readers: Mutex::new(Vec::new()), writer: None }
    }

    fn reader(&self) -> Result<Connection> {
        if let Some(c) = lock(&self.readers).pop() {
            return Ok(c);
        }
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(std::time::Duration::from_secs(10))?;
        // Memory-map only files nobody writes (raster slices): a reader of a file that changes
        // unmaps and remaps at its next transaction, and the TLB shootdowns of those munmaps
        // cost more than the reads they save.
        if self.writer.is_none() {
            c.pragma_update(None, "mmap_size", 1i64 << 30)?;
        }
        c.set_prepared_statement_cache_capacity(64);
        Ok(c)
    }

    /// Runs `f` on a pooled read-only connection.
    pub fn read<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let c = self.reader()?;
        let r = f(&c);
        let mut pool = lock(&self.readers);
        if pool.len() < 16 {
            pool.push(c);
        }
        r
    }

    /// Runs `f` on the writer (one at a time).
    pub fn write<R>(&self, f: impl FnOnce(&mut Connection) -> Result<R>) -> Result<R> {
        let Some(w) = &self.writer else {
            return Err(TileServerError::Invalid(format!("{} is opened read-only", self.path.display())));
        };
        let mut c = lock(w);
        f(&mut c)
    }
}
