//! The OpenAPI 3.0 document served at `/api` (OGC API – Features /conf/oas30): every route, its
//! parameters and responses. Built here, beside the routes, so the two change together.

use serde_json::{Value as Json, json};

fn param_ref(name: &str) -> Json {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

fn problem() -> Json {
    json!({"description": "problem (RFC 9457)", "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
}

fn json_ok(desc: &str, ty: &str) -> Json {
    json!({"description": desc, "content": {ty: {"schema": {"type": "object"}}}})
}

fn op(summary: &str, tag: &str, params: &[&str], ok: Json, errors: &[&str]) -> Json {
    let mut responses = serde_json::Map::new();
    responses.insert("200".into(), ok);
    for e in errors {
        responses.insert((*e).into(), problem());
    }
    json!({
        "summary": summary,
        "tags": [tag],
        "parameters": params.iter().map(|p| param_ref(p)).collect::<Vec<_>>(),
        "responses": responses,
    })
}

fn write_op(summary: &str, params: &[&str], body: bool, status: &str) -> Json {
    let mut o = json!({
        "summary": summary,
        "tags": ["Features (write)"],
        "security": [{"bearer": []}],
        "parameters": params.iter().map(|p| param_ref(p)).collect::<Vec<_>>(),
        "responses": {
            status: {"description": "done"},
            "400": problem(), "401": problem(), "403": problem(), "404": problem(),
            "409": problem(), "412": problem(), "413": problem(), "422": problem(),
        },
    });
    if body {
        o["requestBody"] = json!({"required": true, "content": {
            "application/geo+json": {"schema": {"$ref": "#/components/schemas/Feature"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/Feature"}},
            "application/merge-patch+json": {"schema": {"type": "object"}},
        }});
    }
    o
}

fn q(name: &str, desc: &str, required: bool, schema: Json) -> Json {
    json!({"name": name, "in": "query", "required": required, "description": desc, "schema": schema})
}

fn authed(summary: &str, tag: &str, params: Vec<Json>, ok: (&str, Json), errors: &[&str]) -> Json {
    let mut responses = serde_json::Map::new();
    responses.insert(ok.0.into(), ok.1);
    for e in errors {
        responses.insert((*e).into(), problem());
    }
    json!({"summary": summary, "tags": [tag], "security": [{"bearer": []}], "parameters": params, "responses": responses})
}

/// The address engine (地名地址服务) routes.
fn geocode_paths() -> Vec<(&'static str, Json)> {
    let text = || json!({"type": "string"});
    let precision = || {
        q(
            "precision",
            "point (house number/POI), road, or area (divisions only)",
            false,
            json!({"type": "string", "enum": ["point", "road", "area"], "default": "point"}),
        )
    };
    let as_of = || param_ref("as-of");
    let result = |d: &str| ("200", json_ok(d, "application/json"));
    let tag = "Geocoding 地名地址";
    vec![
        (
            "/geocode",
            json!({"get": authed(
            "Geocode one address: status (match | ambiguous | nomatch + reason), score, match level, official division codes of every level, standard address, CGCS2000 point",
            tag, vec![q("q", "the address or place name (≤ 500 characters)", true, text()), precision(), as_of()],
            result("a geocoding result"), &["400", "401", "503"])}),
        ),
        (
            "/geocode/suggest",
            json!({"get": authed(
            "Search-box suggestions: name prefix, full pinyin or initials (hs → 洪山区)",
            tag, vec![q("q", "prefix", true, text()), q("limit", "most suggestions", false, json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 10})),
                      q("within", "division code ranked first (the user's district)", false, text())],
            result("{suggestions: [...]}"), &["400", "401", "503"])}),
        ),
        (
            "/reverse",
            json!({"get": authed(
            "Reverse geocoding: containing divisions at every level, nearest road and standard address with distances",
            tag, vec![q("lon", "longitude", true, json!({"type": "number"})), q("lat", "latitude", true, json!({"type": "number"})),
                      q("crs", "CRS of lon/lat (default CRS84/CGCS2000; GCJ02 and BD09 accepted)", false, text()), as_of()],
            result("a reverse result"), &["400", "401", "503"])}),
        ),
        (
            "/geocode/batch",
            json!({"post": {
                "summary": "Start a batch job over an uploaded CSV (UTF-8 or GBK) or XLSX table; 202 with the status URL (Location)",
                "tags": [tag], "security": [{"bearer": []}],
                "parameters": [q("column", "the address column", true, text()),
                               q("format", "result format", false, json!({"type": "string", "enum": ["csv", "geojson", "gpkg"], "default": "csv"})),
                               precision(), as_of()],
                "requestBody": {"required": true, "content": {"text/csv": {}, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}},
                "responses": {"202": {"description": "job started: {id, status}"}, "400": problem(), "401": problem(), "413": problem(), "503": problem()},
            }}),
        ),
        (
            "/geocode/batch/{job}",
            json!({"get": authed(
            "A batch job: state (running | done | failed), rows done of total, match counts, result URL",
            tag, vec![json!({"name": "job", "in": "path", "required": true, "schema": {"type": "string"}})],
            result("job status"), &["401", "403", "404"])}),
        ),
        (
            "/geocode/batch/{job}/result",
            json!({"get": authed(
            "The result table: input columns + status, score, level, province_code … village_code, standard_address, lon, lat, point_source, reason",
            tag, vec![json!({"name": "job", "in": "path", "required": true, "schema": {"type": "string"}})],
            ("200", json!({"description": "CSV, GeoJSON or GeoPackage"})), &["401", "403", "404", "409"])}),
        ),
        (
            "/geocode/aliases",
            json!({
                "get": authed("User aliases (华科 → 华中科技大学)", tag, vec![], result("{aliases: [...]}"), &["401"]),
                "post": {
                    "summary": "Add or replace a user alias (office staff, admins); searchable at once",
                    "tags": [tag], "security": [{"bearer": []}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["alias", "name"],
                        "properties": {"alias": text(), "name": text(), "code": {"type": "string", "nullable": true}}}}}},
                    "responses": {"201": {"description": "stored"}, "400": problem(), "401": problem(), "403": problem()},
                },
            }),
        ),
        (
            "/geocode/aliases/{alias}",
            json!({"delete": {
                "summary": "Remove a user alias", "tags": [tag], "security": [{"bearer": []}],
                "parameters": [{"name": "alias", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"204": {"description": "removed"}, "401": problem(), "403": problem(), "404": problem()},
            }}),
        ),
        (
            "/geocode/subset",
            json!({"get": {
                "summary": "The gazetteer of an area (a replica's, or a bbox) as an engine snapshot for offline devices; ETag / If-None-Match",
                "tags": [tag], "security": [{"bearer": []}],
                "parameters": [q("replica", "replica id", false, text()), param_ref("bbox"), param_ref("bbox-crs")],
                "responses": {"200": {"description": "application/octet-stream snapshot"}, "304": {"description": "unchanged"},
                              "400": problem(), "401": problem(), "403": problem(), "404": problem()},
            }}),
        ),
    ]
}

/// Routes the mobile app needs beside sync: enrolment by QR code, replica size estimates, and a
/// citizen's own reports.
fn mobile_paths() -> Vec<(&'static str, Json)> {
    let text = || json!({"type": "string"});
    let replica_request = json!({"type": "object", "required": ["protocol", "layers"], "properties": {
        "protocol": {"type": "integer", "enum": [1]},
        "layers": {"type": "array", "items": text()},
        "area": {"type": "string", "description": "a polygon (WKT, CGCS2000 lon/lat) or admin:CODE"},
        "name": text()}});
    let count = || json!({"type": "integer", "minimum": 0});
    vec![
        (
            "/auth/enrolments",
            json!({"post": {
                "summary": "A one-time device enrolment code for the caller (or, for admins, `username`) with its QR code: JSON with qr.payload (shikong://enrol?server=…&code=…&user=…) and qr.svg, or with `Accept: image/png` the QR code as a PNG (code in X-Shikong-Enrolment-Code, expiry in X-Shikong-Enrolment-Expires). Redeem with POST /auth/enrol",
                "tags": ["Devices"], "security": [{"bearer": []}],
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object",
                    "properties": {"username": text()}}}}},
                "responses": {
                    "201": {"description": "created", "content": {
                        "application/json": {"schema": {"type": "object", "required": ["code", "username", "expires_at", "qr"], "properties": {
                            "code": text(), "username": text(), "expires_at": {"type": "string", "format": "date-time"},
                            "qr": {"type": "object", "required": ["payload", "svg"], "properties": {"payload": text(), "svg": text()}}}}},
                        "image/png": {"schema": {"type": "string", "format": "binary"}}}},
                    "400": problem(), "401": problem(), "403": problem(), "404": problem(),
                },
            }}),
        ),
        (
            "/sync/replicas/estimate",
            json!({"post": {
                "summary": "What POST /sync/replicas would give for the same body, without cutting the file: features the caller may read per layer (exact) and the file size (estimated from the rows' encoded sizes; overhead and gazetteer exact)",
                "tags": ["Sync"], "security": [{"bearer": []}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": replica_request}}},
                "responses": {
                    "200": {"description": "the estimate", "content": {"application/json": {"schema": {"type": "object",
                        "required": ["protocol", "layers", "features", "overhead_bytes", "gazetteer_bytes", "bytes"], "properties": {
                        "protocol": {"type": "integer"},
                        "layers": {"type": "array", "items": {"type": "object", "required": ["layer", "features", "documents", "bytes"], "properties": {
                            "layer": text(), "title": text(), "features": count(), "documents": count(), "bytes": count()}}},
                        "features": count(), "overhead_bytes": count(), "gazetteer_bytes": count(), "bytes": count()}}}}},
                    "400": problem(), "401": problem(), "403": problem(), "404": problem(),
                },
            }}),
        ),
        (
            "/reports/mine",
            json!({"get": authed(
                "The caller's own citizen reports (features they created — author of version 1 — in layers open to citizen reports), newest first: current fields, status {field, code, label}, created_at/updated_at (Beijing time), number of versions",
                "Reports 群众上报",
                vec![json!({"name": "id", "in": "query", "required": false, "description": "only these reports (repeatable)",
                            "style": "form", "explode": true, "schema": {"type": "array", "items": {"type": "string", "format": "uuid"}}})],
                ("200", json!({"description": "a GeoJSON FeatureCollection", "content": {"application/geo+json": {"schema": {"$ref": "#/components/schemas/FeatureCollection"}}}})),
                &["400", "401"])}),
        ),
        (
            "/collections/{collectionId}/items/{featureId}/history",
            json!({"get": authed(
                "Every stored version of one feature (transaction time, author, device, field-level changes) and the device edits that built them",
                "Data",
                vec![json!({"name": "collectionId", "in": "path", "required": true, "schema": {"type": "string"}}),
                     json!({"name": "featureId", "in": "path", "required": true, "schema": {"type": "string"}})],
                ("200", json!({"description": "{layer, entity_id, code, versions: [{version, op, tx, device_time, changes}], edits}", "content": {"application/json": {"schema": {"type": "object"}}}})),
                &["401", "403", "404"])}),
        ),
        (
            "/reports/layers",
            json!({"get": authed(
                "The layers open to citizen reports with the fields of their forms (name, title, type, required, code lists with labels): the app's report form",
                "Reports 群众上报",
                vec![],
                ("200", json!({"description": "{layers: [{name, title, fields}]}", "content": {"application/json": {"schema": {"type": "object"}}}})),
                &["401"])}),
        ),
    ]
}

