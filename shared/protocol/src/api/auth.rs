//! Sign-in and accounts: `/auth/*` (password login, enrolment with a one-time code, citizen
//! self-registration, who am I) and the administration routes that answer with users, devices
//! and layer rules. The device's sign-in screen and the server's auth handlers share these, so a
//! token or role the server renames fails to compile in the app instead of signing in nobody.
//!
//! Roles (`admin`, `office`, `inspector`, `citizen`) and user states (`active`, `pending`,
//! `rejected`, `disabled`) travel as text: the server's auth crate owns those vocabularies.
//! Request bodies refuse unknown members (a typo is a 400, not a silently ignored option);
//! answers accept them, so a later server may add some.

use serde::{Deserialize, Serialize};

/// `POST /auth/login` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// The device id (UUID) of an enrolled device signing in with a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// The user a token was issued to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUser {
    pub username: String,
    pub role: String,
}

/// `POST /auth/login` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// The bearer token (shown once).
    pub token: String,
    /// Beijing time (RFC 3339 with `+08:00`).
    pub expires_at: String,
    pub user: TokenUser,
}

fn unknown_platform() -> String {
    "unknown".into()
}

/// A device as it introduces itself: `device` of `POST /auth/enrol`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceInfo {
    /// A label for people (张三的手机).
    pub name: String,
    /// `android`, `ios`, `linux` … (`unknown` when not given).
    #[serde(default = "unknown_platform")]
    pub platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_id: Option<String>,
}

/// `POST /auth/enrol` body: a one-time code (from the administrator's QR code) and the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    pub code: String,
    pub device: DeviceInfo,
}

/// `POST /auth/enrol` answer: a device token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolResponse {
    pub token: String,
    /// Beijing time.
    pub expires_at: String,
    /// The new device's id (UUID).
    pub device: String,
    pub user: TokenUser,
}

/// `POST /auth/register` body: a citizen's self-registration (usable once approved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub username: String,
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// A phone number or e-mail address for the office.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

/// A user account as the server shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub username: String,
    pub display_name: Option<String>,
    pub role: String,
    pub status: String,
    /// Why the account was rejected or disabled.
    pub status_reason: Option<String>,
    pub groups: Vec<String>,
    /// Beijing time.
    pub created_at: String,
}

/// `POST /auth/register` answer (202): the registration was received and waits for review. The
/// same answer whether or not the name was free (a taken name creates nothing and is logged for
/// the administrators), so registration does not reveal which usernames exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResponse {
    /// The username asked for.
    pub username: String,
    /// Always `pending`: nothing is usable before an administrator approves it.
    pub status: String,
    pub message: String,
}

/// `GET /auth/me` answer: who the token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeResponse {
    pub username: String,
    pub role: String,
    pub groups: Vec<String>,
    /// The device id when the token is a device token.
    pub device: Option<String>,
}

/// `POST /auth/enrolments` body (empty body: for the caller).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentRequest {
    /// The user the code enrols a device for (administrators only; default: the caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// A QR code: the text it carries and its SVG drawing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrCode {
    /// The `shikong://enrol?…` link.
    pub payload: String,
    pub svg: String,
}

/// `POST /auth/enrolments` JSON answer (201): a one-time code and its QR code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentCreated {
    pub code: String,
    pub username: String,
    /// Beijing time.
    pub expires_at: String,
    pub qr: QrCode,
}

/// `POST /devices` body: a device to register for the caller, and the caller's password. The
/// answer holds a device token that lasts for months, so a bearer token alone (a stolen one, or
/// a 12-hour session) is not enough to mint one: the password is asked again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterDeviceRequest {
    pub name: String,
    #[serde(default = "unknown_platform")]
    pub platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_id: Option<String>,
    /// The caller's password (re-authentication).
    pub password: String,
}

/// `POST /devices` answer (201): the registered device and its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRegistered {
    pub device: String,
    pub name: String,
    pub token: String,
    /// Beijing time.
    pub expires_at: String,
}

