//! The working-time calendar over HTTP (工作日历): deadlines in working days or hours, the
//! calendar in effect, and an administrator's edit of one year.
//!
//! - `GET /calendar/deadline?start=RFC3339&days=N` (or `&hours=N`, `&minutes=N`): the deadline
//!   in Beijing time and whether a year without the official schedule was crossed
//!   (`provisional`). Public: the schedule is public information and nothing of the store is read.
//! - `GET /calendar`: the effective calendar (shipped years with the edits laid over them).
//! - `PUT /calendar/years/{year}`: administrators replace one year's holidays and adjusted working
//!   days; the edits are kept in `DATA/calendar.json` (written atomically) and used at once.
//!
//! The arithmetic and the validation are `shikong-calendar`'s; this module reads and writes the
//! edits file and converts between the calendar's document and its wire type.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use axum::Router;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, put};
use shikong_auth::Role;
use shikong_calendar::{CalendarDoc, CalendarError, HolidayDoc, WorkCalendar, WorkdayDoc, YearDoc};
use shikong_protocol::api::calendar as wire;

use super::access::Caller;
use super::body::Body;
use super::params::Params;
use super::problem::{ApiError, ApiResult};
use super::{AppState, blocking, json_ok};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/calendar", get(document))
        .route("/calendar/deadline", get(deadline))
        .route("/calendar/years/{year}", put(put_year))
}

/// The calendar a server uses: the shipped one with the edits of `DATA/calendar.json`, replaced
/// whole (never mutated) when an administrator edits it.
#[derive(Debug)]
pub struct LiveCalendar {
    file: PathBuf,
    current: RwLock<Current>,
    /// One edit at a time (read, change, write the file, swap).
    writer: Mutex<()>,
}

#[derive(Debug, Clone)]
struct Current {
    calendar: Arc<WorkCalendar>,
    edits: CalendarDoc,
}

/// Why the edits file of a data folder cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct CalendarFileError {
    pub file: PathBuf,
    pub reason: String,
}

impl LiveCalendar {
    /// The shipped calendar with the edits in `data_dir` (if any). An edits file that cannot be
    /// read or is not valid is an error: a server never runs on a calendar other than the one
    /// its administrator set.
    pub fn open(data_dir: &Path) -> Result<Self, CalendarFileError> {
        let file = data_dir.join(shikong_calendar::EDITS_FILE);
        let bad = |reason: String| CalendarFileError { file: file.clone(), reason };
        let edits = match std::fs::read_to_string(&file) {
            Ok(text) => CalendarDoc::from_json(&text).map_err(|e| bad(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CalendarDoc::default(),
            Err(e) => return Err(bad(e.to_string())),
        };
        let calendar = Arc::new(WorkCalendar::with_edits(&edits).map_err(|e| bad(e.to_string()))?);
        Ok(LiveCalendar { file, current: RwLock::new(Current { calendar, edits }), writer: Mutex::new(()) })
    }

    /// The calendar in effect now.
    pub fn calendar(&self) -> Arc<WorkCalendar> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).calendar.clone()
    }

