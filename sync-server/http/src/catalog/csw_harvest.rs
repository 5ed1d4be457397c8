//! CSW 2.0.2 `Harvest` (OGC 07-006r1 §10.12): an administrator asks the catalogue to read
//! another service's metadata — a CSW, an OGC API – Records, or WMS/WMTS/WFS/OGC API
//! capabilities — and keep it. It is the same harvesting as `POST /harvests` (`harvest/`): the
//! source is added (or found again by its URL and type), run at once, and the answer waits for
//! the run, then reports what changed as a `csw:HarvestResponse` with its
//! `csw:TransactionSummary`. `HarvestInterval` (ISO 8601, `P1D`, `PT6H`) schedules later runs.
//! `ResponseHandler` (asynchronous harvests answered by mail or FTP) is refused: nothing here
//! can deliver to such an address, and the synchronous answer carries the same summary.

use axum::http::StatusCode;
use shikong_auth::Role;
use shikong_protocol::api::harvest::{HarvestType, NewHarvest};

use super::csw::{CswError, Node};
use crate::AppState;
use crate::access::Caller;
use crate::blocking;

/// Longest `HarvestInterval` text, characters.
const MAX_INTERVAL_CHARS: usize = 64;

/// A `Harvest` request, from KVP or XML.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct HarvestRequest {
    pub source: String,
    pub resource_type: String,
    pub interval: Option<String>,
    pub response_handler: Option<String>,
}

impl HarvestRequest {
    /// From a POSTed `csw:Harvest` element.
    pub(super) fn of_xml(root: &Node) -> HarvestRequest {
        let text = |name: &str| {
            root.children.iter().find(|c| c.name == name).map(|c| c.text.trim().to_owned()).filter(|t| !t.is_empty())
        };
        HarvestRequest {
            source: text("Source").unwrap_or_default(),
            resource_type: text("ResourceType").unwrap_or_default(),
            interval: text("HarvestInterval"),
            response_handler: text("ResponseHandler"),
        }
    }
}

/// The harvest type a `ResourceType` URI names (the namespaces of the 2.0.2 specification and
/// of pycsw's harvesting, and the OGC API conformance roots).
fn kind_of(resource_type: &str) -> Option<HarvestType> {
    let t = resource_type.trim().trim_end_matches('/').to_ascii_lowercase();
    Some(match t.as_str() {
        "http://www.opengis.net/cat/csw/2.0.2" | "http://www.opengis.net/cat/csw/3.0" | "csw" => HarvestType::Csw,
        "http://www.opengis.net/wms" | "wms" => HarvestType::Wms,
        "http://www.opengis.net/wmts/1.0" | "wmts" => HarvestType::Wmts,
        "http://www.opengis.net/wfs" | "http://www.opengis.net/wfs/2.0" | "wfs" => HarvestType::Wfs,
        "http://www.opengis.net/spec/ogcapi-records-1/1.0" | "ogcapi-records" => HarvestType::OgcApiRecords,
        "http://www.opengis.net/spec/ogcapi-features-1/1.0" | "ogcapi-features" => HarvestType::OgcApiFeatures,
        _ => return None,
    })
}

/// Minutes in an ISO 8601 duration (`P1D`, `PT30M`, `P1M` counted from now, Beijing time).
fn minutes_of(interval: &str) -> Result<u32, CswError> {
    let bad = |why: String| CswError::bad("HarvestInterval", why);
    if interval.chars().count() > MAX_INTERVAL_CHARS {
        return Err(bad(format!("longer than {MAX_INTERVAL_CHARS} characters")));
    }
    let span: jiff::Span =
        interval.trim().parse().map_err(|e| bad(format!("`{interval}` is not an ISO 8601 duration: {e}")))?;
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)));
    let minutes = span
        .total((jiff::Unit::Minute, &now))
        .map_err(|e| bad(format!("`{interval}` cannot be counted in minutes: {e}")))?;
    if !(1.0..=f64::from(u32::MAX)).contains(&minutes) {
        return Err(bad(format!("`{interval}` is shorter than a minute or too long")));
    }
    Ok(minutes.round() as u32)
}

