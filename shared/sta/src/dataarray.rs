//! The dataArray extension: bulk creation of Observations (`POST /CreateObservations`) in the
//! compact form
//!
//! ```json
//! [{"Datastream": {"@iot.id": 1}, "components": ["phenomenonTime", "result", "FeatureOfInterest/id"],
//!   "dataArray@iot.count": 2, "dataArray": [["2010-12-23T10:20:00-0700", 20, 1], …]}]
//! ```
//!
//! FROST-Server reads such a body into a JSON tree first, and 100k-observation posts take it
//! down. Here the body is read by a streaming serde visitor: each row becomes a small
//! [`ObservationDraft`] handed to a sink as soon as it is read, no tree of the whole body is
//! built, and the row count is checked while reading — the first row past
//! [`DataArrayLimits::max_rows`] (or a declared `dataArray@iot.count` past it) stops the parse with
//! [`StaError::TooLarge`]. Rows whose values are wrong (an unparseable time) are reported per row
//! (`Err` in the sink), as the conformance suite expects one `"error"` line per bad row while the
//! others are created; a malformed structure (a row of the wrong length, an unknown component)
//! refuses the whole body with the JSON path of the offending part.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::entity::{Id, TimeValue};
use crate::error::{Result, StaError};

/// Bounds of one dataArray body.
#[derive(Debug, Clone, Copy)]
pub struct DataArrayLimits {
    /// Most observations in one body (all groups together).
    pub max_rows: usize,
    /// Most groups (Datastreams) in one body.
    pub max_groups: usize,
}

impl Default for DataArrayLimits {
    fn default() -> Self {
        DataArrayLimits { max_rows: 500_000, max_groups: 10_000 }
    }
}

/// The stream a group's observations belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamRef {
    Datastream(Id),
    MultiDatastream(Id),
}

/// A column of the dataArray.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    PhenomenonTime,
    Result,
    ResultTime,
    ResultQuality,
    ValidTime,
    Parameters,
    /// `FeatureOfInterest/id` (or `FeatureOfInterest/@iot.id`).
    FeatureOfInterestId,
}

impl Component {
    fn parse(s: &str) -> Option<Component> {
        Some(match s {
            "phenomenonTime" => Component::PhenomenonTime,
            "result" => Component::Result,
            "resultTime" => Component::ResultTime,
            "resultQuality" => Component::ResultQuality,
            "validTime" => Component::ValidTime,
            "parameters" => Component::Parameters,
            "FeatureOfInterest/id" | "FeatureOfInterest/@iot.id" => Component::FeatureOfInterestId,
            _ => return None,
        })
    }
}

/// The header of one group, known before its rows are handed out.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupHeader {
    /// 0-based index of the group in the body.
    pub index: usize,
    pub stream: StreamRef,
    pub components: Vec<Component>,
}

/// One observation to create: validated properties (times normalised) and the feature of
/// interest, if the row names one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservationDraft {
    pub properties: Map<String, Value>,
    pub feature_of_interest: Option<Id>,
}

/// A parsed group (the collecting form of [`stream_data_array`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DataArrayGroup {
    pub header: GroupHeader,
    pub rows: Vec<std::result::Result<ObservationDraft, StaError>>,
}

/// Parses a dataArray body into its groups and rows.
pub fn parse_data_array(body: &[u8], limits: DataArrayLimits) -> Result<Vec<DataArrayGroup>> {
    let mut groups: Vec<DataArrayGroup> = Vec::new();
    stream_data_array(body, limits, |h, _row, r| {
        if groups.last().is_none_or(|g| g.header.index != h.index) {
            groups.push(DataArrayGroup { header: h.clone(), rows: Vec::new() });
        }
        if let Some(g) = groups.last_mut() {
            g.rows.push(r);
        }
    })?;
    Ok(groups)
}

/// Reads a dataArray body row by row, calling `sink(header, row_index, draft_or_row_error)` for
/// each row as it is read. Returns the number of rows read.
pub fn stream_data_array<F>(body: &[u8], limits: DataArrayLimits, mut sink: F) -> Result<usize>
where
    F: FnMut(&GroupHeader, usize, std::result::Result<ObservationDraft, StaError>),
{
    let mut st = State { limits, rows: 0, error: None, sink: &mut sink };
    let mut de = serde_json::Deserializer::from_slice(body);
    let r = BodySeed(&mut st).deserialize(&mut de).and_then(|()| de.end());
    match (st.error.take(), r) {
        (Some(e), _) => Err(e),
        (None, Err(e)) => Err(StaError::body("", format!("not a dataArray body: {e}"))),
        (None, Ok(())) => Ok(st.rows),
    }
}

