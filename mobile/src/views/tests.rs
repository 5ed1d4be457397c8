//! The views rendered in-process (VirtualDom + SSR) over a device in a temporary folder: what a
//! screen shows comes from the core's state, in the user's language, per role. No server, no
//! map server running (the views only need its address).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use dioxus::prelude::*;
use shikong_app_core::i18n::Lang;
use shikong_app_core::platform::{ImageFolder, ManualLocation, Switchable};
use shikong_app_core::{Device, Session};

use super::{App, AppContext, Screen};
use crate::mapserver::{MapServer, MapSources};

fn device(dir: &std::path::Path, role: Option<&str>) -> Device {
    let mut d = Device::open(
        dir,
        Arc::new(ManualLocation::default()),
        Arc::new(ImageFolder::new(dir.join("camera"))),
        Arc::new(Switchable::default()),
    )
    .unwrap();
    d.settings.session = role.map(|role| Session {
        server: "http://127.0.0.1:9".into(),
        token: "t".into(),
        username: "张三".into(),
        role: role.into(),
        expires_at: "2026-12-31".into(),
        device: None,
    });
    d
}

fn render(d: Device, start: Screen) -> String {
    let map = MapServer { addr: "127.0.0.1:9".parse().unwrap(), secret: "s".into(), sources: MapSources::default() };
    let ctx = AppContext { device: Arc::new(Mutex::new(d)), map, start };
    let mut dom = VirtualDom::new(App).with_root_context(ctx);
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

#[test]
fn signed_out_shows_the_sign_in_screen() {
    let dir = tempfile::tempdir().unwrap();
    let html = render(device(dir.path(), None), Screen::Map);
    assert!(html.contains("data-testid=\"login\"") && html.contains("登录") && html.contains("扫码入网"), "{html}");
    let mut d = device(dir.path(), None);
    d.settings.lang = Lang::En;
    let html = render(d, Screen::Map);
    assert!(html.contains("Sign in") && !html.contains("登录"), "{html}");
}

#[test]
fn an_inspector_gets_the_field_tabs() {
    let dir = tempfile::tempdir().unwrap();
    let html = render(device(dir.path(), Some("inspector")), Screen::Areas);
    assert!(html.contains("data-testid=\"map\"") && html.contains("离线区域") && !html.contains("我要上报"), "{html}");
    assert!(html.contains("还没有离线区域"), "the areas list is empty: {html}");
    let html = render(device(dir.path(), Some("inspector")), Screen::Me);
    assert!(html.contains("张三") && html.contains("手动定位"), "{html}");
}

#[test]
fn a_citizen_gets_the_report_tabs() {
    let dir = tempfile::tempdir().unwrap();
    let html = render(device(dir.path(), Some("citizen")), Screen::Map);
    assert!(html.contains("我要上报") && html.contains("我的上报") && !html.contains("离线区域"), "{html}");
    assert!(html.contains("待提交 / queued: 0"), "{html}");
}
