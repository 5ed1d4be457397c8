//! Account status (disabling, the last admin, citizen registration, password changes) and the
//! login lockout.

use super::*;

both! {
fn disabling_revokes_tokens_and_blocks_login() {
    let f = fx();
    f.add("张三", Role::Inspector);
    let tok = f.login("张三");
    let u = f.store.disable_user(&f.admin, "张三", Some("left the company")).unwrap();
    assert_eq!((u.status, u.status_reason.as_deref()), (UserStatus::Disabled, Some("left the company")));
    assert_eq!(err(f.store.verify(tok.secret.expose())), (ErrorKind::Unauthorized, "user `张三` is disabled".into()));
    assert_eq!(err(f.store.login(&creds("张三"), &Client::default())).1, "user `张三` is disabled");
    assert_eq!(
        err(f.store.disable_user(&f.admin, "张三", None)),
        (ErrorKind::Conflict, "user `张三` is disabled; cannot disable".into())
    );
    f.store.enable_user(&f.admin, "张三").unwrap();
    // Old tokens stay revoked; a new login works.
    assert_eq!(
        err(f.store.verify(tok.secret.expose())).1,
        "token was revoked at 2025-03-01T01:00:00Z (user disabled); log in again"
    );
    f.login("张三");
}}

both! {
fn the_last_admin_cannot_be_removed() {
    let f = fx();
    let msg = "`root` is the last active admin; add or enable another admin first";
    assert_eq!(err(f.store.disable_user(&f.admin, "root", None)), (ErrorKind::Conflict, msg.into()));
    assert_eq!(err(f.store.set_role(&f.admin, "root", Role::Office)).1, msg);
    f.add("root2", Role::Admin);
    f.store.set_role(&f.admin, "root", Role::Office).unwrap();
}}

both! {
fn citizen_registration_needs_approval() {
    let f = fx();
    let reg = Registration {
        username: "市民王五".into(),
        password: "我的密码很安全吧".into(),
        display_name: Some("王五".into()),
        contact: Some("13800000000".into()),
    };
    f.store.register_citizen(&reg, &from_addr("203.0.113.9:40000")).unwrap();
    let u = f.store.user(&f.admin, "市民王五").unwrap();
    assert_eq!((u.role, u.status, u.contact.as_deref()), (Role::Citizen, UserStatus::Pending, Some("13800000000")));
    let c = Credentials { username: "市民王五", password: "我的密码很安全吧", device: None };
    assert_eq!(
        err(f.store.login(&c, &Client::default())),
        (ErrorKind::Forbidden, "registration of `市民王五` is awaiting approval by an administrator".into())
    );
    let pending = f.store.list_users(&f.admin, Some(UserStatus::Pending)).unwrap();
    assert_eq!(pending.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), ["市民王五"]);
    // A citizen cannot approve anyone, not even themself.
    let cit = f.user("citizen1", Role::Citizen);
    assert_eq!(err(f.store.approve_user(&cit, "市民王五")).0, ErrorKind::Forbidden);
    f.store.approve_user(&f.admin, "市民王五").unwrap();
    assert_eq!(f.store.login(&c, &Client::default()).unwrap().principal.role, Role::Citizen);
    // Registering the same name again: the same answer (names are not revealed), nothing created,
    // the account untouched, and a `failed` row for the administrators.
    let other = Registration { password: "另一个人的密码123".into(), contact: None, ..reg.clone() };
    f.store.register_citizen(&other, &Client::default()).unwrap();
    assert_eq!(f.store.user(&f.admin, "市民王五").unwrap().status, UserStatus::Active);
    f.store.login(&c, &Client::default()).unwrap();
    assert_eq!(
        f.audit_lines().iter().filter(|l| l.starts_with("user.")).cloned().collect::<Vec<_>>(),
        [
            "user.add ok root",
            "user.register ok 市民王五",
            "user.add ok citizen1",
            "user.approve denied 市民王五",
            "user.approve ok 市民王五",
            "user.register failed 市民王五"
        ]
    );
}}

both! {
fn rejected_registrations_say_why() {
    let f = fx();
    let reg = Registration { username: "zhao6".into(), password: "password123".into(), ..Registration::default() };
    f.store.register_citizen(&reg, &Client::default()).unwrap();
    assert_eq!(err(f.store.reject_user(&f.admin, "zhao6", "")).0, ErrorKind::BadRequest);
    f.store.reject_user(&f.admin, "zhao6", "请使用实名注册").unwrap();
    let c = Credentials { username: "zhao6", password: "password123", device: None };
    assert_eq!(
        err(f.store.login(&c, &Client::default())),
        (ErrorKind::Forbidden, "registration of `zhao6` was rejected: 请使用实名注册".into())
    );
    // Wrong password: the account's state is not revealed.
    let wrong = Credentials { password: "password124", ..c };
    assert_eq!(err(f.store.login(&wrong, &Client::default())).1, "wrong username or password");
    assert_eq!(err(f.store.reject_user(&f.admin, "zhao6", "again")).1, "user `zhao6` is rejected; cannot reject");
    // An admin may still approve a rejected registration.
    f.store.approve_user(&f.admin, "zhao6").unwrap();
    f.store.login(&c, &Client::default()).unwrap();
}}

both! {
fn registration_can_be_turned_off() {
    let f = fx();
    let store = f.store.with_config(AuthConfig { citizen_registration: false, ..config() });
    let reg = Registration { username: "zhao6".into(), password: "password123".into(), ..Registration::default() };
    assert_eq!(
        err(store.register_citizen(&reg, &Client::default())),
        (
            ErrorKind::Forbidden,
            "self-registration is turned off on this server; ask an administrator for an account".into()
        )
    );
    assert_eq!(store.register_citizen(&reg, &Client::default()).unwrap_err().code(), "registration_closed");
}}

