//! HTTPS end to end: the real `shikong serve --tls-cert --tls-key` with a certificate signed by a
//! test CA generated here (rcgen). A device that trusts the CA syncs (push and pull through the
//! sync client and through `shikong replica --ca-cert`); one that does not is refused with a
//! certificate error, at once (no retries); enrolment QR codes carry the https URL.

use crate::common::server::{Server, TestCa};
use crate::common::*;
use shikong_replica::{EditMeta, FeatureKey, Replica};

fn setup(dir: &std::path::Path) -> String {
    let data = s(&dir.join("data")).to_owned();
    ok(&["init", "--data", &data]);
    ok(&["import", "--data", &data, "--layer", "manhole", "--title", "井盖", &fixture("manholes_v1.geojson")]);
    for u in ["li", "wu"] {
        ok_stdin(&["user", "add", "--data", &data, "--role", "inspector", u], "巡查员的密码123\n");
    }
    data
}

#[test]
fn devices_sync_over_https_trusting_the_test_ca() {
    let dir = tempfile::tempdir().unwrap();
    let data = setup(dir.path());
    let ca = TestCa::new(dir.path());
    let server = Server::start_tls(&data, &[], &ca);
    assert!(server.base.starts_with("https://127.0.0.1:"), "{}", server.base);
    let (t_li, t_wu) = (ok(&["user", "token", "--data", &data, "li"]), ok(&["user", "token", "--data", &data, "wu"]));
    let (t_li, t_wu) = (t_li.trim(), t_wu.trim());

    // The sync client with the CA: li cuts a replica, edits offline and pushes; wu pulls it.
    let pem = ca.ca_pem.as_bytes();
    let li = shikong_sync_client::SyncClient::with_ca(&server.base, t_li, Some(pem)).unwrap();
    let wu = shikong_sync_client::SyncClient::with_ca(&server.base, t_wu, Some(pem)).unwrap();
    let (li_path, wu_path) = (dir.path().join("li.gpkg"), dir.path().join("wu.gpkg"));
    li.create_replica(&["manhole".into()], None, None, &li_path).unwrap();
    wu.create_replica(&["manhole".into()], None, None, &wu_path).unwrap();
    let mut li_replica = Replica::open(&li_path).unwrap();
    assert_eq!(li_replica.info().server_url, server.base, "the replica remembers the https URL");
    let meta = EditMeta { user: "li".into(), device: None, time: jiff::Timestamp::now() };
    let depth = [("depth".to_owned(), shikong_model::Value::Real(4.25))].into();
    assert!(li_replica.set_fields("manhole", &FeatureKey::Code("HS-JG-0001".into()), depth, &meta).unwrap());
    let pushed = li.sync(&mut li_replica, &mut |_| {}).unwrap();
    assert_eq!((pushed.accepted, pushed.rejected.len()), (1, 0), "{pushed:?}");
    let mut wu_replica = Replica::open(&wu_path).unwrap();
    let pulled = wu.sync(&mut wu_replica, &mut |_| {}).unwrap();
    assert_eq!(pulled.pulled_entities, 1, "{pulled:?}");
    let f = wu_replica.get("manhole", &FeatureKey::Code("HS-JG-0001".into())).unwrap().unwrap();
    assert_eq!(f.feature.properties.get("depth"), Some(&shikong_model::Value::Real(4.25)));

    // A client without the CA is refused with a certificate error, without retrying for seconds.
    let started = std::time::Instant::now();
    let stranger = shikong_sync_client::SyncClient::new(&server.base, t_wu).unwrap();
    let e = stranger.sync(&mut wu_replica, &mut |_| {}).unwrap_err();
    assert!(matches!(e, shikong_sync_client::SyncError::Untrusted { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("certificate is not trusted") && text.contains("UnknownIssuer"), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "refused at once: {:?}", started.elapsed());
    // A CA file that holds no certificate is named.
    let e = shikong_sync_client::SyncClient::with_ca(&server.base, t_wu, Some(b"hello")).unwrap_err();
    assert!(matches!(e, shikong_sync_client::SyncError::CaCertificate(_)), "{e:?}");

    // The command line: `--ca-cert` makes it work; without it the error says what to do.
    let cli = dir.path().join("cli.gpkg");
    let err = fails(&["replica", "create", "--server", &server.base, "--token", t_wu, "--layers", "manhole", s(&cli)]);
    assert!(err.contains("certificate is not trusted") && err.contains("--ca-cert"), "{err}");
    let [flag, file] = ca.arg();
    let args = ["replica", "create", "--server", &server.base, "--token", t_wu, "--layers", "manhole", flag, file];
    ok(&[&args[..], &[s(&cli)]].concat());
    let out = ok(&["replica", "sync", "--token", t_wu, flag, file, s(&cli)]);
    assert!(out.contains("0 rejected"), "{out}");

    // Enrolment QR codes carry the https URL the server is reached at.
    let r = server.http.post(server.url("/auth/enrolments")).bearer_auth(t_li).send().unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().unwrap();
    let link = shikong_protocol::enrolment::EnrolmentLink::parse(created["qr"]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(link.server, server.base, "{created}");
    assert!(server.stop(), "SIGTERM ends the HTTPS server with status 0");
}

/// A certificate file that is not PEM is refused at start with the file named.
#[test]
fn a_bad_certificate_file_is_named_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    ok(&["init", "--data", &data]);
    let ca = TestCa::new(dir.path());
    let junk = write(dir.path(), "junk.pem", "not a certificate");
    let err = fails(&[
        "serve",
        "--data",
        &data,
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        s(&junk),
        "--tls-key",
        s(&ca.key_file),
    ]);
    assert!(err.contains("junk.pem") && err.contains("certificate"), "{err}");
    // The key of another certificate does not match.
    let other = TestCa::new(&{
        let d = dir.path().join("other");
        std::fs::create_dir_all(&d).unwrap();
        d
    });
    let err = fails(&[
        "serve",
        "--data",
        &data,
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        s(&ca.cert_file),
        "--tls-key",
        s(&other.key_file),
    ]);
    assert!(err.contains("server.key") && err.contains("does not match"), "{err}");
}
