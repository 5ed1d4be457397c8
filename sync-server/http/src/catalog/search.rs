//! Selecting and ranking catalog entries: free text (`q`, CSW's `AnyText`) with Chinese word
//! segmentation and pinyin, `bbox`, `datetime`, `type`, `externalIds`, CQL2 filters and CSW
//! constraints. Pure logic over [`Entry`] values: the Records and CSW routes call the same
//! [`Search::run`], so a text query gives the same hits through both.
//!
//! How text matches (why this way): a record's text is short (title, description, keywords,
//! field titles), so a word matches by substring — a query `井` finds 井盖, which indexing
//! segmented words would lose. The *query* is segmented with jieba (search mode), so a query
//! written without spaces (`道路井盖`) still finds a record holding 道路 and 井盖 apart. An ASCII
//! word also matches the pinyin of titles and keywords, whole (`jinggai`) or by initials (`jg`),
//! as people type Chinese names by sound. Relevance: title over keywords over description over
//! other text; exact title above partial.

use std::sync::{Arc, LazyLock, OnceLock};

use jieba_rs::Jieba;
use jiff::Timestamp;
use pinyin::ToPinyin;
use shikong_model::{Bbox, EntityId, Feature, FieldDef, FieldType, Geometry, LayerSchema, Value, time::ValidTime};
use shikong_query::{Filter, LikePattern};

use super::{Entry, Kind};
use crate::problem::{ApiError, ApiResult};

/// Most terms (`q=a,b,c`) and words per term a text query may hold.
pub const MAX_TERMS: usize = 32;
/// Most characters of a `q` (or an `AnyText` value).
pub const MAX_Q_CHARS: usize = 1_000;

static JIEBA: LazyLock<Jieba> = LazyLock::new(Jieba::new);

/// A free-text query: any of the terms (comma-separated in `q`); a term matches when all its
/// words do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TextQuery {
    pub terms: Vec<Vec<String>>,
    /// Each word's jieba segments (search mode), cut once per query rather than per record;
    /// empty for a word of fewer than two segments or without Chinese.
    segments: Vec<Vec<Vec<String>>>,
}

impl TextQuery {
    /// Parses `q` (`parameter` names it in errors).
    pub fn parse(q: &str, parameter: &str) -> ApiResult<TextQuery> {
        let n = q.chars().count();
        if n > MAX_Q_CHARS {
            return Err(ApiError::bad_parameter(parameter, format!("{n} characters; at most {MAX_Q_CHARS}"))
                .with("max", MAX_Q_CHARS));
        }
        let terms: Vec<Vec<String>> = q
            .split([',', '，'])
            .map(|t| t.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>())
            .filter(|t| !t.is_empty())
            .collect();
        let words: usize = terms.iter().map(Vec::len).sum();
        if words > MAX_TERMS {
            return Err(ApiError::bad_parameter(parameter, format!("{words} words; at most {MAX_TERMS}"))
                .with("max", MAX_TERMS));
        }
        let segments = terms.iter().map(|t| t.iter().map(|w| segments(w)).collect()).collect();
        Ok(TextQuery { terms, segments })
    }

    /// The relevance of `entry`, `None` when it does not match.
    fn score(&self, t: &Prepared) -> Option<f64> {
        let mut best: Option<f64> = None;
        for (term, segs) in self.terms.iter().zip(&self.segments) {
            let mut sum = 0.0;
            let mut all = true;
            for (w, seg) in term.iter().zip(segs) {
                match word_score(t, w, seg) {
                    Some(s) => sum += s,
                    None => {
                        all = false;
                        break;
                    }
                }
            }
            if all {
                // Every matching term adds: a record matching more of the terms ranks higher.
                best = Some(best.unwrap_or(0.0) + sum);
            }
        }
        best
    }
}

/// An entry's text prepared for matching, made at its first search and kept with the entry.
/// Sources keep their entries (behind `Arc`) until they change, so a catalog of 10k records is
/// lowered and read out in pinyin once, not at every query. Never part of equality.
#[derive(Debug, Clone, Default)]
pub struct TextCell(OnceLock<Prepared>);

impl PartialEq for TextCell {
    fn eq(&self, _: &TextCell) -> bool {
        true
    }
}

/// An entry's text, lowered, with pinyin readings: what words are matched against.
#[derive(Debug, Clone)]
struct Prepared {
    title: String,
    keywords: Vec<String>,
    description: String,
    /// Everything searchable (`AnyText`): title, description, keywords, ids, field names.
    any: String,
    /// Pinyin of the title and keywords, syllables run together (`jinggai`), and their initials
    /// (`jg`), one line per source string.
    pinyin: String,
    initials: String,
}

