//! Finding mentions: every indexed spelling in the query (official, display, derived and short
//! division names, homophones read by pinyin, aliases, live road/POI/address names), weighted by
//! their context.

use super::{How, Mention, Options, Query, Target, level_weight};
use crate::engine::{Geocoder, Role};
use crate::gazetteer::DivId;
use crate::index::{posting_id, posting_kind};
use crate::phonetic::{self, Readings};
use crate::records::Record;
use crate::text::{self, Level, NameKind, normalize, starts_road_suffix};

impl Geocoder {
    /// Every indexed spelling found in the query.
    pub(super) fn find_mentions(&self, q: &Query, opts: &Options) -> Vec<Mention> {
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

    /// Whether a record may answer this query: valid at the query's instant and of a layer the
    /// query's scope sees.
    pub(super) fn record_live(&self, r: &Record, opts: &Options) -> bool {
        opts.scope.sees(r) && r.valid_at(opts.as_of)
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
