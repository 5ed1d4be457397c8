//! The auth database end to end: accounts, login, tokens, devices, enrolment, registration
//! approval, lockout, groups, rules and the audit log, at instants set by a manual clock.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::audit::{ActorRef, AuditEntry, AuditQuery, WriteRecord};
use crate::permission::{Action, Decision, Grants, LayerAccess, Rule, Subject};
use crate::types::*;
use crate::{ErrorKind, ManualClock, PasswordCost};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const START: &str = "2025-03-01T01:00:00Z";
const PW: &str = "correct horse 马";

struct Fx {
    store: AuthStore,
    clock: Arc<ManualClock>,
    admin: Actor,
}

fn config() -> AuthConfig {
    AuthConfig { password_cost: PasswordCost::INSECURE_FAST, ..AuthConfig::default() }
}

/// An in-memory store at [`START`] with an admin `root` added from the CLI.
fn fx() -> Fx {
    let clock = Arc::new(ManualClock::new(t(START)));
    let store = AuthStore::open_in_memory().unwrap().with_clock(clock.clone()).with_config(config());
    store.add_user(&Actor::local("test"), "root", Role::Admin, PW).unwrap();
    let admin = Actor::user(store.login(&creds("root"), &Client::default()).unwrap().principal);
    Fx { store, clock, admin }
}

fn creds(username: &str) -> Credentials<'_> {
    Credentials { username, password: PW, device: None }
}

fn from_addr(addr: &str) -> Client {
    Client::default().address(addr).request_id("req-1")
}

impl Fx {
    fn add(&self, name: &str, role: Role) -> User {
        self.store.add_user(&self.admin, name, role, PW).unwrap()
    }

    fn login(&self, name: &str) -> IssuedToken {
        self.store.login(&creds(name), &Client::default()).unwrap()
    }

    /// An actor logged in as `name` (added with `role` first).
    fn user(&self, name: &str, role: Role) -> Actor {
        self.add(name, role);
        Actor::user(self.login(name).principal)
    }

    fn advance(&self, d: SignedDuration) {
        self.clock.advance(d);
    }

    fn audit(&self, q: AuditQuery) -> Vec<AuditEntry> {
        self.store.query_audit(&self.admin, &q).unwrap().entries
    }

    /// `action outcome user` of every audit row, oldest first.
    fn audit_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .audit(AuditQuery { limit: 1000, ..AuditQuery::default() })
            .into_iter()
            .map(|e| format!("{} {} {}", e.action, e.outcome, e.user.unwrap_or_default()).trim_end().to_string())
            .collect();
        lines.reverse();
        lines
    }
}

fn err<T: std::fmt::Debug>(r: Result<T>) -> (ErrorKind, String) {
    let e = r.unwrap_err();
    (e.kind(), e.to_string())
}

// ---- the file ----

#[test]
fn the_store_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<AuthStore>();
    let f = fx();
    f.add("张三", Role::Inspector);
    let tok = f.login("张三");
    let store = &f.store;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..4).map(|_| s.spawn(|| store.verify(tok.secret.expose()).map(|p| p.username))).collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), "张三");
        }
    });
}

#[test]
fn creates_a_private_wal_file_and_reopens_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = AuthStore::open_in(dir.path()).unwrap().with_config(config());
    store.add_user(&Actor::local("cli"), "张三", Role::Inspector, PW).unwrap();
    let path = dir.path().join("auth.sqlite");
    assert_eq!(store.path(), Some(path.as_path()));
    drop(store);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let store = AuthStore::open(&path).unwrap();
    assert!(store.has_users().unwrap());
    let conn = store.conn();
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap();
    assert_eq!(sync, 2, "synchronous = FULL");
    let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0)).unwrap();
    assert_eq!(app, APPLICATION_ID);
    let v: String =
        conn.query_row("SELECT value FROM auth_meta WHERE key = 'schema_version'", [], |r| r.get(0)).unwrap();
    assert_eq!(v, "1");
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.sqlite");
    let store = AuthStore::open(&path).unwrap();
    store.conn().execute("UPDATE auth_meta SET value = '7' WHERE key = 'schema_version'", []).unwrap();
    drop(store);
    let e = AuthStore::open(&path).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{} was written by a newer shikong (auth schema version 7; this build understands up to 1). Upgrade shikong to open it.",
            path.display()
        )
    );
}

