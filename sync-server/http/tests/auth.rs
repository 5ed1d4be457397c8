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

// ---- hardening (issue 14): floods, enumeration, re-authentication, what anonymous callers see ----

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request};
use jiff::SignedDuration;
use shikong_auth::{Actor, AuditAction, AuditQuery, AuthConfig, AuthStore, PasswordCost, RatePolicy, ThrottlePolicy};
use shikong_http::{AppState, ServerConfig};

static RT: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime"));

/// The server over `env`'s data directory with other auth settings, as `shikong serve` opens it
/// with its flags (`--no-registration`, `--trusted-proxy`).
fn app_with(env: &Env, auth: AuthConfig, server: impl FnOnce(&mut ServerConfig)) -> Router {
    let mut cfg = ServerConfig { data_dir: env.dir.path().to_owned(), ..ServerConfig::default() };
    server(&mut cfg);
    let store = AuthStore::open_in(env.dir.path()).expect("auth store").with_config(auth);
    shikong_http::app(AppState::new(env.state.store.clone(), store, cfg).expect("state"))
}

/// One request to `app` from 127.0.0.1 (as `support::call`): status, headers, JSON (or text).
fn send_to(
    app: &Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &Json,
) -> (StatusCode, HeaderMap, Json) {
    let mut req = Request::builder().method(method).uri(path).header("host", HOST);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.header("content-type", "application/json").body(Body::from(body.to_string())).expect("request");
    let (st, h, b) = RT.block_on(call(app, req));
    let j = serde_json::from_slice(&b).unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&b).into_owned()));
    (st, h, j)
}

/// Test settings: cheap dummy hashes, small rates.
fn small_limits() -> AuthConfig {
    AuthConfig {
        password_cost: PasswordCost::INSECURE_FAST,
        throttle: ThrottlePolicy {
            login_per_address: RatePolicy::new(5, SignedDuration::from_mins(5)),
            enrol_per_address: RatePolicy::new(4, SignedDuration::from_mins(5)),
            audit_per_address: RatePolicy::new(3, SignedDuration::from_mins(10)),
            ..ThrottlePolicy::default()
        },
        ..AuthConfig::default()
    }
}

#[test]
fn login_floods_are_throttled_per_address_whatever_the_usernames() {
    let env = manholes().env();
    let app = app_with(&env, small_limits(), |_| {});
    let login = |user: &str, headers: &[(&str, &str)]| {
        send_to(&app, "POST", "/auth/login", headers, &json!({"username": user, "password": "guess-1234"}))
    };
    // Five guesses, each at another (unknown) username: the per-username lockout never counts to 5.
    for i in 0..5 {
        let (st, _, p) = login(&format!("nobody{i}"), &[]);
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{p}");
    }
    // The sixth from the same address is refused before any hashing, with when to come back.
    let (st, h, p) = login("nobody5", &[]);
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{p}");
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(p["code"], "throttled", "{p}");
    let secs: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&secs), "Retry-After {secs}");
    assert!(p["detail"].as_str().unwrap().contains("password attempts from this address"), "{p}");
    // Even the right password waits: the address is out of attempts.
    let (st, _, _) = send_to(&app, "POST", "/auth/login", &[], &json!({"username": "wang", "password": PASSWORD}));
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    // X-Forwarded-For is not believed from a peer that is not a trusted proxy.
    let (st, _, _) = login("nobody6", &[("x-forwarded-for", "198.51.100.7")]);
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);

    // Behind a trusted proxy (here: the test's peer 127.0.0.1) every client has its own budget.
    let env = manholes().env();
    let app = app_with(&env, small_limits(), |c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]);
    for i in 0..5 {
        let (st, _, _) = send_to(
            &app,
            "POST",
            "/auth/login",
            &[("x-forwarded-for", "198.51.100.7")],
            &json!({"username": format!("a{i}"), "password": "guess-1234"}),
        );
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let (st, _, _) = send_to(
        &app,
        "POST",
        "/auth/login",
        &[("x-forwarded-for", "198.51.100.7")],
        &json!({"username": "a5", "password": "guess-1234"}),
    );
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    let (st, _, p) = send_to(
        &app,
        "POST",
        "/auth/login",
        &[("x-forwarded-for", "203.0.113.20, 198.51.100.7")],
        &json!({"username": "wang", "password": PASSWORD}),
    );
    assert_eq!(
        st,
        StatusCode::TOO_MANY_REQUESTS,
        "the last hop before the proxy is the client, whatever it prepends: {p}"
    );
    let (st, _, p) = send_to(
        &app,
        "POST",
        "/auth/login",
        &[("x-forwarded-for", "203.0.113.20")],
        &json!({"username": "wang", "password": PASSWORD}),
    );
    assert_eq!(st, StatusCode::OK, "another client: {p}");
}