/// One device of `GET /devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEntry {
    pub device: String,
    pub username: String,
    pub name: String,
    pub platform: String,
    /// Beijing time.
    pub created_at: String,
    pub revoked: bool,
}

/// `GET /devices` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceList {
    pub devices: Vec<DeviceEntry>,
}

/// `GET /admin/users` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserInfo>,
}

/// The answer of every route that changes one user (add, approve, reject, disable, enable, role).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserChanged {
    pub user: UserInfo,
}

/// `POST /admin/users` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub username: String,
    pub role: String,
    pub password: String,
}

/// `POST /admin/users/{name}/reject|disable` body (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `PUT /admin/users/{name}/role` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    pub role: String,
}

/// `PUT /admin/layers/{layer}/rules` body: who (`role:citizen`, `user:张三`, `group:…`) may do
/// what (`read,create,…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleRequest {
    pub subject: String,
    pub grants: String,
}

/// A layer permission rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    pub layer: String,
    pub subject: String,
    pub grants: String,
}

/// `GET /admin/layers/{layer}/rules` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleList {
    pub rules: Vec<RuleInfo>,
}

/// `PUT /admin/layers/{layer}/rules` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleChanged {
    pub rule: RuleInfo,
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::api::golden;

    fn user() -> UserInfo {
        UserInfo {
            username: "市民小赵".into(),
            display_name: None,
            role: "citizen".into(),
            status: "pending".into(),
            status_reason: None,
            groups: vec![],
            created_at: "2025-06-01T10:00:00+08:00".into(),
        }
    }

    #[test]
    fn login() {
        golden(
            LoginRequest { username: "zhang".into(), password: "pw".into(), device: None },
            r#"{"username":"zhang","password":"pw"}"#,
        );
        golden(
            LoginResponse {
                token: "sk_abc".into(),
                expires_at: "2025-06-08T10:00:00+08:00".into(),
                user: TokenUser { username: "zhang".into(), role: "inspector".into() },
            },
            r#"{"token":"sk_abc","expires_at":"2025-06-08T10:00:00+08:00","user":{"username":"zhang","role":"inspector"}}"#,
        );
        assert!(serde_json::from_str::<LoginRequest>(r#"{"username":"a","password":"b","remember":true}"#).is_err());
    }

    #[test]
    fn enrol() {
        golden(
            EnrolRequest {
                code: "Ab3-x".into(),
                device: DeviceInfo { name: "张三的手机".into(), platform: "android".into(), hardware_id: None },
            },
            r#"{"code":"Ab3-x","device":{"name":"张三的手机","platform":"android"}}"#,
        );
        let d: DeviceInfo = serde_json::from_str(r#"{"name":"x"}"#).unwrap();
        assert_eq!(d.platform, "unknown");
        golden(
            EnrolResponse {
                token: "sk_dev".into(),
                expires_at: "2026-06-01T10:00:00+08:00".into(),
                device: "0192f3c4-0000-7000-8000-000000000001".into(),
                user: TokenUser { username: "张三".into(), role: "inspector".into() },
            },
            r#"{"token":"sk_dev","expires_at":"2026-06-01T10:00:00+08:00","device":"0192f3c4-0000-7000-8000-000000000001","user":{"username":"张三","role":"inspector"}}"#,
        );
        golden(
            EnrolmentCreated {
                code: "Ab3-x".into(),
                username: "张三".into(),
                expires_at: "2025-06-02T10:00:00+08:00".into(),
                qr: QrCode { payload: "shikong://enrol?code=Ab3-x".into(), svg: "<svg/>".into() },
            },
            r#"{"code":"Ab3-x","username":"张三","expires_at":"2025-06-02T10:00:00+08:00","qr":{"payload":"shikong://enrol?code=Ab3-x","svg":"<svg/>"}}"#,
        );
        golden(EnrolmentRequest::default(), "{}");
    }

    #[test]
    fn register_and_me() {
        golden(
            RegisterRequest {
                username: "市民小赵".into(),
                password: "pw".into(),
                display_name: None,
                contact: Some("138-0000-0000".into()),
            },
            r#"{"username":"市民小赵","password":"pw","contact":"138-0000-0000"}"#,
        );
        golden(
            RegisterResponse {
                username: "市民小赵".into(),
                status: "pending".into(),
                message: "registration received".into(),
            },
            r#"{"username":"市民小赵","status":"pending","message":"registration received"}"#,
        );
        golden(
            MeResponse {
                username: "张三".into(),
                role: "inspector".into(),
                groups: vec!["洪山巡查".into()],
                device: None,
            },
            r#"{"username":"张三","role":"inspector","groups":["洪山巡查"],"device":null}"#,
        );
    }

    #[test]
    fn administration() {
        golden(
            UserList { users: vec![user()] },
            r#"{"users":[{"username":"市民小赵","display_name":null,"role":"citizen","status":"pending","status_reason":null,"groups":[],"created_at":"2025-06-01T10:00:00+08:00"}]}"#,
        );
        golden(
            UserChanged {
                user: UserInfo { status: "rejected".into(), status_reason: Some("重复".into()), ..user() }
            },
            r#"{"user":{"username":"市民小赵","display_name":null,"role":"citizen","status":"rejected","status_reason":"重复","groups":[],"created_at":"2025-06-01T10:00:00+08:00"}}"#,
        );
        golden(
            NewUserRequest { username: "li".into(), role: "office".into(), password: "pw".into() },
            r#"{"username":"li","role":"office","password":"pw"}"#,
        );
        golden(ReasonRequest { reason: Some("重复".into()) }, r#"{"reason":"重复"}"#);
        golden(RoleRequest { role: "office".into() }, r#"{"role":"office"}"#);
        golden(
            RuleRequest { subject: "role:citizen".into(), grants: "create".into() },
            r#"{"subject":"role:citizen","grants":"create"}"#,
        );
        let rule = RuleInfo { layer: "manhole".into(), subject: "role:citizen".into(), grants: "read".into() };
        golden(
            RuleList { rules: vec![rule.clone()] },
            r#"{"rules":[{"layer":"manhole","subject":"role:citizen","grants":"read"}]}"#,
        );
        golden(RuleChanged { rule }, r#"{"rule":{"layer":"manhole","subject":"role:citizen","grants":"read"}}"#);
        golden(
            RegisterDeviceRequest {
                name: "pad".into(),
                platform: "android".into(),
                hardware_id: None,
                password: "pw".into(),
            },
            r#"{"name":"pad","platform":"android","password":"pw"}"#,
        );
        let no_password = serde_json::from_str::<RegisterDeviceRequest>(r#"{"name":"pad"}"#).unwrap_err();
        assert!(no_password.to_string().contains("missing field `password`"), "{no_password}");
        golden(
            DeviceRegistered {
                device: "0192f3c4-0000-7000-8000-000000000001".into(),
                name: "pad".into(),
                token: "sk_dev".into(),
                expires_at: "2026-06-01T10:00:00+08:00".into(),
            },
            r#"{"device":"0192f3c4-0000-7000-8000-000000000001","name":"pad","token":"sk_dev","expires_at":"2026-06-01T10:00:00+08:00"}"#,
        );
        golden(
            DeviceList {
                devices: vec![DeviceEntry {
                    device: "0192f3c4-0000-7000-8000-000000000001".into(),
                    username: "张三".into(),
                    name: "pad".into(),
                    platform: "android".into(),
                    created_at: "2025-06-01T10:00:00+08:00".into(),
                    revoked: false,
                }],
            },
            r#"{"devices":[{"device":"0192f3c4-0000-7000-8000-000000000001","username":"张三","name":"pad","platform":"android","created_at":"2025-06-01T10:00:00+08:00","revoked":false}]}"#,
        );
    }
}
