//! Scoring candidates: each mentioned place sums its best non-overlapping mention and those of its
//! ancestors, levels only implied are checked against the text between the evidence, contradicted
//! chains lose weight, and "X附近的Y" picks the Y nearest to X.

use super::{How, Mention, Query, Scored, Target, level_weight, weighted_osa};
use crate::engine::Geocoder;
use crate::gazetteer::DivId;
use crate::records::Record;
use crate::text::{NameKind, normalize, short_name};

/// Words that put a second place near a first ("武大附近的热干面店").
const NEAR: &[&str] = &["附近", "旁边", "周边", "边上", "对面", "门口"];

impl Geocoder {
    /// The division a target hangs under (itself for divisions, the admin code for records).
    pub(super) fn anchor(&self, t: Target) -> Option<DivId> {
        match t {
            Target::Div(id) => Some(id),
            Target::Rec(slot) => self.live.get(slot).and_then(|r| self.resolve_code(r.admin_code())),
        }
    }

    /// Scores every mentioned place; best first.
    pub(super) fn score(&self, q: &Query, mentions: &mut [Mention]) -> Vec<Scored> {
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
    pub(super) fn near_choice(&self, q: &Query, mentions: &[Mention], scored: &[Scored]) -> Option<Scored> {
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
    pub(super) fn in_line(&self, a: Target, b: Target) -> bool {
        match (a, b) {
            (Target::Div(x), Target::Div(y)) => self.contains(x, y) || self.contains(y, x),
            (Target::Rec(x), Target::Rec(y)) => x == y,
            (Target::Div(x), Target::Rec(_)) | (Target::Rec(_), Target::Div(x)) => {
                let other = if let Target::Rec(_) = a { a } else { b };
                self.anchor(other).is_some_and(|y| self.contains(x, y))
            }
        }
    }
}
