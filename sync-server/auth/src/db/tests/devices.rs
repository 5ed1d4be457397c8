//! Devices and enrolment: tokens bound to a device, one-time enrolment codes.

use super::*;

both! {
fn devices_bind_tokens() {
    let f = fx();
    let me = f.user("张三", Role::Inspector);
    let d = f.store.register_device(&me, "张三", &phone()).unwrap();
    assert_eq!((d.username.as_str(), d.name.as_str(), d.revoked_at), ("张三", "张三的手机", None));
    // A login may bind its session token to the device.
    let tok = f.store.login(&Credentials { device: Some(d.id), ..creds("张三") }, &Client::default()).unwrap();
    assert_eq!(tok.principal.device, Some(d.id));
    assert_eq!(f.store.verify(tok.secret.expose()).unwrap().device, Some(d.id));
    // A long-lived device token.
    let dt = f.store.issue_device_token(&me, d.id, Some(PW)).unwrap();
    assert_eq!((dt.kind, dt.expires_at), (TokenKind::Device, t("2025-05-30T01:00:00Z")));
    // Someone else's device cannot be used or managed.
    let other = f.user("李四", Role::Inspector);
    let c = Credentials { device: Some(d.id), ..creds("李四") };
    assert_eq!(
        err(f.store.login(&c, &Client::default())),
        (ErrorKind::Forbidden, format!("device {} is not registered to `李四`", d.id))
    );
    assert_eq!(err(f.store.register_device(&other, "张三", &phone())).0, ErrorKind::Forbidden);
    assert_eq!(err(f.store.revoke_device(&other, d.id)).0, ErrorKind::Forbidden);
    assert_eq!(err(f.store.devices(&other, None)).0, ErrorKind::Forbidden);
    // Revoking the device revokes its tokens.
    f.advance(SignedDuration::from_mins(1));
    assert_eq!(f.store.revoke_device(&f.admin, d.id).unwrap(), 2);
    assert_eq!(
        err(f.store.verify(dt.secret.expose())).1,
        "token was revoked at 2025-03-01T01:01:00Z (device revoked); log in again"
    );
    assert_eq!(err(f.store.issue_device_token(&me, d.id, Some(PW))).0, ErrorKind::Conflict);
    let c = Credentials { device: Some(d.id), ..creds("张三") };
    assert_eq!(
        err(f.store.login(&c, &Client::default())),
        (ErrorKind::Conflict, format!("device {} is revoked", d.id))
    );
    let listed = f.store.devices(&me, Some("张三")).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked_at.is_some());
    assert_eq!(listed[0].last_seen_at, Some(t(START)));
    let bad = NewDevice { name: " ".into(), ..phone() };
    assert_eq!(err(f.store.register_device(&me, "张三", &bad)).0, ErrorKind::BadRequest);
}}

both! {
fn enrolment_codes_work_once() {
    let f = fx();
    f.add("张三", Role::Inspector);
    let code = f.store.create_enrolment(&f.admin, "张三", None).unwrap();
    assert_eq!(code.expires_at, t("2025-03-02T01:00:00Z"));
    let e = f.store.redeem_enrolment(code.secret.expose(), &phone(), &from_addr("10.1.1.1:1")).unwrap();
    assert_eq!(e.device.username, "张三");
    assert_eq!(e.token.kind, TokenKind::Device);
    let p = f.store.verify(e.token.secret.expose()).unwrap();
    assert_eq!((p.username.as_str(), p.device), ("张三", Some(e.device.id)));
    f.advance(SignedDuration::from_mins(5));
    assert_eq!(
        err(f.store.redeem_enrolment(code.secret.expose(), &phone(), &Client::default())),
        (
            ErrorKind::Unauthorized,
            "enrolment code was already used at 2025-03-01T01:00:00Z; ask for a new QR code".into()
        )
    );
    assert_eq!(err(f.store.redeem_enrolment("nonsense", &phone(), &Client::default())).0, ErrorKind::Unauthorized);
    assert!(matches!(
        f.store.redeem_enrolment(&"B".repeat(43), &phone(), &Client::default()),
        Err(AuthError::EnrolmentUnknown)
    ));
    assert_eq!(
        f.audit_lines().iter().filter(|l| l.starts_with("enrolment")).cloned().collect::<Vec<_>>(),
        [
            "enrolment.create ok 张三",
            "enrolment.redeem ok 张三",
            "enrolment.redeem denied 张三",
            "enrolment.redeem denied",
            "enrolment.redeem denied"
        ]
    );
    assert_eq!(f.store.devices(&f.admin, Some("张三")).unwrap().len(), 1);
}}

both! {
fn enrolment_codes_expire_and_need_an_active_owner() {
    let f = fx();
    let me = f.user("张三", Role::Inspector);
    // A user may create a code for themself, not for others.
    let code = f.store.create_enrolment(&me, "张三", Some(SignedDuration::from_mins(10))).unwrap();
    assert_eq!(err(f.store.create_enrolment(&me, "root", None)).0, ErrorKind::Forbidden);
    f.advance(SignedDuration::from_mins(10));
    assert_eq!(
        err(f.store.redeem_enrolment(code.secret.expose(), &phone(), &Client::default())).1,
        "enrolment code expired at 2025-03-01T01:10:00Z; ask for a new QR code"
    );
    let code = f.store.create_enrolment(&f.admin, "张三", None).unwrap();
    f.store.disable_user(&f.admin, "张三", None).unwrap();
    assert_eq!(
        err(f.store.redeem_enrolment(code.secret.expose(), &phone(), &Client::default())).1,
        "user `张三` is disabled"
    );
    assert_eq!(err(f.store.create_enrolment(&f.admin, "张三", None)).1, "user `张三` is disabled");
}}
