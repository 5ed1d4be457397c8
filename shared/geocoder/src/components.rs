//! The part of an address below the divisions: road, house number, building, unit, room, and
//! whatever names remain (a POI or a landmark).
//!
//! These parts follow fixed patterns in Chinese addresses (珞喻路1037号3栋2单元501室), so they are
//! read with small hand-written rules over characters; names are matched against the records
//! elsewhere.

use crate::text::{is_han, starts_road_suffix};

/// The parsed tail of an address. Parts keep their marker (`1037号`, `3栋`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tail {
    pub road: Option<String>,
    pub house_number: Option<String>,
    /// A bare number right at the start (`1037` in "珞喻路1037"), for house-number lookup.
    pub leading_number: Option<String>,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub room: Option<String>,
    /// Text left over (a POI name, a landmark), if any Chinese characters remain.
    pub rest: Option<String>,
}

fn road_suffix_len(chars: &[char], at: usize) -> usize {
    match (chars.get(at), chars.get(at + 1)) {
        (Some('大'), Some('道' | '街')) | (Some('胡'), Some('同')) => 2,
        _ => 1,
    }
}

fn is_num(c: char) -> bool {
    c.is_ascii_digit() || c == '-'
}

/// Parses the tail of an address (the text after the divisions).
pub fn parse_tail(chars: &[char]) -> Tail {
    let mut t = Tail::default();
    let mut rest: Vec<char> = Vec::new();
    let mut i = 0;
    // Road: the first road suffix with at least one character of name before it.
    if let Some(k) = (1..chars.len()).find(|&k| starts_road_suffix(chars, k) && chars[..k].iter().any(|&c| is_han(c))) {
        let end = k + road_suffix_len(chars, k);
        // 路 followed by more road text (北段, 东路) stays in the road name.
        let end = if chars.get(end).is_some_and(|&c| matches!(c, '东' | '西' | '南' | '北' | '中'))
            && chars.get(end + 1) == Some(&'段')
        {
            end + 2
        } else {
            end
        };
        t.road = Some(chars[..end].iter().collect());
        i = end;
        let n = chars[i..].iter().take_while(|&&c| c.is_ascii_digit()).count();
        if n > 0 && chars.get(i + n).is_none_or(|&c| c != '号' && c != '栋' && c != '幢' && c != '单' && c != '室')
        {
            t.leading_number = Some(chars[i..i + n].iter().collect());
        }
    }
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let n = chars[i..].iter().take_while(|&&c| is_num(c)).count();
            let num: String = chars[i..i + n].iter().collect();
            let j = i + n;
            let next = chars.get(j).copied();
            let next2 = chars.get(j + 1).copied();
            let (slot, marker_len) = match (next, next2) {
                (Some('号'), Some('楼')) => (&mut t.building, 2),
                (Some('号'), Some('房')) => (&mut t.room, 2),
                (Some('号'), _) if t.house_number.is_none() => (&mut t.house_number, 1),
                (Some('栋' | '幢' | '座'), _) => (&mut t.building, 1),
                (Some('单'), Some('元')) => (&mut t.unit, 2),
                (Some('室' | '房'), _) => (&mut t.room, 1),
                _ if t.house_number.is_some() && t.room.is_none() && j == chars.len() => (&mut t.room, 0),
                _ => {
                    rest.extend(&chars[i..j]);
                    i = j;
                    continue;
                }
            };
            let marker: String = chars[j..j + marker_len].iter().collect();
            *slot = Some(format!("{num}{marker}"));
            i = j + marker_len;
            continue;
        }
        rest.push(c);
        i += 1;
    }
    if rest.iter().any(|&c| is_han(c)) {
        t.rest = Some(rest.into_iter().collect());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        input: &str,
        road: Option<&str>,
        number: Option<&str>,
        building: Option<&str>,
        unit: Option<&str>,
        room: Option<&str>,
        rest: Option<&str>,
    ) {
        let c: Vec<char> = input.chars().collect();
        let t = parse_tail(&c);
        let got = (
            t.road.as_deref(),
            t.house_number.as_deref(),
            t.building.as_deref(),
            t.unit.as_deref(),
            t.room.as_deref(),
            t.rest.as_deref(),
        );
        assert_eq!(got, (road, number, building, unit, room, rest), "parse_tail({input:?})");
    }

    #[test]
    fn reads_road_number_building_unit_room() {
        check("珞喻路1037号", Some("珞喻路"), Some("1037号"), None, None, None, None);
        check(
            "建设大道18号3栋2单元501室",
            Some("建设大道"),
            Some("18号"),
            Some("3栋"),
            Some("2单元"),
            Some("501室"),
            None,
        );
        check("南锣鼓巷8号", Some("南锣鼓巷"), Some("8号"), None, None, None, None);
        check("东四十条胡同5号", Some("东四十条胡同"), Some("5号"), None, None, None, None);
        check("人民路12号5号楼", Some("人民路"), Some("12号"), Some("5号楼"), None, None, None);
        check("中山路北段20号", Some("中山路北段"), Some("20号"), None, None, None, None);
        check("华中科技大学", None, None, None, None, None, Some("华中科技大学"));
        check("解放路18号华润万家", Some("解放路"), Some("18号"), None, None, None, Some("华润万家"));
        check("人民路18号3-201", Some("人民路"), Some("18号"), None, None, Some("3-201"), None);
        check("", None, None, None, None, None, None);
    }

    #[test]
    fn bare_number_after_road() {
        let c: Vec<char> = "珞喻路1037".chars().collect();
        assert_eq!(parse_tail(&c).leading_number.as_deref(), Some("1037"));
    }
}
