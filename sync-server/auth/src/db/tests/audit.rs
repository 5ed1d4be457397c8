//! The audit log: queries, append-only storage, and an entry for every change.

use super::*;

both! {
fn audit_queries_filter_and_page() {
    let f = fx();
    let insp = f.user("张三", Role::Inspector);
    f.advance(SignedDuration::from_hours(1));
    let mut w = WriteRecord::new(AuditAction::FeatureCreate, "manhole");
    w.entities = vec!["0195a0f0-aaaa".into(), "0195a0f0-bbbb".into()];
    w.tx = Some("42".into());
    f.store.record_write(&insp.clone().with_client(from_addr("10.0.0.9:1")), &w).unwrap();
    f.advance(SignedDuration::from_hours(1));
    let mut big = WriteRecord::new(AuditAction::Import, "roads");
    big.entities = (0..1500).map(|i| format!("id-{i}")).collect();
    f.store.record_write(&Actor::local("shikong import"), &big).unwrap();

    let by_layer = f.audit(AuditQuery { layer: Some("manhole".into()), ..AuditQuery::default() });
    assert_eq!(by_layer.len(), 1);
    let e = &by_layer[0];
    assert_eq!((e.action.clone(), e.outcome, e.entity_count), (AuditAction::FeatureCreate, Outcome::Ok, Some(2)));
    assert_eq!(e.entities, ["0195a0f0-aaaa", "0195a0f0-bbbb"]);
    assert_eq!((e.tx.as_deref(), e.client.as_deref()), (Some("42"), Some("10.0.0.9:1")));
    assert_eq!(e.at, t("2025-03-01T02:00:00Z"));
    let imp = &f.audit(AuditQuery { actions: vec![AuditAction::Import], ..AuditQuery::default() })[0];
    assert_eq!((imp.entities.len(), imp.entity_count), (1000, Some(1500)));
    assert_eq!(imp.actor, ActorRef::Local("shikong import".into()));

    // Time range: [from, to).
    let q = AuditQuery {
        from: Some(t("2025-03-01T02:00:00Z")),
        to: Some(t("2025-03-01T03:00:00Z")),
        ..AuditQuery::default()
    };
    assert_eq!(f.audit(q).iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["feature.create"]);
    // By user: what they did and what was done to them.
    let q = AuditQuery { user: Some("张三".into()), ..AuditQuery::default() };
    assert_eq!(
        f.audit(q).iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["feature.create", "login.ok", "user.add"]
    );
    // Paging, newest first.
    let all = f.audit(AuditQuery::default());
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = f.store.query_audit(&f.admin, &AuditQuery { limit: 2, after, ..AuditQuery::default() }).unwrap();
        paged.extend(page.entries.iter().map(|e| e.id));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(paged, all.iter().map(|e| e.id).collect::<Vec<_>>());
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(all.len(), 6, "{:?}", f.audit_lines());
    // Admins only; limits checked.
    assert_eq!(err(f.store.query_audit(&insp, &AuditQuery::default())).0, ErrorKind::Forbidden);
    assert_eq!(
        err(f.store.query_audit(&f.admin, &AuditQuery { limit: 5000, ..AuditQuery::default() })).0,
        ErrorKind::BadRequest
    );
}}

both! {
fn the_audit_log_is_append_only() {
    let f = fx();
    let conn = f.store.conn().unwrap();
    let e = conn.execute("UPDATE audit SET actor = 'someone else'", &[]).unwrap_err().to_string();
    assert!(e.contains("the audit log is append-only"), "{e}");
    let e = conn.execute("DELETE FROM audit", &[]).unwrap_err().to_string();
    assert!(e.contains("the audit log is append-only"), "{e}");
}}

both! {
fn every_change_is_audited() {
    let f = fx();
    let cli = Actor::local("cli");
    f.store.add_user(&cli, "张三", Role::Inspector, PW).unwrap();
    f.store.set_role(&cli, "张三", Role::Office).unwrap();
    f.store.create_group(&cli, "甲", None).unwrap();
    f.store.add_to_group(&cli, "甲", "张三").unwrap();
    f.store.remove_from_group(&cli, "甲", "张三").unwrap();
    let rule = Rule { layer: "manhole".into(), subject: Subject::Group("甲".into()), grants: Grants::READ };
    f.store.set_rule(&cli, &rule).unwrap();
    f.store.remove_rule(&cli, "manhole", &rule.subject).unwrap();
    f.store.delete_group(&cli, "甲").unwrap();
    let d = f.store.register_device(&cli, "张三", &phone()).unwrap();
    let tok = f.store.issue_device_token(&cli, d.id, None).unwrap();
    f.store.revoke_token(&cli, tok.id).unwrap();
    f.store.revoke_device(&cli, d.id).unwrap();
    f.store.reset_password(&cli, "张三", "another password").unwrap();
    f.store.disable_user(&cli, "张三", None).unwrap();
    f.store.enable_user(&cli, "张三").unwrap();
    let lines = f.audit_lines();
    assert_eq!(
        lines[2..],
        [
            "user.add ok 张三",
            "user.role ok 张三",
            "group.create ok",
            "group.add_member ok 张三",
            "group.remove_member ok 张三",
            "permission.set ok",
            "permission.remove ok",
            "group.delete ok",
            "device.register ok 张三",
            "token.issue ok 张三",
            "token.revoke ok 张三",
            "device.revoke ok 张三",
            "user.password ok 张三",
            "user.disable ok 张三",
            "user.enable ok 张三",
        ]
    );
    let rule_row = &f.audit(AuditQuery { actions: vec![AuditAction::PermissionSet], ..AuditQuery::default() })[0];
    assert_eq!(
        (rule_row.layer.as_deref(), rule_row.target.as_deref(), rule_row.detail.as_deref()),
        (Some("manhole"), Some("group 甲"), Some("read"))
    );
    let role_row = &f.audit(AuditQuery { actions: vec![AuditAction::UserRole], ..AuditQuery::default() })[0];
    assert_eq!(role_row.detail.as_deref(), Some("role inspector → office"));
}}