type Sink<'a> = dyn FnMut(&GroupHeader, usize, std::result::Result<ObservationDraft, StaError>) + 'a;

struct State<'s, 'a> {
    limits: DataArrayLimits,
    rows: usize,
    /// The precise error; serde only carries a string, so the visitor parks it here.
    error: Option<StaError>,
    sink: &'s mut Sink<'a>,
}

impl State<'_, '_> {
    fn fail<E: de::Error>(&mut self, e: StaError) -> E {
        let msg = e.to_string();
        self.error.get_or_insert(e);
        E::custom(msg)
    }
}

struct BodySeed<'b, 's, 'a>(&'b mut State<'s, 'a>);

impl<'de> DeserializeSeed<'de> for BodySeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of dataArray groups")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        let mut index = 0;
        loop {
            if index >= self.0.limits.max_groups {
                // Peek: is there one more group?
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    let e = StaError::too_large("dataArray groups", index as u64 + 1, self.0.limits.max_groups as u64);
                    return Err(self.0.fail(e));
                }
                return Ok(());
            }
            if seq.next_element_seed(GroupSeed { st: &mut *self.0, index })?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }
}

struct GroupSeed<'b, 's, 'a> {
    st: &'b mut State<'s, 'a>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for GroupSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for GroupSeed<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a dataArray group object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        let GroupSeed { st, index } = self;
        let at = |k: &str| format!("/{index}/{k}");
        let mut stream: Option<StreamRef> = None;
        let mut components: Option<Vec<Component>> = None;
        let mut declared: Option<u64> = None;
        // Rows read before the header was complete (members in an unusual order), bounded by
        // the same row limit.
        let mut pending: Option<Vec<Vec<Value>>> = None;
        let mut seen = 0usize;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "Datastream" | "MultiDatastream" => {
                    let v: Value = map.next_value()?;
                    let id =
                        v.as_object().filter(|o| o.len() == 1).and_then(|o| o.get("@iot.id")).and_then(Id::from_json);
                    let Some(id) = id else {
                        return Err(st.fail(StaError::body(at(&key), "expected {\"@iot.id\": …}")));
                    };
                    if stream.is_some() {
                        return Err(
                            st.fail(StaError::body(at(&key), "a group names one Datastream or MultiDatastream"))
                        );
                    }
                    stream = Some(if key == "Datastream" {
                        StreamRef::Datastream(id)
                    } else {
                        StreamRef::MultiDatastream(id)
                    });
                }
                "components" => {
                    let names: Vec<String> = map.next_value()?;
                    let mut cs = Vec::with_capacity(names.len());
                    for (i, n) in names.iter().enumerate() {
                        let Some(c) = Component::parse(n) else {
                            return Err(st.fail(StaError::body(
                                format!("/{index}/components/{i}"),
                                format!("unknown component `{n}`; components are phenomenonTime, result, resultTime, resultQuality, validTime, parameters, FeatureOfInterest/id"),
                            )));
                        };
                        if cs.contains(&c) {
                            return Err(st.fail(StaError::body(
                                format!("/{index}/components/{i}"),
                                format!("component `{n}` appears twice"),
                            )));
                        }
                        cs.push(c);
                    }
                    if !cs.contains(&Component::Result) {
                        return Err(st.fail(StaError::body(at("components"), "the components must include `result`")));
                    }
                    components = Some(cs);
                }
                "dataArray@iot.count" => {
                    let n: u64 = map.next_value()?;
                    if n > st.limits.max_rows as u64 {
                        return Err(st.fail(StaError::too_large("dataArray@iot.count", n, st.limits.max_rows as u64)));
                    }
                    declared = Some(n);
                }
                "dataArray" => match (&stream, &components) {
                    (Some(s), Some(c)) => {
                        let header = GroupHeader { index, stream: s.clone(), components: c.clone() };
                        seen = map.next_value_seed(RowsSeed { st: &mut *st, header: &header, buffer: None })?;
                    }
                    _ => {
                        let mut buf = Vec::new();
                        let header =
                            GroupHeader { index, stream: StreamRef::Datastream(Id::Int(0)), components: Vec::new() };
                        seen =
                            map.next_value_seed(RowsSeed { st: &mut *st, header: &header, buffer: Some(&mut buf) })?;
                        pending = Some(buf);
                    }
                },
                other => {
                    return Err(st.fail(StaError::body(
                        at(other),
                        "a dataArray group has Datastream (or MultiDatastream), components, dataArray@iot.count and dataArray",
                    )));
                }
            }
        }
        let Some(stream) = stream else {
            return Err(
                st.fail(StaError::body(format!("/{index}"), "the group names no Datastream or MultiDatastream"))
            );
        };
        let Some(components) = components else {
            return Err(st.fail(StaError::body(format!("/{index}"), "the group has no components")));
        };
        let header = GroupHeader { index, stream, components };
        if let Some(rows) = pending {
            for (i, row) in rows.into_iter().enumerate() {
                let r = row_to_draft(&header, i, row).map_err(|e| st.fail::<A::Error>(e))?;
                (st.sink)(&header, i, r);
            }
        }
        if let Some(n) = declared
            && n != seen as u64
        {
            return Err(st.fail(StaError::body(
                at("dataArray@iot.count"),
                format!("declares {n} rows, the dataArray has {seen}"),
            )));
        }
        Ok(())
    }
}

