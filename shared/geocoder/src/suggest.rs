//! Suggestions while typing: a prefix of a name, its pinyin or its pinyin initials ("hs" → 洪山区).
//!
//! Inspectors type on a tablet keyboard, often the first letters of each syllable. Division names
//! above village level are indexed by name, full pinyin and initials (built with the other indexes);
//! road and POI names by the same keys in an ordered map kept with the live records.

use serde::Serialize;

use crate::engine::Geocoder;
use crate::gazetteer::DivId;
use crate::geocode::{MatchLevel, Point, PointSource, Scope};
use crate::index::posting_id;
use crate::records::Record;
use crate::text::{Level, normalize};

/// One suggestion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    /// The name as shown (洪山区, 珞喻路).
    pub name: String,
    /// Its standard address (湖北省武汉市洪山区).
    pub standard_address: String,
    pub level: MatchLevel,
    /// The division code (for roads and POIs, the code of their division).
    pub code: Option<String>,
    pub point: Option<Point>,
}

/// Sort key of a suggestion: not an exact key, outside `within`, outside the device area, level,
/// name length, id.
type Rank = (bool, bool, bool, Level, usize, DivId);

impl Geocoder {
    /// Up to `limit` places whose name, full pinyin or pinyin initials start with `prefix`.
    /// Exact key matches come first, then places inside the device's area, then provinces before
    /// cities before counties before townships, then records.
    pub fn suggest(&self, prefix: &str, limit: usize) -> Vec<Suggestion> {
        self.suggest_within(prefix, limit, None)
    }

    /// Like [`suggest`](Self::suggest), ranking places inside the division `within` first (the
    /// district an inspector works in).
    pub fn suggest_within(&self, prefix: &str, limit: usize, within: Option<&str>) -> Vec<Suggestion> {
        self.suggest_scoped(prefix, limit, within, &Scope::All)
    }

    /// Like [`suggest_within`](Self::suggest_within), suggesting only records of the layers
    /// `scope` sees (hidden ones are skipped before the limit is counted).
    pub fn suggest_scoped(&self, prefix: &str, limit: usize, within: Option<&str>, scope: &Scope) -> Vec<Suggestion> {
        let key = normalize(prefix);
        if key.is_empty() || limit == 0 {
            return Vec::new();
        }
        let within = within.and_then(|c| self.resolve_code(c));
        let mut found: Vec<(Rank, DivId)> = Vec::new();
        self.suggest.prefixed(&key, 4096, |k, list| {
            let exact = k == key;
            for &p in list {
                let id = posting_id(p);
                let d = self.div(id);
                let inside = within.is_none_or(|w| self.contains(w, id));
                let rank = (!exact, !inside, !self.gaz.is_in_area(id), d.level, d.name.chars().count(), id);
                found.push((rank, id));
            }
        });
        found.sort_unstable();
        let mut seen_ids = std::collections::HashSet::new();
        found.retain(|(_, id)| seen_ids.insert(*id));
        let mut out: Vec<Suggestion> = Vec::new();
        for (_, id) in found.into_iter().take(limit) {
            let d = self.div(id);
            out.push(Suggestion {
                name: d.name.clone(),
                standard_address: self.standard_admin(id),
                level: match d.level {
                    Level::Province => MatchLevel::Province,
                    Level::City => MatchLevel::City,
                    Level::County => MatchLevel::County,
                    Level::Town => MatchLevel::Town,
                    Level::Village => MatchLevel::Village,
                },
                code: Some(d.code_str()),
                point: self.point_of(id).map(|(p, l)| Point { lon: p.lon, lat: p.lat, source: PointSource::Centre(l) }),
            });
        }
        if out.len() < limit {
            let mut seen = std::collections::HashSet::new();
            for (_, slots) in self.live.prefix.range(key.clone()..).take_while(|(k, _)| k.starts_with(&key)) {
                for &slot in slots {
                    if out.len() >= limit {
                        return out;
                    }
                    let Some(r) = self.live.get(slot) else { continue };
                    if r.valid().to.is_some() || !scope.sees(r) || !seen.insert(slot) {
                        continue;
                    }
                    let admin = self.resolve_code(r.admin_code());
                    let p = r.point();
                    let (name, level, source) = match r {
                        Record::Road(x) => (x.name.clone(), MatchLevel::Road, PointSource::Road),
                        Record::Address(x) => {
                            (format!("{}{}号", x.road, x.number), MatchLevel::HouseNumber, PointSource::Address)
                        }
                        Record::Poi(x) => (x.name.clone(), MatchLevel::Poi, PointSource::Poi),
                    };
                    out.push(Suggestion {
                        standard_address: admin.map(|a| self.standard_admin(a)).unwrap_or_default() + &name,
                        name,
                        level,
                        code: admin.map(|a| self.div(a).code_str()),
                        point: Some(Point { lon: p[0], lat: p[1], source }),
                    });
                }
            }
        }
        out
    }
}