#[test]
fn refuses_files_that_are_not_auth_databases() {
    let dir = tempfile::tempdir().unwrap();
    let gpkg = dir.path().join("store.gpkg");
    let c = rusqlite::Connection::open(&gpkg).unwrap();
    c.pragma_update(None, "application_id", 0x4750_4B47).unwrap();
    c.execute_batch("CREATE TABLE x (a);").unwrap();
    drop(c);
    let e = AuthStore::open(&gpkg).unwrap_err().to_string();
    assert_eq!(e, format!("{}: not a shikong auth database (it is a GeoPackage)", gpkg.display()));

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "这不是数据库 — not a database at all, just some text that is long enough").unwrap();
    let e = AuthStore::open(&text).unwrap_err();
    assert!(matches!(e, AuthError::NotAnAuthDb { .. }), "{e}");

    let e = AuthStore::open_in(dir.path().join("missing")).unwrap_err().to_string();
    assert!(e.ends_with("missing: no such data directory"), "{e}");
}

// ---- users and login ----

#[test]
fn add_user_then_login_and_verify() {
    let f = fx();
    let u = f.add("张三", Role::Inspector);
    assert_eq!((u.username.as_str(), u.role, u.status), ("张三", Role::Inspector, UserStatus::Active));
    let tok = f.store.login(&creds("张三"), &from_addr("10.0.0.7:5000")).unwrap();
    assert_eq!(tok.kind, TokenKind::Session);
    assert_eq!(tok.expires_at, t(START).checked_add(SignedDuration::from_hours(12)).unwrap());
    let p = f.store.verify(tok.secret.expose()).unwrap();
    assert_eq!(p, tok.principal);
    assert_eq!((p.username.as_str(), p.role, p.device, p.groups.len()), ("张三", Role::Inspector, None, 0));
    // ASCII case does not matter for usernames; the principal carries the stored spelling.
    f.add("LiSi", Role::Office);
    assert_eq!(f.login("lisi").principal.username, "LiSi");
    let login = &f.audit(AuditQuery { user: Some("张三".into()), ..AuditQuery::default() })[0];
    assert_eq!(login.action, AuditAction::Login);
    assert_eq!(login.client.as_deref(), Some("10.0.0.7:5000"));
    assert_eq!(login.request_id.as_deref(), Some("req-1"));
    assert_eq!(login.actor, ActorRef::User { id: u.id, username: "张三".into() });
}

#[test]
fn add_user_rejects_bad_input_and_duplicates() {
    let f = fx();
    f.add("张三", Role::Inspector);
    let add = |name: &str, pw: &str| err(f.store.add_user(&f.admin, name, Role::Office, pw));
    assert_eq!(add("张三", PW), (ErrorKind::Conflict, "a user named `张三` already exists".into()));
    assert_eq!(add("ROOT", PW), (ErrorKind::Conflict, "a user named `root` already exists".into()));
    assert_eq!(add("王 五", PW).0, ErrorKind::BadRequest);
    assert_eq!(
        add("王五", "short"),
        (ErrorKind::BadRequest, "invalid password: 5 characters; at least 8 required".into())
    );
    assert_eq!(add("wangwu12", "WANGWU12").1, "invalid password: must not be the same as the username");
}

