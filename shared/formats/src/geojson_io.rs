//! GeoJSON (RFC 7946): a streaming reader, so a file of a million features is never held in
//! memory as one document, and a streaming writer.

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};
use shikong_model::{Crs, FieldType, GeometryKind, geojson};

use crate::error::{FormatError, Location, Result};
use crate::limits::{Exceeded, Limit, Limits, check_vertices};
use crate::{BoundedValue, Progress, RawValue, Record, Source, SourceOptions};

pub(crate) struct GeoJsonSource {
    path: std::path::PathBuf,
    name: String,
    crs: Crs,
    crs_fixed: bool,
    progress: Progress,
    limits: Limits,
}

impl GeoJsonSource {
    pub(crate) fn open(path: &Path, opts: &SourceOptions) -> Result<Self> {
        let name = path.display().to_string();
        let size = std::fs::metadata(path).map_err(|e| FormatError::file(&name, e.to_string()))?.len();
        Ok(GeoJsonSource {
            path: path.to_owned(),
            name,
            crs: opts.crs.unwrap_or(Crs::Crs84),
            crs_fixed: opts.crs.is_some(),
            progress: Progress::new(size),
            limits: opts.limits.clone(),
        })
    }
}

/// Bytes consumed by the parser (progress), and those of the feature being parsed (a feature
/// over the byte limit stops the parser: a string as long as the file is never held).
struct Meter {
    n: Cell<u64>,
    /// Where the current feature started, while one is parsed.
    feature_start: Cell<Option<u64>>,
    max_feature: u64,
    tripped: Cell<Option<Exceeded>>,
}

/// Counts bytes as the parser consumes them.
struct Counting<R> {
    inner: R,
    meter: Rc<Meter>,
    progress: Progress,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let m = &self.meter;
        if let Some(start) = m.feature_start.get()
            && m.n.get() - start > m.max_feature
        {
            let x = Exceeded::stopped(Limit::FeatureBytes, "the feature", m.n.get() - start, m.max_feature);
            m.tripped.set(Some(x.clone()));
            return Err(x.into_io());
        }
        let k = self.inner.read(buf)?;
        let n = m.n.get() + k as u64;
        m.n.set(n);
        if n & 0xF_FFFF < k as u64 {
            self.progress.set(n);
        }
        Ok(k)
    }
}

/// One feature as it appears in the file.
#[derive(Default)]
struct RawFeature {
    ty: Option<String>,
    geometry: Option<Json>,
    properties: Option<Map<String, Json>>,
}

/// Reads one feature object, its geometry and properties through a [`BoundedValue`].
struct FeatureSeed<'b>(BoundedValue<'b>);

impl<'de> DeserializeSeed<'de> for FeatureSeed<'_> {
    type Value = RawFeature;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RawFeature, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FeatureSeed<'_> {
    type Value = RawFeature;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a GeoJSON Feature object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFeature, A::Error> {
        let mut f = RawFeature::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "type" => f.ty = map.next_value()?,
                "geometry" => f.geometry = Some(map.next_value_seed(self.0)?),
                "properties" => {
                    f.properties = match map.next_value_seed(self.0)? {
                        Json::Null => None,
                        Json::Object(m) => Some(m),
                        other => {
                            return Err(de::Error::custom(format!("\"properties\" must be an object, not {other}")));
                        }
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(f)
    }
}

/// State shared by the visitors: the callback, the CRS, the first callback error.
struct Ctx<'a> {
    name: &'a str,
    limits: &'a Limits,
    meter: Rc<Meter>,
    /// JSON values left for the feature being parsed.
    values_left: Cell<u64>,
    crs: Crs,
    crs_fixed: bool,
    count: usize,
    saw_features: bool,
    on_record: &'a mut dyn FnMut(Record) -> Result<()>,
    failure: Option<FormatError>,
}

