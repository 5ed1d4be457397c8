//! A real `shikong serve` process on an ephemeral loopback port, over HTTP or over HTTPS with a
//! test certificate authority ([`TestCa`]).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub base: String,
    /// An HTTP client that trusts the server (the test CA when it serves HTTPS).
    pub http: reqwest::blocking::Client,
}

/// A test certificate authority and the server certificate it signed for `127.0.0.1` and
/// `localhost`, written as PEM files.
pub struct TestCa {
    pub ca_pem: String,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl TestCa {
    /// Generates the CA and the server certificate into `dir` (`ca.pem`, `server.pem`, `server.key`).
    pub fn new(dir: &Path) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "shikong test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        let cert = leaf.signed_by(&key, &ca).unwrap();
        let t = TestCa {
            ca_pem: ca.pem(),
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("server.pem"),
            key_file: dir.join("server.key"),
        };
        std::fs::write(&t.ca_file, &t.ca_pem).unwrap();
        std::fs::write(&t.cert_file, cert.pem()).unwrap();
        std::fs::write(&t.key_file, key.serialize_pem()).unwrap();
        t
    }

    /// A reqwest client that trusts this CA.
    pub fn client(&self) -> reqwest::blocking::Client {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap();
        reqwest::blocking::Client::builder().tls_certs_merge([ca]).build().unwrap()
    }

    /// `--ca-cert FILE` as command-line arguments.
    pub fn arg(&self) -> [&str; 2] {
        ["--ca-cert", self.ca_file.to_str().unwrap()]
    }
}

impl Server {
    /// Starts `shikong serve --data DATA --listen 127.0.0.1:0 EXTRA…` and waits until it answers.
    pub fn start(data: &str, extra: &[&str]) -> Server {
        Self::launch(data, extra, None)
    }

    /// Starts `shikong serve … --tls-cert --tls-key` with `ca`'s server certificate (HTTPS).
    pub fn start_tls(data: &str, extra: &[&str], ca: &TestCa) -> Server {
        Self::launch(data, extra, Some(ca))
    }

    fn launch(data: &str, extra: &[&str], ca: Option<&TestCa>) -> Server {
        let mut args = vec!["serve", "--data", data, "--listen", "127.0.0.1:0"];
        if let Some(ca) = ca {
            args.extend_from_slice(&[
                "--tls-cert",
                ca.cert_file.to_str().unwrap(),
                "--tls-key",
                ca.key_file.to_str().unwrap(),
            ]);
        }
        args.extend_from_slice(extra);
        let mut child = Command::new(super::shikong_bin())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start shikong serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read the listening line");
        let base = line.trim().rsplit(' ').next().expect("address").to_owned();
        let scheme = if ca.is_some() { "https" } else { "http" };
        assert!(base.starts_with(&format!("{scheme}://127.0.0.1:")), "unexpected first line: {line}");
        let http = ca.map_or_else(reqwest::blocking::Client::new, TestCa::client);
        let server = Server { child, base, http };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = server.http.get(format!("{}/healthz", server.base)).send()
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path` with `token`, which must answer 200; its JSON body.
    #[track_caller]
    pub fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        let r = reqwest::blocking::Client::new().get(self.url(path)).bearer_auth(token).send().unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().unwrap()
    }

    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port")
    }

    /// Kills the process outright (SIGKILL): a crash, no graceful shutdown.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and returns whether the process exited successfully.
    pub fn stop(self) -> bool {
        self.stop_within(Duration::from_secs(10)).is_some_and(|(ok, _)| ok)
    }

    /// Sends SIGTERM; `Some((exited successfully, after how long))` if the process ended within
    /// `bound`, else `None` (and it is killed).
    pub fn stop_within(mut self, bound: Duration) -> Option<(bool, Duration)> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        let deadline = start + bound;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((status.success(), start.elapsed()));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