fn any_text(e: &Entry) -> String {
    let mut s = format!("{}\n{}\n{}\n{}\n", e.id, e.title, e.description, e.kind.as_str());
    for k in &e.keywords {
        s.push_str(k);
        s.push('\n');
    }
    for f in &e.fields {
        s.push_str(&f.name);
        s.push('\n');
        if let Some(t) = &f.title {
            s.push_str(t);
            s.push('\n');
        }
    }
    s
}

fn readings(s: &str, full: &mut String, initials: &mut String) {
    for c in s.chars() {
        match c.to_pinyin() {
            Some(p) => {
                full.push_str(p.plain());
                initials.push_str(p.first_letter());
            }
            None if c.is_alphanumeric() => {
                full.extend(c.to_lowercase());
                initials.extend(c.to_lowercase());
            }
            None => {}
        }
    }
    full.push('\n');
    initials.push('\n');
}

fn prepare(e: &Entry) -> &Prepared {
    e.text.0.get_or_init(|| {
        let (mut pinyin, mut initials) = (String::new(), String::new());
        readings(&e.title, &mut pinyin, &mut initials);
        for k in &e.keywords {
            readings(k, &mut pinyin, &mut initials);
        }
        Prepared {
            title: e.title.to_lowercase(),
            keywords: e.keywords.iter().map(|k| k.to_lowercase()).collect(),
            description: e.description.to_lowercase(),
            any: any_text(e).to_lowercase(),
            pinyin,
            initials,
        }
    })
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{9fff}' | '\u{f900}'..='\u{faff}' | '\u{20000}'..='\u{2ffff}')
}

/// A query word's segments, when it has Chinese and cuts into two or more.
fn segments(w: &str) -> Vec<String> {
    if !w.chars().any(is_cjk) {
        return Vec::new();
    }
    let segs: Vec<String> = JIEBA
        .cut_for_search(w, true)
        .into_iter()
        .map(|tok| tok.word.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if segs.len() < 2 { Vec::new() } else { segs }
}

/// How well one (lowered) word matches; `None` when it does not. `segs` are its segments
/// ([`segments`]).
fn word_score(t: &Prepared, w: &str, segs: &[String]) -> Option<f64> {
    if let Some(s) = plain_score(t, w) {
        return Some(s);
    }
    if w.chars().any(is_cjk) {
        // Segmented: every word of the query somewhere in the record.
        if segs.is_empty() {
            return None;
        }
        let mut sum = 0.0;
        for s in segs {
            sum += plain_score(t, s)?;
        }
        return Some(sum / segs.len() as f64 * 0.8);
    }
    if w.chars().count() >= 2 && w.chars().all(|c| c.is_ascii_alphanumeric()) {
        let title_line = |s: &str| s.lines().next().is_some_and(|l| l.contains(w));
        if title_line(&t.pinyin) {
            return Some(5.0);
        }
        if t.pinyin.contains(w) {
            return Some(3.0);
        }
        if title_line(&t.initials) {
            return Some(2.0);
        }
        if t.initials.contains(w) {
            return Some(1.0);
        }
    }
    None
}

fn plain_score(t: &Prepared, w: &str) -> Option<f64> {
    // `any` holds the title, keywords and description too: most records of a query miss, and
    // one search of it tells them apart.
    if !t.any.contains(w) {
        return None;
    }
    if t.title == w {
        Some(15.0)
    } else if t.title.contains(w) {
        Some(10.0)
    } else if t.keywords.iter().any(|k| k == w) {
        Some(6.0)
    } else if t.keywords.iter().any(|k| k.contains(w)) {
        Some(4.0)
    } else if t.description.contains(w) {
        Some(2.0)
    } else {
        Some(1.0)
    }
}

/// A property a CSW constraint names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prop {
    AnyText,
    Title,
    Abstract,
    Type,
    Identifier,
    Subject,
}

impl Prop {
    /// `csw:AnyText`, `dc:title`, `apiso:Title`, … (prefix and case ignored).
    pub fn parse(name: &str) -> Option<Prop> {
        let local = name.rsplit(':').next().unwrap_or(name).to_ascii_lowercase();
        Some(match local.as_str() {
            "anytext" | "csw_anytext" => Prop::AnyText,
            "title" => Prop::Title,
            "abstract" | "description" => Prop::Abstract,
            "type" => Prop::Type,
            "identifier" | "id" => Prop::Identifier,
            "subject" | "keywords" => Prop::Subject,
            _ => return None,
        })
    }
}

