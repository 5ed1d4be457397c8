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

/// An inspector's device with the area 洪山区 open, carrying `tasks`.
fn inspector_with_tasks(dir: &std::path::Path, tasks: Vec<shikong_app_core::TaskDoc>) -> Device {
    use shikong_app_core::testkit;
    let mut d = device(dir, Some("inspector"));
    testkit::replica(dir, "洪山区", 1);
    let list = shikong_protocol::api::tasks::TaskList {
        user: "张三".into(),
        as_of: "2026-12-07T09:00:00+08:00".into(),
        tasks,
    };
    testkit::tasks(dir, "洪山区", &list);
    d.set_active("洪山区").unwrap();
    d
}

#[test]
fn an_inspector_sees_the_tasks_by_deadline_with_overdue_marked() {
    use shikong_app_core::testkit::task;
    let dir = tempfile::tempdir().unwrap();
    let tasks = vec![
        task("c1", "2026-000001", Some("2099-01-02T10:00:00+08:00"), false),
        task("c2", "2026-000002", Some("2000-01-01T10:00:00+08:00"), false),
        task("c3", "2026-000003", Some("2099-01-01T10:00:00+08:00"), false),
    ];
    let d = inspector_with_tasks(dir.path(), tasks.clone());
    let html = render(d, Screen::Tasks);
    assert!(html.contains("data-testid=\"tab-tab_tasks\"") && html.contains(">任务<"), "{html}");
    let order: Vec<usize> = ["2026-000002", "2026-000003", "2026-000001"].iter().filter_map(|n| html.find(n)).collect();
    assert!(order.len() == 3 && order.windows(2).all(|w| w[0] < w[1]), "overdue first, then by deadline: {html}");
    assert_eq!(html.matches("data-testid=\"overdue\"").count(), 1, "{html}");
    assert!(html.contains("超期") && html.contains("期限: 2099-01-01T10:00:00+08:00"), "{html}");

    let dir_en = tempfile::tempdir().unwrap();
    let mut d = inspector_with_tasks(dir_en.path(), tasks);
    d.settings.lang = Lang::En;
    let html = render(d, Screen::Tasks);
    assert!(html.contains("Overdue") && html.contains("Deadline") && !html.contains("超期"), "{html}");
}

#[test]
fn an_inspector_without_tasks_is_told_so() {
    let dir = tempfile::tempdir().unwrap();
    let html = render(inspector_with_tasks(dir.path(), Vec::new()), Screen::Tasks);
    assert!(html.contains("data-testid=\"no-tasks\"") && html.contains("暂无任务"), "{html}");
}

/// The contexts the tabs provide (`Main` builds the same), over the device in the root context.
fn shared_for_tests() -> super::Shared {
    let ctx = use_context::<AppContext>();
    let core = use_hook(|| {
        let d = super::lock(&ctx.device);
        super::Core {
            device: CopyValue::new(ctx.device.clone()),
            state: Signal::new(d.state()),
            lang: Signal::new(d.lang()),
        }
    });
    let sh = super::Shared::use_new(core, Screen::Tasks, None);
    use_context_provider(|| sh);
    sh
}

/// The task page of the open area's first task, inside the contexts the tabs provide.
#[component]
fn FirstTaskPage() -> Element {
    let sh = shared_for_tests();
    let state = sh.core.state.read();
    let active = state.active.as_ref().unwrap();
    let item = active.tasks[0].clone();
    let actions = active.task_actions.clone();
    rsx! { super::tasks::TaskPage { item, actions, on_back: |_| {} } }
}

