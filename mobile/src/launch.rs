//! Starting the app: the desktop window (wry webview) or the liveview server (the same views,
//! rendered in the process and shown by any browser over a WebSocket — what the end-to-end test
//! drives in headless Chromium). Both start the loopback map server first.

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
/// address once it listens (port 0 picks one).
#[cfg(feature = "liveview")]
pub async fn liveview(
    device: shikong_app_core::Device,
    addr: std::net::SocketAddr,
    ready: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    use crate::mapserver::{MapServer, MapSources};
    use dioxus_liveview::LiveviewRouter as _;
    let map = MapServer::start(MapSources::default()).await?;
    let device = std::sync::Arc::new(std::sync::Mutex::new(device));
    let app = axum::Router::new().with_virtual_dom("/", move || {
        virtual_dom(crate::views::AppContext {
            device: device.clone(),
            map: map.clone(),
            start: crate::views::Screen::Map,
        })
    });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    ready(listener.local_addr()?);
    axum::serve(listener, app.into_make_service()).await?;
    Ok(())
}
