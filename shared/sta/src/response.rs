//! Shaping what the server returns: the service root document (entity sets and
//! `serverSettings.conformance`), `$select` applied to one entity's JSON, and the
//! `$resultFormat=dataArray` form of a page of Observations.

use serde_json::{Map, Value, json};

use crate::entity::EntityType;

/// Conformance classes of the SensorThings 1.1 Sensing part, as `serverSettings.conformance`
/// lists them.
pub mod conformance {
    pub const DATAMODEL: &str = "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel";
    pub const RESOURCE_PATH: &str =
        "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities";
    pub const REQUEST_DATA: &str = "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data";
    pub const CREATE_UPDATE_DELETE: &str = "http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete";
    pub const MULTI_DATASTREAM: &str = "http://www.opengis.net/spec/iot_sensing/1.1/req/multi-datastream";
    pub const DATA_ARRAY: &str = "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array";
    pub const MQTT_CREATE: &str =
        "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/observations-creation";
    pub const MQTT_RECEIVE: &str =
        "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates";
}

/// The service root document: one `{name, url}` per entity set and `serverSettings` with the
/// given conformance classes. When `mqtt_endpoints` is not empty the MQTT classes are listed
/// with their `endpoints` (as FROST-Server and the 1.1 specification show).
pub fn service_root(base: &str, classes: &[&str], mqtt_endpoints: &[String]) -> Value {
    let base = base.trim_end_matches('/');
    let sets: Vec<Value> = EntityType::ALL
        .iter()
        .map(|t| json!({"name": t.set_name(), "url": format!("{base}/{}", t.set_name())}))
        .collect();
    let mut list: Vec<&str> = classes.to_vec();
    let mut settings = Map::new();
    if !mqtt_endpoints.is_empty() {
        for c in [conformance::MQTT_CREATE, conformance::MQTT_RECEIVE] {
            if !list.contains(&c) {
                list.push(c);
            }
            settings.insert(c.to_owned(), json!({"endpoints": mqtt_endpoints}));
        }
    }
    settings.insert("conformance".into(), json!(list));
    // `conformance` first, as the examples show.
    let conf = settings.remove("conformance").unwrap_or(Value::Null);
    let mut ordered = Map::new();
    ordered.insert("conformance".into(), conf);
    ordered.extend(settings);
    json!({"value": sets, "serverSettings": ordered})
}

/// Applies `$select` to one entity's JSON (with its links already added). `select` holds model
/// names (`id`, `name`, `Datastreams`); `expanded` the navigation properties expanded inline,
/// which stay. An empty `select` keeps everything. `@iot.selfLink` always stays, so a client can
/// follow the entity.
pub fn apply_select(obj: &mut Map<String, Value>, ty: EntityType, select: &[String], expanded: &[&str]) {
    if select.is_empty() {
        return;
    }
    obj.retain(|k, _| {
        if k == "@iot.selfLink" {
            return true;
        }
        if k == "@iot.id" {
            return select.iter().any(|s| s == "id");
        }
        if let Some(nav) = k.strip_suffix("@iot.navigationLink") {
            return select.iter().any(|s| s == nav);
        }
        if ty.navigation(k).is_some() {
            return expanded.contains(&k.as_str());
        }
        select.iter().any(|s| s == k)
    });
}

/// The default components of the dataArray result format.
pub const DEFAULT_COMPONENTS: [&str; 7] =
    ["id", "phenomenonTime", "result", "resultTime", "resultQuality", "validTime", "parameters"];

