//! `shikong store copy`: a whole store from one backend to another (data folder ↔ PostgreSQL, or
//! between two of the same kind) with its full history, ids and sync state, and its accounts
//! (users, groups, devices, tokens, rules, the audit log: `DIR/auth.sqlite` or the database's
//! schema `shikong_auth`), so devices neither re-download nor re-enrol. The work is
//! `shikong_store::copy`'s and `shikong_auth`'s (`AuthStore::copy_accounts_into`); this is
//! parsing, the order of the two, a progress bar and the summary.
//!
//! Order: the accounts are copied first into the destination's account store, in a write
//! transaction left open (a destination holding any account is refused before anything is
//! written, store or accounts); then the store is copied (its own one transaction); only then
//! are the accounts committed. So a failed store copy leaves both empty, and a re-run just works.
//! The one window left — the store committed, then the accounts' `COMMIT` failing (the database
//! went away at that instant) — is reported as such, with the command that finishes the job:
//! the same copy with `--accounts-only`.

use std::path::{Path, PathBuf};

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
    /// Copy only the accounts (users, groups, devices, tokens, rules, audit log) into an empty
    /// account store: to finish a copy whose store part was committed and whose account part
    /// was not.
    #[arg(long)]
    accounts_only: bool,
}

pub(crate) fn run(c: StoreCommand) -> anyhow::Result<()> {
    let StoreCommand::Copy(a) = c;
    let from: StoreConfig = a.from.parse().context("--from")?;
    let to: StoreConfig = a.to.parse().context("--to")?;
    if from == to {
        anyhow::bail!("--from and --to name the same store ({from})");
    }
    // The accounts: read from the source's, written (not yet committed) into the destination's.
    let source_accounts = accounts(&from, a.from_data.as_deref(), false)?;
    let destination_accounts = match &source_accounts {
        Some(_) => accounts(&to, a.to_data.as_deref(), true)?,
        None => None,
    };
    let pending = match (&source_accounts, &destination_accounts) {
        (Some(s), Some(d)) => Some(s.copy_accounts_into(d).context("copying the accounts")?),
        _ => None,
    };
    if a.accounts_only {
        let Some(pending) = pending else {
            anyhow::bail!("{from} has no accounts (no {}) to copy", shikong_auth::AuthStore::FILE_NAME);
        };
        println!("copied the accounts {from} → {to}: {}", pending.commit()?);
        return Ok(());
    }
    let options = CopyOptions { from_data: a.from_data, to_data: a.to_data };
    let bar = crate::cli::progress_bar(&format!("copying {from} → {to}"));
    let r = copy(&from, &to, &options, &mut |p| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    });
    bar.finish_and_clear();
    // A failed store copy drops `pending`: the accounts are rolled back too.
    let r = r?;
    println!("copied {from} → {to}: {r}");
    match pending {
        Some(pending) => {
            let accounts = pending.commit().with_context(|| {
                format!(
                    "the store was copied to {to}, but its accounts were not (the destination's account store is \
                     unchanged); finish with `shikong store copy --from {} --to {} --accounts-only`",
                    a.from, a.to
                )
            })?;
            println!("accounts: {accounts}");
        }
        None => println!("accounts: none at {from} (no {})", shikong_auth::AuthStore::FILE_NAME),
    }
    Ok(())
}

/// The account store of a side: a PostgreSQL store's (schema `shikong_auth` in the database),
/// or `auth.sqlite` in the data folder of a SQLite store (given, or the store file's folder).
/// `None` for a source folder without one (nothing to copy; it is not created).
fn accounts(
    config: &StoreConfig,
    data: Option<&Path>,
    create: bool,
) -> anyhow::Result<Option<shikong_auth::AuthStore>> {
    match config {
        StoreConfig::Postgres { url } => Ok(Some(shikong_auth::AuthStore::open_postgres(url)?)),
        StoreConfig::Sqlite { path } => {
            let folder = data.map(Path::to_path_buf).unwrap_or_else(|| {
                path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).into()
            });
            if !create && !folder.join(shikong_auth::AuthStore::FILE_NAME).is_file() {
                return Ok(None);
            }
            std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
            Ok(Some(shikong_auth::AuthStore::open_in(&folder)?))
        }
        other => anyhow::bail!("{other}: this kind of store has no account store to copy"),
    }
}