both! {
fn passwords_change_and_reset() {
    let f = fx();
    f.add("张三", Role::Inspector);
    let (a, b) = (f.login("张三"), f.login("张三"));
    let me = Actor::user(a.principal.clone());
    assert_eq!(
        err(f.store.change_password(&me, "not it at all", "new password 1")),
        (ErrorKind::Forbidden, "the current password is wrong".into())
    );
    assert_eq!(err(f.store.change_password(&me, PW, "张三")).0, ErrorKind::BadRequest);
    f.store.change_password(&me, PW, "new password 1").unwrap();
    // The token in use survives; the other one is revoked; the old password no longer works.
    assert!(f.store.verify(a.secret.expose()).is_ok());
    assert!(matches!(f.store.verify(b.secret.expose()), Err(AuthError::TokenRevoked { .. })));
    assert!(matches!(f.store.login(&creds("张三"), &Client::default()), Err(AuthError::InvalidCredentials)));
    let c = Credentials { username: "张三", password: "new password 1", device: None };
    f.store.login(&c, &Client::default()).unwrap();
    // An admin reset revokes everything.
    f.store.reset_password(&f.admin, "张三", "reset password 2").unwrap();
    assert!(matches!(f.store.verify(a.secret.expose()), Err(AuthError::TokenRevoked { .. })));
    assert_eq!(err(f.store.reset_password(&me, "root", "reset password 2")).0, ErrorKind::Forbidden);
    assert_eq!(err(f.store.change_password(&Actor::local("cli"), PW, "x")).0, ErrorKind::Unauthorized);
}}

// ---- lockout ----

both! {
fn five_failures_lock_the_username_for_fifteen_minutes() {
    let f = fx();
    f.add("张三", Role::Inspector);
    let wrong = Credentials { password: "wrong password", ..creds("张三") };
    for _ in 0..5 {
        assert!(matches!(f.store.login(&wrong, &Client::default()), Err(AuthError::InvalidCredentials)));
        f.advance(SignedDuration::from_secs(10));
    }
    // Even the right password is refused now, without being checked.
    assert_eq!(
        err(f.store.login(&creds("张三"), &Client::default())),
        (ErrorKind::TooManyRequests, "too many failed logins for `张三`; try again after 2025-03-01T01:15:40Z".into())
    );
    f.clock.set(t("2025-03-01T01:15:39.999Z"));
    assert!(matches!(f.store.login(&creds("张三"), &Client::default()), Err(AuthError::LockedOut { .. })));
    f.clock.set(t("2025-03-01T01:15:40Z"));
    f.login("张三");
    // Success cleared the count: one more failure does not lock.
    assert!(matches!(f.store.login(&wrong, &Client::default()), Err(AuthError::InvalidCredentials)));
    f.login("张三");
    let locked = f.audit(AuditQuery { outcome: Some(Outcome::Denied), ..AuditQuery::default() });
    assert_eq!(locked.len(), 2);
    assert!(locked.iter().all(|e| e.action == AuditAction::LoginFailed && e.user.as_deref() == Some("张三")));
}}

both! {
fn unknown_usernames_lock_too_and_other_users_are_unaffected() {
    let f = fx();
    f.add("张三", Role::Inspector);
    for _ in 0..5 {
        let _ = f.store.login(&creds("Ghost"), &Client::default());
    }
    assert!(matches!(f.store.login(&creds("ghost"), &Client::default()), Err(AuthError::LockedOut { .. })));
    f.login("张三");
}}

both! {
fn logins_are_throttled_per_address_before_hashing() {
    let f = fx();
    let store = f.store.with_config(AuthConfig {
        throttle: crate::ThrottlePolicy {
            login_per_address: crate::RatePolicy::new(3, SignedDuration::from_mins(3)),
            ..crate::ThrottlePolicy::default()
        },
        ..config()
    });
    let from = from_addr("203.0.113.9:40000");
    for i in 0..3 {
        let c = Credentials { username: &format!("guess{i}"), password: "x", device: None };
        assert_eq!(err(store.login(&c, &from)).0, ErrorKind::Unauthorized);
    }
    let e = store.login(&creds("root"), &from).unwrap_err();
    assert_eq!((e.kind(), e.code()), (ErrorKind::TooManyRequests, "throttled"));
    assert_eq!(e.retry_at(), Some(t("2025-03-01T01:01:00Z")));
    // Another port of the same address is the same client; another address is not.
    assert!(store.login(&creds("root"), &from_addr("203.0.113.9:1")).is_err());
    store.login(&creds("root"), &from_addr("203.0.113.10:1")).unwrap();
    f.clock.advance(SignedDuration::from_mins(1));
    store.login(&creds("root"), &from).unwrap();
}}

both! {
fn registrations_are_throttled_per_address_and_per_username() {
    let f = fx();
    let reg =
        |name: &str| Registration { username: name.into(), password: "password123".into(), ..Registration::default() };
    for i in 0..3 {
        f.store.register_citizen(&reg("zhao6"), &from_addr(&format!("10.0.0.{i}:1"))).unwrap();
    }
    let e = f.store.register_citizen(&reg("ZHAO6"), &from_addr("10.0.0.9:1")).unwrap_err();
    assert_eq!(e.to_string(), "too many registrations for this username; try again after 2025-03-01T01:20:00Z");
    for i in 0..5 {
        f.store.register_citizen(&reg(&format!("li{i}")), &from_addr("10.0.1.1:1")).unwrap();
    }
    let e = f.store.register_citizen(&reg("li9"), &from_addr("10.0.1.1:1")).unwrap_err();
    assert_eq!(e.code(), "throttled");
}}
