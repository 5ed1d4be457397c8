//! Text normalisation and the name forms people actually write.
//!
//! Addresses arrive in every form: full-width digits, traditional characters (號, 縣), variant
//! characters (邨, 峯), spaces and punctuation, names without their suffixes ("武汉洪山"), and the
//! everyday short forms of autonomous units ("恩施州" for 恩施土家族苗族自治州). Both the gazetteer
//! names and the query pass through the same normalisation, so matching compares like with like;
//! the variant generation here decides which spellings of an official name are indexed.

/// Normalises a query or a name: full-width ASCII to ASCII, traditional to simplified characters,
/// variant characters to their standard form, whitespace and most punctuation removed, Latin
/// letters lower-cased. Digits, `-` and `#` stay because house and room numbers use them.
pub fn normalize(input: &str) -> String {
    let simplified = fast2s::convert(input);
    let mut out = String::with_capacity(simplified.len());
    for c in simplified.chars() {
        let c = match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        };
        let c = variant(c);
        if c.is_whitespace() || is_dropped_punct(c) {
            continue;
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// One character through [`normalize`]'s character mapping (traditional → simplified, variants).
pub fn norm_char(c: char) -> char {
    let mut buf = [0u8; 4];
    fast2s::convert(c.encode_utf8(&mut buf)).chars().next().map_or(c, variant)
}

fn is_dropped_punct(c: char) -> bool {
    matches!(
        c,
        ',' | '.'
            | ';'
            | ':'
            | '"'
            | '\''
            | '('
            | ')'
            | '['
            | ']'
            | '<'
            | '>'
            | '!'
            | '?'
            | '，'
            | '。'
            | '、'
            | '；'
            | '：'
            | '“'
            | '”'
            | '‘'
            | '’'
            | '（'
            | '）'
            | '【'
            | '】'
            | '《'
            | '》'
            | '·'
            | '…'
            | '～'
            | '~'
            | '|'
            | '/'
            | '\\'
            | '*'
            | '@'
            | '='
            | '+'
            | '_'
            | '{'
            | '}'
    )
}

/// Variant characters (异体字) that simplified-traditional conversion leaves alone but that mean the
/// same character in place names.
fn variant(c: char) -> char {
    match c {
        '邨' => '村',
        '峯' => '峰',
        '甯' => '宁',
        '裡' | '裏' => '里',
        '衞' => '卫',
        '羣' => '群',
        '堃' => '坤',
        '凈' => '净',
        '舘' => '馆',
        '菓' => '果',
        '綫' => '线',
        '隄' => '堤',
        '阯' => '址',
        '嶽' => '岳',
        '崐' => '昆',
        _ => c,
    }
}

/// The 55 ethnic minorities' names as they appear inside autonomous unit names, plus 各族 (隆林各族
/// 自治县). Longest first so that 蒙古族 is stripped before 古族 could be considered.
pub const ETHNIC: [&str; 57] = [
    "柯尔克孜族",
    "乌孜别克族",
    "维吾尔族",
    "哈萨克族",
    "达斡尔族",
    "塔吉克族",
    "俄罗斯族",
    "鄂温克族",
    "塔塔尔族",
    "鄂伦春族",
    "蒙古族",
    "布依族",
    "朝鲜族",
    "土家族",
    "哈尼族",
    "傈僳族",
    "高山族",
    "拉祜族",
    "东乡族",
    "纳西族",
    "景颇族",
    "仫佬族",
    "布朗族",
    "撒拉族",
    "毛南族",
    "仡佬族",
    "锡伯族",
    "阿昌族",
    "普米族",
    "德昂族",
    "保安族",
    "裕固族",
    "独龙族",
    "赫哲族",
    "门巴族",
    "珞巴族",
    "基诺族",
    "回族",
    "藏族",
    "苗族",
    "彝族",
    "壮族",
    "侗族",
    "瑶族",
    "白族",
    "傣族",
    "黎族",
    "佤族",
    "畲族",
    "水族",
    "土族",
    "羌族",
    "怒族",
    "京族",
    "满族",
    "各族",
    "汉族",
];

/// Administrative level of a division, from the NBS five-level hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 省级: province, autonomous region, municipality.
    Province = 1,
    /// 地级: prefecture-level city, prefecture, league, autonomous prefecture.
    City = 2,
    /// 县级: district, county, county-level city, banner.
    County = 3,
    /// 乡级: township, town, sub-district (街道).
    Town = 4,
    /// 村级: village committee, residents' committee (社区).
    Village = 5,
}

impl Level {
    pub const ALL: [Level; 5] = [Level::Province, Level::City, Level::County, Level::Town, Level::Village];

    pub fn index(self) -> usize {
        self as usize - 1
    }

    /// Digits of the level's own code form (2, 4, 6, 9, 12).
    pub fn digits(self) -> usize {
        match self {
            Level::Province => 2,
            Level::City => 4,
            Level::County => 6,
            Level::Town => 9,
            Level::Village => 12,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
            Level::Town => "town",
            Level::Village => "village",
        }
    }
}

fn suffixes(level: Level) -> &'static [&'static str] {
    match level {
        Level::Province => &["维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "省", "市"],
        Level::City => &["自治州", "地区", "盟", "市"],
        Level::County => &["自治县", "自治旗", "林区", "特区", "新区", "区", "县", "市", "旗"],
        Level::Town => &["街道办事处", "民族乡", "街道", "苏木", "镇", "乡"],
        Level::Village => {
            &["社区居民委员会", "社区居委会", "村民委员会", "居民委员会", "村委会", "居委会", "社区", "嘎查", "村"]
        }
    }
}

/// Strips ethnic names from the end of `base` (恩施土家族苗族 → 恩施), keeping at least two characters.
fn strip_ethnic(mut base: &str) -> &str {
    loop {
        let before = base;
        for e in ETHNIC {
            if let Some(rest) = base.strip_suffix(e)
                && rest.chars().count() >= 2
            {
                base = rest;
                break;
            }
        }
        if before == base {
            return base;
        }
    }
}

/// The base of a name without its level suffix and ethnic words (洪山区 → 洪山, 恩施土家族苗族自治州 →
/// 恩施), or `None` when nothing can be stripped or fewer than two characters would remain: a
/// one-character base ("赵" of 赵县) would match far too much text.
pub fn short_name(name: &str, level: Level) -> Option<&str> {
    // 唐山高新技术产业开发区 has no short form by suffix (its everyday forms are derived instead).
    const ZONES: [&str; 8] = ["开发区", "园区", "示范区", "管理区", "合作区", "试验区", "实验区", "工业区"];
    if ZONES.iter().any(|z| name.ends_with(z)) {
        return None;
    }
    for suf in suffixes(level) {
        if let Some(base) = name.strip_suffix(suf)
            && base.chars().count() >= 2
        {
            let base = strip_ethnic(base);
            return Some(base);
        }
    }
    None
}

/// How an indexed spelling relates to the official name; decides how much a match counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameKind {
    /// The official name as published (洪山区, 多福巷社区居委会).
    Official = 0,
    /// The form people write for a village committee (多福巷社区) or a synonym suffix (珞南街, 珞南街道办事处).
    Display = 1,
    /// An everyday short form of an autonomous unit or a development zone (恩施州, 长阳县, 高新区).
    Derived = 2,
    /// The name without its suffix (洪山).
    Short = 3,
}

