//! Harvest sources and harvested records on both backends: only administrators add and remove
//! sources (audited), a page upsert counts added/updated/unchanged by content hash, a sweep
//! removes what the run did not see, a claim is compare-and-set, removing a source removes its
//! records, and every write moves the harvest generation.

use super::*;
use crate::{HarvestedRecord, NewHarvestSource};

fn rec(source: &str, id: &str, hash: &str) -> HarvestedRecord {
    HarvestedRecord {
        source_id: source.into(),
        remote_id: id.into(),
        title: format!("档案 {id}"),
        abstract_text: "说明".into(),
        keywords: r#"["k"]"#.into(),
        bbox: Some("[114,30,115,31]".into()),
        kind: "dataset".into(),
        modified: Some("2026-11-01".into()),
        hash: hash.into(),
        raw: "{}".into(),
    }
}

both! {
    fn harvests_are_incremental_and_swept() {
        let f = fx();
        let new = NewHarvestSource { kind: "csw".into(), title: "邻区".into(), url: "http://x/csw".into(), every_minutes: Some(60) };
        let office = f.user("wang", Role::Office);
        assert_eq!(f.store.add_harvest_source(&office, &new).unwrap_err().kind(), ErrorKind::Forbidden);
        let s = f.store.add_harvest_source(&f.admin, &new).unwrap();
        assert_eq!(f.store.harvest_sources().unwrap(), vec![s.clone()]);
        assert_eq!(f.store.harvest_generation().unwrap(), "");

        let c = f.store.upsert_harvested(&s.id, "run1", &[rec(&s.id, "a", "1"), rec(&s.id, "b", "1"), rec(&s.id, "c", "1")]).unwrap();
        assert_eq!((c.added, c.updated, c.unchanged), (3, 0, 0));
        let g1 = f.store.harvest_generation().unwrap();
        assert!(!g1.is_empty());
        assert_eq!(f.store.sweep_harvested(&s.id, "run1").unwrap(), 0);

        let c = f.store.upsert_harvested(&s.id, "run2", &[rec(&s.id, "a", "1"), rec(&s.id, "b", "2"), rec(&s.id, "d", "1")]).unwrap();
        assert_eq!((c.added, c.updated, c.unchanged), (1, 1, 1));
        assert_eq!(f.store.sweep_harvested(&s.id, "run2").unwrap(), 1, "c is gone");
        assert_ne!(f.store.harvest_generation().unwrap(), g1);
        let page = f.store.harvested_page(None, 2).unwrap();
        assert_eq!(page.iter().map(|r| r.remote_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let rest = f.store.harvested_page(Some((&s.id, "b")), 10).unwrap();
        assert_eq!(rest.iter().map(|r| r.remote_id.as_str()).collect::<Vec<_>>(), ["d"]);
        assert_eq!(rest[0], rec(&s.id, "d", "1"));
        assert_eq!(f.store.harvested_counts().unwrap(), vec![(s.id.clone(), 3)]);

        assert!(f.store.claim_harvest_run(&s.id, None, "r1").unwrap());
        assert!(!f.store.claim_harvest_run(&s.id, None, "r2").unwrap(), "already claimed");
        assert!(f.store.claim_harvest_run(&s.id, Some("r1"), "r2").unwrap());
        assert_eq!(f.store.harvest_source(&s.id).unwrap().unwrap().last_run.as_deref(), Some("r2"));

        assert_eq!(f.store.delete_harvest_source(&office, &s.id).unwrap_err().kind(), ErrorKind::Forbidden);
        f.store.delete_harvest_source(&f.admin, &s.id).unwrap();
        assert!(f.store.harvested_page(None, 10).unwrap().is_empty());
        assert_eq!(f.store.delete_harvest_source(&f.admin, &s.id).unwrap_err().kind(), ErrorKind::NotFound);
        let actions: Vec<String> = f.audit(AuditQuery::default()).iter().map(|e| e.action.as_str().to_owned()).collect();
        assert!(actions.contains(&"harvest.create".to_owned()) && actions.contains(&"harvest.delete".to_owned()), "{actions:?}");
    }
}
