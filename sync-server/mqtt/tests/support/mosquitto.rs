//! A private mosquitto (Debian's package) for tests: its own config on a free loopback port, no
//! system service. Shared by the broker crate's bridge tests and the server's MQTT tests
//! (`sync-server/http/tests/sta_mqtt.rs` includes this file by path).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A private mosquitto (Debian's package) on a free loopback port, stopped on drop.
pub struct Mosquitto {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn mosquitto_binary() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain(["/usr/sbin", "/usr/bin"]) {
        let p = PathBuf::from(dir).join("mosquitto");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "the MQTT bridge tests need Debian's `mosquitto` package (not found in PATH or /usr/sbin): run scripts/deps.sh test or apt-get install mosquitto"
    );
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Mosquitto {
    pub async fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Mosquitto { port: free_port(), dir, child: None };
        m.run().await;
        m
    }

    async fn run(&mut self) {
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n",
                self.port
            ),
        )
        .unwrap();
        let log = std::fs::File::create(self.dir.path().join("mosquitto.log")).unwrap();
        let child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default();
                panic!("mosquitto exited ({status}): {log}");
            }
            assert!(tokio::time::Instant::now() < deadline, "mosquitto did not listen within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        self.run().await;
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}
