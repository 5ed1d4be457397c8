//! The office's web view of cases (办公端案件页面), until the desktop app exists: a sign-in page,
//! a case list with the common filters, and a case page with its transitions, rejected offline
//! actions and evidence photos. Server-rendered like `html.rs`: no scripts, nothing external.
//!
//! Browsers cannot send a bearer header from a link, so signing in here sets the session token as
//! an `HttpOnly; SameSite=Strict` cookie, and `access.rs` accepts that cookie for GET and HEAD
//! only: every page is a read, and no state-changing route ever trusts a cookie (no CSRF surface).
//! The pages render what the JSON routes answer for the same caller (`list`, `one`), so they
//! cannot show more than the API would.

use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shikong_auth::Credentials;
use shikong_protocol::api::cases as wire;

use super::{list, one};
use crate::access::{Caller, SESSION_COOKIE};
use crate::html::{esc, page};
use crate::problem::{ApiError, ApiResult};
use crate::{AppState, auth_routes};

fn html(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

fn login_form(message: Option<&str>) -> String {
    let note = message.map(|m| format!("<p style=\"color:#b00\">{}</p>", esc(m))).unwrap_or_default();
    page(
        "办公登录 Office sign-in",
        &[],
        &format!(
            "<h1>办公登录 <span class=en>Office sign-in</span></h1>{note}\
             <form method=\"post\" action=\"/office/login\">\
             <p><label>用户名 <span class=en>Username</span><br><input name=\"username\" required maxlength=\"64\" autocomplete=\"username\"></label></p>\
             <p><label>密码 <span class=en>Password</span><br><input name=\"password\" type=\"password\" required maxlength=\"256\" autocomplete=\"current-password\"></label></p>\
             <p><button type=\"submit\">登录 Sign in</button></p></form>"
        ),
    )
}

pub async fn login_page() -> Response {
    html(StatusCode::OK, login_form(None))
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// Signs in (throttled and audited like `POST /auth/login`) and sets the session cookie.
pub async fn login(State(state): State<AppState>, caller: Caller, Form(f): Form<LoginForm>) -> Response {
    let auth = state.auth.clone();
    let client = caller.client.clone();
    let issued = auth_routes::hashing(move || {
        let creds = Credentials { username: &f.username, password: &f.password, device: None };
        Ok(auth.login(&creds, &client)?)
    })
    .await;
    let issued = match issued {
        Ok(i) => i,
        Err(e) => return html(e.status, login_form(Some(&e.detail))),
    };
    if !matches!(issued.principal.role, shikong_auth::Role::Office | shikong_auth::Role::Admin) {
        return html(
            StatusCode::FORBIDDEN,
            login_form(Some("这些页面供内业人员使用 (office staff and administrators only)")),
        );
    }
    let secure = if state.config.tls || state.config.public_url.as_deref().is_some_and(|u| u.starts_with("https:")) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/{secure}", issued.secret.expose());
    let mut resp = see_other("/office/cases");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// An error page, or the sign-in page when signing in could help.
fn error_page(e: ApiError) -> Response {
    if e.status == StatusCode::UNAUTHORIZED {
        return see_other("/office/login");
    }
    html(e.status, page("错误 Error", &[("/office/cases", "案件 Cases")], &format!("<p>{}</p>", esc(&e.detail))))
}

async fn json_of<T: serde::de::DeserializeOwned>(r: ApiResult<Response>) -> ApiResult<T> {
    let r = r?;
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX).await.map_err(ApiError::internal)?;
    serde_json::from_slice(&bytes).map_err(ApiError::internal)
}

fn opt(s: &Option<String>) -> String {
    s.as_deref().map(esc).unwrap_or_default()
}

pub async fn cases_page(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> Response {
    let list: wire::CaseList = match json_of(list(State(state), caller, RawQuery(q.clone())).await).await {
        Ok(l) => l,
        Err(e) => return error_page(e),
    };
    let mut body = String::from(
        "<h1>案件 <span class=en>Cases</span></h1>\
         <form method=\"get\" action=\"/office/cases\">状态 <span class=en>State</span> \
         <select name=\"status\"><option value=\"\">全部 all</option>",
    );
    for (code, label) in [
        ("reported", "信息收集"),
        ("accepted", "已受理"),
        ("registered", "已立案"),
        ("dispatched", "已派遣"),
        ("handled", "已处置"),
        ("verified", "已核查"),
        ("suspended", "挂账"),
        ("closed", "已结案"),
    ] {
        let _ = write!(body, "<option value=\"{code}\">{label} {code}</option>");
    }
    body.push_str(
        "</select> <label><input type=\"checkbox\" name=\"overdue\" value=\"true\"> 超期 <span class=en>overdue</span></label> \
         <button type=\"submit\">筛选 Filter</button></form>",
    );
    let _ = write!(
        body,
        "<p>{} 件 <span class=en>cases</span>{}</p>",
        list.number_returned,
        if list.more { "（还有更多 more）" } else { "" }
    );
    body.push_str("<table><tr><th>编号 No.</th><th>状态 State</th><th>小类 Class</th><th>问题描述 Description</th><th>处置人 Assignee</th><th>本阶段时限 Deadline</th><th>超期 Overdue</th></tr>");
    for c in &list.cases {
        let _ = write!(
            body,
            "<tr><td><a href=\"/office/cases/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.id),
            esc(&c.case_no),
            esc(&c.state_label),
            opt(&c.class),
            opt(&c.description),
            opt(&c.assignee),
            opt(&c.stage_deadline),
            if c.overdue { "超期" } else { "" }
        );
    }
    body.push_str("</table><form method=\"post\" action=\"/office/logout\"><p><button type=\"submit\">退出 Sign out</button></p></form>");
    html(StatusCode::OK, page("案件 Cases", &[("/office/cases", "案件 Cases")], &body))
}

pub async fn case_page(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Response {
    let c: wire::CaseDoc = match json_of(one(State(state), caller, Path(id), RawQuery(None)).await).await {
        Ok(c) => c,
        Err(e) => return error_page(e),
    };
    let mut body = format!("<h1>案件 {} <span class=en>Case</span></h1><table>", esc(&c.case_no));
    let rows: [(&str, String); 9] = [
        ("状态 State", esc(&c.state_label)),
        ("业务流 Flow", format!("{} v{}", esc(&c.flow.id), c.flow.version)),
        ("小类 Class", opt(&c.class)),
        ("问题描述 Description", opt(&c.description)),
        ("来源 Source", format!("{} {}", esc(&c.source), opt(&c.source_ref))),
        ("处置人 Assignee", opt(&c.assignee)),
        ("上报人 Reporter", opt(&c.reporter)),
        ("本阶段开始 Stage started", esc(&c.stage_started)),
        (
            "本阶段时限 Deadline",
            format!("{}{}", opt(&c.stage_deadline), if c.overdue { "（超期 overdue）" } else { "" }),
        ),
    ];
    for (k, v) in rows {
        let _ = write!(body, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    body.push_str("</table><h2>办理过程 <span class=en>Transitions</span></h2><table><tr><th>时间 Time</th><th>操作 Action</th><th>人员 Actor</th><th>从 From</th><th>到 To</th><th>处置人 Assignee</th><th>意见 Note</th><th>照片 Photos</th></tr>");
    for t in &c.transitions {
        let photos: String = t
            .photos
            .iter()
            .map(|sha| format!("<a href=\"/sync/blobs/{0}\">{1}</a> ", esc(sha), esc(&sha[..sha.len().min(8)])))
            .collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{photos}</td></tr>",
            esc(&t.at),
            esc(&t.action),
            esc(&t.actor),
            esc(&t.from),
            esc(&t.to),
            opt(&t.assignee),
            opt(&t.note)
        );
    }
    body.push_str("</table>");
    if !c.rejected.is_empty() {
        body.push_str("<h2>未采纳的离线操作 <span class=en>Rejected offline actions</span></h2><table><tr><th>时间 Time</th><th>操作 Action</th><th>人员 Actor</th><th>到达时状态 State on arrival</th><th>原因 Reason</th></tr>");
        for r in &c.rejected {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.at),
                esc(&r.action),
                esc(&r.actor),
                esc(&r.state_at_arrival),
                esc(&r.reason)
            );
        }
        body.push_str("</table>");
    }
    html(StatusCode::OK, page(&format!("案件 {}", c.case_no), &[("/office/cases", "案件 Cases")], &body))
}

/// Ends the session: the token is revoked and the cookie cleared.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = crate::access::session_cookie(&headers) {
        let auth = state.auth.clone();
        let _ = crate::blocking(move || {
            let p = auth.verify(&token)?;
            Ok(auth.logout(&shikong_auth::Actor::user(p))?)
        })
        .await;
    }
    let mut resp = see_other("/office/login");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(concat!("sk_session", "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")),
    );
    resp
}
