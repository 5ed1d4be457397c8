//! CSW 2.0.2 at `/csw` (KVP on GET, XML on POST; `version=3.0.0` is answered the same way):
//! GetCapabilities, DescribeRecord, GetRecords (`resultType` hits/results, `startPosition`,
//! `maxRecords`, `ElementSetName` brief/summary/full, `outputSchema` `csw:Record` or ISO 19139
//! `gmd:MD_Metadata`, constraints as `CQL_TEXT` or OGC Filter 1.1) and GetRecordById — over the
//! same entries and search as the Records API, so the hits agree (OWSLib's
//! `CatalogueServiceWeb` reads it). Errors are OWS exception reports. Harvest is not offered.
//!
//! Hostile input is bounded: a POST body of at most [`MAX_XML_BYTES`], read into a tree of at
//! most [`MAX_ELEMENTS`] elements and [`MAX_DEPTH`] levels (checked while reading, before any
//! recursion), a CQL text of at most [`MAX_CQL_CHARS`].

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use quick_xml::events::Event;
use shikong_model::Bbox;

use super::csw_harvest::{self, HarvestRequest};
use super::entries;
use super::search::{Constraint, Order, Prop, Search};
use super::xml::{self, ElementSet, Schema};
use crate::access::Caller;
use crate::problem::ApiError;
use crate::{AppState, blocking};

/// Largest POST body read, bytes.
pub const MAX_XML_BYTES: usize = 1 << 20;
/// Most elements a POSTed request may hold.
pub const MAX_ELEMENTS: usize = 10_000;
/// Deepest nesting of a POSTed request.
pub const MAX_DEPTH: usize = 64;
/// Longest CQL text constraint, characters.
pub const MAX_CQL_CHARS: usize = 16 * 1024;
/// Highest `startPosition`.
const MAX_START: usize = 1_000_000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/csw", get(kvp).post(post))
}

/// A CSW failure: its OWS exception code, locator and HTTP status.
#[derive(Debug)]
pub(super) struct CswError {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) locator: String,
    pub(super) text: String,
}

impl CswError {
    pub(super) fn bad(locator: &str, text: impl Into<String>) -> Self {
        CswError {
            status: StatusCode::BAD_REQUEST,
            code: "InvalidParameterValue",
            locator: locator.into(),
            text: text.into(),
        }
    }
    pub(super) fn missing(locator: &str) -> Self {
        CswError {
            status: StatusCode::BAD_REQUEST,
            code: "MissingParameterValue",
            locator: locator.into(),
            text: format!("`{locator}` is required"),
        }
    }
}

impl From<ApiError> for CswError {
    fn from(e: ApiError) -> Self {
        let locator = e.extra.get("parameter").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let code = if e.status.is_client_error() { "InvalidParameterValue" } else { "NoApplicableCode" };
        CswError { status: e.status, code, locator, text: e.detail }
    }
}

impl IntoResponse for CswError {
    fn into_response(self) -> Response {
        let body = xml::exception(self.code, &self.locator, &self.text);
        (self.status, [(header::CONTENT_TYPE, "application/xml; charset=utf-8")], body).into_response()
    }
}

fn xml_ok(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/xml; charset=utf-8")], body).into_response()
}

/// One request, whichever encoding it came in.
#[derive(Debug, Default)]
struct Request {
    operation: String,
    start: usize,
    max: Option<usize>,
    hits_only: bool,
    schema: Option<Schema>,
    set: Option<ElementSet>,
    constraint: Option<Constraint>,
    order: Order,
    ids: Vec<String>,
    harvest: Option<HarvestRequest>,
}

fn schema_of(s: &str) -> Result<Schema, CswError> {
    match s.trim() {
        "http://www.opengis.net/cat/csw/2.0.2" | "http://www.opengis.net/cat/csw/3.0" | "csw:Record" => Ok(Schema::Csw),
        "http://www.isotc211.org/2005/gmd" | "gmd:MD_Metadata" => Ok(Schema::Iso),
        other => Err(CswError::bad(
            "outputSchema",
            format!("`{other}` is not a supported output schema ({}, {})", xml::CSW_NS, xml::GMD_NS),
        )),
    }
}