impl Ctx<'_> {
    /// A feature starts here: its bytes and values are counted from zero.
    fn start_feature(&self) {
        self.meter.feature_start.set(Some(self.meter.n.get()));
        self.values_left.set(self.limits.json_values);
    }

    /// The limit a parse error came from, if it came from one.
    fn limit_hit(&self, e: &serde_json::Error) -> Option<Exceeded> {
        if let Some(x) = self.meter.tripped.take() {
            return Some(x);
        }
        BoundedValue { left: &self.values_left }.spent(e).then(|| {
            let max = self.limits.json_values;
            Exceeded::stopped(Limit::JsonValues, "the feature", max + 1, max)
        })
    }

    fn feature<E: de::Error>(&mut self, f: RawFeature) -> Result<(), E> {
        self.count += 1;
        let at = Location::Feature(self.count);
        let fail = |ctx: &mut Self, e: FormatError| {
            ctx.failure = Some(e);
            E::custom("stopped")
        };
        if f.ty.as_deref().is_some_and(|t| t != "Feature") {
            let e = FormatError::at(
                self.name,
                at,
                format!("expected a Feature, found type `{}`", f.ty.unwrap_or_default()),
            );
            return Err(fail(self, e));
        }
        let geometry = match f.geometry {
            None | Some(Json::Null) => None,
            Some(g) => match geojson::from_json(&g) {
                Ok(g) => {
                    if let Err(x) = check_vertices(&g, self.limits.geometry_vertices, "the geometry") {
                        return Err(fail(self, FormatError::exceeded(self.name, Some(at), x).field("geometry")));
                    }
                    Some(g)
                }
                Err(e) => return Err(fail(self, FormatError::at(self.name, at, format!("geometry: {e}")))),
            },
        };
        let properties = f.properties.unwrap_or_default().into_iter().map(|(k, v)| (k, RawValue::Json(v))).collect();
        match (self.on_record)(Record { location: at, geometry, properties }) {
            Ok(()) => Ok(()),
            Err(e) => Err(fail(self, e)),
        }
    }
}

struct Document<'c, 'a>(&'c mut Ctx<'a>);

impl<'de> DeserializeSeed<'de> for Document<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a GeoJSON FeatureCollection or Feature object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ctx = self.0;
        let mut single = Map::new();
        ctx.start_feature();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "features" => {
                    ctx.saw_features = true;
                    map.next_value_seed(Features(ctx))?;
                    // Members after the features are counted like one more feature.
                    ctx.start_feature();
                }
                "crs" => {
                    let v = map.next_value_seed(BoundedValue { left: &ctx.values_left })?;
                    let named = v.pointer("/properties/name").and_then(Json::as_str).map(str::to_owned);
                    if let Some(n) = named
                        && !ctx.crs_fixed
                    {
                        let crs: Crs = n.parse().map_err(|e| A::Error::custom_fmt(format!("\"crs\": {e}")))?;
                        if ctx.saw_features && crs != ctx.crs {
                            return Err(A::Error::custom_fmt(
                                "the \"crs\" member comes after the features; pass the CRS explicitly (--crs)".into(),
                            ));
                        }
                        ctx.crs = crs;
                    }
                }
                "type" | "geometry" | "properties" | "id" => {
                    single.insert(key, map.next_value_seed(BoundedValue { left: &ctx.values_left })?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match single.get("type").and_then(Json::as_str) {
            Some("FeatureCollection") | None if ctx.saw_features => Ok(()),
            Some("Feature") => {
                let properties = match single.remove("properties") {
                    None | Some(Json::Null) => None,
                    Some(Json::Object(m)) => Some(m),
                    Some(other) => {
                        return Err(A::Error::custom_fmt(format!("\"properties\" must be an object, not {other}")));
                    }
                };
                let ty = single.get("type").and_then(Json::as_str).map(str::to_owned);
                ctx.feature(RawFeature { ty, geometry: single.remove("geometry"), properties })
            }
            Some(t) => Err(A::Error::custom_fmt(format!("expected a FeatureCollection or Feature, found type `{t}`"))),
            None => Err(A::Error::custom_fmt("not GeoJSON: no \"type\" and no \"features\"".into())),
        }
    }
}

