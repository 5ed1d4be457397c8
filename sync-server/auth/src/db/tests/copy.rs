//! Copying the accounts between backends (`db/copy.rs`): SQLite → PostgreSQL → SQLite keeps every
//! row identical, tokens and passwords go on working, new ids follow the copied ones, and a
//! destination holding anything is refused and left as it was.

use super::*;
use crate::db::copy::Cell as Value;

/// A SQLite data folder's accounts with one of everything: users of every status, a group with
/// members, devices (one revoked), session and device tokens (one revoked), an enrolment code, a
/// failed login, rules (by role and by group) and audit rows, one from the store's outbox.
/// Answers the device token's secret.
fn busy(f: &Fx) -> String {
    f.add("张三", Role::Inspector);
    f.add("李四", Role::Office);
    let reg = Registration {
        username: "市民王五".into(),
        password: "我的密码很安全吧".into(),
        display_name: Some("王五".into()),
        contact: Some("13800000000".into()),
    };
    f.store.register_citizen(&reg, &from_addr("203.0.113.9:40000")).unwrap();
    f.add("赵六", Role::Citizen);
    f.store.disable_user(&f.admin, "赵六", Some("离职")).unwrap();
    f.store.create_group(&f.admin, "排水队", Some("drainage")).unwrap();
    f.store.add_to_group(&f.admin, "排水队", "张三").unwrap();
    f.store.add_to_group(&f.admin, "排水队", "李四").unwrap();
    let rule = Rule { layer: "manhole".into(), subject: Subject::Group("排水队".into()), grants: Grants::READ_EDIT };
    f.store.set_rule(&f.admin, &rule).unwrap();
    let ro = Rule { layer: "manhole".into(), subject: Subject::Role(Role::Citizen), grants: Grants::READ };
    f.store.set_rule(&f.admin, &ro).unwrap();
    let handset = f.store.register_device(&f.admin, "张三", &phone()).unwrap();
    let old = f.store.register_device(&f.admin, "张三", &NewDevice { name: "旧平板".into(), ..phone() }).unwrap();
    f.store.revoke_device(&f.admin, old.id).unwrap();
    let device_token = f.store.issue_device_token(&Actor::local("cli"), handset.id, None).unwrap();
    let gone = f.login("李四");
    f.store.revoke_token(&f.admin, gone.id).unwrap();
    f.store.create_enrolment(&f.admin, "李四", None).unwrap();
    let wrong = Credentials { username: "李四", password: "not the password", device: None };
    assert!(f.store.login(&wrong, &Client::default()).is_err());
    let insp = Actor::user(f.store.verify(device_token.secret.expose()).unwrap());
    let mut w = WriteRecord::new(AuditAction::FeatureUpdate, "manhole");
    w.entities = vec!["0195a0f0-cccc".into()];
    w.tx = Some("7".into());
    let p = crate::PendingAudit::new(&insp.with_client(from_addr("10.0.0.7:1")), &w, t("2025-03-01T00:30:00Z"));
    assert!(f.store.record_pending(&p).unwrap());
    f.advance(SignedDuration::from_mins(5));
    device_token.secret.expose().to_owned()
}

fn sqlite_in(dir: &std::path::Path) -> AuthStore {
    std::fs::create_dir_all(dir).unwrap();
    AuthStore::open_in(dir).unwrap().with_config(config())
}

