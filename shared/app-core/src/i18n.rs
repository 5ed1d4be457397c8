//! UI text, zh-CN first with English, for every app built on the core. One table so a missing
//! translation is a `match` arm, not a runtime surprise; text only, never concatenated with user
//! data by position. [`error_text`] words an [`AppError`] for the message line, so the views never
//! show (or match) an error's English `Display`.

use serde::{Deserialize, Serialize};

use crate::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }
}

/// Text of `key` in `lang`; an unknown key shows itself (visible in tests, never blank).
pub fn tr(lang: Lang, key: &'static str) -> &'static str {
    let (zh, en) = match key {
        "app" => ("时空巡查", "Shikong Field"),
        "server" => ("服务器地址", "Server URL"),
        "username" => ("用户名", "Username"),
        "password" => ("密码", "Password"),
        "login" => ("登录", "Sign in"),
        "logout" => ("退出登录", "Sign out"),
        "scan_enrol" => ("扫码入网", "Scan enrolment QR"),
        "register" => ("市民注册", "Register as citizen"),
        "register_sent" => ("注册已提交，待管理员审核", "Registration sent; waiting for approval"),
        "tab_map" => ("地图", "Map"),
        "tab_collect" => ("采集", "Collect"),
        "tab_areas" => ("离线区域", "Offline areas"),
        "tab_sync" => ("同步", "Sync"),
        "tab_me" => ("我的", "Me"),
        "tab_report" => ("我要上报", "Report"),
        "tab_my_reports" => ("我的上报", "My reports"),
        "search" => ("搜索地名地址", "Search places"),
        "locate" => ("定位", "Locate me"),
        "layers" => ("图层", "Layers"),
        "measure_distance" => ("测距", "Distance"),
        "measure_area" => ("测面", "Area"),
        "clear" => ("清除", "Clear"),
        "favourite" => ("收藏", "Favourite"),
        "favourites" => ("收藏夹", "Favourites"),
        "area_search" => ("按行政区搜索", "Search an admin unit"),
        "area_rect" => ("框选当前地图范围", "Use the current map view"),
        "pick_layers" => ("选择图层", "Layers"),
        "estimate" => ("估算大小", "Estimate size"),
        "download" => ("下载", "Download"),
        "update" => ("更新", "Update"),
        "delete" => ("删除", "Delete"),
        "open" => ("打开", "Open"),
        "no_replicas" => ("还没有离线区域，请先下载", "No offline area yet: download one"),
        "features" => ("要素", "features"),
        "pending" => ("待上传", "pending upload"),
        "conflicts" => ("冲突", "conflicts"),
        "sync_now" => ("立即同步", "Sync now"),
        "auto_sync" => ("联网时自动同步", "Sync automatically when online"),
        "offline" => ("离线", "Offline"),
        "online" => ("在线", "Online"),
        "pushed" => ("上传", "pushed"),
        "pulled" => ("下载", "pulled"),
        "repaired" => ("核对后修复", "repaired after verification"),
        "keep_mine" => ("保留本机", "Keep mine"),
        "take_theirs" => ("采用对方", "Take theirs"),
        "leave_office" => ("留给内业处理", "Leave for the office"),
        "layer" => ("图层", "Layer"),
        "geometry_gps" => ("GPS 定位", "Use GPS"),
        "geometry_tap" => ("在地图上点选", "Tap on the map"),
        "photo" => ("拍照", "Take photo"),
        "scan_field" => ("扫码填入", "Scan into field"),
        "watermark" => ("照片水印", "Photo watermark"),
        "save" => ("保存", "Save"),
        "saved" => ("已保存，待同步", "Saved; waiting for sync"),
        "required" => ("必填", "required"),
        "history" => ("历史", "History"),
        "share" => ("分享二维码", "Share as QR"),
        "edit" => ("编辑", "Edit"),
        "category" => ("问题类别", "Category"),
        "description" => ("问题描述", "Description"),
        "address" => ("地址", "Address"),
        "submit" => ("提交上报", "Submit report"),
        "queued" => ("已保存，联网后自动提交", "Queued; sent when online"),
        "status" => ("办理状态", "Status"),
        "language" => ("English", "中文"),
        "settings" => ("设置", "Settings"),
        "location_source" => ("定位来源", "Location source"),
        "camera_source" => ("相机", "Camera"),
        "no_conflicts" => ("没有冲突", "No conflicts"),
        "confirmed" => ("服务器已确认", "confirmed by the server"),
        "unconfirmed" => ("等待服务器确认", "waiting for the server"),
        "size" => ("大小", "Size"),
        "basemap" => ("底图", "Basemap"),
        "tab_tasks" => ("任务", "Tasks"),
        "action" => ("操作", "Action"),
        "no_tasks" => ("暂无任务（同步后更新）", "No tasks (updated at sync)"),
        "overdue" => ("超期", "Overdue"),
        "deadline" => ("期限", "Deadline"),
        "on_map" => ("在地图上", "On the map"),
        "show_on_map" => ("在地图上查看", "Show on map"),
        "tasks_on_map" => ("任务", "Tasks"),
        "due_today" => ("今日到期", "Due today"),
        "due_later" => ("未到期", "Later"),
        "back" => ("返回", "Back"),
        "action_handle" => ("处置", "Handle"),
        "action_verify" => ("核查", "Verify"),
        "note" => ("说明", "Note"),
        "record_action" => ("记录（同步时发送）", "Record (sent at sync)"),
        "action_recorded" => ("已记录，同步时发送", "Recorded; sent at the next sync"),
        "queued_actions" => ("待发送", "Waiting to send"),
        "applied" => ("已生效", "Applied"),
        "rejected" => ("未通过", "Rejected"),
        "progress" => ("办理进度", "Progress"),
        "rate" => ("评价", "Rate"),
        "rated" => ("已评价，谢谢", "Rated, thank you"),
        _ => (key, key),
    };
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}

/// An action's error as the message line shows it, in `lang`. Errors of the shared crates (sync,
/// replica) carry their own precise English text; they get a translated lead.
pub fn error_text(lang: Lang, e: &AppError) -> String {
    let zh = lang == Lang::Zh;
    let pick = |zh_text: String, en_text: String| if zh { zh_text } else { en_text };
    match e {
        AppError::Input { field, message } => format!("{field}: {message}"),
        AppError::Form(list) => {
            let items = list.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; ");
            pick(format!("表单有误：{items}"), format!("The form has problems: {items}"))
        }
        AppError::NotSignedIn => pick("未登录".into(), "Not signed in".into()),
        AppError::Offline => pick("离线：无法连接服务器".into(), "Offline: the server cannot be reached".into()),
        AppError::NoArea { id } => pick(format!("没有离线区域“{id}”"), format!("No offline area `{id}`")),
        AppError::NoActiveArea => pick("没有打开的离线区域".into(), "No offline area is open".into()),
        AppError::NoGazetteer { area } => {
            pick(format!("离线区域“{area}”没有地名地址库"), format!("Offline area `{area}` carries no gazetteer"))
        }
        AppError::Unsent { pending, photos, .. } => pick(
            format!("还有 {pending} 条编辑和 {photos} 张照片未上传"),
            format!("{pending} edits and {photos} photos are not uploaded yet"),
        ),
        AppError::NoFix => pick("暂无定位".into(), "No position fix yet".into()),
        AppError::QrNotFound => pick("图片中没有二维码".into(), "No QR code found in the image".into()),
        AppError::QrUnreadable { reason } => {
            pick(format!("二维码无法识别：{reason}"), format!("The QR code cannot be read: {reason}"))
        }
        AppError::QrEncode { reason, .. } => {
            pick(format!("无法生成二维码：{reason}"), format!("Cannot draw the QR code: {reason}"))
        }
        AppError::Link(l) => pick(format!("二维码内容无效：{l}"), format!("Not a shikong QR code: {l}")),
        AppError::Image { name, reason } => pick(format!("图片 {name}：{reason}"), format!("Image {name}: {reason}")),
        AppError::Track { path, reason } => pick(
            format!("轨迹文件 {}：{reason}", path.display()),
            format!("Position track {}: {reason}", path.display()),
        ),
        AppError::Camera { folder, reason } => {
            pick(format!("相机 {}：{reason}", folder.display()), format!("Camera {}: {reason}", folder.display()))
        }
        AppError::SecureStorage { key, reason } => {
            pick(format!("安全存储 {key}：{reason}"), format!("Secure storage {key}: {reason}"))
        }
        AppError::Corrupt { path, reason } => pick(
            format!("文件已损坏 {}：{reason}", path.display()),
            format!("Damaged file {}: {reason}", path.display()),
        ),
        AppError::BadConflict { layer, field, reason } => {
            pick(format!("冲突无法处理（{layer}.{field}）：{reason}"), format!("Conflict on {layer}.{field}: {reason}"))
        }
        AppError::Io { path, source } => pick(
            format!("读写失败 {}：{source}", path.display()),
            format!("Cannot read or write {}: {source}", path.display()),
        ),
        AppError::Interrupted(m) => pick(format!("操作意外中止：{m}"), format!("The action stopped unexpectedly: {m}")),
        AppError::Sync(s) => pick(format!("同步失败：{s}"), format!("Sync failed: {s}")),
        AppError::Replica(r) => pick(format!("离线数据：{r}"), format!("Offline data: {r}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_in_both_languages() {
        let e = AppError::Unsent { area: "a".into(), pending: 2, photos: 1 };
        assert_eq!(error_text(Lang::Zh, &e), "还有 2 条编辑和 1 张照片未上传");
        assert_eq!(error_text(Lang::En, &e), "2 edits and 1 photos are not uploaded yet");
        assert_eq!(error_text(Lang::Zh, &AppError::input("server", "required")), "server: required");
        assert_eq!(tr(Lang::En, "tab_sync"), "Sync");
        assert_eq!(tr(Lang::Zh, "no such key"), "no such key");
    }
}