#[test]
fn enrolment_guesses_are_throttled_per_address() {
    let env = empty().env();
    let app = app_with(&env, small_limits(), |_| {});
    let guess = |i: usize| {
        let body = json!({"code": format!("guessed-code-{i}"), "device": {"name": "pad", "platform": "android"}});
        send_to(&app, "POST", "/auth/enrol", &[], &body)
    };
    for i in 0..4 {
        let (st, _, p) = guess(i);
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{p}");
        assert_eq!(p["code"], "enrolment_unknown");
    }
    let (st, h, p) = guess(4);
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{p}");
    assert_eq!(p["code"], "throttled");
    assert!(h.contains_key("retry-after"));
}

#[test]
fn registration_does_not_reveal_which_usernames_exist() {
    let env = manholes().env();
    let register = |name: &str| {
        let reg = json!({"username": name, "password": "一个新的密码123"});
        let r = env.post("/auth/register").json(&reg).send();
        (r.status, r.json())
    };
    let (st_new, new) = register("市民小孙");
    let (st_taken, taken) = register("zhang"); // an existing citizen
    let (st_admin, admin) = register("admin");
    assert_eq!(st_new, StatusCode::ACCEPTED, "{new}");
    assert_eq!((st_taken, st_admin), (st_new, st_new), "{taken} {admin}");
    // The same body but for the name asked for.
    assert_eq!(taken, json!({"username": "zhang", "status": "pending", "message": new["message"]}));
    assert_eq!(admin["message"], new["message"]);
    // Nothing was created or changed for the taken names: their passwords still work.
    env.login("zhang");
    env.login("admin");
    let a = env.login("admin");
    let pending = env.get("/admin/users?status=pending").token(&a).send().json();
    let names: Vec<&str> =
        pending["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["市民小孙"]);
    // The administrators see what happened.
    let audit = env.get("/admin/audit?action=user.register&outcome=failed").token(&a).send().json();
    let users: Vec<&str> = audit["entries"].as_array().unwrap().iter().map(|e| e["user"].as_str().unwrap()).collect();
    assert_eq!(users, ["admin", "zhang"]);
    assert!(audit["entries"][0]["detail"].as_str().unwrap().contains("username taken"), "{audit}");
}

#[test]
fn registration_can_be_turned_off() {
    let env = manholes().env();
    // `shikong serve --no-registration`
    let app = app_with(&env, AuthConfig { citizen_registration: false, ..AuthConfig::default() }, |_| {});
    let (st, h, p) =
        send_to(&app, "POST", "/auth/register", &[], &json!({"username": "市民小孙", "password": "一个新的密码123"}));
    assert_eq!(st, StatusCode::FORBIDDEN, "{p}");
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(p["code"], "registration_closed");
    assert_eq!(p["detail"], "self-registration is turned off on this server; ask an administrator for an account");
    let a = env.login("admin");
    assert_eq!(env.get("/admin/users?status=pending").token(&a).send().json()["users"], json!([]));
}

#[test]
fn device_tokens_need_the_password_again() {
    let env = empty().env();
    let session = env.login("张三");
    // A bearer token alone (a 12-hour session) does not mint a 90-day device token.
    let r = env.post("/devices").token(&session).json(&json!({"name": "张三的平板", "platform": "android"})).send();
    let p = problem(&r, StatusCode::BAD_REQUEST);
    assert!(p["detail"].as_str().unwrap().contains("password"), "{p}");
    // A wrong password is refused (and counts towards the account's lockout).
    let body = json!({"name": "张三的平板", "platform": "android", "password": "not my password"});
    let p = problem(&env.post("/devices").token(&session).json(&body).send(), StatusCode::FORBIDDEN);
    assert_eq!(p["code"], "wrong_password", "{p}");
    // Nothing was registered by the refused attempts.
    let devices = env.get("/devices").token(&session).send().json();
    assert_eq!(devices["devices"], json!([]));
    // With the password: the device and its token.
    let body = json!({"name": "张三的平板", "platform": "android", "password": PASSWORD});
    let r = env.post("/devices").token(&session).json(&body).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let device_token = r.json()["token"].as_str().unwrap().to_owned();
    // A device token cannot mint another one without the password either.
    let r =
        env.post("/devices").token(&device_token).json(&json!({"name": "第二台", "password": "wrong password"})).send();
    assert_eq!(problem(&r, StatusCode::FORBIDDEN)["code"], "wrong_password");
}

#[test]
fn public_history_does_not_name_users_or_devices() {
    let env = manholes().env();
    edit_layer(env.store(), "manhole", |d| d.public = true);
    let wang = env.token("wang");
    let r = env
        .patch("/collections/manhole/items/HS-JG-0001")
        .token(&wang)
        .json(&json!({"properties": {"depth": 2.5}}))
        .send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let url = "/collections/manhole/items/HS-JG-0001/history";
    // Office staff see who.
    let h = env.get(url).token(&wang).send().json();
    let authors: Vec<&str> =
        h["versions"].as_array().unwrap().iter().map(|v| v["tx"]["author"].as_str().unwrap()).collect();
    assert!(authors.contains(&"wang"), "{h}");
    // Anonymous readers of the public layer, and citizens, do not.
    for token in [None, Some(env.token("zhang"))] {
        let r = env.get(url).maybe_token(token.as_deref()).send();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let text = r.text();
        assert!(!text.contains("wang") && !text.contains("cli:test"), "{text}");
        let h = r.json();
        for v in h["versions"].as_array().unwrap() {
            assert_eq!(v["tx"]["author"], "(hidden)", "{v}");
            assert_eq!(v["tx"]["device"], Json::Null, "{v}");
        }
        assert_eq!(h["versions"].as_array().unwrap().len(), authors.len(), "the versions themselves stay");
    }
}

#[test]
fn anonymous_audit_rows_are_bounded() {
    let env = empty().env();
    // A hostile request id is replaced, a long username is cut (by characters).
    let long_id = "r".repeat(300);
    let r = env
        .post("/auth/login")
        .header("x-request-id", &long_id)
        .json(&json!({"username": "长".repeat(5000), "password": "x"}))
        .send();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = env
        .post("/auth/login")
        .header("x-request-id", "ok-id-42")
        .json(&json!({"username": "张三", "password": "x"}))
        .send();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let cli = Actor::local("test");
    let auth = &env.state.auth;
    let rows = auth
        .query_audit(&cli, &AuditQuery { actions: vec![AuditAction::LoginFailed], ..AuditQuery::default() })
        .unwrap()
        .entries;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].request_id.as_deref(), Some("ok-id-42"));
    let generated = rows[1].request_id.as_deref().unwrap();
    assert!(generated.starts_with("gen-") && generated.len() <= 64, "{generated}");
    assert!(rows[1].user.as_deref().unwrap().chars().count() <= 128);

    // Beyond the per-address budget, refused anonymous attempts are counted, not written one by one.
    let app = app_with(&env, small_limits(), |_| {});
    for i in 0..4 {
        let body = json!({"code": format!("guessed-{i}"), "device": {"name": "pad"}});
        assert_eq!(send_to(&app, "POST", "/auth/enrol", &[], &body).0, StatusCode::UNAUTHORIZED);
    }
    for i in 0..6 {
        let body = json!({"code": format!("again-{i}"), "device": {"name": "pad"}});
        assert_eq!(send_to(&app, "POST", "/auth/enrol", &[], &body).0, StatusCode::TOO_MANY_REQUESTS);
    }
    drop(app); // the count is written when the server closes (or at the next admitted row)
    let rows = auth
        .query_audit(&cli, &AuditQuery { actions: vec![AuditAction::EnrolmentRedeem], ..AuditQuery::default() })
        .unwrap()
        .entries;
    assert_eq!(rows.len(), 4, "3 rows, then one summary: {rows:#?}");
    let summary = &rows[0];
    assert_eq!(summary.target.as_deref(), Some("audit summary"));
    assert_eq!(summary.entity_count, Some(7), "1 unknown code and 6 throttled attempts counted");
    assert!(summary.detail.as_deref().unwrap().contains("counted instead of recorded one by one"));
}