fn set_of(s: &str) -> Result<ElementSet, CswError> {
    ElementSet::parse(s.trim())
        .ok_or_else(|| CswError::bad("ElementSetName", format!("`{s}` is not brief, summary or full")))
}

fn number(name: &str, v: &str, min: usize, max: usize) -> Result<usize, CswError> {
    match v.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(CswError::bad(name, format!("`{v}` is not an integer between {min} and {max}"))),
    }
}

fn decode(s: &str) -> String {
    shikong_protocol::url::decode_form_value(s).unwrap_or_else(|_| s.to_owned())
}

async fn kvp(State(state): State<AppState>, caller: Caller, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let pairs: Vec<(String, String)> = q
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k).to_ascii_lowercase(), decode(v))
        })
        .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let parsed = (|| -> Result<Request, CswError> {
        match get("service") {
            Some(s) if s.eq_ignore_ascii_case("CSW") => {}
            Some(s) => return Err(CswError::bad("service", format!("`{s}` is not CSW"))),
            None if get("request").is_some_and(|r| r.eq_ignore_ascii_case("GetCapabilities")) => {
                return Err(CswError::missing("service"));
            }
            None => return Err(CswError::missing("service")),
        }
        let operation = get("request").ok_or_else(|| CswError::missing("request"))?.to_owned();
        if let Some(v) = get("version")
            && !matches!(v, "2.0.2" | "3.0.0")
        {
            return Err(CswError {
                status: StatusCode::BAD_REQUEST,
                code: "VersionNegotiationFailed",
                locator: "version".into(),
                text: format!("`{v}`: this server speaks 2.0.2 and 3.0.0"),
            });
        }
        let mut r = Request { operation, start: 1, ..Request::default() };
        if let Some(v) = get("startposition") {
            r.start = number("startPosition", v, 1, MAX_START)?;
        }
        if let Some(v) = get("maxrecords") {
            r.max = Some(number("maxRecords", v, 0, state.config.max_limit)?);
        }
        if let Some(v) = get("resulttype") {
            r.hits_only = match v.to_ascii_lowercase().as_str() {
                "hits" => true,
                "results" => false,
                _ => return Err(CswError::bad("resultType", format!("`{v}` is not hits or results"))),
            };
        }
        r.schema = get("outputschema").map(schema_of).transpose()?;
        r.set = get("elementsetname").map(set_of).transpose()?;
        if let Some(c) = get("constraint").filter(|c| !c.trim().is_empty()) {
            let lang = get("constraintlanguage").unwrap_or("CQL_TEXT");
            r.constraint = Some(if lang.eq_ignore_ascii_case("CQL_TEXT") {
                cql::parse(c)?
            } else if lang.eq_ignore_ascii_case("FILTER") {
                let tree = Tree::parse(c.as_bytes())?;
                filter_of(&tree, 0)?
            } else {
                return Err(CswError::bad("constraintLanguage", format!("`{lang}` is not CQL_TEXT or FILTER")));
            });
        }
        if let Some(s) = get("sortby") {
            r.order = Order::parse(s, "sortBy")?;
        }
        if r.operation.eq_ignore_ascii_case("Harvest") {
            r.harvest = Some(HarvestRequest {
                source: get("source").unwrap_or_default().trim().to_owned(),
                resource_type: get("resourcetype").unwrap_or_default().trim().to_owned(),
                interval: get("harvestinterval").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
                response_handler: get("responsehandler").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
            });
        }
        r.ids = get("id")
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        Ok(r)
    })();
    match parsed {
        Ok(r) => answer(state, caller, headers, r).await,
        Err(e) => e.into_response(),
    }
}

async fn post(State(state): State<AppState>, caller: Caller, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = (|| -> Result<Request, CswError> {
        if body.len() > MAX_XML_BYTES {
            return Err(CswError::bad("body", format!("{} bytes; at most {MAX_XML_BYTES}", body.len())));
        }
        let tree = Tree::parse(&body)?;
        request_of(&tree, state.config.max_limit)
    })();
    match parsed {
        Ok(r) => answer(state, caller, headers, r).await,
        Err(e) => e.into_response(),
    }
}

