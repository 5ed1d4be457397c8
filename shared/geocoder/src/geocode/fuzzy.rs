//! Misspelt names: the weighted edit distance (homophones and similar shapes count as near-equal)
//! and matching the text after an answer against the answer's children.

use super::Query;
use crate::engine::Geocoder;
use crate::gazetteer::DivId;
use crate::phonetic;
use crate::text::{self, normalize, short_name, starts_road_suffix};

impl Geocoder {
    /// Matches the text at `from` against the children of `parent` with a weighted edit distance:
    /// a typo, a dropped, inserted or swapped character, a homophone or a similar-shaped character
    /// in the name's base. Returns the child and where its match ends, when one child is clearly
    /// best.
    pub(super) fn fuzzy_child(&self, q: &Query, parent: DivId, from: usize) -> Option<(DivId, usize)> {
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
