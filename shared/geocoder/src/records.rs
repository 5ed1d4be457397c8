//! Roads, address points, POIs and aliases: the records below the division hierarchy.
//!
//! They come from the store's layers and change while the division lists do not, so they are kept
//! apart from the static name index: each record carries the store's id and a valid-time interval,
//! and adding, replacing or removing one touches only its own entries (no rebuild). A new version of
//! an address is searchable at once; an as-of search selects the versions valid at that instant.

use serde::{Deserialize, Serialize};
use shikong_model::ValidTime;

use crate::error::{Error, Result};

/// A road (路, 街, 大道…) with its centre line in CGCS2000 longitude/latitude.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Road {
    /// The store's feature id; versions of one road share it. Records from the store are
    /// `layer/entity` ([`Record::layer`]).
    pub id: String,
    pub name: String,
    /// Other names of the road (old names, everyday names).
    pub aliases: Vec<String>,
    /// The deepest division code the road lies in (a county or a township, usually).
    pub admin_code: String,
    /// Vertices `[lon, lat]`, at least two.
    pub line: Vec<[f64; 2]>,
    #[serde(with = "valid_serde")]
    pub valid: ValidTime,
}

/// A standard address (门牌): road and house number with its point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressPoint {
    pub id: String,
    /// The deepest division code the address lies in (village or township, usually).
    pub admin_code: String,
    /// The road name as the address plate writes it (珞喻路).
    pub road: String,
    /// The house number without 号 (1037, 18-2).
    pub number: String,
    /// Building, unit or room part when the record is that fine (3栋2单元), else empty.
    pub detail: String,
    pub point: [f64; 2],
    #[serde(with = "valid_serde")]
    pub valid: ValidTime,
}

/// A point of interest: a named place (institution, shop, park) with its point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Poi {
    pub id: String,
    pub name: String,
    /// Other names: short names (华科), and what the place is known by (a shop's signature dish).
    pub aliases: Vec<String>,
    pub admin_code: String,
    pub point: [f64; 2],
    /// The address the POI gives, if any (shown beside the standard address).
    pub address: String,
    #[serde(with = "valid_serde")]
    pub valid: ValidTime,
}

/// An alias of a place or institution (华科 → 华中科技大学), user-editable. It resolves to the POI
/// named `name` when there is one, otherwise to the division `code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    pub alias: String,
    pub name: String,
    /// The deepest division code the aliased place lies in, if known (12-digit village codes too).
    pub code: Option<String>,
}

/// One record of any kind, as the store hands them over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    Road(Road),
    Address(AddressPoint),
    Poi(Poi),
}

impl Record {
    pub fn id(&self) -> &str {
        match self {
            Record::Road(r) => &r.id,
            Record::Address(a) => &a.id,
            Record::Poi(p) => &p.id,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Record::Road(_) => "road",
            Record::Address(_) => "address",
            Record::Poi(_) => "poi",
        }
    }

    pub fn admin_code(&self) -> &str {
        match self {
            Record::Road(r) => &r.admin_code,
            Record::Address(a) => &a.admin_code,
            Record::Poi(p) => &p.admin_code,
        }
    }

    /// The store layer the record comes from: the part of its id before the first `/`
    /// (`shikong-gazetteer` files every record as `layer/entity[/vN]`); `None` when the id names
    /// no layer. What read permissions are checked against ([`crate::Scope`]).
    pub fn layer(&self) -> Option<&str> {
        self.id().split_once('/').map(|(layer, _)| layer).filter(|l| !l.is_empty())
    }

    /// Whether the record holds at `as_of`, or now (open-ended) for `None`.
    pub fn valid_at(&self, as_of: Option<jiff::Timestamp>) -> bool {
        match as_of {
            Some(t) => self.valid().contains(t),
            None => self.valid().to.is_none(),
        }
    }

    pub fn valid(&self) -> &ValidTime {
        match self {
            Record::Road(r) => &r.valid,
            Record::Address(a) => &a.valid,
            Record::Poi(p) => &p.valid,
        }
    }

    /// A representative point: the address or POI point, the middle vertex of a road.
    pub fn point(&self) -> [f64; 2] {
        match self {
            Record::Road(r) => r.line[r.line.len() / 2],
            Record::Address(a) => a.point,
            Record::Poi(p) => p.point,
        }
    }

    /// Checks the fields a caller could get wrong; the error names the record.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |message: &str| Error::BadRecord { kind: self.kind(), id: self.id().to_string(), message: message.into() };
        if self.id().trim().is_empty() {
            return Err(bad("empty id"));
        }
        let check_point = |p: &[f64; 2]| -> Result<()> {
            if !(p[0].is_finite()
                && p[1].is_finite()
                && (-180.0..=180.0).contains(&p[0])
                && (-90.0..=90.0).contains(&p[1]))
            {
                return Err(bad(&format!("coordinate ({}, {}) is not a longitude/latitude", p[0], p[1])));
            }
            Ok(())
        };
        match self {
            Record::Road(r) => {
                if r.name.trim().is_empty() {
                    return Err(bad("empty road name"));
                }
                if r.line.len() < 2 {
                    return Err(bad(&format!("a road line needs at least 2 vertices, got {}", r.line.len())));
                }
                r.line.iter().try_for_each(check_point)
            }
            Record::Address(a) => {
                if a.road.trim().is_empty() || a.number.trim().is_empty() {
                    return Err(bad("an address needs a road name and a house number"));
                }
                check_point(&a.point)
            }
            Record::Poi(p) => {
                if p.name.trim().is_empty() {
                    return Err(bad("empty POI name"));
                }
                check_point(&p.point)
            }
        }
    }
}

/// Serialises a valid-time interval as two optional instants (the model type has no serde impl).
mod valid_serde {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use shikong_model::ValidTime;

    pub fn serialize<S: Serializer>(v: &ValidTime, s: S) -> Result<S::Ok, S::Error> {
        (v.from.map(|t| t.as_millisecond()), v.to.map(|t| t.as_millisecond())).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ValidTime, D::Error> {
        let (from, to) = <(Option<i64>, Option<i64>)>::deserialize(d)?;
        let ts = |ms: Option<i64>| -> Result<Option<Timestamp>, D::Error> {
            ms.map(|m| Timestamp::from_millisecond(m).map_err(serde::de::Error::custom)).transpose()
        };
        Ok(ValidTime { from: ts(from)?, to: ts(to)? })
    }
}
