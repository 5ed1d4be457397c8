use super::*;
use serde_json::json;

fn plan(ty: EntityType, v: Value) -> Result<CreatePlan> {
    plan_create(ty, &v, None, BodyLimits::default())
}

fn body_err(r: Result<impl std::fmt::Debug>) -> (String, String) {
    match r {
        Err(StaError::Body { path, message }) => (path, message),
        other => panic!("expected a body error, got {other:?}"),
    }
}

const OM: &str = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement";

/// The deep insert example of the specification (a Thing with a Location and two Datastreams,
/// each with its Sensor and ObservedProperty, one with an existing ObservedProperty).
#[test]
fn spec_deep_insert_is_ordered_by_foreign_keys() {
    let body = json!({
      "name": "Temperature Monitoring System",
      "description": "Sensor system monitoring area temperature",
      "properties": {"Deployment Condition": "Deployed in a third floor balcony"},
      "Locations": [{
        "name": "UofC CCIT",
        "description": "University of Calgary, CCIT building",
        "encodingType": "application/geo+json",
        "location": {"type": "Point", "coordinates": [-114.133, 51.08]}
      }],
      "Datastreams": [{
        "name": "Air Temperature DS",
        "description": "Datastream for recording temperature",
        "observationType": OM,
        "unitOfMeasurement": {"name": "Degree Celsius", "symbol": "degC", "definition": "http://www.qudt.org/qudt/owl/1.0.0/unit/Instances.html#DegreeCelsius"},
        "ObservedProperty": {"name": "Area Temperature", "description": "The degree or intensity of heat present in the area", "definition": "http://www.qudt.org/qudt/owl/1.0.0/quantity/Instances.html#AreaTemperature"},
        "Sensor": {"name": "DHT22", "description": "DHT22 temperature sensor", "encodingType": "application/pdf", "metadata": "https://cdn-shop.adafruit.com/datasheets/DHT22.pdf"},
        "Observations": [{
          "phenomenonTime": "2017-02-07T18:02:00.000Z",
          "result": 21.6,
          "FeatureOfInterest": {"name": "UofC CCIT", "description": "x", "encodingType": "application/geo+json", "feature": {"type": "Point", "coordinates": [-114.133, 51.08]}}
        }]
      }, {
        "name": "Second DS",
        "observationType": OM,
        "unitOfMeasurement": {"name": null, "symbol": null, "definition": null},
        "ObservedProperty": {"@iot.id": 7},
        "Sensor": {"@iot.id": "s-1"}
      }]
    });
    let p = plan(EntityType::Thing, body).unwrap_or_else(|e| panic!("{e}"));
    let seq: Vec<(EntityType, &str)> = p.ops.iter().map(|o| (o.entity_type, o.path.as_str())).collect();
    assert_eq!(
        seq,
        [
            (EntityType::Location, "/Locations/0"),
            (EntityType::Thing, ""),
            (EntityType::ObservedProperty, "/Datastreams/0/ObservedProperty"),
            (EntityType::Sensor, "/Datastreams/0/Sensor"),
            (EntityType::Datastream, "/Datastreams/0"),
            (EntityType::FeatureOfInterest, "/Datastreams/0/Observations/0/FeatureOfInterest"),
            (EntityType::Observation, "/Datastreams/0/Observations/0"),
            (EntityType::Datastream, "/Datastreams/1"),
        ]
    );
    assert_eq!(p.root, 1);
    assert_eq!(p.ops[1].links, [Link { nav: "Locations", target: Ref::New(0) }]);
    let ds = &p.ops[4].links;
    assert!(ds.contains(&Link { nav: "Thing", target: Ref::New(1) }));
    assert!(ds.contains(&Link { nav: "Sensor", target: Ref::New(3) }));
    let obs = &p.ops[6].links;
    assert!(obs.contains(&Link { nav: "Datastream", target: Ref::New(4) }));
    assert!(obs.contains(&Link { nav: "FeatureOfInterest", target: Ref::New(5) }));
    let ds2 = &p.ops[7].links;
    assert!(ds2.contains(&Link { nav: "ObservedProperty", target: Ref::Existing(Id::Int(7)) }));
    assert!(ds2.contains(&Link { nav: "Sensor", target: Ref::Existing(Id::Str("s-1".into())) }));
    // every New ref points backwards
    for (i, op) in p.ops.iter().enumerate() {
        for l in &op.links {
            if let Ref::New(j) = l.target {
                assert!(j < i, "op {i} refers to later op {j}");
            }
        }
    }
}

