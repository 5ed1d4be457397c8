//! `shikong store copy`: a whole store from one backend to another (data folder ↔ PostgreSQL, or
//! between two of the same kind) with its full history, ids and sync state; the work is
//! `shikong_store::copy`'s, this is parsing, a progress bar and the summary.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use shikong_store::StoreConfig;
use shikong_store::copy::{CopyOptions, copy};

#[derive(Subcommand)]
pub(crate) enum StoreCommand {
    /// Copy a whole store into a new, empty one: every version, transaction, sync document,
    /// replica and attachment record, with the same ids, so devices sync on without downloading
    /// again. E.g. `--from DIR --to postgres://…` (and back).
    Copy(CopyArgs),
}

#[derive(Args)]
pub(crate) struct CopyArgs {
    /// The store to copy: a data directory, a .gpkg file, or a postgres:// URL.
    #[arg(long, value_name = "DIR|FILE|URL")]
    from: String,
    /// The new store: an empty or missing data directory, or an empty database
    /// (postgres://…; the database must exist). A store holding anything is refused.
    #[arg(long, value_name = "DIR|FILE|URL")]
    to: String,
    /// With a postgres:// source: the data folder its server used (attachment files are copied
    /// from its blobs/).
    #[arg(long, value_name = "DIR")]
    from_data: Option<PathBuf>,
    /// With a postgres:// destination: the data folder its server will use (attachment files
    /// are copied into its blobs/).
    #[arg(long, value_name = "DIR")]
    to_data: Option<PathBuf>,
}

pub(crate) fn run(c: StoreCommand) -> anyhow::Result<()> {
    let StoreCommand::Copy(a) = c;
    let from: StoreConfig = a.from.parse().context("--from")?;
    let to: StoreConfig = a.to.parse().context("--to")?;
    let options = CopyOptions { from_data: a.from_data, to_data: a.to_data };
    let bar = crate::cli::progress_bar(&format!("copying {from} → {to}"));
    let r = copy(&from, &to, &options, &mut |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    });
    bar.finish_and_clear();
    let r = r?;
    println!("copied {from} → {to}: {r}");
    Ok(())
}
