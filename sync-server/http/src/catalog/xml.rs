//! The catalog's XML documents, written with `quick-xml` (escaping is the writer's): CSW 2.0.2
//! capabilities, `csw:Record` in its three element sets, ISO 19139 `gmd:MD_Metadata`, the
//! `GetRecords`/`GetRecordById` envelopes and OWS exception reports.

use std::io;
use std::sync::Arc;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use shikong_model::time;

use super::Entry;

pub const CSW_NS: &str = "http://www.opengis.net/cat/csw/2.0.2";
pub const GMD_NS: &str = "http://www.isotc211.org/2005/gmd";
const DC_NS: &str = "http://purl.org/dc/elements/1.1/";
const DCT_NS: &str = "http://purl.org/dc/terms/";
const OWS_NS: &str = "http://www.opengis.net/ows";
const GCO_NS: &str = "http://www.isotc211.org/2005/gco";
const OGC_NS: &str = "http://www.opengis.net/ogc";
const XLINK_NS: &str = "http://www.w3.org/1999/xlink";

pub type W = Writer<Vec<u8>>;

/// The brief, summary or full element set of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementSet {
    Brief,
    Summary,
    Full,
}

impl ElementSet {
    pub fn parse(s: &str) -> Option<ElementSet> {
        match s.to_ascii_lowercase().as_str() {
            "brief" => Some(ElementSet::Brief),
            "summary" => Some(ElementSet::Summary),
            "full" => Some(ElementSet::Full),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ElementSet::Brief => "brief",
            ElementSet::Summary => "summary",
            ElementSet::Full => "full",
        }
    }
}

/// The record schema of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// `csw:Record` (Dublin Core).
    Csw,
    /// ISO 19139 `gmd:MD_Metadata`.
    Iso,
}

pub fn document(f: impl FnOnce(&mut W) -> io::Result<()>) -> Vec<u8> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = f(&mut w);
    w.into_inner()
}

pub fn text(w: &mut W, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name).write_text_content(BytesText::new(value))?;
    Ok(())
}

/// An OWS 1.0 exception report (`exceptionCode`, `locator`).
pub fn exception(code: &str, locator: &str, message: &str) -> Vec<u8> {
    document(|w| {
        w.create_element("ows:ExceptionReport")
            .with_attributes([("xmlns:ows", OWS_NS), ("version", "1.2.0"), ("language", "zh-CN")])
            .write_inner_content(|w| {
                w.create_element("ows:Exception")
                    .with_attributes([("exceptionCode", code), ("locator", locator)])
                    .write_inner_content(|w| text(w, "ows:ExceptionText", message))?;
                Ok(())
            })?;
        Ok(())
    })
}

fn bbox_corners(b: &shikong_model::Bbox) -> (String, String) {
    (format!("{} {}", b.min_x, b.min_y), format!("{} {}", b.max_x, b.max_y))
}

/// `csw:BriefRecord`/`SummaryRecord`/`Record` of an entry.
pub fn csw_record(w: &mut W, e: &Entry, set: ElementSet, ns: bool) -> io::Result<()> {
    let name = match set {
        ElementSet::Brief => "csw:BriefRecord",
        ElementSet::Summary => "csw:SummaryRecord",
        ElementSet::Full => "csw:Record",
    };
    let mut el = w.create_element(name);
    if ns {
        el = el.with_attributes([
            ("xmlns:csw", CSW_NS),
            ("xmlns:dc", DC_NS),
            ("xmlns:dct", DCT_NS),
            ("xmlns:ows", OWS_NS),
        ]);
    }
    el.write_inner_content(|w| {
        text(w, "dc:identifier", &e.id)?;
        text(w, "dc:title", &e.title)?;
        text(w, "dc:type", e.kind.as_str())?;
        if set != ElementSet::Brief {
            for k in &e.keywords {
                text(w, "dc:subject", k)?;
            }
            for l in &e.links {
                text(w, "dc:format", &l.media_type)?;
            }
            if let Some(u) = e.updated {
                text(w, "dct:modified", &time::utc(u))?;
            }
            text(w, "dct:abstract", &e.description)?;
        }
        if set == ElementSet::Full {
            text(w, "dc:language", "zh-CN")?;
            if let Some(c) = e.created {
                text(w, "dc:date", &time::utc(c))?;
            }
            if let Some((a, b)) = e.time {
                text(w, "dct:temporal", &format!("{}/{}", time::utc(a), time::utc(b)))?;
            }
            for l in &e.links {
                w.create_element("dct:references")
                    .with_attribute(("scheme", l.rel.as_str()))
                    .write_text_content(BytesText::new(&l.href))?;
            }
        }
        if let Some(b) = &e.bbox {
            let (lower, upper) = bbox_corners(b);
            w.create_element("ows:BoundingBox")
                .with_attribute(("crs", "urn:ogc:def:crs:OGC:2:84"))
                .write_inner_content(|w| {
                    text(w, "ows:LowerCorner", &lower)?;
                    text(w, "ows:UpperCorner", &upper)
                })?;
        }
        Ok(())
    })?;
    Ok(())
}

