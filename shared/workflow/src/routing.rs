//! Dispatch routing (派遣规则): which department a case goes to, from its unit grid (单元网格),
//! street, community and class. Rules are data an admin edits; the most specific matching rule
//! wins, so a city can say "all 市容环境 events go to 城管局" and "in grid 420111001001, 绿化 goes
//! to the district's 园林所" without ordering tricks. Pure: the server finds the case's grid,
//! street and community by location and passes them in.

use serde::{Deserialize, Serialize};

/// Where a case is, as the unit grid layer says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// Unit grid code (单元网格编码).
    pub grid: Option<String>,
    /// Street (街道) code.
    pub street: Option<String>,
    /// Community (社区) code.
    pub community: Option<String>,
}

impl Place {
    /// The place of a 15-digit unit grid code (GB/T 30428.1: 6 digits of the county-level
    /// division, 3 of the street, 3 of the community, 3 of the grid in it): the street and the
    /// community are the code's 9- and 12-digit prefixes. `None` for any other shape; a city
    /// whose codes differ gives the street and community as fields instead.
    pub fn from_grid_code(code: &str) -> Option<Place> {
        let code = code.trim();
        if code.len() != 15 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // All ASCII digits: byte offsets are character offsets.
        Some(Place {
            grid: Some(code.to_owned()),
            street: Some(code[..9].to_owned()),
            community: Some(code[..12].to_owned()),
        })
    }
}

/// One routing rule: every condition given must match; absent conditions match anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// A class code or a prefix of one (`01` = a whole major class, `0101` one minor class).
    #[serde(default)]
    pub class: Option<String>,
    #[serde(default)]
    pub grid: Option<String>,
    #[serde(default)]
    pub street: Option<String>,
    #[serde(default)]
    pub community: Option<String>,
    /// The department the case is dispatched to.
    pub department: String,
}

/// Rules an admin maintains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    pub rules: Vec<RouteRule>,
}

impl RouteRule {
    /// How specific a matching rule is: place first (grid over community over street), then the
    /// length of the class prefix. `None` when it does not match.
    fn specificity(&self, class: &str, place: &Place) -> Option<(u8, usize)> {
        let same = |want: &Option<String>, have: &Option<String>| match want {
            None => true,
            Some(w) => have.as_deref() == Some(w.as_str()),
        };
        if !(same(&self.grid, &place.grid)
            && same(&self.street, &place.street)
            && same(&self.community, &place.community))
        {
            return None;
        }
        let class_len = match &self.class {
            None => 0,
            Some(prefix) if class.starts_with(prefix.as_str()) => prefix.chars().count(),
            Some(_) => return None,
        };
        let place_rank = if self.grid.is_some() {
            3
        } else if self.community.is_some() {
            2
        } else {
            u8::from(self.street.is_some())
        };
        Some((place_rank, class_len))
    }
}

impl Routing {
    /// The department for a case of `class` at `place`: the most specific matching rule's (the
    /// first one listed among equally specific ones); `None` when no rule matches (the office
    /// dispatches by hand).
    pub fn route(&self, class: &str, place: &Place) -> Option<&str> {
        let mut best: Option<((u8, usize), &RouteRule)> = None;
        for rule in &self.rules {
            if let Some(s) = rule.specificity(class, place)
                && best.is_none_or(|(b, _)| s > b)
            {
                best = Some((s, rule));
            }
        }
        best.map(|(_, r)| r.department.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(class: Option<&str>, grid: Option<&str>, street: Option<&str>, department: &str) -> RouteRule {
        RouteRule {
            class: class.map(Into::into),
            grid: grid.map(Into::into),
            street: street.map(Into::into),
            community: None,
            department: department.into(),
        }
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let routing = Routing {
            rules: vec![
                rule(None, None, None, "城管局"),
                rule(Some("04"), None, None, "园林局"),
                rule(Some("0401"), None, Some("420111001"), "洪山街园林所"),
                rule(None, Some("420111001001"), None, "网格站"),
                rule(Some("04"), Some("420111001001"), None, "网格园林组"),
            ],
        };
        let at =
            |grid: &str, street: &str| Place { grid: Some(grid.into()), street: Some(street.into()), community: None };
        assert_eq!(routing.route("0101", &at("420111002001", "420111002")), Some("城管局"));
        assert_eq!(routing.route("0402", &at("420111002001", "420111002")), Some("园林局"));
        assert_eq!(routing.route("0401", &at("420111001009", "420111001")), Some("洪山街园林所"));
        assert_eq!(routing.route("0101", &at("420111001001", "420111001")), Some("网格站"));
        assert_eq!(routing.route("0401", &at("420111001001", "420111001")), Some("网格园林组"));
        assert_eq!(Routing::default().route("0101", &Place::default()), None);
    }

    #[test]
    fn a_grid_code_gives_street_and_community() {
        let p = Place::from_grid_code("420111001002003").expect("15 digits");
        assert_eq!(p.street.as_deref(), Some("420111001"));
        assert_eq!(p.community.as_deref(), Some("420111001002"));
        assert_eq!(Place::from_grid_code("42011100100200"), None);
        assert_eq!(Place::from_grid_code("网格420111001002"), None);
    }

    #[test]
    fn rules_are_data() {
        let r: Routing =
            serde_json::from_str(r#"{"rules":[{"class":"01","department":"城管局"}]}"#).expect("valid rules");
        assert_eq!(r.route("0105", &Place::default()), Some("城管局"));
        assert!(serde_json::from_str::<Routing>(r#"{"rules":[{"klass":"01","department":"x"}]}"#).is_err());
    }
}
