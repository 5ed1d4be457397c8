//! From the best candidate to a result: ties settled on a common ancestor or reported as
//! ambiguous, lower levels fuzzy-matched, road and house number looked up, the answer cut to the
//! precision asked for, and the standard address, codes, components and confidence.

use super::{
    Candidate, Codes, Components, GeocodeResult, How, MatchLevel, Mention, Options, Point, PointSource, Precision,
    Query, Reason, Scored, Status, TIE, Target, level_weight,
};
use crate::components::{Tail, parse_tail};
use crate::engine::{Geocoder, Role, normalize_number};
use crate::gazetteer::DivId;
use crate::records::Record;
use crate::text::{self, Level, normalize};

impl Geocoder {
    pub(super) fn target_name(&self, t: Target) -> String {
        match t {
            Target::Div(id) => self.div(id).name.clone(),
            Target::Rec(slot) => self.live.get(slot).map(record_name).unwrap_or_default(),
        }
    }

    pub(super) fn answer(
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
}

fn record_name(r: &Record) -> String {
    match r {
        Record::Road(x) => x.name.clone(),
        Record::Address(x) => format!("{}{}号", x.road, x.number),
        Record::Poi(x) => x.name.clone(),
    }
}
