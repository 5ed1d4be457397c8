//! Attachments: content addressing, deduplication, evidence, limits, confirmation.

use shikong_model::Value;
use shikong_replica::{Evidence, FeatureKey, MAX_ATTACHMENT_BYTES, ReplicaError, sha256_hex};

use crate::support::*;

fn evidence() -> Evidence {
    Evidence {
        capture_time: ts("2025-06-02T09:30:00+08:00"),
        lon: Some(114.3055),
        lat: Some(30.5928),
        heading: Some(275.5),
        device: Some("phone-1".into()),
    }
}

#[test]
fn photos_are_stored_by_hash_once_with_their_evidence_until_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = open(&cut(dir.path(), "r.gpkg", 2));
    let photo = b"\xff\xd8\xff\xe0 JPEG bytes of a manhole photo".to_vec();
    let sha = r.add_attachment(&photo, "image/jpeg", &evidence()).unwrap();
    assert_eq!(sha, sha256_hex(&photo));
    assert_eq!(sha.len(), 64);
    let mut later = evidence();
    later.heading = Some(10.0);
    assert_eq!(r.add_attachment(&photo, "image/jpeg", &later).unwrap(), sha, "same bytes, same attachment");
    let other = r.add_attachment(b"%PDF-1.7", "application/pdf", &evidence()).unwrap();
    let listed = r.unconfirmed_attachments().unwrap();
    assert_eq!(listed.len(), 2);
    let p = listed.iter().find(|a| a.sha256 == sha).unwrap();
    assert_eq!(
        (p.mime.as_str(), p.size, &p.evidence, p.confirmed),
        ("image/jpeg", photo.len() as u64, &evidence(), false)
    );
    assert_eq!(r.attachment(&sha).unwrap(), photo);
    assert_eq!(r.attachment(&sha.to_uppercase()).unwrap(), photo);

    // A field refers to it by hash.
    let m = meta("张三", "2025-06-02T09:31:00+08:00");
    let k = FeatureKey::Code("420111-JG-000001".into());
    r.set_fields("manhole", &k, [("photos".to_string(), Value::Attachments(vec![sha.clone()]))].into(), &m).unwrap();
    let f = r.get("manhole", &k).unwrap().unwrap();
    assert_eq!(f.feature.properties["photos"], Value::Attachments(vec![sha.clone()]));

    r.confirm_attachment(&sha).unwrap();
    let left: Vec<_> = r.unconfirmed_attachments().unwrap().into_iter().map(|a| a.sha256).collect();
    assert_eq!(left, [other]);
    assert_eq!(r.attachments().unwrap().len(), 2);
    assert_eq!(r.remove_confirmed_attachments().unwrap(), 1);
    assert!(matches!(r.attachment(&sha), Err(ReplicaError::NoSuchAttachment(_))));
    assert!(matches!(r.confirm_attachment(&"0".repeat(64)), Err(ReplicaError::NoSuchAttachment(_))));
}

#[test]
fn attachments_beyond_the_limit_or_with_bad_evidence_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = open(&cut(dir.path(), "r.gpkg", 1));
    let check = |r: &mut shikong_replica::Replica, bytes: &[u8], mime: &str, ev: Evidence, want: &str| {
        let e = r.add_attachment(bytes, mime, &ev).unwrap_err().to_string();
        assert!(e.contains(want), "{e} lacks {want}");
    };
    let big = vec![0u8; usize::try_from(MAX_ATTACHMENT_BYTES).unwrap() + 1];
    check(
        &mut r,
        &big,
        "image/jpeg",
        evidence(),
        "attachment of 52428801 bytes is larger than the limit of 52428800 bytes",
    );
    check(&mut r, b"x", "jpeg", evidence(), "`jpeg` is not a MIME type");
    check(
        &mut r,
        b"x",
        "image/jpeg",
        Evidence { heading: Some(360.0), ..evidence() },
        "heading 360 is not in [0, 360)",
    );
    check(
        &mut r,
        b"x",
        "image/jpeg",
        Evidence { lat: Some(91.0), ..evidence() },
        "position (114.3055, 91) is not a longitude/latitude",
    );
    check(&mut r, b"x", "image/jpeg", Evidence { lon: None, ..evidence() }, "longitude and latitude come together");
    assert!(r.attachments().unwrap().is_empty());
    let no_position = Evidence { lon: None, lat: None, heading: None, device: None, ..evidence() };
    r.add_attachment(b"x", "image/png", &no_position).unwrap();
}
