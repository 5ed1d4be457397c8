//! The auth database end to end: accounts, login, tokens, devices, enrolment, registration
//! approval, lockout, groups, rules and the audit log, at instants set by a manual clock.
//!
//! Fixtures and the file, users and login are here; the other subjects have a module each.
//!
//! Every test written `both! { fn name() { … } }` runs on both backends: `name::sqlite` (an
//! in-memory SQLite database) and `name::postgres` (a fresh database in the private cluster of
//! `shikong-pgtest`, as a server with `--store postgres://…` keeps its accounts). Only what is
//! about the SQLite file itself is SQLite-only.

use std::cell::Cell;

thread_local! {
    /// Whether [`fx`] opens the accounts in PostgreSQL (set by the `postgres` half of `both!`).
    static ON_POSTGRES: Cell<bool> = const { Cell::new(false) };
}

/// One test, run on both backends (see the module docs).
macro_rules! both {
    (fn $name:ident() $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn sqlite() $body

            #[test]
            fn postgres() {
                $crate::db::tests::ON_POSTGRES.with(|p| p.set(true));
                $body
            }
        }
    };
}

mod access;
mod accounts;
mod audit;
mod copy;
mod devices;
mod harvest;
mod services;
mod shared;
mod tokens;

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

/// A fresh store (in memory, or a new PostgreSQL database under `both!`'s `postgres` half) at
/// [`START`] with an admin `root` added from the CLI.
fn fx() -> Fx {
    let clock = Arc::new(ManualClock::new(t(START)));
    let store = if ON_POSTGRES.with(Cell::get) {
        AuthStore::open_postgres(&shikong_pgtest::Cluster::shared().fresh_db()).unwrap()
    } else {
        AuthStore::open_in_memory().unwrap()
    };
    let store = store.with_clock(clock.clone()).with_config(config());
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

/// A field inspector's phone, as a device registers.
fn phone() -> NewDevice {
    NewDevice { name: "张三的手机".into(), platform: "android".into(), hardware_id: Some("R58N1234".into()) }
}

fn err<T: std::fmt::Debug>(r: Result<T>) -> (ErrorKind, String) {
    let e = r.unwrap_err();
    (e.kind(), e.to_string())
}

// ---- the file ----

both! {
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
}}

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
    let held = store.conn().unwrap();
    let conn = held.sqlite().unwrap();
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0)).unwrap();
    assert_eq!(sync, 2, "synchronous = FULL");
    let app: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0)).unwrap();
    assert_eq!(app, APPLICATION_ID);
    let v: String =
        conn.query_row("SELECT value FROM auth_meta WHERE key = 'schema_version'", [], |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION.to_string());
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.sqlite");
    let store = AuthStore::open(&path).unwrap();
    store.conn().unwrap().execute("UPDATE auth_meta SET value = '7' WHERE key = 'schema_version'", &[]).unwrap();
    drop(store);
    let e = AuthStore::open(&path).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{} was written by a newer shikong (auth schema version 7; this build understands up to {SCHEMA_VERSION}). Upgrade shikong to open it.",
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

both! {
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
}}

both! {
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
}}

both! {
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
}}

both! {
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
}}
