//! Tokens: lifetime, revocation, last use, admin-issued tokens, and the property that a token
//! verifies only while unexpired and unrevoked.

use super::*;

both! {
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
}}

both! {
fn unknown_and_malformed_tokens() {
    let f = fx();
    for bad in ["", "Bearer", "令牌", &"A".repeat(43)] {
        assert!(matches!(f.store.verify(bad), Err(AuthError::TokenUnknown)), "{bad:?}");
    }
}}

both! {
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
}}

both! {
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
}}

both! {
fn role_and_group_changes_apply_to_the_next_request() {
    let f = fx();
    f.add("张三", Role::Inspector);
    let tok = f.login("张三");
    f.store.set_role(&f.admin, "张三", Role::Office).unwrap();
    f.store.create_group(&f.admin, "排水队", Some("drainage team")).unwrap();
    f.store.add_to_group(&f.admin, "排水队", "张三").unwrap();
    let p = f.store.verify(tok.secret.expose()).unwrap();
    assert_eq!((p.role, p.groups), (Role::Office, vec!["排水队".to_string()]));
}}

both! {
fn admin_issued_tokens() {
    let f = fx();
    f.add("sync-bot", Role::Office);
    let tok = f.store.issue_token(&Actor::local("cli"), "sync-bot", Some(SignedDuration::from_hours(1))).unwrap();
    assert_eq!(tok.expires_at, t("2025-03-01T02:00:00Z"));
    assert_eq!(f.store.verify(tok.secret.expose()).unwrap().username, "sync-bot");
    let office = Actor::user(tok.principal);
    assert_eq!(err(f.store.issue_token(&office, "root", None)).0, ErrorKind::Forbidden);
    assert_eq!(err(f.store.issue_token(&f.admin, "sync-bot", Some(SignedDuration::ZERO))).0, ErrorKind::BadRequest);
}}

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