impl NameKind {
    pub fn from_u8(v: u8) -> NameKind {
        match v {
            0 => NameKind::Official,
            1 => NameKind::Display,
            2 => NameKind::Derived,
            _ => NameKind::Short,
        }
    }

    /// How much a match on this spelling counts, relative to the official name.
    pub fn weight(self) -> f32 {
        match self {
            NameKind::Official => 1.0,
            NameKind::Display => 0.97,
            NameKind::Derived => 0.95,
            NameKind::Short => 0.85,
        }
    }
}

/// Every spelling of a division's name that is indexed, with its kind. The official name comes first.
pub fn name_variants(name: &str, level: Level) -> Vec<(String, NameKind)> {
    let name = normalize(name);
    let mut out: Vec<(String, NameKind)> = vec![(name.clone(), NameKind::Official)];
    let mut push = |s: String, k: NameKind| {
        if s.chars().count() >= 2 && !out.iter().any(|(o, _)| *o == s) {
            out.push((s, k));
        }
    };
    let short = short_name(&name, level);
    match level {
        Level::City => {
            if name.ends_with("自治州")
                && let Some(s) = short
            {
                push(format!("{s}州"), NameKind::Derived);
            }
        }
        Level::County => {
            for suf in ["自治县", "自治旗"] {
                if name.ends_with(suf)
                    && let Some(s) = short
                {
                    push(format!("{s}{}", &suf[suf.len() - 3..]), NameKind::Derived);
                }
            }
            for (long, abbr) in [
                ("高新技术产业开发区", "高新区"),
                ("高新技术产业园区", "高新区"),
                ("经济技术开发区", "经开区"),
                ("经济技术开发区", "经济开发区"),
            ] {
                if let Some(pre) = name.strip_suffix(long) {
                    push(format!("{pre}{abbr}"), NameKind::Derived);
                }
            }
        }
        Level::Town => {
            if let Some(s) = short {
                if name.ends_with("街道") {
                    push(format!("{s}街道办事处"), NameKind::Display);
                    push(format!("{s}街办"), NameKind::Display);
                    push(format!("{s}街"), NameKind::Display);
                }
                if name.ends_with("族乡") {
                    push(format!("{s}乡"), NameKind::Derived);
                }
            }
        }
        Level::Village => {
            if let Some(d) = village_display(&name) {
                push(d, NameKind::Display);
            }
        }
        Level::Province => {}
    }
    if let Some(s) = short {
        push(s.to_string(), NameKind::Short);
    }
    out
}

