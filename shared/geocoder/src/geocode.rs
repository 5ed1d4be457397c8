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

use jiff::Timestamp;
use serde::Serialize;

use crate::components::{Tail, parse_tail};
use crate::engine::{Geocoder, Role, Slot, normalize_number};
use crate::gazetteer::DivId;
use crate::index::{posting_id, posting_kind};
use crate::phonetic::{self, Readings};
use crate::records::Record;
use crate::text::{self, Level, NameKind, normalize, short_name, starts_road_suffix};

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

/// Countries and foreign cities as Chinese text writes them: a query that starts with one is about
/// a place outside the reference area, even when a Chinese division shares a later name (首尔江南区
/// is not 南宁市江南区).
pub(crate) const FOREIGN: &[&str] = &[
    "日本",
    "韩国",
    "朝鲜",
    "美国",
    "英国",
    "法国",
    "德国",
    "意大利",
    "西班牙",
    "葡萄牙",
    "俄罗斯",
    "加拿大",
    "墨西哥",
    "巴西",
    "阿根廷",
    "澳大利亚",
    "新西兰",
    "印度",
    "巴基斯坦",
    "泰国",
    "越南",
    "老挝",
    "柬埔寨",
    "缅甸",
    "马来西亚",
    "新加坡",
    "印度尼西亚",
    "菲律宾",
    "蒙古国",
    "哈萨克斯坦",
    "土耳其",
    "伊朗",
    "伊拉克",
    "以色列",
    "埃及",
    "南非",
    "尼日利亚",
    "肯尼亚",
    "荷兰",
    "比利时",
    "瑞士",
    "瑞典",
    "挪威",
    "芬兰",
    "丹麦",
    "波兰",
    "奥地利",
    "希腊",
    "爱尔兰",
    "乌克兰",
    "沙特",
    "阿联酋",
    "东京",
    "大阪",
    "京都",
    "横滨",
    "名古屋",
    "札幌",
    "首尔",
    "釜山",
    "仁川",
    "平壤",
    "纽约",
    "洛杉矶",
    "旧金山",
    "芝加哥",
    "华盛顿",
    "波士顿",
    "西雅图",
    "伦敦",
    "曼彻斯特",
    "爱丁堡",
    "巴黎",
    "里昂",
    "马赛",
    "柏林",
    "慕尼黑",
    "法兰克福",
    "汉堡市",
    "罗马",
    "米兰",
    "马德里",
    "巴塞罗那",
    "莫斯科",
    "圣彼得堡",
    "多伦多",
    "温哥华",
    "悉尼",
    "墨尔本",
    "曼谷",
    "清迈",
    "河内",
    "胡志明市",
    "吉隆坡",
    "雅加达",
    "马尼拉",
    "新德里",
    "孟买",
    "迪拜",
    "开罗",
    "伊斯坦布尔",
    "乌兰巴托",
    "阿姆斯特丹",
    "布鲁塞尔",
    "日内瓦",
    "苏黎世",
    "维也纳",
    "斯德哥尔摩",
    "北海道",
    "汉堡",
];