async fn answer(state: AppState, caller: Caller, headers: HeaderMap, r: Request) -> Response {
    let base = state.base_url(&headers);
    match r.operation.to_ascii_lowercase().as_str() {
        "getcapabilities" => xml_ok(xml::capabilities(&base)),
        "describerecord" => xml_ok(xml::describe_record()),
        "getrecords" => {
            let schema = r.schema.unwrap_or(Schema::Csw);
            let set = r.set.unwrap_or(ElementSet::Summary);
            let max = r.max.unwrap_or(10);
            let search =
                Search { constraint: r.constraint.map(Constraint::resolve), order: r.order, ..Search::default() };
            let start = r.start;
            let st = state.clone();
            let found = blocking(move || Ok(search.page(entries(&st, &caller, &base)?, start - 1, max))).await;
            match found {
                Ok((matched, page)) => xml_ok(xml::get_records(&page, matched, start, schema, set, r.hits_only)),
                Err(e) => CswError::from(e).into_response(),
            }
        }
        "getrecordbyid" => {
            if r.ids.is_empty() {
                return CswError::missing("Id").into_response();
            }
            let schema = r.schema.unwrap_or(Schema::Csw);
            let set = r.set.unwrap_or(ElementSet::Summary);
            let st = state.clone();
            let ids = r.ids;
            let found = blocking(move || {
                let all = entries(&st, &caller, &base)?;
                Ok(ids.iter().filter_map(|id| all.iter().find(|e| &e.id == id).cloned()).collect::<Vec<_>>())
            })
            .await;
            match found {
                // CSW 2.0.2 answers an empty response for unknown ids; 3.0 a 404 — an empty
                // response is what OWSLib reads either way.
                Ok(found) => xml_ok(xml::get_record_by_id(&found, schema, set)),
                Err(e) => CswError::from(e).into_response(),
            }
        }
        "harvest" => match csw_harvest::harvest(&state, &caller, r.harvest.unwrap_or_default()).await {
            Ok(body) => xml_ok(body),
            Err(e) => e.into_response(),
        },
        "transaction" => CswError {
            status: StatusCode::BAD_REQUEST,
            code: "OperationNotSupported",
            locator: "request".into(),
            text: format!("`{}` is not offered by this catalogue", r.operation),
        }
        .into_response(),
        _ => CswError::bad("request", format!("`{}` is not a CSW operation", r.operation)).into_response(),
    }
}

// ---- XML requests ------------------------------------------------------------------------------

/// A parsed XML element: local name, attributes (local names), text and children.
#[derive(Debug, Default)]
pub(super) struct Node {
    pub(super) name: String,
    attrs: Vec<(String, String)>,
    pub(super) text: String,
    pub(super) children: Vec<Node>,
}

impl Node {
    pub(super) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
}

pub(super) struct Tree;

