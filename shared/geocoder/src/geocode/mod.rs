//! Forward geocoding: address text → divisions, road, house number or POI, with a score.
//!
//! The query is normalised, then every indexed spelling found anywhere in it becomes a *mention*:
//! exact division names (official, display, derived and short forms), pinyin readings (homophones),
//! aliases, and road/POI names from the live records. Each mentioned place is a *candidate*; its
//! score sums the best non-overlapping mention of itself and of each of its ancestors, so "洪山区珞南
//! 街道" scores 珞南街道 with the evidence of both and beats a 珞南 elsewhere, and "武汉洪山" needs no
//! suffix. Missing levels are implied by the hierarchy. Candidates of equal score in different
//! counties are reported as ambiguous, never picked at random. Below the best candidate, the rest
//! of the text is matched against its children with an edit distance that counts homophones and
//! similar shapes as near-equal (typos, dropped or swapped characters). Input with too little
//! evidence is refused with the reason.
//!
//! The steps live in one module each: `mentions` finds the spellings, `score` ranks the
//! candidates (and reads "X附近的Y"), `foreign` refuses places abroad, `answer` turns the best
//! candidate into a result (ties, house numbers, precision) and `fuzzy` matches misspelt lower
//! levels.

mod answer;
mod foreign;
mod fuzzy;
mod mentions;
mod score;

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::Serialize;

use crate::engine::{Geocoder, Role, Slot};
use crate::gazetteer::DivId;
use crate::records::Record;
use crate::text::{Level, NameKind, normalize};

pub(crate) use foreign::FOREIGN;
pub(crate) use fuzzy::weighted_osa;

/// How precise an answer the caller wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Down to the house number or POI point.
    #[default]
    Point,
    /// Down to the road.
    Road,
    /// Administrative units only.
    Area,
}

/// Query options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub precision: Precision,
    /// Search the records valid at this instant; `None` searches the current ones (open-ended).
    pub as_of: Option<Timestamp>,
    /// Which records the query may use, by their source layer (divisions and aliases to
    /// divisions are reference data, always used).
    pub scope: Scope,
}

/// Which records a query sees, by the store layer each comes from ([`Record::layer`]). A server
/// passes the caller's readable layers; the filter applies wherever a record is looked at, before
/// any ranking or limit, so hidden records neither answer nor crowd out visible ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every record (a device's own subset, the CLI at the server machine).
    #[default]
    All,
    /// Only records whose layer is in the set; records of no layer are hidden.
    Layers(BTreeSet<String>),
}

impl Scope {
    /// Whether a record of `layer` is visible.
    pub fn allows(&self, layer: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Layers(set) => layer.is_some_and(|l| set.contains(l)),
        }
    }

    /// Whether `record` is visible.
    pub fn sees(&self, record: &Record) -> bool {
        self.allows(record.layer())
    }
}

/// The outcome of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Match,
    Ambiguous,
    #[serde(rename = "nomatch")]
    NoMatch,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Match => "match",
            Status::Ambiguous => "ambiguous",
            Status::NoMatch => "nomatch",
        }
    }
}

/// Why a query got no match (or was ambiguous).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The input was empty after normalisation.
    Empty,
    /// The input names a place outside the reference area (abroad, or another region on a device
    /// that carries a subset).
    OutsideArea { place: String },
    /// Nothing in the input is a known division, road, POI or alias.
    NoComponent,
    /// Something matched, but too weakly to answer (a lone short or homophone match).
    TooWeak { best: String, score: f64 },
    /// Several places in different counties fit equally well.
    Tie { count: usize },
}

impl Reason {
    /// A one-line explanation in Chinese for users and CSV output.
    pub fn message(&self) -> String {
        match self {
            Reason::Empty => "地址为空".into(),
            Reason::OutsideArea { place } => format!("超出参考数据范围: {place}"),
            Reason::NoComponent => "无可识别的地址成分".into(),
            Reason::TooWeak { best, score } => format!("匹配依据不足: {best} ({score:.2})"),
            Reason::Tie { count } => format!("{count} 个候选同分, 无法区分"),
        }
    }
}

/// How deep the answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchLevel {
    Province,
    City,
    County,
    Town,
    Village,
    Road,
    HouseNumber,
    Poi,
}

impl MatchLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchLevel::Province => "province",
            MatchLevel::City => "city",
            MatchLevel::County => "county",
            MatchLevel::Town => "town",
            MatchLevel::Village => "village",
            MatchLevel::Road => "road",
            MatchLevel::HouseNumber => "house_number",
            MatchLevel::Poi => "poi",
        }
    }

    fn of(level: Level) -> MatchLevel {
        match level {
            Level::Province => MatchLevel::Province,
            Level::City => MatchLevel::City,
            Level::County => MatchLevel::County,
            Level::Town => MatchLevel::Town,
            Level::Village => MatchLevel::Village,
        }
    }
}

/// Official division codes per level (6 digits up to county, 9 for townships, 12 for villages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Codes {
    pub province: Option<String>,
    pub city: Option<String>,
    pub county: Option<String>,
    pub town: Option<String>,
    pub village: Option<String>,
}

