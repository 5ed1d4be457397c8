//! Authentication and administration in process: roles, tokens and layer rules deciding access,
//! logout, citizens registering and waiting for approval, enrolment by QR code (JSON with an SVG,
//! or the PNG itself, read back with a real QR decoder) redeemed once.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};
use shikong_protocol::enrolment::EnrolmentLink;

use crate::support::*;

/// Status, body (JSON, or the text as a JSON string) and headers.
fn send(call: Call<'_>, token: Option<&str>) -> (StatusCode, Json, axum::http::HeaderMap) {
    let r = call.maybe_token(token).send();
    (r.status, r.json_or_text(), r.headers.clone())
}

#[test]
fn roles_and_tokens_decide_access() {
    let env = manholes().env();
    let wang = env.login("wang");
    let zhang = env.login("zhang"); // citizen
    let items = "/collections/manhole/items";
    // Anonymous: the layer is not public.
    let (st, p, h) = send(env.get(items), None);
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{p}");
    assert!(h.contains_key("www-authenticate"));
    // A bad token is 401, never silently anonymous.
    let (st, p, _) = send(env.get(items), Some("not-a-token"));
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{p}");
    // A citizen may not read or edit a protected layer.
    let (st, p, _) = send(env.get(items), Some(&zhang));
    assert_eq!(st, StatusCode::FORBIDDEN, "{p}");
    let f = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.3, 30.5]}, "properties": {"名称": "x"}});
    let (st, p, _) = send(env.post(items).json(&f), Some(&zhang));
    assert_eq!(st, StatusCode::FORBIDDEN, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("citizen"), "{p}");
    // Anonymous writes need a login.
    let (st, _, _) = send(env.post(items).json(&f), None);
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Public layer: anonymous and citizens read; marked for citizen reports: citizens create.
    // (`shikong layer edit` beside the running server.)
    edit_layer(env.store(), "manhole", |d| {
        d.public = true;
        d.citizen_reports = true;
    });
    let (st, _, _) = send(env.get(items), None);
    assert_eq!(st, StatusCode::OK);
    let (st, created, _) = send(env.post(items).json(&f), Some(&zhang));
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let own = created["id"].as_str().unwrap();
    let (st, p, _) =
        send(env.patch(&format!("{items}/{own}")).json(&json!({"properties": {"名称": "y"}})), Some(&zhang));
    assert_eq!(st, StatusCode::FORBIDDEN, "citizens create but do not edit: {p}");
    // An admin rule takes office staff's edit right away on this layer.
    let admin = env.login("admin");
    let (st, r, _) = send(
        env.put("/admin/layers/manhole/rules").json(&json!({"subject": "role:office", "grants": "read"})),
        Some(&admin),
    );
    assert_eq!(st, StatusCode::OK, "{r}");
    let (st, p, _) =
        send(env.patch(&format!("{items}/HS-JG-0001")).json(&json!({"properties": {"depth": 9.0}})), Some(&wang));
    assert_eq!(st, StatusCode::FORBIDDEN, "{p}");
    // Logout revokes the token.
    let (st, _, _) = send(env.post("/auth/logout"), Some(&zhang));
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, p, _) = send(env.get("/auth/me"), Some(&zhang));
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(p["detail"].as_str().unwrap().contains("revoked"), "{p}");
    // Wrong password: 401 without saying whether the user exists.
    let r = env.post("/auth/login").json(&json!({"username": "li", "password": "wrong-password"})).send();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[test]
