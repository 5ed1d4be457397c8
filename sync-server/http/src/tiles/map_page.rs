//! The web map page `/map` (MapLibre GL JS bundled from npm, embedded in the binary).

use super::*;

// ---------------------------------------------------------------------------------------------
// The web map page

pub(super) async fn map_page(RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    // What the page reads (map.js): `style` or `layers` (a group's generated style), the time
    // slider's instant `a` and a compare date `b` (a date or RFC 3339), and a start view (`bbox`, or `center` and `zoom`; `#zoom/lat/lon` beats both).
    p.only(&["style", "layers", "a", "b", "center", "zoom", "bbox"])?;
    if p.get("style").is_some() && p.get("layers").is_some() {
        return Err(ApiError::bad_parameter("layers", "give either `style` or `layers`, not both"));
    }
    if let Some(b) = p.bbox()?
        && !(b.min_x >= -180.0 && b.max_x <= 180.0 && b.min_y >= -90.0 && b.max_y <= 90.0)
    {
        return Err(ApiError::bad_parameter(
            "bbox",
            format!("`{b}` is not in longitude/latitude (minlon,minlat,maxlon,maxlat)"),
        ));
    }
    Ok(Html(MAP_HTML).into_response())
}

pub(super) const MAP_HTML: &str = r#"<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>时空 地图</title>
<link rel="stylesheet" href="/map/assets/map.css">
</head>
<body>
<header>
  <h1>时空 地图</h1>
  <label><input type="checkbox" id="compare"> 双时相对比</label>
  <button type="button" id="analysis-toggle" data-testid="analysis-toggle" aria-pressed="false">分析</button>
  <span id="status">加载中…</span>
  <form id="signin" autocomplete="on">
    <input id="username" name="username" placeholder="用户名" autocomplete="username" required>
    <input id="password" name="password" type="password" placeholder="密码" autocomplete="current-password" required>
    <button type="submit">登录</button>
    <span id="signin-error" role="alert"></span>
  </form>
  <span id="who" hidden>已登录：<b id="who-name"></b> <button type="button" id="signout">退出</button></span>
</header>
<div id="maps"><div id="map-a"></div></div>
<div id="timebar"></div>
<div id="compare-view" hidden></div>
<aside id="analysis" hidden></aside>
<script src="/map/assets/map.js"></script>
</body>
</html>
"#;

pub(super) async fn map_asset(Path(file): Path<String>) -> ApiResult<Response> {
    let (body, ty) = match file.as_str() {
        "map.js" => (MAP_JS, "text/javascript; charset=utf-8"),
        "map.css" => (MAP_CSS, "text/css; charset=utf-8"),
        _ => return Err(ApiError::not_found(format!("no asset `{file}`"))),
    };
    Ok(([(header::CONTENT_TYPE, ty), (header::CACHE_CONTROL, "public, max-age=3600")], body).into_response())
}