/// The address split into its parts, as written (after normalisation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Components {
    pub province: Option<String>,
    pub city: Option<String>,
    pub county: Option<String>,
    pub town: Option<String>,
    pub village: Option<String>,
    pub road: Option<String>,
    pub house_number: Option<String>,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub room: Option<String>,
    pub poi: Option<String>,
}

/// What a result's point is the location of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PointSource {
    /// The centre of a division of this level (townships without points get their county's).
    Centre(Level),
    Road,
    Address,
    Poi,
}

/// A point in CGCS2000 longitude/latitude and what it locates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub lon: f64,
    pub lat: f64,
    pub source: PointSource,
}

/// One candidate place (the answer, or one of the tied places of an ambiguous answer).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub score: f64,
    pub level: MatchLevel,
    pub codes: Codes,
    pub standard_address: String,
    pub point: Option<Point>,
}

/// The answer to one query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeocodeResult {
    pub status: Status,
    pub reason: Option<Reason>,
    /// Confidence 0..1: how completely and exactly the input names the place, and how far ahead
    /// of the next candidate it is.
    pub score: f64,
    pub level: Option<MatchLevel>,
    pub codes: Codes,
    /// Full official names in canonical order (province … village, road, number, building, POI).
    pub standard_address: String,
    pub components: Components,
    pub point: Option<Point>,
    /// For ambiguous answers: the tied candidates (the best first).
    pub candidates: Vec<Candidate>,
}

impl GeocodeResult {
    fn nomatch(reason: Reason) -> GeocodeResult {
        GeocodeResult {
            status: Status::NoMatch,
            reason: Some(reason),
            score: 0.0,
            level: None,
            codes: Codes::default(),
            standard_address: String::new(),
            components: Components::default(),
            point: None,
            candidates: Vec::new(),
        }
    }
}

/// What a mention points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Div(DivId),
    Rec(Slot),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    Exact(NameKind),
    Pinyin,
    Alias,
    Record(Role),
}

#[derive(Debug, Clone, Copy)]
struct Mention {
    start: usize,
    end: usize,
    target: Target,
    w: f32,
    how: How,
}

impl Mention {
    fn overlaps(&self, s: usize, e: usize) -> bool {
        self.start < e && s < self.end
    }
}

#[derive(Debug, Clone)]
struct Scored {
    target: Target,
    score: f32,
    /// The mentions used, deepest first: (target, mention index).
    used: Vec<usize>,
}

/// Scores under this are refused as too weak: a lone short name (0.85) passes, a lone homophone
/// (0.7) or a lone village name does not.
const MIN_SCORE: f32 = 0.75;
/// Scores this close are a tie.
const TIE: f32 = 1e-3;

fn level_weight(level: Level) -> f32 {
    match level {
        Level::Province => 0.7,
        Level::City => 0.9,
        Level::County => 1.0,
        Level::Town => 1.0,
        Level::Village => 0.8,
    }
}

struct Query {
    chars: Vec<char>,
    text: String,
    offsets: Vec<usize>,
}

impl Query {
    fn new(input: &str) -> Query {
        let text = normalize(input);
        let chars: Vec<char> = text.chars().collect();
        let mut offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        offsets.push(text.len());
        Query { chars, text, offsets }
    }

    fn span(&self, s: usize, e: usize) -> String {
        self.chars[s..e].iter().collect()
    }
}

impl Geocoder {
    /// Geocodes one address.
    pub fn geocode(&self, input: &str, opts: &Options) -> GeocodeResult {
        let q = Query::new(input);
        if q.chars.is_empty() {
            return GeocodeResult::nomatch(Reason::Empty);
        }
        let mut mentions = self.find_mentions(&q, opts);
        let scored = self.score(&q, &mut mentions);
        let foreign = self.foreign_before(&q, &mentions, scored.first());
        if let Some(place) = foreign {
            return GeocodeResult::nomatch(Reason::OutsideArea { place });
        }
        let Some(mut best) = scored.first().cloned() else {
            return GeocodeResult::nomatch(self.no_component_reason(&q));
        };
        if let Some(near) = self.near_choice(&q, &mentions, &scored) {
            best = near;
        }
        if best.score < MIN_SCORE {
            let name = self.target_name(best.target);
            return GeocodeResult::nomatch(Reason::TooWeak { best: name, score: f64::from(best.score) });
        }
        self.answer(&q, &mentions, &scored, best, opts)
    }

    /// A developer's view of how a query was read: every mention and the top candidates with their
    /// scores. For tuning and for `--explain` style diagnostics; the format is not stable.
    pub fn explain(&self, input: &str, opts: &Options) -> String {
        use std::fmt::Write;
        let q = Query::new(input);
        let mut mentions = self.find_mentions(&q, opts);
        let scored = self.score(&q, &mut mentions);
        let mut out = format!("normalised: {}\n", q.text);
        for m in &mentions {
            let _ = writeln!(
                out,
                "  mention {}..{} {:?} {} w={:.3} {:?}",
                m.start,
                m.end,
                q.span(m.start, m.end),
                self.target_name(m.target),
                m.w,
                m.how
            );
        }
        for s in scored.iter().take(8) {
            let name = match self.anchor(s.target) {
                Some(a) => self.standard_admin(a),
                None => String::new(),
            };
            let _ = writeln!(out, "  candidate {:.3} {} {}", s.score, name, self.target_name(s.target));
        }
        out
    }
}