/// Words that put a second place near a first ("武大附近的热干面店").
const NEAR: &[&str] = &["附近", "旁边", "周边", "边上", "对面", "门口"];

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

    /// Every indexed spelling found in the query.
    fn find_mentions(&self, q: &Query, opts: &Options) -> Vec<Mention> {
        let chars = &q.chars;
        let mut out: Vec<Mention> = Vec::new();
        let mut village_hits: Vec<(usize, usize, &[u32])> = Vec::new();
        self.names.scan(&q.text, &q.offsets, |s, e, list| {
            let mut has_village = false;
            for &p in list {
                let id = posting_id(p);
                let d = self.div(id);
                if d.level == Level::Village {
                    has_village = true;
                    continue;
                }
                if let Some(w) = self.mention_weight(chars, s, e, d.level, posting_kind(p)) {
                    out.push(Mention {
                        start: s,
                        end: e,
                        target: Target::Div(id),
                        w,
                        how: How::Exact(posting_kind(p)),
                    });
                }
            }
            if has_village {
                village_hits.push((s, e, list));
            }
        });
        self.pinyin_mentions(q, &mut out);
        self.alias_and_record_mentions(q, opts, &mut out);
        // Villages only count inside a mentioned county or township: 新村 alone names thousands.
        let anchors: Vec<(DivId, usize, usize)> = out
            .iter()
            .filter_map(|m| match m.target {
                Target::Div(id) if matches!(self.div(id).level, Level::County | Level::Town) => {
                    Some((id, m.start, m.end))
                }
                _ => None,
            })
            .collect();
        for (s, e, list) in village_hits {
            for &(a, as_, ae) in &anchors {
                if as_ < e && s < ae {
                    continue;
                }
                let end = self.div(a).end;
                let town_anchor = self.div(a).level == Level::Town;
                let lo = list.partition_point(|&p| posting_id(p) <= a);
                for &p in list[lo..].iter().take_while(|&&p| posting_id(p) < end) {
                    let id = posting_id(p);
                    let d = self.div(id);
                    let kind = posting_kind(p);
                    // A bare village base (朝阳 of 朝阳村) counts only under a named township.
                    if d.level != Level::Village || (kind == NameKind::Short && !town_anchor) {
                        continue;
                    }
                    if let Some(w) = self.mention_weight(chars, s, e, d.level, kind) {
                        out.push(Mention { start: s, end: e, target: Target::Div(id), w, how: How::Exact(kind) });
                    }
                }
            }
        }
        out.sort_by(|a, b| (a.target, a.start, a.end).cmp(&(b.target, b.start, b.end)).then(b.w.total_cmp(&a.w)));
        out.dedup_by(|a, b| a.target == b.target && a.start == b.start && a.end == b.end);
        discount_covered(&mut out, chars.len());
        out
    }

    /// The weight of an exact mention in context, or `None` when the context says it is not this
    /// place at all (a name followed by 路 is a road name).
    fn mention_weight(&self, chars: &[char], s: usize, e: usize, level: Level, kind: NameKind) -> Option<f32> {
        let short_like = matches!(kind, NameKind::Short | NameKind::Display);
        if short_like && starts_road_suffix(chars, e) {
            return None;
        }
        let mut w = level_weight(level) * kind.weight();
        if kind == NameKind::Short {
            if chars.get(e).copied().and_then(|c| text::suffix_fits(c, level)) == Some(false) {
                w *= 0.5;
            }
            // Two-character township and village bases (新村, 火星) are common words: alone they are
            // not enough to place an address.
            if level >= Level::Town && e - s <= 2 {
                w *= 0.85;
            }
            if level == Level::Village {
                w *= 0.85;
            }
        }
        Some(w)
    }

    /// Homophones: spans whose pinyin reads as a division name above village level while at most
    /// one character (two in long names) differs.
    fn pinyin_mentions(&self, q: &Query, out: &mut Vec<Mention>) {
        let chars = &q.chars;
        // Text already read as a full official name needs no second reading by sound.
        let mut skip = vec![false; chars.len()];
        for m in out.iter() {
            if matches!(m.how, How::Exact(NameKind::Official | NameKind::Display | NameKind::Derived))
                && m.end - m.start >= 3
            {
                skip[m.start..m.end].iter_mut().for_each(|x| *x = true);
            }
        }
        if skip.iter().all(|&x| x) {
            return;
        }
        let readings: Vec<Readings> = chars.iter().map(|&c| phonetic::readings(c)).collect();
        let mut found = Vec::new();
        self.pinyin.scan_pinyin(&readings, &skip, crate::engine::MAX_PINYIN_LEN, |s, e, list| {
            found.push((s, e, list));
        });
        for (s, e, list) in found {
            let len = e - s;
            for &p in list {
                let id = posting_id(p);
                let d = self.div(id);
                let kind = posting_kind(p);
                let mut n = 0;
                let mut exact = 0;
                for (a, &b) in d.name.chars().zip(&chars[s..e]) {
                    n += 1;
                    if a == b || (!a.is_ascii() && text::norm_char(a) == b) {
                        exact += 1;
                    }
                }
                if n < len {
                    continue;
                }
                let diff = len - exact;
                let allowed = if len <= 4 { 1 } else { 2 };
                if diff == 0 || diff > allowed || exact == 0 {
                    continue;
                }
                if let Some(w) = self.mention_weight(chars, s, e, d.level, kind) {
                    out.push(Mention { start: s, end: e, target: Target::Div(id), w: w * 0.75, how: How::Pinyin });
                }
            }
        }
    }

    fn record_live(&self, r: &Record, opts: &Options) -> bool {
        match opts.as_of {
            Some(t) => r.valid().contains(t),
            None => r.valid().to.is_none(),
        }
    }

    fn alias_and_record_mentions(&self, q: &Query, opts: &Options, out: &mut Vec<Mention>) {
        let live = &self.live;
        if live.first.is_empty() {
            return;
        }
        let n = q.chars.len();
        for s in 0..n {
            let Some(&mask) = live.first.get(&q.chars[s]) else { continue };
            for len in 2..=(n - s).min(63) {
                if mask & (1 << len) == 0 {
                    continue;
                }
                let key = &q.text[q.offsets[s]..q.offsets[s + len]];
                let e = s + len;
                if let Some(idx) = live.aliases.get(key) {
                    for &i in idx {
                        let Some(a) = live.alias_list.get(i) else { continue };
                        // An alias of a POI resolves to the POI when one is live.
                        let poi = live.names.get(&normalize(&a.name)).and_then(|v| {
                            v.iter().find(|(slot, role)| {
                                *role == Role::PoiName && live.get(*slot).is_some_and(|r| self.record_live(r, opts))
                            })
                        });
                        if let Some(&(slot, _)) = poi {
                            out.push(Mention { start: s, end: e, target: Target::Rec(slot), w: 1.0, how: How::Alias });
                        } else if let Some(id) = a.code.as_deref().and_then(|c| self.resolve_code(c)) {
                            out.push(Mention { start: s, end: e, target: Target::Div(id), w: 1.0, how: How::Alias });
                        }
                    }
                }
                if let Some(v) = live.names.get(key) {
                    for &(slot, role) in v {
                        let Some(r) = live.get(slot) else { continue };
                        if !self.record_live(r, opts) {
                            continue;
                        }
                        let w = match role {
                            Role::RoadName | Role::PoiName => 1.0,
                            Role::RoadAlias | Role::PoiAlias => 0.9,
                            Role::AddressRoad => 0.9,
                        };
                        out.push(Mention { start: s, end: e, target: Target::Rec(slot), w, how: How::Record(role) });
                    }
                }
            }
        }
    }

    /// The division a target hangs under (itself for divisions, the admin code for records).
    fn anchor(&self, t: Target) -> Option<DivId> {
        match t {
            Target::Div(id) => Some(id),
            Target::Rec(slot) => self.live.get(slot).and_then(|r| self.resolve_code(r.admin_code())),
        }
    }

    /// Scores every mentioned place; best first.
    fn score(&self, q: &Query, mentions: &mut [Mention]) -> Vec<Scored> {
        mentions.sort_by(|a, b| a.target.cmp(&b.target).then(b.w.total_cmp(&a.w)));
        let strong: Vec<usize> = (0..mentions.len())
            .filter(|&k| {
                let x = &mentions[k];
                matches!(x.how, How::Exact(NameKind::Official | NameKind::Derived)) && x.w >= 0.85
            })
            .collect();
        let mut out: Vec<Scored> = Vec::new();
        let mut i = 0;
        while i < mentions.len() {
            let target = mentions[i].target;
            let mut j = i;
            while j < mentions.len() && mentions[j].target == target {
                j += 1;
            }
            // Try each distinct span of the candidate's own mentions; keep the best total.
            let mut best: Option<Scored> = None;
            for own in i..j {
                if (i..own).any(|k| mentions[k].start == mentions[own].start && mentions[k].end == mentions[own].end) {
                    continue;
                }
                let s = self.score_from(mentions, &strong, own);
                if best.as_ref().is_none_or(|b| s.score > b.score) {
                    best = Some(s);
                }
            }
            if let Some(b) = best {
                out.push(b);
            }
            i = j;
        }
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.target.cmp(&b.target)));
        // Levels a candidate only implies may still be written, misspelt, between its evidence
        // (吉林市树榆市大岭镇: 树榆市 is 榆树市): check the leading candidates for that.
        if let Some(top) = out.first().map(|b| b.score) {
            let mut changed = false;
            for s in out.iter_mut().take(32).take_while(|s| s.score >= top - 0.8) {
                let bonus = self.gap_bonus(q, mentions, s);
                if bonus > 0.0 {
                    s.score += bonus;
                    changed = true;
                }
            }
            if changed {
                out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.target.cmp(&b.target)));
            }
        }
        out
    }

    fn depth(&self, t: Target) -> usize {
        match t {
            Target::Div(id) => self.div(id).level as usize,
            Target::Rec(_) => 6,
        }
    }

    /// Evidence for the levels of a candidate's chain that no mention covers: the text between the
    /// levels above and below is compared with the level's name by the weighted edit distance.
    fn gap_bonus(&self, q: &Query, mentions: &[Mention], s: &Scored) -> f32 {
        let Some(anchor) = self.anchor(s.target) else { return 0.0 };
        let used: Vec<(usize, Mention)> =
            s.used.iter().map(|&k| (self.depth(mentions[k].target), mentions[k])).collect();
        let mut bonus = 0.0;
        let mut prev_name = String::new();
        for id in self.chain(anchor) {
            let d = self.div(id);
            let depth = d.level as usize;
            let skip =
                d.is_placeholder() || d.name == prev_name || used.iter().any(|(_, m)| m.target == Target::Div(id));
            prev_name.clone_from(&d.name);
            if skip {
                continue;
            }
            let from = used.iter().filter(|(dp, _)| *dp < depth).map(|(_, m)| m.end).max();
            let to = used.iter().filter(|(dp, _)| *dp > depth).map(|(_, m)| m.start).min();
            let (Some(a), Some(b)) = (from, to) else { continue };
            if b <= a || b - a > 12 {
                continue;
            }
            let gap = &q.chars[a..b];
            let name: Vec<char> = normalize(&d.name).chars().collect();
            let name_s: String = name.iter().collect();
            let base: Vec<char> = short_name(&name_s, d.level).unwrap_or(&name_s).chars().collect();
            // Against the full name (suffix included) one edit is allowed from three characters
            // on; against a two-character base only a homophone or a similar shape.
            let full_ok = name.len() >= 3 && weighted_osa(gap, &name) <= 1.0;
            let base_ok = weighted_osa(gap, &base) <= if base.len() >= 3 { 1.0 } else { 0.6 };
            if full_ok || base_ok {
                bonus += 0.6 * level_weight(d.level);
            }
        }
        bonus
    }

    fn score_from(&self, mentions: &[Mention], strong: &[usize], own: usize) -> Scored {
        let m = mentions[own];
        let mut used = Vec::with_capacity(6);
        used.push(own);
        let mut score = m.w;
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(6);
        spans.push((m.start, m.end));
        let mut deepest_start = m.start;
        let mut cur = match m.target {
            Target::Div(id) => self.parent(id),
            Target::Rec(_) => self.anchor(m.target),
        };
        while let Some(a) = cur {
            let lo = mentions.partition_point(|x| x.target < Target::Div(a));
            let pick = mentions[lo..]
                .iter()
                .enumerate()
                .take_while(|(_, x)| x.target == Target::Div(a))
                .find(|(_, x)| !spans.iter().any(|&(s, e)| x.overlaps(s, e)));
            if let Some((k, x)) = pick {
                let mut w = x.w;
                if x.start > deepest_start {
                    w *= 0.6;
                }
                score += w;
                used.push(lo + k);
                spans.push((x.start, x.end));
                deepest_start = deepest_start.min(x.start);
            }
            cur = self.parent(a);
        }
        // A place whose chain contradicts a division written out in full elsewhere in the text
        // (槐荫区 written, 钢城区 implied) loses half that division's weight.
        let chain_top = self.anchor(m.target);
        let conflict = strong
            .iter()
            .map(|&k| &mentions[k])
            .filter(|x| !spans.iter().any(|&(s, e)| x.overlaps(s, e)))
            .filter(|x| match (x.target, chain_top) {
                (Target::Div(d), Some(top)) => {
                    let dl = self.div(d).level;
                    dl <= self.div(top).level && self.at_level(top, dl).is_some_and(|mine| mine != d)
                }
                _ => false,
            })
            .map(|x| x.w)
            .fold(0.0f32, f32::max);
        score -= 0.5 * conflict;
        Scored { target: m.target, score, used }
    }

    /// "X附近的Y": when a proximity word stands between a place X and a POI name Y (a name or an
    /// alias such as a signature dish, shared by several shops), the Y nearest to X is meant.
    fn near_choice(&self, q: &Query, mentions: &[Mention], scored: &[Scored]) -> Option<Scored> {
        let (at, word) = NEAR.iter().filter_map(|w| q.text.find(w).map(|b| (b, *w))).min()?;
        let k = q.offsets.iter().position(|&o| o == at)?;
        let k_end = k + word.chars().count();
        let span = |s: &Scored| {
            let lo = s.used.iter().map(|&i| mentions[i].start).min().unwrap_or(0);
            let hi = s.used.iter().map(|&i| mentions[i].end).max().unwrap_or(0);
            (lo, hi)
        };
        let anchor = scored.iter().find(|s| span(s).1 <= k)?;
        let from = match anchor.target {
            Target::Rec(slot) => self.live.get(slot).map(Record::point),
            Target::Div(d) => self.point_of(d).map(|(p, _)| [p.lon, p.lat]),
        }?;
        let pick = scored
            .iter()
            .filter(|s| s.used.first().is_some_and(|&i| mentions[i].start >= k_end))
            .filter_map(|s| match s.target {
                Target::Rec(slot) => match self.live.get(slot) {
                    Some(Record::Poi(p)) => Some((crate::reverse::haversine(from, p.point), s)),
                    _ => None,
                },
                Target::Div(_) => None,
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))?
            .1;
        let mut used = pick.used.clone();
        let mut score = pick.score;
        for &i in &anchor.used {
            if !used.contains(&i) {
                used.push(i);
                score += mentions[i].w;
            }
        }
        Some(Scored { target: pick.target, score, used })
    }

    /// True when candidate `b` lies on `a`'s line (one contains the other).
    fn in_line(&self, a: Target, b: Target) -> bool {
        match (a, b) {
            (Target::Div(x), Target::Div(y)) => self.contains(x, y) || self.contains(y, x),
            (Target::Rec(x), Target::Rec(y)) => x == y,
            (Target::Div(x), Target::Rec(_)) | (Target::Rec(_), Target::Div(x)) => {
                let other = if let Target::Rec(_) = a { a } else { b };
                self.anchor(other).is_some_and(|y| self.contains(x, y))
            }
        }
    }

    /// A foreign country or city written before any evidence the answer uses (日本东京都新宿区,
    /// 韩国首尔江南区): the address is abroad even if a later name exists in China.
    fn foreign_before(&self, q: &Query, mentions: &[Mention], best: Option<&Scored>) -> Option<String> {
        let first = best.map_or(usize::MAX, |b| b.used.iter().map(|&k| mentions[k].start).min().unwrap_or(usize::MAX));
        let first_byte = q.offsets.get(first).copied().unwrap_or(q.text.len());
        // Without a Chinese province or city in the answer, a foreign name anywhere decides.
        let regional = best.is_some_and(|b| {
            b.used.iter().any(|&k| matches!(mentions[k].target, Target::Div(d) if self.div(d).level <= Level::City))
        });
        let mut hit: Option<(usize, usize)> = None;
        self.foreign.scan(&q.text, &q.offsets, |s, e, _| {
            let before = q.offsets[s] <= first_byte || !regional;
            if before && hit.is_none_or(|(hs, _)| s < hs) {
                hit = Some((s, e));
            }
        });
        hit.map(|(s, e)| q.span(s, e))
    }

    /// Why nothing matched: a word that reads like a place (jieba tags it `ns`, or it ends with an
    /// administrative suffix) means a place outside the reference data; otherwise nothing in the
    /// input is recognisable.
    fn no_component_reason(&self, q: &Query) -> Reason {
        if !q.chars.iter().any(|&c| text::is_han(c)) {
            return Reason::NoComponent;
        }
        let tags = self.jieba().tag(&q.text, true);
        let is_suffix = |c: char| matches!(c, '省' | '市' | '州' | '县' | '区' | '国' | '都' | '府' | '镇');
        for (i, t) in tags.iter().enumerate() {
            let n = t.word.chars().count();
            let admin_like = n >= 2 && t.word.chars().last().is_some_and(is_suffix);
            if t.tag == "ns" || admin_like {
                return Reason::OutsideArea { place: t.word.to_string() };
            }
            // 火星/市: a name followed by a lone administrative suffix.
            if let Some(next) = tags.get(i + 1)
                && n >= 2
                && t.word.chars().all(text::is_han)
                && next.word.chars().count() == 1
                && next.word.chars().all(is_suffix)
            {
                return Reason::OutsideArea { place: format!("{}{}", t.word, next.word) };
            }
        }
        Reason::NoComponent
    }

    fn target_name(&self, t: Target) -> String {
        match t {
            Target::Div(id) => self.div(id).name.clone(),
            Target::Rec(slot) => self.live.get(slot).map(record_name).unwrap_or_default(),
        }
    }

    fn answer(
        &self,
        q: &Query,
        mentions: &[Mention],
        scored: &[Scored],
        best: Scored,
        opts: &Options,
    ) -> GeocodeResult {
        // Ties off the best candidate's line.
        let tied: Vec<&Scored> =
            scored.iter().filter(|s| s.score >= best.score - TIE && !self.in_line(best.target, s.target)).collect();
        let runner_up =
            scored.iter().filter(|s| !self.in_line(best.target, s.target)).map(|s| s.score).next().unwrap_or(0.0);
        let mut target = best.target;
        let mut status = Status::Match;
        let mut reason = None;
        let mut candidates = Vec::new();
        if !tied.is_empty() {
            // Tied places inside one county still give the county (and its codes) for sure.
            let mut common = self.anchor(best.target);
            for t in &tied {
                common = match (common, self.anchor(t.target)) {
                    (Some(a), Some(b)) => self.common_ancestor(a, b),
                    _ => None,
                };
            }
            match common {
                Some(c) if self.div(c).level >= Level::County => target = Target::Div(c),
                _ => {
                    status = Status::Ambiguous;
                    reason = Some(Reason::Tie { count: tied.len() + 1 });
                    for s in std::iter::once(&best).chain(tied.iter().copied()).take(10) {
                        candidates.push(self.candidate(s.target, f64::from(s.score)));
                    }
                }
            }
        }
        // Evidence used by the answer, and where the unexplained rest of the text starts.
        let mut used: Vec<Mention> = best.used.iter().map(|&k| mentions[k]).collect();
        if target != best.target {
            // A tie settled on a common ancestor: only the evidence for it and above stands.
            used.retain(|m| match (m.target, self.anchor(target)) {
                (Target::Div(x), Some(t)) => self.contains(x, t),
                _ => false,
            });
        }
        let mut tail_start = used.iter().map(|m| m.end).max().unwrap_or(0);
        let mut fuzzy_used = false;
        if status == Status::Match
            && let Target::Div(id) = target
            && self.div(id).level < Level::Town
        {
            // Fuzzy-match the levels below the answer in the text after it.
            let mut cur = id;
            while self.div(cur).level < Level::Town {
                match self.fuzzy_child(q, cur, tail_start) {
                    Some((child, end)) => {
                        cur = child;
                        tail_start = end;
                        fuzzy_used = true;
                    }
                    None => break,
                }
            }
            target = Target::Div(cur);
        }
        if status == Status::Ambiguous {
            let mut r = GeocodeResult::nomatch(Reason::Tie { count: candidates.len() });
            r.status = Status::Ambiguous;
            r.reason = reason;
            r.candidates = candidates;
            r.components = self.components(q, &used, None);
            return r;
        }
        let mut anchor = self.anchor(target);
        if let Some(a) = anchor
            && !self.gaz.is_in_area(a)
        {
            return GeocodeResult::nomatch(Reason::OutsideArea { place: self.standard_admin(a) });
        }
        let tail = parse_tail(&q.chars[tail_start.min(q.chars.len())..]);
        let mut level = match target {
            Target::Div(id) => MatchLevel::of(self.div(id).level),
            Target::Rec(slot) => match self.live.get(slot) {
                Some(Record::Road(_)) | Some(Record::Address(_)) => MatchLevel::Road,
                _ => MatchLevel::Poi,
            },
        };
        let mut point = None;
        let mut road_name: Option<String> = None;
        let mut poi_name: Option<String> = None;
        let mut number: Option<String> = None;
        // A road (from a road record, or the road of address points) and a house number.
        let road_mention =
            used.iter().find(|m| matches!(m.how, How::Record(Role::RoadName | Role::RoadAlias | Role::AddressRoad)));
        if let Some(m) = road_mention
            && let Target::Rec(slot) = m.target
            && let Some(rec) = self.live.get(slot)
        {
            road_name = Some(match rec {
                Record::Road(r) => r.name.clone(),
                Record::Address(a) => a.road.clone(),
                Record::Poi(p) => p.name.clone(),
            });
            if let Record::Road(r) = rec {
                point = Some(Point {
                    lon: r.line[r.line.len() / 2][0],
                    lat: r.line[r.line.len() / 2][1],
                    source: PointSource::Road,
                });
            }
            let after = parse_tail(&q.chars[m.end..]);
            if let Some(num) = after.house_number.as_deref().or(after.leading_number.as_deref()) {
                let key = (normalize(road_name.as_deref().unwrap_or("")), normalize_number(num));
                // The address must lie in what the text names (洪山区), not necessarily in the
                // township the road record happens to be filed under.
                let written = used
                    .iter()
                    .filter_map(|m| match m.target {
                        Target::Div(d) => Some(d),
                        Target::Rec(_) => None,
                    })
                    .max_by_key(|&d| self.div(d).level);
                let area = written.or_else(|| self.anchor(target).and_then(|a| self.at_level(a, Level::County)));
                let hit = self.live.addresses.get(&key).and_then(|v| {
                    v.iter().filter_map(|&s| self.live.get(s)).find(|r| {
                        self.record_live(r, opts)
                            && match (area, self.resolve_code(r.admin_code())) {
                                (Some(a), Some(b)) => self.contains(a, b) || self.contains(b, a),
                                _ => true,
                            }
                    })
                });
                if let Some(Record::Address(a)) = hit {
                    level = MatchLevel::HouseNumber;
                    anchor = self.resolve_code(&a.admin_code).or(anchor);
                    point = Some(Point { lon: a.point[0], lat: a.point[1], source: PointSource::Address });
                    number = Some(a.number.clone());
                } else {
                    number = Some(normalize_number(num));
                }
            }
        }
        if let Target::Rec(slot) = target
            && let Some(Record::Poi(p)) = self.live.get(slot)
        {
            poi_name = Some(p.name.clone());
            point = Some(Point { lon: p.point[0], lat: p.point[1], source: PointSource::Poi });
        }
        // Precision: cut the answer back to what was asked for.
        match opts.precision {
            Precision::Area if level > MatchLevel::Village => {
                level = anchor.map_or(level, |a| MatchLevel::of(self.div(a).level));
                point = None;
                road_name = None;
                poi_name = None;
                number = None;
            }
            Precision::Road if level > MatchLevel::Road => {
                if road_name.is_some() {
                    level = MatchLevel::Road;
                } else {
                    level = anchor.map_or(level, |a| MatchLevel::of(self.div(a).level));
                    point = None;
                }
                poi_name = None;
                number = None;
            }
            _ => {}
        }
        if point.is_none()
            && let Some((p, l)) = anchor.and_then(|a| self.point_of(a))
        {
            point = Some(Point { lon: p.lon, lat: p.lat, source: PointSource::Centre(l) });
        }
        let mut standard = anchor.map(|a| self.standard_admin(a)).unwrap_or_default();
        if let Some(r) = &road_name {
            standard.push_str(r);
            if let Some(n) = &number {
                standard.push_str(n);
                standard.push('号');
            }
        }
        let keep_detail = opts.precision == Precision::Point;
        if keep_detail {
            for part in [&tail.building, &tail.unit, &tail.room].into_iter().flatten() {
                standard.push_str(part);
            }
        }
        if let Some(p) = &poi_name {
            standard.push_str(p);
        }
        let mut components = self.components(q, &used, Some(&tail));
        if road_name.is_some() {
            components.road = road_mention.map(|m| q.span(m.start, m.end));
            components.house_number = number.as_ref().map(|n| format!("{n}号"));
        }
        if let Some(p) = &poi_name {
            components.poi = Some(p.clone());
        }
        let score = self.confidence(mentions, &best, runner_up, fuzzy_used);
        let codes = anchor.map(|a| self.codes(a)).unwrap_or_default();
        GeocodeResult {
            status,
            reason,
            score,
            level: Some(level),
            codes,
            standard_address: standard,
            components,
            point,
            candidates,
        }
    }

    fn confidence(&self, mentions: &[Mention], best: &Scored, runner_up: f32, fuzzy: bool) -> f64 {
        let expected: f32 = match self.anchor(best.target) {
            Some(a) => self
                .chain(a)
                .iter()
                .filter(|&&id| !self.div(id).is_placeholder())
                .map(|&id| level_weight(self.div(id).level))
                .sum::<f32>()
                .max(1.0),
            None => 1.0,
        };
        // An alias names one place outright: it stands for the whole chain.
        let alias = best.used.first().is_some_and(|&k| matches!(mentions[k].how, How::Alias));
        let complete = if alias { 0.9 } else { (best.score / expected).min(1.0) };
        let margin = ((best.score - runner_up) / best.score).clamp(0.0, 1.0);
        let mut c = 0.3 + 0.45 * complete + 0.25 * margin;
        if fuzzy {
            c *= 0.9;
        }
        (f64::from(c) * 1000.0).round() / 1000.0
    }

    fn common_ancestor(&self, a: DivId, b: DivId) -> Option<DivId> {
        let ca = self.chain(a);
        let cb = self.chain(b);
        ca.iter().zip(&cb).take_while(|(x, y)| x == y).last().map(|(x, _)| *x)
    }

    /// The official names from the province down to `id`, as an address writes them: placeholder
    /// cities (市辖区) and a county named like its city (东莞市东莞市) are left out; villages take
    /// their address form (多福巷社区, not 多福巷社区居委会).
    pub(crate) fn standard_admin(&self, id: DivId) -> String {
        let mut out = String::new();
        let mut prev = "";
        for c in self.chain(id) {
            let d = self.div(c);
            if d.is_placeholder() || d.name == prev {
                continue;
            }
            match d.level {
                Level::Village => out.push_str(&text::village_display(&d.name).unwrap_or_else(|| d.name.clone())),
                _ => out.push_str(&d.name),
            }
            prev = &d.name;
        }
        out
    }

    pub(crate) fn codes(&self, id: DivId) -> Codes {
        let mut c = Codes::default();
        for x in self.chain(id) {
            let d = self.div(x);
            let code = Some(d.code_str());
            match d.level {
                Level::Province => c.province = code,
                Level::City => c.city = code,
                Level::County => c.county = code,
                Level::Town => c.town = code,
                Level::Village => c.village = code,
            }
        }
        c
    }

    fn candidate(&self, t: Target, score: f64) -> Candidate {
        let anchor = self.anchor(t);
        let level = match t {
            Target::Div(id) => MatchLevel::of(self.div(id).level),
            Target::Rec(slot) => match self.live.get(slot) {
                Some(Record::Poi(_)) => MatchLevel::Poi,
                _ => MatchLevel::Road,
            },
        };
        let mut standard = anchor.map(|a| self.standard_admin(a)).unwrap_or_default();
        let mut point = anchor.and_then(|a| self.point_of(a)).map(|(p, l)| Point {
            lon: p.lon,
            lat: p.lat,
            source: PointSource::Centre(l),
        });
        if let Target::Rec(slot) = t
            && let Some(r) = self.live.get(slot)
        {
            standard.push_str(&record_name(r));
            let p = r.point();
            let source = match r {
                Record::Poi(_) => PointSource::Poi,
                Record::Address(_) => PointSource::Address,
                Record::Road(_) => PointSource::Road,
            };
            point = Some(Point { lon: p[0], lat: p[1], source });
        }
        Candidate {
            score: (score * 1000.0).round() / 1000.0,
            level,
            codes: anchor.map(|a| self.codes(a)).unwrap_or_default(),
            standard_address: standard,
            point,
        }
    }

    fn components(&self, q: &Query, used: &[Mention], tail: Option<&Tail>) -> Components {
        let mut c = Components::default();
        for m in used {
            let Target::Div(id) = m.target else { continue };
            let s = Some(q.span(m.start, m.end));
            match self.div(id).level {
                Level::Province => c.province = s,
                Level::City => c.city = s,
                Level::County => c.county = s,
                Level::Town => c.town = s,
                Level::Village => c.village = s,
            }
        }
        if let Some(t) = tail {
            c.road = t.road.clone();
            c.house_number = t.house_number.clone();
            c.building = t.building.clone();
            c.unit = t.unit.clone();
            c.room = t.room.clone();
            c.poi = t.rest.clone();
        }
        c
    }

    /// Matches the text at `from` against the children of `parent` with a weighted edit distance:
    /// a typo, a dropped, inserted or swapped character, a homophone or a similar-shaped character
    /// in the name's base. Returns the child and where its match ends, when one child is clearly
    /// best.
    fn fuzzy_child(&self, q: &Query, parent: DivId, from: usize) -> Option<(DivId, usize)> {
        let chars = &q.chars;
        if from >= chars.len() {
            return None;
        }
        let mut best: Option<(f32, DivId, usize)> = None;
        let mut second = f32::MAX;
        let mut base_buf: Vec<char> = Vec::with_capacity(16);
        for child in self.children(parent) {
            let d = self.div(child);
            if d.is_placeholder() {
                // 市辖区: its counties are the real children.
                if let Some(r) = self.fuzzy_child(q, child, from) {
                    return Some(r);
                }
                continue;
            }
            let name = &normalize(&d.name);
            let base = short_name(name, d.level).unwrap_or(name);
            let suffix: Vec<char> = name[base.len()..].chars().collect();
            base_buf.clear();
            base_buf.extend(base.chars());
            let bl = base_buf.len();
            for skip in 0..=1usize {
                let s = from + skip;
                if s >= chars.len() {
                    break;
                }
                // The name written out in full (中关村大街) is not a misspelling of a part of it.
                let written_in_full = chars[s..].starts_with(&base_buf);
                for l in bl.saturating_sub(1).max(1)..=bl + 1 {
                    if s + l > chars.len() {
                        break;
                    }
                    if written_in_full && l != bl {
                        continue;
                    }
                    let text = &chars[s..s + l];
                    // Among equal edit costs, the name sharing more characters with the text wins
                    // (康武 is 武康, not 康乾).
                    let shared = text.iter().filter(|c| base_buf.contains(c)).count();
                    let unshared = 1.0 - shared as f32 / bl.max(l) as f32;
                    let cost = weighted_osa(text, &base_buf) + 0.2 * skip as f32 + 0.3 * unshared;
                    let suffix_ok = !suffix.is_empty() && chars[s + l..].starts_with(&suffix);
                    let limit = if suffix_ok || bl >= 3 { 1.3 } else { 0.8 };
                    if cost > limit || (!suffix_ok && starts_road_suffix(chars, s + l)) {
                        continue;
                    }
                    let end = if suffix_ok { s + l + suffix.len() } else { s + l };
                    // Prefer matches that also carry the suffix.
                    let cost = if suffix_ok { cost } else { cost + 0.3 };
                    match best {
                        Some((bc, bid, _)) if bid == child => {
                            if cost < bc {
                                best = Some((cost, child, end));
                            }
                        }
                        Some((bc, _, _)) if cost < bc => {
                            second = second.min(bc);
                            best = Some((cost, child, end));
                        }
                        Some(_) => second = second.min(cost),
                        None => best = Some((cost, child, end)),
                    }
                }
            }
        }
        let (cost, id, end) = best?;
        (second - cost >= 0.1).then_some((id, end))
    }
}