/// A CSW constraint (OGC Filter or CQL text), resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    And(Vec<Constraint>),
    Or(Vec<Constraint>),
    Not(Box<Constraint>),
    /// `LIKE` with `%` and `_` (already translated from the request's wildcard characters).
    Like(Prop, String),
    Equal(Prop, String),
    Bbox(Bbox),
    /// `AnyText LIKE '%word%'` resolved to the free-text query `q=word` ([`Constraint::resolve`]).
    Text(TextQuery),
}

impl Constraint {
    /// The constraint with every `AnyText LIKE '%word%'` (or `= word`) made the free-text query
    /// `q=word` — the same hits — segmented once here rather than at every record.
    pub fn resolve(self) -> Constraint {
        match self {
            Constraint::And(cs) => Constraint::And(cs.into_iter().map(Constraint::resolve).collect()),
            Constraint::Or(cs) => Constraint::Or(cs.into_iter().map(Constraint::resolve).collect()),
            Constraint::Not(c) => Constraint::Not(Box::new(c.resolve())),
            Constraint::Like(Prop::AnyText, p) | Constraint::Equal(Prop::AnyText, p)
                if !p.trim_matches('%').contains(['%', '_']) =>
            {
                let word = p.trim_matches('%');
                if word.is_empty() {
                    // Matches everything: an empty conjunction.
                    return Constraint::And(Vec::new());
                }
                match TextQuery::parse(word, "constraint") {
                    Ok(q) => Constraint::Text(q),
                    // Over the bounds: matches nothing (an empty disjunction), as before.
                    Err(_) => Constraint::Or(Vec::new()),
                }
            }
            c => c,
        }
    }

    fn matches(&self, e: &Entry, t: &Prepared) -> bool {
        match self {
            Constraint::And(cs) => cs.iter().all(|c| c.matches(e, t)),
            Constraint::Or(cs) => cs.iter().any(|c| c.matches(e, t)),
            Constraint::Not(c) => !c.matches(e, t),
            Constraint::Bbox(b) => e.bbox.is_some_and(|x| x.intersects(b)),
            Constraint::Text(q) => q.score(t).is_some(),
            Constraint::Like(Prop::AnyText, p) | Constraint::Equal(Prop::AnyText, p) => {
                // `AnyText LIKE '%word%'` is the free-text query `q=word`: the same hits.
                let word = p.trim_matches('%');
                if !word.contains(['%', '_']) {
                    return TextQuery::parse(word, "constraint").ok().and_then(|q| q.score(t)).is_some()
                        || word.is_empty();
                }
                like(p, &t.any)
            }
            Constraint::Like(prop, p) => values(e, *prop).iter().any(|v| like(p, v)),
            Constraint::Equal(prop, v) => values(e, *prop).iter().any(|x| x.eq_ignore_ascii_case(v)),
        }
    }
}

fn like(pattern: &str, value: &str) -> bool {
    LikePattern::new(&pattern.to_lowercase()).is_ok_and(|p| p.matches(&value.to_lowercase()))
}

fn values(e: &Entry, p: Prop) -> Vec<String> {
    match p {
        Prop::AnyText => vec![any_text(e)],
        Prop::Title => vec![e.title.clone()],
        Prop::Abstract => vec![e.description.clone()],
        Prop::Type => vec![e.kind.as_str().to_owned()],
        Prop::Identifier => vec![e.id.clone()],
        Prop::Subject => e.keywords.clone(),
    }
}

/// How matches are ordered.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Order {
    /// Best text match first (then id); id order without a text query.
    #[default]
    Relevance,
    /// `(key, descending)` pairs: `id`, `title`, `type`, `created`, `updated`.
    By(Vec<(SortKey, bool)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Id,
    Title,
    Type,
    Created,
    Updated,
}