/// The form an address uses for a village committee: 多福巷社区居委会 → 多福巷社区, 张庄村民委员会 →
/// 张庄村, 复旦居委会 → 复旦社区. `None` when the name is already such a form.
pub fn village_display(name: &str) -> Option<String> {
    for (suf, rep) in [
        ("村民委员会", "村"),
        ("村委会", "村"),
        ("社区居民委员会", "社区"),
        ("社区居委会", "社区"),
        ("居民委员会", "社区"),
        ("居委会", "社区"),
    ] {
        if let Some(base) = name.strip_suffix(suf)
            && !base.is_empty()
        {
            if rep == "村" && base.ends_with('村') {
                return Some(base.to_string());
            }
            return Some(format!("{base}{rep}"));
        }
    }
    None
}

/// True when `chars[at..]` starts a road-name suffix: 路, 街, 道, 巷, 弄, 胡同, 大道, 大街, 里, 线.
pub fn starts_road_suffix(chars: &[char], at: usize) -> bool {
    match chars.get(at) {
        Some('路' | '巷' | '弄') => true,
        Some('街') => !matches!(chars.get(at + 1), Some('道')),
        Some('大') => matches!(chars.get(at + 1), Some('道' | '街')),
        Some('胡') => matches!(chars.get(at + 1), Some('同')),
        _ => false,
    }
}

/// Whether `c`, written right after a name, is a suffix of the name's level: `None` when `c` is no
/// administrative suffix at all, `Some(false)` when it belongs to other levels only. A short form
/// followed by another level's suffix is suspect ("洪山镇" is not 洪山区, "火星市" is not 火星街道).
pub fn suffix_fits(c: char, level: Level) -> Option<bool> {
    let levels: &[Level] = match c {
        '省' => &[Level::Province],
        '市' => &[Level::Province, Level::City, Level::County],
        '州' | '盟' => &[Level::City],
        '区' => &[Level::Province, Level::County],
        '县' | '旗' => &[Level::County],
        '镇' | '乡' => &[Level::Town],
        '村' => &[Level::Village],
        _ => return None,
    };
    Some(levels.contains(&level))
}

