//! `shikong calendar add --data DIR --start TIME --days N|--hours N`: a deadline in working time,
//! printed alone as RFC 3339 in Beijing time (scripts read it), on the calendar a server on DIR
//! uses — the shipped official years with the administrator's edits of `DIR/calendar.json`.
//! A deadline that crossed a year without the official schedule is still printed, with a warning
//! on stderr (Monday–Friday was assumed).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use shikong_calendar::{CalendarDoc, WorkCalendar};

#[derive(Subcommand)]
pub(crate) enum CalendarCommand {
    /// Add working days or working hours to a start time; prints the deadline (RFC 3339, Beijing time).
    Add(AddArgs),
}

#[derive(Args)]
pub(crate) struct AddArgs {
    /// The data folder whose calendar is used (its `calendar.json` edits, if any).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// RFC 3339 (2025-09-26T10:00:00+08:00) or a Beijing local time (2025-09-26T10:00).
    #[arg(long, value_name = "TIME")]
    start: String,
    /// Working days to add: the same time of day on the N-th following working day.
    #[arg(long, value_name = "N", required_unless_present = "hours", conflicts_with = "hours")]
    days: Option<u32>,
    /// Working hours to add: only time inside the working periods of working days counts.
    #[arg(long, value_name = "N")]
    hours: Option<u32>,
}

/// The calendar of a data folder: the shipped one with the folder's edits.
fn calendar(data: &std::path::Path) -> anyhow::Result<WorkCalendar> {
    if !data.is_dir() {
        bail!("--data {}: no such data folder", data.display());
    }
    let file = data.join(shikong_calendar::EDITS_FILE);
    let edits = match std::fs::read_to_string(&file) {
        Ok(text) => CalendarDoc::from_json(&text).with_context(|| file.display().to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => CalendarDoc::default(),
        Err(e) => return Err(e).with_context(|| file.display().to_string()),
    };
    WorkCalendar::with_edits(&edits).with_context(|| file.display().to_string())
}

pub(crate) fn run(c: CalendarCommand) -> anyhow::Result<()> {
    match c {
        CalendarCommand::Add(a) => {
            let cal = calendar(&a.data)?;
            let start = shikong_calendar::parse_time(&a.start).context("--start")?;
            let deadline = match (a.days, a.hours) {
                (Some(n), None) => cal.add_working_days(start, n).context("--days")?,
                (None, Some(n)) => cal.add_working_hours(start, n).context("--hours")?,
                _ => bail!("give one of --days and --hours"),
            };
            if deadline.provisional {
                let loaded: Vec<String> = cal.years().map(|y| y.to_string()).collect();
                #[allow(clippy::print_stderr)]
                {
                    eprintln!(
                        "shikong: warning: the deadline crosses a year without the official holiday schedule \
                         (loaded: {}); Monday–Friday was assumed there",
                        loaded.join(", ")
                    );
                }
            }
            println!("{}", deadline.rfc3339());
        }
    }
    Ok(())
}