    /// Replaces `year` in the edits: validated, written to the edits file atomically, then used.
    /// Blocking (file I/O).
    fn put_year(&self, year: i16, doc: YearDoc) -> ApiResult<()> {
        let _one = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut edits = self.current.read().unwrap_or_else(PoisonError::into_inner).edits.clone();
        edits.years.insert(year, doc);
        let calendar = WorkCalendar::with_edits(&edits).map_err(|e| invalid_year(year, e))?;
        write_atomic(&self.file, edits.to_json_pretty().as_bytes()).map_err(ApiError::internal)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Current { calendar: Arc::new(calendar), edits };
        Ok(())
    }
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk, renames it over `path`
/// and flushes the directory: a crash leaves the old file or the new one, never a part.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Directories cannot be opened for syncing everywhere (Windows); the rename is done.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// A refused year edit: 422 naming the member of the body at fault (`workdays[1].date`).
fn invalid_year(year: i16, e: CalendarError) -> ApiError {
    match e {
        CalendarError::Invalid { at, detail } => {
            let prefix = format!("years.{year}");
            let field = at.strip_prefix(&prefix).map_or(at.as_str(), |f| f.trim_start_matches('.'));
            let mut err =
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-calendar", format!("{at}: {detail}"))
                    .with("year", year);
            if !field.is_empty() {
                err = err.with("field", field);
            }
            err
        }
        e => ApiError::bad_body(e.to_string()),
    }
}

fn wire_document(doc: &CalendarDoc) -> wire::CalendarDocument {
    let periods = doc.periods.clone().unwrap_or_else(shikong_calendar::default_periods);
    wire::CalendarDocument {
        periods: periods.into_iter().map(|p| wire::WorkPeriod { start: p.start, end: p.end }).collect(),
        years: doc.years.iter().map(|(y, d)| (*y, wire_year(d))).collect(),
    }
}

fn wire_year(y: &YearDoc) -> wire::CalendarYear {
    wire::CalendarYear {
        source: y.source.clone(),
        holidays: y.holidays.iter().map(|h| wire::Holiday { name: h.name.clone(), from: h.from, to: h.to }).collect(),
        workdays: y.workdays.iter().map(|w| wire::AdjustedWorkday { date: w.date, name: w.name.clone() }).collect(),
    }
}

fn year_doc(y: wire::CalendarYear) -> YearDoc {
    YearDoc {
        source: y.source,
        holidays: y.holidays.into_iter().map(|h| HolidayDoc { name: h.name, from: h.from, to: h.to }).collect(),
        workdays: y.workdays.into_iter().map(|w| WorkdayDoc { date: w.date, name: w.name }).collect(),
    }
}

/// `GET /calendar`.
async fn document(State(state): State<AppState>) -> ApiResult<Response> {
    json_ok(&wire_document(state.calendar.calendar().doc()))
}

/// `start`: RFC 3339 or a Beijing local time. A `+` of an offset sent unencoded in a query
/// string arrives as a space (`…10:00:00 08:00`); it is read back as the `+` it was.
fn start_param(v: &str) -> ApiResult<jiff::Timestamp> {
    let bad = |e: CalendarError| ApiError::bad_parameter("start", e);
    match shikong_calendar::parse_time(v) {
        Ok(t) => Ok(t),
        Err(e) => match v.trim().rsplit_once(' ') {
            Some((head, tail)) if tail.len() == 5 && tail.as_bytes()[2] == b':' => {
                shikong_calendar::parse_time(&format!("{head}+{tail}")).map_err(|_| bad(e))
            }
            _ => Err(bad(e)),
        },
    }
}

/// A count parameter: a non-negative integer up to `max`.
fn count_param(name: &str, v: &str, max: u64) -> ApiResult<u64> {
    match v.trim().parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        Ok(n) => {
            Err(ApiError::bad_parameter(name, format!("{n} is more than the {max} a deadline may add"))
                .with("max", max))
        }
        Err(_) => Err(ApiError::bad_parameter(name, format!("`{v}` is not a non-negative integer"))),
    }
}

/// `GET /calendar/deadline?start=…&days=N|hours=N|minutes=N`.
async fn deadline(State(state): State<AppState>, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&["start", "days", "hours", "minutes"])?;
    let start = start_param(p.get("start").ok_or_else(|| {
        ApiError::bad_parameter("start", "missing: give the start as RFC 3339 (2025-09-26T10:00:00+08:00)")
    })?)?;
    let given: Vec<(&str, &str)> =
        ["days", "hours", "minutes"].into_iter().filter_map(|k| p.get(k).map(|v| (k, v))).collect();
    let cal = state.calendar.calendar();
    let answer = match given.as_slice() {
        [] => return Err(ApiError::bad_parameter("days", "give `days` or `hours` (working time to add)")),
        [_, (second, _), ..] => {
            return Err(ApiError::bad_parameter(second, "give only one of `days`, `hours` and `minutes`"));
        }
        [("days", v)] => {
            let n = count_param("days", v, shikong_calendar::MAX_DAYS.into())?;
            cal.add_working_days(start, u32::try_from(n).unwrap_or(u32::MAX))
        }
        [("hours", v)] => {
            let n = count_param("hours", v, shikong_calendar::MAX_HOURS.into())?;
            cal.add_working_hours(start, u32::try_from(n).unwrap_or(u32::MAX))
        }
        [(_, v)] => cal.add_working_minutes(start, count_param("minutes", v, shikong_calendar::MAX_MINUTES)?),
    }
    .map_err(|e| match e {
        CalendarError::TooMany { unit, .. } => ApiError::bad_parameter(unit.trim_start_matches("working "), e),
        e => ApiError::bad_parameter("start", e),
    })?;
    json_ok(&wire::DeadlineAnswer { deadline: answer.rfc3339(), provisional: answer.provisional })
}

/// `PUT /calendar/years/{year}` with a [`wire::CalendarYear`]: administrators only.
async fn put_year(
    State(state): State<AppState>,
    caller: Caller,
    UrlPath(year): UrlPath<String>,
    Body(body): Body,
) -> ApiResult<Response> {
    caller.require_role(&[Role::Admin], "the working calendar is edited by administrators")?;
    let year: i16 = year.parse().ok().filter(|y| shikong_calendar::doc::YEARS.contains(y)).ok_or_else(|| {
        let (lo, hi) = (shikong_calendar::doc::YEARS.start(), shikong_calendar::doc::YEARS.end());
        ApiError::bad_parameter("year", format!("`{year}` is not a year from {lo} to {hi}"))
    })?;
    let doc: wire::CalendarYear =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_body(format!("not a calendar year: {e}")))?;
    let live = state.calendar.clone();
    blocking(move || live.put_year(year, year_doc(doc))).await?;
    let cal = state.calendar.calendar();
    let stored = cal.doc().years.get(&year).map(wire_year).ok_or_else(|| ApiError::internal("edited year missing"))?;
    json_ok(&stored)
}