impl Tree {
    /// Reads a document into nodes, bounded in elements and depth (no recursion while reading).
    pub(super) fn parse(bytes: &[u8]) -> Result<Node, CswError> {
        let bad = |m: String| CswError::bad("body", m);
        let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
        let v10 = quick_xml::XmlVersion::Implicit1_0;
        let mut reader = quick_xml::Reader::from_str(text);
        reader.config_mut().trim_text(true);
        let mut stack: Vec<Node> = vec![Node::default()];
        let mut count = 0usize;
        let local = |s: &str| s.rsplit(':').next().unwrap_or(s).to_owned();
        let node_of = |e: &quick_xml::events::BytesStart<'_>| -> Result<Node, CswError> {
            let mut attrs = Vec::new();
            for a in e.attributes() {
                let a = a.map_err(|e| bad(format!("not well-formed XML: {e}")))?;
                let v = a.normalized_value(v10).map_err(|e| bad(format!("not well-formed XML: {e}")))?;
                attrs.push((local(a.key.0), v.into_owned()));
            }
            Ok(Node { name: local(e.name().0), attrs, ..Node::default() })
        };
        loop {
            match reader.read_event().map_err(|e| bad(format!("not well-formed XML: {e}")))? {
                Event::Start(e) => {
                    count += 1;
                    if count > MAX_ELEMENTS || stack.len() > MAX_DEPTH {
                        return Err(bad(format!("more than {MAX_ELEMENTS} elements or {MAX_DEPTH} levels")));
                    }
                    stack.push(node_of(&e)?);
                }
                Event::Empty(e) => {
                    count += 1;
                    if count > MAX_ELEMENTS {
                        return Err(bad(format!("more than {MAX_ELEMENTS} elements")));
                    }
                    let n = node_of(&e)?;
                    if let Some(top) = stack.last_mut() {
                        top.children.push(n);
                    }
                }
                Event::End(_) => {
                    let n = stack.pop().ok_or_else(|| bad("unbalanced XML".into()))?;
                    match stack.last_mut() {
                        Some(top) => top.children.push(n),
                        None => return Err(bad("unbalanced XML".into())),
                    }
                }
                Event::Text(t) => {
                    let t = t.xml_content(v10);
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&t);
                    }
                }
                Event::GeneralRef(r) => {
                    let name = r.into_inner().into_owned();
                    let c = match name.as_str() {
                        "lt" => "<".to_owned(),
                        "gt" => ">".to_owned(),
                        "amp" => "&".to_owned(),
                        "quot" => "\"".to_owned(),
                        "apos" => "'".to_owned(),
                        n => match n
                            .strip_prefix("#x")
                            .map(|h| u32::from_str_radix(h, 16))
                            .or_else(|| n.strip_prefix('#').map(str::parse::<u32>))
                        {
                            Some(Ok(c)) => char::from_u32(c).map(String::from).unwrap_or_default(),
                            _ => return Err(bad(format!("unknown entity `&{n};`"))),
                        },
                    };
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&c);
                    }
                }
                Event::CData(t) => {
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&t.xml_content(v10));
                    }
                }
                Event::DocType(_) => return Err(bad("document type declarations are not accepted".into())),
                Event::Eof => break,
                _ => {}
            }
        }
        let mut root = stack.pop().ok_or_else(|| bad("empty document".into()))?;
        if !stack.is_empty() || root.children.len() != 1 {
            return Err(bad("not one root element".into()));
        }
        Ok(root.children.remove(0))
    }
}

fn request_of(root: &Node, max_limit: usize) -> Result<Request, CswError> {
    let mut r = Request { operation: root.name.clone(), start: 1, ..Request::default() };
    if root.name == "Harvest" {
        r.harvest = Some(HarvestRequest::of_xml(root));
        return Ok(r);
    }
    if let Some(v) = root.attr("startPosition") {
        r.start = number("startPosition", v, 1, MAX_START)?;
    }
    if let Some(v) = root.attr("maxRecords") {
        r.max = Some(number("maxRecords", v, 0, max_limit)?);
    }
    if let Some(v) = root.attr("resultType") {
        r.hits_only = match v.to_ascii_lowercase().as_str() {
            "hits" => true,
            "results" => false,
            _ => return Err(CswError::bad("resultType", format!("`{v}` is not hits or results"))),
        };
    }
    r.schema = root.attr("outputSchema").map(schema_of).transpose()?;
    if let Some(s) = root.child("ElementSetName") {
        r.set = Some(set_of(&s.text)?);
    }
    r.ids = root.children.iter().filter(|c| c.name == "Id").map(|c| c.text.trim().to_owned()).collect();
    if let Some(q) = root.child("Query") {
        if let Some(s) = q.child("ElementSetName") {
            r.set = Some(set_of(&s.text)?);
        }
        if let Some(c) = q.child("Constraint") {
            if let Some(t) = c.child("CqlText") {
                r.constraint = Some(cql::parse(&t.text)?);
            } else if let Some(f) = c.child("Filter") {
                r.constraint = Some(filter_of(f, 0)?);
            }
        }
        if let Some(s) = q.child("SortBy") {
            let keys: Vec<String> = s
                .children
                .iter()
                .filter_map(|p| {
                    let name = p.child("PropertyName")?.text.trim().to_owned();
                    let desc = p.child("SortOrder").is_some_and(|o| o.text.trim().eq_ignore_ascii_case("DESC"));
                    Some(if desc { format!("-{name}") } else { name })
                })
                .collect();
            r.order = Order::parse(&keys.join(","), "SortBy")?;
        }
    }
    Ok(r)
}