#[test]
fn only_admins_manage_users_and_refusals_are_audited() {
    let f = fx();
    let office = f.user("office1", Role::Office);
    assert_eq!(
        err(f.store.add_user(&office, "x1", Role::Admin, PW)),
        (ErrorKind::Forbidden, "only admins may add users (you are `office1`, role office)".into())
    );
    assert_eq!(err(f.store.add_user(&Actor::anonymous(), "x1", Role::Admin, PW)).0, ErrorKind::Unauthorized);
    assert_eq!(err(f.store.list_users(&office, None)).0, ErrorKind::Forbidden);
    assert_eq!(err(f.store.set_role(&office, "office1", Role::Admin)).0, ErrorKind::Forbidden);
    let denied = f.audit(AuditQuery { outcome: Some(Outcome::Denied), ..AuditQuery::default() });
    let lines: Vec<String> =
        denied.iter().map(|e| format!("{} {}", e.action, e.user.as_deref().unwrap_or(""))).collect();
    assert_eq!(lines, ["user.role office1", "user.add x1", "user.add x1"]);
    // A user may look at their own account, not at others (nor learn whether they exist).
    assert_eq!(f.store.user(&office, "office1").unwrap().role, Role::Office);
    assert_eq!(err(f.store.user(&office, "root")).1, "only admins may look up users other than yourself");
    assert_eq!(err(f.store.user(&office, "nobody")).1, "only admins may look up users other than yourself");
    assert_eq!(err(f.store.user(&f.admin, "nobody")), (ErrorKind::NotFound, "no user named `nobody`".into()));
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let f = fx();
    f.add("张三", Role::Inspector);
    let wrong = Credentials { password: "wrong password", ..creds("张三") };
    assert_eq!(
        err(f.store.login(&wrong, &Client::default())),
        (ErrorKind::Unauthorized, "wrong username or password".into())
    );
    assert_eq!(
        err(f.store.login(&creds("nobody"), &Client::default())),
        (ErrorKind::Unauthorized, "wrong username or password".into())
    );
    let failed = f.audit(AuditQuery { actions: vec![AuditAction::LoginFailed], ..AuditQuery::default() });
    let details: Vec<(&str, &str)> =
        failed.iter().map(|e| (e.user.as_deref().unwrap_or(""), e.detail.as_deref().unwrap_or(""))).collect();
    assert_eq!(details, [("nobody", "unknown user"), ("张三", "wrong password")]);
    assert!(failed.iter().all(|e| e.outcome == Outcome::Failed && e.actor == ActorRef::Anonymous));
}

// ---- tokens ----

#[test]
fn session_tokens_expire_after_their_lifetime() {
    let f = fx();
    f.add("张三", Role::Inspector);
    let tok = f.login("张三");
    f.advance(SignedDuration::from_hours(12) - SignedDuration::from_millis(1));
    assert!(f.store.verify(tok.secret.expose()).is_ok());
    f.advance(SignedDuration::from_millis(1));
    assert_eq!(
        err(f.store.verify(tok.secret.expose())),
        (ErrorKind::Unauthorized, "token expired at 2025-03-01T13:00:00Z; log in again".into())
    );
}

#[test]
fn unknown_and_malformed_tokens() {
    let f = fx();
    for bad in ["", "Bearer", "令牌", &"A".repeat(43)] {
        assert!(matches!(f.store.verify(bad), Err(AuthError::TokenUnknown)), "{bad:?}");
    }
}

#[test]
fn revoking_one_token_all_of_a_user_and_logout() {
    let f = fx();
    f.add("张三", Role::Inspector);
    let (a, b, c) = (f.login("张三"), f.login("张三"), f.login("张三"));
    let me = Actor::user(a.principal.clone());
    // The owner revokes b; a and c still work.
    f.store.revoke_token(&me, b.id).unwrap();
    assert_eq!(
        err(f.store.verify(b.secret.expose())).1,
        "token was revoked at 2025-03-01T01:00:00Z (revoked); log in again"
    );
    assert!(f.store.verify(c.secret.expose()).is_ok());
    // Logging out revokes the token in use.
    f.store.logout(&Actor::user(f.store.verify(c.secret.expose()).unwrap())).unwrap();
    assert!(matches!(f.store.verify(c.secret.expose()), Err(AuthError::TokenRevoked { .. })));
    // Another non-admin may not revoke someone else's token.
    let other = f.user("李四", Role::Inspector);
    assert_eq!(err(f.store.revoke_token(&other, a.id)).0, ErrorKind::Forbidden);
    assert_eq!(err(f.store.revoke_token(&other, TokenId(999))), (ErrorKind::NotFound, "no token 999".into()));
    // All tokens of a user.
    let d = f.login("张三");
    assert_eq!(f.store.revoke_user_tokens(&f.admin, "张三").unwrap(), 2);
    for tok in [&a, &d] {
        assert!(matches!(f.store.verify(tok.secret.expose()), Err(AuthError::TokenRevoked { .. })));
    }
    let infos = f.store.tokens(&f.admin, "张三").unwrap();
    assert_eq!(infos.len(), 4);
    assert!(infos.iter().all(|i| i.revoked_at.is_some()));
    assert_eq!(infos[0].id, d.id, "newest first");
}

