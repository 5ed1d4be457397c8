//! Starting the app: the desktop window (wry webview) or the liveview server (the same views,
//! rendered in the process and shown by any browser over a WebSocket — what the end-to-end test
//! drives in headless Chromium, after signing in with the key printed at start). Both start the
//! loopback map server first.

#[cfg(any(feature = "desktop", feature = "mobile", feature = "liveview"))]
fn virtual_dom(ctx: crate::views::AppContext) -> dioxus::prelude::VirtualDom {
    dioxus::prelude::VirtualDom::new(crate::views::App).with_root_context(ctx)
}

/// Opens the desktop window (blocks until it is closed).
#[cfg(any(feature = "desktop", feature = "mobile"))]
pub fn desktop(device: shikong_app_core::Device) -> anyhow::Result<()> {
    use crate::mapserver::{MapServer, MapSources};
    let map = MapServer::start_blocking(MapSources::default())?;
    let ctx = crate::views::AppContext {
        device: std::sync::Arc::new(std::sync::Mutex::new(device)),
        map,
        start: crate::views::Screen::Map,
    };
    let cfg = dioxus_desktop::Config::new().with_window(
        dioxus_desktop::WindowBuilder::new()
            .with_title("时空巡查 shikong")
            .with_inner_size(dioxus_desktop::LogicalSize::new(480.0, 900.0)),
    );
    dioxus_desktop::launch::launch_virtual_dom(virtual_dom(ctx), cfg)
}

/// Serves the app at `http://ADDR/app` until the process ends; calls `ready` with the bound
/// address (port 0 picks one) and the per-launch sign-in key once it listens. The views act on the
/// device's session, so only a browser that opened `http://ADDR/app?key=KEY` (which sets a
/// same-site cookie) is served; anyone else gets 401.
#[cfg(feature = "liveview")]
pub async fn liveview(
    device: shikong_app_core::Device,
    addr: std::net::SocketAddr,
    ready: impl FnOnce(std::net::SocketAddr, &str),
) -> anyhow::Result<()> {
    use crate::mapserver::{MapServer, MapSources};
    use dioxus_liveview::LiveviewRouter as _;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    // The page's origin, as the browser names it, may read the map.
    let port = bound.port();
    let origins = [format!("http://{bound}"), format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")];
    let map = MapServer::start_for(MapSources::default(), &origins).await?;
    let key = crate::mapserver::random_secret()?;
    let device = std::sync::Arc::new(std::sync::Mutex::new(device));
    let gate = key.clone();
    let app = axum::Router::new()
        .with_virtual_dom("/", move || {
            virtual_dom(crate::views::AppContext {
                device: device.clone(),
                map: map.clone(),
                start: crate::views::Screen::Map,
            })
        })
        .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            let admission = admit(&gate, req.headers(), req.uri().query());
            async move {
                use axum::response::IntoResponse as _;
                match admission {
                    Admission::Cookie => next.run(req).await,
                    Admission::Key(cookie) => {
                        let mut r = next.run(req).await;
                        r.headers_mut().append(axum::http::header::SET_COOKIE, cookie);
                        r
                    }
                    Admission::Refused => (
                        axum::http::StatusCode::UNAUTHORIZED,
                        "shikong-mobile: open the address with ?key= that the app printed at start",
                    )
                        .into_response(),
                }
            }
        }));
    ready(bound, &key);
    axum::serve(listener, app.into_make_service()).await?;
    Ok(())
}

/// The cookie that carries the liveview's sign-in key.
#[cfg(feature = "liveview")]
const COOKIE: &str = "shikong_liveview";

/// Whether a request to the liveview may pass.
#[cfg(feature = "liveview")]
#[derive(Debug, PartialEq)]
enum Admission {
    /// It carries the key's cookie.
    Cookie,
    /// It names the key in its query (`?key=`): passes, and gets this `Set-Cookie`.
    Key(axum::http::HeaderValue),
    Refused,
}

/// Compares in time independent of where the texts differ.
#[cfg(feature = "liveview")]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(feature = "liveview")]
fn admit(key: &str, headers: &axum::http::HeaderMap, query: Option<&str>) -> Admission {
    let cookies = headers.get_all(axum::http::header::COOKIE).iter().filter_map(|v| v.to_str().ok());
    let has_cookie = cookies
        .flat_map(|c| c.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(name, value)| name == COOKIE && same(value, key));
    if has_cookie {
        return Admission::Cookie;
    }
    let named =
        query.unwrap_or_default().split('&').filter_map(|p| p.split_once('=')).any(|(n, v)| n == "key" && same(v, key));
    match axum::http::HeaderValue::from_str(&format!("{COOKIE}={key}; Path=/; HttpOnly; SameSite=Strict")) {
        Ok(cookie) if named => Admission::Key(cookie),
        _ => Admission::Refused,
    }
}

#[cfg(all(test, feature = "liveview"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, header};

    #[test]
    fn the_liveview_wants_its_key() {
        let key = "0123456789abcdef";
        let none = HeaderMap::new();
        assert_eq!(admit(key, &none, None), Admission::Refused);
        assert_eq!(admit(key, &none, Some("key=wrong")), Admission::Refused);
        assert_eq!(admit(key, &none, Some("key=0123456789abcdeF")), Admission::Refused);
        let Admission::Key(cookie) = admit(key, &none, Some("x=1&key=0123456789abcdef")) else { panic!("key refused") };
        let cookie = cookie.to_str().unwrap();
        assert!(
            cookie.starts_with("shikong_liveview=0123456789abcdef;") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        let mut with = HeaderMap::new();
        with.insert(header::COOKIE, HeaderValue::from_static("a=b; shikong_liveview=0123456789abcdef"));
        assert_eq!(admit(key, &with, None), Admission::Cookie);
        let mut wrong = HeaderMap::new();
        wrong.insert(header::COOKIE, HeaderValue::from_static("shikong_liveview=fedcba9876543210"));
        assert_eq!(admit(key, &wrong, None), Admission::Refused);
    }
}