impl Order {
    /// `sortby=-updated,+title` (Records / Features Part 8 style); CSW names are accepted too
    /// (`dc:title`, `dct:modified`).
    pub fn parse(s: &str, parameter: &str) -> ApiResult<Order> {
        let mut keys = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, desc) = match part.strip_prefix('-') {
                Some(n) => (n, true),
                None => match part.split_once(':').filter(|(_, d)| matches!(*d, "A" | "D")) {
                    Some((n, d)) => (n, d == "D"),
                    None => (part.strip_prefix('+').unwrap_or(part), false),
                },
            };
            let local = name.rsplit(':').next().unwrap_or(name).to_ascii_lowercase();
            let key = match local.as_str() {
                "id" | "identifier" => SortKey::Id,
                "title" => SortKey::Title,
                "type" => SortKey::Type,
                "created" => SortKey::Created,
                "updated" | "modified" => SortKey::Updated,
                _ => {
                    return Err(ApiError::bad_parameter(
                        parameter,
                        format!("cannot sort by `{name}`; sortable: id, title, type, created, updated"),
                    ));
                }
            };
            keys.push((key, desc));
        }
        if keys.len() > 5 {
            return Err(ApiError::bad_parameter(parameter, "at most 5 sort keys").with("max", 5));
        }
        Ok(if keys.is_empty() { Order::Relevance } else { Order::By(keys) })
    }
}

/// A catalog query.
#[derive(Debug, Default)]
pub struct Search {
    pub text: Option<TextQuery>,
    pub bbox: Option<Bbox>,
    /// `datetime`: an instant or an interval with open ends.
    pub datetime: Option<(Option<Timestamp>, Option<Timestamp>)>,
    pub types: Vec<Kind>,
    pub external_ids: Vec<String>,
    pub filter: Option<Filter>,
    pub constraint: Option<Constraint>,
    pub order: Order,
}

impl Search {
    /// How many entries match, and the page of them from `skip` (at most `take`), in order.
    /// Only the page's part of the order is sorted (a selection first), so a first page of 10
    /// among 10k matches costs a pass, not a sort.
    pub fn page(&self, entries: Vec<Arc<Entry>>, skip: usize, take: usize) -> (usize, Vec<Arc<Entry>>) {
        let mut found: Vec<(Arc<Entry>, f64)> =
            entries.into_iter().filter_map(|e| self.score(&e).map(|s| (e, s))).collect();
        let matched = found.len();
        let end = skip.saturating_add(take).min(matched);
        let order = |a: &(Arc<Entry>, f64), b: &(Arc<Entry>, f64)| self.compare(a, b);
        if end == 0 {
            return (matched, Vec::new());
        }
        if end < matched {
            found.select_nth_unstable_by(end - 1, order);
            found.truncate(end);
        }
        // Ids are unique, and every order ends on the id: unstable sorting is deterministic.
        found.sort_unstable_by(order);
        (matched, found.into_iter().skip(skip).map(|(e, _)| e).collect())
    }

    fn compare(&self, (a, x): &(Arc<Entry>, f64), (b, y): &(Arc<Entry>, f64)) -> std::cmp::Ordering {
        match &self.order {
            Order::Relevance => y.total_cmp(x).then_with(|| a.id.cmp(&b.id)),
            Order::By(keys) => {
                for (k, desc) in keys {
                    let o = match k {
                        SortKey::Id => a.id.cmp(&b.id),
                        SortKey::Title => a.title.cmp(&b.title),
                        SortKey::Type => a.kind.as_str().cmp(b.kind.as_str()),
                        SortKey::Created => a.created.cmp(&b.created),
                        SortKey::Updated => a.updated.cmp(&b.updated),
                    };
                    let o = if *desc { o.reverse() } else { o };
                    if o.is_ne() {
                        return o;
                    }
                }
                a.id.cmp(&b.id)
            }
        }
    }

    fn score(&self, e: &Entry) -> Option<f64> {
        if !self.types.is_empty() && !self.types.contains(&e.kind) {
            return None;
        }
        if !self.external_ids.is_empty() && !e.external_ids.iter().any(|(_, v)| self.external_ids.contains(v)) {
            return None;
        }
        if let Some(b) = &self.bbox
            && !e.bbox.is_some_and(|x| x.intersects(b))
        {
            return None;
        }
        if let Some((from, to)) = self.datetime {
            let (a, b) = e.time?;
            if from.is_some_and(|f| b < f) || to.is_some_and(|t| a > t) {
                return None;
            }
        }
        if self.filter.is_none() && self.constraint.is_none() && self.text.is_none() {
            return Some(0.0);
        }
        if let Some(f) = &self.filter
            && !f.matches(&as_feature(e), None)
        {
            return None;
        }
        let t = prepare(e);
        if let Some(c) = &self.constraint
            && !c.matches(e, t)
        {
            return None;
        }
        match &self.text {
            Some(q) => q.score(t),
            None => Some(0.0),
        }
    }
}