#[test]
fn verify_records_last_use_at_most_once_a_minute() {
    let f = fx();
    f.add("张三", Role::Inspector);
    let tok = f.login("张三");
    let last = || f.store.tokens(&f.admin, "张三").unwrap()[0].last_used_at;
    assert_eq!(last(), None);
    f.advance(SignedDuration::from_secs(5));
    f.store.verify(tok.secret.expose()).unwrap();
    assert_eq!(last(), Some(t("2025-03-01T01:00:05Z")));
    f.advance(SignedDuration::from_secs(30));
    f.store.verify(tok.secret.expose()).unwrap();
    assert_eq!(last(), Some(t("2025-03-01T01:00:05Z")));
    f.advance(SignedDuration::from_secs(30));
    f.store.verify(tok.secret.expose()).unwrap();
    assert_eq!(last(), Some(t("2025-03-01T01:01:05Z")));
}

#[test]
fn role_and_group_changes_apply_to_the_next_request() {
    let f = fx();
    f.add("张三", Role::Inspector);
    let tok = f.login("张三");
    f.store.set_role(&f.admin, "张三", Role::Office).unwrap();
    f.store.create_group(&f.admin, "排水队", Some("drainage team")).unwrap();
    f.store.add_to_group(&f.admin, "排水队", "张三").unwrap();
    let p = f.store.verify(tok.secret.expose()).unwrap();
    assert_eq!((p.role, p.groups), (Role::Office, vec!["排水队".to_string()]));
}

#[test]
fn admin_issued_tokens() {
    let f = fx();
    f.add("sync-bot", Role::Office);
    let tok = f.store.issue_token(&Actor::local("cli"), "sync-bot", Some(SignedDuration::from_hours(1))).unwrap();
    assert_eq!(tok.expires_at, t("2025-03-01T02:00:00Z"));
    assert_eq!(f.store.verify(tok.secret.expose()).unwrap().username, "sync-bot");
    let office = Actor::user(tok.principal);
    assert_eq!(err(f.store.issue_token(&office, "root", None)).0, ErrorKind::Forbidden);
    assert_eq!(err(f.store.issue_token(&f.admin, "sync-bot", Some(SignedDuration::ZERO))).0, ErrorKind::BadRequest);
}

// ---- account status ----

#[test]
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
}

#[test]
fn the_last_admin_cannot_be_removed() {
    let f = fx();
    let msg = "`root` is the last active admin; add or enable another admin first";
    assert_eq!(err(f.store.disable_user(&f.admin, "root", None)), (ErrorKind::Conflict, msg.into()));
    assert_eq!(err(f.store.set_role(&f.admin, "root", Role::Office)).1, msg);
    f.add("root2", Role::Admin);
    f.store.set_role(&f.admin, "root", Role::Office).unwrap();
}

#[test]
fn citizen_registration_needs_approval() {
    let f = fx();
    let reg = Registration {
        username: "市民王五".into(),
        password: "我的密码很安全吧".into(),
        display_name: Some("王五".into()),
        contact: Some("13800000000".into()),
    };
    let u = f.store.register_citizen(&reg, &from_addr("203.0.113.9:40000")).unwrap();
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
    // Registering the same name again.
    assert_eq!(err(f.store.register_citizen(&reg, &Client::default())).0, ErrorKind::Conflict);
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
}

#[test]
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
}

#[test]
fn registration_can_be_turned_off() {
    let f = fx();
    let store = f.store.with_config(AuthConfig { citizen_registration: false, ..config() });
    let reg = Registration { username: "zhao6".into(), password: "password123".into(), ..Registration::default() };
    assert_eq!(
        err(store.register_citizen(&reg, &Client::default())),
        (ErrorKind::Forbidden, "self-registration is turned off on this server".into())
    );
}

#[test]
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
}

// ---- lockout ----

#[test]
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
}

#[test]
fn unknown_usernames_lock_too_and_other_users_are_unaffected() {
    let f = fx();
    f.add("张三", Role::Inspector);
    for _ in 0..5 {
        let _ = f.store.login(&creds("Ghost"), &Client::default());
    }
    assert!(matches!(f.store.login(&creds("ghost"), &Client::default()), Err(AuthError::LockedOut { .. })));
    f.login("张三");
}

// ---- devices and enrolment ----

fn phone() -> NewDevice {
    NewDevice { name: "张三的手机".into(), platform: "android".into(), hardware_id: Some("R58N1234".into()) }
}

#[test]
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
    let dt = f.store.issue_device_token(&me, d.id).unwrap();
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
    assert_eq!(err(f.store.issue_device_token(&me, d.id)).0, ErrorKind::Conflict);
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
}

