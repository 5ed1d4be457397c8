//! Pinyin readings for homophone matching and pinyin-initial suggestions.
//!
//! People type place names by sound: an input method offers 红山 for hongshan as readily as 洪山.
//! The `pinyin` crate knows per-character readings only and reads some place names wrongly by
//! default (六安 is Lù'ān, not Liù'ān; 蚌埠 Bèngbù; 番禺 Pānyú), so a place-name override table
//! fixes the indexed reading of those names. Queries are read with every reading of each character
//! (heteronyms), so a substituted character matches whichever reading the name uses.

use pinyin::ToPinyinMulti;

/// Place names whose characters read differently from the characters' default readings.
const OVERRIDES: &[(&str, &[&str])] = &[
    ("六安", &["lu", "an"]),
    ("六合", &["lu", "he"]),
    ("蚌埠", &["beng", "bu"]),
    ("重庆", &["chong", "qing"]),
    ("番禺", &["pan", "yu"]),
    ("丽水", &["li", "shui"]),
    ("台州", &["tai", "zhou"]),
    ("天台", &["tian", "tai"]),
    ("东阿", &["dong", "e"]),
    ("尉氏", &["yu", "shi"]),
    ("尉犁", &["yu", "li"]),
    ("铅山", &["yan", "shan"]),
    ("乐亭", &["lao", "ting"]),
    ("乐清", &["yue", "qing"]),
    ("莘县", &["shen", "xian"]),
    ("大埔", &["da", "bu"]),
    ("洪洞", &["hong", "tong"]),
    ("涡阳", &["guo", "yang"]),
    ("亳州", &["bo", "zhou"]),
    ("黄陂", &["huang", "pi"]),
    ("监利", &["jian", "li"]),
    ("单县", &["shan", "xian"]),
    ("筠连", &["jun", "lian"]),
    ("犍为", &["qian", "wei"]),
    ("郫都", &["pi", "du"]),
    ("歙县", &["she", "xian"]),
    ("蔚县", &["yu", "xian"]),
    ("吐鲁番", &["tu", "lu", "fan"]),
    ("浚县", &["xun", "xian"]),
    ("厦门", &["xia", "men"]),
    ("茌平", &["chi", "ping"]),
    ("朝阳", &["chao", "yang"]),
    ("长沙", &["chang", "sha"]),
    ("长春", &["chang", "chun"]),
    ("长安", &["chang", "an"]),
    ("重庆", &["chong", "qing"]),
    ("华县", &["hua", "xian"]),
    ("华阴", &["hua", "yin"]),
    ("会昌", &["hui", "chang"]),
    ("解州", &["xie", "zhou"]),
    ("柏乡", &["bai", "xiang"]),
    ("曲阜", &["qu", "fu"]),
    ("济南", &["ji", "nan"]),
    ("济宁", &["ji", "ning"]),
    ("涪陵", &["fu", "ling"]),
    ("那曲", &["na", "qu"]),
    ("藁城", &["gao", "cheng"]),
    ("栎阳", &["yue", "yang"]),
    ("牟平", &["mu", "ping"]),
    ("鄱阳", &["po", "yang"]),
];

/// The toneless readings of a character, the default first, without repeats (hóng and hòng are one
/// reading here). Empty for characters the crate does not know (Latin letters, digits).
pub fn readings(c: char) -> Readings {
    let mut r = Readings { items: [""; 6], len: 0 };
    if let Some(multi) = c.to_pinyin_multi() {
        for p in multi {
            r.push(p.plain());
        }
    }
    r
}

/// Up to six toneless readings of one character, kept inline so reading a query allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct Readings {
    items: [&'static str; 6],
    len: usize,
}

impl Readings {
    fn push(&mut self, s: &'static str) {
        if self.len < self.items.len() && !self.items[..self.len].contains(&s) {
            self.items[self.len] = s;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[&'static str] {
        &self.items[..self.len]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The readings of each character of a place name that the index stores: the override reading for
/// characters of a known place name, otherwise the default reading and, for heteronyms, the second
/// reading too (the crate's default is sometimes not the one used in names). `None` when a
/// character has no pinyin (the name then has no pinyin key).
pub fn name_readings(name: &str) -> Option<Vec<Vec<&'static str>>> {
    let chars: Vec<char> = name.chars().collect();
    let mut fixed: Vec<Option<&'static str>> = vec![None; chars.len()];
    for (frag, syl) in OVERRIDES {
        let f: Vec<char> = frag.chars().collect();
        if f.len() > chars.len() {
            continue;
        }
        for start in 0..=chars.len() - f.len() {
            if chars[start..start + f.len()] == f[..] {
                for (k, s) in syl.iter().enumerate() {
                    fixed[start + k] = Some(s);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(chars.len());
    for (c, fix) in chars.iter().zip(fixed) {
        if let Some(s) = fix {
            out.push(vec![s]);
            continue;
        }
        let r = readings(*c);
        if r.is_empty() {
            return None;
        }
        out.push(r.as_slice().iter().take(2).copied().collect());
    }
    Some(out)
}

/// The main reading of a place name as syllables (overrides applied), e.g. 六安 → [lu, an].
pub fn main_reading(name: &str) -> Option<Vec<&'static str>> {
    name_readings(name).map(|r| r.into_iter().filter_map(|v| v.first().copied()).collect())
}

/// Pinyin initials of a place name (洪山区 → hsq), overrides applied; `None` without pinyin.
pub fn initials(name: &str) -> Option<String> {
    main_reading(name).map(|r| r.iter().filter_map(|s| s.chars().next()).collect())
}

/// The full toneless pinyin of a place name without separators (洪山 → hongshan).
pub fn full_pinyin(name: &str) -> Option<String> {
    main_reading(name).map(|r| r.concat())
}

/// Every index key of a name's reading: syllables joined by `'` with a trailing `'`, one key per
/// combination of the stored readings, at most `limit` keys (names with many heteronyms are rare).
pub fn reading_keys(name: &str, limit: usize) -> Vec<String> {
    let Some(r) = name_readings(name) else {
        return Vec::new();
    };
    let mut keys = vec![String::new()];
    for options in r {
        let mut next = Vec::with_capacity(keys.len() * options.len());
        for k in &keys {
            for o in &options {
                if next.len() < limit {
                    next.push(format!("{k}{o}'"));
                }
            }
        }
        keys = next;
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_fix_place_readings() {
        assert_eq!(main_reading("六安市").as_deref(), Some(&["lu", "an", "shi"][..]));
        assert_eq!(main_reading("蚌埠").as_deref(), Some(&["beng", "bu"][..]));
        assert_eq!(main_reading("番禺区").as_deref(), Some(&["pan", "yu", "qu"][..]));
        assert_eq!(main_reading("重庆市").as_deref(), Some(&["chong", "qing", "shi"][..]));
        assert_eq!(initials("洪山区").as_deref(), Some("hsq"));
        assert_eq!(full_pinyin("洪山").as_deref(), Some("hongshan"));
        assert_eq!(initials("abc"), None);
    }

    #[test]
    fn heteronyms_read_every_way() {
        assert!(readings('重').as_slice().contains(&"zhong"));
        assert!(readings('重').as_slice().contains(&"chong"));
        assert!(readings('a').is_empty());
        let keys = reading_keys("洪山", 8);
        assert_eq!(keys, ["hong'shan'"]);
    }
}