/// Pairs of characters often confused by shape (形近字: handwriting, OCR, stroke input). Fuzzy
/// matching charges a substitution between them half the usual cost.
const SIMILAR_SHAPE: &[(char, char)] = &[
    ('己', '已'),
    ('已', '巳'),
    ('未', '末'),
    ('土', '士'),
    ('日', '曰'),
    ('戊', '戌'),
    ('戌', '戍'),
    ('大', '太'),
    ('大', '犬'),
    ('王', '玉'),
    ('王', '主'),
    ('木', '本'),
    ('木', '术'),
    ('天', '夭'),
    ('人', '入'),
    ('八', '人'),
    ('干', '千'),
    ('干', '于'),
    ('刀', '力'),
    ('田', '由'),
    ('由', '甲'),
    ('甲', '申'),
    ('午', '牛'),
    ('失', '矢'),
    ('侯', '候'),
    ('崇', '祟'),
    ('汩', '汨'),
    ('梁', '粱'),
    ('间', '问'),
    ('析', '折'),
    ('冶', '治'),
    ('鸟', '乌'),
    ('今', '令'),
    ('竞', '竟'),
    ('壁', '璧'),
    ('渴', '喝'),
    ('徒', '徙'),
    ('晴', '睛'),
    ('清', '请'),
    ('坊', '防'),
    ('坊', '访'),
    ('浦', '捕'),
    ('埔', '铺'),
    ('汀', '订'),
    ('沟', '钩'),
    ('岭', '铃'),
    ('峰', '锋'),
    ('峰', '蜂'),
    ('湾', '弯'),
    ('洲', '州'),
    ('河', '何'),
    ('桥', '侨'),
    ('村', '材'),
    ('林', '材'),
    ('泉', '皋'),
    ('兴', '光'),
    ('东', '车'),
    ('西', '酉'),
    ('南', '商'),
    ('北', '比'),
    ('江', '红'),
    ('江', '汪'),
    ('山', '出'),
    ('石', '右'),
    ('口', '日'),
    ('白', '自'),
    ('白', '百'),
    ('水', '永'),
    ('水', '氷'),
    ('安', '按'),
    ('宁', '宇'),
    ('平', '苹'),
    ('平', '乎'),
    ('阳', '旧'),
    ('阳', '阴'),
    ('新', '亲'),
    ('城', '诚'),
    ('城', '域'),
    ('庄', '压'),
    ('庄', '床'),
    ('营', '菅'),
    ('营', '莹'),
    ('家', '豪'),
    ('头', '买'),
    ('里', '黑'),
    ('里', '星'),
    ('堡', '保'),
    ('屯', '吨'),
    ('沙', '抄'),
    ('沙', '纱'),
    ('坪', '评'),
    ('坪', '萍'),
    ('塘', '糖'),
    ('塘', '溏'),
    ('溪', '奚'),
    ('港', '巷'),
    ('湖', '糊'),
    ('湖', '瑚'),
    ('岗', '刚'),
    ('岗', '岚'),
    ('关', '送'),
    ('关', '美'),
    ('青', '责'),
    ('青', '晴'),
    ('龙', '尤'),
    ('凤', '风'),
    ('场', '扬'),
    ('场', '汤'),
    ('杨', '扬'),
    ('杨', '汤'),
    ('镇', '填'),
    ('乡', '多'),
    ('县', '具'),
    ('区', '匠'),
    ('市', '巿'),
    ('街', '衔'),
    ('道', '导'),
    ('路', '露'),
    ('园', '圆'),
    ('园', '远'),
    ('店', '庙'),
    ('铺', '捕'),
    ('寨', '赛'),
    ('寨', '塞'),
    ('坝', '贝'),
    ('泊', '拍'),
    ('滨', '宾'),
    ('辽', '了'),
    ('巴', '邑'),
    ('延', '廷'),
    ('盘', '般'),
    ('梅', '海'),
    ('海', '每'),
    ('陈', '阵'),
    ('张', '涨'),
    ('李', '季'),
    ('刘', '列'),
    ('赵', '越'),
    ('孙', '逊'),
    ('周', '调'),
    ('吴', '吕'),
    ('郑', '邓'),
    ('冯', '马'),
    ('金', '全'),
    ('玉', '主'),
    ('义', '叉'),
    ('又', '叉'),
    ('兵', '乒'),
    ('兵', '丘'),
    ('宫', '官'),
    ('管', '菅'),
    ('苑', '宛'),
    ('富', '福'),
    ('福', '幅'),
    ('旺', '汪'),
    ('旺', '往'),
    ('荣', '菜'),
    ('华', '毕'),
    ('胜', '性'),
    ('利', '和'),
];