/// The map showing (measuring a distance when `measuring`), then the map reports a tap on the
/// marker of task `c2` (as `mobile-map.js` sends it); renders whatever screen that leads to.
#[component]
fn TappedTaskMarker(measuring: bool) -> Element {
    let sh = shared_for_tests();
    use_hook(move || {
        let (mut screen, mut tool) = (sh.screen, sh.tool);
        screen.set(Screen::Map);
        tool.set(if measuring { super::Tool::MeasureLine } else { super::Tool::Browse });
        let event = serde_json::from_str(r#"{"kind": "task", "id": "c2", "lon": 114.3, "lat": 30.5}"#).unwrap();
        super::shell::handle_map_event(sh, event);
    });
    match (sh.screen)() {
        Screen::Tasks => rsx! { super::tasks::TasksPanel {} },
        _ => rsx! { div { "data-testid": "still-on-the-map", "{(sh.points)().len()} 点" } },
    }
}

#[test]
fn the_map_shows_a_legend_of_the_task_markers_and_the_list_offers_show_on_map() {
    use shikong_app_core::testkit::task;
    let dir = tempfile::tempdir().unwrap();
    let mut nowhere = task("c3", "2026-000003", Some("2099-01-01T10:00:00+08:00"), false);
    nowhere.location = None;
    let tasks = vec![
        task("c1", "2026-000001", Some("2099-01-02T10:00:00+08:00"), false),
        task("c2", "2026-000002", Some("2000-01-01T10:00:00+08:00"), false),
        nowhere,
    ];
    let d = inspector_with_tasks(dir.path(), tasks.clone());
    // What the map draws: the core's FeatureCollection of the tasks with a location.
    let fc = shikong_app_core::tasks_geojson(&d.state().active.unwrap().tasks);
    let drawn: Vec<(&str, &str)> = fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["properties"]["case_no"].as_str().unwrap(), f["properties"]["urgency"].as_str().unwrap()))
        .collect();
    assert_eq!(drawn, [("2026-000002", "overdue"), ("2026-000001", "later")]);

    let html = render(d.clone(), Screen::Map);
    assert!(html.contains("data-testid=\"task-legend\"") && html.contains("任务: 2"), "{html}");
    assert!(html.contains("data-testid=\"legend-overdue\"") && html.contains(" 超期 1"), "{html}");
    assert!(html.contains(" 今日到期 0") && html.contains(" 未到期 1"), "{html}");

    let html = render(d, Screen::Tasks);
    assert_eq!(html.matches("data-testid=\"task-show-on-map\"").count(), 2, "not for the task without a place: {html}");
    assert!(html.contains(">在地图上查看<") && html.contains("dot dot-overdue"), "{html}");

    let dir_en = tempfile::tempdir().unwrap();
    let mut d = inspector_with_tasks(dir_en.path(), tasks);
    d.settings.lang = Lang::En;
    let html = render(d.clone(), Screen::Tasks);
    assert!(html.contains(">Show on map<") && !html.contains("在地图上查看"), "{html}");
    let html = render(d, Screen::Map);
    assert!(html.contains("Tasks: 2") && html.contains(" Overdue 1") && html.contains(" Later 1"), "{html}");
}

#[test]
fn no_legend_without_tasks_on_the_map() {
    let dir = tempfile::tempdir().unwrap();
    let html = render(inspector_with_tasks(dir.path(), Vec::new()), Screen::Map);
    assert!(!html.contains("task-legend"), "{html}");
}

#[test]
fn a_tapped_task_marker_opens_that_tasks_page() {
    use shikong_app_core::testkit::task;
    let dir = tempfile::tempdir().unwrap();
    let d = inspector_with_tasks(
        dir.path(),
        vec![
            task("c1", "2026-000001", Some("2099-01-02T10:00:00+08:00"), false),
            task("c2", "2026-000002", Some("2099-01-01T10:00:00+08:00"), false),
        ],
    );
    let map = MapServer { addr: "127.0.0.1:9".parse().unwrap(), secret: "s".into(), sources: MapSources::default() };
    let ctx = AppContext { device: Arc::new(Mutex::new(d)), map, start: Screen::Map };
    let tap = |measuring: bool| {
        let mut dom = VirtualDom::new_with_props(TappedTaskMarker, TappedTaskMarkerProps { measuring })
            .with_root_context(ctx.clone());
        dom.rebuild_in_place();
        dioxus_ssr::render(&dom)
    };
    let html = tap(false);
    assert!(html.contains("data-testid=\"task-page\"") && html.contains("2026-000002"), "{html}");
    assert!(!html.contains("2026-000001"), "that task's page, not the list: {html}");
    // Measuring: the tap is a vertex where the marker stands, and the map stays.
    let html = tap(true);
    assert!(html.contains("data-testid=\"still-on-the-map\"") && html.contains("1 点"), "{html}");
}

#[test]
fn the_task_page_shows_the_case_the_map_link_and_the_action_form_with_the_queue() {
    use shikong_app_core::testkit;
    let dir = tempfile::tempdir().unwrap();
    let d = inspector_with_tasks(dir.path(), vec![testkit::task("c1", "2026-000001", None, false)]);
    let photo = testkit::photo(&d);
    d.record_task("c1", "handle", "已清理", std::slice::from_ref(&photo)).unwrap();
    let map = MapServer { addr: "127.0.0.1:9".parse().unwrap(), secret: "s".into(), sources: MapSources::default() };
    let ctx = AppContext { device: Arc::new(Mutex::new(d)), map, start: Screen::Tasks };
    let mut dom = VirtualDom::new(FirstTaskPage).with_root_context(ctx);
    dom.rebuild_in_place();
    let html = dioxus_ssr::render(&dom);
    assert!(
        html.contains("data-testid=\"task-page\"") && html.contains("2026-000001") && html.contains("暴露垃圾"),
        "{html}"
    );
    assert!(html.contains("data-testid=\"task-on-map\"") && html.contains("在地图上"), "the task has a point: {html}");
    assert!(
        html.contains("data-testid=\"task-photo\"") && html.contains("拍照") && html.contains("记录（同步时发送）"),
        "{html}"
    );
    assert!(
        html.contains("data-testid=\"task-action\"") && html.contains("待发送") && html.contains("已清理"),
        "{html}"
    );
}