/// An OGC Filter 1.1 (`ogc:Filter` or one of its operators) as a constraint.
fn filter_of(n: &Node, depth: usize) -> Result<Constraint, CswError> {
    if depth > MAX_DEPTH {
        return Err(CswError::bad("Constraint", "nested too deeply"));
    }
    let kids = |n: &Node| n.children.iter().map(|c| filter_of(c, depth + 1)).collect::<Result<Vec<_>, _>>();
    let prop = |n: &Node| -> Result<Prop, CswError> {
        let name = n.child("PropertyName").map(|p| p.text.trim()).unwrap_or("");
        Prop::parse(name).ok_or_else(|| CswError::bad("PropertyName", format!("`{name}` is not a queryable (csw:AnyText, dc:title, dc:type, dc:identifier, dc:subject, dct:abstract)")))
    };
    let literal = |n: &Node| n.child("Literal").map(|l| l.text.clone()).unwrap_or_default();
    Ok(match n.name.as_str() {
        "Filter" => {
            let mut all = kids(n)?;
            match all.len() {
                1 => all.remove(0),
                _ => Constraint::And(all),
            }
        }
        "And" => Constraint::And(kids(n)?),
        "Or" => Constraint::Or(kids(n)?),
        "Not" => Constraint::Not(Box::new(Constraint::And(kids(n)?))),
        "PropertyIsEqualTo" => Constraint::Equal(prop(n)?, literal(n)),
        "PropertyIsLike" => {
            let wild = n.attr("wildCard").unwrap_or("*");
            let single = n.attr("singleChar").unwrap_or("?");
            let escape = n.attr("escapeChar").or(n.attr("escape")).unwrap_or("\\");
            let mut pattern = String::new();
            let mut chars = literal(n).chars().collect::<Vec<_>>().into_iter().peekable();
            while let Some(c) = chars.next() {
                let s = c.to_string();
                if s == escape {
                    if let Some(e) = chars.next() {
                        if e == '%' || e == '_' || e == '\\' {
                            pattern.push('\\');
                        }
                        pattern.push(e);
                    }
                } else if s == wild {
                    pattern.push('%');
                } else if s == single {
                    pattern.push('_');
                } else {
                    if c == '%' || c == '_' || c == '\\' {
                        pattern.push('\\');
                    }
                    pattern.push(c);
                }
            }
            Constraint::Like(prop(n)?, pattern)
        }
        "BBOX" => Constraint::Bbox(envelope(n)?),
        other => {
            return Err(CswError {
                status: StatusCode::BAD_REQUEST,
                code: "InvalidParameterValue",
                locator: "Constraint".into(),
                text: format!("`{other}` is not supported (And, Or, Not, PropertyIsEqualTo, PropertyIsLike, BBOX)"),
            });
        }
    })
}

/// `gml:Envelope` (lowerCorner/upperCorner) or `gml:Box` (coordinates) inside a BBOX. Axis order:
/// `urn:ogc:def:crs:EPSG::4326` (and `http://www.opengis.net/def/crs/EPSG/0/4326`) are
/// latitude first; `EPSG:4326`, CRS84 and no `srsName` are longitude first.
fn envelope(n: &Node) -> Result<Bbox, CswError> {
    let bad = |m: &str| CswError::bad("BBOX", m.to_owned());
    let nums = |s: &str| {
        s.split([' ', ',', '\n', '\t']).filter(|x| !x.is_empty()).map(str::parse::<f64>).collect::<Result<Vec<_>, _>>()
    };
    let (srs, v) = if let Some(e) = n.child("Envelope") {
        let lo = nums(&e.child("lowerCorner").ok_or_else(|| bad("no lowerCorner"))?.text)
            .map_err(|_| bad("lowerCorner is not numbers"))?;
        let hi = nums(&e.child("upperCorner").ok_or_else(|| bad("no upperCorner"))?.text)
            .map_err(|_| bad("upperCorner is not numbers"))?;
        (e.attr("srsName").unwrap_or(""), [lo, hi].concat())
    } else if let Some(b) = n.child("Box") {
        let c = nums(&b.child("coordinates").ok_or_else(|| bad("no coordinates"))?.text)
            .map_err(|_| bad("coordinates are not numbers"))?;
        (b.attr("srsName").unwrap_or(""), c)
    } else {
        return Err(bad("no gml:Envelope"));
    };
    if v.len() != 4 {
        return Err(bad("an envelope needs two corners of two numbers"));
    }
    let lat_first = srs.contains("EPSG::4326") || srs.contains("EPSG/0/4326");
    let b = if lat_first {
        Bbox { min_x: v[1], min_y: v[0], max_x: v[3], max_y: v[2] }
    } else {
        Bbox { min_x: v[0], min_y: v[1], max_x: v[2], max_y: v[3] }
    };
    Ok(b)
}