#[test]
fn errors_name_the_offending_member() {
    let (path, msg) = body_err(plan(
        EntityType::Thing,
        json!({"name": "t", "Datastreams": [{"name": "d", "observationType": OM,
            "unitOfMeasurement": {"name": 3}, "Sensor": {"@iot.id": 1}, "ObservedProperty": {"@iot.id": 1}}]}),
    ));
    assert_eq!(path, "/Datastreams/0/unitOfMeasurement/name");
    assert!(msg.contains("string"), "{msg}");

    let (path, msg) = body_err(plan(
        EntityType::Datastream,
        json!({"name": "d", "observationType": "x",
        "unitOfMeasurement": {}, "Thing": {"@iot.id": 1}, "Sensor": {"@iot.id": 1}, "ObservedProperty": {"@iot.id": 1}}),
    ));
    assert_eq!(path, "/observationType");
    assert!(msg.contains("OM_Measurement"), "{msg}");

    let (path, msg) = body_err(plan(
        EntityType::Datastream,
        json!({"name": "d", "observationType": OM, "unitOfMeasurement": {}, "Thing": {"@iot.id": 1}}),
    ));
    assert_eq!(path, "");
    assert!(msg.contains("Sensor"), "{msg}");

    let (path, _) = body_err(plan(EntityType::Thing, json!({"name": "t", "colour": "red"})));
    assert_eq!(path, "/colour");
    let (path, _) = body_err(plan(EntityType::Thing, json!({"@iot.id": 5, "name": "t"})));
    assert_eq!(path, "/@iot.id");
    let (path, _) = body_err(plan(
        EntityType::Location,
        json!({"name": "l", "encodingType": "application/geo+json", "location": {"type": "Point", "coordinates": "here"}}),
    ));
    assert_eq!(path, "/location");
    let (path, _) = body_err(plan(
        EntityType::Observation,
        json!({"result": 1, "phenomenonTime": "yesterday", "Datastream": {"@iot.id": 1}}),
    ));
    assert_eq!(path, "/phenomenonTime");
    let (path, msg) = body_err(plan(EntityType::Observation, json!({"result": 1})));
    assert_eq!(path, "");
    assert!(msg.contains("exactly one"), "{msg}");
    // A linked entity sent whole (as frost-sta-client does) is a reference: its other members are ignored.
    let p = plan(EntityType::Observation, json!({"result": 1, "Datastream": {"@iot.id": 1, "name": "x"}})).unwrap();
    assert_eq!(p.ops.len(), 1);
    assert_eq!(p.ops[0].links, vec![Link { nav: "Datastream", target: Ref::Existing(Id::Int(1)) }]);
    let (path, _) = body_err(plan(EntityType::Observation, json!({"result": 1, "Datastream": {"@iot.id": [1]}})));
    assert_eq!(path, "/Datastream/@iot.id");
}

#[test]
fn observation_posted_under_a_datastream_takes_the_url_link() {
    let parent = Link { nav: "Datastream", target: Ref::Existing(Id::Int(5)) };
    let p = plan_create(
        EntityType::Observation,
        &json!({"result": 3, "phenomenonTime": "2016-01-01T00:00:00+08:00/2016-01-01T01:00:00+08:00"}),
        Some(parent.clone()),
        BodyLimits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.ops[0].links, [parent]);
    assert_eq!(p.ops[0].properties["phenomenonTime"], "2015-12-31T16:00:00Z/2015-12-31T17:00:00Z");
}

#[test]
fn multidatastream_lengths_must_agree() {
    let md = |n_ops: usize| {
        let ops: Vec<Value> = (0..n_ops).map(|i| json!({"@iot.id": i})).collect();
        json!({"name": "m", "observationType": COMPLEX_OBSERVATION,
            "unitOfMeasurements": [{"name": "a"}, {"name": "b"}],
            "multiObservationDataTypes": [OM, OM],
            "Thing": {"@iot.id": 1}, "Sensor": {"@iot.id": 1}, "ObservedProperties": ops})
    };
    assert!(plan(EntityType::MultiDatastream, md(2)).is_ok());
    let (_, msg) = body_err(plan(EntityType::MultiDatastream, md(1)));
    assert!(msg.contains("ObservedProperties (1)"), "{msg}");
    assert!(check_multi_result(&json!([1, 2]), 2).is_ok());
    assert!(check_multi_result(&json!([1]), 2).is_err());
}

#[test]
fn limits_refuse_huge_deep_inserts() {
    let obs: Vec<Value> = (0..20).map(|i| json!({"result": i})).collect();
    let body = json!({"name": "d", "observationType": OM, "unitOfMeasurement": {}, "Thing": {"@iot.id": 1},
        "Sensor": {"@iot.id": 1}, "ObservedProperty": {"@iot.id": 1}, "Observations": obs});
    let r = plan_create(EntityType::Datastream, &body, None, BodyLimits { max_entities: 10, max_depth: 8 });
    assert!(matches!(r, Err(StaError::TooLarge { .. })), "{r:?}");
    assert_eq!(plan(EntityType::Datastream, body).map(|p| p.ops.len()).ok(), Some(21));
}

#[test]
fn updates() {
    let up = validate_update(
        EntityType::Thing,
        &json!({"name": "新名字", "description": null, "Locations": [{"@iot.id": 3}]}),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(up.properties["name"], "新名字");
    assert_eq!(up.links, [("Locations", Id::Int(3))]);
    let (path, _) = body_err(validate_update(EntityType::Thing, &json!({"name": null})));
    assert_eq!(path, "/name");
    let (path, _) = body_err(validate_update(EntityType::Datastream, &json!({"Thing": {"name": "new"}})));
    assert_eq!(path, "/Thing");
    // The entity id in an update body is ignored (18-088 §10.3.1); `id` itself is refused.
    assert_eq!(validate_update(EntityType::Thing, &json!({"@iot.id": 9})).ok(), Some(Update::default()));
    let (path, _) = body_err(validate_update(EntityType::Observation, &json!({"id": 9})));
    assert_eq!(path, "/id");
}
