//! Whether the server can be reached now: the [`Network`] trait, the desktop TCP probe and a
//! switch for "flight mode" and tests. Android/iOS builds plug in the connectivity manager.

use std::time::Duration;

/// Whether the server can be reached now.
pub trait Network: Send + Sync + std::fmt::Debug {
    fn online(&self, server: &str) -> bool;
}

/// The desktop network state: a TCP connection to the server's host and port within 1.5 s.
#[derive(Debug, Default)]
pub struct TcpProbe;

impl Network for TcpProbe {
    fn online(&self, server: &str) -> bool {
        use std::net::ToSocketAddrs as _;
        let rest = server.split("://").nth(1).unwrap_or(server);
        let host = rest.split('/').next().unwrap_or_default();
        let default_port = if server.starts_with("https") { 443 } else { 80 };
        let addr = if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            host.to_owned()
        } else {
            format!("{host}:{default_port}")
        };
        addr.to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .is_some_and(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_millis(1500)).is_ok())
    }
}

/// A network switch for tests and for "flight mode" in settings: offline whatever the probe says.
#[derive(Debug, Default)]
pub struct Switchable {
    pub offline: std::sync::atomic::AtomicBool,
    probe: TcpProbe,
}

impl Network for Switchable {
    fn online(&self, server: &str) -> bool {
        !self.offline.load(std::sync::atomic::Ordering::Relaxed) && self.probe.online(server)
    }
}