/// Runs a `Harvest`: the `csw:HarvestResponse` document, or the exception to answer.
pub(super) async fn harvest(state: &AppState, caller: &Caller, h: HarvestRequest) -> Result<Vec<u8>, CswError> {
    caller.require_role(&[Role::Admin], "only administrators harvest other catalogues")?;
    let actor = caller.actor();
    if h.response_handler.is_some() {
        return Err(CswError::bad(
            "ResponseHandler",
            "asynchronous harvests are not offered: omit ResponseHandler and the answer waits for the harvest's summary",
        ));
    }
    if h.source.is_empty() {
        return Err(CswError::missing("Source"));
    }
    if h.resource_type.is_empty() {
        return Err(CswError::missing("ResourceType"));
    }
    let kind = kind_of(&h.resource_type).ok_or_else(|| {
        CswError::bad(
            "ResourceType",
            format!(
                "`{}` is not a resource type this catalogue harvests (http://www.opengis.net/cat/csw/2.0.2, http://www.opengis.net/wms, http://www.opengis.net/wmts/1.0, http://www.opengis.net/wfs, http://www.opengis.net/spec/ogcapi-records-1/1.0, http://www.opengis.net/spec/ogcapi-features-1/1.0)",
                h.resource_type
            ),
        )
    })?;
    let every_minutes = h.interval.as_deref().map(minutes_of).transpose()?;
    // The same source harvested again is run again, not added twice.
    let st = state.clone();
    let (url, kind_name) = (h.source.clone(), kind.as_str());
    let found =
        blocking(move || Ok(st.auth.harvest_sources()?.into_iter().find(|r| r.url == url && r.kind == kind_name)))
            .await?;
    let row = match found {
        Some(row) => row,
        None => {
            let title = reqwest::Url::parse(&h.source)
                .ok()
                .and_then(|u| u.host_str().map(|host| format!("{host} ({})", kind.as_str())))
                .unwrap_or_else(|| kind.as_str().to_owned());
            let new = NewHarvest { url: h.source.clone(), kind, title, every_minutes };
            crate::harvest::add_source(state, actor, new).await.map_err(|e| {
                // The source's checks name the body's field; here it is the request's parameter.
                let locator = match e.extra.get("field").and_then(|f| f.as_str()) {
                    Some("url") => "Source",
                    Some("every_minutes") => "HarvestInterval",
                    _ => "",
                };
                let mut c = CswError::from(e);
                if !locator.is_empty() {
                    c = CswError::bad(locator, c.text);
                }
                c
            })?
        }
    };
    let run = crate::harvest::run_and_wait(state, row).await?.ok_or_else(|| CswError {
        status: StatusCode::CONFLICT,
        code: "NoApplicableCode",
        locator: "Source".into(),
        text: "a harvest of this source is running; ask again when it has finished".into(),
    })?;
    if let Some(e) = run.error {
        return Err(CswError {
            status: StatusCode::BAD_GATEWAY,
            code: "NoApplicableCode",
            locator: "Source".into(),
            text: format!("the harvest stopped: {e} (records read before are kept)"),
        });
    }
    Ok(super::xml::harvest_response(run.added, run.updated, run.removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_types_and_intervals() {
        assert_eq!(kind_of("http://www.opengis.net/cat/csw/2.0.2"), Some(HarvestType::Csw));
        assert_eq!(kind_of("http://www.opengis.net/wms/"), Some(HarvestType::Wms));
        assert_eq!(kind_of("urn:x-esri:serviceType:ArcIMS"), None);
        assert_eq!(minutes_of("P1D").unwrap(), 1440);
        assert_eq!(minutes_of("PT6H").unwrap(), 360);
        assert_eq!(minutes_of("P1W").unwrap(), 7 * 1440);
        assert!(minutes_of("PT10S").is_err());
        assert!(minutes_of("tomorrow").is_err());
    }
}