/// Sign-in, self-registration, enrolment and device tokens. Each answers 429 with `Retry-After`
/// when its client address or account is throttled (checked before any password hash runs).
fn auth_paths() -> Vec<(&'static str, Json)> {
    let text = || json!({"type": "string"});
    let obj = |required: &[&str], props: Json| json!({"type": "object", "required": required, "properties": props});
    let body = |schema: Json| json!({"required": true, "content": {"application/json": {"schema": schema}}});
    let throttled = || {
        json!({"description": "too many attempts from this client address or for this account (problem+json)",
               "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
               "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}})
    };
    let token = || json_ok("{token, expires_at (Beijing time), user: {username, role}}", "application/json");
    let device = || obj(&["name", "platform"], json!({"name": text(), "platform": text(), "hardware_id": text()}));
    vec![
        (
            "/auth/login",
            json!({"post": {"summary": "Sign in with username and password: a session token", "tags": ["Accounts"],
                "requestBody": body(obj(&["username", "password"], json!({"username": text(), "password": text(), "device": text()}))),
                "responses": {"200": token(), "400": problem(), "401": problem(), "403": problem(), "429": throttled()}}}),
        ),
        (
            "/auth/register",
            json!({"post": {"summary": "Citizen self-registration (pending until approved; the same answer whether or not the name is taken). 403 registration_closed when turned off (`shikong serve --no-registration`)", "tags": ["Accounts"],
                "requestBody": body(obj(&["username", "password"], json!({"username": text(), "password": text(), "display_name": text(), "contact": text()}))),
                "responses": {"201": json_ok("{username, status, message}", "application/json"), "400": problem(), "403": problem(), "429": throttled()}}}),
        ),
        (
            "/auth/enrol",
            json!({"post": {"summary": "Redeem a one-time enrolment code (from POST /auth/enrolments) on a device: a 90-day device token", "tags": ["Devices"],
                "requestBody": body(obj(&["code", "device"], json!({"code": text(), "device": device()}))),
                "responses": {"200": token(), "400": problem(), "401": problem(), "429": throttled()}}}),
        ),
        (
            "/devices",
            json!({
                "get": authed("The caller's devices (all devices for admins)", "Devices", vec![],
                    ("200", json_ok("[{id, name, platform, created_at, last_seen, revoked}]", "application/json")), &["401"]),
                "post": {"summary": "Register one of the caller's devices and mint its 90-day device token; needs the password again (a short session cannot mint a long-lived token)", "tags": ["Devices"],
                    "security": [{"bearer": []}],
                    "requestBody": body({
                        let mut d = device();
                        d["required"] = json!(["name", "platform", "password"]);
                        d["properties"]["password"] = text();
                        d
                    }),
                    "responses": {"201": json_ok("{device, name, token, expires_at}", "application/json"), "400": problem(), "401": problem(), "429": throttled()}},
            }),
        ),
    ]
}

/// The working-time calendar and the live channel.
fn calendar_and_live_paths() -> Vec<(&'static str, Json)> {
    let int = |d: &str| {
        q(
            d,
            "working time to add (give exactly one of days, hours, minutes)",
            false,
            json!({"type": "integer", "minimum": 0}),
        )
    };
    vec![
        (
            "/calendar/deadline",
            json!({"get": {"summary": "A deadline in working time on the official calendar (holidays and 调休 working days; working hours 09:00–12:00, 13:00–17:00 by default): {deadline (RFC 3339, +08:00), provisional (true when the year's official schedule is not loaded: Monday–Friday assumed)}", "tags": ["Calendar 工作日历"],
                "parameters": [q("start", "RFC 3339 instant, or local YYYY-MM-DDTHH:MM[:SS] read as Beijing time", true, json!({"type": "string"})), int("days"), int("hours"), int("minutes")],
                "responses": {"200": json_ok("{deadline, provisional}", "application/json"), "400": problem()}}}),
        ),
        (
            "/calendar",
            json!({"get": {"summary": "The calendar in effect: working periods and, per year, holidays and adjusted working days (shipped years with the administrators' edits)", "tags": ["Calendar 工作日历"],
                "responses": {"200": json_ok("the calendar document", "application/json")}}}),
        ),
        (
            "/calendar/years/{year}",
            json!({"put": {"summary": "Replace one year's holidays and adjusted working days (administrators); kept in DATA/calendar.json and used at once", "tags": ["Calendar 工作日历"],
                "security": [{"bearer": []}],
                "parameters": [{"name": "year", "in": "path", "required": true, "schema": {"type": "integer"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"200": json_ok("the year as stored", "application/json"), "400": problem(), "401": problem(), "403": problem(), "422": problem()}}}),
        ),
        (
            "/events",
            json!({"get": {"summary": "The caller's live channel (Server-Sent Events; each data line one JSON message with `type`: features_changed, task, case_status, overdue, lagged, closing). Bounded streams per user (429) and in total (503); the token and the caller's rights are re-checked while it is open", "tags": ["Live"],
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "an event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}}, "401": problem(), "429": problem(), "503": problem()}}}),
        ),
    ]
}

/// The analysis engine (知识引擎): OGC API – Processes.
fn process_paths() -> Vec<(&'static str, Json)> {
    let tag = "Processes 分析";
    let path = |name: &str, desc: &str| json!({"name": name, "in": "path", "required": true, "description": desc, "schema": {"type": "string"}});
    let doc = |d: &str| json!({"description": d, "content": {"application/json": {}}});
    vec![
        (
            "/processes",
            json!({"get": {"summary": "The processes (hotspot, local-moran, emerging-hotspot, dbscan, hdbscan, kernel-density, statistics, overlay, trajectory, change, replay)",
            "tags": [tag], "responses": {"200": doc("{processes: [...]}")}}}),
        ),
        (
            "/processes/{processId}",
            json!({"get": {"summary": "A process's description: inputs as JSON Schemas, outputs, job control options",
            "tags": [tag], "parameters": [path("processId", "the process id")], "responses": {"200": doc("the process description"), "404": problem()}}}),
        ),
        (
            "/processes/{processId}/execution",
            json!({"post": {
            "summary": "Execute: synchronously (the result: application/geo+json, or {result} with \"response\": \"document\"), or as a job with `Prefer: respond-async` (201, Location: /jobs/{jobId}, the status)",
            "tags": [tag], "security": [{"bearer": []}],
            "parameters": [path("processId", "the process id"), json!({"name": "Prefer", "in": "header", "required": false, "schema": {"type": "string", "enum": ["respond-async", "respond-sync"]}})],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"inputs": {"type": "object"}, "outputs": {"type": "object"}, "response": {"type": "string", "enum": ["raw", "document"]}}}}}},
            "responses": {"200": {"description": "the result"}, "201": doc("the job's status"), "400": problem(), "401": problem(), "403": problem(), "404": problem(), "409": problem(), "422": problem(), "429": problem()}}}),
        ),
        (
            "/jobs",
            json!({"get": authed("The caller's jobs (an administrator's: everyone's), oldest first", tag, vec![], ("200", doc("{jobs: [statusInfo]}")), &["401"])}),
        ),
        (
            "/jobs/{jobId}",
            json!({
            "get": authed("A job's status: accepted | running | successful | failed | dismissed, progress 0–100, message", tag, vec![path("jobId", "the job id")], ("200", doc("statusInfo")), &["401", "403", "404"]),
            "delete": authed("Dismiss: a waiting job at once, a running one at its next step; a finished one is removed with its result", tag, vec![path("jobId", "the job id")], ("200", doc("statusInfo, status dismissed")), &["401", "403", "404"])}),
        ),
        (
            "/jobs/{jobId}/results",
            json!({"get": authed("A successful job's result (as its execution asked: raw or document); a failed job's problem; 404 result-not-ready before", tag,
            vec![path("jobId", "the job id")], ("200", json!({"description": "the result"})), &["401", "403", "404", "410"])}),
        ),
    ]
}

/// The case runtime (业务流): cases, their actions, the supervision figures.
fn case_paths() -> Vec<(&'static str, Json)> {
    let text = || json!({"type": "string"});
    let tag = "Cases 案件";
    let id = || json!({"name": "id", "in": "path", "required": true, "description": "case id (UUID) or number (2026-000123)", "schema": {"type": "string"}});
    let case_doc = || {
        json_ok(
            "the case: state (id, `state_label` in Chinese, `state_label_en` in English), assignee, stage deadline, transitions (action, actor, time), rejected offline actions",
            "application/json",
        )
    };
    vec![
        (
            "/cases",
            json!({
                "post": {"summary": "Open a case (office, admin): flow (default city-standard), class (GB/T 30428.2 minor class), location (Point), description, source, source_ref, asset", "tags": [tag],
                    "security": [{"bearer": []}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["location"], "properties": {
                        "flow": text(), "class": text(), "location": {"type": "object"}, "description": text(), "source": text(), "source_ref": text(), "asset": text()}}}}},
                    "responses": {"201": case_doc(), "400": problem(), "401": problem(), "403": problem(), "422": problem()}},
                "get": authed("Cases (office, admin: all; inspectors: assigned to them)", tag, vec![
                    q("status", "current state (accepted, dispatched, …)", false, text()),
                    q("class", "minor class code", false, text()),
                    q("class_kind", "component or event", false, text()),
                    q("overdue", "true: the current stage's deadline has passed", false, json!({"type": "boolean"})),
                    param_ref("bbox"), param_ref("limit"), param_ref("filter")],
                    ("200", json_ok("{number_returned, more, cases}", "application/json")), &["400", "401", "403"]),
            }),
        ),
        (
            "/cases/{id}",
            json!({"get": authed("One case with its transitions and the current stage's deadline", tag, vec![id()], ("200", case_doc()), &["401", "403", "404"])}),
        ),
        (
            "/cases/{id}/actions",
            json!({"post": {"summary": "Act on a case by its flow: {action (accept register dispatch handle verify close return extend suspend urge rate), action_id (client-chosen; the same id again is answered, not applied again), note, assignee, photos: [sha256 of uploaded attachments], rating}. Wrong role 403, wrong state or reused id 409, missing field or photo 422; nothing changes on a refusal", "tags": [tag],
                "security": [{"bearer": []}],
                "parameters": [id()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["action", "action_id"], "properties": {
                    "action": text(), "action_id": text(), "note": text(), "assignee": text(), "photos": {"type": "array", "items": text()}, "rating": {"type": "integer", "minimum": 1, "maximum": 5}}}}}},
                "responses": {"200": json_ok("{replayed, transition, case}", "application/json"), "400": problem(), "401": problem(), "403": problem(), "404": problem(), "409": problem(), "422": problem()}}}),
        ),
        (
            "/cases/stats",
            json!({"get": authed("Supervision figures (office, admin): 立案率, 按期处置率, 按期结案率, 返工率 with their parts, mean handling time in working hours; per department, unit grid, class or all", tag, vec![
                q("from", "cases whose first step is at or after this instant", false, json!({"type": "string", "format": "date-time"})),
                q("to", "… and before this one", false, json!({"type": "string", "format": "date-time"})),
                q("group_by", "department, grid, class or none", false, json!({"type": "string", "enum": ["department", "grid", "class", "none"], "default": "none"}))],
                ("200", json_ok("{from, to, group_by, as_of, groups: [{key, cases, registration_rate, on_time_handling_rate, on_time_closing_rate, rework_rate, average_handling_hours}]}", "application/json")),
                &["400", "401", "403", "413"])}),
        ),
        (
            "/cases/routing",
            json!({
                "get": authed("The dispatch rules (派遣规则; office, admin): [{class (code prefix), grid, street, community, department}]; the most specific matching rule routes a dispatch sent without an assignee", tag, vec![],
                    ("200", json_ok("{rules: [{class, grid, street, community, department}]}", "application/json")), &["401", "403"]),
                "put": {"summary": "Replace the dispatch rules (admin); validated per rule and field, kept in DATA/routing.json", "tags": [tag],
                    "security": [{"bearer": []}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["rules"]}}}},
                    "responses": {"200": json_ok("the rules now in effect", "application/json"), "400": problem(), "401": problem(), "403": problem(), "422": problem()}},
            }),
        ),
    ]
}