#[test]
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
}

#[test]
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
}

// ---- groups and rules ----

#[test]
fn groups_and_members() {
    let f = fx();
    f.add("张三", Role::Inspector);
    f.add("李四", Role::Inspector);
    f.store.create_group(&f.admin, "排水队", None).unwrap();
    assert_eq!(
        err(f.store.create_group(&f.admin, "排水队", None)),
        (ErrorKind::Conflict, "a group named `排水队` already exists".into())
    );
    f.store.add_to_group(&f.admin, "排水队", "李四").unwrap();
    let g = f.store.add_to_group(&f.admin, "排水队", "张三").unwrap();
    assert_eq!(g.members, ["张三", "李四"], "sorted by name");
    f.store.add_to_group(&f.admin, "排水队", "张三").unwrap();
    let g = f.store.remove_from_group(&f.admin, "排水队", "李四").unwrap();
    assert_eq!(g.members, ["张三"]);
    assert_eq!(
        err(f.store.add_to_group(&f.admin, "绿化队", "张三")),
        (ErrorKind::NotFound, "no group named `绿化队`".into())
    );
    assert_eq!(err(f.store.add_to_group(&f.admin, "排水队", "nobody")).0, ErrorKind::NotFound);
    let u = f.store.user(&f.admin, "张三").unwrap();
    assert_eq!(u.groups, ["排水队"]);
    assert_eq!(f.store.groups(&f.admin).unwrap().len(), 1);
    assert_eq!(err(f.store.create_group(&f.admin, "", None)).0, ErrorKind::BadRequest);
}

#[test]
fn stored_rules_decide_with_defaults_and_overrides() {
    let f = fx();
    let insp = f.user("张三", Role::Inspector);
    let cit = f.user("王五", Role::Citizen);
    let insp_p = insp.principal().unwrap().clone();
    let manhole = LayerAccess { name: "manhole", public: false, citizen_reports: false };
    let reports = LayerAccess { name: "reports", public: false, citizen_reports: true };
    let decide = |p: Option<&Principal>, l: &LayerAccess<'_>, a: Action| match f.store.authorize(p, l, a).unwrap() {
        Decision::Allow => "allow".to_string(),
        Decision::Deny(d) => d.reason,
    };
    // Defaults.
    assert_eq!(decide(Some(&insp_p), &manhole, Action::Edit), "allow");
    assert_eq!(
        decide(cit.principal(), &manhole, Action::Read),
        "role citizen may not read layer manhole (it is not public)"
    );
    assert_eq!(decide(cit.principal(), &reports, Action::Create), "allow");
    assert_eq!(decide(None, &manhole, Action::Read), "layer manhole is not public; log in to read it");
    // A rule makes manhole read-only for inspectors…
    let ro = Rule { layer: "manhole".into(), subject: Subject::Role(Role::Inspector), grants: Grants::READ };
    f.store.set_rule(&f.admin, &ro).unwrap();
    assert_eq!(
        decide(Some(&insp_p), &manhole, Action::Edit),
        "role inspector may not edit layer manhole (by the permission rules of this layer)"
    );
    // …except for the drainage team.
    f.store.create_group(&f.admin, "排水队", None).unwrap();
    f.store.add_to_group(&f.admin, "排水队", "张三").unwrap();
    let team = Rule { layer: "manhole".into(), subject: Subject::Group("排水队".into()), grants: Grants::READ_EDIT };
    f.store.set_rule(&f.admin, &team).unwrap();
    let insp_now = f.store.verify(f.login("张三").secret.expose()).unwrap();
    assert_eq!(decide(Some(&insp_now), &manhole, Action::Edit), "allow");
    assert_eq!(f.store.list_rules(&f.admin, Some("manhole")).unwrap(), [team.clone(), ro.clone()]);
    // Replacing a rule keeps one rule per subject.
    let team_ro = Rule { grants: Grants::READ, ..team.clone() };
    f.store.set_rule(&f.admin, &team_ro).unwrap();
    assert_eq!(f.store.rules_for("manhole").unwrap().len(), 2);
    // Deleting the group removes its rules.
    f.store.delete_group(&f.admin, "排水队").unwrap();
    assert_eq!(f.store.rules_for("manhole").unwrap(), std::slice::from_ref(&ro));
    f.store.remove_rule(&f.admin, "manhole", &Subject::Role(Role::Inspector)).unwrap();
    assert_eq!(decide(Some(&insp_p), &manhole, Action::Edit), "allow");
    assert_eq!(
        err(f.store.remove_rule(&f.admin, "manhole", &Subject::Role(Role::Inspector))),
        (ErrorKind::NotFound, "no permission rule for role inspector on layer `manhole`".into())
    );
    // Bad rules.
    let admin_rule = Rule { subject: Subject::Role(Role::Admin), ..ro.clone() };
    assert_eq!(err(f.store.set_rule(&f.admin, &admin_rule)).0, ErrorKind::BadRequest);
    let ghost = Rule { subject: Subject::Group("ghosts".into()), ..ro.clone() };
    assert_eq!(err(f.store.set_rule(&f.admin, &ghost)).0, ErrorKind::NotFound);
    assert_eq!(err(f.store.set_rule(&insp, &ro)).0, ErrorKind::Forbidden);
    let eff = f.store.effective_access(Some(&insp_p), &manhole).unwrap();
    assert_eq!(eff.grants, Grants::READ_EDIT);
}