trait CustomFmt {
    fn custom_fmt(msg: String) -> Self;
}

impl<E: de::Error> CustomFmt for E {
    fn custom_fmt(msg: String) -> Self {
        E::custom(msg)
    }
}

struct Features<'c, 'a>(&'c mut Ctx<'a>);

impl<'de> DeserializeSeed<'de> for Features<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Features<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of features")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            self.0.start_feature();
            let seed = FeatureSeed(BoundedValue { left: &self.0.values_left });
            let Some(f) = seq.next_element_seed(seed)? else { break };
            self.0.meter.feature_start.set(None);
            self.0.feature(f)?;
        }
        self.0.meter.feature_start.set(None);
        Ok(())
    }
}

impl Source for GeoJsonSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn crs(&self) -> Crs {
        self.crs
    }

    fn declared_fields(&self) -> Option<Vec<(String, FieldType)>> {
        None
    }

    fn declared_kind(&self) -> Option<GeometryKind> {
        None
    }

    fn progress(&self) -> Progress {
        self.progress.clone()
    }

    fn read(&mut self, on_record: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        let file = File::open(&self.path).map_err(|e| FormatError::file(&self.name, e.to_string()))?;
        let meter = Rc::new(Meter {
            n: Cell::new(0),
            feature_start: Cell::new(None),
            max_feature: self.limits.feature_bytes,
            tripped: Cell::new(None),
        });
        let reader = Counting {
            inner: BufReader::with_capacity(1 << 20, file),
            meter: meter.clone(),
            progress: self.progress.clone(),
        };
        let mut de = serde_json::Deserializer::from_reader(reader);
        let mut ctx = Ctx {
            name: &self.name,
            limits: &self.limits,
            meter,
            values_left: Cell::new(self.limits.json_values),
            crs: self.crs,
            crs_fixed: self.crs_fixed,
            count: 0,
            saw_features: false,
            on_record,
            failure: None,
        };
        let parsed = Document(&mut ctx).deserialize(&mut de).and_then(|()| de.end());
        if let Some(f) = ctx.failure {
            return Err(f);
        }
        if let Err(e) = &parsed
            && let Some(x) = ctx.limit_hit(e)
        {
            return Err(FormatError::exceeded(&self.name, Some(Location::Feature(ctx.count + 1)), x));
        }
        let crs = ctx.crs;
        let count = ctx.count;
        parsed.map_err(|e| {
            let mut err = FormatError::file(&self.name, format!("{e}"));
            if count > 0 {
                err.message = format!("after feature {count}: {e}");
            }
            err
        })?;
        self.crs = crs;
        self.progress.set(self.progress.total);
        Ok(())
    }
}

/// Writes a FeatureCollection one feature at a time.
#[derive(Debug)]
pub struct GeoJsonWriter<W: Write> {
    out: BufWriter<W>,
    first: bool,
}