/// Layer statistics (any layer the caller may read).
fn stats_paths() -> Vec<(&'static str, Json)> {
    let text = || json!({"type": "string"});
    vec![(
        "/collections/{collectionId}/stats",
        json!({"get": {
            "summary": "Counts and sums of a layer's features grouped by fields, periods of a date field or the division polygon each lies in, as of an instant (both layers must be readable; at most 1,000 groups, 2,000,000 features, 5,000 division polygons)",
            "tags": ["Data"],
            "parameters": [
                {"name": "collectionId", "in": "path", "required": true, "schema": {"type": "string"}},
                q("group-by", "up to 2 comma-separated terms: FIELD (code, text, integer, boolean), FIELD:year|month|week|day (date or date-time; Beijing time), division", false, text()),
                q("sum", "up to 4 comma-separated integer or real fields", false, text()),
                q("divisions", "the polygon layer the `division` term joins against", false, text()),
                q("division-label", "the divisions' field to show (default 名称/name/title)", false, text()),
                q("filter", "CQL2 filter on the layer", false, text()),
                q("filter-lang", "cql2-text or cql2-json", false, json!({"type": "string", "enum": ["cql2-text", "cql2-json"]})),
                q("bbox", "only features meeting this box (CRS84)", false, text()),
                q("datetime", "valid time (an instant or interval)", false, text()),
                q("as-of", "transaction time: both layers as they were recorded at this instant", false, json!({"type": "string", "format": "date-time"})),
                q("geometry", "with `division`: each group carries its division's GeoJSON geometry", false, json!({"type": "boolean"}))],
            "responses": {
                "200": json_ok("{layer, title, group_by, sums, divisions, as_of, count, totals, groups: [{key, label, count, sums, geometry}], fields: [{name, title, uses}]}", "application/json"),
                "400": problem(), "401": problem(), "403": problem(), "404": problem(), "408": problem(), "413": problem()},
        }}),
    )]
}

