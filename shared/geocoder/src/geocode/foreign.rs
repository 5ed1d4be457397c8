//! Places outside the reference area: foreign countries and cities written in Chinese, and the
//! reason given when nothing in the text is a known place.

use super::{Mention, Query, Reason, Scored, Target};
use crate::engine::Geocoder;
use crate::text::{self, Level};

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

impl Geocoder {
    /// A foreign country or city written before any evidence the answer uses (日本东京都新宿区,
    /// 韩国首尔江南区): the address is abroad even if a later name exists in China.
    pub(super) fn foreign_before(&self, q: &Query, mentions: &[Mention], best: Option<&Scored>) -> Option<String> {
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
    pub(super) fn no_component_reason(&self, q: &Query) -> Reason {
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
}