both! {
fn audit_fields_are_bounded_by_characters() {
    let f = fx();
    let huge = Actor::anonymous().with_client(Client::default().address("长".repeat(500)).request_id("r".repeat(500)));
    let mut w = WriteRecord::new(AuditAction::FeatureCreate, "manhole");
    w.detail = Some("详".repeat(5000));
    f.store.record_write(&huge, &w).unwrap();
    let row = &f.audit(AuditQuery { actions: vec![AuditAction::FeatureCreate], ..AuditQuery::default() })[0];
    let detail = row.detail.as_deref().unwrap();
    assert_eq!(detail.chars().count(), MAX_AUDIT_DETAIL);
    assert!(detail.ends_with('…'));
    assert_eq!(row.client.as_deref().unwrap().chars().count(), MAX_AUDIT_CLIENT);
    assert_eq!(row.request_id.as_deref().unwrap().chars().count(), MAX_AUDIT_REQUEST_ID);
}}

both! {
fn refused_anonymous_attempts_beyond_the_budget_are_counted() {
    let f = fx();
    let store = f.store.with_config(AuthConfig {
        throttle: crate::ThrottlePolicy {
            audit_per_address: crate::RatePolicy::new(2, SignedDuration::from_mins(10)),
            ..crate::ThrottlePolicy::default()
        },
        ..config()
    });
    let from = from_addr("198.51.100.4:5000");
    for _ in 0..5 {
        assert_eq!(err(store.redeem_enrolment("no-such-code", &phone(), &from)).0, ErrorKind::Unauthorized);
    }
    let q = AuditQuery { actions: vec![AuditAction::EnrolmentRedeem], ..AuditQuery::default() };
    let admin = Actor::local("test");
    assert_eq!(store.query_audit(&admin, &q).unwrap().entries.len(), 2);
    // A minute later, anyone's next audit row writes the count first.
    f.clock.advance(SignedDuration::from_mins(2));
    store.add_user(&admin, "王五", Role::Citizen, PW).unwrap();
    let rows = store.query_audit(&admin, &q).unwrap().entries;
    assert_eq!(rows.len(), 3);
    assert_eq!((rows[0].entity_count, rows[0].client.as_deref()), (Some(3), Some("198.51.100.4")));
    // Callers without an address (the CLI) and successful attempts are never counted away.
}}

both! {
fn pending_records_from_the_store_outbox_are_appended_once() {
    let f = fx();
    let insp = f.user("张三", Role::Inspector);
    let mut w = WriteRecord::new(AuditAction::FeatureUpdate, "manhole");
    w.entities = vec!["0195a0f0-cccc".into()];
    w.tx = Some("7".into());
    let at = t("2025-03-01T00:30:00Z");
    let p = crate::PendingAudit::new(&insp.clone().with_client(from_addr("10.0.0.7:1")), &w, at);
    // Through the store's outbox as text, delivered twice (a crash between append and removal).
    let p = crate::PendingAudit::from_json(&p.to_json()).unwrap();
    assert!(f.store.record_pending(&p).unwrap());
    assert!(!f.store.record_pending(&p).unwrap());
    let rows = f.audit(AuditQuery { layer: Some("manhole".into()), ..AuditQuery::default() });
    assert_eq!(rows.len(), 1);
    let e = &rows[0];
    assert_eq!((e.action.clone(), e.at, e.tx.as_deref()), (AuditAction::FeatureUpdate, at, Some("7")));
    assert!(matches!(&e.actor, ActorRef::User { username, .. } if username == "张三"), "{:?}", e.actor);
    assert_eq!((e.client.as_deref(), e.entities.clone()), (Some("10.0.0.7:1"), vec!["0195a0f0-cccc".to_owned()]));
    // Another record of the same write (a new id) is another row; garbage is refused.
    let again = crate::PendingAudit::new(&insp, &w, at);
    assert!(f.store.record_pending(&again).unwrap());
    assert!(crate::PendingAudit::from_json("{}").is_err());
    let mut bad = again.clone();
    bad.id = uuid::Uuid::now_v7();
    bad.actor_kind = "robot".into();
    assert!(f.store.record_pending(&bad).is_err());
}}