/// The CQL text CSW clients send (`AnyText LIKE '%井盖%'`, `dc:type = 'dataset'`,
/// `BBOX(ows:BoundingBox, minx, miny, maxx, maxy)`, `AND`/`OR`/`NOT`, parentheses).
mod cql {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        Word(String),
        Str(String),
        Num(f64),
        Op(String),
        Open,
        Close,
        Comma,
    }

    fn lex(s: &str) -> Result<Vec<Tok>, CswError> {
        let bad = |m: String| CswError::bad("constraint", m);
        let mut out = Vec::new();
        let cs: Vec<char> = s.chars().collect();
        let mut i = 0;
        while i < cs.len() {
            let c = cs[i];
            if c.is_whitespace() {
                i += 1;
            } else if c == '(' {
                out.push(Tok::Open);
                i += 1;
            } else if c == ')' {
                out.push(Tok::Close);
                i += 1;
            } else if c == ',' {
                out.push(Tok::Comma);
                i += 1;
            } else if c == '\'' {
                let mut v = String::new();
                i += 1;
                loop {
                    match cs.get(i) {
                        None => return Err(bad("a string is not closed (')".into())),
                        Some('\'') if cs.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            v.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            } else if matches!(c, '=' | '<' | '>' | '!') {
                let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
                if matches!(two.as_str(), "<>" | "!=" | "<=" | ">=") {
                    out.push(Tok::Op(two));
                    i += 2;
                } else {
                    out.push(Tok::Op(c.to_string()));
                    i += 1;
                }
            } else if c.is_ascii_digit() || c == '-' || c == '.' || c == '+' {
                let start = i;
                i += 1;
                while i < cs.len() && (cs[i].is_ascii_digit() || matches!(cs[i], '.' | 'e' | 'E' | '-' | '+')) {
                    i += 1;
                }
                let t: String = cs[start..i].iter().collect();
                out.push(Tok::Num(t.parse().map_err(|_| bad(format!("`{t}` is not a number")))?));
            } else if c.is_alphanumeric() || c == '_' || c == '"' {
                let start = i;
                while i < cs.len() && (cs[i].is_alphanumeric() || matches!(cs[i], '_' | ':' | '.' | '"')) {
                    i += 1;
                }
                out.push(Tok::Word(cs[start..i].iter().filter(|c| **c != '"').collect()));
            } else {
                return Err(bad(format!("unexpected `{c}`")));
            }
        }
        Ok(out)
    }

    struct P {
        toks: Vec<Tok>,
        at: usize,
        depth: usize,
    }

    impl P {
        fn peek_word(&self, w: &str) -> bool {
            matches!(self.toks.get(self.at), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
        }
        fn next(&mut self) -> Option<Tok> {
            let t = self.toks.get(self.at).cloned();
            self.at += 1;
            t
        }
        fn bad(&self, m: &str) -> CswError {
            CswError::bad("constraint", format!("{m} (at token {})", self.at + 1))
        }
        fn or(&mut self) -> Result<Constraint, CswError> {
            self.depth += 1;
            if self.depth > 32 {
                return Err(self.bad("nested too deeply"));
            }
            let mut all = vec![self.and()?];
            while self.peek_word("OR") {
                self.at += 1;
                all.push(self.and()?);
            }
            self.depth -= 1;
            Ok(if all.len() == 1 { all.remove(0) } else { Constraint::Or(all) })
        }
        fn and(&mut self) -> Result<Constraint, CswError> {
            let mut all = vec![self.not()?];
            while self.peek_word("AND") {
                self.at += 1;
                all.push(self.not()?);
            }
            Ok(if all.len() == 1 { all.remove(0) } else { Constraint::And(all) })
        }
        fn not(&mut self) -> Result<Constraint, CswError> {
            if self.peek_word("NOT") {
                self.at += 1;
                return Ok(Constraint::Not(Box::new(self.not()?)));
            }
            if self.toks.get(self.at) == Some(&Tok::Open) {
                self.at += 1;
                let c = self.or()?;
                if self.next() != Some(Tok::Close) {
                    return Err(self.bad("`)` expected"));
                }
                return Ok(c);
            }
            self.predicate()
        }
        fn predicate(&mut self) -> Result<Constraint, CswError> {
            let Some(Tok::Word(name)) = self.next() else { return Err(self.bad("a property name expected")) };
            if name.eq_ignore_ascii_case("BBOX") {
                if self.next() != Some(Tok::Open) {
                    return Err(self.bad("`(` expected after BBOX"));
                }
                let _ = self.next(); // the geometry property (ows:BoundingBox)
                let mut v = Vec::new();
                while v.len() < 4 {
                    if self.next() != Some(Tok::Comma) {
                        return Err(self.bad("BBOX(property, minx, miny, maxx, maxy) expected"));
                    }
                    match self.next() {
                        Some(Tok::Num(n)) => v.push(n),
                        _ => return Err(self.bad("a number expected in BBOX")),
                    }
                }
                // An optional CRS argument.
                if self.toks.get(self.at) == Some(&Tok::Comma) {
                    self.at += 2;
                }
                if self.next() != Some(Tok::Close) {
                    return Err(self.bad("`)` expected after BBOX's numbers"));
                }
                return Ok(Constraint::Bbox(Bbox { min_x: v[0], min_y: v[1], max_x: v[2], max_y: v[3] }));
            }
            let prop = Prop::parse(&name).ok_or_else(|| {
                self.bad(&format!(
                    "`{name}` is not a queryable (AnyText, dc:title, dc:type, dc:identifier, dc:subject, dct:abstract)"
                ))
            })?;
            let op = match self.next() {
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("LIKE") || w.eq_ignore_ascii_case("ILIKE") => "like",
                Some(Tok::Op(o)) if o == "=" => "=",
                _ => return Err(self.bad("LIKE or = expected")),
            };
            let value = match self.next() {
                Some(Tok::Str(s)) => s,
                Some(Tok::Num(n)) => n.to_string(),
                _ => return Err(self.bad("a quoted value expected")),
            };
            Ok(if op == "like" { Constraint::Like(prop, value) } else { Constraint::Equal(prop, value) })
        }
    }

    pub(super) fn parse(s: &str) -> Result<Constraint, CswError> {
        let n = s.chars().count();
        if n > MAX_CQL_CHARS {
            return Err(CswError::bad("constraint", format!("{n} characters; at most {MAX_CQL_CHARS}")));
        }
        let mut p = P { toks: lex(s)?, at: 0, depth: 0 };
        let c = p.or()?;
        if p.at < p.toks.len() {
            return Err(p.bad("unexpected text after the constraint"));
        }
        Ok(c)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn reads_what_owslib_sends() {
            assert_eq!(parse("AnyText LIKE '%井盖%'").unwrap(), Constraint::Like(Prop::AnyText, "%井盖%".into()));
            assert_eq!(
                parse("csw:AnyText like '%a%' and (dc:type = 'dataset' OR NOT dc:title LIKE 'x')").unwrap(),
                Constraint::And(vec![
                    Constraint::Like(Prop::AnyText, "%a%".into()),
                    Constraint::Or(vec![
                        Constraint::Equal(Prop::Type, "dataset".into()),
                        Constraint::Not(Box::new(Constraint::Like(Prop::Title, "x".into()))),
                    ]),
                ])
            );
            assert!(matches!(parse("BBOX(ows:BoundingBox, 114, 30, 115, 31)").unwrap(), Constraint::Bbox(_)));
            assert!(parse("dc:title LIKE").is_err());
            assert!(parse(&"(".repeat(100)).is_err());
        }
    }
}