/// True when `a` and `b` are a known similar-shape pair (either order).
pub fn similar_shape(a: char, b: char) -> bool {
    SIMILAR_SHAPE.iter().any(|&(x, y)| (x == a && y == b) || (x == b && y == a))
}

/// True for CJK unified ideographs (the characters place names are made of).
pub fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}' | '\u{20000}'..='\u{2A6DF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_norm(input: &str, expected: &str) {
        assert_eq!(normalize(input), expected, "normalize({input:?})");
    }

    #[test]
    fn normalizes_width_script_and_punctuation() {
        check_norm("湖北省 武汉市，洪山区", "湖北省武汉市洪山区");
        check_norm("珞喻路１０３７號", "珞喻路1037号");
        check_norm("四川省阿壩藏族羌族自治州若爾蓋縣", "四川省阿坝藏族羌族自治州若尔盖县");
        check_norm("Room 3-201", "room3-201");
        check_norm("新邨", "新村");
        check_norm("", "");
    }

    fn check_short(name: &str, level: Level, expected: Option<&str>) {
        assert_eq!(short_name(name, level), expected, "short_name({name:?}, {level:?})");
    }

    #[test]
    fn strips_suffixes_and_ethnic_words() {
        check_short("湖北省", Level::Province, Some("湖北"));
        check_short("广西壮族自治区", Level::Province, Some("广西"));
        check_short("新疆维吾尔自治区", Level::Province, Some("新疆"));
        check_short("内蒙古自治区", Level::Province, Some("内蒙古"));
        check_short("恩施土家族苗族自治州", Level::City, Some("恩施"));
        check_short("阿拉善盟", Level::City, Some("阿拉善"));
        check_short("洪山区", Level::County, Some("洪山"));
        check_short("长阳土家族自治县", Level::County, Some("长阳"));
        check_short("隆林各族自治县", Level::County, Some("隆林"));
        check_short("赵县", Level::County, None);
        check_short("珞南街道", Level::Town, Some("珞南"));
        check_short("于家务回族乡", Level::Town, Some("于家务"));
        check_short("张镇", Level::Town, None);
        check_short("北京市", Level::Province, Some("北京"));
    }

    #[test]
    fn variants_cover_everyday_forms() {
        let v = |n: &str, l: Level| name_variants(n, l).into_iter().map(|(s, _)| s).collect::<Vec<_>>();
        assert_eq!(v("恩施土家族苗族自治州", Level::City), ["恩施土家族苗族自治州", "恩施州", "恩施"]);
        assert_eq!(v("长阳土家族自治县", Level::County), ["长阳土家族自治县", "长阳县", "长阳"]);
        assert_eq!(v("珞南街道", Level::Town), ["珞南街道", "珞南街道办事处", "珞南街办", "珞南街", "珞南"]);
        assert_eq!(v("多福巷社区居委会", Level::Village), ["多福巷社区居委会", "多福巷社区", "多福巷"]);
        assert_eq!(v("张庄村民委员会", Level::Village), ["张庄村民委员会", "张庄村", "张庄"]);
        assert_eq!(v("唐山高新技术产业开发区", Level::County), ["唐山高新技术产业开发区", "唐山高新区"]);
    }

    #[test]
    fn road_suffixes() {
        let c: Vec<char> = "北京路中山大道胡同街道".chars().collect();
        assert!(starts_road_suffix(&c, 2));
        assert!(starts_road_suffix(&c, 5));
        assert!(!starts_road_suffix(&c, 0));
        assert!(!starts_road_suffix(&c, 9), "街道 is a township suffix, not a road");
    }
}
