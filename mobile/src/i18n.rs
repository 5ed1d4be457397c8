//! UI text, zh-CN first with English. One table so a missing translation is a compile-time
//! `match` arm, not a runtime surprise; text only, never concatenated with user data by position.

use serde::{Deserialize, Serialize};

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
        _ => (key, key),
    };
    match lang {
        Lang::Zh => zh,
        Lang::En => en,
    }
}
