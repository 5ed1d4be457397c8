//! The admin console `/admin` (管理控制台, issue 20): one page whose script (`web/src/admin/`,
//! bundled by esbuild into `web/dist/admin.js` + `admin.css`, embedded like the map's) signs in
//! through `POST /auth/login` and drives the admin APIs: users and approvals, layers with their
//! schemas and rules, devices and enrolment QR codes, registered services and their health, API
//! keys and quotas, the audit log and usage statistics, the system's resources and thresholds.
//!
//! The page itself holds no data and needs no sign-in (a token lives in the tab's
//! `sessionStorage`, never a cookie or URL, as on `/map`): every call it makes is checked by the
//! server, and a signed-in caller who is not an administrator is shown 需要管理员权限 and nothing
//! else.

use axum::Router;
use axum::extract::{Path, RawQuery};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::params::Params;
use crate::{ApiError, ApiResult, AppState};

static ADMIN_JS: &[u8] = include_bytes!("../web/dist/admin.js");
static ADMIN_CSS: &[u8] = include_bytes!("../web/dist/admin.css");

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/admin", get(page)).route("/admin/assets/{file}", get(asset))
}

async fn page(RawQuery(q): RawQuery) -> ApiResult<Response> {
    // `tab` opens a tab (`users`, `layers`, `devices`, `services`, `keys`, `audit`, `system`).
    Params::new(q.as_deref())?.only(&["tab", "lang"])?;
    Ok(([(header::CACHE_CONTROL, "no-cache")], Html(ADMIN_HTML)).into_response())
}

async fn asset(Path(file): Path<String>) -> ApiResult<Response> {
    let (body, ty) = match file.as_str() {
        "admin.js" => (ADMIN_JS, "text/javascript; charset=utf-8"),
        "admin.css" => (ADMIN_CSS, "text/css; charset=utf-8"),
        _ => return Err(ApiError::not_found(format!("no asset `{file}`"))),
    };
    Ok(([(header::CONTENT_TYPE, ty), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response())
}

const ADMIN_HTML: &str = r#"<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>时空 管理控制台</title>
<link rel="stylesheet" href="/admin/assets/admin.css">
</head>
<body>
<header>
  <h1 data-i18n="title">时空 管理控制台</h1>
  <button type="button" id="lang" data-testid="lang">English</button>
  <form id="signin" autocomplete="on">
    <input id="username" name="username" placeholder="用户名" data-i18n-placeholder="username" autocomplete="username" required>
    <input id="password" name="password" type="password" placeholder="密码" data-i18n-placeholder="password" autocomplete="current-password" required>
    <button type="submit" data-i18n="signin">登录</button>
    <span id="signin-error" role="alert"></span>
  </form>
  <span id="who" hidden><span data-i18n="signedInAs">已登录：</span><b id="who-name"></b> <button type="button" id="signout" data-i18n="signout">退出</button></span>
</header>
<main>
  <p id="notice" data-i18n="pleaseSignIn">请使用管理员账号登录。</p>
  <section id="forbidden" hidden role="alert"><h2 data-i18n="needAdmin">需要管理员权限</h2><p data-i18n="needAdminText">当前账号不是管理员，无法查看或修改管理数据。</p></section>
  <div id="console" hidden>
    <nav id="tabs" role="tablist"></nav>
    <div id="panel"></div>
  </div>
</main>
<script src="/admin/assets/admin.js"></script>
</body>
</html>
"#;