impl<W: Write> GeoJsonWriter<W> {
    /// Starts the collection. `name` becomes the collection's `name` member (as GDAL writes it).
    pub fn new(out: W, name: &str) -> std::io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 20, out);
        write!(out, "{{\"type\":\"FeatureCollection\",\"name\":{},\"features\":[", Json::String(name.to_owned()))?;
        Ok(GeoJsonWriter { out, first: true })
    }

    /// Writes one feature object (`{"type":"Feature",...}`) built by the caller.
    pub fn write(&mut self, feature: &Json) -> std::io::Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        } else {
            self.out.write_all(b"\n")?;
        }
        self.first = false;
        serde_json::to_writer(&mut self.out, feature)?;
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.write_all(b"\n]}\n")?;
        self.out.into_inner().map_err(std::io::IntoInnerError::into_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> Result<(Vec<Record>, Crs)> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.geojson");
        std::fs::write(&p, text).unwrap();
        let mut s = GeoJsonSource::open(&p, &SourceOptions::default())?;
        let mut out = vec![];
        s.read(&mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok((out, s.crs()))
    }

    #[test]
    fn reads_collections_and_single_features() {
        let (recs, crs) = read_all(
            r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::4490"}},
               "features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[114.3,30.5]},"properties":{"名称":"井盖","n":1}},
                           {"type":"Feature","geometry":null,"properties":null}]}"#,
        )
        .unwrap();
        assert_eq!(crs, Crs::CGCS2000);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].properties[0], ("名称".to_string(), RawValue::Json(Json::String("井盖".into()))));
        assert!(recs[1].geometry.is_none());
        let (one, crs) =
            read_all(r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"properties":{}}"#).unwrap();
        assert_eq!((one.len(), crs), (1, Crs::Crs84));
    }

    #[test]
    fn errors_name_the_feature() {
        let e = read_all(
            r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]}},
               {"type":"Feature","geometry":{"type":"Point","coordinates":["x",2]}}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.location, Some(Location::Feature(2)));
        assert!(e.to_string().contains("feature 2: geometry: "), "{e}");
        let e = read_all(r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":null},"#).unwrap_err();
        assert!(e.to_string().contains("after feature 1"), "{e}");
        assert!(read_all("[1,2,3]").is_err());
        assert!(read_all(r#"{"type":"Topology"}"#).unwrap_err().to_string().contains("Topology"));
    }

    fn read_limited(text: &str, limits: Limits) -> Result<usize> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.geojson");
        std::fs::write(&p, text).unwrap();
        let mut s = GeoJsonSource::open(&p, &SourceOptions { limits, ..SourceOptions::default() })?;
        let mut n = 0;
        s.read(&mut |_| {
            n += 1;
            Ok(())
        })?;
        Ok(n)
    }

    #[test]
    fn features_have_vertex_value_and_byte_limits() {
        let line = |n: usize| {
            let coords: Vec<String> = (0..n).map(|i| format!("[{i},0]")).collect();
            format!(
                r#"{{"type":"Feature","geometry":{{"type":"LineString","coordinates":[{}]}},"properties":{{}}}}"#,
                coords.join(",")
            )
        };
        let fc = |feats: &[String]| format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, feats.join(","));
        let limits = Limits { geometry_vertices: 10, json_values: 100, feature_bytes: 10_000, ..Limits::default() };
        assert_eq!(read_limited(&fc(&[line(10), line(10)]), limits.clone()).unwrap(), 2);

        let e = read_limited(&fc(&[line(10), line(11)]), limits.clone()).unwrap_err();
        assert_eq!(e.location, Some(Location::Feature(2)));
        assert!(
            e.to_string().ends_with(
                "feature 2, field `geometry`: the geometry has 11 vertices; the limit is 10 (geometry-vertices)"
            ),
            "{e}"
        );

        // Values are counted while parsing: the tree of a huge array is never built.
        let e = read_limited(&fc(&[line(10), line(60)]), limits.clone()).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("feature 2: the feature has more than 100 JSON values; the limit is 100 (json-values)"),
            "{e}"
        );
        let e = read_limited(&line(60), limits.clone()).unwrap_err();
        assert_eq!(e.limit.map(|x| x.limit), Some(Limit::JsonValues), "a lone Feature too");

        // A string as long as the file stops at the feature byte limit.
        let huge = format!(r#"{{"type":"Feature","geometry":null,"properties":{{"note":"{}"}}}}"#, "x".repeat(50_000));
        let e = read_limited(&fc(&[line(3), huge]), limits).unwrap_err();
        assert_eq!(e.location, Some(Location::Feature(2)));
        assert!(
            e.to_string().contains("the feature has more than 10000 bytes; the limit is 10000 (feature-bytes)"),
            "{e}"
        );
    }

    #[test]
    fn writer_output_reads_back() {
        let mut w = GeoJsonWriter::new(Vec::new(), "井盖").unwrap();
        w.write(&serde_json::json!({"type":"Feature","geometry":null,"properties":{"a":"中文"}})).unwrap();
        let bytes = w.finish().unwrap();
        let v: Json = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["features"][0]["properties"]["a"], "中文");
        assert_eq!(v["name"], "井盖");
    }
}