struct RowsSeed<'b, 's, 'a, 'h> {
    st: &'b mut State<'s, 'a>,
    header: &'h GroupHeader,
    buffer: Option<&'b mut Vec<Vec<Value>>>,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, '_, '_, '_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, '_, '_, '_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<usize, A::Error> {
        let RowsSeed { st, header, mut buffer } = self;
        let mut i = 0usize;
        while let Some(row) = seq.next_element::<Vec<Value>>()? {
            st.rows += 1;
            if st.rows > st.limits.max_rows {
                return Err(st.fail(StaError::too_large(
                    "observations in one dataArray body",
                    st.rows as u64,
                    st.limits.max_rows as u64,
                )));
            }
            match buffer.as_deref_mut() {
                Some(buf) => buf.push(row),
                None => {
                    let r = row_to_draft(header, i, row).map_err(|e| st.fail::<A::Error>(e))?;
                    (st.sink)(header, i, r);
                }
            }
            i += 1;
        }
        Ok(i)
    }
}

/// One row to a draft. The outer error is structural (refuses the body), the inner one is the
/// row's own (the row is reported as failed, the others proceed).
fn row_to_draft(h: &GroupHeader, i: usize, row: Vec<Value>) -> Result<std::result::Result<ObservationDraft, StaError>> {
    let base = format!("/{}/dataArray/{i}", h.index);
    if row.len() != h.components.len() {
        return Err(StaError::body(
            base,
            format!("a row has {} values, one per component; this one has {}", h.components.len(), row.len()),
        ));
    }
    let mut d = ObservationDraft::default();
    for (j, (c, v)) in h.components.iter().zip(row).enumerate() {
        let here = format!("{base}/{j}");
        let bad = |m: String| Ok(Err(StaError::body(here.clone(), m)));
        match c {
            Component::PhenomenonTime | Component::ValidTime => {
                let key = if *c == Component::PhenomenonTime { "phenomenonTime" } else { "validTime" };
                match v.as_str().map(TimeValue::parse) {
                    Some(Ok(t)) => {
                        d.properties.insert(key.into(), Value::String(t.to_string()));
                    }
                    Some(Err(e)) => return bad(e),
                    None if v.is_null() => {}
                    None => return bad(format!("`{key}` is an ISO 8601 string")),
                }
            }
            Component::ResultTime => {
                if v.is_null() {
                    d.properties.insert("resultTime".into(), Value::Null);
                } else {
                    match crate::body::instant_value(&v) {
                        Ok(t) => {
                            d.properties.insert("resultTime".into(), t);
                        }
                        Err(e) => return bad(e),
                    }
                }
            }
            Component::Result => {
                d.properties.insert("result".into(), v);
            }
            Component::ResultQuality => {
                d.properties.insert("resultQuality".into(), v);
            }
            Component::Parameters => {
                if !(v.is_object() || v.is_null()) {
                    return bad("`parameters` is a JSON object".into());
                }
                d.properties.insert("parameters".into(), v);
            }
            Component::FeatureOfInterestId => match Id::from_json(&v) {
                Some(id) => d.feature_of_interest = Some(id),
                None => return bad("a FeatureOfInterest id is an integer or a string".into()),
            },
        }
    }
    Ok(Ok(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The conformance suite's POST (ets-sta10 DataArrayTests): two groups, the second row of the
    /// first group with a string FoI id.
    #[test]
    fn conformance_body() {
        let body = br#"[
          {"Datastream": {"@iot.id": 1}, "components": ["phenomenonTime", "result", "FeatureOfInterest/id"],
           "dataArray@iot.count": 2,
           "dataArray": [["2010-12-23T10:20:00-0700", 20, 1], ["2010-12-23T10:21:00-0700", 30, "probablyNotAValidId"]]},
          {"Datastream": {"@iot.id": 2}, "components": ["phenomenonTime", "result"], "dataArray@iot.count": 2,
           "dataArray": [["2010-12-23T10:20:00-0700", 65], ["2010-12-23T10:21:00-0700", 60]]}
        ]"#;
        let g = parse_data_array(body, DataArrayLimits::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].header.stream, StreamRef::Datastream(Id::Int(1)));
        let r0 = g[0].rows[0].clone().unwrap_or_default();
        assert_eq!(r0.properties["phenomenonTime"], "2010-12-23T17:20:00Z");
        assert_eq!(r0.properties["result"], 20);
        assert_eq!(r0.feature_of_interest, Some(Id::Int(1)));
        assert_eq!(
            g[0].rows[1].clone().unwrap_or_default().feature_of_interest,
            Some(Id::Str("probablyNotAValidId".into()))
        );
        assert_eq!(g[1].rows.len(), 2);
    }

    #[test]
    fn bad_rows_are_reported_per_row() {
        let body = json!([{"MultiDatastream": {"@iot.id": "m"}, "components": ["result", "phenomenonTime"],
            "dataArray": [[[1, 2], "2016-01-01T00:00:00Z"], [[3, 4], "noon"]]}]);
        let g =
            parse_data_array(body.to_string().as_bytes(), DataArrayLimits::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(g[0].rows[0].is_ok());
        match &g[0].rows[1] {
            Err(StaError::Body { path, .. }) => assert_eq!(path, "/0/dataArray/1/1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn structural_errors_name_the_place() {
        let cases = [
            (
                json!([{"Datastream": {"@iot.id": 1}, "components": ["result", "colour"], "dataArray": []}]),
                "/0/components/1",
            ),
            (
                json!([{"Datastream": {"@iot.id": 1}, "components": ["result"], "dataArray": [[1], [1, 2]]}]),
                "/0/dataArray/1",
            ),
            (
                json!([{"Datastream": {"@iot.id": 1}, "components": ["result"], "dataArray@iot.count": 3, "dataArray": [[1]]}]),
                "/0/dataArray@iot.count",
            ),
            (json!([{"components": ["result"], "dataArray": [[1]]}]), "/0"),
            (json!([{"Datastream": {"name": "x"}, "components": ["result"], "dataArray": []}]), "/0/Datastream"),
            (
                json!([{"Datastream": {"@iot.id": 1}, "components": ["phenomenonTime"], "dataArray": []}]),
                "/0/components",
            ),
        ];
        for (body, want) in cases {
            match parse_data_array(body.to_string().as_bytes(), DataArrayLimits::default()) {
                Err(StaError::Body { path, .. }) => assert_eq!(path, want, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        assert!(matches!(
            parse_data_array(b"[{\"Datastream\": ", DataArrayLimits::default()),
            Err(StaError::Body { .. })
        ));
        assert!(matches!(parse_data_array(b"{}", DataArrayLimits::default()), Err(StaError::Body { .. })));
    }

    #[test]
    fn header_after_rows_is_buffered() {
        let body = json!([{"dataArray": [[5], [6]], "components": ["result"], "Datastream": {"@iot.id": 9}}]);
        let g =
            parse_data_array(body.to_string().as_bytes(), DataArrayLimits::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(g[0].rows.len(), 2);
        assert_eq!(g[0].header.stream, StreamRef::Datastream(Id::Int(9)));
    }

    /// 100k rows against a 50k limit: refused when row 50,001 is read, with the limit named;
    /// the sink saw exactly the rows before it.
    #[test]
    fn row_limit_stops_the_read() {
        let mut s =
            String::from(r#"[{"Datastream":{"@iot.id":1},"components":["phenomenonTime","result"],"dataArray":["#);
        for i in 0..100_000 {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!(r#"["2016-01-01T00:00:00Z",{i}]"#));
        }
        s.push_str("]}]");
        let mut seen = 0;
        let r =
            stream_data_array(s.as_bytes(), DataArrayLimits { max_rows: 50_000, max_groups: 10 }, |_, _, _| seen += 1);
        assert_eq!(
            r,
            Err(StaError::TooLarge { what: "observations in one dataArray body".into(), found: 50_001, max: 50_000 })
        );
        assert_eq!(seen, 50_000);
        let declared = br#"[{"Datastream":{"@iot.id":1},"components":["result"],"dataArray@iot.count":99999999999,"dataArray":[]}]"#;
        assert!(matches!(parse_data_array(declared, DataArrayLimits::default()), Err(StaError::TooLarge { .. })));
        let n = stream_data_array(s.as_bytes(), DataArrayLimits::default(), |_, _, r| assert!(r.is_ok()));
        assert_eq!(n, Ok(100_000));
    }
}