/// The `value` of a `$resultFormat=dataArray` response: Observations (JSON with links, as for
/// the normal format) grouped by their Datastream (or MultiDatastream) navigation link, in the
/// order of first appearance. `select` chooses and orders the components (default: all
/// properties, `id` first).
pub fn data_array_value(observations: &[Map<String, Value>], select: &[String]) -> Vec<Value> {
    let components: Vec<&str> = if select.is_empty() {
        DEFAULT_COMPONENTS.to_vec()
    } else {
        select.iter().map(String::as_str).filter(|s| EntityType::Observation.property(s).is_some()).collect()
    };
    let mut groups: Vec<(String, String, Vec<Value>)> = Vec::new();
    for o in observations {
        let (key, link) = ["Datastream@iot.navigationLink", "MultiDatastream@iot.navigationLink"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str).map(|l| ((*k).to_owned(), l.to_owned())))
            .unwrap_or_default();
        let row: Vec<Value> = components
            .iter()
            .map(|c| {
                let member = if *c == "id" { "@iot.id" } else { c };
                o.get(member).cloned().unwrap_or(Value::Null)
            })
            .collect();
        match groups.iter_mut().find(|g| g.0 == key && g.1 == link) {
            Some(g) => g.2.push(Value::Array(row)),
            None => groups.push((key, link, vec![Value::Array(row)])),
        }
    }
    groups
        .into_iter()
        .map(|(key, link, rows)| {
            let mut m = Map::new();
            if !key.is_empty() {
                m.insert(key, Value::String(link));
            }
            m.insert("components".into(), json!(components));
            m.insert("dataArray@iot.count".into(), json!(rows.len()));
            m.insert("dataArray".into(), Value::Array(rows));
            Value::Object(m)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::{Id, add_links};

    #[test]
    fn root_document() {
        let r = service_root(
            "http://h/sta/v1.1/",
            &[conformance::DATAMODEL, conformance::REQUEST_DATA],
            &["mqtt://h:1883".into()],
        );
        assert_eq!(r["value"][0], json!({"name": "Things", "url": "http://h/sta/v1.1/Things"}));
        assert_eq!(r["value"].as_array().map(Vec::len), Some(9));
        let conf = &r["serverSettings"]["conformance"];
        assert_eq!(conf.as_array().map(Vec::len), Some(4));
        assert_eq!(r["serverSettings"][conformance::MQTT_CREATE]["endpoints"][0], "mqtt://h:1883");
        let plain = service_root("http://h", &[conformance::DATAMODEL], &[]);
        assert_eq!(plain["serverSettings"], json!({"conformance": [conformance::DATAMODEL]}));
    }

    #[test]
    fn select_keeps_what_was_asked() {
        let mut m = Map::new();
        m.insert("name".into(), json!("t"));
        m.insert("description".into(), json!("d"));
        m.insert("Datastreams".into(), json!([]));
        add_links(&mut m, "http://h", EntityType::Thing, &Id::Int(1));
        apply_select(&mut m, EntityType::Thing, &["id".into(), "name".into(), "Locations".into()], &["Datastreams"]);
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["@iot.id", "@iot.selfLink", "name", "Datastreams", "Locations@iot.navigationLink"]);
    }

    /// The shape the conformance suite checks for `?$count=true&$top=3&$resultFormat=dataArray`.
    #[test]
    fn data_array_groups_by_datastream() {
        let obs = |id: i64, ds: i64, r: i64| {
            let mut m = Map::new();
            m.insert("phenomenonTime".into(), json!("2016-01-01T01:01:01Z"));
            m.insert("result".into(), json!(r));
            m.insert("resultTime".into(), Value::Null);
            // grouped by the Datastream's own URL (a server may give that or the observation's link)
            m.insert("Datastream@iot.navigationLink".into(), json!(format!("http://h/Datastreams({ds})")));
            m.insert("@iot.id".into(), json!(id));
            m
        };
        let v = data_array_value(&[obs(1, 1, 20), obs(2, 2, 30), obs(3, 1, 40)], &[]);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0]["Datastream@iot.navigationLink"], "http://h/Datastreams(1)");
        assert_eq!(v[0]["components"], json!(DEFAULT_COMPONENTS));
        assert_eq!(v[0]["dataArray@iot.count"], 2);
        assert_eq!(v[0]["dataArray"][1], json!([3, "2016-01-01T01:01:01Z", 40, null, null, null, null]));
        let sel = data_array_value(&[obs(1, 1, 20)], &["result".into(), "id".into(), "name".into()]);
        assert_eq!(sel[0]["components"], json!(["result", "id"]));
        assert_eq!(sel[0]["dataArray"][0], json!([20, 1]));
    }
}
