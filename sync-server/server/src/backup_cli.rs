//! `shikong backup` and `shikong restore`: parsing, a progress bar, and one summary line; the work
//! is `shikong-backup`'s.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use clap::Args;
use indicatif::ProgressBar;

#[derive(Args)]
pub(crate) struct BackupArgs {
    /// The data folder to back up (its server may be running and writing).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Make an incremental backup holding only what changed since this earlier backup (full or
    /// incremental) of the same data folder.
    #[arg(long, value_name = "PREVIOUS")]
    since: Option<PathBuf>,
    /// The backup folder to create (must not exist).
    #[arg(value_name = "OUT")]
    out: PathBuf,
}

#[derive(Args)]
pub(crate) struct RestoreArgs {
    /// The data folder to rebuild: a new or empty folder.
    #[arg(long, value_name = "NEWDIR")]
    data: PathBuf,
    /// The full backup, then its incremental backups in the order they were taken.
    #[arg(required = true, value_name = "BACKUP")]
    backups: Vec<PathBuf>,
}

/// The library's progress reports on an indicatif bar (drawn only on a terminal).
struct Bar {
    bar: ProgressBar,
    label: Mutex<String>,
}

impl shikong_backup::Progress for Bar {
    fn stage(&self, label: &str, total: u64) {
        label.clone_into(&mut self.label.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        self.bar.set_message(label.to_owned());
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    fn set(&self, done: u64) {
        self.bar.set_position(done);
    }

    fn detail(&self, text: &str) {
        let label = self.label.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        self.bar.set_message(format!("{label}: {text}"));
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub(crate) fn backup(a: BackupArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let progress = Bar { bar: crate::cli::progress_bar("backup"), label: Mutex::new(String::new()) };
    let opts = shikong_backup::BackupOptions { data: a.data, out: a.out.clone(), since: a.since };
    let r = shikong_backup::backup(&opts, &progress);
    progress.bar.finish_and_clear();
    let r = r?;
    let m = &r.manifest;
    let what = match (m.kind, r.delta_rows) {
        (shikong_backup::Kind::Full, _) => "full backup".to_owned(),
        (shikong_backup::Kind::Incremental, rows) => format!(
            "incremental backup (transactions {}..={}, {} store rows)",
            m.previous.as_ref().map_or(0, |p| p.tx + 1),
            m.tx,
            rows.unwrap_or(0)
        ),
    };
    println!(
        "{what} written to {}: store up to transaction {} ({}), {} files, {} in {:.1} s",
        a.out.display(),
        m.tx,
        m.tx_time.map(|t| t.to_string()).unwrap_or_else(|| "empty store".into()),
        m.files.len(),
        mib(r.bytes),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(crate) fn restore(a: RestoreArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let progress = Bar { bar: crate::cli::progress_bar("restore"), label: Mutex::new(String::new()) };
    let r = shikong_backup::restore(&a.data, &a.backups, &progress);
    progress.bar.finish_and_clear();
    let r = r?;
    println!(
        "restored {} backup(s) into {}: store up to transaction {} ({}), {} files, {} in {:.1} s",
        r.backups,
        a.data.display(),
        r.tx,
        r.tx_time.map(|t| t.to_string()).unwrap_or_else(|| "empty store".into()),
        r.files,
        mib(r.bytes),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