/// The properties a CQL2 `filter` on the catalog may use (`/collections/catalog/queryables`).
pub fn schema() -> &'static LayerSchema {
    static SCHEMA: LazyLock<LayerSchema> = LazyLock::new(|| {
        let field = |name: &str, title: &str, ty: FieldType| {
            let mut f = FieldDef::new(name, ty);
            f.id = name.to_owned();
            f.title = Some(title.to_owned());
            f
        };
        LayerSchema {
            fields: vec![
                field("id", "记录标识", FieldType::Text),
                field("type", "类型 (dataset, tileset, style, process, service)", FieldType::Text),
                field("title", "标题", FieldType::Text),
                field("description", "摘要", FieldType::Text),
                field("keywords", "关键词（空格分隔）", FieldType::Text),
                field("language", "语言", FieldType::Text),
                field("created", "创建时间", FieldType::DateTime),
                field("updated", "更新时间", FieldType::DateTime),
                field("featureCount", "要素数", FieldType::Integer),
            ],
        }
    });
    &SCHEMA
}

/// An entry as a feature of [`schema`], for CQL2 evaluation: geometry = its extent, valid time =
/// the time it covers.
fn as_feature(e: &Entry) -> Feature {
    let mut props = shikong_model::Properties::new();
    let text = |s: &str| Value::Text(s.to_owned());
    props.insert("id".into(), text(&e.id));
    props.insert("type".into(), text(e.kind.as_str()));
    props.insert("title".into(), text(&e.title));
    props.insert("description".into(), text(&e.description));
    props.insert("keywords".into(), text(&e.keywords.join(" ")));
    props.insert("language".into(), text("zh-CN"));
    props.insert("created".into(), e.created.map_or(Value::Null, Value::DateTime));
    props.insert("updated".into(), e.updated.map_or(Value::Null, Value::DateTime));
    props.insert("featureCount".into(), e.count.map_or(Value::Null, |n| Value::Integer(n as i64)));
    Feature {
        id: EntityId::from_uuid(uuid::Uuid::nil()),
        code: e.id.clone(),
        geometry: e.bbox.as_ref().map(Geometry::from_bbox),
        valid: ValidTime { from: e.time.map(|t| t.0), to: e.time.map(|t| t.1) },
        properties: props,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, title: &str, kw: &[&str]) -> Entry {
        Entry {
            id: id.into(),
            kind: Kind::Dataset,
            title: title.into(),
            description: String::new(),
            keywords: kw.iter().map(|s| (*s).to_owned()).collect(),
            themes: vec![],
            bbox: None,
            time: None,
            created: None,
            updated: None,
            count: None,
            fields: vec![],
            external_ids: vec![],
            links: vec![],
            text: TextCell::default(),
        }
    }

    fn hits(q: &str, entries: &[Entry]) -> Vec<String> {
        let s = Search { text: Some(TextQuery::parse(q, "q").unwrap()), ..Search::default() };
        let all = entries.iter().cloned().map(Arc::new).collect();
        s.page(all, 0, usize::MAX).1.into_iter().map(|e| e.id.clone()).collect()
    }

    #[test]
    fn chinese_segmented_pinyin_and_ranking() {
        let es = [entry("a", "井盖", &["manhole"]), entry("b", "道路", &["井盖巡查"]), entry("c", "门牌", &[])];
        assert_eq!(hits("井盖", &es), ["a", "b"]); // title before keyword
        assert_eq!(hits("道路井盖", &es), ["b"]); // segmented: 道路 + 井盖, apart in the record
        assert_eq!(hits("jinggai", &es), ["a", "b"]);
        assert_eq!(hits("jg", &es), ["a", "b"]);
        assert_eq!(hits("menpai", &es), ["c"]);
        assert_eq!(hits("井盖,门牌", &es), ["a", "c", "b"]); // either term; exact titles first
        assert!(hits("水库", &es).is_empty());
    }

    #[test]
    fn anytext_like_is_the_text_query() {
        let es = [entry("a", "井盖", &[]), entry("b", "道路", &[])];
        let t = prepare(&es[0]);
        assert!(Constraint::Like(Prop::AnyText, "%井盖%".into()).matches(&es[0], t));
        assert!(Constraint::Like(Prop::AnyText, "%井盖%".into()).resolve().matches(&es[0], t));
        assert!(!Constraint::Like(Prop::AnyText, "%道路%".into()).resolve().matches(&es[0], t));
        assert!(Constraint::Like(Prop::AnyText, "%%".into()).resolve().matches(&es[0], t));
        assert!(Constraint::Like(Prop::Title, "井%".into()).matches(&es[0], t));
        assert!(!Constraint::Like(Prop::Title, "%路".into()).matches(&es[0], t));
    }
}
