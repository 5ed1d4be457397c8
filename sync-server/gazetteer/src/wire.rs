//! The geocoder's answers as the wire types of [`shikong_protocol::api`]: the engine's result
//! types may change with its matching; what clients read changes only with the protocol.

use shikong_geocoder as g;
use shikong_protocol::api;

fn division_level(l: g::Level) -> api::DivisionLevel {
    match l {
        g::Level::Province => api::DivisionLevel::Province,
        g::Level::City => api::DivisionLevel::City,
        g::Level::County => api::DivisionLevel::County,
        g::Level::Town => api::DivisionLevel::Town,
        g::Level::Village => api::DivisionLevel::Village,
    }
}

fn match_level(l: g::MatchLevel) -> api::MatchLevel {
    match l {
        g::MatchLevel::Province => api::MatchLevel::Province,
        g::MatchLevel::City => api::MatchLevel::City,
        g::MatchLevel::County => api::MatchLevel::County,
        g::MatchLevel::Town => api::MatchLevel::Town,
        g::MatchLevel::Village => api::MatchLevel::Village,
        g::MatchLevel::Road => api::MatchLevel::Road,
        g::MatchLevel::HouseNumber => api::MatchLevel::HouseNumber,
        g::MatchLevel::Poi => api::MatchLevel::Poi,
    }
}

fn codes(c: g::Codes) -> api::DivisionCodes {
    api::DivisionCodes { province: c.province, city: c.city, county: c.county, town: c.town, village: c.village }
}

fn point(p: g::Point) -> api::PlacePoint {
    let source = match p.source {
        g::PointSource::Centre(l) => api::PointSource::Centre(division_level(l)),
        g::PointSource::Road => api::PointSource::Road,
        g::PointSource::Address => api::PointSource::Address,
        g::PointSource::Poi => api::PointSource::Poi,
    };
    api::PlacePoint { lon: p.lon, lat: p.lat, source }
}

fn reason(r: g::Reason) -> api::NoMatchReason {
    match r {
        g::Reason::Empty => api::NoMatchReason::Empty,
        g::Reason::OutsideArea { place } => api::NoMatchReason::OutsideArea { place },
        g::Reason::NoComponent => api::NoMatchReason::NoComponent,
        g::Reason::TooWeak { best, score } => api::NoMatchReason::TooWeak { best, score },
        g::Reason::Tie { count } => api::NoMatchReason::Tie { count: count as u64 },
    }
}

pub fn geocode(r: g::GeocodeResult) -> api::GeocodeResponse {
    let c = r.components;
    api::GeocodeResponse {
        status: match r.status {
            g::Status::Match => api::GeocodeStatus::Match,
            g::Status::Ambiguous => api::GeocodeStatus::Ambiguous,
            g::Status::NoMatch => api::GeocodeStatus::NoMatch,
        },
        reason: r.reason.map(reason),
        score: r.score,
        level: r.level.map(match_level),
        codes: codes(r.codes),
        standard_address: r.standard_address,
        components: api::AddressComponents {
            province: c.province,
            city: c.city,
            county: c.county,
            town: c.town,
            village: c.village,
            road: c.road,
            house_number: c.house_number,
            building: c.building,
            unit: c.unit,
            room: c.room,
            poi: c.poi,
        },
        point: r.point.map(point),
        candidates: r
            .candidates
            .into_iter()
            .map(|c| api::GeocodeCandidate {
                score: c.score,
                level: match_level(c.level),
                codes: codes(c.codes),
                standard_address: c.standard_address,
                point: c.point.map(point),
            })
            .collect(),
    }
}

pub fn suggestion(s: g::Suggestion) -> api::Suggestion {
    api::Suggestion {
        name: s.name,
        standard_address: s.standard_address,
        level: match_level(s.level),
        code: s.code,
        point: s.point.map(point),
    }
}

pub fn reverse(r: g::ReverseResult) -> api::ReverseResponse {
    api::ReverseResponse {
        units: r
            .units
            .into_iter()
            .map(|u| api::ReverseUnit {
                level: division_level(u.level),
                code: u.code,
                name: u.name,
                basis: match u.basis {
                    g::UnitBasis::Polygon => api::UnitBasis::Polygon,
                    g::UnitBasis::Nearest => api::UnitBasis::Nearest,
                    g::UnitBasis::Record => api::UnitBasis::Record,
                    g::UnitBasis::Parent => api::UnitBasis::Parent,
                },
                centre_distance_m: u.centre_distance_m,
            })
            .collect(),
        codes: codes(r.codes),
        standard_address: r.standard_address,
        nearest_road: r.nearest_road.map(|n| api::NearRoad {
            id: n.id,
            name: n.name,
            distance_m: n.distance_m,
            lon: n.lon,
            lat: n.lat,
        }),
        nearest_address: r.nearest_address.map(|n| api::NearAddress {
            id: n.id,
            standard_address: n.standard_address,
            distance_m: n.distance_m,
            lon: n.lon,
            lat: n.lat,
        }),
    }
}

pub fn alias(a: g::Alias) -> api::AliasDoc {
    api::AliasDoc { alias: a.alias, name: a.name, code: a.code }
}