/// Halves the weight of mentions lying strictly inside a longer exact official name or alias of
/// another place: in "湖北钟祥胡集经济技术开发区" (one township's official name) 湖北, 钟祥 and 胡集
/// are not separate evidence, and in "西营城街道" 营城街道 is not.
fn discount_covered(mentions: &mut [Mention], n: usize) {
    let mut reach = vec![0usize; n + 1];
    for m in mentions.iter() {
        if matches!(m.how, How::Exact(_) | How::Alias | How::Record(_)) && m.w >= 0.6 {
            reach[m.start] = reach[m.start].max(m.end);
        }
    }
    // before[s]: the furthest end of a qualifying span starting before s.
    let mut before = vec![0usize; n + 1];
    for i in 1..=n {
        before[i] = before[i - 1].max(reach[i - 1]);
    }
    for m in mentions.iter_mut() {
        if before[m.start] >= m.end || reach[m.start] > m.end {
            m.w *= 0.5;
        }
    }
}

fn record_name(r: &Record) -> String {
    match r {
        Record::Road(x) => x.name.clone(),
        Record::Address(x) => format!("{}{}号", x.road, x.number),
        Record::Poi(x) => x.name.clone(),
    }
}

/// Optimal-string-alignment distance where a homophone costs 0.4 and a similar-shaped character
/// 0.5 instead of 1.
pub(crate) fn weighted_osa(a: &[char], b: &[char]) -> f32 {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return n.max(m) as f32;
    }
    let w = m + 1;
    let mut d = vec![0f32; (n + 1) * w];
    for i in 0..=n {
        d[i * w] = i as f32;
    }
    for (j, v) in d.iter_mut().enumerate().take(m + 1) {
        *v = j as f32;
    }
    for i in 1..=n {
        for j in 1..=m {
            let sub = substitution_cost(a[i - 1], b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1.0).min(d[i * w + j - 1] + 1.0).min(d[(i - 1) * w + j - 1] + sub);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1.0);
            }
            d[i * w + j] = v;
        }
    }
    d[n * w + m]
}

fn substitution_cost(a: char, b: char) -> f32 {
    if a == b {
        return 0.0;
    }
    let ra = phonetic::readings(a);
    let rb = phonetic::readings(b);
    if ra.as_slice().iter().any(|x| rb.as_slice().contains(x)) {
        return 0.4;
    }
    if text::similar_shape(a, b) {
        return 0.5;
    }
    1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    fn check_osa(a: &str, b: &str, expected: f32) {
        let got = weighted_osa(&c(a), &c(b));
        assert!((got - expected).abs() < 1e-6, "weighted_osa({a:?}, {b:?}) = {got}, expected {expected}");
    }

    #[test]
    fn weighted_edit_distance() {
        check_osa("柳巷", "柳巷", 0.0);
        check_osa("巷柳", "柳巷", 1.0);
        check_osa("红山", "洪山", 0.4);
        check_osa("路比", "路北", 0.5);
        check_osa("浯", "浯溪", 1.0);
        check_osa("", "洪山", 2.0);
        check_osa("洪山区", "", 3.0);
        check_osa("abc", "xyz", 3.0);
    }
}