#[test]
fn sqlite_to_postgres_and_back_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t(START)));
    let source = sqlite_in(&dir.path().join("a")).with_clock(clock.clone());
    source.add_user(&Actor::local("test"), "root", Role::Admin, PW).unwrap();
    let admin = Actor::user(source.login(&creds("root"), &Client::default()).unwrap().principal);
    let f = Fx { store: source, clock: clock.clone(), admin };
    let device_secret = busy(&f);
    let expected = f.store.dump().unwrap();
    let count = |what: &str| expected.tables.iter().find(|(t, _)| t == what).map_or(0, |(_, r)| r.len());
    for table in [
        "users",
        "groups",
        "group_members",
        "devices",
        "tokens",
        "enrolments",
        "login_failures",
        "layer_rules",
        "audit",
    ] {
        assert!(count(table) > 0, "the fixture has {table}");
    }
    assert!(expected.tables.iter().flat_map(|(_, r)| r).flatten().any(|c| *c == Value::Bool(false)));

    // → PostgreSQL.
    let url = shikong_pgtest::Cluster::shared().fresh_db();
    let pg = AuthStore::open_postgres(&url).unwrap().with_config(config()).with_clock(clock.clone());
    let r = f.store.copy_accounts(&pg).unwrap();
    assert_eq!((r.count("users"), r.count("audit rows")), (count("users") as u64, count("audit") as u64));
    assert_eq!(r.schema_version, SCHEMA_VERSION);
    assert!(r.to_string().contains("5 users"), "{r}");
    assert_eq!(pg.dump().unwrap(), expected, "PostgreSQL holds the same rows");

    // The device's token and the passwords work there, as on the source.
    let p = pg.verify(&device_secret).unwrap();
    assert_eq!((p.username.as_str(), p.device.is_some()), ("张三", true));
    assert_eq!(pg.login(&creds("张三"), &Client::default()).unwrap().principal.groups, vec!["排水队".to_owned()]);
    let wang5 = Credentials { username: "市民王五", password: "我的密码很安全吧", device: None };
    assert_eq!(err(pg.login(&wang5, &Client::default())).0, ErrorKind::Forbidden, "still awaiting approval");

    // → a new SQLite folder: the same rows again (PostgreSQL's writes since are in the dump).
    let now = pg.dump().unwrap();
    let back = sqlite_in(&dir.path().join("b")).with_clock(clock.clone());
    pg.copy_accounts(&back).unwrap();
    assert_eq!(back.dump().unwrap(), now, "the copy back holds the same rows");
    assert_eq!(back.verify(&device_secret).unwrap().username, "张三");

    // New rows take ids after the copied ones on both backends (identity sequences, AUTOINCREMENT).
    for store in [&pg, &back] {
        let root = Actor::user(store.login(&creds("root"), &Client::default()).unwrap().principal);
        let before = store.dump().unwrap();
        let max_id = |table: &str| -> i64 {
            let rows = &before.tables.iter().find(|(t, _)| t == table).unwrap().1;
            rows.iter().filter_map(|r| if let Value::Int(id) = r[0] { Some(id) } else { None }).max().unwrap()
        };
        let u = store.add_user(&root, "新来的", Role::Office, PW).unwrap();
        assert!(u.id.0 > max_id("users"), "{} after {}", u.id.0, max_id("users"));
        let newest = store.query_audit(&root, &AuditQuery { limit: 1, ..AuditQuery::default() }).unwrap().entries;
        assert!(newest[0].id.0 > max_id("audit"));
    }
}

both! {
fn a_destination_holding_accounts_is_refused_and_left_alone() {
    let f = fx();
    busy(&f);
    let dir = tempfile::tempdir().unwrap();
    let other = sqlite_in(dir.path());
    other.add_user(&Actor::local("cli"), "someone", Role::Office, PW).unwrap();
    let before = other.dump().unwrap();
    let e = f.store.copy_accounts(&other).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    let msg = e.to_string();
    assert!(msg.contains("empty account store") && msg.contains("1 users") && msg.contains("1 audit rows"), "{msg}");
    assert_eq!(other.dump().unwrap(), before, "nothing changed");
    assert_eq!(other.holdings().unwrap().as_deref(), Some("1 users, 1 audit rows"));

    // An empty destination takes the copy; a pending copy dropped before its commit leaves it empty.
    let empty = sqlite_in(&dir.path().join("e"));
    assert_eq!(empty.holdings().unwrap(), None);
    let pending = f.store.copy_accounts_into(&empty).unwrap();
    assert!(pending.report().count("users") >= 5);
    drop(pending);
    assert_eq!(empty.holdings().unwrap(), None, "rolled back");
    f.store.copy_accounts(&empty).unwrap();
    assert_eq!(empty.dump().unwrap(), f.store.dump().unwrap());
}}