/// Conflict review across devices (office, admin).
fn conflict_paths() -> Vec<(&'static str, Json)> {
    let tag = "Sync 同步";
    let text = || json!({"type": "string"});
    vec![
        (
            "/sync/conflicts",
            json!({"get": authed("Open conflicts across every device's edits (office, admin): per entity and field the winning value, the other values with user, device and time, and the base value when known; identical concurrent values are not conflicts", tag, vec![
                q("layer", "only this layer", false, text()),
                q("author", "a user or device whose value competes", false, text()),
                q("since", "opened at or after this instant", false, json!({"type": "string", "format": "date-time"})),
                param_ref("limit"),
                q("after", "the `next` of the previous page (layer/entity)", false, text())],
                ("200", json!({"description": "a page of open conflicts; each carries its `rev`, sent back as a resolution's `seen`",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ConflictPage"}}}})), &["400", "401", "403"])}),
        ),
        (
            "/sync/conflicts/resolve",
            json!({"post": {"summary": "Resolve conflicts as CRDT changes by the caller (office, admin): {action_id, resolutions: [{layer, entity, field?, choose: winner | other:N | {value}, seen?}]}; one transaction, one version per entity, audited; the same action_id again is answered, not applied; devices get the result at their next pull. A resolution with `seen` (the field's listed `rev`) applies only while that conflict is unchanged: otherwise 409 `conflict-changed` naming `resolutions[N].seen` in `member`, nothing written", "tags": [tag],
                "security": [{"bearer": []}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ResolveRequest"}}}},
                "responses": {
                    "200": {"description": "resolved (or replayed)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ResolveResponse"}}}},
                    "400": {"description": "a body member that does not parse or apply, named in `member` (`resolutions[1].field`; `seen` without `field`) (problem+json)",
                            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
                    "401": problem(),
                    "403": problem(),
                    "409": {"description": "`conflict-changed`: the conflict a resolution's `seen` names changed since it was listed (a side added or changed, or settled); `member` is `resolutions[N].seen`; nothing written, list again (problem+json)",
                            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}}}),
        ),
    ]
}

/// The conflict review's bodies (`shikong_protocol::api::conflicts`).
fn conflict_schemas() -> Vec<(&'static str, Json)> {
    let text = || json!({"type": "string"});
    let uuid = || json!({"type": "string", "format": "uuid"});
    let side = json!({"type": "object", "required": ["value"], "properties": {
        "value": {"description": "the field's value in its JSON form (GeoJSON for geometry)", "nullable": true},
        "user": {"type": "string", "nullable": true}, "device": {"type": "string", "nullable": true},
        "time": {"type": "string", "format": "date-time", "nullable": true}}});
    vec![
        (
            "OpenConflict",
            json!({"type": "object", "required": ["layer", "entity", "code", "kind", "field", "winner", "others", "opened", "rev"], "properties": {
            "layer": text(), "entity": uuid(), "code": text(),
            "kind": {"type": "string", "enum": ["field", "deleted-while-edited"]},
            "field": {"type": "string", "description": "a field name, or geometry, code, valid_from, valid_to, deleted"},
            "winner": side.clone(), "others": {"type": "array", "items": side},
            "base": {"description": "the value both sides started from, when known", "nullable": true},
            "opened": {"type": "string", "format": "date-time"},
            "rev": {"type": "string", "description": "this conflict's revision (opaque): it changes with any of its sides; send it back as the resolution's `seen`"}}}),
        ),
        (
            "ConflictPage",
            json!({"type": "object", "required": ["conflicts"], "properties": {
            "conflicts": {"type": "array", "items": {"$ref": "#/components/schemas/OpenConflict"}},
            "next": {"type": "string", "description": "the `after` of the next page; absent on the last"}}}),
        ),
        (
            "Resolution",
            json!({"type": "object", "required": ["layer", "entity", "choose"], "additionalProperties": false, "properties": {
            "layer": text(), "entity": uuid(),
            "field": {"type": "string", "description": "absent: every open conflict of the entity with the same choice"},
            "choose": {"description": "`winner`, `other:N` (the conflict's others[N]) or {value}", "oneOf": [
                {"type": "string", "pattern": "^(winner|other:[0-9]+)$"},
                {"type": "object", "required": ["value"], "properties": {"value": {"nullable": true}}}]},
            "seen": {"type": "string", "description": "the field's conflict `rev` as listed (with `field` only, else 400): applies only while the conflict is unchanged, else 409 `conflict-changed`"}}}),
        ),
        (
            "ResolveRequest",
            json!({"type": "object", "required": ["action_id", "resolutions"], "additionalProperties": false, "properties": {
            "action_id": {"type": "string", "format": "uuid", "description": "chosen once per resolution; a retry sends the same"},
            "resolutions": {"type": "array", "items": {"$ref": "#/components/schemas/Resolution"}}}}),
        ),
        (
            "ResolveResponse",
            json!({"type": "object", "required": ["action_id", "entities"], "properties": {
            "action_id": uuid(),
            "entities": {"type": "array", "items": {"type": "object", "required": ["layer", "entity", "version"], "properties": {
                "layer": text(), "entity": uuid(), "version": {"type": "integer"}}}},
            "replayed": {"type": "boolean", "description": "applied before (same action_id): nothing written now"}}}),
        ),
    ]
}

pub fn document(base: &str, max_limit: usize) -> Json {
    let mut doc = document_features(base, max_limit);
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        for (k, v) in conflict_schemas() {
            schemas.insert(k.into(), v);
        }
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (k, v) in geocode_paths()
            .into_iter()
            .chain(mobile_paths())
            .chain(auth_paths())
            .chain(calendar_and_live_paths())
            .chain(case_paths())
            .chain(conflict_paths())
            .chain(stats_paths())
            .chain(process_paths())
            .chain(super::services::api_doc::openapi_paths())
            .chain(super::catalog::records::openapi_paths())
        {
            paths.insert(k.into(), v);
        }
    }
    doc
}

fn document_features(base: &str, max_limit: usize) -> Json {
    // 408: the request ran past the server's time limit and its store work was stopped;
    // 503: the store's work budget is exhausted.
    let read_errors = ["400", "401", "403", "404", "408", "503"];
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "shikong 时空 API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "OGC API – Features (Parts 1–4) over the shikong spatio-temporal store. Every write is a new version; `as-of` reads any past state.",
            "license": {"name": "MIT OR Apache-2.0"},
        },
        "servers": [{"url": base}],
        "paths": {
            "/": {"get": op("Landing page", "Capabilities", &["f"], json_ok("landing page", "application/json"), &["400"])},
            "/conformance": {"get": op("Conformance classes", "Capabilities", &["f"], json_ok("conformance", "application/json"), &["400"])},
            "/api": {"get": op("This API definition", "Capabilities", &["f"], json_ok("OpenAPI document", "application/vnd.oai.openapi+json;version=3.0"), &["400"])},
            "/collections": {"get": op("Collections (layers) the caller may read", "Capabilities", &["f"], json_ok("collections", "application/json"), &["400", "401"])},
            "/collections/{collectionId}": {"get": op("One collection", "Capabilities", &["collectionId", "f"], json_ok("collection", "application/json"), &read_errors)},
            "/collections/{collectionId}/queryables": {"get": op("Queryable properties (JSON Schema)", "Capabilities", &["collectionId", "f"], json_ok("queryables", "application/schema+json"), &read_errors)},
            "/collections/{collectionId}/items": {
                "get": op(
                    "Features, filtered by bbox, valid time (datetime), CQL2 and transaction time (as-of)",
                    "Features",
                    &["collectionId", "limit", "offset", "cursor", "bbox", "bbox-crs", "datetime", "crs", "filter", "filter-lang", "filter-crs", "as-of", "sortby", "intersects", "f"],
                    json!({"description": "a GeoJSON FeatureCollection", "content": {"application/geo+json": {"schema": {"$ref": "#/components/schemas/FeatureCollection"}}, "text/html": {}}}),
                    &read_errors,
                ),
                "post": write_op("Create a feature (a new entity, version 1)", &["collectionId"], true, "201"),
            },
            "/collections/{collectionId}/items/{featureId}": {
                "get": op(
                    "One feature by entity id or code, now or as of an instant",
                    "Features",
                    &["collectionId", "featureId", "crs", "as-of", "f"],
                    json!({"description": "a GeoJSON Feature (ETag: entity-version)", "content": {"application/geo+json": {"schema": {"$ref": "#/components/schemas/Feature"}}}}),
                    &read_errors,
                ),
                "put": write_op("Replace a feature (new version; If-Match optional)", &["collectionId", "featureId"], true, "200"),
                "patch": write_op("Update some properties or the geometry (JSON merge patch; new version)", &["collectionId", "featureId"], true, "200"),
                "delete": write_op("Delete a feature (its history stays)", &["collectionId", "featureId"], false, "204"),
            },
            "/collections/{collectionId}/changes": {"get": op(
                "What changed between two instants: created, modified (field by field), deleted; a page of changed entities at a time (follow the `next` link)",
                "Features",
                &["collectionId", "from", "to", "changesLimit", "after"],
                json_ok("diff", "application/json"),
                &read_errors,
            )},
            "/healthz": {"get": {"summary": "Liveness", "tags": ["Operations"], "responses": {"200": {"description": "ok"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "tags": ["Operations"], "responses": {"200": {"description": "text exposition format"}}}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "token from POST /auth/login"}},
            "parameters": {
                "collectionId": {"name": "collectionId", "in": "path", "required": true, "schema": {"type": "string"}},
                "featureId": {"name": "featureId", "in": "path", "required": true, "description": "entity id (UUID) or entity code", "schema": {"type": "string"}},
                "f": {"name": "f", "in": "query", "schema": {"type": "string", "enum": ["json", "html"]}},
                "limit": {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": max_limit, "default": 10}},
                "offset": {"name": "offset", "in": "query", "description": "features to skip (at most 100000; the `next` link pages by `cursor` instead)", "schema": {"type": "integer", "minimum": 0, "maximum": 100000, "default": 0}},
                "cursor": {"name": "cursor", "in": "query", "description": "where the previous page ended, as issued in its `next` link (opaque; pages keep showing the collection as of the first page's transaction)", "schema": {"type": "string"}},
                "bbox": {"name": "bbox", "in": "query", "style": "form", "explode": false, "schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}},
                "bbox-crs": {"name": "bbox-crs", "in": "query", "schema": {"type": "string", "format": "uri"}},
                "crs": {"name": "crs", "in": "query", "schema": {"type": "string", "format": "uri"}},
                "datetime": {"name": "datetime", "in": "query", "description": "valid time: an instant or START/END with .. for open ends", "schema": {"type": "string"}},
                "filter": {"name": "filter", "in": "query", "description": "CQL2 text or JSON", "schema": {"type": "string"}},
                "filter-lang": {"name": "filter-lang", "in": "query", "schema": {"type": "string", "enum": ["cql2-text", "cql2-json"], "default": "cql2-text"}},
                "filter-crs": {"name": "filter-crs", "in": "query", "schema": {"type": "string", "format": "uri"}},
                "as-of": {"name": "as-of", "in": "query", "description": "transaction time: the data as recorded at this instant (RFC 3339; no offset = Beijing time)", "schema": {"type": "string", "format": "date-time"}},
                "intersects": {"name": "intersects", "in": "query", "description": "extension: only features whose geometry intersects another feature's geometry, named `COLLECTION/FEATURE` (a code or entity id, as in `/items/{featureId}`), e.g. `district/420111` — a division too large for a CQL2 literal. Read at the same `as-of`; the caller must be able to read that collection; at most 200000 vertices", "schema": {"type": "string", "pattern": "^[^/]+/[^/]+$"}},
                "sortby": {"name": "sortby", "in": "query", "description": "order of the features (OGC API – Features Part 8): comma-separated fields, each `+field` (ascending, the default) or `-field`; `id`, `code` and the layer's fields; at most 4; ties by id. Other than `id`, every page reads all matches, so a query matching more than the server's bound (default 100000) is refused: narrow it with a filter", "style": "form", "explode": false, "schema": {"type": "array", "maxItems": 4, "items": {"type": "string"}}},
                "from": {"name": "from", "in": "query", "required": true, "schema": {"type": "string", "format": "date-time"}},
                "to": {"name": "to", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                "changesLimit": {"name": "limit", "in": "query", "description": "changed entities per page", "schema": {"type": "integer", "minimum": 1, "maximum": max_limit, "default": 100}},
                "after": {"name": "after", "in": "query", "description": "the last entity id of the previous page (set by the `next` link)", "schema": {"type": "string", "format": "uuid"}},
            },
            "schemas": {
                "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
                    "parameter": {"type": "string"}, "field": {"type": "string"}, "feature": {"type": "string"},
                    "member": {"type": "string", "description": "the request body member at fault, e.g. `resolutions[1].seen`"}}},
                "Feature": {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
                    "type": {"type": "string", "enum": ["Feature"]}, "id": {"type": "string"},
                    "geometry": {"type": "object", "nullable": true}, "properties": {"type": "object", "nullable": true}}},
                "FeatureCollection": {"type": "object", "required": ["type", "features"], "properties": {
                    "type": {"type": "string", "enum": ["FeatureCollection"]},
                    "features": {"type": "array", "items": {"$ref": "#/components/schemas/Feature"}},
                    "links": {"type": "array", "items": {"type": "object"}},
                    "numberReturned": {"type": "integer"}, "timeStamp": {"type": "string", "format": "date-time"}}},
            },
        },
    })
}