// ---- audit ----

#[test]
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
}

#[test]
fn the_audit_log_is_append_only() {
    let f = fx();
    let conn = f.store.conn();
    let e = conn.execute("UPDATE audit SET actor = 'someone else'", []).unwrap_err().to_string();
    assert!(e.contains("the audit log is append-only"), "{e}");
    let e = conn.execute("DELETE FROM audit", []).unwrap_err().to_string();
    assert!(e.contains("the audit log is append-only"), "{e}");
}

#[test]
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
    let tok = f.store.issue_device_token(&cli, d.id).unwrap();
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
}

// ---- invariant: tokens verify only while unexpired and unrevoked ----

mod prop {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// Issue a token to user `u` lasting `mins` minutes.
        Issue {
            u: usize,
            mins: i64,
        },
        /// Revoke the `i`-th issued token (modulo the count).
        Revoke(usize),
        RevokeUser(usize),
        Advance(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0..2usize, 1..120i64).prop_map(|(u, mins)| Op::Issue { u, mins }),
            1 => any::<usize>().prop_map(Op::Revoke),
            1 => (0..2usize).prop_map(Op::RevokeUser),
            3 => (0..90i64).prop_map(Op::Advance),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn tokens_verify_only_while_unexpired_and_unrevoked(ops in proptest::collection::vec(op(), 1..40)) {
            let f = fx();
            let users = ["甲一", "乙二"];
            for u in users {
                f.add(u, Role::Inspector);
            }
            // Model: (secret, user, expires_at, revoked).
            let mut model: Vec<(IssuedToken, usize, Timestamp, bool)> = Vec::new();
            for op in ops {
                match op {
                    Op::Issue { u, mins } => {
                        let tok = f.store.issue_token(&f.admin, users[u], Some(SignedDuration::from_mins(mins))).unwrap();
                        let exp = f.clock.now().checked_add(SignedDuration::from_mins(mins)).unwrap();
                        model.push((tok, u, exp, false));
                    }
                    Op::Revoke(i) if !model.is_empty() => {
                        let i = i % model.len();
                        f.store.revoke_token(&f.admin, model[i].0.id).unwrap();
                        model[i].3 = true;
                    }
                    Op::Revoke(_) => {}
                    Op::RevokeUser(u) => {
                        f.store.revoke_user_tokens(&f.admin, users[u]).unwrap();
                        for m in model.iter_mut().filter(|m| m.1 == u) {
                            m.3 = true;
                        }
                    }
                    Op::Advance(mins) => f.advance(SignedDuration::from_mins(mins)),
                }
                let now = f.clock.now();
                for (tok, u, exp, revoked) in &model {
                    let got = f.store.verify(tok.secret.expose());
                    match got {
                        Ok(p) => {
                            prop_assert!(!revoked && now < *exp, "accepted a dead token");
                            prop_assert_eq!(p.username.as_str(), users[*u]);
                        }
                        Err(AuthError::TokenRevoked { .. }) => prop_assert!(*revoked),
                        Err(AuthError::TokenExpired { expired_at }) => {
                            prop_assert!(!revoked && now >= *exp);
                            prop_assert_eq!(expired_at, *exp);
                        }
                        Err(e) => prop_assert!(false, "unexpected error {}", e),
                    }
                }
            }
        }
    }
}