fn citizens_register_and_wait_for_approval() {
    let env = manholes().env();
    let reg = json!({"username": "市民小赵", "password": "小赵的密码123", "contact": "138-0000-0000"});
    let (st, body, _) = send(env.post("/auth/register").json(&reg), None);
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    let r = env.post("/auth/login").json(&json!({"username": "市民小赵", "password": "小赵的密码123"})).send();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let p = r.json();
    assert!(p["detail"].as_str().unwrap().contains("awaiting approval"), "{p}");
    let admin = env.login("admin");
    let (_, pending, _) = send(env.get("/admin/users?status=pending"), Some(&admin));
    assert_eq!(pending["users"][0]["username"], "市民小赵");
    let (st, _, _) = send(env.post("/admin/users/市民小赵/approve"), Some(&admin));
    assert_eq!(st, StatusCode::OK);
    let t = env.login_with("市民小赵", "小赵的密码123");
    let (st, me, _) = send(env.get("/auth/me"), Some(&t));
    assert_eq!((st, me["role"].as_str()), (StatusCode::OK, Some("citizen")));
}

#[test]
fn enrolment_qr_code_enrols_a_device_once() {
    let env = empty().env();
    let zhang = env.login("张三");

    // JSON: the code, and the link a device scans with its QR code drawn as SVG.
    let r = env.post("/auth/enrolments").token(&zhang).json(&json!({})).send();
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("cache-control"), "no-store");
    let e = r.json();
    let link = EnrolmentLink::parse(e["qr"]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(link.server, BASE);
    assert_eq!(link.code, e["code"].as_str().unwrap());
    assert_eq!(link.user.as_deref(), Some("张三"));
    assert!(e["qr"]["payload"].as_str().unwrap().contains("user=%E5%BC%A0%E4%B8%89"), "{e}");
    let svg = e["qr"]["svg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.ends_with("</svg>"), "{svg}");

    // PNG: the QR code itself, read back by a real decoder.
    let r = env.post("/auth/enrolments").token(&zhang).header("accept", "image/png").send();
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("content-type"), "image/png");
    let header_code = r.header("x-shikong-enrolment-code").to_owned();
    assert!(r.header("x-shikong-enrolment-expires").ends_with("+08:00"));
    let img = image::load_from_memory(&r.body).unwrap().to_luma8();
    let width = img.width();
    assert!(width > 0 && width == img.height(), "{width}×{}", img.height());
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the PNG");
    let (meta, payload) = grids[0].decode().unwrap();
    assert_eq!(meta.ecc_level, 0, "error correction level M (rqrr numbers M as 0)");
    // 8 px per module and the 4-module quiet zone on each side.
    let modules = u32::try_from(meta.version.to_size()).unwrap();
    assert_eq!(width, (modules + 2 * 4) * 8, "{modules} modules");
    let scanned = EnrolmentLink::parse(&payload).unwrap();
    assert_eq!(scanned.code, header_code);
    assert_eq!(scanned.server, BASE);
    assert_eq!(scanned.user.as_deref(), Some("张三"));
    assert_ne!(scanned.code, link.code, "every request issues a new code");

    // The scanned code enrols a device for 张三 …
    let device = json!({"code": scanned.code, "device": {"name": "张三的手机", "platform": "android"}});
    let r = env.post("/auth/enrol").json(&device).send();
    assert_eq!(r.status, StatusCode::OK);
    let enrolled = r.json();
    assert_eq!(enrolled["user"]["username"], "张三");
    let me = env.get("/auth/me").token(enrolled["token"].as_str().unwrap()).send().json();
    assert_eq!(me["username"], "张三");
    assert_eq!(me["device"], enrolled["device"]);
    // … once.
    let p = problem(&env.post("/auth/enrol").json(&device).send(), StatusCode::UNAUTHORIZED);
    assert!(p["detail"].as_str().unwrap().contains("enrol"), "{p}");

    // Anonymous callers get no code.
    let p = problem(&env.post("/auth/enrolments").json(&json!({})).send(), StatusCode::UNAUTHORIZED);
    assert!(p["detail"].as_str().unwrap().contains("logged-in"), "{p}");
    // The route is in the API definition.
    let api = env.get("/api").send().json();
    assert!(api["paths"]["/auth/enrolments"]["post"]["responses"]["201"]["content"]["image/png"].is_object());
}
