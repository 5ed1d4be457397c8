//! What only the PostgreSQL backend has: several handles (as several server processes) on one
//! database share accounts, tokens, rules and one audit log, with nothing cached per handle; a
//! newer schema is refused; writers of two handles at once neither fail nor interleave audit ids.

use super::*;

/// Two handles on one fresh database, as two server processes open it.
fn two() -> (AuthStore, AuthStore, Actor) {
    let url = shikong_pgtest::Cluster::shared().fresh_db();
    let a = AuthStore::open_postgres(&url).unwrap().with_config(config());
    let b = AuthStore::open_postgres(&url).unwrap().with_config(config());
    a.add_user(&Actor::local("test"), "root", Role::Admin, PW).unwrap();
    let admin = Actor::user(b.login(&creds("root"), &Client::default()).unwrap().principal);
    (a, b, admin)
}

#[test]
fn a_token_from_one_handle_works_on_the_other_until_revoked_there() {
    let (a, b, admin) = two();
    assert!(a.is_shared() && a.path().is_none());
    assert!(a.location().ends_with("(schema shikong_auth)"), "{}", a.location());
    b.add_user(&admin, "张三", Role::Inspector, PW).unwrap();
    let tok = a.login(&creds("张三"), &Client::default()).unwrap();
    assert_eq!(b.verify(tok.secret.expose()).unwrap().username, "张三");
    // What a request's token check costs here (the figure the report quotes).
    let started = std::time::Instant::now();
    for _ in 0..200 {
        b.verify(tok.secret.expose()).unwrap();
    }
    eprintln!("verify on PostgreSQL: {:?} per call", started.elapsed() / 200);
    // A role change through A is what B sees on the next check.
    a.set_role(&admin, "张三", Role::Office).unwrap();
    assert_eq!(b.verify(tok.secret.expose()).unwrap().role, Role::Office);
    // A rule set through B is what A enforces on the next check.
    let layer = LayerAccess { name: "manhole", public: false, citizen_reports: false };
    let me = a.verify(tok.secret.expose()).unwrap();
    assert!(matches!(a.authorize(Some(&me), &layer, Action::Edit).unwrap(), Decision::Allow));
    let rule = Rule { layer: "manhole".into(), subject: Subject::Role(Role::Office), grants: Grants::READ };
    b.set_rule(&admin, &rule).unwrap();
    assert!(matches!(a.authorize(Some(&me), &layer, Action::Edit).unwrap(), Decision::Deny(_)));
    // Revoked through B: A refuses it at once.
    b.revoke_token(&admin, tok.id).unwrap();
    assert_eq!(a.verify(tok.secret.expose()).unwrap_err().kind(), ErrorKind::Unauthorized);
    // A password reset through A ends B's sessions too.
    let again = b.login(&creds("张三"), &Client::default()).unwrap();
    a.reset_password(&admin, "张三", "another password 马").unwrap();
    assert!(matches!(b.verify(again.secret.expose()), Err(AuthError::TokenRevoked { .. })));
    // One audit log, read the same through either handle.
    let q = AuditQuery { limit: 1000, ..AuditQuery::default() };
    let ids = |s: &AuthStore| s.query_audit(&admin, &q).unwrap().entries.iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b));
}

#[test]
fn writers_of_two_handles_at_once_all_commit_in_order() {
    let (a, b, admin) = two();
    let stores = [&a, &b];
    std::thread::scope(|s| {
        for (i, store) in stores.iter().enumerate() {
            let admin = &admin;
            s.spawn(move || {
                for n in 0..15 {
                    let name = format!("u{i}x{n}");
                    store.add_user(admin, &name, Role::Inspector, PW).unwrap();
                    store.create_group(admin, &format!("g{i}x{n}"), None).unwrap();
                    store.add_to_group(admin, &format!("g{i}x{n}"), &name).unwrap();
                }
            });
        }
    });
    assert_eq!(a.list_users(&admin, None).unwrap().len(), 31);
    let entries = b.query_audit(&admin, &AuditQuery { limit: 1000, ..AuditQuery::default() }).unwrap().entries;
    assert_eq!(entries.iter().filter(|e| e.action == AuditAction::GroupAddMember).count(), 30);
    // Newest first by id, which follows commit order (`at` is when each call read the clock,
    // before it took the writer lock: two processes' rows a few ms apart may cross).
    assert!(entries.windows(2).all(|w| w[0].id > w[1].id));
    let by = |i: usize| {
        entries.iter().filter(|e| e.user.as_deref().is_some_and(|u| u.starts_with(&format!("u{i}x")))).count()
    };
    assert_eq!((by(0), by(1)), (30, 30), "user.add and group.add_member of both handles");
    // The same name added through both at once: one wins, the other is told it exists.
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = stores.iter().map(|st| s.spawn(|| st.add_user(&admin, "同名", Role::Office, PW))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(results.iter().any(|r| matches!(r, Err(AuthError::UserExists(_)))));
}

#[test]
fn usernames_ignore_case_and_a_newer_schema_is_refused() {
    let url = shikong_pgtest::Cluster::shared().fresh_db();
    let s = AuthStore::open_postgres(&url).unwrap().with_config(config());
    s.add_user(&Actor::local("t"), "LiSi", Role::Office, PW).unwrap();
    assert_eq!(
        s.add_user(&Actor::local("t"), "lisi", Role::Office, PW).unwrap_err().to_string(),
        "a user named `LiSi` already exists"
    );
    assert_eq!(s.login(&creds("LISI"), &Client::default()).unwrap().principal.username, "LiSi");
    s.conn().unwrap().execute("UPDATE auth_meta SET value = '7' WHERE key = 'schema_version'", &[]).unwrap();
    drop(s);
    let e = AuthStore::open_postgres(&url).unwrap_err().to_string();
    assert!(
        e.contains(&format!("auth schema version 7; this build understands up to {}", crate::SCHEMA_VERSION)),
        "{e}"
    );
    assert!(!e.contains("password"), "{e}");
}

#[test]
fn a_lost_connection_is_unavailable_and_the_next_call_reconnects() {
    let url = shikong_pgtest::Cluster::shared().fresh_db();
    let s = AuthStore::open_postgres(&url).unwrap().with_config(config());
    s.add_user(&Actor::local("t"), "张三", Role::Inspector, PW).unwrap();
    let tok = s.login(&creds("张三"), &Client::default()).unwrap();
    // The server ends every session of the auth store (a restart, a failover).
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap();
    // The pooled connection is cut: at most one call fails, as unavailable (503), not internal.
    if let Err(e) = s.verify(tok.secret.expose()) {
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    }
    assert_eq!(s.verify(tok.secret.expose()).unwrap().username, "张三");

    let e = AuthStore::open_postgres("postgres://shikong:secret@127.0.0.1:1/none?connect_timeout=2").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let shown = e.to_string();
    assert!(shown.starts_with("postgres://shikong:***@127.0.0.1:1/none") && !shown.contains("secret"), "{shown}");
}
