//! The service registry's, keys', proxy's and harvest sources' paths in the OpenAPI document
//! (`openapi.rs` chains them), kept beside the routes so the two change together.

use serde_json::{Value as Json, json};

fn problem() -> Json {
    json!({"description": "problem (RFC 9457)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

fn doc(d: &str) -> Json {
    json!({"description": d, "content": {"application/json": {"schema": {"type": "object"}}}})
}

fn responses(ok: (&str, Json), errors: &[&str]) -> Json {
    let mut r = serde_json::Map::new();
    r.insert(ok.0.into(), ok.1);
    for e in errors {
        r.insert((*e).into(), problem());
    }
    Json::Object(r)
}

fn path_id(desc: &str) -> Json {
    json!({"name": "id", "in": "path", "required": true, "description": desc, "schema": {"type": "string"}})
}

/// `(path, path item)` of every route of `services/`.
pub fn openapi_paths() -> Vec<(&'static str, Json)> {
    let tag = "Services 服务代理";
    let text = || json!({"type": "string"});
    let admin_op = |summary: &str, params: Vec<Json>, ok: (&str, Json), errors: &[&str]| json!({"summary": summary, "tags": [tag], "security": [{"bearer": []}], "parameters": params, "responses": responses(ok, errors)});
    let service_body = json!({"type": "object", "required": ["url", "type", "title"], "properties": {
        "url": text(), "type": {"type": "string", "enum": ["wms", "wmts", "wfs", "ogcapi-features", "ogcapi-tiles", "arcgis-rest", "xyz"]},
        "title": text(), "headers": {"type": "array", "items": {"type": "object", "properties": {"name": text(), "value": text()}}},
        "username": text(), "password": text()}});
    let key_body = json!({"type": "object", "required": ["name", "quota", "services"], "properties": {
        "name": text(), "quota": {"type": "integer", "minimum": 1, "description": "requests per Beijing day"},
        "services": {"type": "array", "items": text()}, "fence": {"type": "string", "description": "WKT (MULTI)POLYGON, CGCS2000 lon/lat"},
        "expires": {"type": "string", "format": "date-time"}, "hours": {"type": "string", "description": "HH:MM-HH:MM Beijing time"},
        "rate": {"type": "integer", "minimum": 1, "maximum": 10000, "description": "requests a second (bursts of up to this many); 429 + Retry-After beyond"}}});
    let mut post_service = admin_op(
        "Register an outside service (administrators): its capabilities are read and its layers kept; credentials are stored, never shown",
        vec![],
        ("201", doc("the service: id, type, title, url (the proxy's), layers, health, credentials (bool)")),
        &["400", "401", "403", "422"],
    );
    post_service["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": service_body}}});
    let mut post_key = admin_op(
        "Create an API key (administrators): the secret `key` is in this answer only",
        vec![],
        ("201", doc("{key, id, name, quota, services, fence, …}")),
        &["400", "401", "403", "422"],
    );
    post_key["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": key_body}}});
    let proxy = json!({"get": {
        "summary": "A registered service through the platform: GET to its base URL + path + query (without `key`), answer streamed, the outside address rewritten to the proxy's. An API key (`key` or `X-Api-Key`: rate and quota 429 + Retry-After, services 403, fence 403, time window 403; unknown/revoked/expired 401) or a staff bearer token",
        "tags": [tag],
        "parameters": [path_id("service id"),
            {"name": "path", "in": "path", "required": true, "schema": {"type": "string"}},
            {"name": "key", "in": "query", "required": false, "schema": {"type": "string"}},
            {"name": "X-Api-Key", "in": "header", "required": false, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "the service's answer"}, "401": problem(), "403": problem(), "404": problem(), "429": problem(), "502": problem(), "504": problem()}}});
    let harvest_body = json!({"type": "object", "required": ["url", "type", "title"], "properties": {
        "url": text(), "type": {"type": "string", "enum": ["csw", "ogcapi-records", "wms", "wmts", "wfs", "ogcapi-features"]},
        "title": text(), "every_minutes": {"type": "integer", "minimum": 1, "maximum": 525_600, "description": "run on this schedule; absent: on demand"}}});
    let mut post_harvest = admin_op(
        "Add a catalogue to harvest (administrators): CSW 2.0.2, OGC API – Records, or WMS/WMTS/WFS/OGC API capabilities",
        vec![],
        ("201", doc("the source: id, url, type, title, every_minutes, records, last_run")),
        &["400", "401", "403", "422"],
    );
    post_harvest["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": harvest_body}}});
    let wait = json!({"name": "wait", "in": "query", "required": false, "description": "true: answer when the run has finished, with what it did", "schema": {"type": "boolean"}});
    vec![
        (
            "/harvests",
            json!({"post": post_harvest,
                   "get": admin_op("Harvest sources with their record counts and latest runs (administrators)", vec![], ("200", doc("{harvests: [...]}")), &["401", "403"])}),
        ),
        (
            "/harvests/{id}",
            json!({"delete": admin_op("Remove a harvest source and the records harvested from it", vec![path_id("harvest source id")], ("204", json!({"description": "removed"})), &["401", "403", "404"])}),
        ),
        (
            "/harvests/{id}/run",
            json!({"post": admin_op("Run a harvest now (incremental: added, updated, removed, unchanged); 202 when started or already running", vec![path_id("harvest source id"), wait], ("200", doc("{id, started, run}")), &["400", "401", "403", "404"])}),
        ),
        (
            "/services",
            json!({"post": post_service,
                   "get": admin_op("Registered services with their layers and health (administrators)", vec![], ("200", doc("{services: [...]}")), &["401", "403"])}),
        ),
        (
            "/services/{id}",
            json!({"get": admin_op("A registered service with its layers and health (up/down, latency, last error, down since)", vec![path_id("service id")], ("200", doc("the service")), &["401", "403", "404"]),
                   "delete": admin_op("Remove a registered service", vec![path_id("service id")], ("204", json!({"description": "removed"})), &["401", "403", "404"])}),
        ),
        ("/services/{id}/proxy/{path}", proxy),
        (
            "/keys",
            json!({"post": post_key,
                   "get": admin_op("API keys without their secrets, with today's use (administrators)", vec![], ("200", doc("{keys: [...]}")), &["401", "403"])}),
        ),
        (
            "/keys/{id}",
            json!({"delete": admin_op("Revoke an API key", vec![path_id("key id")], ("204", json!({"description": "revoked"})), &["401", "403", "404"])}),
        ),
    ]
}
