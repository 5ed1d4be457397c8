//! Registered services and API keys on both backends: only administrators change them, every
//! change is audited, a key's secret is found by its hash only, usage counts add up across flushes.

use super::*;
use crate::{NewApiKey, NewServiceRow};

fn service(title: &str) -> NewServiceRow {
    NewServiceRow {
        kind: "wmts".into(),
        title: title.into(),
        url: "http://10.1.2.3/wmts".into(),
        credentials: Some(r#"{"headers":[["X-Key","s"]]}"#.into()),
        layers: "[]".into(),
        health: "{}".into(),
    }
}

both! {
    fn services_and_keys_are_kept_and_audited() {
        let f = fx();
        let office = f.user("wang", Role::Office);
        let e = f.store.add_service(&office, &service("底图")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        let s = f.store.add_service(&f.admin, &service("底图")).unwrap();
        assert_eq!(f.store.service(&s.id).unwrap().unwrap(), s);
        assert_eq!(f.store.services().unwrap(), vec![s.clone()]);
        f.store.set_service_health(&s.id, r#"{"state":"up"}"#).unwrap();
        assert_eq!(f.store.service(&s.id).unwrap().unwrap().health, r#"{"state":"up"}"#);

        let new = NewApiKey {
            name: "应用".into(),
            quota: 10,
            services: vec![s.id.clone()],
            fence: Some("POLYGON((0 0,1 0,1 1,0 0))".into()),
            expires_at: None,
            hours: Some("08:00-20:00".into()),
            rate: Some(5),
        };
        assert_eq!(f.store.add_api_key(&office, &new).unwrap_err().kind(), ErrorKind::Forbidden);
        let bad = NewApiKey { quota: 0, ..new.clone() };
        assert_eq!(f.store.add_api_key(&f.admin, &bad).unwrap_err().kind(), ErrorKind::BadRequest);
        for rate in [0, crate::MAX_KEY_RATE + 1] {
            let bad = NewApiKey { rate: Some(rate), ..new.clone() };
            assert_eq!(f.store.add_api_key(&f.admin, &bad).unwrap_err().kind(), ErrorKind::BadRequest, "rate {rate}");
        }
        let (k, secret) = f.store.add_api_key(&f.admin, &new).unwrap();
        assert_eq!(f.store.api_key_by_secret(secret.expose()).unwrap().unwrap(), k);
        assert_eq!(f.store.api_key_by_secret("A".repeat(43).as_str()).unwrap(), None);
        assert_eq!(f.store.api_key_by_secret("not a key").unwrap(), None);
        assert_eq!(f.store.api_keys().unwrap(), vec![k.clone()]);

        f.store.add_api_key_usage(&[(k.id.clone(), "2025-03-01".into(), 3)]).unwrap();
        f.store.add_api_key_usage(&[(k.id.clone(), "2025-03-01".into(), 4), (k.id.clone(), "2025-03-02".into(), 1)]).unwrap();
        assert_eq!(f.store.api_key_usage("2025-03-01").unwrap(), vec![(k.id.clone(), 7)]);

        f.store.revoke_api_key(&f.admin, &k.id).unwrap();
        f.store.revoke_api_key(&f.admin, &k.id).unwrap();
        assert!(f.store.api_key_by_secret(secret.expose()).unwrap().unwrap().revoked_at.is_some());
        assert_eq!(f.store.revoke_api_key(&f.admin, "nope").unwrap_err().kind(), ErrorKind::NotFound);
        f.store.delete_service(&f.admin, &s.id).unwrap();
        assert_eq!(f.store.delete_service(&f.admin, &s.id).unwrap_err().kind(), ErrorKind::NotFound);
        assert!(f.store.services().unwrap().is_empty());

        let lines = f.audit_lines();
        for expected in ["service.register ok", "service.register denied", "apikey.create ok", "apikey.create denied", "apikey.revoke ok", "service.delete ok"] {
            assert!(lines.iter().any(|l| l.starts_with(expected)), "{expected} in {lines:?}");
        }
        assert_eq!(lines.iter().filter(|l| l.starts_with("apikey.revoke ok")).count(), 1, "{lines:?}");
    }
}