#[component]
fn OneReport(report: shikong_app_core::ReportStatus, lang: Lang) -> Element {
    rsx! { super::reports::ReportCard { report, lang, on_rate: |_| {} } }
}

#[test]
fn a_report_shows_its_case_steps_and_is_rated_only_after_closing() {
    use shikong_app_core::{CaseProgress, ProgressStep, ReportStatus};
    let step = |action: &str, label: &str, state: &str, at: &str| ProgressStep {
        action: action.into(),
        label: label.into(),
        state: state.into(),
        state_label: state.into(),
        at: at.into(),
    };
    let mut report = ReportStatus {
        status: "处理中".into(),
        description: "井盖破损".into(),
        created_at: "2026-12-07T09:00:00+08:00".into(),
        versions: "3".into(),
        case: Some(CaseProgress {
            case_no: "2026-000001".into(),
            state: "dispatched".into(),
            state_label: "已派遣（处置中）".into(),
            stage_deadline: None,
            steps: vec![
                step("accept", "受理", "accepted", "2026-12-07T09:10:00+08:00"),
                step("dispatch", "派遣", "dispatched", "2026-12-07T09:20:00+08:00"),
            ],
        }),
    };
    let html = |r: &ReportStatus, lang: Lang| {
        let mut dom = VirtualDom::new_with_props(OneReport, OneReportProps { report: r.clone(), lang });
        dom.rebuild_in_place();
        dioxus_ssr::render(&dom)
    };
    let open = html(&report, Lang::Zh);
    assert!(open.contains("已派遣（处置中）") && open.contains("data-testid=\"report-steps\""), "{open}");
    assert!(open.find("受理 · 2026-12-07T09:10").zip(open.find("派遣 · 2026-12-07T09:20")).is_some_and(|(a, b)| a < b));
    assert!(!open.contains("data-testid=\"report-rate\""), "no rating before closing: {open}");
    if let Some(c) = report.case.as_mut() {
        c.state = "closed".into();
        c.state_label = "已结案".into();
        c.steps.push(step("close", "结案", "closed", "2026-12-08T15:00:00+08:00"));
    }
    let closed = html(&report, Lang::Zh);
    assert!(
        closed.contains("已结案") && closed.contains("data-testid=\"report-rate\"") && closed.contains("评价"),
        "{closed}"
    );
    assert_eq!(closed.matches("data-testid=\"rate-").count(), 7, "five stars, a note, submit: {closed}");
    let en = html(&report, Lang::En);
    assert!(en.contains("Rate") && en.contains("Progress") && !en.contains("评价"), "{en}");
}

#[test]
fn the_task_list_shows_an_action_the_server_rejected_with_its_reason() {
    use shikong_app_core::testkit;
    use shikong_protocol::api::tasks::{TaskActionOutcome, TaskActionResult, TaskActionResults};
    let dir = tempfile::tempdir().unwrap();
    let mut d = inspector_with_tasks(dir.path(), vec![testkit::task("c1", "2026-000001", None, false)]);
    let photo = testkit::photo(&d);
    let queued = d.record_task("c1", "handle", "已清理", std::slice::from_ref(&photo)).unwrap();
    let html = render(d.clone(), Screen::Tasks);
    assert!(html.contains("待发送: 1") && html.contains("data-testid=\"task-action-status\">待发送"), "{html}");
    // The sync's answer: the office had sent the case back meanwhile.
    let mut r = shikong_replica::Replica::open(dir.path().join("replicas/洪山区.gpkg")).unwrap();
    let answer = TaskActionResults {
        results: vec![TaskActionResult {
            action_id: queued.action_id,
            case_id: "c1".into(),
            outcome: TaskActionOutcome::Rejected,
            kind: Some("wrong_state".into()),
            reason: Some("handle is not allowed in state returned".into()),
            state: Some("returned".into()),
        }],
    };
    r.apply_task_results(&answer).unwrap();
    d.set_active("洪山区").unwrap();
    let html = render(d, Screen::Tasks);
    assert!(html.contains(">未通过<") && html.contains("handle is not allowed in state returned"), "{html}");
    assert!(!html.contains("待发送: 1"), "nothing waits any more: {html}");
}