fn gco(w: &mut W, name: &str, kind: &str, value: &str) -> io::Result<()> {
    w.create_element(name).write_inner_content(|w| text(w, kind, value))?;
    Ok(())
}

fn code(w: &mut W, name: &str, list: &str, value: &str) -> io::Result<()> {
    w.create_element(name).write_inner_content(|w| {
        w.create_element(list)
            .with_attributes([
                (
                    "codeList",
                    format!(
                        "http://standards.iso.org/iso/19139/resources/gmxCodelists.xml#{list_name}",
                        list_name = list.trim_start_matches("gmd:")
                    )
                    .as_str(),
                ),
                ("codeListValue", value),
            ])
            .write_text_content(BytesText::new(value))?;
        Ok(())
    })?;
    Ok(())
}

/// ISO 19139 `gmd:MD_Metadata` of an entry (the parts ISO 19115 and the Chinese profile share:
/// identifier, language, scope, date stamp, title, dates, abstract, keywords, extent, online
/// resources).
pub fn iso_record(w: &mut W, e: &Entry, ns: bool) -> io::Result<()> {
    let mut el = w.create_element("gmd:MD_Metadata");
    if ns {
        el = el.with_attributes([("xmlns:gmd", GMD_NS), ("xmlns:gco", GCO_NS), ("xmlns:xlink", XLINK_NS)]);
    }
    let scope = match e.kind {
        super::Kind::Dataset => "dataset",
        super::Kind::Tileset | super::Kind::Style => "nonGeographicDataset",
        super::Kind::Process | super::Kind::Service => "service",
    };
    el.write_inner_content(|w| {
        gco(w, "gmd:fileIdentifier", "gco:CharacterString", &e.id)?;
        gco(w, "gmd:language", "gco:CharacterString", "zh-CN")?;
        code(w, "gmd:characterSet", "gmd:MD_CharacterSetCode", "utf8")?;
        code(w, "gmd:hierarchyLevel", "gmd:MD_ScopeCode", scope)?;
        gco(w, "gmd:hierarchyLevelName", "gco:CharacterString", e.kind.as_str())?;
        let stamp = e.updated.or(e.created).map_or_else(|| "1970-01-01T00:00:00Z".to_owned(), time::utc);
        gco(w, "gmd:dateStamp", "gco:DateTime", &stamp)?;
        gco(w, "gmd:metadataStandardName", "gco:CharacterString", "ISO 19115:2003/19139")?;
        nest(w, &["gmd:identificationInfo", "gmd:MD_DataIdentification"], |w| {
            nest(w, &["gmd:citation", "gmd:CI_Citation"], |w| {
                gco(w, "gmd:title", "gco:CharacterString", &e.title)?;
                for (t, kind) in [(e.created, "creation"), (e.updated, "revision")] {
                    if let Some(t) = t {
                        nest(w, &["gmd:date", "gmd:CI_Date"], |w| {
                            gco(w, "gmd:date", "gco:DateTime", &time::utc(t))?;
                            code(w, "gmd:dateType", "gmd:CI_DateTypeCode", kind)
                        })?;
                    }
                }
                nest(w, &["gmd:identifier", "gmd:MD_Identifier"], |w| gco(w, "gmd:code", "gco:CharacterString", &e.id))
            })?;
            gco(w, "gmd:abstract", "gco:CharacterString", &e.description)?;
            if !e.keywords.is_empty() {
                nest(w, &["gmd:descriptiveKeywords", "gmd:MD_Keywords"], |w| {
                    e.keywords.iter().try_for_each(|k| gco(w, "gmd:keyword", "gco:CharacterString", k))
                })?;
            }
            gco(w, "gmd:language", "gco:CharacterString", "zh-CN")?;
            if e.bbox.is_some() || e.time.is_some() {
                nest(w, &["gmd:extent", "gmd:EX_Extent"], |w| iso_extent(w, e))?;
            }
            Ok(())
        })?;
        if !e.links.is_empty() {
            let path =
                ["gmd:distributionInfo", "gmd:MD_Distribution", "gmd:transferOptions", "gmd:MD_DigitalTransferOptions"];
            nest(w, &path, |w| {
                e.links.iter().try_for_each(|l| {
                    nest(w, &["gmd:onLine", "gmd:CI_OnlineResource"], |w| {
                        nest(w, &["gmd:linkage"], |w| text(w, "gmd:URL", &l.href))?;
                        gco(w, "gmd:protocol", "gco:CharacterString", &l.media_type)?;
                        gco(w, "gmd:name", "gco:CharacterString", &l.rel)?;
                        gco(w, "gmd:description", "gco:CharacterString", &l.title)
                    })
                })
            })?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Elements nested in `path` order with `inner` written in the innermost: ISO 19139 wraps each
/// value in a property element and a type element, often several deep.
fn nest<F>(w: &mut W, path: &[&str], inner: F) -> io::Result<()>
where
    F: FnOnce(&mut W) -> io::Result<()>,
{
    match path.split_first() {
        None => inner(w),
        Some((first, rest)) => {
            w.create_element(*first).write_inner_content(|w| nest(w, rest, inner))?;
            Ok(())
        }
    }
}

fn iso_extent(w: &mut W, e: &Entry) -> io::Result<()> {
    if let Some(b) = &e.bbox {
        nest(w, &["gmd:geographicElement", "gmd:EX_GeographicBoundingBox"], |w| {
            gco(w, "gmd:westBoundLongitude", "gco:Decimal", &b.min_x.to_string())?;
            gco(w, "gmd:eastBoundLongitude", "gco:Decimal", &b.max_x.to_string())?;
            gco(w, "gmd:southBoundLatitude", "gco:Decimal", &b.min_y.to_string())?;
            gco(w, "gmd:northBoundLatitude", "gco:Decimal", &b.max_y.to_string())
        })?;
    }
    if let Some((a, b)) = e.time {
        nest(w, &["gmd:temporalElement", "gmd:EX_TemporalExtent", "gmd:extent"], |w| {
            w.create_element("gml:TimePeriod")
                .with_attributes([("xmlns:gml", "http://www.opengis.net/gml"), ("gml:id", "T1")])
                .write_inner_content(|w| {
                    text(w, "gml:beginPosition", &time::utc(a))?;
                    text(w, "gml:endPosition", &time::utc(b))
                })?;
            Ok(())
        })?;
    }
    Ok(())
}

/// A record in the schema asked for.
pub fn any_record(w: &mut W, e: &Entry, schema: Schema, set: ElementSet, ns: bool) -> io::Result<()> {
    match schema {
        Schema::Csw => csw_record(w, e, set, ns),
        Schema::Iso => iso_record(w, e, ns),
    }
}

/// `csw:GetRecordsResponse`.
pub fn get_records(
    entries: &[Arc<Entry>],
    matched: usize,
    start: usize,
    schema: Schema,
    set: ElementSet,
    hits_only: bool,
) -> Vec<u8> {
    document(|w| {
        w.create_element("csw:GetRecordsResponse")
            .with_attributes([
                ("xmlns:csw", CSW_NS),
                ("xmlns:dc", DC_NS),
                ("xmlns:dct", DCT_NS),
                ("xmlns:ows", OWS_NS),
                ("xmlns:gmd", GMD_NS),
                ("xmlns:gco", GCO_NS),
                ("xmlns:xlink", XLINK_NS),
                ("version", "2.0.2"),
            ])
            .write_inner_content(|w| {
                w.create_element("csw:SearchStatus")
                    .with_attribute(("timestamp", time::utc(jiff::Timestamp::now()).as_str()))
                    .write_empty()?;
                let returned = if hits_only { 0 } else { entries.len() };
                // `start` is 1-based: these are records start..start+returned-1; 0 is "no more".
                let next = if returned > 0 && start + returned <= matched { start + returned } else { 0 };
                let schema_uri = match schema {
                    Schema::Csw => CSW_NS,
                    Schema::Iso => GMD_NS,
                };
                w.create_element("csw:SearchResults")
                    .with_attributes([
                        ("numberOfRecordsMatched", matched.to_string().as_str()),
                        ("numberOfRecordsReturned", returned.to_string().as_str()),
                        ("nextRecord", next.to_string().as_str()),
                        ("recordSchema", schema_uri),
                        ("elementSet", set.as_str()),
                    ])
                    .write_inner_content(|w| {
                        if !hits_only {
                            for e in entries {
                                any_record(w, e, schema, set, false)?;
                            }
                        }
                        Ok(())
                    })?;
                Ok(())
            })?;
        Ok(())
    })
}

/// The `ResourceType`s `Harvest` reads (`csw_harvest.rs`).
const HARVEST_TYPES: [&str; 6] = [
    "http://www.opengis.net/cat/csw/2.0.2",
    "http://www.opengis.net/spec/ogcapi-records-1/1.0",
    "http://www.opengis.net/wms",
    "http://www.opengis.net/wmts/1.0",
    "http://www.opengis.net/wfs",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0",
];

/// `csw:HarvestResponse` of a synchronous harvest: what the run changed.
pub fn harvest_response(inserted: u64, updated: u64, deleted: u64) -> Vec<u8> {
    document(|w| {
        w.create_element("csw:HarvestResponse")
            .with_attributes([("xmlns:csw", CSW_NS), ("xmlns:ows", OWS_NS)])
            .write_inner_content(|w| {
                w.create_element("csw:TransactionResponse").with_attribute(("version", "2.0.2")).write_inner_content(
                    |w| {
                        w.create_element("csw:TransactionSummary").write_inner_content(|w| {
                            text(w, "csw:totalInserted", &inserted.to_string())?;
                            text(w, "csw:totalUpdated", &updated.to_string())?;
                            text(w, "csw:totalDeleted", &deleted.to_string())
                        })?;
                        Ok(())
                    },
                )?;
                Ok(())
            })?;
        Ok(())
    })
}

/// `csw:GetRecordByIdResponse`.
pub fn get_record_by_id(entries: &[Arc<Entry>], schema: Schema, set: ElementSet) -> Vec<u8> {
    document(|w| {
        w.create_element("csw:GetRecordByIdResponse")
            .with_attributes([
                ("xmlns:csw", CSW_NS),
                ("xmlns:dc", DC_NS),
                ("xmlns:dct", DCT_NS),
                ("xmlns:ows", OWS_NS),
                ("xmlns:gmd", GMD_NS),
                ("xmlns:gco", GCO_NS),
                ("xmlns:xlink", XLINK_NS),
            ])
            .write_inner_content(|w| {
                for e in entries {
                    any_record(w, e, schema, set, false)?;
                }
                Ok(())
            })?;
        Ok(())
    })
}

/// CSW 2.0.2 capabilities: the operations with their KVP and POST endpoints, the queryables,
/// and the filter capabilities the constraint reader understands.
pub fn capabilities(base: &str) -> Vec<u8> {
    let url = format!("{base}/csw");
    document(|w| {
        w.create_element("csw:Capabilities")
            .with_attributes([
                ("xmlns:csw", CSW_NS),
                ("xmlns:ows", OWS_NS),
                ("xmlns:ogc", OGC_NS),
                ("xmlns:xlink", XLINK_NS),
                ("version", "2.0.2"),
            ])
            .write_inner_content(|w| {
                w.create_element("ows:ServiceIdentification").write_inner_content(|w| {
                    text(w, "ows:Title", "shikong 时空 目录服务")?;
                    text(w, "ows:Abstract", "平台全部图层、瓦片集、样式、分析处理和注册服务的元数据 (CSW 2.0.2; OGC API – Records at /collections/catalog)")?;
                    text(w, "ows:ServiceType", "CSW")?;
                    text(w, "ows:ServiceTypeVersion", "2.0.2")?;
                    text(w, "ows:Fees", "none")?;
                    text(w, "ows:AccessConstraints", "none")
                })?;
                w.create_element("ows:ServiceProvider")
                    .write_inner_content(|w| text(w, "ows:ProviderName", "shikong"))?;
                w.create_element("ows:OperationsMetadata").write_inner_content(|w| {
                    for op in ["GetCapabilities", "DescribeRecord", "GetRecords", "GetRecordById", "Harvest"] {
                        w.create_element("ows:Operation").with_attribute(("name", op)).write_inner_content(|w| {
                            w.create_element("ows:DCP").write_inner_content(|w| {
                                w.create_element("ows:HTTP").write_inner_content(|w| {
                                    w.create_element("ows:Get").with_attribute(("xlink:href", url.as_str())).write_empty()?;
                                    w.create_element("ows:Post").with_attribute(("xlink:href", url.as_str())).write_empty()?;
                                    Ok(())
                                })?;
                                Ok(())
                            })?;
                            if op == "GetRecords" || op == "GetRecordById" {
                                param(w, "outputSchema", &[CSW_NS, GMD_NS])?;
                                param(w, "ElementSetName", &["brief", "summary", "full"])?;
                            }
                            if op == "Harvest" {
                                param(w, "ResourceType", &HARVEST_TYPES)?;
                            }
                            if op == "GetRecords" {
                                param(w, "resultType", &["hits", "results"])?;
                                param(w, "typeNames", &["csw:Record", "gmd:MD_Metadata"])?;
                                param(w, "CONSTRAINTLANGUAGE", &["FILTER", "CQL_TEXT"])?;
                                w.create_element("ows:Constraint")
                                    .with_attribute(("name", "SupportedDublinCoreQueryables"))
                                    .write_inner_content(|w| {
                                        for q in ["csw:AnyText", "dc:title", "dc:type", "dc:identifier", "dc:subject", "dct:abstract", "ows:BoundingBox"] {
                                            text(w, "ows:Value", q)?;
                                        }
                                        Ok(())
                                    })?;
                            }
                            Ok(())
                        })?;
                    }
                    param(w, "service", &["CSW"])?;
                    param(w, "version", &["2.0.2", "3.0.0"])
                })?;
                w.create_element("ogc:Filter_Capabilities").write_inner_content(|w| {
                    w.create_element("ogc:Spatial_Capabilities").write_inner_content(|w| {
                        w.create_element("ogc:GeometryOperands")
                            .write_inner_content(|w| text(w, "ogc:GeometryOperand", "gml:Envelope"))?;
                        w.create_element("ogc:SpatialOperators").write_inner_content(|w| {
                            w.create_element("ogc:SpatialOperator").with_attribute(("name", "BBOX")).write_empty()?;
                            Ok(())
                        })?;
                        Ok(())
                    })?;
                    w.create_element("ogc:Scalar_Capabilities").write_inner_content(|w| {
                        w.create_element("ogc:LogicalOperators").write_empty()?;
                        w.create_element("ogc:ComparisonOperators").write_inner_content(|w| {
                            text(w, "ogc:ComparisonOperator", "EqualTo")?;
                            text(w, "ogc:ComparisonOperator", "Like")
                        })?;
                        Ok(())
                    })?;
                    Ok(())
                })?;
                Ok(())
            })?;
        Ok(())
    })
}

fn param(w: &mut W, name: &str, values: &[&str]) -> io::Result<()> {
    w.create_element("ows:Parameter").with_attribute(("name", name)).write_inner_content(|w| {
        for v in values {
            text(w, "ows:Value", v)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// `csw:DescribeRecordResponse`: where the record schemas are defined.
pub fn describe_record() -> Vec<u8> {
    document(|w| {
        w.create_element("csw:DescribeRecordResponse").with_attribute(("xmlns:csw", CSW_NS)).write_inner_content(
            |w| {
                w.create_element("csw:SchemaComponent")
                    .with_attributes([("schemaLanguage", "http://www.w3.org/XML/Schema"), ("targetNamespace", CSW_NS)])
                    .write_inner_content(|w| {
                        w.create_element("xs:include")
                            .with_attributes([
                                ("xmlns:xs", "http://www.w3.org/2001/XMLSchema"),
                                ("schemaLocation", "http://schemas.opengis.net/csw/2.0.2/record.xsd"),
                            ])
                            .write_empty()?;
                        Ok(())
                    })?;
                Ok(())
            },
        )?;
        Ok(())
    })
}
